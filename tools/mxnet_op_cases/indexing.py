"""Cases for indexing ops (xgraph/ops/indexing.py)."""
import mxnet as mx
import numpy as np

from . import Spec, case


@case
def batch_take_clamped(rng):
    sym = mx.sym.batch_take(mx.sym.var("a"), mx.sym.var("indices"))
    return Spec(sym, {"a": rng.standard_normal((5, 4)).astype(np.float32),
                      "indices": np.array([0, 3, -2, 7, 1], np.int32)},
                train=False, notes=["indices -2 and 7 are clamped to 0 and 3"])
