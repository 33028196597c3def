"""MXNet's KVStore (``mx.kv.create``) over JAX: a key-value store of arrays that sums what is pushed.

Semantics follow MXNet 1.9.1:

* ``init(key, value)`` stores a copy of ``value`` (in several processes rank
  0's value, as MXNet's server keeps the first worker's); a key initialized
  twice raises ConfigError.  Keys are ints or strs (one kind per call).
* ``push(key, value)``: a list of values for one key (one per device) is
  summed; a distributed store (``dist_sync``, ``dist_device_sync``) also sums
  over every process (JAX collectives).  With an optimizer set
  (``set_optimizer``) the sum is the gradient and the stored value is updated
  by the optimizer; without one, the stored value becomes the sum.
* ``pull(key, out)`` copies the stored value into ``out`` (an NDArray or a
  list, e.g. one per device); ``pushpull`` is push then pull (into ``value``
  when no ``out`` is given); ``broadcast`` is init then pull.
* ``rank``, ``num_workers``, ``barrier()`` come from the JAX distributed runtime
  (1 worker, rank 0 without ``xgraph.distributed.initialize``).
* ``save_optimizer_states`` / ``load_optimizer_states`` store the updater's
  states (pickle-free, :class:`~xgraph.optimizer.Updater`).

``dist_async`` (and Horovod/BytePS stores) are refused: JAX's runtime has no
asynchronous parameter server.  ``Module.fit(kvstore=...)`` takes a store or
its name; the fused training step does the reduction inside its one XLA
program (see :mod:`xgraph.parallel`), so the store decides only how many
workers take part.

    >>> import xgraph as mx
    >>> kv = create('local')
    >>> kv.init(3, mx.nd.ones((2,)))
    >>> kv.push(3, [mx.nd.ones((2,)), mx.nd.ones((2,))])
    >>> out = mx.nd.zeros((2,)); kv.pull(3, out=out); out.asnumpy().tolist()
    [2.0, 2.0]
"""
from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import parallel as _par
from ..errors import ConfigError, GraphFormatError, ShapeError, UnsupportedFeatureError
from ..io.atomic import atomic_open
from ..ndarray import NDArray
from . import optimizer as _opt

__all__ = ["KVStore", "create", "KVSTORE_TYPES"]

#: the store names ``create`` accepts (MXNet's local variants all behave as 'local'/'device')
KVSTORE_TYPES = ("local", "device", "nccl", "local_update_cpu", "local_allreduce_cpu", "local_allreduce_device",
                 "dist_sync", "dist_device_sync", "dist_sync_device", "dist")
_REFUSED = {
    "dist_async": "asynchronous training has no counterpart in JAX's runtime (every step is one synchronous "
                  "XLA program); use 'dist_sync'",
    "dist_device_async": "asynchronous training has no counterpart in JAX's runtime; use 'dist_device_sync'",
    "horovod": "xgraph reduces over JAX collectives; use 'dist_sync' with xgraph.distributed.initialize()",
    "byteps": "xgraph reduces over JAX collectives; use 'dist_sync' with xgraph.distributed.initialize()",
}


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _array(x: Any) -> jax.Array:
    return x.data if isinstance(x, NDArray) else jnp.asarray(x)


class KVStore:
    """A key-value store of arrays; see the module docstring for the semantics.

        >>> kv = KVStore('local'); kv.type, kv.rank, kv.num_workers
        ('local', 0, 1)
    """

    def __init__(self, kind: str = "local"):
        if not isinstance(kind, str):
            raise ConfigError(f"kvstore type must be a string, got {type(kind).__name__}")
        if kind in _REFUSED:
            raise UnsupportedFeatureError(f"kvstore {kind!r} is not supported: {_REFUSED[kind]}")
        if kind not in KVSTORE_TYPES:
            raise ConfigError(f"unknown kvstore type {kind!r}; use one of {', '.join(KVSTORE_TYPES)}")
        self._type = kind
        self._store: dict[Any, jax.Array] = {}
        self._updater: Any = None
        self._optimizer: _opt.Optimizer | None = None

    # -- what the store is ---------------------------------------------------------------------
    @property
    def type(self) -> str:
        """The name it was created with."""
        return self._type

    @property
    def is_distributed(self) -> bool:
        """True for the ``dist_*`` stores: pushes sum over every process."""
        return self._type.startswith("dist")

    @property
    def rank(self) -> int:
        """This worker's index (0 for local stores)."""
        return _par.rank() if self.is_distributed else 0

    @property
    def num_workers(self) -> int:
        """How many workers push into the store (1 for local stores)."""
        return _par.num_workers() if self.is_distributed else 1

    def is_capable(self, capability: str) -> bool:
        """MXNet's capability query: this store can run an optimizer (``'optimizer'``)."""
        if capability.lower() == KVStore.OPTIMIZER:
            return True
        raise ConfigError(f"unknown kvstore capability {capability!r}")

    OPTIMIZER = "optimizer"

    def barrier(self) -> None:
        """Wait for every worker (a no-op for local stores and in one process)."""
        if self.is_distributed:
            _par.barrier(f"xgraph_kvstore_{self._type}")

    # -- keys and values -----------------------------------------------------------------------
    @staticmethod
    def _pairs(key: Any, value: Any, what: str) -> list[tuple[Any, list]]:
        """``[(key, [values...])]``: one key with one value or a list of them, or keys with values."""
        if isinstance(key, (list, tuple)):
            keys = list(key)
            values = _as_list(value)
            if len(values) != len(keys):
                raise ConfigError(f"kvstore.{what}: {len(keys)} keys but {len(values)} values")
            out = [(k, _as_list(v)) for k, v in zip(keys, values)]
        else:
            out = [(key, _as_list(value))]
        kinds = set()
        for k, vs in out:
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer, str)):
                raise ConfigError(f"kvstore.{what}: key {k!r} must be an int or a str")
            kinds.add(str if isinstance(k, str) else int)
            if not vs:
                raise ConfigError(f"kvstore.{what}: key {k!r} has no value")
        if len(kinds) > 1:
            raise ConfigError(f"kvstore.{what}: keys {[k for k, _ in out]} mix ints and strs")
        return [(k if isinstance(k, str) else int(k), vs) for k, vs in out]

    def _stored(self, key: Any, what: str) -> jax.Array:
        if key not in self._store:
            raise ConfigError(f"kvstore.{what}: key {key!r} was not initialized (call init first)")
        return self._store[key]

    def init(self, key: Any, value: Any) -> None:
        """Store a copy of ``value`` under ``key`` (rank 0's value in a distributed store).

            >>> kv = create('local'); kv.init('w', np.zeros(2, np.float32)); kv.init('w', np.zeros(2, np.float32))
            Traceback (most recent call last):
            ...
            xgraph.errors.ConfigError: kvstore.init: duplicate init of key 'w'
        """
        for k, vs in self._pairs(key, value, "init"):
            if k in self._store:
                raise ConfigError(f"kvstore.init: duplicate init of key {k!r}")
            v = _array(vs[0])
            if self.is_distributed and _par.num_workers() > 1:
                from jax.experimental import multihost_utils
                v = jnp.asarray(multihost_utils.broadcast_one_to_all(np.asarray(v)))
            self._store[k] = jnp.array(v, copy=True)

    def push(self, key: Any, value: Any, priority: int = 0) -> None:
        """Sum the values pushed for each key (over devices, and over workers when distributed); with an
        optimizer the sum updates the stored value, without one it replaces it."""
        for k, vs in self._pairs(key, value, "push"):
            stored = self._stored(k, "push")
            arrays = [_array(v) for v in vs]
            for i, a in enumerate(arrays):
                if tuple(a.shape) != tuple(stored.shape):
                    raise ShapeError(f"kvstore.push: value {i} for key {k!r} has shape {tuple(a.shape)}, the "
                                     f"stored value has {tuple(stored.shape)}")
            dev = next(iter(stored.devices()))
            merged = sum((jax.device_put(a, dev) for a in arrays[1:]), jax.device_put(arrays[0], dev))
            if self.is_distributed and _par.num_workers() > 1:
                merged = jnp.asarray(_par.allreduce_host(np.asarray(merged)))
            merged = jax.device_put(jnp.asarray(merged, stored.dtype), dev)
            if self._updater is not None:
                weight = NDArray(stored)
                self._updater(k, NDArray(merged), weight)
                self._store[k] = weight.data
            else:
                self._store[k] = jnp.array(merged, copy=True)

    def pull(self, key: Any, out: Any = None, priority: int = 0, ignore_sparse: bool = True) -> None:
        """Copy the stored value of each key into ``out`` (an NDArray or a list of them)."""
        if out is None:
            raise ConfigError("kvstore.pull: give out= (the NDArrays to copy the values into)")
        for k, outs in self._pairs(key, out, "pull"):
            stored = self._stored(k, "pull")
            for o in outs:
                if not isinstance(o, NDArray):
                    raise ConfigError(f"kvstore.pull: out for key {k!r} must be NDArrays, got {type(o).__name__}")
                if tuple(o.shape) != tuple(stored.shape):
                    raise ShapeError(f"kvstore.pull: out for key {k!r} has shape {o.shape}, the stored value "
                                     f"has {tuple(stored.shape)}")
                o[:] = stored

    def pushpull(self, key: Any, value: Any, out: Any = None, priority: int = 0) -> None:
        """``push(key, value)`` then ``pull(key, out)``; into ``value`` itself when ``out`` is None."""
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def broadcast(self, key: Any, value: Any, out: Any, priority: int = 0) -> None:
        """``init(key, value)`` then ``pull(key, out)``: every device (and worker) gets rank 0's value."""
        self.init(key, value)
        self.pull(key, out, priority)

    def row_sparse_pull(self, key: Any, out: Any = None, priority: int = 0, row_ids: Any = None) -> None:
        """Sparse storage does not exist in xgraph."""
        raise UnsupportedFeatureError("kvstore.row_sparse_pull: xgraph has no row_sparse storage; use pull")

    def set_gradient_compression(self, compression_params: Any) -> None:
        """Gradient compression is not offered (XLA's all-reduce moves full-precision gradients)."""
        raise UnsupportedFeatureError("kvstore.set_gradient_compression: not supported; the reduction is XLA's "
                                      "all-reduce of full-precision gradients")

    # -- the optimizer ------------------------------------------------------------------------------
    def set_optimizer(self, optimizer: _opt.Optimizer) -> None:
        """Make ``push`` apply ``optimizer`` to the stored values (MXNet's update on the kvstore)."""
        if not isinstance(optimizer, _opt.Optimizer):
            raise ConfigError(f"kvstore.set_optimizer needs an Optimizer, got {type(optimizer).__name__}")
        self._optimizer = optimizer
        self._updater = _opt.get_updater(optimizer)

    def _set_updater(self, updater: Any) -> None:
        """Use ``updater(key, grad, weight)`` on every push (MXNet's private hook)."""
        if not callable(updater):
            raise ConfigError(f"kvstore._set_updater needs a callable, got {type(updater).__name__}")
        self._updater = updater

    def save_optimizer_states(self, fname: str | os.PathLike, dump_optimizer: bool = False) -> None:
        """Write the updater's states to ``fname`` (atomically, no pickle)."""
        if not isinstance(self._updater, _opt.Updater):
            raise ConfigError("kvstore.save_optimizer_states: no optimizer was set (call set_optimizer first)")
        with atomic_open(fname, "wb") as f:
            f.write(self._updater.get_states(dump_optimizer))

    def load_optimizer_states(self, fname: str | os.PathLike) -> None:
        """Restore what :meth:`save_optimizer_states` wrote."""
        if not isinstance(self._updater, _opt.Updater):
            raise ConfigError("kvstore.load_optimizer_states: no optimizer was set (call set_optimizer first)")
        try:
            with open(fname, "rb") as f:
                data = f.read()
        except OSError as e:
            raise GraphFormatError(f"cannot read optimizer states {os.fspath(fname)!r}: {e.strerror or e}") from None
        self._updater.set_states(data)


def create(name: "str | KVStore" = "local") -> KVStore:
    """A KVStore by MXNet's name (``'local'``, ``'device'``, ``'dist_sync'``, ``'dist_device_sync'`` ...).

        >>> create('dist_sync').num_workers
        1
    """
    if isinstance(name, KVStore):
        return name
    return KVStore(name)


def resolve(kvstore: Any) -> KVStore | None:
    """What ``Module.fit(kvstore=...)`` was given, as a store (None stays None)."""
    if kvstore is None:
        return None
    if isinstance(kvstore, (str, KVStore)):
        return create(kvstore)
    raise ConfigError(f"kvstore must be a name or a KVStore, got {type(kvstore).__name__}")
