"""Converters for meta-estimators: scikit-learn's ``TransformedTargetRegressor`` and
feature-engine's ``SklearnTransformerWrapper``.

``TransformedTargetRegressor`` (a model trained on ``log(y)`` that predicts ``y``):
the inverse function runs inside the graph, so every client gets the same numbers.

``SklearnTransformerWrapper`` applies a scikit-learn transformer to ``variables_``
only, as feature-engine's ``transform`` does:

* selectors (``SelectKBest``, ``VarianceThreshold``...): the columns of
  ``features_to_drop_`` are dropped -- the inner transformer is not even called;
* ``OneHotEncoder`` / ``PolynomialFeatures``: the variables are dropped and the new
  columns (``get_feature_names_out``) appended at the end of the frame;
* every other transformer replaces the variables in place.

The inner transformer runs through its own converter (``predictlib.build.converters.sklearn``:
scalers, ``Binarizer``, ``Normalizer``, ``KBinsDiscretizer``, ``FunctionTransformer``,
``SimpleImputer``, ``PolynomialFeatures``, the encoders) on the variables, with its input
validation: rows the inner transformer rejects are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from feature_engine._prediction.target_mean_classifier import TargetMeanClassifier
from feature_engine._prediction.target_mean_regressor import TargetMeanRegressor
from feature_engine.wrappers import SklearnTransformerWrapper
from feature_engine.wrappers.wrappers import _SELECTORS
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx._parse import _parse_sklearn
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
from sklearn.compose import TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from ...core.frame import (
    MISSING,
    NUM,
    STR,
    Column,
    ExportError,
    Frame,
    FrameConverter,
    Plan,
    StepContext,
    current_step,
    declare_step,
    frame_aware,
    frame_step_converter,
    frame_step_parser,
    register_converter,
    registered_frame_converters,
    shape_calculator,
    step_label,
)
from ..sklearn import encoders, impute  # noqa: F401 - the inner transformers' converters
from ..sklearn.base import SklearnConverter
from ..sklearn.preprocessing import FUNCTIONS, supported_functions
from .creation import RowStatistics

# ------------------------------------------------------------ TransformedTargetRegressor

#: inverse functions of TransformedTargetRegressor that have an exact graph
_INVERSES = {None: "identity", np.exp: "exp"}


def _inverse_name(model: TransformedTargetRegressor) -> str:
    if model.transformer is not None:
        raise ExportError(
            f"{step_label(model)}: a target transformer ({type(model.transformer).__name__}) is "
            "not exported; use func/inverse_func"
        )
    inverse = model.inverse_func
    name = next((n for f, n in _INVERSES.items() if f is inverse), None)
    if name is None:
        raise ExportError(
            f"{step_label(model)}: inverse_func={inverse!r} is not exported (supported: numpy.exp, None)"
        )
    return name


def _parse_ttr(
    scope: Any, model: TransformedTargetRegressor, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    name = _inverse_name(model)
    outputs = _parse_sklearn(scope, model.regressor_, inputs, custom_parsers=custom_parsers)
    if name == "identity":
        return list(outputs)
    out = scope.declare_local_variable("target", DoubleTensorType([None, 1]))
    declare_step(scope, "PredictlibTransformedTarget", model, [outputs[0]], [out])
    return [out]


def _convert_ttr(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    x = operator.inputs[0].full_name
    y = operator.outputs[0].full_name
    ctx.node("Exp", [x], y)


update_registered_converter(
    TransformedTargetRegressor,
    "PredictlibTransformedTarget",
    shape_calculator,
    _convert_ttr,
    parser=_parse_ttr,
)
frame_aware(TransformedTargetRegressor)

#: the meta-estimators / predictors converted here (not frame converters): what they
#: support, for the coverage table (docs/converters.md)
SUPPORTS: dict[type, str] = {
    TransformedTargetRegressor: (
        "inverse_func None (identity) or numpy.exp, transformer None; the regressor through its converter"
    ),
}


# ------------------------------------------------------------ SklearnTransformerWrapper

#: inner scalers (their converters in predictlib.build.converters.sklearn.preprocessing)
_DELEGATED = (StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler)
_CREATORS = (OneHotEncoder, PolynomialFeatures)
_OWN = (
    Binarizer,
    SimpleImputer,
    FunctionTransformer,
    KBinsDiscretizer,
    Normalizer,
    OrdinalEncoder,
    *_CREATORS,
)


def _inner(model: Any) -> Any:
    inner = model.transformer_
    name = type(inner).__name__
    if name in _SELECTORS:
        return inner
    if type(inner) not in (*_DELEGATED, *_OWN):
        raise ExportError(
            f"{step_label(model)}: wrapped transformer {name} is not exported (supported: the "
            f"selectors, {', '.join(sorted(c.__name__ for c in (*_DELEGATED, *_OWN)))})"
        )
    return inner


def _refuse(model: Any, reason: str) -> ExportError:
    return ExportError(f"{step_label(model)}: wrapped {type(model.transformer_).__name__}: {reason}")


def _same_kind(model: Any, columns: Sequence[Column], variables: Sequence[str], allowed: str | None) -> str:
    """The kind shared by ``variables`` (``allowed`` when given)."""
    kinds = {c.name: c.kind for c in columns}
    found = {kinds[v] for v in variables}
    if allowed is not None and found - {allowed}:
        wrong = [v for v in variables if kinds[v] != allowed]
        raise _refuse(model, f"variables {wrong} are not {'numeric' if allowed == NUM else 'text'} columns")
    if len(found) != 1:
        raise _refuse(model, "variables mix numeric and text columns (the transformer returns objects)")
    return found.pop()


def _new_columns(model: Any, columns: Sequence[Column], variables: Sequence[str]) -> Plan:
    """Plan of the creators: the variables dropped, the new columns appended."""
    inner = model.transformer_
    if isinstance(inner, PolynomialFeatures) and inner.n_output_features_ == 0:
        raise _refuse(model, "it creates no column (scikit-learn's transform raises); not exported")
    new = [str(n) for n in inner.get_feature_names_out(model.variables_)]
    kept = [c.name for c in columns if c.name not in set(variables)]
    clash = sorted(set(new) & set(kept))
    if clash or len(set(new)) != len(new):
        raise _refuse(model, f"new columns {new} duplicate existing column names {clash}")
    if not new:
        raise _refuse(model, "it creates no column (every category is dropped); not exported")
    return Plan(list(variables), [[Column(n, NUM) for n in new]], kept + new)


def _check_inner(model: Any, inner: Any, columns: Sequence[Column], variables: list[str]) -> str:
    """Export-time checks of the inner transformer; returns the kind of its variables."""
    if isinstance(inner, FunctionTransformer) and inner.func is None and not inner.validate:
        return NUM  # the identity, whatever the columns
    kinds = {c.name: c.kind for c in columns}
    dates = [v for v in variables if kinds[v] not in (NUM, STR)]
    if dates:
        raise _refuse(model, f"variables {dates} are datetime columns; not exported")
    if isinstance(inner, (*_DELEGATED, Binarizer, KBinsDiscretizer, Normalizer, PolynomialFeatures)):
        kind = _same_kind(model, columns, variables, NUM)
    elif isinstance(inner, (OneHotEncoder, OrdinalEncoder)):
        kind = NUM  # its output; the variables may be of both kinds
    else:
        kind = _same_kind(model, columns, variables, None)
    if isinstance(inner, KBinsDiscretizer) and inner.encode != "ordinal":
        raise _refuse(
            model, f"encode={inner.encode!r} makes columns feature-engine cannot put back; not exported"
        )
    if isinstance(inner, KBinsDiscretizer) and inner.dtype not in (None, np.float64):
        raise _refuse(model, f"dtype={inner.dtype!r} (the bins are computed in float32); not exported")
    if isinstance(inner, FunctionTransformer):
        if inner.func is not None and inner.func not in FUNCTIONS:
            raise _refuse(
                model,
                f"func={inner.func!r} is not exported (supported: None or numpy's {supported_functions()})",
            )
        if inner.kw_args:
            raise _refuse(model, f"kw_args={inner.kw_args!r} is not exported")
        if kind == STR and (inner.func is not None or inner.validate):
            raise _refuse(model, "a function or validate=True on text columns raises; not exported")
    if isinstance(inner, SimpleImputer):
        _check_imputer(model, inner, kind)
    if isinstance(inner, (OneHotEncoder, OrdinalEncoder)):
        _check_categories(model, inner, columns, variables)
    if isinstance(inner, OrdinalEncoder) and inner.dtype not in (np.float64, float):
        raise _refuse(model, f"dtype={inner.dtype!r} is not exported (float64 only)")
    return kind


def _check_imputer(model: Any, inner: SimpleImputer, kind: str) -> None:
    if inner.add_indicator:
        raise _refuse(model, "add_indicator=True adds columns feature-engine cannot put back; not exported")
    statistics = list(inner.statistics_)
    empty = [v for v, s in zip(model.variables_, statistics, strict=True) if _is_nan(s)]
    if empty and not inner.keep_empty_features:
        raise _refuse(
            model,
            f"variables {empty} had no value at fit: the imputer drops them and feature-engine's "
            "transform raises",
        )
    mv = inner.missing_values
    if kind == STR:
        if not _is_nan(mv):
            raise _refuse(model, f"missing_values={mv!r} on text columns is not exported (only NaN)")
        bad = [s for s in statistics if not isinstance(s, str) or s == MISSING]
        if bad:
            raise _refuse(model, f"fill values {bad} are not strings (or are the missing-value marker)")
    elif not (_is_nan(mv) or (isinstance(mv, (int, float)) and not isinstance(mv, bool))):
        raise _refuse(model, f"missing_values={mv!r} is not exported (NaN or a number)")


def _is_nan(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _category_key(value: Any) -> Any:
    """A category as the graph sees it: missing (None / NaN) -> MISSING for text."""
    return MISSING if value is None or _is_nan(value) else value


def _check_categories(model: Any, inner: Any, columns: Sequence[Column], variables: list[str]) -> None:
    if getattr(inner, "_infrequent_enabled", False):
        raise _refuse(model, "infrequent categories (min_frequency / max_categories) are not exported")
    kinds = {c.name: c.kind for c in columns}
    for var, cats in zip(variables, inner.categories_, strict=True):
        values = list(cats)
        if kinds[var] == NUM:
            bad = [
                c for c in values if isinstance(c, (str, bool)) or not isinstance(c, (int, float, np.number))
            ]
            if bad:
                raise _refuse(model, f"numeric column '{var}' has non-numeric categories {bad[:5]}")
        else:
            keys = [_category_key(c) for c in values]
            bad = [c for c in values if not (isinstance(c, str) or _category_key(c) == MISSING)]
            if bad:
                raise _refuse(model, f"column '{var}' has non-string categories {bad[:5]}")
            if MISSING in [c for c in values if isinstance(c, str)] or keys.count(MISSING) > 1:
                raise _refuse(
                    model,
                    f"column '{var}': categories {values[:5]}... collide on the missing-value marker",
                )


@register_converter
class SklearnTransformerWrapperConverter(FrameConverter):
    transformer = SklearnTransformerWrapper
    supports = (
        "selectors (GenericUnivariateSelect, RFE, RFECV, SelectFdr, SelectFpr, SelectFromModel, SelectFwe, "
        "SelectKBest, SelectPercentile, SequentialFeatureSelector, VarianceThreshold); StandardScaler, "
        "RobustScaler, MaxAbsScaler, MinMaxScaler (clip); Binarizer; Normalizer l1 / l2 / max; "
        "KBinsDiscretizer (ordinal); SimpleImputer (numeric or text, missing_values NaN or a number, "
        "keep_empty_features); FunctionTransformer (func None or numpy's element-wise functions; validate); "
        "OneHotEncoder (numeric / text, drop, handle_unknown error / ignore / "
        "infrequent_if_exist / warn, missing categories); OrdinalEncoder (numeric / text, handle_unknown error / "
        "use_encoded_value, encoded_missing_value); PolynomialFeatures (degree, interaction_only, "
        "include_bias)"
    )
    #: the inner transformers' converters' operators
    onnx_ops = frozenset().union(
        *(registered_frame_converters()[cls].onnx_ops or () for cls in (*_DELEGATED, *_OWN))
    )

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        inner = _inner(model)
        if type(inner).__name__ in _SELECTORS:
            dropped = {str(c) for c in model.features_to_drop_}
            kept = [c.name for c in columns if c.name not in dropped]
            if not kept:
                raise _refuse(model, "the selector drops every column (an empty frame is not exported)")
            return Plan([], [], kept)
        variables = [str(v) for v in model.variables_]
        kind = _check_inner(model, inner, columns, variables)
        if isinstance(inner, _CREATORS):
            return _new_columns(model, columns, variables)
        if isinstance(inner, FunctionTransformer) and inner.func is None and not inner.validate:
            return Plan([], [], [c.name for c in columns])  # the identity
        return self.in_place(columns, variables, kind)

    def convert(self, ctx: StepContext, model: Any) -> None:
        """The inner transformer's own converter (predictlib.build.converters.sklearn) on
        the variables: its input validation, then its nodes."""
        inner = model.transformer_
        inputs = [Column(str(v), ctx.kind(str(v))) for v in model.variables_]
        converter = registered_frame_converters()[type(inner)]
        assert isinstance(converter, SklearnConverter)
        converter.validate(ctx, inner, inputs)
        (tensor,) = converter.emit(ctx, inner, inputs).values()
        ctx.node("Identity", [tensor], ctx.y())


update_registered_converter(
    SklearnTransformerWrapper,
    "PredictlibSklearnTransformerWrapper",
    shape_calculator,
    frame_step_converter,
    parser=frame_step_parser,
)


# ------------------------------------------------------------ TargetMeanRegressor / Classifier


def _target_mean_variables(model: Any) -> list[str]:
    return [str(v) for v in [*model.variables_numerical_, *model.variables_categorical_]]


def _parse_target_mean(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """feature-engine's target-mean predictors: the fitted internal pipeline
    (``_pipeline``: discretisers with interval labels, then mean encoders with
    unseen="raise", or a mean encoder alone) through its own converters -- whose
    refusals are the predictor's NaN / inf / unseen checks -- then the row mean of the
    encoded variables."""
    outputs = _parse_sklearn(scope, model._pipeline, inputs, custom_parsers=custom_parsers)
    frame = Frame.from_variables(scope, outputs)
    variables = _target_mean_variables(model)
    op = scope.declare_local_operator(f"Predictlib{type(model).__name__}", model)
    op.predictlib_step = current_step()
    op.predictlib_frame = frame
    blocks: list[Any] = []
    for v in variables:
        var = frame.where[v][0]
        if all(var is not b for b in blocks):
            blocks.append(var)
    op.inputs = blocks
    if isinstance(model, TargetMeanRegressor):
        result = [scope.declare_local_variable("target_mean", DoubleTensorType([None, 1]))]
    else:
        labels = np.asarray(model.classes_)
        label_type = StringTensorType([None]) if labels.dtype.kind in "OUS" else Int64TensorType([None])
        result = [
            scope.declare_local_variable("label", label_type),
            scope.declare_local_variable("probabilities", DoubleTensorType([None, 2])),
        ]
    op.outputs.extend(result)
    return result


def _convert_target_mean(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    variables = _target_mean_variables(model)
    # X_tr[numerical + categorical].mean(axis=1)
    mean = RowStatistics(ctx, ctx.gather(variables), len(variables)).mean()
    if isinstance(model, TargetMeanRegressor):
        ctx.node("Identity", [mean], ctx.y(0))
        return
    # predict_proba: [1 - p, p]; predict: classes_[1] where p > 0.5, else classes_[0]
    ctx.node("Concat", [ctx.node("Sub", [ctx.const(1.0), mean]), mean], ctx.y(1), axis=1)
    labels = list(model.classes_)
    if len(labels) != 2:
        raise ExportError(f"{step_label(model)}: {len(labels)} classes; the classifier is binary")
    if all(isinstance(c, str) for c in labels):
        table = ctx.const(labels, dtype=object)
    elif all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in labels):
        table = ctx.const([int(c) for c in labels], np.int64)
    else:
        raise ExportError(
            f"{step_label(model)}: class labels {labels} are neither all strings nor all integers"
        )
    index = ctx.node("Cast", [ctx.node("Greater", [mean, ctx.const(0.5)])], to=TensorProto.INT64)
    index = ctx.node("Reshape", [index, ctx.const([-1], np.int64)])
    ctx.node("Gather", [table, index], ctx.y(0), axis=0)


SUPPORTS[TargetMeanRegressor] = SUPPORTS[TargetMeanClassifier] = (
    "bins, strategy equal_width / equal_frequency, numerical and categorical variables (the internal "
    "discretisers and mean encoders through their converters); binary classes (int or str)"
)
for _cls in (TargetMeanRegressor, TargetMeanClassifier):
    update_registered_converter(
        _cls, f"Predictlib{_cls.__name__}", shape_calculator, _convert_target_mean, parser=_parse_target_mean
    )
    frame_aware(_cls)
