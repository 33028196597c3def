"""MXNet's names for the pieces of RNN weights: per-gate matrices of a cell's stacked weight, and
every per-layer, per-direction, per-gate matrix and bias inside the fused ``RNN`` operator's flat
parameter vector.

The fused vector's layout itself is :class:`xgraph.ops.rnn.RNNGeometry` (the operator's own rule);
this module only names its pieces the way ``mx.rnn.FusedRNNCell.unpack_weights`` does
(``l0_i2h_i_weight``, ``r1_h2h_o_bias`` ...), so checkpoints move between fused and unfused cells.

    >>> pieces = fused_pieces('gru', num_hidden=2, num_layers=1, bidirectional=False, input_size=3)
    >>> [(name, idx.shape) for name, idx in pieces][:2]
    [('l0_i2h_r_weight', (2, 3)), ('l0_i2h_z_weight', (2, 3))]
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from ..errors import AttributeValueError, ShapeError, SymbolError
from ..ndarray import NDArray
from ..ops.rnn import GATES, RNNGeometry

#: the gate suffixes of each mode, in the order the gates are stacked in a weight
GATE_NAMES: dict[str, tuple[str, ...]] = {"rnn_relu": ("",), "rnn_tanh": ("",),
                                          "lstm": ("_i", "_f", "_c", "_o"), "gru": ("_r", "_z", "_o")}
assert set(GATE_NAMES) == set(GATES) and all(len(GATE_NAMES[m]) == GATES[m] for m in GATES)

#: the direction letters of the unfused cells' prefixes (``l0_``, ``r0_``)
DIRECTIONS = ("l", "r")


def check_mode(mode: Any, what: str) -> str:
    """``mode`` if it is one of the RNN operator's modes, else an error naming ``what``.

        >>> check_mode('lstm', 'FusedRNNCell')
        'lstm'
    """
    if mode not in GATE_NAMES:
        raise AttributeValueError(f"{what}: unknown mode {mode!r}; expected one of {', '.join(GATE_NAMES)}")
    return mode


def geometry(mode: str, num_hidden: int, num_layers: int, bidirectional: bool, input_size: int) -> RNNGeometry:
    """The fused operator's geometry for a cell configuration.

        >>> geometry('lstm', 2, 1, False, 3).param_size()
        56
    """
    return RNNGeometry.of({"mode": mode, "state_size": num_hidden, "num_layers": num_layers,
                           "bidirectional": bool(bidirectional), "projection_size": None}, input_size)


def fused_input_size(size: int, mode: str, num_hidden: int, num_layers: int, bidirectional: bool,
                     what: str = "FusedRNNCell") -> int:
    """The data's feature size that gives a fused parameter vector of ``size`` elements.

    The vector's length is linear in the input size (only layer 0's ``W_i2h`` depends on it).

        >>> fused_input_size(56, 'lstm', 2, 1, False)
        3
    """
    base = geometry(mode, num_hidden, num_layers, bidirectional, 0).param_size()
    per_input = (2 if bidirectional else 1) * GATES[mode] * num_hidden
    extra = size - base
    if extra <= 0 or extra % per_input:
        raise ShapeError(f"{what}: a parameter vector of {size} elements does not fit mode={mode!r}, "
                         f"num_hidden={num_hidden}, num_layers={num_layers}, bidirectional={bool(bidirectional)} "
                         f"(it must be {base} + {per_input} * input_size)")
    return extra // per_input


def fused_pieces(mode: str, num_hidden: int, num_layers: int, bidirectional: bool, input_size: int,
                 prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """``(name, indices)`` of every per-gate piece of the fused vector, ``indices`` shaped like the piece.

    The pieces come from :meth:`RNNGeometry.unpack` applied to the positions ``0 .. size-1``, so
    the layout is the operator's own and cannot drift from it.

        >>> [n for n, _ in fused_pieces('rnn_tanh', 1, 1, True, 1)]  # doctest: +NORMALIZE_WHITESPACE
        ['l0_i2h_weight', 'l0_h2h_weight', 'r0_i2h_weight', 'r0_h2h_weight',
         'l0_i2h_bias', 'l0_h2h_bias', 'r0_i2h_bias', 'r0_h2h_bias']
    """
    geo = geometry(mode, num_hidden, num_layers, bidirectional, input_size)
    blocks = geo.unpack(np.arange(geo.param_size()))  # [layer][direction] = (W_i2h, W_h2h, b_i2h, b_h2h)
    gates = GATE_NAMES[mode]
    weights, biases = [], []
    for layer, per_dir in enumerate(blocks):
        for d, (w_i2h, w_h2h, b_i2h, b_h2h) in enumerate(per_dir):
            cell = f"{prefix}{DIRECTIONS[d]}{layer}_"
            for group, w, b in (("i2h", w_i2h, b_i2h), ("h2h", w_h2h, b_h2h)):
                for gate, w_rows, b_rows in zip(gates, split_gates(w, len(gates)), split_gates(b, len(gates))):
                    weights.append((f"{cell}{group}{gate}_weight", w_rows))
                    biases.append((f"{cell}{group}{gate}_bias", b_rows))
    # MXNet's unpack_weights lists every weight before every bias, as the vector stores them
    return weights + biases


def split_gates(arr: Any, gates: int) -> list[Any]:
    """The row blocks of a stacked gate weight or bias (``(G*H, ...)`` into G pieces of ``(H, ...)``).

        >>> [p.tolist() for p in split_gates(np.arange(4), 2)]
        [[0, 1], [2, 3]]
    """
    rows = arr.shape[0] // gates
    return [arr[g * rows:(g + 1) * rows] for g in range(gates)]


def as_jax(value: Any, name: str) -> Any:
    """A parameter value (NDArray, numpy or jax array) as a jax array."""
    try:
        return jnp.asarray(value)
    except TypeError:
        raise SymbolError(f"parameter {name!r}: expected an array, got {type(value).__name__}") from None


def take(args: dict, name: str, what: str) -> Any:
    """Pop parameter ``name`` from ``args`` as a jax array, or an error naming what needs it."""
    if name not in args:
        raise SymbolError(f"{what}: parameter {name!r} is missing from the given parameters "
                          f"(have: {', '.join(sorted(args)) or 'none'})")
    return as_jax(args.pop(name), name)


def unpack_fused(flat: Any, pieces: Sequence[tuple[str, np.ndarray]]) -> dict[str, NDArray]:
    """Cut a flat fused vector into its named pieces (each a new NDArray).

        >>> out = unpack_fused(np.arange(6.0), [('a', np.array([[0, 1], [2, 3]])), ('b', np.array([4, 5]))])
        >>> out['a'].asnumpy().tolist(), out['b'].asnumpy().tolist()
        ([[0.0, 1.0], [2.0, 3.0]], [4.0, 5.0])
    """
    flat = jnp.asarray(flat).reshape(-1)
    return {name: NDArray(flat[idx]) for name, idx in pieces}


def pack_fused(values: Mapping[str, Any], pieces: Sequence[tuple[str, np.ndarray]], size: int,
               what: str) -> NDArray:
    """The flat fused vector of ``size`` elements holding each named piece at its positions.

        >>> pack_fused({'a': np.ones((2, 2)), 'b': np.zeros(2)},
        ...            [('a', np.array([[0, 1], [2, 3]])), ('b', np.array([4, 5]))], 6, 'demo').asnumpy().tolist()
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    positions, parts = [], []
    for name, idx in pieces:
        v = jnp.asarray(values[name])
        if tuple(v.shape) != tuple(idx.shape):
            raise ShapeError(f"{what}: parameter {name!r} has shape {tuple(v.shape)}, expected {tuple(idx.shape)}")
        positions.append(idx.reshape(-1))
        parts.append(v.reshape(-1))
    dtype = parts[0].dtype if parts else jnp.float32
    order = np.argsort(np.concatenate(positions)) if positions else np.zeros(0, np.int64)
    flat = jnp.concatenate([p.astype(dtype) for p in parts])[order]
    if flat.shape != (size,):
        raise ShapeError(f"{what}: the pieces cover {flat.shape[0]} elements, expected {size}")
    return NDArray(flat)
