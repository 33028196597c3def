"""MXNet 1.9.1 ops used by MXNet's test_operator.py: diag, moments, _histogram, _split_v2 and the
triangle/LQ/eigen ``_linalg_*`` ops, against numpy references; gradients by finite differences."""
import numpy as np
import pytest

import xgraph as mx
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(31)
V = mx.sym.var


def test_diag_1d_2d_nd():
    a = RNG.normal(size=(3, 5)).astype(np.float32)
    for k in (0, 2, -1, 4, -2):
        np.testing.assert_array_equal(run(mx.sym.diag(V("x"), k=k), x=a)[0], np.diag(a, k))
    v = RNG.normal(size=(4,)).astype(np.float32)
    for k in (0, 1, -2):
        np.testing.assert_array_equal(run(mx.sym.diag(V("x"), k=k), x=v)[0], np.diag(v, k))
    t = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(run(mx.sym.diag(V("x"), k=1, axis1=2, axis2=0), x=t)[0],
                                  np.diagonal(t, 1, axis1=2, axis2=0))
    check_grad(mx.sym.diag(V("x"), k=1), {"x": a})
    check_grad(mx.sym.diag(V("x"), k=-1), {"x": v})


def test_diag_bad_input():
    with pytest.raises(mx.XGraphError, match=r"diag.*k=6"):
        mx.sym.diag(V("x"), k=6, name="dg").infer_shape(x=(3, 5))
    with pytest.raises(mx.XGraphError, match="axis1 and axis2"):
        mx.sym.diag(V("x"), axis1=1, axis2=-1).infer_shape(x=(3, 5))


@pytest.mark.parametrize("axes,keepdims", [((1,), False), ((0, 2), True), (None, False)])
def test_moments(axes, keepdims):
    x = RNG.normal(size=(3, 4, 2)).astype(np.float32)
    mean, var = run(mx.sym.moments(V("x"), axes=axes, keepdims=keepdims), x=x)
    ax = tuple(range(3)) if axes is None else axes
    np.testing.assert_allclose(mean, np.mean(x, ax, keepdims=keepdims).reshape(mean.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, np.var(x, ax, keepdims=keepdims).reshape(var.shape), rtol=1e-5, atol=1e-6)
    if axes is None:
        assert mean.shape == var.shape == (1,)
    check_grad(mx.sym.moments(V("x"), axes=axes, keepdims=keepdims), {"x": x})


def test_moments_low_precision():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    for dtype in ("float16", "bfloat16"):
        check_low_precision(mx.sym.moments(V("x"), axes=(1,))[1], {"x": x}, dtype)


def test_histogram_uniform_and_edges():
    x = RNG.uniform(-3, 3, size=(4, 6)).astype(np.float32)
    counts, edges = mx.nd.histogram(mx.nd.array(x), bins=5, range=(-2.5, 2.5))
    ref_c, ref_e = np.histogram(x, 5, (-2.5, 2.5))
    np.testing.assert_array_equal(counts.asnumpy(), ref_c)
    np.testing.assert_allclose(edges.asnumpy(), ref_e, rtol=1e-6)
    bins = np.array([-1.0, 0.5, 2.0, 2.9], np.float32)
    c2, e2 = run(mx.sym.histogram(a=V("d"), bins=V("b")), d=x, b=bins)
    np.testing.assert_array_equal(c2, np.histogram(x, bins)[0])
    np.testing.assert_array_equal(e2, bins)
    with pytest.raises(mx.XGraphError, match="range"):
        mx.sym.histogram(a=V("d"), bins=3)


def test_split_v2_indices_and_sections():
    x = RNG.normal(size=(2, 7, 3)).astype(np.float32)
    outs = run(mx.sym.split_v2(V("x"), (2, 3), axis=1), x=x)
    for o, r in zip(outs, np.split(x, (2, 3), axis=1)):
        np.testing.assert_array_equal(o, r)
    outs = run(mx.sym.split_v2(V("x"), 3, axis=-2), x=x)
    assert [o.shape[1] for o in outs] == [3, 2, 2]       # MXNet: the first 7 % 3 parts one longer
    np.testing.assert_array_equal(np.concatenate(outs, axis=1), x)
    outs = run(mx.sym.split_v2(V("x"), 3, axis=2, squeeze_axis=True), x=x)
    np.testing.assert_array_equal(outs[1], x[:, :, 1])
    check_grad(mx.sym.Group(list(mx.sym.split_v2(V("x"), (1, 5), axis=1))), {"x": x})
    with pytest.raises(mx.XGraphError, match="squeeze_axis"):
        mx.sym.split_v2(V("x"), (1,), axis=1, squeeze_axis=True).infer_shape(x=(2, 7, 3))


def _np_trian(a, k, lower):
    n = a.shape[-1]
    m = n - abs(k)
    r, c = np.tril_indices(m)
    r = r + abs(k)
    if k > 0 or (k == 0 and not lower):
        r, c = c, r
    return r, c


@pytest.mark.parametrize("k,lower", [(0, True), (0, False), (1, True), (-2, False)])
def test_extracttrian_maketrian(k, lower):
    a = RNG.normal(size=(2, 4, 4)).astype(np.float32)
    r, c = _np_trian(a, k, lower)
    packed = run(mx.sym.linalg.extracttrian(V("a"), offset=k, lower=lower), a=a)[0]
    np.testing.assert_array_equal(packed, a[:, r, c])
    back = run(mx.sym.linalg.maketrian(V("p"), offset=k, lower=lower), p=packed)[0]
    ref = np.zeros_like(a)
    ref[:, r, c] = a[:, r, c]
    np.testing.assert_array_equal(back, ref)
    check_grad(mx.sym.linalg.extracttrian(V("a"), offset=k, lower=lower), {"a": a[0]})


def test_extracttrian_documented_order():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert run(mx.sym.linalg.extracttrian(V("a")), a=a)[0].tolist() == [1, 3, 4]
    assert run(mx.sym.linalg.extracttrian(V("a"), lower=False), a=a)[0].tolist() == [1, 2, 4]
    with pytest.raises(mx.XGraphError, match="triangular number"):
        mx.sym.linalg.maketrian(V("p")).infer_shape(p=(4,))


def test_gelqf_syevd():
    a = RNG.normal(size=(2, 3, 5)).astype(np.float32)
    q, l = run(mx.sym.linalg.gelqf(V("a")), a=a)
    np.testing.assert_allclose(l @ q, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(q @ np.swapaxes(q, 1, 2), np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-5)
    assert np.allclose(np.triu(l, 1), 0)
    s = RNG.normal(size=(4, 4)).astype(np.float32)
    s = s + s.T
    u, w = run(mx.sym.linalg.syevd(V("s")), s=s)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(s), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(u @ s, w[:, None] * u, rtol=1e-4, atol=1e-4)
    assert all(row[np.argmax(np.abs(row))] > 0 for row in u)
    check_grad(mx.sym.linalg.gelqf(V("a")), {"a": a[0]}, rtol=1e-5, atol=1e-7)
    with pytest.raises(mx.XGraphError, match="x <= y"):
        mx.sym.linalg.gelqf(V("a")).infer_shape(a=(5, 3))


def test_quadratic():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    sym = mx.sym.contrib.quadratic(V("x"), a=0.5, b=-2.0, c=1.5)
    np.testing.assert_allclose(run(sym, x=x)[0], 0.5 * x ** 2 - 2 * x + 1.5, rtol=1e-6, atol=1e-6)
    check_grad(sym, {"x": x})
    check_low_precision(sym, {"x": x}, "float16")


def test_all_finite_and_multi():
    fin, inf = np.zeros((1, 2), np.float32), np.array([[np.inf, 1]], np.float32)
    out = run(mx.sym.all_finite(V("d")), d=inf)[0]
    assert out.dtype == np.float32 and out.tolist() == [0.0]
    assert run(mx.sym.all_finite(V("d")), d=fin)[0].tolist() == [1.0]
    assert run(mx.sym.multi_all_finite(V("a"), V("b"), num_arrays=2), a=fin, b=inf)[0].tolist() == [0.0]
    assert run(mx.sym.multi_all_finite(V("a"), V("b"), num_arrays=2), a=fin, b=fin)[0].tolist() == [1.0]
    assert run(mx.sym.all_finite(V("d")), d=fin.astype(np.float16))[0].dtype == np.float32


def test_random_randint_alias():
    out = mx.nd.random_randint(low=2, high=5, shape=(50,), dtype="int32").asnumpy()
    assert out.dtype == np.int32 and out.min() >= 2 and out.max() < 5


def test_ravel_unravel():
    idx = np.array([[1, 2, 0], [3, 0, 1]], np.float32)
    flat = run(mx.sym.ravel_multi_index(V("i"), shape=(3, 4)), i=idx)[0]
    np.testing.assert_array_equal(flat, np.ravel_multi_index(idx.astype(int), (3, 4)))
    back = run(mx.sym.unravel_index(V("f"), shape=(3, 4)), f=flat)[0]
    np.testing.assert_array_equal(back, idx)
    with pytest.raises(mx.XGraphError, match="ravel_multi_index"):
        mx.sym.ravel_multi_index(V("i"), shape=(3, 4, 5)).infer_shape(i=(2, 3))


def test_index_copy_and_index_array():
    x = np.zeros((5, 3), np.float32)
    t = np.arange(9, dtype=np.float32).reshape(3, 3) + 1
    i = np.array([0, 4, 2], np.float32)
    out = run(mx.sym.contrib.index_copy(V("x"), V("i"), V("t")), x=x, i=i, t=t)[0]
    ref = x.copy()
    ref[[0, 4, 2]] = t
    np.testing.assert_array_equal(out, ref)
    check_grad(mx.sym.contrib.index_copy(V("x"), V("i"), V("t")), {"x": x, "i": i, "t": t}, null=("i",))
    d = np.ones((3, 2, 2), np.float32)
    ia = run(mx.sym.contrib.index_array(V("d"), axes=(1, 0)), d=d)[0]
    np.testing.assert_array_equal(ia, np.stack(np.indices((3, 2, 2))[[1, 0]], axis=-1))


def test_syevd_gradient_is_the_symmetric_one():
    # MXNet's syevd backward returns the gradient for a symmetric A (what a symmetric perturbation sees)
    rng = np.random.default_rng(7)
    s = rng.normal(size=(4, 4))
    s = s + s.T
    gu, gl = rng.normal(size=(4, 4)), rng.normal(size=4)
    sym = mx.sym.linalg.syevd(V("s"))
    ex = sym.bind(mx.cpu(), args={"s": mx.nd.array(s, dtype="float64")},
                  args_grad={"s": mx.nd.zeros((4, 4), dtype="float64")})
    ex.forward(is_train=True)
    ex.backward([mx.nd.array(gu, dtype="float64"), mx.nd.array(gl, dtype="float64")])
    grad = ex.grad_dict["s"].asnumpy()
    np.testing.assert_allclose(grad, grad.T, atol=1e-10)

    def loss(a):
        u, w = (o.asnumpy() for o in sym.eval(s=mx.nd.array(a, dtype="float64")))
        return float((gu * u).sum() + (gl * w).sum())
    e = rng.normal(size=(4, 4))
    e = e + e.T
    eps = 1e-6
    numeric = (loss(s + eps * e) - loss(s - eps * e)) / (2 * eps)
    np.testing.assert_allclose((grad * e).sum(), numeric, rtol=1e-5)
