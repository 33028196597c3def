"""MXNet 1.x symbol JSON: read (with validation and upgrade of old layouts) and write.

Writing reproduces MXNet 1.9.1's layout byte for byte (attributes sorted,
MXNet's spacing), so what xgraph saves MXNet loads and diffs stay small.
Reading validates the whole file before building anything: malformed JSON, bad
node references and wrong input counts raise :class:`GraphFormatError`; every
unknown operator in the file is reported at once in one
:class:`UnsupportedOperatorError`.

Older layouts are upgraded on load: ``param``/``attr`` instead of ``attrs``,
input entries without a version field, files without ``node_row_ptr`` or
``mxnet_version``.

    >>> import xgraph as mx
    >>> from xgraph.io.symbol_json import from_json, to_json
    >>> text = (mx.sym.var('a') * 3.0).tojson()
    >>> to_json(from_json(text)) == text
    True
"""
from __future__ import annotations

import json
from typing import Any

from ..errors import GraphFormatError, UnsupportedOperatorError, XGraphError
from ..graph import Entry, Graph, Node
from ..ops import registry
from ..ops.registry import HIDDEN_KEYS

MXNET_VERSION = 10901


# -- writing ------------------------------------------------------------------------
def _q(s: str) -> str:
    return json.dumps(s)


def _write_dict(d: dict[str, Any], indent: str) -> str:
    items = sorted(d.items())
    if len(items) == 1:
        k, v = items[0]
        return "{" + _q(k) + ": " + _q(v) + "}"
    inner = indent + "  "
    return "{\n" + ", \n".join(f"{inner}{_q(k)}: {_q(v)}" for k, v in items) + "\n" + indent + "}"


def _write_int_list(values: list[int], indent: str) -> str:
    if len(values) <= 10:
        return "[" + ", ".join(str(v) for v in values) + "]"
    inner = indent + "  "
    return "[\n" + ", \n".join(f"{inner}{v}" for v in values) + "\n" + indent + "]"


def _write_entries(entries: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(f"[{i}, {j}, 0]" for i, j in entries) + "]"


def node_attr_strings(node: Node) -> dict[str, str]:
    """A node's attributes as MXNet writes them: op attributes as given, then user attributes."""
    out = {}
    for k, v in node.attrs.items():
        out[k] = node.raw_attrs.get(k) or node.op.format_attr(k, v)
    out.update(node.user_attrs)
    return out


def to_json(graph: Graph) -> str:
    """MXNet 1.x symbol JSON text for ``graph``."""
    order = graph.topo_order()
    index = {id(n): i for i, n in enumerate(order)}
    parts = []
    row_ptr = [0]
    for n in order:
        fields = [f'"op": {_q("null" if n.op is None else n.op.name)}', f'"name": {_q(n.name)}']
        attrs = node_attr_strings(n)
        if attrs:
            fields.append(f'"attrs": {_write_dict(attrs, "      ")}')
        fields.append(f'"inputs": {_write_entries([(index[id(e.node)], e.index) for e in n.inputs])}')
        parts.append("    {\n" + ", \n".join("      " + f for f in fields) + "\n    }")
        row_ptr.append(row_ptr[-1] + n.num_outputs)
    arg_nodes = [i for i, n in enumerate(order) if n.op is None]
    heads = [(index[id(e.node)], e.index) for e in graph.outputs]
    return ("{\n  \"nodes\": [\n" + ", \n".join(parts) + "\n  ], \n"
            f"  \"arg_nodes\": {_write_int_list(arg_nodes, '  ')}, \n"
            f"  \"node_row_ptr\": {_write_int_list(row_ptr, '  ')}, \n"
            f"  \"heads\": {_write_entries(heads)}, \n"
            f"  \"attrs\": {{\"mxnet_version\": [\"int\", {MXNET_VERSION}]}}\n}}")


# -- reading ------------------------------------------------------------------------
def _entry(value: Any, where: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise GraphFormatError(f"{where}: an entry must be [node_id, output_index(, version)], got {value!r}")
    return value[0], value[1]


def _node_attrs(raw: dict, where: str) -> dict[str, str]:
    """A node's attributes, merging the old ``param``/``attr`` keys into ``attrs``."""
    attrs: dict[str, Any] = {}
    for key in ("param", "attr", "attrs"):
        part = raw.get(key)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise GraphFormatError(f"{where}: '{key}' must be an object, got {type(part).__name__}")
        attrs.update(part)
    for k, v in attrs.items():
        if not isinstance(v, str):
            if isinstance(v, (int, float, bool)):
                attrs[k] = str(v)
            else:
                raise GraphFormatError(f"{where}: attribute {k!r} must be a string, got {v!r}")
    return attrs


def parse_document(text: str | bytes) -> dict:
    """Parse and structurally check symbol JSON; raise GraphFormatError on anything malformed."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraphFormatError(f"symbol JSON is malformed: {exc}") from None
    if not isinstance(doc, dict):
        raise GraphFormatError("symbol JSON must be an object with 'nodes' and 'heads'")
    nodes, heads = doc.get("nodes"), doc.get("heads")
    if not isinstance(nodes, list) or not nodes:
        raise GraphFormatError("symbol JSON has no 'nodes' list")
    if not isinstance(heads, list) or not heads:
        raise GraphFormatError("symbol JSON has no 'heads' list")
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            raise GraphFormatError(f"node {i} is not an object")
        if not isinstance(n.get("op"), str) or not isinstance(n.get("name"), str):
            raise GraphFormatError(f"node {i} needs string 'op' and 'name' fields")
        if not isinstance(n.get("inputs", []), list):
            raise GraphFormatError(f"node {i} ('{n['name']}'): 'inputs' must be a list")
    return doc


def from_json(text: str | bytes) -> Graph:
    """Build a :class:`Graph` from MXNet symbol JSON, validating everything first."""
    doc = parse_document(text)
    raw_nodes = doc["nodes"]
    unknown = sorted({n["op"] for n in raw_nodes if n["op"] != "null" and not registry.exists(n["op"])})
    if unknown:
        raise UnsupportedOperatorError(
            f"the symbol uses {len(unknown)} unsupported operator(s): {', '.join(unknown)}", tuple(unknown))
    built: list[Node] = []
    for i, rn in enumerate(raw_nodes):
        name, op_name = rn["name"], rn["op"]
        where = f"node {i} ('{name}', op {op_name})"
        attrs = _node_attrs(rn, where)
        inputs = []
        for v in rn.get("inputs", []):
            src, idx = _entry(v, where)
            if not 0 <= src < i:
                raise GraphFormatError(f"{where}: input refers to node {src}, which is not an earlier node")
            if not 0 <= idx < built[src].num_outputs:
                raise GraphFormatError(f"{where}: input refers to output {idx} of node {src} "
                                       f"('{built[src].name}'), which has {built[src].num_outputs} output(s)")
            inputs.append(Entry(built[src], idx))
        if op_name == "null":
            if inputs:
                raise GraphFormatError(f"{where}: a variable cannot have inputs")
            # MXNet < 0.9 wrote hidden keys bare (lr_mult); its loader renames them __lr_mult__
            built.append(Node(None, name, user_attrs={(f"__{k}__" if k in HIDDEN_KEYS else k): v
                                                      for k, v in attrs.items()}))
            continue
        op = registry.get(op_name)
        try:
            typed, user, strings = op.parse_attrs(attrs, name)
        except XGraphError:
            raise
        params = op.with_defaults(typed)
        expected = op.input_names(params)
        if len(inputs) != len(expected):
            raise GraphFormatError(f"{where}: {len(inputs)} input(s) given, {len(expected)} expected "
                                   f"({', '.join(expected) or 'none'})")
        built.append(Node(op, name, typed, inputs, user_attrs=user, raw_attrs=strings))
    outputs = []
    for v in doc["heads"]:
        src, idx = _entry(v, "heads")
        if not 0 <= src < len(built):
            raise GraphFormatError(f"heads: node {src} does not exist")
        if not 0 <= idx < built[src].num_outputs:
            raise GraphFormatError(f"heads: node {src} ('{built[src].name}') has no output {idx}")
        outputs.append(Entry(built[src], idx))
    return Graph(outputs)
