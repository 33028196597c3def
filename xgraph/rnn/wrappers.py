"""Cells made of cells: :class:`SequentialRNNCell` (a stack), :class:`BidirectionalCell`,
:class:`DropoutCell`, and the modifiers :class:`ZoneoutCell` and :class:`ResidualCell`
(``mx.rnn``'s composition API, MXNet 1.9.1 semantics and node names).

    >>> import xgraph as mx
    >>> stack = mx.rnn.SequentialRNNCell()
    >>> stack.add(mx.rnn.LSTMCell(4, prefix='l0_'))
    >>> stack.add(mx.rnn.ResidualCell(mx.rnn.LSTMCell(4, prefix='l1_')))
    >>> out, states = stack.unroll(3, mx.sym.var('data'), merge_outputs=True)
    >>> out.infer_shape(data=(2, 3, 4))[1], len(states)
    ([(2, 3, 4)], 4)
"""
from __future__ import annotations

from numbers import Number
from typing import Any, Callable

from .. import symbol
from ..errors import AttributeValueError, SymbolError
from ..symbol import Symbol
from .base import BaseRNNCell, RNNParams, normalize_sequence

__all__ = ["SequentialRNNCell", "BidirectionalCell", "DropoutCell", "ModifierCell", "ZoneoutCell",
           "ResidualCell"]


def _share_params(owner: BaseRNNCell, children: list, override: bool) -> None:
    """Merge the children's weight variables into ``owner``'s (or, when ``override``, hand them the owner's)."""
    for cell in children:
        if override:
            if not cell._own_params:
                raise SymbolError(f"{type(owner).__name__}: give params either to it or to the child cells, "
                                  f"not both")
            cell.params._params.update(owner.params._params)
        owner.params._params.update(cell.params._params)


class _CellList(BaseRNNCell):
    """Shared behaviour of cells over a list of child cells ``_cells``: states and weights are theirs."""

    _cells: list

    @property
    def state_info(self) -> list:
        return sum((c.state_info for c in self._cells), [])

    def begin_state(self, **kwargs: Any) -> list:
        """The children's begin states, in order."""
        self._check_unmodified()
        return sum((c.begin_state(**kwargs) for c in self._cells), [])

    def unpack_weights(self, args: dict) -> dict:
        """Every child's :meth:`~BaseRNNCell.unpack_weights` in turn."""
        for cell in self._cells:
            args = cell.unpack_weights(args)
        return args

    def pack_weights(self, args: dict) -> dict:
        """Every child's :meth:`~BaseRNNCell.pack_weights` in turn."""
        for cell in self._cells:
            args = cell.pack_weights(args)
        return args


class SequentialRNNCell(_CellList):
    """A stack of cells: each cell's output is the next one's input; the states are all the cells' states.

        >>> import xgraph as mx
        >>> stack = mx.rnn.SequentialRNNCell()
        >>> stack.add(mx.rnn.GRUCell(3, prefix='a_')); stack.add(mx.rnn.GRUCell(3, prefix='b_'))
        >>> out, states = stack(mx.sym.var('x'), stack.begin_state())
        >>> out.name, len(states)
        ('b_t0_out', 2)
    """

    def __init__(self, params: RNNParams | None = None):
        super().__init__(prefix="", params=params)
        self._override_cell_params = params is not None
        self._cells = []

    def add(self, cell: BaseRNNCell) -> None:
        """Append ``cell`` to the stack."""
        if not isinstance(cell, BaseRNNCell):
            raise SymbolError(f"SequentialRNNCell.add takes an RNN cell, got {type(cell).__name__}")
        self._cells.append(cell)
        _share_params(self, [cell], self._override_cell_params)

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        self._counter += 1
        next_states = []
        p = 0
        for cell in self._cells:
            if isinstance(cell, BidirectionalCell):
                raise SymbolError("SequentialRNNCell with a BidirectionalCell cannot be stepped; use unroll()")
            n = len(cell.state_info)
            inputs, state = cell(inputs, states[p:p + n])
            p += n
            next_states.extend(state)
        return inputs, next_states

    def unroll(self, length: int, inputs: Any, begin_state: list | None = None, layout: str = "NTC",
               merge_outputs: bool | None = None) -> tuple[Any, list]:
        """Unroll each cell over the previous one's outputs; ``merge_outputs`` applies to the last."""
        self.reset()
        begin_state = self.begin_state() if begin_state is None else begin_state
        p = 0
        next_states = []
        last = len(self._cells) - 1
        for i, cell in enumerate(self._cells):
            n = len(cell.state_info)
            inputs, states = cell.unroll(length, inputs=inputs, begin_state=begin_state[p:p + n], layout=layout,
                                         merge_outputs=None if i < last else merge_outputs)
            p += n
            next_states.extend(states)
        return inputs, next_states


class DropoutCell(BaseRNNCell):
    """Dropout (rate ``dropout``, training only) on the inputs; no states.

        >>> import xgraph as mx
        >>> out, states = mx.rnn.DropoutCell(0.5).unroll(2, mx.sym.var('x'), merge_outputs=True)
        >>> out.infer_shape(x=(3, 2, 4))[1], states
        ([(3, 2, 4)], [])
    """

    def __init__(self, dropout: float, prefix: str = "dropout_", params: RNNParams | None = None):
        super().__init__(prefix, params)
        if not isinstance(dropout, Number) or isinstance(dropout, bool) or not 0 <= dropout < 1:
            raise AttributeValueError(f"DropoutCell: dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = dropout

    @property
    def state_info(self) -> list:
        return []

    def __call__(self, inputs: Any, states: list) -> tuple[Any, list]:
        if self.dropout > 0:
            inputs = symbol.Dropout(data=inputs, p=self.dropout)
        return inputs, states

    def unroll(self, length: int, inputs: Any, begin_state: list | None = None, layout: str = "NTC",
               merge_outputs: bool | None = None) -> tuple[Any, list]:
        """Dropout on the whole sequence at once when it is (or is to be) one symbol, else per step."""
        self.reset()
        inputs, _ = normalize_sequence(length, inputs, layout, merge_outputs, "DropoutCell.unroll")
        if isinstance(inputs, Symbol):
            return self(inputs, [])
        return super().unroll(length, inputs, begin_state=begin_state, layout=layout, merge_outputs=merge_outputs)


class ModifierCell(BaseRNNCell):
    """Base class of cells that wrap a ``base_cell`` and change its step (zoneout, residual ...).

    The wrapped cell must not be used on its own afterwards; its weights and states are the modifier's.
    """

    def __init__(self, base_cell: BaseRNNCell):
        if not isinstance(base_cell, BaseRNNCell):
            raise SymbolError(f"{type(self).__name__} wraps an RNN cell, got {type(base_cell).__name__}")
        super().__init__()
        base_cell._modified = True
        self.base_cell = base_cell

    @property
    def params(self) -> RNNParams:
        self._own_params = False
        return self.base_cell.params

    @property
    def state_info(self) -> list:
        return self.base_cell.state_info

    def begin_state(self, func: Callable = symbol.zeros, **kwargs: Any) -> list:
        """The base cell's begin states (``init_sym=`` is MXNet's name for ``func`` here)."""
        self._check_unmodified()
        func = kwargs.pop("init_sym", func)
        self.base_cell._modified = False
        try:
            return self.base_cell.begin_state(func=func, **kwargs)
        finally:
            self.base_cell._modified = True

    def unpack_weights(self, args: dict) -> dict:
        """The base cell's :meth:`~BaseRNNCell.unpack_weights`."""
        return self.base_cell.unpack_weights(args)

    def pack_weights(self, args: dict) -> dict:
        """The base cell's :meth:`~BaseRNNCell.pack_weights`."""
        return self.base_cell.pack_weights(args)


class ZoneoutCell(ModifierCell):
    """Zoneout (Krueger et al. 2016): while training, each output and state unit keeps its previous
    value with probability ``zoneout_outputs`` / ``zoneout_states``.

        >>> import xgraph as mx
        >>> cell = mx.rnn.ZoneoutCell(mx.rnn.RNNCell(3, prefix='z_'), zoneout_outputs=0.5)
        >>> out, _ = cell.unroll(2, mx.sym.var('x'), merge_outputs=True)
        >>> out.infer_shape(x=(4, 2, 5))[1]
        [(4, 2, 3)]
    """

    def __init__(self, base_cell: BaseRNNCell, zoneout_outputs: float = 0.0, zoneout_states: float = 0.0):
        from .cells import FusedRNNCell
        if isinstance(base_cell, FusedRNNCell):
            raise SymbolError("ZoneoutCell cannot wrap a FusedRNNCell (it has no step); unfuse() it first")
        if isinstance(base_cell, BidirectionalCell) or (
                isinstance(base_cell, SequentialRNNCell)
                and any(isinstance(c, BidirectionalCell) for c in base_cell._cells)):
            raise SymbolError("ZoneoutCell cannot wrap a bidirectional cell (it has no step); wrap the cells "
                              "inside it instead")
        for what, p in (("zoneout_outputs", zoneout_outputs), ("zoneout_states", zoneout_states)):
            if not isinstance(p, Number) or isinstance(p, bool) or not 0 <= p < 1:
                raise AttributeValueError(f"ZoneoutCell: {what} must be a number in [0, 1), got {p!r}")
        super().__init__(base_cell)
        self.zoneout_outputs = zoneout_outputs
        self.zoneout_states = zoneout_states
        self.prev_output = None

    def reset(self) -> None:
        super().reset()
        self.prev_output = None

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        states = self._step_states(states, inputs, len(self.state_info))
        next_output, next_states = self.base_cell(inputs, states)

        def keep_new(p: float, new: Symbol, old: Symbol) -> Symbol:
            return symbol.where(symbol.Dropout(symbol.ones_like(new), p=p), new, old)

        prev = self.prev_output if self.prev_output is not None else symbol.zeros_like(next_output)
        output = keep_new(self.zoneout_outputs, next_output, prev) if self.zoneout_outputs else next_output
        if self.zoneout_states:
            next_states = [keep_new(self.zoneout_states, new, old) for new, old in zip(next_states, states)]
        self.prev_output = output
        return output, next_states


class ResidualCell(ModifierCell):
    """A residual connection (Wu et al. 2016): the base cell's output plus its input.

        >>> import xgraph as mx
        >>> out, _ = mx.rnn.ResidualCell(mx.rnn.GRUCell(4, prefix='g_')).unroll(2, mx.sym.var('x'))
        >>> [o.name for o in out]
        ['g_t0_out_plus_residual', 'g_t1_out_plus_residual']
    """

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        output, states = self.base_cell(inputs, states)
        return symbol.elemwise_add(output, inputs, name=f"{output.name}_plus_residual"), states

    def unroll(self, length: int, inputs: Any, begin_state: list | None = None, layout: str = "NTC",
               merge_outputs: bool | None = None) -> tuple[Any, list]:
        """The base cell's unroll (fused or bidirectional ones too) plus the inputs."""
        self.reset()
        self.base_cell._modified = False
        try:
            outputs, states = self.base_cell.unroll(length, inputs=inputs, begin_state=begin_state,
                                                    layout=layout, merge_outputs=merge_outputs)
        finally:
            self.base_cell._modified = True
        merge = isinstance(outputs, Symbol) if merge_outputs is None else merge_outputs
        inputs, _ = normalize_sequence(length, inputs, layout, merge, "ResidualCell.unroll")
        if merge:
            return symbol.elemwise_add(outputs, inputs, name=f"{outputs.name}_plus_residual"), states
        return [symbol.elemwise_add(o, i, name=f"{o.name}_plus_residual") for o, i in zip(outputs, inputs)], states


class BidirectionalCell(_CellList):
    """Run ``l_cell`` forward and ``r_cell`` backward in time and concatenate their outputs
    (named ``<output_prefix>t<i>``, or ``<output_prefix>out`` when merged).

        >>> import xgraph as mx
        >>> bi = mx.rnn.BidirectionalCell(mx.rnn.GRUCell(2, prefix='l_'), mx.rnn.GRUCell(3, prefix='r_'))
        >>> out, _ = bi.unroll(2, mx.sym.var('x'), merge_outputs=True)
        >>> out.name, out.infer_shape(x=(4, 2, 5))[1]
        ('bi_out', [(4, 2, 5)])
    """

    def __init__(self, l_cell: BaseRNNCell, r_cell: BaseRNNCell, params: RNNParams | None = None,
                 output_prefix: str = "bi_"):
        super().__init__("", params=params)
        for c in (l_cell, r_cell):
            if not isinstance(c, BaseRNNCell):
                raise SymbolError(f"BidirectionalCell takes two RNN cells, got {type(c).__name__}")
        self._output_prefix = output_prefix
        self._override_cell_params = params is not None
        _share_params(self, [l_cell, r_cell], self._override_cell_params)
        self._cells = [l_cell, r_cell]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        raise SymbolError("BidirectionalCell cannot be stepped (the backward direction needs the whole "
                          "sequence); use unroll()")

    def unroll(self, length: int, inputs: Any, begin_state: list | None = None, layout: str = "NTC",
               merge_outputs: bool | None = None) -> tuple[Any, list]:
        """Both directions over the sequence; the states are ``[l_states, r_states]``."""
        self.reset()
        what = "BidirectionalCell.unroll"
        inputs, axis = normalize_sequence(length, inputs, layout, False, what)
        begin_state = self.begin_state() if begin_state is None else begin_state
        l_cell, r_cell = self._cells
        n_l = len(l_cell.state_info)
        l_outputs, l_states = l_cell.unroll(length, inputs=inputs, begin_state=begin_state[:n_l],
                                            layout=layout, merge_outputs=merge_outputs)
        r_outputs, r_states = r_cell.unroll(length, inputs=list(reversed(inputs)), begin_state=begin_state[n_l:],
                                            layout=layout, merge_outputs=merge_outputs)
        if merge_outputs is None:
            merge_outputs = isinstance(l_outputs, Symbol) and isinstance(r_outputs, Symbol)
            if not merge_outputs:
                l_outputs = _steps(l_outputs, axis, length)
                r_outputs = _steps(r_outputs, axis, length)
        if merge_outputs:
            l_outputs, r_outputs = [l_outputs], [symbol.reverse(r_outputs, axis=axis)]
        else:
            r_outputs = list(reversed(r_outputs))
        outputs = [symbol.Concat(l_o, r_o, dim=1 + merge_outputs,
                                 name=f"{self._output_prefix}out" if merge_outputs else f"{self._output_prefix}t{i}")
                   for i, (l_o, r_o) in enumerate(zip(l_outputs, r_outputs))]
        return (outputs[0] if merge_outputs else outputs), [l_states, r_states]


def _steps(outputs: Any, axis: int, length: int) -> list:
    """Per-step outputs from a merged (batch, time, ...) or (time, batch, ...) symbol, or the list itself."""
    if isinstance(outputs, Symbol):
        return list(symbol.SliceChannel(outputs, axis=axis, num_outputs=length, squeeze_axis=1))
    return outputs
