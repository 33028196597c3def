"""Reductions against MXNet fixtures and numpy references."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry
from mxnet_cases import check_inference, check_training, load_case
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(3)
X = RNG.normal(size=(2, 3, 4)).astype(np.float32)


def test_fixture_reductions():
    case = load_case("reductions")
    check_inference(case)
    check_training(case)


def test_aliases():
    assert registry.get("sum_axis") is registry.get("sum")
    assert registry.get("max_axis") is registry.get("max")
    assert registry.get("min_axis") is registry.get("min")


NUMPY = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod,
         "nansum": np.nansum, "nanprod": np.nanprod}


@pytest.mark.parametrize("name", sorted(NUMPY))
@pytest.mark.parametrize("axis,keepdims,exclude", [
    (None, False, False), (None, True, False), ((0, 2), False, False), ((-1,), True, False),
    ((1,), False, True), ((0, 2), True, True), ((0, 1, 2), False, False)])
def test_reduce_matches_numpy(name, axis, keepdims, exclude):
    kwargs = {"keepdims": keepdims, "exclude": exclude}
    if axis is not None:
        kwargs["axis"] = axis
    out = run(getattr(mx.sym, name)(mx.sym.var("x"), **kwargs), x=X)[0]
    if axis is None:
        np_axes = None
    else:
        given = {a % 3 for a in axis}
        np_axes = tuple(i for i in range(3) if (i in given) != exclude)
    want = np.asarray(NUMPY[name](X.astype(np.float64), axis=np_axes, keepdims=keepdims))
    if want.ndim == 0:
        want = want.reshape(1)  # MXNet: a full reduction has shape (1,)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_nan_reductions():
    x = np.array([[1.0, np.nan, 2.0], [np.nan, 3.0, 4.0]], np.float32)
    np.testing.assert_allclose(run(mx.sym.nansum(mx.sym.var("x"), axis=1), x=x)[0], [3.0, 7.0])
    np.testing.assert_allclose(run(mx.sym.nanprod(mx.sym.var("x"), axis=1), x=x)[0], [2.0, 12.0])


@pytest.mark.parametrize("name,fn", [("argmax", np.argmax), ("argmin", np.argmin)])
def test_argmax_argmin(name, fn):
    op = getattr(mx.sym, name)
    out = run(op(mx.sym.var("x"), axis=1), x=X)[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, fn(X, axis=1).astype(np.float32))
    out = run(op(mx.sym.var("x"), axis=-1, keepdims=True), x=X)[0]
    np.testing.assert_array_equal(out, fn(X, axis=-1)[..., None].astype(np.float32))
    out = run(op(mx.sym.var("x")), x=X)[0]
    assert out.shape == (1,) and out[0] == fn(X)
    assert run(op(mx.sym.var("x"), keepdims=True), x=X)[0].shape == (1, 1, 1)


def test_norm():
    out = run(mx.sym.norm(mx.sym.var("x")), x=X)[0]
    assert out.shape == (1,)
    np.testing.assert_allclose(out, [np.sqrt((X.astype(np.float64) ** 2).sum())], rtol=1e-5)
    out = run(mx.sym.norm(mx.sym.var("x"), ord=1, axis=1, keepdims=True), x=X)[0]
    np.testing.assert_allclose(out, np.abs(X).sum(axis=1, keepdims=True), rtol=1e-5)
    with pytest.raises(mx.XGraphError, match="ord"):
        mx.sym.norm(mx.sym.var("x"), ord=3, name="n3").infer_shape(x=(2,))


def test_max_gradient_goes_to_every_tie():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]], np.float32)
    s = mx.sym.max(mx.sym.var("x"), axis=1)
    ex = s.bind(mx.cpu(), args={"x": mx.nd.array(x)}, args_grad={"x": mx.nd.zeros((2, 3))})
    ex.forward(is_train=True)
    ex.backward([mx.nd.array([1.0, 2.0])])
    np.testing.assert_array_equal(ex.grad_dict["x"].asnumpy(), [[0, 1, 1], [2, 0, 0]])


def test_gradients_fd():
    x = mx.sym.var("x")
    data = {"x": RNG.normal(size=(2, 3))}
    check_grad(mx.sym.sum(x, axis=1) + mx.sym.mean(x, axis=1) + mx.sym.max(x, axis=1)
               + mx.sym.min(x, axis=0, exclude=True, keepdims=False), data)
    check_grad(mx.sym.prod(x, axis=0, keepdims=True), data)
    check_grad(mx.sym.nansum(x) + mx.sym.norm(x), data)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_accumulates(dtype):
    x = np.full((4, 300), 0.1, np.float32)
    s = mx.sym.Group([mx.sym.sum(mx.sym.var("x"), axis=1), mx.sym.mean(mx.sym.var("x")),
                      mx.sym.max(mx.sym.var("x"), axis=0)])
    check_low_precision(s, {"x": x}, dtype, scale=30.0)


def test_bad_axis():
    with pytest.raises(mx.ShapeError, match=r"s3.*sum.*axis 3 is out of range"):
        mx.sym.sum(mx.sym.var("x"), axis=3, name="s3").infer_shape(x=(2, 3))
    with pytest.raises(mx.ShapeError, match=r"am.*argmax.*out of range"):
        mx.sym.argmax(mx.sym.var("x"), axis=-3, name="am").infer_shape(x=(2, 3))
    with pytest.raises(mx.XGraphError, match="twice"):
        mx.sym.sum(mx.sym.var("x"), axis=(1, -1), name="dup").infer_shape(x=(2, 3))
