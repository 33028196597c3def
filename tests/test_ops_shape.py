"""Shape operators against MXNet fixtures and numpy references."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry
from xgraph.ops.shape import reshape_shape
from mxnet_cases import check_inference, check_training, load_case
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("name", ["reshape_special_codes", "transpose", "concat", "split_slicechannel",
                                  "slice_axis", "clip_where", "expand_dims_flatten"])
def test_fixture(name):
    case = load_case(name)
    check_inference(case)
    check_training(case)


def test_aliases():
    for alias, name in [("flatten", "Flatten"), ("reshape", "Reshape"), ("concat", "Concat"),
                        ("split", "SliceChannel"), ("cast", "Cast"), ("swapaxes", "SwapAxis")]:
        assert registry.get(alias) is registry.get(name)


@pytest.mark.parametrize("dshape,spec,reverse,want", [
    ((2, 3, 4), (4, 0, 2), False, (4, 3, 2)),
    ((2, 3, 4), (2, 0, 0), False, (2, 3, 4)),
    ((2, 3, 4), (6, 1, -1), False, (6, 1, 4)),
    ((2, 3, 4), (3, -1, 8), False, (3, 1, 8)),
    ((2, 3, 4), (-1,), False, (24,)),
    ((2, 3, 4), (-2,), False, (2, 3, 4)),
    ((2, 3, 4), (2, -2), False, (2, 3, 4)),
    ((2, 3, 4), (-2, 1, 1), False, (2, 3, 4, 1, 1)),
    ((2, 3, 4), (-3, 4), False, (6, 4)),
    ((2, 3, 4, 5), (-3, -3), False, (6, 20)),
    ((2, 3, 4), (0, -3), False, (2, 12)),
    ((2, 3, 4), (-3, -2), False, (6, 4)),
    ((2, 3, 4), (-4, 1, 2, -2), False, (1, 2, 3, 4)),
    ((2, 3, 4), (2, -4, -1, 3, -2), False, (2, 1, 3, 4)),
    ((10, 5, 4), (-1, 0), False, (40, 5)),
    ((10, 5, 4), (-1, 0), True, (50, 4)),
    ((2, 3, 4), (0, -1), True, (3, 8)),
])
def test_reshape_codes(dshape, spec, reverse, want):
    assert reshape_shape(dshape, spec, reverse) == want
    x = np.arange(np.prod(dshape), dtype=np.float32).reshape(dshape)
    out = run(mx.sym.Reshape(mx.sym.var("x"), shape=spec, reverse=reverse), x=x)[0]
    np.testing.assert_array_equal(out, x.reshape(want))


def test_reshape_legacy_target_shape():
    s = mx.sym.Reshape(mx.sym.var("x"), target_shape=(0, 4))
    assert s.infer_shape(x=(2, 3, 4))[1] == [(6, 4)]
    s = mx.sym.Reshape(mx.sym.var("x"), target_shape=(5, 0), keep_highest=True)
    assert s.infer_shape(x=(2, 3, 4))[1] == [(2, 12)]


@pytest.mark.parametrize("spec,match", [
    ((5, -1), "not a multiple"), ((-1, -1), "only one dimension"), ((-5,), "not a valid code"),
    ((-3, -3, -3), "needs two input dimensions"), ((-4, 5, -1, -2), "do not divide"),
    ((-4, -1, -1), "cannot both be -1"), ((7, 7), "has 49 elements"), ((0, 0, 0, 0), "no input dimension left")])
def test_reshape_errors(spec, match):
    with pytest.raises(mx.ShapeError, match=rf"rs.*Reshape.*{match}"):
        mx.sym.Reshape(mx.sym.var("x"), shape=spec, name="rs").infer_shape(x=(2, 3, 4))


def test_transpose_swapaxis_flatten_expand_squeeze():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    v = mx.sym.var("x")
    np.testing.assert_array_equal(run(mx.sym.transpose(v, axes=(1, -1, 0)), x=x)[0], x.transpose(1, 2, 0))
    np.testing.assert_array_equal(run(mx.sym.transpose(v), x=x)[0], x.transpose())
    np.testing.assert_array_equal(run(mx.sym.SwapAxis(v, dim1=0, dim2=2), x=x)[0], x.swapaxes(0, 2))
    np.testing.assert_array_equal(run(mx.sym.flatten(v), x=x)[0], x.reshape(2, 12))
    np.testing.assert_array_equal(run(mx.sym.expand_dims(v, axis=-2), x=x)[0], x[:, :, None, :])
    y = x[:, None, :1, :]
    assert run(mx.sym.squeeze(v), x=y)[0].shape == (2, 4)
    assert run(mx.sym.squeeze(v, axis=(1,)), x=y)[0].shape == (2, 1, 4)
    assert run(mx.sym.squeeze(v), x=np.ones((1, 1), np.float32))[0].shape == (1,)


def test_concat_split_names_and_inference():
    cat = mx.sym.Concat(mx.sym.var("a"), mx.sym.var("b"), dim=0, name="c")
    assert cat.attr_dict()["c"]["num_args"] == "2"
    arg_shapes, out_shapes, _ = cat.infer_shape(a=(2, 3), b=(4, 3))
    assert out_shapes == [(6, 3)]
    sp = mx.sym.split(mx.sym.var("x"), num_outputs=2, axis=-1, name="sp")
    assert sp.list_outputs() == ["sp_output0", "sp_output1"]
    assert sp.infer_shape(x=(2, 6))[1] == [(2, 3), (2, 3)]
    one = mx.sym.SliceChannel(mx.sym.var("x"), num_outputs=1, name="one")
    assert one.list_outputs() == ["one_output0"]


def test_slice_steps_and_none():
    x = np.arange(5 * 6 * 4, dtype=np.float32).reshape(5, 6, 4)
    v = mx.sym.var("x")
    cases = [((0, None), (None, 5), (2, 2)), ((None, None), (None, None), (-1, -2)),
             ((4, -1), (0, 0), (-2, -3)), ((-4,), (None,), (3,)), ((1, 2, 3), (4, 5, 4), None)]
    for begin, end, step in cases:
        kw = {"begin": begin, "end": end}
        if step is not None:
            kw["step"] = step
        idx = tuple(slice(b, e, s) for b, e, s in zip(begin, end, step or (None,) * len(begin)))
        np.testing.assert_array_equal(run(mx.sym.slice(v, **kw), x=x)[0], x[idx], err_msg=str(kw))
    np.testing.assert_array_equal(run(mx.sym.slice_axis(v, axis=0, begin=-3, end=-1), x=x)[0], x[-3:-1])
    np.testing.assert_array_equal(run(mx.sym.slice_axis(v, axis=2, begin=1, end=None), x=x)[0], x[:, :, 1:])
    with pytest.raises(mx.ShapeError, match=r"sl.*select nothing"):
        mx.sym.slice(v, begin=(3,), end=(1,), name="sl").infer_shape(x=(5, 6))
    with pytest.raises(mx.ShapeError, match=r"sa.*select nothing"):
        mx.sym.slice_axis(v, axis=0, begin=2, end=2, name="sa").infer_shape(x=(5, 6))


def test_clip_where_cast_likes():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    y = RNG.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(run(mx.sym.clip(mx.sym.var("x"), a_min=-0.2, a_max=0.3), x=x)[0],
                                  np.clip(x, -0.2, 0.3))
    cond = np.array([1, 0, 1], np.float32)
    out = run(mx.sym.where(mx.sym.var("c"), mx.sym.var("x"), mx.sym.var("y")), c=cond, x=x, y=y)[0]
    np.testing.assert_array_equal(out, np.where(cond[:, None] != 0, x, y))
    out = run(mx.sym.Cast(mx.sym.var("x"), dtype="float16"), x=x)[0]
    assert out.dtype == np.float16
    s = mx.sym.cast(mx.sym.var("x"), dtype="int32")
    assert s.infer_type(x=np.float32)[1] == [np.dtype(np.int32)]
    np.testing.assert_array_equal(run(mx.sym.zeros_like(mx.sym.var("x")), x=x)[0], np.zeros_like(x))
    np.testing.assert_array_equal(run(mx.sym.ones_like(mx.sym.var("x")), x=x)[0], np.ones_like(x))


def test_gradients_fd():
    v = mx.sym.var("x")
    data = {"x": RNG.normal(size=(2, 3, 2))}
    check_grad(mx.sym.Reshape(mx.sym.transpose(v, axes=(2, 0, 1)), shape=(-3, 0)), data)
    check_grad(mx.sym.slice(v, begin=(None, 2), end=(None, None), step=(1, -2)) * 2
               + mx.sym.slice_axis(mx.sym.SwapAxis(v, dim1=1, dim2=2), axis=2, begin=1, end=None), data)
    parts = mx.sym.split(v, num_outputs=2, axis=2, squeeze_axis=True)
    check_grad(mx.sym.Concat(parts[0], mx.sym.expand_dims(parts[1], axis=0).flatten().reshape(shape=(2, 3)) * 3, dim=0),
               data)
    c, a, b = mx.sym.var("c"), mx.sym.var("a"), mx.sym.var("b")
    xs = RNG.normal(size=(3, 2))
    check_grad(mx.sym.where(c, a, b) + mx.sym.clip(a, a_min=-0.5, a_max=0.5),
               {"c": np.array([1.0, 0.0, 1.0]), "a": np.where(np.abs(xs - 0.5) < 0.05, 0.2, xs),
                "b": RNG.normal(size=(3, 2))}, null=("c",))


def test_where_condition_gets_zero_gradient():
    c, a, b = mx.sym.var("c"), mx.sym.var("a"), mx.sym.var("b")
    s = mx.sym.where(c, a, b)
    args = {"c": mx.nd.array([[1, 0], [0, 1]]), "a": mx.nd.ones((2, 2)), "b": mx.nd.zeros((2, 2))}
    grads = {k: mx.nd.ones((2, 2)) for k in args}
    ex = s.bind(mx.cpu(), args=args, args_grad=grads)
    ex.forward(is_train=True)
    ex.backward([mx.nd.ones((2, 2))])
    np.testing.assert_array_equal(ex.grad_dict["c"].asnumpy(), np.zeros((2, 2)))
    np.testing.assert_array_equal(ex.grad_dict["a"].asnumpy(), [[1, 0], [0, 1]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    v = mx.sym.var("x")
    s = mx.sym.Group([mx.sym.Reshape(v, shape=(-1,)), mx.sym.transpose(v), mx.sym.clip(v, a_min=-1, a_max=1),
                      mx.sym.slice_axis(v, axis=1, begin=1, end=3), mx.sym.Concat(v, v, dim=0)])
    check_low_precision(s, {"x": RNG.normal(size=(2, 4)).astype(np.float32)}, dtype)


def test_shape_errors_name_the_node():
    v = mx.sym.var("x")
    with pytest.raises(mx.ShapeError, match=r"tr.*transpose.*must list all 3 axes"):
        mx.sym.transpose(v, axes=(0, 1), name="tr").infer_shape(x=(2, 3, 4))
    with pytest.raises(mx.ShapeError, match=r"cat.*Concat.*does not match"):
        mx.sym.Concat(v, mx.sym.var("y"), dim=1, name="cat").infer_shape(x=(2, 3), y=(3, 3))
    with pytest.raises(mx.ShapeError, match=r"spl.*SliceChannel.*cannot be split"):
        mx.sym.split(v, num_outputs=4, name="spl").infer_shape(x=(2, 6))
    with pytest.raises(mx.ShapeError, match=r"ed.*expand_dims.*out of range"):
        mx.sym.expand_dims(v, axis=4, name="ed").infer_shape(x=(2, 6))
    with pytest.raises(mx.ShapeError, match=r"sq.*squeeze.*not 1"):
        mx.sym.squeeze(v, axis=0, name="sq").infer_shape(x=(2, 6))
    with pytest.raises(mx.ShapeError, match=r"wh.*where.*condition"):
        mx.sym.where(v, mx.sym.var("a"), mx.sym.var("b"), name="wh").infer_shape(x=(4,), a=(3, 2), b=(3, 2))


def test_tile_with_empty_reps_is_the_identity_and_one_hot_depth_zero_is_empty():
    x = mx.nd.array(np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(mx.nd.tile(x, reps=()).asnumpy(), x.asnumpy())
    assert mx.nd.one_hot(mx.nd.array([1, 2]), depth=0).shape == (2, 0)


def test_slice_partial_inference_keeps_unknown_axes_unknown():
    """A sliced axis of unknown size stays unknown (MXNet), the known ones are sliced; -1 in __shape__ is unknown."""
    v = mx.sym.var("data", shape=(0, 20))
    assert mx.sym.slice(v, begin=(None, 3), end=(5, 10)).infer_shape_partial()[1] == [(0, 7)]
    assert mx.sym.slice(v, begin=(2, 3), end=(None, 10), step=(3, 3)).infer_shape_partial()[1] == [(0, 3)]
    w = mx.sym.var("data", shape=(10, 0))
    assert mx.sym.slice_axis(w, axis=1, begin=0, end=5).infer_shape_partial()[1] == [(10, 0)]
    assert mx.sym.slice_axis(w, axis=0, begin=0, end=5).infer_shape_partial()[1] == [(5, 0)]
    with mx.np_shape():
        u = mx.sym.var("data", shape=(-1, 20))
        assert mx.sym.slice(u, begin=(None, 3), end=(5, 10)).infer_shape_partial()[1] == [(-1, 7)]
    with pytest.raises(mx.ShapeError, match=r"variable 'bad': __shape__"):
        mx.sym.var("bad", shape=(-2, 3)).infer_shape_partial()
