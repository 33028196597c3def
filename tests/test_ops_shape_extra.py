"""tile, repeat, reverse/flip, stack, slice_like, reshape_like, depth_to_space/space_to_depth and the
creation ops (_zeros, _ones, _full, _arange) against numpy references."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(61)
V = mx.sym.var


def test_tile_repeat_reverse_stack():
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    v = V("x")
    for reps in [(2,), (2, 1), (3, 1, 2)]:
        np.testing.assert_array_equal(run(mx.sym.tile(v, reps=reps), x=x)[0], np.tile(x, reps))
    np.testing.assert_array_equal(run(mx.sym.repeat(v, repeats=2), x=x)[0], np.repeat(x.ravel(), 2))
    np.testing.assert_array_equal(run(mx.sym.repeat(v, repeats=3, axis=-1), x=x)[0], np.repeat(x, 3, axis=1))
    np.testing.assert_array_equal(run(mx.sym.reverse(v, axis=1), x=x)[0], x[:, ::-1])
    np.testing.assert_array_equal(run(mx.sym.flip(v, axis=(0, 1)), x=x)[0], x[::-1, ::-1])
    assert registry.get("flip") is registry.get("reverse")
    y = RNG.normal(size=(2, 3)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        np.testing.assert_array_equal(run(mx.sym.stack(v, V("y"), axis=axis), x=x, y=y)[0], np.stack([x, y], axis))
    s = mx.sym.stack(v, V("y"), name="st")
    assert s.attr_dict()["st"]["num_args"] == "2"
    assert s.infer_shape(x=(2, 3))[0] == [(2, 3), (2, 3)]


def test_slice_like_reshape_like():
    x = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    like = np.zeros((2, 3, 4), np.float32)
    np.testing.assert_array_equal(run(mx.sym.slice_like(V("x"), V("l")), x=x, l=like)[0], x[:2, :3, :4])
    np.testing.assert_array_equal(run(mx.sym.slice_like(V("x"), V("l"), axes=(0, -1)), x=x, l=like)[0], x[:2, :, :4])
    r = np.zeros((20, 6), np.float32)
    np.testing.assert_array_equal(run(mx.sym.reshape_like(V("x"), V("r")), x=x, r=r)[0], x.reshape(20, 6))
    r2 = np.zeros((9, 2, 10, 9), np.float32)
    s = mx.sym.reshape_like(V("x"), V("r"), lhs_begin=0, lhs_end=2, rhs_begin=1, rhs_end=3)
    np.testing.assert_array_equal(run(s, x=x, r=r2)[0], x.reshape(2, 10, 6))


def _np_depth_to_space(x, b):
    n, c, h, w = x.shape
    return x.reshape(n, b, b, c // b // b, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // b // b, h * b, w * b)


def test_depth_space():
    x = RNG.normal(size=(2, 8, 2, 3)).astype(np.float32)
    out = run(mx.sym.depth_to_space(V("x"), block_size=2), x=x)[0]
    assert out.shape == (2, 2, 4, 6)
    # element by element: out[n, c, h*b+i, w*b+j] = x[n, (i*b+j)*C' + c, h, w]
    for (n, c, hh, ww) in [(0, 0, 0, 0), (1, 1, 3, 5), (0, 1, 2, 1)]:
        i, j = hh % 2, ww % 2
        assert out[n, c, hh, ww] == x[n, (i * 2 + j) * 2 + c, hh // 2, ww // 2]
    np.testing.assert_array_equal(out, _np_depth_to_space(x, 2))
    back = run(mx.sym.space_to_depth(V("y"), block_size=2), y=out)[0]
    np.testing.assert_array_equal(back, x)


def test_creation_ops():
    np.testing.assert_array_equal(mx.sym.zeros((2, 3)).eval()[0].asnumpy(), np.zeros((2, 3)))
    ones = mx.sym.ones(shape=(4,), dtype="int32").eval()[0].asnumpy()
    assert ones.dtype == np.int32 and (ones == 1).all()
    np.testing.assert_array_equal(mx.sym.full((2,), 7.5).eval()[0].asnumpy(), [7.5, 7.5])
    np.testing.assert_allclose(mx.sym.arange(1, 3, 0.5, repeat=2).eval()[0].asnumpy(),
                               np.repeat(np.arange(1, 3, 0.5), 2))
    np.testing.assert_array_equal(mx.sym.arange(4).eval()[0].asnumpy(), np.arange(4))
    s = mx.sym.zeros((2, 3), name="z") + V("a")
    assert s.infer_shape(a=(2, 3))[1] == [(2, 3)]
    js = s.tojson()
    assert '"_zeros"' in js and mx.sym.load_json(js).infer_shape(a=(2, 3))[1] == [(2, 3)]
    np.testing.assert_array_equal(mx.nd._arange(start=5, dtype="int32").asnumpy(), np.arange(5))


def test_gradients_fd():
    x = RNG.normal(size=(2, 3))
    v = V("x")
    check_grad(mx.sym.tile(v, reps=(2, 2)), {"x": x})
    check_grad(mx.sym.repeat(v, repeats=2, axis=0), {"x": x})
    check_grad(mx.sym.reverse(v, axis=(0, 1)), {"x": x})
    check_grad(mx.sym.stack(v, V("y"), axis=1), {"x": x, "y": RNG.normal(size=(2, 3))})
    check_grad(mx.sym.slice_like(v, V("l"), axes=(1,)), {"x": x, "l": np.zeros((2, 2))}, null=("l",))
    check_grad(mx.sym.reshape_like(v, V("l")), {"x": x, "l": np.zeros((3, 2))}, null=("l",))
    check_grad(mx.sym.depth_to_space(v, block_size=2), {"x": RNG.normal(size=(1, 4, 1, 2))})
    check_grad(mx.sym.space_to_depth(v, block_size=2), {"x": RNG.normal(size=(1, 1, 2, 4))})
    check_grad(v * mx.sym.full((2, 3), 2.0, dtype="float64") + mx.sym.arange(6, dtype="float64").reshape(shape=(2, 3)),
               {"x": x})


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    x = RNG.normal(size=(2, 4, 2, 2)).astype(np.float32)
    v = V("x")
    s = mx.sym.Group([mx.sym.tile(v, reps=(1, 2, 1, 1)), mx.sym.repeat(v, repeats=2, axis=1),
                      mx.sym.reverse(v, axis=2), mx.sym.stack(v, v), mx.sym.depth_to_space(v, block_size=2),
                      mx.sym.space_to_depth(v, block_size=2), mx.sym.slice_like(v, v)])
    check_low_precision(s, {"x": x}, dtype)


def test_errors_name_the_node():
    with pytest.raises(mx.ShapeError, match=r"st.*stack.*differs"):
        mx.sym.stack(V("a"), V("b"), name="st").infer_shape(a=(2, 3), b=(3, 2))
    with pytest.raises(mx.ShapeError, match=r"d2s.*depth_to_space.*multiple of block_size"):
        mx.sym.depth_to_space(V("x"), block_size=2, name="d2s").infer_shape(x=(1, 6, 2, 2))
    with pytest.raises(mx.ShapeError, match=r"space_to_depth.*\(1, 4, 0, 4\) has a zero-size dimension"):
        mx.nd.space_to_depth(mx.nd.array(np.ones((1, 4, 0, 4), np.float32)), 2)
    with pytest.raises(mx.ShapeError, match=r"s2d.*space_to_depth.*4-D"):
        mx.sym.space_to_depth(V("x"), block_size=2, name="s2d").infer_shape(x=(2, 4))
    with pytest.raises(mx.ShapeError, match=r"sl.*slice_like.*larger"):
        mx.sym.slice_like(V("x"), V("l"), name="sl").infer_shape(x=(2, 3), l=(3, 3))
    with pytest.raises(mx.ShapeError, match=r"rl.*reshape_like.*sizes differ"):
        mx.sym.reshape_like(V("x"), V("l"), name="rl").infer_shape(x=(2, 3), l=(5,))
    with pytest.raises(mx.ShapeError, match=r"'ar' \(op _arange\).*\(\?,\) has unknown dimensions"):
        mx.sym.arange(0, infer_range=True, name="ar").bind(mx.cpu(), args={})
    with pytest.raises(mx.ShapeError, match=r"z.*_zeros.*shape must be given"):
        mx.sym.zeros((), name="z").infer_shape()
    with pytest.raises(mx.AttributeValueError, match=r"tl.*tile.*reps"):
        mx.sym.tile(V("x"), name="tl")


def test_integer_arange_casts_start_and_step_first_as_mxnet():
    # MXNet 1.9.1: arange(0.7, 9, 1.6, dtype=int32) is 0..5 (numpy gives 0, 2, 4...); uint8 wraps
    np.testing.assert_array_equal(mx.nd.arange(0.7, 9, 1.6, dtype="int32").asnumpy(), np.arange(6, dtype=np.int32))
    np.testing.assert_array_equal(mx.nd.arange(-100, -97, dtype="uint8").asnumpy(), [156, 157, 158])
    np.testing.assert_allclose(mx.nd.arange(0.7, 9, 1.6).asnumpy(), 0.7 + 1.6 * np.arange(6), rtol=1e-6)
    with pytest.raises(mx.XGraphError, match="give no values"):
        mx.nd.arange(0)


def test_bound_zero_size_arrays_are_known_shapes():
    # an executor's arrays are real: a 0 in their shapes is a size, not an unknown (MXNet's np_shape)
    data = mx.sym.var("data")
    ex = mx.sym.contrib.index_array(data).bind(mx.cpu(), args={"data": mx.nd.array(np.ones(()))})
    assert ex.forward()[0].shape == (0,)
    with mx.np_shape():
        out = mx.nd.tile(mx.nd.array(np.ones((2, 3, 0, 4), np.float32)), reps=(2, 4, 6))
    assert out.shape == (2, 6, 0, 24)
    with pytest.raises(mx.XGraphError, match=r"tile: reps \(1, 0, 3\) has a 0.*mx.np_shape"):
        mx.nd.tile(mx.nd.ones((4, 4)), reps=(1, 0, 3))
