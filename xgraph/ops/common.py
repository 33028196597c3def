"""Helpers shared by the operator families: shape rules and small lowering utilities.

    >>> from xgraph.ops.common import same_shape_inputs
    >>> same_shape_inputs({}, [(2, 3), None])
    [(2, 3), (2, 3)]
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ShapeError


def fail(message: str) -> None:
    """Raise a :class:`ShapeError`; inference and lowering add the node and op to the message."""
    raise ShapeError(message)


def same_shape_inputs(params: Mapping[str, Any], shapes: list) -> list:
    """Elementwise ops: every input gets the dims known in any of them (0 is an unknown dim, as in MXNet).

    ``(0, 10)`` and ``(12, 0)`` both become ``(12, 10)``; inputs of different ranks are left
    for the op itself to reject.
    """
    known = [tuple(s) for s in shapes if s is not None]
    if not known or any(len(s) != len(known[0]) for s in known):
        return shapes
    merged = tuple(next((d for d in dims if d > 0), 0) for dims in zip(*known))
    return [merged for _ in shapes]


def outputs_fix_inputs(params: Mapping[str, Any], in_shapes: list, out_shapes: list) -> list:
    """Backward rule of shape-preserving ops: every input has the output's shape."""
    return [out_shapes[0] for _ in in_shapes]


def size_fixes_one_unknown(params: Mapping[str, Any], in_shapes: list, out_shapes: list) -> list:
    """Backward rule of size-preserving ops (Reshape): one unknown input size follows from the output's size.

        >>> size_fixes_one_unknown({}, [(0, 3, 5)], [(2, 15)])
        [(2, 3, 5)]
    """
    out, x = out_shapes[0], in_shapes[0]
    if out is None or x is None or not all(out) or list(x).count(0) != 1:
        return in_shapes
    known = int(np.prod([d for d in x if d], dtype=np.int64))
    total = int(np.prod(out, dtype=np.int64))
    if not known or total % known:
        return in_shapes
    return [tuple(total // known if d == 0 else d for d in x), *in_shapes[1:]]


def spatial_tuple(values: Sequence[int], n: int, default: int, what: str) -> tuple[int, ...]:
    """MXNet's empty-tuple defaults for stride/pad/dilate: ``()`` means ``default`` on every spatial axis.

        >>> spatial_tuple((), 2, 1, "stride"), spatial_tuple((2, 3), 2, 1, "stride")
        ((1, 1), (2, 3))
    """
    if len(values) == 0:
        return (default,) * n
    if len(values) != n:
        fail(f"{what} {tuple(values)} has {len(values)} entries, expected {n} (one per spatial axis)")
    return tuple(values)


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    """A non-negative axis, or a ShapeError naming the bad value."""
    if not -ndim <= axis < ndim:
        fail(f"{what} {axis} is out of range for an input of {ndim} dimension(s)")
    return axis % ndim


def normalize_axes(axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    """Non-negative, sorted, de-duplicated axes."""
    return tuple(sorted({normalize_axis(a, ndim) for a in axes}))


def channel_shape(ndim: int, axis: int) -> tuple[int, ...]:
    """A shape that broadcasts a per-channel vector along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def as_float(x: Any) -> Any:
    """``x`` as an inexact array (integers become float32), for ops that need it."""
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def loss_head(forward: Callable[[Any], Any], data_grad: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A loss output ``head(x, label) = forward(x)`` whose gradient with respect to ``x`` is
    ``data_grad(out, label, head_grad)`` and with respect to the label zero: how MXNet's loss
    ops (SoftmaxOutput, the regressions, SVMOutput) define their backward.

        >>> import jax, jax.numpy as jnp
        >>> head = loss_head(lambda x: x, lambda out, lab, ct: out - lab)
        >>> jax.grad(lambda x: head(x, jnp.ones(2)).sum())(jnp.array([3.0, 0.0])).tolist()
        [2.0, -1.0]
    """
    @jax.custom_vjp
    def head(x, lab):
        return forward(x)

    def head_fwd(x, lab):
        out = forward(x)
        return out, (out, lab)

    def head_bwd(res, ct):
        out, lab = res
        return data_grad(out, lab, ct), jnp.zeros_like(lab)

    head.defvjp(head_fwd, head_bwd)
    return head


def flat_draw(sample: Callable[..., Any], shape: Sequence[int], *params: Any) -> Any:
    """``sample(shape, *params)`` drawn over the flattened shape, then reshaped.

    JAX's (default, partitionable) threefry numbers the elements in row-major
    order, so the values are the very same; but XLA CPU compiles the N-d
    counter arithmetic of rank >= 3 draws very slowly (jax 0.10.2: 4-18 s per
    new 4-d shape against under 1 s flat), which every Dropout, random op and
    initializer of a convolution weight paid.  Array parameters are broadcast
    to ``shape`` and flattened with it; scalars pass as they are.  A shape
    with symbolic dimensions is drawn as it is.

        >>> import jax, numpy as np
        >>> k = jax.random.key(0)
        >>> a = flat_draw(lambda s: jax.random.uniform(k, s), (2, 3, 4))
        >>> bool((np.asarray(a) == np.asarray(jax.random.uniform(k, (2, 3, 4)))).all())
        True
    """
    shape = tuple(shape)
    if len(shape) <= 2 or not all(isinstance(d, (int, np.integer)) for d in shape):
        return sample(shape, *params)   # symbolic dimensions (shape-polymorphic export) draw as they are
    size = int(np.prod(shape))
    flat = [p if jnp.ndim(p) == 0 else jnp.broadcast_to(p, shape).reshape(size) for p in params]
    return sample((size,), *flat).reshape(shape)
