"""MXNet 1.9's calling conventions in the frontends: positional attributes, the random functions'
signatures, dtype attributes given as numpy types, and the NDArray surface MXNet scripts use."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry


# -- positional attributes -------------------------------------------------------------------------
def test_positional_attributes_follow_the_inputs_imperative():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = mx.nd.array(a)
    np.testing.assert_array_equal(mx.nd.reshape(x, (3, 2)).asnumpy(), a.reshape(3, 2))
    np.testing.assert_array_equal(mx.nd.repeat(x, 2).asnumpy(), np.repeat(a, 2))
    np.testing.assert_array_equal(mx.nd.repeat(x, 2, 1).asnumpy(), np.repeat(a, 2, axis=1))
    np.testing.assert_array_equal(mx.nd.tile(x, (2, 2)).asnumpy(), np.tile(a, (2, 2)))
    np.testing.assert_array_equal(mx.nd.one_hot(mx.nd.array([0, 2]), 4).asnumpy(), np.eye(4)[[0, 2]])
    np.testing.assert_array_equal(mx.nd.clip(x, 1, 4).asnumpy(), np.clip(a, 1, 4))
    np.testing.assert_array_equal(mx.nd.sum(x, 1).asnumpy(), a.sum(1))
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 2, 2)
    d2s = mx.nd.depth_to_space(mx.nd.array(img), 2)
    assert d2s.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(mx.nd.space_to_depth(d2s, 2).asnumpy(), img)
    # fluent methods take them too
    np.testing.assert_array_equal(x.transpose((1, 0)).asnumpy(), a.T)
    np.testing.assert_array_equal(x.tile((1, 2)).asnumpy(), np.tile(a, (1, 2)))


def test_positional_attributes_symbolic():
    x = mx.sym.var("x")
    assert mx.sym.reshape(x, (2, 3)).infer_shape(x=(3, 2))[1] == [(2, 3)]
    assert mx.sym.repeat(x, 3, 0).infer_shape(x=(2, 2))[1] == [(6, 2)]
    assert x.reshape((6,)).infer_shape(x=(3, 2))[1] == [(6,)]
    fc = mx.sym.FullyConnected(x, mx.sym.var("w"), mx.sym.var("b"), 5)
    assert fc.infer_shape(x=(2, 3))[1] == [(2, 5)]
    assert fc.attr("num_hidden") == "5"


def test_none_input_means_not_given():
    x, w = mx.sym.var("x"), mx.sym.var("w")
    conv = mx.sym.Convolution(x, w, None, kernel=(3, 3), num_filter=2, no_bias=True)
    assert conv.list_arguments() == ["x", "w"]
    conv = mx.sym.Convolution(x, w, None, kernel=(3, 3), num_filter=2, name="c")
    assert conv.list_arguments() == ["x", "w", "c_bias"]
    # positional attributes after a None input slot
    fc = mx.sym.FullyConnected(x, w, None, 4, True)
    assert fc.list_arguments() == ["x", "w"] and fc.attr("no_bias") == "True"
    out = mx.nd.FullyConnected(mx.nd.ones((1, 3)), mx.nd.ones((2, 3)), None, 2, True)
    np.testing.assert_array_equal(out.asnumpy(), [[3.0, 3.0]])


def test_positional_errors_name_the_op_and_signature():
    x = mx.sym.var("x")
    with pytest.raises(mx.SymbolError, match=r"repeat\(data, repeats, axis=None\)"):
        mx.sym.repeat(x, 2, 0, 7)
    with pytest.raises(mx.SymbolError, match="both positionally and as a keyword"):
        mx.sym.repeat(x, 2, repeats=3)
    with pytest.raises(mx.SymbolError, match="2 inputs given but the op takes 1"):
        mx.sym.repeat(x, 2, x)
    with pytest.raises(mx.SymbolError, match="repeat"):
        mx.nd.repeat(mx.nd.ones((2,)), 2, 0, 1)
    with pytest.raises(mx.XGraphError):
        mx.nd.tile(mx.nd.ones((2,)), "many")


def test_positional_order_field():
    for name in ("reshape", "Convolution", "one_hot", "repeat", "_random_uniform"):
        op = registry.get(name)
        assert op.positional_attrs() == [a.name for a in op.attrs]
    assert registry.get("Concat").signature().startswith("Concat(*data")
    op = registry.Op("_test_positional_order", lambda ctx, p, x: x * p["b"],
                     attrs=(mx.ops.attrs.attr("a", mx.ops.attrs.Int(), 0),
                            mx.ops.attrs.attr("b", mx.ops.attrs.Int(), 1)),
                     positional=("b", "a"))
    assert op.positional_attrs() == ["b", "a"]
    assert op.signature() == "_test_positional_order(data, b=1, a=0)"
    with pytest.raises(ValueError, match="not attributes"):
        registry.Op("_bad", lambda ctx, p, x: x, positional=("nope",))


def test_variadic_ops_take_a_list_or_arrays():
    a, b = mx.nd.ones((2, 1)), mx.nd.zeros((2, 1))
    assert mx.nd.concat(a, b, dim=1).shape == (2, 2)
    assert mx.nd.concat([a, b], dim=0).shape == (4, 1)
    assert mx.nd.Concat(*[a, b], dim=1).shape == (2, 2)
    s = mx.sym.Concat([mx.sym.var("p"), mx.sym.var("q")], dim=0)
    assert s.infer_shape(p=(1, 2), q=(3, 2))[1] == [(4, 2)]


# -- the random functions ----------------------------------------------------------------------------
def test_random_signatures_take_shape_dtype_ctx_positionally():
    mx.random.seed(3)
    u = mx.random.uniform(-2, -1, (200,), "float16", mx.cpu())
    assert u.shape == (200,) and u.dtype == np.float16
    assert -2 <= u.asnumpy().min() and u.asnumpy().max() <= -1
    n = mx.nd.random.normal(5, 0.01, (50,), np.float32)
    assert abs(n.asnumpy().mean() - 5) < 0.1
    g = mx.nd.random.gamma(2.0, 1.0, (3,))
    assert g.shape == (3,)
    for fn, args in ((mx.nd.random.exponential, (1.0,)), (mx.nd.random.poisson, (2.0,)),
                     (mx.nd.random.negative_binomial, (2, 0.5)),
                     (mx.nd.random.generalized_negative_binomial, (1.0, 0.5))):
        assert fn(*args, (4, 2)).shape == (4, 2)
    r = mx.nd.random.randint(3, 7, (100,), "int32")
    assert r.dtype == np.int32 and set(np.unique(r.asnumpy())) <= {3, 4, 5, 6}
    assert mx.nd.random.randn(2, 3).shape == (2, 3)
    assert mx.nd.random.randn(4, loc=10, scale=0.1, dtype="float16").dtype == np.float16
    out = mx.nd.zeros((3,))
    mx.nd.random.uniform(7, 8, (3,), out=out)
    assert (out.asnumpy() >= 7).all()
    s = mx.sym.random.normal(0, 1, (2, 5), "float16")
    assert s.infer_shape()[1] == [(2, 5)] and s.infer_type()[1] == [np.float16]


def test_random_functions_reject_bad_calls():
    with pytest.raises(mx.SymbolError, match="at most 6 positional"):
        mx.nd.random.uniform(0, 1, (2,), None, None, None, 1)
    with pytest.raises(mx.SymbolError, match="at most 4 positional"):
        mx.sym.random.uniform(0, 1, (2,), None, 1)
    with pytest.raises(mx.SymbolError, match="both positionally"):
        mx.nd.random.normal(0, 1, (2,), loc=3)
    with pytest.raises(mx.SymbolError, match="all be numbers or all be arrays"):
        mx.nd.random.uniform(mx.nd.zeros((2,)), 1.0)


def test_random_with_array_parameters_samples_per_element():
    low, high = mx.nd.array([0, 10]), mx.nd.array([1, 11])
    out = mx.nd.random.uniform(low, high, (5,))
    assert out.shape == (2, 5)
    v = out.asnumpy()
    assert (v[0] < 1).all() and (v[1] >= 10).all()


# -- dtype attributes -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.dtype("float16"), "float16"])
def test_dtype_attributes_take_numpy_types(dtype):
    assert mx.nd.random.uniform(shape=(2,), dtype=dtype).dtype == np.float16
    assert mx.nd.Cast(mx.nd.ones((2,)), dtype=dtype).dtype == np.float16
    assert mx.nd.zeros((2,), dtype=dtype).dtype == np.float16
    s = mx.sym.random.uniform(shape=(2,), dtype=dtype)
    assert s.infer_type()[1] == [np.float16]
    assert s.attr("dtype") == "float16"


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32])
def test_int_dtype_attributes(dtype):   # int64 needs JAX's x64 mode, off in xgraph
    x = mx.nd.array([1.7, -2.2, 3.0])
    assert mx.nd.Cast(x, dtype=dtype).dtype == dtype
    assert mx.nd.one_hot(mx.nd.array([1, 0]), 3, dtype=dtype).dtype == dtype
    assert mx.nd.arange(0, 4, dtype=dtype).dtype == dtype
    if dtype == np.int32:
        assert mx.nd.random.randint(0, 5, (3,), dtype=dtype).dtype == dtype
    assert mx.sym.Cast(mx.sym.var("x"), dtype=dtype).infer_type(x=np.float32)[1] == [dtype]


def test_bad_dtype_is_an_attribute_error():
    with pytest.raises(mx.AttributeValueError, match="dtype"):
        mx.nd.random.uniform(shape=(2,), dtype=np.complex64)
    with pytest.raises(mx.AttributeValueError, match="dtype"):
        mx.sym.Cast(mx.sym.var("x"), dtype=object)


def test_input_keyword_none_is_not_given():
    x = mx.sym.var("x")
    s = mx.sym.SequenceReverse(x, sequence_length=None)
    assert s.list_arguments() == ["x"]
    fc = mx.sym.FullyConnected(data=x, weight=None, bias=None, num_hidden=2, name="fc")
    assert fc.list_arguments() == ["x", "fc_weight", "fc_bias"]


# -- test_utils takes locations as MXNet's checks do ------------------------------------------------
def test_check_locations_cast_numpy_arrays_to_the_dtype():
    from xgraph.test_utils import check_numeric_gradient, check_symbolic_forward
    cond = np.array([[1, 0], [0, 1]])          # integers: cast to float32 as MXNet does
    x = np.array([[1, 2], [3, 4]])
    y = np.array([[7, 8], [9, 10]])
    s = mx.sym.where(mx.sym.var("c"), mx.sym.var("x"), mx.sym.var("y"))
    out = check_symbolic_forward(s, [cond, x, y], [np.where(cond, x, y)])
    assert out[0].dtype == np.float32
    check_numeric_gradient(s, [cond, x, y], grad_nodes=["x", "y"])
    # 'asnumpy' keeps each value's own dtype; NDArrays are taken as they are
    h = np.ones((2, 2), np.float16)
    out = check_symbolic_forward(mx.sym.relu(mx.sym.var("x")), [h], [h], dtype="asnumpy")
    assert out[0].dtype == np.float16
    out = check_symbolic_forward(mx.sym.relu(mx.sym.var("x")), [mx.nd.array(h, dtype="float16")], [h])
    assert out[0].dtype == np.float16


# -- the NDArray surface ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,fn", [
    ("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply), ("divide", np.divide),
    ("modulo", np.mod), ("power", np.power), ("maximum", np.maximum), ("minimum", np.minimum),
    ("hypot", np.hypot), ("equal", np.equal), ("not_equal", np.not_equal), ("greater", np.greater),
    ("greater_equal", np.greater_equal), ("lesser", np.less), ("lesser_equal", np.less_equal),
    ("logical_and", np.logical_and), ("logical_or", np.logical_or), ("logical_xor", np.logical_xor)])
def test_ndarray_binary_functions_broadcast_and_take_numbers(name, fn):
    a = np.array([[0.0, 1.0, 2.0]], np.float32)
    b = np.array([[1.0], [2.0]], np.float32)
    f = getattr(mx.nd, name)
    np.testing.assert_allclose(f(mx.nd.array(a), mx.nd.array(b)).asnumpy(), fn(a, b), rtol=1e-6)
    np.testing.assert_allclose(f(mx.nd.array(a), 2).asnumpy(), fn(a, 2), rtol=1e-6)
    np.testing.assert_allclose(f(2, mx.nd.array(b)).asnumpy(), fn(2, b), rtol=1e-6)
    assert f(mx.nd.array(a), 2).dtype == np.float32
    assert f(3, 2) == pytest.approx(float(fn(3, 2)))
    with pytest.raises(mx.SymbolError, match=name):
        f(mx.nd.array(a), "two")


def test_symbol_pow_and_friends():
    x = mx.sym.var("x")
    v = np.array([1.0, 2.0, 3.0], np.float32)
    for s, want in ((mx.sym.pow(x, 2), v ** 2), (mx.sym.pow(2, x), 2 ** v), (mx.sym.power(x, x), v ** v),
                    (mx.sym.maximum(x, 2), np.maximum(v, 2)), (mx.sym.minimum(2, x), np.minimum(v, 2)),
                    (mx.sym.hypot(x, 4), np.hypot(v, 4))):
        out = s.bind(mx.cpu(), args={"x": mx.nd.array(v)}).forward()[0]
        np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-5)
    assert mx.sym.pow(2, 3) == 8


def test_ndarray_reductions_are_the_operators():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    a = mx.nd.array(x)
    np.testing.assert_allclose(a.mean(axis=1, exclude=True).asnumpy(), x.mean((0, 2)))
    np.testing.assert_allclose(a.sum(axis=(0, 2), exclude=True).asnumpy(), x.sum(1))
    np.testing.assert_allclose(a.max(1).asnumpy(), x.max(1))
    np.testing.assert_allclose(a.min(axis=0, keepdims=True).asnumpy(), x.min(0, keepdims=True))
    np.testing.assert_allclose(a.prod(axis=2, exclude=True).asnumpy(), x.prod((0, 1)), rtol=1e-5)
    np.testing.assert_allclose(a.norm(axis=1).asnumpy(), np.linalg.norm(x, axis=1), rtol=1e-5)
    assert a.sum().shape == (1,) and a.sum().asscalar() == x.sum()
    np.testing.assert_allclose(mx.nd.mean(a, axis=(1, 2), exclude=True).asnumpy(), x.mean(0))
    a.attach_grad()
    with mx.autograd.record():
        y = a.sum(axis=0, exclude=True)
    y.backward()
    np.testing.assert_array_equal(a.grad.asnumpy(), np.ones_like(x))


def test_tostype():
    a = mx.nd.ones((2, 2))
    b = a.tostype("default")
    assert b.shape == (2, 2) and b is not a
    for stype in ("csr", "row_sparse"):
        with pytest.raises(mx.errors.UnsupportedFeatureError, match="sparse"):
            a.tostype(stype)


def test_creation_shapes_follow_mxnet_shape_semantics():
    for fn in (mx.nd.zeros, mx.nd.ones):
        with pytest.raises(mx.ShapeError, match="np_shape"):
            fn(shape=())
        with pytest.raises(mx.ShapeError, match="np_shape"):
            fn(shape=(0, 1, 3, 0))
        with pytest.raises(mx.ShapeError, match="negative"):
            fn(shape=(2, -1))
    with pytest.raises(mx.ShapeError):
        mx.nd.full((), 3.0)
    with mx.np_shape():
        assert mx.nd.ones(shape=()).asnumpy() == 1
        assert mx.nd.zeros(shape=(0, 1, 0, 4)).shape == (0, 1, 0, 4)
        assert mx.nd.full((2, 0), 1.0).shape == (2, 0)


def test_max_min_of_an_empty_axis_is_an_error():
    with mx.np_shape():
        a = mx.nd.zeros((5, 0))
        for fn in (a.max, a.min):
            with pytest.raises(mx.ShapeError, match="size 0"):
                fn()
        assert a.max(axis=0).shape == (0,)
        assert a.sum().asnumpy().tolist() == [0.0]
