"""The ``conv_strategy`` pass: choose, per Convolution, how the lowering computes it.

Sets the user attribute ``__conv_strategy__`` on every Convolution to
``options['conv_strategy']`` (default ``'auto'``: 1×1 single-group
convolutions as matrix products, wide 3×3 stride-1 ones with constant weights
as Winograd, small grouped ones as taps, the others through ``lax.conv``); see
:mod:`xgraph.conv_strategy` for the strategies and ``docs/passes.md`` for
their measured speed.  Not part of any optimization level; an executor's
frozen inference program appends it to O2 (:mod:`xgraph.bound`), and other
pipelines name it.

    >>> import xgraph as mx
    >>> from xgraph.passes import optimize
    >>> c = mx.sym.Convolution(mx.sym.var('x'), kernel=(1, 1), num_filter=2, name='c')
    >>> g = optimize(c.graph, passes=['conv_strategy'], options={'conv_strategy': 'nhwc'}).graph
    >>> g.outputs[0].node.user_attrs['__conv_strategy__']
    'nhwc'
"""
from __future__ import annotations

from ..conv_strategy import STRATEGIES
from ..graph import Entry, Graph
from ..lower import CONV_STRATEGY_ATTR
from .context import PassContext
from .manager import register_pass


@register_pass("conv_strategy", purpose="training-safe")
def conv_strategy(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Mark every Convolution with the strategy in ``ctx.options['conv_strategy']`` (default 'auto')."""
    ctx = ctx if ctx is not None else PassContext()
    strategy = ctx.options.get("conv_strategy", "auto")
    if strategy not in STRATEGIES:
        raise ValueError(f"conv_strategy must be one of {STRATEGIES}, not {strategy!r}")
    env: dict[int, object] = {}
    marked = 0
    for node in graph.topo_order():
        ins = tuple(Entry(env[id(e.node)], e.index) for e in node.inputs)
        attrs = dict(node.user_attrs)
        if node.op is not None and node.op.name == "Convolution" and CONV_STRATEGY_ATTR not in attrs:
            attrs[CONV_STRATEGY_ATTR] = strategy
            marked += 1
        same = all(a.node is b.node for a, b in zip(ins, node.inputs)) and attrs == dict(node.user_attrs)
        env[id(node)] = node if same else node.replace(inputs=ins, user_attrs=attrs)
    if marked:
        ctx.note(f"{marked} Convolution(s) -> {strategy}")
    return Graph(Entry(env[id(e.node)], e.index) for e in graph.outputs)
