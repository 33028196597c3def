"""Tests of the nn operators: Convolution, Pooling, Dropout, Embedding, LeakyReLU, softmax family.

Each op is checked against MXNet 1.9.1 reference cases (tests/fixtures/mxnet), against
independent numpy references, with float64 finite-difference gradients, and in float16/bfloat16.
"""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import FIXTURE_DIR, check_inference, check_training, load_case
from opcheck import check_low_precision, check_numeric_gradient, grads, run

RNG = np.random.default_rng(1234)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# -- MXNet reference cases ------------------------------------------------------------
NN_CASES = ["conv2d_basic", "conv2d_stride_dilate_group_nobias", "pooling_max_avg", "pooling_global_full",
            "activation", "leaky_relu", "leaky_relu_prelu", "softmax_log_softmax", "dropout_inference",
            "embedding"]


@pytest.mark.parametrize("name", NN_CASES)
def test_mxnet_case(name):
    case = load_case(name)
    check_inference(case)
    if case.meta["has_grad"]:
        check_training(case)


@pytest.mark.parametrize("name", ["conv2d_basic", "conv2d_stride_dilate_group_nobias", "leaky_relu_prelu",
                                  "embedding"])
def test_mxnet_case_inferred_shapes(name):
    case = load_case(name)
    arg_shapes, out_shapes, _ = case.symbol.infer_shape(**{k: v.shape for k, v in case.inputs.items()})
    assert dict(zip(case.symbol.list_arguments(), arg_shapes)) == \
        {k: tuple(v) for k, v in case.meta["arg_shapes"].items()}
    assert [tuple(s) for s in out_shapes] == [tuple(o[0]) for o in case.meta["outputs"]]
    assert case.symbol.list_outputs() == case.meta["output_names"]


def test_prelu_gamma_init_hint_matches_mxnet_json():
    sym = mx.sym.LeakyReLU(mx.sym.var("data"), act_type="prelu", name="prelu")
    nodes = {n["name"]: n for n in json.loads(sym.tojson())["nodes"]}
    ref = {n["name"]: n for n in json.load(open(f"{FIXTURE_DIR}/leaky_relu_prelu-symbol.json"))["nodes"]}
    assert nodes["prelu_gamma"]["attrs"]["__init__"] == ref["prelu_gamma"]["attrs"]["__init__"]
    assert "__init__" not in json.dumps(
        mx.sym.LeakyReLU(mx.sym.var("d"), act_type="leaky", name="lk").tojson())


# -- Convolution -------------------------------------------------------------------------
def np_conv(x, w, b, stride, pad, dilate, groups):
    """Direct N-d convolution (NC* layout, OI* weight) with numpy, one kernel offset at a time."""
    nsp = x.ndim - 2
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p) for p in pad])
    k = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - dilate[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(nsp)]
    n, c = x.shape[:2]
    o = w.shape[0]
    cg, og = c // groups, o // groups
    y = np.zeros((n, o, *out_sp))
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = tuple(slice(off[i] * dilate[i], off[i] * dilate[i] + (out_sp[i] - 1) * stride[i] + 1, stride[i])
                   for i in range(nsp))
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            wg = w[g * og:(g + 1) * og, :, *off].astype(np.float64)
            y[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", patch[:, g * cg:(g + 1) * cg], wg)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nsp)
    return y


CONV_CONFIGS = [
    # (data shape, kernel, stride, pad, dilate, num_filter, num_group, no_bias)
    ((2, 3, 9), (3,), (2,), (1,), (1,), 4, 1, False),
    ((1, 4, 8), (2,), (1,), (0,), (3,), 2, 2, True),
    ((1, 2, 4, 5, 4), (2, 3, 2), (1, 2, 1), (1, 0, 1), (1, 1, 2), 3, 1, False),
    ((2, 4, 3, 4, 5), (1, 2, 3), (2, 1, 1), (0, 1, 0), (1, 1, 1), 4, 4, True),
]


@pytest.mark.parametrize("shape,kernel,stride,pad,dilate,nf,ng,no_bias", CONV_CONFIGS)
def test_convolution_1d_3d_against_numpy(shape, kernel, stride, pad, dilate, nf, ng, no_bias):
    sym = mx.sym.Convolution(mx.sym.var("data"), kernel=kernel, stride=stride, pad=pad, dilate=dilate,
                             num_filter=nf, num_group=ng, no_bias=no_bias, name="conv")
    arg_shapes, _, _ = sym.infer_shape(data=shape)
    shapes = dict(zip(sym.list_arguments(), arg_shapes))
    assert shapes["conv_weight"] == (nf, shape[1] // ng) + kernel
    x, w = randn(*shape), randn(*shapes["conv_weight"])
    args = {"data": x, "conv_weight": w}
    b = None
    if not no_bias:
        b = args["conv_bias"] = randn(nf)
    (out,) = run(sym, **args)
    np.testing.assert_allclose(out, np_conv(x, w, b, stride, pad, dilate, ng), rtol=1e-5, atol=1e-5)


def test_convolution_channel_last_layout_matches_nchw():
    x, w, b = randn(1, 3, 5, 6), randn(4, 3, 3, 2), randn(4)
    kw = dict(kernel=(3, 2), pad=(1, 0), stride=(1, 2), num_filter=4)
    (ref,) = run(mx.sym.Convolution(mx.sym.var("data"), name="c", **kw), data=x, c_weight=w, c_bias=b)
    sym = mx.sym.Convolution(mx.sym.var("data"), layout="NHWC", name="c", **kw)
    assert sym.infer_shape(data=(1, 5, 6, 3))[0][1] == (4, 3, 2, 3)
    (out,) = run(sym, data=x.transpose(0, 2, 3, 1), c_weight=w.transpose(0, 2, 3, 1), c_bias=b)
    np.testing.assert_allclose(out, ref.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_convolution_ignored_attributes_round_trip():
    sym = mx.sym.Convolution(mx.sym.var("data"), kernel=(1,), num_filter=2, workspace=512,
                             cudnn_tune="fastest", cudnn_off=True, name="c")
    attrs = json.loads(sym.tojson())["nodes"][-1]["attrs"]
    assert attrs["cudnn_tune"] == "fastest" and attrs["workspace"] == "512" and attrs["kernel"] == "(1,)"
    assert sym.infer_shape(data=(1, 3, 4))[1] == [(1, 2, 4)]


def test_convolution_numeric_gradient():
    sym = mx.sym.Convolution(mx.sym.var("data"), kernel=(2, 2), stride=(2, 1), pad=(1, 0), dilate=(1, 2),
                             num_filter=2, num_group=2, name="c")
    args = {"data": randn(1, 2, 3, 4), "c_weight": randn(2, 1, 2, 2), "c_bias": randn(2)}
    check_numeric_gradient(sym, args, ["data", "c_weight", "c_bias"])


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-2), ("bfloat16", 1e-1)])
def test_convolution_low_precision(dtype, tol):
    sym = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), pad=(1, 1), num_filter=3, name="c")
    args = {"data": randn(1, 2, 5, 5), "c_weight": randn(3, 2, 3, 3) * 0.3, "c_bias": randn(3)}
    check_low_precision(sym, args, dtype, rtol=tol, atol=tol * 4)


# -- Pooling ------------------------------------------------------------------------------
def np_pool(x, kernel, stride, pad, pool_type, convention="valid", include_pad=True, p_value=2):
    """Pooling over the spatial axes of an NC* array, following the fixture README's rules."""
    nsp = x.ndim - 2
    sizes = x.shape[2:]
    if convention == "valid":
        outs = [(sizes[i] + 2 * pad[i] - kernel[i]) // stride[i] + 1 for i in range(nsp)]
    elif convention == "full":
        outs = [math.ceil((sizes[i] + 2 * pad[i] - kernel[i]) / stride[i]) + 1 for i in range(nsp)]
    else:
        outs = [math.ceil(sizes[i] / stride[i]) for i in range(nsp)]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for pos in np.ndindex(*outs):
        start = [pos[i] * stride[i] - pad[i] for i in range(nsp)]
        lo = [max(s, 0) for s in start]
        hi = [min(s + k, n) for s, k, n in zip(start, kernel, sizes)]
        win = x[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in zip(lo, hi))].astype(np.float64)
        win = win.reshape(x.shape[0], x.shape[1], -1)
        if pool_type == "max":
            v = win.max(-1)
        elif pool_type == "sum":
            v = win.sum(-1)
        elif pool_type == "lp":
            v = np.sum(win ** p_value, -1) ** (1.0 / p_value)
        else:
            if include_pad:
                count = np.prod([min(s + k, n + p) - max(s, -p)
                                 for s, k, n, p in zip(start, kernel, sizes, pad)])
            else:
                count = np.prod([b - a for a, b in zip(lo, hi)])
            v = win.sum(-1) / count
        y[(slice(None), slice(None)) + pos] = v
    return y


POOL_CONFIGS = [
    # (data shape, kernel, stride, pad, pool_type, convention, count_include_pad)
    ((2, 2, 7), (3,), (2,), (1,), "max", "valid", None),
    ((1, 2, 7), (3,), (2,), (1,), "avg", "full", True),
    ((1, 2, 8), (3,), (2,), (1,), "avg", "full", False),
    ((1, 2, 7), (2,), (3,), (0,), "max", "same", None),
    ((1, 2, 5, 6), (2, 3), (2, 2), (1, 1), "sum", "valid", None),
    ((1, 2, 5, 6), (2, 2), (1, 2), (0, 1), "lp", "valid", None),
    ((1, 2, 5, 4, 6), (2, 3, 2), (2, 1, 2), (1, 1, 0), "avg", "valid", False),
    ((1, 1, 5, 4, 5), (3, 2, 2), (2, 2, 2), (1, 0, 0), "max", "full", None),
    ((1, 1, 5, 5, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1), "avg", "full", True),
]


@pytest.mark.parametrize("shape,kernel,stride,pad,pool_type,convention,include", POOL_CONFIGS)
def test_pooling_against_numpy(shape, kernel, stride, pad, pool_type, convention, include):
    kw = dict(kernel=kernel, stride=stride, pool_type=pool_type, pooling_convention=convention)
    if convention != "same":
        kw["pad"] = pad
    if include is not None:
        kw["count_include_pad"] = include
    if pool_type == "lp":
        kw["p_value"] = 2
    x = randn(*shape)
    (out,) = run(mx.sym.Pooling(mx.sym.var("data"), name="pool", **kw), data=x)
    ref = np_pool(x, kernel, stride, pad if convention != "same" else (0,) * len(kernel), pool_type,
                  convention, include is not False)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_pooling_defaults_and_global():
    x = randn(1, 2, 4, 5)
    (out,) = run(mx.sym.Pooling(mx.sym.var("data"), kernel=(2, 2), name="p"), data=x)  # max, stride 1
    np.testing.assert_allclose(out, np_pool(x, (2, 2), (1, 1), (0, 0), "max"), rtol=1e-6)
    (out,) = run(mx.sym.Pooling(mx.sym.var("data"), global_pool=True, pool_type="sum", name="p"), data=x)
    np.testing.assert_allclose(out, x.sum((2, 3), keepdims=True), rtol=1e-5)
    x3 = randn(1, 2, 3, 4, 2)
    (out,) = run(mx.sym.Pooling(mx.sym.var("data"), global_pool=True, pool_type="avg", name="p"), data=x3)
    np.testing.assert_allclose(out, x3.mean((2, 3, 4), keepdims=True), rtol=1e-5, atol=1e-6)


def test_pooling_channel_last_layout():
    x = randn(1, 3, 5, 5)
    kw = dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg")
    (ref,) = run(mx.sym.Pooling(mx.sym.var("data"), name="p", **kw), data=x)
    (out,) = run(mx.sym.Pooling(mx.sym.var("data"), layout="NHWC", name="p", **kw), data=x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(out, ref.transpose(0, 2, 3, 1), rtol=1e-6)


@pytest.mark.parametrize("pool_type,convention,include", [("max", "full", None), ("avg", "full", True),
                                                          ("avg", "valid", False), ("lp", "valid", None)])
def test_pooling_numeric_gradient(pool_type, convention, include):
    kw = dict(kernel=(2, 3), stride=(2, 2), pad=(1, 1), pool_type=pool_type, pooling_convention=convention)
    if include is not None:
        kw["count_include_pad"] = include
    if pool_type == "lp":
        kw["p_value"] = 2
        kw["pad"] = (0, 0)
    sym = mx.sym.Pooling(mx.sym.var("data"), name="p", **kw)
    x = randn(1, 2, 4, 5)
    if pool_type == "lp":
        x = np.abs(x) + 0.5
    check_numeric_gradient(sym, {"data": x}, ["data"])


@pytest.mark.parametrize("dtype,tol", [("float16", 1e-2), ("bfloat16", 5e-2)])
def test_pooling_low_precision(dtype, tol):
    for pool_type in ("max", "avg"):
        sym = mx.sym.Pooling(mx.sym.var("data"), kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type=pool_type,
                             name="p")
        check_low_precision(sym, {"data": randn(1, 2, 5, 5)}, dtype, rtol=tol, atol=tol)


# -- Dropout ------------------------------------------------------------------------------
def test_dropout_identity_at_inference_and_scaled_mask_in_training():
    x = randn(40, 50)
    sym = mx.sym.Dropout(mx.sym.var("data"), p=0.3, name="drop")
    assert sym.list_outputs() == ["drop_output"]
    np.testing.assert_array_equal(run(sym, data=x)[0], x)
    (out,) = run(sym, is_train=True, data=x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-6)
    assert 0.6 < kept.mean() < 0.8
    ex = sym.bind(mx.cpu(), args={"data": x}, args_grad={"data": np.zeros_like(x)})
    out = ex.forward(is_train=True)[0].asnumpy()
    ex.backward([np.ones_like(x)])
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), out / x, rtol=1e-5)  # the same mask


def test_dropout_always_mode_axes_and_p_one():
    x = np.ones((6, 8, 10), np.float32)
    (out,) = run(mx.sym.Dropout(mx.sym.var("data"), p=0.5, mode="always", axes=(1,), name="d"), data=x)
    assert np.all(out == out[:, :1, :]), "the mask is shared along the given axes"
    assert set(np.unique(out)) <= {0.0, 2.0}
    (out,) = run(mx.sym.Dropout(mx.sym.var("data"), p=1.0, name="d"), is_train=True, data=x)
    assert np.isnan(out).all(), "MXNet's p=1 divides the empty mask by 1 - p = 0"
    np.testing.assert_array_equal(run(mx.sym.Dropout(mx.sym.var("data"), p=1.0, name="d"), data=x)[0], x)


@pytest.mark.parametrize("mode", ["training", "always"])
def test_dropout_backward_follows_the_last_forwards_mode(mode):
    """As MXNet: after forward(is_train=False) the gradient is the inference graph's (the mask with 'always')."""
    x = np.ones((20, 30), np.float32)
    ex = mx.sym.Dropout(mx.sym.var("data"), p=0.5, mode=mode).bind(
        mx.cpu(), args={"data": x}, args_grad={"data": np.zeros_like(x)})
    out = ex.forward(is_train=False)[0].asnumpy()
    ex.backward([mx.nd.ones(x.shape)], is_train=False)
    np.testing.assert_array_equal(ex.grad_dict["data"].asnumpy(), out)
    assert (mode == "always") == bool((out == 0).any())
    train_out = ex.forward(is_train=True)[0].asnumpy()
    ex.backward([mx.nd.ones(x.shape)])
    np.testing.assert_array_equal(ex.grad_dict["data"].asnumpy(), train_out)
    assert (train_out == 0).any()


# -- Embedding ----------------------------------------------------------------------------
def test_embedding_clips_indices_and_gives_no_data_gradient():
    w = randn(5, 3)
    idx = np.array([[0, 4, 7], [-2, 2.0, 4]], np.float32)
    sym = mx.sym.Embedding(mx.sym.var("data"), input_dim=5, output_dim=3, name="emb")
    (out,) = run(sym, data=idx, emb_weight=w)
    np.testing.assert_array_equal(out, w[np.clip(idx.astype(int), 0, 4)])
    head = randn(2, 3, 3)
    g = grads(sym, ["data", "emb_weight"], [head], data=idx, emb_weight=w)
    np.testing.assert_array_equal(g["data"], np.zeros_like(idx))
    expected = np.zeros_like(w)
    np.add.at(expected, np.clip(idx.astype(int), 0, 4).ravel(), head.reshape(-1, 3))
    np.testing.assert_allclose(g["emb_weight"], expected, rtol=1e-6)


def test_embedding_dtype_attribute():
    sym = mx.sym.Embedding(mx.sym.var("data"), input_dim=4, output_dim=2, dtype="float16", name="e")
    args, outs, _ = sym.infer_type(data=np.float32)
    assert np.dtype(args[1]) == np.float16 and np.dtype(outs[0]) == np.float16


def test_embedding_numeric_gradient():
    sym = mx.sym.Embedding(mx.sym.var("data"), input_dim=4, output_dim=2, name="e")
    check_numeric_gradient(sym, {"data": np.array([1, 3, 1], np.float32), "e_weight": randn(4, 2)},
                           ["e_weight"])


# -- LeakyReLU ----------------------------------------------------------------------------
def np_leaky(x, act_type, slope=0.25, gamma=None, lower=0.125, upper=0.334):
    from math import erf
    x = x.astype(np.float64)
    if act_type == "leaky":
        return np.where(x > 0, x, slope * x)
    if act_type == "prelu":
        return np.where(x > 0, x, gamma.reshape((1, -1) + (1,) * (x.ndim - 2)) * x)
    if act_type == "elu":
        return np.where(x > 0, x, slope * (np.exp(x) - 1))
    if act_type == "selu":
        return 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))
    if act_type == "gelu":
        return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    return np.where(x > 0, x, (lower + upper) / 2 * x)  # rrelu at inference


@pytest.mark.parametrize("act_type", ["leaky", "elu", "selu", "gelu", "rrelu", "prelu"])
def test_leaky_relu_family(act_type):
    x = randn(2, 3, 4)
    kw = {"slope": 0.3} if act_type in ("leaky", "elu") else {}
    sym = mx.sym.LeakyReLU(mx.sym.var("data"), act_type=act_type, name="act", **kw)
    args = {"data": x}
    gamma = None
    if act_type == "prelu":
        gamma = args["act_gamma"] = RNG.uniform(0.1, 0.5, 3).astype(np.float32)
    (out,) = run(sym, **args)
    np.testing.assert_allclose(out, np_leaky(x, act_type, kw.get("slope", 0.25), gamma), rtol=1e-5, atol=1e-6)
    if act_type != "rrelu":  # rrelu draws random slopes in training: no finite differences
        check_numeric_gradient(sym, {k: v + np.sign(v) * 0.05 for k, v in args.items()}, list(args))


def test_rrelu_training_draws_slopes_between_bounds():
    x = -np.abs(randn(200)) - 0.1
    (out,) = run(mx.sym.LeakyReLU(mx.sym.var("data"), act_type="rrelu", lower_bound=0.2, upper_bound=0.4,
                                  name="r"), is_train=True, data=x)
    slope = out / x
    assert slope.min() >= 0.2 - 1e-6 and slope.max() <= 0.4 + 1e-6 and slope.std() > 0.02


def test_prelu_scalar_gamma_and_shape_inference():
    sym = mx.sym.LeakyReLU(mx.sym.var("data"), act_type="prelu", name="p")
    assert sym.list_arguments() == ["data", "p_gamma"]
    assert sym.infer_shape(data=(2, 5, 3))[0][1] == (5,)
    x = randn(2, 5, 3)
    (out,) = run(sym, data=x, p_gamma=np.array([0.5], np.float32))
    np.testing.assert_allclose(out, np.where(x > 0, x, 0.5 * x), rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 2, 2)])
def test_prelu_gamma_per_example_and_channel(shape):
    """MXNet broadcasts an (N, C) gamma over the data's first two axes; its gradient sums the rest."""
    sym = mx.sym.LeakyReLU(mx.sym.var("data"), mx.sym.var("gamma"), act_type="prelu")
    x = randn(*shape)
    x[np.abs(x) < 0.05] = 0.5
    gamma = RNG.uniform(0.1, 0.5, (3, 4)).astype(np.float32)
    g4 = gamma.reshape((3, 4) + (1,) * (len(shape) - 2))
    np.testing.assert_allclose(run(sym, data=x, gamma=gamma)[0], np.where(x > 0, x, g4 * x), rtol=1e-6)
    check_numeric_gradient(sym, {"data": x, "gamma": gamma}, ["data", "gamma"])
    with pytest.raises(mx.ShapeError, match=r"gamma has shape \(5,\)"):
        sym.infer_shape(data=shape, gamma=(5,))


@pytest.mark.parametrize("dtype,tol", [("float16", 1e-2), ("bfloat16", 5e-2)])
def test_leaky_relu_low_precision(dtype, tol):
    for act_type in ("leaky", "elu", "gelu", "selu"):
        sym = mx.sym.LeakyReLU(mx.sym.var("data"), act_type=act_type, name="a")
        check_low_precision(sym, {"data": randn(3, 4)}, dtype, rtol=tol, atol=tol)


# -- softmax family -----------------------------------------------------------------------
def np_softmax(x, axis, t=1.0):
    z = x.astype(np.float64) / t
    e = np.exp(z - z.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def test_softmax_log_softmax_attributes():
    x = randn(2, 3, 4)
    (out,) = run(mx.sym.softmax(mx.sym.var("data"), axis=1, temperature=3.0, name="s"), data=x)
    np.testing.assert_allclose(out, np_softmax(x, 1, 3.0), rtol=1e-5, atol=1e-7)
    (out,) = run(mx.sym.log_softmax(mx.sym.var("data"), name="s"), data=x)
    np.testing.assert_allclose(out, np.log(np_softmax(x, -1)), rtol=1e-5, atol=1e-6)
    (out,) = run(mx.sym.softmax(mx.sym.var("data"), dtype="float16", name="s"), data=x)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, np_softmax(x, -1), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("mode,axis", [("instance", None), ("channel", 1)])
def test_softmax_activation(mode, axis):
    x = randn(2, 3, 2, 2)
    (out,) = run(mx.sym.SoftmaxActivation(mx.sym.var("data"), mode=mode, name="s"), data=x)
    ref = np_softmax(x.reshape(2, -1), -1).reshape(x.shape) if axis is None else np_softmax(x, 1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("op,kw", [("softmax", {"axis": 0, "temperature": 0.7}), ("log_softmax", {"axis": -1}),
                                   ("SoftmaxActivation", {"mode": "channel"})])
def test_softmax_numeric_gradient(op, kw):
    sym = getattr(mx.sym, op)(mx.sym.var("data"), name="s", **kw)
    check_numeric_gradient(sym, {"data": randn(3, 4)}, ["data"])


@pytest.mark.parametrize("dtype,tol", [("float16", 5e-3), ("bfloat16", 3e-2)])
def test_softmax_low_precision(dtype, tol):
    for op in ("softmax", "log_softmax"):
        sym = getattr(mx.sym, op)(mx.sym.var("data"), axis=1, name="s")
        check_low_precision(sym, {"data": randn(3, 5)}, dtype, rtol=tol, atol=tol)


def test_softmax_use_length_checks_its_inputs():
    """(softmax's length masking itself is tested in test_ops_softmax_length.py)"""
    sym = mx.sym.softmax(mx.sym.var("data"), use_length=True, name="sm")
    assert sym.list_arguments() == ["data", "sm_length"]
    with pytest.raises(mx.XGraphError, match=r"sm.*length must have the data's shape without axis 1"):
        sym.infer_shape(data=(2, 3), sm_length=(3,))
    with pytest.raises(mx.XGraphError, match=r"lsm.*use_length"):
        mx.sym.log_softmax(mx.sym.var("data"), use_length=True, name="lsm").infer_shape(data=(2, 3), lsm_length=(2,))


# -- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("op,kw,pattern", [
    ("Pooling", {"kernel": (2, 2), "pool_type": "median"}, r"node 'bad'.*pool_type"),
    ("Convolution", {"kernel": (3, 3)}, r"node 'bad'.*num_filter"),
    ("Convolution", {"kernel": (3, 3), "num_filter": 0}, r"node 'bad'.*num_filter"),
    ("LeakyReLU", {"act_type": "swish"}, r"node 'bad'.*act_type"),
    ("Dropout", {"mode": "sometimes"}, r"node 'bad'.*mode"),
    ("Embedding", {"input_dim": 3}, r"node 'bad'.*output_dim"),
    ("softmax", {"axis": "last"}, r"node 'bad'.*axis"),
])
def test_bad_attribute_values(op, kw, pattern):
    with pytest.raises(mx.AttributeValueError, match=pattern):
        getattr(mx.sym, op)(mx.sym.var("data"), name="bad", **kw)


def test_wrong_weight_shapes_name_the_node():
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=4, name="conv1")
    with pytest.raises(mx.ShapeError, match=r"conv1.*Convolution.*weight"):
        conv.bind(mx.cpu(), args={"data": randn(1, 2, 5, 5), "conv1_weight": randn(4, 3, 3, 3),
                                  "conv1_bias": randn(4)}, grad_req="null")
    emb = mx.sym.Embedding(mx.sym.var("data"), input_dim=5, output_dim=3, name="emb1")
    with pytest.raises(mx.XGraphError, match=r"emb1.*weight"):
        emb.bind(mx.cpu(), args={"data": np.zeros(2, np.float32), "emb1_weight": randn(3, 5)}, grad_req="null")
    prelu = mx.sym.LeakyReLU(mx.sym.var("data"), act_type="prelu", name="pr1")
    with pytest.raises(mx.XGraphError, match=r"pr1.*gamma"):
        run(prelu, data=randn(2, 3, 4), pr1_gamma=randn(4))


@pytest.mark.parametrize("op,kw,shape,pattern", [
    ("Convolution", {"kernel": (3, 3), "num_filter": 4, "num_group": 2}, (1, 3, 5, 5), r"c1.*num_group"),
    ("Convolution", {"kernel": (3,), "num_filter": 4}, (1, 3, 5, 5), r"c1.*kernel"),
    ("Pooling", {"kernel": (7, 7)}, (1, 3, 5, 5), r"c1.*kernel"),
    ("Pooling", {"kernel": (2,), "pooling_convention": "same", "pad": (1,)}, (1, 3, 5), r"c1.*same"),
    ("Pooling", {"kernel": (2, 2), "pool_type": "lp"}, (1, 3, 5, 5), r"c1.*p_value"),
])
def test_bad_geometry_names_the_node(op, kw, shape, pattern):
    sym = getattr(mx.sym, op)(mx.sym.var("data"), name="c1", **kw)
    with pytest.raises(mx.XGraphError, match=pattern):
        sym.infer_shape(data=shape)


def test_pooling_reads_the_leading_entries_of_a_longer_pad_or_stride():
    """MXNet's Pooling takes pad=(0, 0, 0) or stride=(2, 3) for 1-D data and uses the first entries."""
    x = np.arange(10, dtype=np.float32).reshape(1, 1, 10)
    pool = lambda **kw: run(mx.sym.Pooling(mx.sym.var("data"), kernel=(2,), **kw), data=x)[0]  # noqa: E731
    np.testing.assert_allclose(pool(stride=(2,), pad=(1, 2), pool_type="avg"), [[[0, 1.5, 3.5, 5.5, 7.5, 4.5]]])
    np.testing.assert_allclose(pool(stride=(2, 3), pad=(0, 0, 0), pool_type="max"), [[[1, 3, 5, 7, 9]]])
    assert pool(stride=(2,), pad=(0, 0, 0), pool_type="max", pooling_convention="same").shape == (1, 1, 5)
    with pytest.raises(mx.ShapeError, match="pooling_convention='same'"):
        pool(stride=(2,), pad=(2,), pool_type="max", pooling_convention="same")
