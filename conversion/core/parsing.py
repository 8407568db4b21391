"""Parsing: how a pipeline's steps become skl2onnx operators on frames and matrices.

The pipeline parser registered here replaces skl2onnx's: between the last frame
step and the first scikit-learn step it assembles the (numeric) frame into one
float64 matrix in column order, and, when an export is active, it puts a guard
before every scikit-learn step that flags the NaN / inf values the step would reject.
The graph inputs ``num`` / ``cat`` / ``dt`` become the first blocks of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skl2onnx import update_registered_converter
from skl2onnx._parse import _parse_sklearn, update_registered_parser
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from .frame import (
    DT,
    NUM,
    STR,
    ExportError,
    Frame,
    StepContext,
    current_step,
    declare_block,
    export_state,
    has_frame_converter,
    in_step,
    is_frame_aware,
    refuse_if_matrix,
    shape_calculator,
    step_label,
)
from .refused import check_convertible

# --------------------------------------------------- frame <-> matrix, guards, inputs


@dataclass
class FrameToMatrix:
    """Assemble numeric frame columns into one float64 matrix, in frame order."""

    columns: list[str]


@dataclass
class InputGuard:
    """Refuse rows a scikit-learn step's input validation would reject (NaN / inf)."""

    columns: list[str]
    allow_nan: bool
    estimator: str
    #: HistGradientBoosting accepts +-inf in numeric features (its converter refuses
    #: them in categorical ones, as scikit-learn does)
    allow_inf: bool = False


@dataclass
class GroupedInputs:
    """The grouped graph inputs (``num``: float64 [N, n], ``cat``: string [N, m],
    ``dt``: int64 [N, d] nanoseconds) as the first blocks of the frame; ``order`` is
    the frame's column order."""

    numeric: list[str]
    categorical: list[str]
    order: list[str]
    datetime: list[str] = field(default_factory=list)


def _convert_frame_to_matrix(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    ctx.node("Identity", [ctx.gather(operator.raw_operator.columns)], ctx.y())


def _convert_input_guard(scope: Any, operator: Any, container: Any) -> None:
    guard: InputGuard = operator.raw_operator
    ctx = StepContext(scope, operator, container)
    x = operator.inputs[0].full_name
    ctx.node("Identity", [x], ctx.y())
    if not guard.allow_nan:
        refuse_if_matrix(
            ctx.step,
            guard.estimator,
            guard.columns,
            ctx.node("IsNaN", [x]),
            "missing value (NaN) reaches a step that does not accept missing values "
            "(the column is not imputed, or an earlier step produced NaN)",
        )
    if not guard.allow_inf:
        refuse_if_matrix(
            ctx.step,
            guard.estimator,
            guard.columns,
            ctx.node("IsInf", [x]),
            "infinite value reaches a step that accepts only finite numbers",
        )


@dataclass
class FrameOutputs:
    """The final frame of a transformer-only export, as a float64, a string and an
    int64 (datetime) block."""

    numeric: list[str]
    categorical: list[str]
    datetime: list[str] = field(default_factory=list)


def _convert_frame_outputs(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    spec: FrameOutputs = operator.raw_operator
    for block, cols in enumerate(c for c in (spec.numeric, spec.categorical, spec.datetime) if c):
        ctx.node("Identity", [ctx.gather(cols)], ctx.y(block))


def parse_frame_outputs(scope: Any, inputs: list[Any]) -> tuple[list[Any], FrameOutputs]:
    """Declare the final ``num_out`` / ``cat_out`` blocks of a transformer-only export."""
    frame = Frame.from_variables(scope, inputs)
    columns = frame.columns()
    spec = FrameOutputs(
        [c.name for c in columns if c.kind == NUM],
        [c.name for c in columns if c.kind == STR],
        [c.name for c in columns if c.kind == DT],
    )
    op = scope.declare_local_operator("PredictlibFrameOutputs", spec)
    op.predictlib_frame = frame
    op.inputs = [b for b in frame.blocks if any(frame.where[c][0] is b for c in frame.order)]
    outputs = []
    for name, cols in (
        ("final_num", spec.numeric),
        ("final_cat", spec.categorical),
        ("final_dt", spec.datetime),
    ):
        if cols:
            var = declare_block(scope, [c for c in columns if c.name in set(cols)], name)
            op.outputs.append(var)
            outputs.append(var)
    return outputs, spec


update_registered_converter(FrameOutputs, "PredictlibFrameOutputs", shape_calculator, _convert_frame_outputs)
update_registered_converter(
    FrameToMatrix, "PredictlibFrameToMatrix", shape_calculator, _convert_frame_to_matrix
)
update_registered_converter(InputGuard, "PredictlibInputGuard", shape_calculator, _convert_input_guard)


def frame_from_grouped_inputs(scope: Any, spec: GroupedInputs, inputs: list[Any]) -> list[Any]:
    """The graph inputs ``num`` / ``cat`` / ``dt`` are blocks already: no node at all."""
    by_name = {v.raw_name: v for v in inputs}
    blocks = []
    for group, cols in (("num", spec.numeric), ("cat", spec.categorical), ("dt", spec.datetime)):
        if cols:
            by_name[group].predictlib_columns = list(cols)
            blocks.append(by_name[group])
    return Frame(blocks, spec.order).to_variables(scope)


def _to_matrix(scope: Any, model: Any, inputs: list[Any]) -> tuple[list[Any], list[str] | None]:
    """Make ``inputs`` one float64 matrix for a scikit-learn step; return it and its column names."""
    if len(inputs) == 1 and not hasattr(inputs[0], "predictlib_columns"):
        return inputs, None  # a matrix: a user input, or the output of a scikit-learn step
    frame = Frame.from_variables(scope, inputs)
    strings = [c.name for c in frame.columns() if c.kind == STR]
    if strings:
        raise ExportError(
            f"{step_label(model)} receives categorical (string) columns {strings}; "
            "scikit-learn estimators need numbers: encode them in an earlier step"
        )
    datetimes = [c.name for c in frame.columns() if c.kind == DT]
    if datetimes:
        raise ExportError(
            f"{step_label(model)} receives datetime columns {datetimes}; scikit-learn estimators "
            "need numbers: derive numbers from them in an earlier step (e.g. DatetimeFeatures "
            "with drop_original=True)"
        )
    live = {id(frame.where[c][0]) for c in frame.order}
    blocks = [b for b in frame.blocks if id(b) in live]
    if len(blocks) == 1 and blocks[0].predictlib_columns == frame.order:
        return blocks, list(frame.order)
    op = scope.declare_local_operator("PredictlibFrameToMatrix", FrameToMatrix(list(frame.order)))
    op.predictlib_frame = frame
    op.inputs = blocks
    out = declare_block(scope, frame.columns(), "matrix")
    op.outputs.append(out)
    return [out], list(frame.order)


#: scikit-learn estimators whose input validation lets +-inf through
INF_ACCEPTING = frozenset({"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"})


def _guard(scope: Any, model: Any, inputs: list[Any], names: list[str] | None) -> list[Any]:
    if export_state() is None:
        return inputs
    var = inputs[0]
    width = var.type.shape[1] if len(var.type.shape) == 2 else None
    if not isinstance(width, int):
        width = getattr(model, "n_features_in_", None)
    if not isinstance(width, int):
        raise ExportError(f"{step_label(model)}: the width of its input matrix is unknown")
    if names is None or len(names) != width:
        names = [f"{current_step()}[{j}]" for j in range(width)]
    guard = InputGuard(
        list(names),
        bool(get_tags(model).input_tags.allow_nan),
        type(model).__name__,
        allow_inf=type(model).__name__ in INF_ACCEPTING,
    )
    op = scope.declare_local_operator("PredictlibInputGuard", guard)
    op.predictlib_step = current_step()
    op.inputs = [var]
    out = scope.declare_local_variable("guarded", DoubleTensorType([None, width]))
    out.predictlib_names = list(names)  # for refusals raised by the estimator's converter
    op.outputs.append(out)
    return [out]


def _feature_names_out(model: Any, names: list[str] | None) -> list[str] | None:
    if names is None or not hasattr(model, "get_feature_names_out"):
        return None
    try:
        return [str(n) for n in model.get_feature_names_out(names)]
    except Exception:  # noqa: BLE001 - unnamed columns are only a message detail
        return None


def parse_pipeline(scope: Any, model: Pipeline, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """skl2onnx pipeline parser that understands frames (see the module docstring)."""
    names: list[str] | None = None
    for step_name, step in model.steps:
        if step is None or step == "passthrough":
            continue
        with in_step(step_name):
            check_convertible(step)  # not-convertible steps, feature-engine classes without a converter
            if has_frame_converter(type(step)) or isinstance(step, Pipeline) or is_frame_aware(type(step)):
                inputs = _parse_sklearn(scope, step, inputs, custom_parsers=custom_parsers)
                names = None
                continue
            inputs, frame_names = _to_matrix(scope, step, inputs)
            names = frame_names if frame_names is not None else names
            inputs = _guard(scope, step, inputs, names)
            if is_classifier(step) and (scope.options is None or id(step) not in scope.options):
                # an export wants plain (label, probabilities) tensors, never a ZipMap
                zipmap = export_state() is None
                scope.add_options(id(step), scope.get_options(model, {"zipmap": zipmap}))
            inputs = _parse_sklearn(scope, step, inputs, custom_parsers=custom_parsers)
            names = _feature_names_out(step, names)
            for var in inputs:
                if names is not None and len(inputs) == 1:
                    var.predictlib_columns = names
    return inputs


update_registered_parser(Pipeline, parse_pipeline)
