"""The step cells of ``mx.rnn`` (:class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`) and
:class:`FusedRNNCell`, which runs a whole (stacked, bidirectional) sequence as one ``RNN`` node.

Node and weight names are MXNet 1.9.1's (``lstm_t0_i2h``, ``lstm_i2h_weight``; after
``unfuse()``, ``lstm_l0_i2h_weight``), so checkpoints and symbol files interoperate.

    >>> import xgraph as mx
    >>> cell = mx.rnn.LSTMCell(3, prefix='lstm_')
    >>> outputs, states = cell.unroll(2, mx.sym.var('data'), merge_outputs=True)
    >>> outputs.infer_shape(data=(4, 2, 5))[1], sorted(cell.params._params)[:2]
    ([(4, 2, 3)], ['lstm_h2h_bias', 'lstm_h2h_weight'])
"""
from __future__ import annotations

from typing import Any

from .. import symbol
from ..errors import AttributeValueError, SymbolError
from ..symbol import Symbol
from .base import BaseRNNCell, RNNParams, normalize_sequence
from .init import FusedRNN, LSTMBias
from .layout import DIRECTIONS, GATE_NAMES, check_mode, fused_input_size, fused_pieces, geometry, pack_fused, \
    take, unpack_fused

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "FusedRNNCell"]


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AttributeValueError(f"{what} must be a positive int, got {value!r}")
    return value


def lstm_gates(cell: BaseRNNCell, gates: Symbol, c: Symbol, name: str, activation: Any,
               axis: int | None = None) -> tuple[Symbol, list]:
    """An LSTM step from the summed projections ``gates`` (i, f, c, o blocks along ``axis``, by
    default SliceChannel's) and the cell state: ``(h', [h', c'])``; ``activation`` squashes the
    candidate and the new cell state (tanh for :class:`LSTMCell`).

        >>> import xgraph as mx
        >>> h, [_, c] = lstm_gates(mx.rnn.LSTMCell(2), mx.sym.var('g'), mx.sym.var('c'), 'x_', 'tanh')
        >>> h.name, c.infer_shape(g=(3, 8), c=(3, 2))[1]
        ('x_out', [(3, 2)])
    """
    where = {} if axis is None else {"axis": axis}
    sliced = symbol.SliceChannel(gates, num_outputs=4, name=f"{name}slice", **where)
    in_gate = symbol.Activation(sliced[0], act_type="sigmoid", name=f"{name}i")
    forget_gate = symbol.Activation(sliced[1], act_type="sigmoid", name=f"{name}f")
    in_transform = cell._get_activation(sliced[2], activation, name=f"{name}c")
    out_gate = symbol.Activation(sliced[3], act_type="sigmoid", name=f"{name}o")
    next_c = symbol.elemwise_add(forget_gate * c, in_gate * in_transform, name=f"{name}state")
    next_h = symbol.elemwise_mul(out_gate, cell._get_activation(next_c, activation), name=f"{name}out")
    return next_h, [next_h, next_c]


def gru_gates(cell: BaseRNNCell, i2h: Symbol, h2h: Symbol, h: Symbol, name: str, activation: Any,
              axis: int | None = None) -> tuple[Symbol, list]:
    """A GRU step (cuDNN's form) from the input and recurrent projections (r, z, o blocks along
    ``axis``) and the state: ``(h', [h'])``; ``activation`` squashes the candidate.

        >>> import xgraph as mx
        >>> h, _ = gru_gates(mx.rnn.GRUCell(2), mx.sym.var('i'), mx.sym.var('j'), mx.sym.var('h'), 'x_', 'tanh')
        >>> h.name, h.infer_shape(i=(3, 6), j=(3, 6), h=(3, 2))[1]
        ('x_out', [(3, 2)])
    """
    where = {} if axis is None else {"axis": axis}
    i2h_r, i2h_z, i2h = symbol.SliceChannel(i2h, num_outputs=3, name=f"{name}_i2h_slice", **where)
    h2h_r, h2h_z, h2h = symbol.SliceChannel(h2h, num_outputs=3, name=f"{name}_h2h_slice", **where)
    reset_gate = symbol.Activation(i2h_r + h2h_r, act_type="sigmoid", name=f"{name}_r_act")
    update_gate = symbol.Activation(i2h_z + h2h_z, act_type="sigmoid", name=f"{name}_z_act")
    candidate = cell._get_activation(i2h + reset_gate * h2h, activation, name=f"{name}_h_act")
    next_h = symbol.elemwise_add((1.0 - update_gate) * candidate, update_gate * h, name=f"{name}out")
    return next_h, [next_h]


class _StackedWeightsCell(BaseRNNCell):
    """A cell with stacked ``i2h``/``h2h`` FullyConnected weights of ``gates * num_hidden`` rows."""

    def __init__(self, num_hidden: int, prefix: str, params: RNNParams | None, i2h_bias_init: Any = None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = _positive_int(num_hidden, f"{type(self).__name__}: num_hidden")
        self._iW = self.params.get("i2h_weight")
        self._hW = self.params.get("h2h_weight")
        self._iB = self.params.get("i2h_bias", **({"init": i2h_bias_init} if i2h_bias_init is not None else {}))
        self._hB = self.params.get("h2h_bias")

    def _projections(self, inputs: Symbol, h: Symbol, name: str, sep: str = "") -> tuple[Symbol, Symbol]:
        n = self._num_hidden * len(self._gate_names)
        i2h = symbol.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=n,
                                    name=f"{name}{sep}i2h")
        h2h = symbol.FullyConnected(data=h, weight=self._hW, bias=self._hB, num_hidden=n, name=f"{name}{sep}h2h")
        return i2h, h2h

    def _step_name(self) -> str:
        self._counter += 1
        return f"{self._prefix}t{self._counter}_"


class RNNCell(_StackedWeightsCell):
    """The simple recurrent cell ``h' = act(W_i2h x + b_i2h + W_h2h h + b_h2h)``.

    ``activation``: an ``Activation`` act_type (``'tanh'``, ``'relu'`` ...) or a function of a symbol.

        >>> import xgraph as mx
        >>> out, _ = mx.rnn.RNNCell(4, prefix='rnn_').unroll(2, [mx.sym.var('a'), mx.sym.var('b')])
        >>> [o.name for o in out]
        ['rnn_t0_out', 'rnn_t1_out']
    """

    def __init__(self, num_hidden: int, activation: Any = "tanh", prefix: str = "rnn_",
                 params: RNNParams | None = None):
        super().__init__(num_hidden, prefix, params)
        self._activation = activation

    @property
    def state_info(self) -> list:
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"}]

    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES["rnn_tanh"]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        (h,) = self._step_states(states, inputs, 1)
        name = self._step_name()
        i2h, h2h = self._projections(inputs, h, name)
        output = self._get_activation(i2h + h2h, self._activation, name=f"{name}out")
        return output, [output]


class LSTMCell(_StackedWeightsCell):
    """The LSTM cell (gates i, f, c, o stacked in that order); ``forget_bias`` initializes the
    forget gate's ``i2h`` bias (through :class:`~xgraph.rnn.init.LSTMBias`).

        >>> import xgraph as mx
        >>> cell = mx.rnn.LSTMCell(2, prefix='l_')
        >>> cell.state_info
        [{'shape': (0, 2), '__layout__': 'NC'}, {'shape': (0, 2), '__layout__': 'NC'}]
    """

    def __init__(self, num_hidden: int, prefix: str = "lstm_", params: RNNParams | None = None,
                 forget_bias: float = 1.0):
        super().__init__(num_hidden, prefix, params, i2h_bias_init=LSTMBias(forget_bias=forget_bias))

    @property
    def state_info(self) -> list:
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"},
                {"shape": (0, self._num_hidden), "__layout__": "NC"}]

    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES["lstm"]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        h, c = self._step_states(states, inputs, 2)
        name = self._step_name()
        i2h, h2h = self._projections(inputs, h, name)
        return lstm_gates(self, i2h + h2h, c, name, "tanh")


class GRUCell(_StackedWeightsCell):
    """The GRU cell in cuDNN's form (gates r, z and the candidate o):
    ``h' = (1 - z) * tanh(W_o x + b_o + r * (U_o h + c_o)) + z * h``.

        >>> import xgraph as mx
        >>> cell = mx.rnn.GRUCell(2, prefix='g_')
        >>> out, [h] = cell(mx.sym.var('x'), cell.begin_state())
        >>> out.infer_shape(x=(3, 4))[1], out.name
        ([(3, 2)], 'g_t0_out')
    """

    def __init__(self, num_hidden: int, prefix: str = "gru_", params: RNNParams | None = None):
        super().__init__(num_hidden, prefix, params)

    @property
    def state_info(self) -> list:
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"}]

    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES["gru"]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        (h,) = self._step_states(states, inputs, 1)
        name = self._step_name()
        i2h, h2h = self._projections(inputs, h, name, sep="_")
        return gru_gates(self, i2h, h2h, h, name, "tanh")


class FusedRNNCell(BaseRNNCell):
    """A whole stacked (optionally bidirectional) RNN/LSTM/GRU as one ``RNN`` node over a
    parameter vector ``<prefix>parameters`` in MXNet's packed layout.

    ``get_next_state`` also returns the final states; ``dropout`` applies between layers while
    training.  :meth:`unfuse` gives the equivalent stack of step cells, and
    :meth:`unpack_weights` / :meth:`pack_weights` convert between the two cells' parameters.

        >>> import xgraph as mx
        >>> cell = mx.rnn.FusedRNNCell(4, num_layers=2, mode='gru', bidirectional=True, get_next_state=True)
        >>> out, [h] = cell.unroll(3, mx.sym.var('data'), layout='TNC', merge_outputs=True)
        >>> out.infer_shape(data=(3, 2, 5))[1], h.infer_shape(data=(3, 2, 5))[1]
        ([(3, 2, 8)], [(4, 2, 4)])
    """

    def __init__(self, num_hidden: int, num_layers: int = 1, mode: str = "lstm", bidirectional: bool = False,
                 dropout: float = 0.0, get_next_state: bool = False, forget_bias: float = 1.0,
                 prefix: str | None = None, params: RNNParams | None = None):
        check_mode(mode, "FusedRNNCell")
        if prefix is None:
            prefix = f"{mode}_"
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = _positive_int(num_hidden, "FusedRNNCell: num_hidden")
        self._num_layers = _positive_int(num_layers, "FusedRNNCell: num_layers")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise AttributeValueError(f"FusedRNNCell: dropout must be a number in [0, 1), got {dropout!r}")
        self._mode = mode
        self._bidirectional = bool(bidirectional)
        self._dropout = dropout
        self._get_next_state = get_next_state
        self._directions = DIRECTIONS[:2 if self._bidirectional else 1]
        initializer = FusedRNN(None, num_hidden, num_layers, mode, self._bidirectional, forget_bias)
        self._parameter = self.params.get("parameters", init=initializer)

    @property
    def state_info(self) -> list:
        shape = (len(self._directions) * self._num_layers, 0, self._num_hidden)
        return [{"shape": shape, "__layout__": "LNC"} for _ in range(2 if self._mode == "lstm" else 1)]

    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self._mode]

    def _config(self) -> tuple:
        return self._mode, self._num_hidden, self._num_layers, self._bidirectional

    def unpack_weights(self, args: dict) -> dict:
        """``args`` with ``<prefix>parameters`` cut into ``<prefix>l0_i2h_i_weight`` ... (MXNet's names)."""
        args = dict(args)
        what = "FusedRNNCell.unpack_weights"
        flat = take(args, self._parameter.name, what)
        input_size = fused_input_size(int(flat.size), *self._config(), what=what)
        args.update(unpack_fused(flat, fused_pieces(*self._config(), input_size, prefix=self._prefix)))
        return args

    def pack_weights(self, args: dict) -> dict:
        """The inverse of :meth:`unpack_weights`: the per-gate pieces packed into ``<prefix>parameters``."""
        args = dict(args)
        what = "FusedRNNCell.pack_weights"
        first = f"{self._prefix}{DIRECTIONS[0]}0_i2h{self._gate_names[0]}_weight"
        if first not in args:
            take(args, first, what)  # raises, naming the missing piece
        input_size = int(args[first].shape[1])
        pieces = fused_pieces(*self._config(), input_size, prefix=self._prefix)
        values = {name: take(args, name, what) for name, _ in pieces}
        size = geometry(*self._config(), input_size).param_size()
        args[self._parameter.name] = pack_fused(values, pieces, size, what)
        return args

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        raise SymbolError("FusedRNNCell cannot be stepped: use unroll(), or unfuse() for a steppable stack")

    def unroll(self, length: int, inputs: Any, begin_state: list | None = None, layout: str = "NTC",
               merge_outputs: bool | None = None) -> tuple[Any, list]:
        """The ``RNN`` node over all ``length`` steps; layouts ``'TNC'`` and ``'NTC'`` (swapped to TNC)."""
        self.reset()
        what = "FusedRNNCell.unroll"
        data, axis = normalize_sequence(length, inputs, layout, True, what)
        if axis == 1:
            data = symbol.swapaxes(data, dim1=0, dim2=1)
        elif axis != 0:
            raise SymbolError(f"{what}: layout {layout!r} is not supported; use 'TNC' or 'NTC'")
        states = self.begin_state() if begin_state is None else begin_state
        states = self._step_states(states, data, len(self.state_info), batch_axis=1)
        named = dict(zip(("state", "state_cell"), states))
        extra = {"__layout__": "LNC"} if self._get_next_state else {}
        rnn = symbol.RNN(data=data, parameters=self._parameter, state_size=self._num_hidden,
                         num_layers=self._num_layers, bidirectional=self._bidirectional, p=self._dropout,
                         state_outputs=self._get_next_state, mode=self._mode, name=f"{self._prefix}rnn",
                         **named, **extra)
        if self._get_next_state:
            outputs, states = rnn[0], list(rnn[1:])
        else:
            outputs, states = rnn, []
        if axis == 1:
            outputs = symbol.swapaxes(outputs, dim1=0, dim2=1)
        outputs, _ = normalize_sequence(length, outputs, layout, merge_outputs, what)
        return outputs, states

    def unfuse(self) -> "BaseRNNCell":
        """The same network as a :class:`SequentialRNNCell` of step cells named ``<prefix>l0_`` ...
        (``BidirectionalCell`` s with ``<prefix>r0_`` ... when bidirectional, ``DropoutCell`` s between
        layers when ``dropout``), steppable and with per-layer weights."""
        from .wrappers import BidirectionalCell, DropoutCell, SequentialRNNCell

        def make(cell_prefix: str) -> BaseRNNCell:
            if self._mode == "lstm":
                return LSTMCell(self._num_hidden, prefix=cell_prefix)
            if self._mode == "gru":
                return GRUCell(self._num_hidden, prefix=cell_prefix)
            return RNNCell(self._num_hidden, activation=self._mode[4:], prefix=cell_prefix)

        stack = SequentialRNNCell()
        for i in range(self._num_layers):
            if self._bidirectional:
                stack.add(BidirectionalCell(make(f"{self._prefix}l{i}_"), make(f"{self._prefix}r{i}_"),
                                            output_prefix=f"{self._prefix}bi_l{i}_"))
            else:
                stack.add(make(f"{self._prefix}l{i}_"))
            if self._dropout > 0 and i != self._num_layers - 1:
                stack.add(DropoutCell(self._dropout, prefix=f"{self._prefix}_dropout{i}_"))
        return stack
