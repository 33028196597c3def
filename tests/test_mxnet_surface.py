"""MXNet names scripts use: maximum/minimum/power/hypot on arrays or numbers, argmax_channel, hard_sigmoid."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from xgraph.test_utils import check_numeric_gradient, check_symbolic_forward


def test_binary_functions_on_arrays_and_numbers():
    a, b = np.array([[1.0, 5.0]], np.float32), np.array([[3.0], [0.5]], np.float32)
    np.testing.assert_allclose(mx.nd.maximum(mx.nd.array(a), mx.nd.array(b)).asnumpy(), np.maximum(a, b))
    np.testing.assert_allclose(mx.nd.minimum(mx.nd.array(a), 2).asnumpy(), np.minimum(a, 2))
    np.testing.assert_allclose(mx.nd.power(2, mx.nd.array(a)).asnumpy(), 2 ** a)
    np.testing.assert_allclose(mx.nd.power(mx.nd.array(a), 2).asnumpy(), a ** 2)
    assert mx.sym.maximum(3, 4) == 4 and mx.nd.hypot(3, 4) == 5.0
    x = mx.sym.var("x")
    check_symbolic_forward(mx.sym.minimum(mx.sym.maximum(x, 0), 1), [np.array([-1.0, 0.5, 2.0])],
                           [np.array([0.0, 0.5, 1.0])])


def test_argmax_channel_is_the_last_axis_argmax_without_gradient():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    out = mx.nd.argmax_channel(mx.nd.array(x))
    assert out.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.asnumpy(), x.argmax(-1))
    assert mx.sym.argmax_channel(mx.sym.var("x")).infer_shape(x=(5, 7))[1] == [(5,)]


def test_hard_sigmoid_values_attributes_and_gradient():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 4.0], np.float32)
    out = mx.nd.hard_sigmoid(mx.nd.array(x), alpha=0.25, beta=0.4).asnumpy()
    np.testing.assert_allclose(out, np.clip(0.25 * x + 0.4, 0, 1), rtol=1e-6)
    check_numeric_gradient(mx.sym.hard_sigmoid(mx.sym.var("x")), [np.array([-1.0, 0.3, 1.2])],
                           numeric_eps=1e-3, rtol=1e-2, atol=1e-3)
    with pytest.raises(mx.XGraphError, match="alpha"):
        mx.sym.hard_sigmoid(mx.sym.var("x"), alpha="steep")


def test_base_real_type_and_mxnet_error_alias():
    assert mx.base.mx_real_t is np.float32
    with pytest.raises(mx.MXNetError):
        mx.sym.var("x").infer_shape(x=(2, "a"))


def test_ctx_attribute_takes_a_context():
    out = mx.nd.random.normal(0, 1, shape=(2, 3), ctx=mx.cpu())
    assert out.shape == (2, 3)
    sym = mx.sym.random.uniform(0, 1, shape=(4,), ctx=mx.cpu())
    assert sym.infer_shape()[1] == [(4,)]


def test_get_operator_arguments_lists_inputs_then_attributes_as_mxnet():
    from xgraph.operator import OperatorArguments, get_operator_arguments
    act = get_operator_arguments("Activation")
    assert isinstance(act, OperatorArguments) and act.narg == 2 and act.names == ["data", "act_type"]
    assert act.types == ["NDArray-or-Symbol", "{'relu', 'sigmoid', 'softrelu', 'softsign', 'tanh'}, required"]
    conv = dict(zip(*get_operator_arguments("Convolution")[1:]))
    assert list(conv)[:3] == ["data", "weight", "bias"]
    assert conv["kernel"] == "Shape(tuple), required" and conv["num_filter"].endswith("required")
    assert conv["num_group"] == "int, optional, default='1'"
    assert get_operator_arguments("Concat").types[0] == "NDArray-or-Symbol[]"
    assert get_operator_arguments("BatchNorm").names[:5] == ["data", "gamma", "beta", "moving_mean", "moving_var"]
    with pytest.raises(mx.XGraphError, match="nope"):
        get_operator_arguments("nope")


def test_activation_takes_mxnet1_types_and_npx_activation_adds_mxnet2s():
    x = mx.nd.array([-1.0, 2.0])
    with pytest.raises(mx.XGraphError, match="mish"):
        mx.nd.Activation(x, act_type="mish")
    mish = mx.nd._npx_activation(x, act_type="mish").asnumpy()
    ref = np.array([-1.0, 2.0]) * np.tanh(np.log1p(np.exp([-1.0, 2.0])))
    np.testing.assert_allclose(mish, ref, rtol=1e-6)
