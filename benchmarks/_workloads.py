"""The reference workloads' shapes, seeded parameters, data and timing helpers.

A copy of the pieces of the shared reference benchmarks (``bench/common.py``,
written for MXNet 1.9.1 and hand-written JAX) that xgraph's benchmarks need, so
the project runs on its own.  Every parameter comes from a
``np.random.RandomState`` seeded by ``crc32(name)``: all frameworks start from
bit-identical float32 weights and see bit-identical data.

``tiny=True`` variants shrink every size (for smoke tests); timings taken with
them mean nothing.

    >>> p = mlp_params()
    >>> p['fc1_weight'].shape, p['fc3_bias'].shape
    ((512, 784), (10,))
"""
from __future__ import annotations

import os
import statistics
import time
import zlib
from typing import Callable

import numpy as np

MLP = dict(batch=128, sizes=(784, 512, 512, 10), lr=0.01)
R18 = dict(batch=32, hw=32, classes=10, lr=0.01)
MLP_TINY = dict(batch=8, sizes=(16, 32, 32, 10), lr=0.01)
R18_TINY = dict(batch=2, hw=8, classes=10, lr=0.01)
LSTM = dict(vocab=10000, embed=200, hidden=200, layers=2, seq=35, batch=20, lr=0.5)
LSTM_TINY = dict(vocab=50, embed=8, hidden=8, layers=2, seq=5, batch=3, lr=0.5)
CHECK_STEPS = 5          # SGD steps whose losses are compared across frameworks
BN_EPS = 1e-5
BN_MOM = 0.9


def rng(name: str, salt: int = 0) -> np.random.RandomState:
    """The random state of one named tensor."""
    return np.random.RandomState((zlib.crc32(name.encode()) + salt) % (2 ** 32))


def he_normal(name: str, shape: tuple, fan_in: int) -> np.ndarray:
    """He-normal float32 values for the tensor ``name``."""
    return (rng(name).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def uniform(name: str, shape: tuple, scale: float) -> np.ndarray:
    """Uniform(-scale, scale) float32 values for the tensor ``name``."""
    return rng(name).uniform(-scale, scale, size=shape).astype(np.float32)


# -- MLP -------------------------------------------------------------------------
def mlp_params(cfg: dict = MLP) -> dict[str, np.ndarray]:
    """FC weights in MXNet layout (out, in); y = x @ W.T + b."""
    p = {}
    sz = cfg["sizes"]
    for i in range(len(sz) - 1):
        p["fc%d_weight" % (i + 1)] = he_normal("fc%d_weight" % (i + 1), (sz[i + 1], sz[i]), sz[i])
        p["fc%d_bias" % (i + 1)] = np.zeros((sz[i + 1],), np.float32)
    return p


def mlp_data(cfg: dict = MLP) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): standard-normal inputs and integer class labels."""
    r = np.random.RandomState(1)
    x = r.standard_normal((cfg["batch"], cfg["sizes"][0])).astype(np.float32)
    y = r.randint(0, cfg["sizes"][-1], size=(cfg["batch"],)).astype(np.int32)
    return x, y


# -- ResNet-18 (CIFAR size) --------------------------------------------------------
def resnet18_cifar_arch(cfg: dict = R18) -> dict:
    """Stem 3x3/64 without pooling, four stages of two basic blocks, global average pool, FC."""
    blocks = []
    cin = 64
    for s, (c, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
        for b in range(2):
            blocks.append(dict(name="s%db%d" % (s + 1, b + 1), type="basic", cin=cin, cout=c,
                               mid=c, stride=stride if b == 0 else 1))
            cin = c
    return dict(stem=dict(cout=64, k=3, s=1, p=1, pool=False), blocks=blocks,
                feat=512, classes=cfg["classes"])


def block_convs(blk: dict) -> tuple[list[tuple], bool]:
    """(suffix, cin, cout, k, stride, pad) for every conv of a block, and whether it has a
    shortcut conv (named '<block>_sc', its BatchNorm '<block>_scbn')."""
    n, ci, co, m, s = blk["name"], blk["cin"], blk["cout"], blk["mid"], blk["stride"]
    if blk["type"] == "basic":
        convs = [("conv1", ci, co, 3, s, 1), ("conv2", co, co, 3, 1, 1)]
    else:
        convs = [("conv1", ci, m, 1, 1, 0), ("conv2", m, m, 3, s, 1), ("conv3", m, co, 1, 1, 0)]
    return convs, (s != 1 or ci != co)


def resnet_params(arch: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Conv weights OIHW (MXNet layout), BN gamma/beta, FC (out, in). Returns (params, aux)."""
    p, aux = {}, {}

    def conv(name, ci, co, k):
        p[name + "_weight"] = he_normal(name + "_weight", (co, ci, k, k), ci * k * k)

    def bn(name, c):
        p[name + "_gamma"] = np.ones((c,), np.float32)
        p[name + "_beta"] = np.zeros((c,), np.float32)
        aux[name + "_moving_mean"] = np.zeros((c,), np.float32)
        aux[name + "_moving_var"] = np.ones((c,), np.float32)

    st = arch["stem"]
    conv("conv0", 3, st["cout"], st["k"])
    bn("bn0", st["cout"])
    for blk in arch["blocks"]:
        convs, sc = block_convs(blk)
        for i, (suf, ci, co, k, s, pd) in enumerate(convs):
            conv(blk["name"] + "_" + suf, ci, co, k)
            bn(blk["name"] + "_bn%d" % (i + 1), co)
        if sc:
            conv(blk["name"] + "_sc", blk["cin"], blk["cout"], 1)
            bn(blk["name"] + "_scbn", blk["cout"])
    f, c = arch["feat"], arch["classes"]
    p["fc_weight"] = uniform("fc_weight", (c, f), 1.0 / np.sqrt(f))
    p["fc_bias"] = np.zeros((c,), np.float32)
    return p, aux


def image_data(batch: int, hw: int, classes: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): NCHW standard-normal images and integer labels."""
    r = np.random.RandomState(seed)
    x = r.standard_normal((batch, 3, hw, hw)).astype(np.float32)
    y = r.randint(0, classes, size=(batch,)).astype(np.int32)
    return x, y


# -- LSTM language model ------------------------------------------------------------
def lstm_params(cfg: dict = LSTM) -> dict[str, np.ndarray]:
    """Embedding (V, E), per-layer LSTM matrices (gate order i, f, g, o as MXNet's fused RNN op)
    and the output FC (V, H) in MXNet layout.

        >>> p = lstm_params(LSTM_TINY)
        >>> p['l1_i2h_weight'].shape, p['fc_weight'].shape
        ((32, 8), (50, 8))
    """
    V, E, H, L = cfg["vocab"], cfg["embed"], cfg["hidden"], cfg["layers"]
    k = 1.0 / np.sqrt(H)
    p = {"embed_weight": uniform("embed_weight", (V, E), 0.1)}
    for l in range(L):
        i = E if l == 0 else H
        p["l%d_i2h_weight" % l] = uniform("l%d_i2h_weight" % l, (4 * H, i), k)
        p["l%d_h2h_weight" % l] = uniform("l%d_h2h_weight" % l, (4 * H, H), k)
        p["l%d_i2h_bias" % l] = uniform("l%d_i2h_bias" % l, (4 * H,), k)
        p["l%d_h2h_bias" % l] = uniform("l%d_h2h_bias" % l, (4 * H,), k)
    p["fc_weight"] = uniform("fc_weight_lm", (V, H), k)
    p["fc_bias"] = np.zeros((V,), np.float32)
    return p


def lstm_pack_mx(p: dict[str, np.ndarray], layers: int) -> np.ndarray:
    """MXNet's fused RNN parameter vector: every weight [l0 i2h, l0 h2h, l1 i2h, l1 h2h, ...],
    then every bias in the same order.

        >>> lstm_pack_mx(lstm_params(LSTM_TINY), 2).shape
        (1152,)
    """
    ws, bs = [], []
    for l in range(layers):
        ws += [p["l%d_i2h_weight" % l].ravel(), p["l%d_h2h_weight" % l].ravel()]
        bs += [p["l%d_i2h_bias" % l], p["l%d_h2h_bias" % l]]
    return np.concatenate(ws + bs).astype(np.float32)


def lstm_data(cfg: dict = LSTM) -> tuple[np.ndarray, np.ndarray]:
    """(tokens (T, N) in TN layout, random labels (T * N,): row t * N + n belongs to token (t, n))."""
    r = np.random.RandomState(3)
    T, N, V = cfg["seq"], cfg["batch"], cfg["vocab"]
    tok = r.randint(0, V, size=(T, N)).astype(np.int32)
    lab = r.randint(0, V, size=(T * N,)).astype(np.int32)
    return tok, lab


def ce_loss_from_probs(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of integer labels ``y`` under the rows of ``probs`` (softmax outputs)."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(probs[np.arange(len(y)), np.asarray(y).astype(np.int64)] + 1e-30)))


# -- timing ------------------------------------------------------------------------
class Foreign:
    """Fraction of the machine's CPU used by *other* processes since creation:
    (system busy time from /proc/stat - this process's user+sys time) / (wall * ncpu).
    Anything above a few % means a timing was disturbed."""

    def __init__(self) -> None:
        self.s0 = self._snap()

    @staticmethod
    def _snap() -> tuple[float, float, float]:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
            busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            busy = float("nan")
        t = os.times()
        return busy, t.user + t.system, time.perf_counter()

    def frac(self) -> float | None:
        """The share (0..1), or None when too little time passed for /proc/stat's 10 ms ticks."""
        b1, o1, w1 = self._snap()
        b0, o0, w0 = self.s0
        if w1 - w0 < 0.3 or b1 != b1:
            return None
        return min(1.0, max(0.0, (b1 - b0) - (o1 - o0)) / ((w1 - w0) * (os.cpu_count() or 1)))


def timeit(fn: Callable[[], object], warmup: int, iters: int) -> list[float]:
    """Seconds of each of ``iters`` calls of ``fn`` (which must synchronise itself) after ``warmup``."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def median_ms(ts: list[float]) -> float:
    """The median of a list of seconds, in milliseconds."""
    return statistics.median(ts) * 1e3
