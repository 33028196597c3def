"""Indexing and ordering ops (take, pick, one_hot, gather_nd, scatter_nd, topk, sort, argsort)
against independent numpy references; gradients by finite differences."""
import numpy as np
import pytest

import xgraph as mx
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(21)
V = mx.sym.var


def test_take_modes_and_axis():
    a = RNG.normal(size=(4, 3)).astype(np.float32)
    idx = np.array([[0, 5], [-1, 2.7]], np.float32)
    for mode, ref_idx in [("clip", np.clip(idx.astype(int), 0, 3)), ("raise", np.clip(idx.astype(int), 0, 3)),
                          ("wrap", np.mod(idx.astype(int), 4))]:
        out = run(mx.sym.take(V("a"), V("i"), mode=mode), a=a, i=idx)[0]
        np.testing.assert_array_equal(out, a[ref_idx])
    out = run(mx.sym.take(V("a"), V("i"), axis=1), a=a, i=np.array([2, 0], np.float32))[0]
    np.testing.assert_array_equal(out, a[:, [2, 0]])
    assert mx.sym.take(V("a"), V("i"), axis=-1).infer_shape(a=(4, 3), i=(2, 5))[1] == [(4, 2, 5)]


def test_pick():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    i = np.array([0, 3, 9], np.float32)
    np.testing.assert_array_equal(run(mx.sym.pick(V("x"), V("i")), x=x, i=i)[0], x[[0, 1, 2], [0, 3, 3]])
    np.testing.assert_array_equal(run(mx.sym.pick(V("x"), V("i"), mode="wrap", keepdims=True), x=x, i=i)[0],
                                  x[[0, 1, 2], [0, 3, 1]][:, None])
    j = np.array([2, 0, 1, 1], np.float32)
    np.testing.assert_array_equal(run(mx.sym.pick(V("x"), V("j"), axis=0), x=x, j=j)[0], x[[2, 0, 1, 1], range(4)])
    s = mx.sym.pick(V("x"), axis=1, name="pk")
    assert s.list_arguments() == ["x", "pk_index"]
    assert s.infer_shape(x=(3, 4))[0] == [(3, 4), (3,)]


def test_one_hot():
    i = np.array([[0, 2], [4, -1]], np.float32)
    out = run(mx.sym.one_hot(V("i"), depth=3, on_value=5, off_value=-1, dtype="int32"), i=i)[0]
    ref = np.full((2, 2, 3), -1, np.int32)
    ref[0, 0, 0] = ref[0, 1, 2] = 5
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ref)


def test_gather_scatter_nd():
    data = RNG.normal(size=(3, 4, 2)).astype(np.float32)
    idx = np.array([[0, 2, -1], [1, 3, 0]], np.float32)
    out = run(mx.sym.gather_nd(V("d"), V("i")), d=data, i=idx)[0]
    np.testing.assert_array_equal(out, np.stack([data[0, 1], data[2, 3], data[2, 0]]))
    vals = RNG.normal(size=(3, 2)).astype(np.float32)
    idx2 = np.array([[0, 2, 1], [1, 3, 0]], np.float32)
    out = run(mx.sym.scatter_nd(V("v"), V("i"), shape=(3, 4, 2)), v=vals, i=idx2)[0]
    ref = np.zeros((3, 4, 2), np.float32)
    for k in range(3):
        ref[int(idx2[0, k]), int(idx2[1, k])] = vals[k]
    np.testing.assert_array_equal(out, ref)


def _np_topk(x, axis, k, ascend):
    order = np.argsort(x if ascend else -x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("ascend", [False, True])
def test_topk_all_return_types(axis, ascend):
    x = RNG.permutation(20).reshape(4, 5).astype(np.float32)
    vals, idx = _np_topk(x, axis, 2, ascend)
    v = V("x")
    got_v, got_i = run(mx.sym.topk(v, axis=axis, k=2, ret_typ="both", is_ascend=ascend), x=x)
    np.testing.assert_array_equal(got_v, vals)
    np.testing.assert_array_equal(got_i, idx.astype(np.float32))
    assert run(mx.sym.topk(v, axis=axis, k=2, is_ascend=ascend, dtype="int32"), x=x)[0].dtype == np.int32
    np.testing.assert_array_equal(run(mx.sym.topk(v, axis=axis, k=2, ret_typ="value", is_ascend=ascend), x=x)[0], vals)
    mask = np.zeros_like(x)
    np.put_along_axis(mask, idx, 1, axis=axis)
    np.testing.assert_array_equal(run(mx.sym.topk(v, axis=axis, k=2, ret_typ="mask", is_ascend=ascend), x=x)[0], mask)


def test_topk_flattened_and_whole_axis():
    x = RNG.permutation(12).reshape(3, 4).astype(np.float32)
    np.testing.assert_array_equal(run(mx.sym.topk(V("x"), axis=None, k=3, ret_typ="value"), x=x)[0],
                                  np.sort(x.ravel())[::-1][:3])
    assert run(mx.sym.topk(V("x"), k=0), x=x)[0].shape == (3, 4)
    assert mx.sym.topk(V("x"), k=2, ret_typ="both", name="tk").list_outputs() == ["tk_output0", "tk_output1"]
    assert mx.sym.topk(V("x"), k=2, ret_typ="value", name="tk").list_outputs() == ["tk_output"]


def test_sort_argsort():
    x = RNG.normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_array_equal(run(mx.sym.sort(V("x")), x=x)[0], np.sort(x, axis=-1))
    np.testing.assert_array_equal(run(mx.sym.sort(V("x"), axis=0, is_ascend=False), x=x)[0], -np.sort(-x, axis=0))
    np.testing.assert_array_equal(run(mx.sym.argsort(V("x"), axis=None), x=x)[0],
                                  np.argsort(x.ravel()).astype(np.float32))
    out = run(mx.sym.argsort(V("x"), is_ascend=False, dtype="int32"), x=x)[0]
    np.testing.assert_array_equal(out, np.argsort(-x, axis=-1))


def test_gradients_fd():
    a = RNG.normal(size=(4, 3))
    check_grad(mx.sym.take(V("a"), V("i")), {"a": a, "i": np.array([[0, 3], [0, 9]], np.float64)}, null=("i",))
    check_grad(mx.sym.pick(V("x"), V("i"), axis=0), {"x": a, "i": np.array([1, 1, 3])}, null=("i",))
    check_grad(mx.sym.gather_nd(V("x"), V("i")), {"x": a, "i": np.array([[0, 0, 2], [1, 1, 0]])}, null=("i",))
    check_grad(mx.sym.scatter_nd(V("v"), V("i"), shape=(3, 2)), {"v": RNG.normal(size=(2,)),
                                                                  "i": np.array([[0, 2], [1, 0]])}, null=("i",))
    x = RNG.permutation(12).reshape(3, 4) / 3.0
    check_grad(mx.sym.topk(V("x"), k=2, ret_typ="value"), {"x": x})
    check_grad(mx.sym.sort(V("x"), axis=0, is_ascend=False), {"x": x})


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    x = RNG.permutation(24).reshape(4, 6).astype(np.float32) / 4
    i = np.array([0, 2, 5, 1], np.float32)
    v = V("x")
    s = mx.sym.Group([mx.sym.take(v, V("i")), mx.sym.pick(v, V("i")), mx.sym.topk(v, k=3, ret_typ="value"),
                      mx.sym.sort(v, axis=0), mx.sym.gather_nd(v, mx.sym.reshape(V("i"), shape=(2, 2)))])
    check_low_precision(s, {"x": x, "i": i}, dtype)


def test_errors_name_the_node():
    with pytest.raises(mx.ShapeError, match=r"pk.*pick.*index has shape"):
        mx.sym.pick(V("x"), V("i"), name="pk").infer_shape(x=(3, 4), i=(4,))
    with pytest.raises(mx.ShapeError, match=r"sn.*scatter_nd.*expected"):
        mx.sym.scatter_nd(V("v"), V("i"), shape=(3, 2), name="sn").infer_shape(v=(3,), i=(2, 2))
    with pytest.raises(mx.ShapeError, match=r"g1.*gather_nd.*address 3 axes"):
        mx.sym.gather_nd(V("x"), V("i"), name="g1").infer_shape(x=(3, 4), i=(3, 2))
    with pytest.raises(mx.AttributeValueError, match=r"tk.*topk.*ret_typ"):
        mx.sym.topk(V("x"), ret_typ="values", name="tk")
    with pytest.raises(mx.AttributeValueError, match=r"oh.*one_hot.*depth"):
        mx.sym.one_hot(V("i"), name="oh")
    with pytest.raises(mx.ShapeError, match=r"tk2.*topk.*out of range"):
        mx.sym.topk(V("x"), axis=2, name="tk2").infer_shape(x=(3, 4))


def test_batch_take_clamps_indices_and_refuses_too_many():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = mx.nd.batch_take(mx.nd.array(a), mx.nd.array([1, -3, 9], dtype="int32")).asnumpy()
    np.testing.assert_array_equal(out, [1, 4, 11])
    sym = mx.sym.batch_take(mx.sym.var("a"), mx.sym.var("i"), name="bt")
    with pytest.raises(mx.ShapeError, match=r"node 'bt'.*indices has 4 elements but a has only 3 rows"):
        sym.infer_shape(a=(3, 4), i=(4,))
