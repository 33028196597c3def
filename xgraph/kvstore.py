"""``xgraph.kvstore`` / ``mx.kv``: MXNet's KVStore namespace, from :mod:`xgraph.train.kvstore`.

    >>> import xgraph as mx
    >>> mx.kv.create('device').type
    'device'
"""
from .train.kvstore import KVSTORE_TYPES, KVStore, create  # noqa: F401

__all__ = ["KVStore", "create", "KVSTORE_TYPES"]
