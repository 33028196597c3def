"""The ``xgraph`` command, run as ``python -m xgraph`` in subprocesses on the MXNet fixture networks."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import xgraph as mx
from xgraph import cli

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "mxnet" / "cases"
MLP = FIX / "net_mlp2_softmax-symbol.json"
RESNET = FIX / "net_resnet_small-symbol.json"
RESNET_PARAMS = FIX / "net_resnet_small-0000.params"
MOBILENET = FIX / "net_mobilenet0_25-symbol.json"
COMMANDS = ("inspect", "hlo", "compile", "run", "plot", "bench", "demo")
SUBPROCESS_ERRORS = ("missing symbol file", "malformed JSON", "bad --shape syntax", "unknown run input",
                     "tampered artifact")
INPROCESS_ERRORS = ("missing artifact", "missing input file", "bad --shape dimension", "unknown --shape name",
                    "wrong input shape", "missing shape for hlo", "unknown platform", "bad plot suffix",
                    "unknown command", "npy header claiming 2^40 elements")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XGRAPH_CACHE_DIR", None)
    return env


def _cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "xgraph", *map(str, args)]


def xg(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m xgraph ARGS`` and return the finished process (text output)."""
    return subprocess.run(_cmd(*args), cwd=cwd or ROOT, env=_env(), capture_output=True, text=True, timeout=300)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def live_resnet(x: np.ndarray) -> np.ndarray:
    """The live executor's inference output of the resnet fixture on ``x``."""
    sym = mx.sym.load(str(RESNET))
    args, aux = mx.model.load_params(str(FIX / "net_resnet_small"), 0)
    ex = sym.bind(mx.cpu(), args={**args, "data": x}, aux_states=aux, grad_req="null")
    return ex.forward(is_train=False)[0].asnumpy()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def artifact(work) -> Path:
    """The resnet fixture compiled once with a symbolic batch dimension."""
    path = work / "resnet.xgraph"
    out = ok(xg("compile", RESNET, RESNET_PARAMS, "-o", path, "--shape", "data=2,3,16,16", "--dynamic-batch"))
    assert f"wrote {path}" in out
    assert "data: (batch, 3, 16, 16) float32" in out and "fc_output: (batch, 10) float32" in out
    return path


# -- help and parsing -------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: xgraph {command}" in capsys.readouterr().out


def test_shape_syntax():
    assert cli.parse_shape("data=1,3,224,224") == ("data", (1, 3, 224, 224))
    assert cli.parse_shape(" x = (batch, 4) ") == ("x", ("batch", 4))
    assert cli.parse_shape("v=(3,)") == ("v", (3,))
    assert cli.parse_shape("s=") == ("s", ())
    for bad in ("data", "=1,2", "data=1,,2", "data=0,3", "data=1.5", "data=-1"):
        with pytest.raises(Exception, match="expected NAME=|bad dimension"):
            cli.parse_shape(bad)


# -- inspect, hlo, plot -------------------------------------------------------------
def test_inspect_prints_op_counts_shapes_params_and_flops():
    out = ok(xg("inspect", MLP, "--shape", "data=8,20"))
    assert "ops: FullyConnected 2, Activation 1, SoftmaxOutput 1" in out
    assert re.search(r"^fc1\s+FullyConnected\s+\(8, 32\)\s+float32", out, re.M)
    assert re.search(r"^fc1_weight\s+param\s+\(32, 20\)\s+float32\s+640$", out, re.M)
    assert "parameters: 1,002" in out                     # 20*32 + 32 + 32*10 + 10
    flops = float(re.search(r"FLOPs \(XLA cost analysis\): ([\d,]+)", out).group(1).replace(",", ""))
    assert flops >= 2 * 8 * (20 * 32 + 32 * 10)             # at least the two matrix products


def test_inspect_with_params_file_counts_every_parameter():
    out = ok(xg("inspect", RESNET, "--shape", "data=2,3,16,16", "--params", RESNET_PARAMS))
    args, aux = mx.model.load_params(str(FIX / "net_resnet_small"), 0)
    assert f"parameters: {sum(v.size for v in args.values()):,}" in out
    assert f"auxiliary states: {sum(v.size for v in aux.values()):,}" in out
    assert "Convolution 6" in out and "BatchNorm 6" in out and "elemwise_add 2" in out
    assert re.search(r"^gap\s+Pooling\s+\(2, 32, 1, 1\)", out, re.M)
    assert "FLOPs (XLA cost analysis)" in out


def test_hlo_names_the_graph_nodes():
    out = ok(xg("hlo", RESNET, "--shape", "data=1,3,16,16"))
    assert "stablehlo.convolution" in out
    for node in ("stem_conv", "b2sc_conv", "fc"):
        assert f"/{node}/" in out
    opt = ok(xg("hlo", RESNET, "--shape", "data=1,3,16,16", "--optimized", "--opt-level", "0"))
    assert opt.startswith("HloModule") and "stem_conv/" in opt


def test_plot_writes_dot_with_node_names_and_edge_shapes(work):
    out = ok(xg("plot", MLP, "--shape", "data=8,20", "-o", work / "mlp.dot"))
    assert "wrote" in out
    dot = (work / "mlp.dot").read_text()
    assert dot.startswith("digraph")
    for node in ("fc1", "relu1", "fc2", "softmax", "fc1_weight"):
        assert f"\\n{node}" in dot or f'"{node}"' in dot
    assert 'label="(8, 32)"' in dot


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz is installed here")
def test_plot_svg_without_graphviz_is_a_clear_error(work, capsys):
    assert cli.main(["plot", str(MLP), "-o", str(work / "mlp.svg")]) == 1
    err = capsys.readouterr().err
    assert "Graphviz" in err and "'dot'" in err and err.count("\n") == 1
    assert not (work / "mlp.svg").exists()


# -- compile, run, bench --------------------------------------------------------------
def test_compile_run_round_trip_equals_executor(artifact, work):
    ref = np.load(FIX / "net_resnet_small.npz")
    np.save(work / "x2.npy", ref["input:data"])
    out = ok(xg("run", artifact, "--input", f"data={work / 'x2.npy'}", "--output-dir", work / "out2"))
    assert re.search(r"fc_output: \(2, 10\) float32\s+min \S+\s+max \S+\s+mean \S+\s+std \S+\s+-> ", out)
    got = np.load(work / "out2" / "fc_output.npy")
    np.testing.assert_allclose(got, live_resnet(ref["input:data"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, ref["out:0"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch_artifact_runs_at_any_batch(artifact, work, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 3, 16, 16)).astype(np.float32)
    np.save(work / f"xb{batch}.npy", x)
    out = ok(xg("run", artifact, "--input", f"data={work / f'xb{batch}.npy'}", "--output-dir", work / f"o{batch}"))
    assert f"fc_output: ({batch}, 10) float32" in out
    np.testing.assert_allclose(np.load(work / f"o{batch}" / "fc_output.npy"), live_resnet(x), rtol=1e-5, atol=1e-5)


def test_compile_static_mlp_with_frozen_params_matches_mxnet(work):
    art = work / "mlp.xgraph"
    out = ok(xg("compile", MLP, FIX / "net_mlp2_softmax-0000.params", "-o", art, "--shape", "data=8,20",
                "--freeze-params", "--opt-level", "0"))
    assert "frozen" in out and "data: (8, 20) float32" in out
    ref = np.load(FIX / "net_mlp2_softmax.npz")
    np.save(work / "mlp_x.npy", ref["input:data"])
    ok(xg("run", art, "--input", f"data={work / 'mlp_x.npy'}", "--output-dir", work / "mlp_out"))
    np.testing.assert_allclose(np.load(work / "mlp_out" / "softmax_output.npy"), ref["out:0"], rtol=1e-5, atol=1e-6)


def test_bench_prints_percentiles_and_throughput(artifact):
    out = ok(xg("bench", artifact, "--batch", "4", "--iters", "20", "--warmup", "1"))
    m = re.search(r"p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    assert m and 0 < float(m.group(1)) <= float(m.group(2)) <= float(m.group(3))
    assert re.search(r"throughput: [\d,.]+ samples/s .*batch 4\)", out)
    assert "inputs [data: (batch, 3, 16, 16) float32]" in out


# -- errors: one line on stderr, exit status 1 (user error) or 2 (usage) ---------------------
def _tampered(artifact: Path, work: Path) -> Path:
    path = work / "tampered.xgraph"
    with zipfile.ZipFile(artifact) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "params.npz":
                data = data[:-8] + bytes(b ^ 0xFF for b in data[-8:])
            zout.writestr(info, data)
    return path


def _error_cases(artifact: Path, work: Path) -> dict[str, tuple[list, int, str]]:
    (work / "malformed-symbol.json").write_text('{"nodes": [{"op": "null", "name": ')
    np.save(work / "x1.npy", np.zeros((1, 3, 16, 16), np.float32))
    np.save(work / "bad_shape.npy", np.zeros((2, 3, 8), np.float32))
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (2 ** 40,)})
    (work / "huge.npy").write_bytes(head.getvalue() + bytes(16))
    return {
        # run as subprocesses: python -m xgraph end to end
        "missing symbol file": (["inspect", work / "nope-symbol.json"], 1, "nope-symbol.json"),
        "malformed JSON": (["inspect", work / "malformed-symbol.json"], 1, "malformed"),
        "bad --shape syntax": (["inspect", MLP, "--shape", "data:8x20"], 2, "--shape"),
        "unknown run input": (["run", artifact, "--input", f"image={work / 'x1.npy'}"], 1, "unknown input"),
        "tampered artifact": (["run", _tampered(artifact, work), "--input", f"data={work / 'x1.npy'}"], 1,
                              "checksum mismatch"),
        # run in this process through cli.main (the same code; a subprocess costs a jax import)
        "missing artifact": (["run", work / "nope.xgraph"], 1, "nope.xgraph"),
        "missing input file": (["run", artifact, "--input", f"data={work / 'nope.npy'}"], 1, "nope.npy"),
        "bad --shape dimension": (["hlo", MLP, "--shape", "data=8,-20"], 2, "bad dimension '-20'"),
        "unknown --shape name": (["inspect", MLP, "--shape", "image=8,20"], 1, "'image'"),
        "wrong input shape": (["run", artifact, "--input", f"data={work / 'bad_shape.npy'}"], 1,
                              "expected (batch, 3, 16, 16)"),
        "missing shape for hlo": (["hlo", RESNET], 1, "--shape data="),
        "unknown platform": (["compile", MLP, FIX / "net_mlp2_softmax-0000.params", "-o", work / "p.xgraph",
                              "--shape", "data=1,20", "--platform", "quantum"], 1, "unknown platform"),
        "bad plot suffix": (["plot", MLP, "-o", work / "g.png"], 2, ".dot"),
        "unknown command": (["frobnicate"], 2, "invalid choice"),
        "npy header claiming 2^40 elements": (["run", artifact, "--input", f"data={work / 'huge.npy'}"], 1,
                                              "claims shape (1099511627776,)"),
    }


@pytest.fixture(scope="module")
def error_cases(artifact, work) -> dict[str, tuple[list, int, str]]:
    cases = _error_cases(artifact, work)
    assert tuple(cases) == SUBPROCESS_ERRORS + INPROCESS_ERRORS
    return cases


@pytest.fixture(scope="module")
def subprocess_errors(error_cases) -> dict[str, subprocess.CompletedProcess]:
    """The subprocess error cases, two at a time (they are independent)."""
    results = {}
    names = list(SUBPROCESS_ERRORS)
    for i in range(0, len(names), 2):
        procs = {n: subprocess.Popen(_cmd(*error_cases[n][0]), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True) for n in names[i:i + 2]}
        for n, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            results[n] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def _check_one_line_error(status: int, err: str, expected_status: int, needle: str) -> None:
    assert status == expected_status, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("xgraph"), err
    assert "error:" in err and needle in err, err


@pytest.mark.parametrize("case", SUBPROCESS_ERRORS)
def test_errors_are_one_line_with_exit_status(subprocess_errors, error_cases, case):
    proc = subprocess_errors[case]
    _check_one_line_error(proc.returncode, proc.stderr, *error_cases[case][1:])


@pytest.mark.parametrize("case", INPROCESS_ERRORS)
def test_errors_in_process_are_one_line_with_exit_status(error_cases, case, capsys):
    args, status, needle = error_cases[case]
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # usage errors exit from argparse
        code = exc.code
    _check_one_line_error(code, capsys.readouterr().err, status, needle)


def test_docs_page_covers_every_command_and_option():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    for command in COMMANDS:
        if command == "demo":
            assert "xgraph demo" in text
            continue
        assert f"## `xgraph {command}`" in text
        section = text.split(f"## `xgraph {command}`", 1)[1].split("\n## ", 1)[0]
        options = {o for a in sub.choices[command]._actions for o in a.option_strings} - {"-h", "--help"}
        documented = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", section))
        assert options <= documented, f"{command}: undocumented options {options - documented}"
