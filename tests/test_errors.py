"""User errors: each is an XGraphError subclass with a message naming what went wrong, and no JAX traceback."""
from __future__ import annotations

import json
import traceback

import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry


def no_jax_in_chain(exc: BaseException) -> None:
    """The error is raised `from None` (or with no cause) and its traceback holds no JAX frames."""
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert "jax/_src" not in text, text


def test_hierarchy():
    for cls in (mx.GraphFormatError, mx.UnsupportedOperatorError, mx.AttributeValueError, mx.SymbolError,
                mx.ShapeError, mx.DTypeError, mx.BindError, mx.DeviceError, mx.ArtifactError, mx.PassError):
        assert issubclass(cls, mx.XGraphError)
    assert issubclass(mx.ShapeError, ValueError)
    assert issubclass(mx.UnsupportedOperatorError, NotImplementedError)


def test_unknown_operator():
    with pytest.raises(mx.UnsupportedOperatorError, match="'NotAnOp'") as ei:
        registry.get("NotAnOp")
    assert ei.value.ops == ("NotAnOp",)
    no_jax_in_chain(ei.value)
    doc = {"nodes": [{"op": "null", "name": "x", "inputs": []},
                     {"op": "NotAnOp", "name": "n", "inputs": [[0, 0, 0]]}], "heads": [[1, 0, 0]]}
    with pytest.raises(mx.UnsupportedOperatorError, match="1 unsupported operator.*NotAnOp") as ei:
        mx.sym.load_json(json.dumps(doc))
    no_jax_in_chain(ei.value)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"num_hidden": "ten"}, r"node 'fc' \(op FullyConnected\): attribute 'num_hidden' = 'ten' is invalid: "
                            r"expected an integer >= 1"),
    ({"num_hidden": 0}, r"node 'fc' \(op FullyConnected\): attribute 'num_hidden'.*below the minimum 1"),
    ({"num_hidden": 3, "no_bias": "perhaps"}, r"'fc'.*'no_bias'.*expected a boolean"),
    ({"num_hidden": 3, "colour": "red"}, r"'fc'.*unknown attribute 'colour'.*flatten, no_bias, num_hidden"),
    ({}, r"'fc'.*required attribute\(s\) num_hidden not given"),
])
def test_bad_attribute_names_node_attribute_and_expectation(kwargs, pattern):
    with pytest.raises(mx.AttributeValueError, match=pattern) as ei:
        mx.sym.FullyConnected(mx.sym.var("x"), name="fc", **kwargs)
    no_jax_in_chain(ei.value)


def test_bad_enum_attribute_lists_choices():
    with pytest.raises(mx.AttributeValueError, match=r"'act'.*'act_type' = 'relux'.*'relu', 'sigmoid'") as ei:
        mx.sym.Activation(mx.sym.var("x"), act_type="relux", name="act")
    no_jax_in_chain(ei.value)


def test_malformed_json():
    with pytest.raises(mx.GraphFormatError, match="malformed") as ei:
        mx.sym.load_json('{"nodes": [}')
    no_jax_in_chain(ei.value)
    doc = {"nodes": [{"op": "null", "name": "x", "inputs": []},
                     {"op": "relu", "name": "r", "inputs": [[5, 0, 0]]}], "heads": [[1, 0, 0]]}
    with pytest.raises(mx.GraphFormatError, match=r"node 1 \('r', op relu\).*node 5") as ei:
        mx.sym.load_json(json.dumps(doc))
    no_jax_in_chain(ei.value)


def test_shape_mismatch_at_inference_and_bind():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    s = mx.sym.elemwise_add(a, b, name="add1")
    with pytest.raises(mx.ShapeError) as ei:
        s.infer_shape(a=(2, 3), b=(4, 3))
    msg = str(ei.value)
    assert "node 'add1' (op elemwise_add)" in msg and "lhs=(2, 3)" in msg and "rhs=(4, 3)" in msg
    no_jax_in_chain(ei.value)
    with pytest.raises(mx.ShapeError, match=r"node 'add1' \(op elemwise_add\)") as ei:
        s.bind(mx.cpu(), args={"a": np.zeros((2, 3), np.float32), "b": np.zeros((4, 3), np.float32)})
    no_jax_in_chain(ei.value)
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    with pytest.raises(mx.ShapeError) as ei:
        fc.bind(mx.cpu(), args={"x": np.zeros((2, 5), np.float32), "fc_weight": np.zeros((3, 4), np.float32),
                                "fc_bias": np.zeros(3, np.float32)})
    msg = str(ei.value)
    assert "node 'fc' (op FullyConnected)" in msg and "weight=(3, 4)" in msg and "(3, 5)" in msg
    no_jax_in_chain(ei.value)


def test_shape_mismatch_in_imperative_call():
    with pytest.raises(mx.ShapeError, match="elemwise_add") as ei:
        mx.nd.elemwise_add(mx.nd.ones((2, 3)), mx.nd.ones((3, 2)))
    no_jax_in_chain(ei.value)


def test_missing_input_at_bind():
    net = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
    with pytest.raises(mx.BindError, match=r"no array given for 'fc_bias'") as ei:
        net.bind(mx.cpu(), args={"data": np.zeros((2, 4), np.float32), "fc_weight": np.zeros((3, 4), np.float32)})
    no_jax_in_chain(ei.value)
    with pytest.raises(mx.BindError, match=r"cannot infer the shape of 'data', 'fc_weight'") as ei:
        net.simple_bind(mx.cpu())
    no_jax_in_chain(ei.value)
    with pytest.raises(mx.BindError, match=r"cannot infer the shape of 'data'"):
        mx.lower(net)


def test_symbol_misuse():
    x = mx.sym.var("x")
    with pytest.raises(mx.SymbolError, match="positional arguments must be Symbols"):
        mx.sym.relu(x, 3)
    with pytest.raises(mx.SymbolError, match="out of range"):
        x[1]
    with pytest.raises(mx.base.NotImplementedForSymbol, match="not supported for Symbol"):
        if x:
            pass


def test_dtype_errors():
    with pytest.raises(mx.DTypeError, match="not a dtype"):
        mx.nd.zeros((2,), dtype="float13")
    with pytest.raises(mx.DTypeError):
        mx.sym.var("v", dtype="complex256")
    for text in ("f4,)", "(2)f4,)", "data=float32"):   # numpy parses comma strings with ast (SyntaxError)
        with pytest.raises(mx.DTypeError, match="not a dtype"):
            mx.sym.var("v", dtype=text)


def test_device_error_is_clear():
    with pytest.raises(mx.DeviceError, match=r"device gpu\(5\) does not exist: \d+ gpu device\(s\) found") as ei:
        mx.nd.ones((2,), ctx=mx.gpu(5))
    no_jax_in_chain(ei.value)
