"""Data parallelism over 8 host devices, two processes on 127.0.0.1, the KVStore, and their bad input.

The multi-device checks run in child processes (tests/parallel_worker.py): jax in this process has
already started with one CPU device, and ``--xla_force_host_platform_device_count`` is read at start.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xgraph as mx
from xgraph import parallel
from xgraph.errors import UnsupportedFeatureError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import parallel_worker as pw  # noqa: E402
from multidevice import child_env, free_port, run_with_devices  # noqa: E402




@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    run_with_devices(ROOT / "tests" / "parallel_worker.py", "devices", out, devices=8)
    return out, json.loads((out / "devices.json").read_text())


def _close(a, b, what):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-5, err_msg=f"{what}: {k}")


def test_eight_devices_train_as_one(eight_devices):
    out, res = eight_devices
    one, eight = dict(np.load(out / "one.npz")), dict(np.load(out / "eight.npz"))
    _close(one, eight, "Trainer, 8 devices vs 1 (with a padded batch)")
    assert res["trace_count"] == 1                       # one compiled step for every batch
    assert res["param_replicated"] and res["all_reduce"] and res["batch_split"]
    assert res["metric"][0] == pytest.approx(res["metric"][1])
    assert res["module_diff"] < 1e-5 and res["module_score_1"] == res["module_score_8"]
    # model parallel: mx.sym.with_sharding splits fc1 over a 4 x 2 ('data', 'model') mesh, same result
    assert res["model_parallel_split"] and res["model_parallel_diff"] < 1e-5


def test_bad_device_configurations_say_what_is_wrong(eight_devices):
    errors = eight_devices[1]["errors"]
    assert all(e is not None and e[0] == "ParallelError" for e in errors.values()), errors
    assert "batch size 12" in errors["batch"][1] and "8 devices" in errors["batch"][1]
    assert "asked for 9 devices" in errors["count"][1] and "has 8" in errors["count"][1]
    assert "listed twice" in errors["twice"][1]
    assert "[1, 2]" in errors["work_load"][1]
    assert "node 'softmax'" in errors["axis"][1] and "['model']" in errors["axis"][1]


def _launch(mode, out, n=2, timeout=120, host_devices=2):
    cmd = [sys.executable, str(ROOT / "tools" / "launch.py"), "-n", str(n), "--host-devices", str(host_devices),
           "--timeout", "90", sys.executable, str(ROOT / "tests" / "parallel_worker.py"), mode, str(out)]
    return subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout)


def test_two_processes_train_as_one(tmp_path):
    res = _launch("worker", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    ref = pw.train(pw.trainer(pw.BATCH, None, init_seed=0))     # one process, one device, rank 0's start
    want = pw.state(ref)
    want_mod, _ = pw.fit_module("local")          # Module.fit(kvstore='dist_sync') over 2 processes vs one
    ranks = [dict(np.load(tmp_path / f"rank{rank}.npz")) for rank in (0, 1)]
    assert all(np.array_equal(ranks[0][k], ranks[1][k]) for k in want)         # bit-identical on both
    for rank in (0, 1):
        _close(want, ranks[rank], f"process {rank} of 2 vs one process")
        _close(want_mod, dict(np.load(tmp_path / f"module{rank}.npz")), f"Module of process {rank} vs one")
        info = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (info["rank"], info["num_workers"], info["kv_rank"], info["kv_workers"]) == (rank, 2, rank, 2)
        assert (info["devices"], info["local_devices"]) == (4, 2)
        # init: rank 0's 10; push: (1+1) + (2+1) = 5; then SGD(lr 0.5) on a gradient of 1 + 1: 5 - 1 = 4
        assert info["kv_pull"] == [4.0, 4.0, 4.0]
        assert info["metric"] == pytest.approx(ref.eval_metric.get()[1])
        assert 0 <= info["module_acc"] <= 1           # score runs on each process's own device
        assert info["uneven"][0] == "ParallelError" and "{0: (3,), 1: (4,)}" in info["uneven"][1]
        batch, model = info["mismatched"]["batch"], info["mismatched"]["model"]
        assert batch[0] == "ParallelError" and "the 2 processes disagree on 2 setting(s)" in batch[1], batch
        assert "input 'data': rank 0 [8, 1, 6, 6], rank 1 [4, 1, 6, 6]" in batch[1], batch
        assert "input 'softmax_label': rank 0 [8], rank 1 [4]" in batch[1], batch
        assert model[0] == "ParallelError", model
        assert "argument 'fc_weight': rank 0 [[5, 36], 'float32'], rank 1 [[6, 36], 'float32']" in model[1], model


def test_two_processes_train_split_parameters_as_one(tmp_path):
    """2 processes x 4 host devices, a ('data', 'model') mesh of 4 x 2: the batch split over 'data' across the
    processes, SPLIT's parameters (and an aux state) stored split over 'model'; both processes end with
    the parameters of one process on one device."""
    res = _launch("sharded", tmp_path, host_devices=4)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    want = pw.state(pw.train(pw.trainer(pw.BATCH, None, init_seed=0)))       # one process, rank 0's start
    got = [dict(np.load(tmp_path / f"sharded{rank}.npz")) for rank in (0, 1)]
    for rank in (0, 1):
        _close(want, got[rank], f"process {rank} of 2, split parameters, vs one process")
        info = json.loads((tmp_path / f"sharded{rank}.json").read_text())
        assert (info["rank"], info["devices"], info["local_devices"], info["trace_count"]) == (rank, 8, 4, 1)
        assert {k: info["specs"][k] for k in pw.SPLIT} == {k: str(tuple(v)) for k, v in pw.SPLIT.items()}
        assert info["specs"]["fc_bias"] == "()"
        # each device holds half of a split parameter: 4 filters / 2, 144 fc inputs / 2
        assert info["local_shards"] == {"c0_weight": [[2, 1, 3, 3]], "bn0_gamma": [[2]], "bn0_moving_var": [[2]],
                                        "fc_weight": [[5, 72]]}
    assert all(np.array_equal(got[0][k], got[1][k]) for k in want)              # bit-identical on both


def test_the_launcher_stops_every_worker_when_one_fails():
    """tools/launch.py: worker 1 fails at once, worker 0 would sleep a minute: the run ends with 1's status."""
    prog = ("import os, sys, time; r = int(os.environ['DMLC_WORKER_ID']); "
            "print('worker', r, 'of', os.environ['DMLC_NUM_WORKER'], os.environ['DMLC_PS_ROOT_URI']); "
            "sys.stdout.flush(); sys.exit(3) if r == 1 else time.sleep(60)")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "launch.py"), "-n", "2", sys.executable, "-c", prog],
                         env=child_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "worker 1 exited with status 3; stopping the other 1 running worker(s)" in res.stderr
    assert "[worker 0] worker 0 of 2 127.0.0.1" in res.stdout
    assert time.monotonic() - t0 < 20


@pytest.mark.parametrize("dead", [1, 0])
def test_a_dead_worker_stops_the_others_without_the_launcher(tmp_path, dead):
    """No launcher: process ``dead`` exits after its first step (0 hosts the coordinator).  The other fails
    within seconds: its next collective raises DistributedError (gloo's connection to the dead one is
    closed), or JAX's coordination service ends it ("another task died"), instead of hanging."""
    port = free_port()
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "parallel_worker.py"),
                               "die" if dead == 1 else "die0", str(tmp_path)],
                              env=child_env(DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT=str(port),
                                            DMLC_NUM_WORKER="2", DMLC_WORKER_ID=str(r),
                                            XLA_FLAGS="--xla_force_host_platform_device_count=1"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    ended, deadline = {}, time.monotonic() + 120
    try:
        while len(ended) < 2 and time.monotonic() < deadline:
            for r, p in enumerate(procs):
                if r not in ended and p.poll() is not None:
                    ended[r] = time.monotonic()
            time.sleep(0.05)
        outs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    alive = 1 - dead
    assert procs[dead].returncode == 3, outs[dead][-2000:]
    assert procs[alive].returncode != 0, outs[alive][-2000:]
    assert ended[alive] - ended[dead] < 15, ended             # within seconds, not a hang
    ours = f"DistributedError: reading the training metric failed in process {alive} of 2: a collective lost contact"
    if dead == 1:       # rank 0 keeps the coordinator: the failed collective is reported as ours
        assert ours in outs[alive], outs[alive][-3000:]
    else:               # the coordinator is gone: JAX's poller may end the process first
        assert ours in outs[alive] or "another task died" in outs[alive], outs[alive][-3000:]


# -- multi-process settings (no second process needed) -----------------------------------------------
def test_initialize_reads_mxnet_and_jax_variables_and_refuses_bad_settings(monkeypatch):
    got = parallel.settings_from_env({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "3",
                                      "JAX_PROCESS_ID": "2"})
    assert got == {"coordinator_address": "h:1", "num_processes": 3, "process_id": 2}
    with pytest.raises(mx.DistributedError, match="DMLC_PS_ROOT_PORT"):
        parallel.settings_from_env({"DMLC_PS_ROOT_URI": "h"})
    with pytest.raises(mx.DistributedError, match="DMLC_NUM_WORKER='two'"):
        parallel.settings_from_env({"DMLC_NUM_WORKER": "two"})
    for k in [k for k in os.environ if k.startswith(("DMLC_", "JAX_COORDINATOR", "JAX_NUM_PROC", "JAX_PROCESS_ID"))]:
        monkeypatch.delenv(k)
    with pytest.raises(mx.DistributedError, match="number of processes is unknown"):
        mx.distributed.initialize()
    with pytest.raises(mx.DistributedError, match="process_id 5 is outside 0..1"):
        mx.distributed.initialize("127.0.0.1:1234", 2, 5)
    with pytest.raises(mx.DistributedError, match="not host:port"):
        mx.distributed.initialize("127.0.0.1", 2, 1)
    with pytest.raises(mx.DistributedError, match="process_id"):
        mx.distributed.initialize("127.0.0.1:1234", 2)
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(mx.DistributedError, match=rf"127.0.0.1:{port} is unreachable after 0.5 s"):
        mx.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=1, timeout=0.5)
    assert time.monotonic() - t0 < 5
    mx.distributed.initialize(num_processes=1)          # one process: nothing to join
    assert not mx.distributed.is_initialized() and mx.distributed.num_workers() == 1
    assert mx.distributed.allreduce_host(np.ones(2)).tolist() == [1.0, 1.0]


def test_one_device_meshes_and_partition_specs():
    assert parallel.DataParallel(1).num_devices == 1
    tr = pw.trainer(4, 1)            # a one-device "mesh" is the ordinary single-device trainer
    assert tr.mesh is None and len(tr.devices) == 1
    with pytest.raises(mx.ParallelError, match="asked for 0 devices"):
        parallel.resolve_devices(0)
    with pytest.raises(mx.ParallelError, match="is not a device"):
        parallel.resolve_devices([object()])
    with pytest.raises(mx.ParallelError, match=r"mesh shape \(2,\) holds 2 devices, 1 were given"):
        parallel.make_mesh(1, shape=(2,))
    with pytest.raises(mx.ParallelError, match="needs 'data'"):
        parallel.DataParallel(parallel.make_mesh(1, ("model",)))
    assert parallel.partition_spec("('data', None)") == parallel.partition_spec(["data", None])
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, name="fc")
    sharded = mx.sym.with_sharding(fc, (None, "model"))
    assert sharded.attr("__sharding__") == "(None, 'model')" and fc.attr("__sharding__") is None
    assert sharded.graph.structural_hash() != fc.graph.structural_hash()     # a different program
    ex = sharded.simple_bind(mx.cpu(), x=(2, 3))             # no mesh: the constraint is a no-op
    assert ex.forward()[0].shape == (2, 4)
    mx.mod.Module(fc, data_names=("x",), label_names=None, group2ctxs={"dev1": mx.cpu(0), "dev2": mx.cpu(0)})   # one device: fine
    # groups over several devices are placed (tests/test_model_parallel.py); here there is one device only
    with pytest.raises(mx.DeviceError, match=r"group2ctxs\['dev2'\]: device cpu\(1\) does not exist"):
        mx.mod.Module(fc, data_names=("x",), label_names=None, group2ctxs={"dev1": mx.cpu(0), "dev2": mx.cpu(1)})
    # bind/simple_bind: ctx_groups on the executor's own device bind as one program
    grouped = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, name="fc", attr={"ctx_group": "dev1"})
    ex = grouped.simple_bind(mx.cpu(0), group2ctx={"dev1": mx.cpu(0)}, x=(2, 3))
    assert ex.forward()[0].shape == (2, 4) and ex.segments == []
    with pytest.raises(mx.DeviceError, match=r"group2ctx\['dev1'\]: device cpu\(1\) does not exist"):
        grouped.simple_bind(mx.cpu(0), group2ctx={"dev1": mx.cpu(1)}, x=(2, 3))
    with pytest.raises(mx.ConfigError, match="group2ctx must map ctx_group names to contexts"):
        grouped.simple_bind(mx.cpu(0), group2ctx=["dev1"], x=(2, 3))
    # on a variable it is the parameter's stored sharding (tests/test_param_sharding.py)
    assert mx.sym.with_sharding(mx.sym.var("x"), ("data",)).attr("__sharding__") == "('data',)"
    with pytest.raises(mx.ParallelError, match="not an axis name"):
        parallel.partition_spec("(data+1, None)")
    mesh = parallel.make_mesh(1, ("data", "model"), (1, 1))
    with pytest.raises(mx.ParallelError, match=r"names mesh axes \['x'\]"):
        parallel.check_spec(("x",), (4,), mesh, "node fc")
    with pytest.raises(mx.ParallelError, match="has 2 entries for a 1-d array"):
        parallel.check_spec(("data", None), (4,), mesh, "node fc")


# -- the KVStore (MXNet 1.9.1 semantics, one process) --------------------------------------------
def test_kvstore_push_sums_pull_broadcasts_and_keys_are_checked():
    kv = mx.kv.create("local")
    assert (kv.type, kv.rank, kv.num_workers) == ("local", 0, 1) and kv.is_capable("optimizer")
    kv.init([3, 5], [mx.nd.ones((2, 2)), mx.nd.zeros((2,))])
    kv.init("w", mx.nd.full((2,), 7.0))
    with pytest.raises(mx.ConfigError, match="duplicate init of key 3"):
        kv.init(3, mx.nd.ones((2, 2)))
    kv.push(3, [mx.nd.ones((2, 2)) * i for i in range(1, 4)])       # one value per device: summed
    outs = [mx.nd.zeros((2, 2)), mx.nd.zeros((2, 2))]
    kv.pull(3, out=outs)
    assert all((o.asnumpy() == 6).all() for o in outs)
    kv.pushpull("w", mx.nd.ones((2,)))       # no optimizer: the stored value becomes the pushed sum
    out = mx.nd.zeros((2,))
    kv.pull("w", out=out)
    assert out.asnumpy().tolist() == [1.0, 1.0]
    with pytest.raises(mx.ConfigError, match="key 9 was not initialized"):
        kv.push(9, mx.nd.ones((1,)))
    with pytest.raises(mx.ConfigError, match="mix ints and strs"):
        kv.pull([3, "w"], out=[outs[0], out])
    with pytest.raises(mx.ShapeError, match=r"shape \(3,\), the stored value has \(2,\)"):
        kv.push("w", mx.nd.ones((3,)))
    with pytest.raises(mx.ShapeError, match="out for key 'w'"):
        kv.pull("w", out=mx.nd.zeros((4,)))
    b = [mx.nd.zeros((2,)), mx.nd.zeros((2,))]
    kv.broadcast("b", mx.nd.full((2,), 2.0), out=b)
    assert [x.asnumpy().tolist() for x in b] == [[2.0, 2.0]] * 2


def test_kvstore_optimizer_states_round_trip_and_refused_stores(tmp_path):
    kv = mx.kv.create("device")
    kv.init(0, mx.nd.ones((3,)))
    with pytest.raises(mx.ConfigError, match="no optimizer was set"):
        kv.save_optimizer_states(tmp_path / "s")
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, rescale_grad=1.0))
    kv.push(0, [mx.nd.ones((3,)), mx.nd.ones((3,))])                # grad 2: w = 1 - 0.2
    w = mx.nd.zeros((3,))
    kv.pull(0, out=w)
    np.testing.assert_allclose(w.asnumpy(), 0.8, rtol=1e-6)
    kv.save_optimizer_states(tmp_path / "s", dump_optimizer=True)
    kv.push(0, mx.nd.ones((3,)))                    # momentum: -0.9 * 0.2 - 0.1 -> w = 0.8 - 0.28
    kv.pull(0, out=w)
    after = w.asnumpy().copy()
    kv2 = mx.kv.create("device")
    kv2.init(0, mx.nd.full((3,), 0.8))
    kv2.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, rescale_grad=1.0))
    kv2.load_optimizer_states(tmp_path / "s")
    kv2.push(0, mx.nd.ones((3,)))
    kv2.pull(0, out=w)
    np.testing.assert_allclose(w.asnumpy(), after, rtol=1e-6)
    np.testing.assert_allclose(after, 0.52, rtol=1e-5)
    assert mx.kv.create("dist_sync").num_workers == 1      # one process: a distributed store of one worker
    with pytest.raises(UnsupportedFeatureError, match="dist_async"):
        mx.kv.create("dist_async")
    with pytest.raises(mx.ConfigError, match="unknown kvstore type 'dist_sinc'"):
        mx.kv.create("dist_sinc")
