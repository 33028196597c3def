"""im2col and col2im: sliding-window patches as columns, and their adjoint (MXNet's ``nn/im2col.cc``).

``im2col`` turns (N, C, *spatial) data into (N, C * prod(kernel), L) columns,
L the number of window positions, the rows ordered channel-major then by
kernel offset (``c * kh * kw + i * kw + j`` in 2-D), as MXNet and a
convolution's ``weight.reshape(num_filter, -1)`` order them.  ``col2im`` is
its adjoint: it adds every column entry back into the image position it was
read from (overlaps sum), so each op's gradient is the other.  1 to 3 spatial
axes; stride and dilate default to 1, pad to 0.

    >>> import xgraph as mx
    >>> col = mx.nd.im2col(mx.nd.ones((1, 2, 4, 4)), kernel=(3, 3), pad=(1, 1))
    >>> col.shape, mx.nd.col2im(col, output_size=(4, 4), kernel=(3, 3), pad=(1, 1))[0, 0, 0].asnumpy().tolist()
    ((1, 18, 16), [4.0, 6.0, 6.0, 4.0])
"""
from __future__ import annotations

import math
from typing import Any

import jax
from jax import lax

from .attrs import Shape, attr
from .common import fail, spatial_tuple
from .registry import Op, register


def _geometry(p: Any, spatial: int) -> tuple[tuple[int, ...], ...]:
    """(kernel, stride, dilate, pad) with MXNet's () defaults filled in for ``spatial`` axes."""
    kernel = tuple(p["kernel"])
    if not 1 <= len(kernel) <= 3 or len(kernel) != spatial:
        fail(f"kernel {kernel} must have one entry per spatial axis (1 to 3), and the input has {spatial}")
    stride, dilate, pad = (spatial_tuple(p[k], spatial, d, k) for k, d in (("stride", 1), ("dilate", 1), ("pad", 0)))
    if min(kernel + stride + dilate) < 1:
        fail(f"kernel {kernel}, stride {stride} and dilate {dilate} must be positive")
    return kernel, stride, dilate, pad


def _out_spatial(size: tuple[int, ...], kernel, stride, dilate, pad) -> tuple[int, ...]:
    out = tuple((s + 2 * q - (d * (k - 1) + 1)) // st + 1 for s, k, st, d, q in zip(size, kernel, stride, dilate, pad))
    if min(out) < 1:
        fail(f"the dilated kernel {kernel} (dilate {dilate}) does not fit the padded input {size} (pad {pad})")
    return out


def im2col_array(x: jax.Array, kernel, stride, dilate, pad) -> jax.Array:
    """Patches of ``x`` (N, C, *spatial) as (N, C * prod(kernel), L) columns (exact: no rounding).

        >>> import jax.numpy as jnp
        >>> im2col_array(jnp.arange(4.0).reshape(1, 1, 2, 2), (2, 1), (1, 1), (1, 1), (0, 0)).tolist()
        [[[0.0, 1.0], [2.0, 3.0]]]
    """
    patches = lax.conv_general_dilated_patches(x, kernel, stride, [(q, q) for q in pad], rhs_dilation=dilate,
                                               precision=lax.Precision.HIGHEST)
    return patches.reshape(patches.shape[:2] + (-1,))


def _im2col_lower(ctx, p, data):
    if data.ndim < 3:
        fail(f"im2col needs (N, C, *spatial) data, got shape {tuple(data.shape)}")
    geom = _geometry(p, data.ndim - 2)
    _out_spatial(tuple(data.shape[2:]), *geom)
    return im2col_array(data, *geom)


def _col2im_lower(ctx, p, data):
    size = tuple(p["output_size"])
    if data.ndim != 3:
        fail(f"col2im needs (N, C * prod(kernel), L) columns, got shape {tuple(data.shape)}")
    geom = _geometry(p, len(size))
    taps = math.prod(geom[0])
    positions = math.prod(_out_spatial(size, *geom))
    if data.shape[1] % taps or data.shape[2] != positions:
        fail(f"columns of shape {tuple(data.shape)} do not fit kernel {geom[0]} over output_size {size}: expected "
             f"(N, C * {taps}, {positions})")
    image = jax.ShapeDtypeStruct((data.shape[0], data.shape[1] // taps) + size, data.dtype)
    (out,) = jax.linear_transpose(lambda im: im2col_array(im, *geom), image)(data)
    return out


_WINDOW = (attr("kernel", Shape(), doc="window size: (w,), (h, w) or (d, h, w)"),
           attr("stride", Shape(), (), "stride per spatial axis; () means 1"),
           attr("dilate", Shape(), (), "dilation per spatial axis; () means 1"),
           attr("pad", Shape(), (), "zero padding on both sides per spatial axis; () means 0"))

register(Op(
    "im2col", _im2col_lower, attrs=_WINDOW, family="nn",
    doc="Sliding-window patches of (N, C, *spatial) data as columns (N, C * prod(kernel), L), rows "
        "channel-major then by kernel offset; the gradient is col2im."))

register(Op(
    "col2im", _col2im_lower, attrs=(attr("output_size", Shape(), doc="the image's spatial size"),) + _WINDOW,
    family="nn",
    doc="The adjoint of im2col: columns (N, C * prod(kernel), L) summed back into an image "
        "(N, C, *output_size), overlapping windows adding up; the gradient is im2col."))
