"""The ``xgraph demo``: build, inspect, lower and train a small MLP on scikit-learn's digits.

Everything here goes through the public API, the way a user script would:
``mx.sym`` builds the graph, ``infer_shape`` fills in every shape,
``mx.lower`` shows the StableHLO with the graph's node names, and an
executor from ``simple_bind`` computes gradients that a plain SGD loop applies.

    >>> from xgraph import demo
    >>> net = demo.build_mlp(hidden=(16,))
    >>> net.list_arguments()
    ['data', 'fc1_weight', 'fc1_bias', 'fc2_weight', 'fc2_bias', 'softmax_label']
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import symbol as sym
from .context import cpu
from .errors import MissingDependencyError, XGraphError
from .executor import Executor
from .lower import lower
from .symbol import Symbol

Printer = Callable[[str], None]


@dataclass
class DemoConfig:
    """Knobs of the demo's training run.

        >>> DemoConfig(steps=10).batch
        64
    """

    steps: int = 300
    batch: int = 64
    lr: float = 0.1
    hidden: tuple[int, ...] = (64,)
    eval_every: int = 50
    test_fraction: float = 0.25
    seed: int = 0


@dataclass
class DemoResult:
    """What a training run reached: the last logged loss and accuracies, and the wall time.

        >>> DemoResult(steps=1, loss=0.5, train_acc=0.9, test_acc=0.9, seconds=1.0).test_acc
        0.9
    """

    steps: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float
    history: list[tuple[int, float, float, float]] = field(default_factory=list)


# -- the model -------------------------------------------------------------------
def build_mlp(hidden: Sequence[int] = (64,), num_classes: int = 10) -> Symbol:
    """An MLP ``data -> (FullyConnected -> relu)* -> FullyConnected -> SoftmaxOutput``.

    Layers are named ``fc1``, ``relu1`` ... ``fc<n>`` and the head ``softmax``;
    the head normalizes its gradient by the batch size.

        >>> build_mlp(hidden=(8, 8)).list_outputs()
        ['softmax_output']
    """
    net = sym.var("data")
    for i, h in enumerate(hidden, start=1):
        net = sym.FullyConnected(net, num_hidden=int(h), name=f"fc{i}")
        net = sym.Activation(net, act_type="relu", name=f"relu{i}")
    net = sym.FullyConnected(net, num_hidden=int(num_classes), name=f"fc{len(hidden) + 1}")
    return sym.SoftmaxOutput(net, name="softmax", normalization="batch")


# -- the data --------------------------------------------------------------------
def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits (shipped with the package, no download), scaled to [0, 1] and split.

    Returns ``(x_train, y_train, x_test, y_test)`` as float32 arrays; raises
    :class:`~xgraph.errors.MissingDependencyError` when scikit-learn is missing.

        >>> xtr, ytr, xte, yte = load_digits_split()   # doctest: +SKIP
        >>> xtr.shape[1]                                # doctest: +SKIP
        64
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDependencyError(
            "the demo needs scikit-learn for its dataset; install it with: "
            "pip install 'xgraph[examples]'") from None
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.float32)
    perm = np.random.RandomState(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


# -- inspection ------------------------------------------------------------------
def shape_table(net: Symbol, **shapes: Any) -> str:
    """A table of every argument's and every node output's inferred shape.

        >>> print(shape_table(build_mlp(hidden=(4,)), data=(2, 3)).splitlines()[2])
        data                   argument   (2, 3)
    """
    arg_shapes, _, aux_shapes = net.infer_shape(**shapes)
    internals = net.get_internals()
    _, int_shapes, _ = internals.infer_shape(**shapes)
    rows = [(n, "argument", s) for n, s in zip(net.list_arguments(), arg_shapes)]
    rows += [(n, "aux state", s) for n, s in zip(net.list_auxiliary_states(), aux_shapes)]
    args = set(net.list_inputs())
    rows += [(n, "output", s) for n, s in zip(internals.list_outputs(), int_shapes) if n not in args]
    width = max(22, *(len(r[0]) for r in rows))
    lines = [f"{'name':<{width}} {'kind':<10} shape", "-" * (width + 25)]
    lines += [f"{n:<{width}} {k:<10} {s}" for n, k, s in rows]
    return "\n".join(lines)


_LOC_DEF = re.compile(r'^(#loc\d+) = loc\("([^"]*)"')
_LOC_USE = re.compile(r"\s*loc\((#loc\d+)\)\s*$")
_SIGNATURE = re.compile(r" : \(.*\) -> (tensor<[^>]*>)")


def stablehlo_excerpt(net: Symbol, max_lines: int = 15, **shapes: Any) -> str:
    """The lines of ``mx.lower(net, **shapes).as_text()`` that belong to graph nodes.

    StableHLO keeps each operation's location in an alias table (``#loc12 =
    loc("jit(<lambda>)/fc1/dot_general")``); the excerpt resolves it so every
    line ends with ``// <node>/<primitive>``, and shortens the operand types.

        >>> ex = stablehlo_excerpt(build_mlp(hidden=(4,)), data=(2, 3))
        >>> 'fc1/dot_general' in ex
        True
    """
    text = lower(net, **shapes).as_text()
    node_names = {n.name for n in net.graph.op_nodes()}
    scopes: dict[str, str] = {}
    for line in text.splitlines():
        m = _LOC_DEF.match(line)
        if m and "/" in m.group(2):
            path = m.group(2).split("/", 1)[1]          # drop the "jit(<lambda>)" prefix
            if path.split("/", 1)[0] in node_names:
                scopes[m.group(1)] = path
    # every node gets a share of the lines, so the excerpt shows the whole graph
    per_node = max(1, -(-max_lines // max(1, len({p.split("/", 1)[0] for p in scopes.values()}))))
    picked: list[str] = []
    used: dict[str, int] = {}
    for line in text.splitlines():
        m = _LOC_USE.search(line)
        if not m or m.group(1) not in scopes or not ("stablehlo." in line or " call @" in line):
            continue
        node = scopes[m.group(1)].split("/", 1)[0]
        if used.get(node, 0) >= per_node:
            continue
        used[node] = used.get(node, 0) + 1
        code = _SIGNATURE.sub(r" -> \1", line[:m.start()].strip())
        picked.append(f"  {code}  // {scopes[m.group(1)]}")
        if len(picked) >= max_lines:
            break
    return "\n".join(picked)


# -- training --------------------------------------------------------------------
def init_params(ex: Executor, seed: int = 0) -> None:
    """He-normal weights and zero biases, written into ``ex.arg_dict`` in place."""
    r = np.random.RandomState(seed)
    for name, arr in ex.arg_dict.items():
        if name.endswith("_weight"):
            fan_in = int(np.prod(arr.shape[1:]))
            arr[:] = (r.standard_normal(arr.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        elif name.endswith("_bias"):
            arr[:] = np.zeros(arr.shape, np.float32)


def accuracy(ex: Executor) -> float:
    """Fraction of rows whose arg-max prediction equals ``softmax_label`` (an inference forward)."""
    probs = ex.forward(is_train=False)[0].asnumpy()
    labels = ex.arg_dict["softmax_label"].asnumpy()
    return float(np.mean(probs.argmax(axis=1) == labels))


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true class.

        >>> round(cross_entropy(np.array([[0.5, 0.5]]), np.array([1])), 4)
        0.6931
    """
    p = probs[np.arange(len(labels)), labels.astype(np.int64)]
    return float(-np.mean(np.log(np.maximum(p, 1e-12))))


def train(net: Symbol, data: tuple[np.ndarray, ...], config: DemoConfig,
          out: Printer = print) -> DemoResult:
    """Train ``net`` with plain SGD on the executor's gradients; log every ``eval_every`` steps.

    The training executor comes from ``simple_bind(grad_req='write')``; each
    step is ``forward(is_train=True)`` + ``backward()`` (one fused XLA call)
    and ``w[:] = w - lr * g`` per parameter.  Two inference executors over
    the whole train and test sets share the parameter arrays.
    """
    x_tr, y_tr, x_te, y_te = data
    ex = net.simple_bind(cpu(), grad_req="write", data=(config.batch, x_tr.shape[1]))
    init_params(ex, config.seed)
    params = [n for n in ex.arg_dict if n not in ("data", "softmax_label")]
    shared = {n: ex.arg_dict[n] for n in params}
    eval_train = net.bind(cpu(), args={**shared, "data": x_tr, "softmax_label": y_tr}, grad_req="null")
    eval_test = net.bind(cpu(), args={**shared, "data": x_te, "softmax_label": y_te}, grad_req="null")
    r = np.random.RandomState(config.seed + 1)
    order, pos = r.permutation(len(x_tr)), 0
    result = DemoResult(0, float("nan"), 0.0, 0.0, 0.0)
    t0 = time.perf_counter()
    out(f"{'step':>6} {'loss':>8} {'train acc':>10} {'test acc':>9}")
    for step in range(1, config.steps + 1):
        if pos + config.batch > len(order):
            order, pos = r.permutation(len(x_tr)), 0
        idx = order[pos:pos + config.batch]
        pos += config.batch
        ex.forward(is_train=True, data=x_tr[idx], softmax_label=y_tr[idx])
        ex.backward()
        for n in params:
            w = ex.arg_dict[n]
            w[:] = w - config.lr * ex.grad_dict[n]
        if step % config.eval_every == 0 or step == config.steps:
            loss = cross_entropy(ex.outputs[0].asnumpy(), y_tr[idx])
            tr, te = accuracy(eval_train), accuracy(eval_test)
            result.history.append((step, loss, tr, te))
            result.steps, result.loss, result.train_acc, result.test_acc = step, loss, tr, te
            out(f"{step:>6} {loss:>8.4f} {tr:>10.3f} {te:>9.3f}")
    result.seconds = time.perf_counter() - t0
    return result


def run_demo(steps: int | None = None, fast: bool = False, out: Printer = print) -> DemoResult:
    """The whole demo: the graph, its shapes, a StableHLO excerpt, then training.

    ``fast`` trains for a few steps only (for CI); ``steps`` overrides the count.

        >>> run_demo(fast=True, out=lambda s: None).steps   # doctest: +SKIP
        40
    """
    config = DemoConfig()
    if fast:
        config.steps, config.eval_every = 40, 20
    if steps is not None:
        if steps < 1:
            raise XGraphError(f"--steps must be at least 1, got {steps}")
        config.steps = steps
        config.eval_every = max(1, min(config.eval_every, steps))
    data = load_digits_split(config.test_fraction, config.seed)
    net = build_mlp(config.hidden)
    n_feat = data[0].shape[1]
    out(f"xgraph demo: an MLP on scikit-learn's digits ({len(data[0])} train / {len(data[2])} test "
        f"images of {n_feat} pixels, 10 classes)\n")
    out("== graph ==")
    out(net.debug_str())
    out(f"\n== inferred shapes (batch {config.batch}) ==")
    out(shape_table(net, data=(config.batch, n_feat)))
    out("\n== StableHLO excerpt: mx.lower(net, data=...).as_text(), locations resolved to node names ==")
    out(stablehlo_excerpt(net, data=(config.batch, n_feat)))
    out(f"\n== training: SGD lr={config.lr}, batch {config.batch}, {config.steps} steps ==")
    result = train(net, data, config, out)
    out(f"\ndone: test accuracy {result.test_acc:.3f} after {result.steps} steps "
        f"in {result.seconds:.1f} s (including compilation)")
    return result


__all__ = ["DemoConfig", "DemoResult", "build_mlp", "load_digits_split", "shape_table", "stablehlo_excerpt",
           "init_params", "accuracy", "cross_entropy", "train", "run_demo"]
