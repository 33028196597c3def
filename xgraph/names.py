"""Automatic names and attribute scopes, as MXNet's ``mx.name`` and ``mx.AttrScope``.

An op created without a name gets ``<hint><n>``, where the hint is the
lowercased name it was called by (``fullyconnected0``, ``_plus1``) and ``n``
counts per hint.  ``Prefix`` prepends a string to every name made inside it;
``AttrScope`` attaches attributes to every symbol made inside it.

    >>> import xgraph as mx
    >>> with mx.name.NameManager():
    ...     with mx.name.Prefix('stage1_'):
    ...         print(mx.sym.FullyConnected(mx.sym.var('x'), num_hidden=2).name)
    stage1_fullyconnected0
"""
from __future__ import annotations

import threading
from typing import Any, Callable


def unique_name(base: str, taken: Callable[[str], bool]) -> str:
    """``base``, or ``base_1``, ``base_2`` ... : the first name ``taken`` says is free (for passes' new nodes).

        >>> unique_name('fc_mul', {'fc_mul', 'fc_mul_1'}.__contains__)
        'fc_mul_2'
    """
    name, i = base, 0
    while taken(name):
        i += 1
        name = f"{base}_{i}"
    return name


class NameManager:
    """Hands out automatic names; use as a context manager to start fresh counters."""

    _local = threading.local()

    def __init__(self) -> None:
        self._counter: dict[str, int] = {}
        self._old: NameManager | None = None

    def get(self, name: str | None, hint: str) -> str:
        """``name`` if given, else the next ``<hint><n>``."""
        if name:
            return name
        hint = hint.lower()
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self) -> "NameManager":
        self._old = NameManager.current()
        NameManager._local.value = self
        return self

    def __exit__(self, *exc: Any) -> None:
        NameManager._local.value = self._old

    @staticmethod
    def current() -> "NameManager":
        """The name manager in force on this thread."""
        cur = getattr(NameManager._local, "value", None)
        if cur is None:
            cur = NameManager._local.value = NameManager()
        return cur


class Prefix(NameManager):
    """A name manager that prefixes every name, given or automatic."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)


class AttrScope:
    """Attributes attached to every symbol created inside the scope.

        >>> import xgraph as mx
        >>> with mx.AttrScope(ctx_group='dev1'):
        ...     v = mx.sym.var('v')
        >>> v.attr('ctx_group')
        'dev1'
    """

    _local = threading.local()

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            if not isinstance(v, str):
                raise ValueError(f"AttrScope attribute {k!r} must be a string, got {v!r}")
        self._attr = dict(kwargs)
        self._old: AttrScope | None = None

    def get(self, attr: dict[str, str] | None) -> dict[str, str]:
        """The scope's attributes under the given ones."""
        out = dict(self._attr)
        if attr:
            out.update(attr)
        return out

    def __enter__(self) -> "AttrScope":
        self._old = AttrScope.current()
        merged = AttrScope()
        merged._attr = {**self._old._attr, **self._attr}
        AttrScope._local.value = merged
        return self

    def __exit__(self, *exc: Any) -> None:
        AttrScope._local.value = self._old

    @staticmethod
    def current() -> "AttrScope":
        """The attribute scope in force on this thread."""
        cur = getattr(AttrScope._local, "value", None)
        if cur is None:
            cur = AttrScope._local.value = AttrScope()
        return cur
