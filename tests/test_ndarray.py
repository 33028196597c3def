"""NDArray: creation, MXNet's dtype conventions, in-place writes, arithmetic, devices, imperative ops."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import xgraph as mx


def test_creation_functions():
    a = mx.nd.array([[1, 2], [3, 4]])
    assert a.shape == (2, 2) and a.dtype is np.float32 and a.ndim == 2 and a.size == 4
    np.testing.assert_array_equal(a.asnumpy(), [[1, 2], [3, 4]])
    assert isinstance(a.asnumpy(), np.ndarray)
    np.testing.assert_array_equal(mx.nd.zeros((2, 3)).asnumpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(mx.nd.ones(4).asnumpy(), np.ones(4))
    assert mx.nd.empty((3, 1)).shape == (3, 1)
    np.testing.assert_array_equal(mx.nd.full((2, 2), 7).asnumpy(), np.full((2, 2), 7))
    np.testing.assert_array_equal(mx.nd.arange(0, 5, 2).asnumpy(), [0, 2, 4])
    np.testing.assert_array_equal(mx.nd.arange(3, repeat=2).asnumpy(), [0, 0, 1, 1, 2, 2])
    assert mx.nd.arange(5).dtype is np.float32
    assert mx.nd.zeros(3, dtype="int32").dtype is np.int32
    assert mx.nd.ones((2,), dtype=np.float16).dtype is np.float16


def test_array_dtype_follows_mxnet():
    # float32 unless the source is an NDArray or a dtype is given
    assert mx.nd.array(np.arange(3)).dtype is np.float32
    assert mx.nd.array(np.arange(3, dtype=np.float64)).dtype is np.float32
    assert mx.nd.array([1, 2], dtype="float16").dtype is np.float16
    assert mx.nd.array([1, 2], dtype="bfloat16").dtype is ml_dtypes.bfloat16
    assert mx.nd.array(mx.nd.array([1, 2], dtype="float16")).dtype is np.float16
    assert mx.nd.ones((2,)).astype("float16").dtype is np.float16


def test_context_copyto_as_in_context():
    a = mx.nd.array([1, 2, 3])
    assert a.context == mx.cpu() and a.ctx == mx.cpu(0)
    b = a.copyto(mx.cpu())
    assert b is not a
    np.testing.assert_array_equal(b.asnumpy(), a.asnumpy())
    dst = mx.nd.zeros(3)
    assert a.copyto(dst) is dst
    np.testing.assert_array_equal(dst.asnumpy(), [1, 2, 3])
    assert a.as_in_context(mx.cpu()) is a
    c = a.copy()
    c[:] = 0
    np.testing.assert_array_equal(a.asnumpy(), [1, 2, 3])


def test_whole_assignment_swaps_the_buffer_for_every_holder():
    a = mx.nd.array([[1, 2], [3, 4]])
    holder = {"a": a}
    old = a.data
    a[:] = 5
    assert a.data is not old
    np.testing.assert_array_equal(holder["a"].asnumpy(), np.full((2, 2), 5))
    np.testing.assert_array_equal(np.asarray(old), [[1, 2], [3, 4]])  # the old buffer is untouched
    a[:] = np.array([[1, 2], [3, 4]], np.float64)
    assert a.dtype is np.float32  # the array keeps its dtype
    a[:] = mx.nd.array([9, 8])  # broadcast
    np.testing.assert_array_equal(a.asnumpy(), [[9, 8], [9, 8]])
    with pytest.raises(mx.ShapeError, match=r"\(3, 3\).*\(2, 2\)"):
        a[:] = np.zeros((3, 3))


def test_slice_assignment_and_indexing():
    a = mx.nd.zeros((3, 3))
    a[0] = 1
    a[1, 2] = 7
    a[:, 0] = mx.nd.array([4, 5, 6])
    a[2, 1:] = np.array([8, 9])
    np.testing.assert_array_equal(a.asnumpy(), [[4, 1, 1], [5, 0, 7], [6, 8, 9]])
    np.testing.assert_array_equal(a[1].asnumpy(), [5, 0, 7])
    np.testing.assert_array_equal(a[:, 1:].asnumpy(), [[1, 1], [0, 7], [8, 9]])
    assert len(a) == 3
    assert [r.shape for r in a] == [(3,)] * 3


def test_arithmetic():
    x = np.array([[1.0, -2.0], [3.0, 4.5]], np.float32)
    a = mx.nd.array(x)
    cases = [(a + a, x + x), (a + 1, x + 1), (1 + a, 1 + x), (a - 1, x - 1), (1 - a, 1 - x),
             (a * 2, x * 2), (2 * a, 2 * x), (a / 2, x / 2), (2 / a, 2 / x), (a ** 2, x ** 2),
             (2 ** a, 2 ** x), (-a, -x), (abs(a), np.abs(x)), (a % 3, np.mod(x, 3)),
             (a > 1, (x > 1)), (a == 3, (x == 3)), (a <= a, np.ones_like(x)), (a + np.ones((2, 2)), x + 1)]
    for got, want in cases:
        assert got.dtype is np.float32
        np.testing.assert_allclose(got.asnumpy(), np.asarray(want, np.float32), rtol=1e-6)
    assert a.sum().shape == (1,)   # MXNet: a full reduction has shape (1,)
    assert float(a.sum().asscalar()) == pytest.approx(x.sum())
    np.testing.assert_allclose(a.mean(axis=0).asnumpy(), x.mean(0))


def test_in_place_arithmetic_keeps_identity_and_dtype():
    a = mx.nd.array([1.0, 2.0])
    ident = a
    a += 1
    a *= 3
    a -= 1
    a /= 2
    assert a is ident
    np.testing.assert_allclose(a.asnumpy(), [2.5, 4.0])
    i = mx.nd.array([1, 2], dtype="int32")
    i += 1
    assert i.dtype is np.int32
    np.testing.assert_array_equal(i.asnumpy(), [2, 3])


def test_scalar_conversions():
    assert mx.nd.array([3.5]).asscalar() == 3.5
    assert float(mx.nd.array([2.0])) == 2.0 and int(mx.nd.array([2.0])) == 2
    with pytest.raises(mx.ShapeError, match="one element"):
        mx.nd.array([1, 2]).asscalar()
    with pytest.raises(ValueError):
        bool(mx.nd.array([1, 2]))
    assert mx.nd.array([[1, 2, 3]]).reshape((3, 1)).shape == (3, 1)
    assert mx.nd.array([[1, 2, 3]]).reshape(3).shape == (3,)
    assert mx.nd.array([[1, 2, 3]]).tolist() == [[1.0, 2.0, 3.0]]


def test_imperative_operator_calls():
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], np.float32)
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    b = np.array([1.0, 0.0, -1.0, 2.0], np.float32)
    y = mx.nd.FullyConnected(mx.nd.array(x), mx.nd.array(w), mx.nd.array(b), num_hidden=4)
    np.testing.assert_allclose(y.asnumpy(), x @ w.T + b, rtol=1e-5)
    y = mx.nd.FullyConnected(data=mx.nd.array(x), weight=mx.nd.array(w), no_bias=True, num_hidden=4)
    np.testing.assert_allclose(y.asnumpy(), x @ w.T, rtol=1e-5)
    np.testing.assert_array_equal(mx.nd.Activation(mx.nd.array(x), act_type="relu").asnumpy(), np.maximum(x, 0))
    np.testing.assert_array_equal(mx.nd.array(x).relu().asnumpy(), np.maximum(x, 0))
    three = mx.nd.add_n(mx.nd.array(x), mx.nd.array(x), mx.nd.array(x))
    np.testing.assert_allclose(three.asnumpy(), 3 * x)
    np.testing.assert_allclose(mx.nd.elemwise_add(mx.nd.array(x), mx.nd.array(x)).asnumpy(), 2 * x)
    out = mx.nd.zeros((2, 3))
    res = mx.nd.relu(mx.nd.array(x), out=out)
    assert res is out
    np.testing.assert_array_equal(out.asnumpy(), np.maximum(x, 0))


def test_imperative_call_missing_input():
    with pytest.raises(mx.BindError, match=r"nd.FullyConnected.*weight, bias"):
        mx.nd.FullyConnected(mx.nd.ones((2, 3)), num_hidden=4)
    with pytest.raises(mx.AttributeValueError, match="num_hidden"):
        mx.nd.FullyConnected(mx.nd.ones((2, 3)), mx.nd.ones((4, 3)), mx.nd.ones(4), num_hidden="four")
    with pytest.raises(AttributeError):
        mx.nd.NoSuchOperatorAnywhere


def test_contexts_and_missing_devices():
    assert mx.cpu() == mx.cpu(0) and mx.cpu(0) != mx.gpu(0)
    assert repr(mx.gpu(5)) == "gpu(5)"
    assert mx.cpu().device.platform == "cpu"
    with mx.cpu(0):
        assert mx.current_context() == mx.cpu(0)
    ctx = mx.gpu(5)  # naming a device is fine; using it is not
    with pytest.raises(mx.DeviceError, match=r"gpu\(5\) does not exist.*available"):
        ctx.device
    with pytest.raises(mx.DeviceError, match=r"gpu\(5\)"):
        mx.nd.zeros((2,), ctx=mx.gpu(5))
    with pytest.raises(mx.DeviceError, match=r"gpu\(5\)"):
        mx.nd.ones((2,)).as_in_context(mx.gpu(5))
    with pytest.raises(mx.DeviceError, match=r"cpu\(7\)"):
        mx.nd.array([1], ctx=mx.cpu(7))
    with pytest.raises(mx.DeviceError, match="unknown device type"):
        mx.Context("quantum", 0)
    assert mx.num_gpus() >= 0


def test_integer_division_and_modulo_follow_mxnet():
    """MXNet keeps integer arrays integer (C++ truncation) and gives 0 for x % 0, imperatively and in graphs."""
    a = mx.nd.array([3, 4, -7], dtype="int32")
    assert (a / 2).dtype == np.int32
    np.testing.assert_array_equal((a / 2).asnumpy(), [1, 2, -3])
    np.testing.assert_array_equal((9 / a).asnumpy(), [3, 2, -1])
    np.testing.assert_array_equal((a % 3).asnumpy(), [0, 1, 2])
    np.testing.assert_array_equal((a % 0).asnumpy(), [0, 0, 0])
    np.testing.assert_array_equal((10 % a).asnumpy(), [1, 2, -4])
    b = a.copy()
    b /= 2
    np.testing.assert_array_equal(b.asnumpy(), [1, 2, -3])
    np.testing.assert_allclose((mx.nd.array([3.0, -7.0]) / 2).asnumpy(), [1.5, -3.5])
    x = mx.sym.var("x")
    for sym, want in [(x / 2, [1, 2, -3]), (mx.sym.elemwise_div(x, x), [1, 1, 1]),
                      (mx.sym.broadcast_div(x, x), [1, 1, 1])]:
        assert sym.infer_type(x="int32")[1] == [np.int32]
        out = sym.bind(mx.cpu(), args={"x": a}, grad_req="null").forward()[0]
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out.asnumpy(), want)


def test_making_arrays_of_new_shapes_compiles_nothing(caplog):
    """nd.array / zeros / ones / full of host data cast on the host: a script making many small
    arrays of new shapes (as MXNet's tests and data loaders do) pays no XLA compile for each."""
    import logging
    import jax
    import ml_dtypes
    made = []
    with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
        for n in range(13, 17):
            made += [mx.nd.array(np.arange(n, dtype=np.float64)), mx.nd.array([[1, 2]] * n, dtype="int8"),
                     mx.nd.zeros((n, 3)), mx.nd.ones((2, n), dtype="float16"), mx.nd.full((n,), 2.5),
                     mx.nd.array(np.ones(n), dtype=ml_dtypes.bfloat16)]
    compiles = [r.getMessage() for r in caplog.records if "ompil" in r.getMessage()]
    assert not compiles, compiles
    assert [np.dtype(a.dtype).name for a in made[:6]] == \
        ["float32", "int8", "float32", "float16", "float32", "bfloat16"]
    assert made[4].asnumpy().tolist() == [2.5] * 13 and made[3].shape == (2, 13)
    big = mx.nd.zeros((1 << 20) + 1)   # above HOST_FILL_LIMIT: filled on the device, same values
    assert big.shape == ((1 << 20) + 1,) and float(big.asnumpy().max()) == 0.0
