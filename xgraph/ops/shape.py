"""Shape manipulation: Flatten, Reshape, transpose, SwapAxis, Concat, SliceChannel, expand_dims,
squeeze, slice, slice_axis, clip, where, Cast, zeros_like, ones_like, tile, repeat, reverse, stack,
slice_like, reshape_like, depth_to_space, space_to_depth and the creation ops _zeros, _ones, _full, _arange.

``Reshape``'s special codes follow MXNet 1.x exactly (see :func:`reshape_shape`):
0 copies a dimension, -1 infers one, -2 copies all remaining ones, -3 merges
two consecutive ones, -4 splits one into the two sizes that follow, and
``reverse=True`` matches the codes from the right.

    >>> import xgraph as mx
    >>> mx.sym.Reshape(mx.sym.var('x'), shape=(0, -4, 1, 3, -2)).infer_shape(x=(2, 3, 4, 5))[1]
    [(2, 1, 3, 4, 5)]
    >>> reshape_shape((2, 3, 4), (-1, 0), reverse=True)
    (6, 4)
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import dtypes as _dt
from .attrs import Axes, Bool, DType, Float, Int, Optional, OptTuple, Shape, Str, attr
from .common import fail, normalize_axis, outputs_fix_inputs, same_shape_inputs, size_fixes_one_unknown
from .reduce import at_least_1d
from ..util import is_np_shape
from .registry import Op, register


# -- Flatten -----------------------------------------------------------------------
def _flatten_lower(ctx, p, x):
    if x.ndim == 0:
        fail("Flatten needs an input with at least one dimension")
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


register(Op("Flatten", _flatten_lower, aliases=("flatten",), family="shape",
            doc="Collapse all axes but the first: (N, C, H, W) -> (N, C*H*W)."))


# -- Reshape -------------------------------------------------------------------------
def reshape_shape(dshape: Sequence[int], spec: Sequence[int], reverse: bool = False) -> tuple[int, ...]:
    """The output shape of MXNet's ``Reshape(shape=spec, reverse=reverse)`` on ``dshape``.

    Raises :class:`~xgraph.errors.ShapeError` on a bad code or a size mismatch.

        >>> reshape_shape((2, 3, 4, 5), (-3, -2)), reshape_shape((2, 3, 4, 5), (-4, -1, 2, -2))
        ((6, 4, 5), (1, 2, 3, 4, 5))
    """
    src = list(dshape)[::-1] if reverse else list(dshape)
    codes = list(spec)[::-1] if reverse else list(spec)
    out: list[int] = []
    infer_at = -1
    si = 0
    i = 0

    def take(code: int) -> int:
        nonlocal si
        if si >= len(src):
            fail(f"Reshape shape={tuple(spec)}: code {code} at position {i} has no input dimension left "
                 f"(input shape {tuple(dshape)})")
        si += 1
        return src[si - 1]

    while i < len(codes):
        c = codes[i]
        if c == 0:
            out.append(take(0))
        elif c == -1:
            if infer_at >= 0:
                fail(f"Reshape shape={tuple(spec)}: only one dimension can be -1 (inferred)")
            infer_at = len(out)
            out.append(1)
            si += 1
        elif c == -2:
            out.extend(src[si:])
            si = len(src)
        elif c == -3:
            if si + 1 >= len(src):
                fail(f"Reshape shape={tuple(spec)}: code -3 at position {i} needs two input dimensions "
                     f"(input shape {tuple(dshape)})")
            out.append(src[si] * src[si + 1])
            si += 2
        elif c == -4:
            if i + 2 >= len(codes):
                fail(f"Reshape shape={tuple(spec)}: code -4 at position {i} must be followed by two sizes")
            d0 = take(-4)
            d1, d2 = codes[i + 1], codes[i + 2]
            i += 2
            if d1 == -1 and d2 == -1:
                fail(f"Reshape shape={tuple(spec)}: the two sizes after -4 cannot both be -1")
            if d1 < -1 or d2 < -1 or d1 == 0 or d2 == 0:
                fail(f"Reshape shape={tuple(spec)}: the sizes after -4 must be positive or -1, got {d1}, {d2}")
            if d1 == -1:
                d1 = d0 // d2
            if d2 == -1:
                d2 = d0 // d1
            if d1 * d2 != d0:
                fail(f"Reshape shape={tuple(spec)}: split sizes {d1}, {d2} do not divide the dimension {d0}")
            out.extend((d1, d2))
        elif c > 0:
            out.append(c)
            si += 1
        else:
            fail(f"Reshape shape={tuple(spec)}: {c} is not a valid code (use a size > 0, 0, -1, -2, -3 or -4)")
        i += 1
    size = math.prod(dshape)
    if infer_at >= 0:
        rest = math.prod(out)
        if rest == 0 or size % rest:
            fail(f"Reshape shape={tuple(spec)}: cannot infer the -1 dimension, input shape {tuple(dshape)} "
                 f"(size {size}) is not a multiple of {rest}")
        out[infer_at] = size // rest
    if reverse:
        out.reverse()
    if math.prod(out) != size:
        fail(f"Reshape shape={tuple(spec)}{' reverse=True' if reverse else ''}: the target shape {tuple(out)} "
             f"has {math.prod(out)} elements but the input {tuple(dshape)} has {size}")
    return tuple(out)


def _legacy_target_shape(dshape: Sequence[int], target: Sequence[int], keep_highest: bool) -> tuple[int, ...]:
    """MXNet's deprecated ``target_shape``: one 0 is inferred; keep_highest keeps the first axis."""
    out = list(target)
    start = 1 if keep_highest else 0
    if keep_highest:
        out[0] = dshape[0]
    zeros = [i for i in range(start, len(out)) if out[i] == 0]
    if len(zeros) > 1:
        fail(f"Reshape target_shape={tuple(target)}: at most one dimension can be 0 (inferred)")
    if zeros:
        out[zeros[0]] = 1
        out[zeros[0]] = math.prod(dshape) // math.prod(out)
    if math.prod(out) != math.prod(dshape):
        fail(f"Reshape target_shape={tuple(target)}: {tuple(out)} does not have the size of the input {tuple(dshape)}")
    return tuple(out)


def _reshape_lower(ctx, p, x):
    if p["shape"]:
        target = reshape_shape(x.shape, p["shape"], p["reverse"])
    elif p["target_shape"]:
        target = _legacy_target_shape(x.shape, p["target_shape"], p["keep_highest"])
    else:
        fail("Reshape needs a shape")
    return x.reshape(target)


register(Op(
    "Reshape", _reshape_lower, aliases=("reshape",),
    attrs=(attr("shape", Shape(allow_negative=True), (), "the target shape, with MXNet's special codes"),
           attr("reverse", Bool(), False, "match the special codes from the right"),
           attr("target_shape", Shape(), (), "(deprecated) the target shape; one 0 is inferred"),
           attr("keep_highest", Bool(), False, "(deprecated) with target_shape, keep the first axis")),
    infer_backward=size_fixes_one_unknown,
    family="shape", doc="Reshape with MXNet's codes: Reshape(x of (2,3,4), shape=(0,-1)) is (2,12)."))


# -- transpose / SwapAxis ----------------------------------------------------------
def _transpose_lower(ctx, p, x):
    axes = p["axes"]
    if not axes:
        return jnp.transpose(x)
    if len(axes) != x.ndim:
        fail(f"transpose axes {tuple(axes)} must list all {x.ndim} axes of the input")
    perm = tuple(normalize_axis(a, x.ndim, "transpose axis") for a in axes)
    if sorted(perm) != list(range(x.ndim)):
        fail(f"transpose axes {tuple(axes)} are not a permutation of 0..{x.ndim - 1}")
    return jnp.transpose(x, perm)


def _transpose_backward(p, in_shapes, out_shapes):
    """The input's shape from the output's: the inverse permutation (dimensions unknown stay 0)."""
    out = out_shapes[0]
    if out is None:
        return in_shapes
    axes = tuple(p["axes"]) or tuple(range(len(out) - 1, -1, -1))
    if len(axes) != len(out) or sorted(a % len(out) for a in axes) != list(range(len(out))):
        return in_shapes
    shape = [0] * len(out)
    for i, a in enumerate(axes):
        shape[a % len(out)] = out[i]
    return [tuple(shape)]


register(Op(
    "transpose", _transpose_lower,
    attrs=(attr("axes", Shape(allow_negative=True), (), "the permutation; empty reverses the axes"),),
    infer_backward=_transpose_backward,
    family="shape", doc="Permute axes: transpose(x of (2,3,4), axes=(0,2,1)) is (2,4,3)."))


def _swapaxis_lower(ctx, p, x):
    d1 = normalize_axis(p["dim1"], x.ndim, "dim1")
    d2 = normalize_axis(p["dim2"], x.ndim, "dim2")
    return jnp.swapaxes(x, d1, d2)


register(Op(
    "SwapAxis", _swapaxis_lower, aliases=("swapaxes",),
    attrs=(attr("dim1", Int(), 0, "the first axis"), attr("dim2", Int(), 0, "the second axis")),
    family="shape", doc="Swap two axes: SwapAxis(x of (2,3,4), dim1=0, dim2=2) is (4,3,2)."))


# -- Concat ----------------------------------------------------------------------------
def _concat_infer(p, shapes):
    """An unknown input gets the known inputs' shape, its size along ``dim`` unknown (0)."""
    known = next((s for s in shapes if s is not None), None)
    if known is None or not -len(known) <= p["dim"] < len(known):
        return shapes
    partial = list(known)
    partial[p["dim"] % len(known)] = 0
    return [tuple(partial) if s is None else s for s in shapes]


def _concat_backward(p, shapes, outs):
    """The output fixes every dim outside ``dim``, and the one input whose ``dim`` size is unknown."""
    out = outs[0]
    if out is None or not -len(out) <= p["dim"] < len(out):
        return shapes
    dim = p["dim"] % len(out)
    res = [tuple(out[k] if k != dim else (s[k] if s is not None and len(s) == len(out) else 0)
                 for k in range(len(out))) for s in shapes]
    missing = [i for i, s in enumerate(res) if not s[dim]]
    if len(missing) == 1 and out[dim]:
        rest = out[dim] - sum(s[dim] for s in res)
        if rest > 0:
            i = missing[0]
            res[i] = res[i][:dim] + (rest,) + res[i][dim + 1:]
    return res


def _concat_lower(ctx, p, *xs):
    first = xs[0]
    dim = normalize_axis(p["dim"], first.ndim, "dim")
    for i, x in enumerate(xs[1:], 1):
        if x.ndim != first.ndim or any(a != b for k, (a, b) in enumerate(zip(x.shape, first.shape)) if k != dim):
            fail(f"Concat along dim {p['dim']}: input arg{i} has shape {tuple(x.shape)}, which does not match "
                 f"arg0's {tuple(first.shape)} outside dim {dim}")
    return jnp.concatenate(xs, axis=dim)


register(Op(
    "Concat", _concat_lower, aliases=("concat",), variadic="num_args",
    attrs=(attr("num_args", Int(min=1), doc="the number of inputs"),
           attr("dim", Int(), 1, "the axis to join along")),
    infer_inputs=_concat_infer, infer_backward=_concat_backward, family="shape",
    doc="Join arrays along dim: Concat(a of (2,3), b of (2,1)) is (2,4)."))


# -- SliceChannel ---------------------------------------------------------------------
def _slice_channel_lower(ctx, p, x):
    n = p["num_outputs"]
    axis = normalize_axis(p["axis"], x.ndim)
    size = x.shape[axis]
    if size % n:
        fail(f"SliceChannel: axis {axis} of size {size} cannot be split into num_outputs={n} equal parts")
    if p["squeeze_axis"] and size != n:
        fail(f"SliceChannel with squeeze_axis=True needs axis {axis} of size num_outputs={n}, got {size}")
    parts = jnp.split(x, n, axis=axis)
    if p["squeeze_axis"]:
        parts = [jnp.squeeze(t, axis) for t in parts]
    return tuple(parts)


def _slice_channel_backward(p, shapes, outs):
    """Any known part gives the input: its split axis times num_outputs (or re-inserted when squeezed)."""
    known = [s for s in outs if s is not None]
    if not known or any(len(s) != len(known[0]) for s in known):
        return shapes
    part = tuple(next((d for d in dims if d), 0) for dims in zip(*known))   # all parts have one shape
    n, rank = p["num_outputs"], len(part) + (1 if p["squeeze_axis"] else 0)
    if not -rank <= p["axis"] < rank:
        return shapes
    axis = p["axis"] % rank
    if p["squeeze_axis"]:
        return [tuple(part[:axis]) + (n,) + tuple(part[axis:])]
    return [tuple(part[:axis]) + (part[axis] * n,) + tuple(part[axis + 1:])]


register(Op(
    "SliceChannel", _slice_channel_lower, aliases=("split",),
    attrs=(attr("num_outputs", Int(min=1), doc="the number of equal parts"),
           attr("axis", Int(), 1, "the axis to split"),
           attr("squeeze_axis", Bool(), False, "drop the split axis (its parts must have size 1)")),
    num_outputs=lambda p: p["num_outputs"],
    output_names=lambda p: [f"output{i}" for i in range(p["num_outputs"])],
    infer_backward=_slice_channel_backward, family="shape", doc="Split into num_outputs equal parts along axis: outputs output0, output1, ..."))


# -- expand_dims / squeeze -----------------------------------------------------------
def _expand_dims_lower(ctx, p, x):
    axis = p["axis"]
    if not -(x.ndim + 1) <= axis <= x.ndim:
        fail(f"expand_dims axis {axis} is out of range for an input of {x.ndim} dimension(s) "
             f"(allowed: {-(x.ndim + 1)} to {x.ndim})")
    return jnp.expand_dims(x, axis % (x.ndim + 1))


register(Op(
    "expand_dims", _expand_dims_lower, attrs=(attr("axis", Int(), doc="where the new axis goes"),),
    family="shape", doc="Insert an axis of size 1: expand_dims(x of (2,3), axis=1) is (2,1,3)."))


def _squeeze_lower(ctx, p, x):
    if p["axis"] is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(sorted({normalize_axis(a, x.ndim) for a in p["axis"]}))
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            fail(f"squeeze: axis {bad[0]} of the input {tuple(x.shape)} has size {x.shape[bad[0]]}, not 1")
    return at_least_1d(jnp.squeeze(x, axes))


register(Op(
    "squeeze", _squeeze_lower,
    attrs=(attr("axis", Optional(Axes()), None, "the size-1 axes to drop; None drops them all"),),
    family="shape", doc="Drop size-1 axes; dropping every axis gives shape (1,)."))


# -- slice / slice_axis -------------------------------------------------------------
def _slice_range(length: int, begin: int | None, end: int | None, step: int, where: str) -> tuple[int, int, int]:
    """MXNet's index range for one axis: (first index, element count, step)."""
    if step == 0:
        fail(f"{where}: step cannot be 0")
    b = begin if begin is not None else (length - 1 if step < 0 else 0)
    e = end if end is not None else (-1 if step < 0 else length)
    if b < 0:
        b += length
    if e < 0 and end is not None:
        e += length
    if b < 0 and step > 0:
        b = 0
    if b > length - 1 and step < 0:
        b = length - 1
    if b < 0 or b > length - 1:
        b = -1
    e = min(max(e, -1), length)
    n = 0
    if e != b and b >= 0:
        n = (e - b - 1) // step + 1 if step > 0 and e > b else (b - e - 1) // -step + 1 if step < 0 and e < b else 0
    if n <= 0:
        fail(f"{where}: begin={begin}, end={end}, step={step} select nothing from an axis of size {length}")
    return b, n, step


def _take_range(x: Any, axis: int, first: int, count: int, step: int) -> Any:
    if step > 0:
        return jax.lax.slice_in_dim(x, first, first + (count - 1) * step + 1, step, axis)
    rev = jnp.flip(x, axis)
    start = x.shape[axis] - 1 - first
    return jax.lax.slice_in_dim(rev, start, start + (count - 1) * -step + 1, -step, axis)


def _slice_lower(ctx, p, x):
    begin, end, step = p["begin"], p["end"], p["step"]
    if len(begin) != len(end):
        fail(f"slice: begin {tuple(begin)} and end {tuple(end)} must have the same length")
    if step and len(step) != len(begin):
        fail(f"slice: step {tuple(step)} must have the length of begin {tuple(begin)}")
    if len(begin) > x.ndim:
        fail(f"slice: begin {tuple(begin)} has more entries than the input has dimensions ({x.ndim})")
    for ax in range(len(begin)):
        s = step[ax] if step and step[ax] is not None else 1
        first, count, s = _slice_range(x.shape[ax], begin[ax], end[ax], s, f"slice on axis {ax}")
        x = _take_range(x, ax, first, count, s)
    return x


def _slice_partial(p, shapes):
    """slice's output shape with unknown (0) input dimensions: a sliced unknown axis stays unknown, as in MXNet."""
    (shape,) = shapes
    begin, end, step = p["begin"], p["end"], p["step"]
    if len(begin) != len(end) or len(begin) > len(shape):
        return None
    out = list(shape)
    for ax in range(len(begin)):
        if shape[ax]:
            s = step[ax] if step and step[ax] is not None else 1
            out[ax] = _slice_range(shape[ax], begin[ax], end[ax], s, f"slice on axis {ax}")[1]
    return [tuple(out)]


def _slice_axis_partial(p, shapes):
    """slice_axis with unknown (0) input dimensions: an unknown sliced axis stays unknown."""
    (shape,) = shapes
    axis = normalize_axis(p["axis"], len(shape))
    if shape[axis]:
        return None   # the other axes pass through: symbolic evaluation handles it
    return [tuple(shape)]


register(Op(
    "slice", _slice_lower, aliases=("crop",), partial_shapes=_slice_partial,
    attrs=(attr("begin", OptTuple(), doc="the first index on each axis (None: the start)"),
           attr("end", OptTuple(), doc="the end index on each axis, excluded (None: the end)"),
           attr("step", OptTuple(), (), "the step on each axis (None or empty: 1)")),
    family="shape", doc="Slice the leading axes: slice(x of (3,4), begin=(1,None), end=(3,None)) is (2,4)."))


def _slice_axis_lower(ctx, p, x):
    axis = normalize_axis(p["axis"], x.ndim)
    size = x.shape[axis]
    b = p["begin"] + size if p["begin"] < 0 else p["begin"]
    e = size if p["end"] is None else (p["end"] + size if p["end"] < 0 else p["end"])
    if e > size:
        fail(f"slice_axis: end={p['end']} is past the axis size {size}")
    if not 0 <= b < e:
        fail(f"slice_axis: begin={p['begin']}, end={p['end']} select nothing from an axis of size {size}")
    return jax.lax.slice_in_dim(x, b, e, 1, axis)


register(Op(
    "slice_axis", _slice_axis_lower, partial_shapes=_slice_axis_partial,
    attrs=(attr("axis", Int(), doc="the axis to slice (negative counts from the end)"),
           attr("begin", Int(), doc="the first index (negative counts from the end)"),
           attr("end", Optional(Int()), doc="the end index, excluded; None: the axis size")),
    family="shape", doc="Slice one axis: slice_axis(x of (3,5), axis=1, begin=1, end=4) is (3,3)."))


# -- clip / where ---------------------------------------------------------------------
def _clip_lower(ctx, p, x):
    lo = jnp.asarray(p["a_min"], x.dtype)
    hi = jnp.asarray(p["a_max"], x.dtype)
    inside = (x > lo) & (x < hi)
    # MXNet's gradient passes only where a_min < x < a_max
    return jnp.where(inside, x, jax.lax.stop_gradient(jnp.clip(x, lo, hi)))


register(Op(
    "clip", _clip_lower,
    attrs=(attr("a_min", Float(), doc="the lower bound"), attr("a_max", Float(), doc="the upper bound")),
    family="shape", doc="Clip to [a_min, a_max]; the gradient passes only strictly inside."))


def _where_infer(p, shapes):
    """x and y complete each other (MXNet); a known condition fixes them too (same shape, or rows)."""
    cond, x, y = shapes
    x, y = same_shape_inputs(p, [x, y])
    if x is not None and cond is not None and all(cond):
        if len(cond) == len(x):
            x = tuple(d or c for d, c in zip(x, cond))
        elif len(cond) == 1 and len(x) > 1 and not x[0]:
            x = (cond[0],) + tuple(x[1:])
        x, y = same_shape_inputs(p, [x, y])
    return [cond, x, y]


def _where_lower(ctx, p, cond, x, y):
    if x.shape != y.shape:
        fail(f"where: x {tuple(x.shape)} and y {tuple(y.shape)} must have the same shape")
    if cond.shape == x.shape:
        mask = cond != 0
    elif cond.ndim == 1 and x.ndim >= 1 and cond.shape[0] == x.shape[0]:
        mask = (cond != 0).reshape((-1,) + (1,) * (x.ndim - 1))
    else:
        fail(f"where: condition {tuple(cond.shape)} must have the shape of x {tuple(x.shape)} "
             f"or be 1-D of length {x.shape[0] if x.ndim else '?'} (selecting rows)")
    return jnp.where(mask, x, y)


register(Op(
    "where", _where_lower, inputs=("condition", "x", "y"), infer_inputs=_where_infer, partial_needs_full=(0,),
    family="shape",
    doc="x where condition is nonzero, else y; a 1-D condition selects whole rows. "
        "The condition gets a zero gradient."))


# -- Cast / zeros_like / ones_like -------------------------------------------------
def _cast_dtype(p, dtypes):
    return dtypes, [_dt.canonical(p["dtype"])]


def _cast_lower(ctx, p, x):
    return x.astype(_dt.canonical(p["dtype"]))


register(Op(
    "Cast", _cast_lower, aliases=("cast",), attrs=(attr("dtype", DType(), doc="the target dtype"),),
    infer_dtype=_cast_dtype, infer_backward=outputs_fix_inputs, family="shape", doc="Convert to dtype: Cast(x, dtype='float16')."))

#: MXNet 1.9.1's zeros_like/ones_like parse no attributes, so a ``dtype`` in a saved graph (GluonCV's
#: CenterNet has one) is kept and ignored: the output takes the input's dtype
_IGNORED_LIKE_DTYPE = attr("dtype", Optional(DType()), None, "ignored, as MXNet 1.9.1 ignores it: the output "
                           "takes the input's dtype")
register(Op("zeros_like", lambda ctx, p, x: jnp.zeros_like(x), family="shape", infer_backward=outputs_fix_inputs, attrs=(_IGNORED_LIKE_DTYPE,),
            doc="An array of zeros with the input's shape and dtype."))
register(Op("ones_like", lambda ctx, p, x: jnp.ones_like(x), family="shape", infer_backward=outputs_fix_inputs, attrs=(_IGNORED_LIKE_DTYPE,),
            doc="An array of ones with the input's shape and dtype."))



# -- tile / repeat / reverse / stack ----------------------------------------------------
def _tile_lower(ctx, p, x):
    reps = tuple(p["reps"])
    if 0 in reps and not is_np_shape():
        fail(f"tile: reps {reps} has a 0, which gives a zero-size array: MXNet allows that only under "
             f"mx.np_shape()")
    return jnp.tile(x, reps) if reps else x   # MXNet: empty reps leave the array as it is


register(Op(
    "tile", _tile_lower, attrs=(attr("reps", Shape(), doc="repetitions per axis (numpy.tile's rule)"),),
    family="shape", doc="Repeat the whole array: tile(x of (2,3), reps=(2,1)) is (4,3); reps align on the right."))


def _repeat_lower(ctx, p, x):
    if p["repeats"] < 0:
        fail(f"repeat: repeats={p['repeats']} must be >= 0")
    if p["axis"] is None:
        return jnp.repeat(x.reshape(-1), p["repeats"])
    return jnp.repeat(x, p["repeats"], axis=normalize_axis(p["axis"], x.ndim))


register(Op(
    "repeat", _repeat_lower,
    attrs=(attr("repeats", Int(), doc="how many times each element is repeated"),
           attr("axis", Optional(Int()), None, "the axis; None repeats the flattened input")),
    family="shape", doc="Repeat each element: repeat(x of (2,3), repeats=2, axis=1) is (2,6)."))


def _reverse_lower(ctx, p, x):
    if not p["axis"]:
        fail("reverse needs at least one axis")
    return jnp.flip(x, tuple(normalize_axis(a, x.ndim) for a in p["axis"]))


register(Op(
    "reverse", _reverse_lower, aliases=("flip",),
    attrs=(attr("axis", Axes(), doc="the axis or axes to reverse"),),
    family="shape", doc="Reverse the order of elements along axes: reverse(x, axis=1)."))


def _stack_infer(p, shapes):
    known = next((s for s in shapes if s is not None), None)
    return [known if s is None else s for s in shapes]


def _stack_lower(ctx, p, *xs):
    first = xs[0]
    for i, x in enumerate(xs[1:], 1):
        if x.shape != first.shape:
            fail(f"stack: input arg{i} has shape {tuple(x.shape)}, which differs from arg0's {tuple(first.shape)}")
    axis = p["axis"]
    if not -(first.ndim + 1) <= axis <= first.ndim:
        fail(f"stack: axis {axis} is out of range for inputs of {first.ndim} dimension(s)")
    return jnp.stack(xs, axis=axis % (first.ndim + 1))


register(Op(
    "stack", _stack_lower, variadic="num_args", infer_inputs=_stack_infer,
    attrs=(attr("axis", Int(), 0, "where the new axis goes"),
           attr("num_args", Int(min=1), doc="the number of inputs")),
    family="shape", doc="Join same-shaped arrays along a new axis: stack(a, b) of (2,3) arrays is (2,2,3)."))


# -- slice_like / reshape_like -----------------------------------------------------------
def _slice_like_lower(ctx, p, x, like):
    axes = p["axes"]
    if not axes:
        if like.ndim != x.ndim:
            fail(f"slice_like without axes needs inputs with the same number of dimensions, got "
                 f"{tuple(x.shape)} and {tuple(like.shape)}")
        axes = range(x.ndim)
    for a in axes:
        ax = normalize_axis(a, x.ndim, "slice_like axis")
        if ax >= like.ndim:
            fail(f"slice_like: axis {a} is out of range for shape_like {tuple(like.shape)}")
        size = like.shape[ax]
        if size > x.shape[ax]:
            fail(f"slice_like: shape_like {tuple(like.shape)} is larger than the data {tuple(x.shape)} on axis {ax}")
        x = jax.lax.slice_in_dim(x, 0, size, 1, ax)
    return x


register(Op(
    "slice_like", _slice_like_lower, inputs=("data", "shape_like"),
    attrs=(attr("axes", Axes(), (), "the axes to slice; empty: every axis"),),
    family="shape",
    doc="Slice the data from 0 to the size of shape_like on the given axes; shape_like gets a zero gradient."))


def _span(begin: int | None, end: int | None, ndim: int, what: str) -> tuple[int, int]:
    b = 0 if begin is None else begin + ndim if begin < 0 else begin
    e = ndim if end is None else end + ndim if end < 0 else end
    if not 0 <= b <= e <= ndim:
        fail(f"reshape_like: {what}_begin={begin}, {what}_end={end} are not a valid range of {ndim} axes")
    return b, e


def _reshape_like_lower(ctx, p, lhs, rhs):
    lb, le = _span(p["lhs_begin"], p["lhs_end"], lhs.ndim, "lhs")
    rb, re = _span(p["rhs_begin"], p["rhs_end"], rhs.ndim, "rhs")
    target = tuple(lhs.shape[:lb]) + tuple(rhs.shape[rb:re]) + tuple(lhs.shape[le:])
    if math.prod(target) != math.prod(lhs.shape):
        fail(f"reshape_like: cannot reshape lhs {tuple(lhs.shape)} to {target} (sizes differ)")
    return lhs.reshape(target)


register(Op(
    "reshape_like", _reshape_like_lower, inputs=("lhs", "rhs"),
    attrs=(attr("lhs_begin", Optional(Int()), None, "first axis of lhs to replace"),
           attr("lhs_end", Optional(Int()), None, "end of the axes of lhs to replace"),
           attr("rhs_begin", Optional(Int()), None, "first axis of rhs to copy"),
           attr("rhs_end", Optional(Int()), None, "end of the axes of rhs to copy")),
    family="shape", doc="Reshape lhs to rhs's shape (or splice a range of rhs's axes into lhs's)."))


# -- depth_to_space / space_to_depth ---------------------------------------------------
def _block(p: dict, x: Any, what: str) -> int:
    b = p["block_size"]
    if b < 1:
        fail(f"{what}: block_size must be >= 1, got {b}")
    if x.ndim != 4:
        fail(f"{what} needs a 4-D (N, C, H, W) input, got {tuple(x.shape)}")
    if 0 in x.shape:
        fail(f"{what}: input {tuple(x.shape)} has a zero-size dimension (MXNet refuses them too)")
    return b


def _depth_to_space_lower(ctx, p, x):
    b = _block(p, x, "depth_to_space")
    n, c, h, w = x.shape
    if c % (b * b):
        fail(f"depth_to_space: channels {c} are not a multiple of block_size^2 = {b * b}")
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _space_to_depth_lower(ctx, p, x):
    b = _block(p, x, "space_to_depth")
    n, c, h, w = x.shape
    if h % b or w % b:
        fail(f"space_to_depth: height {h} and width {w} must be multiples of block_size {b}")
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


_BLOCK_ATTR = (attr("block_size", Int(), doc="the spatial block size"),)
register(Op("depth_to_space", _depth_to_space_lower, attrs=_BLOCK_ATTR, family="shape",
            doc="Move channel blocks into space (DCR order): (N, C, H, W) -> (N, C/b^2, H*b, W*b)."))
register(Op("space_to_depth", _space_to_depth_lower, attrs=_BLOCK_ATTR, family="shape",
            doc="Move spatial blocks into channels: (N, C, H, W) -> (N, C*b^2, H/b, W/b)."))


# -- creation: _zeros, _ones, _full, _arange ------------------------------------------------
def _creation_dtype(p, dtypes):
    return dtypes, [_dt.canonical(p["dtype"])]


def _open_creation_shape(p, _in_shapes=()):
    """A creation op's output shape with 0 for each -1 (a size taken from the consumers); None if it has none."""
    shape = tuple(p["shape"])
    if any(d < -1 for d in shape):
        fail(f"shape {shape} has a negative size other than -1 (-1: taken from where the result is used)")
    return [tuple(0 if d == -1 else d for d in shape)] if -1 in shape else None


def _complete_creation_shape(p, out_shapes):
    return {"shape": tuple(out_shapes[0])}


def _filled(value_of: Any) -> Any:
    def lower(ctx, p):
        if not p["shape"]:
            fail("the shape must be given (-1 marks a size taken from where the result is used)")
        if _open_creation_shape(p) is not None:
            fail(f"shape {tuple(p['shape'])}: the -1 sizes were not inferred from where the result is used")
        return jnp.full(tuple(p["shape"]), value_of(p), _dt.canonical(p["dtype"]))
    return lower


_CREATION_ATTRS = (attr("shape", Shape(allow_negative=True), (), "the output shape; -1: a size inferred from the "
                        "consumers"),
                   attr("ctx", Str(), "", "(MXNet: the device; placement follows the executor)"),
                   attr("dtype", DType(), "float32", "the output dtype"))
_DEFERRED = dict(partial_shapes=_open_creation_shape, complete_attrs=_complete_creation_shape)

for _name, _value, _doc in (("_zeros", lambda p: 0, "zeros"), ("_ones", lambda p: 1, "ones")):
    register(Op(_name, _filled(_value), inputs=(), attrs=_CREATION_ATTRS, infer_dtype=_creation_dtype,
                differentiable=False, family="shape", **_DEFERRED,
                doc=f"An array of {_doc} (mx.sym.{_doc}(shape, dtype)): a constant inside the graph."))
register(Op("_full", _filled(lambda p: p["value"]), inputs=(), infer_dtype=_creation_dtype,
            attrs=_CREATION_ATTRS + (attr("value", Float(), doc="the fill value"),), **_DEFERRED,
            differentiable=False, family="shape", doc="An array filled with value (mx.sym.full(shape, val))."))


def arange_values(start: float, stop: float | None, step: float, repeat: int, dtype: Any) -> Any:
    """MXNet's ``arange``: ``ceil((stop - start) / step)`` values, each repeated ``repeat`` times.

    For an integer dtype the values are ``int(start) + i * int(step)``, wrapped into the dtype, as MXNet's.

        >>> arange_values(3, None, 1.0, 2, jnp.float32).tolist()
        [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    """
    if stop is None:
        start, stop = 0.0, start
    if step == 0:
        fail("arange: step cannot be 0")
    if repeat < 1:
        fail(f"arange: repeat={repeat} must be >= 1")
    n = max(int(math.ceil((stop - start) / step)), 0)
    if n == 0:
        fail(f"arange: start={start}, stop={stop}, step={step} give no values")
    if np.issubdtype(np.dtype(dtype), np.integer):   # MXNet casts start and step first: arange(0.7, 9, 1.6) is 0..5
        values = int(start) + np.arange(n, dtype=np.int64) * int(step)
    else:
        values = start + np.arange(n, dtype=np.float64) * step
    return jnp.asarray(np.repeat(values, repeat).astype(dtype))


def _arange_open_shape(p, _in_shapes=()):
    return [(0,)] if p["infer_range"] else None


def _arange_complete(p, out_shapes):
    """``infer_range``: the stop that gives the inferred length (half a step early, safe from rounding)."""
    size, repeat = int(out_shapes[0][0]), int(p["repeat"])
    if repeat < 1 or size % repeat:
        fail(f"arange: the inferred length {size} is not a multiple of repeat={repeat}")
    if p["step"] == 0:
        fail("arange: step cannot be 0")
    return {"stop": p["start"] + (size // repeat - 0.5) * p["step"], "infer_range": False}


def _arange_lower(ctx, p):
    if p["infer_range"]:
        fail("arange: infer_range=True, but nothing the result feeds gives its length; give stop")
    return arange_values(p["start"], p["stop"], p["step"], p["repeat"], _dt.canonical(p["dtype"]))


register(Op(
    "_arange", _arange_lower, inputs=(), infer_dtype=_creation_dtype, differentiable=False, family="shape",
    partial_shapes=_arange_open_shape, complete_attrs=_arange_complete,
    attrs=(attr("start", Float(), doc="the first value (the stop when stop is None)"),
           attr("stop", Optional(Float()), None, "the end, excluded; None: [0, start)"),
           attr("step", Float(), 1.0, "the spacing"),
           attr("repeat", Int(), 1, "how many times each value is repeated"),
           attr("infer_range", Bool(), False, "take the length from where the result is used (stop is ignored)"),
           attr("ctx", Str(), "", "(MXNet: the device; placement follows the executor)"),
           attr("dtype", DType(), "float32", "the output dtype")),
    doc="Evenly spaced values (mx.sym.arange(start, stop, step, repeat)): a constant inside the graph."))


# -- shape_array / size_array ---------------------------------------------------------
def _index_dtype() -> np.dtype:
    """MXNet's int64, or int32 where JAX runs without 64-bit types (as every int64 output here)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


register(Op(
    "shape_array", lambda ctx, p, x: jnp.asarray(np.array(x.shape, np.int64), _index_dtype()),
    family="shape", differentiable=False, infer_dtype=lambda p, dts: (dts, [_index_dtype()]),
    doc="The shape of data as a 1-D integer array (int64, or int32 without jax_enable_x64); a constant "
        "of the compiled program, since every shape is static."))

register(Op(
    "size_array", lambda ctx, p, x: jnp.asarray(np.array([math.prod(x.shape)], np.int64), _index_dtype()),
    family="shape", differentiable=False, infer_dtype=lambda p, dts: (dts, [_index_dtype()]),
    doc="The number of elements of data as a 1-element integer array (int64, or int32 without jax_enable_x64)."))


# -- _split_v2 ------------------------------------------------------------------------
def _split_v2_bounds(p: dict, size: int) -> list[int]:
    """The start of every part (MXNet: ``sections`` parts, the first ``size % sections`` one longer)."""
    n = p["sections"]
    if n > 0:
        base, extra = divmod(size, n)
        starts = [0]
        for i in range(n - 1):
            starts.append(starts[-1] + base + (1 if i < extra else 0))
        return starts
    return list(p["indices"])


def _split_v2_lower(ctx, p, x):
    axis = normalize_axis(p["axis"], x.ndim)
    size = x.shape[axis]
    starts = _split_v2_bounds(p, size)
    if not starts:
        fail("_split_v2 needs indices or sections > 0")
    ends = starts[1:] + [size]
    parts = []
    for i, (b, e) in enumerate(zip(starts, ends)):
        if not 0 <= b <= e <= size:
            fail(f"_split_v2: part {i} spans [{b}, {e}) outside axis {axis} of size {size} (indices {starts})")
        if p["squeeze_axis"] and e - b != 1:
            fail(f"_split_v2 with squeeze_axis=True needs parts of size 1, part {i} has {e - b}")
        part = jax.lax.slice_in_dim(x, b, e, axis=axis)
        parts.append(jnp.squeeze(part, axis) if p["squeeze_axis"] else part)
    return tuple(parts)


register(Op(
    "_split_v2", _split_v2_lower,
    attrs=(attr("indices", Shape(), doc="the start of every part (the first is 0)"),
           attr("axis", Int(), 1, "the axis to split"),
           attr("squeeze_axis", Bool(), False, "drop the split axis (every part must have size 1)"),
           attr("sections", Int(min=0), 0, "split into this many parts instead (0: use indices)")),
    num_outputs=lambda p: p["sections"] if p["sections"] > 0 else len(p["indices"]), family="shape",
    doc="Split along axis at indices (mx.sym.split_v2(x, (2, 3)) gives x[:2], x[2:3], x[3:]) or into sections "
        "nearly equal parts."))
