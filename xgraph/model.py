"""MXNet checkpoints: ``prefix-symbol.json`` plus ``prefix-%04d.params`` with ``arg:``/``aux:`` keys.

``mx.model.load_checkpoint`` / ``save_checkpoint`` / ``load_params``, as in MXNet 1.x.

    >>> import os, tempfile, xgraph as mx
    >>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc')
    >>> prefix = os.path.join(tempfile.mkdtemp(), 'net')
    >>> mx.model.save_checkpoint(prefix, 3, net, {'fc_weight': mx.nd.ones((2, 4)), 'fc_bias': mx.nd.zeros((2,))}, {})
    >>> sym, args, auxs = mx.model.load_checkpoint(prefix, 3)
    >>> sym.list_arguments(), sorted(args), auxs
    (['data', 'fc_weight', 'fc_bias'], ['fc_bias', 'fc_weight'], {})
"""
from __future__ import annotations

from typing import Any, Mapping

from . import ndarray as nd
from .errors import GraphFormatError
from .graph import Entry, Graph, Node
from .io.atomic import atomic_write_text
from .io.symbol_json import to_json
from .util import is_np_shape
from .symbol import Symbol
from .symbol import load as _load_symbol

#: the cast operators that ``remove_amp_cast`` drops from a saved symbol, as MXNet does
AMP_CAST_OPS = ("amp_cast", "amp_multicast")


def _params_name(prefix: str, epoch: int) -> str:
    return "%s-%04d.params" % (prefix, epoch)


def strip_amp_cast(symbol: Symbol) -> Symbol:
    """The symbol with every ``amp_cast``/``amp_multicast`` node bypassed (their inputs used directly).

        >>> import xgraph as mx
        >>> s = mx.sym.var('a') + 1
        >>> strip_amp_cast(s).tojson() == s.tojson()
        True
    """
    mapped: dict[int, Node] = {}

    def resolve(e: Entry) -> Entry:
        while e.node.op is not None and e.node.op.name in AMP_CAST_OPS:
            e = e.node.inputs[0] if e.node.op.name == "amp_cast" else e.node.inputs[e.index]
        return Entry(mapped[id(e.node)], e.index)

    changed = False
    for n in symbol.graph.topo_order():
        if n.op is not None and n.op.name in AMP_CAST_OPS:
            changed = True
            continue
        inputs = tuple(resolve(e) for e in n.inputs)
        same = all(a.node is b.node and a.index == b.index for a, b in zip(inputs, n.inputs))
        mapped[id(n)] = n if same else n.replace(inputs=inputs)
    if not changed:
        return symbol
    return Symbol([resolve(e) for e in symbol.entries])


def save_checkpoint(prefix: str, epoch: int, symbol: Symbol | None, arg_params: Mapping[str, Any],
                    aux_params: Mapping[str, Any], remove_amp_cast: bool = True) -> None:
    """Write ``prefix-symbol.json`` (unless ``symbol`` is None) and ``prefix-%04d.params``.

    Parameters are saved under ``arg:NAME`` and ``aux:NAME`` keys; both files are
    written atomically.

        >>> import os, tempfile, xgraph as mx
        >>> prefix = os.path.join(tempfile.mkdtemp(), 'm')
        >>> mx.model.save_checkpoint(prefix, 0, mx.sym.var('x'), {}, {}); sorted(os.listdir(os.path.dirname(prefix)))
        ['m-0000.params', 'm-symbol.json']
    """
    if symbol is not None:
        sym = strip_amp_cast(symbol) if remove_amp_cast else symbol
        atomic_write_text(f"{prefix}-symbol.json", to_json(Graph(sym.entries), np_shape=is_np_shape()))
    save_dict = {f"arg:{k}": v for k, v in arg_params.items()}
    save_dict.update({f"aux:{k}": v for k, v in aux_params.items()})
    nd.save(_params_name(prefix, epoch), save_dict)


def load_params(prefix: str, epoch: int) -> tuple[dict[str, nd.NDArray], dict[str, nd.NDArray]]:
    """``(arg_params, aux_params)`` from ``prefix-%04d.params``.

    Every key must start with ``arg:`` or ``aux:``; anything else raises
    :class:`GraphFormatError`.

        >>> import os, tempfile, xgraph as mx
        >>> prefix = os.path.join(tempfile.mkdtemp(), 'm')
        >>> mx.nd.save(prefix + '-0001.params', {'aux:mean': mx.nd.zeros((3,))})
        >>> args, auxs = mx.model.load_params(prefix, 1); list(auxs)
        ['mean']
    """
    fname = _params_name(prefix, epoch)
    loaded = nd.load(fname)
    arg_params: dict[str, nd.NDArray] = {}
    aux_params: dict[str, nd.NDArray] = {}
    if isinstance(loaded, list):
        if loaded:
            raise GraphFormatError(f"params file {fname!r} holds {len(loaded)} unnamed arrays; a checkpoint "
                                   "needs names of the form 'arg:NAME' or 'aux:NAME'")
        return arg_params, aux_params
    for key, value in loaded.items():
        kind, sep, name = key.partition(":")
        if not sep or kind not in ("arg", "aux") or not name:
            raise GraphFormatError(f"params file {fname!r}: key {key!r} is not of the form 'arg:NAME' or "
                                   "'aux:NAME', as checkpoint keys must be")
        (arg_params if kind == "arg" else aux_params)[name] = value
    return arg_params, aux_params


def load_checkpoint(prefix: str, epoch: int) -> tuple[Symbol, dict[str, nd.NDArray], dict[str, nd.NDArray]]:
    """``(symbol, arg_params, aux_params)`` from ``prefix-symbol.json`` and ``prefix-%04d.params``.

        >>> import os, tempfile, xgraph as mx
        >>> prefix = os.path.join(tempfile.mkdtemp(), 'm')
        >>> mx.model.save_checkpoint(prefix, 2, mx.sym.var('x') * 2, {}, {})
        >>> mx.model.load_checkpoint(prefix, 2)[0].list_arguments()
        ['x']
    """
    symbol = _load_symbol(f"{prefix}-symbol.json")
    arg_params, aux_params = load_params(prefix, epoch)
    return symbol, arg_params, aux_params


__all__ = ["save_checkpoint", "load_checkpoint", "load_params", "strip_amp_cast"]
