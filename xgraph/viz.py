"""Graph visualisation: Graphviz DOT text for a graph.

    >>> import xgraph as mx
    >>> from xgraph.viz import to_dot
    >>> print(to_dot((mx.sym.var('a') + 1).graph).splitlines()[0])
    digraph xgraph {
"""
from __future__ import annotations

from typing import Any

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


def to_dot(graph: Graph, name: str = "xgraph") -> str:
    """Graphviz DOT text: variables as ellipses, ops as boxes (op, name, a few attributes).

    Edges from a multi-output node are labelled with the output index;
    graph outputs are drawn as small points named ``out0``, ``out1`` ...
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
    for n in order:
        for e in n.inputs:
            extra = f" [label={_q(str(e.index))}]" if e.node.num_outputs > 1 else ""
            lines.append(f"  {ids[id(e.node)]} -> {ids[id(n)]}{extra};")
    for i, e in enumerate(graph.outputs):
        lines.append(f"  out{i} [label={_q(f'out{i}')}, shape=plaintext];")
        lines.append(f"  {ids[id(e.node)]} -> out{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"
