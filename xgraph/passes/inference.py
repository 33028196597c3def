"""Inference-only rewrites: Dropout removal and BatchNorm folding.

These change what ``forward(is_train=True)`` computes, so they are
registered ``'inference-only'`` and the manager skips them for training.
They are written against MXNet's op names and attributes (``Dropout``'s
``mode``; ``BatchNorm``'s ``eps``, ``fix_gamma``, ``axis``;
``Convolution``'s ``layout`` and ``no_bias``; ``FullyConnected``'s
``flatten``), so they fire on whichever of these ops are registered.

* ``drop_dropout``: ``Dropout(x)`` with ``mode='training'`` is the identity at
  inference; it becomes ``x`` (``mode='always'`` drops at inference too, and
  is kept).
* ``fold_batchnorm``: ``BatchNorm(conv(x))`` (also ``BatchNorm_v1`` and
  ``_contrib_SyncBatchNorm``, channels on axis 1) at inference is
  ``conv(x) * s + t`` per channel, with ``s = gamma / sqrt(moving_var + eps)``
  (gamma = 1 under ``fix_gamma``) and ``t = beta - moving_mean * s``.  When the
  Convolution or FullyConnected before it feeds only that BatchNorm, its
  weight is scaled per output channel and its bias becomes ``b * s + t``,
  computed in numpy from the bound values; the BatchNorm disappears.
* ``batchnorm_to_scale_shift``: any remaining BatchNorm with bound values
  becomes ``broadcast_add(broadcast_mul(x, s), t)``.

The new weights, biases, scales and shifts are new variables
(``conv1_weight_bnfold`` ...) whose values go to ``ctx.new_params``; the
user's parameters are never overwritten.

    >>> from xgraph.passes import get_pass
    >>> get_pass('fold_batchnorm').purpose
    'inference-only'
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..graph import Entry, Graph, Node
from ..ops import registry
from .context import PassContext
from .manager import register_pass
from .rewrite import Rewriter, consumer_count, op_name, rewrite, used_outputs


@register_pass("drop_dropout", purpose="inference-only")
def drop_dropout(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Replace inference-time ``Dropout(x)`` (mode 'training') by ``x``."""
    used = used_outputs(graph)

    def rule(node: Node, rw: Rewriter) -> Any:
        if node.op.name != "Dropout" or node.params.get("mode", "training") != "training":
            return None
        if used.get(id(rw.original), {0}) - {0}:
            return None  # the mask output is read
        return [node.inputs[0]] + [None] * (node.num_outputs - 1)

    rw = Rewriter(graph)
    out = rewrite(graph, rule, rw=rw)
    if ctx is not None and rw.changes:
        ctx.note(f"removed {rw.changes} Dropout(s)")
    return out


# -- BatchNorm arithmetic -----------------------------------------------------------
def _bn_inputs(bn: Node) -> dict[str, Entry]:
    return dict(zip(bn.op.input_names(bn.params), bn.inputs))


def bn_scale_shift(bn: Node, ctx: PassContext) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (scale, shift) of an inference BatchNorm from bound values, in float64.

    None when a value is not bound (or an input is not a variable).
    """
    ins = _bn_inputs(bn)
    vals = {}
    for key in ("gamma", "beta", "moving_mean", "moving_var"):
        e = ins.get(key)
        if e is None or e.node.op is not None:
            return None
        v = ctx.value_of(e.node.name)
        if v is None:
            return None
        vals[key] = np.asarray(v, np.float64)
    p = bn.params
    gamma = np.ones_like(vals["gamma"]) if p.get("fix_gamma", True) else vals["gamma"]
    scale = gamma / np.sqrt(vals["moving_var"] + float(p.get("eps", 1e-3)))
    return scale, vals["beta"] - vals["moving_mean"] * scale


def _bn_axis(bn: Node, ndim: int) -> int | None:
    axis = int(bn.params.get("axis", 1))
    return axis % ndim if -ndim <= axis < ndim else None


def _producer_channel_axis(prod: Node, ndim: int) -> int | None:
    """The output-channel axis of a Convolution or FullyConnected output of ``ndim`` dims."""
    if prod.op.name == "FullyConnected":
        return ndim - 1
    layout = prod.params.get("layout")
    if layout in (None, "None", "") or str(layout)[1] == "C":
        return 1
    return ndim - 1 if str(layout).endswith("C") else None


_FOLDABLE_PRODUCERS = ("Convolution", "FullyConnected")
#: the ops with BatchNorm's inference arithmetic (the legacy and the cross-device ones have channels on axis 1)
BATCHNORMS = ("BatchNorm", "BatchNorm_v1", "_contrib_SyncBatchNorm")


@register_pass("fold_batchnorm", purpose="inference-only")
def fold_batchnorm(graph: Graph, ctx: PassContext | None = None, arg_params: Mapping[str, Any] | None = None,
                   aux_params: Mapping[str, Any] | None = None) -> Graph:
    """Fold inference BatchNorms into the Convolution/FullyConnected weights before them."""
    ctx = ctx if ctx is not None else PassContext()
    for table in (arg_params, aux_params):
        ctx.params.update({k: np.asarray(v) for k, v in (table or {}).items()})
    if ctx.for_training or not registry.exists("BatchNorm"):
        return graph
    order = graph.topo_order()
    if not any(n.op is not None and n.op.name in BATCHNORMS for n in order):
        return graph
    info = ctx.infer(graph)
    used, consumers = used_outputs(graph), consumer_count(graph)
    taken = {n.name for n in order}
    skipped: list[str] = []

    def rule(node: Node, rw: Rewriter) -> Any:
        if node.op.name not in BATCHNORMS:
            return None
        orig = rw.original
        data = node.inputs[0]
        prod_orig = orig.inputs[0].node
        if op_name(data) not in _FOLDABLE_PRODUCERS or orig.inputs[0].index != 0:
            return None
        if used.get(id(orig), {0}) - {0} or consumers.get(id(prod_orig), 0) != 1:
            return None
        shape = rw.shape(data)
        if shape is None:
            return None
        prod = data.node
        if _bn_axis(node, len(shape)) != _producer_channel_axis(prod, len(shape)):
            return None
        ss = bn_scale_shift(node, ctx)
        pins = dict(zip(prod.op.input_names(prod.params), prod.inputs))
        w_entry, b_entry = pins["weight"], pins.get("bias")
        w = ctx.value_of(w_entry.node.name) if w_entry.node.op is None else None
        b = (ctx.value_of(b_entry.node.name) if b_entry.node.op is None else None) if b_entry is not None else 0.0
        if ss is None or w is None or b is None:
            skipped.append(node.name)
            return None
        scale, shift = ss
        w64 = np.asarray(w, np.float64)
        new_w = (w64 * scale.reshape((-1,) + (1,) * (w64.ndim - 1))).astype(w.dtype)
        new_b = (np.asarray(b, np.float64) * scale + shift).astype(w.dtype)
        w_new = ctx.new_variable(f"{prod.name}_weight_bnfold", new_w, taken)
        b_new = ctx.new_variable(f"{prod.name}_bias_bnfold", new_b, taken)
        attrs = {**prod.attrs, "no_bias": False}
        raw = {k: v for k, v in prod.raw_attrs.items() if k != "no_bias"}
        new_prod = Node(prod.op, prod.name, attrs, [pins["data"], w_new, b_new],
                        user_attrs=prod.user_attrs, raw_attrs=raw)
        return [Entry(new_prod, 0)] + [None] * (node.num_outputs - 1)

    rw = Rewriter(graph, info)
    out = rewrite(graph, rule, rw=rw)
    if rw.changes:
        ctx.note(f"folded {rw.changes} BatchNorm(s) into weights")
    if skipped:
        ctx.note(f"not folded (values not bound): {', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}")
    return out


@register_pass("batchnorm_to_scale_shift", purpose="inference-only")
def batchnorm_to_scale_shift(graph: Graph, ctx: PassContext | None = None) -> Graph:
    """Turn each inference BatchNorm with bound values into one per-channel multiply-add."""
    ctx = ctx if ctx is not None else PassContext()
    if ctx.for_training or not registry.exists("BatchNorm"):
        return graph
    order = graph.topo_order()
    if not any(n.op is not None and n.op.name in BATCHNORMS for n in order):
        return graph
    if not (registry.exists("broadcast_mul") and registry.exists("broadcast_add")):
        ctx.note("skipped: broadcast_mul/broadcast_add are not registered")
        return graph
    info = ctx.infer(graph)
    used = used_outputs(graph)
    taken = {n.name for n in order}

    def rule(node: Node, rw: Rewriter) -> Any:
        if node.op.name not in BATCHNORMS or used.get(id(rw.original), {0}) - {0}:
            return None
        data, out = node.inputs[0], Entry(node, 0)
        shape, dtype = rw.shape(data), rw.dtype(out)
        if shape is None or dtype is None:
            return None
        axis = _bn_axis(node, len(shape))
        ss = bn_scale_shift(node, ctx)
        if axis is None or ss is None:
            return None
        vshape = [1] * len(shape)
        vshape[axis] = -1
        scale = ctx.new_variable(f"{node.name}_scale", ss[0].reshape(vshape).astype(dtype), taken)
        shift = ctx.new_variable(f"{node.name}_shift", ss[1].reshape(vshape).astype(dtype), taken)
        mul = rw.make("broadcast_mul", [data, scale], name=rw.fresh_name(f"{node.name}_mul"))
        add = rw.make("broadcast_add", [Entry(mul, 0), shift], name=node.name, user_attrs=node.user_attrs)
        return [Entry(add, 0)] + [None] * (node.num_outputs - 1)

    rw = Rewriter(graph, info)
    out = rewrite(graph, rule, rw=rw)
    if rw.changes:
        ctx.note(f"{rw.changes} BatchNorm(s) -> scale and shift")
    return out
