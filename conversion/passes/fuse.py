"""Fuse the categorical part of an exported graph into table lookups.

The converters emit, per step, a few nodes over string blocks: an imputer's
``Equal``/``Where``, a rare-label grouping's lookup, an encoder's lookup, a refusal
check per step. Each is cheap, but onnxruntime pays per node and string kernels copy
strings, so for one row the categorical chain of the house prices model cost more
than the whole numeric part.

Every string operation a converter emits is *value-blind* except against the
graph's own string constants: ``Equal`` with a constant, ``LabelEncoder`` keys,
``Where`` picking a constant. So any text that is not one of those constants (an
unseen category) behaves exactly like any other, and the whole categorical part,
from the ``cat`` input to the first tensors mixed with anything else, is a function
of each input column's value *within a finite vocabulary* (the constants, the
missing-value sentinel and one stand-in for "anything else"). When each of those
exit tensors' columns depends on one input column only, the part is replaced by:

* one ``LabelEncoder``: every ``cat`` cell -> its index in the vocabulary (the
  stand-in's index for anything else);
* per exit tensor: ``Gather`` of its source columns, ``Add`` of per-column offsets,
  ``Gather`` from a table computed at export time.

The tables are computed by running the original part with onnxruntime on every
vocabulary entry, so they hold exactly what the unfused graph computes. The
fusion is then *checked*: the unfused part and the tables must agree bit for bit on
random mixtures of vocabulary values, otherwise the graph is left as it is. Refusal
checks the tables show can never fire are dropped, and the remaining ones are merged
into one tensor.

Graphs whose categorical part uses another operator on strings, mixes input columns
or ends in string tensors (a transformer's ``cat_out``) are left unfused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from ..core.frame import MISSING, ExportState

#: element-wise operators (numpy broadcasting): output column c is computed from
#: column c of each input (column 0 of a one-column input)
_ELEMENTWISE = frozenset(
    {
        "Identity", "Equal", "Where", "LabelEncoder", "Mul", "Add", "Sub", "Div", "Cast", "IsNaN",
        "IsInf", "Not", "And", "Or", "Xor", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
        "Abs", "Neg", "Log", "Exp", "Floor", "Ceil", "Round", "Min", "Max", "Sqrt", "Pow",
    }
)  # fmt: skip
#: operators that may read region strings: they move or compare them, or look them up
#: by value (LabelEncoder), never parse or transform the text
_STRING_SAFE = frozenset({"Gather", "Concat", "Identity", "Equal", "Where", "LabelEncoder"})
ML = "ai.onnx.ml"
#: the default ONNX domain, as a node may spell it
ONNX_DOMAINS = ("", "ai.onnx")
#: the operators of a fused categorical part
FUSION_OPS = frozenset({"LabelEncoder", "Add", "Gather"})
#: rows of random vocabulary mixtures the fused tables are checked on
CHECK_ROWS = 4096
#: the int64 tensor of category ids in a fused graph (each text's index in the
#: vocabulary, ``len(vocabulary)`` for any other text), and the input of its ids variant
CAT_IDS = "cat_ids"
#: the ids made distinct across columns: ``CAT_IDS[:, j] + j * stride``
_FLAT = "cat_flat_ids"


@dataclass(frozen=True)
class Fusion:
    """What :func:`fuse_categorical` did, for the build log and the manifest."""

    nodes_removed: int
    nodes_added: int
    #: the texts the graph tells apart (``CAT_IDS`` holds their index); any other text is "unseen"
    vocabulary: list[str] = field(repr=False)
    checks_dropped: int

    def as_dict(self) -> dict[str, int]:
        return {
            "nodes_removed": self.nodes_removed,
            "nodes_added": self.nodes_added,
            "vocabulary": len(self.vocabulary),
            "checks_dropped": self.checks_dropped,
        }


def fuse_categorical(model: ModelProto, state: ExportState) -> Fusion | None:
    """Replace the categorical part of ``model`` (in place) by table lookups and
    update ``state``'s refusal tensors; return None (``model`` untouched) when the
    part cannot be fused exactly."""
    graph = model.graph
    if not any(i.name == "cat" for i in graph.input):
        return None
    constants = {t.name for t in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" and not n.input for o in n.output}
    region = _region(graph.node, constants)
    if not region:
        return None
    outside = [n for n in graph.node if not any(n is r for r in region)]
    consumed_outside = {i for n in outside for i in n.input}
    graph_outputs = {o.name for o in graph.output}
    refusal_tensors = set(state.tensors)
    exits = [
        o
        for n in region
        for o in n.output
        if o in consumed_outside or o in graph_outputs or o in refusal_tensors
    ]
    if not exits:
        return None
    run = _Runner(model, region)
    if run.text is None or not _safe(region, run.text) or any(e in run.text for e in exits):
        return None
    sources = _column_sources(region, run.widths, {t.name: t for t in graph.initializer}, exits)
    if sources is None:
        return None
    vocabulary = sorted({MISSING, *_string_constants(graph, region)})
    unseen = "__predictlib_unseen__"
    while unseen in vocabulary:
        unseen += "_"
    values = np.array([*vocabulary, unseen], dtype=object)
    width = run.width
    tables = _tabulate(run, exits, values, width, sources)
    if tables is None:
        return None
    # -- the fused nodes: cat -> CAT_IDS (vocabulary index) -> FLAT (+ column * stride) -> lookups
    stride = len(values)
    nodes: list[NodeProto] = [
        helper.make_node(
            "LabelEncoder",
            ["cat"],
            [CAT_IDS],
            domain="ai.onnx.ml",
            name=CAT_IDS,
            keys_strings=list(vocabulary),
            values_int64s=list(range(len(vocabulary))),
            default_int64=len(vocabulary),
        ),
        helper.make_node("Add", [CAT_IDS, "cat_id_offsets"], [_FLAT], name=_FLAT),
    ]
    inits = [numpy_helper.from_array(np.arange(width, dtype=np.int64) * stride, "cat_id_offsets")]
    plans, dropped = _merge_refusals(state, exits, tables, consumed_outside | graph_outputs)
    for k, (name, sources, table) in enumerate(plans):
        index = _FLAT
        if sources != list(range(width)):
            inits.append(numpy_helper.from_array(np.asarray(sources, dtype=np.int64), f"fused_columns_{k}"))
            index = f"fused_index_{k}"
            # a Gather (shape inference knows it); predictlib.build.passes.simplify makes it an ArrayFeatureExtractor
            nodes.append(
                helper.make_node("Gather", [_FLAT, f"fused_columns_{k}"], [index], axis=1, name=index)
            )
        if len(set(sources)) == len(sources):
            # laid out by source column: the ids index it as they are
            flat = np.zeros((width, stride), dtype=table.dtype)
            flat[sources] = table.T
        else:
            # a source feeds several columns: one row of the table per column, shifted to it
            flat = np.ascontiguousarray(table.T)
            shift = (np.arange(len(sources)) - np.asarray(sources)) * stride
            inits.append(numpy_helper.from_array(shift.astype(np.int64), f"fused_shift_{k}"))
            nodes.append(
                helper.make_node(
                    "Add", [index, f"fused_shift_{k}"], [f"fused_shifted_{k}"], name=f"fused_shifted_{k}"
                )
            )
            index = f"fused_shifted_{k}"
        flat = flat.reshape(-1)
        if flat.dtype == np.float64:
            # a hash lookup: about 3x faster than Gather on large batches (ai.onnx.ml 4)
            nodes.append(
                helper.make_node(
                    "LabelEncoder",
                    [index],
                    [name],
                    domain=ML,
                    name=f"fused_{k}",
                    keys_tensor=numpy_helper.from_array(np.arange(len(flat), dtype=np.int64), "keys"),
                    values_tensor=numpy_helper.from_array(flat, "values"),
                    default_tensor=numpy_helper.from_array(np.array([np.nan]), "default"),
                )
            )
            require_ml_opset(model, 4)
        else:
            inits.append(numpy_helper.from_array(flat, f"fused_table_{k}"))
            nodes.append(
                helper.make_node("Gather", [f"fused_table_{k}", index], [name], axis=0, name=f"fused_{k}")
            )
    kept = [n for n in graph.node if not any(n is r for r in region)]
    del graph.node[:]
    graph.node.extend(nodes + kept)
    graph.initializer.extend(inits)
    drop_unused(graph)
    return Fusion(len(region), len(nodes), vocabulary, dropped)


# ------------------------------------------------------------------------ the region


#: the operators a fused region may hold; another operator computed from ``cat`` alone
#: (an encoder's ``MatMul`` of its one-hot hits) ends the region: its inputs are exits
_FUSABLE = _ELEMENTWISE | {"Gather", "Concat", "LabelEncoder"}


def _region(nodes: Sequence[NodeProto], constants: set[str]) -> list[NodeProto]:
    """The nodes computed from ``cat`` (and constants) alone by fusable operators, in graph order."""
    tensors = {"cat"}
    region = []
    for node in nodes:
        inputs = [i for i in node.input if i]
        if node.op_type not in _FUSABLE or node.domain not in ("", ML):
            continue
        if any(i in tensors for i in inputs) and all(i in tensors or i in constants for i in inputs):
            region.append(node)
            tensors.update(o for o in node.output if o)
    return region


def _safe(region: Sequence[NodeProto], text: set[str]) -> bool:
    for node in region:
        reads_text = any(i in text for i in node.input)
        allowed = _STRING_SAFE if reads_text else _ELEMENTWISE | {"Gather", "Concat"}
        if node.op_type not in allowed or node.domain not in ("", "ai.onnx.ml"):
            return False
    return True


def _column_sources(
    region: Sequence[NodeProto],
    widths: dict[str, int],
    constants: dict[str, TensorProto],
    exits: Sequence[str],
) -> dict[str, list[int]] | None:
    """Per exit tensor, the ``cat`` column each of its columns is computed from, read
    from the graph's structure (a column computed from no input column gets 0); None
    when a column is computed from several, or when an operator's column mapping is
    not known (every region tensor must be a matrix of known width)."""
    deps: dict[str, list[frozenset[int]]] = {"cat": [frozenset({j}) for j in range(widths["cat"])]}

    def columns_of(name: str) -> list[frozenset[int]] | None:
        if name in deps:
            return deps[name]
        if name in constants:  # a constant depends on no column
            dims = list(constants[name].dims)
            return [frozenset()] * (dims[-1] if len(dims) == 2 else 1)
        return None

    for node in region:
        out = node.output[0]
        width = widths.get(out)
        if width is None or len(node.output) != 1:
            return None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        inputs = [columns_of(i) for i in node.input]
        if any(i is None for i in inputs):
            return None
        if node.op_type == "Gather" and node.input[0] in constants:  # a table lookup: element-wise
            result = inputs[1]
        elif node.op_type == "Gather" and axis in (1, -1) and node.input[1] in constants:
            picked = numpy_helper.to_array(constants[node.input[1]])
            if picked.ndim != 1:
                return None
            source = inputs[0]
            result = [source[int(c)] for c in picked]
        elif node.op_type == "Concat" and axis in (1, -1):
            result = [c for part in inputs for c in part]
        elif node.op_type in _ELEMENTWISE:
            if any(len(part) not in (1, width) for part in inputs if part):
                return None
            result = [
                frozenset().union(*(part[c if len(part) > 1 else 0] for part in inputs if part))
                for c in range(width)
            ]
        else:
            return None
        if result is None or len(result) != width:
            return None
        deps[out] = result
    sources = {}
    for e in exits:
        if any(len(c) > 1 for c in deps[e]):
            return None  # a column computed from several input columns
        sources[e] = [min(c) if c else 0 for c in deps[e]]
    return sources


def _string_constants(graph: onnx.GraphProto, region: Sequence[NodeProto]) -> set[str]:
    used = {i for n in region for i in n.input}
    found: set[str] = set()
    for init in graph.initializer:
        if init.name in used and init.data_type == TensorProto.STRING:
            found.update(s.decode("utf-8") for s in init.string_data)
    for node in region:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.STRING and attr.name.endswith("string"):
                found.add(attr.s.decode("utf-8"))
            elif attr.type == onnx.AttributeProto.STRINGS:
                found.update(s.decode("utf-8") for s in attr.strings)
            elif attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.STRING:
                found.update(s.decode("utf-8") for s in attr.t.string_data)
    return found


class _Runner:
    """The region as a model of its own, run by onnxruntime (outputs: every region tensor)."""

    def __init__(self, model: ModelProto, region: Sequence[NodeProto]) -> None:
        graph = model.graph
        cat = next(i for i in graph.input if i.name == "cat")
        self.width = int(cat.type.tensor_type.shape.dim[1].dim_value)
        outputs = [o for n in region for o in n.output if o]
        used = {i for n in region for i in n.input}
        #: the region's tensors holding text (None: the region cannot run on its own)
        self.text: set[str] | None = None
        try:
            inferred = onnx.shape_inference.infer_shapes(model).graph
        except Exception:  # noqa: BLE001 - no types, no fusion
            return
        known = [*inferred.input, *inferred.value_info, *inferred.output]
        elem = {v.name: v.type.tensor_type.elem_type for v in known}
        if any(not elem.get(o) for o in outputs):
            return
        #: the width of each region tensor that is a matrix of known width
        self.widths: dict[str, int] = {}
        for v in known:
            dims = v.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].HasField("dim_value"):
                self.widths[v.name] = int(dims[1].dim_value)
        sub = helper.make_graph(
            list(region),
            "categorical_region",
            [cat],
            [helper.make_tensor_value_info(o, elem[o], None) for o in outputs],
            [t for t in graph.initializer if t.name in used],
        )
        sub_model = helper.make_model(sub, opset_imports=list(model.opset_import))
        sub_model.ir_version = model.ir_version
        self.outputs = outputs
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self.session = ort.InferenceSession(
                sub_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            self.run(np.full((1, self.width), MISSING, dtype=object), outputs)
        except Exception:  # noqa: BLE001 - a region onnxruntime cannot run alone is left unfused
            return
        self.text = {"cat", *(o for o in outputs if elem[o] == TensorProto.STRING)}

    def run(self, cat: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
        return dict(zip(names, self.session.run(list(names), {"cat": cat}), strict=True))


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise identity (NaN equals NaN; +0.0 and -0.0 differ)."""
    if a.dtype.kind == "f" and b.dtype == a.dtype:
        bits = np.dtype(f"u{a.itemsize}")
        return (a.view(bits) == b.view(bits)) | (np.isnan(a) & np.isnan(b))
    return np.asarray(a == b)


def _tabulate(
    run: _Runner, exits: Sequence[str], values: np.ndarray, width: int, sources: dict[str, list[int]]
) -> dict[str, tuple[list[int], np.ndarray]] | None:
    """Per exit tensor: its columns' source columns and the ``[len(values), k]`` table
    of its values. Column ``i`` of an exit is computed from its source column alone, so
    running the region with that column set to each vocabulary entry (the others set to
    any text) gives all its values. Then a check: random mixtures of vocabulary values
    through the region and through the tables must agree bit for bit (None if not)."""
    n = len(values)
    unseen = values[-1]
    tables = {e: np.empty((n, len(sources[e])), dtype=object) for e in exits}
    for j in sorted({s for e in exits for s in sources[e]}):
        batch = np.full((n, width), unseen, dtype=object)
        batch[:, j] = values
        out = run.run(batch, exits)
        for e in exits:
            for i, source in enumerate(sources[e]):
                if source == j:
                    tables[e][:, i] = out[e][:, i]
    typed = {}
    for e in exits:
        dtype = run.run(np.full((1, width), unseen, dtype=object), [e])[e].dtype
        typed[e] = (sources[e], tables[e].astype(dtype))
    rng = np.random.default_rng(0)
    picks = rng.integers(n, size=(CHECK_ROWS, width))
    out = run.run(values[picks], exits)
    for e, (src, table) in typed.items():
        expected = table[picks[:, src], np.arange(len(src))]
        if out[e].shape != expected.shape or not _same(out[e], expected).all():
            return None
    return typed


def require_ml_opset(model: ModelProto, version: int) -> None:
    """Import ai.onnx.ml at ``version`` at least (its operators used here keep their
    meaning in later opsets)."""
    for opset in model.opset_import:
        if opset.domain == ML:
            opset.version = max(opset.version, version)
            return
    entry = model.opset_import.add()
    entry.domain, entry.version = ML, version


def ids_variant(model: ModelProto, width: int) -> ModelProto | None:
    """A copy of fused ``model`` whose input is ``cat_ids`` (int64 ``[N, width]``: each
    cell's index in :attr:`Fusion.vocabulary`, its length for any other text) instead of
    the texts: the Python runtime maps texts to ids itself, which spares onnxruntime the
    string tensor (and numpy the object array). None when the graph reads no category."""
    variant = ModelProto()
    variant.CopyFrom(model)
    graph = variant.graph
    kept = [n for n in graph.node if CAT_IDS not in n.output]
    if len(kept) == len(graph.node):
        return None  # the graph reads no category after all (every lookup was dead code)
    del graph.node[:]
    graph.node.extend(kept)
    inputs = [
        i if i.name != "cat" else helper.make_tensor_value_info(CAT_IDS, TensorProto.INT64, [None, width])
        for i in graph.input
    ]
    del graph.input[:]
    graph.input.extend(inputs)
    drop_unused(graph)
    onnx.checker.check_model(variant, full_check=True)
    return variant


def _merge_refusals(
    state: ExportState,
    exits: Sequence[str],
    tables: dict[str, tuple[list[int], np.ndarray]],
    needed: set[str],
) -> tuple[list[tuple[str, list[int], np.ndarray]], int]:
    """(tensor name, source columns, ``[len(values), k]`` table) per fused output; the region's
    refusal tensors become one, without the checks that can never fire."""
    plans = []
    merged_sources: list[int] = []
    merged_tables: list[np.ndarray] = []
    segments = []
    start = 0
    for tensor, w in zip(state.tensors, state.widths, strict=True):
        segments.append((tensor, state.checks[start : start + w]))
        start += w
    refusal_exits = {e for e in exits if e in set(state.tensors) and e not in needed}
    new_segments = []
    merged_checks = []
    merged_at = None
    for tensor, checks in segments:
        if tensor not in refusal_exits:
            new_segments.append((tensor, checks))
            continue
        src, table = tables[tensor]
        for i, check in enumerate(checks):
            if table[:, i].any():
                merged_sources.append(src[i])
                merged_tables.append(table[:, i])
                merged_checks.append(check)
        if merged_at is None:
            merged_at = len(new_segments)
            new_segments.append(("fused_refusals", merged_checks))
    dropped = sum(len(c) for t, c in segments if t in refusal_exits) - len(merged_checks)
    if merged_at is not None and not merged_checks:
        del new_segments[merged_at]
    state.tensors[:] = [t for t, _ in new_segments]
    state.widths[:] = [len(c) for _, c in new_segments]
    state.checks[:] = [c for _, cs in new_segments for c in cs]
    for e in exits:
        if e in refusal_exits:
            continue
        src, table = tables[e]
        plans.append((e, src, table))
    if merged_checks:
        plans.append(("fused_refusals", merged_sources, np.stack(merged_tables, axis=1)))
    return plans, dropped


def drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the initializers nothing reads and the value_info of tensors that no
    longer exist (after nodes were removed or replaced)."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    produced = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}
    infos = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(infos)
