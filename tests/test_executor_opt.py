"""Executors at O0/O1/O2: same outputs and gradients; derived parameters follow the bound values."""
import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import load_case

NETS = ["net_resnet_small", "net_mobilenet0_25", "net_mlp2_softmax"]


def _bind(case, level, grads=False, **kw):
    args = case.args()
    g = {n: np.zeros_like(v) for n, v in args.items()} if grads else None
    return case.symbol.bind(mx.cpu(), args=args, args_grad=g, grad_req="write" if grads else "null",
                            aux_states=dict(case.aux), opt_level=level, **kw)


def _close(a, b, rtol=1e-4, scale_atol=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=scale_atol * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("name", NETS)
def test_levels_agree_inference_and_after_param_change(name):
    case = load_case(name)
    exes = {lvl: _bind(case, lvl) for lvl in (0, 1, 2)}
    ref = exes[0].forward(is_train=False)[0].asnumpy()
    for lvl in (1, 2):
        _close(exes[lvl].forward(is_train=False)[0].asnumpy(), ref)
        assert exes[lvl].output_dict.keys() == exes[0].output_dict.keys()
        assert list(exes[lvl].arg_dict) == list(exes[0].arg_dict)
    if name != "net_mlp2_softmax":
        assert any(n.op is not None and n.op.name == "BatchNorm" for n in exes[1].optimized_graphs["infer"].topo_order())
        assert not any(n.op is not None and n.op.name == "BatchNorm"
                       for n in exes[2].optimized_graphs["infer"].topo_order())
    # change a weight, a gamma and a moving variance: folded weights must follow
    rng = np.random.default_rng(0)
    changes = {}
    for n in list(case.params)[:3]:
        changes[n] = case.params[n] * 0.5 + rng.standard_normal(case.params[n].shape).astype(np.float32) * 0.1
    aux_changes = {n: case.aux[n] * 1.5 + 0.1 for n in list(case.aux)[1:2]}
    for ex in exes.values():
        ex.copy_params_from(changes, aux_changes)
    ref2 = exes[0].forward(is_train=False)[0].asnumpy()
    assert not np.allclose(ref2, ref)
    for lvl in (1, 2):
        _close(exes[lvl].forward(is_train=False)[0].asnumpy(), ref2)
    # an unchanged parameter does not re-optimize
    before = exes[2]._programs.rebuilds
    exes[2].forward(is_train=False, data=case.inputs["data"] * 2)
    assert exes[2]._programs.rebuilds == before


@pytest.mark.parametrize("name", NETS)
def test_levels_agree_training(name):
    case = load_case(name)
    heads = [case.npz[f"head_grad:{i}"] for i in range(len(case.symbol.list_outputs()))]
    results = {}
    for lvl in (0, 1, 2):
        ex = _bind(case, lvl, grads=True)
        outs = [o.asnumpy() for o in ex.forward(is_train=True)]
        ex.backward(heads)
        results[lvl] = (outs, {n: g.asnumpy() for n, g in ex.grad_dict.items() if g is not None},
                        {n: a.asnumpy() for n, a in ex.aux_dict.items()})
        if lvl == 2:  # inference-only passes never reach the training graph
            ops = {n.op.name for n in ex.optimized_graphs["train"].topo_order() if n.op is not None}
            assert ("BatchNorm" in ops) == (name != "net_mlp2_softmax")
            skipped = [r.name for r in ex.pass_reports["train"].records if r.skipped]
            assert "fold_batchnorm" in skipped
    for lvl in (1, 2):
        for a, b in zip(results[lvl][0], results[0][0]):
            _close(a, b)
        for n in results[0][1]:
            _close(results[lvl][1][n], results[0][1][n], rtol=1e-3, scale_atol=1e-4)
        for n in results[0][2]:
            _close(results[lvl][2][n], results[0][2][n])


def test_training_then_inference_uses_updated_moving_stats():
    case = load_case("net_resnet_small")
    outs = {}
    for lvl in (0, 2):
        ex = _bind(case, lvl, grads=True)
        ex.forward(is_train=False)
        ex.forward(is_train=True)
        ex.backward()
        outs[lvl] = ex.forward(is_train=False)[0].asnumpy()
    _close(outs[2], outs[0])


def test_freeze_params_constants_and_recompiles_on_change():
    case = load_case("net_resnet_small")
    ref = _bind(case, 0)
    ex = _bind(case, 2, freeze_params=True)
    _close(ex.forward(is_train=False)[0].asnumpy(), ref.forward(is_train=False)[0].asnumpy())
    w = {"stem_conv_weight": case.params["stem_conv_weight"] * -1.0}
    ex.copy_params_from(w)
    ref.copy_params_from(w)
    _close(ex.forward(is_train=False)[0].asnumpy(), ref.forward(is_train=False)[0].asnumpy())
    # new data does not rebuild
    n = ex._programs.rebuilds
    d = case.inputs["data"] + 1
    _close(ex.forward(is_train=False, data=d)[0].asnumpy(), ref.forward(is_train=False, data=d)[0].asnumpy())
    assert ex._programs.rebuilds == n


def test_parameter_names_and_simple_bind_opt_level():
    data = mx.sym.var("data")
    w = mx.sym.var("w")
    net = mx.sym.FullyConnected(data, weight=w, num_hidden=3, name="fc")
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    from xgraph.bound import parameter_names
    assert parameter_names(net.graph, net.list_arguments()) == {"w", "fc_bias"}
    assert parameter_names(net.graph, net.list_arguments(), data_names=["data", "softmax_label", "w"]) == {"fc_bias"}
    ex = net.simple_bind(mx.cpu(), data=(2, 4), opt_level=0)
    assert ex.pass_reports["train"].records == []
    ex2 = ex.reshape(data=(1, 4), softmax_label=(1,))
    assert ex2._opt["opt_level"] == 0


def _conv_bn():
    net = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=4, name="c")
    return mx.sym.relu(mx.sym.BatchNorm(net, name="bn"))


def test_default_bind_is_the_fast_path_and_never_stale():
    from xgraph.bound import AUTO_FREEZE_CHANGES
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 8, 8), dtype=np.float32)
    ex = _conv_bn().simple_bind(mx.cpu(), data=(1, 3, 8, 8), grad_req="null")
    ref = _conv_bn().simple_bind(mx.cpu(), data=(1, 3, 8, 8), grad_req="null", opt_level=0, freeze_params=False)
    progs = ex._programs
    for i in range(AUTO_FREEZE_CHANGES + 2):
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        mean = rng.random(4, dtype=np.float32)
        for e in (ex, ref):
            e.arg_dict["c_weight"][:] = w
            e.aux_dict["bn_moving_mean"][:] = mean
        got = ex.forward(is_train=False, data=x)[0].asnumpy()
        # folding BatchNorm into the weights rounds differently: outputs reach ~18, so 1e-4 absolute
        np.testing.assert_allclose(got, ref.forward(is_train=False, data=x)[0].asnumpy(), rtol=1e-5, atol=1e-4)
        if i == 0:   # a predictor: O2 for inference (BatchNorm folded) with frozen weights
            assert "fold_batchnorm" in [r["name"] for r in progs.infer_report.to_dicts()]
            assert progs.frozen
    assert not progs.frozen and progs.value_changes == AUTO_FREEZE_CHANGES + 1   # weights that keep changing


def test_default_bind_with_gradients_does_not_freeze():
    ex = _conv_bn().simple_bind(mx.cpu(), data=(1, 3, 8, 8))
    ex.forward(is_train=False, data=np.ones((1, 3, 8, 8), np.float32))
    assert ex._programs.freeze is False and ex._programs.infer_opt_level == 2 and ex._programs.opt_level == 1


def test_frozen_inference_bind_picks_a_strategy_per_convolution():
    # the default predictor (grad_req='null': frozen) runs conv_strategy 'auto'; an unfrozen one does not
    x = mx.sym.var("data")
    net = mx.sym.Convolution(mx.sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=128, name="c3"),
                             kernel=(1, 1), num_filter=4, name="c1")
    outs, reports = [], []
    for freeze in (None, False):
        ex = net.simple_bind(mx.cpu(), data=(1, 128, 6, 6), grad_req="null", freeze_params=freeze)
        for name, arr in ex.arg_dict.items():
            arr[:] = np.random.default_rng(len(name)).standard_normal(arr.shape).astype(np.float32) * 0.1
        outs.append(ex.forward()[0].asnumpy())
        reports.append(str(ex._programs.infer_report))
    assert "conv_strategy" in reports[0] and "2 Convolution(s) -> auto" in reports[0]
    assert "conv_strategy" not in reports[1]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)
