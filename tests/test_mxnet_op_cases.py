"""Every MXNet 1.9.1 reference case of ``tests/fixtures/mxnet_ops/`` (written by
``tools/gen_mxnet_op_cases.py``): inference outputs, training outputs and gradients."""
from __future__ import annotations

import os

import pytest

from mxnet_cases import case_names, check_inference, check_training, load_case

OPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "mxnet_ops")


@pytest.mark.parametrize("name", case_names(OPS_DIR))
def test_matches_mxnet(name):
    case = load_case(name, OPS_DIR)
    check_inference(case)
    if case.meta["has_grad"]:
        check_training(case)
