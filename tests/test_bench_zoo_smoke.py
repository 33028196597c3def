"""benchmarks/bench_zoo.py stays runnable (timings are never asserted), and its MXNet path runs its
script in a subprocess (here against a stand-in ``mxnet`` module built on xgraph)."""
import sys

import pytest

from bench_helpers import load_bench, stand_in_mxnet


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_zoo")


def test_quick_run_prints_one_row_per_network_and_batch(bench, capsys, monkeypatch):
    monkeypatch.delenv("XG_MX_PY", raising=False)
    assert bench.main(["--quick", "--only", "cifar_resnet20_v1", "--batch", "1,2"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [ln for ln in out if ln.startswith("cifar_resnet20_v1")]
    assert [r.split()[1] for r in rows] == ["1x3x32x32", "2x3x32x32"]
    assert any("mxnet: skipped" in ln for ln in out)


def test_full_size_inputs(bench):
    assert bench.input_shape("resnet18_v1", 8, None) == (8, 3, 224, 224)
    assert bench.input_shape("inceptionv3", 1, None) == (1, 3, 299, 299)


def test_unknown_network_is_refused(bench, capsys):
    assert bench.main(["--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_mxnet_subprocess_path(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(stand_in_mxnet(tmp_path)))
    prefix, _ = bench.write_checkpoint("cifar_resnet20_v1", str(tmp_path))
    res, note = bench.run_mxnet([["cifar_resnet20_v1", prefix, [[1, 3, 32, 32]]]], 0, 1, sys.executable)
    assert note.startswith("mxnet: stand-in"), note
    assert res["cifar_resnet20_v1"]["1"] > 0
