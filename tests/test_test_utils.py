"""mx.test_utils, mx.base and mx.util: MXNet's testing helpers and small facades, on real graphs."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from xgraph import test_utils as tu
from xgraph.errors import UnsupportedFeatureError, XGraphError


def test_assert_almost_equal_uses_dtype_tolerances_and_names_the_worst_element():
    a = np.ones((3, 4), np.float32)
    tu.assert_almost_equal(a, a + 1e-6)                     # float32 default rtol 1e-4 / atol 1e-3
    assert not tu.almost_equal(a, a + 1.0)
    with pytest.raises(AssertionError, match=r"error .* exceeds tolerance .* at got\[0,0\]"):
        tu.assert_almost_equal(a, a + np.eye(3, 4, dtype=np.float32), names=("got", "want"))
    assert tu.same(np.arange(3), mx.nd.array([0, 1, 2]).asnumpy())


def test_check_symbolic_forward_and_backward_on_fully_connected():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    net = mx.sym.FullyConnected(mx.sym.var("x"), mx.sym.var("w"), mx.sym.var("b"), num_hidden=3)
    tu.check_symbolic_forward(net, {"x": x, "w": w, "b": b}, [x @ w.T + b], rtol=1e-4, atol=1e-4)
    og = rng.standard_normal((4, 3))
    tu.check_symbolic_backward(net, {"x": x, "w": w, "b": b}, [og],
                               {"x": og @ w, "w": og.T @ x, "b": og.sum(0)}, rtol=1e-4, atol=1e-4)
    with pytest.raises(AssertionError):
        tu.check_symbolic_forward(net, {"x": x, "w": w, "b": b}, [x @ w.T], rtol=1e-4, atol=1e-4)


def test_check_numeric_gradient_agrees_and_catches_a_wrong_gradient():
    x = mx.sym.var("x")
    tu.check_numeric_gradient(mx.sym.tanh(x) * x, [np.random.default_rng(1).standard_normal((3, 4))],
                              numeric_eps=1e-3, rtol=1e-2, atol=1e-3)
    # BlockGrad's gradient is zero, the numeric one is not: the check must fail
    with pytest.raises(AssertionError):
        tu.check_numeric_gradient(mx.sym.BlockGrad(x) * x, [np.ones((2, 2)) * 0.7],
                                  numeric_eps=1e-3, rtol=1e-2, atol=1e-3)


def test_rand_helpers_shapes_and_sparse_refusal():
    assert len(tu.rand_shape_nd(4, dim=3)) == 4
    assert all(1 <= d <= 3 for d in tu.rand_shape_3d(3, 3, 3))
    arr = tu.rand_ndarray((2, 3), dtype="float16")
    assert arr.shape == (2, 3) and arr.dtype == np.float16
    with pytest.raises(UnsupportedFeatureError, match="sparse"):
        tu.rand_ndarray((2, 3), stype="csr")
    assert tu.np_reduce(np.ones((2, 3)), 1, True, np.sum).shape == (2, 1)


def test_base_and_util_facades():
    assert mx.base.MXNetError is XGraphError
    assert mx.base.py_str(b"abc") == "abc" and isinstance(1.5, mx.base.numeric_types)
    assert not mx.util.is_np_shape()
    with mx.util.np_shape(True):
        assert mx.util.is_np_shape()
    assert not mx.util.is_np_shape()

    @mx.use_np_shape
    def f():
        return mx.is_np_shape()
    assert f() is True and not mx.is_np_shape()


def test_environment_restores_variables():
    import os
    os.environ.pop("XG_TEST_ENV", None)
    with tu.environment("XG_TEST_ENV", "1"):
        assert os.environ["XG_TEST_ENV"] == "1"
    assert "XG_TEST_ENV" not in os.environ


def _numeric_both_ways(sym, loc, aux=None, train=True):
    """The batched (vmapped) and the per-element finite differences of one executor."""
    exe = sym.bind(mx.cpu(), args={k: mx.nd.array(v) for k, v in loc.items()}, grad_req="null",
                   aux_states=None if aux is None else {k: mx.nd.array(v) for k, v in aux.items()})
    loc = {k: np.asarray(v, np.float32) for k, v in loc.items()}
    batched = tu._batched_numeric_grad(exe, loc, aux, 1e-3, train, np.float32)
    looped = tu._looped_numeric_grad(exe, loc, aux, 1e-3, train, np.float32)
    assert batched is not None
    return batched, looped


def test_batched_numeric_grad_equals_the_per_element_loop_on_batchnorm_and_two_outputs():
    r = np.random.default_rng(0)
    x = mx.sym.var("x")
    bn = mx.sym.BatchNorm(x, name="bn", fix_gamma=False)
    loc = {"x": r.standard_normal((4, 3, 3)), "bn_gamma": r.random(3) + .5, "bn_beta": r.random(3)}
    aux = {"bn_moving_mean": r.random(3), "bn_moving_var": r.random(3) + 1}
    batched, looped = _numeric_both_ways(bn * bn, loc, aux)
    for k in loc:
        np.testing.assert_array_equal(batched[k], looped[k])
    assert np.abs(batched["x"]).max() > 0
    s = mx.sym.SliceChannel(x, num_outputs=2, axis=1)          # two outputs: the first is differentiated
    batched, looped = _numeric_both_ways(mx.sym.Group([s[0] * s[1], s[0]]), {"x": r.standard_normal((4, 10))})
    np.testing.assert_array_equal(batched["x"], looped["x"])
    tu.check_numeric_gradient(mx.sym.sin(s[0]) * s[1], [r.standard_normal((4, 10))], numeric_eps=1e-3,
                              rtol=1e-2, atol=1e-3)


def test_batched_numeric_gradient_still_catches_a_wrong_gradient():
    x = mx.sym.var("x")
    with pytest.raises(AssertionError, match="NUMERICAL_x"):
        tu.check_numeric_gradient(mx.sym.BlockGrad(x) * x, [np.ones((5, 8)) * 0.7],
                                  numeric_eps=1e-3, rtol=1e-2, atol=1e-3)
    assert not tu._batchable(mx.sym.Dropout(x, p=0.5).graph)   # random draws: the per-element loop


def test_numeric_gradient_of_every_input_is_one_program_shared_by_rebuilt_symbols():
    import importlib
    lower = importlib.import_module("xgraph.lower")     # the module (mx.lower is not it)
    r = np.random.default_rng(2)

    def programs():
        return sum(1 for k in lower._FN_CACHE if k[-1] == "numeric_grad")

    loc = {"data": r.standard_normal((4, 5)), "gamma": r.random(5) + .5, "beta": r.random(5)}
    before = programs()
    for req in ("write", "add"):     # each call builds its loss symbol anew, with new op names
        ln = mx.sym.LayerNorm(mx.sym.var("data"), mx.sym.var("gamma"), mx.sym.var("beta"), axis=-1)
        tu.check_numeric_gradient(ln, loc, grad_nodes={k: req for k in loc}, numeric_eps=1e-3, rtol=1e-2,
                                  atol=1e-3)
    assert programs() == before + 1
    # small and large inputs together, equal to the per-element loop
    batched, looped = _numeric_both_ways(ln * ln, loc)
    for k in loc:
        # bit-equal on jax 0.10; jax 0.12 reduces the vmapped LayerNorm in another order, and one ulp
        # of the float32 loss (~30 here) is ~2e-3 once divided by 2 * eps (measured up to 1.9e-3)
        np.testing.assert_allclose(batched[k], looped[k], rtol=1e-3, atol=2e-3)
