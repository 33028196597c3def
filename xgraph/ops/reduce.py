"""Reductions: sum, mean, max, min, prod, nansum, nanprod, argmax, argmin, norm, moments, _histogram.

MXNet 1.x conventions kept here:

* ``axis`` is one axis or a tuple; ``None`` (or ``()``) reduces every axis;
  ``exclude=True`` reduces every axis *except* the listed ones;
* a result with no dimension left has shape ``(1,)``, not ``()`` (MXNet's
  legacy arrays have no scalars);
* ``max``/``min`` pass the head gradient to every element equal to the result
  (ties each get the whole gradient, as MXNet's kernel does);
* ``argmax``/``argmin`` return indices in the input's dtype (float32 indices
  for float32 data); ``axis=None`` searches the flattened array;
* float16/bfloat16 sums, means, products and norms accumulate in float32.

    >>> import xgraph as mx
    >>> mx.sym.sum(mx.sym.var('x')).infer_shape(x=(3, 4))[1]
    [(1,)]
    >>> mx.sym.sum(mx.sym.var('x'), axis=1, exclude=True).infer_shape(x=(3, 4, 5))[1]
    [(4,)]
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .attrs import Axes, Bool, Enum, FloatTuple, Int, Optional, attr
from .common import fail, normalize_axes, normalize_axis
from .registry import Op, optional_input, register


def reduce_axes(ndim: int, axis: Sequence[int] | None, exclude: bool = False) -> tuple[int, ...]:
    """The sorted non-negative axes a reduction reduces, MXNet style.

        >>> reduce_axes(3, None), reduce_axes(3, (-1,)), reduce_axes(3, (1,), exclude=True)
        ((0, 1, 2), (2,), (0, 2))
    """
    if axis is None or len(axis) == 0:
        return tuple(range(ndim))
    axes = normalize_axes(axis, ndim)
    if len(axes) != len(axis):
        fail(f"axis {tuple(axis)} names the same axis twice")
    if exclude:
        return tuple(i for i in range(ndim) if i not in axes)
    return axes


def at_least_1d(y: Any) -> Any:
    """MXNet has no 0-d arrays: a scalar result becomes shape ``(1,)``.

        >>> at_least_1d(jnp.float32(2.0)).shape
        (1,)
    """
    return y.reshape((1,)) if y.ndim == 0 else y


def accum_dtype(dtype: Any) -> Any:
    """The dtype to accumulate in: float32 for float16/bfloat16, else the dtype itself.

        >>> accum_dtype(jnp.float16) is jnp.float32
        True
    """
    return jnp.float32 if dtype in (jnp.float16, jnp.bfloat16) else dtype


def _extremum(fn: Callable, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """max/min with MXNet's gradient: every element equal to the result gets the head gradient."""
    empty = [i for i in axes if x.shape[i] == 0]
    if empty:
        fail(f"{fn.__name__} over axis {empty[0]} of size 0: the reduction of an empty axis has no identity")
    keep_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))

    @jax.custom_vjp
    def f(x):
        return fn(x, axis=axes, keepdims=keepdims)

    def f_fwd(x):
        y = f(x)
        return y, (x, y)

    def f_bwd(res, g):
        x, y = res
        hit = x == y.reshape(keep_shape)
        return (jnp.where(hit, g.reshape(keep_shape), jnp.zeros((), g.dtype)).astype(x.dtype),)

    f.defvjp(f_fwd, f_bwd)
    return f(x)


def _accumulating(fn: Callable) -> Callable:
    """A reducer that runs in :func:`accum_dtype` and casts back to the input dtype."""
    def reducer(x, axes, keepdims):
        return fn(x.astype(accum_dtype(x.dtype)), axis=axes, keepdims=keepdims).astype(x.dtype)
    return reducer


#: name -> (aliases, reducer(x, axes, keepdims), doc)
REDUCERS: dict[str, tuple[tuple[str, ...], Callable, str]] = {
    "sum": (("sum_axis",), _accumulating(jnp.sum), "Sum over axes."),
    "mean": ((), _accumulating(jnp.mean), "Mean over axes."),
    "prod": ((), _accumulating(jnp.prod), "Product over axes."),
    "nansum": ((), _accumulating(jnp.nansum), "Sum over axes, treating NaN as 0."),
    "nanprod": ((), _accumulating(jnp.nanprod), "Product over axes, treating NaN as 1."),
    "max": (("max_axis",), lambda x, a, k: _extremum(jnp.max, x, a, k), "Maximum over axes."),
    "min": (("min_axis",), lambda x, a, k: _extremum(jnp.min, x, a, k), "Minimum over axes."),
}

REDUCE_ATTRS = (
    attr("axis", Optional(Axes()), None, "the axis or axes to reduce; None reduces all"),
    attr("keepdims", Bool(), False, "keep reduced axes with size 1"),
    attr("exclude", Bool(), False, "reduce every axis except those in axis"),
)


def _reduce_lowering(reducer: Callable) -> Callable:
    def lower(ctx, p, x):
        axes = reduce_axes(x.ndim, p["axis"], p["exclude"])
        return at_least_1d(reducer(x, axes, p["keepdims"]))
    return lower


for _name, (_aliases, _reducer, _doc) in REDUCERS.items():
    register(Op(_name, _reduce_lowering(_reducer), aliases=_aliases, attrs=REDUCE_ATTRS, family="reduce",
                doc=_doc + " A full reduction gives shape (1,)."))


# -- argmax / argmin ------------------------------------------------------------------
def _arg_lowering(fn: Callable) -> Callable:
    def lower(ctx, p, x):
        axis, keepdims = p["axis"], p["keepdims"]
        if axis is None:
            idx = fn(x.reshape(-1)).reshape((1,) * x.ndim if keepdims else (1,))
        else:
            idx = at_least_1d(fn(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims))
        return jax.lax.stop_gradient(idx.astype(x.dtype))
    return lower


_ARG_ATTRS = (attr("axis", Optional(Int()), None, "the axis to search; None searches the flattened input"),
              attr("keepdims", Bool(), False, "keep the reduced axis with size 1"))

for _name, _fn in (("argmax", jnp.argmax), ("argmin", jnp.argmin)):
    register(Op(_name, _arg_lowering(_fn), attrs=_ARG_ATTRS, differentiable=False, family="reduce",
                doc=f"Indices of the {_name[3:]}imum along an axis, in the input's dtype."))


_argmax_last = _arg_lowering(jnp.argmax)
register(Op("argmax_channel", lambda ctx, p, x: _argmax_last(ctx, {"axis": -1, "keepdims": False}, x),
            differentiable=False, family="reduce",
            doc="argmax over the last axis (MXNet's argmax_channel), in the input's dtype."))


# -- norm -----------------------------------------------------------------------------
def _norm_lower(ctx, p, x):
    ord_ = p["ord"]
    if ord_ not in (1, 2):
        fail(f"norm: ord={ord_} is not supported; MXNet's norm takes ord 1 or 2")
    axes = reduce_axes(x.ndim, p["axis"])
    xa = x.astype(accum_dtype(x.dtype))
    if ord_ == 1:
        y = jnp.sum(jnp.abs(xa), axis=axes, keepdims=p["keepdims"])
    else:
        y = jnp.sqrt(jnp.sum(xa * xa, axis=axes, keepdims=p["keepdims"]))
    return at_least_1d(y.astype(p["out_dtype"] or x.dtype))


register(Op(
    "norm", _norm_lower,
    attrs=(attr("ord", Int(), 2, "1 (sum of absolute values) or 2 (Euclidean / Frobenius)"),
           attr("axis", Optional(Axes()), None, "the axis or axes; None: every axis"),
           attr("out_dtype", Optional(Enum(("float16", "float32", "float64", "int32", "int64", "int8"))), None,
                "the dtype of the result (default: the input's)"),
           attr("keepdims", Bool(), False, "keep reduced axes with size 1")),
    family="reduce", doc="The L1 or L2 norm over axes; norm(x) of any shape gives shape (1,)."))


# -- moments --------------------------------------------------------------------------
def _moments_lower(ctx, p, x):
    axes = reduce_axes(x.ndim, p["axes"])
    xa = x.astype(accum_dtype(x.dtype))
    mean = jnp.mean(xa, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xa - mean), axis=axes, keepdims=p["keepdims"])
    if not p["keepdims"]:
        mean = jnp.squeeze(mean, axes)
    return at_least_1d(mean.astype(x.dtype)), at_least_1d(var.astype(x.dtype))


register(Op(
    "moments", _moments_lower, num_outputs=2, output_names=lambda p: ["output0", "output1"],
    attrs=(attr("axes", Optional(Axes()), None, "the axes to reduce; None reduces all"),
           attr("keepdims", Bool(), False, "keep reduced axes with size 1")),
    family="reduce", doc="Mean and (biased) variance over axes: two outputs; a full reduction gives (1,)."))


# -- histogram ------------------------------------------------------------------------
#: MXNet's int64 counts (int32 while JAX runs without x64)
_COUNT_DTYPE = np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


def _histogram_dtype(p, dtypes):
    return dtypes, [_COUNT_DTYPE, dtypes[0]]


def _bin_counts(idx: Any, valid: Any, n: int) -> Any:
    """Counts of ``idx`` in 0 .. n-1 over the ``valid`` entries, as MXNet's int64 counts."""
    counts = jnp.zeros((n + 1,), jnp.int32).at[jnp.where(valid, idx, n)].add(1)[:n]
    return jax.lax.stop_gradient(counts.astype(_COUNT_DTYPE))


def _histogram_lower(ctx, p, data, bins=None):
    x = jax.lax.stop_gradient(data).reshape(-1)
    if p["bin_cnt"] is None:
        if p["range"] is not None:
            fail("histogram: give bin_cnt and range together, or a bins input")
        if bins.ndim != 1 or bins.shape[0] < 2:
            fail(f"histogram: bins must be a vector of at least 2 edges, got shape {tuple(bins.shape)}")
        edges = jax.lax.stop_gradient(bins).astype(x.dtype)
        n = edges.shape[0] - 1
        idx = jnp.minimum(jnp.searchsorted(edges, x, side="right") - 1, n - 1)
        valid = (x >= edges[0]) & (x <= edges[-1])
        return _bin_counts(idx, valid, n), bins
    n, rng = p["bin_cnt"], p["range"]
    if rng is None or len(rng) != 2:
        fail(f"histogram: bin_cnt={n} needs range=(low, high), got {rng}")
    if n < 1:
        fail(f"histogram: bin_cnt={n} must be >= 1")
    lo, hi = float(rng[0]), float(rng[1])
    if lo > hi:
        fail(f"histogram: range {tuple(rng)}: the low end is above the high end")
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = jnp.asarray(np.array([(hi * i + (n - i) * lo) / n for i in range(n + 1)]).astype(x.dtype))
    idx = jnp.minimum(((x - lo) * (n / (hi - lo))).astype(jnp.int32), n - 1)
    idx = jnp.clip(idx, 0, n - 1)
    idx = idx - (x < edges[idx]).astype(jnp.int32)
    idx = idx + ((x >= edges[jnp.clip(idx + 1, 0, n)]) & (idx != n - 1)).astype(jnp.int32)
    valid = (x >= lo) & (x <= hi)
    return _bin_counts(jnp.clip(idx, 0, n - 1), valid, n), edges


register(Op(
    "_histogram", _histogram_lower, aliases=("_npi_histogram",), num_outputs=2, differentiable=False,
    inputs=("data", optional_input("bins", lambda p: p["bin_cnt"] is None, "the bin edges")),
    attrs=(attr("bin_cnt", Optional(Int()), None, "the number of equal bins over range (else: a bins input)"),
           attr("range", Optional(FloatTuple()), None, "(low, high) of the equal bins")),
    infer_dtype=_histogram_dtype, family="reduce",
    doc="Histogram of the flattened data: (counts int64, bin edges); equal bins over range, or the edges "
        "given as the bins input (the last bin includes its right edge; values outside are not counted)."))
