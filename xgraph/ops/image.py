"""Image ops of MXNet's ``mx.nd.image`` / ``mx.sym.image`` namespace: ``_image_normalize``.

``normalize`` takes a (C, H, W) image or an (N, C, H, W) batch with 1 or 3
channels and computes ``(x - mean[c]) / std[c]`` per channel; ``mean`` and
``std`` have one value for every channel or one per channel (a bare number is
a one-value tuple, as in MXNet).  The result keeps the input's dtype (integer
images are truncated towards zero, as MXNet's cast does); the gradient is
``1 / std[c]``.

    >>> import xgraph as mx
    >>> x = mx.nd.ones((3, 2, 2))
    >>> mx.nd.image.normalize(x, mean=(0, 1, 2), std=0.5)[:, 0, 0].asnumpy().tolist()
    [2.0, 0.0, -2.0]
"""
from __future__ import annotations

import jax.numpy as jnp

from .attrs import FloatTuple, attr
from .common import as_float, fail
from .registry import Op, register


def _per_channel(name: str, values: tuple, channels: int, shape: tuple) -> jnp.ndarray:
    if len(values) not in (1, channels):
        fail(f"{name} {tuple(values)} must have 1 or {channels} values (one per channel) for input of shape "
             f"{shape}")
    return jnp.asarray(values if len(values) == channels else values * channels, jnp.float32)


def _normalize_lower(ctx, p, data):
    shape = tuple(data.shape)
    if data.ndim not in (3, 4):
        fail(f"normalize needs a (C, H, W) image or an (N, C, H, W) batch, got shape {shape}")
    caxis = data.ndim - 3
    channels = shape[caxis]
    if channels not in (1, 3):
        fail(f"normalize needs 1 or 3 channels on axis {caxis}, got {channels} (shape {shape})")
    bshape = (channels, 1, 1)
    mean = _per_channel("mean", p["mean"], channels, shape).reshape(bshape)
    std = _per_channel("std", p["std"], channels, shape).reshape(bshape)
    x = as_float(data)
    out = (x - mean.astype(x.dtype)) / std.astype(x.dtype)
    return out.astype(data.dtype)


register(Op(
    "_image_normalize", _normalize_lower, aliases=("_npx__image_normalize",),
    attrs=(attr("mean", FloatTuple(), (0.0, 0.0, 0.0, 0.0), "the mean of each channel (or one for all)"),
           attr("std", FloatTuple(), (1.0, 1.0, 1.0, 1.0), "the standard deviation of each channel (or one for all)")),
    family="vision",
    doc="(x - mean[c]) / std[c] for a (C, H, W) image or an (N, C, H, W) batch of 1 or 3 channels; "
        "mean and std have 1 or C values (MXNet's defaults of four values fit neither and are refused, "
        "as in MXNet)."))
