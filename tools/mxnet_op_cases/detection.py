"""Cases for the box and detection ops (xgraph/ops/detection.py)."""
import mxnet as mx
import numpy as np

from . import Spec, case


def _f32(a):
    return np.asarray(a, np.float32)


def _corners(rng, shape, lo=0.0, hi=0.6, wmin=0.1, wmax=0.4):
    """Random valid corner boxes (..., 4) inside about [0, 1]."""
    xy = rng.uniform(lo, hi, shape + (2,))
    wh = rng.uniform(wmin, wmax, shape + (2,))
    return _f32(np.concatenate([xy, xy + wh], -1))


def _detections(rng, shape, classes=3):
    """Rows [class id, score, xmin, ymin, xmax, ymax] with distinct scores, boxes clustered to overlap."""
    ids = rng.integers(0, classes, shape + (1,)).astype(np.float32)
    scores = rng.permutation(np.prod(shape)).reshape(shape + (1,)) / np.prod(shape) + 0.01
    return _f32(np.concatenate([ids, scores, _corners(rng, shape, 0.1, 0.4, 0.2, 0.4)], -1))


@case
def box_iou_formats(rng):
    a, b = mx.sym.var("lhs"), mx.sym.var("rhs")
    outs = [mx.sym.contrib.box_iou(a, b), mx.sym.contrib.box_iou(a, b, format="center")]
    return Spec(mx.sym.Group(outs), {"lhs": _corners(rng, (2, 3)), "rhs": _corners(rng, (5,))[None]})


@case
def box_nms_configs(rng):
    x = mx.sym.var("data")
    nms = mx.sym.contrib.box_nms
    outs = [nms(x),
            nms(x, overlap_thresh=0.3, id_index=0, background_id=0, topk=5, valid_thresh=0.2),
            nms(x, overlap_thresh=0.3, id_index=0, force_suppress=True),
            nms(x, overlap_thresh=0.4, id_index=0, in_format="center", out_format="corner"),
            nms(x, overlap_thresh=0.2, out_format="center", topk=4),
            nms(x, topk=0)]
    return Spec(mx.sym.Group(outs), {"data": _detections(rng, (2, 3, 8))},
                notes=["batch dims (2, 3); id_index -1 and 0, background_id, force_suppress, topk, formats"])


@case
def box_nms_layout(rng):
    """Coordinates first, score and class id after them; the alias name."""
    det = _detections(rng, (2, 10))
    data = _f32(np.concatenate([det[..., 2:], det[..., 1:2], det[..., :1], det[..., 1:2] * 2], -1))
    sym = mx.sym.contrib.box_non_maximum_suppression(mx.sym.var("data"), coord_start=0, score_index=4,
                                                     id_index=5, overlap_thresh=0.25)
    return Spec(sym, {"data": data})


@case
def box_encode(rng):
    b, n, m = 2, 6, 3
    syms = [mx.sym.var(k) for k in ("samples", "matches", "anchors", "refs", "means", "stds")]
    inputs = {"samples": _f32(rng.choice([-1, 0, 1], (b, n))),
              "matches": _f32(rng.integers(0, m, (b, n))),
              "anchors": _corners(rng, (b, n)), "refs": _corners(rng, (b, m)),
              "means": _f32([0.1, -0.1, 0.0, 0.05]), "stds": _f32([0.1, 0.1, 0.2, 0.2])}
    return Spec(mx.sym.Group(list(mx.sym.contrib.box_encode(*syms))), inputs, rtol=1e-5, atol=1e-5)


@case
def box_decode_formats(rng):
    x, a = mx.sym.var("data"), mx.sym.var("anchors")
    outs = [mx.sym.contrib.box_decode(x, a, format="corner"),
            mx.sym.contrib.box_decode(x, a, std0=0.1, std1=0.1, std2=0.2, std3=0.2, format="corner"),
            mx.sym.contrib.box_decode(x, a, clip=0.5),
            mx.sym.contrib.box_decode(x, a, std2=2.0, std3=2.0, clip=0.3, format="corner")]
    return Spec(mx.sym.Group(outs), {"data": _f32(rng.standard_normal((2, 5, 4)) * 0.5),
                                     "anchors": _corners(rng, (1, 5))})


@case
def bipartite_matching(rng):
    s = mx.sym.var("data")
    bm = mx.sym.contrib.bipartite_matching
    outs = [*bm(s, threshold=0.2), *bm(s, threshold=0.7, is_ascend=True), *bm(s, threshold=0.05, topk=1)]
    scores = _f32(rng.permutation(2 * 3 * 5 * 4).reshape(2, 3, 5, 4) / 120.0)
    return Spec(mx.sym.Group(outs), {"data": scores}, notes=["topk=1 gives 2 matches in MXNet"])


@case
def multibox_prior(rng):
    x = mx.sym.var("data")
    prior = mx.sym.contrib.MultiBoxPrior
    outs = [prior(x), prior(x, sizes=(0.5, 0.25, 0.1), ratios=(1, 2, 0.5)),
            prior(x, sizes=(0.9,), ratios=(1, 3), clip=True),
            prior(x, sizes=(0.3,), steps=(0.2, 0.25), offsets=(0.2, 0.7))]
    return Spec(mx.sym.Group(outs), {"data": _f32(rng.standard_normal((1, 2, 3, 4)))})


def _target_inputs(rng, num_labels=4, valid=(3, 1)):
    anchors = mx.nd.contrib.MultiBoxPrior(mx.nd.zeros((1, 1, 4, 4)), sizes=(0.3, 0.6), ratios=(1, 2)).asnumpy()
    labels = -np.ones((len(valid), num_labels, 5), np.float32)
    for i, v in enumerate(valid):
        labels[i, :v, 0] = rng.integers(0, 3, v)
        labels[i, :v, 1:] = _corners(rng, (v,), 0.0, 0.6, 0.2, 0.4)
    cls = rng.standard_normal((len(valid), 4, anchors.shape[1]))
    return {"anchor": _f32(anchors), "label": labels, "cls_pred": _f32(cls)}


@case
def multibox_target(rng):
    a, lb, c = (mx.sym.var(k) for k in ("anchor", "label", "cls_pred"))
    t = mx.sym.contrib.MultiBoxTarget
    outs = [*t(a, lb, c), *t(a, lb, c, overlap_threshold=0.3, negative_mining_ratio=3, negative_mining_thresh=0.4),
            *t(a, lb, c, overlap_threshold=0, ignore_label=-2, variances=(0.2, 0.2, 0.5, 0.5))]
    return Spec(mx.sym.Group(outs), _target_inputs(rng), no_grad=["anchor", "label"], rtol=1e-5, atol=1e-5,
                notes=["MXNet's backward writes only cls_pred's (zero) gradient"])


@case
def multibox_target_no_labels(rng):
    a, lb, c = (mx.sym.var(k) for k in ("anchor", "label", "cls_pred"))
    sym = mx.sym.Group(list(mx.sym.contrib.MultiBoxTarget(a, lb, c, negative_mining_ratio=2)))
    return Spec(sym, _target_inputs(rng, 3, (0, 2)), train=False)


def _detection_inputs(rng, batch=2, classes=4):
    anchors = mx.nd.contrib.MultiBoxPrior(mx.nd.zeros((1, 1, 3, 3)), sizes=(0.4, 0.7), ratios=(1, 2)).asnumpy()
    n = anchors.shape[1]
    logits = rng.standard_normal((batch, classes, n)) * 2
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return {"cls_prob": _f32(prob), "loc_pred": _f32(rng.standard_normal((batch, n * 4)) * 0.3),
            "anchor": _f32(anchors)}


@case
def multibox_detection(rng):
    c, lp, a = (mx.sym.var(k) for k in ("cls_prob", "loc_pred", "anchor"))
    det = mx.sym.contrib.MultiBoxDetection
    outs = [det(c, lp, a), det(c, lp, a, force_suppress=True, nms_threshold=0.3),
            det(c, lp, a, nms_topk=6, threshold=0.2), det(c, lp, a, nms_threshold=0, clip=False),
            det(c, lp, a, variances=(0.2, 0.2, 0.3, 0.3), nms_threshold=0.45, threshold=0.3)]
    return Spec(mx.sym.Group(outs), _detection_inputs(rng), rtol=1e-5, atol=1e-5)


@case
def box_nms_ties_empty_degenerate(rng):
    """Tied scores (stable order), an item with no valid box, degenerate boxes (zero or negative size)."""
    data = _detections(rng, (3, 6))
    data[0, :, 1] = [0.5, 0.7, 0.5, 0.7, 0.5, 0.2]
    data[0, 3, 2:] = data[0, 1, 2:]                      # a tied duplicate of box 1
    data[1, :, 1] = 0.05                                 # below valid_thresh
    data[2, 0, 2:] = [0.3, 0.3, 0.3, 0.5]                # zero width
    data[2, 1, 2:] = [0.5, 0.5, 0.3, 0.3]                # negative width and height
    data[2, 2, 2:] = data[2, 0, 2:]
    x = mx.sym.var("data")
    outs = [mx.sym.contrib.box_nms(x, overlap_thresh=0.5, valid_thresh=0.1),
            mx.sym.contrib.box_nms(x, overlap_thresh=0.0, valid_thresh=0.1, id_index=0)]
    return Spec(mx.sym.Group(outs), {"data": data})


@case
def multibox_detection_ties(rng):
    inputs = _detection_inputs(rng, batch=1, classes=3)
    inputs["cls_prob"] = _f32(np.round(inputs["cls_prob"] * 4) / 4)   # many tied scores
    c, lp, a = (mx.sym.var(k) for k in ("cls_prob", "loc_pred", "anchor"))
    det = mx.sym.contrib.MultiBoxDetection
    outs = [det(c, lp, a, threshold=0.2), det(c, lp, a, threshold=0.2, force_suppress=True, nms_topk=4)]
    return Spec(mx.sym.Group(outs), inputs, train=False)
