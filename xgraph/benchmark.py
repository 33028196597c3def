"""Latency and throughput of a loaded artifact on random inputs matching its signature.

What ``xgraph bench`` runs: warm-up calls, then timed calls (each waits for
the result), reported as latency percentiles and throughput.

    >>> import numpy as np, xgraph as mx
    >>> art = mx.load_artifact(mx.export(mx.sym.relu(mx.sym.var('x')), inputs={'x': (('n', 4), 'float32')}).data)
    >>> r = bench_artifact(art, batch=3, iters=5, warmup=1)
    >>> r.batch, len(r.latencies_s), r.percentile(50) > 0
    (3, 5, True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import jax
import numpy as np

from .dtypes import canonical
from .errors import ShapeError


def random_inputs(signature: Any, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays for every input of an artifact signature.

    Every symbolic dimension takes the value ``batch`` (1 when not given);
    giving ``batch`` for an artifact whose inputs have no symbolic dimension
    is an error unless it equals their first dimension.  Floating inputs are
    standard normal, integer inputs zeros (valid indices), booleans False.

        >>> from xgraph.export import ArtifactSignature, TensorInfo
        >>> sig = ArtifactSignature((TensorInfo('x', ('batch', 2), 'float32'),), ())
        >>> random_inputs(sig, batch=5)['x'].shape
        (5, 2)
    """
    symbolic = any(isinstance(d, str) for i in signature.inputs for d in i.shape)
    if batch is not None and not symbolic:
        fixed = {i.shape[0] for i in signature.inputs if i.shape}
        if fixed != {batch}:
            raise ShapeError(f"the artifact's inputs have fixed shapes ({signature}); --batch {batch} only "
                             f"applies to artifacts exported with a symbolic batch dimension")
    size = 1 if batch is None else int(batch)
    rng = np.random.default_rng(seed)
    out = {}
    for info in signature.inputs:
        shape = tuple(size if isinstance(d, str) else int(d) for d in info.shape)
        dt = canonical(info.dtype)
        if np.issubdtype(dt, np.floating) or dt.name == "bfloat16":
            out[info.name] = rng.standard_normal(shape).astype(dt)
        else:
            out[info.name] = np.zeros(shape, dt)
    return out


@dataclass
class BenchResult:
    """Timings of :func:`bench_artifact`: per-call latencies (seconds) and the batch size."""

    batch: int
    latencies_s: list[float]
    first_call_s: float

    def percentile(self, q: float) -> float:
        """The ``q``-th latency percentile in seconds."""
        return float(np.percentile(np.asarray(self.latencies_s), q))

    @property
    def mean_s(self) -> float:
        """Mean latency in seconds."""
        return float(np.mean(self.latencies_s))

    @property
    def throughput(self) -> float:
        """Samples (batch elements) per second at the mean latency."""
        return self.batch / self.mean_s

    def format(self) -> str:
        """The report ``xgraph bench`` prints."""
        ms = {q: self.percentile(q) * 1e3 for q in (50, 90, 99)}
        return "\n".join([
            f"first call: {self.first_call_s * 1e3:.3f} ms (compilation included)",
            f"latency over {len(self.latencies_s)} calls: p50 {ms[50]:.3f} ms, p90 {ms[90]:.3f} ms, "
            f"p99 {ms[99]:.3f} ms, mean {self.mean_s * 1e3:.3f} ms, min {min(self.latencies_s) * 1e3:.3f} ms",
            f"throughput: {self.throughput:,.1f} samples/s ({1.0 / self.mean_s:,.1f} calls/s, batch {self.batch})",
        ])


def smallest_batch(manifest: Mapping[str, Any]) -> int:
    """The smallest size of the symbolic dimensions that splits evenly over a sharded artifact's mesh
    (the product of the mesh axes splitting them, their least common multiple over the inputs); 1 for
    an artifact on one device.

        >>> smallest_batch({'sharding': {'axis_names': ['data', 'model'], 'mesh_shape': [4, 2],
        ...                 'specs': {'x': "('data',)"}}, 'inputs': [{'name': 'x', 'shape': ['batch', 3]}]})
        4
    """
    import math
    from .parallel import partition_spec
    table = manifest.get("sharding")
    if not table:
        return 1
    sizes = dict(zip(table["axis_names"], table["mesh_shape"]))
    out = 1
    for info in manifest["inputs"]:
        for d, entry in zip(info["shape"], partition_spec(table["specs"][info["name"]])):
            if isinstance(d, str) and entry is not None:
                out = math.lcm(out, math.prod(sizes[a] for a in ((entry,) if isinstance(entry, str) else entry)))
    return out


def bench_artifact(loaded: Any, batch: int | None = None, iters: int = 100, warmup: int = 5,
                   inputs: Mapping[str, Any] | None = None, seed: int = 0) -> BenchResult:
    """Time ``loaded`` (a :class:`~xgraph.export.LoadedArtifact`) on random inputs (or ``inputs``).

    The first call (which compiles) is timed apart, then ``warmup`` untimed
    calls, then ``iters`` timed calls, each waiting for its results.  A sharded
    artifact's default batch is the smallest that splits over its mesh (:func:`smallest_batch`).
    """
    if batch is None and inputs is None and getattr(loaded, "sharding", None):
        batch = smallest_batch(loaded.manifest) if any(isinstance(d, str) for i in loaded.signature.inputs
                                                       for d in i.shape) else None
    values = dict(inputs) if inputs is not None else random_inputs(loaded.signature, batch, seed)
    values = {k: jax.device_put(v) for k, v in values.items()}
    batch_size = next((int(v.shape[0]) for v in values.values() if getattr(v, "ndim", 0)), 1)
    t = time.perf_counter()
    jax.block_until_ready(loaded.run(values))
    first = time.perf_counter() - t
    for _ in range(max(0, warmup)):
        jax.block_until_ready(loaded.run(values))
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        jax.block_until_ready(loaded.run(values))
        times.append(time.perf_counter() - t)
    return BenchResult(batch_size, times, first)


__all__ = ["random_inputs", "bench_artifact", "BenchResult", "smallest_batch"]
