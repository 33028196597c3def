"""Cases for the region and patch ops (xgraph/ops/roi.py): ROIPooling, ROIAlign, Crop, Correlation."""
import mxnet as mx
import numpy as np

from . import Spec, case


def _f32(a):
    return np.asarray(a, np.float32)


@case
def roi_pooling(rng):
    """Whole-map, partial, outside, malformed (x2 < x1) and out-of-range-batch ROIs, two scales."""
    data = _f32(rng.standard_normal((2, 3, 8, 9)))
    rois = _f32([[0, 0, 0, 8, 7], [1, 2, 1, 5, 6], [1, 6, 5, 20, 16], [0, 5, 5, 2, 3],
                  [0, -3, -2, 3, 2], [3, 1, 1, 4, 4], [-1, 1, 1, 4, 4], [1, 1.5, 2.5, 7.5, 6.5]])
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    outs = [mx.sym.ROIPooling(x, r, pooled_size=(2, 3), spatial_scale=1.0),
            mx.sym.ROIPooling(x, r, pooled_size=(3, 2), spatial_scale=0.5)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": rois},
                notes=["batch indices 3 and -1 are out of range: MXNet writes zeros",
                       "coordinates x.5 * scale test std::round (halves away from zero)"])


@case
def roi_pooling_big_bins(rng):
    """ROIs larger than the pooled grid in both directions (bins overlap by the ceil/floor rule)."""
    data = _f32(rng.standard_normal((1, 2, 10, 11)))
    rois = _f32([[0, 0, 0, 10, 9], [0, 1, 2, 8, 8], [0, 3, 0, 4, 9]])
    sym = mx.sym.ROIPooling(mx.sym.var("data"), mx.sym.var("rois"), pooled_size=(3, 4), spatial_scale=1.0)
    return Spec(sym, {"data": data, "rois": rois})


def _align_inputs(rng, channels=3):
    data = _f32(rng.standard_normal((2, channels, 7, 8)))
    rois = _f32([[0, 0.3, 0.6, 6.2, 5.1], [1, 2.5, 1.25, 3.75, 2.0], [1, -1.5, -2.0, 4.0, 9.5],
                  [0, 5.0, 4.0, 9.0, 8.5], [1, 1.1, 1.2, 1.3, 1.4], [0, 0, 0, 15.9, 13.7]])
    return data, rois


@case
def roi_align_adaptive(rng):
    """sample_ratio=-1: the sampling grid follows each ROI's size (1 to 8 samples per bin)."""
    data, rois = _align_inputs(rng)
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    outs = [mx.sym.contrib.ROIAlign(x, r, pooled_size=(2, 2), spatial_scale=1.0),
            mx.sym.contrib.ROIAlign(x, r, pooled_size=(3, 2), spatial_scale=0.5)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": rois}, rtol=1e-4, atol=1e-5)


@case
def roi_align_sample_ratio(rng):
    data, rois = _align_inputs(rng)
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    outs = [mx.sym.contrib.ROIAlign(x, r, pooled_size=(2, 3), spatial_scale=1.0, sample_ratio=2),
            mx.sym.contrib.ROIAlign(x, r, pooled_size=(2, 2), spatial_scale=0.8, sample_ratio=1)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": rois}, rtol=1e-4, atol=1e-5)


@case
def roi_align_aligned(rng):
    data, rois = _align_inputs(rng)
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    outs = [mx.sym.contrib.ROIAlign(x, r, pooled_size=(2, 2), spatial_scale=1.0, aligned=True),
            mx.sym.contrib.ROIAlign(x, r, pooled_size=(3, 3), spatial_scale=1.0, sample_ratio=2, aligned=True)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": rois}, rtol=1e-4, atol=1e-5)


@case
def roi_align_position_sensitive(rng):
    data, rois = _align_inputs(rng, channels=8)
    sym = mx.sym.contrib.ROIAlign(mx.sym.var("data"), mx.sym.var("rois"), pooled_size=(2, 2),
                                  spatial_scale=1.0, position_sensitive=True)
    return Spec(sym, {"data": data, "rois": rois}, rtol=1e-4, atol=1e-5)


@case
def crop_modes(rng):
    x = mx.sym.var("data")
    outs = [mx.sym.Crop(x, num_args=1, h_w=(3, 4)),
            mx.sym.Crop(x, num_args=1, h_w=(2, 3), offset=(2, 1)),
            mx.sym.Crop(x, num_args=1, h_w=(3, 2), center_crop=True),
            mx.sym.Crop(x, mx.sym.var("like"), num_args=2, offset=(1, 2)),
            mx.sym.Crop(x, mx.sym.var("like"), num_args=2, center_crop=True)]
    return Spec(mx.sym.Group(outs), {"data": _f32(rng.standard_normal((2, 3, 6, 7))),
                                     "like": _f32(rng.standard_normal((1, 1, 4, 4)))})


@case
def correlation_multiply(rng):
    a, b = mx.sym.var("data1"), mx.sym.var("data2")
    outs = [mx.sym.Correlation(a, b),
            mx.sym.Correlation(a, b, kernel_size=3, max_displacement=2, pad_size=2),
            mx.sym.Correlation(a, b, kernel_size=1, max_displacement=2, stride1=2, stride2=2, pad_size=1)]
    return Spec(mx.sym.Group(outs), {"data1": _f32(rng.standard_normal((2, 3, 6, 7))),
                                     "data2": _f32(rng.standard_normal((2, 3, 6, 7)))}, rtol=1e-4, atol=1e-5)


@case
def correlation_subtract(rng):
    a, b = mx.sym.var("data1"), mx.sym.var("data2")
    sym = mx.sym.Correlation(a, b, kernel_size=3, max_displacement=1, stride1=2, pad_size=1, is_multiply=False)
    return Spec(sym, {"data1": _f32(rng.standard_normal((1, 2, 6, 5))),
                      "data2": _f32(rng.standard_normal((1, 2, 6, 5)))}, rtol=1e-4, atol=1e-5)
