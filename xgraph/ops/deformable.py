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

``_contrib_ModulatedDeformableConvolution`` (DCNv2) shares the sampler: a point reads the map where
it lies in ``(-1, height) x (-1, width)``, a corner off the map reads 0 (no clamping), and each sample
is multiplied by ``mask`` (N, num_deformable_group * kh * kw, out_h, out_w), channel ``g * kh * kw + t``.
MXNet 1.9.1 has no CPU backward for it ("only implemented in GPU"); JAX's autodiff gives data, offset,
mask, weight and bias gradients.

    >>> import xgraph as mx
    >>> s = mx.sym.contrib.DeformableConvolution(mx.sym.var('x'), mx.sym.var('off'), kernel=(3, 3),
    ...                                          num_filter=4, pad=(1, 1), name='dc')
    >>> s.infer_shape(x=(1, 2, 5, 5), off=(1, 18, 5, 5))[0]
    [(1, 2, 5, 5), (1, 18, 5, 5), (4, 2, 3, 3), (4,)]
    >>> m = mx.sym.contrib.ModulatedDeformableConvolution(mx.sym.var('x'), mx.sym.var('off'), mx.sym.var('m'),
    ...                                                   kernel=(3, 3), num_filter=4, pad=(1, 1), name='dc2')
    >>> m.infer_shape(x=(1, 2, 5, 5), off=(1, 18, 5, 5), m=(1, 9, 5, 5))[0][3:]
    [(4, 2, 3, 3), (4,)]
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .attrs import Bool, Enum, Int, Optional, Shape, attr
from .common import as_float, fail
from .nn import _conv_geometry, _conv_weight_shape
from .registry import Op, optional_input, register
from .roi import _compute


def _deform_infer(weight_at: int):
    """Inference of weight (input ``weight_at``) and bias (the next one) from the data's channels."""
    def infer(p, shapes):
        out = list(shapes)
        data = shapes[0]
        if data is not None and len(data) == 4 and p["num_group"] >= 1:
            out[weight_at] = out[weight_at] or _conv_weight_shape(p, "NCHW", max(data[1], 0))
        if len(out) > weight_at + 1:
            out[weight_at + 1] = out[weight_at + 1] or (p["num_filter"],)
        return out
    return infer


def deformable_columns(x, offset, kernel, stride, dilate, pad, groups: int, mask=None, clamp: bool = True):
    """MXNet's deformable im2col: (N, C, kh * kw, out_h * out_w) samples of x (N, C, H, W).

    ``clamp=True`` is DeformableConvolution's sampler (points in ``[0, H) x [0, W)``, the last row and
    column clamped); ``clamp=False`` is ModulatedDeformableConvolution's (points in ``(-1, H) x (-1, W)``,
    corners off the map read 0). ``mask`` (N, groups * kh * kw, out_h, out_w) multiplies the samples.

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
    ty = (jnp.arange(kh, dtype=jnp.int32) * dilate[0]).repeat(kw)[:, None, None]     # (T, 1, 1)
    tx = jnp.tile(jnp.arange(kw, dtype=jnp.int32) * dilate[1], kh)[:, None, None]
    oy = (jnp.arange(ho, dtype=jnp.int32) * stride[0] - pad[0])[None, :, None]
    ox = (jnp.arange(wo, dtype=jnp.int32) * stride[1] - pad[1])[None, None, :]
    hs = (oy + ty).astype(dt) + off[:, :, :, 0]                                     # (N, DG, T, HO, WO)
    ws = (ox + tx).astype(dt) + off[:, :, :, 1]
    hl, wl = lax.stop_gradient(jnp.floor(hs)), lax.stop_gradient(jnp.floor(ws))
    if clamp:
        inside = (hs >= 0) & (ws >= 0) & (hs < h) & (ws < w)
        hs = jnp.where(hl >= h - 1, hl, hs)              # MXNet: on the last row the point is the row
        ws = jnp.where(wl >= w - 1, wl, ws)
        hl, wl = jnp.clip(hl, 0, h - 1), jnp.clip(wl, 0, w - 1)
        hh, wh = jnp.minimum(hl + 1, h - 1), jnp.minimum(wl + 1, w - 1)
    else:
        inside = (hs > -1) & (ws > -1) & (hs < h) & (ws < w)
        hh, wh = hl + 1, wl + 1
    ly, lx = hs - hl, ws - wl
    xg = as_float(x).astype(dt).reshape(n, groups, 1, c // groups, h * w)
    pts = (n, groups, 1, kh * kw * ho * wo)

    def flat(v):
        return v.reshape(pts)

    def at(yy, xx):                                      # a corner off the map reads 0
        on = flat((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))
        idx = flat(jnp.clip(yy, 0, h - 1) * w + jnp.clip(xx, 0, w - 1)).astype(jnp.int32)
        v = jnp.take_along_axis(xg, idx[:, :, :, None, :], axis=-1, mode="clip")[:, :, 0]   # (N, DG, Cg, P)
        return v if clamp else jnp.where(on, v, jnp.zeros((), dt))    # (clamped corners are on the map)
    val = (flat((1 - ly) * (1 - lx)) * at(hl, wl) + flat((1 - ly) * lx) * at(hl, wh)
           + flat(ly * (1 - lx)) * at(hh, wl) + flat(ly * lx) * at(hh, wh))
    val = jnp.where(flat(inside), val, jnp.zeros((), dt))
    if mask is not None:
        val = val * flat(mask.astype(dt))
    return val.reshape(n, c, kh * kw, ho * wo)


def _deform_conv(p, x, offset, mask, weight, bias, op: str):
    """Both deformable convolutions: checks, the columns (masked for DCNv2), one grouped GEMM, bias."""
    if len(p["kernel"]) != 2:
        fail(f"{op}: kernel {p['kernel']} must be 2-D (MXNet implements 2-D only)")
    if p["layout"] not in (None, "NCHW"):
        fail(f"{op}: layout {p['layout']} is not supported with a 2-D kernel (NCHW only)")
    if x.ndim != 4:
        fail(f"{op}: data must be 4-D (batch, channel, height, width), got shape {tuple(x.shape)}")
    _, stride, dilate, pad = _conv_geometry(p, 4)
    n, c, h, w = x.shape
    g, dg, nf = p["num_group"], p["num_deformable_group"], p["num_filter"]
    if g < 1 or dg < 1 or c % g or nf % g or c % dg:
        fail(f"{op}: num_group={g} must divide the channels ({c}) and num_filter ({nf}), "
             f"num_deformable_group={dg} the channels")
    kh, kw = p["kernel"]
    ho = (h + 2 * pad[0] - (dilate[0] * (kh - 1) + 1)) // stride[0] + 1
    wo = (w + 2 * pad[1] - (dilate[1] * (kw - 1) + 1)) // stride[1] + 1
    if ho < 1 or wo < 1:
        fail(f"{op}: kernel {p['kernel']} (dilate {dilate}) exceeds the padded input "
             f"({h + 2 * pad[0]}, {w + 2 * pad[1]})")
    if tuple(offset.shape) != (n, dg * kh * kw * 2, ho, wo):
        fail(f"{op}: offset must be (batch, num_deformable_group * kh * kw * 2, out_h, out_w) = "
             f"{(n, dg * kh * kw * 2, ho, wo)}, got {tuple(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (n, dg * kh * kw, ho, wo):
        fail(f"{op}: mask must be (batch, num_deformable_group * kh * kw, out_h, out_w) = "
             f"{(n, dg * kh * kw, ho, wo)}, got {tuple(mask.shape)}")
    expected = _conv_weight_shape(p, "NCHW", c)
    if tuple(weight.shape) != expected:
        fail(f"{op}: weight has shape {tuple(weight.shape)}, expected {expected}")
    cols = deformable_columns(x, offset, (kh, kw), stride, dilate, pad, dg, mask,
                              clamp=mask is None).astype(as_float(x).dtype)
    cols = cols.reshape(n, g, (c // g) * kh * kw, ho * wo)
    wm = weight.astype(cols.dtype).reshape(g, nf // g, (c // g) * kh * kw)
    y = jnp.einsum("gmk,ngkl->ngml", wm, cols).reshape(n, nf, ho, wo)
    if bias is not None:
        if tuple(bias.shape) != (nf,):
            fail(f"{op}: bias has shape {tuple(bias.shape)}, expected {(nf,)}")
        y = y + bias.astype(y.dtype)[None, :, None, None]
    return y


def _deform_conv_lower(ctx, p, x, offset, weight, bias=None):
    return _deform_conv(p, x, offset, None, weight, bias, "DeformableConvolution")


def _modulated_deform_conv_lower(ctx, p, x, offset, mask, weight, bias=None):
    n, step = x.shape[0], p["im2col_step"]
    if n > step and n % step:
        fail(f"ModulatedDeformableConvolution: the batch ({n}) must be at most im2col_step ({step}) "
             f"or a multiple of it (as MXNet requires)")
    if p["num_filter"] % max(p["num_deformable_group"], 1):
        fail(f"ModulatedDeformableConvolution: num_deformable_group={p['num_deformable_group']} must divide "
             f"num_filter ({p['num_filter']}) (as MXNet requires)")
    return _deform_conv(p, x, offset, mask, weight, bias, "ModulatedDeformableConvolution")


_CONV_ATTRS = (attr("kernel", Shape(), doc="window size (h, w)"),
               attr("stride", Shape(), (), "stride (h, w); () means 1"),
               attr("dilate", Shape(), (), "dilation (h, w); () means 1"),
               attr("pad", Shape(), (), "zero padding (h, w) on both sides; () means 0"),
               attr("num_filter", Int(min=1), doc="number of output channels"),
               attr("num_group", Int(), 1, "number of groups of channels (and filters)"),
               attr("num_deformable_group", Int(), 1, "number of channel groups with their own offsets"),
               attr("workspace", Int(min=0), 1024, "(MXNet: scratch space in MB; ignored)"),
               attr("no_bias", Bool(), False, "leave out the bias"),
               attr("layout", Optional(Enum(("NCW", "NCHW", "NCDHW"))), None,
                    "data layout; NCHW (the default) only"))
_BIAS = optional_input("bias", lambda p: not p["no_bias"])

register(Op(
    "_contrib_DeformableConvolution", _deform_conv_lower, family="nn",
    inputs=("data", "offset", "weight", _BIAS), attrs=_CONV_ATTRS, infer_inputs=_deform_infer(2),
    doc="2-D deformable convolution: data (N, C, H, W) sampled bilinearly at the kernel taps moved by "
        "offset (N, dg * kh * kw * 2, out_h, out_w), times weight (num_filter, C / num_group, kh, kw), plus bias."))

register(Op(
    "_contrib_ModulatedDeformableConvolution", _modulated_deform_conv_lower, family="nn",
    inputs=("data", "offset", "mask", "weight", _BIAS),
    attrs=_CONV_ATTRS + (attr("im2col_step", Int(min=1), 64,
                              "(MXNet: images per im2col; the batch must be at most it or a multiple of it)"),),
    infer_inputs=_deform_infer(3),
    doc="2-D modulated deformable convolution (DCNv2): as DeformableConvolution, with each sample multiplied "
        "by mask (N, dg * kh * kw, out_h, out_w) and corners off the map reading 0 (no clamping)."))
