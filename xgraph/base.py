"""``mx.base``: the names MXNet scripts import from ``mxnet.base``.

``MXNetError`` is :class:`xgraph.XGraphError`, so ``except mx.base.MXNetError`` catches every
error xgraph raises on bad input.

    >>> import xgraph as mx
    >>> issubclass(mx.ShapeError, mx.base.MXNetError)
    True
    >>> mx.base.py_str(b'relu')
    'relu'
"""
from __future__ import annotations

from numbers import Integral, Number
from typing import Any

import numpy as np

from .errors import NotImplementedForSymbol, XGraphError

MXNetError = XGraphError

string_types = (str,)
integer_types = (int, np.integer)
numeric_types = (float, int, np.generic)
_Null = None
mx_real_t = np.float32   # MXNet's default real type


def py_str(x: bytes | str) -> str:
    """Decode C-API style bytes to ``str`` (``str`` passes through).

        >>> py_str('a')
        'a'
    """
    return x.decode("utf-8") if isinstance(x, (bytes, bytearray)) else x


def c_str(x: str) -> bytes:
    """Encode a string as bytes, as MXNet's ``c_str``.

        >>> c_str('fc')
        b'fc'
    """
    return x.encode("utf-8")


def _as_list(obj: Any) -> list:
    """``obj`` as a list: lists and tuples as they are, anything else wrapped.

        >>> _as_list(3), _as_list((1, 2))
        ([3], [1, 2])
    """
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def is_integral(x: Any) -> bool:
    """Whether ``x`` is an integer scalar (Python or numpy).

        >>> is_integral(3), is_integral(3.0)
        (True, False)
    """
    return isinstance(x, Integral) and not isinstance(x, bool)


__all__ = ["MXNetError", "NotImplementedForSymbol", "string_types", "integer_types", "numeric_types",
           "py_str", "c_str", "_as_list", "is_integral", "Number"]
