"""Issue 10's bad input for the model-zoo operators: unknown contrib attributes are refused naming the
node and the op's attributes (as keyword arguments and in a checkpoint's JSON); class ids out of range
in the data never crash inside JAX and give what MXNet 1.9.1 gives.  (Inconsistent anchor/box shapes:
tests/test_ops_detection.py and tests/test_ops_detection_extra.py.)"""
from __future__ import annotations

import json

import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import AttributeValueError

V = mx.sym.var


@pytest.mark.parametrize("make,bad", [
    (lambda **kw: mx.sym.contrib.box_nms(V("x"), name="n", **kw), "bogus"),
    (lambda **kw: mx.sym.contrib.MultiBoxPrior(V("x"), name="n", **kw), "sizez"),
    (lambda **kw: mx.sym.contrib.MultiBoxDetection(V("c"), V("l"), V("a"), name="n", **kw), "nms_top_k"),
    (lambda **kw: mx.sym.contrib.BilinearResize2D(V("x"), height=4, width=4, name="n", **kw), "heigth"),
    (lambda **kw: mx.sym.contrib.AdaptiveAvgPooling2D(V("x"), output_size=2, name="n", **kw), "outputsize"),
    (lambda **kw: mx.sym.contrib.ROIAlign(V("d"), V("r"), pooled_size=(2, 2), spatial_scale=1.0, name="n", **kw),
     "sample"),
    (lambda **kw: mx.sym.contrib.quantize_v2(V("x"), name="n", **kw), "min_calib"),
], ids=["box_nms", "MultiBoxPrior", "MultiBoxDetection", "BilinearResize2D", "AdaptiveAvgPooling2D",
        "ROIAlign", "quantize_v2"])
def test_unknown_contrib_attribute_names_the_node(make, bad):
    with pytest.raises(AttributeValueError, match=rf"node 'n' \(op _contrib_\w+\): unknown attribute '{bad}'"):
        make(**{bad: 1})
    text = json.loads(make().tojson())        # the same attribute in a checkpoint's symbol file
    for node in text["nodes"]:
        if node["op"] != "null":
            node.setdefault("attrs", {})[bad] = "1"
    with pytest.raises(AttributeValueError, match=rf"node 'n'.*unknown attribute '{bad}'.*attributes of"):
        mx.sym.load_json(json.dumps(text))


def _run(sym, **arrays):
    ex = sym.bind(mx.cpu(), {k: mx.nd.array(v) for k, v in arrays.items()}, grad_req="null")
    return [o.asnumpy() for o in ex.forward(is_train=False)]


def test_out_of_range_class_ids_give_mxnets_results():
    """Class ids are data: one static XLA program cannot raise on them, so they run as MXNet runs them
    (values from MXNet 1.9.1): MultiBoxTarget writes id + 1 for a label of class 7 among 3 and -2 for -3,
    box_nms keeps ids 9, -7 and 1e6 as classes of their own, pick reads out-of-range indices clipped."""
    anchors = np.array([[[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.0, 0.5, 0.3, 0.9], [0.6, 0.1, 0.9, 0.4]]],
                       np.float32)
    labels = np.array([[[7, .1, .1, .45, .45], [-3, .5, .5, .9, .9], [2, 0.6, 0.1, 0.9, 0.4]]], np.float32)
    cls = np.linspace(0, 1, 12, dtype=np.float32).reshape(1, 3, 4)
    loc, mask, target = _run(mx.sym.contrib.MultiBoxTarget(V("a"), V("l"), V("c"), name="t"),
                             a=anchors, l=labels, c=cls)
    np.testing.assert_array_equal(target, [[8.0, -2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(mask, [[1.0] * 8 + [0.0] * 4 + [1.0] * 4])
    np.testing.assert_allclose(loc[0, :4], [0.8333335, 0.8333335, 0.77075326, 0.77075326], rtol=1e-6)
    boxes = np.array([[[9, .9, .1, .1, .4, .4], [9, .8, .12, .1, .4, .4], [-7, .7, .5, .5, .9, .9],
                       [1e6, .6, .5, .5, .9, .9]]], np.float32)
    out, = _run(mx.sym.contrib.box_nms(V("x"), id_index=0, overlap_thresh=0.5, name="nms"), x=boxes)
    np.testing.assert_array_equal(out[0, :, 0], [9, -7, 1e6, -1])
    np.testing.assert_array_equal(out[0, 3], [-1] * 6)
    scores = np.array([[0.1, 0.2, 0.3], [1, 2, 3]], np.float32)
    picked, = _run(mx.sym.pick(V("y"), V("i"), axis=1), y=scores, i=np.array([5, -1], np.float32))
    np.testing.assert_array_equal(picked, scores[[0, 1], [2, 0]])


def test_class_id_attributes_mxnet_accepts_are_accepted():
    """MXNet 1.9.1 accepts any background_id (MultiBoxDetection's kernel always takes class 0 as the
    background; box_nms compares ids with it), so checkpoints holding one outside the classes load."""
    det = mx.sym.contrib.MultiBoxDetection(V("c"), V("l"), V("a"), background_id=5, name="det")
    assert det.infer_shape(c=(1, 3, 10), l=(1, 40), a=(1, 10, 4))[1] == [(1, 10, 6)]
    nms = mx.sym.contrib.box_nms(V("x"), id_index=0, background_id=100, name="nms")
    assert nms.infer_shape(x=(1, 5, 6))[1] == [(1, 5, 6)]
