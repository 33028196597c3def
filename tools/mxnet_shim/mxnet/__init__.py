"""A package named ``mxnet`` that only re-exports xgraph, for running MXNet's own unit tests
against xgraph (tools/run_mxnet_unittests.py).  It implements nothing: ``mxnet`` *is* the
``xgraph`` module, and ``mxnet.<sub>`` imports resolve to ``xgraph.<sub>``.
"""
import importlib
import importlib.abc
import importlib.util
import sys

import xgraph


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``mxnet.a.b`` to the already-importable ``xgraph.a.b`` (same module object)."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("mxnet."):
            return None
        real = "xgraph." + fullname[len("mxnet."):]
        try:
            if importlib.util.find_spec(real) is None:
                return None
        except ModuleNotFoundError:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module("xgraph." + spec.name[len("mxnet."):])

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _AliasFinder())
sys.modules[__name__] = xgraph
