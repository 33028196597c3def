"""mx.model checkpoints: MXNet 1.9.1 networks loaded from JSON + .params, saved and reloaded."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import GraphFormatError
from xgraph.ops import registry

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "mxnet")


def _case(name: str):
    with open(os.path.join(FIXTURES, f"{name}.meta.json")) as f:
        meta = json.load(f)
    return meta, np.load(os.path.join(FIXTURES, f"{name}.npz"))


def _skip_unless_ops(meta: dict) -> None:
    missing = [op for op in meta["ops"] if not registry.exists(op)]
    if missing:
        pytest.skip(f"operators not registered yet: {', '.join(missing)}")


@pytest.mark.parametrize("name", ["net_mlp2_softmax", "net_resnet_small"])
def test_load_checkpoint_runs_fixture_network(name):
    meta, ref = _case(name)
    _skip_unless_ops(meta)
    sym, args, auxs = mx.model.load_checkpoint(os.path.join(FIXTURES, name), 0)
    assert sym.list_arguments() == meta["arguments"]
    assert sorted(args) == sorted(meta["params"])
    assert sorted(auxs) == sorted(k[4:] for k in ref.files if k.startswith("aux:"))
    for k, v in args.items():
        assert isinstance(v, mx.nd.NDArray)
        np.testing.assert_array_equal(v.asnumpy(), ref[f"arg:{k}"])
    inputs = {k[6:]: mx.nd.array(ref[k]) for k in ref.files if k.startswith("input:")}
    ex = sym.bind(mx.cpu(), args={**inputs, **args}, aux_states=auxs, grad_req="null")
    outs = ex.forward(is_train=False)
    for i, got in enumerate(outs):
        rtol, atol = meta["tolerance"][f"out:{i}"]
        np.testing.assert_allclose(got.asnumpy(), ref[f"out:{i}"], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["net_mlp2_softmax", "net_resnet_small"])
def test_save_checkpoint_round_trip(tmp_path, name):
    meta, _ = _case(name)
    _skip_unless_ops(meta)
    src = os.path.join(FIXTURES, name)
    sym, args, auxs = mx.model.load_checkpoint(src, 0)
    prefix = str(tmp_path / "copy")
    mx.model.save_checkpoint(prefix, 7, sym, args, auxs)
    assert sorted(os.listdir(tmp_path)) == ["copy-0007.params", "copy-symbol.json"]
    sym2, args2, auxs2 = mx.model.load_checkpoint(prefix, 7)
    assert sym2.tojson() == sym.tojson()
    with open(f"{src}-symbol.json") as f:
        assert sym2.tojson() == f.read()  # MXNet's own layout, byte for byte
    assert list(args2) == list(args) and list(auxs2) == list(auxs)
    for a, b in [(args, args2), (auxs, auxs2)]:
        for k in a:
            np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy())
    if not auxs:  # arg: keys only: the same key order as MXNet wrote, so the same bytes
        with open(f"{src}-0000.params", "rb") as f, open(f"{prefix}-0007.params", "rb") as g:
            assert f.read() == g.read()


def test_load_params_and_epoch_naming(tmp_path):
    prefix = str(tmp_path / "m")
    mx.nd.save(prefix + "-0012.params", {"arg:w": mx.nd.ones((2,)), "aux:s": mx.nd.zeros((1,))})
    args, auxs = mx.model.load_params(prefix, 12)
    assert list(args) == ["w"] and list(auxs) == ["s"]
    mx.nd.save(prefix + "-0013.params", [])
    assert mx.model.load_params(prefix, 13) == ({}, {})


@pytest.mark.parametrize("key", ["w", "param:w", "arg:", "grad:w"])
def test_keys_without_arg_aux_prefix_are_rejected(tmp_path, key):
    prefix = str(tmp_path / "m")
    mx.nd.save(prefix + "-0000.params", {"arg:ok": mx.nd.ones((1,)), key: mx.nd.ones((1,))})
    with pytest.raises(GraphFormatError, match=f"key '{key}' is not of the form 'arg:NAME' or 'aux:NAME'"):
        mx.model.load_params(prefix, 0)


def test_unnamed_params_and_missing_files_are_rejected(tmp_path):
    prefix = str(tmp_path / "m")
    mx.nd.save(prefix + "-0000.params", [mx.nd.ones((1,))])
    with pytest.raises(GraphFormatError, match="1 unnamed arrays"):
        mx.model.load_params(prefix, 0)
    with pytest.raises(GraphFormatError, match="cannot read symbol file"):
        mx.model.load_checkpoint(prefix, 0)
    shutil.copy(os.path.join(FIXTURES, "net_mlp2_softmax-symbol.json"), prefix + "-symbol.json")
    with pytest.raises(GraphFormatError, match="cannot read params file"):
        mx.model.load_checkpoint(prefix, 5)


def test_save_checkpoint_without_symbol_writes_only_params(tmp_path):
    prefix = str(tmp_path / "p")
    mx.model.save_checkpoint(prefix, 1, None, {"w": np.ones(3, np.float32)}, {})
    assert os.listdir(tmp_path) == ["p-0001.params"]


def _amp_cast_op(monkeypatch):
    """The real amp_cast when registered; else a stand-in, removed again after the test."""
    if registry.exists("amp_cast"):
        return
    from xgraph.ops.attrs import DType, attr
    from xgraph.ops.registry import Op
    op = Op("amp_cast", lambda ctx, p, x: x.astype(p["dtype"]), attrs=(attr("dtype", DType()),), doc="stand-in")
    monkeypatch.setitem(registry._REGISTRY, "amp_cast", op)
    monkeypatch.setitem(registry._ALIASES, "amp_cast", op)


def test_remove_amp_cast_on_save(tmp_path, monkeypatch):
    _amp_cast_op(monkeypatch)
    x = mx.sym.var("x")
    net = mx.sym.amp_cast(x, dtype="float16", name="cast") * 2
    prefix = str(tmp_path / "amp")
    mx.model.save_checkpoint(prefix, 0, net, {}, {})
    with open(prefix + "-symbol.json") as f:
        text = f.read()
    nodes = json.loads(text)["nodes"]
    assert [n["op"] for n in nodes] == ["null", "_mul_scalar"] and nodes[1]["inputs"] == [[0, 0, 0]]
    mx.model.save_checkpoint(prefix, 0, net, {}, {}, remove_amp_cast=False)
    with open(prefix + "-symbol.json") as f:
        assert '"op": "amp_cast"' in f.read()
