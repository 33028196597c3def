"""Regression outputs (MXNet's gradients), smooth_l1 and softmax_cross_entropy."""
import numpy as np
import pytest

import xgraph as mx
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(41)
V = mx.sym.var


def _train(sym, data, label, head_scale=3.0):
    """Forward in training mode and backward with an arbitrary head gradient (which must be ignored)."""
    args = {"data": mx.nd.array(data), "label": mx.nd.array(label)}
    grads = {k: mx.nd.zeros(v.shape) for k, v in args.items()}
    ex = sym.bind(mx.cpu(), args=args, args_grad=grads)
    out = ex.forward(is_train=True)[0].asnumpy()
    ex.backward([mx.nd.array(np.full(out.shape, head_scale, np.float32))])
    return out, ex.grad_dict["data"].asnumpy(), ex.grad_dict["label"].asnumpy()


_SIGMOID = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731


@pytest.mark.parametrize("op,fwd,bwd", [
    ("LinearRegressionOutput", lambda x: x, lambda o, y: o - y),
    ("LogisticRegressionOutput", _SIGMOID, lambda o, y: o - y),
    ("MAERegressionOutput", lambda x: x, lambda o, y: np.sign(o - y)),
])
@pytest.mark.parametrize("shape,label_shape", [((4, 3), (4, 3)), ((4, 1), (4,)), ((2, 3, 2), (2, 6))])
def test_regression_outputs(op, fwd, bwd, shape, label_shape):
    data = RNG.normal(size=shape).astype(np.float32)
    label = RNG.normal(size=label_shape).astype(np.float32)
    sym = getattr(mx.sym, op)(V("data"), V("label"), grad_scale=2.0)
    out, gdata, glabel = _train(sym, data, label)
    np.testing.assert_allclose(out, fwd(data), rtol=1e-6, atol=1e-6)
    num_output = label.size / label.shape[0]
    want = bwd(fwd(data), label.reshape(shape)) * 2.0 / num_output
    np.testing.assert_allclose(gdata, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(glabel, 0)


def test_regression_label_inference():
    s = mx.sym.LinearRegressionOutput(V("x"), name="lro")
    assert s.list_arguments() == ["x", "lro_label"]
    assert s.infer_shape(x=(4, 1))[0] == [(4, 1), (4,)]
    assert s.infer_shape(x=(4, 3, 2))[0] == [(4, 3, 2), (4, 3, 2)]


def _np_smooth_l1(x, sigma):
    s2 = sigma * sigma
    return np.where(np.abs(x) < 1 / s2, 0.5 * s2 * x * x, np.abs(x) - 0.5 / s2)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 0.5])
def test_smooth_l1(sigma):
    x = np.linspace(-3, 3, 13).astype(np.float32)
    np.testing.assert_allclose(run(mx.sym.smooth_l1(V("x"), scalar=sigma), x=x)[0], _np_smooth_l1(x, sigma),
                               rtol=1e-6, atol=1e-6)
    check_grad(mx.sym.smooth_l1(V("x"), scalar=sigma), {"x": np.array([-2.1, -0.1, 0.05, 0.7, 3.3])})


def test_softmax_cross_entropy():
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    y = np.array([0, 4, 2, 2], np.float32)
    s = mx.sym.softmax_cross_entropy(V("x"), V("y"))
    logp = x - x.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    out = run(s, x=x, y=y)[0]
    assert out.shape == (1,)
    np.testing.assert_allclose(out, [-logp[np.arange(4), y.astype(int)].sum()], rtol=1e-5)
    check_grad(s, {"x": x.astype(np.float64), "y": y}, null=("y",))
    assert mx.sym.softmax_cross_entropy(V("x"), name="ce").infer_shape(x=(4, 5))[0] == [(4, 5), (4,)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    y = RNG.normal(size=(4, 3)).astype(np.float32)
    lab = np.array([0, 1, 2, 1], np.float32)
    s = mx.sym.Group([mx.sym.LinearRegressionOutput(V("x"), V("y")), mx.sym.LogisticRegressionOutput(V("x"), V("y")),
                      mx.sym.MAERegressionOutput(V("x"), V("y")), mx.sym.smooth_l1(V("x"), scalar=1.5),
                      mx.sym.softmax_cross_entropy(V("x"), V("lab"))])
    check_low_precision(s, {"x": x, "y": y, "lab": lab}, dtype, scale=4.0)


def test_errors_name_the_node():
    with pytest.raises(mx.ShapeError, match=r"lro.*LinearRegressionOutput.*label has shape"):
        mx.sym.LinearRegressionOutput(V("x"), V("y"), name="lro").infer_shape(x=(4, 3), y=(4, 2))
    with pytest.raises(mx.ShapeError, match=r"ce.*softmax_cross_entropy.*2-D"):
        mx.sym.softmax_cross_entropy(V("x"), V("y"), name="ce").infer_shape(x=(4, 3, 2), y=(4,))
    with pytest.raises(mx.AttributeValueError, match=r"sl.*smooth_l1.*scalar"):
        mx.sym.smooth_l1(V("x"), scalar="big", name="sl")
