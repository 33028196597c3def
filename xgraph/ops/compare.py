"""Whole-array comparisons: ``_contrib_allclose`` (MXNet's ``contrib/allclose_op``).

``allclose(a, b, rtol, atol, equal_nan)`` is 1 when every element pair is
close, ``|a - b| <= atol + rtol * |b|`` (equal values always are; NaNs are
equal to each other only with ``equal_nan``), else 0.  Unlike numpy, and as in
MXNet, infinities go through the same formula: ``allclose(1, inf)`` and
``allclose(-inf, inf)`` are 1.  As in MXNet 1.9.1 the result is a uint8
scalar (shape ``()``) and the inputs must have one shape and one dtype; it has
no gradient.

    >>> import xgraph as mx
    >>> a = mx.nd.array([1.0, 2.0])
    >>> int(mx.nd.contrib.allclose(a, a + 1e-9).asscalar()), int(mx.nd.contrib.allclose(a, a + 1).asscalar())
    (1, 0)
"""
from __future__ import annotations

import jax.numpy as jnp

from .attrs import Bool, Float, attr
from .common import fail, same_shape_inputs
from .registry import Op, register


def _allclose_lower(ctx, p, a, b):
    if a.shape != b.shape:
        fail(f"allclose needs inputs of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    acc = jnp.float64 if a.dtype == jnp.float64 else jnp.float32
    x, y = a.astype(acc), b.astype(acc)
    close = (x == y) | (jnp.abs(x - y) <= p["atol"] + p["rtol"] * jnp.abs(y))
    if p["equal_nan"]:
        close = close | (jnp.isnan(x) & jnp.isnan(y))
    return jnp.all(close).astype(jnp.uint8)


register(Op(
    "_contrib_allclose", _allclose_lower, inputs=("a", "b"),
    attrs=(attr("rtol", Float(), 1e-5, "relative tolerance (times |b|)"),
           attr("atol", Float(), 1e-8, "absolute tolerance"),
           attr("equal_nan", Bool(), True, "NaNs at the same positions count as equal")),
    infer_inputs=same_shape_inputs, same_dtype=True, differentiable=False, family="contrib",
    doc="1 (uint8, shape ()) if |a - b| <= atol + rtol * |b| everywhere (NaN pairs too with equal_nan), "
        "else 0; numpy.allclose except that infinities go through the same formula, as in MXNet."))
