"""softmax(data, length, use_length=True) (MXNet 1.9.1's masked softmax; it has no masked_softmax op):
a numpy reference, float64 numeric gradients and the length input's shape rule.
(The MXNet reference is the softmax_use_length case in tests/fixtures/mxnet_ops/.)"""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_numeric_gradient, run

RNG = np.random.default_rng(3)


def np_length_softmax(x, length, axis):
    x = np.moveaxis(x, axis, -1)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        n = int(min(length[idx], x.shape[-1]))
        if n > 0:
            e = np.exp(x[idx][:n] - x[idx][:n].max())
            out[idx][:n] = e / e.sum()
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_against_numpy(axis):
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    want_shape = tuple(np.delete(x.shape, axis % 3))
    length = RNG.integers(0, x.shape[axis] + 2, want_shape).astype(np.int32)
    sym = mx.sym.softmax(mx.sym.var("data"), mx.sym.var("length"), axis=axis, use_length=True)
    assert sym.infer_shape(data=x.shape)[0][1] == want_shape
    (out,) = run(sym, data=x, length=length)
    np.testing.assert_allclose(out, np_length_softmax(x, length, axis % 3), rtol=1e-5, atol=1e-6)
    assert not out[np.moveaxis(np.indices(x.shape)[axis % 3], 0, 0) >= np.expand_dims(length, axis % 3)].any()


def test_numeric_gradient():
    sym = mx.sym.softmax(mx.sym.var("data"), mx.sym.var("length"), axis=1, use_length=True, temperature=1.5)
    args = {"data": RNG.standard_normal((2, 4, 3)).astype(np.float32),
            "length": np.array([[0, 2, 4], [1, 3, 4]], np.float32)}
    check_numeric_gradient(sym, args, ["data"], rtol=1e-5, atol=1e-7)
