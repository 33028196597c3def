"""Symbol: the user-facing, MXNet-shaped view over the graph IR.

A :class:`Symbol` wraps a tuple of output entries.  Composition, arithmetic,
``Group``, indexing, ``list_*``, ``infer_*``, ``tojson`` and ``bind`` are thin
views over :mod:`xgraph.graph` and the stages after it.

    >>> import xgraph as mx
    >>> data = mx.sym.var('data')
    >>> fc = mx.sym.FullyConnected(data, num_hidden=10, name='fc1')
    >>> net = mx.sym.Activation(fc, act_type='relu', name='relu1')
    >>> net.list_arguments()
    ['data', 'fc1_weight', 'fc1_bias']
    >>> net.infer_shape(data=(4, 8))[1]
    [(4, 10)]
"""
from __future__ import annotations

import builtins
import copy as _copy
import logging
from numbers import Number
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from . import dtypes as _dt
from .errors import NotImplementedForSymbol, SymbolError
from .graph import Entry, Graph, Node
from .names import AttrScope, NameManager
from .ops import registry
from .ops.registry import HIDDEN_KEYS
from .util import is_np_shape

_log = logging.getLogger("xgraph")


class Symbol:
    """A symbolic value: one or more outputs of a graph.

        >>> import xgraph as mx
        >>> a, b = mx.sym.var('a'), mx.sym.var('b')
        >>> (a + 2 * b).list_arguments()
        ['a', 'b']
    """

    __slots__ = ("_entries", "_graph", "__weakref__")

    def __init__(self, entries: Sequence[Entry]):
        self._entries = tuple(entries)
        self._graph: Graph | None = None

    # -- structure -----------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The :class:`~xgraph.graph.Graph` whose outputs are this symbol's outputs."""
        if self._graph is None:
            self._graph = Graph(self._entries)
        return self._graph

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The output entries."""
        return self._entries

    @property
    def name(self) -> str | None:
        """The node's name for a single-output symbol, else None."""
        return self._entries[0].node.name if len(self._entries) == 1 else None

    def list_arguments(self) -> list[str]:
        """Names of the arguments (inputs and learnable parameters), in MXNet's order."""
        return [n.name for n in self.graph.argument_nodes()]

    def list_auxiliary_states(self) -> list[str]:
        """Names of the auxiliary states (BatchNorm's moving mean and variance)."""
        return [n.name for n in self.graph.aux_nodes()]

    def list_inputs(self) -> list[str]:
        """Names of every variable, arguments and auxiliary states, in topological order."""
        return [n.name for n in self.graph.variables()]

    def list_outputs(self) -> list[str]:
        """Names of the outputs: ``fc1_output``, ``split_output0``, or a variable's own name."""
        return [_entry_name(e) for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator["Symbol"]:
        return (Symbol([e]) for e in self._entries)

    def __getitem__(self, index: int | str | slice) -> "Symbol":
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise SymbolError(f"no output named {index!r}; outputs are {names}")
            return Symbol([self._entries[names.index(index)]])
        if isinstance(index, slice):
            return Symbol(self._entries[index])
        if not isinstance(index, (int, np.integer)):
            raise SymbolError(f"symbol index must be an int, a slice or an output name, not {index!r}")
        n = len(self._entries)
        if not -n <= index < n:
            raise SymbolError(f"output index {index} out of range: the symbol has {n} output(s)")
        return Symbol([self._entries[index]])

    def get_internals(self) -> "Symbol":
        """A group of every visible output of every node, in topological order."""
        entries = []
        for n in self.graph.topo_order():
            entries.extend(Entry(n, i) for i in range(n.num_visible_outputs))
        return Symbol(entries)

    def get_children(self) -> "Symbol | None":
        """The inputs of this symbol's nodes as a group (each node once, in output order), or None for variables.

            >>> import xgraph as mx
            >>> fc = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc')
            >>> fc.get_children().list_outputs()
            ['data', 'fc_weight', 'fc_bias']
        """
        seen: set[int] = set()
        inputs: list[Entry] = []
        for e in self._entries:
            if id(e.node) not in seen:
                seen.add(id(e.node))
                inputs.extend(e.node.inputs)
        return Symbol(tuple(inputs)) if inputs else None

    def _gen_atomic_symbol(self) -> "Symbol":
        """The head node's operator with the same attributes on fresh variables (MXNet's atomic symbol).

            >>> import xgraph as mx
            >>> fc = mx.sym.FullyConnected(mx.sym.var('data') * 2, num_hidden=2, name='fc')
            >>> fc._gen_atomic_symbol().list_arguments()
            ['fc_data', 'fc_weight', 'fc_bias']
        """
        node = self._entries[0].node
        if node.is_variable:
            raise SymbolError(f"_gen_atomic_symbol: {node.name!r} is a variable, not an operator")
        names = node.op.input_names(node.params)
        fresh = tuple(Entry(Node(None, f"{node.name}_{n}"), 0) for n in names)
        atom = node.replace(inputs=fresh)
        return Symbol([Entry(atom, i) for i in range(atom.num_visible_outputs)])

    def _single_node(self, what: str) -> Node:
        if len(self._entries) != 1:
            raise SymbolError(f"{what} needs a single-output symbol; this one has {len(self._entries)} outputs")
        return self._entries[0].node

    # -- attributes ----------------------------------------------------
    def attr(self, key: str) -> str | None:
        """An attribute of this symbol's node as a string (op attributes and user ones), or None."""
        node = self._single_node("attr")
        for k in (key, f"__{key}__"):
            if k in node.user_attrs:
                return node.user_attrs[k]
        if key in node.attrs:
            return node.raw_attrs.get(key) or node.op.format_attr(key, node.attrs[key])
        return None

    def list_attr(self, recursive: bool = False) -> dict[str, str]:
        """This node's attributes as strings (``recursive`` is MXNet's deprecated form of attr_dict)."""
        if recursive:
            out: dict[str, str] = {}
            for name, d in self.attr_dict().items():
                out.update({f"{name}_{k}": v for k, v in d.items()})
            return out
        return _node_attr_strings(self._single_node("list_attr"))

    def attr_dict(self) -> dict[str, dict[str, str]]:
        """Every node's attributes as strings, by node name (nodes without attributes left out)."""
        out = {}
        for n in self.graph.topo_order():
            d = _node_attr_strings(n)
            if d:
                out[n.name] = d
        return out

    def _set_attr(self, **kwargs: str) -> None:
        """Set user attributes on this symbol's node (replacing the node in this symbol only)."""
        node = self._single_node("_set_attr")
        user = dict(node.user_attrs)
        for k, v in kwargs.items():
            user[f"__{k}__" if k in HIDDEN_KEYS else k] = str(v)
        new = node.replace(user_attrs=user)
        self._entries = (Entry(new, self._entries[0].index),)
        self._graph = None

    # -- copy and composition --------------------------------------------
    def __copy__(self) -> "Symbol":
        return Symbol(self._entries)

    def __deepcopy__(self, memo: dict) -> "Symbol":
        return Symbol(self._entries)  # nodes are immutable: sharing them is a deep copy

    def copy(self) -> "Symbol":
        """A copy of the symbol (nodes are immutable, so they are shared)."""
        return Symbol(self._entries)

    def __call__(self, *args: "Symbol", **kwargs: Any) -> "Symbol":
        """Compose: replace arguments with other symbols, ``net2(data=net1)``.

        Positional symbols replace ``list_arguments()`` in order; keywords
        replace the variables of that name.  Returns a new symbol.
        """
        name = kwargs.pop("name", None)
        replace: dict[str, Entry] = {}
        arg_names = self.list_arguments()
        if len(args) > len(arg_names):
            raise SymbolError(f"compose got {len(args)} positional symbols but the symbol has "
                              f"only {len(arg_names)} arguments {arg_names}")
        for an, s in zip(arg_names, args):
            replace[an] = _as_single_entry(s, an)
        inputs = set(self.list_inputs())
        for k, s in kwargs.items():
            if k not in inputs:
                raise SymbolError(f"compose: the symbol has no input named {k!r}; its inputs are "
                                  f"{sorted(inputs)}")
            replace[k] = _as_single_entry(s, k)
        out = Symbol(substitute(self.graph, replace))
        if name is not None and len(out._entries) == 1:
            node = out._entries[0].node
            out = Symbol([Entry(node.replace(name=name), out._entries[0].index)])
        return out

    def _compose(self, *args: "Symbol", **kwargs: Any) -> None:
        """In-place composition (MXNet's ``_compose``)."""
        res = self(*args, **kwargs)
        self._entries, self._graph = res._entries, None

    # -- inference ------------------------------------------------------
    def _positional(self, args: tuple, kwargs: dict, what: str) -> dict:
        if args:
            names = self.list_arguments()
            if len(args) > len(names):
                raise SymbolError(f"{what}: {len(args)} positional values for {len(names)} arguments")
            merged = {n: a for n, a in zip(names, args) if a is not None}
            merged.update(kwargs)
            return merged
        return dict(kwargs)

    def infer_shape(self, *args: Any, **kwargs: Any):
        """Infer (arg_shapes, out_shapes, aux_shapes) from some known shapes, like MXNet.

        Returns ``(None, None, None)`` (and logs a warning) when the given shapes
        do not determine every shape; raises :class:`ShapeError` on a contradiction.
        """
        res = self._infer_shape(self._positional(args, kwargs, "infer_shape"), partial=False)
        if any(s is None or 0 in s for group in res for s in group):
            _log.warning("infer_shape: not enough information to infer every shape; "
                         "use infer_shape_partial to see what is known")
            return None, None, None
        return res

    def infer_shape_partial(self, *args: Any, **kwargs: Any):
        """Like :meth:`infer_shape` but returns what is known: ``()`` for unknown shapes, 0 for unknown dims."""
        arg, out, aux = self._infer_shape(self._positional(args, kwargs, "infer_shape_partial"), partial=True)
        if is_np_shape():   # MXNet's NumPy shape semantics: unknown dims are -1, unknown shapes None
            fix = lambda group: [None if s is None else tuple(d if d else -1 for d in s) for s in group]  # noqa: E731
        else:
            fix = lambda group: [() if s is None else s for s in group]  # noqa: E731
        return fix(arg), fix(out), fix(aux)

    def _infer_shape(self, shapes: dict, partial: bool):
        from .infer import infer
        if is_np_shape():   # -1 marks an unknown dim there; 0 is one inside inference
            shapes = {k: None if v is None else tuple(0 if isinstance(d, int) and d == -1 else d for d in v)
                      for k, v in shapes.items()}
        res = infer(self.graph, shapes=shapes, partial=True, default_dtype=np.float32)
        g = self.graph
        arg = [res.shape(Entry(n, 0)) for n in g.argument_nodes()]
        aux = [res.shape(Entry(n, 0)) for n in g.aux_nodes()]
        out = [res.shape(e) for e in self._entries]
        norm = lambda group: [None if s is None else tuple(int(d) for d in s) for s in group]  # noqa: E731
        return norm(arg), norm(out), norm(aux)

    def infer_type(self, *args: Any, **kwargs: Any):
        """Infer (arg_types, out_types, aux_types) as numpy scalar types, like MXNet.

        Returns ``(None, None, None)`` when some dtype stays unknown.
        """
        from .infer import infer
        dts = self._positional(args, kwargs, "infer_type")
        res = infer(self.graph, dtypes=dts, partial=True)
        g = self.graph
        groups = ([res.dtype(Entry(n, 0)) for n in g.argument_nodes()],
                  [res.dtype(e) for e in self._entries],
                  [res.dtype(Entry(n, 0)) for n in g.aux_nodes()])
        if any(d is None for grp in groups for d in grp):
            _log.warning("infer_type: not enough information to infer every dtype")
            return None, None, None
        return tuple([_dt.canonical(d).type for d in grp] for grp in groups)

    def infer_type_partial(self, *args: Any, **kwargs: Any):
        """Like :meth:`infer_type` but None marks the dtypes that stay unknown."""
        from .infer import infer
        res = infer(self.graph, dtypes=self._positional(args, kwargs, "infer_type_partial"), partial=True)
        g = self.graph
        conv = lambda d: None if d is None else _dt.canonical(d).type  # noqa: E731
        return ([conv(res.dtype(Entry(n, 0))) for n in g.argument_nodes()],
                [conv(res.dtype(e)) for e in self._entries],
                [conv(res.dtype(Entry(n, 0))) for n in g.aux_nodes()])

    # -- serialization ----------------------------------------------------
    def tojson(self) -> str:
        """The symbol as MXNet 1.x symbol JSON (marked ``is_np_shape`` under ``mx.util.np_shape()``, as MXNet)."""
        from .io.symbol_json import to_json
        return to_json(self.graph, np_shape=is_np_shape())

    def save(self, fname: str) -> None:
        """Write :meth:`tojson` to ``fname`` atomically."""
        from .io.atomic import atomic_write_text
        atomic_write_text(fname, self.tojson())

    # -- lowering and binding ----------------------------------------------
    def lower(self, dtypes: Mapping[str, Any] | None = None, is_train: bool = False, **shapes: Any):
        """Lower for the given input shapes; see :func:`xgraph.lower`."""
        from .lower import lower
        return lower(self, dtypes=dtypes, is_train=is_train, **shapes)

    def simple_bind(self, ctx: Any = None, grad_req: Any = "write", type_dict: Mapping[str, Any] | None = None,
                    stype_dict: Any = None, group2ctx: Any = None, shared_arg_names: Any = None,
                    shared_exec: Any = None, shared_buffer: Any = None, **kwargs: Any):
        """Allocate every array from the given input shapes and bind; see :meth:`Executor.simple_bind`.
        ``group2ctx`` maps ``ctx_group`` names to contexts: each group's nodes (and variables) go
        there, MXNet's model parallelism (see :mod:`xgraph.placement`)."""
        from .executor import Executor
        return Executor.simple_bind(self, ctx, grad_req=grad_req, type_dict=type_dict,
                                    shared_exec=shared_exec, group2ctx=group2ctx, **kwargs)

    def bind(self, ctx: Any = None, args: Any = None, args_grad: Any = None, grad_req: Any = "write",
             aux_states: Any = None, group2ctx: Any = None, shared_exec: Any = None, **kwargs: Any):
        """Bind to given arrays; see :class:`xgraph.executor.Executor`.  ``group2ctx`` as in :meth:`simple_bind`."""
        from .executor import Executor
        return Executor(self, ctx, args=args, args_grad=args_grad, grad_req=grad_req, aux_states=aux_states,
                        group2ctx=group2ctx, **kwargs)

    def eval(self, ctx: Any = None, **kwargs: Any) -> list:
        """Bind to the given arrays and run one inference forward; returns the outputs."""
        ex = self.bind(ctx, args=kwargs, grad_req="null")
        return ex.forward(is_train=False)

    # -- display -----------------------------------------------------------
    def __repr__(self) -> str:
        if len(self._entries) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(self.list_outputs())}]>"

    def debug_str(self) -> str:
        """One line per node: its op, name, inputs and attributes."""
        lines = []
        for n in self.graph.topo_order():
            if n.op is None:
                lines.append(f"Variable:{n.name}")
            else:
                ins = ", ".join(f"{e.node.name}[{e.index}]" for e in n.inputs)
                attrs = ", ".join(f"{k}={v}" for k, v in _node_attr_strings(n).items())
                lines.append(f"Op:{n.op.name}, Name={n.name}\n  Inputs: {ins}" + (f"\n  Attrs: {attrs}" if attrs else ""))
        return "\n".join(lines)

    # -- arithmetic ---------------------------------------------------------
    def _binary(self, other: Any, sym_op: str, scalar_op: str, reverse_scalar_op: str | None = None,
                reverse: bool = False) -> "Symbol":
        if isinstance(other, Symbol):
            a, b = (other, self) if reverse else (self, other)
            return invoke(sym_op, [a, b], {})
        if isinstance(other, (Number, np.number, np.bool_)):
            op = reverse_scalar_op if reverse and reverse_scalar_op else scalar_op
            # MXNet writes the scalar as Python spells it: ``a * 3`` stores "3", ``a * 3.0`` "3.0"
            return invoke(op, [self], {"scalar": float(other) if isinstance(other, (bool, np.bool_)) else other})
        return NotImplemented

    def __add__(self, o): return self._binary(o, "_Plus", "_PlusScalar")  # noqa: E704
    def __radd__(self, o): return self._binary(o, "_Plus", "_PlusScalar", reverse=True)  # noqa: E704
    def __sub__(self, o): return self._binary(o, "_Minus", "_MinusScalar")  # noqa: E704
    def __rsub__(self, o): return self._binary(o, "_Minus", "_MinusScalar", "_RMinusScalar", True)  # noqa: E704
    def __mul__(self, o): return self._binary(o, "_Mul", "_MulScalar")  # noqa: E704
    def __rmul__(self, o): return self._binary(o, "_Mul", "_MulScalar", reverse=True)  # noqa: E704
    def __truediv__(self, o): return self._binary(o, "_Div", "_DivScalar")  # noqa: E704
    def __rtruediv__(self, o): return self._binary(o, "_Div", "_DivScalar", "_RDivScalar", True)  # noqa: E704
    def __mod__(self, o): return self._binary(o, "_Mod", "_ModScalar")  # noqa: E704
    def __rmod__(self, o): return self._binary(o, "_Mod", "_ModScalar", "_RModScalar", True)  # noqa: E704
    def __pow__(self, o): return self._binary(o, "_Power", "_PowerScalar")  # noqa: E704
    def __rpow__(self, o): return self._binary(o, "_Power", "_PowerScalar", "_RPowerScalar", True)  # noqa: E704
    # comparisons need no reversed forms: Python reflects ``1 < a`` into ``a > 1`` itself
    def __eq__(self, o): return self._binary(o, "_equal", "_equal_scalar")  # noqa: E704
    def __ne__(self, o): return self._binary(o, "_not_equal", "_not_equal_scalar")  # noqa: E704
    def __gt__(self, o): return self._binary(o, "_greater", "_greater_scalar")  # noqa: E704
    def __ge__(self, o): return self._binary(o, "_greater_equal", "_greater_equal_scalar")  # noqa: E704
    def __lt__(self, o): return self._binary(o, "_lesser", "_lesser_scalar")  # noqa: E704
    def __le__(self, o): return self._binary(o, "_lesser_equal", "_lesser_equal_scalar")  # noqa: E704
    __hash__ = object.__hash__
    __div__ = __truediv__
    __rdiv__ = __rtruediv__

    def __neg__(self) -> "Symbol":
        return invoke("_MulScalar", [self], {"scalar": -1.0})

    def __bool__(self) -> bool:
        raise NotImplementedForSymbol(self.__bool__, "bool")

    def __abs__(self) -> "Symbol":
        return invoke("abs", [self], {})

    def __reduce__(self) -> tuple:
        # pickling goes through the symbol's JSON: no code objects, loadable by load_json
        return (load_json, (self.tojson(),))

    # fluent methods (``x.reshape(...)``), as MXNet's Symbol has them
    def __getattr__(self, item: str) -> Any:
        if item in _FLUENT:
            op_name = _FLUENT[item]
            return lambda *args, **kwargs: invoke(op_name, [self, *args], kwargs)
        raise AttributeError(f"'Symbol' object has no attribute {item!r}")

    def astype(self, dtype: Any) -> "Symbol":
        """Cast to ``dtype`` (the ``Cast`` op)."""
        return invoke("Cast", [self], {"dtype": dtype})


_FLUENT = {n: n for n in (
    "reshape", "transpose", "flatten", "expand_dims", "sum", "mean", "max", "min", "prod", "argmax",
    "argmin", "clip", "softmax", "log_softmax", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "square",
    "abs", "sign", "slice_axis", "slice", "split", "dot", "batch_dot", "zeros_like", "ones_like",
    "squeeze", "swapaxes", "tile", "repeat", "broadcast_to", "broadcast_like", "take", "pick", "one_hot",
    "topk", "sort", "argsort", "flip", "norm", "round", "floor", "ceil", "sin", "cos", "reshape_like",
    "broadcast_axes", "log1p", "expm1", "rsqrt", "reciprocal", "pad", "where", "rint", "fix", "trunc",
    "degrees", "radians", "argmax_channel", "shape_array", "size_array", "arccosh", "arcsin", "arccos",
    "arctan", "tan", "sinh", "cosh", "arcsinh", "arctanh", "log10", "log2", "cbrt", "rcbrt", "softmin",
    "nansum", "nanprod", "slice_like", "diag", "sum_axis", "max_axis", "min_axis", "cast")}
_FLUENT["flatten"] = "Flatten"
_FLUENT["pad"] = "Pad"
_FLUENT["cast"] = "Cast"


def _entry_name(e: Entry) -> str:
    node = e.node
    if node.op is None:
        return node.name
    names = node.output_names()
    if e.index < len(names):
        return names[e.index]
    return f"{node.name}_output{e.index}"


def _node_attr_strings(node: Node) -> dict[str, str]:
    from .io.symbol_json import node_attr_strings
    return node_attr_strings(node)


def _as_single_entry(s: Any, what: str) -> Entry:
    if not isinstance(s, Symbol):
        raise SymbolError(f"input {what!r} must be a Symbol, got {type(s).__name__}")
    if len(s._entries) != 1:
        raise SymbolError(f"input {what!r} is a group of {len(s._entries)} outputs; a single output is needed")
    return s._entries[0]


def substitute(graph: Graph, replace: Mapping[str, Entry]) -> list[Entry]:
    """Rebuild ``graph`` with the variables named in ``replace`` swapped for other entries."""
    memo: dict[int, Node | Entry] = {}

    for node in graph.topo_order():
        if node.op is None:
            if node.name in replace:
                memo[id(node)] = replace[node.name]
            else:
                memo[id(node)] = node
            continue
        new_inputs = []
        changed = False
        for e in node.inputs:
            m = memo[id(e.node)]
            if isinstance(m, Entry):
                new_inputs.append(m)
                changed = True
            else:
                new_inputs.append(Entry(m, e.index))
                changed |= m is not e.node
        memo[id(node)] = node.replace(inputs=new_inputs) if changed else node
    out = []
    for e in graph.outputs:
        m = memo[id(e.node)]
        out.append(m if isinstance(m, Entry) else Entry(m, e.index))
    return out


# -- creating symbols ------------------------------------------------------
def Variable(name: str, attr: Mapping[str, str] | None = None, shape: Sequence[int] | None = None,
             lr_mult: float | None = None, wd_mult: float | None = None, dtype: Any = None,
             init: Any = None, stype: str | None = None, sharding: Any = None, **kwargs: Any) -> Symbol:
    """A variable: an input, a learnable parameter or an auxiliary state.

    ``sharding`` (a PartitionSpec, a tuple such as ``('model', None)`` or its string) is how a
    Trainer over a mesh stores this parameter (``__sharding__``, see
    :func:`xgraph.parallel.param_shardings`); on one device it changes nothing.

        >>> import xgraph as mx
        >>> w = mx.sym.Variable('w', shape=(3, 4), lr_mult=0.1, dtype='float16')
        >>> w.attr('__shape__'), w.attr('__lr_mult__'), w.attr('__dtype__')
        ('(3, 4)', '0.1', '2')
        >>> mx.sym.var('fc_weight', sharding=('model', None)).attr('__sharding__')
        "('model', None)"
    """
    if not isinstance(name, str) or not name:
        raise SymbolError(f"a variable needs a non-empty string name, got {name!r}")
    user = AttrScope.current().get(dict(attr) if attr else None)
    user = {(f"__{k}__" if k in HIDDEN_KEYS else k): str(v) for k, v in user.items()}
    # MXNet writes str() of what it was given: shape=[3, 4] -> "[3, 4]", lr_mult=2 -> "2"
    if shape is not None:
        dims = [int(d) for d in shape]
        user["__shape__"] = str(dims if isinstance(shape, list) else tuple(dims))
    if lr_mult is not None:
        user["__lr_mult__"] = _attr_value(lr_mult)
    if wd_mult is not None:
        user["__wd_mult__"] = _attr_value(wd_mult)
    if dtype is not None:
        user["__dtype__"] = str(_dt.to_mx(dtype))
    if init is not None:
        user["__init__"] = init if isinstance(init, str) else init.dumps()
    if stype is not None:
        if stype != "default":
            raise SymbolError(f"variable '{name}': storage type {stype!r} is not supported (only 'default')")
        user["__storage_type__"] = "0"
    if sharding is not None:
        from .parallel import spec_text
        user["__sharding__"] = spec_text(sharding)
    for k, v in kwargs.items():
        if not (k.startswith("__") and k.endswith("__")):
            raise SymbolError(f"variable '{name}': unknown keyword {k!r} (attributes must look like __name__)")
        user[k] = str(v)
    return Symbol([Entry(Node(None, name, user_attrs=user), 0)])


var = Variable


def Group(symbols: Sequence[Symbol]) -> Symbol:
    """One symbol whose outputs are the outputs of all the given symbols, in order.

        >>> import xgraph as mx
        >>> a = mx.sym.var('a')
        >>> with mx.name.NameManager():
        ...     g = mx.sym.Group([a * 2, a + 1])
        >>> g.list_outputs()
        ['_mulscalar0_output', '_plusscalar0_output']
    """
    entries: list[Entry] = []
    for s in symbols:
        if not isinstance(s, Symbol):
            raise SymbolError(f"Group takes symbols, got {type(s).__name__}")
        entries.extend(s._entries)
    if not entries:
        raise SymbolError("Group needs at least one symbol")
    return Symbol(entries)


def _attr_value(v: Any) -> Any:
    """An attribute value as MXNet's frontend passes it on: numbers as ``str(v)`` ("2", "1e-05")."""
    if v is None:
        return "None"
    if isinstance(v, (Number, np.number)) and not isinstance(v, (bool, np.bool_)):
        return str(v)
    return v


def split_positional(op: "registry.Op", args: Sequence[Any]) -> tuple[list, list]:
    """Split MXNet-style positional arguments into (inputs, attribute values).

    MXNet's generated functions take every input slot first, then the
    attributes in the op's parameter order: ``reshape(data, (2, 3))``,
    ``one_hot(indices, 5)``, ``Convolution(data, weight, None, (3, 3))`` (``None``:
    an input not given).  The first ``len(op.inputs)`` values are inputs, the
    rest attribute values; an op with a variable number of inputs (``Concat``)
    takes only inputs positionally.
    """
    if op.variadic is not None or op.dynamic_inputs is not None:
        return list(args), []
    n = len(op.inputs)
    return list(args[:n]), list(args[n:])


def positional_attrs(op: "registry.Op", values: Sequence[Any], given: Mapping[str, Any], node_name: str,
                     n_inputs: int, is_input: Any) -> dict[str, Any]:
    """The attributes that positional ``values`` fill, in :meth:`Op.positional_attrs` order.

    Raises :class:`SymbolError` for an input among them, too many values or a
    value also given as a keyword; the message names the op and its signature.
    """
    if not values:
        return {}
    where = f"node '{node_name}' (op {op.name}, signature {op.signature()})"
    extra = [v for v in values if is_input(v)]
    if extra:
        names = [s.name for s in op.inputs]
        raise SymbolError(f"{where}: {n_inputs + len(extra)} inputs given but the op takes {len(names)} "
                          f"({', '.join(names) or 'none'})")
    order = op.positional_attrs()
    if len(values) > len(order):
        raise SymbolError(f"{where}: positional arguments must be Symbols for the inputs, then at most "
                          f"{len(order)} attribute value(s) ({', '.join(order) or 'none'}); got {len(values)} "
                          f"value(s) after the inputs (give attributes as keywords)")
    out = {}
    for k, v in zip(order, values):
        if k in given:
            raise SymbolError(f"{where}: attribute {k!r} given both positionally and as a keyword")
        out[k] = v
    return out


def invoke(op_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Symbol:
    """Apply operator ``op_name`` (name or alias) to symbols and attributes, MXNet style.

    Positional arguments are the input symbols in the op's input order (``None``
    for one not given), then attribute values in the op's attribute order
    (:func:`split_positional`, :meth:`Op.positional_attrs`); keyword arguments are inputs (when Symbols) or
    attributes.  Missing inputs become new variables named ``<node>_<input>``
    (``fc1_weight``).

        >>> import xgraph as mx
        >>> from xgraph.symbol import invoke
        >>> invoke('FullyConnected', [mx.sym.var('x')], {'num_hidden': 2, 'name': 'fc'}).list_arguments()
        ['x', 'fc_weight', 'fc_bias']
        >>> mx.sym.reshape(mx.sym.var('x'), (2, 3)).infer_shape(x=(3, 2))[1]
        [(2, 3)]
    """
    op = registry.get(op_name)
    kwargs = dict(kwargs)
    name = kwargs.pop("name", None)
    user = kwargs.pop("attr", None)
    if kwargs.get("out", 0) is None:   # MXNet's symbol functions take out=None and ignore it
        del kwargs["out"]
    pos = list(args)
    if len(pos) >= 1 and isinstance(pos[0], (list, tuple)) and op.variadic is not None \
            and all(isinstance(x, Symbol) for x in pos[0]):
        pos = list(pos[0]) + pos[1:]
    pos, pos_values = split_positional(op, pos)
    for a in pos:
        if a is not None and not isinstance(a, Symbol):
            raise SymbolError(f"{op_name}: positional arguments must be Symbols (or None for an input not "
                              f"given), got {type(a).__name__}; the signature is {op.signature()}")
    node_name = NameManager.current().get(name, op_name)
    kwargs.update(positional_attrs(op, pos_values, kwargs, node_name, len(pos),
                                   lambda v: isinstance(v, Symbol)))
    # an input given as None is not given (MXNet's generated functions default every input to None)
    input_names = {i.name for i in op.inputs}
    kwargs = {k: v for k, v in kwargs.items() if not (v is None and k in input_names)}
    sym_kwargs = {k: v for k, v in kwargs.items() if isinstance(v, Symbol)}
    raw_attrs = {k: _attr_value(v) for k, v in kwargs.items() if not isinstance(v, Symbol)}
    if op.variadic is not None and op.variadic not in raw_attrs:
        raw_attrs[op.variadic] = len([a for a in pos if a is not None]) + len(sym_kwargs)
    typed, hidden, strings = op.parse_attrs(raw_attrs, node_name)
    params = op.with_defaults(typed)
    in_names = op.input_names(params)
    if op.is_variadic(params):
        pos = [a for a in pos if a is not None]
    if any(a is not None for a in pos[len(in_names):]):
        raise SymbolError(f"node '{node_name}' (op {op.name}): {len(pos)} inputs given but the op takes "
                          f"{len(in_names)} ({', '.join(in_names)})")
    given: dict[str, Entry] = {}
    for n, s in zip(in_names, pos):
        if s is not None:
            given[n] = _as_single_entry(s, f"{node_name}.{n}")
    for k, s in sym_kwargs.items():
        if k not in in_names:
            raise SymbolError(f"node '{node_name}' (op {op.name}): no input named {k!r}; "
                              f"inputs are {', '.join(in_names) or 'none'}")
        if k in given:
            raise SymbolError(f"node '{node_name}' (op {op.name}): input {k!r} given twice")
        given[k] = _as_single_entry(s, f"{node_name}.{k}")
    scope_attrs = AttrScope.current().get(None)
    user_attrs = {(f"__{k}__" if k in HIDDEN_KEYS else k): str(v) for k, v in {**scope_attrs, **(user or {})}.items()}
    user_attrs.update(hidden)
    # MXNet gives automatically created inputs the op's attributes and the op's init hint
    attr_strings = {k: strings.get(k) or op.format_attr(k, v) for k, v in typed.items()}
    hints = op.init_hints(params)
    inputs = []
    for n in in_names:
        if n in given:
            inputs.append(given[n])
        else:
            if op.is_variadic(params):
                raise SymbolError(f"node '{node_name}' (op {op.name}): input {n} missing")
            var_attrs = {**attr_strings, **user_attrs}
            if n in hints:
                var_attrs["__init__"] = hints[n]
            inputs.append(Entry(Node(None, f"{node_name}_{n}", user_attrs=var_attrs), 0))
    node = Node(op, node_name, typed, inputs, user_attrs=user_attrs, raw_attrs=strings)
    return Symbol([Entry(node, i) for i in range(node.num_visible_outputs)])


def load_json(json_str: str) -> Symbol:
    """A symbol from MXNet symbol JSON text.

        >>> import xgraph as mx
        >>> s = mx.sym.load_json((mx.sym.var('a') + 1).tojson())
        >>> s.list_arguments()
        ['a']
    """
    from .io.symbol_json import from_json
    return Symbol(from_json(json_str).outputs)


def load(fname: str) -> Symbol:
    """A symbol from an MXNet ``-symbol.json`` file."""
    from .errors import GraphFormatError
    try:
        with open(fname, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise GraphFormatError(f"cannot read symbol file {fname!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GraphFormatError(f"symbol file {fname!r} is not UTF-8 text") from None
    return load_json(text)


def make_op_function(op_name: str):
    """The ``mx.sym.<op_name>`` function for a registered operator."""
    op = registry.get(op_name)

    def fn(*args: Any, **kwargs: Any) -> Symbol:
        return invoke(op_name, args, kwargs)
    fn.__name__ = op_name
    fn.__qualname__ = op_name
    fn.__doc__ = op.doc or f"The {op.name} operator."
    return fn


def __getattr__(name: str) -> Any:
    """``mx.sym.<Op>``: every registered operator is a function of this module."""
    if not name.startswith("__") and registry.exists(name):
        fn = make_op_function(name)
        if not hasattr(builtins, name):  # never shadow builtins (slice, sum, max) in this module
            globals()[name] = fn
        return fn
    raise AttributeError(f"module 'xgraph.symbol' has no attribute {name!r} (no such operator or function)")


# MXNet's sub-namespaces (mx.sym.linalg.gemm, mx.sym.contrib.*, mx.sym.random.*) and creation functions
from .namespaces import binary_functions as _binary_functions  # noqa: E402
from .namespaces import creation_functions as _creation_functions, op_namespaces as _op_namespaces  # noqa: E402

linalg, contrib, random, _internal = _op_namespaces(invoke, Symbol)
globals().update(_creation_functions(invoke))
from .namespaces import SYMBOL_BINARY as _SYMBOL_BINARY  # noqa: E402
globals().update(_binary_functions(invoke, Symbol, _SYMBOL_BINARY))
pow = power  # noqa: A001,F821  (MXNet's mx.sym.pow)
from .namespaces import frontend_functions as _frontend_functions  # noqa: E402
globals().update(_frontend_functions(invoke, Symbol))   # split_v2, histogram, mx.sym.image
from .parallel import with_sharding  # noqa: E402,F401  (mx.sym.with_sharding: a sharding constraint on a node)
