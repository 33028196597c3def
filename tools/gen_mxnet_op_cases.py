#!/usr/bin/env python
"""Write MXNet 1.9.1 reference cases for xgraph's operators into ``tests/fixtures/mxnet_ops/``.

Runs in a venv with MXNet 1.9.1 (Python 3.11, numpy < 1.24), not in xgraph's::

    python3.11 -m venv /tmp/venv-mxnet
    /tmp/venv-mxnet/bin/pip install mxnet==1.9.1 'numpy<1.24'
    /tmp/venv-mxnet/bin/python tools/gen_mxnet_op_cases.py            # every case
    /tmp/venv-mxnet/bin/python tools/gen_mxnet_op_cases.py --only grid_affine,bilinear_sampler
    /tmp/venv-mxnet/bin/python tools/gen_mxnet_op_cases.py --list

A case is written in the format ``tests/mxnet_cases.py`` reads (the same as the
shared MXNet fixture set): ``<name>-symbol.json`` (``sym.save``),
``<name>-0000.params`` (empty: every argument is an input), ``<name>.npz``
(``input:NAME``, ``out:i``; with gradients ``train_out:i``, ``head_grad:i``,
``grad:NAME``) and ``<name>.meta.json`` (tolerances, ``grad_req``, notes).
MXNet runs single-threaded on its NaiveEngine with its native kernels, and every
random stream is seeded from the case name, so reruns give the same values.

Cases are the functions decorated with :func:`case` in the modules of
``tools/mxnet_op_cases/`` (one per operator family); each returns a :class:`Spec`.
"""
from __future__ import annotations

import os
import sys

os.environ.update(OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", MXNET_SUBGRAPH_BACKEND="NONE",
                  MXNET_MKLDNN_ENABLED="0")

import argparse
import importlib
import json
import pkgutil
import zlib

import numpy as np
import mxnet as mx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxnet_op_cases
from mxnet_op_cases import CASES, rng_for

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "mxnet_ops")


def _run(sym, args: dict, is_train: bool, heads=None, grad_req=None):
    nd_args = {k: mx.nd.array(v, dtype=v.dtype) for k, v in args.items()}
    grads = {k: mx.nd.zeros(v.shape, dtype=v.dtype) for k, v in args.items() if (grad_req or {}).get(k) == "write"}
    ex = sym.bind(mx.cpu(), args=nd_args, args_grad=grads or None, grad_req=grad_req or "null")
    outs = [o.asnumpy() for o in ex.forward(is_train=is_train)]
    if heads is not None:
        ex.backward([mx.nd.array(h, dtype=h.dtype) for h in heads])
        return outs, {k: g.asnumpy() for k, g in grads.items()}
    return outs, None


def generate(name: str, out_dir: str) -> None:
    """Run case ``name`` in MXNet and write its four files."""
    with mx.name.NameManager():
        spec = CASES[name](rng_for(name))
    sym = spec.sym
    args = sym.list_arguments()
    missing = set(args) - set(spec.inputs)
    if missing:
        raise ValueError(f"{name}: arguments {sorted(missing)} have no input value")
    prefix = os.path.join(out_dir, name)
    sym.save(prefix + "-symbol.json")
    mx.nd.save(prefix + "-0000.params", {})
    outs, _ = _run(sym, spec.inputs, is_train=False)
    arrays = {f"input:{k}": spec.inputs[k] for k in args}
    arrays.update({f"out:{i}": o for i, o in enumerate(outs)})
    grad_req = {k: ("null" if k in spec.no_grad else "write") for k in args}
    if spec.train:
        hr = rng_for(name, "heads")
        heads = [hr.standard_normal(o.shape).astype(o.dtype) for o in outs]
        train_outs, grads = _run(sym, spec.inputs, True, heads, grad_req)
        arrays.update({f"train_out:{i}": o for i, o in enumerate(train_outs)})
        arrays.update({f"head_grad:{i}": h for i, h in enumerate(heads)})
        arrays.update({f"grad:{k}": g for k, g in grads.items()})
    np.savez(prefix + ".npz", **arrays)
    meta = {"name": name, "kind": "op", "mxnet_version": mx.__version__, "backend": "native CPU kernels",
            "ops": sorted({n["op"] for n in json.loads(sym.tojson())["nodes"] if n["op"] != "null"}),
            "has_grad": spec.train, "grad_req": grad_req, "rtol": spec.rtol, "atol": spec.atol,
            "grad_rtol": spec.rtol, "grad_atol": spec.atol, "notes": spec.notes,
            "outputs": [[list(o.shape), str(o.dtype)] for o in outs]}
    with open(prefix + ".meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def _load_case_modules() -> None:
    for mod in pkgutil.iter_modules(mxnet_op_cases.__path__):
        importlib.import_module(f"mxnet_op_cases.{mod.name}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out", default=OUT_DIR)
    opts = ap.parse_args(argv)
    _load_case_modules()
    names = opts.only.split(",") if opts.only else sorted(CASES)
    if opts.list:
        print("\n".join(names))
        return
    os.makedirs(opts.out, exist_ok=True)
    for name in names:
        generate(name, opts.out)
        print("wrote", name)


if __name__ == "__main__":
    main()
