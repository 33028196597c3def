"""MXNet 1.9.1's interleaved attention matmuls (``_contrib_interleaved_matmul_*``) and CTCLoss:
forward values against numpy references written here (einsum over the interleaved layout; CTC by
enumerating every alignment) and MXNet 1.9.1's numbers, gradients by finite differences, the
symbol-level facts (names, aliases, inputs, outputs, JSON) and the errors for bad shapes or attributes."""
import itertools
import json

import numpy as np
import pytest

import xgraph as mx
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(91)
V = mx.sym.var
C = mx.sym.contrib


# -- numpy references ----------------------------------------------------------------
def _heads(x, heads, parts):
    """(seq, batch, heads * parts * d) -> (seq, batch, heads, parts, d)."""
    s, b, w = x.shape
    return x.reshape(s, b, heads, parts, w // (heads * parts))


def np_qk(q, k):
    """(q / sqrt(d)) @ k^T for q (sq, b, h, d), k (sk, b, h, d), as (b * h, sq, sk)."""
    s = np.einsum("sbhd,tbhd->bhst", q, k) / np.sqrt(q.shape[-1])
    return s.reshape(-1, q.shape[0], k.shape[0])


def np_valatt(att, v, heads):
    """attention (b * h, sq, sk) @ v (sk, b, h, d), as (sq, b, h * d)."""
    sk, b, h, d = v.shape
    out = np.einsum("bhst,tbhd->sbhd", att.reshape(b, h, -1, sk), v)
    return out.reshape(out.shape[0], b, h * d)


def np_ctc(x, label, blank):
    """-log p(label | softmax(x)) for x (T, C) by summing over all C**T alignments (0 when none fits)."""
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    total = 0.0
    for path in itertools.product(range(x.shape[1]), repeat=x.shape[0]):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed == list(label):
            total += np.prod(p[np.arange(x.shape[0]), path])
    return -np.log(total) if total > 0 else 0.0


# -- interleaved attention ---------------------------------------------------------------
def test_selfatt_qk_and_valatt_match_numpy():
    heads, seq, batch, d = 3, 5, 2, 4
    qkv = RNG.standard_normal((seq, batch, heads * 3 * d)).astype(np.float32)
    att = RNG.standard_normal((batch * heads, seq, seq)).astype(np.float32)
    x = _heads(qkv, heads, 3)
    qk = C.interleaved_matmul_selfatt_qk(V("qkv"), heads=heads)
    assert qk.infer_shape(qkv=qkv.shape)[1] == [(batch * heads, seq, seq)]
    np.testing.assert_allclose(run(qk, qkv=qkv)[0], np_qk(x[:, :, :, 0], x[:, :, :, 1]), rtol=1e-5, atol=1e-5)
    va = C.interleaved_matmul_selfatt_valatt(V("qkv"), V("att"), heads=heads)
    # the attention map's shape follows from the projections
    assert va.infer_shape(qkv=qkv.shape) == ([qkv.shape, att.shape], [(seq, batch, heads * d)], [])
    np.testing.assert_allclose(run(va, qkv=qkv, att=att)[0], np_valatt(att, x[:, :, :, 2], heads),
                               rtol=1e-5, atol=1e-5)


def test_encdec_qk_and_valatt_match_numpy():
    heads, sq, sk, batch, d = 2, 3, 4, 2, 5
    q = RNG.standard_normal((sq, batch, heads * d)).astype(np.float32)
    kv = RNG.standard_normal((sk, batch, heads * 2 * d)).astype(np.float32)
    att = RNG.standard_normal((batch * heads, sq, sk)).astype(np.float32)
    x = _heads(kv, heads, 2)
    qk = C.interleaved_matmul_encdec_qk(V("q"), V("kv"), heads=heads)
    np.testing.assert_allclose(run(qk, q=q, kv=kv)[0], np_qk(_heads(q, heads, 1)[:, :, :, 0], x[:, :, :, 0]),
                               rtol=1e-5, atol=1e-5)
    va = C.interleaved_matmul_encdec_valatt(V("kv"), V("att"), heads=heads)
    out = run(va, kv=kv, att=att)[0]
    assert out.shape == (sq, batch, heads * d)
    np.testing.assert_allclose(out, np_valatt(att, x[:, :, :, 1], heads), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("which", ["selfatt", "encdec"])
def test_interleaved_attention_gradients(which):
    heads, d = 2, 1
    if which == "selfatt":
        qkv = RNG.standard_normal((3, 2, heads * 3 * d))
        scores = C.interleaved_matmul_selfatt_qk(V("qkv"), heads=heads)
        sym = C.interleaved_matmul_selfatt_valatt(V("qkv"), mx.sym.softmax(scores, axis=-1), heads=heads)
        check_grad(sym, {"qkv": qkv}, rtol=1e-5, atol=1e-7)
    else:
        q, kv = RNG.standard_normal((2, 2, heads * d)), RNG.standard_normal((3, 2, heads * 2 * d))
        scores = C.interleaved_matmul_encdec_qk(V("q"), V("kv"), heads=heads)
        sym = C.interleaved_matmul_encdec_valatt(V("kv"), mx.sym.softmax(scores, axis=-1), heads=heads)
        check_grad(sym, {"q": q, "kv": kv}, rtol=1e-5, atol=1e-7)


def test_interleaved_attention_float16_and_names():
    qkv = RNG.standard_normal((4, 2, 12)).astype(np.float32)
    check_low_precision(C.interleaved_matmul_selfatt_qk(V("qkv"), heads=2), {"qkv": qkv}, "float16", scale=4)
    for name, inputs in (("selfatt_qk", ["queries_keys_values"]),
                         ("selfatt_valatt", ["queries_keys_values", "attention"]),
                         ("encdec_qk", ["queries", "keys_values"]),
                         ("encdec_valatt", ["keys_values", "attention"])):
        op = mx.ops.registry.get(f"_contrib_interleaved_matmul_{name}")
        assert op.input_names({"heads": 1}) == inputs
        sym = getattr(mx.sym.contrib, f"interleaved_matmul_{name}")(*[V(i) for i in inputs], heads=4, name="n")
        node = json.loads(sym.tojson())["nodes"][-1]
        assert (node["op"], node["attrs"]) == (f"_contrib_interleaved_matmul_{name}", {"heads": "4"})


def test_interleaved_attention_errors():
    with pytest.raises(mx.AttributeValueError, match="heads"):
        C.interleaved_matmul_selfatt_qk(V("x"), heads=0)
    with pytest.raises(mx.AttributeValueError, match="heads"):
        C.interleaved_matmul_selfatt_qk(V("x"))
    with pytest.raises(mx.ShapeError, match=r"att0.*13.*heads \* 3 = 6"):
        C.interleaved_matmul_selfatt_qk(V("x"), heads=2, name="att0").infer_shape(x=(5, 3, 13))
    with pytest.raises(mx.ShapeError, match=r"must be 3-D.*\(5, 12\)"):
        C.interleaved_matmul_selfatt_qk(V("x"), heads=2).infer_shape(x=(5, 12))
    with pytest.raises(mx.ShapeError, match=r"attention has shape \(6, 5, 4\), expected .* \(6, 5, 5\)"):
        C.interleaved_matmul_selfatt_valatt(V("x"), V("a"), heads=2).infer_shape(x=(5, 3, 12), a=(6, 5, 4))
    with pytest.raises(mx.ShapeError, match=r"batch 3 vs 4"):
        C.interleaved_matmul_encdec_qk(V("q"), V("kv"), heads=2).infer_shape(q=(2, 3, 4), kv=(5, 4, 8))
    with pytest.raises(mx.ShapeError, match=r"expected .* \(6, 2, 5\)"):
        C.interleaved_matmul_encdec_valatt(V("kv"), V("a"), heads=2).infer_shape(kv=(5, 3, 8), a=(6, 2, 4))


# -- CTCLoss --------------------------------------------------------------------------
def _outputs_and_grad(sym, heads, *more_heads, **args):
    """One executor: a training forward (numpy outputs), then backward with ``heads`` (and each of
    ``more_heads``): the outputs and the gradient(s) of x."""
    ex = sym.bind(mx.cpu(), args=args, args_grad={"x": np.zeros_like(args["x"])},
                  grad_req={n: "write" if n == "x" else "null" for n in args})
    outs = [o.asnumpy() for o in ex.forward(is_train=True)]
    got = []
    for h in (heads, *more_heads):
        ex.backward([mx.nd.array(x) for x in h])
        got.append(ex.grad_dict["x"].asnumpy())
    return (outs, *got)


def _ctc(label, **kw):
    names = kw.pop("names", ())
    ins = [V("x"), V("l")] + [V(n) for n in ("dl", "ll") if n in names]
    return mx.sym.CTCLoss(*ins, **kw)


def test_ctc_loss_matches_alignment_enumeration():
    x = RNG.standard_normal((4, 4, 4))
    # blank first: 0 pads; a repeat needs a blank between; an empty label is all blanks; a label that
    # cannot fit in the steps (3 labels + 2 blanks between the repeats > 4 steps) costs 0, as in MXNet
    label = np.array([[1, 2, 0], [3, 3, 0], [0, 0, 0], [2, 2, 2]], np.float64)
    got = run(_ctc(label), x=x, l=label)[0]
    np.testing.assert_allclose(got, [np_ctc(x[:, 0], [1, 2], 0), np_ctc(x[:, 1], [3, 3], 0),
                                     np_ctc(x[:, 2], [], 0), 0.0], rtol=1e-6)
    x = x[:, :3]
    # blank last (class 3): -1 pads, class 0 is a label
    label = np.array([[0, 1], [2, -1], [-1, -1]])
    got = run(_ctc(label, blank_label="last"), x=x, l=label)[0]
    np.testing.assert_allclose(got, [np_ctc(x[:, 0], [0, 1], 3), np_ctc(x[:, 1], [2], 3),
                                     np_ctc(x[:, 2], [], 3)], rtol=1e-6)
    # explicit lengths: the steps and labels past them do not count
    label, dl, ll = np.array([[1, 2], [2, 1], [3, 1]]), np.array([4, 3, 2]), np.array([2, 1, 0])
    sym = _ctc(label, names=("dl", "ll"), use_data_lengths=True, use_label_lengths=True)
    got = run(sym, x=x, l=label, dl=dl, ll=ll)[0]
    np.testing.assert_allclose(got, [np_ctc(x[:4, 0], [1, 2], 0), np_ctc(x[:3, 1], [2], 0),
                                     np_ctc(x[:2, 2], [], 0)], rtol=1e-6)


def test_ctc_loss_matches_mxnet():
    # MXNet 1.9.1 mx.nd.CTCLoss on RandomState(3).randn(4, 2, 5), backward with ones
    x = np.random.RandomState(3).randn(4, 2, 5).astype(np.float32)
    label = np.array([[0, 1], [2, -1]], np.float32)
    np.testing.assert_allclose(run(_ctc(None, blank_label="last"), x=x, l=label)[0], [3.9077244, 6.0652685], rtol=1e-5)
    sym = _ctc(None, names=("dl", "ll"), use_data_lengths=True, use_label_lengths=True)
    got = run(sym, x=x, l=np.array([[1, 0], [2, 1]], np.float32), dl=np.array([4, 3], np.float32),
              ll=np.array([2, 1], np.float32))[0]
    np.testing.assert_allclose(got, [6.513816, 4.38682], rtol=1e-5)   # label 0 = the blank inside a length
    (loss,), g = _outputs_and_grad(_ctc(None), [np.ones(2, np.float32)], x=x, l=np.array([[1, 2], [3, 3]], np.float32))
    np.testing.assert_allclose(loss, [3.539398, 3.72911], rtol=1e-5)
    ref = [[-0.141395, 0.246558, 0.143071, -0.414422, 0.166188], [-0.071969, 0.129872, 0.047724, -0.180131, 0.074503],
           [-0.781091, 0.418181, 0.190596, -0.005482, 0.177796], [0.015477, 0.082733, 0.074854, -0.3557, 0.182636]]
    np.testing.assert_allclose(g[:, 1], ref, atol=2e-6)


def test_ctc_loss_gradient():
    x = RNG.standard_normal((4, 2, 4))   # (blank first, no lengths: against MXNet's gradient above)
    sym = _ctc(None, names=("dl", "ll"), use_data_lengths=True, use_label_lengths=True, blank_label="last")
    check_grad(sym, {"x": x, "l": np.array([[0, 2], [1, 1]], np.float64), "dl": np.array([3.0, 4.0]),
                     "ll": np.array([2.0, 1.0])}, null=("l", "dl", "ll"), rtol=1e-5)


def test_ctc_loss_head_gradient_and_nan_padding():
    x = RNG.standard_normal((5, 2, 4)).astype(np.float32)
    x[3:, 0] = np.nan                                   # past sequence 0's length: ignored, no gradient
    label, dl = np.array([[1, 2], [3, 0]], np.float32), np.array([3, 5], np.float32)
    sym = _ctc(None, names=("dl",), use_data_lengths=True)
    (loss,), g1, g2 = _outputs_and_grad(sym, [np.ones(2, np.float32)], [np.array([2.0, -3.0], np.float32)],
                                        x=x, l=label, dl=dl)
    np.testing.assert_allclose(loss, [np_ctc(x[:3, 0].astype(np.float64), [1, 2], 0),
                                      np_ctc(x[:, 1].astype(np.float64), [3], 0)], rtol=1e-5)
    assert np.isfinite(g1).all() and not g1[3:, 0].any()
    np.testing.assert_allclose(g2, g1 * np.array([2.0, -3.0])[None, :, None], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g1.sum(axis=2), 0, atol=1e-6)    # softmax minus occupancy sums to 0 per step


def test_ctc_loss_symbol_facts():
    names = ("CTCLoss", "ctc_loss", "_contrib_CTCLoss", "_contrib_ctc_loss")
    assert len({mx.ops.registry.get(n) for n in names}) == 1
    assert mx.sym.contrib.ctc_loss is not None and mx.sym.contrib.CTCLoss is not None
    sym = mx.sym.ctc_loss(V("x"), V("l"), name="ctc")
    assert sym.list_arguments() == ["x", "l"] and sym.list_outputs() == ["ctc_output0"]
    assert sym.infer_shape(x=(6, 3, 5), l=(3, 2))[1] == [(3,)]
    assert sym.infer_type(x="float64", l="int32")[1] == [np.float64]
    ex = sym.simple_bind(mx.cpu(), x=(6, 3, 5), l=(3, 2), type_dict={"l": "int32"})   # int labels, float data
    assert (ex.arg_dict["x"].dtype, ex.arg_dict["l"].dtype) == (np.float32, np.int32)
    doc = json.loads(sym.tojson())
    assert doc["node_row_ptr"] == [0, 1, 2, 4]              # two outputs, one visible (as MXNet writes it)
    full = mx.sym.contrib.CTCLoss(V("x"), V("l"), use_data_lengths=True, use_label_lengths=True, name="ctc")
    assert full.list_arguments() == ["x", "l", "ctc_data_lengths", "ctc_label_lengths"]
    assert full.infer_shape(x=(6, 3, 5), l=(3, 2))[0][2:] == [(3,), (3,)]
    # the hidden second output is the gradient of the loss with respect to the data (MXNet's "grad"),
    # which backward scales by the loss's head gradient (the hidden output's own head gradient is ignored)
    doc["heads"] = [[2, 0, 0], [2, 1, 0]]
    both = mx.sym.load_json(json.dumps(doc))
    x, label = RNG.standard_normal((6, 3, 5)).astype(np.float32), np.array([[1, 2], [3, 0], [4, 4]], np.float32)
    (loss, hidden), g = _outputs_and_grad(both, [np.full(3, 2.0, np.float32), RNG.standard_normal(x.shape)],
                                          x=x, l=label)
    np.testing.assert_allclose(g, 2 * hidden, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hidden.sum(axis=2), 0, atol=1e-6)
    np.testing.assert_allclose(loss[2], np_ctc(x[:, 2].astype(np.float64), [4, 4], 0), rtol=1e-5)


def test_ctc_loss_float16_and_errors():
    x = RNG.standard_normal((5, 2, 4)).astype(np.float32)
    check_low_precision(_ctc(None), {"x": x, "l": np.array([[1, 2], [3, 0]], np.float32)}, "float16", scale=5)
    with pytest.raises(mx.AttributeValueError, match="blank_label"):
        mx.sym.CTCLoss(V("x"), V("l"), blank_label="middle")
    with pytest.raises(mx.ShapeError, match=r"ctc0.*label must be 2-D .* batch 2, got shape \(3, 2\)"):
        mx.sym.CTCLoss(V("x"), V("l"), name="ctc0").infer_shape(x=(5, 2, 4), l=(3, 2))
    with pytest.raises(mx.ShapeError, match=r"data must be 3-D.*\(5, 4\)"):
        mx.sym.CTCLoss(V("x"), V("l")).infer_shape(x=(5, 4), l=(5, 2))
    with pytest.raises(mx.ShapeError, match=r"data_lengths must have shape \(batch,\) = \(2,\), got \(3,\)"):
        mx.sym.CTCLoss(V("x"), V("l"), V("d"), use_data_lengths=True).infer_shape(x=(5, 2, 4), l=(2, 2), d=(3,))
