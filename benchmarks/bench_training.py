"""xgraph's fused training step (what ``Module.fit`` runs per batch) against a hand-written ``jax.jit``
train step, and optionally MXNet 1.9.1's Module, on the reference workloads.

Each row times one full training step: forward, backward and the SGD update of every parameter
(xgraph's step also accumulates the accuracy metric, as ``fit`` does), with parameters and
optimizer state donated on both sides.  Workloads (shapes, seeded parameters and data from
``_workloads.py``, the shared reference benchmarks' copy):

* ``mlp``: MLP 784-512-512-10, batch 128, SGD lr 0.01;
* ``r18``: ResNet-18 (CIFAR size), batch 32, BatchNorm in training mode, SGD lr 0.01;
* ``lstm``: 2-layer LSTM LM, batch 20, seq 35, vocab 10k: needs the ``RNN`` operator; the row says
  why when it is skipped.

Target: xgraph <= 1.05x hand-written JAX.  When ``XG_MX_PY`` names a Python with MXNet 1.9.1, MXNet's
``Module.forward_backward`` + ``update`` on the same model is timed in a subprocess too.

    python benchmarks/bench_training.py                    # everything
    python benchmarks/bench_training.py --only mlp --iters 50
    python benchmarks/bench_training.py --quick --tiny     # smoke run: seconds, meaningless timings
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))                  # _workloads, bench_executor
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # xgraph from a checkout

import jax  # noqa: E402

import _workloads as W  # noqa: E402
import bench_executor as BE  # noqa: E402  (the models, written once for both benchmarks)
import xgraph as mx  # noqa: E402
from xgraph.ops import registry  # noqa: E402
from xgraph.train.trainer import Trainer  # noqa: E402

WORKLOADS = ("mlp", "r18", "lstm")
TARGET = 1.05


@dataclass
class Row:
    """One line: medians in ms (None when skipped)."""

    workload: str
    xgraph_ms: float | None = None
    jax_ms: float | None = None
    mxnet_ms: float | None = None
    other_cpu: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.xgraph_ms is None or not self.jax_ms:
            return None
        return self.xgraph_ms / self.jax_ms


def train_pair(net: mx.Symbol, params: dict, aux: dict, x: np.ndarray, y: np.ndarray, lr: float,
               jax_loss: Callable) -> tuple[Callable, Callable, float]:
    """(xgraph fused step, hand-written jax step, max relative parameter difference after one step each)."""
    batch = x.shape[0]
    tr = Trainer(net, "sgd", {"learning_rate": lr, "rescale_grad": 1.0}, data_shapes=[("data", x.shape)],
                 label_shapes=[("softmax_label", y.shape)], arg_params=params, aux_params=aux, eval_metric="acc")
    data = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y.astype(np.float32))], pad=0)

    def xg_step():
        tr.step(data)
        jax.block_until_ready(list(tr.params.values()))

    def jstep(p, st, x, y):
        (loss, new_st), g = jax.value_and_grad(jax_loss, has_aux=True)(p, st, x, y)
        return {k: p[k] - lr * g[k] for k in p}, {**st, **new_st}, loss
    jstep = jax.jit(jstep, donate_argnums=(0, 1))
    box = {"p": {k: jax.device_put(v) for k, v in params.items()},
           "st": {k: jax.device_put(v) for k, v in aux.items()}}
    jx, jy = jax.device_put(x), jax.device_put(y)

    def jax_step():
        box["p"], box["st"], loss = jstep(box["p"], box["st"], jx, jy)
        jax.block_until_ready(box["p"])

    xg_step()
    jax_step()
    # compare the updates (p0 - p1, i.e. lr * gradient): zero-initialized biases make raw params tiny
    diff = BE.max_rel_diff({k: params[k] - np.asarray(v) for k, v in tr.params.items()},
                           {k: params[k] - np.asarray(v) for k, v in box["p"].items()})
    assert tr.trace_count == 1
    return xg_step, jax_step, diff


MX_SCRIPT = r"""
import json, sys, time, numpy as np, mxnet as mx
spec = json.loads(sys.argv[1]); d = np.load(spec["npz"])
sym = mx.sym.load(spec["symbol"])
mod = mx.mod.Module(sym, data_names=["data"], label_names=["softmax_label"], context=mx.cpu())
mod.bind(data_shapes=[("data", d["x"].shape)], label_shapes=[("softmax_label", d["y"].shape)])
arg = {k[4:]: mx.nd.array(d[k]) for k in d.files if k.startswith("arg:")}
aux = {k[4:]: mx.nd.array(d[k]) for k in d.files if k.startswith("aux:")}
mod.init_params(arg_params=arg, aux_params=aux)
mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": spec["lr"], "rescale_grad": 1.0})
batch = mx.io.DataBatch([mx.nd.array(d["x"])], [mx.nd.array(d["y"])])
def step():
    mod.forward_backward(batch); mod.update(); mx.nd.waitall()
for _ in range(spec["warmup"]): step()
ts = []
for _ in range(spec["iters"]):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print(json.dumps({"ms": sorted(ts)[len(ts) // 2] * 1e3}))
"""


def mxnet_ms(net: mx.Symbol, params: dict, aux: dict, x: np.ndarray, y: np.ndarray, lr: float,
             s: "Settings") -> tuple[float | None, str]:
    """MXNet Module's median step time (ms) through ``XG_MX_PY``, or (None, why not)."""
    py = os.environ.get("XG_MX_PY")
    if not py:
        return None, "mxnet: XG_MX_PY not set"
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        sym_path, npz = os.path.join(tmp, "net-symbol.json"), os.path.join(tmp, "data.npz")
        net.save(sym_path)
        np.savez(npz, x=x, y=y.astype(np.float32), **{f"arg:{k}": v for k, v in params.items()},
                 **{f"aux:{k}": v for k, v in aux.items()})
        spec = json.dumps({"symbol": sym_path, "npz": npz, "lr": lr, "warmup": s.warmup, "iters": s.iters * s.rounds})
        try:
            res = subprocess.run([py, "-c", MX_SCRIPT, spec], capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"mxnet: failed to run {py}: {e}"
    if res.returncode != 0:
        return None, f"mxnet: failed ({res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode})"
    return float(json.loads(res.stdout.strip().splitlines()[-1])["ms"]), ""


@dataclass
class Settings:
    warmup: int
    iters: int
    rounds: int
    tiny: bool


def _run(name: str, net: mx.Symbol, params: dict, aux: dict, x: np.ndarray, y: np.ndarray, lr: float,
         jax_loss: Callable, s: Settings) -> Row:
    xg, jx, diff = train_pair(net, params, aux, x, y, lr, jax_loss)
    med, fg = BE.alternate({"xgraph": xg, "jax": jx}, BE.Settings(s.warmup, s.iters, s.rounds, s.tiny))
    mx_ms, why = mxnet_ms(net, params, aux, x, y, lr, s)
    note = f"update rel diff {diff:.1e}" + (f"; {why}" if why else "")
    return Row(name, med["xgraph"], med["jax"], mx_ms, fg, note)


def bench_mlp(s: Settings) -> Row:
    cfg = W.MLP_TINY if s.tiny else W.MLP
    params = W.mlp_params(cfg)
    x, y = W.mlp_data(cfg)
    n = len(cfg["sizes"]) - 1
    sizes = "-".join(str(v) for v in cfg["sizes"])
    return _run(f"MLP {sizes} train step b{cfg['batch']}", BE.xg_mlp(cfg["sizes"]), params, {}, x, y, cfg["lr"],
                lambda p, st, x, y: (BE.jax_mlp_loss(p, x, y, n), st), s)


def bench_r18(s: Settings) -> Row:
    cfg = W.R18_TINY if s.tiny else W.R18
    name = f"ResNet-18 CIFAR train step b{cfg['batch']}"
    missing = BE.missing_ops(BE.R18_OPS)
    if missing:
        return Row(name, note=f"skipped: op{'s' if len(missing) > 1 else ''} {', '.join(missing)} not registered")
    arch = W.resnet18_cifar_arch(cfg)
    params, aux = W.resnet_params(arch)
    x, y = W.image_data(cfg["batch"], cfg["hw"], cfg["classes"])
    slow = Settings(min(s.warmup, 1), max(1, s.iters // 5), s.rounds, s.tiny)     # seconds per step on a CPU
    return _run(name, BE.xg_resnet(arch), params, aux, x, y, cfg["lr"],
                lambda p, st, x, y: BE.jax_resnet_loss(p, st, x, y, arch), slow)


def bench_lstm(s: Settings) -> Row:
    name = "2-layer LSTM LM train step b20 x35, vocab 10k"
    if not registry.exists("RNN"):
        return Row(name, note="skipped: op RNN not registered")
    return Row(name, note="skipped: the RNN workload's packed-parameter layout is not wired into this "
                          "benchmark yet (examples/lstm_lm.py trains an LSTM LM)")


BENCHES = {"mlp": bench_mlp, "r18": bench_r18, "lstm": bench_lstm}


def format_table(rows: Sequence[Row]) -> str:
    """The table: workload, xgraph ms, jax ms, ratio, target met, mxnet ms, other processes' CPU, note."""
    head = (f"{'workload':<44} {'xgraph ms':>10} {'jax ms':>10} {'ratio':>6} {'<=' + format(TARGET, '.2f') + 'x':>7} "
            f"{'mxnet ms':>9} {'other cpu':>9}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.xgraph_ms is None:
            lines.append(f"{r.workload:<44} {r.note}")
            continue
        ok = "yes" if r.ratio <= TARGET else "NO"
        oc = "-" if r.other_cpu is None else f"{100 * r.other_cpu:.0f}%"
        mxs = "-" if r.mxnet_ms is None else f"{r.mxnet_ms:.3f}"
        lines.append(f"{r.workload:<44} {r.xgraph_ms:>10.3f} {r.jax_ms:>10.3f} {r.ratio:>6.2f} {ok:>7} "
                     f"{mxs:>9} {oc:>9}  {r.note}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help=f"comma list of workloads: {','.join(WORKLOADS)} (default all)")
    ap.add_argument("--iters", type=int, default=None, help="timed steps per round (default 30; ResNet a fifth)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating xgraph/jax rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts, for a CI smoke run")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes too (timings meaningless)")
    args = ap.parse_args(argv)
    wanted = [w for w in (args.only.split(",") if args.only else WORKLOADS) if w]
    unknown = [w for w in wanted if w not in BENCHES]
    if unknown:
        print(f"bench_training: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}",
              file=sys.stderr)
        return 2
    s = Settings(warmup=1 if args.quick else args.warmup, iters=args.iters or (2 if args.quick else 30),
                 rounds=args.rounds or (1 if args.quick else 3), tiny=args.tiny)
    print(f"xgraph {mx.__version__}, jax {jax.__version__}, {jax.devices()[0].platform} x{len(jax.devices())}, "
          f"{os.cpu_count()} cpus, python {platform.python_version()}; iters {s.iters} x {s.rounds} rounds"
          f"{' (quick)' if args.quick else ''}{' (tiny shapes)' if args.tiny else ''}", flush=True)
    rows = []
    for w in wanted:
        t0 = time.perf_counter()
        rows.append(BENCHES[w](s))
        print(f"  {w}: done in {time.perf_counter() - t0:.1f} s", flush=True)
    print()
    print("median ms per training step; ratio = xgraph / jax")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
