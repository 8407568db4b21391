"""Property-test harness for the frame converters.

* hypothesis strategies for the data frames feature-engine transformers see: numeric
  columns (float64 or int64, with NaN, +-inf, 0, negatives, huge and tiny values) and
  categorical columns (pandas ``str`` or ``object`` dtype, skewed label frequencies so
  rare labels exist, missing values as ``None`` / NaN), as a fit frame and a separate
  transform frame (unseen labels, missing values in columns that had none at fit,
  extreme numbers);
* :func:`check_equivalent`: export a fitted transformer (or pipeline of transformers),
  run the graph with onnxruntime and compare it row by row with the original
  ``transform``: the original raises on a row <=> the graph's ``refusals`` flag it;
  otherwise the outputs are equal (numbers within :mod:`predictlib.build.tolerances`);
* datetime columns (:func:`datetimes`, :func:`datetime_frames`): naive ``datetime64``
  columns of any unit over the whole int64-nanosecond range, calendar edge cases and NaT;
  the graph gets them as int64 nanoseconds (``dt``) and may output them (``dt_out``);
* :func:`covers`: the coverage registry that ``test_converter_coverage.py`` checks
  against :func:`conversion.registered_frame_converters`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, reject, settings
from hypothesis import strategies as st

from predictlib.build import (
    infer_columns,
)
from predictlib.build.testing import (  # noqa: F401 - the harness re-exports the public helpers
    Outcome,
    check_declared_ops,
    check_equivalent,
    export_error,
    graph_inputs,
    is_missing,
    quietly,
    run_graph,
)

# --------------------------------------------------------------------------- settings


def converter_settings(max_examples: int = 40) -> settings:
    """Deterministic, deadline-free hypothesis settings for converter property tests."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ------------------------------------------------------------------- coverage registry

#: transformer class -> the property tests that cover it ("module.function")
COVERAGE: dict[type, list[str]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def covers(*transformer_classes: type) -> Callable[[F], F]:
    """Mark a property test as covering the converters of ``transformer_classes``."""
    if not transformer_classes:
        raise TypeError("covers() needs at least one transformer class")

    def mark(test: F) -> F:
        for cls in transformer_classes:
            COVERAGE.setdefault(cls, []).append(f"{test.__module__}.{test.__name__}")
        return test

    return mark


def uncovered(registered: Sequence[type], coverage: dict[type, list[str]] | None = None) -> list[str]:
    """The names of the classes of ``registered`` that no :func:`covers` test covers."""
    coverage = COVERAGE if coverage is None else coverage
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in registered if not coverage.get(cls)]


# ------------------------------------------------------------------------- strategies

#: numbers every numeric strategy draws often: signs, zeros, extremes, subnormals
SPECIAL_NUMBERS = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-300,
    -1e-300,
    5e-324,
    1e300,
    -1e300,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    1e15,
    -1e15,
    2.0**53 + 1,
)

#: fit labels (none of them, alone or together, parses as a date or as a number only:
#: feature-engine would not see such a column as categorical); "Rare" and "Missing"
#: collide with the default replace / fill values on purpose
LABELS = ("a", "b", "c", "dd", "Rare", "Missing", "ü", "x y", "1", "ee", "f", "g")
#: labels never used at fit (case and whitespace variants of fit labels included)
UNSEEN_LABELS = ("zz", "unseen", "A", "a ", "Ü", "other")


def numbers(*, missing: bool = True, infinite: bool = True) -> st.SearchStrategy[float]:
    """Any float64 value: specials, arbitrary finite floats, integers; NaN / +-inf if asked."""
    parts: list[st.SearchStrategy[float]] = [
        st.sampled_from(SPECIAL_NUMBERS),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-1_000_000, 1_000_000).map(float),
    ]
    if missing:
        parts.append(st.just(math.nan))
    if infinite:
        parts.append(st.sampled_from((math.inf, -math.inf)))
    return st.one_of(*parts)


#: finite values of every magnitude
FINITE = numbers(missing=False, infinite=False)


def positive_numbers() -> st.SearchStrategy[float]:
    """Finite numbers > 0, from subnormals to the largest float."""
    return st.one_of(
        st.sampled_from((5e-324, 1e-300, 1e-10, 0.5, 1.0, 10.0, 1e15, 1e300, 1.7976931348623157e308)),
        st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False),
        st.integers(1, 1_000_000).map(float),
    )


def discrete_numbers() -> st.SearchStrategy[float]:
    """A few repeated values: numeric columns with a clear mode."""
    return st.sampled_from((0.0, 1.0, -2.5, 1e300))


@dataclass
class Frames:
    """A fit frame and a transform frame with the same columns."""

    fit: pd.DataFrame
    transform: pd.DataFrame

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in infer_columns(self.fit) if c.kind == "num"]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in infer_columns(self.fit) if c.kind == "str"]

    @property
    def datetime(self) -> list[str]:
        return [c.name for c in infer_columns(self.fit) if c.kind == "dt"]


#: the default values of int64 columns at fit
FIT_INTEGERS = st.integers(-1000, 1000)


def _skewed_index(draw: Any, k: int) -> int:
    """An index in [0, k) with P(i) ~ 2^-(i+1): label 0 frequent, the last ones rare."""
    u = draw(st.integers(1, 2**k - 1))
    return k - u.bit_length()


def _missing_cells(draw: Any, rows: int, mode: str) -> list[bool]:
    """Which cells of a column are missing; ``mode``: "none", "some" (at least one present) or "any"."""
    if mode == "none" or not draw(st.booleans()):
        return [False] * rows
    cells = draw(st.lists(st.integers(0, 3).map(lambda v: v == 0), min_size=rows, max_size=rows))
    if mode == "some" and all(cells):
        cells[draw(st.integers(0, rows - 1))] = False
    return cells


def _numeric_series(values: Sequence[float], integer: bool) -> pd.Series:
    if integer and all(math.isfinite(v) and v == int(v) and abs(v) < 2**53 for v in values):
        return pd.Series([int(v) for v in values], dtype="int64")
    return pd.Series(list(values), dtype="float64")


@st.composite
def frames(
    draw: Any,
    *,
    numeric: tuple[int, int] = (0, 3),
    categorical: tuple[int, int] = (0, 3),
    fit_rows: tuple[int, int] = (2, 40),
    transform_rows: tuple[int, int] = (1, 12),
    fit_numbers: st.SearchStrategy[float] | None = None,
    fit_integers: st.SearchStrategy[int] | None = FIT_INTEGERS,
    fit_missing: str = "any",
    cat_dtypes: Sequence[str] = ("str", "object"),
    missing_markers: Sequence[Any] = (None, math.nan),
) -> Frames:
    """A fit and a transform frame with the same columns, in an interleaved order.

    ``numeric`` / ``categorical``: how many columns of each kind (at least one column in
    all); ``fit_numbers``: the values of float64 columns at fit (default :func:`numbers`,
    with NaN only when ``fit_missing="any"``);
    ``fit_integers``: the values of int64 columns at fit (``None``: no int64 column);
    ``fit_missing``: missing values at fit, "none", "some" (never a whole column) or
    "any"; ``missing_markers``: how ``object`` columns spell a missing value (a ``str``
    column holds NaN whatever the marker). The transform frame has the fit values and
    any number, fit labels (frequent and rare), unseen labels and missing values.
    """
    if fit_missing not in ("none", "some", "any"):
        raise ValueError(f"fit_missing={fit_missing!r}")
    n_num = draw(st.integers(*numeric))
    n_cat = draw(st.integers(*categorical))
    if n_num + n_cat == 0:
        n_num, n_cat = (1, 0) if numeric[1] > 0 else (0, 1)
    n_fit = draw(st.integers(*fit_rows))
    n_tr = draw(st.integers(*transform_rows))
    if fit_numbers is None:
        fit_numbers = numbers(missing=fit_missing == "any")
    any_number = numbers()
    fit_cols: dict[str, pd.Series] = {}
    tr_cols: dict[str, pd.Series] = {}

    for j in range(n_num):
        name = f"n{j}"
        integer = fit_integers is not None and draw(st.booleans())
        if integer:
            assert fit_integers is not None
            fit_values = [float(v) for v in draw(st.lists(fit_integers, min_size=n_fit, max_size=n_fit))]
            tr_strategy = st.one_of(st.sampled_from(fit_values), any_number, fit_integers.map(float))
        else:
            fit_values = draw(st.lists(fit_numbers, min_size=n_fit, max_size=n_fit))
            missing = _missing_cells(draw, n_fit, fit_missing)
            fit_values = [math.nan if m else v for v, m in zip(fit_values, missing, strict=True)]
            tr_strategy = st.one_of(st.sampled_from(fit_values), any_number)
        fit_cols[name] = _numeric_series(fit_values, integer)
        # an int64 column stays int64 at transform when its values allow it
        tr_values = draw(st.lists(tr_strategy, min_size=n_tr, max_size=n_tr))
        tr_cols[name] = _numeric_series(tr_values, integer)

    for j in range(n_cat):
        name = f"c{j}"
        dtype = draw(st.sampled_from(list(cat_dtypes)))
        k = draw(st.integers(1, 6))
        labels = draw(st.permutations(LABELS))[:k]
        marker = st.sampled_from(list(missing_markers))
        missing = _missing_cells(draw, n_fit, fit_missing)
        fit_values = [draw(marker) if m else labels[_skewed_index(draw, k)] for m in missing]
        fit_cols[name] = pd.Series(fit_values, dtype=dtype)
        tr_values = []
        for _ in range(n_tr):
            kind = draw(st.integers(0, 5))
            if kind <= 2:
                tr_values.append(labels[_skewed_index(draw, k)])
            elif kind == 3:
                tr_values.append(draw(st.sampled_from(LABELS + UNSEEN_LABELS)))
            elif kind == 4:
                tr_values.append(draw(st.sampled_from(UNSEEN_LABELS)))
            else:
                tr_values.append(draw(marker))
        tr_cols[name] = pd.Series(tr_values, dtype=dtype)

    order = draw(st.permutations(list(fit_cols)))
    fit = pd.DataFrame({c: fit_cols[c] for c in order})
    transform = pd.DataFrame({c: tr_cols[c] for c in order})
    return Frames(fit, transform)


#: the int64 nanosecond range of datetime64[ns] (the int64 minimum is NaT)
from predictlib.build.core.frame import NAT as NAT_NS  # noqa: E402
from predictlib.build.core.frame import NS_MAX, NS_MIN  # noqa: E402

_DAY_NS = 86_400 * 10**9

#: calendar edge cases: epoch and around it, leap days, month / quarter / year ends and
#: starts, ISO weeks 53 / 1 around new year, centuries (1700, 1800, 1900 are not leap
#: years, 2000 is), the first and last datetime64[ns] values
SPECIAL_DATETIMES = tuple(
    int(np.datetime64(text, "ns").astype(np.int64))
    for text in (
        "1970-01-01T00:00:00",
        "1969-12-31T23:59:59.999999999",
        "1970-01-01T00:00:00.000000001",
        "2000-02-29T12:00:00",
        "1900-02-28T23:59:59",
        "1900-03-01",
        "2100-02-28",
        "1800-12-31T23:59:59.5",
        "1700-03-01",
        "2020-12-31T23:59:59",
        "2021-01-03",
        "2021-01-04",
        "1993-01-02T08:00:00",
        "2049-01-01",
        "1999-01-01",
        "2004-12-31T23:00:00",
        "2015-12-31",
        "2016-01-03",
        "2008-12-29",
        "2010-01-03",
        "2026-03-31",
        "2026-06-30T06:30:00",
        "2026-09-30",
        "2026-10-01",
        "1677-09-21T00:12:43.145224193",
        "1677-09-21T23:59:59",
        "2262-04-11T23:47:16.854775807",
        "2262-04-11",
    )
)


def _year(ns: int) -> int:
    return int(np.datetime64(ns, "ns").astype("datetime64[Y]").astype(np.int64)) + 1970


def datetimes(*, missing: bool = True, low: int = NS_MIN, high: int = NS_MAX) -> st.SearchStrategy[int]:
    """Naive datetimes as int64 nanoseconds since the epoch (``low`` to ``high``):
    calendar edge cases, days around the start of a month (month / quarter / year ends,
    ISO weeks 52 / 53 / 1, leap days), whole seconds and days, any nanosecond; NaT
    (:data:`NAT_NS`) when ``missing``."""
    near_month_start = st.builds(
        lambda year, month, days, ns: (
            int(np.datetime64(f"{year:04d}-{month:02d}-01", "ns").astype(np.int64)) + days * _DAY_NS + ns
        ),
        st.integers(max(1678, _year(low) + 1), min(2261, _year(high) - 1)),
        st.integers(1, 12),
        st.integers(-4, 3),
        st.integers(0, _DAY_NS - 1),
    ).filter(lambda v: low <= v <= high)
    parts: list[st.SearchStrategy[int]] = [
        st.sampled_from([v for v in SPECIAL_DATETIMES if low <= v <= high] or [low]),
        near_month_start,
        st.integers(low, high),
        st.integers(low // _DAY_NS + 1, high // _DAY_NS).map(lambda d: d * _DAY_NS),
        st.integers(low // 10**9 + 1, high // 10**9).map(lambda s: s * 10**9),
    ]
    if missing:
        parts.append(st.just(NAT_NS))
    return st.one_of(*parts)


#: a missing datetime as int64 (numpy's NaT)


def datetime_series(values: Sequence[int], unit: str = "ns") -> pd.Series:
    """A naive ``datetime64[unit]`` Series of int64 nanoseconds (NaT = :data:`NAT_NS`),
    each value floored to ``unit`` (pandas' conversion)."""
    series = pd.Series(np.array(list(values), dtype=np.int64).view("datetime64[ns]"))
    return series if unit == "ns" else series.astype(f"datetime64[{unit}]")


def unit_low(unit: str, low: int = NS_MIN) -> int:
    """The least nanosecond value >= ``low`` whose floor to ``unit`` is still in the
    datetime64[ns] range (the graph's ``dt`` input holds nanoseconds)."""
    step = int(np.timedelta64(1, unit).astype("timedelta64[ns]").astype(np.int64))
    return max(low, -(-NS_MIN // step) * step)


@st.composite
def datetime_frames(
    draw: Any,
    *,
    datetime: tuple[int, int] = (1, 3),
    numeric: tuple[int, int] = (0, 2),
    categorical: tuple[int, int] = (0, 1),
    fit_missing: bool = False,
    units: Sequence[str] = ("ns", "us", "s"),
    low: int = NS_MIN,
    high: int = NS_MAX,
    **frame_options: Any,
) -> Frames:
    """:func:`frames` plus ``datetime`` naive datetime64 columns ``d0``, ``d1``... (of a
    unit drawn from ``units``, values from :func:`datetimes` between ``low`` and
    ``high``), at drawn positions; NaT at fit only if ``fit_missing``; the transform
    frame has the fit values, any datetime and NaT."""
    base = draw(frames(numeric=numeric, categorical=categorical, **frame_options))
    n_dt = draw(st.integers(*datetime))
    fit, transform = base.fit.copy(), base.transform.copy()
    for j in range(n_dt):
        name = f"d{j}"
        unit = draw(st.sampled_from(list(units)))
        lowest = unit_low(unit, low)
        fit_values = draw(
            st.lists(
                datetimes(missing=fit_missing, low=lowest, high=high), min_size=len(fit), max_size=len(fit)
            )
        )
        tr_values = draw(
            st.lists(
                st.one_of(st.sampled_from(fit_values), datetimes(low=lowest, high=high)),
                min_size=len(transform),
                max_size=len(transform),
            )
        )
        position = draw(st.integers(0, len(fit.columns)))
        fit.insert(position, name, datetime_series(fit_values, unit).to_numpy())
        transform.insert(position, name, datetime_series(tr_values, unit).to_numpy())
    return Frames(fit, transform)


def subsets(
    items: Sequence[str], *, min_size: int = 1, max_size: int | None = None
) -> st.SearchStrategy[list[str]]:
    """A sub-list of ``items`` (in a drawn order) of ``min_size`` to ``max_size`` elements."""
    items = list(items)
    top = len(items) if max_size is None else max_size
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=top, unique=True)


def targets(index: pd.Index) -> st.SearchStrategy[pd.Series]:
    """A finite numeric target for ``index`` (for encoders that learn from ``y``)."""
    n = len(index)
    values = st.one_of(st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False))
    return st.lists(values, min_size=n, max_size=n).map(lambda v: pd.Series(v, index=index, name="y"))


def tree_targets(index: pd.Index, regression: bool) -> st.SearchStrategy[pd.Series]:
    """A target for ``index`` a decision tree learns from: :func:`targets` for a regression,
    otherwise class labels (0 / 1, 0 / 1 / 2 or two texts)."""
    if regression:
        return targets(index)
    n = len(index)
    classes = st.sampled_from([[0, 1], [0, 1, 2], ["no", "yes"]])
    labels = classes.flatmap(lambda c: st.lists(st.sampled_from(c), min_size=n, max_size=n))
    return labels.map(lambda v: pd.Series(v, index=index))


# --------------------------------------------------------------------------- fitting


def fit_or_reject(transformer: Any, fit_frame: pd.DataFrame, y: pd.Series | None = None) -> Any:
    """Fit ``transformer``; reject the hypothesis example when feature-engine refuses to fit
    on it (an invalid fit frame is no converter test)."""
    try:
        quietly(lambda: transformer.fit(fit_frame, y))
    except (ValueError, TypeError, KeyError, IndexError):
        reject()
    return transformer


def fit_and_check(
    transformer: Any, fit_frame: pd.DataFrame, transform_frame: pd.DataFrame, y: pd.Series | None = None
) -> Outcome:
    """:func:`fit_or_reject`, then :func:`check_equivalent` on ``transform_frame``."""
    fit_or_reject(transformer, fit_frame, y)
    return check_equivalent(transformer, fit_frame, transform_frame, y)


def check_or_refused(
    transformer: Any,
    fit_frame: pd.DataFrame,
    transform_frame: pd.DataFrame,
    y: pd.Series | None = None,
    *,
    refused: Callable[[Any], bool],
    reasons: Sequence[str],
    step: str = "w",
) -> Outcome | None:
    """:func:`fit_or_reject`; then, for a fit the export refuses (``refused(transformer)``: one
    that creates or keeps no column, say), the export of ``Pipeline([(step, transformer)])``
    fails with a message holding every one of ``reasons``; otherwise :func:`check_equivalent`."""
    from sklearn.pipeline import Pipeline

    fit_or_reject(transformer, fit_frame, y)
    if refused(transformer):
        message = export_error(Pipeline([(step, transformer)]), fit_frame)
        assert all(reason in message for reason in reasons), (reasons, message)
        return None
    return check_equivalent(transformer, fit_frame, transform_frame, y)
