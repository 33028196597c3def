"""The ``Custom`` operator: inputs, outputs, shapes and computation supplied by user code.

MXNet's ``mx.sym.Custom(*inputs, op_type='name', **kwargs)`` runs an operator
written in Python; :mod:`xgraph.operator` adapts MXNet's ``CustomOpProp`` /
``CustomOp`` classes onto this module.  Here is the operator side:

* a table of :class:`Kernel` factories by ``op_type``; a node's kernel is made
  once per (op_type, keyword strings) and decides its inputs (arguments, then
  auxiliary states), outputs, shapes and dtypes at graph-build time;
* the lowering: a host kernel runs through ``jax.pure_callback`` under a
  ``jax.custom_vjp`` whose backward is a second callback, so it runs inside
  any jitted program (executors, the fused training step); a
  :class:`JaxKernel` is pure JAX, traced inline with no callback;
* failures: a Python exception cannot cross XLA, so a failing callback records
  a :class:`CustomOpError` and the jitted programs (:func:`report_failures`)
  raise it in place of JAX's runtime error.

    >>> from xgraph.ops import registry
    >>> import jax.numpy as jnp
    >>> register_kernel('doc_double', lambda kw: JaxKernel('doc_double', ('x',), ('y',),
    ...                                                    lambda is_train, x: 2 * x))
    False
    >>> registry.get('Custom').input_names({'op_type': 'doc_double'})
    ['x']
"""
from __future__ import annotations

import collections
import re
import threading
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import AttributeValueError, DTypeError, ShapeError, XGraphError
from .attrs import Str, attr
from .registry import Op, register


class CustomOpError(XGraphError, RuntimeError):
    """User code of a custom operator (``CustomOpProp`` / ``CustomOp``) raised or returned something wrong;
    the message names the op_type, the node and the method."""


class Kernel:
    """What the Custom op needs from user code, in plain Python and numpy terms.

    ``arguments``, ``outputs`` and ``aux`` name the inputs, the outputs and the
    auxiliary states.  A host kernel implements :meth:`infer_shape`,
    :meth:`infer_type`, :meth:`forward` and :meth:`backward` (numpy arrays in
    and out, run through host callbacks); a JAX kernel sets :attr:`jax_forward`
    instead (see :class:`JaxKernel`).

        >>> Kernel().arguments, Kernel().outputs
        (('data',), ('output',))
    """

    op_type: str = "?"
    arguments: tuple[str, ...] = ("data",)
    outputs: tuple[str, ...] = ("output",)
    aux: tuple[str, ...] = ()
    #: ``(is_train, *arguments) -> output or tuple of outputs``, pure JAX; None for a host kernel
    jax_forward: Callable[..., Any] | None = None
    #: ``(in_data, out_data, out_grad) -> input gradients``, pure JAX; None: JAX differentiates jax_forward
    jax_backward: Callable[..., Any] | None = None

    def infer_shape(self, arg_shapes: list[list[int]]) -> tuple[list, list, list]:
        """(argument shapes, output shapes, aux shapes) from the argument shapes (``[]`` when unknown)."""
        raise NotImplementedError

    def infer_type(self, arg_dtypes: list[Any]) -> tuple[list, list, list]:
        """(argument dtypes, output dtypes, aux dtypes) from the argument dtypes (None when unknown)."""
        raise NotImplementedError

    def backward_needs(self) -> tuple[list[bool], list[bool], list[bool]]:
        """Which output gradients, inputs and outputs :meth:`backward` reads (the rest arrive as zeros)."""
        return [True] * len(self.outputs), [True] * len(self.arguments), [True] * len(self.outputs)

    def forward(self, node: str, is_train: bool, in_data: list[np.ndarray], aux: list[np.ndarray],
                out_specs: list[tuple[tuple, np.dtype]]) -> tuple[list, list]:
        """Run node ``node`` on the host: (outputs, new auxiliary values)."""
        raise NotImplementedError

    def backward(self, node: str, out_grad: list[np.ndarray], in_data: list[np.ndarray],
                 out_data: list[np.ndarray], aux: list[np.ndarray]) -> list:
        """The gradients of the arguments, on the host."""
        raise NotImplementedError


class JaxKernel(Kernel):
    """A kernel given as pure JAX functions, lowered inline (no host callback, no auxiliary states).

    ``forward(is_train, *arguments)`` returns one array or a tuple (one per
    output); ``backward(in_data, out_data, out_grad)`` (tuples) returns the
    argument gradients, or is None to let JAX differentiate ``forward``.

        >>> k = JaxKernel('half', ('x',), ('y',), lambda is_train, x: x / 2)
        >>> float(k.jax_forward(False, 3.0))
        1.5
    """

    def __init__(self, op_type: str, arguments: Sequence[str], outputs: Sequence[str],
                 forward: Callable[..., Any], backward: Callable[..., Any] | None = None):
        self.op_type = op_type
        self.arguments, self.outputs = tuple(arguments), tuple(outputs)
        self.jax_forward, self.jax_backward = forward, backward


# -- the kernel table -------------------------------------------------------------------
_FACTORIES: dict[str, Callable[[dict[str, str]], Kernel]] = {}
_KERNELS: dict[tuple, Kernel] = {}
_LOCK = threading.Lock()


def register_kernel(op_type: str, factory: Callable[[dict[str, str]], Kernel]) -> bool:
    """Make ``Custom(op_type=op_type, **kwargs)`` use ``factory(kwargs)``; True when it replaces one.

        >>> register_kernel('doc_noop', lambda kw: JaxKernel('doc_noop', ('x',), ('y',), lambda t, x: x))
        False
    """
    if not isinstance(op_type, str) or not op_type:
        raise AttributeValueError(f"a custom operator needs a non-empty string name, got {op_type!r}")
    with _LOCK:
        replaced = op_type in _FACTORIES
        _FACTORIES[op_type] = factory
        for key in [k for k in _KERNELS if k[0] == op_type]:
            del _KERNELS[key]
    return replaced


def registered_types() -> list[str]:
    """Every registered op_type, sorted.

        >>> 'doc_double' in registered_types()
        True
    """
    return sorted(_FACTORIES)


def kernel_for(params: Mapping[str, Any]) -> Kernel:
    """The kernel of a Custom node with these attributes (``op_type`` plus the keyword strings), made once.

        >>> kernel_for({'op_type': 'doc_double'}).outputs
        ('y',)
    """
    op_type = params["op_type"]   # KeyError without one: "depends on the attributes"
    factory = _FACTORIES.get(op_type)
    if factory is None:
        known = ", ".join(registered_types()) or "none"
        raise AttributeValueError(f"Custom: op_type {op_type!r} is not registered (registered: {known}); "
                                  f"register it with @mx.operator.register({op_type!r})")
    kwargs = {k: v for k, v in params.items() if k != "op_type"}
    key = (op_type, factory, tuple(sorted(kwargs.items())))
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = user_call(op_type, "creating the operator property", factory, kwargs)
        for what in ("arguments", "outputs", "aux"):
            names = getattr(kernel, what)
            if not all(isinstance(n, str) for n in names):
                raise CustomOpError(f"Custom op {op_type!r}: the {what} names must be strings, got {list(names)!r}")
        with _LOCK:
            kernel = _KERNELS.setdefault(key, kernel)
    return kernel


def user_call(op_type: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call user code; an exception becomes a :class:`CustomOpError` naming the op_type and ``what``
    (xgraph's own errors pass as they are: they already say what is wrong).

        >>> user_call('sqr', 'infer_shape', lambda: 1 / 0)
        Traceback (most recent call last):
        ...
        xgraph.ops.custom.CustomOpError: Custom op 'sqr': infer_shape raised ZeroDivisionError: division by zero
    """
    try:
        return fn(*args)
    except XGraphError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: reported with the op's name
        raise CustomOpError(f"Custom op {op_type!r}: {what} raised {type(exc).__name__}: {exc}") from exc


# -- shapes and dtypes ------------------------------------------------------------------------
def _three(op_type: str, what: str, result: Any, counts: tuple[int, int, int]) -> tuple[list, list, list]:
    """A (inputs, outputs[, aux]) result checked against the declared counts."""
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise CustomOpError(f"Custom op {op_type!r}: {what} must return 2 or 3 lists "
                            f"(inputs, outputs[, aux]), got {result!r}")
    parts = [list(p) for p in result] + ([[]] if len(result) == 2 else [])
    for part, n, label in zip(parts, counts, ("input", "output", "aux state")):
        if len(part) != n:
            raise CustomOpError(f"Custom op {op_type!r}: {what} returned {len(part)} {label} entries, "
                                f"{n} expected")
    return parts[0], parts[1], parts[2]


def _shape(op_type: str, value: Any) -> tuple | None:
    if value is None:
        return None
    try:
        dims = tuple(int(d) for d in value)
    except (TypeError, ValueError):
        raise CustomOpError(f"Custom op {op_type!r}: infer_shape returned {value!r}, which is not a shape") from None
    return dims or None


def _counts(k: Kernel) -> tuple[int, int, int]:
    return len(k.arguments), len(k.outputs), len(k.aux)


def shapes_of(k: Kernel, arg_shapes: Sequence[tuple | None]) -> tuple[list, list, list]:
    """The kernel's (argument, output, aux) shapes for these argument shapes (None: unknown)."""
    given = [list(s) if s is not None else [] for s in arg_shapes]
    res = _three(k.op_type, "infer_shape", user_call(k.op_type, "infer_shape", k.infer_shape, given), _counts(k))
    return tuple([_shape(k.op_type, s) for s in part] for part in res)


def dtypes_of(k: Kernel, arg_dtypes: Sequence[Any]) -> tuple[list, list, list]:
    """The kernel's (argument, output, aux) dtypes for these argument dtypes (None: unknown)."""
    given = [None if d is None else np.dtype(d).type for d in arg_dtypes]
    res = _three(k.op_type, "infer_type", user_call(k.op_type, "infer_type", k.infer_type, given), _counts(k))
    try:
        return tuple([None if d is None else np.dtype(d) for d in part] for part in res)
    except TypeError as exc:
        raise CustomOpError(f"Custom op {k.op_type!r}: infer_type returned a non-dtype ({exc})") from None


def _infer_inputs(p: Mapping[str, Any], shapes: list) -> list:
    """Argument and aux shapes the kernel deduces; unknown ones stay unknown when infer_shape needs them."""
    k = kernel_for(p)
    if k.jax_forward is not None:
        return shapes
    n = len(k.arguments)
    try:
        ins, _, aux = shapes_of(k, shapes[:n])
    except XGraphError:
        if all(s is not None and all(s) for s in shapes[:n]):
            raise
        return shapes   # MXNet too leaves a custom op's shapes unknown until its inputs are known
    return ins + aux


def _infer_dtype(p: Mapping[str, Any], dtypes: list) -> tuple[list, list | None]:
    """(input dtypes, output dtypes or None) from the kernel's infer_type; unknown while it needs more."""
    k = kernel_for(p)
    if k.jax_forward is not None:
        return dtypes, None
    n = len(k.arguments)
    try:
        ins, outs, aux = dtypes_of(k, dtypes[:n])
    except XGraphError:
        if all(d is not None for d in dtypes[:n]):
            raise
        return dtypes, None
    outs = outs if all(d is not None for d in outs) else None
    return ins + aux, outs


# -- lowering ------------------------------------------------------------------------------------
def _lower(ctx: Any, p: Mapping[str, Any], *inputs: Any) -> tuple[tuple, tuple]:
    k = kernel_for(p)
    n = len(k.arguments)
    args, aux = tuple(inputs[:n]), tuple(inputs[n:])
    if k.jax_forward is not None:
        return _lower_jax(k, ctx.is_train, args), ()
    arg_shapes = [tuple(a.shape) for a in args]
    if not all(isinstance(d, int) for s in arg_shapes for d in s):
        raise ShapeError(f"Custom op {k.op_type!r} needs concrete input shapes")
    ins, outs, aux_shapes = shapes_of(k, arg_shapes)
    in_t, out_t, aux_t = dtypes_of(k, [a.dtype for a in args])
    for what, names, declared, actual in (("input", k.arguments, ins, arg_shapes),
                                          ("aux state", k.aux, aux_shapes, [tuple(a.shape) for a in aux])):
        for name, d, s in zip(names, declared, actual):
            if d is not None and tuple(d) != tuple(s):
                raise ShapeError(f"Custom op {k.op_type!r}: infer_shape says {what} {name!r} has shape {d}, "
                                 f"but it has shape {s}")
    for name, d, a in zip(k.arguments, in_t, args):
        if d is not None and np.dtype(d) != np.dtype(a.dtype):
            raise DTypeError(f"Custom op {k.op_type!r}: infer_type says input {name!r} is {np.dtype(d).name}, "
                             f"but it is {np.dtype(a.dtype).name}")
    bad = [name for name, s in zip(k.outputs, outs) if s is None or not all(d > 0 for d in s)]
    if bad:
        raise ShapeError(f"Custom op {k.op_type!r}: infer_shape gave output(s) {', '.join(bad)} no shape "
                         f"(output shapes {outs})")
    bad = [name for name, d in zip(k.outputs, out_t) if d is None]
    if bad:
        raise DTypeError(f"Custom op {k.op_type!r}: infer_type gave output(s) {', '.join(bad)} no dtype")
    out_specs = tuple(jax.ShapeDtypeStruct(s, d) for s, d in zip(outs, out_t))
    return _host_call(k, ctx.node_name, bool(ctx.is_train), args, aux, out_specs)


def _lower_jax(k: Kernel, is_train: bool, args: tuple) -> tuple:
    def run(*xs):
        res = k.jax_forward(is_train, *xs)
        return tuple(res) if isinstance(res, (tuple, list)) else (res,)

    if k.jax_backward is None:
        outs = run(*args)
    else:
        fn = jax.custom_vjp(run)

        def fwd(*xs):
            outs = run(*xs)
            return outs, (xs, outs)

        def bwd(res, cts):
            xs, outs = res
            grads = tuple(k.jax_backward(xs, outs, cts))
            if len(grads) != len(xs):
                raise CustomOpError(f"Custom op {k.op_type!r}: backward returned {len(grads)} gradients, "
                                    f"{len(xs)} expected")
            return tuple(_cotangent(g, x) for g, x in zip(grads, xs))

        fn.defvjp(fwd, bwd)
        outs = fn(*args)
    if len(outs) != len(k.outputs):
        raise CustomOpError(f"Custom op {k.op_type!r}: forward returned {len(outs)} outputs, "
                            f"{len(k.outputs)} declared ({', '.join(k.outputs)})")
    return outs


def _is_float(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def _cotangent(g: Any, primal: Any) -> Any:
    """``g`` as the cotangent of ``primal``: float0 zeros for an integer primal."""
    if not _is_float(primal.dtype):
        return np.zeros(primal.shape, jax.dtypes.float0)
    return jnp.zeros(primal.shape, primal.dtype) if g is None else jnp.asarray(g, primal.dtype)


def _host_call(k: Kernel, node: str, is_train: bool, args: tuple, aux: tuple, out_specs: tuple) -> tuple:
    """Forward through a host callback, with a custom VJP whose backward is another host callback."""
    aux_specs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in aux)
    spec_list = [(tuple(s.shape), np.dtype(s.dtype)) for s in out_specs]
    arg_specs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args)
    need_og, need_in, need_out = user_call(k.op_type, "declare_backward_dependency", k.backward_needs)
    need_og = [bool(m) and _is_float(s.dtype) for m, s in zip(need_og, out_specs)]
    grad_specs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype if _is_float(a.dtype) else np.float32) for a in args)

    def host_forward(xs, states):
        with _reporting(k.op_type, node, "forward"):
            outs, new_aux = k.forward(node, is_train, list(xs), list(states), spec_list)
            return (_conform("output", k.outputs, outs, out_specs),
                    _conform("aux state", k.aux, new_aux, aux_specs))

    def host_backward(og, xs, ys, states):
        with _reporting(k.op_type, node, "backward"):
            full = [_fill(v, s) for v, s in (*zip(og, out_specs), *zip(xs, arg_specs), *zip(ys, out_specs))]
            n_o, n_i = len(out_specs), len(arg_specs)
            grads = k.backward(node, full[:n_o], full[n_o:n_o + n_i], full[n_o + n_i:], list(states))
            return _conform("input gradient", k.arguments, grads, grad_specs)

    def forward(xs, states):
        return jax.pure_callback(host_forward, (out_specs, aux_specs), xs, states, vmap_method="sequential")

    @jax.custom_vjp
    def apply(xs, states):
        return forward(xs, states)

    def apply_fwd(xs, states):
        outs, new_aux = forward(xs, states)
        kept = (_keep(xs, need_in), _keep(outs, need_out), new_aux)
        return (outs, new_aux), kept

    def apply_bwd(res, cts):
        xs, outs, new_aux = res
        og = _keep(cts[0], need_og)
        grads = jax.pure_callback(host_backward, grad_specs, og, xs, outs, new_aux, vmap_method="sequential")
        return (tuple(_cotangent(g, x) for g, x in zip(grads, arg_specs)),
                tuple(_cotangent(None, a) for a in aux_specs))

    apply.defvjp(apply_fwd, apply_bwd)
    return apply(args, aux)


def _keep(values: Sequence[Any], mask: Sequence[bool]) -> tuple:
    """The values backward reads; None for the others (they reach it as zeros)."""
    return tuple(v if m else None for v, m in zip(values, mask))


def _fill(value: Any, spec: Any) -> np.ndarray:
    return np.zeros(spec.shape, spec.dtype) if value is None else np.asarray(value)


class _BadResult(Exception):
    """User code produced arrays that do not match what it declared."""


def _conform(what: str, names: Sequence[str], values: Sequence[Any], specs: Sequence[Any]) -> tuple:
    """The arrays user code produced, checked against the declared shapes and cast to the declared dtypes."""
    values = list(values)
    if len(values) != len(specs):
        raise _BadResult(f"produced {len(values)} {what}s, {len(specs)} expected")
    out = []
    for name, v, s in zip(names, values, specs):
        a = np.asarray(v)
        if a.shape != tuple(s.shape):
            raise _BadResult(f"produced {what} {name!r} of shape {a.shape}, but infer_shape "
                             f"declared {tuple(s.shape)}")
        out.append(a.astype(s.dtype, copy=False))
    return tuple(out)


# -- failures inside callbacks -----------------------------------------------------------------
_FAILURES: "collections.OrderedDict[int, CustomOpError]" = collections.OrderedDict()
_FAILURE_COUNT = [0]
_TOKEN = re.compile(r"\[xgraph custom-op failure (\d+)\]")


class _CallbackFailure(Exception):
    """What a failing callback raises into XLA: a token for the recorded :class:`CustomOpError`."""


class _reporting:
    """Context manager around user code in a callback: record a failure, raise its token."""

    def __init__(self, op_type: str, node: str, method: str):
        self.where = f"Custom op {op_type!r} (node '{node}'): CustomOp.{method}"

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        detail = str(exc) if isinstance(exc, _BadResult) else f"raised {type(exc).__name__}: {exc}"
        err = CustomOpError(f"{self.where} {detail}")
        err.__cause__ = exc
        with _LOCK:
            _FAILURE_COUNT[0] += 1
            token = _FAILURE_COUNT[0]
            _FAILURES[token] = err
            while len(_FAILURES) > 64:
                _FAILURES.popitem(last=False)
        raise _CallbackFailure(f"[xgraph custom-op failure {token}] {err}") from None


def recorded_failure(exc: BaseException) -> CustomOpError | None:
    """The :class:`CustomOpError` a failed custom-op callback recorded for JAX's runtime error ``exc``.

        >>> recorded_failure(RuntimeError('unrelated')) is None
        True
    """
    m = _TOKEN.search(str(exc))
    if m is None:
        return None
    with _LOCK:
        return _FAILURES.pop(int(m.group(1)), None)


class report_failures:
    """A jitted program that raises a custom op's :class:`CustomOpError` instead of JAX's runtime error.

    Everything else (``lower``, ``trace`` ...) is the wrapped function's.

        >>> f = report_failures(jax.jit(lambda x: x + 1))
        >>> int(f(1)), f.lower(1) is not None
        (2, True)
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.fn(*args, **kwargs)
        except jax.errors.JaxRuntimeError as exc:
            err = recorded_failure(exc)
            if err is None:
                raise
            raise err from err.__cause__

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fn, name)


register(Op(
    "Custom", _lower, inputs=(), family="custom", stateful=True, open_attrs=True,
    attrs=(attr("op_type", Str(), doc="the name the operator was registered under (mx.operator.register)"),),
    dynamic_inputs=lambda p: (*kernel_for(p).arguments, *kernel_for(p).aux),
    aux=lambda p: kernel_for(p).aux,
    num_outputs=lambda p: len(kernel_for(p).outputs),
    output_names=lambda p: list(kernel_for(p).outputs),
    infer_inputs=_infer_inputs, infer_dtype=_infer_dtype,
    doc="An operator written in Python (mx.operator.register / register_jax): its inputs (arguments, "
        "then auxiliary states), outputs, shapes and computation come from the registered op_type; "
        "every other keyword reaches the operator property's constructor as a string."))
