#!/usr/bin/env python
"""Write MXNet 1.9.1 oneDNN (MKLDNN) subgraph checkpoints into ``tests/fixtures/quantized/``.

Runs in the MXNet venv (MXNet 1.9.1, Python 3.11, numpy < 1.24), not in xgraph's::

    /work/venv-mxnet/bin/python tools/gen_mkldnn_cases.py

The checkpoints are made the way users make them, so they hold MXNet's fused
``_sg_mkldnn_conv`` / ``_sg_mkldnn_fully_connected`` nodes (a JSON node with a
nested ``subgraphs`` float graph):

* ``sg_block_int8``: a small Gluon block (conv+BN+relu, conv+relu, a residual
  conv+BN+sum+relu, a plain conv, pooling, Dense+relu, Dense) quantized by
  ``quantize_net(quantize_mode='full', calib_mode='naive')`` and exported;
* ``sg_block_float``: the same block with the same weights, its symbol rewritten
  by ``get_backend_symbol('MKLDNN')`` (float fused nodes, BatchNorm folded at run time);
* ``sg_resnet18_int8``: the Gluon model zoo's ResNet-18 v1 architecture
  (``ResNetV1(BasicBlockV1, [2, 2, 2, 2])``) with thinner channels and 10
  classes, quantized by ``quantize_net``;
* ``sg_convnet_int8``: ``tools/gen_quantized_cases.convnet()`` (a symbolic
  convnet) through ``quantize_model_mkldnn`` (``get_backend_symbol('MKLDNN_QUANTIZE')``).

For each: ``<name>-symbol.json`` and ``<name>-0000.params`` (the checkpoint as
``mx.model.load_checkpoint`` reads it) and ``<name>.npz`` with the input
``data``, MXNet's output ``out`` and the outputs of every fused node
(``internal:<output name>``). MXNet runs single-threaded on its NaiveEngine with
``MXNET_SUBGRAPH_BACKEND=NONE`` at bind time, so the saved symbol runs as written.
"""
from __future__ import annotations

import os

os.environ.update(OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", MXNET_SUBGRAPH_BACKEND="NONE")

import logging
import sys

import numpy as np
import mxnet as mx
from mxnet.contrib import quantization as mxq
from mxnet.gluon import nn
from mxnet.gluon.model_zoo.vision.resnet import BasicBlockV1, ResNetV1

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_quantized_cases import convnet  # noqa: E402
from mxnet_fixtures import out_dir, save_case  # noqa: E402

OUT_DIR = out_dir(os.path.join(os.path.dirname(HERE), "tests", "fixtures", "quantized"))
QUIET = logging.getLogger("quiet")
QUIET.setLevel(logging.ERROR)


class Block(nn.HybridBlock):
    """conv+BN+relu, conv+relu, conv+BN (+ the first as residual) + relu, conv, pooling, Dense+relu, Dense."""

    def __init__(self, **kw):
        super().__init__(**kw)
        with self.name_scope():
            self.c1 = nn.Conv2D(8, 3, padding=1, use_bias=False)
            self.b1 = nn.BatchNorm()
            self.c2 = nn.Conv2D(8, 3, padding=1)
            self.c3 = nn.Conv2D(8, 3, padding=1, use_bias=False)
            self.b3 = nn.BatchNorm()
            self.c4 = nn.Conv2D(6, 1)
            self.pool = nn.MaxPool2D(2)
            self.d1 = nn.Dense(12)
            self.d2 = nn.Dense(5)

    def hybrid_forward(self, F, x):
        a = F.Activation(self.b1(self.c1(x)), act_type="relu")
        b = F.Activation(self.c2(a), act_type="relu")
        c = F.Activation(self.b3(self.c3(b)) + a, act_type="relu")
        d = self.pool(self.c4(c))
        return self.d2(F.Activation(self.d1(d), act_type="relu"))


def seed_params(net, rng):
    """Seeded weights, with non-trivial BatchNorm statistics."""
    for name, p in sorted(net.collect_params().items()):
        shape = p.shape
        if name.endswith(("running_var", "gamma")):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("running_mean", "beta", "bias")):
            v = rng.uniform(-0.2, 0.2, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0, (2.0 / fan_in) ** 0.5, shape)
        p.set_data(mx.nd.array(v.astype(np.float32)))


def _fused(name: str) -> bool:
    return "_sg_mkldnn_" in name or name.endswith("quantize_output")


def save(name: str, x: np.ndarray):
    """MXNet's output of checkpoint ``name`` and of every fused node, into ``<name>.npz``."""
    out, inner = save_case(os.path.join(OUT_DIR, name), x, keep=_fused)
    print(name, out.shape, len(inner), "fused outputs")


def quantize_gluon(net, shape, rng, name: str, float_name: str | None = None):
    """Seed, hybridize and quantize a Gluon block with quantize_net; export it (and its float MKLDNN graph)."""
    net.initialize()
    x = rng.uniform(0, 1, shape).astype(np.float32)
    net(mx.nd.array(x))
    seed_params(net, rng)
    net.hybridize(static_alloc=False)
    net(mx.nd.array(x))
    if float_name is not None:
        tmp = os.path.join(OUT_DIR, "_float_tmp")
        net.export(tmp)
        sym, arg, aux = mx.model.load_checkpoint(tmp, 0)
        mx.model.save_checkpoint(os.path.join(OUT_DIR, float_name), 0, sym.get_backend_symbol("MKLDNN"), arg, aux)
        for suffix in ("-symbol.json", "-0000.params"):
            os.remove(tmp + suffix)
        save(float_name, x)
    calib = mx.io.NDArrayIter(rng.uniform(0, 1, (8,) + shape[1:]).astype(np.float32), batch_size=4)
    qnet = mxq.quantize_net(net, quantized_dtype="auto", quantize_mode="full", calib_mode="naive",
                            calib_data=calib, num_calib_examples=8, ctx=mx.cpu(), logger=QUIET)
    qnet.hybridize()
    qnet(mx.nd.array(x))
    qnet.export(os.path.join(OUT_DIR, name))
    save(name, x)


def quantize_symbolic(name: str, rng):
    """The symbolic convnet through quantize_model_mkldnn (MXNet's get_backend_symbol('MKLDNN_QUANTIZE'))."""
    mx.random.seed(11)
    sym = convnet()
    mod = mx.mod.Module(sym, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", (2, 3, 8, 8))], for_training=False)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", magnitude=2))
    arg, aux = mod.get_params()
    aux = {k: mx.nd.array(rng.uniform(-0.2, 0.2, v.shape) if "mean" in k else rng.uniform(0.5, 2, v.shape))
           for k, v in aux.items()}
    arg["bn1_beta"] = mx.nd.array(rng.uniform(-0.3, 0.3, arg["bn1_beta"].shape))
    calib = rng.uniform(0, 1, (8, 3, 8, 8)).astype(np.float32)
    qsym, qarg, qaux = mxq.quantize_model_mkldnn(
        sym=sym, arg_params=arg, aux_params=aux, ctx=mx.cpu(), calib_mode="naive",
        calib_data=mx.io.NDArrayIter(calib, batch_size=4), num_calib_examples=8, quantized_dtype="auto",
        excluded_sym_names=[], logger=QUIET)
    mx.model.save_checkpoint(os.path.join(OUT_DIR, name), 0, qsym, qarg, qaux)
    save(name, rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32))


if __name__ == "__main__":
    mx.random.seed(3)
    quantize_gluon(Block(prefix="blk_"), (2, 3, 8, 8), np.random.default_rng(20261208), "sg_block_int8",
                   float_name="sg_block_float")
    resnet = ResNetV1(BasicBlockV1, [2, 2, 2, 2], [8, 8, 12, 16, 24], classes=10, prefix="resnetv10_")
    quantize_gluon(resnet, (1, 3, 32, 32), np.random.default_rng(20261209), "sg_resnet18_int8")
    quantize_symbolic("sg_convnet_int8", np.random.default_rng(20261210))
    print("wrote", sorted(f for f in os.listdir(OUT_DIR) if f.startswith("sg_")))
