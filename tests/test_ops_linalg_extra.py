"""MXNet's la_op family (_linalg_*) and contrib ops against numpy references; FD gradients."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry
from opcheck_tensor import check_grad, check_low_precision
from opcheck_tensor import run as _run

RNG = np.random.default_rng(51)
V = mx.sym.var
L = mx.sym.linalg


def run(sym, **inputs):
    """Inference in float32 (the references are float64 numpy arrays)."""
    return _run(sym, **{k: np.asarray(v, np.float32) for k, v in inputs.items()})


def _spd(n, batch=()):
    a = RNG.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _tri(n, batch=()):
    """A well-conditioned full matrix: the ops must read only the triangle they are told to."""
    return RNG.normal(size=batch + (n, n)) * 0.3 + 2 * np.eye(n)


def test_names_and_aliases():
    for short in ("gemm", "gemm2", "potrf", "potri", "trmm", "trsm", "syrk", "det", "slogdet", "inverse",
                  "sumlogdiag", "extractdiag", "makediag"):
        assert registry.get(f"linalg_{short}") is registry.get(f"_linalg_{short}")
        assert short in dir(L)
    assert L.gemm(V("a"), V("b"), V("c"), name="g").tojson().count('"_linalg_gemm"') == 1


def test_gemm_gemm2_with_axis():
    a, b, c = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5, 4)), RNG.normal(size=(2, 3, 5))
    out = run(L.gemm(V("a"), V("b"), V("c"), transpose_b=True, alpha=2.0, beta=-0.5), a=a, b=b, c=c)[0]
    np.testing.assert_allclose(out, 2 * a @ np.swapaxes(b, 1, 2) - 0.5 * c, rtol=1e-5, atol=1e-5)
    out = run(L.gemm2(V("a"), V("b"), transpose_a=True, alpha=3.0), a=np.swapaxes(a, 1, 2), b=b.transpose(0, 2, 1))[0]
    np.testing.assert_allclose(out, 3 * a @ b.transpose(0, 2, 1), rtol=1e-5, atol=1e-5)
    # rows on axis -3: (rows, batch, cols)
    a2, b2 = RNG.normal(size=(3, 2, 4)), RNG.normal(size=(4, 2, 5))
    out = run(L.gemm2(V("a"), V("b"), axis=-3), a=a2, b=b2)[0]
    ref = np.einsum("rbk,kbc->rbc", a2, b2)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("rightside", [False, True])
def test_trmm_trsm(lower, transpose, rightside):
    a = _tri(3, (2,))
    b = RNG.normal(size=(2, 4, 3) if rightside else (2, 3, 4))
    t = np.tril(a) if lower else np.triu(a)
    op = np.swapaxes(t, 1, 2) if transpose else t
    kw = dict(lower=lower, transpose=transpose, rightside=rightside, alpha=1.5)
    want = 1.5 * (b @ op if rightside else op @ b)
    np.testing.assert_allclose(run(L.trmm(V("a"), V("b"), **kw), a=a, b=b)[0], want, rtol=1e-5, atol=1e-5)
    x = run(L.trsm(V("a"), V("b"), **kw), a=a, b=b)[0].astype(np.float64)
    np.testing.assert_allclose(x @ op if rightside else op @ x, 1.5 * b, rtol=1e-4, atol=1e-4)


def test_factorizations_and_reductions():
    s = _spd(3, (2,))
    chol = run(L.potrf(V("a")), a=s)[0]
    np.testing.assert_allclose(chol, np.linalg.cholesky(s), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(L.potri(V("l")), l=np.linalg.cholesky(s))[0], np.linalg.inv(s), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(L.inverse(V("a")), a=s)[0], np.linalg.inv(s), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(L.det(V("a")), a=s)[0], np.linalg.det(s), rtol=1e-4)
    sign, logdet = run(L.slogdet(V("a")), a=-s)
    np.testing.assert_allclose(sign, np.linalg.slogdet(-s)[0])
    np.testing.assert_allclose(logdet, np.linalg.slogdet(-s)[1], rtol=1e-5)
    np.testing.assert_allclose(run(L.sumlogdiag(V("a")), a=s)[0], np.log(np.diagonal(s, 0, 1, 2)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(run(L.syrk(V("a"), alpha=2.0), a=s[0, :2])[0], 2 * s[0, :2] @ s[0, :2].T, rtol=1e-5)
    np.testing.assert_allclose(run(L.syrk(V("a"), transpose=True), a=s[0, :2])[0], s[0, :2].T @ s[0, :2], rtol=1e-5)
    assert L.det(V("a")).infer_shape(a=(3, 3))[1] == [(1,)]
    assert L.det(V("a")).infer_shape(a=(4, 3, 3))[1] == [(4,)]


@pytest.mark.parametrize("offset", [0, 1, -2])
def test_diag(offset):
    a = RNG.normal(size=(2, 4, 4))
    np.testing.assert_allclose(run(L.extractdiag(V("a"), offset=offset), a=a)[0],
                               np.diagonal(a, offset, 1, 2), rtol=1e-6)
    v = RNG.normal(size=(2, 3))
    out = run(L.makediag(V("v"), offset=offset), v=v)[0]
    np.testing.assert_allclose(out, np.stack([np.diag(r, offset) for r in v]), rtol=1e-6)


def test_contrib_ops():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run(mx.sym.contrib.div_sqrt_dim(V("x")), x=x)[0], x / 2.0, rtol=1e-6)
    out = run(mx.sym.contrib.arange_like(V("x"), start=1.0, step=0.5, repeat=2), x=x)[0]
    np.testing.assert_allclose(out, (1.0 + (np.arange(24) // 2) * 0.5).reshape(2, 3, 4))
    out = run(mx.sym.contrib.arange_like(V("x"), axis=-1), x=x)[0]
    np.testing.assert_array_equal(out, np.arange(4, dtype=np.float32))
    assert registry.exists("_contrib_div_sqrt_dim") and registry.exists("_contrib_arange_like")
    np.testing.assert_allclose(mx.nd.contrib.div_sqrt_dim(mx.nd.array(x)).asnumpy(), x / 2.0, rtol=1e-6)


def test_gradients_fd():
    a, b = V("a"), V("b")
    check_grad(L.gemm(a, b, V("c"), transpose_a=True, alpha=0.7, beta=1.3),
               {"a": RNG.normal(size=(3, 2)), "b": RNG.normal(size=(3, 2)), "c": RNG.normal(size=(2, 2))})
    check_grad(L.gemm2(a, b, axis=-3), {"a": RNG.normal(size=(2, 2, 3)), "b": RNG.normal(size=(3, 2, 2))})
    check_grad(L.trmm(a, b, rightside=True, lower=False), {"a": _tri(3), "b": RNG.normal(size=(2, 3))})
    check_grad(L.trsm(a, b, transpose=True, alpha=2.0), {"a": _tri(3), "b": RNG.normal(size=(3, 2))})
    # potrf reads a symmetric matrix: check it through a symmetric parametrisation
    check_grad(L.potrf(L.syrk(a) + L.makediag(b)),
               {"a": RNG.normal(size=(3, 3)), "b": np.array([3.0, 4.0, 5.0])}, rtol=1e-5, atol=1e-7)
    check_grad(L.potri(a), {"a": np.linalg.cholesky(_spd(3))}, rtol=1e-5, atol=1e-7)
    check_grad(L.inverse(a), {"a": _spd(3)}, rtol=1e-5, atol=1e-7)
    check_grad(mx.sym.Group(list(L.slogdet(a)) + [L.det(a), L.sumlogdiag(a)]), {"a": _spd(3)}, rtol=1e-5, atol=1e-7)
    check_grad(mx.sym.Group([L.extractdiag(a, offset=1), L.makediag(b, offset=-1)]),
               {"a": RNG.normal(size=(3, 3)), "b": RNG.normal(size=(2,))})
    check_grad(mx.sym.contrib.div_sqrt_dim(a), {"a": RNG.normal(size=(2, 3))})


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    s = _spd(3).astype(np.float32) / 3
    a, b = V("a"), V("b")
    sym = mx.sym.Group([L.gemm2(a, b), L.syrk(a), L.potrf(a), L.inverse(a), L.det(a), L.trsm(a, b),
                        L.trmm(a, b), L.extractdiag(a), mx.sym.contrib.div_sqrt_dim(a)])
    check_low_precision(sym, {"a": s, "b": RNG.normal(size=(3, 3)).astype(np.float32)}, dtype, scale=4.0)


def test_errors_name_the_node():
    with pytest.raises(mx.ShapeError, match=r"g2.*_linalg_gemm2.*cannot multiply"):
        L.gemm2(V("a"), V("b"), name="g2").infer_shape(a=(2, 3), b=(2, 3))
    with pytest.raises(mx.ShapeError, match=r"g1.*_linalg_gemm.*C has shape"):
        L.gemm(V("a"), V("b"), V("c"), name="g1").infer_shape(a=(2, 3), b=(3, 2), c=(3, 3))
    with pytest.raises(mx.ShapeError, match=r"pf.*_linalg_potrf.*square"):
        L.potrf(V("a"), name="pf").infer_shape(a=(2, 3))
    with pytest.raises(mx.ShapeError, match=r"ts.*_linalg_trsm.*does not fit"):
        L.trsm(V("a"), V("b"), name="ts").infer_shape(a=(3, 3), b=(2, 4))
    with pytest.raises(mx.AttributeValueError, match=r"tm.*_linalg_trmm.*lower"):
        L.trmm(V("a"), V("b"), lower="yes", name="tm")
