"""Convolution strategies compute what the default lowering computes (outputs and gradients)."""
import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import load_case
from xgraph.lower import CONV_STRATEGY_ATTR


@pytest.mark.parametrize("strategy", ["nhwc", "matmul1x1", "im2col", "taps", "auto"])
@pytest.mark.parametrize("kw", [dict(kernel=(3, 3), pad=(1, 1)), dict(kernel=(1, 1), stride=(2, 2)),
                                dict(kernel=(3, 3), stride=(2, 2), dilate=(2, 2), pad=(2, 2)),
                                dict(kernel=(3, 3), num_group=2, pad=(1, 1)),
                                dict(kernel=(3, 3), num_group=4, stride=(2, 2), pad=(1, 1))])
def test_strategy_matches_default(strategy, kw):
    x = mx.sym.var("x")
    net = mx.sym.MakeLoss(mx.sym.sum(mx.sym.square(mx.sym.Convolution(x, num_filter=4, name="c", **kw))))
    rng = np.random.default_rng(0)
    res = {}
    for key, passes in (("ref", []), ("s", ["conv_strategy"])):
        ex = net.simple_bind(mx.cpu(), x=(2, 4, 7, 7), passes=passes, pass_options={"conv_strategy": strategy})
        for n, a in ex.arg_dict.items():
            a[:] = np.random.default_rng(len(n)).standard_normal(a.shape).astype(np.float32)
        out = ex.forward(is_train=False)[0].asnumpy()
        ex.forward(is_train=True)
        ex.backward()
        res[key] = (out, {n: g.asnumpy() for n, g in ex.grad_dict.items()})
        if passes:
            conv = [n for n in ex.optimized_graphs["train"].topo_order() if n.name == "c"][0]
            assert conv.user_attrs[CONV_STRATEGY_ATTR] == strategy
    np.testing.assert_allclose(res["s"][0], res["ref"][0], rtol=1e-4)
    for n in res["ref"][1]:
        np.testing.assert_allclose(res["s"][1][n], res["ref"][1][n], rtol=1e-4, atol=1e-3)


def test_strategy_on_fixture_network():
    case = load_case("net_resnet_small")
    ref = case.symbol.bind(mx.cpu(), args=case.args(), aux_states=dict(case.aux), grad_req="null", opt_level=2)
    ex = case.symbol.bind(mx.cpu(), args=case.args(), aux_states=dict(case.aux), grad_req="null",
                          passes=list(mx.passes.level_pipeline(2)) + ["conv_strategy"],
                          pass_options={"conv_strategy": "nhwc"}, freeze_params=True)
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), ref.forward()[0].asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dims,layout,groups,filters", [
    (1, None, 4, 4), (2, None, 4, 8), (2, "NHWC", 4, 4), (3, None, 2, 4), (2, None, 2, 6), (3, "NDHWC", 4, 8)])
def test_grouped_default_lowering_matches_native_conv(dims, layout, groups, filters):
    """On the CPU the op lowers grouped convolutions as taps; values and gradients equal lax.conv's."""
    import jax
    from jax import lax
    from xgraph.conv_strategy import grouped_conv_taps, prefers_taps
    assert prefers_taps(groups, 4 // groups) and not prefers_taps(1, 3) and not prefers_taps(2, 64)
    rng = np.random.default_rng(dims)
    size = (6,) * dims
    x = rng.standard_normal((2, *size, 4) if layout else (2, 4, *size)).astype(np.float32)
    net = mx.sym.Convolution(mx.sym.var("x"), kernel=(3,) * dims, stride=(2,) + (1,) * (dims - 1),
                             dilate=(1,) * (dims - 1) + (2,), pad=(1,) * dims, num_filter=filters,
                             num_group=groups, layout=layout, name="c")
    ex = net.simple_bind(mx.cpu(), x=x.shape, grad_req="write")
    w = rng.standard_normal(ex.arg_dict["c_weight"].shape).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    ex.arg_dict["c_weight"][:] = w
    ex.arg_dict["c_bias"][:] = b
    y = ex.forward(is_train=True, x=x)[0].asnumpy()
    head = rng.standard_normal(y.shape).astype(np.float32)
    ex.backward(mx.nd.array(head))

    sp = "DHW"[3 - dims:]
    lay = layout or "NC" + sp
    rhs = "OI" + sp if lay[1] == "C" else "O" + sp + "I"

    def ref(x, w):
        out = lax.conv_general_dilated(x, w, (2,) + (1,) * (dims - 1), [(1, 1)] * dims,
                                       rhs_dilation=(1,) * (dims - 1) + (2,), dimension_numbers=(lay, rhs, lay),
                                       feature_group_count=groups, precision="highest")
        return out + b.reshape((1, -1) + (1,) * dims if lay[1] == "C" else (1,) * (dims + 1) + (-1,))
    y_ref, pull = jax.vjp(ref, x, w)
    gx, gw = pull(head)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), gx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ex.grad_dict["c_weight"].asnumpy(), gw, rtol=1e-4, atol=1e-4)
    opt = mx.lower(net, x=x.shape).compile().as_text()
    assert "convolution(" not in opt        # XLA's grouped convolution is gone from the CPU executable


def test_grouped_conv_exports_for_cpu_and_cuda():
    net = mx.sym.Convolution(mx.sym.var("x"), kernel=(3, 3), pad=(1, 1), num_filter=4, num_group=4, no_bias=True,
                             name="dw")
    w = np.random.default_rng(1).standard_normal((4, 1, 3, 3)).astype(np.float32)
    art = mx.load_artifact(mx.export(net, {"dw_weight": w}, {}, inputs={"x": ((1, 4, 5, 5), "float32")},
                                     platforms=("cpu", "cuda")).data)
    x = np.random.default_rng(2).standard_normal((1, 4, 5, 5)).astype(np.float32)
    ex = net.bind(mx.cpu(), args={"x": x, "dw_weight": w}, grad_req="null")
    np.testing.assert_allclose(np.asarray(art(x=x)[0]), ex.forward()[0].asnumpy(), rtol=1e-5, atol=1e-5)
