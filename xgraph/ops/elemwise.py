"""Elementwise operators: unary math, binary ``elemwise_*``, their scalar forms, comparisons.

Binary and scalar forms are generated from one table of functions, so
``elemwise_add``, ``broadcast_add`` (in :mod:`.broadcast`) and ``_plus_scalar``
share their arithmetic.  Results keep the input dtype, as in MXNet (a
comparison of float32 arrays gives float32 zeros and ones).

    >>> import xgraph as mx
    >>> mx.nd.elemwise_add(mx.nd.array([1, 2]), mx.nd.array([3, 4])).asnumpy().tolist()
    [4.0, 6.0]
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.scipy import special as jsp

from .attrs import Bool, Float, Int, attr
from .common import fail, outputs_fix_inputs, same_shape_inputs
from .registry import Op, register


def _mx_mod(a: Any, b: Any) -> Any:
    """MXNet's modulo: the sign of the divisor, and 0 where the divisor is 0."""
    safe = jnp.where(b == 0, jnp.ones_like(b), b)
    return jnp.where(b == 0, jnp.zeros_like(a * b), jnp.mod(a, safe))


def _mx_div(a: Any, b: Any) -> Any:
    """MXNet's division: integer arrays stay integer, truncating toward zero as C++ does."""
    dtype = jnp.result_type(a, b)
    if jnp.issubdtype(dtype, jnp.integer):
        a, b = jnp.broadcast_arrays(jnp.asarray(a, dtype), jnp.asarray(b, dtype))
        return jax.lax.div(a, b)
    return jnp.divide(a, b)


def _as_input_dtype(fn: Callable) -> Callable:
    """Wrap a function whose result (e.g. a boolean) must come back in the first input's dtype."""
    def wrapped(a, b):
        return fn(a, b).astype(jnp.result_type(a))
    return wrapped


def _logical(fn: Callable) -> Callable:
    return _as_input_dtype(lambda a, b: fn(a != 0, b != 0))


#: name -> (function, symbol alias, scalar alias, reverse scalar name or None)
BINARY: dict[str, Callable] = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": jnp.multiply,
    "div": _mx_div,
    "mod": _mx_mod,
    "power": jnp.power,
    "maximum": jnp.maximum,
    "minimum": jnp.minimum,
    "hypot": jnp.hypot,
    "equal": _as_input_dtype(jnp.equal),
    "not_equal": _as_input_dtype(jnp.not_equal),
    "greater": _as_input_dtype(jnp.greater),
    "greater_equal": _as_input_dtype(jnp.greater_equal),
    "lesser": _as_input_dtype(jnp.less),
    "lesser_equal": _as_input_dtype(jnp.less_equal),
    "logical_and": _logical(jnp.logical_and),
    "logical_or": _logical(jnp.logical_or),
    "logical_xor": _logical(jnp.logical_xor),
}

_NONDIFF = {"equal", "not_equal", "greater", "greater_equal", "lesser", "lesser_equal",
            "logical_and", "logical_or", "logical_xor"}

# MXNet's registered names for the same-shape binary ops, with their aliases
_ELEMWISE_NAMES = {
    "add": ("elemwise_add", ("_Plus", "_plus", "_add")),
    "sub": ("elemwise_sub", ("_Minus", "_minus", "_sub")),
    "mul": ("elemwise_mul", ("_Mul", "_mul")),
    "div": ("elemwise_div", ("_Div", "_div")),
    "mod": ("_mod", ("_Mod",)),
    "power": ("_power", ("_Power", "_pow")),
    "maximum": ("_maximum", ("_Maximum",)),
    "minimum": ("_minimum", ("_Minimum",)),
    "hypot": ("_hypot", ("_Hypot",)),
    "equal": ("_equal", ("_Equal",)),
    "not_equal": ("_not_equal", ("_Not_Equal", "_NotEqual")),
    "greater": ("_greater", ("_Greater",)),
    "greater_equal": ("_greater_equal", ("_Greater_Equal", "_GreaterEqual")),
    "lesser": ("_lesser", ("_Lesser",)),
    "lesser_equal": ("_lesser_equal", ("_Lesser_Equal", "_LesserEqual")),
    "logical_and": ("_logical_and", ("_Logical_And",)),
    "logical_or": ("_logical_or", ("_Logical_Or",)),
    "logical_xor": ("_logical_xor", ("_Logical_Xor",)),
}

# scalar forms: key -> (name, aliases, reversed?)
_SCALAR_NAMES = {
    "add": [("_plus_scalar", ("_PlusScalar",), False)],
    "sub": [("_minus_scalar", ("_MinusScalar",), False), ("_rminus_scalar", ("_RMinusScalar",), True)],
    "mul": [("_mul_scalar", ("_MulScalar",), False)],
    "div": [("_div_scalar", ("_DivScalar",), False), ("_rdiv_scalar", ("_RDivScalar",), True)],
    "mod": [("_mod_scalar", ("_ModScalar",), False), ("_rmod_scalar", ("_RModScalar",), True)],
    "power": [("_power_scalar", ("_PowerScalar",), False), ("_rpower_scalar", ("_RPowerScalar",), True)],
    "maximum": [("_maximum_scalar", ("_MaximumScalar",), False)],
    "minimum": [("_minimum_scalar", ("_MinimumScalar",), False)],
    "hypot": [("_hypot_scalar", ("_HypotScalar",), False)],
    "equal": [("_equal_scalar", ("_EqualScalar",), False)],
    "not_equal": [("_not_equal_scalar", ("_NotEqualScalar",), False)],
    "greater": [("_greater_scalar", ("_GreaterScalar",), False)],
    "greater_equal": [("_greater_equal_scalar", ("_GreaterEqualScalar",), False)],
    "lesser": [("_lesser_scalar", ("_LesserScalar",), False)],
    "lesser_equal": [("_lesser_equal_scalar", ("_LesserEqualScalar",), False)],
    "logical_and": [("_logical_and_scalar", (), False)],
    "logical_or": [("_logical_or_scalar", (), False)],
    "logical_xor": [("_logical_xor_scalar", (), False)],
}

SCALAR_ATTRS = (attr("scalar", Float(), 1.0, "the scalar operand"),
                attr("is_int", Bool(), True, "whether the scalar is an integer (MXNet 1.9's numpy flag)"))


def _same_shape_lowering(fn: Callable, name: str) -> Callable:
    def lower(ctx, p, a, b):
        if a.shape != b.shape:
            fail(f"{name} needs inputs of the same shape, got {a.shape} and {b.shape} "
                 f"(use broadcast_* to broadcast)")
        return fn(a, b)
    return lower


def _scalar_lowering(fn: Callable, reverse: bool) -> Callable:
    def lower(ctx, p, x):
        s = jnp.asarray(p["scalar"], dtype=x.dtype)
        return fn(s, x) if reverse else fn(x, s)
    return lower


for _key, _fn in BINARY.items():
    _name, _aliases = _ELEMWISE_NAMES[_key]
    register(Op(_name, _same_shape_lowering(_fn, _name), inputs=("lhs", "rhs"), aliases=_aliases,
                infer_inputs=same_shape_inputs, infer_backward=outputs_fix_inputs,
                differentiable=_key not in _NONDIFF, family="elemwise", same_dtype=True,
                doc=f"Elementwise {_key} of two arrays of the same shape."))
    for _sname, _saliases, _rev in _SCALAR_NAMES[_key]:
        register(Op(_sname, _scalar_lowering(_fn, _rev), inputs=("data",), attrs=SCALAR_ATTRS,
                    aliases=_saliases, differentiable=_key not in _NONDIFF, family="elemwise",
                    infer_backward=outputs_fix_inputs,
                    doc=f"Elementwise {_key} with a scalar" + (" (scalar on the left)." if _rev else ".")))


# -- unary math ------------------------------------------------------------------
def _round_half_away(x: Any) -> Any:
    return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def _softsign(x: Any) -> Any:
    return x / (1 + jnp.abs(x))


def _gammaln(x: Any) -> Any:
    return jsp.gammaln(x)


def _gamma(x: Any) -> Any:
    return jnp.exp(jsp.gammaln(x)) * jnp.where((x < 0) & (jnp.floor(x) % 2 == 1), -1.0, 1.0).astype(x.dtype)


UNARY: dict[str, tuple[Callable, tuple[str, ...], bool]] = {
    # name: (function, aliases, differentiable)
    "relu": (jax.nn.relu, (), True),
    "sigmoid": (jax.nn.sigmoid, (), True),
    "tanh": (jnp.tanh, (), True),
    "softsign": (_softsign, (), True),
    "exp": (jnp.exp, (), True),
    "expm1": (jnp.expm1, (), True),
    "log": (jnp.log, (), True),
    "log1p": (jnp.log1p, (), True),
    "log2": (jnp.log2, (), True),
    "log10": (jnp.log10, (), True),
    "sqrt": (jnp.sqrt, (), True),
    "rsqrt": (jax.lax.rsqrt, (), True),
    "cbrt": (jnp.cbrt, (), True),
    "rcbrt": (lambda x: 1.0 / jnp.cbrt(x), (), True),
    "square": (jnp.square, (), True),
    "reciprocal": (jnp.reciprocal, (), True),
    "abs": (jnp.abs, (), True),
    "sign": (jnp.sign, (), True),
    "negative": (jnp.negative, (), True),
    "floor": (jnp.floor, (), False),
    "ceil": (jnp.ceil, (), False),
    "round": (_round_half_away, (), False),
    "rint": (jnp.rint, (), False),
    "trunc": (jnp.trunc, (), False),
    "fix": (jnp.trunc, (), False),
    "sin": (jnp.sin, (), True),
    "cos": (jnp.cos, (), True),
    "tan": (jnp.tan, (), True),
    "arcsin": (jnp.arcsin, (), True),
    "arccos": (jnp.arccos, (), True),
    "arctan": (jnp.arctan, (), True),
    "sinh": (jnp.sinh, (), True),
    "cosh": (jnp.cosh, (), True),
    "arcsinh": (jnp.arcsinh, (), True),
    "arccosh": (jnp.arccosh, (), True),
    "arctanh": (jnp.arctanh, (), True),
    "degrees": (jnp.degrees, (), True),
    "radians": (jnp.radians, (), True),
    "erf": (jsp.erf, (), True),
    "erfinv": (jsp.erfinv, (), True),
    "gamma": (_gamma, (), True),
    "gammaln": (_gammaln, (), True),
    "logical_not": (lambda x: (x == 0).astype(x.dtype), (), False),
}


def _unary_lowering(fn: Callable) -> Callable:
    def lower(ctx, p, x):
        return fn(x).astype(x.dtype)
    return lower


for _uname, (_ufn, _ualiases, _udiff) in UNARY.items():
    register(Op(_uname, _unary_lowering(_ufn), inputs=("data",), aliases=_ualiases, differentiable=_udiff,
                family="elemwise", infer_backward=outputs_fix_inputs, doc=f"Elementwise {_uname}."))


def _identity(ctx, p, x):
    return x


register(Op("_copy", _identity, aliases=("identity", "_Copy"), infer_backward=outputs_fix_inputs,
            family="elemwise", doc="The identity: a copy of the input."))


def _identity_like_rhs(ctx, p, lhs, rhs):
    if lhs.shape != rhs.shape:
        fail(f"lhs has shape {tuple(lhs.shape)} but must have rhs's shape {tuple(rhs.shape)}")
    return lhs


register(Op("_identity_with_attr_like_rhs", _identity_like_rhs, inputs=("lhs", "rhs"),
            infer_inputs=same_shape_inputs, infer_backward=outputs_fix_inputs, family="elemwise",
            doc="The identity of lhs, constrained to rhs's shape (a shape hint for inference)."))


def _add_n(ctx, p, *xs):
    out = xs[0]
    for x in xs[1:]:
        if x.shape != out.shape:
            fail(f"add_n needs inputs of the same shape, got {out.shape} and {x.shape}")
        out = out + x
    return out


register(Op("add_n", _add_n, aliases=("ElementWiseSum", "_ElementWiseSum", "elemwise_sum"),
            attrs=(attr("num_args", Int(min=1), doc="number of inputs"),), variadic="num_args",
            infer_inputs=same_shape_inputs, infer_backward=outputs_fix_inputs, family="elemwise",
            doc="Sum of any number of same-shape arrays."))


# -- hard_sigmoid ---------------------------------------------------------------------
register(Op(
    "hard_sigmoid", lambda ctx, p, x: jnp.clip(p["alpha"] * x + p["beta"], 0, 1).astype(x.dtype),
    attrs=(attr("alpha", Float(), 0.2, "slope"), attr("beta", Float(), 0.5, "bias")),
    family="elemwise", doc="clip(alpha * x + beta, 0, 1); gradient alpha inside (0, 1), 0 outside."))
