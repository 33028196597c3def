"""``xgraph.init`` / ``xgraph.initializer``: MXNet's ``mx.init`` namespace, a re-export of :mod:`xgraph.train.initializer`.

    >>> import xgraph as mx
    >>> mx.init.Xavier().dumps()
    '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'
"""
from .train.initializer import *  # noqa: F401,F403
from .train.initializer import __all__  # noqa: F401
from .rnn.init import FusedRNN, LSTMBias  # noqa: F401,E402  (the RNN cells' initializers)
