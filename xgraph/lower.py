"""Lowering: a :class:`~xgraph.graph.Graph` becomes a pure JAX function, StableHLO and an XLA executable.

The graph is walked in topological order and each op's lowering is called
inside one traced function, under ``jax.named_scope(node.name)``, so the
StableHLO, XLA dumps and profiles carry the graph's node names.  Arguments,
auxiliary states and the PRNG key are explicit parameters (never baked-in
constants), so one executable serves any parameter values.

Jitted functions are cached by the graph's structural hash and the kind of
program (inference, training forward, fused forward+backward ...); JAX caches
the compiled executable per input signature under each, so re-binding the same
graph at the same shapes does not recompile.

    >>> import xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=3, name='fc1')
    >>> low = mx.lower(net, x=(2, 5))
    >>> 'fc1' in low.as_text()
    True
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .context import device_array
from .dtypes import canonical as canonical_dtype
from .errors import BindError, XGraphError
from .graph import Entry, Graph, Node
from .infer import infer, node_error, split_result
from . import rng
from .ops.custom import report_failures
from .ops.registry import LowerCtx

#: How many times a graph function has been traced, by structural hash (for tests and reports).
TRACE_COUNTS: dict[str, int] = {}


#: Node user attribute: nodes with the same value that are consecutive in topological order form one
#: segment, lowered as one function under ``jax.checkpoint`` (recomputed in the backward pass).
REMAT_ATTR = "__remat_segment__"
#: Node user attribute of a Convolution: the strategy :mod:`xgraph.conv_strategy` lowers it with.
CONV_STRATEGY_ATTR = "__conv_strategy__"
#: Node user attribute: the PartitionSpec (its string) of the node's first output, lowered with
#: ``jax.lax.with_sharding_constraint`` under the mesh of :func:`xgraph.parallel.use_mesh`.
SHARDING_ATTR = "__sharding__"


class GraphFunction:
    """The pure function a graph computes, over named arguments and auxiliary states.

    ``__call__(args, aux, key)`` takes tuples aligned with :attr:`arg_names`
    and :attr:`aux_names` and returns ``(outputs, new_aux)``; ``new_aux`` holds
    the updated auxiliary states in training mode, the given ones otherwise.
    Two variable nodes with the same name are fed from the same argument.

    Consecutive op nodes carrying the same ``__remat_segment__`` user attribute
    run as one function wrapped in ``jax.checkpoint``: only the values the rest
    of the graph reads from the segment are kept for the backward pass, the
    segment's inner activations are recomputed.  A Convolution carrying
    ``__conv_strategy__`` is lowered by :func:`xgraph.conv_strategy.lower_convolution`.  A node
    carrying ``__sharding__`` (``mx.sym.with_sharding``) has its first output constrained to that
    PartitionSpec over the current mesh (nothing happens without one).
    """

    def __init__(self, graph: Graph, is_train: bool):
        self.graph = graph
        self.is_train = is_train
        self.arg_names = unique_names(graph.argument_nodes())
        self.aux_names = unique_names(graph.aux_nodes())
        self.order = graph.topo_order()
        self.needs_rng = any(n.is_random for n in self.order)
        self.hash = graph.program_hash()          # the in-process program cache's key
        self.steps = _plan_steps(graph, self.order)

    def _apply(self, node: Node, ins: Sequence[Any], key: Any) -> tuple[tuple, list[tuple[str, Any]]]:
        """Run one op node: its outputs and its aux updates as (variable name, value)."""
        ctx = LowerCtx(self.is_train, key, node.name)
        strategy = node.user_attrs.get(CONV_STRATEGY_ATTR) if node.user_attrs else None
        with jax.named_scope(node.name):
            try:
                if strategy and node.op.name == "Convolution":
                    from .conv_strategy import lower_convolution
                    res = lower_convolution(strategy, node.op.lower, ctx, node.params, *ins)
                else:
                    res = node.op.lower(ctx, node.params, *ins)
            except XGraphError as exc:
                raise node_error(node, [i.shape for i in ins], [i.dtype for i in ins], exc) from None
        outs, aux_vals = split_result(node.op, node.params, res)
        spec = node.user_attrs.get(SHARDING_ATTR) if node.user_attrs else None
        if spec:
            from .parallel import constrain
            outs = [constrain(outs[0], spec, f"node {node.name!r} ({node.op.name})"), *outs[1:]]
        updates = []
        if aux_vals and self.is_train:
            for pos, val in zip(sorted(node.aux_positions()), aux_vals):
                src = node.inputs[pos].node
                if src.op is None:
                    updates.append((src.name, val))
        return tuple(outs), updates

    def _run_segment(self, seg: "_Segment", env: dict, key: Any) -> list[tuple[str, Any]]:
        ext_vals = tuple(env[id(e.node)][e.index] for e in seg.inputs)

        def body(ext_vals, key):
            local: dict[int, tuple] = {}
            for e, v in zip(seg.inputs, ext_vals):
                local.setdefault(id(e.node), {})[e.index] = v
            aux_out = []
            for node in seg.nodes:
                ins = [local[id(e.node)][e.index] for e in node.inputs]
                outs, updates = self._apply(node, ins, key)
                local[id(node)] = dict(enumerate(outs))
                aux_out += [v for _, v in updates]
            return tuple(local[id(e.node)][e.index] for e in seg.outputs), tuple(aux_out)

        outs, aux_vals = jax.checkpoint(body)(ext_vals, key)
        for e, v in zip(seg.outputs, outs):
            env.setdefault(id(e.node), {})[e.index] = v
        return list(zip(seg.aux_names, aux_vals))

    def __call__(self, args: Sequence[Any], aux: Sequence[Any], key: Any = None) -> tuple[tuple, tuple]:
        traced = self.graph.structural_hash()     # computed when tracing only, not at every bind
        TRACE_COUNTS[traced] = TRACE_COUNTS.get(traced, 0) + 1
        key = rng.as_key(key)   # the executor passes rng.next_words(): the key is derived in XLA
        by_name = dict(zip(self.arg_names, args))
        by_name.update(zip(self.aux_names, aux))
        env: dict[int, Any] = {}
        new_aux: dict[str, Any] = {}
        for step in self.steps:
            if isinstance(step, _Segment):
                updates = self._run_segment(step, env, key)
            elif step.op is None:
                env[id(step)] = (by_name[step.name],)
                continue
            else:
                ins = [env[id(e.node)][e.index] for e in step.inputs]
                outs, updates = self._apply(step, ins, key)
                env[id(step)] = outs
            for name, val in updates:
                new_aux[name] = val.astype(by_name[name].dtype)
        outputs = tuple(env[id(e.node)][e.index] for e in self.graph.outputs)
        return outputs, tuple(new_aux.get(n, by_name[n]) for n in self.aux_names)


class _Segment:
    """Consecutive op nodes lowered together under ``jax.checkpoint``."""

    __slots__ = ("nodes", "inputs", "outputs", "aux_names")

    def __init__(self, nodes: list[Node], inputs: list, outputs: list, aux_names: list[str]):
        self.nodes, self.inputs, self.outputs, self.aux_names = nodes, inputs, outputs, aux_names


def _plan_steps(graph: Graph, order: Sequence[Node]) -> list:
    """The order of execution: variables first, then op nodes, remat segments grouped."""
    steps: list = [n for n in order if n.op is None]
    ops = [n for n in order if n.op is not None]
    if not any(n.user_attrs and REMAT_ATTR in n.user_attrs for n in ops):
        return steps + ops
    groups: list[list[Node]] = []
    prev = None
    for n in ops:
        seg = n.user_attrs.get(REMAT_ATTR) if n.user_attrs else None
        if seg is not None and groups and prev == seg:
            groups[-1].append(n)
        else:
            groups.append([n])
        prev = seg
    readers: dict[tuple[int, int], set[int]] = {}
    for gi, grp in enumerate(groups):
        for n in grp:
            for e in n.inputs:
                readers.setdefault((id(e.node), e.index), set()).add(gi)
    for e in graph.outputs:
        readers.setdefault((id(e.node), e.index), set()).add(-1)
    for gi, grp in enumerate(groups):
        if len(grp) == 1 or grp[0].user_attrs.get(REMAT_ATTR) is None:
            steps += grp
            continue
        inside = {id(n) for n in grp}
        ins, seen = [], set()
        for n in grp:
            for e in n.inputs:
                if id(e.node) not in inside and (id(e.node), e.index) not in seen:
                    seen.add((id(e.node), e.index))
                    ins.append(e)
        used_out = {(id(n), i) for n in grp for i in range(n.num_outputs)
                    if readers.get((id(n), i), set()) - {gi}}
        exported = [Entry(n, i) for n in grp for i in range(n.num_outputs) if (id(n), i) in used_out]
        aux_names = [n.inputs[p].node.name for n in grp for p in sorted(n.aux_positions())
                     if n.inputs[p].node.op is None]
        steps.append(_Segment(grp, ins, exported, aux_names))
    return steps


def unique_names(nodes: Sequence[Node]) -> list[str]:
    """Names of variable nodes in order, each once."""
    seen: dict[str, None] = {}
    for n in nodes:
        seen.setdefault(n.name, None)
    return list(seen)


_FN_CACHE: dict[tuple, Any] = {}
_FN_LOCK = threading.Lock()


def cached(key: tuple, build: Callable[[], Any]) -> Any:
    """A process-wide cache of jitted programs, keyed by structural hash and program kind."""
    with _FN_LOCK:
        fn = _FN_CACHE.get(key)
    if fn is None:
        fn = build()
        with _FN_LOCK:
            fn = _FN_CACHE.setdefault(key, fn)
    return fn


def clear_cache() -> None:
    """Forget every cached program (the next bind re-traces and recompiles)."""
    with _FN_LOCK:
        _FN_CACHE.clear()


class RenamedFunction:
    """A graph function seen through another argument list: the user's names, plus extra values.

    An executor binds the user's symbol but runs an optimized graph whose
    arguments may be fewer (folded away) or new (``new_params`` of passes).
    ``__call__(args, aux, key, extra=())`` takes ``args``/``aux`` aligned with
    ``arg_names``/``aux_names`` and ``extra`` aligned with ``extra_names``,
    feeds the graph's variables by name and returns ``(outputs, new_aux)``
    with ``new_aux`` aligned with ``aux_names`` (unused arguments get zero
    gradients).

        >>> import xgraph as mx
        >>> g = (mx.sym.var('a') * 2).graph
        >>> f = RenamedFunction(g, False, ['b', 'a'], [])
        >>> [float(v) for v in f((np.float32(1), np.ones(1, np.float32) * 3), ())[0][0]]
        [6.0]
    """

    def __init__(self, graph: Graph, is_train: bool, arg_names: Sequence[str], aux_names: Sequence[str],
                 extra_names: Sequence[str] = ()):
        self.gf = GraphFunction(graph, is_train)
        self.arg_names, self.aux_names = tuple(arg_names), tuple(aux_names)
        self.extra_names = tuple(extra_names)
        self.needs_rng = self.gf.needs_rng
        known = set(self.arg_names) | set(self.aux_names) | set(self.extra_names)
        missing = [n for n in self.gf.arg_names + self.gf.aux_names if n not in known]
        if missing:
            raise BindError(f"the optimized graph reads {missing}, which are neither bound nor derived")
        self.cache_key = (self.gf.hash, is_train, self.arg_names, self.aux_names, self.extra_names)

    def __call__(self, args: Sequence[Any], aux: Sequence[Any], key: Any = None,
                 extra: Sequence[Any] = ()) -> tuple[tuple, tuple]:
        by_name = dict(zip(self.arg_names, args))
        by_name.update(zip(self.aux_names, aux))
        by_name.update(zip(self.extra_names, extra))
        outs, new_aux = self.gf([by_name[n] for n in self.gf.arg_names], [by_name[n] for n in self.gf.aux_names], key)
        updated = dict(zip(self.gf.aux_names, new_aux))
        return outs, tuple(updated.get(n, by_name[n]) for n in self.aux_names)


def _function(graph: Graph, is_train: bool, fn: Any) -> tuple[Any, tuple]:
    if fn is None:
        return GraphFunction(graph, is_train), (graph.program_hash(),)
    return fn, fn.cache_key


def inference_program(graph: Graph, fn: "RenamedFunction | None" = None) -> Callable:
    """A jitted ``(args, aux, key) -> outputs`` for ``forward(is_train=False)``.

    With ``fn`` (a :class:`RenamedFunction` over ``graph``) the program is
    ``(args, aux, key, extra) -> outputs`` in ``fn``'s argument order.
    """
    gf, k = _function(graph, False, fn)

    def build():
        if fn is None:
            def xgraph_infer(args, aux, key):
                return gf(args, aux, key)[0]
        else:
            def xgraph_infer(args, aux, key, extra):
                return gf(args, aux, key, extra)[0]
        return report_failures(jax.jit(xgraph_infer))
    return cached(k + ("infer",), build)


def frozen_inference_program(fn: "RenamedFunction", frozen: Mapping[str, Any], extra: Sequence[Any]) -> Callable:
    """A jitted ``(args, aux, key) -> outputs`` with the ``frozen`` values and ``extra`` as constants.

    XLA sees the frozen parameters as compile-time constants and can
    pre-arrange them (convolution weights in its preferred layout); the
    program must be rebuilt (and recompiled) when they change.  Not cached.
    """
    consts = {k: np.asarray(v) for k, v in frozen.items()}
    extra_c = tuple(np.asarray(v) for v in extra)
    arg_pos = [(i, n) for i, n in enumerate(fn.arg_names)]
    aux_pos = [(i, n) for i, n in enumerate(fn.aux_names)]

    def xgraph_infer_frozen(args, aux, key):
        a = tuple(consts[n] if n in consts else args[i] for i, n in arg_pos)
        x = tuple(consts[n] if n in consts else aux[i] for i, n in aux_pos)
        return fn(a, x, key, extra_c)[0]
    return report_failures(jax.jit(xgraph_infer_frozen))


def train_forward_program(graph: Graph, fn: "RenamedFunction | None" = None) -> Callable:
    """A jitted ``(args, aux, key) -> (outputs, new_aux)``: a training forward with no gradient."""
    gf, k = _function(graph, True, fn)

    def build():
        def xgraph_train_forward(args, aux, key):
            return gf(args, aux, key)
        return report_failures(jax.jit(xgraph_train_forward))
    return cached(k + ("train_fwd",), build)


def abstract_inputs(graph: Graph, shapes: Mapping[str, Any], dtypes: Mapping[str, Any] | None = None,
                    ) -> tuple[list[jax.ShapeDtypeStruct], list[jax.ShapeDtypeStruct]]:
    """Infer every variable's shape and dtype; raise :class:`BindError` for what stays unknown."""
    res = infer(graph, shapes, dtypes, partial=False, default_dtype=np.float32)
    gf_args = unique_names(graph.argument_nodes())
    gf_aux = unique_names(graph.aux_nodes())
    missing = [n for n in gf_args + gf_aux
               if res.var_shapes.get(n) is None or not all(d > 0 for d in res.var_shapes[n])]
    if missing:
        raise BindError(f"cannot infer the shape of {', '.join(repr(m) for m in missing)}: "
                        f"give them as keyword arguments, e.g. {missing[0]}=(...)")

    def spec(n: str) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(tuple(res.var_shapes[n]), res.var_dtypes.get(n) or np.dtype(np.float32))
    return [spec(n) for n in gf_args], [spec(n) for n in gf_aux]


def _cotangents(outputs: Sequence[Any], head_grads: Sequence[Any] | None) -> tuple:
    """Head gradients for ``outputs``: the given ones, else ones; float0 zeros for integer outputs."""
    cts = []
    for i, o in enumerate(outputs):
        if not jnp.issubdtype(o.dtype, jnp.inexact):
            cts.append(np.zeros(o.shape, jax.dtypes.float0))
        elif head_grads is None or head_grads[i] is None:
            cts.append(jnp.ones(o.shape, o.dtype))
        else:
            cts.append(jnp.asarray(head_grads[i], o.dtype))
    return tuple(cts)


def _accumulate(grads: Sequence[Any], old: Sequence[Any] | None) -> tuple:
    """Add the previous gradients (``grad_req='add'``) where they are given."""
    if old is None:
        return tuple(grads)
    return tuple(g if o is None else o + g for g, o in zip(grads, old))


class GradientPrograms:
    """The jitted programs of a training step, for one set of differentiated arguments.

    ``step`` runs forward and backward as one XLA computation (used when
    ``backward`` follows ``forward`` with nothing read in between);
    ``forward`` runs the training forward and keeps the residuals backward
    needs, which ``backward`` then consumes, so the forward never runs twice.
    """

    def __init__(self, graph: Graph, diff_mask: tuple[bool, ...], fn: "RenamedFunction | None" = None):
        gf = fn if fn is not None else GraphFunction(graph, is_train=True)
        self.diff_mask = diff_mask

        def split(args):
            return tuple(a for a, m in zip(args, diff_mask) if m)

        def merge(args, diff):
            it = iter(diff)
            return tuple(next(it) if m else a for a, m in zip(args, diff_mask))

        def vjp(args, aux, key):
            def f(diff):
                outs, new_aux = gf(merge(args, diff), aux, key)
                return outs, new_aux
            return jax.vjp(f, split(args), has_aux=True)

        def step(args, aux, key, head_grads, old_grads):
            outs, pullback, new_aux = vjp(args, aux, key)
            (grads,) = pullback(_cotangents(outs, head_grads))
            return outs, new_aux, _accumulate(grads, old_grads)

        def forward(args, aux, key):
            return vjp(args, aux, key)

        def backward(pullback, outs_meta, head_grads, old_grads):
            metas = [jax.ShapeDtypeStruct(shape, canonical_dtype(dt)) for shape, dt in outs_meta]
            (grads,) = pullback(_cotangents(metas, head_grads))
            return _accumulate(grads, old_grads)

        # a custom op's callback failure is raised as its CustomOpError, not as JAX's runtime error
        self.step = report_failures(jax.jit(step))
        self.forward = report_failures(jax.jit(forward))
        self._backward = report_failures(jax.jit(backward, static_argnums=1))

    def backward(self, pullback: Any, outputs: Sequence[Any], head_grads: Any, old_grads: Any) -> tuple:
        """Gradients from the residuals of :attr:`forward`."""
        meta = tuple((tuple(o.shape), np.dtype(o.dtype).name) for o in outputs)
        return self._backward(pullback, meta, head_grads, old_grads)


def gradient_programs(graph: Graph, diff_mask: Sequence[bool], fn: "RenamedFunction | None" = None
                      ) -> GradientPrograms:
    """The cached :class:`GradientPrograms` of ``graph`` for these differentiated arguments.

    ``diff_mask`` is aligned with ``fn``'s argument names when ``fn`` is given.
    """
    mask = tuple(bool(m) for m in diff_mask)
    _, k = _function(graph, True, fn)
    return cached(k + ("grad", mask), lambda: GradientPrograms(graph, mask, fn))


class Lowered:
    """A graph lowered for given input shapes: StableHLO text, and an XLA executable on demand.

        >>> import xgraph as mx
        >>> low = mx.lower(mx.sym.var('a') * 2, a=(3,))
        >>> 'stablehlo.multiply' in low.as_text()
        True
        >>> [float(v) for v in low.compile()(a=np.ones(3, np.float32))[0]]
        [2.0, 2.0, 2.0]
    """

    def __init__(self, graph: Graph, shapes: Mapping[str, Any], dtypes: Mapping[str, Any] | None = None,
                 is_train: bool = False):
        self.graph = graph
        self.is_train = is_train
        self.arg_specs, self.aux_specs = abstract_inputs(graph, shapes, dtypes)
        self.arg_names = unique_names(graph.argument_nodes())
        self.aux_names = unique_names(graph.aux_nodes())
        self._program = train_forward_program(graph) if is_train else inference_program(graph)
        key = jax.ShapeDtypeStruct((3,), np.uint32) if GraphFunction(graph, is_train).needs_rng else None
        self._key_spec = key
        self._lowered = self._program.lower(tuple(self.arg_specs), tuple(self.aux_specs), key)

    def as_text(self, debug_info: bool = True) -> str:
        """The StableHLO module; with ``debug_info`` its locations name the graph's nodes."""
        return self._lowered.as_text(debug_info=debug_info)

    def compile(self) -> "Executable":
        """Compile with XLA; returns a callable taking the arguments by name."""
        return Executable(self, self._lowered.compile())

    def cost_analysis(self) -> dict:
        """XLA's cost estimate (flops, bytes accessed) of the compiled program."""
        ca = self._lowered.compile().cost_analysis()
        return dict(ca[0] if isinstance(ca, (list, tuple)) else ca or {})


class Executable:
    """A compiled graph: call it with arguments (and auxiliary states) by name."""

    def __init__(self, lowered: Lowered, compiled: Any):
        self.lowered = lowered
        self.compiled = compiled

    def as_text(self) -> str:
        """XLA's optimized HLO for this executable."""
        return self.compiled.as_text()

    def __call__(self, key: Any = None, **inputs: Any) -> list[jax.Array]:
        """Run on inputs by name.  A graph with random ops draws a fresh key from
        :mod:`xgraph.rng` (``mx.random.seed``) unless ``key`` (an int seed) is given."""
        low = self.lowered
        missing = [n for n in low.arg_names + low.aux_names if n not in inputs]
        if missing:
            raise BindError(f"missing input(s) {', '.join(missing)}")
        args = tuple(as_device_input(inputs[n], s.dtype) for n, s in zip(low.arg_names, low.arg_specs))
        aux = tuple(as_device_input(inputs[n], s.dtype) for n, s in zip(low.aux_names, low.aux_specs))
        if low._key_spec is not None:
            key = rng.next_words() if key is None else _key_words(key)
        out = self.compiled(args, aux, key)
        return list(out[0] if low.is_train else out)


def as_device_input(value: Any, dtype: Any) -> jax.Array:
    """``value`` as a jax array of ``dtype``; one already on the device is passed as it is (no copy, no dispatch),
    host values are cast by numpy and copied over (:func:`xgraph.context.device_array`)."""
    return device_array(value, dtype)


def _key_words(key: Any) -> np.ndarray:
    """A caller's key for a compiled program: an int seed or :func:`xgraph.rng.next_words` words."""
    if isinstance(key, (int, np.integer)):
        return rng.words(key)
    words = np.asarray(key)
    if words.shape != (3,) or not np.issubdtype(words.dtype, np.integer):
        raise BindError(f"key must be an int seed or 3 uint32 words from xgraph.rng.next_words(), got {words!r}")
    return words.astype(np.uint32)


def lower(symbol: Any, dtypes: Mapping[str, Any] | None = None, is_train: bool = False, **shapes: Any) -> Lowered:
    """Lower a symbol (or graph) for the given input shapes.

        >>> import xgraph as mx
        >>> print(mx.lower(mx.sym.relu(mx.sym.var('x')), x=(4,)).as_text(debug_info=False).splitlines()[0])
        module @jit_xgraph_infer attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
    """
    graph = symbol if isinstance(symbol, Graph) else symbol.graph
    return Lowered(graph, shapes, dtypes, is_train)


__all__ = ["GraphFunction", "RenamedFunction", "GradientPrograms", "gradient_programs", "Lowered", "Executable",
           "lower", "inference_program", "frozen_inference_program", "train_forward_program", "REMAT_ATTR",
           "CONV_STRATEGY_ATTR",
           "clear_cache", "abstract_inputs", "unique_names", "TRACE_COUNTS"]
