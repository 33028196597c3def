"""NDArray: a thin, MXNet-shaped handle over a ``jax.Array``.

Not a second array library: an NDArray holds one ``jax.Array`` and swaps it
for another on in-place writes, so ``ex.arg_dict['w'][:] = value`` works as in
MXNet while every computation stays in JAX.  Any registered operator can be
called imperatively, ``mx.nd.FullyConnected(x, w, b, num_hidden=4)``, through
a cached one-op executable.

    >>> import xgraph as mx
    >>> a = mx.nd.ones((2, 3))
    >>> a[:] = 5
    >>> (a * 2).asnumpy().tolist()
    [[10.0, 10.0, 10.0], [10.0, 10.0, 10.0]]
"""
from __future__ import annotations

import builtins
import math
from numbers import Number
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import dtypes as _dt
from . import autograd, rng
from .context import Context, as_context, device_array
from .errors import BindError, ShapeError
from .ops.elemwise import BINARY as _BINARY


class NDArray:
    """A handle over a ``jax.Array`` with MXNet's everyday surface."""

    __slots__ = ("_buf", "_thunk", "_grad", "_grad_req", "__weakref__")
    __array_priority__ = 1000.0

    def __init__(self, data: Any, ctx: Any = None, dtype: Any = None):
        if isinstance(data, NDArray):
            data = data.data
        if not isinstance(data, jax.Array) or dtype is not None or ctx is not None:
            data = device_array(data, dtype, as_context(ctx).device if ctx is not None else None)
        self._buf = data
        self._thunk: Callable[[], None] | None = None
        self._grad: "NDArray | None" = None   # set by attach_grad / autograd.mark_variables
        self._grad_req = "null"

    # -- the buffer -------------------------------------------------------
    @property
    def data(self) -> jax.Array:
        """The underlying ``jax.Array`` (computing it first if it is pending)."""
        if self._thunk is not None:
            self._thunk()
        return self._buf

    def _set_pending(self, thunk: Callable[[], None]) -> None:
        """Mark the buffer as produced later by ``thunk`` (the executor's deferred step)."""
        self._thunk = thunk

    def _set(self, value: jax.Array) -> None:
        self._buf = value
        self._thunk = None

    def __jax_array__(self) -> jax.Array:
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(self.data)
        return a.astype(dtype) if dtype is not None else a

    # -- properties -------------------------------------------------------
    # shape, dtype and device never change while a value is pending: read them without computing it
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._buf.shape)

    @property
    def dtype(self) -> type:
        """The numpy scalar type, as MXNet reports it (``numpy.float32``)."""
        return np.dtype(self._buf.dtype).type

    @property
    def ndim(self) -> int:
        return self._buf.ndim

    @property
    def size(self) -> int:
        return int(self._buf.size)

    @property
    def context(self) -> Context:
        """The device the array lives on."""
        return Context.from_device(next(iter(self._buf.devices())))

    ctx = context

    @property
    def T(self) -> "NDArray":
        return NDArray(self.data.T)

    @property
    def stype(self) -> str:
        return "default"

    # -- conversion -------------------------------------------------------
    def asnumpy(self) -> np.ndarray:
        """A numpy copy of the array."""
        return np.array(self.data)

    def asscalar(self) -> Any:
        """The single value of a one-element array."""
        if self.size != 1:
            raise ShapeError(f"asscalar needs an array of one element, this one has shape {self.shape}")
        return self.asnumpy().reshape(())[()]

    def astype(self, dtype: Any, copy: bool = True) -> "NDArray":
        """A copy converted to ``dtype``."""
        dt = _dt.canonical(dtype)
        return _traced(lambda a: a.astype(dt), self)

    def copy(self) -> "NDArray":
        return NDArray(jnp.array(self.data, copy=True))

    def copyto(self, other: "NDArray | Context") -> "NDArray":
        """Copy into another NDArray (same shape) or onto a device; returns the destination."""
        if isinstance(other, NDArray):
            other[:] = self
            return other
        return NDArray(jax.device_put(self.data, as_context(other).device))

    def as_in_context(self, ctx: Any) -> "NDArray":
        """This array on ``ctx`` (itself if it is already there)."""
        ctx = as_context(ctx)
        return self if ctx == self.context else self.copyto(ctx)

    def wait_to_read(self) -> None:
        """Block until the array's value is computed."""
        self.data.block_until_ready()

    def reshape(self, *shape: Any, **kwargs: Any) -> "NDArray":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if "shape" in kwargs:
            shape = tuple(kwargs["shape"])
        return _traced(lambda a: jnp.reshape(a, shape), self)

    # -- autograd (mx.autograd records these arrays' ops) --------------------
    def attach_grad(self, grad_req: str = "write", stype: Any = None) -> None:
        """Allocate ``.grad`` (zeros) and mark this array for :mod:`xgraph.autograd`.

            >>> import xgraph as mx
            >>> x = mx.nd.ones((2,)); x.attach_grad(); x.grad.asnumpy().tolist()
            [0.0, 0.0]
        """
        if stype not in (None, "default"):
            from .errors import UnsupportedFeatureError
            raise UnsupportedFeatureError(f"attach_grad(stype={stype!r}): sparse gradients are not supported; "
                                          "use the default (dense) storage")
        autograd.mark_variables([self], [NDArray(jnp.zeros_like(self.data))], grad_req)

    @property
    def grad(self) -> "NDArray | None":
        """The gradient buffer attached by :meth:`attach_grad` (None when not attached)."""
        return self._grad

    def backward(self, out_grad: Any = None, retain_graph: bool = False, train_mode: bool = True) -> None:
        """``mx.autograd.backward([self], [out_grad])``."""
        autograd.backward([self], None if out_grad is None else [out_grad], retain_graph, train_mode)

    def detach(self) -> "NDArray":
        """The same values, cut off from the recorded graph."""
        return NDArray(self.data)

    def tolist(self) -> list:
        return self.asnumpy().tolist()

    # -- indexing ---------------------------------------------------------
    def __getitem__(self, key: Any) -> "NDArray":
        key = _unwrap(key)
        return _traced(lambda a: a[key], self)

    def __setitem__(self, key: Any, value: Any) -> None:
        cur = self.data
        value = _unwrap(value)
        if _is_whole(key):
            new = jnp.asarray(value, dtype=cur.dtype)
            if new.shape != cur.shape:
                try:
                    new = jnp.broadcast_to(new, cur.shape)
                except ValueError:
                    raise ShapeError(f"cannot assign an array of shape {new.shape} to an NDArray of shape "
                                     f"{cur.shape}") from None
            # always committed to the array's device: a jitted program keys its compiled code on whether
            # each argument is committed, so a write must not flip it (that recompiles the executor)
            self._set(jax.device_put(new, next(iter(cur.devices()))))
        else:
            self._set(cur.at[_unwrap(key)].set(jnp.asarray(value, dtype=cur.dtype)))

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- arithmetic -------------------------------------------------------
    def _bin(self, other: Any, fn: Callable, reverse: bool = False) -> "NDArray":
        o = _unwrap(other)
        if not isinstance(o, (Number, np.number, np.ndarray, jax.Array, np.bool_)):
            return NotImplemented
        if isinstance(o, (Number, np.number, np.ndarray)):
            # scalars and numpy operands take the NDArray's dtype, as MXNet's scalar ops do
            # (MXNet refuses numpy arrays; converting them keeps float64 numpy data from promoting)
            o = jnp.asarray(o, dtype=self.data.dtype) if not isinstance(o, bool) else o
        if isinstance(other, NDArray):
            return _traced((lambda x, y: fn(y, x)) if reverse else fn, self, other)
        return _traced((lambda x: fn(o, x)) if reverse else (lambda x: fn(x, o)), self)

    def __add__(self, o): return self._bin(o, jnp.add)  # noqa: E704
    def __radd__(self, o): return self._bin(o, jnp.add, True)  # noqa: E704
    def __sub__(self, o): return self._bin(o, jnp.subtract)  # noqa: E704
    def __rsub__(self, o): return self._bin(o, jnp.subtract, True)  # noqa: E704
    def __mul__(self, o): return self._bin(o, jnp.multiply)  # noqa: E704
    def __rmul__(self, o): return self._bin(o, jnp.multiply, True)  # noqa: E704
    # division and modulo follow MXNet's operators (integer division stays integer, x % 0 is 0)
    def __truediv__(self, o): return self._bin(o, _BINARY["div"])  # noqa: E704
    def __rtruediv__(self, o): return self._bin(o, _BINARY["div"], True)  # noqa: E704
    def __mod__(self, o): return self._bin(o, _BINARY["mod"])  # noqa: E704
    def __rmod__(self, o): return self._bin(o, _BINARY["mod"], True)  # noqa: E704
    def __pow__(self, o): return self._bin(o, jnp.power)  # noqa: E704
    def __rpow__(self, o): return self._bin(o, jnp.power, True)  # noqa: E704
    def __eq__(self, o): return self._bin(o, lambda a, b: (a == b).astype(self.data.dtype))  # noqa: E704
    def __ne__(self, o): return self._bin(o, lambda a, b: (a != b).astype(self.data.dtype))  # noqa: E704
    def __gt__(self, o): return self._bin(o, lambda a, b: (a > b).astype(self.data.dtype))  # noqa: E704
    def __ge__(self, o): return self._bin(o, lambda a, b: (a >= b).astype(self.data.dtype))  # noqa: E704
    def __lt__(self, o): return self._bin(o, lambda a, b: (a < b).astype(self.data.dtype))  # noqa: E704
    def __le__(self, o): return self._bin(o, lambda a, b: (a <= b).astype(self.data.dtype))  # noqa: E704
    __hash__ = object.__hash__
    __div__ = __truediv__

    def __neg__(self) -> "NDArray":
        return _traced(jnp.negative, self)

    def __abs__(self) -> "NDArray":
        return _traced(jnp.abs, self)

    def _inplace(self, other: Any, fn: Callable) -> "NDArray":
        res = self._bin(other, fn)
        if res is NotImplemented:
            return res
        self._set(res.data.astype(self.data.dtype))
        return self

    def __iadd__(self, o): return self._inplace(o, jnp.add)  # noqa: E704
    def __isub__(self, o): return self._inplace(o, jnp.subtract)  # noqa: E704
    def __imul__(self, o): return self._inplace(o, jnp.multiply)  # noqa: E704
    def __itruediv__(self, o): return self._inplace(o, _BINARY["div"])  # noqa: E704

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError("the truth value of an NDArray with more than one element is ambiguous")
        return bool(self.asscalar())

    def __float__(self) -> float:
        return float(self.asscalar())

    def __int__(self) -> int:
        return int(self.asscalar())

    # sum/mean/max/min/prod/norm are the registered reductions (through __getattr__), so MXNet's
    # exclude=True, positional axes and autograd recording all work: x.mean(axis=1, exclude=True)

    def tostype(self, stype: str) -> "NDArray":
        """A copy in storage type ``stype``: only ``'default'`` (dense); sparse storage is not offered."""
        if stype != "default":
            from .errors import UnsupportedFeatureError
            raise UnsupportedFeatureError(f"NDArray.tostype({stype!r}): sparse storage ('csr', 'row_sparse') "
                                          f"is not supported by xgraph; arrays are dense ('default')")
        return self.copy()

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        return f"\n{self.asnumpy()}\n<NDArray {shape} @{self.context}>"

    def __getattr__(self, item: str) -> Any:
        # MXNet's fluent methods (x.exp(), x.transpose(...)) through the operator registry
        from .ops import registry
        if not item.startswith("_") and registry.exists(item):
            return lambda *args, **kwargs: invoke(item, [self, *args], kwargs)
        raise AttributeError(f"'NDArray' object has no attribute {item!r}")


def _traced(fn: Callable, *inputs: "NDArray") -> "NDArray":
    """``NDArray(fn(*values))``, recorded for :mod:`xgraph.autograd` when it is recording."""
    out = NDArray(fn(*[a.data for a in inputs]))
    if autograd.is_recording():
        autograd._record_op(lambda *v: (fn(*v),), inputs, [out])
    return out


def _is_group(x: Any) -> bool:
    """A non-empty list or tuple of NDArrays (the inputs of a variadic op such as ``concat``)."""
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(v, NDArray) for v in x)


def _unwrap(x: Any) -> Any:
    if isinstance(x, NDArray):
        return x.data
    if isinstance(x, tuple):
        return tuple(_unwrap(v) for v in x)
    return x


def _is_whole(key: Any) -> bool:
    return key is Ellipsis or (isinstance(key, slice) and key == slice(None)) or key == ()


# -- creation -------------------------------------------------------------
def array(source: Any, ctx: Any = None, dtype: Any = None) -> NDArray:
    """An NDArray from a list, numpy array or NDArray.

    As in MXNet, the dtype defaults to float32 unless the source is an NDArray.

        >>> import xgraph as mx
        >>> mx.nd.array([1, 2]).dtype
        <class 'numpy.float32'>
    """
    if dtype is None:
        dtype = source.dtype if isinstance(source, NDArray) else np.float32
    if isinstance(source, NDArray):
        source = source.data
    if not isinstance(source, jax.Array):
        source = np.asarray(source)
    return NDArray(device_array(source, dtype, as_context(ctx).device if ctx is not None else None))


def zeros(shape: Any, ctx: Any = None, dtype: Any = "float32", **kwargs: Any) -> NDArray:
    """An array of zeros (a scalar or zero-size shape needs ``mx.np_shape()``, as in MXNet)."""
    return full(_creation_shape(shape, "zeros"), 0, ctx, dtype)


def ones(shape: Any, ctx: Any = None, dtype: Any = "float32", **kwargs: Any) -> NDArray:
    """An array of ones (a scalar or zero-size shape needs ``mx.np_shape()``, as in MXNet)."""
    return full(_creation_shape(shape, "ones"), 1, ctx, dtype)


def full(shape: Any, val: float, ctx: Any = None, dtype: Any = "float32", **kwargs: Any) -> NDArray:
    """An array filled with ``val`` (a scalar or zero-size shape needs ``mx.np_shape()``).

    Arrays up to :data:`HOST_FILL_LIMIT` elements are filled by numpy and copied over, which
    compiles nothing; larger ones are filled on the device (one small program per shape).

        >>> full((2,), 7, dtype='int32').asnumpy().tolist()
        [7, 7]
    """
    dims = _creation_shape(shape, "full")
    dt = jax.dtypes.canonicalize_dtype(_dt.canonical(dtype))
    dev = as_context(ctx).device if ctx is not None else None
    if math.prod(dims) <= HOST_FILL_LIMIT:
        return NDArray(jax.device_put(np.full(dims, val, dt), dev))
    return NDArray(jax.device_put(jnp.full(dims, val, dt), dev) if dev is not None else jnp.full(dims, val, dt))


HOST_FILL_LIMIT = 1 << 20   # elements: above it a host buffer and its copy cost more than a device fill


def _creation_shape(shape: Any, what: str) -> tuple[int, ...]:
    """The shape of a creation function; outside NumPy shape semantics () and 0 dims mean unknown
    in MXNet, so they are refused there (``mx.np_shape()`` allows scalars and zero-size arrays)."""
    from .util import is_np_shape
    dims = _shape(shape)
    if any(d < 0 for d in dims):
        raise ShapeError(f"nd.{what}: shape {dims} has a negative dimension")
    if not is_np_shape() and (not dims or 0 in dims):
        raise ShapeError(f"nd.{what}: shape {dims} is unknown in MXNet's legacy shape semantics (() and 0 dims "
                         f"mean unknown); use mx.np_shape() for scalars and zero-size arrays")
    return dims


def empty(shape: Any, ctx: Any = None, dtype: Any = "float32") -> NDArray:
    """An array to be overwritten (zeros: XLA has no uninitialised memory)."""
    return zeros(shape, ctx, dtype)


def arange(start: float, stop: float | None = None, step: float = 1.0, repeat: int = 1, ctx: Any = None,
           dtype: Any = "float32", **kwargs: Any) -> NDArray:
    """Evenly spaced values, each repeated ``repeat`` times, as MXNet's ``arange`` (op ``_arange``).

        >>> arange(0, 3, repeat=2).asnumpy().tolist()
        [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    """
    out = invoke("_arange", [], {"start": start, "stop": stop, "step": step, "repeat": repeat,
                                 "dtype": "float32" if dtype is None else dtype, **kwargs})
    return out.as_in_context(ctx) if ctx is not None else out


def concat(*arrays: NDArray, dim: int = 1, **kwargs: Any) -> NDArray:
    """Concatenate along ``dim`` (the ``Concat`` op; the arrays may also come as one list)."""
    if len(arrays) == 1 and isinstance(arrays[0], (list, tuple)):
        arrays = tuple(arrays[0])
    return invoke("Concat", [a if isinstance(a, NDArray) else array(a) for a in arrays], {"dim": dim, **kwargs})


def waitall() -> None:
    """Wait for every pending computation (JAX dispatches asynchronously)."""
    jax.effects_barrier()


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


# -- files ----------------------------------------------------------------
def save(fname: str, data: Any) -> None:
    """Save NDArrays to an MXNet ``.params`` file, atomically.

    ``data`` is a dict name -> array (names are written), a list of arrays
    (no names) or one array; arrays may be NDArrays or numpy arrays.

        >>> import os, tempfile, xgraph as mx
        >>> p = os.path.join(tempfile.mkdtemp(), 'x.params')
        >>> mx.nd.save(p, {'w': mx.nd.ones((2,))}); mx.nd.load(p)['w'].asnumpy().tolist()
        [1.0, 1.0]
    """
    from .io import params
    params.save(fname, data)


def _wrap_loaded(arrays: list, names: list[str], source: str) -> dict[str, NDArray] | list[NDArray]:
    from .io import params
    wrapped = [None if a is None else NDArray(device_array(a)) for a in arrays]
    return params.as_dict_or_list(wrapped, names, source)


def load(fname: str) -> dict[str, NDArray] | list[NDArray]:
    """Load an MXNet ``.params`` file: a dict name -> NDArray, or a list when it has no names.

    The file is validated first; a malformed one raises :class:`GraphFormatError`.

        >>> import os, tempfile, xgraph as mx
        >>> p = os.path.join(tempfile.mkdtemp(), 'x.params')
        >>> mx.nd.save(p, [mx.nd.zeros((1, 2))]); mx.nd.load(p)[0].shape
        (1, 2)
    """
    from .io import params
    arrays, names = params.read(fname)
    return _wrap_loaded(arrays, names, f"params file {str(fname)!r}")


def load_frombuffer(buf: bytes) -> dict[str, NDArray] | list[NDArray]:
    """Like :func:`load`, from the bytes of a ``.params`` file.

        >>> import xgraph as mx
        >>> from xgraph.io.params import dumps
        >>> mx.nd.load_frombuffer(dumps({'a': mx.nd.ones((1,))}))['a'].shape
        (1,)
    """
    from .io import params
    arrays, names = params.loads(buf)
    return _wrap_loaded(arrays, names, "params buffer")


# -- imperative operator calls ------------------------------------------------
def invoke(op_name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Run one registered operator on NDArrays (``mx.nd.<op>``) through a cached executable.

        >>> import xgraph as mx
        >>> mx.nd.relu(mx.nd.array([-1, 2])).asnumpy().tolist()
        [0.0, 2.0]
    """
    from .lower import inference_program, train_forward_program
    from .symbol import invoke as sym_invoke
    from .symbol import var
    from .names import NameManager
    from .ops import registry
    from .symbol import split_positional
    kwargs = dict(kwargs)
    out = kwargs.pop("out", None)
    arrays: dict[str, Any] = {}
    sources: dict[str, NDArray] = {}   # the NDArray behind each input (what autograd records)
    sym_args: list[Any] = []
    op = registry.get(op_name)
    args = list(args)
    if len(args) >= 1 and _is_group(args[0]) and op.variadic is not None:
        args = list(args[0]) + args[1:]
    inputs, attr_values = split_positional(op, args)
    for i, a in enumerate(inputs):
        if a is None:
            sym_args.append(None)
            continue
        if _is_group(a):
            group = []
            for j, x in enumerate(a):
                arrays[f"in{i}_{j}"] = x.data
                sources[f"in{i}_{j}"] = x
                group.append(var(f"in{i}_{j}"))
            sym_args.append(group)
            continue
        if not isinstance(a, NDArray):
            a = array(a)
        arrays[f"in{i}"] = a.data
        sources[f"in{i}"] = a
        sym_args.append(var(f"in{i}"))
    for k, v in list(kwargs.items()):
        if isinstance(v, NDArray):
            arrays[k] = v.data
            sources[k] = v
            kwargs[k] = var(k)
    if len(sym_args) == 1 and isinstance(sym_args[0], list):
        sym_args = sym_args[0]
    with NameManager():
        sym = sym_invoke(op_name, [*sym_args, *attr_values], {**kwargs, "name": "op"})
    g = sym.graph
    arg_names = [n.name for n in g.argument_nodes()]
    aux_names = [n.name for n in g.aux_nodes()]
    missing = [n for n in arg_names + aux_names if n not in arrays]
    if missing:
        names = ", ".join(n[len("op_"):] if n.startswith("op_") else n for n in missing)
        raise BindError(f"nd.{op_name}: input(s) {names} not given; an imperative call needs every input")
    if op.eager is not None:   # output shapes depend on the values: run on the concrete inputs, no graph
        return _invoke_eager(g, arrays, sources, out)
    training = autograd.is_training()
    prog = train_forward_program(g) if training else inference_program(g)
    # random ops draw from xgraph.rng, so mx.random.seed(n) makes imperative calls reproducible
    key = rng.next_words() if any(n.is_random for n in g.topo_order()) else None
    arg_keys, aux_keys = list(dict.fromkeys(arg_names)), list(dict.fromkeys(aux_names))
    aux_vals = tuple(arrays[n] for n in aux_keys)

    def run(*arg_vals: Any) -> tuple:
        outs = prog(tuple(arg_vals), aux_vals, key)
        return tuple(outs[0]) if training else tuple(outs)
    if training and aux_keys:   # a training-mode call updates the aux states (BatchNorm's moving statistics)
        outs, new_aux = prog(tuple(arrays[n] for n in arg_keys), aux_vals, key)
        for n, v in zip(aux_keys, new_aux):
            if n in sources:
                sources[n]._set(v)
    else:
        outs = run(*[arrays[n] for n in arg_keys])
    res = [NDArray(o) for o in outs]
    if autograd.is_recording():
        autograd._record_op(run, [sources[n] for n in arg_keys], res)
    return _deliver(res, out)


def _deliver(res: list[NDArray], out: Any) -> Any:
    """An imperative call's result: written into ``out`` if given, else one NDArray or a list."""
    if out is not None:
        targets = out if isinstance(out, (list, tuple)) else [out]
        for t, r in zip(targets, res):
            t[:] = r
        return out
    return res[0] if len(res) == 1 else res


def _invoke_eager(g: Any, arrays: dict[str, Any], sources: dict[str, NDArray], out: Any) -> Any:
    """Run a one-op graph whose op has an ``eager`` rule on concrete values; recorded for autograd."""
    from .errors import XGraphError
    from .infer import node_error
    node = g.outputs[0].node
    names = [e.node.name for e in node.inputs]
    values = [arrays[n] for n in names]
    try:
        run = node.op.eager(node.params, *values)
        res = [NDArray(o) for o in run(*values)]
    except XGraphError as exc:
        raise node_error(node, [tuple(v.shape) for v in values], [v.dtype for v in values], exc) from None
    if autograd.is_recording():
        autograd._record_op(run, [sources[n] for n in names], res)
    return _deliver(res, out)


__all__ = ["NDArray", "array", "zeros", "ones", "full", "empty", "arange", "concat", "waitall", "invoke",
           "save", "load", "load_frombuffer"]


def __getattr__(name: str) -> Any:
    """``mx.nd.<Op>``: every registered operator, run imperatively."""
    from .ops import registry
    if not name.startswith("__") and registry.exists(name):
        def fn(*args: Any, **kwargs: Any) -> Any:
            return invoke(name, args, kwargs)
        fn.__name__ = name
        fn.__doc__ = registry.get(name).doc
        if not hasattr(builtins, name):  # never shadow builtins (slice, sum, max) in this module
            globals()[name] = fn
        return fn
    raise AttributeError(f"module 'xgraph.ndarray' has no attribute {name!r} (no such operator or function)")


# MXNet's sub-namespaces: mx.nd.linalg.gemm, mx.nd.contrib.*, mx.nd.random.uniform ...
from .namespaces import op_namespaces as _op_namespaces  # noqa: E402

linalg, contrib, random, _internal = _op_namespaces(invoke, NDArray, imperative=True)
from .namespaces import binary_functions as _binary_functions  # noqa: E402
globals().update(_binary_functions(invoke, NDArray))
true_divide = divide  # noqa: F821  (MXNet's alias)
from .namespaces import frontend_functions as _frontend_functions  # noqa: E402
globals().update(_frontend_functions(invoke, NDArray, imperative=True))   # split_v2, histogram, mx.nd.image
