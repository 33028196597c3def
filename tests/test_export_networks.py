"""Artifacts of every fixture network: exported once with a symbolic batch, run in a fresh process.

Each network is exported with its first input dimension symbolic; one fresh
subprocess loads every artifact and runs it at the fixture's own batch (on
MXNet's reference input) and at batch sizes 1, 7 and 32.  Outputs must equal
the live executor's (bound once at batch 32, whose first rows are the
reference input) and MXNet's reference outputs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xgraph as mx

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "mxnet" / "cases"
NETWORKS = ("net_mlp2_softmax", "net_resnet_small", "net_mobilenet0_25")
BATCHES = (1, 7, 32)

_FRESH_PROCESS = """
import sys, numpy as np, xgraph as mx
work = sys.argv[1]
for name in sys.argv[2:]:
    art = mx.load_artifact(f"{work}/{name}.xgraph")
    with np.load(f"{work}/{name}.in.npz") as z:
        runs = {k: z[k] for k in z.files}
    outs = {}
    for key, x in runs.items():                      # key: batch size as text
        for out_name, value in art.run({art.signature.inputs[0].name: x}, numpy=True).items():
            outs[f"{key}/{out_name}"] = value
    np.savez(f"{work}/{name}.out.npz", **outs)
    print(name, art.signature)
"""


def _load(name: str):
    sym = mx.sym.load(str(FIX / f"{name}-symbol.json"))
    meta = json.loads((FIX / f"{name}.meta.json").read_text())
    with np.load(FIX / f"{name}.npz") as z:
        npz = {k: z[k] for k in z.files}
    return sym, meta, npz


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Per network: the reference batch, inputs at batch 32, live outputs, artifact outputs by run."""
    work = tmp_path_factory.mktemp("nets")
    cases = {}
    for name in NETWORKS:
        sym, meta, npz = _load(name)
        (data_name, (ref_shape, dtype)), = [(n, v) for n, v in meta["inputs"].items() if not n.endswith("label")]
        params = {k[4:]: v for k, v in npz.items() if k.startswith("arg:")}
        aux = {k[4:]: v for k, v in npz.items() if k.startswith("aux:")}
        mx.export(sym, params, aux, inputs={data_name: (("batch", *ref_shape[1:]), dtype)},
                  path=work / f"{name}.xgraph")
        ref = npz[f"input:{data_name}"]
        rng = np.random.default_rng(0)
        x32 = rng.standard_normal((32, *ref_shape[1:])).astype(dtype)
        x32[:len(ref)] = ref
        labels = {n: np.zeros((32,), np.float32) for n in sym.list_arguments()
                  if n not in params and n != data_name}
        ex = sym.bind(mx.cpu(), args={**params, **labels, data_name: x32}, aux_states=aux, grad_req="null")
        live = [o.asnumpy() for o in ex.forward(is_train=False)]
        runs = {"ref": ref, **{str(b): x32[:b] for b in BATCHES}}
        np.savez(work / f"{name}.in.npz", **runs)
        cases[name] = {"sym": sym, "npz": npz, "meta": meta, "ref_batch": len(ref), "live": live}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XGRAPH_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(work), *NETWORKS], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in NETWORKS:
        assert f"{name} inputs [" in proc.stdout and "(batch," in proc.stdout
        with np.load(work / f"{name}.out.npz") as z:
            cases[name]["art"] = {k: z[k] for k in z.files}
    return cases


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("batch", BATCHES)
def test_symbolic_batch_outputs_equal_live_executor(results, name, batch):
    case = results[name]
    out_names = case["sym"].list_outputs()
    for out_name, live in zip(out_names, case["live"]):
        got = case["art"][f"{batch}/{out_name}"]
        assert got.shape == (batch, *live.shape[1:])
        np.testing.assert_allclose(got, live[:batch], rtol=1e-5, atol=1e-5, err_msg=f"{name} batch {batch}")


@pytest.mark.parametrize("name", NETWORKS)
def test_reference_batch_equals_executor_and_mxnet(results, name):
    case = results[name]
    n = case["ref_batch"]
    for i, (out_name, live) in enumerate(zip(case["sym"].list_outputs(), case["live"])):
        got = case["art"][f"ref/{out_name}"]
        np.testing.assert_allclose(got, live[:n], rtol=1e-5, atol=1e-5)
        tol = case["meta"].get("tolerance", {}).get(f"out:{i}", (case["meta"]["rtol"], case["meta"]["atol"]))
        np.testing.assert_allclose(got, case["npz"][f"out:{i}"], rtol=float(tol[0]), atol=float(tol[1]))
