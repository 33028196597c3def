"""SVMOutput: a support-vector-machine loss head with MXNet 1.9.1's L1/L2 hinge gradients.

The forward pass is the identity.  The backward pass ignores the head gradient
(as every loss head does) and gives the gradient of the one-vs-all hinge loss
with respect to the data, viewed as (rows, classes) with the classes on the
last axis and one label per row (MXNet's ``svm_output.cc``): with ``m`` the
margin, ``c`` the regularization coefficient and ``y = +1`` for the labelled
class and ``-1`` for the others,

* L1 (``use_linear=True``): ``-y * c * (m > y * x)``
* L2 (default):             ``-2 * y * c * max(m - y * x, 0)``

The label gets no gradient.

    >>> import xgraph as mx
    >>> out = mx.sym.SVMOutput(mx.sym.var('x'), name='svm')
    >>> out.list_arguments(), out.infer_shape(x=(4, 10))[0]
    (['x', 'svm_label'], [(4, 10), (4,)])
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .attrs import Bool, Float, attr
from .common import fail, loss_head
from .registry import Op, register


def _svm_label_shape(data_shape: tuple | None) -> tuple | None:
    """One label per row: the data's shape without its last (class) axis."""
    return None if data_shape is None or len(data_shape) < 2 else tuple(data_shape[:-1])


def _svm_infer(p, shapes):
    data, label = shapes
    return [data, _svm_label_shape(data) if label is None else label]


def svm_grad(x: jax.Array, label: jax.Array, margin: float, coef: float, linear: bool) -> jax.Array:
    """MXNet's SVMOutput gradient for data ``x`` (..., classes) and integer-valued labels ``label`` (...).

        >>> svm_grad(jnp.array([[0.5, -2.0]]), jnp.array([0.0]), 1.0, 1.0, True).tolist()
        [[-1.0, 0.0]]
    """
    onehot = jax.nn.one_hot(label.astype(jnp.int32), x.shape[-1], dtype=x.dtype)
    y = 2 * onehot - 1                     # +1 for the labelled class, -1 for the others
    slack = jnp.asarray(margin, x.dtype) - y * x
    hinge = (slack > 0).astype(x.dtype) if linear else 2 * jnp.maximum(slack, 0)
    return -y * hinge * jnp.asarray(coef, x.dtype)


def _svm_lower(ctx, p, data, label):
    expected = _svm_label_shape(tuple(data.shape))
    if expected is None or label.size != data.size // data.shape[-1]:
        fail(f"SVMOutput needs data of at least 2 dimensions (..., classes) and one label per row: "
             f"label has shape {tuple(label.shape)}, expected {expected}")
    margin, coef, linear = p["margin"], p["regularization_coefficient"], p["use_linear"]

    def data_grad(x, lab, _ct):   # MXNet ignores the head gradient of a loss output
        return svm_grad(x, lab.reshape(x.shape[:-1]), margin, coef, linear)

    return loss_head(lambda x: x, data_grad)(data, label)


register(Op(
    "SVMOutput", _svm_lower, inputs=("data", "label"),
    attrs=(attr("margin", Float(), 1.0, "the hinge's margin"),
           attr("regularization_coefficient", Float(), 1.0, "scale of the gradient"),
           attr("use_linear", Bool(), False, "L1-SVM (linear hinge) instead of L2-SVM (squared hinge)")),
    infer_inputs=_svm_infer, family="loss",
    doc="Identity forward; MXNet's one-vs-all L2-SVM (or L1 with use_linear) hinge gradient backward, "
        "the classes on the last axis and one label per row (the label gets no gradient)."))
