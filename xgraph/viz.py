"""Graph visualisation: Graphviz DOT text (and SVG through the ``dot`` program), summary tables.

    >>> import xgraph as mx
    >>> from xgraph.viz import to_dot
    >>> print(to_dot((mx.sym.var('a') + 1).graph).splitlines()[0])
    digraph xgraph {

:func:`summarize` gives what ``xgraph inspect`` prints: every node with its
output shapes, the operator counts, parameter counts and XLA's FLOP estimate.
"""
from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import MissingDependencyError, XGraphError
from .graph import Graph


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attr_summary(node: Any, limit: int = 3) -> str:
    items = []
    for k, v in sorted(node.attrs.items()):
        s = repr(v) if not isinstance(v, str) else v
        if len(s) > 24:
            s = s[:21] + "..."
        items.append(f"{k}={s}")
    if len(items) > limit:
        items = items[:limit] + ["..."]
    return "\n".join(items)


def format_shape(shape: Sequence[int] | None) -> str:
    """A shape as text: ``(2, 3)``; unknown dimensions (0) as ``?``; an unknown shape as ``?``.

        >>> format_shape((2, 0)), format_shape(None), format_shape(())
        ('(2, ?)', '?', '()')
    """
    if shape is None:
        return "?"
    dims = [str(int(d)) if d else "?" for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def to_dot(graph: Graph, name: str = "xgraph", shapes: Any = None) -> str:
    """Graphviz DOT text: variables as ellipses, ops as boxes (op, name, a few attributes).

    Edges from a multi-output node are labelled with the output index;
    graph outputs are drawn as small points named ``out0``, ``out1`` ...
    ``shapes`` (an :class:`~xgraph.infer.InferResult`, as :func:`xgraph.infer.infer`
    returns) labels every edge with the shape it carries.

        >>> import xgraph as mx
        >>> from xgraph.infer import infer
        >>> g = mx.sym.relu(mx.sym.var('x'), name='r').graph
        >>> [l.strip() for l in to_dot(g, shapes=infer(g, {'x': (2, 3)})).splitlines() if '->' in l][0]
        'n0 -> n1 [label="(2, 3)"];'
    """
    order = graph.topo_order()
    ids = {id(n): f"n{i}" for i, n in enumerate(order)}
    lines = [f"digraph {name} {{", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    for n in order:
        if n.op is None:
            shape = n.user_attrs.get("__shape__", "")
            label = n.name + (f"\n{shape}" if shape else "")
            lines.append(f"  {ids[id(n)]} [label={_q(label)}, shape=ellipse];")
        else:
            attrs = _attr_summary(n)
            label = f"{n.op.name}\n{n.name}" + (f"\n{attrs}" if attrs else "")
            lines.append(f"  {ids[id(n)]} [label={_q(label)}, shape=box, style=rounded];")
    def edge_label(e: Any) -> str:
        parts = [str(e.index)] if e.node.num_outputs > 1 else []
        if shapes is not None:
            parts.append(format_shape(shapes.shape(e)))
        return f" [label={_q(': '.join(parts))}]" if parts else ""

    for n in order:
        for e in n.inputs:
            lines.append(f"  {ids[id(e.node)]} -> {ids[id(n)]}{edge_label(e)};")
    for i, e in enumerate(graph.outputs):
        lines.append(f"  out{i} [label={_q(f'out{i}')}, shape=plaintext];")
        lines.append(f"  {ids[id(e.node)]} -> out{i}{edge_label(e)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_to_svg(dot_text: str, timeout: float = 120.0) -> bytes:
    """Render DOT text to SVG with Graphviz's ``dot`` program.

    Raises :class:`~xgraph.errors.MissingDependencyError` when ``dot`` is not
    on the PATH, and :class:`~xgraph.errors.XGraphError` when it fails.

        >>> import xgraph as mx
        >>> svg = dot_to_svg(to_dot(mx.sym.var("x").graph))   # doctest: +SKIP
    """
    exe = shutil.which("dot")
    if exe is None:
        raise MissingDependencyError("SVG output needs Graphviz's 'dot' program, which is not on the PATH "
                                     "(install graphviz, e.g. apt install graphviz or brew install graphviz), "
                                     "or write a .dot file instead")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise XGraphError(f"Graphviz 'dot' failed (exit {proc.returncode}): "
                          f"{proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout


# -- summaries --------------------------------------------------------------------------
@dataclass
class NodeRow:
    """One row of a summary: a node, its kind (op name, or input/param/aux), shapes, dtypes, size."""

    name: str
    kind: str
    shapes: list
    dtypes: list
    size: int | None = None  # element count, for parameters and auxiliary states


@dataclass
class GraphSummary:
    """What :func:`summarize` found; :meth:`format` renders it as the ``xgraph inspect`` table."""

    rows: list[NodeRow]
    op_counts: dict[str, int]
    outputs: list[str]
    num_params: int | None
    num_aux: int | None
    cost: dict = field(default_factory=dict)

    @property
    def num_ops(self) -> int:
        """Number of operator nodes."""
        return sum(self.op_counts.values())

    @property
    def flops(self) -> float | None:
        """XLA's FLOP estimate, or None when it was not computed."""
        v = self.cost.get("flops")
        return None if v is None else float(v)

    def format(self, title: str | None = None) -> str:
        """The summary as text: header, operator counts, the node table, parameter totals, FLOPs."""
        kinds = Counter(r.kind for r in self.rows if r.kind in ("input", "param", "aux"))
        out = [title] if title else []
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"
        out.append(f"nodes: {len(self.rows)} ({n(self.num_ops, 'operator')}, {n(kinds['input'], 'input')}, "
                   f"{n(kinds['param'], 'parameter')}, {n(kinds['aux'], 'auxiliary state')})")
        out.append(f"outputs: {', '.join(self.outputs)}")
        out.append("ops: " + ", ".join(f"{op} {n}" for op, n in
                                       sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0]))))
        out.append("")
        table = [("node", "op", "output shape", "dtype", "params")]
        for r in self.rows:
            table.append((r.name, r.kind, "; ".join(format_shape(s) for s in r.shapes),
                          "; ".join("?" if d is None else np.dtype(d).name for d in r.dtypes),
                          "" if r.size is None else f"{r.size:,}"))
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for i, row in enumerate(table):
            out.append("  ".join(c.ljust(w) if j < 4 else c.rjust(w)
                                 for j, (c, w) in enumerate(zip(row, widths))).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        out.append("")

        def count(v: int | None) -> str:
            return "unknown (give the input shapes)" if v is None else f"{v:,}"
        out.append(f"parameters: {count(self.num_params)}")
        out.append(f"auxiliary states: {count(self.num_aux)}")
        if self.flops is not None:
            out.append(f"FLOPs (XLA cost analysis): {self.flops:,.0f} ({_si(self.flops)}FLOP)")
            if "bytes accessed" in self.cost:
                out.append(f"bytes accessed (XLA cost analysis): {float(self.cost['bytes accessed']):,.0f}")
        else:
            out.append("FLOPs: unknown (give the shape of every input)")
        return "\n".join(out)


def _si(v: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f} "


def is_input_name(name: str) -> bool:
    """MXNet's naming convention for data and label variables (``data``, ``softmax_label``).

        >>> is_input_name('data'), is_input_name('softmax_label'), is_input_name('fc1_weight')
        (True, True, False)
    """
    return name == "data" or name.endswith("_data") or name.endswith("label")


def summarize(graph: Graph, shapes: Mapping[str, Any] | None = None, dtypes: Mapping[str, Any] | None = None,
              params: Sequence[str] | None = None, cost: bool = True) -> GraphSummary:
    """Summarize ``graph``: every node's output shapes and dtypes, op counts, parameter counts, FLOPs.

    ``shapes``/``dtypes`` give known variables by name (inputs, and parameter
    values' shapes).  Arguments named in ``params`` are parameters; without
    it, every argument not in ``shapes`` and not named like data or a label
    (:func:`is_input_name`) is.  With ``cost`` and every shape known, the
    graph is compiled once and XLA's cost analysis gives the FLOP count.

        >>> import xgraph as mx
        >>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=4, name='fc')
        >>> s = summarize(net.graph, {'data': (2, 3)})
        >>> s.op_counts, s.num_params, s.flops > 0
        ({'FullyConnected': 1}, 16, True)
    """
    from .infer import infer
    from .lower import unique_names

    shapes = dict(shapes or {})
    dtypes = dict(dtypes or {})
    for node in graph.variables():  # MXNet's default dtype for inputs whose dtype nobody gives
        if node.name in shapes and node.name not in dtypes and "__dtype__" not in node.user_attrs:
            dtypes[node.name] = np.float32
    res = infer(graph, shapes, dtypes, partial=True, default_dtype=np.float32)
    aux_names = set(unique_names(graph.aux_nodes()))
    param_names = set(params) if params is not None else {
        n for n in unique_names(graph.argument_nodes()) if n not in shapes and not is_input_name(n)}
    rows, op_counts, seen = [], Counter(), set()
    totals = {"param": 0, "aux": 0}
    complete = {"param": True, "aux": True}
    for node in graph.topo_order():
        if node.op is None:
            if node.name in seen:
                continue
            seen.add(node.name)
            kind = "aux" if node.name in aux_names else "param" if node.name in param_names else "input"
            shape = res.var_shapes.get(node.name)
            size = None
            if kind != "input":
                known = shape is not None and all(d > 0 for d in shape)
                size = int(np.prod(shape, dtype=np.int64)) if known else None
                if known:
                    totals[kind] += size
                else:
                    complete[kind] = False
            rows.append(NodeRow(node.name, kind, [shape], [res.var_dtypes.get(node.name)], size))
            continue
        op_counts[node.op.name] += 1
        n_vis = node.num_visible_outputs
        rows.append(NodeRow(node.name, node.op.name,
                            [res.shapes.get((id(node), i)) for i in range(n_vis)],
                            [res.dtypes.get((id(node), i)) for i in range(n_vis)]))
    summary = GraphSummary(rows, dict(op_counts), [n for e in graph.outputs for n in [_output_name(e)]],
                           totals["param"] if complete["param"] else None,
                           totals["aux"] if complete["aux"] else None)
    all_known = all(s is not None and all(d > 0 for d in s) for s in res.var_shapes.values())
    if cost and all_known:
        from .lower import Lowered
        summary.cost = Lowered(graph, {n: s for n, s in res.var_shapes.items()}, res.var_dtypes).cost_analysis()
    return summary


def _output_name(e: Any) -> str:
    if e.node.op is None:
        return e.node.name
    names = e.node.output_names()
    return names[e.index] if e.index < len(names) else f"{e.node.name}_output{e.index}"
