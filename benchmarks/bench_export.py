"""Benchmark compiled artifacts against the live executor, and cold vs warm compilation across processes.

    python benchmarks/bench_export.py [--repeat 200] [--batch 8]

For every fixture network (MXNet reference cases; networks whose operators are
not registered are skipped with a line saying which ops are missing) it prints:
artifact size, export time, load time, first-call time and steady-state latency
(median) of the artifact (after the process warm-up of :func:`warm_up`), next to the live executor's bind+first-forward time
and steady-state latency.  Then, per network, it runs two fresh processes on
one empty cache folder (``XGRAPH_CACHE_DIR``) and prints the cold and warm
compile time (export + load + first call, after a process warm-up that is
reported apart) and time to first result; the target is warm <= 20% of cold.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NETWORKS = ("net_mlp2_softmax", "net_mobilenet0_25", "net_resnet_small")
FIXTURE_DIRS = [Path(p) for p in os.environ.get("XGRAPH_FIXTURES", "").split(os.pathsep) if p] + [
    ROOT / "tests" / "fixtures" / "mxnet" / "cases", ROOT / "tests" / "fixtures" / "mxnet",
    Path("/work/shared/fixtures/mxnet/cases")]


def find_case(name: str) -> Path | None:
    for d in FIXTURE_DIRS:
        if (d / f"{name}-symbol.json").exists() and (d / f"{name}.npz").exists():
            return d
    return None


def load_case(name: str, batch: int):
    """(symbol, arg params, aux params, export inputs spec, concrete inputs) or a reason to skip."""
    import numpy as np
    import xgraph as mx

    d = find_case(name)
    if d is None:
        return f"fixture files not found in {', '.join(map(str, FIXTURE_DIRS))}"
    try:
        sym = mx.sym.load(str(d / f"{name}-symbol.json"))
    except mx.UnsupportedOperatorError as exc:
        return f"operators not registered: {', '.join(exc.ops) or exc}"
    meta = json.loads((d / f"{name}.meta.json").read_text())
    z = np.load(d / f"{name}.npz")
    args = {k[4:]: z[k] for k in z.files if k.startswith("arg:")}
    aux = {k[4:]: z[k] for k in z.files if k.startswith("aux:")}
    specs, values = {}, {}
    rng = np.random.default_rng(0)
    for n, (shape, dtype) in meta["inputs"].items():
        if n.endswith("label"):
            continue
        specs[n] = (("batch", *shape[1:]), dtype)
        values[n] = rng.standard_normal((batch, *shape[1:])).astype(dtype)
    return sym, args, aux, specs, values


def _median_latency(fn, repeat: int) -> float:
    import jax
    for _ in range(3):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def bench_inprocess(name: str, repeat: int, batch: int, workdir: Path) -> dict | str:
    import jax
    import numpy as np
    import xgraph as mx

    case = load_case(name, batch)
    if isinstance(case, str):
        return case
    sym, args, aux, specs, values = case
    path = workdir / f"{name}.xgraph"
    t = time.perf_counter()
    art = mx.export(sym, args, aux, inputs=specs, path=path)
    export_s = time.perf_counter() - t
    t = time.perf_counter()
    loaded = mx.load_artifact(path)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(loaded(**values))
    first_s = time.perf_counter() - t
    art_lat = _median_latency(lambda: loaded(**values), repeat)

    labels = {n: np.zeros((batch,), np.float32) for n in sym.list_arguments()
              if n not in args and n not in values}
    t = time.perf_counter()
    ex = sym.bind(mx.cpu(), args={**args, **values, **labels}, aux_states=aux)
    jax.block_until_ready([o.data for o in ex.forward(is_train=False)])
    ex_first_s = time.perf_counter() - t
    ex_lat = _median_latency(lambda: [o.data for o in ex.forward(is_train=False)], repeat)
    err = max(float(np.abs(np.asarray(a, np.float32) - o.asnumpy().astype(np.float32)).max())
              for a, o in zip(loaded(**values), ex.outputs))
    return {"size_kb": art.size / 1024, "export_s": export_s, "load_s": load_s, "first_s": first_s,
            "art_lat_ms": art_lat * 1e3, "ex_first_s": ex_first_s, "ex_lat_ms": ex_lat * 1e3, "max_err": err}


def warm_up() -> None:
    """Process start-up costs paid once by any jax program: the backend, and jax.export's runtime
    (its first ``Exported.call`` initializes the linear-algebra kernels, about a second)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    warm = jax.export.export(jax.jit(lambda x: x + 1))(jax.ShapeDtypeStruct((2,), np.float32))
    jax.block_until_ready(jax.jit(warm.call)(jnp.zeros(2, np.float32)))


def child(name: str, batch: int) -> None:
    """One process: warm up the runtime, then time export + load + first call (the compile path)."""
    t0 = time.perf_counter()
    import jax
    import xgraph as mx
    from xgraph.cache import cache_stats

    warm_up()
    t1 = time.perf_counter()
    case = load_case(name, batch)
    sym, args, aux, specs, values = case
    t2 = time.perf_counter()
    loaded = mx.load_artifact(mx.export(sym, args, aux, inputs=specs).data)
    jax.block_until_ready(loaded(**values))
    t3 = time.perf_counter()
    print(json.dumps({"warmup_s": t1 - t0, "compile_s": t3 - t2, "first_result_s": t3 - t0,
                      "stats": cache_stats()}))


def cold_warm(name: str, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XGRAPH_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        runs = []
        for _ in range(2):
            proc = subprocess.run([sys.executable, __file__, "--child", name, "--batch", str(batch)],
                                  env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"cold": runs[0], "warm": runs[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200, help="timed calls for steady-state latency")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child:
        child(opts.child, opts.batch)
        return
    import jax
    warm_up()
    print(f"xgraph artifacts vs live executor: jax {jax.__version__}, {jax.default_backend()}, "
          f"batch {opts.batch}, latency = median of {opts.repeat} calls")
    hdr = (f"{'network':<20} {'size KB':>8} {'export s':>9} {'load s':>7} {'1st call s':>10} "
           f"{'art ms':>7} | {'exec bind+1st s':>15} {'exec ms':>8} {'max err':>8}")
    print(hdr)
    print("-" * len(hdr))
    runnable = []
    with tempfile.TemporaryDirectory() as work:
        for name in NETWORKS:
            r = bench_inprocess(name, opts.repeat, opts.batch, Path(work))
            if isinstance(r, str):
                print(f"{name:<20} skipped: {r}")
                continue
            runnable.append(name)
            print(f"{name:<20} {r['size_kb']:>8.1f} {r['export_s']:>9.3f} {r['load_s']:>7.3f} {r['first_s']:>10.3f} "
                  f"{r['art_lat_ms']:>7.3f} | {r['ex_first_s']:>15.3f} {r['ex_lat_ms']:>8.3f} {r['max_err']:>8.1e}")
    print()
    print("cold vs warm, two fresh processes on one cache folder (compile = export + load + first call, "
          "after the process warm-up)")
    hdr = (f"{'network':<20} {'warm-up s':>9} {'cold compile s':>14} {'warm compile s':>14} {'warm/cold':>9} "
           f"{'cold 1st result s':>17} {'warm 1st result s':>17}  warm cache")
    print(hdr)
    print("-" * len(hdr))
    for name in runnable:
        r = cold_warm(name, opts.batch)
        c, w = r["cold"], r["warm"]
        ratio = w["compile_s"] / c["compile_s"]
        print(f"{name:<20} {c['warmup_s']:>9.3f} {c['compile_s']:>14.3f} {w['compile_s']:>14.3f} {ratio:>8.0%} "
              f"{c['first_result_s']:>17.3f} {w['first_result_s']:>17.3f}  disk hits {w['stats']['disk_hits']}, "
              f"misses {w['stats']['misses']} ({'meets' if ratio <= 0.2 else 'misses'} the 20% target)")


if __name__ == "__main__":
    main()
