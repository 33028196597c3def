"""xgraph's executor against hand-written ``jax.jit`` code on the reference workloads.

Prints one table of median times (ms) in one run:

* ``oneop``: forward latency of a one-op graph (``a + b`` on shape (1,)) through
  ``Executor.forward`` + ``wait_to_read``, against a jitted ``lambda a, b: a + b``;
* ``mlp``: MLP 784-512-512-10 forward+backward at batch 128 (``simple_bind``,
  ``forward(is_train=True)``, ``backward()`` with a SoftmaxOutput head, waiting on
  the gradients), against one jitted ``value_and_grad`` of the same mean
  cross-entropy;
* ``r18``: ResNet-18 (CIFAR size) forward+backward at batch 32, BatchNorm in
  training mode, likewise.  Skipped, with the reason, while an operator it needs
  is not registered.

Shapes, seeded parameters and data are those of the shared reference benchmarks
(MXNet 1.9.1 and JAX), copied into ``_workloads.py``.  Targets: xgraph within
1.10x of JAX on the models, 1.5x on one-op dispatch.  The two sides are timed
alternately (``--rounds``) so that drifting machine load hits both alike; the
last column is the share of the machine's CPU that other processes used while
timing (a few % already disturbs the numbers).

    python benchmarks/bench_executor.py                  # everything
    python benchmarks/bench_executor.py --only oneop,mlp --iters 100
    python benchmarks/bench_executor.py --quick --tiny   # smoke run: seconds, meaningless timings
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))                  # _workloads
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # xgraph from a checkout

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import _workloads as W  # noqa: E402
import xgraph as mx  # noqa: E402
from xgraph.ops import registry  # noqa: E402

WORKLOADS = ("oneop", "mlp", "r18")
MODEL_TARGET, ONEOP_TARGET = 1.10, 1.5


@dataclass
class Row:
    """One line of the table: medians in ms (None when skipped) and what they are held to."""

    workload: str
    xgraph_ms: float | None = None
    jax_ms: float | None = None
    target: float = MODEL_TARGET
    other_cpu: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.xgraph_ms is None or not self.jax_ms:
            return None
        return self.xgraph_ms / self.jax_ms


@dataclass
class Settings:
    warmup: int
    iters: int
    rounds: int
    tiny: bool


# -- timing --------------------------------------------------------------------------
def alternate(fns: dict[str, Callable[[], object]], s: Settings) -> tuple[dict[str, float], float | None]:
    """Median ms of each function, timed in ``s.rounds`` alternating rounds; and the foreign CPU share."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(s.warmup):
            fn()
    fg = W.Foreign()
    for _ in range(s.rounds):
        for k, fn in fns.items():
            samples[k] += W.timeit(fn, 1, s.iters)
    return {k: W.median_ms(v) for k, v in samples.items()}, fg.frac()


def missing_ops(names: Sequence[str]) -> list[str]:
    """The operators among ``names`` that are not registered."""
    return [n for n in names if not registry.exists(n)]


def skipped_note(missing: Sequence[str]) -> str:
    """The note of a row skipped because ``missing`` operators are not registered."""
    return f"skipped: op{'s' if len(missing) > 1 else ''} {', '.join(missing)} not registered"


def max_rel_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """max over names of ||a - b|| / (||b|| + 1e-6): how far two gradient sets are apart.

    A norm, not the largest element: a ResNet's training-mode BatchNorm backward is ill-conditioned
    enough that single float32 elements of two correct implementations differ by a few percent
    (both differ from a float64 run by as much); the norms agree to within about 0.5%.
    """
    return max(float(np.linalg.norm(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)) /
                     (np.linalg.norm(np.asarray(b[k], np.float64)) + 1e-6)) for k in b)


# -- hand-written JAX ----------------------------------------------------------------------
def jax_ce_loss(logits, y):
    lp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(lp, y[:, None], axis=1))


def jax_fc(x, p, name):
    return x @ p[name + "_weight"].T + p[name + "_bias"]


def jax_mlp_loss(p, x, y, n_layers):
    for i in range(1, n_layers + 1):
        x = jax_fc(x, p, "fc%d" % i)
        if i < n_layers:
            x = jax.nn.relu(x)
    return jax_ce_loss(x, y)


def jax_resnet_loss(p, st, x, y, arch):
    """ResNet forward in NCHW with training-mode BatchNorm; returns (loss, new running stats)."""
    new_st = {}

    def conv(x, w, s, pad):
        return lax.conv_general_dilated(x, w, (s, s), [(pad, pad), (pad, pad)],
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def bn(x, name):
        g = p[name + "_gamma"].reshape(1, -1, 1, 1)
        b = p[name + "_beta"].reshape(1, -1, 1, 1)
        mm, mv = name + "_moving_mean", name + "_moving_var"
        mean = jnp.mean(x, (0, 2, 3))
        var = jnp.maximum(0.0, jnp.mean(jnp.square(x), (0, 2, 3)) - jnp.square(mean))
        new_st[mm] = W.BN_MOM * st[mm] + (1 - W.BN_MOM) * mean
        new_st[mv] = W.BN_MOM * st[mv] + (1 - W.BN_MOM) * var
        scale = lax.rsqrt(var.reshape(1, -1, 1, 1) + W.BN_EPS) * g
        return (x - mean.reshape(1, -1, 1, 1)) * scale + b

    stm = arch["stem"]
    x = jax.nn.relu(bn(conv(x, p["conv0_weight"], stm["s"], stm["p"]), "bn0"))
    for blk in arch["blocks"]:
        convs, sc = W.block_convs(blk)
        y_ = x
        for i, (suf, ci, co, k, s, pd) in enumerate(convs):
            y_ = bn(conv(y_, p[blk["name"] + "_" + suf + "_weight"], s, pd), blk["name"] + "_bn%d" % (i + 1))
            if i < len(convs) - 1:
                y_ = jax.nn.relu(y_)
        short = bn(conv(x, p[blk["name"] + "_sc_weight"], blk["stride"], 0), blk["name"] + "_scbn") if sc else x
        x = jax.nn.relu(y_ + short)
    x = jnp.mean(x, axis=(2, 3))
    return jax_ce_loss(jax_fc(x, p, "fc"), y), new_st


# -- xgraph symbols ------------------------------------------------------------------------
def xg_mlp(sizes: Sequence[int]) -> mx.Symbol:
    """The MLP as mx_bench builds it: FullyConnected/relu layers and a batch-normalized SoftmaxOutput."""
    x = mx.sym.var("data")
    for i in range(1, len(sizes)):
        x = mx.sym.FullyConnected(x, name="fc%d" % i, num_hidden=sizes[i])
        if i < len(sizes) - 1:
            x = mx.sym.Activation(x, act_type="relu", name="relu%d" % i)
    return mx.sym.SoftmaxOutput(x, mx.sym.var("softmax_label"), name="softmax", normalization="batch")


R18_OPS = ("Convolution", "BatchNorm", "Activation", "Pooling", "FullyConnected", "SoftmaxOutput", "elemwise_add")


def xg_resnet(arch: dict) -> mx.Symbol:
    """The ResNet as mx_bench builds it (node names match the seeded parameter names)."""
    def conv(x, name, co, k, s, p):
        return mx.sym.Convolution(x, name=name, num_filter=co, kernel=(k, k), stride=(s, s),
                                  pad=(p, p), no_bias=True)

    def bn(x, name):
        return mx.sym.BatchNorm(x, name=name, fix_gamma=False, eps=W.BN_EPS, momentum=W.BN_MOM)

    def relu(x):
        return mx.sym.Activation(x, act_type="relu")

    st = arch["stem"]
    x = relu(bn(conv(mx.sym.var("data"), "conv0", st["cout"], st["k"], st["s"], st["p"]), "bn0"))
    for blk in arch["blocks"]:
        convs, sc = W.block_convs(blk)
        y = x
        for i, (suf, ci, co, k, s, p) in enumerate(convs):
            y = bn(conv(y, blk["name"] + "_" + suf, co, k, s, p), blk["name"] + "_bn%d" % (i + 1))
            if i < len(convs) - 1:
                y = relu(y)
        short = bn(conv(x, blk["name"] + "_sc", blk["cout"], 1, blk["stride"], 0),
                   blk["name"] + "_scbn") if sc else x
        x = relu(y + short)
    x = mx.sym.Pooling(x, global_pool=True, pool_type="avg", kernel=(1, 1))
    x = mx.sym.FullyConnected(x, name="fc", num_hidden=arch["classes"])       # flattens (N, C, 1, 1)
    return mx.sym.SoftmaxOutput(x, mx.sym.var("softmax_label"), name="softmax", normalization="batch")


def xg_train_executor(net: mx.Symbol, params: dict, aux: dict, x: np.ndarray, y: np.ndarray,
                      **bind_options: Any) -> mx.Executor:
    """simple_bind with gradients for the parameters only, loaded with the seeded values.

    ``bind_options`` go to ``simple_bind`` (``opt_level``, ``passes``, ``pass_options``).
    """
    req = {n: ("null" if n in ("data", "softmax_label") else "write") for n in net.list_arguments()}
    ex = net.simple_bind(mx.cpu(), grad_req=req, data=x.shape, **bind_options)
    for n, v in params.items():
        ex.arg_dict[n][:] = v
    for n, v in aux.items():
        ex.aux_dict[n][:] = v
    ex.arg_dict["data"][:] = x
    ex.arg_dict["softmax_label"][:] = y.astype(np.float32)
    return ex


def train_pair(net: mx.Symbol, params: dict, aux: dict, x: np.ndarray, y: np.ndarray,
               jax_loss: Callable) -> tuple[Callable, Callable, float]:
    """(xgraph step, jax step, max relative gradient difference after one step of each)."""
    ex = xg_train_executor(net, params, aux, x, y)
    grads = [ex.grad_dict[n] for n in params]

    def xg_step():
        ex.forward(is_train=True)
        ex.backward()
        jax.block_until_ready([g.data for g in grads] + [o.data for o in ex.outputs])

    step = jax.jit(jax.value_and_grad(jax_loss, has_aux=True))
    jp = {k: jax.device_put(v) for k, v in params.items()}
    ja = {k: jax.device_put(v) for k, v in aux.items()}
    jx, jy = jax.device_put(x), jax.device_put(y)
    box = {}

    def jax_step():
        box["out"] = jax.block_until_ready(step(jp, ja, jx, jy))

    xg_step()
    jax_step()
    diff = max_rel_diff({n: ex.grad_dict[n].asnumpy() for n in params}, box["out"][1])
    return xg_step, jax_step, diff


# -- workloads ------------------------------------------------------------------------------
def bench_oneop(s: Settings) -> Row:
    a, b = mx.sym.var("a"), mx.sym.var("b")
    ex = (a + b).simple_bind(mx.cpu(), grad_req="null", a=(1,), b=(1,))
    ex.arg_dict["a"][:] = 1.0
    ex.arg_dict["b"][:] = 2.0

    def xg_call():
        ex.forward(is_train=False)
        ex.outputs[0].wait_to_read()

    f = jax.jit(lambda a, b: a + b)
    ja = jax.device_put(np.ones((1,), np.float32))
    jb = jax.device_put(np.full((1,), 2.0, np.float32))

    def jax_call():
        f(ja, jb).block_until_ready()

    xg_call()
    assert float(ex.outputs[0].asnumpy()[0]) == 3.0 and float(f(ja, jb)[0]) == 3.0
    per_call = Settings(warmup=max(s.warmup * 50, 20), iters=s.iters * 200, rounds=s.rounds, tiny=s.tiny)
    med, fg = alternate({"xgraph": xg_call, "jax": jax_call}, per_call)
    return Row("one-op a+b (1,) forward, per call", med["xgraph"], med["jax"], ONEOP_TARGET, fg)


def bench_mlp(s: Settings) -> Row:
    cfg = W.MLP_TINY if s.tiny else W.MLP
    params = W.mlp_params(cfg)
    x, y = W.mlp_data(cfg)
    n = len(cfg["sizes"]) - 1
    xg, jx, diff = train_pair(xg_mlp(cfg["sizes"]), params, {}, x, y,
                              lambda p, st, x, y: (jax_mlp_loss(p, x, y, n), st))
    med, fg = alternate({"xgraph": xg, "jax": jx}, s)
    sizes = "-".join(str(v) for v in cfg["sizes"])
    return Row(f"MLP {sizes} fwd+bwd b{cfg['batch']}", med["xgraph"], med["jax"], MODEL_TARGET, fg,
               f"grad rel diff {diff:.1e}")


def bench_r18(s: Settings) -> Row:
    cfg = W.R18_TINY if s.tiny else W.R18
    name = f"ResNet-18 CIFAR fwd+bwd b{cfg['batch']}"
    missing = missing_ops(R18_OPS)
    if missing:
        return Row(name, note=skipped_note(missing))
    arch = W.resnet18_cifar_arch(cfg)
    params, aux = W.resnet_params(arch)
    x, y = W.image_data(cfg["batch"], cfg["hw"], cfg["classes"])
    xg, jx, diff = train_pair(xg_resnet(arch), params, aux, x, y,
                              lambda p, st, x, y: jax_resnet_loss(p, st, x, y, arch))
    iters = max(1, s.iters // 5)           # a step takes seconds on a CPU
    med, fg = alternate({"xgraph": xg, "jax": jx}, Settings(min(s.warmup, 1), iters, s.rounds, s.tiny))
    return Row(name, med["xgraph"], med["jax"], MODEL_TARGET, fg, f"grad rel diff {diff:.1e}")


BENCHES = {"oneop": bench_oneop, "mlp": bench_mlp, "r18": bench_r18}


# -- output ---------------------------------------------------------------------------------------
def format_table(rows: Sequence[Row]) -> str:
    """The table: workload, xgraph ms, jax ms, ratio, target, within target, other processes' CPU."""
    head = f"{'workload':<38} {'xgraph ms':>10} {'jax ms':>10} {'ratio':>6} {'target':>8} {'ok':>3} {'other cpu':>9}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.xgraph_ms is None:
            lines.append(f"{r.workload:<38} {r.note}")
            continue
        ok = "yes" if r.ratio <= r.target else "NO"
        oc = "-" if r.other_cpu is None else f"{100 * r.other_cpu:.0f}%"
        lines.append(f"{r.workload:<38} {r.xgraph_ms:>10.4f} {r.jax_ms:>10.4f} {r.ratio:>6.2f} "
                     f"{'<=' + format(r.target, '.2f') + 'x':>8} {ok:>3} {oc:>9}  {r.note}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help=f"comma list of workloads: {','.join(WORKLOADS)} (default all)")
    ap.add_argument("--iters", type=int, default=None,
                    help="timed iterations per round (default 50; one-op makes 200x as many calls, "
                         "ResNet-18 a fifth)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating xgraph/jax rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls before timing")
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts, for a CI smoke run")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes too (timings meaningless)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wanted = [w for w in (args.only.split(",") if args.only else WORKLOADS) if w]
    unknown = [w for w in wanted if w not in BENCHES]
    if unknown:
        print(f"bench_executor: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}",
              file=sys.stderr)
        return 2
    s = Settings(warmup=1 if args.quick else args.warmup,
                 iters=args.iters or (2 if args.quick else 50),
                 rounds=args.rounds or (1 if args.quick else 3), tiny=args.tiny)
    print(f"xgraph {mx.__version__}, jax {jax.__version__}, {jax.devices()[0].platform} x{len(jax.devices())}, "
          f"{os.cpu_count()} cpus, python {platform.python_version()}; iters {s.iters} x {s.rounds} rounds"
          f"{' (quick)' if args.quick else ''}{' (tiny shapes)' if args.tiny else ''}", flush=True)
    jax.jit(lambda v: v + 1)(np.float32(1)).block_until_ready()     # backend start-up, not timed
    rows = []
    for w in wanted:
        t0 = time.perf_counter()
        rows.append(BENCHES[w](s))
        print(f"  {w}: done in {time.perf_counter() - t0:.1f} s", flush=True)
    print()
    print("median ms per call" + ("; ratio = xgraph / jax" if rows else ""))
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
