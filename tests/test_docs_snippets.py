"""The snippets of docs/getting-started.md (in order, as one session) and of the README run."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "getting-started.md"


def test_getting_started_snippets_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "'fc1_weight': (16, 8)" in out
    assert "fc1/dot_general" in out
    assert "node 'fc' (op FullyConnected)" in out


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "fc1/dot_general" in out and "(16, 8)" in out


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```\n(.*?)\n```", text, flags=re.S)[:2]
    assert commands[0] == ("python3 -m venv .venv && .venv/bin/pip install -e '.[examples]' "
                           "&& .venv/bin/xgraph demo")
    assert commands[1] == ("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' "
                           "&& .venv/bin/python -m pytest")
