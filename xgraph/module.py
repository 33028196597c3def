"""``xgraph.module``: MXNet's ``mx.module`` namespace (the same as :mod:`xgraph.mod`).

    >>> import xgraph as mx
    >>> mx.module.Module is mx.mod.Module
    True
"""
from .train.module import BaseModule, Module  # noqa: F401

__all__ = ["BaseModule", "Module"]
