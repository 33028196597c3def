"""Inference latency of model-zoo networks: xgraph as an MXNet user calls it against MXNet 1.9.1.

Each network is an exported Gluon/GluonCV symbol of ``tests/fixtures/zoo`` with its
seeded weights (``tests/zoo_weights.py``), bound at full input size.  Per network
and batch size it prints, in one run, median milliseconds per ``forward(is_train=False)``
(each side waiting for its result) and the first-call latency (load checkpoint ->
first output):

* ``xgraph``: ``mx.model.load_checkpoint`` + ``sym.bind(..., grad_req='null')`` + ``forward``;
* ``mxnet``: MXNet 1.9.1 (its default oneDNN CPU backend) on the same two files, when
  ``XG_MX_PY`` names a Python with MXNet installed (run in a subprocess; skipped otherwise).

    python benchmarks/bench_zoo.py                                  # the default networks, batch 1 and 8
    XG_MX_PY=/path/to/mxnet-venv/bin/python python benchmarks/bench_zoo.py --only resnet18_v1 --batch 1
    python benchmarks/bench_zoo.py --quick                          # smoke run: seconds, meaningless timings
    python benchmarks/bench_zoo.py --only mobilenet1.0_int8,resnet50_v1_int8 --batch 1   # GluonCV int8 entries

An int8 entry runs its convolutions as oneDNN does on the kind of CPU that made its fixture
(the meta's ``cpu_isa``; ``avx2`` costs the int16 pair-saturation products on top).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)                        # _workloads
sys.path.insert(0, os.path.join(ROOT, "tests"))  # zoo_weights
sys.path.insert(0, ROOT)                        # xgraph from a checkout

import jax  # noqa: E402

import _workloads as W  # noqa: E402
import xgraph as mx  # noqa: E402
from xgraph.ops import mkldnn  # noqa: E402
from zoo_weights import ZOO_DIR, seeded_input, write_checkpoint  # noqa: E402

DEFAULT = ("resnet18_v1", "resnet50_v2", "mobilenet1.0", "mobilenetv2_1.0", "densenet121",
           "inceptionv3", "squeezenet1.1")
FULL_SIZE = {"inceptionv3": 299}

#: run by XG_MX_PY: {name: {batch: ms}} for MXNet's executor on the same files
MXNET_SCRIPT = r'''
import json, sys, time
import numpy as np
import mxnet as mx
jobs, warmup, iters = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
result = {"mxnet_version": mx.__version__}
for name, prefix, shapes in jobs:
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    result[name] = {}
    for shape in shapes:
        x = mx.nd.array(np.random.default_rng(0).standard_normal(shape).astype("float32"))
        ex = sym.bind(mx.cpu(), args=dict(arg_params, data=x), aux_states=aux_params, grad_req="null")
        def run():
            for o in ex.forward(is_train=False):
                o.wait_to_read()
        for _ in range(warmup):
            run()
        ts = []
        for _ in range(iters):
            t0 = time.perf_counter(); run(); ts.append(time.perf_counter() - t0)
        result[name][str(shape[0])] = sorted(ts)[len(ts) // 2] * 1e3
print(json.dumps(result))
'''


def input_shape(name: str, batch: int, size: int | None) -> tuple[int, ...]:
    """The full-size input of a network: the fixture's channels at 224x224 (299 for Inception v3)."""
    with open(os.path.join(ZOO_DIR, f"{name}.meta.json"), encoding="utf-8") as f:
        small = json.load(f)["input"]["data"]
    side = size or FULL_SIZE.get(name, 224)
    return (batch, *small[1:-2], side, side)


def bench_xgraph(name: str, prefix: str, shape: tuple[int, ...], warmup: int, iters: int,
                 cpu_isa: str | None = None) -> tuple[float, float]:
    """(median ms per forward, seconds from load_checkpoint to the first output) of the default bind;
    an int8 network's convolutions as oneDNN computes them on ``cpu_isa`` (mkldnn.CPU_ISAS)."""
    t0 = time.perf_counter()
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    x = mx.nd.array(seeded_input(name, shape))

    def run() -> None:
        for o in ex.forward(is_train=False):
            o.wait_to_read()
    with mkldnn.cpu_isa(cpu_isa) if cpu_isa else contextlib.nullcontext():
        ex = sym.bind(mx.cpu(), args=dict(arg_params, data=x), aux_states=aux_params, grad_req="null")
        run()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        run()
    return W.median_ms(W.timeit(run, 0, iters)), first


def run_mxnet(jobs: list, warmup: int, iters: int, python: str | None) -> tuple[dict, str]:
    """MXNet's timings through ``python``, or ({}, reason) without it."""
    if not python:
        return {}, "mxnet: skipped (set XG_MX_PY to a Python with MXNet 1.9.1)"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(MXNET_SCRIPT)
    try:
        proc = subprocess.run([python, f.name, json.dumps(jobs), str(warmup), str(iters)],
                              capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {}, f"mxnet: failed to run {python}: {exc}"
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {}, f"mxnet: {python} exited with {proc.returncode}: {tail[0]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, f"mxnet: {result.get('mxnet_version', '?')} (oneDNN) via {python}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(DEFAULT), help="comma-separated zoo networks")
    ap.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--size", type=int, help="input height and width (default 224, Inception v3 299)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smoke run: fixture-sized input, 1 warmup, 2 iterations")
    a = ap.parse_args(argv)
    names = [n for n in a.only.split(",") if n]
    known = {f[: -len(".meta.json")] for f in os.listdir(ZOO_DIR) if f.endswith(".meta.json")}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    batches = [int(b) for b in a.batch.split(",")]
    warmup, iters = (1, 2) if a.quick else (a.warmup, a.iters)
    work = tempfile.mkdtemp(prefix="bench_zoo_")
    rows, jobs = [], []
    for name in names:
        prefix, meta = write_checkpoint(name, work)
        shapes = [(b, *meta["input"]["data"][1:]) if a.quick else input_shape(name, b, a.size) for b in batches]
        jobs.append([name, prefix, [list(s) for s in shapes]])
        for shape in shapes:
            ms, first = bench_xgraph(name, prefix, shape, warmup, iters, meta.get("int8", {}).get("cpu_isa"))
            rows.append((name, shape, ms, first))
    mx_res, mx_note = run_mxnet(jobs, warmup, iters, os.environ.get("XG_MX_PY"))
    print(f"# model-zoo inference, xgraph default bind vs MXNet; jax {jax.__version__}, "
          f"{platform.machine()} x{os.cpu_count()}, median of {iters} calls")
    head = f"{'network':<22}{'input':>18}{'xgraph ms':>12}{'mxnet ms':>11}{'x/mx':>7}{'first call s':>14}"
    print(head)
    print("-" * len(head))
    for name, shape, ms, first in rows:
        theirs = mx_res.get(name, {}).get(str(shape[0]))
        ratio = f"{ms / theirs:7.2f}" if theirs else "      -"
        theirs_s = f"{theirs:11.2f}" if theirs else "          -"
        print(f"{name:<22}{'x'.join(map(str, shape)):>18}{ms:12.2f}{theirs_s}{ratio}{first:14.2f}")
    print(f"# {mx_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
