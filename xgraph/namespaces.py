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
                return _op_function(self._invoke, full, item)
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


#: random.<name> -> (distribution, parameter names and defaults); exponential takes a scale, as MXNet's.
_RANDOM_FUNCS = {
    "uniform": ("uniform", (("low", 0.0), ("high", 1.0))),
    "normal": ("normal", (("loc", 0.0), ("scale", 1.0))),
    "gamma": ("gamma", (("alpha", 1.0), ("beta", 1.0))),
    "exponential": ("exponential", (("scale", 1.0),)),
    "poisson": ("poisson", (("lam", 1.0),)),
    "negative_binomial": ("negative_binomial", (("k", 1), ("p", 1.0))),
    "generalized_negative_binomial": ("generalized_negative_binomial", (("mu", 1.0), ("alpha", 1.0))),
}


def _random_function(invoke: Invoke, array_type: type, dist: str, params: tuple) -> Callable:
    """MXNet's ``random.<dist>``: ``_random_<dist>`` for numbers, ``_sample_<dist>`` for arrays."""
    scalar_names = [n for n, _ in _scalar_params(dist)]

    def fn(*args: Any, shape: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
        values = []
        for i, (pname, default) in enumerate(params):
            if i < len(args):
                values.append(args[i])
            else:
                values.append(kwargs.pop(pname, default))
        if len(args) > len(params):
            raise SymbolError(f"random.{dist} takes at most {len(params)} positional parameters")
        if dist == "exponential":
            values = [1.0 / values[0]]
        arrays = [isinstance(v, array_type) for v in values]
        attrs = dict(kwargs)
        if shape is not None:
            attrs["shape"] = shape
        if dtype is not None:
            attrs["dtype"] = dtype
        if all(arrays):
            return invoke(f"_sample_{dist}", values, attrs)
        if any(arrays):
            raise SymbolError(f"random.{dist}: parameters must all be numbers or all be arrays, got "
                              f"{[type(v).__name__ for v in values]}")
        attrs.update(zip(scalar_names, values))
        return invoke(f"_random_{dist}", [], attrs)
    fn.__name__ = dist
    fn.__doc__ = f"Draws from the {dist} distribution (numbers: _random_{dist}; arrays: _sample_{dist})."
    return fn


def _scalar_params(dist: str) -> tuple:
    from .ops.random import DISTRIBUTIONS
    return DISTRIBUTIONS[dist][0]


def random_functions(invoke: Invoke, array_type: type) -> dict[str, Callable]:
    """``uniform``, ``normal``, ..., ``randint``, ``multinomial``, ``shuffle`` for one frontend."""
    funcs = {name: _random_function(invoke, array_type, dist, params)
             for name, (dist, params) in _RANDOM_FUNCS.items()}

    def randint(low: int, high: int, shape: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
        """Uniform integers in [low, high)."""
        attrs = {"low": low, "high": high, **kwargs}
        if shape is not None:
            attrs["shape"] = shape
        if dtype is not None:
            attrs["dtype"] = dtype
        return invoke("_random_randint", [], attrs)

    def multinomial(data: Any, shape: Any = None, get_prob: bool = False, dtype: str = "int32",
                    **kwargs: Any) -> Any:
        """Category draws from probabilities over the last axis."""
        attrs = {"get_prob": get_prob, "dtype": dtype, **kwargs}
        if shape is not None:
            attrs["shape"] = shape
        return invoke("_sample_multinomial", [data], attrs)

    def shuffle(data: Any, **kwargs: Any) -> Any:
        """A random permutation along the first axis."""
        return invoke("_shuffle", [data], kwargs)

    funcs.update(randint=randint, multinomial=multinomial, shuffle=shuffle)
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


def binary_functions(invoke: Invoke, array_type: type) -> dict[str, Callable]:
    """MXNet's ``maximum``/``minimum``/``power``/``hypot`` taking arrays or numbers on either side.

    Two arrays broadcast (``broadcast_maximum``...), an array and a number use the
    scalar op (``_maximum_scalar``, ``_rpower_scalar`` for ``power(2, x)``), two
    numbers give a number, as in MXNet.

        >>> import xgraph as mx
        >>> mx.nd.maximum(mx.nd.array([1, 5]), 3).asnumpy().tolist()
        [3.0, 5.0]
    """
    import math
    scalar_fns = {"maximum": max, "minimum": min, "power": pow, "hypot": math.hypot}
    reverse_ops = {"power": "_rpower_scalar"}

    def make(name: str) -> Callable:
        def fn(left: Any, right: Any, **kwargs: Any) -> Any:
            la, ra = isinstance(left, array_type), isinstance(right, array_type)
            if la and ra:
                return invoke(f"broadcast_{name}", [left, right], kwargs)
            if la:
                return invoke(f"_{name}_scalar", [left], {"scalar": float(right), **kwargs})
            if ra:
                op = reverse_ops.get(name, f"_{name}_scalar")   # maximum/minimum/hypot are symmetric
                return invoke(op, [right], {"scalar": float(left), **kwargs})
            return scalar_fns[name](left, right)
        fn.__name__ = name
        fn.__doc__ = f"Elementwise {name} of arrays and/or numbers (MXNet's ``{name}``)."
        return fn
    return {n: make(n) for n in scalar_fns}


def op_namespaces(invoke: Invoke, array_type: type) -> tuple[OpNamespace, ...]:
    """The ``linalg``, ``contrib``, ``random`` and ``_internal`` (every op by its full name) namespaces."""
    return (OpNamespace("linalg", ("_linalg_",), invoke),
            OpNamespace("contrib", ("_contrib_",), invoke),
            OpNamespace("random", ("_random_", "_sample_"), invoke, random_functions(invoke, array_type)),
            OpNamespace("_internal", ("",), invoke))
