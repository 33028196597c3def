"""Sharded artifacts: `xgraph.export(..., mesh=)` over a 4 x 2 ('data', 'model') mesh of 8 host devices.

jax reads ``--xla_force_host_platform_device_count`` when it starts, so the 8-device work runs in child
process (as tests/test_parallel.py does with tests/parallel_worker.py).  This process, with one CPU
device, exports both artifacts (an export needs only the mesh's shape), then

    python tests/test_export_sharded.py OUT   # a fresh process with 8 devices: loads and runs both

and this process compares the outputs, reads the manifests and checks the refusals.
"""
from __future__ import annotations

import json
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
from xgraph.export import Artifact  # noqa: E402
from xgraph.io import artifact as fmt, module_check  # noqa: E402

BATCH = 16
INPUTS = {"data": (("batch", 6), "float32")}


def mlp(fc1_weight_spec=None) -> mx.sym.Symbol:
    """fc1 (its output split over ('data', 'model')) - relu - fc2 - softmax, and deterministic parameters;
    fc1's weight a variable carrying ``fc1_weight_spec`` as its sharding attribute, when given."""
    w1 = mx.sym.var("fc1_weight", sharding=fc1_weight_spec) if fc1_weight_spec else mx.sym.var("fc1_weight")
    h = mx.sym.with_sharding(mx.sym.FullyConnected(mx.sym.var("data"), weight=w1, num_hidden=8, name="fc1"),
                             ("data", "model"))
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
    from xgraph.benchmark import bench_artifact
    assert jax.device_count() == 8, jax.devices()
    t0 = time.perf_counter()
    art8 = mx.load_artifact(out / "mlp8.xgraph")
    before = dict(art8.output_shardings)
    (o8,) = art8(batch())
    o8.block_until_ready()
    t1 = time.perf_counter()
    (o1,) = mx.load_artifact(out / "mlp1.xgraph")(batch())
    text = art8.stablehlo()
    mesh = parallel.make_mesh(8, ("data", "model"), (4, 2))
    again = mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh)
    (o8_again,) = mx.load_artifact(again)(batch())
    steps, step_specs = {}, {}     # one SGD step each: the sharded ones with fc1's weight split over 'model'
    for name in ("train1", "train8", "train8var"):
        step = mx.load_artifact(out / f"{name}.xgraph")
        _, new, _ = step.apply({"data": batch(), "softmax_label": np.arange(BATCH, dtype=np.float32) % 5})
        step.run({"data": batch(), "softmax_label": np.arange(BATCH, dtype=np.float32) % 5})
        steps.update({f"{name}:{k}": v for k, v in step.params.items()})
        step_specs[name] = {k: str(tuple(v.sharding.spec)) for k, v in new.items()} if name != "train1" else {}
    # the variable's sharding attribute, a requested output sharding, and the same made by `xgraph compile`
    outs = {}
    for name in ("var8", "cli8"):
        art = mx.load_artifact(out / f"{name}.xgraph")
        declared = {k: None if v is None else str(tuple(v.spec)) for k, v in art.output_shardings.items()}
        (o,) = art(batch())
        outs[name] = np.asarray(o)
        step_specs[name] = {"declared": declared, "got": str(tuple(o.sharding.spec)),
                            "after": {k: str(tuple(v.spec)) for k, v in art.output_shardings.items()},
                            "per_device": list(o.addressable_shards[0].data.shape)}
    res = {"load_run_s": t1 - t0, "num_devices": art8.num_devices, "mesh": dict(art8.mesh.shape),
           "out_devices": len(o8.sharding.device_set),
           "xla_choice": [before, {k: str(tuple(v.spec)) for k, v in art8.output_shardings.items()},
                          str(tuple(o8.sharding.spec))],
           "sdy": "sdy.sharding" in text or "mhlo.sharding" in text,
           "constraint": "sharding_constraint" in text and '[{"data"}, {"model"}]' in text,
           "per_device_rows": o8.addressable_shards[0].data.shape[0],
           "real_mesh_same_table": again.manifest["sharding"] == art8.manifest["sharding"],
           "bad_batch": _error(lambda: art8(batch(6))), "specs": step_specs,
           "bench_batch": bench_artifact(art8, iters=2, warmup=0).batch}
    np.savez(out / "outputs.npz", one=np.asarray(o1), eight=np.asarray(o8), eight_again=np.asarray(o8_again),
             **steps, **outs)
    (out / "child.json").write_text(json.dumps(res))


def _cli_export(out: Path) -> Artifact:
    """``xgraph compile ... --mesh data=4,model=2`` of the checkpoint of ``mlp(('model', None))``: the
    variable's sharding comes from the symbol JSON, fc2's weight from ``--sharding``."""
    from xgraph import cli
    mx.model.save_checkpoint(str(out / "mlp"), 0, mlp(("model", None)),
                             {k: mx.nd.array(v) for k, v in params().items()}, {})
    argv = ["compile", str(out / "mlp-symbol.json"), str(out / "mlp-0000.params"), "-o", str(out / "cli8.xgraph"),
            "--shape", "data=batch,6", "--mesh", "data=4,model=2", "--sharding", "fc2_weight=None,model",
            "--output-sharding", "softmax_output=data"]
    assert cli.main(argv) == 0
    return Artifact((out / "cli8.xgraph").read_bytes(), fmt.unpack(out / "cli8.xgraph", {})[0],
                    str(out / "cli8.xgraph"))


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    """Export here (one device: only the mesh's shape is needed), then load and run in a child with 8."""
    from multidevice import run_with_devices
    out = tmp_path_factory.mktemp("sharded")
    arts = {"mlp8": mx.export(mlp(), params(), inputs=INPUTS, path=out / "mlp8.xgraph", mesh={"data": 4, "model": 2}),
            "mlp1": mx.export(mlp(), params(), inputs=INPUTS, path=out / "mlp1.xgraph")}
    labelled = {**INPUTS, "softmax_label": (("batch",), "float32")}
    for name, sym, kw in (("train1", mlp(), {}),
                          ("train8", mlp(), {"mesh": {"data": 4, "model": 2},
                                             "input_shardings": {"fc1_weight": ("model", None)}}),
                          ("train8var", mlp(("model", None)), {"mesh": {"data": 4, "model": 2}})):
        arts[name] = mx.export(sym, params(), inputs=labelled, path=out / f"{name}.xgraph", for_training=True,
                               learning_rate=0.5, **kw)
    arts["var8"] = mx.export(mlp(("model", None)), params(), inputs=INPUTS, path=out / "var8.xgraph",
                             mesh={"data": 4, "model": 2}, output_shardings={"softmax_output": ("data", None)})
    arts["cli8"] = _cli_export(out)
    for art in arts.values():      # exported here, so safe to parse: tell the child, as a shared cache folder would
        module_check.trust(art.manifest["members"]["module.jaxexport"], str(out / "cache"))
    run_with_devices(__file__, out, devices=8, XGRAPH_CACHE_DIR=str(out / "cache"))
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
    assert res["bench_batch"] == 4             # xgraph bench's default batch: the smallest that splits over 'data'
    assert res["sdy"] and res["constraint"]                    # partitioning visible in the StableHLO


def test_manifest_records_the_mesh_and_every_spec(eight):
    out, res = eight
    m8, _ = fmt.unpack(out / "mlp8.xgraph", {})
    m1, _ = fmt.unpack(out / "mlp1.xgraph", {})
    assert m8["format_version"] == 2 and m1["format_version"] == 1 and "sharding" not in m1
    assert m8["sharding"] == {"num_devices": 8, "axis_names": ["data", "model"], "mesh_shape": [4, 2],
                              "specs": {"data": "('data',)", **{n: "()" for n in params()}},
                              "result_specs": [None]}
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
    with pytest.raises(mx.ParallelError, match=r"input 'data' of shape \(batch, 6\): sharding \('rows', None\) names "
                                               r"mesh axes \['rows'\], the mesh has \{'data': 4, 'model': 2\}"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh, input_shardings={"data": ("rows", None)})
    with pytest.raises(mx.ParallelError, match=r"input 'data' of shape \(6, 6\): dimension 0 of shape \(6, 6\) \(6\) "
                                               r"does not split evenly over 4 devices"):
        mx.export(mlp(), params(), inputs={"data": ((6, 6), "float32")}, mesh=mesh, input_shardings={"data": ("data",)})
    with pytest.raises(mx.ParallelError, match=r"mesh \{'data': 0\} must map axis names to positive sizes"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh={"data": 0})


def test_sharding_requests_are_checked_on_one_device():
    sym = mx.sym.relu(mx.sym.var("x"))
    with pytest.raises(mx.ParallelError, match="input_shardings needs a mesh"):
        mx.export(sym, inputs={"x": ((4,), "float32")}, input_shardings={"x": ("data",)})
    with pytest.raises(mx.ParallelError, match=r"names \['y'\].*they are \['x'\]"):
        mx.export(sym, inputs={"x": ((4,), "float32")}, mesh=1, input_shardings={"y": ()})
    with pytest.raises(mx.ParallelError, match=r"input 'x' of shape \(4,\): sharding \('model',\) names mesh axes "
                                               r"\['model'\]"):
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


def test_variables_sharding_attributes_are_the_default_specs(eight):
    out, res = eight
    var8, _ = fmt.unpack(out / "var8.xgraph", {})
    assert var8["sharding"]["specs"]["fc1_weight"] == "('model', None)"        # from mx.sym.var(sharding=)
    assert var8["sharding"]["specs"]["fc2_weight"] == "()"
    outs = np.load(out / "outputs.npz")
    np.testing.assert_allclose(outs["var8"], outs["one"], rtol=1e-5, atol=1e-6)
    # a training step: the updated parameter comes back split as its argument, and trains as one device
    assert res["specs"]["train8var"]["fc1_weight"] == "('model', None)"
    assert res["specs"]["train8"]["fc1_weight"] == "('model', None)"
    assert res["specs"]["train8var"]["fc2_weight"] == "()"
    for k in params():
        np.testing.assert_allclose(outs[f"train8var:{k}"], outs[f"train1:{k}"], rtol=1e-5, atol=1e-6)
    # explicit input_shardings win over the attribute; without a mesh the attribute changes nothing
    mesh = {"data": 4, "model": 2}
    over = mx.export(mlp(("model", None)), params(), inputs=INPUTS, mesh=mesh, input_shardings={"fc1_weight": ()})
    assert over.manifest["sharding"]["specs"]["fc1_weight"] == "()"
    plain = mx.export(mlp(("model", None)), params(), inputs=INPUTS)
    assert plain.manifest["format_version"] == 1 and "sharding" not in plain.manifest
    # a bad attribute is refused as the Trainer refuses it: parameter, shape, spec, the mesh's sizes
    with pytest.raises(mx.ParallelError, match=r"export: parameter 'fc1_weight' of shape \(8, 6\) \(the sharding "
                                               r"attribute of its variable\): dimension 0 of shape \(8, 6\) \(8\) does "
                                               r"not split evenly over 3 devices .*\('model', None\).*'model': 3"):
        mx.export(mlp(("model", None)), params(), inputs=INPUTS, mesh={"data": 4, "model": 3})
    with pytest.raises(mx.ParallelError, match=r"parameter 'fc1_weight' of shape \(8, 6\) \(the sharding attribute "
                                               r"of its variable\): sharding \('rows', None\) names mesh axes \['rows'\], "
                                               r"the mesh has \{'data': 4, 'model': 2\}"):
        mx.export(mlp(("rows", None)), params(), inputs=INPUTS, mesh=mesh)
    with pytest.raises(mx.ParallelError, match=r"parameter 'fc1_weight' of shape \(8, 6\) \(the sharding attribute "
                                               r"of its variable\): sharding \('model', 'model'\) uses mesh axis 'model' "
                                               r"twice"):
        mx.export(mlp(("model", "model")), params(), inputs=INPUTS, mesh=mesh)


def test_output_shardings_are_requested_recorded_and_restored(eight):
    out, res = eight
    var8, _ = fmt.unpack(out / "var8.xgraph", {})
    assert var8["sharding"]["result_specs"] == ["('data', None)"]
    m8, _ = fmt.unpack(out / "mlp8.xgraph", {})
    assert m8["sharding"]["result_specs"] == [None]                        # not requested: XLA's choice
    train8, _ = fmt.unpack(out / "train8.xgraph", {})
    specs = dict(zip([r["name"] for r in train8["call_results"]], train8["sharding"]["result_specs"]))
    assert specs == {"softmax_output": None, "fc1_weight": "('model', None)", "fc1_bias": "()",
                     "fc2_weight": "()", "fc2_bias": "()"}
    # XLA's choice: unknown until a call compiled the module, then what the compiled program gave
    assert res["xla_choice"][0] == {"softmax_output": None}
    assert res["xla_choice"][1] == {"softmax_output": res["xla_choice"][2]}
    # loaded over 8 devices: a requested sharding is declared before the call and returned that way
    assert res["specs"]["var8"]["declared"] == {"softmax_output": "('data', None)"}
    assert res["specs"]["var8"]["got"] == "('data', None)" and res["specs"]["var8"]["per_device"] == [4, 5]
    assert res["specs"]["var8"]["after"] == {"softmax_output": "('data', None)"}
    # bad requests name the output, its shape, the spec and the mesh
    mesh = {"data": 4, "model": 2}
    with pytest.raises(mx.ParallelError, match=r"output_shardings names \['fc2_output'\], which are not outputs of "
                                               r"the symbol; they are \['softmax_output'\]"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh, output_shardings={"fc2_output": ()})
    with pytest.raises(mx.ParallelError, match=r"output 'softmax_output' of shape \(batch, 5\): dimension 1 .*\(5\) "
                                               r"does not split evenly over 2 devices .*sharding \(None, 'model'\)"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh, output_shardings={"softmax_output": (None, "model")})
    with pytest.raises(mx.ParallelError, match=r"output 'softmax_output' of shape \(batch, 5\): sharding \('data', "
                                               r"None, None\) has 3 entries for a 2-d array"):
        mx.export(mlp(), params(), inputs=INPUTS, mesh=mesh, output_shardings={"softmax_output": ("data", None, None)})
    with pytest.raises(mx.ParallelError, match="output_shardings needs a mesh"):
        mx.export(mlp(), params(), inputs=INPUTS, output_shardings={"softmax_output": ("data",)})
    # a manifest whose result specs disagree with the module, or are malformed, is refused
    manifest, members = fmt.unpack(out / "var8.xgraph", {})
    reported = any(h is not None for h in
                   mx.load_artifact(out / "var8.xgraph", check_platform=False).exported.out_shardings_hlo)
    # a spec the module contradicts can only be seen where JAX reports the module's result shardings
    # (jax 0.10; jax 0.12's Shardy modules report none)
    for broken in ([None], ["('data', None)", None], ["('rows',)"], [7])[0 if reported else 1:]:
        bad = fmt.pack({k: v for k, v in {**manifest, "sharding": {**manifest["sharding"], "result_specs": broken}}
                        .items() if k != "members"}, members)
        with pytest.raises(mx.ArtifactError, match="result"):
            mx.load_artifact(bad, check_platform=False)


def test_a_sharded_artifact_runs_over_two_processes(eight):
    """tools/launch.py: 2 processes x 4 host devices load the 8-device artifacts with devices='all'."""
    from multidevice import child_env
    out, _ = eight
    cmd = [sys.executable, str(ROOT / "tools" / "launch.py"), "-n", "2", "--host-devices", "4", "--timeout", "90",
           sys.executable, __file__, "worker", str(out)]
    res = subprocess.run(cmd, env=child_env(XGRAPH_CACHE_DIR=str(out / "cache")), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    outs = np.load(out / "outputs.npz")
    for rank in (0, 1):
        got = np.load(out / f"worker{rank}.npz")
        np.testing.assert_allclose(got["out"], outs["one"], rtol=1e-5, atol=1e-6)
        for k in params():             # one SGD step with fc1's weight split over 'model'
            np.testing.assert_allclose(got[f"train:{k}"], outs[f"train1:{k}"], rtol=1e-5, atol=1e-6)
        info = json.loads((out / f"worker{rank}.json").read_text())
        assert (info["devices"], info["local"], info["mesh_processes"]) == (8, 4, [0, 1])
        assert info["addressable_shards"] == 4 and info["spec"] == "('data', None)"
        assert info["too_few"][0] == "ParallelError" and "devices='all'" in info["too_few"][1]


def test_xgraph_compile_makes_sharded_artifacts(eight, capsys):
    out, res = eight
    cli8, _ = fmt.unpack(out / "cli8.xgraph", {})
    t = cli8["sharding"]
    assert (t["axis_names"], t["mesh_shape"], t["num_devices"]) == (["data", "model"], [4, 2], 8)
    assert t["specs"]["fc1_weight"] == "('model', None)"            # the symbol JSON's variable attribute
    assert t["specs"]["fc2_weight"] == "(None, 'model')"            # --sharding
    assert t["specs"]["data"] == "('data',)" and t["result_specs"] == ["('data',)"]     # --output-sharding
    assert res["specs"]["cli8"] == {"declared": {"softmax_output": "('data',)"}, "got": "('data',)",
                                    "after": {"softmax_output": "('data',)"}, "per_device": [4, 5]}
    outs = np.load(out / "outputs.npz")
    np.testing.assert_allclose(outs["cli8"], outs["one"], rtol=1e-5, atol=1e-6)
    from xgraph import cli
    base = ["compile", str(out / "mlp-symbol.json"), str(out / "mlp-0000.params"), "-o", str(out / "bad.xgraph"),
            "--shape", "data=batch,6"]
    for extra, status, words in (
            (["--mesh", "data=4,model=0"], 2, "bad mesh axis 'model=0'"),
            (["--mesh", "data=4,data=2"], 2, "mesh axis 'data' is given twice"),
            (["--sharding", "fc2_weight=model"], 2, "--sharding and --output-sharding need --mesh"),
            (["--mesh", "data=4,model=2", "--sharding", "fc2_weight=a+b"], 2, "'a+b' is not an axis name"),
            (["--mesh", "data=4,model=3"], 1, "parameter 'fc1_weight' of shape (8, 6)"),
            (["--mesh", "data=4,model=2", "--output-sharding", "nope=data"], 1, "output_shardings names ['nope']")):
        try:
            got = cli.main(base + extra)
        except SystemExit as exc:          # argparse's usage errors
            got = exc.code
        err = capsys.readouterr().err
        assert got == status and words in err, (extra, got, err)
    assert not (out / "bad.xgraph").exists()


def worker(out: Path) -> None:
    """One of 2 processes x 4 devices (tools/launch.py): both load the 8-device artifacts over every
    process's devices and make the same calls with the same whole inputs."""
    import jax
    mx.distributed.initialize(timeout=30, heartbeat_timeout=5)
    rank = mx.distributed.rank()
    art = mx.load_artifact(out / "var8.xgraph", devices="all")
    (o,) = art(batch())
    res = {"devices": jax.device_count(), "local": jax.local_device_count(),
           "mesh_processes": sorted({d.process_index for d in art.mesh.devices.flat}),
           "addressable_shards": len(o.addressable_shards), "spec": str(tuple(o.sharding.spec)),
           "too_few": _error(lambda: mx.load_artifact(out / "mlp8.xgraph"))}
    outs = art.run({"data": batch()}, numpy=True)
    step = mx.load_artifact(out / "train8var.xgraph", devices="all")
    step.run({"data": batch(), "softmax_label": np.arange(BATCH, dtype=np.float32) % 5})
    np.savez(out / f"worker{rank}.npz", out=outs["softmax_output"], **{f"train:{k}": v for k, v in step.params.items()})
    (out / f"worker{rank}.json").write_text(json.dumps(res))
    mx.distributed.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(Path(sys.argv[2]))
    else:
        child(Path(sys.argv[1]))
