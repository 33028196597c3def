"""Parameters stored split over a mesh: ``mx.sym.var(name, sharding=...)`` and ``Trainer(param_shardings=)``.

The 8-device checks run in a child process (this file run as a script): jax in the test process has already
started with one CPU device, and ``--xla_force_host_platform_device_count`` is read at start.

    python tests/test_param_sharding.py OUT     # 8 host devices: results go to OUT/result.json (+ npz files)
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import xgraph as mx  # noqa: E402
from xgraph import parallel  # noqa: E402
from xgraph.train.trainer import Trainer  # noqa: E402

BATCH, STEPS = 16, 3
#: fc1_weight's split comes from its variable, the others from param_shardings
GIVEN = {"fc1_bias": ("model",), "fc2_weight": (None, "model")}


def mlp(fc1_spec=("model", None)) -> mx.sym.Symbol:
    """data (16, 12) -> fc1 (8) -> relu -> fc2 (4) -> softmax, fc1's weight a variable carrying ``fc1_spec``."""
    w1 = mx.sym.var("fc1_weight", sharding=fc1_spec) if fc1_spec is not None else mx.sym.var("fc1_weight")
    h = mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("data"), weight=w1, num_hidden=8, name="fc1"))
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=4, name="fc2"), name="softmax")


def dataset() -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(0)
    x = rs.rand(BATCH * STEPS, 12).astype(np.float32)
    return x, (rs.rand(BATCH * STEPS) * 4).astype(np.int32).astype(np.float32)


def batch(s: int) -> mx.io.DataBatch:
    x, y = dataset()
    return mx.io.DataBatch([x[s * BATCH:(s + 1) * BATCH]], [y[s * BATCH:(s + 1) * BATCH]])


def trainer(sym: mx.sym.Symbol, devices, param_shardings=None, arg_params=None) -> Trainer:
    mx.random.seed(4)
    return Trainer(sym, "adam", {"learning_rate": 0.05}, data_shapes=[("data", (BATCH, 12))],
                   label_shapes=[("softmax_label", (BATCH,))], initializer=mx.init.Xavier(), seed=1,
                   devices=devices, param_shardings=param_shardings, arg_params=arg_params)


def host(tr: Trainer) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in tr.params.items()}


def error(make) -> list | None:
    try:
        make()
    except mx.XGraphError as e:
        return [type(e).__name__, str(e)]
    return None


def child(out: str) -> None:
    import jax
    assert jax.device_count() == 8, jax.devices()
    res: dict = {}
    mesh = parallel.make_mesh(8, ("data", "model"), (4, 2))
    sharded = trainer(mlp(), mesh, GIVEN)
    replicated = trainer(mlp(None), mesh)
    first = sharded.params["fc1_weight"]
    init = np.asarray(first)
    for s in range(STEPS):
        sharded.step(batch(s))
        replicated.step(batch(s))
    res["moved"] = float(np.abs(np.asarray(sharded.params["fc1_weight"]) - init).max())
    res["donated"] = first.is_deleted()                 # the step reused the split buffer
    res["trace_count"] = sharded.trace_count
    res["specs"] = {n: list(map(str, v.sharding.spec)) if v.sharding.spec else [] for n, v in sharded.params.items()}
    res["shards"] = {n: sorted({tuple(sh.data.shape) for sh in v.addressable_shards})
                     for n, v in sharded.params.items()}
    res["state_specs"] = {n: [str(tuple(a.sharding.spec)) for a in jax.tree_util.tree_leaves(st)]
                          for n, st in zip(sharded.param_names, sharded.opt_state)}
    res["table"] = {n: str(tuple(sh.spec)) for n, sh in sharded.param_shardings.items()}
    res["hlo_split"] = "f32[4,12]" in sharded.compiled_step_text(batch(0))    # fc1_weight: 8 rows / 2 per device
    np.savez(os.path.join(out, "sharded.npz"), **host(sharded))
    np.savez(os.path.join(out, "replicated.npz"), **host(replicated))

    # checkpoints: gathered whole on save, split again on load; optimizer states too
    arg, aux = sharded.get_params()
    res["gathered"] = {n: [list(v.shape), len(v.data.sharding.device_set)] for n, v in arg.items()}
    res["gathered_equal"] = all(np.array_equal(v.asnumpy(), np.asarray(sharded.params[n])) for n, v in arg.items())
    prefix = os.path.join(out, "ckpt")
    mx.model.save_checkpoint(prefix, 1, mlp(), arg, aux)
    sharded.save_states(prefix + ".states")
    sym, arg2, aux2 = mx.model.load_checkpoint(prefix, 1)
    back = trainer(sym, mesh, GIVEN, arg_params=arg2)       # fc1_weight's split comes back with the symbol
    back.load_states(prefix + ".states")
    res["back_specs"] = {n: str(tuple(v.sharding.spec)) for n, v in back.params.items()}
    res["back_state_specs"] = {n: [str(tuple(a.sharding.spec)) for a in jax.tree_util.tree_leaves(st)]
                               for n, st in zip(back.param_names, back.opt_state)}
    res["back_equal"] = all(np.array_equal(np.asarray(back.params[n]), np.asarray(v))
                            for n, v in sharded.params.items())
    sharded.step(batch(0))
    back.step(batch(0))
    res["resumed_diff"] = max(float(np.abs(np.asarray(back.params[n]) - np.asarray(v)).max())
                              for n, v in sharded.params.items())
    back.set_params({"fc2_weight": np.ones((4, 8), np.float32)})
    res["set_params_spec"] = str(tuple(back.params["fc2_weight"].sharding.spec))

    # Module over 8 contexts: fc1_weight split over 'data' (its variable), fc2_weight by param_shardings
    mods = {}
    for split in (True, False):
        mx.random.seed(2)
        mod = mx.mod.Module(mlp(("data", None) if split else None), context=[mx.cpu(i) for i in range(8)],
                            param_shardings={"fc2_weight": (None, "data")} if split else None)
        x, y = dataset()
        mod.fit(mx.io.NDArrayIter(x, y, batch_size=BATCH), num_epoch=1, optimizer="adam",
                optimizer_params={"learning_rate": 0.05}, initializer=mx.init.Xavier(), progress_bar=False)
        if split:
            res["module_specs"] = {n: str(tuple(mod._trainer.params[n].sharding.spec))
                                   for n in ("fc1_weight", "fc2_weight")}
        mods[split] = {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
    res["module_diff"] = max(float(np.abs(mods[True][k] - mods[False][k]).max()) for k in mods[True])

    # bad input: the parameter, its shape, the spec and the mesh's axis sizes in the message
    res["errors"] = {
        "axis": error(lambda: trainer(mlp(), mesh, {"fc2_weight": ("rows", None)})),
        "uneven": error(lambda: trainer(mlp(), mesh, {"fc2_weight": (("data", "model"), None)})),
        "rank": error(lambda: trainer(mlp(), mesh, {"fc1_bias": ("model", None)})),
        "twice": error(lambda: trainer(mlp(), mesh, {"fc2_weight": ("model", "model")})),
        "name": error(lambda: trainer(mlp(), mesh, {"fc3_weight": ("model",)})),
        "input": error(lambda: trainer(mlp(), mesh, {"data": ("data",)})),
        "module_axis": error(lambda: mx.mod.Module(mlp(), context=[mx.cpu(i) for i in range(8)]).fit(
            mx.io.NDArrayIter(*dataset(), batch_size=BATCH), num_epoch=1, progress_bar=False)),
    }
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f)


# -- the tests ------------------------------------------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    from multidevice import run_with_devices
    out = tmp_path_factory.mktemp("param_sharding")
    run_with_devices(__file__, out, devices=8)
    return out, json.loads((out / "result.json").read_text())


def test_the_sharding_of_a_variable_is_an_attribute_kept_in_json():
    w = mx.sym.var("fc1_weight", sharding=("model", None))
    assert w.attr("__sharding__") == "('model', None)"
    assert mx.sym.with_sharding(mx.sym.var("fc1_weight"), "model,None").attr("__sharding__") == "('model', None)"
    loaded = mx.sym.load_json(mlp().tojson())
    assert loaded.attr_dict()["fc1_weight"]["__sharding__"] == "('model', None)"
    with pytest.raises(mx.ParallelError, match="not an axis name"):
        mx.sym.var("w", sharding="(model+1,)")


def test_one_device_trains_as_before_and_still_checks_names():
    tr = trainer(mlp(), None, GIVEN)            # no mesh: nothing is split, nothing to split over
    tr.step(batch(0))
    assert tr.param_shardings == {} and tr.num_update == 1
    with pytest.raises(mx.ParallelError, match=r"'fc3_weight' is not a parameter of the symbol; its parameters "
                                               r"are \['fc1_bias', 'fc1_weight', 'fc2_bias', 'fc2_weight'\]"):
        trainer(mlp(), None, {"fc3_weight": ("model",)})
    with pytest.raises(mx.ParallelError, match="variable 'data' carries a sharding"):
        trainer(mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.var("data", sharding=("data",)), num_hidden=4,
                                                           name="fc2"), name="softmax"), None)


def test_parameters_and_optimizer_states_are_stored_split(eight):
    res = eight[1]
    assert res["table"] == {"fc1_weight": "('model', None)", "fc1_bias": "('model',)", "fc2_weight": "(None, 'model')"}
    assert res["specs"]["fc1_weight"] == ["model", "None"] and res["specs"]["fc1_bias"] == ["model"]
    assert res["specs"]["fc2_weight"] == ["None", "model"] and res["specs"]["fc2_bias"] == []
    # each device holds its slice: 8 units over a 'model' axis of 2
    assert res["shards"] == {"fc1_weight": [[4, 12]], "fc1_bias": [[4]], "fc2_weight": [[4, 4]], "fc2_bias": [[4]]}
    assert res["state_specs"]["fc1_weight"] == ["('model', None)"] * 2      # adam's mean and variance
    assert res["state_specs"]["fc2_bias"] == ["()"] * 2
    assert res["hlo_split"]
    assert res["trace_count"] == 1 and res["donated"]      # one donated program for every step


def test_split_training_matches_replicated(eight):
    out = eight[0]
    split, whole = dict(np.load(out / "sharded.npz")), dict(np.load(out / "replicated.npz"))
    assert set(split) == set(whole)
    for k in split:
        np.testing.assert_allclose(split[k], whole[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert eight[1]["moved"] > 1e-3            # the steps did train
    assert eight[1]["module_diff"] < 1e-5
    assert eight[1]["module_specs"] == {"fc1_weight": "('data', None)", "fc2_weight": "(None, 'data')"}


def test_checkpoints_gather_and_load_split_again(eight):
    res = eight[1]
    assert res["gathered"]["fc1_weight"] == [[8, 12], 1] and res["gathered"]["fc2_weight"] == [[4, 8], 1]
    assert res["gathered_equal"] and res["back_equal"]
    assert res["back_specs"] == {"fc1_weight": "('model', None)", "fc1_bias": "('model',)",
                                 "fc2_weight": "(None, 'model')", "fc2_bias": "()"}
    assert res["back_state_specs"]["fc2_weight"] == ["(None, 'model')"] * 2
    assert res["resumed_diff"] == 0.0           # the loaded optimizer state continues the same run
    assert res["set_params_spec"] == "(None, 'model')"


def test_bad_parameter_shardings_say_what_is_wrong(eight):
    errors = eight[1]["errors"]
    assert all(e is not None and e[0] == "ParallelError" for e in errors.values()), errors
    axis = errors["axis"][1]
    assert "parameter 'fc2_weight' of shape (4, 8)" in axis and "['rows']" in axis
    assert "{'data': 4, 'model': 2}" in axis
    uneven = errors["uneven"][1]
    assert "parameter 'fc2_weight' of shape (4, 8): dimension 0" in uneven and "8 devices" in uneven
    assert "(('data', 'model'), None)" in uneven and "{'data': 4, 'model': 2}" in uneven
    assert "parameter 'fc1_bias' of shape (8,)" in errors["rank"][1] and "2 entries for a 1-d" in errors["rank"][1]
    assert "{'data': 4, 'model': 2}" in errors["rank"][1]
    assert "uses mesh axis 'model' twice" in errors["twice"][1]
    assert "'fc3_weight' is not a parameter" in errors["name"][1] and "fc1_weight" in errors["name"][1]
    assert "'data' is an input" in errors["input"][1]
    assert "parameter 'fc1_weight'" in errors["module_axis"][1] and "{'data': 8}" in errors["module_axis"][1]


if __name__ == "__main__":
    child(sys.argv[1])
