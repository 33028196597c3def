"""Optimizers with MXNet 1.9.1's names, hyper-parameters and update formulas.

Every optimizer is a pure update rule on jax arrays, so a whole training step
(forward, backward, every parameter's update) can be traced into one XLA
computation::

    state = opt.init_state(weight)                                # a pytree of arrays
    weight, state = opt.pure_update(t, lr, wd, weight, grad, state)

``t`` is the parameter's update count (1 at its first update), ``lr``/``wd``
the already-scaled rates; :meth:`Optimizer.step_param` computes them inside jax
from a traced global update counter (learning-rate schedule included) and the
parameter's multipliers.  Around the pure rules sits MXNet's stateful surface:
``create_state``/``update``/``update_multi_precision`` on NDArrays,
``mx.optimizer.create('sgd', ...)``, ``register`` and ``get_updater``.

    >>> import xgraph as mx
    >>> opt = mx.optimizer.create('sgd', learning_rate=0.1, momentum=0.9)
    >>> w, g = mx.nd.ones((2,)), mx.nd.ones((2,))
    >>> state = opt.create_state(0, w)
    >>> opt.update(0, w, g, state); w.asnumpy().astype(float).round(6).tolist()
    [0.9, 0.9]

Gradient preprocessing follows each MXNet kernel exactly: SGD, NAG, Signum,
Ftrl, AdaGrad, AdaDelta, LAMB and AdamW clip ``rescale_grad * grad`` and apply
weight decay separately; Adam, Adamax, Nadam and RMSProp clip
``rescale_grad * grad + wd * weight``.  ``clip_gradient`` of None or <= 0 turns
clipping off (the kernels' rule).  Known, deliberate differences from MXNet:
Nadam keeps its momentum-schedule product per parameter (MXNet shares one
Python float across all parameters); Adamax defines ``0 / 0`` as a zero step
where a coordinate has never seen a non-zero gradient (MXNet yields NaN);
multi-precision state is always ``(weight32, inner_state)``.
"""
from __future__ import annotations

import io
import json
import math
import warnings
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from ..errors import ConfigError
from ..io.json_text import parse_json
from ..io.npy import read_npz
from ..ndarray import NDArray
from .lr_scheduler import LRScheduler

__all__ = ["Optimizer", "SGD", "NAG", "Adam", "AdamW", "Adamax", "Nadam", "RMSProp", "AdaGrad", "AdaDelta",
           "Ftrl", "Signum", "LAMB", "Updater", "create", "register", "get_updater"]

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def _num(owner: str, name: str, value: Any, lo: float | None = None, hi: float | None = None,
         hi_open: bool = False, optional: bool = False) -> float | None:
    """Validate a numeric hyper-parameter, raising ConfigError with the owner's name."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{owner}: hyper-parameter {name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{owner}: hyper-parameter {name} must be finite, got {value!r}")
    if lo is not None and v < lo:
        raise ConfigError(f"{owner}: hyper-parameter {name} must be >= {lo}, got {value!r}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise ConfigError(f"{owner}: hyper-parameter {name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")
    return v


def _pow(base: float, t: jax.Array) -> jax.Array:
    """``base ** t`` for a traced integer count, in float32."""
    return jnp.power(jnp.float32(base), t.astype(jnp.float32))


def _is_ndarray_leaf(x: Any) -> bool:
    return isinstance(x, NDArray)


class Optimizer:
    """Base class of every optimizer (MXNet's ``mx.optimizer.Optimizer``).

    Common hyper-parameters: ``learning_rate`` (default 0.01, or the subclass's),
    ``wd``, ``rescale_grad``, ``clip_gradient``, ``lr_scheduler``,
    ``multi_precision`` (float32 master weights for float16/bfloat16 parameters),
    ``begin_num_update``, ``param_idx2name``, ``sym`` (reads ``__lr_mult__`` /
    ``__wd_mult__`` of its variables) and ``param_dict``.

        >>> opt = Optimizer.create_optimizer('adam', learning_rate=0.01)
        >>> type(opt).__name__, opt.learning_rate
        ('Adam', 0.01)
    """

    opt_registry: dict[str, type] = {}
    #: names of the subclass's own hyper-parameters (they are baked into compiled updates)
    _hyper: tuple[str, ...] = ()

    def __init__(self, rescale_grad: float = 1., param_idx2name: Mapping[int, str] | None = None, wd: float = 0.,
                 clip_gradient: float | None = None, learning_rate: float | None = None,
                 lr_scheduler: LRScheduler | None = None, sym: Any = None, begin_num_update: int = 0,
                 multi_precision: bool = False, param_dict: Mapping[Any, Any] | None = None, **unknown: Any):
        owner = type(self).__name__
        if unknown:
            raise ConfigError(f"{owner}: unknown hyper-parameter(s) {sorted(unknown)}")
        self.rescale_grad = _num(owner, "rescale_grad", rescale_grad)
        self.wd = _num(owner, "wd", wd)
        self.clip_gradient = _num(owner, "clip_gradient", clip_gradient, optional=True)
        if lr_scheduler is not None and not isinstance(lr_scheduler, LRScheduler):
            raise ConfigError(f"{owner}: lr_scheduler must be an LRScheduler, got {type(lr_scheduler).__name__}")
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = _num(owner, "learning_rate", learning_rate, lo=0.0, optional=True)
        if lr_scheduler is not None and self.lr is not None and lr_scheduler.base_lr != self.lr:
            warnings.warn("learning rate from ``lr_scheduler`` has been overwritten by ``learning_rate`` in optimizer.")
            lr_scheduler.base_lr = self.lr
        if isinstance(begin_num_update, bool) or not isinstance(begin_num_update, (int, np.integer)) \
                or begin_num_update < 0:
            raise ConfigError(f"{owner}: begin_num_update must be a non-negative integer, got {begin_num_update!r}")
        self.begin_num_update = int(begin_num_update)
        self.num_update = self.begin_num_update
        self._index_update_count: dict[Any, int] = {}
        self.multi_precision = bool(multi_precision)
        if param_idx2name is None:
            param_idx2name = {}
        if not isinstance(param_idx2name, Mapping):
            raise ConfigError(f"{owner}: param_idx2name should be a dict of param indexes to names")
        self.idx2name = dict(param_idx2name)
        self.sym_info = (sym.attr_dict(), sym.list_arguments()) if sym is not None else ()
        self.param_dict = dict(param_dict) if param_dict else {}
        self.lr_mult: dict[Any, float] = {}
        self.wd_mult: dict[Any, float] = {}
        self.set_lr_mult({})
        self.set_wd_mult({})
        self._jit_cache: dict[Any, Callable] = {}

    # -- registry -------------------------------------------------------------
    @staticmethod
    def register(klass: type) -> type:
        """Register an optimizer class under its lower-cased name (a decorator).

            >>> @Optimizer.register
            ... class MySGD(SGD):
            ...     pass
            >>> type(create('mysgd')).__name__
            'MySGD'
        """
        if not isinstance(klass, type) or not issubclass(klass, Optimizer):
            raise ConfigError(f"only Optimizer subclasses can be registered, got {klass!r}")
        name = klass.__name__.lower()
        if name in Optimizer.opt_registry and Optimizer.opt_registry[name] is not klass:
            warnings.warn(f"New optimizer {klass.__module__}.{klass.__name__} is overriding existing optimizer "
                          f"{Optimizer.opt_registry[name].__module__}.{Optimizer.opt_registry[name].__name__}")
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name: str, **kwargs: Any) -> "Optimizer":
        """Instantiate a registered optimizer by (case-insensitive) name.

            >>> type(Optimizer.create_optimizer('SGD', momentum=0.9)).__name__
            'SGD'
        """
        if not isinstance(name, str) or name.lower() not in Optimizer.opt_registry:
            raise ConfigError(f"Cannot find optimizer {name!r}; known optimizers: "
                              f"{', '.join(sorted(Optimizer.opt_registry))}")
        return Optimizer.opt_registry[name.lower()](**kwargs)

    # -- learning rate and multipliers ---------------------------------------
    @property
    def learning_rate(self) -> float:
        """The current learning rate (the schedule's value at ``num_update`` when there is one)."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr: float) -> None:
        """Set a new learning rate (only without an lr_scheduler, as in MXNet).

            >>> o = SGD(); o.set_learning_rate(0.5); o.learning_rate
            0.5
        """
        if self.lr_scheduler is not None:
            raise ConfigError("LRScheduler of the optimizer has already been defined. Note that set_learning_rate "
                              "can mutate the value of the learning rate of the optimizer only when the "
                              "LRScheduler of the optimizer is undefined.")
        self.lr = _num(type(self).__name__, "learning_rate", lr, lo=0.0)

    def set_lr_mult(self, args_lr_mult: Mapping[Any, float]) -> None:
        """Set per-parameter learning-rate multipliers (by name or index); ``sym``'s ``__lr_mult__`` first.

            >>> o = SGD(param_idx2name={0: 'fc_weight'}); o.set_lr_mult({'fc_weight': 0.5}); o.lr_mult_of(0)
            0.5
        """
        self.lr_mult = {}
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__lr_mult__" in attr[name]:
                    self.lr_mult[name] = _num(type(self).__name__, f"__lr_mult__ of {name}",
                                              _parse_float(attr[name]["__lr_mult__"], name, "__lr_mult__"))
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult: Mapping[Any, float]) -> None:
        """Set per-parameter weight-decay multipliers.

        As in MXNet, every named parameter whose name ends neither in ``_weight``
        nor ``_gamma`` gets multiplier 0; then ``sym``'s ``__wd_mult__``; then the argument.

            >>> o = SGD(param_idx2name={0: 'fc_weight', 1: 'fc_bias'}); o.wd_mult_of(0), o.wd_mult_of(1)
            (1.0, 0.0)
        """
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not (n.endswith("_weight") or n.endswith("_gamma")):
                self.wd_mult[n] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__wd_mult__" in attr[name]:
                    self.wd_mult[name] = _num(type(self).__name__, f"__wd_mult__ of {name}",
                                              _parse_float(attr[name]["__wd_mult__"], name, "__wd_mult__"))
        self.wd_mult.update(args_wd_mult)

    def _mult_of(self, index: Any, table: dict, attr: str) -> float:
        if index in self.param_dict:
            return float(getattr(self.param_dict[index], attr))
        if index in table:
            return float(table[index])
        if index in self.idx2name:
            return float(table.get(self.idx2name[index], 1.0))
        return 1.0

    def lr_mult_of(self, index: Any) -> float:
        """The learning-rate multiplier of a parameter (index or name), by MXNet's lookup order."""
        return self._mult_of(index, self.lr_mult, "lr_mult")

    def wd_mult_of(self, index: Any) -> float:
        """The weight-decay multiplier of a parameter (index or name), by MXNet's lookup order."""
        return self._mult_of(index, self.wd_mult, "wd_mult")

    def _update_count(self, index: Any) -> None:
        """Count one more update of ``index`` (MXNet's per-index counters and global ``num_update``)."""
        indices = index if isinstance(index, (list, tuple)) else [index]
        for idx in indices:
            if idx not in self._index_update_count:
                self._index_update_count[idx] = self.begin_num_update
            self._index_update_count[idx] += 1
            self.num_update = max(self._index_update_count[idx], self.num_update)

    def _get_lr(self, index: Any) -> float:
        """The learning rate for ``index`` now (schedule at ``num_update`` times the multiplier)."""
        return self.learning_rate * self.lr_mult_of(index)

    def _get_wd(self, index: Any) -> float:
        """The weight decay for ``index`` (``wd`` times the multiplier)."""
        return self.wd * self.wd_mult_of(index)

    def lr_at(self, num_update: Any) -> jax.Array:
        """The base learning rate at a (traced) global update count, as a float32 jax scalar.

            >>> float(SGD(learning_rate=0.5).lr_at(3))
            0.5
        """
        if self.lr_scheduler is not None:
            return self.lr_scheduler.lr_at(num_update)
        return jnp.float32(self.lr)

    # -- pure update rules ------------------------------------------------------
    def _init(self, weight: jax.Array) -> Any:
        """The optimizer state for one weight (subclasses), a pytree of arrays or None."""
        return None

    def _rule(self, t: jax.Array, lr: jax.Array, wd: jax.Array, w: jax.Array, g: jax.Array, state: Any):
        """One update in the weight's dtype (subclasses): returns (new_weight, new_state)."""
        raise NotImplementedError(f"{type(self).__name__} must define _rule")

    def _use_master(self, dtype: Any) -> bool:
        return self.multi_precision and np.dtype(dtype) in _LOW_PRECISION

    def init_state(self, weight: jax.Array) -> Any:
        """The state pytree for ``weight``; with multi_precision and a float16/bfloat16
        weight, ``(float32 master copy, state of the master copy)``.

            >>> [s.shape for s in Adam().init_state(jnp.zeros(3))]
            [(3,), (3,)]
        """
        weight = jnp.asarray(weight)
        if self._use_master(weight.dtype):
            w32 = weight.astype(jnp.float32)
            return (w32, self._init(w32))
        return self._init(weight)

    def _grad(self, g: jax.Array) -> jax.Array:
        """``clip(rescale_grad * grad)`` (MXNet's kernels: clipping off when clip_gradient <= 0)."""
        g = self.rescale_grad * g
        if self.clip_gradient is not None and self.clip_gradient > 0:
            g = jnp.clip(g, -self.clip_gradient, self.clip_gradient)
        return g

    def _grad_wd(self, g: jax.Array, w: jax.Array, wd: jax.Array) -> jax.Array:
        """``clip(rescale_grad * grad + wd * weight)``, the Adam/RMSProp family's preprocessing."""
        g = self.rescale_grad * g + wd * w
        if self.clip_gradient is not None and self.clip_gradient > 0:
            g = jnp.clip(g, -self.clip_gradient, self.clip_gradient)
        return g

    def pure_update(self, t: Any, lr: Any, wd: Any, weight: jax.Array, grad: jax.Array, state: Any):
        """One update of one parameter, a pure function of jax arrays (traceable, jittable).

        ``t``: the parameter's update count including this one; ``lr``/``wd``: its
        learning rate and weight decay.  Returns ``(new_weight, new_state)``.

            >>> w, s = SGD(momentum=0.5).pure_update(1, 0.1, 0.0, jnp.ones(2), jnp.ones(2), jnp.zeros(2))
            >>> np.asarray(w, float).round(6).tolist(), np.asarray(s, float).round(6).tolist()
            ([0.9, 0.9], [-0.1, -0.1])
        """
        weight = jnp.asarray(weight)
        t = jnp.asarray(t, dtype=jnp.int32)
        if self._use_master(weight.dtype):
            w32, inner = state
            lr32, wd32 = jnp.asarray(lr, jnp.float32), jnp.asarray(wd, jnp.float32)
            new32, inner = self._rule(t, lr32, wd32, w32, jnp.asarray(grad).astype(jnp.float32), inner)
            return new32.astype(weight.dtype), (new32, inner)
        dt = weight.dtype
        new_w, new_state = self._rule(t, jnp.asarray(lr, dt), jnp.asarray(wd, dt), weight,
                                      jnp.asarray(grad).astype(dt), state)
        return new_w.astype(dt), new_state

    def step_param(self, index: Any, num_update: Any, t: Any, weight: jax.Array, grad: jax.Array, state: Any):
        """:meth:`pure_update` with lr and wd computed inside jax from the (traced) global
        update count and the parameter's multipliers: what a compiled training step calls.

            >>> opt = SGD(learning_rate=1.0, lr_scheduler=None, param_idx2name={0: 'b'})
            >>> float(opt.step_param(0, 1, 1, jnp.zeros(()), jnp.ones(()), None)[0])
            -1.0
        """
        lr = self.lr_at(num_update) * self.lr_mult_of(index)
        wd = jnp.float32(self.wd * self.wd_mult_of(index))
        return self.pure_update(t, lr, wd, weight, grad, state)

    # -- MXNet's stateful surface over NDArrays -----------------------------------
    def create_state(self, index: Any, weight: NDArray) -> Any:
        """MXNet's ``create_state``: the state for ``weight`` as NDArrays (no master copy)."""
        return _to_ndarrays(self._init(jnp.asarray(_data(weight))))

    def create_state_multi_precision(self, index: Any, weight: NDArray) -> Any:
        """Like :meth:`create_state`, with the float32 master copy when multi_precision applies."""
        w = jnp.asarray(_data(weight))
        if np.dtype(w.dtype) == np.float16 and not self.multi_precision:
            warnings.warn("Accumulating with float16 in optimizer can lead to poor accuracy or slow convergence. "
                          "Consider using multi_precision=True option of the optimizer")
        return _to_ndarrays(self.init_state(w))

    def _hyper_key(self) -> tuple:
        return tuple((k, repr(getattr(self, k))) for k in self._hyper) + (self.rescale_grad, self.clip_gradient)

    def _compiled(self, master: bool) -> Callable:
        key = (master, self._hyper_key())
        fn = self._jit_cache.get(key)
        if fn is None:
            if master:
                fn = jax.jit(self.pure_update)
            else:
                def raw(t, lr, wd, w, g, s):
                    return self._rule(t, lr.astype(w.dtype), wd.astype(w.dtype), w, g.astype(w.dtype), s)
                fn = jax.jit(raw)
            self._jit_cache[key] = fn
        return fn

    def _apply(self, index: Any, weight: NDArray, grad: NDArray, state: Any, master: bool) -> None:
        if not isinstance(weight, NDArray):
            raise ConfigError(f"{type(self).__name__}.update expects NDArray weights, got {type(weight).__name__}")
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        arrays = jax.tree_util.tree_map(lambda x: x.data, state, is_leaf=_is_ndarray_leaf)
        fn = self._compiled(master and self._use_master(weight.dtype))
        new_w, new_state = fn(jnp.int32(t), jnp.float32(lr), jnp.float32(wd), weight.data, _data(grad), arrays)
        weight._set(new_w.astype(weight.data.dtype))
        holders = jax.tree_util.tree_leaves(state, is_leaf=_is_ndarray_leaf)
        for holder, value in zip(holders, jax.tree_util.tree_leaves(new_state)):
            holder._set(value)

    def update(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        """MXNet's ``update``: update ``weight`` (and ``state``) in place from ``grad``."""
        self._apply(index, weight, grad, state, master=False)

    def update_multi_precision(self, index: Any, weight: NDArray, grad: NDArray, state: Any) -> None:
        """Like :meth:`update`, through the float32 master copy when multi_precision applies."""
        self._apply(index, weight, grad, state, master=True)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}(learning_rate={self.lr!r}, wd={self.wd!r}{', ' if hp else ''}{hp})"


def _parse_float(text: Any, name: str, key: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"variable {name!r}: attribute {key} must be a number, got {text!r}") from None


def _data(x: Any) -> jax.Array:
    return x.data if isinstance(x, NDArray) else jnp.asarray(x)


def _to_ndarrays(tree: Any) -> Any:
    return jax.tree_util.tree_map(NDArray, tree)


register = Optimizer.register
create = Optimizer.create_optimizer


@register
class SGD(Optimizer):
    """SGD with momentum and weight decay (``sgd_update`` / ``sgd_mom_update``)::

        g = clip(rescale_grad * grad)
        mom = momentum * mom - lr * wd * weight - lr * g      (state: mom; none when momentum == 0)
        weight = weight + mom                                  (without momentum: weight - lr * (g + wd * weight))

        >>> SGD(momentum=0.9).momentum
        0.9
    """

    _hyper = ("momentum",)

    def __init__(self, momentum: float = 0.0, lazy_update: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.momentum = _num("SGD", "momentum", momentum, lo=0.0, hi=1.0)
        self.lazy_update = lazy_update

    def _init(self, weight):
        return None if self.momentum == 0.0 else jnp.zeros_like(weight)

    def _rule(self, t, lr, wd, w, g, mom):
        g = self._grad(g)
        if mom is None:
            return w - lr * (g + wd * w), None
        mom = self.momentum * mom - lr * wd * w - lr * g
        return w + mom, mom


@register
class NAG(Optimizer):
    """Nesterov accelerated gradient (``nag_mom_update``)::

        g = clip(rescale_grad * grad) + wd * weight
        mom = momentum * mom - lr * g
        weight = weight + momentum * mom - lr * g              (without momentum: plain SGD)

        >>> NAG(momentum=0.9).momentum
        0.9
    """

    _hyper = ("momentum",)

    def __init__(self, momentum: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.momentum = _num("NAG", "momentum", momentum, lo=0.0, hi=1.0)

    def _init(self, weight):
        return None if self.momentum == 0.0 else jnp.zeros_like(weight)

    def _rule(self, t, lr, wd, w, g, mom):
        g = self._grad(g) + wd * w
        if mom is None:
            return w - lr * g, None
        mom = self.momentum * mom - lr * g
        return w + self.momentum * mom - lr * g, mom


class _AdamLike(Optimizer):
    """Shared constructor checks of the optimizers with beta1/beta2/epsilon."""

    def _betas(self, beta1: float, beta2: float, epsilon: float | None) -> None:
        owner = type(self).__name__
        self.beta1 = _num(owner, "beta1", beta1, lo=0.0, hi=1.0, hi_open=True)
        self.beta2 = _num(owner, "beta2", beta2, lo=0.0, hi=1.0, hi_open=True)
        if epsilon is not None:
            self.epsilon = _num(owner, "epsilon", epsilon, lo=0.0)

    def _init(self, weight):
        return (jnp.zeros_like(weight), jnp.zeros_like(weight))


@register
class Adam(_AdamLike):
    """Adam (``adam_update`` with the bias correction folded into lr)::

        g = clip(rescale_grad * grad + wd * weight)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        weight -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + epsilon)

        >>> Adam().lr
        0.001
    """

    _hyper = ("beta1", "beta2", "epsilon")

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, lazy_update: bool = True, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._betas(beta1, beta2, epsilon)
        self.lazy_update = lazy_update

    def _rule(self, t, lr, wd, w, g, state):
        m, v = state
        g = self._grad_wd(g, w, wd)
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        lr_t = lr * (jnp.sqrt(1 - _pow(self.beta2, t)) / (1 - _pow(self.beta1, t))).astype(w.dtype)
        return w - lr_t * m / (jnp.sqrt(v) + self.epsilon), (m, v)


@register
class AdamW(_AdamLike):
    """Adam with decoupled weight decay (MXNet's contrib ``adamw_update``)::

        g = clip(rescale_grad * grad)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)       (lr_t = lr when correct_bias=False)
        weight -= eta * (lr_t * m / (sqrt(v) + epsilon) + wd * weight)

    ``eta`` is the op's schedule multiplier, applied to the decay as well as the
    step; the decay is not scaled by the learning rate.

        >>> AdamW(eta=0.5).eta
        0.5
    """

    _hyper = ("beta1", "beta2", "epsilon", "eta", "correct_bias")

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, eta: float = 1.0, correct_bias: bool = True, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._betas(beta1, beta2, epsilon)
        self.eta = _num("AdamW", "eta", eta, lo=0.0)
        self.correct_bias = bool(correct_bias)

    def _rule(self, t, lr, wd, w, g, state):
        m, v = state
        g = self._grad(g)
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        if self.correct_bias:
            lr = lr * (jnp.sqrt(1 - _pow(self.beta2, t)) / (1 - _pow(self.beta1, t))).astype(w.dtype)
        return w - self.eta * (lr * m / (jnp.sqrt(v) + self.epsilon) + wd * w), (m, v)


@register
class Adamax(_AdamLike):
    """AdaMax, Adam with the infinity norm::

        g = clip(rescale_grad * grad + wd * weight)
        m = beta1 * m + (1 - beta1) * g;  u = maximum(beta2 * u, |g|)
        weight -= lr / (1 - beta1**t) * m / u

        >>> Adamax().lr
        0.002
    """

    _hyper = ("beta1", "beta2")

    def __init__(self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._betas(beta1, beta2, None)

    def _rule(self, t, lr, wd, w, g, state):
        m, u = state
        g = self._grad_wd(g, w, wd)
        m = self.beta1 * m + (1 - self.beta1) * g
        u = jnp.maximum(self.beta2 * u, jnp.abs(g))
        lr_t = lr / (1 - _pow(self.beta1, t)).astype(w.dtype)
        ratio = jnp.where(u == 0, jnp.zeros_like(m), m / jnp.where(u == 0, jnp.ones_like(u), u))
        return w - lr_t * ratio, (m, u)


@register
class Nadam(_AdamLike):
    """Nesterov Adam with a warming momentum schedule::

        g = clip(rescale_grad * grad + wd * weight)
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * schedule_decay)); mu_t1 likewise at t + 1
        m_schedule *= mu_t                                        (state, per parameter)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        m_bar = (1 - mu_t) * g / (1 - m_schedule) + mu_t1 * m / (1 - m_schedule * mu_t1)
        weight -= lr * m_bar / (sqrt(v / (1 - beta2**t)) + epsilon)

        >>> Nadam().schedule_decay
        0.004
    """

    _hyper = ("beta1", "beta2", "epsilon", "schedule_decay")

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, schedule_decay: float = 0.004, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._betas(beta1, beta2, epsilon)
        self.schedule_decay = _num("Nadam", "schedule_decay", schedule_decay, lo=0.0)

    def _init(self, weight):
        return (jnp.zeros_like(weight), jnp.zeros_like(weight), jnp.ones((), jnp.float32))

    def _rule(self, t, lr, wd, w, g, state):
        m, v, m_schedule = state
        g = self._grad_wd(g, w, wd)
        tf = t.astype(jnp.float32)
        mu_t = self.beta1 * (1.0 - 0.5 * jnp.power(0.96, tf * self.schedule_decay))
        mu_t1 = self.beta1 * (1.0 - 0.5 * jnp.power(0.96, (tf + 1) * self.schedule_decay))
        m_schedule = m_schedule * mu_t
        m_schedule_next = m_schedule * mu_t1
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        dt = w.dtype
        g_prime = g / (1 - m_schedule).astype(dt)
        m_prime = m / (1 - m_schedule_next).astype(dt)
        v_prime = v / (1 - _pow(self.beta2, t)).astype(dt)
        m_bar = (1 - mu_t).astype(dt) * g_prime + mu_t1.astype(dt) * m_prime
        return w - lr * m_bar / (jnp.sqrt(v_prime) + self.epsilon), (m, v, m_schedule)


@register
class RMSProp(Optimizer):
    """RMSProp: Tieleman & Hinton (``rmsprop_update``) or, ``centered=True``, Graves (``rmspropalex_update``)::

        g = clip(rescale_grad * grad + wd * weight)
        n = (1 - gamma1) * g**2 + gamma1 * n
        plain:    weight -= lr * g / sqrt(n + epsilon)
        centered: s = (1 - gamma1) * g + gamma1 * s
                  delta = gamma2 * delta - lr * g / sqrt(n - s**2 + epsilon);  weight += delta
        then weight = clip(weight, clip_weights) when clip_weights > 0

        >>> len(RMSProp(centered=True).init_state(jnp.zeros(2)))
        3
    """

    _hyper = ("gamma1", "gamma2", "epsilon", "centered", "clip_weights")

    def __init__(self, learning_rate: float = 0.001, gamma1: float = 0.9, gamma2: float = 0.9,
                 epsilon: float = 1e-8, centered: bool = False, clip_weights: float | None = None, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = _num("RMSProp", "gamma1", gamma1, lo=0.0, hi=1.0, hi_open=True)
        self.gamma2 = _num("RMSProp", "gamma2", gamma2, lo=0.0, hi=1.0)
        self.epsilon = _num("RMSProp", "epsilon", epsilon, lo=0.0)
        self.centered = bool(centered)
        self.clip_weights = _num("RMSProp", "clip_weights", clip_weights, optional=True)

    def _init(self, weight):
        n = (jnp.zeros_like(weight),)
        return n * 3 if self.centered else n

    def _rule(self, t, lr, wd, w, g, state):
        g = self._grad_wd(g, w, wd)
        n = (1 - self.gamma1) * g * g + self.gamma1 * state[0]
        if self.centered:
            s = (1 - self.gamma1) * g + self.gamma1 * state[1]
            delta = self.gamma2 * state[2] - lr * g / jnp.sqrt(n - s * s + self.epsilon)
            w, new_state = w + delta, (n, s, delta)
        else:
            w, new_state = w - lr * g / jnp.sqrt(n + self.epsilon), (n,)
        if self.clip_weights is not None and self.clip_weights > 0:
            w = jnp.clip(w, -self.clip_weights, self.clip_weights)
        return w, new_state


@register
class AdaGrad(Optimizer):
    """AdaGrad::

        g = clip(rescale_grad * grad);  history += g**2
        weight -= lr * (g / sqrt(history + eps) + wd * weight)

        >>> AdaGrad(eps=1e-6).float_stable_eps
        1e-06
    """

    _hyper = ("float_stable_eps",)

    def __init__(self, eps: float = 1e-7, **kwargs: Any):
        super().__init__(**kwargs)
        self.float_stable_eps = _num("AdaGrad", "eps", eps, lo=0.0)

    def _init(self, weight):
        return jnp.zeros_like(weight)

    def _rule(self, t, lr, wd, w, g, history):
        g = self._grad(g)
        history = history + g * g
        return w - lr * (g / jnp.sqrt(history + self.float_stable_eps) + wd * w), history


@register
class AdaDelta(Optimizer):
    """AdaDelta (no learning rate, as in MXNet 1.x)::

        g = clip(rescale_grad * grad)
        acc_g = rho * acc_g + (1 - rho) * g**2
        delta = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta**2
        weight -= delta + wd * weight

        >>> AdaDelta().rho
        0.9
    """

    _hyper = ("rho", "epsilon")

    def __init__(self, rho: float = 0.90, epsilon: float = 1e-5, **kwargs: Any):
        super().__init__(**kwargs)
        self.rho = _num("AdaDelta", "rho", rho, lo=0.0, hi=1.0)
        self.epsilon = _num("AdaDelta", "epsilon", epsilon, lo=0.0)

    def _init(self, weight):
        return (jnp.zeros_like(weight), jnp.zeros_like(weight))

    def _rule(self, t, lr, wd, w, g, state):
        acc_g, acc_delta = state
        g = self._grad(g)
        acc_g = self.rho * acc_g + (1 - self.rho) * g * g
        delta = jnp.sqrt(acc_delta + self.epsilon) / jnp.sqrt(acc_g + self.epsilon) * g
        acc_delta = self.rho * acc_delta + (1 - self.rho) * delta * delta
        return w - (delta + wd * w), (acc_g, acc_delta)


@register
class Ftrl(Optimizer):
    """FTRL-Proximal (``ftrl_update``)::

        g = clip(rescale_grad * grad)
        z += g - (sqrt(n + g**2) - sqrt(n)) * weight / lr;  n += g**2
        weight = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (|z| > lamda1)

        >>> Ftrl().lr, Ftrl().lamda1
        (0.1, 0.01)
    """

    _hyper = ("lamda1", "beta")

    def __init__(self, lamda1: float = 0.01, learning_rate: float = 0.1, beta: float = 1, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lamda1 = _num("Ftrl", "lamda1", lamda1, lo=0.0)
        self.beta = _num("Ftrl", "beta", beta)

    def _init(self, weight):
        return (jnp.zeros_like(weight), jnp.zeros_like(weight))

    def _rule(self, t, lr, wd, w, g, state):
        z, n = state
        g = self._grad(g)
        z = z + g - (jnp.sqrt(n + g * g) - jnp.sqrt(n)) * w / lr
        n = n + g * g
        w = (jnp.sign(z) * self.lamda1 - z) / ((self.beta + jnp.sqrt(n)) / lr + wd) * (jnp.abs(z) > self.lamda1)
        return w, (z, n)


@register
class Signum(Optimizer):
    """Signum / signSGD (``signum_update`` / ``signsgd_update``)::

        mom = momentum * mom - (1 - momentum) * (wd * weight + clip(rescale_grad * grad))
        weight = (1 - lr * wd_lh) * weight + lr * sign(mom)
        without momentum: weight = (1 - lr * wd) * weight - lr * sign(grad)

        >>> Signum().momentum
        0.9
    """

    _hyper = ("momentum", "wd_lh")

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9, wd_lh: float = 0.0, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = _num("Signum", "momentum", momentum, lo=0.0, hi=1.0)
        self.wd_lh = _num("Signum", "wd_lh", wd_lh)

    def _init(self, weight):
        return None if self.momentum == 0.0 else jnp.zeros_like(weight)

    def _rule(self, t, lr, wd, w, g, mom):
        if mom is None:
            return (1 - lr * wd) * w - lr * jnp.sign(g), None
        mom = self.momentum * mom - (1 - self.momentum) * wd * w - (1 - self.momentum) * self._grad(g)
        return (1 - lr * self.wd_lh) * w + lr * jnp.sign(mom), mom


@register
class LAMB(_AdamLike):
    """LAMB, layer-wise adaptive moments (``lamb_update_phase1`` / ``phase2``)::

        g = clip(rescale_grad * grad)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        r = m_hat / (sqrt(v_hat) + epsilon) + wd * weight   (hats: bias-corrected when bias_correction)
        r1 = ||weight|| clamped to [lower_bound, upper_bound] where given;  r2 = ||r||
        weight -= lr * (r1 / r2 if r1 > 0 and r2 > 0 else 1) * r

        >>> LAMB().epsilon
        1e-06
    """

    _hyper = ("beta1", "beta2", "epsilon", "lower_bound", "upper_bound", "bias_correction")

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-6, lower_bound: float | None = None, upper_bound: float | None = None,
                 bias_correction: bool = True, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._betas(beta1, beta2, epsilon)
        self.lower_bound = _num("LAMB", "lower_bound", lower_bound, optional=True)
        self.upper_bound = _num("LAMB", "upper_bound", upper_bound, optional=True)
        self.bias_correction = bool(bias_correction)

    def _rule(self, t, lr, wd, w, g, state):
        m, v = state
        g = self._grad(g)
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        m_hat, v_hat = m, v
        if self.bias_correction:
            m_hat = m / (1 - _pow(self.beta1, t)).astype(w.dtype)
            v_hat = v / (1 - _pow(self.beta2, t)).astype(w.dtype)
        r = m_hat / (jnp.sqrt(v_hat) + self.epsilon) + wd * w
        r1 = jnp.linalg.norm(w.astype(jnp.float32))
        if self.lower_bound:
            r1 = jnp.maximum(r1, self.lower_bound)
        if self.upper_bound:
            r1 = jnp.minimum(r1, self.upper_bound)
        r2 = jnp.linalg.norm(r.astype(jnp.float32))
        ratio = jnp.where((r1 == 0) | (r2 == 0), 1.0, r1 / jnp.where(r2 == 0, 1.0, r2))
        return w - (lr * ratio.astype(w.dtype)) * r, (m, v)


class Updater:
    """MXNet's updater closure: ``updater(index, grad, weight)`` creates states lazily and updates.

        >>> import xgraph as mx
        >>> up = get_updater(mx.optimizer.SGD(learning_rate=1.0))
        >>> w = mx.nd.ones((1,)); up(0, mx.nd.ones((1,)), w); w.asnumpy().tolist()
        [0.0]
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(f"get_updater needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.states: dict[Any, Any] = {}
        self.states_synced: dict[Any, bool] = {}

    def __call__(self, index: Any, grad: Any, weight: Any) -> None:
        indices = list(index) if isinstance(index, (list, tuple)) else [index]
        grads = list(grad) if isinstance(index, (list, tuple)) else [grad]
        weights = list(weight) if isinstance(index, (list, tuple)) else [weight]
        for i, g, w in zip(indices, grads, weights):
            if i not in self.states:
                self.states[i] = self.optimizer.create_state_multi_precision(i, w)
                self.states_synced[i] = True
            self.optimizer.update_multi_precision(i, w, g, self.states[i])

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """The states as bytes (an ``.npz`` archive plus a JSON index; never pickle).

        ``dump_optimizer=True`` also stores the optimizer's update counters (its
        hyper-parameters are not serialised: recreate the optimizer, then load).
        """
        arrays: dict[str, np.ndarray] = {}
        index = [[_key_json(k), _encode(v, arrays)] for k, v in self.states.items()]
        meta: dict[str, Any] = {"states": index}
        if dump_optimizer:
            meta["num_update"] = self.optimizer.num_update
            meta["index_update_count"] = [[_key_json(k), c] for k, c in self.optimizer._index_update_count.items()]
        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
        return buf.getvalue()

    def set_states(self, states: bytes) -> None:
        """Restore what :meth:`get_states` returned."""
        what = "optimizer states (Updater.set_states)"
        arrays = read_npz(states, ConfigError, what)
        if "__meta__" not in arrays:
            raise ConfigError(f"{what} are not from Updater.get_states (no __meta__ index)")
        meta = parse_json(arrays.pop("__meta__").tobytes(), ConfigError, f"{what}' index")
        try:
            self.states = {_key_from_json(k): _decode(v, arrays) for k, v in meta["states"]}
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise ConfigError(f"optimizer states are corrupt or not from Updater.get_states: {e}") from None
        if "num_update" in meta:
            self.optimizer.num_update = int(meta["num_update"])
            self.optimizer._index_update_count = {_key_from_json(k): int(c) for k, c in meta["index_update_count"]}
        self.states_synced = dict.fromkeys(self.states, False)


def _key_json(k: Any) -> list:
    if isinstance(k, (bool, float)) or not isinstance(k, (int, str, np.integer)):
        raise ConfigError(f"optimizer state index must be an int or str to be saved, got {k!r}")
    return ["i", int(k)] if isinstance(k, (int, np.integer)) else ["s", k]


def _key_from_json(k: list) -> Any:
    return int(k[1]) if k[0] == "i" else str(k[1])


def _encode(tree: Any, arrays: dict) -> Any:
    if tree is None:
        return None
    if isinstance(tree, (tuple, list)):
        return {"seq": [_encode(x, arrays) for x in tree]}
    name = f"a{len(arrays)}"
    arrays[name] = np.asarray(_data(tree))
    return {"array": name}


def _decode(obj: Any, arrays: dict) -> Any:
    if obj is None:
        return None
    if "seq" in obj:
        return tuple(_decode(x, arrays) for x in obj["seq"])
    return NDArray(jnp.asarray(arrays[obj["array"]]))


def get_updater(optimizer: Optimizer) -> Updater:
    """MXNet's ``get_updater``: an :class:`Updater` closure over ``optimizer``.

        >>> type(get_updater(SGD())).__name__
        'Updater'
    """
    return Updater(optimizer)
