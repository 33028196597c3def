"""Devices, MXNet style: ``xgraph.cpu()``, ``xgraph.gpu(1)``, each naming one JAX device.

A context is only a name until it is used; using one that does not exist
raises :class:`~xgraph.errors.DeviceError` saying which devices there are.

    >>> import xgraph as mx
    >>> mx.cpu().device.platform
    'cpu'
"""
from __future__ import annotations

import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .dtypes import canonical as canonical_dtype
from .errors import DeviceError

_PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "cpu_pinned": "cpu", "cpu_shared": "cpu", "tpu": "tpu"}


class Context:
    """A device: its type (``cpu``, ``gpu``, ``tpu``) and index."""

    _local = threading.local()
    devtype2str = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
    devstr2type = {v: k for k, v in devtype2str.items()}

    def __init__(self, device_type: "str | Context" = "cpu", device_id: int = 0):
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        if device_type not in _PLATFORMS:
            raise DeviceError(f"unknown device type {device_type!r}; use one of {', '.join(_PLATFORMS)}")
        self.device_type = device_type
        self.device_id = int(device_id)
        self._old: Context | None = None

    @property
    def device(self) -> Any:
        """The JAX device this context names (this process's ``device_id``-th device of the platform, as
        MXNet's contexts are per process); raises DeviceError if there is none."""
        platform = _PLATFORMS[self.device_type]
        try:
            devs = jax.local_devices(backend=platform)
        except RuntimeError:
            devs = []
        if self.device_id >= len(devs) or self.device_id < 0:
            have = ", ".join(f"{d.platform}({d.id})" for d in jax.devices()) or "none"
            raise DeviceError(f"device {self} does not exist: {len(devs)} {platform} device(s) found; "
                              f"available: {have}")
        return devs[self.device_id]

    @classmethod
    def from_device(cls, device: Any) -> "Context":
        """The context naming a JAX device of this process."""
        kind = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}.get(device.platform, "cpu")
        local = [d.id for d in jax.local_devices(backend=device.platform)]
        if device.id not in local:
            raise DeviceError(f"{device} belongs to process {device.process_index}, not to this process "
                              f"({jax.process_index()}): a context names a device of its own process")
        idx = local.index(device.id)
        return cls(kind, idx)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and (self.device_type, self.device_id) == (other.device_type, other.device_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    def __enter__(self) -> "Context":
        self._old = current_context()
        Context._local.value = self
        return self

    def __exit__(self, *exc: Any) -> None:
        Context._local.value = self._old

    @staticmethod
    def default_ctx() -> "Context":
        return current_context()


def cpu(device_id: int = 0) -> Context:
    """The ``device_id``-th CPU device."""
    return Context("cpu", device_id)


def gpu(device_id: int = 0) -> Context:
    """The ``device_id``-th GPU; using it without such a GPU raises DeviceError."""
    return Context("gpu", device_id)


def cpu_pinned(device_id: int = 0) -> Context:
    """MXNet's pinned host memory; on XLA an ordinary CPU device."""
    return Context("cpu_pinned", device_id)


def num_gpus() -> int:
    """How many GPUs JAX sees."""
    try:
        return len(jax.devices("gpu"))
    except RuntimeError:
        return 0


def current_context() -> Context:
    """The context set by ``with ctx:``, else the first CPU."""
    cur = getattr(Context._local, "value", None)
    return cur if cur is not None else Context("cpu", 0)


def as_context(ctx: Any) -> Context:
    """Accept a Context, a JAX device, a list of contexts (the first is used) or None."""
    if ctx is None:
        return current_context()
    if isinstance(ctx, (list, tuple)):
        if not ctx:
            return current_context()
        ctx = ctx[0]
    if isinstance(ctx, Context):
        return ctx
    if hasattr(ctx, "platform") and hasattr(ctx, "id"):
        return Context.from_device(ctx)
    if isinstance(ctx, str):
        kind, _, rest = ctx.partition("(")
        return Context(kind, int(rest.rstrip(")") or 0))
    raise DeviceError(f"{ctx!r} is not a context")


def device_array(value: Any, dtype: Any = None, device: Any = None) -> jax.Array:
    """``value`` (an NDArray, jax array, numpy array, list or scalar) as a ``jax.Array`` of ``dtype`` on ``device``.

    Host data is cast by numpy and copied over with ``jax.device_put``: ``jnp.asarray`` would compile a
    conversion program for every new shape, which dominates scripts that make many small arrays.

        >>> device_array([1, 2], 'int8').dtype
        dtype('int8')
    """
    if callable(getattr(value, "__jax_array__", None)):   # an NDArray
        value = value.__jax_array__()
    dt = None if dtype is None else canonical_dtype(dtype)
    if isinstance(value, jax.Array):
        out = value if dt is None or value.dtype == dt else value.astype(dt)
        return out if device is None else jax.device_put(out, device)
    if not isinstance(value, (np.ndarray, np.generic, list, tuple)):
        out = jnp.asarray(value, dtype=dt)   # Python scalars keep JAX's weak types
        return out if device is None else jax.device_put(out, device)
    host = np.asarray(value)
    host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype if dt is None else dt), copy=False)
    return jax.device_put(host, device)
