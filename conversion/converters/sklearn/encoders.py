"""Converters for scikit-learn's encoders: ``OneHotEncoder``, ``OrdinalEncoder`` and
``TargetEncoder``, on text and numeric columns.

Each maps every input column separately: the output columns of column ``j`` depend on
its value only, through a finite table -- one row per fitted category, one for a missing
value, one for any other (unknown) value. The table is *read from the fitted encoder*:
at export, :func:`category_table` calls its ``transform`` on one row per category (the
other columns held at a known category), on a missing value and on an unknown value, so
every option (``drop``, ``min_frequency`` / ``max_categories`` and their infrequent
column, ``handle_unknown``, ``unknown_value``, ``encoded_missing_value``, multiclass
target encodings) is exactly what scikit-learn computes. Where ``transform`` raises (an
unknown category with ``handle_unknown="error"``, a missing value that is no category),
the graph refuses the row.

In the graph, text columns: one ``LabelEncoder`` (every category, the missing marker,
anything else) and one ``Gather`` from the table give every output column, each a
function of one input column, so the fusion pass turns the whole text part into its
lookups. Numeric columns: ``Equal`` of each value with its column's categories gives a
one-hot matrix of hits, whose product with the table (``MatMul``: one 1.0 per row and
column group, so the sum is exact) gives the outputs of known categories; ``Where`` puts
the missing and unknown rows (which may be NaN, as ``encoded_missing_value`` is by
default).

Missing text is NaN in predictlib's inputs (pandas' ``str`` dtype); a ``None`` category
(fitted on an object column holding None) is never matched, as scikit-learn would not
match a NaN with it. Numbers: values equal to a category (``-0.0`` is ``0.0``) are that
category; +-inf is refused (``ensure_all_finite="allow-nan"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from onnx import TensorProto
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

from ...core.frame import MISSING, NUM, STR, Column, StepContext, by_kind, gather_table, register_converter
from ...core.maths import CHECK_OPS
from ..feature_engine.creation import columns_of
from .base import EXACT_INT, SklearnConverter, feature_names_out, is_nan, refuse

#: the text an unknown-value probe uses (any text that is no category behaves alike)
_UNSEEN = "__predictlib_unseen__"


@dataclass
class CategoryTable:
    """How an encoder maps each input column to its output columns (see the module docstring)."""

    #: per input column: its categories (texts or numbers), the missing category left out
    values: list[list[Any]]
    #: per input column: ``[len(values[j]), widths[j]]`` outputs of the categories
    known: list[np.ndarray]
    #: per input column: the outputs of a missing value (None: transform raises)
    missing: list[np.ndarray | None]
    #: per input column: the outputs of any other value (None: transform raises)
    unknown: list[np.ndarray | None]
    widths: list[int]


def _is_missing_category(value: Any) -> bool:
    return value is None or value is pd.NA or is_nan(value)


def _categories(model: Any, inputs: Sequence[Column]) -> list[list[Any]]:
    """The fitted categories of each input column the graph can meet (missing ones left out)."""
    found = []
    for column, cats in zip(inputs, model.categories_, strict=True):
        values = [c for c in list(cats) if not _is_missing_category(c)]
        if column.kind == STR:
            bad = [c for c in values if not isinstance(c, str)]
            if bad:
                raise refuse(model, f"text column '{column.name}' has non-text categories {bad[:5]}")
            if MISSING in values:
                raise refuse(model, f"column '{column.name}' has the reserved category {MISSING!r}")
        else:
            bad = [
                c
                for c in values
                if isinstance(c, (str, bool, np.bool_)) or not isinstance(c, (int, float, np.number))
            ]
            if bad:
                raise refuse(model, f"numeric column '{column.name}' has non-numeric categories {bad[:5]}")
            big = [c for c in values if isinstance(c, (int, np.integer)) and abs(int(c)) > EXACT_INT]
            if big:
                raise refuse(model, f"column '{column.name}' has integer categories {big[:5]} beyond float64")
            values = [float(c) for c in values]
        found.append(values)
    return found


def _unknown_value(column: Column, values: Sequence[Any]) -> Any:
    if column.kind == STR:
        text = _UNSEEN
        while text in values:
            text += "_"
        return text
    number = 0.123456789
    while number in values:
        number += 1.0
    return number


def _probe_frame(model: Any, inputs: Sequence[Column], rows: list[list[Any]]) -> Any:
    """``rows`` in the container the encoder was fitted on: a DataFrame (text columns as
    object, numbers as float64, as predictlib's verification builds them) or an array."""
    if getattr(model, "feature_names_in_", None) is not None:
        data = {}
        for j, column in enumerate(inputs):
            cells = [row[j] for row in rows]
            data[str(model.feature_names_in_[j])] = pd.Series(
                cells, dtype=object if column.kind == STR else np.float64
            )
        return pd.DataFrame(data)
    if any(c.kind == STR for c in inputs):
        return np.array(rows, dtype=object).reshape(len(rows), len(inputs))
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(inputs))


def _transform(model: Any, frame: Any) -> np.ndarray | None:
    """The encoder's output on ``frame`` as a float64 array; None when it raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.transform(frame)
    except (ValueError, TypeError):
        return None
    if hasattr(out, "toarray"):
        out = out.toarray()
    return np.asarray(out, dtype=np.float64)


def _probe(model: Any, inputs: Sequence[Column], rows: list[list[Any]]) -> list[np.ndarray | None]:
    """The encoder's output for each of ``rows``, None for the rows on which its
    ``transform`` raises (rows are transformed together; a batch that raises is halved)."""
    if not rows:
        return []
    out = _transform(model, _probe_frame(model, inputs, rows))
    if out is not None:
        return list(out)
    if len(rows) == 1:
        return [None]
    mid = len(rows) // 2
    return _probe(model, inputs, rows[:mid]) + _probe(model, inputs, rows[mid:])


def category_table(
    model: Any, inputs: Sequence[Column], widths: Sequence[int], raises: Sequence[bool]
) -> CategoryTable:
    """Read the encoder's table by transforming one row per case (the module docstring).

    ``raises[j]``: whether an unknown value of column ``j`` is expected to make ``transform``
    raise (``handle_unknown="error"``): those rows are not probed together with the others
    (one of them is, to check)."""
    values = _categories(model, inputs)
    base = [v[0] if v else np.nan for v in values]
    offsets = np.cumsum([0, *widths])

    def row(j: int, value: Any) -> list[Any]:
        return [value if i == j else b for i, b in enumerate(base)]

    known_rows = [row(j, value) for j, cats in enumerate(values) for value in cats]
    found = _probe(model, inputs, known_rows)
    if any(f is None for f in found):
        raise refuse(model, "its transform raises on the fitted categories; not exported")
    known: list[np.ndarray] = []
    start = 0
    for j, cats in enumerate(values):
        block = np.array([f[offsets[j] : offsets[j + 1]] for f in found[start : start + len(cats)]])
        known.append(block.reshape(len(cats), widths[j]))
        start += len(cats)
    nan_known = [any(_is_missing_category(c) for c in cats) for cats in model.categories_]
    special: dict[str, list[np.ndarray | None]] = {}
    for case in ("missing", "unknown"):
        cases = [
            row(j, np.nan if case == "missing" else _unknown_value(column, values[j]))
            for j, column in enumerate(inputs)
        ]
        expect = [raises[j] and not (case == "missing" and nan_known[j]) for j in range(len(inputs))]
        probed = [j for j in range(len(inputs)) if not expect[j]]
        skipped = [j for j in range(len(inputs)) if expect[j]]
        results: list[np.ndarray | None] = [None] * len(inputs)
        for j, got in zip(probed, _probe(model, inputs, [cases[j] for j in probed]), strict=True):
            results[j] = got
        if skipped and _probe(model, inputs, [cases[skipped[0]]])[0] is not None:
            for j, got in zip(skipped, _probe(model, inputs, [cases[j] for j in skipped]), strict=True):
                results[j] = got
        special[case] = [None if r is None else r[offsets[j] : offsets[j + 1]] for j, r in enumerate(results)]
    return CategoryTable(values, known, special["missing"], special["unknown"], list(widths))


def _reason(model: Any, case: str) -> str:
    what = type(model).__name__
    if case == "unknown":
        return f"category not seen in training ({what} with handle_unknown={getattr(model, 'handle_unknown', 'error')!r})"
    return f"missing value, which {what} did not see in training (it is no category)"


def _subtable(table: CategoryTable, features: Sequence[int]) -> CategoryTable:
    return CategoryTable(
        [table.values[j] for j in features],
        [table.known[j] for j in features],
        [table.missing[j] for j in features],
        [table.unknown[j] for j in features],
        [table.widths[j] for j in features],
    )


def emit_table(ctx: StepContext, model: Any, inputs: Sequence[Column], table: CategoryTable) -> str:
    """The encoder's outputs (``[N, sum(widths)]`` float64) from ``table``; refusals where
    ``transform`` raises. Text columns through one lookup (every output column a function
    of one input column: the fusion makes the whole text part a table lookup), numeric
    ones through their one-hot hits."""
    offsets = np.cumsum([0, *table.widths])
    parts: list[str] = []
    order: list[int] = []  # the output column of each column of the stacked parts
    for kind, emit in ((NUM, _by_hits), (STR, _by_lookup)):
        features = [j for j, c in enumerate(inputs) if c.kind == kind]
        if features:
            parts.append(emit(ctx, model, [inputs[j] for j in features], _subtable(table, features)))
            order.extend(o for j in features for o in range(offsets[j], offsets[j + 1]))
    out = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, axis=1)
    if order != list(range(int(offsets[-1]))):
        out = columns_of(ctx, out, [order.index(o) for o in range(int(offsets[-1]))])
    return out


def _by_lookup(ctx: StepContext, model: Any, inputs: Sequence[Column], table: CategoryTable) -> str:
    """Text columns: each output column's value for every text of the vocabulary (the
    categories and the missing marker), the unknown value for any other text, in one
    ``LabelEncoder`` + table ``Gather``; the refusals from a lookup of codes (1: unknown,
    2: missing, where ``transform`` raises)."""
    names = [c.name for c in inputs]
    x = ctx.gather(names)
    vocabulary = sorted({MISSING, *(c for cats in table.values for c in cats)})
    offsets = np.cumsum([0, *table.widths])
    rows = np.zeros((len(vocabulary) + 1, int(offsets[-1])))
    codes = np.zeros((len(vocabulary) + 1, len(inputs)))
    for j, cats in enumerate(table.values):
        block = slice(int(offsets[j]), int(offsets[j + 1]))
        known = {c: k for k, c in enumerate(cats)}
        for r, text in enumerate([*vocabulary, None]):  # None: any other text
            if text in known:
                rows[r, block] = table.known[j][known[text]]
                continue
            outcome, code = (table.missing[j], 2) if text == MISSING else (table.unknown[j], 1)
            if outcome is None:
                codes[r, j] = code
            else:
                rows[r, block] = outcome
    expand = [j for j in range(len(inputs)) for _ in range(table.widths[j])]
    out = lookup_ids(ctx, columns_of(ctx, x, expand), vocabulary, rows)
    if codes.any():
        flags = lookup_ids(ctx, x, vocabulary, codes)
        for code, case in ((1, "unknown"), (2, "missing")):
            refused = [j for j in range(len(inputs)) if (codes[:, j] == code).any()]
            if refused:
                hit = ctx.node("Equal", [columns_of(ctx, flags, refused), ctx.const(float(code))])
                ctx.refuse_if([names[j] for j in refused], hit, _reason(model, case))
    return out


def lookup_ids(ctx: StepContext, x: str, vocabulary: Sequence[str], rows: np.ndarray) -> str:
    """``rows[index of x[n, j] in vocabulary, j]`` (the last row for any other text)."""
    ids = ctx.node(
        "LabelEncoder",
        [x],
        domain="ai.onnx.ml",
        keys_strings=list(vocabulary),
        values_int64s=list(range(len(vocabulary))),
        default_int64=len(vocabulary),
    )
    return gather_table(ctx, ids, rows.tolist(), NUM)


def _by_hits(ctx: StepContext, model: Any, inputs: Sequence[Column], table: CategoryTable) -> str:
    """Numeric columns: ``Equal`` with the categories, the one-hot hits @ the table."""
    names = [c.name for c in inputs]
    kinds = {c.name: c.kind for c in inputs}
    offsets = np.cumsum([0, *table.widths])
    n_out = int(offsets[-1])
    hit_parts: list[str] = []
    missing_parts: list[str] = []
    order: list[int] = []  # the input column of each column of the stacked hits
    feature_order: list[int] = []  # the input column of each column of the stacked missing masks
    for kind, group in by_kind(kinds, names):
        x = ctx.gather(group)
        idx = [names.index(v) for v in group]
        which = [k for k, j in enumerate(idx) for _ in table.values[j]]
        cats = [c for j in idx for c in table.values[j]]
        if cats:
            hits = ctx.node("Equal", [columns_of(ctx, x, which), ctx.row(cats, kind)])
            hit_parts.append(ctx.node("Cast", [hits], to=TensorProto.DOUBLE))
            order.extend(j for j in idx for _ in table.values[j])
        missing_parts.append(ctx.is_missing(x, kind))
        feature_order.extend(idx)
    missing = missing_parts[0] if len(missing_parts) == 1 else ctx.node("Concat", missing_parts, axis=1)
    if feature_order != list(range(len(names))):
        missing = columns_of(ctx, missing, [feature_order.index(j) for j in range(len(names))])
    expand = [j for j in range(len(names)) for _ in range(table.widths[j])]
    if hit_parts:
        # the categories' outputs: one-hot hits @ table (one 1.0 per column group: exact)
        hits = hit_parts[0] if len(hit_parts) == 1 else ctx.node("Concat", hit_parts, axis=1)
        weights = np.zeros((len(order), n_out))
        owner = np.zeros((len(order), len(names)))
        overrides: list[tuple[int, int, float]] = []
        for r, j in enumerate(order):
            owner[r, j] = 1.0
            k = r - order.index(j)
            for o in range(table.widths[j]):
                value = float(table.known[j][k, o])
                if np.isfinite(value):
                    weights[r, offsets[j] + o] = value
                else:  # 0 * inf in the product would give NaN elsewhere
                    overrides.append((r, int(offsets[j] + o), value))
        out = ctx.node("MatMul", [hits, ctx.const(weights)])
        found = ctx.node("Greater", [ctx.node("MatMul", [hits, ctx.const(owner)]), ctx.const(0.0)])
        for r, o, value in overrides:
            hit = ctx.node("Cast", [columns_of(ctx, hits, [r])], to=TensorProto.BOOL)
            mask = np.zeros((1, n_out), dtype=bool)
            mask[0, o] = True
            out = ctx.node(
                "Where", [ctx.node("And", [hit, ctx.const(mask, np.bool_)]), ctx.const(value), out]
            )
        unknown = ctx.node("Not", [ctx.node("Or", [found, missing])])
    else:  # no category but missing ones: zeros, then the rows below
        out = ctx.node("Where", [columns_of(ctx, missing, [0] * n_out), ctx.const(0.0), ctx.const(0.0)])
        unknown = ctx.node("Not", [missing])
    for case, mask, outcomes in (("unknown", unknown, table.unknown), ("missing", missing, table.missing)):
        refused = [j for j, r in enumerate(outcomes) if r is None]
        if refused:
            ctx.refuse_if([names[j] for j in refused], columns_of(ctx, mask, refused), _reason(model, case))
        if all(r is None for r in outcomes):
            continue
        fill = np.concatenate(
            [
                np.zeros(table.widths[j]) if r is None else np.asarray(r, dtype=np.float64)
                for j, r in enumerate(outcomes)
            ]
        )
        out = ctx.node("Where", [columns_of(ctx, mask, expand), ctx.row(list(fill), NUM), out])
    return out


ENCODER_OPS = CHECK_OPS | frozenset(
    {"Equal", "Cast", "MatMul", "Greater", "Not", "Or", "And", "Where", "LabelEncoder", "Mul", "Add"}
)


class _EncoderConverter(SklearnConverter):
    text = True
    onnx_ops = ENCODER_OPS

    def widths(self, model: Any, inputs: Sequence[Column]) -> list[int]:  # pragma: no cover
        raise NotImplementedError

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        inputs = super().check_inputs(model, columns)
        _categories(model, inputs)
        return inputs

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        names = feature_names_out(model, [c.name for c in inputs])
        if len(names) != sum(self.widths(model, inputs)):  # pragma: no cover - scikit-learn's bookkeeping
            raise refuse(
                model, f"internal error: {len(names)} names for {sum(self.widths(model, inputs))} columns"
            )
        return [Column(n, NUM) for n in names]

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        raises = getattr(model, "handle_unknown", None) == "error"
        table = category_table(model, inputs, self.widths(model, inputs), [raises] * len(inputs))
        return {NUM: emit_table(ctx, model, inputs, table)}


@register_converter
class OneHotEncoderConverter(_EncoderConverter):
    transformer = OneHotEncoder
    supports = (
        "text and numeric columns, categories auto / given, drop None / first / if_binary / explicit, "
        "handle_unknown error / ignore / infrequent_if_exist / warn, min_frequency, max_categories, "
        "sparse_output, dtype, feature_name_combiner"
    )

    def widths(self, model: Any, inputs: Sequence[Column]) -> list[int]:
        return [int(w) for w in model._n_features_outs]


@register_converter
class OrdinalEncoderConverter(_EncoderConverter):
    transformer = OrdinalEncoder
    supports = (
        "text and numeric columns, categories auto / given, handle_unknown error / use_encoded_value "
        "(unknown_value a number or NaN), encoded_missing_value, min_frequency, max_categories, dtype"
    )

    def widths(self, model: Any, inputs: Sequence[Column]) -> list[int]:
        return [1] * len(inputs)


@register_converter
class TargetEncoderConverter(_EncoderConverter):
    """``transform`` (not ``fit_transform``, whose cross fitting applies to the training
    rows only): each category's fitted encoding, ``target_mean_`` for unknown values."""

    transformer = TargetEncoder
    supports = (
        "text and numeric columns, target_type continuous / binary / multiclass, smooth auto / a number, "
        "categories auto / given (the fitted encodings_ at transform)"
    )

    def widths(self, model: Any, inputs: Sequence[Column]) -> list[int]:
        per = len(model.classes_) if model.target_type_ == "multiclass" else 1
        return [per] * len(inputs)
