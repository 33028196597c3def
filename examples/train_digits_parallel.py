"""Train the digits convnet data-parallel: one device, then N host devices, then (under the launcher) N processes.

One process, 8 CPU devices against one (the batch is split over a mesh, the step stays one XLA program):

    python examples/train_digits_parallel.py --devices 8
    python examples/train_digits_parallel.py --devices 8 --fast      # CI: fewer epochs, lower bar

Two processes on this machine (each with 4 CPU devices; every process reads its share of each batch):

    python tools/launch.py -n 2 --host-devices 4 python examples/train_digits_parallel.py --fast

Prints, per run, ``<label>: <samples/s> samples/s, <ms> ms/step, test accuracy 0.9xxx`` (throughput
after the first, compiling, epoch) and exits non-zero when an accuracy is below the bar.  On a CPU
the host "devices" share the same cores, so more devices mainly shows the program is the same;
on several GPUs or hosts the throughput scales.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=8, help="CPU devices of the data-parallel run in one process")
    ap.add_argument("--batch-size", type=int, default=64, help="global batch (a multiple of the device count)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--fast", action="store_true", help="few epochs, lower bar (CI)")
    ap.add_argument("--no-progress", action="store_true", help="accepted for symmetry with the other examples")
    return ap.parse_args(argv)


ARGS = _parse(None if __name__ == "__main__" else [])
MULTI = int(os.environ.get("DMLC_NUM_WORKER", os.environ.get("JAX_NUM_PROCESSES", "1")) or 1) > 1
if __name__ == "__main__" and not MULTI and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # host devices must be asked for before jax starts
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={ARGS.devices}").strip()

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import xgraph as mx  # noqa: E402
from xgraph.train.trainer import Trainer  # noqa: E402
from train_digits import convnet, load_digits  # noqa: E402


def run(label: str, devices, data, epochs: int, batch: int, rank: int = 0, nproc: int = 1) -> tuple[float, float]:
    """Train ``epochs`` epochs; (samples/s after the first epoch, test accuracy)."""
    x_tr, x_te, y_tr, y_te = data
    mx.random.seed(0)
    share = batch // nproc
    steps_per_epoch = len(x_tr) // batch
    tr = Trainer(convnet(), "sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4,
                                    "lr_scheduler": mx.lr_scheduler.CosineScheduler(
                                        max_update=epochs * steps_per_epoch, base_lr=0.1)},
                 data_shapes=[("data", (share, 1, 8, 8))], label_shapes=[("softmax_label", (share,))],
                 initializer=mx.init.Xavier(magnitude=2.0), eval_metric="acc", seed=0, devices=devices)
    order = np.random.RandomState(0)
    t_steady, n_steady = 0.0, 0
    for epoch in range(epochs):
        perm = order.permutation(len(x_tr))
        tic = time.perf_counter()
        for s in range(steps_per_epoch):       # full batches only (several processes refuse padding)
            idx = perm[s * batch + rank * share: s * batch + (rank + 1) * share]
            tr.step(mx.io.DataBatch([x_tr[idx]], [y_tr[idx]]))
        jax_block(tr)
        if epoch > 0:
            t_steady += time.perf_counter() - tic
            n_steady += steps_per_epoch
    # test accuracy on one device, from the trained parameters
    args, aux = tr.get_params()
    mod = mx.mod.Module(convnet())
    mod.bind(data_shapes=[("data", (128, 1, 8, 8))], label_shapes=[("softmax_label", (128,))], for_training=False)
    mod.set_params({k: v.asnumpy() for k, v in args.items()}, {k: v.asnumpy() for k, v in aux.items()})
    acc = dict(mod.score(mx.io.NDArrayIter(x_te, y_te, batch_size=128), "acc"))["accuracy"]
    speed = n_steady * batch / max(t_steady, 1e-9)
    ms = 1000 * t_steady / max(n_steady, 1)
    if rank == 0:
        print(f"{label}: {speed:.0f} samples/s, {ms:.2f} ms/step, test accuracy {acc:.4f}", flush=True)
    return speed, acc


def jax_block(tr: Trainer) -> None:
    for v in tr.params.values():
        v.block_until_ready()


def main() -> int:
    epochs = ARGS.epochs or (4 if ARGS.fast else 15)
    bar = 0.85 if ARGS.fast else 0.97
    data = load_digits()
    if MULTI:
        mx.distributed.initialize()
        rank, n = mx.distributed.rank(), mx.distributed.num_workers()
        import jax
        label = f"{n} processes x {jax.local_device_count()} devices"
        _, acc = run(label, "all", data, epochs, ARGS.batch_size, rank, n)
        mx.distributed.shutdown()
        return 0 if acc >= bar else 1
    base, acc1 = run("1 device", None, data, epochs, ARGS.batch_size)
    speed, acc8 = run(f"{ARGS.devices} devices", ARGS.devices, data, epochs, ARGS.batch_size)
    print(f"speed-up {speed / base:.2f}x over one device", flush=True)
    return 0 if min(acc1, acc8) >= bar else 1


if __name__ == "__main__":
    sys.exit(main())
