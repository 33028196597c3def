"""``xgraph.optimizer``: MXNet's ``mx.optimizer`` namespace, a re-export of :mod:`xgraph.train.optimizer`.

    >>> import xgraph as mx
    >>> mx.optimizer is not None
    True
"""
from .train.optimizer import *  # noqa: F401,F403
from .train.optimizer import __all__  # noqa: F401
