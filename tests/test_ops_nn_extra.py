"""Deconvolution, UpSampling and Pad against numpy references, the MXNet case and
finite differences (float64)."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import check_inference, check_training, load_case
from opcheck import check_numeric_gradient, run
from xgraph.errors import XGraphError

RNG = np.random.default_rng(3)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def np_deconv2d(x, w, stride, pad, dilate, adj, groups):
    """Scatter every input pixel through the kernel onto a canvas, then crop the padding."""
    n, c, h, wd = x.shape
    cg, fg, kh, kw = w.shape[0] // groups, w.shape[1], w.shape[2], w.shape[3]
    full_h = (h - 1) * stride[0] + dilate[0] * (kh - 1) + 1 + adj[0]
    full_w = (wd - 1) * stride[1] + dilate[1] * (kw - 1) + 1 + adj[1]
    canvas = np.zeros((n, fg * groups, full_h + pad[0], full_w + pad[1]))
    for g in range(groups):
        for ci in range(cg):
            for i in range(h):
                for j in range(wd):
                    for a in range(kh):
                        for b in range(kw):
                            canvas[:, g * fg:(g + 1) * fg, i * stride[0] + a * dilate[0],
                                   j * stride[1] + b * dilate[1]] += \
                                x[:, g * cg + ci, i, j][:, None] * w[g * cg + ci, :, a, b][None, :]
    oh = full_h - 2 * pad[0]
    ow = full_w - 2 * pad[1]
    return canvas[:, :, pad[0]:pad[0] + oh, pad[1]:pad[1] + ow]


@pytest.mark.parametrize("stride,pad,dilate,adj,groups", [
    ((1, 1), (0, 0), (1, 1), (0, 0), 1), ((2, 2), (1, 1), (1, 1), (1, 1), 1),
    ((2, 1), (0, 1), (2, 1), (1, 0), 2), ((3, 3), (2, 2), (1, 1), (0, 0), 1)])
def test_deconvolution_against_numpy(stride, pad, dilate, adj, groups):
    x, w = randn(2, 4, 3, 4), randn(4, 6 // groups, 3, 2)
    sym = mx.sym.Deconvolution(mx.sym.var("x"), kernel=(3, 2), stride=stride, pad=pad, dilate=dilate, adj=adj,
                               num_filter=6, num_group=groups, name="d")
    (out,) = run(sym, x=x, d_weight=w)
    np.testing.assert_allclose(out, np_deconv2d(x, w, stride, pad, dilate, adj, groups), rtol=1e-5, atol=1e-5)


def test_deconvolution_target_shape_1d_and_defaults():
    sym = mx.sym.Deconvolution(mx.sym.var("x"), kernel=(3, 3), stride=(2, 2), target_shape=(8, 9),
                               num_filter=2, name="d")
    assert sym.list_arguments() == ["x", "d_weight"]  # no_bias defaults to True
    args, outs, _ = sym.infer_shape(x=(1, 3, 4, 4))
    assert args[1] == (3, 2, 3, 3) and outs == [(1, 2, 8, 9)]
    one = mx.sym.Deconvolution(mx.sym.var("x"), kernel=(2,), stride=(2,), num_filter=1, name="d")
    (out,) = run(one, x=np.array([[[1, 2]]], np.float32), d_weight=np.array([[[1, 10]]], np.float32))
    assert out.tolist() == [[[1, 10, 2, 20]]]
    assert mx.ops.registry.get("_npx_deconvolution").name == "Deconvolution"


def test_deconvolution_case():
    case = load_case("deconv2d_bias")
    check_inference(case)
    check_training(case)


def test_deconvolution_gradient():
    sym = mx.sym.Deconvolution(mx.sym.var("x"), kernel=(2, 2), stride=(2, 1), pad=(1, 0), num_filter=2,
                               num_group=2, no_bias=False, name="d")
    args = {"x": randn(1, 2, 2, 2), "d_weight": randn(2, 1, 2, 2), "d_bias": randn(2)}
    check_numeric_gradient(sym, args, list(args))


def test_deconvolution_errors():
    sym = mx.sym.Deconvolution(mx.sym.var("x"), kernel=(3, 3), num_filter=2, layout="NHWC")
    with pytest.raises(XGraphError, match="channel-first"):
        sym.infer_shape(x=(1, 4, 4, 3))
    sym = mx.sym.Deconvolution(mx.sym.var("x"), mx.sym.var("w"), kernel=(3, 3), num_filter=2)
    with pytest.raises(XGraphError, match="weight"):
        sym.infer_shape(x=(1, 3, 4, 4), w=(2, 3, 3, 3))


def test_upsampling_nearest():
    a, b = randn(1, 2, 2, 3), randn(1, 1, 4, 6)
    sym = mx.sym.UpSampling(mx.sym.var("a"), scale=2, sample_type="nearest")
    (out,) = run(sym, a=a)
    np.testing.assert_array_equal(out, a.repeat(2, 2).repeat(2, 3))
    cat = mx.sym.UpSampling(mx.sym.var("a"), mx.sym.var("b"), scale=2, sample_type="nearest", name="up")
    assert cat.list_arguments() == ["a", "b"]
    (out,) = run(cat, a=a, b=b)
    np.testing.assert_array_equal(out, np.concatenate([a.repeat(2, 2).repeat(2, 3), b], axis=1))
    b2 = randn(1, 2, 2, 3)
    summed = mx.sym.UpSampling(mx.sym.var("a"), mx.sym.var("b"), scale=3, sample_type="nearest",
                               multi_input_mode="sum")
    (out,) = run(summed, a=a, b=b2)
    np.testing.assert_allclose(out, (a + b2).repeat(3, 2).repeat(3, 3), rtol=1e-6)


def bilinear_kernel(k):
    f = np.ceil(k / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    r = 1 - np.abs(np.arange(k) / f - c)
    return np.outer(r, r).astype(np.float32)


@pytest.mark.parametrize("scale", [2, 3])
def test_upsampling_bilinear_is_a_depthwise_deconvolution(scale):
    x = randn(1, 2, 3, 3)
    sym = mx.sym.UpSampling(mx.sym.var("x"), scale=scale, sample_type="bilinear", num_filter=2, name="up")
    assert sym.list_arguments() == ["x", "up_weight"]
    args, outs, _ = sym.infer_shape(x=x.shape)
    k = 2 * scale - scale % 2
    assert args[1] == (2, 1, k, k) and outs == [(1, 2, 3 * scale, 3 * scale)]
    w = np.stack([bilinear_kernel(k)[None]] * 2)
    (out,) = run(sym, x=x, up_weight=w)
    q = int(np.ceil((scale - 1) / 2))
    ref = np.concatenate([np_deconv2d(x[:, i:i + 1], w[i:i + 1], (scale, scale), (q, q), (1, 1), (0, 0), 1)
                          for i in range(2)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    if scale == 2:  # interior of a constant image stays constant
        (flat,) = run(sym, x=np.ones((1, 2, 3, 3), np.float32), up_weight=w)
        np.testing.assert_allclose(flat[:, :, 1:-1, 1:-1], 1.0, rtol=1e-6)


def test_upsampling_gradient():
    sym = mx.sym.UpSampling(mx.sym.var("a"), mx.sym.var("b"), scale=2, sample_type="nearest")
    check_numeric_gradient(sym, {"a": randn(1, 1, 2, 2), "b": randn(1, 1, 4, 4)}, ["a", "b"])


@pytest.mark.parametrize("mode,np_mode", [("constant", "constant"), ("edge", "edge"), ("reflect", "reflect")])
def test_pad_against_numpy(mode, np_mode):
    x = randn(2, 3, 4, 5)
    width = (0, 0, 0, 0, 1, 2, 3, 1)
    sym = mx.sym.Pad(mx.sym.var("x"), mode=mode, pad_width=width, constant_value=1.5)
    (out,) = run(sym, x=x)
    pairs = [(0, 0), (0, 0), (1, 2), (3, 1)]
    ref = np.pad(x, pairs, mode="constant", constant_values=1.5) if mode == "constant" else np.pad(x, pairs, np_mode)
    np.testing.assert_array_equal(out, ref)


def test_pad_gradient_and_errors():
    sym = mx.sym.pad(mx.sym.var("x"), mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 2, 1))
    check_numeric_gradient(sym, {"x": randn(1, 1, 3, 3)}, ["x"])
    with pytest.raises(XGraphError, match="pad_width"):
        mx.sym.Pad(mx.sym.var("x"), mode="edge", pad_width=(0, 0, 1, 1)).infer_shape(x=(1, 1, 3, 3))
    with pytest.raises(XGraphError, match="reflect"):
        sym.infer_shape(x=(1, 1, 1, 3))
