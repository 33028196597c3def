"""Learning-rate schedules against MXNet's formulas, and lr_at under jax.jit equal to __call__."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import ConfigError

STEPS = list(range(0, 60))


def mx_factor_sequential(step, factor, stop, base, n_max):
    """MXNet's stateful FactorScheduler, called in order 0..n_max (its own loop, re-implemented)."""
    count, lr, out = 0, base, []
    for n in range(n_max + 1):
        while n > count + step:
            count += step
            lr *= factor
            if lr < stop:
                lr = stop
        out.append(lr)
    return out


def jitted_values(s, steps):
    f = jax.jit(s.lr_at)
    vals = [float(f(jnp.int32(n))) for n in steps]
    assert f._cache_size() == 1
    return vals


def test_factor_matches_stateful_mxnet_loop_and_jit():
    s = mx.lr_scheduler.FactorScheduler(step=7, factor=0.6, stop_factor_lr=0.01, base_lr=0.3)
    expected = mx_factor_sequential(7, 0.6, 0.01, 0.3, STEPS[-1])
    np.testing.assert_allclose([s(n) for n in STEPS], expected, rtol=1e-12)
    np.testing.assert_allclose(jitted_values(s, STEPS), expected, rtol=1e-6)


def test_multifactor():
    s = mx.lr_scheduler.MultiFactorScheduler(step=[5, 12, 30], factor=0.1, base_lr=1.0)
    expected = [1.0 * 0.1 ** sum(n > m for m in (5, 12, 30)) for n in STEPS]
    np.testing.assert_allclose([s(n) for n in STEPS], expected, rtol=1e-12)
    np.testing.assert_allclose(jitted_values(s, STEPS), expected, rtol=1e-6)


@pytest.mark.parametrize("mode", ["linear", "constant"])
def test_poly_with_warmup(mode):
    s = mx.lr_scheduler.PolyScheduler(max_update=40, base_lr=0.5, pwr=2, final_lr=0.01, warmup_steps=8,
                                      warmup_begin_lr=0.1, warmup_mode=mode)

    def f(n):
        if n < 8:
            return 0.1 + (0.5 - 0.1) * n / 8 if mode == "linear" else 0.1
        n = min(n, 40)
        return 0.01 + (0.5 - 0.01) * (1 - (n - 8) / 32) ** 2
    expected = [f(n) for n in STEPS]
    np.testing.assert_allclose([s(n) for n in STEPS], expected, rtol=1e-12)
    np.testing.assert_allclose(jitted_values(s, STEPS), expected, rtol=2e-6, atol=1e-7)


def test_cosine_with_warmup():
    s = mx.lr_scheduler.CosineScheduler(max_update=50, base_lr=0.2, final_lr=0.02, warmup_steps=5,
                                        warmup_begin_lr=0.0)

    def f(n):
        if n < 5:
            return 0.2 * n / 5
        n = min(n, 50)
        return 0.02 + (0.2 - 0.02) * (1 + math.cos(math.pi * (n - 5) / 45)) / 2
    expected = [f(n) for n in STEPS]
    np.testing.assert_allclose([s(n) for n in STEPS], expected, rtol=1e-12)
    np.testing.assert_allclose(jitted_values(s, STEPS), expected, rtol=2e-6, atol=1e-7)
    assert s.get_warmup_lr(2) == pytest.approx(0.08)


def test_factor_warmup_then_decay():
    s = mx.lr_scheduler.FactorScheduler(step=10, factor=0.5, base_lr=1.0, warmup_steps=4, warmup_begin_lr=0.2)
    assert [s(n) for n in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert s(10) == 1.0 and s(11) == 0.5 and s(21) == 0.25


@pytest.mark.parametrize("make", [
    lambda: mx.lr_scheduler.FactorScheduler(step=0),
    lambda: mx.lr_scheduler.FactorScheduler(step=2, factor=1.5),
    lambda: mx.lr_scheduler.MultiFactorScheduler(step=[5, 3]),
    lambda: mx.lr_scheduler.MultiFactorScheduler(step=[]),
    lambda: mx.lr_scheduler.PolyScheduler(max_update=0),
    lambda: mx.lr_scheduler.CosineScheduler(max_update=10, warmup_steps=10),
    lambda: mx.lr_scheduler.CosineScheduler(max_update=10, base_lr=0.1, warmup_begin_lr=0.5),
    lambda: mx.lr_scheduler.PolyScheduler(max_update=10, warmup_mode="cubic"),
    lambda: mx.lr_scheduler.FactorScheduler(step=2.5),
])
def test_bad_arguments(make):
    with pytest.raises(ConfigError):
        make()
