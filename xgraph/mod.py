"""``xgraph.mod``: MXNet's ``mx.mod`` namespace (``Module``, ``BaseModule``), from :mod:`xgraph.train.module`.

    >>> import xgraph as mx
    >>> mx.mod.Module.__name__
    'Module'
"""
from .train.module import BaseModule, Module  # noqa: F401

__all__ = ["BaseModule", "Module"]
