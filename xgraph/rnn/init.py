"""The initializers of RNN cell weights (``mx.init.LSTMBias``, ``mx.init.FusedRNN``), registered with
:mod:`xgraph.train.initializer` so a variable's ``__init__`` attribute finds them by name.

    >>> import xgraph as mx
    >>> desc = mx.init.InitDesc('lstm_i2h_bias', attrs={'__init__': mx.init.LSTMBias(2.0).dumps()})
    >>> mx.init.Uniform().init_array(desc, (8,)).tolist()
    [0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..errors import ConfigError, ShapeError
from ..ndarray import NDArray
from ..train.initializer import InitDesc, Initializer, create, register
from .layout import check_mode, fused_input_size, fused_pieces, pack_fused

__all__ = ["LSTMBias", "FusedRNN"]


@register
class LSTMBias(Initializer):
    """An LSTM bias of zeros except the forget gate (the second of the four gate blocks), set to
    ``forget_bias`` (Jozefowicz et al. 2015 recommend 1.0).

        >>> LSTMBias().dumps()
        '["lstmbias", {"forget_bias": 1.0}]'
    """

    def __init__(self, forget_bias: float = 1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name: str, arr: NDArray) -> None:
        if arr.ndim != 1 or arr.shape[0] % 4:
            raise ShapeError(f"LSTMBias: {name!r} must be a bias of 4 * num_hidden elements, got shape {arr.shape}")
        h = arr.shape[0] // 4
        arr[:] = 0.0
        arr[h:2 * h] = self.forget_bias


@register
class FusedRNN(Initializer):
    """Initialize a fused ``RNN`` parameter vector piece by piece, as its unfused cells would be.

    Each per-layer, per-direction, per-gate weight and bias (named as ``FusedRNNCell.unpack_weights``
    names them) is initialized by ``init`` (by default the global initializer, so weights get its
    weight rule and biases zeros); for LSTM the forget-gate biases (of ``i2h`` and ``h2h``, as
    MXNet) are set to ``forget_bias``.

        >>> import xgraph as mx
        >>> fused = FusedRNN(None, num_hidden=1, num_layers=1, mode='lstm', forget_bias=2.0)
        >>> desc = mx.init.InitDesc('lstm_parameters', attrs={'__init__': fused.dumps()})
        >>> mx.init.One().init_array(desc, (24,)).tolist()[16:]   # 16 weights, then the i2h and h2h biases
        [0.0, 2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]
    """

    def __init__(self, init: Any, num_hidden: int, num_layers: int, mode: str, bidirectional: bool = False,
                 forget_bias: float = 1.0):
        inner = create(init) if init is not None else None
        check_mode(mode, "mx.init.FusedRNN")
        super().__init__(init=inner.dumps() if inner is not None else None, num_hidden=num_hidden,
                         num_layers=num_layers, mode=mode, bidirectional=bidirectional, forget_bias=forget_bias)
        self._init = inner
        self._num_hidden, self._num_layers, self._mode = num_hidden, num_layers, mode
        self._bidirectional, self._forget_bias = bool(bidirectional), forget_bias

    def _init_weight(self, desc: str, arr: NDArray) -> None:
        config = (self._mode, self._num_hidden, self._num_layers, self._bidirectional)
        input_size = fused_input_size(arr.size, *config, what=f"mx.init.FusedRNN for {str(desc)!r}")
        pieces = fused_pieces(*config, input_size)
        global_init = getattr(desc, "global_init", None)
        piece_init = self._init or (global_init if global_init is not self else None)
        values = {}
        for name, idx in pieces:
            piece = NDArray(jnp.zeros(idx.shape, arr.dtype))
            if self._mode == "lstm" and name.endswith("_f_bias"):
                piece[:] = self._forget_bias
            elif piece_init is None:
                raise ConfigError(f"mx.init.FusedRNN for {str(desc)!r}: no initializer for the pieces; give "
                                  f"init=, or use it through a global initializer (Module.init_params)")
            else:
                piece_init(InitDesc(name, global_init=global_init), piece, key=self._next_key())
            values[name] = piece.data
        arr[:] = pack_fused(values, pieces, arr.size, "mx.init.FusedRNN")
