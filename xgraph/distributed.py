"""``xgraph.distributed``: join a multi-process run and ask where this process stands, from :mod:`xgraph.parallel`.

``initialize()`` reads the coordinator address, process count and id from
its arguments or the environment (JAX's ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` or MXNet's ``DMLC_PS_ROOT_URI`` +
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_WORKER``, ``DMLC_WORKER_ID``, as
``tools/launch.py`` sets them).

    >>> import xgraph as mx
    >>> mx.distributed.num_workers(), mx.distributed.rank()
    (1, 0)
"""
from .parallel import (allreduce_host, barrier, initialize, is_initialized, num_workers, rank,  # noqa: F401
                       settings_from_env, shutdown)

__all__ = ["initialize", "is_initialized", "shutdown", "rank", "num_workers", "barrier", "allreduce_host",
           "settings_from_env"]
