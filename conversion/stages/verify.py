"""Equivalence check: the exported graph, run through the predictlib runtime, must
give the original pipeline's answers, and refuse exactly what the original refuses.

Records come from the held-out rows and from :func:`generate_records`, a seeded
generator built from the training data (missing values in every column, rare and
unseen categories, extreme numbers, infinities, wrong signs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import predictlib
from predictlib._inputs import is_missing_scalar

from .. import tolerances
from ..converters.boosting import library_errors
from ..core.frame import DT, NS_MAX, NS_MIN, NUM, Column

#: refused rows confirmed one by one against the original pipeline (each call costs
#: ~50 ms); beyond it a seeded sample that still covers every distinct check.
MAX_CONFIRMED_REFUSALS = 400


class EquivalenceError(AssertionError):
    """The graph and the original pipeline disagree."""


@dataclass
class Report:
    """What one equivalence run found."""

    rows: int = 0
    accepted: int = 0
    refused: int = 0
    refusals_confirmed: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    label_disagreements: int = 0
    label_ties: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "refused": self.refused,
            "refusals_confirmed_by_original": self.refusals_confirmed,
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "label_disagreements": self.label_disagreements,
            "label_ties": self.label_ties,
            "failures": len(self.failures),
        }


def records_from_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain records (missing values as None / NaN, numbers as Python floats)."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if v is pd.NA else v) for k, v in row.items()})
    return out


def reference_frame(records: Sequence[dict[str, Any]], columns: Sequence[Column]) -> pd.DataFrame:
    """The DataFrame a careful user of the original pipeline builds from records:
    the training columns, float64 numbers (missing markers as NaN), text columns as
    strings (object dtype for text pandas' string dtype cannot hold)."""
    data = {}
    for col in columns:
        values = [r.get(col.name) for r in records]
        if col.kind == NUM:
            data[col.name] = pd.Series(
                [math.nan if is_missing_scalar(v) else float(v) for v in values], dtype="float64"
            )
        elif col.kind == DT:  # naive datetimes (the runtime refuses anything else)
            cells = [None if is_missing_scalar(v) else v for v in values]
            try:
                data[col.name] = pd.Series(cells, dtype="datetime64[ns]")
            except (TypeError, ValueError, OverflowError):
                data[col.name] = pd.Series(cells, dtype=object)
        elif col.categories is not None:  # fitted as a category column: given with that dtype
            cells = [None if is_missing_scalar(v) else v for v in values]
            data[col.name] = pd.Series(pd.Categorical(cells, categories=list(col.categories)))
        else:
            cells = [None if is_missing_scalar(v) else v for v in values]
            try:
                data[col.name] = pd.Series(cells, dtype="str")
            except (UnicodeEncodeError, TypeError, ValueError):
                data[col.name] = pd.Series(cells, dtype=object)
    return pd.DataFrame(data)


#: what the original pipeline raises on a row it refuses (OverflowError: a datetime
#: difference beyond int64 nanoseconds)
ORIGINAL_REFUSALS = (ValueError, TypeError, OverflowError)


def _original_refuses(model: Any, frame: pd.DataFrame) -> bool:
    try:
        original_predict(model, frame)
    except (*ORIGINAL_REFUSALS, *library_errors()):
        return True
    return False


def original_predict(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The original pipeline's predictions (overflow to inf on extreme inputs is expected)."""
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(model.predict(frame))


def numeric_errors(got: np.ndarray, expected: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Max abs error, max relative error (over nonzero expected values) and the mask of
    entries out of tolerance; equal values (NaN and infinities included) match."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.where(same, 0.0, np.abs(got - expected))
        rel = np.where(same | (expected == 0), 0.0, diff / np.abs(expected))  # NaN == NaN: 0
        finite = np.isfinite(got) & np.isfinite(expected)
        bad = ~same & ~(finite & (diff <= tolerances.ATOL + tolerances.RTOL * np.abs(expected)))
    return (
        float(np.max(diff, initial=0.0, where=~bad)),
        float(np.max(rel, initial=0.0, where=~bad)),
        bad,
    )


def compare(
    model: Any,
    runtime: predictlib.Model,
    records: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    seed: int = 0,
) -> Report:
    """Run ``records`` through both; return the report (``failures`` lists disagreements).

    Regression: predictions within the tolerance. Classification: probabilities within
    the tolerance and the same labels; a different label where the original's two top
    probabilities are within the tolerance of each other is counted as a tie, not a
    failure.
    """
    report = Report(rows=len(records))
    refused_rows: dict[int, str] = {}  # row -> its first problem (for sampling)
    try:
        runtime.predict(list(records))
    except predictlib.InputError as exc:
        for problem in exc.problems:
            if problem.row is not None:
                refused_rows.setdefault(problem.row, f"{problem.column}|{problem.expected}")
    accepted = [i for i in range(len(records)) if i not in refused_rows]
    report.accepted, report.refused = len(accepted), len(refused_rows)
    if accepted:
        rows = [records[i] for i in accepted]
        got = runtime.predict(rows)
        frame = reference_frame(rows, columns)
        try:
            expected = original_predict(model, frame)
        except (*ORIGINAL_REFUSALS, *library_errors()) as exc:
            report.failures.extend(
                f"row {accepted[i]}: the original refuses it ({exc}), predictlib predicts {got[i]!r}"
                for i in _bisect_refused(model, frame)
            )
        else:
            if runtime.task == "classification":
                _compare_classes(report, accepted, got, expected, runtime.predict_proba(rows), model, frame)
            else:
                report.max_abs_error, report.max_rel_error, bad = numeric_errors(got, expected)
                report.failures.extend(
                    f"row {accepted[i]}: predictlib {got[i]!r}, original {expected[i]!r}"
                    for i in np.nonzero(bad)[0]
                )
    for i in _sample_refused(refused_rows, seed):
        report.refusals_confirmed += 1
        if not _original_refuses(model, reference_frame([records[i]], columns)):
            report.failures.append(
                f"row {i}: predictlib refuses it, the original pipeline accepts it: {records[i]}"
            )
    return report


def _compare_classes(
    report: Report,
    accepted: list[int],
    labels: np.ndarray,
    expected_labels: np.ndarray,
    proba: np.ndarray,
    model: Any,
    frame: pd.DataFrame,
) -> None:
    expected_proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    if np.ndim(expected_labels) == 2 and np.shape(expected_labels)[1] == 1:  # CatBoost's [N, 1] labels
        expected_labels = np.asarray(expected_labels).reshape(-1)
    report.max_abs_error, report.max_rel_error, bad = numeric_errors(proba, expected_proba)
    for i in np.nonzero(bad.any(axis=1))[0]:
        report.failures.append(
            f"row {accepted[i]}: probabilities {proba[i].tolist()}, original {expected_proba[i].tolist()}"
        )
    top2 = np.sort(expected_proba, axis=1)[:, -2:] if expected_proba.shape[1] > 1 else None
    for i in np.nonzero(np.asarray(labels) != np.asarray(expected_labels))[0]:
        tie = top2 is not None and top2[i, 1] - top2[i, 0] <= tolerances.ATOL + tolerances.RTOL * top2[i, 1]
        if tie:
            report.label_ties += 1
        else:
            report.label_disagreements += 1
            report.failures.append(f"row {accepted[i]}: label {labels[i]!r}, original {expected_labels[i]!r}")


def _sample_refused(refused: dict[int, str], seed: int) -> list[int]:
    if len(refused) <= MAX_CONFIRMED_REFUSALS:
        return sorted(refused)
    rng = np.random.default_rng(seed)
    first_of_kind = {}
    for row, kind in sorted(refused.items()):
        first_of_kind.setdefault(kind, row)
    chosen = set(first_of_kind.values())
    rest = [r for r in sorted(refused) if r not in chosen]
    extra = max(0, MAX_CONFIRMED_REFUSALS - len(chosen))
    chosen.update(rng.choice(rest, size=min(extra, len(rest)), replace=False).tolist())
    return sorted(chosen)


def _bisect_refused(model: Any, frame: pd.DataFrame) -> list[int]:
    """Positions of the rows of ``frame`` the original refuses on their own."""
    if not _original_refuses(model, frame):
        return []
    if len(frame) == 1:
        return [0]
    mid = len(frame) // 2
    left = _bisect_refused(model, frame.iloc[:mid])
    right = _bisect_refused(model, frame.iloc[mid:])
    return left + [mid + i for i in right]


# ------------------------------------------------------------------ generated records

EXTREME_NUMBERS = (0.0, -1.0, 1e-300, -1e-300, 1e300, -1e300, 1e15, -1e15, math.inf, -math.inf)
#: datetimes at the ends of the datetime64[ns] range and at calendar edges
EXTREME_DATETIMES = tuple(
    pd.Timestamp(text)
    for text in (
        "1677-09-21 00:12:43.145224193",
        "2262-04-11 23:47:16.854775807",
        "1970-01-01",
        "1969-12-31 23:59:59.999999999",
        "2000-02-29 12:00",
        "1900-03-01",
        "2020-12-31 23:59:59",
        "2021-01-03",
    )
)
_DAY_NS = 86_400 * 10**9


def generate_records(
    train: pd.DataFrame, columns: Sequence[Column], n: int, seed: int
) -> list[dict[str, Any]]:
    """``n`` records: training rows with 0-3 cells replaced by an edge case: missing (NaN / None), an extreme number (0, negatives, +-1e300, +-inf, ...),
    a rescaled value far outside the training range, a rare or an unseen category,
    or a value from another row."""
    rng = np.random.default_rng(seed)
    base = records_from_frame(train.reset_index(drop=True))
    numeric = {c.name: train[c.name].dropna().to_numpy(dtype=float) for c in columns if c.kind == NUM}
    moments = {
        c.name: train[c.name].dropna().to_numpy(dtype="datetime64[ns]").view(np.int64)
        for c in columns
        if c.kind == DT
    }
    categories: dict[str, tuple[list[str], list[str]]] = {}
    for c in columns:
        if c.kind not in (NUM, DT):
            counts = train[c.name].value_counts()
            rare = [str(k) for k, v in counts.items() if v / len(train) < 0.05]
            categories[c.name] = ([str(k) for k in counts.index], rare)
    out = []
    for i in range(n):
        record = dict(base[int(rng.integers(len(base)))])
        # 0 to 3 edge cases per record (a quarter of the records are training rows as they are)
        for j in rng.choice(len(columns), size=min(int(rng.integers(4)), len(columns)), replace=False):
            col = columns[int(j)]
            choice = int(rng.integers(4))
            if col.kind == NUM:
                values = numeric[col.name]
                if choice == 0:
                    record[col.name] = math.nan if rng.random() < 0.5 else None
                elif choice == 1:
                    record[col.name] = float(rng.choice(EXTREME_NUMBERS))
                elif choice == 2 and len(values):
                    record[col.name] = float(rng.choice(values)) * float(rng.choice((10.0, 1000.0, -1.0)))
                elif len(values):
                    record[col.name] = float(rng.choice(values))
            elif col.kind == DT:  # missing, an extreme datetime, a shifted or another row's value
                ns = moments[col.name]
                if choice == 0:
                    record[col.name] = None if rng.random() < 0.5 else pd.NaT
                elif choice == 1:
                    record[col.name] = EXTREME_DATETIMES[int(rng.integers(len(EXTREME_DATETIMES)))]
                elif choice == 2 and len(ns):
                    shift = int(rng.integers(-3650, 3650)) * _DAY_NS + int(rng.integers(0, _DAY_NS))
                    moved = min(max(int(rng.choice(ns)) + shift, NS_MIN), NS_MAX)
                    record[col.name] = pd.Timestamp(moved)
                elif len(ns):
                    record[col.name] = pd.Timestamp(int(rng.choice(ns)))
            else:
                known, rare = categories[col.name]
                if choice == 0:
                    record[col.name] = None if rng.random() < 0.5 else math.nan
                elif choice == 1 and rare:
                    record[col.name] = str(rng.choice(rare))
                elif choice == 2:
                    record[col.name] = f"unseen-{i % 7}"
                elif known:
                    record[col.name] = str(rng.choice(known))
        out.append(record)
    return out
