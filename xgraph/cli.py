"""The ``xgraph`` command: one subcommand per task, each a small function over the library.

    xgraph inspect MODEL-symbol.json [--shape data=1,3,224,224] [--params FILE]
    xgraph hlo     MODEL-symbol.json --shape data=... [--optimized] [--opt-level N]
    xgraph compile MODEL-symbol.json MODEL-0000.params -o ARTIFACT --shape data=... [--dynamic-batch]
                   [--mesh data=4,model=2] [--sharding NAME=SPEC] [--output-sharding NAME=SPEC]
    xgraph run     ARTIFACT --input data=x.npy [--output-dir DIR]
    xgraph plot    MODEL-symbol.json [--shape ...] -o FILE.dot|FILE.svg
    xgraph bench   ARTIFACT [--batch N] [--iters N]
    xgraph demo

``main`` only parses arguments and reports errors: the work lives in library
modules (:mod:`xgraph.viz` for summaries and plots, :mod:`xgraph.export`,
:mod:`xgraph.benchmark`, :mod:`xgraph.demo`).  Every error is one line on
stderr, without a traceback: a user error (any
:class:`~xgraph.errors.XGraphError`) or an unreadable file exits with status
1, a usage error (bad option syntax) with status 2.

    >>> from xgraph.cli import build_parser
    >>> build_parser().parse_args(['demo', '--fast']).fast
    True
    >>> build_parser().parse_args(['inspect', 'm.json', '--shape', 'data=1,3,8,8']).shape
    [('data', (1, 3, 8, 8))]

Adding a subcommand: write ``add_<name>(subparsers)`` that declares its
arguments and sets ``func`` to a ``cmd_<name>(args) -> int``, then list it in
:data:`SUBCOMMANDS`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable, NoReturn, Sequence

import numpy as np

from .errors import BindError, GraphFormatError, XGraphError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UsageError(Exception):
    """A command line that parses but does not make sense (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``xgraph inspect: error: ... (see 'xgraph inspect --help')``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- argument types -------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _name_value(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME={what}, got {text!r}")
    return name, value.strip()


def parse_shape(text: str) -> tuple[str, tuple]:
    """``'data=1,3,224,224'`` -> ``('data', (1, 3, 224, 224))``; a name as a dimension is symbolic.

    Parentheses and spaces are allowed (``'data=(1, 3)'``); ``'x='`` is a scalar.

        >>> parse_shape('data=1,3,224,224'), parse_shape('x=(batch, 4)'), parse_shape('s=')
        (('data', (1, 3, 224, 224)), ('x', ('batch', 4)), ('s', ()))
    """
    name, value = _name_value(text, "D1,D2,...")
    body = value.strip().strip("()[]").strip()
    dims: list[Any] = []
    parts = [] if not body else [p.strip() for p in body.split(",")]
    if len(parts) > 1 and not parts[-1]:
        parts.pop()  # a trailing comma: 'x=(3,)'
    for part in parts:
        if part.isdigit() and int(part) >= 1:
            dims.append(int(part))
        elif _IDENT.match(part):
            dims.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"bad dimension {part!r} in {text!r}: dimensions are positive whole numbers "
                f"(or a name such as 'batch' where a symbolic dimension is allowed), e.g. data=1,3,224,224")
    return name, tuple(dims)


def parse_dtype(text: str) -> tuple[str, str]:
    """``'data=float16'`` -> ``('data', 'float16')``, checking that the dtype exists.

        >>> parse_dtype('data=bfloat16')
        ('data', 'bfloat16')
    """
    from .dtypes import canonical
    name, value = _name_value(text, "DTYPE")
    try:
        return name, canonical(value).name
    except (XGraphError, TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown dtype {value!r} in {text!r} (e.g. float32, float16, "
                                         f"bfloat16, int32)") from None


def parse_mesh(text: str) -> dict[str, int]:
    """``'data=4,model=2'`` -> ``{'data': 4, 'model': 2}``: mesh axis names and sizes, in mesh order.

        >>> parse_mesh('data=4,model=2')
        {'data': 4, 'model': 2}
    """
    mesh: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, size = (t.strip() for t in part.partition("="))
        if not sep or not _IDENT.match(name) or not size.isdigit() or int(size) < 1:
            raise argparse.ArgumentTypeError(f"bad mesh axis {part!r} in {text!r}: expected NAME=SIZE with a "
                                             f"positive size, e.g. --mesh data=4,model=2")
        if name in mesh:
            raise argparse.ArgumentTypeError(f"mesh axis {name!r} is given twice in {text!r}")
        mesh[name] = int(size)
    return mesh


def parse_sharding(text: str) -> tuple[str, Any]:
    """``'fc1_weight=model,None'`` -> ``('fc1_weight', PartitionSpec('model', None))``; an empty spec
    (``'x='``) is replicated.

        >>> parse_sharding('fc1_weight=model,None')
        ('fc1_weight', P('model', None))
    """
    from .parallel import partition_spec
    name, value = _name_value(text, "SPEC")
    try:
        return name, partition_spec(value)
    except XGraphError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. fc1_weight=model,None)") from None


def parse_input_file(text: str) -> tuple[str, str]:
    """``'data=x.npy'`` -> ``('data', 'x.npy')``.

        >>> parse_input_file('data=x.npy')
        ('data', 'x.npy')
    """
    return _name_value(text, "FILE.npy")


def _mapping(pairs: Sequence[tuple[str, Any]] | None, option: str) -> dict[str, Any]:
    """Pairs from a repeated option as a dict; a name given twice is a usage error."""
    out: dict[str, Any] = {}
    for name, value in pairs or ():
        if name in out:
            raise UsageError(f"{option} gives {name!r} twice")
        out[name] = value
    return out


# -- shared helpers -------------------------------------------------------------------
def _check_file(path: str) -> str:
    """``path`` if it is a readable file; else an OSError naming it (reported with exit status 1)."""
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory", path)
    return path


def load_symbol(path: str) -> Any:
    """The symbol in an MXNet ``-symbol.json`` file (:class:`GraphFormatError` when it is malformed)."""
    from . import symbol
    return symbol.load(_check_file(path))


def load_params(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(arg_params, aux_params)`` from a ``.params`` file (``arg:``/``aux:`` keys; bare keys are arguments)."""
    from . import ndarray as nd
    loaded = nd.load(_check_file(path))
    if isinstance(loaded, list):
        raise GraphFormatError(f"params file {path!r} holds {len(loaded)} unnamed arrays; "
                               f"parameters need names ('arg:NAME' or 'aux:NAME')")
    args: dict[str, np.ndarray] = {}
    aux: dict[str, np.ndarray] = {}
    for key, value in loaded.items():
        kind, sep, name = key.partition(":")
        if sep and kind in ("arg", "aux") and name:
            (args if kind == "arg" else aux)[name] = value.asnumpy()
        else:
            args[key] = value.asnumpy()
    return args, aux


def _names_list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_input_names(sym: Any, names: Sequence[str], option: str) -> None:
    """Refuse names that are not variables of ``sym`` (:class:`BindError` listing the inputs)."""
    variables = sym.list_arguments() + sym.list_auxiliary_states()
    unknown = [n for n in names if n not in variables]
    if unknown:
        from .viz import is_input_name
        inputs = [n for n in sym.list_arguments() if is_input_name(n)] or sym.list_arguments()
        raise BindError(f"{option} names {', '.join(repr(n) for n in unknown)}, which "
                        f"{'is' if len(unknown) == 1 else 'are'} not an input of the symbol; "
                        f"its inputs are {_names_list(inputs)}")


def concrete_shapes(shapes: dict[str, tuple], option: str = "--shape") -> dict[str, tuple[int, ...]]:
    """Refuse symbolic dimensions where the command needs numbers (:class:`UsageError`)."""
    for name, shape in shapes.items():
        if any(isinstance(d, str) for d in shape):
            raise UsageError(f"{option} {name}={','.join(map(str, shape))}: symbolic dimensions are only "
                             f"allowed by 'xgraph compile'; give numbers")
    return shapes


def require_shapes(sym: Any, shapes: dict[str, tuple], dtypes: dict[str, str], known: Sequence[str] = ()) -> None:
    """Raise :class:`BindError` naming ``--shape NAME=...`` for every argument whose shape stays unknown."""
    from .infer import infer
    res = infer(sym.graph, shapes, dtypes, partial=True, default_dtype=np.float32)
    missing = [n for n in sym.list_arguments() + sym.list_auxiliary_states()
               if n not in known and not (res.var_shapes.get(n) and all(d > 0 for d in res.var_shapes[n]))]
    if missing:
        from .viz import is_input_name
        missing = [n for n in missing if is_input_name(n)] or missing
        raise BindError(f"cannot infer the shape of {_names_list(missing)}; give it with "
                        f"--shape {missing[0]}=D1,D2,... (e.g. --shape data=1,3,224,224)")


def _write_output(path: str, data: bytes | str) -> None:
    from .io.atomic import atomic_write_bytes
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def _add_shape_options(p: argparse.ArgumentParser, required: bool = False, symbolic: bool = False) -> None:
    what = " A dimension written as a name (batch) is symbolic." if symbolic else ""
    p.add_argument("--shape", action="append", type=parse_shape, metavar="NAME=D1,D2,...",
                   required=required,
                   help=f"shape of an input, e.g. --shape data=1,3,224,224 (repeat for more inputs).{what}")
    p.add_argument("--dtype", action="append", type=parse_dtype, metavar="NAME=DTYPE",
                   help="dtype of an input, e.g. --dtype data=float16 (default float32)")


def _shapes_and_dtypes(sym: Any, args: argparse.Namespace, symbolic: bool = False) -> tuple[dict, dict]:
    """The ``--shape`` and ``--dtype`` options as dicts, checked against the symbol's inputs."""
    shapes = _mapping(args.shape, "--shape")
    dtypes = _mapping(args.dtype, "--dtype")
    if not symbolic:
        concrete_shapes(shapes)
    check_input_names(sym, list(shapes), "--shape")
    check_input_names(sym, list(dtypes), "--dtype")
    return shapes, dtypes


def _opt_level(text: str) -> int:
    from .passes.manager import LEVELS
    try:
        level = int(text.upper().lstrip("O"))
    except ValueError:
        level = -1
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"unknown optimization level {text!r}; levels are "
                                         f"{', '.join(str(k) for k in LEVELS)}")
    return level


# -- xgraph inspect ---------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    """Print :func:`xgraph.viz.summarize`'s table for a symbol file."""
    from .viz import summarize
    sym = load_symbol(args.symbol)
    shapes, dtypes = _shapes_and_dtypes(sym, args)
    param_names = None
    if args.params:
        arg_p, aux_p = load_params(args.params)
        variables = set(sym.list_arguments()) | set(sym.list_auxiliary_states())
        for name, value in {**arg_p, **aux_p}.items():
            if name in variables:
                shapes.setdefault(name, value.shape)
                dtypes.setdefault(name, value.dtype.name)
        param_names = [n for n in sym.list_arguments() if n in arg_p]
    summary = summarize(sym.graph, shapes, dtypes, params=param_names, cost=not args.no_flops)
    print(summary.format(title=f"model: {args.symbol}"))
    return 0


def add_inspect(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph inspect``."""
    p = subparsers.add_parser(
        "inspect", help="summary table: nodes, op counts, output shapes, parameter counts, FLOPs",
        description="Print a summary of a symbol file: every node with its output shape and dtype, the "
                    "number of nodes of each operator, parameter counts (per parameter and in total) and "
                    "the FLOP count from XLA's cost analysis (when every input shape is known). "
                    "Variables named data, *_data or *label are inputs; the other arguments are "
                    "parameters (with --params: the arguments the file holds).")
    p.add_argument("symbol", metavar="MODEL-symbol.json", help="MXNet symbol JSON file")
    _add_shape_options(p)
    p.add_argument("--params", metavar="FILE", help="a .params file: parameter shapes and dtypes come from it")
    p.add_argument("--no-flops", action="store_true", help="skip XLA's cost analysis (it compiles the graph)")
    p.set_defaults(func=cmd_inspect)


# -- xgraph hlo -------------------------------------------------------------------
def cmd_hlo(args: argparse.Namespace) -> int:
    """Print the StableHLO (or XLA's optimized HLO) of a symbol file at the given shapes."""
    from .compile import compile as compile_graph
    sym = load_symbol(args.symbol)
    shapes, dtypes = _shapes_and_dtypes(sym, args)
    require_shapes(sym, shapes, dtypes)
    model = compile_graph(sym.graph, opt_level=args.opt_level, dtypes=dtypes, **shapes)
    text = model.compile().as_text() if args.optimized else model.lowered.as_text(debug_info=not args.no_locations)
    if args.output:
        _write_output(args.output, text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def add_hlo(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph hlo``."""
    p = subparsers.add_parser(
        "hlo", help="print the StableHLO of a symbol, or XLA's optimized HLO",
        description="Run the graph pass pipeline at --opt-level, lower the symbol for the given input "
                    "shapes and print its StableHLO (with locations naming the graph's nodes), or with "
                    "--optimized the HLO XLA compiles it to for this machine.")
    p.add_argument("symbol", metavar="MODEL-symbol.json", help="MXNet symbol JSON file")
    _add_shape_options(p)
    p.add_argument("--optimized", action="store_true", help="print XLA's optimized HLO instead of StableHLO")
    p.add_argument("--opt-level", type=_opt_level, default=1, metavar="N",
                   help="graph optimization level before lowering (0: none; default 1)")
    p.add_argument("--no-locations", action="store_true", help="StableHLO without location (node name) info")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(func=cmd_hlo)


# -- xgraph compile ---------------------------------------------------------------
def _artifact_inputs(sym: Any, arg_params: dict, shapes: dict, dtypes: dict, dynamic_batch: bool) -> dict:
    """``export``'s ``inputs=`` spec: every argument without a value (labels only when given a shape)."""
    inputs = [n for n in sym.list_arguments() if n not in arg_params and (n in shapes or not n.endswith("label"))]
    missing = [n for n in inputs if n not in shapes]
    if missing:
        raise BindError(f"input(s) {_names_list(missing)} have no value in the params file and no shape; "
                        f"give --shape {missing[0]}=D1,D2,... (or add them to the params file)")
    extra = sorted(set(dtypes) - set(inputs))
    if extra:
        raise UsageError(f"--dtype names {', '.join(extra)}, which are not inputs (parameters keep the dtype "
                         f"of their values); the inputs are {', '.join(inputs)}")
    spec = {}
    for n in inputs:
        shape = tuple(shapes[n])
        if dynamic_batch and shape:
            shape = ("batch",) + shape[1:]
        spec[n] = (shape, dtypes.get(n))
    return spec


def cmd_compile(args: argparse.Namespace) -> int:
    """Export a symbol file and its parameters as one artifact (:func:`xgraph.export.export`)."""
    from .export import TensorInfo, export
    sym = load_symbol(args.symbol)
    arg_p, aux_p = load_params(args.params)
    shapes, dtypes = _shapes_and_dtypes(sym, args, symbolic=True)
    arg_names, aux_names = sym.list_arguments(), sym.list_auxiliary_states()
    unused = sorted((set(arg_p) - set(arg_names)) | (set(aux_p) - set(aux_names)))
    if unused:
        print(f"note: ignoring {len(unused)} value(s) in {args.params} that the symbol does not use: "
              f"{_names_list(unused, 6)}", file=sys.stderr)
    arg_p = {k: v for k, v in arg_p.items() if k in arg_names and k not in shapes}
    aux_p = {k: v for k, v in aux_p.items() if k in aux_names}
    inputs = _artifact_inputs(sym, arg_p, shapes, dtypes, args.dynamic_batch)
    shardings = _mapping(args.sharding, "--sharding")
    out_shardings = _mapping(args.output_sharding, "--output-sharding")
    if (shardings or out_shardings) and args.mesh is None:
        raise UsageError("--sharding and --output-sharding need --mesh (e.g. --mesh data=4,model=2)")
    art = export(sym, arg_p, aux_p, inputs=inputs, path=args.output, platforms=args.platform or ("cpu",),
                 opt_level=args.opt_level, freeze_params=args.freeze_params, mesh=args.mesh,
                 input_shardings=shardings or None, output_shardings=out_shardings or None)
    m = art.manifest

    def tensors(table: str) -> str:
        return "; ".join(str(TensorInfo(d["name"], tuple(d["shape"]), d["dtype"])) for d in m[table])
    n_values = sum(int(np.prod(d["shape"], dtype=np.int64)) for d in m["params"] + m["aux"])
    print(f"wrote {args.output} ({art.size:,} bytes)")
    print(f"inputs:  {tensors('inputs')}")
    print(f"outputs: {tensors('outputs')}")
    print(f"platforms: {', '.join(m['platforms'])}; opt level {m['opt_level']}; "
          f"{len(m['params'])} parameters and {len(m['aux'])} auxiliary states ({n_values:,} values"
          f"{', frozen' if m['params_frozen'] else ''})")
    if m.get("sharding"):
        t = m["sharding"]
        split = [f"{n} {spec}" for n, spec in t["specs"].items() if spec != "()"]
        outs = [f"{r['name']} {spec}" for r, spec in zip(m["call_results"], t.get("result_specs", []))
                if r["kind"] == "output" and spec is not None]
        print(f"mesh: {', '.join(f'{a}={n}' for a, n in zip(t['axis_names'], t['mesh_shape']))} "
              f"({t['num_devices']} devices); split: {'; '.join(split) or 'nothing'}; outputs: "
              f"{'; '.join(outs) or 'as XLA places them'}")
    return 0


def add_compile(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph compile``."""
    p = subparsers.add_parser(
        "compile", help="symbol + params -> a compiled artifact file",
        description="Export a symbol file and its .params file as one artifact (see docs/artifacts.md): "
                    "the compiled module, the parameters and the symbol, checked by SHA-256 on load. "
                    "Inputs are the arguments the params file has no value for; label variables "
                    "(*label) are fed zeros unless given a --shape.")
    p.add_argument("symbol", metavar="MODEL-symbol.json", help="MXNet symbol JSON file")
    p.add_argument("params", metavar="MODEL-0000.params", help="MXNet .params file (arg:/aux: keys)")
    p.add_argument("-o", "--output", required=True, metavar="ARTIFACT", help="artifact file to write")
    _add_shape_options(p, symbolic=True)
    p.add_argument("--opt-level", type=_opt_level, default=1, metavar="N",
                   help="graph optimization level (0: none; default 1)")
    p.add_argument("--platform", action="append", metavar="NAME",
                   help="platform to lower for: cpu, cuda (gpu), rocm, tpu; repeat for several (default cpu)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="make the first dimension of every input symbolic ('batch'): one artifact, any batch size")
    p.add_argument("--freeze-params", action="store_true",
                   help="bake the parameters into the module as constants (they cannot be swapped later)")
    p.add_argument("--mesh", type=parse_mesh, metavar="AXIS=SIZE,...",
                   help="lower for a device mesh, e.g. --mesh data=4,model=2 (8 devices; inputs split over "
                        "'data', parameters as their variables' sharding attributes say)")
    p.add_argument("--sharding", action="append", type=parse_sharding, metavar="NAME=SPEC",
                   help="PartitionSpec of an input or parameter over the mesh, e.g. --sharding "
                        "fc1_weight=model,None (repeatable; overrides the variable's sharding attribute)")
    p.add_argument("--output-sharding", action="append", type=parse_sharding, metavar="NAME=SPEC",
                   help="PartitionSpec an output is returned with, e.g. --output-sharding softmax_output=data "
                        "(repeatable; default: XLA's choice)")
    p.set_defaults(func=cmd_compile)


# -- xgraph run -------------------------------------------------------------------
def load_npy(path: str) -> np.ndarray:
    """One array from a ``.npy`` file (no pickle); :class:`GraphFormatError` for anything else."""
    from .io.npy import read_npy
    with open(_check_file(path), "rb") as f:
        data = f.read()
    if data.startswith(b"PK\x03\x04"):
        raise GraphFormatError(f"{path!r} is an .npz archive; give one .npy file per input (--input NAME=FILE.npy)")
    return read_npy(data, GraphFormatError, f"{path!r} is not a readable .npy file")


def _stats(value: np.ndarray) -> str:
    if value.size == 0:
        return "empty"
    v = value.astype(np.float64)
    return f"min {v.min():.6g}  max {v.max():.6g}  mean {v.mean():.6g}  std {v.std():.6g}"


def cmd_run(args: argparse.Namespace) -> int:
    """Run an artifact on .npy inputs; print each output's shape and statistics, or save them."""
    from .export import load_artifact
    art = load_artifact(_check_file(args.artifact))
    values = {name: load_npy(path) for name, path in _mapping(args.input, "--input").items()}
    outputs = art.run(values, numpy=True)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for name, value in outputs.items():
        line = f"{name}: {tuple(value.shape)} {value.dtype.name}  {_stats(value)}"
        if args.output_dir:
            path = os.path.join(args.output_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".npy")
            np.save(path, value)
            line += f"  -> {path}"
        print(line)
    return 0


def add_run(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph run``."""
    p = subparsers.add_parser(
        "run", help="run an artifact on .npy inputs; print or save the outputs",
        description="Load an artifact (verifying every checksum), run it on the given inputs and print "
                    "each output's name, shape, dtype and summary statistics, or save each output as "
                    "OUTPUT_NAME.npy in --output-dir.")
    p.add_argument("artifact", metavar="ARTIFACT", help="artifact file written by 'xgraph compile'")
    p.add_argument("--input", action="append", type=parse_input_file, metavar="NAME=FILE.npy",
                   help="an input's value (repeat for every input)")
    p.add_argument("--output-dir", metavar="DIR", help="save the outputs as DIR/NAME.npy")
    p.set_defaults(func=cmd_run)


# -- xgraph plot ------------------------------------------------------------------
def cmd_plot(args: argparse.Namespace) -> int:
    """Write the Graphviz DOT (or SVG) picture of a symbol file."""
    from .infer import infer
    from .viz import dot_to_svg, to_dot
    sym = load_symbol(args.symbol)
    shapes, dtypes = _shapes_and_dtypes(sym, args)
    ext = os.path.splitext(args.output or "")[1].lower()
    if args.output and ext not in (".dot", ".gv", ".svg"):
        raise UsageError(f"-o {args.output}: the file name must end in .dot, .gv or .svg")
    res = infer(sym.graph, shapes, dtypes, partial=True, default_dtype=np.float32) if shapes else None
    dot = to_dot(sym.graph, shapes=res)
    if not args.output:
        sys.stdout.write(dot)
        return 0
    _write_output(args.output, dot_to_svg(dot) if ext == ".svg" else dot)
    print(f"wrote {args.output}")
    return 0


def add_plot(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph plot``."""
    p = subparsers.add_parser(
        "plot", help="draw the graph: Graphviz DOT, or SVG when Graphviz is installed",
        description="Write the graph as Graphviz DOT (FILE.dot), or render it to SVG (FILE.svg) with "
                    "Graphviz's 'dot' program. With --shape, every edge is labelled with the shape it "
                    "carries. Without -o, the DOT text is printed.")
    p.add_argument("symbol", metavar="MODEL-symbol.json", help="MXNet symbol JSON file")
    _add_shape_options(p)
    p.add_argument("-o", "--output", metavar="FILE.dot|FILE.svg", help="output file")
    p.set_defaults(func=cmd_plot)


# -- xgraph bench -----------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    """Time an artifact on random inputs: latency percentiles and throughput."""
    from .benchmark import bench_artifact
    from .export import current_platform, load_artifact
    art = load_artifact(_check_file(args.artifact))
    result = bench_artifact(art, batch=args.batch, iters=args.iters, warmup=args.warmup)
    print(f"artifact: {args.artifact} ({art.kind}, running on {current_platform()})")
    print(f"signature: {art.signature}")
    print(result.format())
    return 0


def add_bench(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph bench``."""
    p = subparsers.add_parser(
        "bench", help="latency percentiles and throughput of an artifact on random inputs",
        description="Run an artifact on random inputs matching its signature (floats standard normal, "
                    "integers zero): one first call (compilation included), --warmup untimed calls, then "
                    "--iters timed calls; prints p50/p90/p99 latency and throughput.")
    p.add_argument("artifact", metavar="ARTIFACT", help="artifact file written by 'xgraph compile'")
    p.add_argument("--batch", type=_positive_int, default=None, metavar="N",
                   help="size of every symbolic dimension (default 1; a sharded artifact: the smallest that splits over its mesh)")
    p.add_argument("--iters", type=_positive_int, default=100, metavar="N", help="timed calls (default 100)")
    p.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed calls before timing (default 5)")
    p.set_defaults(func=cmd_bench)


# -- xgraph demo -----------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Run :func:`xgraph.demo.run_demo` with the parsed options."""
    from .demo import run_demo
    run_demo(steps=args.steps, fast=args.fast, out=lambda line: print(line, flush=True))
    return 0


def add_demo(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph demo``."""
    p = subparsers.add_parser(
        "demo", help="build, inspect, lower and train a small MLP on scikit-learn's digits",
        description="Build an MLP with mx.sym, print its inferred shapes and a StableHLO excerpt, "
                    "then train it with SGD on scikit-learn's digits dataset (shipped with "
                    "scikit-learn, no download). Needs: pip install 'xgraph[examples]'.")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="number of SGD steps (default 300; 40 with --fast)")
    p.add_argument("--fast", action="store_true", help="a few steps only, for a quick check (CI)")
    p.set_defaults(func=cmd_demo)


#: Every subcommand's declaration function, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_inspect, add_hlo, add_compile, add_run, add_plot, add_bench, add_demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xgraph`` command, with every subcommand.

        >>> 'demo' in build_parser().format_help()
        True
    """
    from . import __version__
    parser = _Parser(
        prog="xgraph", description="xgraph: a define-then-run symbolic graph compiler with an "
                                   "MXNet 1.x-shaped API, lowered to XLA through JAX.")
    parser.add_argument("--version", action="version", version=f"xgraph {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xgraph`` command line; returns the exit status.

        >>> main(['demo', '--steps', '0'])   # doctest: +SKIP
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"xgraph {args.command}"
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())} (see '{prog} --help')", file=sys.stderr)
        return 2
    except XGraphError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f": {exc.filename!r}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
