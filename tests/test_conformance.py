"""Conformance with MXNet 1.9.1: every reference case in tests/fixtures/mxnet/cases, loaded as a
user would load a checkpoint (symbol JSON + ``.params``), must match MXNet's inference outputs,
training outputs, gradients and auxiliary-state updates.

``conformance_passlist.txt`` lists the cases that pass; ``growth_floor.json`` holds the minimum
number of registered operators and of passing cases: both may only grow.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mxnet_cases import FIXTURE_DIR, case_names, check_inference, check_training, load_checkpoint_case
from xgraph.ops import registry

HERE = os.path.dirname(os.path.abspath(__file__))
PASSLIST_FILE = os.path.join(HERE, "conformance_passlist.txt")
FLOOR_FILE = os.path.join(HERE, "growth_floor.json")


def read_passlist() -> list[str]:
    with open(PASSLIST_FILE, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


CASES = case_names()
PASSING = set(read_passlist())


def _mark(name: str):
    marks = [] if name in PASSING else [pytest.mark.xfail(reason="not in conformance_passlist.txt", strict=False)]
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_mark(n) for n in CASES])
def test_case(name):
    case = load_checkpoint_case(name)
    assert set(case.params) == set(case.meta["params"]), "the .params file holds other arguments than the meta"
    assert set(case.aux) == set(case.meta["aux_shapes"])
    for k, v in case.params.items():  # the .params file and the npz agree
        np.testing.assert_array_equal(v, case.npz[f"arg:{k}"])
    assert case.symbol.list_arguments() == case.meta["arguments"]
    assert case.symbol.list_outputs() == case.meta["output_names"]
    check_inference(case)
    if case.meta["has_grad"]:
        check_training(case)


def test_passlist_names_exist_and_cover_the_cases():
    names = read_passlist()
    assert len(names) == len(set(names)), "duplicate names in conformance_passlist.txt"
    unknown = sorted(set(names) - set(CASES))
    assert not unknown, f"conformance_passlist.txt names unknown cases: {unknown}"
    assert len(CASES) >= 33, f"only {len(CASES)} cases found in {FIXTURE_DIR}"


def test_growth_floor():
    with open(FLOOR_FILE, encoding="utf-8") as f:
        floor = json.load(f)
    n_ops = len(registry.all_ops())
    assert n_ops >= floor["registered_ops"], (
        f"{n_ops} registered operators, fewer than the floor {floor['registered_ops']}: an op was removed")
    n_pass = len(read_passlist())
    assert n_pass >= floor["conformance_passlist"], (
        f"{n_pass} cases in conformance_passlist.txt, fewer than the floor {floor['conformance_passlist']}")
