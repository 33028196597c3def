"""Compilation caches: JAX's persistent XLA cache, and xgraph's own cache of exported programs.

:func:`set_cache_dir` (or the ``XGRAPH_CACHE_DIR`` environment variable, read
when xgraph is imported) switches on two caches under one folder:

* ``<dir>/jax``: JAX's persistent compilation cache, with its minimum compile
  time and minimum entry size lowered so that small programs are cached too;
  a second process skips XLA compilation.
* ``<dir>/exports``: serialized ``jax.export`` modules keyed on the graph's
  structural hash and the :class:`~xgraph.program.ProgramSignature`; a second
  process skips the pass pipeline, tracing and lowering as well.

:func:`cached_export` is the entry point for :func:`xgraph.export`; it also
keeps exported programs in memory for the life of the process.  Executors
(``bind``/``simple_bind``) use only the first cache: a second process skips
XLA compilation but traces and lowers again.  Disk entries are keyed with
:func:`~xgraph.program.code_fingerprint`, so a changed xgraph never reads
programs an older one wrote.

Several processes may share one folder.  xgraph's entries are written to a
temporary file and renamed into place, and carry a SHA-256 of their payload:
a reader sees a complete entry or none, and an entry damaged any other way is
rebuilt (``cache_stats()['damaged']``).  JAX writes its own entries in place;
a reader that catches one half-written fails to decompress it, warns and
compiles again, so results stay right there too.

    >>> import tempfile, xgraph as mx
    >>> from xgraph.cache import cached_export, cache_stats
    >>> from xgraph.program import ProgramSignature, TensorSpec
    >>> mx.set_cache_dir(tempfile.mkdtemp())
    >>> g = mx.sym.relu(mx.sym.var('x')).graph
    >>> sig = ProgramSignature(args=(TensorSpec('x', 'input', (2,), 'float32'),))
    >>> _ = cached_export(g, sig); _ = cached_export(g, sig); cache_stats()['memory_hits'] >= 1
    True
    >>> mx.set_cache_dir(None)
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any, Callable, Mapping

import jax

from .errors import XGraphError
from .graph import Graph
from .io.atomic import atomic_write_bytes, atomic_write_text
from .program import ProgramSignature, code_fingerprint, export_program

ENV_VAR = "XGRAPH_CACHE_DIR"
_lock = threading.Lock()
_state: dict[str, Any] = {"dir": None}
_memory: dict[str, jax.export.Exported] = {}
_json_memory: dict[str, str] = {}
_stats = {"memory_hits": 0, "disk_hits": 0, "misses": 0, "disk_writes": 0, "damaged": 0}


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Cache compiled programs under ``path`` (created if needed); ``None`` switches caching off.

        >>> import tempfile, xgraph as mx
        >>> mx.set_cache_dir(tempfile.mkdtemp()); mx.set_cache_dir(None)
    """
    if path is None:
        with _lock:
            _state["dir"] = None
        jax.config.update("jax_compilation_cache_dir", None)
        _reset_jax_cache()
        return
    root = os.path.abspath(os.fspath(path))
    try:
        os.makedirs(os.path.join(root, "jax"), exist_ok=True)
        os.makedirs(os.path.join(root, "exports"), exist_ok=True)
    except OSError as exc:
        raise XGraphError(f"cannot use {root!r} as the cache folder: {exc.strerror or exc}") from None
    with _lock:
        _state["dir"] = root
    jax.config.update("jax_compilation_cache_dir", os.path.join(root, "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # -1: no minimum entry size at all (0 would let JAX substitute a filesystem-dependent minimum)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _reset_jax_cache()


def _reset_jax_cache() -> None:
    """Make a new cache folder take effect mid-process.

    JAX opens its persistent cache once, on the first compile; only its
    internal ``reset_cache`` reopens it (no public API does).  Without it
    (a JAX that moved it), the folder set before the first compile is used.
    """
    try:
        from jax._src import compilation_cache as _cc
    except ImportError:  # pragma: no cover - depends on the installed JAX
        return
    reset = getattr(_cc, "reset_cache", None)
    if reset is not None:
        reset()


def cache_dir() -> str | None:
    """The active cache folder, or None when caching is off."""
    return _state["dir"]


def init_from_env() -> None:
    """Apply ``XGRAPH_CACHE_DIR`` when it is set (xgraph calls this on import)."""
    path = os.environ.get(ENV_VAR)
    if path:
        set_cache_dir(path)


def cache_stats() -> dict[str, int]:
    """Counters of :func:`cached_export`: memory hits, disk hits, misses (built), disk writes and
    damaged disk entries (torn or corrupt: rebuilt)."""
    return dict(_stats)


def clear_memory_cache() -> None:
    """Forget the exported programs held in memory (the disk cache stays)."""
    with _lock:
        _memory.clear()
        _json_memory.clear()


def export_path(graph: Graph, signature: ProgramSignature) -> str | None:
    """Where the disk cache keeps this program, or None when caching is off."""
    root = cache_dir()
    if root is None:
        return None
    return os.path.join(root, "exports", f"{graph.structural_hash()[:32]}-{signature.key()[:32]}.jaxexport")


def cached_json(kind: str, key: str, build: Callable[[], Any]) -> Any:
    """A JSON-serializable value cached in memory and (when caching is on) on disk under ``kind-key``.

    Export uses it for the shapes inference gives its variables, so a warm
    process skips shape inference as well.  A damaged entry is rebuilt.

        >>> from xgraph.cache import cached_json
        >>> cached_json('demo', 'k1', lambda: {'a': [1, 2]})
        {'a': [1, 2]}
    """
    mem_key = f"{kind}-{key}"
    with _lock:
        if mem_key in _json_memory:
            return json.loads(_json_memory[mem_key])
    root = cache_dir()
    disk_key = hashlib.sha256((key + code_fingerprint()).encode()).hexdigest()   # stale after a code change
    path = None if root is None else os.path.join(root, "exports", f"{kind}-{disk_key[:48]}.json")
    text = None
    if path is not None and os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            json.loads(text)
        except (OSError, ValueError):
            text = None
    if text is None:
        text = json.dumps(build(), sort_keys=True)
        if path is not None:
            try:
                atomic_write_text(path, text)
            except OSError:
                pass
    with _lock:
        _json_memory[mem_key] = text
    return json.loads(text)


#: disk entries are this tag, the payload's SHA-256, then the serialized module: a torn or damaged
#: entry (a filesystem without atomic renames, a disk error) is detected and rebuilt, never deserialized
_ENTRY_MAGIC = b"xgraph-export-cache-1\n"


def _read_entry(path: str) -> jax.export.Exported | None:
    """The module in a disk entry, or None when it is absent, torn or damaged (counted in ``damaged``)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head, digest, blob = data[:len(_ENTRY_MAGIC)], data[len(_ENTRY_MAGIC):len(_ENTRY_MAGIC) + 32], \
        data[len(_ENTRY_MAGIC) + 32:]
    if head != _ENTRY_MAGIC or hashlib.sha256(blob).digest() != digest:
        _stats["damaged"] += 1
        return None
    try:
        exported = jax.export.deserialize(bytearray(blob))
    except Exception:  # noqa: BLE001 - an entry of another jax is rebuilt, never trusted
        _stats["damaged"] += 1
        return None
    _stats["disk_hits"] += 1
    return exported


def cached_export(graph: Graph, signature: ProgramSignature,
                  constants: Mapping[str, Any] | None = None) -> jax.export.Exported:
    """The ``jax.export.Exported`` of ``graph`` for ``signature``: from memory, from disk, or built.

    A program read back from disk skips the pass pipeline, tracing and
    lowering; an unreadable cache file is rebuilt and overwritten.
    ``constants`` are frozen parameter values (their digest must be in the signature).
    """
    key = graph.structural_hash() + signature.key()
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            _stats["memory_hits"] += 1
            return hit
    path = export_path(graph, signature)
    exported = _read_entry(path) if path is not None else None
    if exported is None:
        _stats["misses"] += 1
        exported = export_program(graph, signature, constants)
        if path is not None:
            blob = bytes(exported.serialize())
            try:
                atomic_write_bytes(path, _ENTRY_MAGIC + hashlib.sha256(blob).digest() + blob)
                _stats["disk_writes"] += 1
            except OSError:
                pass  # a read-only cache folder only costs speed
    with _lock:
        _memory.setdefault(key, exported)
    return exported


__all__ = ["set_cache_dir", "cache_dir", "init_from_env", "cached_export", "cached_json", "cache_stats",
           "clear_memory_cache", "export_path", "ENV_VAR"]
