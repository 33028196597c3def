"""Deterministic parameters for the model-zoo cases: the same values in MXNet (tools/gen_zoo_cases.py)
and in the tests, computed from each parameter's name, so no weights are stored.

    >>> w = seeded_param("resnetv10_conv0_weight", (4, 3, 3, 3))
    >>> w.shape, w.dtype
    ((4, 3, 3, 3), dtype('float32'))
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from typing import Sequence

import numpy as np

SEED = "xgraph-zoo-v1"
ZOO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "zoo")


def seeded_param(name: str, shape: Sequence[int], gain: float = 1.0) -> np.ndarray:
    """A float32 value for parameter ``name``: He-scaled weights (times ``gain``), non-trivial BatchNorm
    statistics.  A gain below 1 keeps a deep network's outputs from growing without bound (CenterNet's
    heatmap would saturate its sigmoid, and ties make its top-k order arbitrary in MXNet).

    BatchNorm means, variances, gammas and betas get values away from their
    defaults (0, 1, 1, 0) so that a wrong axis or formula shows in the output.
    """
    rng = np.random.default_rng(zlib.crc32(f"{SEED}/{name}".encode()))
    shape = tuple(int(s) for s in shape)
    if name.endswith(("running_var", "moving_var")):
        value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith(("running_mean", "moving_mean")):
        value = 0.1 * rng.standard_normal(shape)
    elif name.endswith("gamma"):
        value = rng.uniform(0.8, 1.2, shape)
    elif name.endswith(("beta", "bias")):
        value = 0.05 * rng.standard_normal(shape)
    elif len(shape) >= 2:
        fan_in = int(np.prod(shape[1:])) or 1
        value = gain * np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)
    else:
        value = 0.1 * rng.standard_normal(shape)
    return value.astype(np.float32)


def seeded_input(name: str, shape: Sequence[int]) -> np.ndarray:
    """The network input of case ``name``: a standard normal image batch."""
    rng = np.random.default_rng(zlib.crc32(f"{SEED}/input/{name}".encode()))
    return rng.standard_normal(tuple(shape)).astype(np.float32)


def write_checkpoint(name: str, directory: str) -> tuple[str, dict]:
    """Write zoo case ``name`` as ``<directory>/<name>-symbol.json`` + ``-0000.params`` (seeded weights,
    through xgraph's ``nd.save``); returns the prefix and the case's meta data."""
    import xgraph as mx
    with open(os.path.join(ZOO_DIR, f"{name}.meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    prefix = os.path.join(directory, name)
    with gzip.open(os.path.join(ZOO_DIR, f"{name}-symbol.json.gz"), "rb") as f, \
            open(prefix + "-symbol.json", "wb") as out:
        out.write(f.read())
    gain = meta.get("weight_gain", 1.0)
    params = {f"arg:{k}": mx.nd.array(seeded_param(k, s, gain)) for k, s in meta["arg_params"].items()}
    params.update({f"aux:{k}": mx.nd.array(seeded_param(k, s, gain)) for k, s in meta["aux_params"].items()})
    mx.nd.save(prefix + "-0000.params", params)
    return prefix, meta
