"""Rematerialisation (gradient checkpointing): mark segments the lowering recomputes in backward.

The pass cuts the graph's op nodes, in topological order, into consecutive
segments and marks each node with the user attribute ``__remat_segment__``
(:data:`xgraph.lower.REMAT_ATTR`).  The lowering runs each segment as one
function under ``jax.checkpoint``: the backward pass keeps only the values
that leave a segment and recomputes the segment's inner activations, trading
compute (about one extra forward) for memory.

Policies (``options``):

* ``remat_every=k`` — segments of ``k`` op nodes;
* ``remat_budget=bytes`` — segments as long as possible while the
  activations produced inside one segment (estimated from inferred shapes and
  dtypes) stay within ``bytes``; a single node larger than the budget is a
  segment of its own.

Without either option the pass uses ``remat_every = ceil(sqrt(op nodes))``,
the classic square-root schedule.  Nodes already marked (by a user through
``mx.AttrScope(__remat_segment__='...')``) keep their marks.

    >>> import xgraph as mx
    >>> from xgraph.passes import optimize
    >>> x = mx.sym.var('x')
    >>> y = mx.sym.relu(mx.sym.tanh(mx.sym.sin(mx.sym.cos(x))))
    >>> g = optimize(y.graph, passes=['remat'], options={'remat_every': 2}, shapes={'x': (4,)}).graph
    >>> [n.user_attrs.get('__remat_segment__') for n in g.topo_order() if n.op is not None]
    ['remat0', 'remat0', 'remat1', 'remat1']
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph import Entry, Graph, Node
from ..lower import REMAT_ATTR
from .context import PassContext
from .manager import register_pass


def _entry_bytes(info: Any, node: Node) -> int:
    total = 0
    for i in range(node.num_outputs):
        s, d = info.shape(Entry(node, i)), info.dtype(Entry(node, i))
        if s is None:
            continue
        total += int(np.prod([max(int(x), 1) for x in s])) * (np.dtype(d).itemsize if d is not None else 4)
    return total


def plan_segments(graph: Graph, ctx: PassContext) -> dict[int, int]:
    """Segment index per op-node id, from the policy in ``ctx.options``."""
    ops = [n for n in graph.topo_order() if n.op is not None and not (n.user_attrs and REMAT_ATTR in n.user_attrs)]
    seg: dict[int, int] = {}
    budget = ctx.options.get("remat_budget")
    if budget is not None:
        info = ctx.infer(graph)
        k, used = 0, 0
        for n in ops:
            b = _entry_bytes(info, n)
            if used and used + b > int(budget):
                k, used = k + 1, 0
            seg[id(n)] = k
            used += b
        return seg
    every = ctx.options.get("remat_every") or max(1, math.ceil(math.sqrt(max(len(ops), 1))))
    for i, n in enumerate(ops):
        seg[id(n)] = i // int(every)
    return seg


@register_pass("remat", purpose="training-safe")
def remat(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Mark rematerialisation segments (``__remat_segment__``) by the policy in ``ctx.options``."""
    ctx = ctx if ctx is not None else PassContext()
    seg = plan_segments(graph, ctx)
    if not seg:
        return graph
    env: dict[int, Node] = {}
    for node in graph.topo_order():
        ins = tuple(Entry(env[id(e.node)], e.index) for e in node.inputs)
        attrs = dict(node.user_attrs)
        if id(node) in seg:
            attrs[REMAT_ATTR] = f"remat{seg[id(node)]}"
        same = all(a.node is b.node for a, b in zip(ins, node.inputs)) and attrs == dict(node.user_attrs)
        env[id(node)] = node if same else node.replace(inputs=ins, user_attrs=attrs)
    ctx.note(f"{len(set(seg.values()))} segment(s) over {len(seg)} node(s)")
    return Graph(Entry(env[id(e.node)], e.index) for e in graph.outputs)


__all__ = ["remat", "plan_segments"]
