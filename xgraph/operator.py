"""``mx.operator``: operators written in Python, as MXNet's ``CustomOp`` / ``CustomOpProp`` API.

Subclass :class:`CustomOpProp` (inputs, outputs, shapes, dtypes) and
:class:`CustomOp` (forward, backward), register the property with
:func:`register`, and use it as ``mx.sym.Custom(..., op_type=name)`` or
``mx.nd.Custom(...)``.  This module only adapts that API onto the ``Custom``
operator (:mod:`xgraph.ops.custom`): the user's ``forward``/``backward`` run on
NDArrays in host callbacks inside the compiled programs.  For speed,
:func:`register_jax` takes a pure JAX function instead, traced inline
(see docs/custom_ops.md).

    >>> import numpy as np
    >>> import xgraph as mx
    >>> class Sqr(mx.operator.CustomOp):
    ...     def forward(self, is_train, req, in_data, out_data, aux):
    ...         self.assign(out_data[0], req[0], in_data[0] * in_data[0])
    ...     def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
    ...         self.assign(in_grad[0], req[0], 2 * in_data[0] * out_grad[0])
    >>> @mx.operator.register('doc_sqr')
    ... class SqrProp(mx.operator.CustomOpProp):
    ...     def create_operator(self, ctx, shapes, dtypes):
    ...         return Sqr()
    >>> mx.nd.Custom(mx.nd.array([1, 2, 3]), op_type='doc_sqr').asnumpy().tolist()
    [1.0, 4.0, 9.0]
"""
from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from . import dtypes as _dt
from .context import current_context
from .errors import AttributeValueError
from .ops import custom as _custom
from .ops.custom import CustomOpError

__all__ = ["CustomOp", "CustomOpProp", "CustomOpError", "register", "register_jax",
           "get_all_registered_operators", "get_operator_arguments", "OperatorArguments"]

_REQS = ("null", "write", "inplace", "add")


class CustomOp:
    """An operator's computation: override :meth:`forward` and :meth:`backward`.

    Both receive lists of NDArrays and write their results into ``out_data`` /
    ``in_grad``, usually with :meth:`assign`.

        >>> import xgraph as mx
        >>> dst = mx.nd.ones((2,))
        >>> CustomOp().assign(dst, 'add', mx.nd.ones((2,)))
        >>> dst.asnumpy().tolist()
        [2.0, 2.0]
    """

    def __init__(self) -> None:
        pass

    def forward(self, is_train: bool, req: list[str], in_data: list, out_data: list, aux: list) -> None:
        """Compute ``out_data`` from ``in_data``; ``aux`` (auxiliary states) may be updated in place."""

    def backward(self, req: list[str], out_grad: list, in_data: list, out_data: list, in_grad: list,
                 aux: list) -> None:
        """Compute ``in_grad`` from the output gradients (and the inputs, outputs and aux states)."""

    def assign(self, dst: Any, req: str, src: Any) -> None:
        """Write ``src`` into ``dst`` as ``req`` says: 'null' skips, 'write'/'inplace' overwrite, 'add' adds."""
        if req == "null":
            return
        if req in ("write", "inplace"):
            dst[:] = src
        elif req == "add":
            dst[:] += src
        else:
            raise AttributeValueError(f"CustomOp.assign: req must be one of {', '.join(_REQS)}, got {req!r}")


class CustomOpProp:
    """An operator's signature: its arguments, outputs, auxiliary states, shapes and dtypes.

    The keyword arguments given to ``mx.sym.Custom`` reach the constructor as
    strings.  ``need_top_grad=False`` marks a loss-like operator whose
    backward does not read the output gradient.

        >>> p = CustomOpProp()
        >>> p.list_arguments(), p.infer_shape([[2, 3]])
        (['data'], ([[2, 3]], ([2, 3],), ()))
    """

    def __init__(self, need_top_grad: bool = True):
        self.need_top_grad_ = need_top_grad

    def infer_shape(self, in_shape: list) -> tuple:
        """(input shapes, output shapes[, aux shapes]); by default every output has the first input's shape."""
        return in_shape, (in_shape[0],) * len(self.list_outputs()), ()

    def infer_type(self, in_type: list) -> tuple:
        """(input dtypes, output dtypes[, aux dtypes]); by default all the first input's dtype."""
        return (in_type, [in_type[0]] * len(self.list_outputs()),
                [in_type[0]] * len(self.list_auxiliary_states()))

    def infer_storage_type(self, in_stype: list[str]) -> tuple:
        """Storage types of the inputs, outputs and aux states; xgraph supports 'default' only."""
        for i, st in enumerate(in_stype):
            if st != "default":
                raise CustomOpError(f"input {i} has storage type {st!r}; xgraph's custom operators take "
                                    f"dense ('default') arrays only")
        return (in_stype, ["default"] * len(self.list_outputs()),
                ["default"] * len(self.list_auxiliary_states()))

    def infer_storage_type_backward(self, ograd_stype: list, in_stype: list, out_stype: list,
                                    igrad_stype: list, aux_stype: list) -> tuple:
        """Storage types in the backward pass: all 'default' (sparse storage is not supported)."""
        return tuple(["default"] * len(s) for s in (ograd_stype, in_stype, out_stype, igrad_stype, aux_stype))

    def list_outputs(self) -> list[str]:
        """The output names (``<node>_<name>`` in ``list_outputs()`` of a symbol)."""
        return ["output"]

    def list_arguments(self) -> list[str]:
        """The argument names (missing ones become variables ``<node>_<name>``)."""
        return ["data"]

    def list_auxiliary_states(self) -> list[str]:
        """The auxiliary state names (inputs after the arguments, updated by forward)."""
        return []

    def declare_backward_dependency(self, out_grad: list[int], in_data: list[int], out_data: list[int]) -> list[int]:
        """The ids of the blobs backward reads; the others reach it as zeros."""
        deps = list(out_grad) if self.need_top_grad_ else []
        return deps + list(in_data) + list(out_data)

    def create_operator(self, ctx: Any, in_shapes: list, in_dtypes: list) -> CustomOp:
        """The :class:`CustomOp` for these input shapes and dtypes (MXNet dtype codes)."""
        return CustomOp()


class _PropKernel(_custom.Kernel):
    """A :class:`CustomOpProp` as the Custom op's kernel: the user's methods over NDArrays."""

    def __init__(self, op_type: str, prop: CustomOpProp):
        self.op_type, self.prop = op_type, prop
        self.arguments = tuple(self._call("list_arguments", lambda: list(prop.list_arguments())))
        self.outputs = tuple(self._call("list_outputs", lambda: list(prop.list_outputs())))
        self.aux = tuple(self._call("list_auxiliary_states", lambda: list(prop.list_auxiliary_states())))
        n_in, n_out, n_aux = len(self.arguments), len(self.outputs), len(self.aux)
        stypes = self._call("infer_storage_type", prop.infer_storage_type, ["default"] * n_in)
        flat = [s for part in (stypes if isinstance(stypes, (tuple, list)) else [stypes]) for s in part]
        if len(flat) != n_in + n_out + n_aux or any(s != "default" for s in flat):
            raise CustomOpError(f"Custom op {op_type!r}: infer_storage_type returned {stypes!r}; xgraph's custom "
                                f"operators support dense ('default') storage only")
        self._ops: dict[tuple, CustomOp] = {}
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return _custom.user_call(self.op_type, what, fn, *args)

    def infer_shape(self, arg_shapes: list) -> Any:
        return self.prop.infer_shape(arg_shapes)

    def infer_type(self, arg_dtypes: list) -> Any:
        return self.prop.infer_type(arg_dtypes)

    def backward_needs(self) -> tuple[list[bool], list[bool], list[bool]]:
        n_out, n_in = len(self.outputs), len(self.arguments)
        ids = list(range(2 * n_out + n_in))
        og, ins, outs = ids[:n_out], ids[n_out:n_out + n_in], ids[n_out + n_in:]
        deps = set(self.prop.declare_backward_dependency(og, ins, outs))
        return [i in deps for i in og], [i in deps for i in ins], [i in deps for i in outs]

    def _operator(self, node: str, in_data: list, aux: list) -> CustomOp:
        """The node's CustomOp, made once per node and input signature (so forward's state reaches backward)."""
        arrays = [*in_data, *aux]
        key = (node, tuple(a.shape for a in arrays), tuple(a.dtype for a in arrays))
        with self._lock:
            op = self._ops.get(key)
        if op is None:
            shapes = [list(a.shape) for a in arrays]
            codes = [_dt.to_mx(a.dtype) for a in arrays]
            op = self._call("create_operator", self.prop.create_operator, current_context(), shapes, codes)
            if not (callable(getattr(op, "forward", None)) and callable(getattr(op, "backward", None))):
                raise CustomOpError(f"Custom op {self.op_type!r}: create_operator must return a CustomOp, "
                                    f"got {type(op).__name__}")
            with self._lock:
                op = self._ops.setdefault(key, op)
        return op

    def forward(self, node: str, is_train: bool, in_data: list, aux: list, out_specs: list) -> tuple[list, list]:
        from .ndarray import array, zeros
        op = self._operator(node, in_data, aux)
        ins = [array(a, dtype=a.dtype) for a in in_data]
        outs = [zeros(shape, dtype=dtype) for shape, dtype in out_specs]
        states = [array(a, dtype=a.dtype) for a in aux]
        with current_context():
            op.forward(is_train=is_train, req=["write"] * len(outs), in_data=ins, out_data=outs, aux=states)
        return [o.asnumpy() for o in outs], [s.asnumpy() for s in states]

    def backward(self, node: str, out_grad: list, in_data: list, out_data: list, aux: list) -> list:
        from .ndarray import array, zeros
        op = self._operator(node, in_data, aux)
        floats = [_dt.is_float(a.dtype) for a in in_data]
        in_grad = [zeros(a.shape, dtype=a.dtype if f else np.float32) for a, f in zip(in_data, floats)]
        with current_context():
            op.backward(req=["write" if f else "null" for f in floats],
                        out_grad=[array(g, dtype=g.dtype) for g in out_grad],
                        in_data=[array(a, dtype=a.dtype) for a in in_data],
                        out_data=[array(o, dtype=o.dtype) for o in out_data],
                        in_grad=in_grad, aux=[array(a, dtype=a.dtype) for a in aux])
        return [g.asnumpy() for g in in_grad]


def _install(reg_name: str, factory: Callable[[dict[str, str]], _custom.Kernel]) -> None:
    """Register a kernel factory; replacing one forgets the compiled programs and inferred shapes using it."""
    if _custom.register_kernel(reg_name, factory):
        from .infer import clear_cache as forget_inferred
        from .lower import clear_cache as forget_programs
        forget_programs()
        forget_inferred()


def register(reg_name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`CustomOpProp` subclass as ``op_type=reg_name``.

        >>> import xgraph as mx
        >>> @mx.operator.register('doc_identity')
        ... class IdentityProp(mx.operator.CustomOpProp):
        ...     pass
        >>> mx.sym.Custom(mx.sym.var('x'), op_type='doc_identity', name='ident').list_outputs()
        ['ident_output']
    """
    def do_register(prop_cls: type) -> type:
        if not callable(prop_cls):
            raise AttributeValueError(f"mx.operator.register({reg_name!r}) decorates a CustomOpProp class, "
                                      f"got {prop_cls!r}")
        _install(reg_name, lambda kwargs: _PropKernel(reg_name, prop_cls(**kwargs)))
        return prop_cls
    return do_register


def register_jax(reg_name: str, outputs: Sequence[str] = ("output",),
                 backward: Callable[..., Any] | None = None) -> Callable[[Callable], Callable]:
    """Function decorator: register a pure JAX function as ``op_type=reg_name``, traced inline (no callback).

    The function's parameters without defaults are the op's arguments, in
    order; those with defaults are its attributes: a value given to
    ``mx.sym.Custom`` (a string, as MXNet passes it) is converted to the
    default's type (bool, int, float; anything else stays a string).  A
    parameter named ``is_train`` receives the training flag.  It returns one
    array, or a tuple with one array per name in ``outputs``.  Without
    ``backward`` JAX differentiates it; ``backward(in_data, out_data,
    out_grad, **attributes)`` (tuples of arrays) returns the argument
    gradients instead.

        >>> import jax.numpy as jnp
        >>> import xgraph as mx
        >>> @mx.operator.register_jax('doc_scaled_tanh')
        ... def scaled_tanh(data, scale=1.0):
        ...     return jnp.tanh(data) * scale
        >>> y = mx.nd.Custom(mx.nd.zeros((2,)) + 100, op_type='doc_scaled_tanh', scale=3)
        >>> y.asnumpy().tolist()
        [3.0, 3.0]
    """
    outputs = tuple(outputs)

    def do_register(fn: Callable) -> Callable:
        arguments, defaults, takes_is_train = _jax_signature(reg_name, fn)

        def factory(kwargs: dict[str, str]) -> _custom.JaxKernel:
            attrs = _jax_attrs(reg_name, defaults, kwargs)
            flag = (lambda t: {"is_train": t}) if takes_is_train else (lambda t: {})

            def forward(is_train: bool, *xs: Any) -> Any:
                return fn(*xs, **attrs, **flag(is_train))
            grad = None if backward is None else (lambda xs, ys, gs: backward(xs, ys, gs, **attrs))
            return _custom.JaxKernel(reg_name, arguments, outputs, forward, grad)
        _install(reg_name, factory)
        return fn
    return do_register


def _jax_signature(reg_name: str, fn: Callable) -> tuple[list[str], dict[str, Any], bool]:
    """(argument names, attribute defaults, whether it takes ``is_train``) of a JAX op function."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        raise AttributeValueError(f"register_jax({reg_name!r}): cannot read the signature of {fn!r}") from None
    arguments, defaults, takes_is_train = [], {}, False
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise AttributeValueError(f"register_jax({reg_name!r}): {fn.__name__} takes *{p.name}; name every "
                                      f"input and attribute explicitly")
        if p.name == "is_train":
            takes_is_train = True
        elif p.default is p.empty:
            arguments.append(p.name)
        else:
            defaults[p.name] = p.default
    return arguments, defaults, takes_is_train


def _jax_attrs(reg_name: str, defaults: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """The attribute values of a JAX op: the given strings converted to their default's type."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise AttributeValueError(f"Custom op {reg_name!r}: unknown attribute(s) {', '.join(unknown)}; "
                                  f"its attributes are: {', '.join(defaults) or 'none'}")
    out = dict(defaults)
    for k, v in given.items():
        kind = type(defaults[k])
        try:
            if kind is bool:
                if v not in ("True", "False", "true", "false", "1", "0"):
                    raise ValueError("not a boolean")
                out[k] = v in ("True", "true", "1")
            elif kind in (int, float):
                out[k] = kind(v)
            else:
                out[k] = v
        except ValueError:
            raise AttributeValueError(f"Custom op {reg_name!r}: attribute {k}={v!r} is not a "
                                      f"{kind.__name__}") from None
    return out


def get_all_registered_operators() -> list[str]:
    """Every operator name and alias xgraph knows (MXNet's ``get_all_registered_operators``).

        >>> 'Custom' in get_all_registered_operators()
        True
    """
    from .ops import registry
    return sorted(registry.all_names())


class OperatorArguments(NamedTuple):
    """An operator's signature: how many arguments, their names and MXNet-style type strings."""

    narg: int
    names: list[str]
    types: list[str]


def get_operator_arguments(op_name: str) -> OperatorArguments:
    """The inputs and attributes of an operator, as MXNet's ``get_operator_arguments`` lists them.

    Inputs come first (``NDArray-or-Symbol``, or ``NDArray-or-Symbol[]`` for any
    number of them), then the attributes with their type, and the default when
    they have one.

        >>> get_operator_arguments('Activation').types[1]
        "{'relu', 'sigmoid', 'softrelu', 'softsign', 'tanh'}, required"
    """
    from .ops import registry
    op = registry.get(op_name)
    if op.dynamic_inputs is not None:
        inputs: list[tuple[str, str]] = []
    elif op.variadic is not None:
        inputs = [(op.inputs[0].name if op.inputs else "data", "NDArray-or-Symbol[]")]
    else:
        inputs = [(i.name, "NDArray-or-Symbol") for i in op.inputs]
    entries = inputs + [(spec.name, spec.type_string()) for spec in op.attrs]
    return OperatorArguments(len(entries), [n for n, _ in entries], [t for _, t in entries])


register("custom_op")(CustomOpProp)

from .operator_legacy import NDArrayOp, NumpyOp, PythonOp  # noqa: E402  (they build on the classes above)

__all__ += ["PythonOp", "NumpyOp", "NDArrayOp"]
