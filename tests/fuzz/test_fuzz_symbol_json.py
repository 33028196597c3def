"""Fuzzing the symbol JSON loader and every stage that walks what it builds.

Each input goes through: load (``mx.sym.load_json``), the ``list_*`` views,
shape/dtype inference (with the seed file's input shapes where the names
still match), the JSON writer and a second load that must give the same text
(the round trip is exact), Graphviz DOT, and, for graphs small enough, the O1
pass pipeline and StableHLO lowering.  Anything but success or an
``XGraphError`` fails the test; so does an input that takes longer than the
hang limit.

Two fuzzers: mutation (byte edits, JSON value edits, graph edits such as
2,000-node relu chains or huge variadic counts, applied to the MXNet
fixture files) and hypothesis (graphs built from the operator registry with
hostile attribute strings).
"""
from __future__ import annotations

import glob
import json
import os
import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import fuzzlib
import xgraph as mx
from xgraph.infer import infer
from xgraph.ops import registry
from xgraph.passes import optimize
from xgraph.viz import to_dot

CASES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mxnet", "cases")
#: graphs up to this many nodes also go through the passes and lowering
SMALL_GRAPH = 120
OP_NAMES = sorted(registry.all_names())


def _corpus() -> list[tuple[bytes, dict]]:
    out = []
    for path in sorted(glob.glob(os.path.join(CASES, "*-symbol.json"))):
        meta_path = path.replace("-symbol.json", ".meta.json")
        shapes = {}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            shapes = {k: tuple(v) for k, v in {**meta.get("arg_shapes", {}), **meta.get("aux_shapes", {})}.items()}
        with open(path, "rb") as f:
            out.append((f.read(), shapes))
    return out


CORPUS = _corpus()


def load_and_walk(case: tuple[bytes, dict]) -> None:
    """The loader under test: load, list, infer, write + reload (exact), DOT, passes + lowering."""
    data, shapes = case
    sym = mx.sym.load_json(data)
    g = sym.graph
    names = set(sym.list_arguments()) | set(sym.list_auxiliary_states())
    sym.list_outputs()
    known = {k: v for k, v in shapes.items() if k in names}
    res = infer(g, known, partial=True, default_dtype=np.float32)
    text = sym.tojson()
    again = mx.sym.load_json(text).tojson()
    if again != text:
        raise AssertionError("writing the loaded graph and loading it again changed the JSON")
    to_dot(g, shapes=res)
    if len(g) <= SMALL_GRAPH:
        optimize(g, 1, shapes=known, default_dtype=np.float32)
        variables = sym.list_arguments() + sym.list_auxiliary_states()
        if all(res.var_shapes.get(n) and all(d > 0 for d in res.var_shapes[n]) for n in variables):
            mx.lower(sym, **{n: res.var_shapes[n] for n in variables}).as_text()


# -- graph-level mutations ----------------------------------------------------------------------
def _graph_edit(rnd: random.Random, doc: dict) -> None:
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return
    kind = rnd.randrange(7)
    i = rnd.randrange(len(nodes))
    node = nodes[i] if isinstance(nodes[i], dict) else {}
    if kind == 0:       # a long relu chain after a random node, made the head
        length = rnd.choice((200, 2000))
        for k in range(length):
            nodes.append({"op": "relu", "name": f"fuzz_relu{k}", "inputs": [[i if k == 0 else len(nodes) - 1, 0, 0]]})
        doc["heads"] = [[len(nodes) - 1, 0, 0]]
    elif kind == 1:     # a huge attribute-driven count
        node.setdefault("attrs", {})[rnd.choice(("num_args", "num_outputs"))] = rnd.choice(
            ("1000000000", "0", "-3", "2", "65537"))
    elif kind == 2:     # another operator
        node["op"] = rnd.choice(OP_NAMES)
    elif kind == 3:     # an attribute of its op's schema, with a hostile value
        op = node.get("op")
        if isinstance(op, str) and registry.exists(op):
            keys = list(registry.get(op).schema) or ["x"]
            node.setdefault("attrs", {})[rnd.choice(keys)] = rnd.choice(fuzzlib.HOSTILE_STRINGS)
    elif kind == 4:     # rewire an input
        if node.get("inputs"):
            j = rnd.randrange(len(node["inputs"]))
            node["inputs"][j] = [rnd.randrange(-1, len(nodes) + 1), rnd.randrange(-1, 3), 0]
    elif kind == 5:     # a wide fan-in: add_n over many copies of one entry
        src = rnd.randrange(len(nodes))
        n = rnd.choice((50, 3000))
        nodes.append({"op": "add_n", "name": "fuzz_sum", "attrs": {"num_args": str(n)},
                      "inputs": [[src, 0, 0]] * n})
        doc["heads"] = [[len(nodes) - 1, 0, 0]]
    else:               # the file's version: old layouts take the upgrade paths
        doc["attrs"] = {"mxnet_version": ["int", rnd.choice((800, 900, 903, 904, 10500))]}


def mutate(rnd: random.Random, data: bytes) -> bytes:
    r = rnd.random()
    if r < 0.35:
        return fuzzlib.mutate_bytes(rnd, data, [c[0] for c in CORPUS])
    doc = json.loads(data)
    if r < 0.7:
        doc = fuzzlib.mutate_json_doc(rnd, doc)
    else:
        _graph_edit(rnd, doc)
    return fuzzlib.dumps_with_raw(doc).encode()


def test_symbol_json_mutations():
    t = fuzzlib.tally("symbol_json")
    rnd = random.Random(fuzzlib.SEED)
    with fuzzlib.memory_cap():
        for n in range(fuzzlib.EXAMPLES):
            data, shapes = CORPUS[n % len(CORPUS)]
            fuzzlib.run_case(t, load_and_walk, (mutate(rnd, data), shapes), f"mutation {n}")
    fuzzlib.assert_clean(t)
    assert t.outcomes["accepted"] > 0 and len(t.outcomes) > 2     # the fuzzer reaches past the parser


# -- hypothesis: graphs from the operator registry ------------------------------------------------
OUTPUT_INDEX = st.sampled_from([0] * 9 + [1])
PLAUSIBLE = st.sampled_from(["1", "2", "3", "(2, 2)", "(1, 1)", "(3,)", "True", "False", "float32", "0.5", "0",
                             "-1", "(1, -1)", "max", "avg", "relu", "None"])
ATTR_VALUES = st.one_of(st.sampled_from(fuzzlib.HOSTILE_STRINGS[:30]),
                        st.sampled_from(["1", "2", "3", "(2, 2)", "(1, 1)", "True", "False", "float32", "0.5",
                                         "-1", "(0,)", "max", "avg", "relu", "NCHW", "None"]),
                        st.integers(-3, 70000).map(str))


def _plausible(spec) -> st.SearchStrategy:
    """Values an attribute of this kind could take (an Enum's choices), else generic plausible ones."""
    kind = getattr(spec.kind, "inner", spec.kind)
    choices = getattr(kind, "choices", None)
    return st.sampled_from(sorted(choices)) if choices else PLAUSIBLE


@st.composite
def graphs(draw) -> tuple[bytes, dict]:
    ops = draw(st.lists(st.sampled_from(OP_NAMES), min_size=1, max_size=6))
    n_vars = draw(st.integers(1, 3))
    nodes = [{"op": "null", "name": f"v{i}", "inputs": []} for i in range(n_vars)]
    shapes = {f"v{i}": tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))) for i in range(n_vars)}
    for k, name in enumerate(ops):
        op = registry.get(name)
        keys = sorted(op.schema)
        attrs = {key: draw(_plausible(spec)) for key, spec in sorted(op.schema.items()) if spec.required}
        for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)) if keys else []:
            attrs[key] = draw(st.one_of(_plausible(op.schema[key]), ATTR_VALUES))
        n_in = draw(st.integers(0, 4))
        try:        # usually as many inputs as the op expects, so inference is reached
            expected = len(op.input_names(op.with_defaults(op.parse_attrs(attrs, "n")[0])))
            if expected < 64 and draw(st.integers(0, 9)):
                n_in = expected
        except mx.XGraphError:
            pass
        ins = [[draw(st.integers(0, len(nodes) - 1)), draw(OUTPUT_INDEX), 0] for _ in range(n_in)]
        nodes.append({"op": name, "name": f"n{k}", "attrs": attrs, "inputs": ins})
    heads = [[len(nodes) - 1, draw(OUTPUT_INDEX), 0]]
    doc = {"nodes": nodes, "arg_nodes": list(range(n_vars)), "heads": heads,
           "attrs": {"mxnet_version": ["int", draw(st.sampled_from([10901, 10901, 900, 800]))]}}
    return json.dumps(doc).encode(), shapes


def test_symbol_json_hypothesis():
    t = fuzzlib.tally("symbol_json")

    @fuzzlib.hypothesis_settings()
    @given(graphs())
    def one(case):
        fuzzlib.run_case(t, load_and_walk, case, "hypothesis")

    with fuzzlib.memory_cap():
        one()
    fuzzlib.assert_clean(t)
