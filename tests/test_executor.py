"""The executor: MXNet's bind/simple_bind/forward/backward semantics, fused steps, caching, gradients."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

import xgraph as mx
from xgraph.lower import TRACE_COUNTS
from xgraph.ops import registry

CASES = os.path.join(os.path.dirname(__file__), "fixtures", "mxnet", "cases")
RS = np.random.RandomState(0)


def mlp_loss():
    data = mx.sym.var("data")
    h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=5, name="fc1"), act_type="tanh", name="a1")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="fc2"), name="sm")


def fill(ex, seed=0):
    rs = np.random.RandomState(seed)
    for name, arr in ex.arg_dict.items():
        if name.endswith("label"):
            arr[:] = rs.randint(0, 3, arr.shape).astype(np.float32)
        else:
            arr[:] = rs.randn(*arr.shape).astype(np.float32)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- binding -------------------------------------------------------------------------------------
def test_simple_bind_allocates_everything():
    ex = mlp_loss().simple_bind(mx.cpu(), data=(4, 6))
    assert list(ex.arg_dict) == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "sm_label"]
    assert {k: v.shape for k, v in ex.arg_dict.items()} == {
        "data": (4, 6), "fc1_weight": (5, 6), "fc1_bias": (5,), "fc2_weight": (3, 5), "fc2_bias": (3,),
        "sm_label": (4,)}
    assert all(v.dtype == np.float32 for v in ex.arg_dict.values())
    assert all(g is not None and g.shape == ex.arg_dict[k].shape for k, g in ex.grad_dict.items())
    assert ex.aux_dict == {}
    assert list(ex.output_dict) == ["sm_output"]
    assert ex.outputs[0].shape == (4, 3)
    assert [a.shape for a in ex.arg_arrays] == [a.shape for a in ex.arg_dict.values()]
    assert ex.grad_req == {k: "write" for k in ex.arg_dict}


def test_simple_bind_type_dict_and_grad_req_variants():
    net = mlp_loss()
    ex = net.simple_bind(mx.cpu(), data=(2, 6), type_dict={"data": "float16"}, grad_req="null")
    assert all(v.dtype == np.float16 for v in ex.arg_dict.values())
    assert all(g is None for g in ex.grad_dict.values())
    ex = net.simple_bind(mx.cpu(), data=(2, 6), grad_req={"fc1_weight": "write", "fc2_weight": "add"})
    assert ex.grad_req == {"data": "null", "fc1_weight": "write", "fc1_bias": "null", "fc2_weight": "add",
                           "fc2_bias": "null", "sm_label": "null"}
    assert [k for k, g in ex.grad_dict.items() if g is not None] == ["fc1_weight", "fc2_weight"]
    ex = net.simple_bind(mx.cpu(), data=(2, 6), grad_req=["null", "write", "write", "write", "write", "null"])
    assert ex.grad_dict["data"] is None and ex.grad_dict["fc1_weight"] is not None
    with pytest.raises(mx.BindError, match="expected one of"):
        net.simple_bind(mx.cpu(), data=(2, 6), grad_req="sometimes")
    with pytest.warns(UserWarning, match="unknown arguments"):    # ignored, as MXNet does
        ex = net.simple_bind(mx.cpu(), data=(2, 6), grad_req={"nope": "write", "fc1_weight": "write"})
    assert [k for k, g in ex.grad_dict.items() if g is not None] == ["fc1_weight"]


def test_bind_with_arrays_list_or_dict():
    net = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=2, name="fc")
    x, w, b = RS.randn(3, 4).astype(np.float32), RS.randn(2, 4).astype(np.float32), np.ones(2, np.float32)
    for args in ({"x": mx.nd.array(x), "fc_weight": mx.nd.array(w), "fc_bias": mx.nd.array(b)},
                 [mx.nd.array(x), mx.nd.array(w), mx.nd.array(b)], {"x": x, "fc_weight": w, "fc_bias": b}):
        ex = net.bind(mx.cpu(), args=args)
        np.testing.assert_allclose(ex.forward()[0].asnumpy(), x @ w.T + b, rtol=1e-5, atol=1e-5)
    # arrays given as NDArrays are used in place, not copied
    xa = mx.nd.array(x)
    ex = net.bind(mx.cpu(), args={"x": xa, "fc_weight": mx.nd.array(w), "fc_bias": mx.nd.array(b)})
    assert ex.arg_dict["x"] is xa


def test_missing_input_at_bind_names_it():
    net = mlp_loss()
    with pytest.raises(mx.BindError, match="'fc2_weight'.*'sm_label'") as ei:
        net.bind(mx.cpu(), args={"data": np.zeros((2, 6), np.float32),
                                 "fc1_weight": np.zeros((5, 6), np.float32),
                                 "fc1_bias": np.zeros(5, np.float32), "fc2_bias": np.zeros(3, np.float32)})
    assert ei.value.__cause__ is None
    with pytest.raises(mx.BindError, match="'data'"):
        net.simple_bind(mx.cpu())
    with pytest.raises(mx.BindError, match="3 arrays given for 6 names"):
        net.bind(mx.cpu(), args=[mx.nd.zeros((2, 6))] * 3)


def test_bind_wrong_shape_names_node():
    net = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    with pytest.raises(mx.ShapeError, match="'fc'.*FullyConnected.*weight"):
        net.bind(mx.cpu(), args={"x": np.zeros((2, 5), np.float32), "fc_weight": np.zeros((4, 5), np.float32),
                                 "fc_bias": np.zeros(3, np.float32)})
    with pytest.raises(mx.ShapeError, match="gradient array of 'x'"):
        net.bind(mx.cpu(), args={"x": np.zeros((2, 5), np.float32), "fc_weight": np.zeros((3, 5), np.float32),
                                 "fc_bias": np.zeros(3, np.float32)},
                 args_grad={"x": np.zeros((2, 4), np.float32)})


def test_bind_on_missing_device():
    net = mx.sym.var("x") * 2
    with pytest.raises(mx.DeviceError, match="gpu"):
        net.simple_bind(mx.gpu(5), x=(2,))


# -- forward and backward ------------------------------------------------------------------------
def test_forward_inference_and_in_place_argument_assignment():
    ex = mlp_loss().simple_bind(mx.cpu(), data=(4, 6), grad_req="null")
    fill(ex)
    a = {k: v.asnumpy() for k, v in ex.arg_dict.items()}
    h = np.tanh(a["data"] @ a["fc1_weight"].T + a["fc1_bias"])
    want = softmax(h @ a["fc2_weight"].T + a["fc2_bias"])
    outs = ex.forward(is_train=False)
    assert outs is ex.outputs
    np.testing.assert_allclose(outs[0].asnumpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ex.output_dict["sm_output"].asnumpy(), want, rtol=1e-5, atol=1e-6)
    # ex.arg_dict[...][:] = value replaces the value used by the next forward
    ex.arg_dict["fc2_bias"][:] = np.array([10.0, 0.0, 0.0], np.float32)
    out2 = ex.forward()[0].asnumpy()
    np.testing.assert_allclose(out2, softmax(h @ a["fc2_weight"].T + [10.0, 0.0, 0.0]), rtol=1e-5, atol=1e-6)
    # keyword inputs to forward are copied into arg_dict
    new = RS.randn(4, 6).astype(np.float32)
    ex.forward(data=new)
    np.testing.assert_array_equal(ex.arg_dict["data"].asnumpy(), new)
    with pytest.raises(mx.BindError, match="not an argument"):
        ex.forward(nope=new)


def test_backward_loss_head_without_out_grads():
    ex = mlp_loss().simple_bind(mx.cpu(), data=(4, 6))
    fill(ex)
    a = {k: v.asnumpy().astype(np.float64) for k, v in ex.arg_dict.items()}
    ex.forward(is_train=True)
    ex.backward()
    h = np.tanh(a["data"] @ a["fc1_weight"].T + a["fc1_bias"])
    p = softmax(h @ a["fc2_weight"].T + a["fc2_bias"])
    dz = p - np.eye(3)[a["sm_label"].astype(int)]
    np.testing.assert_allclose(ex.grad_dict["fc2_weight"].asnumpy(), dz.T @ h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["fc2_bias"].asnumpy(), dz.sum(0), rtol=1e-4, atol=1e-5)
    dh = dz @ a["fc2_weight"] * (1 - h * h)
    np.testing.assert_allclose(ex.grad_dict["fc1_weight"].asnumpy(), dh.T @ a["data"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ex.grad_dict["sm_label"].asnumpy(), np.zeros(4, np.float32))
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), p, rtol=1e-5, atol=1e-6)


def test_backward_non_loss_head_with_out_grads():
    net = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc")
    ex = net.simple_bind(mx.cpu(), x=(2, 4))
    fill(ex)
    x, w = ex.arg_dict["x"].asnumpy(), ex.arg_dict["fc_weight"].asnumpy()
    hg = RS.randn(2, 3).astype(np.float32)
    ex.forward(is_train=True)
    ex.backward(mx.nd.array(hg))
    np.testing.assert_allclose(ex.grad_dict["fc_weight"].asnumpy(), hg.T @ x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), hg @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["fc_bias"].asnumpy(), hg.sum(0), rtol=1e-5, atol=1e-5)
    # as a list, as a numpy array, as a dict by output name
    for heads in ([mx.nd.array(2 * hg)], 2 * hg, {"fc_output": mx.nd.array(2 * hg)}):
        ex.forward(is_train=True)
        ex.backward(heads)
        np.testing.assert_allclose(ex.grad_dict["fc_bias"].asnumpy(), 2 * hg.sum(0), rtol=1e-5, atol=1e-5)
    with pytest.raises(mx.ShapeError, match="head gradient 0"):
        ex.forward(is_train=True)
        ex.backward(mx.nd.zeros((3, 3)))
    # as in MXNet, head gradients past the outputs are ignored; too few is an error
    ex.forward(is_train=True)
    ex.backward([mx.nd.array(hg), mx.nd.ones((5,))])
    np.testing.assert_allclose(ex.grad_dict["fc_bias"].asnumpy(), hg.sum(0), rtol=1e-5, atol=1e-5)
    with pytest.raises(mx.BindError, match="0 head gradients for 1 outputs"):
        ex.forward(is_train=True)
        ex.backward([])


def test_backward_before_forward_uses_the_bound_arguments():
    # MXNet allows it: the gradients at the arguments bound now
    ex = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc").simple_bind(mx.cpu(), x=(2, 4))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    ex.arg_dict["x"][:] = x
    ex.backward(np.ones((2, 3), np.float32))
    np.testing.assert_allclose(ex.grad_dict["fc_weight"].asnumpy(), np.ones((3, 2)) @ x)


def test_backward_after_inference_forward_gives_the_gradients():
    """MXNet computes gradients after forward() (is_train=False) too; outputs stay the inference ones."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    ex = mx.sym.FullyConnected(mx.sym.var("x"), mx.sym.var("w"), num_hidden=3, no_bias=True) \
        .simple_bind(mx.cpu(), x=(2, 4), w=(3, 4))
    ex.arg_dict["x"][:] = x
    ex.arg_dict["w"][:] = w
    out = ex.forward()[0].asnumpy()
    head = rng.standard_normal((2, 3)).astype(np.float32)
    ex.backward(head)
    np.testing.assert_allclose(out, x @ w.T, rtol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), head @ w, rtol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["w"].asnumpy(), head.T @ x, rtol=1e-5)


def test_grad_req_add_accumulates_and_write_overwrites():
    net = mlp_loss()
    ex_w = net.simple_bind(mx.cpu(), data=(3, 6), grad_req="write")
    ex_a = net.simple_bind(mx.cpu(), data=(3, 6), grad_req="add")
    fill(ex_w)
    ex_a.copy_params_from({k: v for k, v in ex_w.arg_dict.items()})
    for _ in range(3):
        for ex in (ex_w, ex_a):
            ex.forward(is_train=True)
            ex.backward()
    for k in ("fc1_weight", "fc2_bias", "data"):
        np.testing.assert_allclose(ex_a.grad_dict[k].asnumpy(), 3 * ex_w.grad_dict[k].asnumpy(),
                                   rtol=1e-5, atol=1e-5)


def test_integer_argument_gradient_is_written_zero():
    """MXNet writes a zero gradient into an integer argument (softmax's length) with grad_req='write'."""
    sym = mx.sym.softmax(mx.sym.var("data"), mx.sym.var("length"), axis=1, use_length=True)
    ex = sym.bind(mx.cpu(), {"data": mx.nd.ones((2, 3)), "length": mx.nd.array([2, 3], dtype="int32")},
                  args_grad={"data": mx.nd.ones((2, 3)), "length": mx.nd.array([7, 7], dtype="int32")})
    ex.forward(is_train=True)
    ex.backward([mx.nd.ones((2, 3))])
    assert ex.grad_dict["length"].dtype == np.int32
    np.testing.assert_array_equal(ex.grad_dict["length"].asnumpy(), [0, 0])
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), 0, atol=1e-6)


def test_grad_req_null_leaves_no_gradient_and_others_still_work():
    net = mlp_loss()
    ex = net.simple_bind(mx.cpu(), data=(3, 6), grad_req={"fc2_bias": "write"})
    ref = net.simple_bind(mx.cpu(), data=(3, 6))
    fill(ex)
    fill(ref)
    for e in (ex, ref):
        e.forward(is_train=True)
        e.backward()
    np.testing.assert_allclose(ex.grad_dict["fc2_bias"].asnumpy(), ref.grad_dict["fc2_bias"].asnumpy(),
                               rtol=1e-6)
    assert ex.grad_dict["fc1_weight"] is None


def test_training_forward_then_backward_runs_forward_once(monkeypatch):
    net = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc_once")
    ex = net.simple_bind(mx.cpu(), x=(2, 4))
    fill(ex)
    x = ex.arg_dict["x"].asnumpy()
    calls = {"step": 0, "forward": 0}
    for name in calls:
        orig = getattr(ex._grad, name)

        def wrapped(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)
        monkeypatch.setattr(ex._grad, name, wrapped)
    hg = RS.randn(2, 3).astype(np.float32)
    # nothing read in between: one fused forward+backward call
    ex.forward(is_train=True)
    ex.backward(hg)
    assert calls == {"step": 1, "forward": 0}
    np.testing.assert_allclose(ex.grad_dict["fc_once_weight"].asnumpy(), hg.T @ x, rtol=1e-5, atol=1e-5)
    # outputs read in between: the forward runs alone once, backward reuses its residuals
    ex.forward(is_train=True)
    out = ex.outputs[0].asnumpy()
    ex.backward(2 * hg)
    assert calls == {"step": 1, "forward": 1}
    w, b = ex.arg_dict["fc_once_weight"].asnumpy(), ex.arg_dict["fc_once_bias"].asnumpy()
    np.testing.assert_allclose(out, x @ w.T + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["fc_once_weight"].asnumpy(), 2 * hg.T @ x, rtol=1e-5, atol=1e-5)
    # a second backward on the same forward runs no forward either
    ex.backward(3 * hg)
    assert calls == {"step": 1, "forward": 1}
    np.testing.assert_allclose(ex.grad_dict["fc_once_weight"].asnumpy(), 3 * hg.T @ x, rtol=1e-5, atol=1e-5)


def test_outputs_after_fused_step_are_the_training_outputs():
    ex = mlp_loss().simple_bind(mx.cpu(), data=(3, 6))
    fill(ex)
    ex.forward(is_train=True)
    ex.backward()
    train_out = ex.outputs[0].asnumpy()
    np.testing.assert_allclose(train_out, ex.forward(is_train=False)[0].asnumpy(), rtol=1e-6)


def test_rebinding_same_graph_and_shapes_does_not_retrace():
    with mx.name.NameManager():
        net = mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc_retrace"))
    h = net.graph.structural_hash()
    ex = net.simple_bind(mx.cpu(), x=(2, 4))
    ex.forward(is_train=False)
    ex.forward(is_train=True)
    ex.backward(np.ones((2, 3), np.float32))
    count = TRACE_COUNTS[h]
    for _ in range(2):
        ex2 = net.simple_bind(mx.cpu(), x=(2, 4))
        fill(ex2)
        ex2.forward(is_train=False)
        ex2.forward(is_train=True)
        ex2.backward(np.ones((2, 3), np.float32))
    # a loaded copy of the same graph has the same structure, so the same programs
    again = mx.sym.load_json(net.tojson())
    ex3 = again.simple_bind(mx.cpu(), x=(2, 4))
    ex3.forward()
    assert TRACE_COUNTS[h] == count


class _BackendCompiles:
    """Counts XLA compilations (jax.monitoring's backend-compile events) while active."""
    count = 0
    _registered = False

    def __enter__(self):
        import jax.monitoring
        if not _BackendCompiles._registered:
            def listen(name, _secs, **_kw):
                if name == "/jax/core/compile/backend_compile_duration":
                    _BackendCompiles.count += 1
            jax.monitoring.register_event_duration_secs_listener(listen)
            _BackendCompiles._registered = True
        self.start = _BackendCompiles.count
        return self

    @property
    def compiled(self) -> int:
        return _BackendCompiles.count - self.start

    def __exit__(self, *exc):
        return False


def _rebuilt_net():
    # auto-named ops: every call names them anew (fullyconnected3, relu7, ...)
    return mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("x"), mx.sym.var("w"), mx.sym.var("b"), num_hidden=3))


def test_a_rebuilt_symbol_with_new_op_names_reuses_the_compiled_programs():
    first = _rebuilt_net()
    ex = first.simple_bind(mx.cpu(), x=(2, 4))
    fill(ex)
    ex.forward(is_train=True)
    ex.backward(np.ones((2, 3), np.float32))
    ex.forward(is_train=False)
    again = _rebuilt_net()
    assert again.list_outputs() != first.list_outputs()          # other names...
    assert again.graph.program_hash() == first.graph.program_hash()   # ...same program
    with _BackendCompiles() as c:
        ex2 = again.simple_bind(mx.cpu(), x=(2, 4))
        fill(ex2)
        ex2.forward(is_train=True)
        ex2.backward(np.ones((2, 3), np.float32))
        ex2.forward(is_train=False)
    assert c.compiled == 0
    assert again.graph.structural_hash() not in TRACE_COUNTS      # not even traced
    for a, b in zip(ex.outputs + ex.grad_arrays, ex2.outputs + ex2.grad_arrays):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    # a different variable name is a different program
    other = mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("y"), mx.sym.var("w"), mx.sym.var("b"), num_hidden=3))
    assert other.graph.program_hash() != first.graph.program_hash()


def test_writing_numpy_into_an_argument_does_not_recompile():
    # jit keys compiled code on whether each argument is committed to a device: a write from host
    # data must leave the array as committed as the executor made it
    ex = _rebuilt_net().simple_bind(mx.cpu(), x=(3, 4))
    ex.forward(is_train=True)[0].asnumpy()      # a training forward runs when its outputs are read
    values = (np.full((3, 4), 1, np.float32), mx.nd.ones((3, 4)) * 2, 3.0, np.zeros((3, 4), np.float64))
    scratch = mx.nd.zeros((3, 4))
    for value in values:       # the writes' own conversions (broadcast, cast) compile once here
        scratch[:] = value
    with _BackendCompiles() as c:
        for value in values:
            ex.arg_dict["x"][:] = value
            ex.arg_dict["b"][:] = np.ones(3, np.float32)
            ex.forward(is_train=True)[0].asnumpy()
    assert c.compiled == 0


def test_copy_params_from():
    net = mlp_loss()
    ex = net.simple_bind(mx.cpu(), data=(2, 6))
    w = RS.randn(5, 6).astype(np.float32)
    ex.copy_params_from({"fc1_weight": mx.nd.array(w), "fc1_bias": np.ones(5, np.float32)})
    np.testing.assert_array_equal(ex.arg_dict["fc1_weight"].asnumpy(), w)
    np.testing.assert_array_equal(ex.arg_dict["fc1_bias"].asnumpy(), np.ones(5))
    with pytest.raises(mx.BindError, match="'extra'"):
        ex.copy_params_from({"extra": np.ones(1)})
    ex.copy_params_from({"extra": np.ones(1)}, allow_extra_params=True)


def test_reshape_rules():
    net = mlp_loss()
    ex = net.simple_bind(mx.cpu(), data=(4, 6))
    fill(ex)
    # the label follows the data's batch size: allowed only with partial_shaping
    with pytest.raises(mx.ShapeError, match="'sm_label'.*partial_shaping"):
        ex.reshape(data=(2, 6))
    small = ex.reshape(partial_shaping=True, data=(2, 6))
    assert small.arg_dict["data"].shape == (2, 6) and small.arg_dict["sm_label"].shape == (2,)
    assert small.arg_dict["fc1_weight"] is ex.arg_dict["fc1_weight"]  # unchanged arrays are shared
    np.testing.assert_array_equal(small.arg_dict["data"].asnumpy(), ex.arg_dict["data"].asnumpy()[:2])
    small.forward()
    assert small.outputs[0].shape == (2, 3)
    # growing needs allow_up_sizing
    with pytest.raises(mx.ShapeError, match="'data'.*allow_up_sizing"):
        ex.reshape(partial_shaping=True, data=(8, 6))
    big = ex.reshape(partial_shaping=True, allow_up_sizing=True, data=(8, 6))
    assert big.arg_dict["data"].shape == (8, 6) and big.grad_dict["data"].shape == (8, 6)
    big.forward(is_train=True)
    big.backward()
    assert big.grad_dict["fc1_weight"].shape == (5, 6)
    # a parameter shape change is also a partial-shaping change
    with pytest.raises(mx.ShapeError, match="'fc1_weight'"):
        ex.reshape(data=(4, 3))


def test_numerical_gradient_of_small_mlp():
    """Executor gradients against central finite differences in float64."""
    x = mx.sym.var("x")
    h = mx.sym.Activation(mx.sym.FullyConnected(x, num_hidden=4, name="g1"), act_type="sigmoid", name="s")
    o = mx.sym.FullyConnected(h, num_hidden=2, name="g2")
    loss = mx.sym.MakeLoss(mx.sym.square(o) * 0.5 + mx.sym.sin(o) - o / 3.0, name="loss")
    with jax.enable_x64(True):
        ex = loss.simple_bind(mx.cpu(), x=(3, 5), type_dict={"x": np.float64})
        assert all(v.dtype == np.float64 for v in ex.arg_dict.values())
        rs = np.random.RandomState(1)
        vals = {k: rs.randn(*v.shape) for k, v in ex.arg_dict.items()}
        for k, v in vals.items():
            ex.arg_dict[k][:] = v
        ex.forward(is_train=True)
        ex.backward()
        fwd = loss.simple_bind(mx.cpu(), x=(3, 5), type_dict={"x": np.float64}, grad_req="null")

        def total(values):
            for k, v in values.items():
                fwd.arg_dict[k][:] = v
            return float(fwd.forward()[0].asnumpy().sum())
        eps = 1e-6
        for k, v in vals.items():
            num = np.zeros_like(v)
            for idx in np.ndindex(v.shape):
                plus = {**vals, k: v.copy()}
                plus[k][idx] += eps
                minus = {**vals, k: v.copy()}
                minus[k][idx] -= eps
                num[idx] = (total(plus) - total(minus)) / (2 * eps)
            np.testing.assert_allclose(ex.grad_dict[k].asnumpy(), num, rtol=1e-6, atol=1e-7, err_msg=k)


def test_forward_is_deterministic():
    net = mlp_loss()
    outs = []
    for _ in range(2):
        ex = net.simple_bind(mx.cpu(), data=(4, 6))
        fill(ex, seed=3)
        ex.forward(is_train=True)
        ex.backward()
        outs.append((ex.outputs[0].asnumpy(), ex.grad_dict["fc1_weight"].asnumpy(), ex.forward()[0].asnumpy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_float16_execution_close_to_float32():
    net = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=3, name="fc"), act_type="tanh")
    ex32 = net.simple_bind(mx.cpu(), x=(2, 4), grad_req="null")
    fill(ex32)
    for dt in ("float16", "bfloat16"):
        ex = net.simple_bind(mx.cpu(), x=(2, 4), type_dict={"x": dt}, grad_req="null")
        for k, v in ex32.arg_dict.items():
            ex.arg_dict[k][:] = v.asnumpy()
        out = ex.forward()[0]
        assert np.dtype(out.dtype).name == dt
        np.testing.assert_allclose(out.asnumpy().astype(np.float32), ex32.forward()[0].asnumpy(), atol=5e-2)


# -- MXNet's reference cases -----------------------------------------------------------------------
def _case_names():
    return sorted(f[: -len(".meta.json")] for f in os.listdir(CASES) if f.endswith(".meta.json"))


@pytest.mark.parametrize("name", _case_names())
def test_fixture_case_forward_and_backward(name):
    meta = json.load(open(os.path.join(CASES, name + ".meta.json")))
    missing = sorted(op for op in meta["ops"] if not registry.exists(op))
    if missing:
        pytest.skip(f"operators not registered yet: {', '.join(missing)}")
    data = np.load(os.path.join(CASES, name + ".npz"))
    sym = mx.sym.load(os.path.join(CASES, name + "-symbol.json"))
    args = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith(("input:", "arg:"))}
    aux = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("aux:")}
    tol = meta["tolerance"]
    ex = sym.bind(mx.cpu(), args={k: mx.nd.array(v) for k, v in args.items()},
                  aux_states={k: mx.nd.array(v) for k, v in aux.items()}, grad_req="null")
    for i, out in enumerate(ex.forward(is_train=False)):
        np.testing.assert_allclose(out.asnumpy(), data[f"out:{i}"], *tol[f"out:{i}"], err_msg=f"out:{i}")
    if not meta["has_grad"]:
        return
    grads = {k: mx.nd.zeros(v.shape) for k, v in args.items()}
    reqs = {k: meta["grad_req"].get(k, "write") for k in args}
    ex = sym.bind(mx.cpu(), args={k: mx.nd.array(v) for k, v in args.items()}, args_grad=grads,
                  grad_req=reqs, aux_states={k: mx.nd.array(v) for k, v in aux.items()})
    ex.forward(is_train=True)
    n_out = len(meta["outputs"])
    ex.backward([mx.nd.array(data[f"head_grad:{i}"]) for i in range(n_out)])
    for i in range(n_out):
        np.testing.assert_allclose(ex.outputs[i].asnumpy(), data[f"train_out:{i}"], *tol[f"train_out:{i}"])
    for k in data.files:
        if k.startswith("grad:"):
            np.testing.assert_allclose(ex.grad_dict[k[5:]].asnumpy(), data[k], *tol[k], err_msg=k)
        elif k.startswith("train_aux:"):
            np.testing.assert_allclose(ex.aux_dict[k[10:]].asnumpy(), data[k], *tol[k], err_msg=k)


def test_get_optimized_symbol_is_the_graph_after_the_passes():
    x = mx.sym.var("x")
    sym = mx.sym.exp(x) + mx.sym.exp(x)             # common subexpression
    ex = sym.simple_bind(mx.cpu(), x=(2,))
    opt = ex.get_optimized_symbol()
    assert opt.list_outputs() == sym.list_outputs() and opt.list_arguments() == ["x"]
    assert len(opt.get_internals().list_outputs()) < len(sym.get_internals().list_outputs())
    out = opt.eval(ctx=mx.cpu(), x=mx.nd.array([0.0, 1.0]))[0].asnumpy()
    np.testing.assert_allclose(out, 2 * np.exp([0.0, 1.0]), rtol=1e-6)


def _internal_count(ex) -> int:
    return len(ex.get_optimized_symbol().get_internals().list_outputs())


@pytest.mark.parametrize("make,saved", [
    (lambda a, b: (a + b) + (a + b), 1),
    (lambda a, b: (lambda d: mx.sym.Group([a * d, a * d]))(a + 1), 0),   # the merged output gets a _copy
    (lambda a, b: (lambda d: mx.sym.Group([a * d + b, a * d + b]))(a + 1), 1),
    (lambda a, b: mx.sym.Dropout(a, p=0.5) + mx.sym.Dropout(a, p=0.5), 0),   # random ops never merge
])
def test_mxnet_eliminate_common_expr_switch(monkeypatch, make, saved):
    sym = make(mx.sym.var("a"), mx.sym.var("b"))
    shapes = {n: (2, 3) for n in sym.list_inputs()}
    monkeypatch.setenv("MXNET_ELIMINATE_COMMON_EXPR", "0")
    plain = sym.simple_bind(mx.cpu(), **shapes)
    monkeypatch.setenv("MXNET_ELIMINATE_COMMON_EXPR", "1")
    merged = sym.simple_bind(mx.cpu(), **shapes)
    assert _internal_count(plain) == len(sym.get_internals().list_outputs())
    assert _internal_count(plain) - _internal_count(merged) == saved
    data = {n: mx.nd.array(np.random.default_rng(0).random((2, 3), dtype=np.float32)) for n in shapes}
    if saved:
        for x, y in zip(plain.forward(**data), merged.forward(**data)):
            np.testing.assert_allclose(x.asnumpy(), y.asnumpy(), rtol=1e-6)


def test_monitor_callback_sees_every_output_and_input_by_mxnet_name():
    data = mx.sym.var("data", shape=(2, 3, 6, 6))
    conv = mx.sym.Convolution(data, kernel=(3, 3), num_filter=2, name="conv")
    net = mx.sym.relu(mx.sym.BatchNorm(conv, name="bn"), name="r")
    ex = net.simple_bind(mx.cpu(), grad_req="write")
    x = np.random.default_rng(1).random((2, 3, 6, 6), dtype=np.float32)
    seen = {}
    ex.set_monitor_callback(lambda name, arr: seen.setdefault(name, arr.asnumpy()))
    out = ex.forward(is_train=True, data=x)[0].asnumpy()
    assert list(seen) == ["conv_output", "bn_output", "r_output"]
    np.testing.assert_allclose(seen["r_output"], out, rtol=1e-5, atol=1e-6)
    ex.backward(mx.nd.ones(out.shape))
    moving = ex.aux_dict["bn_moving_mean"].asnumpy()   # the monitor's run left the aux states alone
    ex.set_monitor_callback(None)
    ex2 = net.simple_bind(mx.cpu(), grad_req="write")
    ex2.forward(is_train=True, data=x)
    ex2.backward(mx.nd.ones(out.shape))
    np.testing.assert_allclose(moving, ex2.aux_dict["bn_moving_mean"].asnumpy(), rtol=1e-6)
    names = []
    ex.set_monitor_callback(lambda name, arr: names.append(name), monitor_all=True)
    ex.forward()
    assert names[:7] == ["data", "conv_data", "conv_weight", "conv_weight", "conv_bias", "conv_bias", "conv_output"]
    names = []
    act = mx.sym.Activation(data, act_type="relu", name="act")      # MXNet's Activation names no inputs
    act_ex = act.simple_bind(mx.cpu(), grad_req="null")
    act_ex.set_monitor_callback(lambda n, a: names.append(n), monitor_all=True)
    act_ex.forward()
    assert names == ["data", "act_input0", "act_output"]


def test_head_gradient_of_an_integer_output_is_ignored():
    x = mx.sym.var("x")
    grad = mx.nd.ones((3, 4))
    ex = mx.sym.shape_array(x).bind(mx.cpu(), args={"x": mx.nd.ones((3, 4))}, args_grad={"x": grad})
    ex.forward(is_train=True)
    ex.backward([mx.nd.ones((7,))])                 # MXNet ignores it: an integer output has no gradient
    assert ex.outputs[0].asnumpy().tolist() == [3, 4] and not grad.asnumpy().any()
    hot = mx.sym.one_hot(x, depth=3).bind(mx.cpu(), args={"x": mx.nd.array([0, 2])},
                                           args_grad={"x": mx.nd.ones((2,))})
    hot.forward(is_train=True)
    hot.backward([mx.nd.ones((5, 5))])              # one_hot has zero gradients: its head is ignored too
    assert not hot.grad_dict["x"].asnumpy().any()
    fx = (x * 2).simple_bind(mx.cpu(), x=(3,))
    fx.forward(is_train=True, x=np.ones(3, np.float32))
    with pytest.raises(mx.base.MXNetError, match="head gradient 0 has shape"):
        fx.backward([mx.nd.ones((7,))])


def test_an_argument_seen_only_through_blockgrad_is_not_differentiated_and_gets_zeros():
    x, w = mx.sym.var("x"), mx.sym.var("w")
    y = mx.sym.sum(x * mx.sym.BlockGrad(w))
    ex = y.simple_bind(mx.cpu(), x=(3,), w=(3,), grad_req={"x": "write", "w": "write"})
    assert sorted(y.graph.gradient_reaching_variables()) == ["x"]
    ex.arg_dict["x"][:] = np.array([1.0, 2.0, 3.0], np.float32)
    ex.arg_dict["w"][:] = np.array([4.0, 5.0, 6.0], np.float32)
    ex.grad_dict["w"][:] = 7.0
    ex.forward(is_train=True)
    ex.backward()
    np.testing.assert_array_equal(ex.grad_dict["x"].asnumpy(), [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(ex.grad_dict["w"].asnumpy(), [0.0, 0.0, 0.0])
    # nothing differentiable at all: backward still writes zeros ('write') and leaves 'add' alone
    z = mx.sym.BlockGrad(x * w)
    ex = z.simple_bind(mx.cpu(), x=(3,), w=(3,), grad_req={"x": "write", "w": "add"})
    ex.grad_dict["x"][:] = 1.0
    ex.grad_dict["w"][:] = 2.0
    ex.forward(is_train=True)
    ex.backward()
    np.testing.assert_array_equal(ex.grad_dict["x"].asnumpy(), [0.0] * 3)
    np.testing.assert_array_equal(ex.grad_dict["w"].asnumpy(), [2.0] * 3)


def test_memory_report_counts_outputs_and_residuals_kept_for_backward():
    import re
    data = mx.sym.var("data")
    for _ in range(4):
        data = data * data
    one = 2 * 3 * 64 * 64 * 4
    train = data.simple_bind(mx.cpu(), data=(2, 3, 64, 64))
    mem = train.memory_report()
    assert mem["outputs"] == one and mem["saved_for_backward"] >= 4 * one
    assert data.simple_bind(mx.cpu(), data=(2, 3, 64, 64), grad_req="null").memory_report() == \
        {"outputs": one, "saved_for_backward": 0}
    blocked = mx.sym.stop_gradient(data).simple_bind(mx.cpu(), data=(2, 3, 64, 64))
    assert blocked.memory_report()["saved_for_backward"] == 0
    total = int(re.search(r"Total (\d+) MB allocated", train.debug_str()).group(1))
    assert total == round(sum(mem.values()) / 2 ** 20)
