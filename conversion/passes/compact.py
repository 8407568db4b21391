"""Compact the lean graph: fewer nodes, the same bits.

For one record onnxruntime's cost is per node, more exactly per kernel call and per
tensor it allocates (about 0.25 to 0.4 µs each here for one row). These passes run last
on the lean graph (:func:`predictlib.build.passes.lean.lean_variant`, ``compact=True``)
and change no bit of any output:

* :func:`fuse_gemm`: ``MatMul(A, W) + C`` with a constant float64 ``W`` becomes
  ``Gemm(A, W, C)`` (``C`` a constant row or a tensor of the product's shape).
  onnxruntime does not fuse them for float64 itself (its ``MatMulAddFusion`` is for
  float32). Both run MLAS's dgemm kernel, which gives the same bits while it takes the
  whole inner dimension in one block (measured here: equal up to 512 rows of ``W`` of one
  or two columns, not at 513), so only ``W`` of at most :data:`GEMM_MAX_K` rows is fused.
  A ``Sum`` of such products (the lean graph's refusal test of two poisoned matrices)
  becomes a chain of ``Gemm`` nodes: ``Sum`` adds in order, ``(t0 + t1) + t2``.

*Measured.* Each rewrite runs the old and the new nodes side by side in onnxruntime (the
session options of :func:`predictlib.default_session_options`) on :data:`CHECK_ROWS`
rows of random mixtures (values of every magnitude, integers, 0, -0.0, ±1e300,
±DBL_MAX, ±inf, NaN; :func:`predictlib.build.passes.fold.mixtures`) as one batch and on
:data:`CHECK_SINGLE_ROWS` of them one at a time (one record takes that path): every
output must be identical bit for bit (NaN where the other has NaN), or the rewrite is
not made. ``lean_variant`` then checks the whole compacted graph the same way against
the graph it was given.

Tried and measured not to pay (issue 19, ames): batching several column selections of
one tensor into one selection and a ``Split`` (a ``Split`` costs about what the
selections it replaces cost: one allocation per output), and chains of ``Add`` as one
``Sum`` (onnxruntime's variadic ``Sum`` of five [1, 1] tensors is slower than four
``Add``); see ``docs/design-graph.md``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper

from .fold import mixtures
from .fuse import ONNX_DOMAINS
from .simplify import drop_dead, fresh_name, graph_facts, tensor_width

#: rows of random mixtures each rewrite is measured on, as one batch
CHECK_ROWS = 4096
#: of those, rows also run one at a time
CHECK_SINGLE_ROWS = 64
#: the largest inner dimension a MatMul + Add is fused into a Gemm for: MLAS's dgemm takes
#: at least 128 rows of the weights in one block whatever their width (measured equal here
#: up to 512 for one or two columns, not at 513)
GEMM_MAX_K = 128
_FLOATS = frozenset({TensorProto.FLOAT, TensorProto.DOUBLE})


@dataclass
class Compaction:
    """What :func:`compact` did, for the build log and the tests."""

    gemms: int = 0
    #: rewrites measured as not bit for bit identical (left as they were)
    left: int = 0
    nodes_before: int = 0
    nodes_after: int = 0
    details: list[str] = field(default_factory=list)


def compact(model: ModelProto) -> Compaction:
    """Every pass of this module, in place; see the module docstring."""
    done = Compaction(nodes_before=len(model.graph.node))
    fuse_gemm(model, done)
    drop_dead(model)
    done.nodes_after = len(model.graph.node)
    return done


# ------------------------------------------------------------------ Gemm


def fuse_gemm(model: ModelProto, done: Compaction | None = None) -> int:
    """``Add(MatMul(A, W), C)`` with a constant float64 ``W`` [K, N] (K at most
    :data:`GEMM_MAX_K`) becomes ``Gemm(A, W, C)`` when ``C`` is a constant (one value,
    [N] or [1, N]) or a float64 [rows, N] tensor; a ``Sum(t0, MatMul(A1, W1), ...)``
    becomes a chain of them (``Sum`` adds in order: ``(t0 + t1) + t2``...). Each is made
    only when measured bit for bit; returns how many ``Gemm`` nodes were made."""
    done = done if done is not None else Compaction()
    fused = 0
    tried: set[str] = set()
    while True:
        facts = graph_facts(model)
        if facts is None:
            return fused
        types, constants, _ = facts
        found = _next_gemm(model, facts, tried)
        if found is None:
            return fused
        node, old, new, inputs = found
        tried.add(node.output[0])
        if not _same_bits(model, old, new, inputs, types, constants):
            done.left += 1
            continue
        graph = model.graph
        gone = {id(n) for n in old}
        kept = []
        for n in graph.node:
            if n is node:
                kept.extend(new)
            elif id(n) not in gone:
                kept.append(n)
        del graph.node[:]
        graph.node.extend(kept)
        fused += len(new)
        done.gemms += len(new)
        done.details.append(f"{node.op_type} of {len(new)} MatMul -> Gemm for {node.output[0]}")


def _next_gemm(
    model: ModelProto, facts: tuple[dict[str, Any], dict[str, Any], dict[str, NodeProto]], tried: set[str]
) -> tuple[NodeProto, list[NodeProto], list[NodeProto], list[str]] | None:
    """The next ``Add`` / ``Sum`` to fuse: (it, the nodes it replaces, the Gemm nodes,
    the measured subgraph's inputs)."""
    types, constants, producer = facts
    graph = model.graph
    outputs = {o.name for o in graph.output}
    consumers: dict[str, list[NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)

    def product(tensor: str) -> NodeProto | None:
        """The MatMul by constant weights making ``tensor``, read by one node alone."""
        node = producer.get(tensor)
        if (
            node is None
            or node.op_type != "MatMul"
            or node.domain not in ONNX_DOMAINS
            or len(node.input) != 2
        ):
            return None
        a, w = node.input
        weights = constants.get(w)
        if (
            weights is None
            or a in constants
            or weights.dtype != np.float64
            or weights.ndim != 2
            or weights.shape[0] > GEMM_MAX_K
            or tensor_width(types, a) != weights.shape[0]
            or types[a].elem_type != TensorProto.DOUBLE
            or tensor in outputs
            or len(consumers.get(tensor, [])) != 1
        ):
            return None
        return node

    def addend(tensor: str, n: int) -> bool:
        """Whether ``tensor`` can be a Gemm's C for an [rows, n] product."""
        if tensor in constants:
            c = constants[tensor]
            return c.dtype == np.float64 and ((c.size == 1 and c.ndim <= 2) or c.shape in ((n,), (1, n)))
        kind = types.get(tensor)
        return kind is not None and kind.elem_type == TensorProto.DOUBLE and tensor_width(types, tensor) == n

    for node in graph.node:
        if node.domain not in ONNX_DOMAINS or node.output[0] in tried or node.op_type not in ("Add", "Sum"):
            continue
        terms = list(node.input)
        if len(terms) < 2 or (node.op_type == "Add" and len(terms) != 2):
            continue
        if product(terms[1]) is None and product(terms[0]) is not None:
            terms[0], terms[1] = terms[1], terms[0]  # t0 + t1 is t1 + t0
        matmuls = [product(t) for t in terms[1:]]
        if any(m is None for m in matmuls) or terms[0] in terms[1:]:
            tried.add(node.output[0])
            continue
        widths = {int(constants[m.input[1]].shape[1]) for m in matmuls if m is not None}
        if len(widths) != 1 or not addend(terms[0], widths.pop()):
            tried.add(node.output[0])
            continue
        new, current = [], terms[0]
        for k, m in enumerate(matmuls):
            assert m is not None
            out = node.output[0] if k == len(matmuls) - 1 else fresh_name(graph, f"{node.output[0]}_gemm_{k}")
            new.append(helper.make_node("Gemm", [m.input[0], m.input[1], current], [out], name=f"{out}_gemm"))
            current = out
        inputs = [m.input[0] for m in matmuls if m is not None] + [terms[0]]
        return node, [*(m for m in matmuls if m is not None), node], new, inputs
    return None


# ------------------------------------------------------------------ measuring


def _same_bits(
    model: ModelProto,
    old: list[NodeProto],
    new: list[NodeProto],
    inputs: list[str],
    types: dict[str, Any],
    constants: dict[str, Any],
) -> bool:
    """Whether ``old`` and ``new`` (computing the same output names from ``inputs``) give
    identical outputs on random mixtures, batched and one row at a time."""
    inputs = [i for i in dict.fromkeys(inputs) if i not in constants]
    widths = [tensor_width(types, i) for i in inputs]
    made_before = {o for n in old for o in n.output}
    ends = [o for n in new for o in n.output if o in made_before]  # what the graph reads
    if (
        not ends
        or any(w is None for w in widths)
        or any(types[i].elem_type != TensorProto.DOUBLE for i in inputs)
        or any(o not in types for o in ends)
    ):
        return False
    renamed = []
    produced = {o for n in new for o in n.output}
    for node in new:
        copy = NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [f"{i}__new" if i in produced else i for i in copy.input]
        copy.output[:] = [f"{o}__new" for o in copy.output]
        renamed.append(copy)
    names = {i for n in [*old, *new] for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in names]
    graph = helper.make_graph(
        [*old, *renamed],
        "check",
        [
            helper.make_tensor_value_info(i, TensorProto.DOUBLE, [None, w])
            for i, w in zip(inputs, widths, strict=True)
        ],
        [helper.make_tensor_value_info(o, types[o].elem_type, None) for o in ends]
        + [helper.make_tensor_value_info(f"{o}__new", types[o].elem_type, None) for o in ends],
        inits,
    )
    check = helper.make_model(graph, opset_imports=list(model.opset_import))
    check.ir_version = model.ir_version
    total = sum(w for w in widths if w is not None)
    x = mixtures([], total, CHECK_ROWS)
    x = x[np.random.default_rng(1).permutation(len(x))]
    feeds, start = {}, 0
    for i, w in zip(inputs, widths, strict=True):
        assert w is not None
        feeds[i] = np.ascontiguousarray(x[:, start : start + w])
        start += w
    try:
        from predictlib import default_session_options

        session = ort.InferenceSession(
            check.SerializeToString(), default_session_options(), providers=["CPUExecutionProvider"]
        )
        runs = [session.run(None, feeds)]
        for r in range(CHECK_SINGLE_ROWS):
            runs.append(session.run(None, {k: v[r : r + 1] for k, v in feeds.items()}))
    except Exception:  # noqa: BLE001 - what onnxruntime cannot run alone is not rewritten
        return False
    half = len(ends)
    return all(identical(a, b) for got in runs for a, b in zip(got[:half], got[half:], strict=True))


def identical(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape and type, NaN at the same places, the same bits everywhere else."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    bits = np.dtype(f"u{a.dtype.itemsize}")
    return bool(np.array_equal(a[~nan].view(bits), b[~nan].view(bits)))
