"""Loss heads and gradient control: SoftmaxOutput, the regression outputs (Linear, Logistic, MAE),
smooth_l1, softmax_cross_entropy, MakeLoss, BlockGrad.

Where MXNet's gradient is not the derivative of the forward output, the op
says so with a custom VJP: SoftmaxOutput's gradient is
``(softmax(x) - one_hot(label)) * grad_scale / norm`` whatever the head
gradient (times it with ``out_grad``); MakeLoss passes ``grad_scale / norm`` down; the regression outputs
pass ``d(out, label) * grad_scale / num_output`` down, where ``num_output`` is
the label's size per example (MXNet's ``regression_output-inl.h``).

    >>> import xgraph as mx
    >>> out = mx.sym.SoftmaxOutput(mx.sym.var('x'), name='softmax')
    >>> out.list_arguments(), out.list_outputs()
    (['x', 'softmax_label'], ['softmax_output'])
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .attrs import Bool, Enum, Float, attr
from .common import fail, loss_head
from .registry import Op, register

_NORMALIZATION = Enum(("null", "batch", "valid"))


# -- SoftmaxOutput ----------------------------------------------------------------
def _softmax_label_shape(p, data_shape):
    if data_shape is None:
        return None
    if p["multi_output"]:
        return (data_shape[0],) + tuple(data_shape[2:])
    if p["preserve_shape"]:
        return tuple(data_shape[:-1])
    return (data_shape[0],)


def _softmax_output_infer(p, shapes):
    out = list(shapes)
    if out[1] is None:
        out[1] = _softmax_label_shape(p, shapes[0])
    return out


def _multi_output_labels(data_shape: tuple) -> tuple:
    """The label shapes MXNet takes with multi_output: (N, prod(rest)), (N, *rest), (N, 1, *rest)."""
    n, rest = data_shape[0], tuple(data_shape[2:])
    return (n,) + rest, (n, int(np.prod(rest, dtype=np.int64))), (n, 1) + rest


def _softmax_output_lower(ctx, p, data, label):
    """MXNet's ``softmax_output-inl.h``: class labels, or probabilities when the label has the data's shape.

    The gradient is ``(softmax - one_hot(label)) * scale`` (``softmax - label`` for
    probabilities), times the head gradient only with ``out_grad``.  ``scale`` is
    ``grad_scale`` divided by the normalization count: 1 (null), the label's element
    count (batch; with multi_output the batch size) or the count of labels other than
    ``ignore_label`` (valid); multi_output also divides null and batch by the spatial size.
    Probability labels are never normalized.
    """
    multi, preserve = p["multi_output"], p["preserve_shape"]
    grad_scale, ignore_label, out_grad = p["grad_scale"], p["ignore_label"], p["out_grad"]
    use_ignore, norm_kind, alpha = p["use_ignore"], p["normalization"], p["smooth_alpha"]
    probabilities = tuple(label.shape) == tuple(data.shape)
    if multi:
        axis, x = 1, data
    elif preserve:
        axis, x = -1, data
    else:
        axis, x = -1, data.reshape(data.shape[0], -1)
    if probabilities:
        lab = label
    elif multi:
        accepted = _multi_output_labels(tuple(data.shape))
        if tuple(label.shape) not in accepted:
            fail(f"label has shape {tuple(label.shape)}, expected one of {', '.join(map(str, accepted))} "
                 f"or the data's shape {tuple(data.shape)}")
        lab = label.reshape(accepted[0])
    else:
        expected = _softmax_label_shape(p, tuple(data.shape))
        if tuple(label.shape) != expected:
            fail(f"label has shape {tuple(label.shape)}, expected {expected} "
                 f"or the data's shape {tuple(data.shape)}")
        lab = label
    num_classes = x.shape[axis]
    spatial = int(np.prod(x.shape[2:], dtype=np.int64)) if multi else 1

    def forward(x):
        return jax.nn.softmax(x.astype(jnp.float32) if x.dtype in (jnp.float16, jnp.bfloat16) else x,
                              axis=axis).astype(x.dtype)

    def class_grad(out, lab):
        idx = lab.astype(jnp.int32)
        onehot = jax.nn.one_hot(idx, num_classes, axis=axis, dtype=out.dtype)
        if alpha:
            onehot = onehot * (1 - alpha) + (1 - onehot) * (alpha / max(num_classes - 1, 1))
        grad = out - onehot
        valid = idx != int(ignore_label)
        if use_ignore:
            grad = grad * jnp.expand_dims(valid, axis).astype(grad.dtype)
        if norm_kind == "batch":
            count = jnp.asarray(lab.shape[0] if multi else lab.size, grad.dtype)
        elif norm_kind == "valid":
            count = jnp.maximum(jnp.sum(valid).astype(grad.dtype), 1)
        else:
            count = jnp.asarray(1, grad.dtype)
        return grad * (grad_scale / (1 if norm_kind == "valid" else spatial) / count)

    def data_grad(out, lab, ct):
        grad = (out - lab) * jnp.asarray(grad_scale, out.dtype) if probabilities else class_grad(out, lab)
        return grad * ct.astype(grad.dtype) if out_grad else grad

    head = loss_head(forward, data_grad)
    return head(x, lab.reshape(x.shape) if probabilities else lab).reshape(data.shape)


register(Op(
    "SoftmaxOutput", _softmax_output_lower, inputs=("data", "label"), aliases=("Softmax",),
    attrs=(attr("grad_scale", Float(), 1.0, "scale of the gradient"),
           attr("ignore_label", Float(), -1.0, "the label value ignored when use_ignore"),
           attr("multi_output", Bool(), False, "softmax over axis 1 of (N, C, ...) data"),
           attr("use_ignore", Bool(), False, "give rows with ignore_label a zero gradient"),
           attr("preserve_shape", Bool(), False, "softmax over the last axis, keeping the shape"),
           attr("normalization", _NORMALIZATION, "null", "divide the gradient by 1, the batch size, or "
                                                          "the count of valid labels"),
           attr("out_grad", Bool(), False, "multiply the gradient by the head gradient"),
           attr("smooth_alpha", Float(), 0.0, "label smoothing")),
    infer_inputs=_softmax_output_infer, family="loss",
    doc="Softmax in the forward pass; MXNet's cross-entropy gradient in the backward pass."))


# -- MakeLoss ----------------------------------------------------------------------
def _make_loss_lower(ctx, p, data):
    grad_scale, norm_kind, thresh = p["grad_scale"], p["normalization"], p["valid_thresh"]

    @jax.custom_vjp
    def loss(x):
        return x

    def loss_fwd(x):
        return x, x

    def loss_bwd(x, _ct):
        if norm_kind == "batch":
            norm = x.shape[0] if x.ndim else 1
            g = jnp.full(x.shape, grad_scale / norm, x.dtype)
        elif norm_kind == "valid":
            cnt = jnp.maximum(jnp.sum(x > thresh), 1).astype(x.dtype)
            g = jnp.full(x.shape, grad_scale, x.dtype) / cnt
        else:
            g = jnp.full(x.shape, grad_scale, x.dtype)
        return (g,)

    loss.defvjp(loss_fwd, loss_bwd)
    return loss(data)


register(Op(
    "MakeLoss", _make_loss_lower, aliases=("make_loss",),
    attrs=(attr("grad_scale", Float(), 1.0, "the gradient passed down"),
           attr("valid_thresh", Float(), 0.0, "for normalization='valid': count elements above this"),
           attr("normalization", _NORMALIZATION, "null", "divide the gradient by 1, the batch size, or "
                                                          "the count of valid elements")),
    family="loss", doc="Marks its input as a loss: identity forward, grad_scale/norm backward."))


# -- BlockGrad ---------------------------------------------------------------------
register(Op(
    "BlockGrad", lambda ctx, p, x: jax.lax.stop_gradient(x), aliases=("stop_gradient",),
    family="loss", differentiable=False, doc="Identity forward; no gradient flows through it."))



# -- regression outputs --------------------------------------------------------------
def regression_label_shape(data_shape: tuple | None) -> tuple | None:
    """MXNet's default label shape: (N,) for (N, 1) data, else the data's shape.

        >>> regression_label_shape((4, 1)), regression_label_shape((4, 3))
        ((4,), (4, 3))
    """
    if data_shape is None:
        return None
    if len(data_shape) == 2 and data_shape[1] == 1:
        return (data_shape[0],)
    return tuple(data_shape)


def _regression_infer(p, shapes):
    data, label = shapes
    return [data, regression_label_shape(data) if label is None else label]


#: name -> (forward, d(out, label) before scaling, doc)
REGRESSIONS: dict[str, tuple[Any, Any, str]] = {
    "LinearRegressionOutput": (lambda x: x, lambda out, lab: out - lab,
                               "Identity forward; gradient (out - label) * grad_scale / num_output."),
    "LogisticRegressionOutput": (jax.nn.sigmoid, lambda out, lab: out - lab,
                                 "Sigmoid forward; gradient (out - label) * grad_scale / num_output."),
    "MAERegressionOutput": (lambda x: x, lambda out, lab: jnp.sign(out - lab),
                            "Identity forward; gradient sign(out - label) * grad_scale / num_output."),
}


def _regression_lowering(forward: Any, backward: Any) -> Any:
    def lower(ctx, p, data, label):
        if data.ndim == 0 or label.ndim == 0 or label.shape[0] != data.shape[0] or label.size != data.size:
            fail(f"label has shape {tuple(label.shape)}, expected {regression_label_shape(tuple(data.shape))} "
                 f"(the data's batch size and element count)")
        scale = p["grad_scale"] / (label.size / label.shape[0])

        def data_grad(out, lab, _ct):   # MXNet ignores the head gradient of a loss output
            grad = backward(out, lab.reshape(out.shape).astype(out.dtype)) * jnp.asarray(scale, out.dtype)
            return grad.astype(out.dtype)

        return loss_head(forward, data_grad)(data, label)
    return lower


for _name, (_fwd, _bwd, _doc) in REGRESSIONS.items():
    register(Op(_name, _regression_lowering(_fwd, _bwd), inputs=("data", "label"),
                attrs=(attr("grad_scale", Float(), 1.0, "scale of the gradient"),),
                infer_inputs=_regression_infer, family="loss", doc=_doc))


# -- smooth_l1 / softmax_cross_entropy -------------------------------------------------
def _smooth_l1_lower(ctx, p, x):
    s2 = jnp.asarray(p["scalar"] ** 2, x.dtype)
    ax = jnp.abs(x)
    return jnp.where(ax < 1 / s2, 0.5 * s2 * x * x, ax - 0.5 / s2)


register(Op(
    "smooth_l1", _smooth_l1_lower,
    attrs=(attr("scalar", Float(), 1.0, "sigma: the quadratic zone is |x| < 1/sigma^2"),),
    family="loss", doc="0.5*(sigma*x)^2 where |x| < 1/sigma^2, else |x| - 0.5/sigma^2 (elementwise)."))


def _softmax_ce_infer(p, shapes):
    data, label = shapes
    return [data, (data[0],) if label is None and data is not None and len(data) == 2 else label]


def _softmax_ce_lower(ctx, p, data, label):
    if data.ndim != 2:
        fail(f"softmax_cross_entropy needs 2-D (batch, classes) data, got {tuple(data.shape)}")
    if tuple(label.shape) != (data.shape[0],):
        fail(f"label has shape {tuple(label.shape)}, expected ({data.shape[0]},)")
    acc = data.astype(jnp.float32) if data.dtype in (jnp.float16, jnp.bfloat16) else data
    logp = jax.nn.log_softmax(acc, axis=-1)
    idx = jnp.clip(jax.lax.stop_gradient(label).astype(jnp.int32), 0, data.shape[1] - 1)
    picked = jnp.take_along_axis(logp, idx[:, None], axis=1)
    return (-jnp.sum(picked)).reshape(1).astype(data.dtype)


register(Op(
    "softmax_cross_entropy", _softmax_ce_lower, inputs=("data", "label"), infer_inputs=_softmax_ce_infer,
    family="loss", doc="Sum over the batch of -log softmax(data)[label]: shape (1,); the label gets no gradient."))
