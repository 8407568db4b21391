"""Converters for feature-engine's feature creators (``feature_engine.creation``).

Each step appends new float64 columns (one block per step) and, with
``drop_original=True``, removes its input columns from the frame.

Arithmetic is reproduced operation by operation where the order matters:

* **Sums** (MathFeatures ``sum``, ``mean``, ``var``, ``std``, ``sem``): pandas reduces a
  row with numpy's ``add.reduce``, i.e. numpy's *pairwise summation*: up to 7 values
  are added one after the other, 8 to 128 values go into 8 running accumulators that
  are then combined pairwise, longer rows are split in two halves recursively
  (:func:`pairwise_sum`, verified against pandas with cancelling values such as
  ``1e300 + 1 - 1e300``). The graph rebuilds that exact order with ``CumSum``
  (a sequential running sum in onnxruntime) and pairwise ``Add`` nodes.
* **Products** are sequential (``multiply.reduce``): one ``Split`` and a chain of
  ``Mul`` nodes (the only per-variable node count of this module).
* **Floor division and remainder** (RelativeFeatures) follow numpy's ``npy_divmod``
  step by step (``fmod``, sign fix-up, ``floor``, snap to the nearest integer).
* **Transcendental functions** (sin, cos, sqrt, pow) use onnxruntime's float64 kernels,
  within a few units in the last place of numpy's; ``arcsin`` has no float64 kernel in
  onnxruntime, so :func:`..core.maths.asin_unit` evaluates fdlibm's rational approximation (max
  relative error 4e-16 against numpy on [0, 1]).
* **DecisionTreeFeatures** puts every fitted tree (``best_estimator_`` of each grid
  search) in one float64 ``TreeEnsemble`` (predictlib.build.converters.sklearn.estimators), one target per
  created column; the value of each leaf is computed at export as ``transform`` computes
  it (the probability of the second class, ``np.round(..., precision)``, the class label).

The graph's numeric inputs are float64: an int64 column that pandas would combine in
integer arithmetic (products that wrap around, integer powers) is computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from feature_engine.creation import (
    CyclicalFeatures,
    DecisionTreeFeatures,
    GeoDistanceFeatures,
    MathFeatures,
    RelativeFeatures,
)
from feature_engine.creation.geo_features import EARTH_RADIUS
from onnx import TensorProto
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ...core.frame import (
    NUM,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    appended,
    numeric_columns,
    register_converter,
    step_label,
)
from ...core.maths import asin_unit
from ..sklearn.estimators import Ensemble, sklearn_tree
from .transformation import refuse_nan_and_inf

# --------------------------------------------------------------------------- helpers


def split(ctx: StepContext, x: str, width: int) -> list[str]:
    """The ``width`` columns of ``x`` as ``[N, 1]`` tensors (one ``Split`` node)."""
    if width == 1:
        return [x]
    outs = [ctx.name("col") for _ in range(width)]
    ctx.container.add_node(
        "Split", [x], outs, name=ctx.scope.get_unique_operator_name("Split"), axis=1, num_outputs=width
    )
    return outs


def columns_of(ctx: StepContext, x: str, indices: Sequence[int]) -> str:
    return ctx.node("Gather", [x, ctx.const(list(indices), np.int64)], axis=1)


def running_sum(ctx: StepContext, x: str, width: int) -> str:
    """``((x0 + x1) + x2) + ...`` of an ``[N, width]`` tensor, as ``[N, 1]``."""
    if width == 1:
        return x
    total = ctx.node("CumSum", [x, ctx.const(1, np.int64)])
    return columns_of(ctx, total, [width - 1])


def pairwise_sum(ctx: StepContext, x: str, width: int) -> str:
    """numpy's pairwise summation of the rows of ``x`` (``[N, width]`` -> ``[N, 1]``),
    the order of ``np.add.reduce`` along a contiguous axis (``pairwise_sum`` in numpy's
    ``loops_utils.h``)."""
    if width < 8:
        return running_sum(ctx, x, width)
    if width > 128:
        half = width // 2
        half -= half % 8
        left = pairwise_sum(ctx, columns_of(ctx, x, range(half)), half)
        right = pairwise_sum(ctx, columns_of(ctx, x, range(half, width)), width - half)
        return ctx.node("Add", [left, right])
    full = width - width % 8
    head = x if full == width else columns_of(ctx, x, range(full))
    cube = ctx.node("Reshape", [head, ctx.const([-1, full // 8, 8], np.int64)])
    acc = ctx.node("CumSum", [cube, ctx.const(1, np.int64)])
    r = ctx.node("Reshape", [columns_of(ctx, acc, [full // 8 - 1]), ctx.const([-1, 8], np.int64)])
    r = ctx.node("Add", [columns_of(ctx, r, [0, 2, 4, 6]), columns_of(ctx, r, [1, 3, 5, 7])])
    r = ctx.node("Add", [columns_of(ctx, r, [0, 2]), columns_of(ctx, r, [1, 3])])
    res = ctx.node("Add", [columns_of(ctx, r, [0]), columns_of(ctx, r, [1])])
    if full == width:
        return res
    rest = ctx.node("Concat", [res, columns_of(ctx, x, range(full, width))], axis=1)
    return running_sum(ctx, rest, width - full + 1)


def sequential_product(ctx: StepContext, x: str, width: int) -> str:
    """``((x0 * x1) * x2) * ...`` (numpy's ``multiply.reduce``), as ``[N, 1]``."""
    cols = split(ctx, x, width)
    out = cols[0]
    for col in cols[1:]:
        out = ctx.node("Mul", [out, col])
    return out


# --------------------------------------------------------------------------- MathFeatures


class RowStatistics:
    """Per-row statistics of an ``[N, width]`` block as pandas computes them with
    ``DataFrame.agg(func, axis=1)`` (NaN skipped), each built once, on demand."""

    def __init__(self, ctx: StepContext, x: str, width: int) -> None:
        self.ctx, self.x, self.width = ctx, x, width
        self._cache: dict[str, str] = {}

    def _get(self, key: str, build: Callable[[], str]) -> str:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def nan(self) -> str:
        return self._get("nan", lambda: self.ctx.node("IsNaN", [self.x]))

    def filled(self, value: float) -> str:
        return self._get(
            f"filled{value}", lambda: self.ctx.node("Where", [self.nan(), self.ctx.const(value), self.x])
        )

    def count(self) -> str:
        """Non-missing values per row, float64 ``[N, 1]``."""
        ctx = self.ctx
        return self._get(
            "count",
            lambda: ctx.node(
                "ReduceSum",
                [
                    ctx.node("Cast", [ctx.node("Not", [self.nan()])], to=TensorProto.DOUBLE),
                    ctx.const([1], np.int64),
                ],
                keepdims=1,
            ),
        )

    def empty(self) -> str:
        return self._get("empty", lambda: self.ctx.node("Equal", [self.count(), self.ctx.const(0.0)]))

    def sum(self) -> str:
        return self._get("sum", lambda: pairwise_sum(self.ctx, self.filled(0.0), self.width))

    def mean(self) -> str:
        return self._get("mean", lambda: self.ctx.node("Div", [self.sum(), self.count()]))

    def var(self, ddof: int) -> str:
        """pandas' ``nanvar``: two passes, NaN when ``count <= ddof``."""

        def build() -> str:
            ctx = self.ctx
            few = ctx.node("LessOrEqual", [self.count(), ctx.const(float(ddof))])
            count = ctx.node("Where", [few, ctx.const(math.nan), self.count()])
            d = ctx.node("Sub", [count, ctx.const(float(ddof))])
            avg = ctx.node("Div", [self.sum(), count])
            dev = ctx.node("Sub", [avg, self.filled(0.0)])
            sqr = ctx.node("Where", [self.nan(), ctx.const(0.0), ctx.node("Mul", [dev, dev])])
            return ctx.node("Div", [pairwise_sum(ctx, sqr, self.width), d])

        return self._get(f"var{ddof}", build)

    def sem(self) -> str:
        """pandas' ``nansem``: ``sqrt(var) / sqrt(count)``, NaN when ``count <= 1``."""
        ctx = self.ctx
        few = ctx.node("LessOrEqual", [self.count(), ctx.const(1.0)])
        count = ctx.node("Where", [few, ctx.const(math.nan), self.count()])
        return ctx.node("Div", [ctx.node("Sqrt", [self.var(1)]), ctx.node("Sqrt", [count])])

    def extreme(self, op: str) -> str:
        """pandas' ``nanmax`` / ``nanmin``: missing values skipped, NaN when all are missing."""
        ctx = self.ctx
        fill = -math.inf if op == "ReduceMax" else math.inf
        best = ctx.node(op, [self.filled(fill), ctx.const([1], np.int64)], keepdims=1)
        return ctx.node("Where", [self.empty(), ctx.const(math.nan), best])

    def sorted(self) -> str:
        """The row sorted ascending, missing values (as +inf) last."""

        def build() -> str:
            ctx = self.ctx
            values, indices = ctx.name("sorted"), ctx.name("order")
            ctx.container.add_node(
                "TopK",
                [self.filled(math.inf), ctx.const([self.width], np.int64)],
                [values, indices],
                name=ctx.scope.get_unique_operator_name("TopK"),
                axis=1,
                largest=0,
                sorted=1,
            )
            return values

        return self._get("sorted", build)

    def at(self, position: str) -> str:
        """``sorted[row, position[row]]`` for a float64 ``[N, 1]`` position."""
        ctx = self.ctx
        index = ctx.node("Cast", [ctx.node("Max", [position, ctx.const(0.0)])], to=TensorProto.INT64)
        return ctx.node("GatherElements", [self.sorted(), index], axis=1)

    def nanmedian(self) -> str:
        """``np.nanmedian`` of a short row (numpy's masked median): (low + high) / 2 with
        low == high for an odd count; NaN when every value is missing."""
        ctx = self.ctx
        low = ctx.node(
            "Floor", [ctx.node("Mul", [ctx.node("Sub", [self.count(), ctx.const(1.0)]), ctx.const(0.5)])]
        )
        high = ctx.node("Floor", [ctx.node("Mul", [self.count(), ctx.const(0.5)])])
        mid = ctx.node("Div", [ctx.node("Add", [self.at(low), self.at(high)]), ctx.const(2.0)])
        return ctx.node("Where", [self.empty(), ctx.const(math.nan), mid])

    def npmedian(self) -> str:
        """``np.median`` of the row: NaN if any value is missing, the middle value for an
        odd width, the mean of the two middle values otherwise."""
        ctx = self.ctx
        k = self.width
        if k % 2:
            mid = columns_of(ctx, self.sorted(), [k // 2])
        else:
            pair = columns_of(ctx, self.sorted(), [k // 2 - 1, k // 2])
            mid = ctx.node("Div", [running_sum(ctx, pair, 2), ctx.const(2.0)])
        any_nan = ctx.node("Less", [self.count(), ctx.const(float(k))])
        return ctx.node("Where", [any_nan, ctx.const(math.nan), mid])


#: MathFeatures functions -> how a row computes them (pandas' ``DataFrame.agg(func, axis=1)``)
_MATH: dict[str, Callable[[RowStatistics], str]] = {
    "sum": RowStatistics.sum,
    "mean": RowStatistics.mean,
    "prod": lambda r: sequential_product(r.ctx, r.filled(1.0), r.width),
    "max": lambda r: r.extreme("ReduceMax"),
    "min": lambda r: r.extreme("ReduceMin"),
    "var": lambda r: r.var(1),
    "std": lambda r: r.ctx.node("Sqrt", [r.var(1)]),
    "var0": lambda r: r.var(0),
    "std0": lambda r: r.ctx.node("Sqrt", [r.var(0)]),
    "sem": RowStatistics.sem,
    "median": RowStatistics.nanmedian,
    "npmedian": RowStatistics.npmedian,
    "count": RowStatistics.count,
}

#: the function names pandas accepts, and numpy's functions as pandas' agg applies them
#: (numpy's std / var on a row Series use ddof=0; np.median does not skip NaN)
_MATH_NAMES: dict[Any, str] = {
    "sum": "sum",
    "mean": "mean",
    "prod": "prod",
    "product": "prod",
    "max": "max",
    "min": "min",
    "std": "std",
    "var": "var",
    "sem": "sem",
    "median": "median",
    "count": "count",
}
_MATH_CALLABLES: list[tuple[Any, str]] = [
    (np.sum, "sum"),
    (np.mean, "mean"),
    (np.prod, "prod"),
    (np.max, "max"),
    (np.min, "min"),
    (np.std, "std0"),
    (np.var, "var0"),
    (np.median, "npmedian"),
    (np.nansum, "sum"),
    (np.nanmean, "mean"),
]

#: numpy switches np.nanmedian to another algorithm from 600 values on
_MEDIAN_MAX_WIDTH = 600


def _math_function(model: Any, func: Any) -> str:
    if isinstance(func, str) and func in _MATH_NAMES:
        return _MATH_NAMES[func]
    for known, name in _MATH_CALLABLES:
        if func is known:
            return name
    raise ExportError(
        f"{step_label(model)}: func {func!r} is not exported (supported: "
        f"{', '.join(sorted(_MATH_NAMES))} and numpy's sum, mean, prod, max, min, std, var, median, "
        "nansum, nanmean)"
    )


def _math_functions(model: Any) -> list[str]:
    funcs = model.func if isinstance(model.func, list) else [model.func]
    names = [_math_function(model, f) for f in funcs]
    if any(n in ("median", "npmedian") for n in names) and len(model.variables_) >= _MEDIAN_MAX_WIDTH:
        raise ExportError(
            f"{step_label(model)}: a median of {len(model.variables_)} variables is not exported "
            f"(numpy changes algorithm from {_MEDIAN_MAX_WIDTH} values on)"
        )
    return names


@register_converter
class MathFeaturesConverter(FrameConverter):
    transformer = MathFeatures
    supports = (
        "func sum, mean, prod / product, max, min, std, var, sem, median, count and numpy's sum, "
        "mean, prod, max, min, std, var, median, nansum, nanmean (alone or in a list); "
        "new_variables_names; missing_values raise / ignore (NaN skipped as pandas does); drop_original"
    )
    onnx_ops = frozenset(
        {
            "IsNaN",
            "IsInf",
            "Where",
            "Not",
            "Cast",
            "ReduceSum",
            "ReduceMax",
            "ReduceMin",
            "CumSum",
            "Reshape",
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Sqrt",
            "Split",
            "Equal",
            "LessOrEqual",
            "Less",
            "TopK",
            "Max",
            "Floor",
            "GatherElements",
        }
    )

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_columns(model, columns, model.variables_)
        _math_functions(model)
        new = [str(n) for n in model._get_new_features_name()]
        return appended(model, columns, variables, new, variables if model.drop_original else [])

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = [str(v) for v in model.variables_]
        x = ctx.gather(variables)
        if model.missing_values == "raise":
            refuse_nan_and_inf(ctx, variables, x)
        row = RowStatistics(ctx, x, len(variables))
        outputs = [_MATH[name](row) for name in _math_functions(model)]
        if len(outputs) == 1:
            ctx.node("Identity", outputs, ctx.y())
        else:
            ctx.node("Concat", outputs, ctx.y(), axis=1)


# --------------------------------------------------------------------------- RelativeFeatures

_DIVISIONS = ("div", "truediv", "floordiv", "mod")


def _divmod(ctx: StepContext, a: str, b: str) -> tuple[str, str]:
    """numpy's ``npy_divmod`` for float64 ``a``, ``b`` (``b != 0``): the floor quotient and
    the Python-convention remainder, step by step as numpy computes them."""
    mod = ctx.node("Mod", [a, b], fmod=1)
    div = ctx.node("Div", [ctx.node("Sub", [a, mod]), b])
    # if mod (NaN included) and (b < 0) != (mod < 0): mod += b, div -= 1
    zero = ctx.const(0.0)
    nonzero = ctx.node("Not", [ctx.node("Equal", [mod, zero])])
    signs_differ = ctx.node("Xor", [ctx.node("Less", [b, zero]), ctx.node("Less", [mod, zero])])
    adjust = ctx.node("And", [nonzero, signs_differ])
    mod = ctx.node("Where", [adjust, ctx.node("Add", [mod, b]), mod])
    div = ctx.node("Where", [adjust, ctx.node("Sub", [div, ctx.const(1.0)]), div])
    # if div: floordiv = floor(div), + 1 if div - floordiv > 0.5; else 0 (the sign does not matter)
    floor = ctx.node("Floor", [div])
    floor = ctx.node(
        "Where",
        [
            ctx.node("Greater", [ctx.node("Sub", [div, floor]), ctx.const(0.5)]),
            ctx.node("Add", [floor, ctx.const(1.0)]),
            floor,
        ],
    )
    floordiv = ctx.node("Where", [ctx.node("Equal", [div, zero]), zero, floor])
    return floordiv, mod


@register_converter
class RelativeFeaturesConverter(FrameConverter):
    transformer = RelativeFeatures
    supports = (
        "func add, sub, mul, div, truediv, floordiv, mod, pow (numpy's floor division and Python-"
        "convention remainder); fill_value None (a zero reference is refused) or a number; "
        "missing_values raise / ignore; drop_original"
    )
    onnx_ops = frozenset(
        {
            "IsNaN",
            "IsInf",
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Pow",
            "Mod",
            "Floor",
            "Equal",
            "Not",
            "Less",
            "Greater",
            "Xor",
            "And",
            "Where",
        }
    )

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_columns(model, columns, model.variables)
        reference = numeric_columns(model, columns, model.reference)
        fill = model.fill_value
        if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float))):
            raise ExportError(f"{step_label(model)}: fill_value={fill!r} is not a number")
        new = [str(n) for n in model._get_new_features_name()]
        dropped = variables + reference if model.drop_original else []
        return appended(model, columns, variables + reference, new, dropped)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = [str(v) for v in model.variables]
        reference = [str(r) for r in model.reference]
        if model.missing_values == "raise":
            both = list(dict.fromkeys(variables + reference))
            refuse_nan_and_inf(ctx, both, ctx.gather(both))
        # columns of the result for one function: for each reference, every variable
        a = ctx.gather([var for _ in reference for var in variables])
        b = ctx.gather([ref for ref in reference for _ in variables])
        zero_b = ""
        if any(f in _DIVISIONS for f in model.func):
            if model.fill_value is None:
                ctx.refuse_if(
                    reference,
                    ctx.node("Equal", [ctx.gather(reference), ctx.const(0.0)]),
                    "zero in a reference variable of a division (the step has no fill_value)",
                )
            zero_b = ctx.node("Equal", [b, ctx.const(0.0)])
        outputs = []
        for func in model.func:
            if func == "add":
                out = ctx.node("Add", [a, b])
            elif func == "sub":
                out = ctx.node("Sub", [a, b])
            elif func == "mul":
                out = ctx.node("Mul", [a, b])
            elif func == "pow":
                out = ctx.node("Pow", [a, b])
            else:
                if func in ("div", "truediv"):
                    out = ctx.node("Div", [a, b])
                else:
                    floordiv, mod = _divmod(ctx, a, b)
                    out = floordiv if func == "floordiv" else mod
                fill = math.nan if model.fill_value is None else float(model.fill_value)
                out = ctx.node("Where", [zero_b, ctx.const(fill), out])
            outputs.append(out)
        if len(outputs) == 1:
            ctx.node("Identity", outputs, ctx.y())
        else:
            ctx.node("Concat", outputs, ctx.y(), axis=1)


# --------------------------------------------------------------------------- CyclicalFeatures


def _cyclical_factors(model: Any) -> list[float]:
    """``2.0 * np.pi / max_value`` per variable, computed as feature-engine does."""
    factors = []
    for var in model.variables_:
        value = model.max_values_[var]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ExportError(f"{step_label(model)}: max value {value!r} of '{var}' is not a number")
        try:
            with np.errstate(all="ignore"):
                factors.append(float(2.0 * np.pi / value))
        except ZeroDivisionError:
            raise ExportError(
                f"{step_label(model)}: max value 0 of '{var}': transform raises ZeroDivisionError"
            ) from None
    return factors


@register_converter
class CyclicalFeaturesConverter(FrameConverter):
    transformer = CyclicalFeatures
    supports = "max_values (learnt or given); drop_original"
    onnx_ops = frozenset({"IsNaN", "IsInf", "Mul", "Sin", "Cos"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_columns(model, columns, model.variables_)
        _cyclical_factors(model)
        new = [str(n) for n in model._get_new_features_name()]
        return appended(model, columns, variables, new, variables if model.drop_original else [])

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = [str(v) for v in model.variables_]
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        factors = _cyclical_factors(model)
        angle = ctx.node("Mul", [x, ctx.row(factors, NUM)])
        both = ctx.node("Concat", [ctx.node("Sin", [angle]), ctx.node("Cos", [angle])], axis=1)
        n = len(variables)
        interleaved = [i + half * n for i in range(n) for half in (0, 1)]  # var_sin, var_cos, ...
        ctx.node("Gather", [both, ctx.const(interleaved, np.int64)], ctx.y(), axis=1)


# --------------------------------------------------------------------------- GeoDistanceFeatures


@register_converter
class GeoDistanceFeaturesConverter(FrameConverter):
    transformer = GeoDistanceFeatures
    supports = "method haversine / euclidean / manhattan; output_unit km / miles / meters / feet; output_col; drop_original"
    onnx_ops = frozenset({"IsNaN", "Mul", "Sub", "Add", "Div", "Abs", "Sin", "Cos", "Sqrt", "Less", "Where"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_columns(model, columns, model.variables_)
        if model.output_unit not in EARTH_RADIUS or model.method not in (
            "haversine",
            "euclidean",
            "manhattan",
        ):
            raise ExportError(
                f"{step_label(model)}: method={model.method!r}, output_unit={model.output_unit!r} is not supported"
            )
        return appended(
            model, columns, variables, [str(model.output_col)], variables if model.drop_original else []
        )

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(dict.fromkeys(str(v) for v in model.variables_))
        x = ctx.gather(variables)
        ctx.refuse_if(
            variables,
            ctx.node("IsNaN", [x]),
            "missing value (NaN), the step does not accept missing values",
        )
        lat1, lon1, lat2, lon2 = (columns_of(ctx, x, [variables.index(str(v))]) for v in model.variables_)
        radius = EARTH_RADIUS[model.output_unit]
        if model.method == "haversine":
            rad = ctx.const(np.pi / 180)  # np.radians(x) is x * (pi / 180)
            lat1, lon1, lat2, lon2 = (ctx.node("Mul", [v, rad]) for v in (lat1, lon1, lat2, lon2))
            half = ctx.const(0.5)  # x / 2 and x * 0.5 are the same number
            s_lat = ctx.node("Sin", [ctx.node("Mul", [ctx.node("Sub", [lat2, lat1]), half])])
            s_lon = ctx.node("Sin", [ctx.node("Mul", [ctx.node("Sub", [lon2, lon1]), half])])
            cosines = ctx.node("Mul", [ctx.node("Cos", [lat1]), ctx.node("Cos", [lat2])])
            a = ctx.node(
                "Add",
                [
                    ctx.node("Mul", [s_lat, s_lat]),
                    ctx.node("Mul", [cosines, ctx.node("Mul", [s_lon, s_lon])]),
                ],
            )
            c = ctx.node("Mul", [ctx.const(2.0), asin_unit(ctx, ctx.node("Sqrt", [a]))])
            ctx.node("Mul", [ctx.const(radius), c], ctx.y())
            return
        km = ctx.const(111.0)
        conversion = ctx.const(radius / EARTH_RADIUS["km"])
        dlat = ctx.node("Sub", [lat2, lat1])
        dlon = ctx.node("Sub", [lon2, lon1])
        if model.method == "euclidean":
            a = ctx.node("Mul", [dlat, km])
            b = ctx.node("Mul", [dlon, km])
            distance = ctx.node("Sqrt", [ctx.node("Add", [ctx.node("Mul", [a, a]), ctx.node("Mul", [b, b])])])
        else:
            total = ctx.node("Add", [ctx.node("Abs", [dlat]), ctx.node("Abs", [dlon])])
            distance = ctx.node("Mul", [total, km])
        ctx.node("Mul", [distance, conversion], ctx.y())


# --------------------------------------------------------------------------- DecisionTreeFeatures


def _tree_of(model: Any, search: Any) -> Any:
    tree = getattr(search, "best_estimator_", None)
    if type(tree) not in (DecisionTreeRegressor, DecisionTreeClassifier):
        raise ExportError(
            f"{step_label(model)}: a fitted tree is {type(tree).__name__}, not a decision tree "
            "(GridSearchCV refit=False?)"
        )
    if getattr(tree, "n_outputs_", 1) != 1:
        raise ExportError(f"{step_label(model)}: multi-output trees are not exported")
    return tree


def _tree_task(model: Any) -> str:
    if model.regression:
        return "regression"
    return "binary" if model._is_binary == "binary" else "multiclass"


def _features(combo: Any) -> list[str]:
    return [str(combo)] if isinstance(combo, str) else [str(c) for c in combo]


@register_converter
class DecisionTreeFeaturesConverter(FrameConverter):
    transformer = DecisionTreeFeatures
    supports = (
        "regression True (predict) / False (binary: probability of the second class; multiclass: "
        "numeric class label); features_to_combine None / int / list / tuple; precision (rounding "
        "applied to the leaves); param_grid (decision tree parameters); drop_original"
    )
    onnx_ops = frozenset({"IsNaN", "IsInf", "Not", "And", "Cast", "TreeEnsemble"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_columns(model, columns, model.variables_)
        used = [f for combo in model.input_features_ for f in _features(combo)]
        outside = sorted(set(used) - set(variables))
        if outside:
            raise ExportError(
                f"{step_label(model)}: features_to_combine uses {outside}, which are not among the "
                "step's variables; that is not exported"
            )
        task = _tree_task(model)
        for search in model.estimators_:
            tree = _tree_of(model, search)
            if task == "multiclass":
                classes = np.asarray(tree.classes_)
                if classes.dtype.kind not in "iuf":
                    raise ExportError(
                        f"{step_label(model)}: multiclass target with non-numeric classes "
                        f"{classes.tolist()[:5]}: the created columns would hold labels; not exported"
                    )
        new = list(_last_tree_per_column(model))
        return appended(model, columns, variables, new, variables if model.drop_original else [])

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = [str(v) for v in model.variables_]
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        # the trees compare float32 inputs; a finite value beyond float32's range makes them raise
        x32 = ctx.node("Cast", [x], to=TensorProto.FLOAT)
        overflow = ctx.node("And", [ctx.node("IsInf", [x32]), ctx.node("Not", [ctx.node("IsInf", [x])])])
        ctx.refuse_if(
            variables,
            overflow,
            "value too large for float32 (the decision trees convert their input to float32 and raise)",
        )
        x = ctx.node("Cast", [x32], to=TensorProto.DOUBLE)
        task = _tree_task(model)
        ens = Ensemble()
        for t, i in enumerate(_last_tree_per_column(model).values()):
            combo, tree = model.input_features_[i], _tree_of(model, model.estimators_[i])
            structure = sklearn_tree(tree)
            # the tree's feature j is the step's variable _features(combo)[j]
            where = np.asarray([variables.index(f) for f in _features(combo)], dtype=np.int64)
            structure.feature = np.where(structure.left < 0, 0, where[np.maximum(structure.feature, 0)])
            ens.add_tree(structure, t, _leaf_values(tree, task, model.precision))
        ctx.node("Identity", [ens.emit(ctx, x)], ctx.y())


def _last_tree_per_column(model: Any) -> dict[str, int]:
    """Created column -> index of the tree that fills it. A combination listed twice
    writes its column twice (``X.loc[:, name] = ...``): the column stays where it was
    first created and holds the last tree's values."""
    columns: dict[str, int] = {}
    for i, name in enumerate(model._get_new_features_name()):
        columns[str(name)] = i
    return columns


def _leaf_values(tree: Any, task: str, precision: int | None) -> np.ndarray:
    """The created value of each node's leaf, as the step's transform computes it."""
    values = np.asarray(tree.tree_.value[:, 0, :], dtype=np.float64)
    if task == "regression":
        # predict: the leaf's value, then np.round(preds, precision), value by value
        return values[:, 0] if precision is None else np.round(values[:, 0], precision)
    n_classes = len(tree.classes_)
    proba = values[:, :n_classes].copy()
    if task == "multiclass":
        # predict: classes_.take(argmax(proba)) (first maximum)
        return np.asarray(tree.classes_, dtype=np.float64)[np.argmax(proba, axis=1)]
    normalizer = proba.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    proba /= normalizer
    if precision is not None:
        proba = np.round(proba, precision)
    return proba[:, 1]
