"""Fuzzing the ``.params`` reader (``mx.nd.load_frombuffer``: MXNet's NDArray list format, v1/v2/v3/legacy).

Mutation: byte edits of the fixture files, with size fields (array counts,
ndim, dimensions, name lengths) overwritten by interesting integers up to
2^64 - 1.  Hypothesis: files assembled field by field, each field drawn from
valid and hostile values.  Memory is capped (``fuzzlib.memory_cap``): a header
claiming 2^40 elements must be refused before numpy allocates it.
"""
from __future__ import annotations

import glob
import os
import random
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import fuzzlib
import xgraph as mx
from xgraph.io import params as fmt

CASES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mxnet", "cases")


def _corpus() -> list[bytes]:
    out = []
    for path in sorted(glob.glob(os.path.join(CASES, "*.params"))):
        if os.path.getsize(path) < 200_000:
            with open(path, "rb") as f:
                out.append(f.read())
    # the other record layouts: v1, legacy, v3 with a 0-d array, unnamed lists, none arrays
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    out.append(fmt.dumps([a, np.array(3, np.int32)]))
    v1 = struct.pack("<QQQ", fmt.LIST_MAGIC, 0, 1) + struct.pack("<II2q", fmt.V1_MAGIC, 2, 2, 3) + \
        struct.pack("<iii", 1, 0, 0) + a.tobytes() + struct.pack("<Q", 0)
    legacy = struct.pack("<QQQ", fmt.LIST_MAGIC, 0, 1) + struct.pack("<I2I", 2, 2, 3) + \
        struct.pack("<iii", 1, 0, 0) + a.tobytes() + struct.pack("<Q", 1) + struct.pack("<Q", 5) + b"arg:w"
    out += [v1, legacy]
    return out


CORPUS = _corpus()


def load(data: bytes) -> None:
    """The loader under test: parse, then touch every array as NDArray (device transfer included)."""
    loaded = mx.nd.load_frombuffer(data)
    for v in (loaded.values() if isinstance(loaded, dict) else loaded):
        if v is not None:
            v.asnumpy()


def test_params_mutations():
    t = fuzzlib.tally("params")
    rnd = random.Random(fuzzlib.SEED)
    with fuzzlib.memory_cap():
        for n in range(fuzzlib.EXAMPLES):
            data = fuzzlib.mutate_bytes(rnd, CORPUS[n % len(CORPUS)], CORPUS)
            fuzzlib.run_case(t, load, data, f"mutation {n}")
    fuzzlib.assert_clean(t)
    assert t.outcomes["GraphFormatError"] > 0


# -- hypothesis: files field by field ------------------------------------------------------------
U64 = st.one_of(st.integers(0, 8), st.sampled_from(fuzzlib.INTERESTING_INTS))
I32 = st.one_of(st.integers(-2, 12), st.sampled_from([2 ** 31 - 1, -2 ** 31]))


@st.composite
def records(draw) -> bytes:
    kind = draw(st.sampled_from(["v2", "v3", "v1", "legacy", "junk"]))
    ndim = draw(st.one_of(st.integers(-1, 4), st.sampled_from([0, 33, 2 ** 31 - 1])))
    dims = draw(st.lists(st.one_of(st.integers(0, 5), st.sampled_from([2 ** 20, 2 ** 40, 2 ** 63 - 1, -1])),
                         min_size=max(0, min(ndim, 4)), max_size=max(0, min(ndim, 4))))
    if kind in ("v2", "v3"):
        head = struct.pack("<Iii", fmt.V2_MAGIC if kind == "v2" else fmt.V3_MAGIC, draw(st.sampled_from([0, 0, 1, 2])),
                           ndim) + b"".join(struct.pack("<q", d) for d in dims)
    elif kind == "v1":
        head = struct.pack("<II", fmt.V1_MAGIC, ndim % 2 ** 32) + b"".join(struct.pack("<q", d) for d in dims)
    elif kind == "legacy":
        head = struct.pack("<I", ndim % 2 ** 32) + b"".join(struct.pack("<I", d % 2 ** 32) for d in dims)
    else:
        return draw(st.binary(max_size=40))
    dev = struct.pack("<ii", draw(st.sampled_from([1, 1, 2, 3, 4, 5, -1])), draw(I32))
    flag = struct.pack("<i", draw(st.one_of(st.integers(-1, 13), st.just(99))))
    count = 1
    for d in dims:
        count *= max(d, 0)
    size = min(count * 4, 64) if draw(st.booleans()) else draw(st.integers(0, 64))
    return head + dev + flag + draw(st.binary(min_size=size, max_size=size))


@st.composite
def files(draw) -> bytes:
    recs = draw(st.lists(records(), max_size=3))
    magic = draw(st.sampled_from([fmt.LIST_MAGIC] * 5 + [0, 2 ** 64 - 1]))
    count = len(recs) if draw(st.integers(0, 4)) else draw(U64)
    out = struct.pack("<QQQ", magic, draw(st.sampled_from([0, 0, 1])), count) + b"".join(recs)
    names = draw(st.lists(st.text(max_size=8), max_size=3))
    n_names = len(names) if draw(st.integers(0, 4)) else draw(U64)
    out += struct.pack("<Q", n_names)
    for name in names:
        b = name.encode("utf-8", "surrogatepass")
        out += struct.pack("<Q", len(b) if draw(st.integers(0, 4)) else draw(U64)) + b
    return out


def test_params_hypothesis():
    t = fuzzlib.tally("params")

    @fuzzlib.hypothesis_settings()
    @given(files())
    def one(data):
        fuzzlib.run_case(t, load, data, "hypothesis")

    with fuzzlib.memory_cap():
        one()
    fuzzlib.assert_clean(t)
