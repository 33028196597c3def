"""benchmarks/bench_winograd.py stays runnable (timings are never asserted)."""
from bench_helpers import load_bench


def test_quick_run_prints_every_strategy_and_mode(capsys):
    bench = load_bench("bench_winograd")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(all(s in ln for s in ("jax", "lax", "nhwc", "winograd2", "winograd4")) for ln in out)
    for mode in ("fwd ", "fwd const", "fwd+bwd", "max err"):
        assert any(ln.startswith("tiny 4x6x6 b2") and mode in ln for ln in out), mode
    errs = [float(v) for ln in out if "max err" in ln for v in ln.split()[-4:]]
    assert errs and max(errs) < 1e-3        # every strategy computed the reference's values


def test_unknown_layer_is_refused(capsys):
    assert load_bench("bench_winograd").main(["--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
