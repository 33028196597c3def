"""MXNet's model parallelism by placement: ``ctx_group`` attributes and ``group2ctx`` at bind (xgraph/placement.py).

The checks run in a child process with 8 CPU host devices (this file run as a script), which writes what it
measured to OUT/result.json; the tests below read it.  Every placed executor is compared with the ordinary
one-device executor of the same symbol at the same values.

    python tests/test_model_parallel.py OUT
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import xgraph as mx  # noqa: E402

G2C = {"dev1": mx.cpu(1), "dev2": mx.cpu(2)}


def mlp(dropout: bool = False) -> mx.sym.Symbol:
    """The brief's example: fc1 + relu on dev1, fc2 + softmax on dev2 (``data`` has no group)."""
    data = mx.sym.var("data")
    with mx.AttrScope(ctx_group="dev1"):
        h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=16, name="fc1"), act_type="relu", name="relu1")
    with mx.AttrScope(ctx_group="dev2"):
        if dropout:
            h = mx.sym.Dropout(h, p=0.5, name="drop")
        out = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=5, name="fc2"), name="softmax")
    return out


def bn_net() -> mx.sym.Symbol:
    """A dense layer + BatchNorm on dev1 (moving statistics updated there), a dense head on dev2."""
    data = mx.sym.var("data")
    with mx.AttrScope(ctx_group="dev1"):
        h = mx.sym.FullyConnected(data, num_hidden=6, name="fc0")
        h = mx.sym.Activation(mx.sym.BatchNorm(h, name="bn", fix_gamma=False), act_type="relu")
    with mx.AttrScope(ctx_group="dev2"):
        out = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="fc"), name="softmax")
    return out


def branches() -> mx.sym.Symbol:
    """Two branches read the same input on two devices, merged on a third; an ungrouped op follows."""
    x = mx.sym.var("x")
    with mx.AttrScope(ctx_group="a"):
        a = mx.sym.tanh(mx.sym.FullyConnected(x, num_hidden=6, name="fa"), name="ta")
        a = mx.sym.exp(a * 0.5, name="ea")
    with mx.AttrScope(ctx_group="b"):
        b = mx.sym.sigmoid(mx.sym.FullyConnected(x, num_hidden=6, name="fb"), name="sb")
        b = mx.sym.square(b, name="qb")
    with mx.AttrScope(ctx_group="c"):
        m = mx.sym.elemwise_mul(a, b, name="merge")
    return mx.sym.Group([mx.sym.sum(m * 3.0, axis=1, name="total"), a])   # `total` has no group; `a` is an output


def _fill(ex, ref, seed: int = 0, labels: dict | None = None) -> None:
    rs = np.random.RandomState(seed)
    for n, arr in ref.arg_dict.items():
        v = rs.uniform(-1, 1, arr.shape).astype(np.float32)
        if labels and n in labels:
            v = (rs.rand(*arr.shape) * labels[n]).astype(np.int32).astype(np.float32)
        arr[:] = v
        ex.arg_dict[n][:] = v
    for n, arr in ref.aux_dict.items():
        v = rs.uniform(0.5, 1.5, arr.shape).astype(np.float32)
        arr[:] = v
        ex.aux_dict[n][:] = v


def _dev(a) -> int:
    return next(iter((a.data if hasattr(a, "data") else a).devices())).id


def _err(a, b) -> float:
    return float(np.abs(np.asarray(a.asnumpy(), np.float64) - np.asarray(b.asnumpy(), np.float64)).max())


def _grads(ex, ref) -> dict:
    return {n: _err(g, ref.grad_dict[n]) for n, g in ex.grad_dict.items() if g is not None}


def child(out_dir: str) -> None:   # noqa: C901 - one script, one report
    import time
    from multidevice import xgraph_errors
    t0 = time.perf_counter()
    res: dict = {"times": {}}

    def lap(name: str) -> None:
        res["times"][name] = round(time.perf_counter() - t0, 2)
    # 1. the brief's MLP: a fused training step, then the placement of every array
    sym = mlp()
    ex = sym.simple_bind(mx.cpu(0), data=(8, 10), group2ctx=G2C)
    ref = sym.simple_bind(mx.cpu(0), data=(8, 10))
    _fill(ex, ref, labels={"softmax_label": 5})
    for e in (ex, ref):
        e.forward(is_train=True)
        e.backward()
    res["mlp"] = {"segments": [[str(s.ctx), [n.name for n in s.nodes]] for s in ex.segments],
                  "out_err": _err(ex.outputs[0], ref.outputs[0]), "grad_err": _grads(ex, ref),
                  "arg_dev": {n: _dev(a) for n, a in ex.arg_dict.items()},
                  "grad_dev": {n: _dev(g) for n, g in ex.grad_dict.items() if g is not None},
                  "out_dev": _dev(ex.outputs[0]), "ref_out_dev": _dev(ref.outputs[0]),
                  "memory": ex.memory_report(), "ref_memory": ref.memory_report()}
    # inference forward, and the intermediate values where the monitor sees them
    seen: dict = {}
    ex.set_monitor_callback(lambda name, arr: seen.__setitem__(name, _dev(arr)))
    out = ex.forward(is_train=False)[0]
    res["mlp"]["infer_err"] = _err(out, ref.forward(is_train=False)[0])
    res["mlp"]["monitor_dev"] = seen
    ex.set_monitor_callback(None)
    # outputs read between forward and backward (the residual-keeping path), with head gradients ignored
    ex.forward(is_train=True)
    first = ex.outputs[0].asnumpy()
    ex.backward()
    res["mlp"]["split_err"] = float(np.abs(first - ref.outputs[0].asnumpy()).max())
    res["mlp"]["split_grad_err"] = _grads(ex, ref)

    lap("1")
    # 2. a training loop (plain SGD over the executors' arrays) equals the one-device one
    ex = sym.simple_bind(mx.cpu(0), data=(8, 10), group2ctx=G2C)
    ref = sym.simple_bind(mx.cpu(0), data=(8, 10))
    _fill(ex, ref, seed=1, labels={"softmax_label": 5})
    start = ex.arg_dict["fc1_weight"].asnumpy()
    rs = np.random.RandomState(2)
    for _ in range(4):
        batch = rs.uniform(-1, 1, (8, 10)).astype(np.float32)
        label = rs.randint(0, 5, 8).astype(np.float32)
        for e in (ex, ref):
            e.forward(is_train=True, data=batch, softmax_label=label)
            e.backward()
            for n in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"):
                e.arg_dict[n][:] = e.arg_dict[n].data - 0.5 * e.grad_dict[n].data
    res["loop"] = {"param_err": {n: _err(ex.arg_dict[n], ref.arg_dict[n]) for n in ex.arg_dict},
                   "param_dev": {n: _dev(a) for n, a in ex.arg_dict.items()},
                   "moved": float(np.abs(ex.arg_dict["fc1_weight"].asnumpy() - start).max())}

    lap("2")
    # 3. BatchNorm's moving statistics are updated on dev1, as on one device
    sym = bn_net()
    ex = sym.simple_bind(mx.cpu(0), data=(8, 5), group2ctx=G2C)
    ref = sym.simple_bind(mx.cpu(0), data=(8, 5))
    _fill(ex, ref, seed=3, labels={"softmax_label": 3})
    before = ex.aux_dict["bn_moving_mean"].asnumpy()
    for e in (ex, ref):
        e.forward(is_train=True)
        e.backward()
    res["bn"] = {"aux_err": {n: _err(a, ref.aux_dict[n]) for n, a in ex.aux_dict.items()},
                 "aux_dev": {n: _dev(a) for n, a in ex.aux_dict.items()},
                 "aux_moved": float(np.abs(ex.aux_dict["bn_moving_mean"].asnumpy() - before).max()),
                 "grad_err": _grads(ex, ref), "out_err": _err(ex.outputs[0], ref.outputs[0]),
                 "infer_err": _err(ex.forward()[0], ref.forward()[0])}

    lap("3")
    # 4. grad_req='add' accumulates over two backwards; 'null' leaves a gradient out
    sym = mlp()
    reqs = {"data": "null", "fc1_weight": "add", "fc1_bias": "add", "fc2_weight": "add", "fc2_bias": "write",
            "softmax_label": "null"}
    ex = sym.simple_bind(mx.cpu(0), grad_req=reqs, data=(8, 10), group2ctx=G2C)
    ref = sym.simple_bind(mx.cpu(0), grad_req=reqs, data=(8, 10))
    _fill(ex, ref, seed=4, labels={"softmax_label": 5})
    once = None
    for _ in range(2):
        for e in (ex, ref):
            e.forward(is_train=True)
            e.backward()
        once = ex.grad_dict["fc1_weight"].asnumpy() if once is None else once
    res["add"] = {"grad_err": _grads(ex, ref), "null": [n for n, g in ex.grad_dict.items() if g is None],
                  "doubled_err": float(np.abs(ex.grad_dict["fc1_weight"].asnumpy() - 2 * once).max()),
                  "once": float(np.abs(once).max())}

    lap("4")
    # 5. random ops draw what the one-device executor draws (Dropout on dev2)
    sym = mlp(dropout=True)
    ex = sym.simple_bind(mx.cpu(0), data=(8, 10), group2ctx=G2C)
    ref = sym.simple_bind(mx.cpu(0), data=(8, 10))
    _fill(ex, ref, seed=5, labels={"softmax_label": 5})
    for e in (ex, ref):
        mx.random.seed(11)
        e.forward(is_train=True)
        e.backward()
    res["dropout"] = {"out_err": _err(ex.outputs[0], ref.outputs[0]), "grad_err": _grads(ex, ref),
                      "fc1_grad_zero_rows": int((np.abs(ex.grad_dict["fc1_weight"].asnumpy()).sum(1) == 0).sum())}

    lap("5")
    # 6. branches on two devices merged on a third; an ungrouped op follows its first input; head gradients
    sym = branches()
    g2c = {"a": mx.cpu(3), "b": mx.cpu(4), "c": mx.cpu(5)}
    ex = sym.simple_bind(mx.cpu(0), x=(4, 3), group2ctx=g2c)
    ref = sym.simple_bind(mx.cpu(0), x=(4, 3))
    _fill(ex, ref, seed=6)
    heads = [mx.nd.array(np.arange(4, dtype=np.float32) - 1.5), mx.nd.ones((4, 6)) * 0.25]
    for e in (ex, ref):
        e.forward(is_train=True)
        e.backward(out_grads=heads)
    res["branches"] = {"segments": [[str(s.ctx), [n.name for n in s.nodes]] for s in ex.segments],
                       "out_err": [_err(a, b) for a, b in zip(ex.outputs, ref.outputs)],
                       "out_dev": [_dev(o) for o in ex.outputs], "grad_err": _grads(ex, ref),
                       "grad_dev": {n: _dev(g) for n, g in ex.grad_dict.items()}}
    # bind (not simple_bind): a variable is where its array is
    args = {n: mx.nd.array(ref.arg_dict[n].asnumpy(), ctx=mx.cpu(6 if n == "x" else 0)) for n in ref.arg_dict}
    grads = {n: mx.nd.zeros(a.shape, ctx=mx.cpu(7)) for n, a in ref.arg_dict.items()}
    bound = sym.bind(mx.cpu(0), args=args, args_grad=grads, group2ctx=g2c)
    bound.forward(is_train=True)
    bound.backward(out_grads=heads)
    res["bind"] = {"out_err": [_err(a, b) for a, b in zip(bound.outputs, ref.outputs)],
                   "grad_err": _grads(bound, ref), "arg_dev": {n: _dev(a) for n, a in bound.arg_dict.items()},
                   "grad_dev": {n: _dev(g) for n, g in bound.grad_dict.items()}}
    # reshape keeps the placement
    small = ex.reshape(x=(2, 3))
    res["reshape"] = {"segments": len(small.segments), "x_dev": _dev(small.arg_dict["x"]),
                      "out_dev": [_dev(o) for o in small.forward()], "shape": list(small.outputs[1].shape)}

    lap("6")
    # an op reading `x` first runs on the bind context; a node without inputs where its consumer is;
    # a variable and an integer output; an aux state outside BatchNorm's group is copied in and back
    x = mx.sym.var("x")
    mm = mx.sym.var("bn_moving_mean")
    with mx.AttrScope(ctx_group="a"):
        h = mx.sym.BatchNorm(mx.sym.FullyConnected(x, num_hidden=4, name="fc"), moving_mean=mm, name="bn")
        h = h + mx.sym.ones((3, 4), name="one")
    y = mx.sym.exp(x, name="ex0")
    with mx.AttrScope(ctx_group="b"):
        z = mx.sym.sum(h, axis=1, name="sh") + mx.sym.sum(y, axis=1, name="sy")
    sym = mx.sym.Group([z, x, mx.sym.argmax(h, axis=1, name="am")])
    ex = sym.simple_bind(mx.cpu(0), x=(3, 5), group2ctx=g2c)
    ref = sym.simple_bind(mx.cpu(0), x=(3, 5))
    _fill(ex, ref, seed=8)
    for e in (ex, ref):
        e.forward(is_train=True)
        e.backward(out_grads=[mx.nd.ones((3,)), mx.nd.ones((3, 5)), None])
    where = {n.name: str(s.ctx) for s in ex.segments for n in s.nodes}
    res["mixed"] = {"where": {k: where[k] for k in ("one", "ex0", "sy", "am")},
                    "out_err": [_err(a, b) for a, b in zip(ex.outputs, ref.outputs)],
                    "out_dev": [_dev(o) for o in ex.outputs], "grad_err": _grads(ex, ref),
                    "aux_err": {n: _err(a, ref.aux_dict[n]) for n, a in ex.aux_dict.items()},
                    "aux_dev": {n: _dev(a) for n, a in ex.aux_dict.items()}}

    # 7. a placement on one device is the ordinary executor (one program)
    one = mlp().simple_bind(mx.cpu(0), data=(8, 10), group2ctx={"dev1": mx.cpu(0), "dev2": mx.cpu(0)})
    res["one_device"] = {"segments": len(one.segments)}

    lap("7")
    # 8. Module(group2ctxs=): forward/backward through the placed executor; fit and update train the parameters
    #    where they are, as the fused trainer of the one-device module does
    rs = np.random.RandomState(7)
    it = mx.io.NDArrayIter(rs.rand(24, 10).astype(np.float32), np.arange(24) % 5, batch_size=8)
    mods = []
    for g in (G2C, None):
        mod = mx.mod.Module(mlp(), group2ctxs=g)
        mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
        mod.init_params(mx.init.Xavier())
        mods.append(mod)
    mods[0].set_params(*mods[1].get_params())
    batch = next(iter(it))
    for mod in mods:
        mod.forward_backward(batch)
    res["module"] = {"out_err": _err(mods[0].get_outputs()[0], mods[1].get_outputs()[0]),
                     "out_dev": _dev(mods[0].get_outputs()[0]),
                     "grad_err": _grads(mods[0]._exec, mods[1]._exec),
                     "predict_shape": list(mods[0].predict(it).shape)}
    start_w = mods[1].get_params()[0]["fc1_weight"].asnumpy()
    metrics = []
    for mod in mods:
        it.reset()
        metric = mx.metric.create("ce")
        mod.fit(it, num_epoch=1, optimizer="sgd", eval_metric=metric, progress_bar=False,
                optimizer_params={"learning_rate": 0.5, "momentum": 0.9, "wd": 1e-3})
        metrics.append(metric.get()[1])
    placed, one = (m.get_params()[0] for m in mods)
    res["module"]["fit_err"] = {n: _err(placed[n], one[n]) for n in one}
    res["module"]["fit_moved"] = float(np.abs(one["fc1_weight"].asnumpy() - start_w).max())
    res["module"]["fit_dev"] = {n: _dev(mods[0]._exec.arg_dict[n]) for n in one}
    res["module"]["metrics"] = metrics
    for mod in mods:                       # MXNet's step by step: forward_backward, update
        mod.forward_backward(batch)
        mod.update()
    placed, one = (m.get_params()[0] for m in mods)
    res["module"]["update_err"] = {n: _err(placed[n], one[n]) for n in one}
    try:
        mods[0].save_optimizer_states(str(Path(out_dir, "opt.states")))
        res["module"]["refused"] = None
    except mx.XGraphError as exc:
        res["module"]["refused"] = [type(exc).__name__, str(exc)]
    lap("8")
    # 9. bad input
    cases = {
        "missing_group": lambda: mlp().simple_bind(mx.cpu(0), data=(8, 10), group2ctx={"dev1": mx.cpu(1)}),
        "not_a_context": lambda: mlp().simple_bind(mx.cpu(0), data=(8, 10),
                                                   group2ctx={"dev1": mx.cpu(1), "dev2": "gpu"}),
        "no_such_device": lambda: mlp().simple_bind(mx.cpu(0), data=(8, 10),
                                                    group2ctx={"dev1": mx.cpu(1), "dev2": mx.cpu(9)}),
        "not_a_dict": lambda: mlp().simple_bind(mx.cpu(0), data=(8, 10), group2ctx=[mx.cpu(1)]),
        "module_data_parallel": lambda: mx.mod.Module(mlp(), context=[mx.cpu(0), mx.cpu(1)], group2ctxs=G2C),
        "passes": lambda: mlp().simple_bind(mx.cpu(0), data=(8, 10), group2ctx=G2C, passes=["amp"]),
    }
    res["errors"] = xgraph_errors(cases)
    lap("9")
    Path(out_dir, "result.json").write_text(json.dumps(res, indent=1))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from multidevice import run_with_devices
    out = tmp_path_factory.mktemp("model_parallel")
    run_with_devices(__file__, out, devices=8)
    return json.loads((out / "result.json").read_text())


TOL = 1e-5


def test_the_brief_mlp_runs_in_two_segments_on_the_groups_devices(result):
    r = result["mlp"]
    assert r["segments"] == [["cpu(1)", ["fc1", "relu1"]], ["cpu(2)", ["fc2", "softmax"]]]
    # variables: where their group is (data has none: the bind context); gradients with their arguments
    assert r["arg_dev"] == {"data": 0, "fc1_weight": 1, "fc1_bias": 1, "fc2_weight": 2, "fc2_bias": 2,
                            "softmax_label": 2}
    assert r["grad_dev"] == {n: d for n, d in r["arg_dev"].items()}
    assert r["out_dev"] == 2 and r["ref_out_dev"] == 0
    # the values inside: fc1's and relu's outputs stay on dev1, fc2's on dev2
    assert r["monitor_dev"]["fc1_output"] == 1 and r["monitor_dev"]["relu1_output"] == 1
    assert r["monitor_dev"]["fc2_output"] == 2 and r["monitor_dev"]["softmax_output"] == 2


def test_outputs_and_every_gradient_equal_one_device(result):
    r = result["mlp"]
    assert r["out_err"] < TOL and r["infer_err"] < TOL and r["split_err"] < TOL
    assert set(r["grad_err"]) == {"data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "softmax_label"}
    assert max(r["grad_err"].values()) < TOL and max(r["split_grad_err"].values()) < TOL
    # the residuals kept for backward are the same arrays, spread over the segments
    assert r["memory"]["outputs"] == r["ref_memory"]["outputs"]
    assert 0 < r["memory"]["saved_for_backward"]


def test_a_training_loop_equals_one_device(result):
    r = result["loop"]
    assert r["moved"] > 1e-3                     # the parameters did train
    assert max(r["param_err"].values()) < 1e-5
    assert r["param_dev"]["fc1_weight"] == 1 and r["param_dev"]["fc2_weight"] == 2   # updates stay in place


def test_batchnorm_moving_statistics_update_on_their_device(result):
    r = result["bn"]
    assert r["aux_moved"] > 1e-4
    assert max(r["aux_err"].values()) < TOL and r["aux_dev"] == {"bn_moving_mean": 1, "bn_moving_var": 1}
    assert max(r["grad_err"].values()) < 1e-4 and r["out_err"] < TOL and r["infer_err"] < TOL


def test_grad_req_add_and_null(result):
    r = result["add"]
    assert sorted(r["null"]) == ["data", "softmax_label"]
    assert max(r["grad_err"].values()) < TOL and r["doubled_err"] < TOL and r["once"] > 1e-3


def test_random_ops_draw_as_on_one_device(result):
    r = result["dropout"]
    assert r["out_err"] < TOL and max(r["grad_err"].values()) < TOL


def test_branches_on_three_devices_and_bind_with_arrays_placed(result):
    r = result["branches"]
    # one segment per device: the two branches are not interleaved; `total` follows its input to cpu(5)
    assert [s[0] for s in r["segments"]] == ["cpu(3)", "cpu(4)", "cpu(5)"]
    assert r["segments"][2][1][0] == "merge" and "total" in r["segments"][2][1]
    assert r["out_dev"] == [5, 3] and max(r["out_err"]) < TOL and max(r["grad_err"].values()) < TOL
    assert r["grad_dev"] == {"x": 0, "fa_weight": 3, "fa_bias": 3, "fb_weight": 4, "fb_bias": 4}
    b = result["bind"]
    assert max(b["out_err"]) < TOL and max(b["grad_err"].values()) < TOL
    assert b["arg_dev"] == {"x": 6, "fa_weight": 0, "fa_bias": 0, "fb_weight": 0, "fb_bias": 0}
    assert set(b["grad_dev"].values()) == {7}          # bind keeps the given gradient arrays where they are
    assert result["reshape"] == {"segments": 3, "x_dev": 0, "out_dev": [5, 3], "shape": [2, 6]}


def test_mxnet_placement_rules_for_ungrouped_nodes(result):
    r = result["mixed"]
    # `ex0` has no group and reads `x` (bind context); `ones` has no inputs and goes where its consumer is
    assert r["where"] == {"one": "cpu(3)", "ex0": "cpu(0)", "sy": "cpu(4)", "am": "cpu(3)"}
    assert r["out_dev"] == [4, 0, 3]                    # `x` itself is an output: its own array
    assert max(r["out_err"]) < TOL and max(r["grad_err"].values()) < TOL
    assert max(r["aux_err"].values()) < TOL and r["aux_dev"] == {"bn_moving_mean": 0, "bn_moving_var": 3}


def test_one_device_placement_is_the_ordinary_executor(result):
    assert result["one_device"]["segments"] == 0


def test_module_places_groups_and_fits_as_one_device(result):
    r = result["module"]
    assert r["out_err"] < TOL and r["out_dev"] == 2 and max(r["grad_err"].values()) < TOL
    assert r["predict_shape"] == [24, 5]
    # fit (SGD with momentum and weight decay, 3 batches) and update equal the one-device fused trainer
    assert r["fit_moved"] > 1e-2
    assert max(r["fit_err"].values()) < 1e-5 and max(r["update_err"].values()) < 1e-5
    assert abs(r["metrics"][0] - r["metrics"][1]) < 1e-5
    assert r["fit_dev"] == {"fc1_weight": 1, "fc1_bias": 1, "fc2_weight": 2, "fc2_bias": 2}
    kind, msg = r["refused"]
    assert kind == "UnsupportedFeatureError" and "Module.save_optimizer_states" in msg and "several devices" in msg


def test_bad_group2ctx_says_what_is_wrong(result):
    e = result["errors"]
    kind, msg = e["missing_group"]
    assert kind == "ConfigError" and "ctx_group 'dev2'" in msg and "variable 'fc2_weight'" in msg
    assert "does not map to a context" in msg and "['dev1']" in msg
    kind, msg = e["not_a_context"]
    assert kind == "ConfigError" and "group2ctx['dev2'] is 'gpu'" in msg and "expected a context" in msg
    kind, msg = e["no_such_device"]
    assert kind == "DeviceError" and "group2ctx['dev2']" in msg and "cpu(9) does not exist" in msg
    assert e["not_a_dict"][0] == "ConfigError" and "must map ctx_group names to contexts" in e["not_a_dict"][1]
    kind, msg = e["module_data_parallel"]
    assert kind == "UnsupportedFeatureError" and "data parallel over 2 contexts" in msg
    kind, msg = e["passes"]
    assert kind == "UnsupportedFeatureError" and "passes=['amp']" in msg and "'dev2': 'cpu(2)'" in msg


def test_one_device_process_refuses_a_device_it_does_not_have():
    with pytest.raises(mx.DeviceError, match=r"group2ctx\['dev1'\]: device cpu\(1\) does not exist"):
        mlp().simple_bind(mx.cpu(0), data=(8, 10), group2ctx={"dev1": mx.cpu(1), "dev2": mx.cpu(0)})


if __name__ == "__main__":
    child(sys.argv[1])
