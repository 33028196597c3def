"""Alternative lowerings of ``Convolution``, chosen per node by the ``conv_strategy`` pass.

A Convolution node whose user attribute ``__conv_strategy__``
(:data:`xgraph.lower.CONV_STRATEGY_ATTR`) names a strategy is lowered here
instead of by its op's default lowering (plain ``lax.conv_general_dilated``
in the node's layout).  Strategies, for 2-D NCHW convolutions (anything else
falls back to the default lowering):

* ``lax`` — the default lowering;
* ``nhwc`` — transpose data and weight to NHWC/OHWI, convolve, transpose back
  (XLA cancels the transposes between consecutive convolutions where it can);
* ``matmul1x1`` — a 1×1 convolution with one group as one matrix product
  (strided ones read a strided slice first);
* ``im2col`` — ``lax.conv_general_dilated_patches`` then one matrix product
  (one group only);
* ``taps`` — a grouped convolution as a sum over the kernel's taps of strided
  slices times the tap's weights (:func:`grouped_conv_taps`); for depthwise
  convolutions each tap is one fused multiply-add;
* ``winograd2`` / ``winograd4`` — a single-group 3×3 stride-1 convolution by
  Winograd's minimal filtering F(2×2, 3×3) / F(4×4, 3×3) (:func:`winograd_conv`):
  input tiles transformed with strided slices and adds, one batched matrix
  product per tile position contracting the input channels, the inverse
  transform, a crop;
* ``auto`` — ``matmul1x1`` for 1×1 single-group convolutions, ``taps`` for
  grouped ones with few channels per group, Winograd for 3×3 stride-1 ones
  with at least 128 input channels *when the weight is a constant* (frozen
  parameters: its transform is folded; :func:`prefers_winograd`), ``lax``
  otherwise.

XLA's CPU backend runs grouped convolutions slowly (a 3×3 depthwise
convolution 10–60× slower than ``taps``, see ``docs/passes.md``), so the
Convolution op's own lowering already picks ``taps`` on the CPU for them
(:func:`prefers_taps`, through ``lax.platform_dependent``: GPUs and TPUs keep
their native grouped convolutions, in the same exported artifact).

All strategies compute the same values (tested against the default); they
differ in speed.  See ``docs/passes.md`` for measurements on this CPU.

    >>> import jax.numpy as jnp, numpy as np
    >>> x, w = jnp.ones((1, 2, 4, 4)), jnp.ones((3, 2, 1, 1))
    >>> p = {'kernel': (1, 1), 'stride': (), 'dilate': (), 'pad': (), 'num_group': 1, 'num_filter': 3,
    ...      'layout': None, 'no_bias': True}
    >>> lower_convolution('matmul1x1', None, None, p, x, w).shape
    (1, 3, 4, 4)
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

STRATEGIES = ("lax", "nhwc", "matmul1x1", "im2col", "taps", "winograd2", "winograd4", "auto")

#: most input channels per group for which ``taps`` beats XLA's CPU grouped convolution (measured 1-8)
TAPS_MAX_GROUP_CHANNELS = 8


#: fewest input channels for which Winograd beats XLA's CPU convolution with a constant weight (measured: 64 par)
WINOGRAD_MIN_CHANNELS = 128


def prefers_winograd(channels: int, batch: int, out_size: tuple) -> int | None:
    """The Winograd tile ``m`` (2 or 4) ``auto`` uses for a 3×3 stride-1 convolution with a constant weight, or None.

    F(4×4) when it still has 16 or more tiles (``batch`` × tiles per image), F(2×2)
    below (ResNet's 512×7×7 at batch 1); nothing below :data:`WINOGRAD_MIN_CHANNELS`.

        >>> prefers_winograd(512, 1, (7, 7)), prefers_winograd(512, 8, (7, 7)), prefers_winograd(64, 1, (56, 56))
        (2, 4, None)
    """
    if channels < WINOGRAD_MIN_CHANNELS:
        return None
    tiles = batch * -(-out_size[0] // 4) * -(-out_size[1] // 4)
    return 4 if tiles >= 16 else 2


def prefers_taps(groups: int, channels_per_group: int) -> bool:
    """Whether a convolution with these groups runs faster as :func:`grouped_conv_taps` on the CPU."""
    return groups > 1 and channels_per_group <= TAPS_MAX_GROUP_CHANNELS


def grouped_conv_taps(x: Any, w: Any, stride: tuple, dilate: tuple, pad: tuple, groups: int,
                      channel_axis: int = 1, differentiable: bool = False) -> Any:
    """A grouped N-d convolution as a sum over kernel taps (no ``lax.conv``).

    ``x`` is (N, C, *spatial) with the channels on ``channel_axis`` (1, or the
    last axis for channel-last layouts, whose weight is (O, *kernel, C/groups)).
    For each tap the strided slice of the padded input is multiplied by the
    tap's weights.  With one channel per group (depthwise) that is an
    elementwise multiply-add, and XLA fuses all taps into one loop.  With more,
    inference multiplies per input channel too (elementwise, fused; 3-6x faster
    than a per-group ``einsum``), but when ``differentiable`` (a training
    graph) each tap is one per-group ``einsum``: the backward pass of the
    elementwise form needs a reduction per (tap, channel) and was 5-30x slower.
    Worth it only for few channels per group (see :data:`TAPS_MAX_GROUP_CHANNELS`).
    Low-precision inputs accumulate in float32.

        >>> import jax.numpy as jnp
        >>> x, w = jnp.ones((1, 2, 4, 4)), jnp.ones((2, 1, 3, 3))
        >>> grouped_conv_taps(x, w, (1, 1), (1, 1), (1, 1), 2)[0, 0].tolist()
        [[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
    """
    last = channel_axis != 1
    if last:   # to channel-first: data (N, C, *S), weight (O, g, *K)
        x = jnp.moveaxis(x, -1, 1)
        w = jnp.moveaxis(w, -1, 1)
    out_dtype = x.dtype
    acc_dtype = jnp.promote_types(out_dtype, jnp.float32)
    n, c, *size = x.shape
    out_ch, per_group, *kernel = w.shape
    mult = out_ch // groups
    xp = jnp.pad(x.astype(acc_dtype), [(0, 0), (0, 0)] + [(q, q) for q in pad])
    w = w.astype(acc_dtype)
    out_size = [(s + 2 * q - d * (k - 1) - 1) // st + 1
                for s, q, d, k, st in zip(size, pad, dilate, kernel, stride)]
    ones = (1,) * len(kernel)
    y = None
    for tap in itertools.product(*(range(k) for k in kernel)):
        start = [t * d for t, d in zip(tap, dilate)]
        limit = [s0 + (o - 1) * st + 1 for s0, o, st in zip(start, out_size, stride)]
        xs = lax.slice(xp, [0, 0] + start, [n, c] + limit, [1, 1] + list(stride))
        wt = w[(slice(None), slice(None)) + tap]                           # (O, per_group)
        if per_group == 1:                   # depthwise: (N, C, *S) * (1, O, 1...), channels repeated m times
            terms = [(xs if mult == 1 else jnp.repeat(xs, mult, axis=1)) * wt.reshape((1, out_ch) + ones)]
        else:
            xs = xs.reshape((n, groups, per_group, *out_size))
            wt = wt.reshape(groups, mult, per_group)
            if differentiable:
                terms = [jnp.einsum("ngc...,gmc->ngm...", xs, wt).reshape((n, out_ch, *out_size))]
            else:                            # (N, G, 1, *S) * (1, G, m, 1...) per input channel of the group
                terms = [(xs[:, :, ch:ch + 1] * wt[:, :, ch].reshape((1, groups, mult) + ones))
                         .reshape((n, out_ch, *out_size)) for ch in range(per_group)]
        for term in terms:
            y = term if y is None else y + term
    y = y.astype(out_dtype)
    return jnp.moveaxis(y, 1, -1) if last else y


def _geometry(p: Any) -> tuple:
    k = tuple(p["kernel"])
    n = len(k)

    def fill(v: Any, d: int) -> tuple:
        v = tuple(v or ())
        return v if len(v) == n else (v * n if len(v) == 1 else (d,) * n)
    return k, fill(p.get("stride"), 1), fill(p.get("dilate"), 1), fill(p.get("pad"), 0)


def _add_bias(y: Any, b: Any) -> Any:
    return y if b is None else y + b.astype(y.dtype).reshape((1, -1) + (1,) * (y.ndim - 2))


def _nhwc(p: Any, x: Any, w: Any, b: Any) -> Any:
    k, stride, dilate, pad = _geometry(p)
    xt = jnp.transpose(x, (0, 2, 3, 1))
    wt = jnp.transpose(w.astype(x.dtype), (0, 2, 3, 1))
    y = lax.conv_general_dilated(xt, wt, window_strides=stride, padding=[(q, q) for q in pad],
                                 rhs_dilation=dilate, dimension_numbers=("NHWC", "OHWI", "NHWC"),
                                 feature_group_count=int(p["num_group"]))
    return _add_bias(jnp.transpose(y, (0, 3, 1, 2)), b)


def _matmul1x1(p: Any, x: Any, w: Any, b: Any) -> Any:
    _, stride, _, _ = _geometry(p)
    xs = x[:, :, ::stride[0], ::stride[1]]
    y = jnp.einsum("nchw,oc->nohw", xs, w.astype(x.dtype)[:, :, 0, 0])
    return _add_bias(y, b)


def _taps(p: Any, x: Any, w: Any, b: Any) -> Any:
    _, stride, dilate, pad = _geometry(p)
    return _add_bias(grouped_conv_taps(x, w, stride, dilate, pad, int(p["num_group"]), differentiable=True), b)


def _im2col(p: Any, x: Any, w: Any, b: Any) -> Any:
    k, stride, dilate, pad = _geometry(p)
    patches = lax.conv_general_dilated_patches(x, k, stride, [(q, q) for q in pad], rhs_dilation=dilate,
                                               dimension_numbers=("NCHW", "OIHW", "NCHW"))
    y = jnp.einsum("nkhw,ok->nohw", patches, w.astype(x.dtype).reshape(w.shape[0], -1))
    return _add_bias(y, b)


#: Winograd F(m×m, 3×3) transforms (Lavin & Gray 2016) as (B^T, G, A^T): data tile d of (m+2)², filter g
#: of 3×3, output tile A^T [(G g G^T) ⊙ (B^T d B)] A of m×m (a cross-correlation, as lax.conv computes)
WINOGRAD: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64)),
}


def _tiles(x: Any, axis: int, count: int, m: int, alpha: int) -> Any:
    """The ``alpha`` overlapping strided views of ``x`` along ``axis`` (tile ``t`` starts at ``t * m``),
    stacked in front: ``out[i][..., t, ...] = x[..., t * m + i, ...]`` for ``count`` tiles."""
    return jnp.stack([lax.slice_in_dim(x, i, i + (count - 1) * m + 1, m, axis=axis) for i in range(alpha)])


def _filter_transform(w: Any, g: np.ndarray, acc: Any) -> Any:
    """G g G^T of every (O, C) 3×3 filter, as ``(α², O, C)``.

    A concrete weight (frozen parameters: a constant of the program) is transformed
    on the host, in float64, once: left in the program, XLA constant-folds the
    product in its evaluator, over a second per 512-channel layer of compile time.
    """
    o, c = w.shape[:2]
    gg = np.kron(g, g)
    if not isinstance(w, jax.core.Tracer):
        return jnp.asarray(np.einsum("kt,oct->koc", gg, np.asarray(w, np.float64).reshape(o, c, 9)).astype(acc))
    return jnp.einsum("kt,oct->koc", jnp.asarray(gg, acc), w.astype(acc).reshape(o, c, 9))


def winograd_conv(x: Any, w: Any, pad: tuple, m: int) -> Any:
    """A 2-D NCHW single-group 3×3 stride-1 convolution by Winograd's F(m×m, 3×3) (``m`` 2 or 4).

    The padded input is cut into overlapping (m+2)² tiles with stride m (extra
    zero rows/columns where the output size is not a multiple of m).  The
    input transform B^T d B and the inverse transform A^T M A are separable:
    each is two small contractions, one per spatial axis, over the stacked
    strided views of the tiles.  (Spelling them out as sums of slices, with
    the zero terms left out, computes no faster on XLA CPU and compiles 3-5x
    slower: hundreds of elementwise ops per layer, 1-2 s of compile each.)
    The weight transform G g G^T is one small matrix product (done on the
    host when the weight is a constant, i.e. frozen parameters).  One batched matrix product per tile
    position (``(m+2)²`` of them) contracts the input channels; an interleave
    and a crop give the output.  Computes in float32 at least (low-precision
    inputs are cast back); F(4×4) loses about a decimal digit against
    ``lax.conv`` (measured in ``docs/passes.md``).

        >>> import jax.numpy as jnp
        >>> y = winograd_conv(jnp.ones((1, 1, 4, 4)), jnp.ones((1, 1, 3, 3)), (1, 1), 2)
        >>> y[0, 0].tolist()
        [[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
    """
    bt, g, at = WINOGRAD[m]
    alpha = m + 2
    n, c, h, wd = x.shape
    o = w.shape[0]
    ho, wo = h + 2 * pad[0] - 2, wd + 2 * pad[1] - 2
    th, tw = -(-ho // m), -(-wo // m)
    acc = jnp.promote_types(x.dtype, jnp.float32)
    # (C, N, H, W): the tiles of all images side by side, so the products need no transpose
    xp = jnp.pad(jnp.swapaxes(x.astype(acc), 0, 1),
                 [(0, 0), (0, 0), (pad[0], th * m + 2 - h - pad[0]), (pad[1], tw * m + 2 - wd - pad[1])])
    hi = lax.Precision.HIGHEST
    b_t, a_t = jnp.asarray(bt, acc), jnp.asarray(at, acc)
    rows = jnp.einsum("ia,acnhw->icnhw", b_t, _tiles(xp, 2, th, m, alpha), precision=hi)    # B^T along H
    v = jnp.einsum("jb,bicnhw->ijcnhw", b_t, _tiles(rows, 4, tw, m, alpha), precision=hi)   # and along W
    u = _filter_transform(w, g, acc)
    prod = lax.dot_general(u, v.reshape(alpha * alpha, c, n * th * tw), (((2,), (1,)), ((0,), (0,))),
                           precision=hi)                                        # (α², O, N·th·tw)
    prod = prod.reshape(alpha, alpha, o, n, th, tw)
    y = jnp.einsum("pa,qb,abonhw->pqonhw", a_t, a_t, prod, precision=hi)       # (m, m, O, N, th, tw)
    y = y.transpose(3, 2, 4, 0, 5, 1).reshape(n, o, th * m, tw * m)
    return y[:, :, :ho, :wo].astype(x.dtype)


def _winograd(m: int) -> Callable[..., Any]:
    def impl(p: Any, x: Any, w: Any, b: Any) -> Any:
        return _add_bias(winograd_conv(x, w, _geometry(p)[3], m), b)
    return impl


def applicable(strategy: str, p: Any, ndim: int) -> bool:
    """Whether ``strategy`` handles a convolution with attributes ``p`` on data of ``ndim`` dimensions."""
    if strategy in ("lax", "auto"):
        return True
    if strategy == "taps":
        return p.get("layout") in (None, "NCW", "NCHW", "NCDHW") and int(p["num_group"]) > 1
    if ndim != 4 or p.get("layout") not in (None, "NCHW"):
        return False
    k, stride, dilate, pad = _geometry(p)
    if strategy == "nhwc":
        return True
    if strategy == "matmul1x1":
        return k == (1, 1) and pad == (0, 0) and int(p["num_group"]) == 1
    if strategy == "im2col":
        return int(p["num_group"]) == 1
    if strategy in ("winograd2", "winograd4"):
        return k == (3, 3) and stride == (1, 1) and dilate == (1, 1) and int(p["num_group"]) == 1
    return False


def resolve(strategy: str, p: Any, ndim: int, channels: int | None = None, data_shape: tuple | None = None,
            const_weight: bool = False) -> str:
    """The concrete strategy ``auto`` (or an inapplicable one) means for this convolution.

    ``channels`` (the data's) lets ``auto`` pick ``taps`` for grouped convolutions;
    ``data_shape`` (NCHW) and ``const_weight`` (the weight is a constant, not traced)
    let it pick Winograd for 3×3 stride-1 ones.

        >>> p = {'kernel': (3, 3), 'stride': (1, 1), 'dilate': (), 'pad': (1, 1), 'num_group': 1, 'layout': None}
        >>> resolve('auto', p, 4, 256, (1, 256, 14, 14), const_weight=True), resolve('auto', p, 4, 256, (1, 256, 14, 14))
        ('winograd4', 'lax')
    """
    if strategy == "auto":
        if applicable("matmul1x1", p, ndim):
            return "matmul1x1"
        groups = int(p["num_group"])
        if channels is not None and applicable("taps", p, ndim) and prefers_taps(groups, channels // groups):
            return "taps"
        if const_weight and data_shape is not None and applicable("winograd2", p, ndim):
            pad = _geometry(p)[3]
            m = prefers_winograd(data_shape[1], data_shape[0], (data_shape[2] + 2 * pad[0] - 2,
                                                                data_shape[3] + 2 * pad[1] - 2))
            if m:
                return f"winograd{m}"
        return "lax"
    return strategy if applicable(strategy, p, ndim) else "lax"


_IMPL: dict[str, Callable[..., Any]] = {"nhwc": _nhwc, "matmul1x1": _matmul1x1, "im2col": _im2col, "taps": _taps,
                                        "winograd2": _winograd(2), "winograd4": _winograd(4)}


def lower_convolution(strategy: str, default: Callable[..., Any] | None, ctx: Any, p: Any, x: Any, w: Any,
                      b: Any = None) -> Any:
    """Lower one Convolution with ``strategy`` (``default`` is the op's own lowering, the fallback)."""
    s = resolve(strategy, p, x.ndim, x.shape[1], x.shape, const_weight=not isinstance(w, jax.core.Tracer))
    if s == "lax":
        return default(ctx, p, x, w, b) if b is not None else default(ctx, p, x, w)
    return _IMPL[s](p, x, w, b)


__all__ = ["STRATEGIES", "lower_convolution", "resolve", "applicable", "grouped_conv_taps", "prefers_taps",
           "winograd_conv", "prefers_winograd", "WINOGRAD", "WINOGRAD_MIN_CHANNELS"]
