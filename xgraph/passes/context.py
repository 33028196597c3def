"""What a pass may know besides the graph: shapes, dtypes, bound parameter values, options.

A :class:`PassContext` is made once per pipeline run and handed to every pass
that takes a second argument.  Passes that compute new parameter values
(folding a BatchNorm into a convolution's weight) do not overwrite the user's
parameters: they add new variables through :meth:`PassContext.new_variable`,
whose values the context keeps in :attr:`PassContext.new_params`, so the
optimized graph is fed ``params`` plus ``new_params``.

    >>> import numpy as np
    >>> from xgraph.passes.context import PassContext
    >>> ctx = PassContext(shapes={'x': (2, 3)}, params={'w': np.ones((4, 3), np.float32)})
    >>> ctx.all_shapes()['w']
    (4, 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .. import dtypes as _dt
from ..graph import Entry, Graph, Node
from ..infer import InferResult, infer
from ..names import unique_name

#: Default limit on the elements of a value that constant folding materialises.
DEFAULT_SIZE_LIMIT = 1 << 20


@dataclass
class PassContext:
    """Shapes, dtypes and parameter values known while a pipeline runs.

    ``params`` are bound values (name -> array) of variables; passes read them
    only when ``for_training`` is False (training changes them).
    ``options`` hold switches of individual passes, e.g. ``unsafe_math``
    (let ``simplify`` rewrite ``x - x`` to zeros, wrong for inf and NaN) or
    ``size_limit`` (the largest constant, in elements, folding materialises).
    ``notes`` collects what each pass says it changed.  ``default_dtype`` is
    what shape inference evaluates variables of unknown dtype with (float32,
    as lowering does); their dtypes and those computed from them still
    count as unknown, so dtype-sensitive rewrites do not fire on a guess.
    """

    shapes: dict[str, Any] = field(default_factory=dict)
    dtypes: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    for_training: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    new_params: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    default_dtype: Any = np.float32
    #: names of bound parameters some pass read through :meth:`value_of` (an executor watches
    #: these and re-optimizes when their values change)
    read: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.shapes = {k: (None if v is None else tuple(int(d) for d in v)) for k, v in dict(self.shapes).items()}
        self.dtypes = {k: _dt.canonical(v) for k, v in dict(self.dtypes).items()}
        self.params = {k: np.asarray(v) for k, v in dict(self.params or {}).items()}

    @classmethod
    def from_infer_result(cls, res: InferResult, **kwargs: Any) -> "PassContext":
        """A context whose variable shapes and dtypes come from an earlier inference."""
        shapes = {k: v for k, v in res.var_shapes.items() if v is not None}
        dtypes = {k: v for k, v in res.var_dtypes.items() if v is not None}
        return cls(shapes=shapes, dtypes=dtypes, **kwargs)

    @property
    def size_limit(self) -> int:
        """The largest value, in elements, a pass may materialise (default 1M)."""
        return int(self.options.get("size_limit", DEFAULT_SIZE_LIMIT))

    def value_of(self, name: str, record: bool = True) -> np.ndarray | None:
        """A bound parameter's value, or None (always None while optimizing for training).

        Unless ``record`` is False (a pass only looks at the shape), the name
        goes to :attr:`read`: the result of the pass depends on that value.
        """
        if self.for_training:
            return None
        if name in self.new_params:
            return self.new_params[name]
        if record and name in self.params:
            self.read.add(name)
        return self.params.get(name)

    def all_shapes(self) -> dict[str, Any]:
        """Variable shapes: the given ones, then those of bound and new parameter values."""
        out = dict(self.shapes)
        for table in (self.params, self.new_params):
            for k, v in table.items():
                out.setdefault(k, tuple(v.shape))
        return out

    def all_dtypes(self) -> dict[str, Any]:
        """Variable dtypes: the given ones, then those of bound and new parameter values."""
        out = dict(self.dtypes)
        for table in (self.params, self.new_params):
            for k, v in table.items():
                out.setdefault(k, v.dtype)
        return out

    def infer(self, graph: Graph) -> InferResult:
        """Shape and dtype inference of ``graph`` with everything this context knows."""
        return infer(graph, self.all_shapes(), self.all_dtypes(), partial=True, default_dtype=self.default_dtype)

    def new_variable(self, base: str, value: Any, taken: set[str] | None = None) -> Entry:
        """A new variable holding ``value`` (kept in :attr:`new_params`); returns its entry.

        The name is ``base``, made unique against ``taken``, the bound
        parameters and earlier new variables.
        """
        arr = np.asarray(value)
        name = unique_name(base, lambda n: n in self.new_params or n in self.params or n in self.shapes
                           or bool(taken and n in taken))
        self.new_params[name] = arr
        if taken is not None:
            taken.add(name)
        attrs = {"__shape__": str(tuple(int(d) for d in arr.shape)), "__dtype__": str(_dt.to_mx(arr.dtype))}
        return Entry(Node(None, name, user_attrs=attrs), 0)

    def note(self, text: str) -> None:
        """Say what the running pass changed (shown in the report)."""
        self.notes.append(text)


def coerce_context(shapes: Any = None, dtypes: Mapping[str, Any] | None = None, **kwargs: Any) -> PassContext:
    """A :class:`PassContext` from shapes (a dict or an :class:`InferResult`) and dtypes."""
    if isinstance(shapes, PassContext):
        return shapes
    if isinstance(shapes, InferResult):
        ctx = PassContext.from_infer_result(shapes, **kwargs)
        ctx.dtypes.update({k: _dt.canonical(v) for k, v in (dtypes or {}).items()})
        return ctx
    return PassContext(shapes=dict(shapes or {}), dtypes=dict(dtypes or {}), **kwargs)
