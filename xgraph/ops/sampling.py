"""Image resampling: sampling grids, bilinear sampling, spatial transformers, resizing, adaptive pooling.

MXNet's ``GridGenerator``, ``BilinearSampler``, ``SpatialTransformer``,
``_contrib_BilinearResize2D`` and ``_contrib_AdaptiveAvgPooling2D``. Every output
shape is fixed by the attributes and input shapes, so each stays one static XLA
program. Grids use MXNet's normalized coordinates: -1 is the first pixel, +1 the
last, along each axis.

    >>> import xgraph as mx
    >>> mx.sym.GridGenerator(mx.sym.var('a'), transform_type='affine',
    ...                      target_shape=(4, 5)).infer_shape(a=(2, 6))[1]
    [(2, 2, 4, 5)]
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .attrs import Bool, Enum, Float, Int, Optional, Shape, attr
from .common import as_float, fail
from .registry import Op, optional_input, register


def _need_nchw(x, what: str = "data") -> None:
    if x.ndim != 4:
        fail(f"{what} must be 4-D (batch, channel, height, width), got shape {tuple(x.shape)}")


# -- grids -------------------------------------------------------------------------
def _axis_coords(size: int, dtype) -> jnp.ndarray:
    """Normalized coordinates -1 .. 1 of ``size`` pixels (a single pixel sits at -1)."""
    step = 2.0 / (size - 1) if size > 1 else 0.0
    return -1.0 + jnp.arange(size, dtype=dtype) * jnp.asarray(step, dtype)


def affine_grid(theta, height: int, width: int):
    """The (N, 2, height, width) grid of ``theta`` (N, 6) = a row-major 2x3 matrix applied to (x, y, 1)."""
    xs, ys = _axis_coords(width, theta.dtype), _axis_coords(height, theta.dtype)
    gx = jnp.broadcast_to(xs[None, :], (height, width)).reshape(-1)
    gy = jnp.broadcast_to(ys[:, None], (height, width)).reshape(-1)
    base = jnp.stack([gx, gy, jnp.ones_like(gx)])  # (3, H*W)
    out = jnp.einsum("nij,jk->nik", theta.reshape(-1, 2, 3), base)
    return out.reshape(theta.shape[0], 2, height, width)


def _target(p, what: str) -> tuple[int, int]:
    ts = tuple(p["target_shape"])
    if len(ts) != 2 or min(ts) < 1:
        fail(f"{what} needs target_shape=(height, width) with positive entries, got {ts}")
    return ts


def _grid_lower(ctx, p, data):
    data = as_float(data)
    if p["transform_type"] == "affine":
        if data.ndim != 2 or data.shape[1] != 6:
            fail(f"transform_type='affine' takes data of shape (batch, 6), got {tuple(data.shape)}")
        h, w = _target(p, "transform_type='affine'")
        return affine_grid(data, h, w)
    if data.ndim != 4 or data.shape[1] != 2:
        fail(f"transform_type='warp' takes a flow of shape (batch, 2, height, width), got {tuple(data.shape)}")
    _, _, h, w = data.shape
    jx = jnp.arange(w, dtype=data.dtype)[None, :]
    iy = jnp.arange(h, dtype=data.dtype)[:, None]
    gx = (data[:, 0] + jx) / ((w - 1) / 2.0 if w > 1 else 1.0) - 1.0
    gy = (data[:, 1] + iy) / ((h - 1) / 2.0 if h > 1 else 1.0) - 1.0
    return jnp.stack([gx, gy], axis=1)


register(Op(
    "GridGenerator", _grid_lower, family="vision",
    attrs=(attr("transform_type", Enum(("affine", "warp")), doc="'affine': data is (N, 6) matrices; "
                "'warp': data is an (N, 2, H, W) pixel flow"),
           attr("target_shape", Shape(), (0, 0), "(height, width) of the grid (affine only)")),
    doc="A sampling grid (N, 2, H, W) of normalized (x, y) coordinates: an affine transform of the "
        "target's pixel grid, or pixel coordinates plus a flow field (warp)."))


# -- bilinear sampling -------------------------------------------------------------
def bilinear_sample(data, x, y):
    """Sample ``data`` (N, C, H, W) at pixel coordinates ``x``, ``y`` (N, Ho, Wo); zero outside the image.

    Each of the four neighbours contributes only when it lies inside the image,
    so the value fades to zero over the last pixel beyond the border (MXNet's
    BilinearSampler and SpatialTransformer). Differentiable in ``data`` and in
    the coordinates.
    """
    n, c, h, w = data.shape
    ho, wo = x.shape[1:]
    x = x.astype(data.dtype)
    y = y.astype(data.dtype)
    x0, y0 = jnp.floor(x), jnp.floor(y)
    fx, fy = x - x0, y - y0
    flat = data.reshape(n, c, h * w)
    out = jnp.zeros((n, c, ho * wo), data.dtype)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            idx = (jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)).astype(jnp.int32).reshape(n, 1, -1)
            vals = jnp.take_along_axis(flat, jnp.broadcast_to(idx, (n, c, ho * wo)), axis=2)
            weight = jnp.where(inside, wx * wy, 0).reshape(n, 1, -1)
            out = out + vals * weight
    return out.reshape(n, c, ho, wo)


def sample_normalized(data, grid):
    """Bilinear sampling at a normalized grid (N, 2, Ho, Wo): (x, y) in -1 .. 1 across the image."""
    h, w = data.shape[2:]
    x = (grid[:, 0] + 1) * ((w - 1) / 2.0)
    y = (grid[:, 1] + 1) * ((h - 1) / 2.0)
    return bilinear_sample(data, x, y)


def _sampler_lower(ctx, p, data, grid):
    _need_nchw(data)
    if grid.ndim != 4 or grid.shape[1] != 2 or grid.shape[0] != data.shape[0]:
        fail(f"grid must be (batch={data.shape[0]}, 2, height, width), got {tuple(grid.shape)}")
    return sample_normalized(as_float(data), grid)


register(Op(
    "BilinearSampler", _sampler_lower, inputs=("data", "grid"), family="vision",
    attrs=(attr("cudnn_off", Optional(Bool()), None, "(MXNet: turn cuDNN off; ignored)"),),
    doc="Bilinear sampling of data (N, C, H, W) at a grid (N, 2, Ho, Wo) of normalized (x, y) "
        "coordinates; points outside the image read zeros. Gradients flow to data and grid."))


def _stn_infer(p, shapes):
    out = list(shapes)
    if shapes[0] is not None and len(shapes[0]) == 4 and shapes[0][0] > 0 and shapes[1] is None:
        out[1] = (shapes[0][0], 6)
    return out


def _stn_lower(ctx, p, data, loc):
    _need_nchw(data)
    if loc.ndim != 2 or tuple(loc.shape) != (data.shape[0], 6):
        fail(f"loc must be (batch={data.shape[0]}, 6), got {tuple(loc.shape)}")
    h, w = _target(p, "SpatialTransformer")
    data = as_float(data)
    return sample_normalized(data, affine_grid(loc.astype(data.dtype), h, w))


register(Op(
    "SpatialTransformer", _stn_lower, inputs=("data", "loc"), family="vision", infer_inputs=_stn_infer,
    attrs=(attr("target_shape", Shape(), (0, 0), "(height, width) of the output"),
           attr("transform_type", Enum(("affine",)), doc="the only transform: 'affine'"),
           attr("sampler_type", Enum(("bilinear",)), doc="the only sampler: 'bilinear'"),
           attr("cudnn_off", Optional(Bool()), None, "(MXNet: turn cuDNN off; ignored)")),
    doc="Spatial transformer: loc (N, 6) affine matrices make a grid of target_shape, which "
        "samples data bilinearly (GridGenerator + BilinearSampler in one op)."))


# -- separable linear resampling ----------------------------------------------------
def _apply_separable(x, mh: np.ndarray, mw: np.ndarray):
    """out[n, c, o, p] = sum_hw mh[o, h] x[n, c, h, w] mw[p, w] (constant matrices)."""
    y = jnp.einsum("nchw,pw->nchp", x, jnp.asarray(mw, x.dtype))
    return jnp.einsum("oh,nchp->ncop", jnp.asarray(mh, x.dtype), y)


def _bilinear_matrix(size_in: int, size_out: int, align_corners: bool) -> np.ndarray:
    """The (size_out, size_in) matrix of 1-D linear interpolation, edges clamped."""
    o = np.arange(size_out, dtype=np.float64)
    if align_corners:
        src = o * ((size_in - 1) / (size_out - 1) if size_out > 1 else 0.0)
    else:
        src = np.maximum((o + 0.5) * (size_in / size_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    lam = src - i0
    i1 = np.where(i0 < size_in - 1, i0 + 1, i0)
    m = np.zeros((size_out, size_in))
    np.add.at(m, (np.arange(size_out), i0), 1 - lam)
    np.add.at(m, (np.arange(size_out), i1), lam)
    return m


def _scaled(size: int, scale) -> int:
    return int(np.float32(scale) * np.float32(size))


def _resize_target(p, shape, like_shape) -> tuple[int, int]:
    h, w = shape[2:]
    mode = p["mode"]
    sh, sw = p["scale_height"], p["scale_width"]
    if mode == "size":
        nh = _scaled(h, sh) if sh is not None else p["height"]
        nw = _scaled(w, sw) if sw is not None else p["width"]
    elif mode == "odd_scale":
        if sh is None or sw is None:
            fail("mode='odd_scale' needs scale_height and scale_width")
        nh = _scaled(h, sh) if h % 2 == 0 else _scaled(h - 1, sh) + 1
        nw = _scaled(w, sw) if w % 2 == 0 else _scaled(w - 1, sw) + 1
    elif mode == "like":
        if like_shape is None or len(like_shape) != 4:
            fail(f"mode='like' needs a 4-D like input, got shape {like_shape}")
        nh, nw = like_shape[2:]
    else:
        want_even, up = mode.startswith("to_even"), mode.endswith("_up")

        def fix(s: int) -> int:
            return s if (s % 2 == 0) == want_even else (s + 1 if up else s - 1)
        nh, nw = fix(h), fix(w)
    if nh < 1 or nw < 1:
        fail(f"the output size ({nh}, {nw}) of mode='{mode}' must be positive")
    return nh, nw


def _resize_lower(ctx, p, data, like=None):
    _need_nchw(data)
    nh, nw = _resize_target(p, data.shape, None if like is None else tuple(like.shape))
    h, w = data.shape[2:]
    ac = p["align_corners"]
    return _apply_separable(as_float(data), _bilinear_matrix(h, nh, ac), _bilinear_matrix(w, nw, ac))


register(Op(
    "_contrib_BilinearResize2D", _resize_lower, family="vision",
    inputs=("data", optional_input("like", lambda p: p["mode"] == "like", "its height and width are the output's")),
    attrs=(attr("height", Int(min=1), 1, "output height (mode='size' without scale_height)"),
           attr("width", Int(min=1), 1, "output width (mode='size' without scale_width)"),
           attr("scale_height", Optional(Float()), None, "output height = int(height * scale_height)"),
           attr("scale_width", Optional(Float()), None, "output width = int(width * scale_width)"),
           attr("mode", Enum(("size", "odd_scale", "like", "to_even_down", "to_even_up",
                              "to_odd_down", "to_odd_up")), "size",
                "how the output size is chosen: given size/scale, odd_scale (odd sizes keep their "
                "corners), like (the like input's size), or the nearest even/odd size down/up"),
           attr("align_corners", Bool(), True, "corner pixels of input and output coincide; "
                "False: pixel centres are scaled (half-pixel)")),
    doc="Bilinear resizing of (N, C, H, W) images to a size fixed by the attributes (or like's shape)."))


def _adaptive_matrix(size_in: int, size_out: int) -> np.ndarray:
    m = np.zeros((size_out, size_in))
    for o in range(size_out):
        start, end = (o * size_in) // size_out, -((-(o + 1) * size_in) // size_out)
        m[o, start:end] = 1.0 / (end - start)
    return m


def _adaptive_lower(ctx, p, data):
    _need_nchw(data)
    size = tuple(p["output_size"])
    if len(size) == 0:
        size = (1, 1)
    elif len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        fail(f"output_size {tuple(p['output_size'])} must be a positive size or (height, width)")
    h, w = data.shape[2:]
    return _apply_separable(as_float(data), _adaptive_matrix(h, size[0]), _adaptive_matrix(w, size[1]))


register(Op(
    "_contrib_AdaptiveAvgPooling2D", _adaptive_lower, family="vision",
    attrs=(attr("output_size", Shape(), (), "output (height, width), or one size for both; () means 1"),),
    doc="Adaptive average pooling of (N, C, H, W): output cell (i, j) averages input rows "
        "floor(i*H/oh) .. ceil((i+1)*H/oh) and the matching columns."))

