"""The fixture writer the MXNet-side generators share (tools/gen_quantized_cases.py, tools/gen_mkldnn_cases.py,
tools/gen_zoo_cases.py): run a symbol in MXNet 1.9.1 and keep its outputs and chosen internal outputs.

Runs in the MXNet venv (imports mxnet lazily, so the module can be read without it).
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

import numpy as np


def internal_names(sym, params: Iterable[str] = (), keep: Callable[[str], bool] | None = None) -> list:
    """The internal output names of ``sym`` that are not parameters or inputs (``params``), and that
    ``keep`` accepts when given, in MXNet's topological order."""
    skip = set(params)
    return [n for n in sym.get_internals().list_outputs() if n not in skip and (keep is None or keep(n))]


def run(sym, args: dict, aux: dict, names: Iterable[str] = ()) -> tuple[list, dict]:
    """Bind ``sym`` on the CPU (``grad_req='null'``) and run it once for inference; then, when ``names``
    are given, the internal outputs of those names in a second executor.  Returns (outputs as numpy
    arrays, {name: value})."""
    import mxnet as mx
    ex = sym.bind(mx.cpu(), args, aux_states=aux, grad_req="null")
    outs = [o.asnumpy() for o in ex.forward(is_train=False)]
    names = list(names)
    if not names:
        return outs, {}
    internals = sym.get_internals()
    group = mx.sym.Group([internals[n] for n in names])
    ex2 = group.bind(mx.cpu(), args, aux_states=aux, grad_req="null")
    return outs, {n: o.asnumpy() for n, o in zip(names, ex2.forward(is_train=False))}


def run_checkpoint(prefix: str, data: np.ndarray, keep: Callable[[str], bool] | None = None) -> tuple:
    """Load ``prefix``-symbol.json / -0000.params as a user does and run it on ``data``: (first output,
    {internal name: value} for every internal output ``keep`` accepts; all non-parameters without it)."""
    import mxnet as mx
    sym, arg, aux = mx.model.load_checkpoint(prefix, 0)
    args = {"data": mx.nd.array(data), **arg}
    outs, inner = run(sym, args, aux, internal_names(sym, set(arg) | set(aux) | {"data"}, keep))
    return outs[0], inner


def save_case(prefix: str, data: np.ndarray, keep: Callable[[str], bool] | None = None) -> tuple:
    """Run checkpoint ``prefix`` on ``data`` and write ``prefix.npz``: ``data``, MXNet's output ``out``
    and the chosen internal outputs as ``internal:<name>``.  Returns (out, inner)."""
    out, inner = run_checkpoint(prefix, data, keep)
    np.savez_compressed(prefix + ".npz", data=data, out=out, **{f"internal:{n}": v for n, v in inner.items()})
    return out, inner


def out_dir(default: str) -> str:
    """The fixture directory: ``$XG_FIXTURE_OUT`` when set (to regenerate elsewhere and compare), else
    ``default``."""
    path = os.environ.get("XG_FIXTURE_OUT") or default
    os.makedirs(path, exist_ok=True)
    return path
