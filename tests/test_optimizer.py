"""Optimizers against independent NumPy references of MXNet 1.9.1's update formulas."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import ConfigError, XGraphError

LR, WD, RESCALE, CLIP, LR_MULT = 0.05, 0.1, 0.5, 0.3, 0.5
STEPS = 4


def clip(x, c=CLIP):
    return np.clip(x, -c, c)


def data():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(2, 3))
    grads = [rng.normal(size=(2, 3)) * 1.5 for _ in range(STEPS)]
    return w0, grads


# ---- independent references (float64), lr already multiplied by LR_MULT -----
def ref_sgd(w, gs, lr, wd, momentum):
    mom = np.zeros_like(w)
    for g in gs:
        g = clip(RESCALE * g)
        if momentum:
            mom = momentum * mom - lr * (g + wd * w)
            w = w + mom
        else:
            w = w - lr * (g + wd * w)
    return w


def ref_nag(w, gs, lr, wd, momentum):
    mom = np.zeros_like(w)
    for g in gs:
        g = clip(RESCALE * g) + wd * w
        mom = momentum * mom - lr * g
        w = w + momentum * mom - lr * g
    return w


def ref_adam(w, gs, lr, wd, beta1=0.9, beta2=0.999, eps=1e-8):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(gs, 1):
        g = clip(RESCALE * g + wd * w)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(v) + eps)
    return w


def ref_adamw(w, gs, lr, wd, eta=0.7, beta1=0.9, beta2=0.999, eps=1e-8):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(gs, 1):
        g = clip(RESCALE * g)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        lr_t = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        w = w - eta * (lr_t * m / (np.sqrt(v) + eps) + wd * w)
    return w


def ref_adamax(w, gs, lr, wd, beta1=0.9, beta2=0.999):
    m, u = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(gs, 1):
        g = clip(RESCALE * g + wd * w)
        m = beta1 * m + (1 - beta1) * g
        u = np.maximum(beta2 * u, np.abs(g))
        w = w - lr / (1 - beta1 ** t) * m / u
    return w


def ref_nadam(w, gs, lr, wd, beta1=0.9, beta2=0.999, eps=1e-8, sd=0.004):
    m, v, msched = np.zeros_like(w), np.zeros_like(w), 1.0
    for t, g in enumerate(gs, 1):
        g = clip(RESCALE * g + wd * w)
        mt = beta1 * (1 - 0.5 * 0.96 ** (t * sd))
        mt1 = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * sd))
        msched *= mt
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        mbar = (1 - mt) * g / (1 - msched) + mt1 * m / (1 - msched * mt1)
        w = w - lr * mbar / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return w


def ref_rmsprop(w, gs, lr, wd, g1=0.9, g2=0.9, eps=1e-8, centered=False, clip_weights=None):
    n, s, d = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in gs:
        g = clip(RESCALE * g + wd * w)
        n = (1 - g1) * g * g + g1 * n
        if centered:
            s = (1 - g1) * g + g1 * s
            d = g2 * d - lr * g / np.sqrt(n - s * s + eps)
            w = w + d
        else:
            w = w - lr * g / np.sqrt(n + eps)
        if clip_weights:
            w = np.clip(w, -clip_weights, clip_weights)
    return w


def ref_adagrad(w, gs, lr, wd, eps=1e-7):
    h = np.zeros_like(w)
    for g in gs:
        g = clip(RESCALE * g)
        h = h + g * g
        w = w - lr * (g / np.sqrt(h + eps) + wd * w)
    return w


def ref_adadelta(w, gs, lr, wd, rho=0.9, eps=1e-5):
    ag, ad = np.zeros_like(w), np.zeros_like(w)
    for g in gs:
        g = clip(RESCALE * g)
        ag = rho * ag + (1 - rho) * g * g
        d = np.sqrt(ad + eps) / np.sqrt(ag + eps) * g
        ad = rho * ad + (1 - rho) * d * d
        w = w - (d + wd * w)
    return w


def ref_ftrl(w, gs, lr, wd, lamda1=0.01, beta=1.0):
    z, n = np.zeros_like(w), np.zeros_like(w)
    for g in gs:
        g = clip(RESCALE * g)
        z = z + g - (np.sqrt(n + g * g) - np.sqrt(n)) * w / lr
        n = n + g * g
        w = (np.sign(z) * lamda1 - z) / ((beta + np.sqrt(n)) / lr + wd) * (np.abs(z) > lamda1)
    return w


def ref_signum(w, gs, lr, wd, momentum=0.9, wd_lh=0.01):
    mom = np.zeros_like(w)
    for g in gs:
        mom = momentum * mom - (1 - momentum) * (wd * w + clip(RESCALE * g))
        w = (1 - lr * wd_lh) * w + lr * np.sign(mom)
    return w


def ref_lamb(w, gs, lr, wd, beta1=0.9, beta2=0.999, eps=1e-6, lower=None, upper=None):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(gs, 1):
        g = clip(RESCALE * g)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        r = (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps) + wd * w
        r1 = np.linalg.norm(w)
        if lower:
            r1 = max(r1, lower)
        if upper:
            r1 = min(r1, upper)
        r2 = np.linalg.norm(r)
        w = w - lr * (r1 / r2 if r1 > 0 and r2 > 0 else 1.0) * r
    return w


CASES = [
    ("sgd", {"momentum": 0.0}, lambda w, g, lr, wd: ref_sgd(w, g, lr, wd, 0.0)),
    ("sgd", {"momentum": 0.9}, lambda w, g, lr, wd: ref_sgd(w, g, lr, wd, 0.9)),
    ("nag", {"momentum": 0.9}, lambda w, g, lr, wd: ref_nag(w, g, lr, wd, 0.9)),
    ("adam", {"learning_rate": LR}, ref_adam),
    ("adamw", {"learning_rate": LR, "eta": 0.7}, ref_adamw),
    ("adamax", {"learning_rate": LR}, ref_adamax),
    ("nadam", {"learning_rate": LR}, ref_nadam),
    ("rmsprop", {"learning_rate": LR}, ref_rmsprop),
    ("rmsprop", {"learning_rate": LR, "centered": True, "clip_weights": 1.0},
     lambda w, g, lr, wd: ref_rmsprop(w, g, lr, wd, centered=True, clip_weights=1.0)),
    ("adagrad", {}, ref_adagrad),
    ("adadelta", {}, ref_adadelta),
    ("ftrl", {"learning_rate": LR}, ref_ftrl),
    ("signum", {"wd_lh": 0.01}, ref_signum),
    ("lamb", {"learning_rate": LR}, ref_lamb),
    ("lamb", {"learning_rate": LR, "lower_bound": 3.0, "upper_bound": 3.5},
     lambda w, g, lr, wd: ref_lamb(w, g, lr, wd, lower=3.0, upper=3.5)),
]


def make(name, hp):
    hp = dict(hp)
    hp.setdefault("learning_rate", LR)
    return mx.optimizer.create(name, wd=WD, rescale_grad=RESCALE, clip_gradient=CLIP,
                               param_idx2name={0: "p_weight"}, **hp)


@pytest.mark.parametrize("name,hp,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_stateful_update_matches_reference(name, hp, ref):
    w0, grads = data()
    opt = make(name, hp)
    opt.set_lr_mult({"p_weight": LR_MULT})
    w = mx.nd.array(w0.astype(np.float32))
    state = opt.create_state(0, w)
    for g in grads:
        opt.update(0, w, mx.nd.array(g.astype(np.float32)), state)
    expected = ref(w0, grads, LR * LR_MULT, WD)
    np.testing.assert_allclose(w.asnumpy(), expected, rtol=2e-4, atol=2e-5)
    assert opt.num_update == STEPS and opt._index_update_count[0] == STEPS


@pytest.mark.parametrize("name,hp,ref", CASES[1:8:3], ids=["sgd_mom", "adamw", "rmsprop"])
def test_pure_update_under_jit_with_scheduler(name, hp, ref):
    """step_param inside one jitted step: lr from the schedule at the traced counter, times lr_mult."""
    w0, grads = data()
    hp = {**hp, "learning_rate": LR}  # equal to the schedule's base_lr: no override
    sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=LR)
    opt = mx.optimizer.create(name, wd=WD, rescale_grad=RESCALE, clip_gradient=CLIP, lr_scheduler=sched,
                              param_idx2name={0: "p_weight"}, **hp)
    opt.set_lr_mult({"p_weight": LR_MULT})
    step = jax.jit(lambda n, w, g, s: opt.step_param(0, n, n, w, g, s))
    w = jnp.asarray(w0, jnp.float32)
    state = opt.init_state(w)
    for n, g in enumerate(grads, 1):
        w, state = step(jnp.int32(n), w, jnp.asarray(g, jnp.float32), state)
    assert step._cache_size() == 1
    # reference: run the formula step by step with the scheduled lr
    # the formula again, step by step, with the scheduled lr
    if name == "sgd":
        mom, expected = np.zeros_like(w0), w0
        for n, g in enumerate(grads, 1):
            lr = sched(n) * LR_MULT
            mom = 0.9 * mom - lr * (clip(RESCALE * g) + WD * expected)
            expected = expected + mom
    elif name == "adamw":
        m, v, expected = np.zeros_like(w0), np.zeros_like(w0), w0
        for t, g in enumerate(grads, 1):
            lr = sched(t) * LR_MULT
            g = clip(RESCALE * g)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            expected = expected - 0.7 * (lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-8)
                                         + WD * expected)
    else:
        n_acc, expected = np.zeros_like(w0), w0
        for t, g in enumerate(grads, 1):
            lr = sched(t) * LR_MULT
            g = clip(RESCALE * g + WD * expected)
            n_acc = 0.1 * g * g + 0.9 * n_acc
            expected = expected - lr * g / np.sqrt(n_acc + 1e-8)
    np.testing.assert_allclose(np.asarray(w), expected, rtol=2e-4, atol=2e-5)


def test_wd_mult_defaults_and_symbol_attributes():
    data_ = mx.sym.var("data")
    w = mx.sym.var("fc_weight", lr_mult=0.1, wd_mult=2.0)
    net = mx.sym.FullyConnected(data_, weight=w, num_hidden=2, name="fc")
    opt = mx.optimizer.SGD(learning_rate=1.0, wd=0.5, sym=net,
                           param_idx2name={0: "fc_weight", 1: "fc_bias", 2: "bn_gamma"})
    assert opt.lr_mult_of(0) == 0.1 and opt.wd_mult_of(0) == 2.0
    assert opt.wd_mult_of(1) == 0.0 and opt.wd_mult_of(2) == 1.0
    assert opt._get_lr(0) == pytest.approx(0.1) and opt._get_wd(1) == 0.0
    opt.set_wd_mult({"fc_bias": 0.3})
    assert opt.wd_mult_of(1) == 0.3


def test_multi_precision_float16_keeps_float32_master():
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, multi_precision=True)
    w = mx.nd.array(np.full((3,), 1.0, np.float16), dtype="float16")
    state = opt.create_state_multi_precision(0, w)
    master, mom = state
    assert master.dtype == np.float32 and mom.dtype == np.float32
    g = mx.nd.array(np.full((3,), 1e-4, np.float16), dtype="float16")
    for _ in range(3):
        opt.update_multi_precision(0, w, g, state)
    assert w.dtype == np.float16
    np.testing.assert_allclose(state[0].asnumpy(), ref_sgd_plain(), rtol=1e-5)
    np.testing.assert_allclose(w.asnumpy().astype(np.float32), state[0].asnumpy(), rtol=1e-3)


def ref_sgd_plain():
    w, mom = np.ones(3), np.zeros(3)
    for _ in range(3):
        mom = 0.9 * mom - 0.1 * 1e-4
        w = w + mom
    return w


def test_updater_states_roundtrip_and_equivalence():
    w0, grads = data()
    up = mx.optimizer.get_updater(mx.optimizer.Adam(learning_rate=0.01))
    w = mx.nd.array(w0.astype(np.float32))
    for g in grads[:2]:
        up(0, mx.nd.array(g.astype(np.float32)), w)
    blob = up.get_states(dump_optimizer=True)
    up2 = mx.optimizer.get_updater(mx.optimizer.Adam(learning_rate=0.01))
    up2.set_states(blob)
    assert up2.optimizer._index_update_count == {0: 2}
    w2 = mx.nd.array(w.asnumpy())
    for g in grads[2:]:
        up(0, mx.nd.array(g.astype(np.float32)), w)
        up2(0, mx.nd.array(g.astype(np.float32)), w2)
    np.testing.assert_allclose(w.asnumpy(), w2.asnumpy(), rtol=1e-6)
    with pytest.raises(ConfigError):
        up2.set_states(b"not an archive")


def test_learning_rate_property_and_scheduler_override():
    sched = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    with pytest.warns(UserWarning):
        opt = mx.optimizer.SGD(learning_rate=0.2, lr_scheduler=sched)
    assert sched.base_lr == 0.2
    opt.num_update = 2
    assert opt.learning_rate == pytest.approx(0.1)
    with pytest.raises(ConfigError):
        opt.set_learning_rate(0.3)


@pytest.mark.parametrize("call", [
    lambda: mx.optimizer.create("nosuch"),
    lambda: mx.optimizer.create("sgd", momentun=0.9),
    lambda: mx.optimizer.SGD(momentum=-0.5),
    lambda: mx.optimizer.Adam(beta1=1.0),
    lambda: mx.optimizer.SGD(learning_rate=-1.0),
    lambda: mx.optimizer.SGD(clip_gradient="big"),
    lambda: mx.optimizer.SGD(lr_scheduler=0.5),
    lambda: mx.optimizer.RMSProp(gamma1=float("nan")),
])
def test_bad_configuration_raises_config_error(call):
    with pytest.raises(XGraphError) as e:
        call()
    assert isinstance(e.value, ConfigError) and str(e.value)


def test_register_custom_optimizer():
    @mx.optimizer.register
    class HalfSGD(mx.optimizer.SGD):
        def _rule(self, t, lr, wd, w, g, state):
            return w - 0.5 * lr * self._grad(g), state

    opt = mx.optimizer.create("halfsgd", learning_rate=1.0)
    w = mx.nd.ones((2,))
    opt.update(0, w, mx.nd.ones((2,)), opt.create_state(0, w))
    np.testing.assert_allclose(w.asnumpy(), [0.5, 0.5])
