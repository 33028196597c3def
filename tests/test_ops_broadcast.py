"""Broadcast operators against MXNet fixtures and numpy references."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry
from mxnet_cases import check_inference, check_training, load_case
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(7)
A = RNG.normal(size=(2, 1, 3)).astype(np.float32)
B = (np.abs(RNG.normal(size=(4, 1))) + 0.5).astype(np.float32)

NUMPY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "mod": lambda a, b: np.where(b == 0, 0, np.mod(a, b)),
    "power": lambda a, b: np.power(np.abs(a), b), "maximum": np.maximum, "minimum": np.minimum,
    "hypot": np.hypot, "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "lesser": np.less, "lesser_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


def test_fixture_broadcast_elemwise():
    case = load_case("broadcast_elemwise")
    check_inference(case)
    check_training(case)


@pytest.mark.parametrize("key", sorted(NUMPY))
def test_broadcast_binary_matches_numpy(key):
    a = np.abs(A) if key == "power" else A
    b = np.round(B) if key.startswith("logical") or key in ("equal", "not_equal") else B
    out = run(getattr(mx.sym, f"broadcast_{key}")(mx.sym.var("a"), mx.sym.var("b")), a=a, b=b)[0]
    want = NUMPY[key](a, b).astype(np.float32)
    assert out.shape == (2, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_aliases_and_names():
    assert registry.get("broadcast_plus") is registry.get("broadcast_add")
    assert registry.get("broadcast_minus") is registry.get("broadcast_sub")
    assert registry.get("broadcast_axes") is registry.get("broadcast_axis")
    s = mx.sym.broadcast_plus(mx.sym.var("a"), mx.sym.var("b"), name="bp")
    assert s.list_arguments() == ["a", "b"]
    assert '"op": "broadcast_add"' in s.tojson()


def test_broadcast_to_like_axis():
    x = RNG.normal(size=(2, 1, 3)).astype(np.float32)
    out = run(mx.sym.broadcast_to(mx.sym.var("x"), shape=(0, 4, 0)), x=x)[0]
    np.testing.assert_array_equal(out, np.broadcast_to(x, (2, 4, 3)))
    y = np.zeros((2, 5, 3), np.float32)
    out = run(mx.sym.broadcast_like(mx.sym.var("x"), mx.sym.var("y")), x=x, y=y)[0]
    np.testing.assert_array_equal(out, np.broadcast_to(x, (2, 5, 3)))
    y2 = np.zeros((7, 6), np.float32)
    out = run(mx.sym.broadcast_like(mx.sym.var("x"), mx.sym.var("y"), lhs_axes=(1,), rhs_axes=(0,)), x=x, y=y2)[0]
    np.testing.assert_array_equal(out, np.broadcast_to(x, (2, 7, 3)))
    out = run(mx.sym.broadcast_axis(mx.sym.var("x"), axis=1, size=4), x=x)[0]
    np.testing.assert_array_equal(out, np.broadcast_to(x, (2, 4, 3)))
    out = run(mx.sym.broadcast_axes(mx.sym.var("x"), axis=(1,), size=(2,)), x=x)[0]
    assert out.shape == (2, 2, 3)


def test_attribute_round_trip():
    s = mx.sym.broadcast_to(mx.sym.var("x"), shape=(0, 4), name="bt")
    assert s.attr_dict()["bt"]["shape"] == "(0, 4)"
    s2 = mx.sym.load_json(s.tojson())
    assert s2.infer_shape(x=(3, 1))[1] == [(3, 4)]


def test_gradients_fd():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    x = RNG.normal(size=(2, 3))
    y = np.abs(RNG.normal(size=(1, 3))) + 0.5
    check_grad(mx.sym.broadcast_mul(a, b) + mx.sym.broadcast_div(a, b) + mx.sym.broadcast_hypot(a, b),
               {"a": x, "b": y})
    check_grad(mx.sym.broadcast_power(mx.sym.broadcast_maximum(a, b), b), {"a": x, "b": y})
    check_grad(mx.sym.broadcast_to(a, shape=(0, 4, 3)), {"a": RNG.normal(size=(2, 1, 3))})
    check_grad(mx.sym.broadcast_like(a, b), {"a": RNG.normal(size=(1, 3)), "b": RNG.normal(size=(2, 3))})
    check_grad(mx.sym.broadcast_axis(a, axis=0, size=3), {"a": RNG.normal(size=(1, 2))})


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    s = mx.sym.broadcast_mul(mx.sym.var("a"), mx.sym.var("b")) - mx.sym.broadcast_to(mx.sym.var("a"), shape=(2, 4, 3))
    check_low_precision(s, {"a": A, "b": B}, dtype)


def test_errors_name_the_node():
    s = mx.sym.broadcast_add(mx.sym.var("a"), mx.sym.var("b"), name="badd")
    with pytest.raises(mx.ShapeError, match=r"badd.*broadcast_add.*cannot be broadcast"):
        s.infer_shape(a=(2, 3), b=(4, 3))
    with pytest.raises(mx.XGraphError, match=r"bt.*neither 5 nor 1"):
        mx.sym.broadcast_to(mx.sym.var("x"), shape=(5,), name="bt").infer_shape(x=(3,))
    with pytest.raises(mx.XGraphError, match=r"bax.*only axes of size 1"):
        mx.sym.broadcast_axis(mx.sym.var("x"), axis=0, size=2, name="bax").infer_shape(x=(3,))
    with pytest.raises(mx.XGraphError, match=r"emul.*same shape"):
        mx.sym.elemwise_mul(mx.sym.var("a"), mx.sym.var("b"), name="emul").infer_shape(a=(2, 3), b=(1, 3))
