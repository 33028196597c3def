"""The operator library: one file per family, all registered in :mod:`.registry`.

Importing this package registers every operator (one import per family, for the side effect).

    >>> from xgraph.ops import registry
    >>> registry.exists('Convolution') and registry.exists('FullyConnected')
    True
"""
# flake8: noqa: F401
from . import registry
from . import amp
from . import broadcast
from . import constant
from . import contrib
from . import custom
from . import deformable
from . import detection
from . import elemwise
from . import indexing
from . import linalg
from . import loss
from . import nn
from . import norm
from . import proposal
from . import psroi
from . import quantization
from . import quantized
from . import random
from . import reduce
from . import rnn
from . import roi
from . import sampling
from . import sequence
from . import shape
from . import svm
from . import image
from . import patches
from . import compare
from . import dynamic
from . import attention
from . import mkldnn
from . import ctc
