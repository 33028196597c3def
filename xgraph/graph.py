"""The graph IR: :class:`Node`, :class:`Entry` and :class:`Graph`.

A node is one operator application (or a variable, when ``op`` is ``None``);
an entry is one output of one node; a graph is a tuple of output entries.
Nodes are immutable and hashed by identity: a pass that rewrites a graph builds
new nodes.  The topological order is a post-order depth-first walk over inputs
in order, the same walk MXNet uses, so argument lists come out in MXNet's order.

    >>> import xgraph as mx
    >>> g = (mx.sym.var('a') + 1).graph
    >>> [n.name for n in g.topo_order()]
    ['a', '_plusscalar0']
"""
from __future__ import annotations

import hashlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from .ops.registry import Op

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Node:
    """One operator application, or a variable when ``op`` is ``None``.

    ``attrs`` holds the operator attributes the user gave, already parsed to
    Python values; ``params`` adds the schema's defaults.  ``user_attrs``
    holds string attributes that are not operator parameters: a variable's
    ``__shape__``, ``__dtype__``, ``__init__``, ``__lr_mult__``, or anything a
    user attached (``ctx_group``).  ``raw_attrs`` remembers the exact strings
    a loaded JSON file used, so saving writes them back byte for byte.

        >>> from xgraph.graph import Node
        >>> Node(None, 'x', user_attrs={'__shape__': '(2, 3)'}).is_variable
        True
    """

    __slots__ = ("op", "name", "attrs", "inputs", "user_attrs", "raw_attrs", "_params", "__weakref__")

    def __init__(self, op: "Op | None", name: str, attrs: Mapping[str, Any] | None = None,
                 inputs: Iterable["Entry"] = (), user_attrs: Mapping[str, str] | None = None,
                 raw_attrs: Mapping[str, str] | None = None):
        self.op = op
        self.name = name
        self.attrs = MappingProxyType(dict(attrs)) if attrs else _EMPTY
        self.inputs = tuple(inputs)
        self.user_attrs = MappingProxyType(dict(user_attrs)) if user_attrs else _EMPTY
        self.raw_attrs = MappingProxyType(dict(raw_attrs)) if raw_attrs else _EMPTY
        self._params = None

    @property
    def is_variable(self) -> bool:
        """True for a variable (an argument or auxiliary state), False for an op node."""
        return self.op is None

    @property
    def params(self) -> Mapping[str, Any]:
        """Every attribute of the op, the given ones over the schema's defaults."""
        if self._params is None:
            self._params = MappingProxyType(self.op.with_defaults(self.attrs)) if self.op else _EMPTY
        return self._params

    @property
    def is_random(self) -> bool:
        """Whether the node draws random numbers (Dropout, sampling ops; RNN only with dropout)."""
        return self.op is not None and self.op.is_random(self.params)

    @property
    def num_outputs(self) -> int:
        """How many outputs the node has (all of them, visible or not)."""
        return 1 if self.op is None else self.op.num_outputs(self.params)

    @property
    def num_visible_outputs(self) -> int:
        """How many outputs a symbol over this node shows (BatchNorm hides mean and var)."""
        return 1 if self.op is None else self.op.num_visible_outputs(self.params)

    def output_names(self) -> list[str]:
        """MXNet's names for the visible outputs: ``fc1_output``, ``split_output0``..."""
        if self.op is None:
            return [self.name]
        return [f"{self.name}_{o}" for o in self.op.output_names(self.params)]

    def aux_positions(self) -> frozenset[int]:
        """Positions of the inputs that are auxiliary (mutated) states."""
        return frozenset() if self.op is None else self.op.aux_positions(self.params)

    def replace(self, **changes: Any) -> "Node":
        """A new node equal to this one but for the given fields."""
        fields = dict(op=self.op, name=self.name, attrs=self.attrs, inputs=self.inputs,
                      user_attrs=self.user_attrs, raw_attrs=self.raw_attrs)
        fields.update(changes)
        return Node(**fields)

    def __repr__(self) -> str:
        kind = "Variable" if self.op is None else self.op.name
        return f"<Node {kind} {self.name!r}>"


#: User attributes that change how a node is lowered (so they are part of the structural hash):
#: rematerialisation segments and convolution strategies.
LOWERING_ATTRS = ("__remat_segment__", "__conv_strategy__", "__sharding__")


class Entry(NamedTuple):
    """Output ``index`` of ``node``."""

    node: Node
    index: int = 0

    def __repr__(self) -> str:
        return f"Entry({self.node.name!r}, {self.index})"


class Graph:
    """A tuple of output entries with cached traversal helpers.

    Passes take a :class:`Graph` and return a new one; a graph is never
    modified in place.

        >>> import xgraph as mx
        >>> g = mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=4, name='fc').graph
        >>> [n.name for n in g.variables()]
        ['x', 'fc_weight', 'fc_bias']
    """

    __slots__ = ("outputs", "_topo", "_hash", "_program_hash", "_roles", "_variant_ops")

    def __init__(self, outputs: Iterable[Entry]):
        self.outputs = tuple(outputs)
        self._topo: tuple[Node, ...] | None = None
        self._hash: str | None = None
        self._program_hash: str | None = None
        self._variant_ops: tuple | None = None
        self._roles: tuple[list[Node], list[Node]] | None = None

    def topo_order(self) -> tuple[Node, ...]:
        """Every node reachable from the outputs, inputs before their consumers.

        Post-order depth-first, inputs visited in order (MXNet's ``DFSVisit``);
        iterative, so deep graphs do not hit Python's recursion limit.
        """
        if self._topo is None:
            visited: set[int] = set()
            order: list[Node] = []
            for root in self.outputs:
                if id(root.node) in visited:
                    continue
                visited.add(id(root.node))
                stack = [(root.node, iter(root.node.inputs))]
                while stack:
                    node, it = stack[-1]
                    for e in it:
                        if id(e.node) not in visited:
                            visited.add(id(e.node))
                            stack.append((e.node, iter(e.node.inputs)))
                            break
                    else:
                        stack.pop()
                        order.append(node)
            self._topo = tuple(order)
        return self._topo

    def variables(self) -> list[Node]:
        """Variable nodes in topological order (arguments and auxiliary states)."""
        return [n for n in self.topo_order() if n.op is None]

    def _split_roles(self) -> tuple[list[Node], list[Node]]:
        if self._roles is None:
            aux_ids: set[int] = set()
            for n in self.topo_order():
                if n.op is not None:
                    for pos in n.aux_positions():
                        aux_ids.add(id(n.inputs[pos].node))
            args = [n for n in self.variables() if id(n) not in aux_ids]
            aux = [n for n in self.variables() if id(n) in aux_ids]
            self._roles = (args, aux)
        return self._roles

    def argument_nodes(self) -> list[Node]:
        """Variables that are arguments (inputs and learnable parameters), in order."""
        return self._split_roles()[0]

    def aux_nodes(self) -> list[Node]:
        """Variables that are auxiliary states (mutated by ops such as BatchNorm), in order."""
        return self._split_roles()[1]

    def consumers(self) -> dict[Node, list[tuple[Node, int]]]:
        """For every node, the ``(consumer, input position)`` pairs that read it."""
        users: dict[Node, list[tuple[Node, int]]] = {n: [] for n in self.topo_order()}
        for n in self.topo_order():
            for pos, e in enumerate(n.inputs):
                users[e.node].append((n, pos))
        return users

    def gradient_reaching_variables(self) -> set[str]:
        """Names of the variables an output's gradient can reach: a path to it through differentiable ops.

        A variable seen only through ``BlockGrad`` (or argmax, comparisons...)
        always gets a zero gradient, so it need not be differentiated at all
        (MXNet's zero-gradient propagation).

            >>> import xgraph as mx
            >>> x, y = mx.sym.var('x'), mx.sym.var('y')
            >>> sorted((x * mx.sym.BlockGrad(y)).graph.gradient_reaching_variables())
            ['x']
        """
        live = {id(e.node) for e in self.outputs}
        reached = set()
        for n in reversed(self.topo_order()):
            if id(n) not in live:
                continue
            if n.op is None:
                reached.add(n.name)
            elif n.op.differentiable:
                live.update(id(e.node) for e in n.inputs)
        return reached

    def op_nodes(self) -> list[Node]:
        """Operator nodes in topological order."""
        return [n for n in self.topo_order() if n.op is not None]

    def structural_hash(self) -> str:
        """A SHA-256 digest of the graph's structure: ops, attributes, names, wiring.

        Two graphs with the same hash are the same graph; exported programs are
        cached under it (their StableHLO carries every node's name).
        """
        if self._hash is None:
            self._hash = self._digest(op_names=True)
        return self._with_variants(self._hash)

    def program_hash(self) -> str:
        """:meth:`structural_hash` without the names of op nodes (variables keep theirs).

        Rebuilding a symbol renames its ops (``_mul0`` becomes ``_mul1``) but
        computes the same function of the same named inputs, so in-process
        compiled programs are cached under this digest: the rebuilt graph reuses
        the first one's executable (whose profile names are the first graph's).

            >>> import xgraph as mx
            >>> a, b = (mx.sym.relu(mx.sym.var('x')) for _ in range(2))
            >>> a.graph.structural_hash() == b.graph.structural_hash(), a.graph.program_hash() == b.graph.program_hash()
            (False, True)
        """
        if self._program_hash is None:
            self._program_hash = self._digest(op_names=False)
        return self._with_variants(self._program_hash)

    def _with_variants(self, digest: str) -> str:
        """``digest``, combined with the current ``variant()`` of the graph's ops that have one (read at
        every call: the choice may change between binds of one graph)."""
        if self._variant_ops is None:
            self._variant_ops = tuple({n.op.name: n.op for n in self.topo_order()
                                       if n.op is not None and n.op.variant is not None}.values())
        if not self._variant_ops:
            return digest
        variants = sorted((op.name, op.variant()) for op in self._variant_ops)
        return hashlib.sha256(repr((digest, variants)).encode()).hexdigest()

    def _digest(self, op_names: bool) -> str:
        h = hashlib.sha256()
        index: dict[int, int] = {}
        for i, n in enumerate(self.topo_order()):
            index[id(n)] = i
            op = "null" if n.op is None else n.op.name
            name = n.name if op_names or n.op is None else i
            attrs = sorted((k, repr(v)) for k, v in n.attrs.items())
            ins = [(index[id(e.node)], e.index) for e in n.inputs]
            lowering = [(k, n.user_attrs[k]) for k in LOWERING_ATTRS if k in n.user_attrs]
            h.update(repr((op, name, attrs, ins) + ((lowering,) if lowering else ())).encode())
        h.update(repr([(index[id(e.node)], e.index) for e in self.outputs]).encode())
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.topo_order())

    def __repr__(self) -> str:
        return f"<Graph {len(self)} nodes, {len(self.outputs)} outputs>"
