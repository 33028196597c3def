"""``xgraph.compile``: optimize a symbol through the pass pipeline, lower it, run it.

    >>> import numpy as np, xgraph as mx
    >>> x = mx.sym.var('x')
    >>> model = mx.compile((x + x) * 1.0, opt_level=1, x=(2,))
    >>> [n.name for n in model.graph.topo_order()]
    ['x', '_plus0']
    >>> model(x=np.array([1, 2], np.float32))[0].tolist()
    [2.0, 4.0]
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from .errors import BindError
from .graph import Graph
from .lower import Executable, Lowered
from .passes.manager import Pass, PassManager, Report


class CompiledModel:
    """An optimized, lowered graph: ``.graph``, ``.symbol``, ``.report``, ``.lowered``; call it to run.

    Calling takes the graph's remaining inputs by name; bound ``params`` given
    to :func:`compile` and the values passes derived from them (``.new_params``)
    are fed automatically.  Passing a value for a parameter that an
    inference rewrite folded away raises :class:`BindError` (recompile with
    the new values instead).
    """

    def __init__(self, graph: Graph, report: Report, lowered: Lowered, params: Mapping[str, Any],
                 new_params: Mapping[str, Any], original_inputs: Sequence[str]):
        self.graph = graph
        self.report = report
        self.lowered = lowered
        self.params = dict(params)
        self.new_params = dict(new_params)
        self._inputs = set(lowered.arg_names) | set(lowered.aux_names)
        self._folded = set(original_inputs) - self._inputs
        self._executable: Executable | None = None
        self._device: dict[str, tuple[Any, jax.Array]] = {}

    @property
    def symbol(self) -> Any:
        """The optimized graph as a :class:`~xgraph.symbol.Symbol`."""
        from .symbol import Symbol
        return Symbol(self.graph.outputs)

    @property
    def input_names(self) -> list[str]:
        """Inputs a call must give (those without a bound value)."""
        bound = set(self.params) | set(self.new_params)
        return [n for n in self.lowered.arg_names + self.lowered.aux_names if n not in bound]

    def compile(self) -> Executable:
        """The XLA executable (compiled once, on first use)."""
        if self._executable is None:
            self._executable = self.lowered.compile()
        return self._executable

    def __call__(self, key: Any = None, **inputs: Any) -> list[jax.Array]:
        folded = sorted(set(inputs) & self._folded)
        if folded:
            raise BindError(f"input(s) {', '.join(folded)} were folded into the compiled graph; "
                            f"compile again with their new values as params=")
        unknown = sorted(set(inputs) - self._inputs)
        if unknown:
            raise BindError(f"unknown input(s) {', '.join(unknown)}; the model takes "
                            f"{', '.join(self.lowered.arg_names + self.lowered.aux_names)}")
        feed = self._bound_on_device()
        feed.update(inputs)
        return self.compile()(key=key, **feed)

    def _bound_on_device(self) -> dict[str, Any]:
        """The bound values as device arrays, transferred once (again only for values replaced since)."""
        feed = {}
        for name, value in {**self.params, **self.new_params}.items():
            if name not in self._inputs:
                continue
            cached = self._device.get(name)
            if cached is None or cached[0] is not value:
                cached = self._device[name] = (value, jax.device_put(value))
            feed[name] = cached[1]
        return feed

    def __repr__(self) -> str:
        return f"<CompiledModel {len(self.graph)} nodes, inputs {self.input_names}>"


def compile(sym: Any, opt_level: int | str = 1, passes: Sequence[str | Pass] | None = None,
            dump_dir: str | os.PathLike | None = None, verify: bool = False,
            params: Mapping[str, Any] | None = None, for_training: bool = False,
            dtypes: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
            **input_shapes: Any) -> CompiledModel:
    """Optimize ``sym`` (a Symbol or Graph) at ``opt_level`` (or through ``passes``) and lower it.

    ``params`` are bound values (name -> array) of arguments and auxiliary
    states: their shapes need not be repeated, inference-only passes may fold
    them (not when ``for_training``), and calls feed them automatically.
    With ``dump_dir`` the graph after each pass, the final StableHLO and XLA's
    optimized HLO are written there; ``verify`` checks every pass.

        >>> import xgraph as mx
        >>> m = mx.compile(mx.sym.var('a') * 1.0, a=(3,))
        >>> print(m.report.records[-1].name)
        simplify
    """
    graph = sym if isinstance(sym, Graph) else sym.graph
    bound = {k: np.asarray(v) for k, v in (params or {}).items()}
    shapes = {k: tuple(v.shape) for k, v in bound.items()}
    shapes.update({k: tuple(v) for k, v in input_shapes.items()})
    all_dtypes = {k: v.dtype for k, v in bound.items()}
    all_dtypes.update(dtypes or {})
    pm = PassManager(passes if passes is not None else opt_level, verify=verify, dump_dir=dump_dir)
    res = pm.run(graph, shapes, all_dtypes, for_training=for_training, params=bound, options=options,
                 default_dtype=np.float32)
    new_shapes = dict(shapes)
    new_shapes.update({k: tuple(v.shape) for k, v in res.new_params.items()})
    new_dtypes = dict(all_dtypes)
    new_dtypes.update({k: v.dtype for k, v in res.new_params.items()})
    lowered = Lowered(res.graph, new_shapes, new_dtypes, is_train=for_training)
    pm.dump_lowered(lowered, res.report)
    original = [n.name for n in graph.variables()]
    return CompiledModel(res.graph, res.report, lowered, bound, res.new_params, original)
