"""Converters for ``sklearn.preprocessing`` (the encoders aside: see ``encoders.py``).

Each reproduces the transformer's ``transform`` operation by operation in float64:

* scalers: ``StandardScaler`` (``x - mean_``, then ``/ scale_``), ``RobustScaler``
  (``- center_``, ``/ scale_``), ``MinMaxScaler`` (``* scale_``, ``+ min_``, clip),
  ``MaxAbsScaler`` (``/ scale_``, clip); NaN passes through, as scikit-learn lets it;
* ``Binarizer`` (``x > threshold``), ``Normalizer`` (l1 / l2 / max row norms, norms
  below 10 eps count as 1), ``KBinsDiscretizer`` (``searchsorted(bin_edges[1:-1], x,
  side="right")``, then one-hot for ``encode="onehot"`` / ``"onehot-dense"``),
  ``PolynomialFeatures`` (scikit-learn's column order and products), ``FunctionTransformer``
  with numpy's element-wise functions;
* ``SplineTransformer`` (the B-spline basis by de Boor's recurrence, as scipy evaluates
  it; every extrapolation mode), ``PowerTransformer`` (Yeo-Johnson and Box-Cox, then the
  standardisation), ``QuantileTransformer`` (numpy's ``interp`` both ways, then the
  normal quantile function ``ndtri`` for ``output_distribution="normal"``),
  ``KernelCenterer``.

The target encoders of ``sklearn.preprocessing`` (``LabelEncoder``, ``LabelBinarizer``,
``MultiLabelBinarizer``) transform ``y``, not a pipeline's ``X``: refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from scipy import stats
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    KernelCenterer,
    LabelBinarizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    MultiLabelBinarizer,
    Normalizer,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
)
from sklearn.preprocessing._data import BOUNDS_THRESHOLD

from ...core.frame import NUM, STR, Column, ExportError, StepContext, register_converter
from ...core.maths import ASINH_OPS, CHECK_OPS, EXPM1_OPS, LOG1P_OPS, asinh, expm1, log1p
from ..feature_engine.creation import columns_of, running_sum
from ..feature_engine.transformation import BOX_COX_OPS, YEO_JOHNSON_OPS, box_cox, yeo_johnson
from .base import (
    SklearnConverter,
    clip,
    feature_names_out,
    fitted_row,
    floats,
    numeric_input,
    refuse,
    refuse_below,
)

#: float64 epsilon (``_handle_zeros_in_scale`` treats scales below 10 eps as 1)
EPS = float(np.finfo(np.float64).eps)


# ------------------------------------------------------------------ scalers


class _OneToOne(SklearnConverter):
    """Transformers whose output columns are their input columns, transformed."""

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        return [Column(c.name, NUM) for c in inputs]


@dataclass(frozen=True)
class Bounds:
    """``np.clip(x, low, high)``."""

    low: float
    high: float


@dataclass(frozen=True)
class Scaling:
    """What a scikit-learn scaler does to every column, in this order: ``x -= centre``,
    ``x *= factor``, ``x /= divisor``, ``x += shift`` (names of fitted vectors, one number
    a column; None: not done), then ``np.clip`` to ``bounds``."""

    centre: str | None = None
    factor: str | None = None
    divisor: str | None = None
    shift: str | None = None
    bounds: Bounds | None = None


def scale_columns(
    ctx: StepContext, model: Any, x: str, width: int, scaling: Scaling, *, fitted: Any = None
) -> str:
    """``scaling`` applied to ``x`` (``[N, width]``), its vectors read from ``fitted`` (the
    model itself by default); NaN passes through."""
    fitted = model if fitted is None else fitted
    for op, what in (
        ("Sub", scaling.centre),
        ("Mul", scaling.factor),
        ("Div", scaling.divisor),
        ("Add", scaling.shift),
    ):
        if what is not None:
            x = ctx.node(op, [x, fitted_row(ctx, model, what, getattr(fitted, what), width)])
    if scaling.bounds is not None:
        x = clip(ctx, x, scaling.bounds.low, scaling.bounds.high)
    return x


class _Scaler(_OneToOne):
    """Scalers: a :class:`Scaling` of every column."""

    def scaling(self, model: Any) -> Scaling:  # pragma: no cover
        raise NotImplementedError

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        return {NUM: scale_columns(ctx, model, numeric_input(ctx, inputs), len(inputs), self.scaling(model))}


@register_converter
class StandardScalerConverter(_Scaler):
    """``x -= mean_`` (with_mean), ``x /= scale_`` (with_std); NaN passes through."""

    transformer = StandardScaler
    supports = "with_mean, with_std (dense input)"
    onnx_ops = CHECK_OPS | frozenset({"Sub", "Div"})

    def scaling(self, model: Any) -> Scaling:
        return Scaling(
            centre="mean_" if model.with_mean and model.mean_ is not None else None,
            divisor="scale_" if model.with_std and model.scale_ is not None else None,
        )


@register_converter
class RobustScalerConverter(_Scaler):
    """``x -= center_`` (with_centering), ``x /= scale_`` (with_scaling); NaN passes through."""

    transformer = RobustScaler
    supports = "with_centering, with_scaling, quantile_range, unit_variance"
    onnx_ops = CHECK_OPS | frozenset({"Sub", "Div"})

    def scaling(self, model: Any) -> Scaling:
        return Scaling(
            centre="center_" if model.with_centering else None,
            divisor="scale_" if model.with_scaling else None,
        )


@register_converter
class MinMaxScalerConverter(_Scaler):
    """``x *= scale_``, ``x += min_``, then ``np.clip`` to ``feature_range`` when ``clip``."""

    transformer = MinMaxScaler
    supports = "feature_range, clip"
    onnx_ops = CHECK_OPS | frozenset({"Mul", "Add", "Less", "Greater", "Where"})

    def scaling(self, model: Any) -> Scaling:
        low, high = (float(v) for v in model.feature_range)
        return Scaling(factor="scale_", shift="min_", bounds=Bounds(low, high) if model.clip else None)


@register_converter
class MaxAbsScalerConverter(_Scaler):
    """``x /= scale_``, then ``np.clip`` to [-1, 1] when ``clip``."""

    transformer = MaxAbsScaler
    supports = "clip (dense input)"
    onnx_ops = CHECK_OPS | frozenset({"Div", "Less", "Greater", "Where"})

    def scaling(self, model: Any) -> Scaling:
        return Scaling(divisor="scale_", bounds=Bounds(-1.0, 1.0) if getattr(model, "clip", False) else None)


# ------------------------------------------------------------------ Binarizer, Normalizer


def binarize(ctx: StepContext, x: str, threshold: float) -> str:
    """scikit-learn's ``binarize``: 1 where ``x > threshold``, else 0."""
    return ctx.node("Cast", [ctx.node("Greater", [x, ctx.const(threshold)])], to=TensorProto.DOUBLE)


@register_converter
class BinarizerConverter(_OneToOne):
    transformer = Binarizer
    supports = "threshold"
    onnx_ops = CHECK_OPS | frozenset({"Greater", "Cast"})

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        return {NUM: binarize(ctx, numeric_input(ctx, inputs), float(model.threshold))}


def normalize(ctx: StepContext, norm: str, x: str, width: int) -> str:
    """scikit-learn's dense ``normalize`` of the rows of ``x``: l1 ``sum |x|``, l2
    ``sqrt(sum x^2)``, max ``max |x|``; norms below 10 eps count as 1
    (``_handle_zeros_in_scale``)."""
    if norm == "l1":
        norms = running_sum(ctx, ctx.node("Abs", [x]), width)
    elif norm == "l2":
        norms = ctx.node("Sqrt", [running_sum(ctx, ctx.node("Mul", [x, x]), width)])
    elif norm == "max":
        norms = ctx.node("ReduceMax", [ctx.node("Abs", [x]), ctx.const([1], np.int64)], keepdims=1)
    else:  # pragma: no cover - scikit-learn validates norm
        raise ExportError(f"norm={norm!r}")
    tiny = ctx.node("Less", [norms, ctx.const(10 * EPS)])
    norms = ctx.node("Where", [tiny, ctx.const(1.0), norms])
    return ctx.node("Div", [x, norms])


NORMALIZE_OPS = frozenset({"Abs", "Mul", "Sqrt", "CumSum", "ReduceMax", "Less", "Where", "Div"})


@register_converter
class NormalizerConverter(_OneToOne):
    transformer = Normalizer
    supports = "norm l1 / l2 / max"
    onnx_ops = CHECK_OPS | NORMALIZE_OPS

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        return {NUM: normalize(ctx, model.norm, numeric_input(ctx, inputs), len(inputs))}


# ------------------------------------------------------------------ FunctionTransformer


def _log_base(base: float) -> Callable[[StepContext, str], str]:
    return lambda ctx, x: ctx.node("Div", [ctx.node("Log", [x]), ctx.const(math.log(base))])


def _trunc(ctx: StepContext, x: str) -> str:
    negative = ctx.node("Less", [x, ctx.const(0.0)])
    return ctx.node("Where", [negative, ctx.node("Ceil", [x]), ctx.node("Floor", [x])])


def _unary(op: str) -> Callable[[StepContext, str], str]:
    return lambda ctx, x: ctx.node(op, [x])


#: numpy's element-wise functions a FunctionTransformer may apply, and their graph
#: (log2 / log10 as log(x) / log(base): within 2 ulp of numpy's)
FUNCTIONS: dict[Any, Callable[[StepContext, str], str]] = {
    np.log: _unary("Log"),
    np.log2: _log_base(2.0),
    np.log10: _log_base(10.0),
    np.log1p: log1p,
    np.exp: _unary("Exp"),
    np.expm1: expm1,
    np.sqrt: _unary("Sqrt"),
    np.square: lambda ctx, x: ctx.node("Mul", [x, x]),
    np.abs: _unary("Abs"),
    np.fabs: _unary("Abs"),
    np.negative: _unary("Neg"),
    np.positive: _unary("Identity"),
    np.reciprocal: lambda ctx, x: ctx.node("Div", [ctx.const(1.0), x]),
    np.sign: _unary("Sign"),
    np.floor: _unary("Floor"),
    np.ceil: _unary("Ceil"),
    np.rint: _unary("Round"),
    np.trunc: _trunc,
    np.arcsinh: asinh,
    np.sin: _unary("Sin"),
    np.cos: _unary("Cos"),
    np.tanh: _unary("Tanh"),
}
FUNCTION_OPS = (
    LOG1P_OPS
    | EXPM1_OPS
    | ASINH_OPS
    | frozenset(
        {"Log", "Div", "Exp", "Sqrt", "Mul", "Abs", "Neg", "Identity", "Sign", "Floor", "Ceil", "Round"}
        | {"Less", "Where", "Sin", "Cos", "Tanh"}
    )
)


def function_name(func: Any) -> str:
    return f"numpy.{func.__name__}" if hasattr(func, "__name__") else repr(func)


def supported_functions() -> str:
    return ", ".join(sorted(f.__name__ for f in FUNCTIONS))


def apply_function(ctx: StepContext, func: Any, x: str) -> str:
    """``func(x)`` for ``func`` in :data:`FUNCTIONS` (None: ``x`` itself)."""
    return x if func is None else FUNCTIONS[func](ctx, x)


@register_converter
class FunctionTransformerConverter(SklearnConverter):
    """``func(X)`` for numpy's element-wise functions; ``func=None`` without validation
    is the identity (any columns, text included: the ``"passthrough"`` of
    ColumnTransformer). ``validate=True`` refuses NaN and +-inf (``check_array``)."""

    transformer = FunctionTransformer
    supports = (
        f"func None or numpy's {supported_functions()}; validate; feature_names_out None / "
        "'one-to-one' / callable; no kw_args"
    )
    onnx_ops = CHECK_OPS | FUNCTION_OPS
    text = True

    def identity(self, model: Any) -> bool:
        return model.func is None and not model.validate

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        func = model.func
        if func is not None and func not in FUNCTIONS:
            raise refuse(
                model, f"func={func!r} is not exported (supported: None or numpy's {supported_functions()})"
            )
        if model.kw_args:
            raise refuse(model, f"kw_args={model.kw_args!r} is not exported")
        inputs = super().check_inputs(model, columns)
        texts = [c.name for c in inputs if c.kind == STR]
        if texts and not self.identity(model):
            raise refuse(
                model,
                f"it applies {function_name(func) if func is not None else 'validation'} to text "
                f"columns {texts}, which raises",
            )
        return inputs

    def nan_ok(self, model: Any) -> bool:
        return not model.validate

    def inf_ok(self, model: Any) -> bool:
        return not model.validate

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        names = [c.name for c in inputs]
        if model.feature_names_out is not None:
            names = feature_names_out(model, names)
            if len(names) != len(inputs):
                raise refuse(
                    model,
                    f"feature_names_out gives {len(names)} names for {len(inputs)} columns; the "
                    "exported functions are element-wise",
                )
        return [Column(n, c.kind) for n, c in zip(names, inputs, strict=True)]

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        return {NUM: apply_function(ctx, model.func, numeric_input(ctx, inputs))}


# ------------------------------------------------------------------ KBinsDiscretizer


def filled_like(ctx: StepContext, mask: str, value: float, dtype: Any = np.float64) -> str:
    """A tensor of ``value`` (of ``dtype``) the shape of the boolean tensor ``mask``, whatever
    its cells."""
    return ctx.node("Where", [mask, ctx.const(value, dtype), ctx.const(value, dtype)])


def add_axis(ctx: StepContext, x: str) -> str:
    """``x[:, :, None]``: an ``[N, n_columns]`` tensor as ``[N, n_columns, 1]``."""
    return ctx.node("Unsqueeze", [x, ctx.const([2], np.int64)])


def count_at_most(ctx: StepContext, x: str, edges: np.ndarray, to: int = TensorProto.INT64) -> str:
    """Per column ``j`` of ``x``, the number of ``edges[j]`` (``[n_columns, n]``) <= ``x[:, j]``,
    as ``to`` (NaN counts none)."""
    above = ctx.node("Cast", [ctx.node("GreaterOrEqual", [add_axis(ctx, x), ctx.const(edges[None])])], to=to)
    return ctx.node("ReduceSum", [above, ctx.const([2], np.int64)], keepdims=0)


COUNT_OPS = frozenset({"Unsqueeze", "GreaterOrEqual", "Cast", "ReduceSum"})


def bin_codes(ctx: StepContext, bin_edges: Sequence[Any], x: str) -> str:
    """``np.searchsorted(bin_edges[j][1:-1], x[:, j], side="right")`` for every column
    ``j`` of ``x``: the number of inner edges <= x, as float64."""
    inner_edges = [np.asarray(e, dtype=np.float64)[1:-1] for e in bin_edges]
    width = max((len(e) for e in inner_edges), default=0)
    if width == 0:
        return ctx.node("Mul", [x, ctx.const(0.0)])
    table = np.full((len(inner_edges), width), np.inf)  # x >= inf only for x = inf (refused)
    for j, edges in enumerate(inner_edges):
        table[j, : len(edges)] = edges
    return count_at_most(ctx, x, table, TensorProto.DOUBLE)


BIN_OPS = COUNT_OPS | frozenset({"Mul"})


def one_hot_codes(ctx: StepContext, codes: str, sizes: Sequence[int]) -> str:
    """One column per (column ``j``, code ``k < sizes[j]``): 1.0 where ``codes[:, j] == k``."""
    which = [j for j, n in enumerate(sizes) for _ in range(n)]
    values = [float(k) for n in sizes for k in range(n)]
    hits = ctx.node("Equal", [columns_of(ctx, codes, which), ctx.row(values, NUM)])
    return ctx.node("Cast", [hits], to=TensorProto.DOUBLE)


@register_converter
class KBinsDiscretizerConverter(SklearnConverter):
    transformer = KBinsDiscretizer
    supports = (
        "n_bins, strategy uniform / quantile / kmeans (every quantile_method), encode ordinal / onehot / "
        "onehot-dense, dtype None / float64"
    )
    onnx_ops = CHECK_OPS | BIN_OPS | frozenset({"Equal"})

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        if model.dtype not in (None, np.float64, float):
            raise refuse(model, f"dtype={model.dtype!r} (the bins are computed in float32) is not exported")
        return super().check_inputs(model, columns)

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        codes = bin_codes(ctx, model.bin_edges_, numeric_input(ctx, inputs))
        if model.encode == "ordinal":
            return {NUM: codes}
        return {NUM: one_hot_codes(ctx, codes, [len(c) for c in model._encoder.categories_])}


# ------------------------------------------------------------------ PolynomialFeatures


def polynomial_features(ctx: StepContext, model: PolynomialFeatures, x: str, n_features: int) -> str:
    """scikit-learn's dense ``PolynomialFeatures.transform``: degree d terms are degree
    d - 1 terms times one feature (``np.multiply(XP[:, start:end], X[:, i])``), in its
    column order; then the columns below the minimal degree are cut."""
    parts: list[str] = []  # tensors whose concatenation is XP
    n_cols = 0
    if model.include_bias:
        first = columns_of(ctx, x, [0])  # a column of ones, whatever the values
        parts.append(filled_like(ctx, ctx.node("IsNaN", [first]), 1.0))
        n_cols = 1
    max_degree = model._max_degree
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
                if model.interaction_only:
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
                so_far = ctx.concat(*parts)
                parts = [
                    so_far,
                    ctx.node("Mul", [columns_of(ctx, so_far, sources), columns_of(ctx, x, features)]),
                ]
            n_cols = current
    full = model._n_out_full
    if n_cols != full:  # pragma: no cover - mirrors scikit-learn's bookkeeping
        raise ExportError(f"internal error: PolynomialFeatures has {full} columns, rebuilt {n_cols}")
    xp = ctx.concat(*parts)
    n_out = model.n_output_features_
    if model._min_degree > 1:
        keep = ([0] if model.include_bias else []) + list(
            range(full - n_out + (1 if model.include_bias else 0), full)
        )
        xp = columns_of(ctx, xp, keep)
    return xp


POLYNOMIAL_OPS = frozenset({"Mul", "IsNaN", "Where", "Concat"})


@register_converter
class PolynomialFeaturesConverter(SklearnConverter):
    transformer = PolynomialFeatures
    supports = "degree (int or (min, max)), interaction_only, include_bias, order (dense input)"
    onnx_ops = CHECK_OPS | POLYNOMIAL_OPS

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        if model.n_output_features_ == 0:
            raise refuse(model, "it creates no column (an empty frame is not exported)")
        return super().check_inputs(model, columns)

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        return {NUM: polynomial_features(ctx, model, numeric_input(ctx, inputs), len(inputs))}


# ------------------------------------------------------------------ not pipeline steps

#: classes of ``sklearn.preprocessing`` that transform a target, not a pipeline's ``X``
#: (their ``fit`` / ``transform`` take ``y`` alone: no Pipeline or ColumnTransformer can
#: hold them), with the reason, for the coverage table
NOT_PIPELINE_STEPS: dict[type, str] = {
    cls: "it encodes a target (fit(y) / transform(y)), not the columns a pipeline transforms: no Pipeline "
    "or ColumnTransformer can hold it; encode feature columns with OneHotEncoder or OrdinalEncoder"
    for cls in (LabelEncoder, LabelBinarizer, MultiLabelBinarizer)
}


# ------------------------------------------------------------------ PowerTransformer


@register_converter
class PowerTransformerConverter(_OneToOne):
    """``scipy.stats.yeojohnson`` / ``scipy.special.boxcox`` per column (feature-engine's
    YeoJohnson / BoxCox graph maths), then the fitted ``StandardScaler`` (standardize);
    NaN passes through; Box-Cox refuses a row with a value <= 0 (``np.nanmin(X) <= 0``)."""

    transformer = PowerTransformer
    supports = "method yeo-johnson / box-cox, standardize"
    onnx_ops = CHECK_OPS | YEO_JOHNSON_OPS | BOX_COX_OPS | frozenset({"LessOrEqual", "Sub", "Div"})

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        names = [c.name for c in inputs]
        x = numeric_input(ctx, inputs)
        lambdas = floats(model, "lambdas_", model.lambdas_, len(inputs))
        bad = [n for n, lam in zip(names, lambdas, strict=True) if not math.isfinite(lam)]
        if bad:
            raise refuse(model, f"lambdas_ is not finite for columns {bad}")
        if model.method == "box-cox":
            refuse_below(
                ctx,
                inputs,
                x,
                0.0,
                "zero or negative value, the Box-Cox transformation needs values > 0",
                inclusive=True,
            )
            y = box_cox(ctx, x, lambdas)
        else:
            y = yeo_johnson(ctx, x, lambdas)
        if model.standardize:
            # the fitted StandardScaler validates the transformed values: +-inf (an overflow) raises
            ctx.refuse_if(
                names,
                ctx.node("IsInf", [y]),
                "the power transformation overflows to infinity, which the standardisation refuses",
            )
            standardise = Scaling(centre="mean_", divisor="scale_")
            y = scale_columns(ctx, model, y, len(inputs), standardise, fitted=model._scaler)
        return {NUM: y}


# ------------------------------------------------------------------ QuantileTransformer

#: cephes ``ndtri`` (scipy.special.ndtri, which ``scipy.stats.norm.ppf`` is): rational
#: approximations, P0 / Q0 for |y - 0.5| <= 3/8, P1 / Q1 and P2 / Q2 in z = 1 / sqrt(-2 log y)
NDTRI_P0 = (
    -5.99633501014107895267e1,
    9.80010754185999661536e1,
    -5.66762857469070293439e1,
    1.39312609387279679503e1,
    -1.23916583867381258016e0,
)
NDTRI_Q0 = (
    1.0,
    1.95448858338141759834e0,
    4.67627912898881538453e0,
    8.63602421390890590575e1,
    -2.25462687854119370527e2,
    2.00260212380060660359e2,
    -8.20372256168333339912e1,
    1.59056225126211695515e1,
    -1.18331621121330003142e0,
)
NDTRI_P1 = (
    4.05544892305962419923e0,
    3.15251094599893866154e1,
    5.71628192246421288162e1,
    4.40805073893200834700e1,
    1.46849561928858024014e1,
    2.18663306850790267539e0,
    -1.40256079171354495875e-1,
    -3.50424626827848203418e-2,
    -8.57456785154685413611e-4,
)
NDTRI_Q1 = (
    1.0,
    1.57799883256466749731e1,
    4.53907635128879210584e1,
    4.13172038254672030440e1,
    1.50425385692907503408e1,
    2.50464946208309415979e0,
    -1.42182922854787788574e-1,
    -3.80806407691578277194e-2,
    -9.33259480895457427372e-4,
)
NDTRI_P2 = (
    3.23774891776946035970e0,
    6.91522889068984211695e0,
    3.93881025292474443415e0,
    1.33303460815807542389e0,
    2.01485389549179081538e-1,
    1.23716634817820021358e-2,
    3.01581553508235416007e-4,
    2.65806974686737550832e-6,
    6.23974539184983293730e-9,
)
NDTRI_Q2 = (
    1.0,
    6.02427039364742014255e0,
    3.67983563856160859403e0,
    1.37702099489081330271e0,
    2.16236993594496635890e-1,
    1.34204006088543189037e-2,
    3.28014464682127739104e-4,
    2.89247864745380683936e-6,
    6.79019408009981274425e-9,
)
_EXP_M2 = 0.13533528323661269189  # exp(-2)
_S2PI = 2.50662827463100050242  # sqrt(2 pi)


def _polevl(ctx: StepContext, x: str, coefficients: Sequence[float]) -> str:
    """cephes ``polevl``: ``((c0 x + c1) x + c2) ...`` (highest degree first)."""
    acc = ctx.const(coefficients[0])
    for c in coefficients[1:]:
        acc = ctx.node("Add", [ctx.node("Mul", [acc, x]), ctx.const(c)])
    return acc


def ndtri(ctx: StepContext, y0: str) -> str:
    """``scipy.special.ndtri(y0)`` for y0 in (0, 1) (cephes; within 1 ulp of scipy's)."""
    one = ctx.const(1.0)
    upper = ctx.node("Greater", [y0, ctx.const(1.0 - _EXP_M2)])
    y = ctx.node("Where", [upper, ctx.node("Sub", [one, y0]), y0])
    central = ctx.node("Greater", [y, ctx.const(_EXP_M2)])
    # |y - 0.5| <= 3/8: x = (w + w w^2 P0(w^2) / Q0(w^2)) sqrt(2 pi)
    w = ctx.node("Sub", [y, ctx.const(0.5)])
    w2 = ctx.node("Mul", [w, w])
    ratio = ctx.node("Div", [ctx.node("Mul", [w2, _polevl(ctx, w2, NDTRI_P0)]), _polevl(ctx, w2, NDTRI_Q0)])
    middle = ctx.node("Mul", [ctx.node("Add", [w, ctx.node("Mul", [w, ratio])]), ctx.const(_S2PI)])
    # tails: z = sqrt(-2 log y), x = z - log(z) / z - (1 / z) P(1 / z) / Q(1 / z)
    safe_y = ctx.node("Where", [central, ctx.const(0.1), y])  # no log(0) in the unused branch
    z = ctx.node("Sqrt", [ctx.node("Mul", [ctx.const(-2.0), ctx.node("Log", [safe_y])])])
    x0 = ctx.node("Sub", [z, ctx.node("Div", [ctx.node("Log", [z]), z])])
    inv = ctx.node("Div", [one, z])
    near = ctx.node("Div", [ctx.node("Mul", [inv, _polevl(ctx, inv, NDTRI_P1)]), _polevl(ctx, inv, NDTRI_Q1)])
    far = ctx.node("Div", [ctx.node("Mul", [inv, _polevl(ctx, inv, NDTRI_P2)]), _polevl(ctx, inv, NDTRI_Q2)])
    x1 = ctx.node("Where", [ctx.node("Less", [z, ctx.const(8.0)]), near, far])
    tail = ctx.node("Sub", [x0, x1])
    tail = ctx.node("Where", [upper, tail, ctx.node("Neg", [tail])])
    return ctx.node("Where", [central, middle, tail])


NDTRI_OPS = frozenset({"Greater", "Where", "Sub", "Mul", "Add", "Div", "Sqrt", "Log", "Less", "Neg"})


def normal_quantiles(ctx: StepContext, p: str) -> str:
    """``QuantileTransformer``'s normal output of the uniform values ``p``:
    ``norm.ppf(p)`` (-inf at 0, +inf at 1, NaN stays NaN), clipped to the quantiles of
    ``BOUNDS_THRESHOLD - spacing(1)`` and of 1 minus it."""
    clip_min = float(stats.norm.ppf(BOUNDS_THRESHOLD - np.spacing(1)))
    clip_max = float(stats.norm.ppf(1 - (BOUNDS_THRESHOLD - np.spacing(1))))
    at_zero = ctx.node("LessOrEqual", [p, ctx.const(0.0)])
    at_one = ctx.node("GreaterOrEqual", [p, ctx.const(1.0)])
    normal = ndtri(ctx, ctx.node("Where", [ctx.node("Or", [at_zero, at_one]), ctx.const(0.5), p]))
    normal = ctx.node("Where", [at_zero, ctx.const(-np.inf), normal])
    normal = ctx.node("Where", [at_one, ctx.const(np.inf), normal])
    normal = ctx.node("Where", [ctx.node("IsNaN", [p]), p, normal])
    return clip(ctx, normal, clip_min, clip_max)


def flat_index(ctx: StepContext, index: str, n_cols: int, stride: int) -> str:
    """``index`` (``[N, n_cols]`` int64: per column ``j``, a position in row ``j`` of a
    ``[n_cols, stride]`` table) as the position in that table raveled row by row."""
    return ctx.node("Add", [index, ctx.const([[c * stride for c in range(n_cols)]], np.int64)])


def interp(ctx: StepContext, x: str, xp: np.ndarray, fp: np.ndarray) -> str:
    """``np.interp(x[:, j], xp[j], fp[j])`` for every column ``j`` of ``x`` (``xp``
    ``[n_columns, n]`` ascending, ``fp`` ``[n_columns, n]``), as numpy computes it: the
    interval ``j`` with ``xp[j] <= x < xp[j + 1]``, ``fp[j]`` where ``x == xp[j]``,
    ``slope * (x - xp[j]) + fp[j]`` else (then from the right end if that is NaN), the end
    values outside; NaN stays NaN."""
    n_cols, n = xp.shape
    count = count_at_most(ctx, x, xp)  # [N, n_columns]
    if n == 1:
        return ctx.node("Where", [ctx.node("IsNaN", [x]), x, ctx.row(list(fp[:, 0]), NUM)])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        slopes = (fp[:, 1:] - fp[:, :-1]) / (xp[:, 1:] - xp[:, :-1])
    j = ctx.node("Sub", [count, ctx.const(1, np.int64)])
    inner = clip(ctx, j, 0, n - 2, np.int64)
    flat = flat_index(ctx, inner, n_cols, n)
    flat_slope = flat_index(ctx, inner, n_cols, n - 1)

    def pick(table: np.ndarray, index: str) -> str:
        return ctx.node("Gather", [ctx.const(np.ascontiguousarray(table).ravel()), index], axis=0)

    x_lo, f_lo = pick(xp, flat), pick(fp, flat)
    next_index = ctx.node("Add", [flat, ctx.const(1, np.int64)])
    x_hi, f_hi = pick(xp, next_index), pick(fp, next_index)
    slope = pick(slopes, flat_slope)

    def line_through(x_at: str, f_at: str) -> str:
        return ctx.node("Add", [ctx.node("Mul", [slope, ctx.node("Sub", [x, x_at])]), f_at])

    value, other = line_through(x_lo, f_lo), line_through(x_hi, f_hi)
    value = ctx.node("Where", [ctx.node("IsNaN", [value]), other, value])
    same = ctx.node("And", [ctx.node("IsNaN", [value]), ctx.node("Equal", [f_lo, f_hi])])
    value = ctx.node("Where", [same, f_lo, value])
    value = ctx.node("Where", [ctx.node("Equal", [x_lo, x]), f_lo, value])
    value = ctx.node(
        "Where",
        [ctx.node("GreaterOrEqual", [j, ctx.const(n - 1, np.int64)]), ctx.row(list(fp[:, -1]), NUM), value],
    )
    value = ctx.node(
        "Where", [ctx.node("Less", [j, ctx.const(0, np.int64)]), ctx.row(list(fp[:, 0]), NUM), value]
    )
    return ctx.node("Where", [ctx.node("IsNaN", [x]), x, value])


INTERP_OPS = COUNT_OPS | frozenset(
    {"Sub", "Less", "Greater", "Where", "Add", "Gather", "Mul", "IsNaN", "And", "Equal"}
)


@register_converter
class QuantileTransformerConverter(_OneToOne):
    """``0.5 * (interp(x, quantiles, references) - interp(-x, -quantiles[::-1],
    -references[::-1]))`` per column, the bounds (``x == quantiles[0]`` / ``[-1]``, within
    1e-7 for the normal output) set to 0 / 1, then ``norm.ppf`` clipped for
    ``output_distribution="normal"``; NaN passes through."""

    transformer = QuantileTransformer
    supports = "n_quantiles, output_distribution uniform / normal, subsample (dense input)"
    onnx_ops = CHECK_OPS | INTERP_OPS | NDTRI_OPS | frozenset({"Neg", "Or", "LessOrEqual"})

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        x = numeric_input(ctx, inputs)
        quantiles = np.asarray(model.quantiles_, dtype=np.float64).T  # [n_columns, n_quantiles]
        references = np.tile(np.asarray(model.references_, dtype=np.float64), (len(inputs), 1))
        forward = interp(ctx, x, quantiles, references)
        backward = interp(ctx, ctx.node("Neg", [x]), -quantiles[:, ::-1], -references[:, ::-1])
        value = ctx.node("Mul", [ctx.const(0.5), ctx.node("Sub", [forward, backward])])
        low, high = list(quantiles[:, 0]), list(quantiles[:, -1])
        if model.output_distribution == "normal":
            below = ctx.node("Less", [ctx.node("Sub", [x, ctx.const(BOUNDS_THRESHOLD)]), ctx.row(low, NUM)])
            above = ctx.node(
                "Greater", [ctx.node("Add", [x, ctx.const(BOUNDS_THRESHOLD)]), ctx.row(high, NUM)]
            )
        else:
            below = ctx.node("Equal", [x, ctx.row(low, NUM)])
            above = ctx.node("Equal", [x, ctx.row(high, NUM)])
        value = ctx.node("Where", [above, ctx.const(1.0), value])
        value = ctx.node("Where", [below, ctx.const(0.0), value])
        if model.output_distribution == "normal":
            value = normal_quantiles(ctx, value)
        return {NUM: value}


# ------------------------------------------------------------------ SplineTransformer


def _de_boor(ctx: StepContext, knots: np.ndarray, k: int, x: str) -> tuple[str, list[str]]:
    """scipy's B-spline evaluation: the interval ``ell`` (``t[ell] <= x < t[ell + 1]``,
    clamped to ``[k, n - 1]``: ``find_interval`` with extrapolation) and the ``k + 1``
    basis values non-zero there (``_deBoor_D``'s recurrence), per column of ``x``.
    ``knots``: ``[n_columns, n_knots]``."""
    n_cols, n_t = knots.shape
    n = n_t - k - 1
    inner = knots[:, k + 1 : n]  # t[k+1 .. n-1]
    if inner.shape[1]:
        ell = ctx.node("Add", [count_at_most(ctx, x, inner), ctx.const(k, np.int64)])
    else:  # one interval: ell = k everywhere
        ell = filled_like(ctx, ctx.node("IsNaN", [x]), k, np.int64)
    base = flat_index(ctx, ell, n_cols, n_t)
    table = ctx.const(np.ascontiguousarray(knots).ravel())
    cache: dict[int, str] = {}

    def knot(offset: int) -> str:
        if offset not in cache:
            cache[offset] = ctx.node(
                "Gather", [table, ctx.node("Add", [base, ctx.const(offset, np.int64)])], axis=0
            )
        return cache[offset]

    nan = ctx.node("IsNaN", [x])
    zero = filled_like(ctx, nan, 0.0)  # [N, n_columns] zeros
    h = [filled_like(ctx, nan, 1.0)]
    for j in range(1, k + 1):
        hh = h
        h = [zero] + [zero] * j
        for m in range(1, j + 1):
            xb, xa = knot(m), knot(m - j)
            same = ctx.node("Equal", [xb, xa])  # h[m] = 0, h[m - 1] unchanged
            w = ctx.node("Div", [hh[m - 1], ctx.node("Sub", [xb, xa])])
            grown = ctx.node("Add", [h[m - 1], ctx.node("Mul", [w, ctx.node("Sub", [xb, x])])])
            h[m - 1] = ctx.node("Where", [same, h[m - 1], grown])
            h[m] = ctx.node("Where", [same, ctx.const(0.0), ctx.node("Mul", [w, ctx.node("Sub", [x, xa])])])
    return ell, h


DE_BOOR_OPS = COUNT_OPS | frozenset({"Add", "Gather", "IsNaN", "Where", "Equal", "Div", "Sub", "Mul"})


@dataclass(frozen=True)
class Boundary:
    """How scikit-learn's constant / linear extrapolation treats one column's boundaries."""

    #: the degree its boundaries use: ``xmin = t[degree]``, ``xmax = t[-degree - 1]``
    degree: int
    #: the number of spline columns it extends at each end (linear extrapolation)
    extended: int


def _boundaries(model: Any, knots: np.ndarray, n_splines: int) -> list[Boundary]:
    """Per column, the degree scikit-learn's constant / linear extrapolation uses for its
    boundaries and the number of boundary columns it extends. ``transform`` raises ``degree`` to 2 when it is <= 1 for the *linear*
    extrapolation and keeps the raised value for the next columns (scikit-learn 1.9): the
    first column uses ``degree``, the next ones the raised one; reproduced as it is."""
    degree = int(model.degree)
    found = []
    for t in knots:
        d = degree
        if model.extrapolation == "linear" and degree <= 1:
            degree += 1
        extended = degree if model.extrapolation == "linear" else d
        if d > len(t) - 1 or extended > n_splines:
            raise refuse(
                model,
                f"degree={model.degree} with {len(t)} knots: scikit-learn's linear extrapolation raises an "
                "IndexError on the columns after the first one (it keeps the degree it raised for the first); "
                "use more knots or degree >= 2",
            )
        found.append(Boundary(d, extended))
    return found


@register_converter
class SplineTransformerConverter(SklearnConverter):
    """Each column's B-spline basis (de Boor's recurrence on its knots, as scipy's
    ``BSpline`` evaluates it), combined by the fitted coefficients (the identity; the
    periodic wrap for ``extrapolation="periodic"``), then the extrapolation: ``error``
    refuses values outside the knots, ``constant`` / ``linear`` continue the boundary
    values / slopes, ``continue`` extends the outer polynomials, ``periodic`` maps ``x``
    into the period (``np.remainder``); ``handle_missing="zeros"`` gives zeros for NaN."""

    transformer = SplineTransformer
    supports = (
        "n_knots, degree, knots uniform / quantile / an array, extrapolation error / constant / linear / "
        "continue / periodic, include_bias, handle_missing error / zeros, order, sparse_output (same values)"
    )
    onnx_ops = (
        CHECK_OPS
        | DE_BOOR_OPS
        | frozenset(
            {
                "Less",
                "Greater",
                "LessOrEqual",
                "And",
                "Or",
                "Not",
                "IsInf",
                "Mod",
                "Concat",
                "Reshape",
                "MatMul",
            }
        )
    )

    def nan_ok(self, model: Any) -> bool:
        return getattr(model, "handle_missing", "error") == "zeros"

    def inf_ok(self, model: Any) -> bool:
        return self.nan_ok(model)

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        if model.sparse_output and self.nan_ok(model):
            raise refuse(
                model,
                "sparse_output=True with handle_missing='zeros' is not exported (infinite values reach "
                "BSpline.design_matrix); use sparse_output=False",
            )
        if model.extrapolation == "periodic":
            for spl in model.bsplines_:
                n = spl.t.size - spl.k - 1
                if not spl.t[n] - spl.t[spl.k] > 0:
                    raise refuse(model, "a column has a zero period (a single value at fit); not exported")
        return super().check_inputs(model, columns)

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        x = numeric_input(ctx, inputs)
        n_cols = len(inputs)
        splines = model.bsplines_
        k = int(model.degree)
        knots = np.array([np.asarray(s.t, dtype=np.float64) for s in splines])
        coef = np.asarray(splines[0].c, dtype=np.float64)  # [n_basis, n_splines], the same for every column
        n_basis, n_splines = coef.shape
        n = knots.shape[1] - k - 1
        xmin, xmax = list(knots[:, k]), list(knots[:, n])
        mode = model.extrapolation
        nan = ctx.node("IsNaN", [x])
        x_eval = x
        if mode == "periodic":
            period = [float(t[n] - t[k]) for t in knots]
            shifted = ctx.node("Sub", [x, ctx.row(xmin, NUM)])
            r = ctx.node("Mod", [shifted, ctx.row(period, NUM)], fmod=1)
            # np.remainder: the sign of the divisor (period > 0), +0.0 for a zero remainder
            r = ctx.node(
                "Where",
                [ctx.node("Less", [r, ctx.const(0.0)]), ctx.node("Add", [r, ctx.row(period, NUM)]), r],
            )
            r = ctx.node("Where", [ctx.node("Equal", [r, ctx.const(0.0)]), ctx.const(0.0), r])
            x_eval = ctx.node("Add", [ctx.row(xmin, NUM), r])
        ell, h = _de_boor(ctx, knots, k, x_eval)
        # out[:, j, s] = sum_a c[ell - k + a, s] h[a] (scipy's evaluate_spline)
        positions = ctx.const(np.arange(n_basis)[None, None, :], np.int64)
        total = None
        for a in range(k + 1):
            index = add_axis(ctx, ctx.node("Add", [ell, ctx.const(a - k, np.int64)]))
            value = add_axis(ctx, h[a])
            placed = ctx.node("Where", [ctx.node("Equal", [index, positions]), value, ctx.const(0.0)])
            total = placed if total is None else ctx.node("Add", [total, placed])
        assert total is not None
        if not np.array_equal(coef, np.eye(n_basis, n_splines)):
            total = ctx.node("MatMul", [total, ctx.const(coef)])
        # a NaN x (no interval) or a non-finite basis value: the whole column block is NaN (0 * inf)
        bad = ctx.node("IsNaN", [x_eval])
        for value in h:
            bad = ctx.node(
                "Or",
                [
                    bad,
                    ctx.node("Not", [ctx.node("Equal", [ctx.node("Sub", [value, value]), ctx.const(0.0)])]),
                ],
            )
        cube = ctx.node("Where", [add_axis(ctx, bad), ctx.const(np.nan), total])  # [N, n_columns, n_splines]

        def per_column(row: np.ndarray) -> str:
            return ctx.const(np.asarray(row, dtype=np.float64)[None, :, :])

        def values_at(points: Sequence[float], nu: int = 0) -> np.ndarray:
            """Each column's splines (or their derivative ``nu``) at its point: ``[n_columns, n_splines]``."""
            return np.array([s(p, nu=nu) for s, p in zip(splines, points, strict=True)])

        if mode == "error":
            outside = ctx.node(
                "Or",
                [ctx.node("Less", [x, ctx.row(xmin, NUM)]), ctx.node("Greater", [x, ctx.row(xmax, NUM)])],
            )
            ctx.refuse_if(
                [c.name for c in inputs],
                outside,
                "value beyond the limits of the knots (SplineTransformer with extrapolation='error')",
            )
        elif mode in ("constant", "linear"):
            bounds = _boundaries(model, knots, n_splines)
            xmin = [float(t[b.degree]) for t, b in zip(knots, bounds, strict=True)]
            xmax = [float(t[-b.degree - 1]) for t, b in zip(knots, bounds, strict=True)]
            inside = ctx.node(
                "And",
                [
                    ctx.node("LessOrEqual", [ctx.row(xmin, NUM), x]),
                    ctx.node("LessOrEqual", [x, ctx.row(xmax, NUM)]),
                ],
            )
            cube = ctx.node("Where", [add_axis(ctx, inside), cube, ctx.const(0.0)])
            below = add_axis(ctx, ctx.node("Less", [x, ctx.row(xmin, NUM)]))
            above = add_axis(ctx, ctx.node("Greater", [x, ctx.row(xmax, NUM)]))
            f_min, f_max = values_at(xmin), values_at(xmax)
            low_cols = np.zeros((n_cols, n_splines), dtype=bool)
            high_cols = np.zeros((n_cols, n_splines), dtype=bool)
            if mode == "constant":
                low_cols[:, :k] = True
                high_cols[:, n_splines - k :] = True
                low_values, high_values = per_column(f_min), per_column(f_max)
            else:
                for f, b in enumerate(bounds):
                    for j in range(b.extended):
                        low_cols[f, j] = True
                        high_cols[f, n_splines - 1 - j] = True
                x3 = add_axis(ctx, x)

                def tangent(values: np.ndarray, points: Sequence[float]) -> str:
                    """``values + (x - points) * slopes``: the splines continued from ``points``."""
                    start = per_column(values)
                    offset = ctx.node("Sub", [x3, per_column(np.array(points)[:, None])])
                    return ctx.node(
                        "Add", [start, ctx.node("Mul", [offset, per_column(values_at(points, nu=1))])]
                    )

                low_values, high_values = tangent(f_min, xmin), tangent(f_max, xmax)
            if low_cols.any():
                where = ctx.node("And", [below, ctx.const(low_cols[None], np.bool_)])
                cube = ctx.node("Where", [where, low_values, cube])
            if high_cols.any():
                where = ctx.node("And", [above, ctx.const(high_cols[None], np.bool_)])
                cube = ctx.node("Where", [where, high_values, cube])
        if self.nan_ok(model):  # handle_missing="zeros"
            cube = ctx.node("Where", [add_axis(ctx, nan), ctx.const(0.0), cube])
        out = ctx.node("Reshape", [cube, ctx.const([-1, n_cols * n_splines], np.int64)])
        if not model.include_bias:
            out = columns_of(ctx, out, [j for j in range(n_cols * n_splines) if (j + 1) % n_splines != 0])
        return {NUM: out}


# ------------------------------------------------------------------ KernelCenterer


@register_converter
class KernelCentererConverter(SklearnConverter):
    """``K - K_fit_rows_ - K.sum(axis=1) / n_fit + K_fit_all_``."""

    transformer = KernelCenterer
    supports = "a kernel matrix against the training samples"
    onnx_ops = CHECK_OPS | frozenset({"CumSum", "Div", "Sub", "Add"})

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        k = numeric_input(ctx, inputs)
        n_fit = len(inputs)  # K_fit_rows_ holds a mean per training sample, one a column
        pred_cols = ctx.node("Div", [running_sum(ctx, k, n_fit), ctx.const(float(n_fit))])
        k = ctx.node("Sub", [k, fitted_row(ctx, model, "K_fit_rows_", model.K_fit_rows_, n_fit)])
        k = ctx.node("Sub", [k, pred_cols])
        return {NUM: ctx.node("Add", [k, ctx.const(float(model.K_fit_all_))])}
