"""Matrix products and MXNet's ``la_op`` family: dot, batch_dot, diag, and ``_linalg_*`` (gemm, gemm2, trmm,
trsm, syrk, potrf, potri, inverse, det, slogdet, sumlogdiag, extractdiag, makediag, extracttrian,
maketrian, gelqf, syevd).

The ``_linalg_*`` ops work on the last two axes with any leading batch axes;
they are reached as ``mx.sym.linalg.gemm`` etc. (or their aliases
``linalg_gemm`` ...).  Triangular ops read only the named triangle of A.
Results with no matrix axis left (det of one matrix) have shape ``(1,)``.

``dot`` views an N-D ``a`` as a matrix (all leading axes, last axis) and an N-D
``b`` as (first axis, all trailing axes), so it contracts the last axis of
``a`` with the first axis of ``b``.  ``transpose_a`` views ``a`` as
(first axis, trailing axes) transposed instead, contracting its first axis;
``transpose_b`` contracts the last axis of ``b``.  A 1-D by 1-D dot gives
shape ``(1,)``.  Low-precision inputs multiply with float32 accumulation.

    >>> import xgraph as mx
    >>> mx.sym.dot(mx.sym.var('a'), mx.sym.var('b')).infer_shape(a=(2, 3, 4), b=(4, 5))[1]
    [(2, 3, 5)]
    >>> mx.sym.batch_dot(mx.sym.var('a'), mx.sym.var('b'), transpose_b=True).infer_shape(a=(2, 3, 4), b=(2, 5, 4))[1]
    [(2, 3, 5)]
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg  # noqa: F401  (cho_solve)
import numpy as np

from .attrs import Bool, Enum, Float, Int, Optional, attr
from .common import fail, normalize_axis
from .reduce import accum_dtype, at_least_1d
from .registry import Op, register


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` accumulating float16/bfloat16 in float32, in the inputs' dtype.

        >>> matmul(jnp.ones((2, 3)), jnp.ones((3, 1))).tolist()
        [[3.0], [3.0]]
    """
    acc = accum_dtype(a.dtype)
    return jnp.matmul(a, b, preferred_element_type=acc).astype(a.dtype)


def _dot_lower(ctx, p, a, b):
    ta, tb = p["transpose_a"], p["transpose_b"]
    if a.ndim == 0 or b.ndim == 0:
        fail("dot needs inputs with at least one dimension")
    a2 = a.reshape(a.shape[0], math.prod(a.shape[1:])).T if ta else a.reshape(math.prod(a.shape[:-1]), a.shape[-1])
    b2 = b.reshape(math.prod(b.shape[:-1]), b.shape[-1]).T if tb else b.reshape(b.shape[0], math.prod(b.shape[1:]))
    if a2.shape[1] != b2.shape[0]:
        fail(f"dot{' transpose_a' if ta else ''}{' transpose_b' if tb else ''}: cannot contract "
             f"{'the first' if ta else 'the last'} axis of lhs {tuple(a.shape)} ({a2.shape[1]}) with "
             f"{'the last' if tb else 'the first'} axis of rhs {tuple(b.shape)} ({b2.shape[0]})")
    out_shape = ()
    if a.ndim > 1:
        out_shape += tuple(a.shape[1:] if ta else a.shape[:-1])
    if b.ndim > 1:
        out_shape += tuple(b.shape[:-1] if tb else b.shape[1:])
    return matmul(a2, b2).reshape(out_shape or (1,))


_DOT_ATTRS = (
    attr("transpose_a", Bool(), False, "transpose the first input"),
    attr("transpose_b", Bool(), False, "transpose the second input"),
    attr("forward_stype", Optional(Enum(("default", "row_sparse", "csr"))), None,
         "(MXNet: storage type of the output; ignored, every array is dense)"),
)

register(Op("dot", _dot_lower, inputs=("lhs", "rhs"), attrs=_DOT_ATTRS, family="linalg",
            doc="Matrix product; N-D inputs contract the last axis of lhs with the first axis of rhs."))


def _batch_dot_lower(ctx, p, a, b):
    if a.ndim < 3 or a.ndim != b.ndim:
        fail(f"batch_dot needs two inputs with the same number (>= 3) of dimensions, "
             f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[:-2] != b.shape[:-2]:
        fail(f"batch_dot: batch dimensions differ, {tuple(a.shape[:-2])} and {tuple(b.shape[:-2])}")
    a2 = jnp.swapaxes(a, -1, -2) if p["transpose_a"] else a
    b2 = jnp.swapaxes(b, -1, -2) if p["transpose_b"] else b
    if a2.shape[-1] != b2.shape[-2]:
        fail(f"batch_dot: cannot multiply matrices of shape {tuple(a2.shape[-2:])} and {tuple(b2.shape[-2:])} "
             f"(after transpose_a={p['transpose_a']}, transpose_b={p['transpose_b']})")
    return matmul(a2, b2)


register(Op("batch_dot", _batch_dot_lower, inputs=("lhs", "rhs"), attrs=_DOT_ATTRS, family="linalg",
            doc="Batched matrix product of (B, M, K) and (B, K, N) arrays (transpose_a/b swap the last two axes)."))


# -- la_op: _linalg_* (matrices on the last two axes, any leading batch axes) --------------
def _square(a: Any, what: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        fail(f"{what} needs square matrices on the last two axes, got {tuple(a.shape)}")


def _t(a: Any) -> Any:
    return jnp.swapaxes(a, -1, -2)


def _rows_axis(axis: int, *xs: Any) -> list[Any]:
    """Move ``axis`` (MXNet's row axis for gemm/gemm2) next to the last axis."""
    if axis == -2:
        return list(xs)
    return [jnp.moveaxis(x, normalize_axis(axis, x.ndim, "axis"), -2) for x in xs]


def _gemm_core(p: dict, a: Any, b: Any, what: str) -> Any:
    if a.ndim < 2 or a.ndim != b.ndim:
        fail(f"{what} needs A and B with the same number (>= 2) of dimensions, "
             f"got {tuple(a.shape)} and {tuple(b.shape)}")
    a2 = _t(a) if p["transpose_a"] else a
    b2 = _t(b) if p["transpose_b"] else b
    if a2.shape[:-2] != b2.shape[:-2] or a2.shape[-1] != b2.shape[-2]:
        fail(f"{what}: cannot multiply op(A) {tuple(a2.shape)} by op(B) {tuple(b2.shape)}")
    return matmul(a2, b2) * jnp.asarray(p["alpha"], a.dtype)


def _gemm_lower(ctx, p, a, b, c):
    axis = p["axis"]
    a, b, c = _rows_axis(axis, a, b, c)
    out = _gemm_core(p, a, b, "linalg_gemm")
    if c.shape != out.shape:
        fail(f"linalg_gemm: C has shape {tuple(c.shape)}, expected {tuple(out.shape)}")
    out = out + jnp.asarray(p["beta"], c.dtype) * c
    return out if axis == -2 else jnp.moveaxis(out, -2, normalize_axis(axis, out.ndim))


def _gemm2_lower(ctx, p, a, b):
    axis = p["axis"]
    a, b = _rows_axis(axis, a, b)
    out = _gemm_core(p, a, b, "linalg_gemm2")
    return out if axis == -2 else jnp.moveaxis(out, -2, normalize_axis(axis, out.ndim))


_GEMM_ATTRS = (attr("transpose_a", Bool(), False, "use A transposed"),
               attr("transpose_b", Bool(), False, "use B transposed"),
               attr("alpha", Float(), 1.0, "scale of op(A) op(B)"))
_AXIS_ATTR = attr("axis", Int(), -2, "the axis of the matrix rows (the columns are the last axis)")

register(Op("_linalg_gemm", _gemm_lower, inputs=("A", "B", "C"), aliases=("linalg_gemm",), family="linalg",
            attrs=_GEMM_ATTRS + (attr("beta", Float(), 1.0, "scale of C"), _AXIS_ATTR),
            doc="alpha * op(A) op(B) + beta * C on batches of matrices."))
register(Op("_linalg_gemm2", _gemm2_lower, inputs=("A", "B"), aliases=("linalg_gemm2",), family="linalg",
            attrs=_GEMM_ATTRS + (_AXIS_ATTR,), doc="alpha * op(A) op(B) on batches of matrices."))


def _triangle(a: Any, lower: bool) -> Any:
    return jnp.tril(a) if lower else jnp.triu(a)


def _trmm_lower(ctx, p, a, b):
    _square(a, "linalg_trmm")
    tri = _triangle(a, p["lower"])
    op = _t(tri) if p["transpose"] else tri
    alpha = jnp.asarray(p["alpha"], b.dtype)
    out = matmul(b, op) if p["rightside"] else matmul(op, b)
    return alpha * out


def _trsm_lower(ctx, p, a, b):
    _square(a, "linalg_trsm")
    n = a.shape[-1]
    if b.ndim != a.ndim or (b.shape[-1] if p["rightside"] else b.shape[-2]) != n:
        fail(f"linalg_trsm: B {tuple(b.shape)} does not fit the triangular matrix {tuple(a.shape)} "
             f"(rightside={p['rightside']})")
    x = jax.lax.linalg.triangular_solve(_triangle(a, p["lower"]), b, left_side=not p["rightside"],
                                        lower=p["lower"], transpose_a=p["transpose"])
    return jnp.asarray(p["alpha"], b.dtype) * x


_TRI_ATTRS = (attr("transpose", Bool(), False, "use the triangular matrix transposed"),
              attr("rightside", Bool(), False, "multiply (solve) from the right: B op(A)"),
              attr("lower", Bool(), True, "A is lower (True) or upper triangular"),
              attr("alpha", Float(), 1.0, "scale of the result"))
register(Op("_linalg_trmm", _trmm_lower, inputs=("A", "B"), aliases=("linalg_trmm",), attrs=_TRI_ATTRS,
            family="linalg", doc="alpha * op(A) B (or alpha * B op(A)) for a triangular A."))
register(Op("_linalg_trsm", _trsm_lower, inputs=("A", "B"), aliases=("linalg_trsm",), attrs=_TRI_ATTRS,
            family="linalg", doc="Solve op(A) X = alpha B (or X op(A) = alpha B) for a triangular A."))


def _syrk_lower(ctx, p, a):
    if a.ndim < 2:
        fail(f"linalg_syrk needs matrices, got {tuple(a.shape)}")
    out = matmul(_t(a), a) if p["transpose"] else matmul(a, _t(a))
    return jnp.asarray(p["alpha"], a.dtype) * out


register(Op("_linalg_syrk", _syrk_lower, inputs=("A",), aliases=("linalg_syrk",), family="linalg",
            attrs=(attr("transpose", Bool(), False, "A^T A instead of A A^T"),
                   attr("alpha", Float(), 1.0, "scale of the result")),
            doc="alpha * A A^T (or alpha * A^T A)."))


def _float32_for(a: Any) -> Any:
    """Factorizations run in float32 for float16/bfloat16 inputs (LAPACK has no half precision)."""
    return a.astype(jnp.float32) if a.dtype in (jnp.float16, jnp.bfloat16) else a


def _square_unary(name: str, fn: Any, doc: str, alias: bool = True, scalar_out: bool = False,
                  attrs: tuple = ()) -> None:
    """Register an op of one batch of square matrices; ``fn(a, **attributes)``."""
    def lower(ctx, p, a):
        _square(a, name[1:])
        out = fn(_float32_for(a), **{at.name: p[at.name] for at in attrs})
        if isinstance(out, tuple):
            return tuple(at_least_1d(o.astype(a.dtype)) if scalar_out else o.astype(a.dtype) for o in out)
        return at_least_1d(out.astype(a.dtype)) if scalar_out else out.astype(a.dtype)
    register(Op(name, lower, inputs=("A",), aliases=(name[1:],) if alias else (), family="linalg", doc=doc,
                attrs=attrs, num_outputs=2 if name == "_linalg_slogdet" else 1))


def _potrf(a: Any, lower: bool) -> Any:
    factor = jnp.linalg.cholesky(a)
    return factor if lower else _t(factor)


def _potri(factor: Any, lower: bool) -> Any:
    eye = jnp.broadcast_to(jnp.eye(factor.shape[-1], dtype=factor.dtype), factor.shape)
    return jax.scipy.linalg.cho_solve((_triangle(factor, lower), lower), eye)


_LOWER_FACTOR = (attr("lower", Bool(), True, "the factor is lower (A = L L^T) or upper (A = U^T U) triangular"),)


def _sumlogdiag(a: Any) -> Any:
    return jnp.sum(jnp.log(jnp.diagonal(a, axis1=-2, axis2=-1)), axis=-1)


_square_unary("_linalg_potrf", _potrf,
              "Cholesky factor of symmetric positive definite matrices: L with A = L L^T (or U with A = U^T U).",
              attrs=_LOWER_FACTOR)
_square_unary("_linalg_potri", _potri, "The inverse (L L^T)^-1 (or (U^T U)^-1) from a Cholesky factor.",
              attrs=_LOWER_FACTOR)
_square_unary("_linalg_inverse", jnp.linalg.inv, "The inverse of square matrices.")
_square_unary("_linalg_det", jnp.linalg.det, "Determinants; one matrix gives shape (1,).", scalar_out=True)
_square_unary("_linalg_slogdet", lambda a: tuple(jnp.linalg.slogdet(a)),
              "(sign, log|det|) of square matrices; one matrix gives shapes (1,).", scalar_out=True)
_square_unary("_linalg_sumlogdiag", _sumlogdiag, "Sum of the logs of the diagonal; one matrix gives (1,).",
              scalar_out=True)


def _extractdiag_lower(ctx, p, a):
    if a.ndim < 2:
        fail(f"linalg_extractdiag needs matrices, got {tuple(a.shape)}")
    k = p["offset"]
    if not -a.shape[-2] < k < a.shape[-1]:
        fail(f"linalg_extractdiag: offset {k} is outside a {a.shape[-2]}x{a.shape[-1]} matrix")
    return jnp.diagonal(a, offset=k, axis1=-2, axis2=-1)


def _makediag_lower(ctx, p, a):
    k = p["offset"]
    n = a.shape[-1] + abs(k)
    rows = jnp.arange(a.shape[-1]) + max(-k, 0)
    cols = jnp.arange(a.shape[-1]) + max(k, 0)
    return jnp.zeros(a.shape[:-1] + (n, n), a.dtype).at[..., rows, cols].set(a)


_OFFSET = (attr("offset", Int(), 0, "the diagonal: 0 main, > 0 above, < 0 below"),)
register(Op("_linalg_extractdiag", _extractdiag_lower, inputs=("A",), aliases=("linalg_extractdiag",),
            attrs=_OFFSET, family="linalg", doc="The diagonal (at offset) of matrices: (..., n, n) -> (..., m)."))
register(Op("_linalg_makediag", _makediag_lower, inputs=("A",), aliases=("linalg_makediag",),
            attrs=_OFFSET, family="linalg", doc="Diagonal matrices from vectors: (..., n) -> (..., n+|k|, n+|k|)."))


# -- triangles, LQ and symmetric eigendecomposition ---------------------------------------------
def _trian_indices(n: int, k: int, lower: bool) -> tuple[Any, Any]:
    """(rows, cols) of a triangle of an n x n matrix in MXNet's packing order.

    The lower triangle below diagonal ``k <= 0`` is packed row by row; an upper
    triangle (``k > 0``, or ``k == 0`` and not ``lower``) is packed as the lower
    triangle of the transposed matrix, i.e. column by column.

        >>> [r.tolist() for r in _trian_indices(2, 0, False)]
        [[0, 0, 1], [0, 1, 1]]
    """
    m = n - abs(k)
    r, c = np.tril_indices(m)          # row-major lower triangle of the (n-|k|) square
    r = r + abs(k)
    if k > 0 or (k == 0 and not lower):
        return c, r                    # transposed coordinates
    return r, c


def _check_trian_offset(what: str, n: int, k: int) -> None:
    if abs(k) >= n:
        fail(f"{what}: offset {k} is outside a {n}x{n} matrix")


def _extracttrian_lower(ctx, p, a):
    _square(a, "linalg_extracttrian")
    n, k = a.shape[-1], p["offset"]
    _check_trian_offset("linalg_extracttrian", n, k)
    rows, cols = _trian_indices(n, k, p["lower"])
    return a[..., rows, cols]


def _maketrian_lower(ctx, p, a):
    if a.ndim < 1:
        fail("linalg_maketrian needs an input with at least one dimension")
    m = a.shape[-1]
    side = int(round((math.sqrt(8 * m + 1) - 1) / 2))
    if side * (side + 1) // 2 != m or m == 0:
        fail(f"linalg_maketrian: the last axis ({m}) is not a triangular number n*(n+1)/2")
    k = p["offset"]
    n = side + abs(k)
    rows, cols = _trian_indices(n, k, p["lower"])
    return jnp.zeros(a.shape[:-1] + (n, n), a.dtype).at[..., rows, cols].set(a)


_TRIAN = (attr("offset", Int(), 0, "the diagonal bounding the triangle: 0 main, > 0 above, < 0 below"),
          attr("lower", Bool(), True, "the lower (True) or upper triangle; only used when offset is 0"))
register(Op("_linalg_extracttrian", _extracttrian_lower, inputs=("A",), aliases=("linalg_extracttrian",),
            attrs=_TRIAN, family="linalg",
            doc="A triangle of square matrices packed into a vector: (..., n, n) -> (..., m(m+1)/2), m = n-|offset| "
                "(lower: row by row; upper: column by column, as MXNet)."))
register(Op("_linalg_maketrian", _maketrian_lower, inputs=("A",), aliases=("linalg_maketrian",),
            attrs=_TRIAN, family="linalg",
            doc="The inverse of extracttrian: packed triangles (..., m(m+1)/2) -> (..., m+|offset|, m+|offset|)."))


def _gelqf_lower(ctx, p, a):
    if a.ndim < 2 or a.shape[-2] > a.shape[-1]:
        fail(f"linalg_gelqf needs matrices (x, y) with x <= y on the last two axes, got {tuple(a.shape)}")
    q, r = jnp.linalg.qr(_t(_float32_for(a)), mode="reduced")      # A^T = Q R  ->  A = R^T Q^T
    return _t(q).astype(a.dtype), _t(r).astype(a.dtype)


register(Op("_linalg_gelqf", _gelqf_lower, inputs=("A",), aliases=("linalg_gelqf",), num_outputs=2,
            family="linalg",
            doc="LQ factorization A = L Q of (x, y) matrices with x <= y: outputs Q (x, y), row-orthonormal, "
                "and L (x, x), lower triangular (LAPACK's Householder signs)."))


def _syevd_lower(ctx, p, a):
    _square(a, "linalg_syevd")
    w, v = jnp.linalg.eigh(_float32_for(a), symmetrize_input=True)    # MXNet's gradient is the symmetric one
    u = _t(v)                                                      # rows are eigenvectors
    big = jnp.argmax(jnp.abs(jax.lax.stop_gradient(u)), axis=-1)
    sign = jnp.where(jnp.take_along_axis(jax.lax.stop_gradient(u), big[..., None], axis=-1) < 0, -1.0, 1.0)
    return (u * sign.astype(u.dtype)).astype(a.dtype), w.astype(a.dtype)


register(Op("_linalg_syevd", _syevd_lower, inputs=("A",), aliases=("linalg_syevd",), num_outputs=2,
            family="linalg",
            doc="Eigendecomposition U A = diag(L) U of symmetric matrices: U's rows are the eigenvectors "
                "(each with its largest-magnitude entry positive, as MXNet), L ascending."))


# -- diag ----------------------------------------------------------------------------------
def _diag_lower(ctx, p, x):
    k = p["k"]
    if x.ndim == 0:
        fail("diag needs an input with at least one dimension")
    if x.ndim == 1:
        n = x.shape[0] + abs(k)
        idx = jnp.arange(x.shape[0])
        return jnp.zeros((n, n), x.dtype).at[idx + max(-k, 0), idx + max(k, 0)].set(x)
    a1 = normalize_axis(p["axis1"], x.ndim, "axis1")
    a2 = normalize_axis(p["axis2"], x.ndim, "axis2")
    if a1 == a2:
        fail(f"diag: axis1 and axis2 both name axis {a1}")
    h, w = x.shape[a1], x.shape[a2]
    if min(h + min(k, 0), w - max(k, 0)) < 0:
        fail(f"diag: diagonal k={k} does not exist in a {h}x{w} matrix (axes {a1}, {a2})")
    return jnp.diagonal(x, offset=k, axis1=a1, axis2=a2)


register(Op("diag", _diag_lower, family="linalg",
            attrs=(attr("k", Int(), 0, "the diagonal: 0 main, > 0 above, < 0 below"),
                   attr("axis1", Int(), 0, "the first axis of the matrices (N-D input)"),
                   attr("axis2", Int(), 1, "the second axis of the matrices (N-D input)")),
            doc="A 1-D input gives the square matrix with it on diagonal k; an N-D input gives diagonal k of "
                "the matrices on axes (axis1, axis2), appended as the last axis."))
