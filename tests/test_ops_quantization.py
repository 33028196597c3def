"""_contrib_quantize, _contrib_quantize_v2, _contrib_dequantize, _contrib_requantize: numpy references
of MXNet 1.9.1's CPU kernels, round trips, int8 checkpoints, zero gradients and bad input.
(The MXNet 1.9.1 references are cases in tests/fixtures/mxnet_ops/, run by test_mxnet_op_cases.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from opcheck import grads, run
from xgraph.errors import AttributeValueError, ShapeError

RNG = np.random.default_rng(5)
X = RNG.uniform(-2.0, 3.0, (4, 9)).astype(np.float32)
LO, HI = np.array([-2.0], np.float32), np.array([3.0], np.float32)


def q_v1(out_type="uint8", **kw):
    return mx.sym.contrib.quantize(mx.sym.var("data"), mx.sym.var("lo"), mx.sym.var("hi"), out_type=out_type, **kw)


def np_onednn(x, real, levels, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.round(x * np.float32(levels / real)), info.min, info.max).astype(dtype)


@pytest.mark.parametrize("out_type,levels", [("int8", 127.0), ("uint8", 255.0)])
def test_quantize_against_numpy(out_type, levels):
    q, lo, hi = run(q_v1(out_type), data=X, lo=LO, hi=HI)
    np.testing.assert_array_equal(q, np_onednn(X, 3.0, levels, out_type))
    want = (LO, HI) if out_type == "uint8" else (-HI, HI)
    np.testing.assert_array_equal(lo, want[0])
    np.testing.assert_array_equal(hi, want[1])
    assert (q == 0).any() if out_type == "uint8" else (q < 0).any()


@pytest.mark.parametrize("kw,real,out_type", [({}, float(np.abs(X).max()), "int8"),
                                              ({"min_calib_range": -1.0, "max_calib_range": 1.5}, 1.5, "int8"),
                                              ({"out_type": "auto", "min_calib_range": 0.0, "max_calib_range": 2.0},
                                               2.0, "uint8")])
def test_quantize_v2_against_numpy(kw, real, out_type):
    q, lo, hi = run(mx.sym.contrib.quantize_v2(mx.sym.var("data"), **kw), data=X)
    levels = 127.5 if out_type == "int8" else 255.5
    assert q.dtype == np.dtype(out_type)
    np.testing.assert_array_equal(q, np_onednn(X, real, levels, out_type))
    if out_type == "int8":
        assert hi[0] == real and lo[0] == -real


def test_round_trip_error_is_half_a_step():
    for out_type, data, levels in (("int8", X, 127.5), ("uint8", np.abs(X), 255.5)):
        q = mx.sym.contrib.quantize_v2(mx.sym.var("data"), out_type=out_type)
        (back,) = run(mx.sym.contrib.dequantize(q[0], q[1], q[2]), data=data)
        step = np.abs(data).max() / levels
        assert np.abs(back - data).max() <= 0.5 * step * 1.001


def test_requantize_against_numpy():
    data = RNG.integers(-2 ** 30, 2 ** 30, (3, 8)).astype(np.int32)
    lo, hi = np.array([-0.5], np.float32), np.array([0.25], np.float32)
    sym = mx.sym.contrib.requantize(mx.sym.var("data"), mx.sym.var("lo"), mx.sym.var("hi"),
                                    min_calib_range=-0.1, max_calib_range=0.2)
    q, qlo, qhi = run(sym, data=data, lo=lo, hi=hi)
    f = data.astype(np.float32) * np.float32(0.5 / 2 ** 31)
    v = data.astype(np.float32) * (np.float32(127) / np.float32(0.2) * np.float32(0.5) / np.float32(2 ** 31 - 1))
    want = np.clip(np.trunc(v + np.sign(v) * np.float32(0.5)), -128, 127).astype(np.int8)  # as MXNet 1.9.1 (oneDNN)
    np.testing.assert_array_equal(q, want)
    assert (qlo[0], qhi[0]) == (np.float32(-0.2), np.float32(0.2))
    (q2, _, hi2) = run(mx.sym.contrib.requantize(mx.sym.var("data"), mx.sym.var("lo"), mx.sym.var("hi")),
                       data=data, lo=lo, hi=hi)
    assert hi2[0] == np.float32(np.abs(f).max()) and np.abs(q2.astype(int)).max() in (127, 128)


def test_int8_checkpoint_weights_dequantize_in_a_graph():
    """An int8 weight with its range, as an int8 checkpoint stores them, feeds a FullyConnected."""
    w8 = RNG.integers(-127, 128, (5, 9)).astype(np.int8)
    wq = mx.sym.contrib.dequantize(mx.sym.var("w8", dtype="int8"), mx.sym.var("w_min"), mx.sym.var("w_max"))
    fc = mx.sym.FullyConnected(mx.sym.var("data"), weight=wq, num_hidden=5, no_bias=True)
    loaded = mx.sym.load_json(fc.tojson())
    args = dict(data=X, w8=w8, w_min=np.array([-0.6], np.float32), w_max=np.array([0.4], np.float32))
    (out,) = run(loaded, **args)
    np.testing.assert_allclose(out, X @ (w8.astype(np.float32) * np.float32(0.6 / 127.5)).T, rtol=1e-5, atol=1e-5)
    assert loaded.infer_shape(data=(4, 9), w8=(5, 9))[0][2:] == [(1,), (1,)]


def test_no_gradient_flows_through_quantization():
    sym = mx.sym.contrib.dequantize(*q_v1("int8")[:3])
    g = grads(sym, ["data", "lo", "hi"], [np.ones_like(X)], data=X, lo=LO, hi=HI)
    assert not any(v.any() for v in g.values())


@pytest.mark.parametrize("build,args,message", [
    (lambda: mx.sym.contrib.dequantize(mx.sym.var("d"), mx.sym.var("lo"), mx.sym.var("hi"), name="dq"),
     {"d": np.zeros((2,), np.float32), "lo": LO, "hi": HI}, "data must be int8 or uint8"),
    (lambda: mx.sym.contrib.quantize(mx.sym.var("d"), mx.sym.var("lo"), mx.sym.var("hi"), name="qt"),
     {"d": np.zeros((2,), np.int32), "lo": LO, "hi": HI}, "data must be float32"),
    (lambda: mx.sym.contrib.quantize(mx.sym.var("d"), mx.sym.var("lo"), mx.sym.var("hi"), name="qt"),
     {"d": np.zeros((2,), np.float32), "lo": np.zeros((2,), np.float32), "hi": HI}, "min_range must hold one value"),
    (lambda: mx.sym.contrib.requantize(mx.sym.var("d"), mx.sym.var("lo"), mx.sym.var("hi"), name="rq"),
     {"d": np.zeros((2,), np.float32), "lo": LO, "hi": HI}, "data must be int32"),
])
def test_bad_inputs_name_the_node(build, args, message):
    with pytest.raises(ShapeError) as err:
        run(build(), **args)
    assert message in str(err.value) and "node '" in str(err.value)


def test_bad_attribute_values_are_refused():
    with pytest.raises(AttributeValueError, match="out_type"):
        mx.sym.contrib.quantize_v2(mx.sym.var("x"), out_type="int4", name="q")
    with pytest.raises(AttributeValueError, match="min_calib_range"):
        mx.sym.contrib.quantize_v2(mx.sym.var("x"), min_calib_range="low", name="q")
    with pytest.raises(AttributeValueError, match="node 'rq'.*out_type"):
        mx.sym.contrib.requantize(mx.sym.var("d"), mx.sym.var("lo"), mx.sym.var("hi"), out_type="int4", name="rq")


def test_requantize_to_uint8():
    """uint8 requantize (MXNet 1.9.1 with oneDNN; see tests/test_ops_quantized.py for MXNet's values)."""
    sym = mx.sym.contrib.requantize(mx.sym.var("d"), mx.sym.var("lo"), mx.sym.var("hi"), out_type="uint8",
                                    min_calib_range=0.0, max_calib_range=1.0)
    d = np.array([0, 2 ** 29, 2 ** 30, -5], np.int32)
    q, lo, hi = run(sym, d=d, lo=LO, hi=HI)
    assert q.dtype == np.uint8 and lo[0] == 0 and hi[0] == 1
    np.testing.assert_array_equal(q, [0, 191, 255, 0])
