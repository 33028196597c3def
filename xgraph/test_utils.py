"""``mx.test_utils``: the checking helpers MXNet's tests and scripts use, over xgraph's executors.

Tolerances follow MXNet's rules: ``|a - b| <= atol + rtol * |b|``, with per-dtype defaults
(float16 1e-2/1e-1, float32 1e-4/1e-3, float64 1e-5/1e-20, integers exact) taken as the larger
of the two operands' defaults.  ``check_symbolic_forward``/``backward`` bind a symbol and
compare its outputs and gradients with expected arrays; ``check_numeric_gradient`` compares the
executor's backward with central finite differences of a random projection of the output.

    >>> import numpy as np, xgraph as mx
    >>> x = mx.sym.var('x')
    >>> mx.test_utils.check_symbolic_forward(x * 2, [np.ones((2, 2))], [2 * np.ones((2, 2))])[0].shape
    (2, 2)
    >>> mx.test_utils.check_numeric_gradient(mx.sym.tanh(x), [np.random.rand(3, 2)])
"""
from __future__ import annotations

import contextlib
import numbers
import os
import random as _pyrandom
import sys
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from . import dtypes as _dt
from .context import Context, cpu, current_context
from .errors import BindError, UnsupportedFeatureError
from .ndarray import NDArray
from .util import use_np, np_shape, use_np_shape  # noqa: F401  (MXNet's test_utils re-exports them)

_DEFAULT_CTX: list[Context | None] = [None]


# -- contexts and dtypes ----------------------------------------------------------
def default_context() -> Context:
    """The context tests run on: the one set by ``set_default_context``, else the current one.

        >>> default_context().device_type
        'cpu'
    """
    return _DEFAULT_CTX[0] if _DEFAULT_CTX[0] is not None else current_context()


def set_default_context(ctx: Context) -> None:
    """Make ``ctx`` the context ``default_context()`` returns.

        >>> set_default_context(cpu(0)); default_context()
        cpu(0)
    """
    _DEFAULT_CTX[0] = ctx


def default_dtype() -> type:
    """float32, the dtype test arrays get by default.

        >>> default_dtype()
        <class 'numpy.float32'>
    """
    return np.float32


def list_gpus() -> list[int]:
    """The GPU ids JAX sees (empty on a CPU-only machine).

        >>> isinstance(list_gpus(), list)
        True
    """
    from .context import num_gpus
    return list(range(num_gpus()))


# -- tolerances ---------------------------------------------------------------------
_INT_KINDS = "biu"
_RTOL = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-5}
_ATOL = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-20}
_EPS = {np.dtype(np.float16): 1.0 / 2 ** 6, np.dtype(np.float32): 1.0 / 2 ** 9, np.dtype(np.float64): 1.0 / 2 ** 14}


def _dtype_table(table: dict) -> dict:
    full = dict(table)
    for t in (np.bool_, np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64, np.uint64):
        full[np.dtype(t)] = 0
    try:
        import ml_dtypes
        full[np.dtype(ml_dtypes.bfloat16)] = table[np.dtype(np.float16)]
    except ImportError:  # pragma: no cover - ml_dtypes is a core dependency
        pass
    return full


def default_rtols() -> dict:
    """MXNet's default relative tolerance per dtype.

        >>> default_rtols()[np.dtype(np.float32)]
        0.0001
    """
    return _dtype_table(_RTOL)


def default_atols() -> dict:
    """MXNet's default absolute tolerance per dtype.

        >>> default_atols()[np.dtype(np.float16)]
        0.1
    """
    return _dtype_table(_ATOL)


def default_numeric_eps() -> dict:
    """Finite-difference step per dtype (powers of two, so the step itself is exact).

        >>> default_numeric_eps()[np.dtype(np.float64)] == 2 ** -14
        True
    """
    return dict(_EPS)


def effective_dtype(dat: Any) -> np.dtype:
    """The dtype whose tolerances apply to ``dat`` (its own dtype on the CPU).

        >>> effective_dtype(np.zeros(1, np.float16))
        dtype('float16')
    """
    return np.dtype(getattr(dat, "dtype", np.asarray(dat).dtype))


def get_tolerance(dat: Any, tol: Any, default_tol: dict) -> float:
    """``tol`` if it is a number, else its (or ``default_tol``'s) entry for ``dat``'s dtype.

        >>> get_tolerance(np.zeros(1), None, default_rtols())
        1e-05
    """
    if isinstance(tol, numbers.Number):
        return tol
    dtype = effective_dtype(dat)
    tol = tol or {}
    if dtype in tol:
        return tol[dtype]
    return default_tol.get(dtype, default_tol[np.dtype(np.float64)] if dtype.kind == "f" else 0)


def get_tols(x: Any, y: Any, rtol: Any, atol: Any) -> tuple[float, float]:
    """(rtol, atol) for comparing ``x`` and ``y``: the larger of the two operands' tolerances.

        >>> get_tols(np.zeros(1, np.float16), np.zeros(1), None, None)
        (0.01, 0.1)
    """
    x = np.asarray(x) if isinstance(x, numbers.Number) else x
    y = np.asarray(y) if isinstance(y, numbers.Number) else y
    return (max(get_tolerance(x, rtol, default_rtols()), get_tolerance(y, rtol, default_rtols())),
            max(get_tolerance(x, atol, default_atols()), get_tolerance(y, atol, default_atols())))


def get_rtol(rtol: float | None = None, dtype: Any = np.float64) -> float:
    """``rtol``, or the default for ``dtype``.

        >>> get_rtol(None, np.float32)
        0.0001
    """
    return default_rtols()[np.dtype(dtype)] if rtol is None else rtol


def get_atol(atol: float | None = None, dtype: Any = np.float64) -> float:
    """``atol``, or the default for ``dtype``.

        >>> get_atol(0.5)
        0.5
    """
    return default_atols()[np.dtype(dtype)] if atol is None else atol


def get_etol(etol: float | None = None) -> float:
    """The tolerated fraction of mismatching elements (0 unless given).

        >>> get_etol()
        0
    """
    return 0 if etol is None else etol


# -- comparisons ----------------------------------------------------------------------
def _np(x: Any) -> np.ndarray:
    """An NDArray, jax.Array, number or sequence as a numpy array."""
    if isinstance(x, NDArray):
        return x.asnumpy()
    return np.asarray(x)


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind in "fcV" or a.dtype.kind in _INT_KINDS else a


def same(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are exactly equal (shape and values).

        >>> same(np.ones(2), [1, 1])
        True
    """
    return bool(np.array_equal(_np(a), _np(b)))


def _violation(a: np.ndarray, b: np.ndarray, rtol: float, atol: float, equal_nan: bool) -> np.ndarray:
    """Per element: how far over the tolerance ``|a-b| <= atol + rtol*|b|`` each pair is (>1 fails)."""
    a, b = _as_float(a), _as_float(b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(a - b)
        bound = atol + rtol * np.abs(b)
        ratio = np.where(bound > 0, diff / np.where(bound > 0, bound, 1), np.where(diff > 0, np.inf, 0.0))
        both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
        ratio = np.where(both_inf, 0.0, ratio)
        nan = np.isnan(a) | np.isnan(b)
        if equal_nan:
            ratio = np.where(np.isnan(a) & np.isnan(b), 0.0, np.where(nan, np.inf, ratio))
        else:
            ratio = np.where(nan, np.inf, ratio)
    return ratio


def almost_equal(a: Any, b: Any, rtol: Any = None, atol: Any = None, equal_nan: bool = False,
                 use_broadcast: bool = True) -> bool:
    """Whether every element satisfies ``|a - b| <= atol + rtol * |b|``.

        >>> almost_equal(np.float32(1.0), np.float32(1.00001))
        True
    """
    a, b = _np(a), _np(b)
    rtol, atol = get_tols(a, b, rtol, atol)
    if not use_broadcast and a.shape != b.shape:
        return False
    try:
        return bool((_violation(a, b, rtol, atol, equal_nan) <= 1).all())
    except ValueError:
        return False


def assert_almost_equal(a: Any, b: Any, rtol: Any = None, atol: Any = None, names: tuple = ("a", "b"),
                        equal_nan: bool = False, use_broadcast: bool = True, mismatches: tuple = (10, 10)) -> None:
    """Raise AssertionError, locating the worst element, unless ``a`` and ``b`` are almost equal.

        >>> assert_almost_equal([1.0, 2.0], [1.0, 2.0 + 1e-6])
        >>> try:
        ...     assert_almost_equal([1.0, 2.0], [1.0, 3.0], names=('x', 'y'))
        ... except AssertionError as e:
        ...     print(str(e).splitlines()[0])
        Items are not equal: error 33333.3 exceeds tolerance rtol=1e-05, atol=1e-20 at x[1]=2.0, y[1]=3.0 (1 of 2 elements)
    """
    a, b = _np(a), _np(b)
    rtol, atol = get_tols(a, b, rtol, atol)
    if not use_broadcast and a.shape != b.shape:
        raise AssertionError(f"Shapes differ: {names[0]}{a.shape} vs {names[1]}{b.shape}")
    try:
        ratio = _violation(a, b, rtol, atol, equal_nan)
    except ValueError:
        raise AssertionError(f"Shapes cannot be compared: {names[0]}{a.shape} vs {names[1]}{b.shape}") from None
    bad = ratio > 1
    if not bad.any():
        return
    aa, bb = np.broadcast_to(a, ratio.shape), np.broadcast_to(b, ratio.shape)
    worst = np.unravel_index(int(np.argmax(np.where(np.isnan(ratio), np.inf, ratio))), ratio.shape) if ratio.ndim else ()
    where = "[" + ",".join(str(int(i)) for i in worst) + "]" if ratio.ndim else ""
    lines = [f"Items are not equal: error {float(ratio[worst]):.6g} exceeds tolerance rtol={rtol:g}, atol={atol:g} "
             f"at {names[0]}{where}={aa[worst]}, {names[1]}{where}={bb[worst]} "
             f"({int(bad.sum())} of {bad.size} elements)"]
    idx = np.argwhere(bad)[: mismatches[0]]
    for i in idx:
        t = tuple(int(j) for j in i)
        lines.append(f"  {names[0]}{list(t)}={aa[t]}  {names[1]}{list(t)}={bb[t]}")
    raise AssertionError("\n".join(lines))


def assert_allclose(a: Any, b: Any, rtol: float = 1e-07, atol: float = 0, equal_nan: bool = True) -> None:
    """``assert_almost_equal`` with numpy's ``assert_allclose`` defaults.

        >>> assert_allclose(np.ones(3), np.ones(3))
    """
    assert_almost_equal(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def assert_almost_equal_ignore_nan(a: Any, b: Any, rtol: Any = None, atol: Any = None,
                                   names: tuple = ("a", "b")) -> None:
    """``assert_almost_equal`` over the elements where neither side is NaN.

        >>> assert_almost_equal_ignore_nan([1.0, np.nan], [1.0, 5.0])
    """
    a, b = np.array(_np(a), dtype=np.float64), np.array(_np(b), dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    a, b = a.copy(), b.copy()
    nan = np.isnan(a) | np.isnan(b)
    a[nan] = 0
    b[nan] = 0
    assert_almost_equal(a, b, rtol, atol, names)


def assert_almost_equal_with_err(a: Any, b: Any, rtol: Any = None, atol: Any = None, etol: float | None = None,
                                 names: tuple = ("a", "b"), equal_nan: bool = False, mismatches: tuple = (10, 10)) -> None:
    """Like ``assert_almost_equal`` but tolerating a fraction ``etol`` of mismatching elements.

        >>> assert_almost_equal_with_err([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 9.0], etol=0.3)
    """
    a, b = _np(a), _np(b)
    rtol_, atol_ = get_tols(a, b, rtol, atol)
    etol = get_etol(etol)
    ratio = _violation(a, b, rtol_, atol_, equal_nan)
    if ratio.size and (ratio > 1).mean() > etol:
        assert_almost_equal(a, b, rtol, atol, names, equal_nan, mismatches=mismatches)


def assert_exception(f: Callable, exception_type: type, *args: Any, **kwargs: Any) -> None:
    """Assert that ``f(*args, **kwargs)`` raises ``exception_type``.

        >>> assert_exception(int, ValueError, 'x')
    """
    try:
        f(*args, **kwargs)
    except exception_type:
        return
    raise AssertionError(f"{getattr(f, '__name__', f)} did not raise {exception_type.__name__}")


def collapse_sum_like(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Sum ``a`` down to ``shape`` over the axes broadcasting expanded (the gradient of broadcast_to).

        >>> collapse_sum_like(np.ones((2, 3)), (1, 3)).tolist()
        [[2.0, 2.0, 2.0]]
    """
    a = np.asarray(a)
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    a = a.sum(axis=tuple(range(lead))) if lead > 0 else a
    axes = tuple(i for i, (n, m) in enumerate(zip(a.shape, shape)) if m == 1 and n != 1)
    return a.sum(axis=axes, keepdims=True) if axes else a


# -- random inputs ----------------------------------------------------------------------
def random_arrays(*shapes: Sequence[int]) -> Any:
    """Standard-normal float32 arrays of the given shapes (one array if one shape).

        >>> random_arrays((2, 3)).shape, len(random_arrays((1,), (2,)))
        ((2, 3), 2)
    """
    arrays = [np.array(np.random.randn(), dtype=default_dtype()) if len(s) == 0
              else np.random.randn(*s).astype(default_dtype()) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def random_uniform_arrays(*shapes: Sequence[int], low: float = 0.0, high: float = 1.0, dtype: Any = None) -> Any:
    """Uniform [low, high) arrays of the given shapes (one array if one shape).

        >>> float(random_uniform_arrays((4,), low=2, high=3).min()) >= 2
        True
    """
    dtype = dtype or default_dtype()
    arrays = [np.random.uniform(low, high, size=s).astype(dtype) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def random_sample(population: Sequence, k: int) -> list:
    """``k`` distinct elements of ``population``.

        >>> len(random_sample(range(10), 3))
        3
    """
    return _pyrandom.sample(list(population), k)


def _sparse_error(api: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(f"{api}: xgraph arrays are dense (storage type 'default'); sparse storage "
                                   "('csr', 'row_sparse') is not supported: use dense arrays")


def rand_ndarray(shape: Sequence[int], stype: str = "default", density: float | None = None, dtype: Any = None,
                 modifier_func: Callable | None = None, shuffle_csr_indices: bool = False,
                 distribution: str | None = None, ctx: Any = None) -> NDArray:
    """A dense NDArray of uniform [0, 1) values; sparse storage types raise UnsupportedFeatureError.

        >>> rand_ndarray((2, 3)).shape
        (2, 3)
    """
    if stype != "default":
        raise _sparse_error(f"rand_ndarray(stype={stype!r})")
    values = np.random.uniform(0, 1, size=tuple(shape)).astype(dtype or default_dtype())
    if modifier_func is not None:
        values = np.vectorize(modifier_func)(values).astype(values.dtype)
    return NDArray(values, ctx=ctx)


def create_sparse_array(*args: Any, **kwargs: Any) -> NDArray:
    """Sparse arrays are not supported: raises UnsupportedFeatureError.

        >>> try: create_sparse_array((2, 2), 'csr')
        ... except UnsupportedFeatureError: print('dense only')
        dense only
    """
    raise _sparse_error("create_sparse_array")


rand_sparse_ndarray = create_sparse_array


def rand_shape_2d(dim0: int = 10, dim1: int = 10, allow_zero_size: bool = False) -> tuple[int, int]:
    """A random 2-D shape with sides in [1, dim] (or [0, dim] with ``allow_zero_size``).

        >>> len(rand_shape_2d())
        2
    """
    low = 0 if allow_zero_size else 1
    return int(np.random.randint(low, dim0 + 1)), int(np.random.randint(low, dim1 + 1))


def rand_shape_3d(dim0: int = 10, dim1: int = 10, dim2: int = 10, allow_zero_size: bool = False) -> tuple[int, ...]:
    """A random 3-D shape with sides in [1, dim].

        >>> len(rand_shape_3d())
        3
    """
    low = 0 if allow_zero_size else 1
    return tuple(int(np.random.randint(low, d + 1)) for d in (dim0, dim1, dim2))


def rand_shape_nd(num_dim: int, dim: int = 10, allow_zero_size: bool = False) -> tuple[int, ...]:
    """A random ``num_dim``-D shape with sides in [1, dim].

        >>> all(1 <= s <= 4 for s in rand_shape_nd(5, dim=4))
        True
    """
    low = 0 if allow_zero_size else 1
    return tuple(int(s) for s in np.random.randint(low, dim + 1, size=num_dim))


def rand_coord_2d(x_low: int, x_high: int, y_low: int, y_high: int) -> tuple[int, int]:
    """A random integer point in [x_low, x_high) x [y_low, y_high).

        >>> x, y = rand_coord_2d(0, 2, 5, 6); y
        5
    """
    return int(np.random.randint(x_low, x_high)), int(np.random.randint(y_low, y_high))


def np_reduce(dat: np.ndarray, axis: Any, keepdims: bool, numpy_reduce_func: Callable) -> np.ndarray:
    """Reduce ``dat`` over ``axis`` (None, an int or a tuple) with a one-axis numpy reduction.

        >>> np_reduce(np.ones((2, 3, 4)), (0, 2), False, np.sum).tolist()
        [8.0, 8.0, 8.0]
    """
    if isinstance(axis, int):
        axis = [axis]
    else:
        axis = list(axis) if axis is not None else list(range(len(dat.shape)))
    ret = dat
    for i in reversed(sorted(a % dat.ndim if dat.ndim else a for a in axis)):
        ret = numpy_reduce_func(ret, axis=i)
    if keepdims:
        shape = list(dat.shape)
        for i in axis:
            shape[i] = 1
        ret = ret.reshape(tuple(shape))
    return ret


# -- executing symbols ------------------------------------------------------------------
def _named_arrays(values: Any, names: Sequence[str], what: str, kinds: str, ctx: Any, dtype: Any) -> dict[str, NDArray]:
    """``values`` (a list in ``names`` order or a dict by name) as named NDArrays."""
    if isinstance(values, Mapping):
        items = dict(values)
    else:
        values = list(values)
        if len(values) != len(names):
            raise BindError(f"{what} has {len(values)} arrays but the symbol has {len(names)} {kinds} {names}")
        items = dict(zip(names, values))
    return {k: _to_nd(v, ctx, dtype) for k, v in items.items()}


def _parse_location(sym: Any, location: Any, ctx: Any, dtype: Any = None) -> dict[str, NDArray]:
    """``location`` (a list in ``list_arguments()`` order or a dict by name) as named NDArrays."""
    names = sym.list_arguments()
    if isinstance(location, Mapping):
        unknown = set(location) - set(names)
        if unknown:
            raise BindError(f"location names {sorted(unknown)} are not arguments of the symbol; "
                            f"its arguments are {names}")
    return _named_arrays(location, names, "location", "arguments", ctx, dtype)


def _to_nd(v: Any, ctx: Any, dtype: Any) -> NDArray:
    """A location value as MXNet's checks take it: an NDArray as it is (a new handle on the same values),
    anything else converted to ``dtype`` (float32 by default, integers included; ``'asnumpy'`` or None
    keeps the value's own dtype)."""
    if isinstance(v, NDArray):
        return NDArray(v.data)
    arr = _np(v)
    if dtype is not None and not (isinstance(dtype, str) and dtype == "asnumpy"):
        arr = arr.astype(_dt.canonical(dtype))
    return NDArray(arr, ctx=ctx)


def _parse_aux_states(sym: Any, aux_states: Any, ctx: Any, dtype: Any = None) -> dict[str, NDArray] | None:
    if aux_states is None:
        return None
    return _named_arrays(aux_states, sym.list_auxiliary_states(), "aux_states", "auxiliary states", ctx, dtype)


def _grad_req_dict(names: Sequence[str], grad_req: Any) -> dict[str, str]:
    if isinstance(grad_req, str):
        return {k: grad_req for k in names}
    if isinstance(grad_req, Mapping):
        return {k: grad_req.get(k, "null") for k in names}
    return dict(zip(names, grad_req))


def simple_forward(sym: Any, ctx: Any = None, is_train: bool = False, **inputs: Any) -> Any:
    """Bind ``sym`` to the named numpy inputs, run forward, return the output(s) as numpy.

        >>> import xgraph as mx
        >>> simple_forward(mx.sym.var('a') + 1, a=np.zeros(2)).tolist()
        [1.0, 1.0]
    """
    ctx = ctx or default_context()
    args = {k: NDArray(_np(v), ctx=ctx) for k, v in inputs.items()}
    exe = sym.bind(ctx, args=args, grad_req="null")
    exe.forward(is_train=is_train)
    outputs = [o.asnumpy() for o in exe.outputs]
    return outputs[0] if len(outputs) == 1 else outputs


def _expected_list(sym: Any, expected: Any, names: Sequence[str]) -> list:
    if isinstance(expected, Mapping):
        return [expected[n] for n in names]
    return list(expected)


def check_symbolic_forward(sym: Any, location: Any, expected: Any, rtol: Any = None, atol: Any = None,
                           aux_states: Any = None, ctx: Any = None, equal_nan: bool = False,
                           dtype: Any = np.float32) -> list[np.ndarray]:
    """Bind ``sym`` at ``location``, run an inference forward, compare every output with ``expected``.

    ``expected`` is a list in output order or a dict by output name; returns the outputs.

        >>> import xgraph as mx
        >>> _ = check_symbolic_forward(mx.sym.relu(mx.sym.var('x')), {'x': [-1.0, 2.0]}, [[0.0, 2.0]])
    """
    ctx = ctx or default_context()
    location = _parse_location(sym, location, ctx, dtype)
    aux = _parse_aux_states(sym, aux_states, ctx, dtype)
    expected = _expected_list(sym, expected, sym.list_outputs())
    exe = sym.bind(ctx, args=location, grad_req="null", aux_states=aux)
    outputs = [o.asnumpy() for o in exe.forward(is_train=False)]
    if len(expected) != len(outputs):
        raise AssertionError(f"expected {len(expected)} outputs, the symbol has {len(outputs)}: {sym.list_outputs()}")
    for name, out, exp in zip(sym.list_outputs(), outputs, expected):
        assert_almost_equal(exp, out, rtol, atol, (f"EXPECTED_{name}", f"FORWARD_{name}"), equal_nan=equal_nan)
    return outputs


def check_symbolic_backward(sym: Any, location: Any, out_grads: Any, expected: Any, rtol: Any = None,
                            atol: Any = None, aux_states: Any = None, grad_req: Any = "write", ctx: Any = None,
                            grad_stypes: Any = None, equal_nan: bool = False,
                            dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Bind ``sym``, run a training forward and backward with ``out_grads``, compare the argument
    gradients with ``expected`` (a list in argument order or a dict by name).  With
    ``grad_req='add'`` the gradients start from random values, which the comparison accounts for.

        >>> import xgraph as mx
        >>> g = check_symbolic_backward(mx.sym.var('x') * 3, [np.ones(2)], [np.ones(2)], [3 * np.ones(2)])
        >>> g['x'].tolist()
        [3.0, 3.0]
    """
    ctx = ctx or default_context()
    if grad_stypes and any(s != "default" for s in grad_stypes.values()):
        raise _sparse_error("check_symbolic_backward(grad_stypes=...)")
    location = _parse_location(sym, location, ctx, dtype)
    aux = _parse_aux_states(sym, aux_states, ctx, dtype)
    names = sym.list_arguments()
    if isinstance(expected, Mapping):
        expected = dict(expected)
    else:
        expected = dict(zip(names, expected))
    reqs = _grad_req_dict(names, grad_req)
    initial = {k: np.random.normal(size=location[k].shape).astype(location[k].dtype) for k in names}
    args_grad = {k: NDArray(initial[k], ctx=ctx) for k in names if reqs[k] != "null"}
    exe = sym.bind(ctx, args=location, args_grad=args_grad, grad_req=reqs, aux_states=aux)
    exe.forward(is_train=True)
    if isinstance(out_grads, Mapping):
        out_grads = [out_grads[n] for n in sym.list_outputs()]
    if out_grads is not None:
        out_grads = [NDArray(_np(g).astype(_np(g).dtype if _np(g).dtype.kind == "f" else np.float32), ctx=ctx)
                     for g in (out_grads if isinstance(out_grads, (list, tuple)) else [out_grads])]
    exe.backward(out_grads)
    grads = {k: v.asnumpy() for k, v in exe.grad_dict.items() if v is not None}
    for name, exp in expected.items():
        if exp is None:
            continue
        req = reqs.get(name, "null")
        if req == "write":
            assert_almost_equal(exp, grads[name], rtol, atol, (f"EXPECTED_{name}", f"BACKWARD_{name}"), equal_nan=equal_nan)
        elif req == "add":
            assert_almost_equal(exp, grads[name] - initial[name], rtol, atol,
                                (f"EXPECTED_{name}", f"BACKWARD_{name}"), equal_nan=equal_nan)
        elif req == "null" and name in grads:
            assert_almost_equal(initial[name], grads[name], rtol, atol,
                                (f"EXPECTED_{name}", f"BACKWARD_{name}"), equal_nan=equal_nan)
    return grads


_NUMERIC_GRAD_BUDGET = 1 << 23   # elements of inputs + outputs one batched finite-difference chunk may hold
_NUMERIC_GRAD_MAX_CHUNK = 256     # perturbed copies of the graph per compiled call


def numeric_grad(executor: Any, location: dict[str, np.ndarray], aux_states: dict | None = None,
                 eps: float = 1e-4, use_forward_train: bool = True, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Central finite differences of ``sum(executor.outputs[0])`` with respect to each input in ``location``.

    Element ``i`` of input ``k`` gets ``(sum(f(v + eps/2 e_i)) - sum(f(v - eps/2 e_i))) / eps``, the
    sums in float64, every forward seeing ``aux_states`` (when given).  All perturbations of one
    input run as one compiled program (``jax.vmap`` over the perturbed copies of the graph's pure
    function, in chunks); a graph that draws random numbers (each of MXNet's forwards draws anew)
    or runs Custom ops on the host is evaluated one executor forward per perturbation.

        >>> import xgraph as mx
        >>> exe = (mx.sym.var('x') ** 2).bind(mx.cpu(), args={'x': mx.nd.array([3.0])}, grad_req='null')
        >>> round(float(numeric_grad(exe, {'x': np.array([3.0])}, eps=1e-2)['x'][0]), 3)
        6.0
    """
    grads = _batched_numeric_grad(executor, location, aux_states, eps, use_forward_train, dtype)
    if grads is None:
        grads = _looped_numeric_grad(executor, location, aux_states, eps, use_forward_train, dtype)
    return grads


def _perturbed(v: np.ndarray, delta: float) -> np.ndarray:
    """Every element of ``v`` moved by ``delta``, rounded as ``v.flat[i] = v.flat[i] + delta`` rounds."""
    flat = v.reshape(-1)
    return (flat + delta).astype(v.dtype)


def _looped_numeric_grad(executor: Any, location: Mapping[str, np.ndarray], aux_states: Mapping | None,
                         eps: float, use_forward_train: bool, dtype: Any) -> dict[str, np.ndarray]:
    """:func:`numeric_grad` as two executor forwards per element (random draws, host ops)."""
    grads = {k: np.zeros(np.shape(v), dtype=dtype) for k, v in location.items()}
    for k, v in location.items():
        v = np.array(v, dtype=dtype, order="C")
        if v.dtype.kind != "f":
            continue
        for i in range(v.size):
            orig = v.flat[i]
            totals = []
            for delta in (eps / 2.0, -eps / 2.0):
                v.flat[i] = orig + delta
                executor.arg_dict[k][:] = v
                if aux_states is not None:
                    for name, val in aux_states.items():
                        executor.aux_dict[name][:] = val
                executor.forward(is_train=use_forward_train)
                totals.append(executor.outputs[0].asnumpy().astype(np.float64).sum())
            v.flat[i] = orig
            grads[k].flat[i] = (totals[0] - totals[1]) / eps
        executor.arg_dict[k][:] = v
    return grads


def _batchable(graph: Any) -> bool:
    """Whether a graph's forwards may run as one vmapped program: no random draws, no host ops."""
    return not any(n.is_random or n.op.name == "Custom" for n in graph.topo_order() if n.op is not None)


def _perturbation_program(graph: Any, is_train: bool, positions: tuple[int, ...]) -> Callable:
    """A jitted ``(idx, val, args, aux) -> outputs[0]`` batched over ``idx``/``val``: the graph's first
    output with element ``idx[b]`` of the concatenation of the arguments at ``positions`` (flattened,
    in that order) set to ``val[b]``.  One compiled program serves every perturbed input."""
    import jax
    import jax.numpy as jnp
    from .lower import GraphFunction, cached

    def build():
        gf = GraphFunction(graph, is_train)

        def one(idx, val, args, aux):
            a = list(args)
            offset = 0
            for pos in positions:
                base = a[pos]
                local = idx - offset
                inside = (local >= 0) & (local < base.size)
                local = jnp.where(inside, local, base.size)          # out of range: dropped
                flat = base.reshape(-1).at[local].set(val.astype(base.dtype), mode="drop")
                a[pos] = flat.reshape(base.shape)
                offset += base.size
            return gf(a, aux, None)[0][0]
        return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))
    return cached((graph.program_hash(), bool(is_train), positions, "numeric_grad"), build)


def _batched_numeric_grad(executor: Any, location: Mapping[str, np.ndarray], aux_states: Mapping | None,
                          eps: float, use_forward_train: bool, dtype: Any) -> dict[str, np.ndarray] | None:
    """:func:`numeric_grad` with every perturbation of every input in vmapped chunks of one compiled
    program; None where the graph cannot be batched (the caller then runs the per-element loop)."""
    import jax
    from .lower import GraphFunction
    graph = executor.symbol.graph
    if not _batchable(graph):
        return None
    gf = GraphFunction(graph, bool(use_forward_train))
    values = {n: a.data for n, a in executor.arg_dict.items()}
    aux_values = {n: a.data for n, a in executor.aux_dict.items()}
    if aux_states is not None:
        aux_values.update({n: np.asarray(v, dtype=executor.aux_dict[n].dtype) for n, v in aux_states.items()})
    if any(n not in values for n in gf.arg_names) or any(n not in aux_values for n in gf.aux_names):
        return None
    aux = tuple(aux_values[n] for n in gf.aux_names)
    grads = {k: np.zeros(np.shape(v), dtype=dtype) for k, v in location.items()}
    perturbed = []                     # (name, float array) of the inputs the output reads, in order
    for k, v in location.items():
        v = np.array(v, dtype=dtype, order="C")
        values[k] = v.astype(executor.arg_dict[k].dtype)
        if v.dtype.kind == "f" and v.size and k in gf.arg_names:   # an unread input: every difference is 0
            perturbed.append((k, v))
    if not perturbed:
        return grads
    positions = tuple(gf.arg_names.index(k) for k, _ in perturbed)
    idx_parts, plus, minus = [], [], []
    offset = 0
    for k, v in perturbed:
        idx_parts.append(np.arange(v.size) + offset)
        plus.append(_perturbed(v, eps / 2.0).astype(np.float64))
        minus.append(_perturbed(v, -eps / 2.0).astype(np.float64))
        offset += v.size
    n = offset
    idx = np.concatenate(idx_parts * 2).astype(np.int32)
    wide = np.result_type(*(values[k].dtype for k, _ in perturbed), np.float32)
    vals = np.concatenate(plus + minus).astype(wide)
    out_shape = tuple(executor.outputs[0].shape)
    per_copy = sum(int(np.prod(np.shape(v))) for v in values.values()) + int(np.prod(out_shape))
    chunk = int(max(1, min(2 * n, _NUMERIC_GRAD_MAX_CHUNK, _NUMERIC_GRAD_BUDGET // max(1, per_copy))))
    prog = _perturbation_program(graph, bool(use_forward_train), positions)
    args = tuple(values[a] for a in gf.arg_names)
    totals = np.empty(2 * n, np.float64)
    try:
        for start in range(0, 2 * n, chunk):
            stop = min(start + chunk, 2 * n)
            sel = np.arange(start, start + chunk).clip(max=stop - 1)   # the last chunk padded: one compile
            outs = np.asarray(jax.device_get(prog(idx[sel], vals[sel], args, aux)))
            totals[start:stop] = outs[: stop - start].reshape(stop - start, -1).astype(np.float64).sum(axis=1)
    except Exception:   # an op with no batching rule: the per-element loop gives the result (or the error)
        return None
    diffs = (totals[:n] - totals[n:]) / eps
    offset = 0
    for k, v in perturbed:
        grads[k].reshape(-1)[:] = diffs[offset:offset + v.size]
        offset += v.size
        executor.arg_dict[k][:] = v
    return grads


def check_numeric_gradient(sym: Any, location: Any, aux_states: Any = None, numeric_eps: Any = None,
                           rtol: Any = None, atol: Any = None, grad_nodes: Any = None,
                           use_forward_train: bool = True, ctx: Any = None, grad_stype_dict: Any = None,
                           dtype: Any = np.float32) -> None:
    """Compare the symbolic gradient of ``sum(sym * P)`` (P a random projection) with finite differences.

    ``grad_nodes`` is a list of argument names (grad_req 'write') or a dict name -> grad_req.

        >>> import xgraph as mx
        >>> check_numeric_gradient(mx.sym.sigmoid(mx.sym.var('x')), [np.random.rand(2, 3)])
    """
    from . import symbol as S
    if dtype not in (np.float16, np.float32, np.float64):
        raise BindError(f"check_numeric_gradient: dtype must be float16, float32 or float64, got {dtype}")
    if grad_stype_dict and any(s != "default" for s in grad_stype_dict.values()):
        raise _sparse_error("check_numeric_gradient(grad_stype_dict=...)")
    ctx = ctx or default_context()
    location = _parse_location(sym, location, ctx, dtype)
    location_np = {k: v.asnumpy() for k, v in location.items()}
    aux = _parse_aux_states(sym, aux_states, ctx, dtype)
    aux_np = {k: v.asnumpy() for k, v in aux.items()} if aux is not None else None
    if grad_nodes is None:
        grad_req = {k: "write" for k in sym.list_arguments()}
    elif isinstance(grad_nodes, Mapping):
        grad_req = dict(grad_nodes)
    else:
        grad_req = {k: "write" for k in grad_nodes}
    _, out_shapes, _ = sym.infer_shape(**{k: v.shape for k, v in location.items()})
    if len(out_shapes) != 1:
        raise BindError(f"check_numeric_gradient needs a single-output symbol, got outputs {sym.list_outputs()}")
    loss = S.MakeLoss(sym * S.var("__random_proj"))
    location["__random_proj"] = NDArray((np.random.rand(*out_shapes[0]) + 0.1).astype(dtype), ctx=ctx)
    initial = {k: np.random.normal(0, 0.01, size=location[k].shape).astype(dtype) for k in grad_req}
    args_grad = {k: NDArray(v, ctx=ctx) for k, v in initial.items()}
    exe = loss.bind(ctx, args=location, args_grad=args_grad, grad_req=grad_req, aux_states=aux)
    exe.forward(is_train=True)
    eps = get_tolerance(exe.outputs[0], numeric_eps, default_numeric_eps())
    exe.backward()
    symbolic = {k: v.asnumpy() for k, v in exe.grad_dict.items() if v is not None}
    numeric = numeric_grad(exe, location_np, aux_np, eps=eps, use_forward_train=use_forward_train, dtype=dtype)
    for name, req in grad_req.items():
        names = (f"NUMERICAL_{name}", f"BACKWARD_{name}")
        if req == "write":
            assert_almost_equal(numeric[name], symbolic[name], rtol, atol, names)
        elif req == "add":
            assert_almost_equal(numeric[name], symbolic[name] - initial[name], rtol, atol, names)
        elif req == "null" and name in symbolic:
            assert_almost_equal(initial[name], symbolic[name], rtol, atol, names)


def check_speed(sym: Any, location: Any = None, ctx: Any = None, N: int = 20, grad_req: Any = None,
                typ: str = "whole", **kwargs: Any) -> float:
    """Seconds per iteration of ``sym``: ``typ='whole'`` times forward+backward, ``'forward'`` forward only.

        >>> import xgraph as mx
        >>> check_speed(mx.sym.relu(mx.sym.var('x')), x=(4, 4), N=2, typ='forward') > 0
        True
    """
    ctx = ctx or default_context()
    grad_req = grad_req or "write"
    if location is None:
        exe = sym.simple_bind(ctx, grad_req=grad_req, **kwargs)
        location = {k: np.random.normal(size=arr.shape, scale=1.0) for k, arr in exe.arg_dict.items()}
    else:
        location = {k: _np(v) for k, v in (location.items() if isinstance(location, Mapping)
                                            else zip(sym.list_arguments(), location))}
        exe = sym.simple_bind(ctx, grad_req=grad_req, **{k: v.shape for k, v in location.items()})
    for k, v in location.items():
        exe.arg_dict[k][:] = v
    if typ not in ("whole", "forward"):
        raise BindError(f"check_speed: typ must be 'whole' or 'forward', got {typ!r}")

    def step() -> None:
        if typ == "whole":
            exe.forward(is_train=True)
            exe.backward(out_grads=[NDArray(np.ones(o.shape, o.dtype)) for o in exe.outputs])
            for g in exe.grad_arrays:
                if g is not None:
                    g.wait_to_read()
        else:
            exe.forward(is_train=False)
        for o in exe.outputs:
            o.wait_to_read()

    step()
    tic = time.perf_counter()
    for _ in range(N):
        step()
    return (time.perf_counter() - tic) / N


def check_consistency(sym: Any, ctx_list: Sequence[dict], scale: float = 1.0, grad_req: Any = "write",
                      arg_params: Any = None, aux_params: Any = None, tol: Any = None, raise_on_err: bool = True,
                      ground_truth: Any = None, equal_nan: bool = False, use_uniform: bool = False,
                      rand_type: Any = np.float64) -> list:
    """Run ``sym`` (or one symbol per entry) under every ``ctx_list`` entry (``{'ctx': ..., <input>: shape,
    'type_dict': {...}}``) on the same random inputs and check that outputs and gradients agree with the
    most precise entry, at tolerances of the less precise dtype.  Returns the ground-truth arrays.

        >>> import xgraph as mx
        >>> x = mx.sym.var('x')
        >>> _ = check_consistency(mx.sym.tanh(x), [{'ctx': mx.cpu(), 'x': (2, 3), 'type_dict': {'x': np.float32}},
        ...                                        {'ctx': mx.cpu(), 'x': (2, 3), 'type_dict': {'x': np.float64}}])
    """
    syms = list(sym) if isinstance(sym, (list, tuple)) else [sym] * len(ctx_list)
    if len(syms) != len(ctx_list):
        raise BindError(f"check_consistency: {len(syms)} symbols for {len(ctx_list)} contexts")
    tols = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-5,
            np.dtype(np.uint8): 0, np.dtype(np.int32): 0, np.dtype(np.int64): 0}
    try:
        import ml_dtypes
        tols[np.dtype(ml_dtypes.bfloat16)] = 1e-1
    except ImportError:  # pragma: no cover
        pass
    if isinstance(tol, numbers.Number):
        tols = {k: tol for k in tols}
    elif isinstance(tol, Mapping):
        tols.update({np.dtype(k): v for k, v in tol.items()})
    exes = []
    for s, spec in zip(syms, ctx_list):
        spec = dict(spec)
        ctx = spec.pop("ctx", None) or default_context()
        type_dict = spec.pop("type_dict", None)
        exes.append(s.simple_bind(ctx, grad_req=grad_req, type_dict=type_dict, **spec))
    arg_params = dict(arg_params or {})
    aux_params = dict(aux_params or {})
    first = exes[0]
    for name, arr in first.arg_dict.items():
        if name not in arg_params:
            arg_params[name] = (np.random.uniform(-scale, scale, size=arr.shape) if use_uniform
                                else np.random.normal(size=arr.shape, scale=scale)).astype(rand_type)
    for name, arr in first.aux_dict.items():
        aux_params.setdefault(name, 0)
    for exe in exes:
        for name, arr in exe.arg_dict.items():
            arr[:] = np.asarray(_np(arg_params[name])).astype(arr.dtype)
        for name, arr in exe.aux_dict.items():
            arr[:] = np.broadcast_to(np.asarray(_np(aux_params[name])), arr.shape).astype(arr.dtype)
    dtypes = [np.dtype(exe.outputs[0].dtype) if exe.outputs else np.dtype(np.float32) for exe in exes]
    for exe in exes:
        exe.forward(is_train=False)
    dtypes = [np.dtype(exe.outputs[0].dtype) for exe in exes]
    gt_index = int(np.argmax([d.itemsize for d in dtypes]))
    output_names = syms[0].list_outputs()

    def compare(values: list[list[np.ndarray]], what: list[str]) -> None:
        gt = ground_truth_values if ground_truth is not None else values[gt_index]
        for i, vals in enumerate(values):
            if i == gt_index and ground_truth is None:
                continue
            for name, v, g in zip(what, vals, gt):
                t = tols.get(dtypes[i], 1e-3)
                try:
                    assert_almost_equal(v, g, rtol=t, atol=t, equal_nan=equal_nan,
                                        names=(f"ctx_{i}_{name}", f"ctx_{gt_index}_{name}"))
                except AssertionError:
                    if raise_on_err:
                        raise
                    print(f"check_consistency: ctx {i} {name} differs", file=sys.stderr)

    ground_truth_values = None
    if ground_truth is not None:
        ground_truth_values = [_np(ground_truth[n]) for n in output_names]
    compare([[o.asnumpy() for o in exe.outputs] for exe in exes], output_names)
    if grad_req != "null":
        out_grads = [np.random.normal(size=o.shape, scale=scale) for o in exes[gt_index].outputs]
        for exe in exes:
            exe.forward(is_train=True)
            exe.backward([NDArray(g.astype(o.dtype)) for g, o in zip(out_grads, exe.outputs)])
        grad_names = [n for n, g in exes[0].grad_dict.items() if g is not None]
        if ground_truth is not None:
            ground_truth_values = [_np(ground_truth[n]) for n in grad_names] if all(
                n in ground_truth for n in grad_names) else None
            if ground_truth_values is None:
                return [exes[gt_index].grad_dict[n].asnumpy() for n in grad_names]
        compare([[exe.grad_dict[n].asnumpy() for n in grad_names] for exe in exes], grad_names)
    return [o.asnumpy() for o in exes[gt_index].outputs]


# -- environment ----------------------------------------------------------------------
@contextlib.contextmanager
def environment(*args: Any) -> Iterator[None]:
    """Set environment variables inside the block (``name, value`` or a dict; ``None`` unsets),
    restoring them afterwards even on error.

        >>> with environment('XGRAPH_DOCTEST_ENV', '1'):
        ...     os.environ['XGRAPH_DOCTEST_ENV']
        '1'
        >>> 'XGRAPH_DOCTEST_ENV' in os.environ
        False
    """
    if len(args) == 2:
        updates = {args[0]: args[1]}
    elif len(args) == 1 and isinstance(args[0], Mapping):
        updates = dict(args[0])
    else:
        raise BindError("environment() takes (name, value) or one dict of name -> value")
    saved = {k: os.environ.get(k) for k in updates}

    def apply(values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)

    apply(updates)
    try:
        yield
    finally:
        apply(saved)


@contextlib.contextmanager
def discard_stderr() -> Iterator[None]:
    """Send file-descriptor-level stderr to /dev/null inside the block (for noisy native code).

        >>> with discard_stderr():
        ...     print('hidden', file=sys.stderr)
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(devnull)
        os.close(saved)


def is_op_runnable() -> bool:
    """Whether GPU-only operator variants can run (MXNet checks the GPU arch); always True here.

        >>> is_op_runnable()
        True
    """
    return True


def has_tvm_ops() -> bool:
    """MXNet's TVM-generated operators: not part of xgraph.

        >>> has_tvm_ops()
        False
    """
    return False


def is_cd_run() -> bool:
    """Whether this runs in MXNet's continuous-delivery pipeline: never.

        >>> is_cd_run()
        False
    """
    return False
