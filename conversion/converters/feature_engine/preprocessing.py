"""Converters for feature-engine's preprocessing steps (``feature_engine.preprocessing``).

``MatchVariables`` drops the columns it did not see in fit and adds (with
``fill_value``) the ones it misses, then puts them in fit order. An exported graph's
inputs are fixed: the columns the pipeline was fitted on (the first step's
``feature_names_in_``), located by name by the runtime, which ignores extra columns
(as ``MatchVariables`` drops them) and refuses a record that lacks one (where
``MatchVariables`` would add it filled with ``fill_value``: the export does not
invent values for absent inputs). So, inside the graph, every column is present and the
step keeps its other effects: ``missing_values='raise'`` refuses missing values, and
``match_dtypes=True`` casts each column to its fit dtype: float64; int64 (truncated
toward zero, -2**63 out of the int64 range as numpy's x86-64 cast gives; NaN / inf
refused, pandas raises); bool (NaN is True); object / str; category with string
categories (other values become missing); naive datetime64 ns / us / ms / s (floored
to the unit; a floor before the first nanosecond datetime, which the graph cannot
hold, is refused). Other dtypes are refused at export.
A ``MatchVariables`` later in a pipeline sees the previous step's columns, which are
always its fit columns.

``MatchCategories`` makes each of its variables a pandas categorical with the fitted
categories: a value outside them becomes missing, which ``missing_values='raise'``
refuses (as it refuses missing values); ``'ignore'`` keeps it missing (feature-engine
only warns). The graph carries the column as strings (a categorical's values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from feature_engine.preprocessing import MatchCategories, MatchVariables
from onnx import TensorProto

from ...core.frame import (
    DT,
    MISSING,
    NAT,
    NS_MIN,
    NUM,
    STR,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    lookup,
    register_converter,
    step_label,
)
from .encoding import string_categories

#: what ``match_dtypes=True`` does to a column, after its fit dtype
KEEP, TO_INT64, TO_BOOL, TO_CATEGORY = "keep", "int64", "bool", "category"
#: ... to a datetime column of a coarser unit than ns: "floor:<unit>" (pandas floors)
FLOOR = "floor:"
#: the datetime64 units a ``dt`` column is cast to (the graph holds nanoseconds)
DATETIME_UNITS = ("ns", "us", "ms", "s")
#: the least int64 nanosecond value that is not NaT


def _unit_ns(unit: str) -> int:
    return int(np.timedelta64(1, unit).astype("timedelta64[ns]").astype(np.int64))


def _cast(model: Any, column: Column, dtype: Any) -> str:
    """The cast of ``column`` to its fit ``dtype`` (what ``X.astype`` does), or ExportError."""
    if column.kind == NUM:
        if isinstance(dtype, np.dtype) and dtype == np.float64:
            return KEEP
        if isinstance(dtype, np.dtype) and dtype == np.int64:
            return TO_INT64
        if isinstance(dtype, np.dtype) and dtype == np.bool_:
            return TO_BOOL
    elif column.kind == DT:
        if isinstance(dtype, np.dtype) and dtype.kind == "M":
            unit = np.datetime_data(dtype)[0]
            if unit in DATETIME_UNITS:
                return KEEP if unit == "ns" else FLOOR + unit
    else:
        if (isinstance(dtype, np.dtype) and dtype == np.object_) or isinstance(dtype, pd.StringDtype):
            return KEEP
        if isinstance(dtype, pd.CategoricalDtype):
            string_categories(model, column, list(dtype.categories))
            return TO_CATEGORY
    kind = {NUM: "numeric", DT: "datetime"}.get(column.kind, "categorical (string)")
    raise ExportError(
        f"{step_label(model)}: match_dtypes=True casts the {kind} column '{column.name}' to {dtype}, "
        "which is not exported (supported: float64, int64, bool for numeric columns; object, str, "
        "category with string categories for categorical ones; datetime64[ns / us / ms / s] for "
        "datetime ones)"
    )


@register_converter
class MatchVariablesConverter(FrameConverter):
    transformer = MatchVariables
    supports = (
        "missing_values raise / ignore, match_dtypes (float64, int64, bool, object, str, category, "
        "datetime64 ns / us / ms / s), "
        "fill_value / verbose (no effect in the graph: its inputs are the fitted columns)"
    )
    onnx_ops = frozenset(
        {
            "IsNaN",
            "IsInf",
            "Equal",
            "Or",
            "And",
            "Not",
            "Less",
            "GreaterOrEqual",
            "Floor",
            "Ceil",
            "Where",
            "Cast",
        }
        | {"LabelEncoder", "Mul", "Add", "Mod", "Sub"}
    )

    def casts(self, model: Any, columns: Sequence[Column]) -> dict[str, str]:
        if not model.match_dtypes:
            return {}
        by_name = {c.name: c for c in columns}
        return {c: _cast(model, by_name[c], dtype) for c, dtype in model.dtype_dict_.items()}

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        casts = self.casts(model, columns)
        if model.missing_values == "raise":
            written = [c.name for c in columns]
        else:
            written = [c.name for c in columns if casts.get(c.name, KEEP) != KEEP]
        return self.in_place(columns, written)

    def convert(self, ctx: StepContext, model: Any) -> None:
        assert ctx.frame is not None
        columns = ctx.frame.columns()
        casts = self.casts(model, columns)
        plan = self.plan(model, columns)
        for block, cols in enumerate(plan.writes):
            names = [c.name for c in cols]
            kind = cols[0].kind
            x = ctx.gather(names)
            if model.missing_values == "raise":
                ctx.refuse_if(
                    names, ctx.is_missing(x, kind), "missing value, the step does not accept missing values"
                )
            todo = [casts.get(c, KEEP) for c in names]
            out = x
            if TO_INT64 in todo:
                out = self._to_int64(ctx, names, x, out, [t == TO_INT64 for t in todo])
            if TO_BOOL in todo:
                nonzero = ctx.node("Not", [ctx.node("Equal", [x, ctx.const(0.0)])])  # NaN -> True
                as_bool = ctx.node("Cast", [nonzero], to=TensorProto.DOUBLE)
                out = ctx.node("Where", [ctx.const([[t == TO_BOOL for t in todo]], np.bool_), as_bool, out])
            if any(t.startswith(FLOOR) for t in todo):
                out = self._floor(
                    ctx, names, x, [t.removeprefix(FLOOR) if t.startswith(FLOOR) else "ns" for t in todo]
                )
            if TO_CATEGORY in todo:
                levels = [
                    {c: c for c in model.dtype_dict_[n].categories} if t == TO_CATEGORY else {}
                    for n, t in zip(names, todo, strict=True)
                ]
                kept = lookup(ctx, x, levels, MISSING, STR)  # outside the categories -> missing
                out = ctx.node("Where", [ctx.const([[t == TO_CATEGORY for t in todo]], np.bool_), kept, out])
            ctx.node("Identity", [out], ctx.y(block))

    @staticmethod
    def _floor(ctx: StepContext, names: list[str], x: str, units: list[str]) -> str:
        """``astype('datetime64[unit]')`` of int64 nanoseconds: floored to the unit (NaT
        stays NaT). A value whose floor falls before the first nanosecond datetime
        (1677-09-21T00:12:43.145224193) exists in the coarser unit only: refused."""
        steps = [_unit_ns(u) for u in units]
        lowest = [
            max(NS_MIN, -(-NS_MIN // step) * step) for step in steps
        ]  # the least x with floor >= NS_MIN
        nat = ctx.node("Equal", [x, ctx.const(NAT, np.int64)])
        ctx.refuse_if(
            names,
            ctx.node("And", [ctx.node("Less", [x, ctx.const([lowest], np.int64)]), ctx.node("Not", [nat])]),
            "datetime that match_dtypes=True floors to a coarser unit before 1677-09-21T00:12:43.145224193, "
            "outside the nanosecond range the graph holds datetimes in",
        )
        floored = ctx.node("Sub", [x, ctx.node("Mod", [x, ctx.const([steps], np.int64)], fmod=0)])
        return ctx.node("Where", [nat, x, floored])

    @staticmethod
    def _to_int64(ctx: StepContext, names: list[str], x: str, out: str, mask: list[bool]) -> str:
        """``astype('int64')``: NaN / inf raise; the rest is truncated toward zero; out of
        the int64 range numpy's x86-64 cast gives -2**63."""
        is_int = ctx.const([mask], np.bool_)
        bad = ctx.node("Or", [ctx.node("IsNaN", [x]), ctx.node("IsInf", [x])])
        ctx.refuse_if(
            names,
            ctx.node("And", [bad, is_int]),
            "missing or infinite value in a column that match_dtypes=True casts to int64 (pandas refuses)",
        )
        low = -(2.0**63)
        truncated = ctx.node(
            "Where", [ctx.node("Less", [x, ctx.const(0.0)]), ctx.node("Ceil", [x]), ctx.node("Floor", [x])]
        )
        outside = ctx.node(
            "Or",
            [
                ctx.node("GreaterOrEqual", [x, ctx.const(2.0**63)]),
                ctx.node("Less", [x, ctx.const(low)]),
            ],
        )
        as_int = ctx.node("Where", [outside, ctx.const(low), truncated])
        return ctx.node("Where", [is_int, as_int, out])


@register_converter
class MatchCategoriesConverter(FrameConverter):
    transformer = MatchCategories
    supports = "missing_values raise / ignore; categorical variables with string categories"
    onnx_ops = frozenset({"Equal", "LabelEncoder", "Mul", "Add"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        by_name = {c.name: c for c in columns}
        for var in model.variables_:
            string_categories(model, by_name[var], list(model.category_dict_[var]))
        return self.in_place(columns, list(model.variables_), STR)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        mappings = [{c: c for c in model.category_dict_[v]} for v in variables]
        out = lookup(ctx, x, mappings, MISSING, STR)
        if model.missing_values == "raise":
            ctx.refuse_if(
                variables,
                ctx.node("Equal", [out, ctx.const([MISSING], dtype=object)]),
                "missing value or category not seen in fit (missing_values='raise' refuses the "
                "missing values the step would introduce)",
            )
        ctx.node("Identity", [out], ctx.y())
