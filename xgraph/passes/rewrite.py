"""The rewriting engine passes share: one bottom-up walk that rebuilds a graph.

:func:`rewrite` visits the nodes of a graph in topological order.  Each node
is first rebuilt over its (already rewritten) inputs, then handed to a
``rule``, which returns ``None`` to keep it or a list of entries, one per
output, that replace it.  Because inputs are rewritten before their
consumers, chains simplify in one walk (``x * 1 * 1`` becomes ``x``).

Rewrites preserve every replaced output's shape and dtype, so the shapes and
dtypes inferred on the input graph stay valid for the new entries; the
:class:`Rewriter` carries them along (``rw.shape(entry)``, ``rw.dtype(entry)``).

    >>> import xgraph as mx
    >>> from xgraph.passes.rewrite import rewrite
    >>> g = mx.sym.relu(mx.sym.identity(mx.sym.var('x'))).graph
    >>> drop_copy = lambda node, rw: [node.inputs[0]] if node.op.name == '_copy' else None
    >>> [n.name for n in rewrite(g, drop_copy).topo_order()]
    ['x', 'relu0']
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..graph import Entry, Graph, Node
from ..infer import InferResult
from ..names import unique_name
from ..ops import registry

Rule = Callable[[Node, "Rewriter"], "Sequence[Entry] | None"]


class Rewriter:
    """State of one rewriting walk: shapes and dtypes of entries, constness, fresh names.

    ``info`` is the inference result of the *input* graph (or None); entries of
    the new graph inherit the shape and dtype of the old entries they stand for.
    """

    def __init__(self, graph: Graph, info: InferResult | None = None):
        self.graph = graph
        self._shape: dict[tuple[int, int], Any] = {}
        self._dtype: dict[tuple[int, int], Any] = {}
        self._const: dict[int, bool] = {}
        self._names = {n.name for n in graph.topo_order()}
        self._keep: list[Node] = []  # keeps ids of recorded nodes stable for the walk
        self.info = info
        self.changes = 0
        #: the node of the input graph that the node handed to the rule stands for
        self.original: Node | None = None

    # -- what is known about an entry ------------------------------------------
    def shape(self, e: Entry) -> tuple | None:
        """The inferred shape of ``e`` (None when unknown)."""
        return self._shape.get((id(e.node), e.index))

    def dtype(self, e: Entry) -> Any:
        """The inferred dtype of ``e`` (None when unknown)."""
        return self._dtype.get((id(e.node), e.index))

    def is_constant(self, e: Entry) -> bool:
        """Whether ``e`` depends on no variable and no random or stateful op."""
        return self._const.get(id(e.node), False)

    def record(self, new: Entry, old: Entry | None = None, shape: Any = None, dtype: Any = None) -> None:
        """Remember the shape and dtype of ``new`` (those of ``old`` unless given)."""
        key = (id(new.node), new.index)
        self._keep.append(new.node)
        if old is not None and self.info is not None:
            shape = shape if shape is not None else self.info.shape(old)
            dtype = dtype if dtype is not None else self.info.dtype(old)
        if shape is not None:
            self._shape[key] = tuple(shape)
        if dtype is not None:
            self._dtype[key] = dtype
        if id(new.node) not in self._const:
            self._const[id(new.node)] = node_is_constant(new.node, self._const)

    # -- building nodes ---------------------------------------------------------
    def fresh_name(self, base: str) -> str:
        """A node name not used in the graph yet (``base``, ``base_1`` ...)."""
        name = unique_name(base, self._names.__contains__)
        self._names.add(name)
        return name

    def make(self, op_name: str, inputs: Sequence[Entry], name: str | None = None,
             user_attrs: Mapping[str, str] | None = None, **attrs: Any) -> Node:
        """A new op node; attributes go through the op's schema, as if a user wrote them."""
        op = registry.get(op_name)
        node_name = name if name is not None else self.fresh_name(op.name.lstrip("_").lower())
        typed, user, strings = op.parse_attrs({k: ("None" if v is None else v) for k, v in attrs.items()},
                                              node_name)
        user.update(user_attrs or {})
        node = Node(op, node_name, typed, inputs, user_attrs=user, raw_attrs=strings)
        self._names.add(node_name)
        return node


def node_is_constant(node: Node, const: Mapping[int, bool]) -> bool:
    """Whether an op node's value is fixed when the graph is built (no variable upstream)."""
    if node.op is None or node.is_random or node.op.stateful or node.op.aux:
        return False
    return all(const.get(id(e.node), False) for e in node.inputs)


def rewrite(graph: Graph, rule: Rule, info: InferResult | None = None,
            rw: Rewriter | None = None) -> Graph:
    """Rebuild ``graph`` bottom-up, letting ``rule`` replace op nodes.

    ``rule(node, rw)`` sees the node rebuilt over the new inputs and returns
    None (keep it) or one entry per output of the node (its replacements).
    Nodes that change nowhere are reused, so an unchanged graph comes back
    with the same node objects.
    """
    rw = rw or Rewriter(graph, info)
    env: dict[int, tuple[Entry, ...]] = {}
    for node in graph.topo_order():
        if node.op is None:
            env[id(node)] = (Entry(node, 0),)
            rw.record(Entry(node, 0), Entry(node, 0))
            continue
        new_inputs = tuple(env[id(e.node)][e.index] for e in node.inputs)
        same = all(a.node is b.node and a.index == b.index for a, b in zip(new_inputs, node.inputs))
        cur = node if same else node.replace(inputs=new_inputs)
        for i in range(cur.num_outputs):
            rw.record(Entry(cur, i), Entry(node, i))
        rw.original = node
        out = rule(cur, rw)
        if out is None:
            env[id(node)] = tuple(Entry(cur, i) for i in range(cur.num_outputs))
        else:
            out = tuple(out)
            rw.changes += 1
            for i, e in enumerate(out):
                if e is not None:
                    rw.record(e, Entry(node, i))
            env[id(node)] = out
    outputs = []
    for e in graph.outputs:
        new = env[id(e.node)][e.index]
        if new is None:  # a rule gave no replacement for an output the graph needs
            raise ValueError(f"rewrite dropped output {e.index} of node '{e.node.name}' that the graph uses")
        outputs.append(new)
    return Graph(outputs)


def used_outputs(graph: Graph) -> dict[int, set[int]]:
    """For each node id, the output indices that some consumer or the graph's outputs read."""
    used: dict[int, set[int]] = {}
    for n in graph.topo_order():
        for e in n.inputs:
            used.setdefault(id(e.node), set()).add(e.index)
    for e in graph.outputs:
        used.setdefault(id(e.node), set()).add(e.index)
    return used


def consumer_count(graph: Graph) -> dict[int, int]:
    """For each node id, how many (consumer, input) pairs plus graph outputs read it."""
    count: dict[int, int] = {}
    for n in graph.topo_order():
        for e in n.inputs:
            count[id(e.node)] = count.get(id(e.node), 0) + 1
    for e in graph.outputs:
        count[id(e.node)] = count.get(id(e.node), 0) + 1
    return count


def op_name(e: Entry | Node) -> str | None:
    """The canonical op name of an entry's node (None for a variable)."""
    node = e.node if isinstance(e, Entry) else e
    return None if node.op is None else node.op.name
