"""Indexing and ordering: take, pick, one_hot, gather_nd, scatter_nd, topk, sort, argsort.

MXNet 1.x conventions kept here:

* indices arrive as floating arrays (MXNet's default dtype) and are truncated
  to integers; they never receive a gradient;
* ``take``'s ``mode='raise'`` cannot raise inside a compiled XLA program: it
  behaves as ``'clip'`` (MXNet's own GPU kernel does not check either);
* ``one_hot`` gives an all-``off_value`` row for an index outside ``[0, depth)``;
* ``topk``/``argsort`` return indices in ``dtype`` (float32 by default);
  ``k < 1`` selects the whole axis; ``axis=None`` works on the flattened input;
* gradients: ``take``/``pick``/``gather_nd`` scatter-add the head gradient back,
  ``topk`` (``ret_typ='value'`` or ``'both'``) and ``sort`` route it to the
  selected positions, ``scatter_nd`` gathers it.

    >>> import xgraph as mx
    >>> mx.sym.take(mx.sym.var('a'), mx.sym.var('i')).infer_shape(a=(5, 3), i=(2, 4))[1]
    [(2, 4, 3)]
    >>> mx.sym.topk(mx.sym.var('x'), k=2, ret_typ='both').infer_shape(x=(3, 6))[1]
    [(3, 2), (3, 2)]
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import dtypes as _dt
from .attrs import Axes, Bool, DType, Enum, Float, Int, Optional, Shape, attr
from .common import fail, normalize_axis
from .registry import Op, register

_INDEX_DTYPES = Enum(("uint8", "int32", "int64", "float16", "float32", "float64"))


def as_index(x: Any) -> Any:
    """Integer indices from MXNet's (usually floating) index arrays, truncated toward zero.

        >>> as_index(jnp.array([1.7, -0.5])).tolist()
        [1, 0]
    """
    return jax.lax.stop_gradient(x).astype(jnp.int32)


def wrap_or_clip(idx: Any, size: int, mode: str) -> Any:
    """Bring indices into ``[0, size)``: modulo for ``'wrap'``, clamping otherwise.

        >>> wrap_or_clip(jnp.array([-1, 5]), 4, 'wrap').tolist(), wrap_or_clip(jnp.array([-1, 5]), 4, 'clip').tolist()
        ([3, 1], [0, 3])
    """
    return jnp.mod(idx, size) if mode == "wrap" else jnp.clip(idx, 0, size - 1)


# -- take ---------------------------------------------------------------------------
def _take_lower(ctx, p, a, indices):
    if a.ndim == 0:
        fail("take needs data with at least one dimension")
    axis = normalize_axis(p["axis"], a.ndim)
    idx = wrap_or_clip(as_index(indices), a.shape[axis], p["mode"])
    return jnp.take(a, idx, axis=axis)


register(Op(
    "take", _take_lower, inputs=("a", "indices"),
    attrs=(attr("axis", Int(), 0, "the axis to take from"),
           attr("mode", Enum(("raise", "wrap", "clip")), "clip",
                "out-of-range indices: 'clip' clamps, 'wrap' wraps; 'raise' acts as 'clip' (no checks in XLA)")),
    family="indexing",
    doc="Take slices along axis: take(a of (5,3), indices of (2,4)) is (2,4,3)."))


# -- pick -------------------------------------------------------------------------------
def _pick_lower(ctx, p, data, index):
    if p["axis"] is None:
        data, axis = data.reshape(-1), 0
        index = index.reshape(-1)[:1]
    else:
        axis = normalize_axis(p["axis"], data.ndim)
    want = data.shape[:axis] + data.shape[axis + 1:]
    if tuple(index.shape) == want:
        index = jnp.expand_dims(index, axis)
    elif tuple(index.shape) != data.shape[:axis] + (1,) + data.shape[axis + 1:]:
        fail(f"pick: index has shape {tuple(index.shape)}, expected {tuple(want)} (data without axis {axis})")
    idx = wrap_or_clip(as_index(index), data.shape[axis], p["mode"])
    out = jnp.take_along_axis(data, idx, axis=axis)
    return out if p["keepdims"] else jnp.squeeze(out, axis).reshape(want or (1,))


def _pick_infer(p, shapes):
    data, index = shapes
    if index is None and data is not None and p["axis"] is not None and -len(data) <= p["axis"] < len(data):
        ax = p["axis"] % len(data)
        return [data, tuple(data[:ax] + data[ax + 1:]) or (1,)]
    return shapes


register(Op(
    "pick", _pick_lower, inputs=("data", "index"), infer_inputs=_pick_infer,
    attrs=(attr("axis", Optional(Int()), -1, "the axis to pick along; None: the flattened input"),
           attr("keepdims", Bool(), False, "keep the picked axis with size 1"),
           attr("mode", Enum(("wrap", "clip")), "clip", "out-of-range indices: clamp or wrap")),
    family="indexing",
    doc="One element per position along axis: pick(x of (N,C), index of (N,)) is (N,)."))


def _batch_take_lower(ctx, p, a, indices):
    if a.ndim < 1 or a.shape[-1] == 0:
        fail(f"a must have a non-empty last axis, got shape {tuple(a.shape)}")
    m = a.shape[-1]
    rows = a.size // m
    if indices.size > rows:
        fail(f"indices has {indices.size} elements but a has only {rows} rows of {m}")
    flat = a.reshape(rows, m)
    j = jnp.clip(indices.reshape(-1).astype(jnp.int32), 0, m - 1)
    return flat[jnp.arange(indices.size), j].reshape(indices.shape)


register(Op(
    "batch_take", _batch_take_lower, inputs=("a", "indices"), family="indexing", differentiable=False,
    doc="out[i] = a[i, indices[i]] for a of (N, M), indices clamped to 0 .. M-1 (MXNet's deprecated "
        "form of pick; no gradient, as in MXNet)."))


# -- one_hot ----------------------------------------------------------------------------
def _one_hot_dtype(p, dtypes):
    return dtypes, [_dt.canonical(p["dtype"])]


def _one_hot_lower(ctx, p, indices):
    dtype = _dt.canonical(p["dtype"])
    hot = jax.nn.one_hot(as_index(indices), p["depth"], dtype=jnp.bool_)
    return jnp.where(hot, jnp.asarray(p["on_value"], dtype), jnp.asarray(p["off_value"], dtype))


register(Op(
    "one_hot", _one_hot_lower, inputs=("indices",), infer_dtype=_one_hot_dtype, differentiable=False,
    attrs=(attr("depth", Int(min=0), doc="the number of classes (0 gives an empty last axis, as MXNet)"),
           attr("on_value", Float(), 1.0, "the value at the index"),
           attr("off_value", Float(), 0.0, "the value elsewhere"),
           attr("dtype", DType(), "float32", "the output dtype")),
    family="indexing",
    doc="One-hot rows: one_hot(indices of (N,), depth=5) is (N,5); out-of-range indices give off_value rows."))


# -- gather_nd / scatter_nd -------------------------------------------------------------
def _nd_index(indices: Any, shape: tuple, what: str) -> tuple:
    """The leading index tuple of ``gather_nd``/``scatter_nd``: indices (M, ...) address M axes."""
    if indices.ndim == 0:
        fail(f"{what}: indices need at least one dimension")
    m = indices.shape[0]
    if m > len(shape):
        fail(f"{what}: indices address {m} axes but the array {tuple(shape)} has {len(shape)}")
    idx = as_index(indices)
    return tuple(jnp.where(idx[i] < 0, idx[i] + shape[i], idx[i]) for i in range(m))


def _gather_nd_lower(ctx, p, data, indices):
    return data[_nd_index(indices, data.shape, "gather_nd")]


register(Op(
    "gather_nd", _gather_nd_lower, inputs=("data", "indices"), family="indexing",
    doc="Gather by index tuples: indices of (M, Y...) give an output of (Y...) + data.shape[M:]."))


def _scatter_nd_lower(ctx, p, data, indices):
    shape = tuple(p["shape"])
    if not shape:
        fail("scatter_nd needs the output shape")
    index = _nd_index(indices, shape, "scatter_nd")
    want = tuple(indices.shape[1:]) + shape[indices.shape[0]:]
    if tuple(data.shape) != want:
        fail(f"scatter_nd: data has shape {tuple(data.shape)}, expected {want} "
             f"(indices {tuple(indices.shape)}, shape {shape})")
    return jnp.zeros(shape, data.dtype).at[index].set(data)


register(Op(
    "scatter_nd", _scatter_nd_lower, inputs=("data", "indices"), family="indexing",
    attrs=(attr("shape", Shape(), doc="the output shape"),),
    doc="Scatter into zeros of the given shape (the inverse of gather_nd); duplicate indices: one wins."))


# -- topk / sort / argsort --------------------------------------------------------------
def _ordered(x: Any, axis: int | None, ascending: bool) -> tuple[Any, int, Any]:
    """(x moved so the sorted axis is last, that axis, stable sort order along it)."""
    if axis is None:
        xm, ax = x.reshape(-1), 0
    else:
        ax = normalize_axis(axis, x.ndim)
        xm = jnp.moveaxis(x, ax, -1)
    order = jnp.argsort(jax.lax.stop_gradient(xm), axis=-1, stable=True, descending=not ascending)
    return xm, ax, order


def _topk_core(x: Any, axis: int | None, k: int, ascending: bool) -> tuple[Any, Any, int, Any]:
    xm, ax, order = _ordered(x, axis, ascending)
    n = xm.shape[-1]
    k = n if k < 1 or k > n else k
    idx = order[..., :k]
    values = jnp.take_along_axis(xm, idx, axis=-1)
    return xm, values, ax, idx


def _restore(y: Any, axis: int | None, ax: int) -> Any:
    """Move the sorted axis back where it was (nothing to do for a flattened input)."""
    return y if axis is None else jnp.moveaxis(y, -1, ax)


def _topk_lower(ctx, p, x):
    axis, ret = p["axis"], p["ret_typ"]
    xm, values, ax, idx = _topk_core(x, axis, p["k"], p["is_ascend"])
    idx_out = _restore(idx, axis, ax).astype(_dt.canonical(p["dtype"]))
    if ret == "mask":
        mask = jnp.zeros(xm.shape, x.dtype)
        mask = jnp.put_along_axis(mask, idx, jnp.ones((), x.dtype), axis=-1, inplace=False)
        return jax.lax.stop_gradient(_restore(mask, axis, ax).reshape(x.shape))
    if ret == "indices":
        return jax.lax.stop_gradient(idx_out)
    values = _restore(values, axis, ax)
    if ret == "value":
        return values
    return values, jax.lax.stop_gradient(idx_out)


register(Op(
    "topk", _topk_lower,
    attrs=(attr("axis", Optional(Int()), -1, "the axis to search; None: the flattened input"),
           attr("k", Int(), 1, "how many elements; k < 1 takes the whole axis"),
           attr("ret_typ", Enum(("value", "indices", "mask", "both")), "indices",
                "return the values, their indices, a 0/1 mask of the input's shape, or values and indices"),
           attr("is_ascend", Bool(), False, "select the smallest instead of the largest"),
           attr("dtype", _INDEX_DTYPES, "float32", "the dtype of the indices")),
    num_outputs=lambda p: 2 if p["ret_typ"] == "both" else 1,
    family="indexing",
    doc="The k largest (or smallest) elements along an axis: topk(x of (3,6), k=2) gives (3,2) indices."))


def _sort_lower(ctx, p, x):
    xm, values, ax, _ = _topk_core(x, p["axis"], 0, p["is_ascend"])
    return _restore(values, p["axis"], ax)


def _argsort_lower(ctx, p, x):
    xm, ax, order = _ordered(x, p["axis"], p["is_ascend"])
    return jax.lax.stop_gradient(_restore(order, p["axis"], ax).astype(_dt.canonical(p["dtype"])))


_SORT_ATTRS = (attr("axis", Optional(Int()), -1, "the axis to sort; None: the flattened input"),
               attr("is_ascend", Bool(), True, "ascending (True) or descending order"))

register(Op("sort", _sort_lower, attrs=_SORT_ATTRS, family="indexing",
            doc="Sorted values along an axis (stable); the gradient follows each element."))
register(Op("argsort", _argsort_lower, differentiable=False, family="indexing",
            attrs=_SORT_ATTRS + (attr("dtype", _INDEX_DTYPES, "float32", "the dtype of the indices"),),
            doc="The indices that sort an axis (stable), in dtype (float32 by default)."))


# -- ravel_multi_index / unravel_index / index_copy / index_array --------------------------------
def _ravel_shape(p: dict, what: str) -> tuple:
    shape = tuple(p["shape"])
    if not shape:
        fail(f"{what} needs a non-empty shape attribute")
    return shape


def _ravel_lower(ctx, p, data):
    shape = _ravel_shape(p, "ravel_multi_index")
    if data.ndim != 2 or data.shape[0] != len(shape):
        fail(f"ravel_multi_index: data must be ({len(shape)}, N) for shape {shape}, got {tuple(data.shape)}")
    idx = as_index(data)
    flat = jnp.zeros(data.shape[1:], jnp.int32)
    for j, d in enumerate(shape):
        flat = flat * d + idx[j]
    return jax.lax.stop_gradient(flat.astype(data.dtype))


def _unravel_lower(ctx, p, data):
    shape = _ravel_shape(p, "unravel_index")
    if data.ndim != 1:
        fail(f"unravel_index: data must be a vector of flat indices, got {tuple(data.shape)}")
    idx = as_index(data)
    rows = []
    for d in reversed(shape[1:]):
        rows.append(idx % d)
        idx = idx // d
    rows.append(idx)                     # the first axis is not wrapped (MXNet)
    return jax.lax.stop_gradient(jnp.stack(rows[::-1]).astype(data.dtype))


_RAVEL_SHAPE = (attr("shape", Shape(allow_negative=True), (), "the shape the indices address"),)
register(Op("_ravel_multi_index", _ravel_lower, aliases=("ravel_multi_index",), attrs=_RAVEL_SHAPE,
            differentiable=False, family="indexing",
            doc="Flat indices from (ndim, N) multi-indices into shape, in the data's dtype (no gradient)."))
register(Op("_unravel_index", _unravel_lower, aliases=("unravel_index",), attrs=_RAVEL_SHAPE,
            differentiable=False, family="indexing",
            doc="(ndim, N) multi-indices from N flat indices into shape (the first axis unwrapped; no gradient)."))


def _index_copy_lower(ctx, p, old, index, new):
    if index.ndim != 1 or new.ndim != old.ndim or new.shape[0] != index.shape[0] \
            or tuple(new.shape[1:]) != tuple(old.shape[1:]) or new.shape[0] > old.shape[0]:
        fail(f"index_copy: old_tensor {tuple(old.shape)}, index_vector {tuple(index.shape)} and new_tensor "
             f"{tuple(new.shape)} do not fit (index a vector as long as new_tensor's first axis, the other "
             f"axes equal)")
    return old.at[as_index(index)].set(new.astype(old.dtype))


register(Op("_contrib_index_copy", _index_copy_lower, inputs=("old_tensor", "index_vector", "new_tensor"),
            family="indexing",
            doc="old_tensor with row index[i] replaced by new_tensor[i]; gradients: the head to new_tensor's "
                "rows, zero at the copied rows of old_tensor."))


def _index_array_dtype(p, dtypes):
    return dtypes, [np.dtype(jax.dtypes.canonicalize_dtype(np.int64))]


def _index_array_lower(ctx, p, data):
    grids = jnp.indices(data.shape, dtype=jax.dtypes.canonicalize_dtype(np.int64))
    axes = range(data.ndim) if p["axes"] is None else [normalize_axis(a, data.ndim, "axes") for a in p["axes"]]
    return jnp.stack([grids[a] for a in axes], axis=-1) if data.ndim else jnp.zeros((0,), grids.dtype)


register(Op("_contrib_index_array", _index_array_lower, differentiable=False, infer_dtype=_index_array_dtype,
            attrs=(attr("axes", Optional(Axes()), None, "the axes whose index to list (None: all)"),),
            family="indexing",
            doc="The index of every element: shape data.shape + (len(axes),), int64 (int32 without x64)."))
