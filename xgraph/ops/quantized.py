"""MXNet 1.9.1's quantized layers: ``_contrib_quantized_{conv, fully_connected, pooling, act, flatten,
elemwise_add, concat, batch_norm}``, as ``quantize_model`` writes them into an int8 checkpoint.

Every op takes its quantized inputs followed by their ranges, each a (1,) float32
array (``min_data, max_data, min_weight, max_weight ...``), and returns the triple
``(out, min_out, max_out)``. ``R`` below is a range's ``max(|min|, |max|)``. The
rules are those of MXNet 1.9.1's CPU build (its oneDNN kernels), checked
bit-exactly against it by ``tests/test_ops_quantized.py`` unless said otherwise:

* **conv, fully_connected**: int8 weight, uint8 or int8 data, products summed
  exactly (:func:`int8_conv`, :func:`int8_matmul`: in float64, exact for every such
  sum, or int32 without 64-bit types) into int32. The int32 output's range is
  ``±(R_data / L) * (R_weight / 127) * 2147483647`` with ``L`` 127 for int8 data
  and 255 for uint8 data, except that the convolution always uses ``L = 127`` (as
  MXNet's kernel does, so a uint8 convolution's range reads twice its real one).
  FullyConnected adds an int8 bias rescaled to the product's scale,
  ``trunc(b * (Q_d / R_d) * (127.5 / R_w) / (127.5 / R_b))`` with ``Q_d`` 127.5
  (int8) or 255.5 (uint8); the convolution adds the int8 bias values *unscaled*,
  as MXNet 1.9.1's oneDNN convolution does. MXNet's CPU convolution refuses int8
  data (uint8 only); xgraph computes it with the same rules.
* **pooling** (max, avg), **flatten**: the data's dtype and range; an average
  is ``round_half_even(sum / count)`` (count with padding unless
  ``count_include_pad=False``).
* **act** (relu only): ``max(x, 0)`` for int8; for uint8 data MXNet returns the
  same bytes typed int8 (values above 127 read negative), and so does xgraph.
  Inside an MXNet graph the oneDNN consumers of such an array still read its bytes
  as uint8 (an elemwise_add after it sums them as uint8 but scales them as int8, and
  rescales its other operand into uint8); xgraph follows the int8 type, so a graph
  that adds a relu of uint8 data to something differs from MXNet there (the
  ``quantize_model(quantized_dtype='uint8')`` residual blocks do).
* **elemwise_add**: without calibration an int32 sum over ``±(R_a + R_b)``: ``round_half_even(s_a *
  a + s_b * b)`` in float32 with ``s = R * 2147483647 / ((R_a + R_b) * Q)`` (``Q``
  127.5 for int8, 255.5 for uint8; each product rounded to float32 by
  :func:`f32_product`, so XLA's FMA contraction does not change the rounding); with ``min_calib_range``/``max_calib_range``
  int8 (uint8 when the minimum is >= 0) over that range, ``s = (Q_out / R_out) /
  (Q / R)``. An int8 + uint8 sum first rescales the uint8 operand to int8
  (saturated), as MXNet does.
* **concat**: the output is int8 if any input is, else uint8; its range is the widest
  input range ``R_out`` (the minimum: 0 for uint8, the lowest input minimum for int8);
  each input is rescaled by ``(Q_out / R_out) / (Q_i / R_i)`` with round-half-even.
* **batch_norm**: int8 output over the calibrated range (MXNet refuses to run it
  uncalibrated, and so does xgraph). uint8 data is first reordered to int8,
  ``round_half_even(x * 127.5 / 255.5)``; then, in float32, ``w = gamma * invstd *
  (127.5 / R_out) / (127.5 / R_d)`` with ``invstd = 1 / sqrt(var + eps)`` (in double),
  ``shift = (beta - mean * gamma * invstd) * 127.5 / R_out`` and ``round(x * w /
  sqrt(1 + eps) + shift)`` (oneDNN applies eps once more to the unit variance MXNet
  hands it). MXNet's oneDNN kernel ignores ``fix_gamma``, and so does xgraph.

The oneDNN fused nodes ``_sg_mkldnn_conv`` / ``_sg_mkldnn_fully_connected`` that
``quantize_net`` (Gluon) and ``quantize_model_mkldnn`` export (JSON nodes with a
nested ``subgraphs`` float graph) live in :mod:`xgraph.ops.mkldnn`, over
:func:`int8_conv` and :func:`int8_matmul` below.

None of these ops has a gradient (MXNet defines none): their inputs are
constants to autodiff (``stop_gradient``).

    >>> import xgraph as mx
    >>> y = mx.sym.contrib.quantized_flatten(mx.sym.var('x'), mx.sym.var('lo'), mx.sym.var('hi'))
    >>> y.infer_shape(x=(2, 3, 4))[1][0]
    (2, 12)
"""
from __future__ import annotations

import contextlib
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import AttributeValueError, ConfigError, DTypeError
from .attrs import Bool, Enum, Float, Int, Optional, attr
from .common import fail, normalize_axis
from ..conv_strategy import grouped_conv_taps, prefers_taps
from .nn import CONVOLUTION_ATTRS, checked_conv_geometry, spatial_layout
from .quantization import _F32, _pair, _scalar, range_of, saturate
from .registry import Op, get, register

#: MXNet's names of the (out, min_out, max_out) triple: ``<node>_output``, ``<node>_min_output`` ...
_OUTPUT_NAMES = lambda p: ["output", "min_output", "max_output"]  # noqa: E731
_I8 = np.dtype(np.int8)
_U8 = np.dtype(np.uint8)
_I32 = np.dtype(np.int32)
#: MXNet's kInt8Range / kUint8Range (oneDNN scales) and kInt32Range
_LEVELS = {"int8": np.float32(127.5), "uint8": np.float32(255.5)}
_INT32_MAX = np.float32(2147483647)


def _need(x, dtypes, what: str) -> None:
    if x.dtype not in tuple(np.dtype(d) for d in dtypes):
        raise DTypeError(f"{what} must be {' or '.join(dtypes)}, got {x.dtype}")


def _need_range(*pairs) -> None:
    for name, v in pairs:
        if v.dtype != jnp.float32 or v.size != 1:
            raise DTypeError(f"{name} must be a (1,) float32 range, got {tuple(v.shape)} {v.dtype}")


# -- convolution and fully connected ------------------------------------------------
def _layer_inputs(p):
    if p["no_bias"]:
        return ["data", "weight", "min_data", "max_data", "min_weight", "max_weight"]
    return ["data", "weight", "bias", "min_data", "max_data", "min_weight", "max_weight", "min_bias", "max_bias"]


def _layer_dtype(p, dtypes):
    names = _layer_inputs(p)
    filled = [d if d is not None else (_F32 if n.startswith(("min", "max")) else _I8)
              for n, d in zip(names, dtypes)]
    return filled, [_I32, _F32, _F32]


def _split_layer(p, inputs):
    names = _layer_inputs(p)
    v = dict(zip(names, inputs))
    _need(v["data"], ("uint8", "int8"), "data")
    _need(v["weight"], ("int8",), "weight")
    if "bias" in v:
        _need(v["bias"], ("int8",), "bias")
    _need_range(*[(n, v[n]) for n in names if n.startswith(("min", "max"))])
    return v


def _with_bias_and_ranges(p, shapes: list, outputs: int) -> list:
    """The layer's input shapes with the bias as (outputs,) and every range as (1,)."""
    for i, n in enumerate(_layer_inputs(p)):
        if n == "bias":
            shapes[i] = (outputs,)
        elif n.startswith(("min", "max")):
            shapes[i] = (1,)
    return shapes


def _product_range(v, data_levels: float):
    """MXNet's int32 output range of an int8-weight product: ±(R_d / L) * (R_w / 127) * (2^31 - 1)."""
    rd = range_of(v["min_data"], v["max_data"])
    rw = range_of(v["min_weight"], v["max_weight"])
    top = (rd / jnp.float32(data_levels)) * (rw / jnp.float32(127.0)) * _INT32_MAX
    return _pair(-top), _pair(top)


def _conv_layer_infer(p, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None and data[1] > 0:
        out[1] = (p["num_filter"], data[1] // p["num_group"]) + tuple(p["kernel"])
    return _with_bias_and_ranges(p, out, p["num_filter"])


# -- which CPU's oneDNN int8 kernels are reproduced (ops/mkldnn.py re-exports these) ------
#: MXNet's int8 results depend on the CPU it ran on. "vnni" (CPUs with AVX512-VNNI or AVX-VNNI): the
#: exact int32 sums. "avx2" (AVX2 and AVX-512 CPUs without VNNI): oneDNN halves the weights of a
#: signed-data convolution and saturates u8 x s8 products pairwise to int16 (mkldnn._signed_input_sum,
#: _pair_saturation, _fc_pair_saturation). Set with XGRAPH_ONEDNN_ISA, set_cpu_isa or cpu_isa(); the ops
#: that depend on it name it as their Op.variant, so the graph hashes programs are cached under differ.
CPU_ISAS = ("vnni", "avx2")
_isa = [os.environ.get("XGRAPH_ONEDNN_ISA", "vnni")]


def set_cpu_isa(name: str) -> str:
    """Reproduce the int8 kernels MXNet's oneDNN runs on CPUs of kind ``name`` ('vnni' or 'avx2');
    returns the previous setting.

        >>> from xgraph.ops import mkldnn
        >>> old = mkldnn.set_cpu_isa('avx2'); mkldnn.set_cpu_isa(old)
        'avx2'
    """
    if name not in CPU_ISAS:
        raise ConfigError(f"unknown oneDNN CPU kind {name!r} (XGRAPH_ONEDNN_ISA / set_cpu_isa): "
                          f"expected one of {', '.join(CPU_ISAS)}")
    old, _isa[0] = _isa[0], name
    return old


@contextlib.contextmanager
def cpu_isa(name: str):
    """``with cpu_isa('avx2'):`` graphs bound (and first run) inside reproduce that CPU's int8 kernels."""
    old = set_cpu_isa(name)
    try:
        yield
    finally:
        set_cpu_isa(old)


def _current_isa() -> str:
    if _isa[0] not in CPU_ISAS:
        set_cpu_isa(_isa[0])        # a bad XGRAPH_ONEDNN_ISA: the ConfigError names it
    return _isa[0]




def int8_conv(p, x, w):
    """The exact int32 convolution of uint8/int8 data ``x`` with an int8 weight ``w`` (NC* layouts);
    ``p`` holds Convolution's attributes (kernel, stride, pad, dilate, num_group, layout).

        >>> import jax.numpy as jnp
        >>> p = {'kernel': (1, 1), 'stride': (), 'dilate': (), 'pad': (), 'num_filter': 1, 'num_group': 1,
        ...      'layout': None, 'no_bias': True}
        >>> int8_conv(p, jnp.full((1, 2, 1, 1), 200, jnp.uint8), jnp.full((1, 2, 1, 1), 100, jnp.int8)).ravel().tolist()
        [40000]
    """
    x, w = lax.stop_gradient(x), lax.stop_gradient(w)
    if spatial_layout(p["layout"], x.ndim).index("C") != 1:
        fail(f"layout {p['layout']} is not supported: MXNet's quantized convolution takes NC* layouts")
    layout, stride, dilate, pad = checked_conv_geometry(p, x.shape, w.shape)
    rhs = "OI" + layout[2:]
    wide = _exact_type(x)
    groups = p["num_group"]
    if wide == jnp.float64 and prefers_taps(groups, w.shape[1]):
        # XLA's CPU grouped convolution (depthwise above all) is many times slower than a sum over taps;
        # exact all the same (integer products summed in float64)
        return grouped_conv_taps(x.astype(wide), w.astype(wide), stride or (1,) * (x.ndim - 2),
                                 dilate or (1,) * (x.ndim - 2), pad or (0,) * (x.ndim - 2), groups).astype(jnp.int32)
    y = lax.conv_general_dilated(
        x.astype(wide), w.astype(wide),
        window_strides=stride, padding=[(q, q) for q in pad], rhs_dilation=dilate,
        dimension_numbers=(layout, rhs, layout), feature_group_count=p["num_group"],
        preferred_element_type=wide)
    return y.astype(jnp.int32)


def _exact_type(x):
    """The type int8 products are summed in: float64 where JAX has it (every sum of |q| <= 255 * 128
    products below 2^53 is exact, and XLA's CPU float convolutions and dot products run 10 to 20 times
    faster than its integer ones), else int32 (uint8 x int8 has no common narrow type)."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.int32


def _non_vnni_loss(kind: str, p, x, w):
    """What oneDNN's int16 pair saturation takes off the int32 sum on CPUs without VNNI, when xgraph
    reproduces those (``XGRAPH_ONEDNN_ISA=avx2``, ops/mkldnn.py), else 0."""
    from . import mkldnn     # mkldnn builds on this module
    if _current_isa() != "avx2":
        return 0
    x, w = lax.stop_gradient(x), lax.stop_gradient(w)
    if kind == "fc":
        return mkldnn._fc_pair_saturation(p, x, w)
    # (MXNet's plain quantized convolution of a 3-channel input shows no saturation, unlike the fused one)
    lost = mkldnn._pair_saturation(p, x, w, odd_channels=False) if x.dtype == jnp.uint8 else None
    return 0 if lost is None else lost


def _quantized_conv_lower(ctx, p, *inputs):
    v = _split_layer(p, inputs)
    y = int8_conv(p, v["data"], v["weight"]) + _non_vnni_loss("conv", p, v["data"], v["weight"])
    n, nf = y.ndim - 2, p["num_filter"]
    if "bias" in v:
        b = lax.stop_gradient(v["bias"])
        if tuple(b.shape) != (nf,):
            fail(f"bias has shape {tuple(b.shape)}, expected {(nf,)}")
        y = y + b.astype(jnp.int32).reshape((1, nf) + (1,) * n)   # unscaled, as MXNet 1.9.1's oneDNN kernel
    return (y, *_product_range(v, 127.0))


register(Op(
    "_contrib_quantized_conv", _quantized_conv_lower, dynamic_inputs=_layer_inputs, attrs=CONVOLUTION_ATTRS,
    num_outputs=3, output_names=_OUTPUT_NAMES, infer_inputs=_conv_layer_infer, infer_dtype=_layer_dtype, differentiable=False,
    family="quantization", variant=_current_isa,
    doc="Convolution of uint8 (or int8) data with an int8 weight, summed in int32; the int8 bias is "
        "added unscaled (MXNet 1.9.1's CPU kernel). Returns (out int32, min_out, max_out)."))


def _fc_layer_infer(p, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None and all(d > 0 for d in data[1:]):
        k = int(math.prod(data[1:])) if p["flatten"] else data[-1]
        out[1] = (p["num_hidden"], k)
    return _with_bias_and_ranges(p, out, p["num_hidden"])


def int8_matmul(p, x, w):
    """The exact int32 product ``x W^T`` of uint8/int8 data and an int8 weight, flattened first
    when ``p['flatten']`` (FullyConnected's attributes).

        >>> import jax.numpy as jnp
        >>> p = {'num_hidden': 1, 'flatten': True}
        >>> int8_matmul(p, jnp.full((1, 2), 255, jnp.uint8), jnp.full((1, 2), -128, jnp.int8)).tolist()
        [[-65280]]
    """
    x, w = lax.stop_gradient(x), lax.stop_gradient(w)
    x2 = x.reshape(x.shape[0], -1) if p["flatten"] else x
    if tuple(w.shape) != (p["num_hidden"], x2.shape[-1]):
        fail(f"weight has shape {tuple(w.shape)}, expected {(p['num_hidden'], x2.shape[-1])} "
             f"(num_hidden, input features)")
    wide = _exact_type(x)
    return lax.dot_general(x2.astype(wide), w.astype(wide), (((x2.ndim - 1,), (1,)), ((), ())),
                           preferred_element_type=wide).astype(jnp.int32)


def _quantized_fc_lower(ctx, p, *inputs):
    v = _split_layer(p, inputs)
    y = int8_matmul(p, v["data"], v["weight"]) + _non_vnni_loss("fc", p, v["data"], v["weight"])
    data_type = jnp.dtype(v["data"].dtype).name
    if "bias" in v:
        b = lax.stop_gradient(v["bias"])
        if tuple(b.shape) != (p["num_hidden"],):
            fail(f"bias has shape {tuple(b.shape)}, expected {(p['num_hidden'],)}")
        rd = range_of(v["min_data"], v["max_data"])
        rw = range_of(v["min_weight"], v["max_weight"])
        rb = range_of(v["min_bias"], v["max_bias"])
        lv = _LEVELS["int8"]
        rescale = (_LEVELS[data_type] / rd) * (lv / rw) / (lv / rb)
        y = y + jnp.trunc(b.astype(jnp.float32) * rescale).astype(jnp.int32)
    return (y, *_product_range(v, 127.0 if data_type == "int8" else 255.0))


register(Op(
    "_contrib_quantized_fully_connected", _quantized_fc_lower, dynamic_inputs=_layer_inputs,
    attrs=(attr("num_hidden", Int(min=1), doc="number of output units"),
           attr("no_bias", Bool(), False, "leave out the bias (and its range inputs)"),
           attr("flatten", Bool(), True, "flatten all but the first axis first; otherwise apply on the last axis")),
    num_outputs=3, output_names=_OUTPUT_NAMES, infer_inputs=_fc_layer_infer, infer_dtype=_layer_dtype, differentiable=False,
    family="quantization", variant=_current_isa,
    doc="x W^T of uint8/int8 data and an int8 weight, summed in int32, plus the int8 bias rescaled to the "
        "product's scale. Returns (out int32, min_out, max_out)."))


# -- shape-only ops: pooling, flatten, act -------------------------------------------
_RANGED = ("data", "min_data", "max_data")


def _ranged_infer(p, shapes):
    return [shapes[0], (1,), (1,)]


def _ranged_dtype(p, dtypes):
    return [dtypes[0] or _I8, dtypes[1] or _F32, dtypes[2] or _F32], None


def _check_ranged(data, low, high):
    _need(data, ("uint8", "int8"), "data")
    _need_range(("min_data", low), ("max_data", high))


def _quantized_pool_lower(ctx, p, data, low, high):
    _check_ranged(data, low, high)
    if p["pool_type"] not in ("max", "avg"):
        raise AttributeValueError(f"pool_type '{p['pool_type']}' is not supported by MXNet's quantized "
                                  f"pooling (max or avg)")
    if p["layout"] not in (None, "NCHW"):
        fail(f"layout {p['layout']} is not supported: MXNet's quantized pooling takes NCHW")
    y = get("Pooling").lower(ctx, p, lax.stop_gradient(data).astype(jnp.float32))   # exact in float32
    y = y[0] if isinstance(y, tuple) else y
    y = y if p["pool_type"] == "max" else jnp.round(y)
    return y.astype(data.dtype), _pair(low), _pair(high)


register(Op(
    "_contrib_quantized_pooling", _quantized_pool_lower, inputs=_RANGED,
    attrs=get("Pooling").attrs, num_outputs=3, output_names=_OUTPUT_NAMES, infer_inputs=_ranged_infer, infer_dtype=_ranged_dtype,
    differentiable=False, family="quantization",
    doc="Max or average pooling of uint8/int8 data (averages rounded half to even); the range passes "
        "through. Returns (out, min_out, max_out)."))


def _quantized_flatten_lower(ctx, p, data, low, high):
    _check_ranged(data, low, high)
    return lax.stop_gradient(data).reshape(data.shape[0], -1), _pair(low), _pair(high)


register(Op(
    "_contrib_quantized_flatten", _quantized_flatten_lower, inputs=_RANGED, num_outputs=3, output_names=_OUTPUT_NAMES,
    infer_inputs=_ranged_infer, infer_dtype=_ranged_dtype, differentiable=False, family="quantization",
    doc="Flatten uint8/int8 data to (batch, rest); the range passes through."))


def _quantized_act_lower(ctx, p, data, low, high):
    _check_ranged(data, low, high)
    x = lax.stop_gradient(data)
    y = jnp.maximum(x, 0).astype(jnp.int8) if x.dtype == jnp.int8 else lax.bitcast_convert_type(x, jnp.int8)
    return y, _pair(low), _pair(high)


def _act_dtype(p, dtypes):
    return [dtypes[0] or _I8, dtypes[1] or _F32, dtypes[2] or _F32], [_I8, _F32, _F32]


register(Op(
    "_contrib_quantized_act", _quantized_act_lower, inputs=_RANGED, num_outputs=3, output_names=_OUTPUT_NAMES,
    attrs=(attr("act_type", Enum(("relu",)), doc="the activation (MXNet quantizes relu only)"),),
    infer_inputs=_ranged_infer, infer_dtype=_act_dtype, differentiable=False, family="quantization",
    doc="relu of int8 data; uint8 data comes back as the same bytes typed int8 (MXNet 1.9.1's CPU "
        "kernel). The range passes through."))


# -- elemwise_add --------------------------------------------------------------------
_CALIB = (attr("min_calib_range", Optional(Float()), None, "calibrated output minimum"),
          attr("max_calib_range", Optional(Float()), None, "calibrated output maximum"))


def _calib(p):
    lo, hi = p["min_calib_range"], p["max_calib_range"]
    return None if lo is None or hi is None else (np.float32(lo), np.float32(hi))


def _calib_type(p) -> str:
    calib = _calib(p)
    return "int32" if calib is None else ("int8" if calib[0] < 0 else "uint8")


def f32_product(s, q):
    """``s * q`` rounded to float32 (a float32 ``s``, an integer ``q`` with ``|q| < 256``), as oneDNN has it.

    XLA's CPU compiler contracts a float32 multiply that feeds an add into one FMA
    (a different rounding from oneDNN's), and folds away any conversion or bitcast
    put between them. So ``s`` is split into its top 12 significand bits and the
    rest: both partial products are exact in float32, so their sum is the product
    rounded once, whether or not the compiler fuses it into an FMA.

        >>> import jax.numpy as jnp
        >>> float(f32_product(jnp.float32(0.1), jnp.array(-3, jnp.int8)))
        -0.30000001192092896
    """
    s = jnp.asarray(s, jnp.float32)
    hi = lax.bitcast_convert_type(lax.bitcast_convert_type(s, jnp.uint32) & jnp.uint32(0xFFFFF000), jnp.float32)
    qf = q.astype(jnp.float32)
    return hi * qf + (s - hi) * qf


def _div(num, den):
    """num / den in float32 as written: the barrier keeps XLA from rewriting the division
    (``a / (b * c)`` into other roundings), so the scale is MXNet's to the last bit."""
    num, den = lax.optimization_barrier((num, den))
    return lax.optimization_barrier(num / den)


def _quantized_add_lower(ctx, p, lhs, rhs, lhs_min, lhs_max, rhs_min, rhs_max):
    for name, x in (("lhs", lhs), ("rhs", rhs)):
        _need(x, ("uint8", "int8"), name)
    _need_range(("lhs_min", lhs_min), ("lhs_max", lhs_max), ("rhs_min", rhs_min), ("rhs_max", rhs_max))
    if lhs.shape != rhs.shape:
        fail(f"lhs {tuple(lhs.shape)} and rhs {tuple(rhs.shape)} must have the same shape")
    ra, rb = range_of(lhs_min, lhs_max), range_of(rhs_min, rhs_max)
    qa, qb = _LEVELS[jnp.dtype(lhs.dtype).name], _LEVELS[jnp.dtype(rhs.dtype).name]
    calib, out_type = _calib(p), _calib_type(p)
    a, b = lax.stop_gradient(lhs), lax.stop_gradient(rhs)
    if calib is None:
        out_levels, top = _INT32_MAX, ra + rb
        lo_out, hi_out = -top, top
        scale_a = _div(ra * out_levels, (ra + rb) * qa)
        scale_b = _div(rb * out_levels, (ra + rb) * qb)
    else:
        lo_out, hi_out = jnp.float32(calib[0]), jnp.float32(calib[1])
        out_scale = _LEVELS[out_type] / jnp.maximum(jnp.abs(lo_out), jnp.abs(hi_out))
        scale_a, scale_b = _div(out_scale, _div(qa, ra)), _div(out_scale, _div(qb, rb))
    if lhs.dtype != rhs.dtype:
        # MXNet first reorders the uint8 operand into int8 with the uint8 operand's scale, saturating
        if lhs.dtype == jnp.int8:
            b, scale_b = saturate(f32_product(scale_b, b), jnp.int8), jnp.float32(1.0)
        else:
            a, scale_a = saturate(f32_product(scale_a, a), jnp.int8), jnp.float32(1.0)
    total = f32_product(scale_a, a) + f32_product(scale_b, b)
    return saturate(total, out_type), _pair(lo_out), _pair(hi_out)


def _add_dtype(p, dtypes):
    return [dtypes[0] or _I8, dtypes[1] or _I8] + [d or _F32 for d in dtypes[2:]], [np.dtype(_calib_type(p)), _F32, _F32]


register(Op(
    "_contrib_quantized_elemwise_add", _quantized_add_lower,
    inputs=("lhs", "rhs", "lhs_min", "lhs_max", "rhs_min", "rhs_max"), attrs=_CALIB, num_outputs=3, output_names=_OUTPUT_NAMES,
    infer_inputs=lambda p, s: [s[0] or s[1], s[1] or s[0], (1,), (1,), (1,), (1,)],
    infer_dtype=_add_dtype, differentiable=False, family="quantization",
    doc="Sum of two uint8/int8 arrays: int32 over ±(R_lhs + R_rhs), or, calibrated, int8 (uint8 for a "
        "non-negative range) over the calibrated range. Returns (out, min_out, max_out)."))


# -- concat --------------------------------------------------------------------------
def _concat_inputs(p):
    n = p["num_args"]
    return [f"arg{i}" for i in range(n)] + [f"arg{i}_{m}" for i in range(n) for m in ("min", "max")]


def _concat_infer(p, shapes):
    n = p["num_args"]
    return list(shapes[:n]) + [(1,)] * (2 * n)


def _concat_dtype(p, dtypes):
    n = p["num_args"]
    data = [d or _I8 for d in dtypes[:n]]
    out = None
    if all(d is not None for d in data):
        out = [_I8 if any(d == _I8 for d in data) else _U8, _F32, _F32]
    return data + [d or _F32 for d in dtypes[n:]], out


def _quantized_concat_lower(ctx, p, *inputs):
    n = p["num_args"]
    if len(inputs) != 3 * n:
        fail(f"expected {3 * n} inputs (num_args={n} arrays, then a min and a max for each), got {len(inputs)}")
    xs, lows, highs = inputs[:n], inputs[n::2], inputs[n + 1::2]
    for i, x in enumerate(xs):
        _need(x, ("uint8", "int8"), f"arg{i}")
    _need_range(*[(f"arg{i}_min", v) for i, v in enumerate(lows)], *[(f"arg{i}_max", v) for i, v in enumerate(highs)])
    axis = normalize_axis(p["dim"], xs[0].ndim, "dim")
    ranges = [range_of(lo, hi) for lo, hi in zip(lows, highs)]
    top = ranges[0]
    for r in ranges[1:]:
        top = jnp.maximum(top, r)
    out_type = "int8" if any(x.dtype == jnp.int8 for x in xs) else "uint8"
    out_levels = _LEVELS[out_type]
    parts = []
    for x, r in zip(xs, ranges):
        x = lax.stop_gradient(x)
        scale = (out_levels / top) / (_LEVELS[jnp.dtype(x.dtype).name] / r)
        rescaled = saturate(x.astype(jnp.float32) * scale, out_type)
        same = (r == top) & (x.dtype == jnp.dtype(out_type))
        parts.append(jnp.where(same, x.astype(out_type), rescaled))
    # MXNet's output range: [0, R_out] for uint8; for int8 the lowest input minimum and R_out
    low = jnp.float32(0.0)
    if out_type == "int8":
        for lo in lows:
            low = jnp.minimum(low, _scalar(lo, "min range"))
    return jnp.concatenate(parts, axis=axis), _pair(low), _pair(top)


register(Op(
    "_contrib_quantized_concat", _quantized_concat_lower, dynamic_inputs=_concat_inputs,
    attrs=(attr("num_args", Int(min=1), doc="number of arrays to concatenate"),
           attr("dim", Int(), 1, "the axis to concatenate along")),
    num_outputs=3, output_names=_OUTPUT_NAMES, infer_inputs=_concat_infer, infer_dtype=_concat_dtype, differentiable=False,
    family="quantization",
    doc="Concatenate uint8/int8 arrays, each rescaled to the widest input range (int8 if any input is "
        "int8). Inputs: arg0..arg{n-1}, then arg0_min, arg0_max, ... Returns (out, min_out, max_out)."))


# -- batch_norm ----------------------------------------------------------------------
_BN_INPUTS = ("data", "gamma", "beta", "moving_mean", "moving_var", "min_data", "max_data")


def _bn_infer(p, shapes):
    data = shapes[0]
    out = list(shapes)
    if data is not None:
        c = data[normalize_axis(p["axis"], len(data), "axis")]
        if c > 0:
            out[1:5] = [(c,)] * 4
    out[5:7] = [(1,), (1,)]
    return out


def _bn_dtype(p, dtypes):
    return [dtypes[0] or _I8] + [d or _F32 for d in dtypes[1:]], [_I8, _F32, _F32]


def _quantized_bn_lower(ctx, p, data, gamma, beta, mean, var, low, high):
    _need(data, ("uint8", "int8"), "data")
    _need_range(("min_data", low), ("max_data", high))
    for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", mean), ("moving_var", var)):
        _need(v, ("float32",), name)
    calib = _calib(p)
    if calib is None:
        raise AttributeValueError("min_calib_range and max_calib_range must be given: MXNet's quantized "
                                  "batch_norm runs only calibrated")
    axis = normalize_axis(p["axis"], data.ndim, "axis")
    c = data.shape[axis]
    for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", mean), ("moving_var", var)):
        if tuple(v.shape) != (c,):
            fail(f"{name} has shape {tuple(v.shape)}, expected {(c,)} (the channels on axis {axis})")
    lo_out, hi_out = jnp.float32(calib[0]), jnp.float32(calib[1])
    out_scale = _LEVELS["int8"] / jnp.maximum(jnp.abs(lo_out), jnp.abs(hi_out))
    x = lax.stop_gradient(data)
    if x.dtype == jnp.uint8:    # oneDNN's int8 batch norm: MXNet first reorders uint8 data to int8
        x = saturate(f32_product(_LEVELS["int8"] / _LEVELS["uint8"], x), jnp.int8)
    in_scale = _LEVELS["int8"] / range_of(low, high)
    g, b, m, s = (lax.stop_gradient(t) for t in (gamma, beta, mean, var))
    wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32    # MXNet: 1.0 / std::sqrt(double)
    invstd = (1.0 / jnp.sqrt(s.astype(wide) + p["eps"])).astype(jnp.float32)
    weight = g * invstd * out_scale / in_scale
    shift = (b - m * g * invstd) * out_scale
    shape = [1] * data.ndim
    shape[axis] = c
    # oneDNN normalizes with the mean 0 and variance 1 MXNet passes it, and eps again: / sqrt(1 + eps)
    unit = jnp.sqrt(jnp.float32(1.0) + jnp.float32(p["eps"]))
    y = f32_product(weight.reshape(shape), x) / unit + shift.reshape(shape)
    return (saturate(y, jnp.int8), _pair(lo_out), _pair(hi_out)), (mean, var)


register(Op(
    "_contrib_quantized_batch_norm", _quantized_bn_lower, inputs=_BN_INPUTS, aux=("moving_mean", "moving_var"),
    attrs=(attr("eps", Float(), 1e-3, "added to the variance"),
           attr("momentum", Float(), 0.9, "(training only; ignored)"),
           attr("fix_gamma", Bool(), True, "(ignored by MXNet's CPU kernel, which always uses gamma)"),
           attr("use_global_stats", Bool(), False, "(inference always uses the moving statistics)"),
           attr("output_mean_var", Bool(), False, "(not supported by MXNet's quantized kernel)"),
           attr("axis", Int(), 1, "the channel axis"),
           attr("cudnn_off", Bool(), False, "(MXNet: ignored)"), *_CALIB),
    input_init={"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'},
    num_outputs=3, output_names=_OUTPUT_NAMES, infer_inputs=_bn_infer, infer_dtype=_bn_dtype, differentiable=False, family="quantization",
    doc="Inference BatchNorm of uint8/int8 data to int8 over the calibrated output range (required). "
        "Returns (out int8, min_out, max_out)."))
