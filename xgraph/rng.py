"""The host-side random state that feeds explicit PRNG keys to executions.

Randomness inside a graph (Dropout, sampling ops) never reads a global: each
execution receives a key.  The keys come from here, so ``xgraph.random.seed(n)``
makes a whole script reproducible.

The host only counts: :func:`next_words` returns the seed and a running
counter as three uint32 words (a tiny numpy array, free to pass to a compiled
program), and the program turns them into a key with :func:`key_from_words`
inside XLA.  Deriving the key on the host instead costs a few eager JAX
dispatches, about 0.3 ms, on every execution of a random graph.

    >>> from xgraph import rng
    >>> rng.seed(3); a = rng.next_key(); rng.seed(3); b = rng.next_key()
    >>> bool((jax.random.key_data(a) == jax.random.key_data(b)).all())
    True
"""
from __future__ import annotations

import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_lock = threading.Lock()
_state = {"seed": 0, "count": 0}
_MASK32 = 0xFFFFFFFF


def seed(value: int) -> None:
    """Restart the key sequence from ``value``."""
    with _lock:
        _state["seed"] = int(value)
        _state["count"] = 0


def words(seed_value: int, count: int = 0) -> np.ndarray:
    """A (seed, counter) state as uint32 words (seed low, seed high, counter); see :func:`key_from_words`.

    >>> words(2 ** 32 + 7, 3).tolist()
    [7, 1, 3]
    """
    s, c = int(seed_value), int(count)
    return np.array([s & _MASK32, (s >> 32) & _MASK32, c & _MASK32], dtype=np.uint32)


def next_words() -> np.ndarray:
    """The next state as :func:`words`, advancing the counter.

    >>> seed(7); next_words().tolist(), next_words().tolist()
    ([7, 0, 0], [7, 0, 1])
    """
    with _lock:
        s, c = _state["seed"], _state["count"]
        _state["count"] = c + 1
    return words(s, c)


def key_from_words(words: Any) -> jax.Array:
    """The PRNG key of a :func:`next_words` state; traceable, so programs derive it inside XLA."""
    words = jnp.asarray(words, jnp.uint32)
    base = jax.random.fold_in(jax.random.key(words[0]), words[1])
    return jax.random.fold_in(base, words[2])


_key_from_words_jit = jax.jit(key_from_words)


def as_key(key: Any) -> Any:
    """``None``, a typed PRNG key, or :func:`next_words` words, as a key (or ``None``)."""
    if key is None or jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return key_from_words(key)


def next_key() -> jax.Array:
    """A fresh PRNG key for eager use (initializers): the key of :func:`next_words`."""
    return _key_from_words_jit(next_words())


def get_state() -> tuple[int, int]:
    """(seed, counter), to store in a checkpoint."""
    return _state["seed"], _state["count"]


def set_state(state: tuple[int, int]) -> None:
    """Restore what :func:`get_state` returned."""
    with _lock:
        _state["seed"], _state["count"] = int(state[0]), int(state[1])
