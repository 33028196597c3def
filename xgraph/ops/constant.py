"""``_constant``: a value known when the graph is built, stored in the graph itself.

Constant folding (:mod:`xgraph.passes.fold_constants`) replaces subgraphs that
depend on no variable by one ``_constant`` node.  The value lives in the
node's attributes in a form that symbol JSON round-trips exactly: the
little-endian bytes in base64, the dtype name and the shape.

    >>> import numpy as np
    >>> from xgraph.ops.constant import constant, constant_value
    >>> c = constant(np.arange(3, dtype=np.float32), name='c')
    >>> constant_value(c.entries[0].node).tolist()
    [0.0, 1.0, 2.0]
"""
from __future__ import annotations

import base64
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from ..dtypes import canonical
from .attrs import DType, Shape, Str, attr
from .registry import Op, register

CONSTANT_OP = "_constant"


def encode(value: Any) -> dict[str, Any]:
    """The ``_constant`` attributes (value, dtype, shape) that hold ``value``.

        >>> encode(np.ones(2, np.float16))['shape']
        (2,)
    """
    arr = np.asarray(value)
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False) if arr.dtype.byteorder == ">" else arr
    return {"value": base64.b64encode(np.ascontiguousarray(le).tobytes()).decode("ascii"),
            "dtype": arr.dtype.name, "shape": tuple(int(d) for d in arr.shape)}


def decode(params: Mapping[str, Any]) -> np.ndarray:
    """The array a ``_constant`` node's attributes hold (read-only).

        >>> decode(encode(np.array([[1, 2]], np.int32))).tolist()
        [[1, 2]]
    """
    dt = canonical(params["dtype"])
    raw = base64.b64decode(params["value"].encode("ascii"), validate=True)
    shape = tuple(params["shape"])
    arr = np.frombuffer(raw, dtype=dt.newbyteorder("<") if dt.itemsize > 1 else dt)
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"_constant holds {arr.size} element(s) but its shape {shape} needs "
                         f"{int(np.prod(shape, dtype=np.int64))}")
    return arr.astype(dt, copy=False).reshape(shape)


def _lower(ctx, p, *inputs):
    return jnp.asarray(decode(p))


register(Op(
    CONSTANT_OP, _lower, inputs=(),
    attrs=(attr("value", Str(), doc="base64 of the value's little-endian bytes"),
           attr("dtype", DType(), doc="the value's dtype"),
           attr("shape", Shape(), doc="the value's shape")),
    family="constant", doc="A constant array stored in the graph (made by constant folding)."))


def constant_value(node: Any) -> np.ndarray | None:
    """The value of a ``_constant`` node, or None for any other node."""
    if node.op is None or node.op.name != CONSTANT_OP:
        return None
    return decode(node.params)


def constant(value: Any, name: str | None = None) -> Any:
    """A :class:`~xgraph.symbol.Symbol` holding ``value`` as a ``_constant`` node.

        >>> import xgraph as mx
        >>> (constant(np.float32(2), name='two') * 3).list_arguments()
        []
    """
    from ..symbol import invoke
    enc = encode(value)
    return invoke(CONSTANT_OP, [], {"name": name, "value": enc["value"], "dtype": enc["dtype"],
                                    "shape": enc["shape"]})
