"""The lean graph: what the Python runtime runs, one input and one refusal test.

``model.onnx`` keeps the interface every language uses (``num``, ``cat`` texts, ``dt``;
``refusals`` bool ``[N, n_checks]``, one column per check the manifest describes). For
one record onnxruntime's cost is per input and per node, so the Python runtime runs a
variant of the fused graph (``model.ids.onnx``, described by the manifest's ``lean``)
built from it by :func:`lean_variant`:

* **One input.** ``x`` (float64 ``[N, n_num + n_cat]``): the numeric columns, then each
  categorical cell's index in the vocabulary (as in ``cat_ids``), and ``dt`` as before.
  The numeric part reads a prefix of ``x``, the categorical part its suffix plus the
  per-column offsets; the clean-ups then widen the imputation onto ``x`` and compose the
  selections, so the merge costs no node.
* **One refusal test** instead of one node per check. The checks are rewritten, each step
  exact:

  - ``IsNaN(T)`` and ``IsInf(T)`` of one tensor: ``T`` is *poisoned*: a row is refused
    where ``T`` is not finite;
  - a logarithm's checks ``IsNaN(G)``, ``IsInf(G)``, ``G <= 0``: exactly where ``Log(G)``
    is not finite (``log(0) = -inf``, ``log(x < 0) = NaN``, ``log(inf) = inf``), so
    ``Log(G)`` is poisoned;
  - a fused refusal table (an unseen category): its ``True`` entries become NaN in the
    value table the same column is looked up in, when that value reaches a poisoned
    tensor;
  - ``And(A, Not(B))`` next to ``B``: ``A or B`` is the same test; ``IsInf(T)`` next to
    ``IsInf(Cast(T))`` (to float or double): the second holds the first;
  - a check, or a poisoned tensor, whose every column reaches another poisoned tensor
    through operators that keep a non-finite value non-finite (column selections,
    concatenations, ``Log``, ``Neg``, ``Abs``, ``Cast``, arithmetic with finite constants)
    is dropped: the other one fires whenever it does.

  What remains is tested once: a ``MatMul`` of the poisoned matrix with zeros is NaN
  exactly on a row holding a NaN or an infinity (``0 * inf = NaN``). When that matrix is
  the input of the estimator's ``MatMul`` and the rest of a regression is element-wise,
  the zeros become one more column of the estimator's weights and the test costs no node:
  ``prediction`` gets a second column, NaN on a refused row. Otherwise the graph has a
  ``refused`` output: that NaN column (float64 ``[N, 1]``), or boolean flags (``[N, m]``,
  any set flag refuses the row) when some checks are not numeric tests.
* **Selections into the weights.** The estimator's input is a selection of a
  concatenation; the selection is dropped and the weights get zero rows, when every
  column left out is finite by construction (category ids, a cast of a boolean) or
  reaches a poisoned tensor (a NaN there is a refused row).

The lean graph answers only *whether* a row is refused; which checks fired is read from
``model.onnx``'s ``refusals`` for the refused rows (the runtime runs it then). Every lean
graph is checked against the graph it came from on random mixtures of inputs
(:data:`CHECK_ROWS` rows): the same rows refused, bit for bit, and the outputs of the
other rows within ``conversion/tolerances.py``; otherwise the build ships the plain ids
graph (``inputs.category_ids``) as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from .. import tolerances
from .compact import compact as compact_graph
from .compact import identical
from .fold import fold_numeric
from .fuse import CAT_IDS, ML, ONNX_DOMAINS, require_ml_opset
from .simplify import drop_dead, graph_facts, simplify, tensor_width

#: the lean graph's one float64 input
LEAN_INPUT = "x"
#: its separate refusal output, when the test is not packed into ``prediction``
SIGNAL = "refused"
#: what one graph input costs onnxruntime per call, in nodes (about 0.9 us against 0.3 us
#: for one row): a lean graph with more nodes than that over the ids graph is not used
_NODES_FOR_AN_INPUT = 2
#: rows of random mixtures the lean graph is checked on against the graph it came from
CHECK_ROWS = 4096
_FLAT = "cat_flat_ids"
_FLOATS = frozenset({TensorProto.FLOAT, TensorProto.DOUBLE})
#: element-wise operators keeping a NaN or an infinity non-finite (with finite constants;
#: ``Cast`` to a float type only)
_KEEPS_NONFINITE = frozenset({"Log", "Neg", "Abs", "Identity", "Cast", "Sqrt", "Add", "Sub", "Mul", "Div"})
#: a selection goes into the weights only when it keeps at least this share of its input's
#: columns: for one row a node costs more than a wider matrix, for batches the columns do
#: (house_prices: casting the whole missing-value mask for 3 of its 79 columns made 2,048-row
#: runs 25% slower, for a node that cost 0.05 us per row)
_KEPT_SHARE = 0.5
#: element-wise operators a packed refusal column may pass through (NaN stays NaN)
_PACKABLE_TAIL = frozenset({"Add", "Sub", "Mul", "Div", "Exp", "Neg", "Abs", "Identity", "Sigmoid"})


@dataclass(frozen=True)
class Lean:
    """A lean graph and how to read it (the manifest's ``lean`` section)."""

    model: ModelProto
    #: where the refusal test is: output name, ``kind`` (``"nan"``: the column is not
    #: finite on a refused row; ``"flags"``: any set flag refuses the row) and ``column``
    #: (for ``"nan"``); None when the model never refuses
    signal: dict[str, Any] | None
    #: nodes of the ids graph it was made from, and its own
    nodes_before: int
    nodes_after: int

    def as_dict(self) -> dict[str, Any]:
        return {"nodes_before": self.nodes_before, "nodes_after": self.nodes_after, "signal": self.signal}


def lean_variant(
    ids_model: ModelProto, numeric: int, categorical: int, *, compact: bool = True
) -> Lean | None:
    """The lean graph of a fused graph's ids variant (``numeric`` and ``categorical``
    columns), or None when it cannot be built exactly (see the module docstring).
    ``compact``: the passes of :mod:`predictlib.build.passes.compact` run last (fewer
    nodes, the same bits: the compacted graph is checked bit for bit against the graph
    before them on the random mixtures, and is not used otherwise)."""
    lean = ModelProto()
    lean.CopyFrom(ids_model)
    if not _merge_inputs(lean, numeric, categorical):
        return None
    simplify(lean)
    fold_numeric(lean)
    signal = _lean_refusals(lean, numeric)
    drop_dead(lean)
    simplify(lean)
    fold_numeric(lean)
    try:
        onnx.checker.check_model(lean, full_check=True)
    except Exception:  # noqa: BLE001 - a graph the checker refuses is not shipped
        return None
    if len(lean.graph.node) > len(ids_model.graph.node) + _NODES_FOR_AN_INPUT:
        return None  # slower than the ids graph for one record
    if not _agrees(ids_model, lean, signal, numeric, categorical):
        return None
    if compact:
        lean = _compacted(ids_model, lean, numeric, categorical)
    return Lean(lean, signal, len(ids_model.graph.node), len(lean.graph.node))


# ------------------------------------------------------------------ one input


def _merge_inputs(model: ModelProto, numeric: int, categorical: int) -> bool:
    """``num`` and ``cat_ids`` become the prefix and suffix of one float64 ``x``."""
    graph = model.graph
    names = [i.name for i in graph.input]
    if CAT_IDS not in names:
        return False
    offsets_node = next(
        (n for n in graph.node if n.op_type == "Add" and n.input[0] == CAT_IDS and n.output[0] == _FLAT), None
    )
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    if offsets_node is None or offsets_node.input[1] not in constants:
        return False
    if any(CAT_IDS in n.input for n in graph.node if n is not offsets_node):
        return False
    offsets = np.concatenate(
        [np.zeros(numeric), constants[offsets_node.input[1]].reshape(-1).astype(np.float64)]
    )
    width = numeric + categorical
    front: list[NodeProto] = []
    inits = [
        numpy_helper.from_array(offsets.reshape(1, width), "lean_offsets"),
        numpy_helper.from_array(np.arange(numeric, width, dtype=np.int64), "lean_category_columns"),
    ]
    if numeric:
        inits.append(numpy_helper.from_array(np.arange(numeric, dtype=np.int64), "lean_numeric_columns"))
        front.append(
            helper.make_node("Gather", [LEAN_INPUT, "lean_numeric_columns"], ["num"], axis=1, name="num")
        )
    front += [
        helper.make_node("Add", [LEAN_INPUT, "lean_offsets"], ["lean_flat"], name="lean_flat"),
        helper.make_node("Gather", ["lean_flat", "lean_category_columns"], [_FLAT], axis=1, name=_FLAT),
    ]
    kept = [n for n in graph.node if n is not offsets_node]
    if not _ids_as_floats(model, kept, constants):
        return False
    del graph.node[:]
    graph.node.extend(front + kept)
    graph.initializer.extend(inits)
    inputs = [helper.make_tensor_value_info(LEAN_INPUT, TensorProto.DOUBLE, [None, width])]
    inputs += [i for i in graph.input if i.name not in ("num", CAT_IDS)]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]
    return True


def _ids_as_floats(model: ModelProto, nodes: list[NodeProto], constants: dict[str, np.ndarray]) -> bool:
    """Retype the fused lookups (in place) for float64 ids: selections keep them, an
    ``Add`` of int64 offsets gets float64 ones, a ``LabelEncoder`` float64 keys, a
    ``Gather`` of a table an int64 ``Cast`` of its index. False for any other reader."""
    graph = model.graph
    floats = {_FLAT}
    added: list[tuple[int, NodeProto]] = []
    for position, node in enumerate(nodes):
        reads = [i for i in node.input if i in floats]
        if not reads:
            continue
        op = node.op_type
        if (
            op in ("Gather", "ArrayFeatureExtractor")
            and node.input[0] in floats
            and node.input[1] in constants
        ):
            floats.add(node.output[0])
        elif op == "Add" and node.input[1] in constants and node.input[0] in floats:
            name = f"{node.output[0]}_as_float"
            graph.initializer.append(
                numpy_helper.from_array(constants[node.input[1]].astype(np.float64), name)
            )
            node.input[1] = name
            floats.add(node.output[0])
        elif op == "LabelEncoder" and node.domain == ML:
            keys = next((a for a in node.attribute if a.name == "keys_tensor"), None)
            if keys is None or keys.t.data_type != TensorProto.INT64:
                return False
            as_float = numpy_helper.to_array(keys.t).astype(np.float64)
            keys.t.CopyFrom(numpy_helper.from_array(as_float, keys.t.name or "keys"))
            require_ml_opset(model, 4)
        elif op == "Gather" and node.input[1] in floats and node.input[0] in constants and len(reads) == 1:
            index = f"{node.input[1]}_as_int"
            added.append((position, helper.make_node("Cast", [node.input[1]], [index], to=TensorProto.INT64)))
            node.input[1] = index
        else:
            return False
    for k, (position, cast) in enumerate(added):
        nodes.insert(position + k, cast)
    return True


# ------------------------------------------------------------------ the refusal test


@dataclass
class _Facts:
    types: dict[str, Any]
    constants: dict[str, np.ndarray]
    producer: dict[str, NodeProto]
    consumers: dict[str, list[NodeProto]]

    @classmethod
    def of(cls, model: ModelProto) -> _Facts | None:
        found = graph_facts(model)
        if found is None:
            return None
        consumers: dict[str, list[NodeProto]] = defaultdict(list)
        for node in model.graph.node:
            for name in node.input:
                consumers[name].append(node)
        return cls(found[0], found[1], found[2], consumers)

    def width(self, tensor: str) -> int | None:
        return tensor_width(self.types, tensor)

    def check(self, tensor: str) -> tuple[str, str] | None:
        """(kind, tested tensor) of a check tensor: ``nan``, ``inf``, ``le0``."""
        node = self.producer.get(tensor)
        if node is None or node.domain not in ONNX_DOMAINS:
            return None
        if node.op_type == "IsNaN":
            return "nan", node.input[0]
        if node.op_type == "IsInf" and all(a.i == 1 for a in node.attribute):
            return "inf", node.input[0]
        if node.op_type == "LessOrEqual" and node.input[1] in self.constants:
            bound = self.constants[node.input[1]]
            if bound.size == 1 and float(bound.reshape(-1)[0]) == 0.0:
                return "le0", node.input[0]
        return None


def _lean_refusals(model: ModelProto, numeric: int) -> dict[str, Any] | None:
    """Replace the ``refusals`` output by one test (see the module docstring); returns
    the signal's description, None when the graph has no refusals."""
    graph = model.graph
    if not any(o.name == "refusals" for o in graph.output):
        return None
    facts = _Facts.of(model)
    if facts is None:
        return None
    concat = facts.producer.get("refusals")
    checks = list(concat.input) if concat is not None and concat.op_type == "Concat" else ["refusals"]
    checks = _simplify_flags(facts, list(dict.fromkeys(checks)))
    poisons, flags = _poisons(facts, checks)
    every_poison = list(poisons)
    poisons, flags = _poison_tables(facts, poisons, flags)
    poisons, flags = _drop_covered(facts, poisons, flags)
    outputs = [o for o in graph.output if o.name != "refusals"]
    del graph.output[:]
    graph.output.extend(outputs)
    if not flags and len(poisons) == 1:
        graph.output.append(helper.make_tensor_value_info(poisons[0], TensorProto.DOUBLE, None))
        drop_dead(model)  # the checks go; the poisoned tensor stays (an output for now)
        del graph.output[-1]
    packed = _pack(model, poisons, every_poison, numeric) if not flags and len(poisons) == 1 else None
    if packed is not None:
        return packed
    nodes: list[NodeProto] = []
    zeros: list[str] = []
    for k, poison in enumerate(poisons):
        width = facts.width(poison)
        assert width is not None
        graph.initializer.append(numpy_helper.from_array(np.zeros((width, 1)), f"lean_zeros_{k}"))
        zeros.append(f"lean_test_{k}")
        nodes.append(helper.make_node("MatMul", [poison, f"lean_zeros_{k}"], [zeros[-1]], name=zeros[-1]))
    if len(zeros) > 1:
        nodes.append(helper.make_node("Sum", zeros, ["lean_test"], name="lean_test"))
        zeros = ["lean_test"]
    if flags:
        if zeros:
            nodes.append(helper.make_node("IsNaN", zeros, ["lean_test_flag"], name="lean_test_flag"))
            flags.append("lean_test_flag")
        if len(flags) == 1 and not nodes:
            _rename(graph, flags[0], SIGNAL)
        else:
            nodes.append(helper.make_node("Concat", flags, [SIGNAL], axis=1, name=SIGNAL))
        graph.node.extend(nodes)
        graph.output.append(helper.make_tensor_value_info(SIGNAL, TensorProto.BOOL, [None, None]))
        return {"output": SIGNAL, "kind": "flags"}
    nodes.append(helper.make_node("Identity", zeros, [SIGNAL], name=SIGNAL))
    graph.node.extend(nodes)
    graph.output.append(helper.make_tensor_value_info(SIGNAL, TensorProto.DOUBLE, [None, 1]))
    return {"output": SIGNAL, "kind": "nan", "column": 0}


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Tensor ``old`` is called ``new`` (its producer and readers)."""
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]


def _simplify_flags(facts: _Facts, checks: list[str]) -> list[str]:
    """``And(A, Not(B))`` next to ``B`` is ``A``; ``IsInf(T)`` next to ``IsInf(Cast(T))`` goes."""
    out = []
    for tensor in checks:
        node = facts.producer.get(tensor)
        if node is not None and node.op_type == "And" and node.domain in ONNX_DOMAINS:
            a, b = node.input
            negated = facts.producer.get(b)
            if negated is not None and negated.op_type == "Not" and negated.input[0] in checks:
                tensor = a
        out.append(tensor)
    out = list(dict.fromkeys(out))
    kept = []
    for tensor in out:
        kind = facts.check(tensor)
        if kind is not None and kind[0] == "inf":
            held = False
            for other in out:
                other_kind = facts.check(other)
                if other_kind is None or other_kind[0] != "inf":
                    continue
                cast = facts.producer.get(other_kind[1])
                if (
                    cast is not None
                    and cast.op_type == "Cast"
                    and cast.input[0] == kind[1]
                    and facts.types.get(other_kind[1]) is not None
                    and facts.types[other_kind[1]].elem_type in (TensorProto.FLOAT, TensorProto.DOUBLE)
                ):
                    held = True
            if held:
                continue
        kept.append(tensor)
    return kept


def _poisons(facts: _Facts, checks: list[str]) -> tuple[list[str], list[str]]:
    """The tensors tested for NaN and infinity both (and the logarithms tested for
    NaN, infinity and <= 0), and the checks left as flags."""
    tested: dict[str, set[str]] = defaultdict(set)
    by_tensor: dict[str, list[str]] = defaultdict(list)
    for check in checks:
        kind = facts.check(check)
        if kind is not None:
            tested[kind[1]].add(kind[0])
            by_tensor[kind[1]].append(check)
    poisons: list[str] = []
    done: set[str] = set()
    for tensor, kinds in tested.items():
        if facts.types.get(tensor) is None or facts.types[tensor].elem_type != TensorProto.DOUBLE:
            continue
        if kinds == {"nan", "inf"}:
            poisons.append(tensor)
            done.update(by_tensor[tensor])
        elif kinds == {"nan", "inf", "le0"}:
            log = next(
                (
                    n
                    for n in facts.consumers.get(tensor, [])
                    if n.op_type == "Log" and n.domain in ONNX_DOMAINS
                ),
                None,
            )
            if log is not None:
                poisons.append(log.output[0])
                done.update(by_tensor[tensor])
    return poisons, [c for c in checks if c not in done]


def _poison_tables(facts: _Facts, poisons: list[str], flags: list[str]) -> tuple[list[str], list[str]]:
    """A fused refusal table (``Gather(bool table, ids)``) whose every column is also
    looked up in a float64 value table reaching a poisoned tensor: its refusals become
    NaN values there, and the table goes."""
    reaches = _Reach(facts, poisons)
    left = []
    for flag in flags:
        lookup = facts.producer.get(flag)
        index = facts.producer.get(lookup.input[1]) if lookup is not None and len(lookup.input) == 2 else None
        if index is not None and index.op_type == "Cast":
            index = facts.producer.get(index.input[0])
        if (
            lookup is None
            or lookup.op_type != "Gather"
            or lookup.input[0] not in facts.constants
            or facts.constants[lookup.input[0]].dtype != np.bool_
            or index is None
            or index.op_type not in ("Gather", "ArrayFeatureExtractor")
            or index.input[1] not in facts.constants
            or not _poison_values(facts, reaches, lookup, index)
        ):
            left.append(flag)
    return poisons, left


def _poison_values(facts: _Facts, reaches: _Reach, lookup: NodeProto, index: NodeProto) -> bool:
    """NaN in the value table of each refused (column, id) of ``lookup``'s table, when
    every refused column's value reaches a poisoned tensor (the table edited in place)."""
    table = facts.constants[lookup.input[0]].reshape(-1)
    columns = facts.constants[index.input[1]].reshape(-1)
    flat = index.input[0]
    for encoder in facts.consumers.get(flat, []):
        values_of = _value_lookup(facts, encoder, flat)
        if values_of is None:
            continue
        node, value_columns, out = values_of
        keys_attr = next(a for a in node.attribute if a.name == "keys_tensor")
        values_attr = next(a for a in node.attribute if a.name == "values_tensor")
        keys = numpy_helper.to_array(keys_attr.t)
        values = numpy_helper.to_array(values_attr.t).copy()
        if len(keys) != len(table) or not np.array_equal(keys, np.arange(len(table), dtype=keys.dtype)):
            continue
        positions = {int(c): p for p, c in enumerate(value_columns)}
        if not all(int(c) in positions and reaches.column(out, positions[int(c)]) for c in columns):
            continue
        stride = len(table) // max(int(facts.width(flat) or 1), 1)
        for c in columns:
            block = slice(int(c) * stride, (int(c) + 1) * stride)
            values[block][table[block]] = np.nan
        values_attr.t.CopyFrom(numpy_helper.from_array(values, values_attr.t.name or "values"))
        return True
    return False


def _value_lookup(facts: _Facts, node: NodeProto, flat: str) -> tuple[NodeProto, np.ndarray, str] | None:
    """(LabelEncoder, the flat columns it looks up, its output) for a float64 lookup of
    columns of ``flat`` (directly, or through one column selection)."""
    columns: np.ndarray | None = None
    encoder = node
    if node.op_type in ("Gather", "ArrayFeatureExtractor") and node.input[1] in facts.constants:
        columns = facts.constants[node.input[1]].reshape(-1)
        users = facts.consumers.get(node.output[0], [])
        if len(users) != 1:
            return None
        encoder = users[0]
    if encoder.op_type != "LabelEncoder" or encoder.domain != ML:
        return None
    if columns is None:
        width = facts.width(flat)
        if width is None:
            return None
        columns = np.arange(width)
    values = next((a for a in encoder.attribute if a.name == "values_tensor"), None)
    if values is None or values.t.data_type != TensorProto.DOUBLE:
        return None
    return encoder, columns, encoder.output[0]


class _Reach:
    """Which columns reach a poisoned tensor through operators keeping non-finite
    values non-finite (see the module docstring)."""

    def __init__(self, facts: _Facts, poisons: Sequence[str], exclude: str | None = None) -> None:
        self.facts = facts
        self.poisons = set(poisons) - ({exclude} if exclude else set())
        self.memo: dict[tuple[str, int], bool] = {}

    def column(self, tensor: str, column: int, depth: int = 0) -> bool:
        key = (tensor, column)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = False  # no cycles in a graph; guards the recursion
        found = tensor in self.poisons or (
            depth < 64 and any(self.column(t, c, depth + 1) for t, c in self._next(tensor, column))
        )
        self.memo[key] = found
        return found

    def back(self, tensor: str, column: int, depth: int = 0) -> bool:
        """Whether the column, or a column it is a copy of (through concatenations and
        selections), reaches a poisoned tensor."""
        if self.column(tensor, column):
            return True
        node = self.facts.producer.get(tensor)
        if node is None or depth > 16:
            return False
        if node.op_type == "Concat" and _axis(node) in (1, -1):
            offset = 0
            for part in node.input:
                width = self.facts.width(part) or 0
                if column < offset + width:
                    return self.back(part, column - offset, depth + 1)
                offset += width
            return False
        indices = _indices(self.facts, node)
        if indices is not None and column < len(indices):
            return self.back(node.input[0], int(indices[column]), depth + 1)
        return False

    def tensor(self, tensor: str) -> bool:
        """Whether every column of ``tensor`` (or the column it copies) reaches one."""
        width = self.facts.width(tensor)
        return width is not None and all(self.back(tensor, c) for c in range(width))

    def _next(self, tensor: str, column: int) -> Iterator[tuple[str, int]]:
        facts = self.facts
        for node in facts.consumers.get(tensor, []):
            if node.domain not in (*ONNX_DOMAINS, ML) or len(node.output) != 1:
                continue
            out, op = node.output[0], node.op_type
            if op in ("Gather", "ArrayFeatureExtractor") and node.input[0] == tensor:
                indices = facts.constants.get(node.input[1])
                axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                if indices is None or (op == "Gather" and axis not in (1, -1)):
                    continue
                yield from ((out, k) for k, c in enumerate(indices.reshape(-1)) if int(c) == column)
            elif op == "Concat" and next((a.i for a in node.attribute if a.name == "axis"), 0) in (1, -1):
                offset = 0
                for part in node.input:
                    if part == tensor:
                        yield out, offset + column
                    offset += facts.width(part) or 0
            elif op in _KEEPS_NONFINITE and node.domain in ONNX_DOMAINS:
                if op == "Cast" and next((a.i for a in node.attribute if a.name == "to"), 0) not in _FLOATS:
                    continue  # a cast to an integer turns NaN into a number
                others = [i for i in node.input if i != tensor]
                constant = all(o in facts.constants and np.isfinite(facts.constants[o]).all() for o in others)
                if constant and facts.width(out) == facts.width(tensor):
                    yield out, column


def _drop_covered(facts: _Facts, poisons: list[str], flags: list[str]) -> tuple[list[str], list[str]]:
    """Drop the poisoned tensors and the NaN / infinity checks whose every column reaches
    another poisoned tensor."""
    kept = list(poisons)
    for poison in list(poisons):
        if _Reach(facts, kept, exclude=poison).tensor(poison):
            kept.remove(poison)
    reach = _Reach(facts, kept)
    left = []
    for flag in flags:
        kind = facts.check(flag)
        if kind is not None and kind[0] in ("nan", "inf") and reach.tensor(kind[1]):
            continue
        left.append(flag)
    return kept, left


# ------------------------------------------------------------------ packing


def _pack(
    model: ModelProto, poisons: list[str], every_poison: list[str], numeric: int
) -> dict[str, Any] | None:
    """With one poisoned matrix feeding the estimator's ``MatMul`` and an element-wise
    tail to ``prediction``: the selections before it go into the weights (when allowed,
    see :func:`_widen_input`), the weights get a zero column and ``prediction`` a second
    column, NaN on a refused row. Returns that signal, None when this does not apply."""
    facts = _Facts.of(model)
    if facts is None:
        return None
    (poison,) = poisons
    users = facts.consumers.get(poison, [])
    matmul = next((n for n in users if n.op_type == "MatMul" and n.input[0] == poison), None)
    if matmul is None or matmul.input[1] not in facts.constants or len(users) != 1:
        return None
    weights = facts.constants[matmul.input[1]]
    if weights.ndim != 2 or weights.shape[1] != 1 or not np.isfinite(weights).all():
        return None
    tail = _tail(facts, matmul.output[0])
    if tail is None:
        return None
    source, rows = _widen_input(model, facts, poison, weights, [*every_poison, poison], numeric)
    # _widen_input may reorder the graph's nodes (copies): find them again by output
    by_output = {n.output[0]: n for n in model.graph.node if n.output}
    matmul = by_output[matmul.output[0]]
    packed = np.concatenate([rows, np.zeros((rows.shape[0], 1))], axis=1)
    name = f"{matmul.output[0]}_lean_weights"
    model.graph.initializer.append(numpy_helper.from_array(packed, name))
    matmul.input[0], matmul.input[1] = source, name
    for old, constant in tail:
        if constant is None:
            continue
        node = by_output[old.output[0]]
        value = facts.constants[constant]
        # the test's column gets the neutral operand (0 added, times 1): it stays 0 on an
        # accepted row whatever the constants (exp(0) = 1, never an overflow), NaN elsewhere
        neutral = 1.0 if node.op_type in ("Mul", "Div") else 0.0
        wider = np.array([[float(value.reshape(-1)[0]), neutral]])
        replaced = f"{constant}_lean"
        model.graph.initializer.append(numpy_helper.from_array(wider.astype(value.dtype), replaced))
        node.input[list(node.input).index(constant)] = replaced
    for output in model.graph.output:
        if output.name == "prediction":
            output.CopyFrom(helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, [None, 2]))
    del model.graph.value_info[:]
    return {"output": "prediction", "kind": "nan", "column": 1}


def _widen_input(
    model: ModelProto, facts: _Facts, poison: str, weights: np.ndarray, poisons: list[str], numeric: int
) -> tuple[str, np.ndarray]:
    """The tensor the estimator's ``MatMul`` reads, and its weights: a selection before it
    (of a concatenation, whose parts may be selections or casts of selections too) goes
    into zero rows of the weights when every column it leaves out is finite by
    construction or reaches a poisoned tensor (then a NaN there is a refused row), and
    it keeps at least :data:`_KEPT_SHARE` of its input's columns."""
    selection = facts.producer.get(poison)
    indices = _indices(facts, selection)
    if selection is None or indices is None:
        return poison, weights
    wide = selection.input[0]
    width = facts.width(wide)
    finite = _Finite(facts, numeric)
    reach = _Reach(facts, poisons)

    def allowed(tensor: str, columns: set[int], w: int) -> bool:
        return all(j in columns or finite.column(tensor, j) or reach.back(tensor, j) for j in range(w))

    picked = [int(i) for i in indices]
    if (
        width is None
        or len(set(picked)) != len(picked)
        or len(picked) < width * _KEPT_SHARE
        or not allowed(wide, set(picked), width)
    ):
        return poison, weights
    rows = np.zeros((width, weights.shape[1]))
    rows[picked] = weights
    join = facts.producer.get(wide)
    if (
        join is None
        or join.op_type != "Concat"
        or _axis(join) not in (1, -1)
        or len(facts.consumers[wide]) != 1
    ):
        return wide, rows
    # the parts of the concatenation: a selection (or a cast of one) read whole
    parts, blocks, offset = [], [], 0
    for part in join.input:
        w = facts.width(part) or 0
        block = rows[offset : offset + w]
        offset += w
        inner, cast = facts.producer.get(part), None
        if inner is not None and inner.op_type == "Cast" and len(facts.consumers[part]) == 1:
            cast, inner = inner, facts.producer.get(inner.input[0])
        chosen = _indices(facts, inner)
        source = inner.input[0] if inner is not None else None
        source_width = facts.width(source) if source is not None else None
        if (
            chosen is None
            or source is None
            or source_width is None
            or len(facts.consumers[inner.output[0]]) != 1
            or len(set(chosen.tolist())) != len(chosen)
            or len(chosen) < source_width * _KEPT_SHARE
            or not all(
                j in set(chosen.tolist())
                or (cast is not None and _bool(facts, source))
                or (cast is None and (finite.column(source, j) or reach.back(source, j)))
                for j in range(source_width)
            )
        ):
            parts.append(part)
            blocks.append(block)
            continue
        wide_block = np.zeros((source_width, rows.shape[1]))
        wide_block[chosen] = block
        if cast is not None:
            name = f"{part}_whole"
            model.graph.node.append(
                helper.make_node(
                    "Cast", [source], [name], to=next(a.i for a in cast.attribute if a.name == "to")
                )
            )
            parts.append(name)
        else:
            parts.append(source)
        blocks.append(wide_block)
    if parts == list(join.input):
        return wide, rows
    join.input[:] = parts
    _reorder(model)
    return wide, np.concatenate(blocks, axis=0)


def _indices(facts: _Facts, node: NodeProto | None) -> np.ndarray | None:
    """The constant column indices of a selection node (Gather on axis 1 or
    ArrayFeatureExtractor), None for any other node."""
    if node is None or len(node.input) != 2 or node.input[1] not in facts.constants:
        return None
    if node.op_type == "Gather" and _axis(node) in (1, -1):
        pass
    elif node.op_type != "ArrayFeatureExtractor":
        return None
    indices = facts.constants[node.input[1]].reshape(-1)
    return indices.astype(np.int64) if indices.size and (indices >= 0).all() else None


def _bool(facts: _Facts, tensor: str) -> bool:
    kind = facts.types.get(tensor)
    return kind is not None and kind.elem_type == TensorProto.BOOL


def _reorder(model: ModelProto) -> None:
    """Sort the nodes topologically (nodes appended above read tensors made earlier)."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    pending = list(graph.node)
    ordered: list[NodeProto] = []
    while pending:
        progress = False
        for node in list(pending):
            if all(i in ready or not i for i in node.input):
                ordered.append(node)
                ready.update(node.output)
                pending.remove(node)
                progress = True
        if not progress:
            raise ValueError("the graph has a cycle")
    del graph.node[:]
    graph.node.extend(ordered)


def _axis(node: NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 0)


def _tail(facts: _Facts, tensor: str) -> list[tuple[NodeProto, str | None]] | None:
    """The element-wise path from ``tensor`` to the ``prediction`` output (each node and
    its constant operand), None when another operator or reader is on the way."""
    path: list[tuple[NodeProto, str | None]] = []
    while tensor != "prediction":
        users = facts.consumers.get(tensor, [])
        if len(users) != 1:
            return None
        node = users[0]
        if node.op_type not in _PACKABLE_TAIL or node.domain not in ONNX_DOMAINS or len(node.output) != 1:
            return None
        others = [i for i in node.input if i != tensor]
        if any(o not in facts.constants for o in others) or len(others) > 1:
            return None
        constant = others[0] if others else None
        if constant is not None:
            value = facts.constants[constant]
            if value.size != 1 or value.dtype != np.float64:
                return None
        path.append((node, constant))
        tensor = node.output[0]
    return path


class _Finite:
    """Columns finite by construction: category ids (``x``'s suffix), casts of booleans,
    selections and concatenations of finite columns, imputations of finite columns."""

    def __init__(self, facts: _Facts, numeric: int) -> None:
        self.facts = facts
        self.numeric = numeric
        self.memo: dict[tuple[str, int], bool] = {}

    def column(self, tensor: str, column: int) -> bool:
        key = (tensor, column)
        if key not in self.memo:
            self.memo[key] = False
            self.memo[key] = self._finite(tensor, column)
        return self.memo[key]

    def _finite(self, tensor: str, column: int) -> bool:
        facts = self.facts
        if tensor == LEAN_INPUT:
            return column >= self.numeric
        node = facts.producer.get(tensor)
        if node is None:
            return False
        op = node.op_type
        if op == "Cast":
            source = facts.types.get(node.input[0])
            return source is not None and source.elem_type == TensorProto.BOOL
        if op in ("Gather", "ArrayFeatureExtractor") and node.input[1] in facts.constants:
            return self.column(node.input[0], int(facts.constants[node.input[1]].reshape(-1)[column]))
        if op == "Concat":
            offset = 0
            for part in node.input:
                width = facts.width(part) or 0
                if column < offset + width:
                    return self.column(part, column - offset)
                offset += width
            return False
        if op == "Where":
            test = facts.producer.get(node.input[0])
            # Where(IsNaN(t), fill, t): a finite t is never replaced
            return (
                test is not None
                and test.op_type == "IsNaN"
                and test.input[0] == node.input[2]
                and (self.column(node.input[2], column))
            )
        return False


# ------------------------------------------------------------------ the check


def _agrees(
    ids_model: ModelProto, lean: ModelProto, signal: dict[str, Any] | None, numeric: int, categorical: int
) -> bool:
    """The lean graph refuses exactly the rows the ids graph refuses, and gives its other
    outputs within the tolerance, on :data:`CHECK_ROWS` random mixtures."""
    feeds = _mixtures(ids_model, numeric, categorical)
    try:
        plain = _session(ids_model)
        fast = _session(lean)
    except Exception:  # noqa: BLE001 - a graph onnxruntime refuses is not shipped
        return False
    names = [o.name for o in plain.get_outputs()]
    expected = dict(zip(names, plain.run(names, feeds), strict=True))
    lean_feeds = _lean_feeds(feeds)
    x = lean_feeds[LEAN_INPUT]
    lean_names = [o.name for o in fast.get_outputs()]
    got = dict(zip(lean_names, fast.run(lean_names, lean_feeds), strict=True))
    rows = len(x)
    refused = expected["refusals"].any(axis=1) if "refusals" in expected else np.zeros(rows, dtype=bool)
    if signal is None:
        flagged = np.zeros(rows, dtype=bool)
    elif signal["kind"] == "flags":
        flagged = got[signal["output"]].reshape(rows, -1).any(axis=1)
    else:
        flagged = ~np.isfinite(got[signal["output"]][:, signal["column"]])
    if not np.array_equal(flagged, refused) or refused.all():
        return False
    for name, value in expected.items():
        if name == "refusals":
            continue
        mine = got[name]
        if signal is not None and signal["output"] == name and signal["kind"] == "nan":
            mine = np.delete(mine, signal["column"], axis=1)
        if value.dtype == np.float64:
            if not tolerances.close_arrays(mine[~refused], value[~refused]).all():
                return False
        elif not np.array_equal(mine[~refused], value[~refused]):
            return False
    return True


def _compacted(ids_model: ModelProto, lean: ModelProto, numeric: int, categorical: int) -> ModelProto:
    """``lean`` compacted (:func:`predictlib.build.passes.compact.compact`) when the result
    passes the checker and gives every output bit for bit on the random mixtures of
    :func:`_agrees`, as one batch and 64 of them (ordinary and odd) one row at a time;
    else ``lean`` as it is."""
    trial = ModelProto()
    trial.CopyFrom(lean)
    compact_graph(trial)
    if len(trial.graph.node) >= len(lean.graph.node):
        return lean
    try:
        onnx.checker.check_model(trial, full_check=True)
        onnx.shape_inference.infer_shapes(trial, strict_mode=True)
        feeds = _lean_feeds(_mixtures(ids_model, numeric, categorical))
        before, after = _session(lean), _session(trial)
        names = [o.name for o in before.get_outputs()]
        old, new = before.run(names, feeds), after.run(names, feeds)
        single = [
            (before.run(names, one), after.run(names, one))
            for one in (
                {k: v[r : r + 1] for k, v in feeds.items()} for r in range(0, CHECK_ROWS, CHECK_ROWS // 64)
            )
        ]
    except Exception:  # noqa: BLE001 - a compaction that does not check or run is not used
        return lean
    pairs = [*zip(old, new, strict=True), *(p for a, b in single for p in zip(a, b, strict=True))]
    return trial if all(identical(a, b) for a, b in pairs) else lean


def _lean_feeds(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The lean graph's feeds for the ids graph's ``feeds``: ``num`` and ``cat_ids`` as one ``x``."""
    x = np.concatenate([feeds.get("num", np.empty((len(feeds[CAT_IDS]), 0))), feeds[CAT_IDS]], axis=1)
    return {LEAN_INPUT: x.astype(np.float64), **{k: v for k, v in feeds.items() if k == "dt"}}


def _session(model: ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _mixtures(
    ids_model: ModelProto, numeric: int, categorical: int, rows: int = CHECK_ROWS
) -> dict[str, np.ndarray]:
    """Random inputs of the ids graph: numbers of every magnitude and sign, 0, ±inf and
    NaN, and every category id; half the rows ordinary (positive numbers, ids the graph
    accepts in every column), the others with a few odd cells, so that both refused and
    accepted rows are many."""
    rng = np.random.default_rng(0)
    graph = ids_model.graph
    vocabulary = _vocabulary_size(ids_model)
    odd_values = np.array([0.0, -0.0, -1.0, 1e300, -1e300, np.inf, -np.inf, np.nan, 1e-300, -5.5])
    num = 10.0 ** rng.uniform(-1, 4, (rows, numeric))
    odd = odd_values[rng.integers(len(odd_values), size=(rows, numeric))]
    cells = rng.random((rows, numeric)) < np.where(np.arange(rows) < rows // 2, 0.0, 0.05)[:, None]
    num = np.where(cells, odd, num)
    cat = rng.integers(vocabulary + 1, size=(rows, categorical))
    feeds: dict[str, np.ndarray] = {CAT_IDS: cat.astype(np.int64)}
    if numeric:
        feeds["num"] = np.ascontiguousarray(num)
    for i in graph.input:
        if i.name == "dt":
            width = int(i.type.tensor_type.shape.dim[1].dim_value)
            moments = rng.integers(-(2**62), 2**62, size=(rows, width))
            moments[: rows // 2] = rng.integers(10**18, 2 * 10**18, size=(rows // 2, width))
            moments[rng.random((rows, width)) < 0.02] = np.iinfo(np.int64).min
            feeds["dt"] = moments.astype(np.int64)
    accepted = _accepted_ids(ids_model, feeds, vocabulary)
    if accepted is not None:
        for j, ids in enumerate(accepted):
            if ids:
                ordinary = np.asarray(ids)[rng.integers(len(ids), size=rows // 2)]
                feeds[CAT_IDS][: rows // 2, j] = ordinary
    return feeds


def _vocabulary_size(ids_model: ModelProto) -> int:
    offsets = next(t for t in ids_model.graph.initializer if t.name == "cat_id_offsets")
    values = numpy_helper.to_array(offsets).reshape(-1)
    return int(values[1] - 1) if len(values) > 1 else _single_stride(ids_model)


def _single_stride(ids_model: ModelProto) -> int:
    """The vocabulary size of a graph with one categorical column. Each fused table holds
    ``k * stride`` values (``k`` > 1 when the column feeds several columns: the
    ``fused_shift_*`` offsets, multiples of the stride, pick the rows), so the stride is
    the greatest common divisor of the fused tables' sizes and shifts."""
    sizes: list[int] = []
    for node in ids_model.graph.node:
        if node.op_type == "LabelEncoder" and node.name.startswith("fused_"):
            keys = next((a for a in node.attribute if a.name == "keys_tensor"), None)
            if keys is not None:
                sizes.append(len(numpy_helper.to_array(keys.t)))
    for t in ids_model.graph.initializer:
        values = numpy_helper.to_array(t)
        if t.name.startswith("fused_table_"):
            sizes.append(int(values.size))
        elif t.name.startswith("fused_shift_"):
            sizes.extend(int(abs(v)) for v in values.reshape(-1) if v)
    return int(np.gcd.reduce(sizes)) - 1 if sizes else 1


def _accepted_ids(
    ids_model: ModelProto, feeds: dict[str, np.ndarray], vocabulary: int
) -> list[list[int]] | None:
    """Per categorical column, the ids that add no refusal to an ordinary row (each column
    varied alone: the checks firing for every id come from the other columns); None when
    the graph has no refusals."""
    if not any(o.name == "refusals" for o in ids_model.graph.output):
        return None
    session = _session(ids_model)
    width = feeds[CAT_IDS].shape[1]
    base = {k: v[:1].repeat(vocabulary + 1, axis=0) for k, v in feeds.items()}
    accepted = []
    for j in range(width):
        trial = {k: v.copy() for k, v in base.items()}
        trial[CAT_IDS][:, j] = np.arange(vocabulary + 1)
        flags = session.run(["refusals"], trial)[0]
        common = flags.all(axis=0)
        accepted.append([int(i) for i in np.flatnonzero((flags == common).all(axis=1))])
    return accepted
