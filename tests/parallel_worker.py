"""Child processes of tests/test_parallel.py (jax must start with several host devices, so they run apart).

    python tests/parallel_worker.py devices OUT   # 8 host devices, one process: data parallel vs one device
    python tests/parallel_worker.py worker OUT    # one of N processes (tools/launch.py sets DMLC_*)
    python tests/parallel_worker.py die OUT       # as worker, but rank 1 dies after its first step
    python tests/parallel_worker.py die0 OUT      # as worker, but rank 0 (the coordinator's host) dies
    python tests/parallel_worker.py sharded OUT   # one of 2 processes x 4 devices: parameters split over 'model'

Results go to OUT (a directory) as npz / json files the test compares.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import xgraph as mx  # noqa: E402
from xgraph.train.trainer import Trainer  # noqa: E402
from multidevice import xgraph_errors  # noqa: E402  (this folder is the script's sys.path[0])

BATCH = 16          # the global batch
STEPS = 4


def net() -> mx.sym.Symbol:
    """conv - BatchNorm - relu - dropout - fc - softmax: batch-coupled statistics and randomness."""
    x = mx.sym.Convolution(mx.sym.var("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), name="c0")
    x = mx.sym.Activation(mx.sym.BatchNorm(x, fix_gamma=False, name="bn0"), act_type="relu")
    x = mx.sym.Dropout(x, p=0.25, name="drop")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Flatten(x), num_hidden=5, name="fc"), name="softmax")


def mlp() -> mx.sym.Symbol:
    """fc - relu - dropout - fc - softmax (cheap to compile: the Module checks)."""
    x = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.var("data")), num_hidden=8, name="fc1"),
                          act_type="relu")
    x = mx.sym.Dropout(x, p=0.25, name="drop")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=5, name="fc2"), name="softmax")


def dataset(n: int = BATCH * STEPS) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(0)
    return rs.rand(n, 1, 6, 6).astype(np.float32), (rs.rand(n) * 5).astype(np.int32).astype(np.float32)


#: the parameters (and an aux state) the sharded mode stores split over the mesh's 'model' axis
SPLIT = {"c0_weight": ("model",), "bn0_gamma": ("model",), "bn0_moving_var": ("model",), "fc_weight": (None, "model")}


def trainer(local_batch: int, devices, init_seed: int = 0, param_shardings=None) -> Trainer:
    mx.random.seed(init_seed)
    return Trainer(net(), "sgd", {"learning_rate": 0.2, "momentum": 0.9}, data_shapes=[("data", (local_batch, 1, 6, 6))],
                   label_shapes=[("softmax_label", (local_batch,))], eval_metric="acc", seed=3,
                   initializer=mx.init.Xavier(), devices=devices, param_shardings=param_shardings)


def train(tr: Trainer, rank: int = 0, nproc: int = 1, die_after: int | None = None,
          partial: bool = False) -> Trainer:
    """STEPS steps over the dataset; process ``rank`` of ``nproc`` feeds its share of each global batch;
    ``partial``: then one batch of 10 rows (zero-padded to the batch, padded rows masked)."""
    x, y = dataset()
    share = BATCH // nproc
    for s in range(STEPS):
        lo = s * BATCH + rank * share
        tr.step(mx.io.DataBatch([x[lo:lo + share]], [y[lo:lo + share]]))
        if die_after is not None and s + 1 == die_after:
            print(f"rank {rank} dies now", flush=True)
            os._exit(3)
    if partial:
        tr.step(mx.io.DataBatch([x[:10]], [y[:10]]))
    tr.sync_metric()
    return tr


def trainer_step(sym: mx.sym.Symbol, devices) -> None:
    """One step of ``sym`` (the with_sharding errors appear when the step is traced)."""
    tr = Trainer(sym, "sgd", data_shapes=[("data", (BATCH, 1, 6, 6))], label_shapes=[("softmax_label", (BATCH,))],
                 devices=devices)
    x, y = dataset()
    tr.step(mx.io.DataBatch([x[:BATCH]], [y[:BATCH]]))


def fit_module(kvstore: str, rank: int = 0, nproc: int = 1) -> tuple[dict, float]:
    """Module.fit of the MLP for 2 epochs, this process feeding its share of every global batch;
    (the trained arguments, the accuracy on this process's rows)."""
    x, y = dataset()
    share = BATCH // nproc
    rows = np.concatenate([np.arange(s * BATCH + rank * share, s * BATCH + (rank + 1) * share) for s in range(STEPS)])
    mx.random.seed(1)
    mod = mx.mod.Module(mlp())
    it = mx.io.NDArrayIter(x[rows], y[rows], batch_size=share)
    mod.fit(it, num_epoch=2, kvstore=kvstore, progress_bar=False, optimizer_params={"learning_rate": 0.1},
            initializer=mx.init.Xavier())
    acc = dict(mod.score(mx.io.NDArrayIter(x[rows], y[rows], batch_size=share), "acc"))["accuracy"]
    return {k: v.asnumpy() for k, v in mod.get_params()[0].items()}, acc


def state(tr: Trainer) -> dict[str, np.ndarray]:
    return {**{f"arg:{k}": np.asarray(v) for k, v in tr.params.items()},
            **{f"aux:{k}": np.asarray(v) for k, v in tr.aux.items()}}


def devices_mode(out: str) -> None:
    import jax
    assert jax.device_count() == 8, jax.devices()
    res: dict = {}
    one = train(trainer(BATCH, None), partial=True)
    eight = train(trainer(BATCH, 8), partial=True)
    np.savez(os.path.join(out, "one.npz"), **state(one))
    np.savez(os.path.join(out, "eight.npz"), **state(eight))
    w = eight.params["fc_weight"]
    res["trace_count"] = eight.trace_count
    res["param_replicated"] = bool(w.is_fully_replicated) and len(w.sharding.device_set) == 8
    res["metric"] = [one.eval_metric.get()[1], eight.eval_metric.get()[1]]
    x, y = dataset()
    hlo = eight.compiled_step_text(mx.io.DataBatch([x[:BATCH]], [y[:BATCH]]))
    res["all_reduce"] = "all-reduce" in hlo
    res["batch_split"] = "f32[2,1,6,6]" in hlo      # each device sees 16 / 8 rows
    # model parallel: fc's output split over a 'model' axis of a 4 x 2 mesh (and the batch over 'data')
    from xgraph import parallel
    mesh = parallel.make_mesh(8, ("data", "model"), (4, 2))
    mp = {}
    for devices in (None, mesh):
        mx.random.seed(2)
        h = mx.sym.with_sharding(mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.var("data")), num_hidden=8, name="fc1"),
                                 ("data", "model"))
        sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.relu(h), num_hidden=5, name="fc2"), name="softmax")
        t = Trainer(sym, "sgd", {"learning_rate": 0.2}, data_shapes=[("data", (BATCH, 1, 6, 6))],
                    label_shapes=[("softmax_label", (BATCH,))], seed=3, devices=devices)
        for s in range(2):
            t.step(mx.io.DataBatch([x[s * BATCH:(s + 1) * BATCH]], [y[s * BATCH:(s + 1) * BATCH]]))
        mp[devices is None] = {k: np.asarray(v) for k, v in t.params.items()}
        if devices is not None:
            res["model_parallel_split"] = "f32[4,4]" in t.compiled_step_text(
                mx.io.DataBatch([x[:BATCH]], [y[:BATCH]]))     # 16 rows / 4, 8 units / 2 per device
    res["model_parallel_diff"] = max(float(np.abs(mp[True][k] - mp[False][k]).max()) for k in mp[True])
    mods = {}            # a Module with eight contexts against one
    for ctx in ([mx.cpu()], [mx.cpu(i) for i in range(8)]):
        mx.random.seed(1)
        mod = mx.mod.Module(mlp(), context=ctx)
        it = mx.io.NDArrayIter(x, y, batch_size=BATCH)
        mod.fit(it, num_epoch=2, kvstore=mx.kv.create("device"), progress_bar=False,
                optimizer_params={"learning_rate": 0.1}, initializer=mx.init.Xavier())
        mod.forward_backward(mx.io.DataBatch([mx.nd.array(x[:BATCH])], [mx.nd.array(y[:BATCH])]))
        mod.update()            # executor gradients into the data-parallel trainer
        mods[len(ctx)] = {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
        res[f"module_score_{len(ctx)}"] = dict(mod.score(mx.io.NDArrayIter(x, y, batch_size=BATCH), "acc"))["accuracy"]
    res["module_diff"] = max(float(np.abs(mods[1][k] - mods[8][k]).max()) for k in mods[1])
    res["errors"] = xgraph_errors({
        "batch": lambda: trainer(12, 8), "count": lambda: trainer(BATCH, 9),
        "twice": lambda: trainer(BATCH, [mx.cpu(0), mx.cpu(0)]),
        "axis": lambda: trainer_step(mx.sym.with_sharding(net(), ("model",)), 8),
        "work_load": lambda: mx.mod.Module(net(), context=[mx.cpu(0), mx.cpu(1)], work_load_list=[1, 2])})
    with open(os.path.join(out, "devices.json"), "w") as f:
        json.dump(res, f)


def worker_mode(out: str, dies: int | None = None) -> None:
    """One worker of tools/launch.py; process ``dies`` (if any) exits after its first step."""
    mx.distributed.initialize(timeout=30, heartbeat_timeout=3)
    import jax
    rank, n = mx.distributed.rank(), mx.distributed.num_workers()
    # every rank initializes differently: training must start from rank 0's values
    tr = trainer(BATCH // n, "all", init_seed=rank)
    train(tr, rank, n, die_after=1 if dies == rank else None)
    np.savez(os.path.join(out, f"rank{rank}.npz"), **state(tr))
    params, mod_acc = fit_module("dist_sync", rank, n)
    np.savez(os.path.join(out, f"module{rank}.npz"), **params)
    kv = mx.kv.create("dist_sync")
    kv.init("w", mx.nd.full((3,), float(rank + 10)))           # rank 0's value wins
    kv.push("w", [mx.nd.ones((3,)) * (rank + 1), mx.nd.ones((3,))])   # two devices' values, every worker's
    got = mx.nd.zeros((3,))
    kv.pull("w", out=got)
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.5, rescale_grad=1.0))
    kv.pushpull("w", mx.nd.ones((3,)), out=got)
    kv.barrier()
    info = {"rank": rank, "num_workers": n, "kv_rank": kv.rank, "kv_workers": kv.num_workers,
            "devices": jax.device_count(), "local_devices": jax.local_device_count(),
            "kv_pull": got.asnumpy().tolist(), "metric": tr.eval_metric.get()[1],
            "module_acc": mod_acc}
    try:
        mx.distributed.allreduce_host(np.ones(3 + rank, np.float32))   # uneven shapes over the workers
        info["uneven"] = None
    except mx.XGraphError as e:
        info["uneven"] = [type(e).__name__, str(e)]
    # processes that would build different programs are refused on every process, before any collective
    mismatched = {}
    for what, share, hidden in (("batch", BATCH // n // (1 + rank), 5), ("model", BATCH // n, 5 + rank)):
        sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.var("data")), num_hidden=hidden,
                                                         name="fc"), name="softmax")
        try:
            Trainer(sym, "sgd", data_shapes=[("data", (share, 1, 6, 6))], label_shapes=[("softmax_label", (share,))],
                    devices="all")
            mismatched[what] = None
        except mx.XGraphError as e:
            mismatched[what] = [type(e).__name__, str(e)]
    info["mismatched"] = mismatched
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(info, f)
    mx.distributed.shutdown()


def sharded_mode(out: str) -> None:
    """One of 2 processes x 4 devices: a ('data', 'model') mesh of 4 x 2, each process two 'data' rows,
    the parameters of SPLIT stored split over 'model'; every process starts from its own initial values."""
    mx.distributed.initialize(timeout=30, heartbeat_timeout=5)
    import jax
    from xgraph import parallel
    rank, n = mx.distributed.rank(), mx.distributed.num_workers()
    mesh = parallel.make_mesh("all", ("data", "model"), (jax.device_count() // 2, 2))
    tr = train(trainer(BATCH // n, mesh, init_seed=rank, param_shardings=SPLIT), rank, n)
    info = {"rank": rank, "devices": jax.device_count(), "local_devices": jax.local_device_count(),
            "trace_count": tr.trace_count, "metric": tr.eval_metric.get()[1],
            "specs": {k: str(tuple(v.sharding.spec)) for k, v in {**tr.params, **tr.aux}.items()},
            "local_shards": {k: sorted({tuple(sh.data.shape) for sh in v.addressable_shards})
                             for k, v in {**tr.params, **tr.aux}.items() if k in SPLIT}}
    arg, aux = tr.get_params()                # gathered whole: a collective every process joins
    np.savez(os.path.join(out, f"sharded{rank}.npz"), **{f"arg:{k}": v.asnumpy() for k, v in arg.items()},
             **{f"aux:{k}": v.asnumpy() for k, v in aux.items()})
    with open(os.path.join(out, f"sharded{rank}.json"), "w") as f:
        json.dump(info, f)
    mx.distributed.shutdown()


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "devices":
        devices_mode(out)
    elif mode == "sharded":
        sharded_mode(out)
    else:
        worker_mode(out, dies={"die": 1, "die0": 0}.get(mode))
