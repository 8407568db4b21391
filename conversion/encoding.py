"""Converters for feature-engine's categorical encoders (``feature_engine.encoding``).

All encoders of a step share one lookup (:func:`lookup`): a ``LabelEncoder`` turns
every string into its index in the step's vocabulary (the union of the categories of
all its columns), and a ``Gather`` reads the result for (category, column) from a
constant table. Four nodes for any number of columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from feature_engine.encoding import OrdinalEncoder, RareLabelEncoder

from ._frame import (
    MISSING,
    NUM,
    STR,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    frame_converter,
    step_label,
)


def string_categories(model: Any, column: Column, categories: Sequence[Any]) -> list[str]:
    """The fitted categories of a categorical column, checked to be strings."""
    if column.kind != STR:
        raise ExportError(
            f"{step_label(model)}: column '{column.name}' is numeric; encoders are exported "
            "for categorical (string) columns"
        )
    bad = [c for c in categories if not isinstance(c, str)]
    if bad:
        raise ExportError(
            f"{step_label(model)}: column '{column.name}' has non-string categories {bad[:5]}; "
            "only string categories are exported"
        )
    if MISSING in categories:
        raise ExportError(
            f"{step_label(model)}: column '{column.name}' has a category equal to the "
            f"reserved missing-value marker {MISSING!r}"
        )
    return list(categories)


def lookup(ctx: StepContext, x: str, mappings: Sequence[dict[str, Any]], default: Any, kind: str) -> str:
    """``out[:, j] = mappings[j].get(x[:, j], default)`` for a string block ``x``."""
    vocabulary = sorted({key for mapping in mappings for key in mapping})
    index = {key: i for i, key in enumerate(vocabulary)}
    width = len(mappings)
    unknown = len(vocabulary)  # the row of the table for strings not in the vocabulary
    table: list[Any] = [default] * ((unknown + 1) * width)
    for j, mapping in enumerate(mappings):
        for key, value in mapping.items():
            table[index[key] * width + j] = value
    ids = ctx.node(
        "LabelEncoder",
        [x],
        domain="ai.onnx.ml",
        keys_strings=vocabulary or [MISSING],
        values_int64s=list(range(len(vocabulary))) or [unknown],
        default_int64=unknown,
    )
    flat = ctx.node(
        "Add",
        [ctx.node("Mul", [ids, ctx.const(width, np.int64)]), ctx.const([list(range(width))], np.int64)],
    )
    data = ctx.const(table) if kind == NUM else ctx.const(table, dtype=object)
    return ctx.node("Gather", [data, flat], axis=0)


def refuse_missing(ctx: StepContext, variables: Sequence[str], x: str) -> None:
    """feature-engine's ``missing_values='raise'``: refuse missing values in ``variables``."""
    ctx.refuse_if(variables, ctx.is_missing(x, STR), "missing value, the step does not accept missing values")


def frequent_labels(model: Any, var: str) -> list[Any]:
    """The labels a fitted ``RareLabelEncoder`` keeps in ``var``, missing values left out:
    fit lists them (NaN / None) when the column has at most ``n_categories`` distinct
    values, and with ``missing_values='ignore'`` transform keeps missing values anyway."""
    return [label for label in model.encoder_dict_[var] if isinstance(label, str) or not pd.isna(label)]


@frame_converter
class RareLabelEncoderConverter(FrameConverter):
    transformer = RareLabelEncoder
    supports = "tol, n_categories, max_n_categories, replace_with (string), missing_values raise / ignore; categorical variables"
    onnx_ops = frozenset({"Equal", "LabelEncoder", "Mul", "Add"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        by_name = {c.name: c for c in columns}
        for var in model.variables_:
            string_categories(model, by_name[var], frequent_labels(model, var))
        if not isinstance(model.replace_with, str):
            raise ExportError(f"{step_label(model)}: replace_with={model.replace_with!r} is not a string")
        if model.replace_with == MISSING:
            raise ExportError(
                f"{step_label(model)}: replace_with={model.replace_with!r} is the reserved "
                "missing-value marker, which the graph reads as missing"
            )
        return self.in_place(columns, list(model.variables_), STR)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = list(model.variables_)
        x = ctx.gather(variables)
        if model.missing_values == "raise":
            refuse_missing(ctx, variables, x)
        mappings = []
        for var in variables:
            keep = {label: label for label in frequent_labels(model, var)}
            keep[MISSING] = MISSING  # missing values are left as they are ('ignore')
            mappings.append(keep)
        ctx.node("Identity", [lookup(ctx, x, mappings, model.replace_with, STR)], ctx.y())


@frame_converter
class OrdinalEncoderConverter(FrameConverter):
    transformer = OrdinalEncoder
    supports = "encoding_method ordered / arbitrary, unseen ignore / raise / encode, missing_values raise / ignore; categorical variables"
    onnx_ops = frozenset({"Equal", "LabelEncoder", "Mul", "Add", "IsNaN", "Where"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        by_name = {c.name: c for c in columns}
        for var in model.variables_:
            string_categories(model, by_name[var], list(model.encoder_dict_[var]))
        return self.in_place(columns, list(model.variables_), NUM)

    def convert(self, ctx: StepContext, model: Any) -> None:
        convert_category_mapping(ctx, model, {v: model.encoder_dict_[v] for v in model.variables_})


def convert_category_mapping(ctx: StepContext, model: Any, mappings: dict[str, dict[str, Any]]) -> None:
    """The shared ``transform`` of feature-engine's category -> number encoders.

    Mirrors ``CategoricalMethodsMixin.transform``: ``missing_values='raise'`` refuses
    missing values; categories absent from the mapping (missing ones included) give
    NaN, which ``unseen='encode'`` fills with the encoder's unseen value and
    ``unseen='raise'`` refuses.
    """
    variables = list(mappings)
    x = ctx.gather(variables)
    if model.missing_values == "raise":
        refuse_missing(ctx, variables, x)
    default = float(model._unseen) if model.unseen == "encode" else float("nan")
    numeric = [{str(k): float(v) for k, v in mappings[var].items()} for var in variables]
    encoded = lookup(ctx, x, numeric, default, NUM)
    if model.unseen == "raise":
        ctx.refuse_if(
            variables,
            ctx.node("IsNaN", [encoded]),
            "category not seen in training (the step was fitted with unseen='raise')",
        )
    ctx.node("Identity", [encoded], ctx.y())
