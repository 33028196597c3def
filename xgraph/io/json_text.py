"""JSON from files xgraph did not write itself: every malformation becomes one xgraph error.

Python's :func:`json.loads` raises more than ``JSONDecodeError`` on hostile
text: ``RecursionError`` for arrays nested thousands deep, ``ValueError`` for
integers of thousands of digits (and converting one costs quadratic time
before that limit).  :func:`parse_json` refuses both with the caller's error
class, and refuses integer literals longer than :data:`MAX_INT_DIGITS`
digits before converting them.

    >>> from xgraph.errors import GraphFormatError
    >>> parse_json('{"a": [1, 2]}', GraphFormatError, 'demo')
    {'a': [1, 2]}
    >>> try:
    ...     parse_json('[' * 100000, GraphFormatError, 'demo')
    ... except GraphFormatError as e:
    ...     print(str(e)[:40])
    demo is malformed: arrays or objects nes
"""
from __future__ import annotations

import json
from typing import Any

#: longer integer literals are refused (a 64-bit value has at most 20 digits)
MAX_INT_DIGITS = 64


class _TooLong(Exception):
    def __init__(self, digits: int):
        self.digits = digits


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooLong(len(text.lstrip("-")))
    return int(text)


def parse_json(text: str | bytes, error: type[Exception], what: str) -> Any:
    """``json.loads(text)``, raising ``error(f"{what} is malformed: ...")`` for anything that is not sane JSON."""
    try:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("utf-8")
        return json.loads(text, parse_int=_parse_int)
    except _TooLong as exc:
        raise error(f"{what} is malformed: an integer literal has {exc.digits} digits "
                    f"(at most {MAX_INT_DIGITS} are accepted)") from None
    except RecursionError:
        raise error(f"{what} is malformed: arrays or objects nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} is malformed: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:   # JSONDecodeError, and anything else json refuses
        raise error(f"{what} is malformed: {exc}") from None


__all__ = ["parse_json", "MAX_INT_DIGITS"]
