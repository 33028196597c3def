"""A pytest plugin for the conformance run: numpy's removed scalar aliases, for MXNet's tests.

MXNet 1.9.1 requires numpy < 1.24, and its unit tests still write ``np.int``,
``np.bool``, ``np.float``, ``np.object`` (aliases of the Python builtins that
numpy 1.24 removed).  xgraph runs on the newer numpy that JAX needs, so the
harness restores those aliases while the tests run.  This concerns the test
files only; xgraph itself never uses them.
"""
import builtins

import numpy as np

for _name in ("int", "bool", "float", "object", "complex", "str"):
    if _name not in np.__dict__:
        setattr(np, _name, getattr(builtins, _name))
