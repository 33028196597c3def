"""Quantization: _contrib_quantize, _contrib_quantize_v2, _contrib_dequantize, _contrib_requantize.

MXNet 1.9.1 as shipped for CPUs runs quantize, quantize_v2 and dequantize
through oneDNN: ``q = saturate(round_half_even(x * Q / R))`` with ``R =
max(|min|, |max|)`` and ``Q`` 127 / 255 (quantize) or 127.5 / 255.5
(quantize_v2, dequantize: ``x = q * R / Q``); uint8 is ``[0, R]``, negative
values saturate to 0. Requantize is MXNet's native kernel: ``v = x * ((L /
R_out) * R_in / (2^31 - 1))`` in float32 with ``L`` 127 (int8) or 255 (uint8),
rounded half away from zero and saturated to [-128, 127] or [0, 255]. Ranges travel as (1,) float32 arrays:
quantize ops return ``(data, min_range, max_range)``. None of these ops has a
gradient (MXNet's are zero), so every input is a constant to autodiff.

    >>> import xgraph as mx
    >>> q = mx.sym.contrib.quantize_v2(mx.sym.var('x'), min_calib_range=-1.0, max_calib_range=1.0)
    >>> q.infer_type(x='float32')[1][0].__name__
    'int8'
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from .attrs import Enum, Float, Optional, attr
from .common import fail
from .registry import Op, register
from .roi import exact_div

_RANGE_INPUTS = ("data", "min_range", "max_range")
_F32 = np.dtype(np.float32)


def _scalar(x, name: str):
    if x.size != 1:
        fail(f"{name} must hold one value (shape (1,)), got shape {tuple(x.shape)}")
    return lax.stop_gradient(x).astype(jnp.float32).reshape(())


def _pair(value):
    """A range value as MXNet passes it: a (1,) float32 array."""
    return value.reshape(1).astype(jnp.float32)


def _ranges(min_value, max_value):
    return _pair(min_value), _pair(max_value)


def range_of(low, high, names: tuple[str, str] = ("min range", "max range")):
    """``max(|min|, |max|)`` of two (1,) range arrays, a float32 scalar.

        >>> import jax.numpy as jnp
        >>> float(range_of(jnp.array([-2.0]), jnp.array([1.5])))
        2.0
    """
    return jnp.maximum(jnp.abs(_scalar(low, names[0])), jnp.abs(_scalar(high, names[1])))


def saturate(v, dtype):
    """Round float values half to even and saturate them to an integer dtype (oneDNN's conversion).

        >>> import jax.numpy as jnp
        >>> saturate(jnp.array([2.5, -300.0, 3.5]), 'int8').tolist()
        [2, -128, 4]
    """
    info = jnp.iinfo(jnp.dtype(dtype))
    return jnp.clip(jnp.round(v), info.min, info.max).astype(dtype)


def quantize_int8(x, real_range):
    """MXNet's native zero-centred int8: sign(x) * min(|x| * (127 / R) + 0.5, 127), truncated."""
    scale = exact_div(jnp.float32(127.0), real_range)
    q = jnp.sign(x) * jnp.minimum(jnp.abs(x) * scale + jnp.float32(0.5), 127.0)
    return jnp.trunc(q).astype(jnp.int8)


def onednn_quantize(x, real_range, levels: float, out_type: str):
    """oneDNN's scaled reorder: saturate(round_half_even(x * (levels / R))) in int8 or uint8."""
    return saturate(x * exact_div(jnp.float32(levels), real_range), out_type)


def _quantize(x, low, high, out_type: str, levels: dict):
    """(quantized, min, max) of float32 data over [low, high] (scalars); ``levels`` per out_type."""
    x = lax.stop_gradient(x).astype(jnp.float32)
    real = jnp.maximum(jnp.abs(low), jnp.abs(high))
    q = onednn_quantize(x, real, levels[out_type], out_type)
    return (q, *_ranges(low, high)) if out_type == "uint8" else (q, *_ranges(-real, real))


_V1_LEVELS = {"int8": 127.0, "uint8": 255.0}
_V2_LEVELS = {"int8": 127.5, "uint8": 255.5}


def _outputs(p) -> list:
    return [np.dtype(_output_type(p)), _F32, _F32]


def _quantize_dtype(p, dtypes):
    return [_F32 if d is None else d for d in dtypes], _outputs(p)


def _need_float32(x, what: str = "data") -> None:
    if x.dtype != jnp.float32:
        fail(f"{what} must be float32, got {x.dtype}")


def _range_infer(p, shapes):
    return [shapes[0], (1,), (1,)]


def _quantize_lower(ctx, p, data, min_range, max_range):
    _need_float32(data)
    return _quantize(data, _scalar(min_range, "min_range"), _scalar(max_range, "max_range"), p["out_type"],
                     _V1_LEVELS)


register(Op(
    "_contrib_quantize", _quantize_lower, inputs=_RANGE_INPUTS, family="quantization", num_outputs=3,
    infer_inputs=_range_infer, infer_dtype=_quantize_dtype,
    attrs=(attr("out_type", Enum(("int8", "uint8")), "uint8", "the quantized dtype"),),
    doc="Quantize float32 data over R = max(|min_range|, |max_range|): round(x * 127 / R) (int8) or "
        "round(x * 255 / R) (uint8, negatives 0), saturated. Returns (data, min, max)."))


def _output_type(p) -> str:
    """MXNet's GetQuantizeOutputType: 'auto' is uint8 when calibrated with min >= 0, else int8."""
    if p["out_type"] != "auto":
        return p["out_type"]
    lo, hi = p.get("min_calib_range"), p.get("max_calib_range")
    return "uint8" if lo is not None and hi is not None and lo >= 0 else "int8"


def _calibrated(p):
    lo, hi = p["min_calib_range"], p["max_calib_range"]
    if lo is None or hi is None:
        return None
    return jnp.float32(np.float32(lo)), jnp.float32(np.float32(hi))


def _quantize_v2_lower(ctx, p, data):
    out_type = _output_type(p)
    calib = _calibrated(p)
    if data.dtype in (jnp.int8, jnp.uint8):     # already quantized: the bytes pass through
        if calib is None:
            top = _V2_LEVELS[jnp.dtype(data.dtype).name]
            calib = (jnp.float32(0 if data.dtype == jnp.uint8 else -top), jnp.float32(top))
        return (lax.bitcast_convert_type(data, jnp.dtype(out_type)), *_ranges(*calib))
    _need_float32(data, "data (float32, int8 or uint8)")
    if calib is None:
        x = lax.stop_gradient(data)
        calib = (jnp.min(x), jnp.max(x))
    return _quantize(data, *calib, out_type, _V2_LEVELS)


_CALIB = (attr("min_calib_range", Optional(Float()), None, "calibrated minimum; None: the data's minimum"),
          attr("max_calib_range", Optional(Float()), None, "calibrated maximum; None: the data's maximum"))

register(Op(
    "_contrib_quantize_v2", _quantize_v2_lower, family="quantization", num_outputs=3,
    infer_dtype=lambda p, dtypes: (dtypes, _outputs(p)),
    attrs=(attr("out_type", Enum(("auto", "int8", "uint8")), "int8",
                "the quantized dtype; 'auto': uint8 if min_calib_range >= 0, else int8"), *_CALIB),
    doc="Quantize float32 data over its calibrated range (or its own min and max); int8/uint8 data "
        "passes through with its range. Returns (data, min, max)."))


def _dequantize_dtype(p, dtypes):
    return [dtypes[0], _F32 if dtypes[1] is None else dtypes[1], _F32 if dtypes[2] is None else dtypes[2]], [_F32]


def _dequantize_lower(ctx, p, data, min_range, max_range):
    low, high = _scalar(min_range, "min_range"), _scalar(max_range, "max_range")
    x = lax.stop_gradient(data)
    if x.dtype not in (jnp.int8, jnp.uint8):
        fail(f"data must be int8 or uint8, got {x.dtype}")
    real = jnp.maximum(jnp.abs(low), jnp.abs(high))
    return x.astype(jnp.float32) * exact_div(real, jnp.float32(_V2_LEVELS[jnp.dtype(x.dtype).name]))


register(Op(
    "_contrib_dequantize", _dequantize_lower, inputs=_RANGE_INPUTS, family="quantization",
    infer_inputs=_range_infer, infer_dtype=_dequantize_dtype,
    attrs=(attr("out_type", Enum(("float32",)), "float32", "the output dtype"),),
    doc="Dequantize int8 or uint8 data to float32: q * max(|min|, |max|) / 127.5 (int8) or / 255.5 "
        "(uint8), as MXNet's oneDNN kernel."))


def _int32_to_float(q, real_range):
    """MXNet's QuantizedToFloat<int32>: q * (R / 2^31)."""
    return q.astype(jnp.float32) * (real_range / jnp.float32(2.0 ** 31))


def _requantize_lower(ctx, p, data, min_range, max_range):
    out_type = _output_type(p)
    if data.dtype != jnp.int32:
        fail(f"data must be int32, got {data.dtype}")
    in_range = range_of(min_range, max_range, ("min_range", "max_range"))
    x = lax.stop_gradient(data)
    calib = _calibrated(p)
    if calib is None:
        calib = (_int32_to_float(jnp.min(x), in_range), _int32_to_float(jnp.max(x), in_range))
    real = jnp.maximum(jnp.abs(calib[0]), jnp.abs(calib[1]))
    levels = 127.0 if out_type == "int8" else 255.0
    # MXNet's native kernel: x * ((L / R_out) * R_in / (2^31 - 1)) in float32, rounded half away from zero
    v = x.astype(jnp.float32) * (exact_div(jnp.float32(levels), real) * in_range / jnp.float32(2147483647.0))
    info = jnp.iinfo(jnp.dtype(out_type))   # saturated to the full type: -128 appears (MXNet 1.9.1 as shipped)
    q = jnp.clip(jnp.trunc(v + jnp.sign(v) * jnp.float32(0.5)), info.min, info.max).astype(out_type)
    low_out = jnp.float32(0.0) if out_type == "uint8" else -real
    return (q, *_ranges(low_out, real))


def _requantize_dtype(p, dtypes):
    return [np.dtype(np.int32) if dtypes[0] is None else dtypes[0],
            _F32 if dtypes[1] is None else dtypes[1], _F32 if dtypes[2] is None else dtypes[2]], _outputs(p)


register(Op(
    "_contrib_requantize", _requantize_lower, inputs=_RANGE_INPUTS, family="quantization", num_outputs=3,
    infer_inputs=_range_infer, infer_dtype=_requantize_dtype,
    attrs=(attr("out_type", Enum(("auto", "int8", "uint8")), "int8",
                "the output dtype; 'auto': uint8 if min_calib_range >= 0, else int8"), *_CALIB),
    doc="Requantize int32 data (over max(|min|, |max|) mapped to 2^31) to int8 or uint8 over the calibrated "
        "range, or over the data's own range. Returns (data, min, max)."))
