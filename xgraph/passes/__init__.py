"""The optimization pipeline: passes over the Graph IR, run by a :class:`PassManager`.

Importing this package registers the built-in passes: ``dce``, ``cse``,
``fold_constants``, ``simplify`` (training-safe), ``drop_dropout``,
``fold_batchnorm``, ``batchnorm_to_scale_shift`` (inference-only), and the
opt-in ``amp``, ``remat``, ``conv_strategy`` and ``channels_last`` (see :func:`list_passes`).
See ``docs/passes.md``.

    >>> from xgraph.passes import level_pipeline
    >>> level_pipeline('O1')
    ('dce', 'cse', 'fold_constants', 'simplify')
"""
from .context import PassContext
from .manager import (INFERENCE_ONLY, LEVELS, TRAINING_SAFE, Optimized, Pass, PassManager, PassRecord, Report,
                      check_well_formed, get_pass, level_pipeline, list_passes, optimize, register_pass)
from . import dce, cse, fold_constants, simplify, inference, amp, remat, conv_strategy, layout  # noqa: F401  (register the built-in passes)

__all__ = ["PassContext", "Pass", "PassManager", "PassRecord", "Report", "Optimized", "register_pass",
           "get_pass", "list_passes", "level_pipeline", "optimize", "check_well_formed", "LEVELS",
           "TRAINING_SAFE", "INFERENCE_ONLY"]
