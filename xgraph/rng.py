"""The host-side random state that feeds explicit PRNG keys to executions.

Randomness inside a graph (Dropout, sampling ops) never reads a global: each
execution receives a key.  The keys come from here, so ``xgraph.random.seed(n)``
makes a whole script reproducible.

    >>> from xgraph import rng
    >>> rng.seed(3); a = rng.next_key(); rng.seed(3); b = rng.next_key()
    >>> bool((jax.random.key_data(a) == jax.random.key_data(b)).all())
    True
"""
from __future__ import annotations

import threading

import jax

_lock = threading.Lock()
_state = {"seed": 0, "count": 0}


def seed(value: int) -> None:
    """Restart the key sequence from ``value``."""
    with _lock:
        _state["seed"] = int(value)
        _state["count"] = 0


def next_key() -> jax.Array:
    """A fresh PRNG key: the seed's key folded with a running counter."""
    with _lock:
        s, c = _state["seed"], _state["count"]
        _state["count"] = c + 1
    return jax.random.fold_in(jax.random.key(s), c)


def get_state() -> tuple[int, int]:
    """(seed, counter), to store in a checkpoint."""
    return _state["seed"], _state["count"]


def set_state(state: tuple[int, int]) -> None:
    """Restore what :func:`get_state` returned."""
    with _lock:
        _state["seed"], _state["count"] = int(state[0]), int(state[1])
