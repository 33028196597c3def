"""MXNet's deprecated Python operators (``mx.operator.PythonOp``, ``NumpyOp``, ``NDArrayOp``).

Before ``CustomOp``, MXNet 0.x/1.x scripts subclassed :class:`NumpyOp` (forward
and backward on numpy arrays) or :class:`NDArrayOp` (on NDArrays) and called
``op.get_symbol(data, name=...)``.  Here each instance registers, on first use,
a :class:`~xgraph.operator.CustomOpProp` that forwards to the instance's
methods, and ``get_symbol`` returns a ``Custom`` node of it: the same host
callback machinery as ``mx.operator.CustomOp``, no second implementation.  As
in MXNet the registration lives in this process only (a saved symbol refers to
it by its generated ``op_type``).

    >>> import warnings, xgraph as mx
    >>> class Double(mx.operator.NumpyOp):
    ...     def forward(self, in_data, out_data):
    ...         out_data[0][:] = 2 * in_data[0]
    ...     def backward(self, out_grad, in_data, out_data, in_grad):
    ...         in_grad[0][:] = 2 * out_grad[0]
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter('ignore')
    ...     op = Double()
    >>> mx.nd.Custom(mx.nd.array([1, 2]), op_type=op.op_type).asnumpy().tolist()
    [2.0, 4.0]
"""
from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from .operator import CustomOp, CustomOpProp, _install, _PropKernel

__all__ = ["PythonOp", "NumpyOp", "NDArrayOp"]

_ids = itertools.count()


class PythonOp:
    """The base of MXNet's deprecated Python operators: override the methods, call :meth:`get_symbol`.

    ``forward(in_data, out_data)`` and ``backward(out_grad, in_data, out_data,
    in_grad)`` write their results into ``out_data`` / ``in_grad`` in place;
    ``infer_shape(in_shape)`` returns ``(input shapes, output shapes)``.
    ``need_top_grad=False`` marks a loss whose backward ignores the output gradient.

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter('ignore')
        ...     PythonOp().infer_shape([[3]])
        ([[3]], [[3]])
    """

    _host_arrays = False   # NumpyOp: the methods see numpy arrays; NDArrayOp: NDArrays

    def __init__(self, need_top_grad: bool = True):
        warnings.warn(f"{type(self).__name__} ({PythonOp.__name__}) is deprecated in MXNet; use "
                      f"mx.operator.CustomOp and CustomOpProp", DeprecationWarning, stacklevel=2)
        self.need_top_grad_ = need_top_grad
        self._op_type: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.get_symbol(*args, **kwargs)

    def get_symbol(self, *args: Any, **kwargs: Any) -> Any:
        """A symbol applying this operator to ``args`` (``name=`` names the node)."""
        from . import symbol
        return symbol.Custom(*args, op_type=self.op_type, **kwargs)

    @property
    def op_type(self) -> str:
        """The ``Custom`` op_type this instance is registered as (registered on first use)."""
        if self._op_type is None:
            self._op_type = f"_{type(self).__name__}_{next(_ids)}"
            instance, name = self, self._op_type
            _install(name, lambda kwargs: _PropKernel(name, _LegacyProp(instance)))
        return self._op_type

    def forward(self, in_data: list, out_data: list) -> None:
        """By default the identity: ``out_data[0][:] = in_data[0]``."""
        out_data[0][:] = in_data[0]

    def backward(self, out_grad: list, in_data: list, out_data: list, in_grad: list) -> None:
        """By default ``in_grad[0][:] = 1.0``, as MXNet's."""
        in_grad[0][:] = 1.0

    def infer_shape(self, in_shape: list) -> tuple:
        """(input shapes, output shapes): by default one output shaped as the first input."""
        return in_shape, [in_shape[0]]

    def list_outputs(self) -> list[str]:
        """The output names."""
        return ["output"]

    def list_arguments(self) -> list[str]:
        """The argument names."""
        return ["data"]

    def need_top_grad(self) -> bool:
        """Whether backward reads the output gradient."""
        return self.need_top_grad_

    def declare_backward_dependency(self, out_grad: list[int], in_data: list[int], out_data: list[int]) -> list[int]:
        """The ids of the blobs backward reads (all of them, less the output gradient without need_top_grad)."""
        deps = list(out_grad) if self.need_top_grad() else []
        return deps + list(in_data) + list(out_data)


class NumpyOp(PythonOp):
    """A :class:`PythonOp` whose ``forward``/``backward`` receive numpy arrays (MXNet's ``NumpyOp``)."""

    _host_arrays = True


class NDArrayOp(PythonOp):
    """A :class:`PythonOp` whose ``forward``/``backward`` receive NDArrays (MXNet's ``NDArrayOp``).

    ``declare_backward_dependency`` may be overridden as in MXNet.
    """


class _LegacyProp(CustomOpProp):
    """The CustomOpProp of one PythonOp instance."""

    def __init__(self, op: PythonOp):
        super().__init__(need_top_grad=op.need_top_grad())
        self.op = op

    def list_arguments(self) -> list[str]:
        return list(self.op.list_arguments())

    def list_outputs(self) -> list[str]:
        return list(self.op.list_outputs())

    def infer_shape(self, in_shape: list) -> tuple:
        ins, outs = self.op.infer_shape(in_shape)[:2]
        return ins, outs, []

    def declare_backward_dependency(self, out_grad: list[int], in_data: list[int], out_data: list[int]) -> list[int]:
        return self.op.declare_backward_dependency(out_grad, in_data, out_data)

    def create_operator(self, ctx: Any, in_shapes: list, in_dtypes: list) -> CustomOp:
        return _LegacyOp(self.op)


class _LegacyOp(CustomOp):
    """Runs a PythonOp's forward/backward on fresh buffers, then assigns them as the request says."""

    def __init__(self, op: PythonOp):
        super().__init__()
        self.op = op

    def _views(self, arrays: list) -> list:
        return [a.asnumpy() for a in arrays] if self.op._host_arrays else list(arrays)

    def _buffers(self, like: list) -> list:
        if self.op._host_arrays:
            return [np.zeros(a.shape, a.dtype) for a in like]
        from .ndarray import zeros
        return [zeros(a.shape, dtype=a.dtype) for a in like]

    def forward(self, is_train: bool, req: list[str], in_data: list, out_data: list, aux: list) -> None:
        outs = self._buffers(out_data)
        self.op.forward(in_data=self._views(in_data), out_data=outs)
        for dst, r, src in zip(out_data, req, outs):
            self.assign(dst, r, src)

    def backward(self, req: list[str], out_grad: list, in_data: list, out_data: list, in_grad: list,
                 aux: list) -> None:
        grads = self._buffers(in_grad)
        self.op.backward(out_grad=self._views(out_grad), in_data=self._views(in_data),
                         out_data=self._views(out_data), in_grad=grads)
        for dst, r, src in zip(in_grad, req, grads):
            self.assign(dst, r, src)
