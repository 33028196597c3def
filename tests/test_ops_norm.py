"""Tests of BatchNorm and LayerNorm against MXNet 1.9.1 cases, numpy references,
finite differences (float64) and low-precision runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import FIXTURE_DIR, check_inference, check_training, load_case
from opcheck import check_low_precision, check_numeric_gradient, grads, run

RNG = np.random.default_rng(99)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def bn_args(shape, axis=1, prefix="bn"):
    c = shape[axis]
    args = {"data": randn(*shape), f"{prefix}_gamma": RNG.uniform(0.5, 1.5, c).astype(np.float32),
            f"{prefix}_beta": randn(c)}
    aux = {f"{prefix}_moving_mean": randn(c) * 0.3, f"{prefix}_moving_var": RNG.uniform(0.5, 2, c).astype(np.float32)}
    return args, aux


def np_bn(x, gamma, beta, mean, var, eps, axis):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: np.asarray(v, np.float64).reshape(shape)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(gamma) + r(beta)


@pytest.mark.parametrize("name", ["batchnorm_fixgamma_train", "batchnorm_nofixgamma_3d", "layernorm"])
def test_mxnet_case(name):
    case = load_case(name)
    check_inference(case)
    check_training(case)


def test_batchnorm_json_matches_mxnet():
    case = load_case("batchnorm_fixgamma_train")
    ref = {n["name"]: n for n in json.load(open(f"{FIXTURE_DIR}/batchnorm_fixgamma_train-symbol.json"))["nodes"]}
    sym = mx.sym.BatchNorm(mx.sym.var("data"), name="bn")
    nodes = {n["name"]: n for n in json.loads(sym.tojson())["nodes"]}
    for aux in ("bn_moving_mean", "bn_moving_var"):
        assert nodes[aux]["attrs"]["__init__"] == ref[aux]["attrs"]["__init__"]
    assert sym.list_arguments() == case.meta["arguments"]
    assert sym.list_auxiliary_states() == list(case.meta["aux_shapes"])
    assert sym.list_outputs() == case.meta["output_names"]


def test_batchnorm_defaults_and_aliases():
    op = mx.ops.registry.get("BatchNorm")
    p = op.with_defaults({})
    assert (p["eps"], p["momentum"], p["fix_gamma"], p["use_global_stats"], p["axis"]) == (1e-3, 0.9, True, False, 1)
    assert mx.ops.registry.get("_npx_batch_norm") is op
    assert mx.ops.registry.get("LayerNorm").with_defaults({})["eps"] == 1e-5


@pytest.mark.parametrize("axis,shape", [(1, (4, 3, 2)), (-1, (5, 2, 3)), (2, (2, 3, 4, 2))])
def test_batchnorm_training_and_inference_against_numpy(axis, shape):
    args, aux = bn_args(shape, axis)
    sym = mx.sym.BatchNorm(mx.sym.var("data"), axis=axis, fix_gamma=False, momentum=0.7, eps=1e-4, name="bn")
    x, g, b = args["data"], args["bn_gamma"], args["bn_beta"]
    ax = axis % len(shape)
    red = tuple(i for i in range(len(shape)) if i != ax)
    (out,) = run(sym, aux=aux, **args)
    np.testing.assert_allclose(out, np_bn(x, g, b, aux["bn_moving_mean"], aux["bn_moving_var"], 1e-4, ax),
                               rtol=1e-5, atol=1e-5)
    ex = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
    (out,) = ex.forward(is_train=True)
    mean, var = x.astype(np.float64).mean(red), x.astype(np.float64).var(red)
    np.testing.assert_allclose(out.asnumpy(), np_bn(x, g, b, mean, var, 1e-4, ax), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ex.aux_dict["bn_moving_mean"].asnumpy(), 0.7 * aux["bn_moving_mean"] + 0.3 * mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ex.aux_dict["bn_moving_var"].asnumpy(), 0.7 * aux["bn_moving_var"] + 0.3 * var,
                               rtol=1e-5, atol=1e-6)


def test_batchnorm_fix_gamma_ignores_gamma_and_gives_it_zero_gradient():
    args, aux = bn_args((3, 2, 4))
    sym = mx.sym.BatchNorm(mx.sym.var("data"), name="bn")
    out = run(sym, is_train=True, aux=aux, **args)[0]
    ones = dict(args, bn_gamma=np.ones(2, np.float32))
    np.testing.assert_allclose(out, run(sym, is_train=True, aux=aux, **ones)[0], rtol=1e-6)
    g = grads(sym, ["data", "bn_gamma", "bn_beta"], [randn(3, 2, 4)], aux=aux, **args)
    np.testing.assert_array_equal(g["bn_gamma"], np.zeros(2, np.float32))


def test_batchnorm_use_global_stats_in_training():
    args, aux = bn_args((3, 2, 4))
    sym = mx.sym.BatchNorm(mx.sym.var("data"), use_global_stats=True, fix_gamma=False, name="bn")
    ex = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
    (out,) = ex.forward(is_train=True)
    np.testing.assert_allclose(out.asnumpy(), run(sym, aux=aux, **args)[0], rtol=1e-6)
    for k, v in aux.items():
        np.testing.assert_array_equal(ex.aux_dict[k].asnumpy(), v)
    head = randn(3, 2, 4)
    g = grads(sym, ["data"], [head], aux=aux, **args)["data"]
    scale = args["bn_gamma"] / np.sqrt(aux["bn_moving_var"] + 1e-3)
    np.testing.assert_allclose(g, head * scale.reshape(1, 2, 1), rtol=1e-5)


def test_batchnorm_output_mean_var():
    args, aux = bn_args((4, 3, 2))
    sym = mx.sym.BatchNorm(mx.sym.var("data"), output_mean_var=True, name="bn")
    assert sym.list_outputs() == ["bn_output", "bn_mean", "bn_var"]
    out, mean, invstd = run(sym, is_train=True, aux=aux, **args)
    x = args["data"].astype(np.float64)
    np.testing.assert_allclose(mean, x.mean((0, 2)), rtol=1e-5, atol=1e-6)
    # MXNet's kernel stores the inverse standard deviation in the 'var' output
    np.testing.assert_allclose(invstd, 1 / np.sqrt(x.var((0, 2)) + 1e-3), rtol=1e-5)
    _, mean, invstd = run(sym, aux=aux, **args)
    np.testing.assert_allclose(mean, aux["bn_moving_mean"])
    np.testing.assert_allclose(invstd, 1 / np.sqrt(aux["bn_moving_var"] + 1e-3), rtol=1e-6)


@pytest.mark.parametrize("is_train", [True, False])
def test_batchnorm_numeric_gradient(is_train):
    args, aux = bn_args((3, 2, 3))
    sym = mx.sym.BatchNorm(mx.sym.var("data"), fix_gamma=False, name="bn")
    if is_train:
        check_numeric_gradient(sym, args, ["data", "bn_gamma", "bn_beta"], aux=aux, is_train=True)
    else:  # use_global_stats: a training-mode graph that uses the moving statistics
        sym = mx.sym.BatchNorm(mx.sym.var("data"), fix_gamma=False, use_global_stats=True, name="bn")
        check_numeric_gradient(sym, args, ["data", "bn_gamma", "bn_beta"], aux=aux, is_train=True)


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-2), ("bfloat16", 1e-1)])
def test_batchnorm_low_precision(dtype, tol):
    sym = mx.sym.BatchNorm(mx.sym.var("data"), fix_gamma=False, name="bn")
    args, aux = bn_args((4, 3, 5))
    arg_types, out_types, aux_types = sym.infer_type(data=dtype)
    assert [mx.dtypes.canonical(t).name for t in arg_types] == [dtype, "float32", "float32"]
    assert [mx.dtypes.canonical(t).name for t in aux_types] == ["float32", "float32"]
    keep = ["bn_gamma", "bn_beta"]
    for is_train in (False, True):
        check_low_precision(sym, args, dtype, rtol=tol, atol=tol, aux=aux, is_train=is_train, keep_float32=keep)


def test_layernorm_against_numpy_with_mean_std_outputs():
    x = randn(2, 3, 4)
    g, b = randn(3), randn(3)
    sym = mx.sym.LayerNorm(mx.sym.var("data"), axis=1, eps=1e-3, output_mean_var=True, name="ln")
    assert sym.list_outputs() == ["ln_output", "ln_mean", "ln_std"]
    assert sym.infer_shape(data=(2, 3, 4))[0] == [(2, 3, 4), (3,), (3,)]
    out, mean, std = run(sym, data=x, ln_gamma=g, ln_beta=b)
    m = x.astype(np.float64).mean(1, keepdims=True)
    s = np.sqrt(x.astype(np.float64).var(1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out, (x - m) / s * g.reshape(1, 3, 1) + b.reshape(1, 3, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, s, rtol=1e-5)


def test_layernorm_numeric_gradient():
    sym = mx.sym.LayerNorm(mx.sym.var("data"), name="ln")
    check_numeric_gradient(sym, {"data": randn(2, 4), "ln_gamma": randn(4), "ln_beta": randn(4)},
                           ["data", "ln_gamma", "ln_beta"])


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-2), ("bfloat16", 1e-1)])
def test_layernorm_low_precision(dtype, tol):
    sym = mx.sym.LayerNorm(mx.sym.var("data"), name="ln")
    check_low_precision(sym, {"data": randn(3, 6), "ln_gamma": randn(6), "ln_beta": randn(6)}, dtype,
                        rtol=tol, atol=tol * 2)


def test_norm_errors_name_the_node():
    with pytest.raises(mx.AttributeValueError, match=r"node 'bn7'.*eps"):
        mx.sym.BatchNorm(mx.sym.var("data"), eps="tiny", name="bn7")
    with pytest.raises(mx.AttributeValueError, match=r"node 'bn7'.*fix_gamma"):
        mx.sym.BatchNorm(mx.sym.var("data"), fix_gamma="maybe", name="bn7")
    bn = mx.sym.BatchNorm(mx.sym.var("data"), name="bn7")
    with pytest.raises(mx.ShapeError, match=r"bn7.*BatchNorm.*gamma"):
        bn.bind(mx.cpu(), args={"data": randn(2, 3, 4), "bn7_gamma": randn(4), "bn7_beta": randn(3)},
                aux_states={"bn7_moving_mean": randn(3), "bn7_moving_var": randn(3)}, grad_req="null")
    with pytest.raises(mx.XGraphError, match=r"bn8.*axis"):
        mx.sym.BatchNorm(mx.sym.var("data"), axis=3, name="bn8").infer_shape(data=(2, 3, 4))
    ln = mx.sym.LayerNorm(mx.sym.var("data"), name="ln7")
    with pytest.raises(mx.XGraphError, match=r"ln7.*beta"):
        run(ln, data=randn(2, 3), ln7_gamma=randn(3), ln7_beta=randn(2))
