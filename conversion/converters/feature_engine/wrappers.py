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

The scalers (``StandardScaler``, ``RobustScaler``, ``MaxAbsScaler``, ``MinMaxScaler``)
run skl2onnx's own converter on the gathered float64 block of the variables (skl2onnx
computes in double precision for a double input: ``Sub`` / ``Div`` / ``Mul`` / ``Add``
in scikit-learn's order). The others have converters here, written to reproduce
scikit-learn's ``transform`` exactly where skl2onnx does not (its float64 ``Binarizer``
sends ``x == threshold`` to 1, scikit-learn to 0; its ``PolynomialFeatures`` uses one
``ReduceProd`` node per output column, whose order of products is not scikit-learn's,
and overflows differently; its ``PowerTransformer`` works through float32 masks). Rows
the inner transformer rejects (NaN where its input validation refuses NaN, +-inf
always) are refused.
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
from sklearn.utils import get_tags

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
    by_kind,
    current_step,
    declare_step,
    frame_aware,
    frame_step_converter,
    frame_step_parser,
    register_converter,
    shape_calculator,
    step_label,
)
from .creation import RowStatistics, running_sum

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

#: inner transformers converted by skl2onnx's own (float64) converters
_DELEGATED = (StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler)
#: numpy functions of a FunctionTransformer and the ONNX operator computing them
_FUNCTIONS: dict[Any, str] = {
    np.log: "Log",
    np.exp: "Exp",
    np.sqrt: "Sqrt",
    np.abs: "Abs",
    np.absolute: "Abs",
    np.square: "square",
    np.log1p: "log1p",
    np.expm1: "expm1",
}
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
#: float64 epsilon, for Normalizer's treatment of near-zero norms (_handle_zeros_in_scale)
_EPS = float(np.finfo(np.float64).eps)


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
    if isinstance(inner, KBinsDiscretizer) and inner.dtype not in (None, np.float64):
        raise _refuse(model, f"dtype={inner.dtype!r} (the bins are computed in float32); not exported")
    if isinstance(inner, FunctionTransformer):
        if inner.func is not None and inner.func not in _FUNCTIONS:
            raise _refuse(
                model,
                f"func={inner.func!r} is not exported (supported: None, numpy's log, "
                "exp, sqrt, abs, square, log1p, expm1)",
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
        "RobustScaler, MaxAbsScaler, MinMaxScaler (clip) via skl2onnx; Binarizer; Normalizer l1 / l2 / max; "
        "KBinsDiscretizer (ordinal); SimpleImputer (numeric or text, missing_values NaN or a number, "
        "keep_empty_features); FunctionTransformer (func None, log, exp, sqrt, abs, square, log1p, expm1; "
        "validate); OneHotEncoder (numeric / text, drop, handle_unknown error / ignore / "
        "infrequent_if_exist / warn, missing categories); OrdinalEncoder (numeric / text, handle_unknown error / "
        "use_encoded_value, encoded_missing_value); PolynomialFeatures (degree, interaction_only, "
        "include_bias)"
    )
    onnx_ops = frozenset(
        {
            # checks, skl2onnx's scalers
            "IsNaN",
            "IsInf",
            "Sub",
            "Div",
            "Mul",
            "Add",
            "Clip",
            "Cast",
            # own converters
            "Greater",
            "GreaterOrEqual",
            "Less",
            "Equal",
            "Where",
            "Log",
            "Exp",
            "Sqrt",
            "Abs",
            "Unsqueeze",
            "ReduceSum",
            "ReduceMax",
            "CumSum",
            "MatMul",
            "Not",
            "And",
            "Or",
        }
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
        inner = model.transformer_
        variables = [str(v) for v in model.variables_]
        if isinstance(inner, OneHotEncoder):
            _one_hot(ctx, model, inner, variables)
            return
        if isinstance(inner, OrdinalEncoder):
            _ordinal(ctx, inner, variables)
            return
        kind = ctx.kind(variables[0])
        x = ctx.gather(variables)
        if kind == NUM:
            _refuse_invalid(ctx, inner, variables, x)
        if isinstance(inner, _DELEGATED):
            ctx.node("Identity", [x], ctx.y())  # the checked block skl2onnx's converter reads
        elif isinstance(inner, Binarizer):
            # scikit-learn: X > threshold -> 1, else 0
            ctx.node(
                "Cast",
                [ctx.node("Greater", [x, ctx.const(float(inner.threshold))])],
                ctx.y(),
                to=TensorProto.DOUBLE,
            )
        elif isinstance(inner, SimpleImputer):
            _impute(ctx, inner, kind, x)
        elif isinstance(inner, FunctionTransformer):
            ctx.node("Identity", [_function(ctx, inner, x)], ctx.y())
        elif isinstance(inner, KBinsDiscretizer):
            _bins(ctx, inner, x)
        elif isinstance(inner, Normalizer):
            _normalize(ctx, inner, x, len(variables))
        elif isinstance(inner, PolynomialFeatures):
            _polynomial(ctx, inner, x, len(variables))
        else:  # pragma: no cover - plan refuses the others
            raise _refuse(model, "no converter")


def _refuse_invalid(ctx: StepContext, inner: Any, variables: Sequence[str], x: str) -> None:
    """The inner transformer's input validation: +-inf always, NaN unless its tags allow it."""
    if isinstance(inner, FunctionTransformer) and not inner.validate:
        return
    name = type(inner).__name__
    if not get_tags(inner).input_tags.allow_nan:
        ctx.refuse_if(variables, ctx.node("IsNaN", [x]), f"missing value (NaN), {name} does not accept it")
    ctx.refuse_if(variables, ctx.node("IsInf", [x]), f"infinite value, {name} accepts only finite numbers")


def _impute(ctx: StepContext, inner: SimpleImputer, kind: str, x: str) -> None:
    fill = ctx.row(list(inner.statistics_), kind)
    mv = inner.missing_values
    if kind == STR or _is_nan(mv):
        missing = ctx.is_missing(x, kind)
    else:
        missing = ctx.node("Equal", [x, ctx.const(float(mv))])
    ctx.node("Where", [missing, fill, x], ctx.y())


def _function(ctx: StepContext, inner: FunctionTransformer, x: str) -> str:
    if inner.func is None:
        return x
    op = _FUNCTIONS[inner.func]
    if op == "square":
        return ctx.node("Mul", [x, x])
    if op == "log1p":
        return ctx.node("Log", [ctx.node("Add", [x, ctx.const(1.0)])])
    if op == "expm1":
        return ctx.node("Sub", [ctx.node("Exp", [x]), ctx.const(1.0)])
    return ctx.node(op, [x])


def _bins(ctx: StepContext, inner: KBinsDiscretizer, x: str) -> None:
    """``np.searchsorted(bin_edges[1:-1], x, side="right")``: the inner edges <= x."""
    inner_edges = [np.asarray(e, dtype=np.float64)[1:-1] for e in inner.bin_edges_]
    width = max((len(e) for e in inner_edges), default=0)
    if width == 0:
        ctx.node("Mul", [x, ctx.const(0.0)], ctx.y())
        return
    table = np.full((1, len(inner_edges), width), np.inf)  # x >= inf only for x = inf (refused)
    for j, edges in enumerate(inner_edges):
        table[0, j, : len(edges)] = edges
    cube = ctx.node("Unsqueeze", [x, ctx.const([2], np.int64)])
    above = ctx.node("Cast", [ctx.node("GreaterOrEqual", [cube, ctx.const(table)])], to=TensorProto.DOUBLE)
    ctx.node("ReduceSum", [above, ctx.const([2], np.int64)], ctx.y(), keepdims=0)


def _normalize(ctx: StepContext, inner: Normalizer, x: str, width: int) -> None:
    """``normalize``: l1 ``sum |x|``, l2 ``sqrt(sum x^2)``, max ``max |x|``; norms below
    10 eps count as 1 (``_handle_zeros_in_scale``)."""
    if inner.norm == "l1":
        norms = running_sum(ctx, ctx.node("Abs", [x]), width)
    elif inner.norm == "l2":
        norms = ctx.node("Sqrt", [running_sum(ctx, ctx.node("Mul", [x, x]), width)])
    else:
        norms = ctx.node("ReduceMax", [ctx.node("Abs", [x]), ctx.const([1], np.int64)], keepdims=1)
    tiny = ctx.node("Less", [norms, ctx.const(10 * _EPS)])
    norms = ctx.node("Where", [tiny, ctx.const(1.0), norms])
    ctx.node("Div", [x, norms], ctx.y())


def _polynomial(ctx: StepContext, inner: PolynomialFeatures, x: str, n_features: int) -> None:
    """scikit-learn's dense ``PolynomialFeatures.transform``: degree d terms are degree
    d - 1 terms times one feature (``np.multiply(XP[:, start:end], X[:, i])``), in its
    column order; then the columns below the minimal degree are cut."""
    # the full XP matrix, column by column: ("bias",), ("x", i) or ("mul", col, i)
    parts: list[str] = []  # tensors whose concatenation is XP
    n_cols = 0
    if inner.include_bias:
        first = columns(ctx, x, [0])
        parts.append(ctx.node("Where", [ctx.node("IsNaN", [first]), ctx.const(1.0), ctx.const(1.0)]))
        n_cols = 1
    max_degree = inner._max_degree
    if max_degree >= 1:
        parts.append(x)
        index = list(range(n_cols, n_cols + n_features))
        n_cols += n_features
        index.append(n_cols)
        for _ in range(2, max_degree + 1):
            sources: list[int] = []
            features: list[int] = []
            new_index = []
            end = index[-1]
            current = n_cols
            for feature in range(n_features):
                start = index[feature]
                new_index.append(current)
                if inner.interaction_only:
                    start += index[feature + 1] - index[feature]
                following = current + end - start
                if following <= current:
                    break
                sources.extend(range(start, end))
                features.extend([feature] * (end - start))
                current = following
            new_index.append(current)
            index = new_index
            if sources:
                so_far = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, axis=1)
                parts = [so_far, ctx.node("Mul", [columns(ctx, so_far, sources), columns(ctx, x, features)])]
            n_cols = current
    full = inner._n_out_full
    if n_cols != full:  # pragma: no cover - mirrors scikit-learn's bookkeeping
        raise ExportError(f"internal error: PolynomialFeatures has {full} columns, rebuilt {n_cols}")
    xp = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, axis=1)
    n_out = inner.n_output_features_
    if inner._min_degree > 1:
        keep = ([0] if inner.include_bias else []) + list(
            range(full - n_out + (1 if inner.include_bias else 0), full)
        )
        xp = columns(ctx, xp, keep)
    ctx.node("Identity", [xp], ctx.y())


def columns(ctx: StepContext, x: str, indices: Sequence[int]) -> str:
    return ctx.node("Gather", [x, ctx.const(list(indices), np.int64)], axis=1)


def _category_hits(
    ctx: StepContext, inner: Any, variables: list[str]
) -> tuple[str, dict[tuple[int, int], int], np.ndarray]:
    """scikit-learn's encoders matching each value with its variable's categories.

    Returns ``ones`` (float64 ``[N, T]``: 1.0 where the value of variable ``j`` is its
    category ``k``, column ``position[(j, k)]``, all categories of all variables), and
    ``owner`` (``[T, n_variables]``, 1.0 where a column belongs to a variable), so that
    ``ones @ owner == 0`` marks unknown values. Numeric values match by equality (NaN
    matches a NaN category), text by string equality (the missing marker matches a
    None / NaN category). +-inf in a numeric variable is refused (input validation)."""
    kinds = {v: ctx.kind(v) for v in variables}
    cats = {
        v: [_category_key(c) if kinds[v] == STR else c for c in inner.categories_[j]]
        for j, v in enumerate(variables)
    }
    matches: list[str] = []
    position: dict[tuple[int, int], int] = {}
    offset = 0
    for kind, group in by_kind(kinds, variables):
        x = ctx.gather(group)
        which = [group.index(v) for v in group for _ in cats[v]]
        values = [c for v in group for c in cats[v]]
        picked = columns(ctx, x, which)
        if kind == NUM:
            nan_cat = [_is_nan(float(c)) for c in values]
            hits = ctx.node("Equal", [picked, ctx.row([float(c) for c in values], NUM)])
            if any(nan_cat):
                nan_hits = ctx.node("And", [ctx.const([nan_cat], np.bool_), ctx.node("IsNaN", [picked])])
                hits = ctx.node("Or", [hits, nan_hits])
            ctx.refuse_if(
                group,
                ctx.node("IsInf", [x]),
                f"infinite value, {type(inner).__name__} accepts only finite numbers",
            )
        else:
            hits = ctx.node("Equal", [picked, ctx.row([str(c) for c in values], STR)])
        matches.append(hits)
        for v in group:
            j = variables.index(v)
            for k in range(len(cats[v])):
                position[(j, k)] = offset + k
            offset += len(cats[v])
    hits = matches[0] if len(matches) == 1 else ctx.node("Concat", matches, axis=1)
    owner = np.zeros((offset, len(variables)))
    for (j, _), col in position.items():
        owner[col, j] = 1.0
    return ctx.node("Cast", [hits], to=TensorProto.DOUBLE), position, owner


def _refuse_unknown(ctx: StepContext, inner: Any, variables: list[str], found: str) -> None:
    ctx.refuse_if(
        variables,
        ctx.node("Equal", [found, ctx.const(0.0)]),
        f"category not seen in training ({type(inner).__name__} with handle_unknown='error')",
    )


def _one_hot(ctx: StepContext, model: Any, inner: OneHotEncoder, variables: list[str]) -> None:
    """One column per (variable, category) not dropped: 1.0 where the value is the
    category; a value matching none of its variable's categories is unknown: refused
    with handle_unknown="error", all zeros otherwise (scikit-learn's X_mask)."""
    ones, position, owner = _category_hits(ctx, inner, variables)
    if inner.handle_unknown == "error":
        _refuse_unknown(ctx, inner, variables, ctx.node("MatMul", [ones, ctx.const(owner)]))
    drop = inner.drop_idx_
    keep = []
    for j in range(len(variables)):
        dropped = None if drop is None or drop[j] is None else int(drop[j])
        keep.extend(position[(j, k)] for k in range(len(inner.categories_[j])) if k != dropped)
    n_out = len(inner.get_feature_names_out(model.variables_))
    if len(keep) != n_out:  # pragma: no cover - guards the bookkeeping above
        raise _refuse(model, f"internal error: {len(keep)} columns rebuilt, {n_out} expected")
    ctx.node("Gather", [ones, ctx.const(keep, np.int64)], ctx.y(), axis=1)


def _ordinal(ctx: StepContext, inner: OrdinalEncoder, variables: list[str]) -> None:
    """The category's index; a missing value that is a category (None / NaN) gives
    encoded_missing_value; an unknown value is refused (handle_unknown="error") or gives
    unknown_value. Sums of 0 / 1 and small integers in MatMul are exact."""
    ones, position, owner = _category_hits(ctx, inner, variables)
    codes = np.zeros_like(owner)
    missing = np.zeros_like(owner)
    for (j, k), col in position.items():
        if inner._missing_indices.get(j) == k:
            missing[col, j] = 1.0
        else:
            codes[col, j] = float(k)
    out = ctx.node("MatMul", [ones, ctx.const(codes)])
    if missing.any():
        is_missing = ctx.node("Greater", [ctx.node("MatMul", [ones, ctx.const(missing)]), ctx.const(0.0)])
        out = ctx.node("Where", [is_missing, ctx.const(float(inner.encoded_missing_value)), out])
    found = ctx.node("MatMul", [ones, ctx.const(owner)])
    if inner.handle_unknown == "error":
        _refuse_unknown(ctx, inner, variables, found)
    else:
        unknown = ctx.node("Equal", [found, ctx.const(0.0)])
        out = ctx.node("Where", [unknown, ctx.const(float(inner.unknown_value)), out])
    ctx.node("Identity", [out], ctx.y())


def _parse_wrapper(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """Frame steps as usual; for the skl2onnx-converted scalers, the frame step gathers and
    checks the variables, then skl2onnx's parser / converter of the inner transformer
    computes the new values, which replace the variables."""
    outputs = frame_step_parser(scope, model, inputs, custom_parsers)
    if not isinstance(model.transformer_, _DELEGATED):
        return outputs
    frame = Frame.from_variables(scope, outputs)
    variables = [str(v) for v in model.variables_]
    known = {id(v) for v in inputs}
    gathered = next(v for v in outputs if id(v) not in known and list(v.predictlib_columns) == variables)
    (result,) = _parse_sklearn(scope, model.transformer_, [gathered], custom_parsers=custom_parsers)
    result.predictlib_columns = list(variables)
    return Frame([*frame.blocks, result], frame.order).to_variables(scope)


update_registered_converter(
    SklearnTransformerWrapper,
    "PredictlibSklearnTransformerWrapper",
    shape_calculator,
    frame_step_converter,
    parser=_parse_wrapper,
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
