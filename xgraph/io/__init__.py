"""Reading and writing graphs and arrays (symbol JSON, .params, atomic writes), and MXNet's
``mx.io`` data iterators (``NDArrayIter``, ``DataBatch``, ``DataDesc`` ..., from :mod:`xgraph.train.data`).

    >>> import numpy as np, xgraph as mx
    >>> mx.io.NDArrayIter(np.zeros((4, 2)), batch_size=2).provide_data[0].shape
    (2, 2)
"""
from typing import Any

_DATA_NAMES = ("DataDesc", "DataBatch", "DataIter", "NDArrayIter", "PythonIter")


def __getattr__(name: str) -> Any:
    # lazy: the iterators import xgraph.ndarray, which itself reads files through this package
    if name in _DATA_NAMES:
        from ..train import data
        return getattr(data, name)
    raise AttributeError(f"module 'xgraph.io' has no attribute {name!r}")
