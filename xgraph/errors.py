"""The xgraph exception hierarchy.

Every failure a user can cause (bad files, unknown operators, wrong shapes or
dtypes, bad attribute values, missing inputs) raises a subclass of
:class:`XGraphError`, whose message names the node, the operator and what was
expected.  Catch ``xgraph.XGraphError`` to catch them all::

    >>> import xgraph as mx
    >>> try:
    ...     mx.sym.FullyConnected(mx.sym.var('x'), num_hidden='ten')
    ... except mx.XGraphError as e:
    ...     print(type(e).__name__)
    AttributeValueError
"""
from __future__ import annotations


class XGraphError(Exception):
    """Base class of every error xgraph raises on bad user input."""


class GraphFormatError(XGraphError, ValueError):
    """A symbol JSON, params file or other serialized graph is malformed."""


class UnsupportedOperatorError(XGraphError, NotImplementedError):
    """One or more operators are not in the registry.

    ``ops`` lists every unsupported operator name found (not only the first).
    """

    def __init__(self, message: str, ops: tuple[str, ...] = ()):
        super().__init__(message)
        self.ops = tuple(ops)


class AttributeValueError(XGraphError, ValueError):
    """An operator attribute is unknown, missing or has a bad value."""


class SymbolError(XGraphError, ValueError):
    """A symbol was used wrongly: bad composition, unknown input name, bad output index."""


class ShapeError(XGraphError, ValueError):
    """Shapes are inconsistent, or an input has the wrong shape."""


class DTypeError(XGraphError, TypeError):
    """Dtypes are inconsistent, or an input has the wrong dtype."""


class BindError(XGraphError, ValueError):
    """Binding a graph failed: a missing or surplus input, gradient or state."""


class DeviceError(XGraphError, RuntimeError):
    """A requested device (``xgraph.gpu(3)``) does not exist."""


class ArtifactError(XGraphError, ValueError):
    """A compiled artifact is corrupt, tampered with, or incompatible."""


class PassError(XGraphError, RuntimeError):
    """An optimization pass produced an invalid graph."""


class MissingDependencyError(XGraphError, ImportError):
    """An optional package a feature needs is not installed; the message names the pip extra."""


class ConfigError(XGraphError, ValueError):
    """A training component (optimizer, schedule, initializer, metric) was configured wrongly:
    an unknown name, a bad hyper-parameter value or an unexpected keyword."""


class ParallelError(XGraphError, ValueError):
    """Data- or model-parallel configuration does not fit: a batch not divisible by the device count,
    meshes that do not match, a sharding spec naming an unknown mesh axis or splitting a dimension unevenly."""


class DistributedError(XGraphError, RuntimeError):
    """Multi-process training failed: the coordinator is unreachable, settings are missing or
    inconsistent, or another worker stopped answering."""


__all__ = [
    "XGraphError", "GraphFormatError", "UnsupportedOperatorError", "AttributeValueError",
    "SymbolError", "ShapeError", "DTypeError", "BindError", "DeviceError", "ArtifactError", "PassError",
    "MissingDependencyError", "ConfigError", "ParallelError", "DistributedError", "UnsupportedFeatureError",
    "NotImplementedForSymbol",
]


class NotImplementedForSymbol(XGraphError, NotImplementedError):
    """An NDArray-only function was called on a Symbol (MXNet's ``mxnet.base.NotImplementedForSymbol``)."""

    def __init__(self, function: object, alias: str | None = None, *args: object):
        name = getattr(function, "__name__", str(function))
        self.function, self.alias, self.args = name, alias, args
        super().__init__(f"Function {name}{f' (namely operator {alias!r})' if alias else ''} "
                         "is not supported for Symbol and only available in NDArray.")


class UnsupportedFeatureError(XGraphError, NotImplementedError):
    """An MXNet feature xgraph deliberately does not offer (sparse storage, GPU-only operators...);
    the message names the MXNet API and what to use instead."""
