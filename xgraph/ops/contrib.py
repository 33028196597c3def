"""MXNet's ``contrib`` operators: ``_contrib_div_sqrt_dim``, ``_contrib_arange_like``.

They are reached as ``mx.sym.contrib.div_sqrt_dim`` / ``mx.nd.contrib.arange_like``
(the ``_contrib_`` prefix dropped), as in MXNet.

    >>> import xgraph as mx
    >>> mx.sym.contrib.arange_like(mx.sym.var('x'), axis=1).infer_shape(x=(2, 5))[1]
    [(5,)]
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .attrs import Float, Int, Optional, Str, attr
from .common import fail, normalize_axis
from .registry import Op, register


def _div_sqrt_dim_lower(ctx, p, x):
    if x.ndim == 0:
        fail("div_sqrt_dim needs an input with at least one dimension")
    return x / jnp.sqrt(jnp.asarray(x.shape[-1], x.dtype))


register(Op("_contrib_div_sqrt_dim", _div_sqrt_dim_lower, family="contrib",
            doc="data / sqrt(data.shape[-1]) (attention score scaling)."))


def _arange_like_lower(ctx, p, x):
    if p["repeat"] < 1:
        fail(f"arange_like: repeat={p['repeat']} must be >= 1")
    shape = tuple(x.shape) if p["axis"] is None else (x.shape[normalize_axis(p["axis"], x.ndim)],)
    n = math.prod(shape)
    values = p["start"] + (jnp.arange(n) // p["repeat"]).astype(jnp.float32) * p["step"]
    return jax.lax.stop_gradient(values.reshape(shape).astype(x.dtype))


register(Op(
    "_contrib_arange_like", _arange_like_lower, family="contrib",
    attrs=(attr("start", Float(), 0.0, "the first value"),
           attr("step", Float(), 1.0, "the spacing"),
           attr("repeat", Int(), 1, "how many times each value is repeated"),
           attr("ctx", Str(), "", "(MXNet: the device; placement follows the executor)"),
           attr("axis", Optional(Int()), None, "take the length of this axis; None: the input's whole shape")),
    doc="start + (i // repeat) * step over the input's shape (or the length of one axis); no gradient."))


def _quadratic_lower(ctx, p, x):
    a, b, c = (jnp.asarray(p[k], x.dtype) for k in ("a", "b", "c"))
    return (a * x + b) * x + c


register(Op("_contrib_quadratic", _quadratic_lower, family="contrib",
            attrs=(attr("a", Float(), 0.0, "the quadratic coefficient"),
                   attr("b", Float(), 0.0, "the linear coefficient"),
                   attr("c", Float(), 0.0, "the constant term")),
            doc="a * x^2 + b * x + c elementwise; gradient 2 a x + b."))
