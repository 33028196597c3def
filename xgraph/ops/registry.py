"""The operator registry: one declaration per operator, looked up by name or alias.

An :class:`Op` declares everything xgraph needs to know about an operator in
one place: MXNet's name and aliases, the inputs (optional ones and auxiliary,
mutated ones), a typed attribute schema, the rule that deduces parameter shapes
from the data shape, and the lowering (a pure function of JAX arrays).  Output
shapes and dtypes are never declared: inference evaluates the lowering
abstractly.

    >>> from xgraph.ops import registry
    >>> registry.get('FullyConnected').input_names({'no_bias': True, 'num_hidden': 4, 'flatten': True})
    ['data', 'weight']
    >>> registry.get('_Plus').name
    'elemwise_add'
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import jax

from ..errors import AttributeValueError, UnsupportedOperatorError
from .attrs import AttrSpec, spec_table

Shape = Optional[tuple]  # None when unknown; a dimension of 0 is unknown too (MXNet's convention)

#: Attributes that MXNet stores hidden, as ``__key__`` (``AttrScope(ctx_group=...)``).
HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage", "profiler_scope")


@dataclass(frozen=True)
class InputSpec:
    """One named input of an operator; ``present`` decides, from the attributes, if it exists."""

    name: str
    present: Callable[[Mapping[str, Any]], bool] | None = None
    doc: str = ""


def optional_input(name: str, present: Callable[[Mapping[str, Any]], bool], doc: str = "") -> InputSpec:
    """An input that exists only for some attribute values (``bias`` unless ``no_bias``)."""
    return InputSpec(name, present, doc)


class LowerCtx:
    """What a lowering may know besides its inputs: training mode and randomness.

    ``rng()`` gives a PRNG key that depends on the step key and the node's
    name, so two random ops never share a stream and a rerun is reproducible.
    """

    __slots__ = ("is_train", "key", "node_name")

    def __init__(self, is_train: bool, key: Any, node_name: str):
        self.is_train = is_train
        self.key = key
        self.node_name = node_name

    def rng(self) -> jax.Array:
        """A PRNG key for this node."""
        if self.key is None:
            raise RuntimeError(f"node '{self.node_name}' needs a random key but none was given")
        return jax.random.fold_in(self.key, zlib.crc32(self.node_name.encode()) & 0x7FFFFFFF)


def _const(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    return lambda params: value


@dataclass(eq=False)
class Op:
    """An operator: its MXNet name, inputs, attribute schema, shape rule and lowering.

    ``lower(ctx, params, *inputs)`` returns one array or a tuple of arrays; an op
    with auxiliary inputs returns ``(outputs, new_aux_values)``.
    ``infer_inputs(params, shapes)`` fills in the shapes of inputs (usually
    parameters) it can deduce from the known ones and returns the list.
    ``infer_backward(params, in_shapes, out_shapes)`` deduces input shapes
    from known output shapes (MXNet's shape inference runs both ways: an
    elementwise op's output fixes its inputs, FullyConnected's output fixes
    the batch size of its data); unknown ones stay None or 0.
    ``partial_needs_full`` lists inputs whose shape must be complete before
    partial inference says anything about the outputs (MXNet's ``where``: the
    condition decides whether rows or elements are selected).
    ``partial_shapes(params, in_shapes)`` gives the output shapes (0 for an
    unknown dimension) when some input dimensions are unknown, for an op whose
    lowering cannot be traced with symbolic dimensions (``slice``: an end index
    on an unknown axis); None falls back to the symbolic evaluation.
    ``complete_attrs(params, out_shapes)`` is for an op with no inputs whose
    attributes leave output dimensions open (MXNet's deferred creation:
    ``ones(shape=(-1, -1))``, ``arange(infer_range=True)``): its
    ``partial_shapes(params, [])`` gives the open shape, and once inference has
    learnt the full output shapes from the consumers, ``complete_attrs`` returns
    the attribute changes that produce them (:func:`xgraph.infer.resolve_deferred`).
    ``infer_dtype(params, dtypes)`` returns (input dtypes with the unknown ones
    filled in, output dtypes or None); without it unknown inputs take the dtype
    of the known ones, and outputs come from abstract evaluation.
    ``same_dtype`` makes inference refuse inputs of different dtypes (MXNet's
    binary arithmetic does; JAX would silently promote).
    For an op whose signature user code decides at graph-build time (``Custom``):
    ``dynamic_inputs(params)`` gives the input names instead of ``inputs``,
    ``aux`` may be a function of the attributes too, and ``open_attrs`` keeps
    attributes outside the schema as strings instead of refusing them.
    ``positional`` is the order in which positional values after the inputs
    fill attributes (MXNet's generated functions take ``reshape(data, shape,
    reverse, ...)``): by default the order of ``attrs``; set it only for an op
    whose ``attrs`` are declared in another order than MXNet's parameters.
    ``unnamed_inputs`` marks an op whose MXNet definition names no inputs, so
    MXNet's monitor calls them ``input0``, ``input1`` (Activation).
    ``eager(params, *values)`` is for an op whose output shapes depend on its
    input values (``boolean_mask``): given concrete input arrays it returns a
    function of those inputs with every shape fixed (differentiable by JAX),
    which ``mx.nd`` runs and records for autograd instead of a compiled graph;
    the op's lowering refuses to be part of a symbol graph.
    ``variant()`` names a process-wide choice the lowering depends on (the oneDNN CPU kind the int8
    kernels reproduce, ops/mkldnn.py); the graph's hashes, under which programs are cached, include it.
    """

    name: str
    lower: Callable[..., Any]
    inputs: Sequence[InputSpec | str] = ("data",)
    attrs: Sequence[AttrSpec] = ()
    aliases: Sequence[str] = ()
    aux: Sequence[str] | Callable[[Mapping[str, Any]], Sequence[str]] = ()
    num_outputs: Callable[[Mapping[str, Any]], int] | int = 1
    num_visible_outputs: Callable[[Mapping[str, Any]], int] | int | None = None
    output_names: Callable[[Mapping[str, Any]], list[str]] | None = None
    infer_inputs: Callable[[Mapping[str, Any], list[Shape]], list[Shape]] | None = None
    infer_dtype: Callable[[Mapping[str, Any], list[Any]], tuple[list[Any], list[Any] | None]] | None = None
    infer_backward: Callable[[Mapping[str, Any], list[Shape], list[Shape]], list[Shape]] | None = None
    partial_needs_full: Sequence[int] = ()
    partial_shapes: Callable[[Mapping[str, Any], list[Shape]], list[Shape] | None] | None = None
    complete_attrs: Callable[[Mapping[str, Any], list[Shape]], Mapping[str, Any]] | None = None
    dynamic_inputs: Callable[[Mapping[str, Any]], Sequence[str]] | None = None
    open_attrs: bool = False
    positional: Sequence[str] | None = None
    eager: Callable[..., Callable[..., tuple]] | None = None
    variadic: str | None = None
    variadic_if: Callable[[Mapping[str, Any]], bool] | None = None
    input_init: Mapping[str, str] | Callable[[Mapping[str, Any]], Mapping[str, str]] = field(default_factory=dict)
    random: bool | Callable[[Mapping[str, Any]], bool] = False
    stateful: bool = False
    same_dtype: bool = False
    unnamed_inputs: bool = False
    differentiable: bool = True
    doc: str = ""
    family: str = ""
    variant: Callable[[], str] | None = None
    schema: dict[str, AttrSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.schema = spec_table(self.attrs)
        self.inputs = tuple(InputSpec(i) if isinstance(i, str) else i for i in self.inputs)
        if isinstance(self.num_outputs, int):
            self.num_outputs = _const(self.num_outputs)
        if self.num_visible_outputs is None:
            self.num_visible_outputs = self.num_outputs
        elif isinstance(self.num_visible_outputs, int):
            self.num_visible_outputs = _const(self.num_visible_outputs)
        if self.positional is not None:
            unknown = [n for n in self.positional if n not in self.schema]
            if unknown:
                raise ValueError(f"op {self.name}: positional names {unknown} are not attributes")
        if self.output_names is None:
            n_vis = self.num_visible_outputs
            self.output_names = lambda p: ["output"] if n_vis(p) == 1 else [f"output{i}" for i in range(n_vis(p))]

    # -- inputs ---------------------------------------------------------
    def is_variadic(self, params: Mapping[str, Any]) -> bool:
        """Whether the inputs are ``arg0 .. arg{n-1}`` (n from the ``variadic`` attribute) here.

        ``variadic_if`` makes it depend on the attributes (UpSampling: variadic for
        nearest, ``data`` and ``weight`` for bilinear).
        """
        return self.variadic is not None and (self.variadic_if is None or self.variadic_if(params))

    def input_names(self, params: Mapping[str, Any]) -> list[str]:
        """The names of the inputs this op takes for these attributes, in order."""
        if self.dynamic_inputs is not None:
            return list(self.dynamic_inputs(params))
        if self.is_variadic(params):
            return [f"arg{i}" for i in range(int(params[self.variadic]))]
        return [s.name for s in self.inputs if s.present is None or s.present(params)]

    def monitor_input_names(self, params: Mapping[str, Any]) -> list[str]:
        """The input names MXNet's monitor shows (``input0``... where MXNet's op names none)."""
        names = self.input_names(params)
        return [f"input{i}" for i in range(len(names))] if self.unnamed_inputs else names

    def init_hints(self, params: Mapping[str, Any]) -> Mapping[str, str]:
        """``__init__`` strings for inputs created automatically (BatchNorm's moving_var: ones)."""
        return self.input_init(params) if callable(self.input_init) else self.input_init

    def aux_positions(self, params: Mapping[str, Any]) -> frozenset[int]:
        """Positions of the auxiliary (mutated) inputs for these attributes."""
        if not self.aux:
            return frozenset()
        aux = set(self.aux(params) if callable(self.aux) else self.aux)
        return frozenset(i for i, n in enumerate(self.input_names(params)) if n in aux)

    def is_random(self, params: Mapping[str, Any]) -> bool:
        """Whether a node with these attributes draws random numbers (``random`` may depend on them)."""
        return bool(self.random(params)) if callable(self.random) else bool(self.random)

    # -- attributes -------------------------------------------------------
    def with_defaults(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The given attributes over the schema's defaults."""
        out = {k: s.default for k, s in self.schema.items() if not s.required}
        out.update(attrs)
        return out

    def parse_attrs(self, raw: Mapping[str, Any], node_name: str) -> tuple[dict, dict, dict]:
        """Split and parse attributes into (typed op attributes, user attributes, raw strings).

        Keys of the form ``__key__`` (and MXNet's hidden keys such as
        ``ctx_group``) are user attributes and stay strings; every other key
        must be in the schema.  A bad or missing value raises
        :class:`AttributeValueError` naming the node, the op and the attribute.
        """
        typed: dict[str, Any] = {}
        user: dict[str, str] = {}
        strings: dict[str, str] = {}
        for key, value in raw.items():
            if key.startswith("__") and key.endswith("__") and len(key) > 4:
                user[key] = str(value)
                continue
            if key in HIDDEN_KEYS:
                user[f"__{key}__"] = str(value)
                continue
            spec = self.schema.get(key)
            if spec is None and self.open_attrs:
                typed[key] = strings[key] = str(value)
                continue
            if spec is None:
                known = ", ".join(sorted(self.schema)) or "none"
                raise AttributeValueError(
                    f"node '{node_name}' (op {self.name}): unknown attribute '{key}'; "
                    f"the attributes of {self.name} are: {known}")
            try:
                typed[key] = spec.kind.parse(value)
            except (ValueError, TypeError) as exc:
                raise AttributeValueError(
                    f"node '{node_name}' (op {self.name}): attribute '{key}' = {value!r} is invalid: "
                    f"expected {spec.kind.describe()} ({exc})") from None
            if isinstance(value, str):
                strings[key] = value
        missing = [k for k, s in self.schema.items() if s.required and k not in typed]
        if missing:
            raise AttributeValueError(
                f"node '{node_name}' (op {self.name}): required attribute(s) {', '.join(missing)} "
                f"not given ({'; '.join(k + ': ' + self.schema[k].kind.describe() for k in missing)})")
        return typed, user, strings

    def positional_attrs(self) -> list[str]:
        """The attributes that positional values after the inputs fill, in order (MXNet's parameter order)."""
        if self.positional is not None:
            return list(self.positional)
        return [a.name for a in self.attrs]

    def signature(self) -> str:
        """The op's call signature as MXNet's generated functions have it: inputs, then attributes.

            >>> get('repeat').signature()
            'repeat(data, repeats, axis=None)'
        """
        if self.dynamic_inputs is not None:
            ins = ["*inputs"]
        elif self.variadic is not None and self.variadic_if is None:
            ins = ["*data"]
        else:
            ins = [s.name for s in self.inputs]
        pos = self.positional_attrs()
        rest = [a for a in self.schema if a not in pos]
        parts = ins + [n if self.schema[n].required else f"{n}={self.schema[n].default!r}" for n in pos + rest]
        return f"{self.name}({', '.join(parts)})"

    def format_attr(self, key: str, value: Any) -> str:
        """Write one typed attribute value as MXNet writes it (an open attribute is its string)."""
        spec = self.schema.get(key)
        return str(value) if spec is None and self.open_attrs else self.schema[key].kind.format(value)

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


_REGISTRY: dict[str, Op] = {}
_ALIASES: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add an operator to the registry under its name and aliases."""
    for n in (op.name, *op.aliases):
        if n in _ALIASES and _ALIASES[n] is not op:
            raise ValueError(f"operator name {n!r} registered twice")
        _ALIASES[n] = op
    _REGISTRY[op.name] = op
    return op


def get(name: str) -> Op:
    """The operator registered under ``name`` (its MXNet name or an alias).

    Raises :class:`UnsupportedOperatorError` for unknown names.
    """
    try:
        return _ALIASES[name]
    except KeyError:
        raise UnsupportedOperatorError(f"unknown operator '{name}'", (name,)) from None


def exists(name: str) -> bool:
    """Whether ``name`` is a registered operator name or alias."""
    return name in _ALIASES


def all_ops() -> list[Op]:
    """Every registered operator, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def all_names() -> dict[str, Op]:
    """Every name and alias, mapped to its operator."""
    return dict(_ALIASES)
