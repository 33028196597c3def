"""Sharded artifacts: `xgraph.export(..., mesh=)` over a 4 x 2 ('data', 'model') mesh of 8 host devices.

jax reads ``--xla_force_host_platform_device_count`` when it starts, so the 8-device work runs in child
process (as tests/test_parallel.py does with tests/parallel_worker.py).  This process, with one CPU
device, exports both artifacts (an export needs only the mesh's shape), then

    python tests/test_export_sharded.py OUT   # a fresh process with 8 devices: loads and runs both

and this process compares the outputs, reads the manifests and checks the refusals.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import xgraph as mx  # noqa: E402
from xgraph import parallel  # noqa: E402
from xgraph.io import artifact as fmt, module_check  # noqa: E402

BATCH = 16
INPUTS = {"data": (("batch", 6), "float32")}


def mlp() -> mx.sym.Symbol:
    """fc1 (its output split over ('data', 'model')) - relu - fc2 - softmax, and deterministic parameters."""
    h = mx.sym.with_sharding(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=8, name="fc1"), ("data", "model"))
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.relu(h), num_hidden=5, name="fc2"), name="softmax")


def params() -> dict[str, np.ndarray]:
    rs = np.random.RandomState(0)
    return {"fc1_weight": rs.randn(8, 6).astype(np.float32), "fc1_bias": rs.randn(8).astype(np.float32),
            "fc2_weight": rs.randn(5, 8).astype(np.float32), "fc2_bias": rs.randn(5).astype(np.float32)}


def batch(n: int = BATCH) -> np.ndarray:
    return np.random.RandomState(1).randn(n, 6).astype(np.float32)


def _error(make) -> list[str] | None:
    try:
        make()
    except mx.XGraphError as e:
        return [type(e).__name__, str(e)]
    return None


def child(out: Path) -> None:
    """In a fresh process with 8 devices: load and run both artifacts; export again over a real Mesh."""
    import jax
    assert jax.device_count() == 8, jax.devices()
    t0 = time.perf_counter()
    art8 = mx.load_artifact(out / "mlp8.xgraph")
    (o8,) = art8(batch())
    o8.block_until_ready()
    t1 = time.perf_counter()
    (o1,) = mx.load_artifact(out / "mlp1.xgraph")(batch())
    text = art8.stablehlo()
    mesh = parallel.make_mesh(8, ("data", "model"), (4, 2))
    again = mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh)
    (o8_again,) = mx.load_artifact(again)(batch())
    steps = {}               # one SGD step each: the sharded one with fc1's weight split over 'model'
    for name in ("train1", "train8"):
        step = mx.load_artifact(out / f"{name}.xgraph")
        step.run({"data": batch(), "softmax_label": np.arange(BATCH, dtype=np.float32) % 5})
        steps.update({f"{name}:{k}": v for k, v in step.params.items()})
    res = {"load_run_s": t1 - t0, "num_devices": art8.num_devices, "mesh": dict(art8.mesh.shape),
           "out_devices": len(o8.sharding.device_set),
           "sdy": "sdy.sharding" in text or "mhlo.sharding" in text,
           "constraint": "sharding_constraint" in text and '[{"data"}, {"model"}]' in text,
           "per_device_rows": o8.addressable_shards[0].data.shape[0],
           "real_mesh_same_table": again.manifest["sharding"] == art8.manifest["sharding"],
           "bad_batch": _error(lambda: art8(batch(6)))}
    np.savez(out / "outputs.npz", one=np.asarray(o1), eight=np.asarray(o8), eight_again=np.asarray(o8_again), **steps)
    (out / "child.json").write_text(json.dumps(res))


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    """Export here (one device: only the mesh's shape is needed), then load and run in a child with 8."""
    from test_parallel import _env
    out = tmp_path_factory.mktemp("sharded")
    arts = {"mlp8": mx.export(mlp(), params(), inputs=INPUTS, path=out / "mlp8.xgraph", mesh={"data": 4, "model": 2}),
            "mlp1": mx.export(mlp(), params(), inputs=INPUTS, path=out / "mlp1.xgraph")}
    labelled = {**INPUTS, "softmax_label": (("batch",), "float32")}
    for name, kw in (("train1", {}), ("train8", {"mesh": {"data": 4, "model": 2},
                                                 "input_shardings": {"fc1_weight": ("model", None)}})):
        arts[name] = mx.export(mlp(), params(), inputs=labelled, path=out / f"{name}.xgraph", for_training=True,
                               learning_rate=0.5, **kw)
    for art in arts.values():      # exported here, so safe to parse: tell the child, as a shared cache folder would
        module_check.trust(art.manifest["members"]["module.jaxexport"], str(out / "cache"))
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=8", XGRAPH_CACHE_DIR=str(out / "cache"))
    res = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    return out, json.loads((out / "child.json").read_text())


def test_sharded_artifact_runs_on_eight_devices_as_the_unsharded_one(eight):
    out, res = eight
    outs = np.load(out / "outputs.npz")
    np.testing.assert_allclose(outs["eight"], outs["one"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["eight_again"], outs["eight"], rtol=1e-6, atol=1e-7)
    assert res["real_mesh_same_table"]           # exported over 8 real devices: the same manifest table
    for k in params():                           # a sharded training step updates the parameters as one device
        np.testing.assert_allclose(outs[f"train8:{k}"], outs[f"train1:{k}"], rtol=1e-5, atol=1e-6)
        assert np.abs(outs[f"train1:{k}"] - params()[k]).max() > 1e-4
    # the unsharded artifact gives the same here, on one device, as in the 8-device child
    (here,) = mx.load_artifact(out / "mlp1.xgraph")(batch())
    np.testing.assert_allclose(np.asarray(here), outs["one"], rtol=1e-6, atol=1e-7)
    assert res["num_devices"] == 8 and res["mesh"] == {"data": 4, "model": 2} and res["out_devices"] == 8
    assert res["per_device_rows"] == BATCH // 4                # the batch is split over 'data'
    assert res["sdy"] and res["constraint"]                    # partitioning visible in the StableHLO


def test_manifest_records_the_mesh_and_every_spec(eight):
    out, res = eight
    m8, _ = fmt.unpack(out / "mlp8.xgraph", {})
    m1, _ = fmt.unpack(out / "mlp1.xgraph", {})
    assert m8["format_version"] == 2 and m1["format_version"] == 1 and "sharding" not in m1
    assert m8["sharding"] == {"num_devices": 8, "axis_names": ["data", "model"], "mesh_shape": [4, 2],
                              "specs": {"data": "('data',)", **{n: "()" for n in params()}}}
    train8, _ = fmt.unpack(out / "train8.xgraph", {})
    assert train8["sharding"]["specs"]["fc1_weight"] == "('model', None)"
    assert train8["sharding"]["specs"]["softmax_label"] == "('data',)"      # labels are inputs of a step
    six = mx.export(mx.sym.relu(mx.sym.var("data")), inputs={"data": ((6, 6), "float32")}, mesh={"data": 4})
    assert six.manifest["sharding"]["specs"] == {"data": "()"}     # 6 rows do not split over 4: replicated


def test_too_few_devices_and_bad_specs_say_what_is_wrong(eight):
    out, res = eight
    with pytest.raises(mx.ParallelError, match=r"exported for 8 devices \(mesh \{'data': 4, 'model': 2\}\), "
                                               r"this process has 1 cpu device"):
        mx.load_artifact(out / "mlp8.xgraph")
    loaded = mx.load_artifact(out / "mlp8.xgraph", check_platform=False)      # inspection only
    assert loaded.num_devices == 8 and loaded.mesh is None
    with pytest.raises(mx.ParallelError, match="exported for 8 devices"):
        loaded(batch())
    assert res["bad_batch"][0] == "ParallelError", res["bad_batch"]      # at run time, in the child
    assert all(w in res["bad_batch"][1] for w in ("input 'data'", "shape (6, 6) (6)", "4 devices"))
    mesh = {"data": 4, "model": 2}
    with pytest.raises(mx.ParallelError, match=r"input 'data': sharding \('rows', None\) names mesh axes \['rows'\], "
                                               r"the mesh has \{'data': 4, 'model': 2\}"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh, input_shardings={"data": ("rows", None)})
    with pytest.raises(mx.ParallelError, match=r"input 'data': dimension 0 of shape \(6, 6\) \(6\) does not split "
                                               r"evenly over 4 devices"):
        mx.export(mlp(), params(), inputs={"data": ((6, 6), "float32")}, mesh=mesh, input_shardings={"data": ("data",)})
    with pytest.raises(mx.ParallelError, match=r"mesh \{'data': 0\} must map axis names to positive sizes"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh={"data": 0})


def test_sharding_requests_are_checked_on_one_device():
    sym = mx.sym.relu(mx.sym.var("x"))
    with pytest.raises(mx.ParallelError, match="input_shardings needs a mesh"):
        mx.export(sym, inputs={"x": ((4,), "float32")}, input_shardings={"x": ("data",)})
    with pytest.raises(mx.ParallelError, match=r"names \['y'\].*they are \['x'\]"):
        mx.export(sym, inputs={"x": ((4,), "float32")}, mesh=1, input_shardings={"y": ()})
    with pytest.raises(mx.ParallelError, match=r"input 'x': sharding \('model',\) names mesh axes \['model'\]"):
        mx.export(sym, inputs={"x": ((4,), "float32")}, mesh=1, input_shardings={"x": ("model",)})
    art = mx.export(sym, inputs={"x": (("n", 2), "float32")}, mesh=parallel.make_mesh(1, ("model",)))
    assert art.manifest["sharding"]["specs"] == {"x": "()"}             # no 'data' axis: replicated
    loaded = mx.load_artifact(art.data)
    assert loaded.num_devices == 1 and dict(loaded.mesh.shape) == {"model": 1}
    np.testing.assert_array_equal(np.asarray(loaded(-np.ones((3, 2), np.float32))[0]), np.zeros((3, 2)))
    # a version-2 manifest must carry a consistent sharding table
    manifest, members = fmt.unpack(art.data, {})
    for broken in ({"sharding": None}, {"sharding": {**manifest["sharding"], "specs": {}}},
                   {"sharding": {**manifest["sharding"], "mesh_shape": [2]}},
                   {"sharding": {**manifest["sharding"], "specs": {"x": "('data',)"}}},
                   {"format_version": 1}):
        bad = fmt.pack({k: v for k, v in {**manifest, **broken}.items() if k != "members" and v is not None},
                       members)
        with pytest.raises(mx.ArtifactError, match="sharding"):
            mx.load_artifact(bad)


if __name__ == "__main__":
    child(Path(sys.argv[1]))
