"""GroupNorm, InstanceNorm, L2Normalization and LRN against numpy references and finite
differences (float64)."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_numeric_gradient, run
from xgraph.errors import XGraphError

RNG = np.random.default_rng(5)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def np_group_norm(x, gamma, beta, groups, eps):
    n, c = x.shape[:2]
    xg = x.astype(np.float64).reshape(n, groups, -1)
    mean, var = xg.mean(-1, keepdims=True), xg.var(-1, keepdims=True)
    normed = (xg - mean) / np.sqrt(var + eps)
    if gamma.shape == (groups,):
        return (normed * gamma[None, :, None] + beta[None, :, None]).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return normed.reshape(x.shape) * gamma.reshape(shape) + beta.reshape(shape)


def test_group_norm_per_group_params():
    x, g, b = randn(2, 6, 3, 2), randn(3), randn(3)
    sym = mx.sym.GroupNorm(mx.sym.var("x"), num_groups=3, eps=1e-4, output_mean_var=True, name="gn")
    args, outs, _ = sym.infer_shape(x=x.shape)
    assert args == [(2, 6, 3, 2), (3,), (3,)] and outs == [(2, 6, 3, 2), (2, 3), (2, 3)]
    out, mean, std = run(sym, x=x, gn_gamma=g, gn_beta=b)
    np.testing.assert_allclose(out, np_group_norm(x, g, b, 3, 1e-4), rtol=1e-5, atol=1e-5)
    xg = x.astype(np.float64).reshape(2, 3, -1)
    np.testing.assert_allclose(mean, xg.mean(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, np.sqrt(xg.var(-1) + 1e-4), rtol=1e-5)
    assert mx.ops.registry.get("GroupNorm").with_defaults({})["eps"] == 1e-5


def test_group_norm_per_channel_params_and_gradient():
    x, g, b = randn(2, 4, 3), randn(4), randn(4)
    sym = mx.sym.GroupNorm(mx.sym.var("x"), mx.sym.var("g"), mx.sym.var("b"), num_groups=2)
    (out,) = run(sym, x=x, g=g, b=b)
    np.testing.assert_allclose(out, np_group_norm(x, g, b, 2, 1e-5), rtol=1e-5, atol=1e-5)
    check_numeric_gradient(sym, {"x": x[:1], "g": g, "b": b}, ["x", "g", "b"], rtol=1e-4)
    with pytest.raises(XGraphError, match="num_groups"):
        mx.sym.GroupNorm(mx.sym.var("x"), num_groups=3).infer_shape(x=(1, 4, 2))


def test_instance_norm():
    x, g, b = randn(2, 3, 4, 2), randn(3), randn(3)
    sym = mx.sym.InstanceNorm(mx.sym.var("x"), name="inorm")
    assert sym.list_arguments() == ["x", "inorm_gamma", "inorm_beta"] and sym.list_outputs() == ["inorm_output"]
    (out,) = run(sym, x=x, inorm_gamma=g, inorm_beta=b)
    xf = x.astype(np.float64)
    mean, var = xf.mean((2, 3), keepdims=True), xf.var((2, 3), keepdims=True)
    ref = (xf - mean) / np.sqrt(var + 1e-3) * g[None, :, None, None] + b[None, :, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    check_numeric_gradient(sym, {"x": x[:1, :2, :2], "inorm_gamma": g[:2], "inorm_beta": b[:2]},
                           ["x", "inorm_gamma", "inorm_beta"], rtol=1e-4)


@pytest.mark.parametrize("mode,axes", [("instance", (1, 2, 3)), ("channel", (1,)), ("spatial", (2, 3))])
def test_l2_normalization(mode, axes):
    x = randn(2, 3, 2, 2)
    sym = mx.sym.L2Normalization(mx.sym.var("x"), mode=mode, eps=1e-6)
    (out,) = run(sym, x=x)
    xf = x.astype(np.float64)
    np.testing.assert_allclose(out, xf / np.sqrt((xf ** 2).sum(axes, keepdims=True) + 1e-6), rtol=1e-5, atol=1e-6)
    check_numeric_gradient(sym, {"x": x[:1, :2]}, ["x"], rtol=1e-4)


def test_l2_normalization_defaults():
    p = mx.ops.registry.get("L2Normalization").with_defaults({})
    assert (p["mode"], p["eps"]) == ("instance", 1e-10)


def np_lrn(x, alpha, beta, knorm, n):
    xf = x.astype(np.float64)
    c = x.shape[1]
    out = np.empty_like(xf)
    lo = (n - 1) // 2
    for ch in range(c):
        window = xf[:, max(ch - lo, 0):min(ch - lo + n, c)]
        out[:, ch] = xf[:, ch] / (knorm + alpha / n * (window ** 2).sum(1)) ** beta
    return out


@pytest.mark.parametrize("nsize", [3, 5])
def test_lrn(nsize):
    x = randn(2, 6, 3, 3)
    sym = mx.sym.LRN(mx.sym.var("x"), nsize=nsize, alpha=0.01, beta=0.6, knorm=1.5)
    (out,) = run(sym, x=x)
    np.testing.assert_allclose(out, np_lrn(x, 0.01, 0.6, 1.5, nsize), rtol=1e-5, atol=1e-6)
    p = mx.ops.registry.get("LRN").with_defaults({"nsize": 3})
    assert (p["alpha"], p["beta"], p["knorm"]) == (1e-4, 0.75, 2.0)
    check_numeric_gradient(sym, {"x": x[:1, :4, :2, :2]}, ["x"], rtol=1e-4)


def test_sync_batchnorm_is_batchnorm_v1_with_the_variance_output():
    rng = np.random.default_rng(3)
    x = mx.nd.array(rng.random((4, 3, 5), dtype=np.float32))
    gamma, beta = mx.nd.array(rng.random(3, dtype=np.float32)), mx.nd.array(rng.random(3, dtype=np.float32))
    mm, mv = mx.nd.zeros(3), mx.nd.ones(3)
    x.attach_grad()
    with mx.autograd.record():
        out, mean, var = mx.nd.contrib.SyncBatchNorm(x, gamma, beta, mm, mv, output_mean_var=True, fix_gamma=False,
                                                     eps=1e-5, key="bn0", ndev=1)
    out.backward(mx.nd.ones(out.shape))
    xn = x.asnumpy()
    np.testing.assert_allclose(mean.asnumpy(), xn.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(var.asnumpy(), xn.var(axis=(0, 2)), rtol=1e-4)     # the variance, not 1/std
    want = (xn - xn.mean(axis=(0, 2), keepdims=True)) / np.sqrt(xn.var(axis=(0, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out.asnumpy(), want * gamma.asnumpy()[:, None] + beta.asnumpy()[:, None],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(x.grad.asnumpy(), 0, atol=1e-4)        # a sum of normalized values is constant
    assert mx.nd.contrib.SyncBatchNorm is mx.nd.contrib.SyncBatchNorm  # MXNet's tests compare the functions
