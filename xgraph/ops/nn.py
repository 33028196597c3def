"""Neural-network layers: FullyConnected, Activation (more layers join this family).

    >>> import xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=8, name='fc')
    >>> net.infer_shape(x=(2, 3, 4))[0]
    [(2, 3, 4), (8, 12), (8,)]
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .attrs import Bool, Enum, Int, attr
from .common import fail
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
    if len(out) > 2:
        out[2] = (p["num_hidden"],)
    return out


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
    infer_inputs=_fc_infer, family="nn",
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


def _act_lower(ctx, p, x):
    return ACTIVATIONS[p["act_type"]](x).astype(x.dtype)


register(Op(
    "Activation", _act_lower,
    attrs=(attr("act_type", Enum(tuple(ACTIVATIONS)), doc="the activation function"),),
    family="nn", doc="An elementwise activation: relu, sigmoid, tanh, softrelu, softsign, log_sigmoid, mish."))
