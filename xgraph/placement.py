"""MXNet's model parallelism by placement: ``ctx_group`` attributes and ``group2ctx`` at bind.

A symbol built under ``mx.AttrScope(ctx_group='dev1')`` carries ``__ctx_group__`` on its nodes (and
on the variables its ops create).  Bound with ``group2ctx={'dev1': mx.cpu(1), ...}``, each node runs
on its group's device, as in MXNet 1.9.1 (``AssignContext`` and nnvm's ``PlaceDevice``):

* a variable is where its array is: ``simple_bind`` allocates it on its group's context (a variable
  without a group, or whose group is not in ``group2ctx``, on the bind context); ``bind`` takes the
  arrays' own devices.  Gradients live with their arguments;
* an op node with a ``__ctx_group__`` runs on its group's context (a group missing from
  ``group2ctx`` is an error); an op node without one runs where its first input is; a node without
  inputs (``zeros``) where its first consumer is, else on the bind context;
* an output is on the device of the node that computes it.

When every node lands on one device, nothing changes: the executor is the ordinary one, one XLA
program.  Otherwise :class:`PlacedPrograms` cuts the graph into **segments**, runs of consecutive
nodes (in a topological order that stays on one device as long as it can) on one device; each
segment is its own jitted program, its inputs are moved to its device with ``jax.device_put``,
and gradients are chained backward segment by segment (each segment's forward keeps its
residuals, on its device; its backward runs there too).  Random ops draw what the one-device
executor draws: every segment gets the same step key, and a node's stream comes from its name.
Graph-level passes are not run on this path (XLA still optimizes each segment).

    >>> import xgraph as mx
    >>> with mx.AttrScope(ctx_group='a'):
    ...     h = mx.sym.relu(mx.sym.var('x'), name='r')
    >>> dev = assign_devices(h.graph, {'a': mx.cpu(0)}, mx.cpu(0), {'x': mx.cpu(0)})
    >>> sorted(str(c) for c in dev.values())
    ['cpu(0)', 'cpu(0)']
"""
from __future__ import annotations

import heapq
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import dtypes as _dt
from .context import Context
from .errors import ConfigError, DeviceError, UnsupportedFeatureError
from .graph import Entry, Graph, Node
from .infer import infer
from .lower import (RenamedFunction, gradient_programs, inference_program, train_forward_program,
                    unique_names)

GROUP_ATTR = "__ctx_group__"

__all__ = ["GROUP_ATTR", "resolve_group2ctx", "variable_contexts", "assign_devices", "Segment",
           "plan_segments", "PlacedPrograms", "spans_devices"]


def _group_of(node: Node) -> str | None:
    return node.user_attrs.get(GROUP_ATTR) if node.user_attrs else None


def resolve_group2ctx(group2ctx: Any, where: str = "group2ctx") -> dict[str, Context]:
    """``group2ctx`` checked: a dict of ctx_group name → :class:`~xgraph.context.Context` whose
    devices exist (``{}`` for None or an empty dict).  A value that is not a context raises
    ConfigError, a device this process does not have DeviceError; both name the group.

        >>> import xgraph as mx
        >>> resolve_group2ctx({'dev1': mx.cpu(0)})
        {'dev1': cpu(0)}
    """
    if not group2ctx:
        return {}
    if not isinstance(group2ctx, Mapping):
        raise ConfigError(f"{where} must map ctx_group names to contexts, got {type(group2ctx).__name__}")
    out: dict[str, Context] = {}
    for group, ctx in group2ctx.items():
        if not isinstance(group, str):
            raise ConfigError(f"{where}: ctx_group names are strings, got {group!r}")
        if not isinstance(ctx, Context):
            raise ConfigError(f"{where}[{group!r}] is {ctx!r} ({type(ctx).__name__}); expected a context such "
                              f"as mx.cpu(1) or mx.gpu(0)")
        try:
            ctx.device
        except DeviceError as exc:
            raise DeviceError(f"{where}[{group!r}]: {exc}") from None
        out[group] = ctx
    return out


def _check_group(node: Node, group: str, table: Mapping[str, Context], where: str) -> Context:
    if group not in table:
        kind = "variable" if node.op is None else f"node ({node.op.name})"
        raise ConfigError(f"{kind} {node.name!r} is in ctx_group {group!r}, which {where} does not map to a "
                          f"context; {where} has {sorted(table)}: add {group!r}: <context>")
    return table[group]


def variable_contexts(graph: Graph, table: Mapping[str, Context], default: Context) -> dict[str, Context]:
    """Where ``simple_bind`` allocates each variable (argument or aux state): its group's context
    when ``table`` has the group, else ``default`` (MXNet allocates a variable of an unmapped group
    on the bind context too).

        >>> import xgraph as mx
        >>> w = mx.sym.var('w', attr={'ctx_group': 'g'})
        >>> variable_contexts((w * 2).graph, {'g': mx.cpu(0)}, mx.cpu(0))
        {'w': cpu(0)}
    """
    out: dict[str, Context] = {}
    for node in graph.variables():
        group = _group_of(node)
        out.setdefault(node.name, table[group] if group in table else default)
    return out


def assign_devices(graph: Graph, table: Mapping[str, Context], default: Context,
                   var_contexts: Mapping[str, Context], where: str = "group2ctx") -> dict[int, Context]:
    """The context of every node (keyed by ``id(node)``), by MXNet's placement rules (module docstring).

    ``var_contexts`` says where each variable's array is.  A node in a group that ``table`` lacks
    raises ConfigError naming the node and the group.

        >>> import xgraph as mx
        >>> x = mx.sym.var('x')
        >>> with mx.AttrScope(ctx_group='g'):
        ...     y = mx.sym.relu(x, name='r')
        >>> z = mx.sym.exp(y, name='e')          # no group: where its first input is
        >>> dev = assign_devices(z.graph, {'g': mx.cpu(0)}, mx.cpu(0), {'x': mx.cpu(0)})
        >>> dev[id(z.graph.outputs[0].node)]
        cpu(0)
    """
    order = graph.topo_order()
    dev: dict[int, Context | None] = {}
    for node in order:
        group = _group_of(node)
        if group is not None:
            dev[id(node)] = _check_group(node, group, table, where)
        elif node.op is None:
            dev[id(node)] = var_contexts.get(node.name, default)
        else:
            dev[id(node)] = next((dev[id(e.node)] for e in node.inputs if dev[id(e.node)] is not None), None)
    for node in reversed(order):      # nodes without inputs take their consumer's device
        d = dev[id(node)]
        if d is None:
            continue
        for e in node.inputs:
            if dev[id(e.node)] is None:
                dev[id(e.node)] = d
    return {k: (v if v is not None else default) for k, v in dev.items()}


def spans_devices(devices: Mapping[int, Context]) -> bool:
    """Whether a placement uses two or more devices (then the executor runs segments).

        >>> import xgraph as mx
        >>> spans_devices({1: mx.cpu(0), 2: mx.cpu(0)})
        False
    """
    return len({d.device for d in devices.values()}) > 1


class Segment:
    """Consecutive op nodes on one device, lowered as one program.

    ``graph`` is the segment as a graph of its own: entries it reads from other segments are
    placeholder variables (``inputs`` maps each placeholder name to that entry), the user's variables
    are themselves, and its outputs are ``exports``, the entries later segments or the graph's
    outputs read.

        >>> import xgraph as mx
        >>> with mx.AttrScope(ctx_group='a'):
        ...     y = mx.sym.relu(mx.sym.var('x'), name='r')
        >>> seg = plan_segments(y.graph, assign_devices(y.graph, {'a': mx.cpu(0)}, mx.cpu(0), {}))[0]
        >>> seg.ctx, seg.arg_names, [e.node.name for e in seg.exports]
        (cpu(0), ('x',), ['r'])
    """

    __slots__ = ("index", "ctx", "device", "nodes", "graph", "inputs", "exports", "arg_names", "aux_names")

    def __init__(self, index: int, ctx: Context, nodes: list[Node], graph: Graph, inputs: dict[str, Entry],
                 exports: list[Entry]):
        self.index, self.ctx, self.device, self.nodes = index, ctx, ctx.device, nodes
        self.graph, self.inputs, self.exports = graph, inputs, exports
        self.arg_names = tuple(unique_names(graph.argument_nodes()))
        self.aux_names = tuple(unique_names(graph.aux_nodes()))

    def __repr__(self) -> str:
        return f"<Segment {self.index} @{self.ctx}: {[n.name for n in self.nodes]}>"


def _key(e: Entry) -> tuple[int, int]:
    return (id(e.node), e.index)


def plan_segments(graph: Graph, devices: Mapping[int, Context]) -> list[Segment]:
    """Cut ``graph``'s op nodes into segments of one device each.

    The order is topological and keeps to the current device while any node there is ready (among
    ready nodes, the one first in MXNet's depth-first order), so independent branches on different
    devices make few segments.

        >>> import xgraph as mx
        >>> with mx.AttrScope(ctx_group='a'):
        ...     h = mx.sym.relu(mx.sym.var('x'), name='r')
        >>> g = mx.sym.exp(h, name='e').graph
        >>> [len(s.nodes) for s in plan_segments(g, assign_devices(g, {'a': mx.cpu(0)}, mx.cpu(0), {}))]
        [2]
    """
    order = graph.topo_order()
    pos = {id(n): i for i, n in enumerate(order)}
    ops = [n for n in order if n.op is not None]
    waiting = {id(n): len({id(e.node) for e in n.inputs if e.node.op is not None}) for n in ops}
    users: dict[int, list[Node]] = {}
    for n in ops:
        for src in {id(e.node) for e in n.inputs if e.node.op is not None}:
            users.setdefault(src, []).append(n)
    ready: dict[Any, list] = {}

    def push(n: Node) -> None:
        heapq.heappush(ready.setdefault(devices[id(n)].device, []), (pos[id(n)], id(n), n))

    for n in ops:
        if waiting[id(n)] == 0:
            push(n)
    groups: list[tuple[Context, list[Node]]] = []
    current = None
    while any(ready.values()):
        if current is None or not ready.get(current):
            current = min((h[0][0], d) for d, h in ready.items() if h)[1]
            groups.append((None, []))
        _, _, n = heapq.heappop(ready[current])
        if groups[-1][0] is None:
            groups[-1] = (devices[id(n)], groups[-1][1])
        groups[-1][1].append(n)
        for u in users.get(id(n), ()):
            waiting[id(u)] -= 1
            if waiting[id(u)] == 0:
                push(u)
    seg_of = {id(n): i for i, (_, nodes) in enumerate(groups) for n in nodes}
    read_elsewhere: set = {_key(e) for e in graph.outputs}
    for n in ops:
        for e in n.inputs:
            if e.node.op is not None and seg_of[id(e.node)] != seg_of[id(n)]:
                read_elsewhere.add(_key(e))
    taken = {n.name for n in order}
    segments = []
    for i, (ctx, nodes) in enumerate(groups):
        inputs: dict[str, Entry] = {}
        placeholder: dict[tuple, Entry] = {}
        rebuilt: dict[int, Node] = {}

        def feed(e: Entry) -> Entry:
            if e.node.op is None:
                return e
            if id(e.node) in rebuilt:
                return Entry(rebuilt[id(e.node)], e.index)
            k = _key(e)
            if k not in placeholder:
                name = f"{e.node.name}_{e.index}_copy"       # MXNet's name for a cross-device copy
                while name in taken:
                    name += "_"
                taken.add(name)
                inputs[name] = e
                placeholder[k] = Entry(Node(None, name), 0)
            return placeholder[k]
        for n in nodes:
            rebuilt[id(n)] = n.replace(inputs=tuple(feed(e) for e in n.inputs))
        exports = [Entry(n, j) for n in nodes for j in range(n.num_outputs) if (id(n), j) in read_elsewhere]
        sub = Graph(tuple(Entry(rebuilt[id(e.node)], e.index) for e in exports))
        segments.append(Segment(i, ctx, nodes, sub, inputs, exports))
    return segments


class _Run:
    """One forward over the segments: the values of every exported entry, and the residuals."""

    __slots__ = ("values", "pullbacks", "new_aux")

    def __init__(self):
        self.values: dict[tuple, Any] = {}
        self.pullbacks: list = []
        self.new_aux: dict[str, Any] = {}


class PlacedPrograms:
    """The programs of an executor whose nodes are placed on several devices (module docstring).

    It offers what :class:`~xgraph.bound.BoundPrograms` offers the executor: ``infer``,
    ``train_forward()``, ``gradient(mask)`` and ``inference_gradient(mask)``, over the user's
    arguments and aux states in the user's order.  ``segments`` lists the segments and their devices.

        >>> import numpy as np, xgraph as mx
        >>> with mx.AttrScope(ctx_group='a'):
        ...     y = mx.sym.relu(mx.sym.var('x'), name='r')
        >>> p = PlacedPrograms(y.graph, ['x'], [], {'x': (2,)}, {'x': np.float32}, mx.cpu(0), {'a': mx.cpu(0)},
        ...                    {'x': mx.cpu(0)})
        >>> [float(v) for v in p.infer((np.array([-1, 2], np.float32),), (), None)[0]]
        [0.0, 2.0]
    """

    def __init__(self, graph: Graph, arg_names: Sequence[str], aux_names: Sequence[str],
                 shapes: Mapping[str, Any], dtypes: Mapping[str, Any], default: Context,
                 table: Mapping[str, Context], var_contexts: Mapping[str, Context],
                 grad_contexts: Mapping[str, Context] | None = None):
        from .passes import optimize
        self.graph = graph
        self.arg_names, self.aux_names = tuple(arg_names), tuple(aux_names)
        self.var_contexts = dict(var_contexts)
        self.grad_contexts = dict(grad_contexts or var_contexts)
        self.devices = assign_devices(graph, table, default, var_contexts)
        self.segments = plan_segments(graph, self.devices)
        res = infer(graph, dict(shapes), dict(dtypes), partial=False, zero_size_known=True)
        self._sig = {}
        for seg in self.segments:
            for e in seg.exports:
                self._sig[_key(e)] = (tuple(res.shape(e)), _dt.canonical(res.dtype(e)))
        self._shapes, self._dtypes = dict(shapes), dict(dtypes)
        self._masks: dict[tuple, list] = {}
        # the report and graph the executor shows: no graph-level pass runs on this path
        opt = optimize(graph, 0, for_training=True, shapes=dict(shapes), dtypes=dict(dtypes))
        self.train_graph, self.train_report = graph, opt.report
        self.infer_graph, self.infer_report = None, None
        self.rebuilds = 0

    # -- the executor's interface -------------------------------------------------------------
    def output_contexts(self) -> list[Context]:
        """The context of each graph output (its node's).

            >>> import numpy as np, xgraph as mx
            >>> y = mx.sym.relu(mx.sym.var('x', attr={'ctx_group': 'a'}), name='r')
            >>> PlacedPrograms(y.graph, ['x'], [], {'x': (2,)}, {'x': np.float32}, mx.cpu(0), {'a': mx.cpu(0)},
            ...                {'x': mx.cpu(0)}).output_contexts()
            [cpu(0)]
        """
        return [self.devices[id(e.node)] for e in self.graph.outputs]

    def infer(self, args: Sequence[Any], aux: Sequence[Any], key: Any) -> tuple:
        """``forward(is_train=False)``: the outputs, each on its node's device."""
        self.infer_graph = self.graph
        run = self._forward(args, aux, key, is_train=False, mask=None)
        return self._outputs(run, args, aux)

    def train_forward(self) -> Any:
        """``(args, aux, key) -> (outputs, new_aux)``: a training forward with no gradient."""
        def call(args, aux, key):
            run = self._forward(args, aux, key, is_train=True, mask=None)
            return self._outputs(run, args, aux), self._new_aux(run, aux)
        return call

    def gradient(self, diff_mask: Sequence[bool]) -> "_PlacedGradient":
        """Forward and backward chained over the segments, differentiating the masked arguments.

            >>> import numpy as np, xgraph as mx
            >>> y = mx.sym.MakeLoss(mx.sym.sum(mx.sym.var('x', attr={'ctx_group': 'a'}) ** 2))
            >>> p = PlacedPrograms(y.graph, ['x'], [], {'x': (2,)}, {'x': np.float32}, mx.cpu(0),
            ...                    {'a': mx.cpu(0)}, {'x': mx.cpu(0)})
            >>> _, _, (g,) = p.gradient([True]).step((np.array([1, 2], np.float32),), (), None, None, None)
            >>> g.tolist()
            [2.0, 4.0]
        """
        return _PlacedGradient(self, tuple(bool(m) for m in diff_mask), is_train=True)

    def inference_gradient(self, diff_mask: Sequence[bool]) -> "_PlacedGradient":
        """The same in inference mode (a backward after ``forward(is_train=False)``)."""
        return _PlacedGradient(self, tuple(bool(m) for m in diff_mask), is_train=False)

    def saved_for_backward(self, diff_mask: Sequence[bool]) -> int:
        """Bytes of the residuals a training forward keeps for backward, over all segments (traced, not run)."""
        from . import rng
        total = 0
        for seg, m in zip(self.segments, self._segment_masks(diff_mask)):
            if not any(m):
                continue
            sig = lambda n: (self._sig[_key(seg.inputs[n])] if n in seg.inputs else self._var_sig(n))  # noqa: E731
            a = tuple(jax.ShapeDtypeStruct(*sig(n)) for n in seg.arg_names)
            x = tuple(jax.ShapeDtypeStruct(*sig(n)) for n in seg.aux_names)
            key = rng.words(0, 0) if any(n.is_random for n in seg.nodes) else None
            prog = self._gradient_programs(seg, m, True)
            _, pullback, _ = jax.eval_shape(lambda *z, _p=prog: _p.forward(*z), a, x, key)
            total += sum(int(np.prod(leaf.shape)) * _dt.canonical(leaf.dtype).itemsize
                         for leaf in jax.tree_util.tree_leaves(pullback))
        return total

    # -- running ----------------------------------------------------------------------------------
    def _value(self, run: _Run, name_or_entry: Any, by_name: Mapping[str, Any], device: Any, moved: dict) -> Any:
        """A variable's value or another segment's output, on ``device`` (each moved once per run)."""
        k = (name_or_entry if isinstance(name_or_entry, str) else _key(name_or_entry), device)
        if k not in moved:
            value = by_name[name_or_entry] if isinstance(name_or_entry, str) else run.values[k[0]]
            moved[k] = jax.device_put(value, device)
        return moved[k]

    def _forward(self, args: Sequence[Any], aux: Sequence[Any], key: Any, is_train: bool,
                 mask: Sequence[bool] | None) -> _Run:
        by_name = dict(zip(self.arg_names, args))
        by_name.update(zip(self.aux_names, aux))
        masks = self._segment_masks(mask) if mask is not None else None
        run, moved = _Run(), {}
        for i, seg in enumerate(self.segments):
            src = [seg.inputs.get(n, n) for n in seg.arg_names]
            a = tuple(self._value(run, s, by_name, seg.device, moved) for s in src)
            x = tuple(self._value(run, n, by_name, seg.device, moved) for n in seg.aux_names)
            seg_mask = masks[i] if masks is not None else ()
            if any(seg_mask):
                outs, pullback, new_aux = self._gradient_programs(seg, seg_mask, is_train).forward(a, x, key)
                run.pullbacks.append((seg, seg_mask, src, pullback))
            elif is_train:
                outs, new_aux = train_forward_program(seg.graph)(a, x, key)
            else:
                outs, new_aux = inference_program(seg.graph)(a, x, key), x
            for e, v in zip(seg.exports, outs):
                run.values[_key(e)] = v
            if is_train:
                for n, v in zip(seg.aux_names, new_aux):
                    run.new_aux[n] = v
        return run

    def _segment_masks(self, mask: Sequence[bool]) -> list[tuple[bool, ...]]:
        """For each segment, which of its arguments to differentiate: the differentiated variables, and
        the float entries of other segments that depend on one (their cotangents flow back)."""
        mask = tuple(mask)
        if mask not in self._masks:
            diff_vars = {n for n, m in zip(self.arg_names, mask) if m}
            depends: dict[int, bool] = {}
            for n in self.graph.topo_order():
                depends[id(n)] = (n.name in diff_vars) if n.op is None else any(depends[id(e.node)]
                                                                                   for e in n.inputs)
            self._masks[mask] = [
                tuple((n in diff_vars) if isinstance(s, str) else
                      (depends[id(s.node)] and _dt.is_float(self._sig[_key(s)][1]))
                      for n, s in ((n, seg.inputs.get(n, n)) for n in seg.arg_names))
                for seg in self.segments]
        return self._masks[mask]

    @staticmethod
    def _gradient_programs(seg: Segment, mask: tuple, is_train: bool) -> Any:
        fn = None if is_train else RenamedFunction(seg.graph, False, seg.arg_names, seg.aux_names)
        return gradient_programs(seg.graph, mask, fn)

    def _var_sig(self, name: str) -> tuple:
        return tuple(self._shapes[name]), _dt.canonical(self._dtypes[name])

    def _outputs(self, run: _Run, args: Sequence[Any], aux: Sequence[Any]) -> tuple:
        by_name = dict(zip(self.arg_names, args))
        by_name.update(zip(self.aux_names, aux))
        outs = []
        for e in self.graph.outputs:   # an output that is a variable is that variable's array
            outs.append(by_name[e.node.name] if e.node.op is None else run.values[_key(e)])
        return tuple(outs)

    def _new_aux(self, run: _Run, aux: Sequence[Any]) -> tuple:
        """The aux states after a training forward, each back on its own array's device."""
        out = []
        for n, old in zip(self.aux_names, aux):
            v = run.new_aux.get(n)
            out.append(old if v is None else jax.device_put(v.astype(old.dtype), self.var_contexts[n].device))
        return tuple(out)


class _PlacedGradient:
    """``step``, ``forward`` and ``backward`` as :class:`~xgraph.lower.GradientPrograms` has them."""

    def __init__(self, programs: PlacedPrograms, diff_mask: tuple, is_train: bool):
        self.p, self.diff_mask, self.is_train = programs, diff_mask, is_train
        self.names = [n for n, m in zip(programs.arg_names, diff_mask) if m]

    def forward(self, args: Sequence[Any], aux: Sequence[Any], key: Any) -> tuple:
        """``(outputs, pullback, new_aux)``; ``pullback`` holds each segment's residuals, on its device."""
        run = self.p._forward(args, aux, key, self.is_train, self.diff_mask)
        outs = self.p._outputs(run, args, aux)
        new_aux = self.p._new_aux(run, aux) if self.is_train else tuple(aux)
        return outs, (run, outs), new_aux

    def backward(self, pullback: Any, outputs: Sequence[Any], head_grads: Any, old_grads: Any) -> tuple:
        """Gradients of the masked arguments, each on its gradient array's device."""
        run, outs = pullback
        p = self.p
        cts: dict[tuple, Any] = {}

        def add(table: dict, k: Any, g: Any, device: Any) -> None:
            g = jax.device_put(g, device)
            table[k] = g if k not in table else table[k] + g
        var_grads: dict[str, Any] = {}
        for i, (e, o) in enumerate(zip(p.graph.outputs, outs)):
            if not jnp.issubdtype(o.dtype, jnp.inexact):
                continue
            h = head_grads[i] if head_grads is not None else None
            g = jnp.ones(o.shape, o.dtype) if h is None else jnp.asarray(h, o.dtype)
            if e.node.op is None:
                if e.node.name in self.names:
                    add(var_grads, e.node.name, g, p.grad_contexts[e.node.name].device)
            else:
                add(cts, _key(e), g, p.devices[id(e.node)].device)
        for seg, seg_mask, src, seg_pullback in reversed(run.pullbacks):
            got = [cts.get(_key(e)) for e in seg.exports]
            if all(g is None for g in got):
                continue
            heads = tuple(jax.device_put(g, seg.device) if g is not None else
                          jnp.zeros(p._sig[_key(e)][0], p._sig[_key(e)][1], device=seg.device)
                          for e, g in zip(seg.exports, got))
            grads = p._gradient_programs(seg, seg_mask, self.is_train).backward(
                seg_pullback, [run.values[_key(e)] for e in seg.exports], heads, None)
            for s, g in zip((s for s, m in zip(src, seg_mask) if m), grads):
                if isinstance(s, str):
                    add(var_grads, s, g, p.grad_contexts[s].device)
                else:
                    add(cts, _key(s), g, p.devices[id(s.node)].device)
        grads = []
        for i, n in enumerate(self.names):
            g = var_grads.get(n)
            if g is None:
                shape, dt = p._var_sig(n)
                g = jnp.zeros(shape, dt, device=p.grad_contexts[n].device)
            old = old_grads[i] if old_grads is not None else None
            grads.append(g if old is None else old + g)
        return tuple(grads)

    def step(self, args: Sequence[Any], aux: Sequence[Any], key: Any, head_grads: Any, old_grads: Any) -> tuple:
        """Forward then backward: ``(outputs, new_aux, grads)``."""
        outs, pullback, new_aux = self.forward(args, aux, key)
        return outs, new_aux, self.backward(pullback, outs, head_grads, old_grads)


def refuse_fused_training(where: str) -> None:
    """Raise UnsupportedFeatureError: a ctx_group placement over several devices cannot run where the
    training step must be one XLA program over a mesh (several processes, ``dist_*`` KVStores).

        >>> try:
        ...     refuse_fused_training('Module.init_optimizer')
        ... except Exception as exc:
        ...     type(exc).__name__
        'UnsupportedFeatureError'
    """
    raise UnsupportedFeatureError(
        f"{where}: this module's ctx_groups are placed on several devices (group2ctxs), but training over "
        "several processes is one XLA program over every process's mesh, which cannot also place layers; "
        "train the placed module in one process, or split the layers with mx.sym.with_sharding and "
        "Trainer(devices=mesh) (docs/distributed.md)")
