#!/usr/bin/env python
"""Export Gluon and GluonCV model-zoo networks with MXNet 1.9.1 and record their outputs for xgraph's tests.

Runs in a venv with MXNet 1.9.1 and GluonCV 0.10 (numpy < 1.24), not in xgraph's::

    python3.11 -m venv /tmp/venv-mxnet
    /tmp/venv-mxnet/bin/pip install mxnet==1.9.1 'numpy<1.24'
    /tmp/venv-mxnet/bin/pip install --no-deps gluoncv==0.10.5.post0 tqdm portalocker yacs pyyaml \\
        pillow 'scipy<1.11' typing_extensions
    /tmp/venv-mxnet/bin/python tools/gen_zoo_cases.py                 # every network
    /tmp/venv-mxnet/bin/python tools/gen_zoo_cases.py --only resnet18_v1,mobilenet1.0

For each network: build it without pretrained weights, set every parameter to
``tests/zoo_weights.seeded_param(name, shape)`` (so the tests regenerate the
weights instead of storing them), ``hybridize()`` + ``export()`` as a user
would, run the seeded input through the exported symbol in MXNet, and write to
``tests/fixtures/zoo/``: ``<name>-symbol.json.gz`` (the exported JSON, gzipped),
``<name>.npz`` (the outputs, ``out:i``; of a large output every k-th value
of the flattened array, k in the meta's ``output_strides``) and ``<name>.meta.json`` (input shape,
parameter and aux-state shapes, ops, where the network comes from).
"""
from __future__ import annotations

import os

os.environ.update(OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", MXNET_SUBGRAPH_BACKEND="NONE",
                  MXNET_MKLDNN_ENABLED="0", MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0")

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import warnings

import numpy as np
import mxnet as mx

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
sys.path.insert(0, TESTS)
from zoo_weights import seeded_input, seeded_param  # noqa: E402

OUT_DIR = os.path.join(TESTS, "fixtures", "zoo")
#: outputs larger than this many values are stored as every k-th value of the flattened array
MAX_STORED = 20000

#: name -> (zoo, input shape, keyword arguments of get_model)
NETWORKS = {
    # mxnet.gluon.model_zoo.vision
    "resnet18_v1": ("gluon", (1, 3, 64, 64), {}),
    "resnet50_v1": ("gluon", (1, 3, 64, 64), {}),
    "resnet18_v2": ("gluon", (1, 3, 64, 64), {}),
    "resnet50_v2": ("gluon", (1, 3, 64, 64), {}),
    "vgg11_bn": ("gluon", (1, 3, 32, 32), {}),
    "alexnet": ("gluon", (1, 3, 224, 224), {}),
    "densenet121": ("gluon", (1, 3, 224, 224), {}),
    "squeezenet1.0": ("gluon", (1, 3, 224, 224), {}),
    "squeezenet1.1": ("gluon", (1, 3, 224, 224), {}),
    "inceptionv3": ("gluon", (1, 3, 299, 299), {}),
    "mobilenet1.0": ("gluon", (1, 3, 64, 64), {}),
    "mobilenet0.25": ("gluon", (1, 3, 64, 64), {}),
    "mobilenetv2_1.0": ("gluon", (1, 3, 64, 64), {}),
    "mobilenetv2_0.5": ("gluon", (1, 3, 64, 64), {}),
    # gluoncv.model_zoo: classification
    "resnet50_v1b": ("gluoncv", (1, 3, 64, 64), {}),
    "resnet50_v1d": ("gluoncv", (1, 3, 64, 64), {}),
    "resnext50_32x4d": ("gluoncv", (1, 3, 64, 64), {}),
    "se_resnext50_32x4d": ("gluoncv", (1, 3, 64, 64), {}),
    "se_resnet18_v2": ("gluoncv", (1, 3, 64, 64), {}),
    "resnest50": ("gluoncv", (1, 3, 64, 64), {}),
    "mobilenetv3_large": ("gluoncv", (1, 3, 64, 64), {}),
    "mobilenetv3_small": ("gluoncv", (1, 3, 64, 64), {}),
    "darknet53": ("gluoncv", (1, 3, 64, 64), {}),
    "cifar_resnet20_v1": ("gluoncv", (1, 3, 32, 32), {}),
    "cifar_wideresnet16_10": ("gluoncv", (1, 3, 32, 32), {}),
    "senet_154": ("gluoncv", (1, 3, 64, 64), {}),
    "hrnet_w18_small_v1_c": ("gluoncv", (1, 3, 64, 64), {}),
    # detection
    "ssd_300_vgg16_atrous_voc": ("gluoncv", (1, 3, 300, 300), {}),
    "ssd_512_mobilenet1.0_voc": ("gluoncv", (1, 3, 128, 128), {}),
    "yolo3_mobilenet1.0_voc": ("gluoncv", (1, 3, 128, 128), {}),
    "yolo3_darknet53_voc": ("gluoncv", (1, 3, 128, 128), {}),
    "faster_rcnn_resnet50_v1b_voc": ("gluoncv", (1, 3, 128, 128), {}),
    "center_net_resnet18_v1b_voc": ("gluoncv", (1, 3, 128, 128), {}),   # weight gain in GAINS
    # ModulatedDeformableConvolution; center_net_resnet50_v1b_dcnv2_voc also matches but takes ~16 s
    "center_net_resnet18_v1b_dcnv2_voc": ("gluoncv", (1, 3, 64, 64), {}),
    # segmentation
    "fcn_resnet50_voc": ("gluoncv", (1, 3, 64, 64), {"crop_size": 64, "base_size": 64}),
    "psp_resnet50_ade": ("gluoncv", (1, 3, 64, 64), {"crop_size": 64, "base_size": 64}),
    "deeplab_resnet50_ade": ("gluoncv", (1, 3, 64, 64), {"crop_size": 64, "base_size": 64}),
    # pose, action recognition
    "simple_pose_resnet18_v1b": ("gluoncv", (1, 3, 64, 48), {}),
    "i3d_resnet50_v1_kinetics400": ("gluoncv", (1, 3, 8, 64, 64), {}),
}


#: weight gains (zoo_weights.seeded_param) below 1, where outputs would otherwise saturate
GAINS = {"center_net_resnet18_v1b_voc": 0.8, "center_net_resnet18_v1b_dcnv2_voc": 0.8,
         "senet_154": float(os.environ.get("ZOO_GAIN", 0.8))}


def build(name: str):
    zoo, _, kwargs = NETWORKS[name]
    if zoo == "gluon":
        return mx.gluon.model_zoo.vision.get_model(name, pretrained=False, **kwargs)
    import gluoncv
    try:
        return gluoncv.model_zoo.get_model(name, pretrained=False, pretrained_base=False, **kwargs)
    except Exception:  # noqa: BLE001 - networks without a pretrained_base argument (some raise, some warn)
        return gluoncv.model_zoo.get_model(name, pretrained=False, **kwargs)


def _export(net, prefix: str) -> None:
    tmp = tempfile.mkdtemp(prefix="zoo_")
    try:
        net.export(os.path.join(tmp, "net"), epoch=0)
        for suffix in ("-symbol.json", "-0000.params"):
            shutil.move(os.path.join(tmp, "net" + suffix), prefix + suffix)
    finally:
        shutil.rmtree(tmp)


def generate(name: str, out_dir: str) -> None:
    """Export network ``name`` with seeded weights and write its three fixture files."""
    shape = NETWORKS[name][1]
    x = seeded_input(name, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build(name)
        net.initialize(mx.init.Uniform())
        net.hybridize()
        net(mx.nd.array(x))                      # creates the deferred parameters
        for p in net.collect_params().values():
            p.set_data(mx.nd.array(seeded_param(p.name, p.shape, GAINS.get(name, 1.0))))
        net(mx.nd.array(x))
    work = tempfile.mkdtemp(prefix="zoo_")
    try:
        prefix = os.path.join(work, name)
        _export(net, prefix)
        # the reference is what a user of the exported files gets from MXNet
        sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
        args = dict(arg_params, data=mx.nd.array(x))
        ex = sym.bind(mx.cpu(), args=args, aux_states=aux_params, grad_req="null")
        outs = [o.asnumpy() for o in ex.forward(is_train=False)]
        with open(prefix + "-symbol.json", "rb") as f:
            raw = f.read()
    finally:
        shutil.rmtree(work)
    base = os.path.join(out_dir, name)
    with gzip.GzipFile(base + "-symbol.json.gz", "wb", mtime=0) as f:
        f.write(raw)
    strides = [max(1, -(-o.size // MAX_STORED)) for o in outs]
    np.savez_compressed(base + ".npz", **{f"out:{i}": o.reshape(-1)[::k] if k > 1 else o
                                          for i, (o, k) in enumerate(zip(outs, strides))})
    graph = json.loads(raw)
    meta = {"name": name, "zoo": NETWORKS[name][0], "mxnet_version": mx.__version__,
            "input": {"data": list(shape)}, "weight_gain": GAINS.get(name, 1.0),
            "arg_params": {k: list(v.shape) for k, v in sorted(arg_params.items())},
            "aux_params": {k: list(v.shape) for k, v in sorted(aux_params.items())},
            "ops": sorted({n["op"] for n in graph["nodes"] if n["op"] != "null"}),
            "outputs": [[list(o.shape), str(o.dtype)] for o in outs],
            "output_strides": strides,
            "output_scale": [float(np.max(np.abs(o))) if o.size else 0.0 for o in outs]}
    with open(base + ".meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated network names")
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--keep-going", action="store_true", help="report a network that fails and go on")
    opts = ap.parse_args(argv)
    names = opts.only.split(",") if opts.only else list(NETWORKS)
    os.makedirs(opts.out, exist_ok=True)
    for name in names:
        try:
            generate(name, opts.out)
            print("wrote", name, flush=True)
        except Exception as err:  # noqa: BLE001 - a report of what MXNet/GluonCV could not export
            if not opts.keep_going:
                raise
            print(f"FAILED {name}: {type(err).__name__}: {str(err).splitlines()[0][:200]}", flush=True)


if __name__ == "__main__":
    main()
