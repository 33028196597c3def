"""The ``channels_last`` pass: same outputs and gradients as the NCHW graph, transposes only at
the layout's edges, weights transposed once (constants XLA folds when parameters are frozen)."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import case_names, load_case
from pass_helpers import grads, run_graph
from xgraph.passes import optimize

#: net_mobilenet0_25 compiles for ~50 s here (depthwise convolutions in both layouts, with
#: gradients); the executor tests below and tests/test_executor_opt.py cover that network
CASES = [c for c in case_names() if c != "net_mobilenet0_25"]


def _ops(graph):
    return [n.op.name for n in graph.topo_order() if n.op is not None]


def _data_transposes(graph):
    """Transposes of activations (not of convolution weights)."""
    return [n for n in graph.topo_order() if n.op is not None and n.op.name == "transpose"
            and not n.inputs[0].node.name.endswith("_weight")]


@pytest.mark.parametrize("name", CASES)
def test_matches_the_nchw_graph_on_every_reference_case(name):
    case = load_case(name)
    values = {**case.args(), **case.aux}
    shapes = {k: v.shape for k, v in values.items()}
    res = optimize(case.symbol.graph, passes=["channels_last"], shapes=shapes,
                   dtypes={k: v.dtype for k, v in values.items()}, for_training=True, verify=True)
    if not any(n.op is not None and n.op.name == "Convolution" for n in case.symbol.graph.topo_order()):
        assert _ops(res.graph) == _ops(case.symbol.graph)   # nothing to move
        return
    ref, got = run_graph(case.symbol.graph, values, jit=True), run_graph(res.graph, values, jit=True)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    if case.meta["has_grad"]:   # the gradient runs the training forward (batch statistics...) too
        rng = np.random.default_rng(0)
        cots = [rng.uniform(-1, 1, o.shape).astype(o.dtype) for o in ref]
        want = grads(case.symbol.graph, values, cots, jit=True)
        have = grads(res.graph, values, cots, jit=True)
        for k, v in want.items():
            # whole-array relative error: BatchNorm's batch statistics cancel, so single elements
            # carry float32 noise of ~1e-3 in either layout (measured against float64)
            err = np.linalg.norm(have[k] - v) / max(np.linalg.norm(v), 1e-12)
            assert err < 1e-4, f"gradient of {k}: relative error {err:.2e}"


def _resnet_like():
    x = mx.sym.var("data")
    y = mx.sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=8, name="c0")
    y = mx.sym.Activation(mx.sym.BatchNorm(y, name="bn0"), act_type="relu")
    for i in range(2):
        z = mx.sym.Convolution(y, kernel=(3, 3), pad=(1, 1), num_filter=8, name=f"c{i + 1}a")
        z = mx.sym.relu(mx.sym.BatchNorm(z, name=f"bn{i + 1}"))
        z = mx.sym.Convolution(z, kernel=(1, 1), num_filter=8, name=f"c{i + 1}b")
        y = mx.sym.relu(y + z)
    y = mx.sym.concat(y, mx.sym.Pooling(y, kernel=(3, 3), pad=(1, 1), pool_type="max"), dim=1)
    y = mx.sym.Pooling(y, global_pool=True, pool_type="avg", kernel=(1, 1))
    return mx.sym.FullyConnected(mx.sym.flatten(y), num_hidden=3, name="fc")


def test_only_the_input_and_the_exit_are_transposed():
    net = _resnet_like()
    res = optimize(net.graph, passes=["channels_last"], shapes={"data": (2, 3, 8, 8)})
    moved = _data_transposes(res.graph)
    # into NHWC before the first convolution; back to NCHW before flatten (not between the layers)
    assert [n.params["axes"] for n in moved] == [(0, 2, 3, 1), (0, 3, 1, 2)], _ops(res.graph)
    assert _ops(res.graph).count("transpose") == 2 + 5   # plus one per convolution weight
    layouts = {n.name: n.params.get("layout") for n in res.graph.topo_order() if n.op is not None
               and n.op.name in ("Convolution", "Pooling")}
    assert set(layouts.values()) == {"NHWC"}
    assert {n.params["axis"] for n in res.graph.topo_order() if n.op is not None and n.op.name == "BatchNorm"} == {3}


def test_frozen_and_unfrozen_executors_match():
    net = _resnet_like()
    rng = np.random.default_rng(1)
    shapes = {"data": (2, 3, 8, 8)}
    arg_shapes, _, aux_shapes = net.infer_shape(**shapes)
    args = {n: mx.nd.array(rng.standard_normal(s) * 0.3) for n, s in zip(net.list_arguments(), arg_shapes)}
    aux = {n: mx.nd.array(rng.uniform(0.5, 1.5, s)) for n, s in zip(net.list_auxiliary_states(), aux_shapes)}
    ref = net.bind(mx.cpu(), args, aux_states=aux, grad_req="null", opt_level=0).forward()[0].asnumpy()
    for freeze in (True, False):   # frozen: the weight transposes are constants XLA folds
        ex = net.bind(mx.cpu(), args, aux_states=aux, grad_req="null", freeze_params=freeze,
                      passes=["channels_last"])
        np.testing.assert_allclose(ex.forward()[0].asnumpy(), ref, rtol=1e-4, atol=1e-5)


def test_training_step_matches():
    net = mx.sym.SoftmaxOutput(_resnet_like(), name="softmax")
    rng = np.random.default_rng(2)
    shapes = {"data": (2, 3, 8, 8), "softmax_label": (2,)}
    arg_shapes, _, aux_shapes = net.infer_shape(**shapes)
    values = {n: rng.standard_normal(s).astype(np.float32) * 0.3 for n, s in zip(net.list_arguments(), arg_shapes)}
    values["softmax_label"] = np.array([0, 2], np.float32)
    outs = []
    for passes in ([], ["channels_last"]):
        ex = net.bind(mx.cpu(), {k: mx.nd.array(v) for k, v in values.items()}, passes=passes,
                      aux_states={n: mx.nd.ones(s) for n, s in zip(net.list_auxiliary_states(), aux_shapes)})
        ex.forward(is_train=True)
        ex.backward()
        outs.append({k: v.asnumpy() for k, v in ex.grad_dict.items() if v is not None})
    for k, v in outs[0].items():
        np.testing.assert_allclose(outs[1][k], v, rtol=1e-4, atol=1e-5, err_msg=k)


def test_graphs_without_convolutions_are_untouched():
    net = mx.sym.Pooling(mx.sym.var("x"), kernel=(2, 2), pool_type="max")
    g = net.graph
    assert optimize(g, passes=["channels_last"], shapes={"x": (1, 2, 4, 4)}).graph is g or \
        _ops(optimize(g, passes=["channels_last"], shapes={"x": (1, 2, 4, 4)}).graph) == ["Pooling"]
