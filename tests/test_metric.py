"""Metrics against hand-computed values, MXNet's local/global semantics, and jit-able batch_stats."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import ConfigError, ShapeError, XGraphError

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]], np.float32)
LABELS = np.array([0.0, 1.0, 1.0, 2.0], np.float32)  # float class ids, as MXNet iterators give them


def test_accuracy_float_labels_axis_and_local_global():
    m = mx.metric.create("acc")
    m.update([mx.nd.array(LABELS)], [mx.nd.array(PROBS)])
    assert m.get() == ("accuracy", 0.5)  # argmax = 0, 2, 1, 0 -> correct on rows 0 and 2
    m.update(mx.nd.array([1.0]), mx.nd.array([[0.0, 1.0, 0.0]]))
    assert m.get()[1] == pytest.approx(3 / 5) and m.num_inst == 5
    m.reset_local()
    assert math.isnan(m.get()[1]) and m.get_global()[1] == pytest.approx(3 / 5)
    m.reset()
    assert math.isnan(m.get_global()[1])
    m2 = mx.metric.Accuracy(axis=0)
    m2.update([np.array([1, 0])], [np.array([[0.1, 0.9], [0.8, 0.2]])])  # argmax over axis 0 -> [1, 0]
    assert m2.get()[1] == 1.0
    m3 = mx.metric.Accuracy()
    m3.update([np.array([1, 2])], [np.array([1.0, 3.0])])  # same shape: predictions are ids
    assert m3.get()[1] == 0.5


def test_top_k_accuracy():
    m = mx.metric.create("top_k_accuracy", top_k=2)
    m.update([LABELS], [PROBS])
    # top-2 sets: {0,1}, {2,1}, {1,2}, {0,1} -> labels 0,1,1,2 -> hits 1,1,1,0
    assert m.get() == ("top_k_accuracy_2", 0.75)
    m5 = mx.metric.TopKAccuracy(top_k=5)
    m5.update([LABELS], [PROBS])
    assert m5.get()[1] == 1.0


def test_f1_and_mcc_macro_and_micro():
    pred1 = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])  # -> 1, 0, 1, 0
    lab1 = np.array([1, 1, 0, 0])  # tp=1 fp=1 fn=1 tn=1
    pred2 = np.array([[0.1, 0.9], [0.2, 0.8]])  # -> 1, 1
    lab2 = np.array([1, 1])  # tp=2
    f1_1, f1_2 = 0.5, 1.0
    m = mx.metric.F1()
    m.update([lab1], [pred1]); m.update([lab2], [pred2])
    assert m.get()[1] == pytest.approx((f1_1 + f1_2) / 2)
    micro = mx.metric.F1(average="micro")
    micro.update([lab1], [pred1]); micro.update([lab2], [pred2])
    p, r = 3 / 4, 3 / 4  # tp=3 fp=1 fn=1
    assert micro.get()[1] == pytest.approx(2 * p * r / (p + r)) and micro.num_inst == 6
    mcc = mx.metric.MCC()
    mcc.update([lab1], [pred1])
    assert mcc.get()[1] == pytest.approx((1 * 1 - 1 * 1) / math.sqrt(2 * 2 * 2 * 2))
    mcc_micro = mx.metric.MCC(average="micro")
    mcc_micro.update([lab1], [pred1]); mcc_micro.update([lab2], [pred2])
    tp, fp, fn, tn = 3, 1, 1, 1
    assert mcc_micro.get()[1] == pytest.approx((tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    with pytest.raises(ConfigError, match="binary"):
        mx.metric.F1().update([np.array([0, 1, 2])], [np.ones((3, 2))])


def test_perplexity_with_ignore_label():
    m = mx.metric.Perplexity(ignore_label=None)
    m.update([LABELS], [PROBS])
    picked = [0.7, 0.3, 0.5, 0.2]
    assert m.get()[1] == pytest.approx(math.exp(-np.mean(np.log(picked))), rel=1e-6)
    ig = mx.metric.Perplexity(ignore_label=1)
    ig.update([LABELS], [PROBS])
    assert ig.get()[1] == pytest.approx(math.exp(-(math.log(0.7) + math.log(0.2)) / 2), rel=1e-6)
    seq = mx.metric.Perplexity(ignore_label=None)
    seq.update([LABELS.reshape(2, 2)], [PROBS.reshape(2, 2, 3)])  # (batch, time, vocab)
    assert seq.get()[1] == pytest.approx(m.get()[1], rel=1e-6)


def test_regression_metrics_average_per_batch():
    lab_a, pred_a = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 5.0])
    lab_b, pred_b = np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]])
    mae, mse, rmse = (mx.metric.create(n) for n in ("mae", "mse", "rmse"))
    for m in (mae, mse, rmse):
        m.update([lab_a], [pred_a]); m.update([lab_b], [pred_b])
    assert mae.get()[1] == pytest.approx((2.5 / 3 + 0.5) / 2)
    assert mse.get()[1] == pytest.approx((4.25 / 3 + 0.5) / 2)
    assert rmse.get()[1] == pytest.approx((math.sqrt(4.25 / 3) + math.sqrt(0.5)) / 2)
    assert mae.num_inst == 2


def test_cross_entropy_nll_loss_pearson():
    ce = mx.metric.create("ce")
    ce.update([LABELS], [PROBS])
    expected = -np.mean(np.log(np.array([0.7, 0.3, 0.5, 0.2]) + 1e-12))
    assert ce.get() == ("cross-entropy", pytest.approx(expected, rel=1e-6))
    nll = mx.metric.create("nll_loss")
    nll.update([LABELS], [PROBS])
    assert nll.get()[1] == pytest.approx(expected, rel=1e-6)
    loss = mx.metric.Loss()
    loss.update(None, [np.array([1.0, 2.0]), np.array([[3.0, 6.0]])])
    assert loss.get()[1] == pytest.approx(3.0)
    a_l, a_p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 5.0])
    b_l, b_p = np.array([0.0, 5.0, 2.0]), np.array([1.0, 4.0, 2.5])
    macro = mx.metric.create("pearsonr")
    macro.update([a_l], [a_p]); macro.update([b_l], [b_p])
    r_a, r_b = np.corrcoef(a_l, a_p)[0, 1], np.corrcoef(b_l, b_p)[0, 1]
    assert macro.get()[1] == pytest.approx((r_a + r_b) / 2, rel=1e-5)
    micro = mx.metric.PearsonCorrelation(average="micro")
    micro.update([a_l], [a_p]); micro.update([b_l], [b_p])
    r_all = np.corrcoef(np.concatenate([a_l, b_l]), np.concatenate([a_p, b_p]))[0, 1]
    assert micro.get()[1] == pytest.approx(r_all, rel=1e-5)


def test_composite_create_list_and_name_value():
    comp = mx.metric.create(["acc", mx.metric.TopKAccuracy(top_k=2)])
    comp.update([LABELS], [PROBS])
    assert comp.get() == (["accuracy", "top_k_accuracy_2"], [0.5, 0.75])
    assert comp.get_name_value() == [("accuracy", 0.5), ("top_k_accuracy_2", 0.75)]
    assert comp.get_metric(1).name == "top_k_accuracy_2"
    comp.update_dict({"softmax_label": LABELS}, {"softmax_output": PROBS})
    assert comp.get_metric(0).num_inst == 8


def test_custom_metric_and_np():
    def hits(label, pred):
        return float((pred.argmax(axis=1) == label).sum()), label.shape[0]
    m = mx.metric.create(hits)
    m.update([LABELS], [PROBS])
    assert m.get() == ("hits", 0.5)
    anon = mx.metric.np(lambda l, p: 2.0)
    anon.update([LABELS], [PROBS])
    assert anon.get() == ("custom(<lambda>)", 2.0)


def test_batch_stats_jit_and_accumulate_match_update():
    for name, kw in (("acc", {}), ("ce", {}), ("perplexity", {"ignore_label": 2}), ("mse", {}),
                     ("top_k_accuracy", {"top_k": 2}), ("f1", {})):
        labels = LABELS if name != "f1" else np.array([1, 0, 1, 0], np.float32)
        preds = PROBS if name != "f1" else PROBS[:, :2]
        host = mx.metric.create(name, **kw)
        host.update([labels], [preds])
        dev = mx.metric.create(name, **kw)
        if name != "f1":
            stats = jax.jit(dev.batch_stats)(jnp.asarray(labels), jnp.asarray(preds))
        else:
            stats = dev.batch_stats(jnp.asarray(labels), jnp.asarray(preds))
        dev.accumulate(stats)
        assert dev.get() == pytest.approx(host.get()), name


def test_errors_and_config():
    with pytest.raises(ConfigError):
        mx.metric.create("nosuch")
    with pytest.raises(ShapeError):
        mx.metric.Accuracy().update([LABELS, LABELS], [PROBS])
    with pytest.raises(XGraphError):
        mx.metric.CrossEntropy().update([LABELS[:3]], [PROBS])
    with pytest.raises(ConfigError):
        mx.metric.F1(average="weighted")
    cfg = mx.metric.Accuracy(axis=1).get_config()
    assert cfg == {"axis": 1, "metric": "Accuracy", "name": "accuracy", "output_names": None, "label_names": None}


def test_accuracy_matches_argmax_with_ties_nans_and_odd_labels():
    """Accuracy's argmax-free statistics equal ``argmax(pred) == int(label)`` exactly (first maximum
    wins, the first NaN wins, out-of-range labels never match), on any axis, eagerly and under jit."""
    rs = np.random.RandomState(0)
    for shape, axis in (((40, 7), 1), ((40, 7), -1), ((5, 6, 4), 1), ((6, 9), 0), ((3, 4, 5), 2)):
        pred = rs.randint(0, 3, size=shape).astype(np.float32)          # many ties
        pred[rs.rand(*shape) < 0.05] = np.nan
        pred[rs.rand(*shape) < 0.05] = -np.inf
        n = shape[axis]
        red = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        label = rs.randint(-1, n + 1, size=red).astype(np.float32) + rs.choice([0.0, 0.25], size=red)
        want = np.sum(np.asarray(jnp.argmax(jnp.asarray(pred), axis=axis)) == label.astype(np.int32))
        m = mx.metric.Accuracy(axis=axis)
        got, count = m.batch_stats(jnp.asarray(label.ravel()), jnp.asarray(pred))
        assert int(got) == want and int(count) == label.size, (shape, axis)
        got_jit = jax.jit(m.batch_stats)(jnp.asarray(label), jnp.asarray(pred))[0]
        assert int(got_jit) == want
    hits = mx.metric.argmax_hits(jnp.array([2, 0, 1]), jnp.array([[1, 3, 3], [5, 5, 1], [0, 2, 2]]), 1)
    assert hits.tolist() == [False, True, True]                         # integer scores, ties
    with pytest.raises(ShapeError):
        mx.metric.Accuracy().batch_stats(jnp.zeros(3), jnp.zeros((4, 2)))
