"""Region proposal ops of Faster R-CNN's RPN: ``_contrib_Proposal`` and ``_contrib_MultiProposal``.

MXNet 1.9.1's semantics: anchors from ``scales`` x ``ratios`` around a ``feature_stride`` cell,
shifted over the (H, W) map (row-major, anchors fastest); the foreground half of ``cls_prob`` as
scores; ``bbox_pred`` decoded (center/log-size deltas, or corner deltas with ``iou_loss``) and
clipped to the image; positions beyond ``im_info``'s real size and boxes smaller than
``rpn_min_size * scale`` get score -1 (the small ones also grow by ``min_size / 2`` on each side,
as MXNet's kernel does); a stable descending sort, the best ``rpn_pre_nms_top_n`` (every box
takes part in suppression, score -1 or not), greedy NMS with MXNet's "+1" pixel areas, and the
first ``rpn_post_nms_top_n`` survivors. When fewer survive, MXNet fills the remaining rows by
cycling through the kept ones (row i repeats kept box ``i % kept``); so does this. Output rows are
``[batch_index, x1, y1, x2, y2]`` and, with ``output_score``, a visible (rows, 1) score output.
Every input gets a zero gradient, as in MXNet. Greedy suppression is
:func:`xgraph.ops.detection.greedy_nms`, stopped after ``rpn_post_nms_top_n`` kept boxes.

    >>> import xgraph as mx
    >>> p = mx.sym.contrib.MultiProposal(mx.sym.var('c'), mx.sym.var('b'), mx.sym.var('i'),
    ...                                  rpn_post_nms_top_n=10, scales=(8,), ratios=(1,))
    >>> p.infer_shape(c=(2, 2, 5, 5))[1]
    [(20, 5)]
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .attrs import Bool, Float, FloatTuple, Int, attr
from .common import fail
from .detection import _bad_attr, greedy_nms
from .registry import Op, register
from .roi import exact_div

_F = np.float32


def base_anchors(stride: int, ratios, scales) -> np.ndarray:
    """(len(ratios) * len(scales), 4) anchors around the first cell, ratio-major, in float32.

        >>> base_anchors(16, (1.0,), (1.0,)).tolist()
        [[0.0, 0.0, 15.0, 15.0]]
    """
    w = h = _F(stride - 1.0) + _F(1)
    ctr = _F(0.5 * (float(w) - 1.0))                    # MXNet's mixed float/double arithmetic
    out = []
    for r in ratios:
        for s in scales:
            r, s = _F(r), _F(s)
            new_w = np.floor(np.sqrt(np.floor(w * h / r)) + _F(0.5)) * s
            new_h = np.floor(new_w / s * r + _F(0.5)) * s
            hw, hh = _F(0.5) * (new_w - _F(1)), _F(0.5) * (new_h - _F(1))
            out.append([ctr - hw, ctr - hh, ctr + hw, ctr + hh])
    return np.asarray(out, _F)


def _anchors(p, a: int, h: int, w: int) -> np.ndarray:
    """(H * W * A, 4) anchors shifted over the map, index ``(y * W + x) * A + a``."""
    fs = p["feature_stride"]
    base = base_anchors(fs, p["ratios"], p["scales"])
    if base.shape[0] != a:
        fail(f"cls_prob has {2 * a} channels = 2 x {a} anchors, but scales {tuple(p['scales'])} x ratios "
             f"{tuple(p['ratios'])} make {base.shape[0]} anchors per position")
    ys, xs = np.meshgrid(np.arange(h) * fs, np.arange(w) * fs, indexing="ij")
    shift = np.stack([xs, ys, xs, ys], -1).astype(_F)[:, :, None, :]
    return (base[None, None] + shift).reshape(-1, 4)


def _decode(anchors: np.ndarray, deltas, iou_loss: bool):
    """Boxes (K, 4) from anchors (K, 4) and deltas (K, 4), unclipped."""
    if iou_loss:
        return anchors + deltas
    a64 = anchors.astype(np.float64)
    width = (a64[:, 2] - a64[:, 0] + 1.0).astype(_F)
    height = (a64[:, 3] - a64[:, 1] + 1.0).astype(_F)
    cx = (a64[:, 0] + 0.5 * (width - 1.0)).astype(_F)
    cy = (a64[:, 1] + 0.5 * (height - 1.0)).astype(_F)
    px, py = deltas[:, 0] * width + cx, deltas[:, 1] * height + cy
    hw, hh = 0.5 * (jnp.exp(deltas[:, 2]) * width - 1), 0.5 * (jnp.exp(deltas[:, 3]) * height - 1)
    return jnp.stack([px - hw, py - hh, px + hw, py + hh], -1)


def _suppresses(thresh: float):
    def rule(box, boxes):
        area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
        areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
        iw = jnp.maximum(jnp.minimum(box[2], boxes[:, 2]) - jnp.maximum(box[0], boxes[:, 0]) + 1, 0)
        ih = jnp.maximum(jnp.minimum(box[3], boxes[:, 3]) - jnp.maximum(box[1], boxes[:, 1]) + 1, 0)
        inter = iw * ih
        return inter / (area + areas - inter) > thresh
    return rule


def _propose_one(p, anchors: np.ndarray, a: int, h: int, w: int, cls, deltas, info):
    """Proposals of one image: rows (post, 4) and scores (post,)."""
    fs = p["feature_stride"]
    score = jnp.transpose(cls[a:], (1, 2, 0)).reshape(-1)                        # (H*W*A,)
    d = jnp.transpose(deltas.reshape(a, 4, h, w), (2, 3, 0, 1)).reshape(-1, 4)    # (H*W*A, 4)
    boxes = _decode(anchors, d, p["iou_loss"])
    im_h, im_w = info[0], info[1]
    lim = jnp.stack([im_w, im_h, im_w, im_h]) - 1
    boxes = jnp.maximum(jnp.minimum(boxes, lim), 0)
    real_h = exact_div(im_h, jnp.float32(fs)).astype(jnp.int32)
    real_w = exact_div(im_w, jnp.float32(fs)).astype(jnp.int32)
    ys = np.repeat(np.arange(h), w * a)
    xs = np.tile(np.repeat(np.arange(w), a), h)
    score = jnp.where((ys >= real_h) | (xs >= real_w), -1, score)
    min_size = jnp.float32(p["rpn_min_size"]) * info[2]
    small = ((boxes[:, 2] - boxes[:, 0] + 1) < min_size) | ((boxes[:, 3] - boxes[:, 1] + 1) < min_size)
    grow = jnp.stack([-min_size, -min_size, min_size, min_size]) / 2
    boxes = jnp.where(small[:, None], boxes + grow, boxes)
    score = jnp.where(small, -1, score)
    count = score.shape[0]
    pre = min(p["rpn_pre_nms_top_n"] if p["rpn_pre_nms_top_n"] > 0 else count, count)
    post_kept = min(p["rpn_post_nms_top_n"], pre)
    order = jnp.argsort(-score, stable=True)[:pre]
    boxes, score = boxes[order], score[order]
    alive = greedy_nms(boxes, jnp.ones(pre, bool), _suppresses(p["threshold"]), max_keep=post_kept)
    keep = jnp.argsort(~alive, stable=True)[:max(post_kept, 1)]
    kept = jnp.clip(jnp.sum(alive), 1, post_kept)
    rows = keep[jnp.arange(p["rpn_post_nms_top_n"]) % kept]   # MXNet cycles through the kept boxes
    return boxes[rows], score[rows]


def _check(p) -> None:
    for name in ("rpn_post_nms_top_n", "feature_stride"):
        if p[name] < 1:
            _bad_attr(f"{name} must be positive, got {p[name]}")
    if not p["scales"] or not p["ratios"]:
        _bad_attr(f"scales {tuple(p['scales'])} and ratios {tuple(p['ratios'])} must not be empty")


def _proposal_infer(p, shapes):
    out = list(shapes)
    cls = shapes[0]
    if cls is not None and len(cls) == 4:
        out[1] = out[1] or (cls[0], cls[1] * 2, cls[2], cls[3])
        out[2] = out[2] or (cls[0], 3)
    return out


def _lower(single: bool):
    def lower(ctx, p, cls_prob, bbox_pred, im_info):
        _check(p)
        if cls_prob.ndim != 4 or cls_prob.shape[1] % 2:
            fail(f"cls_prob must be (batch, 2 * num_anchors, height, width), got {tuple(cls_prob.shape)}")
        n, c2, h, w = cls_prob.shape
        a = c2 // 2
        if single and n != 1:
            fail(f"Proposal takes one image (batch 1; MultiProposal takes more), got cls_prob {tuple(cls_prob.shape)}")
        if tuple(bbox_pred.shape) != (n, 4 * a, h, w):
            fail(f"bbox_pred must be (batch, 4 * num_anchors, height, width) = {(n, 4 * a, h, w)}, "
                 f"got {tuple(bbox_pred.shape)}")
        if tuple(im_info.shape) != (n, 3):
            fail(f"im_info must be (batch, 3) rows of [height, width, scale] = {(n, 3)}, got {tuple(im_info.shape)}")
        dtype = cls_prob.dtype if jnp.issubdtype(cls_prob.dtype, jnp.floating) else jnp.float32
        cls, deltas, info = (lax.stop_gradient(x).astype(jnp.float32) for x in (cls_prob, bbox_pred, im_info))
        anchors = _anchors(p, a, h, w)
        boxes, score = jax.vmap(lambda c, d, i: _propose_one(p, anchors, a, h, w, c, d, i))(cls, deltas, info)
        post = p["rpn_post_nms_top_n"]
        index = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32)[:, None, None], (n, post, 1))
        rois = jnp.concatenate([index, boxes], -1).reshape(n * post, 5)
        return rois.astype(dtype), score.reshape(n * post, 1).astype(dtype)
    return lower


_ATTRS = (
    attr("rpn_pre_nms_top_n", Int(), 6000, "boxes kept (best first) before NMS; <= 0: all"),
    attr("rpn_post_nms_top_n", Int(), 300, "boxes kept after NMS: the number of output rows per image"),
    attr("threshold", Float(), 0.7, "NMS: a box overlapping a kept one by more than this IoU is suppressed"),
    attr("rpn_min_size", Int(), 16, "boxes narrower or lower than this (times im_info's scale) get score -1"),
    attr("scales", FloatTuple(), (4.0, 8.0, 16.0, 32.0), "anchor scales (multiples of feature_stride)"),
    attr("ratios", FloatTuple(), (0.5, 1.0, 2.0), "anchor aspect ratios (height / width)"),
    attr("feature_stride", Int(), 16, "image pixels per feature-map cell"),
    attr("output_score", Bool(), False, "also show the (rows, 1) scores as a second output"),
    attr("iou_loss", Bool(), False, "bbox_pred holds corner deltas (x1, y1, x2, y2) instead of center/size"),
)

for _name, _single, _rows in (("_contrib_Proposal", True, "(rpn_post_nms_top_n, 5)"),
                              ("_contrib_MultiProposal", False, "(batch * rpn_post_nms_top_n, 5)")):
    register(Op(
        _name, _lower(_single), inputs=("cls_prob", "bbox_pred", "im_info"), attrs=_ATTRS,
        family="detection", differentiable=False, num_outputs=2,
        num_visible_outputs=lambda p: 2 if p["output_score"] else 1,
        output_names=lambda p: ["output", "score"] if p["output_score"] else ["output"],
        infer_inputs=_proposal_infer,
        doc=f"RPN proposals from cls_prob (N, 2A, H, W), bbox_pred (N, 4A, H, W) and im_info (N, 3): "
            f"{_rows} rows [batch_index, x1, y1, x2, y2] after NMS, padded by repeating the kept "
            f"boxes; with output_score also their scores; zero gradients (MXNet)."
            + (" One image (batch 1)." if _single else "")))
