"""MXNet's ``.params`` binary format (the NDArray list format): validated reading, atomic writing.

Layout (little endian), as MXNet 1.x writes it with ``mx.nd.save``::

    uint64 0x112 (list magic), uint64 reserved (0), uint64 array count
    per array (NDArray v2):
        uint32 0xF993FAC9, int32 storage type (0 = dense), int32 ndim, int64 dims[ndim],
        int32 dev_type, int32 dev_id, int32 dtype flag, raw C-order data
    uint64 name count (0, or the array count), then per name: uint64 length, UTF-8 bytes

Older arrays are read too: NDArray v1 (magic 0xF993FAC8: no storage type),
the legacy layout without a magic (the first uint32 is ndim, dims are uint32),
and v3 (0xF993FACA, MXNet's numpy-shape mode, where ndim 0 is a scalar).

Everything is checked before it is used: a truncated, oversized or inconsistent
file raises :class:`GraphFormatError` naming the byte offset; sizes are checked
against the bytes left before any array is made; nothing is unpickled.

    >>> import os, tempfile, numpy as np
    >>> from xgraph.io import params
    >>> p = os.path.join(tempfile.mkdtemp(), 'a.params')
    >>> params.save(p, {'arg:w': np.ones((2, 3), np.float32)})
    >>> params.load(p)['arg:w'].shape
    (2, 3)
"""
from __future__ import annotations

import os
import struct
import sys
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, GraphFormatError
from .atomic import atomic_open

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
#: the most dimensions an array may claim (numpy's historical limit)
MAX_NDIM = 32
#: MXNet's device types: cpu, gpu, cpu_pinned, cpu_shared
DEV_TYPES = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
STORAGE_TYPES = {-1: "undefined", 0: "default (dense)", 1: "row_sparse", 2: "csr"}


def _mx_dtype(flag: int) -> np.dtype | None:
    name = _dt.MX_CODES.get(flag)
    if name is None:
        return None
    dt = _dt.canonical(name)
    return dt if sys.byteorder == "little" else dt.newbyteorder("<")


class _Reader:
    """A cursor over the file's bytes that checks every read against what is left."""

    def __init__(self, buf: memoryview, source: str):
        self.buf = buf
        self.pos = 0
        self.source = source

    @property
    def left(self) -> int:
        return len(self.buf) - self.pos

    def fail(self, what: str, at: int | None = None) -> GraphFormatError:
        return GraphFormatError(f"{self.source}: {what} (at byte {self.pos if at is None else at})")

    def need(self, n: int, what: str) -> None:
        if n > self.left:
            raise self.fail(f"file is truncated: {what} needs {n} byte(s), only {self.left} left")

    def unpack(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        self.need(size, what)
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def one(self, fmt: str, what: str) -> int:
        return self.unpack("<" + fmt, what)[0]


def _read_dims(r: _Reader, where: str, dim_fmt: str, ndim: int, start: int) -> tuple[int, ...]:
    if ndim > MAX_NDIM:
        raise r.fail(f"{where} claims {ndim} dimensions (at most {MAX_NDIM} are supported)", start)
    dims = r.unpack(f"<{ndim}{dim_fmt}", f"{where}'s {ndim} dims")
    for d in dims:
        if d < 0:
            raise r.fail(f"{where} has a negative dimension in shape {dims}", start)
    return tuple(int(d) for d in dims)


def _read_array(r: _Reader, i: int) -> np.ndarray | None:
    """One NDArray record; None for an uninitialised ("none") array, as MXNet loads it."""
    where = f"array {i}"
    start = r.pos
    magic = r.one("I", f"{where}'s header")
    if magic in (V2_MAGIC, V3_MAGIC):
        stype = r.one("i", f"{where}'s storage type")
        if stype != 0:
            kind = STORAGE_TYPES.get(stype, "unknown")
            raise r.fail(f"{where} has storage type {stype} ({kind}); only dense (0) arrays are supported",
                         r.pos - 4)
        ndim = r.one("i", f"{where}'s ndim")
        if magic == V3_MAGIC and ndim == -1:
            return None
        if ndim < 0:
            raise r.fail(f"{where} has a negative ndim {ndim}", r.pos - 4)
        if magic == V2_MAGIC and ndim == 0:
            return None
        dims = _read_dims(r, where, "q", ndim, start)
    elif magic == V1_MAGIC:
        ndim = r.one("I", f"{where}'s ndim")
        if ndim == 0:
            return None
        dims = _read_dims(r, where, "q", ndim, start)
    else:
        # legacy layout: no magic, the first word is ndim and the dims are uint32
        if magic > MAX_NDIM:
            raise r.fail(f"{where} starts with 0x{magic:08X}, which is no NDArray magic (v1 0x{V1_MAGIC:08X}, "
                         f"v2 0x{V2_MAGIC:08X}, v3 0x{V3_MAGIC:08X}) nor a legacy ndim (<= {MAX_NDIM})", start)
        if magic == 0:
            return None
        dims = _read_dims(r, where, "I", magic, start)
    dev_type, dev_id = r.unpack("<ii", f"{where}'s device")
    if dev_type not in DEV_TYPES:
        raise r.fail(f"{where} has an unknown device type {dev_type} (known: {sorted(DEV_TYPES)})", r.pos - 8)
    flag = r.one("i", f"{where}'s dtype flag")
    dtype = _mx_dtype(flag)
    if dtype is None:
        raise r.fail(f"{where} has an unknown dtype flag {flag} (known: "
                     f"{', '.join(f'{k} {v}' for k, v in sorted(_dt.MX_CODES.items()))})", r.pos - 4)
    count, span = 1, 1
    for d in dims:
        count *= d
        span *= max(d, 1)
    nbytes = count * dtype.itemsize
    if nbytes > r.left:
        raise r.fail(f"file is truncated or corrupt: {where} of shape {dims} and dtype {dtype.name} needs "
                     f"{nbytes} bytes of data, only {r.left} left")
    if span * dtype.itemsize >= 2 ** 63:   # numpy refuses such shapes even with a zero dimension
        raise r.fail(f"{where} has shape {dims}: more elements than any array can hold", start)
    arr = np.frombuffer(r.buf, dtype=dtype, count=count, offset=r.pos).reshape(dims)
    r.pos += nbytes
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def loads(data: bytes | bytearray | memoryview, source: str = "params data") -> tuple[list, list[str]]:
    """Parse ``.params`` bytes into ``(arrays, names)``; names is empty when the file has none.

    Arrays are read-only numpy views of ``data`` (None for MXNet's uninitialised arrays).

        >>> from xgraph.io import params
        >>> import numpy as np
        >>> arrays, names = params.loads(params.dumps([np.arange(3, dtype=np.int32)]))
        >>> arrays[0].tolist(), names
        ([0, 1, 2], [])
    """
    r = _Reader(memoryview(data).cast("B"), source)
    magic, _reserved = r.unpack("<QQ", "the file header")
    if magic != LIST_MAGIC:
        raise r.fail(f"not an MXNet NDArray list file: header magic is 0x{magic:X}, expected 0x{LIST_MAGIC:X}", 0)
    count = r.one("Q", "the array count")
    if count * 4 > r.left:  # every array record takes at least 4 bytes
        raise r.fail(f"the file claims {count} arrays but only {r.left} bytes follow", r.pos - 8)
    arrays = [_read_array(r, i) for i in range(count)]
    n_names = r.one("Q", "the name count")
    if n_names not in (0, count):
        raise r.fail(f"the file has {count} arrays but {n_names} names (expected 0 or {count})", r.pos - 8)
    names = []
    for i in range(n_names):
        length = r.one("Q", f"name {i}'s length")
        r.need(length, f"name {i} ({length} bytes)")
        try:
            names.append(bytes(r.buf[r.pos:r.pos + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise r.fail(f"name {i} is not valid UTF-8") from None
        r.pos += length
    if r.left:
        raise r.fail(f"{r.left} unexpected trailing byte(s) after the last name")
    return arrays, names


def read(fname: str | os.PathLike) -> tuple[list, list[str]]:
    """Read a ``.params`` file into ``(arrays, names)``; see :func:`loads`."""
    try:
        with open(fname, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise GraphFormatError(f"cannot read params file {os.fspath(fname)!r}: {exc.strerror}") from None
    return loads(data, f"params file {os.fspath(fname)!r}")


def _as_numpy(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value)
    try:
        _dt.to_mx(arr.dtype)
    except DTypeError:
        raise DTypeError(f"cannot save {what}: dtype {arr.dtype} has no MXNet type flag "
                         f"(supported: {', '.join(_dt.MX_CODES.values())})") from None
    return arr


def _array_chunks(arr: np.ndarray, version: int) -> Iterator[bytes | memoryview]:
    """The bytes of one NDArray record (v2, or v3 when the file holds 0-d arrays)."""
    yield struct.pack(f"<Iii{arr.ndim}q", version, 0, arr.ndim, *arr.shape)
    yield struct.pack("<iii", 1, 0, _dt.to_mx(arr.dtype))
    little = arr.dtype if arr.dtype.byteorder in ("<", "|") or (arr.dtype.isnative and sys.byteorder == "little") \
        else arr.dtype.newbyteorder("<")
    data = np.ascontiguousarray(arr, dtype=little)
    yield memoryview(data.reshape(-1).view(np.uint8)) if data.size else b""


def _chunks(arrays: Sequence[np.ndarray], names: Sequence[str]) -> Iterator[bytes | memoryview]:
    version = V3_MAGIC if any(a.ndim == 0 for a in arrays) else V2_MAGIC
    yield struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))
    for a in arrays:
        yield from _array_chunks(a, version)
    yield struct.pack("<Q", len(names))
    for n in names:
        b = n.encode("utf-8")
        yield struct.pack("<Q", len(b))
        yield b


def _normalize(data: Any) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(data, Mapping):
        names = list(data.keys())
        for k in names:
            if not isinstance(k, str):
                raise TypeError(f"params names must be strings, got {k!r}")
        return [_as_numpy(v, f"'{k}'") for k, v in data.items()], names
    if isinstance(data, (list, tuple)):
        return [_as_numpy(v, f"array {i}") for i, v in enumerate(data)], []
    return [_as_numpy(data, "the array")], []


def dumps(data: Any, names: Sequence[str] | None = None) -> bytes:
    """The ``.params`` bytes for a dict (names written), a list (no names) or one array.

        >>> from xgraph.io import params
        >>> len(params.dumps([]))
        32
    """
    arrays, own = _normalize(data)
    return b"".join(bytes(c) for c in _chunks(arrays, list(names) if names is not None else own))


def save(fname: str | os.PathLike, data: Any) -> None:
    """Write ``data`` (dict name -> array, list of arrays, or one array) to ``fname`` atomically.

    As MXNet: a dict writes names, a list writes none.  Arrays may be numpy
    arrays, ``jax.Array``s or NDArrays.  A failed save leaves the old file intact.

        >>> import os, tempfile, numpy as np
        >>> from xgraph.io import params
        >>> p = os.path.join(tempfile.mkdtemp(), 'x.params')
        >>> params.save(p, [np.zeros(2, np.float16)]); params.load(p)[0].dtype
        dtype('float16')
    """
    arrays, names = _normalize(data)
    with atomic_open(fname, "wb") as f:
        for chunk in _chunks(arrays, names):
            f.write(chunk)


def load(fname: str | os.PathLike) -> dict[str, np.ndarray] | list[np.ndarray]:
    """Read ``fname``: a dict name -> array when the file has names, else a list.

    Duplicate names raise :class:`GraphFormatError` (the file would be ambiguous).

        >>> import os, tempfile, numpy as np
        >>> from xgraph.io import params
        >>> p = os.path.join(tempfile.mkdtemp(), 'x.params')
        >>> params.save(p, {'a': np.ones(1, np.int8)}); params.load(p)
        {'a': array([1], dtype=int8)}
    """
    arrays, names = read(fname)
    return as_dict_or_list(arrays, names, f"params file {os.fspath(fname)!r}")


def as_dict_or_list(arrays: list, names: list[str], source: str) -> dict | list:
    """``dict(zip(names, arrays))`` when there are names (no duplicates allowed), else ``arrays``."""
    if not names:
        return arrays
    out = dict(zip(names, arrays))
    if len(out) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))
        raise GraphFormatError(f"{source}: the name {dup!r} occurs more than once")
    return out
