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
from .attrs import Bool, Float, Int, Optional, attr
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


def _bn_lower(ctx, p, x, gamma, beta, moving_mean, moving_var):
    axis = normalize_axis(p["axis"], x.ndim)
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
    outs = (y.astype(x.dtype), mean.astype(param_dtype), invstd.astype(param_dtype))
    return outs, (new_mm.astype(moving_mean.dtype), new_mv.astype(moving_var.dtype))


register(Op(
    "BatchNorm", _bn_lower, aliases=("_npx_batch_norm",),
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"), aux=("moving_mean", "moving_var"),
    attrs=(attr("eps", Float(), 1e-3, "added to the variance"),
           attr("momentum", Float(), 0.9, "moving = momentum * moving + (1 - momentum) * batch"),
           attr("fix_gamma", Bool(), True, "use gamma = 1 (its gradient is 0)"),
           attr("use_global_stats", Bool(), False, "normalize with the moving statistics in training too"),
           attr("output_mean_var", Bool(), False, "also output the mean and the inverse std"),
           attr("axis", Int(), 1, "the channel axis"),
           attr("cudnn_off", Bool(), False, "(MXNet: turn cuDNN off; ignored)"),
           attr("min_calib_range", Optional(Float()), None, "(MXNet: quantization calibration; ignored)"),
           attr("max_calib_range", Optional(Float()), None, "(MXNet: quantization calibration; ignored)")),
    num_outputs=3, num_visible_outputs=lambda p: 3 if p["output_mean_var"] else 1,
    output_names=lambda p: ["output", "mean", "var"] if p["output_mean_var"] else ["output"],
    input_init={"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'},
    infer_inputs=_per_axis_infer, infer_dtype=_bn_dtype, family="norm",
    doc="Batch normalization over every axis but `axis`: batch statistics (biased variance) in "
        "training, which also update the moving statistics; the moving statistics otherwise. "
        "Outputs: the result, the mean and the inverse std (1/sqrt(var + eps)). MXNet also "
        "overwrites the gamma argument with ones in a training forward when fix_gamma=True; "
        "xgraph leaves the argument as it is (the result is the same)."))


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
