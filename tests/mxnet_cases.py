"""Load MXNet 1.9.1 reference cases and check xgraph against them.

A case is four files in ``tests/fixtures/mxnet/cases/`` (a copy of the shared
fixture set; the older partial copy one level up lacks some cases' JSON): ``<name>-symbol.json``, ``<name>.npz``, ``<name>.meta.json`` and
``<name>-0000.params``.  The npz holds inputs (``input:``), parameters
(``arg:``), auxiliary states (``aux:``), inference outputs (``out:i``) and, when
``meta['has_grad']``, the training forward (``train_out:i``), head gradients
(``head_grad:i``), gradients (``grad:NAME``) and updated aux states
(``train_aux:NAME``).

    >>> case = load_case('conv2d_basic')            # doctest: +SKIP
    >>> check_inference(case); check_training(case)  # doctest: +SKIP

:func:`load_checkpoint_case` reads the symbol and the parameters the way a user
would, through ``xgraph.model.load_checkpoint`` (JSON + ``.params``); only the
inputs and the expected values come from the npz.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import xgraph as mx

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "mxnet", "cases")


@dataclass
class Case:
    """One reference case: its symbol, arrays by role, meta data and every npz array."""

    name: str
    symbol: Any
    inputs: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    aux: dict[str, np.ndarray]
    meta: dict[str, Any]
    npz: dict[str, np.ndarray]

    def tolerance(self, key: str) -> tuple[float, float]:
        """``(rtol, atol)`` for one npz key: the meta file's per-key value, else the case's defaults."""
        tol = self.meta.get("tolerance", {}).get(key)
        if tol is not None:
            return float(tol[0]), float(tol[1])
        if key.startswith("out:"):
            return float(self.meta["rtol"]), float(self.meta["atol"])
        return float(self.meta["grad_rtol"]), float(self.meta["grad_atol"])

    def args(self) -> dict[str, np.ndarray]:
        """Every argument value (inputs and parameters), by name."""
        return {**self.inputs, **self.params}


def _with_prefix(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_case(name: str, directory: str = FIXTURE_DIR) -> Case:
    """Load case ``name``: the symbol through ``mx.sym.load``, arrays from the npz."""
    symbol = mx.sym.load(os.path.join(directory, f"{name}-symbol.json"))
    with open(os.path.join(directory, f"{name}.meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    with np.load(os.path.join(directory, f"{name}.npz")) as data:
        npz = {k: data[k] for k in data.files}
    return Case(name, symbol, _with_prefix(npz, "input:"), _with_prefix(npz, "arg:"),
                _with_prefix(npz, "aux:"), meta, npz)


def case_names(directory: str = FIXTURE_DIR) -> list[str]:
    """Every case in ``directory`` (the names of its ``.meta.json`` files), sorted."""
    return sorted(f[: -len(".meta.json")] for f in os.listdir(directory) if f.endswith(".meta.json"))


def load_checkpoint_case(name: str, directory: str = FIXTURE_DIR) -> Case:
    """Load case ``name`` as a checkpoint: symbol and ``arg:``/``aux:`` parameters from
    ``<name>-symbol.json`` and ``<name>-0000.params`` through ``xgraph.model.load_checkpoint``;
    inputs and expected values from the npz."""
    npz_case = load_case(name, directory)
    symbol, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(directory, name), 0)
    params = {k: v.asnumpy() for k, v in arg_params.items()}
    aux = {k: v.asnumpy() for k, v in aux_params.items()}
    return Case(name, symbol, npz_case.inputs, params, aux, npz_case.meta, npz_case.npz)


def assert_close(case: Case, key: str, got: Any) -> None:
    """Compare one result with the npz value under that key, with the case's tolerance for it."""
    rtol, atol = case.tolerance(key)
    got = got.asnumpy() if hasattr(got, "asnumpy") else np.asarray(got)
    np.testing.assert_allclose(got, case.npz[key], rtol=rtol, atol=atol, err_msg=f"{case.name} {key}")


def check_inference(case: Case) -> list[np.ndarray]:
    """Bind every argument and aux state, ``forward(is_train=False)``, compare every ``out:i``."""
    ex = case.symbol.bind(mx.cpu(), args=case.args(), aux_states=dict(case.aux), grad_req="null")
    outs = ex.forward(is_train=False)
    n_expected = len([k for k in case.npz if k.startswith("out:")])
    assert len(outs) == n_expected, f"{case.name}: {len(outs)} outputs, expected {n_expected}"
    for i, o in enumerate(outs):
        assert_close(case, f"out:{i}", o)
    for name, value in case.aux.items():  # inference leaves the aux states alone
        np.testing.assert_array_equal(ex.aux_dict[name].asnumpy(), value)
    return [o.asnumpy() for o in outs]


def check_training(case: Case) -> None:
    """``forward(is_train=True)`` + ``backward(head grads)``; compare outputs, gradients, aux states."""
    assert case.meta["has_grad"], f"{case.name} has no training reference"
    reqs = dict(case.meta["grad_req"])
    args = case.args()
    grads = {n: np.zeros_like(v) for n, v in args.items() if reqs.get(n, "write") != "null"}
    ex = case.symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req=reqs, aux_states=dict(case.aux))
    outs = ex.forward(is_train=True)
    heads = [case.npz[f"head_grad:{i}"] for i in range(len(outs))]
    ex.backward(heads)
    for i, o in enumerate(outs):
        assert_close(case, f"train_out:{i}", o)
    expected_grads = _with_prefix(case.npz, "grad:")
    assert set(expected_grads) == set(grads), f"{case.name}: gradients {sorted(grads)} vs {sorted(expected_grads)}"
    for name in expected_grads:
        assert_close(case, f"grad:{name}", ex.grad_dict[name])
    for name in _with_prefix(case.npz, "train_aux:"):
        assert_close(case, f"train_aux:{name}", ex.aux_dict[name])
