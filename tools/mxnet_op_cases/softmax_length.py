"""Cases for softmax's length masking (use_length=True, xgraph/ops/nn.py)."""
import mxnet as mx
import numpy as np

from . import Spec, case


@case
def softmax_use_length(rng):
    """Lengths 0 (all zeros) to the full axis, over the last axis and axis 1, with a temperature."""
    x, n1, n2 = mx.sym.var("data"), mx.sym.var("len_last"), mx.sym.var("len_axis1")
    outs = [mx.sym.softmax(x, n1, axis=-1, use_length=True),
            mx.sym.softmax(x, n2, axis=1, use_length=True),
            mx.sym.softmax(x, n1, axis=-1, use_length=True, temperature=2.0)]
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    return Spec(mx.sym.Group(outs), {"data": data,
                                     "len_last": np.array([[1, 2, 4], [0, 3, 4]], np.int32),
                                     "len_axis1": np.array([[1, 2, 3, 0], [2, 3, 3, 1]], np.int32)},
                no_grad=["len_last", "len_axis1"],
                notes=["lengths above the axis size are left out: MXNet reads past the row there"])
