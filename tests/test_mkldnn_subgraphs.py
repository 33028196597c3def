"""MXNet 1.9.1's oneDNN fused nodes (_sg_mkldnn_conv, _sg_mkldnn_fully_connected) in int8 and float
checkpoints made as users make them (tools/gen_mkldnn_cases.py: quantize_net, quantize_model_mkldnn,
get_backend_symbol('MKLDNN')), loaded with mx.model.load_checkpoint and checked against MXNet's outputs;
the JSON 'subgraphs' field read and written; bad fused nodes refused."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import (AttributeValueError, DTypeError, GraphFormatError, UnsupportedFeatureError,
                           UnsupportedOperatorError, XGraphError)
from xgraph.io.symbol_json import from_json, to_json
from xgraph.ops.mkldnn import Subgraph

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "quantized")
INT8 = ["sg_block_int8", "sg_resnet18_int8", "sg_convnet_int8"]


def _checkpoint(name):
    sym, arg, aux = mx.model.load_checkpoint(os.path.join(HERE, name), 0)
    return sym, arg, aux, np.load(os.path.join(HERE, f"{name}.npz"))


def _nodes(name):
    with open(os.path.join(HERE, f"{name}-symbol.json")) as f:
        return json.load(f)


def _run(sym, arg, aux, data, names=()):
    """The symbol's first output and the named internal outputs, from one executor."""
    internals = sym.get_internals()
    grp = mx.sym.Group([sym[0]] + [internals[n] for n in names])
    exe = grp.bind(mx.cpu(), {"data": mx.nd.array(data), **arg}, aux_states=aux, grad_req="null")
    return [o.asnumpy() for o in exe.forward(is_train=False)]


@pytest.mark.parametrize("name", INT8)
def test_int8_checkpoint_matches_mxnet_bit_for_bit(name):
    """Every fused node's outputs (int8/uint8 data and ranges, the float output of the last layer) are
    MXNet's to the bit; only the float softmax after them rounds."""
    sym, arg, aux, io = _checkpoint(name)
    names = [k[len("internal:"):] for k in io.files if k.startswith("internal:")]
    out, *inner = _run(sym, arg, aux, io["data"], names)
    checked = 0
    for n, got in zip(names, inner):
        want = io[f"internal:{n}"]
        assert got.dtype == want.dtype and got.shape == want.shape, (n, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=n)
        checked += "_sg_mkldnn_" in n
    assert checked >= 9
    if name == "sg_convnet_int8":   # ends in a float softmax
        np.testing.assert_allclose(out, io["out"], rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(out, io["out"])


def test_float_fused_checkpoint_matches_mxnet():
    """get_backend_symbol('MKLDNN'): float fused nodes (BatchNorm folded into the weights) to float32 rounding."""
    sym, arg, aux, io = _checkpoint("sg_block_float")
    out, = _run(sym, arg, aux, io["data"])
    np.testing.assert_allclose(out, io["out"], rtol=1e-5, atol=1e-5)


def test_fixtures_cover_the_fusions():
    seen = set()
    for name in INT8 + ["sg_block_float"]:
        for node in _nodes(name)["nodes"]:
            if node["op"].startswith("_sg_mkldnn_"):
                attrs = node.get("attrs", {})
                flags = {k for k, v in attrs.items() if k.startswith(("with_", "enable_")) and v.lower() == "true"}
                seen |= {(node["op"], "quantized" in attrs, f) for f in flags | {"plain"}}
    for q in (True, False):
        for f in ("with_bn", "with_act", "with_sum", "with_postsum_act", "plain"):
            assert ("_sg_mkldnn_conv", q, f) in seen, (q, f)
        assert ("_sg_mkldnn_fully_connected", q, "with_eltwise") in seen
    assert ("_sg_mkldnn_fully_connected", True, "enable_float_output") in seen


def test_checkpoint_names_are_mxnets():
    """The fused nodes' inputs are the checkpoint's parameters: float conv weights, BatchNorm's gamma/beta
    as arguments and running mean/var as auxiliary states, int8 FC weights with their ranges."""
    sym, arg, aux, _ = _checkpoint("sg_resnet18_int8")
    assert set(sym.list_arguments()) == set(arg) | {"data"}
    assert set(sym.list_auxiliary_states()) == set(aux)
    assert arg["resnetv10_conv0_weight"].dtype == np.float32
    assert arg["resnetv10_dense0_weight_quantize"].dtype == np.int8
    assert all(k.endswith(("running_mean", "running_var")) for k in aux)
    qconv = [n for n in json.loads(sym.tojson())["nodes"] if n["name"] == "quantized_sg_mkldnn_conv_bn_act_0"][0]
    internals = sym.get_internals()
    assert internals["quantized_sg_mkldnn_conv_bn_act_0_output"].infer_type(data="float32")[1][0] == np.uint8
    assert internals.list_outputs().count("quantized_sg_mkldnn_conv_bn_act_0_output_min") == 1
    assert len(qconv["inputs"]) == 8


@pytest.mark.parametrize("name", ["sg_block_int8", "sg_block_float"])
def test_json_round_trip_keeps_subgraphs(name):
    sym, _, _, _ = _checkpoint(name)
    text = sym.tojson()
    assert to_json(from_json(text)) == text
    doc = json.loads(text)
    fused = [n for n in doc["nodes"] if n["op"].startswith("_sg_mkldnn_")]
    assert fused and all("subgraphs" in n and "subgraphs" not in n.get("attrs", {}) for n in fused)
    orig = {n["name"]: n for n in _nodes(name)["nodes"]}
    for n in fused:   # the same nested graphs as MXNet wrote
        ops = [m["op"] for m in n["subgraphs"][0]["nodes"]]
        assert ops == [m["op"] for m in orig[n["name"]]["subgraphs"][0]["nodes"]]


def test_symbol_api_builds_a_fused_node():
    """A float fused conv built from a Symbol chain computes what the chain computes."""
    rng = np.random.default_rng(0)
    x, w, s = (mx.sym.var(n) for n in ("x", "w", "s"))
    chain = mx.sym.Activation(mx.sym.Convolution(x, w, kernel=(3, 3), num_filter=4, pad=(1, 1), no_bias=True)
                              + s, act_type="relu")
    fused = mx.sym._sg_mkldnn_conv(x, w, s, subgraphs=(Subgraph.of(chain),), with_sum=True, with_postsum_act=True)
    assert fused.list_arguments() == ["x", "w", "s"]
    vals = {k: rng.normal(size=shape).astype(np.float32)
            for k, shape in (("x", (2, 3, 5, 5)), ("w", (4, 3, 3, 3)), ("s", (2, 4, 5, 5)))}
    got = fused.bind(mx.cpu(), vals, grad_req="null").forward()[0].asnumpy()
    want = chain.bind(mx.cpu(), vals, grad_req="null").forward()[0].asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------
def _edited(name, node_name, edit):
    doc = _nodes(name)
    node = [n for n in doc["nodes"] if n["name"] == node_name][0]
    edit(node)
    return json.dumps(doc)


QCONV = "quantized_sg_mkldnn_conv_bn_act_0"


def _sub_op(node, old, new, attrs=None):
    for m in node["subgraphs"][0]["nodes"]:
        if m["op"] == old:
            m["op"] = new
            if attrs is not None:
                m["attrs"] = attrs


def test_unknown_op_inside_a_subgraph():
    """Listed with the file's other unknown operators, at once, naming the fused node it sits in."""
    text = _edited("sg_block_int8", QCONV, lambda n: _sub_op(n, "Activation", "NoSuchAct"))
    with pytest.raises(UnsupportedOperatorError, match=rf"NoSuchAct inside the subgraph of .*{QCONV}.*_sg_mkldnn_conv"):
        from_json(text)
    doc = json.loads(text)
    doc["nodes"][-1]["op"] = "NoSuchTop"
    with pytest.raises(UnsupportedOperatorError, match=r"2 unsupported operator\(s\): NoSuchAct, NoSuchTop") as e:
        from_json(json.dumps(doc))
    assert e.value.ops == ("NoSuchAct", "NoSuchTop")


def test_op_the_fusion_does_not_take():
    text = _edited("sg_block_int8", QCONV, lambda n: _sub_op(n, "Activation", "negative", {}))
    with pytest.raises(UnsupportedOperatorError, match=rf"{QCONV}.*_sg_mkldnn_conv.*negative.*not one"):
        from_json(text)


def test_missing_subgraph():
    text = _edited("sg_block_int8", QCONV, lambda n: n.pop("subgraphs"))
    with pytest.raises(AttributeValueError, match=rf"{QCONV}.*_sg_mkldnn_conv.*subgraphs"):
        from_json(text)
    with pytest.raises(GraphFormatError, match=rf"{QCONV}.*_sg_mkldnn_conv.*list of graphs"):
        from_json(_edited("sg_block_int8", QCONV, lambda n: n.update(subgraphs={"nodes": []})))


def test_subgraphs_on_an_op_without_them():
    text = _edited("sg_block_int8", "quantized_blk_pool0_fwd", lambda n: n.update(subgraphs=[{}]))
    with pytest.raises(GraphFormatError, match=r"quantized_blk_pool0_fwd.*_contrib_quantized_pooling.*takes none"):
        from_json(text)


@pytest.mark.parametrize("attr, value, match", [
    ("with_bn", "false", "with_bn"), ("with_sum", "true", "with_sum"), ("with_act", "false", "with_act")])
def test_attributes_that_disagree_with_the_subgraph(attr, value, match):
    text = _edited("sg_block_int8", QCONV, lambda n: n["attrs"].update({attr: value}))
    with pytest.raises(XGraphError, match=rf"{QCONV}.*_sg_mkldnn_conv.*{match}.*subgraph"):
        from_json(text)


def _bound(text, name="sg_block_int8"):
    sym = mx.sym.load_json(text)
    _, arg, aux, io = _checkpoint(name)
    return sym.bind(mx.cpu(), {"data": mx.nd.array(io["data"]), **arg}, aux_states=aux, grad_req="null")


def test_quantized_node_needs_both_calibrated_bounds():
    text = _edited("sg_block_int8", QCONV, lambda n: n["attrs"].pop("max_calib_range"))
    with pytest.raises(AttributeValueError, match=rf"{QCONV}.*_sg_mkldnn_conv.*together"):
        _bound(text)
    calib = ("min_calib_range", "max_calib_range")
    text = _edited("sg_block_int8", QCONV, lambda n: [n["attrs"].pop(k) for k in calib])
    with pytest.raises(UnsupportedFeatureError, match=rf"{QCONV}.*_sg_mkldnn_conv.*calib"):
        _bound(text)


def test_float_data_into_a_quantized_node():
    """The quantized conv fed the float data itself (its quantize_v2 bypassed) is refused, naming the node."""
    sym, arg, aux, io = _checkpoint("sg_block_int8")
    doc = json.loads(sym.get_internals()[f"{QCONV}_output"].tojson())
    node = [n for n in doc["nodes"] if n["name"] == QCONV][0]
    assert doc["nodes"][0]["name"] == "data"
    node["inputs"][0] = [0, 0, 0]
    bad = mx.sym.load_json(json.dumps(doc))
    args = {k: v for k, v in arg.items() if k in bad.list_arguments()}
    with pytest.raises(DTypeError, match=rf"{QCONV}.*_sg_mkldnn_conv.*data must be uint8 or int8, got float32"):
        bad.bind(mx.cpu(), {"data": mx.nd.array(io["data"]), **args}, aux_states=aux, grad_req="null").forward()


def test_old_attribute_names():
    """Files of older MXNet write with_relu / with_postsum_relu for with_act / with_postsum_act."""
    sym, arg, aux, io = _checkpoint("sg_block_int8")
    doc = json.loads(sym.get_internals()[f"{QCONV}_output"].tojson())
    node = [n for n in doc["nodes"] if n["name"] == QCONV][0]
    node["attrs"]["with_relu"] = node["attrs"].pop("with_act")
    old = mx.sym.load_json(json.dumps(doc))
    args = {k: v for k, v in arg.items() if k in old.list_arguments()}
    out = old.bind(mx.cpu(), {"data": mx.nd.array(io["data"]), **args}, aux_states=aux, grad_req="null").forward()
    np.testing.assert_array_equal(out[0].asnumpy(), io[f"internal:{QCONV}_output"])


def test_cpu_isa_setting():
    """The oneDNN CPU kind the int8 convolutions reproduce: 'vnni' (exact sums, the default) or 'avx2'
    (GluonCV int8 zoo fixtures, tests/test_zoo.py); anything else is a ConfigError naming the choices."""
    from xgraph.errors import ConfigError
    from xgraph.ops import mkldnn
    before = mkldnn.set_cpu_isa("vnni")
    try:
        with mkldnn.cpu_isa("avx2"):
            assert mkldnn._current_isa() == "avx2"
        assert mkldnn._current_isa() == "vnni"
        with pytest.raises(ConfigError, match="vnni, avx2"):
            mkldnn.set_cpu_isa("avx512")
    finally:
        mkldnn.set_cpu_isa(before)


def test_avx2_pair_saturation():
    """Without VNNI, u8 x s8 products of two adjacent channels saturate to int16 before the int32 sum
    (the halved weights of signed data are checked against MXNet by the int8 zoo entries); depthwise
    kernels do not saturate."""
    import jax.numpy as jnp
    from xgraph.ops import mkldnn
    p = {"kernel": (1, 1), "stride": (), "dilate": (), "pad": (), "num_filter": 2, "num_group": 1,
         "layout": None, "no_bias": True}
    x = jnp.full((1, 4, 1, 1), 255, jnp.uint8)
    w = jnp.array([[127, 127, 1, 1], [-128, -128, 100, -100]], jnp.int8).reshape(2, 4, 1, 1)
    lost = np.asarray(mkldnn._pair_saturation(p, x, w)).ravel().tolist()
    assert lost == [32767 - 2 * 255 * 127, -32768 + 2 * 255 * 128]
    assert mkldnn._pair_saturation(dict(p, num_group=4, num_filter=4), x, w[:, :1].repeat(2, 0)) is None


AVX2 = os.path.join(HERE, "avx2")


@pytest.mark.parametrize("name", ["sg_block_int8", "sg_resnet18_int8", "sg_convnet_int8", "convnet"])
def test_avx2_checkpoints_match_mxnet_on_a_cpu_without_vnni(name):
    """The same checkpoints (tools/gen_mkldnn_cases.py, gen_quantized_cases.py with
    XG_FIXTURE_OUT=tests/fixtures/quantized/avx2) made on an AVX2 CPU, where MXNet's results differ:
    under cpu_isa('avx2') every quantized node matches them bit for bit, int8 FullyConnected included."""
    from xgraph.ops import mkldnn
    sym, arg, aux = mx.model.load_checkpoint(os.path.join(AVX2, name), 0)
    io = np.load(os.path.join(AVX2, f"{name}.npz"))
    names = [k[len("internal:"):] for k in io.files if k.startswith("internal:")]
    names = [n for n in names if n in set(sym.get_internals().list_outputs()) and not n.startswith("sm_")]
    with mkldnn.cpu_isa("avx2"):
        out, *inner = _run(sym, arg, aux, io["data"], names)
    assert sum("quantized" in n for n in names) >= 5
    for n, got in zip(names, inner):
        np.testing.assert_array_equal(got, io[f"internal:{n}"], err_msg=n)
    np.testing.assert_allclose(out, io["out"], rtol=1e-6, atol=1e-7)
    with mkldnn.cpu_isa("vnni"):       # the same graph in the default mode: another program, other sums
        vnni = _run(sym, arg, aux, io["data"], names)[1:]
    assert any(not np.array_equal(g, io[f"internal:{n}"]) for n, g in zip(names, vnni))
