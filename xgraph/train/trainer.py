"""The fused training step: forward, backward, every optimizer update and the metric in ONE XLA call.

:class:`Trainer` owns the training state as device arrays (parameters,
optimizer state, auxiliary states, the update counter) and a jitted step::

    (params, opt_state, aux, count, metric_acc), outputs = step(params, opt_state, aux, count,
                                                                metric_acc, inputs, ...)

Parameters, optimizer state, auxiliary states, the counter and the metric
accumulator are DONATED, so XLA updates them in place.  The learning rate and
weight decay come from the traced counter (``optimizer.step_param``: the
schedule runs inside the step), so nothing recompiles between epochs; jax
recompiles only when an input shape or dtype changes.

Partial batches.  A batch smaller than the bound batch size is zero-padded to
it, and a batch with ``pad > 0`` (NDArrayIter's ``'pad'`` mode, PythonIter)
uses the same compiled step.  Policy:

* metrics: padded rows never count.  The step's on-device metric statistics
  are switched off for that batch and the metric is updated on the host from
  the valid rows of the outputs (one small extra computation per epoch);
* gradients: each output that ends in a loss head (SoftmaxOutput,
  LinearRegressionOutput, MakeLoss, ... any op whose lowering ignores the head
  gradient) gets its per-row gradient multiplied by a 0/1 row mask on the way
  back (see :func:`_masked_graph`), so padded rows contribute nothing to the
  parameter gradients.  What the mask cannot remove: rows still meet inside
  batch-coupled ops (BatchNorm's batch statistics, and its moving averages,
  see the padded rows), and ``normalization='batch'`` still divides by the full
  batch size.  For ordinary heads (no custom VJP) the head gradient itself is
  masked.  Outputs whose first axis is not the batch (a language model's
  ``(seq * batch, vocab)``) are not masked: there padded rows count, in the
  gradient and in the metric.

Randomness: the step's PRNG key is ``fold_in(key(seed), count)`` computed
inside the step, from the trainer's own seed and counter (both stored in
checkpoints), so a resumed run draws the same dropout masks.

    >>> import numpy as np, xgraph as mx
    >>> net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc'),
    ...                            name='softmax')
    >>> tr = Trainer(net, 'sgd', {'learning_rate': 0.1}, data_shapes=[('data', (4, 3))],
    ...              label_shapes=[('softmax_label', (4,))], eval_metric='acc', seed=0)
    >>> tr.step(mx.io.DataBatch([np.ones((4, 3), np.float32)], [np.zeros(4, np.float32)]))
    >>> tr.num_update, tr.eval_metric.get()[0]
    (1, 'accuracy')
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import rng as _rng
from ..context import Context, as_context
from ..errors import BindError, ConfigError, GraphFormatError, ParallelError, ShapeError
from ..graph import Entry, Graph, Node
from ..io.atomic import atomic_open
from ..io.json_text import parse_json
from ..io.npy import read_npz
from ..lower import GraphFunction, RenamedFunction, _cotangents, abstract_inputs, unique_names
from ..ndarray import NDArray
from ..ops.custom import report_failures
from ..ops.registry import Op
from ..parallel import (DataParallel, check_same_everywhere, param_shardings as _param_shardings, peer_failures,
                        to_device, to_host, use_mesh)
from ..passes import optimize
from . import initializer as _init
from . import metric as _metric
from . import optimizer as _opt
from .data import DataDesc, as_descs


def make_optimizer(optimizer: Any, params: Mapping[str, Any] | None, symbol: Any, names: Sequence[str],
                   batch_size: int) -> _opt.Optimizer:
    """The optimizer a training step uses, made as MXNet's Module makes it.

    A name is created with ``params`` (``rescale_grad`` 1 / ``batch_size`` unless given, ``lr_mult``
    / ``wd_mult`` from ``symbol``'s attributes); an :class:`Optimizer` instance is taken as it is,
    learning its parameter names (and the symbol's multipliers) if it has none yet.

        >>> import xgraph as mx
        >>> make_optimizer('sgd', {'learning_rate': 0.1}, mx.sym.var('w'), ['w'], 4).rescale_grad
        0.25
    """
    idx2name = dict(enumerate(names))
    if isinstance(optimizer, _opt.Optimizer):
        if params:
            raise ConfigError("optimizer_params must be empty when optimizer is an Optimizer instance")
        opt = optimizer
        if not opt.idx2name:
            opt.idx2name = idx2name
            if not opt.sym_info:
                opt.sym_info = (symbol.attr_dict(), symbol.list_arguments())
            opt.set_lr_mult(dict(opt.lr_mult))
            opt.set_wd_mult(dict(opt.wd_mult))
        return opt
    kwargs = dict(params or {})
    kwargs.setdefault("rescale_grad", 1.0 / batch_size)
    return _opt.create(optimizer, sym=symbol, param_idx2name=idx2name, **kwargs)


__all__ = ["Trainer", "STATES_FORMAT", "make_optimizer"]

#: the tag of the optimizer-state files this module writes
STATES_FORMAT = "xgraph-trainer-states"
_MASK_INPUT = "__xgraph_row_mask__"
_MASK_OP = "_xgraph_row_grad_mask"


# -- gradient masking of padded rows ----------------------------------------------------
def _row_mask_lower(ctx: Any, params: Mapping[str, Any], data: jax.Array, mask: jax.Array) -> jax.Array:
    """Identity forward; backward multiplies the incoming gradient by ``mask`` along axis 0."""
    @jax.custom_vjp
    def f(x, m):
        return x

    def fwd(x, m):
        return x, m

    def bwd(m, g):
        shape = (m.shape[0],) + (1,) * (g.ndim - 1)
        return g * m.reshape(shape).astype(g.dtype), jnp.zeros_like(m)
    f.defvjp(fwd, bwd)
    return f(data, mask)


#: not registered: it exists only inside the trainer's private copy of the graph
_MASK = Op(_MASK_OP, _row_mask_lower, inputs=("data", "mask"),
           doc="Internal to the fused training step: identity whose gradient is masked by rows.")

#: loss heads whose lowering ignores the head gradient: the mask goes on their data input
_LOSS_HEADS = ("SoftmaxOutput", "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput",
               "SVMOutput", "MakeLoss", "CTCLoss", "IdentityAttachKLSparseReg")


def _masked_graph(graph: Graph, batch_axis0: Sequence[bool]) -> Graph:
    """``graph`` with a row-gradient mask before every loss head's data input (or on the output).

    Only outputs whose first dimension is the batch (``batch_axis0``) are masked.
    """
    mask_var = Node(None, _MASK_INPUT)
    mask_op = _MASK
    outputs = []
    for e, batched in zip(graph.outputs, batch_axis0):
        if not batched:
            outputs.append(e)
            continue
        node = e.node
        if node.op is not None and node.op.name in _LOSS_HEADS and node.inputs:
            data = node.inputs[0]
            masked = Node(mask_op, f"{node.name}_rowmask", inputs=(data, Entry(mask_var, 0)))
            new = node.replace(inputs=(Entry(masked, 0),) + tuple(node.inputs[1:]))
            outputs.append(Entry(new, e.index))
        else:
            masked = Node(mask_op, f"{node.name}_rowmask{e.index}", inputs=(e, Entry(mask_var, 0)))
            outputs.append(Entry(masked, 0))
    return Graph(outputs)


def _owned(value: Any, dtype: Any, put: Any) -> jax.Array:
    """A fresh device buffer holding ``value`` (placed by ``put``): the step donates its state, so it
    must never be an array the caller still holds (their array would be deleted under them)."""
    return put(jnp.array(value, dtype=dtype, copy=True))


# -- metric helpers ---------------------------------------------------------------------
def _summable(metric: _metric.EvalMetric) -> bool:
    """True when ``accumulate`` just adds (sum, count): stats may be summed on the device first."""
    if isinstance(metric, _metric.CompositeEvalMetric):
        return all(_summable(m) for m in metric.metrics)
    return metric.has_batch_stats and type(metric).accumulate is _metric.EvalMetric.accumulate


def _metric_key(metric: Any) -> Any:
    """What decides a metric's compiled statistics: its class and configuration."""
    if metric is None:
        return None
    try:
        return type(metric), json.dumps(metric.get_config(), sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - a custom metric has no configuration: key on the object
        return type(metric), id(metric)


def _pairs(metric: _metric.EvalMetric, label_names: Sequence[str], output_names: Sequence[str]
           ) -> list[tuple[int, int]]:
    """(label index, output index) pairs, as ``update_dict`` would pair them."""
    lab = list(range(len(label_names)))
    out = list(range(len(output_names)))
    if metric.label_names is not None:
        lab = [label_names.index(n) for n in metric.label_names if n in label_names]
    if metric.output_names is not None:
        out = [output_names.index(n) for n in metric.output_names if n in output_names]
    if isinstance(metric, _metric.Loss):
        return [(-1, o) for o in out]
    if len(lab) != len(out):
        raise ShapeError(f"metric {metric.name!r}: {len(lab)} labels {[label_names[i] for i in lab]} for "
                         f"{len(out)} outputs {[output_names[i] for i in out]}; give the metric "
                         "label_names/output_names to pair them")
    return list(zip(lab, out))


class Trainer:
    """A model's training state and its fused, donated, one-call training step.

    ``symbol``: the loss graph.  ``optimizer``: a name or an
    :class:`~xgraph.optimizer.Optimizer` (created with ``sym=symbol`` and
    ``param_idx2name`` so ``__lr_mult__``/``__wd_mult__`` attributes and
    MXNet's no-decay-on-bias rule apply; ``rescale_grad`` defaults to
    ``1 / batch_size`` as in MXNet's Module).  ``data_shapes``/``label_shapes``:
    ``[(name, shape)]`` or DataDescs.  Parameters come from ``arg_params``/
    ``aux_params``, else from ``initializer`` (default ``Uniform(0.01)``).
    ``fixed_param_names`` are not trained.  ``mask_padding`` turns the
    row-gradient mask of padded rows on (default) or off (MXNet's behaviour:
    padded rows train like the others).  ``opt_level`` (default 1, as
    executors), ``passes`` and ``pass_options`` choose the training-safe pass
    pipeline the step's graph goes through (``amp``, ``remat`` ...); its
    report and result are :attr:`report` and :attr:`step_graph`.

    ``devices`` (a count, a list of Contexts or JAX devices, ``'local'``, ``'all'``
    or a :class:`~xgraph.parallel.DataParallel`; a ``context`` list of several
    devices means the same) trains data-parallel: each batch is split over a 1-D
    mesh (axis ``'data'``), parameters and optimizer state are replicated, and
    the step stays one XLA program in which XLA all-reduces the gradients.  The
    batch must divide by the device count (ParallelError otherwise).  Over
    several processes (``devices='all'`` after ``xgraph.distributed.initialize``)
    ``data_shapes`` give each process's share, the step trains on all shares
    at once, and the initial state is rank 0's.

    Over a mesh, parameters can be stored split rather than replicated:
    ``param_shardings={name: spec}`` (a PartitionSpec or a tuple such as
    ``('model', None)``), or the variable's own ``sharding`` attribute
    (``mx.sym.var('fc1_weight', sharding=('model', None))``); ``param_shardings``
    wins.  The parameter, its gradient inside the step and every optimizer
    state of its shape then live as ``NamedSharding(mesh, spec)`` (see
    :attr:`param_shardings`), in and out of the same donated step.  A spec
    naming an unknown mesh axis, longer than the parameter's rank or splitting
    a dimension unevenly raises ParallelError.  On one device specs are
    checked for names only.  :meth:`get_params` gathers split parameters into
    whole copies; :meth:`set_params` and :meth:`load_states` split them again.

        >>> import xgraph as mx
        >>> loss = mx.sym.MakeLoss(mx.sym.sum(mx.sym.square(mx.sym.var('w') - mx.sym.var('data'))))
        >>> tr = Trainer(loss, 'sgd', {'learning_rate': 0.25, 'rescale_grad': 1.0},
        ...              data_shapes=[('data', (1,))], arg_params={'w': np.zeros(1, np.float32)})
        >>> tr.step(mx.io.DataBatch([np.ones(1, np.float32)])); float(tr.params['w'][0])
        0.5
    """

    def __init__(self, symbol: Any, optimizer: Any = "sgd", optimizer_params: Mapping[str, Any] | None = None,
                 data_shapes: Any = None, label_shapes: Any = None, context: Any = None,
                 arg_params: Mapping[str, Any] | None = None, aux_params: Mapping[str, Any] | None = None,
                 initializer: Any = None, eval_metric: Any = None, fixed_param_names: Sequence[str] | None = None,
                 seed: int | None = None, mask_padding: bool = True, allow_missing: bool = True,
                 opt_level: int | str = 1, passes: Sequence[Any] | None = None,
                 pass_options: Mapping[str, Any] | None = None, devices: Any = None,
                 param_shardings: Mapping[str, Any] | None = None):
        self.symbol = symbol
        self.opt_level, self.passes, self.pass_options = opt_level, passes, dict(pass_options or {})
        self.report: Any = None          # the pass report of the step's graph (after the first step)
        self.step_graph: Graph | None = None
        self.graph = symbol.graph
        self._set_devices(context, devices)
        self.data_descs = as_descs(data_shapes, "data_shapes")
        self.label_descs = as_descs(label_shapes, "label_shapes")
        if not self.data_descs:
            raise BindError("Trainer needs data_shapes, e.g. [('data', (32, 784))]")
        self.data_names = [d.name for d in self.data_descs]
        self.label_names = [d.name for d in self.label_descs]
        self.input_names = self.data_names + self.label_names
        self._batch_axes = {d.name: DataDesc.get_batch_axis(getattr(d, "layout", None))
                            for d in self.data_descs + self.label_descs}
        #: the rows of one batch as the data iterator gives them (this process's share)
        self.local_batch_size = int(self.data_descs[0].shape[max(0, self._batch_axes[self.data_names[0]])])
        #: the rows the step trains on (every process's share together)
        self.batch_size = self.local_batch_size * self._nproc
        self._local_shapes = {d.name: tuple(d.shape) for d in self.data_descs + self.label_descs}
        self._check_divisible()
        self.output_names = symbol.list_outputs()
        self._infer_specs()
        fixed = set(fixed_param_names or ())
        unknown_inputs = [n for n in self.input_names if n not in self.arg_specs]
        if unknown_inputs:
            raise BindError(f"inputs {unknown_inputs} are not arguments of the symbol; its arguments are "
                            f"{list(self.arg_specs)}")
        candidates = [n for n in self.arg_specs if n not in self.input_names]
        self.param_names = [n for n in candidates
                            if n not in fixed and jnp.issubdtype(self.arg_specs[n].dtype, jnp.floating)]
        self.fixed_names = [n for n in candidates if n not in self.param_names]
        self.aux_names = list(self.aux_specs)
        self._var_shapes = {n: tuple(self.arg_specs[n].shape) for n in candidates}
        self._var_shapes.update((n, tuple(s.shape)) for n, s in self.aux_specs.items())
        #: ``{name: NamedSharding}`` of every parameter (or aux state) stored split over the mesh
        self.param_shardings = _param_shardings(self.mesh, self._var_shapes, self.symbol.attr_dict(),
                                                param_shardings, self.input_names)
        self.optimizer = self._make_optimizer(optimizer, optimizer_params)
        self.eval_metric = _metric.create(eval_metric) if eval_metric is not None else None
        self._init_values(arg_params or {}, aux_params or {}, initializer, allow_missing)
        self.num_update = 0
        self._count = self._put(jnp.int32(0))
        if seed is None:
            seed = int(np.asarray(jax.random.key_data(_rng.next_key())).ravel()[-1] % (2 ** 31 - 1))
        self.seed = int(seed)
        if self._dp is not None and self._dp.multi_process:
            shapes = lambda specs: {n: [list(s.shape), np.dtype(s.dtype).name] for n, s in specs.items()}  # noqa: E731
            check_same_everywhere("Trainer", {
                "mesh": dict(self.mesh.shape), **{f"input {n!r}": list(s) for n, s in self._local_shapes.items()},
                **{f"argument {n!r}": v for n, v in shapes(self.arg_specs).items() if n not in self.input_names},
                **{f"aux state {n!r}": v for n, v in shapes(self.aux_specs).items()},
                **{f"sharding of {n!r}": str(tuple(sh.spec)) for n, sh in self.param_shardings.items()},
                "optimizer": type(self.optimizer).__name__})
            self._from_rank0()
        self.opt_state = [self._place_tree(n, self.optimizer.init_state(self.params[n])) for n in self.param_names]
        self._seed_arr = self._put(jnp.uint32(self.seed))
        self.mask_padding = bool(mask_padding)
        self.outputs: list[jax.Array] = []
        self._step_fn = None
        self._acc_zero = None
        self._metric_in_step = False
        self._metric_key = _metric_key(self.eval_metric)
        self._steps: dict[Any, tuple] = {}
        self._apply_fn = None
        #: how many times a training step was traced and compiled (for tests and reports)
        self.trace_count = 0
        self._acc = None
        self._stats_on = self._put(jnp.float32(1.0))
        self._stats_off = self._put(jnp.float32(0.0))
        self._full_mask = self._put_rows(np.ones((self.local_batch_size,), np.float32))

    # -- devices ---------------------------------------------------------------------------
    def _set_devices(self, context: Any, devices: Any) -> None:
        """One device (``context``), or a data-parallel mesh (``devices``, or a context list of several)."""
        if devices is None and isinstance(context, (list, tuple)) and len(context) > 1:
            devices = context
        dp = None
        if devices is not None:
            dp = devices if isinstance(devices, DataParallel) else DataParallel(devices)
            if len(dp.devices) == 1 and not dp.multi_process:
                context, dp = dp.devices[0], None
        self._dp: DataParallel | None = dp
        self._nproc = dp.num_processes if dp is not None and dp.multi_process else 1
        if dp is None:
            self.context = as_context(context)
            self._device = self.context.device
        else:
            mine = [d for d in dp.devices if d.process_index == jax.process_index()]
            if not mine:
                raise ParallelError(f"the mesh's {dp.num_devices} devices include none of process "
                                    f"{jax.process_index()}'s")
            self.context = Context.from_device(mine[0])
            self._device = dp.replicated

    @property
    def devices(self) -> list[Any]:
        """The devices the step runs on (one, unless data-parallel)."""
        return list(self._dp.devices) if self._dp is not None else [self.context.device]

    @property
    def mesh(self) -> Any:
        """The data-parallel ``jax.sharding.Mesh``, or None on one device."""
        return self._dp.mesh if self._dp is not None else None

    def _put(self, x: Any, sharding: Any = None) -> jax.Array:
        """``x`` on the trainer's device, or over its mesh with ``sharding`` (replicated when None)."""
        if self._dp is not None:
            return self._dp.put(x, sharding)
        return jax.device_put(x, self._device)

    def _sharding_for(self, name: str, shape: Sequence[int]) -> Any:
        """How a value of ``shape`` belonging to parameter ``name`` is stored over the mesh: split like
        the parameter when it has the parameter's shape (the parameter, its gradient, a momentum),
        else replicated (a scalar state)."""
        sh = self.param_shardings.get(name)
        if sh is not None and tuple(shape) == self._var_shapes[name]:
            return sh
        return self._dp.replicated if self._dp is not None else None

    def _put_var(self, name: str, x: Any) -> jax.Array:
        """A whole value of parameter (or aux state) ``name`` placed as the trainer stores it."""
        return self._put(x, self._sharding_for(name, np.shape(x)))

    def _place(self, x: Any, sharding: Any) -> Any:
        """``x`` moved to ``sharding`` over the mesh unless it is there already (unchanged on one device)."""
        if self._dp is None or getattr(x, "sharding", None) == sharding:
            return x
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.device_put(x, sharding)          # a global array: reshard it
        return self._dp.put(x, sharding)

    def _place_tree(self, name: str, tree: Any) -> Any:
        """An optimizer state of parameter ``name`` placed leaf by leaf (see :meth:`_sharding_for`)."""
        return jax.tree_util.tree_map(lambda a: self._place(a, self._sharding_for(name, np.shape(a))), tree)

    def _constrained(self, names: Sequence[str], values: Sequence[Any]) -> tuple:
        """Inside a traced step over a mesh: each value (a pytree) of ``names``' parameters constrained to
        how the trainer stores it, so the step's outputs keep the stored shardings and donation reuses them."""
        if self._dp is None:
            return tuple(values)
        return tuple(jax.tree_util.tree_map(
            lambda a, n=n: jax.lax.with_sharding_constraint(a, self._sharding_for(n, a.shape)), v)
            for n, v in zip(names, values))

    def _put_rows(self, x: Any, name: str | None = None) -> jax.Array:
        """A batch input (this process's rows) on the device, or split over the mesh."""
        if self._dp is None:
            return x
        return self._dp.put_batch(x, self._batch_axes.get(name, 0) if name is not None else 0)

    def _check_divisible(self) -> None:
        if self._dp is None:
            return
        for d in self.data_descs + self.label_descs:
            ax = self._batch_axes[d.name]
            if ax >= 0:
                if ax >= len(d.shape):
                    raise ParallelError(f"input {d.name!r}: layout {d.layout!r} puts the batch on axis {ax}, "
                                        f"its shape {tuple(d.shape)} has {len(d.shape)} axes")
                self._dp.check_divisible(d.name, d.shape[ax] * self._nproc)
                if self._nproc > 1:
                    self._dp.check_divisible(d.name, d.shape[ax], per_process=True)

    def _from_rank0(self) -> None:
        """Several processes: every process starts from process 0's parameters and seed (the values
        are still host arrays here, see :meth:`_init_values`); they are then placed on the mesh."""
        from jax.experimental import multihost_utils
        tree = ({n: np.asarray(v) for n, v in self.params.items()}, {n: np.asarray(v) for n, v in self.fixed.items()},
                {n: np.asarray(v) for n, v in self.aux.items()}, np.uint32(self.seed))
        params, fixed, aux, seed = multihost_utils.broadcast_one_to_all(tree)
        self.params = {n: self._put_var(n, np.asarray(v)) for n, v in params.items()}
        self.fixed = {n: self._put_var(n, np.asarray(v)) for n, v in fixed.items()}
        self.aux = {n: self._put_var(n, np.asarray(v)) for n, v in aux.items()}
        self.seed = int(seed)

    def place_state(self) -> None:
        """Move parameters, optimizer and aux states onto the trainer's devices (replicated over a mesh,
        or split as :attr:`param_shardings` says), after they were set from arrays that live elsewhere
        (an executor's device)."""
        if self._dp is None:
            return
        self.params = {n: self._place_tree(n, v) for n, v in self.params.items()}
        self.fixed = {n: self._place_tree(n, v) for n, v in self.fixed.items()}
        self.aux = {n: self._place_tree(n, v) for n, v in self.aux.items()}
        self.opt_state = [self._place_tree(n, st) for n, st in zip(self.param_names, self.opt_state)]

    # -- set-up ------------------------------------------------------------------------
    def _infer_specs(self) -> None:
        shapes = {}
        for d in self.data_descs + self.label_descs:    # several processes: the global batch
            shape, ax = list(d.shape), self._batch_axes[d.name]
            if ax >= 0 and ax < len(shape):
                shape[ax] *= self._nproc
            shapes[d.name] = tuple(shape)
        dtypes = {d.name: d.dtype for d in self.data_descs if d.dtype is not None}
        gf = GraphFunction(self.graph, is_train=True)
        arg_specs, aux_specs = abstract_inputs(self.graph, shapes, dtypes)
        self.arg_specs = dict(zip(gf.arg_names, arg_specs))
        self.aux_specs = dict(zip(gf.aux_names, aux_specs))
        self._needs_rng = gf.needs_rng

    def _make_optimizer(self, optimizer: Any, params: Mapping[str, Any] | None) -> _opt.Optimizer:
        return make_optimizer(optimizer, params, self.symbol, self.param_names, self.batch_size)

    def _init_values(self, arg_params: Mapping[str, Any], aux_params: Mapping[str, Any], initializer: Any,
                     allow_missing: bool) -> None:
        attrs = self.symbol.attr_dict()
        init = _init.create(initializer) if isinstance(initializer, str) else (initializer or _init.Uniform(0.01))
        # several processes: host values until every process takes rank 0's (_from_rank0)
        multi = self._dp is not None and self._dp.multi_process
        put = (lambda name, x: np.asarray(x)) if multi else self._put_var

        def value(name: str, spec: jax.ShapeDtypeStruct, given: Mapping[str, Any], what: str) -> jax.Array:
            if name in given:
                v = given[name]
                v = v.data if isinstance(v, NDArray) else jnp.asarray(v)
                if tuple(v.shape) != tuple(spec.shape):
                    raise ShapeError(f"{what} {name!r}: given shape {tuple(v.shape)}, the symbol needs "
                                     f"{tuple(spec.shape)}")
                return _owned(v, spec.dtype, lambda x: put(name, x))
            if not allow_missing and given:
                raise BindError(f"{what} {name!r} is missing from the given parameters (allow_missing=False)")
            desc = _init.InitDesc(name, attrs.get(name, {}))
            return put(name, init.init_array(desc, spec.shape, spec.dtype))

        self.params = {n: value(n, self.arg_specs[n], arg_params, "argument") for n in self.param_names}
        self.fixed = {n: value(n, self.arg_specs[n], arg_params, "argument") for n in self.fixed_names}
        self.aux = {n: value(n, self.aux_specs[n], aux_params, "aux state") for n in self.aux_names}

    # -- the compiled programs -----------------------------------------------------------------
    def _batched_outputs(self) -> list[bool]:
        outs = jax.eval_shape(lambda a, x: GraphFunction(self.graph, False)(a, x, jax.random.key(0))[0],
                              [self.arg_specs[n] for n in GraphFunction(self.graph, False).arg_names],
                              [self.aux_specs[n] for n in self.aux_names])
        self._out_specs = outs
        return [len(o.shape) > 0 and o.shape[0] == self.batch_size for o in outs]

    def _optimized(self, graph: Graph, arg_names: Sequence[str]) -> Any:
        """``graph`` through the training-safe pass pipeline, as a function of its own ``arg_names``."""
        shapes = {n: tuple(s.shape) for n, s in {**self.arg_specs, **self.aux_specs}.items()}
        dtypes = {n: s.dtype for n, s in {**self.arg_specs, **self.aux_specs}.items()}
        shapes[_MASK_INPUT], dtypes[_MASK_INPUT] = (self.batch_size,), np.float32
        opt = optimize(graph, self.opt_level, for_training=True, shapes=shapes, dtypes=dtypes,
                       passes=self.passes, options=self.pass_options)
        if opt.new_params:
            raise ConfigError(f"passes {sorted(self.passes or [])} derive new parameters (inference rewrites); "
                              "a training step cannot use them")
        self.report, self.step_graph = opt.report, opt.graph
        return RenamedFunction(opt.graph, True, arg_names, self.aux_names)

    def _build_step(self) -> Any:
        batched = self._batched_outputs()
        graph = _masked_graph(self.graph, batched) if self.mask_padding and any(batched) else self.graph
        arg_names = unique_names(graph.argument_nodes())    # the order the step feeds the arguments in
        gf = self._optimized(graph, arg_names)
        opt, metric = self.optimizer, self.eval_metric
        pnames, fnames, inames = self.param_names, self.fixed_names, self.input_names
        specs = self.arg_specs
        pairs = _pairs(metric, self.label_names, self.output_names) if metric is not None else []
        in_step = metric is not None and _summable(metric)
        self._metric_in_step = in_step
        nlab = len(self.data_names)

        def stats_of(outs, inputs):
            res = []
            for li, oi in pairs:
                label = inputs[nlab + li] if li >= 0 else None
                res.append(metric.batch_stats(label, outs[oi]))
            return tuple(res)

        def step(params, states, aux, count, acc, fixed, inputs, seed, stats_on, row_mask):
            self.trace_count += 1           # runs only when jax traces (and so compiles) the step
            inputs = tuple(x.astype(specs[n].dtype) for n, x in zip(inames, inputs))
            named = {**dict(zip(fnames, fixed)), **dict(zip(inames, inputs)), _MASK_INPUT: row_mask}
            key = jax.random.fold_in(jax.random.key(seed), count) if self._needs_rng else None

            def f(p):
                table = {**named, **dict(zip(pnames, p))}
                return gf(tuple(table[n] for n in arg_names), aux, key)
            outs, pullback, new_aux = jax.vjp(f, tuple(params), has_aux=True)
            (grads,) = pullback(_cotangents(outs, None))
            grads = self._constrained(pnames, grads)     # split like their parameters (a reduce-scatter)
            n = count + 1
            nu = n + opt.begin_num_update
            new_p, new_s = [], []
            for name, w, g, s in zip(pnames, params, grads, states):
                w2, s2 = opt.step_param(name, nu, nu, w, g, s)
                new_p.append(w2)
                new_s.append(s2)
            if in_step:
                st = stats_of(outs, inputs)
                acc = jax.tree_util.tree_map(lambda a, s: a + (s * stats_on.astype(s.dtype)).astype(a.dtype), acc, st)
            if replicated is not None:      # over a mesh: the state keeps its shardings (donation reuses it)
                new_p, new_s = self._constrained(pnames, new_p), self._constrained(pnames, new_s)
                new_aux = self._constrained(self.aux_names, new_aux)
                n, acc = jax.lax.with_sharding_constraint((n, acc), replicated)
            state = (tuple(new_p), tuple(new_s), tuple(new_aux), n, acc)
            return state + (outs,)

        replicated = self._dp.replicated if self._dp is not None else None
        mesh = self._dp.mesh if self._dp is not None else None

        def traced(*args):
            with use_mesh(mesh):            # with_sharding nodes shard over the trainer's mesh
                return step(*args)

        if in_step:
            label_specs = [jax.ShapeDtypeStruct(self.arg_specs[n].shape, self.arg_specs[n].dtype)
                           for n in self.input_names]
            st = jax.eval_shape(stats_of, self._out_specs, label_specs)
            self._acc_zero = lambda: jax.tree_util.tree_map(
                lambda s: self._put(jnp.zeros(s.shape, s.dtype)), st)
        else:
            self._acc_zero = lambda: ()
        return report_failures(jax.jit(traced, donate_argnums=(0, 1, 2, 3, 4)))  # custom ops' errors as theirs

    # -- running -------------------------------------------------------------------------
    def _inputs(self, batch: Any) -> tuple[tuple, int]:
        """The batch's input arrays (padded to the batch size) and its pad count."""
        data = list(batch.data) if batch.data is not None else []
        label = list(batch.label) if batch.label is not None else []
        if len(data) != len(self.data_names) or (self.label_names and len(label) != len(self.label_names)):
            raise BindError(f"batch has {len(data)} data and {len(label)} label arrays; the trainer expects "
                            f"data {self.data_names} and labels {self.label_names}")
        arrays = []
        pad = int(batch.pad or 0)
        n_rows = None
        for name, x in zip(self.input_names, data + label[:len(self.label_names)]):
            x = x.data if isinstance(x, NDArray) else x
            want = self._local_shapes[name]
            if tuple(x.shape) != tuple(want):
                if tuple(x.shape[1:]) == tuple(want[1:]) and x.shape[0] < want[0]:
                    short = want[0] - x.shape[0]
                    x = jnp.concatenate([jnp.asarray(x), jnp.zeros((short,) + tuple(x.shape[1:]), x.dtype)])
                    n_rows = short if n_rows is None else n_rows
                else:
                    raise ShapeError(f"input {name!r} has shape {tuple(x.shape)}, the trainer was bound for "
                                     f"{tuple(want)} (make a new Trainer for new shapes)")
            arrays.append(x)
        if n_rows is not None:
            pad = max(pad, n_rows)
        return tuple(arrays), pad

    def set_metric(self, metric: Any) -> None:
        """Use ``metric`` (anything :func:`~xgraph.metric.create` takes, or None) from the next step on.

        A metric of the same configuration reuses the compiled step; another one compiles a new step once.
        """
        metric = _metric.create(metric) if metric is not None else None
        key = _metric_key(metric)
        if key != self._metric_key:
            self._steps[self._metric_key] = (self._step_fn, self._acc_zero, self._metric_in_step)
            self._step_fn, self._acc_zero, self._metric_in_step = self._steps.get(key, (None, None, False))
            self._metric_key = key
        self.eval_metric = metric
        self._acc = None

    def _step_args(self, batch: Any) -> tuple[tuple, tuple, int]:
        """The step's arguments for ``batch`` (compiling the step first), its inputs and pad count."""
        if self._step_fn is None:
            self._step_fn = self._build_step()
        if self._acc is None:
            self._acc = self._acc_zero()
        inputs, pad = self._inputs(batch)
        if pad:
            if self._nproc > 1:
                raise ParallelError(f"a batch with {pad} padded rows in a {self._nproc}-process run: every "
                                    "process must give full batches (last_batch_handle='discard' or 'roll_over')")
            mask = np.ones(self.batch_size, np.float32)
            mask[self.batch_size - pad:] = 0
            row_mask = self._put_rows(mask) if self._dp is not None else jax.device_put(mask, self._device)
            stats_on = self._stats_off
        else:
            row_mask, stats_on = self._full_mask, self._stats_on
        if self._dp is not None:
            inputs = tuple(self._put_rows(x, n) for n, x in zip(self.input_names, inputs))
        params = tuple(self.params[n] for n in self.param_names)
        aux = tuple(self.aux[n] for n in self.aux_names)
        fixed = tuple(self.fixed[n] for n in self.fixed_names)
        args = (params, tuple(self.opt_state), aux, self._count, self._acc, fixed, inputs, self._seed_arr,
                stats_on, row_mask)
        return args, inputs, pad

    def step(self, batch: Any) -> None:
        """One training step (forward, backward, update, metric) on a DataBatch, as one XLA call.

        The outputs are in :attr:`outputs` afterwards (device arrays, not yet synchronised).
        """
        with peer_failures(f"training step {self.num_update + 1}"):
            args, inputs, pad = self._step_args(batch)
            new_p, new_s, new_aux, self._count, self._acc, outs = self._step_fn(*args)
            self.params = dict(zip(self.param_names, new_p))
            self.opt_state = list(new_s)
            self.aux = dict(zip(self.aux_names, new_aux))
            self.outputs = list(outs)
            self.num_update += 1
            self.optimizer.num_update = self.begin_num_update + self.num_update
            if self.eval_metric is not None and (pad or not self._metric_in_step):
                self._host_metric(inputs, pad)

    def compiled_step_text(self, batch: Any) -> str:
        """The optimized HLO of the step that :meth:`step` runs for ``batch`` (nothing is run).

        Over several devices it shows the one SPMD program: the batch split, the
        gradient all-reduce that XLA inserted.
        """
        args, _, _ = self._step_args(batch)
        return self._step_fn.lower(*args).compile().as_text()

    @property
    def begin_num_update(self) -> int:
        return self.optimizer.begin_num_update

    def _host_metric(self, inputs: tuple, pad: int) -> None:
        """Update the metric on the host from the valid rows (all rows when an output is not batch-major)."""
        batch_major = all(o.ndim and o.shape[0] == self.batch_size for o in self.outputs)
        keep = self.batch_size - pad if batch_major else self.batch_size
        outputs, labels_in = self.outputs, inputs[len(self.data_names):]
        if self._nproc > 1:     # this process's rows of the global arrays
            outputs = [self._dp.local_part(o) if batch_major else np.asarray(o) for o in outputs]
            labels_in = [self._dp.local_part(x) for x in labels_in]
            keep = self.local_batch_size if batch_major else keep
        labels = {n: NDArray(jnp.asarray(x)[:keep]) for n, x in zip(self.label_names, labels_in)}
        preds = {n: NDArray(jnp.asarray(o)[:keep]) for n, o in zip(self.output_names, outputs)}
        self.eval_metric.update_dict(labels, preds)

    def sync_metric(self) -> None:
        """Fold the statistics accumulated on the device into :attr:`eval_metric` (one small transfer)."""
        if self.eval_metric is None or not self._acc:
            return
        with peer_failures("reading the training metric"):
            acc = jax.device_get(self._acc)
        self._acc = None
        for s in acc:
            self.eval_metric.accumulate(s)

    def reset_metric(self) -> None:
        """Drop pending device statistics and reset the metric."""
        self._acc = None
        if self.eval_metric is not None:
            self.eval_metric.reset()

    def apply_gradients(self, grads: Mapping[str, Any]) -> None:
        """One optimizer update of every trained parameter from given gradients (MXNet's ``update``),
        as one donated XLA call; parameters without a gradient are left alone."""
        if self._apply_fn is None:
            opt, pnames = self.optimizer, self.param_names

            def apply(params, states, count, grads, present):
                n = count + 1
                nu = n + opt.begin_num_update
                new_p, new_s = [], []
                for name, w, g, s, p in zip(pnames, params, grads, states, present):
                    if p:
                        w, s = opt.step_param(name, nu, nu, w, g, s)
                    new_p.append(w)
                    new_s.append(s)
                return self._constrained(pnames, new_p), self._constrained(pnames, new_s), n
            self._apply_fn = jax.jit(apply, donate_argnums=(0, 1, 2), static_argnums=4)
        present = tuple(n in grads and grads[n] is not None for n in self.param_names)
        gs = tuple((grads[n].data if isinstance(grads[n], NDArray) else jnp.asarray(grads[n])) if p
                   else jnp.zeros((), jnp.float32) for n, p in zip(self.param_names, present))
        if self._dp is not None:
            gs = tuple(self._place(g, self._sharding_for(n, g.shape)) for n, g in zip(self.param_names, gs))
            self.place_state()
        new_p, new_s, self._count = self._apply_fn(tuple(self.params[n] for n in self.param_names),
                                                   tuple(self.opt_state), self._count, gs, present)
        self.params = dict(zip(self.param_names, new_p))
        self.opt_state = list(new_s)
        self.num_update += 1
        self.optimizer.num_update = self.begin_num_update + self.num_update

    # -- parameters and checkpoints ---------------------------------------------------------
    def get_params(self) -> tuple[dict[str, NDArray], dict[str, NDArray]]:
        """Copies of ``(arg_params, aux_params)`` as NDArrays (safe from later donation).

        A parameter split over the mesh (:attr:`param_shardings`) is gathered into one whole copy on
        :attr:`context`'s device (over several processes every process must call this: it is a collective).
        """
        def copy(n: str, v: jax.Array) -> NDArray:
            if n in self.param_shardings:
                return NDArray(to_device(v, self.context.device))
            return NDArray(jnp.array(v, copy=True))
        with peer_failures("get_params"):
            args = {n: copy(n, v) for n, v in {**self.params, **self.fixed}.items()}
            aux = {n: copy(n, v) for n, v in self.aux.items()}
        return args, aux

    def set_params(self, arg_params: Mapping[str, Any], aux_params: Mapping[str, Any] | None = None,
                   allow_missing: bool = True, allow_extra: bool = True) -> None:
        """Replace parameter values by name (shapes must match)."""
        for table, given, specs, what in ((None, arg_params, self.arg_specs, "argument"),
                                          (self.aux, aux_params or {}, self.aux_specs, "aux state")):
            for name, v in given.items():
                if name not in specs or name in self.input_names:
                    if not allow_extra:
                        raise BindError(f"set_params: {name!r} is not a {what} of the symbol")
                    continue
                v = v.data if isinstance(v, NDArray) else jnp.asarray(v)
                if tuple(v.shape) != tuple(specs[name].shape):
                    raise ShapeError(f"set_params: {what} {name!r} has shape {tuple(v.shape)}, expected "
                                     f"{tuple(specs[name].shape)}")
                v = _owned(v, specs[name].dtype, lambda x, name=name: self._put_var(name, x))
                target = table if table is not None else (self.params if name in self.params else self.fixed)
                target[name] = v
        if not allow_missing:
            missing = [n for n in self.param_names + self.fixed_names if n not in arg_params]
            if missing:
                raise BindError(f"set_params: missing {missing} (allow_missing=False)")

    def save_states(self, fname: str | os.PathLike) -> None:
        """Write optimizer state, update counter and RNG state to ``fname`` atomically (npz + JSON, no pickle)."""
        arrays: dict[str, np.ndarray] = {}

        def enc(tree: Any) -> Any:
            if tree is None:
                return None
            if isinstance(tree, (tuple, list)):
                return {"seq": [enc(x) for x in tree]}
            key = f"a{len(arrays)}"
            arrays[key] = to_host(tree)
            return {"array": key}
        meta = {"format": STATES_FORMAT, "version": 1, "optimizer": type(self.optimizer).__name__,
                "params": self.param_names, "shapes": [list(self.params[n].shape) for n in self.param_names],
                "states": [enc(s) for s in self.opt_state],
                "num_update": self.num_update, "begin_num_update": self.begin_num_update,
                "rng": [self.seed, self.num_update]}
        with atomic_open(fname, "wb") as f:
            np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)

    def load_states(self, fname: str | os.PathLike) -> None:
        """Restore what :meth:`save_states` wrote; corrupt or mismatched files raise GraphFormatError."""
        fname = os.fspath(fname)
        what = f"optimizer states file {fname!r}"
        try:
            with open(fname, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise GraphFormatError(f"cannot read {what}: {e.strerror or e}") from None
        arrays = read_npz(raw, GraphFormatError, what)
        if "__meta__" not in arrays:
            raise GraphFormatError(f"{what} is not an xgraph states file (no __meta__ index)")
        meta = parse_json(arrays.pop("__meta__").tobytes(), GraphFormatError, f"{what}'s index")
        if not isinstance(meta, dict) or meta.get("format") != STATES_FORMAT:
            raise GraphFormatError(f"{fname!r} is not an xgraph trainer states file (format tag missing)")
        if meta.get("optimizer") != type(self.optimizer).__name__:
            raise GraphFormatError(f"{fname!r} holds {meta.get('optimizer')} state, the optimizer is "
                                   f"{type(self.optimizer).__name__}")
        if meta.get("params") != self.param_names:
            raise GraphFormatError(f"{fname!r} holds state for parameters {meta.get('params')}, the model "
                                   f"trains {self.param_names}")
        shapes = [list(self.params[n].shape) for n in self.param_names]
        if meta.get("shapes") != shapes:
            raise GraphFormatError(f"{fname!r} holds state for parameter shapes {meta.get('shapes')}, the model's "
                                   f"are {shapes}")

        def dec(obj: Any, like: Any, where: str) -> Any:
            if obj is None or like is None:
                if obj is not None or like is not None:
                    raise GraphFormatError(f"{fname!r}: state of {where} has the wrong structure")
                return None
            if "seq" in obj:
                if not isinstance(like, (tuple, list)) or len(like) != len(obj["seq"]):
                    raise GraphFormatError(f"{fname!r}: state of {where} has the wrong structure")
                return tuple(dec(o, l, where) for o, l in zip(obj["seq"], like))
            arr = arrays.get(obj.get("array"))
            if arr is None or arr.shape != tuple(like.shape):
                raise GraphFormatError(f"{fname!r}: state of {where} has shape "
                                       f"{None if arr is None else arr.shape}, expected {tuple(like.shape)}")
            return self._put_var(where, jnp.asarray(arr, like.dtype))
        try:
            if len(meta["states"]) != len(self.param_names):
                raise GraphFormatError(f"{fname!r} holds {len(meta['states'])} optimizer states for "
                                       f"{len(self.param_names)} parameters")
            states = [dec(o, l, n) for o, l, n in zip(meta["states"], self.opt_state, self.param_names)]
            num_update, seed = int(meta["num_update"]), int(meta["rng"][0])
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise GraphFormatError(f"{fname!r}: malformed states index: {e}") from None
        self.opt_state = states
        self.num_update = num_update
        self.optimizer.num_update = self.begin_num_update + num_update
        self._count = self._put(jnp.int32(num_update))
        self.seed = seed
        self._seed_arr = self._put(jnp.uint32(seed))
