"""Random sampling: ``_random_*`` (scalar parameters), ``_random_*_like``, ``_sample_*`` (per-element
parameters from input arrays), ``_sample_multinomial``, ``_shuffle``.

Every op draws from ``ctx.rng()``: the execution's key folded with the node's
name, so ``mx.random.seed(n)`` makes a run reproducible and two sampling nodes
never share a stream.  Sampling happens in float32 and is cast to the output
dtype (float16/bfloat16 included).  The ops have no gradient, except
``_sample_multinomial``'s log-probability output (``get_prob=True``), whose
gradient reaches the probabilities as MXNet's does: ``head / p[sample]``.

MXNet conventions: ``dtype='None'`` means float32 for ``_random_*`` (int32 for
``_random_randint``) and the parameters' dtype for ``_sample_*``; an empty
``shape`` gives ``(1,)`` for ``_random_*`` (MXNet has no scalars) and one draw
per parameter for ``_sample_*``, whose output shape is ``param.shape + shape``.

    >>> import xgraph as mx
    >>> mx.sym.random_uniform(low=-1, high=1, shape=(2, 3)).infer_shape()[1]
    [(2, 3)]
    >>> mx.sym.sample_normal(mx.sym.var('mu'), mx.sym.var('sigma'), shape=(4,)).infer_shape(mu=(2,), sigma=(2,))[1]
    [(2, 4)]
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from .. import dtypes as _dt
from .attrs import Bool, Enum, Float, Int, Shape, Str, attr
from .common import fail, flat_draw
from .registry import Op, register

#: MXNet's choices, plus bfloat16 (an xgraph extension: MXNet 1.9 has no bfloat16 sampling)
_FLOAT_DTYPE = Enum(("None", "float16", "float32", "float64", "bfloat16"))


def _gamma(key: Any, alpha: Any, beta: Any, shape: tuple) -> Any:
    return jax.random.gamma(key, jnp.broadcast_to(alpha, shape), shape, jnp.float32) * beta


def _poisson(key: Any, lam: Any, shape: tuple) -> Any:
    return jax.random.poisson(key, jnp.broadcast_to(lam, shape).astype(jnp.float32), shape).astype(jnp.float32)


def _negative_binomial(key: Any, k: Any, p: Any, shape: tuple) -> Any:
    """Failures before the k-th success: Poisson with a Gamma(k, (1-p)/p) rate."""
    k1, k2 = jax.random.split(key)
    return _poisson(k2, _gamma(k1, k, (1 - p) / p, shape), shape)


def _generalized_negative_binomial(key: Any, mu: Any, alpha: Any, shape: tuple) -> Any:
    """Poisson with a Gamma(1/alpha, alpha*mu) rate; plain Poisson(mu) where alpha is 0."""
    k1, k2 = jax.random.split(key)
    safe = jnp.where(alpha == 0, 1.0, alpha)
    rate = jnp.where(alpha == 0, mu, _gamma(k1, 1 / safe, safe * mu, shape))
    return _poisson(k2, rate, shape)


#: distribution -> (scalar attributes of _random_* (name, default), input names of _sample_*, sampler, doc)
#: ``sampler(key, *params, shape)`` returns float32 draws of ``shape`` (params broadcast to it).
DISTRIBUTIONS: dict[str, tuple[tuple[tuple[str, float], ...], tuple[str, ...], Callable, str]] = {
    "uniform": ((("low", 0.0), ("high", 1.0)), ("low", "high"),
                lambda k, lo, hi, s: lo + (hi - lo) * jax.random.uniform(k, s, jnp.float32),
                "uniform on [low, high)"),
    "normal": ((("loc", 0.0), ("scale", 1.0)), ("mu", "sigma"),
               lambda k, mu, sd, s: mu + sd * jax.random.normal(k, s, jnp.float32),
               "normal with mean loc and standard deviation scale"),
    "gamma": ((("alpha", 1.0), ("beta", 1.0)), ("alpha", "beta"), _gamma,
              "gamma with shape alpha and scale beta"),
    "exponential": ((("lam", 1.0),), ("lam",),
                    lambda k, lam, s: jax.random.exponential(k, s, jnp.float32) / lam,
                    "exponential with rate lam"),
    "poisson": ((("lam", 1.0),), ("lam",), _poisson, "Poisson with rate lam (float counts)"),
    "negative_binomial": ((("k", 1), ("p", 1.0)), ("k", "p"), _negative_binomial,
                          "negative binomial: failures before k successes of probability p"),
    "generalized_negative_binomial": ((("mu", 1.0), ("alpha", 1.0)), ("mu", "alpha"),
                                      _generalized_negative_binomial,
                                      "generalized negative binomial with mean mu and dispersion alpha"),
}


def _out_dtype(name: str, default: Any) -> Any:
    return default if name == "None" else _dt.canonical(name)


def _random_dtype(p, dtypes):
    return dtypes, [_out_dtype(p["dtype"], jnp.float32)]


def _random_lowering(sampler: Callable, names: tuple[str, ...]) -> Callable:
    def lower(ctx, p):
        shape = tuple(p["shape"]) or (1,)
        key = ctx.rng()
        return flat_draw(lambda s: sampler(key, *(p[n] for n in names), s), shape).astype(
            _out_dtype(p["dtype"], jnp.float32))
    return lower


def _like_lowering(sampler: Callable, names: tuple[str, ...]) -> Callable:
    def lower(ctx, p, data):
        key = ctx.rng()
        return flat_draw(lambda s: sampler(key, *(p[n] for n in names), s), data.shape).astype(data.dtype)
    return lower


def _sample_lowering(sampler: Callable, inputs: tuple[str, ...]) -> Callable:
    def lower(ctx, p, *params):
        first = params[0]
        for name, x in zip(inputs[1:], params[1:]):
            if x.shape != first.shape:
                fail(f"parameter {name} has shape {tuple(x.shape)}, expected {tuple(first.shape)} "
                     f"(the shape of {inputs[0]})")
        extra = tuple(p["shape"])
        shape = tuple(first.shape) + extra
        expanded = [jax.lax.stop_gradient(x).astype(jnp.float32).reshape(tuple(x.shape) + (1,) * len(extra))
                    for x in params]
        key = ctx.rng()
        return flat_draw(lambda s, *xs: sampler(key, *xs, s), shape, *expanded).astype(
            _out_dtype(p["dtype"], first.dtype))
    return lower


def _scalar_kind(default: Any) -> Any:
    return Int() if isinstance(default, int) else Float()


_SHAPE_ATTR = attr("shape", Shape(), (), "the shape of the draws")
_CTX_ATTR = attr("ctx", Str(), "", "(MXNet: the device; placement follows the executor)")

for _dist, (_scalars, _inputs, _sampler, _doc) in DISTRIBUTIONS.items():
    _names = tuple(n for n, _ in _scalars)
    _scalar_attrs = tuple(attr(n, _scalar_kind(d), d, f"the {n} parameter") for n, d in _scalars)
    register(Op(
        f"_random_{_dist}", _random_lowering(_sampler, _names), inputs=(), random=True, differentiable=False,
        aliases=(f"random_{_dist}",) + ((_dist,) if _dist in ("uniform", "normal") else ()),
        attrs=_scalar_attrs + (_SHAPE_ATTR, _CTX_ATTR,
                               attr("dtype", _FLOAT_DTYPE, "None", "the output dtype (None: float32)")),
        infer_dtype=_random_dtype, family="random",
        doc=f"Draws from the {_doc}; an empty shape gives (1,)."))
    register(Op(
        f"_random_{_dist}_like", _like_lowering(_sampler, _names), random=True, differentiable=False,
        attrs=_scalar_attrs, family="random",
        doc=f"Draws from the {_doc}, with the shape and dtype of the input."))
    register(Op(
        f"_sample_{_dist}", _sample_lowering(_sampler, _inputs), inputs=_inputs, random=True,
        differentiable=False, aliases=(f"sample_{_dist}",),
        attrs=(_SHAPE_ATTR, attr("dtype", _FLOAT_DTYPE, "None", "the output dtype (None: the parameters')")),
        family="random",
        doc=f"Draws from the {_doc}, one parameter set per element: output shape param.shape + shape."))


# -- randint ---------------------------------------------------------------------------------
def _randint_dtype(p, dtypes):
    return dtypes, [_out_dtype(p["dtype"], jnp.int32)]


def _randint_lower(ctx, p):
    if p["high"] <= p["low"]:
        fail(f"randint: high={p['high']} must be greater than low={p['low']}")
    dtype = _out_dtype(p["dtype"], jnp.int32)
    key = ctx.rng()
    return flat_draw(lambda s: jax.random.randint(key, s, p["low"], p["high"], dtype), tuple(p["shape"]) or (1,))


register(Op(
    "_random_randint", _randint_lower, aliases=("random_randint",), inputs=(), random=True, differentiable=False,
    infer_dtype=_randint_dtype,
    attrs=(attr("low", Int(), doc="the smallest value"), attr("high", Int(), doc="the end, excluded"),
           _SHAPE_ATTR, _CTX_ATTR,
           attr("dtype", Enum(("None", "int32", "int64")), "None", "the output dtype (None: int32)")),
    family="random", doc="Uniform integers in [low, high)."))


# -- multinomial -------------------------------------------------------------------------------
def _multinomial_lower(ctx, p, data):
    if data.ndim == 0:
        fail("sample_multinomial needs probabilities with at least one dimension (the last: categories)")
    batch, k = tuple(data.shape[:-1]), data.shape[-1]
    extra = tuple(p["shape"])
    n = 1
    for d in extra:
        n *= d
    probs = data.reshape(-1, k)                                    # (B, K)
    logits = jnp.log(jax.lax.stop_gradient(probs).astype(jnp.float32))
    draws = jax.random.categorical(ctx.rng(), logits, axis=-1, shape=(n, probs.shape[0])).T   # (B, n)
    samples = draws.reshape(batch + extra).astype(_dt.canonical(p["dtype"]))
    if not p["get_prob"]:
        return samples
    logp = jnp.log(jnp.take_along_axis(probs, draws, axis=1))      # differentiable in probs
    return samples, logp.reshape(batch + extra).astype(data.dtype)


register(Op(
    "_sample_multinomial", _multinomial_lower, aliases=("sample_multinomial",), random=True,
    attrs=(_SHAPE_ATTR,
           attr("get_prob", Bool(), False, "also return the log-probability of each draw"),
           attr("dtype", Enum(("float16", "float32", "float64", "int32", "uint8")), "int32",
                "the dtype of the draws")),
    num_outputs=lambda p: 2 if p["get_prob"] else 1, family="random",
    doc="Category draws from probabilities over the last axis: output data.shape[:-1] + shape."))


# -- shuffle -------------------------------------------------------------------------------------
def _shuffle_lower(ctx, p, data):
    if data.ndim == 0:
        fail("shuffle needs an input with at least one dimension")
    return jax.random.permutation(ctx.rng(), jax.lax.stop_gradient(data), axis=0, independent=False)


register(Op("_shuffle", _shuffle_lower, aliases=("shuffle",), random=True, differentiable=False,
            family="random", doc="Randomly permute the input along its first axis."))
