"""MXNet 1.9.1's oneDNN (MKLDNN) fused subgraph nodes: ``_sg_mkldnn_conv`` and ``_sg_mkldnn_fully_connected``.

MXNet's MKLDNN subgraph backend (``sym.get_backend_symbol('MKLDNN')``, and
``'MKLDNN_QUANTIZE'`` inside ``quantize_model_mkldnn`` / Gluon's ``quantize_net``)
replaces chains of float ops by one node whose JSON carries the chain as a nested
graph in its ``subgraphs`` field; xgraph keeps it in the node's ``subgraphs``
attribute (a tuple of :class:`Subgraph`). The chain decides the node's inputs and
what it computes; the node's attributes say what was fused and whether it is int8:

* ``_sg_mkldnn_conv``: ``Convolution`` [→ ``BatchNorm`` (``with_bn``)] [→ an
  activation (``with_act``)] [→ ``elemwise_add`` with one more input (``with_sum``)]
  [→ an activation (``with_postsum_act``)]. Inputs: ``data, weight, [bias], [gamma,
  beta, mean, var], [sum]``, and when ``quantized`` also ``data_min, data_max,
  [sum_min, sum_max]``.
* ``_sg_mkldnn_fully_connected``: ``FullyConnected`` [→ an elementwise op
  (``with_eltwise``)]. Inputs: ``data, weight, [bias]``, and when ``quantized``
  ``min_data, max_data, min_weight, max_weight, [min_bias, max_bias]`` (int8 weight
  and bias, as ``quantize_net`` stores them).

Float nodes run the chain's own lowerings (``Convolution``, ``FullyConnected``,
``Activation`` ...), with BatchNorm first folded into the convolution's weight and
bias as MXNet does (``w * gamma / sqrt(var + eps)``), so they match MXNet to float32
rounding. Quantized nodes follow MXNet 1.9.1's oneDNN kernels, bit for bit where the
tests check them (``tests/test_mkldnn_subgraphs.py``):

* conv: the folded float weight is quantized per output channel with
  ``s_c = 127.5 / max|w_c|`` (lowered where the float bias would overflow
  ``2^30 / (b_c * s_data)``), ``q_w = round_half_even(w * s_c)`` saturated; the bias
  becomes int32 ``round(b * s_c * s_data)``; the int32 sum of products plus that bias
  is scaled in float32 by ``s_out / s_data / s_c``, then the activation, then the sum
  input times ``s_out / s_sum`` (one FMA rounding), then the post-sum activation, and
  rounded half to even to uint8 (when the last op is relu-like) or int8 over the
  calibrated range. ``s`` is ``127.5 / R`` for int8 and ``255.5 / R`` for uint8.
* fully_connected: the int8 bias is rescaled to int32 ``round_half_away(b * s_data *
  s_w / s_b)`` (weights rescaled first where that would pass ``2^30``), then
  ``(acc + bias) * s_out / s_data / s_w`` (``1 / s_data / s_w`` with an eltwise op or a
  float output; the eltwise op then multiplies by ``s_out``), rounded to uint8/int8,
  or kept float32 with ``enable_float_output``.

MXNet's int8 convolutions depend on the CPU it ran on, and so does what matches them
bit for bit: with VNNI (the default here, ``XGRAPH_ONEDNN_ISA=vnni``) the sums above are
exact; on AVX2 and pre-VNNI AVX-512 CPUs (``XGRAPH_ONEDNN_ISA=avx2``, or
``with mkldnn.cpu_isa('avx2'):`` around the bind) oneDNN quantizes the weight of a
signed-data convolution at half scale (``round_half_even(w * s_c / 2)``, the requantize
scale doubled; data shifted to uint8 and compensated) and sums unsigned data's products
of two adjacent input channels into a saturating int16 first (an odd channel count padded
with a zero channel; depthwise kernels widen first and do not saturate);
its int8 gemm (FullyConnected) likewise saturates adjacent input features' products, signed
data shifted by 128 first. The plain ``_contrib_quantized_conv``/``_fully_connected``
follow the same rules (a plain convolution of an odd channel count shows no saturation).
Tested against checkpoints made on both kinds of CPU (``tests/fixtures/quantized`` and its
``avx2/``, the GluonCV int8 zoo entries).

Quantized nodes need ``min_calib_range``/``max_calib_range`` (``calib_mode='none'``
graphs, whose fused nodes output int32, are refused), per-tensor FullyConnected
weights (not ``channel_wise_quantize``) and no ``clip`` activation.

    >>> import xgraph as mx
    >>> from xgraph.ops.mkldnn import Subgraph
    >>> chain = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=3), act_type='relu')
    >>> fused = mx.sym._sg_mkldnn_fully_connected(mx.sym.var('x'), mx.sym.var('w'), mx.sym.var('b'),
    ...                                            subgraphs=(Subgraph.of(chain),), with_eltwise=True)
    >>> fused.infer_shape(x=(2, 5))[1]
    [(2, 3)]
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import AttributeValueError, UnsupportedFeatureError, UnsupportedOperatorError
from .attrs import AttrKind, Bool, Float, Optional, attr
from .common import fail
from .quantization import _pair, range_of, saturate
from .nn import checked_conv_geometry
from .quantized import CPU_ISAS, _current_isa, cpu_isa, set_cpu_isa  # noqa: F401 (re-exported)
from .quantized import _LEVELS, _div, _need, _need_range, f32_product, int8_conv, int8_matmul
from .registry import Op, get, register

_F32 = np.dtype(np.float32)
_I8, _U8, _I32 = np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32)
#: float(INT32_MAX): MXNet's scale for a zero range, and 2^31 / 2 its bias overflow limit
_INT32_MAX_F = np.float32(2147483647)
_HALF_INT32 = np.float32(1073741824.0)


# -- the subgraphs attribute ---------------------------------------------------------
class Subgraph:
    """One nested graph of a fused node (the JSON node's ``subgraphs`` entry), compared by content.

        >>> import xgraph as mx
        >>> g = Subgraph.of(mx.sym.relu(mx.sym.var('x')))
        >>> [n.op.name for n in g.graph.topo_order() if n.op is not None], g == Subgraph(g.text)
        (['relu'], True)
    """

    __slots__ = ("text", "graph", "_digest")

    def __init__(self, text: str):
        from ..io.symbol_json import from_json   # the reader builds Graph IR; imported late (it imports ops)
        self.graph = from_json(text)
        self.text = text
        self._digest = hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def of(cls, symbol: Any) -> "Subgraph":
        """The subgraph of a Symbol (or anything with ``tojson()``)."""
        return cls(symbol.tojson())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subgraph) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Subgraph({self._digest})"


class Subgraphs(AttrKind):
    """The ``subgraphs`` attribute: a tuple of :class:`Subgraph` from JSON text, dicts or Subgraphs."""

    def parse(self, value: Any) -> tuple:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, (Subgraph, dict)):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("expected a non-empty list of graphs")
        return tuple(v if isinstance(v, Subgraph) else Subgraph(v if isinstance(v, str) else json.dumps(v))
                     for v in value)

    def format(self, value: Any) -> str:
        return "[" + ", ".join(g.text for g in value) + "]"

    def describe(self) -> str:
        return "a list of symbol graphs (the JSON node's 'subgraphs' field)"

    def type_name(self) -> str:
        return "list of Symbol"


SUBGRAPHS_ATTR = "subgraphs"


# -- reading a fused chain -------------------------------------------------------------
#: elementwise ops MXNet fuses after a convolution (before and after the sum) or a FullyConnected
_CONV_ACTS = ("Activation", "LeakyReLU", "clip")
_FC_ELTWISE = ("Activation", "LeakyReLU", "clip", "square", "sqrt", "exp", "abs")


@dataclass(frozen=True)
class Chain:
    """The ops of one fused node's subgraph, in order: the layer, then what was fused after it."""

    layer: Any                     # the Convolution / FullyConnected node
    bn: Any = None
    act: Any = None
    add: Any = None
    post_act: Any = None


def _ops_in(sub: Subgraph) -> list:
    return [n for n in sub.graph.topo_order() if n.op is not None]


def _first_subgraph(p):
    subs = p[SUBGRAPHS_ATTR]
    if len(subs) != 1:
        raise AttributeValueError(f"expects exactly one subgraph, got {len(subs)}")
    return subs[0]


#: MXNet's old attribute names, read as the new ones (SgMKLDNNConvParamParser, SgMKLDNNFCParamParser)
_LEGACY = {"with_act": "with_relu", "with_postsum_act": "with_postsum_relu", "with_eltwise": "with_relu"}


def flag(p, name: str) -> bool:
    """A with_* attribute, or its old name (``with_relu`` for ``with_act``).

        >>> flag({'with_act': False, 'with_relu': True}, 'with_act')
        True
    """
    return bool(p[name] or p.get(_LEGACY.get(name, name), False))


def _flag_check(p, flags: dict) -> None:
    for name, present in flags.items():
        if flag(p, name) != present:
            raise AttributeValueError(
                f"attribute {name}={flag(p, name)} disagrees with the subgraph, which "
                f"{'has' if present else 'has no'} such op")


@functools.lru_cache(maxsize=512)
def _conv_chain(p_key: tuple) -> Chain:
    p = dict(p_key)
    ops = _ops_in(_first_subgraph(p))
    if not ops or ops[0].op.name != "Convolution":
        raise AttributeValueError("the subgraph must start with a Convolution")
    rest, found = list(ops[1:]), {"layer": ops[0]}
    if rest and rest[0].op.name == "BatchNorm":
        found["bn"] = rest.pop(0)
    if rest and rest[0].op.name in _CONV_ACTS:
        found["act"] = rest.pop(0)
    if rest and rest[0].op.name == "elemwise_add":
        found["add"] = rest.pop(0)
        if rest and rest[0].op.name in _CONV_ACTS:
            found["post_act"] = rest.pop(0)
    if rest:
        raise UnsupportedOperatorError(
            f"subgraph op {rest[0].op.name} ('{rest[0].name}') is not one _sg_mkldnn_conv fuses "
            f"(Convolution, then BatchNorm, {', '.join(_CONV_ACTS)}, elemwise_add)", (rest[0].op.name,))
    chain = Chain(**found)
    _flag_check(p, {"with_bn": chain.bn is not None, "with_act": chain.act is not None,
                    "with_sum": chain.add is not None, "with_postsum_act": chain.post_act is not None})
    _check_wiring(ops)
    return chain


def _check_wiring(ops) -> None:
    """Each fused op reads the one before it (its first input, or either for the sum)."""
    for prev, node in zip(ops, ops[1:]):
        if not any(e.node is prev for e in node.inputs):
            raise AttributeValueError(f"subgraph op '{node.name}' ({node.op.name}) does not read "
                                      f"'{prev.name}' ({prev.op.name}): not a fused chain")


@functools.lru_cache(maxsize=512)
def _fc_chain(p_key: tuple) -> Chain:
    p = dict(p_key)
    ops = _ops_in(_first_subgraph(p))
    if not ops or ops[0].op.name != "FullyConnected":
        raise AttributeValueError("the subgraph must start with a FullyConnected")
    if len(ops) > 2 or (len(ops) == 2 and ops[1].op.name not in _FC_ELTWISE):
        bad = ops[2] if len(ops) > 2 and ops[1].op.name in _FC_ELTWISE else ops[1]
        raise UnsupportedOperatorError(
            f"subgraph op {bad.op.name} ('{bad.name}') is not one _sg_mkldnn_fully_connected fuses "
            f"(FullyConnected, then one of {', '.join(_FC_ELTWISE)})", (bad.op.name,))
    chain = Chain(layer=ops[0], act=ops[1] if len(ops) == 2 else None)
    _flag_check(p, {"with_eltwise": chain.act is not None})
    _check_wiring(ops)
    return chain


def _key(p) -> tuple:
    return tuple(sorted(p.items()))


def conv_chain(p) -> Chain:
    """The validated :class:`Chain` of an ``_sg_mkldnn_conv`` node's attributes (memoized)."""
    return _conv_chain(_key(p))


def fc_chain(p) -> Chain:
    """The validated :class:`Chain` of an ``_sg_mkldnn_fully_connected`` node's attributes (memoized)."""
    return _fc_chain(_key(p))


def _relu_like(node) -> bool:
    """MXNet's IsOutputUInt8: the last fused op leaves no negative values."""
    if node is None:
        return False
    if node.op.name == "Activation":
        return node.params["act_type"] in ("relu", "sigmoid", "softrelu")
    if node.op.name == "LeakyReLU":
        return node.params["act_type"] == "leaky" and node.params["slope"] == 0
    return node.op.name == "clip"


def _calibrated(p) -> tuple | None:
    lo, hi = p["min_calib_range"], p["max_calib_range"]
    if (lo is None) != (hi is None):
        raise AttributeValueError("min_calib_range and max_calib_range must be given together")
    return None if lo is None else (np.float32(lo), np.float32(hi))


def _quantized_needs(p, chain: Chain, what: str) -> None:
    if _calibrated(p) is None:
        raise UnsupportedFeatureError(
            f"a quantized {what} without min_calib_range/max_calib_range (quantize with calib_mode "
            f"'naive' or 'entropy'; calib_mode='none' graphs output int32 here) is not supported")
    for node in (chain.act, chain.post_act):
        if node is not None and node.op.name == "clip":
            raise UnsupportedFeatureError(f"a quantized {what} fused with clip (bounded relu) is not supported")


# -- _sg_mkldnn_conv --------------------------------------------------------------------
def _conv_inputs(p) -> list[str]:
    c = conv_chain(p)
    names = ["data", "weight"] + ([] if c.layer.params["no_bias"] else ["bias"])
    names += ["gamma", "beta", "mean", "var"] if c.bn is not None else []
    names += ["sum"] if c.add is not None else []
    if p["quantized"]:
        names += ["data_min", "data_max"] + (["sum_min", "sum_max"] if c.add is not None else [])
    return names


def _layer_params(chain: Chain, bias: bool) -> dict:
    return {**chain.layer.params, "no_bias": not bias}


def _conv_infer(p, shapes):
    c, names = conv_chain(p), _conv_inputs(p)
    out = list(shapes)
    conv = get("Convolution")
    has_bias = not c.layer.params["no_bias"]
    out[:2 + has_bias] = conv.infer_inputs(c.layer.params, list(shapes[:2 + has_bias]))
    nf = (c.layer.params["num_filter"],)
    for i, n in enumerate(names):
        if n in ("gamma", "beta", "mean", "var"):
            out[i] = nf
        elif n.endswith(("_min", "_max")):
            out[i] = (1,)
    return out


def _conv_dtype(p, dtypes):
    c, names = conv_chain(p), _conv_inputs(p)
    filled = []
    for n, d in zip(names, dtypes):
        if d is None:
            d = _I8 if p["quantized"] and n in ("data", "sum") else _F32
        filled.append(d)
    if not p["quantized"]:
        return filled, None
    last = c.post_act if c.add is not None else c.act
    return filled, [_U8 if _relu_like(last) else _I8, _F32, _F32]


def fold_batchnorm(weight, bias, gamma, beta, mean, var, bn_params):
    """MXNet's UpdateConvWeightBias: BatchNorm folded into a convolution's float weight and bias.

    ``alpha = gamma / sqrt(var + eps)`` (``eps`` a double, as MXNet's BatchNormParam;
    gamma is 1 under ``fix_gamma``), ``w * alpha`` and ``beta + alpha * (bias - mean)``
    (``beta - alpha * mean`` without a bias), each product rounded to float32.

        >>> import jax.numpy as jnp
        >>> one = jnp.ones((1,), jnp.float32)
        >>> w, b = fold_batchnorm(jnp.ones((1, 1, 1, 1)), None, 2 * one, one, one, 3 * one,
        ...                       {'eps': 1.0, 'fix_gamma': False})
        >>> float(w.ravel()[0]), float(b[0])
        (1.0, 0.0)
    """
    wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    g = jnp.ones_like(gamma) if bn_params["fix_gamma"] else gamma
    alpha = (g.astype(wide) / jnp.sqrt(var.astype(wide) + bn_params["eps"])).astype(jnp.float32)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    w = weight.astype(jnp.float32) * alpha.reshape(shape)
    centred = -mean if bias is None else bias.astype(jnp.float32) - mean
    product = lax.optimization_barrier(alpha * centred)     # rounded alone: XLA would fuse it into an FMA
    return w, beta + product


def _eltwise(ctx, node, y):
    """Apply a fused elementwise node of the subgraph (its own op's lowering) to y."""
    out = get(node.op.name).lower(ctx, node.params, y)
    return out[0] if isinstance(out, tuple) else out


def _conv_values(p, chain: Chain, inputs):
    v = dict(zip(_conv_inputs(p), inputs))
    w, b = v["weight"], v.get("bias")
    if chain.bn is not None:
        w, b = fold_batchnorm(w, b, v["gamma"], v["beta"], v["mean"], v["var"], chain.bn.params)
    return v, w, b


def _aux_result(chain: Chain, v, outputs):
    """(outputs, new aux values): BatchNorm's moving statistics pass through unchanged (inference only)."""
    return outputs, ((v["mean"], v["var"]) if chain.bn is not None else ())


def _sg_conv_lower(ctx, p, *inputs):
    chain = conv_chain(p)
    v, w, b = _conv_values(p, chain, inputs)
    if p["quantized"]:
        return _aux_result(chain, v, _quantized_conv(ctx, p, chain, v, w, b))
    for name in ("data", "weight"):
        _need(v[name], ("float32",), name)
    y = get("Convolution").lower(ctx, _layer_params(chain, b is not None), v["data"], w,
                                 *([] if b is None else [b]))
    if chain.act is not None:
        y = _eltwise(ctx, chain.act, y)
    if chain.add is not None:
        if tuple(v["sum"].shape) != tuple(y.shape):
            fail(f"sum has shape {tuple(v['sum'].shape)}, expected the convolution's {tuple(y.shape)}")
        y = y + v["sum"]
        if chain.post_act is not None:
            y = _eltwise(ctx, chain.post_act, y)
    return _aux_result(chain, v, y)


def quantize_scale(dtype, low, high):
    """MXNet's GetQuantizeScale: 127.5 / R (int8) or 255.5 / R (uint8), R = max(|low|, |high|); 2^31 for R = 0.

        >>> import jax.numpy as jnp
        >>> float(quantize_scale('uint8', jnp.float32(0), jnp.float32(0.5)))
        511.0
    """
    real = jnp.maximum(jnp.abs(low), jnp.abs(high))
    levels = _LEVELS[jnp.dtype(dtype).name]
    return jnp.where(real == 0, _INT32_MAX_F, levels / jnp.where(real == 0, 1, real)).astype(jnp.float32)


def _scalar(x):
    return lax.stop_gradient(x).astype(jnp.float32).reshape(())


def _fma_f32(a, b, c):
    """round_f32(a * b + c) with one rounding (oneDNN's vfmadd), from float64 where available."""
    if jax.config.jax_enable_x64:
        return (a.astype(jnp.float64) * b.astype(jnp.float64) + c.astype(jnp.float64)).astype(jnp.float32)
    return f32_product(b, a) + c


def _pair_saturation(p, x, qw, odd_channels: bool = True):
    """What int16 saturation takes off an unsigned-data convolution in oneDNN's x8s8s32x kernels on CPUs
    without VNNI: ``vpmaddubsw`` sums the products of each two adjacent input channels (within a group)
    into an int16 with saturation, before the int32 accumulation, so ``x_2k w_2k + x_2k+1 w_2k+1`` above
    32767 (or below -32768) counts as the limit.  Returns the int32 correction (0 almost everywhere),
    per kernel tap ``sum_k clip(pair_k) - pair_k`` as one batched product of the channel pairs with the
    weight pairs (exact in float32: |pair| <= 2 * 255 * 128).  Depthwise kernels widen to int32 first
    and do not saturate."""
    groups = p["num_group"]
    n, c = x.shape[:2]
    o, cg = qw.shape[:2]
    if cg == 1 or (cg % 2 and not odd_channels):   # depthwise kernels widen to int32 first
        return None
    _, stride, dilate, pad = checked_conv_geometry(p, x.shape, qw.shape)
    spatial = x.ndim - 2
    kernel = qw.shape[2:]
    dilate = dilate or (1,) * spatial
    stride = stride or (1,) * spatial
    if cg % 2:                      # oneDNN pads each group's channels with zeros
        x = jnp.pad(x.reshape(n, groups, cg, *x.shape[2:]), [(0, 0), (0, 0), (0, 1)] + [(0, 0)] * spatial)
        qw = jnp.pad(qw, [(0, 0), (0, 1)] + [(0, 0)] * spatial)
        cg += 1
        x = x.reshape(n, groups * cg, *x.shape[3:])
    og, half, taps = o // groups, cg // 2, int(np.prod(kernel))
    # (N, C * taps, *out), channel-major: one batched product of every (pair, tap) with its weights
    patches = lax.conv_general_dilated_patches(
        x.astype(jnp.float32), kernel, stride, [(q, q) for q in (pad or (0,) * spatial)], rhs_dilation=dilate,
        precision=lax.Precision.HIGHEST)
    out = patches.shape[2:]
    lhs = patches.reshape(n, groups, half, 2, taps, -1)                       # (N, G, K, 2, T, P)
    lhs = jnp.transpose(lhs, (1, 2, 4, 0, 5, 3)).reshape(groups, half, taps, -1, 2)   # (G, K, T, N*P, 2)
    rhs = jnp.transpose(qw.astype(jnp.float32).reshape(groups, og, half, 2, taps), (0, 2, 4, 3, 1))  # (G,K,T,2,Og)
    pairs = lax.dot_general(lhs, rhs, (((4,), (3,)), ((0, 1, 2), (0, 1, 2))),
                            precision=lax.Precision.HIGHEST)                   # (G, K, T, N*P, Og)
    lost = (jnp.clip(pairs, -32768.0, 32767.0) - pairs).astype(jnp.int32).sum(axis=(1, 2), dtype=jnp.int32)
    lost = lost.reshape(groups, n, -1, og)
    return jnp.transpose(lost, (1, 0, 3, 2)).reshape((n, o) + tuple(out))


def _fc_pair_saturation(p, x, w):
    """_pair_saturation for an unsigned-data FullyConnected: oneDNN's int8 gemm without VNNI sums each two
    adjacent input features' products into a saturating int16 (features padded to an even count)."""
    x2 = x.reshape(x.shape[0], -1) if p["flatten"] else x
    k = x2.shape[-1]
    lead = x2.shape[:-1]
    xf = x2.astype(jnp.float32).reshape(-1, k) + (128.0 if x.dtype == _I8 else 0.0)   # s8 data: shifted
    wf = w.astype(jnp.float32)
    if k % 2:
        xf, wf = jnp.pad(xf, [(0, 0), (0, 1)]), jnp.pad(wf, [(0, 0), (0, 1)])
    half = xf.shape[1] // 2
    lhs = jnp.transpose(xf.reshape(-1, half, 2), (1, 0, 2))                    # (K, M, 2)
    rhs = jnp.transpose(wf.reshape(-1, half, 2), (1, 2, 0))                    # (K, 2, O)
    pairs = lax.dot_general(lhs, rhs, (((2,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)
    lost = (jnp.clip(pairs, -32768.0, 32767.0) - pairs).astype(jnp.int32).sum(axis=0, dtype=jnp.int32)
    return lost.reshape(lead + (w.shape[0],))                                  # (..., O)


def _signed_input_sum(chain: Chain, x, w_scaled, qb):
    """The float sum of an int8-data convolution as oneDNN's x8s8s32x kernels form it on CPUs without
    VNNI (AVX2, AVX-512 before VNNI), where MXNet 1.9.1's checkpoints were run: the float weight is
    quantized at half scale (``round_half_even(w * s_c / 2)``, so that u8 x s8 pairs cannot saturate
    int16), the data shifted to uint8 (``x + 128``, padding included) and the shift taken back by a
    per-channel compensation ``-128 * sum(w')``; ``float32(acc) + float32(comp) + float32(bias) / 2``,
    each sum rounded to float32, is then scaled by twice the requantize scale (the caller's).
    ``w_scaled`` is ``float32(w * s_c)``."""
    half = saturate(w_scaled * jnp.float32(0.5), jnp.int8)
    total = jnp.sum(half.astype(jnp.int32), axis=tuple(range(1, half.ndim)))
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    shifted = int8_conv(_layer_params(chain, False), x, half) + (128 * total).reshape(bshape)
    acc = shifted.astype(jnp.float32) + (-128 * total).astype(jnp.float32).reshape(bshape)
    if qb is not None:
        acc = acc + (qb.astype(jnp.float32) * jnp.float32(0.5)).reshape(bshape)
    return acc


def _quantized_conv(ctx, p, chain: Chain, v, w, b):
    _quantized_needs(p, chain, "_sg_mkldnn_conv")
    x = v["data"]
    _need(x, ("uint8", "int8"), "data")
    _need(w, ("float32",), "weight")
    _need_range(*[(n, v[n]) for n in ("data_min", "data_max", "sum_min", "sum_max") if n in v])
    lo, hi = _calibrated(p)
    out_type = _conv_dtype(p, [None] * len(v))[1][0]
    data_scale = quantize_scale(x.dtype, _scalar(v["data_min"]), _scalar(v["data_max"]))
    # a barrier: with frozen parameters XLA would otherwise constant-fold the per-channel reductions
    # with its slow evaluator (48 s to compile a ResNet-18); at run time they cost little
    w = lax.optimization_barrier(lax.stop_gradient(w))
    flat = w.reshape(w.shape[0], -1)
    scale = quantize_scale("int8", flat.min(axis=1), flat.max(axis=1))
    if b is not None:
        b = lax.stop_gradient(b).astype(jnp.float32)
        limit = _div(_div(jnp.where(b > 0, _HALF_INT32, -_HALF_INT32), jnp.where(b == 0, 1, b)), data_scale)
        scale = jnp.where(b != 0, jnp.minimum(scale, limit), scale)
    out_scale = quantize_scale(out_type, jnp.float32(lo), jnp.float32(hi))
    requant = _div(_div(out_scale, data_scale), scale)
    shape = (-1,) + (1,) * (w.ndim - 1)
    w_scaled = w * scale.reshape(shape)
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    qb = None if b is None else \
        jnp.clip(jnp.round(b * (scale * data_scale)), -2.0 ** 31, 2.0 ** 31 - 128).astype(jnp.int32)
    avx2 = _current_isa() == "avx2"
    if avx2 and x.dtype == _I8:   # oneDNN's signed-data kernels: half-scale weights, twice the output scale
        acc = _signed_input_sum(chain, x, w_scaled, qb)
        requant = requant * jnp.float32(2.0)
    else:
        qw = saturate(w_scaled, jnp.int8)
        exact = int8_conv(_layer_params(chain, False), x, qw)
        lost = _pair_saturation(_layer_params(chain, False), x, qw) if avx2 and x.dtype == _U8 else None
        acc = (exact if lost is None else exact + lost).astype(jnp.float32)
        if qb is not None:
            acc = acc + qb.astype(jnp.float32).reshape(bshape)
    y = acc * requant.reshape(bshape)
    if chain.act is not None:
        y = _eltwise(ctx, chain.act, y)
    if chain.add is not None:
        s = v["sum"]
        _need(s, ("uint8", "int8"), "sum")
        if tuple(s.shape) != tuple(y.shape):
            fail(f"sum has shape {tuple(s.shape)}, expected the convolution's {tuple(y.shape)}")
        sum_scale = _div(out_scale, quantize_scale(s.dtype, _scalar(v["sum_min"]), _scalar(v["sum_max"])))
        y = _fma_f32(lax.stop_gradient(s).astype(jnp.float32), sum_scale, y)
        if chain.post_act is not None:
            y = _eltwise(ctx, chain.post_act, y)
        # MXNet computes into the sum's array, so oneDNN writes (saturates to) the sum's type; the bytes
        # are then read as the output type (an int8 sum under a uint8 output tops out at 127)
        if s.dtype != out_type:
            return (lax.bitcast_convert_type(saturate(y, s.dtype), jnp.dtype(out_type)),
                    _pair(jnp.float32(lo)), _pair(jnp.float32(hi)))
    return saturate(y, out_type), _pair(jnp.float32(lo)), _pair(jnp.float32(hi))


def _conv_outputs(p) -> int:
    return 3 if p["quantized"] else 1


_CALIB_ATTRS = (
    attr("quantized", Bool(), False, "int8 computation (data is uint8/int8 with a range)"),
    attr("min_calib_range", Optional(Float()), None, "calibrated output minimum (quantized)"),
    attr("max_calib_range", Optional(Float()), None, "calibrated output maximum (quantized)"))

register(Op(
    "_sg_mkldnn_conv", _sg_conv_lower, dynamic_inputs=_conv_inputs,
    aux=lambda p: ("mean", "var") if conv_chain(p).bn is not None else (),
    attrs=(attr(SUBGRAPHS_ATTR, Subgraphs(), doc="the fused float chain (the JSON node's 'subgraphs')"),
           attr("with_bn", Bool(), False, "a BatchNorm follows the convolution (folded into it)"),
           attr("with_act", Bool(), False, "an activation follows"),
           attr("with_sum", Bool(), False, "the result is added to the 'sum' input"),
           attr("with_postsum_act", Bool(), False, "an activation follows the sum"),
           *_CALIB_ATTRS,
           attr("with_relu", Bool(), False, "(old name of with_act)"),
           attr("with_postsum_relu", Bool(), False, "(old name of with_postsum_act)")),
    num_outputs=_conv_outputs,
    output_names=lambda p: ["output", "output_min", "output_max"] if p["quantized"] else ["output"],
    infer_inputs=_conv_infer, infer_dtype=_conv_dtype, differentiable=False, family="quantization",
    variant=_current_isa,
    doc="MXNet's oneDNN fused convolution: Convolution [+BatchNorm] [+act] [+sum] [+act] from its "
        "subgraph, in float32 or (quantized) int8 as MXNet 1.9.1's CPU kernel. Inputs: data, weight, [bias], "
        "[gamma, beta, mean, var (auxiliary)], [sum], then when quantized data_min, data_max, [sum_min, sum_max]. "
        "Returns output (quantized: output, output_min, output_max). The int8 sums are those of a CPU with "
        "VNNI (exact) unless XGRAPH_ONEDNN_ISA=avx2 (or mkldnn.cpu_isa('avx2')): then as oneDNN without VNNI, "
        "signed data against half-scale weights and unsigned data's channel-pair products saturated to int16."))


# -- _sg_mkldnn_fully_connected -----------------------------------------------------------
def _fc_inputs(p) -> list[str]:
    c = fc_chain(p)
    bias = not c.layer.params["no_bias"]
    names = ["data", "weight"] + (["bias"] if bias else [])
    if p["quantized"]:
        if p["channel_wise_quantize"]:
            raise UnsupportedFeatureError("a quantized _sg_mkldnn_fully_connected with channel_wise_quantize "
                                          "(float weights quantized per channel) is not supported")
        names += ["min_data", "max_data", "min_weight", "max_weight"] + (["min_bias", "max_bias"] if bias else [])
    return names


def _fc_infer(p, shapes):
    c, names = fc_chain(p), _fc_inputs(p)
    bias = not c.layer.params["no_bias"]
    out = list(shapes)
    out[:2 + bias] = get("FullyConnected").infer_inputs(c.layer.params, list(shapes[:2 + bias]))
    return [(1,) if n.startswith(("min_", "max_")) else s for n, s in zip(names, out)]


def _fc_float_output(p) -> bool:
    return bool(p["quantized"] and p["enable_float_output"])


def _fc_dtype(p, dtypes):
    c, names = fc_chain(p), _fc_inputs(p)
    q = p["quantized"]
    filled = [d if d is not None else (_I8 if q and n in ("data", "weight", "bias") else _F32)
              for n, d in zip(names, dtypes)]
    if not q:
        return filled, None
    if _fc_float_output(p):
        return filled, [_F32]
    return filled, [_U8 if _relu_like(c.act) else _I8, _F32, _F32]


def _round_half_away(x):
    return jnp.trunc(x + jnp.sign(x) * jnp.float32(0.5))


def _quantized_fc(ctx, p, chain: Chain, v):
    if not p["enable_float_output"]:
        _quantized_needs(p, chain, "_sg_mkldnn_fully_connected")
    elif chain.act is not None and chain.act.op.name == "clip":
        raise UnsupportedFeatureError("a quantized _sg_mkldnn_fully_connected fused with clip is not supported")
    x, w = v["data"], lax.stop_gradient(v["weight"])
    _need(x, ("uint8", "int8"), "data")
    _need(w, ("int8",), "weight")
    _need_range(*[(n, v[n]) for n in v if n.startswith(("min_", "max_"))])
    data_scale = quantize_scale(x.dtype, _scalar(v["min_data"]), _scalar(v["max_data"]))
    w_scale = quantize_scale("int8", _scalar(v["min_weight"]), _scalar(v["max_weight"]))
    qb = None
    if "bias" in v:
        b = lax.stop_gradient(v["bias"])
        _need(b, ("int8",), "bias")
        rb = range_of(v["min_bias"], v["max_bias"])
        b_scale = quantize_scale("int8", _scalar(v["min_bias"]), _scalar(v["max_bias"]))
        rescale = _div(data_scale * w_scale, b_scale)
        limit = _div(_div(_HALF_INT32, rb), b_scale)     # MXNet: INT32_MAX / 2 (an integer), / R_b / s_b
        over = rescale > limit
        w_rescale = _div(_div(limit * b_scale, data_scale), w_scale)
        w = jnp.where(over, _round_half_away(w.astype(jnp.float32) * w_rescale), w.astype(jnp.float32)).astype(jnp.int8)
        w_scale = jnp.where(over, w_scale * w_rescale, w_scale)
        rescale = jnp.minimum(rescale, limit)
        qb = _round_half_away(b.astype(jnp.float32) * rescale).astype(jnp.int32)
    acc = int8_matmul(chain.layer.params, x, w)
    if _current_isa() == "avx2":
        acc = acc + _fc_pair_saturation(chain.layer.params, x, w)
    acc = acc.astype(jnp.float32)
    if qb is not None:
        acc = acc + qb.astype(jnp.float32)
    calib = None if p["enable_float_output"] else _calibrated(p)
    out_type = None if calib is None else _fc_dtype(p, [None] * len(v))[1][0]
    out_scale = None if calib is None else quantize_scale(out_type, jnp.float32(calib[0]), jnp.float32(calib[1]))
    # MXNet: 1.0 / s_data (a double quotient, rounded once), or s_out / s_data without an eltwise op
    pre = _div(jnp.float32(1.0) if (calib is None or chain.act is not None) else out_scale, data_scale)
    y = acc * _div(pre, w_scale)
    if chain.act is not None:
        y = _eltwise(ctx, chain.act, y)
        if calib is not None:
            y = y * out_scale
    if calib is None:
        return y
    return saturate(y, out_type), _pair(jnp.float32(calib[0])), _pair(jnp.float32(calib[1]))


def _sg_fc_lower(ctx, p, *inputs):
    chain = fc_chain(p)
    v = dict(zip(_fc_inputs(p), inputs))
    if p["quantized"]:
        return _quantized_fc(ctx, p, chain, v)
    bias = [v["bias"]] if "bias" in v else []
    y = get("FullyConnected").lower(ctx, chain.layer.params, v["data"], v["weight"], *bias)
    return _eltwise(ctx, chain.act, y) if chain.act is not None else y


def _fc_outputs(p) -> int:
    return 3 if p["quantized"] and not p["enable_float_output"] else 1


register(Op(
    "_sg_mkldnn_fully_connected", _sg_fc_lower, dynamic_inputs=_fc_inputs,
    attrs=(attr(SUBGRAPHS_ATTR, Subgraphs(), doc="the fused float chain (the JSON node's 'subgraphs')"),
           attr("with_eltwise", Bool(), False, "an elementwise op follows the FullyConnected"),
           attr("enable_float_output", Bool(), False, "a quantized node outputs float32 (dequantized)"),
           attr("channel_wise_quantize", Optional(Bool()), None, "per-channel float weights (not supported)"),
           *_CALIB_ATTRS,
           attr("with_relu", Bool(), False, "(old name of with_eltwise)")),
    num_outputs=_fc_outputs,
    output_names=lambda p: ["output", "min_output", "max_output"] if _fc_outputs(p) == 3 else ["output"],
    infer_inputs=_fc_infer, infer_dtype=_fc_dtype, differentiable=False, family="quantization",
    variant=_current_isa,
    doc="MXNet's oneDNN fused FullyConnected [+ an elementwise op] from its subgraph, in float32 or "
        "(quantized) int8 as MXNet 1.9.1's CPU kernel. Inputs: data, weight, [bias], then when quantized "
        "min_data, max_data, min_weight, max_weight, [min_bias, max_bias]. Returns output (quantized without "
        "enable_float_output: output, min_output, max_output)."))
