"""Module API: fit with the fused step, MXNet-style forward/backward/update, score/predict, callbacks,
and checkpoints that survive (resume equals uninterrupted; corrupt files raise)."""
import logging
import os

import numpy as np
import pytest

import xgraph as mx


def _net(dropout=False):
    h = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=8, name="fc1"), act_type="relu")
    if dropout:
        h = mx.sym.Dropout(h, p=0.3, name="drop")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=2, name="fc2"), name="softmax")


def _data(n=30, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.randn(n, 4).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    return x, y


def _init_params(seed=1):
    rs = np.random.RandomState(seed)
    return {"fc1_weight": rs.randn(8, 4).astype(np.float32) * 0.3, "fc1_bias": np.zeros(8, np.float32),
            "fc2_weight": rs.randn(2, 8).astype(np.float32) * 0.3, "fc2_bias": np.zeros(2, np.float32)}


def _params_np(mod):
    arg, aux = mod.get_params()
    return {k: v.asnumpy() for k, v in {**arg, **aux}.items()}


def test_fit_learns_and_score_predict_drop_padding():
    x, y = _data(64)
    it = mx.io.NDArrayIter(x, y, batch_size=10)
    mod = mx.mod.Module(_net())
    mod.fit(it, num_epoch=15, optimizer_params={"learning_rate": 0.5}, progress_bar=False,
            arg_params=_init_params())
    (name, acc), = mod.score(it, "acc")
    assert name == "accuracy" and acc > 0.9
    pred = mod.predict(it)
    assert pred.shape == (64, 2)                       # padded rows of the last batch dropped
    m = mx.metric.Accuracy()
    m.update([mx.nd.array(y)], [pred])
    assert m.get()[1] == pytest.approx(acc)
    assert len(mod.predict(it, merge_batches=False)) == 7
    assert mod.output_shapes == [("softmax_output", (10, 2))]
    assert mod.data_names == ["data"] and mod.label_names == ["softmax_label"]


def test_mxnet_style_loop_equals_fused_fit():
    x, y = _data(20)
    fused = mx.mod.Module(_net())
    fused.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=2, arg_params=_init_params(),
              optimizer_params={"learning_rate": 0.3, "momentum": 0.9, "wd": 0.01}, progress_bar=False)
    manual = mx.mod.Module(_net())
    it = mx.io.NDArrayIter(x, y, batch_size=5)
    manual.bind(it.provide_data, it.provide_label)
    manual.init_params(arg_params=_init_params())
    manual.init_optimizer(optimizer_params={"learning_rate": 0.3, "momentum": 0.9, "wd": 0.01})
    metric = mx.metric.create("acc")
    for _ in range(2):
        it.reset()
        for batch in it:
            manual.forward(batch, is_train=True)
            manual.backward()
            manual.update()
            manual.update_metric(metric, batch.label)
    a, b = _params_np(fused), _params_np(manual)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_input_grads_and_reshape_on_forward():
    mod = mx.mod.Module(_net())
    mod.bind([("data", (3, 4))], [("softmax_label", (3,))], inputs_need_grad=True)
    mod.init_params(arg_params=_init_params())
    mod.forward(mx.io.DataBatch([mx.nd.ones((3, 4))], [mx.nd.zeros((3,))]), is_train=True)
    mod.backward()
    assert mod.get_input_grads()[0].shape == (3, 4)
    mod.forward(mx.io.DataBatch([mx.nd.ones((5, 4))], [mx.nd.zeros((5,))]), is_train=False)
    assert mod.get_outputs()[0].shape == (5, 2)


def test_callbacks_run_and_log(tmp_path, caplog):
    x, y = _data(20)
    mod = mx.mod.Module(_net())
    prefix = str(tmp_path / "cb")
    with caplog.at_level(logging.INFO):
        mod.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=2, progress_bar=False,
                batch_end_callback=[mx.callback.Speedometer(5, frequent=2), mx.callback.log_train_metric(1),
                                    mx.callback.ProgressBar(total=4)],
                epoch_end_callback=mx.callback.do_checkpoint(prefix))
    text = caplog.text
    assert "samples/sec" in text and "accuracy=" in text and "Train-accuracy" in text
    assert os.path.exists(prefix + "-0002.params") and os.path.exists(prefix + "-symbol.json")
    sym, arg, aux = mx.model.load_checkpoint(prefix, 2)
    np.testing.assert_array_equal(arg["fc1_weight"].asnumpy(), mod.get_params()[0]["fc1_weight"].asnumpy())


def _fit(mod, begin, end, prefix=None, **kw):
    x, y = _data(24, seed=3)
    cbs = [mx.callback.module_checkpoint(mod, prefix, save_optimizer_states=True)] if prefix else None
    mod.fit(mx.io.NDArrayIter(x, y, batch_size=5), begin_epoch=begin, num_epoch=end, progress_bar=False,
            optimizer="sgd", optimizer_params={"learning_rate": 0.2, "momentum": 0.9,
                                               "lr_scheduler": mx.lr_scheduler.FactorScheduler(3, 0.7, base_lr=0.2)},
            epoch_end_callback=cbs, **kw)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    mx.random.seed(11)
    whole = mx.mod.Module(_net(dropout=True))
    _fit(whole, 0, 4, arg_params=_init_params())
    mx.random.seed(11)
    first = mx.mod.Module(_net(dropout=True))
    prefix = str(tmp_path / "run")
    _fit(first, 0, 2, prefix=prefix, arg_params=_init_params())
    mx.random.seed(999)                                  # the checkpoint, not the global seed, decides
    resumed = mx.mod.Module.load(prefix, 2, load_optimizer_states=True)
    _fit(resumed, 2, 4)
    a, b = _params_np(whole), _params_np(resumed)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)
    assert resumed._trainer.num_update == whole._trainer.num_update == 20


def test_corrupt_and_mismatched_checkpoints_raise(tmp_path):
    x, y = _data(10)
    mod = mx.mod.Module(_net())
    mod.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=1, progress_bar=False)
    prefix = str(tmp_path / "m")
    mod.save_checkpoint(prefix, 1, save_optimizer_states=True)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]      # atomic: no leftovers
    with open(prefix + "-0001.states", "rb") as f:
        raw = f.read()
    with open(prefix + "-0001.states", "wb") as f:
        f.write(raw[: len(raw) // 2])
    loaded = mx.mod.Module.load(prefix, 1, load_optimizer_states=True)
    with pytest.raises(mx.XGraphError, match="corrupt"):
        loaded.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=1, progress_bar=False)
    with open(prefix + "-0001.states", "wb") as f:
        f.write(raw)
    other = mx.mod.Module.load(prefix, 1, load_optimizer_states=True)
    with pytest.raises(mx.XGraphError, match="Adam"):
        other.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=1, progress_bar=False, optimizer="adam")
    wider = mx.mod.Module(mx.sym.SoftmaxOutput(mx.sym.FullyConnected(
        mx.sym.Activation(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=9, name="fc1"), act_type="relu"),
        num_hidden=2, name="fc2"), name="softmax"))
    wider.bind([("data", (5, 4))], [("softmax_label", (5,))])
    wider.init_params()
    wider.init_optimizer()
    with pytest.raises(mx.XGraphError, match="shape"):
        wider.load_optimizer_states(prefix + "-0001.states")
    with pytest.raises(mx.XGraphError, match="No such file|does not exist"):
        mx.mod.Module.load(prefix, 7, load_optimizer_states=True)


def test_unsupported_kvstore_and_missing_params_raise():
    mod = mx.mod.Module(_net())
    mod.bind([("data", (2, 4))], [("softmax_label", (2,))])
    with pytest.raises(mx.BindError, match="not presented"):
        mod.init_params(arg_params={"fc1_weight": np.zeros((8, 4), np.float32)})
    mod.init_params()
    with pytest.raises(mx.errors.UnsupportedFeatureError, match="dist_async"):
        mod.init_optimizer(kvstore="dist_async")
    with pytest.raises(mx.ConfigError, match="kvstore"):
        mod.init_optimizer(kvstore="dist_sinc")


def test_bind_grad_req_dict_overrides_defaults_by_name():
    """MXNet's executor group: a dict grad_req overrides the defaults name by name (unknown names ignored)."""
    net = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    mod = mx.mod.Module(net, label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", (3, 4))], inputs_need_grad=True,
             grad_req={"data": "add", "fc_weight": "null", "parameters": "null"})
    assert mod._exec.grad_req == {"data": "add", "fc_weight": "null", "fc_bias": "write"}
