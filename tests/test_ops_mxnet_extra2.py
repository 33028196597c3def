"""MXNet 1.9.1 ops used by MXNet's test_operator.py: SVMOutput, BatchNorm_v1, _contrib_allclose,
_image_normalize, im2col/col2im and _contrib_boolean_mask, against numpy references (and values
checked against MXNet 1.9.1); gradients by finite differences or by the loss they differentiate."""
import numpy as np
import pytest

import xgraph as mx
from opcheck import check_numeric_gradient, grads
from opcheck_tensor import check_grad, check_low_precision, run
from xgraph.ops.attrs import FloatTuple

RNG = np.random.default_rng(47)
V = mx.sym.var


# -- SVMOutput ---------------------------------------------------------------------
def _svm_loss(x, label, margin, coef, linear):
    """The one-vs-all hinge loss whose gradient SVMOutput's backward is (numpy, for finite differences)."""
    y = np.where(np.arange(x.shape[-1]) == label[..., None], 1.0, -1.0)
    slack = np.maximum(margin - y * x, 0)
    return coef * np.sum(slack if linear else slack ** 2)


def _svm_backward(sym, x, label, head_scale=1.0):
    g = grads(sym, ["X"], [np.full(x.shape, head_scale, x.dtype)], X=x, L=label)
    return g["X"]


@pytest.mark.parametrize("linear", [False, True])
def test_svm_output_gradient_is_the_hinge_loss_gradient(linear):
    x = RNG.uniform(-1.5, 1.5, size=(6, 5)).astype(np.float32)
    label = RNG.integers(0, 5, size=(6,)).astype(np.float32)
    margin, coef = 0.7, 1.5
    sym = mx.sym.SVMOutput(V("X"), V("L"), margin=margin, regularization_coefficient=coef, use_linear=linear)
    assert sym.infer_shape(X=(6, 5))[0] == [(6, 5), (6,)]
    np.testing.assert_array_equal(run(sym, X=x, L=label)[0], x)             # identity forward
    got = _svm_backward(sym, x, label, head_scale=7.0)                       # the head gradient is ignored
    eps, x64, num = 1e-6, x.astype(np.float64), np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        plus, minus = x64.copy(), x64.copy()
        plus[idx] += eps
        minus[idx] -= eps
        num[idx] = (_svm_loss(plus, label, margin, coef, linear)
                    - _svm_loss(minus, label, margin, coef, linear)) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-5)
    g = grads(sym, ["L"], [np.ones(x.shape)], X=x, L=label)["L"]
    np.testing.assert_array_equal(g, np.zeros(6))                             # the label gets no gradient


def test_svm_output_matches_mxnet_and_nd_data():
    # MXNet 1.9.1: SVMOutput(margin=0.5, regularization_coefficient=2) on RandomState(0).uniform(-1, 1, (3, 4))
    x = np.random.RandomState(0).uniform(-1, 1, (3, 4)).astype(np.float32)
    label = np.array([0, 3, 1], np.float32)
    l2 = [[-1.609492, 3.721515, 2.822107, 2.3590655], [1.3892384, 3.167153, 1.5006977, 0.0],
          [5.709302, -2.932468, 4.3338003, 2.2311594]]
    l1 = [[-2, 2, 2, 2], [2, 2, 2, 0], [2, -2, 2, 2]]
    for linear, ref in ((False, l2), (True, l1)):
        sym = mx.sym.SVMOutput(V("X"), V("L"), margin=0.5, regularization_coefficient=2.0, use_linear=linear)
        np.testing.assert_allclose(_svm_backward(sym, x, label), ref, rtol=1e-6, atol=1e-6)
    # (N, T, C) data: one label per (n, t) row, classes on the last axis (MXNet 1.9.1's values)
    x3 = np.random.RandomState(1).uniform(-1, 1, (2, 2, 3)).astype(np.float32)
    l3 = np.array([[0, 2], [1, 1]], np.float32)
    sym = mx.sym.SVMOutput(V("X"), V("L"), margin=0.5, regularization_coefficient=2.0)
    assert sym.infer_shape(X=(2, 2, 3))[0][1] == (2, 2)
    ref3 = [[[-2.663824, 3.762596, 0], [0.41866052, 0, -5.2612915]],
            [[0, -3.2355142, 1.1741397], [2.310534, -2.6464438, 3.481756]]]
    np.testing.assert_allclose(_svm_backward(sym, x3, l3), ref3, rtol=1e-5, atol=1e-6)


def test_svm_output_bad_input():
    with pytest.raises(mx.XGraphError, match=r"'svm'.*SVMOutput.*label"):
        mx.sym.SVMOutput(V("X"), V("L"), name="svm").infer_shape(X=(4, 3), L=(5,))
    with pytest.raises(mx.AttributeValueError, match=r"'svm'.*SVMOutput.*margin"):
        mx.sym.SVMOutput(V("X"), V("L"), margin="wide", name="svm")


# -- BatchNorm_v1 ------------------------------------------------------------------
def _bn_args(shape):
    c = shape[1]
    return ({"data": RNG.normal(size=shape), "g": RNG.uniform(0.5, 2, c), "b": RNG.normal(size=c)},
            {"mm": RNG.normal(size=c), "mv": RNG.uniform(0.5, 2, c)})


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (4, 3)])
def test_batchnorm_v1_is_batchnorm_with_a_variance_output(shape):
    args, aux = _bn_args(shape)
    args = {k: v.astype(np.float32) for k, v in args.items()}
    aux = {k: v.astype(np.float32) for k, v in aux.items()}
    kw = dict(gamma=V("g"), beta=V("b"), moving_mean=V("mm"), moving_var=V("mv"), fix_gamma=False,
              output_mean_var=True, eps=1e-3, momentum=0.8)
    v1 = mx.sym.BatchNorm_v1(V("data"), name="bn1", **kw)
    v2 = mx.sym.BatchNorm(V("data"), name="bn2", **kw)
    assert v1.list_outputs() == ["bn1_output", "bn1_mean", "bn1_var"]
    assert v1.list_auxiliary_states() == ["mm", "mv"]
    axes = (0,) + tuple(range(2, len(shape)))
    for is_train in (True, False):
        out1 = run_bn(v1, args, aux, is_train)
        out2 = run_bn(v2, args, aux, is_train)
        np.testing.assert_allclose(out1[0], out2[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(out1[1], out2[1], rtol=1e-6, atol=1e-6)
        var = args["data"].var(axis=axes) if is_train else aux["mv"]
        np.testing.assert_allclose(out1[2], var, rtol=1e-5, atol=1e-6)          # v1: the variance
        np.testing.assert_allclose(out2[2], 1 / np.sqrt(var + 1e-3), rtol=1e-5)  # BatchNorm: the inverse std
    ex = mx.sym.BatchNorm_v1(V("data"), name="bn", momentum=0.8).simple_bind(mx.cpu(), data=shape)
    ex.arg_dict["data"][:] = args["data"]
    ex.forward(is_train=True)
    np.testing.assert_allclose(ex.aux_dict["bn_moving_mean"].asnumpy(), 0.2 * args["data"].mean(axis=axes),
                               rtol=1e-5, atol=1e-6)


def run_bn(sym, args, aux, is_train):
    ex = sym.bind(mx.cpu(), args=dict(args), aux_states={k: v.copy() for k, v in aux.items()}, grad_req="null")
    return [o.asnumpy() for o in ex.forward(is_train=is_train)]


@pytest.mark.parametrize("fix_gamma,use_global_stats", [(False, False), (True, False), (False, True)])
def test_batchnorm_v1_gradients(fix_gamma, use_global_stats):
    args, aux = _bn_args((2, 3, 2, 2))
    sym = mx.sym.BatchNorm_v1(V("data"), gamma=V("g"), beta=V("b"), moving_mean=V("mm"), moving_var=V("mv"),
                              fix_gamma=fix_gamma, use_global_stats=use_global_stats)
    check_numeric_gradient(sym, args, ["data", "g", "b"], aux=aux, rtol=1e-5, atol=1e-7)
    if fix_gamma:
        g = grads(sym, ["g"], [np.ones((2, 3, 2, 2))], aux=aux, **args)["g"]
        np.testing.assert_array_equal(g, np.zeros(3))


def test_batchnorm_v1_bad_input():
    with pytest.raises(mx.AttributeValueError, match=r"BatchNorm_v1.*unknown attribute 'axis'"):
        mx.sym.BatchNorm_v1(V("data"), axis=2)
    with pytest.raises(mx.XGraphError, match=r"'bn'.*BatchNorm_v1.*at least 2 dimensions"):
        mx.sym.BatchNorm_v1(V("data"), name="bn").infer_shape(data=(5,))


# -- _contrib_allclose -------------------------------------------------------------------
def test_allclose_matches_numpy_and_mxnet():
    for dtype, rtol, atol in ((np.float32, 1e-5, 1e-7), (np.float16, 1e-2, 1e-4)):
        a = RNG.normal(size=(3, 4)).astype(dtype)
        for b, expect in ((a + (1e-3 * rtol * np.abs(a)).astype(dtype), True), (a * dtype(1.5), False)):
            b = b.astype(dtype)
            out = mx.nd.contrib.allclose(mx.nd.array(a, dtype=dtype), mx.nd.array(b, dtype=dtype),
                                         rtol=rtol, atol=atol)
            assert out.shape == () and out.dtype == np.uint8                  # as MXNet 1.9.1
            assert int(out.asscalar()) == int(expect) == int(np.allclose(a, b, rtol, atol))
    nan = mx.nd.array([np.nan, 1.0])
    assert int(mx.nd.contrib.allclose(nan, nan).asscalar()) == 1
    assert int(mx.nd.contrib.allclose(nan, nan, equal_nan=False).asscalar()) == 0
    # MXNet's formula for infinities (numpy says False to both)
    inf = mx.nd.array([1.0, np.inf])
    assert int(mx.nd.contrib.allclose(inf, mx.nd.array([1.0, -np.inf])).asscalar()) == 1
    assert int(mx.nd.contrib.allclose(mx.nd.array([1.1]), mx.nd.array([1.0]), rtol=0.1, atol=0.0).asscalar()) == 0
    ints = mx.nd.array([1, 2], dtype="int32")
    assert int(mx.nd.contrib.allclose(ints, ints).asscalar()) == 1
    sym = mx.sym.contrib.allclose(V("a"), V("b"))
    assert sym.infer_shape(a=(2, 3))[1] == [()]
    assert run(sym, a=np.ones((2, 3), np.float32), b=np.ones((2, 3), np.float32))[0] == 1


def test_allclose_bad_input():
    with pytest.raises(mx.ShapeError, match=r"'ac'.*_contrib_allclose.*one shape"):
        mx.sym.contrib.allclose(V("a"), V("b"), name="ac").infer_shape(a=(2, 3), b=(3,))
    with pytest.raises(mx.DTypeError, match=r"_contrib_allclose"):
        mx.sym.contrib.allclose(V("a"), V("b")).infer_type(a="float32", b="float16")


# -- _image_normalize ------------------------------------------------------------------
@pytest.mark.parametrize("shape,mean,std", [((3, 5, 4), (0.0, 1.0, 2.0), (3.0, 2.0, 1.0)),
                                            ((2, 3, 4, 5), 0.25, 2.0), ((2, 1, 3, 3), (0.5,), 4.0)])
def test_image_normalize(shape, mean, std):
    x = RNG.uniform(0, 1, size=shape).astype(np.float32)
    caxis = len(shape) - 3
    bshape = (-1, 1, 1)
    ref = (x - np.broadcast_to(np.reshape(mean, bshape), (shape[caxis], 1, 1))) / np.reshape(std, bshape)
    sym = mx.sym.image.normalize(data=V("x"), mean=mean, std=std)
    np.testing.assert_allclose(run(sym, x=x)[0], ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mx.nd.image.normalize(mx.nd.array(x), mean=mean, std=std).asnumpy(), ref,
                               rtol=1e-6, atol=1e-6)
    g = grads(sym, ["x"], [np.ones(shape, np.float32)], x=x)["x"]
    np.testing.assert_allclose(g, np.broadcast_to(1 / np.reshape(std, bshape), shape), rtol=1e-6)
    check_grad(sym, {"x": x[..., :2, :2].copy()})


def test_image_normalize_alias_dtypes_and_json():
    x = (np.arange(12).reshape(3, 2, 2) * 20).astype(np.uint8)
    out = mx.nd._npx__image_normalize(mx.nd.array(x, dtype="uint8"), mean=(0.5, 1, 2), std=3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.asnumpy()[:, 1, 1], [19, 46, 72])          # MXNet 1.9.1 (truncated)
    check_low_precision(mx.sym.image.normalize(V("x"), mean=0.5, std=(1, 2, 3)),
                        {"x": RNG.uniform(0, 1, (3, 4, 4)).astype(np.float32)}, "float16")
    sym = mx.sym.image.normalize(V("x"), mean=0.5, std=(1, 2, 3), name="norm")
    back = mx.sym.load_json(sym.tojson())
    assert back.attr_dict()["norm"]["mean"] in ("0.5", "(0.5,)")
    assert FloatTuple().parse(0.5) == (0.5,) and FloatTuple().parse("0.5") == (0.5,)


@pytest.mark.parametrize("shape,kw,match", [
    ((4, 2, 2), dict(mean=0.0, std=1.0), "1 or 3 channels"),
    ((2, 2), dict(mean=0.0, std=1.0), r"\(C, H, W\)"),
    ((3, 2, 2), dict(mean=(1.0, 2.0), std=1.0), r"mean \(1.0, 2.0\) must have 1 or 3 values"),
    ((3, 2, 2), {}, r"mean \(0.0, 0.0, 0.0, 0.0\)")])          # MXNet's default refuses 3 channels too
def test_image_normalize_bad_input(shape, kw, match):
    with pytest.raises(mx.ShapeError, match=r"'nrm'.*_image_normalize.*" + match):
        mx.sym.image.normalize(V("x"), name="nrm", **kw).infer_shape(x=shape)


# -- im2col / col2im ------------------------------------------------------------------
def _im2col_ref(x, kernel, stride, dilate, pad):
    """MXNet's im2col as loops: rows c * prod(kernel) + kernel offset (row-major), columns the window positions."""
    n, c = x.shape[:2]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in pad])
    out_sp = [(s + 2 * q - d * (k - 1) - 1) // st + 1
              for s, k, st, d, q in zip(x.shape[2:], kernel, stride, dilate, pad)]
    cols = np.zeros((n, c * int(np.prod(kernel)), int(np.prod(out_sp))), x.dtype)
    for ci in range(c):
        for ki, koff in enumerate(np.ndindex(*kernel)):
            for li, pos in enumerate(np.ndindex(*out_sp)):
                src = tuple(p * st + o * d for p, st, o, d in zip(pos, stride, koff, dilate))
                cols[:, ci * int(np.prod(kernel)) + ki, li] = xp[(slice(None), ci) + src]
    return cols


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 6, 5), dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2), pad=(1, 0))),
    ((1, 2, 7), dict(kernel=(3,), stride=(2,), pad=(1,))),
    ((1, 1, 4, 3, 3), dict(kernel=(2, 2, 2)))])
def test_im2col_and_col2im_adjoint(shape, kw):
    nd = len(shape) - 2
    geom = [tuple(kw.get(k, (dflt,) * nd)) for k, dflt in (("kernel", 1), ("stride", 1), ("dilate", 1), ("pad", 0))]
    x = RNG.normal(size=shape).astype(np.float32)
    col = run(mx.sym.im2col(V("x"), **kw), x=x)[0]
    np.testing.assert_array_equal(col, _im2col_ref(x, *geom))
    c = RNG.normal(size=col.shape).astype(np.float32)
    im = run(mx.sym.col2im(V("c"), shape[2:], **kw), c=c)[0]
    assert im.shape == shape
    np.testing.assert_allclose(np.sum(col * c), np.sum(x * im), rtol=1e-5)     # <im2col x, c> = <x, col2im c>
    # each op's gradient is the other
    np.testing.assert_allclose(grads(mx.sym.im2col(V("x"), **kw), ["x"], [c], x=x)["x"], im, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads(mx.sym.col2im(V("c"), shape[2:], **kw), ["c"], [x], c=c)["c"],
                               _im2col_ref(x, *geom), rtol=1e-5, atol=1e-5)


def test_im2col_conv_and_numeric_gradients():
    x = RNG.normal(size=(2, 3, 5, 4)).astype(np.float32)
    w = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    kw = dict(kernel=(3, 3), stride=(2, 1), pad=(1, 1))
    col = mx.nd.im2col(mx.nd.array(x), **kw)
    conv = mx.nd.Convolution(mx.nd.array(x), mx.nd.array(w), num_filter=4, no_bias=True, **kw)
    via_col = np.einsum("ok,nkl->nol", w.reshape(4, -1), col.asnumpy()).reshape(conv.shape)
    np.testing.assert_allclose(via_col, conv.asnumpy(), rtol=1e-4, atol=1e-4)
    small = dict(kernel=(2, 2), stride=(1, 2), pad=(1, 0))
    check_grad(mx.sym.im2col(V("x"), **small), {"x": x[:1, :2, :3, :3].copy()})
    check_grad(mx.sym.col2im(V("c"), (3, 3), **small), {"c": RNG.normal(size=(1, 8, 4))})


def test_im2col_col2im_bad_input():
    with pytest.raises(mx.ShapeError, match=r"'c2i'.*col2im.*expected \(N, C \* 4, 6\)"):
        mx.sym.col2im(V("c"), (3, 4), kernel=(2, 2), name="c2i").infer_shape(c=(1, 8, 5))
    with pytest.raises(mx.ShapeError, match=r"'i2c'.*im2col.*kernel \(3,\)"):
        mx.sym.im2col(V("x"), kernel=(3,), name="i2c").infer_shape(x=(1, 2, 4, 4))
    with pytest.raises(mx.ShapeError, match=r"'i2c'.*im2col.*does not fit"):
        mx.sym.im2col(V("x"), kernel=(5, 5), name="i2c").infer_shape(x=(1, 2, 4, 4))
    with pytest.raises(mx.AttributeValueError, match=r"col2im.*output_size"):
        mx.sym.col2im(V("c"), kernel=(2, 2))


# -- _contrib_boolean_mask --------------------------------------------------------------
def test_boolean_mask_values_and_autograd():
    data = RNG.normal(size=(5, 3)).astype(np.float32)
    index = np.array([0, 2, 0, -0.5, 1], np.float32)
    x = mx.nd.array(data)
    x.attach_grad()
    head = RNG.normal(size=(3, 3)).astype(np.float32)
    with mx.autograd.record():
        out = mx.nd.contrib.boolean_mask(x, mx.nd.array(index))
    np.testing.assert_array_equal(out.asnumpy(), data[index != 0])
    out.backward(mx.nd.array(head))
    expect = np.zeros_like(data)
    expect[index != 0] = head
    np.testing.assert_array_equal(x.grad.asnumpy(), expect)
    # along axis 1 (MXNet 1.9.1 only takes axis 0), through the _npi alias
    cols = mx.nd._npi_boolean_mask(x, mx.nd.array([1, 0, 1]), axis=-1)
    np.testing.assert_array_equal(cols.asnumpy(), data[:, [0, 2]])
    empty = mx.nd.contrib.boolean_mask(x, mx.nd.zeros((5,)))
    assert empty.shape == (0, 3)


def test_boolean_mask_integer_data_gradient_accumulates():
    a = mx.nd.array(RNG.integers(0, 100, size=(6, 2)), dtype="int32")
    grad = mx.nd.zeros_like(a)
    mx.autograd.mark_variables([a], [grad], grad_reqs="add")
    keep = np.array([1, 0, 1, 1, 0, 0], np.int32)
    for _ in range(2):
        with mx.autograd.record():
            s = mx.nd.contrib.boolean_mask(a, mx.nd.array(keep, dtype="int32")).sum()
            s.backward()
    assert grad.dtype == np.int32
    np.testing.assert_array_equal(grad.asnumpy(), np.repeat(2 * keep[:, None], 2, axis=1))


def test_boolean_mask_in_a_symbol_graph_is_refused():
    sym = mx.sym.contrib.boolean_mask(V("d"), V("i"), name="bm")
    with pytest.raises(mx.UnsupportedFeatureError, match=r"'bm'.*_contrib_boolean_mask.*data-dependent"):
        sym.infer_shape(d=(3, 4), i=(3,))
    with pytest.raises(mx.UnsupportedFeatureError, match=r"'bm'.*data-dependent"):
        sym.simple_bind(mx.cpu(), d=(3, 4), i=(3,))
    with pytest.raises(mx.ShapeError, match=r"_contrib_boolean_mask.*1-D index as long as axis 0 of the data \(3\)"):
        mx.nd.contrib.boolean_mask(mx.nd.ones((3, 4)), mx.nd.ones((2,)))
