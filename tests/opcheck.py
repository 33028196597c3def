"""Generic operator checks for tests: run a symbol, finite-difference gradients, low-precision runs.

    >>> import xgraph as mx, numpy as np
    >>> sym = mx.sym.relu(mx.sym.var('x'))
    >>> run(sym, x=np.ones((2,), np.float32))[0].tolist()  # doctest: +SKIP
    [1.0, 1.0]
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import ml_dtypes
import numpy as np

import xgraph as mx


def run(sym: Any, is_train: bool = False, aux: Mapping[str, np.ndarray] | None = None,
        **args: np.ndarray) -> list[np.ndarray]:
    """Bind ``sym`` to the given arguments (and aux states), run one forward, return numpy outputs."""
    ex = sym.bind(mx.cpu(), args=args, aux_states=dict(aux or {}), grad_req="null")
    return [o.asnumpy() for o in ex.forward(is_train=is_train)]


def grads(sym: Any, wrt: Sequence[str], head: Sequence[np.ndarray], is_train: bool = True,
          aux: Mapping[str, np.ndarray] | None = None, **args: np.ndarray) -> dict[str, np.ndarray]:
    """Executor gradients of ``sum(output_i * head_i)`` with respect to the arguments ``wrt``."""
    reqs = {n: ("write" if n in wrt else "null") for n in args}
    g = {n: np.zeros_like(args[n]) for n in wrt}
    ex = sym.bind(mx.cpu(), args=args, args_grad=g, grad_req=reqs, aux_states=dict(aux or {}))
    ex.forward(is_train=is_train)
    ex.backward(list(head))
    return {n: ex.grad_dict[n].asnumpy() for n in wrt}


def check_numeric_gradient(sym: Any, args: Mapping[str, np.ndarray], wrt: Sequence[str],
                           is_train: bool = True, aux: Mapping[str, np.ndarray] | None = None,
                           eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7, seed: int = 0) -> None:
    """Compare executor gradients with central finite differences, all in float64.

    The scalar checked is ``sum_i sum(output_i * head_i)`` with random heads.
    """
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        args64 = {k: np.asarray(v, np.float64) for k, v in args.items()}
        aux64 = {k: np.asarray(v, np.float64) for k, v in (aux or {}).items()}
        outs = run(sym, is_train, aux64, **args64)
        heads = [rng.standard_normal(o.shape) for o in outs]
        got = grads(sym, wrt, heads, is_train, aux64, **args64)
        ex = sym.bind(mx.cpu(), args=args64, aux_states=dict(aux64), grad_req="null")

        def loss(name: str, value: np.ndarray) -> float:
            res = ex.forward(is_train=is_train, **{name: value})
            return float(sum(np.sum(o.asnumpy() * h) for o, h in zip(res, heads)))

        for name in wrt:
            base = args64[name]
            num = np.zeros_like(base)
            for idx in np.ndindex(base.shape):
                plus, minus = base.copy(), base.copy()
                plus[idx] += eps
                minus[idx] -= eps
                num[idx] = (loss(name, plus) - loss(name, minus)) / (2 * eps)
            ex.forward(is_train=is_train, **{name: base})
            np.testing.assert_allclose(got[name], num, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


LOW_PRECISION = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def check_low_precision(sym: Any, args: Mapping[str, np.ndarray], dtype: str, rtol: float, atol: float,
                        aux: Mapping[str, np.ndarray] | None = None, is_train: bool = False,
                        keep_float32: Sequence[str] = ()) -> list[np.ndarray]:
    """Run in ``dtype`` (``keep_float32`` arguments and aux states stay float32) and compare with float32."""
    ref = run(sym, is_train, aux, **args)
    low_t = LOW_PRECISION[dtype]
    low = {k: (v if k in keep_float32 else np.asarray(v).astype(low_t)) for k, v in args.items()}
    outs = run(sym, is_train, aux, **low)
    assert outs[0].dtype == np.dtype(low_t), f"output dtype {outs[0].dtype}, expected {dtype}"
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o.astype(np.float32), r, rtol=rtol, atol=atol)
    return outs
