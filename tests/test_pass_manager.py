"""The pass manager: levels, user passes, the report, dumps, verify mode, speed on big graphs."""
from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import PassError
from xgraph.graph import Entry, Graph, Node
from xgraph.infer import infer
from xgraph.ops.constant import constant
from xgraph.passes import (PassContext, PassManager, Report, get_pass, level_pipeline, list_passes, optimize,
                           register_pass)
from xgraph.viz import to_dot

from pass_helpers import assert_same, run_graph


def _net():
    x, w = mx.sym.var("x"), mx.sym.var("w")
    h = mx.sym.FullyConnected(x, w, num_hidden=3, no_bias=True, name="fc")
    return mx.sym.Group([mx.sym.relu(h + h * 1.0), mx.sym.relu(h * 1.0 + h) + constant(np.ones((2, 3), np.float32)) * 0.0])


SHAPES = {"x": (2, 4), "w": (3, 4)}


def test_levels_and_their_pipelines():
    assert level_pipeline(0) == ()
    assert level_pipeline("O1") == ("dce", "cse", "fold_constants", "simplify")
    assert set(level_pipeline(2)) >= set(level_pipeline(1)) | {"drop_dropout", "fold_batchnorm",
                                                               "batchnorm_to_scale_shift"}
    assert {p.name: p.purpose for p in list_passes()}["fold_batchnorm"] == "inference-only"
    with pytest.raises(PassError, match="O0, O1, O2"):
        level_pipeline(7)
    with pytest.raises(PassError, match="unknown pass 'nope'.*cse"):
        PassManager(["nope"])


def test_o0_changes_nothing_and_o1_shrinks():
    g = _net().graph
    assert optimize(g, opt_level=0).graph is g
    res = optimize(g, opt_level=1, shapes=SHAPES)
    assert len(res.graph) < len(g)
    values = {"x": np.ones((2, 4), np.float32), "w": np.full((3, 4), 0.5, np.float32)}
    assert_same(run_graph(res.graph, values), run_graph(g, values))


def test_shapes_may_come_as_an_infer_result():
    g = _net().graph
    res = PassManager(1, verify=True).run(g, infer(g, SHAPES, {"x": "float32", "w": "float32"}))
    assert len(res.graph) < len(g)


def test_report_table_and_html():
    res = optimize(_net().graph, opt_level=1, shapes=SHAPES)
    text = str(res.report)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "pass", "purpose", "time", "(ms)", "nodes", "what", "changed"]
    assert [line.split()[1] for line in lines[1:]] == ["dce", "cse", "fold_constants", "simplify"]
    cse_row = next(r for r in res.report.records if r.name == "cse")
    assert cse_row.nodes_after < cse_row.nodes_before
    assert "merged" in cse_row.changed and "-1 elemwise_add" in cse_row.changed
    assert f"{cse_row.nodes_before}->{cse_row.nodes_after}" in text
    assert "scalar identity" in next(r for r in res.report.records if r.name == "simplify").changed
    assert res.report.total_seconds >= 0
    html = res.report._repr_html_()
    assert html.startswith("<table>") and "<td>cse</td>" in html
    assert "Report 4 passes" in repr(res.report)
    assert str(Report()) == "(no passes ran)"


def test_user_pass_registered_with_the_decorator_and_used_by_name():
    @register_pass("test_relu_to_abs_of_relu", purpose="training-safe")
    def relu_twice_is_relu(graph: Graph) -> Graph:
        """relu(relu(x)) -> relu(x)."""
        from xgraph.passes.rewrite import rewrite

        def rule(node, rw):
            inner = node.inputs[0] if node.inputs else None
            if node.op.name == "relu" and inner.node.op is not None and inner.node.op.name == "relu":
                return [inner]
            return None
        return rewrite(graph, rule)

    x = mx.sym.var("x")
    g = mx.sym.relu(mx.sym.relu(mx.sym.relu(x))).graph
    res = optimize(g, passes=["test_relu_to_abs_of_relu"], verify=True, shapes={"x": (3,)})
    assert [n.op.name for n in res.graph.op_nodes()] == ["relu"]
    assert get_pass("test_relu_to_abs_of_relu").doc == "relu(relu(x)) -> relu(x)."
    assert res.report.records[0].name == "test_relu_to_abs_of_relu"
    model = mx.compile(mx.sym.relu(mx.sym.relu(x)), passes=["cse", "test_relu_to_abs_of_relu"], x=(3,))
    np.testing.assert_allclose(np.asarray(model(x=np.array([-1, 0, 2], np.float32))[0]), [0, 0, 2])


def test_a_pass_may_take_the_context_and_inference_only_passes_skip_for_training():
    seen = {}

    @register_pass("test_inference_marker", purpose="inference-only")
    def marker(graph: Graph, ctx: PassContext) -> Graph:
        seen["shapes"] = dict(ctx.shapes)
        ctx.note("looked")
        return graph

    g = (mx.sym.var("x") * 2.0).graph
    res = optimize(g, passes=["test_inference_marker"], shapes={"x": (2,)})
    assert seen["shapes"] == {"x": (2,)} and "looked" in res.report.records[0].changed
    seen.clear()
    res = optimize(g, passes=["test_inference_marker"], for_training=True)
    assert not seen and res.report.records[0].skipped
    assert "skipped" in str(res.report)


def _broken_shape_pass(graph: Graph) -> Graph:
    """Replaces the output by a FullyConnected of another size: a wrong output shape."""
    from xgraph.ops import registry
    op = registry.get("FullyConnected")
    w = Node(None, "w", user_attrs={})
    fc = Node(op, "broken_fc", {"num_hidden": 7, "no_bias": True}, [graph.outputs[0], Entry(w, 0)])
    return Graph([Entry(fc, 0)])


def test_verify_names_the_broken_pass_and_dumps_before_and_after(tmp_path):
    register_pass("test_broken_shape")(_broken_shape_pass)
    x = mx.sym.var("x")
    g = mx.sym.FullyConnected(x, num_hidden=3, name="fc").graph
    with pytest.raises(PassError) as err:
        optimize(g, passes=["cse", "test_broken_shape"], verify=True, shapes={"x": (2, 4)}, dump_dir=tmp_path)
    msg = str(err.value)
    assert "pass 'test_broken_shape'" in msg and "shape" in msg
    paths = re.findall(r"(?:before|after): (\S+?\.json)", msg)
    assert len(paths) == 2 and all(os.path.exists(p) for p in paths)
    assert all(str(tmp_path) in p for p in paths)
    json.loads(open(paths[1]).read())
    # without dump_dir the dumps go to a temporary directory
    with pytest.raises(PassError) as err2:
        optimize(g, passes=["test_broken_shape"], verify=True, shapes={"x": (2, 4)})
    assert all(os.path.exists(p) for p in re.findall(r"(?:before|after): (\S+?\.json)", str(err2.value)))
    # without verify the broken graph goes through
    assert optimize(g, passes=["test_broken_shape"], shapes={"x": (2, 4)}).graph.outputs[0].node.name == "broken_fc"


def test_verify_catches_renamed_variables_and_dangling_entries():
    @register_pass("test_rename_var")
    def rename(graph: Graph) -> Graph:
        from xgraph.passes.rewrite import rewrite
        v = Node(None, "renamed_x")

        def rule(node, rw):
            return [Entry(node.replace(inputs=[Entry(v, 0)]), 0)]
        return rewrite(graph, rule)

    @register_pass("test_dangling")
    def dangling(graph: Graph) -> Graph:
        return Graph([Entry(graph.outputs[0].node, 5)])

    g = mx.sym.relu(mx.sym.var("x")).graph
    with pytest.raises(PassError, match="pass 'test_rename_var'.*renamed_x"):
        optimize(g, passes=["test_rename_var"], verify=True, shapes={"x": (2,)})
    with pytest.raises(PassError, match="pass 'test_dangling'.*output 5"):
        optimize(g, passes=["test_dangling"], verify=True, shapes={"x": (2,)})


def test_a_pass_that_raises_is_named():
    @register_pass("test_raises")
    def raises(graph: Graph) -> Graph:
        raise RuntimeError("boom")

    with pytest.raises(PassError, match="pass 'test_raises' raised RuntimeError: boom"):
        optimize(mx.sym.var("x").graph, passes=["test_raises"])


def test_dumps_are_named_in_pipeline_order(tmp_path):
    model = mx.compile(_net(), opt_level=1, dump_dir=tmp_path, x=(2, 4), w=(3, 4))
    names = sorted(os.listdir(tmp_path))
    assert names == ["00_input.dot", "00_input.json", "01_dce.dot", "01_dce.json", "02_cse.dot", "02_cse.json",
                     "03_fold_constants.dot", "03_fold_constants.json", "04_simplify.dot", "04_simplify.json",
                     "05_stablehlo.mlir", "06_xla_optimized_hlo.txt"]
    final = mx.sym.load(str(tmp_path / "04_simplify.json"))
    assert final.tojson() == model.symbol.tojson()
    assert "stablehlo" in (tmp_path / "05_stablehlo.mlir").read_text()
    assert "HloModule" in (tmp_path / "06_xla_optimized_hlo.txt").read_text()
    assert (tmp_path / "02_cse.dot").read_text().startswith("digraph")
    assert sorted(os.path.basename(p) for p in model.report.dump_files) == names


def test_to_dot_lists_every_node_and_edge():
    g = _net().graph
    dot = to_dot(g)
    assert dot.count("->") == sum(len(n.inputs) for n in g.topo_order()) + len(g.outputs)
    assert all(f'\\n{n.name}' in dot or f'"{n.name}' in dot for n in g.topo_order())


def _big_graph(n_blocks: int):
    """About 5 * n_blocks nodes, with duplicates for CSE and identities for simplify."""
    x = mx.sym.var("x")
    h = x
    for i in range(n_blocks):
        a = mx.sym.relu(h)
        b = mx.sym.relu(h)  # CSE
        h = (a + b) * 1.0   # simplify
        h = h * 0.5
    return h


def test_ten_thousand_nodes_through_o1_in_a_few_seconds():
    sym = _big_graph(2000)
    g = sym.graph
    assert len(g) >= 10_000
    t0 = time.perf_counter()
    res = optimize(g, opt_level=1, shapes={"x": (4,)})
    dt = time.perf_counter() - t0
    assert dt < 20, f"O1 on {len(g)} nodes took {dt:.1f} s"
    assert len(res.graph) == 1 + 3 * 2000
    xv = np.linspace(-1, 1, 4).astype(np.float32)
    small = _big_graph(30)
    assert_same(run_graph(optimize(small.graph, opt_level=1).graph, {"x": xv}), run_graph(small.graph, {"x": xv}))


def test_the_examples_in_docs_passes_md_run():
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "passes.md")
    with open(path, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "docs/passes.md", "exec"), {})
    assert get_pass("relu_relu").purpose == "training-safe"
