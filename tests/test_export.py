"""Compiled artifacts: export, verified loading, symbolic batch, training steps, the jax-only loader."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import xgraph as mx
from xgraph.io import artifact as fmt
from xgraph.ops import registry
from xgraph.ops.registry import Op

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "mxnet" / "cases"
PYTHON = sys.executable


def _subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("XGRAPH_CACHE_DIR", None)
    return env


@pytest.fixture(scope="module")
def mlp():
    sym = mx.sym.load(str(FIX / "net_mlp2_softmax-symbol.json"))
    z = np.load(FIX / "net_mlp2_softmax.npz")
    params = {k[4:]: z[k] for k in z.files if k.startswith("arg:")}
    return sym, params, {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def mlp_artifact(mlp, tmp_path_factory):
    sym, params, _ = mlp
    path = tmp_path_factory.mktemp("art") / "mlp.xgraph"
    art = mx.export(sym, params, inputs={"data": (("batch", 20), "float32")}, path=path)
    return art, path


def live(sym, params, **inputs):
    """Outputs of the live executor (labels, when not given, are zeros)."""
    args = dict(params)
    for name in sym.list_arguments():
        if name not in args and name not in inputs:
            batch = next(iter(inputs.values())).shape[0]
            inputs[name] = np.zeros((batch,), np.float32)
    ex = sym.bind(mx.cpu(), args={**args, **inputs})
    return [o.asnumpy() for o in ex.forward(is_train=False)]


# -- round trip -----------------------------------------------------------------------------
def test_manifest_describes_the_artifact(mlp_artifact):
    art, path = mlp_artifact
    assert path.exists() and art.path == str(path)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        m = json.loads(zf.read("manifest.json"))
        for member, digest in m["members"].items():
            assert fmt.sha256(zf.read(member)) == digest
    assert names == {"manifest.json", "module.jaxexport", "params.npz", "symbol.json"}
    assert m["format_version"] == 1 and m["jax_version"] and m["xgraph_version"] == mx.__version__
    assert m["inputs"] == [{"name": "data", "kind": "input", "shape": ["batch", 20], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "softmax_output", "shape": ["batch", 10], "dtype": "float32"}]
    assert [p["name"] for p in m["params"]] == ["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    assert m["params"][0]["shape"] == [32, 20] and m["platforms"] == ["cpu"]
    assert [a["kind"] for a in m["call_args"]] == ["input", "arg", "arg", "arg", "arg"]
    assert m["zero_filled"][0]["name"] == "softmax_label"
    # the symbol JSON is the one exported
    with zipfile.ZipFile(path) as zf:
        assert mx.sym.load_json(zf.read("symbol.json").decode()).list_arguments() == \
            mx.sym.load(str(FIX / "net_mlp2_softmax-symbol.json")).list_arguments()


_RUN_IN_FRESH_PROCESS = """
import sys, numpy as np, xgraph as mx
art = mx.load_artifact(sys.argv[1])
z = np.load(sys.argv[2])
out = art.run({'data': z['data']}, numpy=True)
np.savez(sys.argv[3], **out)
print(art.signature)
"""


def test_round_trip_in_fresh_subprocess_matches_live_executor(mlp, mlp_artifact, tmp_path):
    sym, params, z = mlp
    _, path = mlp_artifact
    np.savez(tmp_path / "in.npz", data=z["input:data"])
    proc = subprocess.run([PYTHON, "-c", _RUN_IN_FRESH_PROCESS, str(path), str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], cwd=tmp_path, env=_subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "data: (batch, 20) float32" in proc.stdout
    got = np.load(tmp_path / "out.npz")["softmax_output"]
    np.testing.assert_allclose(got, live(sym, params, data=z["input:data"])[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, z["out:0"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_one_artifact_serves_every_batch_size(mlp, mlp_artifact, batch):
    sym, params, _ = mlp
    art = mx.load_artifact(mlp_artifact[1])
    x = np.random.default_rng(batch).standard_normal((batch, 20)).astype(np.float32)
    (got,) = art(data=x)
    assert got.shape == (batch, 10)
    np.testing.assert_allclose(np.asarray(got), live(sym, params, data=x)[0], rtol=1e-5, atol=1e-6)


def test_elemwise_graph_with_two_symbolic_dims_accepts_jax_arrays():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    net = mx.sym.Activation(a * b + 1.5, act_type="tanh") - mx.sym.relu(b) / 2.0
    art = mx.load_artifact(mx.export(net, inputs={"a": (("n", "m"), "float32"),
                                                  "b": (("n", "m"), "float32")}).data)
    assert [i.shape for i in art.signature.inputs] == [("n", "m"), ("n", "m")]
    assert art.signature.outputs[0].shape == ("n", "m")
    for shape in [(1, 1), (3, 5)]:
        x = np.linspace(-1, 1, np.prod(shape), dtype=np.float32).reshape(shape)
        y = jnp.asarray(x[::-1] * 3)
        (got,) = art(a=x, b=y)
        np.testing.assert_allclose(np.asarray(got), live(net, {}, a=x, b=np.asarray(y))[0], rtol=1e-6)


def test_random_inference_artifact_takes_a_seed_and_draws_anew_each_call():
    net = mx.sym.Dropout(mx.sym.var("x"), p=0.5, mode="always")
    art = mx.load_artifact(mx.export(net, inputs={"x": ((64,), "float32")}).data)
    assert [a["kind"] for a in art.manifest["call_args"]] == ["input", "seed"]
    x = np.ones(64, np.float32)
    first, second = (np.asarray(art(x=x)[0]) for _ in range(2))
    assert not np.array_equal(first, second)                      # a new seed every call
    np.testing.assert_array_equal(np.asarray(art(x=x, seed=3)[0]), np.asarray(art(x=x, seed=3)[0]))
    assert set(np.unique(first)) <= {0.0, 2.0}


def test_lowered_executable_of_a_random_graph_draws_fresh_keys():
    net = mx.sym.Dropout(mx.sym.var("x"), p=0.5, mode="always")
    exe = mx.lower(net, x=(64,)).compile()
    x = np.ones(64, np.float32)
    mx.random.seed(11)
    a, b = (np.asarray(exe(x=x)[0]) for _ in range(2))
    mx.random.seed(11)
    np.testing.assert_array_equal(np.asarray(exe(x=x)[0]), a)   # mx.random.seed makes it reproducible
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(exe(key=5, x=x)[0]), np.asarray(exe(key=5, x=x)[0]))
    with pytest.raises(mx.XGraphError, match="key must be"):
        exe(key="nope", x=x)


def test_bfloat16_parameters_round_trip():
    net = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
    w = np.arange(12, dtype=np.float32).reshape(3, 4).astype(ml_dtypes.bfloat16)
    b = np.ones(3, ml_dtypes.bfloat16)
    art = mx.load_artifact(mx.export(net, {"fc_weight": w, "fc_bias": b},
                                     inputs={"data": (("batch", 4), "bfloat16")}).data)
    assert art.params["fc_weight"].dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(art.params["fc_weight"], w)
    x = np.ones((2, 4), ml_dtypes.bfloat16)
    (got,) = art(data=x)
    np.testing.assert_allclose(np.asarray(got, np.float32), x.astype(np.float32) @ w.astype(np.float32).T + 1)


def test_parameters_are_arguments_and_can_be_swapped(mlp, mlp_artifact):
    sym, params, z = mlp
    art = mx.load_artifact(mlp_artifact[1])
    new = {k: v * 0.5 for k, v in params.items()}
    art.set_params(new)
    np.testing.assert_allclose(np.asarray(art(data=z["input:data"])[0]),
                               live(sym, new, data=z["input:data"])[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(mx.ShapeError, match="fc1_weight"):
        art.set_params({"fc1_weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(mx.ArtifactError, match="not a parameter"):
        art.set_params({"nope": np.zeros(1)})


def test_frozen_parameters_are_constants(mlp):
    sym, params, z = mlp
    art = mx.load_artifact(mx.export(sym, params, inputs={"data": (("batch", 20), "float32")},
                                     freeze_params=True).data)
    assert [a["kind"] for a in art.manifest["call_args"]] == ["input"]
    assert len(art.exported.in_avals) == 1
    np.testing.assert_allclose(np.asarray(art(data=z["input:data"])[0]), z["out:0"], rtol=1e-5, atol=1e-5)
    with pytest.raises(mx.ArtifactError, match="frozen"):
        art.set_params({"fc1_bias": params["fc1_bias"]})


# -- bad input at run time ------------------------------------------------------------------------
def test_wrong_inputs_name_the_input_and_the_signature(mlp_artifact):
    art = mx.load_artifact(mlp_artifact[1])
    with pytest.raises(mx.ShapeError, match=r"input 'data' has shape \(3, 21\).*expected \(batch, 20\)"):
        art(data=np.ones((3, 21), np.float32))
    with pytest.raises(mx.ShapeError, match="signature is inputs \\[data: \\(batch, 20\\) float32\\]"):
        art(data=np.ones((3,), np.float32))
    with pytest.raises(mx.DTypeError, match="input 'data' has dtype float64, expected float32"):
        art(data=np.ones((3, 20), np.float64))
    with pytest.raises(mx.ArtifactError, match=r"unknown input\(s\) \['image'\].*data: \(batch, 20\)"):
        art(data=np.ones((3, 20), np.float32), image=np.ones(3))
    with pytest.raises(mx.ArtifactError, match=r"missing input\(s\) \['data'\]"):
        art()


def test_symbolic_dimension_must_agree_across_inputs():
    art = mx.load_artifact(mx.export(mx.sym.var("a") + mx.sym.var("b"),
                                     inputs={"a": (("n",), "float32"), "b": (("n",), "float32")}).data)
    with pytest.raises(mx.ShapeError, match="dimension 'n' is 4 here but 3 in input 'a'"):
        art(a=np.ones(3, np.float32), b=np.ones(4, np.float32))


def test_positional_inputs_follow_the_signature_order():
    net = mx.sym.var("a") - 2 * mx.sym.var("b")
    art = mx.load_artifact(mx.export(net, inputs={"a": (("n",), "float32"), "b": (("n",), "float32")}).data)
    a, b = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    want = a - 2 * b
    for got in (art(a, b), art(a, b=b), art(b=b, a=a), art(jnp.asarray(a), jnp.asarray(b))):
        np.testing.assert_array_equal(np.asarray(got[0]), want)
    with pytest.raises(mx.ArtifactError, match=r"takes 2 input\(s\) \['a', 'b'\], got 3 positional"):
        art(a, b, b)
    with pytest.raises(mx.ArtifactError, match=r"\['a'\] given both positionally and by name"):
        art(a, a=a, b=b)
    with pytest.raises(mx.ArtifactError, match=r"missing input\(s\) \['b'\]"):
        art(a)
    rand = mx.load_artifact(mx.export(mx.sym.Dropout(mx.sym.var("x"), p=0.5, mode="always"),
                                      inputs={"x": ((64,), "float32")}).data)
    x = np.ones(64, np.float32)
    np.testing.assert_array_equal(np.asarray(rand(x, seed=4)[0]), np.asarray(rand(x=x, seed=4)[0]))


def test_platform_check_lists_the_artifact_platforms(mlp):
    sym, params, _ = mlp
    art = mx.export(sym, params, inputs={"data": (("batch", 20), "float32")}, platforms=("tpu",))
    with pytest.raises(mx.ArtifactError, match=r"exported for platform\(s\) tpu.*this machine runs cpu"):
        mx.load_artifact(art.data)
    inspected = mx.load_artifact(art.data, check_platform=False)
    assert inspected.platforms == ("tpu",)
    with pytest.raises(mx.ArtifactError, match="tpu"):
        inspected(data=np.ones((2, 20), np.float32))
    multi = mx.load_artifact(mx.export(sym, params, inputs={"data": (("b", 20), "float32")},
                                       platforms=("cpu", "gpu")).data)
    assert multi.platforms == ("cpu", "cuda") and multi(data=np.ones((2, 20), np.float32))[0].shape == (2, 10)


def test_export_refuses_bad_requests(mlp):
    sym, params, _ = mlp
    with pytest.raises(mx.BindError, match=r"\['fc2_bias'\] are neither inputs nor in arg_params"):
        mx.export(sym, {k: v for k, v in params.items() if k != "fc2_bias"}, inputs={"data": ((2, 20), "float32")})
    with pytest.raises(mx.BindError, match="not arguments"):
        mx.export(sym, {**params, "extra": np.zeros(1)}, inputs={"data": ((2, 20), "float32")})
    with pytest.raises(mx.ShapeError, match="fc1"):
        mx.export(sym, params, inputs={"data": (("batch", 21), "float32")})
    with pytest.raises(mx.ShapeError, match="identifier"):
        mx.export(sym, params, inputs={"data": (("batch size", 20), "float32")})
    with pytest.raises(mx.ArtifactError, match="unknown platform"):
        mx.export(sym, params, inputs={"data": ((2, 20), "float32")}, platforms=("metal",))


# -- tampering ---------------------------------------------------------------------------------------
def _rewrite(data: bytes, change) -> bytes:
    """Copy a zip, letting ``change(name, bytes)`` return new bytes (or None to drop the member)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            new = change(info.filename, src.read(info.filename))
            if new is not None:
                dst.writestr(info.filename, new)
    return buf.getvalue()


def _manifest(change):
    def edit(name, blob):
        if name != "manifest.json":
            return blob
        m = json.loads(blob)
        change(m)
        return json.dumps(m).encode()
    return edit


def test_tampered_member_is_a_checksum_mismatch(mlp_artifact):
    data = mlp_artifact[0].data

    def flip(name, blob):
        if name != "params.npz":
            return blob
        b = bytearray(blob)
        b[-200] ^= 0x01
        return bytes(b)
    with pytest.raises(mx.ArtifactError, match="checksum mismatch for member 'params.npz'"):
        mx.load_artifact(_rewrite(data, flip))


def test_flipped_byte_in_the_file_is_caught(mlp_artifact):
    data = bytearray(mlp_artifact[0].data)
    start = data.index(b"module.jaxexport") + 200  # inside the stored module, past its local header
    data[start] ^= 0xFF
    with pytest.raises(mx.ArtifactError, match="module.jaxexport"):
        mx.load_artifact(bytes(data))


def test_truncated_and_non_zip_files(mlp_artifact, tmp_path):
    data = mlp_artifact[0].data
    with pytest.raises(mx.ArtifactError, match="truncated"):
        mx.load_artifact(data[: len(data) // 2])
    p = tmp_path / "model.xgraph"
    p.write_text("just some text")
    with pytest.raises(mx.ArtifactError, match="not a zip file"):
        mx.load_artifact(p)
    with pytest.raises(mx.ArtifactError, match="cannot read"):
        mx.load_artifact(tmp_path / "absent.xgraph")


def _edit_central_directory(data: bytes, member: str | None, offset: int, value: int) -> bytes:
    """Set a 16-bit field of one member's (or every member's) central-directory record."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = int.from_bytes(out[pos + 28:pos + 30], "little")
        name = out[pos + 46:pos + 46 + name_len].decode()
        if member is None or name == member:
            out[pos + offset:pos + offset + 2] = value.to_bytes(2, "little")
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def test_unsupported_zip_version_and_encrypted_members_are_artifact_errors(mlp_artifact):
    """Found by the long fuzz run: zipfile's NotImplementedError / RuntimeError must not escape."""
    data = mlp_artifact[0].data
    newer = _edit_central_directory(data, None, 6, 0x0C80)        # 'version needed to extract' 12.8
    with pytest.raises(mx.ArtifactError, match="truncated or damaged"):
        mx.load_artifact(newer)
    params = next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.endswith(".npz"))
    encrypted = _edit_central_directory(data, params, 8, 0x0001)  # general-purpose flag: encrypted
    with pytest.raises(mx.ArtifactError, match="corrupt or truncated|encrypted"):
        mx.load_artifact(encrypted)


def test_wrong_format_version(mlp_artifact):
    bad = _rewrite(mlp_artifact[0].data, _manifest(lambda m: m.update(format_version=99)))
    with pytest.raises(mx.ArtifactError, match="format version 99 is not supported"):
        mx.load_artifact(bad)


def test_missing_and_unexpected_members(mlp_artifact):
    data = mlp_artifact[0].data
    dropped = _rewrite(data, lambda n, b: None if n == "symbol.json" else b)
    with pytest.raises(mx.ArtifactError, match="symbol.json listed in the manifest are missing"):
        mx.load_artifact(dropped)
    added = _rewrite(data, lambda n, b: b) + b""
    src = zipfile.ZipFile(io.BytesIO(added))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        dst.writestr("evil.pkl", b"\x80\x04")
    with pytest.raises(mx.ArtifactError, match="unexpected member"):
        mx.load_artifact(buf.getvalue())
    with pytest.raises(mx.ArtifactError, match="manifest lacks the required field 'call_args'"):
        mx.load_artifact(_rewrite(data, _manifest(lambda m: m.pop("call_args"))))
    with pytest.raises(mx.ArtifactError, match="'platforms' should be a list"):
        mx.load_artifact(_rewrite(data, _manifest(lambda m: m.update(platforms="cpu"))))


def _rehashed(data: bytes, change) -> bytes:
    """``_rewrite`` that also updates the manifest's checksums: tampering the checksums cannot see."""
    members = {}
    _rewrite(data, lambda n, b: members.__setitem__(n, change(n, b)))
    m = json.loads(members.pop("manifest.json"))
    m["members"] = {k: fmt.sha256(v) for k, v in members.items() if v is not None}
    return fmt.pack({k: v for k, v in m.items() if k != "members"}, {k: v for k, v in members.items() if v})


def _npy_header(shape) -> bytes:
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return head.getvalue()


def test_consistency_behind_the_checksums(mlp_artifact):
    """Found by tests/fuzz: members that pass their checksums but contradict the module or each other."""
    data = mlp_artifact[0].data
    for change, pattern in [
        (lambda m: m["call_args"][0].update(shape=["batch", 21]), "call argument 'data'.*does not match"),
        (lambda m: (m["inputs"][0].update(shape=["batch", 21]), m["call_args"][0].update(shape=["batch", 21])),
         r"call argument 'data' is \['batch', 21\] float32 in the manifest but float32\[batch,20\] in the module"),
        (lambda m: m["outputs"][0].update(name="other"), "call results .* do not match the outputs table"),
        (lambda m: m.update(platforms=[3]), "platforms must be a non-empty list of names"),
        (lambda m: m.update(platforms=["cpu", "tpu"]), r"lowered for \['cpu'\]"),
        (lambda m: m.update(kind="weird"), "unknown kind 'weird'"),
        (lambda m: m["call_args"][0].update(kind=["input"]), "unknown kind"),
        (lambda m: m["params"].append(dict(m["params"][0])), "names a tensor twice"),
    ]:
        with pytest.raises(mx.ArtifactError, match=pattern):
            mx.load_artifact(_rehashed(data, _manifest(change)))
    with pytest.raises(mx.ArtifactError, match="symbol.json is not UTF-8"):
        mx.load_artifact(_rehashed(data, lambda n, b: b"\xff\xfe" + b if n == "symbol.json" else b))
    def zero_middle(b: bytes) -> bytes:    # half the module zeroed: damaged under every jax's layout
        return b[:len(b) // 4] + bytes(len(b) // 2) + b[len(b) // 4 + len(b) // 2:]
    damaged = _rehashed(data, lambda n, b: zero_middle(b) if n == "module.jaxexport" else b)
    with pytest.raises(mx.ArtifactError, match="module cannot be deserialized"):
        mx.load_artifact(damaged)


def test_array_headers_claiming_2_to_the_40_are_refused_before_allocating(mlp_artifact):
    def huge(name, blob):
        if name != "params.npz":
            return blob
        src, out = zipfile.ZipFile(io.BytesIO(blob)), io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for n in src.namelist():
                dst.writestr(n, _npy_header((2 ** 40,)) + src.read(n)[-16:])
        return out.getvalue()
    bad = _rehashed(mlp_artifact[0].data, huge)
    tracemalloc.start()
    with pytest.raises(mx.ArtifactError, match=r"claims shape \(1099511627776,\) float32 \(4398046511104 bytes"):
        mx.load_artifact(bad)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20


# -- training-step export -------------------------------------------------------------------------------
def _sgd_with_executor(sym, params, data, label, lr, steps):
    params = {k: v.copy() for k, v in params.items()}
    outs = []
    for _ in range(steps):
        ex = sym.bind(mx.cpu(), args={**params, "data": data, "softmax_label": label},
                      args_grad={k: np.zeros_like(v) for k, v in params.items()},
                      grad_req={k: "write" for k in params})
        outs.append(ex.forward(is_train=True)[0].asnumpy())
        ex.backward()
        params = {k: v - lr * ex.grad_dict[k].asnumpy() for k, v in params.items()}
    return outs, params


def test_training_step_export_matches_executor_sgd(mlp):
    sym, params, z = mlp
    lr = 0.1
    art = mx.load_artifact(mx.export(sym, params, inputs={"data": (("batch", 20), "float32")},
                                     for_training=True, learning_rate=lr).data)
    assert art.kind == "training_step" and art.manifest["training"]["learning_rate"] == lr
    assert [i.name for i in art.signature.inputs] == ["data", "softmax_label"]
    assert art.signature.inputs[1].shape == ("batch",)
    data, label = z["input:data"], z["input:softmax_label"]
    # one step: parameters after SGD follow the fixture's gradients
    outs, new_params, _ = art.apply({"data": data, "softmax_label": label})
    np.testing.assert_allclose(np.asarray(outs["softmax_output"]), z["train_out:0"], rtol=1e-5, atol=1e-5)
    for k in params:
        np.testing.assert_allclose(np.asarray(new_params[k]), params[k] - lr * z[f"grad:{k}"], rtol=1e-5, atol=1e-6)
    # two steps through run(), which advances the artifact's parameters, against executor + SGD
    ref_outs, ref_params = _sgd_with_executor(sym, params, data[:5], label[:5], lr, steps=2)
    for step in range(2):
        got = art.run({"data": data[:5], "softmax_label": label[:5]}, numpy=True)["softmax_output"]
        np.testing.assert_allclose(got, ref_outs[step], rtol=1e-5, atol=1e-6)
    for k in params:
        np.testing.assert_allclose(art.params[k], ref_params[k], rtol=1e-5, atol=1e-6)


def _register_running_mean():
    """A tiny op with an auxiliary state (a running mean), to test aux updates in a training step."""
    if registry.exists("_test_RunningMeanCenter"):
        return

    def lower(ctx, p, x, mean):
        if ctx.is_train:
            new = 0.5 * mean + 0.5 * x.mean(axis=0)
            return (x - new,), (new,)
        return (x - mean,), (mean,)
    registry.register(Op("_test_RunningMeanCenter", lower, inputs=("data", "moving_mean"), aux=("moving_mean",),
                         infer_inputs=lambda p, s: [s[0], None if s[0] is None else tuple(s[0][1:])]))


def test_training_step_updates_aux_states():
    _register_running_mean()
    x = mx.sym.var("x")
    h = mx.sym.FullyConnected(x, num_hidden=3, name="fc")
    net = mx.sym.MakeLoss(mx.sym.square(mx.sym._test_RunningMeanCenter(h, name="c")))
    w = np.full((3, 2), 0.1, np.float32)
    b = np.zeros(3, np.float32)
    mean0 = np.zeros(3, np.float32)
    art = mx.load_artifact(mx.export(net, {"fc_weight": w, "fc_bias": b}, {"c_moving_mean": mean0},
                                     inputs={"x": (("n", 2), "float32")}, for_training=True, learning_rate=0.05).data)
    xv = np.arange(8, dtype=np.float32).reshape(4, 2)
    ex = net.bind(mx.cpu(), args={"x": xv, "fc_weight": w, "fc_bias": b},
                  args_grad={"fc_weight": np.zeros_like(w), "fc_bias": np.zeros_like(b)},
                  grad_req={"fc_weight": "write", "fc_bias": "write"}, aux_states={"c_moving_mean": mean0})
    ex.forward(is_train=True)
    ex.backward()
    art.run({"x": xv})
    np.testing.assert_allclose(art.aux["c_moving_mean"], ex.aux_dict["c_moving_mean"].asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(art.params["fc_weight"], w - 0.05 * ex.grad_dict["fc_weight"].asnumpy(), rtol=1e-5)
    # the inference artifact leaves the aux state as given
    inf = mx.load_artifact(mx.export(net, {"fc_weight": w, "fc_bias": b}, {"c_moving_mean": mean0},
                                     inputs={"x": (("n", 2), "float32")}).data)
    inf(x=xv)
    np.testing.assert_array_equal(inf.aux["c_moving_mean"], mean0)


def test_training_step_refuses_frozen_params(mlp):
    sym, params, _ = mlp
    with pytest.raises(mx.BindError, match="cannot freeze"):
        mx.export(sym, params, inputs={"data": ((2, 20), "float32")}, for_training=True, freeze_params=True)


# -- the jax-only loader -----------------------------------------------------------------------------------
_DRIVER = """
import runpy, sys
import numpy as np
load = runpy.run_path(sys.argv[4], run_name="loader")["load"]
manifest, run = load(sys.argv[1])
z = np.load(sys.argv[2])
out = run(data=z['data'])
assert 'xgraph' not in sys.modules, 'the loader imported xgraph'
assert not any(p.rstrip('/').endswith('{root}') for p in sys.path)
np.savez(sys.argv[3], **out)
"""


def test_jax_only_loader_runs_in_isolated_subprocess(mlp, mlp_artifact, tmp_path):
    sym, params, z = mlp
    shutil.copy(ROOT / "examples" / "load_artifact_without_xgraph.py", tmp_path)
    (tmp_path / "driver.py").write_text(_DRIVER.replace("{root}", ROOT.name))
    np.savez(tmp_path / "in.npz", data=z["input:data"][:7])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XGRAPH_CACHE_DIR")}
    # -I: isolated mode: no PYTHONPATH, no user site, not even the script's folder on sys.path
    proc = subprocess.run([PYTHON, "-I", str(tmp_path / "driver.py"), str(mlp_artifact[1]),
                           str(tmp_path / "in.npz"), str(tmp_path / "out.npz"),
                           str(tmp_path / "load_artifact_without_xgraph.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz")["softmax_output"]
    np.testing.assert_allclose(got, live(sym, params, data=z["input:data"][:7])[0], rtol=1e-5, atol=1e-6)


def test_docs_loader_is_the_example():
    """docs/artifacts.md carries the same loader code as the example file."""
    doc = (ROOT / "docs" / "artifacts.md").read_text()
    example = (ROOT / "examples" / "load_artifact_without_xgraph.py").read_text()
    body = example[example.index("import hashlib"):]
    assert body.strip() in doc


def test_a_module_that_crashes_the_parser_is_an_artifact_error(monkeypatch):
    """jax's native MLIR parser can segfault on damaged, re-hashed module bytes (found by the long fuzz
    run); an unseen module is parsed in a child first, so the crash becomes an ArtifactError."""
    from xgraph.io import module_check
    monkeypatch.setattr(module_check, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(mx.ArtifactError, match=r"jax's parser crashed on it \(signal 11\)"):
        module_check.check_in_child(b"\x00" * 16, "0" * 64, "<test>")
    assert not module_check.is_trusted("0" * 64)


def test_modules_parsed_safely_are_trusted_across_processes_through_the_cache(tmp_path, mlp_artifact):
    from xgraph.io import module_check
    digest = "f" * 64
    module_check.trust(digest, str(tmp_path))
    module_check._TRUSTED.discard(digest)              # as a new process: only the cache remembers
    assert module_check.is_trusted(digest, str(tmp_path))
    assert not module_check.is_trusted("e" * 64, str(tmp_path))
    exported_here = mlp_artifact[0].manifest["members"]["module.jaxexport"]
    assert module_check.is_trusted(exported_here)
