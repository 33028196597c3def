"""Validated reading of ``.npy`` and ``.npz`` bytes: sizes checked before anything is allocated.

``np.load`` trusts the header: an ``.npy`` inside an ``.npz`` whose header
claims 2^40 elements makes numpy allocate the whole array before it notices
the data is missing, and a zip member may declare any uncompressed size.
These readers check every claim against the bytes really present first, never
unpickle (object dtypes are refused), and raise the caller's error class.

    >>> import io, numpy as np
    >>> from xgraph.errors import GraphFormatError
    >>> buf = io.BytesIO(); np.savez(buf, w=np.arange(3))
    >>> read_npz(buf.getvalue(), GraphFormatError, 'demo')['w'].tolist()
    [0, 1, 2]
"""
from __future__ import annotations

import io
import zipfile
import zlib
import numpy as np
from numpy.lib import format as _fmt

#: deflate cannot expand data by more than about 1032 times
_MAX_DEFLATE_RATIO = 1100


def read_npy(data: bytes | memoryview, error: type[Exception], what: str) -> np.ndarray:
    """One array from ``.npy`` bytes (a read-only view of ``data`` when possible)."""
    f = io.BytesIO(data)
    try:
        version = _fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = _fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = _fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises ValueError, SyntaxError, TokenError ...
        raise error(f"{what}: not a valid .npy array ({' '.join(str(exc).split())[:200]})") from None
    if dtype.hasobject:
        raise error(f"{what}: holds Python objects (dtype {dtype}), which xgraph never unpickles")
    count = 1
    for d in shape:
        count *= int(d)
    need, have = count * dtype.itemsize, len(data) - f.tell()
    if need != have:
        raise error(f"{what}: the header claims shape {tuple(shape)} {dtype} ({need} bytes of data), "
                    f"but {have} bytes follow it")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=f.tell())
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


#: what Python's zipfile raises on a damaged archive: bad headers, bad deflate data, an unsupported
#: zip version or compression method (NotImplementedError), an encrypted member (RuntimeError)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, NotImplementedError, RuntimeError)


def read_npz(data: bytes, error: type[Exception], what: str) -> dict[str, np.ndarray]:
    """Every array of ``.npz`` bytes by name, each checked as :func:`read_npy` does."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except ZIP_ERRORS as exc:
        raise error(f"{what}: not a valid .npz archive ({exc})") from None
    out: dict[str, np.ndarray] = {}
    with zf:
        check_member_sizes(zf, error, what)
        for info in infos:
            try:
                blob = zf.read(info)
            except ZIP_ERRORS as exc:
                raise error(f"{what}: member {info.filename!r} is corrupt or truncated ({exc})") from None
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in out:
                raise error(f"{what}: the array {key!r} occurs more than once")
            out[key] = read_npy(blob, error, f"{what}, array {key!r}")
    return out


def check_member_sizes(zf: zipfile.ZipFile, error: type[Exception], what: str) -> None:
    """Refuse zip members whose declared size no stored or deflated data could have."""
    for info in zf.infolist():
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise error(f"{what}: member {info.filename!r} claims {info.file_size} bytes but stores "
                        f"{info.compress_size}")
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise error(f"{what}: member {info.filename!r} claims {info.file_size} bytes from "
                        f"{info.compress_size} compressed ones, more than compression can give")


__all__ = ["read_npy", "read_npz", "check_member_sizes", "ZIP_ERRORS"]

