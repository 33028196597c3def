"""MXNet's Module API (``mx.mod.Module``) over the Executor and the fused :class:`~xgraph.train.trainer.Trainer`.

``fit`` trains with the fused step: forward, backward, every optimizer update
and the metric are ONE compiled, buffer-donating call per batch, with a tqdm
progress bar showing throughput and the running metric.  A module whose
``group2ctxs`` place layers on several devices trains through its placed
executor instead (forward+backward, then one update call per device).  ``forward`` /
``backward`` / ``update`` / ``update_metric`` called separately (MXNet style)
go through the :class:`~xgraph.executor.Executor`; ``update`` applies the same
optimizer (and state) as the fused step, in one donated call.

Parameters live in one place at a time: the executor's arrays or the
trainer's.  Each side takes them over (without copies) when it is used, so
mixing the two styles is safe.  Metrics never count padded rows (``DataBatch.pad``),
in ``fit``, ``score`` and ``update_metric``; see :mod:`xgraph.train.trainer`
for the gradient policy on padded rows.

    >>> import numpy as np, xgraph as mx
    >>> x, y = np.random.RandomState(0).rand(20, 4).astype(np.float32), np.arange(20) % 2
    >>> net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc'),
    ...                            name='softmax')
    >>> mod = mx.mod.Module(net)
    >>> mod.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=2, progress_bar=False,
    ...         optimizer_params={'learning_rate': 0.1})
    >>> mod.predict(mx.io.NDArrayIter(x, y, batch_size=8)).shape
    (20, 2)
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import ndarray as nd
from ..context import as_context, cpu
from ..errors import BindError, ConfigError, GraphFormatError, ParallelError, UnsupportedFeatureError
from ..executor import Executor
from ..model import load_checkpoint, save_checkpoint
from ..ndarray import NDArray
from ..parallel import check_group2ctx, to_device
from ..placement import refuse_fused_training
from . import initializer as _init
from . import metric as _metric
from . import kvstore as _kv
from . import optimizer as _opt
from .callback import BatchEndParam
from .data import DataBatch, DataDesc, as_descs
from .trainer import Trainer, make_optimizer

__all__ = ["BaseModule", "Module"]


def _as_list(obj: Any) -> list:
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _data(x: Any) -> Any:
    return x.data if isinstance(x, NDArray) else x


class _SyncedMetric:
    """A view of the fit loop's metric that folds in the device statistics before any read."""

    def __init__(self, metric: _metric.EvalMetric, trainer: Trainer):
        self._metric, self._trainer = metric, trainer

    def __getattr__(self, name: str) -> Any:
        self._trainer.sync_metric()
        return getattr(self._metric, name)


class _PlacedUpdater:
    """The optimizer of a module whose executor is placed on several devices (``group2ctxs``): what the
    fused :class:`Trainer` step applies (``optimizer.step_param`` at the same update count), run as one
    jitted call per device over that device's parameters, so weights and states never leave their
    device.  The optimizer is made as the Trainer makes it (``rescale_grad`` 1 / batch, ``lr_mult`` /
    ``wd_mult`` from the symbol)."""

    def __init__(self, symbol: Any, optimizer: Any, params: Mapping[str, Any] | None, names: Sequence[str],
                 batch_size: int, exe: Executor):
        opt = make_optimizer(optimizer, params, symbol, names, batch_size)
        self.optimizer, self.names, self.count = opt, list(names), 0
        self.by_device: dict[Any, list[str]] = {}
        self.state: dict[str, Any] = {}
        for n in self.names:
            w = exe.arg_dict[n].data
            dev = next(iter(w.devices()))
            self.by_device.setdefault(dev, []).append(n)
            self.state[n] = jax.device_put(opt.init_state(w), dev)
        self._fns: dict[tuple, Any] = {}

    def apply(self, exe: Executor) -> None:
        """One update of every parameter from the executor's gradients (parameters without one are left)."""
        opt = self.optimizer
        nu = np.int32(self.count + 1 + opt.begin_num_update)
        for dev, names in self.by_device.items():
            names = [n for n in names if exe.grad_dict.get(n) is not None]
            if not names:
                continue
            key = tuple(names)
            if key not in self._fns:
                def update(ws, gs, ss, nu, _names=key):
                    out = [opt.step_param(n, nu, nu, w, g, st) for n, w, g, st in zip(_names, ws, gs, ss)]
                    return tuple(w for w, _ in out), tuple(st for _, st in out)
                self._fns[key] = jax.jit(update)
            ws, ss = self._fns[key](tuple(exe.arg_dict[n].data for n in names),
                                    tuple(exe.grad_dict[n].data for n in names),
                                    tuple(self.state[n] for n in names), nu)
            for n, w, st in zip(names, ws, ss):
                exe.arg_dict[n]._set(w)
                self.state[n] = st
        self.count += 1
        opt.num_update = opt.begin_num_update + self.count


class BaseModule:
    """What every module offers on top of bind/forward/backward/update: fit, score, predict, iter_predict."""

    def __init__(self, logger: Any = logging):
        self.logger = logger
        self.binded = False
        self.for_training = False
        self.inputs_need_grad = False
        self.params_initialized = False
        self.optimizer_initialized = False

    # -- evaluation -----------------------------------------------------------------------
    def score(self, eval_data: Any, eval_metric: Any, num_batch: int | None = None,
              batch_end_callback: Any = None, score_end_callback: Any = None, reset: bool = True,
              epoch: int = 0, sparse_row_id_fn: Any = None) -> list[tuple[str, float]]:
        """Run ``eval_data`` through the model and return ``eval_metric.get_name_value()``."""
        if not (self.binded and self.params_initialized):
            raise BindError("score: call bind and init_params first")
        if reset:
            eval_data.reset()
        if not isinstance(eval_metric, _metric.EvalMetric):
            eval_metric = _metric.create(eval_metric)
        eval_metric.reset()
        actual = 0
        for nbatch, batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.forward(batch, is_train=False)
            self.update_metric(eval_metric, batch.label, pad=batch.pad)
            if batch_end_callback is not None:
                for cb in _as_list(batch_end_callback):
                    cb(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric, locals=locals()))
            actual += 1
        if score_end_callback:
            for cb in _as_list(score_end_callback):
                cb(BatchEndParam(epoch=epoch, nbatch=actual, eval_metric=eval_metric, locals=locals()))
        return eval_metric.get_name_value()

    def iter_predict(self, eval_data: Any, num_batch: int | None = None, reset: bool = True,
                     sparse_row_id_fn: Any = None) -> Iterator[tuple[list[NDArray], int, Any]]:
        """Yield ``(outputs, nbatch, batch)`` per batch, outputs without the padded rows."""
        if not (self.binded and self.params_initialized):
            raise BindError("iter_predict: call bind and init_params first")
        if reset:
            eval_data.reset()
        for nbatch, batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.forward(batch, is_train=False)
            pad = int(batch.pad or 0)
            yield [NDArray(o.data[0:o.shape[0] - pad]) for o in self.get_outputs()], nbatch, batch

    def predict(self, eval_data: Any, num_batch: int | None = None, merge_batches: bool = True,
                reset: bool = True, always_output_list: bool = False, sparse_row_id_fn: Any = None) -> Any:
        """The outputs over ``eval_data`` (an iterator, or one array): concatenated over batches
        when ``merge_batches``, padded rows dropped; one output is returned bare unless ``always_output_list``."""
        if isinstance(eval_data, (NDArray, np.ndarray, jax.Array)):
            self.forward(DataBatch([NDArray(eval_data)]), is_train=False)
            return self.get_outputs()[0]
        outputs = [outs for outs, _, _ in self.iter_predict(eval_data, num_batch, reset)]
        if not outputs:
            return outputs
        if not merge_batches:
            return outputs
        n = len(outputs[0])
        if any(len(o) != n for o in outputs):
            raise BindError("Cannot merge batches, as num of outputs is not the same in mini-batches. "
                            "Maybe bucketing is used?")
        merged = [NDArray(jnp.concatenate([o[i].data for o in outputs])) for i in range(n)]
        if n == 1 and not always_output_list:
            return merged[0]
        return merged

    # -- training -------------------------------------------------------------------------
    def fit(self, train_data: Any, eval_data: Any = None, eval_metric: Any = "acc",
            epoch_end_callback: Any = None, batch_end_callback: Any = None, kvstore: Any = "local",
            optimizer: Any = "sgd", optimizer_params: Any = (("learning_rate", 0.01),),
            eval_end_callback: Any = None, eval_batch_end_callback: Any = None, initializer: Any = None,
            arg_params: Mapping[str, Any] | None = None, aux_params: Mapping[str, Any] | None = None,
            allow_missing: bool = False, force_rebind: bool = False, force_init: bool = False,
            begin_epoch: int = 0, num_epoch: int | None = None, validation_metric: Any = None,
            monitor: Any = None, sparse_row_id_fn: Any = None, progress_bar: bool = True) -> None:
        """Train for epochs ``begin_epoch .. num_epoch - 1`` with the fused training step.

        MXNet's arguments and order; ``kvstore`` is a name or a KVStore (``mx.kv.create``):
        ``'local'``/``'device'``/None train on the module's contexts (several: data parallel in one
        program), ``'dist_sync'``/``'dist_device_sync'`` over every process's devices.
        ``progress_bar`` shows a tqdm bar with samples/s and the running metric.
        """
        if num_epoch is None:
            raise ConfigError("fit: please specify number of epochs (num_epoch)")
        if monitor is not None:
            raise ConfigError("fit: monitor is not supported (the step is one compiled computation)")
        self.bind(data_shapes=train_data.provide_data, label_shapes=train_data.provide_label,
                  for_training=True, force_rebind=force_rebind)
        self.init_params(initializer=initializer if initializer is not None else _init.Uniform(0.01),
                         arg_params=arg_params, aux_params=aux_params, allow_missing=allow_missing,
                         force_init=force_init)
        self.init_optimizer(kvstore=kvstore, optimizer=optimizer, optimizer_params=optimizer_params)
        if validation_metric is None:
            validation_metric = eval_metric
        if not isinstance(eval_metric, _metric.EvalMetric):
            eval_metric = _metric.create(eval_metric)
        if self._updater is not None:
            self._fit_placed(train_data, eval_data, eval_metric, validation_metric, epoch_end_callback,
                             batch_end_callback, eval_end_callback, eval_batch_end_callback, begin_epoch,
                             num_epoch)
            return
        trainer = self._take_to_trainer()
        trainer.set_metric(eval_metric)
        shown = _SyncedMetric(eval_metric, trainer)
        for epoch in range(begin_epoch, num_epoch):
            tic = time.time()
            trainer.reset_metric()
            bar = _progress(train_data, epoch, num_epoch) if progress_bar else None
            last_show, seen = 0.0, 0
            nbatch = 0
            for batch in train_data:
                trainer = self._take_to_trainer()
                trainer.step(batch)
                seen += trainer.batch_size - int(batch.pad or 0)
                if bar is not None:
                    bar.update(1)
                    now = time.time()
                    if now - last_show > 0.5:
                        last_show = now
                        bar.set_postfix(_postfix(shown, seen / max(now - tic, 1e-9)), refresh=False)
                if batch_end_callback is not None:
                    for cb in _as_list(batch_end_callback):
                        cb(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=shown, locals=locals()))
                nbatch += 1
            trainer.sync_metric()
            if bar is not None:
                bar.set_postfix(_postfix(shown, seen / max(time.time() - tic, 1e-9)), refresh=False)
                bar.close()
            self._end_epoch(epoch, tic, eval_metric, train_data, eval_data, validation_metric, epoch_end_callback,
                            eval_end_callback, eval_batch_end_callback)

    def _end_epoch(self, epoch: int, tic: float, eval_metric: Any, train_data: Any, eval_data: Any,
                   validation_metric: Any, epoch_end_callback: Any, eval_end_callback: Any,
                   eval_batch_end_callback: Any) -> None:
        """What ``fit`` does after an epoch's batches: log the metric and time, run the epoch-end
        callbacks with the current parameters, score ``eval_data``, and rewind ``train_data``."""
        for name, val in eval_metric.get_global_name_value():
            self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, val)
        self.logger.info("Epoch[%d] Time cost=%.3f", epoch, time.time() - tic)
        arg_params_now, aux_params_now = self.get_params()
        if epoch_end_callback is not None:
            for cb in _as_list(epoch_end_callback):
                cb(epoch, self.symbol, arg_params_now, aux_params_now)
        if eval_data:
            res = self.score(eval_data, validation_metric, score_end_callback=eval_end_callback,
                             batch_end_callback=eval_batch_end_callback, epoch=epoch)
            for name, val in res:
                self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, val)
        train_data.reset()

    def _fit_placed(self, train_data: Any, eval_data: Any, eval_metric: Any, validation_metric: Any,
                    epoch_end_callback: Any, batch_end_callback: Any, eval_end_callback: Any,
                    eval_batch_end_callback: Any, begin_epoch: int, num_epoch: int) -> None:
        """``fit`` of a module placed on several devices: forward+backward, update and metric per batch."""
        for epoch in range(begin_epoch, num_epoch):
            tic = time.time()
            eval_metric.reset()
            for nbatch, batch in enumerate(train_data):
                self.forward_backward(batch)
                self.update()
                self.update_metric(eval_metric, batch.label, pad=batch.pad)
                if batch_end_callback is not None:
                    for cb in _as_list(batch_end_callback):
                        cb(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric, locals=locals()))
            self._end_epoch(epoch, tic, eval_metric, train_data, eval_data, validation_metric, epoch_end_callback,
                            eval_end_callback, eval_batch_end_callback)


def _progress(train_data: Any, epoch: int, num_epoch: int) -> Any:
    from tqdm import tqdm
    total = None
    n, bs = getattr(train_data, "num_data", None), getattr(train_data, "batch_size", None)
    if n is not None and bs:
        handle = getattr(train_data, "last_batch_handle", "pad")
        total = n // bs if handle == "discard" else -(-n // bs)
    return tqdm(total=total, desc=f"epoch {epoch + 1}/{num_epoch}", unit="batch", leave=False, dynamic_ncols=True)


def _postfix(metric: Any, speed: float) -> dict:
    out = {"samples/s": f"{speed:.0f}"}
    for name, value in metric.get_name_value():
        out[name] = f"{value:.4f}"
    return out


class Module(BaseModule):
    """MXNet's ``Module``: a symbol with its data and label names, bound to its contexts.

    Several contexts (``context=[mx.cpu(0), mx.cpu(1)]``) train data-parallel: ``fit`` and
    ``update`` split each batch over a mesh of those devices in one XLA program (see
    :class:`~xgraph.train.trainer.Trainer`); ``forward``/``predict`` run on the first context.
    ``param_shardings={name: spec}`` (or a variable's ``sharding``) stores those parameters split
    over the mesh's ``data`` axis instead of replicated (see the Trainer); ``get_params`` and
    ``save_checkpoint`` gather them whole.

        >>> import xgraph as mx
        >>> net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=3, name='fc'),
        ...                            name='softmax')
        >>> mod = mx.mod.Module(net); mod.bind(data_shapes=[('data', (2, 5))], label_shapes=[('softmax_label', (2,))])
        >>> mod.init_params(); mod.output_shapes
        [('softmax_output', (2, 3))]
    """

    def __init__(self, symbol: Any, data_names: Sequence[str] = ("data",),
                 label_names: Sequence[str] | None = ("softmax_label",), logger: Any = logging, context: Any = None,
                 work_load_list: Any = None, fixed_param_names: Sequence[str] | None = None,
                 state_names: Sequence[str] | None = None, group2ctxs: Any = None, compression_params: Any = None,
                 param_shardings: Mapping[str, Any] | None = None):
        super().__init__(logger)
        contexts = list(context) if isinstance(context, (list, tuple)) else [context]
        if not contexts:
            raise ConfigError("Module: context is an empty list")
        self._contexts = [as_context(c) if c is not None else cpu() for c in contexts]
        self._context = self._contexts[0]
        if work_load_list is not None:
            loads = list(work_load_list)
            if len(loads) != len(self._contexts):
                raise ParallelError(f"Module: work_load_list has {len(loads)} entries for "
                                    f"{len(self._contexts)} contexts")
            if len(set(loads)) > 1:
                raise ParallelError(f"Module: uneven work_load_list {loads} is not supported: the batch is "
                                    "split evenly over the mesh")
        self._kvstore: _kv.KVStore | None = None
        self._param_shardings = dict(param_shardings or {})
        self._group2ctx = check_group2ctx(group2ctxs, self._contexts, where="group2ctxs")
        self._symbol = symbol
        self._data_names = list(data_names or [])
        self._label_names = list(label_names or [])
        self._fixed_param_names = list(fixed_param_names or [])
        self._state_names = list(state_names or [])
        args = symbol.list_arguments()
        for what, names in (("data", self._data_names), ("state", self._state_names)):
            missing = [n for n in names if n not in args]
            if missing:
                raise BindError(f"Module: {what} name(s) {missing} are not arguments of the symbol {args}")
        input_names = self._data_names + self._label_names + self._state_names
        self._param_names = [n for n in args if n not in input_names]
        self._aux_names = symbol.list_auxiliary_states()
        self._output_names = symbol.list_outputs()
        self._arg_params: dict[str, NDArray] | None = None
        self._aux_params: dict[str, NDArray] | None = None
        self._exec: Executor | None = None
        self._trainer: Trainer | None = None
        self._updater: _PlacedUpdater | None = None   # the optimizer of a module placed on several devices
        self._owner = "exec"
        self._optimizer: _opt.Optimizer | None = None
        self._preload_opt_states: str | None = None
        self._data_shapes: list[DataDesc] = []
        self._label_shapes: list[DataDesc] = []

    # -- loading and saving -----------------------------------------------------------------
    @staticmethod
    def load(prefix: str, epoch: int, load_optimizer_states: bool = False, **kwargs: Any) -> "Module":
        """A Module from ``prefix-symbol.json`` + ``prefix-%04d.params`` (and ``.states`` when asked)."""
        sym, args, auxs = load_checkpoint(prefix, epoch)
        mod = Module(symbol=sym, **kwargs)
        mod._arg_params, mod._aux_params = args, auxs
        mod.params_initialized = True
        if load_optimizer_states:
            fname = f"{prefix}-{epoch:04d}.states"
            if not os.path.isfile(fname):
                raise GraphFormatError(f"Module.load: optimizer states file {fname!r} does not exist")
            mod._preload_opt_states = fname
        return mod

    def save_checkpoint(self, prefix: str, epoch: int, save_optimizer_states: bool = False,
                        remove_amp_cast: bool = True) -> None:
        """Save symbol, parameters and, on request, optimizer state + step counter + RNG state; atomically."""
        arg, aux = self.get_params()
        save_checkpoint(prefix, epoch, self._symbol, arg, aux, remove_amp_cast=remove_amp_cast)
        if save_optimizer_states:
            self.save_optimizer_states(f"{prefix}-{epoch:04d}.states")

    def save_params(self, fname: str) -> None:
        """Save the parameters as a ``.params`` file (``arg:``/``aux:`` keys)."""
        arg, aux = self.get_params()
        save = {f"arg:{k}": v for k, v in arg.items()}
        save.update({f"aux:{k}": v for k, v in aux.items()})
        nd.save(fname, save)

    def load_params(self, fname: str) -> None:
        """Load parameters saved by :meth:`save_params`."""
        loaded = nd.load(fname)
        if not isinstance(loaded, dict):
            raise GraphFormatError(f"{fname!r} holds unnamed arrays; expected arg:/aux: names")
        arg, aux = {}, {}
        for k, v in loaded.items():
            kind, _, name = k.partition(":")
            if kind not in ("arg", "aux") or not name:
                raise GraphFormatError(f"{fname!r}: invalid param file key {k!r}")
            (arg if kind == "arg" else aux)[name] = v
        self.set_params(arg, aux)

    def save_optimizer_states(self, fname: str) -> None:
        """Optimizer state, update counter and RNG state to ``fname`` (npz + JSON, atomic)."""
        if not self.optimizer_initialized:
            raise BindError("save_optimizer_states: call init_optimizer first")
        if self._updater is not None:
            raise UnsupportedFeatureError(
                "Module.save_optimizer_states: this module's parameters are placed on several devices (group2ctxs), and "
                "its optimizer states, kept per device, have no file format yet; save_checkpoint saves the parameters")
        self._take_to_trainer().save_states(fname)

    def load_optimizer_states(self, fname: str) -> None:
        """Restore what :meth:`save_optimizer_states` wrote."""
        if not self.optimizer_initialized:
            raise BindError("load_optimizer_states: call init_optimizer first")
        if self._updater is not None:
            raise UnsupportedFeatureError(
                "Module.load_optimizer_states: this module's parameters are placed on several devices (group2ctxs), and "
                "its optimizer states, kept per device, have no file format yet; save_checkpoint saves the parameters")
        self._take_to_trainer().load_states(fname)

    # -- names and shapes ----------------------------------------------------------------------
    @property
    def symbol(self) -> Any:
        return self._symbol

    @property
    def data_names(self) -> list[str]:
        return self._data_names

    @property
    def label_names(self) -> list[str]:
        return self._label_names

    @property
    def output_names(self) -> list[str]:
        return self._output_names

    @property
    def data_shapes(self) -> list[DataDesc]:
        self._need_bind()
        return self._data_shapes

    @property
    def label_shapes(self) -> list[DataDesc]:
        self._need_bind()
        return self._label_shapes

    @property
    def output_shapes(self) -> list[tuple[str, tuple]]:
        self._need_bind()
        return [(n, tuple(o.shape)) for n, o in zip(self._output_names, self._exec.outputs)]

    def _need_bind(self) -> None:
        if not self.binded:
            raise BindError("the module is not bound: call bind first")

    # -- binding ----------------------------------------------------------------------------
    def bind(self, data_shapes: Any, label_shapes: Any = None, for_training: bool = True,
             inputs_need_grad: bool = False, force_rebind: bool = False, shared_module: Any = None,
             grad_req: Any = "write") -> None:
        """Allocate the executor for these input shapes (MXNet's semantics, one device)."""
        if force_rebind:
            self._reset_bind()
        if self.binded:
            self.logger.warning("Already bound, ignoring bind()")
            return
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self._data_shapes = as_descs(data_shapes, "data_shapes")
        self._label_shapes = as_descs(label_shapes, "label_shapes")
        names = [d.name for d in self._data_shapes]
        if names != self._data_names:
            raise BindError(f"bind: data_shapes name {names} but the module's data_names are {self._data_names}")
        if self._label_shapes and [d.name for d in self._label_shapes] != self._label_names:
            raise BindError(f"bind: label_shapes name {[d.name for d in self._label_shapes]} but the module's "
                            f"label_names are {self._label_names}")
        shapes = {d.name: d.shape for d in self._data_shapes + self._label_shapes}
        types = {d.name: d.dtype for d in self._data_shapes + self._label_shapes}
        reqs: dict[str, str] = {}
        arg_names = self._symbol.list_arguments()
        # MXNet's executor group: a string applies to the parameters (and the data with inputs_need_grad);
        # a dict overrides the defaults ('write' for parameters and needed inputs) name by name
        default = grad_req if isinstance(grad_req, str) else "write"
        for n in arg_names:
            if n in self._data_names:
                reqs[n] = default if inputs_need_grad else "null"
            elif n in self._label_names or n in self._state_names or n in self._fixed_param_names:
                reqs[n] = "null"
            else:
                reqs[n] = default
        if isinstance(grad_req, (list, tuple)):
            if len(grad_req) != len(arg_names):
                raise BindError(f"bind: {len(grad_req)} grad_reqs for the {len(arg_names)} arguments {arg_names}")
            reqs = dict(zip(arg_names, grad_req))
        elif not isinstance(grad_req, str):
            reqs.update((k, v) for k, v in dict(grad_req).items() if k in reqs)
        if not for_training:
            reqs = dict.fromkeys(reqs, "null")
        shared = shared_module._exec if shared_module is not None else None
        self._exec = Executor.simple_bind(self._symbol, self._context, grad_req=reqs, type_dict=types,
                                          shared_exec=shared, group2ctx=self._group2ctx or None, **shapes)
        self._owner = "exec"
        self.binded = True
        if shared_module is not None and shared_module.params_initialized:
            self.params_initialized = True
        elif self.params_initialized:
            fresh = lambda table: {k: jnp.array(_data(v), copy=True) for k, v in (table or {}).items()}  # noqa: E731
            self._exec.copy_params_from(fresh(self._arg_params), fresh(self._aux_params), allow_extra_params=True)

    def _reset_bind(self) -> None:
        if self.binded and self.params_initialized:
            self._arg_params, self._aux_params = self.get_params()
        self.binded = False
        self._exec = None
        self._trainer = None
        self._updater = None
        self.optimizer_initialized = False
        self._owner = "exec"

    def reshape(self, data_shapes: Any, label_shapes: Any = None) -> None:
        """Re-bind for new input shapes, keeping parameters (and the optimizer's state)."""
        self._need_bind()
        self._take_to_exec()
        self._data_shapes = as_descs(data_shapes, "data_shapes")
        self._label_shapes = as_descs(label_shapes, "label_shapes")
        shapes = {d.name: d.shape for d in self._data_shapes + self._label_shapes}
        self._exec = self._exec.reshape(partial_shaping=True, allow_up_sizing=True, **shapes)

    # -- parameters --------------------------------------------------------------------------
    def init_params(self, initializer: Any = None, arg_params: Mapping[str, Any] | None = None,
                    aux_params: Mapping[str, Any] | None = None, allow_missing: bool = False,
                    force_init: bool = False, allow_extra: bool = False) -> None:
        """Initialize parameters: given values first, else ``initializer`` (default ``Uniform(0.01)``)."""
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. init_params call ignored.",
                          stacklevel=2)
            return
        self._need_bind()
        self._take_to_exec()
        init = _init.create(initializer) if isinstance(initializer, str) else (initializer or _init.Uniform(0.01))
        attrs = self._symbol.attr_dict()
        for table, given, names in ((self._exec.arg_dict, arg_params, self._param_names),
                                    (self._exec.aux_dict, aux_params, self._aux_names)):
            for name in sorted(names):
                arr = table[name]
                if given is not None and name in given:
                    value = _data(given[name])
                    if tuple(value.shape) != tuple(arr.shape):
                        raise BindError(f"init_params: {name!r} has shape {tuple(value.shape)}, the bound symbol "
                                        f"needs {tuple(arr.shape)}")
                    arr[:] = jnp.array(value, copy=True)   # the fused step donates: never alias the caller's
                elif given is not None and not allow_missing:
                    raise BindError(f"init_params: {name!r} is not presented (pass allow_missing=True to "
                                    "initialize it with the initializer)")
                else:
                    init(_init.InitDesc(name, attrs.get(name)), arr)
        if not allow_extra:
            for given, names in ((arg_params, self._param_names), (aux_params, self._aux_names)):
                extra = [k for k in (given or {}) if k not in names and k not in self._data_names + self._label_names]
                if extra:
                    raise BindError(f"init_params: {extra} are not parameters of the symbol "
                                    "(pass allow_extra=True to ignore them)")
        self.params_initialized = True

    def get_params(self) -> tuple[dict[str, NDArray], dict[str, NDArray]]:
        """Copies of ``(arg_params, aux_params)``."""
        if not self.params_initialized:
            raise BindError("get_params: parameters are not initialized")
        if not self.binded:
            return dict(self._arg_params or {}), dict(self._aux_params or {})
        if self._owner == "trainer":
            return self._trainer.get_params()
        arg = {n: NDArray(jnp.array(self._exec.arg_dict[n].data, copy=True)) for n in self._param_names}
        aux = {n: NDArray(jnp.array(self._exec.aux_dict[n].data, copy=True)) for n in self._aux_names}
        return arg, aux

    def set_params(self, arg_params: Mapping[str, Any], aux_params: Mapping[str, Any] | None = None,
                   allow_missing: bool = False, force_init: bool = True, allow_extra: bool = False) -> None:
        """Assign parameter values (MXNet: ``init_params`` with the given values, force_init on)."""
        if not self.binded:
            self._arg_params, self._aux_params = dict(arg_params), dict(aux_params or {})
            self.params_initialized = True
            return
        self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init, allow_extra=allow_extra)

    # -- ownership of the parameter arrays ------------------------------------------------------
    def _take_to_exec(self) -> Executor:
        if self._owner == "trainer":
            tr = self._trainer
            dev = self._context.device if tr.mesh is not None else None

            def here(v: Any) -> Any:     # a mesh trainer's replicas or shards: one whole copy on the executor's device
                return v if dev is None else to_device(v, dev)
            for n, v in {**tr.params, **tr.fixed}.items():
                self._exec.arg_dict[n]._set(here(v))
            for n, v in tr.aux.items():
                self._exec.aux_dict[n]._set(here(v))
            self._owner = "exec"
        return self._exec

    def _take_to_trainer(self) -> Trainer:
        if self._trainer is None:
            raise BindError("call init_optimizer before training")
        if self._owner == "exec":
            tr = self._trainer
            for n in tr.params:
                tr.params[n] = self._exec.arg_dict[n].data
            for n in tr.fixed:
                tr.fixed[n] = self._exec.arg_dict[n].data
            for n in tr.aux:
                tr.aux[n] = self._exec.aux_dict[n].data
            tr.place_state()
            self._owner = "trainer"
        return self._trainer

    # -- optimizer -----------------------------------------------------------------------------
    def init_optimizer(self, kvstore: Any = "local", optimizer: Any = "sgd",
                       optimizer_params: Any = (("learning_rate", 0.01),), force_init: bool = False) -> None:
        """Create the optimizer and the fused trainer (``rescale_grad`` defaults to 1 / batch size)."""
        if not (self.binded and self.params_initialized):
            raise BindError("init_optimizer: call bind and init_params first")
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring...")
            return
        kv = _kv.resolve(kvstore)
        self._kvstore = kv
        self._updater = None
        if self._exec.segments:
            if kv is not None and kv.is_distributed and kv.num_workers > 1:
                refuse_fused_training(f"Module.init_optimizer(kvstore={kv.type!r})")
            self._take_to_exec()
            fixed = set(self._fixed_param_names)
            names = [n for n in self._param_names if n not in fixed and self._exec.grad_dict.get(n) is not None]
            self._updater = _PlacedUpdater(self._symbol, optimizer,
                                           None if isinstance(optimizer, _opt.Optimizer) else dict(optimizer_params),
                                           names, self._data_shapes[0].shape[0], self._exec)
            self._optimizer = self._updater.optimizer
            self._trainer = None
            self.optimizer_initialized = True
            return
        if kv is not None and kv.is_distributed and kv.num_workers > 1:
            devices: Any = "all"      # every process's devices in one mesh: MXNet's dist_sync
        else:
            devices = self._contexts if len(self._contexts) > 1 else None
        workers = kv.num_workers if kv is not None else 1
        self._take_to_exec()
        arg = {n: self._exec.arg_dict[n].data for n in self._param_names}
        aux = {n: self._exec.aux_dict[n].data for n in self._aux_names}
        params = dict(optimizer_params) if not isinstance(optimizer, _opt.Optimizer) else None
        if isinstance(optimizer, _opt.Optimizer):
            batch = self._data_shapes[0].shape[0] * workers
            if optimizer.rescale_grad != 1.0 / batch:
                warnings.warn(f"Optimizer created manually outside Module but rescale_grad is not normalized to "
                              f"1.0/batch_size/num_workers ({optimizer.rescale_grad} vs. {1.0 / batch}). "
                              "Is this intended?", stacklevel=2)
        fixed = self._fixed_param_names + [n for n in self._param_names if self._exec.grad_req.get(n) == "null"]
        self._trainer = Trainer(self._symbol, optimizer, params, data_shapes=self._data_shapes,
                                label_shapes=self._label_shapes, context=self._context, arg_params=arg,
                                aux_params=aux, fixed_param_names=fixed, devices=devices,
                                param_shardings=self._param_shardings)
        self._optimizer = self._trainer.optimizer
        self._owner = "trainer"
        self.optimizer_initialized = True
        if self._preload_opt_states is not None:
            self.load_optimizer_states(self._preload_opt_states)
            self._preload_opt_states = None

    # -- MXNet-style step by step ------------------------------------------------------------------
    def forward(self, data_batch: Any, is_train: bool | None = None) -> None:
        """Forward through the executor (re-binding when the batch's shapes differ from the bound ones)."""
        self._need_bind()
        ex = self._take_to_exec()
        if is_train is None:
            is_train = self.for_training
        data = list(data_batch.data)
        labels = list(data_batch.label) if data_batch.label else []
        new = {n: tuple(d.shape) for n, d in zip(self._data_names, data)}
        new.update({n: tuple(l.shape) for n, l in zip(self._label_names, labels)})
        if any(tuple(ex.arg_dict[n].shape) != s for n, s in new.items()):
            self.reshape([DataDesc(n, new[n], d.dtype) for n, d in zip(self._data_names, self._data_shapes)],
                         [DataDesc(n, new.get(n, d.shape), d.dtype) for n, d in zip(self._label_names,
                                                                                    self._label_shapes)]
                         if self._label_shapes else None)
            ex = self._exec
        feed = {n: _data(d) for n, d in zip(self._data_names, data)}
        feed.update({n: _data(l) for n, l in zip(self._label_names, labels) if n in ex.arg_dict})
        ex.forward(is_train=is_train, **feed)

    def backward(self, out_grads: Any = None) -> None:
        """Backward through the executor (after ``forward(is_train=True)``)."""
        self._need_bind()
        if not self.for_training:
            raise BindError("backward: the module was bound with for_training=False")
        self._take_to_exec().backward(out_grads)

    def forward_backward(self, data_batch: Any) -> None:
        """``forward(is_train=True)`` then ``backward()`` (one fused call in the executor)."""
        self.forward(data_batch, is_train=True)
        self.backward()

    def update(self) -> None:
        """Apply the optimizer to the gradients of the last backward (one donated call)."""
        if not self.optimizer_initialized:
            raise BindError("update: call init_optimizer first")
        ex = self._take_to_exec()
        if self._updater is not None:
            self._updater.apply(ex)
            return
        grads = {n: ex.grad_dict[n].data for n in self._trainer.param_names if ex.grad_dict.get(n) is not None}
        self._take_to_trainer().apply_gradients(grads)

    def get_outputs(self, merge_multi_context: bool = True) -> list[NDArray]:
        """The outputs of the last forward (or of the last fused training step)."""
        self._need_bind()
        if self._owner == "trainer" and self._trainer is not None and self._trainer.outputs:
            return [NDArray(o) for o in self._trainer.outputs]
        return list(self._exec.outputs)

    def get_input_grads(self, merge_multi_context: bool = True) -> list[NDArray]:
        """Gradients of the data inputs (bind with ``inputs_need_grad=True``)."""
        self._need_bind()
        if not self.inputs_need_grad:
            raise BindError("get_input_grads: bind with inputs_need_grad=True")
        return [self._exec.grad_dict[n] for n in self._data_names]

    def update_metric(self, eval_metric: Any, labels: Any, pre_sliced: bool = False, pad: int | None = None) -> None:
        """Update ``eval_metric`` with the last outputs and ``labels`` (the last ``pad`` rows left out)."""
        outs = self.get_outputs()
        pad = int(pad or 0)
        cut = (lambda a: NDArray(_data(a)[:_data(a).shape[0] - pad])) if pad else (lambda a: a)
        label_dict = {n: cut(l) for n, l in zip(self._label_names, labels or [])}
        pred_dict = {n: cut(o) for n, o in zip(self._output_names, outs)}
        eval_metric.update_dict(label_dict, pred_dict)
