"""Converters for feature-engine's imputers (``feature_engine.imputation``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from feature_engine.imputation import (
    AddMissingIndicator,
    ArbitraryNumberImputer,
    CategoricalImputer,
    EndTailImputer,
    MeanMedianImputer,
)

from ...core.frame import (
    MISSING,
    NUM,
    STR,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    by_kind,
    register_converter,
    step_label,
)


def _check_fill_value(model: Any, column: Column, value: Any) -> None:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if column.kind == NUM and not number:
        raise ExportError(
            f"{step_label(model)}: numeric column '{column.name}' would be filled with "
            f"{value!r} ({type(value).__name__}); numeric columns are exported with numeric fill values"
        )
    if column.kind == STR and not isinstance(value, str):
        raise ExportError(
            f"{step_label(model)}: categorical column '{column.name}' would be filled with "
            f"{value!r} ({type(value).__name__}); categorical columns are exported with string fill values"
        )
    if column.kind == STR and value == MISSING:
        raise ExportError(
            f"{step_label(model)}: categorical column '{column.name}' would be filled with the "
            f"reserved missing-value marker {MISSING!r}, which the graph reads as missing"
        )


class _DictImputer(FrameConverter):
    """Imputers whose fitted ``imputer_dict_`` maps each variable to its fill value:
    ``X.fillna(imputer_dict_)``, i.e. ``Where(is_missing(x), fill, x)`` per block."""

    onnx_ops = frozenset({"IsNaN", "Equal", "Where"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        by_name = {c.name: c for c in columns}
        for var in model.variables_:
            _check_fill_value(model, by_name[var], model.imputer_dict_[var])
        return self.in_place(columns, list(model.variables_))

    def convert(self, ctx: StepContext, model: Any) -> None:
        kinds = {v: ctx.kind(v) for v in model.variables_}
        for block, (kind, variables) in enumerate(by_kind(kinds, model.variables_)):
            x = ctx.gather(variables)
            fill = ctx.row([model.imputer_dict_[v] for v in variables], kind)
            ctx.node("Where", [ctx.is_missing(x, kind), fill, x], ctx.y(block))


@register_converter
class MeanMedianImputerConverter(_DictImputer):
    transformer = MeanMedianImputer
    supports = "imputation_method mean / median"


@register_converter
class ArbitraryNumberImputerConverter(_DictImputer):
    transformer = ArbitraryNumberImputer
    supports = "arbitrary_number, imputer_dict"


@register_converter
class EndTailImputerConverter(_DictImputer):
    transformer = EndTailImputer
    supports = "imputation_method gaussian / iqr / max, tail right / left, fold"


@register_converter
class CategoricalImputerConverter(_DictImputer):
    transformer = CategoricalImputer
    supports = "imputation_method missing / frequent, fill_value, ignore_format (numeric variables), return_object on categorical variables"

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        if model.return_object:
            numeric = [c.name for c in columns if c.name in model.variables_ and c.kind == NUM]
            if numeric:
                raise ExportError(
                    f"{step_label(model)}: return_object=True turns numeric columns {numeric} "
                    "into Python objects; that is not exported"
                )
        return super().plan(model, columns)


@register_converter
class AddMissingIndicatorConverter(FrameConverter):
    transformer = AddMissingIndicator
    supports = "missing_only True / False, numeric and categorical variables"
    onnx_ops = frozenset({"IsNaN", "Equal", "Cast"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        names = {c.name for c in columns}
        kinds = {c.name: c.kind for c in columns}
        new = [f"{v}_na" for v in model.variables_]
        clash = [c for c in new if c in names]
        if clash:
            raise ExportError(f"{step_label(model)}: indicator columns {clash} already exist")
        # one block per kind of source column, numeric first (as convert() builds them)
        writes = [[Column(f"{v}_na", NUM) for v in vs] for _, vs in by_kind(kinds, model.variables_)]
        return Plan(list(model.variables_), writes, [c.name for c in columns] + new)

    def convert(self, ctx: StepContext, model: Any) -> None:
        kinds = {v: ctx.kind(v) for v in model.variables_}
        for block, (kind, variables) in enumerate(by_kind(kinds, model.variables_)):
            missing = ctx.is_missing(ctx.gather(variables), kind)
            ctx.node("Cast", [missing], ctx.y(block), to=11)  # DOUBLE
