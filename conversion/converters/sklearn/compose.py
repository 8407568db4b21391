"""Converters for scikit-learn's composition: ``ColumnTransformer`` (and
``make_column_transformer``) and ``FeatureUnion`` (``make_union``).

Both are parsed on frames (:func:`~predictlib.build.core.frame.frame_aware`): each of
their fitted transformers receives the columns it was fitted on, by name when the
composition was fitted on a DataFrame (scikit-learn then selects by label at transform,
in any order) or by position otherwise, whatever the column specification was (names,
boolean masks, slices, ``make_column_selector`` on dtypes or patterns: the fitted
``_transformer_to_input_indices`` holds the columns each selected). A transformer is
converted as a one-step Pipeline would be: frame converters, nested pipelines and
compositions, or a scikit-learn step through skl2onnx on a float64 matrix (with its
input guard). ``"drop"`` and empty selections produce nothing, ``"passthrough"`` (a
fitted ``FunctionTransformer`` without function) passes its columns, text included.

The results are concatenated in order (``transformer_weights`` multiply the numeric
ones, as ``_transform_one`` does) and named as ``get_feature_names_out`` names them
(``verbose_feature_names_out``: ``"name__column"``, plain names, a format or a callable);
where scikit-learn cannot name them (duplicated plain names, a transformer without
``get_feature_names_out``) they are prefixed with the transformer's name, which the steps
after it never see (they were fitted on an array and select by position). Sparse and
dense outputs are the same numbers: the graph computes them dense.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skl2onnx import update_registered_converter
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline

from ...core.frame import (
    NUM,
    Column,
    ExportError,
    Frame,
    StepContext,
    by_kind,
    current_step,
    declare_block,
    frame_aware,
    no_converter,
    shape_calculator,
    step_label,
)
from ...core.parsing import parse_pipeline

#: what these parsers support, for the coverage table (docs/converters.md)
SUPPORTS: dict[type, str] = {
    ColumnTransformer: (
        "columns by name, boolean mask, slice, int, callable / make_column_selector (dtype_include, "
        "dtype_exclude, pattern); remainder drop / passthrough / a transformer; transformer_weights; "
        "verbose_feature_names_out True / False / format / callable; sparse_threshold (dense graph); "
        "nested Pipelines, ColumnTransformers and FeatureUnions; 'drop' and 'passthrough'; "
        "set_output pandas or numpy"
    ),
    FeatureUnion: (
        "transformer_list with 'drop' and 'passthrough', transformer_weights, verbose_feature_names_out; "
        "nested Pipelines and compositions"
    ),
}


#: the operators of the compositions themselves (the transformer weights)
COMPOSITION_OPS = frozenset({"Mul"})


@dataclass
class Piece:
    """One transformer's result inside a composition: its frame and its weight."""

    name: str
    frame: Frame
    weight: float | None


@dataclass
class Stack:
    """The output of a composition: ``pieces`` side by side, renamed ``names``."""

    owner: Any
    pieces: list[Piece] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def columns(self) -> list[Column]:
        kinds = [c.kind for p in self.pieces for c in p.frame.columns()]
        return [Column(n, k) for n, k in zip(self.names, kinds, strict=True)]


def _convert_stack(scope: Any, operator: Any, container: Any) -> None:
    stack: Stack = operator.raw_operator
    ctx = StepContext(scope, operator, container)
    out = stack.columns()
    kinds = {c.name: c.kind for c in out}
    for block, (kind, _) in enumerate(by_kind(kinds, [c.name for c in out])):
        parts = []
        for piece in stack.pieces:
            names = [c.name for c in piece.frame.columns() if c.kind == kind]
            if not names:
                continue
            ctx.frame = piece.frame
            x = ctx.gather(names)
            if kind == NUM and piece.weight is not None and piece.weight != 1:
                x = ctx.node("Mul", [x, ctx.const(float(piece.weight))])
            parts.append(x)
        if len(parts) > 1:
            ctx.node("Concat", parts, ctx.y(block), axis=1)
        else:
            ctx.node("Identity", parts, ctx.y(block))


update_registered_converter(Stack, "PredictlibStack", shape_calculator, _convert_stack)


def _parse_piece(scope: Any, name: str, transformer: Any, inputs: list[Any], custom_parsers: Any) -> Frame:
    """``transformer`` converted as a one-step pipeline named ``name`` on ``inputs``."""
    outputs = parse_pipeline(scope, Pipeline([(name, transformer)]), inputs, custom_parsers)
    for var in outputs:
        if not hasattr(var, "predictlib_columns"):  # a matrix from skl2onnx, names unknown
            width = var.type.shape[1] if len(var.type.shape) == 2 else None
            if not isinstance(width, int):
                raise ExportError(
                    f"{step_label(transformer)} in step '{current_step()}': the width of its output is unknown"
                )
            var.predictlib_columns = [f"{name}{j}" for j in range(width)]
    return Frame.from_variables(scope, outputs)


def _stack(scope: Any, model: Any, pieces: list[Piece], names: Sequence[str] | None) -> list[Any]:
    """Declare the operator that puts ``pieces`` side by side, named ``names`` (when
    they fit) or ``name__column``."""
    pieces = [p for p in pieces if p.frame.order]
    widths = sum(len(p.frame.order) for p in pieces)
    if widths == 0:
        raise ExportError(f"{step_label(model)} outputs no column (an empty frame is not exported)")
    if names is None or len(names) != widths or len(set(names)) != widths:
        names = [f"{p.name}__{c}" for p in pieces for c in p.frame.order]
    stack = Stack(model, pieces, [str(n) for n in names])
    op = scope.declare_local_operator("PredictlibStack", stack)
    op.predictlib_step = current_step()
    blocks: list[Any] = []
    for piece in pieces:
        for c in piece.frame.order:
            var = piece.frame.where[c][0]
            if all(var is not b for b in blocks):
                blocks.append(var)
    op.inputs = blocks
    out = stack.columns()
    kinds = {c.name: c.kind for c in out}
    new_blocks = [
        declare_block(scope, [Column(n, kind) for n in cols], "stacked")
        for kind, cols in by_kind(kinds, [c.name for c in out])
    ]
    op.outputs.extend(new_blocks)
    return Frame(new_blocks, stack.names).to_variables(scope)


def _names_out(model: Any, names: Sequence[str]) -> list[str] | None:
    try:
        return [str(n) for n in model.get_feature_names_out(list(names))]
    except (AttributeError, ValueError, TypeError):
        return None


# ------------------------------------------------------------------ ColumnTransformer


def _input_names(model: Any, frame: Frame) -> list[str]:
    """The names of the columns the composition was fitted on, in fitted order."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        names = [str(c) for c in fitted]
        return names
    n = getattr(model, "n_features_in_", None)
    if isinstance(n, int) and n != len(frame.order):
        raise ExportError(
            f"{step_label(model)} was fitted on {n} columns and receives {len(frame.order)} ({frame.order})"
        )
    return list(frame.order)


def parse_column_transformer(
    scope: Any, model: ColumnTransformer, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    frame = Frame.from_variables(scope, inputs)
    names = _input_names(model, frame)
    weights = model.transformer_weights or {}
    pieces: list[Piece] = []
    for name, transformer, _ in model.transformers_:
        indices = list(model._transformer_to_input_indices.get(name, []))
        if (isinstance(transformer, str) and transformer == "drop") or not indices:
            continue
        selected = [names[i] for i in indices]
        missing = [c for c in selected if c not in frame.where]
        if missing:
            raise ExportError(f"{step_label(model)}: columns {missing} (of transformer '{name}') are missing")
        if isinstance(transformer, str):  # "passthrough" (transformers_ holds a FunctionTransformer)
            piece = Frame(frame.blocks, selected)
        else:
            sub = Frame(frame.blocks, selected).to_variables(scope)
            piece = _parse_piece(scope, name, transformer, sub, custom_parsers)
        pieces.append(Piece(name, piece, weights.get(name)))
    return _stack(scope, model, pieces, _names_out(model, names))


update_registered_converter(
    ColumnTransformer,
    "PredictlibColumnTransformer",
    shape_calculator,
    no_converter,
    parser=parse_column_transformer,
)
frame_aware(ColumnTransformer)


# ------------------------------------------------------------------ FeatureUnion


def parse_feature_union(
    scope: Any, model: FeatureUnion, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    frame = Frame.from_variables(scope, inputs)
    names = list(frame.order)
    pieces: list[Piece] = []
    for name, transformer, weight in model._iter():
        sub = Frame(frame.blocks, names).to_variables(scope)
        pieces.append(Piece(name, _parse_piece(scope, name, transformer, sub, custom_parsers), weight))
    return _stack(scope, model, pieces, _names_out(model, names))


update_registered_converter(
    FeatureUnion, "PredictlibFeatureUnion", shape_calculator, no_converter, parser=parse_feature_union
)
frame_aware(FeatureUnion)
