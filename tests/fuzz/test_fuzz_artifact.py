"""Fuzzing artifacts: ``xgraph.load_artifact`` and running what it accepts.

Three small artifacts are exported once (an MLP with a symbolic batch, a
two-input elementwise graph with a random op, a training step).  Mutations:
raw byte edits of the zip (caught by the zip layer or the checksums), and
edits *behind* the checksums: a member (the manifest, ``params.npz`` or
``symbol.json``) is mutated and the zip rebuilt with checksums that match,
so the manifest validation, the array reader and the consistency checks
against the module are what must refuse it.  The serialized module is
mutated too, half the time re-hashed: loading parses its StableHLO, so a
damaged one is refused at load (a module that parses is executable code:
what it computes is not checked).  Hypothesis: manifests
whose fields are replaced by generated JSON values.
"""
from __future__ import annotations

import functools
import io
import json
import random
import zipfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import fuzzlib
import xgraph as mx
from xgraph.benchmark import random_inputs
from xgraph.io import artifact as fmt


@functools.lru_cache(maxsize=None)
def corpus() -> tuple[bytes, ...]:
    rs = np.random.RandomState(0)
    h = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=4, name="fc1")
    mlp = mx.sym.SoftmaxOutput(mx.sym.Activation(h, act_type="relu"), name="softmax")
    params = {"fc1_weight": rs.rand(4, 3).astype(np.float32), "fc1_bias": np.zeros(4, np.float32)}
    a, b = mx.sym.var("a"), mx.sym.var("b")
    two = mx.sym.Dropout(a * b + 1, p=0.5, mode="always")
    return (mx.export(mlp, params, inputs={"data": (("batch", 3), "float32")}).data,
            mx.export(two, inputs={"a": (("n",), "float32"), "b": (("n",), "float32")}).data,
            mx.export(mlp, params, inputs={"data": ((2, 3), "float32"), "softmax_label": ((2,), "float32")},
                      for_training=True).data)


def members_of(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def repack(manifest: bytes, members: dict[str, bytes], rehash: bool = True) -> bytes:
    """A zip of ``members`` and the given manifest bytes (its checksum table made to match when ``rehash``)."""
    if rehash:
        doc = json.loads(manifest)
        if isinstance(doc, dict) and isinstance(doc.get("members"), dict):
            doc["members"] = {k: fmt.sha256(v) for k, v in members.items()}
            manifest = json.dumps(doc).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(fmt.MANIFEST, manifest)
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def load_and_run(data: bytes) -> None:
    """The loader under test: verify and load, then run on inputs matching the signature it declares."""
    art = mx.load_artifact(data)
    inputs = random_inputs(art.signature, batch=2)
    art.run(inputs)
    art(*[inputs[i.name] for i in art.signature.inputs])
    art.apply(inputs)


def _npz_edit(rnd: random.Random, blob: bytes) -> bytes:
    """Edit an .npz: a member's .npy header claims another shape (up to 2^40 elements), or byte edits."""
    arrays = members_of(blob)
    if rnd.random() < 0.5 or not arrays:
        return fuzzlib.mutate_bytes(rnd, blob, [])
    name = rnd.choice(sorted(arrays))
    shape = rnd.choice([(2 ** 40,), (0,), (2 ** 20, 2 ** 20), (3, 4), (), (2 ** 62, 2)])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": rnd.choice(["<f4", "<i8", "|O", "<f2", "|b1"]),
                                                  "fortran_order": rnd.random() < 0.2, "shape": shape})
    body = arrays[name]
    arrays[name] = header.getvalue() + body[len(body) - rnd.randrange(0, 64):]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for k, v in arrays.items():
            zf.writestr(k, v)
    return out.getvalue()


def mutate(rnd: random.Random, blob: bytes) -> bytes:
    r = rnd.random()
    if r < 0.25:
        return fuzzlib.mutate_bytes(rnd, blob, list(corpus()))
    members = members_of(blob)
    manifest = members.pop(fmt.MANIFEST)
    if r < 0.7:
        doc = fuzzlib.mutate_json_doc(rnd, json.loads(manifest))
        text = fuzzlib.dumps_with_raw(doc).encode()
        if isinstance(doc, dict) and isinstance(doc.get("members"), dict) and rnd.random() < 0.9:
            doc["members"] = {k: fmt.sha256(v) for k, v in members.items()}
            text = fuzzlib.dumps_with_raw(doc).encode()
        return repack(text, members, rehash=False)
    if r < 0.85:
        members["params.npz"] = _npz_edit(rnd, members["params.npz"])
    elif r < 0.95:
        members["symbol.json"] = fuzzlib.mutate_bytes(rnd, members["symbol.json"], [])
    else:   # the module: under its old checksum (which must refuse it), or re-hashed
        members["module.jaxexport"] = fuzzlib.mutate_bytes(rnd, members["module.jaxexport"], [])
        return repack(manifest, members, rehash=rnd.random() < 0.5)
    return repack(manifest, members)


def test_artifact_mutations():
    t = fuzzlib.tally("artifact")
    rnd = random.Random(fuzzlib.SEED)
    arts = corpus()
    with fuzzlib.memory_cap():
        for n in range(fuzzlib.EXAMPLES):
            fuzzlib.run_case(t, load_and_run, mutate(rnd, arts[n % len(arts)]), f"mutation {n}")
    fuzzlib.assert_clean(t)
    assert t.outcomes["ArtifactError"] > 0


# -- hypothesis: manifests with generated fields --------------------------------------------------
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() |
                           st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4),
                           max_leaves=12)


@st.composite
def edited_artifacts(draw) -> bytes:
    blob = draw(st.sampled_from(corpus()))
    members = members_of(blob)
    doc = json.loads(members.pop(fmt.MANIFEST))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in fuzzlib.json_paths(doc) if p and p[0] != "members"]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        doc = fuzzlib.set_path(doc, path, draw(JSON_VALUES))
    return repack(json.dumps(doc).encode(), members)


def test_artifact_hypothesis():
    t = fuzzlib.tally("artifact")

    @fuzzlib.hypothesis_settings()
    @given(edited_artifacts())
    def one(data):
        fuzzlib.run_case(t, load_and_run, data, "hypothesis")

    with fuzzlib.memory_cap():
        one()
    fuzzlib.assert_clean(t)
