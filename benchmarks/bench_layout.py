"""The ``channels_last`` pass against the default inference bind, on model-zoo checkpoints.

Both executors are bound from the same checkpoint in one process and timed interleaved
(median of ``--iters`` forwards), and the table says whether the outputs are bit-identical.

    python benchmarks/bench_layout.py --only resnet18_v1,mobilenet1.0 --batch 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zoo  # noqa: E402  (checkpoints and input shapes of the zoo benchmark)

import xgraph as mx  # noqa: E402
from xgraph.passes import LEVELS  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="resnet18_v1,mobilenet1.0", help="comma-separated zoo network names")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=12)
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench_layout_")
    print(f"{'network':<16} {'batch':>5} {'default (ms)':>13} {'channels_last (ms)':>19}  outputs")
    for name in args.only.split(","):
        prefix, _ = bench_zoo.write_checkpoint(name, work)
        sym, arg, aux = mx.model.load_checkpoint(prefix, 0)
        x = mx.nd.array(np.random.default_rng(0).standard_normal(bench_zoo.input_shape(name, args.batch, None)))
        exs = [sym.bind(mx.cpu(), args=dict(arg, data=x), aux_states=aux, grad_req="null"),
               sym.bind(mx.cpu(), args=dict(arg, data=x), aux_states=aux, grad_req="null",
                        passes=[*LEVELS[2], "channels_last"])]
        outs = [e.forward()[0].asnumpy() for e in exs]
        same = "bit-identical" if np.array_equal(*outs) else f"max diff {np.abs(outs[0] - outs[1]).max():.2e}"
        times: list[list[float]] = [[], []]
        for _ in range(args.iters):
            for i, e in enumerate(exs):
                t = time.perf_counter()
                e.forward()[0].wait_to_read()
                times[i].append((time.perf_counter() - t) * 1e3)
        print(f"{name:<16} {args.batch:>5} {statistics.median(times[0]):>13.1f} {statistics.median(times[1]):>19.1f}  {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
