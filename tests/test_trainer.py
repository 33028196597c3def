"""The fused training step: correctness against independent jax references, donation, no recompiles,
padded-row masking, device-side metrics, lr schedules inside the step, per-parameter multipliers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xgraph as mx
from xgraph.train.trainer import Trainer


def _mlp(hidden=5, classes=3, w_attrs=None):
    x = mx.sym.var("data")
    w1 = mx.sym.var("fc1_weight", **(w_attrs or {}))
    h = mx.sym.Activation(mx.sym.FullyConnected(x, weight=w1, num_hidden=hidden, name="fc1"), act_type="relu")
    out = mx.sym.FullyConnected(h, num_hidden=classes, name="fc2")
    return mx.sym.SoftmaxOutput(out, name="softmax")


def _params(rs, din=4, hidden=5, classes=3):
    return {"fc1_weight": rs.randn(hidden, din).astype(np.float32) * 0.5,
            "fc1_bias": rs.randn(hidden).astype(np.float32) * 0.1,
            "fc2_weight": rs.randn(classes, hidden).astype(np.float32) * 0.5,
            "fc2_bias": rs.randn(classes).astype(np.float32) * 0.1}


def _ref_loss(p, x, y):
    h = jax.nn.relu(x @ p["fc1_weight"].T + p["fc1_bias"])
    z = h @ p["fc2_weight"].T + p["fc2_bias"]
    return -jnp.sum(jax.nn.log_softmax(z)[jnp.arange(x.shape[0]), y])


def _batch(x, y, pad=0):
    return mx.io.DataBatch([x], [y.astype(np.float32)], pad=pad)


def test_sgd_steps_match_jax_reference():
    rs = np.random.RandomState(0)
    p0 = _params(rs)
    x, y = rs.randn(6, 4).astype(np.float32), rs.randint(0, 3, 6)
    lr, wd, mom = 0.1, 0.01, 0.9
    tr = Trainer(_mlp(), "sgd", {"learning_rate": lr, "wd": wd, "momentum": mom},
                 data_shapes=[("data", (6, 4))], label_shapes=[("softmax_label", (6,))], arg_params=p0)
    ref = {k: jnp.asarray(v) for k, v in p0.items()}
    moms = {k: jnp.zeros_like(v) for k, v in ref.items()}
    for _ in range(3):
        tr.step(_batch(x, y))
        g = jax.grad(_ref_loss)(ref, x, y)
        for k in ref:
            wdk = wd if k.endswith("weight") else 0.0          # MXNet: no decay on biases
            moms[k] = mom * moms[k] - lr * (g[k] / 6 + wdk * ref[k])
            ref[k] = ref[k] + moms[k]
    for k in ref:
        np.testing.assert_allclose(np.asarray(tr.params[k]), np.asarray(ref[k]), rtol=1e-5, atol=1e-6)
    assert tr.num_update == 3


def test_buffers_are_donated_and_one_compile_serves_padded_batches_and_schedules():
    rs = np.random.RandomState(1)
    sched = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=0.1)
    tr = Trainer(_mlp(), "sgd", {"lr_scheduler": sched, "momentum": 0.9},
                 data_shapes=[("data", (4, 4))], label_shapes=[("softmax_label", (4,))],
                 arg_params=_params(rs), eval_metric="acc")
    x, y = rs.randn(4, 4).astype(np.float32), rs.randint(0, 3, 4)
    tr.step(_batch(x, y))
    old = tr.params["fc1_weight"]
    tr.step(_batch(x, y, pad=1))
    tr.step(_batch(x[:3], y[:3]))                  # a short batch is padded, not recompiled
    tr.step(_batch(x, y))
    assert old.is_deleted()
    assert tr.trace_count == 1


def test_lr_schedule_runs_inside_the_step():
    sched = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    loss = mx.sym.MakeLoss(mx.sym.sum(mx.sym.var("w") * mx.sym.var("data")))
    tr = Trainer(loss, "sgd", {"lr_scheduler": sched, "rescale_grad": 1.0}, data_shapes=[("data", (1,))],
                 arg_params={"w": np.zeros(1, np.float32)})
    for _ in range(3):
        tr.step(mx.io.DataBatch([np.ones(1, np.float32)]))
    # MXNet's FactorScheduler: lr at update n is base * factor ** floor((n - 1) / step) -> 1, .5, .25
    assert float(tr.params["w"][0]) == pytest.approx(-1.75)


def test_padded_rows_contribute_no_gradient_and_no_metric():
    rs = np.random.RandomState(2)
    p0 = _params(rs)
    x, y = rs.randn(4, 4).astype(np.float32), rs.randint(0, 3, 4)
    common = dict(optimizer="sgd", optimizer_params={"learning_rate": 0.5, "rescale_grad": 1.0},
                  label_shapes=None, arg_params=p0, eval_metric="acc")
    full = Trainer(_mlp(), data_shapes=[("data", (4, 4))], **{**common, "label_shapes": [("softmax_label", (4,))]})
    half = Trainer(_mlp(), data_shapes=[("data", (2, 4))], **{**common, "label_shapes": [("softmax_label", (2,))]})
    garbage = x.copy()
    garbage[2:] = 100.0
    full.step(_batch(garbage, y, pad=2))
    half.step(_batch(x[:2], y[:2]))
    for k in p0:
        np.testing.assert_allclose(np.asarray(full.params[k]), np.asarray(half.params[k]), rtol=1e-6, atol=1e-7)
    full.sync_metric()
    half.sync_metric()
    assert full.eval_metric.num_inst == 2 and full.eval_metric.get() == half.eval_metric.get()


def test_device_metric_equals_host_metric():
    rs = np.random.RandomState(3)
    tr = Trainer(_mlp(), "sgd", {"learning_rate": 0.0}, data_shapes=[("data", (5, 4))],
                 label_shapes=[("softmax_label", (5,))], arg_params=_params(rs), eval_metric=["acc", "ce"])
    host = mx.metric.create(["acc", "ce"])
    for _ in range(3):
        x, y = rs.randn(5, 4).astype(np.float32), rs.randint(0, 3, 5)
        tr.step(_batch(x, y))
        host.update([mx.nd.array(y.astype(np.float32))], [mx.nd.NDArray(tr.outputs[0])])
    tr.sync_metric()
    got, want = tr.eval_metric.get(), host.get()
    assert got[0] == want[0]
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_lr_mult_attribute_freezes_a_parameter():
    rs = np.random.RandomState(4)
    p0 = _params(rs)
    tr = Trainer(_mlp(w_attrs={"lr_mult": 0.0}), "sgd", {"learning_rate": 0.5}, data_shapes=[("data", (2, 4))],
                 label_shapes=[("softmax_label", (2,))], arg_params=p0)
    tr.step(_batch(rs.randn(2, 4).astype(np.float32), np.array([0, 1])))
    np.testing.assert_array_equal(np.asarray(tr.params["fc1_weight"]), p0["fc1_weight"])
    assert not np.array_equal(np.asarray(tr.params["fc2_weight"]), p0["fc2_weight"])


def test_dropout_key_follows_the_step_counter():
    data = mx.sym.var("data")
    loss = mx.sym.MakeLoss(mx.sym.sum(mx.sym.Dropout(data * mx.sym.var("w"), p=0.5)))
    kw = dict(data_shapes=[("data", (64,))], arg_params={"w": np.ones(64, np.float32)}, seed=7,
              optimizer_params={"learning_rate": 0.0})
    a, b = Trainer(loss, "sgd", **kw), Trainer(loss, "sgd", **kw)
    batch = mx.io.DataBatch([np.ones(64, np.float32)])
    a.step(batch)
    b.step(batch)
    first = float(a.outputs[0][0])
    assert first == float(b.outputs[0][0])
    a.step(batch)
    assert float(a.outputs[0][0]) != first


def test_bad_batches_raise():
    tr = Trainer(_mlp(), "sgd", data_shapes=[("data", (2, 4))], label_shapes=[("softmax_label", (2,))])
    with pytest.raises(mx.ShapeError, match="bound for"):
        tr.step(_batch(np.zeros((2, 5), np.float32), np.zeros(2)))
    with pytest.raises(mx.BindError, match="expects"):
        tr.step(mx.io.DataBatch([np.zeros((2, 4), np.float32)], []))


def test_step_graph_goes_through_the_pass_pipeline():
    """O1 by default (like executors): a redundant multiply-by-one is simplified away, results unchanged;
    user passes such as amp run in the step; inference-only rewrites are skipped."""
    rs = np.random.RandomState(3)
    p0 = _params(rs)
    x, y = rs.randn(6, 4).astype(np.float32), rs.randint(0, 3, 6)
    data = mx.sym.var("data")
    h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=5, name="fc1") * 1.0, act_type="relu")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="fc2"), name="softmax")
    kw = dict(data_shapes=[("data", (6, 4))], label_shapes=[("softmax_label", (6,))], arg_params=p0)

    def ops(tr):
        return [n.op.name for n in tr.step_graph.topo_order() if n.op is not None]
    trainers = {level: Trainer(net, "sgd", {"learning_rate": 0.1}, opt_level=level, **kw) for level in (0, 1)}
    for tr in trainers.values():
        for _ in range(2):
            tr.step(_batch(x, y))
    assert trainers[0].report.records == [] and "_mul_scalar" in ops(trainers[0])
    assert "simplify" in [r.name for r in trainers[1].report.records] and "_mul_scalar" not in ops(trainers[1])
    for k in p0:
        np.testing.assert_allclose(np.asarray(trainers[1].params[k]), np.asarray(trainers[0].params[k]),
                                   rtol=1e-6, atol=1e-7)
    amp = Trainer(net, "sgd", {"learning_rate": 0.1}, passes=["amp"], pass_options={"amp_dtype": "bfloat16"}, **kw)
    for _ in range(2):
        amp.step(_batch(x, y))
    assert "amp_cast" in ops(amp)
    assert amp.params["fc1_weight"].dtype == jnp.float32                  # master weights stay float32
    for k in p0:
        np.testing.assert_allclose(np.asarray(amp.params[k]), np.asarray(trainers[1].params[k]), rtol=0.05, atol=0.02)
    folded = Trainer(net, "sgd", {"learning_rate": 0.1}, passes=["fold_batchnorm"], **kw)
    folded.step(_batch(x, y))                  # inference-only rewrites are skipped in training, as in executors
    assert [(r.name, r.skipped) for r in folded.report.records] == [("fold_batchnorm", True)]
