"""The artifact container: one zip file with a manifest, a SHA-256 for every member, and safe arrays.

This module knows the file format only (no graphs, no JAX): it writes a zip
whose ``manifest.json`` lists every other member with its SHA-256, and reads
one back verifying, before anything is used, that the file is a complete zip,
that the manifest has a supported format version and the required fields, and
that every member is present, expected and matches its checksum.  Arrays are
stored as an ``.npz`` written and read with ``allow_pickle=False``.

    >>> from xgraph.io.artifact import pack, unpack
    >>> blob = pack({'format': 'xgraph-artifact', 'format_version': 1}, {'a.txt': b'hi'})
    >>> manifest, members = unpack(blob, required_fields={})
    >>> members['a.txt'], manifest['members']['a.txt'][:8]
    (b'hi', '8f434346')
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any, Mapping

import numpy as np

from ..dtypes import canonical
from ..errors import ArtifactError
from .json_text import parse_json
from .npy import ZIP_ERRORS, check_member_sizes, read_npz

FORMAT_NAME = "xgraph-artifact"
FORMAT_VERSION = 1
#: the version of artifacts lowered for several devices (their manifest has a ``sharding`` table);
#: single-device artifacts stay version 1, so older readers keep reading them and refuse these
SHARDED_FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def pack(manifest: Mapping[str, Any], members: Mapping[str, bytes]) -> bytes:
    """A zip holding ``members`` and ``manifest.json`` (the manifest plus a ``members`` checksum table)."""
    if MANIFEST in members:
        raise ArtifactError(f"a member may not be called {MANIFEST}")
    full = dict(manifest)
    full["members"] = {name: sha256(data) for name, data in sorted(members.items())}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo(MANIFEST, (1980, 1, 1, 0, 0, 0)),
                    json.dumps(full, indent=1, sort_keys=True), compress_type=zipfile.ZIP_DEFLATED)
        for name, data in sorted(members.items()):
            compress = zipfile.ZIP_STORED if name.endswith(".npz") else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, compress_type=compress)
    return buf.getvalue()


def _read_source(source: str | os.PathLike | bytes) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            return f.read(), path
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path!r}: {exc.strerror or exc}") from None


def _open_zip(data: bytes, where: str) -> zipfile.ZipFile:
    """Open the zip, telling a truncated one from something that is not a zip at all."""
    if not data.startswith(b"PK\x03\x04"):
        raise ArtifactError(f"artifact {where} is not a zip file (an xgraph artifact is a zip container); "
                            f"it starts with {data[:8]!r}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as exc:
        raise ArtifactError(f"artifact {where} is truncated or damaged: a zip header is present but "
                            f"its central directory is unreadable ({exc})") from None
    names = zf.namelist()
    if len(names) != len(set(names)):
        raise ArtifactError(f"artifact {where} has duplicate member names")
    return zf


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> bytes:
    try:
        return zf.read(name)
    except ZIP_ERRORS as exc:
        raise ArtifactError(f"artifact {where}: member {name!r} is corrupt or truncated ({exc})") from None


_TYPES = {"str": str, "int": int, "list": list, "dict": dict, "bool": bool}


def check_fields(manifest: Mapping[str, Any], required: Mapping[str, str], where: str) -> None:
    """Refuse a manifest that lacks a required field or has one of the wrong JSON type."""
    for field, kind in required.items():
        if field not in manifest:
            raise ArtifactError(f"artifact {where}: manifest lacks the required field {field!r}")
        value = manifest[field]
        if not isinstance(value, _TYPES[kind]) or (kind == "int" and isinstance(value, bool)):
            raise ArtifactError(f"artifact {where}: manifest field {field!r} should be a {kind}, "
                                f"not {type(value).__name__}")


def unpack(source: str | os.PathLike | bytes, required_fields: Mapping[str, str]) -> tuple[dict, dict[str, bytes]]:
    """Read and verify an artifact; returns ``(manifest, {member name: bytes})``.

    Raises :class:`ArtifactError` saying what is wrong: not a zip, truncated,
    bad or unsupported manifest, a missing or unexpected member, or a member
    whose SHA-256 differs from the manifest's.
    """
    data, where = _read_source(source)
    with _open_zip(data, where) as zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            raise ArtifactError(f"artifact {where} has no {MANIFEST}; members are {sorted(names)}")
        info = zf.getinfo(MANIFEST)
        if info.file_size > MAX_MANIFEST_BYTES:
            raise ArtifactError(f"artifact {where}: {MANIFEST} is {info.file_size} bytes, too large")
        check_member_sizes(zf, ArtifactError, f"artifact {where}")
        raw = _read_member(zf, MANIFEST, where)
        manifest = parse_json(raw, ArtifactError, f"artifact {where}: {MANIFEST}")
        if not isinstance(manifest, dict):
            raise ArtifactError(f"artifact {where}: {MANIFEST} is not a JSON object")
        if manifest.get("format") != FORMAT_NAME:
            raise ArtifactError(f"artifact {where}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
        version = manifest.get("format_version")
        if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
            raise ArtifactError(f"artifact {where}: format version {version!r} is not supported "
                                f"(this xgraph reads version(s) {', '.join(map(str, SUPPORTED_VERSIONS))})")
        check_fields(manifest, {"members": "dict", **required_fields}, where)
        table = manifest["members"]
        listed = set(table)
        missing = sorted(listed - names)
        if missing:
            raise ArtifactError(f"artifact {where}: member(s) {', '.join(missing)} listed in the manifest are missing")
        extra = sorted(names - listed - {MANIFEST})
        if extra:
            raise ArtifactError(f"artifact {where}: unexpected member(s) {', '.join(extra)} not in the manifest")
        members = {}
        for name in sorted(listed):
            blob = _read_member(zf, name, where)
            if not isinstance(table[name], str) or sha256(blob) != table[name]:
                raise ArtifactError(f"artifact {where}: checksum mismatch for member {name!r} "
                                    f"(SHA-256 {sha256(blob)[:16]}..., manifest says {str(table[name])[:16]}...): "
                                    f"the file was modified or damaged")
            members[name] = blob
    return manifest, members


def save_arrays(arrays: Mapping[str, Any]) -> bytes:
    """An ``.npz`` of the arrays (no pickle).  Dtypes numpy cannot name (bfloat16) are stored as
    same-width unsigned integers; the manifest keeps the real dtype for :func:`load_arrays`."""
    out = {}
    for k, v in arrays.items():
        a = np.ascontiguousarray(np.asarray(v))
        if a.dtype.kind == "V" or type(a.dtype).__module__.startswith("ml_dtypes") or a.dtype.name == "bfloat16":
            a = a.view(np.dtype(f"u{a.dtype.itemsize}"))
        out[k] = a
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **out)
    return buf.getvalue()


def load_arrays(data: bytes, specs: Mapping[str, tuple[tuple, str]], where: str) -> dict[str, np.ndarray]:
    """Read an ``.npz`` with ``allow_pickle=False``; every key of ``specs`` must be there with its shape."""
    arrays = read_npz(data, ArtifactError, f"artifact {where}: the parameter archive")
    extra = sorted(set(arrays) - set(specs))
    missing = sorted(set(specs) - set(arrays))
    if missing or extra:
        raise ArtifactError(f"artifact {where}: parameter archive keys differ from the manifest "
                            f"(missing {missing}, unexpected {extra})")
    out = {}
    for key, (shape, dtype) in specs.items():
        want = canonical(dtype)
        a = arrays[key]
        if a.dtype != want:
            if a.dtype.itemsize != want.itemsize or a.dtype.kind not in "u":
                raise ArtifactError(f"artifact {where}: parameter {key!r} is stored as {a.dtype}, "
                                    f"the manifest says {want.name}")
            a = a.view(want)
        if tuple(a.shape) != tuple(shape):
            raise ArtifactError(f"artifact {where}: parameter {key!r} has shape {tuple(a.shape)}, "
                                f"the manifest says {tuple(shape)}")
        out[key] = a
    return out


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SHARDED_FORMAT_VERSION", "SUPPORTED_VERSIONS", "MANIFEST", "pack", "unpack",
           "save_arrays", "load_arrays", "check_fields", "sha256"]
