"""RPN proposals (Proposal, MultiProposal), PSROIPooling, DeformablePSROIPooling, DeformableConvolution,
ModulatedDeformableConvolution and RROIAlign: numpy references written from MXNet 1.9.1's kernels,
finite-difference gradients (float64), MXNet's zero gradients and bad input. (The MXNet 1.9.1 references are cases in tests/fixtures/mxnet_ops/,
written by tools/mxnet_op_cases/detection_extra.py and run by test_mxnet_op_cases.py.)"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_numeric_gradient, grads, run
from xgraph.errors import AttributeValueError, ShapeError

RNG = np.random.default_rng(3)
OPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "mxnet_ops")
V = mx.sym.var


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# -- Proposal / MultiProposal ---------------------------------------------------------------
def np_anchors(stride, scales, ratios):
    ctr, out = (stride - 1) / 2, []
    for r in ratios:
        for s in scales:
            bw = math.floor(math.sqrt(math.floor(stride * stride / r)) + 0.5) * s
            bh = math.floor(bw / s * r + 0.5) * s
            out.append([ctr - (bw - 1) / 2, ctr - (bh - 1) / 2, ctr + (bw - 1) / 2, ctr + (bh - 1) / 2])
    return np.array(out)


def np_proposal(cls, deltas, info, stride=16, scales=(8,), ratios=(1,), pre=6000, post=300, thresh=0.7,
                min_size=16, iou_loss=False):
    """MXNet's MultiProposal, one image at a time, in float64 loops."""
    n, c2, h, w = cls.shape
    a, base = c2 // 2, np_anchors(stride, scales, ratios)
    rois, scores = [], []
    for b in range(n):
        im_h, im_w, im_s = (float(v) for v in info[b])
        dets = []
        for y, x, k in np.ndindex(h, w, a):
            anchor = base[k] + [x * stride, y * stride, x * stride, y * stride]
            d = deltas[b, 4 * k:4 * k + 4, y, x].astype(np.float64)
            if iou_loss:
                box = anchor + d
            else:
                bw, bh = anchor[2] - anchor[0] + 1, anchor[3] - anchor[1] + 1
                cx, cy = anchor[0] + (bw - 1) / 2 + d[0] * bw, anchor[1] + (bh - 1) / 2 + d[1] * bh
                pw, ph = math.exp(d[2]) * bw, math.exp(d[3]) * bh
                box = np.array([cx - (pw - 1) / 2, cy - (ph - 1) / 2, cx + (pw - 1) / 2, cy + (ph - 1) / 2])
            box = np.clip(box, 0, [im_w - 1, im_h - 1, im_w - 1, im_h - 1])
            score = float(cls[b, a + k, y, x])
            if y >= int(im_h / stride) or x >= int(im_w / stride):
                score = -1.0
            ms = min_size * im_s
            if box[2] - box[0] + 1 < ms or box[3] - box[1] + 1 < ms:
                box, score = box + [-ms / 2, -ms / 2, ms / 2, ms / 2], -1.0
            dets.append([*box, score])
        dets = np.array(dets)
        top = min(pre if pre > 0 else len(dets), len(dets))
        dets = dets[np.argsort(-dets[:, 4], kind="stable")[:top]]
        area = (dets[:, 2] - dets[:, 0] + 1) * (dets[:, 3] - dets[:, 1] + 1)
        keep, gone = [], np.zeros(top, bool)
        for i in range(top):
            if len(keep) >= min(post, top):
                break
            if gone[i]:
                continue
            keep.append(i)
            iw = np.maximum(0, np.minimum(dets[i, 2], dets[:, 2]) - np.maximum(dets[i, 0], dets[:, 0]) + 1)
            ih = np.maximum(0, np.minimum(dets[i, 3], dets[:, 3]) - np.maximum(dets[i, 1], dets[:, 1]) + 1)
            inter = iw * ih
            gone |= (inter / (area[i] + area - inter) > thresh) & (np.arange(top) > i)
        rows = dets[[keep[i % len(keep)] for i in range(post)]]
        rois.append(np.concatenate([np.full((post, 1), b), rows[:, :4]], 1))
        scores.append(rows[:, 4:])
    return np.concatenate(rois), np.concatenate(scores)


def rpn_inputs(n, a, h, w, info):
    cls = (RNG.permutation(n * 2 * a * h * w).reshape(n, 2 * a, h, w) / (n * 2 * a * h * w)).astype(np.float32)
    deltas = (RNG.standard_normal((n, 4 * a, h, w)) * 0.3).astype(np.float32)
    deltas[:, 2::4] -= (RNG.random((n, a, h, w)) < 0.2) * 2.5       # a few tiny boxes for the min-size filter
    return {"cls_prob": cls, "bbox_pred": deltas, "im_info": np.asarray(info, np.float32)}


def proposal(multi=False, **kw):
    op = mx.sym.contrib.MultiProposal if multi else mx.sym.contrib.Proposal
    return op(V("cls_prob"), V("bbox_pred"), V("im_info"), output_score=True, **kw)


KW = dict(feature_stride=8, scales=(2, 4), ratios=(0.5, 1, 2), rpn_min_size=4)


@pytest.mark.parametrize("multi,info,kw", [
    (False, [[36, 44, 1.25]], dict(rpn_pre_nms_top_n=40, rpn_post_nms_top_n=30, threshold=0.5)),
    (False, [[40, 48, 1.0]], dict(rpn_pre_nms_top_n=-1, rpn_post_nms_top_n=12, threshold=0.7, iou_loss=True)),
    (True, [[40, 48, 1.0], [20, 30, 0.5], [9, 9, 2.0]], dict(rpn_pre_nms_top_n=25, rpn_post_nms_top_n=20,
                                                             threshold=0.6)),
])
def test_proposal_against_numpy(multi, info, kw):
    inputs = rpn_inputs(len(info), 6, 5, 6, info)
    if kw.get("iou_loss"):
        inputs["bbox_pred"] *= 8
    rois, score = run(proposal(multi, **KW, **kw), **inputs)
    want_rois, want_score = np_proposal(inputs["cls_prob"], inputs["bbox_pred"], inputs["im_info"],
                                        8, KW["scales"], KW["ratios"], kw["rpn_pre_nms_top_n"],
                                        kw["rpn_post_nms_top_n"], kw["threshold"], 4, kw.get("iou_loss", False))
    np.testing.assert_allclose(rois, want_rois, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(score, want_score, rtol=1e-6, atol=1e-7)
    if multi:       # the 9x9 image has 6 valid anchors: filtered (-1) boxes fill the rows after them
        assert (score[40:, 0] == -1).any() and (rois[40:, 0] == 2).all()


def test_proposal_cycles_through_kept_boxes():
    inputs = rpn_inputs(1, 6, 5, 6, [[40, 48, 1.0]])
    rois, score = run(proposal(**KW, rpn_pre_nms_top_n=5, rpn_post_nms_top_n=13, threshold=0.99), **inputs)
    kept = 5   # threshold 0.99 suppresses nothing: the 5 pre-NMS boxes, then again from the first
    np.testing.assert_array_equal(rois, np.concatenate([rois[:kept]] * 3)[:13])
    assert list(score[:kept, 0]) == sorted(score[:kept, 0], reverse=True)


def test_proposal_multi_equals_single_per_image_and_zero_gradients():
    info = [[40, 48, 1.0], [33, 25, 0.7]]
    inputs = rpn_inputs(2, 6, 5, 6, info)
    kw = dict(KW, rpn_pre_nms_top_n=30, rpn_post_nms_top_n=10)
    multi = run(proposal(True, **kw), **inputs)
    for b in range(2):
        single = run(proposal(**kw), **{k: v[b:b + 1] for k, v in inputs.items()})
        np.testing.assert_array_equal(single[0][:, 1:], multi[0][b * 10:(b + 1) * 10, 1:])
        np.testing.assert_array_equal(single[1], multi[1][b * 10:(b + 1) * 10])
    g = grads(proposal(True, **kw), list(inputs), [np.ones((20, 5), np.float32), np.ones((20, 1), np.float32)],
              **inputs)
    assert all(not v.any() for v in g.values())


def test_proposal_outputs_and_inferred_inputs():
    sym = mx.sym.contrib.Proposal(V("c"), V("b"), V("i"), rpn_post_nms_top_n=7, name="rpn")
    assert sym.list_outputs() == ["rpn_output"]
    args, outs, _ = sym.infer_shape(c=(1, 24, 4, 5))
    assert args == [(1, 24, 4, 5), (1, 48, 4, 5), (1, 3)] and outs == [(7, 5)]
    assert proposal(name="p2").list_outputs() == ["p2_output", "p2_score"]


# -- PSROIPooling ---------------------------------------------------------------------------
def c_round(v):
    return math.copysign(math.floor(abs(v) + 0.5), v)


def np_psroi(data, rois, scale, od, ps, gs=0):
    gs = gs or ps
    _, _, h, w = data.shape
    out = np.zeros((len(rois), od, ps, ps))
    for r, (b, *box) in enumerate(rois):
        x1, y1 = c_round(box[0]) * scale, c_round(box[1]) * scale
        x2, y2 = (c_round(box[2]) + 1) * scale, (c_round(box[3]) + 1) * scale
        bw, bh = max(x2 - x1, 0.1) / ps, max(y2 - y1, 0.1) / ps
        for c, i, j in np.ndindex(od, ps, ps):
            hs, he = (min(max(v, 0), h) for v in (math.floor(i * bh + y1), math.ceil((i + 1) * bh + y1)))
            ws, we = (min(max(v, 0), w) for v in (math.floor(j * bw + x1), math.ceil((j + 1) * bw + x1)))
            ch = (c * gs + min(i * gs // ps, gs - 1)) * gs + min(j * gs // ps, gs - 1)
            if he > hs and we > ws:
                out[r, c, i, j] = data[int(b), ch, hs:he, ws:we].mean()
    return out


PS_ROIS = np.array([[0, 1, 2, 12, 13], [1, 3.5, 0.5, 9.5, 7.5], [1, -4, -3, 5, 4], [0, 10, 9, 30, 25],
                    [0, 6, 6, 5, 4]], np.float32)


@pytest.mark.parametrize("scale,od,ps,gs", [(0.5, 2, 3, 0), (1.0, 2, 2, 3), (0.25, 8, 1, 1)])
def test_psroi_pooling_against_numpy(scale, od, ps, gs):
    data = randn(2, 18, 7, 8)
    sym = mx.sym.contrib.PSROIPooling(V("data"), V("rois"), spatial_scale=scale, output_dim=od, pooled_size=ps,
                                      group_size=gs)
    (out,) = run(sym, data=data, rois=PS_ROIS)
    np.testing.assert_allclose(out, np_psroi(data, PS_ROIS, scale, od, ps, gs), rtol=1e-5, atol=1e-6)


def test_psroi_pooling_gradient():
    sym = mx.sym.contrib.PSROIPooling(V("data"), V("rois"), spatial_scale=0.5, output_dim=1, pooled_size=2)
    rois = PS_ROIS[[0, 4]] * [1, 0.5, 0.5, 0.5, 0.5]
    check_numeric_gradient(sym, {"data": randn(1, 4, 4, 4), "rois": rois}, ["data"])
    g = grads(sym, ["rois"], [np.ones((2, 1, 2, 2), np.float32)], data=randn(1, 4, 4, 4), rois=rois)
    assert not g["rois"].any()


# -- DeformablePSROIPooling ---------------------------------------------------------------
def np_bilinear_floor_ceil(img, y, x):
    x1, x2, y1, y2 = math.floor(x), math.ceil(x), math.floor(y), math.ceil(y)
    dx, dy = x - x1, y - y1
    return ((1 - dx) * (1 - dy) * img[y1, x1] + (1 - dx) * dy * img[y2, x1] + dx * (1 - dy) * img[y1, x2]
            + dx * dy * img[y2, x2])


def np_deform_psroi(data, rois, trans, scale, od, gs, ps, part=0, spp=1, std=0.0):
    part = part or ps
    _, _, h, w = data.shape
    classes = 1 if trans is None else trans.shape[1] // 2
    out, count = np.zeros((len(rois), od, ps, ps)), np.zeros((len(rois), od, ps, ps))
    for r, (b, *box) in enumerate(rois):
        x1, y1 = c_round(box[0]) * scale - 0.5, c_round(box[1]) * scale - 0.5
        x2, y2 = (c_round(box[2]) + 1) * scale - 0.5, (c_round(box[3]) + 1) * scale - 0.5
        rw, rh = max(x2 - x1, 0.1), max(y2 - y1, 0.1)
        bw, bh = rw / ps, rh / ps
        for c, i, j in np.ndindex(od, ps, ps):
            pi, pj, k = math.floor(i / ps * part), math.floor(j / ps * part), c // (od // classes)
            tx = 0.0 if trans is None else trans[r, 2 * k, pi, pj] * std
            ty = 0.0 if trans is None else trans[r, 2 * k + 1, pi, pj] * std
            ch = (c * gs + min(i * gs // ps, gs - 1)) * gs + min(j * gs // ps, gs - 1)
            vals = []
            for si, sj in np.ndindex(spp, spp):
                y = i * bh + y1 + ty * rh + si * bh / spp
                x = j * bw + x1 + tx * rw + sj * bw / spp
                if -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5:
                    vals.append(np_bilinear_floor_ceil(data[int(b), ch], min(max(y, 0), h - 1), min(max(x, 0), w - 1)))
            out[r, c, i, j], count[r, c, i, j] = (np.mean(vals) if vals else 0.0), len(vals)
    return out, count


def deform_psroi(trans=True, **kw):
    extra = (V("trans"),) if trans else ()
    return mx.sym.contrib.DeformablePSROIPooling(V("data"), V("rois"), *extra, no_trans=not trans, **kw)


@pytest.mark.parametrize("kw,trans_shape", [
    (dict(spatial_scale=0.5, output_dim=2, group_size=3, pooled_size=3, sample_per_part=2, trans_std=0.1),
     (5, 4, 3, 3)),
    (dict(spatial_scale=0.5, output_dim=2, group_size=3, pooled_size=3, part_size=2, sample_per_part=3,
          trans_std=0.3), (5, 2, 2, 2)),
    (dict(spatial_scale=1.0, output_dim=2, group_size=3, pooled_size=3, sample_per_part=2), None),
])
def test_deformable_psroi_pooling_against_numpy(kw, trans_shape):
    data = randn(2, 18, 7, 8)
    inputs = {"data": data, "rois": PS_ROIS}
    if trans_shape:
        inputs["trans"] = randn(*trans_shape)
    sym = deform_psroi(trans_shape is not None, **kw)
    (out,) = run(sym, **inputs)
    want, count = np_deform_psroi(data, PS_ROIS, inputs.get("trans"), kw["spatial_scale"], kw["output_dim"],
                                  kw["group_size"], kw["pooled_size"], kw.get("part_size", 0),
                                  kw["sample_per_part"], kw.get("trans_std", 0.0))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert (count == 0).any() and (count > 0).any()      # ROIs partly and wholly outside the map


def test_deformable_psroi_pooling_gradients():
    sym = deform_psroi(spatial_scale=0.5, output_dim=1, group_size=2, pooled_size=2, sample_per_part=2,
                       trans_std=0.1)
    rois = np.array([[0, 1.0, 2.0, 7.0, 6.0], [0, 3.0, 1.0, 5.0, 7.0]], np.float32)
    args = {"data": randn(1, 4, 4, 4), "rois": rois, "trans": randn(2, 2, 2, 2)}
    check_numeric_gradient(sym, args, ["data", "trans"], rtol=1e-4, atol=1e-6)
    g = grads(sym, ["rois"], [np.ones((2, 1, 2, 2), np.float32)], **args)
    assert not g["rois"].any()


# -- DeformableConvolution ------------------------------------------------------------------
def np_deform_conv(x, off, wgt, bias, kernel, stride=(1, 1), pad=(0, 0), dilate=(1, 1), groups=1, dgroups=1,
                   mask=None):
    """DeformableConvolution; with ``mask``, ModulatedDeformableConvolution (DCNv2): points in (-1, H) x (-1, W),
    corners off the map read 0 (no clamping), each sample times its mask."""
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = off.shape[2:]
    cols = np.zeros((n, c, kh * kw, ho, wo))
    for b, ch, i, j, oy, ox in np.ndindex(n, c, kh, kw, ho, wo):
        t, g = i * kw + j, ch // (c // dgroups)
        y = oy * stride[0] - pad[0] + i * dilate[0] + off[b, (g * kh * kw + t) * 2, oy, ox]
        xx = ox * stride[1] - pad[1] + j * dilate[1] + off[b, (g * kh * kw + t) * 2 + 1, oy, ox]
        img = x[b, ch]
        if mask is not None:
            if not (-1 < y < h and -1 < xx < w):
                continue
            y0, x0 = math.floor(y), math.floor(xx)
            ly, lx = y - y0, xx - x0
            px = [[img[a, e] if 0 <= a < h and 0 <= e < w else 0.0 for e in (x0, x0 + 1)] for a in (y0, y0 + 1)]
            cols[b, ch, t, oy, ox] = mask[b, g * kh * kw + t, oy, ox] * (
                (1 - ly) * (1 - lx) * px[0][0] + (1 - ly) * lx * px[0][1] + ly * (1 - lx) * px[1][0]
                + ly * lx * px[1][1])
            continue
        if not (0 <= y < h and 0 <= xx < w):
            continue
        y0, x0 = math.floor(y), math.floor(xx)
        y1 = y0 + 1 if y0 < h - 1 else y0
        x1 = x0 + 1 if x0 < w - 1 else x0
        ly = y - y0 if y0 < h - 1 else 0.0
        lx = xx - x0 if x0 < w - 1 else 0.0
        cols[b, ch, t, oy, ox] = ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1]
                                  + ly * (1 - lx) * img[y1, x0] + ly * lx * img[y1, x1])
    f = wgt.shape[0]
    cg, fg = c // groups, f // groups
    out = np.zeros((n, f, ho, wo))
    for g in range(groups):
        col = cols[:, g * cg:(g + 1) * cg].reshape(n, cg * kh * kw, ho * wo)
        out[:, g * fg:(g + 1) * fg] = np.einsum("mk,nkl->nml", wgt[g * fg:(g + 1) * fg].reshape(fg, -1),
                                                col).reshape(n, fg, ho, wo)
    return out + (0 if bias is None else bias[None, :, None, None])


def deform_conv(**kw):
    return mx.sym.contrib.DeformableConvolution(V("data"), V("offset"), name="dc", **kw)


@pytest.mark.parametrize("kw,shape", [
    (dict(kernel=(3, 3), pad=(1, 1), num_filter=6, num_group=2, num_deformable_group=2), (2, 4, 5, 6)),
    (dict(kernel=(3, 2), stride=(2, 2), dilate=(2, 2), pad=(1, 0), num_filter=4, no_bias=True), (1, 3, 8, 7)),
])
def test_deformable_convolution_against_numpy(kw, shape):
    sym = deform_conv(**kw)
    g, dg = kw.get("num_group", 1), kw.get("num_deformable_group", 1)
    kh, kwid = kw["kernel"]
    stride, pad, dil = kw.get("stride", (1, 1)), kw["pad"], kw.get("dilate", (1, 1))
    ho = (shape[2] + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (shape[3] + 2 * pad[1] - dil[1] * (kwid - 1) - 1) // stride[1] + 1
    args = {"data": randn(*shape), "offset": randn(shape[0], dg * kh * kwid * 2, ho, wo) * 1.5,
            "dc_weight": randn(kw["num_filter"], shape[1] // g, kh, kwid)}
    if not kw.get("no_bias"):
        args["dc_bias"] = randn(kw["num_filter"])
    (out,) = run(sym, **args)
    want = np_deform_conv(args["data"], args["offset"], args["dc_weight"], args.get("dc_bias"), kw["kernel"],
                          stride, pad, dil, g, dg)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_deformable_convolution_zero_offsets_is_convolution():
    x, w, b = randn(2, 4, 6, 5), randn(6, 2, 3, 3), randn(6)
    kw = dict(kernel=(3, 3), pad=(1, 1), stride=(2, 1), num_filter=6, num_group=2)
    (got,) = run(deform_conv(**kw), data=x, offset=np.zeros((2, 18, 3, 5), np.float32), dc_weight=w, dc_bias=b)
    (want,) = run(mx.sym.Convolution(V("data"), name="dc", **kw), data=x, dc_weight=w, dc_bias=b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_deformable_convolution_gradients():
    sym = deform_conv(kernel=(2, 2), num_filter=2, pad=(1, 0), stride=(2, 1))
    args = {"data": randn(1, 2, 4, 4), "offset": randn(1, 8, 3, 3) * 0.8,
            "dc_weight": randn(2, 2, 2, 2), "dc_bias": randn(2)}
    check_numeric_gradient(sym, args, ["data", "offset", "dc_weight", "dc_bias"], rtol=1e-4, atol=1e-6)


# -- ModulatedDeformableConvolution (DCNv2) ---------------------------------------------------
def modulated(**kw):
    return mx.sym.contrib.ModulatedDeformableConvolution(V("data"), V("offset"), V("mask"), name="mdc", **kw)


def conv_out(size, k, pad, stride=1, dilate=1):
    return (size + 2 * pad - dilate * (k - 1) - 1) // stride + 1


@pytest.mark.parametrize("kw,shape", [
    (dict(kernel=(3, 3), pad=(1, 1), num_filter=4, num_group=2, num_deformable_group=2), (2, 4, 5, 6)),
    (dict(kernel=(3, 2), stride=(2, 2), dilate=(2, 2), pad=(1, 0), num_filter=2, no_bias=True), (1, 3, 8, 7)),
])
def test_modulated_deformable_convolution_against_numpy(kw, shape):
    g, dg = kw.get("num_group", 1), kw.get("num_deformable_group", 1)
    (kh, kwid), pad = kw["kernel"], kw["pad"]
    stride, dil = kw.get("stride", (1, 1)), kw.get("dilate", (1, 1))
    ho, wo = (conv_out(shape[2 + a], kw["kernel"][a], pad[a], stride[a], dil[a]) for a in (0, 1))
    args = {"data": randn(*shape), "offset": randn(shape[0], dg * kh * kwid * 2, ho, wo) * 1.5,
            "mask": RNG.uniform(0, 1, (shape[0], dg * kh * kwid, ho, wo)).astype(np.float32),
            "mdc_weight": randn(kw["num_filter"], shape[1] // g, kh, kwid)}
    if not kw.get("no_bias"):
        args["mdc_bias"] = randn(kw["num_filter"])
    (out,) = run(modulated(**kw), **args)
    want = np_deform_conv(args["data"], args["offset"], args["mdc_weight"], args.get("mdc_bias"), kw["kernel"],
                          stride, pad, dil, g, dg, mask=args["mask"])
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_modulated_deformable_convolution_unit_mask_zero_offsets_is_convolution():
    """Zero offsets put the taps on the grid; the padding taps at -1 read 0 (DCNv1 would read them too)."""
    x, w, b = randn(2, 4, 6, 5), randn(6, 2, 3, 3), randn(6)
    kw = dict(kernel=(3, 3), pad=(1, 1), stride=(2, 1), num_filter=6, num_group=2)
    (got,) = run(modulated(**kw), data=x, offset=np.zeros((2, 18, 3, 5), np.float32),
                 mask=np.ones((2, 9, 3, 5), np.float32), mdc_weight=w, mdc_bias=b)
    (want,) = run(mx.sym.Convolution(V("data"), name="mdc", **kw), data=x, mdc_weight=w, mdc_bias=b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_modulated_deformable_convolution_gradients_match_mxnet():
    """MXNet 1.9.1 has no CPU backward for the op; its gradients of the same function built of
    BilinearSampler and Convolution (fixture modulated_deformable_convolution_grads, float64)."""
    with np.load(os.path.join(OPS_DIR, "modulated_deformable_convolution_grads.npz")) as ref:
        ref = dict(ref)
    kw = dict(kernel=(2, 2), pad=(1, 1), dilate=(2, 1), num_filter=4, num_group=2, num_deformable_group=2)
    names = {"data": "data", "offset": "offset", "mask": "mask", "mdc_weight": "weight", "mdc_bias": "bias"}
    args = {k: ref[f"input:{v}"] for k, v in names.items()}
    assert args["data"].dtype == np.float64
    ex = modulated(**kw).bind(mx.cpu(), args=args, args_grad={k: np.zeros_like(a) for k, a in args.items()})
    (out,) = ex.forward(is_train=True)
    np.testing.assert_allclose(out.asnumpy(), ref["train_out:0"], rtol=1e-10, atol=1e-12)
    ex.backward([ref["head_grad:0"]])
    for k, v in names.items():
        np.testing.assert_allclose(ex.grad_dict[k].asnumpy(), ref[f"grad:{v}"], rtol=1e-9, atol=1e-11, err_msg=k)


def test_modulated_deformable_convolution_numeric_gradient():
    """Data, offset and mask (weight and bias: a GEMM, and against MXNet above); taps leave the map."""
    sym = modulated(kernel=(2, 2), num_filter=2, pad=(1, 0), stride=(2, 1))
    args = {"data": randn(1, 2, 3, 3), "offset": randn(1, 8, 2, 2) * 0.8,
            "mask": RNG.uniform(0.1, 1, (1, 4, 2, 2)), "mdc_weight": randn(2, 2, 2, 2), "mdc_bias": randn(2)}
    check_numeric_gradient(sym, args, ["data", "offset", "mask"], rtol=1e-4, atol=1e-6)


# -- RROIAlign --------------------------------------------------------------------------------
def np_rroi_align(data, rois, pooled, scale, ratio=-1):
    _, c, h, w = data.shape
    ph, pw = pooled
    out = np.zeros((len(rois), c, ph, pw))
    for r, (b, cx, cy, rw, rh, deg) in enumerate(rois):
        cx, cy, rw, rh, t = cx * scale, cy * scale, max(rw * scale, 1.0), max(rh * scale, 1.0), deg * math.pi / 180
        gh = ratio if ratio > 0 else math.ceil(rh / ph)
        gw = ratio if ratio > 0 else math.ceil(rw / pw)
        for i, j in np.ndindex(ph, pw):
            total = np.zeros(c)
            for iy, ix in np.ndindex(gh, gw):
                yy = -rh / 2 + i * rh / ph + (iy + 0.5) * rh / ph / gh
                xx = -rw / 2 + j * rw / pw + (ix + 0.5) * rw / pw / gw
                x = xx * math.cos(t) + yy * math.sin(t) + cx
                y = yy * math.cos(t) - xx * math.sin(t) + cy
                if y < -1 or y > h or x < -1 or x > w:
                    continue
                y, x = min(max(y, 0), h - 1), min(max(x, 0), w - 1)
                y0, x0 = int(y), int(x)
                y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                ly, lx = y - y0, x - x0
                img = data[int(b)]
                total += ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1]
                          + ly * (1 - lx) * img[:, y1, x0] + ly * lx * img[:, y1, x1])
            out[r, :, i, j] = total / (gh * gw)
    return out


RROIS = np.array([[0, 4.0, 3.5, 6.0, 4.0, 30.0], [1, 8.0, 8.0, 10.0, 3.0, 135.0], [1, 1.0, 1.0, 20.0, 14.0, 90.0],
                  [0, 6.5, 2.0, 0.5, 0.3, 0.0], [0, 10.0, 12.0, 16.0, 16.0, 170.0], [1, 3.0, 5.0, 5.0, 9.0, -45.0]],
                 np.float32)


@pytest.mark.parametrize("pooled,scale,ratio", [((2, 3), 1.0, -1), ((3, 2), 0.5, 2), ((1, 1), 1.0, -1)])
def test_rroi_align_against_numpy(pooled, scale, ratio):
    data = randn(2, 3, 8, 9)
    sym = mx.sym.contrib.RROIAlign(V("data"), V("rois"), pooled_size=pooled, spatial_scale=scale,
                                   sampling_ratio=ratio)
    (out,) = run(sym, data=data, rois=RROIS)
    np.testing.assert_allclose(out, np_rroi_align(data, RROIS, pooled, scale, ratio), rtol=1e-4, atol=1e-5)


def test_rroi_align_has_no_gradient():
    sym = mx.sym.contrib.RROIAlign(V("data"), V("rois"), pooled_size=(2, 2), spatial_scale=1.0)
    g = grads(sym, ["data", "rois"], [np.ones((6, 3, 2, 2), np.float32)], data=randn(2, 3, 8, 9), rois=RROIS)
    assert not g["data"].any() and not g["rois"].any()


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("build,shapes,message", [
    (lambda: proposal(**KW, name="p"), {"cls_prob": (1, 12, 4, 4), "bbox_pred": (1, 24, 4, 4), "im_info": (2, 3)},
     "im_info must be (batch, 3)"),
    (lambda: proposal(**KW, name="p"), {"cls_prob": (2, 12, 4, 4)}, "Proposal takes one image"),
    (lambda: proposal(True, **KW, name="p"), {"cls_prob": (1, 10, 4, 4)}, "make 6 anchors per position"),
    (lambda: proposal(True, **KW, name="p"), {"cls_prob": (1, 11, 4, 4)}, "2 * num_anchors"),
    (lambda: proposal(True, **KW, name="p"), {"cls_prob": (1, 12, 4, 4), "bbox_pred": (1, 24, 4, 5)},
     "bbox_pred must be"),
    (lambda: mx.sym.contrib.PSROIPooling(V("d"), V("r"), spatial_scale=1, output_dim=3, pooled_size=2, name="ps"),
     {"d": (1, 11, 5, 5), "r": (2, 5)}, "11 channels"),
    (lambda: mx.sym.contrib.PSROIPooling(V("d"), V("r"), spatial_scale=1, output_dim=1, pooled_size=2, name="ps"),
     {"d": (1, 4, 5, 5), "r": (2, 4)}, "rois must be (num_rois, 5)"),
    (lambda: deform_psroi(spatial_scale=1, output_dim=3, group_size=1, pooled_size=2, name="dp"),
     {"data": (1, 3, 5, 5), "rois": (2, 5), "trans": (2, 4, 2, 2)}, "multiple of the 2 classes"),
    (lambda: deform_psroi(spatial_scale=1, output_dim=2, group_size=1, pooled_size=2, name="dp"),
     {"data": (1, 2, 5, 5), "rois": (2, 5), "trans": (3, 2, 2, 2)}, "trans must be (num_rois=2"),
    (lambda: deform_conv(kernel=(3, 3), num_filter=2), {"data": (1, 2, 5, 5), "offset": (1, 18, 5, 5)},
     "offset must be"),
    (lambda: deform_conv(kernel=(3,), num_filter=2), {"data": (1, 2, 5, 5), "offset": (1, 6, 3, 3)}, "must be 2-D"),
    (lambda: deform_conv(kernel=(3, 3), num_filter=3, num_group=2), {"data": (1, 4, 5, 5), "offset": (1, 18, 3, 3)},
     "num_group=2 must divide"),
    (lambda: mx.sym.contrib.RROIAlign(V("d"), V("r"), pooled_size=(2, 2), spatial_scale=1.0, name="rr"),
     {"d": (1, 2, 5, 5), "r": (3, 5)}, "rois must be (num_rois, 6)"),
    (lambda: modulated(kernel=(3, 3), num_filter=2, pad=(1, 1)),
     {"data": (1, 2, 5, 5), "offset": (1, 18, 5, 5), "mask": (1, 18, 5, 5)}, "mask must be (batch"),
    (lambda: modulated(kernel=(3, 3), num_filter=2),
     {"data": (1, 2, 5, 5), "offset": (1, 18, 5, 5), "mask": (1, 9, 3, 3)}, "offset must be"),
    (lambda: modulated(kernel=(1, 1), num_filter=2, im2col_step=2),
     {"data": (3, 2, 4, 4), "offset": (3, 2, 4, 4), "mask": (3, 1, 4, 4)}, "batch (3) must be at most im2col_step (2)"),
    (lambda: modulated(kernel=(1, 1), num_filter=3, num_deformable_group=2),
     {"data": (1, 2, 4, 4), "offset": (1, 4, 4, 4), "mask": (1, 2, 4, 4)}, "num_deformable_group=2 must divide"),
])
def test_bad_shapes_name_the_node(build, shapes, message):
    sym = build()
    with pytest.raises(ShapeError) as err:
        sym.infer_shape(**shapes)
    node = sym.list_outputs()[0].rsplit("_output", 1)[0]
    assert message in str(err.value) and f"node '{node}'" in str(err.value), str(err.value)


@pytest.mark.parametrize("make,attr", [
    (lambda: mx.sym.contrib.PSROIPooling(V("d"), V("r"), spatial_scale=1.5, output_dim=1, pooled_size=2),
     "spatial_scale"),
    (lambda: deform_psroi(spatial_scale=0.5, output_dim=1, group_size=1, pooled_size=2, trans_std=2.0), "trans_std"),
    (lambda: mx.sym.contrib.RROIAlign(V("d"), V("r"), pooled_size=(2, 0), spatial_scale=1.0), "pooled_size"),
    (lambda: deform_conv(kernel=(3, 3), num_filter=0), "num_filter"),
    (lambda: modulated(kernel=(3, 3), num_filter=2, im2col_step=0), "im2col_step"),
    (lambda: proposal(threshold="high"), "threshold"),
])
def test_bad_attribute_values_are_refused(make, attr):
    with pytest.raises(AttributeValueError) as err:
        make()
    assert f"attribute '{attr}'" in str(err.value) and "node '" in str(err.value)


def test_bad_proposal_attributes_name_the_node():
    sym = proposal(True, **KW, rpn_post_nms_top_n=0, name="rpn")
    with pytest.raises(AttributeValueError) as err:
        sym.infer_shape(cls_prob=(1, 12, 4, 4))
    assert "rpn_post_nms_top_n must be positive" in str(err.value) and "node 'rpn'" in str(err.value)
