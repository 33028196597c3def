"""Shared pieces of the benchmark smoke tests: load a benchmark script as a module, and a stand-in
``mxnet`` package (xgraph re-exported) so a benchmark's MXNet subprocess path runs without MXNet.

    >>> import tempfile, pathlib
    >>> folder = stand_in_mxnet(pathlib.Path(tempfile.mkdtemp()))
    >>> (folder / "mxnet" / "__init__.py").exists()
    True
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_bench(name: str, register: bool = False) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (``register``: also in sys.modules, for its dataclasses)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def stand_in_mxnet(folder: Path) -> Path:
    """Write ``folder/mxnet/__init__.py`` re-exporting xgraph's model, nd and cpu; returns ``folder``
    (put it on PYTHONPATH)."""
    fake = folder / "mxnet"
    fake.mkdir(exist_ok=True)
    (fake / "__init__.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport xgraph\n"
        "from xgraph import model, nd, cpu\n__version__ = 'stand-in'\n")
    return folder
