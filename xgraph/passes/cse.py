"""Common subexpression elimination by structural hashing.

Two op nodes compute the same value when they apply the same op, with the
same attributes (and user attributes such as ``ctx_group``), to the same
inputs.  Inputs are compared after rewriting, so equal subtrees collapse from
the leaves up; variables are identified by name (two variable nodes with one
name are one argument).  Commutative ops have their inputs sorted first, so
``a + b`` and ``b + a`` merge.

Never merged: variables (they are distinct arguments), random ops (two
Dropouts draw different masks), stateful ops and ops with auxiliary states
(each updates its own state), and loss heads (``SoftmaxOutput``, ``MakeLoss``
...), whose custom gradient ignores the head gradient: two heads give two
gradients, one merged head would give one.

    >>> import xgraph as mx
    >>> from xgraph.passes.cse import cse
    >>> a, b = mx.sym.var('a'), mx.sym.var('b')
    >>> len(cse(mx.sym.Group([a + b, b + a]).graph))
    3
"""
from __future__ import annotations

from typing import Any

from ..errors import XGraphError
from ..graph import Entry, Graph, Node
from .context import PassContext
from .manager import register_pass
from .rewrite import Rewriter, rewrite

#: ops whose inputs may be reordered (when the inputs share a dtype)
COMMUTATIVE = frozenset({
    "elemwise_add", "elemwise_mul", "_maximum", "_minimum", "_hypot", "_equal", "_not_equal",
    "_logical_and", "_logical_or", "_logical_xor", "add_n",
    "broadcast_add", "broadcast_mul", "broadcast_maximum", "broadcast_minimum", "broadcast_hypot",
    "broadcast_equal", "broadcast_not_equal", "broadcast_logical_and", "broadcast_logical_or",
    "broadcast_logical_xor",
})

#: ops that are never merged although deterministic: heads whose gradient ignores the head gradient
NEVER_MERGE = frozenset({
    "SoftmaxOutput", "MakeLoss", "LinearRegressionOutput", "LogisticRegressionOutput",
    "MAERegressionOutput", "SVMOutput", "IdentityAttachKLSparseReg",
})


def mergeable(node: Node) -> bool:
    """Whether CSE may merge ``node`` with an equal node."""
    op = node.op
    return not (op is None or node.is_random or op.stateful or op.aux or op.name in NEVER_MERGE
                or op.family == "loss" and op.name != "BlockGrad")


def _input_key(e: Entry) -> tuple:
    return ("v", e.node.name, 0) if e.node.op is None else ("n", id(e.node), e.index)


def node_key(node: Node, rw: Rewriter | None = None) -> tuple:
    """The structural key of an op node: op, attributes, user attributes, inputs."""
    ins = [_input_key(e) for e in node.inputs]
    if node.op.name in COMMUTATIVE:
        dts = {str(rw.dtype(e)) for e in node.inputs if rw.dtype(e) is not None} if rw is not None else set()
        if len(dts) <= 1:
            ins.sort(key=repr)
    attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
    user = tuple(sorted(node.user_attrs.items()))
    return (node.op.name, attrs, user, tuple(ins))


@register_pass("cse", purpose="training-safe")
def cse(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Merge op nodes that apply the same op with the same attributes to the same inputs."""
    needs_dtypes = any(n.op is not None and n.op.name in COMMUTATIVE for n in graph.topo_order())
    info = None
    if needs_dtypes and ctx is not None:
        try:
            info = ctx.infer(graph)
        except XGraphError:  # without dtypes, commutative inputs are simply not reordered
            info = None
    table: dict[tuple, Node] = {}

    def rule(node: Node, rw: Rewriter) -> Any:
        if not mergeable(node):
            return None
        key = node_key(node, rw if info is not None else None)
        seen = table.get(key)
        if seen is None:
            table[key] = node
            return None
        return [Entry(seen, i) for i in range(node.num_outputs)]

    rw = Rewriter(graph, info)
    out = rewrite(graph, rule, rw=rw)
    if ctx is not None and rw.changes:
        ctx.note(f"merged {rw.changes} node(s)")
    return out
