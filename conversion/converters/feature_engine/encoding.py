"""Converters for feature-engine's categorical encoders (``feature_engine.encoding``).

All encoders of a step share one lookup per block kind. A string block uses
:func:`lookup`: a ``LabelEncoder`` turns every string into its index in the step's
vocabulary (the union of the categories of all its columns), and a ``Gather`` reads
the result for (category, column) from a constant table. A numeric block (a numeric
column with ``ignore_format=True``, or the object column of numbers a discretiser makes
with ``return_object=True``) uses :func:`numeric_ids`: the values are compared with
each column's keys in float64 (``Equal`` against a [columns, keys] table, exact: no
float32 ``LabelEncoder`` key), which gives the index of the matching key, then the same
``Gather``. A handful of nodes for any number of columns.

``StringSimilarityEncoder`` is refused at export (:mod:`.refused`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from feature_engine.encoding import (
    CountFrequencyEncoder,
    DecisionTreeEncoder,
    MeanEncoder,
    OneHotEncoder,
    OrdinalEncoder,
    RareLabelEncoder,
    WoEEncoder,
)
from onnx import TensorProto

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
    gather_table,
    lookup,
    register_converter,
    step_label,
)

#: integers up to this magnitude are exactly float64 (the graph's numeric type)
EXACT_INT = 2**53


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


def is_number(value: Any) -> bool:
    """An int / float (numpy ones included; bools count as 0 / 1, as pandas compares them)."""
    return isinstance(value, (int, float, np.integer, np.floating, np.bool_))


def numeric_categories(model: Any, column: Column, categories: Sequence[Any]) -> list[float]:
    """The fitted categories of a numeric column as float64 values, checked to be numbers
    that float64 holds exactly (the graph compares float64 values)."""
    bad = [c for c in categories if not is_number(c)]
    if bad:
        raise ExportError(
            f"{step_label(model)}: numeric column '{column.name}' has non-numeric categories "
            f"{bad[:5]}; only numeric categories are exported for numeric columns"
        )
    values = []
    for c in categories:
        if (
            isinstance(c, (int, np.integer))
            and not isinstance(c, (bool, np.bool_))
            and abs(int(c)) > EXACT_INT
        ):
            raise ExportError(
                f"{step_label(model)}: numeric column '{column.name}' has the category {c!r}, "
                "an integer that float64 does not hold exactly"
            )
        value = float(c)
        if math.isnan(value):
            raise ExportError(
                f"{step_label(model)}: numeric column '{column.name}' has NaN among its fitted categories"
            )
        values.append(value)
    return values


def categories_of(model: Any, column: Column, categories: Sequence[Any]) -> list[Any]:
    """:func:`string_categories` or :func:`numeric_categories`, after the column's kind."""
    if column.kind == STR:
        return string_categories(model, column, categories)
    if column.kind != NUM:
        raise ExportError(
            f"{step_label(model)}: column '{column.name}' is a {column.kind} column; encoders are "
            "exported for categorical (string) and numeric columns"
        )
    return numeric_categories(model, column, categories)


def numeric_ids(ctx: StepContext, x: str, keys: Sequence[Sequence[float]]) -> tuple[str, int]:
    """For a float64 block ``x`` [N, w]: ``ids[n, j]`` = the index of ``x[n, j]`` in
    ``keys[j]`` (float64 equality: -0.0 equals 0.0, NaN equals nothing), or ``m`` (the
    length of the longest key list) when it is none of them. Returns (ids, m).

    ``Equal`` of ``x`` [N, w, 1] with the NaN-padded key table [w, m], as one byte per
    comparison (``ArgMax`` of the first match, ``ReduceMax`` for "any match").
    """
    m = max([1, *(len(k) for k in keys)])
    table = [[*k, *([math.nan] * (m - len(k)))] for k in keys]
    matches = ctx.node("Equal", [ctx.node("Unsqueeze", [x, ctx.const([2], np.int64)]), ctx.const(table)])
    flags = ctx.node("Cast", [matches], to=TensorProto.UINT8)
    first = ctx.node("ArgMax", [flags], axis=2, keepdims=0)
    found = ctx.node(
        "Cast",
        [ctx.node("ReduceMax", [flags, ctx.const([2], np.int64)], keepdims=0)],
        to=TensorProto.BOOL,
    )
    return ctx.node("Where", [found, first, ctx.const(m, np.int64)]), m


def numeric_lookup(
    ctx: StepContext, x: str, mappings: Sequence[Sequence[tuple[float, Any]]], default: Any, kind: str
) -> str:
    """``out[:, j]`` = the value paired with ``x[:, j]`` in ``mappings[j]`` (float64 keys,
    distinct within a column), ``default`` when none, for a float64 block ``x``."""
    ids, m = numeric_ids(ctx, x, [[key for key, _ in mapping] for mapping in mappings])
    rows: list[list[Any]] = [[default] * len(mappings) for _ in range(m + 1)]
    for j, mapping in enumerate(mappings):
        for i, (_, value) in enumerate(mapping):
            rows[i][j] = value
    return gather_table(ctx, ids, rows, kind)


def distinct_numbers(keys: Sequence[float]) -> list[float]:
    """``keys`` without repeats under float64 equality (0.0 and -0.0 are one key)."""
    out: list[float] = []
    for k in keys:
        if all(k != o for o in out):
            out.append(k)
    return out


def refuse_missing(ctx: StepContext, variables: Sequence[str], x: str, kind: str = STR) -> None:
    """feature-engine's ``missing_values='raise'``: refuse missing values in ``variables``."""
    ctx.refuse_if(
        variables, ctx.is_missing(x, kind), "missing value, the step does not accept missing values"
    )


def frequent_labels(model: Any, var: str) -> list[Any]:
    """The labels a fitted ``RareLabelEncoder`` keeps in ``var``, missing values left out:
    fit lists them (NaN / None) when the column has at most ``n_categories`` distinct
    values, and with ``missing_values='ignore'`` transform keeps missing values anyway."""
    return [label for label in model.encoder_dict_[var] if isinstance(label, str) or not pd.isna(label)]


def _kinds(columns: Sequence[Column]) -> dict[str, str]:
    return {c.name: c.kind for c in columns}


# ------------------------------------------------------------------------ RareLabelEncoder


@register_converter
class RareLabelEncoderConverter(FrameConverter):
    transformer = RareLabelEncoder
    supports = (
        "tol, n_categories, max_n_categories, missing_values raise / ignore; categorical variables "
        "(replace_with a string) and numeric variables with ignore_format=True (replace_with a number)"
    )
    onnx_ops = frozenset(
        {
            "Equal",
            "LabelEncoder",
            "Mul",
            "Add",
            "IsNaN",
            "Unsqueeze",
            "Cast",
            "ArgMax",
            "ReduceMax",
            "Less",
            "Or",
            "Where",
        }
    )

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        by_name = {c.name: c for c in columns}
        replace_with = model.replace_with
        for var in model.variables_:
            column = by_name[var]
            if column.kind == STR and not isinstance(replace_with, str):
                raise ExportError(
                    f"{step_label(model)}: replace_with={replace_with!r} is not a string; in the "
                    f"categorical column '{var}' it would mix strings and numbers"
                )
            if column.kind == NUM and (
                not is_number(replace_with) or isinstance(replace_with, (bool, np.bool_))
            ):
                raise ExportError(
                    f"{step_label(model)}: column '{var}' is numeric and replace_with={replace_with!r} is "
                    "not a number: feature-engine turns the column into Python objects mixing numbers "
                    "and strings, which is not exported (give a numeric replace_with)"
                )
            categories_of(model, column, frequent_labels(model, var))
        if isinstance(replace_with, str) and replace_with == MISSING:
            raise ExportError(
                f"{step_label(model)}: replace_with={replace_with!r} is the reserved "
                "missing-value marker, which the graph reads as missing"
            )
        return self.in_place(columns, list(model.variables_))

    def convert(self, ctx: StepContext, model: Any) -> None:
        kinds = {v: ctx.kind(v) for v in model.variables_}
        for block, (kind, variables) in enumerate(by_kind(kinds, model.variables_)):
            x = ctx.gather(variables)
            if model.missing_values == "raise":
                refuse_missing(ctx, variables, x, kind)
            if kind == STR:
                mappings = []
                for var in variables:
                    keep = {label: label for label in frequent_labels(model, var)}
                    keep[MISSING] = MISSING  # missing values are left as they are ('ignore')
                    mappings.append(keep)
                ctx.node("Identity", [lookup(ctx, x, mappings, model.replace_with, STR)], ctx.y(block))
                continue
            keys = [
                distinct_numbers(numeric_categories(model, Column(v, NUM), frequent_labels(model, v)))
                for v in variables
            ]
            ids, m = numeric_ids(ctx, x, keys)
            # isin(frequent + [nan]): a kept value, or a missing one, stays as it is
            keep = ctx.node("Or", [ctx.node("Less", [ids, ctx.const(m, np.int64)]), ctx.node("IsNaN", [x])])
            ctx.node("Where", [keep, x, ctx.const(float(model.replace_with))], ctx.y(block))


# ------------------------------------------------------------ category -> number encoders


def mapping_plan(model: Any, columns: Sequence[Column], mappings: dict[str, dict[Any, Any]]) -> Plan:
    """Check a category -> number mapping per variable; the variables become numeric,
    one output block per kind of input column (numeric first)."""
    by_name = {c.name: c for c in columns}
    for var, mapping in mappings.items():
        categories_of(model, by_name[var], list(mapping))
        bad = [v for v in mapping.values() if not is_number(v)]
        if bad:
            raise ExportError(
                f"{step_label(model)}: column '{var}' would be encoded with non-numeric values {bad[:5]}"
            )
    unseen_value(model)
    kinds = _kinds(columns)
    writes = [[Column(v, NUM) for v in vs] for _, vs in by_kind(kinds, list(mappings))]
    return Plan(list(mappings), writes, [c.name for c in columns])


def unseen_value(model: Any) -> float:
    """The number ``unseen='encode'`` gives unseen categories (NaN for other ``unseen``)."""
    if getattr(model, "unseen", "ignore") != "encode":
        return math.nan
    value = getattr(model, "_unseen", None)
    if not is_number(value) or isinstance(value, (bool, np.bool_)):
        raise ExportError(f"{step_label(model)}: unseen='encode' with the fill value {value!r}, not a number")
    return float(value)


def convert_category_mapping(
    ctx: StepContext,
    model: Any,
    mappings: dict[str, dict[Any, Any]],
    missing_values: str | None = None,
) -> None:
    """The shared ``transform`` of feature-engine's category -> number encoders.

    Mirrors ``CategoricalMethodsMixin.transform``: ``missing_values='raise'`` refuses
    missing values; categories absent from the mapping (missing ones included) give
    NaN, which ``unseen='encode'`` fills with the encoder's unseen value (as it fills a
    NaN the mapping itself gives) and ``unseen='raise'`` refuses.
    ``missing_values``: the encoder's policy (default ``model.missing_values``; the
    encoders without that parameter refuse missing values: pass "raise").
    """
    missing_values = missing_values or model.missing_values
    unseen = getattr(model, "unseen", "ignore")
    default = unseen_value(model)

    def number(v: Any) -> float:
        value = float(v)
        return default if unseen == "encode" and math.isnan(value) else value

    kinds = {v: ctx.kind(v) for v in mappings}
    for block, (kind, variables) in enumerate(by_kind(kinds, list(mappings))):
        x = ctx.gather(variables)
        if missing_values == "raise":
            refuse_missing(ctx, variables, x, kind)
        if kind == STR:
            table = [{str(k): number(v) for k, v in mappings[var].items()} for var in variables]
            encoded = lookup(ctx, x, table, default, NUM)
        else:
            pairs = [
                list(
                    zip(
                        numeric_categories(model, Column(var, NUM), list(mappings[var])),
                        [number(v) for v in mappings[var].values()],
                        strict=True,
                    )
                )
                for var in variables
            ]
            encoded = numeric_lookup(ctx, x, pairs, default, NUM)
        if unseen == "raise":
            ctx.refuse_if(
                variables,
                ctx.node("IsNaN", [encoded]),
                "category not seen in training, or encoded as NaN (the step was fitted with unseen='raise')",
            )
        ctx.node("Identity", [encoded], ctx.y(block))


class _MappingEncoder(FrameConverter):
    """Encoders whose fitted ``encoder_dict_`` maps each category to a number."""

    onnx_ops = frozenset(
        {"Equal", "LabelEncoder", "Mul", "Add", "IsNaN", "Unsqueeze", "Cast", "ArgMax", "ReduceMax", "Where"}
    )
    #: the encoder's missing-value policy when it has no ``missing_values`` parameter
    missing_values: str | None = None

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        return mapping_plan(model, columns, {v: model.encoder_dict_[v] for v in model.variables_})

    def convert(self, ctx: StepContext, model: Any) -> None:
        mappings = {v: model.encoder_dict_[v] for v in model.variables_}
        convert_category_mapping(ctx, model, mappings, self.missing_values)


@register_converter
class OrdinalEncoderConverter(_MappingEncoder):
    transformer = OrdinalEncoder
    supports = (
        "encoding_method ordered / arbitrary, unseen ignore / raise / encode, missing_values raise / ignore; "
        "categorical variables, numeric variables (ignore_format=True)"
    )


@register_converter
class CountFrequencyEncoderConverter(_MappingEncoder):
    transformer = CountFrequencyEncoder
    supports = (
        "encoding_method count / frequency, unseen ignore / raise / encode, missing_values raise / ignore; "
        "categorical variables, numeric variables (ignore_format=True)"
    )


@register_converter
class MeanEncoderConverter(_MappingEncoder):
    transformer = MeanEncoder
    supports = (
        "smoothing (a number or 'auto'), unseen ignore / raise / encode, missing_values raise / ignore; "
        "categorical variables, numeric variables (ignore_format=True)"
    )


@register_converter
class WoEEncoderConverter(_MappingEncoder):
    transformer = WoEEncoder
    supports = (
        "unseen ignore / raise, fill_value (None or a number; infinite / NaN WoE values included); "
        "categorical variables, numeric variables (ignore_format=True); missing values refused"
    )
    missing_values = "raise"


@register_converter
class DecisionTreeEncoderConverter(_MappingEncoder):
    transformer = DecisionTreeEncoder
    supports = (
        "regression True / False, encoding_method ordered / arbitrary, precision, cv / scoring / "
        "param_grid (the fitted encoder_dict_), unseen ignore / raise / encode with fill_value; "
        "categorical variables, numeric variables (ignore_format=True); missing values refused"
    )
    missing_values = "raise"


# -------------------------------------------------------------------------- OneHotEncoder


def dummy_names(model: Any) -> list[tuple[str, Any, str]]:
    """(variable, category, dummy column name) of a fitted ``OneHotEncoder``, in
    feature-engine's order."""
    return [(v, c, f"{v}_{c}") for v in model.variables_ for c in model.encoder_dict_[v]]


@register_converter
class OneHotEncoderConverter(FrameConverter):
    transformer = OneHotEncoder
    supports = (
        "top_categories, drop_last, drop_last_binary; categorical variables, numeric variables "
        "(ignore_format=True); missing values refused"
    )
    onnx_ops = frozenset({"Equal", "Cast", "IsNaN"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        by_name = {c.name: c for c in columns}
        for var in model.variables_:
            categories_of(model, by_name[var], list(model.encoder_dict_[var]))
        variables = set(model.variables_)
        kept = [c.name for c in columns if c.name not in variables]
        names = [name for _, _, name in dummy_names(model)]
        clash = sorted({n for n in names if n in by_name or names.count(n) > 1})
        if clash:
            raise ExportError(
                f"{step_label(model)}: dummy columns {clash} collide with other columns or with "
                "each other (feature-engine would give duplicated or lost columns)"
            )
        kinds = _kinds(columns)
        writes = [
            [Column(name, NUM) for v, _, name in dummy_names(model) if v in set(vs)]
            for _, vs in by_kind(kinds, list(model.variables_))
        ]
        return Plan(list(model.variables_), writes, kept + names)

    def convert(self, ctx: StepContext, model: Any) -> None:
        kinds = {v: ctx.kind(v) for v in model.variables_}
        block = 0  # output blocks: one per kind that has dummies (a plan drops empty ones)
        for kind, variables in by_kind(kinds, model.variables_):
            x = ctx.gather(variables)
            refuse_missing(ctx, variables, x, kind)
            dummies = [(v, c) for v, c, _ in dummy_names(model) if v in set(variables)]
            if not dummies:
                continue
            if kind == STR:
                categories: list[Any] = [str(c) for _, c in dummies]
            else:
                categories = [float(c) for _, c in dummies]
            # one column of x per dummy, compared with the dummy's category
            spread = ctx.node(
                "Gather", [x, ctx.const([variables.index(v) for v, _ in dummies], np.int64)], axis=1
            )
            equal = ctx.node("Equal", [spread, ctx.row(categories, kind)])
            ctx.node("Cast", [equal], ctx.y(block), to=TensorProto.DOUBLE)
            block += 1
