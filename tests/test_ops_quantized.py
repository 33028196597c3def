"""MXNet 1.9.1's quantized layers (_contrib_quantized_*) against MXNet's own results
(tests/fixtures/quantized/, written by tools/gen_quantized_cases.py), a quantized convnet
checkpoint loaded and run node by node, shape/type inference and bad input."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import xgraph as mx
from opcheck import run
from xgraph.errors import AttributeValueError, DTypeError, ShapeError, XGraphError
from xgraph.ops import registry
from xgraph.symbol import invoke

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "quantized")
with open(os.path.join(HERE, "cases.json")) as f:
    CASES = {c["name"]: c for c in json.load(f)}
ARRAYS = np.load(os.path.join(HERE, "cases.npz"))
def node_for(op_name: str, attrs: dict, name: str = "node"):
    """One node of ``op_name`` over variables named as its inputs; returns (symbol, input names)."""
    op = registry.get(op_name)
    params = op.with_defaults(op.parse_attrs(attrs, name)[0])
    names = op.input_names(params)
    return invoke(op_name, [mx.sym.var(n) for n in names], dict(attrs, name=name)), names


def run_node(sym, names, values):
    aux = set(sym.list_auxiliary_states())
    given = dict(zip(names, values))
    return run(sym, aux={k: v for k, v in given.items() if k in aux},
               **{k: v for k, v in given.items() if k not in aux})


def assert_matches(op_name, got, want, what):
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype, got.shape, want.shape)
    np.testing.assert_array_equal(got, want, err_msg=what)


RUNNABLE = [n for n, c in CASES.items() if "error" not in c]


@pytest.mark.parametrize("name", RUNNABLE)
def test_op_matches_mxnet(name):
    case = CASES[name]
    sym, names = node_for(case["op"], case["attrs"])
    ins = [ARRAYS[f"{name}/in{i}"] for i in range(case["num_inputs"])]
    outs = run_node(sym, names, ins)
    assert len(outs) == case["num_outputs"]
    for i, got in enumerate(outs):
        assert_matches(case["op"], got, ARRAYS[f"{name}/out{i}"], f"{name} output {i}")


def test_fixture_covers_every_op():
    ops = {c["op"] for c in CASES.values() if "error" not in c}
    assert {f"_contrib_quantized_{n}" for n in ("conv", "fully_connected", "pooling", "act", "flatten",
                                                "elemwise_add", "concat", "batch_norm")} <= ops


def test_int8_conv_computes_what_mxnet_refuses():
    """MXNet 1.9.1's CPU convolution refuses int8 data; xgraph sums the same int32 products."""
    case = CASES["conv_int8"]
    assert "uint8" in case["error"]
    sym, names = node_for(case["op"], case["attrs"])
    ins = [ARRAYS[f"conv_int8/in{i}"] for i in range(case["num_inputs"])]
    out, lo, hi = run_node(sym, names, ins)
    d, w, b = (a.astype(np.int64) for a in ins[:3])
    dp = np.pad(d, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.einsum("nchwij,fcij->nfhw", np.lib.stride_tricks.sliding_window_view(dp, (3, 3), axis=(2, 3)), w)
    np.testing.assert_array_equal(out, ref + b[None, :, None, None])
    rd = max(abs(ins[3][0]), abs(ins[4][0]))
    rw = max(abs(ins[5][0]), abs(ins[6][0]))
    np.testing.assert_array_equal(hi, (rd / np.float32(127)) * (rw / np.float32(127)) * np.float32(2147483647))
    np.testing.assert_array_equal(lo, -hi)


def test_uncalibrated_batch_norm_refused_like_mxnet():
    case = CASES["bn_int8"]
    assert "calib" in case["error"]
    sym, names = node_for(case["op"], case["attrs"], name="qbn")
    ins = [ARRAYS[f"bn_int8/in{i}"] for i in range(case["num_inputs"])]
    with pytest.raises(AttributeValueError, match=r"qbn.*_contrib_quantized_batch_norm.*calib"):
        run_node(sym, names, ins)


# -- inference -------------------------------------------------------------------------
def test_conv_shape_and_type_inference():
    sym, _ = node_for("_contrib_quantized_conv", {"kernel": "(3, 3)", "num_filter": "4", "pad": "(1, 1)"}, "qc")
    args, outs, _ = sym.infer_shape(data=(2, 3, 7, 7))
    assert dict(zip(sym.list_arguments(), args)) == {
        "data": (2, 3, 7, 7), "weight": (4, 3, 3, 3), "bias": (4,), "min_data": (1,), "max_data": (1,),
        "min_weight": (1,), "max_weight": (1,), "min_bias": (1,), "max_bias": (1,)}
    assert outs == [(2, 4, 7, 7), (1,), (1,)]
    arg_types, out_types, _ = sym.infer_type(data="uint8")
    assert [t.__name__ for t in arg_types] == ["uint8", "int8", "int8"] + ["float32"] * 6
    assert [t.__name__ for t in out_types] == ["int32", "float32", "float32"]
    assert sym.list_outputs() == ["qc_output", "qc_min_output", "qc_max_output"]


def test_other_ops_inference():
    fc, _ = node_for("_contrib_quantized_fully_connected", {"num_hidden": "6", "no_bias": "True"})
    args, outs, _ = fc.infer_shape(data=(3, 2, 5))
    assert args[1] == (6, 10) and outs[0] == (3, 6) and len(args) == 6
    cat, names = node_for("_contrib_quantized_concat", {"num_args": "2", "dim": "1"})
    assert names == ["arg0", "arg1", "arg0_min", "arg0_max", "arg1_min", "arg1_max"]
    assert cat.infer_shape(arg0=(2, 3), arg1=(2, 4))[1][0] == (2, 7)
    assert cat.infer_type(arg0="int8", arg1="uint8")[1][0].__name__ == "int8"
    add, _ = node_for("_contrib_quantized_elemwise_add", {"min_calib_range": "0", "max_calib_range": "2"})
    assert add.infer_type(lhs="uint8", rhs="uint8")[1][0].__name__ == "uint8"
    bn, _ = node_for("_contrib_quantized_batch_norm", {"min_calib_range": "-1", "max_calib_range": "1"}, "qbn")
    assert bn.list_auxiliary_states() == ["moving_mean", "moving_var"]
    assert bn.infer_shape(data=(2, 3, 4, 4))[2] == [(3,), (3,)]
    act, _ = node_for("_contrib_quantized_act", {"act_type": "relu"})
    assert act.infer_type(data="uint8")[1][0].__name__ == "int8"


def test_namespace_and_no_gradient():
    q = mx.sym.contrib.quantized_pooling(mx.sym.var("x"), mx.sym.var("lo"), mx.sym.var("hi"), kernel=(2, 2),
                                         pool_type="max")
    assert q.infer_shape(x=(1, 2, 4, 4))[1][0] == (1, 2, 3, 3)
    for name in ("conv", "fully_connected", "pooling", "act", "flatten", "elemwise_add", "concat", "batch_norm"):
        assert registry.get(f"_contrib_quantized_{name}").differentiable is False


# -- the quantized convnet checkpoint ---------------------------------------------------
def _entry_names(nodes):
    """MXNet's name of every node output: a variable's name, or ``<node>_<output name>``."""
    names = {}
    for i, node in enumerate(nodes):
        if node["op"] == "null":
            names[(i, 0)] = node["name"]
            continue
        op = registry.get(node["op"])
        params = op.with_defaults(op.parse_attrs(node.get("attrs", {}), node["name"])[0])
        for k, out in enumerate(op.output_names(params)):
            names[(i, k)] = f"{node['name']}_{out}"
    return names


def _reads_relabelled_uint8(nodes, node, known, names):
    """Whether an input of ``node`` is a quantized relu's output over uint8 data (bytes typed int8)."""
    for e in node["inputs"]:
        src = nodes[e[0]]
        if src["op"] == "_contrib_quantized_act":
            first = src["inputs"][0]
            if known[names[(first[0], first[1])]].dtype == np.uint8:
                return True
    return False


@pytest.mark.parametrize("prefix", ["convnet", "convnet_uint8"])
def test_quantized_convnet_checkpoint(prefix):
    sym, arg, aux = mx.model.load_checkpoint(os.path.join(HERE, prefix), 0)
    io = np.load(os.path.join(HERE, f"{prefix}.npz"))
    assert arg["conv1_weight_quantize"].dtype == np.int8
    ops = {n["op"] for n in json.loads(sym.tojson())["nodes"]}
    assert {"_contrib_quantized_conv", "_contrib_quantized_batch_norm", "_contrib_quantized_concat",
            "_contrib_requantize", "_contrib_quantize_v2"} <= ops
    exe = sym.bind(mx.cpu(), {"data": mx.nd.array(io["data"]), **arg}, aux_states=aux, grad_req="null")
    out = exe.forward(is_train=False)[0].asnumpy()
    if prefix == "convnet":     # bit-exact integers all the way: only the float softmax rounds
        np.testing.assert_allclose(out, io["out"], rtol=1e-6, atol=1e-7)
    else:   # MXNet reads the relu of uint8 data as uint8 in the residual add (xgraph.ops.quantized)
        np.testing.assert_allclose(out, io["out"], atol=0.3)


@pytest.mark.parametrize("prefix", ["convnet", "convnet_uint8"])
def test_quantized_convnet_node_by_node(prefix):
    """Every node of the checkpoint, fed MXNet's own inputs, gives MXNet's outputs."""
    with open(os.path.join(HERE, f"{prefix}-symbol.json")) as f:
        nodes = json.load(f)["nodes"]
    _, arg, aux = mx.model.load_checkpoint(os.path.join(HERE, prefix), 0)
    io = np.load(os.path.join(HERE, f"{prefix}.npz"))
    known = {k[len("internal:"):]: io[k] for k in io.files if k.startswith("internal:")}
    known.update({k: v.asnumpy() for k, v in {**arg, **aux}.items()}, data=io["data"])
    names = _entry_names(nodes)
    checked = set()
    for i, node in enumerate(nodes):
        if node["op"] == "null":
            continue
        values = [known[names[(e[0], e[1])]] for e in node["inputs"]]
        if _reads_relabelled_uint8(nodes, node, known, names):
            continue   # MXNet reads these int8-typed bytes as uint8 (module docstring of xgraph.ops.quantized)
        sym, in_names = node_for(node["op"], node.get("attrs", {}), node["name"])
        outs = run_node(sym, in_names, values)
        for k, got in enumerate(outs):
            want = known.get(names[(i, k)])
            if want is None:
                continue
            if want.dtype == np.float32 and node["op"] in ("_contrib_dequantize", "softmax"):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            else:
                assert_matches(node["op"], got, want, names[(i, k)])
        checked.add(node["op"])
    assert len(checked) >= 10


# -- bad input ---------------------------------------------------------------------------
def _conv_case():
    case = CASES["conv_uint8"]
    return case, [ARRAYS[f"conv_uint8/in{i}"] for i in range(case["num_inputs"])]


def test_float_weight_refused():
    case, ins = _conv_case()
    sym, names = node_for(case["op"], case["attrs"], "qconv")
    ins[1] = ins[1].astype(np.float32)
    with pytest.raises(DTypeError, match=r"qconv.*_contrib_quantized_conv.*weight must be int8, got float32"):
        run_node(sym, names, ins)


def test_mismatched_range_shape_refused():
    case, ins = _conv_case()
    sym, names = node_for(case["op"], case["attrs"], "qconv")
    ins[3] = np.zeros((2,), np.float32)
    with pytest.raises(XGraphError, match=r"qconv.*_contrib_quantized_conv.*min_data"):
        run_node(sym, names, ins)


def test_bad_attributes_refused():
    with pytest.raises(AttributeValueError, match=r"qa.*_contrib_quantized_act.*act_type.*'relu'"):
        node_for("_contrib_quantized_act", {"act_type": "tanh"}, "qa")
    with pytest.raises(AttributeValueError, match=r"qp.*_contrib_quantized_pooling.*pool_type"):
        node_for("_contrib_quantized_pooling", {"kernel": "(2, 2)", "pool_type": "median"}, "qp")
    sym, names = node_for("_contrib_quantized_pooling", {"kernel": "(2, 2)", "pool_type": "sum"}, "qp")
    x = ARRAYS["pool_max_int8/in0"]
    with pytest.raises(AttributeValueError, match=r"qp.*_contrib_quantized_pooling.*max or avg"):
        run_node(sym, names, [x, ARRAYS["pool_max_int8/in1"], ARRAYS["pool_max_int8/in2"]])
    sym, names = node_for("_contrib_quantized_conv", {"kernel": "(3, 3)", "num_filter": "5", "no_bias": "True"}, "qc")
    _, ins = _conv_case()
    with pytest.raises(ShapeError, match=r"qc.*_contrib_quantized_conv.*weight has shape \(4, 3, 3, 3\), expected"):
        run_node(sym, names, [ins[0], ins[1], *ins[3:7]])
