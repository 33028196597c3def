"""Parse a serialized ``jax.export`` module in a child process before this process trusts it.

jax's deserializer hands the StableHLO bytecode to MLIR's native parser, which
can crash the whole process (a segmentation fault, not an exception) on bytes
that were damaged and then given a matching checksum.  A module this process
has not seen before is therefore parsed once in a child: a crash there becomes
an :class:`~xgraph.errors.ArtifactError`.  Modules that xgraph exported in this
process, or that passed before, are trusted by their SHA-256 (kept in memory,
and under the program cache directory when one is set, so a warm process skips
the child).

    >>> import xgraph as mx
    >>> art = mx.export(mx.sym.var('x') + 1, inputs={'x': ((2,), 'float32')})
    >>> is_trusted(art.manifest['members']['module.jaxexport'])
    True
"""
from __future__ import annotations

import os
import subprocess
import sys

from ..errors import ArtifactError

#: seconds a child may take to import jax and parse a module
CHILD_TIMEOUT_S = 300
_TRUSTED: set[str] = set()
_CHILD = ("import sys, jax\n"
          "exported = jax.export.deserialize(bytearray(sys.stdin.buffer.read()))\n"
          "exported.mlir_module()\n")


def trust(digest: str, root: str | None = None) -> None:
    """Mark the module with this SHA-256 as safe to parse in this process (and, recorded under the
    cache directory ``root``, in later ones)."""
    _TRUSTED.add(digest)
    if root is not None:
        folder = os.path.join(root, "verified-modules")
        try:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, digest), "w", encoding="ascii"):
                pass
        except OSError:     # a read-only cache only costs a child process next time
            pass


def is_trusted(digest: str, root: str | None = None) -> bool:
    """Whether the module with this SHA-256 was exported here or parsed safely before."""
    if digest in _TRUSTED:
        return True
    if root is not None and os.path.isfile(os.path.join(root, "verified-modules", digest)):
        _TRUSTED.add(digest)
        return True
    return False


def check_in_child(blob: bytes, digest: str, where: str, root: str | None = None) -> None:
    """Parse ``blob`` in a child process unless trusted; raise ArtifactError when the child fails or crashes."""
    if is_trusted(digest, root):
        return
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD], input=bytes(blob), capture_output=True,
                              timeout=CHILD_TIMEOUT_S, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"artifact {where}: parsing the module took longer than {CHILD_TIMEOUT_S} s") from None
    if done.returncode < 0:
        raise ArtifactError(f"artifact {where}: the module is damaged: jax's parser crashed on it "
                            f"(signal {-done.returncode}) in a child process")
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ArtifactError(f"artifact {where}: the module cannot be deserialized by jax "
                            f"({lines[-1] if lines else f'exit status {done.returncode}'})")
    trust(digest, root)
