"""Cases for the image-resampling ops (xgraph/ops/sampling.py)."""
import mxnet as mx
import numpy as np

from . import Spec, case


def _f32(a):
    return np.asarray(a, np.float32)


def _theta(rng, n):
    """Affine matrices near the identity (rows of a 2x3 matrix, flattened)."""
    eye = np.array([1, 0, 0, 0, 1, 0], np.float32)
    return _f32(eye + 0.3 * rng.standard_normal((n, 6)))


@case
def grid_affine(rng):
    sym = mx.sym.GridGenerator(mx.sym.var("theta"), transform_type="affine", target_shape=(4, 5))
    return Spec(sym, {"theta": _theta(rng, 2)})


@case
def grid_warp(rng):
    sym = mx.sym.GridGenerator(mx.sym.var("flow"), transform_type="warp")
    return Spec(sym, {"flow": _f32(rng.standard_normal((2, 2, 3, 4)))})


@case
def bilinear_sampler(rng):
    sym = mx.sym.BilinearSampler(mx.sym.var("data"), mx.sym.var("grid"))
    grid = rng.uniform(-1.25, 1.25, (2, 2, 4, 5))        # some points outside the image
    return Spec(sym, {"data": _f32(rng.standard_normal((2, 3, 5, 6))), "grid": _f32(grid)},
                notes=["grid points up to 1.25 lie outside the image: their neighbours read zeros"])


@case
def spatial_transformer(rng):
    sym = mx.sym.SpatialTransformer(mx.sym.var("data"), mx.sym.var("loc"), target_shape=(4, 5),
                                    transform_type="affine", sampler_type="bilinear")
    return Spec(sym, {"data": _f32(rng.standard_normal((2, 3, 6, 7))), "loc": _theta(rng, 2)})


@case
def bilinear_resize_modes(rng):
    x = mx.sym.var("data")
    outs = [mx.sym.contrib.BilinearResize2D(x, height=5, width=9),
            mx.sym.contrib.BilinearResize2D(x, height=3, width=2),
            mx.sym.contrib.BilinearResize2D(x, scale_height=1.5, scale_width=0.5),
            mx.sym.contrib.BilinearResize2D(x, scale_height=2.0, scale_width=2.0, mode="odd_scale"),
            mx.sym.contrib.BilinearResize2D(x, mode="to_even_down"),
            mx.sym.contrib.BilinearResize2D(x, mode="to_even_up"),
            mx.sym.contrib.BilinearResize2D(x, mode="to_odd_down"),
            mx.sym.contrib.BilinearResize2D(x, mode="to_odd_up"),
            mx.sym.contrib.BilinearResize2D(x, mx.sym.var("like"), mode="like")]
    return Spec(mx.sym.Group(outs), {"data": _f32(rng.standard_normal((2, 3, 5, 6))),
                                     "like": _f32(rng.standard_normal((1, 1, 7, 4)))},
                no_grad=["like"])


@case
def bilinear_resize_half_pixel(rng):
    x = mx.sym.var("data")
    outs = [mx.sym.contrib.BilinearResize2D(x, height=7, width=4, align_corners=False),
            mx.sym.contrib.BilinearResize2D(x, height=2, width=11, align_corners=False)]
    return Spec(mx.sym.Group(outs), {"data": _f32(rng.standard_normal((1, 2, 5, 6)))})


@case
def adaptive_avg_pooling(rng):
    x = mx.sym.var("data")
    outs = [mx.sym.contrib.AdaptiveAvgPooling2D(x),
            mx.sym.contrib.AdaptiveAvgPooling2D(x, output_size=3),
            mx.sym.contrib.AdaptiveAvgPooling2D(x, output_size=(2, 4)),
            mx.sym.contrib.AdaptiveAvgPooling2D(x, output_size=(7, 5))]
    return Spec(mx.sym.Group(outs), {"data": _f32(rng.standard_normal((2, 3, 7, 5)))})
