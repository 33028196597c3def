"""Generate docs/operators.md from the operator registry, or check that it is current.

    python tools/gen_operators_doc.py          # (re)write docs/operators.md
    python tools/gen_operators_doc.py --check  # exit 1 if docs/operators.md is not current

Everything in the page comes from the ``Op`` declarations: names, aliases, family, inputs,
attributes (kind, default, meaning), outputs, gradient support and the doc line.

    >>> text = render()
    >>> '| `FullyConnected` |' in text and '## nn' in text
    True
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from xgraph.ops import registry  # noqa: E402

DOC_PATH = os.path.join(ROOT, "docs", "operators.md")
ZOO_DIR = os.path.join(ROOT, "tests", "fixtures", "zoo")
QUANTIZED_DIR = os.path.join(ROOT, "tests", "fixtures", "quantized")
COMMAND = "python tools/gen_operators_doc.py"


def _cell(text: Any) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _inputs(op: Any) -> str:
    if op.dynamic_inputs is not None:
        return "decided by the attributes (user code names the arguments and auxiliary states)"
    if op.variadic is not None:
        variadic = f"`arg0` … `arg{{{op.variadic}-1}}`"
        if op.variadic_if is None:
            return variadic
        fixed = ", ".join(f"`{s.name}`" for s in op.inputs)
        return f"{variadic}, or {fixed} (depending on the attributes)"
    parts = []
    for s in op.inputs:
        notes = []
        if s.present is not None:
            notes.append("optional")
        if s.name in op.aux:
            notes.append("auxiliary state, updated in training")
        parts.append(f"`{s.name}`" + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(parts) if parts else "none"


def _outputs(op: Any) -> str:
    try:
        params = op.with_defaults({})
        names = op.output_names(params)
        hidden = op.num_outputs(params) - op.num_visible_outputs(params)
    except (KeyError, TypeError):  # depends on a required attribute
        return "depends on the attributes"
    text = ", ".join(f"`{n}`" for n in names)
    return text + (f" (+{hidden} hidden)" if hidden > 0 else "")


def _op_section(op: Any) -> list[str]:
    lines = [f"### `{op.name}`", ""]
    if op.doc:
        lines += [op.doc, ""]
    facts = [("family", op.family or "-"),
             ("aliases", ", ".join(f"`{a}`" for a in op.aliases) or "-"),
             ("inputs", _inputs(op)),
             ("outputs (default attributes)", _outputs(op)),
             ("gradient", "yes" if op.differentiable else "no"),
             ("random", "yes (explicit PRNG key)" if op.random else "no")]
    lines += [f"- {k}: {v}" for k, v in facts]
    lines.append("")
    if op.schema:
        lines += ["| attribute | kind | default | meaning |", "| --- | --- | --- | --- |"]
        for name, spec in op.schema.items():
            default = "*required*" if spec.required else f"`{op.format_attr(name, spec.default)}`"
            lines.append(f"| `{name}` | {_cell(spec.kind.describe())} | {default} | {_cell(spec.doc)} |")
        lines.append("")
    return lines


def _zoo_section() -> list[str]:
    """The model-zoo networks tests/test_zoo.py runs against MXNet 1.9.1 (tests/fixtures/zoo)."""
    metas = []
    for f in sorted(os.listdir(ZOO_DIR)) if os.path.isdir(ZOO_DIR) else []:
        if f.endswith(".meta.json"):
            with open(os.path.join(ZOO_DIR, f), encoding="utf-8") as fh:
                metas.append(json.load(fh))
    if not metas:
        return []
    floats = [m for m in metas if "int8" not in m]
    int8 = [m for m in metas if "int8" in m]
    lines = ["## Model-zoo networks that run", "",
             f"{len(floats)} networks of the Gluon (`mxnet.gluon.model_zoo.vision`) and GluonCV 0.10 model zoos, "
             "exported by MXNet 1.9.1 (`tools/gen_zoo_cases.py`), load with `mx.model.load_checkpoint` and "
             "match MXNet's outputs (`tests/test_zoo.py`):", "",
             "| network | zoo | input | operators |", "| --- | --- | --- | --- |"]
    for m in floats:
        shape = "x".join(str(d) for d in m["input"]["data"])
        lines.append(f"| `{m['name']}` | {m['zoo']} | {shape} | {len(m['ops'])} |")
    lines.append("")
    if int8:
        lines += [f"{len(int8)} of GluonCV 0.10's int8 entries (`get_model('<network>_int8')`, whose pretrained "
                  "weights are GluonCV's float ones) rebuilt as GluonCV built them: the float network with seeded weights "
                  "quantized by `quantize_net(quantized_dtype='auto', quantize_mode='full', calib_mode='naive')`, "
                  "leaving float the layers GluonCV's shipped int8 symbols leave float "
                  "(`tools/gen_zoo_cases.py --int8` checks it). They load with `mx.model.load_checkpoint` and "
                  "match MXNet's oneDNN outputs bit for bit up to every `_contrib_dequantize` node (the float "
                  "layers after them to the float tolerance), reproducing the int8 kernels of the kind of CPU "
                  "that made the fixture (`XGRAPH_ONEDNN_ISA`, see `_sg_mkldnn_conv`):", "",
                  "| network | float network | input | CPU kind | layers left float |", "| --- | --- | --- | --- | --- |"]
        for m in int8:
            shape = "x".join(str(d) for d in m["input"]["data"])
            left = ", ".join(f"{op} x{k}" for op, k in m["int8"]["float_layers"].items()) or "none"
            lines.append(f"| `{m['name']}` | `{m['int8']['float_network']}` | {shape} | {m['int8']['cpu_isa']} | "
                         f"{left} |")
        lines.append("")
    return lines


def _int8_section() -> list[str]:
    """The int8 checkpoints the tests load and check against MXNet 1.9.1 (tests/fixtures/quantized)."""
    rows = []
    for f in sorted(os.listdir(QUANTIZED_DIR)) if os.path.isdir(QUANTIZED_DIR) else []:
        if f.endswith("-symbol.json"):
            with open(os.path.join(QUANTIZED_DIR, f), encoding="utf-8") as fh:
                ops = sorted({n["op"] for n in json.load(fh)["nodes"]
                              if n["op"].startswith(("_contrib_quantized_", "_sg_mkldnn_"))})
            rows.append(f"| `{f[:-len('-symbol.json')]}` | {', '.join(f'`{o}`' for o in ops)} |")
    if not rows:
        return []
    return ["## Int8 checkpoints that load", "",
            "MXNet 1.9.1 int8 checkpoints load with `mx.model.load_checkpoint` and match MXNet's CPU (oneDNN) "
            "outputs bit for bit (`tests/test_ops_quantized.py`, `tests/test_mkldnn_subgraphs.py`; `convnet_uint8` "
            "differs where MXNet reads a uint8 relu's int8-typed bytes as uint8, see `_contrib_quantized_act`): "
            "`quantize_model` without a subgraph backend (`_contrib_quantized_*` nodes), and the oneDNN fused "
            "nodes `_sg_mkldnn_conv` / `_sg_mkldnn_fully_connected` (a JSON `subgraphs` field) of Gluon's "
            "`quantize_net(quantize_mode='full')` and of `quantize_model_mkldnn` "
            "(`get_backend_symbol('MKLDNN_QUANTIZE')`) calibrated with `calib_mode='naive'` or `'entropy'`; "
            "float graphs of `get_backend_symbol('MKLDNN')` match to float32 rounding. MXNet's int8 "
            "convolutions depend on the CPU: with VNNI the sums are exact (xgraph's default, "
            "`XGRAPH_ONEDNN_ISA=vnni`, these checkpoints); on AVX2 and pre-VNNI AVX-512 CPUs oneDNN halves the "
            "weights of signed-data convolutions and saturates u8 x s8 products pairwise to int16 (FullyConnected "
            "too), which `XGRAPH_ONEDNN_ISA=avx2` (or `xgraph.ops.mkldnn.cpu_isa('avx2')`) reproduces "
            "(`tests/fixtures/quantized/avx2`: the same checkpoints made on an AVX2 CPU). Refused with an "
            "`XGraphError`: fused int8 nodes without calibration (`calib_mode='none'`), channel-wise "
            "quantized FullyConnected, int8 fusions with `clip`; `_sg_mkldnn_selfattn_*` (the transformer "
            "fusions) are not operators here. Checkpoints checked (`tools/gen_quantized_cases.py`, "
            "`tools/gen_mkldnn_cases.py`):", "",
            "| checkpoint | quantized and fused operators |", "| --- | --- |", *rows, ""]


def render() -> str:
    """The whole page, from the registry."""
    ops = registry.all_ops()
    by_family: dict[str, list[Any]] = defaultdict(list)
    for op in ops:
        by_family[op.family or "other"].append(op)
    n_names = len(registry.all_names())
    lines = ["# Operators", "",
             f"<!-- Generated from the operator registry by `{COMMAND}`; do not edit by hand. -->", "",
             f"{len(ops)} operators ({n_names} names with aliases) in {len(by_family)} families. "
             "Names, aliases, attributes and defaults are MXNet 1.9.1's; every attribute is parsed "
             "from MXNet's string form and written back the same way.", "",
             "| operator | family | aliases | gradient | doc |", "| --- | --- | --- | --- | --- |"]
    for op in ops:
        first = op.doc.split(". ")[0].rstrip(".") if op.doc else ""
        lines.append(f"| `{op.name}` | {op.family or 'other'} | "
                     f"{', '.join(f'`{a}`' for a in op.aliases) or '-'} | "
                     f"{'yes' if op.differentiable else 'no'} | {_cell(first)} |")
    lines.append("")
    lines += _zoo_section()
    lines += _int8_section()
    for family in sorted(by_family):
        lines += [f"## {family}", ""]
        for op in by_family[family]:
            lines += _op_section(op)
    return "\n".join(lines).rstrip() + "\n"


def check(path: str = DOC_PATH) -> str | None:
    """None if ``path`` holds exactly :func:`render`'s text, else a message saying how to fix it."""
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current == render():
        return None
    return f"{os.path.relpath(path, ROOT)} is not current with the operator registry: run `{COMMAND}`"


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` only compare; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/operators.md is not current")
    args = parser.parse_args(argv)
    if args.check:
        problem = check()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        print(f"{os.path.relpath(DOC_PATH, ROOT)} is current")
        return 0
    with open(DOC_PATH, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {os.path.relpath(DOC_PATH, ROOT)} ({len(registry.all_ops())} operators)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
