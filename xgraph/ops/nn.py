"""Neural-network layers: FullyConnected, Activation, Convolution, Pooling, Dropout,
Embedding, LeakyReLU, softmax / log_softmax / SoftmaxActivation.

Normalization layers (BatchNorm, LayerNorm) live in :mod:`.norm`.

    >>> import xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=8, name='fc')
    >>> net.infer_shape(x=(2, 3, 4))[0]
    [(2, 3, 4), (8, 12), (8,)]
    >>> conv = mx.sym.Convolution(mx.sym.var('x'), kernel=(3, 3), num_filter=4, name='conv')
    >>> conv.infer_shape(x=(1, 2, 5, 5))[0]
    [(1, 2, 5, 5), (4, 2, 3, 3), (4,)]
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import erf

from ..conv_strategy import grouped_conv_taps, prefers_taps
from ..dtypes import canonical as canonical_dtype
from ..errors import AttributeValueError, XGraphError
from .attrs import Bool, DType, Enum, Float, Int, Optional, Shape, attr
from .common import channel_shape, fail, flat_draw, normalize_axis, spatial_tuple
from .registry import Op, optional_input, register


# -- FullyConnected ---------------------------------------------------------------
def _fc_in_features(p, data_shape):
    if data_shape is None:
        return None
    rest = data_shape[1:] if p["flatten"] else data_shape[-1:]
    if any(d == 0 for d in rest):
        return None
    return int(math.prod(rest))


def _fc_infer(p, shapes):
    out = list(shapes)
    k = _fc_in_features(p, shapes[0])
    if k is not None:
        out[1] = (p["num_hidden"], k)
    elif shapes[0] is not None:             # features still unknown: MXNet's partial (num_hidden, 0)
        out[1] = (p["num_hidden"], 0)
    if len(out) > 2:
        out[2] = (p["num_hidden"],)
    return out


def _fc_backward(p, shapes, outs):
    """The output gives the data's batch size (flatten) or every axis but the last (flatten=False)."""
    out, data = outs[0], shapes[0]
    if out is None:
        return shapes
    if p["flatten"]:
        lead = (out[0],)
        data = lead + tuple(data[1:]) if data is not None and len(data) >= 1 else None
    else:
        last = data[-1] if data is not None and len(data) == len(out) else 0
        data = tuple(out[:-1]) + (last,)
    return [data] + list(shapes[1:])


def _fc_lower(ctx, p, x, w, b=None):
    x2 = x.reshape(x.shape[0], -1) if p["flatten"] else x
    if w.shape != (p["num_hidden"], x2.shape[-1]):
        fail(f"weight has shape {w.shape}, expected {(p['num_hidden'], x2.shape[-1])} "
             f"(num_hidden, input features)")
    y = jnp.matmul(x2, w.T)
    if b is not None:
        if b.shape != (p["num_hidden"],):
            fail(f"bias has shape {b.shape}, expected {(p['num_hidden'],)}")
        y = y + b
    return y


register(Op(
    "FullyConnected", _fc_lower,
    inputs=("data", "weight", optional_input("bias", lambda p: not p["no_bias"])),
    attrs=(attr("num_hidden", Int(min=1), doc="number of output units"),
           attr("no_bias", Bool(), False, "leave out the bias"),
           attr("flatten", Bool(), True, "flatten all but the first axis of the input first; "
                                          "otherwise apply on the last axis")),
    infer_inputs=_fc_infer, infer_backward=_fc_backward, family="nn",
    doc="y = x W^T + b, with W of shape (num_hidden, input features)."))


# -- Activation -------------------------------------------------------------------
def _softrelu(x: Any) -> Any:
    return jax.nn.softplus(x)


def _mish(x: Any) -> Any:
    return x * jnp.tanh(jax.nn.softplus(x))


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softrelu": _softrelu,
    "softsign": lambda x: x / (1 + jnp.abs(x)),
    "log_sigmoid": jax.nn.log_sigmoid,
    "mish": _mish,
}
#: MXNet 1.x's Activation takes these; log_sigmoid and mish came with MXNet 2's ``_npx_activation``.
MXNET1_ACTIVATIONS = ("relu", "sigmoid", "softrelu", "softsign", "tanh")


def _act_lower(ctx, p, x):
    return ACTIVATIONS[p["act_type"]](x).astype(x.dtype)


def _register_activation(name: str, act_types: Sequence[str], doc: str) -> None:
    register(Op(
        name, _act_lower, unnamed_inputs=True,
        attrs=(attr("act_type", Enum(tuple(act_types)), doc="the activation function"),),
        family="nn", doc=doc))


_register_activation("Activation", MXNET1_ACTIVATIONS,
                     "An elementwise activation: relu, sigmoid, tanh, softrelu, softsign.")
_register_activation("_npx_activation", tuple(ACTIVATIONS),
                     "MXNet 2's activation: Activation's five plus log_sigmoid and mish.")


# -- layouts shared by Convolution and Pooling -------------------------------------
_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
_LAYOUTS = ("NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC")


def spatial_layout(layout: str | None, ndim: int) -> str:
    """The layout string of an ``ndim`` array: MXNet's default ``NC`` + spatial axes when None.

        >>> spatial_layout(None, 4), spatial_layout('NHWC', 4)
        ('NCHW', 'NHWC')
    """
    if ndim not in (3, 4, 5):
        fail(f"data must have 3, 4 or 5 dimensions (N, C and 1 to 3 spatial axes), got {ndim}")
    if layout is None:
        return "NC" + _SPATIAL[ndim - 2]
    if len(layout) != ndim:
        fail(f"layout {layout} does not fit data of {ndim} dimensions")
    return layout


def _spatial_axes(layout: str) -> list[int]:
    return [i for i, c in enumerate(layout) if c not in "NC"]


# -- Convolution -----------------------------------------------------------------
def _conv_geometry(p, ndim: int):
    layout = spatial_layout(p["layout"], ndim)
    n = len(p["kernel"])
    if n != ndim - 2:
        fail(f"kernel {p['kernel']} has {n} entries but the data has {ndim - 2} spatial axes")
    stride = spatial_tuple(p["stride"], n, 1, "stride")
    dilate = spatial_tuple(p["dilate"], n, 1, "dilate")
    pad = spatial_tuple(p["pad"], n, 0, "pad")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilate) or any(k < 1 for k in p["kernel"]):
        fail(f"kernel {p['kernel']}, stride {stride} and dilate {dilate} must be positive")
    return layout, stride, dilate, pad


def _conv_weight_shape(p, layout: str, channels: int) -> tuple[int, ...]:
    per_group = channels // p["num_group"]
    if layout.index("C") == 1:
        return (p["num_filter"], per_group) + tuple(p["kernel"])
    return (p["num_filter"],) + tuple(p["kernel"]) + (per_group,)


def _conv_infer(p, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None:
        try:
            layout = spatial_layout(p["layout"], len(data))
        except Exception:  # noqa: BLE001 - the lowering reports bad layouts with context
            layout = None
        if layout is not None:          # channels still unknown: MXNet's partial (F, 0, *kernel)
            out[1] = _conv_weight_shape(p, layout, max(data[layout.index("C")], 0))
    if len(out) > 2:
        out[2] = (p["num_filter"],)
    return out


def _conv_backward(p, shapes, outs):
    """The output gives the data's batch size, and its spatial size where the stride is 1."""
    out, data = outs[0], shapes[0]
    if out is None:
        return shapes
    try:
        layout, stride, dilate, pad = _conv_geometry(p, len(out))
    except XGraphError:
        return shapes
    known = data if data is not None and len(data) == len(out) else (0,) * len(out)
    res = list(known)
    res[layout.index("N")] = out[layout.index("N")]
    spatial = [i for i, a in enumerate(layout) if a not in "NC"]
    for k, i in enumerate(spatial):
        if stride[k] == 1 and out[i]:
            size = out[i] - 2 * pad[k] + dilate[k] * (p["kernel"][k] - 1)
            if size > 0:
                res[i] = size
    return [tuple(res)] + list(shapes[1:])


#: Convolution's attributes (MXNet's names and defaults), shared with ``_contrib_quantized_conv``
CONVOLUTION_ATTRS = (
    attr("kernel", Shape(), doc="window size: (w,), (h, w) or (d, h, w)"),
    attr("stride", Shape(), (), "stride per spatial axis; () means 1"),
    attr("dilate", Shape(), (), "dilation per spatial axis; () means 1"),
    attr("pad", Shape(), (), "zero padding on both sides per spatial axis; () means 0"),
    attr("num_filter", Int(min=1), doc="number of output channels"),
    attr("num_group", Int(min=1), 1, "number of groups (grouped / depthwise convolution)"),
    attr("workspace", Int(min=0), 1024, "(MXNet: scratch space in MB; ignored)"),
    attr("no_bias", Bool(), False, "leave out the bias"),
    attr("cudnn_tune", Optional(Enum(("fastest", "limited_workspace", "off"))), None,
         "(MXNet: cuDNN algorithm choice; ignored)"),
    attr("cudnn_off", Bool(), False, "(MXNet: turn cuDNN off; ignored)"),
    attr("layout", Optional(Enum(_LAYOUTS)), None, "data layout; None means NCW/NCHW/NCDHW"))


def checked_conv_geometry(p, x_shape, w_shape) -> tuple[str, tuple, tuple, tuple]:
    """``(layout, stride, dilate, pad)`` of a convolution, after checking its groups and weight shape."""
    layout, stride, dilate, pad = _conv_geometry(p, len(x_shape))
    channels, groups, nf = x_shape[layout.index("C")], p["num_group"], p["num_filter"]
    if channels % groups or nf % groups:
        fail(f"num_group={groups} must divide the input channels ({channels}) and num_filter ({nf})")
    expected = _conv_weight_shape(p, layout, channels)
    if tuple(w_shape) != expected:
        fail(f"weight has shape {tuple(w_shape)}, expected {expected}")
    return layout, stride, dilate, pad


def _conv_lower(ctx, p, x, w, b=None):
    layout, stride, dilate, pad = checked_conv_geometry(p, x.shape, w.shape)
    c_axis = layout.index("C")
    channels, groups, nf = x.shape[c_axis], p["num_group"], p["num_filter"]
    spatial = layout.replace("N", "").replace("C", "")
    rhs = "OI" + spatial if c_axis == 1 else "O" + spatial + "I"

    def native(x, w):
        return lax.conv_general_dilated(
            x, w.astype(x.dtype), window_strides=stride, padding=[(q, q) for q in pad], rhs_dilation=dilate,
            dimension_numbers=(layout, rhs, layout), feature_group_count=groups)

    if prefers_taps(groups, channels // groups):
        # XLA's CPU grouped convolution is 2-60x slower than a sum over the kernel's taps
        def taps(x, w):
            return grouped_conv_taps(x, w, stride, dilate, pad, groups, c_axis, differentiable=ctx.is_train)
        y = lax.platform_dependent(x, w, cpu=taps, default=native)
    else:
        y = native(x, w)
    if b is not None:
        if tuple(b.shape) != (nf,):
            fail(f"bias has shape {tuple(b.shape)}, expected {(nf,)}")
        y = y + b.astype(y.dtype).reshape(channel_shape(y.ndim, c_axis))
    return y


register(Op(
    "Convolution", _conv_lower, aliases=("_npx_convolution",),
    inputs=("data", "weight", optional_input("bias", lambda p: not p["no_bias"])),
    attrs=CONVOLUTION_ATTRS,
    infer_inputs=_conv_infer, infer_backward=_conv_backward, family="nn",
    doc="N-D convolution (1 to 3 spatial axes). Weight (num_filter, C/num_group, *kernel) for NC* "
        "layouts, (num_filter, *kernel, C/num_group) for channel-last ones."))


# -- Pooling -----------------------------------------------------------------------
def _pool_out_size(size: int, k: int, s: int, pad: int, convention: str) -> int:
    if convention == "valid":
        return (size + 2 * pad - k) // s + 1
    if convention == "full":
        return int(math.ceil((size + 2 * pad - k) / s)) + 1
    return int(math.ceil((size + 2 * pad) / s))  # 'same'


def _window_counts(size: int, out: int, k: int, s: int, pad: int, include_pad: bool) -> np.ndarray:
    """Per output position: the size of the window clipped to the (padded or real) input."""
    lo, hi = (-pad, size + pad) if include_pad else (0, size)
    start = np.arange(out) * s - pad
    return (np.minimum(start + k, hi) - np.maximum(start, lo)).astype(np.float64)


def _lp_root(p_value: int) -> Callable:
    return {1: lambda v: v, 2: jnp.sqrt, 3: jnp.cbrt}.get(p_value, lambda v: v ** (1.0 / p_value))


def _pool_lower(ctx, p, x):
    layout = spatial_layout(p["layout"], x.ndim)
    axes = _spatial_axes(layout)
    sizes = [x.shape[a] for a in axes]
    n = len(axes)
    if p["global_pool"]:
        kernel, stride, pad, convention = tuple(sizes), (1,) * n, (0,) * n, "valid"
    else:
        if len(p["kernel"]) != n:
            fail(f"kernel {p['kernel']} has {len(p['kernel'])} entries but the data has {n} spatial axes "
                 f"(give kernel, or global_pool=True)")
        kernel, convention = tuple(p["kernel"]), p["pooling_convention"]
        # MXNet's Pooling reads the leading entries of a longer stride or pad (pad=(0, 0, 0) in 1-D)
        stride = spatial_tuple(tuple(p["stride"])[:n], n, 1, "stride")
        pad = spatial_tuple(tuple(p["pad"])[:n], n, 0, "pad")
        if convention == "same" and (n != 1 or any(pad)):
            fail("pooling_convention='same' supports 1-D pooling without pad only (as in MXNet)")
        for size, k, q in zip(sizes, kernel, pad):
            if k < 1 or k > size + 2 * q:
                fail(f"kernel {kernel} exceeds the input {tuple(sizes)} padded by {pad}")
    outs = [_pool_out_size(sz, k, s, q, convention) for sz, k, s, q in zip(sizes, kernel, stride, pad)]
    # padding below is pad; above it is whatever the last window needs (the 'full' overhang)
    padding = [(0, 0)] * x.ndim
    window, strides = [1] * x.ndim, [1] * x.ndim
    for a, sz, k, s, q, o in zip(axes, sizes, kernel, stride, pad, outs):
        padding[a] = (q, max((o - 1) * s + k - sz - q, 0))
        window[a], strides[a] = k, s
    kind = p["pool_type"]
    if kind == "max":
        y = lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, window, strides, padding)
        return y, y  # MXNet's (oneDNN-built) max pooling has a hidden second output, its workspace
    if kind == "lp":
        if p["p_value"] is None:
            fail("pool_type='lp' needs p_value")
        pv = p["p_value"]
        summed = lax.reduce_window(x ** pv, np.array(0, x.dtype), lax.add, window, strides, padding)
        return _lp_root(pv)(summed)
    summed = lax.reduce_window(x, np.array(0, x.dtype), lax.add, window, strides, padding)
    if kind == "sum":
        return summed
    include = True if p["count_include_pad"] is None else p["count_include_pad"]
    divisor = np.ones([1] * x.ndim)
    for a, sz, k, s, q, o in zip(axes, sizes, kernel, stride, pad, outs):
        shape = [1] * x.ndim
        shape[a] = o
        divisor = divisor * _window_counts(sz, o, k, s, q, include).reshape(shape)
    return summed / jnp.asarray(np.maximum(divisor, 1), summed.dtype)


register(Op(
    "Pooling", _pool_lower, aliases=("_npx_pooling",),
    attrs=(attr("kernel", Shape(), (), "window size: (w,), (h, w) or (d, h, w)"),
           attr("pool_type", Enum(("avg", "lp", "max", "sum")), "max", "the reduction"),
           attr("global_pool", Bool(), False, "pool over all spatial positions (ignores kernel, stride, pad)"),
           attr("cudnn_off", Bool(), False, "(MXNet: turn cuDNN off; ignored)"),
           attr("pooling_convention", Enum(("full", "same", "valid")), "valid",
                "output size: floor ('valid'), ceil ('full') or ceil(in/stride) ('same', 1-D only)"),
           attr("stride", Shape(), (), "stride per spatial axis; () means 1"),
           attr("pad", Shape(), (), "padding on both sides per spatial axis; () means 0"),
           attr("p_value", Optional(Int(min=1)), None, "p of Lp pooling"),
           attr("count_include_pad", Optional(Bool()), None,
                "avg: divide by the window clipped to the padded input (None/True) or by the count "
                "of real elements (False)"),
           attr("layout", Optional(Enum(_LAYOUTS)), None, "data layout; None means NCW/NCHW/NCDHW")),
    num_outputs=lambda p: 2 if p["pool_type"] == "max" else 1, num_visible_outputs=1,
    family="nn",
    doc="Max, average, sum or Lp pooling over 1 to 3 spatial axes, with MXNet's output-size conventions."))


# -- Dropout -----------------------------------------------------------------------
def _dropout_lower(ctx, p, x):
    rate = p["p"]
    if not (ctx.is_train or p["mode"] == "always") or rate == 0:
        return x, jnp.ones_like(x)
    mask_shape = list(x.shape)
    for a in p["axes"]:
        mask_shape[normalize_axis(a, x.ndim, "dropout axis")] = 1
    if rate >= 1:   # MXNet keeps nothing and divides by 1 - p = 0: NaN outputs and gradients
        mask = jnp.full(mask_shape, jnp.nan, x.dtype)
    else:
        key = ctx.rng()
        keep = flat_draw(lambda s: jax.random.bernoulli(key, jnp.float32(1.0 - rate), s), mask_shape)
        mask = keep.astype(x.dtype) / jnp.asarray(1.0 - rate, x.dtype)
    mask = jnp.broadcast_to(mask, x.shape)
    return x * mask, mask


register(Op(
    "Dropout", _dropout_lower, aliases=("_npx_dropout",),
    attrs=(attr("p", Float(), 0.5, "the fraction of inputs set to zero"),
           attr("mode", Enum(("always", "training")), "training",
                "'training': only in training mode; 'always': also at inference"),
           attr("axes", Shape(), (), "axes along which one mask value is shared (variational dropout)"),
           attr("cudnn_off", Optional(Bool()), False, "(MXNet: turn cuDNN off; ignored)")),
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output"], random=lambda p: p["p"] > 0, family="nn",
    doc="Inverted dropout: zero a fraction p of the inputs, scale the rest by 1/(1-p); "
        "the identity at inference unless mode='always'. Hidden second output: the scaled mask."))


# -- Embedding ---------------------------------------------------------------------
def _embedding_infer(p, shapes):
    out = list(shapes)
    out[1] = (p["input_dim"], p["output_dim"])
    return out


def _embedding_dtype(p, dtypes):
    data = dtypes[0] if dtypes[0] is not None else np.dtype(np.float32)
    weight = dtypes[1] if dtypes[1] is not None else canonical_dtype(p["dtype"])
    return [data, weight], [weight]


def _embedding_lower(ctx, p, data, weight):
    expected = (p["input_dim"], p["output_dim"])
    if tuple(weight.shape) != expected:
        fail(f"weight has shape {tuple(weight.shape)}, expected {expected} (input_dim, output_dim)")
    idx = lax.stop_gradient(data).astype(jnp.int32)
    return jnp.take(weight, idx, axis=0, mode="clip")


register(Op(
    "Embedding", _embedding_lower, aliases=("_npx_embedding",), inputs=("data", "weight"),
    attrs=(attr("input_dim", Int(min=1), doc="vocabulary size (rows of the weight)"),
           attr("output_dim", Int(min=1), doc="embedding size (columns of the weight)"),
           attr("dtype", DType(), "float32", "dtype of the weight and the output"),
           attr("sparse_grad", Bool(), False, "(MXNet: row-sparse weight gradient; computed dense here)")),
    infer_inputs=_embedding_infer, infer_dtype=_embedding_dtype, family="nn",
    doc="Row lookup: out[..., :] = weight[int(data[...]), :]. Indices are clipped to "
        "[0, input_dim - 1] as MXNet does; the indices get no gradient."))


# -- LeakyReLU ---------------------------------------------------------------------
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


def _elu(x: Any, alpha: Any) -> Any:
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def _gelu_erf(x: Any) -> Any:
    return 0.5 * x * (1 + erf(x / math.sqrt(2.0)))


def prelu_gamma_shape(gamma_shape: tuple, data_shape: tuple) -> tuple | None:
    """MXNet's broadcast of prelu's gamma: its dims align from the right with the data's axes 1 and 0.

    A (C,) gamma is one slope per channel, an (N, C) gamma one per example and channel; None if
    gamma does not fit.

        >>> prelu_gamma_shape((4,), (3, 4, 5, 5)), prelu_gamma_shape((3, 4), (3, 4, 5)), prelu_gamma_shape((1,), (2, 3))
        ((1, 4, 1, 1), (3, 4, 1), (1, 1))
    """
    out, s = [1] * len(data_shape), len(gamma_shape) - 1
    for i in range(min(len(data_shape), 2) - 1, -1, -1):
        if s >= 0 and gamma_shape[s] in (data_shape[i], 1):
            out[i] = gamma_shape[s]
            s -= 1
    return tuple(out) if s == -1 else None


def _prelu_slope(x: Any, gamma: Any) -> Any:
    shape = prelu_gamma_shape(tuple(gamma.shape), tuple(x.shape))
    if shape is None:
        fail(f"gamma has shape {tuple(gamma.shape)}, expected ({x.shape[1] if x.ndim >= 2 else 1},) "
             f"(one slope per channel on axis 1), a single value, or one broadcast to the data's first two axes")
    return gamma.astype(x.dtype).reshape(shape)


def _leaky_lower(ctx, p, x, gamma=None):
    kind = p["act_type"]
    if kind == "leaky":
        return jnp.where(x > 0, x, x * jnp.asarray(p["slope"], x.dtype))
    if kind == "prelu":
        return jnp.where(x > 0, x, x * _prelu_slope(x, gamma))
    if kind == "elu":
        return _elu(x, jnp.asarray(p["slope"], x.dtype))
    if kind == "selu":
        return (_SELU_LAMBDA * _elu(x, jnp.asarray(_SELU_ALPHA, x.dtype))).astype(x.dtype)
    if kind == "gelu":
        return _gelu_erf(x).astype(x.dtype)
    lower, upper = p["lower_bound"], p["upper_bound"]  # rrelu
    if ctx.is_train:
        key = ctx.rng()
        slope = flat_draw(lambda s: jax.random.uniform(key, s, x.dtype, lower, upper), x.shape)
    else:
        slope = jnp.full(x.shape, (lower + upper) / 2, x.dtype)
    return jnp.where(x > 0, x, x * slope), slope


def _leaky_infer(p, shapes):
    out = list(shapes)
    if p["act_type"] == "prelu" and shapes[0] is not None and len(shapes[0]) >= 2 and shapes[0][1] > 0:
        if out[1] is None:
            out[1] = (shapes[0][1],)
    return out


register(Op(
    "LeakyReLU", _leaky_lower, aliases=("_npx_leaky_relu",),
    inputs=("data", optional_input("gamma", lambda p: p["act_type"] == "prelu")),
    attrs=(attr("act_type", Enum(("elu", "gelu", "leaky", "prelu", "rrelu", "selu")), "leaky",
                "the activation"),
           attr("slope", Float(), 0.25, "slope for x < 0 (leaky), or alpha of elu"),
           attr("lower_bound", Float(), 0.125, "rrelu: lowest random slope"),
           attr("upper_bound", Float(), 0.334, "rrelu: highest random slope")),
    num_outputs=lambda p: 2 if p["act_type"] == "rrelu" else 1, num_visible_outputs=1,
    output_names=lambda p: ["output"],
    input_init=lambda p: {"gamma": '["Constant", {"value": 0.25}]'} if p["act_type"] == "prelu" else {},
    infer_inputs=_leaky_infer, random=lambda p: p["act_type"] == "rrelu", family="nn",
    doc="Leaky ReLU family: leaky, prelu (learned per-channel slope gamma on axis 1), elu, selu, "
        "gelu (exact erf form), rrelu (random slope in training, (lower+upper)/2 at inference)."))


# -- softmax, log_softmax, SoftmaxActivation -----------------------------------------
def _compute_dtype(x: Any) -> Any:
    return jnp.float32 if x.dtype in (jnp.float16, jnp.bfloat16) else x.dtype


def _length_softmax(x: Any, length: Any, axis: int) -> Any:
    """Softmax over the first ``length`` positions along ``axis`` (length: x's shape without axis); 0 elsewhere."""
    want = x.shape[:axis] + x.shape[axis + 1:]
    if tuple(length.shape) != want:
        fail(f"length must have the data's shape without axis {axis}, {want}, got {tuple(length.shape)}")
    pos = lax.broadcasted_iota(jnp.int32, x.shape, axis)
    keep = pos < jnp.expand_dims(lax.stop_gradient(length).astype(jnp.int32), axis)
    top = jnp.max(jnp.where(keep, x, -jnp.inf), axis=axis, keepdims=True)
    e = jnp.where(keep, jnp.exp(x - jnp.where(jnp.isfinite(top), top, 0)), 0)
    total = jnp.sum(e, axis=axis, keepdims=True)
    return e / jnp.where(total > 0, total, 1)


def _softmax_family(fn: Callable, negate: bool = False) -> Callable:
    """softmax/log_softmax (and softmin: ``negate``, softmax of -x/t) with MXNet's attributes."""
    def lower(ctx, p, x, length=None):
        if p["use_length"] and (fn is not jax.nn.softmax or negate):
            raise AttributeValueError("use_length=True is softmax's only (MXNet's log_softmax and softmin "
                                      "take no length)")
        axis = normalize_axis(p["axis"], x.ndim)
        xf = x.astype(_compute_dtype(x))
        if negate:
            xf = -xf
        if p["temperature"] is not None:
            xf = xf / jnp.asarray(p["temperature"], xf.dtype)
        out_dtype = x.dtype if p["dtype"] is None else canonical_dtype(p["dtype"])
        if p["use_length"]:
            return _length_softmax(xf, length, axis).astype(out_dtype)
        return fn(xf, axis=axis).astype(out_dtype)
    return lower


def _softmax_infer(p, shapes):
    """use_length: the length input has the data's shape without the softmax axis."""
    out = list(shapes)
    data = shapes[0]
    if len(shapes) == 2 and data is not None and shapes[1] is None and -len(data) <= p["axis"] < len(data):
        axis = p["axis"] % len(data)
        out[1] = tuple(data[:axis]) + tuple(data[axis + 1:])
    return out


_SOFTMAX_ATTRS = (
    attr("axis", Int(), -1, "the axis to normalize over"),
    attr("temperature", Optional(Float()), None, "divide the input by this first"),
    attr("dtype", Optional(Enum(("float16", "float32", "float64"))), None, "output dtype; None: the input's"),
    attr("use_length", Optional(Bool()), False, "softmax only: positions at or beyond the length input "
         "(the data's shape without axis) get 0"))

for _name, _fn, _negate, _aliases, _doc in (
        ("softmax", jax.nn.softmax, False, ("_npx_softmax",), "exp(x/t) / sum(exp(x/t)) along axis"),
        ("log_softmax", jax.nn.log_softmax, False, ("_npx_log_softmax",), "log(softmax(x/t)) along axis"),
        ("softmin", jax.nn.softmax, True, (), "exp(-x/t) / sum(exp(-x/t)) along axis")):
    register(Op(_name, _softmax_family(_fn, _negate), aliases=_aliases,
                inputs=("data", optional_input("length", lambda p: bool(p["use_length"]))),
                attrs=_SOFTMAX_ATTRS, infer_inputs=_softmax_infer, family="nn", doc=_doc + "."))


def _softmax_activation_lower(ctx, p, x):
    xf = x.astype(_compute_dtype(x))
    if p["mode"] == "channel":
        if x.ndim < 2:
            fail("mode='channel' needs data of at least 2 dimensions (N, C, ...)")
        return jax.nn.softmax(xf, axis=1).astype(x.dtype)
    flat = xf.reshape(x.shape[0], -1) if x.ndim > 1 else xf
    return jax.nn.softmax(flat, axis=-1).reshape(x.shape).astype(x.dtype)


register(Op(
    "SoftmaxActivation", _softmax_activation_lower, unnamed_inputs=True,
    attrs=(attr("mode", Enum(("channel", "instance")), "instance",
                "'instance': softmax over all but the first axis; 'channel': over axis 1"),),
    family="nn", doc="Softmax over each instance (flattened) or over the channel axis."))


# -- Deconvolution ---------------------------------------------------------------------
def _deconv_geometry(p, in_spatial: Sequence[int]):
    """(stride, dilate, pad, adj) of a transposed convolution; target_shape overrides pad and adj."""
    n = len(p["kernel"])
    if n != len(in_spatial):
        fail(f"kernel {p['kernel']} has {n} entries but the data has {len(in_spatial)} spatial axes")
    stride = spatial_tuple(p["stride"], n, 1, "stride")
    dilate = spatial_tuple(p["dilate"], n, 1, "dilate")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilate) or any(k < 1 for k in p["kernel"]):
        fail(f"kernel {p['kernel']}, stride {stride} and dilate {dilate} must be positive")
    target = tuple(p["target_shape"])
    if any(t != 0 for t in target):
        target = spatial_tuple(target, n, 0, "target_shape")
        pad, adj = [], []
        for size, k, s, d, t in zip(in_spatial, p["kernel"], stride, dilate, target):
            total = s * (size - 1) + d * (k - 1) + 1 - t
            if total < 0:
                fail(f"target_shape {target} is too big for input {tuple(in_spatial)}")
            pad.append((total + 1) // 2)
            adj.append(total % 2)
        return stride, dilate, tuple(pad), tuple(adj)
    return stride, dilate, spatial_tuple(p["pad"], n, 0, "pad"), spatial_tuple(p["adj"], n, 0, "adj")


def _deconv_channel_first(p, ndim: int) -> str:
    layout = spatial_layout(p["layout"], ndim)
    if layout.index("C") != 1:
        fail(f"Deconvolution supports channel-first layouts (NCW, NCHW, NCDHW) only, got {layout} "
             f"(MXNet runs the channel-last ones on GPU only)")
    return layout


def _deconv_infer(p, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None and len(data) >= 2:   # channels unknown: (0, F/groups, *kernel) as MXNet
        out[1] = (max(data[1], 0), p["num_filter"] // p["num_group"]) + tuple(p["kernel"])
    if len(out) > 2:
        out[2] = (p["num_filter"],)
    return out


def deconvolution(x: Any, w: Any, p: Mapping[str, Any]) -> Any:
    """Transposed convolution of NC* data ``x`` with weight ``w`` of shape (C, F/groups, *kernel).

    It is the gradient of the matching convolution: a convolution of ``x`` dilated by the
    stride with the spatially flipped, in/out-swapped kernel.

        >>> import numpy as np
        >>> p = dict(kernel=(2,), stride=(2,), dilate=(), pad=(), adj=(), target_shape=(),
        ...          num_filter=1, num_group=1)
        >>> deconvolution(np.ones((1, 1, 2), np.float32), np.ones((1, 1, 2), np.float32), p).tolist()
        [[[1.0, 1.0, 1.0, 1.0]]]
    """
    layout = "NC" + _SPATIAL.get(x.ndim - 2, "")
    n = x.ndim - 2
    stride, dilate, pad, adj = _deconv_geometry(p, x.shape[2:])
    channels, groups, nf = x.shape[1], p["num_group"], p["num_filter"]
    if channels % groups or nf % groups:
        fail(f"num_group={groups} must divide the input channels ({channels}) and num_filter ({nf})")
    expected = (channels, nf // groups) + tuple(p["kernel"])
    if tuple(w.shape) != expected:
        fail(f"weight has shape {tuple(w.shape)}, expected {expected} (in channels, num_filter/num_group, *kernel)")
    k = tuple(p["kernel"])
    wg = w.astype(x.dtype).reshape((groups, channels // groups, nf // groups) + k)
    wt = jnp.swapaxes(wg, 1, 2).reshape((nf, channels // groups) + k)
    wt = jnp.flip(wt, axis=tuple(range(2, 2 + n)))
    lows = [d * (kk - 1) - q for kk, d, q in zip(k, dilate, pad)]
    highs = [lo + a for lo, a in zip(lows, adj)]
    y = lax.conv_general_dilated(
        x, wt, window_strides=(1,) * n, padding=[(max(lo, 0), max(hi, 0)) for lo, hi in zip(lows, highs)],
        lhs_dilation=stride, rhs_dilation=dilate, dimension_numbers=(layout, "OI" + layout[2:], layout),
        feature_group_count=groups)
    if any(lo < 0 for lo in lows) or any(hi < 0 for hi in highs):  # padding beyond the kernel crops
        index = [slice(None), slice(None)] + [slice(-min(lo, 0), y.shape[2 + i] + min(hi, 0))
                                              for i, (lo, hi) in enumerate(zip(lows, highs))]
        y = y[tuple(index)]
    return y


def _deconv_lower(ctx, p, x, w, b=None):
    _deconv_channel_first(p, x.ndim)
    y = deconvolution(x, w, p)
    if b is not None:
        if tuple(b.shape) != (p["num_filter"],):
            fail(f"bias has shape {tuple(b.shape)}, expected {(p['num_filter'],)}")
        y = y + b.astype(y.dtype).reshape(channel_shape(y.ndim, 1))
    return y


register(Op(
    "Deconvolution", _deconv_lower, aliases=("_npx_deconvolution",),
    inputs=("data", "weight", optional_input("bias", lambda p: not p["no_bias"])),
    attrs=(attr("kernel", Shape(), doc="window size: (w,), (h, w) or (d, h, w)"),
           attr("stride", Shape(), (), "stride of the matching convolution; () means 1"),
           attr("dilate", Shape(), (), "dilation per spatial axis; () means 1"),
           attr("pad", Shape(), (), "padding of the matching convolution; () means 0; ignored with target_shape"),
           attr("adj", Shape(), (), "extra size added at the end of each spatial axis; ignored with target_shape"),
           attr("target_shape", Shape(), (), "output spatial size; sets pad and adj when not all 0"),
           attr("num_filter", Int(min=1), doc="number of output channels"),
           attr("num_group", Int(min=1), 1, "number of groups"),
           attr("workspace", Int(min=0), 512, "(MXNet: scratch space in MB; ignored)"),
           attr("no_bias", Bool(), True, "leave out the bias (MXNet's default is True here)"),
           attr("cudnn_tune", Optional(Enum(("fastest", "limited_workspace", "off"))), None,
                "(MXNet: cuDNN algorithm choice; ignored)"),
           attr("cudnn_off", Bool(), False, "(MXNet: turn cuDNN off; ignored)"),
           attr("layout", Optional(Enum(("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC"))), None,
                "data layout; None means NCW/NCHW/NCDHW (channel-last ones are refused)")),
    infer_inputs=_deconv_infer, family="nn",
    doc="Transposed (fractionally strided) convolution: out = stride*(in-1) + dilate*(k-1) + 1 "
        "- 2*pad + adj per spatial axis. Weight (C, num_filter/num_group, *kernel)."))


# -- UpSampling ------------------------------------------------------------------------
def _bilinear_deconv_params(p) -> dict:
    """MXNet's bilinear UpSampling: a depthwise Deconvolution with a (2s - s%2) kernel."""
    s = p["scale"]
    k = 2 * s - s % 2
    q = int(math.ceil((s - 1) / 2.0))
    return dict(kernel=(k, k), stride=(s, s), dilate=(1, 1), pad=(q, q), adj=(), target_shape=(),
                num_filter=p["num_filter"], num_group=p["num_filter"])


def _nearest(x: Any, factor: int) -> Any:
    return jnp.repeat(jnp.repeat(x, factor, axis=2), factor, axis=3)


def _upsampling_lower(ctx, p, *xs):
    for i, x in enumerate(xs):
        if x.ndim != 4:
            fail(f"input {i} must be 4-D (N, C, H, W), got {x.ndim} dimension(s)")
    if p["sample_type"] == "bilinear":
        x, w = xs
        if p["num_filter"] != x.shape[1]:
            fail(f"bilinear UpSampling needs num_filter equal to the channels ({x.shape[1]}), "
                 f"got num_filter={p['num_filter']}")
        return deconvolution(x, w, _bilinear_deconv_params(p))
    out_h, out_w = xs[0].shape[2] * p["scale"], xs[0].shape[3] * p["scale"]
    ups = []
    for i, x in enumerate(xs):
        factor = out_h // x.shape[2]
        if factor * x.shape[2] != out_h or factor * x.shape[3] != out_w:
            fail(f"input {i} of spatial size {tuple(x.shape[2:])} does not scale by an integer to "
                 f"the output size {(out_h, out_w)}")
        ups.append(_nearest(x, factor))
    if len(ups) == 1:
        return ups[0]
    if p["multi_input_mode"] == "sum":
        if any(u.shape != ups[0].shape for u in ups):
            fail(f"multi_input_mode='sum' needs inputs of equal channels, got {[u.shape[1] for u in ups]}")
        return sum(ups[1:], ups[0])
    return jnp.concatenate(ups, axis=1)


def _upsampling_infer(p, shapes):
    out = list(shapes)
    if p["sample_type"] == "bilinear" and shapes[0] is not None and len(shapes[0]) == 4 and shapes[0][1] > 0:
        k = _bilinear_deconv_params(p)["kernel"]
        out[1] = (shapes[0][1], 1) + k
    return out


register(Op(
    "UpSampling", _upsampling_lower,
    inputs=("data", "weight"), variadic="num_args", variadic_if=lambda p: p["sample_type"] == "nearest",
    attrs=(attr("scale", Int(min=1), doc="the upsampling factor"),
           attr("num_filter", Int(min=0), 0, "bilinear: the number of channels (input = output)"),
           attr("sample_type", Enum(("bilinear", "nearest")), doc="nearest or bilinear"),
           attr("multi_input_mode", Enum(("concat", "sum")), "concat",
                "nearest with several inputs: concatenate the channels or sum"),
           attr("num_args", Int(min=1), doc="number of inputs (nearest); 2 for bilinear (data and weight)"),
           attr("workspace", Int(min=0), 512, "(MXNet: scratch space in MB; ignored)")),
    infer_inputs=_upsampling_infer, family="nn",
    doc="Upsample NCHW data by an integer scale. nearest: repeat pixels; several inputs are "
        "upsampled to scale * the first one's size and concatenated (or summed). bilinear: a "
        "depthwise Deconvolution (kernel 2*scale - scale%2, stride scale, pad ceil((scale-1)/2)) "
        "with the given weight (C, 1, k, k), as MXNet does (initialize it with a bilinear kernel)."))


# -- Pad -------------------------------------------------------------------------------
_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect"}


def _pad_lower(ctx, p, x):
    widths = p["pad_width"]
    if len(widths) != 2 * x.ndim:
        fail(f"pad_width {widths} has {len(widths)} entries, expected {2 * x.ndim} (before, after per axis)")
    pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(x.ndim)]
    if p["mode"] == "reflect":
        for axis, (lo, hi) in enumerate(pairs):
            if max(lo, hi) >= x.shape[axis]:
                fail(f"reflect padding {(lo, hi)} on axis {axis} must be smaller than its size {x.shape[axis]}")
    if p["mode"] == "constant":
        return jnp.pad(x, pairs, mode="constant", constant_values=jnp.asarray(p["constant_value"], x.dtype))
    return jnp.pad(x, pairs, mode=_PAD_MODES[p["mode"]])


register(Op(
    "Pad", _pad_lower, aliases=("pad",),
    attrs=(attr("mode", Enum(tuple(_PAD_MODES)), doc="constant (constant_value), edge (repeat the border) "
                                                      "or reflect (mirror without repeating the border)"),
           attr("pad_width", Shape(), doc="(before, after) for every axis, flattened: 2 * ndim entries"),
           attr("constant_value", Float(), 0.0, "the value of constant padding")),
    family="nn", doc="Pad an array: constant, edge or reflect padding per axis."))
