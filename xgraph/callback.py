"""``xgraph.callback``: MXNet's ``mx.callback`` namespace, from :mod:`xgraph.train.callback`.

    >>> import xgraph as mx
    >>> mx.callback.Speedometer(32).batch_size
    32
"""
from .train.callback import *  # noqa: F401,F403
from .train.callback import __all__  # noqa: F401
