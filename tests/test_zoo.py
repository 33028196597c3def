"""Gluon and GluonCV model-zoo networks, exported by MXNet 1.9.1 (tools/gen_zoo_cases.py), load with
``mx.model.load_checkpoint``, bind as an MXNet user binds them, and match MXNet's outputs.

GluonCV's int8 entries (``*_int8``: the float network quantized by ``quantize_net`` as GluonCV did) match
MXNet's oneDNN kernels bit for bit up to their ``_contrib_dequantize`` nodes; the float layers after
them (a Dense, a pooling, softmax and NMS, a deconvolution head) are held to the float tolerance.

The weights are not stored: ``zoo_weights.seeded_param`` regenerates the values
MXNet ran with, and the test writes them to a ``.params`` file beside the
exported symbol, so loading goes through the same two files a user holds.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import mkldnn
from zoo_weights import ZOO_DIR, seeded_input, write_checkpoint

NAMES = sorted(f[: -len(".meta.json")] for f in os.listdir(ZOO_DIR) if f.endswith(".meta.json"))
#: largest |xgraph - MXNet| allowed, relative to the largest |output| of MXNet
RELATIVE_TOLERANCE = 2e-4


#: networks whose check takes over 30 s on CI's 2 cores (senet_154: 115M parameters, ~40 s, the same
#: SE blocks as se_resnext50_32x4d; the int8 ResNet-50 and FCN ResNet-101, whose int8 convolutions
#: take ~25 s and ~100 s to compile, the same fused nodes as mobilenet1.0_int8 and
#: simple_pose_resnet18_v1b_int8); they run with XGRAPH_FULL_ZOO=1
SLOW = {"senet_154", "resnet50_v1_int8", "fcn_resnet101_voc_int8"}


@pytest.mark.parametrize("name", NAMES)
def test_exported_network_matches_mxnet(name, tmp_path):
    if name in SLOW and os.environ.get("XGRAPH_FULL_ZOO") != "1":
        pytest.skip(f"{name} takes over 30 s here; run with XGRAPH_FULL_ZOO=1")
    prefix, meta = write_checkpoint(name, str(tmp_path))
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    x = seeded_input(name, meta["input"]["data"])
    int8 = meta.get("int8", {}).get("dequantized", {})
    if int8:    # GluonCV int8 entries: the outputs and, in the same program, where the int8 part ends
        internals = sym.get_internals()
        sym = mx.sym.Group([sym[i] for i in range(len(sym.list_outputs()))]
                           + [internals[f"{n}_output"] for n in int8])
    # int8 entries: as MXNet's oneDNN kernels compute on the kind of CPU that made the fixture
    with mkldnn.cpu_isa(meta["int8"]["cpu_isa"]) if int8 else contextlib.nullcontext():
        ex = sym.bind(mx.cpu(), args=dict(arg_params, data=mx.nd.array(x)), aux_states=aux_params,
                      grad_req="null")
        outs = ex.forward(is_train=False)
    if int8:
        outs, dequantized = outs[:len(meta["outputs"])], outs[len(meta["outputs"]):]
        with np.load(os.path.join(ZOO_DIR, f"{name}.npz")) as ref:
            for (node, info), out in zip(int8.items(), dequantized):
                got = out.asnumpy()
                assert got.shape == tuple(info["shape"]), node
                # bit for bit: MXNet's oneDNN int8 kernels on that kind of CPU (mkldnn.CPU_ISAS)
                np.testing.assert_array_equal(got.reshape(-1)[::info["stride"]], ref[f"dequantize:{node}"],
                                              err_msg=f"{name}: {node}")
    with np.load(os.path.join(ZOO_DIR, f"{name}.npz")) as ref:
        assert len(outs) == len([k for k in ref.files if k.startswith("out:")])
        for i, (out, (shape, dtype), stride) in enumerate(zip(outs, meta["outputs"], meta["output_strides"])):
            got = out.asnumpy()
            assert got.shape == tuple(shape) and got.dtype == np.dtype(dtype), f"output {i}"
            want = ref[f"out:{i}"]
            got = got.reshape(-1)[::stride] if stride > 1 else got
            assert_matches(got, want, f"{name} output {i}")


def assert_matches(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Same non-finite values in the same places (random weights overflow some heads' exp), and the
    finite ones within RELATIVE_TOLERANCE of MXNet's largest finite |value|."""
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite], err_msg=f"{what}: non-finite values")
    got, want = got[finite].astype(np.float64), want[finite].astype(np.float64)
    if want.size:
        scale = max(float(np.max(np.abs(want))), 1e-6)
        err = float(np.max(np.abs(got - want)))
        assert err <= RELATIVE_TOLERANCE * scale, f"{what}: max error {err:.3g}, scale {scale:.3g}"
