"""Shape and dtype inference over a :class:`~xgraph.graph.Graph`.

Output shapes and dtypes are never written by hand: each op node's outputs come
from ``jax.eval_shape`` of the op's own lowering, so inference and execution
cannot disagree.  Parameter shapes (a FullyConnected weight, a BatchNorm gamma)
come from the op's ``infer_inputs`` rule.  Results are memoized per
(op, attributes, input signature), so graphs with repeated blocks infer fast.

Partial inference: an unknown dimension is 0 and an unknown shape ``None``.
Dimensions that are unknown are traced as symbolic dimensions
(``jax.export.symbolic_shape``), so whatever does not depend on them is still
inferred.

    >>> import xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=3, name='fc')
    >>> net.infer_shape(x=(2, 5))
    ([(2, 5), (3, 5), (3,)], [(2, 3)], [])
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jax
import numpy as np

from . import dtypes as _dt
from .errors import DTypeError, ShapeError, XGraphError
from .graph import Entry, Graph, Node
from .ops.registry import LowerCtx, Op

Shape = tuple  # a tuple of ints; 0 marks an unknown dimension


def split_result(op: Op, params: Mapping[str, Any], result: Any) -> tuple[tuple, tuple]:
    """Normalize a lowering's return value into (outputs, new auxiliary values)."""
    if op.aux:
        outs, aux = result
    else:
        outs, aux = result, ()
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    return tuple(outs), tuple(aux)


def describe_inputs(node: Node, shapes: list, dtypes: list | None = None) -> str:
    """``data=(2, 3) float32, weight=(4, 3)``: a node's inputs, for error messages."""
    names = node.op.input_names(node.params) if node.op else []
    parts = []
    for i, s in enumerate(shapes):
        nm = names[i] if i < len(names) else f"in{i}"
        shp = "?" if s is None else str(tuple(s))
        dt = f" {np.dtype(dtypes[i]).name}" if dtypes and i < len(dtypes) and dtypes[i] is not None else ""
        parts.append(f"{nm}={shp}{dt}")
    return ", ".join(parts)


def node_error(node: Node, shapes: list, dtypes: list | None, exc: BaseException) -> XGraphError:
    """Wrap an error raised while inferring or lowering a node into an XGraphError naming it."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"node '{node.name}' (op {node.op.name}) with inputs {describe_inputs(node, shapes, dtypes)}"
    if isinstance(exc, XGraphError):
        return type(exc)(f"{where}: {msg}")
    cls = DTypeError if "dtype" in msg.lower() or "type" in type(exc).__name__.lower() and "shape" not in msg.lower() else ShapeError
    return cls(f"{where}: {msg}")


@functools.lru_cache(maxsize=65536)
def _eval_node(op: Op, attrs_key: tuple, in_sigs: tuple) -> tuple:
    """Abstractly evaluate one op; memoized by (op, attributes, input signature)."""
    params = op.with_defaults(dict(attrs_key))
    ctx = LowerCtx(False, jax.random.key(0), "<infer>")

    def fn(*xs):
        return split_result(op, params, op.lower(ctx, params, *xs))[0]

    args = [jax.ShapeDtypeStruct(s, d) for s, d in in_sigs]
    outs = jax.eval_shape(fn, *args)
    return tuple((tuple(o.shape), np.dtype(o.dtype)) for o in outs)


def clear_cache() -> None:
    """Forget the memoized per-node results (an operator's definition changed: a re-registered custom op)."""
    _eval_node.cache_clear()
    _eval_symbolic_cached.cache_clear()


@functools.lru_cache(maxsize=65536)
def _eval_symbolic_cached(op: Op, attrs_key: tuple, in_sigs: tuple) -> tuple | None:
    """:func:`_eval_symbolic`, memoized by (op, attributes, input shapes with 0 for unknown, dtypes)."""
    return _eval_symbolic(op, op.with_defaults(dict(attrs_key)), [s for s, _ in in_sigs], [d for _, d in in_sigs])


def _eval_symbolic(op: Op, params: Mapping[str, Any], shapes: list, dtypes: list) -> tuple | None:
    """Evaluate with unknown dimensions as symbols; unknown output dims come back as 0.

    First every unknown dimension is its own symbol; if the op needs some of
    them equal (a label's batch size and the data's), one shared symbol is tried.
    """
    for shared in (False, True):
        specs = []
        for i, s in enumerate(shapes):
            dims = [str(int(d)) if d else ("u" if shared else f"u{i}_{j}") for j, d in enumerate(s)]
            specs.append(", ".join(dims))
        res = _eval_with_specs(op, params, specs, dtypes)
        if res is not None:
            return res
    return None


def _eval_with_specs(op: Op, params: Mapping[str, Any], specs: list[str], dtypes: list) -> tuple | None:
    try:
        scope = jax.export.SymbolicScope()
        sym_shapes = [jax.export.symbolic_shape(sp, scope=scope) if sp else () for sp in specs]
        ctx = LowerCtx(False, jax.random.key(0), "<infer>")

        def fn(*xs):
            return split_result(op, params, op.lower(ctx, params, *xs))[0]

        outs = jax.eval_shape(fn, *[jax.ShapeDtypeStruct(s, d) for s, d in zip(sym_shapes, dtypes)])
    except Exception:  # noqa: BLE001 - an op that needs concrete sizes just stays unknown
        return None
    res = []
    for o in outs:
        dims = tuple(d if isinstance(d, int) else 0 for d in o.shape)
        res.append((dims, np.dtype(o.dtype)))
    return tuple(res)


@dataclass
class InferResult:
    """Shapes and dtypes of every entry (``None`` when unknown) and of every variable by name."""

    shapes: dict[tuple[int, int], Shape | None]
    dtypes: dict[tuple[int, int], Any]
    var_shapes: dict[str, Shape | None]
    var_dtypes: dict[str, Any]

    def shape(self, e: Entry) -> Shape | None:
        return self.shapes.get((id(e.node), e.index))

    def dtype(self, e: Entry) -> Any:
        return self.dtypes.get((id(e.node), e.index))


def _full(shape: Shape | None) -> bool:
    return shape is not None and all(int(d) > 0 for d in shape)


def _known(shape: Shape | None) -> bool:
    """A shape of a real array: every size known, 0 included."""
    return shape is not None and all(int(d) >= 0 for d in shape)


def _merge_shape(node: Node, what: str, old: Shape | None, new: Shape | None) -> Shape | None:
    """Combine two partial shapes of the same value, refusing a contradiction."""
    if new is None:
        return old
    if old is None:
        return tuple(new)
    if len(old) != len(new) or any(a and b and a != b for a, b in zip(old, new)):
        raise ShapeError(f"node '{node.name}' (op {node.op.name if node.op else 'Variable'}) "
                         f"{what} has shape {tuple(old)} but {tuple(new)} is expected")
    return tuple(a or b for a, b in zip(old, new))


def variable_shape(node: Node) -> Shape | None:
    """A variable's declared ``__shape__``, or None."""
    from .ops.attrs import Shape as ShapeKind
    s = node.user_attrs.get("__shape__")
    if s is None:
        return None
    try:
        shp = ShapeKind(allow_negative=True).parse(s)
        if any(d < -1 for d in shp):
            raise ValueError
    except ValueError:
        raise ShapeError(f"variable '{node.name}': __shape__ {s!r} is not a shape") from None
    # -1 is an unknown dimension (MXNet's np_shape semantics; 0 in the legacy ones)
    return tuple(0 if d == -1 else d for d in shp) if len(shp) else None


def variable_dtype(node: Node) -> Any:
    """A variable's declared ``__dtype__`` (MXNet's integer code or a name), or None."""
    d = node.user_attrs.get("__dtype__")
    if d is None:
        return None
    try:
        return _dt.from_mx(d)
    except DTypeError as exc:
        raise DTypeError(f"variable '{node.name}': __dtype__ {d!r} is not a dtype ({exc})") from None


def _given_shape(name: str, value: Any) -> tuple[int, ...]:
    """A user-given shape as a tuple of ints, or a ShapeError naming the variable."""
    try:
        dims = tuple(value)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
            raise TypeError
        return tuple(int(d) for d in dims)
    except TypeError:
        raise ShapeError(f"variable '{name}': shape {value!r} must be a tuple of integers") from None


def infer(graph: Graph, shapes: Mapping[str, Any] | None = None, dtypes: Mapping[str, Any] | None = None,
          partial: bool = True, default_dtype: Any = None, zero_size_known: bool = False) -> InferResult:
    """Infer the shape and dtype of every entry of ``graph``.

    ``shapes`` and ``dtypes`` give known variables by name.  With
    ``partial=False`` nothing changes in the computation; callers decide what
    an unknown result means.  Contradictions raise :class:`ShapeError` or
    :class:`DTypeError` naming the node, the op and its input shapes.
    ``default_dtype`` is assumed for variables with no known dtype when a
    concrete evaluation needs one (shape inference without dtypes).
    ``zero_size_known`` says the given shapes are those of real arrays, so a 0
    in them is a zero size, not an unknown (an executor bound to zero-size
    arrays, MXNet's np_shape semantics); it holds unless the graph has a
    deferred creation node, whose open sizes are 0 too.
    """
    shapes = dict(shapes or {})
    dtypes = {k: _dt.canonical(v) for k, v in (dtypes or {}).items()}
    ent_shape: dict[tuple[int, int], Shape | None] = {}
    ent_dtype: dict[tuple[int, int], Any] = {}
    var_shape: dict[str, Shape | None] = {}
    var_dtype: dict[str, Any] = {}
    var_nodes: dict[str, list[Node]] = {}
    order = graph.topo_order()

    for node in order:
        if node.op is None:
            s = variable_shape(node)
            if node.name in shapes and shapes[node.name] is not None:
                given = _given_shape(node.name, shapes[node.name])
                if s is not None and (len(s) != len(given) or any(a and b and a != b for a, b in zip(s, given))):
                    s = None   # as in MXNet, a shape given to infer_shape/bind overrides the declared __shape__
                s = _merge_shape(node, "the given shape", s, given)
            ent_shape[(id(node), 0)] = s
            d = dtypes.get(node.name, variable_dtype(node))
            ent_dtype[(id(node), 0)] = d
            var_nodes.setdefault(node.name, []).append(node)

    ops = [node for node in order if node.op is not None]
    zero_size_known = zero_size_known and not any(_deferred_outputs(n, None) is not None for n in ops)
    state = _State(ent_shape, ent_dtype, var_nodes, partial, default_dtype,
                   _known if zero_size_known else _full)
    for node in ops:
        _forward(node, state)
    # MXNet's inference runs both ways until nothing changes: outputs known from
    # later nodes fix inputs (an elementwise sum's other operand, FullyConnected's batch)
    while not all(state.full(v) for v in ent_shape.values()) and _backward(reversed(ops), state):
        for node in ops:
            _forward(node, state)

    for name, nodes in var_nodes.items():
        var_shape[name] = ent_shape.get((id(nodes[0]), 0))
        var_dtype[name] = ent_dtype.get((id(nodes[0]), 0))
    return InferResult(ent_shape, ent_dtype, var_shape, var_dtype)


@dataclass
class _State:
    """What the inference passes share: the entry tables and the options."""

    shapes: dict
    dtypes: dict
    var_nodes: dict
    partial: bool
    default_dtype: Any
    full: Callable[[Shape | None], bool]   # the test for a completely known shape (_full; _known for real arrays)


def _forward(node: Node, st: _State) -> None:
    """Fill in one node's parameter shapes, dtypes and output shapes from its inputs."""
    ent_shape, ent_dtype, var_nodes = st.shapes, st.dtypes, st.var_nodes
    op, params = node.op, node.params
    keys = [(id(e.node), e.index) for e in node.inputs]
    in_shapes = [ent_shape.get(k) for k in keys]
    in_dtypes = [ent_dtype.get(k) for k in keys]
    # parameter shapes and dtypes from the op's own rules
    full = st.full
    if op.infer_inputs is not None and not all(full(s) for s in in_shapes):
        try:
            deduced = op.infer_inputs(params, list(in_shapes))
        except XGraphError as exc:
            raise node_error(node, in_shapes, in_dtypes, exc) from None
        _apply_input_shapes(node, in_shapes, deduced, st)
    if op.infer_dtype is not None:
        filled, rule_out = op.infer_dtype(params, list(in_dtypes))
    else:
        filled, rule_out = _same_dtype(in_dtypes), None
    for i, (e, d) in enumerate(zip(node.inputs, filled)):
        if in_dtypes[i] is None and d is not None:
            in_dtypes[i] = d
            _set_entry(ent_dtype, e, d, var_nodes)
    if op.same_dtype and len({np.dtype(d) for d in in_dtypes if d is not None}) > 1:
        raise node_error(node, in_shapes, in_dtypes,
                         DTypeError(f"{op.name} needs inputs of one dtype (MXNet does not promote); "
                                    f"cast one of them with Cast"))
    n_out = node.num_outputs
    eval_dtypes = [d if d is not None else st.default_dtype for d in in_dtypes]
    outs = _deferred_outputs(node, rule_out)     # a creation node with sizes left to its consumers
    if outs is None and all(full(s) for s in in_shapes) and all(d is not None for d in eval_dtypes):
        try:
            outs = _eval_node(op, tuple(sorted(node.attrs.items())),
                              tuple((tuple(int(x) for x in s), np.dtype(d)) for s, d in zip(in_shapes, eval_dtypes)))
        except Exception as exc:  # noqa: BLE001 - reported with the node's context
            raise node_error(node, in_shapes, eval_dtypes, exc) from None
    elif (outs is None and st.partial and all(s is not None for s in in_shapes) and all(d is not None for d in eval_dtypes)
          and all(full(in_shapes[i]) for i in op.partial_needs_full if i < len(in_shapes))):
        shapes = op.partial_shapes(params, [tuple(s) for s in in_shapes]) if op.partial_shapes else None
        if shapes is not None:
            outs = tuple((tuple(s), np.dtype(eval_dtypes[0])) for s in shapes)
        else:
            outs = _eval_symbolic_cached(op, tuple(sorted(node.attrs.items())),
                                         tuple((tuple(int(x) for x in s), np.dtype(d))
                                               for s, d in zip(in_shapes, eval_dtypes)))
    for i in range(n_out):
        key = (id(node), i)
        if outs is not None:
            ent_shape[key] = _merge_shape(node, f"with inputs {describe_inputs(node, in_shapes)}: output {i}",
                                          ent_shape.get(key), outs[i][0])
            ent_dtype[key] = outs[i][1] if all(d is not None for d in in_dtypes) else ent_dtype.get(key)
        else:
            ent_shape.setdefault(key, None)
            ent_dtype.setdefault(key, None)
    # dtypes that evaluation could not give: the op's rule, else the first input's
    fallback = next((d for d in in_dtypes if d is not None), None)
    for i in range(n_out):
        if ent_dtype.get((id(node), i)) is None:
            if rule_out is not None:
                ent_dtype[(id(node), i)] = rule_out[i] if i < len(rule_out) else rule_out[-1]
            else:
                ent_dtype[(id(node), i)] = fallback


def _deferred_outputs(node: Node, out_dtypes: list | None) -> tuple | None:
    """The open output shapes of a deferred creation node (``ones(shape=(-1, 3))``), else None."""
    op = node.op
    if node.inputs or op.complete_attrs is None or op.partial_shapes is None:
        return None
    try:
        shapes = op.partial_shapes(node.params, [])
    except XGraphError as exc:
        raise node_error(node, [], None, exc) from None
    if shapes is None or all(_full(s) for s in shapes):
        return None
    dts = out_dtypes or [None]
    return tuple((tuple(s), dts[min(i, len(dts) - 1)]) for i, s in enumerate(shapes))


def resolve_deferred(graph: Graph, result: InferResult) -> Graph:
    """``graph`` with every deferred creation node's attributes completed from ``result``.

    MXNet lets ``ones(shape=(-1, -1))`` or ``arange(infer_range=True)`` take
    their sizes from where they are used; inference learns those sizes (both
    ways), and this rewrites the nodes so that they lower to static shapes.
    A node whose sizes stayed unknown raises a :class:`ShapeError` naming it.
    An unchanged graph comes back as is.

        >>> import xgraph as mx
        >>> net = mx.sym.ones(shape=(-1,), name='o') + mx.sym.var('x')
        >>> g = resolve_deferred(net.graph, infer(net.graph, {'x': (4,)}))
        >>> [n.params['shape'] for n in g.op_nodes() if n.name == 'o']
        [(4,)]
    """
    mapped: dict[int, Node] = {}
    changed = False
    for node in graph.topo_order():
        new = node
        if node.op is not None and _deferred_outputs(node, None) is not None:
            shapes = [result.shapes.get((id(node), i)) for i in range(node.num_outputs)]
            if not all(_full(s) for s in shapes):
                raise ShapeError(f"node '{node.name}' (op {node.op.name}): the output shape "
                                 f"{_open_shape(shapes[0])} has unknown dimensions that nothing it feeds "
                                 f"determines; give them in the attributes")
            try:
                updates = dict(node.op.complete_attrs(node.params, [tuple(s) for s in shapes]))
            except XGraphError as exc:
                raise node_error(node, [], None, exc) from None
            raw = {k: v for k, v in node.raw_attrs.items() if k not in updates}
            new = node.replace(attrs={**node.attrs, **updates}, raw_attrs=raw)
        ins = [Entry(mapped.get(id(e.node), e.node), e.index) for e in node.inputs]
        if any(a.node is not e.node for a, e in zip(ins, node.inputs)):
            new = new.replace(inputs=ins)
        if new is not node:
            mapped[id(node)] = new
            changed = True
    if not changed:
        return graph
    return Graph([Entry(mapped.get(id(e.node), e.node), e.index) for e in graph.outputs])


def _open_shape(shape: Shape | None) -> str:
    return "?" if shape is None else str(tuple(d if d else "?" for d in shape)).replace("'", "")


def _backward(nodes, st: _State) -> bool:
    """One pass from the outputs back: input shapes the ops deduce from known outputs; True if any changed."""
    changed = False
    for node in nodes:
        rule = node.op.infer_backward
        if rule is None:
            continue
        out_shapes = [st.shapes.get((id(node), i)) for i in range(node.num_outputs)]
        if all(s is None for s in out_shapes):
            continue
        in_shapes = [st.shapes.get((id(e.node), e.index)) for e in node.inputs]
        if all(st.full(s) for s in in_shapes):
            continue
        try:
            deduced = rule(node.params, list(in_shapes), out_shapes)
        except XGraphError as exc:
            raise node_error(node, in_shapes, None, exc) from None
        changed |= _apply_input_shapes(node, in_shapes, deduced, st)
    return changed


def _apply_input_shapes(node: Node, in_shapes: list, deduced: list, st: _State) -> bool:
    """Merge deduced input shapes into ``in_shapes`` and the tables; True if any input learned something."""
    changed = False
    given = describe_inputs(node, in_shapes)
    for i, (e, s) in enumerate(zip(node.inputs, deduced)):
        merged = _merge_shape(node, f"with inputs {given}: input '{_input_name(node, i)}'", in_shapes[i], s)
        if merged != in_shapes[i]:
            in_shapes[i] = merged
            _set_entry(st.shapes, e, merged, st.var_nodes)
            changed = True
    return changed


def _input_name(node: Node, i: int) -> str:
    names = node.op.input_names(node.params)
    return names[i] if i < len(names) else f"input {i}"


def _set_entry(table: dict, e: Entry, value: Any, var_nodes: Mapping[str, list[Node]]) -> None:
    """Record a deduced value; for a variable, every node of that name gets it."""
    if e.node.op is None:
        for n in var_nodes.get(e.node.name, [e.node]):
            table[(id(n), 0)] = value
    else:
        table[(id(e.node), e.index)] = value


def _same_dtype(dts: list) -> list:
    """MXNet's default type rule: unknown inputs take the dtype of the known ones."""
    known = next((d for d in dts if d is not None), None)
    return [d if d is not None else known for d in dts]
