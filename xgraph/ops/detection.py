"""Box and detection operators: IoU, non-maximum suppression, box coding, matching, SSD's MultiBox ops.

MXNet's ``_contrib_box_iou``, ``_contrib_box_nms`` (``_contrib_box_non_maximum_suppression``),
``_contrib_box_encode``, ``_contrib_box_decode``, ``_contrib_bipartite_matching`` and
``_contrib_MultiBoxPrior`` / ``_contrib_MultiBoxTarget`` / ``_contrib_MultiBoxDetection``
(also as ``MultiBoxPrior`` ... and MXNet's ``_npx_multibox_*``).  Every output has a size fixed
by the input shapes and attributes: what MXNet removes (suppressed or invalid boxes) becomes rows
of -1, so each op stays one static XLA program.  Greedy suppression and matching run as a
``lax.fori_loop`` over a static number of steps; batches are ``vmap``-ed.

One suppression loop (:func:`greedy_nms`) and one intersection/union rule (:func:`inter_union`)
serve box_nms and MultiBoxDetection; each op keeps MXNet's own IoU division and comparison.
Gradients are MXNet's: box_nms passes the output gradient back to the input rows it kept, every
other op here has a zero gradient.

    >>> import xgraph as mx
    >>> mx.sym.contrib.box_nms(mx.sym.var('x')).infer_shape(x=(2, 10, 6))[1]
    [(2, 10, 6)]
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import AttributeValueError
from .attrs import Bool, Enum, Float, FloatTuple, Int, attr
from .common import as_float, fail
from .registry import Op, register

FORMATS = ("corner", "center")


def _bad_attr(message: str) -> None:
    """Raise an AttributeValueError; inference and lowering add the node and op to the message."""
    raise AttributeValueError(message)


# -- geometry ---------------------------------------------------------------------
def _extent(b, fmt: str):
    """(x0, y0, x1, y1, width, height) of boxes ``b`` (..., 4) in ``fmt``."""
    if fmt == "corner":
        return b[..., 0], b[..., 1], b[..., 2], b[..., 3], b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    hw, hh = b[..., 2] / 2, b[..., 3] / 2
    return b[..., 0] - hw, b[..., 1] - hh, b[..., 0] + hw, b[..., 1] + hh, b[..., 2], b[..., 3]


def inter_union(a, b, fmt: str = "corner", clamp_area: bool = True):
    """Intersection and union areas of boxes ``a`` and ``b`` (..., 4), broadcast against each other.

    ``clamp_area``: a box of negative width or height has area 0 (box_iou, box_nms); without it
    areas are taken as they come (MultiBoxTarget, MultiBoxDetection).
    """
    ax0, ay0, ax1, ay1, aw, ah = _extent(a, fmt)
    bx0, by0, bx1, by1, bw, bh = _extent(b, fmt)
    iw = jnp.maximum(jnp.minimum(ax1, bx1) - jnp.maximum(ax0, bx0), 0)
    ih = jnp.maximum(jnp.minimum(ay1, by1) - jnp.maximum(ay0, by0), 0)
    inter = iw * ih

    def area(w, h):
        return jnp.where((w < 0) | (h < 0), 0, w * h) if clamp_area else w * h
    return inter, area(aw, ah) + area(bw, bh) - inter


def box_iou(a, b, fmt: str = "corner"):
    """IoU of broadcast boxes as MXNet's box_iou: 0 where they do not intersect."""
    inter, union = inter_union(a, b, fmt)
    return jnp.where(inter <= 0, 0, inter / jnp.where(inter <= 0, 1, union))


def convert_format(b, src: str, dst: str):
    """Boxes (..., 4) from ``src`` to ``dst`` format."""
    if src == dst:
        return b
    x0, y0, x1, y1 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if dst == "center":
        return jnp.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=-1)
    hw, hh = x1 / 2, y1 / 2
    return jnp.stack([x0 - hw, y0 - hh, x0 + hw, y0 + hh], axis=-1)


# -- shared machinery ---------------------------------------------------------------
def greedy_nms(boxes, alive, suppresses: Callable, classes=None, max_keep: int | None = None):
    """Greedy suppression over boxes (K, 4) sorted by descending score; the alive mask (K,) after it.

    Box i, while alive, removes every later alive box j with ``suppresses(boxes[i], boxes)[j]``
    (and, given ``classes`` (K,), only boxes of its own class). ``alive`` must start as a prefix
    (the candidates first): the loop stops after the last candidate, so a few valid boxes
    among many cost a few steps. With ``max_keep`` it also stops once that many boxes are kept
    (RPN proposals); boxes after the last kept one are then left unexamined, so callers take the
    first ``max_keep`` alive entries.
    """
    later = jnp.arange(boxes.shape[0])

    def step(i, alive):
        hit = suppresses(boxes[i], boxes) & (later > i) & alive[i]
        if classes is not None:
            hit = hit & (classes == classes[i])
        return alive & ~hit
    count = jnp.sum(alive, dtype=jnp.int32)
    if max_keep is None:
        return lax.fori_loop(0, count, step, alive)

    def more(state):
        i, kept, _ = state
        return (i < count) & (kept < max_keep)

    def body(state):
        i, kept, alive = state
        return i + 1, kept + alive[i].astype(jnp.int32), step(i, alive)
    return lax.while_loop(more, body, (jnp.int32(0), jnp.int32(0), alive))[2]


def _descending(score, valid):
    """Indices that put the valid entries first, by descending score, ties in input order."""
    return jnp.argsort(jnp.where(valid, -score, jnp.inf), stable=True)


def _compact(mask):
    """(indices of the True entries first, in order, then the others; the number of True entries)."""
    return jnp.argsort(~mask, stable=True), jnp.sum(mask)


def _by_batch(fn: Callable, *xs):
    """``vmap`` ``fn`` over the leading axis of each of ``xs``."""
    return jax.vmap(fn)(*xs)


@jax.custom_vjp
def _values_of(x, y):
    """``y``'s values with the gradient of ``x`` (MXNet copies gradients past a format conversion)."""
    return y


_values_of.defvjp(lambda x, y: (y, None), lambda _, g: (g, jnp.zeros_like(g)))


def _zero_grad(*xs):
    return tuple(lax.stop_gradient(as_float(x)) for x in xs)


def _format_attr(name: str, default: str, doc: str):
    return attr(name, Enum(FORMATS), default, doc + ": 'corner' [xmin, ymin, xmax, ymax] or "
                                                   "'center' [x, y, width, height]")


# -- box_iou --------------------------------------------------------------------------
def _box_shape(x, what: str) -> None:
    if x.ndim < 2 or x.shape[-1] != 4:
        fail(f"{what} must be (..., 4) boxes with at least 2 dimensions, got shape {tuple(x.shape)}")


def _iou_lower(ctx, p, lhs, rhs):
    _box_shape(lhs, "lhs")
    _box_shape(rhs, "rhs")
    lhs, rhs = _zero_grad(lhs, rhs)
    out = box_iou(lhs.reshape(-1, 1, 4), rhs.reshape(1, -1, 4).astype(lhs.dtype), p["format"])
    return out.reshape(lhs.shape[:-1] + rhs.shape[:-1])


register(Op(
    "_contrib_box_iou", _iou_lower, inputs=("lhs", "rhs"), family="detection", differentiable=False,
    attrs=(_format_attr("format", "corner", "the box encoding"),),
    doc="Intersection over union of every lhs box (a1, .., an, 4) with every rhs box (b1, .., bm, 4): "
        "an (a1, .., an, b1, .., bm) array; zero gradient (MXNet)."))


# -- box_nms --------------------------------------------------------------------------
def _nms_check(p, width: int) -> None:
    cs, si, ii = p["coord_start"], p["score_index"], p["id_index"]
    need = 6 if ii >= 0 else 5
    if width < need:
        fail(f"box_nms: each box needs at least {need} elements (score, 4 coordinates"
             f"{', class id' if ii >= 0 else ''}), got a last dimension of {width}")
    if not 0 <= si < width:
        fail(f"box_nms: score_index {si} is out of range for boxes of {width} elements")
    if not 0 <= cs or cs + 3 >= width:
        fail(f"box_nms: coordinates {cs}..{cs + 3} (coord_start={cs}) are out of range for boxes of "
             f"{width} elements")
    if cs <= si <= cs + 3:
        _bad_attr(f"box_nms: score_index {si} overlaps the coordinates {cs}..{cs + 3}")
    if ii >= 0:
        if ii >= width:
            fail(f"box_nms: id_index {ii} is out of range for boxes of {width} elements")
        if cs <= ii <= cs + 3 or ii == si:
            _bad_attr(f"box_nms: id_index {ii} overlaps the score_index {si} or the coordinates "
                      f"{cs}..{cs + 3}")


def _nms_sources(x, p, k: int):
    """For one batch item (N, W): the input row each output row copies, or -1 (MXNet's layout)."""
    n = x.shape[0]
    cs, ii = p["coord_start"], p["id_index"]
    score = x[:, p["score_index"]]
    valid = score > p["valid_thresh"]
    if ii >= 0:
        valid = valid & (x[:, ii] != p["background_id"])
    order = _descending(score, valid)[:k]
    cand = x[order]
    classes = None if ii < 0 or p["force_suppress"] else cand[:, ii].astype(jnp.int32)
    thresh = p["overlap_thresh"]
    fmt = p["in_format"]

    def suppresses(box, boxes):
        inter, union = inter_union(box, boxes, fmt)
        return inter / union > thresh
    alive = greedy_nms(cand[:, cs:cs + 4], valid[order], suppresses, classes)
    first, count = _compact(alive)
    src = jnp.where(jnp.arange(k) < count, order[first], -1)
    return jnp.concatenate([src, jnp.full((n - k,), -1, src.dtype)])


def _nms_lower(ctx, p, data):
    data = as_float(data)
    if data.ndim < 2:
        fail(f"box_nms: data must be (..., num_boxes, box_width), got shape {tuple(data.shape)}")
    _nms_check(p, data.shape[-1])
    n, w = data.shape[-2:]
    flat = data.reshape(-1, n, w)
    b = flat.shape[0]
    k = n if p["topk"] < 0 else min(n, p["topk"])
    if k < 1:  # MXNet: topk=0 copies the input
        record = jnp.arange(b * n, dtype=data.dtype).reshape(data.shape[:-1] + (1,))
        return data, record
    src = _by_batch(lambda x: _nms_sources(x, p, k), lax.stop_gradient(flat))
    kept = src >= 0
    rows = jnp.take_along_axis(flat, jnp.maximum(src, 0)[..., None], axis=1)
    out = jnp.where(kept[..., None], rows, jnp.asarray(-1, data.dtype))
    if p["in_format"] != p["out_format"]:
        cs = p["coord_start"]
        coords = out[..., cs:cs + 4]
        conv = jnp.where(coords[..., :1] < 0, coords, convert_format(coords, p["in_format"], p["out_format"]))
        # a concatenation, not .at[].set: XLA:CPU (jax 0.10.2) computed that scatter from half-updated rows
        out = jnp.concatenate([out[..., :cs], _values_of(coords, lax.stop_gradient(conv)), out[..., cs + 4:]], -1)
    record = jnp.where(kept, src + (jnp.arange(b) * n)[:, None], -1).astype(data.dtype)
    return out.reshape(data.shape), record.reshape(data.shape[:-1] + (1,))


register(Op(
    "_contrib_box_nms", _nms_lower, aliases=("_contrib_box_non_maximum_suppression",), family="detection",
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output"],
    attrs=(attr("overlap_thresh", Float(), 0.5, "a box whose IoU with a higher-scored kept box exceeds "
                "this is suppressed"),
           attr("valid_thresh", Float(), 0.0, "only boxes scoring above this take part"),
           attr("topk", Int(), -1, "only the topk highest-scored valid boxes take part; -1: all; "
                "0: the output is the input"),
           attr("coord_start", Int(), 2, "index of the first of the 4 coordinates in a box"),
           attr("score_index", Int(), 1, "index of the score in a box"),
           attr("id_index", Int(), -1, "index of the class id in a box; -1: no class id"),
           attr("background_id", Int(), -1, "boxes of this class id are dropped (with id_index)"),
           attr("force_suppress", Bool(), False, "suppress across classes; False: only within a class "
                "(with id_index)"),
           _format_attr("in_format", "corner", "the input box encoding"),
           _format_attr("out_format", "corner", "the output box encoding")),
    doc="Non-maximum suppression of (..., N, W) boxes: the kept boxes sorted by descending score, "
        "then rows of -1 (same shape as the input). The gradient goes to the input rows that were "
        "kept (MXNet); a hidden second output records each output row's flat input index."))


# -- box_encode / box_decode --------------------------------------------------------
def _center_of(b):
    """(x, y, width, height) of corner boxes, as MXNet's box coders compute them."""
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    return b[..., 0] + w * 0.5, b[..., 1] + h * 0.5, w, h


def _encode_infer(p, shapes):
    out = list(shapes)
    for i in (4, 5):
        if out[i] is None:
            out[i] = (4,)
    return out


def _encode_lower(ctx, p, samples, matches, anchors, refs, means, stds):
    samples, matches, anchors, refs, means, stds = _zero_grad(samples, matches, anchors, refs, means, stds)
    if samples.ndim != 2:
        fail(f"box_encode: samples must be (batch, num_anchors), got shape {tuple(samples.shape)}")
    b, n = samples.shape
    if tuple(matches.shape) != (b, n):
        fail(f"box_encode: matches must have the shape of samples {(b, n)}, got {tuple(matches.shape)}")
    if tuple(anchors.shape) != (b, n, 4):
        fail(f"box_encode: anchors must be (batch, num_anchors, 4) = {(b, n, 4)}, got {tuple(anchors.shape)}")
    if refs.ndim != 3 or refs.shape[0] != b or refs.shape[2] != 4:
        fail(f"box_encode: refs must be (batch={b}, num_refs, 4), got {tuple(refs.shape)}")
    for what, v in (("means", means), ("stds", stds)):
        if tuple(v.shape) != (4,):
            fail(f"box_encode: {what} must have shape (4,), got {tuple(v.shape)}")
    m = refs.shape[1]
    idx = jnp.clip(matches.astype(jnp.int32), 0, m - 1)
    ref = jnp.take_along_axis(refs, idx[..., None], axis=1)
    rx, ry, rw, rh = _center_of(ref)
    ax, ay, aw, ah = _center_of(anchors)
    raw = jnp.stack([(rx - ax) / aw, (ry - ay) / ah, jnp.log(rw / aw), jnp.log(rh / ah)], axis=-1)
    valid = (samples > 0.5)[..., None]
    targets = jnp.where(valid, (raw - means) / stds, 0)
    return targets, jnp.broadcast_to(valid, targets.shape).astype(targets.dtype)


register(Op(
    "_contrib_box_encode", _encode_lower, family="detection", differentiable=False, num_outputs=2,
    inputs=("samples", "matches", "anchors", "refs", "means", "stds"), infer_inputs=_encode_infer,
    doc="Training targets of corner anchors (B, N, 4) for their matched refs (B, M, 4): normalized "
        "center offsets and log sizes ((t - means) / stds) where samples > 0.5, else 0; and the mask."))


def _decode_lower(ctx, p, data, anchors):
    data, anchors = _zero_grad(data, anchors)
    if data.ndim != 3 or data.shape[2] != 4:
        fail(f"box_decode: data must be (batch, num_anchors, 4), got shape {tuple(data.shape)}")
    n = data.shape[1]
    if anchors.ndim < 3 or anchors.shape[-1] != 4 or anchors.size != n * 4:
        fail(f"box_decode: anchors must be (1, {n}, 4) boxes shared by the batch, got {tuple(anchors.shape)}")
    anchors = anchors.reshape(n, 4).astype(data.dtype)
    if p["format"] == "corner":
        ax, ay, aw, ah = _center_of(anchors)
    else:
        ax, ay, aw, ah = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    ox = data[..., 0] * p["std0"] * aw + ax
    oy = data[..., 1] * p["std1"] * ah + ay
    dw, dh = data[..., 2] * p["std2"], data[..., 3] * p["std3"]
    if p["clip"] > 0:
        dw, dh = jnp.minimum(dw, p["clip"]), jnp.minimum(dh, p["clip"])
    ow, oh = jnp.exp(dw) * aw * 0.5, jnp.exp(dh) * ah * 0.5
    return jnp.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=-1)


register(Op(
    "_contrib_box_decode", _decode_lower, inputs=("data", "anchors"), family="detection", differentiable=False,
    attrs=(*(attr(f"std{i}", Float(), 1.0, f"scale of the {i}th encoded value") for i in range(4)),
           attr("clip", Float(), -1.0, "if positive, the encoded log sizes are clipped to this"),
           _format_attr("format", "center", "the anchors' encoding")),
    doc="Corner boxes (B, N, 4) from encoded offsets (B, N, 4) and anchors (1, N, 4): center + "
        "offset * std * size, size * exp(log size * std); zero gradient (MXNet)."))


# -- bipartite_matching --------------------------------------------------------------
def _match_one(s, p):
    """Greedy matching of one (R, C) score matrix: (column of each row, row of each column), -1 unmatched."""
    r, c = s.shape
    flat = s.reshape(-1)
    asc, thr, topk = p["is_ascend"], p["threshold"], p["topk"]
    order = jnp.argsort(flat if asc else -flat, stable=True)
    rank = jnp.argsort(order).astype(jnp.int32)  # position of each entry in the sorted order
    rank = jnp.where(flat < thr if asc else flat > thr, rank, r * c)
    limit = topk + 1 if topk > 0 else r * c  # MXNet stops after the match that makes count exceed topk

    def body(_, state):
        rows, cols, count = state
        free = ((rows[:, None] < 0) & (cols[None, :] < 0)).reshape(-1)
        cand = jnp.where(free, rank, r * c)
        j = jnp.argmin(cand)
        ok = (cand[j] < r * c) & (count < limit)
        ri, ci = j // c, j % c
        rows = jnp.where(ok & (jnp.arange(r) == ri), ci, rows).astype(jnp.int32)
        cols = jnp.where(ok & (jnp.arange(c) == ci), ri, cols).astype(jnp.int32)
        return rows, cols, count + ok
    init = (jnp.full(r, -1, jnp.int32), jnp.full(c, -1, jnp.int32), jnp.int32(0))
    rows, cols, _ = lax.fori_loop(0, min(r, c), body, init)
    return rows, cols


def _match_lower(ctx, p, data):
    (data,) = _zero_grad(data)
    if data.ndim < 2:
        fail(f"bipartite_matching: data must be (..., rows, columns) scores, got shape {tuple(data.shape)}")
    r, c = data.shape[-2:]
    rows, cols = _by_batch(lambda s: _match_one(s, p), data.reshape(-1, r, c))
    return rows.reshape(data.shape[:-1]).astype(data.dtype), cols.reshape(data.shape[:-2] + (c,)).astype(data.dtype)


register(Op(
    "_contrib_bipartite_matching", _match_lower, family="detection", differentiable=False, num_outputs=2,
    attrs=(attr("is_ascend", Bool(), False, "lower scores are better"),
           attr("threshold", Float(), doc="scores not above it (below it with is_ascend) never match"),
           attr("topk", Int(), -1, "limit the matches (MXNet stops after topk + 1); -1: no limit")),
    doc="Greedy bipartite matching of (..., R, C) scores, best first: the matched column of each row "
        "and the matched row of each column, -1 where unmatched; zero gradient."))


# -- MultiBoxPrior -------------------------------------------------------------------
def _prior_lower(ctx, p, data):
    if data.ndim < 4:
        fail(f"MultiBoxPrior: data must be (batch, channel, height, width), got shape {tuple(data.shape)}")
    sizes, ratios, steps, offsets = p["sizes"], p["ratios"], p["steps"], p["offsets"]
    if not sizes or not ratios:
        _bad_attr("MultiBoxPrior: sizes and ratios must not be empty")
    if len(steps) != 2 or len(offsets) != 2:
        _bad_attr(f"MultiBoxPrior: steps {steps} and offsets {offsets} must be (y, x) pairs")
    if not all(0 <= o <= 1 for o in offsets):
        _bad_attr(f"MultiBoxPrior: offsets {offsets} must lie in [0, 1]")
    if steps[0] * steps[1] < 0:
        _bad_attr(f"MultiBoxPrior: steps {steps} must both be given or both be -1")
    h, w = data.shape[2:4]
    f = np.float32
    sy, sx = (f(steps[0]), f(steps[1])) if steps[0] > 0 and steps[1] > 0 else (f(1) / f(h), f(1) / f(w))
    cy = (np.arange(h, dtype=f) + f(offsets[0])) * sy
    cx = (np.arange(w, dtype=f) + f(offsets[1])) * sx
    shapes = [(f(s), np.sqrt(f(ratios[0]))) for s in sizes] + [(f(sizes[0]), np.sqrt(f(r))) for r in ratios[1:]]
    half = np.array([(s * f(h) / f(w) * r / f(2), s / r / f(2)) for s, r in shapes], f)  # (A, 2)
    gy, gx = np.meshgrid(cy, cx, indexing="ij")
    centers = np.stack([gx, gy], -1)[:, :, None, :]  # (h, w, 1, 2)
    boxes = np.concatenate([centers - half, centers + half], -1).reshape(1, -1, 4)
    if p["clip"]:
        boxes = np.clip(boxes, 0, 1)
    return jnp.asarray(boxes, as_float(data).dtype)


register(Op(
    "_contrib_MultiBoxPrior", _prior_lower, aliases=("MultiBoxPrior", "_npx_multibox_prior"),
    family="detection", differentiable=False,
    attrs=(attr("sizes", FloatTuple(), (1.0,), "anchor sizes (fractions of the image height)"),
           attr("ratios", FloatTuple(), (1.0,), "aspect ratios: every size with the first ratio, then "
                "the first size with each other ratio"),
           attr("clip", Bool(), False, "clip the anchors to [0, 1]"),
           attr("steps", FloatTuple(), (-1.0, -1.0), "(y, x) step between anchor centers; -1: 1 / size"),
           attr("offsets", FloatTuple(), (0.5, 0.5), "(y, x) offset of the first center, in steps")),
    doc="SSD anchors of an (N, C, H, W) feature map: (1, H * W * (sizes + ratios - 1), 4) corner boxes, "
        "row-major over the map; zero gradient."))


# -- MultiBoxTarget ------------------------------------------------------------------
def _variances(p, what: str) -> tuple:
    v = tuple(p["variances"])
    if len(v) != 4:
        _bad_attr(f"{what}: variances {v} must have 4 entries")
    return v


def _target_one(anchors, label, cls_pred, p, var):
    """Targets of one batch item: anchors (A, 4), label (L, W), cls_pred (C, A)."""
    a, l = anchors.shape[0], label.shape[0]
    gt_valid = jnp.cumprod(label[:, 0] != -1).astype(bool)
    inter, union = inter_union(anchors[:, None], label[None, :, 1:5], clamp_area=False)
    iou = jnp.where(union == 0, 0, inter / jnp.where(union == 0, 1, union))
    neg_inf = jnp.asarray(-jnp.inf, iou.dtype)

    def best_pair(_, state):  # MXNet's first pass: the best remaining (anchor, gt) pair, repeatedly
        gt_of, used = state
        avail = (gt_of[:, None] < 0) & ~used[None, :] & gt_valid[None, :]
        scores = jnp.where(avail, iou, neg_inf).reshape(-1)
        j = jnp.argmax(scores)
        ok = scores[j] > np.float32(1e-6)
        ai, gi = j // l, j % l
        return (jnp.where(ok & (jnp.arange(a) == ai), gi, gt_of).astype(jnp.int32),
                used | (ok & (jnp.arange(l) == gi)))
    gt_of, _ = lax.fori_loop(0, l, best_pair, (jnp.full(a, -1, jnp.int32), jnp.zeros(l, bool)))
    masked = jnp.where(gt_valid[None, :], iou, neg_inf)
    best, best_iou = jnp.argmax(masked, axis=1).astype(jnp.int32), jnp.max(masked, axis=1)
    best_iou = jnp.where(best_iou > -1, best_iou, -1)
    if p["overlap_threshold"] > 0:
        gt_of = jnp.where((gt_of < 0) & (best_iou > p["overlap_threshold"]), best, gt_of)
    positive = gt_of >= 0
    ratio = p["negative_mining_ratio"]
    if ratio > 0:
        num_pos = jnp.sum(positive)
        num_neg = jnp.minimum((num_pos.astype(jnp.float32) * np.float32(ratio)).astype(jnp.int32), a - num_pos)
        cand = ~positive & (best_iou < p["negative_mining_thresh"])
        background = jax.nn.softmax(cls_pred, axis=0)[0]
        order = jnp.argsort(jnp.where(cand, background, jnp.inf), stable=True)
        rank = jnp.argsort(order)
        negative = cand & (rank < num_neg)
    else:
        negative = ~positive & jnp.any(gt_valid)
    gt = label[jnp.maximum(gt_of, 0)]
    gx, gy, gw, gh = _center_of(gt[:, 1:5])
    ax, ay, aw, ah = _center_of(anchors)
    loc = jnp.stack([(gx - ax) / aw / var[0], (gy - ay) / ah / var[1],
                     jnp.log(gw / aw) / var[2], jnp.log(gh / ah) / var[3]], axis=-1)
    pos4 = jnp.broadcast_to(positive[:, None], loc.shape)
    cls = jnp.where(positive, gt[:, 0] + 1, jnp.where(negative, 0, jnp.asarray(p["ignore_label"], gt.dtype)))
    return jnp.where(pos4, loc, 0).reshape(-1), pos4.astype(loc.dtype).reshape(-1), cls.astype(loc.dtype)


def _target_lower(ctx, p, anchor, label, cls_pred):
    anchor, label, cls_pred = _zero_grad(anchor, label, cls_pred)
    var = _variances(p, "MultiBoxTarget")
    if anchor.ndim != 3 or anchor.shape[0] != 1 or anchor.shape[2] != 4 or anchor.shape[1] < 1:
        fail(f"MultiBoxTarget: anchor must be (1, num_anchors, 4) shared by the batch, got {tuple(anchor.shape)}")
    if label.ndim != 3 or label.shape[1] < 1 or label.shape[2] < 5:
        fail(f"MultiBoxTarget: label must be (batch, num_labels, >= 5) [class, xmin, ymin, xmax, ymax, ...], "
             f"got {tuple(label.shape)}")
    a = anchor.shape[1]
    if cls_pred.ndim != 3 or cls_pred.shape[0] != label.shape[0] or cls_pred.shape[2] != a:
        fail(f"MultiBoxTarget: cls_pred must be (batch={label.shape[0]}, num_classes, num_anchors={a}), "
             f"got {tuple(cls_pred.shape)}")
    if p["negative_mining_ratio"] > 0 and p["negative_mining_thresh"] <= 0:
        _bad_attr("MultiBoxTarget: negative_mining_thresh must be positive when negative mining is on")
    anchors = anchor[0]
    return _by_batch(lambda lb, cp: _target_one(anchors, lb, cp.astype(lb.dtype), p, var), label, cls_pred)


register(Op(
    "_contrib_MultiBoxTarget", _target_lower, aliases=("MultiBoxTarget", "_npx_multibox_target"),
    inputs=("anchor", "label", "cls_pred"), family="detection", differentiable=False, num_outputs=3,
    output_names=lambda p: ["loc_target", "loc_mask", "cls_target"],
    attrs=(attr("overlap_threshold", Float(), 0.5, "anchors overlapping a ground truth more than this "
                "are positives (besides each ground truth's best anchor)"),
           attr("ignore_label", Float(), -1.0, "class target of anchors neither positive nor negative"),
           attr("negative_mining_ratio", Float(), -1.0, "negatives per positive (hardest first); -1: every "
                "non-positive anchor is a negative"),
           attr("negative_mining_thresh", Float(), 0.5, "negatives overlap every ground truth less than this"),
           attr("minimum_negative_samples", Int(), 0, "(unused by MXNet's CPU kernel)"),
           attr("variances", FloatTuple(), (0.1, 0.1, 0.2, 0.2), "scales of the encoded (x, y, w, h)")),
    doc="SSD training targets for anchors (1, A, 4), labels (B, L, 5+) padded with -1 and class "
        "predictions (B, C, A): loc_target and loc_mask (B, A * 4), cls_target (B, A) (0 background, "
        "class + 1 positive, ignore_label otherwise); zero gradient."))


# -- MultiBoxDetection ------------------------------------------------------------------
def _with_ids(rows, ids):
    """``rows`` (K, 6) with column 0 replaced by ``ids`` (K,)."""
    return jnp.concatenate([ids[:, None].astype(rows.dtype), rows[:, 1:]], axis=1)


def _detect_one(cls_prob, loc, anchors, p, var):
    """Detections (A, 6) [id, score, xmin, ymin, xmax, ymax] of one batch item."""
    c, a = cls_prob.shape
    if c > 1:
        fg = cls_prob[1:]
        score = jnp.max(fg, axis=0)
        has = score > -1
        cid = jnp.where(has, jnp.argmax(fg, axis=0) + 1, 0)
        score = jnp.where(has, score, -1)
    else:
        cid, score = jnp.zeros(a, jnp.int32), jnp.full(a, -1, cls_prob.dtype)
    valid = (cid > 0) & (score >= p["threshold"])
    ax, ay, aw, ah = _center_of(anchors)
    loc = loc.reshape(a, 4)
    ox, oy = loc[:, 0] * var[0] * aw + ax, loc[:, 1] * var[1] * ah + ay
    ow, oh = jnp.exp(loc[:, 2] * var[2]) * aw / 2, jnp.exp(loc[:, 3] * var[3]) * ah / 2
    boxes = jnp.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=-1)
    if p["clip"]:
        boxes = jnp.clip(boxes, 0, 1)
    ids = jnp.where(valid, cid - 1, -1).astype(boxes.dtype)
    rows = jnp.concatenate([ids[:, None], score[:, None].astype(boxes.dtype), boxes], axis=1)
    first, count = _compact(valid)
    slot = jnp.arange(a)
    compacted = jnp.where((slot < count)[:, None], rows[first], -1)
    thresh = p["nms_threshold"]
    if not 0 < thresh <= 1:
        return compacted
    k = min(p["nms_topk"], a) if p["nms_topk"] > 0 else a
    top = rows[_descending(score, valid)[:k]]
    in_top = jnp.arange(k) < jnp.minimum(count, k)

    def suppresses(box, others):
        inter, union = inter_union(box, others, clamp_area=False)
        return jnp.where(union <= 0, 0, inter / jnp.where(union <= 0, 1, union)) >= thresh
    alive = greedy_nms(top[:, 2:], in_top, suppresses, None if p["force_suppress"] else top[:, 0])
    top = _with_ids(top, jnp.where(alive, top[:, 0], -1))
    out = _with_ids(compacted, jnp.full((a,), -1, compacted.dtype))  # past the top k: MXNet keeps the
    return jnp.concatenate([jnp.where(in_top[:, None], top, out[:k]), out[k:]])  # unsorted rows, invalid


def _detect_lower(ctx, p, cls_prob, loc_pred, anchor):
    cls_prob, loc_pred, anchor = _zero_grad(cls_prob, loc_pred, anchor)
    var = _variances(p, "MultiBoxDetection")
    if cls_prob.ndim != 3:
        fail(f"MultiBoxDetection: cls_prob must be (batch, num_classes, num_anchors), got {tuple(cls_prob.shape)}")
    b, _, a = cls_prob.shape
    if anchor.ndim != 3 or anchor.shape[1:] != (a, 4) or a < 1:
        fail(f"MultiBoxDetection: anchor must be (1, num_anchors={a}, 4), got {tuple(anchor.shape)}")
    if tuple(loc_pred.shape) != (b, a * 4):
        fail(f"MultiBoxDetection: loc_pred must be (batch, num_anchors * 4) = {(b, a * 4)}, "
             f"got {tuple(loc_pred.shape)}")
    anchors = anchor[0].astype(cls_prob.dtype)
    return _by_batch(lambda cp, lp: _detect_one(cp, lp.astype(cp.dtype), anchors, p, var), cls_prob, loc_pred)


register(Op(
    "_contrib_MultiBoxDetection", _detect_lower, aliases=("MultiBoxDetection", "_npx_multibox_detection"),
    inputs=("cls_prob", "loc_pred", "anchor"), family="detection", differentiable=False,
    attrs=(attr("clip", Bool(), True, "clip the boxes to [0, 1]"),
           attr("threshold", Float(), 0.01, "a detection needs at least this score"),
           attr("background_id", Int(), 0, "(MXNet's kernel always treats class 0 as background)"),
           attr("nms_threshold", Float(), 0.5, "IoU at which a lower-scored box of the same class is "
                "suppressed; outside (0, 1]: no suppression and no sorting"),
           attr("force_suppress", Bool(), False, "suppress across classes"),
           attr("variances", FloatTuple(), (0.1, 0.1, 0.2, 0.2), "scales of the encoded (x, y, w, h)"),
           attr("nms_topk", Int(), -1, "only the nms_topk best detections take part; -1: all")),
    doc="SSD detections from class probabilities (B, C, A), box offsets (B, A * 4) and anchors "
        "(1, A, 4): (B, A, 6) rows [class id, score, xmin, ymin, xmax, ymax] sorted by score; "
        "suppressed and invalid rows have id -1 (rows past the valid ones are all -1); zero gradient."))
