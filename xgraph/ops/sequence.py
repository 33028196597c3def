"""Variable-length sequences: SequenceMask, SequenceLast, SequenceReverse.

The data is laid out (T, N, ...) for ``axis=0`` (MXNet's default) or
(N, T, ...) for ``axis=1``.  The optional ``sequence_length`` input, of shape
(N,), exists only when ``use_sequence_length=True``; without it every sequence
has the full length T.  Lengths arrive as floats (MXNet's default dtype) and
are truncated; they never receive a gradient.

    >>> import xgraph as mx
    >>> s = mx.sym.SequenceLast(mx.sym.var('x'), use_sequence_length=True, name='last')
    >>> s.list_arguments(), s.infer_shape(x=(5, 2, 3))[1]
    (['x', 'last_sequence_length'], [(2, 3)])
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .attrs import Bool, Float, Int, attr
from .common import fail
from .indexing import as_index
from .registry import Op, optional_input, register


def _lengths(p: dict, data: Any, seq_len: Any | None, what: str) -> tuple[int, Any | None]:
    """(time axis, integer lengths of shape (N,) or None), validating the layout."""
    axis = p["axis"]
    if axis not in (0, 1):
        fail(f"{what}: axis must be 0 (data is (T, N, ...)) or 1 ((N, T, ...)), got {axis}")
    if data.ndim < 2:
        fail(f"{what}: data needs at least 2 dimensions (time and batch), got {tuple(data.shape)}")
    if seq_len is None:
        return axis, None
    batch = data.shape[1 - axis]
    if tuple(seq_len.shape) != (batch,):
        fail(f"{what}: sequence_length has shape {tuple(seq_len.shape)}, expected ({batch},) "
             f"(the batch axis {1 - axis} of data)")
    return axis, jnp.clip(as_index(seq_len), 0, data.shape[axis])


def _time_batch_grid(data: Any, axis: int) -> tuple[Any, Any]:
    """Time and batch index arrays broadcastable against ``data``."""
    t = jnp.arange(data.shape[axis])
    n = jnp.arange(data.shape[1 - axis])
    shape_t = [1] * data.ndim
    shape_t[axis] = -1
    shape_n = [1] * data.ndim
    shape_n[1 - axis] = -1
    return t.reshape(shape_t), n.reshape(shape_n)


def _seq_infer(p, shapes):
    shapes = list(shapes)
    data = shapes[0]
    if len(shapes) == 2 and shapes[1] is None and data is not None and len(data) >= 2 and p["axis"] in (0, 1):
        shapes[1] = (data[1 - p["axis"]],)
    return shapes


def _mask_lower(ctx, p, data, seq_len=None):
    axis, lengths = _lengths(p, data, seq_len, "SequenceMask")
    if lengths is None:
        return data
    t, n = _time_batch_grid(data, axis)
    keep = t < lengths[n]
    return jnp.where(keep, data, jnp.asarray(p["value"], data.dtype))


def _last_lower(ctx, p, data, seq_len=None):
    axis, lengths = _lengths(p, data, seq_len, "SequenceLast")
    if lengths is None:
        return jnp.take(data, data.shape[axis] - 1, axis=axis)
    last = jnp.maximum(lengths - 1, 0)
    moved = jnp.moveaxis(data, axis, 0)                    # (T, N, ...)
    return moved[last, jnp.arange(moved.shape[1])]


def _reverse_lower(ctx, p, data, seq_len=None):
    axis, lengths = _lengths(p, data, seq_len, "SequenceReverse")
    if axis != 0:
        fail(f"SequenceReverse: only axis=0 is supported (as in MXNet), got {axis}")
    if lengths is None:
        return jnp.flip(data, 0)
    t = jnp.arange(data.shape[0])[:, None]
    src = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)   # (T, N)
    return data[src, jnp.arange(data.shape[1])[None, :]]


def _seq_op(name: str, lower: Any, extra: tuple, doc: str) -> None:
    register(Op(
        name, lower,
        inputs=("data", optional_input("sequence_length", lambda p: p["use_sequence_length"],
                                       "the length of each sequence, shape (N,)")),
        attrs=(attr("use_sequence_length", Bool(), False, "take the lengths from the sequence_length input"),
               *extra,
               attr("axis", Int(), 0, "the time axis: 0 for (T, N, ...), 1 for (N, T, ...)")),
        infer_inputs=_seq_infer, family="sequence", doc=doc))


_seq_op("SequenceMask", _mask_lower, (attr("value", Float(), 0.0, "the value past each sequence's end"),),
        "Set the steps past each sequence's length to value; the gradient is 0 there.")
_seq_op("SequenceLast", _last_lower, (),
        "The last valid step of each sequence: (T, N, C) data gives (N, C).")
_seq_op("SequenceReverse", _reverse_lower, (),
        "Reverse the first length steps of each sequence (axis 0 only); later steps stay in place.")
