"""mx.rnn: the symbolic RNN cells against a numpy model of the fused RNN (MXNet's packed layout),
fused vs unfused cells with packed/unpacked weights, unroll layouts and merging, begin states,
initializers, checkpoints, BucketSentenceIter with Module training, and the error messages."""
from __future__ import annotations

import os

import numpy as np
import pytest

import xgraph as mx
from test_ops_rnn import np_rnn
from xgraph.errors import AttributeValueError, ConfigError, ShapeError, SymbolError

RNG = np.random.default_rng(11)
T, N, I, H = 3, 2, 4, 5


def forward(sym, values, out_grads=None):
    """Outputs (and, with ``out_grads``, the gradients of every argument) of ``sym`` on ``values``."""
    shapes = {k: v.shape for k, v in values.items()}
    ex = sym.simple_bind(mx.cpu(), grad_req="write" if out_grads is not None else "null", **shapes)
    for k, v in values.items():
        ex.arg_dict[k][:] = v
    outs = [o.asnumpy() for o in ex.forward(is_train=out_grads is not None)]
    if out_grads is None:
        return outs, {}
    ex.backward([mx.nd.array(g) for g in out_grads])
    return outs, {k: g.asnumpy() for k, g in ex.grad_dict.items() if g is not None}


def fused_values(cell, layout="NTC", scale=0.4):
    """Random data laid out as ``layout`` and a random packed parameter vector for ``cell``."""
    out, _ = cell.unroll(T, mx.sym.var("data"), layout=layout, merge_outputs=True)
    dshape = (N, T, I) if layout == "NTC" else (T, N, I)
    args, _, _ = out.infer_shape(data=dshape)
    shapes = dict(zip(out.list_arguments(), args))
    return out, {"data": RNG.standard_normal(dshape).astype(np.float32),
                 cell._parameter.name: (RNG.standard_normal(shapes[cell._parameter.name]) * scale).astype(np.float32)}


MODES = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_and_unfused_match_numpy(mode, bidirectional):
    """2 layers: the fused cell, its unfuse()d stack fed unpacked+repacked weights, and numpy agree,
    forwards and in every gradient (the unfused gradients packed back equal the fused ones)."""
    fused = mx.rnn.FusedRNNCell(H, num_layers=2, mode=mode, bidirectional=bidirectional, prefix="f_")
    f_out, values = fused_values(fused)
    flat = values["f_parameters"]
    stack = fused.unfuse()
    s_out, _ = stack.unroll(T, mx.sym.var("data"), layout="NTC", merge_outputs=True)
    args = {"f_parameters": mx.nd.array(flat)}
    s_values = {k: v.asnumpy() for k, v in stack.pack_weights(fused.unpack_weights(args)).items()}
    assert sorted(s_values) == sorted(n for n in s_out.list_arguments() if n != "data")
    s_values["data"] = values["data"]

    D = 2 if bidirectional else 1
    zeros = np.zeros((2 * D, N, H))
    y, _, _ = np_rnn(mode, values["data"].transpose(1, 0, 2).astype(np.float64), flat.astype(np.float64),
                     zeros, zeros if mode == "lstm" else None, H, 2, D)
    dy = RNG.standard_normal((N, T, D * H)).astype(np.float32)
    (fy,), f_grads = forward(f_out, values, [dy])
    (sy,), s_grads = forward(s_out, s_values, [dy])
    np.testing.assert_allclose(fy, y.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sy, y.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s_grads["data"], f_grads["data"], rtol=1e-4, atol=1e-5)
    packed = fused.pack_weights(stack.unpack_weights({k: mx.nd.array(v) for k, v in s_grads.items() if k != "data"}))
    np.testing.assert_allclose(packed["f_parameters"].asnumpy(), f_grads["f_parameters"], rtol=1e-4, atol=1e-5)


def test_fused_next_states_match_unfused_states():
    fused = mx.rnn.FusedRNNCell(H, num_layers=2, mode="lstm", get_next_state=True, prefix="")
    out, states = fused.unroll(T, mx.sym.var("data"), layout="TNC", merge_outputs=True)
    _, values = fused_values(fused, layout="TNC")
    f_outs, _ = forward(mx.sym.Group([out] + states), values)
    stack = fused.unfuse()
    s_out, s_states = stack.unroll(T, mx.sym.var("data"), layout="TNC", merge_outputs=True)
    s_values = {k: v.asnumpy() for k, v in stack.pack_weights(fused.unpack_weights(
        {"parameters": mx.nd.array(values["parameters"])})).items()}
    s_values["data"] = values["data"]
    s_outs, _ = forward(mx.sym.Group([s_out] + s_states), s_values)
    np.testing.assert_allclose(s_outs[0], f_outs[0], rtol=1e-5, atol=1e-6)
    h, c = f_outs[1], f_outs[2]                       # (layers, N, H) each
    for layer in range(2):                             # the stack's states: h0, c0, h1, c1
        np.testing.assert_allclose(s_outs[1 + 2 * layer], h[layer], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s_outs[2 + 2 * layer], c[layer], rtol=1e-5, atol=1e-6)
    assert states[0].attr("__layout__") == "LNC"


def test_unpacked_names_are_mxnets():
    fused = mx.rnn.FusedRNNCell(2, num_layers=2, mode="gru", bidirectional=True, prefix="gru_")
    flat = np.arange(fused_param_size(fused, input_size=3), dtype=np.float32)
    args = fused.unpack_weights({"gru_parameters": mx.nd.array(flat), "other": mx.nd.zeros((1,))})
    assert "gru_parameters" not in args and "other" in args
    assert args["gru_l0_i2h_r_weight"].shape == (2, 3)
    assert args["gru_r1_i2h_o_weight"].shape == (2, 4)           # layer 1 reads both directions
    assert args["gru_l0_h2h_z_bias"].shape == (2,)
    assert len([k for k in args if k.startswith("gru_")]) == 2 * 2 * 2 * 3 * 2
    # MXNet's layout: the first piece is l0's i2h r-gate weight, the last r1's h2h o-gate bias
    np.testing.assert_array_equal(args["gru_l0_i2h_r_weight"].asnumpy().ravel(), flat[:6])
    np.testing.assert_array_equal(args["gru_r1_h2h_o_bias"].asnumpy(), flat[-2:])
    back = fused.pack_weights(args)
    np.testing.assert_array_equal(back["gru_parameters"].asnumpy(), flat)

    lstm = mx.rnn.LSTMCell(3, prefix="lstm_")
    w = np.arange(12 * 4, dtype=np.float32).reshape(12, 4)
    cell_args = lstm.unpack_weights({"lstm_i2h_weight": w, "lstm_i2h_bias": np.arange(12.0),
                                     "lstm_h2h_weight": np.ones((12, 3)), "lstm_h2h_bias": np.zeros(12)})
    assert sorted(k for k in cell_args if "i2h" in k and "weight" in k) == \
        ["lstm_i2h_c_weight", "lstm_i2h_f_weight", "lstm_i2h_i_weight", "lstm_i2h_o_weight"]
    np.testing.assert_array_equal(cell_args["lstm_i2h_f_weight"].asnumpy(), w[3:6])
    np.testing.assert_array_equal(lstm.pack_weights(cell_args)["lstm_i2h_weight"].asnumpy(), w)


def fused_param_size(cell, input_size):
    out, _ = cell.unroll(1, mx.sym.var("data"), layout="TNC")
    shapes = dict(zip(out.list_arguments(), out.infer_shape(data=(1, 1, input_size))[0]))
    return shapes[cell._parameter.name][0]


@pytest.mark.parametrize("cell_fn", [lambda: mx.rnn.LSTMCell(H, prefix="c_"), lambda: mx.rnn.GRUCell(H, prefix="c_"),
                                     lambda: mx.rnn.RNNCell(H, activation="relu", prefix="c_")])
def test_layouts_and_merging_agree(cell_fn):
    """NTC and TNC give the same numbers; merge_outputs=False gives one (N, H) symbol per step."""
    x = RNG.standard_normal((N, T, I)).astype(np.float32)
    merged_ntc, _ = cell_fn().unroll(T, mx.sym.var("data"), layout="NTC", merge_outputs=True)
    merged_tnc, _ = cell_fn().unroll(T, mx.sym.var("data"), layout="TNC", merge_outputs=True)
    steps, _ = cell_fn().unroll(T, mx.sym.var("data"), layout="NTC", merge_outputs=False)
    assert isinstance(steps, list) and len(steps) == T and [s.name for s in steps][-1] == "c_t2_out"
    args, _, _ = merged_ntc.infer_shape(data=x.shape)
    values = {n: (RNG.standard_normal(s) * 0.5).astype(np.float32)
              for n, s in zip(merged_ntc.list_arguments(), args) if n != "data"}
    (a,), _ = forward(merged_ntc, {**values, "data": x})
    (b,), _ = forward(merged_tnc, {**values, "data": x.transpose(1, 0, 2)})
    per_step, _ = forward(mx.sym.Group(steps), {**values, "data": x})
    assert a.shape == (N, T, H) and b.shape == (T, N, H)
    np.testing.assert_allclose(a, b.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)
    for t in range(T):
        np.testing.assert_allclose(per_step[t], a[:, t], rtol=1e-5, atol=1e-6)
    # a list of per-step inputs unrolls the same way
    listed, _ = cell_fn().unroll(T, [mx.sym.var(f"x{t}") for t in range(T)], merge_outputs=True)
    (c,), _ = forward(listed, {**values, **{f"x{t}": x[:, t] for t in range(T)}})
    np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)


def test_begin_state_shapes_and_fed_states():
    cell = mx.rnn.LSTMCell(H, prefix="l_")
    out, states = cell.unroll(T, mx.sym.var("data"), merge_outputs=True)
    _, out_shapes, _ = mx.sym.Group([out] + states).infer_shape(data=(N, T, I))
    assert out_shapes == [(N, T, H), (N, H), (N, H)]
    assert out.list_arguments() == ["data", "l_i2h_weight", "l_i2h_bias", "l_h2h_weight", "l_h2h_bias"]

    fused = mx.rnn.FusedRNNCell(H, num_layers=3, mode="gru", bidirectional=True, get_next_state=True)
    f_out, [h] = fused.unroll(T, mx.sym.var("data"), layout="NTC", merge_outputs=True)
    assert mx.sym.Group([f_out, h]).infer_shape(data=(N, T, I))[1] == [(N, T, 2 * H), (6, N, H)]

    # states fed at bind time: begin_state(func=mx.sym.Variable) makes variables of shape (0, H)
    fed = mx.rnn.GRUCell(H, prefix="g_")
    begin = fed.begin_state(func=mx.sym.Variable)
    assert [b.name for b in begin] == ["g_begin_state_0"] and begin[0].attr("__shape__") == "(0, 5)"
    g_out, _ = fed.unroll(T, mx.sym.var("data"), begin_state=begin, merge_outputs=True)
    args, _, _ = g_out.infer_shape(data=(N, T, I), g_begin_state_0=(N, H))
    values = {n: (RNG.standard_normal(s) * 0.5).astype(np.float32) for n, s in zip(g_out.list_arguments(), args)}
    (y,), _ = forward(g_out, values)
    flat = np.concatenate([values["g_i2h_weight"].ravel(), values["g_h2h_weight"].ravel(),
                           values["g_i2h_bias"], values["g_h2h_bias"]]).astype(np.float64)
    ref, _, _ = np_rnn("gru", values["data"].transpose(1, 0, 2).astype(np.float64), flat,
                       values["g_begin_state_0"][None].astype(np.float64), None, H, 1, 1)
    np.testing.assert_allclose(y, ref.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


def test_ones_begin_state_and_custom_step_cell():
    """A non-zero constant begin state, and a user-defined cell stepping with raw begin states."""
    cell = mx.rnn.RNNCell(H, prefix="r_")
    out, _ = cell.unroll(1, mx.sym.var("data"), begin_state=cell.begin_state(func=mx.sym.ones), merge_outputs=True)
    values = {"data": np.zeros((N, 1, I), np.float32), "r_i2h_weight": np.zeros((H, I), np.float32),
              "r_i2h_bias": np.zeros(H, np.float32), "r_h2h_weight": np.eye(H, dtype=np.float32),
              "r_h2h_bias": np.zeros(H, np.float32)}
    (y,), _ = forward(out, values)
    np.testing.assert_allclose(y, np.full((N, 1, H), np.tanh(1.0)), rtol=1e-6)

    class Doubler(mx.rnn.BaseRNNCell):
        @property
        def state_info(self):
            return [{"shape": (0, I), "__layout__": "NC"}]

        def __call__(self, inputs, states):
            out = inputs + 2 * states[0]
            return out, [out]
    d_out, _ = Doubler(prefix="d_").unroll(2, mx.sym.var("data"), merge_outputs=True)
    assert d_out.infer_shape(data=(N, 2, I))[1] == [(N, 2, I)]


def test_residual_zoneout_dropout_cells():
    x = RNG.standard_normal((N, T, I)).astype(np.float32)
    base = mx.rnn.GRUCell(I, prefix="g_")
    res_out, _ = mx.rnn.ResidualCell(base).unroll(T, mx.sym.var("data"), merge_outputs=True)
    plain_out, _ = mx.rnn.GRUCell(I, prefix="g_").unroll(T, mx.sym.var("data"), merge_outputs=True)
    args, _, _ = plain_out.infer_shape(data=x.shape)
    values = {n: (RNG.standard_normal(s) * 0.5).astype(np.float32) for n, s in zip(plain_out.list_arguments(), args)}
    values["data"] = x
    (r,), _ = forward(res_out, values)
    (p,), _ = forward(plain_out, values)
    np.testing.assert_allclose(r, p + x, rtol=1e-5, atol=1e-6)
    with pytest.raises(SymbolError, match="modifier cell"):
        base.begin_state()

    zone = mx.rnn.ZoneoutCell(mx.rnn.GRUCell(I, prefix="g_"), zoneout_outputs=0.5, zoneout_states=0.5)
    z_out, _ = zone.unroll(T, mx.sym.var("data"), merge_outputs=True)
    ex = z_out.simple_bind(mx.cpu(), grad_req="null", data=x.shape)
    for k, v in values.items():
        ex.arg_dict[k][:] = v
    np.testing.assert_allclose(ex.forward(is_train=False)[0].asnumpy(), p, rtol=1e-5, atol=1e-6)
    z = ex.forward(is_train=True)[0].asnumpy()
    assert not np.allclose(z, p)            # some units kept their previous value while training
    assert np.all(np.isclose(z[:, 0], p[:, 0]) | (z[:, 0] == 0))  # step 0's previous output is 0

    stack = mx.rnn.SequentialRNNCell()
    stack.add(mx.rnn.ZoneoutCell(mx.rnn.GRUCell(I, prefix="z0_"), zoneout_states=0.3))
    stack.add(mx.rnn.GRUCell(I, prefix="z1_"))
    assert [s.name for s in stack.begin_state(func=mx.sym.Variable)] == ["z0_begin_state_0", "z1_begin_state_0"]

    drop_out, states = mx.rnn.DropoutCell(0.5).unroll(T, mx.sym.var("data"), merge_outputs=True)
    assert states == [] and drop_out.infer_shape(data=x.shape)[1] == [x.shape]


def test_bidirectional_and_sequential_names():
    bi = mx.rnn.BidirectionalCell(mx.rnn.LSTMCell(H, prefix="l0_"), mx.rnn.LSTMCell(H, prefix="r0_"),
                                  output_prefix="bi_")
    outs, states = bi.unroll(T, [mx.sym.var(f"t{i}") for i in range(T)])
    assert [o.name for o in outs] == ["bi_t0", "bi_t1", "bi_t2"]
    assert len(states) == 2 and len(states[0]) == 2           # [l_states, r_states], as MXNet
    stack = mx.rnn.SequentialRNNCell()
    stack.add(mx.rnn.LSTMCell(H, prefix="a_"))
    stack.add(mx.rnn.LSTMCell(H, prefix="b_"))
    assert sorted(stack.params._params) == sorted(f"{p}_{g}_{k}" for p in "ab" for g in ("i2h", "h2h")
                                                  for k in ("weight", "bias"))
    assert stack.state_shape == [(0, H)] * 4


def test_initializers_through_module():
    fused = mx.rnn.FusedRNNCell(H, num_layers=2, mode="lstm", forget_bias=3.0, prefix="f_")
    out, _ = fused.unroll(T, mx.sym.var("data"), layout="TNC", merge_outputs=True)
    mod = mx.mod.Module(out, label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", (T, N, I))], label_shapes=None)
    mod.init_params(mx.init.Xavier())
    args = fused.unpack_weights(mod.get_params()[0])
    for layer in range(2):
        for group in ("i2h", "h2h"):
            np.testing.assert_array_equal(args[f"f_l{layer}_{group}_f_bias"].asnumpy(), 3.0)
            np.testing.assert_array_equal(args[f"f_l{layer}_{group}_i_bias"].asnumpy(), 0.0)
        w = args[f"f_l{layer}_i2h_c_weight"].asnumpy()
        bound = np.sqrt(3.0 / ((w.shape[0] + w.shape[1]) / 2))      # Xavier on the (H, in) piece
        assert np.abs(w).max() <= bound and np.abs(w).std() > 0

    cell = mx.rnn.LSTMCell(H, forget_bias=2.0, prefix="l_")
    c_out, _ = cell.unroll(1, mx.sym.var("data"), merge_outputs=True)
    mod = mx.mod.Module(c_out, label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", (N, 1, I))], label_shapes=None)
    mod.init_params()
    np.testing.assert_array_equal(mod.get_params()[0]["l_i2h_bias"].asnumpy(),
                                  np.r_[np.zeros(H), np.full(H, 2.0), np.zeros(2 * H)])


def test_checkpoint_moves_weights_between_fused_and_unfused(tmp_path):
    fused = mx.rnn.FusedRNNCell(H, num_layers=2, mode="gru", bidirectional=True, prefix="f_")
    f_out, values = fused_values(fused)
    prefix = os.path.join(tmp_path, "gru")
    mx.rnn.save_rnn_checkpoint(fused, prefix, 3, f_out, {"f_parameters": mx.nd.array(values["f_parameters"])}, {})
    _, saved, _ = mx.model.load_checkpoint(prefix, 3)
    assert "f_parameters" not in saved and "f_r1_h2h_z_weight" in saved
    stack = fused.unfuse()
    s_out, _ = stack.unroll(T, mx.sym.var("data"), layout="NTC", merge_outputs=True)
    _, s_args, _ = mx.rnn.load_rnn_checkpoint(stack, prefix, 3)
    assert sorted(s_args) == sorted(n for n in s_out.list_arguments() if n != "data")
    (a,), _ = forward(f_out, values)
    (b,), _ = forward(s_out, {**{k: v.asnumpy() for k, v in s_args.items()}, "data": values["data"]})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    _, f_args, _ = mx.rnn.load_rnn_checkpoint(fused, prefix, 3)
    np.testing.assert_array_equal(f_args["f_parameters"].asnumpy(), values["f_parameters"])

    callback = mx.rnn.do_rnn_checkpoint(fused, prefix, period=2)
    callback(1, f_out, {"f_parameters": mx.nd.array(values["f_parameters"])}, {})
    assert os.path.exists(f"{prefix}-0002.params")


def test_conv_cells_shapes():
    for make, n_states in ((mx.rnn.ConvRNNCell, 1), (mx.rnn.ConvLSTMCell, 2), (mx.rnn.ConvGRUCell, 1)):
        cell = make(input_shape=(1, 3, 8, 6), num_hidden=4, i2h_kernel=(3, 3), i2h_pad=(1, 1), prefix="c_")
        out, states = cell.unroll(2, mx.sym.var("data"), layout="NTC", merge_outputs=True)
        assert len(states) == n_states
        assert out.infer_shape(data=(2, 2, 3, 8, 6))[1] == [(2, 2, 4, 8, 6)]
    with pytest.raises(AttributeValueError, match="odd"):
        mx.rnn.ConvRNNCell(input_shape=(1, 3, 8, 6), num_hidden=4, h2h_kernel=(2, 2))


# -- text data -----------------------------------------------------------------------------------
def test_encode_sentences():
    sents, vocab = mx.rnn.encode_sentences([["a", "b"], ["b", "c"]], invalid_label=0, start_label=0)
    assert vocab == {"\n": 0, "a": 1, "b": 2, "c": 3} and sents == [[1, 2], [2, 3]]
    sents, vocab = mx.rnn.io.encode_sentences([["a", "x", "y"]], vocab={"a": 1}, unknown_token="UNK")
    assert sents == [[1, 0, 0]] and vocab == {"a": 1, "UNK": 0}
    with pytest.raises(ConfigError, match="'x' is not in the given vocabulary"):
        mx.rnn.encode_sentences([["x"]], vocab={"a": 1})


def test_bucket_sentence_iter_batches():
    sents = [[1, 2, 3], [4, 5], [6, 7, 8], [9, 10], [1, 2, 3, 4, 5, 6, 7]]
    it = mx.rnn.BucketSentenceIter(sents, batch_size=2, buckets=[2, 3], invalid_label=0)
    assert it.default_bucket_key == 3 and it.provide_data[0].shape == (2, 3)
    batches = list(it)
    assert sorted(b.bucket_key for b in batches) == [2, 3]
    for b in batches:
        data, label = b.data[0].asnumpy(), b.label[0].asnumpy()
        assert data.shape == (2, b.bucket_key) and b.provide_data[0].shape == data.shape
        np.testing.assert_array_equal(label[:, :-1], data[:, 1:])
        np.testing.assert_array_equal(label[:, -1], 0)
    it.reset()
    assert len(list(it)) == 2
    tn = mx.rnn.BucketSentenceIter(sents[:4], batch_size=2, layout="TN")
    assert sorted(b.data[0].shape for b in tn) == [(2, 2), (3, 2)]
    with pytest.raises(ConfigError, match="layout"):
        mx.rnn.BucketSentenceIter(sents, batch_size=2, layout="NC")
    with pytest.raises(ConfigError, match="no bucket"):
        mx.rnn.BucketSentenceIter(sents, batch_size=5)


def lm_symbol(seq_len, vocab, hidden=8):
    data = mx.sym.var("data")
    embed = mx.sym.Embedding(data, input_dim=vocab, output_dim=hidden, name="embed")
    cell = mx.rnn.FusedRNNCell(hidden, num_layers=1, mode="lstm", prefix="lstm_")
    out, _ = cell.unroll(seq_len, embed, layout="NTC", merge_outputs=True)
    pred = mx.sym.FullyConnected(mx.sym.reshape(out, shape=(-1, hidden)), num_hidden=vocab, name="pred")
    label = mx.sym.reshape(mx.sym.var("softmax_label"), shape=(-1,))
    return mx.sym.SoftmaxOutput(pred, label, use_ignore=True, ignore_label=0, name="softmax")


def test_module_trains_a_language_model_over_buckets():
    """One Module per bucket length, sharing the parameters (what BucketingModule does): each
    bucket's graph trains on its own batches and the loss falls."""
    vocab = 6
    cycle = [1, 2, 3, 4, 5]
    sents = [[cycle[(s + t) % 5] for t in range(n)] for s in range(40) for n in (4, 6)]
    it = mx.rnn.BucketSentenceIter(sents, batch_size=8, buckets=[4, 6], invalid_label=0)
    mods: dict = {}
    shared: dict = {}

    def module_for(key):
        if key not in mods:
            m = mx.mod.Module(lm_symbol(key, vocab), context=mx.cpu())
            m.bind(data_shapes=[("data", (8, key))],
                   label_shapes=[("softmax_label", (8, key))])
            m.init_params(mx.init.Xavier(), arg_params=shared.get("args"), allow_missing=True)
            m.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.05})
            mods[key] = m
        return mods[key]

    def epoch_loss():
        losses = []
        it.reset()
        for batch in it:
            m = module_for(batch.bucket_key)
            if "args" in shared:
                m.set_params(shared["args"], {})
            m.forward(batch, is_train=True)
            prob = m.get_outputs()[0].asnumpy()
            label = batch.label[0].asnumpy().reshape(-1).astype(int)
            keep = label != 0
            losses.append(-np.log(prob[np.arange(label.size), label][keep] + 1e-9).mean())
            m.backward()
            m.update()
            shared["args"] = m.get_params()[0]
        return float(np.mean(losses))

    np.random.seed(0)
    first = epoch_loss()
    for _ in range(4):
        last = epoch_loss()
    assert set(mods) == {4, 6}
    assert last < 0.5 * first, (first, last)


# -- errors ----------------------------------------------------------------------------------------
def test_bad_input_errors():
    with pytest.raises(AttributeValueError, match="unknown mode 'lstn'"):
        mx.rnn.FusedRNNCell(4, mode="lstn")
    with pytest.raises(AttributeValueError, match="num_hidden"):
        mx.rnn.LSTMCell(0)
    cell = mx.rnn.LSTMCell(4, prefix="l_")
    with pytest.raises(SymbolError, match="length is 3 but 2 input symbols"):
        cell.unroll(3, [mx.sym.var("a"), mx.sym.var("b")])
    with pytest.raises(SymbolError, match="layout 'NCW'"):
        cell.unroll(3, mx.sym.var("data"), layout="NCW")
    with pytest.raises(SymbolError, match="inputs is None"):
        cell.unroll(3, None)
    with pytest.raises(SymbolError, match="expected 2 state"):
        cell(mx.sym.var("x"), [mx.sym.var("h")])
    fused = mx.rnn.FusedRNNCell(4, mode="gru")
    with pytest.raises(SymbolError, match="layout 'NCT' is not supported"):
        fused.unroll(3, mx.sym.var("data"), layout="NCT")
    with pytest.raises(SymbolError, match="cannot be stepped"):
        fused(mx.sym.var("x"), [])
    with pytest.raises(SymbolError, match="expected 1 state"):
        fused.unroll(3, mx.sym.var("data"), begin_state=[mx.sym.var("h"), mx.sym.var("c")])
    with pytest.raises(SymbolError, match="'gru_parameters' is missing"):
        fused.unpack_weights({})
    with pytest.raises(ShapeError, match="does not fit mode='gru'"):
        fused.unpack_weights({"gru_parameters": mx.nd.zeros((7,))})
    good = fused.unpack_weights({"gru_parameters": mx.nd.zeros((fused_param_size(fused, 3),))})
    good["gru_l0_h2h_r_weight"] = mx.nd.zeros((4, 5))
    with pytest.raises(ShapeError, match="'gru_l0_h2h_r_weight' has shape"):
        fused.pack_weights(good)
    with pytest.raises(SymbolError, match="cannot wrap a FusedRNNCell"):
        mx.rnn.ZoneoutCell(fused)
    with pytest.raises(AttributeValueError, match="dropout"):
        mx.rnn.DropoutCell("half")
    bi = mx.rnn.BidirectionalCell(mx.rnn.GRUCell(2, prefix="a_"), mx.rnn.GRUCell(2, prefix="b_"))
    with pytest.raises(SymbolError, match="cannot be stepped"):
        bi(mx.sym.var("x"), [])
    with pytest.raises(SymbolError, match="params either"):
        shared = mx.rnn.SequentialRNNCell(params=mx.rnn.RNNParams("s_"))
        inner = mx.rnn.GRUCell(2, prefix="a_")
        inner.params  # noqa: B018 - asking for the params hands them to the caller, as MXNet
        shared.add(inner)
