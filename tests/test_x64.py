"""64-bit types: xgraph turns on ``jax_enable_x64`` at import, so float64 and int64 compute for
real (as in MXNet) while float32 programs stay free of float64.

The float32 guarantee is checked on the StableHLO itself: every MXNet reference case and every
family's representative graph (tests/test_dtype_coverage.py) is lowered for inference and for
the training gradient (its forward included), and no float64 tensor may appear (a float64 scalar constant
that is converted away is harmless and allowed).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xgraph as mx
from mxnet_cases import case_names, load_case
from test_dtype_coverage import GRAPHS
from xgraph.lower import GraphFunction, abstract_inputs

HERE = os.path.dirname(os.path.abspath(__file__))
CASE_DIRS = [os.path.join(HERE, "fixtures", "mxnet", "cases"), os.path.join(HERE, "fixtures", "mxnet_ops")]

#: a float64 tensor of rank >= 1, or any float64 op other than a constant or a conversion
_F64 = re.compile(r"tensor<[0-9x]+f64>|stablehlo\.(?!constant|convert)\w+.*tensor<f64>")


def float64_lines(text: str) -> list[str]:
    """The StableHLO lines that compute in float64."""
    return [line.strip() for line in text.splitlines() if _F64.search(line)]


def lowered_texts(sym, args: dict, aux: dict) -> dict[str, str]:
    """StableHLO of the inference program and of the training gradient (forward included)."""
    values = {**args, **aux}
    shapes = {k: np.shape(v) for k, v in values.items()}
    dtypes = {k: np.asarray(v).dtype for k, v in values.items()}
    texts = {"infer": mx.lower(sym, dtypes=dtypes, **shapes).as_text()}   # the gradient holds the training forward
    gf = GraphFunction(sym.graph, True)
    arg_specs, aux_specs = abstract_inputs(sym.graph, shapes, dtypes)
    floats = [i for i, s in enumerate(arg_specs) if jnp.issubdtype(s.dtype, jnp.floating)]

    def gradient(a, x, key):
        def forward(diff):
            full = list(a)
            for i, v in zip(floats, diff):
                full[i] = v
            return gf(tuple(full), x, key)   # (outputs, updated aux states)
        out, pull, new_aux = jax.vjp(forward, [a[i] for i in floats], has_aux=True)
        return pull(jax.tree.map(jnp.ones_like, out)), new_aux

    key = jax.ShapeDtypeStruct((3,), np.uint32) if gf.needs_rng else None
    texts["gradient"] = jax.jit(gradient).lower(tuple(arg_specs), tuple(aux_specs), key).as_text()
    return texts


def _assert_float32_only(sym, args, aux, what):
    for kind, text in lowered_texts(sym, args, aux).items():
        bad = float64_lines(text)
        assert not bad, f"{what}: the {kind} program of a float32 graph computes in float64: {bad[:3]}"


def test_x64_is_on_after_import():
    assert jax.config.jax_enable_x64 or "JAX_ENABLE_X64" in os.environ


def test_the_environment_keeps_jax_s_own_setting():
    code = "import jax, xgraph; print(jax.config.jax_enable_x64, xgraph.nd.array([1.0], dtype='float64').dtype)"
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


def test_float64_computes_in_float64():
    x = mx.sym.var("x")
    ex = (mx.sym.exp(x) - 1).simple_bind(mx.cpu(), x=(2,), type_dict={"x": "float64"})
    ex.arg_dict["x"][:] = np.array([1e-9, 1e-12])
    out = ex.forward(is_train=True)[0]
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.asnumpy(), np.exp([1e-9, 1e-12]) - 1, rtol=1e-12)   # float32: 0 or 1.19e-7
    ex.backward(mx.nd.array([1.0, 1.0], dtype="float64"))
    assert ex.grad_dict["x"].dtype == np.float64
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), np.exp([1e-9, 1e-12]), rtol=1e-15)


def test_int64_keeps_values_beyond_int32():
    a = mx.nd.array([2 ** 40, 3], dtype="int64")
    got = (a + 1).asnumpy()
    assert got.dtype == np.int64 and got.tolist() == [2 ** 40 + 1, 4]
    s = mx.sym.var("a") * 2
    ex = s.bind(mx.cpu(), {"a": a}, grad_req="null")
    assert ex.forward()[0].asnumpy().tolist() == [2 ** 41, 6]


def test_float32_defaults_stay_float32():
    a = mx.nd.array([1.0, 2.0])
    assert a.dtype is np.float32
    assert (a + np.ones(2)).dtype is np.float32   # a float64 numpy operand takes the NDArray's dtype
    assert (a * 0.5).dtype is np.float32
    assert mx.nd.arange(3).dtype is np.float32 and mx.nd.zeros((2,)).dtype is np.float32
    w = mx.nd.zeros((3, 2))
    mx.init.Xavier()("fc_weight", w)
    assert w.dtype is np.float32


@pytest.mark.parametrize("name", [(d, n) for d in CASE_DIRS for n in case_names(d)], ids=lambda p: p[1])
def test_reference_cases_lower_without_float64(name):
    case = load_case(name[1], name[0])
    values = list(case.args().values()) + list(case.aux.values())
    if any(np.asarray(v).dtype == np.float64 for v in values):
        pytest.skip("a float64 case")
    _assert_float32_only(case.symbol, case.args(), case.aux, case.name)


@pytest.mark.parametrize("entry", GRAPHS, ids=lambda e: f"{e.family}-{e.name}")
def test_every_family_lowers_without_float64(entry):
    sym = entry.build()
    _assert_float32_only(sym, entry.args(sym), entry.aux, f"{entry.family}/{entry.name}")
