"""The RNN cell protocol of ``mx.rnn``: :class:`RNNParams` (shared weight variables),
:class:`BaseRNNCell` (``state_info``, ``begin_state``, ``unroll``, ``pack_weights`` /
``unpack_weights``) and the sequence helpers every cell shares.

A cell builds ordinary symbols (``FullyConnected``, ``Activation``, ``SliceChannel`` ...) one
time step at a time; ``unroll`` splits a ``(N, T, C)`` / ``(T, N, C)`` input into steps and merges
the outputs back.  Begin states have an unknown batch size (a 0 in their shape), which MXNet's
shape inference fills from the consumers; xgraph infers shapes forwards, so a constant begin
state (``mx.sym.zeros``/``ones``/``full``, the default) is broadcast to the batch size of the
data it first meets (:func:`batch_like`).

    >>> import xgraph as mx
    >>> p = RNNParams('enc_')
    >>> p.get('i2h_weight') is p.get('i2h_weight'), p.get('i2h_weight').name
    (True, 'enc_i2h_weight')
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax.numpy as jnp

from .. import symbol
from ..errors import SymbolError
from ..ndarray import NDArray
from ..symbol import Symbol
from .layout import split_gates, take

#: creation ops whose value does not depend on the shape, so a (1, ...) seed can be broadcast
_FILL_OPS = frozenset({"_zeros", "_ones", "_full"})


class RNNParams:
    """Variables of cells by name (``prefix + name``), created once and shared by every user.

        >>> RNNParams('lstm_').get('h2h_bias').name
        'lstm_h2h_bias'
    """

    def __init__(self, prefix: str = ""):
        self._prefix = prefix
        self._params: dict[str, Symbol] = {}

    def get(self, name: str, **kwargs: Any) -> Symbol:
        """The variable ``prefix + name``, made with ``mx.sym.Variable(**kwargs)`` on first use."""
        name = self._prefix + name
        if name not in self._params:
            self._params[name] = symbol.Variable(name, **kwargs)
        return self._params[name]


def time_axis(layout: Any, what: str) -> int:
    """The position of ``T`` in a sequence layout such as ``'NTC'`` or ``'TNC'``.

        >>> time_axis('TNC', 'unroll')
        0
    """
    if not isinstance(layout, str) or layout.count("T") != 1 or layout.count("N") != 1:
        raise SymbolError(f"{what}: layout {layout!r} must name one time axis 'T' and one batch axis 'N' "
                          f"(e.g. 'NTC' or 'TNC')")
    return layout.find("T")


def normalize_sequence(length: int | None, inputs: Any, layout: str, merge: bool | None,
                       what: str = "unroll") -> tuple[Any, int]:
    """``inputs`` as a list of per-step symbols (``merge=False``), one merged symbol (``True``) or
    as given (``None``), and the layout's time axis.

        >>> import xgraph as mx
        >>> steps, axis = normalize_sequence(3, mx.sym.var('x'), 'NTC', False)
        >>> len(steps), axis, steps[0].infer_shape(x=(2, 3, 4))[1]
        (3, 1, [(2, 4)])
    """
    axis = time_axis(layout, what)
    if inputs is None:
        raise SymbolError(f"{what}: inputs is None; create the input variables outside unroll and pass them")
    if isinstance(inputs, Symbol):
        if merge is False:
            if len(inputs.list_outputs()) != 1:
                raise SymbolError(f"{what}: inputs is a group of {len(inputs.list_outputs())} symbols; pass "
                                  f"list(inputs) for one symbol per step, or one (batch, time, ...) symbol")
            if not isinstance(length, int) or length < 1:
                raise SymbolError(f"{what}: length must be a positive int to split the inputs, got {length!r}")
            inputs = list(symbol.split(inputs, axis=axis, num_outputs=length, squeeze_axis=1))
        return inputs, axis
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(s, Symbol) for s in inputs):
        raise SymbolError(f"{what}: inputs must be a Symbol or a list of Symbols, got {type(inputs).__name__}")
    inputs = list(inputs)
    if length is not None and len(inputs) != length:
        raise SymbolError(f"{what}: length is {length} but {len(inputs)} input symbols were given")
    if merge is True:
        inputs = symbol.Concat(*[symbol.expand_dims(s, axis=axis) for s in inputs], dim=axis)
    return inputs, axis


def batch_like(state: Any, like: Symbol, like_axis: int) -> Any:
    """``state`` with its unknown (0) batch dimension taken from axis ``like_axis`` of ``like``.

    Only a constant begin state (``_zeros``/``_ones``/``_full`` with exactly one 0 in its shape)
    is rewritten, as the same constant with a 1 there broadcast like ``like``; every other state
    (a variable fed at bind time, an earlier step's output) is returned unchanged.

        >>> import xgraph as mx
        >>> s = batch_like(mx.sym.zeros((0, 5), name='h0'), mx.sym.var('x'), 0)
        >>> s.infer_shape(x=(3, 2))[1]
        [(3, 5)]
    """
    if not isinstance(state, Symbol) or len(state.list_outputs()) != 1:
        return state
    node = state.entries[0].node
    if node.op is None or node.op.name not in _FILL_OPS:
        return state
    shape = tuple(node.params["shape"])
    unknown = [i for i, d in enumerate(shape) if d == 0]
    if len(unknown) != 1:
        return state
    attrs = {k: node.op.format_attr(k, v) for k, v in node.attrs.items() if k != "shape"}
    seed = symbol.invoke(node.op.name, [], {**attrs, "shape": tuple(d or 1 for d in shape),
                                            "name": f"{node.name}_seed"})
    return symbol.broadcast_like(seed, like, lhs_axes=(unknown[0],), rhs_axes=(like_axis,),
                                 name=node.name, attr=dict(node.user_attrs))


class BaseRNNCell:
    """Base class of RNN cells: a step function ``cell(inputs, states) -> (output, states)``,
    its states' ``state_info``, and the shared ``begin_state``, ``unroll`` and weight packing.

    ``prefix`` names the cell's nodes and (when ``params`` is None) its weights; ``params``
    (an :class:`RNNParams`) shares weights with other cells.

        >>> import xgraph as mx
        >>> cell = mx.rnn.RNNCell(4, prefix='r_')
        >>> [s.name for s in cell.begin_state()], cell.state_shape
        (['r_begin_state_0'], [(0, 4)])
    """

    def __init__(self, prefix: str = "", params: RNNParams | None = None):
        if params is None:
            params = RNNParams(prefix)
            self._own_params = True
        else:
            self._own_params = False
        self._prefix = prefix
        self._params = params
        self._modified = False
        self.reset()

    def reset(self) -> None:
        """Restart the step counters (node names ``t0``, ``t1`` ...) before building another graph."""
        self._init_counter = -1
        self._counter = -1
        for cell in getattr(self, "_cells", ()):
            cell.reset()

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        """One time step: ``(output, next states)`` from a (batch, features) input and the states."""
        raise NotImplementedError(f"{type(self).__name__} does not define a time step")

    @property
    def params(self) -> RNNParams:
        """The cell's weight container (asking for it hands ownership to the caller, as MXNet)."""
        self._own_params = False
        return self._params

    @property
    def state_info(self) -> list:
        """One ``{'shape': ..., '__layout__': ...}`` per state; a 0 is the batch size."""
        raise NotImplementedError(f"{type(self).__name__} does not define its states")

    @property
    def state_shape(self) -> list:
        """The shapes of the states (a 0 is the batch size)."""
        return [info["shape"] for info in self.state_info]

    @property
    def _gate_names(self) -> Sequence[str]:
        return ()

    def _check_unmodified(self) -> None:
        if self._modified:
            raise SymbolError(f"{type(self).__name__} '{self._prefix}' is wrapped by a modifier cell "
                              f"(ZoneoutCell, ResidualCell ...): call the modifier cell instead")

    def begin_state(self, func: Callable = symbol.zeros, **kwargs: Any) -> list:
        """The first step's states: ``func(name='<prefix>begin_state_<i>', shape=..., __layout__=..., **kwargs)``.

        ``func`` is ``mx.sym.zeros`` by default; ``mx.sym.Variable`` makes states fed at bind time.
        A constant state gets its batch size in ``unroll`` or a built-in cell's step; a cell of
        your own that steps by hand (``cell(x, cell.begin_state())``) should pass it through
        :func:`batch_like` first.
        """
        self._check_unmodified()
        states = []
        for info in self.state_info:
            self._init_counter += 1
            name = f"{self._prefix}begin_state_{self._init_counter}"
            if info is not None:
                kwargs.update(info)
            states.append(func(name=name, **kwargs))
        return states

    def unpack_weights(self, args: dict) -> dict:
        """``args`` with this cell's stacked ``i2h``/``h2h`` weights and biases split per gate
        (``lstm_i2h_weight`` -> ``lstm_i2h_i_weight`` ...), e.g. for a readable checkpoint."""
        args = dict(args)
        gates = self._gate_names
        if not gates:
            return args
        what = f"{type(self).__name__}.unpack_weights"
        for group in ("i2h", "h2h"):
            for kind in ("weight", "bias"):
                value = take(args, f"{self._prefix}{group}_{kind}", what)
                for gate, piece in zip(gates, split_gates(value, len(gates))):
                    args[f"{self._prefix}{group}{gate}_{kind}"] = NDArray(piece)
        return args

    def pack_weights(self, args: dict) -> dict:
        """The inverse of :meth:`unpack_weights`: per-gate weights stacked back into one."""
        args = dict(args)
        gates = self._gate_names
        if not gates:
            return args
        what = f"{type(self).__name__}.pack_weights"
        for group in ("i2h", "h2h"):
            for kind in ("weight", "bias"):
                pieces = [take(args, f"{self._prefix}{group}{gate}_{kind}", what) for gate in gates]
                args[f"{self._prefix}{group}_{kind}"] = NDArray(jnp.concatenate(pieces))
        return args

    def unroll(self, length: int, inputs: Any, begin_state: list | None = None, layout: str = "NTC",
               merge_outputs: bool | None = None) -> tuple[Any, list]:
        """Apply the cell ``length`` times.

        ``inputs``: one symbol laid out as ``layout`` (``'NTC'``: (batch, time, ...)) or a list of
        ``length`` per-step symbols.  Returns the outputs (one merged symbol when ``merge_outputs``,
        a list when False, whichever is natural when None) and the last states.
        """
        self.reset()
        steps, _ = normalize_sequence(length, inputs, layout, False, f"{type(self).__name__}.unroll")
        states = self.begin_state() if begin_state is None else begin_state
        # constant begin states take the batch size of the first step (cells that step on their own too)
        states = [batch_like(s, steps[0], 0) for s in states] if steps else states
        outputs = []
        for step in steps:
            output, states = self(step, states)
            outputs.append(output)
        outputs, _ = normalize_sequence(length, outputs, layout, merge_outputs, f"{type(self).__name__}.unroll")
        return outputs, states

    def _get_activation(self, inputs: Symbol, activation: Any, **kwargs: Any) -> Symbol:
        """``Activation(act_type=activation)`` for a name, else ``activation(inputs, **kwargs)``."""
        if isinstance(activation, str):
            return symbol.Activation(inputs, act_type=activation, **kwargs)
        return activation(inputs, **kwargs)

    def _step_states(self, states: Any, inputs: Symbol, expected: int, batch_axis: int = 0) -> list:
        """The states for ``inputs``, checked in number, constant begin states sized like axis
        ``batch_axis`` of ``inputs``."""
        if not isinstance(states, (list, tuple)) or len(states) != expected:
            got = len(states) if isinstance(states, (list, tuple)) else type(states).__name__
            raise SymbolError(f"{type(self).__name__} '{self._prefix}': expected {expected} state(s), got {got}")
        return [batch_like(s, inputs, batch_axis) for s in states]

