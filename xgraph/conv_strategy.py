"""Alternative lowerings of ``Convolution``, chosen per node by the ``conv_strategy`` pass.

A Convolution node whose user attribute ``__conv_strategy__``
(:data:`xgraph.lower.CONV_STRATEGY_ATTR`) names a strategy is lowered here
instead of by its op's default lowering (plain ``lax.conv_general_dilated``
in the node's layout).  Strategies, for 2-D NCHW convolutions (anything else
falls back to the default lowering):

* ``lax`` — the default lowering;
* ``nhwc`` — transpose data and weight to NHWC/OHWI, convolve, transpose back
  (XLA cancels the transposes between consecutive convolutions where it can);
* ``matmul1x1`` — a 1×1 convolution with one group as one matrix product
  (strided ones read a strided slice first);
* ``im2col`` — ``lax.conv_general_dilated_patches`` then one matrix product
  (one group only);
* ``auto`` — ``matmul1x1`` for 1×1 single-group convolutions, ``lax`` otherwise.

All strategies compute the same values (tested against the default); they
differ in speed.  See ``docs/passes.md`` for measurements on this CPU.

    >>> import jax.numpy as jnp, numpy as np
    >>> x, w = jnp.ones((1, 2, 4, 4)), jnp.ones((3, 2, 1, 1))
    >>> p = {'kernel': (1, 1), 'stride': (), 'dilate': (), 'pad': (), 'num_group': 1, 'num_filter': 3,
    ...      'layout': None, 'no_bias': True}
    >>> lower_convolution('matmul1x1', None, None, p, x, w).shape
    (1, 3, 4, 4)
"""
from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp
from jax import lax

STRATEGIES = ("lax", "nhwc", "matmul1x1", "im2col", "auto")


def _geometry(p: Any) -> tuple:
    k = tuple(p["kernel"])
    n = len(k)

    def fill(v: Any, d: int) -> tuple:
        v = tuple(v or ())
        return v if len(v) == n else (v * n if len(v) == 1 else (d,) * n)
    return k, fill(p.get("stride"), 1), fill(p.get("dilate"), 1), fill(p.get("pad"), 0)


def _add_bias(y: Any, b: Any) -> Any:
    return y if b is None else y + b.astype(y.dtype).reshape((1, -1) + (1,) * (y.ndim - 2))


def _nhwc(p: Any, x: Any, w: Any, b: Any) -> Any:
    k, stride, dilate, pad = _geometry(p)
    xt = jnp.transpose(x, (0, 2, 3, 1))
    wt = jnp.transpose(w.astype(x.dtype), (0, 2, 3, 1))
    y = lax.conv_general_dilated(xt, wt, window_strides=stride, padding=[(q, q) for q in pad],
                                 rhs_dilation=dilate, dimension_numbers=("NHWC", "OHWI", "NHWC"),
                                 feature_group_count=int(p["num_group"]))
    return _add_bias(jnp.transpose(y, (0, 3, 1, 2)), b)


def _matmul1x1(p: Any, x: Any, w: Any, b: Any) -> Any:
    _, stride, _, _ = _geometry(p)
    xs = x[:, :, ::stride[0], ::stride[1]]
    y = jnp.einsum("nchw,oc->nohw", xs, w.astype(x.dtype)[:, :, 0, 0])
    return _add_bias(y, b)


def _im2col(p: Any, x: Any, w: Any, b: Any) -> Any:
    k, stride, dilate, pad = _geometry(p)
    patches = lax.conv_general_dilated_patches(x, k, stride, [(q, q) for q in pad], rhs_dilation=dilate,
                                               dimension_numbers=("NCHW", "OIHW", "NCHW"))
    y = jnp.einsum("nkhw,ok->nohw", patches, w.astype(x.dtype).reshape(w.shape[0], -1))
    return _add_bias(y, b)


def applicable(strategy: str, p: Any, ndim: int) -> bool:
    """Whether ``strategy`` handles a convolution with attributes ``p`` on data of ``ndim`` dimensions."""
    if strategy in ("lax", "auto"):
        return True
    if ndim != 4 or p.get("layout") not in (None, "NCHW"):
        return False
    k, stride, dilate, pad = _geometry(p)
    if strategy == "nhwc":
        return True
    if strategy == "matmul1x1":
        return k == (1, 1) and pad == (0, 0) and int(p["num_group"]) == 1
    if strategy == "im2col":
        return int(p["num_group"]) == 1
    return False


def resolve(strategy: str, p: Any, ndim: int) -> str:
    """The concrete strategy ``auto`` (or an inapplicable one) means for this convolution."""
    if strategy == "auto":
        return "matmul1x1" if applicable("matmul1x1", p, ndim) else "lax"
    return strategy if applicable(strategy, p, ndim) else "lax"


_IMPL: dict[str, Callable[..., Any]] = {"nhwc": _nhwc, "matmul1x1": _matmul1x1, "im2col": _im2col}


def lower_convolution(strategy: str, default: Callable[..., Any] | None, ctx: Any, p: Any, x: Any, w: Any,
                      b: Any = None) -> Any:
    """Lower one Convolution with ``strategy`` (``default`` is the op's own lowering, the fallback)."""
    s = resolve(strategy, p, x.ndim)
    if s == "lax":
        return default(ctx, p, x, w, b) if b is not None else default(ctx, p, x, w)
    return _IMPL[s](p, x, w, b)


__all__ = ["STRATEGIES", "lower_convolution", "resolve", "applicable"]
