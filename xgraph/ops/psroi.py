"""Position-sensitive, deformable and rotated region ops (MXNet 1.9.1's semantics).

``_contrib_PSROIPooling`` (R-FCN): bin (i, j) of output channel c averages the pixels of input
channel ``(c * group + gi) * group + gj`` inside the bin (bins rounded outward to whole pixels, as
ROIPooling's). ``_contrib_DeformablePSROIPooling`` (Deformable R-FCN): the bins are shifted by
``trans`` (times ``trans_std`` and the ROI size) and averaged over ``sample_per_part`` squared
bilinear samples; a hidden second output counts the samples inside the map.
``_contrib_RROIAlign``: ROIAlign over rotated boxes ``[batch, cx, cy, w, h, degrees]``.

ROI coordinates are data, never sizes: every output shape comes from the attributes and the input
shapes, so each op is one static XLA program. ROIs get a zero gradient (RROIAlign has no gradient
in MXNet, so none here); a ROI whose batch index is outside ``[0, batch)`` gives zeros.

    >>> import xgraph as mx
    >>> s = mx.sym.contrib.PSROIPooling(mx.sym.var('x'), mx.sym.var('r'), spatial_scale=0.5,
    ...                                 output_dim=2, pooled_size=3)
    >>> s.infer_shape(x=(1, 18, 8, 8), r=(4, 5))[1]
    [(4, 2, 3, 3)]
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from .attrs import Bool, Int, attr
from .common import as_float, fail
from .registry import Op, optional_input, register
from .roi import Bounded, Pair, _compute, _round_half_away, _split_rois, exact_div
from .sampling import _need_nchw


def _groups(p, pooled: int, what: str) -> tuple[int, np.ndarray, np.ndarray]:
    """(group size, the group row of each bin row, the group column of each bin column)."""
    group = p["group_size"] or pooled
    if pooled < 1 or group < 1 or p["output_dim"] < 1:
        fail(f"{what}: pooled_size {pooled}, group_size {group} and output_dim {p['output_dim']} must be positive")
    g = np.clip(np.arange(pooled) * group // pooled, 0, group - 1)
    return group, g, g


def _channels(data, p, group: int, what: str) -> None:
    need = p["output_dim"] * group * group
    if data.shape[1] < need:
        fail(f"{what}: data has {data.shape[1]} channels, output_dim * group_size^2 = "
             f"{p['output_dim']} * {group}^2 = {need} are read")


def _position_sensitive(x, od: int, group: int, gh: np.ndarray, gw: np.ndarray):
    """(N, od, P, P, H, W): for bin (i, j) of output channel c, input channel (c*G + gh[i])*G + gw[j]."""
    n, _, h, w = x.shape
    x = x[:, :od * group * group].reshape(n, od, group, group, h, w)
    return x[:, :, gh][:, :, :, gw]


def _corners(box, scale, offset: float):
    """Rounded ROI corners scaled to the map: (start (R, 2) x/y, end (R, 2) x/y) (MXNet's round + 1)."""
    s = jnp.asarray(scale, jnp.float32).astype(box.dtype)
    start = _round_half_away(box[:, :2]) * s - offset
    end = (_round_half_away(box[:, 2:]) + 1) * s - offset
    return start, end


# -- PSROIPooling -----------------------------------------------------------------------
def _bin_masks(start, bins, pooled: int, size: int):
    """(R, pooled, size) 0/1 masks of each bin's pixels and (R, pooled) their counts."""
    k = jnp.arange(pooled, dtype=start.dtype)
    lo = jnp.clip(jnp.floor(k * bins[:, None] + start[:, None]), 0, size)
    hi = jnp.clip(jnp.ceil((k + 1) * bins[:, None] + start[:, None]), 0, size)
    pos = jnp.arange(size, dtype=start.dtype)
    mask = (pos >= lo[..., None]) & (pos < hi[..., None])
    return mask, jnp.maximum(hi - lo, 0)


def _psroi_lower(ctx, p, data, rois):
    _need_nchw(data)
    ps = p["pooled_size"]
    group, gh, gw = _groups(p, ps, "PSROIPooling")
    _channels(data, p, group, "PSROIPooling")
    n, _, h, w = data.shape
    batch, box = _split_rois(data, rois)
    start, end = _corners(box, p["spatial_scale"], 0.0)
    bins = exact_div(jnp.maximum(end - start, 0.1), jnp.asarray(ps, box.dtype))
    mx_, cx = _bin_masks(start[:, 0], bins[:, 0], ps, w)              # (R, P, W), (R, P)
    my, cy = _bin_masks(start[:, 1], bins[:, 1], ps, h)               # (R, P, H), (R, P)
    x = as_float(data)
    hot = (batch[:, None] == jnp.arange(n))
    wy = (hot[:, :, None, None] & my[:, None]).astype(x.dtype)         # (R, N, P, H)
    x6 = _position_sensitive(x, p["output_dim"], group, gh, gw)
    total = jnp.einsum("rnph,rqw,ncpqhw->rcpq", wy, mx_.astype(x.dtype), x6)
    area = (cy[:, :, None] * cx[:, None, :])[:, None]                  # (R, 1, P, P)
    return jnp.where(area > 0, total / jnp.where(area > 0, area, 1).astype(x.dtype), 0).astype(x.dtype)


register(Op(
    "_contrib_PSROIPooling", _psroi_lower, inputs=("data", "rois"), family="vision",
    attrs=(attr("spatial_scale", Bounded(low=0.0, high=1.0), doc="feature map size / image size, in [0, 1]"),
           attr("output_dim", Int(), doc="output channels"),
           attr("pooled_size", Int(), doc="output height and width of each ROI"),
           attr("group_size", Int(), 0, "position-sensitive groups per axis; 0: pooled_size")),
    doc="R-FCN's position-sensitive ROI pooling: (R, output_dim, pooled, pooled) averages over whole-pixel "
        "bins of input channel (c * group + gi) * group + gj; empty bins give 0; rois get a zero gradient."))


# -- DeformablePSROIPooling ----------------------------------------------------------------
def _bilinear_floor_ceil(flat, base, y, x, width: int):
    """MXNet's deformable bilinear sample (corners floor and ceil of the point) of ``flat`` at (y, x)."""
    y0, x0 = jnp.floor(y), jnp.floor(x)
    y1, x1 = jnp.ceil(y), jnp.ceil(x)
    dy, dx = y - lax.stop_gradient(y0), x - lax.stop_gradient(x0)

    def at(yy, xx):
        return jnp.take(flat, base + yy.astype(jnp.int32) * width + xx.astype(jnp.int32), mode="clip")
    return ((1 - dx) * (1 - dy) * at(y0, x0) + (1 - dx) * dy * at(y1, x0)
            + dx * (1 - dy) * at(y0, x1) + dx * dy * at(y1, x1))


def _deform_psroi_lower(ctx, p, data, rois, trans=None):
    _need_nchw(data)
    ps, spp = p["pooled_size"], p["sample_per_part"]
    part = p["part_size"] or ps
    group, gh, gw = _groups(p, ps, "DeformablePSROIPooling")
    if spp < 1 or part < 1:
        fail(f"DeformablePSROIPooling: sample_per_part {spp} and part_size {part} must be positive")
    _channels(data, p, group, "DeformablePSROIPooling")
    od = p["output_dim"]
    n, c, h, w = data.shape
    batch, box = _split_rois(data, rois)
    r = box.shape[0]
    if trans is None:
        classes = 1
    else:
        if trans.ndim != 4 or trans.shape[0] != r or trans.shape[1] % 2 or trans.shape[1] < 2 \
                or trans.shape[2:] != (part, part):
            fail(f"DeformablePSROIPooling: trans must be (num_rois={r}, 2 * num_classes, part_size={part}, "
                 f"part_size={part}), got {tuple(trans.shape)}")
        classes = trans.shape[1] // 2
        if od % classes:
            fail(f"DeformablePSROIPooling: output_dim {od} must be a multiple of the {classes} classes of trans")
    dt = _compute(data)
    box = box.astype(dt)
    start, end = _corners(box, p["spatial_scale"], 0.5)
    size = jnp.maximum(end - start, jnp.asarray(0.1, dt))            # (R, 2) width, height
    bins = exact_div(size, jnp.asarray(ps, dt))
    sub = exact_div(bins, jnp.asarray(spp, dt))
    f = np.float32
    part_of = np.floor(np.arange(ps, dtype=f) / f(ps) * f(part)).astype(np.int32)
    k = jnp.arange(ps, dtype=dt)
    wstart = (k * bins[:, 0:1] + start[:, 0:1])[:, None, None, :]     # (R, 1, 1, P) over pw
    hstart = (k * bins[:, 1:2] + start[:, 1:2])[:, None, :, None]     # (R, 1, P, 1) over ph
    if trans is not None:
        cls = np.arange(od) // (od // classes)
        t = trans.astype(dt) * jnp.asarray(p["trans_std"], jnp.float32).astype(dt)
        tx = t[:, 2 * cls[:, None, None], part_of[None, :, None], part_of[None, None, :]]      # (R, OD, P, P)
        ty = t[:, 2 * cls[:, None, None] + 1, part_of[None, :, None], part_of[None, None, :]]
        wstart = wstart + tx * size[:, 0, None, None, None]
        hstart = hstart + ty * size[:, 1, None, None, None]
    steps = jnp.arange(spp, dtype=dt)
    xs = wstart[..., None, None] + (steps * sub[:, 0, None])[:, None, None, None, None, :]    # (R, OD|1, P, P, 1, S)
    ys = hstart[..., None, None] + (steps * sub[:, 1, None])[:, None, None, None, :, None]    # (R, OD|1, P, P, S, 1)
    shape = (r, od, ps, ps, spp, spp)
    xs, ys = jnp.broadcast_to(xs, shape), jnp.broadcast_to(ys, shape)
    inside = (xs >= -0.5) & (xs <= w - 0.5) & (ys >= -0.5) & (ys <= h - 0.5) \
        & (batch >= 0)[:, None, None, None, None, None]
    xs, ys = jnp.clip(xs, 0, w - 1), jnp.clip(ys, 0, h - 1)
    chan = ((np.arange(od)[:, None, None] * group + gh[None, :, None]) * group + gw[None, None, :])  # (OD, P, P)
    base = ((jnp.maximum(batch, 0)[:, None, None, None] * c + chan) * (h * w))[..., None, None]
    flat = as_float(data).astype(dt).reshape(-1)
    vals = _bilinear_floor_ceil(flat, base, ys, xs, w)
    count = jnp.sum(inside, axis=(-2, -1)).astype(dt)
    total = jnp.sum(jnp.where(inside, vals, 0), axis=(-2, -1))
    out = jnp.where(count > 0, total / jnp.maximum(count, 1), 0)
    return out.astype(as_float(data).dtype), lax.stop_gradient(count).astype(as_float(data).dtype)


register(Op(
    "_contrib_DeformablePSROIPooling", _deform_psroi_lower, family="vision",
    inputs=("data", "rois", optional_input("trans", lambda p: not p["no_trans"])),
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output"],
    attrs=(attr("spatial_scale", Bounded(low=0.0, high=1.0), doc="feature map size / image size, in [0, 1]"),
           attr("output_dim", Int(), doc="output channels"),
           attr("group_size", Int(), doc="position-sensitive groups per axis"),
           attr("pooled_size", Int(), doc="output height and width of each ROI"),
           attr("part_size", Int(), 0, "trans has part_size x part_size offsets per ROI and class; 0: pooled_size"),
           attr("sample_per_part", Int(), 1, "bilinear samples per bin and axis"),
           attr("trans_std", Bounded(low=0.0, high=1.0), 0.0, "scale of trans (times the ROI size)"),
           attr("no_trans", Bool(), False, "no trans input: plain position-sensitive bilinear pooling")),
    doc="Deformable R-FCN pooling: (R, output_dim, pooled, pooled), each bin shifted by trans (R, 2 * classes, "
        "part, part) * trans_std * ROI size and averaged over its in-map bilinear samples (0 if none). "
        "Gradients flow to data and trans; rois get zero (MXNet). A hidden output counts the samples."))


# -- RROIAlign ----------------------------------------------------------------------------
def _rroi_lower(ctx, p, data, rois):
    _need_nchw(data)
    n, c, h, w = data.shape
    ph, pw = p["pooled_size"]
    if rois.ndim != 2 or rois.shape[1] != 6:
        fail(f"RROIAlign: rois must be (num_rois, 6) rows of [batch_index, center_x, center_y, width, height, "
             f"degrees], got shape {tuple(rois.shape)}")
    dt = _compute(data)
    rois = lax.stop_gradient(rois).astype(dt)
    batch = rois[:, 0].astype(jnp.int32)
    batch = jnp.where((batch >= 0) & (batch < n), batch, -1)
    s = jnp.asarray(p["spatial_scale"], jnp.float32).astype(dt)
    cx, cy = rois[:, 1] * s, rois[:, 2] * s
    rw, rh = jnp.maximum(rois[:, 3] * s, 1), jnp.maximum(rois[:, 4] * s, 1)
    theta = rois[:, 5] * jnp.asarray(math.pi / 180.0, dt)
    cos, sin = jnp.cos(theta)[:, None, None], jnp.sin(theta)[:, None, None]
    bin_h, bin_w = exact_div(rh, jnp.asarray(ph, dt)), exact_div(rw, jnp.asarray(pw, dt))
    ratio = p["sampling_ratio"]
    if ratio > 0:
        grid_h = grid_w = jnp.full(rh.shape, ratio, jnp.int32)
    else:
        grid_h, grid_w = jnp.ceil(bin_h).astype(jnp.int32), jnp.ceil(bin_w).astype(jnp.int32)
    base_y = -rh[:, None] / 2 + jnp.arange(ph, dtype=dt) * bin_h[:, None]          # (R, PH)
    base_x = -rw[:, None] / 2 + jnp.arange(pw, dtype=dt) * bin_w[:, None]          # (R, PW)
    flat = lax.stop_gradient(as_float(data).astype(dt)).reshape(-1)   # no gradient (MXNet has none)
    chan = ((jnp.maximum(batch, 0)[:, None] * c + jnp.arange(c)) * (h * w))[:, :, None, None]   # (R, C, 1, 1)
    wide = jnp.max(grid_w, initial=1)

    def sample(k, acc):
        iy, ix = (k // wide).astype(dt), (k % wide).astype(dt)
        yy = (base_y + exact_div((iy + 0.5) * bin_h, grid_h.astype(dt))[:, None])[:, :, None]   # (R, PH, 1)
        xx = (base_x + exact_div((ix + 0.5) * bin_w, grid_w.astype(dt))[:, None])[:, None, :]   # (R, 1, PW)
        x = xx * cos + yy * sin + cx[:, None, None]
        y = yy * cos - xx * sin + cy[:, None, None]
        ok = ~((y < -1) | (y > h) | (x < -1) | (x > w)) & (iy < grid_h)[:, None, None] \
            & (ix < grid_w)[:, None, None] & (batch >= 0)[:, None, None]
        y, x = jnp.maximum(y, 0), jnp.maximum(x, 0)
        y0, x0 = jnp.floor(y), jnp.floor(x)
        y = jnp.where(y0 >= h - 1, h - 1, y)
        x = jnp.where(x0 >= w - 1, w - 1, x)
        y0, x0 = jnp.minimum(y0, h - 1), jnp.minimum(x0, w - 1)
        y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
        ly, lx = y - y0, x - x0

        def at(yy_, xx_):
            return jnp.take(flat, chan + (yy_ * w + xx_).astype(jnp.int32)[:, None], mode="clip")
        val = ((1 - ly) * (1 - lx))[:, None] * at(y0, x0) + ((1 - ly) * lx)[:, None] * at(y0, x1) \
            + (ly * (1 - lx))[:, None] * at(y1, x0) + (ly * lx)[:, None] * at(y1, x1)
        return acc + jnp.where(ok[:, None], val, 0)

    total = lax.fori_loop(0, jnp.max(grid_h, initial=1) * wide, sample, jnp.zeros((rois.shape[0], c, ph, pw), dt))
    count = (grid_h * grid_w).astype(dt)[:, None, None, None]
    return (total / count).astype(as_float(data).dtype)


register(Op(
    "_contrib_RROIAlign", _rroi_lower, inputs=("data", "rois"), family="vision", differentiable=False,
    attrs=(attr("pooled_size", Pair(), doc="output (height, width) of each ROI"),
           attr("spatial_scale", Bounded(low=0.0, high=1.0), doc="feature map size / image size, in [0, 1]"),
           attr("sampling_ratio", Int(), -1, "samples per bin and axis; <= 0: ceil(ROI size / pooled size)")),
    doc="Rotated ROIAlign: rois (R, 6) [batch, center x, center y, width, height, degrees counter-clockwise]; "
        "each bin averages bilinear samples of the rotated grid: (R, C, ph, pw). MXNet has no gradient for "
        "it; here every input gets a zero gradient."))
