"""mx.model checkpoints: MXNet 1.9.1 networks loaded from JSON + .params, saved and reloaded."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import GraphFormatError
from xgraph.ops import registry

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "mxnet", "cases")


def _case(name: str):
    with open(os.path.join(FIXTURES, f"{name}.meta.json")) as f:
        meta = json.load(f)
    return meta, np.load(os.path.join(FIXTURES, f"{name}.npz"))


def _skip_unless_ops(meta: dict) -> None:
    missing = [op for op in meta["ops"] if not registry.exists(op)]
    if missing:
        pytest.skip(f"operators not registered yet: {', '.join(missing)}")


@pytest.mark.parametrize("name", ["net_mlp2_softmax", "net_resnet_small"])
def test_load_checkpoint_runs_fixture_network(name):
    meta, ref = _case(name)
    _skip_unless_ops(meta)
    sym, args, auxs = mx.model.load_checkpoint(os.path.join(FIXTURES, name), 0)
    assert sym.list_arguments() == meta["arguments"]
    assert sorted(args) == sorted(meta["params"])
    assert sorted(auxs) == sorted(k[4:] for k in ref.files if k.startswith("aux:"))
    for k, v in args.items():
        assert isinstance(v, mx.nd.NDArray)
        np.testing.assert_array_equal(v.asnumpy(), ref[f"arg:{k}"])
    inputs = {k[6:]: mx.nd.array(ref[k]) for k in ref.files if k.startswith("input:")}
    ex = sym.bind(mx.cpu(), args={**inputs, **args}, aux_states=auxs, grad_req="null")
    outs = ex.forward(is_train=False)
    for i, got in enumerate(outs):
        rtol, atol = meta["tolerance"][f"out:{i}"]
        np.testing.assert_allclose(got.asnumpy(), ref[f"out:{i}"], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["net_mlp2_softmax", "net_resnet_small"])
def test_save_checkpoint_round_trip(tmp_path, name):
    meta, _ = _case(name)
    _skip_unless_ops(meta)
    src = os.path.join(FIXTURES, name)
    sym, args, auxs = mx.model.load_checkpoint(src, 0)
    prefix = str(tmp_path / "copy")
    mx.model.save_checkpoint(prefix, 7, sym, args, auxs)
    assert sorted(os.listdir(tmp_path)) == ["copy-0007.params", "copy-symbol.json"]
    sym2, args2, auxs2 = mx.model.load_checkpoint(prefix, 7)
    assert sym2.tojson() == sym.tojson()
    with open(f"{src}-symbol.json") as f:
        assert sym2.tojson() == f.read()  # MXNet's own layout, byte for byte
    assert list(args2) == list(args) and list(auxs2) == list(auxs)
    for a, b in [(args, args2), (auxs, auxs2)]:
        for k in a:
            np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy())
    if not auxs:  # arg: keys only: the same key order as MXNet wrote, so the same bytes
        with open(f"{src}-0000.params", "rb") as f, open(f"{prefix}-0007.params", "rb") as g:
            assert f.read() == g.read()


def test_load_params_and_epoch_naming(tmp_path):
    prefix = str(tmp_path / "m")
    mx.nd.save(prefix + "-0012.params", {"arg:w": mx.nd.ones((2,)), "aux:s": mx.nd.zeros((1,))})
    args, auxs = mx.model.load_params(prefix, 12)
    assert list(args) == ["w"] and list(auxs) == ["s"]
    mx.nd.save(prefix + "-0013.params", [])
    assert mx.model.load_params(prefix, 13) == ({}, {})


@pytest.mark.parametrize("key", ["w", "param:w", "arg:", "grad:w"])
def test_keys_without_arg_aux_prefix_are_rejected(tmp_path, key):
    prefix = str(tmp_path / "m")
    mx.nd.save(prefix + "-0000.params", {"arg:ok": mx.nd.ones((1,)), key: mx.nd.ones((1,))})
    with pytest.raises(GraphFormatError, match=f"key '{key}' is not of the form 'arg:NAME' or 'aux:NAME'"):
        mx.model.load_params(prefix, 0)


def test_unnamed_params_and_missing_files_are_rejected(tmp_path):
    prefix = str(tmp_path / "m")
    mx.nd.save(prefix + "-0000.params", [mx.nd.ones((1,))])
    with pytest.raises(GraphFormatError, match="1 unnamed arrays"):
        mx.model.load_params(prefix, 0)
    with pytest.raises(GraphFormatError, match="cannot read symbol file"):
        mx.model.load_checkpoint(prefix, 0)
    shutil.copy(os.path.join(FIXTURES, "net_mlp2_softmax-symbol.json"), prefix + "-symbol.json")
    with pytest.raises(GraphFormatError, match="cannot read params file"):
        mx.model.load_checkpoint(prefix, 5)


def test_save_checkpoint_without_symbol_writes_only_params(tmp_path):
    prefix = str(tmp_path / "p")
    mx.model.save_checkpoint(prefix, 1, None, {"w": np.ones(3, np.float32)}, {})
    assert os.listdir(tmp_path) == ["p-0001.params"]


def _amp_cast_op(monkeypatch):
    """The real amp_cast when registered; else a stand-in, removed again after the test."""
    if registry.exists("amp_cast"):
        return
    from xgraph.ops.attrs import DType, attr
    from xgraph.ops.registry import Op
    op = Op("amp_cast", lambda ctx, p, x: x.astype(p["dtype"]), attrs=(attr("dtype", DType()),), doc="stand-in")
    monkeypatch.setitem(registry._REGISTRY, "amp_cast", op)
    monkeypatch.setitem(registry._ALIASES, "amp_cast", op)


def test_remove_amp_cast_on_save(tmp_path, monkeypatch):
    _amp_cast_op(monkeypatch)
    x = mx.sym.var("x")
    net = mx.sym.amp_cast(x, dtype="float16", name="cast") * 2
    prefix = str(tmp_path / "amp")
    mx.model.save_checkpoint(prefix, 0, net, {}, {})
    with open(prefix + "-symbol.json") as f:
        text = f.read()
    nodes = json.loads(text)["nodes"]
    assert [n["op"] for n in nodes] == ["null", "_mul_scalar"] and nodes[1]["inputs"] == [[0, 0, 0]]
    mx.model.save_checkpoint(prefix, 0, net, {}, {}, remove_amp_cast=False)
    with open(prefix + "-symbol.json") as f:
        assert '"op": "amp_cast"' in f.read()


# -- older symbol JSON layouts (MXNet's LoadLegacyJSON upgrades) -------------------------------
def _batchnorm(monkeypatch):
    """The real BatchNorm when registered; else a stand-in with its inputs, aux states and hints."""
    if registry.exists("BatchNorm"):
        return
    from xgraph.ops.attrs import Bool, Float, attr
    from xgraph.ops.registry import Op
    op = Op("BatchNorm", lambda ctx, p, x, g, b, m, v: ((x, m, v), (m, v)),
            inputs=("data", "gamma", "beta", "moving_mean", "moving_var"), aux=("moving_mean", "moving_var"),
            attrs=(attr("eps", Float(), 1e-3), attr("momentum", Float(), 0.9), attr("fix_gamma", Bool(), True)),
            num_outputs=3, num_visible_outputs=1,
            input_init={"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'}, doc="stand-in")
    monkeypatch.setitem(registry._REGISTRY, "BatchNorm", op)
    monkeypatch.setitem(registry._ALIASES, "BatchNorm", op)


PRE_09_JSON = """{
  "nodes": [
    {"op": "null", "name": "data", "param": {}, "attr": {"lr_mult": "2"}, "inputs": [], "backward_source_id": -1},
    {"op": "null", "name": "fc1_weight", "param": {}, "inputs": [], "backward_source_id": -1},
    {"op": "null", "name": "fc1_bias", "param": {}, "inputs": [], "backward_source_id": -1},
    {"op": "FullyConnected", "name": "fc1", "param": {"num_hidden": "4", "no_bias": "False"},
     "attr": {"ctx_group": "dev1", "weight_lr_mult": "0.1", "bias_wd_mult": "0"},
     "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1},
    {"op": "null", "name": "bn_gamma", "param": {}, "inputs": [], "backward_source_id": -1},
    {"op": "null", "name": "bn_beta", "param": {}, "inputs": [], "backward_source_id": -1},
    {"op": "BatchNorm", "name": "bn", "param": {"eps": "0.001", "fix_gamma": "True"},
     "inputs": [[3, 0], [4, 0], [5, 0]], "backward_source_id": -1}
  ],
  "arg_nodes": [0, 1, 2, 4, 5],
  "heads": [[6, 0]]
}"""


def test_pre_09_json_is_upgraded(monkeypatch):
    _batchnorm(monkeypatch)
    sym = mx.sym.load_json(PRE_09_JSON)
    assert sym.list_arguments() == ["data", "fc1_weight", "fc1_bias", "bn_gamma", "bn_beta"]
    assert sym.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    d = sym.attr_dict()
    # hidden keys: underscores added on the node, op-level 'weight_lr_mult' moved to the weight variable
    assert d["data"] == {"__lr_mult__": "2"}
    assert d["fc1"]["__ctx_group__"] == "dev1" and "weight_lr_mult" not in d["fc1"]
    assert d["fc1_weight"] == {"__lr_mult__": "0.1"} and d["fc1_bias"] == {"__wd_mult__": "0"}
    # missing aux states: created with the node's attributes and BatchNorm's init hints
    assert d["bn_moving_mean"] == {"eps": "0.001", "fix_gamma": "True", "__init__": '["zero", {}]'}
    assert d["bn_moving_var"]["__init__"] == '["one", {}]'
    # saved again in today's layout, it reloads to the same graph
    text = sym.tojson()
    assert json.loads(text)["attrs"] == {"mxnet_version": ["int", 10901]}
    assert mx.sym.load_json(text).tojson() == text


def test_upgrades_depend_on_the_file_version(monkeypatch):
    _batchnorm(monkeypatch)
    doc = json.loads(PRE_09_JSON)
    # 0.9.x: aux states must be present; hints are still added before 0.9.4
    doc["attrs"] = {"mxnet_version": ["int", 903]}
    with pytest.raises(GraphFormatError, match=r"node 6 \('bn', op BatchNorm\): 3 input\(s\) given, 5 expected"):
        mx.sym.load_json(json.dumps(doc))
    doc["nodes"][6:6] = [{"op": "null", "name": "mm", "inputs": []}, {"op": "null", "name": "mv", "inputs": []}]
    doc["nodes"][8]["inputs"] = [[3, 0], [4, 0], [5, 0], [6, 0], [7, 0]]
    doc["heads"] = [[8, 0]]
    d = mx.sym.load_json(json.dumps(doc)).attr_dict()
    assert d["mm"] == {"__init__": '["zero", {}]'} and d["mv"] == {"__init__": '["one", {}]'}
    assert d["fc1_weight"] == {"__lr_mult__": "0.1"}
    # 1.5: hidden keys are still fixed, hints are not added
    doc["attrs"] = {"mxnet_version": ["int", 10500]}
    d = mx.sym.load_json(json.dumps(doc)).attr_dict()
    assert "mm" not in d and d["fc1_weight"] == {"__lr_mult__": "0.1"}
    # 1.9.1: nothing is rewritten, and 'weight_lr_mult' is not an attribute of FullyConnected
    doc["attrs"] = {"mxnet_version": ["int", 10901]}
    with pytest.raises(mx.XGraphError, match="unknown attribute 'weight_lr_mult'"):
        mx.sym.load_json(json.dumps(doc))
    doc["attrs"] = {"mxnet_version": "1.9.1"}
    with pytest.raises(GraphFormatError, match="mxnet_version"):
        mx.sym.load_json(json.dumps(doc))


def test_argmax_axis_minus_one_before_095():
    if not registry.exists("argmax"):
        pytest.skip("argmax is not registered yet")
    doc = {"nodes": [{"op": "null", "name": "x", "inputs": []},
                     {"op": "argmax", "name": "am", "param": {"axis": "-1"}, "inputs": [[0, 0]]}],
           "heads": [[1, 0]], "attrs": {"mxnet_version": ["int", 904]}}
    assert "axis" not in mx.sym.load_json(json.dumps(doc)).attr_dict().get("am", {})
    doc["attrs"]["mxnet_version"] = ["int", 905]
    assert mx.sym.load_json(json.dumps(doc)).attr_dict()["am"]["axis"] == "-1"


def test_old_style_mlp_checkpoint_runs(tmp_path):
    """The fixture MLP as a pre-0.9 file: only 'data' stored (weights, biases, label created on load)."""
    name = "net_mlp2_softmax"
    meta, ref = _case(name)
    with open(os.path.join(FIXTURES, f"{name}-symbol.json")) as f:
        doc = json.load(f)
    keep = [i for i, n in enumerate(doc["nodes"])
            if n["op"] != "null" or n["name"] == "data"]
    remap = {old: new for new, old in enumerate(keep)}
    nodes = []
    for i in keep:
        n = doc["nodes"][i]
        ins = [[remap[s], k] for s, k, _ in n["inputs"] if s in remap]
        nodes.append({"op": n["op"], "name": n["name"], "param": n.get("attrs", {}), "inputs": ins,
                      "backward_source_id": -1})
    old = {"nodes": nodes, "arg_nodes": [remap[0]], "heads": [[remap[s], k] for s, k, _ in doc["heads"]]}
    prefix = str(tmp_path / "old")
    with open(prefix + "-symbol.json", "w") as f:
        json.dump(old, f)
    shutil.copy(os.path.join(FIXTURES, f"{name}-0000.params"), prefix + "-0000.params")
    sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
    assert sym.list_arguments() == meta["arguments"]
    inputs = {k[6:]: mx.nd.array(ref[k]) for k in ref.files if k.startswith("input:")}
    out = sym.bind(mx.cpu(), args={**inputs, **args}, aux_states=auxs, grad_req="null").forward()[0]
    rtol, atol = meta["tolerance"]["out:0"]
    np.testing.assert_allclose(out.asnumpy(), ref["out:0"], rtol=rtol, atol=atol)
