"""``mx.rnn``: MXNet 1.x's symbolic RNN cell API, built from ordinary symbols.

Step cells (:class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`, the convolutional ones),
:class:`FusedRNNCell` (one ``RNN`` node, with ``unfuse()``), the composition cells
(:class:`SequentialRNNCell`, :class:`BidirectionalCell`, :class:`DropoutCell`,
:class:`ZoneoutCell`, :class:`ResidualCell`), bucketed text data (:class:`BucketSentenceIter`,
:func:`encode_sentences`) and checkpoints with unpacked weights.

    >>> import xgraph as mx
    >>> cell = mx.rnn.FusedRNNCell(8, num_layers=2, mode='lstm', prefix='lstm_')
    >>> out, _ = cell.unroll(5, mx.sym.var('data'), layout='TNC', merge_outputs=True)
    >>> out.infer_shape(data=(5, 3, 4))[1]
    [(5, 3, 8)]
    >>> [type(c).__name__ for c in cell.unfuse()._cells]
    ['LSTMCell', 'LSTMCell']
"""
from . import io  # noqa: F401
from .base import BaseRNNCell, RNNParams  # noqa: F401
from .cells import FusedRNNCell, GRUCell, LSTMCell, RNNCell  # noqa: F401
from .checkpoint import do_rnn_checkpoint, load_rnn_checkpoint, save_rnn_checkpoint  # noqa: F401
from .conv import BaseConvRNNCell, ConvGRUCell, ConvLSTMCell, ConvRNNCell  # noqa: F401
from .io import BucketSentenceIter, encode_sentences  # noqa: F401
from .wrappers import (BidirectionalCell, DropoutCell, ModifierCell, ResidualCell,  # noqa: F401
                       SequentialRNNCell, ZoneoutCell)

__all__ = ["RNNParams", "BaseRNNCell", "RNNCell", "LSTMCell", "GRUCell", "FusedRNNCell", "SequentialRNNCell",
           "BidirectionalCell", "DropoutCell", "ModifierCell", "ZoneoutCell", "ResidualCell", "BaseConvRNNCell",
           "ConvRNNCell", "ConvLSTMCell", "ConvGRUCell", "BucketSentenceIter", "encode_sentences",
           "save_rnn_checkpoint", "load_rnn_checkpoint", "do_rnn_checkpoint"]
