"""``xgraph.lr_scheduler``: MXNet's ``mx.lr_scheduler`` namespace, a re-export of :mod:`xgraph.train.lr_scheduler`.

    >>> import xgraph as mx
    >>> mx.lr_scheduler is not None
    True
"""
from .train.lr_scheduler import *  # noqa: F401,F403
from .train.lr_scheduler import __all__  # noqa: F401
