"""Shape and dtype inference: MXNet's results and conventions, contradictions, speed."""
from __future__ import annotations

import json
import os
import time

import ml_dtypes
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry

CASES = os.path.join(os.path.dirname(__file__), "fixtures", "mxnet", "cases")


def mlp():
    data = mx.sym.var("data")
    h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=8, name="fc1"), act_type="relu", name="r")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="fc2"), name="sm")


def test_infer_shape_mxnet_order_and_parameters():
    arg, out, aux = mlp().infer_shape(data=(4, 5))
    assert arg == [(4, 5), (8, 5), (8,), (3, 8), (3,), (4,)]
    assert out == [(4, 3)]
    assert aux == []
    assert all(isinstance(s, tuple) and all(type(d) is int for d in s) for s in arg + out)


def test_infer_shape_positional_and_flatten():
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=2, name="fc")
    assert fc.infer_shape((3, 4, 5)) == ([(3, 4, 5), (2, 20), (2,)], [(3, 2)], [])
    nf = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=2, flatten=False, name="fc")
    assert nf.infer_shape(x=(3, 4, 5)) == ([(3, 4, 5), (2, 5), (2,)], [(3, 4, 2)], [])


def test_infer_shape_from_declared_variable_shape():
    v = mx.sym.var("v", shape=(2, 3))
    assert (v * 2).infer_shape() == ([(2, 3)], [(2, 3)], [])
    # as in MXNet, a given shape overrides the declared one
    assert (v * 2).infer_shape(v=(3, 3)) == ([(3, 3)], [(3, 3)], [])


def test_infer_shape_backward_from_other_input():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    assert (a + b).infer_shape(a=(2, 3)) == ([(2, 3), (2, 3)], [(2, 3)], [])
    assert (a + b).infer_shape(b=(4,)) == ([(4,), (4,)], [(4,)], [])


def test_infer_shape_not_enough_information_returns_none():
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    assert fc.infer_shape() == (None, None, None)
    assert fc.infer_shape(x=(2, 0)) == (None, None, None)


def test_infer_shape_partial_conventions():
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    # unknown shapes are (), unknown dims 0
    assert fc.infer_shape_partial() == ([(), (), (3,)], [()], [])
    assert fc.infer_shape_partial(x=(0, 5)) == ([(0, 5), (3, 5), (3,)], [(0, 3)], [])
    a, b = mx.sym.var("a"), mx.sym.var("b")
    arg, out, aux = (a + b).infer_shape_partial(a=(2, 0))
    assert arg[0] == (2, 0) and aux == []
    # a full result is the same as infer_shape's
    assert fc.infer_shape_partial(x=(2, 5)) == fc.infer_shape(x=(2, 5))


def test_infer_shape_contradictions_name_node_op_and_inputs():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    with mx.name.NameManager():
        s = a + b
    with pytest.raises(mx.ShapeError) as ei:
        s.infer_shape(a=(2, 3), b=(3, 2))
    msg = str(ei.value)
    assert "'_plus0'" in msg and "elemwise_add" in msg and "(2, 3)" in msg and "(3, 2)" in msg
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    with pytest.raises(mx.ShapeError) as ei:
        fc.infer_shape(x=(2, 5), fc_weight=(4, 5))
    msg = str(ei.value)
    assert "'fc'" in msg and "FullyConnected" in msg and "weight" in msg and "(4, 5)" in msg and "(3, 5)" in msg
    assert "data=(2, 5)" in msg
    with pytest.raises(mx.ShapeError, match="'sm'.*SoftmaxOutput"):
        mlp().infer_shape(data=(4, 5), sm_label=(7,))


def test_contradiction_in_deep_graph_names_the_right_node():
    x = mx.sym.var("x")
    y = mx.sym.var("y")
    h = mx.sym.relu(mx.sym.FullyConnected(x, num_hidden=4, name="fc"), name="r")
    out = mx.sym.elemwise_add(h, y, name="join")
    with pytest.raises(mx.ShapeError, match="'join'"):
        out.infer_shape(x=(2, 3), y=(2, 5))


def test_infer_type_propagates_float16_and_bfloat16():
    net = mlp()
    arg, out, aux = net.infer_type(data="float16")
    assert arg == [np.float16] * 6 and out == [np.float16] and aux == []
    arg, out, aux = net.infer_type(data="bfloat16")
    assert arg == [ml_dtypes.bfloat16] * 6 and out == [ml_dtypes.bfloat16]
    arg, out, _ = net.infer_type(data=np.float64)
    assert arg == [np.float64] * 6 and out == [np.float64]


def test_infer_type_from_declared_dtype_and_unknown():
    v = mx.sym.var("v", dtype="float16")
    assert (v * 2).infer_type() == ([np.float16], [np.float16], [])
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    assert fc.infer_type() == (None, None, None)
    assert fc.infer_type_partial() == ([None, None, None], [None], [])
    assert fc.infer_type(fc_weight="float16")[0] == [np.float16] * 3


def test_infer_type_with_shapes_matches_execution():
    net = mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc"))
    ex = net.simple_bind(mx.cpu(), x=(2, 4), type_dict={"x": "float16"}, grad_req="null")
    assert ex.arg_dict["fc_weight"].dtype == np.float16
    assert ex.forward()[0].dtype == np.float16


def test_infer_handles_repeated_variable_names():
    x = mx.sym.var("x")
    s = mx.sym.Group([x * 2, mx.sym.var("x") + 1])
    arg, out, _ = s.infer_shape(x=(3,))
    assert out == [(3,), (3,)]


@pytest.mark.parametrize("meta_file", sorted(f for f in os.listdir(CASES) if f.endswith(".meta.json")))
def test_fixture_inference_matches_mxnet(meta_file):
    meta = json.load(open(os.path.join(CASES, meta_file)))
    missing = sorted(op for op in meta["ops"] if not registry.exists(op))
    if missing:
        pytest.skip(f"operators not registered yet: {', '.join(missing)}")
    sym = mx.sym.load(os.path.join(CASES, meta["name"] + "-symbol.json"))
    shapes = {k: tuple(v[0]) for k, v in meta["inputs"].items()}
    arg, out, aux = sym.infer_shape(**shapes)
    assert sym.list_arguments() == meta["arguments"]
    assert sym.list_outputs() == meta["output_names"]
    assert arg == [tuple(meta["arg_shapes"][n]) for n in meta["arguments"]]
    assert out == [tuple(o[0]) for o in meta["outputs"]]
    assert dict(zip(sym.list_auxiliary_states(), aux)) == {k: tuple(v) for k, v in meta["aux_shapes"].items()}
    arg_t, out_t, _ = sym.infer_type(**{k: v[1] for k, v in meta["inputs"].items()})
    assert [np.dtype(t).name for t in arg_t] == [meta["arg_dtypes"][n] for n in meta["arguments"]]
    assert [np.dtype(t).name for t in out_t] == [o[1] for o in meta["outputs"]]


def _chain(n):
    s = mx.sym.var("x")
    for i in range(n):
        s = s + 1.0 if i % 2 else mx.sym.relu(s)
    return s


def test_ten_thousand_node_chain_infers_fast():
    s = _chain(10000)
    t0 = time.perf_counter()
    assert s.infer_shape(x=(2, 3))[1] == [(2, 3)]
    assert s.infer_shape_partial(x=(0, 3))[1] == [(0, 3)]
    assert s.infer_type(x="float16")[1] == [np.float16]
    assert time.perf_counter() - t0 < 20.0


def test_binary_ops_refuse_mixed_dtypes_like_mxnet():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    for sym in (mx.sym.elemwise_add(a, b, name="add1"), mx.sym.broadcast_mul(a, b, name="add1")):
        with pytest.raises(mx.DTypeError, match=r"node 'add1' \(op \w+\).*a=\? float32, b=\? int32|"
                                                r"node 'add1' \(op \w+\).*lhs=\? float32, rhs=\? int32"):
            sym.infer_type(a="float32", b="int32")
    # one known dtype fills in the other, as before
    assert (a + b).infer_type(a="float16")[0] == [np.float16, np.float16]


def test_fully_connected_partial_weight_shape_like_mxnet():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=4, name="fc")
    args, outs, _ = fc.infer_shape_partial(data=(2, 0))
    assert args == [(2, 0), (4, 0), (4,)] and outs == [(2, 4)]
    net = mx.sym.FullyConnected(fc, num_hidden=3, name="fc2")
    assert net.infer_shape(data=(2, 5))[0] == [(2, 5), (4, 5), (4,), (3, 4), (3,)]


def test_elementwise_inputs_share_partially_known_dims():
    """MXNet's (0, 10) + (12, 0): each input completes the other's unknown dims."""
    import xgraph as mx
    a, b = mx.sym.var("a", shape=(0, 10)), mx.sym.var("b", shape=(12, 0))
    args, outs, _ = mx.sym.relu(a + b).infer_shape()
    assert args == [(12, 10), (12, 10)] and outs == [(12, 10)]
    with pytest.raises(mx.ShapeError, match="same shape"):
        (mx.sym.var("x") + mx.sym.var("y")).infer_shape(x=(3, 4), y=(5, 4))


def test_given_shape_overrides_the_declared_one():
    """MXNet: infer_shape(a=...) wins over Variable('a', shape=...)."""
    import xgraph as mx
    c = mx.sym.elemwise_add(mx.sym.var("a", shape=(2, 3)), mx.sym.var("b"))
    assert c.infer_shape()[0] == [(2, 3), (2, 3)]
    assert c.infer_shape(a=(5, 6))[0] == [(5, 6), (5, 6)]
    assert c.infer_shape(a=(0, 4), b=(7, 0))[1] == [(7, 4)]


# -- inference runs both ways (MXNet's forward-backward fixpoint) ---------------------------------
def _arg_shapes(sym, **given):
    args, _, _ = sym.infer_shape(**given)
    assert args is not None, "inference left shapes unknown"
    return dict(zip(sym.list_arguments(), args))


def test_backward_inference_fills_fullyconnected_batch_from_a_later_sum():
    a = mx.sym.Variable('a', shape=(0, 10))
    d = mx.sym.FullyConnected(a, num_hidden=21, name='fc') + mx.sym.Variable('c', shape=(5, 0))
    shapes = _arg_shapes(d)
    assert shapes['a'] == (5, 10) and shapes['c'] == (5, 21) and shapes['fc_weight'] == (21, 10)


def test_backward_inference_through_convolution_with_stride_one():
    a = mx.sym.Variable('a', shape=(0, 10, 0, 0))
    b = mx.sym.Convolution(a, num_filter=21, kernel=(3, 3), pad=(1, 1), name='conv')
    shapes = _arg_shapes(b + mx.sym.Variable('c', shape=(5, 21, 32, 32)))
    assert shapes['a'] == (5, 10, 32, 32)
    # with stride 2 the input size is ambiguous: the batch is known, the spatial size is not
    b2 = mx.sym.Convolution(a, num_filter=21, kernel=(3, 3), stride=(2, 2), pad=(1, 1), name='conv')
    args, out, _ = (b2 + mx.sym.Variable('c', shape=(5, 21, 16, 16))).infer_shape_partial()
    assert args[0] == (5, 10, 0, 0)


def test_backward_inference_concat_fills_the_one_unknown_axis_size():
    a, b = mx.sym.Variable('a', shape=(0, 10)), mx.sym.Variable('b', shape=(0, 0))
    c = mx.sym.Concat(a, b, dim=1) + mx.sym.Variable('d', shape=(2, 15))
    shapes = _arg_shapes(c)
    assert shapes['a'] == (2, 10) and shapes['b'] == (2, 5)


def test_backward_inference_slicechannel_from_one_part():
    a = mx.sym.Variable('a', shape=(0, 15, 0))
    d = mx.sym.SliceChannel(a, num_outputs=3, axis=0)[1] + mx.sym.Variable('c', shape=(3, 15, 2))
    assert _arg_shapes(d)['a'] == (9, 15, 2)
    sq = mx.sym.SliceChannel(mx.sym.Variable('a', shape=(0, 10)), num_outputs=10, axis=1, squeeze_axis=True)
    assert _arg_shapes(sq[1] + mx.sym.Variable('c', shape=(5,)))['a'] == (5, 10)


def test_identity_with_attr_like_rhs_carries_a_shape_back_to_a_weight():
    w = mx.sym.Variable('weight')
    wt = mx.sym.broadcast_add(w, mx.sym.Variable('wshift', shape=(1,)))
    wt = mx.sym._internal._identity_with_attr_like_rhs(wt, w)
    net = mx.sym.FullyConnected(mx.sym.Variable('data'), weight=wt, num_hidden=11, no_bias=True)
    assert _arg_shapes(net, data=(7, 100))['weight'] == (11, 100)


def test_backward_inference_contradiction_names_the_node():
    a = mx.sym.Variable('a', shape=(4, 10))
    fc = mx.sym.FullyConnected(a, num_hidden=3, name='fc')
    with pytest.raises(mx.ShapeError, match="fc|_plus|Plus"):
        (fc + mx.sym.Variable('c', shape=(5, 3))).infer_shape()


def test_partial_shapes_follow_np_shape_semantics():
    z = mx.sym.dot(mx.sym.Variable('x'), mx.sym.Variable('y'))
    assert z.infer_shape_partial(x=(0, 3, 4), y=(4, 5))[1] == [(0, 3, 5)]
    with mx.util.np_shape(True):
        assert z.infer_shape_partial(x=(-1, 3, 4), y=(4, 5))[1] == [(-1, 3, 5)]
        assert mx.sym.sin(mx.sym.var('d')).infer_shape_partial()[1] == [None]
    assert mx.sym.sin(mx.sym.var('d')).infer_shape_partial()[1] == [()]


def test_where_partial_inference_needs_the_condition_complete():
    w = mx.sym.where(mx.sym.Variable('cond'), mx.sym.Variable('x'), mx.sym.Variable('y'))
    assert w.infer_shape_partial(cond=(0, 2), x=(0, 2), y=(0, 2))[1] == [()]
    assert w.infer_shape_partial(cond=(3, 2), x=(0, 2), y=(0, 0))[1] == [(3, 2)]


def test_partial_conv_weight_through_cast_keeps_unknown_channels():
    # MXNet's partial answer: the weight is (num_filter, 0, *kernel) while the channels are unknown
    data = mx.sym.var("data", shape=(1, 0, 0, 0))
    weight = mx.sym.var("weight")
    conv = mx.sym.Convolution(mx.sym.cast(data, dtype="float16"), mx.sym.cast(weight, dtype="float16"),
                              kernel=(7, 7), pad=(3, 3), stride=(2, 2), num_filter=64, no_bias=True)
    args, outs, _ = conv.infer_shape_partial()
    assert dict(zip(conv.list_arguments(), args)) == {"data": (1, 0, 0, 0), "weight": (64, 0, 7, 7)}
    assert outs == [(1, 64, 0, 0)]
    deconv = mx.sym.Deconvolution(data, kernel=(3, 3), num_filter=8, no_bias=True)
    assert deconv.infer_shape_partial()[0][1] == (0, 8, 3, 3)


def test_deferred_creation_takes_its_sizes_from_the_consumers():
    # MXNet's ones(shape=(-1, -1)): the sizes come back through transpose and the sum
    b = mx.sym.ones(shape=(2, -1)) + mx.sym.transpose(mx.sym.ones(shape=(3, -1), name="o2"))
    assert b.infer_shape_partial()[1] == [(2, 3)]
    out = b.bind(mx.cpu(), args={}).forward()[0]
    np.testing.assert_array_equal(out.asnumpy(), np.full((2, 3), 2, np.float32))
    full = mx.sym.full(shape=(-1, 4), val=1.5) * mx.sym.var("x")
    np.testing.assert_array_equal(full.eval(x=mx.nd.ones((3, 4)))[0].asnumpy(), np.full((3, 4), 1.5, np.float32))


def test_arange_infer_range_gets_its_length_from_the_consumer():
    s = mx.sym.arange(start=1.5, step=1.3, repeat=2, infer_range=True, dtype="float64") + mx.sym.var("x")
    got = s.eval(x=mx.nd.zeros(8, dtype="float64"))[0].asnumpy()
    np.testing.assert_allclose(got, np.repeat(1.5 + 1.3 * np.arange(4), 2))
    odd = mx.sym.arange(start=0, repeat=2, infer_range=True) + mx.sym.var("x")
    with pytest.raises(mx.XGraphError, match="inferred length 5 is not a multiple of repeat=2"):
        odd.eval(x=mx.nd.zeros(5))
    with pytest.raises(mx.XGraphError, match="_arange.*nothing the result feeds gives its length"):
        mx.nd.arange(0, infer_range=True)


def test_deferred_creation_left_open_or_malformed_is_refused_by_name():
    with pytest.raises(mx.XGraphError, match=r"node 'o' \(op _ones\).*\(\?, 3\) has unknown dimensions"):
        mx.sym.ones(shape=(-1, 3), name="o").bind(mx.cpu(), args={})
    with pytest.raises(mx.XGraphError, match=r"node 'z' \(op _zeros\).*negative size other than -1"):
        mx.sym.zeros(shape=(-2, 3), name="z").infer_shape()
    assert mx.sym.zeros(shape=(0, 3)).eval()[0].shape == (0, 3)   # a real zero size is not deferred


def test_reshape_infers_one_unknown_input_size_from_its_output():
    # MXNet's test_reshape: the holdout dimension comes back from the consumer through Reshape
    net = mx.sym.elemwise_add(mx.sym.var("data").reshape((0, -1)), mx.sym.ones(shape=(2, 75)))
    args, outs, _ = net.infer_shape(data=(2, 0, 5, 5))
    assert args == [(2, 3, 5, 5)] and outs == [(2, 75)]
    args, _, _ = net.infer_shape_partial(data=(0, 0, 5, 5))   # two unknowns: nothing to deduce
    assert args == [(0, 0, 5, 5)]
