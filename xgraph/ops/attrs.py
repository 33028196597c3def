"""Typed operator attributes: parse MXNet's attribute strings, write them back.

MXNet stores every attribute as a string in its own spelling: ``"(3, 3)"``,
``"True"``, ``"None"``, ``"1e-05"``.  Each attribute of an operator has a kind
here that parses such a string (or a Python value) into a typed value without
``eval``, and formats a typed value back the way MXNet's Python frontend writes
it (``str(value)``).

    >>> from xgraph.ops.attrs import Shape, Bool
    >>> Shape().parse('(3, 3)'), Bool().parse('False')
    ((3, 3), False)
    >>> Shape().format((3, 3))
    '(3, 3)'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

_MISSING = object()


class AttrKind:
    """How one attribute's values are parsed and written."""

    def parse(self, value: Any) -> Any:
        """Turn a string or Python value into the typed value; raise ``ValueError`` if bad."""
        raise NotImplementedError

    def format(self, value: Any) -> str:
        """Write a typed value as MXNet writes it."""
        return "None" if value is None else str(value)

    def describe(self) -> str:
        """A short phrase saying what values are accepted (for errors and docs)."""
        raise NotImplementedError

    def type_name(self) -> str:
        """The type as MXNet's operator documentation writes it (``int``, ``Shape(tuple)``, ``{'a', 'b'}``)."""
        return "string"


def _strip(value: str) -> str:
    return value.strip()


def _scalar_token(tok: str) -> Any:
    """Parse one token of a tuple: None, an int, or a float."""
    tok = tok.strip().strip("'\"")
    if tok in ("None", "none", ""):
        return None
    try:
        return int(tok)
    except ValueError:
        pass
    if tok.endswith("L"):  # Python 2 longs in very old files
        return int(tok[:-1])
    return float(tok)


def parse_tuple(value: Any) -> tuple:
    """Parse ``"(3, 3)"``, ``"[1,2]"``, ``"3"``, ``"()"`` or a sequence into a tuple."""
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "([" and s[-1:] in ")]":
            s = s[1:-1]
        items = [t for t in s.split(",")]
        if items and items[-1].strip() == "":
            items = items[:-1]
        return tuple(_scalar_token(t) for t in items)
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ValueError(f"cannot read {value!r} as a tuple")


@dataclass(frozen=True)
class Int(AttrKind):
    """An integer, optionally bounded below."""

    min: int | None = None

    def parse(self, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("a bool is not an int")
        if isinstance(value, str):
            v = _scalar_token(value)
            if v is None or isinstance(v, float) and not float(v).is_integer():
                raise ValueError(f"{value!r} is not an integer")
            v = int(v)
        elif isinstance(value, (int, np.integer)):
            v = int(value)
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            v = int(value)
        else:
            raise ValueError(f"{value!r} is not an integer")
        if self.min is not None and v < self.min:
            raise ValueError(f"{v} is below the minimum {self.min}")
        return v

    def describe(self) -> str:
        return "an integer" + (f" >= {self.min}" if self.min is not None else "")

    def type_name(self) -> str:
        return "int (non-negative)" if self.min == 0 else "int"


@dataclass(frozen=True)
class Float(AttrKind):
    """A real number."""

    def parse(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("a bool is not a number")
        if isinstance(value, str):
            s = value.strip()
            low = s.lower()
            if low in ("inf", "+inf", "infinity"):
                return math.inf
            if low in ("-inf", "-infinity"):
                return -math.inf
            return float(s)
        if isinstance(value, (int, float, np.integer, np.floating)):
            return float(value)
        raise ValueError(f"{value!r} is not a number")

    def describe(self) -> str:
        return "a number"

    def type_name(self) -> str:
        return "float"


@dataclass(frozen=True)
class Bool(AttrKind):
    """A boolean: ``True``/``False``, ``true``/``false``, ``1``/``0``."""

    def parse(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            s = value.strip().lower()
            if s in ("true", "1"):
                return True
            if s in ("false", "0"):
                return False
        raise ValueError(f"{value!r} is not a boolean")

    def describe(self) -> str:
        return "a boolean (True or False)"

    def type_name(self) -> str:
        return "boolean"


@dataclass(frozen=True)
class Str(AttrKind):
    """Any string (a device such as ``mx.cpu()`` given for MXNet's ``ctx`` attribute becomes ``'cpu(0)'``)."""

    def parse(self, value: Any) -> str:
        if hasattr(value, "device_type") and hasattr(value, "device_id"):
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        return value

    def describe(self) -> str:
        return "a string"


def dtype_name(value: Any) -> str | None:
    """The name of a dtype given as a numpy type, ``np.dtype`` or JAX scalar type; None for anything else.

    MXNet's frontends write ``np.dtype(value).name`` for a dtype attribute, so
    ``dtype=np.float32`` and ``dtype=np.dtype('float16')`` mean ``'float32'`` and ``'float16'``.

        >>> dtype_name(np.float32), dtype_name(np.dtype('int8')), dtype_name(3)
        ('float32', 'int8', None)
    """
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type):
        try:
            return np.dtype(value).name
        except TypeError:
            return None
    return None


@dataclass(frozen=True)
class Enum(AttrKind):
    """One of a fixed set of strings (a dtype choice also takes ``np.float32`` or ``np.dtype('float32')``)."""

    choices: tuple[str, ...] = ()

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            value = dtype_name(value) or value
        if isinstance(value, str):
            v = value.strip().strip("'\"")
            if v in self.choices:
                return v
        raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def type_name(self) -> str:
        return "{" + ", ".join(repr(c) for c in sorted(self.choices)) + "}"


@dataclass(frozen=True)
class Shape(AttrKind):
    """A tuple of non-negative integers such as ``(3, 3)``; ``"3"`` reads as ``(3,)``."""

    allow_negative: bool = False

    def parse(self, value: Any) -> tuple[int, ...]:
        items = parse_tuple(value)
        out = []
        for t in items:
            if t is None or isinstance(t, bool) or isinstance(t, float) and not float(t).is_integer():
                raise ValueError(f"{value!r} is not a tuple of integers")
            t = int(t)
            if t < 0 and not self.allow_negative:
                raise ValueError(f"{value!r} has a negative entry")
            out.append(t)
        return tuple(out)

    def format(self, value: Any) -> str:
        return "None" if value is None else str(tuple(value))

    def describe(self) -> str:
        return "a tuple of integers such as (3, 3)"

    def type_name(self) -> str:
        return "Shape(tuple)"


@dataclass(frozen=True)
class OptTuple(AttrKind):
    """A tuple whose entries are integers or ``None`` (``slice``'s begin and end)."""

    def parse(self, value: Any) -> tuple:
        items = parse_tuple(value)
        for t in items:
            if not (t is None or isinstance(t, (int, np.integer))):
                raise ValueError(f"{value!r} entries must be integers or None")
        return tuple(None if t is None else int(t) for t in items)

    def format(self, value: Any) -> str:
        return str(tuple(value))

    def describe(self) -> str:
        return "a tuple of integers or None such as (0, None)"

    def type_name(self) -> str:
        return "Shape(tuple)"


@dataclass(frozen=True)
class FloatTuple(AttrKind):
    """A tuple of numbers; a bare number is a one-value tuple, as MXNet reads ``mean=0.5``."""

    def parse(self, value: Any) -> tuple[float, ...]:
        if isinstance(value, (float, np.floating)):
            return (float(value),)
        return tuple(float(t) for t in parse_tuple(value))

    def format(self, value: Any) -> str:
        return str(tuple(value))

    def describe(self) -> str:
        return "a tuple of numbers"

    def type_name(self) -> str:
        return "tuple of <float>"


@dataclass(frozen=True)
class Axes(AttrKind):
    """An axis or a tuple of axes (negative allowed); ``()`` means none given."""

    def parse(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return (int(value),)
        return Shape(allow_negative=True).parse(value)

    def format(self, value: Any) -> str:
        return str(tuple(value))

    def describe(self) -> str:
        return "an axis or a tuple of axes"

    def type_name(self) -> str:
        return "Shape(tuple)"


@dataclass(frozen=True)
class Optional(AttrKind):
    """``None`` (or ``"None"``) or a value of the inner kind."""

    inner: AttrKind = field(default_factory=Int)

    def parse(self, value: Any) -> Any:
        if value is None or isinstance(value, str) and value.strip() in ("None", ""):
            return None
        return self.inner.parse(value)

    def format(self, value: Any) -> str:
        return "None" if value is None else self.inner.format(value)

    def describe(self) -> str:
        return "None or " + self.inner.describe()

    def type_name(self) -> str:
        return self.inner.type_name() + " or None"


_DTYPE_NAMES = ("float16", "float32", "float64", "bfloat16", "uint8", "int8", "int32", "int64",
                "bool", "int16", "uint16", "uint32", "uint64")


@dataclass(frozen=True)
class DType(AttrKind):
    """A dtype name: ``float32``, ``float16``, ``bfloat16``, ``int32`` ..."""

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            v = value.strip().strip("'\"")
        else:
            v = dtype_name(value)
            if v is None:
                raise ValueError(f"{value!r} is not a dtype")
        if v not in _DTYPE_NAMES:
            raise ValueError(f"{value!r} is not one of the dtypes {', '.join(_DTYPE_NAMES)}")
        return v

    def describe(self) -> str:
        return "a dtype name such as 'float32'"

    def type_name(self) -> str:
        return "{" + ", ".join(repr(c) for c in sorted(_DTYPE_NAMES)) + "}"


@dataclass(frozen=True)
class AttrSpec:
    """One attribute of an operator: its name, kind, default and meaning."""

    name: str
    kind: AttrKind
    default: Any = _MISSING
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def type_string(self) -> str:
        """MXNet's one-line signature entry: ``"int, optional, default='1'"`` or ``"{'relu', 'tanh'}, required"``."""
        if self.required:
            return f"{self.kind.type_name()}, required"
        return f"{self.kind.type_name()}, optional, default={self.kind.format(self.default)!r}"


def attr(name: str, kind: AttrKind, default: Any = _MISSING, doc: str = "") -> AttrSpec:
    """Declare an attribute: ``attr('num_hidden', Int(min=1), doc='output size')``."""
    return AttrSpec(name, kind, default, doc)


def spec_table(specs: Sequence[AttrSpec]) -> dict[str, AttrSpec]:
    """Index attribute specs by name, refusing duplicates."""
    table: dict[str, AttrSpec] = {}
    for s in specs:
        if s.name in table:
            raise ValueError(f"attribute {s.name!r} declared twice")
        table[s.name] = s
    return table
