"""What the boosting libraries' converters share (LightGBM, XGBoost, CatBoost).

Registration (:func:`register_boosting`): the estimator's parser takes the frame
itself (:func:`~predictlib.build.core.frame.frame_aware`), so a boosting model inside a
feature-engine / scikit-learn pipeline gets

* its numeric columns as they are: no input guard, since the three libraries accept
  missing values (NaN) and infinities in numeric features;
* its text columns too -- the categories the library learnt from pandas ``category``
  columns (or CatBoost's ``cat_features``) -- which each converter maps to the
  library's own code for the text (:func:`feature_matrix`).

After another scikit-learn step (a matrix), the model reads that matrix.

The boosting libraries are build-time dependencies only: each converter module
imports its library inside ``try`` and registers nothing when it is not installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
from sklearn.pipeline import Pipeline

from ..core.frame import (
    DT,
    NUM,
    STR,
    ExportError,
    Frame,
    StepContext,
    current_step,
    export_state,
    frame_aware,
    in_step,
    shape_calculator,
    step_label,
    step_path,
)
from ..core.trees import class_labels
from .feature_engine.encoding import lookup


@dataclass(frozen=True)
class BoostingEntry:
    """A registered boosting estimator, for the coverage table (docs/converters.md)."""

    cls: type
    library: str
    classifier: bool
    supports: str


_REGISTRY: dict[type, BoostingEntry] = {}
_ERRORS: list[type[BaseException]] = []


def library_errors() -> tuple[type[BaseException], ...]:
    """The exception classes a boosting library raises on a row it refuses that are not
    ValueError / TypeError (e.g. ``CatBoostError`` on a missing category): the build's
    verification counts them as the original refusing the row."""
    return tuple(_ERRORS)


def registered_boosting() -> dict[type, BoostingEntry]:
    """The boosting libraries' estimator classes converted (those whose library is installed)."""
    return dict(_REGISTRY)


def register_boosting(
    cls: type,
    converter: Callable[[Any, Any, Any], None],
    *,
    library: str,
    classifier: bool,
    supports: str,
    errors: Sequence[type[BaseException]] = (),
) -> None:
    """Register ``converter`` for ``cls`` with skl2onnx, with the frame-taking parser;
    ``errors``: what the library raises on a row it refuses (see :func:`library_errors`)."""
    _REGISTRY[cls] = BoostingEntry(cls, library, classifier, supports)
    _ERRORS.extend(e for e in errors if e not in _ERRORS)
    update_registered_converter(
        cls,
        f"Predictlib{cls.__name__}",
        shape_calculator,
        converter,
        parser=_parse_classifier if classifier else _parse_regressor,
        options={"zipmap": [False], "nocl": [False]} if classifier else None,
    )
    frame_aware(cls)


def _declare(scope: Any, model: Any, inputs: list[Any]) -> Any:
    op = scope.declare_local_operator(f"Predictlib{type(model).__name__}", model)
    op.predictlib_step = current_step()
    op.predictlib_path = step_path()
    if len(inputs) == 1 and not hasattr(inputs[0], "predictlib_columns"):
        op.inputs = list(inputs)  # a matrix (a user input, or a scikit-learn step's output)
        return op
    frame = Frame.from_variables(scope, inputs)
    dates = [c.name for c in frame.columns() if c.kind == DT]
    if dates:
        raise ExportError(
            f"{step_label(model)} receives datetime columns {dates}: derive numbers from them in an "
            "earlier step (e.g. DatetimeFeatures with drop_original=True)"
        )
    op.predictlib_frame = frame
    live = {id(frame.where[c][0]) for c in frame.order}
    op.inputs = [b for b in frame.blocks if id(b) in live]
    return op


def _parse_regressor(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    op = _declare(scope, model, inputs)
    out = scope.declare_local_variable("prediction", DoubleTensorType([None, 1]))
    op.outputs.append(out)
    return [out]


def _parse_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    op = _declare(scope, model, inputs)
    _, dtype = class_labels(model)
    label = scope.declare_local_variable(
        "label", Int64TensorType([None]) if dtype is np.int64 else StringTensorType([None])
    )
    proba = scope.declare_local_variable("probabilities", DoubleTensorType([None, len(model.classes_)]))
    op.outputs.extend([label, proba])
    return [label, proba]


def input_names(operator: Any, n_features: int) -> list[str]:
    """The column names of the model's input (the frame's, or ``step[j]`` for a matrix)."""
    frame: Frame | None = getattr(operator, "predictlib_frame", None)
    if frame is not None:
        return list(frame.order)
    names = getattr(operator.inputs[0], "predictlib_columns", None)
    if names is not None and len(names) == n_features:
        return [str(n) for n in names]
    step = getattr(operator, "predictlib_step", current_step())
    return [f"{step}[{j}]" for j in range(n_features)]


def feature_matrix(
    ctx: StepContext,
    operator: Any,
    feature_names: Sequence[str] | None,
    n_features: int,
    text_codes: Callable[[list[str]], Sequence[Mapping[str, float]]] | None = None,
) -> str:
    """The model's float64 input matrix ``[N, n_features]``, features in the model's order.

    From a frame: its columns in frame order (checked against ``feature_names`` when the
    model was fitted on a DataFrame); text columns become
    ``text_codes(text_columns)[j].get(text, NaN)`` (the library's code of each text,
    NaN for a missing value or a text the model does not know). ``text_codes`` None:
    text columns are refused."""
    frame: Frame | None = getattr(operator, "predictlib_frame", None)
    model = ctx.model
    if frame is None:
        var = operator.inputs[0]
        width = var.type.shape[1] if len(var.type.shape) == 2 else None
        if isinstance(width, int) and width != n_features:
            raise ExportError(f"{step_label(model)} expects {n_features} features, its input has {width}")
        if isinstance(var.type, DoubleTensorType):
            return str(var.full_name)
        return ctx.node("Cast", [var.full_name], to=TensorProto.DOUBLE)
    order = list(frame.order)
    if len(order) != n_features:
        raise ExportError(
            f"{step_label(model)} was fitted on {n_features} features, the frame reaching it has "
            f"{len(order)} columns: {order}"
        )
    if feature_names is not None and [str(f) for f in feature_names] != order:
        raise ExportError(
            f"{step_label(model)} was fitted on the columns {list(feature_names)}, the frame reaching it "
            f"has {order} (same names, same order expected)"
        )
    kinds = {c.name: c.kind for c in frame.columns()}
    numeric = [c for c in order if kinds[c] == NUM]
    text = [c for c in order if kinds[c] == STR]
    if not text:
        return ctx.gather(numeric)
    if text_codes is None:
        raise ExportError(
            f"{step_label(model)} receives text columns {text}: encode them in an earlier step "
            "(the model was not fitted on categorical columns it could map them with)"
        )
    codes = lookup(ctx, ctx.gather(text), list(text_codes(text)), np.nan, NUM)
    parts = [ctx.gather(numeric), codes] if numeric else [codes]
    joined = ctx.node("Concat", parts, axis=1) if len(parts) > 1 else codes
    position = {c: j for j, c in enumerate([*numeric, *text])}
    return ctx.node("Gather", [joined, ctx.const([position[c] for c in order], np.int64)], axis=1)


@contextlib.contextmanager
def at_step(operator: Any) -> Iterator[None]:
    """Run the conversion of ``operator`` inside its step path (the one it was parsed in), so
    that errors name the step (``model_error``) and :func:`training_input` finds it."""
    path: tuple[str, ...] = getattr(operator, "predictlib_path", ())
    with contextlib.ExitStack() as stack:
        if not step_path():  # converters run after the parsing, outside the steps
            stack.enter_context(_path(path))
        yield


@contextlib.contextmanager
def _path(path: tuple[str, ...]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for name in path:
            stack.enter_context(in_step(name))
        yield


def training_input(model: Any) -> Any:
    """The input ``model`` (the step being converted, inside :func:`at_step`) was fitted on,
    recomputed from the frame the export was given (``export_pipeline(..., X_train=...)``,
    as :func:`predictlib.build.package` does): ``X_train`` transformed by the steps before
    it, through nested pipelines. None when the export was not given the frame or the step
    is not reached through pipelines only (e.g. inside a ColumnTransformer)."""
    state = export_state()
    if state is None or state.X_train is None:
        return None
    current, X = state.model, state.X_train
    for name in step_path():
        if current is model:
            break
        if not isinstance(current, Pipeline):
            return None
        names = [n for n, _ in current.steps]
        if name not in names:
            return None
        index = names.index(name)
        if index > 0:
            X = current[:index].transform(X)
        current = current.steps[index][1]
    return X if current is model else None
