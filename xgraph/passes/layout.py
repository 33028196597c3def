"""The ``channels_last`` pass: run a convolutional network in NHWC from its first convolution on.

MXNet graphs are channel-first (NCHW); XLA's CPU and GPU convolutions are fastest channel-last,
and a per-convolution transpose pair costs two copies of every activation.  This pass rewrites
the whole graph instead: every 2-D Convolution gets ``layout='NHWC'`` (its OIHW weight goes
through one ``transpose`` to OHWI, which constant folding removes when parameters are frozen),
and the layout then flows through the ops that can follow it:

* Pooling (``layout='NHWC'``), BatchNorm (``axis`` 1 becomes 3), Concat (``dim`` 1 becomes 3);
* elementwise ops (the ``elemwise`` family, Activation, LeakyReLU but PReLU, Dropout, clip, add_n)
  whose inputs all have the output's shape;
* broadcast binary ops whose other operand is per channel (``(1, C, 1, 1)``: reshaped to
  ``(1, 1, 1, C)``, the same elements) or of the same shape.

Anything else (Flatten, FullyConnected, reshapes, reductions over named axes ...) reads its
input transposed back to NCHW, and so do the graph's outputs: a transpose is inserted only where
the layout has to change, once per value.  Gradients are the same (the pass is training-safe):
only where the data lives changes.  Graphs without a 4-D Convolution come back unchanged.

    >>> import xgraph as mx
    >>> from xgraph.passes import optimize
    >>> x = mx.sym.var('x')
    >>> c = mx.sym.Convolution(x, kernel=(3, 3), num_filter=4, pad=(1, 1), name='c')
    >>> net = mx.sym.Pooling(mx.sym.relu(c), kernel=(2, 2), stride=(2, 2), name='p')
    >>> g = optimize(net.graph, passes=['channels_last'], shapes={'x': (1, 3, 8, 8)}).graph
    >>> [n.op.name for n in g.topo_order() if n.op is not None]
    ['transpose', 'transpose', 'Convolution', 'relu', 'Pooling', 'transpose']
"""
from __future__ import annotations

from typing import Any

from ..graph import Entry, Graph, Node
from ..infer import InferResult
from .context import PassContext
from .manager import register_pass
from .rewrite import Rewriter

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
#: single ops outside the ``elemwise`` family that act element by element
_ELEMENTWISE = {"Activation", "Dropout", "clip", "add_n", "_copy", "BlockGrad", "Cast", "amp_cast"}


class _Walk:
    """One rewriting walk: the new entry of every old one and whether it is channel-last."""

    def __init__(self, graph: Graph, info: InferResult):
        self.info = info
        self.rw = Rewriter(graph)
        self.env: dict[tuple[int, int], tuple[Entry, bool]] = {}
        self.converted: dict[tuple[int, int, tuple], Entry] = {}
        self.changes = 0

    def shape(self, old: Entry) -> tuple | None:
        s = self.info.shape(old)
        return None if s is None or any(d <= 0 for d in s) else tuple(s)

    def transposed(self, e: Entry, axes: tuple) -> Entry:
        """``e`` through a transpose (one per value and direction)."""
        key = (id(e.node), e.index, axes)
        if key not in self.converted:
            self.converted[key] = Entry(self.rw.make("transpose", [e], axes=axes), 0)
        return self.converted[key]

    def as_nchw(self, old: Entry) -> Entry:
        new, last = self.env[(id(old.node), old.index)]
        return self.transposed(new, TO_NCHW) if last else new

    def as_nhwc(self, old: Entry) -> Entry:
        new, last = self.env[(id(old.node), old.index)]
        return new if last else self.transposed(new, TO_NHWC)

    def is_last(self, old: Entry) -> bool:
        return self.env[(id(old.node), old.index)][1]

    def rebuild(self, node: Node, inputs: list[Entry], **changed: Any) -> Node:
        """``node`` over new inputs, with changed attributes parsed by its op's schema."""
        if not changed:
            same = all(a.node is b.node and a.index == b.index for a, b in zip(inputs, node.inputs))
            return node if same else node.replace(inputs=tuple(inputs))
        self.changes += 1
        return self.rw.make(node.op.name, inputs, name=node.name, user_attrs=dict(node.user_attrs),
                            **{**dict(node.attrs), **changed})


def _is_4d(walk: _Walk, e: Entry) -> bool:
    s = walk.shape(e)
    return s is not None and len(s) == 4


def _elementwise(node: Node) -> bool:
    name = node.op.name
    if name == "LeakyReLU":
        return node.params.get("act_type") != "prelu"
    return node.op.family == "elemwise" or name in _ELEMENTWISE


def _per_channel(shape: tuple | None, channels: int) -> bool:
    return shape is not None and len(shape) == 4 and shape[1] == channels and shape[0] == shape[2] == shape[3] == 1


def _first(node: Node) -> list[bool]:
    """Only the first output is channel-last (BatchNorm's mean and variance are per channel)."""
    return [True] + [False] * (node.num_outputs - 1)


def _visit(walk: _Walk, node: Node) -> tuple[Node, list[bool]]:
    """The rewritten node and which of its outputs are channel-last."""
    op, p, ins = node.op.name, node.params, node.inputs
    out0 = Entry(node, 0)
    if op == "Convolution" and _is_4d(walk, ins[0]) and p.get("layout") in (None, "NCHW"):
        new_in = [walk.as_nhwc(ins[0]), walk.transposed(walk.as_nchw(ins[1]), TO_NHWC)]
        new_in += [walk.as_nchw(e) for e in ins[2:]]
        return walk.rebuild(node, new_in, layout="NHWC"), _first(node)
    if not any(walk.is_last(e) for e in ins) or not _is_4d(walk, out0):
        return walk.rebuild(node, [walk.as_nchw(e) for e in ins]), [False] * node.num_outputs
    if op == "Pooling" and p.get("layout") in (None, "NCHW") and walk.is_last(ins[0]):
        return walk.rebuild(node, [walk.as_nhwc(ins[0])], layout="NHWC"), _first(node)
    if op == "BatchNorm" and p.get("axis", 1) in (1, -3) and walk.is_last(ins[0]):
        new_in = [walk.as_nhwc(ins[0])] + [walk.as_nchw(e) for e in ins[1:]]
        return walk.rebuild(node, new_in, axis=3), _first(node)
    if op == "Concat" and p.get("dim", 1) in (1, -3) and all(_is_4d(walk, e) for e in ins):
        return walk.rebuild(node, [walk.as_nhwc(e) for e in ins], dim=3), _first(node)
    shape = walk.shape(out0)
    if _elementwise(node) and all(walk.shape(e) == shape for e in ins):
        return walk.rebuild(node, [walk.as_nhwc(e) for e in ins]), [True] * node.num_outputs
    if node.op.family == "broadcast" and len(ins) == 2 and node.num_outputs == 1 and walk.shape(ins[0]) == shape:
        other = walk.shape(ins[1])
        if other == shape:
            return walk.rebuild(node, [walk.as_nhwc(ins[0]), walk.as_nhwc(ins[1])]), [True]
        if _per_channel(other, shape[1]):
            flat = Entry(walk.rw.make("Reshape", [walk.as_nchw(ins[1])], shape=(1, 1, 1, shape[1])), 0)
            return walk.rebuild(node, [walk.as_nhwc(ins[0]), flat]), [True]
    return walk.rebuild(node, [walk.as_nchw(e) for e in ins]), [False] * node.num_outputs


@register_pass("channels_last", purpose="training-safe")
def channels_last(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Rewrite the graph's 2-D convolutional part to NHWC (see the module docstring)."""
    ctx = ctx if ctx is not None else PassContext()
    order = graph.topo_order()
    if not any(n.op is not None and n.op.name == "Convolution" for n in order):
        return graph
    walk = _Walk(graph, ctx.infer(graph))
    for node in order:
        if node.op is None:
            walk.env[(id(node), 0)] = (Entry(node, 0), False)
            continue
        new, last = _visit(walk, node)
        for i in range(node.num_outputs):
            walk.env[(id(node), i)] = (Entry(new, i), last[i])
    if not walk.changes:
        return graph
    ctx.note(f"{walk.changes} op(s) channel-last, {len(walk.converted)} transpose(s)")
    return Graph(walk.as_nchw(e) for e in graph.outputs)
