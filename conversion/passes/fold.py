"""Fold the numeric part of an exported graph: fewer nodes, the same answers.

For one record onnxruntime's cost is per node, and the numeric part of a pipeline is
mostly element-wise affine steps on one matrix: a scaler's ``(x - mean) / scale``, a
min-max ``x * scale + min``, then a linear estimator's ``x @ coef + intercept``
(house_prices: ``Mul``, ``Add``, ``MatMul``, ``Add``). Composed in float64 at export
time they are one ``MatMul`` + ``Add`` (one ``Mul`` + ``Add`` without a ``MatMul``):

* :func:`fold_affine`: a chain ``T -> (per-column affine step | MatMul by a constant)* -> E``
  whose intermediate tensors feed nothing but refusal checks becomes
  ``E = MatMul(T, M) + v`` (or ``T * a + b``). The constants are composed in extended
  precision and rounded once.
* Reassociation changes the rounding, so each fold is *measured*: the unfolded and the
  folded chain run in onnxruntime on random mixtures of inputs (:data:`CHECK_ROWS`
  rows: values in the range the steps were fitted for, other magnitudes, integers,
  0, -0.0, ±1e300, the overflow thresholds, ±DBL_MAX, ±inf, NaN) and the fold is kept
  only when every output agrees within ``conversion/tolerances.py`` (equal, both NaN,
  or both finite and close) on every row no refusal check flags. The largest errors
  measured are reported (:class:`Folding`); a chain that fails is left unfolded.
* Refusal checks (``IsNaN`` / ``IsInf``) reading an intermediate tensor are rewritten to
  read ``T`` when that is exact: no ``MatMul`` before it, every scale finite and
  non-zero, and no finite input overflowing at any step (checked at ±DBL_MAX: rounding
  is monotone, so no other input overflows either). Then ``t = T * a + b`` is NaN or
  infinite exactly where ``T`` is. Otherwise the unfolded steps stay, for the checks
  alone.
* :func:`compose_selections`: a column selection of a column selection
  (``Gather`` / ``ArrayFeatureExtractor`` with constant indices) reads the first one's
  input directly: one selection per input (selections of concatenations are rebuilt by
  :func:`predictlib.build.passes.simplify.collapse_plumbing`).
* :func:`merge_duplicates`: nodes computing the same thing (operator, inputs and
  attributes) become one; e.g. a min-max scaler's and the estimator's input guards
  both test ``IsInf`` of one matrix once the fold has moved the second onto it.

Every changed graph must pass ONNX shape inference (strict) and the checker, or the
change is undone. :func:`fold_numeric` runs them all (``export_pipeline(fold=True)``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from .. import tolerances
from .fuse import ONNX_DOMAINS
from .simplify import column_selection, drop_dead, graph_facts, tensor_width

#: rows of random input mixtures each fold is measured on
CHECK_ROWS = 4096
#: the operators a folded chain is written with (``E = MatMul(T, M) + v`` or ``T * a + b``)
FOLD_OPS = frozenset({"MatMul", "Mul", "Add"})
#: the checks a fold may rewrite (they read one tensor, element-wise)
_CHECK_OPS = frozenset({"IsNaN", "IsInf"})
_MAX = np.finfo(np.float64).max
_WIDE = np.longdouble


@dataclass
class Folding:
    """What :func:`fold_numeric` did, for the build log and the tests."""

    chains_folded: int = 0
    nodes_removed: int = 0
    checks_rewritten: int = 0
    duplicates_merged: int = 0
    selections_composed: int = 0
    #: chains measured outside the tolerance (or failing shape inference), left as exported
    chains_left: int = 0
    #: the largest relative difference measured between folded and unfolded chains
    #: (finite outputs), and the largest share of the tolerance it used (<= 1)
    max_rel_error: float = 0.0
    tolerance_used: float = 0.0
    #: per folded chain: its end tensor, nodes before and after, errors measured
    chains: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chains_folded": self.chains_folded,
            "nodes_removed": self.nodes_removed,
            "checks_rewritten": self.checks_rewritten,
            "duplicates_merged": self.duplicates_merged,
            "selections_composed": self.selections_composed,
            "chains_left": self.chains_left,
            "max_rel_error": self.max_rel_error,
            "tolerance_used": self.tolerance_used,
        }


def fold_numeric(model: ModelProto) -> Folding:
    """Every fold of this module, in place; returns what was done."""
    before = len(model.graph.node)
    done = Folding()
    fold_affine(model, done)
    done.selections_composed = compose_selections(model)
    done.duplicates_merged = merge_duplicates(model)
    drop_dead(model)
    done.nodes_removed = before - len(model.graph.node)
    return done


# ------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class _Step:
    """One link of a chain: ``node`` computes its output from ``source``, per column
    ``y = x * a + b`` (``matrix`` None), or ``y = x @ matrix`` (``a``/``b`` unused)."""

    node: NodeProto
    source: str
    a: np.ndarray  # extended precision, [k] (the composition is computed with these)
    b: np.ndarray
    matrix: np.ndarray | None = None

    #: the float64 constant operand, broadcast to [k] (None for Neg and MatMul)
    constant: np.ndarray | None = None
    #: whether the constant is the first operand (``c - x``)
    constant_first: bool = False

    def apply(self, x: np.ndarray) -> np.ndarray:
        """What onnxruntime computes, in float64 (for the overflow checks)."""
        op, c = self.node.op_type, self.constant
        with np.errstate(all="ignore"):
            if op == "Neg" or c is None:
                return -x
            if op == "Mul":
                return x * c
            if op == "Add":
                return x + c
            if op == "Sub":
                return c - x if self.constant_first else x - c
            return x / c


def _affine_step(node: NodeProto, types: dict[str, Any], constants: dict[str, np.ndarray]) -> _Step | None:
    """The per-column affine map of an element-wise ``Mul``/``Add``/``Sub``/``Div`` by a
    float64 constant (or a ``Neg``) on a float64 matrix, None for anything else."""
    if node.domain not in ONNX_DOMAINS or len(node.output) != 1:
        return None
    op = node.op_type
    if op == "Neg" and len(node.input) == 1:
        source, c = node.input[0], None
    elif op in ("Mul", "Add", "Sub", "Div") and len(node.input) == 2:
        left, right = node.input
        if right in constants and left not in constants:
            source, c = left, constants[right]
        elif left in constants and right not in constants and op in ("Mul", "Add", "Sub"):
            source, c = right, constants[left]
        else:
            return None
    else:
        return None
    width = tensor_width(types, source)
    if (
        width is None
        or tensor_width(types, node.output[0]) != width
        or types[source].elem_type != TensorProto.DOUBLE
        or types[node.output[0]].elem_type != TensorProto.DOUBLE
    ):
        return None
    one, zero = np.ones(width, dtype=_WIDE), np.zeros(width, dtype=_WIDE)
    if c is None:  # Neg
        return _Step(node, source, -one, zero)
    if c.dtype != np.float64 or c.size not in (1, width) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
        return None
    if not np.isfinite(c).all():
        return None
    raw = np.broadcast_to(c.reshape(-1), (width,)).astype(np.float64)
    column = raw.astype(_WIDE)
    first = node.input[0] != source
    if op == "Mul":
        return _Step(node, source, column, zero, None, raw)
    if op == "Add":
        return _Step(node, source, one, column, None, raw)
    if op == "Sub":
        if not first:
            return _Step(node, source, one, -column, None, raw)
        return _Step(node, source, -one, column, None, raw, True)
    if (column == 0).any():  # Div
        return None
    return _Step(node, source, 1 / column, zero, None, raw)


def _matmul_step(node: NodeProto, types: dict[str, Any], constants: dict[str, np.ndarray]) -> _Step | None:
    """``MatMul(x, W)`` with a constant float64 ``W`` [k, m] on a float64 matrix x [N, k]."""
    if node.op_type != "MatMul" or node.domain not in ONNX_DOMAINS or len(node.input) != 2:
        return None
    source, weights = node.input
    w = constants.get(weights)
    width = tensor_width(types, source)
    if (
        w is None
        or source in constants
        or w.dtype != np.float64
        or w.ndim != 2
        or width != w.shape[0]
        or not np.isfinite(w).all()
        or types[source].elem_type != TensorProto.DOUBLE
        or tensor_width(types, node.output[0]) != w.shape[1]
    ):
        return None
    empty = np.zeros(0, dtype=_WIDE)
    return _Step(node, source, empty, empty, w.astype(_WIDE))


# ------------------------------------------------------------------- the chains


@dataclass
class _Chain:
    start: str
    steps: list[_Step]
    #: check nodes reading the chain's tensors (its start included), by tensor
    checks: dict[str, list[NodeProto]]

    @property
    def end(self) -> str:
        return self.steps[-1].node.output[0]


def _chains(model: ModelProto) -> list[_Chain]:
    facts = graph_facts(model)
    if facts is None:
        return []
    types, constants, producer = facts
    graph = model.graph
    consumers: dict[str, list[NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    outputs = {o.name for o in graph.output}

    def step_of(node: NodeProto) -> _Step | None:
        return _affine_step(node, types, constants) or _matmul_step(node, types, constants)

    def split(tensor: str) -> tuple[list[NodeProto], list[NodeProto]]:
        users = consumers.get(tensor, [])
        checks = [u for u in users if u.op_type in _CHECK_OPS and u.domain in ONNX_DOMAINS]
        return checks, [u for u in users if not any(u is c for c in checks)]

    chains = []
    for node in graph.node:
        head = step_of(node)
        if head is None:
            continue
        before = producer.get(head.source)
        if before is not None and step_of(before) is not None and len(split(head.source)[1]) == 1:
            continue  # not the head of its chain
        steps = [head]
        checks = {head.source: split(head.source)[0]}
        tensor = node.output[0]
        while tensor not in outputs:
            found, main = split(tensor)
            if len(main) != 1:
                break
            step = step_of(main[0])
            if step is None or step.source != tensor:
                break
            checks[tensor] = found
            steps.append(step)
            tensor = main[0].output[0]
        checks[tensor] = split(tensor)[0]
        chains.append(_Chain(head.source, steps, {t: c for t, c in checks.items() if c}))
    return chains


def _compose(steps: Sequence[_Step]) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(M, a, b): ``y = x @ M + b`` when a step is a MatMul (``a`` unused), else
    ``y = x * a + b`` (``M`` None), in extended precision."""
    matrix: np.ndarray | None = None
    a = np.ones(len(steps[0].a) if steps[0].matrix is None else steps[0].matrix.shape[0], dtype=_WIDE)
    b = np.zeros_like(a)
    for step in steps:
        if step.matrix is None:
            if matrix is not None:
                matrix = matrix * step.a[None, :]
            else:
                a = a * step.a
            b = b * step.a + step.b
        else:
            matrix = a[:, None] * step.matrix if matrix is None else matrix @ step.matrix
            b = b @ step.matrix
    return matrix, a, b


def _exact_checks(steps: Sequence[_Step]) -> bool:
    """Whether ``IsNaN``/``IsInf`` of the output of ``steps`` (element-wise, from T) are
    those of T: every scale non-zero and no finite T overflowing at any step."""
    if any(s.matrix is not None or (s.a == 0).any() for s in steps):
        return False
    width = len(steps[0].a)
    for edge in (_MAX, -_MAX):
        x = np.full(width, edge)
        for step in steps:
            x = step.apply(x)
            if not np.isfinite(x).all():
                return False
    return True


def fold_affine(model: ModelProto, done: Folding | None = None) -> Folding:
    """Fold every affine chain of ``model`` (in place) that gets shorter and measures
    within the tolerance; see the module docstring."""
    done = done if done is not None else Folding()
    tried: set[str] = set()
    while True:
        chain = next((c for c in _chains(model) if c.end not in tried), None)
        if chain is None:
            break
        tried.add(chain.end)
        trial = ModelProto()
        trial.CopyFrom(model)
        planned = _fold_chain(trial, chain)
        if planned is None:
            continue
        saved, rewritten, errors = planned
        try:
            onnx.checker.check_model(trial, full_check=True)
        except Exception:  # noqa: BLE001 - a graph the checker refuses is not kept
            errors = None
        if errors is None:
            done.chains_left += 1
            continue
        model.CopyFrom(trial)
        done.chains_folded += 1
        done.checks_rewritten += rewritten
        done.max_rel_error = max(done.max_rel_error, errors[0])
        done.tolerance_used = max(done.tolerance_used, errors[1])
        done.chains.append(
            {
                "end": chain.end,
                "nodes": len(chain.steps),
                "saved": saved,
                "max_rel_error": errors[0],
                "tolerance_used": errors[1],
            }
        )
    return done


def _fold_chain(model: ModelProto, chain: _Chain) -> tuple[int, int, tuple[float, float] | None] | None:
    """Fold ``chain`` into ``model`` (a copy): (nodes saved, checks rewritten, measured
    (abs, rel) errors or None when outside the tolerance); None when folding would not
    save a node."""
    steps = chain.steps
    matrix, a, b = _compose(steps)
    # the folded nodes
    end = chain.end
    new: list[NodeProto] = []
    inits: list[TensorProto] = []
    current = chain.start
    if matrix is not None:
        weights = matrix.astype(np.float64)
        inits.append(numpy_helper.from_array(weights, f"{end}_folded_weights"))
        out = end if not b.any() else f"{end}_folded_product"
        new.append(helper.make_node("MatMul", [current, f"{end}_folded_weights"], [out], name=out))
        current = out
    elif (a != 1).any():
        inits.append(numpy_helper.from_array(a.astype(np.float64), f"{end}_folded_scale"))
        out = end if not b.any() else f"{end}_folded_scaled"
        new.append(helper.make_node("Mul", [current, f"{end}_folded_scale"], [out], name=out))
        current = out
    if b.any() or current == chain.start:
        inits.append(numpy_helper.from_array(b.astype(np.float64), f"{end}_folded_offset"))
        new.append(helper.make_node("Add", [current, f"{end}_folded_offset"], [end], name=f"{end}_folded"))
    # the checks: rewritten onto the start when exact, else the unfolded steps stay for them
    keep_upto = 0  # number of original steps kept (for checks that cannot be rewritten)
    rewrite: list[NodeProto] = []
    position = {chain.start: 0, **{s.node.output[0]: i + 1 for i, s in enumerate(steps)}}
    for tensor, checks in chain.checks.items():
        k = position[tensor]
        if k == 0:
            continue
        if _exact_checks(steps[:k]):
            rewrite.extend(checks)
        else:
            keep_upto = max(keep_upto, k)
    saved = len(steps) - len(new) - keep_upto
    if saved <= 0 or keep_upto == len(steps):
        return None
    graph = model.graph
    rewritten = {c.output[0] for c in rewrite}
    nodes: list[NodeProto] = []
    last = steps[-1].node.output[0]
    for node in graph.node:
        if node.output and node.output[0] in position and node.output[0] != chain.start:
            if position[node.output[0]] <= keep_upto:
                nodes.append(node)  # still read by a check
            if node.output[0] == last:
                nodes.extend(new)
            continue
        if node.output and node.output[0] in rewritten:
            node.input[0] = chain.start
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    errors = _measure(model, chain, steps, new, inits)
    return saved, len(rewrite), errors


# ------------------------------------------------------------------ measuring


def _measure(
    model: ModelProto,
    chain: _Chain,
    steps: Sequence[_Step],
    new: Sequence[NodeProto],
    inits: Sequence[TensorProto],
) -> tuple[float, float] | None:
    """Run the unfolded and the folded chain on random mixtures of its input; None when an output
    disagrees beyond the tolerance on a row that no check of the chain flags. Returns
    (largest relative error, largest share of the tolerance used) over finite outputs."""
    facts = graph_facts(model)
    if facts is None:
        return None
    types = facts[0]
    width = tensor_width(types, chain.start)
    assert width is not None
    x = mixtures(steps, width)
    end = chain.end
    originals = [s.node for s in steps]
    names = {i for n in [*originals, *new] for i in n.input}
    constants = [t for t in [*model.graph.initializer, *inits] if t.name in names and t.name != chain.start]
    folded_nodes = []
    for node in new:
        copy = NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [f"{i}__f" if any(i == n.output[0] for n in new) else i for i in copy.input]
        copy.output[:] = [f"{o}__f" for o in copy.output]
        folded_nodes.append(copy)
    checks = [n for ns in chain.checks.values() for n in ns]
    check_nodes = []
    for k, node in enumerate(checks):
        check_nodes.append(helper.make_node(node.op_type, [node.input[0]], [f"check_{k}"]))
    sub = helper.make_graph(
        [*originals, *folded_nodes, *check_nodes],
        "chain",
        [helper.make_tensor_value_info(chain.start, TensorProto.DOUBLE, [None, width])],
        [
            helper.make_tensor_value_info(end, TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(f"{end}__f", TensorProto.DOUBLE, None),
            *[
                helper.make_tensor_value_info(f"check_{k}", TensorProto.BOOL, None)
                for k in range(len(checks))
            ],
        ],
        list({t.name: t for t in constants}.values()),
    )
    sub_model = helper.make_model(sub, opset_imports=list(model.opset_import))
    sub_model.ir_version = model.ir_version
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            sub_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        unfolded, folded, *flags = session.run(None, {chain.start: x})
    except Exception:  # noqa: BLE001 - a chain onnxruntime cannot run alone is left unfolded
        return None
    flagged = np.zeros(len(x), dtype=bool)
    for f in flags:
        flagged |= f.reshape(len(x), -1).any(axis=1)
    ok = tolerances.close_arrays(folded, unfolded)
    rows_ok = ok.reshape(len(x), -1).all(axis=1)
    if not (rows_ok | flagged).all():
        return None
    both = np.isfinite(folded) & np.isfinite(unfolded)
    if not both.any():
        return 0.0, 0.0
    with np.errstate(all="ignore"):
        diff = np.abs(folded - unfolded)[both]
        scale = np.abs(unfolded)[both]
        rel = np.where(scale > 0, diff / scale, 0.0)
        used = diff / (tolerances.ATOL + tolerances.RTOL * scale)
    return float(rel.max()), float(used.max())


def mixtures(steps: Sequence[_Step], width: int, rows: int = CHECK_ROWS) -> np.ndarray:
    """Random inputs for a chain: per column, values in the range the steps were fitted
    for (the inputs its first affine steps map into [-1, 2]), other magnitudes,
    integers and odd values (0, -0.0, ±1e300, the overflow thresholds, ±DBL_MAX, ±inf,
    NaN); half the rows all in range, a quarter with a few odd cells, a quarter mixed."""
    with np.errstate(all="ignore"):
        return _draw(steps, width, rows)


def _draw(steps: Sequence[_Step], width: int, rows: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    prefix = []
    for step in steps:
        if step.matrix is not None:
            break
        prefix.append(step)
    if prefix:
        _, a, b = _compose(prefix)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        low, high = (-1 - b64) / a64, (2 - b64) / a64
        low, high = np.minimum(low, high), np.maximum(low, high)
        threshold = _MAX / np.abs(a64)
    else:
        low, high = np.full(width, -10.0), np.full(width, 10.0)
        threshold = np.full(width, _MAX)
    natural = low + rng.random((rows, width)) * (high - low)
    natural = np.where(np.isfinite(natural), natural, rng.normal(size=(rows, width)))
    odd_values = np.array([0.0, -0.0, 1.0, -1.0, 1e300, -1e300, _MAX, -_MAX, np.inf, -np.inf, np.nan])
    odd = odd_values[rng.integers(len(odd_values), size=(rows, width))]
    magnitude = np.sign(rng.normal(size=(rows, width))) * 10.0 ** rng.uniform(-300, 300, (rows, width))
    integers = rng.integers(-10, 11, size=(rows, width)).astype(np.float64)
    near = (
        np.sign(rng.normal(size=(rows, width)))
        * np.minimum(threshold, _MAX)
        * (1 + rng.choice([-1e-3, -1e-16, 0.0, 1e-16, 1e-3], size=(rows, width)))
    )
    kind = rng.integers(5, size=(rows, width))
    strange = np.choose(kind, [odd, magnitude, integers, near, natural])
    x = natural.copy()
    quarter = rows // 4
    cells = rng.integers(width, size=(quarter, 3))
    for r in range(quarter):
        x[2 * quarter + r, cells[r]] = strange[2 * quarter + r, cells[r]]
    x[3 * quarter :] = np.where(
        rng.random((rows - 3 * quarter, width)) < 0.3, strange[3 * quarter :], x[3 * quarter :]
    )
    return np.ascontiguousarray(x, dtype=np.float64)


# ------------------------------------------------------------------ plumbing


def compose_selections(model: ModelProto) -> int:
    """``select(select(t, a), b)`` becomes ``select(t, a[b])`` (in place), the outer node
    keeping its operator (``Gather`` on axis 1 or ``ArrayFeatureExtractor``); the inner
    one is dropped when nothing else reads it. Returns how many were composed."""
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    composed = 0
    for node in graph.node:
        outer = column_selection(node, constants)
        inner = column_selection(producer.get(outer[0]), constants) if outer is not None else None
        if outer is None or inner is None:
            continue
        source, first = inner
        if node.op_type == "ArrayFeatureExtractor" and not _extractable(model, source):
            continue
        indices = np.asarray(first, dtype=np.int64)[np.asarray(outer[1], dtype=np.int64)]
        name = f"{node.output[0]}_composed_columns"
        graph.initializer.append(numpy_helper.from_array(indices, name))
        constants[name] = indices
        node.input[0], node.input[1] = source, name
        composed += 1
    if composed:
        drop_dead(model)
    return composed


def _extractable(model: ModelProto, tensor: str) -> bool:
    """Whether onnxruntime's ArrayFeatureExtractor takes ``tensor`` (not bool)."""
    facts = graph_facts(model)
    if facts is None or tensor not in facts[0]:
        return False
    return bool(facts[0][tensor].elem_type != TensorProto.BOOL)


# ------------------------------------------------------------------ duplicates


def merge_duplicates(model: ModelProto) -> int:
    """Merge nodes with the same operator, inputs and attributes (in place; the first
    one's output is read instead); return how many were removed."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    seen: dict[tuple[Any, ...], str] = {}
    renamed: dict[str, str] = {}
    kept: list[NodeProto] = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        if len(node.output) != 1 or node.op_type in ("RandomNormal", "RandomUniform", "Multinomial"):
            kept.append(node)
            continue
        attributes = tuple(sorted((a.name, a.SerializeToString(deterministic=True)) for a in node.attribute))
        key = (node.domain or "", node.op_type, tuple(node.input), attributes)
        first = seen.get(key)
        if first is not None and node.output[0] not in outputs:
            renamed[node.output[0]] = first
            continue
        seen.setdefault(key, node.output[0])
        kept.append(node)
    merged = len(graph.node) - len(kept)
    if merged:
        del graph.node[:]
        graph.node.extend(kept)
        drop_dead(model)
    return merged
