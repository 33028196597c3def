"""The fused recurrent operator ``RNN``: vanilla RNN (relu/tanh), LSTM (optionally with a
projection, LSTMP) and GRU; stacked and bidirectional; MXNet 1.9.1's packed parameter layout.

Layout (TNC data, one flat ``parameters`` vector): first every weight, for each layer and
each direction (forward, then backward): ``W_i2h (G*H, in)``, ``W_h2h (G*H, P)`` and, with a
projection, ``W_h2r (P, H)``; then every bias in the same layer/direction order: ``b_i2h (G*H)``,
``b_h2h (G*H)``.  ``G`` is 1 (rnn_relu, rnn_tanh), 4 (lstm: gates i, f, g, o) or 3 (gru: r, z, n);
``H`` is ``state_size``; ``P`` is ``projection_size`` (or ``H``); ``in`` is the data's feature
size for layer 0 and ``P * directions`` above.

The input projection of a whole layer (every direction, with ``b_i2h`` and, except for GRU,
``b_h2h`` folded in) is one matrix product hoisted out of the time loop; the loop itself is a
``lax.scan`` that runs both directions at once, multiplying by recurrent weights transposed
once before it (the step is then a plain (N, in) x (in, out) GEMM, as hand-written JAX LSTMs do).

    >>> import xgraph as mx
    >>> net = mx.sym.RNN(mx.sym.var('data'), state_size=6, num_layers=1, mode='lstm',
    ...                  state_outputs=True, name='rnn')
    >>> args, outs, _ = net.infer_shape(data=(5, 2, 4))
    >>> args, outs
    ([(5, 2, 4), (288,), (1, 2, 6), (1, 2, 6)], [(5, 2, 6), (1, 2, 6), (1, 2, 6)])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .attrs import Bool, Enum, Float, Int, Optional, attr
from .common import fail, flat_draw
from .registry import Op, optional_input, register

#: gates per mode, in MXNet's block order
GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class RNNGeometry:
    """Sizes of one RNN configuration, from its attributes and the data's feature size.

        >>> g = RNNGeometry.of({'mode': 'gru', 'state_size': 3, 'num_layers': 2,
        ...                     'bidirectional': True, 'projection_size': None}, 5)
        >>> g.param_size(), g.layer_input(1)
        (378, 6)
    """

    gates: int
    hidden: int
    proj: int | None
    layers: int
    dirs: int
    input_size: int

    @classmethod
    def of(cls, p: Mapping[str, Any], input_size: int) -> "RNNGeometry":
        """The geometry for attributes ``p`` and data features ``input_size``."""
        return cls(GATES[p["mode"]], p["state_size"], p["projection_size"], p["num_layers"],
                   2 if p["bidirectional"] else 1, input_size)

    @property
    def out_size(self) -> int:
        """Size of the recurrent output h of one direction: P with a projection, else H."""
        return self.proj if self.proj is not None else self.hidden

    def layer_input(self, layer: int) -> int:
        """Feature size entering ``layer``."""
        return self.input_size if layer == 0 else self.out_size * self.dirs

    def weight_shapes(self, layer: int) -> list[tuple[int, int]]:
        """Shapes of one direction's weights in ``layer``: i2h, h2h and (LSTMP) h2r."""
        gh = self.gates * self.hidden
        shapes = [(gh, self.layer_input(layer)), (gh, self.out_size)]
        if self.proj is not None:
            shapes.append((self.proj, self.hidden))
        return shapes

    def param_size(self) -> int:
        """Length of the packed parameter vector."""
        weights = sum(a * b for layer in range(self.layers) for a, b in self.weight_shapes(layer))
        return weights * self.dirs + 2 * self.gates * self.hidden * self.layers * self.dirs

    def unpack(self, flat: Any) -> list[list[tuple[Any, ...]]]:
        """Split the flat vector into ``[layer][direction] = (W_i2h, W_h2h, [W_h2r,] b_i2h, b_h2h)``."""
        offset = 0
        weights: list[list[list[Any]]] = []
        for layer in range(self.layers):
            weights.append([])
            for _ in range(self.dirs):
                mats = []
                for a, b in self.weight_shapes(layer):
                    mats.append(flat[offset:offset + a * b].reshape(a, b))
                    offset += a * b
                weights[layer].append(mats)
        gh = self.gates * self.hidden
        for layer in range(self.layers):
            for d in range(self.dirs):
                weights[layer][d] += [flat[offset:offset + gh], flat[offset + gh:offset + 2 * gh]]
                offset += 2 * gh
        return [[tuple(w) for w in per_dir] for per_dir in weights]


# -- one time step per mode: (carry, input projection) -> (new carry, output h) ------------------
def _split(x: Any, n: int) -> list[Any]:
    return jnp.split(x, n, axis=-1)


def _recurrent(w: Mapping[str, Any], h: Any) -> Any:
    """``h @ W_h2h`` per direction, plus ``b_h2h`` unless it was folded into the input projection."""
    out = jnp.matmul(h, w["h2h"])                                    # (D, N, P) x (D, P, G*H)
    return out + w["b_h2h"][:, None] if "b_h2h" in w else out


def _vanilla_cell(act: Any) -> Any:
    def cell(p, w, carry, xg):
        h = act(xg + _recurrent(w, carry[0]))
        return (h,), h
    return cell


def _lstm_cell(p, w, carry, xg):
    h, c = carry
    gates = xg + _recurrent(w, h)
    i, f, g, o = _split(gates, 4)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    lo, hi = p["lstm_state_clip_min"], p["lstm_state_clip_max"]
    if lo is not None and hi is not None:
        clipped = jnp.clip(c, lo, hi)
        c = jnp.where(jnp.isnan(c), hi, clipped) if p["lstm_state_clip_nan"] else clipped
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    if "h2r" in w:
        h = jnp.einsum("dnh,dhp->dnp", h, w["h2r"])
    return (h, c), h


def _gru_cell(p, w, carry, xg):
    (h,) = carry
    hg = _recurrent(w, h)
    xr, xz, xn = _split(xg, 3)
    hr, hz, hn = _split(hg, 3)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1 - z) * n + z * h
    return (h,), h


CELLS = {"rnn_relu": _vanilla_cell(jax.nn.relu), "rnn_tanh": _vanilla_cell(jnp.tanh),
         "lstm": _lstm_cell, "gru": _gru_cell}


def _reverse_index(lengths: Any, steps: int) -> Any:
    """(T, N) time indices that reverse each sequence within its valid length (an involution)."""
    t = jnp.arange(steps)[:, None]
    return jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _time_gather(x: Any, index: Any) -> Any:
    """``x[index[t, n], n, ...]`` for x of shape (T, N, ...)."""
    return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=0)


def _run_layer(p, geo: RNNGeometry, cell, weights, x, h0, c0, lengths):
    """One layer, every direction at once. x (T, N, in); h0 (D, N, P); returns (y, hT, cT)."""
    steps = x.shape[0]
    stack = lambda k: jnp.stack([wd[k] for wd in weights])  # noqa: E731
    # recurrent weights transposed once, outside the loop: (D, in, out) makes each step's product a
    # plain (N, in) x (in, out) GEMM (and its weight gradient lands in that layout), which XLA's CPU
    # backend runs faster than the (out, in) form (the 2-layer LSTM LM's RNN fwd+bwd: ~8% faster)
    w = {"h2h": jnp.swapaxes(stack(1), 1, 2)}
    if geo.proj is not None:
        w["h2r"] = jnp.swapaxes(stack(2), 1, 2)
    # hoisted input projection of every direction as ONE (T*N, in) x (in, D*G*H) product; moving the
    # direction axis to the scan's (T, D, N, G*H) order is free for D = 1
    gh = geo.gates * geo.hidden
    w_in = jnp.concatenate([wd[0] for wd in weights], axis=0)               # (D*G*H, in)
    b_in = jnp.concatenate([wd[-2] for wd in weights], axis=0)
    if p["mode"] == "gru":   # b_hn sits inside r * (W_hn h + b_hn): it stays in the loop
        w["b_h2h"] = stack(-1)
    else:
        b_in = b_in + jnp.concatenate([wd[-1] for wd in weights], axis=0)
    xs = (jnp.einsum("tnc,kc->tnk", x, w_in) + b_in).reshape(steps, x.shape[1], geo.dirs, gh)
    xs = jnp.moveaxis(xs, 2, 1)
    rev = None
    if geo.dirs == 2:
        if lengths is None:
            xs = xs.at[:, 1].set(jnp.flip(xs[:, 1], axis=0))
        else:
            rev = _reverse_index(lengths, steps)
            xs = xs.at[:, 1].set(_time_gather(xs[:, 1], rev))
    carry0 = (h0, c0) if p["mode"] == "lstm" else (h0,)

    if lengths is None:
        def step(carry, xt):
            return cell(p, w, carry, xt)
        carry, ys = lax.scan(step, carry0, xs)
    else:
        valid = jnp.arange(steps)[:, None] < lengths[None, :]  # (T, N)

        def step(carry, inp):
            xt, m = inp
            new, h = cell(p, w, carry, xt)
            keep = m[None, :, None]
            new = tuple(jnp.where(keep, a, b) for a, b in zip(new, carry))
            return new, jnp.where(keep, h, jnp.zeros_like(h))
        carry, ys = lax.scan(step, carry0, (xs, valid))
    # ys: (T, D, N, P)
    outs = [ys[:, 0]]
    if geo.dirs == 2:
        outs.append(jnp.flip(ys[:, 1], axis=0) if rev is None else _time_gather(ys[:, 1], rev))
    y = jnp.concatenate(outs, axis=-1)
    return y, carry[0], (carry[1] if p["mode"] == "lstm" else None)


def _check(name: str, a: Any, expected: tuple) -> None:
    if tuple(a.shape) != tuple(expected):
        fail(f"{name} has shape {tuple(a.shape)}, expected {tuple(expected)}")


def _rnn_lower(ctx, p, data, params, state, *rest):
    if p["mode"] != "lstm" and p["projection_size"] is not None:
        fail(f"projection_size is only supported with mode='lstm', not '{p['mode']}'")
    if data.ndim != 3:
        fail(f"data must be 3-D (sequence length, batch, features), got {data.ndim} dimension(s)")
    steps, batch, feat = data.shape
    geo = RNNGeometry.of(p, feat)
    rest = list(rest)
    cell_state = rest.pop(0) if p["mode"] == "lstm" else None
    lengths = rest.pop(0) if p["use_sequence_length"] else None
    total = geo.layers * geo.dirs
    _check("parameters", params, (geo.param_size(),))
    _check("state", state, (total, batch, geo.out_size))
    if cell_state is not None:
        _check("state_cell", cell_state, (total, batch, geo.hidden))
    if lengths is not None:
        _check("sequence_length", lengths, (batch,))
        lengths = lax.stop_gradient(lengths).astype(jnp.int32)
    out_dtype = data.dtype
    acc = jnp.float32 if data.dtype in (jnp.float16, jnp.bfloat16) else data.dtype
    weights = geo.unpack(params.astype(acc))
    x = data.astype(acc)
    h_all, c_all = state.astype(acc), None if cell_state is None else cell_state.astype(acc)
    cell = CELLS[p["mode"]]
    h_out, c_out = [], []
    for layer in range(geo.layers):
        sl = slice(layer * geo.dirs, (layer + 1) * geo.dirs)
        x, hT, cT = _run_layer(p, geo, cell, weights[layer], x, h_all[sl],
                               None if c_all is None else c_all[sl], lengths)
        h_out.append(hT)
        c_out.append(cT)
        if ctx.is_train and p["p"] > 0 and layer < geo.layers - 1:
            key = jax.random.fold_in(ctx.rng(), layer)
            keep = flat_draw(lambda s: jax.random.bernoulli(key, jnp.float32(1.0 - p["p"]), s), x.shape)
            x = jnp.where(keep, x / (1.0 - p["p"]), 0).astype(x.dtype)
    outs = [x.astype(out_dtype)]
    if p["state_outputs"]:
        outs.append(jnp.concatenate(h_out, axis=0).astype(out_dtype))
        if p["mode"] == "lstm":
            outs.append(jnp.concatenate(c_out, axis=0).astype(out_dtype))
    return tuple(outs)


def _rnn_infer(p, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is None or len(data) != 3 or data[2] <= 0 or data[1] <= 0:
        return out
    geo = RNNGeometry.of(p, data[2])
    total = geo.layers * geo.dirs
    out[1] = (geo.param_size(),)
    out[2] = (total, data[1], geo.out_size)
    i = 3
    if p["mode"] == "lstm":
        out[3] = (total, data[1], geo.hidden)
        i = 4
    if p["use_sequence_length"]:
        out[i] = (data[1],)
    return out


def _rnn_dtype(p, dtypes):
    data = dtypes[0] if dtypes[0] is not None else next((d for d in dtypes if d is not None), None)
    if data is None:
        return list(dtypes), None
    filled = [d if d is not None else data for d in dtypes]
    if p["use_sequence_length"] and dtypes[-1] is None:
        filled[-1] = np.dtype(np.int32)
    n_out = 1 if not p["state_outputs"] else (3 if p["mode"] == "lstm" else 2)
    return filled, [data] * n_out


def _rnn_output_names(p):
    names = ["output"]
    if p["state_outputs"]:
        names.append("state_output")
        if p["mode"] == "lstm":
            names.append("statecell_output")
    return names


register(Op(
    "RNN", _rnn_lower, aliases=("_npx_rnn",),
    inputs=("data", "parameters", "state",
            optional_input("state_cell", lambda p: p["mode"] == "lstm"),
            optional_input("sequence_length", lambda p: p["use_sequence_length"])),
    attrs=(attr("state_size", Int(min=1), doc="H: the size of the hidden state of each layer"),
           attr("num_layers", Int(min=1), doc="number of stacked layers"),
           attr("bidirectional", Bool(), False, "run every layer forward and backward in time"),
           attr("mode", Enum(tuple(GATES)), doc="rnn_relu, rnn_tanh, lstm or gru"),
           attr("p", Float(), 0.0, "dropout rate on the outputs of every layer but the last (training only)"),
           attr("state_outputs", Bool(), False, "also output the final states"),
           attr("projection_size", Optional(Int(min=1)), None, "LSTM only: project h to this size (LSTMP)"),
           attr("lstm_state_clip_min", Optional(Float()), None, "LSTM: clip the cell state from below"),
           attr("lstm_state_clip_max", Optional(Float()), None, "LSTM: clip the cell state from above"),
           attr("lstm_state_clip_nan", Bool(), False, "LSTM with clipping: a NaN cell state becomes the max"),
           attr("use_sequence_length", Bool(), False,
                "take a sequence_length input (N,): steps past a sequence's length leave its state "
                "unchanged and output zeros; the backward direction starts at its last valid step")),
    num_outputs=lambda p: len(_rnn_output_names(p)), output_names=_rnn_output_names,
    infer_inputs=_rnn_infer, infer_dtype=_rnn_dtype, random=lambda p: p["p"] > 0 and p["num_layers"] > 1, family="rnn",
    doc="Fused multi-layer (bidirectional) RNN/LSTM/GRU over TNC data with MXNet's packed "
        "parameter vector: all weights (per layer, per direction: W_i2h, W_h2h[, W_h2r]) then all "
        "biases (b_i2h, b_h2h). LSTM gates i,f,g,o; GRU r,z,n with "
        "n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h."))
