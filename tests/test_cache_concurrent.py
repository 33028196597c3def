"""Several processes compiling and exporting through one cache folder at once.

Three processes share a fresh cache folder and start together (a file
barrier).  Phase 1: each exports the same four graphs in a different order,
runs every artifact and an executor (JAX's persistent cache) and checks the
results against NumPy, so they race to write and read the same entries.
Phase 2 (after a second barrier): with their in-memory caches cleared, each
exports the four graphs again: every program must come from the disk entries
the others wrote.  Phase 3: for a second, one process keeps deleting and
rewriting an entry while the others keep reading it.  No process may ever
read a torn or damaged entry (``cache_stats()['damaged'] == 0``; entries carry
a checksum, so a torn one would be counted), and every result must be right.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_PROC, N_GRAPHS = 3, 4


def _graph(k: int):
    import xgraph as mx
    x = mx.sym.var("x")
    return mx.sym.tanh(mx.sym.FullyConnected(x, num_hidden=8, no_bias=True, name="fc") * (k + 1.0)) + k


def _expected(k: int, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.tanh((x @ w.T) * (k + 1.0)) + k


def _wait_for(path: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


def _child(work: str, rank: int) -> None:
    """One process of the test: the three phases; prints its counters as JSON."""
    import xgraph as mx
    from xgraph import cache
    work_dir = Path(work)
    mx.set_cache_dir(work_dir / "cache")
    rs = np.random.RandomState(0)
    w = rs.rand(8, 5).astype(np.float32)
    x = rs.rand(3, 5).astype(np.float32)
    graphs = [_graph(k) for k in range(N_GRAPHS)]
    wrong = 0

    def check(k: int, got: np.ndarray) -> None:
        nonlocal wrong
        wrong += not np.allclose(got, _expected(k, x, w), rtol=1e-5, atol=1e-6)

    def export_and_run(k: int) -> None:
        art = mx.load_artifact(mx.export(graphs[k], {"fc_weight": w}, inputs={"x": (("n", 5), "float32")}).data)
        check(k, np.asarray(art(x)[0]))

    (work_dir / f"ready-{rank}").touch()
    _wait_for(work_dir / "go")
    for k in [(rank + i) % N_GRAPHS for i in range(N_GRAPHS)]:            # phase 1: race
        export_and_run(k)
        ex = graphs[k].bind(mx.cpu(), args={"x": x, "fc_weight": w})
        check(k, ex.forward(is_train=False)[0].asnumpy())
    (work_dir / f"phase1-{rank}").touch()
    for r in range(N_PROC):
        _wait_for(work_dir / f"phase1-{r}")
    before = cache.cache_stats()
    cache.clear_memory_cache()
    for k in range(N_GRAPHS):                                              # phase 2: read what others wrote
        export_and_run(k)
    phase2 = {key: cache.cache_stats()[key] - before[key] for key in before}
    graph, sig = graphs[0].graph, None
    from xgraph.program import ProgramSignature, TensorSpec
    sig = ProgramSignature(args=(TensorSpec("x", "input", ("n", 5), "float32"),
                                 TensorSpec("fc_weight", "arg", (8, 5), "float32")))
    path = cache.export_path(graph, sig)
    deadline, rounds = time.monotonic() + 1.0, 0
    while time.monotonic() < deadline or rounds < 5:                       # phase 3: rewrite vs read
        cache.clear_memory_cache()
        if rank == 0 and os.path.exists(path):
            os.unlink(path)
        exported = cache.cached_export(graph, sig)
        check(0, np.asarray(exported.call(x, w)[0]))
        rounds += 1
    print(json.dumps({"rank": rank, "wrong": wrong, "stats": cache.cache_stats(), "phase2": phase2,
                      "phase3_rounds": rounds}), flush=True)


def test_processes_share_one_cache_folder(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XGRAPH_CACHE_DIR", None)
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_cache_concurrent as t; "
            f"t._child({str(tmp_path)!r}, int(sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(r)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(N_PROC)]
    try:
        for r in range(N_PROC):
            _wait_for(tmp_path / f"ready-{r}")
        (tmp_path / "go").touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for res in results:
        assert res["wrong"] == 0, res
        assert res["stats"]["damaged"] == 0, res
        assert res["phase2"]["disk_hits"] == N_GRAPHS and res["phase2"]["misses"] == 0, res
        assert res["phase3_rounds"] > 3, res
    entries = sorted(p.name for p in (tmp_path / "cache" / "exports").iterdir() if p.suffix == ".jaxexport")
    assert len(entries) == N_GRAPHS + 1      # the four artifacts and phase 3's program
    assert not [p for p in (tmp_path / "cache" / "exports").iterdir() if p.name.startswith(".tmp-")]
    assert sum(r["stats"]["misses"] for r in results) >= N_GRAPHS     # somebody built each program
