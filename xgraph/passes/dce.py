"""Dead code elimination.

Graphs are rooted at their outputs, so a node nothing reads is never part of
a graph: rebuilding the graph from its outputs is already the classic DCE,
and this pass reports how many nodes that dropped (usually none).  What it
adds is narrowing multi-output ops whose extra outputs nobody reads, from a
table keyed by op name: ``topk(ret_typ='both')`` with only values or only
indices read becomes ``ret_typ='value'``/``'indices'``, and ``BatchNorm`` /
``LayerNorm`` with ``output_mean_var=True`` and only the normalized output
read stop exposing mean and variance.  XLA removes dead HLO on its own, so
the gain is smaller graphs to infer, lower and read, not faster kernels.

    >>> import xgraph as mx
    >>> from xgraph.passes.dce import dce
    >>> len(dce((mx.sym.var('a') + 1).graph))
    2
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..graph import Entry, Graph, Node
from .context import PassContext
from .manager import register_pass
from .rewrite import Rewriter, rewrite, used_outputs

Narrow = Callable[[Node, set, Rewriter], "Sequence[Entry | None] | None"]


def _narrow_topk(node: Node, used: set, rw: Rewriter) -> Sequence[Entry | None] | None:
    if node.params.get("ret_typ") != "both" or len(used) != 1:
        return None
    (idx,) = used
    kind = "value" if idx == 0 else "indices"
    new = node.replace(attrs={**node.attrs, "ret_typ": kind},
                       raw_attrs={k: v for k, v in node.raw_attrs.items() if k != "ret_typ"})
    return [Entry(new, 0), None] if idx == 0 else [None, Entry(new, 0)]


def _narrow_mean_var(node: Node, used: set, rw: Rewriter) -> Sequence[Entry | None] | None:
    if not node.params.get("output_mean_var") or used - {0}:
        return None
    new = node.replace(attrs={**node.attrs, "output_mean_var": False},
                       raw_attrs={k: v for k, v in node.raw_attrs.items() if k != "output_mean_var"})
    return [Entry(new, i) if i < new.num_outputs else None for i in range(node.num_outputs)]


#: op name -> rule narrowing the op to the outputs that are read (rules as data)
NARROWING: dict[str, Narrow] = {
    "topk": _narrow_topk,
    "BatchNorm": _narrow_mean_var,
    "BatchNorm_v1": _narrow_mean_var,
    "_contrib_SyncBatchNorm": _narrow_mean_var,
    "LayerNorm": _narrow_mean_var,
}


@register_pass("dce", purpose="training-safe")
def dce(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Drop unreachable nodes and narrow multi-output ops to the outputs that are read."""
    used = used_outputs(graph)

    def rule(node: Node, rw: Rewriter):
        fn = NARROWING.get(node.op.name)
        if fn is None:
            return None
        return fn(node, used.get(id(rw.original), set()), rw)

    rw = Rewriter(graph)
    out = rewrite(graph, rule, rw=rw)
    if ctx is not None and rw.changes:
        ctx.note(f"narrowed {rw.changes} multi-output node(s)")
    return out
