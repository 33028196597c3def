"""Box and detection ops: numpy references (IoU, NMS, encode/decode, anchors, matching), MXNet's
gradients, float16/bfloat16 runs and bad input. (The MXNet 1.9.1 references are cases in
tests/fixtures/mxnet_ops/, run by test_mxnet_op_cases.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from opcheck import check_low_precision, check_numeric_gradient, grads, run
from xgraph.errors import AttributeValueError, ShapeError
from xgraph.ops import registry

RNG = np.random.default_rng(23)


def corners(*shape, lo=0.0, hi=0.6, wmin=0.1, wmax=0.4):
    """Random corner boxes (..., 4)."""
    xy = RNG.uniform(lo, hi, shape + (2,))
    return np.concatenate([xy, xy + RNG.uniform(wmin, wmax, shape + (2,))], -1).astype(np.float32)


def detections(*shape, classes=3):
    """Rows [class id, score, xmin, ymin, xmax, ymax] with distinct scores and overlapping boxes."""
    n = int(np.prod(shape))
    ids = RNG.integers(0, classes, shape + (1,))
    scores = (RNG.permutation(n).reshape(shape + (1,)) + 1) / (n + 1)
    return np.concatenate([ids, scores, corners(*shape, lo=0.1, hi=0.4, wmin=0.2)], -1).astype(np.float32)


def np_iou(a, b, fmt="corner"):
    """IoU of two boxes, from their definition."""
    if fmt == "center":
        a = [a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2]
        b = [b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2]
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = iw * ih
    area = lambda r: max(r[2] - r[0], 0) * max(r[3] - r[1], 0)  # noqa: E731
    return 0.0 if inter <= 0 else inter / (area(a) + area(b) - inter)


def np_box_nms(x, thresh, topk=-1, valid_thresh=0.0, coord_start=2, score_index=1, id_index=-1,
               background_id=-1, force=False):
    """Greedy NMS of one (N, W) item in MXNet's layout: kept rows by descending score, then -1 rows."""
    scores = x[:, score_index]
    ok = [i for i in range(len(x)) if scores[i] > valid_thresh
          and (id_index < 0 or x[i, id_index] != background_id)]
    order = sorted(ok, key=lambda i: -scores[i])[:topk if topk >= 0 else None]
    kept = []
    for i in order:
        box = x[i, coord_start:coord_start + 4]
        if all(np_iou(x[j, coord_start:coord_start + 4], box) <= thresh
               or (id_index >= 0 and not force and x[j, id_index] != x[i, id_index]) for j in kept):
            kept.append(i)
    out = -np.ones_like(x)
    out[:len(kept)] = x[kept]
    return out


def test_box_iou_against_numpy_in_both_formats():
    a, b = corners(2, 3), corners(4)
    b[0] = [5, 5, 5.1, 5.1]  # far from every lhs box in both formats
    for fmt in ("corner", "center"):
        (out,) = run(mx.sym.contrib.box_iou(mx.sym.var("a"), mx.sym.var("b"), format=fmt), a=a, b=b[None])
        assert out.shape == (2, 3, 1, 4)
        want = np.array([[np_iou(p, q, fmt) for q in b] for p in a.reshape(-1, 4)]).reshape(2, 3, 1, 4)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-7)
        assert (want > 0).any() and (want == 0).any()


@pytest.mark.parametrize("kw", [
    dict(thresh=0.5), dict(thresh=0.3, id_index=0), dict(thresh=0.3, id_index=0, force=True),
    dict(thresh=0.2, topk=5, valid_thresh=0.3), dict(thresh=0.4, id_index=0, background_id=1)],
    ids=["plain", "per_class", "force", "topk_valid", "background"])
def test_box_nms_against_a_python_greedy_nms(kw):
    data = detections(2, 3, 10)
    attrs = {"overlap_thresh": kw["thresh"], "topk": kw.get("topk", -1), "valid_thresh": kw.get("valid_thresh", 0.0),
             "id_index": kw.get("id_index", -1), "background_id": kw.get("background_id", -1),
             "force_suppress": kw.get("force", False)}
    (out,) = run(mx.sym.contrib.box_nms(mx.sym.var("x"), **attrs), x=data)
    want = np.stack([np_box_nms(item, **kw) for item in data.reshape(-1, 10, 6)]).reshape(data.shape)
    np.testing.assert_allclose(out, want, rtol=1e-6)
    assert (want[..., 1] < 0).any()  # something was suppressed


def test_box_nms_gradient_goes_to_the_kept_rows():
    data = detections(1, 8)
    sym = mx.sym.contrib.box_nms(mx.sym.var("x"), overlap_thresh=0.3, out_format="center")
    (out,) = run(sym, x=data)
    head = RNG.standard_normal(data.shape).astype(np.float32)
    g = grads(sym, ["x"], [head], x=data)["x"]
    want = np.zeros_like(data)
    for r in range(8):
        if out[0, r, 1] >= 0:
            src = int(np.flatnonzero(data[0, :, 1] == out[0, r, 1])[0])
            want[0, src] = head[0, r]  # copied past the format conversion, as MXNet
    np.testing.assert_array_equal(g, want)
    assert (want == 0).all(axis=-1).any() and (want != 0).any()


def test_box_nms_numeric_gradient_and_hidden_record():
    data = detections(2, 6)
    sym = mx.sym.contrib.box_nms(mx.sym.var("x"), overlap_thresh=0.3)  # (class ids are not smooth)
    check_numeric_gradient(sym, {"x": data}, ["x"], rtol=1e-5, atol=1e-7)
    assert sym.list_outputs() == [f"{sym.name}_output"]


def test_box_nms_center_format_and_topk_zero():
    data = detections(5)
    centers = data.copy()
    c = centers[:, 2:]
    centers[:, 2:] = np.stack([(c[:, 0] + c[:, 2]) / 2, (c[:, 1] + c[:, 3]) / 2,
                               c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]], -1)
    (a,) = run(mx.sym.contrib.box_nms(mx.sym.var("x"), overlap_thresh=0.3, in_format="center"), x=centers)
    (b,) = run(mx.sym.contrib.box_nms(mx.sym.var("x"), overlap_thresh=0.3), x=data)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    (same,) = run(mx.sym.contrib.box_nms(mx.sym.var("x"), topk=0), x=data)
    np.testing.assert_array_equal(same, data)


def test_box_encode_then_decode_recovers_the_references():
    anchors, refs = corners(2, 5), corners(2, 3)
    matches = RNG.integers(0, 3, (2, 5)).astype(np.float32)
    samples = np.where(RNG.uniform(size=(2, 5)) > 0.3, 1, -1).astype(np.float32)
    means, stds = np.array([0.1, 0, -0.1, 0], np.float32), np.array([0.1, 0.1, 0.2, 0.2], np.float32)
    syms = [mx.sym.var(k) for k in ("samples", "matches", "anchors", "refs", "means", "stds")]
    t, mask = run(mx.sym.Group(list(mx.sym.contrib.box_encode(*syms))), samples=samples, matches=matches,
                  anchors=anchors, refs=refs, means=means, stds=stds)
    np.testing.assert_array_equal(mask, np.repeat((samples > 0.5)[..., None], 4, -1).astype(np.float32))
    assert (t[samples < 0.5] == 0).all()
    want = refs[np.arange(2)[:, None], matches.astype(int)]
    for i in range(2):  # decode takes anchors shared by the batch: one item at a time
        raw = (t[i:i + 1] * stds + means).astype(np.float32)
        (dec,) = run(mx.sym.contrib.box_decode(mx.sym.var("d"), mx.sym.var("a"), format="corner"),
                     d=raw, a=anchors[i:i + 1])
        pos = samples[i] > 0.5
        np.testing.assert_allclose(dec[0, pos], want[i, pos], rtol=1e-5, atol=1e-6)


def test_box_decode_against_numpy_center_anchors_with_clip():
    data, anchors = RNG.standard_normal((2, 4, 4)).astype(np.float32), corners(1, 4)
    anchors[..., 2:] -= anchors[..., :2]  # (x, y, w, h) with x, y the center
    (out,) = run(mx.sym.contrib.box_decode(mx.sym.var("d"), mx.sym.var("a"), std2=0.5, std3=0.5, clip=0.2),
                 d=data, a=anchors)
    a = anchors[0]
    cx, cy = data[..., 0] * a[:, 2] + a[:, 0], data[..., 1] * a[:, 3] + a[:, 1]
    w = np.exp(np.minimum(data[..., 2] * 0.5, 0.2)) * a[:, 2] / 2
    h = np.exp(np.minimum(data[..., 3] * 0.5, 0.2)) * a[:, 3] / 2
    np.testing.assert_allclose(out, np.stack([cx - w, cy - h, cx + w, cy + h], -1), rtol=1e-5, atol=1e-6)


def test_bipartite_matching_is_greedy_best_first():
    s = np.array([[[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]]], np.float32)
    rows, cols = run(mx.sym.Group(list(mx.sym.contrib.bipartite_matching(mx.sym.var("s"), threshold=1e-12))), s=s)
    np.testing.assert_array_equal(rows, [[1, -1, 0]])
    np.testing.assert_array_equal(cols, [[2, 0]])
    rows, _ = run(mx.sym.contrib.bipartite_matching(mx.sym.var("s"), threshold=0.25), s=s)
    np.testing.assert_array_equal(rows, [[1, -1, 0]])
    rows, _ = run(mx.sym.contrib.bipartite_matching(mx.sym.var("s"), threshold=0.45), s=s)
    np.testing.assert_array_equal(rows, [[1, -1, -1]])


def test_multibox_prior_against_numpy():
    sizes, ratios = (0.4, 0.2), (1.0, 2.0, 0.5)
    prior = mx.sym.contrib.MultiBoxPrior(mx.sym.var("x"), sizes=sizes, ratios=ratios)
    (out,) = run(prior, x=np.zeros((1, 3, 2, 5), np.float32))
    assert out.shape == (1, 2 * 5 * 4, 4)
    want = []
    for r in range(2):
        for c in range(5):
            cy, cx = (r + 0.5) / 2, (c + 0.5) / 5
            for s, q in [(s, ratios[0]) for s in sizes] + [(sizes[0], q) for q in ratios[1:]]:
                w, h = s * 2 / 5 * np.sqrt(q) / 2, s / np.sqrt(q) / 2
                want.append([cx - w, cy - h, cx + w, cy + h])
    np.testing.assert_allclose(out[0], want, rtol=1e-5, atol=1e-6)


def test_multibox_detection_keeps_sorted_rows_and_marks_the_suppressed():
    anchors = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9]]], np.float32)
    prob = np.array([[[0.1, 0.2, 0.7], [0.8, 0.1, 0.2], [0.1, 0.7, 0.1]]], np.float32)  # (1, 3 classes, 3 anchors)
    loc = np.zeros((1, 12), np.float32)
    (out,) = run(mx.sym.contrib.MultiBoxDetection(mx.sym.var("c"), mx.sym.var("l"), mx.sym.var("a"),
                                                  force_suppress=True), c=prob, l=loc, a=anchors)
    np.testing.assert_allclose(out[0], [[0, 0.8, *anchors[0, 0]], [-1, 0.7, *anchors[0, 1]],
                                        [0, 0.2, *anchors[0, 2]]], rtol=1e-6, atol=1e-6)
    (per_class,) = run(mx.sym.contrib.MultiBoxDetection(mx.sym.var("c"), mx.sym.var("l"), mx.sym.var("a"),
                                                        threshold=0.5), c=prob, l=loc, a=anchors)
    np.testing.assert_allclose(per_class[0], [[0, 0.8, *anchors[0, 0]], [1, 0.7, *anchors[0, 1]],
                                              [-1] * 6], rtol=1e-6, atol=1e-6)


def test_multibox_target_matches_each_ground_truth_and_mines_negatives():
    anchors = np.array([[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0.5, 0.5, 1], [0.05, 0, 0.5, 0.5]]], np.float32)
    label = np.array([[[2, 0, 0, 0.5, 0.5], [0, 0.5, 0.5, 0.9, 0.9], [-1] * 5]], np.float32)
    cls = np.zeros((1, 3, 4), np.float32)
    loc, mask, target = run(mx.sym.Group(list(mx.sym.contrib.MultiBoxTarget(
        mx.sym.var("a"), mx.sym.var("l"), mx.sym.var("c")))), a=anchors, l=label, c=cls)
    np.testing.assert_array_equal(target, [[3, 1, 0, 3]])
    np.testing.assert_array_equal(mask, [[1] * 8 + [0] * 4 + [1] * 4])
    assert loc[0, :4].tolist() == [0, 0, 0, 0] and loc[0, 8:12].tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(loc[0, 4:8], [-0.05 / 0.5 / 0.1, -0.05 / 0.5 / 0.1, np.log(0.8) / 0.2,
                                             np.log(0.8) / 0.2], rtol=1e-5)
    _, _, mined = run(mx.sym.contrib.MultiBoxTarget(mx.sym.var("a"), mx.sym.var("l"), mx.sym.var("c"),
                                                    negative_mining_ratio=0.3, ignore_label=-7),
                      a=anchors, l=label, c=cls)
    np.testing.assert_array_equal(mined, [[3, 1, -7, 3]])  # int(3 * 0.3) = 0 negatives: anchor 2 is ignored
    _, _, none = run(mx.sym.contrib.MultiBoxTarget(mx.sym.var("a"), mx.sym.var("l"), mx.sym.var("c"),
                                                   ignore_label=-7), a=anchors, l=-np.ones_like(label), c=cls)
    np.testing.assert_array_equal(none, [[-7] * 4])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_against_float32(dtype):
    data, anchors = (RNG.standard_normal((2, 6, 4)) * 0.3).astype(np.float32), corners(1, 6)
    tol = 1e-2 if dtype == "float16" else 5e-2
    check_low_precision(mx.sym.contrib.box_decode(mx.sym.var("d"), mx.sym.var("a"), format="corner"),
                        {"d": data, "a": anchors}, dtype, rtol=tol, atol=tol)
    check_low_precision(mx.sym.contrib.box_iou(mx.sym.var("d"), mx.sym.var("a")),
                        {"d": corners(5), "a": anchors}, dtype, rtol=tol, atol=tol)


def test_names_and_aliases():
    assert registry.get("_contrib_box_non_maximum_suppression") is registry.get("_contrib_box_nms")
    for name in ("MultiBoxPrior", "MultiBoxTarget", "MultiBoxDetection"):
        assert registry.get(name) is registry.get(f"_contrib_{name}")
    assert registry.get("_npx_multibox_detection").name == "_contrib_MultiBoxDetection"
    t = mx.sym.contrib.MultiBoxTarget(mx.sym.var("a"), mx.sym.var("l"), mx.sym.var("c"), name="t")
    assert t.list_outputs() == ["t_loc_target", "t_loc_mask", "t_cls_target"]
    assert '"_contrib_MultiBoxPrior"' in mx.sym.MultiBoxPrior(mx.sym.var("x")).tojson()


def _infer(sym, **shapes):
    return sym.infer_shape(**shapes)


@pytest.mark.parametrize("build,shapes,err,words", [
    (lambda: mx.sym.contrib.box_iou(mx.sym.var("a"), mx.sym.var("b"), name="iou"),
     {"a": (2, 4), "b": (3, 3)}, ShapeError, "rhs must be"),
    (lambda: mx.sym.contrib.box_iou(mx.sym.var("a"), mx.sym.var("b"), name="iou"),
     {"a": (4,), "b": (3, 4)}, ShapeError, "at least 2 dimensions"),
    (lambda: mx.sym.contrib.box_nms(mx.sym.var("x"), coord_start=3, name="nms"),
     {"x": (2, 5, 6)}, ShapeError, "coord_start=3"),
    (lambda: mx.sym.contrib.box_nms(mx.sym.var("x"), score_index=6, coord_start=0, name="nms"),
     {"x": (5, 6)}, ShapeError, "score_index 6"),
    (lambda: mx.sym.contrib.box_nms(mx.sym.var("x"), score_index=3, name="nms"),
     {"x": (5, 6)}, AttributeValueError, "overlaps the coordinates"),
    (lambda: mx.sym.contrib.box_nms(mx.sym.var("x"), id_index=1, name="nms"),
     {"x": (5, 6)}, AttributeValueError, "id_index 1"),
    (lambda: mx.sym.contrib.box_nms(mx.sym.var("x"), id_index=0, name="nms"),
     {"x": (5, 5)}, ShapeError, "at least 6"),
    (lambda: mx.sym.contrib.box_decode(mx.sym.var("d"), mx.sym.var("a"), name="dec"),
     {"d": (2, 5, 4), "a": (1, 4, 4)}, ShapeError, "anchors must be"),
    (lambda: mx.sym.contrib.box_encode(*[mx.sym.var(k) for k in "smarMS"], name="enc"),
     {"s": (2, 5), "m": (2, 5), "a": (2, 5, 4), "r": (2, 3, 4), "M": (3,), "S": (4,)}, ShapeError, "means"),
    (lambda: mx.sym.contrib.MultiBoxPrior(mx.sym.var("x"), offsets=(0.5, 1.5), name="prior"),
     {"x": (1, 3, 4, 4)}, AttributeValueError, "offsets"),
    (lambda: mx.sym.contrib.MultiBoxPrior(mx.sym.var("x"), name="prior"),
     {"x": (3, 4, 4)}, ShapeError, "must be"),
    (lambda: mx.sym.contrib.MultiBoxDetection(*[mx.sym.var(k) for k in "cla"], name="det"),
     {"c": (2, 3, 10), "l": (2, 40), "a": (1, 9, 4)}, ShapeError, "anchor must be"),
    (lambda: mx.sym.contrib.MultiBoxDetection(*[mx.sym.var(k) for k in "cla"], variances=(1, 1, 1), name="det"),
     {"c": (2, 3, 10), "l": (2, 40), "a": (1, 10, 4)}, AttributeValueError, "variances"),
    (lambda: mx.sym.contrib.MultiBoxTarget(*[mx.sym.var(k) for k in "alc"], name="tgt"),
     {"a": (1, 10, 4), "l": (2, 3, 4), "c": (2, 3, 10)}, ShapeError, "label must be"),
], ids=["iou_width", "iou_rank", "nms_coords", "nms_score", "nms_score_in_coords", "nms_id", "nms_width",
        "decode_anchors", "encode_means", "prior_offsets", "prior_rank", "detect_anchors", "detect_variances",
        "target_label"])
def test_bad_input_names_the_node(build, shapes, err, words):
    sym = build()
    name = sym[0].name
    with pytest.raises(err, match=rf"node '{name}' \(op _contrib_\w+\).*{words}"):
        _infer(sym, **shapes)


def test_bad_attributes_are_refused_when_built():
    with pytest.raises(AttributeValueError, match="threshold"):
        mx.sym.contrib.bipartite_matching(mx.sym.var("s"), name="bm")
    with pytest.raises(AttributeValueError, match="in_format"):
        mx.sym.contrib.box_nms(mx.sym.var("x"), in_format="xywh", name="nms")


def test_box_encode_infers_means_and_stds_and_box_nms_keeps_float16():
    syms = [mx.sym.var(k) for k in ("samples", "matches", "anchors", "refs", "means", "stds")]
    args, outs, _ = mx.sym.Group(list(mx.sym.contrib.box_encode(*syms))).infer_shape(
        samples=(2, 5), matches=(2, 5), anchors=(2, 5, 4), refs=(2, 3, 4))
    assert args[4:] == [(4,), (4,)] and outs == [(2, 5, 4), (2, 5, 4)]
    data = detections(2, 7)
    (half,) = run(mx.sym.contrib.box_nms(mx.sym.var("x"), overlap_thresh=0.3), x=data.astype(np.float16))
    (full,) = run(mx.sym.contrib.box_nms(mx.sym.var("x"), overlap_thresh=0.3), x=data)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), full, rtol=2e-3, atol=1e-3)
