"""Constant folding: evaluate once, at compile time, what depends on no variable.

A node is *constant* when it is a deterministic op (not random, not stateful,
no auxiliary states) whose inputs are all constant; ops without inputs
(``_constant``, ``_zeros``, ``_ones``, ``_full``, ``_arange`` ...) start the
recursion, and ops whose value depends only on their input's shape
(``zeros_like``, ``ones_like``, ``shape_array``, ``size_array``) are constant
once that shape is inferred.  Each maximal constant subgraph is evaluated
eagerly with JAX and replaced by one ``_constant`` node holding the value.
Values larger than the size limit (``options['size_limit']``, default 1M
elements) are never materialised: such a node and everything above it stay
in the graph for XLA.

With bound parameter values (``fold_constants(graph, params=...)``, or
``params`` in the :class:`PassContext` while not optimizing for training),
bound variables count as known too: a subgraph over parameters only
(``transpose(w) * 2``) is computed once and becomes a *new variable* whose
value is recorded in ``ctx.new_params``, so parameters stay arguments of the
compiled program rather than constants baked into it.

    >>> import numpy as np, xgraph as mx
    >>> from xgraph.ops.constant import constant
    >>> from xgraph.passes.fold_constants import fold_constants
    >>> g = fold_constants((mx.sym.var('x') + constant(np.float32(2)) * 3).graph)
    >>> sorted(n.op.name for n in g.op_nodes())
    ['_constant', 'elemwise_add']
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..graph import Entry, Graph, Node
from ..infer import _eval_node, split_result
from ..ops.constant import CONSTANT_OP, encode
from ..ops.registry import LowerCtx
from .context import PassContext
from .manager import register_pass
from .rewrite import Rewriter, rewrite

#: ops whose output depends only on the shape (and dtype) of their single input
SHAPE_ONLY = frozenset({"zeros_like", "ones_like", "shape_array", "size_array"})

_CONST, _PARAM = 1, 2  # a known value that is a constant / depends on bound parameters


def _size(shape: tuple) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _evaluate(node: Node, values: list[Any]) -> tuple[np.ndarray, ...]:
    ctx = LowerCtx(False, None, node.name)
    outs, _ = split_result(node.op, node.params, node.op.lower(ctx, node.params, *values))
    return tuple(np.asarray(o) for o in outs)


def _out_signature(node: Node, in_sigs: list[tuple]) -> tuple | None:
    try:
        return _eval_node(node.op, tuple(sorted(node.attrs.items())),
                          tuple((tuple(s), np.dtype(d)) for s, d in in_sigs))
    except Exception:  # noqa: BLE001 - whatever cannot be evaluated stays in the graph
        return None


def _analyse(graph: Graph, ctx: PassContext) -> tuple[dict[int, int], dict[int, tuple]]:
    """Which nodes have a known value (constant, or from bound parameters).

    Returns (node id -> kind, shape-only node id -> (input shape, dtype)).
    Only signatures are computed here (abstractly, memoized), so nothing is
    materialised before the size limit is checked.
    """
    kind: dict[int, int] = {}
    sig: dict[int, tuple] = {}      # node id -> ((shape, dtype), ...) of its outputs
    shape_in: dict[int, tuple] = {}
    limit = ctx.size_limit
    order = graph.topo_order()
    info = ctx.infer(graph) if any(n.op is not None and n.op.name in SHAPE_ONLY for n in order) else None
    for node in order:
        if node.op is None:
            v = ctx.value_of(node.name, record=False)
            if v is not None:
                kind[id(node)] = _PARAM
                sig[id(node)] = ((tuple(v.shape), v.dtype),)
            continue
        op = node.op
        if node.is_random or op.stateful or op.aux:
            continue
        if op.name in SHAPE_ONLY and info is not None:
            s, d = info.shape(node.inputs[0]), info.dtype(node.inputs[0])
            if s is None or not all(x > 0 for x in s) or d is None:
                continue
            in_sigs, k = [(tuple(s), d)], _CONST
            shape_in[id(node)] = (tuple(s), d)
        else:
            if not all(id(e.node) in kind for e in node.inputs):
                continue
            in_sigs = [sig[id(e.node)][e.index] for e in node.inputs]
            k = max((kind[id(e.node)] for e in node.inputs), default=_CONST)
        out_sig = _out_signature(node, in_sigs)
        if out_sig is None or any(_size(s) > limit for s, _ in out_sig):
            continue
        kind[id(node)] = k
        sig[id(node)] = out_sig
    return kind, shape_in


def _value(node: Node, shape_in: Mapping[int, tuple], values: dict[int, tuple | None],
           ctx: PassContext) -> tuple | None:
    """The outputs of a known node, evaluating (and memoizing) what it needs; iterative."""
    stack = [node]
    while stack:
        n = stack[-1]
        if id(n) in values:
            stack.pop()
            continue
        if n.op is None:
            values[id(n)] = (ctx.value_of(n.name),)
            stack.pop()
            continue
        if id(n) in shape_in:
            shape, dtype = shape_in[id(n)]
            ins = [np.zeros(shape, dtype)]
        else:
            pending = [e.node for e in n.inputs if id(e.node) not in values]
            if pending:
                stack.extend(pending)
                continue
            if any(values[id(e.node)] is None for e in n.inputs):
                values[id(n)] = None
                stack.pop()
                continue
            ins = [values[id(e.node)][e.index] for e in n.inputs]
        try:
            values[id(n)] = _evaluate(n, ins)
        except Exception:  # noqa: BLE001 - an op that fails on concrete values is not folded
            values[id(n)] = None
        stack.pop()
    return values[id(node)]


@register_pass("fold_constants", purpose="training-safe")
def fold_constants(graph: Graph, ctx: PassContext | None = None, params: Mapping[str, Any] | None = None,
                   size_limit: int | None = None) -> Graph:
    """Replace subgraphs with no variable input (or only bound parameters) by their values."""
    ctx = ctx if ctx is not None else PassContext()
    if params is not None:
        ctx.params.update({k: np.asarray(v) for k, v in params.items()})
    if size_limit is not None:
        ctx.options["size_limit"] = size_limit
    kind, shape_in = _analyse(graph, ctx)
    if not kind:
        return graph
    # the frontier: known op nodes that an unknown node (or the graph's output list) reads
    frontier = {id(e.node) for n in graph.topo_order() if id(n) not in kind for e in n.inputs}
    frontier |= {id(e.node) for e in graph.outputs}
    frontier &= set(kind)
    taken = {n.name for n in graph.topo_order()}
    values: dict[int, tuple | None] = {}
    counts = {"const": 0, "param": 0}

    def rule(node: Node, rw: Rewriter) -> Any:
        orig = rw.original
        if id(orig) not in frontier or not orig.inputs:
            return None
        vals = _value(orig, shape_in, values, ctx)
        if vals is None:
            return None
        out = []
        for i, v in enumerate(vals):
            if kind[id(orig)] == _PARAM:
                out.append(ctx.new_variable(f"{orig.name}_folded" + (f"{i}" if i else ""), v, taken))
            else:
                name = orig.name if i == 0 else rw.fresh_name(f"{orig.name}_output{i}")
                enc = encode(v)
                out.append(Entry(rw.make(CONSTANT_OP, [], name=name, value=enc["value"],
                                         dtype=enc["dtype"], shape=enc["shape"]), 0))
        counts["param" if kind[id(orig)] == _PARAM else "const"] += 1
        return out

    out = rewrite(graph, rule)
    if counts["const"]:
        ctx.note(f"folded {counts['const']} constant subgraph(s)")
    if counts["param"]:
        ctx.note(f"precomputed {counts['param']} parameter subgraph(s)")
    return out

