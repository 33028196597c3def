"""Resuming training from a checkpoint equals training without a break, bit for bit on the CPU.

Each case trains a small Dropout MLP two ways with the same seeds: straight
through four epochs, and two epochs, a checkpoint (parameters + optimizer
states), a fresh Module/Trainer loaded from it, then the last two epochs.
Losses of every batch, the final parameters, the optimizer states and the
update counter / RNG state must be identical.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import xgraph as mx
from xgraph.train.trainer import Trainer

BATCH, N = 8, 32          # 4 batches an epoch


def _data():
    rs = np.random.RandomState(0)
    x = rs.rand(N, 6).astype(np.float32)
    y = (rs.rand(N) * 3).astype(np.int64).astype(np.float32)
    return x, y


def _net():
    h = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=64, name="fc1")
    h = mx.sym.Dropout(mx.sym.Activation(h, act_type="relu", name="relu1"), p=0.3, name="drop")
    h = mx.sym.FullyConnected(h, num_hidden=3, name="fc2")
    return mx.sym.SoftmaxOutput(h, name="softmax")


OPTIMIZERS = {
    "sgd_momentum": lambda: ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}),
    "adam": lambda: ("adam", {"learning_rate": 0.01}),
    "sgd_lr_schedule": lambda: ("sgd", {"learning_rate": 0.2, "momentum": 0.5,
                                        "lr_scheduler": mx.lr_scheduler.FactorScheduler(step=3, factor=0.5,
                                                                                        base_lr=0.2)}),
}


def _losses_callback(losses, labels_of):
    def cb(param):
        mod = param.locals["self"]
        prob = mod.get_outputs()[0].asnumpy()
        label = labels_of(param.locals["batch"]).astype(np.int64)
        losses.append(-np.log(prob[np.arange(len(label)), label]))
    return cb


def _states(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    return meta, arrays


def _assert_same_run(a_losses, b_losses, a_params, b_params, a_states, b_states):
    assert len(a_losses) == len(b_losses)
    for i, (la, lb) in enumerate(zip(a_losses, b_losses)):
        np.testing.assert_array_equal(la, lb, err_msg=f"batch {i}")
    assert sorted(a_params) == sorted(b_params)
    for k in a_params:
        np.testing.assert_array_equal(a_params[k].asnumpy(), b_params[k].asnumpy(), err_msg=k)
    (ma, aa), (mb, ab) = a_states, b_states
    assert ma == mb                       # counter, seed, structure
    assert sorted(aa) == sorted(ab) and aa
    for k in aa:
        np.testing.assert_array_equal(aa[k], ab[k], err_msg=f"optimizer state {k}")


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_module_fit_resume_equals_uninterrupted(tmp_path, opt):
    x, y = _data()
    labels = lambda batch: batch.label[0].asnumpy()  # noqa: E731

    def fit(mod, losses, begin, end):
        it = mx.io.NDArrayIter(x, y, batch_size=BATCH)
        name, params = OPTIMIZERS[opt]()
        mod.fit(it, begin_epoch=begin, num_epoch=end, optimizer=name, optimizer_params=params,
                initializer=mx.init.Xavier(), progress_bar=False,
                batch_end_callback=_losses_callback(losses, labels))

    mx.random.seed(7)
    straight, straight_losses = mx.mod.Module(_net()), []
    fit(straight, straight_losses, 0, 4)
    straight.save_checkpoint(str(tmp_path / "a"), 4, save_optimizer_states=True)

    mx.random.seed(7)
    first, resumed_losses = mx.mod.Module(_net()), []
    fit(first, resumed_losses, 0, 2)
    first.save_checkpoint(str(tmp_path / "b"), 2, save_optimizer_states=True)
    del first
    mx.random.seed(12345)                 # the resumed run must not depend on the global stream
    second = mx.mod.Module.load(str(tmp_path / "b"), 2, load_optimizer_states=True)
    fit(second, resumed_losses, 2, 4)
    second.save_checkpoint(str(tmp_path / "b"), 4, save_optimizer_states=True)

    _assert_same_run(straight_losses, resumed_losses, straight.get_params()[0], second.get_params()[0],
                     _states(tmp_path / "a-0004.states"), _states(tmp_path / "b-0004.states"))
    meta, _ = _states(tmp_path / "b-0004.states")
    assert meta["num_update"] == 16


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_trainer_resume_equals_uninterrupted(tmp_path, opt):
    x, y = _data()
    sym = _net()
    descs = dict(data_shapes=[("data", (BATCH, 6))], label_shapes=[("softmax_label", (BATCH,))])
    batches = [mx.io.DataBatch([x[i:i + BATCH]], [y[i:i + BATCH]]) for i in range(0, N, BATCH)] * 4

    def make(**kw):
        name, params = OPTIMIZERS[opt]()
        return Trainer(sym, name, params, initializer=mx.init.Xavier(), **descs, **kw)

    def run(tr, bs, losses):
        for b in bs:
            tr.step(b)
            prob = np.asarray(tr.outputs[0])
            lab = np.asarray(b.label[0]).astype(np.int64)
            losses.append(-np.log(prob[np.arange(BATCH), lab]))

    mx.random.seed(3)
    a, a_losses = make(), []
    run(a, batches, a_losses)
    a.save_states(tmp_path / "a.states")

    mx.random.seed(3)
    b1, b_losses = make(), []
    run(b1, batches[:8], b_losses)
    args, aux = b1.get_params()
    mx.nd.save(str(tmp_path / "b.params"), {f"arg:{k}": v for k, v in args.items()})
    b1.save_states(tmp_path / "b.states")
    del b1
    mx.random.seed(999)
    loaded = mx.nd.load(str(tmp_path / "b.params"))
    b2 = make(arg_params={k[4:]: v for k, v in loaded.items()})
    b2.load_states(tmp_path / "b.states")
    run(b2, batches[8:], b_losses)
    b2.save_states(tmp_path / "b2.states")
    _assert_same_run(a_losses, b_losses, a.get_params()[0], b2.get_params()[0],
                     _states(tmp_path / "a.states"), _states(tmp_path / "b2.states"))


def test_given_arrays_survive_donation(tmp_path):
    """The fused step donates its buffers: arrays the caller handed in must stay readable and unchanged."""
    x, y = _data()
    mx.random.seed(0)
    mod = mx.mod.Module(_net())
    it = mx.io.NDArrayIter(x, y, batch_size=BATCH)
    mod.fit(it, num_epoch=1, progress_bar=False, initializer=mx.init.Xavier())
    mod.save_checkpoint(str(tmp_path / "m"), 1)
    sym, args, auxs = mx.model.load_checkpoint(str(tmp_path / "m"), 1)
    before = {k: v.asnumpy().copy() for k, v in args.items()}
    results = []
    for _ in range(2):    # two modules resumed from the same loaded dict: the second must not see dead arrays
        mx.random.seed(5)
        m = mx.mod.Module(sym)
        m.fit(mx.io.NDArrayIter(x, y, batch_size=BATCH), arg_params=args, aux_params=auxs, begin_epoch=1,
              num_epoch=2, progress_bar=False)
        results.append(m.get_params()[0])
    for k in before:
        np.testing.assert_array_equal(args[k].asnumpy(), before[k])
        np.testing.assert_array_equal(results[0][k].asnumpy(), results[1][k].asnumpy())
    # set_params before bind, then fit: the caller's arrays survive too
    m = mx.mod.Module(sym)
    m.set_params(args, auxs)
    m.fit(mx.io.NDArrayIter(x, y, batch_size=BATCH), num_epoch=1, progress_bar=False)
    tr = Trainer(sym, "sgd", {"learning_rate": 0.1}, data_shapes=[("data", (BATCH, 6))],
                 label_shapes=[("softmax_label", (BATCH,))], arg_params=args)
    tr.step(mx.io.DataBatch([x[:BATCH]], [y[:BATCH]]))
    for k in before:
        np.testing.assert_array_equal(args[k].asnumpy(), before[k])

