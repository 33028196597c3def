"""GridGenerator, BilinearSampler, SpatialTransformer, BilinearResize2D and AdaptiveAvgPooling2D:
numpy references, finite-difference gradients (float64), float16/bfloat16 runs and bad input.
(The MXNet 1.9.1 references are cases in tests/fixtures/mxnet_ops/, run by test_mxnet_op_cases.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_low_precision, check_numeric_gradient, run
from xgraph.errors import AttributeValueError, ShapeError

RNG = np.random.default_rng(11)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def np_bilinear(img, x, y):
    """One (H, W) image sampled at pixel coordinates x, y; neighbours outside read zero."""
    h, w = img.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += img[yy, xx] * wx * wy
    return total


def test_sampler_against_numpy():
    data, grid = randn(2, 3, 4, 5), RNG.uniform(-1.2, 1.2, (2, 2, 3, 3)).astype(np.float32)
    (out,) = run(mx.sym.BilinearSampler(mx.sym.var("data"), mx.sym.var("grid")), data=data, grid=grid)
    want = np.zeros((2, 3, 3, 3))
    for n, c, i, j in np.ndindex(want.shape):
        x = (grid[n, 0, i, j] + 1) * (5 - 1) / 2
        y = (grid[n, 1, i, j] + 1) * (4 - 1) / 2
        want[n, c, i, j] = np_bilinear(data[n, c], x, y)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_identity_transform_reproduces_the_image():
    data = randn(1, 2, 4, 6)
    theta = np.array([[1, 0, 0, 0, 1, 0]], np.float32)
    sym = mx.sym.SpatialTransformer(mx.sym.var("data"), mx.sym.var("loc"), target_shape=(4, 6),
                                    transform_type="affine", sampler_type="bilinear")
    (out,) = run(sym, data=data, loc=theta)
    np.testing.assert_allclose(out, data, rtol=1e-5, atol=1e-6)


def test_resize_align_corners_keeps_corners_and_adaptive_pool_averages_blocks():
    data = randn(1, 1, 4, 6)
    (up,) = run(mx.sym.contrib.BilinearResize2D(mx.sym.var("x"), height=7, width=11), x=data)
    np.testing.assert_allclose(up[0, 0, ::2, ::2], data[0, 0], rtol=1e-5, atol=1e-6)
    (pooled,) = run(mx.sym.contrib.AdaptiveAvgPooling2D(mx.sym.var("x"), output_size=(2, 3)), x=data)
    np.testing.assert_allclose(pooled[0, 0], data[0, 0].reshape(2, 2, 3, 2).mean(axis=(1, 3)), rtol=1e-5)


@pytest.mark.parametrize("build,args,wrt", [
    (lambda: mx.sym.BilinearSampler(mx.sym.var("data"), mx.sym.var("grid")),
     {"data": randn(1, 2, 3, 4), "grid": RNG.uniform(-1.1, 1.1, (1, 2, 2, 3))}, ["data", "grid"]),
    (lambda: mx.sym.GridGenerator(mx.sym.var("flow"), transform_type="warp"),
     {"flow": randn(1, 2, 2, 3)}, ["flow"]),
    (lambda: mx.sym.SpatialTransformer(mx.sym.var("data"), mx.sym.var("loc"), target_shape=(3, 3),
                                       transform_type="affine", sampler_type="bilinear"),
     {"data": randn(1, 1, 3, 4), "loc": np.array([[0.9, 0.1, 0.05, -0.1, 1.1, 0.02]], np.float32)},
     ["data", "loc"]),
    (lambda: mx.sym.contrib.BilinearResize2D(mx.sym.var("x"), height=4, width=3, align_corners=False),
     {"x": randn(1, 2, 3, 5)}, ["x"]),
    (lambda: mx.sym.contrib.AdaptiveAvgPooling2D(mx.sym.var("x"), output_size=(2, 3)),
     {"x": randn(1, 1, 5, 4)}, ["x"]),
], ids=["sampler", "warp_grid", "spatial_transformer", "resize", "adaptive_pool"])
def test_numeric_gradients(build, args, wrt):
    check_numeric_gradient(build(), {k: np.asarray(v, np.float32) for k, v in args.items()}, wrt, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_against_float32(dtype):
    data = randn(1, 2, 6, 5)
    sym = mx.sym.Group([mx.sym.contrib.BilinearResize2D(mx.sym.var("x"), height=9, width=4),
                        mx.sym.contrib.AdaptiveAvgPooling2D(mx.sym.var("x"), output_size=3)])
    tol = 2e-2 if dtype == "bfloat16" else 4e-3
    check_low_precision(sym, {"x": data}, dtype, rtol=tol, atol=tol * 4)


@pytest.mark.parametrize("build,shapes,message", [
    (lambda d: mx.sym.BilinearSampler(d, mx.sym.var("grid"), name="bs"),
     {"data": (2, 3, 4, 4), "grid": (2, 3, 4, 4)}, "grid must be (batch=2, 2, height, width)"),
    (lambda d: mx.sym.BilinearSampler(d, mx.sym.var("grid"), name="bs"),
     {"data": (3, 4, 4), "grid": (3, 2, 4, 4)}, "data must be 4-D"),
    (lambda d: mx.sym.GridGenerator(d, transform_type="affine", name="gg"),
     {"data": (1, 6)}, "target_shape=(height, width) with positive entries"),
    (lambda d: mx.sym.GridGenerator(d, transform_type="affine", target_shape=(3, 3), name="gg"),
     {"data": (1, 4)}, "data of shape (batch, 6)"),
    (lambda d: mx.sym.contrib.BilinearResize2D(d, mode="odd_scale", name="rz"),
     {"data": (1, 1, 4, 4)}, "needs scale_height and scale_width"),
    (lambda d: mx.sym.contrib.AdaptiveAvgPooling2D(d, output_size=(1, 2, 3), name="ap"),
     {"data": (1, 1, 4, 4)}, "must be a positive size or (height, width)"),
    (lambda d: mx.sym.SpatialTransformer(d, mx.sym.var("loc"), target_shape=(3, 3), transform_type="affine",
                                         sampler_type="bilinear", name="st"),
     {"data": (2, 1, 4, 4), "loc": (3, 6)}, "loc must be (batch=2, 6)"),
])
def test_bad_shapes_name_the_node(build, shapes, message):
    sym = build(mx.sym.var("data"))
    with pytest.raises(ShapeError) as err:
        sym.infer_shape(**shapes)
    assert message in str(err.value) and f"node '{sym.name}'" in str(err.value)


def test_bad_attribute_values_are_refused():
    with pytest.raises(AttributeValueError, match="mode"):
        mx.sym.contrib.BilinearResize2D(mx.sym.var("x"), mode="bicubic", name="rz")
    with pytest.raises(AttributeValueError, match="transform_type"):
        mx.sym.GridGenerator(mx.sym.var("x"), transform_type="perspective", name="gg")


def test_like_mode_takes_the_size_of_its_second_input():
    sym = mx.sym.contrib.BilinearResize2D(mx.sym.var("x"), mx.sym.var("like"), mode="like")
    assert sym.list_arguments() == ["x", "like"]
    _, out, _ = sym.infer_shape(x=(2, 3, 4, 5), like=(1, 1, 9, 2))
    assert out == [(2, 3, 9, 2)]
