"""Inference time of the MXNet fixture networks: xgraph against jax.jit baselines and MXNet.

Loads each network the way a user loads a checkpoint (``<name>-symbol.json`` +
``<name>-0000.params`` through ``xgraph.model.load_checkpoint``; the input from the case's
npz) and prints, in one run, one table of median milliseconds per forward pass
(``is_train=False``), each side waiting for its result:

* ``executor``: ``sym.bind(...)`` then ``ex.forward(is_train=False)`` (MXNet's API);
* ``compiled``: ``xgraph.compile(sym, params=...)`` (the pass pipeline: BatchNorm folding,
  dead-code elimination ...), called with the input only;
* ``jit args``: ``jax.jit`` of xgraph's own ``GraphFunction`` with the parameters as
  arguments: the same computation with no xgraph runtime around it;
* ``jit const``: the same with the parameters closed over as constants, so XLA may fold them;
* ``mxnet``: MXNet 1.9.1's executor on the same files and input, when the environment
  variable ``XG_MX_PY`` names a Python with MXNet installed (run in a subprocess; skipped
  otherwise).

``ratio`` is executor / the faster jit baseline.  ``max err`` is the largest difference of the
executor's outputs from MXNet's stored outputs.  The networks: the fixture ``net_mobilenet0_25``
(1x3x64x64), ``net_resnet_small`` and ``rnn_lstm``; ``--batch N`` repeats the stored input N
times along the batch axis (MXNet gets the same).

    python benchmarks/bench_models.py                    # all three
    python benchmarks/bench_models.py --only rnn_lstm --iters 200
    XG_MX_PY=/path/to/mxnet-venv/bin/python python benchmarks/bench_models.py
    python benchmarks/bench_models.py --quick            # smoke run: seconds, meaningless timings
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # _workloads
sys.path.insert(0, ROOT)  # xgraph from a checkout

import jax  # noqa: E402

import _workloads as W  # noqa: E402
import xgraph as mx  # noqa: E402
from xgraph.lower import GraphFunction  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "mxnet", "cases")
NETWORKS = ("net_mobilenet0_25", "net_resnet_small", "rnn_lstm")
COLUMNS = ("executor", "compiled", "jit args", "jit const", "mxnet")
BATCH_AXIS = {"rnn_lstm": 1}  # TNC data, (L, N, H) states

#: run by XG_MX_PY: time MXNet's executor on the same files; prints {name: {ms, max_abs_err}} as JSON
MXNET_SCRIPT = r'''
import json, os, sys, time
import numpy as np
import mxnet as mx

fixtures, names, warmup, iters, batch = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
axes = json.loads(sys.argv[6])
result = {"mxnet_version": mx.__version__}
for name in names:
    sym, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(fixtures, name), 0)
    data = np.load(os.path.join(fixtures, name + ".npz"))
    axis = axes.get(name, 0)
    inputs = {k[6:]: mx.nd.array(np.concatenate([data[k]] * batch, axis=axis))
              for k in data.files if k.startswith("input:")}
    ex = sym.bind(mx.cpu(), args={**arg_params, **inputs}, aux_states=aux_params, grad_req="null")

    def run():
        ex.forward(is_train=False)
        for o in ex.outputs:
            o.wait_to_read()
    for _ in range(warmup):
        run()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t0)
    err = None
    if batch == 1:
        err = max(float(np.max(np.abs(o.asnumpy() - data["out:%d" % i]))) for i, o in enumerate(ex.outputs))
    result[name] = {"ms": sorted(ts)[len(ts) // 2] * 1e3, "max_abs_err": err}
print(json.dumps(result))
'''


@dataclass
class Row:
    """One network: median ms per column (None when not run) and notes."""

    network: str
    ms: dict[str, float | None] = field(default_factory=dict)
    max_err: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        base = [self.ms.get(k) for k in ("jit args", "jit const") if self.ms.get(k)]
        if self.ms.get("executor") is None or not base:
            return None
        return self.ms["executor"] / min(base)


@dataclass
class Settings:
    warmup: int
    iters: int
    rounds: int
    batch: int


def load_network(name: str, batch: int = 1) -> tuple[Any, dict, dict, dict, dict]:
    """(symbol, arg_params, aux_params, inputs, npz) of a fixture network, params from its .params file."""
    sym, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(FIXTURES, name), 0)
    with np.load(os.path.join(FIXTURES, f"{name}.npz")) as data:
        npz = {k: data[k] for k in data.files}
    axis = BATCH_AXIS.get(name, 0)
    inputs = {k[6:]: np.concatenate([v] * batch, axis=axis) for k, v in npz.items() if k.startswith("input:")}
    args = {k: v.asnumpy() for k, v in arg_params.items()}
    aux = {k: v.asnumpy() for k, v in aux_params.items()}
    return sym, args, aux, inputs, npz


def _ready(outs: Any) -> Any:
    return jax.block_until_ready(outs)


def build_runners(sym: Any, args: dict, aux: dict, inputs: dict) -> tuple[dict[str, Callable[[], Any]], Any]:
    """The timed callables per column (each waits for its outputs) and the executor."""
    ex = sym.bind(mx.cpu(), args={**args, **inputs}, aux_states=dict(aux), grad_req="null")

    def executor():
        return _ready([o.data for o in ex.forward(is_train=False)])

    model = mx.compile(sym, params={**args, **aux}, **{k: v.shape for k, v in inputs.items()})
    dev_inputs = {k: jax.device_put(v) for k, v in inputs.items()}

    def compiled():
        return _ready(model(**dev_inputs))

    gf = GraphFunction(sym.graph, is_train=False)
    key = jax.random.key(0) if gf.needs_rng else None
    values = {**args, **inputs}
    arg_vals = tuple(jax.device_put(values[n]) for n in gf.arg_names)
    aux_vals = tuple(jax.device_put(aux[n]) for n in gf.aux_names)
    as_args = jax.jit(lambda a, x: gf(a, x, key)[0])

    def jit_args():
        return _ready(as_args(arg_vals, aux_vals))

    const_args = {n: np.asarray(values[n]) for n in gf.arg_names if n not in inputs}
    const_aux = tuple(np.asarray(aux[n]) for n in gf.aux_names)
    input_names = [n for n in gf.arg_names if n in inputs]

    def with_consts(*xs):
        feed = dict(zip(input_names, xs))
        return gf(tuple(feed[n] if n in feed else const_args[n] for n in gf.arg_names), const_aux, key)[0]
    as_consts = jax.jit(with_consts)
    dev_in = tuple(jax.device_put(inputs[n]) for n in input_names)

    def jit_const():
        return _ready(as_consts(*dev_in))

    return {"executor": executor, "compiled": compiled, "jit args": jit_args, "jit const": jit_const}, ex


def time_alternating(fns: dict[str, Callable[[], Any]], s: Settings) -> dict[str, float]:
    """Median ms per callable, timed in alternating rounds so machine load hits all alike."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(s.warmup):
            fn()
    for _ in range(s.rounds):
        for k, fn in fns.items():
            samples[k] += W.timeit(fn, 0, s.iters)
    return {k: W.median_ms(v) for k, v in samples.items()}


def run_mxnet(names: Sequence[str], s: Settings, python: str | None) -> tuple[dict[str, dict], str]:
    """MXNet's timings through ``python`` (a Python with MXNet 1.9.1), or ({}, reason) without it."""
    if not python:
        return {}, "mxnet: skipped (set XG_MX_PY to a Python with MXNet 1.9.1)"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(MXNET_SCRIPT)
        script = f.name
    try:
        proc = subprocess.run([python, script, FIXTURES, ",".join(names), str(s.warmup),
                               str(s.iters * s.rounds), str(s.batch), json.dumps(BATCH_AXIS)],
                              capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {}, f"mxnet: failed to run {python}: {exc}"
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {}, f"mxnet: {python} exited with {proc.returncode}: {tail[0]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, f"mxnet: {result.get('mxnet_version', '?')} via {python}"


def bench_network(name: str, s: Settings) -> Row:
    """Time every xgraph/jax column of one network and check the executor against MXNet's outputs."""
    sym, args, aux, inputs, npz = load_network(name, s.batch)
    fns, ex = build_runners(sym, args, aux, inputs)
    row = Row(name, time_alternating(fns, s))
    if s.batch == 1:
        outs = [o.asnumpy() for o in ex.forward(is_train=False)]
        row.max_err = max(float(np.max(np.abs(o - npz[f"out:{i}"]))) for i, o in enumerate(outs))
    shape = ", ".join(f"{k} {tuple(v.shape)}" for k, v in inputs.items())
    row.note = shape
    return row


def _fmt(v: float | None, spec: str = "9.3f") -> str:
    return format(v, spec) if v is not None else "-".rjust(int(spec.split(".")[0]))


def format_table(rows: Sequence[Row]) -> str:
    """The result table, one line per network."""
    head = f"{'network':<20}" + "".join(f"{c + ' ms':>13}" for c in COLUMNS) + f"{'ratio':>8}{'max err':>10}  inputs"
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = "".join(f"{_fmt(r.ms.get(c), '13.3f')}" for c in COLUMNS)
        lines.append(f"{r.network:<20}{cells}{_fmt(r.ratio, '8.2f')}{_fmt(r.max_err, '10.1e')}  {r.note}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(NETWORKS), help="comma-separated networks")
    ap.add_argument("--iters", type=int, default=30, help="timed calls per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1, help="repeat the stored input along the batch axis")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 warmup, 2 iterations, 1 round")
    a = ap.parse_args(argv)
    names = [n for n in a.only.split(",") if n]
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        print(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(NETWORKS)}", file=sys.stderr)
        return 2
    s = Settings(1, 2, 1, a.batch) if a.quick else Settings(a.warmup, a.iters, a.rounds, a.batch)
    foreign = W.Foreign()
    rows = [bench_network(n, s) for n in names]
    other_cpu = foreign.frac()
    mx_res, mx_note = run_mxnet(names, s, os.environ.get("XG_MX_PY"))
    for r in rows:
        if r.network in mx_res:
            r.ms["mxnet"] = mx_res[r.network]["ms"]
    print(f"# xgraph inference vs jax.jit baselines and MXNet; jax {jax.__version__}, "
          f"{platform.machine()} x{os.cpu_count()}, batch x{s.batch}, median of {s.iters * s.rounds} calls")
    print(format_table(rows))
    print(f"# {mx_note}")
    if other_cpu is not None:
        print(f"# other processes used {100 * other_cpu:.0f}% of the CPU while timing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
