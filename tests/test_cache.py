"""Compilation caches: JAX's persistent cache and xgraph's cache of exported programs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import xgraph as mx
from xgraph import cache
from xgraph.lower import TRACE_COUNTS
from xgraph.program import ProgramSignature, TensorSpec

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "mxnet" / "cases"


@pytest.fixture
def cache_dir(tmp_path):
    mx.set_cache_dir(tmp_path / "cache")
    cache.clear_memory_cache()
    yield tmp_path / "cache"
    mx.set_cache_dir(None)
    cache.clear_memory_cache()


def _sig(n="n"):
    return ProgramSignature(args=(TensorSpec("x", "input", (n, 3), "float32"),))


def test_set_cache_dir_configures_jax(cache_dir):
    assert (cache_dir / "jax").is_dir() and (cache_dir / "exports").is_dir()
    assert jax.config.jax_compilation_cache_dir == str(cache_dir / "jax")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == -1
    assert cache.cache_dir() == str(cache_dir)
    mx.set_cache_dir(None)
    assert cache.cache_dir() is None and jax.config.jax_compilation_cache_dir is None


def test_cached_export_memory_then_disk_skips_tracing(cache_dir):
    graph = (mx.sym.tanh(mx.sym.var("x")) * 3.0).graph
    before = cache.cache_stats()
    first = cache.cached_export(graph, _sig())
    path = cache.export_path(graph, _sig())
    assert os.path.exists(path)
    traces = TRACE_COUNTS[graph.structural_hash()]
    assert cache.cached_export(graph, _sig()) is first
    cache.clear_memory_cache()
    again = cache.cached_export(graph, _sig())
    after = cache.cache_stats()
    assert after["misses"] - before["misses"] == 1
    assert after["memory_hits"] - before["memory_hits"] == 1
    assert after["disk_hits"] - before["disk_hits"] == 1
    assert TRACE_COUNTS[graph.structural_hash()] == traces  # the disk hit did not trace the graph
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(np.asarray(again.call(x)[0]), np.tanh(x) * 3, rtol=1e-6)
    # another signature is another entry
    cache.cached_export(graph, _sig("m"))
    assert cache.cache_stats()["misses"] - before["misses"] == 2


def test_damaged_cache_entry_is_rebuilt(cache_dir):
    graph = mx.sym.relu(mx.sym.var("x")).graph
    cache.cached_export(graph, _sig())
    path = cache.export_path(graph, _sig())
    Path(path).write_bytes(b"garbage")
    cache.clear_memory_cache()
    misses = cache.cache_stats()["misses"]
    exp = cache.cached_export(graph, _sig())
    assert cache.cache_stats()["misses"] == misses + 1
    assert np.asarray(exp.call(-np.ones((1, 3), np.float32))[0]).max() == 0
    assert Path(path).read_bytes() != b"garbage"


_FIRST_RESULT = """
import json, sys, time
t0 = time.perf_counter()
import jax, numpy as np
hits = []
jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name)
                                       if name == '/jax/compilation_cache/cache_hits' else None)
import xgraph as mx
from xgraph import cache
from xgraph.lower import TRACE_COUNTS
sym = mx.sym.load(sys.argv[1])
z = np.load(sys.argv[2])
params = {k[4:]: z[k] for k in z.files if k.startswith('arg:')}
t1 = time.perf_counter()
art = mx.load_artifact(mx.export(sym, params, inputs={'data': (('batch', 20), 'float32')}).data)
out = np.asarray(art(data=z['input:data'])[0])
t2 = time.perf_counter()
print(json.dumps({'stats': cache.cache_stats(), 'traces': sum(TRACE_COUNTS.values()),
                  'jax_cache_hits': len(hits), 'first_result_s': t2 - t1, 'total_s': t2 - t0,
                  'max_err': float(np.abs(out - z['out:0']).max())}))
"""


def test_second_process_hits_both_caches(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), XGRAPH_CACHE_DIR=str(tmp_path / "cache"))
    args = [sys.executable, "-c", _FIRST_RESULT, str(FIX / "net_mlp2_softmax-symbol.json"),
            str(FIX / "net_mlp2_softmax.npz")]
    runs = []
    for _ in range(2):
        proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert cold["stats"]["misses"] == 1 and cold["stats"]["disk_writes"] == 1 and cold["traces"] >= 1
    assert warm["stats"]["misses"] == 0 and warm["stats"]["disk_hits"] == 1
    assert warm["traces"] == 0                  # no tracing or lowering of the graph in the warm process
    assert warm["jax_cache_hits"] >= 1          # XLA compilation came from JAX's persistent cache
    assert any((tmp_path / "cache" / "jax").iterdir())
    assert cold["max_err"] < 1e-5 and warm["max_err"] < 1e-5
    print(f"time to first result: cold {cold['first_result_s']:.3f}s, warm {warm['first_result_s']:.3f}s")
