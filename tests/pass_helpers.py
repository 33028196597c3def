"""Shared helpers of the pass tests: run a graph eagerly (the reference semantics) and its gradients."""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from xgraph.graph import Graph
from xgraph.lower import GraphFunction


def run_graph(graph: Graph, values: Mapping[str, np.ndarray], is_train: bool = False,
              jit: bool = False) -> list[np.ndarray]:
    """The outputs of ``graph`` on ``values`` (by variable name), evaluated op by op (or jitted:
    op-by-op runs of whole networks take minutes)."""
    gf = GraphFunction(graph, is_train)
    args = [jnp.asarray(values[n]) for n in gf.arg_names]
    aux = [jnp.asarray(values[n]) for n in gf.aux_names]
    outs, _ = (jax.jit(gf) if jit else gf)(args, aux, jax.random.key(0))
    return [np.asarray(o) for o in outs]


def grads(graph: Graph, values: Mapping[str, np.ndarray], cotangents: list[np.ndarray],
          jit: bool = False) -> dict[str, np.ndarray]:
    """Gradients of sum(outputs * cotangents) with respect to every float argument (jitted if asked)."""
    gf = GraphFunction(graph, True)
    names = [n for n in gf.arg_names if np.issubdtype(np.asarray(values[n]).dtype, np.floating)]
    fixed = {n: jnp.asarray(values[n]) for n in gf.arg_names}
    aux = [jnp.asarray(values[n]) for n in gf.aux_names]

    def f(diff):
        feed = dict(fixed, **dict(zip(names, diff)))
        outs, _ = gf([feed[n] for n in gf.arg_names], aux, jax.random.key(0))
        return sum(jnp.sum(o * c) for o, c in zip(outs, cotangents))

    g = (jax.jit(jax.grad(f)) if jit else jax.grad(f))([fixed[n] for n in names])
    return {n: np.asarray(v) for n, v in zip(names, g)}


def assert_same(a: list[np.ndarray], b: list[np.ndarray], rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Outputs agree in count, shape, dtype and value."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)
