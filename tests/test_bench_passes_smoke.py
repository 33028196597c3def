"""bench_passes.py stays runnable (timings are never asserted)."""
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_passes.py"


def test_quick_run_prints_tables(capsys):
    spec = importlib.util.spec_from_file_location("bench_passes", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_passes"] = mod
    try:
        spec.loader.exec_module(mod)
        assert mod.main(["--quick", "--only", "pipeline,bn,remat"]) == 0
    finally:
        sys.modules.pop("bench_passes", None)
    out = capsys.readouterr().out
    for title in ("(a) pipeline time", "(b) inference", "(c) training step"):
        assert title in out
    assert "ResNet-50 O2 + params" in out and "remat every 4" in out and "jax.jit by hand" in out
