"""MXNet reference cases for ``tools/gen_mxnet_op_cases.py``, one module per operator family.

    >>> @case
    ... def relu_small(rng):
    ...     return Spec(mx.sym.relu(mx.sym.var("x")), {"x": rng.standard_normal((2, 3)).astype("f4")})
"""
from __future__ import annotations

import zlib

import numpy as np

CASES: dict = {}


class Spec:
    """One case: ``sym`` over ``inputs`` ({name: array}); gradients for every input not in ``no_grad``.

    ``train=False`` records inference only (ops without a backward in MXNet, or
    integer outputs); ``rtol``/``atol`` are the suggested tolerances.
    """

    def __init__(self, sym, inputs, no_grad=(), train=True, rtol=1e-5, atol=1e-6, notes=()):
        self.sym, self.inputs, self.no_grad = sym, dict(inputs), set(no_grad)
        self.train, self.rtol, self.atol, self.notes = train, rtol, atol, list(notes)


def case(fn):
    """Register a case function ``fn(rng) -> Spec`` under its name."""
    CASES[fn.__name__] = fn
    return fn


def rng_for(name: str, salt: str = "inputs") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"xgraph-op-cases/{name}/{salt}".encode()))
