"""docs/operators.md is generated from the registry and must be current."""
from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_operators_doc", os.path.join(ROOT, "tools", "gen_operators_doc.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_operators_doc_is_current():
    gen = load_generator()
    problem = gen.check()
    assert problem is None, f"{problem}  (regenerate with: {gen.COMMAND})"


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
    assert gen.main(["--check"]) == 0
