"""3×3 stride-1 convolutions: Winograd strategies against XLA's convolution, per ResNet layer shape.

Prints, in one process and interleaved (every variant timed once per round,
``--rounds`` rounds, the median of the round medians), milliseconds per call
for ResNet-18/50 3×3 stride-1 layers (single group, padding 1):

* ``jax``: hand-written ``jax.jit(lax.conv_general_dilated)`` (the reference);
* ``lax``, ``nhwc``, ``winograd2``, ``winograd4``: ``xgraph.conv_strategy``'s
  lowerings under ``jax.jit``;

in three modes: ``fwd`` (weight an argument), ``fwd const`` (the weight closed
over as a constant, as a frozen-parameter inference bind has it: XLA folds the
weight transform) and ``fwd+bwd`` (data and weight gradients).  The ratio
columns are lax / strategy (above 1: the strategy is faster).  ``--network``
also times a model-zoo network's default inference bind against the same bind
with ``conv_strategy`` ``auto`` and ``winograd2``/``winograd4``.  ``--xla-flags``
reruns the layer table in a subprocess with ``XLA_FLAGS`` set.

    python benchmarks/bench_winograd.py
    python benchmarks/bench_winograd.py --network resnet18_v1 --batch 1
    python benchmarks/bench_winograd.py --xla-flags=--xla_cpu_use_thunk_runtime=false
    python benchmarks/bench_winograd.py --quick      # smoke run: seconds, meaningless timings
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from typing import Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))   # zoo_weights
sys.path.insert(0, ROOT)

import jax  # noqa: E402
from jax import lax  # noqa: E402

import _workloads as W  # noqa: E402
import xgraph as mx  # noqa: E402
from xgraph.conv_strategy import lower_convolution  # noqa: E402

#: (label, batch, channels, size): the 3×3 stride-1 layers of ResNet-18's stages (ResNet-50's bottleneck
#: 3×3 layers have the same shapes: 64x56, 128x28, 256x14, 512x7)
LAYERS = tuple((f"{c}x{s}x{s} b{b}", b, c, s) for b in (1, 8) for c, s in ((64, 56), (128, 28), (256, 14), (512, 7)))
TINY = (("tiny 4x6x6 b2", 2, 4, 6),)
STRATS = ("lax", "nhwc", "winograd2", "winograd4")
MODES = ("fwd", "fwd const", "fwd+bwd")
LABEL = {"nhwc": "nhwc", "winograd2": "w2", "winograd4": "w4"}


def _conv_params(channels: int) -> dict:
    return {"kernel": (3, 3), "stride": (1, 1), "dilate": (1, 1), "pad": (1, 1), "num_group": 1,
            "num_filter": channels, "layout": None, "no_bias": True}


def _default(_ctx, _p, x, w):
    return lax.conv_general_dilated(x, w, (1, 1), [(1, 1), (1, 1)], dimension_numbers=("NCHW", "OIHW", "NCHW"))


def layer_fns(channels: int, w: np.ndarray) -> dict:
    """{(variant, mode): (jitted function, its arguments' names)} for one layer."""
    p = _conv_params(channels)
    conv = {"jax": lambda x, w: _default(None, p, x, w)}
    for s in STRATS:
        conv[s] = (lambda s: lambda x, w: lower_convolution(s, _default, None, p, x, w))(s)
    fns = {}
    for name, f in conv.items():
        fns[name, "fwd"] = (jax.jit(f), ("x", "w"))
        fns[name, "fwd const"] = (jax.jit((lambda f: lambda x: f(x, w))(f)), ("x",))

        def grads(x, w, head, f=f):
            return jax.vjp(f, x, w)[1](head)
        fns[name, "fwd+bwd"] = (jax.jit(grads), ("x", "w", "head"))
    return fns


def bench_layer(batch: int, channels: int, size: int, rounds: int, iters: int) -> tuple[dict, dict]:
    """({(variant, mode): median ms}, {variant: max |forward - jax|})."""
    x = W.rng("x").standard_normal((batch, channels, size, size)).astype(np.float32)
    w = W.he_normal("w", (channels, channels, 3, 3), 9 * channels)
    head = W.rng("head").standard_normal(x.shape).astype(np.float32)
    args = {k: jax.device_put(v) for k, v in dict(x=x, w=w, head=head).items()}
    fns = layer_fns(channels, w)
    ref = np.asarray(fns["jax", "fwd"][0](args["x"], args["w"]))
    err = {v: float(np.abs(np.asarray(fns[v, "fwd"][0](args["x"], args["w"])) - ref).max()) for v in STRATS}
    calls = {key: (lambda f=f, a=tuple(args[n] for n in names): jax.block_until_ready(f(*a)))
             for key, (f, names) in fns.items()}
    for call in calls.values():     # compile everything first
        call()
    per = {key: [] for key in calls}
    for _ in range(rounds):         # interleaved: every variant once per round
        for key, call in calls.items():
            per[key].append(W.median_ms(W.timeit(call, 1, iters)))
    return {k: statistics.median(v) for k, v in per.items()}, err


def layer_table(layers: Sequence, rounds: int, iters: int) -> None:
    """Print the per-layer table."""
    print(f"# 3x3 stride-1 convolutions, median ms ({rounds} interleaved rounds of {iters}); jax {jax.__version__}, "
          f"{platform.machine()} x{os.cpu_count()}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    head = f"{'layer':16s} {'mode':10s} " + " ".join(f"{v:>9s}" for v in ("jax",) + STRATS) + \
        "  " + " ".join(f"{'lax/' + LABEL[v]:>9s}" for v in STRATS[1:])
    print(head)
    print("-" * len(head))
    for label, batch, channels, size in layers:
        t, err = bench_layer(batch, channels, size, rounds, iters)
        for mode in MODES:
            print(f"{label:16s} {mode:10s} " + " ".join(f"{t[v, mode]:9.3f}" for v in ("jax",) + STRATS) + "  " +
                  " ".join(f"{t['lax', mode] / t[v, mode]:8.2f}x" for v in STRATS[1:]), flush=True)
        print(f"{label:16s} {'max err':10s} " + " " * 10 + " ".join(f"{err[v]:9.1e}" for v in STRATS), flush=True)


def network_table(names: Sequence[str], batches: Sequence[int], rounds: int, iters: int, quick: bool) -> None:
    """Whole networks: default inference bind vs + conv_strategy (auto, winograd2, winograd4), interleaved."""
    import tempfile
    from zoo_weights import seeded_input, write_checkpoint
    variants = [("default bind", None), ("O2 + lax", "lax"), ("O2 + auto", "auto"), ("O2 + winograd2", "winograd2"),
                ("O2 + winograd4", "winograd4")]
    work = tempfile.mkdtemp(prefix="bench_winograd_")
    print(f"# whole networks, inference (grad_req='null', frozen parameters), median ms of {rounds} interleaved "
          f"rounds of {iters}; jax {jax.__version__}")
    print(f"{'network':14s} {'input':>14s} " + " ".join(f"{v:>15s}" for v, _ in variants) +
          "  max |diff| / max |default output| per variant")
    for name in names:
        prefix, meta = write_checkpoint(name, work)
        sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
        for b in batches:
            shape = (b, *meta["input"]["data"][1:]) if quick else (b, *meta["input"]["data"][1:-2], 224, 224)
            x = mx.nd.array(seeded_input(name, shape))
            exs = []
            for _, strat in variants:
                kw = {} if strat is None else dict(passes=[*mx.passes.level_pipeline(2), "conv_strategy"],
                                                   pass_options={"conv_strategy": strat})
                exs.append(sym.bind(mx.cpu(), args=dict(arg_params, data=x), aux_states=aux_params,
                                    grad_req="null", **kw))
            outs = [ex.forward(is_train=False)[0].asnumpy() for ex in exs]
            per = [[] for _ in exs]
            for _ in range(rounds):
                for i, ex in enumerate(exs):
                    per[i].append(W.median_ms(W.timeit(
                        lambda ex=ex: [o.wait_to_read() for o in ex.forward(is_train=False)], 1, iters)))
            scale = float(np.abs(outs[0]).max()) or 1.0
            diffs = " ".join(f"{float(np.abs(o - outs[0]).max()) / scale:.0e}" for o in outs[1:])
            print(f"{name:14s} {'x'.join(map(str, shape)):>14s} " +
                  " ".join(f"{statistics.median(p):15.2f}" for p in per) + f"  {diffs}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--only", help="comma-separated layer labels (e.g. '64x56x56 b1')")
    ap.add_argument("--network", help="comma-separated zoo networks to time whole (e.g. resnet18_v1)")
    ap.add_argument("--batch", default="1", help="batch sizes for --network")
    ap.add_argument("--xla-flags", help="also run the layer table in a subprocess with these XLA_FLAGS")
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 1 round of 1: a smoke run")
    a = ap.parse_args(argv)
    rounds, iters = (1, 1) if a.quick else (a.rounds, a.iters)
    layers = TINY if a.quick else LAYERS
    if a.only:
        wanted = a.only.split(",")
        layers = [row for row in LAYERS if row[0] in wanted]
        if not layers:
            print(f"no layer among {wanted}; choose from {', '.join(r[0] for r in LAYERS)}", file=sys.stderr)
            return 2
    if a.network:
        network_table(a.network.split(","), [int(b) for b in a.batch.split(",")], rounds, iters, a.quick)
        return 0
    layer_table(layers, rounds, iters)
    if a.xla_flags:
        sub = [sys.executable, os.path.abspath(__file__), "--rounds", str(rounds), "--iters", str(iters)]
        sub += ["--quick"] if a.quick else (["--only", a.only] if a.only else [])
        return subprocess.run(sub, env=dict(os.environ, XLA_FLAGS=a.xla_flags)).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
