"""The operator library: one file per family, all registered in :mod:`.registry`.

Importing this package registers every operator.

    >>> from xgraph.ops import registry
    >>> registry.exists('Convolution') and registry.exists('FullyConnected')
    True
"""
from . import registry  # noqa: F401
from . import amp, broadcast, constant, elemwise, linalg, loss, nn, norm, reduce, shape  # noqa: F401  (registration side effects)
