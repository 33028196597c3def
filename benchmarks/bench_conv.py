"""Grouped and depthwise convolutions: xgraph's executor against hand-written ``jax.jit`` ``lax.conv``.

XLA's CPU backend runs grouped convolutions (``feature_group_count > 1``)
slowly; xgraph's Convolution lowers them on the CPU as a sum over the kernel's
taps (``xgraph.conv_strategy.grouped_conv_taps``).  This prints, in one run,
median milliseconds per call for MobileNet-style depthwise 3x3 layers and
ResNeXt-style grouped layers, forward (``is_train=False``) and forward+backward
(a training step's gradients with respect to data and weight):

* ``jax lax.conv``: ``jax.jit`` of ``lax.conv_general_dilated`` written by hand;
* ``xgraph``: ``Convolution(num_group=...)`` bound with ``simple_bind`` (the default lowering);
* ``speedup``: jax / xgraph.

    python benchmarks/bench_conv.py
    python benchmarks/bench_conv.py --quick     # smoke run: seconds, meaningless timings
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import jax  # noqa: E402
from jax import lax  # noqa: E402

import _workloads as W  # noqa: E402
import xgraph as mx  # noqa: E402

#: (label, batch, channels, size, groups, stride)
LAYERS = (
    ("mobilenet dw 32x112x112", 1, 32, 112, 32, 1),
    ("mobilenet dw 128x56x56 s2", 1, 128, 56, 128, 2),
    ("mobilenet dw 512x14x14", 1, 512, 14, 512, 1),
    ("mobilenet dw 64x32x32 b8", 8, 64, 32, 64, 1),
    ("resnext g32x4 128x56x56", 1, 128, 56, 32, 1),
    ("resnext g32x8 256x28x28", 1, 256, 28, 32, 1),
)
TINY = (("dw tiny", 1, 4, 6, 4, 1), ("grouped tiny", 1, 8, 6, 2, 1))


def _jax_fns(groups: int, stride: int):
    def fwd(x, w):
        return lax.conv_general_dilated(x, w, (stride, stride), [(1, 1), (1, 1)],
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups)

    def grads(x, w, head):
        _, pull = jax.vjp(fwd, x, w)
        return pull(head)
    return jax.jit(fwd), jax.jit(grads)


def bench_layer(batch: int, channels: int, size: int, groups: int, stride: int, warmup: int, iters: int) -> dict:
    """Median ms of each side, and the largest forward difference."""
    x = W.rng("x").standard_normal((batch, channels, size, size)).astype(np.float32)
    w = W.he_normal("w", (channels, channels // groups, 3, 3), 9 * channels // groups)
    fwd, grads = _jax_fns(groups, stride)
    y = np.asarray(fwd(x, w))
    head = W.rng("head").standard_normal(y.shape).astype(np.float32)
    xd, wd, hd = (jax.device_put(v) for v in (x, w, head))

    net = mx.sym.Convolution(mx.sym.var("x"), kernel=(3, 3), stride=(stride, stride), pad=(1, 1),
                             num_filter=channels, num_group=groups, no_bias=True, name="c")
    ex = net.simple_bind(mx.cpu(), x=x.shape)
    ex.arg_dict["x"][:] = x
    ex.arg_dict["c_weight"][:] = w
    head_nd = mx.nd.array(head)

    def xg_fwd():
        return jax.block_until_ready(ex.forward(is_train=False)[0].data)

    def xg_step():
        ex.forward(is_train=True)
        ex.backward(head_nd)
        return jax.block_until_ready([g.data for g in ex.grad_dict.values()])

    out = {
        "jax fwd": W.median_ms(W.timeit(lambda: jax.block_until_ready(fwd(xd, wd)), warmup, iters)),
        "xgraph fwd": W.median_ms(W.timeit(xg_fwd, warmup, iters)),
        "jax fwd+bwd": W.median_ms(W.timeit(lambda: jax.block_until_ready(grads(xd, wd, hd)), warmup, iters)),
        "xgraph fwd+bwd": W.median_ms(W.timeit(xg_step, warmup, iters)),
    }
    out["err"] = float(np.abs(xg_fwd() - y).max())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 2 iterations: a smoke run")
    a = ap.parse_args(argv)
    layers, warmup, iters = (TINY, 1, 2) if a.quick else (LAYERS, 3, a.iters)
    print(f"# grouped convolutions, median ms; jax {jax.__version__}, {platform.machine()} x{os.cpu_count()}")
    head = (f"{'layer':28s} {'jax fwd':>9s} {'xgraph fwd':>11s} {'speedup':>8s} "
            f"{'jax fwd+bwd':>12s} {'xgraph fwd+bwd':>15s} {'speedup':>8s} {'max err':>8s}")
    print(head)
    print("-" * len(head))
    for label, *shape in layers:
        r = bench_layer(*shape, warmup=warmup, iters=iters)
        print(f"{label:28s} {r['jax fwd']:9.3f} {r['xgraph fwd']:11.3f} {r['jax fwd'] / r['xgraph fwd']:7.1f}x "
              f"{r['jax fwd+bwd']:12.3f} {r['xgraph fwd+bwd']:15.3f} {r['jax fwd+bwd'] / r['xgraph fwd+bwd']:7.1f}x "
              f"{r['err']:8.1e}")


if __name__ == "__main__":
    main()
