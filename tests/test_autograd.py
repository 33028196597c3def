"""mx.autograd: recorded imperative ops differentiated with jax.vjp, checked against closed forms and numerically."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from xgraph import autograd as ag


def _numeric_grad(f, x, eps=1e-2):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def test_operators_arithmetic_and_indexing_match_numeric_gradients():
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 4))
    w0 = rng.standard_normal((2, 4))

    def f_nd(x, w):
        h = mx.nd.FullyConnected(x, w, num_hidden=2, no_bias=True)
        return (mx.nd.tanh(h) * 3 - abs(x[:, 1:3]).sum() / 2 + (x.reshape((4, 3)) ** 2).mean()).sum()

    x, w = mx.nd.array(x0), mx.nd.array(w0)
    x.attach_grad()
    w.attach_grad()
    with ag.record():
        y = f_nd(x, w)
    y.backward()
    fx = lambda v: float(f_nd(mx.nd.array(v), mx.nd.array(w0)).asscalar())
    fw = lambda v: float(f_nd(mx.nd.array(x0), mx.nd.array(v)).asscalar())
    np.testing.assert_allclose(x.grad.asnumpy(), _numeric_grad(fx, x0), rtol=5e-3, atol=5e-3)
    np.testing.assert_allclose(w.grad.asnumpy(), _numeric_grad(fw, w0), rtol=5e-3, atol=5e-3)


def test_grad_req_add_head_grads_and_autograd_grad():
    x = mx.nd.array([1.0, -2.0])
    x.attach_grad(grad_req="add")
    for _ in range(2):
        with ag.record():
            y = x * x
        ag.backward([y], [mx.nd.array([1.0, 10.0])])
    assert x.grad.asnumpy().tolist() == [4.0, -80.0]          # 2 * (2x * head), accumulated
    with ag.record():
        z = x * x * x
    (g,) = ag.grad(z, [x], head_grads=mx.nd.ones((2,)))
    assert g.asnumpy().tolist() == [3.0, 12.0] and x.grad.asnumpy().tolist() == [4.0, -80.0]


def test_modes_pause_and_training_batchnorm():
    assert not ag.is_recording() and not ag.is_training()
    with ag.record():
        assert ag.is_recording() and ag.is_training()
        with ag.pause():
            assert not ag.is_recording() and not ag.is_training()
        with ag.predict_mode():
            assert not ag.is_training()
    assert not ag.is_recording()
    # in training mode BatchNorm normalises with the batch statistics and updates the moving mean
    data = mx.nd.array(np.arange(8, dtype=np.float32).reshape(4, 2))
    gamma, beta = mx.nd.ones((2,)), mx.nd.zeros((2,))
    mean, var = mx.nd.zeros((2,)), mx.nd.ones((2,))
    data.attach_grad()
    with ag.record():
        out = mx.nd.BatchNorm(data, gamma, beta, mean, var, fix_gamma=False, momentum=0.5, eps=1e-5)
    np.testing.assert_allclose(out.asnumpy().mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(mean.asnumpy(), [1.5, 2.0])      # 0.5 * 0 + 0.5 * batch mean (3, 4)
    out.backward(mx.nd.array(np.eye(4, 2, dtype=np.float32)))
    assert np.isfinite(data.grad.asnumpy()).all() and abs(data.grad.asnumpy().sum()) < 1e-4


def test_errors_are_clear():
    x = mx.nd.ones((2,))
    y = x * 2                     # not recorded, x not marked
    with pytest.raises(mx.BindError, match="not computed inside autograd.record"):
        y.backward()
    x.attach_grad()
    with ag.record():
        y = x * 2
    with pytest.raises(mx.BindError, match="head gradient of shape"):
        y.backward(mx.nd.ones((3,)))
    with pytest.raises(mx.ConfigError, match="grad_req"):
        ag.mark_variables([x], [mx.nd.zeros((2,))], "sometimes")
    with pytest.raises(mx.errors.UnsupportedFeatureError, match="sparse"):
        x.attach_grad(stype="row_sparse")


def test_backward_releases_only_the_history_of_its_heads():
    """As MXNet: a backward frees its heads' history only; unrelated marked arrays keep their gradients."""
    x, w = mx.nd.array([1.0, 2.0]), mx.nd.array([3.0, 4.0])
    x.attach_grad()
    w.attach_grad()
    w.grad[:] = 5
    with ag.record():
        y = x * 2
        z = w * 3
        u = (y * w).sum()
    y.backward()
    assert x.grad.asnumpy().tolist() == [2.0, 2.0] and w.grad.asnumpy().tolist() == [5.0, 5.0]
    z.backward()                      # recorded before y.backward, and independent of it
    assert w.grad.asnumpy().tolist() == [3.0, 3.0]
    with pytest.raises(mx.BindError, match="head 0 was released by an earlier backward"):
        y.backward()
    with pytest.raises(mx.BindError, match="history of an input was released"):
        u.backward()                  # depends on y, whose history is gone


def test_tape_drops_ops_of_dead_arrays():
    x = mx.nd.ones((2,))
    x.attach_grad()
    with ag.record():
        for _ in range(300):
            _ = x * 2                 # each result dies at once
        y = x * 3
    assert len(ag._tape().entries) < 200
    y.backward()
    assert x.grad.asnumpy().tolist() == [3.0, 3.0]
