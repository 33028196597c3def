"""Compiled artifacts: export a graph with its parameters to one file, load it and run it anywhere.

An artifact is a zip (see ``docs/artifacts.md``) holding ``manifest.json``
(format version, versions, the signature, a SHA-256 of every member),
``module.jaxexport`` (the serialized ``jax.export`` module), ``params.npz``
(parameters and auxiliary states, no pickle) and ``symbol.json`` (the graph it
came from).  Parameters are arguments of the module, so they can be swapped
(:meth:`LoadedArtifact.set_params`), unless exported with ``freeze_params=True``.
Dimensions given as strings are symbolic: one artifact serves every batch size.
With ``mesh=`` the module is lowered for that many devices: the manifest's
``sharding`` table records the mesh and each call argument's PartitionSpec, and
loading places the arguments that way over the first devices of the process.

    >>> import numpy as np, xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc')
    >>> params = {'fc_weight': np.ones((2, 3), np.float32), 'fc_bias': np.zeros(2, np.float32)}
    >>> art = mx.export(net, params, inputs={'data': (('batch', 3), 'float32')})
    >>> run = mx.load_artifact(art.data)
    >>> run(data=np.ones((4, 3), np.float32))[0].shape
    (4, 2)
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import cache, parallel
from .cache import cached_export, cached_json
from .dtypes import canonical
from .errors import ArtifactError, BindError, DTypeError, ParallelError, ShapeError
from .graph import Graph
from .infer import infer
from .io import artifact as fmt
from .io.atomic import atomic_write_bytes
from .io import module_check
from .lower import SHARDING_ATTR, unique_names
from .program import ProgramSignature, TensorSpec, constants_digest, normalize_platforms

MODULE = "module.jaxexport"
PARAMS = "params.npz"
SYMBOL = "symbol.json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Probe sizes for symbolic dimensions: inference runs twice, and a variable's dimension that
# follows the probe values is that symbol.
_PROBES = ((101, 103, 107, 109, 113, 127, 131, 137), (211, 223, 227, 229, 233, 239, 241, 251))

REQUIRED_FIELDS = {
    "xgraph_version": "str", "jax_version": "str", "kind": "str", "platforms": "list",
    "inputs": "list", "outputs": "list", "params": "list", "aux": "list",
    "call_args": "list", "call_results": "list", "params_frozen": "bool",
}


# -- signatures ------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (ints, or strings for symbolic dimensions) and dtype name of a tensor."""

    name: str
    shape: tuple
    dtype: str

    def __str__(self) -> str:
        return f"{self.name}: ({', '.join(str(d) for d in self.shape)}{',' if len(self.shape) == 1 else ''}) {self.dtype}"


@dataclass(frozen=True)
class ArtifactSignature:
    """The inputs an artifact takes and the outputs it returns."""

    inputs: tuple
    outputs: tuple

    def __str__(self) -> str:
        return (f"inputs [{'; '.join(map(str, self.inputs))}] -> "
                f"outputs [{'; '.join(map(str, self.outputs))}]")


def _info(d: Mapping[str, Any]) -> TensorInfo:
    return TensorInfo(d["name"], tuple(d["shape"]), d["dtype"])


# -- export ----------------------------------------------------------------------------
@dataclass
class Artifact:
    """An exported artifact in memory: the zip bytes, its manifest, and where it was saved."""

    data: bytes
    manifest: dict
    path: str | None = None

    @property
    def size(self) -> int:
        """Size of the artifact file in bytes."""
        return len(self.data)

    def save(self, path: str | os.PathLike) -> str:
        """Write the artifact atomically to ``path``; returns the path."""
        atomic_write_bytes(path, self.data)
        self.path = os.fspath(path)
        return self.path


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


def _parse_inputs(inputs: Mapping[str, Any]) -> dict[str, tuple[tuple, Any]]:
    """``{name: (shape, dtype)}`` or ``{name: shape}``: validated, dtypes canonical (None = infer)."""
    out = {}
    for name, spec in inputs.items():
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], (tuple, list)):
            shape, dtype = spec
        else:
            shape, dtype = spec, None
        shape = tuple(shape)
        for d in shape:
            if isinstance(d, str):
                if not _NAME.match(d):
                    raise ShapeError(f"input {name!r}: symbolic dimension {d!r} must be an identifier like 'batch'")
            elif not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
                raise ShapeError(f"input {name!r}: dimension {d!r} must be a positive int or a name")
        out[name] = (tuple(d if isinstance(d, str) else int(d) for d in shape), canonical(dtype))
    return out


def _probe(shape: tuple, which: int, symbols: list[str]) -> tuple:
    return tuple(_PROBES[which][symbols.index(d)] if isinstance(d, str) else d for d in shape)


def _variable_specs(graph: Graph, inputs: dict, known: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """Shapes (with symbols) and dtypes of every variable, by inference at two probe sizes."""
    symbols = sorted({d for s, _ in inputs.values() for d in s if isinstance(d, str)})
    if len(symbols) > len(_PROBES[0]):
        raise ShapeError(f"at most {len(_PROBES[0])} symbolic dimensions are supported, got {symbols}")
    dtypes = {n: dt for n, (_, dt) in inputs.items() if dt is not None}
    dtypes.update({n: a.dtype for n, a in known.items()})
    results = []
    for which in range(2 if symbols else 1):
        shapes = {n: _probe(s, which, symbols) for n, (s, _) in inputs.items()}
        shapes.update({n: a.shape for n, a in known.items()})
        results.append(infer(graph, shapes, dtypes, partial=False, default_dtype=np.float32))
    shapes, dts = {}, {}
    for node in graph.variables():
        n = node.name
        s0 = results[0].var_shapes.get(n)
        if s0 is None or not all(d > 0 for d in s0):
            continue
        s1 = results[-1].var_shapes.get(n) or s0
        dims = []
        for a, b in zip(s0, s1):
            if a == b:
                dims.append(int(a))
            elif a in _PROBES[0] and _PROBES[1][_PROBES[0].index(a)] == b:
                dims.append(symbols[_PROBES[0].index(a)])
            else:
                raise ShapeError(f"variable {n!r} has a shape that is not a plain function of the symbolic "
                                 f"dimension(s) {symbols}; give it in inputs=")
        shapes[n] = tuple(dims)
        dts[n] = canonical(results[0].var_dtypes.get(n) or np.float32).name
    return shapes, dts


def _dtype_name(dt: Any) -> str:
    return canonical(dt).name


def _check_request(arg_names: list, aux_names: list, arg_params: dict, aux_params: dict,
                   spec_inputs: dict) -> list[str]:
    """Refuse unknown, doubled or missing names; returns the label arguments nobody feeds."""
    for what, given, names in (("arg_params", arg_params, arg_names), ("aux_params", aux_params, aux_names),
                               ("inputs", spec_inputs, arg_names)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            kind = "auxiliary states" if what == "aux_params" else "arguments"
            raise BindError(f"export: {what} names {unknown}, which are not {kind} of the symbol; they are {names}")
    both = sorted(set(arg_params) & set(spec_inputs))
    if both:
        raise BindError(f"export: {both} are given both as inputs and in arg_params")
    missing_aux = [n for n in aux_names if n not in aux_params]
    if missing_aux:
        raise BindError(f"export: no value for auxiliary state(s) {missing_aux}; give them in aux_params")
    unfed = [n for n in arg_names if n not in arg_params and n not in spec_inputs]
    not_labels = [n for n in unfed if not n.endswith("label")]
    if not_labels:
        raise BindError(f"export: argument(s) {not_labels} are neither inputs nor in arg_params")
    return unfed


_KIND_WORDS = {"input": "input", "arg": "parameter", "aux": "aux state", "seed": "seed", "output": "output"}


@dataclass(frozen=True)
class _MeshShape:
    """A mesh given as ``{axis name: size}``: only its shape matters for exporting."""

    axes: tuple

    @property
    def axis_names(self) -> tuple:
        return tuple(a for a, _ in self.axes)

    @property
    def shape(self) -> dict:
        return dict(self.axes)

    @property
    def size(self) -> int:
        return math.prod(n for _, n in self.axes)


def _where(s: TensorSpec, source: str = "") -> str:
    """How an error names a call argument: ``export: parameter 'w' of shape (4, 2)`` (+ where its spec came from)."""
    shape = "(" + ", ".join(str(d) for d in s.shape) + ("," if len(s.shape) == 1 else "") + ")"
    return f"export: {_KIND_WORDS[s.kind]} {s.name!r} of shape {shape}{source}"


def _as_mesh(mesh: Any, what: str) -> Any:
    """The export's mesh: a ``_MeshShape`` for ``{axis: size}``, else a Mesh (:func:`xgraph.parallel.make_mesh`)."""
    if mesh is None:
        raise ParallelError(f"export: {what} needs a mesh (mesh=<a jax.sharding.Mesh, a device count or "
                            "{axis name: size}>)")
    if isinstance(mesh, Mapping):
        sizes = list(mesh.items())
        if not sizes or not all(isinstance(a, str) and a and isinstance(n, (int, np.integer))
                                and not isinstance(n, bool) and n >= 1 for a, n in sizes):
            raise ParallelError(f"export: mesh {dict(mesh)!r} must map axis names to positive sizes, "
                                "e.g. {'data': 4, 'model': 2}")
        return _MeshShape(tuple((a, int(n)) for a, n in sizes))
    if isinstance(mesh, (_MeshShape, jax.sharding.AbstractMesh)):
        return mesh
    return parallel.make_mesh(mesh)


def variable_shardings(graph: Graph) -> dict[str, str]:
    """``{variable name: PartitionSpec string}`` of every variable carrying a ``__sharding__`` attribute
    (``mx.sym.var(name, sharding=spec)``, or ``mx.sym.with_sharding`` on a variable).

        >>> import xgraph as mx
        >>> w = mx.sym.var('fc_weight', sharding=('model', None))
        >>> variable_shardings(mx.sym.FullyConnected(mx.sym.var('x'), weight=w, num_hidden=4, name='fc').graph)
        {'fc_weight': "('model', None)"}
    """
    out: dict[str, str] = {}
    for node in graph.variables():
        text = (node.user_attrs or {}).get(SHARDING_ATTR)
        if text:
            out.setdefault(node.name, text)
    return out


def _sharding_plan(mesh: Any, input_shardings: Mapping[str, Any] | None, call_args: Sequence[TensorSpec],
                   variable_specs: Mapping[str, str] | None = None) -> tuple[Any, tuple[str, ...]]:
    """The export's mesh and the PartitionSpec string of each call argument.

    A call argument's spec is ``input_shardings[name]``, else its variable's
    ``__sharding__`` attribute (``variable_specs``), else the default: inputs
    split their first dimension over the ``data`` axis (when the mesh has one
    and the size divides), everything else is replicated.  Every spec is checked
    against the argument's shape and the mesh (:func:`xgraph.parallel.check_spec`).
    """
    mesh = _as_mesh(mesh, "input_shardings")
    if not call_args:
        raise ParallelError("export: a sharded artifact needs at least one input or parameter to place on the mesh")
    given = dict(input_shardings or {})
    names = [s.name for s in call_args if s.kind != "seed"]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ParallelError(f"export: input_shardings names {unknown}, which are not inputs, parameters or aux "
                            f"states the artifact is called with; they are {names}")
    variable_specs = dict(variable_specs or {})
    data = mesh.shape.get(parallel.DATA_AXIS)
    texts = []
    for s in call_args:
        if s.name in given and s.kind != "seed":
            spec = parallel.check_spec(given[s.name], s.shape, mesh, _where(s))
        elif s.name in variable_specs and s.kind != "seed":
            spec = parallel.check_spec(variable_specs[s.name], s.shape, mesh,
                                       _where(s, " (the sharding attribute of its variable)"))
        elif s.kind == "input" and s.shape and data is not None and (isinstance(s.shape[0], str)
                                                                    or s.shape[0] % data == 0):
            spec = PartitionSpec(parallel.DATA_AXIS)
        else:
            spec = PartitionSpec()
        texts.append(parallel.spec_text(spec))
    return mesh, tuple(texts)


def _result_plan(mesh: Any, output_shardings: Mapping[str, Any] | None, results: Sequence[dict],
                 out_shapes: Mapping[str, tuple], arg_texts: Mapping[str, str]) -> tuple[str | None, ...]:
    """The PartitionSpec string of each call result, or None where XLA chooses (an output not in
    ``output_shardings``).  Updated parameters and aux states of a training step keep their argument's spec."""
    given = dict(output_shardings or {})
    outs = [r["name"] for r in results if r["kind"] == "output"]
    unknown = sorted(set(given) - set(outs))
    if unknown:
        raise ParallelError(f"export: output_shardings names {unknown}, which are not outputs of the symbol; "
                            f"they are {outs}")
    texts: list[str | None] = []
    for r in results:
        if r["kind"] != "output":
            texts.append(arg_texts[r["name"]])
        elif r["name"] in given:
            shape = out_shapes[r["name"]]
            where = _where(TensorSpec(r["name"], "output", shape, ""))
            texts.append(parallel.spec_text(parallel.check_spec(given[r["name"]], shape, mesh, where)))
        else:
            texts.append(None)
    return tuple(texts)


def _output_shapes(graph: Graph, shapes: Mapping[str, tuple], dtypes: Mapping[str, str]) -> list[tuple]:
    """The graph's output shapes, symbolic dimensions by name (inference at both probe sizes: a
    dimension that follows the probes is that symbol)."""
    symbols = sorted({d for s in shapes.values() for d in s if isinstance(d, str)})
    runs = [infer(graph, {n: _probe(s, which, symbols) for n, s in shapes.items()}, dict(dtypes), partial=False,
                  default_dtype=np.float32) for which in range(2 if symbols else 1)]
    out = []
    for e in graph.outputs:
        s0, s1 = runs[0].shape(e), runs[-1].shape(e)
        out.append(tuple(symbols[_PROBES[0].index(a)] if a != b and a in _PROBES[0] else int(a)
                         for a, b in zip(s0, s1)))
    return out


def export(sym: Any, arg_params: Mapping[str, Any] | None = None, aux_params: Mapping[str, Any] | None = None,
           inputs: Mapping[str, Any] | None = None, path: str | os.PathLike | None = None,
           platforms: Sequence[str] | str = ("cpu",), opt_level: int = 1, for_training: bool = False,
           freeze_params: bool = False, learning_rate: float = 0.01, mesh: Any = None,
           input_shardings: Mapping[str, Any] | None = None,
           output_shardings: Mapping[str, Any] | None = None) -> Artifact:
    """Export ``sym`` with its parameters as one artifact file (returned; also saved when ``path`` is given).

    ``inputs`` maps each input to ``(shape, dtype)`` (or a shape; the dtype is
    then inferred); a dimension given as a string (``'batch'``) is symbolic.
    Every argument must be an input or in ``arg_params``, except label
    variables (names ending in ``label``): at inference they are fed zeros,
    in a training step they become inputs.  ``freeze_params=True`` bakes the
    parameters into the module as constants.

    ``for_training=True`` exports one training step: it takes parameters,
    auxiliary states, inputs and labels, and returns the outputs, the
    parameters after one plain SGD step ``w <- w - learning_rate * grad``
    (head gradients are ones, as ``Executor.backward()`` with no arguments;
    loss heads such as SoftmaxOutput ignore them), and the updated auxiliary states.

    ``mesh`` (a ``jax.sharding.Mesh``, what :func:`xgraph.parallel.make_mesh`
    takes, e.g. a device count, or ``{axis name: size}``, which needs no devices:
    only the mesh's shape is exported) lowers the module for that many devices, keeping
    the ``mx.sym.with_sharding`` constraints of the graph.  Each call argument
    gets a PartitionSpec (a ``PartitionSpec``, a tuple such as ``('data', None)``
    or its string): ``input_shardings[name]`` (inputs, parameters or aux
    states), else its variable's ``sharding`` attribute
    (``mx.sym.var(name, sharding=spec)``, kept in the symbol JSON), else by
    default each input's first dimension is split over the mesh's ``data`` axis
    when it has one and the size divides, the rest is replicated.
    ``output_shardings`` maps outputs to the specs the module returns them with;
    the other outputs are XLA's choice (a training step's updated parameters
    keep their argument's spec).  The manifest's ``sharding`` table records the
    mesh's axis names and shape, every argument's spec and every result's
    (``null``: XLA's choice); the artifact then runs on a process with at least
    that many devices.  Without a mesh, the variables' sharding attributes are
    ignored (one device), as in a Trainer.

        >>> import numpy as np, xgraph as mx
        >>> art = mx.export(mx.sym.relu(mx.sym.var('x')), inputs={'x': ((2,), 'float32')})
        >>> art.manifest['inputs'][0]['shape'], art.manifest['outputs'][0]['dtype']
        ([2], 'float32')
        >>> sharded = mx.export(mx.sym.relu(mx.sym.var('x')), inputs={'x': (('batch', 3), 'float32')},
        ...                     mesh={'data': 4, 'model': 2})      # for 8 devices, exported on one
        >>> sharded.manifest['sharding']['specs'], sharded.manifest['sharding']['result_specs']
        ({'x': "('data',)"}, [None])
    """
    graph: Graph = sym.graph
    arg_names = unique_names(graph.argument_nodes())
    aux_names = unique_names(graph.aux_nodes())
    arg_params = {k: _array(v) for k, v in (arg_params or {}).items()}
    aux_params = {k: _array(v) for k, v in (aux_params or {}).items()}
    spec_inputs = _parse_inputs(inputs or {})
    unfed = _check_request(arg_names, aux_names, arg_params, aux_params, spec_inputs)
    if for_training and freeze_params:
        raise BindError("export: a training step updates its parameters; it cannot freeze them")

    known = {**arg_params, **aux_params}
    plan_key = fmt.sha256(repr((graph.structural_hash(), sorted((n, s, None if d is None else d.name)
                                                                for n, (s, d) in spec_inputs.items()),
                                sorted((n, a.shape, a.dtype.name) for n, a in known.items()))).encode())
    plan = cached_json("shapes", plan_key, lambda: _variable_specs(graph, spec_inputs, known))
    shapes = {n: tuple(s) for n, s in plan[0].items()}
    dtypes = plan[1]
    for n in unfed:
        if n not in shapes:
            raise ShapeError(f"export: cannot infer the shape of label {n!r}; give it in inputs=")
    platforms = normalize_platforms(platforms)
    input_names = [n for n in arg_names if n in spec_inputs or (for_training and n in unfed)]
    filled = [n for n in unfed if not for_training]

    def spec(name: str, kind: str) -> TensorSpec:
        return TensorSpec(name, kind, shapes[name], dtypes[name])

    param_specs = [spec(n, "arg") for n in arg_names if n in arg_params]
    aux_specs = [spec(n, "aux") for n in aux_names]
    input_specs = [spec(n, "input") for n in input_names]
    needs_rng = any(n.is_random for n in graph.topo_order())
    seed_specs = [TensorSpec("seed", "seed", (), "uint32")] if needs_rng else []
    frozen = {**arg_params, **aux_params} if freeze_params else {}
    call_args = tuple(input_specs + seed_specs + ([] if freeze_params else param_specs + aux_specs))
    sharded = mesh is not None or input_shardings is not None or output_shardings is not None
    out_names = sym.list_outputs()
    results = [{"name": n, "kind": "output"} for n in out_names]
    if for_training:
        results += [{"name": s.name, "kind": "arg"} for s in param_specs
                    if jnp.issubdtype(canonical(s.dtype), jnp.inexact)]
        results += [{"name": s.name, "kind": "aux"} for s in aux_specs]
    if sharded:
        if mesh is None and output_shardings is not None:
            _as_mesh(None, "output_shardings")
        mesh, shardings = _sharding_plan(mesh, input_shardings, call_args, variable_shardings(graph))
        out_shapes = dict(zip(out_names, _output_shapes(graph, shapes, dtypes))) if output_shardings else {}
        result_shardings = _result_plan(mesh, output_shardings, results, out_shapes,
                                        {s.name: t for s, t in zip(call_args, shardings)})
    sig = ProgramSignature(
        args=call_args, filled=tuple(spec(n, "input") for n in filled),
        constants=tuple(param_specs + aux_specs) if freeze_params else (),
        constants_digest=constants_digest(frozen) if frozen else "",
        mode="train" if for_training else "infer", learning_rate=float(learning_rate) if for_training else 0.0,
        platforms=platforms, opt_level=int(opt_level),
        mesh=tuple((a, int(mesh.shape[a])) for a in mesh.axis_names) if sharded else (),
        shardings=shardings if sharded else (), result_shardings=result_shardings if sharded else ())
    exported = cached_export(graph, sig, frozen)

    outputs = [{"name": n, "shape": [d if isinstance(d, int) else str(d) for d in a.shape],
                "dtype": _dtype_name(a.dtype)} for n, a in zip(out_names, exported.out_avals)]
    from . import __version__
    manifest = {
        "format": fmt.FORMAT_NAME, "format_version": fmt.SHARDED_FORMAT_VERSION if sharded else fmt.FORMAT_VERSION,
        "xgraph_version": __version__, "jax_version": jax.__version__,
        "kind": "training_step" if for_training else "inference",
        "platforms": list(platforms), "opt_level": int(opt_level), "params_frozen": bool(freeze_params),
        "graph_hash": graph.structural_hash(),
        "inputs": [s.to_json() for s in input_specs],
        "outputs": outputs,
        "params": [s.to_json() for s in param_specs], "aux": [s.to_json() for s in aux_specs],
        "zero_filled": [spec(n, "input").to_json() for n in filled],
        "call_args": [s.to_json() for s in call_args],
        "call_results": results,
        "training": ({"optimizer": "sgd", "learning_rate": float(learning_rate),
                      "rule": "w <- w - learning_rate * grad", "head_gradients": "ones"}
                     if for_training else None),
    }
    if sharded:
        manifest["sharding"] = {"num_devices": int(mesh.size), "axis_names": list(mesh.axis_names),
                                "mesh_shape": [int(mesh.shape[a]) for a in mesh.axis_names],
                                "specs": {s.name: t for s, t in zip(call_args, shardings)},
                                "result_specs": list(result_shardings)}
    stored = {f"arg:{n}": arg_params[n] for n in arg_names if n in arg_params}
    stored.update({f"aux:{n}": aux_params[n] for n in aux_names})
    members = {MODULE: bytes(exported.serialize()), PARAMS: fmt.save_arrays(stored),
               SYMBOL: sym.tojson().encode("utf-8")}
    hashes = {k: fmt.sha256(v) for k, v in sorted(members.items())}
    module_check.trust(hashes[MODULE], cache.cache_dir())   # made here: safe to parse
    art = Artifact(fmt.pack(manifest, members), {**manifest, "members": hashes})
    if path is not None:
        art.save(path)
    return art


# -- loading and running -------------------------------------------------------------------
def current_platform() -> str:
    """The platform name artifacts use for JAX's default backend: cpu, cuda, rocm or tpu."""
    backend = jax.default_backend()
    if backend == "gpu":
        version = str(getattr(jax.devices()[0].client, "platform_version", "")).lower()
        return "rocm" if "rocm" in version or "hip" in version else "cuda"
    return backend


def _check_manifest_tables(m: dict, where: str) -> None:
    """Refuse a manifest whose tables are malformed or do not refer to each other consistently."""
    if m["kind"] not in ("inference", "training_step"):
        raise ArtifactError(f"artifact {where}: unknown kind {m['kind']!r} (inference or training_step)")
    if not m["platforms"] or not all(isinstance(p, str) for p in m["platforms"]):
        raise ArtifactError(f"artifact {where}: platforms must be a non-empty list of names, got {m['platforms']!r}")
    for table in ("inputs", "outputs", "params", "aux", "call_args", "zero_filled"):
        entries = m.get(table, [])
        if not isinstance(entries, list):
            raise ArtifactError(f"artifact {where}: manifest {table!r} must be a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise ArtifactError(f"artifact {where}: manifest {table!r} entries must be objects")
            fmt.check_fields(entry, {"name": "str", "shape": "list", "dtype": "str"}, where)
            for d in entry["shape"]:
                if not (isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)):
                    raise ArtifactError(f"artifact {where}: {table} {entry['name']!r} has a bad dimension {d!r}")
            try:
                canonical(entry["dtype"])
            except Exception:  # noqa: BLE001
                raise ArtifactError(f"artifact {where}: {table} {entry['name']!r} has unknown dtype "
                                    f"{entry['dtype']!r}") from None
        names = [e["name"] for e in entries]
        if len(set(names)) != len(names):
            raise ArtifactError(f"artifact {where}: manifest {table!r} names a tensor twice: {names}")
    for entry in m["call_results"]:
        if not isinstance(entry, dict) or entry.get("kind") not in ("output", "arg", "aux") \
                or not isinstance(entry.get("name"), str):
            raise ArtifactError(f"artifact {where}: manifest call_results entries must be objects with a "
                                f"name and kind output, arg or aux")
    tables = {"input": m["inputs"], "arg": m["params"], "aux": m["aux"]}
    by_kind: dict[str, list[str]] = {"input": [], "arg": [], "aux": [], "seed": []}
    for entry in m["call_args"]:
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in by_kind:
            raise ArtifactError(f"artifact {where}: call argument {entry['name']!r} has unknown kind {kind!r}")
        by_kind[kind].append(entry["name"])
        if kind == "seed" and (entry["shape"] != [] or canonical(entry["dtype"]) != np.uint32):
            raise ArtifactError(f"artifact {where}: the seed argument must be a uint32 scalar")
        if kind in tables and not any(t["name"] == entry["name"] and t["shape"] == entry["shape"]
                                      and canonical(t["dtype"]) == canonical(entry["dtype"]) for t in tables[kind]):
            raise ArtifactError(f"artifact {where}: call argument {entry['name']!r} ({kind}) does not match the "
                                f"manifest's {'inputs' if kind == 'input' else kind} table")
    if by_kind["input"] != [e["name"] for e in m["inputs"]] or len(by_kind["seed"]) > 1:
        raise ArtifactError(f"artifact {where}: the call arguments {by_kind['input']} do not list the inputs "
                            f"{[e['name'] for e in m['inputs']]} in order (with at most one seed)")
    if not m["params_frozen"] and (by_kind["arg"] != [e["name"] for e in m["params"]]
                                   or by_kind["aux"] != [e["name"] for e in m["aux"]]):
        raise ArtifactError(f"artifact {where}: the call arguments do not pass every parameter and aux state")
    outs = [r["name"] for r in m["call_results"] if r["kind"] == "output"]
    if outs != [e["name"] for e in m["outputs"]]:
        raise ArtifactError(f"artifact {where}: call results {outs} do not match the outputs table")
    for r in m["call_results"]:
        if r["kind"] != "output" and r["name"] not in by_kind[r["kind"]]:
            raise ArtifactError(f"artifact {where}: call result {r['name']!r} updates no {r['kind']} argument")
    _check_sharding_table(m, where)
    for member in (MODULE, PARAMS, SYMBOL):
        if member not in m["members"]:
            raise ArtifactError(f"artifact {where}: member {member!r} is missing from the manifest")


def _check_sharding_table(m: dict, where: str) -> None:
    """A version-2 manifest has a well-formed ``sharding`` table (mesh, one spec per call argument);
    a version-1 manifest has none."""
    table = m.get("sharding")
    if m["format_version"] == fmt.FORMAT_VERSION:
        if table is not None:
            raise ArtifactError(f"artifact {where}: a format version 1 manifest has no sharding table "
                                f"(sharded artifacts are version {fmt.SHARDED_FORMAT_VERSION})")
        return
    if not isinstance(table, dict):
        raise ArtifactError(f"artifact {where}: a format version {m['format_version']} manifest needs a "
                            f"sharding table")
    fmt.check_fields(table, {"num_devices": "int", "axis_names": "list", "mesh_shape": "list", "specs": "dict"},
                     where)
    names, sizes = table["axis_names"], table["mesh_shape"]
    if (not names or len(names) != len(sizes) or len(set(names)) != len(names)
            or not all(isinstance(a, str) and a for a in names)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes)
            or math.prod(sizes) != table["num_devices"]):
        raise ArtifactError(f"artifact {where}: sharding table: mesh axes {names!r} of sizes {sizes!r} do not "
                            f"make a mesh of {table['num_devices']!r} devices")
    args = {e["name"]: e for e in m["call_args"]}
    if sorted(table["specs"]) != sorted(args):
        raise ArtifactError(f"artifact {where}: sharding table: specs for {sorted(table['specs'])}, the call "
                            f"arguments are {sorted(args)}")
    for name, text in table["specs"].items():
        try:
            spec = parallel.partition_spec(text) if isinstance(text, str) else None
        except ParallelError:
            spec = None
        axes = [a for e in (spec or ()) if e is not None for a in ((e,) if isinstance(e, str) else e)]
        if spec is None or len(spec) > len(args[name]["shape"]) or not set(axes) <= set(names):
            raise ArtifactError(f"artifact {where}: sharding table: call argument {name!r} has spec {text!r}, "
                                f"not a PartitionSpec of a {len(args[name]['shape'])}-d array over mesh axes "
                                f"{names}")
    if "result_specs" not in table:        # written before result specs were recorded: all XLA's choice
        return
    specs = table["result_specs"]
    if not isinstance(specs, list) or len(specs) != len(m["call_results"]):
        raise ArtifactError(f"artifact {where}: sharding table: result_specs must list one spec (or null) per "
                            f"call result, {len(m['call_results'])} in all")
    tables = {"output": m["outputs"], "arg": m["params"], "aux": m["aux"]}
    for r, text in zip(m["call_results"], specs):
        if text is None:
            continue
        rank = next((len(e["shape"]) for e in tables[r["kind"]] if e["name"] == r["name"]), -1)
        try:
            spec = parallel.partition_spec(text) if isinstance(text, str) else None
        except ParallelError:
            spec = None
        axes = [a for e in (spec or ()) if e is not None for a in ((e,) if isinstance(e, str) else e)]
        if spec is None or len(spec) > rank or not set(axes) <= set(names):
            raise ArtifactError(f"artifact {where}: sharding table: result {r['name']!r} has spec {text!r}, "
                                f"not null or a PartitionSpec of a {rank}-d array over mesh axes {names}")


def _aval_matches(entry: Mapping[str, Any], aval: Any) -> bool:
    """Whether a manifest tensor (symbolic dimensions by name) is the module's abstract value."""
    if len(entry["shape"]) != len(aval.shape) or canonical(entry["dtype"]) != np.dtype(aval.dtype):
        return False
    return all(str(d) == a if isinstance(a, str) else (isinstance(d, int) and d == a)
               for d, a in zip(aval.shape, entry["shape"]))


def _check_module(exported: Any, m: dict, where: str) -> None:
    """Refuse a module whose arguments and results are not what the manifest says."""
    if sorted(p.lower() for p in exported.platforms) != sorted(normalize_platforms(m["platforms"])):
        raise ArtifactError(f"artifact {where}: the manifest lists platforms {m['platforms']}, the module was "
                            f"lowered for {list(exported.platforms)}")
    devices = m["sharding"]["num_devices"] if m.get("sharding") else 1
    if getattr(exported, "nr_devices", 1) != devices:
        raise ArtifactError(f"artifact {where}: the manifest says {devices} device(s), the module was lowered "
                            f"for {exported.nr_devices}")
    n_in, n_out = len(exported.in_avals), len(exported.out_avals)
    if n_in != len(m["call_args"]) or n_out != len(m["call_results"]):
        raise ArtifactError(f"artifact {where}: the module takes {n_in} arguments and returns {n_out} results, "
                            f"the manifest lists {len(m['call_args'])} and {len(m['call_results'])}")
    for entry, aval in zip(m["call_args"], exported.in_avals):
        if not _aval_matches(entry, aval):
            raise ArtifactError(f"artifact {where}: call argument {entry['name']!r} is {entry['shape']} "
                                f"{entry['dtype']} in the manifest but {aval.str_short()} in the module")
    specs = (m.get("sharding") or {}).get("result_specs")
    if specs is not None:           # a result the manifest gives a spec is one the module returns placed
        hlo = list(getattr(exported, "out_shardings_hlo", ()) or ())
        # jax 0.12 (Shardy) reports no HLO sharding for any result: there is nothing to compare, and
        # the loader imposes the manifest's specs as out_shardings anyway
        if len(hlo) == len(specs) and any(h is not None for h in hlo):
            for r, text, h in zip(m["call_results"], specs, hlo):
                if (text is None) != (h is None):
                    raise ArtifactError(f"artifact {where}: result {r['name']!r} has sharding {text!r} in the "
                                        f"manifest, but the module {'places it' if h is not None else 'leaves it to XLA'}")
    declared = {e["name"]: e for e in m["outputs"]}
    declared.update({e["name"]: e for e in m["params"] + m["aux"] if e["name"] not in declared})
    for r, aval in zip(m["call_results"], exported.out_avals):
        entry = declared.get(r["name"]) if r["kind"] == "output" else \
            next(e for e in m["params" if r["kind"] == "arg" else "aux"] if e["name"] == r["name"])
        if not _aval_matches(entry, aval):
            raise ArtifactError(f"artifact {where}: result {r['name']!r} is {entry['shape']} {entry['dtype']} in "
                                f"the manifest but {aval.str_short()} in the module")


#: deserialized modules and their jitted calls by the module's SHA-256: loading an artifact again
#: in the same process reuses the compiled executable
_MODULES: dict[str, tuple[Any, Any]] = {}
_MODULES_KEPT = 16


def _module(blob: bytes, digest: str, where: str) -> tuple[Any, Any]:
    hit = _MODULES.pop(digest, None)
    if hit is None:
        module_check.check_in_child(blob, digest, where, cache.cache_dir())
        try:
            exported = jax.export.deserialize(bytearray(blob))
            exported.mlir_module()      # parses the StableHLO now: a damaged module fails here, not at the call
        except Exception as exc:  # noqa: BLE001
            raise ArtifactError(f"artifact {where}: the module cannot be deserialized by jax "
                                f"{jax.__version__} ({type(exc).__name__}: {exc})") from None
        hit = (exported, jax.jit(exported.call))
    _remember(digest, hit)
    return hit


def _remember(key: str, hit: tuple[Any, Any]) -> None:
    _MODULES[key] = hit
    while len(_MODULES) > _MODULES_KEPT:
        _MODULES.pop(next(iter(_MODULES)))


def _sharded_call(exported: Any, digest: str, shardings: tuple, result_shardings: tuple = ()) -> Any:
    """``jax.jit(exported.call)`` placing the arguments with ``shardings`` and the results with
    ``result_shardings`` (None entries: XLA's choice), cached like :func:`_module`."""
    key = (digest + "@" + ",".join(str(d.id) for d in shardings[0].mesh.devices.flat) + "->"
           + ";".join("-" if r is None else str(tuple(r.spec)) for r in result_shardings))
    hit = _MODULES.pop(key, None)
    if hit is None:
        outs = {"out_shardings": tuple(result_shardings)} if result_shardings else {}
        hit = (exported, jax.jit(exported.call, in_shardings=shardings, **outs))
    _remember(key, hit)
    return hit[1]


class LoadedArtifact:
    """A verified artifact, ready to run: ``art(**inputs)`` or ``art.run({name: array})``.

    ``signature`` lists the inputs and outputs; ``platforms`` the platforms it
    was exported for; ``params`` and ``aux`` the parameter values it runs with
    (replace them with :meth:`set_params`).  A training-step artifact updates
    ``params`` and ``aux`` in place at every run.  A sharded artifact has
    ``num_devices > 1`` and a ``mesh`` over the first ``num_devices`` local
    devices (``devices='all'``: of every process's devices, after
    :func:`xgraph.distributed.initialize`); too few devices raise ParallelError.
    """

    def __init__(self, manifest: dict, members: Mapping[str, bytes], where: str, check_platform: bool = True,
                 devices: str = "local"):
        if devices not in ("local", "all"):
            raise ParallelError(f"load_artifact: devices={devices!r}, expected 'local' (this process's) or 'all' "
                                f"(every process's, after xgraph.distributed.initialize)")
        self.devices = devices
        self.manifest = manifest
        self.where = where
        self.kind = manifest["kind"]
        self.platforms = tuple(manifest["platforms"])
        self.signature = ArtifactSignature(tuple(_info(d) for d in manifest["inputs"]),
                                           tuple(_info(d) for d in manifest["outputs"]))
        try:
            self.symbol_json = members[SYMBOL].decode("utf-8")
        except UnicodeDecodeError:
            raise ArtifactError(f"artifact {where}: {SYMBOL} is not UTF-8 text") from None
        specs = {f"arg:{d['name']}": (tuple(d["shape"]), d["dtype"]) for d in manifest["params"]}
        specs.update({f"aux:{d['name']}": (tuple(d["shape"]), d["dtype"]) for d in manifest["aux"]})
        stored = fmt.load_arrays(members[PARAMS], specs, where)
        self.params = {k[4:]: v for k, v in stored.items() if k.startswith("arg:")}
        self.aux = {k[4:]: v for k, v in stored.items() if k.startswith("aux:")}
        self._device_cache: dict[str, Any] = {}
        self._seed = 0
        here = current_platform()
        if check_platform and here not in self.platforms:
            raise ArtifactError(f"artifact {where} was exported for platform(s) {', '.join(self.platforms)}, "
                                f"but this machine runs {here}; re-export with platforms including {here!r}")
        #: the manifest's sharding table (mesh axes and shape, each call argument's spec), or None
        self.sharding: dict | None = manifest.get("sharding")
        self.num_devices = self.sharding["num_devices"] if self.sharding else 1
        self.mesh: Mesh | None = None
        self._dp: parallel.DataParallel | None = None
        self._shardings: tuple = ()
        self._result_shardings: tuple = ()
        #: ``{output name: NamedSharding}`` the module returns each output with over :attr:`mesh`: the
        #: requested ones (``export(output_shardings=)``) from the manifest; outputs left to XLA are None
        #: until a call has compiled the module, then what the compiled program gave
        self.output_shardings: dict[str, Any] = {}
        if self.sharding is not None and check_platform:
            self._place_on_mesh()
        self.exported, self._call = _module(members[MODULE], manifest["members"][MODULE], where)
        _check_module(self.exported, manifest, where)
        if self.mesh is not None:
            self._call = _sharded_call(self.exported, manifest["members"][MODULE], self._shardings,
                                       self._result_shardings)

    def _place_on_mesh(self) -> None:
        """Lay the recorded mesh over the first ``num_devices`` devices (this process's, or every
        process's with ``devices='all'``); ParallelError when too few."""
        t = self.sharding
        have = jax.local_devices() if self.devices == "local" else jax.devices()
        if len(have) < t["num_devices"]:
            whose = "this process has" if self.devices == "local" else f"the {jax.process_count()} process(es) have"
            hint = "; over several processes: load_artifact(..., devices='all')" if self.devices == "local" else ""
            raise ParallelError(
                f"artifact {self.where} was exported for {t['num_devices']} devices (mesh "
                f"{dict(zip(t['axis_names'], t['mesh_shape']))}), {whose} {len(have)} "
                f"{have[0].platform} device(s); run it where {t['num_devices']} are available (on the CPU: "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={t['num_devices']} before jax starts"
                f"{hint})")
        self.mesh = parallel.make_mesh(list(have[:t["num_devices"]]), t["axis_names"], t["mesh_shape"])
        self._dp = parallel.DataParallel(self.mesh, t["axis_names"][0])
        self._shardings = tuple(NamedSharding(self.mesh, parallel.partition_spec(t["specs"][a["name"]]))
                                for a in self.manifest["call_args"])
        specs = t.get("result_specs") or [None] * len(self.manifest["call_results"])
        self._result_shardings = tuple(None if x is None else NamedSharding(self.mesh, parallel.partition_spec(x))
                                       for x in specs)
        self.output_shardings = {r["name"]: sh for r, sh in zip(self.manifest["call_results"], self._result_shardings)
                                 if r["kind"] == "output"}

    def stablehlo(self) -> str:
        """The module's StableHLO text; a sharded artifact's shows its partitioning
        (``sdy.sharding`` / ``mhlo.sharding`` annotations on the arguments and constraints).

            >>> import xgraph as mx
            >>> art = mx.load_artifact(mx.export(mx.sym.var('x') + 1, inputs={'x': ((2,), 'float32')}).data)
            >>> 'func.func public @main' in art.stablehlo()
            True
        """
        return str(self.exported.mlir_module())

    def __repr__(self) -> str:
        devices = f" over {self.num_devices} devices" if self.sharding else ""
        return f"<LoadedArtifact {self.kind} {self.signature} on {', '.join(self.platforms)}{devices}>"

    def set_params(self, arg_params: Mapping[str, Any] | None = None, aux_params: Mapping[str, Any] | None = None) -> None:
        """Replace parameter values by name; shapes and dtypes must match the manifest."""
        if self.manifest["params_frozen"] and (arg_params or aux_params):
            raise ArtifactError(f"artifact {self.where} was exported with frozen parameters: they cannot be replaced")
        for table, new, what in ((self.params, arg_params or {}, "parameter"), (self.aux, aux_params or {}, "aux state")):
            for name, value in new.items():
                if name not in table:
                    raise ArtifactError(f"{name!r} is not a {what} of this artifact; they are {sorted(table)}")
                v = _array(value)
                if v.shape != table[name].shape or v.dtype != table[name].dtype:
                    raise ShapeError(f"{what} {name!r}: got {v.shape} {v.dtype.name}, expected "
                                     f"{table[name].shape} {table[name].dtype.name}")
                table[name] = v
                self._device_cache.pop(f"{what}:{name}", None)

    def _check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Validate names, dtypes and shapes (binding symbolic dimensions consistently)."""
        expected = self.signature.inputs
        names = {i.name for i in expected}
        takes_seed = any(a["kind"] == "seed" for a in self.manifest["call_args"])
        unknown = sorted(set(inputs) - names - ({"seed"} if takes_seed else set()))
        missing = [i.name for i in expected if i.name not in inputs]
        if unknown or missing:
            what = f"unknown input(s) {unknown}" if unknown else f"missing input(s) {missing}"
            raise ArtifactError(f"{what}; the artifact's signature is {self.signature}")
        sizes: dict[str, tuple[int, str]] = {}
        out = {}
        for info in expected:
            value = inputs[info.name]
            if hasattr(value, "asnumpy") and not isinstance(value, (np.ndarray, jax.Array)):
                value = value.data
            if not isinstance(value, (np.ndarray, jax.Array, np.generic)):
                value = np.asarray(value, canonical(info.dtype))
            if canonical(value.dtype) != canonical(info.dtype):
                raise DTypeError(f"input {info.name!r} has dtype {np.dtype(value.dtype).name}, expected {info.dtype}; "
                                 f"the artifact's signature is {self.signature}")
            shape = tuple(value.shape)
            bad = len(shape) != len(info.shape)
            for d, actual in zip(info.shape, shape):
                if isinstance(d, str):
                    if actual < 1:
                        bad = True
                    elif d in sizes and sizes[d][0] != actual:
                        raise ShapeError(f"input {info.name!r} has shape {shape}: dimension {d!r} is {actual} here "
                                         f"but {sizes[d][0]} in input {sizes[d][1]!r}; the artifact's signature is "
                                         f"{self.signature}")
                    sizes.setdefault(d, (actual, info.name))
                elif d != actual:
                    bad = True
            if bad:
                raise ShapeError(f"input {info.name!r} has shape {shape}, expected {str(info).split(': ', 1)[1]}; "
                                 f"the artifact's signature is {self.signature}")
            out[info.name] = value
        return out

    def _device(self, key: str, value: np.ndarray, sharding: Any = None) -> jax.Array:
        arr = self._device_cache.get(key)
        if arr is None:
            # device_put, not jnp.asarray: the latter compiles a conversion per distinct shape (~0.2 s for a convnet)
            arr = self._device_cache[key] = self._put(np.asarray(value), sharding)
        return arr

    def _put(self, value: Any, sharding: Any) -> jax.Array:
        """``value`` placed with ``sharding``; over several processes every process passes the whole value
        and contributes its devices' slices (an array already placed that way is kept)."""
        if sharding is None or self._dp is None or not self._dp.multi_process:
            return jax.device_put(value, sharding)
        if isinstance(value, jax.Array) and value.sharding == sharding:
            return value
        return self._dp.put(parallel.to_host(value), sharding)

    def _host(self, value: Any) -> np.ndarray:
        """``value`` as one whole NumPy array (over several processes a collective: every process calls it)."""
        return parallel.to_host(value)

    def _check_split(self, values: Mapping[str, Any]) -> None:
        """Every split dimension of a sharded artifact's inputs divides evenly over its mesh axes."""
        for a in self.manifest["call_args"]:
            if a["kind"] == "input":
                spec = self.sharding["specs"][a["name"]]
                try:
                    parallel.check_spec(spec, np.shape(values[a["name"]]), self.mesh, f"input {a['name']!r}")
                except ParallelError as exc:
                    raise ParallelError(f"{exc}; artifact {self.where} splits {a['name']!r} as {spec} over the "
                                        f"mesh {dict(self.mesh.shape)}") from None

    def apply(self, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
              aux: Mapping[str, Any] | None = None) -> tuple[dict, dict, dict]:
        """Run once without changing the artifact's state: ``(outputs, new params, new aux)`` by name.

        ``params``/``aux`` override stored values for this call only.  For an
        inference artifact the new params and aux are empty dicts.
        """
        if self.platforms and current_platform() not in self.platforms:
            raise ArtifactError(f"artifact {self.where} was exported for platform(s) {', '.join(self.platforms)}, "
                                f"this machine runs {current_platform()}")
        values = self._check_inputs(inputs)
        if self.sharding is not None:
            if self.mesh is None:         # loaded with check_platform=False
                self._place_on_mesh()
                self._call = _sharded_call(self.exported, self.manifest["members"][MODULE], self._shardings,
                                           self._result_shardings)
            self._check_split(values)
        if self.manifest["params_frozen"] and (params or aux):
            raise ArtifactError(f"artifact {self.where} was exported with frozen parameters: they cannot be replaced")
        args = []
        for i, a in enumerate(self.manifest["call_args"]):
            name, kind = a["name"], a["kind"]
            where = self._shardings[i] if self._shardings else None
            if kind == "input":
                args.append(values[name])
            elif kind == "seed":
                seed = inputs.get("seed")
                if seed is None:
                    seed, self._seed = self._seed, self._seed + 1
                args.append(np.asarray(seed, np.uint32))
            else:
                override = (params or {}) if kind == "arg" else (aux or {})
                if name in override:
                    args.append(self._put(np.asarray(_array(override[name]), canonical(a["dtype"])), where))
                else:
                    table = self.params if kind == "arg" else self.aux
                    args.append(self._device(f"{'parameter' if kind == 'arg' else 'aux state'}:{name}", table[name],
                                             where))
        if where_all := self._shardings:      # inputs and the seed onto the mesh as the module expects them
            args = [self._put(v, sh) for v, sh in zip(args, where_all)]
        try:
            results = self._call(*args)
        except jax.errors.JaxRuntimeError as exc:
            raise ArtifactError(f"artifact {self.where}: the module failed to compile or run "
                                f"({' '.join(str(exc).split())[:300]})") from None
        outs, new_params, new_aux = {}, {}, {}
        for r, v in zip(self.manifest["call_results"], results):
            {"output": outs, "arg": new_params, "aux": new_aux}[r["kind"]][r["name"]] = v
            if self.mesh is not None and r["kind"] == "output" and self.output_shardings.get(r["name"]) is None:
                self.output_shardings[r["name"]] = v.sharding         # what the compiled program gave
        return outs, new_params, new_aux

    def run(self, inputs: Mapping[str, Any], numpy: bool = False) -> dict[str, Any]:
        """Run on ``{input name: array}``; returns ``{output name: array}`` (jax arrays, or numpy).

        A training-step artifact also advances :attr:`params` and :attr:`aux`.
        """
        outs, new_params, new_aux = self.apply(inputs)
        if new_params or new_aux:
            for name, v in new_params.items():
                self.params[name] = self._host(v)
                self._device_cache[f"parameter:{name}"] = v
            for name, v in new_aux.items():
                self.aux[name] = self._host(v)
                self._device_cache[f"aux state:{name}"] = v
        if numpy:
            return {k: self._host(v) for k, v in outs.items()}
        return outs

    def __call__(self, *args: Any, **inputs: Any) -> list[Any]:
        """Run on inputs given positionally in signature order and/or by name (``seed`` only by name,
        as ``jax.export``'s ``Exported.call``); returns the outputs in order (jax arrays).

            >>> import numpy as np, xgraph as mx
            >>> art = mx.load_artifact(mx.export(mx.sym.var('a') - mx.sym.var('b'),
            ...                                  inputs={'a': ((2,), 'float32'), 'b': ((2,), 'float32')}).data)
            >>> one = np.ones(2, np.float32)
            >>> [np.asarray(o).tolist() for o in (art(one, 2 * one)[0], art(one, b=2 * one)[0])]
            [[-1.0, -1.0], [-1.0, -1.0]]
        """
        outs = self.run(self._named_inputs(args, inputs))
        return [outs[o.name] for o in self.signature.outputs]

    def _named_inputs(self, args: Sequence[Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Positional arguments named by the signature's order, merged with the keyword ones."""
        names = [i.name for i in self.signature.inputs]
        if len(args) > len(names):
            raise ArtifactError(f"the artifact takes {len(names)} input(s) {names}, got {len(args)} positional "
                                f"argument(s); the artifact's signature is {self.signature}")
        twice = [n for n in names[:len(args)] if n in inputs]
        if twice:
            raise ArtifactError(f"input(s) {twice} given both positionally and by name; the artifact's signature "
                                f"is {self.signature}")
        return {**dict(zip(names, args)), **inputs}


def load_artifact(source: str | os.PathLike | bytes | Artifact, check_platform: bool = True,
                  devices: str = "local") -> LoadedArtifact:
    """Verify an artifact (zip, manifest, every member's SHA-256) and load it for running.

    A sharded artifact runs over the first devices of this process (``devices='local'``), or, after
    :func:`xgraph.distributed.initialize`, of every process (``devices='all'``: every process loads it
    and makes the same calls with the same whole inputs; the outputs are global arrays, whole NumPy
    arrays with ``run(..., numpy=True)``).

    Raises :class:`ArtifactError` for a file that is not a zip, truncated,
    tampered with, of an unsupported format version, or built for other
    platforms (unless ``check_platform=False``, for inspection; running it then fails).

        >>> import numpy as np, xgraph as mx
        >>> art = mx.export(mx.sym.var('x') * 2, inputs={'x': (('n',), 'float32')})
        >>> loaded = mx.load_artifact(art.data)
        >>> str(loaded.signature)
        'inputs [x: (n,) float32] -> outputs [_mulscalar0_output: (n,) float32]'
    """
    if isinstance(source, Artifact):
        where = source.path or "<memory>"
        source = source.data
    else:
        where = "<bytes>" if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    manifest, members = fmt.unpack(source, REQUIRED_FIELDS)
    _check_manifest_tables(manifest, where)
    return LoadedArtifact(manifest, members, where, check_platform, devices)


__all__ = ["export", "load_artifact", "Artifact", "LoadedArtifact", "ArtifactSignature", "TensorInfo",
           "current_platform", "variable_shardings"]
