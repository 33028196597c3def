"""The fused RNN op against an independent numpy model of MXNet's layout, the MXNet case,
finite differences (float64), and shape/attribute rules."""
from __future__ import annotations

import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import check_inference, check_training, load_case
from opcheck import check_numeric_gradient, run
from xgraph.errors import XGraphError

RNG = np.random.default_rng(7)
GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_rnn(mode, x, flat, h0, c0, H, L, D, P=None, lengths=None):
    """Step-by-step numpy model: returns (y, hT, cT)."""
    T, N, C = x.shape
    G = GATES[mode]
    Pout = P or H
    off = 0
    W = {}

    def take(n):
        nonlocal off
        v = flat[off:off + n]
        off += n
        return v
    for layer in range(L):
        inp = C if layer == 0 else Pout * D
        for d in range(D):
            W[layer, d, "wx"] = take(G * H * inp).reshape(G * H, inp)
            W[layer, d, "wh"] = take(G * H * Pout).reshape(G * H, Pout)
            if P:
                W[layer, d, "wr"] = take(P * H).reshape(P, H)
    for layer in range(L):
        for d in range(D):
            W[layer, d, "bx"] = take(G * H)
            W[layer, d, "bh"] = take(G * H)
    assert off == flat.size
    lengths = np.full(N, T) if lengths is None else lengths.astype(int)
    inp = x
    hT, cT = np.zeros_like(h0), np.zeros_like(c0) if c0 is not None else None
    for layer in range(L):
        outs = np.zeros((T, N, Pout * D))
        for d in range(D):
            k = layer * D + d
            for n in range(N):
                h, c = h0[k, n].copy(), None if c0 is None else c0[k, n].copy()
                steps = range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1)
                for t in steps:
                    gx = W[layer, d, "wx"] @ inp[t, n] + W[layer, d, "bx"]
                    gh = W[layer, d, "wh"] @ h + W[layer, d, "bh"]
                    if mode == "lstm":
                        i, f, g, o = np.split(gx + gh, 4)
                        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                        h = sigmoid(o) * np.tanh(c)
                        if P:
                            h = W[layer, d, "wr"] @ h
                    elif mode == "gru":
                        xr, xz, xn = np.split(gx, 3)
                        hr, hz, hn = np.split(gh, 3)
                        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
                        h = (1 - z) * np.tanh(xn + r * hn) + z * h
                    else:
                        a = gx + gh
                        h = np.maximum(a, 0) if mode == "rnn_relu" else np.tanh(a)
                    outs[t, n, d * Pout:(d + 1) * Pout] = h
                hT[k, n] = h
                if c is not None:
                    cT[k, n] = c
        inp = outs
    return inp, hT, cT


def make(mode, T=4, N=2, C=3, H=3, L=1, D=1, P=None, seq=False, scale=0.5):
    kw = dict(state_size=H, num_layers=L, mode=mode, bidirectional=D == 2, state_outputs=True, name="rnn")
    if P:
        kw["projection_size"] = P
    if seq:
        kw["use_sequence_length"] = True
    sym = mx.sym.RNN(mx.sym.var("data"), **kw)
    args, _, _ = sym.infer_shape(data=(T, N, C))
    names = sym.list_arguments()
    vals = {}
    for n, s in zip(names, args):
        vals[n] = (RNG.standard_normal(s) * scale).astype(np.float32)
    if seq:
        vals["rnn_sequence_length"] = np.array([T, max(T - 2, 1)][:N], np.float32)
    return sym, vals


CASES = [("lstm", 1, 1, None), ("gru", 1, 1, None), ("rnn_tanh", 1, 1, None), ("rnn_relu", 1, 1, None),
         ("lstm", 2, 2, None), ("gru", 2, 2, None), ("lstm", 2, 2, 2), ("rnn_tanh", 3, 2, None)]


@pytest.mark.parametrize("mode,L,D,P", CASES)
def test_rnn_against_numpy(mode, L, D, P):
    sym, vals = make(mode, L=L, D=D, P=P)
    outs = run(sym, **vals)
    c0 = vals.get("rnn_state_cell")
    y, hT, cT = np_rnn(mode, vals["data"].astype(np.float64), vals["rnn_parameters"].astype(np.float64),
                       vals["rnn_state"].astype(np.float64), None if c0 is None else c0.astype(np.float64),
                       3, L, D, P)
    np.testing.assert_allclose(outs[0], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[1], hT, rtol=1e-5, atol=1e-5)
    if mode == "lstm":
        np.testing.assert_allclose(outs[2], cT, rtol=1e-5, atol=1e-5)
    assert len(outs) == (3 if mode == "lstm" else 2)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_sequence_length(mode):
    sym, vals = make(mode, T=5, D=2, seq=True)
    outs = run(sym, **vals)
    c0 = vals.get("rnn_state_cell")
    y, hT, cT = np_rnn(mode, vals["data"].astype(np.float64), vals["rnn_parameters"].astype(np.float64),
                       vals["rnn_state"].astype(np.float64), None if c0 is None else c0.astype(np.float64),
                       3, 1, 2, lengths=vals["rnn_sequence_length"])
    np.testing.assert_allclose(outs[0], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[1], hT, rtol=1e-5, atol=1e-5)
    assert np.all(outs[0][3:, 1] == 0)


def test_mxnet_case():
    case = load_case("rnn_lstm")
    check_inference(case)
    check_training(case)
    assert case.symbol.list_outputs() == case.meta["output_names"]
    arg_shapes, _, _ = case.symbol.infer_shape(data=case.inputs["data"].shape)
    assert dict(zip(case.symbol.list_arguments(), arg_shapes)) == \
        {k: tuple(v) for k, v in case.meta["arg_shapes"].items()}


@pytest.mark.parametrize("mode,D,P", [("gru", 2, None), ("lstm", 1, 2), ("rnn_tanh", 1, None)])
def test_numeric_gradient(mode, D, P):
    sym, vals = make(mode, T=3, N=1, C=2, H=2, D=D, P=P)
    check_numeric_gradient(sym, vals, list(vals), rtol=1e-4, atol=1e-6)


def test_dropout_between_layers_only_in_training():
    sym, vals = make("gru", L=2)
    sym_p, _ = make("gru", L=2)
    dropped = mx.sym.RNN(mx.sym.var("data"), state_size=3, num_layers=2, mode="gru", p=0.5,
                         state_outputs=True, name="rnn")
    base = run(sym, **vals)
    np.testing.assert_allclose(run(dropped, **vals)[0], base[0], rtol=1e-6)  # inference: no dropout
    ex = dropped.bind(mx.cpu(), args=vals, grad_req="null")
    train = ex.forward(is_train=True)[0].asnumpy()
    assert not np.allclose(train, base[0])


def test_defaults_names_and_errors():
    op = mx.ops.registry.get("RNN")
    d = op.with_defaults({"state_size": 2, "num_layers": 1, "mode": "gru"})
    assert (d["bidirectional"], d["p"], d["state_outputs"], d["projection_size"], d["use_sequence_length"]) == \
        (False, 0.0, False, None, False)
    assert mx.ops.registry.get("_npx_rnn") is op
    s = mx.sym.RNN(mx.sym.var("data"), state_size=2, num_layers=1, mode="gru", name="g")
    assert s.list_arguments() == ["data", "g_parameters", "g_state"] and s.list_outputs() == ["g_output"]
    s = mx.sym.RNN(mx.sym.var("data"), state_size=2, num_layers=1, mode="lstm", use_sequence_length=True, name="l")
    assert s.list_arguments() == ["data", "l_parameters", "l_state", "l_state_cell", "l_sequence_length"]
    bad = mx.sym.RNN(mx.sym.var("data"), mx.sym.var("w"), state_size=2, num_layers=1, mode="gru", name="g")
    with pytest.raises(XGraphError, match="parameters"):
        bad.infer_shape(data=(3, 2, 4), w=(7,))
    with pytest.raises(XGraphError, match="projection_size"):
        mx.sym.RNN(mx.sym.var("data"), state_size=2, num_layers=1, mode="gru", projection_size=1).infer_shape(
            data=(3, 2, 4))


def test_lstm_state_clip():
    sym = mx.sym.RNN(mx.sym.var("data"), state_size=3, num_layers=1, mode="lstm", state_outputs=True,
                     lstm_state_clip_min=-0.05, lstm_state_clip_max=0.05, name="rnn")
    _, vals = make("lstm", scale=2.0)
    outs = run(sym, **vals)
    assert np.all(np.abs(outs[2]) <= 0.05 + 1e-7)
