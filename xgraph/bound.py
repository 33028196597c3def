"""The optimized programs behind an :class:`~xgraph.executor.Executor`.

An executor binds the user's symbol; what it runs are optimized graphs:

* the **training** graph (``forward(is_train=True)``, ``backward``) goes
  through the training-safe passes of the optimization level only; its
  structure never depends on parameter values, so it is optimized once, at
  bind time;
* the **inference** graph (``forward(is_train=False)``) goes through the whole
  level, inference-only rewrites included (``O2``: Dropout removal, BatchNorm
  folded into convolution weights from the bound values ...).  It is built on
  the first inference forward.  Passes report which bound parameters they read
  (:attr:`xgraph.passes.PassContext.read`); the executor keeps a reference to
  those parameters' buffers and, when one is no longer the buffer bound
  (NDArray writes swap buffers: ``arg_dict['w'][:] = v``, an optimizer
  update, ``copy_params_from``), optimizes again before running, so derived
  values (folded weights) are never stale.  The graph's structure does not
  change with the values, so the program is not recompiled; only the derived
  parameters are recomputed (in numpy, on the host).

With ``freeze_params`` the inference program closes over the parameter
values as compile-time constants (XLA pre-arranges constant weights, which
makes convolutions markedly faster on CPU); it is rebuilt and recompiled when
a frozen parameter changes, by the same buffer-identity check.  A frozen build of the
default pipeline also runs the ``conv_strategy`` pass (``auto``: Winograd and 1×1-as-matmul
where they measured faster with constant weights).  ``freeze='auto'``
(what an executor bound without gradients gets) freezes too, but stops
freezing once frozen values have changed :data:`AUTO_FREEZE_CHANGES` times:
weights that keep changing are arguments again, and each change costs a host
re-optimization instead of an XLA compile.

Both graphs are run through :class:`~xgraph.lower.RenamedFunction`, so the
programs take the user's arguments in the user's order: output names, the
argument, gradient and aux dicts are those of the user's symbol.

    >>> import numpy as np, xgraph as mx
    >>> x = mx.sym.var('data')
    >>> net = mx.sym.FullyConnected(x, num_hidden=2, name='fc')
    >>> sorted(parameter_names(net.graph, net.list_arguments()))
    ['fc_bias', 'fc_weight']
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

from .graph import Graph
from .lower import (RenamedFunction, frozen_inference_program, gradient_programs, inference_program,
                    train_forward_program)

#: Input slots that carry data, not parameters, when telling parameters from data.
_DATA_INPUTS = frozenset(("data", "label", "lhs", "rhs", "condition", "x", "y", "state", "state_cell",
                          "sequence_length", "indices", "index"))


def parameter_names(graph: Graph, arg_names: Sequence[str], data_names: Iterable[str] | None = None) -> set[str]:
    """The arguments that are parameters (values fixed between calls) rather than data.

    With ``data_names`` every other argument is a parameter.  Otherwise an
    argument is a parameter when every op reading it reads it as a
    parameter: at an input position after the first, of a non-variadic op,
    in a slot not named like data (``weight``, ``bias``, ``gamma``, ``beta``
    are parameters; ``data``, ``label``, ``lhs``, ``rhs`` ... are not).
    Auxiliary states are always parameters (not listed here).  A wrong guess
    costs speed, never correctness: values passes read are watched.
    """
    args = set(arg_names)
    if data_names is not None:
        return args - set(data_names)
    verdict: dict[str, bool] = {}
    for node in graph.topo_order():
        if node.op is None:
            continue
        names = node.op.input_names(node.params)
        for pos, (name, e) in enumerate(zip(names, node.inputs)):
            if e.node.op is not None:
                continue
            ok = pos > 0 and not node.op.variadic and name not in _DATA_INPUTS
            verdict[e.node.name] = verdict.get(e.node.name, True) and ok
    return {n for n, ok in verdict.items() if ok} & args


#: How many times frozen parameter values may change before ``freeze='auto'`` stops freezing.
AUTO_FREEZE_CHANGES = 2


class _InferState:
    __slots__ = ("watch", "call", "graph", "report", "new_params")

    def __init__(self, watch: list, call: Any, graph: Graph, report: Any, new_params: Mapping[str, Any]):
        self.watch, self.call, self.graph, self.report, self.new_params = watch, call, graph, report, new_params


class BoundPrograms:
    """The training and inference programs of one bound symbol at one optimization level.

    ``train_forward()`` and ``gradient(mask)`` give the (cached) jitted
    programs of the training graph; ``infer(args, aux, key)`` runs the
    inference graph, re-optimizing first when a parameter it depends on
    changed.  ``param_names`` are the arguments whose values passes may read
    (and ``freeze`` may bake in); every aux state is a parameter too.
    ``infer_opt_level`` and ``infer_passes`` make the inference graph's pipeline (default: the training's);
    ``freeze`` is True, False or ``'auto'`` (see the module docstring).
    """

    def __init__(self, graph: Graph, arg_names: Sequence[str], aux_names: Sequence[str],
                 shapes: Mapping[str, Any], dtypes: Mapping[str, Any], opt_level: int | str = 1,
                 passes: Sequence[Any] | None = None, options: Mapping[str, Any] | None = None,
                 param_names: Iterable[str] = (), freeze: "bool | str" = False,
                 infer_opt_level: int | str | None = None, infer_passes: Sequence[Any] | None = None):
        from .passes import optimize
        self._optimize = optimize
        self.graph = graph
        self.arg_names, self.aux_names = tuple(arg_names), tuple(aux_names)
        self.shapes, self.dtypes = dict(shapes), dict(dtypes)
        self.opt_level, self.passes, self.options = opt_level, passes, dict(options or {})
        self.param_names = set(param_names) & set(self.arg_names)
        self.infer_opt_level = opt_level if infer_opt_level is None else infer_opt_level
        self.infer_passes = passes if infer_opt_level is None and infer_passes is None else infer_passes
        self.freeze = freeze if freeze == "auto" else bool(freeze)
        self.value_changes = 0  # rebuilds caused by a watched parameter's new value
        opt = optimize(graph, opt_level, for_training=True, shapes=self.shapes, dtypes=self.dtypes,
                       passes=passes, options=self.options)
        self.train_graph, self.train_report = opt.graph, opt.report
        self.train_fn = RenamedFunction(opt.graph, True, self.arg_names, self.aux_names)
        self._infer_mode_fn: RenamedFunction | None = None
        self._infer: _InferState | None = None
        self.rebuilds = 0  # how many times the inference graph was optimized (for tests and reports)

    # -- training ---------------------------------------------------------------
    def train_forward(self) -> Any:
        """The jitted ``(args, aux, key) -> (outputs, new_aux)`` of the training graph."""
        return train_forward_program(self.train_graph, self.train_fn)

    def gradient(self, diff_mask: Sequence[bool]) -> Any:
        """The :class:`~xgraph.lower.GradientPrograms` of the training graph (mask over the user's args)."""
        return gradient_programs(self.train_graph, diff_mask, self.train_fn)

    def inference_gradient(self, diff_mask: Sequence[bool]) -> Any:
        """The same for the training graph run in inference mode (a backward after ``forward(is_train=False)``)."""
        if self._infer_mode_fn is None:
            self._infer_mode_fn = RenamedFunction(self.train_graph, False, self.arg_names, self.aux_names)
        return gradient_programs(self.train_graph, diff_mask, self._infer_mode_fn)

    # -- inference ----------------------------------------------------------------
    @property
    def infer_graph(self) -> Graph | None:
        """The optimized inference graph (None before the first inference forward)."""
        return self._infer.graph if self._infer is not None else None

    @property
    def infer_report(self) -> Any:
        """The pass report of the inference graph (None before the first inference forward)."""
        return self._infer.report if self._infer is not None else None

    def infer(self, args: Sequence[Any], aux: Sequence[Any], key: Any) -> Any:
        """Run ``forward(is_train=False)``; re-optimize first if a watched parameter changed."""
        st = self._infer
        if st is None or (st.watch and any((aux if kind else args)[i] is not ref for kind, i, ref in st.watch)):
            self.value_changes += st is not None
            st = self._build_infer(args, aux)
        return st.call(args, aux, key)

    @property
    def frozen(self) -> bool:
        """Whether the next inference build closes over the parameter values."""
        if self.freeze == "auto":
            return self.value_changes < AUTO_FREEZE_CHANGES
        return self.freeze

    def _infer_pipeline(self) -> Sequence[Any] | None:
        """The inference passes: the level's, plus the per-convolution strategy choice when frozen.

        With the weights as constants, ``conv_strategy``'s ``auto`` measured 1.2-1.8x faster on
        ResNets (Winograd for wide 3x3 layers, 1x1 as matrix products; docs/passes.md); with traced
        weights it does not win, so an unfrozen program keeps plain ``lax.conv``.
        """
        from .passes.manager import level_pipeline
        pipeline = level_pipeline(self.infer_opt_level)
        if self.infer_passes is not None or not self.frozen or pipeline != level_pipeline(2):
            return self.infer_passes
        return (*pipeline, "conv_strategy")

    def _build_infer(self, args: Sequence[Any], aux: Sequence[Any]) -> _InferState:
        values = {n: a for n, a in zip(self.arg_names, args) if n in self.param_names}
        values.update(zip(self.aux_names, aux))
        host = {k: np.asarray(v) for k, v in values.items()}
        opt = self._optimize(self.graph, self.infer_opt_level, for_training=False, shapes=self.shapes,
                             dtypes=self.dtypes, params=host, passes=self._infer_pipeline(), options=self.options)
        extra_names = tuple(opt.new_params)
        fn = RenamedFunction(opt.graph, False, self.arg_names, self.aux_names, extra_names)
        watched = set(opt.context.read)
        if self.frozen:
            watched |= set(values)
            frozen = {k: host[k] for k in values}
            call = frozen_inference_program(fn, frozen, [opt.new_params[n] for n in extra_names])
        else:
            extra = tuple(jax.device_put(np.asarray(opt.new_params[n])) for n in extra_names)
            program = inference_program(opt.graph, fn)

            def call(a, x, k, _p=program, _e=extra):
                return _p(a, x, k, _e)
        watch = [(0, i, args[i]) for i, n in enumerate(self.arg_names) if n in watched]
        watch += [(1, i, aux[i]) for i, n in enumerate(self.aux_names) if n in watched]
        self._infer = _InferState(watch, call, opt.graph, opt.report, opt.new_params)
        self.rebuilds += 1
        return self._infer


__all__ = ["AUTO_FREEZE_CHANGES", "BoundPrograms", "parameter_names"]
