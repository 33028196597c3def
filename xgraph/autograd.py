"""``mx.autograd``: MXNet's imperative differentiation, over ``jax.vjp`` of the recorded ops.

Inside ``with autograd.record():`` every ``mx.nd`` call (operators and NDArray
arithmetic, indexing, reshapes) that touches an array marked with
:meth:`NDArray.attach_grad` (or computed from one) is appended to a tape as a
pure JAX function of its input arrays, with the values it saw.  ``backward``
replays the recorded ops its heads depend on as one function of the marked
arrays they read and differentiates it with ``jax.vjp``: gradients are exactly
JAX's, written into ``x.grad`` (``grad_req='write'``) or added to it (``'add'``).
As in MXNet, a backward releases only its heads' history, and an array's
recorded ops go when nothing holds the array.

    >>> import xgraph as mx
    >>> x = mx.nd.array([1.0, 2.0, 3.0])
    >>> x.attach_grad()
    >>> with mx.autograd.record():
    ...     y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.asnumpy().tolist()
    [2.0, 4.0, 6.0]
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp

from .errors import BindError, ConfigError

_state = threading.local()


def _get(name: str, default: Any) -> Any:
    return getattr(_state, name, default)


class _Tape:
    """The recorded ops: (fn, input arrays, their values at record time, weak references to the outputs).

    Outputs are held weakly, so the ops of arrays nobody holds any more are dropped
    (as MXNet frees an array's history with the array); inputs are held strongly, so
    an op whose output is alive keeps the ops it depends on.  ``backward`` (without
    ``retain_graph``) releases only the ops its heads depend on, as MXNet does.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[Callable, list, list, list]] = []
        self.tracked: dict[int, weakref.ref] = {}   # arrays computed from marked ones, by id
        self.freed: dict[int, weakref.ref] = {}     # arrays whose history a backward released
        self._compact_at = 64

    @staticmethod
    def _holds(table: dict, a: Any) -> bool:
        r = table.get(id(a))
        return r is not None and r() is a

    def is_tracked(self, a: Any) -> bool:
        return self._holds(self.tracked, a)

    def was_freed(self, a: Any) -> bool:
        return self._holds(self.freed, a)

    def add(self, fn: Callable, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        self.entries.append((fn, list(inputs), [a.data for a in inputs], [weakref.ref(o) for o in outputs]))
        for o in outputs:
            self.tracked[id(o)] = weakref.ref(o)
        if len(self.entries) >= self._compact_at:
            self._compact()

    def _compact(self) -> None:
        """Drop the ops none of whose outputs is alive (amortized: when the tape doubles)."""
        self.entries = [e for e in self.entries if any(r() is not None for r in e[3])]
        self.tracked = {k: r for k, r in self.tracked.items() if r() is not None}
        self.freed = {k: r for k, r in self.freed.items() if r() is not None}
        self._compact_at = max(64, 2 * len(self.entries))

    def ancestry(self, heads: Sequence[Any]) -> list:
        """The recorded ops ``heads`` depend on, in recording order; refuses a released history."""
        need = {id(h) for h in heads}
        keep = []
        for e in reversed(self.entries):
            outs = [r() for r in e[3]]
            if any(o is not None and id(o) in need for o in outs):
                keep.append(e)
                need.update(id(a) for a in e[1])
        keep.reverse()
        produced = {id(o) for e in keep for o in (r() for r in e[3]) if o is not None}
        for e in keep:
            for a in e[1]:
                if id(a) not in produced and self.was_freed(a):
                    raise BindError("autograd.backward: the recorded history of an input was released by an "
                                    "earlier backward; pass retain_graph=True to that backward to reuse it")
        return keep

    def release(self, entries: Sequence[tuple]) -> None:
        """Forget ``entries`` (after a backward through them); their outputs become constants."""
        gone = {id(e) for e in entries}
        self.entries = [e for e in self.entries if id(e) not in gone]
        for e in entries:
            for r in e[3]:
                o = r()
                if o is not None:
                    self.tracked.pop(id(o), None)
                    self.freed[id(o)] = r


def _tape() -> _Tape:
    tape = _get("tape", None)
    if tape is None:
        tape = _state.tape = _Tape()
    return tape


def is_recording() -> bool:
    """Whether ops are being recorded for ``backward``.

        >>> import xgraph as mx
        >>> with mx.autograd.record():
        ...     print(mx.autograd.is_recording())
        True
    """
    return _get("recording", False)


def is_training() -> bool:
    """Whether ops run in training mode (Dropout active, BatchNorm on batch statistics).

        >>> import xgraph as mx
        >>> mx.autograd.is_training()
        False
    """
    return _get("training", False)


def set_recording(is_recording: bool) -> bool:  # noqa: D401 - MXNet's name
    """Set recording on or off; returns the previous state.

        >>> import xgraph as mx
        >>> mx.autograd.set_recording(False)
        False
    """
    prev = _get("recording", False)
    _state.recording = bool(is_recording)
    return prev


def set_training(train_mode: bool) -> bool:
    """Set training mode on or off; returns the previous state.

        >>> import xgraph as mx
        >>> mx.autograd.set_training(False)
        False
    """
    prev = is_training()
    _state.training = bool(train_mode)
    return prev


@contextlib.contextmanager
def _scope(recording: bool | None, training: bool | None) -> Iterator[None]:
    prev_r = set_recording(recording) if recording is not None else None
    prev_t = set_training(training) if training is not None else None
    try:
        yield
    finally:
        if prev_r is not None:
            set_recording(prev_r)
        if prev_t is not None:
            set_training(prev_t)


def record(train_mode: bool = True) -> contextlib.AbstractContextManager:
    """Record the ops run inside for :func:`backward` (training mode unless ``train_mode=False``).

        >>> import xgraph as mx
        >>> with mx.autograd.record(train_mode=False):
        ...     print(mx.autograd.is_recording(), mx.autograd.is_training())
        True False
    """
    return _scope(True, train_mode)


def pause(train_mode: bool = False) -> contextlib.AbstractContextManager:
    """Stop recording inside (e.g. for metrics), in prediction mode unless ``train_mode=True``.

        >>> import xgraph as mx
        >>> with mx.autograd.record():
        ...     with mx.autograd.pause():
        ...         print(mx.autograd.is_recording())
        False
    """
    return _scope(False, train_mode)


def train_mode() -> contextlib.AbstractContextManager:
    """Training mode inside, recording unchanged.

        >>> import xgraph as mx
        >>> with mx.autograd.train_mode():
        ...     print(mx.autograd.is_training())
        True
    """
    return _scope(None, True)


def predict_mode() -> contextlib.AbstractContextManager:
    """Prediction mode inside, recording unchanged.

        >>> import xgraph as mx
        >>> with mx.autograd.predict_mode():
        ...     print(mx.autograd.is_training())
        False
    """
    return _scope(None, False)


def mark_variables(variables: Any, gradients: Any, grad_reqs: Any = "write") -> None:
    """Mark arrays as variables to differentiate against, with the arrays their gradients go to.

        >>> import xgraph as mx
        >>> x, gx = mx.nd.ones((2,)), mx.nd.zeros((2,))
        >>> mx.autograd.mark_variables([x], [gx])
        >>> x.grad is gx
        True
    """
    from .ndarray import NDArray
    variables = [variables] if isinstance(variables, NDArray) else list(variables)
    gradients = [gradients] if isinstance(gradients, NDArray) else list(gradients)
    reqs = [grad_reqs] * len(variables) if isinstance(grad_reqs, str) else list(grad_reqs)
    if not len(variables) == len(gradients) == len(reqs):
        raise ConfigError(f"mark_variables: {len(variables)} variables, {len(gradients)} gradients and "
                          f"{len(reqs)} grad_reqs must be as many")
    for v, g, r in zip(variables, gradients, reqs):
        if r not in ("write", "add", "null"):
            raise ConfigError(f"mark_variables: grad_req {r!r} must be 'write', 'add' or 'null'")
        v._grad, v._grad_req = g, r


def _record_op(fn: Callable, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
    """Called by ``mx.nd``: append ``outputs = fn(*input values)`` when recording and an input is tracked."""
    if not is_recording():
        return
    tape = _tape()
    if not any(tape.is_tracked(a) or _is_marked(a) for a in inputs):
        return
    tape.add(fn, inputs, outputs)


def _leaves(entries: Sequence[tuple]) -> list:
    """The marked arrays that ``entries`` read, in first-use order."""
    seen: dict[int, Any] = {}
    produced: set[int] = set()
    for _, ins, _, outs in entries:
        for a in ins:
            if id(a) not in produced and _is_marked(a):
                seen.setdefault(id(a), a)
        produced.update(id(o) for o in (r() for r in outs) if o is not None)
    return list(seen.values())


def _heads_and_vjp(heads: Sequence[Any], variables: Sequence[Any] | None) -> tuple[list, list, Callable, list]:
    """The leaves, the heads' values, the pullback and the recorded ops the heads depend on."""
    tape = _tape()
    missing = [i for i, h in enumerate(heads) if not tape.is_tracked(h)]
    if missing:
        if tape.was_freed(heads[missing[0]]):
            raise BindError(f"autograd.backward: the recorded history of head {missing[0]} was released by an "
                            "earlier backward; pass retain_graph=True to that backward to reuse it")
        raise BindError(f"autograd.backward: head {missing[0]} was not computed inside autograd.record() from "
                        "an array with attach_grad(); nothing to differentiate")
    entries = tape.ancestry(heads)
    leaves = list(variables) if variables is not None else _leaves(entries)
    leaf_pos = {id(a): i for i, a in enumerate(leaves)}

    def replay(*leaf_vals):
        env: dict[int, Any] = {}
        for fn, ins, vals, outs in entries:
            args = [leaf_vals[leaf_pos[id(a)]] if id(a) in leaf_pos and id(a) not in env
                    else env.get(id(a), v) for a, v in zip(ins, vals)]
            res = fn(*args)
            for r, v in zip(outs, res):
                o = r()
                if o is not None:
                    env[id(o)] = v
        return tuple(env[id(h)] for h in heads)

    outs, pullback = jax.vjp(replay, *[_as_real(a.data) for a in leaves])
    return leaves, list(outs), pullback, entries


def _as_real(x: Any) -> Any:
    """An integer or bool leaf differentiated as float32 (MXNet gives integer arrays real-valued gradients,
    cast back to the array's dtype); JAX would give them none."""
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def _cotangents(outs: Sequence[Any], head_grads: Any) -> tuple:
    from .ndarray import NDArray
    if head_grads is None:
        head_grads = [None] * len(outs)
    elif isinstance(head_grads, NDArray) or not isinstance(head_grads, (list, tuple)):
        head_grads = [head_grads]
    if len(head_grads) != len(outs):
        raise BindError(f"autograd.backward: {len(head_grads)} head gradients for {len(outs)} heads")
    cts = []
    for o, g in zip(outs, head_grads):
        g = jnp.ones_like(o) if g is None else jnp.asarray(g.data if isinstance(g, NDArray) else g, o.dtype)
        if g.shape != o.shape:
            raise BindError(f"autograd.backward: head gradient of shape {g.shape} for a head of shape {o.shape}")
        cts.append(g)
    return tuple(cts)


def _is_marked(a: Any) -> bool:
    return getattr(a, "_grad", None) is not None and a._grad_req != "null"


def backward(heads: Any, head_grads: Any = None, retain_graph: bool = False, train_mode: bool = True) -> None:
    """Gradients of ``heads`` into the ``.grad`` of every marked array they depend on.

    ``train_mode`` is taken for MXNet's signature: the recorded ops replay in the mode they ran in.

        >>> import xgraph as mx
        >>> x = mx.nd.array([3.0]); x.attach_grad()
        >>> with mx.autograd.record():
        ...     y = x * 2
        >>> mx.autograd.backward([y], [mx.nd.array([10.0])])
        >>> x.grad.asnumpy().tolist()
        [20.0]
    """
    from .ndarray import NDArray
    heads = [heads] if isinstance(heads, NDArray) else list(heads)
    leaves, outs, pullback, entries = _heads_and_vjp(heads, None)
    grads = pullback(_cotangents(outs, head_grads))
    for leaf, g in zip(leaves, grads):
        if leaf._grad_req == "add":
            leaf._grad._set(leaf._grad.data + g.astype(leaf._grad.data.dtype))
        else:
            leaf._grad._set(g.astype(leaf._grad.data.dtype))
    if not retain_graph:
        _tape().release(entries)


def grad(heads: Any, variables: Any, head_grads: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, train_mode: bool = True) -> list:
    """Gradients of ``heads`` with respect to ``variables``, returned (``.grad`` left alone).

    ``train_mode`` is taken for MXNet's signature: the recorded ops replay in the mode they ran in.

        >>> import xgraph as mx
        >>> x = mx.nd.array([2.0]); x.attach_grad()
        >>> with mx.autograd.record():
        ...     y = x * x * x
        >>> mx.autograd.grad(y, [x])[0].asnumpy().tolist()
        [12.0]
    """
    from .ndarray import NDArray
    if create_graph:
        raise ConfigError("autograd.grad(create_graph=True): higher-order gradients are not recorded; "
                          "use jax.grad on a jax function, or xgraph's Symbol graphs")
    heads = [heads] if isinstance(heads, NDArray) else list(heads)
    variables = [variables] if isinstance(variables, NDArray) else list(variables)
    _, outs, pullback, entries = _heads_and_vjp(heads, variables)
    grads = pullback(_cotangents(outs, head_grads))
    if not retain_graph:
        _tape().release(entries)
    return [NDArray(g) for g in grads]


__all__ = ["record", "pause", "train_mode", "predict_mode", "is_recording", "is_training", "set_recording",
           "set_training", "mark_variables", "backward", "grad"]
