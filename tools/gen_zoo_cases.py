#!/usr/bin/env python
"""Export Gluon and GluonCV model-zoo networks with MXNet 1.9.1 and record their outputs for xgraph's tests.

Runs in a venv with MXNet 1.9.1 and GluonCV 0.10 (numpy < 1.24), not in xgraph's::

    python3.11 -m venv /tmp/venv-mxnet
    /tmp/venv-mxnet/bin/pip install mxnet==1.9.1 'numpy<1.24'
    /tmp/venv-mxnet/bin/pip install --no-deps gluoncv==0.10.5.post0 tqdm portalocker yacs pyyaml \\
        pillow 'scipy<1.11' typing_extensions
    /tmp/venv-mxnet/bin/python tools/gen_zoo_cases.py                 # every network
    /tmp/venv-mxnet/bin/python tools/gen_zoo_cases.py --only resnet18_v1,mobilenet1.0
    /tmp/venv-mxnet/bin/python tools/gen_zoo_cases.py --int8      # GluonCV's int8 entries (INT8_NETWORKS)

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

import sys

#: the int8 networks need MXNet's oneDNN kernels (its only int8 CPU kernels); the float ones run without
INT8_RUN = "--int8" in sys.argv
os.environ.update(OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", MXNET_SUBGRAPH_BACKEND="NONE",
                  MXNET_MKLDNN_ENABLED="1" if INT8_RUN else "0", MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0")

import argparse
import gzip
import json
import shutil
import tempfile
import warnings

import numpy as np
import mxnet as mx

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
sys.path.insert(0, TESTS)
from zoo_weights import seeded_input, seeded_param  # noqa: E402

sys.path.insert(0, HERE)
from mxnet_fixtures import run  # noqa: E402

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

#: GluonCV 0.10's int8 zoo entries (``gluoncv.model_zoo.get_model('<base>_int8')``), rebuilt as GluonCV
#: built them: the float network ``<base>`` (seeded weights) quantized by
#: ``mxnet.contrib.quantization.quantize_net`` (``quantized_dtype='auto'``, ``quantize_mode='full'``,
#: ``calib_mode='naive'`` on seeded inputs), leaving float what GluonCV's shipped int8 symbols
#: (gluoncv/model_zoo/quantized/) leave float; ``generate`` checks that the float layers left are of the
#: same kinds and number as in GluonCV's symbol.  Generated with ``--int8`` (MXNet's oneDNN kernels on).
#: name -> (base network, input shape, get_model kwargs, exclusion rule)
#: rules: "head" - the pooling, flatten and Dense after the last Convolution (mobilenet);
#: "dense" - the last FullyConnected; "ssd" - the heads' Flatten/Concat and the box decoder (operators
#: Flatten, Concat, elemwise_add); "pose" - the deconvolution head's BatchNorm and Activation (after the
#: first Deconvolution); "" - nothing (every convolution quantized).
INT8_NETWORKS = {
    "mobilenet1.0_int8": ("mobilenet1.0", (1, 3, 64, 64), {}, "head"),
    "resnet50_v1_int8": ("resnet50_v1", (1, 3, 64, 64), {}, "dense"),
    "ssd_512_mobilenet1.0_voc_int8": ("ssd_512_mobilenet1.0_voc", (1, 3, 128, 128), {}, "ssd"),
    "simple_pose_resnet18_v1b_int8": ("simple_pose_resnet18_v1b", (1, 3, 64, 48), {}, "pose"),
    "fcn_resnet101_voc_int8": ("fcn_resnet101_voc", (1, 3, 64, 64), {"crop_size": 64, "base_size": 64}, ""),
}
#: values kept of each dequantize node's output (the end of the int8 part, checked bit for bit)
MAX_DEQUANTIZED = 1000
#: calibration examples per int8 network (seeded, like the input)
CALIB_EXAMPLES = 4
#: the operators quantize_net can quantize (a float node of one of these in GluonCV's symbol was excluded)
QUANTIZABLE = ("Convolution", "FullyConnected", "Pooling", "Flatten", "Concat", "elemwise_add", "Activation",
               "BatchNorm")


#: weight gains (zoo_weights.seeded_param) below 1, where outputs would otherwise saturate
GAINS = {"center_net_resnet18_v1b_voc": 0.8, "center_net_resnet18_v1b_dcnv2_voc": 0.8,
         "senet_154": float(os.environ.get("ZOO_GAIN", 0.8))}


def build(name: str):
    if name in INT8_NETWORKS:
        base, _, kwargs, _ = INT8_NETWORKS[name]
        zoo = NETWORKS[base][0] if base in NETWORKS else "gluoncv"
        name = base
    else:
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


def _exclusions(name: str, net, shape) -> dict:
    """quantize_net's exclude_layers / exclude_operators for int8 network ``name`` (its rule)."""
    rule = INT8_NETWORKS[name][3]
    graph = json.loads(net(mx.sym.var("data")).tojson()) if rule in ("head", "dense", "pose") else None
    nodes = [] if graph is None else [(n["name"], n["op"]) for n in graph["nodes"]]
    if rule == "head":
        last = max(i for i, (_, op) in enumerate(nodes) if op == "Convolution")
        return {"exclude_layers": [n for n, op in nodes[last + 1:] if op in ("Pooling", "Flatten", "FullyConnected")]}
    if rule == "dense":
        return {"exclude_layers": [[n for n, op in nodes if op == "FullyConnected"][-1]]}
    if rule == "ssd":
        return {"exclude_operators": ["Flatten", "Concat", "elemwise_add"]}
    if rule == "pose":
        first = min(i for i, (_, op) in enumerate(nodes) if op == "Deconvolution")
        return {"exclude_layers": [n for n, op in nodes[first:] if op in ("BatchNorm", "Activation")]}
    return {}


#: the quantized and fused forms of the quantizable operators
_QUANTIZED_FORMS = {"_contrib_quantized_conv": "Convolution", "_contrib_quantized_fully_connected": "FullyConnected",
                    "_contrib_quantized_pooling": "Pooling", "_contrib_quantized_flatten": "Flatten",
                    "_contrib_quantized_concat": "Concat", "_contrib_quantized_elemwise_add": "elemwise_add",
                    "_contrib_quantized_act": "Activation", "_contrib_quantized_batch_norm": "BatchNorm"}


def _kind(node: dict) -> str | None:
    """The quantizable operator a node computes, float (``op``) or quantized (``"int8 " + op``)."""
    op, attrs = node["op"], node.get("attrs", {})
    fused = {"_sg_mkldnn_conv": "Convolution", "_sg_mkldnn_fully_connected": "FullyConnected"}
    if op in fused:
        return ("int8 " if attrs.get("quantized", "false").lower() == "true" else "") + fused[op]
    if op in _QUANTIZED_FORMS:
        return "int8 " + _QUANTIZED_FORMS[op]
    return op if op in QUANTIZABLE else None


def _float_layers(graph: dict) -> dict:
    """{op: count} of the quantizable operators a quantized graph left float (a float fused node counts as
    its operator: MXNet 1.9.1 fuses an excluded FullyConnected into a float _sg_mkldnn_fully_connected)."""
    kinds = [k for k in map(_kind, graph["nodes"]) if k and not k.startswith("int8 ")]
    return {k: kinds.count(k) for k in sorted(set(kinds))}


def _check_float_layers(name: str, graph: dict) -> None:
    """The operator kinds left float are GluonCV's (those of its shipped int8 symbol that the network,
    as GluonCV 0.10 builds it, still has: the older shipped SSDs decode boxes with elemwise ops)."""
    theirs = set(_float_layers(gluoncv_int8_symbol(name)))
    present = {k.replace("int8 ", "") for k in map(_kind, graph["nodes"]) if k}
    ours = set(_float_layers(graph))
    if ours != theirs & present:
        raise RuntimeError(f"{name}: float layers {sorted(ours)}, GluonCV's int8 symbol {sorted(theirs)}")


def gluoncv_int8_symbol(name: str) -> dict:
    """GluonCV's shipped int8 symbol of ``name`` (what get_model(name) imports), as parsed JSON."""
    from gluoncv.model_zoo.quantized import quantized
    from gluoncv.utils.compress_json import get_compressed_model
    path = os.path.join(os.path.dirname(quantized.__file__), f"{name}-symbol.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return json.loads(get_compressed_model(name, quantized._compressed_int8_json))


def _quantize(name: str, net, shape):
    """GluonCV's int8 recipe on the seeded float network: quantize_net, calibrated on seeded inputs."""
    from mxnet.contrib.quantization import quantize_net
    import logging
    calib = seeded_input(f"{name}/calibration", (CALIB_EXAMPLES,) + tuple(shape[1:]))
    quiet = logging.getLogger("quiet")
    quiet.setLevel(logging.ERROR)
    qnet = quantize_net(net, quantized_dtype="auto", quantize_mode="full", calib_mode="naive",
                        calib_data=mx.io.NDArrayIter(calib, batch_size=1), num_calib_examples=CALIB_EXAMPLES,
                        ctx=mx.cpu(), logger=quiet, **_exclusions(name, net, shape))
    qnet.hybridize()
    return qnet


def cpu_isa() -> str:
    """The kind of CPU MXNet's oneDNN ran the int8 kernels on, as xgraph.ops.mkldnn.CPU_ISAS names it:
    'vnni' (AVX512-VNNI or AVX-VNNI) or 'avx2' (without VNNI: halved weights, int16 pair saturation)."""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        flags = set(" ".join(line for line in f if line.startswith("flags")).split())
    return "vnni" if flags & {"avx512_vnni", "avx_vnni"} else "avx2"


def _dequantized(sym, args: dict, aux: dict, graph: dict) -> dict:
    """MXNet's outputs of the int8 graph's ``_contrib_dequantize`` nodes (where its int8 part ends):
    {node: (every k-th value, shape, k)}, at most MAX_DEQUANTIZED values each."""
    names = [n["name"] for n in graph["nodes"] if n["op"] == "_contrib_dequantize"]
    _, inner = run(sym, args, aux, [f"{n}_output" for n in names])
    found = {}
    for n in names:
        o = inner[f"{n}_output"]
        k = max(1, -(-o.size // MAX_DEQUANTIZED))
        found[n] = (o.reshape(-1)[::k], o.shape, k)
    return found


def input_shape(name: str) -> tuple:
    return INT8_NETWORKS[name][1] if name in INT8_NETWORKS else NETWORKS[name][1]


def generate(name: str, out_dir: str) -> None:
    """Export network ``name`` with seeded weights and write its three fixture files."""
    shape = input_shape(name)
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
        if name in INT8_NETWORKS:
            net = _quantize(name, net, shape)
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
        dequantized = _dequantized(sym, args, aux_params, json.loads(raw)) if name in INT8_NETWORKS else {}
    finally:
        shutil.rmtree(work)
    base = os.path.join(out_dir, name)
    with gzip.GzipFile(base + "-symbol.json.gz", "wb", mtime=0) as f:
        f.write(raw)
    strides = [max(1, -(-o.size // MAX_STORED)) for o in outs]
    stored = {f"out:{i}": o.reshape(-1)[::k] if k > 1 else o for i, (o, k) in enumerate(zip(outs, strides))}
    stored.update({f"dequantize:{n}": v for n, (v, _, _) in dequantized.items()})
    np.savez_compressed(base + ".npz", **stored)
    graph = json.loads(raw)
    if name in INT8_NETWORKS:   # the same kinds of layers left float as in GluonCV's own int8 symbol
        _check_float_layers(name, graph)
    zoo = "gluoncv" if name in INT8_NETWORKS else NETWORKS[name][0]
    meta = {"name": name, "zoo": zoo, "mxnet_version": mx.__version__,
            "input": {"data": list(shape)}, "weight_gain": GAINS.get(name, 1.0),
            "arg_params": {k: list(v.shape) for k, v in sorted(arg_params.items())},
            "aux_params": {k: list(v.shape) for k, v in sorted(aux_params.items())},
            "ops": sorted({n["op"] for n in graph["nodes"] if n["op"] != "null"}),
            "outputs": [[list(o.shape), str(o.dtype)] for o in outs],
            "output_strides": strides,
            "output_scale": [float(np.max(np.abs(o))) if o.size else 0.0 for o in outs]}
    if name in INT8_NETWORKS:
        meta["int8"] = {
            "float_network": INT8_NETWORKS[name][0], "cpu_isa": cpu_isa(),
            "quantize_net": {"quantized_dtype": "auto", "quantize_mode": "full", "calib_mode": "naive",
                             "num_calib_examples": CALIB_EXAMPLES, "exclusion_rule": INT8_NETWORKS[name][3]},
            "float_layers": _float_layers(graph),
            "dequantized": {n: {"shape": list(shape), "stride": k} for n, (_, shape, k) in dequantized.items()}}
    with open(base + ".meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated network names")
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--keep-going", action="store_true", help="report a network that fails and go on")
    ap.add_argument("--int8", action="store_true",
                    help="the int8 networks (INT8_NETWORKS; oneDNN on), instead of the float ones")
    opts = ap.parse_args(argv)
    table = INT8_NETWORKS if opts.int8 else NETWORKS
    names = opts.only.split(",") if opts.only else list(table)
    wrong = [n for n in names if n not in table]
    if wrong:
        ap.error(f"not {'an int8' if opts.int8 else 'a float'} network here: {', '.join(wrong)}"
                 + ("" if opts.int8 else " (int8 networks take --int8)"))
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
