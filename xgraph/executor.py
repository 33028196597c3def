"""Executor: MXNet's bind / simple_bind / forward / backward semantics over XLA programs.

The executor keeps MXNet's surface (``arg_dict``, ``grad_dict``, ``aux_dict``,
``outputs``, ``grad_req`` write/add/null, ``reshape``) while doing the work in
as few XLA calls as possible:

* ``forward(is_train=False)`` is one call of the cached inference program;
* ``forward(is_train=True)`` followed by ``backward()`` is one fused
  forward+backward computation: the forward is deferred until its results are
  read or backward comes;
* if the outputs are read between the two, the forward runs alone and keeps
  its residuals, and backward only runs the backward pass. The forward never
  runs twice.

    >>> import numpy as np, xgraph as mx
    >>> x = mx.sym.var('x')
    >>> loss = mx.sym.MakeLoss(mx.sym.sum(x * x))
    >>> ex = loss.simple_bind(mx.cpu(), x=(3,))
    >>> ex.arg_dict['x'][:] = np.array([1, 2, 3], np.float32)
    >>> _ = ex.forward(is_train=True); ex.backward()
    >>> ex.grad_dict['x'].asnumpy().tolist()
    [2.0, 4.0, 6.0]
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from . import dtypes as _dt
from . import rng
from .context import Context, as_context
from .errors import BindError, ShapeError, UnsupportedFeatureError
from .graph import Entry, Node
from .ops import registry as _registry
from .passes import level_pipeline
from .infer import InferResult, infer, resolve_deferred
from .bound import BoundPrograms, parameter_names
from .lower import unique_names
from .ndarray import NDArray
from .placement import PlacedPrograms, assign_devices, resolve_group2ctx, spans_devices, variable_contexts

_GRAD_REQS = ("write", "add", "null")


def _as_dict(what: str, names: Sequence[str], values: Any, required: bool) -> dict[str, Any]:
    """Normalize a list (aligned with ``names``) or dict of arrays; report missing ones."""
    if values is None:
        values = {}
    if isinstance(values, (list, tuple)):
        if len(values) != len(names):
            raise BindError(f"{what}: {len(values)} arrays given for {len(names)} names {names}")
        values = dict(zip(names, values))
    elif not isinstance(values, Mapping):
        raise BindError(f"{what} must be a list or a dict of arrays, not {type(values).__name__}")
    if required:
        missing = [n for n in names if values.get(n) is None]
        if missing:
            raise BindError(f"{what}: no array given for {', '.join(repr(m) for m in missing)}")
    return {n: values[n] for n in names if values.get(n) is not None}


def _known(shape: Any) -> bool:
    return shape is not None and all(d > 0 for d in shape)


def _grad_req_dict(grad_req: Any, names: Sequence[str]) -> dict[str, str]:
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in names}
    elif isinstance(grad_req, (list, tuple)):
        if len(grad_req) != len(names):
            raise BindError(f"grad_req: {len(grad_req)} entries for {len(names)} arguments")
        reqs = dict(zip(names, grad_req))
    elif isinstance(grad_req, Mapping):
        unknown = set(grad_req) - set(names)
        if unknown:   # MXNet ignores them (one dict often serves several variants of a net); say so
            warnings.warn(f"grad_req names unknown arguments {sorted(unknown)}, ignored; arguments are "
                          f"{list(names)}", stacklevel=4)
        reqs = {n: grad_req.get(n, "null") for n in names}
    else:
        raise BindError(f"grad_req must be a string, list or dict, not {type(grad_req).__name__}")
    for n, r in reqs.items():
        if r not in _GRAD_REQS:
            raise BindError(f"grad_req for {n!r} is {r!r}; expected one of {', '.join(_GRAD_REQS)}")
    return reqs


def _context_of(value: Any) -> Context | None:
    """The context of the device an NDArray or jax array lives on (None for host values)."""
    data = value.data if isinstance(value, NDArray) else value
    if not isinstance(data, jax.Array):
        return None
    devs = data.devices()
    return Context.from_device(next(iter(devs))) if len(devs) == 1 else None


def _to_ndarray(value: Any, device: Any, what: str) -> NDArray:
    if isinstance(value, NDArray):
        return value
    try:
        arr = jax.device_put(np.asarray(value) if not isinstance(value, jax.Array) else value, device)
    except (TypeError, ValueError) as exc:
        raise BindError(f"{what}: cannot use {type(value).__name__} as an array ({exc})") from None
    return NDArray(arr)


#: The optimization levels of an executor bound without ``opt_level=`` (training and inference graphs).
DEFAULT_TRAIN_LEVEL, DEFAULT_INFER_LEVEL = 1, 2


def _without_cse_if_asked(opt_level: Any, passes: Sequence[Any] | None) -> Sequence[Any] | None:
    """The level's pipeline without CSE when MXNet's ``MXNET_ELIMINATE_COMMON_EXPR=0`` asks for it, else ``passes``."""
    if passes is None and os.environ.get("MXNET_ELIMINATE_COMMON_EXPR", "1").strip() == "0":
        return [p for p in level_pipeline(opt_level) if p != "cse"]
    return passes


def _isolated_outputs(outputs: Sequence[Entry]) -> list[Entry]:
    """Outputs with every repeat of an entry behind a ``_copy``: each output is its own array, as in MXNet."""
    seen: set = set()
    result = []
    for e in outputs:
        key = (id(e.node), e.index)
        if key in seen:
            e = Entry(Node(_registry.get("_copy"), f"{e.node.name}_copy{len(result)}", inputs=(e,)), 0)
        seen.add(key)
        result.append(e)
    return result


class Executor:
    """A bound graph: arrays for every argument, gradient and auxiliary state, and its programs.

    Build one with :meth:`Symbol.bind` or :meth:`Symbol.simple_bind`.  With ``group2ctx`` (a dict
    of ``ctx_group`` name → context) whose placement spans several devices, the graph runs as
    segments, one jitted program per device run (MXNet's model parallelism, :mod:`xgraph.placement`;
    :attr:`segments` lists them); otherwise it is one XLA program.
    """

    def __init__(self, symbol: Any, ctx: Any = None, args: Any = None, args_grad: Any = None,
                 grad_req: Any = "write", aux_states: Any = None, opt_level: int | str | None = None,
                 passes: Sequence[Any] | None = None, pass_options: Mapping[str, Any] | None = None,
                 freeze_params: bool | None = None, data_names: Sequence[str] | None = None,
                 group2ctx: Mapping[str, Any] | None = None, **_: Any):
        self._symbol = symbol
        self._graph = graph = symbol.graph
        self._ctx = as_context(ctx)
        device = self._ctx.device
        self._arg_names = unique_names(graph.argument_nodes())
        self._aux_names = unique_names(graph.aux_nodes())
        args = _as_dict("args", self._arg_names, args, required=True)
        aux = _as_dict("aux_states", self._aux_names, aux_states, required=True)
        reqs = _grad_req_dict(grad_req, self._arg_names)
        grads = _as_dict("args_grad", self._arg_names, args_grad, required=False) if args_grad is not None else {}
        self._group2ctx = resolve_group2ctx(group2ctx)
        if self._group2ctx:
            # ctx_group placement: a variable is where its array is (a host value: its group's context)
            homes = variable_contexts(graph, self._group2ctx, self._ctx)
            dev = {n: (_context_of(v) or homes[n]).device for n, v in {**args, **aux}.items()}
            gdev = {n: (_context_of(v) or homes[n]).device for n, v in grads.items()}
        else:
            dev = gdev = dict.fromkeys({*args, *aux, *grads}, device)
        self.arg_dict = {n: _to_ndarray(args[n], dev[n], f"argument {n!r}") for n in self._arg_names}
        self.aux_dict = {n: _to_ndarray(aux[n], dev[n], f"aux state {n!r}") for n in self._aux_names}
        self._grad_req = {n: (reqs[n] if n in grads else "null") for n in self._arg_names}
        self.grad_dict: dict[str, NDArray | None] = {
            n: (_to_ndarray(grads[n], gdev[n], f"gradient {n!r}") if self._grad_req[n] != "null" else None)
            for n in self._arg_names}
        self._graph = graph = resolve_deferred(graph, self._check_signature())
        # an argument whose gradient is always zero (integer, or behind BlockGrad) is not differentiated
        reaching = graph.gradient_reaching_variables()
        self._diff_mask = tuple(self._grad_req[n] != "null" and _dt.is_float(self.arg_dict[n].dtype)
                                and n in reaching for n in self._arg_names)
        self._has_grad = any(self._diff_mask)
        self._needs_rng = any(n.is_random for n in graph.topo_order())
        self._opt = dict(opt_level=opt_level, passes=passes, pass_options=pass_options,
                         freeze_params=freeze_params, data_names=data_names, group2ctx=group2ctx)
        sigs = {**self.arg_dict, **self.aux_dict}
        self._placed = self._placement(graph, sigs) if self._group2ctx else None
        if self._placed is not None:
            self._programs = self._placed
            self._infer = self._placed.infer
            self._train_fwd = self._placed.train_forward()
            self._grad = self._placed.gradient(self._diff_mask) if self._has_grad else None
            self.outputs = [NDArray(jax.device_put(np.zeros(s, d), c.device))
                            for (s, d), c in zip(self._out_sigs, self._placed.output_contexts())]
            self._init_state()
            return
        # the defaults are the fast path: O1 for training, O2 for inference, and an executor bound
        # without gradients (a predictor) freezes its parameters until they keep changing
        freeze = ("auto" if not self._has_grad else False) if freeze_params is None else freeze_params
        train_level = DEFAULT_TRAIN_LEVEL if opt_level is None else opt_level
        infer_level = DEFAULT_INFER_LEVEL if opt_level is None else opt_level
        self._programs = BoundPrograms(
            graph, self._arg_names, self._aux_names, {n: a.shape for n, a in sigs.items()},
            {n: a.dtype for n, a in sigs.items()}, opt_level=train_level,
            passes=_without_cse_if_asked(train_level, passes), options=pass_options,
            param_names=parameter_names(graph, self._arg_names, data_names), freeze=freeze,
            infer_opt_level=infer_level, infer_passes=_without_cse_if_asked(infer_level, passes))
        self._infer = self._programs.infer
        self._train_fwd = self._programs.train_forward()
        self._grad = self._programs.gradient(self._diff_mask) if self._has_grad else None
        self.outputs = [NDArray(np.zeros(s, d)) for s, d in self._out_sigs]
        self._init_state()

    def _init_state(self) -> None:
        self._pending: tuple | None = None      # (args, aux, key) of a deferred training forward
        self._monitor: tuple | None = None      # (callback, internals executor, names) once set
        self._pullback: Any = None              # residuals of the last training forward
        self._last_inputs: tuple | None = None   # inputs of the last forward (for a repeated or inference-mode backward)
        self._last_train = True                  # the mode of the last forward (a later backward follows it)

    # -- construction helpers ----------------------------------------------
    def _placement(self, graph: Any, arrays: Mapping[str, NDArray]) -> PlacedPrograms | None:
        """The segmented programs when the ctx_group placement spans several devices, else None."""
        var_ctx = {n: _context_of(a) or self._ctx for n, a in arrays.items()}
        devices = assign_devices(graph, self._group2ctx, self._ctx, var_ctx)
        if not spans_devices(devices):
            return None
        if self._opt["passes"] is not None or self._opt["pass_options"]:
            raise UnsupportedFeatureError(
                f"bind with passes={self._opt['passes']!r}, pass_options={self._opt['pass_options']!r}: graph "
                "passes do not run on a ctx_group placement over several devices (group2ctx "
                f"{ {g: str(c) for g, c in self._group2ctx.items()} }); each device's segment is optimized by XLA "
                "alone. Bind without passes, or on one device")
        grad_ctx = {n: _context_of(g) or var_ctx[n] for n, g in self.grad_dict.items() if g is not None}
        return PlacedPrograms(graph, self._arg_names, self._aux_names, {n: a.shape for n, a in arrays.items()},
                              {n: a.dtype for n, a in arrays.items()}, self._ctx, self._group2ctx, var_ctx,
                              {**var_ctx, **grad_ctx})

    @property
    def segments(self) -> list:
        """The :class:`~xgraph.placement.Segment` list of a ctx_group placement over several devices
        (each with its ``ctx`` and ``nodes``); ``[]`` for the ordinary one-program executor.

            >>> import xgraph as mx
            >>> fc = mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=2, name='fc', attr={'ctx_group': 'g'})
            >>> fc.simple_bind(mx.cpu(0), x=(1, 3), group2ctx={'g': mx.cpu(0)}).segments   # one device
            []
        """
        return list(self._placed.segments) if self._placed is not None else []

    def _check_signature(self) -> InferResult:
        """Infer every shape from the bound arrays; refuse inconsistent ones."""
        shapes = {n: a.shape for n, a in {**self.arg_dict, **self.aux_dict}.items()}
        dts = {n: a.dtype for n, a in {**self.arg_dict, **self.aux_dict}.items()}
        res = infer(self._graph, shapes, dts, partial=False, zero_size_known=True)
        for n, g in self.grad_dict.items():
            if g is not None and g.shape != self.arg_dict[n].shape:
                raise ShapeError(f"gradient array of {n!r} has shape {g.shape}, but the argument has "
                                 f"shape {self.arg_dict[n].shape}")
        self._out_sigs = []
        for e in self._graph.outputs:
            s, d = res.shape(e), res.dtype(e)
            if s is None or d is None:
                raise ShapeError(f"cannot infer the shape of output '{e.node.name}'")
            self._out_sigs.append((tuple(s), d))
        return res

    @classmethod
    def simple_bind(cls, symbol: Any, ctx: Any = None, grad_req: Any = "write",
                    type_dict: Mapping[str, Any] | None = None, shared_exec: "Executor | None" = None,
                    opt_level: int | str | None = None, passes: Sequence[Any] | None = None,
                    pass_options: Mapping[str, Any] | None = None, freeze_params: bool | None = None,
                    data_names: Sequence[str] | None = None, group2ctx: Mapping[str, Any] | None = None,
                    **shapes: Any) -> "Executor":
        """Allocate zero-filled arrays from the given input shapes (and dtypes) and bind.

            >>> import xgraph as mx
            >>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=4, name='fc')
            >>> ex = net.simple_bind(mx.cpu(), data=(2, 3))
            >>> ex.arg_dict['fc_weight'].shape
            (4, 3)
        """
        graph = symbol.graph
        ctx = as_context(ctx)
        res = infer(graph, shapes, type_dict, partial=False, default_dtype=np.float32)
        arg_names = unique_names(graph.argument_nodes())
        aux_names = unique_names(graph.aux_nodes())
        unknown = [n for n in arg_names + aux_names
                   if res.var_shapes.get(n) is None or not all(d > 0 for d in res.var_shapes[n])]
        if unknown:
            raise BindError(f"simple_bind: cannot infer the shape of {', '.join(repr(u) for u in unknown)}; "
                            f"give it, e.g. simple_bind(ctx, {unknown[0]}=(...))")
        device = ctx.device
        shared = shared_exec.arg_dict if shared_exec is not None else {}
        shared_aux = shared_exec.aux_dict if shared_exec is not None else {}
        groups = resolve_group2ctx(group2ctx)
        # MXNet allocates a variable (and its gradient) on its ctx_group's context, others on ctx
        homes = {n: c.device for n, c in variable_contexts(graph, groups, ctx).items()} if groups else {}

        def alloc(name: str, table: Mapping[str, NDArray]) -> NDArray:
            shape, dt = tuple(res.var_shapes[name]), res.var_dtypes.get(name) or np.dtype(np.float32)
            if name in table and table[name].shape == shape and table[name].dtype == np.dtype(dt).type:
                return table[name]
            return NDArray(jax.device_put(np.zeros(shape, dt), homes.get(name, device)))

        args = {n: alloc(n, shared) for n in arg_names}
        aux = {n: alloc(n, shared_aux) for n in aux_names}
        reqs = _grad_req_dict(grad_req, arg_names)
        grads = {n: NDArray(jax.device_put(np.zeros(args[n].shape, np.dtype(args[n].dtype)), homes.get(n, device)))
                 for n in arg_names if reqs[n] != "null"}
        return cls(symbol, ctx, args=args, args_grad=grads, grad_req=reqs, aux_states=aux, opt_level=opt_level,
                   passes=passes, pass_options=pass_options, freeze_params=freeze_params, data_names=data_names,
                   group2ctx=group2ctx)

    # -- MXNet's views --------------------------------------------------------
    @property
    def arg_arrays(self) -> list[NDArray]:
        return [self.arg_dict[n] for n in self._arg_names]

    @property
    def grad_arrays(self) -> list[NDArray | None]:
        return [self.grad_dict[n] for n in self._arg_names]

    @property
    def aux_arrays(self) -> list[NDArray]:
        return [self.aux_dict[n] for n in self._aux_names]

    @property
    def output_dict(self) -> dict[str, NDArray]:
        return dict(zip(self._symbol.list_outputs(), self.outputs))

    @property
    def pass_reports(self) -> dict[str, Any]:
        """The pass reports of the programs: ``'train'``, and ``'infer'`` once an inference forward ran."""
        out = {"train": self._programs.train_report}
        if self._programs.infer_report is not None:
            out["infer"] = self._programs.infer_report
        return out

    @property
    def optimized_graphs(self) -> dict[str, Any]:
        """The graphs the programs run: ``'train'``, and ``'infer'`` once an inference forward ran."""
        out = {"train": self._programs.train_graph}
        if self._programs.infer_graph is not None:
            out["infer"] = self._programs.infer_graph
        return out

    def get_optimized_symbol(self) -> Any:
        """The symbol of the graph the training program runs, after the optimization passes (MXNet's
        ``Executor.get_optimized_symbol``).

            >>> import xgraph as mx
            >>> x = mx.sym.var('x')
            >>> ex = (mx.sym.exp(x) + mx.sym.exp(x)).simple_bind(mx.cpu(), x=(2,))
            >>> len(ex.get_optimized_symbol().get_internals().list_outputs())   # one exp left of two
            3
        """
        return type(self._symbol)(_isolated_outputs(self._programs.train_graph.outputs))

    @property
    def grad_req(self) -> dict[str, str]:
        return dict(self._grad_req)

    @property
    def symbol(self) -> Any:
        return self._symbol

    @property
    def ctx(self) -> Context:
        return self._ctx

    # -- running ------------------------------------------------------------
    def _key(self) -> Any:
        return rng.next_words() if self._needs_rng else None

    def _set_outputs(self, outs: Sequence[jax.Array]) -> None:
        for h, o in zip(self.outputs, outs):
            h._set(o)

    def _set_aux(self, new_aux: Sequence[jax.Array]) -> None:
        for n, v in zip(self._aux_names, new_aux):
            self.aux_dict[n]._set(v)

    def _set_grads(self, grads: Sequence[jax.Array]) -> None:
        it = iter(grads)
        for n, m in zip(self._arg_names, self._diff_mask):
            if m:
                self.grad_dict[n]._set(next(it))
            elif self._grad_req[n] == "write":
                # an integer argument (softmax's length) is not differentiated: MXNet writes it a zero gradient
                g = self.grad_dict[n]
                if self._placed is None:
                    g._set(jax.numpy.zeros(g.shape, g.dtype))
                else:
                    g._set(jax.numpy.zeros(g.shape, g.dtype, device=next(iter(g.data.devices()))))

    def _old_grads(self) -> tuple | None:
        if not any(self._grad_req[n] == "add" for n, m in zip(self._arg_names, self._diff_mask) if m):
            return None
        return tuple(self.grad_dict[n].data if self._grad_req[n] == "add" else None
                     for n, m in zip(self._arg_names, self._diff_mask) if m)

    def forward(self, is_train: bool = False, **kwargs: Any) -> list[NDArray]:
        """Run the graph; keyword arrays are first copied into ``arg_dict``.

        Returns :attr:`outputs`.  In training mode with gradients to compute,
        the work is deferred and fused with :meth:`backward` unless the
        outputs are read first.
        """
        # this is the per-call hot path: list comprehensions and no redundant calls
        # (a one-op forward costs a few microseconds in all; see benchmarks/bench_executor.py)
        arg_dict = self.arg_dict
        if kwargs:
            for k, v in kwargs.items():
                if k not in arg_dict:
                    raise BindError(f"forward: {k!r} is not an argument; arguments are {self._arg_names}")
                arg_dict[k][:] = v
        if self._pending is not None:
            self._resolve_pending()
        args = tuple([arg_dict[n].data for n in self._arg_names])
        aux = tuple([self.aux_dict[n].data for n in self._aux_names]) if self._aux_names else ()
        key = self._key()
        self._pullback = None
        self._last_train = bool(is_train)
        if not is_train:
            self._set_outputs(self._infer(args, aux, key))
            self._last_inputs = (args, aux, key)
        elif not self._has_grad:
            outs, new_aux = self._train_fwd(args, aux, key)
            self._set_outputs(outs)
            self._set_aux(new_aux)
        else:
            self._pending = (args, aux, key)
            self._last_inputs = self._pending
            for h in self.outputs:
                h._set_pending(self._resolve_pending)
            for h in self.aux_dict.values():
                h._set_pending(self._resolve_pending)
        if self._monitor is not None:
            self._report_to_monitor(is_train)
        return self.outputs

    def set_monitor_callback(self, callback: Any, monitor_all: bool = False) -> None:
        """Call ``callback(name, NDArray)`` after every forward with each operator's outputs (MXNet's monitor).

        Names are MXNet's: ``conv_output``; with ``monitor_all`` also every input,
        ``conv_data``, ``conv_weight`` (and a variable input by its own name first).
        The values come from an unoptimized run of every node at the same
        arguments (random ops draw their own samples), so monitoring costs a
        second forward and never changes the executor's outputs.

            >>> import xgraph as mx
            >>> seen = []
            >>> ex = mx.sym.relu(mx.sym.var('x'), name='r').simple_bind(mx.cpu(), x=(2,), grad_req='null')
            >>> ex.set_monitor_callback(lambda name, arr: seen.append(name))
            >>> _ = ex.forward(); seen
            ['r_output']
        """
        if callback is None:
            self._monitor = None
            return
        entries, names = [], []
        for node in self._graph.topo_order():
            if node.op is None:
                continue
            outs = [Entry(node, i) for i in range(node.num_visible_outputs)]
            out_names = type(self._symbol)(outs).list_outputs()
            if monitor_all:
                for slot, e in zip(node.op.monitor_input_names(node.params), node.inputs):
                    if e.node.op is None:
                        entries.append(e)
                        names.append(e.node.name)
                    entries.append(e)
                    names.append(f"{node.name}_{slot}")
            entries += outs
            names += out_names
        everything = type(self._symbol)(entries)
        aux = {n: NDArray(a.data) for n, a in self.aux_dict.items()}   # its aux updates stay its own
        internals = Executor(everything, self._ctx, args=self.arg_dict, grad_req="null", aux_states=aux,
                             opt_level=0, freeze_params=False, group2ctx=self._group2ctx)
        self._monitor = (callback, internals, names)

    def _report_to_monitor(self, is_train: bool) -> None:
        callback, internals, names = self._monitor
        for name, value in zip(names, internals.forward(is_train=is_train)):
            callback(name, value)

    def _resolve_pending(self) -> None:
        """Run a deferred training forward on its own, keeping residuals for backward."""
        if self._pending is None:
            return
        args, aux, key = self._pending
        self._pending = None
        outs, pullback, new_aux = self._grad.forward(args, aux, key)
        self._pullback = (pullback, outs)
        self._set_outputs(outs)
        self._set_aux(new_aux)

    def backward(self, out_grads: Any = None, is_train: bool = True) -> None:
        """Compute gradients into ``grad_dict`` (added for ``grad_req='add'``).

        ``out_grads`` are the head gradients, one per output; ones when not
        given (loss heads such as SoftmaxOutput ignore them).
        """
        if not self._has_grad:
            self._set_grads(())   # zeros into every 'write' gradient
            return
        heads = self._head_grads(out_grads)
        old = self._old_grads()
        if self._pending is not None:
            args, aux, key = self._pending
            self._pending = None
            outs, new_aux, grads = self._grad.step(args, aux, key, heads, old)
            self._set_outputs(outs)
            self._set_aux(new_aux)
        elif self._pullback is not None:
            pullback, outs = self._pullback
            grads = self._grad.backward(pullback, outs, heads, old)
        elif self._last_inputs is not None:
            # a second backward after a fused step, or (as MXNet allows) a backward after forward(is_train=False):
            # recompute the gradients at the last forward's inputs, but leave the outputs and aux states alone;
            # as in MXNet the last forward's mode decides (Dropout passes gradients through after inference)
            args, aux, key = self._last_inputs
            prog = self._grad if self._last_train else self._programs.inference_gradient(self._diff_mask)
            _, _, grads = prog.step(args, aux, key, heads, old)
        else:
            # MXNet allows backward before any forward: the gradients at the arguments bound now
            args = tuple(self.arg_dict[n].data for n in self._arg_names)
            aux = tuple(self.aux_dict[n].data for n in self._aux_names)
            _, _, grads = self._grad.step(args, aux, self._key(), heads, old)
        self._set_grads(grads)

    def _head_grads(self, out_grads: Any) -> tuple | None:
        if out_grads is None:
            return None
        if isinstance(out_grads, (NDArray, np.ndarray, jax.Array)):
            out_grads = [out_grads]
        if isinstance(out_grads, Mapping):
            names = self._symbol.list_outputs()
            out_grads = [out_grads.get(n) for n in names]
        if len(out_grads) < len(self.outputs):
            raise BindError(f"backward: {len(out_grads)} head gradients for {len(self.outputs)} outputs")
        out_grads = list(out_grads)[:len(self.outputs)]   # MXNet ignores head gradients past the outputs
        heads = []
        for i, (g, (shape, dtype), e) in enumerate(zip(out_grads, self._out_sigs, self._graph.outputs)):
            # an integer output, or one of an op with zero gradients, carries no gradient: MXNet ignores its head
            if g is None or not _dt.is_float(dtype) or (e.node.op is not None and not e.node.op.differentiable):
                heads.append(None)
                continue
            g = g.data if isinstance(g, NDArray) else g
            if tuple(g.shape) != tuple(shape):
                raise ShapeError(f"backward: head gradient {i} has shape {tuple(g.shape)}, output {i} has {shape}")
            heads.append(g)
        return tuple(heads)

    # -- parameters and reshaping ----------------------------------------------
    def copy_params_from(self, arg_params: Mapping[str, Any], aux_params: Mapping[str, Any] | None = None,
                         allow_extra_params: bool = False) -> None:
        """Copy parameter values into the bound arrays by name."""
        for table, params, what in ((self.arg_dict, arg_params, "argument"), (self.aux_dict, aux_params or {}, "aux state")):
            for k, v in params.items():
                if k in table:
                    table[k][:] = v
                elif not allow_extra_params:
                    raise BindError(f"copy_params_from: {k!r} is not an {what} of the bound symbol")

    def reshape(self, partial_shaping: bool = False, allow_up_sizing: bool = False, **shapes: Any) -> "Executor":
        """A new executor for new input shapes, sharing the arrays whose shapes do not change.

        As in MXNet, other arguments may change shape only with
        ``partial_shaping=True``, and arrays may grow only with ``allow_up_sizing=True``.
        """
        # as MXNet: new shapes come from the given ones alone (a label follows its data's batch
        # size); only what they leave unknown keeps its current shape
        dts = {n: a.dtype for n, a in {**self.arg_dict, **self.aux_dict}.items()}
        res = infer(self._graph, shapes, dts, partial=True, default_dtype=np.float32)
        current = {n: a.shape for n, a in {**self.arg_dict, **self.aux_dict}.items()}
        unknown = {n: s for n, s in current.items() if n not in shapes and not _known(res.var_shapes.get(n))}
        if unknown:
            res = infer(self._graph, {**unknown, **shapes}, dts, partial=True, default_dtype=np.float32)
        device = self._ctx.device

        def pick(name: str, old: NDArray | None, shape: tuple) -> NDArray | None:
            if old is None:
                return None
            if old.shape == tuple(shape):
                return old
            if name not in shapes and not partial_shaping:
                raise ShapeError(f"reshape: {name!r} would change from {old.shape} to {tuple(shape)}; "
                                 f"pass partial_shaping=True to allow it")
            if int(np.prod(shape)) > old.size and not allow_up_sizing:
                raise ShapeError(f"reshape: {name!r} would grow from {old.shape} to {tuple(shape)}; "
                                 f"pass allow_up_sizing=True to allow it")
            size = int(np.prod(shape))
            if size <= old.size:  # MXNet reshapes the old array in place: it keeps the leading values
                return NDArray(old.data.reshape(-1)[:size].reshape(shape))
            where = device if self._placed is None else next(iter(old.data.devices()))
            return NDArray(jax.device_put(np.zeros(shape, np.dtype(old.dtype)), where))

        def shape_of(name: str) -> tuple:
            s = res.var_shapes.get(name)
            if not _known(s):
                raise ShapeError(f"reshape: cannot infer the new shape of {name!r}")
            return tuple(s)

        args = {n: pick(n, self.arg_dict[n], shape_of(n)) for n in self._arg_names}
        grads = {n: pick(n, self.grad_dict[n], shape_of(n)) for n in self._arg_names
                 if self.grad_dict[n] is not None}
        aux = {n: pick(n, self.aux_dict[n], shape_of(n)) for n in self._aux_names}
        return Executor(self._symbol, self._ctx, args=args, args_grad=grads, grad_req=self._grad_req,
                        aux_states=aux, **self._opt)

    def memory_report(self) -> dict[str, int]:
        """Bytes the executor's step holds besides its bound arrays (arguments, gradients, aux states).

        ``outputs`` are the graph's outputs; ``saved_for_backward`` the residuals
        a training forward keeps until ``backward`` (zero when nothing is
        differentiated, e.g. every argument behind ``BlockGrad``).  Found by
        tracing the programs, without running or compiling them.

            >>> import xgraph as mx
            >>> x = mx.sym.var('x')
            >>> ex = (x * x).simple_bind(mx.cpu(), x=(256, 1024))
            >>> ex.memory_report()
            {'outputs': 1048576, 'saved_for_backward': 1048576}
        """
        def nbytes(shape: Sequence[int], dtype: Any) -> int:
            return int(np.prod(shape)) * _dt.canonical(dtype).itemsize

        outputs = sum(nbytes(shape, dt) for shape, dt in self._out_sigs)
        saved = 0
        if self._has_grad and self._placed is not None:
            saved = self._placed.saved_for_backward(self._diff_mask)
        elif self._has_grad:
            args = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (self.arg_dict[n] for n in self._arg_names))
            aux = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (self.aux_dict[n] for n in self._aux_names))
            key = rng.words(0, 0) if self._needs_rng else None
            _, pullback, _ = jax.eval_shape(lambda *a: self._grad.forward(*a), args, aux, key)
            saved = sum(nbytes(leaf.shape, leaf.dtype) for leaf in jax.tree_util.tree_leaves(pullback))
        return {"outputs": outputs, "saved_for_backward": saved}

    def debug_str(self) -> str:
        """The bound graph, one node a line, then the memory its step holds (MXNet's ``Total N MB allocated``)."""
        mem = self.memory_report()
        mb = {k: v / 2 ** 20 for k, v in mem.items()}
        return (f"{self._symbol.debug_str()}\n"
                f"Outputs: {mb['outputs']:.1f} MB, kept for backward: {mb['saved_for_backward']:.1f} MB\n"
                f"Total {round(sum(mb.values()))} MB allocated")

    def __repr__(self) -> str:
        return f"<Executor {self._symbol!r} @{self._ctx}>"


__all__ = ["Executor"]
