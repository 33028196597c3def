"""Helpers shared by the operator families: shape rules and small lowering utilities.

    >>> from xgraph.ops.common import same_shape_inputs
    >>> same_shape_inputs({}, [(2, 3), None])
    [(2, 3), (2, 3)]
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax.numpy as jnp

from ..errors import ShapeError


def fail(message: str) -> None:
    """Raise a :class:`ShapeError`; inference and lowering add the node and op to the message."""
    raise ShapeError(message)


def same_shape_inputs(params: Mapping[str, Any], shapes: list) -> list:
    """Elementwise ops: an unknown input takes the shape of a known one."""
    known = next((s for s in shapes if s is not None and all(d > 0 for d in s)), None)
    return [known if s is None else s for s in shapes]


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
