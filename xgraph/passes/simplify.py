"""Algebraic simplification: small rewrite rules, kept as data in :data:`RULES`.

Each :class:`SimplifyRule` names the ops it looks at and a function that
returns the replacement entry or None.  Rules see inferred shapes and dtypes
(``rw.shape``, ``rw.dtype``) and never change an output's shape or dtype:
``x * 1`` becomes ``x`` only where ``x`` already has the product's shape and
dtype (a broadcast multiplication by ones can widen ``x``; an integer ``x / 1``
is a float).

The rules: ``x*1``, ``1*x``, ``x+0``, ``0+x``, ``x-0``, ``x/1`` (with the
constant a ``_constant``, ``_zeros``/``_ones``/``_full`` or ``zeros_like``/
``ones_like``), ``_mul_scalar(1)``, ``_div_scalar(1)``, ``_plus_scalar(0)``,
``_minus_scalar(0)``, ``negative(negative(x))``, ``_copy(x)``, transpose of
transpose (axes composed, the identity removed), Reshape/Flatten chains (one
Reshape to the final shape, none when that is the input's shape), identity
``Cast``/``amp_cast``, ``BlockGrad`` of a constant and of a ``BlockGrad``.

``x + 0 -> x`` turns ``-0.0 + 0`` (``+0.0``) into ``-0.0``; the values
compare equal and XLA's own simplifier does the same.  ``x - x -> zeros`` is
wrong where ``x`` is inf or NaN (``inf - inf`` is NaN), so that rule is
*unsafe* and runs only with ``options['unsafe_math'] = True``.

    >>> import xgraph as mx
    >>> from xgraph.passes.simplify import simplify
    >>> x = mx.sym.var('x')
    >>> [n.name for n in simplify(((x * 1.0) + 0.0).graph).topo_order()]
    ['x']
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..dtypes import canonical
from ..graph import Entry, Graph, Node
from ..ops import registry
from ..ops.constant import CONSTANT_OP, constant_value, encode
from .context import PassContext
from .manager import register_pass
from .rewrite import Rewriter, op_name, rewrite


@dataclass(frozen=True)
class SimplifyRule:
    """One rewrite: the ops it applies to, and ``fn(node, rw, ctx) -> Entry | None``."""

    name: str
    ops: tuple[str, ...]
    fn: Callable[[Node, Rewriter, PassContext], "Entry | None"]
    unsafe: bool = False


# -- what is known about an entry's value -------------------------------------------
def fill_value(e: Entry, ctx: PassContext) -> float | None:
    """The single value every element of ``e`` holds, if the graph says so (else None)."""
    node = e.node
    name = op_name(e)
    if name is None:
        return None
    if name == CONSTANT_OP:
        if int(np.prod(node.params["shape"], dtype=np.int64)) > ctx.size_limit:
            return None
        v = constant_value(node)
        if v.size == 0:
            return None
        first = v.flat[0]
        return float(first) if np.all(v == first) and not np.isnan(float(first)) else None
    if name in ("_zeros", "zeros_like"):
        return 0.0
    if name in ("_ones", "ones_like"):
        return 1.0
    if name == "_full":
        return float(node.params.get("value", np.nan))
    return None


def _same_meta(a: Entry, b: Entry, rw: Rewriter) -> bool:
    """Whether two entries are known to have the same shape and dtype."""
    sa, sb, da, db = rw.shape(a), rw.shape(b), rw.dtype(a), rw.dtype(b)
    return (sa is not None and sa == sb and all(d > 0 for d in sa)
            and da is not None and db is not None and np.dtype(da) == np.dtype(db))


# -- rules ---------------------------------------------------------------------------
_IDENTITY_RIGHT = {"add": 0.0, "sub": 0.0, "mul": 1.0, "div": 1.0}
_COMMUTES = {"add", "mul"}


def _binary_kind(name: str) -> str | None:
    for prefix in ("elemwise_", "broadcast_"):
        if name.startswith(prefix) and name[len(prefix):] in _IDENTITY_RIGHT:
            return name[len(prefix):]
    return None


def _binary_identity(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    kind = _binary_kind(node.op.name)
    out = Entry(node, 0)
    lhs, rhs = node.inputs
    unit = _IDENTITY_RIGHT[kind]
    if fill_value(rhs, ctx) == unit and _same_meta(lhs, out, rw):
        return lhs
    if kind in _COMMUTES and fill_value(lhs, ctx) == unit and _same_meta(rhs, out, rw):
        return rhs
    return None


_SCALAR_UNIT = {"_mul_scalar": 1.0, "_div_scalar": 1.0, "_plus_scalar": 0.0, "_minus_scalar": 0.0}


def _scalar_identity(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    if node.params["scalar"] != _SCALAR_UNIT[node.op.name]:
        return None
    x = node.inputs[0]
    if node.op.name == "_div_scalar" and not _same_meta(x, Entry(node, 0), rw):
        return None  # an integer x / 1 is a float
    return x


def _is_negation(node: Node) -> bool:
    """``negative(x)`` or ``_mul_scalar(x, -1)`` (what ``-sym`` builds)."""
    name = node.op.name if node.op is not None else None
    return name == "negative" or name == "_mul_scalar" and node.params["scalar"] == -1.0


def _double_negative(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    inner = node.inputs[0]
    if _is_negation(node) and _is_negation(inner.node):
        return inner.node.inputs[0]
    return None


def _copy(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    return node.inputs[0]


def _axes(node: Node, ndim: int) -> tuple[int, ...] | None:
    axes = tuple(node.params.get("axes") or ())
    if not axes:
        return tuple(reversed(range(ndim)))
    if len(axes) != ndim:
        return None
    return tuple(a % ndim for a in axes)


def _transpose(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    x = node.inputs[0]
    shape = rw.shape(x)
    if shape is None:
        return None
    outer = _axes(node, len(shape))
    if outer is None:
        return None
    if op_name(x) == "transpose":
        src = x.node.inputs[0]
        s_shape = rw.shape(src)
        inner = _axes(x.node, len(s_shape)) if s_shape is not None else None
        if inner is None:
            return None
        composed = tuple(inner[a] for a in outer)
        if composed == tuple(range(len(composed))):
            return src
        return Entry(rw.make("transpose", [src], name=node.name, user_attrs=node.user_attrs,
                             axes=str(composed)), 0)
    if outer == tuple(range(len(outer))):
        return x
    return None


_RESHAPES = ("Reshape", "Flatten")


def _reshape(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    x = node.inputs[0]
    out = Entry(node, 0)
    target = rw.shape(out)
    if target is None or not all(d > 0 for d in target):
        return None
    src = x
    while op_name(src) in _RESHAPES:
        src = src.node.inputs[0]
    if rw.shape(src) == target:
        return src
    if src is x:
        return None
    return Entry(rw.make("Reshape", [src], name=node.name, user_attrs=node.user_attrs, shape=str(target)), 0)


def _cast(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    x = node.inputs[0]
    d = rw.dtype(x)
    target = rw.dtype(Entry(node, 0)) or canonical(node.params.get("dtype"))
    if d is None or target is None or np.dtype(d) != np.dtype(target):
        return None
    return x


def _block_grad(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    x = node.inputs[0]
    if rw.is_constant(x) or op_name(x) == "BlockGrad":
        return x
    return None


def _self_subtract(node: Node, rw: Rewriter, ctx: PassContext) -> Entry | None:
    a, b = node.inputs
    if a != b:
        return None
    if registry.exists("zeros_like"):
        return Entry(rw.make("zeros_like", [a], name=node.name, user_attrs=node.user_attrs), 0)
    shape, dtype = rw.shape(a), rw.dtype(a)
    if shape is None or dtype is None or not all(d > 0 for d in shape):
        return None
    if int(np.prod(shape, dtype=np.int64)) > ctx.size_limit:
        return None
    enc = encode(np.zeros(shape, dtype))
    return Entry(rw.make(CONSTANT_OP, [], name=node.name, **enc), 0)


#: every simplification rule, in the order they are tried on a node
RULES: list[SimplifyRule] = [
    SimplifyRule("x*1, x+0, x-0, x/1 -> x", tuple(f"{p}{k}" for p in ("elemwise_", "broadcast_")
                                                 for k in _IDENTITY_RIGHT), _binary_identity),
    SimplifyRule("scalar identity -> x", tuple(_SCALAR_UNIT), _scalar_identity),
    SimplifyRule("-(-x) -> x", ("negative", "_mul_scalar"), _double_negative),
    SimplifyRule("copy(x) -> x", ("_copy",), _copy),
    SimplifyRule("transpose chain", ("transpose",), _transpose),
    SimplifyRule("reshape chain", _RESHAPES, _reshape),
    SimplifyRule("identity cast", ("Cast", "amp_cast"), _cast),
    SimplifyRule("BlockGrad(const) -> const", ("BlockGrad",), _block_grad),
    SimplifyRule("x-x -> zeros", ("elemwise_sub", "broadcast_sub"), _self_subtract, unsafe=True),
]

_FILL_OPS = frozenset({CONSTANT_OP, "_zeros", "_ones", "_full", "zeros_like", "ones_like"})
_SHAPE_RULE_OPS = frozenset({"transpose", "Reshape", "Flatten", "Cast", "amp_cast"})


def _candidate(node: Node, unsafe: bool) -> bool:
    """A cheap test: could a rule that needs shapes or dtypes fire on this node?

    Inference runs only when some node passes it, so graphs with nothing to
    simplify cost one walk.
    """
    name = node.op.name
    if name == "_div_scalar":
        return node.params["scalar"] == 1.0
    if name in _SHAPE_RULE_OPS:
        return True
    if _binary_kind(name) is not None:
        if unsafe and name.endswith("_sub") and node.inputs[0] == node.inputs[1]:
            return True
        return any(op_name(e) in _FILL_OPS for e in node.inputs)
    return False


@register_pass("simplify", purpose="training-safe")
def simplify(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Apply the algebraic rules of :data:`RULES` bottom-up in one walk."""
    ctx = ctx if ctx is not None else PassContext()
    unsafe = bool(ctx.options.get("unsafe_math", False))
    table: dict[str, list[SimplifyRule]] = {}
    for r in RULES:
        if r.unsafe and not unsafe:
            continue
        for op in r.ops:
            table.setdefault(op, []).append(r)
    order = graph.topo_order()
    info = ctx.infer(graph) if any(n.op is not None and _candidate(n, unsafe) for n in order) else None
    fired: Counter = Counter()

    def rule(node: Node, rw: Rewriter) -> Any:
        for r in table.get(node.op.name, ()):
            new = r.fn(node, rw, ctx)
            if new is not None:
                fired[r.name] += 1
                return [new] + [None] * (node.num_outputs - 1)
        return None

    out = rewrite(graph, rule, info)
    if fired:
        ctx.note(", ".join(f"{k}: {v}" for k, v in sorted(fired.items())))
    return out
