"""Matrix products: dot and batch_dot, with MXNet 1.x's N-D and transpose rules.

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

import jax.numpy as jnp

from .attrs import Bool, Enum, Optional, attr
from .common import fail
from .reduce import accum_dtype
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
