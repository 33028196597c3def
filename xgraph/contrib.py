"""``mx.contrib``: MXNet's contrib package, as far as scripts reach operators through it.

``mx.contrib.ndarray`` / ``mx.contrib.nd`` and ``mx.contrib.symbol`` / ``mx.contrib.sym``
are the ``contrib`` operator namespaces of ``mx.nd`` and ``mx.sym`` (``_contrib_<name>``
as ``<name>``), the same objects as ``mx.nd.contrib`` and ``mx.sym.contrib``.

    >>> import xgraph as mx
    >>> mx.contrib.ndarray is mx.nd.contrib and mx.contrib.sym is mx.sym.contrib
    True
"""
from __future__ import annotations

from . import ndarray as _nd, symbol as _sym

ndarray = nd = _nd.contrib
symbol = sym = _sym.contrib

__all__ = ["ndarray", "nd", "symbol", "sym"]
