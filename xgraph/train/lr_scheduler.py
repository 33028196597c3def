"""Learning-rate schedules with MXNet 1.9.1's names, arguments and formulas.

Each schedule is written once, as a formula over the update count ``n`` and an
array namespace: :meth:`LRScheduler.__call__` evaluates it in float64 NumPy
(MXNet's ``sched(num_update)``), :meth:`LRScheduler.lr_at` evaluates it with
``jax.numpy`` on a traced counter, so a compiled training step reads the rate
from its step counter without recompiling.

    >>> from xgraph.train.lr_scheduler import FactorScheduler
    >>> s = FactorScheduler(step=10, factor=0.5, base_lr=1.0)
    >>> s(10), s(11), float(s.lr_at(21))
    (1.0, 0.5, 0.25)

MXNet's schedulers mutate themselves as they are called (``FactorScheduler``
keeps a running ``count``); for a non-decreasing sequence of calls, which is
how optimizers call them, the stateless formulas here give the same values.
One documented difference: MXNet's ``PolyScheduler``/``CosineScheduler`` return
their *initial* rate when first called beyond ``max_update``; here the rate at
and beyond ``max_update`` is always ``final_lr``.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError

__all__ = ["LRScheduler", "FactorScheduler", "MultiFactorScheduler", "PolyScheduler", "CosineScheduler"]


def _number(name: str, value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{owner}: {name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def _int(name: str, value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{owner}: {name} must be an integer, got {value!r}")
    return int(value)


class LRScheduler:
    """Base class: a learning rate as a function of the number of updates, with warmup.

    ``warmup_steps`` updates ramp from ``warmup_begin_lr`` to ``base_lr``
    (``warmup_mode='linear'``) or stay at ``warmup_begin_lr`` (``'constant'``).
    As in MXNet, the warmup target is ``base_lr`` as given to the constructor
    (an optimizer that later overwrites ``base_lr`` does not move it).

        >>> s = LRScheduler(base_lr=0.1, warmup_steps=4, warmup_begin_lr=0.0)
        >>> [round(s.warmup_lr(i), 3) for i in range(4)]
        [0.0, 0.025, 0.05, 0.075]
    """

    def __init__(self, base_lr: float = 0.01, warmup_steps: int = 0, warmup_begin_lr: float = 0,
                 warmup_mode: str = "linear"):
        owner = type(self).__name__
        self.base_lr = _number("base_lr", base_lr, owner)
        self.warmup_steps = _int("warmup_steps", warmup_steps, owner)
        self.warmup_final_lr = self.base_lr
        self.warmup_begin_lr = _number("warmup_begin_lr", warmup_begin_lr, owner)
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ConfigError(f"{owner}: base_lr ({self.base_lr}) has to be higher than "
                              f"warmup_begin_lr ({self.warmup_begin_lr})")
        if self.warmup_steps < 0:
            raise ConfigError(f"{owner}: warmup_steps has to be positive or 0, got {self.warmup_steps}")
        if warmup_mode not in ("linear", "constant"):
            raise ConfigError(f"{owner}: warmup_mode must be 'linear' or 'constant', got {warmup_mode!r}")
        self.warmup_mode = warmup_mode

    # -- the formula, written once for numpy and jax.numpy ---------------------
    def _warmup(self, n: Any, xp: Any) -> Any:
        if self.warmup_mode == "constant":
            return self.warmup_begin_lr + 0.0 * n
        increase = (self.warmup_final_lr - self.warmup_begin_lr) * n / float(max(self.warmup_steps, 1))
        return self.warmup_begin_lr + increase

    def _main(self, n: Any, xp: Any) -> Any:
        """The schedule after warmup, as a function of the update count ``n`` (float array)."""
        raise NotImplementedError(f"{type(self).__name__} must define _main")

    def _formula(self, n: Any, xp: Any) -> Any:
        main = self._main(n, xp)
        if self.warmup_steps <= 0:
            return main
        return xp.where(n < self.warmup_steps, self._warmup(n, xp), main)

    # -- public --------------------------------------------------------------
    def warmup_lr(self, num_update: int) -> float:
        """MXNet's ``get_warmup_lr``: the warmup rate at ``num_update`` (< warmup_steps)."""
        return float(self._warmup(np.float64(num_update), np))

    get_warmup_lr = warmup_lr

    def __call__(self, num_update: int) -> float:
        """The learning rate after ``num_update`` updates, as MXNet's scheduler returns it."""
        return float(self._formula(np.float64(num_update), np))

    def lr_at(self, step: Any) -> Any:
        """The learning rate at a (traced) update counter, as a float32 jax scalar.

            >>> import jax
            >>> s = PolyScheduler(max_update=10, base_lr=1.0, pwr=1)
            >>> float(jax.jit(s.lr_at)(5))
            0.5
        """
        n = jnp.asarray(step).astype(jnp.float32)
        return jnp.asarray(self._formula(n, jnp), dtype=jnp.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_lr={self.base_lr})"


class FactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` every ``step`` updates, never below ``stop_factor_lr``.

    ``lr(n) = max(base_lr * factor ** floor((n - 1) / step), stop_factor_lr)`` for ``n >= 1``.

        >>> s = FactorScheduler(step=2, factor=0.1, base_lr=1.0, stop_factor_lr=0.05)
        >>> [s(n) for n in (1, 2, 3, 5)]
        [1.0, 1.0, 0.1, 0.05]
    """

    def __init__(self, step: int, factor: float = 1, stop_factor_lr: float = 1e-8, base_lr: float = 0.01,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0, warmup_mode: str = "linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.step = _int("step", step, "FactorScheduler")
        if self.step < 1:
            raise ConfigError(f"FactorScheduler: schedule step must be greater or equal than 1 round, got {step}")
        self.factor = _number("factor", factor, "FactorScheduler")
        if self.factor > 1.0:
            raise ConfigError(f"FactorScheduler: factor must be no more than 1 to make lr reduce, got {factor}")
        self.stop_factor_lr = _number("stop_factor_lr", stop_factor_lr, "FactorScheduler")

    def _main(self, n: Any, xp: Any) -> Any:
        k = xp.maximum(xp.floor((n - 1) / self.step), 0.0)
        return xp.maximum(self.base_lr * xp.power(self.factor, k), self.stop_factor_lr)


class MultiFactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` once the update count passes each of the ``step`` milestones.

    ``lr(n) = base_lr * factor ** (number of milestones s with n > s)``.

        >>> s = MultiFactorScheduler(step=[2, 4], factor=0.5, base_lr=1.0)
        >>> [s(n) for n in (2, 3, 4, 5)]
        [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, step: Sequence[int], factor: float = 1, base_lr: float = 0.01, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0, warmup_mode: str = "linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(step, (list, tuple)) or len(step) < 1:
            raise ConfigError(f"MultiFactorScheduler: step must be a non-empty list of integers, got {step!r}")
        steps = [_int("step", s, "MultiFactorScheduler") for s in step]
        for i, s in enumerate(steps):
            if i and s <= steps[i - 1]:
                raise ConfigError(f"MultiFactorScheduler: schedule step must be an increasing integer list, got {steps}")
            if s < 1:
                raise ConfigError(f"MultiFactorScheduler: schedule step must be greater or equal than 1 round, got {s}")
        self.step = steps
        self.factor = _number("factor", factor, "MultiFactorScheduler")
        if self.factor > 1.0:
            raise ConfigError(f"MultiFactorScheduler: factor must be no more than 1 to make lr reduce, got {factor}")

    def _main(self, n: Any, xp: Any) -> Any:
        k = sum(xp.where(n > s, 1.0, 0.0) for s in self.step)
        return self.base_lr * xp.power(self.factor, k)


class _ToMaxUpdate(LRScheduler):
    """Shared part of the schedules that reach ``final_lr`` at ``max_update``."""

    def __init__(self, max_update: int, base_lr: float, final_lr: float, warmup_steps: int,
                 warmup_begin_lr: float, warmup_mode: str):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        owner = type(self).__name__
        self.max_update = _int("max_update", max_update, owner)
        if self.max_update < 1:
            raise ConfigError(f"{owner}: maximum number of updates must be strictly positive, got {max_update}")
        self.base_lr_orig = self.base_lr
        self.final_lr = _number("final_lr", final_lr, owner)
        self.max_steps = self.max_update - self.warmup_steps
        if self.max_steps < 1:
            raise ConfigError(f"{owner}: max_update ({self.max_update}) must exceed warmup_steps ({self.warmup_steps})")

    def _progress(self, n: Any, xp: Any) -> Any:
        """Fraction of the post-warmup schedule done, in [0, 1]."""
        n = xp.clip(n, self.warmup_steps, self.max_update)
        return (n - self.warmup_steps) / float(self.max_steps)


class PolyScheduler(_ToMaxUpdate):
    """Polynomial decay from ``base_lr`` to ``final_lr`` over ``max_update`` updates.

    ``lr(n) = final_lr + (base_lr - final_lr) * (1 - (n - warmup_steps) / (max_update - warmup_steps)) ** pwr``.

        >>> s = PolyScheduler(max_update=4, base_lr=1.0, pwr=2)
        >>> [s(n) for n in (0, 2, 4, 9)]
        [1.0, 0.25, 0.0, 0.0]
    """

    def __init__(self, max_update: int, base_lr: float = 0.01, pwr: float = 2, final_lr: float = 0,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0, warmup_mode: str = "linear"):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.power = _number("pwr", pwr, "PolyScheduler")

    def _main(self, n: Any, xp: Any) -> Any:
        return self.final_lr + (self.base_lr_orig - self.final_lr) * xp.power(1.0 - self._progress(n, xp), self.power)


class CosineScheduler(_ToMaxUpdate):
    """Cosine decay from ``base_lr`` to ``final_lr`` over ``max_update`` updates.

    ``lr(n) = final_lr + (base_lr - final_lr) * (1 + cos(pi * (n - warmup_steps) / max_steps)) / 2``.

        >>> s = CosineScheduler(max_update=10, base_lr=1.0)
        >>> s(0), round(s(5), 6), s(10)
        (1.0, 0.5, 0.0)
    """

    def __init__(self, max_update: int, base_lr: float = 0.01, final_lr: float = 0, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0, warmup_mode: str = "linear"):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)

    def _main(self, n: Any, xp: Any) -> Any:
        return self.final_lr + (self.base_lr_orig - self.final_lr) * (1 + xp.cos(math.pi * self._progress(n, xp))) / 2
