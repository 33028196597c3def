"""Broadcasting operators: ``broadcast_*`` binary arithmetic, ``broadcast_to``, ``broadcast_like``,
``broadcast_axis``.

The binary ops reuse the function table :data:`xgraph.ops.elemwise.BINARY`, so
``broadcast_add`` and ``elemwise_add`` share their arithmetic; only the shape
rule differs (numpy-style broadcasting, shapes aligned on the right).  The
gradient of a broadcast input is summed over its broadcast axes.

    >>> import xgraph as mx
    >>> c = mx.sym.broadcast_add(mx.sym.var('a'), mx.sym.var('b'))
    >>> c.infer_shape(a=(2, 3), b=(1, 3))[1]
    [(2, 3)]
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp

from .attrs import Axes, Optional, Shape, attr
from .common import fail, normalize_axis
from .elemwise import _NONDIFF, BINARY
from .registry import Op, register


def broadcast_shapes(lhs: Sequence[int], rhs: Sequence[int]) -> tuple[int, ...]:
    """The numpy broadcast of two shapes, or a ShapeError naming both.

        >>> broadcast_shapes((2, 1, 4), (3, 1))
        (2, 3, 4)
    """
    n = max(len(lhs), len(rhs))
    a = (1,) * (n - len(lhs)) + tuple(lhs)
    b = (1,) * (n - len(rhs)) + tuple(rhs)
    out = []
    for i, (x, y) in enumerate(zip(a, b)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            fail(f"shapes {tuple(lhs)} and {tuple(rhs)} cannot be broadcast together "
                 f"(axis {i - n} has sizes {x} and {y}; each pair must be equal or one of them 1)")
    return tuple(out)


def _broadcast_lowering(fn: Callable, name: str) -> Callable:
    def lower(ctx, p, a, b):
        broadcast_shapes(a.shape, b.shape)
        return fn(a, b)
    lower.__doc__ = f"Lowering of {name}: {name}(a, b) with numpy broadcasting."
    return lower


#: BINARY key -> MXNet aliases of ``broadcast_<key>``
_BROADCAST_ALIASES = {"add": ("broadcast_plus",), "sub": ("broadcast_minus",)}

for _key, _fn in BINARY.items():
    _name = f"broadcast_{_key}"
    register(Op(_name, _broadcast_lowering(_fn, _name), inputs=("lhs", "rhs"),
                aliases=_BROADCAST_ALIASES.get(_key, ()), differentiable=_key not in _NONDIFF,
                family="broadcast", same_dtype=True, doc=f"Elementwise {_key} of two arrays with numpy-style broadcasting."))


# -- broadcast_to -------------------------------------------------------------------
def _check_broadcastable(src: tuple, dst: tuple, what: str) -> None:
    if len(src) != len(dst):
        fail(f"{what}: cannot broadcast an input of shape {src} to {dst} (the number of dimensions differs)")
    for i, (s, d) in enumerate(zip(src, dst)):
        if s != d and s != 1:
            fail(f"{what}: cannot broadcast an input of shape {src} to {dst} "
                 f"(axis {i} has size {s}, which is neither {d} nor 1)")


def _broadcast_to_lower(ctx, p, x):
    shape = p["shape"]
    if len(shape) != x.ndim:
        fail(f"broadcast_to: shape {tuple(shape)} has {len(shape)} dimension(s) but the input "
             f"{tuple(x.shape)} has {x.ndim}")
    target = tuple(x.shape[i] if d == 0 else d for i, d in enumerate(shape))
    _check_broadcastable(tuple(x.shape), target, "broadcast_to")
    return jnp.broadcast_to(x, target)


register(Op(
    "broadcast_to", _broadcast_to_lower,
    attrs=(attr("shape", Shape(), (), "the target shape; a 0 keeps the input's size on that axis"),),
    family="broadcast", doc="Broadcast to a shape: broadcast_to(x of (2,1,3), shape=(0,4,0)) is (2,4,3)."))


# -- broadcast_like -----------------------------------------------------------------
def _broadcast_like_lower(ctx, p, lhs, rhs):
    la, ra = p["lhs_axes"], p["rhs_axes"]
    if la is None and ra is None:
        target = tuple(rhs.shape)
    else:
        if la is None or ra is None or len(la) != len(ra):
            fail(f"broadcast_like: lhs_axes {la} and rhs_axes {ra} must both be given, of the same length")
        target = list(lhs.shape)
        for a, b in zip(la, ra):
            size = rhs.shape[normalize_axis(b, rhs.ndim, "rhs_axes entry")]
            target[normalize_axis(a, lhs.ndim, "lhs_axes entry")] = size
        target = tuple(target)
    _check_broadcastable(tuple(lhs.shape), target, "broadcast_like")
    return jnp.broadcast_to(lhs, target)


register(Op(
    "broadcast_like", _broadcast_like_lower, inputs=("lhs", "rhs"),
    attrs=(attr("lhs_axes", Optional(Axes()), None, "axes of lhs to broadcast (default: all)"),
           attr("rhs_axes", Optional(Axes()), None, "axes of rhs giving the sizes (default: all)")),
    family="broadcast",
    doc="Broadcast lhs to the shape of rhs (or only lhs_axes to the sizes of rhs's rhs_axes); "
        "rhs gets a zero gradient."))


# -- broadcast_axis -----------------------------------------------------------------
def _broadcast_axis_lower(ctx, p, x):
    axes, sizes = p["axis"], p["size"]
    if len(axes) != len(sizes):
        fail(f"broadcast_axis: axis {tuple(axes)} and size {tuple(sizes)} must have the same length")
    target = list(x.shape)
    for a, s in zip(axes, sizes):
        a = normalize_axis(a, x.ndim)
        if x.shape[a] != 1:
            fail(f"broadcast_axis: axis {a} of the input {tuple(x.shape)} has size {x.shape[a]}; "
                 f"only axes of size 1 can be broadcast")
        target[a] = s
    return jnp.broadcast_to(x, tuple(target))


register(Op(
    "broadcast_axis", _broadcast_axis_lower, aliases=("broadcast_axes",),
    attrs=(attr("axis", Axes(), (), "the axes (of size 1) to broadcast"),
           attr("size", Shape(), (), "the target size of each axis")),
    family="broadcast", doc="Broadcast size-1 axes: broadcast_axis(x of (2,1), axis=1, size=3) is (2,3)."))

