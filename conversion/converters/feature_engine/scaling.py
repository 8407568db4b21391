"""Converters for feature-engine's scalers (``feature_engine.scaling``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feature_engine.scaling import MeanNormalizationScaler

from ...core.frame import NUM, Column, FrameConverter, Plan, StepContext, register_converter
from .transformation import numeric_variables, per_variable, refuse_nan_and_inf


@register_converter
class MeanNormalizationScalerConverter(FrameConverter):
    """``(x - mean_[v]) / range_[v]``, NaN and +-inf refused (``BaseNumericalTransformer``)."""

    transformer = MeanNormalizationScaler
    supports = "fitted mean_ and range_"
    onnx_ops = frozenset({"IsNaN", "IsInf", "Sub", "Div"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_variables(model, columns)
        per_variable(model, "mean_", model.mean_, variables)
        per_variable(model, "range_", model.range_, variables)
        return self.in_place(columns, variables)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        refuse_nan_and_inf(ctx, variables, x)
        mean = ctx.row(per_variable(model, "mean_", model.mean_, variables), NUM)
        spread = ctx.row(per_variable(model, "range_", model.range_, variables), NUM)
        ctx.node("Div", [ctx.node("Sub", [x, mean]), spread], ctx.y())
