"""MXNet's interleaved multi-head attention matmuls (``_contrib_interleaved_matmul_*``, ``transformer.cc``).

The projections of a transformer layer arrive packed on the last axis, per head,
in MXNet's interleaved layout (sequence first, then batch):

* self-attention: ``queries_keys_values`` (seq, batch, heads * 3 * head_dim),
  read as (seq, batch, heads, 3, head_dim): query, key and value of each head side by side;
* encoder-decoder attention: ``queries`` (q_seq, batch, heads * head_dim) and
  ``keys_values`` (k_seq, batch, heads * 2 * head_dim), read as (k_seq, batch, heads, 2, head_dim).

The ``qk`` ops give the attention scores ``(q / sqrt(head_dim)) @ k^T`` of shape
(batch * heads, q_seq, k_seq) (batch-major, then head); the ``valatt`` ops take such
an attention map and give ``attention @ v`` back in the interleaved layout,
(q_seq, batch, heads * head_dim).  Reached as ``mx.sym.contrib.interleaved_matmul_selfatt_qk`` etc.

    >>> import xgraph as mx
    >>> qkv = mx.sym.var('qkv')
    >>> mx.sym.contrib.interleaved_matmul_selfatt_qk(qkv, heads=2).infer_shape(qkv=(7, 3, 24))[1]
    [(6, 7, 7)]
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .attrs import Int, attr
from .common import fail
from .linalg import matmul
from .registry import Op, register

_HEADS = (attr("heads", Int(min=1), doc="number of attention heads"),)


def split_heads(x: jax.Array, heads: int, parts: int, what: str) -> list[jax.Array]:
    """The ``parts`` interleaved pieces of ``x`` (seq, batch, heads * parts * head_dim), each (batch * heads, seq, head_dim).

        >>> [p.shape for p in split_heads(jnp.zeros((7, 2, 24)), 2, 3, 'qkv')]
        [(4, 7, 4), (4, 7, 4), (4, 7, 4)]
    """
    if x.ndim != 3:
        fail(f"{what} must be 3-D (seq_length, batch, heads * {parts} * head_dim), got shape {tuple(x.shape)}")
    seq, batch, width = x.shape
    if width % (heads * parts):
        fail(f"{what}: the last axis ({width}) of shape {tuple(x.shape)} is not a multiple of "
             f"heads * {parts} = {heads * parts}")
    head_dim = width // (heads * parts)
    x = x.reshape(seq, batch, heads, parts, head_dim).transpose(3, 1, 2, 0, 4)
    return [piece.reshape(batch * heads, seq, head_dim) for piece in x]


def merge_heads(x: jax.Array, heads: int) -> jax.Array:
    """(batch * heads, seq, head_dim) back to the interleaved (seq, batch, heads * head_dim).

        >>> merge_heads(jnp.zeros((4, 7, 5)), 2).shape
        (7, 2, 10)
    """
    bh, seq, head_dim = x.shape
    return x.reshape(bh // heads, heads, seq, head_dim).transpose(2, 0, 1, 3).reshape(seq, bh // heads, heads * head_dim)


def scaled_scores(q: jax.Array, k: jax.Array) -> jax.Array:
    """``(q / sqrt(head_dim)) @ k^T`` over (batch * heads, seq, head_dim) operands.

        >>> scaled_scores(jnp.ones((1, 2, 4)), jnp.ones((1, 3, 4))).tolist()
        [[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]]
    """
    scale = jnp.asarray(1.0 / float(q.shape[-1]) ** 0.5, q.dtype)
    return matmul(q * scale, jnp.swapaxes(k, -1, -2))


def _check_attention(att: jax.Array, expected: tuple, what: str) -> None:
    if tuple(att.shape) != expected:
        fail(f"attention has shape {tuple(att.shape)}, expected (batch * heads, q_seq, k_seq) = {expected} "
             f"from {what}")


def _selfatt_qk_lower(ctx: Any, p: dict, qkv: jax.Array) -> jax.Array:
    q, k, _ = split_heads(qkv, p["heads"], 3, "queries_keys_values")
    return scaled_scores(q, k)


def _selfatt_valatt_lower(ctx: Any, p: dict, qkv: jax.Array, att: jax.Array) -> jax.Array:
    _, _, v = split_heads(qkv, p["heads"], 3, "queries_keys_values")
    _check_attention(att, (v.shape[0], v.shape[1], v.shape[1]), f"queries_keys_values {tuple(qkv.shape)}")
    return merge_heads(matmul(att, v), p["heads"])


def _encdec_qk_lower(ctx: Any, p: dict, queries: jax.Array, kv: jax.Array) -> jax.Array:
    (q,) = split_heads(queries, p["heads"], 1, "queries")
    k, _ = split_heads(kv, p["heads"], 2, "keys_values")
    if k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
        fail(f"queries {tuple(queries.shape)} and keys_values {tuple(kv.shape)} disagree: batch "
             f"{queries.shape[1]} vs {kv.shape[1]}, head_dim {q.shape[2]} vs {k.shape[2]} (heads={p['heads']})")
    return scaled_scores(q, k)


def _encdec_valatt_lower(ctx: Any, p: dict, kv: jax.Array, att: jax.Array) -> jax.Array:
    _, v = split_heads(kv, p["heads"], 2, "keys_values")
    if att.ndim != 3:
        fail(f"attention must be 3-D (batch * heads, q_seq, k_seq), got shape {tuple(att.shape)}")
    _check_attention(att, (v.shape[0], att.shape[1], v.shape[1]), f"keys_values {tuple(kv.shape)}")
    return merge_heads(matmul(att, v), p["heads"])


def _selfatt_valatt_infer(p: dict, shapes: list) -> list:
    qkv, att = shapes
    if att is None and qkv is not None and len(qkv) == 3 and all(d > 0 for d in qkv):
        att = (qkv[1] * p["heads"], qkv[0], qkv[0])
    return [qkv, att]


for _name, _lower, _inputs, _infer, _doc in (
        ("selfatt_qk", _selfatt_qk_lower, ("queries_keys_values",), None,
         "Self-attention scores (q / sqrt(head_dim)) @ k^T from interleaved (seq, batch, heads*3*head_dim) "
         "projections: shape (batch*heads, seq, seq)."),
        ("selfatt_valatt", _selfatt_valatt_lower, ("queries_keys_values", "attention"), _selfatt_valatt_infer,
         "attention @ v with v from interleaved (seq, batch, heads*3*head_dim) projections and attention "
         "(batch*heads, seq, seq): shape (seq, batch, heads*head_dim)."),
        ("encdec_qk", _encdec_qk_lower, ("queries", "keys_values"), None,
         "Encoder-decoder scores (q / sqrt(head_dim)) @ k^T from queries (q_seq, batch, heads*head_dim) and "
         "interleaved keys_values (k_seq, batch, heads*2*head_dim): shape (batch*heads, q_seq, k_seq)."),
        ("encdec_valatt", _encdec_valatt_lower, ("keys_values", "attention"), None,
         "attention @ v with v from interleaved keys_values (k_seq, batch, heads*2*head_dim) and attention "
         "(batch*heads, q_seq, k_seq): shape (q_seq, batch, heads*head_dim)."),
):
    register(Op(f"_contrib_interleaved_matmul_{_name}", _lower, inputs=_inputs, attrs=_HEADS,
                infer_inputs=_infer, family="attention", doc=_doc))
