"""Small test helpers for operators: run a symbol, check gradients by finite differences,
compare low-precision runs with float32.

    >>> import xgraph as mx, numpy as np
    >>> run(mx.sym.var('x') * 2, x=np.ones(2, np.float32))[0].tolist()   # doctest: +SKIP
    [2.0, 2.0]
"""
from __future__ import annotations

from typing import Any

import jax
import ml_dtypes
import numpy as np

import xgraph as mx


def run(sym: Any, dtype: Any = None, **inputs: np.ndarray) -> list[np.ndarray]:
    """Inference outputs of ``sym`` on numpy inputs (cast to ``dtype`` if given), as numpy arrays."""
    args = {k: mx.nd.array(v, dtype=dtype or v.dtype) for k, v in inputs.items()}
    ex = sym.bind(mx.cpu(), args=args, grad_req="null")
    return [o.asnumpy() for o in ex.forward(is_train=False)]


def check_grad(sym: Any, inputs: dict[str, np.ndarray], null: tuple[str, ...] = (), eps: float = 1e-6,
               rtol: float = 1e-6, atol: float = 1e-8, seed: int = 0) -> None:
    """Compare executor gradients with central finite differences, in float64.

    The scalar checked is ``sum_i <out_i, head_i>`` with random head gradients;
    arguments in ``null`` get ``grad_req='null'``.
    """
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        args = {k: np.asarray(v, np.float64) for k, v in inputs.items()}
        names = [n for n in sym.list_arguments() if n not in null]
        grads = {n: mx.nd.zeros(args[n].shape, dtype="float64") for n in names}
        reqs = {n: ("null" if n in null else "write") for n in sym.list_arguments()}
        ex = sym.bind(mx.cpu(), args={k: mx.nd.array(v, dtype="float64") for k, v in args.items()},
                      args_grad=grads, grad_req=reqs)
        outs = ex.forward(is_train=True)
        heads = [rng.normal(size=o.shape) for o in outs]
        ex.backward([mx.nd.array(h, dtype="float64") for h in heads])
        analytic = {n: ex.grad_dict[n].asnumpy().copy() for n in names}

        def objective(name: str, value: np.ndarray) -> float:
            ex.arg_dict[name][:] = value
            return float(sum((o.asnumpy() * h).sum() for o, h in zip(ex.forward(is_train=False), heads)))

        for n in names:
            base = args[n]
            numeric = np.zeros_like(base)
            for idx in np.ndindex(base.shape):
                up, down = base.copy(), base.copy()
                up[idx] += eps
                down[idx] -= eps
                numeric[idx] = (objective(n, up) - objective(n, down)) / (2 * eps)
            ex.arg_dict[n][:] = base
            np.testing.assert_allclose(analytic[n], numeric, rtol=rtol, atol=atol, err_msg=f"gradient of {n}")


LOW_PRECISION = {"float16": (np.float16, 2e-2), "bfloat16": (ml_dtypes.bfloat16, 1e-1)}


def check_low_precision(sym: Any, inputs: dict[str, np.ndarray], dtype: str, scale: float = 1.0) -> None:
    """Outputs in float16/bfloat16 keep that dtype and match float32 within a loose tolerance."""
    np_dtype, tol = LOW_PRECISION[dtype]
    # round inputs to the low precision first so both runs see the same values
    rounded = {k: v.astype(np_dtype).astype(np.float32) for k, v in inputs.items()}
    ref = run(sym, **rounded)
    got = run(sym, dtype=dtype, **rounded)
    for r, g in zip(ref, got):
        assert g.dtype == np.dtype(np_dtype), f"output dtype {g.dtype}, expected {dtype}"
        np.testing.assert_allclose(g.astype(np.float32), r, rtol=tol, atol=tol * scale)
