"""The passes: differential tests on random graphs, and each pass firing and not firing."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xgraph as mx
from xgraph.io.symbol_json import from_json, to_json
from xgraph.ops import registry
from xgraph.ops.constant import constant, constant_value
from xgraph.passes import PassContext, get_pass, optimize
from xgraph.passes.cse import cse
from xgraph.passes.dce import dce
from xgraph.passes.fold_constants import fold_constants
from xgraph.passes.simplify import simplify

from pass_helpers import assert_same, grads, run_graph

SHAPE = (2, 3)


def need(*ops: str) -> None:
    """Skip the test unless every op is registered (ops other branches add)."""
    missing = [o for o in ops if not registry.exists(o)]
    if missing:
        pytest.skip(f"op(s) {', '.join(missing)} not registered yet")


def ops_of(graph) -> list[str]:
    return sorted(n.op.name for n in graph.op_nodes())


# -- random graphs ------------------------------------------------------------------
_UNARY = ["relu", "tanh", "sigmoid", "abs", "negative", "square", "identity", "BlockGrad"]
_BINARY = ["elemwise_add", "elemwise_sub", "elemwise_mul", "_maximum", "_minimum"]
_SCALAR = [("_plus_scalar", 0.0), ("_plus_scalar", 0.5), ("_mul_scalar", 1.0), ("_mul_scalar", 0.5),
           ("_minus_scalar", 0.0), ("_div_scalar", 1.0), ("_div_scalar", 2.0), ("_rminus_scalar", 1.0)]


@st.composite
def random_graphs(draw):
    """A random graph over (2, 3) float32 values built from the registered ops, and its outputs."""
    a, b, c = mx.sym.var("a"), mx.sym.var("b"), mx.sym.var("c")
    pool = [a, b, c, constant(np.ones(SHAPE, np.float32)), constant(np.zeros(SHAPE, np.float32)),
            constant(np.linspace(-1, 1, 6, dtype=np.float32).reshape(SHAPE))]
    made = []
    kinds = ["unary", "binary", "scalar", "fc", "act", "add_n", "repeat"]
    if registry.exists("transpose"):
        kinds.append("transpose2")
    if registry.exists("Reshape"):
        kinds.append("reshape2")
    if registry.exists("Cast"):
        kinds.append("cast")
    for _ in range(draw(st.integers(2, 12))):
        kind = draw(st.sampled_from(kinds))
        pick = st.integers(0, len(pool) - 1)
        x = pool[draw(pick)]
        if kind == "unary":
            s = getattr(mx.sym, draw(st.sampled_from(_UNARY)))(x)
        elif kind == "binary":
            op = draw(st.sampled_from(_BINARY))
            y = pool[draw(pick)]
            s = getattr(mx.sym, op)(x, y)
            made.append((op, (x, y)))
        elif kind == "scalar":
            op, v = draw(st.sampled_from(_SCALAR))
            s = getattr(mx.sym, op)(x, scalar=v)
        elif kind == "fc":
            w = mx.sym.var(draw(st.sampled_from(["w1", "w2"])))
            s = mx.sym.FullyConnected(x, w, num_hidden=3, no_bias=True)
        elif kind == "act":
            s = mx.sym.Activation(x, act_type=draw(st.sampled_from(["relu", "tanh", "sigmoid"])))
        elif kind == "add_n":
            s = mx.sym.add_n(x, pool[draw(pick)], pool[draw(pick)])
        elif kind == "transpose2":
            s = mx.sym.transpose(mx.sym.transpose(x, axes=(1, 0)), axes=(1, 0))
        elif kind == "reshape2":
            s = mx.sym.Reshape(mx.sym.Reshape(x, shape=(3, 2)), shape=SHAPE)
        elif kind == "cast":
            s = mx.sym.Cast(x, dtype="float32")
        elif made:  # repeat an earlier binary op, maybe commuted: CSE material
            op, (p, q) = made[draw(st.integers(0, len(made) - 1))]
            s = getattr(mx.sym, op)(*((q, p) if draw(st.booleans()) else (p, q)))
        else:
            s = mx.sym.relu(x)
        pool.append(s)
    n_out = draw(st.integers(1, 3))
    outs = pool[-n_out:] if draw(st.booleans()) else [pool[draw(st.integers(0, len(pool) - 1))] for _ in range(n_out)]
    return mx.sym.Group(outs)


def _values(sym, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"a": SHAPE, "b": SHAPE, "c": SHAPE, "w1": (3, 3), "w2": (3, 3)}
    return {n: rng.uniform(-1, 1, shapes[n]).astype(np.float32) for n in sym.list_arguments()}


_TRAINING_SAFE = ["dce", "cse", "fold_constants", "simplify"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.integers(0, 2 ** 16))
def test_every_pass_and_level_matches_o0_on_random_graphs(sym, seed):
    values = _values(sym, seed)
    shapes = {k: v.shape for k, v in values.items()}
    ref = run_graph(sym.graph, values)
    rng = np.random.default_rng(seed + 1)
    cots = [rng.uniform(-1, 1, o.shape).astype(np.float32) for o in ref]
    ref_grads = grads(sym.graph, values, cots)
    for pipeline in [[p] for p in _TRAINING_SAFE] + [1, 2]:
        for training in (False, True):
            res = optimize(sym.graph, passes=pipeline if isinstance(pipeline, list) else None,
                           opt_level=pipeline if isinstance(pipeline, int) else 1, shapes=shapes,
                           dtypes={k: np.float32 for k in shapes}, for_training=training, verify=True)
            feed = {**values, **res.new_params}
            assert_same(run_graph(res.graph, feed), ref)
            if training:
                got = grads(res.graph, feed, cots)
                for name, g in ref_grads.items():
                    np.testing.assert_allclose(got.get(name, np.zeros_like(g)), g, rtol=1e-5, atol=1e-5,
                                               err_msg=f"gradient of {name} after {pipeline}")


# -- CSE ----------------------------------------------------------------------------
def test_cse_merges_commuted_inputs_and_equal_subtrees():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    w = mx.sym.var("w")
    g = mx.sym.Group([a + b, b + a, mx.sym.FullyConnected(a, w, num_hidden=2, no_bias=True),
                      mx.sym.FullyConnected(a, w, num_hidden=2, no_bias=True)]).graph
    out = cse(g, PassContext(shapes={"a": SHAPE, "b": SHAPE}))
    assert ops_of(out) == ["FullyConnected", "elemwise_add"]
    assert out.outputs[0] == out.outputs[1] and out.outputs[2] == out.outputs[3]


def test_cse_does_not_merge_different_attrs_noncommutative_or_variables():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    g = mx.sym.Group([a + 1, a + 2, a - b, b - a, mx.sym.var("a2")]).graph
    out = cse(g, PassContext())
    assert len(out) == len(g)
    assert {n.name for n in out.variables()} == {"a", "b", "a2"}


def test_cse_never_merges_loss_heads():
    x, y = mx.sym.var("x"), mx.sym.var("y")
    g = mx.sym.Group([mx.sym.MakeLoss(x), mx.sym.MakeLoss(x),
                      mx.sym.SoftmaxOutput(x, y, name="s1"), mx.sym.SoftmaxOutput(x, y, name="s2")]).graph
    assert ops_of(cse(g)) == ["MakeLoss", "MakeLoss", "SoftmaxOutput", "SoftmaxOutput"]


def test_cse_never_merges_random_ops():
    need("Dropout")
    x = mx.sym.var("x")
    g = mx.sym.Group([mx.sym.Dropout(x, p=0.5), mx.sym.Dropout(x, p=0.5)]).graph
    assert ops_of(cse(g)).count("Dropout") == 2


def test_cse_never_merges_ops_with_aux_states():
    need("BatchNorm")
    x = mx.sym.var("x")
    g = mx.sym.Group([mx.sym.BatchNorm(x, name="bn1"), mx.sym.BatchNorm(x, name="bn2")]).graph
    assert ops_of(cse(g)).count("BatchNorm") == 2


# -- DCE ----------------------------------------------------------------------------
def test_dce_keeps_a_graph_without_dead_code_unchanged():
    x = mx.sym.var("x")
    g = mx.sym.Group([mx.sym.relu(x), x * 2]).graph
    out = dce(g)
    assert [n for n in out.topo_order()] == [n for n in g.topo_order()]


def test_dce_narrows_batchnorm_mean_var_outputs():
    need("BatchNorm")
    x = mx.sym.var("x")
    bn = mx.sym.BatchNorm(x, output_mean_var=True, name="bn")
    out = dce(mx.sym.relu(bn[0]).graph)
    node = next(n for n in out.op_nodes() if n.op.name == "BatchNorm")
    assert node.params["output_mean_var"] is False
    kept = dce(mx.sym.Group([bn[0], bn[1]]).graph)
    assert next(n for n in kept.op_nodes() if n.op.name == "BatchNorm").params["output_mean_var"] is True


# -- constant folding ---------------------------------------------------------------
def test_fold_constants_replaces_constant_subgraph_by_its_value():
    c = constant(np.arange(6, dtype=np.float32).reshape(SHAPE), name="c")
    x = mx.sym.var("x")
    net = x + mx.sym.relu(c * 2.0 - 3.0)
    out = fold_constants(net.graph)
    assert ops_of(out) == ["_constant", "elemwise_add"]
    folded = next(n for n in out.op_nodes() if n.op.name == "_constant")
    np.testing.assert_array_equal(constant_value(folded), np.maximum(np.arange(6).reshape(SHAPE) * 2.0 - 3, 0))
    # the value survives a symbol JSON round trip exactly
    again = from_json(to_json(out))
    assert to_json(again) == to_json(out)
    xv = np.ones(SHAPE, np.float32)
    assert_same(run_graph(again, {"x": xv}), run_graph(net.graph, {"x": xv}))


def test_fold_constants_leaves_variable_subgraphs_and_lone_constants():
    x = mx.sym.var("x")
    net = mx.sym.relu(x) * 2.0 + constant(np.ones(SHAPE, np.float32))
    out = fold_constants(net.graph)
    assert out.structural_hash() == net.graph.structural_hash()


def test_fold_constants_respects_the_size_limit():
    big = constant(np.ones((40, 40), np.float32))
    net = mx.sym.var("x") + big * 2.0
    assert "_mul_scalar" in ops_of(fold_constants(net.graph, size_limit=100))
    assert "_mul_scalar" not in ops_of(fold_constants(net.graph, size_limit=10_000))


def test_fold_constants_with_bound_params_makes_new_variables_for_inference_only():
    x, w = mx.sym.var("x"), mx.sym.var("w")
    net = mx.sym.FullyConnected(x, w * 2.0, num_hidden=3, no_bias=True)
    wv = np.arange(9, dtype=np.float32).reshape(3, 3)
    ctx = PassContext(params={"w": wv})
    out = fold_constants(net.graph, ctx)
    assert ops_of(out) == ["FullyConnected"]
    (new_name,) = ctx.new_params
    np.testing.assert_array_equal(ctx.new_params[new_name], wv * 2)
    assert "w" not in [n.name for n in out.variables()]
    train_ctx = PassContext(params={"w": wv}, for_training=True)
    assert "_mul_scalar" in ops_of(fold_constants(net.graph, train_ctx))


def test_fold_constants_shape_only_ops():
    need("zeros_like")
    x = mx.sym.var("x")
    net = x + mx.sym.zeros_like(x) * 3.0
    out = fold_constants(net.graph, PassContext(shapes={"x": SHAPE}, dtypes={"x": "float32"}))
    assert "zeros_like" not in ops_of(out) and "_constant" in ops_of(out)


def test_fold_constants_never_folds_random_ops():
    need("Dropout")
    net = mx.sym.Dropout(constant(np.ones(SHAPE, np.float32)), p=0.5, mode="always")
    assert "Dropout" in ops_of(fold_constants(net.graph))


# -- simplify -------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda x, one, zero: x * 1.0, lambda x, one, zero: x + 0.0, lambda x, one, zero: x - 0.0,
    lambda x, one, zero: x / 1.0, lambda x, one, zero: x * one, lambda x, one, zero: one * x,
    lambda x, one, zero: x + zero, lambda x, one, zero: zero + x, lambda x, one, zero: x - zero,
    lambda x, one, zero: x / one, lambda x, one, zero: -(-x), lambda x, one, zero: mx.sym.identity(x),
])
def test_simplify_identities_fire(make):
    x = mx.sym.var("x")
    one, zero = constant(np.ones(SHAPE, np.float32)), constant(np.zeros(SHAPE, np.float32))
    out = simplify(make(x, one, zero).graph, PassContext(shapes={"x": SHAPE}, dtypes={"x": "float32"}))
    assert out.outputs[0].node.name == "x"


@pytest.mark.parametrize("make", [
    lambda x, c: x * 2.0, lambda x, c: x + 1.0, lambda x, c: 0.0 - x, lambda x, c: x * c,
    lambda x, c: c - x, lambda x, c: 1.0 / x, lambda x, c: -x,
])
def test_simplify_does_not_fire_on_non_identities(make):
    x = mx.sym.var("x")
    c = constant(np.array([[1, 1, 1], [1, 2, 1]], np.float32))
    g = make(x, c).graph
    ctx = PassContext(shapes={"x": SHAPE}, dtypes={"x": "float32"})
    assert simplify(g, ctx).structural_hash() == g.structural_hash()


def test_simplify_keeps_dtype_changing_identities():
    x = mx.sym.var("x", dtype="int32")
    g = mx.sym.Cast(x, dtype="float32").graph  # a cast to another dtype is not an identity
    assert simplify(g, PassContext(shapes={"x": SHAPE})).structural_hash() == g.structural_hash()
    # MXNet's integer division keeps the dtype, so x / 1 is an identity for integers too
    assert "_div_scalar" not in ops_of(simplify((x / 1.0).graph, PassContext(shapes={"x": SHAPE})))


def test_simplify_block_grad_of_constant_only():
    c = constant(np.ones(SHAPE, np.float32)) * 2.0
    out = simplify(mx.sym.BlockGrad(c).graph)
    assert "BlockGrad" not in ops_of(out)
    x = mx.sym.var("x")
    assert "BlockGrad" in ops_of(simplify(mx.sym.BlockGrad(x).graph))
    assert ops_of(simplify(mx.sym.BlockGrad(mx.sym.BlockGrad(x)).graph)) == ["BlockGrad"]


def test_simplify_self_subtraction_is_opt_in():
    x = mx.sym.var("x")
    g = (x - x).graph
    assert "elemwise_sub" in ops_of(simplify(g, PassContext(shapes={"x": SHAPE})))
    out = simplify(g, PassContext(shapes={"x": SHAPE}, dtypes={"x": "float32"}, options={"unsafe_math": True}))
    assert "elemwise_sub" not in ops_of(out)
    xv = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    assert_same(run_graph(out, {"x": xv}), [np.zeros(SHAPE, np.float32)])


def test_simplify_transpose_chains():
    need("transpose")
    x = mx.sym.var("x")
    ctx = PassContext(shapes={"x": (2, 3, 4)})
    back = mx.sym.transpose(mx.sym.transpose(x, axes=(1, 2, 0)), axes=(2, 0, 1))
    assert simplify(back.graph, ctx).outputs[0].node.name == "x"
    twice = mx.sym.transpose(mx.sym.transpose(x, axes=(1, 0, 2)), axes=(0, 2, 1))
    out = simplify(twice.graph, ctx)
    assert ops_of(out) == ["transpose"]
    xv = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert_same(run_graph(out, {"x": xv}), run_graph(twice.graph, {"x": xv}))
    single = mx.sym.transpose(x, axes=(1, 0, 2))
    assert ops_of(simplify(single.graph, ctx)) == ["transpose"]


def test_simplify_reshape_chains():
    need("Reshape", "Flatten")
    x = mx.sym.var("x")
    ctx = PassContext(shapes={"x": (2, 3, 4)})
    chain = mx.sym.Reshape(mx.sym.Flatten(mx.sym.Reshape(x, shape=(6, 4))), shape=(4, 6))
    out = simplify(chain.graph, ctx)
    assert ops_of(out) == ["Reshape"]
    xv = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert_same(run_graph(out, {"x": xv}), run_graph(chain.graph, {"x": xv}))
    back = mx.sym.Reshape(mx.sym.Reshape(x, shape=(6, 4)), shape=(2, 3, 4))
    assert simplify(back.graph, ctx).outputs[0].node.name == "x"


def test_simplify_identity_cast():
    need("Cast")
    x = mx.sym.var("x")
    ctx = PassContext(shapes={"x": SHAPE}, dtypes={"x": "float32"})
    assert simplify(mx.sym.Cast(x, dtype="float32").graph, ctx).outputs[0].node.name == "x"
    assert ops_of(simplify(mx.sym.Cast(x, dtype="float16").graph, ctx)) == ["Cast"]


# -- inference rewrites ---------------------------------------------------------------
def test_drop_dropout_at_inference_only():
    need("Dropout")
    x = mx.sym.var("x")
    net = mx.sym.relu(mx.sym.Dropout(x, p=0.5))
    assert ops_of(get_pass("drop_dropout")(net.graph)) == ["relu"]
    always = mx.sym.relu(mx.sym.Dropout(x, p=0.5, mode="always"))
    assert "Dropout" in ops_of(get_pass("drop_dropout")(always.graph))
    res = optimize(net.graph, opt_level=2, for_training=True)
    assert "Dropout" in ops_of(res.graph)


def _bn_params(sym, shapes, seed=0):
    rng = np.random.default_rng(seed)
    args, _, aux = sym.infer_shape(**shapes)
    vals = {n: rng.uniform(-1, 1, s).astype(np.float32) for n, s in zip(sym.list_arguments(), args)}
    for n, s in zip(sym.list_auxiliary_states(), aux):
        vals[n] = (rng.uniform(0.5, 2, s) if n.endswith("var") else rng.uniform(-1, 1, s)).astype(np.float32)
    return vals


@pytest.mark.parametrize("producer", ["Convolution", "FullyConnected"])
@pytest.mark.parametrize("fix_gamma", [True, False])
def test_fold_batchnorm_into_producer(producer, fix_gamma):
    need("BatchNorm", producer)
    x = mx.sym.var("x")
    if producer == "Convolution":
        shapes = {"x": (2, 3, 5, 5)}
        p = mx.sym.Convolution(x, kernel=(3, 3), num_filter=4, no_bias=True, name="conv")
    else:
        shapes = {"x": (2, 6)}
        p = mx.sym.FullyConnected(x, num_hidden=4, name="fc")
    net = mx.sym.relu(mx.sym.BatchNorm(p, fix_gamma=fix_gamma, eps=1e-4, name="bn"))
    vals = _bn_params(net, shapes)
    params = {k: v for k, v in vals.items() if k != "x"}
    res = optimize(net.graph, opt_level=2, shapes=shapes, params=params, verify=True)
    assert "BatchNorm" not in ops_of(res.graph)
    assert_same(run_graph(res.graph, {**vals, **res.new_params}), run_graph(net.graph, vals), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bn_op", ["BatchNorm_v1", "_contrib_SyncBatchNorm"])
def test_the_legacy_and_cross_device_batchnorms_fold_too(bn_op):
    need(bn_op, "Convolution", "broadcast_mul")
    x = mx.sym.var("x")
    bn = getattr(mx.sym, bn_op) if hasattr(mx.sym, bn_op) else getattr(mx.sym.contrib, bn_op[len("_contrib_"):])
    conv = mx.sym.Convolution(x, kernel=(3, 3), num_filter=4, name="conv")
    net = mx.sym.Group([bn(conv, fix_gamma=False, name="bn"), bn(x, fix_gamma=False, name="bn2")])
    shapes = {"x": (2, 3, 5, 5)}
    vals = _bn_params(net, shapes)
    params = {k: v for k, v in vals.items() if k != "x"}
    res = optimize(net.graph, opt_level=2, shapes=shapes, params=params, verify=True)
    assert bn_op not in ops_of(res.graph) and "broadcast_mul" in ops_of(res.graph)   # folded; scale-shift
    assert_same(run_graph(res.graph, {**vals, **res.new_params}), run_graph(net.graph, vals), rtol=1e-4, atol=1e-4)


def test_fold_batchnorm_not_when_the_producer_has_other_consumers():
    need("BatchNorm", "broadcast_mul", "broadcast_add")
    x = mx.sym.var("x")
    fc = mx.sym.FullyConnected(x, num_hidden=4, name="fc")
    net = mx.sym.Group([mx.sym.BatchNorm(fc, name="bn"), fc])
    shapes = {"x": (2, 6)}
    vals = _bn_params(net, shapes)
    params = {k: v for k, v in vals.items() if k != "x"}
    folded = get_pass("fold_batchnorm")(net.graph, PassContext(shapes=shapes, params=params))
    assert "BatchNorm" in ops_of(folded)
    res = optimize(net.graph, opt_level=2, shapes=shapes, params=params, verify=True)
    assert "BatchNorm" not in ops_of(res.graph) and "broadcast_mul" in ops_of(res.graph)
    assert_same(run_graph(res.graph, {**vals, **res.new_params}), run_graph(net.graph, vals), rtol=1e-4, atol=1e-4)


def test_batchnorm_rewrites_need_bound_values():
    need("BatchNorm")
    x = mx.sym.var("x")
    net = mx.sym.BatchNorm(mx.sym.FullyConnected(x, num_hidden=4, name="fc"), name="bn")
    res = optimize(net.graph, opt_level=2, shapes={"x": (2, 6)})
    assert "BatchNorm" in ops_of(res.graph)


# -- compile ----------------------------------------------------------------------------
def test_compile_runs_the_optimized_graph():
    x, w = mx.sym.var("x"), mx.sym.var("w")
    net = mx.sym.FullyConnected(x, w * 2.0, num_hidden=3, no_bias=True) * 1.0
    wv = np.eye(3, dtype=np.float32)
    xv = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = mx.compile(net, opt_level=1, params={"w": wv}, x=(2, 3))
    assert ops_of(model.graph) == ["FullyConnected"]
    assert model.input_names == ["x"]
    np.testing.assert_allclose(np.asarray(model(x=xv)[0]), xv @ (2 * wv).T)
    assert model.symbol.list_arguments()[0] == "x"
    assert "stablehlo" in model.lowered.as_text() or "func.func" in model.lowered.as_text()
    with pytest.raises(mx.BindError, match="folded"):
        model(x=xv, w=wv)
    train = mx.compile(net, opt_level=1, params={"w": wv}, for_training=True, x=(2, 3))
    np.testing.assert_allclose(np.asarray(train(x=xv)[0]), xv @ (2 * wv).T)
    np.testing.assert_allclose(np.asarray(train(x=xv, w=3 * wv)[0]), xv @ (6 * wv).T)


def test_folded_constant_json_is_valid_json():
    out = fold_constants((constant(np.float32(3)) * 2.0 + mx.sym.var("x")).graph)
    doc = json.loads(to_json(out))
    assert any(n["op"] == "_constant" for n in doc["nodes"])
