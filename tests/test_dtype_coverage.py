"""Every operator family runs in float16 and bfloat16 and agrees with its float32 run.

Each entry of ``GRAPHS`` is a small representative graph of one family (several of its ops
chained where that keeps it small); it is run in float32 and in the low-precision dtype
(arguments cast, aux states kept float32) with tolerances fit for the dtype and the depth
of the graph.  ``test_every_family_is_covered`` fails when a family is registered without
an entry here (or an exemption with its reason).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_low_precision
from xgraph.ops import registry

RNG = np.random.default_rng(11)
V = mx.sym.var

#: (rtol, atol) per dtype for a graph of a few ops; ``scale`` widens them for deeper graphs
TOL = {"float16": (1e-2, 1e-2), "bfloat16": (5e-2, 5e-2)}

#: families with no float graph to compare, and why
EXEMPT = {"constant": "_constant has no inputs: its dtype is the stored value's (checked in test_passes)",
          "random": "samplers draw different values per dtype by design: their tests check distributions",
          "amp": "amp_cast/amp_multicast change dtypes by design (checked in test_amp_remat)",
          "quantization": "quantize/dequantize convert between float32 and int8/uint8 with float32 ranges by "
                          "definition (checked in test_ops_quantization)",
          "custom": "Custom runs the user's Python on the host: its dtypes are what the user's CustomOpProp.infer_type "
                    "says (float16 propagation checked in test_custom_op)"}

#: single ops of covered families left out of GRAPHS, and why
OP_EXEMPT = {"_contrib_Proposal": "RPN proposals decode, sort and suppress in float32 whatever the input dtype "
                                  "(MXNet's kernel reads float32); half-precision scores would reorder the "
                                  "boxes, so there is no float32 run to compare with (checked in "
                                  "test_ops_detection_extra)",
             "_contrib_MultiProposal": "as _contrib_Proposal"}


@dataclass
class Entry:
    """One representative graph: a builder, input shapes, and what stays float32."""

    family: str
    name: str
    build: Callable[[], Any]
    shapes: dict[str, tuple]
    scale: float = 1.0
    keep_float32: tuple[str, ...] = ()
    values: dict[str, Callable[[tuple], np.ndarray]] = field(default_factory=dict)
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    is_train: bool = False

    def args(self, sym: Any) -> dict[str, np.ndarray]:
        arg_shapes, _, _ = sym.infer_shape(**self.shapes)
        out = {}
        for n, s in zip(sym.list_arguments(), arg_shapes):
            make = self.values.get(n, lambda shape: RNG.standard_normal(shape))
            out[n] = np.asarray(make(s), np.float32)
        return out


def _positive(shape):
    return RNG.uniform(0.5, 2.0, shape)


def _labels(n):
    return lambda shape: RNG.integers(0, n, shape)


def _corner_boxes(shape):
    """Boxes (..., 4) as x1, y1, x2, y2 with positive width and height."""
    lo = RNG.uniform(0, 4, shape[:-1] + (2,))
    return np.concatenate([lo, lo + RNG.uniform(0.5, 3, shape[:-1] + (2,))], axis=-1)


GRAPHS = [
    Entry("vision", "grid_sampler_resize_adaptive_pool",
          lambda: mx.sym.contrib.AdaptiveAvgPooling2D(mx.sym.contrib.BilinearResize2D(
              mx.sym.BilinearSampler(V("x"), mx.sym.GridGenerator(V("theta"), transform_type="affine",
                                                                  target_shape=(5, 6))),
              height=7, width=9), output_size=(3, 2)) + mx.sym.contrib.ROIAlign(V("x"), V("rois"), pooled_size=(3, 2),
                                                                        spatial_scale=1.0),
          {"x": (1, 2, 6, 7), "theta": (1, 6), "rois": (1, 5)},
          values={"theta": lambda shape: np.array([[0.9, 0.1, 0.0, -0.1, 0.8, 0.05]]),
                  "rois": lambda shape: np.array([[0, 0.5, 1.0, 4.5, 5.0]])}, keep_float32=("rois",), scale=2),
    Entry("vision", "psroi_deformable_psroi_rroi_align", lambda: mx.sym.Group([
          mx.sym.contrib.PSROIPooling(V("x"), V("rois"), spatial_scale=0.5, output_dim=2, pooled_size=2),
          mx.sym.contrib.DeformablePSROIPooling(V("x"), V("rois"), V("trans"), spatial_scale=0.5, output_dim=2,
                                                group_size=2, pooled_size=2, sample_per_part=2, trans_std=0.1),
          mx.sym.contrib.RROIAlign(V("x"), V("rrois"), pooled_size=(2, 2), spatial_scale=1.0)]),
          {"x": (1, 8, 6, 6), "rois": (2, 5), "trans": (2, 2, 2, 2), "rrois": (2, 6)},
          values={"rois": lambda shape: np.array([[0, 1, 2, 9, 10], [0, 4, 0, 11, 7]]),
                  "rrois": lambda shape: np.array([[0, 3.0, 2.5, 4.0, 3.0, 30.0], [0, 2.0, 3.0, 5.0, 2.0, 120.0]])},
          keep_float32=("rois", "rrois"), scale=2),
    Entry("nn", "deformable_convolution", lambda: mx.sym.contrib.DeformableConvolution(
          V("x"), V("offset"), kernel=(3, 3), pad=(1, 1), num_filter=4, num_deformable_group=2, name="dc"),
          {"x": (1, 4, 5, 5), "offset": (1, 36, 5, 5)},
          values={"offset": lambda shape: RNG.uniform(-1, 1, shape)}, scale=3),
    Entry("detection", "box_iou_decode", lambda: mx.sym.contrib.box_iou(V("a"), V("b"), format="corner"),
          {"a": (2, 3, 4), "b": (5, 4)}, values={"a": _corner_boxes, "b": _corner_boxes}),
    Entry("elemwise", "unary_binary_scalar",
          lambda: mx.sym.exp(V("x") * 0.5) * mx.sym.sigmoid(V("y")) + mx.sym.sqrt(mx.sym.abs(V("x")) + 1)
          - mx.sym.tanh(V("y")) / 2, {"x": (3, 4), "y": (3, 4)}),
    Entry("elemwise", "add_n_maximum", lambda: mx.sym.add_n(V("x"), V("y"), mx.sym._maximum(V("x"), V("y"))),
          {"x": (2, 5), "y": (2, 5)}),
    Entry("broadcast", "arith", lambda: mx.sym.broadcast_mul(mx.sym.broadcast_add(V("x"), V("b")), V("c"))
          - mx.sym.broadcast_maximum(V("x"), V("c")), {"x": (2, 3, 4), "b": (1, 3, 1), "c": (2, 1, 4)}),
    Entry("broadcast", "to_like", lambda: mx.sym.broadcast_to(V("b"), shape=(2, 3)) + mx.sym.broadcast_like(V("b"), V("x")),
          {"b": (1, 3), "x": (2, 3)}),
    Entry("reduce", "sum_mean_max", lambda: mx.sym.sum(V("x"), axis=1) + mx.sym.mean(V("x"), axis=1)
          + mx.sym.max(V("x"), axis=1) + mx.sym.norm(V("x"), axis=1), {"x": (3, 4, 2)}, scale=2),
    Entry("shape", "reshape_transpose_concat_slice",
          lambda: mx.sym.slice_axis(mx.sym.Concat(mx.sym.transpose(mx.sym.Reshape(V("x"), shape=(0, 3, -1)),
                                                                   axes=(0, 2, 1)), V("y"), dim=1),
                                    axis=1, begin=1, end=None),
          {"x": (2, 6), "y": (2, 3, 3)}),
    Entry("shape", "split_clip_where", lambda: mx.sym.clip(mx.sym.SliceChannel(V("x"), num_outputs=2, axis=1)[1],
                                                           a_min=-0.5, a_max=0.5) + mx.sym.where(V("c"), V("y"), V("y") * 2),
          {"x": (2, 4), "y": (2, 2), "c": (2, 2)}, values={"c": _labels(2)}),
    Entry("linalg", "dot_batch_dot", lambda: mx.sym.batch_dot(V("a"), V("b")) + mx.sym.dot(V("c"), V("d")),
          {"a": (2, 3, 4), "b": (2, 4, 5), "c": (2, 3, 6), "d": (6, 5)}, scale=2),
    Entry("nn", "conv_pool_fc", lambda: mx.sym.FullyConnected(
        mx.sym.Pooling(mx.sym.Activation(mx.sym.Convolution(V("x"), kernel=(3, 3), pad=(1, 1), num_filter=4, name="c"),
                                         act_type="relu"), kernel=(2, 2), stride=(2, 2), pool_type="max"),
        num_hidden=5, name="fc"), {"x": (2, 3, 6, 6)}, scale=3),
    Entry("nn", "depthwise_and_grouped_conv", lambda: mx.sym.Convolution(
        mx.sym.Convolution(V("x"), kernel=(3, 3), pad=(1, 1), num_filter=8, num_group=4, name="dw"),
        kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=4, num_group=2, name="g"), {"x": (2, 4, 6, 6)}, scale=3),
    Entry("nn", "deconv_upsampling_pad", lambda: mx.sym.Pad(mx.sym.UpSampling(
        mx.sym.Deconvolution(V("x"), kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=2, name="d"),
        scale=2, sample_type="nearest"), mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 1, 1)), {"x": (1, 3, 3, 3)},
        scale=3),
    Entry("nn", "softmax_leaky_embedding", lambda: mx.sym.softmax(
        mx.sym.LeakyReLU(mx.sym.Embedding(V("i"), input_dim=6, output_dim=4, name="e"), act_type="elu"), axis=-1)
        + mx.sym.log_softmax(mx.sym.SoftmaxActivation(V("x")), axis=1), {"i": (2, 3), "x": (2, 3, 4)},
        keep_float32=("i",), values={"i": _labels(6)}),
    Entry("nn", "dropout_inference", lambda: mx.sym.Dropout(V("x"), p=0.3) * 2, {"x": (3, 3)}),
    Entry("norm", "batchnorm_layernorm", lambda: mx.sym.LayerNorm(
        mx.sym.BatchNorm(V("x"), fix_gamma=False, name="bn"), axis=1, name="ln"), {"x": (2, 3, 4)},
        keep_float32=("bn_gamma", "bn_beta"), scale=2,
        aux={"bn_moving_mean": np.zeros(3, np.float32), "bn_moving_var": np.ones(3, np.float32)}),
    Entry("norm", "batchnorm_training", lambda: mx.sym.BatchNorm(V("x"), name="bn"), {"x": (4, 3, 2)},
          keep_float32=("bn_gamma", "bn_beta"), is_train=True, scale=2,
          aux={"bn_moving_mean": np.zeros(3, np.float32), "bn_moving_var": np.ones(3, np.float32)}),
    Entry("norm", "group_instance_l2_lrn", lambda: mx.sym.LRN(mx.sym.L2Normalization(
        mx.sym.InstanceNorm(mx.sym.GroupNorm(V("x"), num_groups=2, name="gn"), name="in"), mode="channel"),
        nsize=3), {"x": (2, 4, 3, 3)}, scale=2),
    Entry("loss", "softmax_output_makeloss_blockgrad", lambda: mx.sym.Group([
        mx.sym.SoftmaxOutput(V("x"), V("label"), name="sm"),
        mx.sym.MakeLoss(mx.sym.BlockGrad(V("x")) * 2)]), {"x": (3, 5), "label": (3,)},
        values={"label": _labels(5)}, keep_float32=("label",)),
    Entry("indexing", "take_pick_topk_sort", lambda: mx.sym.broadcast_add(
          mx.sym.take(V("x"), V("i"), axis=0) + mx.sym.sort(V("x"), axis=1),
          mx.sym.pick(V("x"), V("j"), axis=1, keepdims=True)
          + mx.sym.topk(V("x"), k=2, ret_typ="value", axis=1).sum(axis=1, keepdims=True)),
          {"x": (3, 4), "i": (3,), "j": (3,)},
          keep_float32=("i", "j"), values={"i": _labels(3), "j": _labels(4)}, scale=2),
    Entry("indexing", "gather_nd", lambda: mx.sym.gather_nd(V("x"), V("idx")) * 2,
          {"x": (3, 2), "idx": (1, 2)}, keep_float32=("idx",), values={"idx": _labels(2)}),
    Entry("sequence", "mask_reverse_last", lambda: mx.sym.SequenceMask(
        mx.sym.SequenceReverse(V("x"), V("n"), use_sequence_length=True), V("n"), use_sequence_length=True,
        value=0.5) + mx.sym.broadcast_like(mx.sym.expand_dims(mx.sym.SequenceLast(V("x")), axis=0), V("x")),
        {"x": (4, 2, 3), "n": (2,)}, keep_float32=("n",), values={"n": lambda s: RNG.integers(1, 5, s)}),
    Entry("contrib", "div_sqrt_dim_arange_like", lambda: mx.sym.broadcast_add(
          mx.sym.contrib.div_sqrt_dim(V("x")), mx.sym.contrib.arange_like(V("x"), axis=1) * 0.1), {"x": (2, 4)}),
    Entry("attention", "interleaved_selfatt_encdec", lambda: mx.sym.contrib.interleaved_matmul_selfatt_valatt(
          V("qkv"), mx.sym.softmax(mx.sym.contrib.interleaved_matmul_selfatt_qk(V("qkv"), heads=2), axis=-1), heads=2)
          + mx.sym.contrib.interleaved_matmul_encdec_valatt(
              V("kv"), mx.sym.contrib.interleaved_matmul_encdec_qk(V("q"), V("kv"), heads=2), heads=2),
          {"qkv": (3, 2, 12), "q": (3, 2, 4), "kv": (4, 2, 8)}, scale=2),
    Entry("rnn", "lstm_bidirectional", lambda: mx.sym.RNN(V("data"), state_size=4, num_layers=2, mode="lstm",
                                                          bidirectional=True, state_outputs=True, name="r"),
          {"data": (3, 2, 3)}, scale=2, values={"r_parameters": lambda s: RNG.standard_normal(s) * 0.5}),
    Entry("rnn", "gru_tanh", lambda: mx.sym.RNN(V("data"), state_size=3, num_layers=1, mode="gru", name="g")
          + mx.sym.RNN(V("data"), state_size=3, num_layers=1, mode="rnn_tanh", name="t"),
          {"data": (4, 2, 3)}, scale=2),
]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("entry", GRAPHS, ids=lambda e: f"{e.family}-{e.name}")
def test_low_precision_matches_float32(entry, dtype):
    sym = entry.build()
    args = entry.args(sym)
    rtol, atol = TOL[dtype]
    check_low_precision(sym, args, dtype, rtol * entry.scale, atol * entry.scale, aux=entry.aux,
                        is_train=entry.is_train, keep_float32=entry.keep_float32)


def test_every_family_is_covered():
    families = {op.family or "(none)" for op in registry.all_ops()
                if getattr(op.lower, "__module__", "").startswith("xgraph.")}  # not ops tests register
    covered = {e.family for e in GRAPHS} | set(EXEMPT)
    missing = sorted(families - covered)
    assert not missing, (f"operator families without a low-precision graph in tests/test_dtype_coverage.py: "
                         f"{missing}; add an Entry (or an EXEMPT reason)")


def test_exempt_ops_are_registered():
    assert all(registry.exists(name) for name in OP_EXEMPT), sorted(n for n in OP_EXEMPT if not registry.exists(n))
