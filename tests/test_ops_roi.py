"""ROIPooling, ROIAlign, Crop and Correlation: numpy references written from MXNet's documented
semantics, finite-difference gradients (float64), a float16 run and bad input.
(The MXNet 1.9.1 references are cases in tests/fixtures/mxnet_ops/, run by test_mxnet_op_cases.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_low_precision, check_numeric_gradient, grads, run
from xgraph.errors import AttributeValueError, ShapeError

RNG = np.random.default_rng(7)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def roi_pool(pooled=(2, 2), scale=1.0, name=None):
    return mx.sym.ROIPooling(mx.sym.var("data"), mx.sym.var("rois"), pooled_size=pooled,
                             spatial_scale=scale, name=name)


def roi_align(pooled=(2, 2), scale=1.0, name=None, **kw):
    return mx.sym.contrib.ROIAlign(mx.sym.var("data"), mx.sym.var("rois"), pooled_size=pooled,
                                   spatial_scale=scale, name=name, **kw)


# -- numpy references ------------------------------------------------------------------
def np_roi_pool(data, rois, pooled, scale):
    """MXNet's ROIPooling: corners rounded half away from zero, floor/ceil bin edges, empty bins 0."""
    n, c, h, w = data.shape
    out = np.zeros((len(rois), c) + tuple(pooled), np.float32)
    for r, (b, *box) in enumerate(rois):
        b = int(b)
        if not 0 <= b < n:
            continue
        x1, y1, x2, y2 = (int(math.copysign(math.floor(abs(v * scale) + 0.5), v)) for v in box)
        bh, bw = max(y2 - y1 + 1, 1) / pooled[0], max(x2 - x1 + 1, 1) / pooled[1]
        for i, j in np.ndindex(*pooled):
            hs, he = (min(max(e + y1, 0), h) for e in (math.floor(i * bh), math.ceil((i + 1) * bh)))
            ws, we = (min(max(e + x1, 0), w) for e in (math.floor(j * bw), math.ceil((j + 1) * bw)))
            if he > hs and we > ws:
                out[r, :, i, j] = data[b, :, hs:he, ws:we].max(axis=(1, 2))
    return out


def np_bilinear_clamped(img, y, x):
    """ROIAlign's sample: zero beyond [-1, size], else clamped to the image and interpolated."""
    h, w = img.shape
    if y < -1 or y > h or x < -1 or x > w:
        return 0.0
    y, x = min(max(y, 0), h - 1), min(max(x, 0), w - 1)
    y0, x0 = int(y), int(x)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1]
            + ly * (1 - lx) * img[y1, x0] + ly * lx * img[y1, x1])


def np_roi_align(data, rois, pooled, scale, sample_ratio=-1, aligned=False):
    n, c, h, w = data.shape
    ph, pw = pooled
    out = np.zeros((len(rois), c, ph, pw))
    for r, (b, *box) in enumerate(rois):
        if not 0 <= int(b) < n:
            continue
        x1, y1, x2, y2 = (v * scale - (0.5 if aligned else 0.0) for v in box)
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gy = sample_ratio if sample_ratio > 0 else math.ceil(rh / ph)
        gx = sample_ratio if sample_ratio > 0 else math.ceil(rw / pw)
        for ch, i, j in np.ndindex(c, ph, pw):
            total = 0.0
            for iy, ix in np.ndindex(gy, gx):
                y = y1 + i * rh / ph + (iy + 0.5) * rh / ph / gy
                x = x1 + j * rw / pw + (ix + 0.5) * rw / pw / gx
                total += np_bilinear_clamped(data[int(b), ch], y, x)
            out[r, ch, i, j] = total / (gy * gx)
    return out


def np_correlation(a, b, k=1, md=1, s1=1, s2=1, pad=0, multiply=True):
    pa, pb = (np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) for x in (a, b))
    n, c, hp, wp = pa.shape
    border, radius = md + (k - 1) // 2, md // s2
    th, tw = math.ceil((hp - 2 * border) / s1), math.ceil((wp - 2 * border) / s1)
    grid = 2 * radius + 1
    out = np.zeros((n, grid * grid, th, tw))
    for t, i, j in np.ndindex(grid * grid, th, tw):
        y1, x1 = i * s1 + md, j * s1 + md
        y2, x2 = y1 + (t // grid - radius) * s2, x1 + (t % grid - radius) * s2
        p1, p2 = pa[:, :, y1:y1 + k, x1:x1 + k], pb[:, :, y2:y2 + k, x2:x2 + k]
        val = p1 * p2 if multiply else np.abs(p1 - p2)
        out[:, t, i, j] = val.sum(axis=(1, 2, 3)) / (k * k * c)
    return out


ROIS = np.array([[0, 0, 0, 7, 6], [1, 1.5, 2.5, 5.5, 6.5], [1, 6, 5, 30, 20], [0, 5, 5, 2, 3],
                 [0, -3, -2, 3, 2], [1, 2.2, 0.4, 3.1, 1.7]], np.float32)


@pytest.mark.parametrize("pooled,scale", [((2, 2), 1.0), ((3, 2), 0.5), ((4, 5), 0.8)])
def test_roi_pooling_against_numpy(pooled, scale):
    data = randn(2, 3, 8, 9)
    (out,) = run(roi_pool(pooled, scale), data=data, rois=ROIS)
    np.testing.assert_array_equal(out, np_roi_pool(data, ROIS, pooled, scale))


def test_roi_pooling_docstring_example():
    x = np.arange(48, dtype=np.float32).reshape(1, 1, 8, 6)
    rois = np.array([[0, 0, 0, 4, 4]], np.float32)
    assert run(roi_pool((2, 2), 1.0), data=x, rois=rois)[0].tolist() == [[[[14, 16], [26, 28]]]]
    assert run(roi_pool((2, 2), 0.7), data=x, rois=rois)[0].tolist() == [[[[7, 9], [19, 21]]]]


def test_roi_pooling_gradient_goes_to_the_first_maximum():
    data = np.zeros((1, 1, 4, 4), np.float32)          # every element ties
    rois = np.array([[0, 0, 0, 3, 3]], np.float32)
    g = grads(roi_pool((1, 1)), ["data"], [np.ones((1, 1, 1, 1), np.float32)], data=data, rois=rois)
    want = np.zeros_like(data)
    want[0, 0, 0, 0] = 1
    np.testing.assert_array_equal(g["data"], want)


@pytest.mark.parametrize("kw", [{}, {"sample_ratio": 2}, {"aligned": True}, {"sample_ratio": 3, "aligned": True}])
def test_roi_align_against_numpy(kw):
    data = randn(2, 2, 7, 8)
    rois = np.array([[0, 0.3, 0.6, 6.2, 5.1], [1, 2.5, 1.25, 3.75, 2.0], [1, -1.5, -2.0, 4.0, 9.5],
                     [0, 0, 0, 40.0, 31.0], [1, 6.9, 5.5, 7.9, 7.2]], np.float32)
    (out,) = run(roi_align((2, 3), 1.0, **kw), data=data, rois=rois)
    np.testing.assert_allclose(out, np_roi_align(data, rois, (2, 3), 1.0, **kw), rtol=1e-5, atol=1e-6)


def test_roi_align_position_sensitive_reads_one_channel_per_bin():
    data = randn(1, 8, 6, 6)
    rois = np.array([[0, 0.5, 1.0, 4.5, 5.0]], np.float32)
    (ps,) = run(roi_align((2, 2), position_sensitive=True), data=data, rois=rois)
    full = np_roi_align(data, rois, (2, 2), 1.0)            # (1, 8, 2, 2)
    want = np.stack([full[0, c * 4 + np.arange(4)].reshape(4, 2, 2)[np.arange(4), [0, 0, 1, 1], [0, 1, 0, 1]]
                     for c in range(2)]).reshape(1, 2, 2, 2)
    np.testing.assert_allclose(ps, want, rtol=1e-5, atol=1e-6)


def test_out_of_range_batch_index_gives_zeros_and_no_gradient():
    data = randn(2, 2, 5, 5)
    rois = np.array([[2, 0, 0, 3, 3], [-1, 0, 0, 3, 3], [1, 0, 0, 3, 3]], np.float32)
    for sym in (roi_pool((2, 2)), roi_align((2, 2))):
        (out,) = run(sym, data=data, rois=rois)
        assert not out[:2].any() and out[2].any()
        g = grads(sym, ["data", "rois"], [np.ones_like(out)], data=data, rois=rois)
        assert not g["rois"].any()
        assert not g["data"][0].any() and g["data"][1].any()


def test_crop_against_slicing():
    data = randn(2, 3, 6, 7)
    x = mx.sym.var("data")
    outs = run(mx.sym.Group([mx.sym.Crop(x, num_args=1, h_w=(3, 4), offset=(2, 1)),
                             mx.sym.Crop(x, num_args=1, h_w=(3, 2), center_crop=True),
                             mx.sym.Crop(x, mx.sym.var("like"), num_args=2, center_crop=True)]),
               data=data, like=np.zeros((1, 1, 4, 4), np.float32))
    for got, want in zip(outs, (data[:, :, 2:5, 1:5], data[:, :, 1:4, 2:4], data[:, :, 1:5, 1:5])):
        np.testing.assert_array_equal(got, want)
    assert mx.sym.Crop(x, mx.sym.var("like"), num_args=2).list_arguments() == ["data", "like"]


@pytest.mark.parametrize("kw", [{}, {"kernel_size": 3, "max_displacement": 2, "pad_size": 2},
                                {"max_displacement": 2, "stride1": 2, "stride2": 2, "pad_size": 1},
                                {"kernel_size": 3, "max_displacement": 1, "stride1": 2, "is_multiply": False}])
def test_correlation_against_numpy(kw):
    a, b = randn(2, 3, 6, 7), randn(2, 3, 6, 7)
    (out,) = run(mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), **kw), a=a, b=b)
    names = {"kernel_size": "k", "max_displacement": "md", "stride1": "s1", "stride2": "s2",
             "pad_size": "pad", "is_multiply": "multiply"}
    want = np_correlation(a, b, **{names[k]: v for k, v in kw.items()})
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build,args,wrt", [
    (lambda: roi_pool((2, 3), 0.5), {"data": randn(1, 2, 6, 7), "rois": ROIS[:3] * [0, 1, 1, 1, 1]}, ["data"]),
    (lambda: roi_align((2, 2)), {"data": randn(1, 2, 5, 6), "rois": np.array([[0, 0.3, 0.6, 4.2, 3.1],
                                                                             [0, -1, 2, 7.5, 5.5]])}, ["data"]),
    (lambda: roi_align((2, 2), sample_ratio=2, position_sensitive=True),
     {"data": randn(1, 4, 4, 5), "rois": np.array([[0, 0.3, 0.6, 3.2, 3.1]])}, ["data"]),
    (lambda: mx.sym.Crop(mx.sym.var("data"), mx.sym.var("like"), num_args=2, offset=(1, 1)),
     {"data": randn(1, 2, 4, 5), "like": randn(1, 1, 2, 3)}, ["data", "like"]),
    (lambda: mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), kernel_size=3, max_displacement=1, pad_size=1),
     {"a": randn(1, 2, 4, 5), "b": randn(1, 2, 4, 5)}, ["a", "b"]),
    (lambda: mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), max_displacement=1, is_multiply=False),
     {"a": randn(1, 2, 4, 4), "b": randn(1, 2, 4, 4)}, ["a", "b"]),
], ids=["roi_pooling", "roi_align", "roi_align_ps", "crop", "correlation", "correlation_abs"])
def test_numeric_gradients(build, args, wrt):
    check_numeric_gradient(build(), {k: np.asarray(v, np.float32) for k, v in args.items()}, wrt,
                           rtol=1e-4, atol=1e-6)


def test_float16_against_float32():
    data, rois = randn(1, 3, 8, 8), np.array([[0, 0.5, 1.0, 6.5, 7.0], [0, 2, 2, 5, 4]], np.float32)
    sym = mx.sym.Group([roi_align((2, 2)), roi_pool((2, 2))])
    check_low_precision(sym, {"data": data, "rois": rois}, "float16", rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("build,shapes,message", [
    (lambda: roi_pool(name="rp"), {"data": (1, 2, 5, 5), "rois": (3, 4)}, "rois must be (num_rois, 5)"),
    (lambda: roi_align(name="ra"), {"data": (1, 2, 5, 5), "rois": (3, 5, 1)}, "rois must be (num_rois, 5)"),
    (lambda: roi_pool(name="rp"), {"data": (2, 5, 5), "rois": (3, 5)}, "data must be 4-D"),
    (lambda: roi_align((2, 2), name="ra", position_sensitive=True), {"data": (1, 6, 5, 5), "rois": (3, 5)},
     "divisible by pooled_size"),
    (lambda: mx.sym.Crop(mx.sym.var("data"), num_args=1, h_w=(6, 2), name="cr"), {"data": (1, 1, 5, 5)},
     "h_w (6, 2) must lie within"),
    (lambda: mx.sym.Crop(mx.sym.var("data"), num_args=1, name="cr"), {"data": (1, 1, 5, 5)}, "h_w (0, 0)"),
    (lambda: mx.sym.Crop(mx.sym.var("data"), num_args=1, h_w=(3, 3), offset=(1, 3), name="cr"),
     {"data": (1, 1, 5, 5)}, "offset (1, 3) leaves the data"),
    (lambda: mx.sym.Crop(mx.sym.var("data"), mx.sym.var("like"), num_args=2, name="cr"),
     {"data": (1, 1, 5, 5), "like": (1, 1, 6, 2)}, "exceeds the data's"),
    (lambda: mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), kernel_size=2, name="co"),
     {"a": (1, 1, 5, 5), "b": (1, 1, 5, 5)}, "kernel_size 2 must be odd"),
    (lambda: mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), max_displacement=3, name="co"),
     {"a": (1, 1, 5, 5), "b": (1, 1, 5, 5)}, "do not fit"),
    (lambda: mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), name="co"),
     {"a": (1, 1, 5, 5), "b": (1, 2, 5, 5)}, "must have the same shape"),
])
def test_bad_shapes_name_the_node(build, shapes, message):
    sym = build()
    with pytest.raises(ShapeError) as err:
        sym.infer_shape(**shapes)
    assert message in str(err.value) and f"node '{sym.name}'" in str(err.value)


@pytest.mark.parametrize("make,attr", [
    (lambda: roi_pool((2, 2), 1.5, name="rp"), "spatial_scale"),
    (lambda: roi_pool((0, 2), 1.0, name="rp"), "pooled_size"),
    (lambda: roi_align((2,), 1.0, name="ra"), "pooled_size"),
    (lambda: roi_align((2, 2), -0.1, name="ra"), "spatial_scale"),
    (lambda: mx.sym.Crop(mx.sym.var("x"), num_args=3, name="cr"), "num_args"),
    (lambda: mx.sym.Crop(mx.sym.var("x"), num_args=1, h_w=(1, 2, 3), name="cr"), "h_w"),
    (lambda: mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b"), stride1=0, name="co"), "stride1"),
])
def test_bad_attribute_values_are_refused(make, attr):
    with pytest.raises(AttributeValueError) as err:
        make()
    assert f"attribute '{attr}'" in str(err.value) and "node '" in str(err.value)


def test_hidden_outputs_and_aliases():
    sym = roi_pool()
    assert sym.list_outputs() == [f"{sym.name}_output"]
    assert mx.sym.Correlation(mx.sym.var("a"), mx.sym.var("b")).list_outputs()[0].endswith("_output")
    from xgraph.ops import registry
    assert registry.get("_npx_roi_pooling") is registry.get("ROIPooling")
    _, out, _ = roi_align((3, 4)).infer_shape(data=(2, 5, 9, 9), rois=(7, 5))
    assert out == [(7, 5, 3, 4)]
