"""Convolution strategies compute what the default lowering computes (outputs and gradients)."""
import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import load_case
from xgraph.lower import CONV_STRATEGY_ATTR


@pytest.mark.parametrize("strategy", ["nhwc", "matmul1x1", "im2col", "auto"])
@pytest.mark.parametrize("kw", [dict(kernel=(3, 3), pad=(1, 1)), dict(kernel=(1, 1), stride=(2, 2)),
                                dict(kernel=(3, 3), stride=(2, 2), dilate=(2, 2), pad=(2, 2)),
                                dict(kernel=(3, 3), num_group=2, pad=(1, 1))])
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
