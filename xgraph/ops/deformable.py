"""Deformable convolution (``_contrib_DeformableConvolution``, MXNet 1.9.1's CPU semantics).

Each kernel tap (i, j) of output position (y, x) reads the input at ``(y * stride - pad + i * dilate
+ dy, x * stride - pad + j * dilate + dx)``, where (dy, dx) come from ``offset`` (N, num_deformable_group
* kh * kw * 2, out_h, out_w) (for tap t of deformable group g: channel ``(g * kh * kw + t) * 2`` is dy,
the next dx). A point outside ``[0, height) x [0, width)`` reads 0; inside, it is interpolated
bilinearly from its floor corner and the next pixel, clamped at the last row and column (there the
point sits on the last pixel). The sampled columns are multiplied by the weights per group (one
GEMM, as MXNet's im2col + gemm). Gradients for data, offset, weight and bias come from JAX's
autodiff of this and match MXNet's hand-written ones (its offset gradient is the slope of the same
interpolation, zero on the clamped rows and columns).

    >>> import xgraph as mx
    >>> s = mx.sym.contrib.DeformableConvolution(mx.sym.var('x'), mx.sym.var('off'), kernel=(3, 3),
    ...                                          num_filter=4, pad=(1, 1), name='dc')
    >>> s.infer_shape(x=(1, 2, 5, 5), off=(1, 18, 5, 5))[0]
    [(1, 2, 5, 5), (1, 18, 5, 5), (4, 2, 3, 3), (4,)]
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .attrs import Bool, Enum, Int, Optional, Shape, attr
from .common import as_float, fail
from .nn import _conv_geometry, _conv_weight_shape
from .registry import Op, optional_input, register
from .roi import _compute


def _deform_infer(p, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None and len(data) == 4 and p["num_group"] >= 1:
        out[2] = out[2] or _conv_weight_shape(p, "NCHW", max(data[1], 0))
    if len(out) > 3:
        out[3] = out[3] or (p["num_filter"],)
    return out


def deformable_columns(x, offset, kernel, stride, dilate, pad, groups: int):
    """MXNet's deformable im2col: (N, C, kh * kw, out_h * out_w) samples of x (N, C, H, W).

        >>> import numpy as np
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> off = np.zeros((1, 2, 4, 4), np.float32)
        >>> bool((deformable_columns(x, off, (1, 1), (1, 1), (1, 1), (0, 0), 1)[0, 0, 0] == x.ravel()).all())
        True
    """
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = offset.shape[2:]
    dt = _compute(x)
    off = offset.astype(dt).reshape(n, groups, kh * kw, 2, ho, wo)
    ty = (jnp.arange(kh) * dilate[0]).repeat(kw)[:, None, None]                    # (T, 1, 1)
    tx = jnp.tile(jnp.arange(kw) * dilate[1], kh)[:, None, None]
    oy = (jnp.arange(ho) * stride[0] - pad[0])[None, :, None]
    ox = (jnp.arange(wo) * stride[1] - pad[1])[None, None, :]
    hs = (oy + ty).astype(dt) + off[:, :, :, 0]                                     # (N, DG, T, HO, WO)
    ws = (ox + tx).astype(dt) + off[:, :, :, 1]
    inside = (hs >= 0) & (ws >= 0) & (hs < h) & (ws < w)
    hl, wl = lax.stop_gradient(jnp.floor(hs)), lax.stop_gradient(jnp.floor(ws))
    hs = jnp.where(hl >= h - 1, hl, hs)                  # MXNet: on the last row the point is the row
    ws = jnp.where(wl >= w - 1, wl, ws)
    hl, wl = jnp.clip(hl, 0, h - 1), jnp.clip(wl, 0, w - 1)
    hh, wh = jnp.minimum(hl + 1, h - 1), jnp.minimum(wl + 1, w - 1)
    ly, lx = hs - hl, ws - wl
    xg = as_float(x).astype(dt).reshape(n, groups, 1, c // groups, h * w)
    pts = (n, groups, 1, kh * kw * ho * wo)

    def at(yy, xx):
        idx = (yy * w + xx).astype(jnp.int32).reshape(pts)
        return jnp.take_along_axis(xg, idx[:, :, :, None, :], axis=-1, mode="clip")[:, :, 0]   # (N, DG, Cg, P)

    def flat(v):
        return v.reshape(pts)
    val = (flat((1 - ly) * (1 - lx)) * at(hl, wl) + flat((1 - ly) * lx) * at(hl, wh)
           + flat(ly * (1 - lx)) * at(hh, wl) + flat(ly * lx) * at(hh, wh))
    val = jnp.where(flat(inside), val, 0)
    return val.reshape(n, c, kh * kw, ho * wo)


def _deform_conv_lower(ctx, p, x, offset, weight, bias=None):
    if len(p["kernel"]) != 2:
        fail(f"DeformableConvolution: kernel {p['kernel']} must be 2-D (MXNet implements 2-D only)")
    if p["layout"] not in (None, "NCHW"):
        fail(f"DeformableConvolution: layout {p['layout']} is not supported with a 2-D kernel (NCHW only)")
    if x.ndim != 4:
        fail(f"DeformableConvolution: data must be 4-D (batch, channel, height, width), got shape {tuple(x.shape)}")
    _, stride, dilate, pad = _conv_geometry(p, 4)
    n, c, h, w = x.shape
    g, dg, nf = p["num_group"], p["num_deformable_group"], p["num_filter"]
    if g < 1 or dg < 1 or c % g or nf % g or c % dg:
        fail(f"DeformableConvolution: num_group={g} must divide the channels ({c}) and num_filter ({nf}), "
             f"num_deformable_group={dg} the channels")
    kh, kw = p["kernel"]
    ho = (h + 2 * pad[0] - (dilate[0] * (kh - 1) + 1)) // stride[0] + 1
    wo = (w + 2 * pad[1] - (dilate[1] * (kw - 1) + 1)) // stride[1] + 1
    if ho < 1 or wo < 1:
        fail(f"DeformableConvolution: kernel {p['kernel']} (dilate {dilate}) exceeds the padded input "
             f"({h + 2 * pad[0]}, {w + 2 * pad[1]})")
    if tuple(offset.shape) != (n, dg * kh * kw * 2, ho, wo):
        fail(f"DeformableConvolution: offset must be (batch, num_deformable_group * kh * kw * 2, out_h, out_w) = "
             f"{(n, dg * kh * kw * 2, ho, wo)}, got {tuple(offset.shape)}")
    expected = _conv_weight_shape(p, "NCHW", c)
    if tuple(weight.shape) != expected:
        fail(f"DeformableConvolution: weight has shape {tuple(weight.shape)}, expected {expected}")
    cols = deformable_columns(x, offset, (kh, kw), stride, dilate, pad, dg).astype(as_float(x).dtype)
    cols = cols.reshape(n, g, (c // g) * kh * kw, ho * wo)
    wm = weight.astype(cols.dtype).reshape(g, nf // g, (c // g) * kh * kw)
    y = jnp.einsum("gmk,ngkl->ngml", wm, cols).reshape(n, nf, ho, wo)
    if bias is not None:
        if tuple(bias.shape) != (nf,):
            fail(f"DeformableConvolution: bias has shape {tuple(bias.shape)}, expected {(nf,)}")
        y = y + bias.astype(y.dtype)[None, :, None, None]
    return y


register(Op(
    "_contrib_DeformableConvolution", _deform_conv_lower, family="nn",
    inputs=("data", "offset", "weight", optional_input("bias", lambda p: not p["no_bias"])),
    attrs=(attr("kernel", Shape(), doc="window size (h, w)"),
           attr("stride", Shape(), (), "stride (h, w); () means 1"),
           attr("dilate", Shape(), (), "dilation (h, w); () means 1"),
           attr("pad", Shape(), (), "zero padding (h, w) on both sides; () means 0"),
           attr("num_filter", Int(min=1), doc="number of output channels"),
           attr("num_group", Int(), 1, "number of groups of channels (and filters)"),
           attr("num_deformable_group", Int(), 1, "number of channel groups with their own offsets"),
           attr("workspace", Int(min=0), 1024, "(MXNet: scratch space in MB; ignored)"),
           attr("no_bias", Bool(), False, "leave out the bias"),
           attr("layout", Optional(Enum(("NCW", "NCHW", "NCDHW"))), None, "data layout; NCHW (the default) only")),
    infer_inputs=_deform_infer,
    doc="2-D deformable convolution: data (N, C, H, W) sampled bilinearly at the kernel taps moved by "
        "offset (N, dg * kh * kw * 2, out_h, out_w), times weight (num_filter, C / num_group, kh, kw), plus bias."))
