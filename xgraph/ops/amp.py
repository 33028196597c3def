"""Mixed-precision casts inserted by the ``amp`` pass: ``amp_cast`` and ``amp_multicast`` (MXNet's names).

* ``amp_cast(data, dtype)`` casts a floating-point input to ``dtype`` and
  leaves other dtypes (integer indices, labels) unchanged.  Its gradient is
  cast back to the input's dtype, so float32 master weights get float32
  gradients.
* ``amp_multicast(*data, num_outputs, cast_narrow=False)`` casts its
  floating-point inputs to the widest floating-point dtype among them (the
  narrowest with ``cast_narrow``), so an ``elemwise_add`` of a float16 and a
  float32 value runs in float32.

    >>> import numpy as np, xgraph as mx
    >>> y = mx.nd.amp_cast(mx.nd.array(np.ones(2, np.float32)), dtype='float16')
    >>> np.dtype(y.dtype).name
    'float16'
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import dtypes as _dt
from .attrs import Bool, DType, Int, attr
from .registry import Op, register


def _is_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def _amp_cast_lower(ctx, p, x):
    return x.astype(_dt.canonical(p["dtype"])) if _is_float(x.dtype) else x


def _amp_multicast_lower(ctx, p, *xs):
    floats = [x.dtype for x in xs if _is_float(x.dtype)]
    if not floats:
        return tuple(xs)
    key = lambda d: np.dtype(d).itemsize  # noqa: E731
    target = (min if p["cast_narrow"] else max)(floats, key=key)
    return tuple(x.astype(target) if _is_float(x.dtype) else x for x in xs)


register(Op(
    "amp_cast", _amp_cast_lower, attrs=(attr("dtype", DType(), doc="the target floating-point dtype"),),
    family="amp", doc="Cast a floating-point input to dtype (others pass through); inserted by the amp pass."))

register(Op(
    "amp_multicast", _amp_multicast_lower, variadic="num_outputs",
    attrs=(attr("num_outputs", Int(), doc="number of inputs and outputs"),
           attr("cast_narrow", Bool(), False, "cast to the narrowest floating type instead of the widest")),
    num_outputs=lambda p: int(p["num_outputs"]), family="amp",
    doc="Cast floating-point inputs to their widest (or narrowest) common float dtype."))


def _finite_dtype(p, dtypes):
    return dtypes, [jnp.dtype(jnp.float32)]


def _all_finite_lower(ctx, p, *arrays):
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a.astype(jnp.float32))) for a in arrays]))
    return jax.lax.stop_gradient(ok.astype(jnp.float32).reshape((1,)))


_INIT_OUTPUT = attr("init_output", Bool(), True,
                    "(MXNet: start the output at 1 instead of its previous value; without a previous value "
                    "xgraph always starts at 1)")
register(Op("all_finite", _all_finite_lower, attrs=(_INIT_OUTPUT,), infer_dtype=_finite_dtype,
            differentiable=False, family="amp",
            doc="[1.0] (float32, shape (1,)) when every element is finite, else [0.0] (AMP overflow checks)."))
register(Op("multi_all_finite", _all_finite_lower, variadic="num_arrays", infer_dtype=_finite_dtype,
            differentiable=False, family="amp",
            attrs=(attr("num_arrays", Int(min=1), 1, "the number of arrays"), _INIT_OUTPUT),
            doc="[1.0] when every element of every input is finite, else [0.0]."))
