"""Cases for the quantization ops (xgraph/ops/quantization.py); integer outputs, so inference only.

MXNet 1.9.1's pip build runs quantize, quantize_v2 and dequantize through oneDNN whatever
MXNET_MKLDNN_ENABLED says (its scales and rounding are what these fixtures hold); requantize is native."""
import mxnet as mx
import numpy as np

from . import Spec, case


def _f32(a):
    return np.asarray(a, np.float32)


def _data(rng, low=-1.5, high=2.5, shape=(3, 17)):
    """Values inside [low, high], including both ends, zero and exact half steps."""
    x = rng.uniform(low, high, shape)
    x.flat[:5] = [low, high, 0.0, (low + high) / 2, high / 2]
    return _f32(x)


def _ranges(low, high):
    return {"min_range": _f32([low]), "max_range": _f32([high])}


@case
def quantize_v1(rng):
    d, lo, hi = mx.sym.var("data"), mx.sym.var("min_range"), mx.sym.var("max_range")
    outs = [mx.sym.contrib.quantize(d, lo, hi), mx.sym.contrib.quantize(d, lo, hi, out_type="int8")]
    return Spec(mx.sym.Group(outs), {"data": _data(rng), **_ranges(-1.5, 2.5)}, train=False)


@case
def quantize_v2_modes(rng):
    d = mx.sym.var("data")
    outs = [mx.sym.contrib.quantize_v2(d),
            mx.sym.contrib.quantize_v2(d, min_calib_range=-1.0, max_calib_range=1.25),
            mx.sym.contrib.quantize_v2(d, out_type="uint8", min_calib_range=-1.5, max_calib_range=2.5),
            mx.sym.contrib.quantize_v2(d, out_type="auto", min_calib_range=-1.5, max_calib_range=2.5),
            mx.sym.contrib.quantize_v2(d, out_type="uint8")]
    return Spec(mx.sym.Group(outs), {"data": _data(rng)}, train=False,
                notes=["calibrated int8 clips values beyond the range to +-127"])


@case
def quantize_v2_int8_passthrough(rng):
    d = mx.sym.var("data")
    outs = [mx.sym.contrib.quantize_v2(d), mx.sym.contrib.quantize_v2(d, min_calib_range=-3.0, max_calib_range=3.0)]
    return Spec(mx.sym.Group(outs), {"data": rng.integers(-127, 128, (2, 5)).astype(np.int8)}, train=False)


@case
def dequantize_int8_uint8(rng):
    lo, hi = mx.sym.var("min_range"), mx.sym.var("max_range")
    outs = [mx.sym.contrib.dequantize(mx.sym.var("q8"), lo, hi),
            mx.sym.contrib.dequantize(mx.sym.var("qu8"), lo, hi)]
    return Spec(mx.sym.Group(outs), {"q8": rng.integers(-127, 128, (3, 7)).astype(np.int8),
                                     "qu8": rng.integers(0, 256, (3, 7)).astype(np.uint8),
                                     **_ranges(-0.75, 3.0)}, train=False)


@case
def quantize_dequantize_round_trip(rng):
    d, lo, hi = mx.sym.var("data"), mx.sym.var("min_range"), mx.sym.var("max_range")
    outs = []
    for out_type in ("int8", "uint8"):
        q = mx.sym.contrib.quantize(d, lo, hi, out_type=out_type)
        outs.append(mx.sym.contrib.dequantize(q[0], q[1], q[2]))
    return Spec(mx.sym.Group(outs), {"data": _data(rng), **_ranges(-1.5, 2.5)}, train=False)


@case
def requantize_int32(rng):
    d, lo, hi = mx.sym.var("data"), mx.sym.var("min_range"), mx.sym.var("max_range")
    outs = [mx.sym.contrib.requantize(d, lo, hi),
            mx.sym.contrib.requantize(d, lo, hi, min_calib_range=-0.02, max_calib_range=0.03)]
    data = rng.integers(-2 ** 30, 2 ** 30, (4, 9)).astype(np.int32)
    return Spec(mx.sym.Group(outs), {"data": data, **_ranges(-0.05, 0.04)}, train=False)
