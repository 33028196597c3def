"""Train an MLP and a small convnet on scikit-learn's digits (8x8 images, 10 classes) with Module.fit.

Every batch is one compiled XLA call (forward, backward, SGD update, accuracy).  Full mode reaches
>= 97% test accuracy with both models on a CPU in well under two minutes; ``--fast`` (for CI) trains
fewer epochs and checks a lower bar.

    python examples/train_digits.py            # both models, full training
    python examples/train_digits.py --fast     # a quick run

Prints one line per model: ``<model> test accuracy 0.9xxx (N epochs, T s)`` and exits non-zero when
an accuracy is below the bar.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import xgraph as mx  # noqa: E402


def load_digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test): images scaled to [0, 1], shape (N, 1, 8, 8); a 75/25 split."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split
    d = _load()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def mlp() -> mx.sym.Symbol:
    """64-128-64-10 with ReLU."""
    x = mx.sym.Flatten(mx.sym.var("data"))
    x = mx.sym.Activation(mx.sym.FullyConnected(x, num_hidden=128, name="fc1"), act_type="relu")
    x = mx.sym.Activation(mx.sym.FullyConnected(x, num_hidden=64, name="fc2"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=10, name="fc3"), name="softmax")


def convnet() -> mx.sym.Symbol:
    """conv3x3/16 - BN - ReLU - conv3x3/32 - BN - ReLU - maxpool2 - FC64 - FC10."""
    x = mx.sym.var("data")
    for i, c in enumerate((16, 32)):
        x = mx.sym.Convolution(x, num_filter=c, kernel=(3, 3), pad=(1, 1), name=f"conv{i}")
        x = mx.sym.BatchNorm(x, name=f"bn{i}")
        x = mx.sym.Activation(x, act_type="relu")
    x = mx.sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max")
    x = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.Flatten(x), num_hidden=64, name="fc1"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=10, name="fc2"), name="softmax")


def train(name: str, net: mx.sym.Symbol, epochs: int, data, batch_size: int = 32, progress: bool = True) -> float:
    """Fit ``net`` and return its test accuracy."""
    x_tr, x_te, y_tr, y_te = data
    mx.random.seed(0)
    train_it = mx.io.NDArrayIter(x_tr, y_tr, batch_size=batch_size, shuffle=True, seed=0)
    test_it = mx.io.NDArrayIter(x_te, y_te, batch_size=128)
    mod = mx.mod.Module(net)
    steps = epochs * -(-len(x_tr) // batch_size)
    mod.fit(train_it, num_epoch=epochs, optimizer="sgd", progress_bar=progress,
            optimizer_params={"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4,
                              "lr_scheduler": mx.lr_scheduler.CosineScheduler(max_update=steps, base_lr=0.1)},
            initializer=mx.init.Xavier(magnitude=2.0), eval_metric="acc")
    return dict(mod.score(test_it, "acc"))["accuracy"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="few epochs, lower bar (CI)")
    ap.add_argument("--model", choices=("mlp", "conv", "both"), default="both")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data = load_digits()
    epochs = {"mlp": 10 if args.fast else 40, "conv": 8 if args.fast else 15}
    bar = 0.90 if args.fast else 0.97
    ok = True
    for name, build in (("mlp", mlp), ("conv", convnet)):
        if args.model not in (name, "both"):
            continue
        t0 = time.time()
        acc = train(name, build(), epochs[name], data, progress=not args.no_progress)
        print(f"{name} test accuracy {acc:.4f} ({epochs[name]} epochs, {time.time() - t0:.1f} s)", flush=True)
        ok &= acc >= bar
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
