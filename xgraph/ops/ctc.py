"""CTCLoss (``ctc_loss``, ``_contrib_CTCLoss``, ``_contrib_ctc_loss``): connectionist temporal classification.

``data`` (seq, batch, alphabet) holds unnormalized activations (a softmax over
the alphabet is applied inside), ``label`` (batch, label_len) the target
sequences.  The output is the per-sequence loss ``-log p(label | data)``,
shape (batch,), as MXNet 1.9.1 computes it:

* ``blank_label='first'``: the blank is class 0, labels are 1 .. alphabet-1 and
  0 pads a label row; ``'last'``: the blank is class alphabet-1, labels are
  0 .. alphabet-2 and -1 pads.  A label ends at its first padding value unless
  ``use_label_lengths`` gives the lengths (input ``label_lengths``, (batch,)).
* ``use_data_lengths``: only the first ``data_lengths[b]`` steps of sequence
  ``b`` count; the rest (even NaN) get no gradient.
* A label that cannot be emitted in the steps available (too long, counting the
  blanks that separate repeated labels) gives loss 0 and gradient 0, as MXNet's
  warp-ctc kernel does.

The forward (alpha) recursion runs in log space over time with ``lax.scan`` at
static shapes (the extended label ``blank l1 blank l2 ... blank`` of length
2 * label_len + 1 per row); the gradient with respect to ``data`` is JAX's
derivative of that recursion (softmax minus the label occupancy), labels and
lengths get none.  Like MXNet the op has a second, hidden output: a training
forward computes the loss and that gradient together, and backward only scales
the gradient by the head gradient (an inference forward leaves the hidden output
zero).

    >>> import xgraph as mx
    >>> loss = mx.sym.ctc_loss(mx.sym.var('x'), mx.sym.var('y'), name='ctc')
    >>> loss.infer_shape(x=(10, 4, 6), y=(4, 3))[1], loss.list_outputs()
    ([(4,)], ['ctc_output0'])
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .attrs import Bool, Enum, attr
from .common import fail
from .reduce import accum_dtype
from .registry import Op, optional_input, register

#: The log of "impossible": finite, so that unreachable paths give exact zero gradients instead of NaN.
NEG = -1e30


def ctc_log_likelihood(log_probs: jax.Array, labels: jax.Array, label_lengths: jax.Array,
                       data_lengths: jax.Array, blank: int) -> jax.Array:
    """``log p(label_b | log_probs[:, b])`` per sequence; ``NEG`` or less where no alignment exists.

    ``log_probs`` (T, B, C) are log-softmax outputs, ``labels`` (B, L) int32 class
    indices (entries past ``label_lengths[b]`` are ignored), ``data_lengths`` (B,)
    the number of valid steps (each at least 1).

        >>> lp = jnp.log(jnp.array([[[0.5, 0.5]], [[0.5, 0.5]]]))
        >>> round(float(jnp.exp(ctc_log_likelihood(lp, jnp.array([[1]]), jnp.array([1]), jnp.array([2]), 0))[0]), 4)
        0.75
    """
    steps, batch, _ = log_probs.shape
    n = labels.shape[1]
    width = 2 * n + 1
    blanks = jnp.full_like(labels, blank)
    ext = jnp.concatenate([jnp.stack([blanks, labels], axis=2).reshape(batch, 2 * n), blanks[:, :1]], axis=1)
    # a label may be reached from the label before it (skipping the blank between) unless they repeat
    # or it is the blank itself (warp-ctc's rule); labels sit at the odd positions of ext
    no_skip = jnp.concatenate([jnp.ones((batch, 1), bool), labels[:, 1:] == labels[:, :-1]], axis=1) | (labels == blank)
    skip = jnp.concatenate([jnp.stack([jnp.zeros_like(no_skip), ~no_skip], axis=2).reshape(batch, 2 * n),
                            jnp.zeros((batch, 1), bool)], axis=1)
    emit = jnp.take_along_axis(log_probs, jnp.broadcast_to(ext[None], (steps, batch, width)), axis=2)
    neg = jnp.asarray(NEG, log_probs.dtype)
    alpha0 = jnp.where((jnp.arange(width) < 2)[None], emit[0], neg)
    skip_penalty = jnp.where(skip, 0, neg)
    live = jnp.arange(1, steps)[:, None] < data_lengths[None, :]

    def step(alpha: jax.Array, xs: tuple) -> tuple:
        e, ok = xs
        stay = alpha
        advance = jnp.pad(alpha, ((0, 0), (1, 0)), constant_values=NEG)[:, :-1]
        jump = jnp.pad(alpha, ((0, 0), (2, 0)), constant_values=NEG)[:, :-2] + skip_penalty
        top = jnp.maximum(jnp.maximum(stay, advance), jump)   # every value is finite: no NaN from exp/log
        new = top + jnp.log(jnp.exp(stay - top) + jnp.exp(advance - top) + jnp.exp(jump - top)) + e
        return jnp.where(ok[:, None], new, alpha), None

    alpha, _ = jax.lax.scan(step, alpha0, (emit[1:], live))
    last = 2 * label_lengths
    end = jnp.take_along_axis(alpha, last[:, None], axis=1)[:, 0]
    before = jnp.take_along_axis(alpha, jnp.maximum(last - 1, 0)[:, None], axis=1)[:, 0]
    return jnp.logaddexp(end, jnp.where(label_lengths > 0, before, neg))


def label_lengths_from_padding(labels: jax.Array, padding: int) -> jax.Array:
    """The length of each label row: the position of its first ``padding`` value (the row's width if none).

        >>> label_lengths_from_padding(jnp.array([[2, 3, 0], [1, 0, 2], [1, 2, 3]]), 0).tolist()
        [2, 1, 3]
    """
    is_pad = labels == padding
    return jnp.where(is_pad.any(axis=1), jnp.argmax(is_pad, axis=1), labels.shape[1]).astype(jnp.int32)


def _check_inputs(p: dict, data: Any, label: Any, lengths: dict) -> None:
    if data.ndim != 3:
        fail(f"CTCLoss: data must be 3-D (sequence_length, batch, alphabet_size), got shape {tuple(data.shape)}")
    if label.ndim != 2 or label.shape[0] != data.shape[1] or label.shape[1] < 1:
        fail(f"CTCLoss: label must be 2-D (batch, label_length >= 1) with the data's batch {data.shape[1]}, "
             f"got shape {tuple(label.shape)} for data {tuple(data.shape)}")
    if data.shape[0] < 1 or data.shape[2] < 2:
        fail(f"CTCLoss: data {tuple(data.shape)} needs at least one step and an alphabet of at least 2 "
             f"(a blank and one label)")
    for name, value in lengths.items():
        if value is not None and tuple(value.shape) != (data.shape[1],):
            fail(f"CTCLoss: {name} must have shape (batch,) = ({data.shape[1]},), got {tuple(value.shape)}")


def ctc_loss(data: jax.Array, label: jax.Array, data_lengths: jax.Array | None = None,
             label_lengths: jax.Array | None = None, blank_label: str = "first") -> jax.Array:
    """MXNet's CTC loss per sequence, (batch,), from activations ``data`` (seq, batch, alphabet).

        >>> x = jnp.zeros((2, 1, 2))   # two steps, uniform over {blank, 1}
        >>> round(float(ctc_loss(x, jnp.array([[1.0]]))[0]), 4)   # -log(3/4)
        0.2877
    """
    steps, batch, alphabet = data.shape
    acc = jnp.promote_types(accum_dtype(data.dtype), jnp.float32)
    t_len = jnp.full((batch,), steps, jnp.int32) if data_lengths is None else \
        jnp.clip(data_lengths.astype(jnp.int32), 1, steps)
    valid = jnp.arange(steps)[:, None] < t_len[None, :]
    x = jnp.where(valid[:, :, None], data.astype(acc), 0)   # steps past a length (NaN allowed) give no gradient
    log_probs = jax.nn.log_softmax(x, axis=2)
    blank = 0 if blank_label == "first" else alphabet - 1
    labels = jnp.clip(label.astype(jnp.int32), 0, alphabet - 1)
    if label_lengths is None:
        l_len = label_lengths_from_padding(label.astype(jnp.int32), 0 if blank_label == "first" else -1)
    else:
        l_len = jnp.clip(label_lengths.astype(jnp.int32), 0, label.shape[1])
    loglik = ctc_log_likelihood(log_probs, labels, l_len, t_len, blank)
    return jnp.where(loglik > NEG / 2, -loglik, 0).astype(data.dtype)


def _no_gradient(x: jax.Array) -> Any:
    """The zero cotangent of an input that gets no gradient (float0 for an integer one)."""
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)


def _ctc_lower(ctx: Any, p: dict, data: jax.Array, label: jax.Array, *lengths: jax.Array) -> tuple:
    def split(lens: tuple) -> tuple:
        rest = list(lens)
        return (rest.pop(0) if p["use_data_lengths"] else None, rest.pop(0) if p["use_label_lengths"] else None)

    d_len, l_len = split(lengths)
    _check_inputs(p, data, label, {"data_lengths": d_len, "label_lengths": l_len})
    if not ctx.is_train:   # the hidden gradient output is backward's workspace: inference leaves it empty
        return ctc_loss(data, label, d_len, l_len, p["blank_label"]), jnp.zeros_like(data)

    def loss_and_grad(d: jax.Array, lab: jax.Array, *lens: jax.Array) -> tuple:
        def total(x: jax.Array) -> tuple:
            loss = ctc_loss(x, lab, *split(lens), p["blank_label"])
            return loss.astype(jnp.promote_types(loss.dtype, jnp.float32)).sum(), loss
        grad, loss = jax.grad(total, has_aux=True)(d)
        return loss, grad

    # as MXNet: the training forward computes the loss and its gradient together; backward scales the
    # gradient by the head gradient (the hidden output's head gradient is ignored)
    ctc = jax.custom_vjp(loss_and_grad)

    def fwd(d: jax.Array, lab: jax.Array, *lens: jax.Array) -> tuple:
        out = loss_and_grad(d, lab, *lens)
        return out, (out[1], lab, lens)

    def bwd(res: tuple, cts: tuple) -> tuple:
        grad, lab, lens = res
        head = cts[0].astype(grad.dtype)[None, :, None]
        return (grad * head, _no_gradient(lab), *(_no_gradient(n) for n in lens))

    ctc.defvjp(fwd, bwd)
    loss, grad = ctc(data, label, *lengths)
    return loss, jax.lax.stop_gradient(grad)


def _ctc_infer(p: dict, shapes: list) -> list:
    data = shapes[0]
    batch = (data[1],) if data is not None and len(data) == 3 and data[1] > 0 else None
    return [shapes[0], shapes[1]] + [s if s is not None else batch for s in shapes[2:]]


def _ctc_dtype(p: dict, dtypes: list) -> tuple:
    """Labels and lengths take the data's dtype when unknown; an unknown data dtype is not taken from them
    (integer labels leave float32 data float32)."""
    data = dtypes[0]
    return [data] + [d if d is not None else data for d in dtypes[1:]], None


register(Op(
    "CTCLoss", _ctc_lower, aliases=("ctc_loss", "_contrib_CTCLoss", "_contrib_ctc_loss"),
    inputs=("data", "label",
            optional_input("data_lengths", lambda p: p["use_data_lengths"], "valid steps per sequence (batch,)"),
            optional_input("label_lengths", lambda p: p["use_label_lengths"], "label length per sequence (batch,)")),
    attrs=(attr("use_data_lengths", Bool(), False, "read the valid steps of each sequence from data_lengths"),
           attr("use_label_lengths", Bool(), False,
                "read the label lengths from label_lengths (else a label ends at its first padding value)"),
           attr("blank_label", Enum(("first", "last")), "first",
                "the blank is class 0 (labels padded with 0) or the last class (labels padded with -1)")),
    num_outputs=2, num_visible_outputs=1, output_names=lambda p: ["output0"],
    infer_inputs=_ctc_infer, infer_dtype=_ctc_dtype, family="loss",
    doc="Connectionist temporal classification loss per sequence, (batch,), from activations "
        "(seq, batch, alphabet) and padded labels (batch, label_len); the gradient goes to data only."))
