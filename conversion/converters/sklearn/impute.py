"""Converters for ``sklearn.impute``: ``SimpleImputer``, ``MissingIndicator``,
``KNNImputer`` and ``IterativeImputer``.

* ``SimpleImputer`` (every strategy: its fitted ``statistics_``; text and numbers;
  ``missing_values`` NaN, a number or a text; ``keep_empty_features``; ``add_indicator``):
  ``Where(missing, statistic, x)``; the columns that had no value at fit are dropped, as
  ``transform`` drops them.
* ``MissingIndicator``: 1.0 / 0.0 per column of ``features_`` (or all); with
  ``error_on_new`` a missing value in a column that had none at fit is refused.
* ``KNNImputer``: the training rows ship in the graph. The ``nan_euclidean`` distances
  are computed as scikit-learn computes them (``-2 X.Y' + |X|^2 + |Y|^2``, the
  corrections for missing coordinates, the clipping at 0, the scaling by the present
  coordinates); for each group of columns with the same potential donors, ``TopK`` takes
  the ``n_neighbors`` nearest (NaN distances last, as ``argpartition`` puts them), and
  their uniform or ``1 / distance`` weighted mean imputes the column (the column's mean
  when every distance is NaN). Two donors at exactly the same distance: scikit-learn's
  ``argpartition`` picks one by its partition order, the graph the lower training row;
  the imputed values differ only when the tie is at the n-th neighbour and the tied donors
  carry different values (documented in docs/sklearn.md).
* ``IterativeImputer`` (``sample_posterior=False``, linear estimators): the initial
  ``SimpleImputer``, then every step of ``imputation_sequence_`` (a prediction from the
  neighbour features, clipped to ``min_value`` / ``max_value``, for the missing cells);
  a row whose every value is missing is refused: scikit-learn returns the initial
  imputation for a batch made of such rows only, and iterates otherwise.

*Input validation.* scikit-learn converts an imputer's input to one array: float64 for
numbers (+-inf refused, NaN too unless it is the missing value), an object array when
text columns come in (then it checks nothing but NaN, and only when NaN is not the
missing value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import TensorProto
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, MissingIndicator, SimpleImputer
from sklearn.linear_model._base import LinearModel

from ...core.frame import MISSING, NUM, STR, Column, StepContext, by_kind, register_converter
from ...core.maths import CHECK_OPS
from ..feature_engine.creation import columns_of
from .base import SklearnConverter, feature_names_out, floats, is_nan, refuse

#: the largest float64: infinite distances sort after every finite one, before NaN ones
_BIG = float(np.finfo(np.float64).max)


# ------------------------------------------------------------------ missing values


def check_missing_values(model: Any) -> None:
    """``missing_values`` the graph can tell: NaN, a number or a text."""
    mv = model.missing_values
    if mv is None or type(mv).__name__ == "NAType":
        raise refuse(
            model,
            f"missing_values={mv!r} is not exported: predictlib's inputs spell a missing value NaN "
            "(numbers and text); use missing_values=np.nan",
        )
    if isinstance(mv, (bool, np.bool_)) or not isinstance(mv, (int, float, np.integer, np.floating, str)):
        raise refuse(model, f"missing_values={mv!r} is not exported (NaN, a number or a text)")
    if isinstance(mv, str) and mv == MISSING:
        raise refuse(model, f"missing_values={mv!r} is predictlib's own missing-value marker")


def missing_mask(ctx: StepContext, model: Any, x: str, kind: str) -> str | None:
    """Where ``x`` holds ``model.missing_values`` (None: it never can, e.g. a number in
    a text column)."""
    mv = model.missing_values
    if is_nan(mv):
        return ctx.is_missing(x, kind)
    if isinstance(mv, str):
        return ctx.node("Equal", [x, ctx.row([mv], STR)]) if kind == STR else None
    return ctx.node("Equal", [x, ctx.const(float(mv))]) if kind == NUM else None


class _Imputer(SklearnConverter):
    """Input validation of scikit-learn's imputers (see the module docstring)."""

    def object_array(self, model: Any, inputs: Sequence[Column]) -> bool:
        """Whether scikit-learn converts the input to an object array."""
        return any(c.kind == STR for c in inputs)

    def validate(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> None:
        name = type(model).__name__
        kinds = {c.name: c.kind for c in inputs}
        if not is_nan(model.missing_values):  # NaN refused, in text columns too (an object array)
            for kind, group in by_kind(kinds, [c.name for c in inputs]):
                ctx.refuse_if(
                    group,
                    ctx.is_missing(ctx.gather(group), kind),
                    f"missing value (NaN), {name} with missing_values={model.missing_values!r} does not accept it",
                )
        numeric = [c.name for c in inputs if c.kind == NUM]
        if numeric and not self.object_array(model, inputs):
            x = ctx.gather(numeric)
            ctx.refuse_if(
                numeric, ctx.node("IsInf", [x]), f"infinite value, {name} accepts only finite numbers"
            )


def indicator_columns(model: Any, inputs: Sequence[Column]) -> list[Column]:
    """The columns of an imputer's ``indicator_`` (``add_indicator=True``)."""
    if not getattr(model, "add_indicator", False) or model.indicator_ is None:
        return []
    names = feature_names_out(model.indicator_, [c.name for c in inputs])
    return [Column(n, NUM) for n in names]


def emit_indicator(ctx: StepContext, indicator: MissingIndicator, inputs: Sequence[Column]) -> str | None:
    """1.0 where the value is missing, for the indicator's columns (``features_`` or all)."""
    features = (
        list(range(len(inputs))) if indicator.features == "all" else [int(f) for f in indicator.features_]
    )
    if not features:
        return None
    chosen = [inputs[f] for f in features]
    names = [c.name for c in chosen]
    kinds = {c.name: c.kind for c in chosen}
    parts, order = [], []
    for kind, group in by_kind(kinds, names):
        mask = missing_mask(ctx, indicator, ctx.gather(group), kind)
        if mask is None:  # never missing: zeros
            mask = ctx.node("Not", [ctx.node("Equal", [ctx.gather(group), ctx.gather(group)])])
        parts.append(ctx.node("Cast", [mask], to=TensorProto.DOUBLE))
        order.extend(names.index(v) for v in group)
    out = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, axis=1)
    if order != list(range(len(names))):
        out = columns_of(ctx, out, [order.index(j) for j in range(len(names))])
    return out


INDICATOR_OPS = frozenset({"IsNaN", "Equal", "Not", "Cast", "Concat"})


# ------------------------------------------------------------------ SimpleImputer


def _valid_columns(model: SimpleImputer) -> list[int]:
    statistics = list(model.statistics_)
    if model.keep_empty_features:
        return list(range(len(statistics)))
    return [j for j, s in enumerate(statistics) if not (s is None or is_nan(s))]


def _statistic(model: Any, column: Column, value: Any) -> Any:
    if column.kind == STR:
        if not isinstance(value, str):
            raise refuse(
                model,
                f"text column '{column.name}' would be filled with {value!r} ({type(value).__name__}); "
                "give a text fill_value",
            )
        if value == MISSING:
            raise refuse(model, f"text column '{column.name}' would be filled with the reserved {MISSING!r}")
        return value
    if isinstance(value, (str, bool, np.bool_)):
        raise refuse(
            model,
            f"numeric column '{column.name}' would be filled with {value!r}: a column of numbers and "
            "text is not exported",
        )
    return float(value)


def simple_imputation(ctx: StepContext, model: SimpleImputer, inputs: Sequence[Column]) -> dict[str, str]:
    """``SimpleImputer.transform`` of the valid columns (per kind, in output order)."""
    valid = [inputs[j] for j in _valid_columns(model)]
    fills = {
        inputs[j].name: _statistic(model, inputs[j], model.statistics_[j]) for j in _valid_columns(model)
    }
    kinds = {c.name: c.kind for c in valid}
    out: dict[str, str] = {}
    for kind, group in by_kind(kinds, [c.name for c in valid]):
        x = ctx.gather(group)
        mask = missing_mask(ctx, model, x, kind)
        out[kind] = (
            x if mask is None else ctx.node("Where", [mask, ctx.row([fills[v] for v in group], kind), x])
        )
    return out


@register_converter
class SimpleImputerConverter(_Imputer):
    transformer = SimpleImputer
    supports = (
        "strategy mean / median / most_frequent / constant / a callable (the fitted statistics_), text and "
        "numeric columns, missing_values NaN / a number / a text, fill_value, keep_empty_features, "
        "add_indicator"
    )
    onnx_ops = CHECK_OPS | INDICATOR_OPS | frozenset({"Where"})
    text = True

    def object_array(self, model: Any, inputs: Sequence[Column]) -> bool:
        return model._fit_dtype.kind == "O" or super().object_array(model, inputs)

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        check_missing_values(model)
        inputs = super().check_inputs(model, columns)
        for j in _valid_columns(model):
            _statistic(model, inputs[j], model.statistics_[j])
        return inputs

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        kept = [inputs[j] for j in _valid_columns(model)]
        return [Column(c.name, c.kind) for c in kept] + indicator_columns(model, inputs)

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        out = simple_imputation(ctx, model, inputs)
        if model.add_indicator:
            indicator = emit_indicator(ctx, model.indicator_, inputs)
            if indicator is not None:
                out[NUM] = indicator if NUM not in out else ctx.node("Concat", [out[NUM], indicator], axis=1)
        return out


# ------------------------------------------------------------------ MissingIndicator


@register_converter
class MissingIndicatorConverter(_Imputer):
    transformer = MissingIndicator
    supports = "features missing-only / all, missing_values NaN / a number / a text, error_on_new, sparse"
    onnx_ops = CHECK_OPS | INDICATOR_OPS | frozenset({"Gather"})
    text = True

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        check_missing_values(model)
        return super().check_inputs(model, columns)

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        if model.features == "missing-only" and model.error_on_new:
            new = [c for j, c in enumerate(inputs) if j not in {int(f) for f in model.features_}]
            for kind, group in by_kind({c.name: c.kind for c in new}, [c.name for c in new]):
                mask = missing_mask(ctx, model, ctx.gather(group), kind)
                if mask is not None:
                    ctx.refuse_if(
                        group,
                        mask,
                        "missing value in a column that had none in training (MissingIndicator with "
                        "error_on_new=True)",
                    )
        out = emit_indicator(ctx, model, inputs)
        if out is None:  # pragma: no cover - outputs() refuses an empty output
            raise refuse(model, "it outputs no column")
        return {NUM: out}


# ------------------------------------------------------------------ KNNImputer


def _knn_groups(model: KNNImputer, valid: Sequence[int]) -> list[tuple[tuple[int, ...], list[int]]]:
    """The valid columns grouped by their potential donors (the training rows where the
    column is not missing): ``(missing training rows, columns)``."""
    groups: dict[tuple[int, ...], list[int]] = {}
    mask = np.asarray(model._mask_fit_X)
    for c in valid:
        key = tuple(int(i) for i in np.flatnonzero(mask[:, c]))
        groups.setdefault(key, []).append(c)
    return list(groups.items())


def _knn_distances(ctx: StepContext, model: KNNImputer, x: str, missing: str) -> str:
    """``nan_euclidean_distances(X, _fit_X)`` ([N, n_fit]), as scikit-learn computes them."""
    fit_x = np.asarray(model._fit_X, dtype=np.float64)
    mask_y = np.asarray(model._mask_fit_X, dtype=bool)
    y0 = np.where(mask_y, 0.0, fit_x)
    n_features = fit_x.shape[1]
    x0 = ctx.node("Where", [missing, ctx.const(0.0), x])
    squares = ctx.node("Mul", [x0, x0])
    xx = ctx.node("ReduceSum", [squares, ctx.const([1], np.int64)], keepdims=1)  # row_norms(X, squared)
    yy = np.einsum("ij,ij->i", y0, y0)[None, :]
    dot = ctx.node("MatMul", [x0, ctx.const(np.ascontiguousarray(y0.T))])
    d = ctx.node("Add", [ctx.node("Add", [ctx.node("Mul", [dot, ctx.const(-2.0)]), xx]), ctx.const(yy)])
    d = ctx.node("Where", [ctx.node("Less", [d, ctx.const(0.0)]), ctx.const(0.0), d])  # np.maximum(d, 0)
    d = ctx.node("Sub", [d, ctx.node("MatMul", [squares, ctx.const(mask_y.T.astype(np.float64))])])
    missing_x = ctx.node("Cast", [missing], to=TensorProto.DOUBLE)
    d = ctx.node("Sub", [d, ctx.node("MatMul", [missing_x, ctx.const((y0 * y0).T)])])
    d = ctx.node("Where", [ctx.node("Less", [d, ctx.const(0.0)]), ctx.const(0.0), d])  # np.clip(d, 0, None)
    present_x = ctx.node("Sub", [ctx.const(1.0), missing_x])
    present = ctx.node("MatMul", [present_x, ctx.const((~mask_y).T.astype(np.float64))])
    d = ctx.node("Where", [ctx.node("Equal", [present, ctx.const(0.0)]), ctx.const(np.nan), d])
    present = ctx.node("Where", [ctx.node("Less", [present, ctx.const(1.0)]), ctx.const(1.0), present])
    d = ctx.node("Mul", [ctx.node("Div", [d, present]), ctx.const(float(n_features))])
    return ctx.node("Sqrt", [d])


def _knn_impute(
    ctx: StepContext, model: KNNImputer, d: str, columns: list[int], excluded: tuple[int, ...]
) -> str:
    """The imputed values ([N, len(columns)]) of columns sharing their potential donors."""
    fit_x = np.asarray(model._fit_X, dtype=np.float64)
    n_fit = fit_x.shape[0]
    k = min(int(model.n_neighbors), n_fit)
    # sort keys: finite distances, then infinite ones, then NaN and the excluded training rows
    key = ctx.node("Where", [ctx.node("IsInf", [d]), ctx.const(_BIG), d])
    key = ctx.node("Where", [ctx.node("IsNaN", [d]), ctx.const(np.inf), key])
    if excluded:
        out_rows = np.zeros((1, n_fit), dtype=bool)
        out_rows[0, list(excluded)] = True
        key = ctx.node("Where", [ctx.const(out_rows, np.bool_), ctx.const(np.inf), key])
    values = ctx.name("knn_dist")
    index = ctx.name("knn_index")
    ctx.container.add_node(
        "TopK",
        [key, ctx.const([k], np.int64)],
        [values, index],
        name=ctx.scope.get_unique_operator_name("TopK"),
        axis=1,
        largest=0,
        sorted=1,
    )
    donors_table = np.where(np.asarray(model._mask_fit_X)[:, columns], 0.0, fit_x[:, columns])  # [n_fit, g]
    donors = ctx.node("Gather", [ctx.const(donors_table), index], axis=0)  # [N, k, g]
    if model.weights == "uniform":
        weights = ctx.node("Cast", [ctx.node("Less", [values, ctx.const(np.inf)])], to=TensorProto.DOUBLE)
    else:  # "distance": 1 / d; rows with a zero distance: 1 for those donors, 0 for the others
        zero = ctx.node("Cast", [ctx.node("Equal", [values, ctx.const(0.0)])], to=TensorProto.DOUBLE)
        any_zero = ctx.node(
            "Greater", [ctx.node("ReduceMax", [zero, ctx.const([1], np.int64)], keepdims=1), ctx.const(0.0)]
        )
        inverse = ctx.node("Div", [ctx.const(1.0), values])
        inverse = ctx.node(
            "Where", [ctx.node("GreaterOrEqual", [values, ctx.const(_BIG)]), ctx.const(0.0), inverse]
        )
        weights = ctx.node("Where", [any_zero, zero, inverse])
    w3 = ctx.node("Unsqueeze", [weights, ctx.const([2], np.int64)])
    total = ctx.node("ReduceSum", [ctx.node("Mul", [donors, w3]), ctx.const([1], np.int64)], keepdims=0)
    scale = ctx.node("ReduceSum", [weights, ctx.const([1], np.int64)], keepdims=1)
    average = ctx.node("Div", [total, scale])
    means = []
    for c in columns:
        col = np.ma.array(fit_x[:, c], mask=np.asarray(model._mask_fit_X)[:, c])
        means.append(float(col.mean()))
    first = columns_of(ctx, values, [0])
    all_nan = ctx.node("Equal", [first, ctx.const(np.inf)])
    return ctx.node("Where", [all_nan, ctx.row(means, NUM), average])


@register_converter
class KNNImputerConverter(_Imputer):
    transformer = KNNImputer
    supports = (
        "n_neighbors, weights uniform / distance, metric nan_euclidean, missing_values NaN / a number, "
        "keep_empty_features, add_indicator (the training rows in the graph)"
    )
    onnx_ops = (
        CHECK_OPS
        | INDICATOR_OPS
        | frozenset(
            {
                "Where",
                "Mul",
                "ReduceSum",
                "MatMul",
                "Add",
                "Less",
                "Sub",
                "Equal",
                "Div",
                "Sqrt",
                "IsInf",
                "TopK",
            }
            | {"Gather", "Greater", "ReduceMax", "GreaterOrEqual", "Unsqueeze"}
        )
    )

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        check_missing_values(model)
        if isinstance(model.missing_values, str):
            raise refuse(model, "missing_values is a text; KNNImputer imputes numbers")
        if model.metric != "nan_euclidean":
            raise refuse(model, f"metric={model.metric!r} is not exported (nan_euclidean)")
        if model.weights not in ("uniform", "distance"):
            raise refuse(model, f"weights={model.weights!r} is not exported (uniform, distance)")
        return super().check_inputs(model, columns)

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        if model.keep_empty_features:
            # transform keeps every column (get_feature_names_out of scikit-learn 1.9 leaves the
            # empty ones out: it names fewer columns than transform returns)
            return [Column(c.name, NUM) for c in inputs] + indicator_columns(model, inputs)
        return [Column(n, NUM) for n in feature_names_out(model, [c.name for c in inputs])]

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        x = ctx.gather([c.name for c in inputs])
        missing = missing_mask(ctx, model, x, NUM)
        assert missing is not None
        valid = [int(j) for j in np.flatnonzero(model._valid_mask)]
        imputed = x
        if valid:
            d = _knn_distances(ctx, model, x, missing)
            parts, order = [], []
            for excluded, cols in _knn_groups(model, valid):
                parts.append(_knn_impute(ctx, model, d, cols, excluded))
                order.extend(cols)
            values = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, axis=1)
            # back to column order, the invalid columns (never imputed) from x
            full = ctx.node("Concat", [values, x], axis=1)
            position = {c: i for i, c in enumerate(order)}
            picks = [position[j] if j in position else len(order) + j for j in range(len(inputs))]
            imputed = ctx.node("Where", [missing, columns_of(ctx, full, picks), x])
        if model.keep_empty_features:
            empty = np.zeros((1, len(inputs)), dtype=bool)
            empty[0, [j for j in range(len(inputs)) if j not in valid]] = True
            out = ctx.node("Where", [ctx.const(empty, np.bool_), ctx.const(0.0), imputed])
        else:
            out = columns_of(ctx, imputed, valid)
        if model.add_indicator:
            indicator = emit_indicator(ctx, model.indicator_, inputs)
            if indicator is not None:
                out = ctx.node("Concat", [out, indicator], axis=1)
        return {NUM: out}


# ------------------------------------------------------------------ IterativeImputer


def _linear(model: Any, estimator: Any) -> tuple[list[float], float]:
    if not isinstance(estimator, LinearModel) or getattr(estimator, "coef_", None) is None:
        raise refuse(
            model,
            f"estimator {type(estimator).__name__} is not exported (linear regressors: BayesianRidge, "
            "Ridge, LinearRegression, Lasso, ElasticNet...)",
        )
    coef = np.asarray(estimator.coef_, dtype=np.float64)
    if coef.ndim != 1:
        raise refuse(model, f"estimator {type(estimator).__name__} has {coef.ndim}-d coefficients")
    return [float(v) for v in coef], float(np.asarray(estimator.intercept_, dtype=np.float64).reshape(-1)[0])


@register_converter
class IterativeImputerConverter(_Imputer):
    transformer = IterativeImputer
    supports = (
        "estimator a linear regressor (BayesianRidge by default, Ridge, LinearRegression, Lasso...), "
        "sample_posterior=False, initial_strategy, fill_value, n_nearest_features, imputation_order, "
        "skip_complete, min_value, max_value, add_indicator, missing_values NaN / a number"
    )
    onnx_ops = (
        CHECK_OPS
        | INDICATOR_OPS
        | frozenset({"Where", "MatMul", "Add", "Less", "Greater", "And", "ReduceMin", "Cast", "Equal"})
    )

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        check_missing_values(model)
        if isinstance(model.missing_values, str):
            raise refuse(model, "missing_values is a text; IterativeImputer imputes numbers")
        if model.keep_empty_features:
            raise refuse(
                model,
                "keep_empty_features=True: scikit-learn 1.9's transform writes into its input array there, "
                "which raises 'assignment destination is read-only' on a DataFrame depending on pandas' "
                "memory layout; use keep_empty_features=False",
            )
        if model.sample_posterior:
            raise refuse(
                model,
                "sample_posterior=True draws the imputed values at random (a truncated normal); no graph "
                "reproduces those draws",
            )
        for triplet in model.imputation_sequence_:
            _linear(model, triplet.estimator)
        return super().check_inputs(model, columns)

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        return [Column(n, NUM) for n in feature_names_out(model, [c.name for c in inputs])]

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        initial = model.initial_imputer_
        x = ctx.gather([c.name for c in inputs])
        missing = missing_mask(ctx, model, x, NUM)
        assert missing is not None
        filled = simple_imputation(ctx, initial, inputs)[NUM]  # the valid (non-empty) columns
        empty = np.asarray(model._is_empty_feature, dtype=bool)
        kept = [j for j in range(len(inputs)) if not empty[j]]
        if model.keep_empty_features:
            # every column kept: the empty ones keep their initial imputation, never "missing"
            mask = ctx.node("And", [missing, ctx.const(~empty[None, :], np.bool_)])
            xt = filled
        else:
            mask = columns_of(ctx, missing, kept)
            xt = filled
        width = len(inputs) if model.keep_empty_features else len(kept)
        if model.n_iter_ > 0 and len(model.imputation_sequence_):
            # a row whose every value is missing: scikit-learn iterates unless the whole batch is such rows
            every = ctx.node(
                "ReduceMin",
                [ctx.node("Cast", [mask], to=TensorProto.DOUBLE), ctx.const([1], np.int64)],
                keepdims=1,
            )
            ctx.refuse_if(
                [c.name for c in inputs],
                ctx.node("Greater", [columns_of(ctx, every, [0] * len(inputs)), ctx.const(0.0)]),
                "every value of the row is missing: IterativeImputer's result for such a row depends on the "
                "other rows of the batch (the initial imputation when they are all like it); give one value",
            )
            low = floats(model, "_min_value", model._min_value, width)
            high = floats(model, "_max_value", model._max_value, width)
            for triplet in model.imputation_sequence_:
                j = int(triplet.feat_idx)
                coef, intercept = _linear(model, triplet.estimator)
                neighbours = [int(i) for i in triplet.neighbor_feat_idx]
                prediction = ctx.node(
                    "Add",
                    [
                        ctx.node(
                            "MatMul", [columns_of(ctx, xt, neighbours), ctx.const(np.array(coef)[:, None])]
                        ),
                        ctx.const(intercept),
                    ],
                )
                prediction = ctx.node(
                    "Where",
                    [ctx.node("Less", [prediction, ctx.const(low[j])]), ctx.const(low[j]), prediction],
                )
                prediction = ctx.node(
                    "Where",
                    [ctx.node("Greater", [prediction, ctx.const(high[j])]), ctx.const(high[j]), prediction],
                )
                one_hot = np.zeros((1, width), dtype=bool)
                one_hot[0, j] = True
                update = ctx.node("And", [mask, ctx.const(one_hot, np.bool_)])
                xt = ctx.node("Where", [update, prediction, xt])
        out = xt
        if model.add_indicator:
            indicator = emit_indicator(ctx, model.indicator_, inputs)
            if indicator is not None:
                out = ctx.node("Concat", [out, indicator], axis=1)
        return {NUM: out}
