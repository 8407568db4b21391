"""Drift against the training profile the artifact carries (``profile.json``), numpy only.

The build writes ``profile.json`` (:mod:`predictlib.build.stages.profile`, described in
``schema/profile.schema.json`` and ``docs/monitoring.md``): per input column of the
training frame its missing share, range, quantiles and a histogram whose bin edges are
training quantiles (numbers, datetimes) or its category counts (categories), and the
distribution of the model's own predictions on the training rows.

:meth:`predictlib.Model.drift` compares a batch with it; :meth:`predictlib.Model.monitor`
accumulates the same counts over many calls. Both reduce the rows they see to integer
counts (a :class:`Monitor`'s state), so states merge exactly across processes and a
report never depends on how the rows were split. Per column the report gives the
population stability index (PSI) against the training histogram, the share of unseen
categories, of values outside the training range, of missing values (against the
training share) and of values of the wrong type, each judged against
:class:`Thresholds` into ``ok`` / ``warn`` / ``alert``.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import ArtifactError, InputError, PredictlibError, Problem
from ._ids import encodable
from ._inputs import NAT, InputAdapter

if TYPE_CHECKING:
    from ._model import Model

PROFILE_FILE = "profile.json"
PROFILE_FORMAT = "predictlib-profile"
PROFILE_FORMAT_VERSION = 1
MONITOR_FORMAT = "predictlib-monitor"
MONITOR_FORMAT_VERSION = 1

#: quantiles recorded per numeric / datetime column (and regression predictions)
QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
#: the training quantiles used as histogram bin edges (duplicates dropped): up to ten bins
EDGE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: categories recorded per categorical column (the most frequent; the rest is "other")
MAX_CATEGORIES = 100
#: shares below this count as this in the PSI (an empty bin would make it infinite)
PSI_FLOOR = 1e-4
#: unseen categories remembered as examples per column (the first in text order, so
#: that merged states keep the same ones), and their length at most
UNSEEN_EXAMPLES = 10
EXAMPLE_CHARS = 80
#: rows a monitor buffers before it reduces them to counts
FLUSH_ROWS = 512
#: rows of a large DataFrame or arrow table adapted at once by drift()
SLICE_ROWS = 131_072

STATUSES = ("ok", "warn", "alert")
NUMBER, CATEGORY, DATETIME = "number", "category", "datetime"


# ---------------------------------------------------------------------------- maths
def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Histogram counts of ``values`` (no missing values) for the interior bin ``edges``
    (sorted, distinct): bin 0 holds ``x < edges[0]``, bin ``i`` holds
    ``edges[i-1] <= x < edges[i]``, the last bin ``x >= edges[-1]`` (``len(edges) + 1``
    bins, the outer ones open: every value falls in one). The build counts the
    training rows with this same function."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1).astype(
        np.int64
    )


def psi(expected: Sequence[int] | np.ndarray, actual: Sequence[int] | np.ndarray) -> float | None:
    """Population stability index of the ``actual`` counts against the ``expected``
    ones (same bins): ``sum((a - e) * ln(a / e))`` over the bins' shares, each share
    floored at :data:`PSI_FLOOR`. 0 for identical distributions; None when either side
    has no values."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() <= 0 or a.sum() <= 0:
        return None
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


# ----------------------------------------------------------------------- thresholds
@dataclass(frozen=True)
class Thresholds:
    """When a column's measure makes it ``warn`` or ``alert`` (a measure above the
    threshold). Override any of them: ``model.drift(rows, thresholds={"psi_alert": 0.4})``
    or ``Thresholds(psi_alert=0.4)``; ``docs/monitoring.md`` explains the defaults."""

    #: population stability index against the training histogram (0.1 / 0.25: the usual
    #: "moderate" and "significant" shift of credit scoring)
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    #: share of the non-missing values that are categories never seen in training
    #: (beyond the training share of categories the profile groups as "other")
    unseen_warn: float = 0.01
    unseen_alert: float = 0.10
    #: share of the non-missing values outside the training [min, max]
    outside_warn: float = 0.01
    outside_alert: float = 0.10
    #: change of the missing share, in absolute share points (0.05 = 5 points)
    missing_warn: float = 0.05
    missing_alert: float = 0.20
    #: share of the values of a wrong type (text in a numeric column...): any is a warning
    invalid_warn: float = 0.0
    invalid_alert: float = 0.01
    #: share of the rows the model refuses (predictions)
    refused_warn: float = 0.01
    refused_alert: float = 0.10
    #: the PSI is judged only on at least this many non-missing values (it is noisy on
    #: fewer: about (bins - 1) / rows for rows drawn from the training distribution)
    min_rows: int = 100

    @classmethod
    def of(cls, value: Thresholds | Mapping[str, float] | None) -> Thresholds:
        """``value`` as Thresholds: None gives the defaults, a mapping overrides them."""
        if value is None:
            return cls()
        if isinstance(value, Thresholds):
            return value
        if not isinstance(value, Mapping):
            raise PredictlibError(
                f"thresholds must be a predictlib.Thresholds or a mapping of name -> number, "
                f"got {type(value).__name__}"
            )
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise PredictlibError(f"unknown drift threshold(s) {unknown}: the thresholds are {names}")
        for name, number in value.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not number >= 0:
                raise PredictlibError(f"drift threshold {name} must be a number >= 0, got {number!r}")
        changes: dict[str, Any] = {k: (int(v) if k == "min_rows" else float(v)) for k, v in value.items()}
        return replace(cls(), **changes)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ColumnDrift:
    """One input column (or the predictions) against its training profile."""

    name: str
    #: "number", "category", "datetime"; "prediction" or "label" for the predictions
    kind: str
    status: str
    #: values observed (rows for the columns; predicted rows for the predictions)
    rows: int
    psi: float | None = None
    #: share of non-missing values never seen in training (categories)
    unseen_share: float | None = None
    #: share of non-missing values below the training minimum or above its maximum
    outside_share: float | None = None
    missing_share: float | None = None
    training_missing_share: float | None = None
    #: share of the values of a wrong type (refused by the model before it runs)
    invalid_share: float = 0.0
    #: share of the rows the model refused (predictions only)
    refused_share: float | None = None
    #: why the status is not ok (one text per measure over its threshold)
    reasons: tuple[str, ...] = ()
    #: unseen categories, the first few in text order
    unseen_examples: tuple[str, ...] = ()

    @property
    def score(self) -> tuple[int, float]:
        """Sort key of :meth:`DriftReport.ranked`: status, then the largest measure."""
        measures = [self.psi, self.unseen_share, self.outside_share, self.invalid_share, self.refused_share]
        missing = (
            abs(self.missing_share - self.training_missing_share)
            if self.missing_share is not None and self.training_missing_share is not None
            else None
        )
        return STATUSES.index(self.status), max([m for m in (*measures, missing) if m is not None] or [0.0])

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["reasons"] = list(self.reasons)
        out["unseen_examples"] = list(self.unseen_examples)
        return out


@dataclass(frozen=True)
class DriftReport:
    """The drift of the rows seen (:meth:`predictlib.Model.drift`, :meth:`Monitor.report`)."""

    model: str
    version: str
    #: rows seen, and how many of them the model refuses
    rows: int
    refused: int
    #: the worst status of the columns and the predictions
    status: str
    #: the input columns, in the manifest's order (see :meth:`ranked`)
    columns: tuple[ColumnDrift, ...]
    predictions: ColumnDrift
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def alerts(self) -> list[str]:
        """Names of the input columns in alert."""
        return [c.name for c in self.columns if c.status == "alert"]

    @property
    def warnings(self) -> list[str]:
        """Names of the input columns with a warning."""
        return [c.name for c in self.columns if c.status == "warn"]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def ranked(self) -> list[ColumnDrift]:
        """The columns, most drifted first (status, then largest measure, then name)."""
        return sorted(self.columns, key=lambda c: (-c.score[0], -c.score[1], c.name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "refused": self.refused,
            "status": self.status,
            "alerts": self.alerts,
            "warnings": self.warnings,
            "predictions": self.predictions.as_dict(),
            "columns": [c.as_dict() for c in self.ranked()],
            "thresholds": self.thresholds.as_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)

    def table(self) -> str:
        """The report as a text table, most drifted column first."""
        head = (
            f"{self.model} {self.version}: {self.rows} rows, {self.refused} refused; status {self.status}"
            + (f" ({len(self.alerts)} column(s) in alert: {', '.join(self.alerts)})" if self.alerts else "")
        )
        header = ("column", "kind", "status", "PSI", "unseen", "outside", "missing (train -> now)", "why")
        rows = [_table_row(c) for c in [self.predictions, *self.ranked()]]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        lines = [head]
        for r in [header, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1])
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _table_row(c: ColumnDrift) -> tuple[str, ...]:
    missing = (
        "-" if c.missing_share is None else f"{_share(c.training_missing_share)} -> {_share(c.missing_share)}"
    )
    why = "; ".join(c.reasons)
    if c.unseen_examples:
        why += ("; " if why else "") + "e.g. " + ", ".join(repr(t) for t in c.unseen_examples[:3])
    return (
        c.name,
        c.kind,
        c.status,
        "-" if c.psi is None else f"{c.psi:.3f}",
        _share(c.unseen_share),
        _share(c.outside_share),
        missing,
        why,
    )


# ------------------------------------------------------------------------- profile
def _number(value: Any) -> float:
    """A profile number: JSON numbers, or golden.json's ``{"$float": "inf"}`` form."""
    if isinstance(value, dict):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[value["$float"]]
    return float(value)


@dataclass(frozen=True)
class _Binned:
    """A numeric or datetime column (or regression predictions): histogram and range."""

    name: str
    kind: str
    edges: np.ndarray
    expected: np.ndarray
    low: Any
    high: Any
    missing_share: float
    datetime: bool = False

    def __post_init__(self) -> None:
        self.edges.flags.writeable = False


@dataclass(frozen=True)
class _Categories:
    """A categorical column (or class labels): the profiled values and their counts."""

    name: str
    kind: str
    values: tuple[Any, ...]
    index: Mapping[Any, int]
    #: profiled counts, then the training count of the values beyond the profiled ones
    expected: np.ndarray
    missing_share: float

    @property
    def other_share(self) -> float:
        total = float(self.expected.sum())
        return float(self.expected[-1]) / total if total else 0.0


class Profile:
    """A model's parsed ``profile.json``, for the model's input columns."""

    def __init__(self, data: Mapping[str, Any], model: Model) -> None:
        source = model.source
        if data.get("format") != PROFILE_FORMAT or not isinstance(data.get("format_version"), int):
            raise ArtifactError(f"{source}: {PROFILE_FILE} is not a {PROFILE_FORMAT} file")
        if data["format_version"] > PROFILE_FORMAT_VERSION:
            raise ArtifactError(
                f"{source}: {PROFILE_FILE} has format {data['format_version']}, newer than this runtime "
                f"reads ({PROFILE_FORMAT_VERSION}): upgrade predictlib"
            )
        try:
            by_name = {c["name"]: c for c in data["columns"]}
            inputs = model.manifest["inputs"]
            self.numeric = [self._binned(by_name[c], False) for c in inputs["numeric"]]
            self.categorical = [self._categories(by_name[c]) for c in inputs["categorical"]]
            self.datetime = [self._binned(by_name[c], True) for c in inputs.get("datetime", [])]
            predictions = data["predictions"]
            self.predictions: _Binned | _Categories
            if model.task == "classification":
                self.predictions = self._categories(predictions, list(model.classes))
            else:
                self.predictions = self._binned(predictions, False)
            self.rows = int(data["rows"])
        except KeyError as exc:
            raise ArtifactError(f"{source}: {PROFILE_FILE} lacks {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{source}: {PROFILE_FILE} is malformed ({exc})") from None
        self.columns: list[_Binned | _Categories] = [*self.numeric, *self.categorical, *self.datetime]

    @staticmethod
    def _binned(column: Mapping[str, Any], datetime: bool) -> _Binned:
        hist = column["histogram"]
        dtype = np.int64 if datetime else np.float64
        edges = np.array([v if datetime else _number(v) for v in hist["edges"]], dtype=dtype)
        expected = np.array(hist["counts"], dtype=np.int64)
        if len(expected) != len(edges) + 1 or (len(edges) > 1 and not np.all(np.diff(edges) > 0)):
            raise ValueError(f"column {column['name']!r}: histogram edges and counts do not match")
        if datetime:
            low = column.get("min_ns")
            high = column.get("max_ns")
        else:
            low = None if column.get("min") is None else _number(column["min"])
            high = None if column.get("max") is None else _number(column["max"])
        return _Binned(
            str(column["name"]),
            column["kind"],
            edges,
            expected,
            low,
            high,
            float(column["missing_share"]),
            datetime,
        )

    @staticmethod
    def _categories(column: Mapping[str, Any], classes: list[Any] | None = None) -> _Categories:
        entries = column["classes"] if classes is not None else column["categories"]
        values = tuple(e["value"] for e in entries)
        counts = [int(e["count"]) for e in entries]
        if classes is not None:
            if list(values) != classes:
                raise ValueError(f"the predicted classes {list(values)} are not the model's {classes}")
            other = 0
        else:
            other = int(column["other_count"])
        return _Categories(
            str(column["name"]),
            column["kind"],
            values,
            {v: k for k, v in enumerate(values)},
            np.array([*counts, other], dtype=np.int64),
            float(column.get("missing_share", 0.0)),
        )


_PROFILES: weakref.WeakKeyDictionary[Model, tuple[Profile, str]] = weakref.WeakKeyDictionary()
_PROFILES_LOCK = threading.Lock()


def profile_of(model: Model) -> tuple[Profile, str]:
    """The model's training profile and the sha256 of its ``profile.json`` (read once)."""
    found = _PROFILES.get(model)
    if found is None:
        files = model.manifest.get("files") or {}
        if PROFILE_FILE not in files:
            raise PredictlibError(
                f"model '{model.name}' {model.version} ({model.source}) carries no training profile "
                f"({PROFILE_FILE}): it was built before predictlib profiled the training data; rebuild "
                "it to check drift"
            )
        raw = model.read_file(PROFILE_FILE)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{model.source}: {PROFILE_FILE} is not valid JSON ({exc})") from None
        found = (Profile(data, model), hashlib.sha256(raw).hexdigest())
        with _PROFILES_LOCK:
            _PROFILES[model] = found
    return found


# --------------------------------------------------------------------------- counts
#: slots after the bins of a numeric / datetime column (and of regression predictions)
_MISSING, _INVALID, _BELOW, _ABOVE = -4, -3, -2, -1
#: slots after the profiled categories of a categorical column
_UNSEEN, _CAT_MISSING, _CAT_INVALID = -3, -2, -1


class _Counts:
    """Integer counts of the rows seen: all a monitor keeps, so states add up exactly."""

    def __init__(self, profile: Profile) -> None:
        self.rows = 0
        self.refused = 0
        #: per column: [bins..., missing, invalid, below, above] (numbers, datetimes) or
        #: [categories..., unseen, missing, invalid] (categories)
        self.columns: dict[str, np.ndarray] = {}
        for b in (*profile.numeric, *profile.datetime):
            self.columns[b.name] = np.zeros(len(b.expected) + 4, dtype=np.int64)
        for c in profile.categorical:
            self.columns[c.name] = np.zeros(len(c.values) + 3, dtype=np.int64)
        #: per categorical column: unseen categories, the first UNSEEN_EXAMPLES in text order
        self.examples: dict[str, list[str]] = {c.name: [] for c in profile.categorical}
        p = profile.predictions
        #: [classes...] (classification) or [bins..., missing, invalid, below, above]
        self.predictions = np.zeros(
            len(p.values) if isinstance(p, _Categories) else len(p.expected) + 4, dtype=np.int64
        )

    def add(self, other: _Counts) -> None:
        self.rows += other.rows
        self.refused += other.refused
        for name, counts in other.columns.items():
            self.columns[name] += counts
        for name, texts in other.examples.items():
            self.examples[name] = _merge_examples(self.examples[name], texts)
        self.predictions += other.predictions

    def state(self, profile: Profile) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for b in (*profile.numeric, *profile.datetime):
            columns[b.name] = _binned_state(self.columns[b.name])
        for c in profile.categorical:
            counts = self.columns[c.name]
            columns[c.name] = {
                "categories": counts[:_UNSEEN].tolist(),
                "unseen": int(counts[_UNSEEN]),
                "missing": int(counts[_CAT_MISSING]),
                "invalid": int(counts[_CAT_INVALID]),
                "unseen_examples": list(self.examples[c.name]),
            }
        if isinstance(profile.predictions, _Categories):
            predictions: dict[str, Any] = {"classes": self.predictions.tolist()}
        else:
            predictions = _binned_state(self.predictions)
            del predictions["invalid"]
        return {"rows": self.rows, "refused": self.refused, "columns": columns, "predictions": predictions}

    @classmethod
    def from_state(cls, profile: Profile, state: Mapping[str, Any]) -> _Counts:
        counts = cls(profile)
        counts.rows = _count(state["rows"])
        counts.refused = _count(state["refused"])
        columns = state["columns"]
        for b in (*profile.numeric, *profile.datetime):
            counts.columns[b.name] = _binned_array(columns[b.name], len(b.expected), b.name)
        for c in profile.categorical:
            s = columns[c.name]
            values = [*s["categories"], s["unseen"], s["missing"], s["invalid"]]
            counts.columns[c.name] = _array(values, len(c.values) + 3, c.name)
            examples = s["unseen_examples"]
            if not isinstance(examples, list) or not all(isinstance(t, str) for t in examples):
                raise ValueError(f"column {c.name!r}: unseen_examples is not a list of texts")
            counts.examples[c.name] = _merge_examples(examples, [])
        p = profile.predictions
        if isinstance(p, _Categories):
            counts.predictions = _array(state["predictions"]["classes"], len(p.values), "predictions")
        else:
            counts.predictions = _binned_array(
                {**state["predictions"], "invalid": 0}, len(p.expected), "predictions"
            )
        return counts


def _binned_state(counts: np.ndarray) -> dict[str, Any]:
    return {
        "bins": counts[:_MISSING].tolist(),
        "missing": int(counts[_MISSING]),
        "invalid": int(counts[_INVALID]),
        "below": int(counts[_BELOW]),
        "above": int(counts[_ABOVE]),
    }


def _binned_array(state: Mapping[str, Any], bins: int, name: str) -> np.ndarray:
    values = [*state["bins"], state["missing"], state["invalid"], state["below"], state["above"]]
    return _array(values, bins + 4, name)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a count must be an integer >= 0, got {value!r}")
    return value


def _array(values: Sequence[Any], size: int, name: str) -> np.ndarray:
    if len(values) != size:
        raise ValueError(f"{name}: {len(values)} counts, the profile has {size}")
    return np.array([_count(v) for v in values], dtype=np.int64)


def _merge_examples(a: Sequence[str], b: Sequence[str]) -> list[str]:
    return sorted(set(a) | set(b))[:UNSEEN_EXAMPLES]


class _Counter:
    """Reduces adapted arrays (texts in ``cat``) and predictions to :class:`_Counts`."""

    def __init__(self, model: Model, profile: Profile) -> None:
        self.profile = profile
        missing = model.manifest["inputs"]["missing_category"]
        # per categorical column: value -> slot (profiled categories, then unseen, missing);
        # besides texts, the missing values a record may hold (other NaN objects and
        # pandas.NA land among the unseen ones first, and are moved to missing there)
        self.lookups: list[dict[Any, int]] = []
        for c in profile.categorical:
            lookup: dict[Any, int] = dict(c.index)
            for value in (missing, None, math.nan, np.nan):
                lookup[value] = len(c.values) + 1
            self.lookups.append(lookup)

    def inputs(
        self,
        counts: _Counts,
        num: np.ndarray,
        cat: np.ndarray,
        dt: np.ndarray,
        invalid: Mapping[str, np.ndarray],
    ) -> np.ndarray:
        """Count the cells of ``num`` / ``cat`` / ``dt`` (``invalid``: per column, the mask
        of the cells of a wrong type, whose placeholders are counted as invalid); ``cat``
        holds texts, the missing-value sentinel or any missing value of a record (None,
        NaN, pandas.NA). Returns the mask of the rows holding text that is not valid
        Unicode (refused)."""
        n = num.shape[0]
        p = self.profile
        for j, b in enumerate(p.numeric):
            _count_binned(counts.columns[b.name], b, num[:, j], np.isnan(num[:, j]), invalid.get(b.name))
        for j, b in enumerate(p.datetime):
            _count_binned(counts.columns[b.name], b, dt[:, j], dt[:, j] == NAT, invalid.get(b.name))
        not_unicode = np.zeros(n, dtype=bool)
        for j, c in enumerate(p.categorical):
            values = cat[:, j]
            lookup = self.lookups[j]
            unseen = len(c.values)
            found = np.zeros(unseen + 3, dtype=np.int64)
            wrong = invalid.get(c.name)
            if wrong is not None:
                found[unseen + 2] = np.count_nonzero(wrong)
                values = values[~wrong]
            new = []
            # each distinct value looked up once (a column holds few): the counting loop is C's
            for value, number in Counter(values.tolist()).items():
                slot = lookup.get(value)
                if slot is None:
                    slot = unseen if isinstance(value, str) else unseen + 1  # text, or another missing value
                    if slot == unseen:
                        new.append(value)
                found[slot] += number
            if new:
                odd = [t for t in new if not encodable(t)]
                if odd:
                    rows = np.isin(cat[:, j], odd)
                    not_unicode |= rows if wrong is None else rows & ~wrong
                shown = [str(t)[:EXAMPLE_CHARS] for t in new if t not in odd]
                counts.examples[c.name] = _merge_examples(counts.examples[c.name], shown)
            counts.columns[c.name] += found
        return not_unicode

    def predictions(self, counts: _Counts, values: np.ndarray) -> None:
        """Count predicted values (regression) or labels (classification)."""
        p = self.profile.predictions
        if isinstance(p, _Categories):
            labels = values.tolist()
            slots = np.fromiter(map(p.index.get, labels, repeat(-1)), dtype=np.int64, count=len(labels))
            counts.predictions += np.bincount(slots[slots >= 0], minlength=len(p.values))
            return
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        _count_binned(counts.predictions, p, values, np.isnan(values), None)


def _count_binned(
    counts: np.ndarray, column: _Binned, values: np.ndarray, missing: np.ndarray, wrong: np.ndarray | None
) -> None:
    if wrong is not None:
        counts[_INVALID] += int(np.count_nonzero(wrong))
        missing = missing & ~wrong
        present = values[~(missing | wrong)]
    else:
        present = values[~missing]
    counts[_MISSING] += int(np.count_nonzero(missing))
    counts[:_MISSING] += bin_counts(column.edges, present)
    if column.low is not None:
        counts[_BELOW] += int(np.count_nonzero(present < column.low))
        counts[_ABOVE] += int(np.count_nonzero(present > column.high))


def _invalid_cells(
    problems: Sequence[Problem], rows: int, columns: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per column, the mask of its cells named by ``problems`` (a wrong type, a missing
    column), and the mask of the rows with any problem (refused before the graph runs)."""
    invalid: dict[str, np.ndarray] = {}
    bad = np.zeros(rows, dtype=bool)
    known = set(columns)
    for problem in problems:
        row = 0 if problem.row is None else problem.row
        bad[row] = True
        names = columns if problem.column is None else [problem.column] if problem.column in known else []
        for name in names:
            mask = invalid.get(name)
            if mask is None:
                mask = invalid[name] = np.zeros(rows, dtype=bool)
            mask[row] = True
    return invalid, bad


# ------------------------------------------------------------------------ judgement
def _level(value: float | None, warn: float, alert: float) -> int:
    if value is None:
        return 0
    return 2 if value > alert else 1 if value > warn else 0


class _Judgement:
    """The measures of one column judged against the thresholds."""

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.level = 0
        self.reasons: list[str] = []

    def psi(self, value: float | None, values: int) -> None:
        t = self.t
        if value is None:
            return
        if values < t.min_rows:
            self.reasons.append(f"PSI not judged on {values} values (fewer than {t.min_rows})")
            return
        level = _level(value, t.psi_warn, t.psi_alert)
        if level:
            self.reasons.append(f"PSI {value:.3f} > {t.psi_alert if level == 2 else t.psi_warn:g}")
        self.level = max(self.level, level)

    def share(
        self, value: float | None, warn: float, alert: float, text: str, judged: float | None = None
    ) -> None:
        level = _level(value if judged is None else judged, warn, alert)
        if level and value is not None:
            self.reasons.append(text.format(value))
        self.level = max(self.level, level)

    def missing(self, share: float | None, training: float) -> None:
        if share is None:
            return
        level = _level(abs(share - training), self.t.missing_warn, self.t.missing_alert)
        if level:
            self.reasons.append(f"missing share {share:.1%} (training {training:.1%})")
        self.level = max(self.level, level)

    @property
    def status(self) -> str:
        return STATUSES[self.level]


def _judge_psi(
    column: _Binned | _Categories, found: np.ndarray, t: Thresholds
) -> tuple[_Judgement, float | None]:
    """Start a column's judgement with its PSI against training (``found``: the counts per bin)."""
    j = _Judgement(t)
    value = psi(column.expected, found)
    j.psi(value, int(found.sum()))
    return j, value


def _column_drift(
    column: _Binned | _Categories,
    j: _Judgement,
    value: float | None,
    present: int,
    missing: int,
    invalid: int,
    *,
    outside_share: float | None = None,
    unseen_share: float | None = None,
    unseen_examples: Sequence[str] = (),
) -> ColumnDrift:
    """End a column's judgement: its missing share (against training) and its invalid share."""
    rows = present + missing + invalid
    valid = present + missing
    missing_share = missing / valid if valid else None
    j.missing(missing_share, column.missing_share)
    invalid_share = invalid / rows if rows else 0.0
    j.share(
        invalid_share,
        j.t.invalid_warn,
        j.t.invalid_alert,
        "{:.1%} invalid (a wrong type or a missing column)",
    )
    return ColumnDrift(
        name=column.name,
        kind=column.kind,
        status=j.status,
        rows=rows,
        psi=value,
        unseen_share=unseen_share,
        outside_share=outside_share,
        missing_share=missing_share,
        training_missing_share=column.missing_share,
        invalid_share=invalid_share,
        reasons=tuple(j.reasons),
        unseen_examples=tuple(unseen_examples),
    )


def _judge_binned(column: _Binned, counts: np.ndarray, t: Thresholds) -> ColumnDrift:
    bins = counts[:_MISSING]
    present = int(bins.sum())
    below, above = int(counts[_BELOW]), int(counts[_ABOVE])
    j, value = _judge_psi(column, bins, t)
    outside = (below + above) / present if present and column.low is not None else None
    side = "above the training maximum" if above >= below else "below the training minimum"
    j.share(
        outside, t.outside_warn, t.outside_alert, "{:.1%} outside the training range (mostly " + side + ")"
    )
    missing, invalid = int(counts[_MISSING]), int(counts[_INVALID])
    return _column_drift(column, j, value, present, missing, invalid, outside_share=outside)


def _judge_categories(
    column: _Categories, counts: np.ndarray, examples: Sequence[str], t: Thresholds
) -> ColumnDrift:
    found = counts[:_CAT_MISSING]  # the profiled categories, then the unseen ones
    present = int(found.sum())
    j, value = _judge_psi(column, found, t)
    unseen = int(found[-1]) / present if present else None
    beyond = None if unseen is None else max(0.0, unseen - column.other_share)
    j.share(unseen, t.unseen_warn, t.unseen_alert, "{:.1%} unseen categories", judged=beyond)
    missing, invalid = int(counts[_CAT_MISSING]), int(counts[_CAT_INVALID])
    return _column_drift(
        column, j, value, present, missing, invalid, unseen_share=unseen, unseen_examples=examples
    )


def _judge_predictions(profile: Profile, counts: _Counts, t: Thresholds) -> ColumnDrift:
    p = profile.predictions
    refused = counts.refused / counts.rows if counts.rows else None
    if isinstance(p, _Categories):
        j = _Judgement(t)
        found = counts.predictions
        value = psi(p.expected[:-1], found)
        j.psi(value, int(found.sum()))
        entry = ColumnDrift("prediction", "label", "ok", int(found.sum()), psi=value)
    else:
        entry = _judge_binned(p, counts.predictions, t)
        j = _Judgement(t)
        j.level, j.reasons = STATUSES.index(entry.status), list(entry.reasons)
    j.share(refused, t.refused_warn, t.refused_alert, "{:.1%} of the rows refused by the model")
    return replace(entry, status=j.status, refused_share=refused, reasons=tuple(j.reasons))


def _report(model: Model, profile: Profile, counts: _Counts, thresholds: Thresholds) -> DriftReport:
    columns: list[ColumnDrift] = []
    for b in profile.numeric:
        columns.append(_judge_binned(b, counts.columns[b.name], thresholds))
    for c in profile.categorical:
        columns.append(_judge_categories(c, counts.columns[c.name], counts.examples[c.name], thresholds))
    for b in profile.datetime:
        columns.append(_judge_binned(b, counts.columns[b.name], thresholds))
    order = {c["name"]: k for k, c in enumerate(model.manifest["inputs"]["columns"])}
    columns.sort(key=lambda c: order.get(c.name, len(order)))
    predictions = _judge_predictions(profile, counts, thresholds)
    worst = max(STATUSES.index(c.status) for c in [*columns, predictions])
    return DriftReport(
        model=model.name,
        version=model.version,
        rows=counts.rows,
        refused=counts.refused,
        status=STATUSES[worst],
        columns=tuple(columns),
        predictions=predictions,
        thresholds=thresholds,
    )


# -------------------------------------------------------------------------- reading
def _rows_in(data: Any) -> int:
    """Rows of an input whose adaptation failed as a whole (a missing column)."""
    if isinstance(data, Mapping):
        values = list(data.values())
        if values and all(hasattr(v, "__len__") and not isinstance(v, (str, bytes)) for v in values):
            return len(values[0])
        return 1
    rows = getattr(data, "num_rows", None)
    if isinstance(rows, int):
        return rows
    try:
        return len(data)
    except TypeError:
        return 1


def _slices(data: Any) -> Iterator[Any]:
    """A large DataFrame or arrow table by slices of :data:`SLICE_ROWS` rows (views),
    anything else whole."""
    is_frame = type(data).__name__ == "DataFrame" and hasattr(data, "iloc")
    rows = len(data) if is_frame else getattr(data, "num_rows", 0) if hasattr(data, "slice") else 0
    if not isinstance(rows, int) or rows <= SLICE_ROWS:
        yield data
        return
    for start in range(0, rows, SLICE_ROWS):
        yield data.iloc[start : start + SLICE_ROWS] if is_frame else data.slice(start, SLICE_ROWS)


class _Reader:
    """One model's way from caller data to counts (shared by drift() and Monitor)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.profile, self.sha256 = profile_of(model)
        inputs = model.manifest["inputs"]
        #: the runtime's adapter, giving texts (not category ids): the profile counts texts
        self.texts = InputAdapter(
            inputs["numeric"], inputs["categorical"], inputs["missing_category"], inputs.get("datetime", [])
        )
        self.counter = _Counter(model, self.profile)
        self.categorical = {c.name for c in self.profile.categorical}

    def adapt(
        self, data: Any, counts: _Counts
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Problem]] | None:
        """The adapted arrays of ``data`` and the problems of its cells; None when the
        input cannot be read as a whole (a missing column: counted as refused rows and
        invalid cells); raises :class:`InputError` for input that is not data at all."""
        try:
            num, cat, _, problems, dt, _ = self.model._adapt(data, self.texts)
        except InputError as exc:
            named = [p.column for p in exc.problems if p.column is not None]
            if not named:
                raise
            n = _rows_in(data)
            counts.rows += n
            counts.refused += n
            for name in set(named):
                if name in counts.columns:
                    slot = _CAT_INVALID if name in self.categorical else _INVALID
                    counts.columns[name][slot] += n
            return None
        return num, cat, dt, problems

    def observe(self, data: Any, counts: _Counts) -> None:
        """Count ``data``'s inputs, run the model on the rows it accepts and count their
        predictions and the refused rows."""
        for part in _slices(data):
            adapted = self.adapt(part, counts)
            if adapted is None:
                continue
            num, cat, dt, problems = adapted
            n = num.shape[0]
            invalid, bad = _invalid_cells(problems, n, self.model.columns)
            bad |= self.counter.inputs(counts, num, cat, dt, invalid)
            counts.rows += n
            good = np.flatnonzero(~bad)
            refused = n - good.size
            if good.size:
                results, flags = self.model._run_texts(num[good], cat[good], dt[good])
                accepted = np.ones(good.size, dtype=bool) if flags is None else ~flags.any(axis=1)
                refused += int(good.size - np.count_nonzero(accepted))
                values = results[0].reshape(-1) if self.model.task == "regression" else results[0]
                self.counter.predictions(counts, values[accepted])
            counts.refused += refused

    def report(self, counts: _Counts, thresholds: Thresholds | Mapping[str, float] | None) -> DriftReport:
        return _report(self.model, self.profile, counts, Thresholds.of(thresholds))


def drift(model: Model, data: Any, thresholds: Thresholds | Mapping[str, float] | None = None) -> DriftReport:
    """See :meth:`predictlib.Model.drift`."""
    limits = Thresholds.of(thresholds)
    reader = _Reader(model)
    counts = _Counts(reader.profile)
    reader.observe(data, counts)
    return reader.report(counts, limits)


# -------------------------------------------------------------------------- monitor
class Monitor:
    """Drift counts accumulated over many calls: ``monitor = model.monitor()``, then
    ``monitor.predict(record)`` where the app called ``model.predict(record)``.

    Per call it adapts the input once more (as texts) and keeps the arrays; every
    :data:`FLUSH_ROWS` rows they are reduced to integer counts. The state is those
    counts: :meth:`to_json` / :meth:`from_json` move it between processes,
    :meth:`merge` adds another monitor's (the same model's) exactly, and
    :meth:`report` judges it as :meth:`predictlib.Model.drift` judges a batch.
    Thread-safe.
    """

    def __init__(self, model: Model) -> None:
        self._reader = _Reader(model)
        self.model = model
        self._counts = _Counts(self._reader.profile)
        self._lock = threading.Lock()
        #: adapted inputs and their predictions, not counted yet
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray, Sequence[Any] | np.ndarray]] = []
        #: single records' values (numbers, categories, datetimes) and predictions, not counted yet
        self._records: list[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], Any]] = []
        adapter = self._reader.texts
        self._numbers = _values_of(adapter.numeric)
        self._texts = _values_of(adapter.categorical)
        self._moments = _values_of(adapter.datetime)
        self._buffered = 0

    def __repr__(self) -> str:
        return f"<predictlib.Monitor of {self.model.name} {self.model.version}: {self.rows} rows>"

    # ----------------------------------------------------------------- feeding
    def predict(self, data: Any) -> Any:
        """``model.predict(data)``, counting the inputs and the predictions (the
        refused rows too, when the model refuses the input: the InputError is raised)."""
        try:
            result = self.model.predict(data)
        except InputError as exc:
            self._count_refused(data, exc)
            raise
        if type(data) is dict:  # the per-request call: the record's values, kept as they are
            self._keep_record(data, result)
        else:
            self._keep(data, result if isinstance(result, np.ndarray) else [result])
        return result

    def predict_proba(self, data: Any) -> np.ndarray:
        """``model.predict_proba(data)``, counting the inputs and the predicted labels
        (the most probable class, as ``predict`` gives it)."""
        try:
            proba = self.model.predict_proba(data)
        except InputError as exc:
            self._count_refused(data, exc)
            raise
        classes = np.asarray(self.model.classes, dtype=object)
        labels = classes[np.argmax(proba.reshape(-1, len(classes)), axis=1)] if proba.size else classes[:0]
        self._keep(data, labels)
        return proba

    def observe(self, data: Any) -> None:
        """Count ``data`` without predicting for the caller: the model runs on it here
        (its predictions and refusals are counted; nothing is raised for refused rows)."""
        counts = _Counts(self._reader.profile)
        self._reader.observe(data, counts)
        with self._lock:
            self._counts.add(counts)

    def _keep_record(self, record: dict[str, Any], prediction: Any) -> None:
        """Buffer one record the model accepted (so its values are valid): its values in
        the adapter's column order, converted to arrays when the buffer is counted."""
        row = (self._numbers(record), self._texts(record), self._moments(record), prediction)
        with self._lock:
            self._records.append(row)
            self._buffered += 1
            if self._buffered >= FLUSH_ROWS:
                self._flush()

    def _keep(self, data: Any, predictions: Sequence[Any] | np.ndarray) -> None:
        start = 0
        for part in _slices(data):
            num, cat, _, _, dt, _ = self.model._adapt(part, self._reader.texts)
            n = num.shape[0]
            if n == 0:
                continue
            with self._lock:
                self._buffer.append((num, cat, dt, predictions[start : start + n]))
                self._buffered += n
                if self._buffered >= FLUSH_ROWS:
                    self._flush()
            start += n

    def _count_refused(self, data: Any, error: InputError) -> None:
        """Count the inputs of a call the model refused, and its refused rows."""
        counts = _Counts(self._reader.profile)
        read = 0
        for part in _slices(data):
            adapted = self._reader.adapt(part, counts)  # unreadable: counted as refused there
            if adapted is None:
                continue
            num, cat, dt, problems = adapted
            invalid, _ = _invalid_cells(problems, num.shape[0], self.model.columns)
            self._reader.counter.inputs(counts, num, cat, dt, invalid)
            read += num.shape[0]
        counts.rows += read
        if read:
            counts.refused += len({p.row for p in error.problems})
        with self._lock:
            self._counts.add(counts)

    def _flush(self) -> None:
        """Reduce the buffered records and arrays to counts (the lock held)."""
        if self._records:
            self._buffer.append(self._record_arrays(self._records))
            self._records = []
        if not self._buffer:
            return
        num = np.concatenate([b[0] for b in self._buffer])
        cat = np.concatenate([b[1] for b in self._buffer])
        dt = np.concatenate([b[2] for b in self._buffer])
        predictions = np.array([p for b in self._buffer for p in b[3]], dtype=object)
        self._buffer = []
        self._buffered = 0
        self._reader.counter.inputs(self._counts, num, cat, dt, {})
        self._counts.rows += num.shape[0]
        self._reader.counter.predictions(self._counts, predictions)

    def _record_arrays(
        self, records: list[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any]]:
        """The buffered single records as the adapter's arrays (``cat`` keeping each
        record's own missing values, which the counter knows)."""
        adapter = self._reader.texts
        n = len(records)
        try:
            num = np.array([r[0] for r in records], dtype=np.float64).reshape(n, len(adapter.numeric))
        except (TypeError, ValueError):  # e.g. pandas.NA: the adapter's conversion, value by value
            cells = [
                [adapter.number(v, None, c, []) for v, c in zip(r[0], adapter.numeric, strict=True)]
                for r in records
            ]
            num = np.array(cells, dtype=np.float64).reshape(n, len(adapter.numeric))
        cat = np.empty((n, len(adapter.categorical)), dtype=object)
        for i, r in enumerate(records):
            cat[i] = r[1]
        moments = [
            [adapter.moment(v, None, c, []) for v, c in zip(r[2], adapter.datetime, strict=True)]
            for r in records
        ]
        dt = np.array(moments, dtype=np.int64).reshape(n, len(adapter.datetime))
        return num, cat, dt, [r[3] for r in records]

    # ----------------------------------------------------------------- results
    @property
    def rows(self) -> int:
        """Rows counted so far."""
        with self._lock:
            return self._counts.rows + self._buffered

    def report(self, thresholds: Thresholds | Mapping[str, float] | None = None) -> DriftReport:
        """The drift of every row counted so far (see :meth:`predictlib.Model.drift`)."""
        with self._lock:
            self._flush()
            return self._reader.report(self._counts, thresholds)

    def state(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict (see ``docs/monitoring.md``)."""
        with self._lock:
            self._flush()
            body = self._counts.state(self._reader.profile)
        return {
            "format": MONITOR_FORMAT,
            "format_version": MONITOR_FORMAT_VERSION,
            "model": {
                "name": self.model.name,
                "version": self.model.version,
                "profile_sha256": self._reader.sha256,
            },
            **body,
        }

    def to_json(self) -> str:
        """:meth:`state` as JSON text (deterministic: equal counts give equal text)."""
        return json.dumps(self.state(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, model: Model, state: str | bytes | Mapping[str, Any]) -> Monitor:
        """A monitor of ``model`` holding a state written by :meth:`to_json`."""
        monitor = cls(model)
        monitor.merge(state)
        return monitor

    def merge(self, other: Monitor | str | bytes | Mapping[str, Any]) -> Monitor:
        """Add another monitor's counts (a Monitor, or its :meth:`to_json` / :meth:`state`)
        of the same model (name, version and profile); returns this monitor."""
        state = other.state() if isinstance(other, Monitor) else other
        if isinstance(state, (str, bytes)):
            try:
                state = json.loads(state)
            except json.JSONDecodeError as exc:
                raise PredictlibError(f"the monitor state is not valid JSON ({exc})") from None
        if not isinstance(state, Mapping) or state.get("format") != MONITOR_FORMAT:
            raise PredictlibError(f"not a {MONITOR_FORMAT} state")
        if state.get("format_version") != MONITOR_FORMAT_VERSION:
            raise PredictlibError(
                f"monitor state format {state.get('format_version')!r}: this runtime reads {MONITOR_FORMAT_VERSION}"
            )
        mine = {"name": self.model.name, "version": self.model.version, "profile_sha256": self._reader.sha256}
        theirs = dict(state.get("model") or {})
        if theirs != mine:
            raise PredictlibError(
                f"cannot merge a monitor state of {theirs.get('name')} {theirs.get('version')} (profile "
                f"{str(theirs.get('profile_sha256'))[:12]}) into one of {mine['name']} {mine['version']} "
                f"(profile {mine['profile_sha256'][:12]}): states merge for the same model only"
            )
        try:
            counts = _Counts.from_state(self._reader.profile, state)
        except (KeyError, TypeError, ValueError) as exc:
            raise PredictlibError(f"the monitor state is malformed ({exc})") from None
        with self._lock:
            self._counts.add(counts)
        return self

    def reset(self) -> None:
        """Forget every count (e.g. after shipping the state elsewhere)."""
        with self._lock:
            self._buffer = []
            self._records = []
            self._buffered = 0
            self._counts = _Counts(self._reader.profile)


def _values_of(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """record -> the tuple of its values for ``columns``."""
    if not columns:
        return lambda record: ()
    if len(columns) == 1:
        column = columns[0]
        return lambda record: (record[column],)
    get: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*columns)
    return get
