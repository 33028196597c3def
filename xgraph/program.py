"""Exportable programs: a graph as a flat JAX function over named tensors, exported with ``jax.export``.

A :class:`ProgramSignature` says everything that decides the exported module:
the call arguments in order (inputs, parameters, auxiliary states, a seed),
label variables filled with zeros at inference, parameters baked in as
constants, the mode (inference or a training step), the platforms and the
optimization level.  :func:`export_program` builds the function from the
graph's :class:`~xgraph.lower.GraphFunction` programs (the same the executor
runs) and exports it.  Dimensions given as strings (``'batch'``) are symbolic,
so one module serves every size.  A signature with a ``mesh`` is lowered over
that many devices, each call argument placed with its PartitionSpec (and each
result, where the signature asks), and ``mx.sym.with_sharding`` constraints
inside the graph are kept.

    >>> import xgraph as mx
    >>> from xgraph.program import ProgramSignature, TensorSpec, export_program
    >>> g = mx.sym.relu(mx.sym.var('x')).graph
    >>> sig = ProgramSignature(args=(TensorSpec('x', 'input', ('n', 3), 'float32'),))
    >>> [str(d) for d in export_program(g, sig).out_avals[0].shape]
    ['n', '3']
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from .dtypes import canonical
from .errors import ArtifactError, ShapeError, XGraphError
from .graph import Graph
from .parallel import partition_spec
from .lower import GradientPrograms, GraphFunction, gradient_programs, inference_program

Dim = Any  # an int, or a str naming a symbolic dimension
KINDS = ("input", "arg", "aux", "seed")
PLATFORM_ALIASES = {"gpu": "cuda", "cpu": "cpu", "cuda": "cuda", "rocm": "rocm", "tpu": "tpu"}


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor of the program: ``kind`` is input, arg (a parameter), aux or seed."""

    name: str
    kind: str
    shape: tuple
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ProgramSignature:
    """What decides an exported program; its :meth:`key` names it in caches.

    ``args`` are the call arguments in order; ``filled`` the arguments the
    program fills with zeros (labels at inference); ``constants`` the
    parameters baked in (their values' digest is part of ``constants_digest``).
    ``mode`` is ``'infer'`` or ``'train'`` (a plain SGD step with ``learning_rate``).
    ``mesh`` is empty (one device) or the mesh's ``((axis name, size), ...)``;
    ``shardings`` then holds the PartitionSpec string of each call argument
    (:func:`xgraph.parallel.spec_text`), aligned with ``args``, and
    ``result_shardings`` that of each result (None: XLA chooses; empty: all do).
    """

    args: tuple = ()
    filled: tuple = ()
    constants: tuple = ()
    constants_digest: str = ""
    mode: str = "infer"
    learning_rate: float = 0.0
    platforms: tuple = ("cpu",)
    opt_level: int = 0
    mesh: tuple = ()
    shardings: tuple = ()
    result_shardings: tuple = ()

    def key(self) -> str:
        """A SHA-256 naming this signature, with the jax version and xgraph's code (which decide the lowering)."""
        blob = json.dumps([asdict(self), jax.__version__, code_fingerprint()], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """A SHA-256 over xgraph's own source files: on-disk caches from other code are never served.

    A version number would not do: a changed lowering during development keeps it.

        >>> len(code_fingerprint())
        64
    """
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            h.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def constants_digest(values: Mapping[str, Any]) -> str:
    """A SHA-256 over parameter names, shapes, dtypes and bytes (for frozen-parameter cache keys)."""
    h = hashlib.sha256()
    for name in sorted(values):
        a = np.ascontiguousarray(np.asarray(values[name]))
        h.update(repr((name, a.shape, a.dtype.name)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def normalize_platforms(platforms: Any) -> tuple[str, ...]:
    """``('cpu', 'gpu')`` → ``('cpu', 'cuda')``; unknown names raise :class:`ArtifactError`."""
    if isinstance(platforms, str):
        platforms = (platforms,)
    out = []
    for p in platforms:
        q = PLATFORM_ALIASES.get(str(p).lower())
        if q is None:
            raise ArtifactError(f"unknown platform {p!r}; choose from cpu, cuda (gpu), rocm, tpu")
        if q not in out:
            out.append(q)
    if not out:
        raise ArtifactError("give at least one platform")
    return tuple(out)


def optimize_graph(graph: Graph, opt_level: int, for_training: bool = False) -> Graph:
    """Run the pass pipeline of ``opt_level`` (:func:`xgraph.passes.optimize`) before export.

    Rewrites that need bound parameter values (BatchNorm folding) do not run here.
    """
    if opt_level <= 0:
        return graph
    from . import passes
    optimized = passes.optimize(graph, opt_level, for_training=for_training).graph
    # the signature feeds variables by name: keep the pipeline's result only if it reads the same ones
    names = lambda g: sorted(n.name for n in g.variables())  # noqa: E731
    return optimized if names(optimized) == names(graph) else graph


def abstract_args(specs: tuple, constraints: tuple = ()) -> list[jax.ShapeDtypeStruct]:
    """``ShapeDtypeStruct`` for each spec; string dimensions share one symbolic scope
    (with ``constraints`` such as ``'mod(batch, 4) == 0'``)."""
    scope = jax.export.SymbolicScope(constraints)
    out = []
    for s in specs:
        if any(isinstance(d, str) for d in s.shape):
            shape = jax.export.symbolic_shape(", ".join(str(d) for d in s.shape), scope=scope)
        else:
            shape = tuple(int(d) for d in s.shape)
        out.append(jax.ShapeDtypeStruct(shape, canonical(s.dtype)))
    return out


def _symbol_sizes(specs: tuple, values: tuple) -> dict[str, Any]:
    """The traced size of every named dimension, read off the call arguments."""
    sizes: dict[str, Any] = {}
    for s, v in zip(specs, values):
        for d, actual in zip(s.shape, v.shape):
            if isinstance(d, str):
                sizes.setdefault(d, actual)
    return sizes


def build_function(graph: Graph, sig: ProgramSignature, constants: Mapping[str, Any] | None = None):
    """The flat function ``(*args) -> (*outputs[, *new params, *new aux])`` the signature describes.

    Over a mesh the graph's programs are built afresh rather than taken from the
    program cache: a cached jitted program keeps the trace it made without a
    mesh, which would drop the ``with_sharding`` constraints.
    """
    gf = GraphFunction(graph, is_train=sig.mode == "train")
    consts = {k: np.asarray(v) for k, v in (constants or {}).items()}
    trained = [s.name for s in sig.args if s.kind == "arg" and jnp.issubdtype(canonical(s.dtype), jnp.inexact)]

    def gather(values: tuple):
        by_name = {s.name: v for s, v in zip(sig.args, values)}
        sizes = _symbol_sizes(sig.args, values)
        for s in sig.filled:
            shape = tuple(sizes[d] if isinstance(d, str) else d for d in s.shape)
            by_name[s.name] = jnp.zeros(shape, canonical(s.dtype))
        for name, value in consts.items():
            by_name[name] = jnp.asarray(value)
        seed = next((v for s, v in zip(sig.args, values) if s.kind == "seed"), None)
        key = None
        if gf.needs_rng:
            key = jax.random.key(0) if seed is None else jax.random.key(seed)
        args = tuple(by_name[n] for n in gf.arg_names)
        aux = tuple(by_name[n] for n in gf.aux_names)
        return by_name, args, aux, key

    if sig.mode == "infer":
        program = inference_program(graph) if not sig.mesh else (lambda args, aux, key: gf(args, aux, key)[0])

        def infer_fn(*values):
            _, args, aux, key = gather(values)
            return tuple(program(args, aux, key))
        return infer_fn

    mask = tuple(n in trained for n in gf.arg_names)
    if not any(mask):
        raise ArtifactError("a training-step export needs at least one floating-point parameter in arg_params")
    grads_prog = gradient_programs(graph, mask) if not sig.mesh else GradientPrograms(graph, mask)
    lr = sig.learning_rate

    def train_fn(*values):
        by_name, args, aux, key = gather(values)
        outs, new_aux, grads = grads_prog.step(args, aux, key, None, None)
        grad_of = dict(zip([n for n, m in zip(gf.arg_names, mask) if m], grads))
        new_params = tuple((by_name[n] - jnp.asarray(lr, by_name[n].dtype) * grad_of[n]).astype(by_name[n].dtype)
                           for n in trained)
        return (*outs, *new_params, *new_aux)
    return train_fn


def signature_mesh(sig: ProgramSignature) -> Any:
    """The mesh a signature is lowered over, or None: a ``jax.sharding.AbstractMesh`` of its axes, so
    a program for 8 devices is exported on a machine with one (as for another platform).

        >>> dict(signature_mesh(ProgramSignature(mesh=(('data', 4), ('model', 2)))).shape)
        {'data': 4, 'model': 2}
    """
    if not sig.mesh:
        return None
    names, sizes = (tuple(t) for t in zip(*sig.mesh))
    auto = getattr(jax.sharding, "AxisType", None)   # newer jax makes Explicit axes by default;
    try:                                               # with_sharding_constraint needs Auto ones
        if auto is not None:
            return jax.sharding.AbstractMesh(sizes, names, axis_types=(auto.Auto,) * len(names))
        return jax.sharding.AbstractMesh(sizes, names)
    except TypeError:       # a jax whose AbstractMesh takes other arguments: lay the mesh over local devices
        from .parallel import make_mesh
        return make_mesh(math.prod(sizes), names, sizes)


def split_constraints(specs: tuple, shardings: tuple, mesh: Any) -> tuple[str, ...]:
    """``'mod(batch, 4) == 0'`` for every symbolic dimension split over mesh axes of 4 devices:
    jax.export needs to know the split is even.

        >>> from xgraph.parallel import make_mesh
        >>> split_constraints((TensorSpec('x', 'input', ('n', 3), 'float32'),), ("('data',)",), make_mesh(1))
        ()
    """
    out = []
    for s, text in zip(specs, shardings):
        for d, entry in zip(s.shape, partition_spec(text)):
            if isinstance(d, str) and entry is not None:
                parts = math.prod(mesh.shape[a] for a in ((entry,) if isinstance(entry, str) else entry))
                if parts > 1 and f"mod({d}, {parts}) == 0" not in out:
                    out.append(f"mod({d}, {parts}) == 0")
    return tuple(out)


def export_program(graph: Graph, sig: ProgramSignature, constants: Mapping[str, Any] | None = None
                   ) -> jax.export.Exported:
    """Optimize (per ``sig.opt_level``), trace and lower the graph into a ``jax.export.Exported``.

    Errors name what failed: an op that cannot take a symbolic dimension raises
    :class:`ShapeError` naming the node and the dimension.
    """
    graph = optimize_graph(graph, sig.opt_level, for_training=sig.mode == "train")
    fn = build_function(graph, sig, constants)
    mesh = signature_mesh(sig)
    try:
        if mesh is None:
            return jax.export.export(jax.jit(fn), platforms=sig.platforms)(*abstract_args(sig.args))
        from .parallel import use_mesh
        outs = {} if not sig.result_shardings else {"out_shardings": tuple(
            None if t is None else NamedSharding(mesh, partition_spec(t)) for t in sig.result_shardings)}
        jitted = jax.jit(fn, in_shardings=tuple(NamedSharding(mesh, partition_spec(t)) for t in sig.shardings),
                         **outs)
        with use_mesh(mesh):            # with_sharding nodes are constrained over this mesh
            return jax.export.export(jitted, platforms=sig.platforms)(
                *abstract_args(sig.args, split_constraints(sig.args, sig.shardings, mesh)))
    except XGraphError as exc:
        symbolic = sorted({d for s in sig.args for d in s.shape if isinstance(d, str)})
        if symbolic:
            raise type(exc)(f"{exc} (while exporting with symbolic dimension(s) {', '.join(symbolic)})") from None
        raise
    except Exception as exc:  # noqa: BLE001 - jax's own errors, e.g. a shape that cannot stay symbolic
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShapeError(f"cannot export the graph for {[ (s.name, s.shape) for s in sig.args if s.kind == 'input']}: "
                         f"{msg}") from exc


__all__ = ["TensorSpec", "ProgramSignature", "build_function", "export_program", "abstract_args",
           "normalize_platforms", "constants_digest", "optimize_graph", "signature_mesh", "split_constraints"]
