"""Graph clean-ups after the export, each proven by ONNX shape inference:

* :func:`remove_no_ops`: a ``Cast`` to the type its input already has, a ``Reshape``
  to the shape its input already has, an ``Identity`` inside the graph. skl2onnx's
  converters emit some (the scaler's converter casts float64 to float64, the linear
  regressor's reshapes ``[N, 1]`` to ``[N, 1]``). onnxruntime keeps them, and for one
  record each node costs about as much as a useful one.
* :func:`select_columns_faster`: ``Gather(x, columns, axis=1)`` on a matrix becomes
  ``ArrayFeatureExtractor(x, columns)`` (ai.onnx.ml), the same copy: onnxruntime's
  Gather copies such a selection value by value, about ten times slower on large
  batches (65 ms against 7 ms for 79 columns of 100,000 rows here), and a little
  slower for one row too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from .fuse import ML, ONNX_DOMAINS, drop_unused, require_ml_opset

#: element types onnxruntime's ArrayFeatureExtractor takes
_EXTRACTABLE = {
    TensorProto.DOUBLE,
    TensorProto.FLOAT,
    TensorProto.INT64,
    TensorProto.INT32,
    TensorProto.STRING,
}


def simplify(model: ModelProto) -> dict[str, int]:
    """Every clean-up, in place; returns how many nodes each changed."""
    before = len(model.graph.node)
    done = {"no_ops_removed": remove_no_ops(model), "imputations_widened": widen_imputations(model)}
    done["plumbing_rebuilt"] = collapse_plumbing(model)
    drop_dead(model)
    done["nodes_saved"] = before - len(model.graph.node)
    done["column_selections"] = select_columns_faster(model)
    return done


# ------------------------------------------------------------------ imputations


def widen_imputations(model: ModelProto) -> int:
    """``Where(IsNaN(g), fill, g)`` with ``g`` = columns ``idx`` of a float64 matrix ``x``
    (an imputer's nodes) becomes a selection of ``Where(IsNaN(x), fill_x, x)``, where
    ``fill_x`` holds the fills at ``idx`` and NaN elsewhere: there, ``x`` stays as it is
    (a NaN is replaced by NaN). The imputations of one ``x`` share that one ``Where``:
    the imputers of a pipeline read the same input block, and three nodes each become
    two for all. :func:`collapse_plumbing` then reads the wide matrix directly. A NaN
    fill (a column a widened imputation leaves as it is) widens the same way."""
    graph = model.graph
    facts = graph_facts(model)
    if facts is None:
        return 0
    types, constants, producer = facts
    found: dict[str, list[tuple[NodeProto, list[int], Any]]] = {}
    for node in graph.node:
        if node.op_type != "Where" or node.domain not in ONNX_DOMAINS:
            continue
        mask, fill, g = node.input
        test, pick = producer.get(mask), producer.get(g)
        if test is None or test.op_type != "IsNaN" or test.input[0] != g or fill not in constants:
            continue
        picked = column_selection(pick, constants)
        if picked is None:
            continue
        x, idx = picked
        width = tensor_width(types, x)
        values = np.asarray(constants[fill], dtype=np.float64).reshape(-1)
        if (
            width is None
            or types[x].elem_type != TensorProto.DOUBLE
            or values.size != len(idx)
            or len(set(idx)) != len(idx)
        ):
            continue
        found.setdefault(x, []).append((node, idx, values))
    changed = 0
    for n, (x, wheres) in enumerate(found.items()):
        width = tensor_width(types, x)
        assert width is not None
        fill_x = np.full((1, width), np.nan)
        columns = [j for _, idx, _ in wheres for j in idx]
        if len(set(columns)) != len(columns):
            continue  # two fills for one column of the same input: not siblings
        for _, idx, values in wheres:
            fill_x[0, idx] = values
        mask, fill, wide = (fresh_name(graph, f"widened_{k}{n}") for k in ("isnan_", "fill_", ""))
        graph.initializer.append(numpy_helper.from_array(fill_x, fill))
        new = [
            helper.make_node("IsNaN", [x], [mask], name=mask),
            helper.make_node("Where", [mask, fill, x], [wide], name=wide),
        ]
        for node, idx, _ in wheres:
            columns_name = fresh_name(graph, f"{wide}_columns_{changed}")
            graph.initializer.append(numpy_helper.from_array(np.asarray(idx, dtype=np.int64), columns_name))
            node.CopyFrom(
                helper.make_node("Gather", [wide, columns_name], list(node.output), axis=1, name=node.name)
            )
            changed += 1
        _insert_after_producer(graph, x, new)
        # other tests of missing values on columns of x read the shared mask
        for node in graph.node:
            if node.op_type == "IsNaN" and node.output[0] != mask:
                picked = column_selection(producer.get(node.input[0]), constants)
                if picked is not None and picked[0] == x:
                    columns_name = fresh_name(graph, f"{mask}_columns_{changed}")
                    graph.initializer.append(
                        numpy_helper.from_array(np.asarray(picked[1], dtype=np.int64), columns_name)
                    )
                    node.CopyFrom(
                        helper.make_node(
                            "Gather", [mask, columns_name], list(node.output), axis=1, name=node.name
                        )
                    )
                    changed += 1
    return changed


def _insert_after_producer(graph: onnx.GraphProto, tensor: str, nodes: list[NodeProto]) -> None:
    """Insert ``nodes`` right after the node producing ``tensor`` (first for an input),
    keeping the graph's topological order."""
    at = 0
    for i, node in enumerate(graph.node):
        if tensor in node.output:
            at = i + 1
            break
    for k, node in enumerate(nodes):
        graph.node.insert(at + k, node)


# ---------------------------------------------------------------------- plumbing


def collapse_plumbing(model: ModelProto) -> int:
    """Rebuild each column selection of a concatenation of selections from the
    matrices the columns really come from: ``Gather(Concat(Gather(a, i), b), j)``
    becomes one ``Gather`` (or ``Concat`` + ``Gather``) of ``a`` and ``b``. A column
    of ``x`` that a widened imputation (:func:`widen_imputations`) leaves as it is
    is read from the wide matrix, so one input often does. The intermediate
    selections and concatenations are dropped once unused."""
    graph = model.graph
    facts = graph_facts(model)
    if facts is None:
        return 0
    types, constants, producer = facts
    # wide -> (x, columns of x it leaves unchanged)
    same_as: dict[str, tuple[str, set[int]]] = {}
    for node in graph.node:
        if node.op_type == "Where" and node.output[0].startswith("widened_"):
            fill = constants[node.input[1]].reshape(-1)
            same_as[node.output[0]] = (node.input[2], {int(j) for j in np.flatnonzero(np.isnan(fill))})

    def columns(tensor: str, depth: int = 0) -> list[tuple[str, int]] | None:
        node = producer.get(tensor)
        picked = column_selection(node, constants) if node is not None else None
        if picked is not None and depth < 8:
            inner = columns(picked[0], depth + 1)
            return None if inner is None else [inner[j] for j in picked[1]]
        if node is not None and node.op_type == "Concat" and _axis(node) in (1, -1) and depth < 8:
            out: list[tuple[str, int]] = []
            for part in node.input:
                inner = columns(part, depth + 1)
                if inner is None:
                    return None
                out.extend(inner)
            return out
        width = tensor_width(types, tensor)
        return None if width is None else [(tensor, j) for j in range(width)]

    rebuilt = 0
    i = 0
    while i < len(graph.node):
        node = graph.node[i]
        i += 1
        picked = column_selection(node, constants)
        source = producer.get(picked[0]) if picked is not None else None
        if source is None or source.op_type != "Concat":
            continue
        refs = columns(node.output[0])
        if refs is None:
            continue
        bases = {b for b, _ in refs}
        for wide, (x, kept) in same_as.items():
            if wide in bases and x in bases:
                refs = [(wide, j) if b == x and j in kept else (b, j) for b, j in refs]
        order = list(dict.fromkeys(b for b, _ in refs))
        kind = types[refs[0][0]].elem_type
        if any(types[b].elem_type != kind for b in order):
            continue
        offsets, start = {}, 0
        for b in order:
            offsets[b] = start
            start += tensor_width(types, b) or 0
        name = node.output[0]
        new: list[NodeProto] = []
        joined = order[0]
        if len(order) > 1:
            joined = fresh_name(graph, f"{name}_joined")
            new.append(helper.make_node("Concat", order, [joined], axis=1, name=joined))
        indices = np.asarray([offsets[b] + j for b, j in refs], dtype=np.int64)
        columns_name = fresh_name(graph, f"{name}_columns")
        graph.initializer.append(numpy_helper.from_array(indices, columns_name))
        new.append(helper.make_node("Gather", [joined, columns_name], [name], axis=1, name=f"{name}_select"))
        del graph.node[i - 1]
        for k, n in enumerate(new):
            graph.node.insert(i - 1 + k, n)
        i += len(new) - 1
        rebuilt += 1
        producer = {o: n for n in graph.node for o in n.output}
    return rebuilt


def column_selection(node: NodeProto | None, constants: dict[str, Any]) -> tuple[str, list[int]] | None:
    """(matrix, columns) when ``node`` selects constant columns of a matrix."""
    if node is None or len(node.input) != 2 or node.input[1] not in constants:
        return None
    is_gather = node.op_type == "Gather" and node.domain in ONNX_DOMAINS and _axis(node) in (1, -1)
    is_extractor = node.op_type == "ArrayFeatureExtractor" and node.domain == "ai.onnx.ml"
    indices = np.asarray(constants[node.input[1]])
    if not (is_gather or is_extractor) or indices.ndim != 1 or indices.size == 0 or (indices < 0).any():
        return None
    return node.input[0], [int(i) for i in indices]


def _axis(node: NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 0)


def tensor_width(types: dict[str, Any], tensor: str) -> int | None:
    t = types.get(tensor)
    if t is None or not t.HasField("shape") or len(t.shape.dim) != 2:
        return None
    dim = t.shape.dim[1]
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def drop_dead(model: ModelProto) -> None:
    """Remove nodes whose outputs nothing reads, then unused initializers."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        kept = [n for n in graph.node if any(o in used for o in n.output)]
        if len(kept) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(kept)
    drop_unused(graph)


def _types(model: ModelProto) -> dict[str, Any] | None:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    except Exception:  # noqa: BLE001 - without types nothing is proven: nothing changes
        return None
    return {v.name: v.type.tensor_type for v in [*inferred.input, *inferred.value_info, *inferred.output]}


def fresh_name(graph: onnx.GraphProto, base: str) -> str:
    """``base``, or ``base`` with a number, so that it names no tensor of ``graph`` yet
    (the clean-ups may run again on a graph they already changed)."""
    taken = (
        {t.name for t in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
    )
    taken |= {o for n in graph.node for o in n.output}
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def graph_facts(model: ModelProto) -> tuple[dict[str, Any], dict[str, Any], dict[str, NodeProto]] | None:
    """The tensors' inferred types, the constants' values and each tensor's producer;
    None when shape inference fails (then nothing is changed)."""
    types = _types(model)
    if types is None:
        return None
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    return types, constants, producer


def select_columns_faster(model: ModelProto) -> int:
    """Replace column selections by ArrayFeatureExtractor (in place); return how many."""
    types = _types(model)
    if types is None:
        return 0
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Gather" or node.domain not in ONNX_DOMAINS or node.input[1] not in constants:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        indices = constants[node.input[1]]
        source = types.get(node.input[0])
        if (
            source is None
            or source.elem_type not in _EXTRACTABLE
            or not source.HasField("shape")
            or len(source.shape.dim) != 2
            or axis not in (1, -1)
            or indices.ndim != 1
            or indices.size == 0
            or (indices < 0).any()
        ):
            continue
        width = source.shape.dim[1]
        if not width.HasField("dim_value") or indices.max() >= width.dim_value:
            continue
        node.CopyFrom(
            helper.make_node(
                "ArrayFeatureExtractor", list(node.input), list(node.output), domain=ML, name=node.name
            )
        )
        changed += 1
    if changed:
        require_ml_opset(model, 1)
    return changed


def remove_no_ops(model: ModelProto) -> int:
    """Remove the no-op nodes of ``model`` in place; return how many were removed."""
    graph = model.graph
    types = _types(model)
    if types is None:
        return 0
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    renamed: dict[str, str] = {}
    kept: list[NodeProto] = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        if node.output[0] not in outputs and _is_no_op(node, types, constants):
            renamed[node.output[0]] = node.input[0]
        else:
            kept.append(node)
    removed = len(graph.node) - len(kept)
    if removed:
        del graph.node[:]
        graph.node.extend(kept)
        drop_unused(graph)
    return removed


def _is_no_op(node: NodeProto, types: dict[str, Any], constants: dict[str, Any]) -> bool:
    if node.domain not in ONNX_DOMAINS or len(node.output) != 1 or not node.input:
        return False
    source = types.get(node.input[0])
    if source is None or not source.elem_type:
        return False
    if node.op_type == "Identity":
        return True
    if node.op_type == "Cast":
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        return to == source.elem_type
    if node.op_type == "Reshape" and len(node.input) == 2 and node.input[1] in constants:
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            return False
        target = [int(v) for v in constants[node.input[1]].reshape(-1)]
        if not source.HasField("shape"):
            return False
        dims = [d.dim_value if d.HasField("dim_value") else None for d in source.shape.dim]
        if len(dims) != len(target) or target.count(-1) > 1:
            return False
        # every fixed target dimension equals the input's (0 copies it); one -1 may stand
        # for the input's unknown dimension, the rest being equal
        return all(
            t == d or t == 0 or (t == -1 and (d is None or d >= 0)) for t, d in zip(target, dims, strict=True)
        )
    return False


# ------------------------------------------------------------------ MatMul scales


def protect_matmul_scales(model: ModelProto) -> int:
    """Keep onnxruntime from folding a float64 scale into a ``MatMul``, in place; return
    how many scales were rewritten.

    onnxruntime's ``MatMulScaleFusion`` (graph optimisation level "extended", the default)
    turns ``Mul`` / ``Div`` by a one-element constant before or after a ``MatMul`` into a
    ``FusedMatMul`` whose ``alpha`` attribute is a float32: 1/3 becomes
    0.3333333432674408, and a single-column ``StandardScaler`` before a linear model is
    off by 1e-5 relative. A scale counts only when it has one element, so each such
    constant becomes a row: of the tensor's width, or, for a one-column tensor, of two
    values applied to the column doubled (``Concat``) and taken back (``Gather``)."""
    facts = graph_facts(model)
    if facts is None:
        return 0
    types, constants, producer = facts
    graph = model.graph
    consumers: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for node in list(graph.node):
        if node.op_type not in ("Mul", "Div") or node.domain not in ONNX_DOMAINS:
            continue
        positions = [1] if node.op_type == "Div" else [0, 1]
        scale = next(
            (k for k in positions if node.input[k] in constants and constants[node.input[k]].size == 1), None
        )
        if scale is None or constants[node.input[scale]].dtype != np.float64:
            continue
        other = node.input[1 - scale]
        before = producer.get(other)
        near = (before is not None and before.op_type == "MatMul") or any(
            c.op_type == "MatMul" for c in consumers.get(node.output[0], [])
        )
        width = tensor_width(types, other)
        if not near or width is None:
            continue
        value = float(constants[node.input[scale]].reshape(-1)[0])
        row = fresh_name(graph, f"{node.output[0]}_scale_row")
        graph.initializer.append(numpy_helper.from_array(np.full((1, max(width, 2)), value), row))
        node.input[scale] = row
        if width == 1:
            doubled = fresh_name(graph, f"{other}_doubled")
            result = node.output[0]
            wide = fresh_name(graph, f"{result}_doubled")
            first = fresh_name(graph, f"{result}_first_column")
            graph.initializer.append(numpy_helper.from_array(np.array([0], dtype=np.int64), first))
            node.input[1 - scale] = doubled
            node.output[0] = wide
            index = list(graph.node).index(node)
            graph.node.insert(
                index, helper.make_node("Concat", [other, other], [doubled], axis=1, name=doubled)
            )
            graph.node.insert(
                index + 2, helper.make_node("Gather", [wide, first], [result], axis=1, name=f"{result}_taken")
            )
        rewritten += 1
    if rewritten:
        drop_unused(graph)
    return rewritten
