"""MXNet .params reading and writing: fixtures written by MXNet 1.9.1, round trips, malformed files."""
from __future__ import annotations

import glob
import os
import struct
import time
import tracemalloc

import jax
import ml_dtypes
import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import DTypeError, GraphFormatError
from xgraph.io import params

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "mxnet", "cases")
PARAM_FILES = sorted(glob.glob(os.path.join(FIXTURES, "*-0000.params")))
CASES = [os.path.basename(p)[: -len("-0000.params")] for p in PARAM_FILES]


def _fixture_bytes(name: str) -> bytes:
    with open(os.path.join(FIXTURES, f"{name}-0000.params"), "rb") as f:
        return f.read()


# -- MXNet's own files ------------------------------------------------------------------------
def test_fixtures_present():
    assert len(CASES) >= 33


@pytest.mark.parametrize("name", CASES)
def test_fixture_matches_npz(name):
    loaded = params.load(os.path.join(FIXTURES, f"{name}-0000.params"))
    ref = np.load(os.path.join(FIXTURES, f"{name}.npz"))
    keys = sorted(k for k in ref.files if k.startswith(("arg:", "aux:")))
    if not keys:
        assert loaded == []  # MXNet returns a list for a file without names
        return
    assert isinstance(loaded, dict)
    assert sorted(loaded) == keys
    for k in keys:
        assert loaded[k].dtype == ref[k].dtype and loaded[k].shape == ref[k].shape, k
        np.testing.assert_array_equal(loaded[k], ref[k], err_msg=k)


@pytest.mark.parametrize("name", CASES)
def test_fixture_resaves_byte_exact(name):
    raw = _fixture_bytes(name)
    assert params.dumps(params.loads(raw)[0], params.loads(raw)[1]) == raw
    assert params.dumps(params.load(os.path.join(FIXTURES, f"{name}-0000.params"))) == raw


def test_fixture_resave_through_nd_is_byte_exact(tmp_path):
    src = os.path.join(FIXTURES, "net_resnet_small-0000.params")
    loaded = mx.nd.load(src)
    assert all(isinstance(v, mx.nd.NDArray) for v in loaded.values())
    out = tmp_path / "copy.params"
    mx.nd.save(str(out), loaded)
    assert out.read_bytes() == _fixture_bytes("net_resnet_small")


def test_fixture_layout_is_v2_dense_cpu():
    raw = _fixture_bytes("net_mlp2_softmax")
    magic, reserved, count = struct.unpack_from("<QQQ", raw, 0)
    assert (magic, reserved, count) == (0x112, 0, 4)
    assert struct.unpack_from("<IiI", raw, 24) == (params.V2_MAGIC, 0, 2)


# -- round trips ------------------------------------------------------------------------------
DTYPES = [np.float16, np.float32, np.float64, np.uint8, np.int8, np.int32, np.int64,
          ml_dtypes.bfloat16, np.bool_]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_every_dtype(tmp_path, dtype):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=(3, 4, 2), dtype=dtype, endpoint=True)
    elif np.dtype(dtype).kind == "b":
        a = rng.integers(0, 2, size=(5,)).astype(bool)
    else:
        a = rng.standard_normal((3, 4, 2)).astype(dtype)
    p = tmp_path / "x.params"
    params.save(p, {"arg:a": a, "aux:b": a[:1]})
    back = params.load(p)
    assert list(back) == ["arg:a", "aux:b"]
    assert back["arg:a"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back["arg:a"], a)
    np.testing.assert_array_equal(back["aux:b"], a[:1])
    # the file's dtype flag is MXNet's
    flag = struct.unpack_from("<i", p.read_bytes(), 24 + 12 + 8 * a.ndim + 8)[0]
    assert mx.dtypes.from_mx(flag) == np.dtype(dtype)
    # saved again: the same bytes
    assert params.dumps(back) == p.read_bytes()


def test_round_trip_shapes_list_and_scalar(tmp_path):
    arrays = [np.zeros((0, 3), np.float32), np.arange(5, dtype=np.int32), np.ones((1, 1, 1, 1, 2), np.float16)]
    p = tmp_path / "l.params"
    params.save(p, arrays)
    back = params.load(p)
    assert isinstance(back, list) and [a.shape for a in back] == [(0, 3), (5,), (1, 1, 1, 1, 2)]
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(a, b)
    # a 0-d array needs MXNet's numpy-shape layout (v3), where ndim 0 is a scalar
    raw = params.dumps([np.float32(2.5), np.ones(2, np.float32)])
    assert struct.unpack_from("<I", raw, 24)[0] == params.V3_MAGIC
    back = params.loads(raw)[0]
    assert back[0].shape == () and back[0] == 2.5


def test_round_trip_non_contiguous_and_big_endian():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    b = np.arange(6, dtype=">i4")
    back = params.loads(params.dumps([a, b]))[0]
    np.testing.assert_array_equal(back[0], a)
    np.testing.assert_array_equal(back[1], b)
    assert back[1].dtype == np.dtype(np.int32)


def test_nd_save_load_dict_and_list(tmp_path):
    p = str(tmp_path / "nd.params")
    w = mx.nd.array([[1, 2], [3, 4]])
    mx.nd.save(p, {"w": w, "b": np.arange(2, dtype=np.int32)})
    back = mx.nd.load(p)
    assert list(back) == ["w", "b"] and isinstance(back["w"], mx.nd.NDArray)
    np.testing.assert_array_equal(back["w"].asnumpy(), w.asnumpy())
    assert back["b"].dtype == np.int32
    mx.nd.save(p, [w, w * 2])
    back = mx.nd.load(p)
    assert isinstance(back, list) and len(back) == 2
    np.testing.assert_array_equal(back[1].asnumpy(), 2 * w.asnumpy())
    mx.nd.save(p, w)  # one array: saved as a one-element list, as MXNet does
    assert len(mx.nd.load(p)) == 1
    assert list(mx.nd.load_frombuffer(open(p, "rb").read()))[0].shape == (2, 2)


def test_nd_load_keeps_64_bit_dtypes_under_x64(tmp_path):
    p = str(tmp_path / "x64.params")
    a = np.array([2**40 + 1, -3], np.int64)
    params.save(p, {"a": a, "d": np.array([1e300], np.float64)})
    with jax.enable_x64(True):
        back = mx.nd.load(p)
        assert back["a"].dtype == np.int64 and back["a"].asnumpy().tolist() == a.tolist()
        assert back["d"].asnumpy()[0] == 1e300


def test_save_rejects_unsupported_dtype_and_names(tmp_path):
    with pytest.raises(DTypeError, match="complex"):
        params.save(tmp_path / "c.params", {"c": np.ones(2, np.complex64)})
    with pytest.raises(TypeError):
        params.save(tmp_path / "k.params", {1: np.ones(2, np.float32)})
    assert not os.path.exists(tmp_path / "c.params")


# -- older layouts ----------------------------------------------------------------------------
def _file(records: list[bytes], names: list[str] = ()) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(records)) + b"".join(records) + struct.pack("<Q", len(names))
    for n in names:
        out += struct.pack("<Q", len(n)) + n.encode()
    return out


def _v2(a: np.ndarray, magic: int = params.V2_MAGIC, stype: int = 0, flag: int | None = None,
        dims: tuple | None = None, dev: int = 1) -> bytes:
    dims = a.shape if dims is None else dims
    flag = mx.dtypes.to_mx(a.dtype) if flag is None else flag
    return (struct.pack(f"<Iii{len(dims)}q", magic, stype, len(dims), *dims) + struct.pack("<iii", dev, 0, flag)
            + a.tobytes())


def test_reads_ndarray_v1_and_legacy_layouts():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(4, dtype=np.int32)
    v1 = struct.pack("<II2q", params.V1_MAGIC, 2, 2, 3) + struct.pack("<iii", 1, 0, 0) + a.tobytes()
    legacy = struct.pack("<II", 1, 4) + struct.pack("<iii", 2, 1, 4) + b.tobytes()  # ndim 1, gpu(1)
    none = struct.pack("<I", 0)  # a legacy uninitialised array
    arrays, names = params.loads(_file([v1, legacy, none], ["arg:a", "arg:b", "arg:c"]))
    assert names == ["arg:a", "arg:b", "arg:c"]
    np.testing.assert_array_equal(arrays[0], a)
    np.testing.assert_array_equal(arrays[1], b)
    assert arrays[2] is None


def test_v2_none_array_loads_as_none():
    raw = _file([struct.pack("<Iii", params.V2_MAGIC, 0, 0)])
    assert params.loads(raw)[0] == [None]


# -- malformed files ------------------------------------------------------------------------
def _small() -> bytes:
    return params.dumps({"arg:w": np.arange(6, dtype=np.float32).reshape(2, 3), "aux:m": np.ones(3, np.float16)})


def test_truncated_at_every_cut_point():
    for raw in (_small(), _fixture_bytes("net_mlp2_softmax")):
        cuts = list(range(0, min(len(raw), 200))) + list(range(200, len(raw), 37)) + [len(raw) - 1]
        for cut in cuts:
            with pytest.raises(GraphFormatError, match="byte"):
                params.loads(raw[:cut])


def test_truncation_message_says_what_and_where():
    raw = _small()
    with pytest.raises(GraphFormatError, match=r"truncated.*array 0.*at byte 64"):
        params.loads(raw[:70])


def test_flipped_magics():
    raw = bytearray(_small())
    bad = bytes([raw[0] ^ 0xFF]) + bytes(raw[1:])
    with pytest.raises(GraphFormatError, match="not an MXNet NDArray list file.*at byte 0"):
        params.loads(bad)
    raw[24] ^= 0x01  # 0xF993FAC9 -> 0xF993FAC8 reads as v1 and misparses: must still fail cleanly
    with pytest.raises(GraphFormatError):
        params.loads(bytes(raw))
    raw[27] ^= 0xFF  # no magic at all, and far too large for a legacy ndim
    with pytest.raises(GraphFormatError, match="no NDArray magic.*at byte 24"):
        params.loads(bytes(raw))


def test_huge_dims_fail_fast_without_allocating():
    rec = _v2(np.zeros(0, np.float32), dims=(2**30, 2**30, 2**10))  # claims 4 EiB
    raw = _file([rec], ["arg:x"])
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(GraphFormatError, match=r"needs \d+ bytes of data, only 21 left"):
        params.loads(raw)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 1 << 20


def test_empty_array_with_huge_dims_is_refused():
    """Found by tests/fuzz: shape (0, 2^62, 2^62) has no data, but no array can have that shape."""
    raw = _file([_v2(np.zeros(0, np.float32), dims=(0, 2**62, 2**62))])
    with pytest.raises(GraphFormatError, match=r"array 0 has shape \(0, 4611686018427387904, .*more elements"):
        params.loads(raw)
    assert params.loads(_file([_v2(np.zeros(0, np.float32), dims=(0, 5))]))[0][0].shape == (0, 5)


def test_huge_counts_fail_fast():
    with pytest.raises(GraphFormatError, match="claims 18446744073709551615 arrays"):
        params.loads(struct.pack("<QQQ", 0x112, 0, 2**64 - 1) + b"\0" * 16)
    rec = struct.pack("<Iii", params.V2_MAGIC, 0, 10**6)
    with pytest.raises(GraphFormatError, match="dimensions"):
        params.loads(_file([rec]))
    raw = _file([_v2(np.ones(1, np.float32))]) [:-8] + struct.pack("<QQ", 1, 2**63)
    with pytest.raises(GraphFormatError, match="name 0"):
        params.loads(raw)


@pytest.mark.parametrize("flag", [13, 99, -1])
def test_bad_dtype_flag(flag):
    with pytest.raises(GraphFormatError, match=rf"unknown dtype flag {flag}.*at byte 52"):
        params.loads(_file([_v2(np.ones(2, np.float32), flag=flag)]))


@pytest.mark.parametrize("stype,kind", [(1, "row_sparse"), (2, "csr"), (7, "unknown")])
def test_sparse_storage_rejected(stype, kind):
    with pytest.raises(GraphFormatError, match=rf"storage type {stype} \({kind}\).*dense.*at byte 28"):
        params.loads(_file([_v2(np.ones(2, np.float32), stype=stype)]))


def test_name_count_mismatch():
    recs = [_v2(np.ones(2, np.float32)), _v2(np.zeros(1, np.int8))]
    with pytest.raises(GraphFormatError, match="2 arrays but 1 names"):
        params.loads(_file(recs, ["arg:a"]))


def test_trailing_bytes():
    with pytest.raises(GraphFormatError, match=r"3 unexpected trailing byte\(s\)"):
        params.loads(_small() + b"abc")


def test_negative_dims_and_ndim_bad_device_bad_names():
    with pytest.raises(GraphFormatError, match="negative dimension"):
        params.loads(_file([_v2(np.ones(2, np.float32), dims=(2, -1))]))
    with pytest.raises(GraphFormatError, match="negative ndim"):
        params.loads(_file([struct.pack("<Iii", params.V2_MAGIC, 0, -5)]))
    with pytest.raises(GraphFormatError, match="device type 9"):
        params.loads(_file([_v2(np.ones(2, np.float32), dev=9)]))
    raw = _file([_v2(np.ones(1, np.float32))], ["x"])[:-1] + b"\xff"
    with pytest.raises(GraphFormatError, match="UTF-8"):
        params.loads(raw)
    dup = _file([_v2(np.ones(1, np.float32))] * 2, ["a", "a"])
    assert len(params.loads(dup)[1]) == 2
    with pytest.raises(GraphFormatError, match="'a' occurs more than once"):
        mx.nd.load_frombuffer(dup)


def test_unreadable_file(tmp_path):
    with pytest.raises(GraphFormatError, match="cannot read params file"):
        mx.nd.load(str(tmp_path / "missing.params"))


# -- atomic writes ------------------------------------------------------------------------
def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch):
    p = tmp_path / "keep.params"
    params.save(p, {"arg:w": np.ones(4, np.float32)})
    before = p.read_bytes()
    real = params._array_chunks

    def failing(arr, version):
        yield from real(arr, version)
        raise OSError("disk full")  # after the first array's bytes have been written

    monkeypatch.setattr(params, "_array_chunks", failing)
    with pytest.raises(OSError, match="disk full"):
        mx.nd.save(str(p), {"arg:w": np.zeros(4, np.float32), "arg:v": np.zeros(8, np.float32)})
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.params"]  # no temporary file left behind
