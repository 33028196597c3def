"""Training: optimizers, learning-rate schedules, initializers, metrics, data iterators,
the fused Trainer step, MXNet's Module API and callbacks.

Each is usable on its own and exposes pure jax functions (``Optimizer.pure_update``,
``LRScheduler.lr_at``, ``EvalMetric.batch_stats``) so a whole training step can be
compiled as one XLA computation.  The MXNet-shaped namespaces ``xgraph.optimizer``,
``xgraph.lr_scheduler``, ``xgraph.init`` and ``xgraph.metric`` re-export them.

    >>> from xgraph.train import optimizer, lr_scheduler, initializer, metric
    >>> type(optimizer.create('sgd')).__name__, type(metric.create('acc')).__name__
    ('SGD', 'Accuracy')
"""
from . import lr_scheduler, optimizer, initializer, metric  # noqa: F401
from . import data, callback, trainer, module  # noqa: F401
