"""xgraph's fused training step (what ``Module.fit`` runs per batch) against a hand-written ``jax.jit``
train step, and optionally MXNet 1.9.1's Module, on the reference workloads.

Each row times one full training step: forward, backward and the SGD update of every parameter
(xgraph's step also accumulates the accuracy metric, as ``fit`` does), with parameters and
optimizer state donated on both sides.  Workloads (shapes, seeded parameters and data from
``_workloads.py``, the shared reference benchmarks' copy):

* ``mlp``: MLP 784-512-512-10, batch 128, SGD lr 0.01;
* ``r18``: ResNet-18 (CIFAR size), batch 32, BatchNorm in training mode, SGD lr 0.01;
* ``lstm``: 2-layer LSTM language model, batch 20, seq 35, vocab 10k, embedding/hidden 200, SGD
  lr 0.5.  xgraph (and MXNet) run ``Embedding``, the fused ``RNN`` op (mode='lstm', MXNet's packed
  parameter vector, packed from the reference's per-layer weights; zero initial states, not
  trained), ``FullyConnected`` and ``SoftmaxOutput``; the JAX side is the reference's per-layer
  ``lax.scan`` LSTM.  The losses of the first 5 SGD steps of every side are printed in the note:
  they agree to ~6 digits when the workloads compute the same thing.

A row is skipped, saying why, while an operator it needs is not registered.  "update rel diff" is
max |update_xgraph - update_jax| / max |update_jax| after one step, an update being p0 - p1 in float32
(so it includes the rounding of p - lr * g: ~1e-3 for the LSTM's embedding, whose updates are 1e4
times smaller than its weights; the gradients themselves agree to ~1e-6).

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
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import _workloads as W  # noqa: E402
import bench_executor as BE  # noqa: E402  (the models, written once for both benchmarks)
import xgraph as mx  # noqa: E402
from xgraph.train.trainer import Trainer  # noqa: E402

WORKLOADS = ("mlp", "r18", "lstm")
TARGET = 1.05


@dataclass
class Row(BE.Row):
    """One line: medians in ms (None when skipped), with MXNet's Module next to them."""

    target: float = TARGET
    mxnet_ms: float | None = None


@dataclass
class Workload:
    """One model, the same on every side: the xgraph/MXNet symbol and its arguments, the hand-written
    JAX loss and its parameters (which may be laid out differently), data, labels and SGD learning rate."""

    name: str
    net: mx.Symbol
    params: dict                    # the symbol's arguments by name: trained ones and ``fixed`` ones
    aux: dict
    x: np.ndarray
    y: np.ndarray
    lr: float
    jax_loss: Callable              # (params, state, x, y) -> (mean loss, new state)
    jax_params: dict | None = None  # the JAX side's parameters, when not ``params`` themselves
    jax_to_xg: Callable | None = None   # JAX parameter dict -> the symbol's trained arguments
    fixed: tuple = ()               # arguments that are not trained (initial recurrent states)
    data_layout: str | None = None  # e.g. 'TN', so the Trainer and MXNet's Module find the batch axis
    label_layout: str | None = None
    check_steps: int = 0            # first SGD steps whose losses are compared across frameworks


def train_pair(w: Workload) -> tuple[Callable, Callable, float, dict[str, list[float]]]:
    """(xgraph fused step, hand-written jax step, max relative update difference after one step each,
    the losses of the first ``w.check_steps`` steps of each side).

    The loss-recording steps run before timing and double as warm-up."""
    x, y, lr = w.x, w.y, w.lr
    data_desc = mx.io.DataDesc("data", x.shape, layout=w.data_layout) if w.data_layout else ("data", x.shape)
    tr = Trainer(w.net, "sgd", {"learning_rate": lr, "rescale_grad": 1.0}, data_shapes=[data_desc],
                 label_shapes=[("softmax_label", y.shape)], arg_params=w.params, aux_params=w.aux,
                 eval_metric="acc", fixed_param_names=list(w.fixed))
    data = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y.astype(np.float32))], pad=0)

    def xg_step():
        tr.step(data)
        jax.block_until_ready(list(tr.params.values()))

    def jstep(p, st, x, y):
        (loss, new_st), g = jax.value_and_grad(w.jax_loss, has_aux=True)(p, st, x, y)
        return {k: p[k] - lr * g[k] for k in p}, {**st, **new_st}, loss
    jstep = jax.jit(jstep, donate_argnums=(0, 1))
    jparams = w.params if w.jax_params is None else w.jax_params
    box = {"p": {k: jax.device_put(v) for k, v in jparams.items()},
           "st": {k: jax.device_put(v) for k, v in w.aux.items()}}
    jx, jy = jax.device_put(x), jax.device_put(y)

    def jax_step():
        box["p"], box["st"], box["loss"] = jstep(box["p"], box["st"], jx, jy)
        jax.block_until_ready(box["p"])

    losses: dict[str, list[float]] = {"xgraph": [], "jax": []}

    def record():
        if len(losses["jax"]) < w.check_steps:
            losses["xgraph"].append(W.ce_loss_from_probs(np.asarray(tr.outputs[0]), y))
            losses["jax"].append(float(box["loss"]))

    xg_step()
    jax_step()
    record()
    # compare the updates (p0 - p1, i.e. lr * gradient): zero-initialized biases make raw params tiny
    to_xg = w.jax_to_xg or (lambda p: p)
    j0 = to_xg(jparams)
    j1 = to_xg({k: np.asarray(v) for k, v in box["p"].items()})
    diff = BE.max_rel_diff({k: w.params[k] - np.asarray(v) for k, v in tr.params.items()},
                           {k: j0[k] - j1[k] for k in tr.params})
    for _ in range(w.check_steps - 1):
        xg_step()
        jax_step()
        record()
    assert tr.trace_count == 1
    return xg_step, jax_step, diff, losses


MX_SCRIPT = r"""
import json, sys, time, numpy as np, mxnet as mx
spec = json.loads(sys.argv[1]); d = np.load(spec["npz"])
sym = mx.sym.load(spec["symbol"])
mod = mx.mod.Module(sym, data_names=["data"], label_names=["softmax_label"], context=mx.cpu(),
                    fixed_param_names=spec["fixed"])
def desc(name, shape, layout):
    return mx.io.DataDesc(name, shape, layout=layout) if layout is not None else (name, shape)
mod.bind(data_shapes=[desc("data", d["x"].shape, spec["data_layout"])],
         label_shapes=[desc("softmax_label", d["y"].shape, spec["label_layout"])])
arg = {k[4:]: mx.nd.array(d[k]) for k in d.files if k.startswith("arg:")}
aux = {k[4:]: mx.nd.array(d[k]) for k in d.files if k.startswith("aux:")}
mod.init_params(arg_params=arg, aux_params=aux)
mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": spec["lr"], "rescale_grad": 1.0})
batch = mx.io.DataBatch([mx.nd.array(d["x"])], [mx.nd.array(d["y"])])
y = d["y"].astype(np.int64)
def step():
    mod.forward_backward(batch); mod.update(); mx.nd.waitall()
losses = []
for _ in range(spec["check"]):
    step()
    p = mod.get_outputs()[0].asnumpy().astype(np.float64)
    losses.append(float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-30))))
for _ in range(spec["warmup"]): step()
ts = []
for _ in range(spec["iters"]):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print(json.dumps({"ms": sorted(ts)[len(ts) // 2] * 1e3, "losses": losses}))
"""


def mxnet_ms(w: Workload, s: "Settings") -> tuple[float | None, list[float], str]:
    """MXNet Module's median step time (ms) through ``XG_MX_PY`` and its first-steps losses,
    or (None, [], why not)."""
    py = os.environ.get("XG_MX_PY")
    if not py:
        return None, [], "mxnet: XG_MX_PY not set"
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        sym_path, npz = os.path.join(tmp, "net-symbol.json"), os.path.join(tmp, "data.npz")
        w.net.save(sym_path)
        np.savez(npz, x=w.x, y=w.y.astype(np.float32), **{f"arg:{k}": v for k, v in w.params.items()},
                 **{f"aux:{k}": v for k, v in w.aux.items()})
        spec = json.dumps({"symbol": sym_path, "npz": npz, "lr": w.lr, "warmup": s.warmup,
                           "iters": s.iters * s.rounds, "fixed": list(w.fixed), "check": w.check_steps,
                           "data_layout": w.data_layout, "label_layout": w.label_layout})
        try:
            res = subprocess.run([py, "-c", MX_SCRIPT, spec], capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, [], f"mxnet: failed to run {py}: {e}"
    if res.returncode != 0:
        return None, [], ("mxnet: failed ("
                          f"{res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode})")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return float(out["ms"]), list(out["losses"]), ""


@dataclass
class Settings:
    warmup: int
    iters: int
    rounds: int
    tiny: bool


def _losses_note(losses: dict[str, list[float]]) -> str:
    """'losses xgraph [..] jax [..] mxnet [..], max |diff| ..' (6 decimals, as the shared reference table)."""
    if not losses.get("xgraph"):
        return ""
    parts = [f"{k} [{', '.join(f'{v:.6f}' for v in vals)}]" for k, vals in losses.items() if vals]
    ref = losses["xgraph"]
    spread = max(abs(a - b) for vals in losses.values() if vals for a, b in zip(ref, vals))
    return f"; losses {' '.join(parts)}, max |diff| {spread:.1e}"


def _run(w: Workload, s: Settings) -> Row:
    xg, jx, diff, losses = train_pair(w)
    med, fg = BE.alternate({"xgraph": xg, "jax": jx}, BE.Settings(s.warmup, s.iters, s.rounds, s.tiny))
    mx_ms, mx_losses, why = mxnet_ms(w, s)
    if mx_losses:
        losses["mxnet"] = mx_losses
    note = f"update rel diff {diff:.1e}" + _losses_note(losses) + (f"; {why}" if why else "")
    return Row(w.name, med["xgraph"], med["jax"], mxnet_ms=mx_ms, other_cpu=fg, note=note)


def bench_mlp(s: Settings) -> Row:
    cfg = W.MLP_TINY if s.tiny else W.MLP
    params = W.mlp_params(cfg)
    x, y = W.mlp_data(cfg)
    n = len(cfg["sizes"]) - 1
    sizes = "-".join(str(v) for v in cfg["sizes"])
    return _run(Workload(f"MLP {sizes} train step b{cfg['batch']}", BE.xg_mlp(cfg["sizes"]), params, {}, x, y,
                         cfg["lr"], lambda p, st, x, y: (BE.jax_mlp_loss(p, x, y, n), st)), s)


def bench_r18(s: Settings) -> Row:
    cfg = W.R18_TINY if s.tiny else W.R18
    name = f"ResNet-18 CIFAR train step b{cfg['batch']}"
    missing = BE.missing_ops(BE.R18_OPS)
    if missing:
        return Row(name, note=BE.skipped_note(missing))
    arch = W.resnet18_cifar_arch(cfg)
    params, aux = W.resnet_params(arch)
    x, y = W.image_data(cfg["batch"], cfg["hw"], cfg["classes"])
    slow = Settings(min(s.warmup, 1), max(1, s.iters // 5), s.rounds, s.tiny)     # seconds per step on a CPU
    return _run(Workload(name, BE.xg_resnet(arch), params, aux, x, y, cfg["lr"],
                         lambda p, st, x, y: BE.jax_resnet_loss(p, st, x, y, arch)), slow)


# -- LSTM language model ------------------------------------------------------------------
LSTM_OPS = ("Embedding", "RNN", "Reshape", "FullyConnected", "SoftmaxOutput")


def xg_lstm_lm(cfg: dict) -> mx.Symbol:
    """The LSTM LM as mx_bench builds it: Embedding, the fused 2-layer ``RNN`` (packed parameters,
    explicit initial states), FullyConnected to the vocabulary, batch-normalized SoftmaxOutput."""
    H, L, V, E = cfg["hidden"], cfg["layers"], cfg["vocab"], cfg["embed"]
    x = mx.sym.Embedding(mx.sym.var("data"), name="embed", input_dim=V, output_dim=E)            # (T, N, E)
    x = mx.sym.RNN(x, mx.sym.var("rnn_parameters"), mx.sym.var("rnn_state"), mx.sym.var("rnn_state_cell"),
                   state_size=H, num_layers=L, mode="lstm", name="rnn")                         # (T, N, H)
    x = mx.sym.Reshape(x, shape=(-1, H))
    x = mx.sym.FullyConnected(x, name="fc", num_hidden=V)
    return mx.sym.SoftmaxOutput(x, mx.sym.var("softmax_label"), name="softmax", normalization="batch")


def jax_lstm_loss(p: dict, tok: jax.Array, lab: jax.Array, cfg: dict) -> jax.Array:
    """The reference's hand-written LSTM LM (per-layer weights, input projection hoisted out of a
    per-step ``lax.scan``), mean cross-entropy."""
    H, L, N = cfg["hidden"], cfg["layers"], cfg["batch"]
    x = p["embed_weight"][tok]                                        # (T, N, E)
    for l in range(L):
        wx, wh = p["l%d_i2h_weight" % l], p["l%d_h2h_weight" % l]
        b = p["l%d_i2h_bias" % l] + p["l%d_h2h_bias" % l]
        xp = jnp.einsum("tni,gi->tng", x, wx) + b
        whT = wh.T

        def cell(carry, xt, whT=whT):
            h, c = carry
            i, f, g, o = jnp.split(xt + h @ whT, 4, axis=-1)         # MXNet gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
        z0 = jnp.zeros((N, H), x.dtype)
        _, x = lax.scan(cell, (z0, z0), xp)
    return BE.jax_ce_loss(BE.jax_fc(x.reshape(-1, H), p, "fc"), lab)


def bench_lstm(s: Settings) -> Row:
    cfg = W.LSTM_TINY if s.tiny else W.LSTM
    T, N, V, H, L = cfg["seq"], cfg["batch"], cfg["vocab"], cfg["hidden"], cfg["layers"]
    name = f"{L}-layer LSTM LM train step b{N} x{T}, vocab {f'{V // 1000}k' if V >= 1000 else V}"
    missing = BE.missing_ops(LSTM_OPS)
    if missing:
        return Row(name, note=BE.skipped_note(missing))
    jp = W.lstm_params(cfg)
    tok, lab = W.lstm_data(cfg)
    params = {"embed_weight": jp["embed_weight"], "rnn_parameters": W.lstm_pack_mx(jp, L),
              "rnn_state": np.zeros((L, N, H), np.float32), "rnn_state_cell": np.zeros((L, N, H), np.float32),
              "fc_weight": jp["fc_weight"], "fc_bias": jp["fc_bias"]}

    def to_xg(p):
        return {"embed_weight": p["embed_weight"], "rnn_parameters": W.lstm_pack_mx(p, L),
                "fc_weight": p["fc_weight"], "fc_bias": p["fc_bias"]}
    # MXNet's Module slices data and labels along their layout's N axis: the labels (T * N,) have none
    return _run(Workload(name, xg_lstm_lm(cfg), params, {}, tok, lab, cfg["lr"],
                         lambda p, st, x, y: (jax_lstm_loss(p, x, y, cfg), st), jax_params=jp, jax_to_xg=to_xg,
                         fixed=("rnn_state", "rnn_state_cell"), data_layout="TN", label_layout="",
                         check_steps=W.CHECK_STEPS), s)


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
