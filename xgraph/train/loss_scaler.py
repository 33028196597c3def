"""Dynamic loss scaling for float16 training, as pure JAX functions a fused step can call.

float16 gradients underflow: the loss is multiplied by a large ``scale``
before differentiation and the gradients divided by it afterwards.  When a
gradient is inf or NaN the step is skipped and the scale divided by
``factor``; after ``growth_interval`` good steps in a row it is multiplied
by ``factor`` (at most ``max_scale``).  MXNet's AMP ``LossScaler`` defaults:
initial scale 2**16, interval 2000, factor 2.

Everything here is a pure function of arrays (no Python branching on
values), so it runs inside ``jax.jit``:

    >>> import jax.numpy as jnp
    >>> ls = DynamicLossScaler(init_scale=8.0, growth_interval=2)
    >>> st = ls.init()
    >>> grads, finite, st = ls.unscale_and_update(st, {'w': jnp.array([8.0, 16.0])})
    >>> grads['w'].tolist(), bool(finite), float(st.scale)
    ([1.0, 2.0], True, 8.0)
    >>> _, finite, st = ls.unscale_and_update(st, {'w': jnp.array([jnp.inf])})
    >>> bool(finite), float(st.scale)
    (False, 4.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class LossScalerState(NamedTuple):
    """The scaler's state: the current scale (float32) and the count of good steps since the last change."""

    scale: jax.Array
    good_steps: jax.Array


def all_finite(tree: Any) -> jax.Array:
    """True when every floating-point leaf of ``tree`` is finite (a scalar bool array).

        >>> bool(all_finite([jnp.ones(2), jnp.array([jnp.nan])]))
        False
    """
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def select_tree(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Leafwise ``where(pred, on_true, on_false)``: apply an update only when ``pred`` (skip step).

        >>> select_tree(jnp.array(False), {'w': jnp.ones(1)}, {'w': jnp.zeros(1)})['w'].tolist()
        [0.0]
    """
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


@dataclass(frozen=True)
class DynamicLossScaler:
    """Configuration of dynamic loss scaling; methods are pure functions of a :class:`LossScalerState`.

    A training step: ``loss * state.scale`` is differentiated; then
    ``grads, finite, state = scaler.unscale_and_update(state, grads)``; the
    optimizer update is applied with :func:`select_tree` only where ``finite``.
    """

    init_scale: float = 2.0 ** 16
    growth_interval: int = 2000
    factor: float = 2.0
    max_scale: float = 2.0 ** 24
    min_scale: float = 1.0

    def init(self) -> LossScalerState:
        """The initial state."""
        return LossScalerState(jnp.asarray(self.init_scale, jnp.float32), jnp.asarray(0, jnp.int32))

    def scale_loss(self, state: LossScalerState, loss: Any) -> Any:
        """``loss * scale`` (in the loss's dtype)."""
        return jax.tree_util.tree_map(lambda x: x * state.scale.astype(x.dtype), loss)

    def unscale(self, state: LossScalerState, grads: Any) -> Any:
        """Gradients divided by the scale, computed in float32 and returned in each gradient's dtype."""
        inv = 1.0 / state.scale
        return jax.tree_util.tree_map(lambda g: (g.astype(jnp.float32) * inv).astype(g.dtype), grads)

    def update(self, state: LossScalerState, finite: jax.Array) -> LossScalerState:
        """The next state: back off on overflow, grow after ``growth_interval`` good steps."""
        good = state.good_steps + 1
        grow = good >= self.growth_interval
        grown = jnp.minimum(state.scale * self.factor, self.max_scale)
        ok_scale = jnp.where(grow, grown, state.scale)
        ok_good = jnp.where(grow, 0, good)
        bad_scale = jnp.maximum(state.scale / self.factor, self.min_scale)
        return LossScalerState(jnp.where(finite, ok_scale, bad_scale).astype(jnp.float32),
                               jnp.where(finite, ok_good, 0).astype(jnp.int32))

    def unscale_and_update(self, state: LossScalerState, grads: Any) -> tuple[Any, jax.Array, LossScalerState]:
        """``(unscaled grads, all finite?, next state)``; skip the optimizer update when not finite."""
        finite = all_finite(grads)
        return self.unscale(state, grads), finite, self.update(state, finite)


__all__ = ["DynamicLossScaler", "LossScalerState", "all_finite", "select_tree"]
