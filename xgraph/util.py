"""``mx.util``: MXNet's NumPy-semantics switches.

In MXNet, ``np_shape`` turns on NumPy shape semantics, where ``0`` in a shape is a zero-size
dimension and ``-1`` an unknown one (off, ``0`` means unknown).  xgraph keeps the flag so that
code reading or setting it runs; shape inference reports unknown dimensions as ``0`` in MXNet's
legacy mode and as ``-1`` under ``np_shape``.  ``np_array``/``use_np`` select MXNet's
``mx.np`` arrays, which xgraph does not have; ``use_np`` is offered as a pass-through decorator
and ``is_np_array()`` is always False.

    >>> import xgraph as mx
    >>> mx.util.is_np_shape()
    False
    >>> with mx.util.np_shape(True):
    ...     mx.util.is_np_shape()
    True
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterator

_state = threading.local()


def is_np_shape() -> bool:
    """Whether NumPy shape semantics are on (``0`` is a size, ``-1`` is unknown)."""
    return getattr(_state, "np_shape", False)


def set_np_shape(active: bool) -> bool:
    """Turn NumPy shape semantics on or off; returns the previous setting.

        >>> prev = set_np_shape(True); set_np_shape(prev)
        True
    """
    prev = is_np_shape()
    _state.np_shape = bool(active)
    return prev


@contextlib.contextmanager
def np_shape(active: bool = True) -> Iterator[None]:
    """Context manager: NumPy shape semantics inside the block.

        >>> with np_shape(): is_np_shape()
        True
    """
    prev = set_np_shape(active)
    try:
        yield
    finally:
        set_np_shape(prev)


def use_np_shape(func: Callable) -> Callable:
    """Decorator: run ``func`` (or every method of a class) with NumPy shape semantics on.

        >>> @use_np_shape
        ... def f(): return is_np_shape()
        >>> f()
        True
    """
    if isinstance(func, type):
        for name, member in list(vars(func).items()):
            if callable(member) and not name.startswith("__"):
                setattr(func, name, use_np_shape(member))
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np_shape(True):
            return func(*args, **kwargs)
    return wrapper


def is_np_array() -> bool:
    """Always False: xgraph has MXNet's ``mx.nd`` arrays, not its ``mx.np`` ones.

        >>> is_np_array()
        False
    """
    return False


def use_np(func: Callable) -> Callable:
    """MXNet's ``use_np`` = ``use_np_shape`` + ``use_np_array``; here only the shape part applies.

        >>> @use_np
        ... def f(): return is_np_shape()
        >>> f()
        True
    """
    return use_np_shape(func)


def np_array(active: bool = True) -> contextlib.AbstractContextManager:
    """``mx.util.np_array``: a no-op context (xgraph has no ``mx.np`` arrays; see ``is_np_array``).

        >>> with np_array(): pass
    """
    return contextlib.nullcontext()


def getenv(name: str) -> str | None:
    """The environment variable ``name`` (``None`` if unset), as MXNet's backend sees it.

        >>> getenv('XGRAPH_SURELY_UNSET_VARIABLE') is None
        True
    """
    import os
    return os.environ.get(name)


def setenv(name: str, value: str | None) -> None:
    """Set (or with ``None`` unset) an environment variable.

        >>> setenv('XGRAPH_DOCTEST_VAR', '1'); getenv('XGRAPH_DOCTEST_VAR')
        '1'
        >>> setenv('XGRAPH_DOCTEST_VAR', None)
    """
    import os
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
