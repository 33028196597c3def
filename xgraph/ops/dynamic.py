"""Ops whose output shape depends on input values: ``_contrib_boolean_mask``.

Such an op cannot be part of a compiled graph (XLA needs every shape before
it runs), so it only runs imperatively on concrete arrays, through the
registry's ``eager`` rule: ``mx.nd.contrib.boolean_mask(data, index)`` reads
the nonzero positions of ``index`` on the host, then gathers them with a
function of fixed shapes that autograd records (the data's gradient is the
output's scattered back; the index gets none).  In a symbol graph the
lowering raises :class:`~xgraph.errors.UnsupportedFeatureError` naming the
node and saying the output shape is data-dependent.

    >>> import xgraph as mx
    >>> data = mx.nd.array([[1, 2], [3, 4], [5, 6]])
    >>> mx.nd.contrib.boolean_mask(data, mx.nd.array([0, 1, 1])).asnumpy().tolist()
    [[3.0, 4.0], [5.0, 6.0]]
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import UnsupportedFeatureError
from .attrs import Int, attr
from .common import fail, normalize_axis
from .registry import Op, register


def _check_mask(p: Mapping[str, Any], data: Any, index: Any) -> int:
    axis = normalize_axis(p["axis"], data.ndim)
    if index.ndim != 1 or index.shape[0] != data.shape[axis]:
        fail(f"boolean_mask needs a 1-D index as long as axis {axis} of the data ({data.shape[axis]}), "
             f"got index of shape {tuple(index.shape)}")
    return axis


def _boolean_mask_eager(p: Mapping[str, Any], data: jax.Array, index: jax.Array) -> Callable[..., tuple]:
    axis = _check_mask(p, data, index)
    keep = jnp.asarray(np.flatnonzero(np.asarray(index)), jnp.int32)

    def run(data: jax.Array, index: jax.Array) -> tuple:
        return (jnp.take(data, keep, axis=axis),)
    return run


def _boolean_mask_lower(ctx, p, data, index):
    _check_mask(p, data, index)
    raise UnsupportedFeatureError(
        "the output shape of boolean_mask is data-dependent (it depends on the values of index), so it cannot "
        "be part of a symbol graph; call mx.nd.contrib.boolean_mask on concrete arrays instead")


register(Op(
    "_contrib_boolean_mask", _boolean_mask_lower, aliases=("_npi_boolean_mask",), inputs=("data", "index"),
    attrs=(attr("axis", Int(), 0, "the axis selected along"),),
    eager=_boolean_mask_eager, family="indexing",
    doc="The slices of data along axis where index (1-D, as long as that axis) is nonzero. The output "
        "shape depends on index's values: imperative calls only (mx.nd.contrib.boolean_mask, recorded by "
        "autograd); a symbol graph refuses it."))
