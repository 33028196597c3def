"""Region and patch ops: ROIPooling, ROIAlign, Crop and Correlation (MXNet 1.9.1's semantics).

Every output shape is fixed by the attributes and the input shapes, so each op
stays one static XLA program: ROI coordinates are data, never sizes. ``rois``
rows are ``[batch_index, x1, y1, x2, y2]`` in image coordinates, scaled to the
feature map by ``spatial_scale``. A ROI whose batch index is outside
``[0, batch)`` gives zeros (and no gradient): MXNet's ROIPooling does so,
its ROIAlign documents it for negative indices (and reads out of bounds for
too-large ones).

    >>> import xgraph as mx
    >>> mx.sym.ROIPooling(mx.sym.var('x'), mx.sym.var('r'), pooled_size=(2, 2),
    ...                   spatial_scale=1.0).infer_shape(x=(1, 3, 8, 8), r=(5, 5))[1]
    [(5, 3, 2, 2)]
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import lax

from .attrs import Bool, Float, Int, Shape, attr
from .common import as_float, fail
from .registry import Op, register
from .sampling import _need_nchw

_FLT_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Bounded(Float):
    """A number within ``[low, high]`` (MXNet's ``set_range``)."""

    low: float = 0.0
    high: float = 1.0

    def parse(self, value) -> float:
        v = super().parse(value)
        if not self.low <= v <= self.high:
            raise ValueError(f"{v} is outside [{self.low}, {self.high}]")
        return v

    def describe(self) -> str:
        return f"a number in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class PairOrZero(Shape):
    """Two non-negative integers (h, w)."""

    def parse(self, value) -> tuple[int, int]:
        v = super().parse(value)
        if len(v) != 2:
            raise ValueError(f"{v} is not two integers")
        return v

    def describe(self) -> str:
        return "two non-negative integers (h, w)"


@dataclass(frozen=True)
class Pair(PairOrZero):
    """Two positive integers ``(h, w)`` (MXNet's ``set_expect_ndim(2).enforce_nonzero()``)."""

    def parse(self, value) -> tuple[int, int]:
        v = super().parse(value)
        if min(v) < 1:
            raise ValueError(f"{v} has a zero entry")
        return v

    def describe(self) -> str:
        return "two positive integers (h, w)"


def _compute(x):
    """The dtype ROI geometry is computed in: float32 for half-precision data."""
    x = as_float(x)
    return jnp.float32 if x.dtype in (jnp.float16, jnp.bfloat16) else x.dtype


def _split(c):
    """Veltkamp's split of c into a high half and the rest, both exact (half the mantissa each)."""
    t = c * jnp.asarray(4097.0 if c.dtype == jnp.float32 else 134217729.0, c.dtype)
    hi = t - (t - c)
    return hi, c - hi


def _residual(a, c, d):
    """a - c * d, with the sign and nearly the size of the exact value (Dekker's exact products)."""
    ch, cl = _split(c)
    dh, dl = _split(d)
    return (((a - ch * dh) - ch * dl) - cl * dh) - cl * dl


def exact_div(a, d):
    """``a / d`` correctly rounded, as C++ divides (``d`` nonzero and finite).

    XLA's CPU division is off by an ulp for vectors (and a division by a constant
    becomes a multiplication by its rounded reciprocal), which moves bin edges
    such as ceil(3 * (7 / 3)); the nearest of the quotient and its two
    neighbours, by exact residual, is the rounded quotient. Not differentiable.
    """
    a = lax.stop_gradient(a)
    d = jnp.broadcast_to(lax.stop_gradient(jnp.asarray(d, a.dtype)), jnp.broadcast_shapes(jnp.shape(a), jnp.shape(d)))
    q = a / d
    best, err = q, jnp.abs(_residual(a, q, d))
    for c in (jnp.nextafter(q, jnp.full_like(q, -jnp.inf)), jnp.nextafter(q, jnp.full_like(q, jnp.inf))):
        e = jnp.abs(_residual(a, c, d))
        best, err = jnp.where(e < err, c, best), jnp.minimum(e, err)
    return jnp.where(jnp.isfinite(q), best, q)


def _split_rois(data, rois):
    """(batch indices (R,) int32 with -1 where out of range, coordinate columns (R, 4)) of checked rois."""
    if rois.ndim != 2 or rois.shape[1] != 5:
        fail(f"rois must be (num_rois, 5) rows of [batch_index, x1, y1, x2, y2], got shape {tuple(rois.shape)}")
    rois = lax.stop_gradient(rois).astype(_compute(data))
    batch = rois[:, 0].astype(jnp.int32)  # C++'s truncation toward zero
    batch = jnp.where((batch >= 0) & (batch < data.shape[0]), batch, -1)
    return batch, rois[:, 1:]


# -- ROIPooling -----------------------------------------------------------------------
def _round_half_away(x):
    """std::round: halves go away from zero."""
    return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def _pool_bounds(start, end, pooled: int, size: int):
    """(R, pooled) integer [begin, end) of each bin along one axis (MXNet's floor/ceil of bin multiples)."""
    length = jnp.maximum(end - start + 1, 1)
    bin_size = exact_div(length, pooled)
    k = jnp.arange(pooled, dtype=length.dtype)
    lo = jnp.floor(k * bin_size[:, None]) + start[:, None]
    hi = jnp.ceil((k + 1) * bin_size[:, None]) + start[:, None]
    return jnp.clip(lo, 0, size).astype(jnp.int32), jnp.clip(hi, 0, size).astype(jnp.int32)


def _first_max(values, mask, axis: int):
    """Index of the first maximum of ``values`` where ``mask`` holds, along ``axis`` (and that maximum)."""
    masked = jnp.where(mask, values, -jnp.inf)
    return jnp.argmax(masked, axis=axis), jnp.max(masked, axis=axis)


def _roi_pool_lower(ctx, p, data, rois):
    _need_nchw(data)
    n, c, h, w = data.shape
    ph, pw = p["pooled_size"]
    batch, box = _split_rois(data, rois)
    corners = _round_half_away(box * jnp.asarray(p["spatial_scale"], jnp.float32).astype(box.dtype))
    hs, he = _pool_bounds(corners[:, 1], corners[:, 3], ph, h)
    ws, we = _pool_bounds(corners[:, 0], corners[:, 2], pw, w)
    rows, cols = jnp.arange(h), jnp.arange(w)
    in_h = (rows >= hs[..., None]) & (rows < he[..., None])            # (R, PH, H)
    in_w = (cols >= ws[..., None]) & (cols < we[..., None])            # (R, PW, W)
    feat = data[jnp.maximum(batch, 0)]                                  # (R, C, H, W)
    probe = lax.stop_gradient(feat)
    # the first maximum in row-major order: per row, the first column; then the first row
    col_arg, row_max = _first_max(probe[:, :, :, None, :], in_w[:, None, None], axis=-1)  # (R, C, H, PW)
    row_arg, _ = _first_max(row_max[:, :, None], in_h[:, None, :, :, None], axis=3)       # (R, C, PH, PW)
    col = jnp.take_along_axis(col_arg, row_arg, axis=2)                                     # (R, C, PH, PW)
    flat = (row_arg * w + col).reshape(row_arg.shape[0], c, ph * pw)
    out = jnp.take_along_axis(feat.reshape(feat.shape[0], c, h * w), flat, axis=2).reshape(row_arg.shape)
    empty = (he <= hs)[:, :, None] | (we <= ws)[:, None, :] | (batch < 0)[:, None, None]   # (R, PH, PW)
    fits = float(jnp.finfo(out.dtype).max) >= _FLT_MAX               # half types turn -FLT_MAX into -inf
    floor_value = jnp.asarray(-_FLT_MAX if fits else -jnp.inf, out.dtype)
    above = out > floor_value                      # MXNet starts each bin at -FLT_MAX, keeps strict maxima
    skip = empty[:, None] | ~above
    out = jnp.where(empty[:, None], jnp.zeros((), out.dtype), jnp.where(above, out, floor_value))
    index = batch[:, None, None] * (c * h * w) + jnp.arange(c)[:, None] * (h * w) + flat
    maxidx = jnp.where(skip, -1, index.reshape(out.shape)).astype(jnp.int32)
    return out, maxidx


register(Op(
    "ROIPooling", _roi_pool_lower, aliases=("_npx_roi_pooling",), inputs=("data", "rois"), family="vision",
    attrs=(attr("pooled_size", Pair(), doc="output (height, width) of each ROI"),
           attr("spatial_scale", Bounded(low=0.0, high=1.0), doc="feature map size / image size "
                "(1 / the total stride before this layer), in [0, 1]")),
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output"],
    doc="Max pooling of each ROI (rounded to the feature grid) into pooled_size bins: (R, C, ph, pw). "
        "Bins that fall outside the map, and ROIs whose batch index is out of range, give 0; the "
        "gradient goes to the first maximum of each bin; rois get no gradient."))


# -- ROIAlign -------------------------------------------------------------------------
_WINDOW = 12  # adaptive grids: the samples within 2 pixels of a row (spacing >= 0.5) fit in 12 slots


def _axis_weights(start, bin_size, grid, size: int, pooled: int, static_grid: int | None):
    """(R, pooled, size): each bin's mean over its ``grid`` samples of their 1-D bilinear weights.

    MXNet's ROIAlign samples ``grid`` evenly spaced points per bin and axis; a
    point beyond ``[-1, size]`` reads zero, one inside is clamped to
    ``[0, size - 1]`` and read by linear interpolation (a tent around each
    pixel). The 2-D weights are the products of the two axes' weights, so one
    axis is computed alone. ``grid`` (R,) depends on the ROI size unless
    ``static_grid`` is given; then only the samples near each pixel are visited.
    """
    dt = start.dtype
    base = start[:, None] + jnp.arange(pooled, dtype=dt) * bin_size[:, None]   # (R, P)
    gridf = grid.astype(dt)[:, None, None, None]
    pos = jnp.arange(size, dtype=dt)
    if static_grid is not None:
        iy = jnp.arange(static_grid)[None, None, None, :]                       # (1, 1, 1, K)
    else:
        step = exact_div(bin_size, grid.astype(dt))[:, None, None]
        lo = jnp.floor((pos - 2 - base[..., None]) / step) - 1                  # (R, P, S)
        lo = jnp.clip(jnp.where(jnp.isfinite(lo), lo, 0), 0, 2 ** 30).astype(jnp.int32)
        iy = lo[..., None] + jnp.arange(_WINDOW)                                # (R, P, S, K)
    y = base[..., None, None] + exact_div((iy.astype(dt) + 0.5) * bin_size[:, None, None, None], gridf)
    valid = (iy < grid[:, None, None, None]) & (y >= -1) & (y <= size)
    tent = jnp.maximum(1 - jnp.abs(jnp.clip(y, 0, size - 1) - pos[:, None]), 0)
    return jnp.sum(jnp.where(valid, tent, 0), axis=-1) / gridf[..., 0]


def _roi_align_lower(ctx, p, data, rois):
    _need_nchw(data)
    n, c, h, w = data.shape
    ph, pw = p["pooled_size"]
    if p["position_sensitive"] and c % (ph * pw):
        fail(f"position_sensitive needs channels ({c}) divisible by pooled_size[0]*pooled_size[1] = {ph * pw}")
    batch, box = _split_rois(data, rois)
    dt = box.dtype
    offset = 0.5 if p["aligned"] else 0.0
    start = box * jnp.asarray(p["spatial_scale"], jnp.float32).astype(dt) - jnp.asarray(offset, dt)
    extent = start[:, 2:] - start[:, :2]                                # (R, 2): width, height
    if not p["aligned"]:
        extent = jnp.maximum(extent, 1)     # malformed ROIs become 1x1 (MXNet refuses them when aligned)
    pooled = (pw, ph)
    bins = exact_div(extent, jnp.asarray(pooled, dt))
    ratio = p["sample_ratio"]
    if ratio > 0:
        grid, static = jnp.full(extent.shape, ratio, jnp.int32), ratio
    else:
        grid, static = jnp.maximum(jnp.ceil(bins), 1).astype(jnp.int32), None
    wx = _axis_weights(start[:, 0], bins[:, 0], grid[:, 0], w, pw, static)    # (R, PW, W)
    wy = _axis_weights(start[:, 1], bins[:, 1], grid[:, 1], h, ph, static)    # (R, PH, H)
    hot = (batch[:, None] == jnp.arange(n)).astype(dt)                        # (R, N): zero rows if invalid
    x = as_float(data)
    wy = (hot[:, :, None, None] * wy[:, None]).astype(x.dtype)
    if p["position_sensitive"]:
        x6 = x.reshape(n, c // (ph * pw), ph, pw, h, w)
        return jnp.einsum("rnph,rqw,ncpqhw->rcpq", wy, wx.astype(x.dtype), x6)
    return jnp.einsum("rnph,rqw,nchw->rcpq", wy, wx.astype(x.dtype), x)


register(Op(
    "_contrib_ROIAlign", _roi_align_lower, inputs=("data", "rois"), family="vision",
    attrs=(attr("pooled_size", Pair(), doc="output (height, width) of each ROI"),
           attr("spatial_scale", Bounded(low=0.0, high=1.0), doc="feature map size / image size, in [0, 1]"),
           attr("sample_ratio", Int(), -1, "samples per bin and axis; <= 0: ceil(ROI size / pooled size)"),
           attr("position_sensitive", Bool(), False, "bin (i, j) of output channel c reads input channel "
                "c*ph*pw + i*pw + j (R-FCN); the output has channels / (ph*pw) channels"),
           attr("aligned", Bool(), False, "shift ROI corners by -0.5 pixel (Detectron2's aligned ROIAlign)")),
    doc="ROIAlign: each bin of each ROI averages bilinear samples (no rounding of coordinates): "
        "(R, C, ph, pw). Gradients flow to data; rois get none."))


# -- Crop -------------------------------------------------------------------------------
def _crop_lower(ctx, p, data, like=None):
    if data.ndim != 4:
        fail(f"data must be 4-D (batch, channel, height, width), got shape {tuple(data.shape)}")
    h, w = data.shape[2:]
    if like is None:
        th, tw = p["h_w"]
        if not (1 <= th <= h and 1 <= tw <= w):
            fail(f"h_w {p['h_w']} must lie within 1 .. the data's (height, width) = {(h, w)}")
    else:
        if like.ndim != 4:
            fail(f"crop_like must be 4-D (its height and width are the output's), got shape {tuple(like.shape)}")
        th, tw = like.shape[2:]
        if th > h or tw > w:
            fail(f"crop_like's (height, width) {(th, tw)} exceeds the data's {(h, w)}")
    if p["center_crop"]:
        oy, ox = (h - th) // 2, (w - tw) // 2
    else:
        oy, ox = p["offset"]
        if not (0 <= oy <= h - th and 0 <= ox <= w - tw):
            fail(f"offset {p['offset']} leaves the data: a ({th}, {tw}) crop of ({h}, {w}) needs "
                 f"0 <= offset <= {(h - th, w - tw)}")
    return data[:, :, oy:oy + th, ox:ox + tw]


@dataclass(frozen=True)
class CropArgs(Int):
    """Crop's num_args: 1 (size from h_w) or 2 (size from crop_like)."""

    def parse(self, value) -> int:
        v = super().parse(value)
        if v not in (1, 2):
            raise ValueError(f"{v} is not 1 or 2 (MXNet accepts 3 but then infers no shape)")
        return v

    def describe(self) -> str:
        return "1 or 2"


register(Op(
    "Crop", _crop_lower, variadic="num_args", family="vision",
    attrs=(attr("num_args", CropArgs(), doc="1: crop to h_w; 2: crop to the size of the second input "
                "(crop_like)"),
           attr("offset", PairOrZero(), (0, 0), "(y, x) of the crop's top-left corner"),
           attr("h_w", PairOrZero(), (0, 0), "(height, width) of the crop (num_args=1)"),
           attr("center_crop", Bool(), False, "centre the crop instead of using offset")),
    doc="Crop (N, C, H, W) data to h_w, or to the height and width of crop_like, at offset or centred. "
        "crop_like gets a zero gradient."))


# -- Correlation ------------------------------------------------------------------------
def _correlation_geometry(p, h: int, w: int):
    """(output height, output width, displacement radius in steps) of a Correlation."""
    k, md, s1, s2, pad = p["kernel_size"], p["max_displacement"], p["stride1"], p["stride2"], p["pad_size"]
    if k % 2 == 0:
        fail(f"kernel_size {k} must be odd")
    border = md + (k - 1) // 2
    hp, wp = h + 2 * pad, w + 2 * pad
    th, tw = -(-(hp - 2 * border) // s1), -(-(wp - 2 * border) // s1)
    if th < 1 or tw < 1:
        fail(f"max_displacement {md} and kernel_size {k} do not fit in the padded input ({hp}, {wp})")
    return th, tw, md // s2


def _correlation_lower(ctx, p, a, b):
    for name, x in (("data1", a), ("data2", b)):
        if x.ndim != 4:
            fail(f"{name} must be 4-D (batch, channel, height, width), got shape {tuple(x.shape)}")
    if a.shape != b.shape:
        fail(f"data1 {tuple(a.shape)} and data2 {tuple(b.shape)} must have the same shape")
    n, c, h, w = a.shape
    th, tw, radius = _correlation_geometry(p, h, w)
    k, md, s1, s2, pad = p["kernel_size"], p["max_displacement"], p["stride1"], p["stride2"], p["pad_size"]
    pads = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    pa, pb = jnp.pad(as_float(a), pads), jnp.pad(as_float(b), pads)
    hc, wc = h + 2 * pad - 2 * md, w + 2 * pad - 2 * md
    centre = pa[:, :, md:md + hc, md:md + wc]
    steps = jnp.arange(-radius, radius + 1) * s2
    shifts = jnp.stack(jnp.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)  # (dy, dx), dx fastest

    def one(shift):
        other = lax.dynamic_slice(pb, (0, 0, md + shift[0], md + shift[1]), (n, c, hc, wc))
        if p["is_multiply"]:
            prod = jnp.sum(centre * other, axis=1)
        else:  # |a - b| with MXNet's gradient sign(a >= b)
            prod = jnp.sum(jnp.where(centre >= other, centre - other, other - centre), axis=1)
        return sum(prod[:, i:i + s1 * (th - 1) + 1:s1, j:j + s1 * (tw - 1) + 1:s1]
                   for i in range(k) for j in range(k))

    out = lax.map(one, shifts, batch_size=min(len(shifts), 16))          # (D, N, th, tw)
    out = jnp.moveaxis(out, 0, 1) / jnp.asarray(k * k * c, out.dtype)
    tmp = [lax.stop_gradient(jnp.transpose(x, (0, 2, 3, 1))) for x in (pa, pb)]
    return out, tmp[0], tmp[1]


register(Op(
    "Correlation", _correlation_lower, inputs=("data1", "data2"), family="vision",
    attrs=(attr("kernel_size", Int(min=1), 1, "patch size (odd)"),
           attr("max_displacement", Int(min=0), 1, "largest displacement compared"),
           attr("stride1", Int(min=1), 1, "step between compared positions of data1"),
           attr("stride2", Int(min=1), 1, "step between displacements within the neighbourhood"),
           attr("pad_size", Int(min=0), 0, "zero padding of both inputs"),
           attr("is_multiply", Bool(), True, "multiply patches (True) or sum |differences| (False)")),
    num_outputs=3, num_visible_outputs=1, output_names=lambda p: ["output"],
    doc="FlowNet's correlation of two (N, C, H, W) maps: output channel (dy, dx) (dx fastest) is the "
        "mean over channels and a kernel_size patch of data1 * shifted data2 (or |difference|)."))
