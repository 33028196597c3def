"""MXNet 1.x symbol JSON: read (with validation and upgrade of old layouts) and write.

Writing reproduces MXNet 1.9.1's layout byte for byte (attributes sorted,
MXNet's spacing), so what xgraph saves MXNet loads and diffs stay small.
Reading validates the whole file before building anything: malformed JSON, bad
node references and wrong input counts raise :class:`GraphFormatError`; every
unknown operator in the file is reported at once in one
:class:`UnsupportedOperatorError`.

Older layouts are upgraded on load: ``param``/``attr`` instead of ``attrs``,
input entries without a version field, files without ``node_row_ptr`` or
``mxnet_version``, and, as MXNet's ``LoadLegacyJSON`` pass does for files of
an older ``mxnet_version`` (none means 0.8.0):

* hidden keys written without underscores (``ctx_group``, ``lr_mult``, ...) become
  ``__ctx_group__``; ``weight_lr_mult`` on an op moves to its ``weight`` variable
  as ``__lr_mult__`` (before 1.9.1);
* inputs missing from the file (pre-0.9 files stored no auxiliary states) are
  created as variables ``<node>_<input>`` carrying the node's attributes (before 0.9.0);
* variables feeding an op get the op's ``__init__`` hints (BatchNorm's moving
  statistics) unless they have one (before 0.9.4);
* ``argmax``/``argmin`` with ``axis=-1`` lose the axis (before 0.9.5).

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
from .json_text import parse_json

MXNET_VERSION = 10901
#: the version MXNet assumes for a file without ``attrs.mxnet_version``
LEGACY_VERSION = 800


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


def _write_entries(entries: list[tuple[int, ...]], indent: str) -> str:
    """Entries as ``[node, output, version]``; the version is 1 for inputs the op mutates (NNVM's rule).

    Like every list MXNet writes, more than ten items go one per line.
    """
    items = [f"[{e[0]}, {e[1]}, {e[2] if len(e) > 2 else 0}]" for e in entries]
    if len(items) <= 10:
        return "[" + ", ".join(items) + "]"
    inner = indent + "  "
    return "[\n" + ", \n".join(inner + it for it in items) + "\n" + indent + "]"


def node_attr_strings(node: Node) -> dict[str, str]:
    """A node's attributes as MXNet writes them: op attributes as given, then user attributes."""
    out = {}
    for k, v in node.attrs.items():
        out[k] = node.raw_attrs.get(k) or node.op.format_attr(k, v)
    out.update(node.user_attrs)
    return out


def to_json(graph: Graph, np_shape: bool = False) -> str:
    """MXNet 1.x symbol JSON text for ``graph``."""
    order = graph.topo_order()
    index = {id(n): i for i, n in enumerate(order)}
    parts = []
    row_ptr = [0]
    for n in order:
        fields = [f'"op": {_q("null" if n.op is None else n.op.name)}', f'"name": {_q(n.name)}']
        attrs = node_attr_strings(n)
        subgraphs = attrs.pop(SUBGRAPHS, None) if n.op is not None and SUBGRAPHS in n.op.schema else None
        if attrs:
            fields.append(f'"attrs": {_write_dict(attrs, "      ")}')
        mutated = n.aux_positions()
        ins = [(index[id(e.node)], e.index, int(pos in mutated and e.node.op is None))
               for pos, e in enumerate(n.inputs)]
        fields.append(f'"inputs": {_write_entries(ins, "      ")}')
        if subgraphs is not None:   # a fused node's nested graphs (MXNet's NodeAttrs::subgraphs)
            fields.append(f'"subgraphs": {subgraphs}')
        parts.append("    {\n" + ", \n".join("      " + f for f in fields) + "\n    }")
        row_ptr.append(row_ptr[-1] + n.num_outputs)
    arg_nodes = [i for i, n in enumerate(order) if n.op is None]
    heads = [(index[id(e.node)], e.index) for e in graph.outputs]
    # MXNet marks a graph saved under np_shape (where 0 in a shape is a zero-size dim)
    np_shape_attr = '\"is_np_shape\": [\"int\", 1], ' if np_shape else ""
    return ("{\n  \"nodes\": [\n" + ", \n".join(parts) + "\n  ], \n"
            f"  \"arg_nodes\": {_write_int_list(arg_nodes, '  ')}, \n"
            f"  \"node_row_ptr\": {_write_int_list(row_ptr, '  ')}, \n"
            f"  \"heads\": {_write_entries(heads, '  ')}, \n"
            f"  \"attrs\": {{{np_shape_attr}\"mxnet_version\": [\"int\", {MXNET_VERSION}]}}\n}}")


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
    doc = parse_json(text, GraphFormatError, "symbol JSON")
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


def file_version(doc: dict) -> int:
    """The file's ``attrs.mxnet_version`` (``["int", 10901]``), or 800 (0.8.0) when absent."""
    attrs = doc.get("attrs", {})
    if not isinstance(attrs, dict):
        raise GraphFormatError("symbol JSON: 'attrs' must be an object")
    v = attrs.get("mxnet_version")
    if v is None:
        return LEGACY_VERSION
    if (isinstance(v, list) and len(v) == 2 and v[0] == "int" and isinstance(v[1], int)
            and not isinstance(v[1], bool)):
        return v[1]
    raise GraphFormatError(f"symbol JSON: attrs.mxnet_version must be [\"int\", N], got {v!r}")


#: the most outputs one node may declare (SliceChannel's num_outputs ...): a file cannot make xgraph
#: build millions of output names
MAX_NODE_OUTPUTS = 1 << 16


def _check_counts(op: Any, params: dict, given: int, where: str) -> None:
    """Refuse attribute-driven input/output counts before anything builds lists of that size.

    A variadic op (``add_n``, ``Concat``) must declare exactly the inputs the file gives it.
    """
    if op.is_variadic(params):
        count = params[op.variadic]
        if not isinstance(count, int) or count != given:
            raise GraphFormatError(f"{where}: {op.variadic}={count!r} but the node has {given} input(s)")
    n_out = op.num_outputs(params)
    if not isinstance(n_out, int) or not 0 < n_out <= MAX_NODE_OUTPUTS:
        raise GraphFormatError(f"{where}: declares {n_out!r} outputs (xgraph reads 1 to {MAX_NODE_OUTPUTS})")


def _input_names(op: Any, attrs: dict[str, str], name: str, given: int) -> list[str] | None:
    """The op's input names for these attributes; None when they do not parse or the counts are
    wrong (both reported later)."""
    try:
        params = op.with_defaults(op.parse_attrs(attrs, name)[0])
        _check_counts(op, params, given, name)
        return op.input_names(params)
    except XGraphError:
        return None


def _hidden_suffix(key: str) -> tuple[str, str] | None:
    """``('weight', 'lr_mult')`` for ``weight_lr_mult``; None when ``key`` is no such form."""
    for hk in HIDDEN_KEYS:
        if len(key) > len(hk) + 1 and key.endswith(hk):
            return key[:len(key) - len(hk) - 1], hk
    return None


def _upgrade_hidden_keys(ops: list, names: list[str], attrs: list[dict], entries: list[list]) -> None:
    """MXNet's ``UpgradeJSON_FixParsing``: hidden keys without underscores get them, or move to inputs."""
    for i, a in enumerate(attrs):
        exact = [k for k in a if k in HIDDEN_KEYS]
        suffixed = {k: _hidden_suffix(k) for k in a if k not in HIDDEN_KEYS and ops[i] is not None}
        suffixed = {k: v for k, v in suffixed.items() if v is not None}
        for k in exact:
            a[f"__{k}__"] = a.pop(k)
        if not suffixed:
            continue
        arg_names = _input_names(ops[i], {k: v for k, v in a.items() if k not in suffixed}, names[i],
                                 len(entries[i]))
        for key, (arg, hk) in suffixed.items():
            if arg_names is None or arg not in arg_names or arg_names.index(arg) >= len(entries[i]):
                continue
            src = entries[i][arg_names.index(arg)][0]
            if 0 <= src < i and ops[src] is None:
                attrs[src][f"__{hk}__"] = a.pop(key)


def _upgrade_init_hints(ops: list, names: list[str], attrs: list[dict], entries: list[list]) -> None:
    """MXNet's ``UpgradeJSON_000903_000904``: variables feeding an op get its ``__init__`` hints."""
    for i, op in enumerate(ops):
        if op is None or not op.input_init:
            continue
        arg_names = _input_names(op, attrs[i], names[i], len(entries[i]))
        if arg_names is None:
            continue
        hints = op.init_hints(op.with_defaults(op.parse_attrs(attrs[i], names[i])[0]))
        for arg, (src, _) in zip(arg_names, entries[i]):
            if arg in hints and 0 <= src < i and ops[src] is None and "__init__" not in attrs[src]:
                attrs[src]["__init__"] = hints[arg]


def _upgrade_arg_axis(ops: list, attrs: list[dict]) -> None:
    """MXNet's ``UpgradeJSON_000904_000905``: argmax/argmin ``axis=-1`` meant "no axis" before 0.9.5."""
    for op, a in zip(ops, attrs):
        if op is not None and op.name in ("argmax", "argmin") and a.get("axis") == "-1":
            del a["axis"]


#: the node field (and attribute) holding a fused node's nested graphs
SUBGRAPHS = "subgraphs"


def _subgraphs(raw: dict, op: Any, where: str) -> tuple | None:
    """A node's ``subgraphs`` field read as nested graphs (None without one); errors name the node."""
    docs = raw.get(SUBGRAPHS)
    if docs is None:
        return None
    if op is None or SUBGRAPHS not in op.schema:
        raise GraphFormatError(f"{where}: has 'subgraphs', but {'a variable' if op is None else op.name} "
                               f"takes none")
    if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
        raise GraphFormatError(f"{where}: 'subgraphs' must be a non-empty list of graphs")
    from ..ops.mkldnn import Subgraph
    out = []
    for k, doc in enumerate(docs):
        try:
            out.append(Subgraph(json.dumps(doc)))
        except UnsupportedOperatorError as exc:
            raise UnsupportedOperatorError(f"{where}: subgraph {k}: {exc}", exc.ops) from None
        except XGraphError as exc:
            raise type(exc)(f"{where}: subgraph {k}: {exc}") from None
    return tuple(out)


def _nested_unknown(raw_nodes: list) -> list[tuple[str, str]]:
    """(op, where) of every unknown operator inside the nodes' ``subgraphs`` (at any depth)."""
    found, stack = [], [(raw_nodes, "")]
    while stack:
        nodes, outer = stack.pop()
        for i, n in enumerate(nodes):
            where = f"{outer}node {i} ('{n.get('name')}', op {n.get('op')})"
            if outer and n["op"] != "null" and not registry.exists(n["op"]):
                found.append((n["op"], outer[:-len(" > ")]))
            subs = n.get(SUBGRAPHS)
            for doc in subs if isinstance(subs, list) else []:
                inner = doc.get("nodes") if isinstance(doc, dict) else None
                if isinstance(inner, list) and all(isinstance(m, dict) and isinstance(m.get("op"), str)
                                                   for m in inner):
                    stack.append((inner, where + " > "))
    return sorted(set(found))


def from_json(text: str | bytes) -> Graph:
    """Build a :class:`Graph` from MXNet symbol JSON, validating everything first."""
    doc = parse_document(text)
    version = file_version(doc)
    raw_nodes = doc["nodes"]
    unknown = sorted({n["op"] for n in raw_nodes if n["op"] != "null" and not registry.exists(n["op"])})
    nested = _nested_unknown(raw_nodes)
    if unknown or nested:
        every = sorted(set(unknown) | {op for op, _ in nested})
        inside = "".join(f"; {op} inside the subgraph of {where}" for op, where in nested)
        raise UnsupportedOperatorError(
            f"the symbol uses {len(every)} unsupported operator(s): {', '.join(every)}{inside}", tuple(every))
    ops = [None if rn["op"] == "null" else registry.get(rn["op"]) for rn in raw_nodes]
    names = [rn["name"] for rn in raw_nodes]
    wheres = [f"node {i} ('{rn['name']}', op {rn['op']})" for i, rn in enumerate(raw_nodes)]
    attrs = [_node_attrs(rn, w) for rn, w in zip(raw_nodes, wheres)]
    for rn, op, a, w in zip(raw_nodes, ops, attrs, wheres):
        nested = _subgraphs(rn, op, w)
        if nested is not None:
            a[SUBGRAPHS] = nested
    entries = [[_entry(v, w) for v in rn.get("inputs", [])] for rn, w in zip(raw_nodes, wheres)]
    if version < MXNET_VERSION:
        _upgrade_hidden_keys(ops, names, attrs, entries)
    if version < 904:
        _upgrade_init_hints(ops, names, attrs, entries)
    if version < 905:
        _upgrade_arg_axis(ops, attrs)
    built: list[Node] = []
    for i, (name, op, where) in enumerate(zip(names, ops, wheres)):
        inputs = []
        for src, idx in entries[i]:
            if not 0 <= src < i:
                raise GraphFormatError(f"{where}: input refers to node {src}, which is not an earlier node")
            if not 0 <= idx < built[src].num_outputs:
                raise GraphFormatError(f"{where}: input refers to output {idx} of node {src} "
                                       f"('{built[src].name}'), which has {built[src].num_outputs} output(s)")
            inputs.append(Entry(built[src], idx))
        if op is None:
            if inputs:
                raise GraphFormatError(f"{where}: a variable cannot have inputs")
            built.append(Node(None, name, user_attrs=attrs[i]))
            continue
        typed, user, strings = op.parse_attrs(attrs[i], name)
        params = op.with_defaults(typed)
        _check_counts(op, params, len(inputs), where)
        try:
            expected = op.input_names(params)
        except UnsupportedOperatorError as exc:   # inputs that depend on a subgraph: name the node
            raise UnsupportedOperatorError(f"{where}: {exc}", exc.ops) from None
        except XGraphError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        if version < 900 and len(inputs) < len(expected):
            # pre-0.9 files did not store auxiliary states: create them as MXNet does
            hints = op.init_hints(params) if version < 904 else {}
            for arg in expected[len(inputs):]:
                var_attrs = dict(attrs[i])
                if arg in hints and "__init__" not in var_attrs:
                    var_attrs["__init__"] = hints[arg]
                inputs.append(Entry(Node(None, f"{name}_{arg}", user_attrs=var_attrs), 0))
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
