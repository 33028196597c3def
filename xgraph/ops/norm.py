"""Normalization layers: BatchNorm and LayerNorm, with MXNet 1.9.1's attributes and outputs.

BatchNorm has three outputs (the normalized data, the mean and the inverse
standard deviation used, as MXNet's native kernel stores them), of which only
the first is visible unless ``output_mean_var=True``; its moving statistics are
auxiliary states that a training forward updates.  LayerNorm's hidden outputs
are the mean and the standard deviation.

    >>> import xgraph as mx
    >>> bn = mx.sym.BatchNorm(mx.sym.var('x'), name='bn')
    >>> bn.list_arguments(), bn.list_auxiliary_states(), bn.list_outputs()
    (['x', 'bn_gamma', 'bn_beta'], ['bn_moving_mean', 'bn_moving_var'], ['bn_output'])
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from ..dtypes import canonical
from .attrs import Bool, Enum, Float, Int, Optional, Str, attr
from .common import channel_shape, fail, normalize_axis
from .registry import Op, register

_HALF = (np.dtype(np.float16), canonical("bfloat16"))


def _acc_dtype(dtype: Any) -> Any:
    """The dtype statistics are computed in: float32 for half-precision data."""
    return jnp.float32 if np.dtype(dtype) in _HALF else dtype


def _per_axis_infer(p, shapes):
    """Every input after data is a vector as long as data's normalized axis."""
    out = list(shapes)
    data = shapes[0]
    if data is None:
        return out
    axis = normalize_axis(p["axis"], len(data))
    if data[axis] > 0:
        out[1:] = [(data[axis],)] * (len(out) - 1)
    return out


def _check_vectors(names: tuple[str, ...], arrays: tuple, size: int) -> None:
    for name, a in zip(names, arrays):
        if tuple(a.shape) != (size,):
            fail(f"{name} has shape {tuple(a.shape)}, expected {(size,)}")


# -- BatchNorm -------------------------------------------------------------------
def _bn_dtype(p, dtypes):
    """MXNet: parameters and statistics are float32 for float16 data, the data's dtype otherwise."""
    data = dtypes[0]
    if data is None:
        return list(dtypes), None
    param = np.dtype(_acc_dtype(data))
    return [data] + [d if d is not None else param for d in dtypes[1:]], [data, param, param]


def _bn_compute(ctx, p, axis, x, gamma, beta, moving_mean, moving_var):
    """The shared BatchNorm computation: (y, mean, var, invstd) in ``x``'s/the statistics' dtype, new moving stats."""
    axis = normalize_axis(axis, x.ndim)
    size = x.shape[axis]
    _check_vectors(("gamma", "beta", "moving_mean", "moving_var"), (gamma, beta, moving_mean, moving_var), size)
    acc = _acc_dtype(x.dtype)
    xf = x.astype(acc)
    reduce_axes = tuple(i for i in range(x.ndim) if i != axis)
    bshape = channel_shape(x.ndim, axis)
    mm, mv = moving_mean.astype(acc), moving_var.astype(acc)
    if ctx.is_train and not p["use_global_stats"]:
        mean = jnp.mean(xf, axis=reduce_axes)
        var = jnp.mean(jnp.square(xf - mean.reshape(bshape)), axis=reduce_axes)
        m = jnp.asarray(p["momentum"], acc)
        new_mm = mm * m + lax.stop_gradient(mean) * (1 - m)
        new_mv = mv * m + lax.stop_gradient(var) * (1 - m)
    else:
        mean, var, new_mm, new_mv = mm, mv, mm, mv
    invstd = lax.rsqrt(var + jnp.asarray(p["eps"], acc))
    scale = invstd if p["fix_gamma"] else invstd * gamma.astype(acc)
    y = (xf - mean.reshape(bshape)) * scale.reshape(bshape) + beta.astype(acc).reshape(bshape)
    param_dtype = moving_mean.dtype
    stats = tuple(a.astype(param_dtype) for a in (mean, var, invstd))
    return (y.astype(x.dtype),) + stats, (new_mm.astype(moving_mean.dtype), new_mv.astype(moving_var.dtype))


def _bn_lower(ctx, p, x, gamma, beta, moving_mean, moving_var):
    (y, mean, _var, invstd), new_aux = _bn_compute(ctx, p, p["axis"], x, gamma, beta, moving_mean, moving_var)
    return (y, mean, invstd), new_aux


def _bn_v1_lower(ctx, p, x, gamma, beta, moving_mean, moving_var):
    _bn_v1_check(x.shape)
    (y, mean, var, _invstd), new_aux = _bn_compute(ctx, p, 1, x, gamma, beta, moving_mean, moving_var)
    return (y, mean, var), new_aux


def _bn_v1_check(shape: tuple) -> None:
    if len(shape) < 2:
        fail(f"BatchNorm_v1 needs data of at least 2 dimensions (N, C, ...), got {tuple(shape)}")


def _bn_v1_infer(p, shapes):
    """The channels are on axis 1."""
    if shapes[0] is not None:
        _bn_v1_check(shapes[0])
    return _per_axis_infer({**p, "axis": 1}, shapes)


#: the attributes BatchNorm and BatchNorm_v1 share, in MXNet's parameter order
_BN_ATTRS = (attr("eps", Float(), 1e-3, "added to the variance"),
             attr("momentum", Float(), 0.9, "moving = momentum * moving + (1 - momentum) * batch"),
             attr("fix_gamma", Bool(), True, "use gamma = 1 (its gradient is 0)"),
             attr("use_global_stats", Bool(), False, "normalize with the moving statistics in training too"),
             attr("output_mean_var", Bool(), False, "also output the mean and the inverse std "
                                                          "(BatchNorm_v1: the variance)"))


def _batchnorm_op(name: str, lower: Any, attrs: tuple, infer_inputs: Any, doc: str, aliases: tuple = ()) -> Op:
    """A BatchNorm-shaped op: its five inputs, two aux states, three outputs (output, mean, var)."""
    return Op(
        name, lower, aliases=aliases,
        inputs=("data", "gamma", "beta", "moving_mean", "moving_var"), aux=("moving_mean", "moving_var"),
        attrs=attrs, num_outputs=3, num_visible_outputs=lambda p: 3 if p["output_mean_var"] else 1,
        output_names=lambda p: ["output", "mean", "var"] if p["output_mean_var"] else ["output"],
        input_init={"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'},
        infer_inputs=infer_inputs, infer_dtype=_bn_dtype, family="norm", doc=doc)


register(_batchnorm_op(
    "BatchNorm", _bn_lower, aliases=("_npx_batch_norm",),
    attrs=_BN_ATTRS + (
        attr("axis", Int(), 1, "the channel axis"),
        attr("cudnn_off", Bool(), False, "(MXNet: turn cuDNN off; ignored)"),
        attr("min_calib_range", Optional(Float()), None, "(MXNet: quantization calibration; ignored)"),
        attr("max_calib_range", Optional(Float()), None, "(MXNet: quantization calibration; ignored)")),
    infer_inputs=_per_axis_infer,
    doc="Batch normalization over every axis but `axis`: batch statistics (biased variance) in "
        "training, which also update the moving statistics; the moving statistics otherwise. "
        "Outputs: the result, the mean and the inverse std (1/sqrt(var + eps)). MXNet also "
        "overwrites the gamma argument with ones in a training forward when fix_gamma=True; "
        "xgraph leaves the argument as it is (the result is the same)."))

register(_batchnorm_op(
    "BatchNorm_v1", _bn_v1_lower, attrs=_BN_ATTRS,
    infer_inputs=_bn_v1_infer,
    doc="MXNet's legacy BatchNorm: BatchNorm with the channels on axis 1 (no axis, cudnn_off or "
        "calibration attributes); hidden outputs: the mean and the variance (not the inverse std). "
        "MXNet updates the moving statistics in the backward pass; xgraph, as for BatchNorm, in the "
        "training forward (the same values after a forward and backward)."))

register(_batchnorm_op(
    "_contrib_SyncBatchNorm", _bn_v1_lower,
    attrs=_BN_ATTRS + (attr("ndev", Int(), 1, "(MXNet: the number of devices to synchronize)"),
                       attr("key", Str(), "", "(MXNet: the name the devices synchronize under)")),
    infer_inputs=_bn_v1_infer,
    doc="MXNet's cross-device BatchNorm (channels on axis 1; hidden outputs: the mean and the "
        "variance). One XLA program computes over the whole batch even when it is sharded over a "
        "mesh, so its statistics are always the global batch's, and ndev and key have nothing to do."))

# -- LayerNorm -----------------------------------------------------------------------
def _ln_lower(ctx, p, x, gamma, beta):
    axis = normalize_axis(p["axis"], x.ndim)
    _check_vectors(("gamma", "beta"), (gamma, beta), x.shape[axis])
    acc = _acc_dtype(x.dtype)
    xf = x.astype(acc)
    mean = jnp.mean(xf, axis=axis, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axis=axis, keepdims=True)
    std = jnp.sqrt(var + jnp.asarray(p["eps"], acc))
    bshape = channel_shape(x.ndim, axis)
    y = (xf - mean) / std * gamma.astype(acc).reshape(bshape) + beta.astype(acc).reshape(bshape)
    return y.astype(x.dtype), mean.astype(x.dtype), std.astype(x.dtype)


register(Op(
    "LayerNorm", _ln_lower, aliases=("_npx_layer_norm",), inputs=("data", "gamma", "beta"),
    attrs=(attr("axis", Int(), -1, "the axis to normalize over"),
           attr("eps", Float(), 1e-5, "added to the variance"),
           attr("output_mean_var", Bool(), False, "also output the mean and the std")),
    num_outputs=3, num_visible_outputs=lambda p: 3 if p["output_mean_var"] else 1,
    output_names=lambda p: ["output", "mean", "std"] if p["output_mean_var"] else ["output"],
    infer_inputs=_per_axis_infer, family="norm",
    doc="(x - mean) / sqrt(var + eps) * gamma + beta over one axis (biased variance); hidden "
        "outputs: the mean and the std, with the normalized axis kept as size 1."))


# -- GroupNorm -----------------------------------------------------------------------
def _gn_infer(p, shapes):
    out = list(shapes)
    out[1:] = [(p["num_groups"],)] * (len(out) - 1)
    return out


def _gn_lower(ctx, p, x, gamma, beta):
    groups = p["num_groups"]
    if x.ndim < 3:
        fail(f"data must have at least 3 dimensions (N, C, ...), got {x.ndim}")
    n, c = x.shape[0], x.shape[1]
    if c % groups:
        fail(f"num_groups={groups} must divide the channels ({c})")
    acc = _acc_dtype(x.dtype)
    xg = x.astype(acc).reshape((n, groups, c // groups) + tuple(x.shape[2:]))
    axes = tuple(range(2, xg.ndim))
    mean = jnp.mean(xg, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xg - mean), axis=axes, keepdims=True)
    std = jnp.sqrt(var + jnp.asarray(p["eps"], acc))
    normed = (xg - mean) / std
    if tuple(gamma.shape) == (groups,) and tuple(beta.shape) == (groups,):
        gshape = (1, groups) + (1,) * (xg.ndim - 2)
        y = (normed * gamma.astype(acc).reshape(gshape) + beta.astype(acc).reshape(gshape)).reshape(x.shape)
    elif tuple(gamma.shape) == (c,) and tuple(beta.shape) == (c,):  # MXNet 2.x: per channel
        bshape = channel_shape(x.ndim, 1)
        y = normed.reshape(x.shape) * gamma.astype(acc).reshape(bshape) + beta.astype(acc).reshape(bshape)
    else:
        fail(f"gamma and beta have shapes {tuple(gamma.shape)} and {tuple(beta.shape)}, expected "
             f"{(groups,)} (one per group, as MXNet 1.x) or {(c,)} (one per channel)")
    return y.astype(x.dtype), mean.reshape(n, groups).astype(x.dtype), std.reshape(n, groups).astype(x.dtype)


register(Op(
    "GroupNorm", _gn_lower, inputs=("data", "gamma", "beta"),
    attrs=(attr("num_groups", Int(min=1), 1, "number of channel groups"),
           attr("eps", Float(), 1e-5, "added to the variance"),
           attr("output_mean_var", Bool(), False, "also output the mean and the std, shape (N, num_groups)")),
    num_outputs=3, num_visible_outputs=lambda p: 3 if p["output_mean_var"] else 1,
    output_names=lambda p: ["output", "mean", "std"] if p["output_mean_var"] else ["output"],
    infer_inputs=_gn_infer, family="norm",
    doc="Group normalization of (N, C, ...) data: statistics over each group of C/num_groups "
        "channels and all spatial positions (biased variance). As in MXNet 1.x, gamma and beta "
        "have one value per group (num_groups,); per-channel (C,) ones (MXNet 2.x) are accepted too."))


# -- InstanceNorm --------------------------------------------------------------------
def _in_infer(p, shapes):
    out = list(shapes)
    if shapes[0] is not None and len(shapes[0]) >= 2 and shapes[0][1] > 0:
        out[1:] = [(shapes[0][1],)] * (len(out) - 1)
    return out


def _in_lower(ctx, p, x, gamma, beta):
    if x.ndim < 3:
        fail(f"data must have at least 3 dimensions (N, C, ...), got {x.ndim}")
    _check_vectors(("gamma", "beta"), (gamma, beta), x.shape[1])
    acc = _acc_dtype(x.dtype)
    xf = x.astype(acc)
    axes = tuple(range(2, x.ndim))
    mean = jnp.mean(xf, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True)
    bshape = channel_shape(x.ndim, 1)
    y = (xf - mean) * lax.rsqrt(var + jnp.asarray(p["eps"], acc)) * gamma.astype(acc).reshape(bshape) \
        + beta.astype(acc).reshape(bshape)
    n, c = x.shape[:2]
    return y.astype(x.dtype), mean.reshape(n, c).astype(x.dtype), var.reshape(n, c).astype(x.dtype)


register(Op(
    "InstanceNorm", _in_lower, inputs=("data", "gamma", "beta"),
    attrs=(attr("eps", Float(), 1e-3, "added to the variance"),),
    num_outputs=3, num_visible_outputs=1, output_names=lambda p: ["output"],
    infer_inputs=_in_infer, family="norm",
    doc="Instance normalization of (N, C, ...) data: each sample's channel normalized over its "
        "spatial positions (biased variance), then scaled by gamma (C,) and shifted by beta (C,). "
        "Hidden outputs: the mean and the variance, shape (N, C)."))


# -- L2Normalization -------------------------------------------------------------------
def _l2_axes(mode: str, ndim: int) -> tuple[int, ...]:
    if mode == "instance":
        return tuple(range(1, ndim))
    if mode == "channel":
        return (1,)
    return tuple(range(2, ndim))  # spatial


def _l2_lower(ctx, p, x):
    min_ndim = 2 if p["mode"] == "instance" else 3
    if x.ndim < min_ndim:
        fail(f"mode='{p['mode']}' needs data of at least {min_ndim} dimensions, got {x.ndim}")
    acc = _acc_dtype(x.dtype)
    xf = x.astype(acc)
    axes = _l2_axes(p["mode"], x.ndim)
    norm = jnp.sqrt(jnp.sum(jnp.square(xf), axis=axes, keepdims=True) + jnp.asarray(p["eps"], acc))
    return (xf / norm).astype(x.dtype), jnp.squeeze(norm, axis=axes).astype(x.dtype)


register(Op(
    "L2Normalization", _l2_lower,
    attrs=(attr("eps", Float(), 1e-10, "added to the sum of squares"),
           attr("mode", Enum(("channel", "instance", "spatial")), "instance",
                "instance: over all but axis 0; channel: over axis 1; spatial: over axes 2 and up")),
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output"], family="norm",
    doc="x / sqrt(sum(x^2) + eps), the sum taken per instance, per position over the channels, "
        "or per channel over the spatial positions. Hidden output: the norm."))


# -- LRN -------------------------------------------------------------------------------
def _lrn_lower(ctx, p, x):
    if x.ndim < 3:
        fail(f"data must have at least 3 dimensions (N, C, ...), got {x.ndim}")
    n = p["nsize"]
    acc = _acc_dtype(x.dtype)
    xf = x.astype(acc)
    before = (n - 1) // 2
    window = (1, n) + (1,) * (x.ndim - 2)
    padding = [(0, 0), (before, n - 1 - before)] + [(0, 0)] * (x.ndim - 2)
    summed = lax.reduce_window(jnp.square(xf), np.array(0, acc), lax.add, window, (1,) * x.ndim, padding)
    scale = jnp.asarray(p["knorm"], acc) + jnp.asarray(p["alpha"] / n, acc) * summed
    return (xf * scale ** jnp.asarray(-p["beta"], acc)).astype(x.dtype), scale.astype(x.dtype)


register(Op(
    "LRN", _lrn_lower,
    attrs=(attr("alpha", Float(), 1e-4, "scale of the sum of squares"),
           attr("beta", Float(), 0.75, "exponent"),
           attr("knorm", Float(), 2.0, "additive constant"),
           attr("nsize", Int(min=1), doc="number of neighbouring channels summed (odd)")),
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output"], family="norm",
    doc="Local response normalization across channels: "
        "x / (knorm + alpha/nsize * sum of x^2 over the nsize channels around)^beta. "
        "Hidden output: the denominator before the power."))
