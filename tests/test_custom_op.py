"""mx.operator: Python custom operators (CustomOp / CustomOpProp / register, register_jax) in symbols,
executors, Module training and imperative calls, compared with the built-in ops and numerical gradients."""
import json
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import xgraph as mx


# -- operators used below ------------------------------------------------------------------
class Sqr(mx.operator.CustomOp):
    """x * x; forward sets its aux state to 1, which backward checks (as MXNet's test_custom_op)."""

    def forward(self, is_train, req, in_data, out_data, aux):
        aux[0][:] = 1
        self.assign(out_data[0], req[0], in_data[0] * in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        assert (aux[0].asnumpy() == 1).all()
        self.assign(in_grad[0], req[0], 2 * in_data[0] * out_grad[0])


@mx.operator.register("t_sqr")
class SqrProp(mx.operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=True)

    def list_auxiliary_states(self):
        return ["aux"]

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], [in_shape[0]]

    def infer_type(self, in_type):
        return in_type, [in_type[0]], [in_type[0]]

    def create_operator(self, ctx, shapes, dtypes):
        return Sqr()


class Square(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0] * in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], 2 * in_data[0] * out_grad[0])


@mx.operator.register("t_square")
class SquareProp(mx.operator.CustomOpProp):
    def create_operator(self, ctx, shapes, dtypes):
        return Square()


class Mult(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0] * in_data[1])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], in_data[1] * out_grad[0])
        self.assign(in_grad[1], req[1], in_data[0] * out_grad[0])


@mx.operator.register("t_mult")
class MultProp(mx.operator.CustomOpProp):
    def list_arguments(self):
        return ["lhs", "rhs"]

    def infer_shape(self, in_shape):             # rhs is deduced from lhs
        return [in_shape[0], in_shape[0]], [in_shape[0]], []

    def create_operator(self, ctx, shapes, dtypes):
        return Mult()


def _data(shape=(4, 10), seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)


def _numeric_grad(ex, name, head, eps=1e-2):
    """Central differences of sum(head * output) with respect to argument ``name``."""
    x = ex.arg_dict[name].asnumpy().copy()
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        vals = []
        for d in (eps, -eps):
            xp = x.copy()
            xp[idx] += d
            ex.arg_dict[name][:] = xp
            vals.append(float((ex.forward(is_train=False)[0].asnumpy() * head).sum()))
        g[idx] = (vals[0] - vals[1]) / (2 * eps)
    ex.arg_dict[name][:] = x
    return g


# -- symbols, shapes, executors ------------------------------------------------------------------
def test_symbol_lists_names_and_infers_through_the_prop():
    op = mx.sym.Custom(data=mx.sym.var("data"), name="sqr", op_type="t_sqr")
    assert op.list_arguments() == ["data"]
    assert op.list_auxiliary_states() == ["sqr_aux"]
    assert op.list_outputs() == ["sqr_output"]
    assert op.infer_shape(data=(4, 10)) == ([(4, 10)], [(4, 10)], [(4, 10)])
    arg_t, out_t, aux_t = op.infer_type(data=np.float16)
    assert arg_t == out_t == aux_t == [np.float16]
    # inputs not given become <name>_<argname> variables, as for every op
    m = mx.sym.Custom(mx.sym.var("a"), op_type="t_mult", name="m")
    assert m.list_arguments() == ["a", "m_rhs"]
    assert m.infer_shape(a=(2, 3))[0] == [(2, 3), (2, 3)]


def test_simple_bind_forward_backward_equals_builtin_square_and_numeric_gradient():
    x, head = _data(), _data(seed=1)
    op = mx.sym.Custom(data=mx.sym.var("data"), name="sqr", op_type="t_sqr")
    ex = op.simple_bind(mx.cpu(), data=x.shape)
    ref = mx.sym.square(mx.sym.var("data")).simple_bind(mx.cpu(), data=x.shape)
    for e in (ex, ref):
        e.arg_dict["data"][:] = x
    # deferred fused forward+backward, then forward read before backward
    ex.forward(is_train=True)
    ex.backward(mx.nd.array(head))
    ref.forward(is_train=True)
    ref.backward(mx.nd.array(head))
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), ref.outputs[0].asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), ref.grad_dict["data"].asnumpy(), rtol=1e-6)
    assert (ex.aux_dict["sqr_aux"].asnumpy() == 1).all()     # forward's aux update is kept
    out = ex.forward(is_train=True)[0].asnumpy()
    ex.backward(mx.nd.array(head))
    np.testing.assert_allclose(out, x * x, rtol=1e-6)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), 2 * x * head, rtol=1e-6)
    num = _numeric_grad(ex, "data", head)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), num, rtol=2e-2, atol=2e-3)


def test_bind_with_two_inputs_grad_req_add_and_a_larger_graph():
    lhs, rhs, w = _data((3, 4), 0), _data((3, 4), 1), _data((5, 4), 2)
    a, b = mx.sym.var("lhs"), mx.sym.var("rhs")
    net = mx.sym.FullyConnected(mx.sym.Custom(a, b, op_type="t_mult", name="m"), num_hidden=5, no_bias=True,
                                name="fc")
    builtin = mx.sym.FullyConnected(a * b, num_hidden=5, no_bias=True, name="fc")
    grads = []
    for sym in (net, builtin):
        args = {"lhs": mx.nd.array(lhs), "rhs": mx.nd.array(rhs), "fc_weight": mx.nd.array(w)}
        g = {k: mx.nd.zeros(v.shape) for k, v in args.items()}
        ex = sym.bind(mx.cpu(), args=args, args_grad=g, grad_req="add")
        for _ in range(2):
            ex.forward(is_train=True)
            ex.backward(mx.nd.ones((3, 5)))
        grads.append({k: v.asnumpy() for k, v in g.items()})
    for k in grads[1]:
        np.testing.assert_allclose(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[0]["lhs"], 2 * rhs * np.ones((3, 5)).dot(w), rtol=1e-5)


def test_module_training_with_a_custom_op_equals_the_builtin_op():
    rs = np.random.RandomState(0)
    x = rs.randn(20, 4).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    params = {"fc1_weight": rs.randn(6, 4).astype(np.float32) * 0.3, "fc1_bias": np.zeros(6, np.float32),
              "fc2_weight": rs.randn(2, 6).astype(np.float32) * 0.3, "fc2_bias": np.zeros(2, np.float32)}

    def net(custom):
        h = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=6, name="fc1")
        h = mx.sym.Custom(h, op_type="t_square", name="sq") if custom else mx.sym.square(h)
        return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=2, name="fc2"), name="softmax")

    trained = []
    for custom in (True, False):
        mod = mx.mod.Module(net(custom))
        mod.fit(mx.io.NDArrayIter(x, y, batch_size=5), num_epoch=2, arg_params=dict(params),
                optimizer_params={"learning_rate": 0.1}, progress_bar=False)
        trained.append({k: v.asnumpy() for k, v in mod.get_params()[0].items()})
    assert not np.allclose(trained[0]["fc1_weight"], params["fc1_weight"])
    for k in params:
        np.testing.assert_allclose(trained[0][k], trained[1][k], rtol=1e-5, atol=1e-6)


# -- imperative --------------------------------------------------------------------------------------
def test_nd_custom_runs_imperatively_with_aux_and_two_inputs():
    x = _data()
    out = mx.nd.Custom(mx.nd.array(x), mx.nd.zeros(x.shape), name="sqr", op_type="t_sqr")
    np.testing.assert_allclose(out.asnumpy(), x * x, rtol=1e-6)
    a, b = _data((2, 3), 3), _data((2, 3), 4)
    np.testing.assert_allclose(mx.nd.Custom(mx.nd.array(a), mx.nd.array(b), op_type="t_mult").asnumpy(), a * b,
                               rtol=1e-6)


# -- keyword arguments, need_top_grad, several outputs, integer inputs -----------------------------------
class Fill(mx.operator.CustomOp):
    def __init__(self, shape, value):
        super().__init__()
        self.shape, self.value = shape, value

    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], np.full(self.shape, self.value, np.float32))


@mx.operator.register("t_fill")
class FillProp(mx.operator.CustomOpProp):
    seen = []

    def __init__(self, length, depth, value="1.5"):
        super().__init__()
        FillProp.seen.append((length, depth, value))
        self.shape, self.value = (int(length), int(depth)), float(value)

    def list_arguments(self):
        return []

    def infer_shape(self, in_shape):
        return [], [self.shape], []

    def infer_type(self, in_type):
        return [], [np.float32], []

    def create_operator(self, ctx, shapes, dtypes):
        return Fill(self.shape, self.value)


def test_keyword_arguments_reach_the_prop_as_strings():
    out = mx.nd.Custom(length=3, depth=2, value=0.25, op_type="t_fill")
    np.testing.assert_array_equal(out.asnumpy(), np.full((3, 2), 0.25, np.float32))
    assert ("3", "2", "0.25") in FillProp.seen
    sym = mx.sym.Custom(length=2, depth=5, op_type="t_fill", name="fill")
    assert sym.list_arguments() == [] and sym.infer_shape()[1] == [(2, 5)]
    assert json.loads(sym.tojson())["nodes"][0]["attrs"] == {"depth": "5", "length": "2", "op_type": "t_fill"}


class SoftmaxLoss(mx.operator.CustomOp):
    """A loss head: backward ignores out_grad (which need_top_grad=False does not even pass)."""

    def forward(self, is_train, req, in_data, out_data, aux):
        x = in_data[0].asnumpy()
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.assign(out_data[0], req[0], e / e.sum(axis=1, keepdims=True))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        assert (out_grad[0].asnumpy() == 0).all()
        label = in_data[1].asnumpy().astype(int)
        y = out_data[0].asnumpy().copy()
        y[np.arange(label.shape[0]), label] -= 1.0
        self.assign(in_grad[0], req[0], y)


@mx.operator.register("t_softmax_loss")
class SoftmaxLossProp(mx.operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=False)

    def list_arguments(self):
        return ["data", "label"]

    def infer_shape(self, in_shape):
        return [in_shape[0], (in_shape[0][0],)], [in_shape[0]], []

    def create_operator(self, ctx, shapes, dtypes):
        return SoftmaxLoss()


def test_need_top_grad_false_is_a_loss_head_like_softmax_output():
    x = _data((4, 3))
    label = np.array([0, 2, 1, 2], np.float32)
    grads = []
    for sym in (mx.sym.Custom(mx.sym.var("data"), op_type="t_softmax_loss", name="sm"),
                mx.sym.SoftmaxOutput(mx.sym.var("data"), name="sm")):
        assert sym.list_arguments() == ["data", "sm_label"]
        ex = sym.simple_bind(mx.cpu(), data=x.shape)
        ex.arg_dict["data"][:] = x
        ex.arg_dict["sm_label"][:] = label
        ex.forward(is_train=True)
        ex.backward()
        grads.append((ex.outputs[0].asnumpy(), ex.grad_dict["data"].asnumpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-5)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-6)


class SplitSign(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        x = in_data[0]
        self.assign(out_data[0], req[0], mx.nd.relu(x))
        self.assign(out_data[1], req[1], x * (in_data[1] + 1))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        assert req[1] == "null"                    # the integer input has no gradient
        x = in_data[0].asnumpy()
        g = out_grad[0].asnumpy() * (x > 0) + out_grad[1].asnumpy() * (in_data[1].asnumpy() + 1)
        self.assign(in_grad[0], req[0], g)


@mx.operator.register("t_two_outputs")
class SplitSignProp(mx.operator.CustomOpProp):
    def list_arguments(self):
        return ["data", "k"]

    def list_outputs(self):
        return ["pos", "scaled"]

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0], in_shape[0]], []

    def infer_type(self, in_type):
        return in_type, [in_type[0], in_type[0]], []

    def create_operator(self, ctx, shapes, dtypes):
        return SplitSign()


def test_several_outputs_and_an_integer_input():
    x = _data((2, 3))
    k = np.full((2, 3), 2, np.int32)
    sym = mx.sym.Custom(mx.sym.var("data"), mx.sym.var("k", dtype="int32"), op_type="t_two_outputs", name="two")
    assert sym.list_outputs() == ["two_pos", "two_scaled"]
    ex = sym.simple_bind(mx.cpu(), data=x.shape, k=k.shape, grad_req={"data": "write", "k": "null"})
    ex.arg_dict["data"][:] = x
    ex.arg_dict["k"][:] = k
    outs = ex.forward(is_train=True)
    ex.backward([mx.nd.ones(x.shape), mx.nd.ones(x.shape) * 2])
    np.testing.assert_allclose(outs[0].asnumpy(), np.maximum(x, 0), rtol=1e-6)
    np.testing.assert_allclose(outs[1].asnumpy(), 3 * x, rtol=1e-6)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), (x > 0) + 6.0, rtol=1e-6)


# -- JSON -----------------------------------------------------------------------------------------------
def test_symbol_json_round_trips_and_runs_the_same():
    a = mx.sym.var("a")
    net = mx.sym.Custom(mx.sym.Custom(a, op_type="t_sqr", name="s"), a, op_type="t_mult", name="m") + 1
    text = net.tojson()
    nodes = {n["name"]: n for n in json.loads(text)["nodes"]}
    assert nodes["m"]["op"] == "Custom" and nodes["m"]["attrs"] == {"op_type": "t_mult"}
    back = mx.sym.load_json(text)
    assert back.tojson() == text
    assert back.list_auxiliary_states() == ["s_aux"]
    x = _data((2, 2))
    outs = []
    for sym in (net, back):
        ex = sym.bind(mx.cpu(), args={"a": mx.nd.array(x)}, aux_states={"s_aux": mx.nd.zeros((2, 2))})
        outs.append(ex.forward()[0].asnumpy())
    np.testing.assert_allclose(outs[0], x ** 3 + 1, rtol=1e-5)
    np.testing.assert_allclose(outs[1], outs[0])


# -- JAX operators -------------------------------------------------------------------------------------
@mx.operator.register_jax("t_jax_scaled_tanh")
def scaled_tanh(data, scale=1.0, flip=False):
    return jnp.tanh(data) * (-scale if flip else scale)


def _cube_backward(in_data, out_data, out_grad, factor=1):
    (x,), (g,) = in_data, out_grad
    return (3 * factor * x * x * g,)


@mx.operator.register_jax("t_jax_cube", outputs=("out",), backward=_cube_backward)
def cube(x, factor=1):
    return factor * x ** 3


def test_register_jax_lowers_inline_with_autodiff_or_its_backward():
    x = _data((3, 4))
    sym = mx.sym.Custom(mx.sym.var("data"), op_type="t_jax_scaled_tanh", scale=2, flip=True, name="t")
    assert "callback" not in mx.lower(sym, data=x.shape).as_text(debug_info=False)
    ex = sym.simple_bind(mx.cpu(), data=x.shape)
    ex.arg_dict["data"][:] = x
    ex.forward(is_train=True)
    ex.backward(mx.nd.ones(x.shape))
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), -2 * np.tanh(x), rtol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), -2 * (1 - np.tanh(x) ** 2), rtol=1e-5)
    c = mx.sym.Custom(mx.sym.var("data"), op_type="t_jax_cube", factor=2, name="c")
    assert c.list_arguments() == ["data"] and c.list_outputs() == ["c_out"]
    ex = c.simple_bind(mx.cpu(), data=x.shape)
    ex.arg_dict["data"][:] = x
    ex.forward(is_train=True)
    ex.backward(mx.nd.ones(x.shape))
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), 6 * x * x, rtol=1e-5)
    np.testing.assert_allclose(mx.nd.Custom(mx.nd.array(x), op_type="t_jax_cube").asnumpy(), x ** 3, rtol=1e-5)
    with pytest.raises(mx.AttributeValueError, match="unknown attribute.*bogus"):
        mx.sym.Custom(mx.sym.var("data"), op_type="t_jax_cube", bogus=1)
    with pytest.raises(mx.AttributeValueError, match="factor='x' is not a int"):
        mx.sym.Custom(mx.sym.var("data"), op_type="t_jax_cube", factor="x")


# -- re-registration, storage types ------------------------------------------------------------------
def test_registering_a_name_again_replaces_the_operator():
    def prop(k):
        class Op(mx.operator.CustomOp):
            def forward(self, is_train, req, in_data, out_data, aux):
                self.assign(out_data[0], req[0], in_data[0] * k)

        class Prop(mx.operator.CustomOpProp):
            def create_operator(self, ctx, shapes, dtypes):
                return Op()
        return Prop

    mx.operator.register("t_again")(prop(2.0))
    sym = mx.sym.Custom(mx.sym.var("x"), op_type="t_again")
    run = lambda: sym.bind(mx.cpu(), args={"x": mx.nd.ones((2,))}).forward()[0].asnumpy().tolist()  # noqa: E731
    assert run() == [2.0, 2.0]
    mx.operator.register("t_again")(prop(5.0))
    assert run() == [5.0, 5.0]


def test_sparse_storage_is_refused_clearly():
    @mx.operator.register("t_sparse")
    class SparseProp(mx.operator.CustomOpProp):
        def infer_storage_type(self, in_stype):
            return ["csr"], ["csr"], []

    with pytest.raises(mx.XGraphError, match="t_sparse.*dense .'default'. storage only"):
        mx.sym.Custom(mx.sym.var("x"), op_type="t_sparse")


# -- errors ---------------------------------------------------------------------------------------------
def test_unknown_op_type_lists_the_registered_ones():
    with pytest.raises(mx.AttributeValueError, match=r"op_type 'nope' is not registered \(registered: .*t_sqr"):
        mx.sym.Custom(mx.sym.var("x"), op_type="nope")
    with pytest.raises(mx.AttributeValueError, match="required attribute.*op_type"):
        mx.sym.Custom(mx.sym.var("x"))


def _failing(name, fail_in):
    class Op(mx.operator.CustomOp):
        def forward(self, is_train, req, in_data, out_data, aux):
            if fail_in == "forward":
                raise ValueError("bad forward")
            self.assign(out_data[0], req[0], in_data[0])

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            raise KeyError("bad backward")

    @mx.operator.register(name)
    class Prop(mx.operator.CustomOpProp):
        def create_operator(self, ctx, shapes, dtypes):
            return Op()


def test_exceptions_in_forward_and_backward_name_the_op_type():
    _failing("t_fail_fwd", "forward")
    with pytest.raises(mx.operator.CustomOpError, match="'t_fail_fwd' .node 'op'.: CustomOp.forward raised "
                                                       "ValueError: bad forward") as info:
        mx.nd.Custom(mx.nd.ones((2,)), op_type="t_fail_fwd")
    assert isinstance(info.value, mx.XGraphError) and isinstance(info.value.__cause__, ValueError)
    ex = mx.sym.Custom(mx.sym.var("x"), op_type="t_fail_fwd", name="f").simple_bind(mx.cpu(), x=(2,))
    with pytest.raises(mx.XGraphError, match="'t_fail_fwd' .node 'f'.: CustomOp.forward"):
        ex.forward()
    _failing("t_fail_bwd", "backward")
    ex = mx.sym.Custom(mx.sym.var("x"), op_type="t_fail_bwd", name="b").simple_bind(mx.cpu(), x=(2,))
    ex.forward(is_train=True)[0].asnumpy()           # forward alone runs
    with pytest.raises(mx.XGraphError, match="'t_fail_bwd' .node 'b'.: CustomOp.backward raised KeyError"):
        ex.backward()
    ex.forward(is_train=True)
    with pytest.raises(mx.XGraphError, match="CustomOp.backward raised KeyError"):
        ex.backward()                                 # the fused forward+backward step
    net = mx.sym.SoftmaxOutput(mx.sym.Custom(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc"),
                                             op_type="t_fail_bwd", name="b"), name="softmax")
    mod = mx.mod.Module(net)
    with pytest.raises(mx.XGraphError, match="'t_fail_bwd' .node 'b'.: CustomOp.backward"):
        mod.fit(mx.io.NDArrayIter(np.ones((4, 3), np.float32), np.zeros(4, np.float32), batch_size=2),
                num_epoch=1, progress_bar=False)          # the Trainer's fused step


def test_wrong_infer_shape_results_raise_xgraph_errors():
    class WrongCount(mx.operator.CustomOpProp):
        def infer_shape(self, in_shape):
            return in_shape, [in_shape[0], in_shape[0]], []

    class WrongInput(mx.operator.CustomOpProp):
        def infer_shape(self, in_shape):
            return [(7,)], [(7,)], []

    class Lies(mx.operator.CustomOpProp):          # declares (3,), forward writes the input's shape
        def infer_shape(self, in_shape):
            return in_shape, [(3,)], []

        def create_operator(self, ctx, shapes, dtypes):
            return Square()

    class Raises(mx.operator.CustomOpProp):
        def infer_shape(self, in_shape):
            raise RuntimeError("cannot")

    for name, cls in (("t_wrong_count", WrongCount), ("t_wrong_input", WrongInput), ("t_lies", Lies),
                      ("t_raises", Raises)):
        mx.operator.register(name)(cls)
    x = mx.sym.var("x")
    with pytest.raises(mx.XGraphError, match="t_wrong_count.*infer_shape returned 2 output entries, 1 expected"):
        mx.sym.Custom(x, op_type="t_wrong_count").infer_shape(x=(2,))
    with pytest.raises(mx.ShapeError, match=r"t_wrong_input.*says input 'data' has shape \(7,\), but it has shape \(2,\)"):
        mx.sym.Custom(x, op_type="t_wrong_input").infer_shape(x=(2,))
    with pytest.raises(mx.XGraphError, match="t_raises.*infer_shape raised RuntimeError: cannot"):
        mx.sym.Custom(x, op_type="t_raises").infer_shape(x=(2,))
    assert mx.sym.Custom(x, op_type="t_raises").infer_shape_partial()[1] == [()]
    with pytest.raises(mx.XGraphError, match=r"t_lies.*CustomOp.forward raised ShapeError: cannot assign an "
                                             r"array of shape \(2,\) to an NDArray of shape \(3,\)"):
        mx.nd.Custom(mx.nd.ones((2,)), op_type="t_lies")


def test_constructor_errors_name_the_op_type():
    with pytest.raises(mx.XGraphError, match="'t_fill': creating the operator property raised TypeError"):
        mx.sym.Custom(op_type="t_fill", length=2)          # depth missing



def test_docs_custom_ops_snippets_run():
    doc = Path(__file__).resolve().parents[1] / "docs" / "custom_ops.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2
    ns: dict = {}
    exec(compile(blocks[0], "custom_ops.md[block 0]", "exec"), ns)
    assert ns["y"].asnumpy().tolist() == [1.0, 4.0, 9.0]
    assert ns["net"].list_arguments() == ["data"]
    exec(compile(blocks[1], "custom_ops.md[block 1]", "exec"), ns)
    ex = ns["y"].simple_bind(mx.cpu(), x=(2,))
    ex.arg_dict["x"][:] = np.array([0.0, 100.0], np.float32)
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), [0.0, 3.0], rtol=1e-6)


# -- MXNet's deprecated PythonOp API (NumpyOp, NDArrayOp) ------------------------------
class _NumpySoftmaxLoss(mx.operator.NumpyOp):
    """A loss head over numpy arrays: softmax forward, (p - onehot(label)) backward."""

    def __init__(self):
        super().__init__(need_top_grad=False)

    def list_arguments(self):
        return ["data", "label"]

    def infer_shape(self, in_shape):
        return [in_shape[0], [in_shape[0][0]]], [in_shape[0]]

    def forward(self, in_data, out_data):
        assert all(isinstance(a, np.ndarray) for a in in_data + out_data)
        e = np.exp(in_data[0] - in_data[0].max(axis=1, keepdims=True))
        out_data[0][:] = e / e.sum(axis=1, keepdims=True)

    def backward(self, out_grad, in_data, out_data, in_grad):
        labels = in_data[1].astype(int)
        in_grad[0][:] = out_data[0]
        in_grad[0][np.arange(len(labels)), labels] -= 1.0


def test_numpy_op_loss_head_infers_shapes_runs_and_matches_softmax_output():
    with pytest.warns(DeprecationWarning, match="CustomOp"):
        op = _NumpySoftmaxLoss()
    sym = op.get_symbol(mx.sym.var("x"), name="smax")
    assert sym.list_arguments() == ["x", "smax_label"]
    arg_shapes, out_shapes, _ = sym.infer_shape(x=(4, 3))
    assert arg_shapes == [(4, 3), (4,)] and out_shapes == [(4, 3)]
    x = np.random.RandomState(0).randn(4, 3).astype(np.float32)
    label = np.array([0, 2, 1, 2], np.float32)
    ref = mx.sym.SoftmaxOutput(mx.sym.var("x"), mx.sym.var("smax_label"))
    runs = []
    for s in (sym, ref):
        grads = {"x": mx.nd.zeros((4, 3)), "smax_label": mx.nd.zeros((4,))}
        exe = s.bind(mx.cpu(), {"x": mx.nd.array(x), "smax_label": mx.nd.array(label)}, args_grad=grads,
                     grad_req={"x": "write", "smax_label": "null"})
        exe.forward(is_train=True)
        exe.backward()
        runs.append((exe.outputs[0].asnumpy(), grads["x"].asnumpy()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-5, atol=1e-7)


def test_numpy_op_defaults_are_mxnets_identity_and_unit_gradient_with_grad_req_add():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        op = mx.operator.NumpyOp()
    sym = op(mx.sym.var("X"), name="identity")   # __call__ is get_symbol
    x = mx.nd.array([1.0, -2.0, 3.0])
    dx = mx.nd.ones((3,))
    exe = sym.bind(mx.cpu(), args=[x], args_grad={"X": dx}, grad_req="add")
    exe.forward(is_train=True)
    exe.backward(mx.nd.array([5.0, 5.0, 5.0]))
    assert exe.outputs[0].asnumpy().tolist() == [1.0, -2.0, 3.0]
    assert dx.asnumpy().tolist() == [2.0, 2.0, 2.0]   # 1 (kept) + the default backward's 1.0


def test_ndarray_op_sees_ndarrays_and_its_backward_dependencies():
    seen = {}

    class Scale(mx.operator.NDArrayOp):
        def forward(self, in_data, out_data):
            seen["forward"] = type(in_data[0]).__name__
            out_data[0][:] = in_data[0] * 3

        def backward(self, out_grad, in_data, out_data, in_grad):
            seen["backward"] = type(out_grad[0]).__name__
            in_grad[0][:] = out_grad[0] * 3

        def declare_backward_dependency(self, out_grad, in_data, out_data):
            return list(out_grad)

    with pytest.warns(DeprecationWarning):
        op = Scale()
    x = mx.sym.var("x")
    y = op.get_symbol(x) * x      # d/dx (3x * x) = 6x
    exe = y.simple_bind(mx.cpu(), x=(2,))
    exe.arg_dict["x"][:] = np.array([1.0, 2.0], np.float32)
    exe.forward(is_train=True)
    exe.backward(mx.nd.ones((2,)))
    assert exe.outputs[0].asnumpy().tolist() == [3.0, 12.0]
    assert exe.grad_dict["x"].asnumpy().tolist() == [6.0, 12.0]
    assert seen == {"forward": "NDArray", "backward": "NDArray"}
