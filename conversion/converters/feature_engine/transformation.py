"""Converters for feature-engine's variable transformers (``feature_engine.transformation``).

Every transformer here derives from ``BaseNumericalTransformer``: its ``transform``
refuses NaN and +-inf in its variables (:func:`refuse_nan_and_inf`), then applies a
domain check where it has one (log, reciprocal, Box-Cox, arcsin) and the function.

The float64 functions (log1p, expm1, fdlibm's asin, asinh) are in :mod:`..core.maths`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from feature_engine.transformation import (
    ArcSinhTransformer,
    ArcsinTransformer,
    BoxCoxTransformer,
    LogCpTransformer,
    LogTransformer,
    PowerTransformer,
    ReciprocalTransformer,
    YeoJohnsonTransformer,
)

from ...core.frame import (
    NUM,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    register_converter,
    step_label,
)
from ...core.maths import (
    ASIN_OPS,
    ASINH_OPS,
    CHECK_OPS,
    EXPM1_OPS,
    LOG1P_OPS,
    asin_unit,
    asinh,
    expm1,
    log1p,
)

#: integers up to this magnitude are exactly float64
EXACT_INT = 2**53


def numeric_variables(model: Any, columns: Sequence[Column]) -> list[str]:
    """``model.variables_``, checked to be numeric columns of the frame."""
    kinds = {c.name: c.kind for c in columns}
    strings = [v for v in model.variables_ if kinds[v] != NUM]
    if strings:
        raise ExportError(f"{step_label(model)}: variables {strings} are not numeric columns")
    return list(model.variables_)


def refuse_nan_and_inf(ctx: StepContext, variables: Sequence[str], x: str) -> None:
    """feature-engine's numerical transformers refuse NaN and +-inf in their variables."""
    ctx.refuse_if(
        variables, ctx.node("IsNaN", [x]), "missing value (NaN), the step does not accept missing values"
    )
    ctx.refuse_if(variables, ctx.node("IsInf", [x]), "infinite value, the step accepts only finite numbers")


def number(model: Any, what: str, value: Any) -> float:
    """``value`` (a parameter or fitted constant) as the float64 pandas / numpy compute with;
    an ExportError when it is no number or an integer float64 does not hold exactly."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ExportError(f"{step_label(model)}: {what}={value!r} is not a number")
    if isinstance(value, (int, np.integer)) and abs(int(value)) > EXACT_INT:
        raise ExportError(
            f"{step_label(model)}: {what}={value!r} is an integer that float64 does not hold exactly"
        )
    return float(value)


def per_variable(model: Any, what: str, values: Any, variables: Sequence[str]) -> list[float]:
    """``values[v]`` for each variable (a fitted dict), as float64 numbers."""
    if not isinstance(values, dict):
        raise ExportError(f"{step_label(model)}: {what} is a {type(values).__name__}, not a dict")
    missing = [v for v in variables if v not in values]
    if missing:
        raise ExportError(f"{step_label(model)}: {what} has no value for variables {missing}")
    return [number(model, f"{what}[{v!r}]", values[v]) for v in variables]


# ----------------------------------------------------------------- converters


@register_converter
class LogTransformerConverter(FrameConverter):
    transformer = LogTransformer
    supports = "base e / 10"
    onnx_ops = frozenset({"IsNaN", "IsInf", "LessOrEqual", "Log", "Div"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        if model.base not in ("e", "10"):
            raise ExportError(f"{step_label(model)}: base={model.base!r} is not supported")
        return self.in_place(columns, numeric_variables(model, columns))

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        _logarithm(ctx, model, variables, x, "zero or negative value, the logarithm needs values > 0")


def _logarithm(ctx: StepContext, model: Any, variables: Sequence[str], x: str, reason: str) -> None:
    """Refuse values <= 0 in ``x``, write its logarithm (natural for base "e", else base 10)."""
    ctx.refuse_if(variables, ctx.node("LessOrEqual", [x, ctx.const(0.0)]), reason)
    if model.base == "e":
        ctx.node("Log", [x], ctx.y())
    else:
        ctx.node("Div", [ctx.node("Log", [x]), ctx.const(math.log(10.0))], ctx.y())


@register_converter
class LogCpTransformerConverter(FrameConverter):
    """``log(x + C)``; transform takes the base-10 logarithm for any ``base`` but "e"."""

    transformer = LogCpTransformer
    supports = "C auto / number / dict, base e / 10"
    onnx_ops = CHECK_OPS | frozenset({"Add", "LessOrEqual", "Log", "Div"})

    def constants(self, model: Any) -> list[float]:
        variables = list(model.variables_)
        if isinstance(model.C_, dict):
            return per_variable(model, "C_", model.C_, variables)
        return [number(model, "C_", model.C_)] * len(variables)

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        self.constants(model)
        return self.in_place(columns, numeric_variables(model, columns))

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        shifted = ctx.node("Add", [x, ctx.row(self.constants(model), NUM)])
        _logarithm(
            ctx,
            model,
            variables,
            shifted,
            "zero or negative value after adding the constant C, the logarithm needs x + C > 0",
        )


@register_converter
class ReciprocalTransformerConverter(FrameConverter):
    transformer = ReciprocalTransformer
    supports = "1 / x"
    onnx_ops = CHECK_OPS | frozenset({"Equal", "Div"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        return self.in_place(columns, numeric_variables(model, columns))

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        ctx.refuse_if(
            variables, ctx.node("Equal", [x, ctx.const(0.0)]), "zero value, the reciprocal needs x != 0"
        )
        ctx.node("Div", [ctx.const(1.0), x], ctx.y())


@register_converter
class PowerTransformerConverter(FrameConverter):
    """``np.power(x, exp)``: NaN for a negative x and a fractional exp, as numpy gives."""

    transformer = PowerTransformer
    supports = "exp (any int / float)"
    onnx_ops = CHECK_OPS | frozenset({"Pow"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        number(model, "exp", model.exp)
        return self.in_place(columns, numeric_variables(model, columns))

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        ctx.node("Pow", [x, ctx.const(number(model, "exp", model.exp))], ctx.y())


def box_cox(ctx: StepContext, x: str, lambdas: Sequence[float]) -> str:
    """``scipy.special.boxcox(x[:, j], lambdas[j])`` (x > 0; NaN gives NaN): ``log(x)`` when
    ``|lambda| < 1e-19``; ``expm1(lambda log x) / lambda`` when ``lambda log x < 709.78``;
    else ``sign(lambda) exp(lambda log x - log |lambda|) - 1 / lambda`` (no overflow)."""
    zero = [abs(lam) < 1e-19 for lam in lambdas]
    lam = [1.0 if z else v for v, z in zip(lambdas, zero, strict=True)]  # no 1/0 in unused branches
    log_x = ctx.node("Log", [x])
    t = ctx.node("Mul", [log_x, ctx.row(lam, NUM)])
    usual = ctx.node("Div", [expm1(ctx, t), ctx.row(lam, NUM)])
    scaled = ctx.node("Exp", [ctx.node("Sub", [t, ctx.row([math.log(abs(v)) for v in lam], NUM)])])
    large = ctx.node(
        "Sub",
        [
            ctx.node("Mul", [scaled, ctx.row([math.copysign(1.0, v) for v in lam], NUM)]),
            ctx.row([1.0 / v for v in lam], NUM),
        ],
    )
    value = ctx.node("Where", [ctx.node("Less", [t, ctx.const(709.78)]), usual, large])
    if any(zero):
        value = ctx.node("Where", [ctx.const([zero], np.bool_), log_x, value])
    return value


BOX_COX_OPS = EXPM1_OPS | frozenset({"Less", "Log", "Mul", "Div", "Sub", "Exp", "Where"})


def yeo_johnson(ctx: StepContext, x: str, lambdas: Sequence[float]) -> str:
    """``scipy.stats.yeojohnson(x[:, j], lambdas[j])`` (scipy's ``_yeojohnson_transform``;
    NaN gives NaN): for x >= 0, ``log1p(x)`` when ``|lambda| < eps`` else
    ``expm1(lambda log1p(x)) / lambda``; for x < 0, ``-log1p(-x)`` when
    ``|lambda - 2| <= eps`` else ``-expm1((2 - lambda) log1p(-x)) / (2 - lambda)``. Both
    branches share ``log1p(|x|)``."""
    eps = float(np.finfo(np.float64).eps)
    positive = ctx.node("GreaterOrEqual", [x, ctx.const(0.0)])
    log1p_abs = log1p(ctx, ctx.node("Abs", [x]))
    pos_log = [abs(lam) < eps for lam in lambdas]  # the log1p branch for x >= 0
    neg_log = [not abs(lam - 2) > eps for lam in lambdas]  # ... and for x < 0
    pos_c = [1.0 if z else lam for lam, z in zip(lambdas, pos_log, strict=True)]
    neg_c = [1.0 if z else 2 - lam for lam, z in zip(lambdas, neg_log, strict=True)]
    c = ctx.node("Where", [positive, ctx.row(pos_c, NUM), ctx.row(neg_c, NUM)])
    value = ctx.node("Div", [expm1(ctx, ctx.node("Mul", [c, log1p_abs])), c])
    if any(pos_log) or any(neg_log):
        # onnxruntime has no boolean Where: (x >= 0 and pos_log) or (x < 0 and neg_log)
        use_log = ctx.node(
            "Or",
            [
                ctx.node("And", [positive, ctx.const([pos_log], np.bool_)]),
                ctx.node("And", [ctx.node("Not", [positive]), ctx.const([neg_log], np.bool_)]),
            ],
        )
        value = ctx.node("Where", [use_log, log1p_abs, value])
    return ctx.node("Where", [positive, value, ctx.node("Neg", [value])])


YEO_JOHNSON_OPS = (
    LOG1P_OPS
    | EXPM1_OPS
    | frozenset({"GreaterOrEqual", "Abs", "Where", "Mul", "Div", "Neg", "And", "Or", "Not"})
)


class _LambdaConverter(FrameConverter):
    """Transformers with a fitted ``lambda_dict_`` (one finite lambda per variable)."""

    @staticmethod
    def lambdas(model: Any) -> list[float]:
        return per_variable(model, "lambda_dict_", model.lambda_dict_, list(model.variables_))

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        bad = [
            v for v, lam in zip(model.variables_, self.lambdas(model), strict=True) if not math.isfinite(lam)
        ]
        if bad:
            raise ExportError(f"{step_label(model)}: lambda_dict_ is not finite for variables {bad}")
        return self.in_place(columns, numeric_variables(model, columns))


@register_converter
class BoxCoxTransformerConverter(_LambdaConverter):
    """``scipy.special.boxcox(x, lambda_dict_[v])``: ``log(x)`` when ``|lambda| < 1e-19``;
    ``expm1(lambda log x) / lambda`` when ``lambda log x < 709.78``; else
    ``sign(lambda) exp(lambda log x - log |lambda|) - 1 / lambda`` (no overflow)."""

    transformer = BoxCoxTransformer
    supports = "fitted lambda_dict_ (any lambda, 0 included)"
    onnx_ops = CHECK_OPS | EXPM1_OPS | frozenset({"LessOrEqual", "Less", "Log", "Mul", "Div", "Sub", "Exp"})

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        lambdas = self.lambdas(model)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        ctx.refuse_if(
            variables,
            ctx.node("LessOrEqual", [x, ctx.const(0.0)]),
            "zero or negative value, the Box-Cox transformation needs values > 0",
        )
        value = box_cox(ctx, x, lambdas)
        ctx.node("Identity", [value], ctx.y())


@register_converter
class YeoJohnsonTransformerConverter(_LambdaConverter):
    """``scipy.stats.yeojohnson(x, lambda_dict_[v])`` (scipy's ``_yeojohnson_transform``):
    for x >= 0, ``log1p(x)`` when ``|lambda| < eps`` else ``expm1(lambda log1p(x)) / lambda``;
    for x < 0, ``-log1p(-x)`` when ``|lambda - 2| <= eps`` else
    ``-expm1((2 - lambda) log1p(-x)) / (2 - lambda)``. Both branches share ``log1p(|x|)``."""

    transformer = YeoJohnsonTransformer
    supports = "fitted lambda_dict_ (any lambda, 0 and 2 included)"
    onnx_ops = (
        CHECK_OPS
        | LOG1P_OPS
        | EXPM1_OPS
        | frozenset({"GreaterOrEqual", "Abs", "Where", "Mul", "Div", "Neg", "And", "Or", "Not"})
    )

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        lambdas = self.lambdas(model)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        ctx.node("Identity", [yeo_johnson(ctx, x, lambdas)], ctx.y())


@register_converter
class ArcsinTransformerConverter(FrameConverter):
    """``arcsin(sqrt(x))``; transform refuses values outside [0, 1]."""

    transformer = ArcsinTransformer
    supports = "arcsin(sqrt(x)) on [0, 1]"
    onnx_ops = CHECK_OPS | ASIN_OPS | frozenset({"Less", "Greater", "Or", "Sqrt"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        return self.in_place(columns, numeric_variables(model, columns))

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        outside = ctx.node(
            "Or", [ctx.node("Less", [x, ctx.const(0.0)]), ctx.node("Greater", [x, ctx.const(1.0)])]
        )
        ctx.refuse_if(variables, outside, "value outside [0, 1], the arcsin transformation needs 0 <= x <= 1")
        ctx.node("Identity", [asin_unit(ctx, ctx.node("Sqrt", [x]))], ctx.y())


@register_converter
class ArcSinhTransformerConverter(FrameConverter):
    """``arcsinh((x - loc) / scale)``."""

    transformer = ArcSinhTransformer
    supports = "loc, scale"
    onnx_ops = CHECK_OPS | ASINH_OPS | frozenset({"Sub", "Div"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        number(model, "loc", model.loc)
        number(model, "scale", model.scale)
        return self.in_place(columns, numeric_variables(model, columns))

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        z = ctx.node(
            "Div",
            [
                ctx.node("Sub", [x, ctx.const(number(model, "loc", model.loc))]),
                ctx.const(number(model, "scale", model.scale)),
            ],
        )
        ctx.node("Identity", [asinh(ctx, z)], ctx.y())
