"""Converters for feature-engine's discretisers (``feature_engine.discretisation``).

Every discretiser sorts a value into the intervals of its fitted limits with
``pd.cut(x, bins, include_lowest=True)`` (right-closed intervals): the bin number is
``searchsorted(bins, x, side="left") - 1``, i.e. the count of limits ``< x`` less one,
with ``x == bins[0]`` in the first bin, and NaN outside ``[bins[0], bins[-1]]``. The
graph does exactly that for a whole block: ``Less`` of the limits table [columns,
limits] (padded with +inf, never below a finite value) against ``x`` [N, columns, 1],
summed. ``return_boundaries`` gives the interval strings: they are produced at export by
running ``pd.cut`` and ``astype(str)`` exactly as feature-engine does on one value of
each interval, and the graph reads them from a table.

NaN and +-inf are refused, as feature-engine's discretisers raise on them.

``DecisionTreeDiscretiser(bin_output="prediction")`` replaces a value by its tree's
prediction. A tree on one variable is a step function of the value *as float32* (scikit-
learn casts its input): the graph casts to float32 and back, finds the interval between
the sorted split thresholds and reads the leaf's prediction (computed at export from
the fitted ``tree_``, rounded with ``np.round`` like feature-engine) from a table.
Values beyond float32's range are refused, as scikit-learn raises on them.

``return_object=True`` makes an ``object`` column of the bin numbers in feature-engine
(for categorical encoders downstream); the graph keeps the numbers in a float64 block,
which the encoder converters read as numeric categories.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from feature_engine.discretisation import (
    ArbitraryDiscretiser,
    DecisionTreeDiscretiser,
    EqualFrequencyDiscretiser,
    EqualWidthDiscretiser,
    GeometricWidthDiscretiser,
)
from onnx import TensorProto
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ...core.frame import (
    MISSING,
    NUM,
    STR,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    register_converter,
    step_label,
)
from .transformation import numeric_variables, refuse_nan_and_inf

#: integers up to this magnitude are exactly float64
EXACT_INT = 2**53


def checked_bins(model: Any, var: str, bins: Any) -> list[float]:
    """The limits of ``var`` as float64 values, refused when ``pd.cut`` raises on them
    (for every input: not increasing, repeated, fewer than one) or float64 would change them."""
    try:
        values = list(bins)
    except TypeError:
        raise ExportError(f"{step_label(model)}: the limits of '{var}' ({bins!r}) are not a list") from None
    out = []
    for b in values:
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, float, np.integer, np.floating)):
            raise ExportError(f"{step_label(model)}: the limits of '{var}' include {b!r}, not a number")
        if isinstance(b, (int, np.integer)) and abs(int(b)) > EXACT_INT:
            raise ExportError(
                f"{step_label(model)}: the limit {b!r} of '{var}' is an integer float64 does not hold exactly"
            )
        out.append(float(b))
    if not out:
        raise ExportError(f"{step_label(model)}: no limits for '{var}' (pd.cut raises on every value)")
    if any(math.isnan(b) for b in out):
        raise ExportError(
            f"{step_label(model)}: the limits of '{var}' include NaN (pd.cut raises on every value)"
        )
    if any(b > a for a, b in zip(out[1:], out[:-1], strict=True)):
        raise ExportError(
            f"{step_label(model)}: the limits of '{var}' {out} do not increase (pd.cut raises on every value)"
        )
    if len(set(out)) < len(out) and len(out) != 2:
        raise ExportError(
            f"{step_label(model)}: the limits of '{var}' {out} repeat a value (pd.cut raises on "
            "every value: 'Bin edges must be unique')"
        )
    return out


def interval_labels(model: Any, var: str, bins: Any, precision: int) -> list[str]:
    """The strings feature-engine gives the values of each interval with
    ``return_boundaries=True``: ``pd.cut(..., precision, include_lowest=True)`` then
    ``astype(str)``, run on one value of each interval (its right limit)."""
    edges = list(bins)
    if len(edges) < 2:
        return []
    sample = pd.Series([float(b) for b in edges[1:]], dtype="float64")
    try:
        with warnings.catch_warnings():  # numpy overflows rounding huge limits, as in transform
            warnings.simplefilter("ignore")
            cut = pd.cut(sample, bins, precision=precision, include_lowest=True)
            labels = pd.DataFrame({"v": cut}).astype(str)["v"].tolist()
    except (ValueError, TypeError) as exc:
        raise ExportError(
            f"{step_label(model)}: pd.cut cannot label the intervals of '{var}' ({exc}); "
            "pd.cut raises on every value"
        ) from None
    bad = [label for label in labels if not isinstance(label, str)]
    if bad or len(labels) != len(edges) - 1:
        raise ExportError(f"{step_label(model)}: unexpected interval labels {labels} for '{var}'")
    if MISSING in labels:
        raise ExportError(f"{step_label(model)}: an interval label of '{var}' is the missing-value marker")
    return labels


def padded(rows: Sequence[Sequence[float]], fill: float) -> list[list[float]]:
    width = max([1, *(len(r) for r in rows)])
    return [[*r, *([fill] * (width - len(r)))] for r in rows]


def count_below(ctx: StepContext, x: str, limits: Sequence[Sequence[float]]) -> str:
    """``out[n, j]`` (float64) = how many of ``limits[j]`` are ``< x[n, j]`` (finite ``x``)."""
    table = ctx.const(padded(limits, math.inf))  # [w, m]; +inf is below no finite value
    below = ctx.node("Less", [table, ctx.node("Unsqueeze", [x, ctx.const([2], np.int64)])])
    return ctx.node(
        "ReduceSum",
        [ctx.node("Cast", [below], to=TensorProto.DOUBLE), ctx.const([2], np.int64)],
        keepdims=0,
    )


def cut_ids(ctx: StepContext, x: str, bins: Sequence[Sequence[float]]) -> tuple[str, str]:
    """pd.cut(x, bins, include_lowest=True) on a block: (``ids``, ``outside``), with ``ids``
    the float64 ``searchsorted`` position (bin number + 1) and ``outside`` where pd.cut
    gives NaN."""
    ids = count_below(ctx, x, bins)
    lowest = ctx.node("Equal", [x, ctx.row([b[0] for b in bins], NUM)])
    ids = ctx.node("Where", [lowest, ctx.const(1.0), ids])
    outside = ctx.node(
        "Or",
        [
            ctx.node("Equal", [ids, ctx.row([len(b) for b in bins], NUM)]),
            ctx.node("Equal", [ids, ctx.const(0.0)]),
        ],
    )
    return ids, outside


def table_gather(ctx: StepContext, ids: str, rows: Sequence[Sequence[Any]], kind: str) -> str:
    """``out[n, j] = rows[ids[n, j]][j]`` for float64 ``ids`` holding row numbers."""
    width = len(rows[0])
    index = ctx.node("Cast", [ids], to=TensorProto.INT64)
    flat = ctx.node(
        "Add",
        [ctx.node("Mul", [index, ctx.const(width, np.int64)]), ctx.const([list(range(width))], np.int64)],
    )
    values = [v for row in rows for v in row]
    data = ctx.const(values) if kind == NUM else ctx.const(values, dtype=object)
    return ctx.node("Gather", [data, flat], axis=0)


def label_rows(labels: Sequence[Sequence[str]]) -> list[list[str]]:
    """The [1 + bins, columns] table of interval strings: row 0 (outside) is missing."""
    height = max([0, *(len(col) for col in labels)]) + 1
    rows = [[MISSING] * len(labels) for _ in range(height)]
    for j, col in enumerate(labels):
        for i, label in enumerate(col):
            rows[i + 1][j] = label
    return rows


OPS = frozenset({"IsNaN", "IsInf", "Less", "Unsqueeze", "Cast", "ReduceSum", "Equal", "Where", "Or", "Sub"})
LABEL_OPS = frozenset({"Mul", "Add"})


class _BinsDiscretiser(FrameConverter):
    """Discretisers whose ``binner_dict_`` holds the limits of each variable."""

    onnx_ops = OPS | LABEL_OPS
    #: refuse the values outside the limits (ArbitraryDiscretiser(errors="raise"))
    outside_reason: str | None = None

    def bins(self, model: Any, var: str) -> Any:
        return model.binner_dict_[var]

    def boundaries(self, model: Any) -> bool:
        return bool(model.return_boundaries)

    def refuses_outside(self, model: Any) -> bool:
        return False

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_variables(model, columns)
        for var in variables:
            bins = self.bins(model, var)
            checked_bins(model, var, bins)
            if self.boundaries(model):
                interval_labels(model, var, bins, model.precision)
        kind = STR if self.boundaries(model) else NUM
        return self.in_place(columns, variables, kind)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        bins = [checked_bins(model, v, self.bins(model, v)) for v in variables]
        ids, outside = cut_ids(ctx, x, bins)
        if self.refuses_outside(model):
            ctx.refuse_if(
                variables,
                outside,
                "value outside the limits of the intervals (the step was fitted with errors='raise')",
            )
        if self.boundaries(model):
            labels = [interval_labels(model, v, self.bins(model, v), model.precision) for v in variables]
            masked = ctx.node("Where", [outside, ctx.const(0.0), ids])
            out = table_gather(ctx, masked, label_rows(labels), STR)
        else:
            number = ctx.node("Sub", [ids, ctx.const(1.0)])
            out = ctx.node("Where", [outside, ctx.const(math.nan), number])
        ctx.node("Identity", [out], ctx.y())


_RETURN = (
    "return_object True / False (the bin numbers stay float64), return_boundaries True / False, precision"
)


@register_converter
class EqualFrequencyDiscretiserConverter(_BinsDiscretiser):
    transformer = EqualFrequencyDiscretiser
    supports = f"q, {_RETURN}; NaN / inf refused"


@register_converter
class EqualWidthDiscretiserConverter(_BinsDiscretiser):
    transformer = EqualWidthDiscretiser
    supports = f"bins, {_RETURN}; NaN / inf refused"


@register_converter
class GeometricWidthDiscretiserConverter(_BinsDiscretiser):
    transformer = GeometricWidthDiscretiser
    supports = f"bins, {_RETURN}; NaN / inf refused (limits that pd.cut rejects are refused at export)"


@register_converter
class ArbitraryDiscretiserConverter(_BinsDiscretiser):
    transformer = ArbitraryDiscretiser
    supports = f"binning_dict, errors ignore (NaN outside the limits) / raise (refused), {_RETURN}; NaN / inf refused"

    def refuses_outside(self, model: Any) -> bool:
        return model.errors == "raise"


# ------------------------------------------------------------------ DecisionTreeDiscretiser


def tree_of(model: Any, var: str) -> Any:
    """The fitted decision tree of ``var`` (``binner_dict_[var]`` is a GridSearchCV)."""
    search = model.binner_dict_[var]
    tree = getattr(search, "best_estimator_", None)
    if not isinstance(tree, (DecisionTreeRegressor, DecisionTreeClassifier)):
        raise ExportError(
            f"{step_label(model)}: the model of '{var}' is {type(tree).__name__}, not a fitted "
            "decision tree (GridSearchCV with refit=True)"
        )
    if tree.n_outputs_ != 1 or tree.n_features_in_ != 1:
        raise ExportError(f"{step_label(model)}: the tree of '{var}' is not a one-feature, one-output tree")
    return tree


def tree_steps(model: Any, var: str) -> tuple[list[float], list[float]]:
    """(sorted split thresholds, output per interval) of the tree of ``var``, as
    feature-engine's transform gives them (``predict`` or ``predict_proba[:, 1]``, then
    ``np.round(precision)``). Interval ``i`` is ``(t[i-1], t[i]]`` of the float32 value."""
    tree = tree_of(model, var)
    t = tree.tree_
    thresholds = sorted({float(v) for v, f in zip(t.threshold, t.feature, strict=True) if f == 0})
    leaves = []
    for upper in [*thresholds, math.inf]:
        # any float32 value of (previous threshold, upper] goes left exactly at the
        # splits whose threshold is >= upper
        node = 0
        while t.children_left[node] != -1:
            node = t.children_left[node] if upper <= t.threshold[node] else t.children_right[node]
        leaves.append(node)
    if model.regression:
        values = np.array([t.value[leaf, 0, 0] for leaf in leaves], dtype=np.float64)
    else:
        if t.value.shape[2] < 2:
            raise ExportError(
                f"{step_label(model)}: the tree of '{var}' has one class: predict_proba[:, 1] "
                "raises on every value"
            )
        values = np.array([t.value[leaf, 0, 1] for leaf in leaves], dtype=np.float64)
    if model.precision is not None:
        with np.errstate(all="ignore"):  # as in transform, huge values overflow in np.round
            values = np.round(values, model.precision)
    return thresholds, [float(v) for v in values]


@register_converter
class DecisionTreeDiscretiserConverter(_BinsDiscretiser):
    transformer = DecisionTreeDiscretiser
    supports = (
        "bin_output prediction / bin_number / boundaries, precision, regression True / False, "
        "cv / scoring / param_grid (the fitted trees); NaN / inf refused, and values beyond "
        "float32's range with bin_output='prediction'"
    )
    onnx_ops = OPS | LABEL_OPS

    def boundaries(self, model: Any) -> bool:
        return bool(model.bin_output == "boundaries")

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        if model.bin_output != "prediction":
            return super().plan(model, columns)
        variables = numeric_variables(model, columns)
        for var in variables:
            tree_steps(model, var)
        return self.in_place(columns, variables, NUM)

    def convert(self, ctx: StepContext, model: Any) -> None:
        if model.bin_output != "prediction":
            super().convert(ctx, model)
            return
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        single = ctx.node("Cast", [x], to=TensorProto.FLOAT)
        ctx.refuse_if(
            variables,
            ctx.node("IsInf", [single]),
            "value beyond float32's range: scikit-learn's tree casts its input to float32 and raises",
        )
        as_tree_sees = ctx.node("Cast", [single], to=TensorProto.DOUBLE)
        steps = [tree_steps(model, v) for v in variables]
        interval = count_below(ctx, as_tree_sees, [thresholds for thresholds, _ in steps])
        outputs = padded([values for _, values in steps], math.nan)
        rows = [list(r) for r in zip(*outputs, strict=True)]  # [interval, column]
        ctx.node("Identity", [table_gather(ctx, interval, rows, NUM)], ctx.y())
