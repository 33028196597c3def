"""Meshes, data- and model-parallel sharding, and multi-process initialisation, over JAX's runtime.

xgraph does not move gradients itself: a training step over several devices is
ONE XLA program, compiled by GSPMD for a :class:`jax.sharding.Mesh`, with the
batch split along the mesh's ``'data'`` axis and the parameters replicated (or
stored split, :func:`param_shardings`), so XLA inserts the gradient all-reduce.
Several processes (hosts) join one mesh through :func:`initialize`
(``jax.distributed.initialize``).

* :func:`resolve_devices` / :func:`make_mesh`: devices from MXNet contexts,
  JAX devices, a count, ``'local'`` or ``'all'``.
* :class:`DataParallel`: a 1-D mesh with the shardings and placement helpers
  the :class:`~xgraph.train.trainer.Trainer` uses.
* :func:`partition_spec`, :func:`check_spec`, :func:`use_mesh`,
  :func:`constrain`: sharding specs for model parallelism (the
  ``with_sharding`` attribute of a node is lowered with
  ``jax.lax.with_sharding_constraint`` under the mesh of :func:`use_mesh`).
* :func:`param_shardings`, :func:`to_host`, :func:`to_device`: parameters
  stored split over the mesh (a variable's ``sharding``, a Trainer's
  ``param_shardings``), and gathering them back whole.
* :func:`initialize`, :func:`rank`, :func:`num_workers`, :func:`barrier`,
  :func:`allreduce_host`: multi-process runs (``xgraph.distributed``).

    >>> dp = DataParallel(1)
    >>> dp.num_devices, dp.axis
    (1, 'data')
    >>> tuple(partition_spec("(None, 'model')"))
    (None, 'model')
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import math
import os
import socket
import time
from typing import Any, Iterator, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .errors import DistributedError, ParallelError

__all__ = ["DATA_AXIS", "resolve_devices", "make_mesh", "DataParallel", "partition_spec", "check_spec",
           "spec_text", "with_sharding", "param_shardings", "to_host", "to_device", "use_mesh", "current_mesh",
           "constrain", "initialize", "is_initialized", "shutdown", "rank", "num_workers", "barrier", "allreduce_host",
           "settings_from_env", "peer_failures", "check_group2ctx", "check_same_everywhere"]

#: the mesh axis a batch is split along
DATA_AXIS = "data"


# -- devices and meshes -------------------------------------------------------------------
def _one_device(d: Any) -> Any:
    from .context import Context, as_context
    if isinstance(d, Context) or isinstance(d, str):
        return as_context(d).device
    if hasattr(d, "platform") and hasattr(d, "id"):
        return d
    raise ParallelError(f"{d!r} is not a device: give Contexts (mx.cpu(i), mx.gpu(i)), jax devices, "
                        "a device count, 'local' or 'all'")


def resolve_devices(devices: Any = None) -> list[Any]:
    """The JAX devices ``devices`` names.

    ``None``: the current context's device; an int ``n``: the first ``n`` local
    devices; ``'local'``: every device of this process; ``'all'``: every device
    of every process (after :func:`initialize`); a Context, a JAX device or a
    list of them.  Duplicates and counts beyond what exists raise ParallelError.

        >>> [d.platform for d in resolve_devices(1)]
        ['cpu']
    """
    from .context import current_context
    if devices is None:
        return [current_context().device]
    if isinstance(devices, (bool, np.bool_)):
        raise ParallelError(f"devices={devices!r}: give a count, a list of devices, 'local' or 'all'")
    if isinstance(devices, (int, np.integer)):
        local = jax.local_devices()
        if devices < 1 or devices > len(local):
            raise ParallelError(f"asked for {int(devices)} devices, this process has {len(local)} "
                                f"({local[0].platform}); on the CPU set "
                                "XLA_FLAGS=--xla_force_host_platform_device_count=N before jax starts")
        return list(local[:int(devices)])
    if isinstance(devices, str) and devices in ("local", "all"):
        return list(jax.local_devices() if devices == "local" else jax.devices())
    if isinstance(devices, (list, tuple)):
        if not devices:
            raise ParallelError("devices: the list is empty")
        devs = [_one_device(d) for d in devices]
    else:
        devs = [_one_device(devices)]
    seen: dict[Any, int] = {}
    for i, d in enumerate(devs):
        if d in seen:
            raise ParallelError(f"devices: {d} is listed twice (positions {seen[d]} and {i})")
        seen[d] = i
    platforms = sorted({d.platform for d in devs})
    if len(platforms) > 1:
        raise ParallelError(f"devices: one mesh cannot mix platforms {platforms}")
    return devs


def make_mesh(devices: Any = None, axis_names: Sequence[str] = (DATA_AXIS,),
              shape: Sequence[int] | None = None) -> Mesh:
    """A :class:`jax.sharding.Mesh` over ``devices`` (see :func:`resolve_devices`).

    ``shape`` defaults to one axis holding every device; its product must be the device count.

        >>> dict(make_mesh(1).shape)
        {'data': 1}
    """
    if isinstance(devices, Mesh):
        return devices
    devs = resolve_devices(devices)
    axis_names = tuple(axis_names)
    shape = tuple(int(s) for s in shape) if shape is not None else (len(devs),) + (1,) * (len(axis_names) - 1)
    if len(shape) != len(axis_names):
        raise ParallelError(f"mesh shape {shape} has {len(shape)} axes, axis_names {axis_names} name "
                            f"{len(axis_names)}")
    if math.prod(shape) != len(devs):
        raise ParallelError(f"mesh shape {shape} holds {math.prod(shape)} devices, {len(devs)} were given")
    return Mesh(np.array(devs, dtype=object).reshape(shape), axis_names)


class DataParallel:
    """Batch split over one mesh axis, everything else replicated: the Trainer's data parallelism.

    ``devices``: anything :func:`resolve_devices` takes, or a Mesh (which must
    have ``axis``).  A mesh spanning several processes (``devices='all'`` after
    :func:`initialize`) takes each process's share of the batch from that
    process (:meth:`put_batch`).

        >>> import numpy as np
        >>> dp = DataParallel(1)
        >>> dp.put_batch(np.zeros((4, 2), np.float32)).shape
        (4, 2)
    """

    def __init__(self, devices: Any = None, axis: str = DATA_AXIS):
        self.mesh = devices if isinstance(devices, Mesh) else make_mesh(devices, (axis,))
        if axis not in self.mesh.axis_names:
            raise ParallelError(f"the mesh has axes {tuple(self.mesh.axis_names)}, data parallelism needs "
                                f"{axis!r}")
        self.axis = axis
        self.devices = list(self.mesh.devices.flat)
        self.num_devices = int(self.mesh.shape[axis])
        procs = {d.process_index for d in self.devices}
        self.num_processes = len(procs)
        self.multi_process = self.num_processes > 1 or any(d.process_index != jax.process_index()
                                                           for d in self.devices)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    def __repr__(self) -> str:
        return f"DataParallel({self.num_devices} devices over {self.num_processes} process(es))"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataParallel) and other.mesh == self.mesh and other.axis == self.axis

    def __hash__(self) -> int:
        return hash((self.mesh, self.axis))

    def batch_sharding(self, ndim: int, batch_axis: int = 0) -> NamedSharding:
        """The sharding splitting axis ``batch_axis`` of an ``ndim``-d array over the data axis
        (replicated when ``batch_axis`` is negative or ``ndim`` is 0)."""
        if batch_axis < 0 or ndim == 0:
            return self.replicated
        return NamedSharding(self.mesh, PartitionSpec(*([None] * batch_axis), self.axis))

    def check_divisible(self, name: str, size: int, per_process: bool = False) -> None:
        """Raise ParallelError unless ``size`` rows of input ``name`` split evenly over the devices
        (over this process's devices when ``per_process``)."""
        n = self.num_devices // self.num_processes if per_process else self.num_devices
        if size % n:
            where = "this process's" if per_process else "the mesh's"
            raise ParallelError(f"input {name!r}: batch size {size} is not divisible by {where} {n} devices "
                                f"(axis {self.axis!r}); use a batch size that is a multiple of {n}")

    def put_replicated(self, x: Any) -> jax.Array:
        """``x`` copied onto every device of the mesh (the same value on each process)."""
        if self.multi_process:
            return jax.make_array_from_process_local_data(self.replicated, np.asarray(x))
        return jax.device_put(x, self.replicated)

    def put(self, x: Any, sharding: NamedSharding | None = None) -> jax.Array:
        """``x`` (the whole value, the same on each process) placed with ``sharding`` over the mesh
        (replicated when None): each device gets its slice."""
        if sharding is None or sharding.is_fully_replicated:
            return self.put_replicated(x)
        if self.multi_process:
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
        return jax.device_put(x, sharding)

    def put_batch(self, x: Any, batch_axis: int = 0) -> jax.Array:
        """``x`` split along ``batch_axis`` over the data axis.  Several processes: ``x`` is this
        process's share, the global array holds the shares in process order."""
        sharding = self.batch_sharding(np.ndim(x), batch_axis)
        if self.multi_process:
            return jax.make_array_from_process_local_data(sharding, np.asarray(x))
        return jax.device_put(x, sharding)

    def local_part(self, x: jax.Array, batch_axis: int = 0) -> np.ndarray:
        """The rows of a batch-split array this process holds, as NumPy (the whole array in one process)."""
        if x.is_fully_addressable:
            return np.asarray(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        shards = sorted(x.addressable_shards, key=lambda s: s.index[batch_axis].start or 0)
        parts, seen = [], set()
        for s in shards:
            start = s.index[batch_axis].start or 0
            if start not in seen:
                seen.add(start)
                parts.append(np.asarray(s.data))
        return np.concatenate(parts, axis=batch_axis)


# -- model parallelism: partition specs -------------------------------------------------------
def partition_spec(spec: Any) -> PartitionSpec:
    """A PartitionSpec from a PartitionSpec, a tuple/list (entries: an axis name, None, or a tuple of
    names) or its string form ``"(None, 'model')"`` / ``"None,model"`` (parsed without eval).

        >>> tuple(partition_spec(('data', None)))
        ('data', None)
        >>> tuple(partition_spec("model,None"))
        ('model', None)
    """
    if isinstance(spec, PartitionSpec):
        return spec
    if isinstance(spec, (tuple, list)):
        entries = []
        for e in spec:
            if e is None or isinstance(e, str):
                entries.append(e)
            elif isinstance(e, (tuple, list)) and all(isinstance(a, str) for a in e):
                entries.append(tuple(e))
            else:
                raise ParallelError(f"sharding spec {spec!r}: entry {e!r} is not an axis name, None or a "
                                    "tuple of axis names")
        return PartitionSpec(*entries)
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith(("(", "[")) and text.endswith((")", "]")):
            text = text[1:-1]
        entries = []
        for raw in (t.strip() for t in text.split(",")):
            if not raw:
                continue
            name = raw.strip("'\"")
            if name in ("None", ""):
                entries.append(None)
            elif name.replace("_", "").isalnum():
                entries.append(name)
            else:
                raise ParallelError(f"sharding spec {spec!r}: {raw!r} is not an axis name or None")
        return PartitionSpec(*entries)
    raise ParallelError(f"sharding spec {spec!r}: give a PartitionSpec, a tuple such as (None, 'model') "
                        "or its string")


def spec_text(spec: Any) -> str:
    """The canonical string of a spec (what a node's ``__sharding__`` attribute stores).

        >>> spec_text((None, 'model'))
        "(None, 'model')"
    """
    entries = tuple(partition_spec(spec))
    return "(" + ", ".join(repr(e) if e is not None else "None" for e in entries) + ("," if len(entries) == 1 else "") + ")"


def check_spec(spec: Any, shape: Sequence[int], mesh: Mesh, where: str) -> PartitionSpec:
    """``spec`` checked against an array ``shape`` and ``mesh``: every axis exists, no more entries
    than dimensions, every split dimension divisible by its axes' size; ParallelError otherwise.
    Symbolic dimensions (strings such as ``'batch'``) are not checked for divisibility.

        >>> tuple(check_spec(('data', None), ('batch', 3), make_mesh(1), "input 'x'"))
        ('data', None)
    """
    spec = partition_spec(spec)
    sizes = dict(mesh.shape)
    if len(spec) > len(shape):
        raise ParallelError(f"{where}: sharding {tuple(spec)} has {len(spec)} entries for a "
                            f"{len(shape)}-d array of shape {tuple(shape)} (the mesh has {sizes})")
    used: set[str] = set()
    for dim, entry in enumerate(spec):
        if entry is None:
            continue
        axes = (entry,) if isinstance(entry, str) else tuple(entry)
        unknown = [a for a in axes if a not in mesh.axis_names]
        if unknown:
            raise ParallelError(f"{where}: sharding {tuple(spec)} names mesh axes {unknown}, the mesh has "
                                f"{sizes}")
        twice = [a for a in axes if a in used] + [a for i, a in enumerate(axes) if a in axes[:i]]
        if twice:
            raise ParallelError(f"{where}: sharding {tuple(spec)} uses mesh axis {twice[0]!r} twice (the mesh "
                                f"has {sizes})")
        used.update(axes)
        parts = math.prod(mesh.shape[a] for a in axes)
        # a symbolic dimension (a name, or jax.export's symbolic size) is checked when it is bound
        if isinstance(shape[dim], (int, np.integer)) and shape[dim] % parts:
            raise ParallelError(f"{where}: dimension {dim} of shape {tuple(shape)} ({shape[dim]}) does not "
                                f"split evenly over {parts} devices of mesh axes {axes} (sharding "
                                f"{tuple(spec)}, the mesh has {sizes})")
    return spec


def with_sharding(sym: Any, spec: Any) -> Any:
    """A copy of the single-output symbol ``sym`` whose value is constrained to the PartitionSpec ``spec``
    (``mx.sym.with_sharding``): in a Trainer over a mesh with those axes, XLA splits the layer's
    computation accordingly; on one device it changes nothing.  On a variable (a parameter) it is
    ``mx.sym.var(name, sharding=spec)``: a Trainer over a mesh stores that parameter, its gradient and
    its optimizer state split by ``spec`` (see :func:`param_shardings`).

        >>> import xgraph as mx
        >>> fc = with_sharding(mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=8, name='fc'), (None, 'model'))
        >>> fc.attr('__sharding__')
        "(None, 'model')"
        >>> with_sharding(mx.sym.var('fc_weight'), ('model', None)).attr('__sharding__')
        "('model', None)"
    """
    from .symbol import Symbol
    if not isinstance(sym, Symbol):
        raise ParallelError(f"with_sharding needs a Symbol, got {type(sym).__name__}")
    outs = sym.list_outputs()
    if len(outs) != 1:
        raise ParallelError(f"with_sharding needs a symbol of one output, {sym.name!r} has {len(outs)}: {outs}")
    text = spec_text(spec)
    out = copy.copy(sym)
    out._set_attr(__sharding__=text)
    return out


def check_group2ctx(group2ctx: Any, contexts: Sequence[Any] = (), where: str = "group2ctxs") -> dict:
    """MXNet's ``Module(group2ctxs=)``: a dict of ctx_group name → context, or a list of them, one per
    context of the module.  Returns the first context's table, checked
    (:func:`xgraph.placement.resolve_group2ctx`; ``{}`` when there is none).  The executor places each
    group there (MXNet's model parallelism, :mod:`xgraph.placement`).  A module over several contexts
    (data parallel) whose groups land off its first context raises UnsupportedFeatureError: the
    data-parallel step is one XLA program over a mesh, which cannot also place layers.

        >>> import xgraph as mx
        >>> check_group2ctx({'dev1': mx.cpu(0), 'dev2': mx.cpu(0)}, [mx.cpu(0)])
        {'dev1': cpu(0), 'dev2': cpu(0)}
    """
    from .context import as_context
    from .errors import ConfigError, UnsupportedFeatureError
    from .placement import resolve_group2ctx
    if not group2ctx:
        return {}
    tables = list(group2ctx) if isinstance(group2ctx, (list, tuple)) else [group2ctx]
    contexts = [as_context(c) for c in contexts]
    if isinstance(group2ctx, (list, tuple)) and contexts and len(tables) != len(contexts):
        raise ConfigError(f"{where}: {len(tables)} tables for {len(contexts)} contexts {contexts}; give one "
                          "ctx_group -> context dict per context")
    checked = [resolve_group2ctx(t, where) for t in tables]
    if len(contexts) > 1:
        places = {c.device for t in checked for c in t.values()} | {contexts[0].device}
        if len(places) > 1:
            raise UnsupportedFeatureError(
                f"{where} places ctx_groups on {len(places)} devices while the module is data parallel over "
                f"{len(contexts)} contexts {contexts}: its step is one XLA program over a mesh, which cannot also "
                "place layers on devices; use one context with group2ctxs, or mx.sym.with_sharding with "
                "Trainer(devices=mesh) (docs/distributed.md)")
    return checked[0]


def param_shardings(mesh: Mesh | None, shapes: Mapping[str, Sequence[int]],
                    attrs: Mapping[str, Mapping[str, str]] | None = None, given: Mapping[str, Any] | None = None,
                    inputs: Sequence[str] = ()) -> dict[str, NamedSharding]:
    """How the stored parameters are split over ``mesh``: ``{name: NamedSharding}`` for every parameter
    that is not replicated.

    A parameter's spec is ``given[name]`` (a Trainer's ``param_shardings``), else its variable's
    ``__sharding__`` attribute (``attrs`` as :meth:`Symbol.attr_dict` gives them; set by
    ``mx.sym.var(name, sharding=spec)`` or ``with_sharding`` on the variable).  ``shapes`` holds
    every parameter (arguments that are not ``inputs``, and auxiliary states).  Each spec is checked
    against its shape and the mesh (:func:`check_spec`); ``given`` naming something that is not a
    parameter, or any spec on one of the ``inputs``, raises ParallelError.  Without a mesh (one
    device) the names and specs are checked and nothing is split: the result is ``{}``.

        >>> sh = param_shardings(make_mesh(1, ('data', 'model'), (1, 1)), {'w': (4, 2), 'b': (4,)},
        ...                      given={'w': ('model', None)})
        >>> {n: tuple(s.spec) for n, s in sh.items()}
        {'w': ('model', None)}
    """
    given = dict(given or {})
    inputs = set(inputs)
    for name in given:
        if name in inputs:
            raise ParallelError(f"param_shardings: {name!r} is an input, not a parameter; inputs are split "
                                f"along their batch axis over the mesh's {DATA_AXIS!r} axis")
        if name not in shapes:
            raise ParallelError(f"param_shardings: {name!r} is not a parameter of the symbol; its parameters are "
                                f"{sorted(shapes)}")
    for name, table in (attrs or {}).items():
        if name in inputs and table.get("__sharding__"):
            raise ParallelError(f"variable {name!r} carries a sharding {table['__sharding__']} but is an input; "
                                f"inputs are split along their batch axis over the mesh's {DATA_AXIS!r} axis")
    out: dict[str, NamedSharding] = {}
    for name, shape in shapes.items():
        spec = given.get(name, (attrs or {}).get(name, {}).get("__sharding__"))
        if spec is None:
            continue
        spec = partition_spec(spec)
        if mesh is None or all(e is None for e in spec):
            continue
        where = f"parameter {name!r} of shape {tuple(shape)}"
        out[name] = NamedSharding(mesh, check_spec(spec, shape, mesh, where))
    return out


def to_host(x: Any) -> np.ndarray:
    """The whole value of ``x`` as NumPy, gathered from its shards (over every process when it spans
    several: then every process must call it, as it is a collective).

        >>> to_host(jax.numpy.arange(3)).tolist()
        [0, 1, 2]
    """
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return np.asarray(x)
    if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
    from jax.experimental import multihost_utils
    with peer_failures("gathering a split array"):
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def to_device(x: jax.Array, device: Any) -> jax.Array:
    """A fresh, whole copy of ``x`` on ``device`` (gathered from its shards; a replica's copy when
    replicated), never sharing a buffer with ``x`` (so donating ``x`` later leaves it intact).

        >>> to_device(jax.numpy.ones(2), jax.devices()[0]).shape
        (2,)
    """
    if x.is_fully_replicated:
        x = x.addressable_data(0)
    elif not x.is_fully_addressable:
        x = to_host(x)
    return jax.device_put(x, device, may_alias=False)


_MESH: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("xgraph_mesh", default=None)


@contextlib.contextmanager
def use_mesh(mesh: Mesh | None) -> Iterator[Mesh | None]:
    """Make ``mesh`` the one :func:`constrain` (the ``with_sharding`` lowering) shards over.

        >>> with use_mesh(make_mesh(1)) as m:
        ...     current_mesh() is m
        True
    """
    token = _MESH.set(mesh)
    try:
        yield mesh
    finally:
        _MESH.reset(token)


def current_mesh() -> Mesh | None:
    """The mesh of the innermost :func:`use_mesh`, or None."""
    return _MESH.get()


def constrain(x: jax.Array, spec: Any, where: str) -> jax.Array:
    """``jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))`` under the current mesh;
    ``x`` unchanged when there is no mesh (one device)."""
    mesh = current_mesh()
    if mesh is None:
        return x
    spec = check_spec(spec, x.shape, mesh, where)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


# -- several processes ---------------------------------------------------------------------------
_ENV_ADDRESS = (("JAX_COORDINATOR_ADDRESS", None), ("DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT"))
_ENV_COUNT = ("JAX_NUM_PROCESSES", "DMLC_NUM_WORKER")
_ENV_ID = ("JAX_PROCESS_ID", "DMLC_WORKER_ID", "DMLC_RANK")
_state: dict[str, Any] = {"initialized": False}


def _env_int(names: Sequence[str], env: dict) -> tuple[int | None, str | None]:
    for n in names:
        if env.get(n, "") != "":
            try:
                return int(env[n]), n
            except ValueError:
                raise DistributedError(f"environment variable {n}={env[n]!r} is not an integer") from None
    return None, None


def settings_from_env(env: dict | None = None) -> dict[str, Any]:
    """``coordinator_address``, ``num_processes``, ``process_id`` from JAX's variables
    (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) or MXNet's
    (``DMLC_PS_ROOT_URI`` + ``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_WORKER``, ``DMLC_WORKER_ID``); missing ones are None.

        >>> settings_from_env({'DMLC_PS_ROOT_URI': '10.0.0.1', 'DMLC_PS_ROOT_PORT': '9000',
        ...                    'DMLC_NUM_WORKER': '2', 'DMLC_WORKER_ID': '1'})
        {'coordinator_address': '10.0.0.1:9000', 'num_processes': 2, 'process_id': 1}
    """
    env = dict(os.environ if env is None else env)
    address = None
    for host, port in _ENV_ADDRESS:
        if env.get(host):
            if port is None:
                address = env[host]
            elif env.get(port):
                address = f"{env[host]}:{env[port]}"
            else:
                raise DistributedError(f"{host}={env[host]!r} is set but {port} is not")
            break
    count, _ = _env_int(_ENV_COUNT, env)
    pid, _ = _env_int(_ENV_ID, env)
    return {"coordinator_address": address, "num_processes": count, "process_id": pid}


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedError(f"coordinator address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _wait_reachable(address: str, timeout: float) -> None:
    """Poll the coordinator's port until it accepts a TCP connection, else DistributedError."""
    host, port = _split_address(address)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, max(timeout, 0.1))):
                return
        except OSError as e:
            last = e
        if time.monotonic() >= deadline:
            raise DistributedError(f"the coordinator at {address} is unreachable after {timeout:g} s "
                                   f"({last}); is process 0 running and listening there?")
        time.sleep(0.1)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids: Any = None, timeout: float = 60.0,
               heartbeat_timeout: int = 20) -> None:
    """Join a multi-process run (``jax.distributed.initialize``), before any computation.

    Arguments left None come from the environment (:func:`settings_from_env`).
    Process 0 hosts the coordinator; the others wait up to ``timeout`` seconds
    for it, then raise DistributedError.  A process that dies makes the others
    stop within about ``heartbeat_timeout`` seconds (JAX's coordination service
    terminates them with "another task died") instead of hanging in a collective.
    One process (``num_processes == 1``) is a no-op (and :func:`is_initialized` stays False).

        >>> initialize(num_processes=1); num_workers(), rank()
        (1, 0)
    """
    if _state["initialized"]:
        raise DistributedError("xgraph.distributed.initialize was already called in this process")
    env = settings_from_env()
    address = coordinator_address or env["coordinator_address"]
    count = num_processes if num_processes is not None else env["num_processes"]
    pid = process_id if process_id is not None else env["process_id"]
    if count is None:
        raise DistributedError("initialize: the number of processes is unknown; pass num_processes= or set "
                               "JAX_NUM_PROCESSES / DMLC_NUM_WORKER")
    count = int(count)
    if count < 1:
        raise DistributedError(f"initialize: num_processes={count}, expected at least 1")
    if count == 1:
        return
    if pid is None or address is None:
        missing = [n for n, v in (("process_id (JAX_PROCESS_ID / DMLC_WORKER_ID)", pid),
                                  ("coordinator_address (JAX_COORDINATOR_ADDRESS / DMLC_PS_ROOT_URI+PORT)",
                                   address)) if v is None]
        raise DistributedError(f"initialize: {count} processes but {' and '.join(missing)} not given")
    pid = int(pid)
    if not 0 <= pid < count:
        raise DistributedError(f"initialize: process_id {pid} is outside 0..{count - 1} ({count} processes)")
    _split_address(address)
    if pid != 0:
        _wait_reachable(address, timeout)
    try:
        jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=pid,
                                   local_device_ids=local_device_ids,
                                   initialization_timeout=max(1, int(math.ceil(timeout))),
                                   heartbeat_timeout_seconds=int(heartbeat_timeout))
    except RuntimeError as e:   # jax raises RuntimeError for "must be called before any computation"
        raise DistributedError(f"initialize (process {pid} of {count}, coordinator {address}): {e}") from None
    _state["initialized"] = True


#: words of JAX's runtime errors when a collective loses a process (gloo's closed TCP pairs, the
#: coordination service's missed heartbeats and failed barriers)
_PEER_SIGNS = ("gloo", "connection closed", "connection reset", "connection refused", "heartbeat",
               "coordination service", "barrier", "another task", "unavailable")


@contextlib.contextmanager
def peer_failures(what: str) -> Iterator[None]:
    """Inside a multi-process run, turn the runtime error of a collective that lost a process (its peer
    died: gloo's connection closed, a missed heartbeat) into a :class:`DistributedError` naming ``what``,
    this process and the count, instead of JAX's ``JaxRuntimeError``.  Other errors pass unchanged.

        >>> with peer_failures("step"):      # one process: nothing to translate
        ...     1 + 1
        2
    """
    try:
        yield
    except jax.errors.JaxRuntimeError as exc:
        text = " ".join(str(exc).split())
        if jax.process_count() <= 1 or not any(w in text.lower() for w in _PEER_SIGNS):
            raise
        raise DistributedError(
            f"{what} failed in process {jax.process_index()} of {jax.process_count()}: a collective lost "
            f"contact with another process, which has most likely died (see its output; a launcher such as "
            f"tools/launch.py reports which); JAX said: {text[:400]}") from None


def is_initialized() -> bool:
    """True after :func:`initialize` joined a run of several processes."""
    return bool(_state["initialized"])


def shutdown() -> None:
    """Leave the multi-process run (``jax.distributed.shutdown``); a no-op when not initialized."""
    if _state["initialized"]:
        jax.distributed.shutdown()
    _state["initialized"] = False


def rank() -> int:
    """This process's index (0 without :func:`initialize`)."""
    return jax.process_index()


def num_workers() -> int:
    """How many processes take part (1 without :func:`initialize`)."""
    return jax.process_count()


def barrier(name: str = "xgraph_barrier") -> None:
    """Wait until every process reaches the barrier of the same ``name`` (a no-op in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        with peer_failures(f"barrier {name!r}"):
            multihost_utils.sync_global_devices(name)


def check_same_everywhere(what: str, description: Mapping[str, Any]) -> None:
    """Raise ParallelError on every process unless every process passes the same ``description``
    (``{key: JSON-able value}``: parameter shapes, input shapes, the mesh): processes that build
    different programs would otherwise hang or fail deep inside a collective.  The message lists
    each differing key with every rank's value.  A no-op in one process.

        >>> check_same_everywhere("Trainer", {"param 'w'": [4, 2]})
    """
    if jax.process_count() == 1:
        return
    import json
    from jax.experimental import multihost_utils
    blob = np.frombuffer(json.dumps(dict(description), sort_keys=True, default=str).encode(), np.uint8)
    with peer_failures(f"{what}: comparing the processes' settings"):
        sizes = np.asarray(multihost_utils.process_allgather(np.array([blob.size], np.int64), tiled=False)).ravel()
        padded = np.zeros(int(sizes.max()), np.uint8)
        padded[:blob.size] = blob
        every = np.asarray(multihost_utils.process_allgather(padded, tiled=False))
    tables = [json.loads(bytes(row[:int(n)]).decode()) for row, n in zip(every, sizes)]
    keys = sorted(set().union(*tables))
    differ = [k for k in keys if any(t.get(k) != tables[0].get(k) for t in tables)]
    if differ:
        shown = "; ".join(f"{k}: " + ", ".join(f"rank {r} {t.get(k, 'missing')}" for r, t in enumerate(tables))
                          for k in differ[:6])
        more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
        raise ParallelError(f"{what}: the {len(tables)} processes disagree on {len(differ)} setting(s), so they "
                            f"would not run one program: {shown}{more}")


def allreduce_host(x: Any) -> np.ndarray:
    """The sum of ``x`` over every process, as NumPy on every process (``x`` itself in one process).

    Shapes must agree across processes; this is the KVStore's cross-worker reduction.
    """
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x
    from jax.experimental import multihost_utils
    if x.ndim > 15:
        raise ParallelError(f"allreduce: {x.ndim}-d arrays are not supported (at most 15 dimensions)")
    head = np.full(16, -1, np.int64)
    head[0], head[1:1 + x.ndim] = x.ndim, x.shape
    with peer_failures("allreduce"):
        heads = np.asarray(multihost_utils.process_allgather(head, tiled=False))
    shapes = [tuple(int(d) for d in h[1:1 + int(h[0])]) for h in heads]
    if any(s != x.shape for s in shapes):
        raise ParallelError(f"allreduce: the processes hold different shapes "
                            f"{ {r: s for r, s in enumerate(shapes)} } (by rank)")
    with peer_failures("allreduce"):
        gathered = np.asarray(multihost_utils.process_allgather(x, tiled=False))
    return gathered.sum(axis=0).astype(x.dtype)
