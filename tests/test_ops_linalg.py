"""dot and batch_dot against MXNet fixtures and numpy references."""
import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import check_inference, check_training, load_case
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("name", ["dot", "batch_dot"])
def test_fixture(name):
    case = load_case(name)
    check_inference(case)
    check_training(case)


def _mx_dot_ref(a, b, ta, tb):
    """MXNet's N-D dot: lhs as (first, rest) transposed if ta, else (leading, last); rhs likewise."""
    a2 = a.reshape(a.shape[0], -1).T if ta else a.reshape(-1, a.shape[-1])
    b2 = b.reshape(-1, b.shape[-1]).T if tb else b.reshape(b.shape[0], -1)
    shape = (a.shape[1:] if ta else a.shape[:-1]) if a.ndim > 1 else ()
    shape += (b.shape[:-1] if tb else b.shape[1:]) if b.ndim > 1 else ()
    return (a2 @ b2).reshape(shape or (1,))


@pytest.mark.parametrize("ashape,bshape,ta,tb", [
    ((3,), (3,), False, False), ((3,), (3, 2), False, False), ((2, 3), (3,), False, False),
    ((4, 2, 3), (3, 5), False, False), ((3, 2, 2), (3, 5), True, False), ((2, 3), (5, 2, 3), False, True),
    ((3, 4), (2, 3), True, True)])
def test_dot_nd(ashape, bshape, ta, tb):
    a = RNG.normal(size=ashape).astype(np.float32)
    b = RNG.normal(size=bshape).astype(np.float32)
    out = run(mx.sym.dot(mx.sym.var("a"), mx.sym.var("b"), transpose_a=ta, transpose_b=tb), a=a, b=b)[0]
    np.testing.assert_allclose(out, _mx_dot_ref(a, b, ta, tb), rtol=1e-5, atol=1e-5)


def test_batch_dot_4d_and_forward_stype():
    a = RNG.normal(size=(2, 2, 3, 4)).astype(np.float32)
    b = RNG.normal(size=(2, 2, 5, 4)).astype(np.float32)
    s = mx.sym.batch_dot(mx.sym.var("a"), mx.sym.var("b"), transpose_b=True, forward_stype="default", name="bd")
    np.testing.assert_allclose(run(s, a=a, b=b)[0], a @ np.swapaxes(b, -1, -2), rtol=1e-5, atol=1e-5)
    assert s.attr_dict()["bd"]["forward_stype"] == "default"


def test_gradients_fd():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    check_grad(mx.sym.dot(a, b, transpose_b=True), {"a": RNG.normal(size=(2, 3)), "b": RNG.normal(size=(4, 3))})
    check_grad(mx.sym.dot(a, b, transpose_a=True), {"a": RNG.normal(size=(3, 2, 2)), "b": RNG.normal(size=(3, 2))})
    check_grad(mx.sym.batch_dot(a, b, transpose_a=True),
               {"a": RNG.normal(size=(2, 3, 2)), "b": RNG.normal(size=(2, 3, 2))})


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    s = mx.sym.Group([mx.sym.dot(a, b), mx.sym.batch_dot(mx.sym.expand_dims(a, axis=0), mx.sym.expand_dims(b, axis=0))])
    check_low_precision(s, {"a": RNG.normal(size=(3, 16)).astype(np.float32),
                            "b": RNG.normal(size=(16, 2)).astype(np.float32)}, dtype, scale=4.0)


def test_errors_name_the_node():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    with pytest.raises(mx.ShapeError, match=r"d1.*dot.*cannot contract"):
        mx.sym.dot(a, b, name="d1").infer_shape(a=(2, 3), b=(4, 5))
    with pytest.raises(mx.ShapeError, match=r"bd.*batch_dot.*batch dimensions differ"):
        mx.sym.batch_dot(a, b, name="bd").infer_shape(a=(2, 3, 4), b=(3, 4, 5))
    with pytest.raises(mx.ShapeError, match=r"bd2.*batch_dot.*same number"):
        mx.sym.batch_dot(a, b, name="bd2").infer_shape(a=(3, 4), b=(4, 5))
    with pytest.raises(mx.ShapeError, match=r"bd3.*cannot multiply"):
        mx.sym.batch_dot(a, b, transpose_a=True, name="bd3").infer_shape(a=(2, 3, 4), b=(2, 4, 5))


@pytest.mark.parametrize("lower", [True, False])
def test_potrf_potri_lower_attribute(lower):
    """MXNet's lower=False factor is upper triangular U with A = U^T U; potri inverts from either."""
    m = RNG.normal(size=(2, 3, 3))
    a = (m @ m.transpose(0, 2, 1) + 3 * np.eye(3)).astype(np.float32)
    (f,) = run(mx.sym.linalg.potrf(mx.sym.var("a"), lower=lower), a=a)
    tri = np.tril if lower else np.triu
    np.testing.assert_allclose(f, tri(f), atol=0)
    rebuilt = f @ f.transpose(0, 2, 1) if lower else f.transpose(0, 2, 1) @ f
    np.testing.assert_allclose(rebuilt, a, rtol=1e-4, atol=1e-4)
    (inv,) = run(mx.sym.linalg.potri(mx.sym.var("f"), lower=lower), f=f)
    np.testing.assert_allclose(inv, np.linalg.inv(a), rtol=1e-3, atol=1e-4)
