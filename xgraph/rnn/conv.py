"""Convolutional recurrent cells (``mx.rnn.ConvRNNCell``, ``ConvLSTMCell``, ``ConvGRUCell``,
Shi et al. 2015): the dense cells' gate arithmetic over ``Convolution`` projections of the input
(``i2h``) and of the state (``h2h``, a 'same' convolution so the state keeps its spatial size).

    >>> import xgraph as mx
    >>> cell = mx.rnn.ConvLSTMCell(input_shape=(1, 3, 8, 6), num_hidden=4, prefix='c_')
    >>> cell.state_shape
    [(0, 4, 8, 6), (0, 4, 8, 6)]
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

from .. import symbol
from ..errors import AttributeValueError
from ..symbol import Symbol
from .base import BaseRNNCell, RNNParams
from .cells import gru_gates, lstm_gates
from .layout import GATE_NAMES

__all__ = ["BaseConvRNNCell", "ConvRNNCell", "ConvLSTMCell", "ConvGRUCell"]

#: MXNet's default activation of the convolutional cells
LEAKY = functools.partial(symbol.LeakyReLU, act_type="leaky", slope=0.2)


def _pair(value: Any, what: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise AttributeValueError(f"{what} must be a pair of ints, got {value!r}") from None
    return a, b


class BaseConvRNNCell(BaseRNNCell):
    """Shared construction of the convolutional cells: kernel settings, the state shape (inferred
    from one ``i2h`` convolution of ``input_shape``), the four weight variables and the projections.

    ``h2h_kernel`` must be odd so the recurrent convolution can keep the state's size.  The
    subclasses differ only in their gates and their default ``prefix``.
    """

    #: the prefix when none is given (each cell's MXNet default)
    default_prefix = ""
    _num_states = 1

    def __init__(self, input_shape: Sequence[int], num_hidden: int, h2h_kernel: Any = (3, 3),
                 h2h_dilate: Any = (1, 1), i2h_kernel: Any = (3, 3), i2h_stride: Any = (1, 1),
                 i2h_pad: Any = (1, 1), i2h_dilate: Any = (1, 1), i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", activation: Any = LEAKY, prefix: str | None = None,
                 params: RNNParams | None = None, conv_layout: str = "NCHW"):
        prefix = self.default_prefix if prefix is None else prefix
        super().__init__(prefix=prefix, params=params)
        what = type(self).__name__
        self._h2h_kernel = _pair(h2h_kernel, f"{what}: h2h_kernel")
        if self._h2h_kernel[0] % 2 != 1 or self._h2h_kernel[1] % 2 != 1:
            raise AttributeValueError(f"{what}: h2h_kernel must be odd to keep the state's size, got {h2h_kernel}")
        self._h2h_dilate = _pair(h2h_dilate, f"{what}: h2h_dilate")
        self._h2h_pad = tuple(d * (k - 1) // 2 for d, k in zip(self._h2h_dilate, self._h2h_kernel))
        self._i2h_kernel = _pair(i2h_kernel, f"{what}: i2h_kernel")
        self._i2h_stride = _pair(i2h_stride, f"{what}: i2h_stride")
        self._i2h_pad = _pair(i2h_pad, f"{what}: i2h_pad")
        self._i2h_dilate = _pair(i2h_dilate, f"{what}: i2h_dilate")
        self._num_hidden = num_hidden
        self._input_shape = tuple(input_shape)
        self._conv_layout = conv_layout
        self._activation = activation
        probe = symbol.Convolution(data=symbol.Variable("data"), num_filter=num_hidden, kernel=self._i2h_kernel,
                                   stride=self._i2h_stride, pad=self._i2h_pad, dilate=self._i2h_dilate,
                                   layout=conv_layout)
        self._state_shape = (0,) + tuple(probe.infer_shape(data=self._input_shape)[1][0][1:])
        self._iW = self.params.get("i2h_weight", **_init(i2h_weight_initializer))
        self._hW = self.params.get("h2h_weight", **_init(h2h_weight_initializer))
        self._iB = self.params.get("i2h_bias", **_init(i2h_bias_initializer))
        self._hB = self.params.get("h2h_bias", **_init(h2h_bias_initializer))

    @property
    def _num_gates(self) -> int:
        return len(self._gate_names)

    @property
    def state_info(self) -> list:
        return [{"shape": self._state_shape, "__layout__": self._conv_layout} for _ in range(self._num_states)]

    def _conv_forward(self, inputs: Symbol, states: list, name: str) -> tuple[Symbol, Symbol]:
        """The ``i2h`` and ``h2h`` convolutions, ``num_hidden * gates`` filters each."""
        filters = self._num_hidden * self._num_gates
        i2h = symbol.Convolution(name=f"{name}i2h", data=inputs, num_filter=filters, kernel=self._i2h_kernel,
                                 stride=self._i2h_stride, pad=self._i2h_pad, dilate=self._i2h_dilate,
                                 weight=self._iW, bias=self._iB, layout=self._conv_layout)
        h2h = symbol.Convolution(name=f"{name}h2h", data=states[0], num_filter=filters, kernel=self._h2h_kernel,
                                 dilate=self._h2h_dilate, pad=self._h2h_pad, stride=(1, 1),
                                 weight=self._hW, bias=self._hB, layout=self._conv_layout)
        return i2h, h2h

    def _begin_step(self, inputs: Symbol, states: list) -> tuple[list, str, Symbol, Symbol]:
        states = self._step_states(states, inputs, self._num_states)
        self._counter += 1
        name = f"{self._prefix}t{self._counter}_"
        i2h, h2h = self._conv_forward(inputs, states, name)
        return states, name, i2h, h2h


def _init(initializer: Any) -> dict:
    return {} if initializer is None else {"init": initializer}


class ConvRNNCell(BaseConvRNNCell):
    """``h' = activation(conv_i2h(x) + conv_h2h(h))``.

        >>> import xgraph as mx
        >>> cell = mx.rnn.ConvRNNCell(input_shape=(1, 3, 8, 6), num_hidden=4, prefix='c_')
        >>> out, _ = cell.unroll(2, [mx.sym.var('a'), mx.sym.var('b')])
        >>> out[1].infer_shape(a=(1, 3, 8, 6), b=(1, 3, 8, 6))[1]
        [(1, 4, 8, 6)]
    """

    default_prefix = "ConvRNN_"


    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES["rnn_tanh"]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        states, name, i2h, h2h = self._begin_step(inputs, states)
        output = self._get_activation(i2h + h2h, self._activation, name=f"{name}out")
        return output, [output]


class ConvLSTMCell(BaseConvRNNCell):
    """The LSTM step over convolutions; ``activation`` replaces tanh (default: leaky ReLU, slope 0.2).

        >>> import xgraph as mx
        >>> cell = mx.rnn.ConvLSTMCell(input_shape=(1, 3, 8, 6), num_hidden=4, prefix='c_')
        >>> out, [h, c] = cell(mx.sym.var('x'), cell.begin_state())
        >>> c.infer_shape(x=(2, 3, 8, 6))[1]
        [(2, 4, 8, 6)]
    """

    default_prefix = "ConvLSTM_"
    _num_states = 2

    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES["lstm"]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        states, name, i2h, h2h = self._begin_step(inputs, states)
        return lstm_gates(self, i2h + h2h, states[1], name, self._activation, axis=self._conv_layout.find("C"))


class ConvGRUCell(BaseConvRNNCell):
    """The GRU step over convolutions; ``activation`` squashes the candidate (default: leaky ReLU).

        >>> import xgraph as mx
        >>> cell = mx.rnn.ConvGRUCell(input_shape=(1, 3, 8, 6), num_hidden=4, prefix='g_')
        >>> sorted(cell.params._params)
        ['g_h2h_bias', 'g_h2h_weight', 'g_i2h_bias', 'g_i2h_weight']
    """

    default_prefix = "ConvGRU_"


    @property
    def _gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES["gru"]

    def __call__(self, inputs: Symbol, states: list) -> tuple[Symbol, list]:
        states, name, i2h, h2h = self._begin_step(inputs, states)
        return gru_gates(self, i2h, h2h, states[0], name, self._activation, axis=self._conv_layout.find("C"))
