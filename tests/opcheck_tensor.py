"""The checks of :mod:`opcheck` with the ``(sym, inputs)`` calling convention of the tensor-op tests.

    >>> import xgraph as mx, numpy as np
    >>> run(mx.sym.var('x') * 2, x=np.ones(2, np.float32))[0].tolist()   # doctest: +SKIP
    [2.0, 2.0]
"""
from __future__ import annotations

from typing import Any

import numpy as np

import opcheck


def run(sym: Any, dtype: Any = None, **inputs: np.ndarray) -> list[np.ndarray]:
    """Inference outputs of ``sym`` on numpy inputs (cast to ``dtype`` if given), as numpy arrays."""
    cast = {k: np.asarray(v).astype(opcheck.LOW_PRECISION.get(dtype, dtype)) if dtype else v
            for k, v in inputs.items()}
    return opcheck.run(sym, **cast)


def check_grad(sym: Any, inputs: dict[str, np.ndarray], null: tuple[str, ...] = (), eps: float = 1e-6,
               rtol: float = 1e-6, atol: float = 1e-8, seed: int = 0) -> None:
    """Finite-difference check (float64) of every argument's gradient except those in ``null``."""
    wrt = [n for n in sym.list_arguments() if n not in null]
    opcheck.check_numeric_gradient(sym, inputs, wrt, eps=eps, rtol=rtol, atol=atol, seed=seed)


TOLERANCE = {"float16": 2e-2, "bfloat16": 1e-1}


def check_low_precision(sym: Any, inputs: dict[str, np.ndarray], dtype: str, scale: float = 1.0) -> None:
    """Outputs in float16/bfloat16 keep that dtype and match float32 on the same (rounded) inputs."""
    low = opcheck.LOW_PRECISION[dtype]
    rounded = {k: np.asarray(v).astype(low).astype(np.float32) for k, v in inputs.items()}
    tol = TOLERANCE[dtype]
    opcheck.check_low_precision(sym, rounded, dtype, rtol=tol, atol=tol * scale)
