"""Run MXNet 1.9.1 reference cases (tests/fixtures/mxnet) through xgraph and compare.

A case is ``<name>-symbol.json`` (the graph as MXNet saved it), ``<name>.npz``
(inputs ``input:*``, parameters ``arg:*``, aux states ``aux:*``, expected
``out:*``, ``train_out:*``, ``head_grad:*``, ``grad:*``, ``train_aux:*``) and
``<name>.meta.json`` (grad_req, per-key tolerances).

    >>> case = load_case('transpose')          # doctest: +SKIP
    >>> check_inference(case); check_training(case)   # doctest: +SKIP
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import xgraph as mx

FIXTURES = Path(__file__).parent / "fixtures" / "mxnet"


@dataclass
class Case:
    """One reference case: its symbol, arrays and metadata."""

    name: str
    symbol: Any
    data: dict[str, np.ndarray]
    meta: dict[str, Any]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays whose npz key starts with ``prefix`` (``'input:'``), keyed by the rest."""
        return {k[len(prefix):]: v for k, v in self.data.items() if k.startswith(prefix)}

    def args(self) -> dict[str, np.ndarray]:
        """Every argument: inputs and parameters."""
        return {**self.arrays("input:"), **self.arrays("arg:")}

    def tol(self, key: str) -> tuple[float, float]:
        """(rtol, atol) for an npz key."""
        rtol, atol = self.meta["tolerance"][key]
        return float(rtol), float(atol)


def load_case(name: str) -> Case:
    """Load a case by name from tests/fixtures/mxnet."""
    sym = mx.sym.load(str(FIXTURES / f"{name}-symbol.json"))
    with np.load(FIXTURES / f"{name}.npz") as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads((FIXTURES / f"{name}.meta.json").read_text())
    return Case(name, sym, data, meta)


def _compare(case: Case, key: str, got: Any) -> None:
    rtol, atol = case.tol(key)
    want = case.data[key]
    got = np.asarray(got)
    assert got.shape == want.shape, f"{case.name} {key}: shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                               err_msg=f"{case.name} {key}")


def check_inference(case: Case) -> None:
    """Bind every argument and aux state, run ``forward(is_train=False)``, compare ``out:*``."""
    ex = case.symbol.bind(mx.cpu(), args=case.args(), aux_states=case.arrays("aux:"), grad_req="null")
    outs = ex.forward(is_train=False)
    assert len(outs) == len(case.meta["outputs"]), f"{case.name}: {len(outs)} outputs"
    for i, o in enumerate(outs):
        _compare(case, f"out:{i}", o.asnumpy())


def check_training(case: Case) -> None:
    """Training forward + backward(head_grad:*); compare ``train_out:*``, ``grad:*``, ``train_aux:*``."""
    assert case.meta["has_grad"], f"{case.name} has no training reference"
    args = case.args()
    reqs = {n: case.meta["grad_req"].get(n, "write") for n in case.symbol.list_arguments()}
    grads = {n: mx.nd.zeros(args[n].shape, dtype=args[n].dtype) for n, r in reqs.items() if r != "null"}
    ex = case.symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req=reqs,
                          aux_states=case.arrays("aux:"))
    outs = ex.forward(is_train=True)
    heads = [mx.nd.array(case.data[f"head_grad:{i}"]) for i in range(len(outs))]
    ex.backward(heads)
    for i, o in enumerate(outs):
        _compare(case, f"train_out:{i}", o.asnumpy())
    for name, want in case.arrays("grad:").items():
        _compare(case, f"grad:{name}", ex.grad_dict[name].asnumpy())
    for name in case.arrays("train_aux:"):
        _compare(case, f"train_aux:{name}", ex.aux_dict[name].asnumpy())
