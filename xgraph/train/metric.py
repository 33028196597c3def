"""Evaluation metrics with MXNet 1.9.1's names, defaults and accumulation semantics.

A metric keeps a local and a global ``(sum_metric, num_inst)``; ``get()``
returns ``sum_metric / num_inst`` (NaN before any update), ``reset_local()``
clears only the local pair.  Each metric's arithmetic is one pure jax function,
``batch_stats(label, pred)``, giving the statistics of one (label, prediction)
pair; ``accumulate(stats)`` folds them in on the host.  ``update(labels, preds)``
is exactly that loop, so a compiled training step can compute ``batch_stats``
on the device and hand only a few scalars back.

    >>> import numpy as np
    >>> acc = create('acc')
    >>> acc.update([np.array([0, 1, 1])], [np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])])
    >>> acc.get()
    ('accuracy', 0.6666666666666666)
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax
import numpy as _np

from ..errors import ConfigError, ShapeError
from ..ndarray import NDArray
from .registry import ClassRegistry

__all__ = ["EvalMetric", "Accuracy", "TopKAccuracy", "F1", "MCC", "Perplexity", "MAE", "MSE", "RMSE",
           "CrossEntropy", "NegativeLogLikelihood", "PearsonCorrelation", "Loss", "CompositeEvalMetric",
           "CustomMetric", "create", "register", "alias", "np", "check_label_shapes", "argmax_hits"]

_CLASSES = ClassRegistry("metric", lambda: EvalMetric)
#: Register a metric class under its lower-cased name (a decorator); see :class:`ClassRegistry`.
register = _CLASSES.register
#: Register extra names for a metric class (``@alias('acc')``).
alias = _CLASSES.alias


def create(metric: Any, *args: Any, **kwargs: Any) -> "EvalMetric":
    """A metric from a name (``'acc'``), a list of them (a composite), a callable (a custom metric) or an instance.

        >>> create(['acc', 'ce']).get()[0]
        ['accuracy', 'cross-entropy']
    """
    if isinstance(metric, EvalMetric):
        return metric
    if callable(metric):
        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, (list, tuple)):
        composite = CompositeEvalMetric()
        for child in metric:
            composite.add(create(child, *args, **kwargs))
        return composite
    klass = _CLASSES.lookup(metric)
    try:
        return klass(*args, **kwargs)
    except TypeError as e:
        raise ConfigError(f"metric {metric!r}: bad arguments: {e}") from None


def _arr(x: Any) -> jax.Array:
    return x.data if isinstance(x, NDArray) else jnp.asarray(x)


def _wrap(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def argmax_hits(label: Any, pred: Any, axis: int) -> jax.Array:
    """``jnp.argmax(pred, axis) == label`` elementwise (labels truncated to int), computed without an argmax.

    XLA's CPU argmax is a two-operand reduction that does not vectorize: over a language model's
    (700, 10000) scores it costs ~16 ms, 10% of a training step.  Here the label's score must be
    above every earlier score and not below any later one (one compare and ``any`` reduction, ~2 ms),
    with argmax's rules: the first maximum wins, a NaN counts as the maximum (the first NaN wins),
    and a label outside ``[0, pred.shape[axis])`` never matches.  ``label`` must have as many
    elements as ``pred`` without ``axis``; it is read in that shape.

        >>> argmax_hits(jnp.array([1., 0.]), jnp.array([[0.5, 0.5], [0.9, 0.1]]), 1).tolist()
        [False, True]
    """
    axis = axis % pred.ndim
    n = pred.shape[axis]
    lab = jnp.expand_dims(label.astype(jnp.int32).reshape(pred.shape[:axis] + pred.shape[axis + 1:]), axis)
    score = jnp.take_along_axis(pred, jnp.clip(lab, 0, max(n - 1, 0)), axis=axis)
    before = lax.broadcasted_iota(jnp.int32, pred.shape, axis) < lab
    if jnp.issubdtype(pred.dtype, jnp.inexact):
        nan, score_nan = jnp.isnan(pred), jnp.isnan(score)
        beats = jnp.where(before, (pred >= score) | nan, (pred > score) | (nan & ~score_nan))
    else:
        beats = jnp.where(before, pred >= score, pred > score)
    inside = (lab >= 0) & (lab < n)
    return jnp.squeeze(inside, axis) & ~jnp.any(beats, axis=axis)


def check_label_shapes(labels: Any, preds: Any, wrap: bool = False, shape: bool = False):
    """Raise ShapeError unless labels and preds agree in number (or, ``shape=True``, in shape).

        >>> check_label_shapes([1, 2], [3, 4])
        ([1, 2], [3, 4])
    """
    if not shape:
        label_shape, pred_shape = len(_wrap(labels) if wrap else labels), len(_wrap(preds) if wrap else preds)
    else:
        label_shape, pred_shape = tuple(labels.shape), tuple(preds.shape)
    if label_shape != pred_shape:
        raise ShapeError(f"Shape of labels {label_shape} does not match shape of predictions {pred_shape}")
    if wrap:
        labels, preds = _wrap(labels), _wrap(preds)
    return labels, preds


class EvalMetric:
    """Base class: local and global (sum_metric, num_inst) pairs, ``get``, ``reset``, ``update``.

    Subclasses define ``batch_stats(label, pred)``, a pure jax function of one
    label/prediction pair; by default it returns ``(sum, count)``.
    """

    #: whether ``batch_stats`` exists (a pure jax function a compiled step can call)
    has_batch_stats = True

    def __init__(self, name: str, output_names: Sequence[str] | None = None,
                 label_names: Sequence[str] | None = None, **kwargs: Any):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._kwargs = kwargs
        self.reset()

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self) -> dict:
        """The metric's configuration (``create(**config)``-style), as MXNet reports it.

            >>> Accuracy().get_config()['metric']
            'Accuracy'
        """
        config = dict(self._kwargs)
        config.update({"metric": type(self).__name__, "name": self.name,
                       "output_names": self.output_names, "label_names": self.label_names})
        return config

    def update_dict(self, label: dict, pred: dict) -> None:
        """Update from dicts of outputs/labels by name (``output_names``/``label_names`` select)."""
        preds = [pred[n] for n in self.output_names] if self.output_names is not None else list(pred.values())
        labels = [label[n] for n in self.label_names] if self.label_names is not None else list(label.values())
        self.update(labels, preds)

    def batch_stats(self, label: jax.Array, pred: jax.Array) -> Any:
        """The statistics of one label/prediction pair, a pure jax function (subclasses)."""
        raise ConfigError(f"{type(self).__name__} has no device-side batch_stats")

    def accumulate(self, stats: Any) -> None:
        """Fold :meth:`batch_stats`'s ``(sum, count)`` into the local and global totals."""
        s, n = stats
        s = float(s)
        n = int(n)
        self.sum_metric += s
        self.global_sum_metric += s
        self.num_inst += n
        self.global_num_inst += n

    def update(self, labels: Any, preds: Any) -> None:
        """Update with a list of labels and a list of predictions (one array each is fine)."""
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self.accumulate(self.batch_stats(_arr(label), _arr(pred)))

    def reset(self) -> None:
        """Clear local and global totals."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self) -> None:
        """Clear the local totals only."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def _value(self, total: float, count: int) -> float:
        return total / count

    def get(self) -> tuple[str, float]:
        """``(name, value)`` over the updates since the last reset (NaN before any)."""
        if self.num_inst == 0:
            return self.name, float("nan")
        return self.name, self._value(self.sum_metric, self.num_inst)

    def get_global(self) -> tuple[str, float]:
        """``(name, value)`` over the updates since the last full reset."""
        if self.global_num_inst == 0:
            return self.name, float("nan")
        return self.name, self._value(self.global_sum_metric, self.global_num_inst)

    def get_name_value(self) -> list[tuple[str, float]]:
        """``[(name, value), ...]`` (several pairs for composite metrics)."""
        return _pairs(*self.get())

    def get_global_name_value(self) -> list[tuple[str, float]]:
        """Like :meth:`get_name_value`, over the global totals."""
        return _pairs(*self.get_global())


def _pairs(name: Any, value: Any) -> list:
    if not isinstance(name, list):
        name, value = [name], [value]
    return list(zip(name, value))


@register
@alias("acc")
class Accuracy(EvalMetric):
    """Fraction of predictions equal to the labels; predictions of another shape than the labels
    are class scores, reduced with argmax over ``axis``.  Labels may be float class ids.

        >>> Accuracy().batch_stats(jnp.array([1., 0.]), jnp.array([[0.3, 0.7], [0.4, 0.6]]))[0].item()
        1
    """

    def __init__(self, axis: int = 1, name: str = "accuracy", output_names: Any = None, label_names: Any = None):
        super().__init__(name, axis=axis, output_names=output_names, label_names=label_names)
        self.axis = axis

    def batch_stats(self, label, pred):
        if pred.shape != label.shape:
            rows = pred.size // pred.shape[self.axis] if pred.shape[self.axis] else 0
            check_label_shapes(label.ravel(), range(rows))
            return jnp.sum(argmax_hits(label, pred, self.axis)), jnp.int32(rows)
        pred = pred.astype(jnp.int32).ravel()
        label = label.astype(jnp.int32).ravel()
        check_label_shapes(label, pred)
        return jnp.sum(pred == label), jnp.int32(pred.size)


@register
@alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the ``top_k`` highest scores (``name`` gets ``_<top_k>``).

        >>> m = TopKAccuracy(top_k=2); m.update([jnp.array([2, 2])], [jnp.array([[.1, .5, .4], [.2, .7, .1]])])
        >>> m.get()
        ('top_k_accuracy_2', 0.5)
    """

    def __init__(self, top_k: int = 1, name: str = "top_k_accuracy", output_names: Any = None,
                 label_names: Any = None):
        super().__init__(name, top_k=top_k, output_names=output_names, label_names=label_names)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"TopKAccuracy: top_k must be a positive integer, got {top_k!r}")
        self.top_k = top_k
        self.name += f"_{top_k}"

    def batch_stats(self, label, pred):
        if pred.ndim > 2:
            raise ShapeError(f"TopKAccuracy: predictions should be no more than 2 dims, got shape {pred.shape}")
        label = label.astype(jnp.int32).ravel()
        check_label_shapes(label, pred)
        if pred.ndim == 1:
            return jnp.sum(pred.astype(jnp.int32) == label), jnp.int32(pred.shape[0])
        k = min(pred.shape[1], self.top_k)
        _, idx = jax.lax.top_k(pred.astype(jnp.float32), k)
        return jnp.sum(jnp.any(idx == label[:, None], axis=1)), jnp.int32(pred.shape[0])


class _BinaryStats:
    """Confusion counts (tp, fp, fn, tn), local and global, with MXNet's derived scores."""

    def __init__(self):
        self.local = _np.zeros(4, _np.int64)
        self.glob = _np.zeros(4, _np.int64)

    def add(self, counts: Any) -> None:
        c = _np.asarray(counts, _np.int64)
        self.local += c
        self.glob += c

    @staticmethod
    def fscore(c: _np.ndarray) -> float:
        tp, fp, fn, _tn = (float(x) for x in c)
        precision = tp / (tp + fp) if tp + fp > 0 else 0.0
        recall = tp / (tp + fn) if tp + fn > 0 else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0

    @staticmethod
    def matthewscc(c: _np.ndarray) -> float:
        tp, fp, fn, tn = (float(x) for x in c)
        if tp + fp + fn + tn == 0:
            return 0.0
        denom = 1.0
        for t in (tp + fp, tp + fn, tn + fp, tn + fn):
            if t != 0.0:
                denom *= t
        return (tp * tn - fp * fn) / math.sqrt(denom)


class _Binary(EvalMetric):
    """Shared machinery of F1 and MCC (binary classification; average ``macro`` or ``micro``)."""

    _score: Callable[[_np.ndarray], float]

    def __init__(self, name: str, output_names: Any, label_names: Any, average: str):
        if average not in ("macro", "micro"):
            raise ConfigError(f"{type(self).__name__}: average must be 'macro' or 'micro', got {average!r}")
        self.average = average
        self._stats = _BinaryStats()
        super().__init__(name, output_names=output_names, label_names=label_names, average=average)

    def batch_stats(self, label, pred):
        """``[tp, fp, fn, tn]`` for predictions ``(N, 2)`` (argmax) and labels ``(N,)`` in {0, 1}."""
        label = label.astype(jnp.int32).ravel()
        check_label_shapes(label, pred)
        if not isinstance(label, jax.core.Tracer) and _np.unique(_np.asarray(label)).size > 2:
            raise ConfigError(f"{type(self).__name__} currently only supports binary classification.")
        pred_true = jnp.argmax(pred, axis=1) == 1
        label_true = label == 1
        return jnp.stack([jnp.sum(pred_true & label_true), jnp.sum(pred_true & ~label_true),
                          jnp.sum(~pred_true & label_true), jnp.sum(~pred_true & ~label_true)])

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        total = sum(_np.asarray(self.batch_stats(_arr(lb), _arr(pr))) for lb, pr in zip(labels, preds))
        self.accumulate(total)

    def accumulate(self, stats: Any) -> None:
        """Fold one update's summed confusion counts in (macro: one score per update)."""
        score = type(self)._score
        self._stats.add(stats)
        if self.average == "macro":
            self.sum_metric += score(self._stats.local)
            self.global_sum_metric += score(self._stats.glob)
            self.num_inst += 1
            self.global_num_inst += 1
            self._stats.local[:] = 0
        else:
            n_local, n_glob = int(self._stats.local.sum()), int(self._stats.glob.sum())
            self.sum_metric = score(self._stats.local) * n_local
            self.global_sum_metric = score(self._stats.glob) * n_glob
            self.num_inst = n_local
            self.global_num_inst = n_glob

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "_stats"):
            self._stats = _BinaryStats()

    def reset_local(self) -> None:
        super().reset_local()
        self._stats.local[:] = 0


@register
class F1(_Binary):
    """Binary F1 score of predictions ``(N, 2)`` against labels in {0, 1}.

        >>> m = F1(); m.update([jnp.array([1, 0, 1])], [jnp.array([[0, 1], [0, 1], [1, 0]])]); m.get()
        ('f1', 0.5)
    """

    _score = staticmethod(_BinaryStats.fscore)

    def __init__(self, name: str = "f1", output_names: Any = None, label_names: Any = None, average: str = "macro"):
        super().__init__(name, output_names, label_names, average)


@register
class MCC(_Binary):
    """Matthews correlation coefficient of binary predictions.

        >>> m = MCC(); m.update([jnp.array([1, 0])], [jnp.array([[0, 1], [1, 0]])]); m.get()
        ('mcc', 1.0)
    """

    _score = staticmethod(_BinaryStats.matthewscc)

    def __init__(self, name: str = "mcc", output_names: Any = None, label_names: Any = None, average: str = "macro"):
        super().__init__(name, output_names, label_names, average)


@register
class Perplexity(EvalMetric):
    """``exp(mean(-log p[label]))`` over all non-ignored labels; probabilities along ``axis``.

        >>> m = Perplexity(ignore_label=None); m.update([jnp.array([0, 1])], [jnp.array([[.5, .5], [.5, .5]])])
        >>> round(m.get()[1], 6)
        2.0
    """

    def __init__(self, ignore_label: int | None, axis: int = -1, name: str = "perplexity",
                 output_names: Any = None, label_names: Any = None):
        super().__init__(name, ignore_label=ignore_label, output_names=output_names, label_names=label_names)
        self.ignore_label = ignore_label
        self.axis = axis

    def batch_stats(self, label, pred):
        classes = pred.shape[self.axis]
        if label.size * classes != pred.size:
            raise ShapeError(f"Perplexity: shape mismatch: labels {label.shape} vs. predictions {pred.shape}")
        label = label.reshape(-1)
        probs = jnp.moveaxis(pred, self.axis, -1).reshape(-1, classes).astype(jnp.float32)
        picked = jnp.take_along_axis(probs, label.astype(jnp.int32)[:, None], axis=1, mode="clip")[:, 0]
        num = picked.size
        if self.ignore_label is not None:
            ignore = label == self.ignore_label
            num = num - jnp.sum(ignore)
            picked = jnp.where(ignore, 1.0, picked)
        loss = -jnp.sum(jnp.log(jnp.maximum(1e-10, picked)))
        return loss, jnp.asarray(num, jnp.int32)

    def _value(self, total: float, count: int) -> float:
        return math.exp(total / count)


class _Regression(EvalMetric):
    """MAE/MSE/RMSE: one value per label/prediction pair, averaged over pairs (as MXNet)."""

    def __init__(self, name: str, output_names: Any, label_names: Any):
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def _reduce(diff: jax.Array) -> jax.Array:
        raise NotImplementedError

    def batch_stats(self, label, pred):
        label = label.reshape(label.shape[0], 1) if label.ndim == 1 else label
        pred = pred.reshape(pred.shape[0], 1) if pred.ndim == 1 else pred
        try:
            diff = label.astype(jnp.float32) - pred.astype(jnp.float32)
        except (ValueError, TypeError):
            raise ShapeError(f"{type(self).__name__}: labels {label.shape} and predictions {pred.shape} "
                             f"do not broadcast") from None
        return self._reduce(diff), jnp.int32(1)


@register
class MAE(_Regression):
    """Mean absolute error (per batch, averaged over batches).

        >>> m = MAE(); m.update([jnp.array([1., 2.])], [jnp.array([2., 4.])]); m.get()
        ('mae', 1.5)
    """

    def __init__(self, name: str = "mae", output_names: Any = None, label_names: Any = None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def _reduce(diff):
        return jnp.mean(jnp.abs(diff))


@register
class MSE(_Regression):
    """Mean squared error (per batch, averaged over batches).

        >>> m = MSE(); m.update([jnp.array([1., 2.])], [jnp.array([2., 4.])]); m.get()
        ('mse', 2.5)
    """

    def __init__(self, name: str = "mse", output_names: Any = None, label_names: Any = None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def _reduce(diff):
        return jnp.mean(diff * diff)


@register
class RMSE(_Regression):
    """Root mean squared error (per batch, averaged over batches).

        >>> m = RMSE(); m.update([jnp.array([0., 0.])], [jnp.array([3., 4.])]); round(m.get()[1], 5)
        3.53553
    """

    def __init__(self, name: str = "rmse", output_names: Any = None, label_names: Any = None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def _reduce(diff):
        return jnp.sqrt(jnp.mean(diff * diff))


class _PickedLogLoss(EvalMetric):
    """``sum(-log(pred[i, label[i]] + eps))`` over samples, divided by the number of samples."""

    def __init__(self, eps: float, name: str, output_names: Any, label_names: Any):
        super().__init__(name, eps=eps, output_names=output_names, label_names=label_names)
        self.eps = eps

    def batch_stats(self, label, pred):
        label = label.ravel()
        if label.shape[0] != pred.shape[0]:
            raise ShapeError(f"{type(self).__name__}: {label.shape[0]} labels for {pred.shape[0]} predictions")
        prob = jnp.take_along_axis(pred.astype(jnp.float32), label.astype(jnp.int32)[:, None], axis=1)[:, 0]
        return jnp.sum(-jnp.log(prob + self.eps)), jnp.int32(label.shape[0])


@register
@alias("ce")
class CrossEntropy(_PickedLogLoss):
    """Cross entropy of probability predictions ``(N, C)`` against class labels ``(N,)``.

        >>> m = CrossEntropy(); m.update([jnp.array([1])], [jnp.array([[0.5, 0.5]])]); round(m.get()[1], 6)
        0.693147
    """

    def __init__(self, eps: float = 1e-12, name: str = "cross-entropy", output_names: Any = None,
                 label_names: Any = None):
        super().__init__(eps, name, output_names, label_names)


@register
@alias("nll_loss")
class NegativeLogLikelihood(_PickedLogLoss):
    """Negative log-likelihood of probability predictions (the same formula as CrossEntropy).

        >>> NegativeLogLikelihood().name
        'nll-loss'
    """

    def __init__(self, eps: float = 1e-12, name: str = "nll-loss", output_names: Any = None,
                 label_names: Any = None):
        super().__init__(eps, name, output_names, label_names)


@register
@alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of predictions and labels: per batch averaged (``macro``), or over all
    values seen (``micro``, from merged centred moments).

        >>> m = PearsonCorrelation(); m.update([jnp.array([1., 2., 3.])], [jnp.array([2., 4., 7.])])
        >>> round(m.get()[1], 4)
        0.9934
    """

    def __init__(self, name: str = "pearsonr", output_names: Any = None, label_names: Any = None,
                 average: str = "macro"):
        if average not in ("macro", "micro"):
            raise ConfigError(f"PearsonCorrelation: average must be 'macro' or 'micro', got {average!r}")
        self.average = average
        super().__init__(name, output_names=output_names, label_names=label_names, average=average)

    def batch_stats(self, label, pred):
        """macro: ``(r, 1)``; micro: ``(n, mean_l, mean_p, m2_l, m2_p, c_lp)`` of the batch."""
        check_label_shapes(label, pred, shape=True)
        lb = label.ravel().astype(jnp.float32)
        pr = pred.ravel().astype(jnp.float32)
        dl, dp = lb - jnp.mean(lb), pr - jnp.mean(pr)
        m2l, m2p, c = jnp.sum(dl * dl), jnp.sum(dp * dp), jnp.sum(dl * dp)
        if self.average == "macro":
            return c / jnp.sqrt(m2l * m2p), jnp.int32(1)
        return jnp.int32(lb.size), jnp.mean(lb), jnp.mean(pr), m2l, m2p, c

    def accumulate(self, stats: Any) -> None:
        """macro: add the batch's r; micro: merge the batch's moments (Chan et al.) in float64."""
        if self.average == "macro":
            super().accumulate(stats)
            return
        n_b, ml_b, mp_b, m2l_b, m2p_b, c_b = (float(x) for x in stats)
        for moments in (self._local, self._global):
            n_a, ml_a, mp_a, m2l_a, m2p_a, c_a = moments
            n = n_a + n_b
            dl, dp = ml_b - ml_a, mp_b - mp_a
            moments[:] = [n, ml_a + dl * n_b / n, mp_a + dp * n_b / n, m2l_a + m2l_b + dl * dl * n_a * n_b / n,
                          m2p_a + m2p_b + dp * dp * n_a * n_b / n, c_a + c_b + dl * dp * n_a * n_b / n]
        self.num_inst += 1
        self.global_num_inst += 1

    def reset(self) -> None:
        super().reset()
        self._local = [0.0] * 6
        self._global = [0.0] * 6

    def reset_local(self) -> None:
        super().reset_local()
        self._local = [0.0] * 6

    @staticmethod
    def _micro(moments: list) -> float:
        _n, _ml, _mp, m2l, m2p, c = moments
        return c / math.sqrt(m2l * m2p)

    def get(self) -> tuple[str, float]:
        if self.num_inst == 0 or self.average == "macro":
            return super().get()
        return self.name, self._micro(self._local)

    def get_global(self) -> tuple[str, float]:
        if self.global_num_inst == 0 or self.average == "macro":
            return super().get_global()
        return self.name, self._micro(self._global)


@register
class Loss(EvalMetric):
    """The mean of loss outputs: ``sum(pred) / pred.size`` over all updates (labels are ignored).

        >>> m = Loss(); m.update(None, [jnp.array([1., 3.])]); m.get()
        ('loss', 2.0)
    """

    def __init__(self, name: str = "loss", output_names: Any = None, label_names: Any = None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def batch_stats(self, label, pred):
        return jnp.sum(pred.astype(jnp.float32)), jnp.int32(pred.size)

    def update(self, _: Any, preds: Any) -> None:
        for pred in _wrap(preds):
            self.accumulate(self.batch_stats(None, _arr(pred)))


@register
@alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns lists of names and values.

        >>> c = CompositeEvalMetric([Accuracy(), MAE()]); c.get()[0]
        ['accuracy', 'mae']
    """

    def __init__(self, metrics: Sequence[Any] | None = None, name: str = "composite",
                 output_names: Any = None, label_names: Any = None):
        super().__init__(name, output_names=output_names, label_names=label_names)
        self.metrics = [create(m) for m in (metrics or [])]

    @property
    def has_batch_stats(self) -> bool:  # type: ignore[override]
        return all(m.has_batch_stats and not isinstance(m, _Binary) for m in self.metrics)

    def add(self, metric: Any) -> None:
        """Add a child metric (an instance or anything :func:`create` accepts)."""
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        """The child metric at ``index``."""
        try:
            return self.metrics[index]
        except IndexError:
            raise ConfigError(f"metric index {index} is out of range: there are {len(self.metrics)} metrics") from None

    def update_dict(self, labels: dict, preds: dict) -> None:
        if self.label_names is not None:
            labels = {n: v for n, v in labels.items() if n in self.label_names}
        if self.output_names is not None:
            preds = {n: v for n, v in preds.items() if n in self.output_names}
        for m in self.metrics:
            m.update_dict(labels, preds)

    def batch_stats(self, label, pred):
        return tuple(m.batch_stats(label, pred) for m in self.metrics)

    def accumulate(self, stats: Any) -> None:
        for m, s in zip(self.metrics, stats):
            m.accumulate(s)

    def update(self, labels: Any, preds: Any) -> None:
        for m in self.metrics:
            m.update(labels, preds)

    def reset(self) -> None:
        for m in getattr(self, "metrics", []):
            m.reset()

    def reset_local(self) -> None:
        for m in self.metrics:
            m.reset_local()

    def _collect(self, getter: str) -> tuple[list, list]:
        names, values = [], []
        for m in self.metrics:
            name, value = getattr(m, getter)()
            names.extend(name if isinstance(name, list) else [name])
            values.extend(value if isinstance(value, list) else [value])
        return names, values

    def get(self) -> tuple[list, list]:  # type: ignore[override]
        return self._collect("get")

    def get_global(self) -> tuple[list, list]:  # type: ignore[override]
        return self._collect("get_global")

    def get_config(self) -> dict:
        config = super().get_config()
        config["metrics"] = [m.get_config() for m in self.metrics]
        return config


@register
class CustomMetric(EvalMetric):
    """A metric from a Python function ``feval(label, pred) -> value`` or ``-> (sum, count)`` on numpy arrays.

        >>> m = CustomMetric(lambda l, p: float((l == p).mean()), name='same')
        >>> m.update([_np.array([1, 2])], [_np.array([1, 3])]); m.get()
        ('same', 0.5)
    """

    has_batch_stats = False

    def __init__(self, feval: Callable, name: str | None = None, allow_extra_outputs: bool = False,
                 output_names: Any = None, label_names: Any = None):
        if not callable(feval):
            raise ConfigError(f"CustomMetric needs a callable, got {feval!r}")
        if name is None:
            name = feval.__name__
            if "<" in name:
                name = f"custom({name})"
        super().__init__(name, feval=feval, allow_extra_outputs=allow_extra_outputs,
                         output_names=output_names, label_names=label_names)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels: Any, preds: Any) -> None:
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        for pred, label in zip(_wrap(preds), _wrap(labels)):
            reval = self._feval(_np.asarray(_arr(label)), _np.asarray(_arr(pred)))
            if isinstance(reval, tuple):
                self.accumulate(reval)
            else:
                self.accumulate((reval, 1))

    def get_config(self) -> dict:
        raise ConfigError("CustomMetric cannot be serialized")


def np(numpy_feval: Callable, name: str | None = None, allow_extra_outputs: bool = False) -> CustomMetric:
    """A :class:`CustomMetric` from a function of numpy arrays (MXNet's ``mx.metric.np``).

        >>> np(lambda l, p: 1.0, name='one').name
        'one'
    """
    def feval(label, pred):
        return numpy_feval(label, pred)
    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)
