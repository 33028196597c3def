"""MXNet's operator sub-namespaces and creation helpers, shared by ``mx.sym`` and ``mx.nd``.

MXNet exposes prefixed operators under short names: ``_linalg_gemm`` as
``mx.sym.linalg.gemm``, ``_contrib_div_sqrt_dim`` as ``mx.sym.contrib.div_sqrt_dim``,
and the sampling ops as ``mx.sym.random.uniform`` (which picks ``_random_uniform``
for number parameters and ``_sample_uniform`` for array parameters).
``mx.sym.zeros/ones/full/arange`` build the creation ops ``_zeros``... with
MXNet's positional signatures.  Each frontend passes its own ``invoke``
(symbolic or imperative), so one definition serves both.

    >>> import xgraph as mx
    >>> mx.sym.linalg.gemm2(mx.sym.var('a'), mx.sym.var('b')).infer_shape(a=(2, 3), b=(3, 4))[1]
    [(2, 4)]
    >>> mx.sym.zeros((2, 3)).infer_shape()[1]
    [(2, 3)]
"""
from __future__ import annotations

import math
import operator
from numbers import Number
from typing import Any, Callable, Sequence

from .errors import SymbolError
from .ops import registry

Invoke = Callable[[str, Sequence[Any], dict], Any]


class OpNamespace:
    """Operators registered under one of ``prefixes``, by their short name, plus ``extra`` functions.

        >>> import xgraph as mx
        >>> 'gemm' in dir(mx.sym.linalg)
        True
    """

    def __init__(self, name: str, prefixes: Sequence[str], invoke: Invoke, extra: dict[str, Callable] | None = None):
        self._name = name
        self._prefixes = tuple(prefixes)
        self._invoke = invoke
        self._extra = dict(extra or {})

    def __getattr__(self, item: str) -> Callable:
        if item.startswith("__"):
            raise AttributeError(item)
        if item in self._extra:
            return self._extra[item]
        for prefix in self._prefixes:
            full = prefix + item
            if registry.exists(full):
                fn = _op_function(self._invoke, full, item)
                setattr(self, item, fn)     # the same function object each time (MXNet scripts compare them)
                return fn
        raise AttributeError(f"namespace {self._name!r} has no operator {item!r}")

    def __dir__(self) -> list[str]:
        names = set(self._extra)
        for n in registry.all_names():
            for prefix in self._prefixes:
                if n.startswith(prefix):
                    names.add(n[len(prefix):])
        return sorted(names)

    def __repr__(self) -> str:
        return f"<operator namespace {self._name}>"


def _op_function(invoke: Invoke, op_name: str, short: str) -> Callable:
    def fn(*args: Any, **kwargs: Any) -> Any:
        return invoke(op_name, args, kwargs)
    fn.__name__ = short
    fn.__doc__ = registry.get(op_name).doc
    return fn


#: random.<name> -> (distribution, parameter names and defaults), as MXNet's ``mx.random``/``mx.nd.random``
#: functions take them; exponential takes a scale (the op a rate lam = 1 / scale), as MXNet's.
_RANDOM_FUNCS = {
    "uniform": ("uniform", (("low", 0.0), ("high", 1.0))),
    "normal": ("normal", (("loc", 0.0), ("scale", 1.0))),
    "gamma": ("gamma", (("alpha", 1.0), ("beta", 1.0))),
    "exponential": ("exponential", (("scale", 1.0),)),
    "poisson": ("poisson", (("lam", 1.0),)),
    "negative_binomial": ("negative_binomial", (("k", 1), ("p", 1.0))),
    "generalized_negative_binomial": ("generalized_negative_binomial", (("mu", 1.0), ("alpha", 1.0))),
}


def bind_signature(func: str, names: Sequence[str], defaults: dict, args: Sequence[Any], kwargs: dict) -> dict:
    """Bind ``args`` and ``kwargs`` to the parameters ``names`` as Python would, MXNet's errors aside.

    Returns every parameter's value (``defaults`` for the missing ones, which
    must then have one) plus the unknown keywords, which MXNet passes on to the
    operator as attributes.
    """
    if len(args) > len(names):
        raise SymbolError(f"{func}({', '.join(names)}) takes at most {len(names)} positional arguments, "
                          f"got {len(args)}")
    out = dict(zip(names, args))
    for k, v in kwargs.items():
        if k in out:
            raise SymbolError(f"{func}({', '.join(names)}): {k!r} given both positionally and as a keyword")
        out[k] = v
    for n in names:
        if n not in out:
            if n not in defaults:
                raise SymbolError(f"{func}({', '.join(names)}): missing the argument {n!r}")
            out[n] = defaults[n]
    return out


def _random_function(invoke: Invoke, array_type: type, imperative: bool, dist: str, params: tuple) -> Callable:
    """MXNet's ``random.<dist>(params..., shape, dtype[, ctx, out])``: ``_random_<dist>`` for numbers,
    ``_sample_<dist>`` for arrays."""
    scalar_names = [n for n, _ in _scalar_params(dist)]
    pnames = [n for n, _ in params]
    names = pnames + ["shape", "dtype"] + (["ctx", "out"] if imperative else [])
    defaults = {**dict(params), "shape": None, "dtype": None, "ctx": None, "out": None}

    def fn(*args: Any, **kwargs: Any) -> Any:
        bound = bind_signature(f"random.{dist}", names, defaults, args, kwargs)
        return _draw(invoke, array_type, dist, scalar_names, [bound.pop(n) for n in pnames], bound)
    fn.__name__ = dist
    fn.__doc__ = (f"Draws from the {dist} distribution: random.{dist}({', '.join(names)}) "
                  f"(numbers: _random_{dist}; arrays: _sample_{dist}, one draw set per element).")
    return fn


def _draw(invoke: Invoke, array_type: type, dist: str, scalar_names: list, values: list, bound: dict) -> Any:
    """Call ``_random_<dist>`` or ``_sample_<dist>`` with the bound arguments of a random function."""
    shape, dtype, ctx, out = (bound.pop(k, None) for k in ("shape", "dtype", "ctx", "out"))
    if dist == "exponential":
        values = [1.0 / values[0]]
    arrays = [isinstance(v, array_type) for v in values]
    attrs = dict(bound)
    if shape is not None:
        attrs["shape"] = shape
    if dtype is not None:
        attrs["dtype"] = dtype
    if out is not None:
        attrs["out"] = out
    if all(arrays):
        return invoke(f"_sample_{dist}", values, attrs)
    if any(arrays):
        raise SymbolError(f"random.{dist}: parameters must all be numbers or all be arrays, got "
                          f"{[type(v).__name__ for v in values]}")
    if ctx is not None:
        attrs["ctx"] = ctx
    attrs.update(zip(scalar_names, values))
    return invoke(f"_random_{dist}", [], attrs)


def _scalar_params(dist: str) -> tuple:
    from .ops.random import DISTRIBUTIONS
    return DISTRIBUTIONS[dist][0]


def random_functions(invoke: Invoke, array_type: type, imperative: bool = False) -> dict[str, Callable]:
    """``uniform``, ``normal``, ..., ``randn``, ``randint``, ``multinomial``, ``shuffle`` for one frontend.

    The signatures are MXNet's: ``uniform(low=0, high=1, shape, dtype, ctx, out)``
    for ``mx.nd.random`` (``imperative``), without ``ctx`` and ``out`` for ``mx.sym.random``.

        >>> import xgraph as mx
        >>> mx.nd.random.uniform(-1, 1, (2, 3), 'float16').dtype
        <class 'numpy.float16'>
    """
    funcs = {name: _random_function(invoke, array_type, imperative, dist, params)
             for name, (dist, params) in _RANDOM_FUNCS.items()}
    tail = ["shape", "dtype"] + (["ctx", "out"] if imperative else [])

    def randn(*shape: Any, **kwargs: Any) -> Any:
        """Normal draws of the given shape: ``randn(2, 3, loc=0, scale=1, dtype=None)``."""
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        bound = bind_signature("random.randn", ["loc", "scale", "dtype", "ctx", "out"],
                               {"loc": 0.0, "scale": 1.0, "dtype": None, "ctx": None, "out": None}, (), kwargs)
        bound["shape"] = tuple(shape)
        return _draw(invoke, array_type, "normal", ["loc", "scale"], [bound.pop("loc"), bound.pop("scale")],
                     bound)

    def randint(*args: Any, **kwargs: Any) -> Any:
        """Uniform integers in [low, high): ``randint(low, high, shape, dtype[, ctx, out])``."""
        bound = bind_signature("random.randint", ["low", "high"] + tail,
                               {"shape": None, "dtype": None, "ctx": None, "out": None}, args, kwargs)
        attrs = {k: v for k, v in bound.items() if v is not None}
        return invoke("_random_randint", [], attrs)

    def multinomial(data: Any, shape: Any = None, get_prob: bool = not imperative, out: Any = None,
                    dtype: Any = "int32", **kwargs: Any) -> Any:
        """Category draws from probabilities over the last axis."""
        attrs = {"get_prob": get_prob, "dtype": dtype, **kwargs}
        if shape is not None:
            attrs["shape"] = shape
        if out is not None:
            attrs["out"] = out
        return invoke("_sample_multinomial", [data], attrs)

    def shuffle(data: Any, **kwargs: Any) -> Any:
        """A random permutation along the first axis."""
        return invoke("_shuffle", [data], kwargs)

    funcs.update(randn=randn, randint=randint, multinomial=multinomial, shuffle=shuffle)
    return funcs


def creation_functions(invoke: Invoke) -> dict[str, Callable]:
    """``zeros(shape, dtype)``, ``ones``, ``full(shape, val)``, ``arange(start, stop, step, repeat)``."""
    def _attrs(dtype: Any, kwargs: dict) -> dict:
        return {**kwargs, "dtype": "float32" if dtype is None else dtype}

    def zeros(shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
        """An array of zeros (op ``_zeros``)."""
        return invoke("_zeros", [], {"shape": shape, **_attrs(dtype, kwargs)})

    def ones(shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
        """An array of ones (op ``_ones``)."""
        return invoke("_ones", [], {"shape": shape, **_attrs(dtype, kwargs)})

    def full(shape: Any, val: float, dtype: Any = None, **kwargs: Any) -> Any:
        """An array filled with ``val`` (op ``_full``)."""
        return invoke("_full", [], {"shape": shape, "value": float(val), **_attrs(dtype, kwargs)})

    def arange(start: float, stop: float | None = None, step: float = 1.0, repeat: int = 1,
               infer_range: bool = False, name: str | None = None, dtype: Any = None) -> Any:
        """Evenly spaced values, each repeated ``repeat`` times (op ``_arange``)."""
        attrs = {"start": start, "stop": stop, "step": step, "repeat": repeat, "infer_range": infer_range,
                 "dtype": "float32" if dtype is None else dtype}
        if name is not None:
            attrs["name"] = name
        return invoke("_arange", [], attrs)

    return {"zeros": zeros, "ones": ones, "full": full, "arange": arange}


#: name -> (the op for two arrays, for array op number, for number op array, for two numbers), as MXNet's
#: ``mx.nd.add``... pick them.  Comparisons give 1/0 in the array's dtype.
_BINARY_FUNCS = {
    "add": ("broadcast_add", "_plus_scalar", "_plus_scalar", operator.add),
    "subtract": ("broadcast_sub", "_minus_scalar", "_rminus_scalar", operator.sub),
    "multiply": ("broadcast_mul", "_mul_scalar", "_mul_scalar", operator.mul),
    "divide": ("broadcast_div", "_div_scalar", "_rdiv_scalar", operator.truediv),
    "modulo": ("broadcast_mod", "_mod_scalar", "_rmod_scalar", operator.mod),
    "power": ("broadcast_power", "_power_scalar", "_rpower_scalar", operator.pow),
    "maximum": ("broadcast_maximum", "_maximum_scalar", "_maximum_scalar", max),
    "minimum": ("broadcast_minimum", "_minimum_scalar", "_minimum_scalar", min),
    "hypot": ("broadcast_hypot", "_hypot_scalar", "_hypot_scalar", math.hypot),
    "equal": ("broadcast_equal", "_equal_scalar", "_equal_scalar", lambda a, b: int(a == b)),
    "not_equal": ("broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar", lambda a, b: int(a != b)),
    "greater": ("broadcast_greater", "_greater_scalar", "_lesser_scalar", lambda a, b: int(a > b)),
    "greater_equal": ("broadcast_greater_equal", "_greater_equal_scalar", "_lesser_equal_scalar",
                      lambda a, b: int(a >= b)),
    "lesser": ("broadcast_lesser", "_lesser_scalar", "_greater_scalar", lambda a, b: int(a < b)),
    "lesser_equal": ("broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar",
                     lambda a, b: int(a <= b)),
    "logical_and": ("broadcast_logical_and", "_logical_and_scalar", "_logical_and_scalar",
                    lambda a, b: int(bool(a) and bool(b))),
    "logical_or": ("broadcast_logical_or", "_logical_or_scalar", "_logical_or_scalar",
                   lambda a, b: int(bool(a) or bool(b))),
    "logical_xor": ("broadcast_logical_xor", "_logical_xor_scalar", "_logical_xor_scalar",
                    lambda a, b: int(bool(a) != bool(b))),
}

#: the functions ``mx.sym`` has (MXNet's symbol module: ``pow`` is ``power``); ``mx.nd`` has them all.
SYMBOL_BINARY = ("power", "maximum", "minimum", "hypot")


def binary_functions(invoke: Invoke, array_type: type, names: Sequence[str] | None = None) -> dict[str, Callable]:
    """MXNet's ``add``/``subtract``/.../``maximum``/``power``/``hypot`` over arrays or numbers on either side.

    Two arrays broadcast (``broadcast_add``...), an array and a number use the
    scalar op (``_rminus_scalar`` for ``subtract(2, x)``, ``_lesser_scalar`` for
    ``greater(2, x)``), two numbers give a number, as in MXNet.  ``names``
    picks some of them (all by default).

        >>> import xgraph as mx
        >>> mx.nd.maximum(mx.nd.array([1, 5]), 3).asnumpy().tolist()
        [3.0, 5.0]
        >>> mx.nd.subtract(10, mx.nd.array([1, 2])).asnumpy().tolist()
        [9.0, 8.0]
    """
    def make(name: str) -> Callable:
        array_op, scalar_op, reverse_op, number_fn = _BINARY_FUNCS[name]

        def fn(lhs: Any, rhs: Any, **kwargs: Any) -> Any:
            if kwargs.get("out", 0) is None:
                del kwargs["out"]
            la, ra = isinstance(lhs, array_type), isinstance(rhs, array_type)
            if la and ra:
                return invoke(array_op, [lhs, rhs], kwargs)
            if la:
                return invoke(scalar_op, [lhs], {"scalar": _scalar(name, rhs), **kwargs})
            if ra:
                return invoke(reverse_op, [rhs], {"scalar": _scalar(name, lhs), **kwargs})
            if isinstance(lhs, Number) and isinstance(rhs, Number):
                return number_fn(lhs, rhs)
            raise SymbolError(f"{name}: operands must be arrays or numbers, got {type(lhs).__name__} and "
                              f"{type(rhs).__name__}")
        fn.__name__ = name
        fn.__doc__ = f"Elementwise {name} of arrays and/or numbers, broadcasting (MXNet's ``{name}``)."
        return fn
    return {n: make(n) for n in (names if names is not None else _BINARY_FUNCS)}


def _scalar(name: str, value: Any) -> float:
    if not isinstance(value, Number):
        raise SymbolError(f"{name}: operands must be arrays or numbers, got {type(value).__name__}")
    return float(value)


def op_namespaces(invoke: Invoke, array_type: type, imperative: bool = False) -> tuple[OpNamespace, ...]:
    """The ``linalg``, ``contrib``, ``random`` and ``_internal`` (every op by its full name) namespaces."""
    return (OpNamespace("linalg", ("_linalg_",), invoke),
            OpNamespace("contrib", ("_contrib_",), invoke),
            OpNamespace("random", ("_random_", "_sample_"), invoke,
                        random_functions(invoke, array_type, imperative)),
            OpNamespace("_internal", ("",), invoke))


def frontend_functions(invoke: Invoke, array_type: type, imperative: bool = False) -> dict[str, Any]:
    """MXNet's Python-level wrappers over ops: ``split_v2``, ``histogram`` and the ``image`` namespace.

    ``split_v2(ary, indices_or_sections, axis=0, squeeze_axis=False)`` calls
    ``_split_v2`` with ``sections`` for an int and ``indices=(0,) + tuple`` for a
    tuple; ``histogram(a, bins=10, range=None)`` calls ``_histogram`` with a bins
    input (an array) or ``bin_cnt`` and ``range`` (without a range, ``mx.nd``
    uses numpy's, as MXNet does; ``mx.sym`` refuses it).

        >>> import xgraph as mx
        >>> [o.shape for o in mx.nd.split_v2(mx.nd.zeros((2, 5)), (1, 3), axis=1)]
        [(2, 1), (2, 2), (2, 2)]
    """
    def split_v2(ary: Any, indices_or_sections: Any, axis: int = 0, squeeze_axis: bool = False, **kwargs: Any) -> Any:
        """Split an array at the given indices, or into that many (nearly) equal sections."""
        if isinstance(indices_or_sections, int) and not isinstance(indices_or_sections, bool):
            indices, sections = [], indices_or_sections
        elif isinstance(indices_or_sections, tuple):
            indices, sections = [0] + list(indices_or_sections), 0
        else:
            raise SymbolError(f"split_v2: indices_or_sections must be an int or a tuple of ints, got "
                              f"{type(indices_or_sections).__name__}")
        return invoke("_split_v2", [ary], {"indices": tuple(indices), "axis": axis, "squeeze_axis": squeeze_axis,
                                           "sections": sections, **kwargs})

    def histogram(a: Any, bins: Any = 10, range: Any = None, **kwargs: Any) -> Any:  # noqa: A002 (MXNet's name)
        """Histogram of the flattened ``a``: (counts, bin edges)."""
        if isinstance(bins, array_type):
            return invoke("_histogram", [a, bins], kwargs)
        if isinstance(bins, int) and not isinstance(bins, bool):
            if range is None:
                if not imperative:
                    raise SymbolError("histogram: a symbol needs range=(low, high) with an integer bins")
                import numpy as np
                counts, edges = np.histogram(a.asnumpy(), bins=bins)
                return array_type(counts), array_type(edges.astype(a.dtype))
            return invoke("_histogram", [a], {"bin_cnt": bins, "range": tuple(range), **kwargs})
        raise SymbolError(f"histogram: bins must be an int or an array, got {type(bins).__name__}")

    return {"split_v2": split_v2, "histogram": histogram,
            "image": OpNamespace("image", ("_image_",), invoke)}
