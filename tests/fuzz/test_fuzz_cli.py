"""Fuzzing the ``xgraph`` command's file arguments (``cli.main`` in this process).

Every case writes hostile files (symbol JSON, ``.params``, artifacts, ``.npy``
inputs, made by the other fuzzers' mutators and strategies) and runs one
subcommand on them: ``inspect``, ``plot``, ``hlo``, ``run``, ``bench`` and,
rarely (it exports), ``compile``.  The contract: ``main`` returns 0, 1 (a user
error) or 2 (a usage error), never raises, and an error is one line on stderr
starting with ``xgraph <command>: error:``.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import re
import tempfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import fuzzlib
import test_fuzz_artifact as fa
import test_fuzz_params as fp
import test_fuzz_symbol_json as fs
from xgraph import cli

NPY = [(lambda b: (np.save(b, a), b.getvalue())[1])(io.BytesIO())
       for a in (np.ones((2, 3), np.float32), np.zeros((2, 3), np.float64), np.arange(4, dtype=np.float32),
                 np.ones((3,), np.float32))]
#: subcommands, weighted by cost (compile exports: slow)
COMMANDS = ["inspect"] * 4 + ["plot"] * 3 + ["hlo"] * 2 + ["run"] * 4 + ["bench"] + ["compile"]


def run_cli(case: tuple[list[str], dict[str, bytes]]) -> str:
    """The loader under test: write the files, run ``xgraph ARGV``; returns ``exit N``."""
    argv, files = case
    with tempfile.TemporaryDirectory(prefix="xgraph-fuzz-") as d:
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        argv = [a.replace("{d}", d) for a in argv]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(argv)
            except SystemExit as exc:     # argparse's usage errors
                status = exc.code
    if status not in (0, 1, 2):
        raise AssertionError(f"xgraph {argv[0]} returned {status!r}")
    lines = err.getvalue().strip().splitlines()
    errors = [ln for ln in lines if re.match(rf"xgraph( {argv[0]})?: error: ", ln)]
    if "Traceback" in err.getvalue() or (status and (len(errors) != 1 or lines[-1] != errors[0])):
        raise AssertionError(f"xgraph {argv[0]} exited {status} without a one-line error: {err.getvalue()!r}")
    return f"exit {status}"


def _shape_options(shapes: dict) -> list[str]:
    out = []
    for name, shape in shapes.items():
        out += ["--shape", f"{name}={','.join(map(str, shape))}"]
    return out


def case_for(command: str, symbol: tuple[bytes, dict], params_data: bytes, artifact_data: bytes,
             npy_data: bytes) -> tuple:
    """``(argv, files)`` running ``command`` on these file contents."""
    data, shapes = symbol
    sym, prm, art, x = "{d}/m-symbol.json", "{d}/m.params", "{d}/m.xgraph", "{d}/x.npy"   # paths
    shape_opts = _shape_options({k: v for k, v in shapes.items() if k == "data" or k.endswith("data")})
    argv = {"inspect": ["inspect", sym, "--no-flops", "--params", prm],
            "plot": ["plot", sym, "-o", "{d}/g.dot"] + shape_opts,
            "hlo": ["hlo", sym, "-o", "{d}/g.mlir"] + shape_opts,
            "compile": ["compile", sym, prm, "-o", "{d}/out.xgraph", "--opt-level", "0"] + shape_opts,
            "run": ["run", art, "--input", "data=" + x],
            "bench": ["bench", art, "--iters", "1", "--warmup", "0"]}[command]
    return argv, {"m-symbol.json": data, "m.params": params_data, "m.xgraph": artifact_data, "x.npy": npy_data}


def test_cli_mutations():
    t = fuzzlib.tally("cli")
    rnd = random.Random(fuzzlib.SEED)
    arts = fa.corpus()
    with fuzzlib.memory_cap():
        for n in range(fuzzlib.EXAMPLES):
            data, shapes = fs.CORPUS[n % len(fs.CORPUS)]
            # one file of the case is mutated; the others are good, so the command gets past them
            which = rnd.randrange(4)
            symbol = (fs.mutate(rnd, data) if which == 0 else data, shapes)
            prm = fp.CORPUS[n % len(fp.CORPUS)]
            prm = fuzzlib.mutate_bytes(rnd, prm, fp.CORPUS) if which == 1 else prm
            art = fa.mutate(rnd, arts[0]) if which == 2 else arts[0]
            npy = rnd.choice(NPY)
            npy = fuzzlib.mutate_bytes(rnd, npy, NPY) if which == 3 else npy
            command = rnd.choice(COMMANDS)
            fuzzlib.run_case(t, run_cli, case_for(command, symbol, prm, art, npy), f"mutation {n} {command}")
    fuzzlib.assert_clean(t)
    assert t.outcomes["exit 0"] > 0 and t.outcomes["exit 1"] > 0


@st.composite
def cli_cases(draw) -> tuple:
    command = draw(st.sampled_from(COMMANDS))
    argv, files = case_for(command, draw(fs.graphs()), draw(fp.files()), draw(fa.edited_artifacts()),
                           draw(st.sampled_from(NPY) | st.binary(max_size=200)))
    if draw(st.booleans()):     # hostile option values where the command takes shapes and dtypes
        argv += [draw(st.sampled_from(["--shape", "--dtype"])),
                 draw(st.text(alphabet="v0123data=,() -xfloat", max_size=20))]
    return argv, files


def test_cli_hypothesis():
    t = fuzzlib.tally("cli")

    @fuzzlib.hypothesis_settings()
    @given(cli_cases())
    def one(case):
        fuzzlib.run_case(t, run_cli, case, "hypothesis")

    with fuzzlib.memory_cap():
        one()
    fuzzlib.assert_clean(t)
