"""benchmarks/bench_models.py stays runnable (timings are never asserted), and its MXNet path
runs its script in a subprocess (here against a stand-in ``mxnet`` module built on xgraph)."""
import os
import sys

import pytest

from bench_helpers import load_bench, stand_in_mxnet


@pytest.fixture(scope="module")
def bench():
    yield load_bench("bench_models", register=True)  # dataclasses look their module up in sys.modules
    sys.modules.pop("bench_models", None)


def test_quick_run_prints_one_table(bench, capsys, monkeypatch):
    monkeypatch.delenv("XG_MX_PY", raising=False)
    assert bench.main(["--quick", "--only", "rnn_lstm"]) == 0
    out = capsys.readouterr().out
    header = [ln for ln in out.splitlines() if ln.startswith("network")]
    assert len(header) == 1 and all(c in header[0] for c in ("executor ms", "jit args ms", "jit const ms", "mxnet ms"))
    assert any(ln.startswith("rnn_lstm") for ln in out.splitlines())
    assert "mxnet: skipped" in out


def test_executor_matches_mxnet_outputs(bench):
    row = bench.bench_network("rnn_lstm", bench.Settings(0, 1, 1, 1))
    assert row.max_err < 1e-5 and set(row.ms) == {"executor", "compiled", "jit args", "jit const"}


def test_unknown_network_is_refused(bench, capsys):
    assert bench.main(["--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_mxnet_subprocess_path(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(stand_in_mxnet(tmp_path)))
    res, note = bench.run_mxnet(["rnn_lstm"], bench.Settings(0, 1, 1, 1), sys.executable)
    assert note.startswith("mxnet: stand-in"), note
    assert res["rnn_lstm"]["ms"] > 0 and res["rnn_lstm"]["max_abs_err"] < 1e-5
    monkeypatch.setenv("PYTHONPATH", "")
    res, note = bench.run_mxnet(["rnn_lstm"], bench.Settings(0, 1, 1, 1), os.path.join(tmp_path, "no-python"))
    assert res == {} and "failed to run" in note
