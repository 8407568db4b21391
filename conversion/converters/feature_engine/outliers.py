"""Converters for feature-engine's outlier handlers (``feature_engine.outliers``).

``Winsorizer`` and ``ArbitraryOutlierCapper`` share ``BaseOutlier._transform``: with
``missing_values='raise'`` NaN and +-inf are refused; then every variable with a right
cap is clipped from above (``Series.clip(upper=cap)``), then every variable with a left
cap from below. In the graph: ``Where(x > right, right, x)`` then ``Where(y < left, left,
y)`` on the whole block, a missing cap being NaN (no comparison with NaN holds: pandas
does not clip at a NaN threshold either, and a NaN value stays NaN).

``OutlierTrimmer`` removes rows: a graph maps each input row to one output row, so it
is refused at export (:mod:`.refused`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from feature_engine.outliers import ArbitraryOutlierCapper, Winsorizer

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
from .transformation import number, numeric_variables, refuse_nan_and_inf


def _caps(model: Any, attribute: str) -> dict[str, float]:
    caps = getattr(model, attribute)
    if not isinstance(caps, dict):
        raise ExportError(f"{step_label(model)}: {attribute} is a {type(caps).__name__}, not a dict")
    unknown = [v for v in caps if v not in set(model.variables_)]
    if unknown:
        raise ExportError(
            f"{step_label(model)}: {attribute} caps columns {unknown} that are not its variables"
        )
    return {v: number(model, f"{attribute}[{v!r}]", cap) for v, cap in caps.items()}


def _indicators(model: Any) -> list[tuple[str, list[str]]]:
    """Winsorizer's ``add_indicators`` blocks: ("left" / "right", column names)."""
    if not getattr(model, "add_indicators", False):
        return []
    if model.tail not in ("left", "right", "both"):
        raise ExportError(
            f"{step_label(model)}: tail={model.tail!r} with add_indicators=True (transform fails on it)"
        )
    sides = ["left", "right"] if model.tail == "both" else [model.tail]
    return [(side, [f"{v}_{side}" for v in model.variables_]) for side in sides]


class _Capper(FrameConverter):
    onnx_ops = frozenset({"IsNaN", "IsInf", "Greater", "Less", "Where", "Cast"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        variables = numeric_variables(model, columns)
        _caps(model, "right_tail_caps_")
        _caps(model, "left_tail_caps_")
        indicators = _indicators(model)
        names = [c.name for c in columns]
        new = [name for _, block in indicators for name in block]
        clash = [c for c in new if c in set(names)]
        if clash or len(set(new)) != len(new):
            raise ExportError(f"{step_label(model)}: indicator columns {clash or new} already exist")
        if len(indicators) == 2:  # tail="both": feature-engine interleaves v_left, v_right
            new = [name for pair in zip(indicators[0][1], indicators[1][1], strict=True) for name in pair]
        writes = [[Column(v, NUM) for v in variables]] + [
            [Column(n, NUM) for n in block] for _, block in indicators
        ]
        return Plan(variables, writes, names + new)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        if model.missing_values == "raise":
            refuse_nan_and_inf(ctx, variables, x)
        out = x
        right, left = _caps(model, "right_tail_caps_"), _caps(model, "left_tail_caps_")
        if right:
            cap = ctx.row([right.get(v, math.nan) for v in variables], NUM)
            out = ctx.node("Where", [ctx.node("Greater", [out, cap]), cap, out])
        if left:
            cap = ctx.row([left.get(v, math.nan) for v in variables], NUM)
            out = ctx.node("Where", [ctx.node("Less", [out, cap]), cap, out])
        ctx.node("Identity", [out], ctx.y())
        for block, (side, _) in enumerate(_indicators(model), start=1):
            # X_out > X_orig flags a value raised to the left cap, X_out < X_orig a lowered one
            flag = ctx.node("Greater" if side == "left" else "Less", [out, x])
            ctx.node("Cast", [flag], ctx.y(block), to=11)  # DOUBLE


@register_converter
class WinsorizerConverter(_Capper):
    transformer = Winsorizer
    supports = (
        "capping_method gaussian / iqr / quantiles / mad, tail right / left / both, fold, "
        "add_indicators, missing_values raise / ignore"
    )


@register_converter
class ArbitraryOutlierCapperConverter(_Capper):
    transformer = ArbitraryOutlierCapper
    supports = "max_capping_dict, min_capping_dict, missing_values raise / ignore"
