"""Automatic mixed precision: run matrix products in float16/bfloat16, keep sensitive ops in float32.

The ``amp`` pass sorts ops into MXNet AMP's lists (``mxnet.contrib.amp``):

* **target** (:data:`TARGET_OPS`, MXNet's ``FP16_FUNCS``): Convolution,
  FullyConnected, dot ... — every floating-point input is cast to the target
  dtype with ``amp_cast``;
* **float32** (:data:`FP32_OPS`, ``FP32_FUNCS``): softmax, norms, losses,
  exp/log, reductions — floating-point inputs are cast to float32;
* **widest** (:data:`WIDEST_OPS`, ``WIDEST_TYPE_CASTS``): elementwise
  arithmetic, Concat, where ... — when their floating-point inputs disagree,
  one ``amp_multicast`` casts them all to the widest;
* everything else runs in whatever dtype it is given (MXNet's
  ``FP16_FP32_FUNCS``: relu, Pooling, Reshape, BatchNorm ...); mixed
  floating-point inputs are multicast to the widest as for the widest list.

Variables are never changed: weights stay float32 (master weights) and the
casts come after them, so gradients reach them in float32.  Auxiliary
states (BatchNorm's moving statistics) are never cast.  Outputs whose dtype
changed are cast back, so the graph's outputs keep their dtypes.

Options (``options=`` of :func:`xgraph.compile`, ``pass_options=`` of
``bind``): ``amp_dtype`` (``'float16'``, MXNet's default, or ``'bfloat16'``),
``amp_target_ops``, ``amp_fp32_ops``, ``amp_widest_ops`` (replace the lists),
``amp_excluded_nodes`` (node names kept in float32).  For float16 training,
scale the loss (:mod:`xgraph.train.loss_scaler`).

    >>> import xgraph as mx
    >>> from xgraph.passes.amp import convert_symbol
    >>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=4, name='fc')
    >>> amp_net = convert_symbol(mx.sym.softmax(net), target_dtype='bfloat16')
    >>> [n.op.name for n in amp_net.graph.topo_order() if n.op is not None]
    ['amp_cast', 'amp_cast', 'amp_cast', 'FullyConnected', 'amp_cast', 'softmax']
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from .. import dtypes as _dt
from ..graph import Entry, Graph, Node
from ..names import unique_name
from ..ops import registry
from .context import PassContext
from .manager import register_pass

#: Ops computed in the target dtype (MXNet's FP16_FUNCS, plus the matrix products).
TARGET_OPS = frozenset(("Convolution", "Deconvolution", "FullyConnected", "RNN", "dot", "batch_dot",
                        "linalg_gemm", "linalg_gemm2", "_linalg_gemm", "_linalg_gemm2"))

#: Ops computed in float32 (MXNet's FP32_FUNCS): numerically sensitive ones.
FP32_OPS = frozenset((
    "softmax", "log_softmax", "softmin", "SoftmaxOutput", "SoftmaxActivation", "Softmax",
    "LogisticRegressionOutput", "LinearRegressionOutput", "MAERegressionOutput", "MakeLoss", "make_loss",
    "softmax_cross_entropy", "CTCLoss", "ctc_loss", "smooth_l1",
    "exp", "expm1", "log", "log1p", "log2", "log10", "_power", "broadcast_power", "_power_scalar",
    "_rpower_scalar", "sqrt", "rsqrt", "cbrt", "rcbrt", "reciprocal", "square", "erf", "erfinv", "gamma",
    "gammaln", "arccos", "arcsin", "arctan", "arccosh", "arcsinh", "arctanh", "cosh", "sinh", "tan",
    "norm", "LayerNorm", "InstanceNorm", "GroupNorm", "L2Normalization", "LRN",
    "sum", "mean", "prod", "nansum", "nanprod", "sum_axis", "_square_sum", "cumsum", "moments", "topk",
    "Embedding"))

#: Ops whose floating-point inputs are cast to the widest among them (MXNet's WIDEST_TYPE_CASTS).
WIDEST_OPS = frozenset((
    "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_plus", "_minus", "_mul", "_div",
    "_add", "_sub", "_maximum", "_minimum", "_hypot", "_mod", "_grad_add",
    "broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div", "broadcast_plus",
    "broadcast_minus", "broadcast_maximum", "broadcast_minimum", "broadcast_hypot", "broadcast_mod",
    "Concat", "concat", "stack", "where", "add_n", "ElementWiseSum", "_equal", "_not_equal", "_greater",
    "_greater_equal", "_lesser", "_lesser_equal", "broadcast_equal", "broadcast_not_equal",
    "broadcast_greater", "broadcast_greater_equal", "broadcast_lesser", "broadcast_lesser_equal"))

_AMP_OPS = ("amp_cast", "amp_multicast")


def _is_float(dtype: Any) -> bool:
    return dtype is not None and bool(jnp.issubdtype(np.dtype(dtype), jnp.floating))


class _Amp:
    """One run of the pass: the new entries and their dtypes, and shared casts."""

    def __init__(self, graph: Graph, ctx: PassContext):
        self.ctx = ctx
        opts = ctx.options
        self.target = _dt.canonical(opts.get("amp_dtype", "float16"))
        if self.target not in (np.dtype(np.float16), _dt.canonical("bfloat16")):
            raise ValueError(f"amp_dtype must be 'float16' or 'bfloat16', not {opts.get('amp_dtype')!r}")
        self.target_ops = frozenset(opts.get("amp_target_ops", TARGET_OPS))
        self.fp32_ops = frozenset(opts.get("amp_fp32_ops", FP32_OPS))
        self.widest_ops = frozenset(opts.get("amp_widest_ops", WIDEST_OPS))
        self.excluded = frozenset(opts.get("amp_excluded_nodes", ()))
        self.info = ctx.infer(graph)
        self.names = {n.name for n in graph.topo_order()}
        self.casts: dict[tuple[int, int, str], Entry] = {}
        self.counts = {"amp_cast": 0, "amp_multicast": 0}

    def fresh(self, base: str) -> str:
        name = unique_name(base, self.names.__contains__)
        self.names.add(name)
        return name

    def make(self, op_name: str, inputs: Sequence[Entry], base: str, **attrs: Any) -> Node:
        op = registry.get(op_name)
        name = self.fresh(base)
        typed, user, strings = op.parse_attrs({k: str(v) for k, v in attrs.items()}, name)
        self.counts[op_name] += 1
        return Node(op, name, typed, inputs, user_attrs=user, raw_attrs=strings)

    def cast(self, e: Entry, dtype: Any, dt_of: dict) -> Entry:
        """``e`` as ``dtype`` (one shared ``amp_cast`` per entry and dtype)."""
        if not _is_float(dt_of.get((id(e.node), e.index))) or np.dtype(dt_of[(id(e.node), e.index)]) == dtype:
            return e
        key = (id(e.node), e.index, np.dtype(dtype).name)
        if key not in self.casts:
            node = self.make("amp_cast", [e], f"{e.node.name}_amp_cast_{np.dtype(dtype).name}",
                             dtype=np.dtype(dtype).name)
            out = Entry(node, 0)
            dt_of[(id(node), 0)] = np.dtype(dtype)
            self.casts[key] = out
        return self.casts[key]


def _mode(state: _Amp, node: Node) -> str:
    if node.op.name in _AMP_OPS:
        return "keep"
    if node.name in state.excluded or node.op.name in state.fp32_ops:
        return "fp32"
    if node.op.name in state.target_ops:
        return "target"
    if node.op.name in state.widest_ops:
        return "widest"
    return "follow"


@register_pass("amp", purpose="training-safe")
def amp(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Insert ``amp_cast``/``amp_multicast`` so listed ops run in float16/bfloat16 (see module doc).

    Not part of any optimization level: name it in a pipeline
    (``passes=['amp']``) or use :func:`convert_symbol`.  Training-safe in the
    sense that it keeps the graph differentiable with float32 master
    weights; results change within the target dtype's precision.
    """
    ctx = ctx if ctx is not None else PassContext()
    st = _Amp(graph, ctx)
    env: dict[int, tuple[Entry, ...]] = {}
    dt_of: dict[tuple[int, int], Any] = {}
    for node in graph.topo_order():
        if node.op is None:
            env[id(node)] = (Entry(node, 0),)
            d = st.info.dtype(Entry(node, 0))
            dt_of[(id(node), 0)] = np.dtype(d) if d is not None else np.dtype(np.float32)
            continue
        ins = [env[id(e.node)][e.index] for e in node.inputs]
        aux = node.aux_positions()
        castable = [i for i, e in enumerate(ins) if i not in aux and _is_float(dt_of.get((id(e.node), e.index)))]
        mode = _mode(st, node)
        if mode in ("target", "fp32"):
            want = st.target if mode == "target" else np.dtype(np.float32)
            for i in castable:
                ins[i] = st.cast(ins[i], want, dt_of)
        elif mode in ("widest", "follow") and not aux:
            kinds = {np.dtype(dt_of[(id(ins[i].node), ins[i].index)]) for i in castable}
            if len(kinds) > 1:
                mc = st.make("amp_multicast", [ins[i] for i in castable], f"{node.name}_amp_multicast",
                             num_outputs=len(castable))
                widest = max(kinds, key=lambda d: d.itemsize)
                for k, i in enumerate(castable):
                    ins[i] = Entry(mc, k)
                    dt_of[(id(mc), k)] = widest
        same = all(a.node is b.node and a.index == b.index for a, b in zip(ins, node.inputs))
        new = node if same else node.replace(inputs=tuple(ins))
        env[id(node)] = tuple(Entry(new, i) for i in range(new.num_outputs))
        first_float = next((dt_of[(id(ins[i].node), ins[i].index)] for i in castable), None)
        for i in range(new.num_outputs):
            orig = st.info.dtype(Entry(node, i))
            orig = np.dtype(orig) if orig is not None else np.dtype(np.float32)
            dt_of[(id(new), i)] = first_float if (_is_float(orig) and first_float is not None and i == 0) else orig
    outputs = []
    for e in graph.outputs:
        new = env[id(e.node)][e.index]
        orig = st.info.dtype(e)
        orig = np.dtype(orig) if orig is not None else np.dtype(np.float32)  # unknown: float32, as lowering
        if _is_float(orig):
            new = st.cast(new, orig, dt_of)
        outputs.append(new)
    if st.counts["amp_cast"] or st.counts["amp_multicast"]:
        ctx.note(f"target {st.target.name}: {st.counts['amp_cast']} amp_cast, "
                 f"{st.counts['amp_multicast']} amp_multicast")
    return Graph(outputs)


def convert_symbol(sym: Any, target_dtype: str = "float16", target_dtype_ops: Iterable[str] | None = None,
                   fp32_ops: Iterable[str] | None = None, widest_dtype_ops: Iterable[str] | None = None,
                   excluded_sym_names: Iterable[str] | None = None, **shapes: Any) -> Any:
    """MXNet's ``amp.convert_symbol``: the symbol with AMP casts inserted (a new Symbol).

        >>> import xgraph as mx
        >>> s = convert_symbol(mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=2, name='fc'))
        >>> s.list_arguments()
        ['x', 'fc_weight', 'fc_bias']
    """
    from ..symbol import Symbol
    options: dict[str, Any] = {"amp_dtype": target_dtype}
    for key, val in (("amp_target_ops", target_dtype_ops), ("amp_fp32_ops", fp32_ops),
                     ("amp_widest_ops", widest_dtype_ops), ("amp_excluded_nodes", excluded_sym_names)):
        if val is not None:
            options[key] = tuple(val)
    graph = sym if isinstance(sym, Graph) else sym.graph
    out = amp(graph, PassContext(shapes=shapes, options=options))
    return Symbol(out.outputs)


__all__ = ["amp", "convert_symbol", "TARGET_OPS", "FP32_OPS", "WIDEST_OPS"]
