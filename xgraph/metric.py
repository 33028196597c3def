"""``xgraph.metric``: MXNet's ``mx.metric`` namespace, a re-export of :mod:`xgraph.train.metric`.

    >>> import xgraph as mx
    >>> mx.metric is not None
    True
"""
from .train.metric import *  # noqa: F401,F403
from .train.metric import __all__  # noqa: F401
