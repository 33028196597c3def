"""Cases for softmin (xgraph/ops/nn.py, beside softmax)."""
import mxnet as mx
import numpy as np

from . import Spec, case


@case
def softmin_axes_temperature(rng):
    x = mx.sym.var("data")
    outs = [mx.sym.softmin(x), mx.sym.softmin(x, axis=1, temperature=2.5)]
    return Spec(mx.sym.Group(outs), {"data": rng.standard_normal((2, 3, 5)).astype(np.float32)})
