"""Convolution strategies compute what the default lowering computes (outputs and gradients)."""
import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import load_case
from xgraph.lower import CONV_STRATEGY_ATTR


@pytest.mark.parametrize("strategy", ["nhwc", "matmul1x1", "im2col", "taps", "auto"])
@pytest.mark.parametrize("kw", [dict(kernel=(3, 3), pad=(1, 1)), dict(kernel=(1, 1), stride=(2, 2)),
                                dict(kernel=(3, 3), stride=(2, 2), dilate=(2, 2), pad=(2, 2)),
                                dict(kernel=(3, 3), num_group=2, pad=(1, 1)),
                                dict(kernel=(3, 3), num_group=4, stride=(2, 2), pad=(1, 1))])
def test_strategy_matches_default(strategy, kw):
    x = mx.sym.var("x")
    net = mx.sym.MakeLoss(mx.sym.sum(mx.sym.square(mx.sym.Convolution(x, num_filter=4, name="c", **kw))))
    rng = np.random.default_rng(0)
    res = {}
    for key, passes in (("ref", []), ("s", ["conv_strategy"])):
        ex = net.simple_bind(mx.cpu(), x=(2, 4, 7, 7), passes=passes, pass_options={"conv_strategy": strategy})
        for n, a in ex.arg_dict.items():
            a[:] = np.random.default_rng(len(n)).standard_normal(a.shape).astype(np.float32)
        out = ex.forward(is_train=False)[0].asnumpy()
        ex.forward(is_train=True)
        ex.backward()
        res[key] = (out, {n: g.asnumpy() for n, g in ex.grad_dict.items()})
        if passes:
            conv = [n for n in ex.optimized_graphs["train"].topo_order() if n.name == "c"][0]
            assert conv.user_attrs[CONV_STRATEGY_ATTR] == strategy
    np.testing.assert_allclose(res["s"][0], res["ref"][0], rtol=1e-4)
    for n in res["ref"][1]:
        np.testing.assert_allclose(res["s"][1][n], res["ref"][1][n], rtol=1e-4, atol=1e-3)


def test_strategy_on_fixture_network():
    case = load_case("net_resnet_small")
    ref = case.symbol.bind(mx.cpu(), args=case.args(), aux_states=dict(case.aux), grad_req="null", opt_level=2)
    ex = case.symbol.bind(mx.cpu(), args=case.args(), aux_states=dict(case.aux), grad_req="null",
                          passes=list(mx.passes.level_pipeline(2)) + ["conv_strategy"],
                          pass_options={"conv_strategy": "nhwc"}, freeze_params=True)
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), ref.forward()[0].asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dims,layout,groups,filters", [
    (1, None, 4, 4), (2, None, 4, 8), (2, "NHWC", 4, 4), (3, None, 2, 4), (2, None, 2, 6), (3, "NDHWC", 4, 8)])
def test_grouped_default_lowering_matches_native_conv(dims, layout, groups, filters):
    """On the CPU the op lowers grouped convolutions as taps; values and gradients equal lax.conv's."""
    import jax
    from jax import lax
    from xgraph.conv_strategy import grouped_conv_taps, prefers_taps
    assert prefers_taps(groups, 4 // groups) and not prefers_taps(1, 3) and not prefers_taps(2, 64)
    rng = np.random.default_rng(dims)
    size = (6,) * dims
    x = rng.standard_normal((2, *size, 4) if layout else (2, 4, *size)).astype(np.float32)
    net = mx.sym.Convolution(mx.sym.var("x"), kernel=(3,) * dims, stride=(2,) + (1,) * (dims - 1),
                             dilate=(1,) * (dims - 1) + (2,), pad=(1,) * dims, num_filter=filters,
                             num_group=groups, layout=layout, name="c")
    ex = net.simple_bind(mx.cpu(), x=x.shape, grad_req="write")
    w = rng.standard_normal(ex.arg_dict["c_weight"].shape).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    ex.arg_dict["c_weight"][:] = w
    ex.arg_dict["c_bias"][:] = b
    y = ex.forward(is_train=True, x=x)[0].asnumpy()
    head = rng.standard_normal(y.shape).astype(np.float32)
    ex.backward(mx.nd.array(head))

    sp = "DHW"[3 - dims:]
    lay = layout or "NC" + sp
    rhs = "OI" + sp if lay[1] == "C" else "O" + sp + "I"

    def ref(x, w):
        out = lax.conv_general_dilated(x, w, (2,) + (1,) * (dims - 1), [(1, 1)] * dims,
                                       rhs_dilation=(1,) * (dims - 1) + (2,), dimension_numbers=(lay, rhs, lay),
                                       feature_group_count=groups, precision="highest")
        return out + b.reshape((1, -1) + (1,) * dims if lay[1] == "C" else (1,) * (dims + 1) + (-1,))
    y_ref, pull = jax.vjp(ref, x, w)
    gx, gw = pull(head)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), gx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ex.grad_dict["c_weight"].asnumpy(), gw, rtol=1e-4, atol=1e-4)
    opt = mx.lower(net, x=x.shape).compile().as_text()
    assert "convolution(" not in opt        # XLA's grouped convolution is gone from the CPU executable


def test_grouped_conv_exports_for_cpu_and_cuda():
    net = mx.sym.Convolution(mx.sym.var("x"), kernel=(3, 3), pad=(1, 1), num_filter=4, num_group=4, no_bias=True,
                             name="dw")
    w = np.random.default_rng(1).standard_normal((4, 1, 3, 3)).astype(np.float32)
    art = mx.load_artifact(mx.export(net, {"dw_weight": w}, {}, inputs={"x": ((1, 4, 5, 5), "float32")},
                                     platforms=("cpu", "cuda")).data)
    x = np.random.default_rng(2).standard_normal((1, 4, 5, 5)).astype(np.float32)
    ex = net.bind(mx.cpu(), args={"x": x, "dw_weight": w}, grad_req="null")
    np.testing.assert_allclose(np.asarray(art(x=x)[0]), ex.forward()[0].asnumpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m,shape,filters,pad", [(2, (2, 3, 7, 9), 5, (1, 1)), (2, (1, 1, 3, 3), 1, (0, 0)),
                                                 (4, (3, 2, 5, 11), 3, (2, 1)), (4, (1, 4, 6, 5), 2, (0, 0))])
def test_winograd_matches_lax_conv(m, shape, filters, pad):
    """F(2x2,3x3) and F(4x4,3x3): values, data and weight gradients equal lax.conv's (odd sizes, any padding)."""
    import jax
    from jax import lax
    from xgraph.conv_strategy import winograd_conv
    rng = np.random.default_rng(m + shape[2])
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((filters, shape[1], 3, 3)).astype(np.float32)

    def ref(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), [(q, q) for q in pad], precision="highest",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))
    def value_and_grads(f):
        def run(x, w, head):
            y, pull = jax.vjp(f, x, w)
            return (y, *pull(head))
        return jax.jit(run)
    head = rng.standard_normal(ref(x, w).shape).astype(np.float32)
    want = value_and_grads(ref)(x, w, head)
    got = value_and_grads(lambda x, w: winograd_conv(x, w, pad, m))(x, w, head)
    tol = dict(rtol=1e-4, atol=1e-4 if m == 2 else 5e-4)
    for g, r in zip(got, want):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, **tol)


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_with_a_constant_weight_transforms_it_on_the_host_to_the_same_values(m):
    """Frozen parameters reach the lowering as numpy constants: G g G^T is then computed on the host
    (float64) instead of in the program, and the result equals the traced weight's."""
    import jax
    from jax import lax
    from xgraph.conv_strategy import _filter_transform, WINOGRAD, winograd_conv
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 9, 7)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    const = jax.jit(lambda x: winograd_conv(x, w, (1, 1), m))(x)
    traced = jax.jit(lambda x, w: winograd_conv(x, w, (1, 1), m))(x, w)
    ref = lax.conv_general_dilated(x, w, (1, 1), [(1, 1), (1, 1)], precision="highest")
    np.testing.assert_allclose(const, ref, rtol=1e-4, atol=1e-4 if m == 2 else 5e-4)
    np.testing.assert_allclose(const, traced, rtol=1e-4, atol=1e-4)   # the host transform is float64
    host = _filter_transform(w, WINOGRAD[m][1], np.float32)
    assert not isinstance(host, jax.core.Tracer) and host.shape == ((m + 2) ** 2, 5, 6)


def test_winograd_low_precision_computes_in_float32():
    import jax
    import jax.numpy as jnp
    from xgraph.conv_strategy import winograd_conv
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    conv = jax.jit(winograd_conv, static_argnums=(2, 3))
    want = np.asarray(conv(x, w, (1, 1), 2))
    for dt in (jnp.float16, jnp.bfloat16):
        y = conv(jnp.asarray(x, dt), jnp.asarray(w, dt), (1, 1), 4)
        assert y.dtype == dt
        np.testing.assert_allclose(np.asarray(y, np.float32), want, rtol=0.05, atol=0.1 if dt == jnp.float16 else 0.3)


@pytest.mark.parametrize("strategy", ["winograd2", "winograd4"])
def test_winograd_strategy_through_the_pass(strategy):
    """Bound with the pass: outputs and gradients (bias included) equal the default lowering's."""
    x = mx.sym.var("x")
    net = mx.sym.MakeLoss(mx.sym.sum(mx.sym.square(
        mx.sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=3, name="c"))))
    res = {}
    for key, passes in (("ref", []), ("s", ["conv_strategy"])):
        ex = net.simple_bind(mx.cpu(), x=(2, 2, 5, 7), passes=passes, pass_options={"conv_strategy": strategy})
        for n, a in ex.arg_dict.items():
            a[:] = np.random.default_rng(len(n)).standard_normal(a.shape).astype(np.float32)
        ex.forward(is_train=True)
        ex.backward()
        res[key] = {n: g.asnumpy() for n, g in ex.grad_dict.items()}
    for n in res["ref"]:
        np.testing.assert_allclose(res["s"][n], res["ref"][n], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kw", [dict(kernel=(3, 3), stride=(2, 2)), dict(kernel=(5, 5)), dict(kernel=(3, 3), num_group=2),
                                dict(kernel=(3, 3), dilate=(2, 2)), dict(kernel=(1, 1)),
                                dict(kernel=(3, 3), layout="NHWC")])
def test_winograd_falls_back_to_lax(kw):
    from xgraph.conv_strategy import applicable, resolve
    p = {**dict(stride=(), dilate=(), pad=(), num_group=1, layout=None), **kw}
    for s in ("winograd2", "winograd4"):
        assert not applicable(s, p, 4) and resolve(s, p, 4, 4) == "lax"
    ok = dict(kernel=(3, 3), stride=(1, 1), dilate=(), pad=(1, 1), num_group=1, layout="NCHW")
    assert applicable("winograd4", ok, 4) and not applicable("winograd4", ok, 5)
