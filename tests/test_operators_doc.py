"""docs/operators.md is generated from the registry and must be current."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_operators_doc", os.path.join(ROOT, "tools", "gen_operators_doc.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_operators_doc_is_current():
    """Run the generator in check mode in a fresh process (tests may register extra ops here)."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_operators_doc.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, f"{proc.stderr.strip()}  (regenerate with: python tools/gen_operators_doc.py)"


def test_operators_doc_lists_every_op_and_alias(tmp_path):
    gen = load_generator()
    from xgraph.ops import registry
    text = gen.render()
    for op in registry.all_ops():
        assert f"### `{op.name}`" in text
        for alias in op.aliases:
            assert f"`{alias}`" in text
    assert "| `no_bias` | a boolean (True or False) | `True` |" in text  # Deconvolution's default
    stale = tmp_path / "operators.md"
    stale.write_text("old\n")
    assert gen.COMMAND in gen.check(str(stale))
