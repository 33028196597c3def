"""Loss heads (SoftmaxOutput and the regression outputs, with MXNet's gradients), smooth_l1, softmax_cross_entropy."""
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


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def test_softmax_output_probability_label():
    """A label of the data's shape is a distribution: gradient (softmax - label) * grad_scale, never normalized."""
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    lab = _np_softmax(RNG.normal(size=(3, 4)), 1).astype(np.float32)
    sym = mx.sym.SoftmaxOutput(V("data"), V("label"), grad_scale=2.0, normalization="batch")
    out, gdata, _ = _train(sym, x, lab)
    np.testing.assert_allclose(gdata, (_np_softmax(x, 1) - lab) * 2.0, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", ["null", "batch", "valid"])
def test_softmax_output_multi_output_normalization(norm):
    """multi_output: null and batch also divide by the spatial size; labels (N, H, W), (N, H*W) or (N, 1, H, W)."""
    x = RNG.normal(size=(2, 3, 2, 2)).astype(np.float32)
    lab = np.array([[[0, 1], [2, 1]], [[1, 1], [0, 2]]], np.float32)
    onehot = np.eye(3, dtype=np.float32)[lab.astype(int)].transpose(0, 3, 1, 2)
    valid = (lab != 1)[:, None]
    want = (_np_softmax(x, 1) - onehot) * valid * 0.5 / {"null": 4, "batch": 4 * 2, "valid": valid.sum()}[norm]
    for shape in [(2, 2, 2), (2, 4), (2, 1, 2, 2)]:
        sym = mx.sym.SoftmaxOutput(V("data"), V("label"), grad_scale=0.5, multi_output=True, use_ignore=True,
                                   ignore_label=1, normalization=norm)
        np.testing.assert_allclose(_train(sym, x, lab.reshape(shape))[1], want, rtol=1e-5, atol=1e-6)


def test_softmax_output_preserve_shape_batch_counts_every_label():
    """preserve_shape with normalization='batch' divides by the label's element count, as MXNet does."""
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    lab = np.array([[0, 3, 1], [2, 2, 0]], np.float32)
    sym = mx.sym.SoftmaxOutput(V("data"), V("label"), preserve_shape=True, normalization="batch")
    want = (_np_softmax(x, -1) - np.eye(4, dtype=np.float32)[lab.astype(int)]) / 6
    np.testing.assert_allclose(_train(sym, x, lab)[1], want, rtol=1e-5, atol=1e-6)


def test_softmax_output_out_grad_multiplies_the_head_gradient():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    lab = np.array([0, 3, 1], np.float32)
    sym = mx.sym.SoftmaxOutput(V("data"), V("label"), out_grad=True)
    want = (_np_softmax(x, 1) - np.eye(4, dtype=np.float32)[[0, 3, 1]]) * 3.0
    np.testing.assert_allclose(_train(sym, x, lab, head_scale=3.0)[1], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(mx.ShapeError, match=r"sm.*SoftmaxOutput.*label has shape \(3, 2\)"):
        mx.sym.SoftmaxOutput(V("x"), V("y"), name="sm").infer_shape(x=(3, 4), y=(3, 2))
