"""Checkpoints of models built from RNN cells (``mx.rnn.save_rnn_checkpoint``, ``load_rnn_checkpoint``,
``do_rnn_checkpoint``): MXNet's checkpoint files with the cells' weights unpacked (per gate, per
layer), so a fused and an unfused model read each other's files.

    >>> import os, tempfile, numpy as np, xgraph as mx
    >>> cell = mx.rnn.GRUCell(2, prefix='g_')
    >>> out, _ = cell.unroll(1, mx.sym.var('data'), merge_outputs=True)
    >>> args = {'g_i2h_weight': np.ones((6, 3)), 'g_i2h_bias': np.zeros(6),
    ...         'g_h2h_weight': np.ones((6, 2)), 'g_h2h_bias': np.zeros(6)}
    >>> prefix = os.path.join(tempfile.mkdtemp(), 'gru')
    >>> save_rnn_checkpoint(cell, prefix, 1, out, args, {})
    >>> sorted(mx.model.load_checkpoint(prefix, 1)[1])[:2]
    ['g_h2h_o_bias', 'g_h2h_o_weight']
    >>> sorted(load_rnn_checkpoint(cell, prefix, 1)[1])
    ['g_h2h_bias', 'g_h2h_weight', 'g_i2h_bias', 'g_i2h_weight']
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..model import load_checkpoint, save_checkpoint
from ..symbol import Symbol
from .base import BaseRNNCell

__all__ = ["save_rnn_checkpoint", "load_rnn_checkpoint", "do_rnn_checkpoint"]


def _cells(cells: Any) -> list:
    return [cells] if isinstance(cells, BaseRNNCell) else list(cells)


def save_rnn_checkpoint(cells: Any, prefix: str, epoch: int, symbol: Symbol | None, arg_params: Mapping[str, Any],
                        aux_params: Mapping[str, Any]) -> None:
    """:func:`xgraph.model.save_checkpoint` with ``arg_params`` unpacked by each cell in ``cells``."""
    args = dict(arg_params)
    for cell in _cells(cells):
        args = cell.unpack_weights(args)
    save_checkpoint(prefix, epoch, symbol, args, aux_params)


def load_rnn_checkpoint(cells: Any, prefix: str, epoch: int) -> tuple[Symbol, dict, dict]:
    """:func:`xgraph.model.load_checkpoint` with the arguments packed back by each cell in ``cells``."""
    sym, args, aux = load_checkpoint(prefix, epoch)
    for cell in _cells(cells):
        args = cell.pack_weights(args)
    return sym, args, aux


def do_rnn_checkpoint(cells: Any, prefix: str, period: int = 1) -> Callable:
    """An epoch-end callback (``Module.fit(epoch_end_callback=...)``) saving an RNN checkpoint every ``period`` epochs.

        >>> cb = do_rnn_checkpoint([], '/tmp/never', period=2); cb(0, None, {}, {})   # epoch 1 of 2: nothing saved
    """
    period = int(max(1, period))

    def _callback(iter_no: int, sym: Symbol | None = None, arg: Any = None, aux: Any = None) -> None:
        if (iter_no + 1) % period == 0:
            save_rnn_checkpoint(cells, prefix, iter_no + 1, sym, arg, aux)
    return _callback
