"""Converters for feature-engine's variable transformers (``feature_engine.transformation``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from feature_engine.transformation import LogTransformer

from ._frame import NUM, Column, ExportError, FrameConverter, Plan, StepContext, frame_converter, step_label


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


@frame_converter
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
        ctx.refuse_if(
            variables,
            ctx.node("LessOrEqual", [x, ctx.const(0.0)]),
            "zero or negative value, the logarithm needs values > 0",
        )
        if model.base == "e":
            ctx.node("Log", [x], ctx.y())
        else:
            ctx.node("Div", [ctx.node("Log", [x]), ctx.const(math.log(10.0))], ctx.y())
