"""The pass manager: named passes, optimization levels, per-pass report, dumps, verify mode.

A pass is a function ``Graph -> Graph`` (or ``(Graph, PassContext) -> Graph``
when it needs shapes, dtypes or bound parameter values), registered by name
with :func:`register_pass` and a declared purpose: ``'training-safe'`` (the
rewritten graph computes the same outputs *and gradients*) or
``'inference-only'`` (same outputs of ``forward(is_train=False)``).  A
pipeline is a list of names, so users put their own passes in it.

    >>> import xgraph as mx
    >>> from xgraph.passes import PassManager
    >>> a = mx.sym.var('a')
    >>> pm = PassManager(opt_level=1)
    >>> res = pm.run(((a + a) * 1.0).graph, {'a': (2,)})
    >>> [n.name for n in res.graph.topo_order()]
    ['a', '_plus0']
"""
from __future__ import annotations

import collections
import html
import inspect
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import PassError, XGraphError
from ..graph import Graph
from ..ops import registry as op_registry
from .context import PassContext, coerce_context

TRAINING_SAFE = "training-safe"
INFERENCE_ONLY = "inference-only"
PURPOSES = (TRAINING_SAFE, INFERENCE_ONLY)


@dataclass(frozen=True)
class Pass:
    """A named graph rewrite with a declared purpose.

    ``fn`` takes a :class:`~xgraph.graph.Graph` (and, if it has a second
    parameter, the :class:`PassContext`) and returns a new graph.
    """

    name: str
    fn: Callable[..., Graph]
    purpose: str = TRAINING_SAFE
    doc: str = ""

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"pass {self.name!r}: purpose must be one of {PURPOSES}, got {self.purpose!r}")

    @property
    def takes_context(self) -> bool:
        """Whether ``fn`` takes the :class:`PassContext` as a second argument."""
        try:
            params = [p for p in inspect.signature(self.fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        except (TypeError, ValueError):
            return False
        return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)

    def __call__(self, graph: Graph, ctx: PassContext | None = None) -> Graph:
        ctx = ctx if ctx is not None else PassContext()
        return self.fn(graph, ctx) if self.takes_context else self.fn(graph)


_PASSES: dict[str, Pass] = {}


def register_pass(name: str, purpose: str = TRAINING_SAFE, doc: str | None = None
                  ) -> Callable[[Callable[..., Graph]], Callable[..., Graph]]:
    """Decorator: register a function as the pass ``name``.

        >>> from xgraph.passes import register_pass
        >>> @register_pass('doc_example_noop', purpose='training-safe')
        ... def noop(graph):
        ...     '''Returns the graph unchanged.'''
        ...     return graph
        >>> get_pass('doc_example_noop').purpose
        'training-safe'
    """
    def deco(fn: Callable[..., Graph]) -> Callable[..., Graph]:
        text = doc if doc is not None else (inspect.getdoc(fn) or "").split("\n\n")[0]
        _PASSES[name] = Pass(name, fn, purpose, text)
        return fn
    return deco


def get_pass(name: str) -> Pass:
    """The registered pass called ``name``; a :class:`PassError` lists the known ones otherwise."""
    try:
        return _PASSES[name]
    except KeyError:
        raise PassError(f"unknown pass {name!r}; registered passes: {', '.join(sorted(_PASSES))}") from None


def list_passes() -> list[Pass]:
    """Every registered pass, sorted by name."""
    return [_PASSES[k] for k in sorted(_PASSES)]


#: The pipelines of the optimization levels.
LEVELS: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("dce", "cse", "fold_constants", "simplify"),
    2: ("drop_dropout", "dce", "cse", "fold_constants", "simplify", "fold_batchnorm", "batchnorm_to_scale_shift"),
}


def level_pipeline(opt_level: int | str) -> tuple[str, ...]:
    """The pass names of an optimization level (``1``, ``'O1'``)."""
    if isinstance(opt_level, str) and opt_level[:1] in "oO":
        opt_level = opt_level[1:]
    try:
        return LEVELS[int(opt_level)]
    except (KeyError, ValueError):
        raise PassError(f"unknown optimization level {opt_level!r}; levels are "
                        f"{', '.join('O' + str(k) for k in LEVELS)}") from None


# -- the report ---------------------------------------------------------------------
@dataclass
class PassRecord:
    """What one pass did: its time, node counts and a short description of the change."""

    index: int
    name: str
    purpose: str
    seconds: float
    nodes_before: int
    nodes_after: int
    changed: str
    skipped: bool = False


@dataclass
class Report:
    """The record of a pipeline run: one :class:`PassRecord` per pass, printable as a table.

        >>> print(Report([PassRecord(1, 'cse', 'training-safe', 0.001, 10, 8, '-2 elemwise_add')]))
        #  pass  purpose        time (ms)  nodes  what changed
        1  cse   training-safe      1.000  10->8  -2 elemwise_add
    """

    records: list[PassRecord] = field(default_factory=list)
    dump_files: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        """Time spent in the passes themselves (not verification or dumps), in seconds."""
        return sum(r.seconds for r in self.records)

    def _rows(self) -> list[list[str]]:
        rows = []
        for r in self.records:
            nodes = f"{r.nodes_before}->{r.nodes_after}" if not r.skipped else "-"
            rows.append([str(r.index), r.name, r.purpose, f"{r.seconds * 1e3:.3f}", nodes, r.changed])
        return rows

    def __str__(self) -> str:
        head = ["#", "pass", "purpose", "time (ms)", "nodes", "what changed"]
        rows = self._rows()
        if not rows:
            return "(no passes ran)"
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        right = {0, 3}

        def fmt(row: list[str]) -> str:
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
            return "  ".join(cells).rstrip()
        return "\n".join([fmt(head)] + [fmt(r) for r in rows])

    def __repr__(self) -> str:
        return f"<Report {len(self.records)} passes, {self.total_seconds * 1e3:.1f} ms>\n{self}"

    def _repr_html_(self) -> str:
        head = ["#", "pass", "purpose", "time (ms)", "nodes", "what changed"]
        cells = "".join(f"<th>{h}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._rows())
        return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"

    def to_dicts(self) -> list[dict[str, Any]]:
        """The records as plain dictionaries (for logging or JSON)."""
        return [dict(vars(r)) for r in self.records]


def describe_change(before: Graph, after: Graph, notes: Sequence[str] = ()) -> str:
    """``-2 BatchNorm, +1 _constant; folded 2 ...``: op counts that changed, then the pass's notes."""
    def count(g: Graph) -> collections.Counter:
        return collections.Counter("Variable" if n.op is None else n.op.name for n in g.topo_order())
    cb, ca = count(before), count(after)
    parts = []
    for k in sorted(set(cb) | set(ca)):
        d = ca[k] - cb[k]
        if d:
            parts.append(f"{d:+d} {k}")
    text = ", ".join(parts)
    if notes:
        text = "; ".join([t for t in [text] if t] + list(notes))
    if not text:
        rewired = before.structural_hash() != after.structural_hash()
        text = "rewired" if rewired else "no change"
    return text


# -- verification ------------------------------------------------------------------
def check_well_formed(graph: Graph) -> list[str]:
    """Problems with ``graph``'s structure: dangling entries, duplicate names, unknown ops.

        >>> import xgraph as mx
        >>> check_well_formed((mx.sym.var('a') + 1).graph)
        []
    """
    problems = []
    op_names: dict[str, int] = {}
    for n in graph.topo_order():
        if n.op is None:
            if n.inputs:
                problems.append(f"variable '{n.name}' has inputs")
            continue
        op_names[n.name] = op_names.get(n.name, 0) + 1
        if not op_registry.exists(n.op.name) or op_registry.get(n.op.name) is not n.op:
            problems.append(f"node '{n.name}' uses op {n.op.name!r}, which is not the registered operator")
            continue
        expected = n.op.input_names(n.params)
        if len(n.inputs) != len(expected):
            problems.append(f"node '{n.name}' (op {n.op.name}) has {len(n.inputs)} input(s), "
                            f"expected {len(expected)} ({', '.join(expected)})")
        for pos, e in enumerate(n.inputs):
            if not 0 <= e.index < e.node.num_outputs:
                problems.append(f"node '{n.name}' input {pos} reads output {e.index} of '{e.node.name}', "
                                f"which has {e.node.num_outputs} output(s)")
    for e in graph.outputs:
        if not 0 <= e.index < e.node.num_outputs:
            problems.append(f"graph output reads output {e.index} of '{e.node.name}', "
                            f"which has {e.node.num_outputs} output(s)")
    problems += [f"op node name '{k}' is used by {v} nodes" for k, v in op_names.items() if v > 1]
    return problems


def check_variables(before: Graph, after: Graph, new_names: Iterable[str]) -> list[str]:
    """Variables that appeared without being declared new, or whose shape/dtype attributes changed."""
    old = {}
    for n in before.variables():
        old.setdefault(n.name, n)
    allowed = set(new_names)
    problems = []
    for n in after.variables():
        if n.name in old:
            o = old[n.name]
            for key in ("__shape__", "__dtype__"):
                if o.user_attrs.get(key) != n.user_attrs.get(key):
                    problems.append(f"variable '{n.name}' changed {key} from {o.user_attrs.get(key)!r} "
                                    f"to {n.user_attrs.get(key)!r}")
        elif n.name not in allowed:
            problems.append(f"variable '{n.name}' is new (renamed?) and the pass did not declare it "
                            f"with PassContext.new_variable")
    return problems


def check_outputs(before: Graph, after: Graph, ctx: PassContext, before_info: Any = None) -> list[str]:
    """Outputs whose count, shape or dtype changed (shapes and dtypes inferred with ``ctx``).

    What was unknown before the pass may become known (``x * 1`` -> ``x``);
    what was known must stay the same.
    """
    if len(before.outputs) != len(after.outputs):
        return [f"the graph had {len(before.outputs)} output(s) and now has {len(after.outputs)}"]
    bi = before_info if before_info is not None else ctx.infer(before)
    try:
        ai = ctx.infer(after)
    except XGraphError as exc:
        return [f"the new graph fails inference: {exc}"]
    problems = []
    for i, (eb, ea) in enumerate(zip(before.outputs, after.outputs)):
        sb, sa, db, da = bi.shape(eb), ai.shape(ea), bi.dtype(eb), ai.dtype(ea)
        if sb is not None and sb != sa:
            problems.append(f"output {i} had shape {sb} and now has {sa}")
        if db is not None and str(db) != str(da):
            problems.append(f"output {i} had dtype {db} and now has {da}")
    return problems


# -- dumps ---------------------------------------------------------------------------
def _graph_json(graph: Graph) -> str:
    from ..io.symbol_json import to_json
    try:
        return to_json(graph)
    except Exception as exc:  # noqa: BLE001 - a broken graph is dumped as best we can
        lines = [f"// to_json failed: {exc}"]
        lines += [f"{n!r} inputs={list(n.inputs)}" for n in graph.topo_order()]
        return "\n".join(lines)


def dump_graph(graph: Graph, directory: str, stem: str) -> list[str]:
    """Write ``stem.json`` (symbol JSON) and ``stem.dot`` (Graphviz) into ``directory``."""
    from ..viz import to_dot
    os.makedirs(directory, exist_ok=True)
    paths = []
    for ext, text in (("json", _graph_json(graph)), ("dot", _safe_dot(graph, to_dot))):
        path = os.path.join(directory, f"{stem}.{ext}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        paths.append(path)
    return paths


def _safe_dot(graph: Graph, to_dot: Callable[[Graph], str]) -> str:
    try:
        return to_dot(graph)
    except Exception as exc:  # noqa: BLE001
        return f"// to_dot failed: {exc}\n"


# -- running pipelines -------------------------------------------------------------
@dataclass
class Optimized:
    """The result of a pipeline run: the graph, its report, and parameter values passes created."""

    graph: Graph
    report: Report
    new_params: dict[str, Any]
    context: PassContext


class PassManager:
    """Runs a pipeline of passes: an optimization level or a list of pass names.

        >>> pm = PassManager(['cse', 'dce'])
        >>> [p.name for p in pm.passes]
        ['cse', 'dce']
    """

    def __init__(self, pipeline: Sequence[str | Pass] | int | str | None = None, verify: bool = False,
                 dump_dir: str | os.PathLike | None = None, opt_level: int | str | None = None):
        if pipeline is None:
            pipeline = 1 if opt_level is None else opt_level
        if isinstance(pipeline, (int, str)):
            pipeline = level_pipeline(pipeline)
        self.passes = [p if isinstance(p, Pass) else get_pass(p) for p in pipeline]
        self.verify = verify
        self.dump_dir = os.fspath(dump_dir) if dump_dir is not None else None
        self.report = Report()

    def run(self, graph: Graph, shapes: Any = None, dtypes: Mapping[str, Any] | None = None,
            for_training: bool = False, params: Mapping[str, Any] | None = None,
            options: Mapping[str, Any] | None = None, default_dtype: Any = np.float32) -> Optimized:
        """Run the pipeline on ``graph``.

        ``shapes`` is a name -> shape dict or an :class:`~xgraph.infer.InferResult`
        (or a ready :class:`PassContext`).  With ``for_training`` the
        inference-only passes are skipped (and recorded as skipped).
        """
        ctx = coerce_context(shapes, dtypes, params=dict(params or {}), for_training=for_training,
                             options=dict(options or {}), default_dtype=default_dtype)
        if isinstance(shapes, PassContext):
            ctx.for_training = for_training
            ctx.params.update(dict(params or {}))
            ctx.options.update(dict(options or {}))
        report = Report()
        if self.dump_dir:
            report.dump_files += dump_graph(graph, self.dump_dir, "00_input")
        before_info = ctx.infer(graph) if self.verify else None
        for i, p in enumerate(self.passes, start=1):
            n_before = len(graph)
            if for_training and p.purpose == INFERENCE_ONLY:
                report.records.append(PassRecord(i, p.name, p.purpose, 0.0, n_before, n_before,
                                                 "skipped (inference-only, graph is for training)", True))
                if self.dump_dir:
                    report.dump_files += dump_graph(graph, self.dump_dir, f"{i:02d}_{p.name}")
                continue
            ctx.notes = []
            t0 = time.perf_counter()
            try:
                new = p(graph, ctx)
            except PassError:
                raise
            except Exception as exc:
                paths = dump_graph(graph, self._failure_dir(), f"{i:02d}_{p.name}_before")
                raise PassError(f"pass '{p.name}' raised {type(exc).__name__}: {exc} "
                                f"(graph before the pass: {paths[0]})") from exc
            if not isinstance(new, Graph):
                raise PassError(f"pass '{p.name}' returned {type(new).__name__}, not a Graph")
            dt = time.perf_counter() - t0
            if self.verify:
                before_info = self._verify(p, i, graph, new, ctx, before_info, set(ctx.new_params))
            report.records.append(PassRecord(i, p.name, p.purpose, dt, n_before, len(new),
                                             describe_change(graph, new, ctx.notes)))
            graph = new
            if self.dump_dir:
                report.dump_files += dump_graph(graph, self.dump_dir, f"{i:02d}_{p.name}")
        self.report = report
        return Optimized(graph, report, dict(ctx.new_params), ctx)

    def _failure_dir(self) -> str:
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
            return self.dump_dir
        return tempfile.mkdtemp(prefix="xgraph-pass-")

    def _verify(self, p: Pass, i: int, before: Graph, after: Graph, ctx: PassContext, before_info: Any,
                new_names: set[str]) -> Any:
        problems = check_well_formed(after) + check_variables(before, after, new_names)
        after_info = None
        if not problems:
            problems = check_outputs(before, after, ctx, before_info)
            if not problems:
                after_info = ctx.infer(after)
        if problems:
            d = self._failure_dir()
            b = dump_graph(before, d, f"{i:02d}_{p.name}_before")[0]
            a = dump_graph(after, d, f"{i:02d}_{p.name}_after")[0]
            raise PassError(f"pass '{p.name}' produced an invalid graph: {'; '.join(problems[:5])}"
                            f"{' ...' if len(problems) > 5 else ''} (before: {b}, after: {a})")
        return after_info

    def dump_lowered(self, lowered: Any, report: Report | None = None) -> list[str]:
        """Write the final StableHLO and XLA's optimized HLO next to the graph dumps."""
        if not self.dump_dir:
            return []
        n = len(self.passes) + 1
        paths = []
        for stem, text in ((f"{n:02d}_stablehlo.mlir", lambda: lowered.as_text()),
                           (f"{n + 1:02d}_xla_optimized_hlo.txt", lambda: lowered.compile().as_text())):
            path = os.path.join(self.dump_dir, stem)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text())
            paths.append(path)
        (report or self.report).dump_files.extend(paths)
        return paths


def optimize(graph: Graph, opt_level: int | str = 1, for_training: bool = False, shapes: Any = None,
             dtypes: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
             passes: Sequence[str | Pass] | None = None, verify: bool = False,
             dump_dir: str | os.PathLike | None = None, options: Mapping[str, Any] | None = None,
             default_dtype: Any = np.float32) -> Optimized:
    """Run an optimization level (or the given ``passes``) on ``graph``: what executors call.

    Returns an :class:`Optimized` whose ``new_params`` must be fed with the
    graph's other arguments (values passes derived from ``params``).

        >>> import xgraph as mx
        >>> x = mx.sym.var('x')
        >>> optimize((x * 1.0).graph, opt_level=1).graph.outputs[0].node.name
        'x'
    """
    pm = PassManager(passes if passes is not None else opt_level, verify=verify, dump_dir=dump_dir)
    return pm.run(graph, shapes, dtypes, for_training=for_training, params=params, options=options,
                  default_dtype=default_dtype)
