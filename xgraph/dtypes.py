"""Dtype names and MXNet's integer dtype codes, including bfloat16 from ml_dtypes.

    >>> from xgraph import dtypes
    >>> dtypes.canonical('bfloat16').name, dtypes.to_mx('float16'), dtypes.from_mx('0').name
    ('bfloat16', 2, 'float32')
"""
from __future__ import annotations

import os
import warnings

from typing import Any

import jax
import ml_dtypes
import numpy as np

from .errors import DTypeError

#: MXNet's type flags (``mshadow::TypeFlag``), as ``.params`` files and ``__dtype__`` store them.
MX_CODES = {0: "float32", 1: "float64", 2: "float16", 3: "uint8", 4: "int32", 5: "int8", 6: "int64",
            7: "bool", 8: "int16", 9: "uint16", 10: "uint32", 11: "uint64", 12: "bfloat16"}
_NAME_TO_CODE = {v: k for k, v in MX_CODES.items()}


def canonical(dtype: Any) -> np.dtype | None:
    """A numpy dtype for a name, type or dtype (``'bfloat16'`` works); None stays None."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # numpy's warning about '(2)f4'
            return np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError):   # numpy parses comma strings ('f4,(2)i8') with ast
        raise DTypeError(f"{dtype!r} is not a dtype") from None


def from_mx(code: Any) -> np.dtype:
    """The dtype for an MXNet type flag (an int or its string) or a dtype name."""
    if isinstance(code, str) and not code.strip().lstrip("-").isdigit():
        return canonical(code.strip())
    try:
        return canonical(MX_CODES[int(code)])
    except (KeyError, ValueError):
        raise DTypeError(f"unknown MXNet dtype code {code!r}") from None


def to_mx(dtype: Any) -> int:
    """MXNet's type flag for a dtype."""
    name = canonical(dtype).name
    if name not in _NAME_TO_CODE:
        raise DTypeError(f"dtype {name} has no MXNet type code")
    return _NAME_TO_CODE[name]


def is_float(dtype: Any) -> bool:
    """Whether a dtype is a floating type (float16/32/64, bfloat16): differentiable."""
    return np.issubdtype(canonical(dtype), np.floating) or canonical(dtype) == np.dtype(ml_dtypes.bfloat16)


def enable_x64_by_default() -> bool:
    """Turn on JAX's 64-bit types (``jax_enable_x64``) unless the environment already chose.

    MXNet computes float64 and int64 for real; with JAX's default (x64 off) a float64 array would
    silently become float32.  xgraph calls this once at import.  Every lowering names its dtypes,
    so float32 programs stay float32 (tests/test_x64.py scans the StableHLO of every reference
    case for float64 tensors).  Setting ``JAX_ENABLE_X64`` in the environment (``0`` or ``1``)
    keeps JAX's own setting instead.  Returns whether it turned the flag on.

        >>> import jax, xgraph
        >>> jax.config.jax_enable_x64 or 'JAX_ENABLE_X64' in os.environ
        True
    """
    if "JAX_ENABLE_X64" in os.environ:
        return False
    jax.config.update("jax_enable_x64", True)
    return True
