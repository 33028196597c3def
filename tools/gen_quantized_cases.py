#!/usr/bin/env python
"""Write MXNet 1.9.1 references for xgraph's quantized operators into ``tests/fixtures/quantized/``.

Runs in the MXNet venv (MXNet 1.9.1, Python 3.11, numpy < 1.24), not in xgraph's::

    /work/venv-mxnet/bin/python tools/gen_quantized_cases.py

MXNet runs as shipped for CPUs (oneDNN on: its quantized CPU kernels are the
oneDNN ones), single-threaded on its NaiveEngine; every random stream is seeded.
It writes:

* ``cases.json`` + ``cases.npz``: one small graph per quantized op; each case
  records the op, its attributes, and the arrays ``<case>/in<i>`` (inputs, in
  the op's input order) and ``<case>/out<i>`` (MXNet's outputs).
* ``convnet-symbol.json`` + ``convnet-0000.params`` + ``convnet.npz``: a small
  convnet (conv, BatchNorm, relu, max and avg pooling, a residual add, concat,
  flatten, FullyConnected, softmax) quantized by ``quantize_model`` (int8 data,
  ``calib_mode='naive'`` on seeded random data), with its input and MXNet's
  output (``data``, ``out``) and every internal output (``internal:<name>``); the
  same for ``convnet_uint8`` (uint8 data). With ``quantized_dtype='int8'`` MXNet
  1.9.1 cannot run the result on a CPU (its oneDNN quantized convolution takes
  uint8 data only), so no int8 convnet is written; cases MXNet refuses are kept in
  ``cases.json`` with MXNet's error instead of outputs.
"""
from __future__ import annotations

import os

os.environ.update(OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", MXNET_SUBGRAPH_BACKEND="NONE")

import json
import logging
import sys

import numpy as np
import mxnet as mx
from mxnet.contrib import quantization as mxq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mxnet_fixtures import out_dir, save_case  # noqa: E402

OUT_DIR = out_dir(os.path.join(os.path.dirname(HERE), "tests", "fixtures", "quantized"))
RNG = np.random.default_rng(20261207)


def quantize(x, dtype="int8"):
    """x quantized by MXNet's quantize_v2 over its own range: (q, min, max) as numpy arrays."""
    q, lo, hi = mx.nd.contrib.quantize_v2(mx.nd.array(x), out_type=dtype)
    return q.asnumpy(), lo.asnumpy(), hi.asnumpy()


def qrand(shape, lo=-1.0, hi=1.0, dtype="int8"):
    """Uniform random float32 data in [lo, hi), quantized by MXNet: (q, min, max)."""
    return quantize(RNG.uniform(lo, hi, shape).astype(np.float32), dtype)


def run_op(op: str, inputs: list, attrs: dict) -> list:
    """Run one MXNet operator (``mx.nd.contrib.<name>``) eagerly; its outputs as numpy arrays."""
    fn = getattr(mx.nd.contrib, op[len("_contrib_"):])
    outs = fn(*[mx.nd.array(a, dtype=a.dtype) for a in inputs], **attrs)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [o.asnumpy() for o in outs]


CASES: list = []


def case(name, op, inputs, **attrs):
    """Add a case: an op, its inputs in MXNet's input order and its attributes (as strings)."""
    CASES.append((name, op, inputs, {k: str(v) for k, v in attrs.items()}))


def conv_inputs(dtype, shape=(2, 3, 7, 7), wshape=(4, 3, 3, 3), bias=True):
    """Quantized data, weight (and bias), then their ranges, in the order quantized_conv/fc take them."""
    d = qrand(shape, dtype=dtype, lo=0.0 if dtype == "uint8" else -1.0)
    w = qrand(wshape, -0.5, 0.5)
    ins = [d[0], w[0]]
    if bias:
        b = qrand((wshape[0],), -0.3, 0.3)
        ins.append(b[0])
    ins += [d[1], d[2], w[1], w[2]]
    if bias:
        ins += [b[1], b[2]]
    return ins


def build_cases():
    """Every per-op case."""
    for dt in ("int8", "uint8"):
        case(f"conv_{dt}", "_contrib_quantized_conv", conv_inputs(dt), kernel=(3, 3), num_filter=4, pad=(1, 1))
        case(f"conv_{dt}_stride_nobias", "_contrib_quantized_conv", conv_inputs(dt, bias=False),
             kernel=(3, 3), num_filter=4, stride=(2, 2), no_bias=True)
    case("conv_int8_group", "_contrib_quantized_conv", conv_inputs("int8", (1, 4, 6, 6), (4, 2, 3, 3)),
         kernel=(3, 3), num_filter=4, num_group=2, dilate=(2, 2))
    for dt in ("int8", "uint8"):
        d = qrand((3, 2, 5), dtype=dt, lo=0.0 if dt == "uint8" else -1.0)
        w, b = qrand((6, 10), -0.5, 0.5), qrand((6,), -0.2, 0.2)
        case(f"fc_{dt}", "_contrib_quantized_fully_connected", [d[0], w[0], b[0], d[1], d[2], w[1], w[2], b[1], b[2]],
             num_hidden=6)
        case(f"fc_{dt}_nobias", "_contrib_quantized_fully_connected", [d[0], w[0], d[1], d[2], w[1], w[2]],
             num_hidden=6, no_bias=True)
    d = qrand((2, 5, 6), -1, 1)
    case("fc_int8_noflatten", "_contrib_quantized_fully_connected",
         [d[0], qrand((3, 6))[0], qrand((3,))[0], d[1], d[2], *qrand((3, 6))[1:], *qrand((3,))[1:]],
         num_hidden=3, flatten=False)
    for dt in ("int8", "uint8"):
        lo = 0.0 if dt == "uint8" else -1.0
        d = qrand((2, 3, 7, 7), lo, 1.0, dt)
        case(f"pool_max_{dt}", "_contrib_quantized_pooling", list(d), kernel=(3, 3), stride=(2, 2), pool_type="max")
        case(f"pool_avg_{dt}", "_contrib_quantized_pooling", list(d), kernel=(2, 2), stride=(2, 2), pool_type="avg")
        case(f"pool_avg_pad_{dt}", "_contrib_quantized_pooling", list(d), kernel=(3, 3), stride=(2, 2),
             pad=(1, 1), pool_type="avg")
        case(f"pool_global_avg_{dt}", "_contrib_quantized_pooling", list(d), kernel=(1, 1), global_pool=True,
             pool_type="avg")
        case(f"pool_max_full_{dt}", "_contrib_quantized_pooling", list(d), kernel=(2, 2), stride=(2, 2),
             pool_type="max", pooling_convention="full")
        case(f"act_relu_{dt}", "_contrib_quantized_act", list(d), act_type="relu")
        case(f"flatten_{dt}", "_contrib_quantized_flatten", list(d))
    for da, db in (("int8", "int8"), ("uint8", "uint8"), ("int8", "uint8")):
        a = qrand((2, 3, 4), 0.0 if da == "uint8" else -1.0, 1.0, da)
        b = qrand((2, 3, 4), 0.0 if db == "uint8" else -2.0, 2.0, db)
        case(f"add_{da}_{db}", "_contrib_quantized_elemwise_add", [a[0], b[0], a[1], a[2], b[1], b[2]])
        case(f"add_{da}_{db}_calib", "_contrib_quantized_elemwise_add", [a[0], b[0], a[1], a[2], b[1], b[2]],
             min_calib_range=-1.5 if "int8" in (da, db) else 0.0, max_calib_range=2.5)
    for dt in ("int8", "uint8"):
        lo = 0.0 if dt == "uint8" else -1.0
        a, b, c = qrand((2, 2, 3), lo, 1.0, dt), qrand((2, 3, 3), 2 * lo, 2.0, dt), qrand((2, 1, 3), lo / 2, 0.5, dt)
        case(f"concat_{dt}", "_contrib_quantized_concat", [a[0], b[0], c[0], a[1], a[2], b[1], b[2], c[1], c[2]],
             num_args=3, dim=1)
    a, b = qrand((2, 3), -1, 1), qrand((2, 4), -3, 3)
    case("concat_int8_2d", "_contrib_quantized_concat", [a[0], b[0], a[1], a[2], b[1], b[2]], num_args=2, dim=1)
    for dt in ("int8", "uint8"):
        x = RNG.integers(-2 ** 28, 2 ** 28, (3, 7)).astype(np.int32)
        if dt == "uint8":
            x = np.abs(x)
        r = [np.array([-0.8], np.float32), np.array([0.6], np.float32)]
        case(f"requantize_{dt}", "_contrib_requantize", [x, *r], out_type=dt)
        case(f"requantize_{dt}_calib", "_contrib_requantize", [x, *r], out_type=dt,
             min_calib_range=-0.0 if dt == "uint8" else -1e-7, max_calib_range=2e-7)
    for dt in ("int8", "uint8"):
        lo = 0.0 if dt == "uint8" else -1.0
        d = qrand((2, 3, 4, 4), lo, 1.0, dt)
        bn = [RNG.uniform(0.5, 1.5, 3).astype(np.float32), RNG.uniform(-0.5, 0.5, 3).astype(np.float32),
              RNG.uniform(-0.2, 0.2, 3).astype(np.float32), RNG.uniform(0.5, 2.0, 3).astype(np.float32)]
        case(f"bn_{dt}", "_contrib_quantized_batch_norm", [d[0], *bn, d[1], d[2]])
        case(f"bn_{dt}_calib", "_contrib_quantized_batch_norm", [d[0], *bn, d[1], d[2]],
             min_calib_range=-1.2, max_calib_range=1.8, eps=1e-3)
        case(f"bn_{dt}_fixgamma", "_contrib_quantized_batch_norm", [d[0], *bn, d[1], d[2]], fix_gamma=True,
             min_calib_range=-0.5, max_calib_range=0.7)


def write_cases():
    """Run every case in MXNet and write cases.json and cases.npz (a refused case keeps MXNet's error)."""
    meta, arrays = [], {}
    for name, op, inputs, attrs in CASES:
        try:
            outs = run_op(op, inputs, attrs)
        except mx.base.MXNetError as exc:
            meta.append({"name": name, "op": op, "attrs": attrs, "error": str(exc).strip().splitlines()[-1][:300],
                         "num_inputs": len(inputs)})
            for i, a in enumerate(inputs):
                arrays[f"{name}/in{i}"] = a
            continue
        meta.append({"name": name, "op": op, "attrs": attrs, "num_inputs": len(inputs), "num_outputs": len(outs)})
        for i, a in enumerate(inputs):
            arrays[f"{name}/in{i}"] = a
        for i, a in enumerate(outs):
            arrays[f"{name}/out{i}"] = a
    with open(os.path.join(OUT_DIR, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
    np.savez_compressed(os.path.join(OUT_DIR, "cases.npz"), **arrays)


def convnet():
    """Every convolution reads a requantized sum of non-negative values (or the data), so that with
    ``quantized_dtype='auto'`` and data in [0, 1] it gets uint8: MXNet 1.9.1's oneDNN quantized
    convolution refuses int8 data, and a relu keeps its input's dtype."""
    data = mx.sym.var("data")
    c1 = mx.sym.Convolution(data, kernel=(3, 3), num_filter=8, pad=(1, 1), name="conv1")
    b1 = mx.sym.BatchNorm(c1, name="bn1")
    a1 = mx.sym.Activation(b1, act_type="relu", name="relu1")
    p1a = mx.sym.Pooling(a1, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool1a")
    p1b = mx.sym.Pooling(a1, kernel=(2, 2), stride=(2, 2), pool_type="avg", name="pool1b")
    s1 = mx.sym.elemwise_add(p1a, p1b, name="add1")
    c2 = mx.sym.Convolution(s1, kernel=(3, 3), num_filter=8, pad=(1, 1), name="conv2")
    a2 = mx.sym.Activation(c2, act_type="relu", name="relu2")
    s2 = mx.sym.elemwise_add(a2, s1, name="add2")
    c3 = mx.sym.Convolution(s2, kernel=(1, 1), num_filter=4, name="conv3")
    cat = mx.sym.concat(c3, s2, dim=1, name="cat")
    p2 = mx.sym.Pooling(cat, kernel=(2, 2), stride=(2, 2), pool_type="avg", name="pool2")
    f = mx.sym.flatten(p2, name="flat")
    fc = mx.sym.FullyConnected(f, num_hidden=5, name="fc")
    return mx.sym.softmax(fc, name="sm")


def write_convnet(prefix: str, dtype: str):
    """Quantize the convnet with quantize_model, save the checkpoint and MXNet's outputs for one input."""
    mx.random.seed(7)
    sym = convnet()
    mod = mx.mod.Module(sym, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", (2, 3, 8, 8))], for_training=False)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", magnitude=2))
    arg, aux = mod.get_params()
    aux = {k: (mx.nd.array(RNG.uniform(-0.2, 0.2, v.shape)) if "mean" in k else mx.nd.array(RNG.uniform(0.5, 2, v.shape)))
           for k, v in aux.items()}
    arg["bn1_beta"] = mx.nd.array(RNG.uniform(-0.3, 0.3, arg["bn1_beta"].shape))
    calib = RNG.uniform(0, 1, (8, 3, 8, 8)).astype(np.float32)
    qsym, qarg, qaux = mxq.quantize_model(
        sym=sym, arg_params=arg, aux_params=aux, ctx=mx.cpu(), calib_mode="naive",
        calib_data=mx.io.NDArrayIter(calib, batch_size=4), num_calib_examples=8, quantized_dtype=dtype,
        excluded_sym_names=[], logger=logging.getLogger("quiet"))
    mx.model.save_checkpoint(os.path.join(OUT_DIR, prefix), 0, qsym, qarg, qaux)
    save_case(os.path.join(OUT_DIR, prefix), RNG.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32))


if __name__ == "__main__":
    build_cases()
    write_cases()
    for prefix, dtype in (("convnet", "auto"), ("convnet_uint8", "uint8"), ("convnet_int8", "int8")):
        try:
            write_convnet(prefix, dtype)
        except mx.base.MXNetError as exc:   # int8: MXNet's oneDNN quantized convolution refuses int8 data
            print(f"{prefix}: MXNet cannot run it:", str(exc).strip().splitlines()[-1])
            for name in (f"{prefix}-symbol.json", f"{prefix}-0000.params"):
                if os.path.exists(os.path.join(OUT_DIR, name)):
                    os.remove(os.path.join(OUT_DIR, name))
    print("wrote", sorted(os.listdir(OUT_DIR)))
