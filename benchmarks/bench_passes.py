"""The optimization pipeline's costs and gains, in one run.

Prints four tables:

(a) ``pipeline``: time of the O1 pass pipeline and of lowering to StableHLO
    (tracing + MLIR, no XLA compile) for generated graphs of 1k, 10k and 100k
    nodes (time per node shows whether growth is linear) and for a
    ResNet-50-sized graph at O2 with bound parameters (target < 1 s);
(b) ``bn-convnet``: inference time of a convnet with BatchNorm at O0 and O2
    (BatchNorm folded into the convolutions), and a hand-written ``jax.jit``
    of the same network;
(c) ``remat``: XLA's temp_size_in_bytes (``compiled.memory_analysis()``) of a
    deep MLP's training step without and with rematerialisation segments;
(d) ``r18``: ResNet-18 (CIFAR size) inference at batch 1 and 32 and a training
    step at batch 32 per convolution strategy and with frozen parameters,
    against plain ``lax.conv`` lowering (O0), and against MXNet 1.9.1 when
    ``XG_MX_PY`` names a Python with MXNet (it runs the shared
    ``mx_bench.py --only r18``; reference numbers on this machine:
    /work/shared/bench/reference_table.txt).

The machine's 2 cores are shared: each row gives the median, the min and the
share of CPU that other processes used while timing (``foreign``).

    python benchmarks/bench_passes.py            # full run (several minutes)
    python benchmarks/bench_passes.py --quick    # seconds; tiny shapes, meaningless timings
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import _workloads as W  # noqa: E402
import xgraph as mx  # noqa: E402
from xgraph.lower import GradientPrograms, Lowered  # noqa: E402
from xgraph.passes import optimize  # noqa: E402

SHARED_BENCH = os.environ.get("XG_SHARED_BENCH", "/work/shared/bench")


def _time(fn: Callable[[], Any], warmup: int, iters: int) -> tuple[float, float, float | None]:
    """(median ms, min ms, foreign CPU share) of ``fn`` (which synchronises itself)."""
    fg = W.Foreign()
    ts = W.timeit(fn, warmup, iters)
    return W.median_ms(ts), min(ts) * 1e3, fg.frac()


def _fmt_foreign(f: float | None) -> str:
    return "-" if f is None else f"{100 * f:.0f}%"


def _table(title: str, head: list[str], rows: list[list[Any]]) -> None:
    print(f"\n== {title}")
    cells = [head] + [[("-" if c is None else (f"{c:.3f}" if isinstance(c, float) else str(c))) for c in r]
                      for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


# -- (a) pipeline time -----------------------------------------------------------------
def generated_graph(n_nodes: int, seed: int = 0) -> mx.Symbol:
    """A random elementwise graph of about ``n_nodes`` op nodes over 4 inputs, with duplicates for CSE."""
    r = np.random.RandomState(seed)
    vals = [mx.sym.var(f"x{i}") for i in range(4)]
    unary = [mx.sym.relu, mx.sym.tanh, mx.sym.sigmoid, lambda a: a * 1.0, lambda a: a + 0.0]
    for _ in range(n_nodes):
        k = r.randint(4)
        a = vals[-1 - r.randint(min(len(vals), 8))]
        if k == 0:
            b = vals[-1 - r.randint(min(len(vals), 8))]
            v = a + b
        elif k == 1:
            b = vals[-1 - r.randint(min(len(vals), 8))]
            v = a * b
        else:
            v = unary[r.randint(len(unary))](a)
        vals.append(v)
    return mx.sym.sum(vals[-1]) + mx.sym.sum(vals[len(vals) // 2])


def resnet50_symbol(batch: int = 1) -> mx.Symbol:
    """ResNet-50 (224×224, bottleneck blocks, BatchNorm) as a symbol."""
    def conv(x, name, co, k, s, p):
        return mx.sym.Convolution(x, name=name, num_filter=co, kernel=(k, k), stride=(s, s), pad=(p, p),
                                  no_bias=True)

    def bn(x, name):
        return mx.sym.BatchNorm(x, name=name, fix_gamma=False, eps=1e-5)

    x = mx.sym.Activation(bn(conv(mx.sym.var("data"), "conv0", 64, 7, 2, 3), "bn0"), act_type="relu")
    x = mx.sym.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")
    cin = 64
    for s, (mid, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
        for b in range(blocks):
            st = stride if b == 0 else 1
            n = f"s{s}b{b}"
            y = mx.sym.Activation(bn(conv(x, n + "_c1", mid, 1, 1, 0), n + "_bn1"), act_type="relu")
            y = mx.sym.Activation(bn(conv(y, n + "_c2", mid, 3, st, 1), n + "_bn2"), act_type="relu")
            y = bn(conv(y, n + "_c3", mid * 4, 1, 1, 0), n + "_bn3")
            sc = bn(conv(x, n + "_sc", mid * 4, 1, st, 0), n + "_scbn") if (st != 1 or cin != mid * 4) else x
            x = mx.sym.Activation(y + sc, act_type="relu")
            cin = mid * 4
    x = mx.sym.Pooling(x, global_pool=True, pool_type="avg", kernel=(1, 1))
    return mx.sym.FullyConnected(mx.sym.Flatten(x), num_hidden=1000, name="fc")


def bench_pipeline(quick: bool) -> None:
    rows = []
    sizes = (200, 1000) if quick else (1000, 10000, 100000)
    for n in sizes:
        sym = generated_graph(n)
        shapes = {f"x{i}": (4,) for i in range(4)}
        t0 = time.perf_counter()
        opt = optimize(sym.graph, opt_level=1, shapes=shapes)
        t1 = time.perf_counter()
        Lowered(opt.graph, shapes).as_text(debug_info=False)
        t2 = time.perf_counter()
        nodes = len(sym.graph)
        rows.append([f"generated {n} ops", nodes, len(opt.graph), (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                     (t2 - t0) * 1e6 / nodes])
    sym = resnet50_symbol()
    ex_shapes = {"data": (1, 3, 224, 224)}
    arg_s, _, aux_s = sym.infer_shape(**ex_shapes)
    rng = np.random.default_rng(0)
    params = {n: rng.standard_normal(s).astype(np.float32) * 0.05
              for n, s in zip(sym.list_arguments(), arg_s) if n != "data"}
    params.update({n: np.ones(s, np.float32) for n, s in zip(sym.list_auxiliary_states(), aux_s)})
    t0 = time.perf_counter()
    opt = optimize(sym.graph, opt_level=2, shapes=ex_shapes, params=params)
    t1 = time.perf_counter()
    shapes = dict(ex_shapes, **{k: v.shape for k, v in {**params, **opt.new_params}.items()})
    Lowered(opt.graph, shapes).as_text(debug_info=False)
    t2 = time.perf_counter()
    rows.append(["ResNet-50 O2 + params", len(sym.graph), len(opt.graph), (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                 (t2 - t0) * 1e6 / len(sym.graph)])
    _table("(a) pipeline time: O1 passes, then lowering to StableHLO (no XLA compile)",
           ["graph", "nodes", "after", "passes ms", "lower ms", "us/node"], rows)


# -- (b) BatchNorm convnet O0 vs O2 ------------------------------------------------------
def bn_convnet(depth: int) -> mx.Symbol:
    x = mx.sym.var("data")
    for i in range(depth):
        x = mx.sym.Convolution(x, num_filter=32, kernel=(3, 3), pad=(1, 1), no_bias=True, name=f"c{i}")
        x = mx.sym.BatchNorm(x, fix_gamma=False, eps=1e-5, name=f"bn{i}")
        x = mx.sym.Activation(x, act_type="relu", name=f"r{i}")
    return mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Pooling(x, global_pool=True, pool_type="avg",
                                                               kernel=(1, 1))), num_hidden=10, name="fc")


def bench_bn_convnet(quick: bool) -> None:
    depth, shape = (2, (2, 32, 8, 8)) if quick else (6, (8, 32, 32, 32))
    warm, iters = (1, 3) if quick else (3, 30)
    sym = bn_convnet(depth)
    ex0 = sym.simple_bind(mx.cpu(), grad_req="null", data=shape, opt_level=0)
    rng = np.random.default_rng(0)
    vals = {n: rng.standard_normal(a.shape).astype(np.float32) * 0.1 for n, a in ex0.arg_dict.items()}
    aux = {n: (np.abs(rng.standard_normal(a.shape)) + 0.5).astype(np.float32) for n, a in ex0.aux_dict.items()}
    rows, ref = [], None
    for level in (0, 2):
        ex = sym.bind(mx.cpu(), args=vals, aux_states=aux, grad_req="null", opt_level=level)
        out = ex.forward()[0].asnumpy()
        ref = out if ref is None else ref
        med, mn, fg = _time(lambda: ex.forward()[0].wait_to_read(), warm, iters)
        rows.append([f"xgraph O{level}", med, mn, float(np.abs(out - ref).max()), _fmt_foreign(fg)])

    def jax_net(p, a, x):
        for i in range(depth):
            x = lax.conv_general_dilated(x, p[f"c{i}_weight"], (1, 1), [(1, 1), (1, 1)],
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
            inv = p[f"bn{i}_gamma"] / jnp.sqrt(a[f"bn{i}_moving_var"] + 1e-5)
            x = (x - a[f"bn{i}_moving_mean"][None, :, None, None]) * inv[None, :, None, None] \
                + p[f"bn{i}_beta"][None, :, None, None]
            x = jax.nn.relu(x)
        x = jnp.mean(x, axis=(2, 3))
        return x @ p["fc_weight"].T + p["fc_bias"]
    f = jax.jit(jax_net)
    pj = {k: jnp.asarray(v) for k, v in vals.items()}
    aj = {k: jnp.asarray(v) for k, v in aux.items()}
    xj = pj.pop("data")
    out = np.asarray(f(pj, aj, xj))
    med, mn, fg = _time(lambda: f(pj, aj, xj).block_until_ready(), warm, iters)
    rows.append(["jax.jit by hand", med, mn, float(np.abs(out - ref).max()), _fmt_foreign(fg)])
    _table(f"(b) inference, {depth}x(conv3x3-BN-relu) on {shape}", ["variant", "median ms", "min ms",
                                                                   "max |diff| vs O0", "foreign"], rows)


# -- (c) remat memory ---------------------------------------------------------------------
def deep_mlp(depth: int, width: int) -> mx.Symbol:
    h = mx.sym.var("data")
    for i in range(depth):
        h = mx.sym.Activation(mx.sym.FullyConnected(h, num_hidden=width, name=f"fc{i}"), act_type="tanh")
    return mx.sym.MakeLoss(mx.sym.sum(h * h))


def bench_remat(quick: bool) -> None:
    depth, width, batch = (6, 32, 16) if quick else (24, 256, 512)
    sym = deep_mlp(depth, width)
    shapes = {"data": (batch, width)}
    rows = []
    for label, passes, opts in (("no remat", ["dce"], {}), ("remat every 4", ["dce", "remat"], {"remat_every": 4}),
                                ("remat sqrt(n)", ["dce", "remat"], {})):
        g = optimize(sym.graph, passes=passes, for_training=True, shapes=shapes, options=opts).graph
        names = mx.sym.Symbol(g.outputs).list_arguments()
        arg_s, _, _ = sym.infer_shape(**shapes)
        specs = dict(zip(sym.list_arguments(), arg_s))
        args = tuple(jnp.zeros(specs[n], jnp.float32) for n in names)
        prog = GradientPrograms(g, tuple(True for _ in names))
        low = prog.step.lower(args, (), None, None, None)
        ma = low.compile().memory_analysis()
        rows.append([label, len({n.user_attrs.get("__remat_segment__") for n in g.topo_order() if n.op is not None}),
                     low.as_text().count("stablehlo.dot_general"), ma.temp_size_in_bytes / 2 ** 20])
    _table(f"(c) training step of a {depth}-layer MLP (width {width}, batch {batch}): XLA temp memory",
           ["variant", "segments", "dots in StableHLO", "temp MiB"], rows)


# -- (d) ResNet-18 per convolution strategy ----------------------------------------------
def _r18(quick: bool):
    from bench_executor import xg_resnet
    cfg = W.R18_TINY if quick else W.R18
    arch = W.resnet18_cifar_arch(cfg)
    params, aux = W.resnet_params(arch)
    return xg_resnet(arch), params, aux, cfg


R18_CONFIGS = [
    # label, opt_level, extra passes, conv strategy, freeze
    ("plain lax.conv (O0)", 0, [], None, False),
    ("O2", 2, [], None, False),
    ("O2 + nhwc", 2, ["conv_strategy"], "nhwc", False),
    ("O2 + auto (1x1 as matmul)", 2, ["conv_strategy"], "auto", False),
    ("O2 + im2col", 2, ["conv_strategy"], "im2col", False),
    ("O2 + frozen params", 2, [], None, True),
    ("O2 + nhwc + frozen params", 2, ["conv_strategy"], "nhwc", True),
    ("O2 + auto + frozen params", 2, ["conv_strategy"], "auto", True),
]
R18_TRAIN_CONFIGS = [("plain lax.conv (O0)", 0, [], None), ("O1 + nhwc", 1, ["conv_strategy"], "nhwc"),
                     ("O1 + auto (1x1 as matmul)", 1, ["conv_strategy"], "auto")]


def _passes(level: int, extra: list[str]) -> list[str] | None:
    from xgraph.passes import level_pipeline
    return (list(level_pipeline(level)) + extra) if extra else None


def mxnet_r18(iters: int, slow_iters: int) -> dict[str, float] | None:
    """MXNet 1.9.1's ResNet-18 medians (ms) through the shared mx_bench.py, when XG_MX_PY is set."""
    py = os.environ.get("XG_MX_PY")
    if not py:
        return None
    out = tempfile.mkdtemp(prefix="xg_mx_")
    cmd = [py, os.path.join(SHARED_BENCH, "mx_bench.py"), "--only", "r18", "--out", out,
           "--iters", str(iters), "--slow-iters", str(slow_iters), "--warmup", "2"]
    subprocess.run(cmd, check=True, cwd=SHARED_BENCH, env=dict(os.environ, PYTHONPATH=SHARED_BENCH))
    with open(os.path.join(out, "mxnet_pass1.json")) as f:
        t = json.load(f)["timings"]
    return {"infer b1": t["r18_infer_b1|NCHW"]["median_ms"], "infer b32": t["r18_infer_b32|NCHW"]["median_ms"],
            "train b32": t["r18_train_b32|NCHW"]["median_ms"]}


def bench_r18(quick: bool, only_infer: bool = False) -> None:
    sym, params, aux, cfg = _r18(quick)
    infer_sym = sym.get_internals()["fc_output"]
    hw, big = cfg["hw"], cfg["batch"]
    x, y = W.image_data(big, hw, cfg["classes"])
    rows: list[list[Any]] = []
    ref: dict[int, np.ndarray] = {}
    iters = {1: (2, 3) if quick else (3, 20), big: (1, 2) if quick else (1, 5)}
    for label, level, extra, strategy, freeze in R18_CONFIGS:
        row = [label]
        for bs in (1, big):
            t0 = time.perf_counter()
            ex = infer_sym.bind(mx.cpu(), args={**params, "data": x[:bs]}, aux_states=aux, grad_req="null",
                                opt_level=level, passes=_passes(level, extra), freeze_params=freeze,
                                pass_options={"conv_strategy": strategy} if strategy else None)
            out = ex.forward()[0].asnumpy()
            first = time.perf_counter() - t0
            ref.setdefault(bs, out)
            med, mn, fg = _time(lambda: ex.forward()[0].wait_to_read(), *iters[bs])
            row += [med, first, _fmt_foreign(fg)]
            assert np.allclose(out, ref[bs], rtol=1e-3, atol=1e-3), (label, bs)
            del ex
        rows.append(row)
    mxr = mxnet_r18(20 if not quick else 3, 3 if not quick else 1)
    if mxr:
        rows.append(["MXNet 1.9.1", mxr["infer b1"], None, None, mxr["infer b32"], None, None])
    _table(f"(d) ResNet-18 CIFAR inference ({hw}x{hw}); outputs checked against the first row",
           ["variant", "b1 ms", "b1 first call s", "foreign", f"b{big} ms", f"b{big} first call s", "foreign"], rows)
    if only_infer:
        return
    rows = []
    from bench_executor import xg_train_executor
    for label, level, extra, strategy in R18_TRAIN_CONFIGS:
        t0 = time.perf_counter()
        ex = xg_train_executor(sym, params, aux, x, y, opt_level=level, passes=_passes(level, extra),
                               pass_options={"conv_strategy": strategy} if strategy else None)

        def step():
            ex.forward(is_train=True)
            ex.backward()
            ex.grad_dict["conv0_weight"].wait_to_read()
        step()
        first = time.perf_counter() - t0
        med, mn, fg = _time(step, *((0, 1) if quick else (1, 3)))
        rows.append([label, med, mn, first, _fmt_foreign(fg)])
        del ex
    if mxr:
        rows.append(["MXNet 1.9.1 (incl. SGD update)", mxr["train b32"], None, None, None])
    _table(f"(d) ResNet-18 CIFAR training step (forward+backward) at batch {big}",
           ["variant", "median ms", "min ms", "first call s", "foreign"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny shapes and few iterations (smoke run)")
    ap.add_argument("--only", default="pipeline,bn,remat,r18", help="comma list of pipeline,bn,remat,r18")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, loadavg {os.getloadavg()[0]:.2f}"
          + (" (quick: timings meaningless)" if args.quick else ""))
    if "pipeline" in only:
        bench_pipeline(args.quick)
    if "bn" in only:
        bench_bn_convnet(args.quick)
    if "remat" in only:
        bench_remat(args.quick)
    if "r18" in only:
        bench_r18(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
