"""A name → class registry for training components (initializers, metrics), as MXNet's ``registry``.

    >>> from xgraph.train.registry import ClassRegistry
    >>> class Base: pass
    >>> reg = ClassRegistry('widget', lambda: Base)
    >>> @reg.register
    ... class Knob(Base): pass
    >>> reg.lookup('KNOB') is Knob
    True
"""
from __future__ import annotations

from typing import Callable

from ..errors import ConfigError


class ClassRegistry:
    """Classes by lower-cased name; ``base`` (given lazily) is what registered classes must subclass."""

    def __init__(self, kind: str, base: Callable[[], type]):
        self.kind = kind
        self._base = base
        self._classes: dict[str, type] = {}

    def register(self, klass: type) -> type:
        """Register ``klass`` under its lower-cased name (a decorator)."""
        base = self._base()
        if not isinstance(klass, type) or not issubclass(klass, base):
            raise ConfigError(f"only {base.__name__} subclasses can be registered, got {klass!r}")
        self._classes[klass.__name__.lower()] = klass
        return klass

    def alias(self, *names: str) -> Callable[[type], type]:
        """Register extra names for a class (``@alias('zeros')``)."""
        def deco(klass: type) -> type:
            for n in names:
                self._classes[n.lower()] = klass
            return klass
        return deco

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._classes

    def lookup(self, name: str) -> type:
        """The class registered under ``name``; ConfigError listing the known names otherwise."""
        klass = self._classes.get(name.lower()) if isinstance(name, str) else None
        if klass is None:
            raise ConfigError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(sorted(self._classes))}")
        return klass
