"""xgraph: a define-then-run symbolic graph compiler with an MXNet 1.x-shaped API, lowered to XLA.

``import xgraph as mx`` reads like MXNet: ``mx.sym`` builds graphs, ``mx.nd``
holds arrays, executors bind and run them.  Every graph is shape- and
type-inferred, lowered to StableHLO through JAX and compiled by XLA.

    >>> import xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc')
    >>> ex = net.simple_bind(mx.cpu(), data=(1, 3))
    >>> ex.forward()[0].shape
    (1, 2)
"""
from . import errors
from .errors import *  # noqa: F401,F403
from .base import MXNetError  # noqa: F401  (MXNet scripts catch mx.MXNetError: the same class as XGraphError)
from .dtypes import enable_x64_by_default as _enable_x64_by_default

_enable_x64_by_default()   # float64/int64 compute as in MXNet, before any array exists
from . import ops  # noqa: F401  (registers every operator)
from . import symbol, ndarray, names as name, rng  # noqa: F401
from . import symbol as sym  # noqa: F401
from . import ndarray as nd  # noqa: F401
from . import model  # noqa: F401
from .context import Context, cpu, gpu, cpu_pinned, current_context, num_gpus  # noqa: F401
from .executor import Executor  # noqa: F401
from .lower import lower  # noqa: F401
from . import passes  # noqa: F401  (registers the optimization passes)
from .compile import compile, CompiledModel  # noqa: F401
from .names import AttrScope  # noqa: F401
from .ndarray import NDArray  # noqa: F401
from .symbol import Symbol, Variable, var, Group  # noqa: F401
from . import train  # noqa: F401
from . import optimizer, lr_scheduler, metric, initializer  # noqa: F401
from . import initializer as init  # noqa: F401
from . import io, callback, mod, module  # noqa: F401  (mx.io iterators, mx.callback, mx.mod.Module)
from . import kvstore, parallel, distributed  # noqa: F401  (mx.kv, meshes and sharding, multi-process runs)
from . import kvstore as kv  # noqa: F401
from . import rnn  # noqa: F401  (mx.rnn: the symbolic RNN cells)
from . import base, util, test_utils  # noqa: F401  (mx.base, mx.util, mx.test_utils)
from .util import np_shape, use_np_shape, is_np_shape, set_np_shape  # noqa: F401
from . import operator  # noqa: F401  (mx.operator: custom operators in Python)
from . import autograd  # noqa: F401  (mx.autograd: imperative differentiation over jax.vjp)
from . import contrib  # noqa: F401  (mx.contrib.ndarray / .symbol: the contrib op namespaces)

__version__ = "0.1.0"


class _Random:
    """``mx.random``: ``seed(n)`` seeds the keys every execution draws its randomness from;
    ``uniform``, ``normal``, ``randint`` ... draw NDArrays (``mx.nd.random``).

        >>> import xgraph as mx
        >>> mx.random.seed(1); a = mx.random.uniform(shape=(2,)).asnumpy()
        >>> mx.random.seed(1); bool((a == mx.random.uniform(shape=(2,)).asnumpy()).all())
        True
    """

    seed = staticmethod(rng.seed)

    def __getattr__(self, item: str):
        return getattr(ndarray.random, item)


random = _Random()

from .cache import set_cache_dir, init_from_env as _init_cache_from_env  # noqa: E402
from .export import export, load_artifact  # noqa: E402,F401

_init_cache_from_env()
