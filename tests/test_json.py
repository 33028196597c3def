"""Symbol JSON: byte-exact round trips of MXNet's files, legacy layouts, validation, atomic saves."""
from __future__ import annotations

import json
import os
import time

import pytest

import xgraph as mx
from xgraph.ops import registry

CASES = os.path.join(os.path.dirname(__file__), "fixtures", "mxnet", "cases")
SYMBOL_FILES = sorted(f for f in os.listdir(CASES) if f.endswith("-symbol.json"))


def file_ops(path):
    return sorted({n["op"] for n in json.load(open(path))["nodes"] if n["op"] != "null"})


def test_every_case_has_its_four_files():
    assert len(SYMBOL_FILES) == 33
    for f in SYMBOL_FILES:
        name = f[: -len("-symbol.json")]
        for suffix in ("-0000.params", ".npz", ".meta.json"):
            assert os.path.exists(os.path.join(CASES, name + suffix)), name + suffix


@pytest.mark.parametrize("fname", SYMBOL_FILES)
def test_fixture_round_trip_is_byte_exact(fname):
    path = os.path.join(CASES, fname)
    missing = [op for op in file_ops(path) if not registry.exists(op)]
    if missing:
        pytest.skip(f"operators not registered yet: {', '.join(missing)}")
    text = open(path, encoding="utf-8").read()
    sym = mx.sym.load(path)
    assert sym.tojson() == text
    assert mx.sym.load_json(text).tojson() == text


@pytest.mark.parametrize("fname", SYMBOL_FILES)
def test_fixture_unknown_ops_all_reported(fname, monkeypatch):
    """Hide every op the file uses: the error lists all of them at once."""
    path = os.path.join(CASES, fname)
    ops = file_ops(path)
    names = registry._ALIASES
    for op in ops:
        monkeypatch.delitem(names, op, raising=False)
    with pytest.raises(mx.UnsupportedOperatorError) as ei:
        mx.sym.load(path)
    assert sorted(ei.value.ops) == ops
    for op in ops:
        assert op in str(ei.value)


@pytest.mark.parametrize("fname", SYMBOL_FILES)
def test_fixture_loads_or_names_its_missing_ops(fname):
    path = os.path.join(CASES, fname)
    missing = [op for op in file_ops(path) if not registry.exists(op)]
    if missing:
        with pytest.raises(mx.UnsupportedOperatorError) as ei:
            mx.sym.load(path)
        assert list(ei.value.ops) == sorted(missing)
    else:
        meta = json.load(open(path.replace("-symbol.json", ".meta.json")))
        assert mx.sym.load(path).list_arguments() == meta["arguments"]


def test_unknown_ops_reported_together_before_anything_else():
    doc = {"nodes": [{"op": "null", "name": "x", "inputs": []},
                     {"op": "FancyOpA", "name": "a", "inputs": [[0, 0, 0]]},
                     {"op": "FancyOpB", "name": "b", "inputs": [[1, 0, 0], [9, 0, 0]]},
                     {"op": "FancyOpA", "name": "c", "inputs": [[2, 0, 0]]}],
           "heads": [[3, 0, 0]]}
    with pytest.raises(mx.UnsupportedOperatorError) as ei:
        mx.sym.load_json(json.dumps(doc))
    assert ei.value.ops == ("FancyOpA", "FancyOpB")
    assert "FancyOpA" in str(ei.value) and "FancyOpB" in str(ei.value)
    assert isinstance(ei.value, mx.XGraphError)


def test_own_output_round_trips():
    with mx.name.NameManager():
        x = mx.sym.var("x", shape=(2, 3), lr_mult=0.5)
        with mx.AttrScope(ctx_group="g"):
            h = mx.sym.FullyConnected(x, num_hidden=4, name="fc")
        out = mx.sym.Group([mx.sym.SoftmaxOutput(h, name="sm"), mx.sym.add_n(h, h * 2.0, 1 - h)])
    text = out.tojson()
    back = mx.sym.load_json(text)
    assert back.tojson() == text
    assert back.list_arguments() == out.list_arguments()
    assert back.list_outputs() == out.list_outputs()
    assert back.attr_dict() == out.attr_dict()
    assert back.infer_shape() == out.infer_shape()


def test_written_layout_matches_mxnet():
    with mx.name.NameManager():
        text = (mx.sym.var("a") * 3.0).tojson()
    assert text == (
        '{\n  "nodes": [\n    {\n      "op": "null", \n      "name": "a", \n      "inputs": []\n    }, \n'
        '    {\n      "op": "_mul_scalar", \n      "name": "_mulscalar0", \n'
        '      "attrs": {"scalar": "3.0"}, \n      "inputs": [[0, 0, 0]]\n    }\n  ], \n'
        '  "arg_nodes": [0], \n  "node_row_ptr": [0, 1, 2], \n  "heads": [[1, 0, 0]], \n'
        '  "attrs": {"mxnet_version": ["int", 10901]}\n}')


# -- legacy layouts ----------------------------------------------------------------------------
LEGACY = {
    "nodes": [
        {"op": "null", "name": "data", "param": {}, "inputs": [], "backward_source_id": -1},
        {"op": "null", "name": "fc_weight", "param": {}, "inputs": [], "attr": {"lr_mult": "2"}},
        {"op": "null", "name": "fc_bias", "param": {}, "inputs": []},
        {"op": "FullyConnected", "name": "fc", "param": {"num_hidden": "4", "no_bias": "False"},
         "attr": {"ctx_group": "dev1"}, "inputs": [[0, 0], [1, 0], [2, 0]]},
        {"op": "Activation", "name": "act", "param": {"act_type": "relu"}, "inputs": [[3, 0]]},
    ],
    "arg_nodes": [0, 1, 2],
    "heads": [[4, 0]],
}


def legacy(**edits):
    doc = json.loads(json.dumps(LEGACY))
    for fn in edits.values():
        fn(doc)
    return json.dumps(doc)


def test_legacy_param_attr_layout_loads():
    sym = mx.sym.load_json(legacy())
    assert sym.list_arguments() == ["data", "fc_weight", "fc_bias"]
    assert sym.list_outputs() == ["act_output"]
    assert sym.infer_shape(data=(2, 3)) == ([(2, 3), (4, 3), (4,)], [(2, 4)], [])
    assert sym.attr_dict()["fc"] == {"num_hidden": "4", "no_bias": "False", "__ctx_group__": "dev1"}
    assert sym.attr_dict()["fc_weight"] == {"__lr_mult__": "2"}
    # saved in today's layout, which loads again to the same text
    text = sym.tojson()
    doc = json.loads(text)
    assert doc["attrs"] == {"mxnet_version": ["int", 10901]}
    assert doc["node_row_ptr"] == [0, 1, 2, 3, 4, 5]
    assert all(len(e) == 3 for n in doc["nodes"] for e in n["inputs"])
    assert mx.sym.load_json(text).tojson() == text


def test_legacy_non_string_attribute_values_load():
    def numbers(d):
        d["nodes"][3]["param"] = {"num_hidden": 4, "no_bias": False}
    sym = mx.sym.load_json(legacy(numbers=numbers))
    assert sym.infer_shape(data=(2, 3))[1] == [(2, 4)]


def test_legacy_attrs_without_version_or_arg_nodes():
    doc = {"nodes": [{"op": "null", "name": "x", "inputs": []},
                     {"op": "_plus_scalar", "name": "p", "attrs": {"scalar": "1"}, "inputs": [[0, 0]]}],
           "heads": [[1, 0]]}
    sym = mx.sym.load_json(json.dumps(doc))
    assert sym.list_arguments() == ["x"]
    assert sym.eval(x=mx.nd.array([1, 2]))[0].asnumpy().tolist() == [2.0, 3.0]


# -- malformed files ---------------------------------------------------------------------------
def _set(path, value):
    def edit(doc):
        target = doc
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return edit


def _both(first, second):
    def edit(doc):
        first(doc)
        second(doc)
    return edit


@pytest.mark.parametrize("text, pattern", [
    ('{"nodes": [', "malformed"),
    ("[]", "must be an object"),
    ('{"nodes": [], "heads": []}', "no 'nodes'"),
    ('{"nodes": [{"op": "null", "name": "x"}], "heads": []}', "no 'heads'"),
    ('{"nodes": [3], "heads": [[0, 0]]}', "node 0 is not an object"),
    ('{"nodes": [{"op": "null"}], "heads": [[0, 0]]}', "node 0 needs string 'op' and 'name'"),
    (b"\xff\xfe", "malformed"),
])
def test_malformed_documents(text, pattern):
    with pytest.raises(mx.GraphFormatError, match=pattern):
        mx.sym.load_json(text)


@pytest.mark.parametrize("edit, pattern", [
    (_set(["nodes", 3, "inputs", 1], [7, 0]), r"node 3 \('fc', op FullyConnected\).*node 7"),
    (_set(["nodes", 3, "inputs"], [[3, 0], [1, 0], [2, 0]]), r"'fc'.*not an earlier node"),
    (_set(["nodes", 3, "inputs", 0], [0, 1]), r"'fc'.*output 1 of node 0 \('data'\)"),
    (_set(["nodes", 3, "inputs", 0], [0, "a"]), r"'fc'.*entry must be"),
    # (a current file: MXNet creates missing inputs only for pre-0.9 files)
    (_both(_set(["attrs"], {"mxnet_version": ["int", 10901]}), _set(["nodes", 3, "inputs"], [[0, 0], [1, 0]])),
     r"'fc'.*2 input\(s\) given, 3 expected \(data, weight, bias\)"),
    (_set(["nodes", 4, "inputs"], [[3, 0], [3, 0]]), r"'act'.*2 input\(s\) given, 1 expected"),
    (_set(["nodes", 0, "inputs"], [[1, 0]]), r"'data'"),
    (_set(["nodes", 3, "param"], [1]), r"'fc'.*'param' must be an object"),
    (_set(["nodes", 3, "param", "num_hidden"], ["x"]), r"'fc'.*'num_hidden' must be a string"),
    (_set(["nodes", 3, "inputs"], 5), r"'fc'.*'inputs' must be a list"),
    (_set(["heads"], [[9, 0]]), r"heads: node 9"),
    (_set(["heads"], [[4, 1]]), r"heads: node 4 \('act'\) has no output 1"),
])
def test_bad_structure_names_the_node(edit, pattern):
    with pytest.raises(mx.GraphFormatError, match=pattern) as ei:
        mx.sym.load_json(legacy(e=edit))
    assert isinstance(ei.value, mx.XGraphError)


@pytest.mark.parametrize("edit, pattern", [
    (_set(["nodes", 3, "param", "num_hidden"], "x"), r"node 'fc' \(op FullyConnected\): attribute 'num_hidden'.*integer"),
    (_set(["nodes", 3, "param", "num_hidden"], "0"), r"'fc'.*'num_hidden'.*>= 1"),
    (_set(["nodes", 3, "param", "no_bias"], "maybe"), r"'fc'.*'no_bias'.*boolean"),
    (_set(["nodes", 3, "param", "zzz"], "1"), r"'fc'.*unknown attribute 'zzz'.*num_hidden"),
    (_set(["nodes", 4, "param", "act_type"], "relux"), r"'act'.*'act_type'.*'relu'"),
    (_set(["nodes", 4, "param"], {}), r"'act'.*required attribute.*act_type"),
])
def test_bad_attribute_values_name_node_and_attribute(edit, pattern):
    with pytest.raises(mx.AttributeValueError, match=pattern):
        mx.sym.load_json(legacy(e=edit))


def _doc(nodes, heads):
    return json.dumps({"nodes": nodes, "arg_nodes": [0], "heads": heads,
                       "attrs": {"mxnet_version": ["int", 10901]}})


VAR = {"op": "null", "name": "x", "inputs": []}


@pytest.mark.parametrize("text, pattern", [
    ('{"nodes": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
    ('{"nodes": [], "heads": [[' + "9" * 5000 + ", 0]]}", "integer literal has 5000 digits"),
    (_doc([VAR, {"op": "add_n", "name": "s", "attrs": {"num_args": "1000000000"}, "inputs": [[0, 0], [0, 0]]}],
          [[1, 0]]), r"node 1 \('s', op add_n\): num_args=1000000000 but the node has 2 input"),
    (_doc([VAR, {"op": "SliceChannel", "name": "s", "attrs": {"num_outputs": "1000000000"}, "inputs": [[0, 0]]}],
          [[1, 0]]), r"'s', op SliceChannel\): declares 1000000000 outputs"),
])
def test_hostile_documents_are_refused_quickly(text, pattern):
    """Found by tests/fuzz: nesting, huge integers and attribute-driven counts, refused before any work."""
    t0 = time.perf_counter()
    with pytest.raises(mx.GraphFormatError, match=pattern):
        mx.sym.load_json(text)
    assert time.perf_counter() - t0 < 1.0


def test_deep_chain_loads_infers_and_round_trips():
    n = 20000
    nodes = [VAR] + [{"op": "relu", "name": f"r{i}", "inputs": [[i, 0, 0]]} for i in range(n)]
    sym = mx.sym.load_json(_doc(nodes, [[n, 0, 0]]))
    assert sym.infer_shape(x=(2, 3))[1] == [(2, 3)]
    assert mx.sym.load_json(sym.tojson()).tojson() == sym.tojson()


def test_bad_variable_attributes_reported_on_use():
    sym = mx.sym.load_json(legacy(e=_set(["nodes", 0, "attr"], {"__shape__": "abc"})))
    with pytest.raises(mx.ShapeError, match="variable 'data'.*__shape__"):
        sym.infer_shape(data=(2, 3))
    sym = mx.sym.load_json(legacy(e=_set(["nodes", 0, "attr"], {"__dtype__": "99"})))
    with pytest.raises(mx.DTypeError, match="variable 'data'.*__dtype__"):
        sym.infer_type()


def test_missing_file_and_non_utf8_file(tmp_path):
    with pytest.raises(mx.GraphFormatError, match="cannot read"):
        mx.sym.load(str(tmp_path / "nope-symbol.json"))
    p = tmp_path / "bad-symbol.json"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(mx.GraphFormatError):
        mx.sym.load(str(p))


# -- saving -----------------------------------------------------------------------------------
def test_save_and_load(tmp_path):
    net = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    p = tmp_path / "net-symbol.json"
    net.save(str(p))
    assert p.read_text(encoding="utf-8") == net.tojson()
    assert mx.sym.load(str(p)).tojson() == net.tojson()
    assert [f for f in os.listdir(tmp_path)] == ["net-symbol.json"]


def test_save_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "net-symbol.json"
    old = mx.sym.var("old") * 2
    old.save(str(p))
    before = p.read_text(encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        mx.sym.FullyConnected(mx.sym.var("new"), num_hidden=3).save(str(p))
    assert p.read_text(encoding="utf-8") == before
    assert os.listdir(tmp_path) == ["net-symbol.json"]  # no temporary file left behind


def test_np_shape_graphs_are_marked_as_mxnet_marks_them(tmp_path):
    net = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=4)
    assert json.loads(net.tojson())["attrs"] == {"mxnet_version": ["int", 10901]}
    with mx.util.np_shape(True):
        text = net.tojson()
        mx.model.save_checkpoint(str(tmp_path / "m"), 0, net, {}, {})
    assert json.loads(text)["attrs"] == {"is_np_shape": ["int", 1], "mxnet_version": ["int", 10901]}
    assert json.loads((tmp_path / "m-symbol.json").read_text())["attrs"]["is_np_shape"] == ["int", 1]
    assert mx.sym.load_json(text).list_arguments() == net.list_arguments()
