"""Cases for the RPN proposal ops (xgraph/ops/proposal.py) and the position-sensitive, deformable and
rotated region ops (xgraph/ops/psroi.py, xgraph/ops/deformable.py)."""
import mxnet as mx
import numpy as np

from . import Spec, case


def _f32(a):
    return np.asarray(a, np.float32)


def _rpn_inputs(rng, n, a, h, w, im_info):
    """Scores with distinct values, deltas with a few tiny boxes (log sizes down to -3)."""
    cls = _f32(rng.permutation(n * 2 * a * h * w).reshape(n, 2 * a, h, w) / (n * 2 * a * h * w))
    deltas = rng.standard_normal((n, 4 * a, h, w)) * 0.3
    deltas.reshape(n, a, 4, h, w)[:, :, 2:] -= rng.uniform(0, 3, (n, a, 2, h, w)) * (rng.random((n, a, 1, h, w)) < 0.2)
    return {"cls_prob": cls, "bbox_pred": _f32(deltas), "im_info": _f32(im_info)}


def _rpn_syms():
    return mx.sym.var("cls_prob"), mx.sym.var("bbox_pred"), mx.sym.var("im_info")


@case
def proposal_single(rng):
    """Padded map positions (im_info smaller than the map), min-size filtering, fewer survivors than
    rpn_post_nms_top_n (MXNet repeats the kept boxes), two pre-NMS top-k; MXNet's zero gradients."""
    inputs = _rpn_inputs(rng, 1, 6, 5, 6, [[36, 44, 1.25]])
    c, b, i = _rpn_syms()
    kw = dict(feature_stride=8, scales=(2, 4), ratios=(0.5, 1, 2), rpn_min_size=4, output_score=True)
    outs = [mx.sym.contrib.Proposal(c, b, i, rpn_pre_nms_top_n=40, rpn_post_nms_top_n=30, threshold=0.5, **kw),
            mx.sym.contrib.Proposal(c, b, i, rpn_pre_nms_top_n=10, rpn_post_nms_top_n=16, threshold=0.3, **kw)]
    return Spec(mx.sym.Group(outs), inputs, rtol=1e-5, atol=1e-4,
                notes=["im_info (36, 44) at stride 8: rows >= 4 and columns >= 5 of the 5x6 map get score -1",
                       "rpn_post_nms_top_n > survivors: rows cycle through the kept boxes",
                       "rpn_pre_nms_top_n=-1 is in tests/test_ops_detection_extra.py"])


@case
def proposal_iou_loss(rng):
    inputs = _rpn_inputs(rng, 1, 3, 4, 4, [[64, 60, 0.5]])
    inputs["bbox_pred"] = _f32(inputs["bbox_pred"] * 10)
    c, b, i = _rpn_syms()
    sym = mx.sym.contrib.Proposal(c, b, i, feature_stride=16, scales=(1, 2, 3), ratios=(1,), rpn_min_size=8,
                                  rpn_pre_nms_top_n=30, rpn_post_nms_top_n=8, threshold=0.6, iou_loss=True)
    return Spec(sym, inputs, train=False, rtol=1e-5, atol=1e-4, notes=["zero gradients: proposal_single"])


@case
def multi_proposal(rng):
    """Three images of different real sizes and scales; default attributes but the anchors."""
    inputs = _rpn_inputs(rng, 3, 4, 4, 5, [[64, 80, 1.0], [40, 72, 0.6], [20, 20, 2.0]])
    c, b, i = _rpn_syms()
    kw = dict(feature_stride=16, scales=(1, 2), ratios=(0.5, 2))
    outs = [mx.sym.contrib.MultiProposal(c, b, i, rpn_pre_nms_top_n=50, rpn_post_nms_top_n=20, output_score=True,
                                         rpn_min_size=10, **kw),
            mx.sym.contrib.MultiProposal(c, b, i, rpn_post_nms_top_n=6, threshold=0.4, iou_loss=True, **kw)]
    return Spec(mx.sym.Group(outs), inputs, train=False, rtol=1e-5, atol=1e-4,
                notes=["zero gradients: proposal_single"])


_PS_ROIS = [[0, 1, 2, 12, 13], [1, 3.5, 0.5, 9.5, 7.5], [1, -4, -3, 5, 4], [0, 10, 9, 30, 25], [0, 6, 6, 5, 4],
            [1, 0, 0, 15.4, 13.6]]


@case
def psroi_pooling(rng):
    """Whole-map, partial, outside, malformed (x2 < x1) ROIs; halves for the rounding; two scales and a
    group grid finer than the pooled grid."""
    data = _f32(rng.standard_normal((2, 18, 7, 8)))
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    outs = [mx.sym.contrib.PSROIPooling(x, r, spatial_scale=0.5, output_dim=2, pooled_size=3),
            mx.sym.contrib.PSROIPooling(x, r, spatial_scale=1.0, output_dim=2, pooled_size=2, group_size=3),
            mx.sym.contrib.PSROIPooling(x, r, spatial_scale=0.25, output_dim=8, pooled_size=1, group_size=1)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": _f32(_PS_ROIS)}, rtol=1e-5, atol=1e-6)


@case
def deformable_psroi_pooling(rng):
    """Trans offsets of two classes (part_size = pooled and smaller); no_trans is in test_ops_detection_extra."""
    data = _f32(rng.standard_normal((2, 18, 7, 8)))
    rois = _f32(_PS_ROIS)
    trans = _f32(rng.standard_normal((6, 4, 3, 3)))
    trans2 = _f32(rng.standard_normal((6, 2, 2, 2)))
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    dp = mx.sym.contrib.DeformablePSROIPooling
    outs = [dp(x, r, mx.sym.var("trans"), spatial_scale=0.5, output_dim=2, group_size=3, pooled_size=3,
               sample_per_part=2, trans_std=0.1),
            dp(x, r, mx.sym.var("trans2"), spatial_scale=0.5, output_dim=2, group_size=3, pooled_size=3,
               part_size=2, sample_per_part=3, trans_std=0.3)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": rois, "trans": trans, "trans2": trans2},
                rtol=1e-4, atol=1e-5)


def _deform_conv_inputs(rng, n, c, h, w, f, kh, kw, dg, ho, wo, cg):
    return {"data": _f32(rng.standard_normal((n, c, h, w))),
            "offset": _f32(rng.standard_normal((n, dg * kh * kw * 2, ho, wo)) * 1.5),
            "weight": _f32(rng.standard_normal((f, cg, kh, kw)) * 0.3),
            "bias": _f32(rng.standard_normal((f,)))}


@case
def deformable_convolution(rng):
    """3x3, pad 1, two deformable groups and two groups; offsets up to a few pixels (some leave the map)."""
    inputs = _deform_conv_inputs(rng, 2, 4, 5, 6, 6, 3, 3, 2, 5, 6, 2)
    sym = mx.sym.contrib.DeformableConvolution(
        mx.sym.var("data"), mx.sym.var("offset"), mx.sym.var("weight"), mx.sym.var("bias"), kernel=(3, 3),
        pad=(1, 1), num_filter=6, num_group=2, num_deformable_group=2)
    return Spec(sym, inputs, rtol=1e-4, atol=1e-5)


@case
def deformable_convolution_strided(rng):
    """Stride 2, dilation 2, a 3x2 kernel, no bias."""
    inputs = _deform_conv_inputs(rng, 1, 3, 8, 7, 4, 3, 2, 1, 3, 3, 3)
    del inputs["bias"]
    sym = mx.sym.contrib.DeformableConvolution(
        mx.sym.var("data"), mx.sym.var("offset"), mx.sym.var("weight"), kernel=(3, 2), stride=(2, 2),
        dilate=(2, 2), pad=(1, 0), num_filter=4, no_bias=True)
    return Spec(sym, inputs, rtol=1e-4, atol=1e-5)


@case
def rroi_align(rng):
    """Rotated boxes (0 to 180 degrees), some leaving the map, adaptive and fixed sampling; no gradient (MXNet)."""
    data = _f32(rng.standard_normal((2, 3, 8, 9)))
    rois = _f32([[0, 4.0, 3.5, 6.0, 4.0, 30.0], [1, 8.0, 8.0, 10.0, 3.0, 135.0], [1, 1.0, 1.0, 20.0, 14.0, 90.0],
                 [0, 6.5, 2.0, 0.5, 0.3, 0.0], [0, 10.0, 12.0, 16.0, 16.0, 170.0], [1, 3.0, 5.0, 5.0, 9.0, -45.0]])
    x, r = mx.sym.var("data"), mx.sym.var("rois")
    outs = [mx.sym.contrib.RROIAlign(x, r, pooled_size=(2, 3), spatial_scale=1.0),
            mx.sym.contrib.RROIAlign(x, r, pooled_size=(3, 2), spatial_scale=0.5, sampling_ratio=2)]
    return Spec(mx.sym.Group(outs), {"data": data, "rois": rois}, train=False, rtol=1e-4, atol=1e-5)


def _modulated_inputs(rng, n, c, h, w, f, kh, kw, dg, ho, wo, cg, dtype=np.float32):
    """Offsets up to a few pixels (some taps land in (-1, 0) or off the map), masks in (0, 1)."""
    inputs = _deform_conv_inputs(rng, n, c, h, w, f, kh, kw, dg, ho, wo, cg)
    inputs["mask"] = _f32(rng.uniform(0.05, 1.0, (n, dg * kh * kw, ho, wo)))
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _modulated_sym(no_bias=False, **kw):
    extra = () if no_bias else (mx.sym.var("bias"),)
    return mx.sym.contrib.ModulatedDeformableConvolution(
        mx.sym.var("data"), mx.sym.var("offset"), mx.sym.var("mask"), mx.sym.var("weight"), *extra,
        no_bias=no_bias, **kw)


_NO_CPU_BACKWARD = ("MXNet 1.9.1's CPU backward of ModulatedDeformableConvolution is 'only implemented in GPU': "
                    "gradients are in modulated_deformable_convolution_grads")


@case
def modulated_deformable_convolution(rng):
    """3x3, pad 1, two deformable groups and two groups, two images at im2col_step 1; masks in (0, 1)."""
    inputs = _modulated_inputs(rng, 2, 4, 5, 6, 6, 3, 3, 2, 5, 6, 2)
    sym = _modulated_sym(kernel=(3, 3), pad=(1, 1), num_filter=6, num_group=2, num_deformable_group=2,
                         im2col_step=1)
    return Spec(sym, inputs, train=False, rtol=1e-4, atol=1e-5, notes=[_NO_CPU_BACKWARD])


@case
def modulated_deformable_convolution_strided(rng):
    """Stride 2, dilation 2, a 3x2 kernel, no bias."""
    inputs = _modulated_inputs(rng, 1, 3, 8, 7, 4, 3, 2, 1, 3, 3, 3)
    del inputs["bias"]
    sym = _modulated_sym(no_bias=True, kernel=(3, 2), stride=(2, 2), dilate=(2, 2), pad=(1, 0), num_filter=4)
    return Spec(sym, inputs, train=False, rtol=1e-4, atol=1e-5, notes=[_NO_CPU_BACKWARD])


MODULATED_GRADS = dict(kernel=(2, 2), pad=(1, 1), dilate=(2, 1), num_filter=4, num_group=2, num_deformable_group=2)


def modulated_by_bilinear_sampler(data, offset, mask, weight, bias, base, scale, shape, out, kernel, num_filter,
                                  num_group, num_deformable_group, **_):
    """DCNv2 written with MXNet ops that have CPU gradients: one BilinearSampler (zero outside the map, as
    DCNv2's sampler) over every (deformable group, tap) at the moved points, times the mask, then a 1x1
    grouped Convolution over the (channel, tap) columns. ``base`` (1, 2, taps * out_h, out_w) holds the
    taps' unmoved (x, y) and ``scale`` (1, 2, 1, 1) the factors to BilinearSampler's [-1, 1] grid."""
    n, c, h, w = shape
    t, dg = kernel[0] * kernel[1], num_deformable_group
    off = mx.sym.reshape(offset, shape=(n, dg, t, 2) + out)
    off = mx.sym.reverse(mx.sym.transpose(off, axes=(0, 1, 3, 2, 4, 5)), axis=2)     # (dy, dx) -> (dx, dy)
    grid = mx.sym.broadcast_mul(mx.sym.broadcast_add(mx.sym.reshape(off, shape=(n * dg, 2, t * out[0], out[1])),
                                                     base), scale) - 1
    x = mx.sym.reshape(data, shape=(n * dg, c // dg, h, w))
    cols = mx.sym.reshape(mx.sym.BilinearSampler(x, grid), shape=(n, dg, c // dg, t) + out)
    cols = mx.sym.broadcast_mul(cols, mx.sym.reshape(mask, shape=(n, dg, 1, t) + out))
    cols = mx.sym.reshape(cols, shape=(n, c * t) + out)
    return mx.sym.Convolution(cols, mx.sym.reshape(weight, shape=(num_filter, -1, 1, 1)), bias, kernel=(1, 1),
                              num_filter=num_filter, num_group=num_group)


def modulated_base(kernel, pad, dilate, out, stride=(1, 1)):
    """Each tap's unmoved (x, y) at every output position, taps along the rows: (1, 2, taps * out_h, out_w)."""
    oy = np.arange(out[0]) * stride[0] - pad[0]
    ox = np.arange(out[1]) * stride[1] - pad[1]
    xs, ys = [], []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            xs.append(np.broadcast_to((ox + j * dilate[1])[None, :], out))
            ys.append(np.broadcast_to((oy + i * dilate[0])[:, None], out))
    return np.stack([np.concatenate(xs), np.concatenate(ys)])[None].astype(np.float64)


@case
def modulated_deformable_convolution_grads(rng):
    """MXNet's gradients of DCNv2 (its ModulatedDeformableConvolution has no CPU backward), in float64,
    from the same function built of BilinearSampler, broadcast_mul and Convolution
    (modulated_by_bilinear_sampler); tests/test_ops_detection_extra.py compares xgraph's
    ModulatedDeformableConvolution gradients with these."""
    shape, ho, wo = (1, 4, 5, 6), 5, 7
    inputs = _modulated_inputs(rng, *shape, 4, 2, 2, 2, ho, wo, 2, dtype=np.float64)
    inputs["base"] = modulated_base((2, 2), (1, 1), (2, 1), (ho, wo))
    inputs["scale"] = np.array([2 / (shape[3] - 1), 2 / (shape[2] - 1)]).reshape(1, 2, 1, 1)
    v = {k: mx.sym.var(k) for k in inputs}
    sym = modulated_by_bilinear_sampler(v["data"], v["offset"], v["mask"], v["weight"], v["bias"], v["base"],
                                        v["scale"], shape, (ho, wo), **MODULATED_GRADS)
    nd = {k: mx.nd.array(a, dtype=a.dtype) for k, a in inputs.items()}
    native = mx.nd.contrib.ModulatedDeformableConvolution(*(nd[k] for k in ("data", "offset", "mask", "weight",
                                                                            "bias")), **MODULATED_GRADS)
    built = sym.bind(mx.cpu(), args=nd).forward()[0]
    err = float(np.abs(built.asnumpy() - native.asnumpy()).max())
    assert err < 1e-12, f"the BilinearSampler form differs from MXNet's op by {err}"
    return Spec(sym, inputs, no_grad=("base", "scale"), rtol=1e-9, atol=1e-10,
                notes=["ModulatedDeformableConvolution attributes: " + repr(MODULATED_GRADS),
                       f"forward equals MXNet's ModulatedDeformableConvolution to {err:.1g} (checked when written)"])
