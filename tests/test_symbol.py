"""The Symbol API against MXNet 1.9.1's behaviour: variables, names, scopes, operators, structure."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import xgraph as mx


def last_node(sym):
    return json.loads(sym.tojson())["nodes"][-1]


def run(sym, **inputs):
    """Outputs of an inference forward as numpy arrays."""
    arrays = {k: mx.nd.array(v) for k, v in inputs.items()}
    return [o.asnumpy() for o in sym.eval(mx.cpu(), **arrays)]


# -- variables -------------------------------------------------------------------------
def test_variable_attributes_are_mxnet_strings():
    w = mx.sym.Variable("w", shape=(3, 4), dtype="float16", lr_mult=0.1, wd_mult=2,
                        init='["zero", {}]', attr={"foo": "bar"})
    assert w.list_attr() == {"__shape__": "(3, 4)", "__dtype__": "2", "__lr_mult__": "0.1",
                             "__wd_mult__": "2", "__init__": '["zero", {}]', "foo": "bar"}
    node = json.loads(w.tojson())["nodes"][0]
    assert node == {"op": "null", "name": "w", "inputs": [],
                    "attrs": {"__dtype__": "2", "__init__": '["zero", {}]', "__lr_mult__": "0.1",
                              "__shape__": "(3, 4)", "__wd_mult__": "2", "foo": "bar"}}
    assert w.attr("__shape__") == "(3, 4)"
    assert w.attr("lr_mult") == "0.1"
    assert w.attr("nothing") is None


def test_variable_attribute_spelling_follows_the_given_value():
    assert mx.sym.var("a", shape=[2, 3]).attr("__shape__") == "[2, 3]"
    assert mx.sym.var("a", lr_mult=2.0).attr("__lr_mult__") == "2.0"
    assert mx.sym.var("a", dtype=np.float32).attr("__dtype__") == "0"
    assert mx.sym.var("a", dtype="bfloat16").attr("__dtype__") == "12"
    assert mx.sym.var("a", dtype="int32").attr("__dtype__") == "4"
    assert mx.sym.var("a", stype="default").attr("__storage_type__") == "0"
    assert mx.sym.var("a", __custom__=5).attr("__custom__") == "5"


def test_variable_alias_and_bad_variables():
    assert mx.sym.var is mx.sym.Variable
    v = mx.sym.var("data")
    assert v.name == "data" and v.list_arguments() == ["data"] and v.list_outputs() == ["data"]
    with pytest.raises(mx.SymbolError, match="non-empty string"):
        mx.sym.var("")
    with pytest.raises(mx.SymbolError, match="__name__"):
        mx.sym.var("a", foo=1)
    with pytest.raises(mx.SymbolError, match="storage type"):
        mx.sym.var("a", stype="csr")


def test_variable_hidden_keys_in_attr_get_underscores():
    v = mx.sym.var("v", attr={"ctx_group": "dev1", "lr_mult": "3"})
    assert v.list_attr() == {"__ctx_group__": "dev1", "__lr_mult__": "3"}


# -- automatic names ---------------------------------------------------------------------
def test_automatic_names_as_mxnet_gives_them():
    with mx.name.NameManager():
        x, y = mx.sym.var("x"), mx.sym.var("y")
        fc = mx.sym.FullyConnected(x, num_hidden=3)
        assert fc.name == "fullyconnected0"
        assert fc.list_arguments() == ["x", "fullyconnected0_weight", "fullyconnected0_bias"]
        assert mx.sym.FullyConnected(x, num_hidden=3).name == "fullyconnected1"
        assert mx.sym.Activation(x, act_type="relu").name == "activation0"
        assert (x + y).name == "_plus0"
        assert (x + y).name == "_plus1"
        assert (x - y).name == "_minus0"
        assert (x * y).name == "_mul0"
        assert (x / y).name == "_div0"
        assert (x * 2).name == "_mulscalar0"
        assert (2 * x).name == "_mulscalar1"
        assert (-x).name == "_mulscalar2"
        assert (x + 1).name == "_plusscalar0"
        assert (1 - x).name == "_rminusscalar0"
        assert (2 / x).name == "_rdivscalar0"
        assert mx.sym.SoftmaxOutput(fc).list_arguments()[-1] == "softmaxoutput0_label"
        assert mx.sym.add_n(x, y).name == "add_n0"
        assert mx.sym.relu(x).name == "relu0"


def test_name_manager_scope_restarts_and_restores_counters():
    x = mx.sym.var("x")
    with mx.name.NameManager():
        assert mx.sym.relu(x).name == "relu0"
        with mx.name.NameManager():
            assert mx.sym.relu(x).name == "relu0"
        assert mx.sym.relu(x).name == "relu1"


def test_prefix_prefixes_op_names_not_variables():
    with mx.name.NameManager():
        with mx.name.Prefix("stage1_"):
            d = mx.sym.var("data")
            fc = mx.sym.FullyConnected(d, num_hidden=3)
            named = mx.sym.FullyConnected(fc, num_hidden=2, name="out")
        assert d.name == "data"
        assert fc.name == "stage1_fullyconnected0"
        assert named.name == "stage1_out"
        assert named.list_arguments() == ["data", "stage1_fullyconnected0_weight", "stage1_fullyconnected0_bias",
                                          "stage1_out_weight", "stage1_out_bias"]
        # outside the prefix the outer counters are untouched
        assert mx.sym.FullyConnected(d, num_hidden=3).name == "fullyconnected0"


def test_explicit_name_wins():
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc1")
    assert fc.name == "fc1" and fc.list_outputs() == ["fc1_output"]


# -- attribute scopes ------------------------------------------------------------------------
def test_attr_scope_attaches_and_nests():
    with mx.AttrScope(ctx_group="g1", foo="x"):
        v = mx.sym.var("v")
        f = mx.sym.FullyConnected(v, num_hidden=2, name="f")
        with mx.AttrScope(foo="y"):
            g = mx.sym.Activation(f, act_type="relu", name="g")
    h = mx.sym.relu(g, name="h")
    assert v.list_attr() == {"__ctx_group__": "g1", "foo": "x"}
    assert f.list_attr() == {"num_hidden": "2", "__ctx_group__": "g1", "foo": "x"}
    assert g.list_attr() == {"act_type": "relu", "__ctx_group__": "g1", "foo": "y"}
    assert h.list_attr() == {}
    assert g.attr("ctx_group") == "g1" and g.attr("foo") == "y"
    # the automatically created parameters carry the op's and the scope's attributes, as in MXNet
    assert g.attr_dict()["f_weight"] == {"num_hidden": "2", "__ctx_group__": "g1", "foo": "x"}


def test_attr_scope_refuses_non_strings():
    with pytest.raises(ValueError):
        mx.AttrScope(foo=1)


def test_op_attr_argument_and_attr_dict():
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, no_bias=True, name="fc", attr={"mood": "calm"})
    assert fc.list_attr() == {"num_hidden": "4", "no_bias": "True", "mood": "calm"}
    assert fc.attr("num_hidden") == "4"
    assert fc.attr_dict() == {"fc_weight": {"num_hidden": "4", "no_bias": "True", "mood": "calm"},
                              "fc": {"num_hidden": "4", "no_bias": "True", "mood": "calm"}}
    assert mx.sym.var("plain").attr_dict() == {}


# -- operators: stored op names ------------------------------------------------------------------
@pytest.mark.parametrize("build, op, scalar", [
    (lambda a, b: a + b, "elemwise_add", None),
    (lambda a, b: a - b, "elemwise_sub", None),
    (lambda a, b: a * b, "elemwise_mul", None),
    (lambda a, b: a / b, "elemwise_div", None),
    (lambda a, b: a % b, "_mod", None),
    (lambda a, b: a ** b, "_power", None),
    (lambda a, b: a + 1.5, "_plus_scalar", "1.5"),
    (lambda a, b: 1.5 + a, "_plus_scalar", "1.5"),
    (lambda a, b: a - 2.0, "_minus_scalar", "2.0"),
    (lambda a, b: 2.0 - a, "_rminus_scalar", "2.0"),
    (lambda a, b: a * 3.0, "_mul_scalar", "3.0"),
    (lambda a, b: a * 3, "_mul_scalar", "3"),
    (lambda a, b: 3 * a, "_mul_scalar", "3"),
    (lambda a, b: a / 4.0, "_div_scalar", "4.0"),
    (lambda a, b: 4.0 / a, "_rdiv_scalar", "4.0"),
    (lambda a, b: a % 2.0, "_mod_scalar", "2.0"),
    (lambda a, b: 2.0 % a, "_rmod_scalar", "2.0"),
    (lambda a, b: a ** 2.0, "_power_scalar", "2.0"),
    (lambda a, b: 2.0 ** a, "_rpower_scalar", "2.0"),
    (lambda a, b: -a, "_mul_scalar", "-1.0"),
    (lambda a, b: a == b, "_equal", None),
    (lambda a, b: a != b, "_not_equal", None),
    (lambda a, b: a > b, "_greater", None),
    (lambda a, b: a >= b, "_greater_equal", None),
    (lambda a, b: a < b, "_lesser", None),
    (lambda a, b: a <= b, "_lesser_equal", None),
    (lambda a, b: a == 1.0, "_equal_scalar", "1.0"),
    (lambda a, b: a != 1.0, "_not_equal_scalar", "1.0"),
    (lambda a, b: a > 1.0, "_greater_scalar", "1.0"),
    (lambda a, b: a >= 1.0, "_greater_equal_scalar", "1.0"),
    (lambda a, b: a < 1.0, "_lesser_scalar", "1.0"),
    (lambda a, b: a <= 1.0, "_lesser_equal_scalar", "1.0"),
    (lambda a, b: 1.0 < a, "_greater_scalar", "1.0"),
    (lambda a, b: 1.0 >= a, "_lesser_equal_scalar", "1.0"),
])
def test_operator_json_op_names(build, op, scalar):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    node = last_node(build(a, b))
    assert node["op"] == op
    if scalar is None:
        assert "attrs" not in node
    else:
        assert node["attrs"] == {"scalar": scalar}


def test_symbol_symbol_operands_keep_their_order():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    for sym in (a - b, a / b, a > b, a <= b, a ** b):
        doc = json.loads(sym.tojson())
        names = [doc["nodes"][i]["name"] for i, _, _ in doc["nodes"][-1]["inputs"]]
        assert names == ["a", "b"], sym


A = np.array([[1.0, 2.0, 3.0], [-1.5, 0.5, 4.0]], np.float32)
B = np.array([[3.0, 2.0, 1.0], [0.5, 0.5, -2.0]], np.float32)


@pytest.mark.parametrize("build, ref", [
    (lambda a, b: a + b, lambda a, b: a + b),
    (lambda a, b: a - b, lambda a, b: a - b),
    (lambda a, b: a * b, lambda a, b: a * b),
    (lambda a, b: a / b, lambda a, b: a / b),
    (lambda a, b: a ** 2 + 3 * a, lambda a, b: a ** 2 + 3 * a),
    (lambda a, b: 1 - a / 2, lambda a, b: 1 - a / 2),
    (lambda a, b: 2 / b - 0.5, lambda a, b: 2 / b - 0.5),
    (lambda a, b: 2 ** a, lambda a, b: 2 ** a),
    (lambda a, b: -a + b, lambda a, b: -a + b),
    (lambda a, b: a % 2, lambda a, b: np.mod(a, 2)),
    (lambda a, b: 5 % b, lambda a, b: np.mod(5, b)),
    (lambda a, b: a > b, lambda a, b: a > b),
    (lambda a, b: a >= b, lambda a, b: a >= b),
    (lambda a, b: a < b, lambda a, b: a < b),
    (lambda a, b: a <= b, lambda a, b: a <= b),
    (lambda a, b: a == b, lambda a, b: a == b),
    (lambda a, b: a != b, lambda a, b: a != b),
    (lambda a, b: a > 1, lambda a, b: a > 1),
    (lambda a, b: 1 > a, lambda a, b: 1 > a),
    (lambda a, b: a >= 2, lambda a, b: a >= 2),
    (lambda a, b: 2 <= a, lambda a, b: 2 <= a),
    (lambda a, b: a < 0.5, lambda a, b: a < 0.5),
    (lambda a, b: a <= 0.5, lambda a, b: a <= 0.5),
    (lambda a, b: a == 2, lambda a, b: a == 2),
    (lambda a, b: a != 2, lambda a, b: a != 2),
])
def test_operator_results(build, ref):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    sym = build(a, b)
    inputs = {n: {"a": A, "b": B}[n] for n in sym.list_arguments()}
    (got,) = run(sym, **inputs)
    want = np.asarray(ref(A, B), np.float32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_unary_math_and_add_n_results():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    x = np.abs(A) + 0.5
    cases = [(mx.sym.exp(a), np.exp(x)), (mx.sym.log(a), np.log(x)), (mx.sym.sqrt(a), np.sqrt(x)),
             (mx.sym.square(a), x * x), (mx.sym.tanh(a), np.tanh(x)), (mx.sym.abs(-a), x),
             (mx.sym.add_n(a, a, a), 3 * x), (mx.sym.add_n([a, a]), 2 * x)]
    for sym, want in cases:
        np.testing.assert_allclose(run(sym, a=x)[0], want, rtol=1e-5, atol=1e-6)
    assert last_node(mx.sym.add_n(a, b, a))["attrs"] == {"num_args": "3"}


def test_symbol_has_no_truth_value():
    with pytest.raises(mx.base.NotImplementedForSymbol):   # MXNet raises NotImplementedForSymbol too
        bool(mx.sym.var("a") == 1)


def test_operator_with_unsupported_operand_raises_type_error():
    with pytest.raises(TypeError):
        mx.sym.var("a") + "x"


# -- groups, indexing, internals, children ----------------------------------------------------
def test_group_and_indexing():
    x = mx.sym.var("x")
    f = mx.sym.FullyConnected(x, num_hidden=2, name="f")
    g = mx.sym.Activation(f, act_type="relu", name="g")
    grp = mx.sym.Group([f, g])
    assert len(grp) == 2
    assert grp.list_outputs() == ["f_output", "g_output"]
    assert grp.list_arguments() == ["x", "f_weight", "f_bias"]
    assert grp[0].name == "f" and grp[1].name == "g" and grp[-1].name == "g"
    assert grp["g_output"].name == "g"
    assert grp[0:1].list_outputs() == ["f_output"]
    assert grp[::-1].list_outputs() == ["g_output", "f_output"]
    assert [s.name for s in grp] == ["f", "g"]
    assert grp.name is None
    with pytest.raises(mx.SymbolError, match="out of range"):
        grp[2]
    with pytest.raises(mx.SymbolError, match="no output named"):
        grp["nope"]
    with pytest.raises(mx.SymbolError):
        grp[1.5]
    with pytest.raises(mx.SymbolError):
        mx.sym.Group([])
    with pytest.raises(mx.SymbolError):
        mx.sym.Group([f, 3])
    # a group of groups flattens
    assert mx.sym.Group([grp, x]).list_outputs() == ["f_output", "g_output", "x"]


def test_group_evaluates_every_output():
    x = mx.sym.var("x")
    outs = run(mx.sym.Group([x * 2, x + 1, x]), x=A)
    for got, want in zip(outs, [A * 2, A + 1, A]):
        np.testing.assert_allclose(got, want)


def test_get_internals_and_children():
    x = mx.sym.var("x")
    f = mx.sym.FullyConnected(x, num_hidden=2, name="f")
    g = mx.sym.Activation(f, act_type="relu", name="g")
    internals = g.get_internals()
    assert internals.list_outputs() == ["x", "f_weight", "f_bias", "f_output", "g_output"]
    fc_out = internals["f_output"]
    assert fc_out.list_arguments() == ["x", "f_weight", "f_bias"]
    assert fc_out.infer_shape(x=(3, 5))[1] == [(3, 2)]
    assert g.get_children().list_outputs() == ["f_output"]
    assert f.get_children().list_outputs() == ["x", "f_weight", "f_bias"]
    assert x.get_children() is None
    assert x.get_internals().list_outputs() == ["x"]
    # a group's children: each distinct node's inputs once, in output order (MXNet's semantics)
    assert mx.sym.Group([f, g]).get_children().list_outputs() == ["x", "f_weight", "f_bias", "f_output"]
    parts = mx.sym.SliceChannel(x, num_outputs=3, name="s")
    assert parts.get_children().list_outputs() == ["x"]
    assert mx.sym.Concat(*parts).get_children().list_outputs() == ["s_output0", "s_output1", "s_output2"]


def test_symbol_pickles_through_its_json_and_has_abs():
    import pickle
    net = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=2, name="f")
    blob = pickle.dumps(net)
    assert b"lambda" not in blob and pickle.loads(blob).tojson() == net.tojson()
    out = abs(mx.sym.var("x")).bind(mx.cpu(), {"x": mx.nd.array([-1.5, 2.0])}).forward()[0]
    assert out.asnumpy().tolist() == [1.5, 2.0]
    assert mx.sym.var("x").rint().list_arguments() == ["x"]


def test_list_functions_order():
    data, label = mx.sym.var("data"), mx.sym.var("label")
    h = mx.sym.FullyConnected(data, num_hidden=4, name="fc1")
    out = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="fc2"), label, name="sm")
    args = ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "label"]
    assert out.list_arguments() == args
    assert out.list_inputs() == args
    assert out.list_outputs() == ["sm_output"]
    assert out.list_auxiliary_states() == []
    # a variable used twice is listed once
    x = mx.sym.var("x")
    assert (x * x + x).list_arguments() == ["x"]


def test_list_attr_of_group_is_refused():
    x = mx.sym.var("x")
    with pytest.raises(mx.SymbolError):
        mx.sym.Group([x, x * 2]).list_attr()


# -- copies and composition -------------------------------------------------------------------
def test_copy_and_deepcopy_are_equal_and_independent():
    x = mx.sym.var("x")
    net = mx.sym.Activation(mx.sym.FullyConnected(x, num_hidden=3, name="fc"), act_type="tanh", name="act")
    for c in (net.copy(), copy.copy(net), copy.deepcopy(net)):
        assert c is not net
        assert c.tojson() == net.tojson()
    c = net.copy()
    c._set_attr(mood="happy")
    assert c.attr("mood") == "happy"
    assert net.attr("mood") is None


def test_compose_by_keyword():
    net1 = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, name="fc1")
    net2 = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc2")
    comp = net2(data=net1)
    assert comp.list_arguments() == ["x", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    assert comp.name == "fc2"
    assert comp.infer_shape(x=(3, 7))[0] == [(3, 7), (4, 7), (4,), (2, 4), (2,)]
    # the original is untouched
    assert net2.list_arguments() == ["data", "fc2_weight", "fc2_bias"]
    assert net2(data=net1, name="renamed").name == "renamed"


def test_compose_positionally_and_in_place():
    net1 = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, name="fc1")
    net2 = mx.sym.Activation(mx.sym.var("data"), act_type="relu", name="act")
    assert net2(net1).list_arguments() == ["x", "fc1_weight", "fc1_bias"]
    net2._compose(data=net1)
    assert net2.list_arguments() == ["x", "fc1_weight", "fc1_bias"]


def test_compose_evaluates_correctly():
    a = mx.sym.var("a")
    inner = a * 2 + 1
    outer = mx.sym.var("z") - 3
    (got,) = run(outer(z=inner), a=A)
    np.testing.assert_allclose(got, A * 2 + 1 - 3)


def test_compose_errors():
    net1 = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, name="fc1")
    net2 = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc2")
    with pytest.raises(mx.SymbolError, match="no input named 'foo'"):
        net2(foo=net1)
    with pytest.raises(mx.SymbolError, match="must be a Symbol"):
        net2(data=1)
    with pytest.raises(mx.SymbolError, match="group of 2 outputs"):
        net2(data=mx.sym.Group([net1, net1]))
    with pytest.raises(mx.SymbolError, match="4 positional"):
        net2(net1, net1, net1, net1)


def test_op_creation_errors():
    x = mx.sym.var("x")
    with pytest.raises(mx.SymbolError, match="positional arguments must be Symbols"):
        mx.sym.FullyConnected(x, 3)
    with pytest.raises(mx.SymbolError, match="4 inputs given"):
        mx.sym.FullyConnected(x, x, x, x, num_hidden=3, name="fc")
    with pytest.raises(mx.SymbolError, match="given twice"):
        mx.sym.FullyConnected(x, data=x, num_hidden=3)
    with pytest.raises(mx.SymbolError, match="no input named 'bogus'"):
        mx.sym.FullyConnected(x, bogus=x, num_hidden=3)
    with pytest.raises(mx.SymbolError, match="a single output is needed"):
        mx.sym.relu(mx.sym.Group([x, x]))
    with pytest.raises(AttributeError):
        mx.sym.NoSuchOperatorAnywhere


def test_op_given_inputs_by_keyword():
    x, w = mx.sym.var("x"), mx.sym.var("w")
    fc = mx.sym.FullyConnected(data=x, weight=w, num_hidden=3, no_bias=True, name="fc")
    assert fc.list_arguments() == ["x", "w"]
    assert fc.infer_shape(x=(2, 5))[0] == [(2, 5), (3, 5)]


def test_repr_and_debug_str():
    x = mx.sym.var("x")
    fc = mx.sym.FullyConnected(x, num_hidden=3, name="fc")
    assert repr(fc) == "<Symbol fc>"
    assert "fc_output" in repr(mx.sym.Group([fc, x]))
    assert "Op:FullyConnected, Name=fc" in fc.debug_str()


def test_attribute_numbers_written_as_given():
    x = mx.sym.var("x")
    assert last_node(mx.sym.SoftmaxOutput(x, grad_scale=2, name="s"))["attrs"] == {"grad_scale": "2"}
    assert last_node(mx.sym.MakeLoss(x, grad_scale=1e-05))["attrs"] == {"grad_scale": "1e-05"}
    assert last_node(mx.sym.FullyConnected(x, num_hidden=3, no_bias=True))["attrs"] == \
        {"no_bias": "True", "num_hidden": "3"}
    assert last_node(mx.sym.FullyConnected(x, num_hidden="3", flatten="False"))["attrs"] == \
        {"flatten": "False", "num_hidden": "3"}


def test_gen_atomic_symbol_keeps_the_op_and_attributes_on_fresh_inputs():
    data, p, h0, h1 = (mx.sym.var(n) for n in ("data", "param", "h0", "h1"))
    rnn = mx.sym.RNN(data, p, h0, h1, state_size=10, num_layers=2, bidirectional=True, state_outputs=True,
                     mode="lstm", name="rnn")
    atom = rnn._gen_atomic_symbol()
    assert atom.list_arguments() == ["rnn_data", "rnn_parameters", "rnn_state", "rnn_state_cell"]
    assert atom.list_outputs() == rnn.list_outputs()
    assert atom[0].list_attr() == rnn[0].list_attr()
    with pytest.raises(mx.SymbolError, match="is a variable"):
        data._gen_atomic_symbol()
