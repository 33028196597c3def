"""The ``xgraph`` command line and its demo."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xgraph import cli, demo
from xgraph.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_demo(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--steps" in out and "--fast" in out


def test_bad_steps_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--steps", "0"])
    assert exc.value.code == 2
    assert ">= 1" in capsys.readouterr().err


def test_demo_fast_prints_every_section(capsys):
    assert cli.main(["demo", "--fast"]) == 0
    out = capsys.readouterr().out
    assert "fc1_weight" in out and "(64, 64)" in out                # the shape table
    assert "fc1/dot_general" in out and "stablehlo." in out          # the StableHLO excerpt
    assert "softmax/" in out
    assert "test acc" in out and "done: test accuracy" in out


def test_demo_reaches_90_percent_test_accuracy():
    lines = []
    res = demo.run_demo(out=lines.append)
    assert res.steps == 300
    assert res.test_acc > 0.90, "\n".join(lines)
    losses = [h[1] for h in res.history]
    assert losses[-1] < losses[0]


def test_user_error_is_one_line_exit_1(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli.main(["demo", "--fast"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pip install 'xgraph[examples]'" in err


def test_missing_sklearn_raises_named_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match=r"xgraph\[examples\]"):
        demo.load_digits_split()


def test_digits_split_is_deterministic_and_disjoint():
    a = demo.load_digits_split(seed=3)
    b = demo.load_digits_split(seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    xtr, ytr, xte, yte = a
    assert xtr.dtype == np.float32 and 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert len(xtr) + len(xte) == 1797
    assert set(np.unique(ytr)) == set(range(10))


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "xgraph", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "demo" in res.stdout
