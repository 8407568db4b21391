"""Converters for feature-engine's datetime transformers (``feature_engine.datetime``):
:class:`DatetimeFeatures`, :class:`DatetimeSubtraction` and :class:`DatetimeOrdinal`.

Datetime columns are int64 blocks of nanoseconds since 1970-01-01T00:00:00 (naive
datetimes; numpy's ``datetime64[ns]`` as int64), a missing value being
:data:`predictlib.build.core.frame.NAT` (the int64 minimum, numpy's NaT). They reach the graph
as its third grouped input ``dt`` (see :mod:`predictlib.build.stages.export`).

Calendar fields are computed with integer ONNX operators on a whole block at once:
floor division of the nanoseconds to seconds (exact for negative times), then the
days since 0000-03-01 (always >= 0 in the int64 nanosecond range) and Howard
Hinnant's *civil from days* algorithm for year, month and day. Every field is an
exact integer; the outputs are float64, equal to pandas' values (``NaN`` where pandas
gives NaN for a missing datetime, and feature-engine's own values elsewhere, e.g.
``semester`` 2 and ``weekend`` 1 for NaT).

What the graph cannot reproduce is refused at export (:class:`conversion.ExportError`):

* variables that were *text* at fit: feature-engine parses them with
  ``pandas.to_datetime`` (format inference, ``dayfirst``, ``yearfirst``) at every
  transform, which no graph reproduces exactly; give datetime64 columns instead
  (``format`` / ``dayfirst`` / ``yearfirst`` are then without effect, and so is
  ``utc`` on naive datetimes, which pandas localises to UTC unchanged);
* ``DatetimeFeatures(variables="index")``: the index is not an input of the graph;
* new column names that already exist (feature-engine would overwrite or duplicate
  them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from feature_engine.datetime import DatetimeFeatures, DatetimeOrdinal, DatetimeSubtraction
from feature_engine.datetime._datetime_constants import FEATURES_SUFFIXES

from ...core.frame import (
    DT,
    NUM,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    register_converter,
    step_label,
)

INT64 = 7  # onnx.TensorProto.INT64
DOUBLE = 11  # onnx.TensorProto.DOUBLE
NS_PER_SECOND = 1_000_000_000
SECONDS_PER_DAY = 86_400
#: days from 0000-03-01 (proleptic Gregorian) to 1970-01-01
EPOCH_SHIFT_DAYS = 719_468
#: ``date.toordinal()`` of 1970-01-01
EPOCH_ORDINAL = 719_163
DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DAYS_IN_MONTH_LEAP = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

#: operators of the calendar computation
CALENDAR_OPS = frozenset(
    {"Div", "Mul", "Add", "Sub", "Mod", "Greater", "GreaterOrEqual", "Less", "Equal", "Not", "And", "Or"}
    | {"Cast", "Where", "Gather", "Concat"}
)

#: the value of each feature for a missing datetime (NaT) in feature-engine's output:
#: NaN, a fixed number (comparisons with NaN are False), or None where pandas raises
#: (``astype(int64)`` of NaN / NA) and the row is refused
NAT_VALUE: dict[str, float | None] = {
    "month": np.nan,
    "quarter": np.nan,
    "semester": 2.0,  # np.where(month <= 6, 1, 2)
    "year": np.nan,
    "week": None,  # isocalendar().week.astype(int64) raises on <NA>
    "day_of_week": np.nan,
    "day_of_month": np.nan,
    "day_of_year": np.nan,
    "weekend": 1.0,  # np.where(dayofweek <= 4, 0, 1)
    "month_start": 0.0,
    "month_end": 0.0,
    "quarter_start": 0.0,
    "quarter_end": 0.0,
    "year_start": 0.0,
    "year_end": 0.0,
    "leap_year": 0.0,
    "days_in_month": None,  # days_in_month.astype(int64) raises on NaN
    "hour": np.nan,
    "minute": np.nan,
    "second": np.nan,
}

#: nanoseconds of one ``output_unit`` of DatetimeSubtraction, as feature-engine computes
#: it: ``np.timedelta64(1, unit).astype("timedelta64[ns]")`` (0 for ps, fs and as: the
#: division then gives +-inf, or NaN for a zero difference)
OUTPUT_UNITS = ("D", "Y", "M", "W", "h", "m", "s", "ms", "us", "μs", "ns", "ps", "fs", "as")


def unit_nanoseconds(unit: str) -> int:
    return int(np.timedelta64(1, unit).astype("timedelta64[ns]").astype(np.int64))


def _text_variables_error(model: Any, kinds: dict[str, str], variables: Sequence[str]) -> None:
    wrong = [v for v in variables if kinds[v] != DT]
    if not wrong:
        return
    text = [v for v in wrong if kinds[v] != NUM]
    what = "text (object / string) columns" if text else "numeric columns"
    raise ExportError(
        f"{step_label(model)}: variables {wrong} are {what}, which feature-engine converts with "
        "pandas.to_datetime (format inference, dayfirst, yearfirst) at every transform; that "
        "conversion cannot be reproduced exactly in a graph. Give datetime64 columns: convert "
        "them before fitting (X[col] = pd.to_datetime(X[col], format=...))"
    )


def _check_new_names(model: Any, columns: Sequence[Column], new: Sequence[str]) -> None:
    names = {c.name for c in columns}
    clash = [n for n in new if n in names]
    if clash or len(set(new)) != len(new):
        raise ExportError(
            f"{step_label(model)}: new columns {clash or list(new)} already exist or repeat; "
            "feature-engine would overwrite or duplicate them, which is not exported"
        )


class Calendar:
    """The calendar fields of one int64 nanosecond block, computed on demand (each
    intermediate once). Every field is an int64 tensor of the block's shape."""

    def __init__(self, ctx: StepContext, x: str) -> None:
        self.ctx = ctx
        self.x = x
        self._memo: dict[str, str] = {}
        self._consts: dict[tuple[Any, ...], str] = {}

    # helpers ------------------------------------------------------------------
    def c(self, value: int | Sequence[int]) -> str:
        key = (value,) if isinstance(value, int) else tuple(value)
        if key not in self._consts:
            self._consts[key] = self.ctx.const(value, np.int64)
        return self._consts[key]

    def op(self, op_type: str, *inputs: str | int, **attrs: Any) -> str:
        names = [self.c(i) if isinstance(i, int) else i for i in inputs]
        return self.ctx.node(op_type, names, **attrs)

    def int64(self, flag: str) -> str:
        return self.op("Cast", flag, to=INT64)

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):
            raise AttributeError(field)
        if field not in self._memo:
            compute: Callable[[], str] | None = getattr(type(self), f"_{field}", None)
            if compute is None:
                raise AttributeError(field)
            self._memo[field] = compute(self)
        return self._memo[field]

    # time of day --------------------------------------------------------------
    def _seconds(self) -> str:
        """floor(x / 1e9): Div truncates toward zero; one less where that rounded up."""
        t = self.op("Div", self.x, NS_PER_SECOND)
        up = self.op("Greater", self.op("Mul", t, NS_PER_SECOND), self.x)
        return self.op("Sub", t, self.int64(up))

    def _shifted_seconds(self) -> str:
        """Seconds since 0000-03-01T00:00:00, >= 0 over the whole int64 nanosecond range."""
        return self.op("Add", self.seconds, EPOCH_SHIFT_DAYS * SECONDS_PER_DAY)

    def _days(self) -> str:
        """Days since 0000-03-01."""
        return self.op("Div", self.shifted_seconds, SECONDS_PER_DAY)

    def _second_of_day(self) -> str:
        return self.op("Mod", self.shifted_seconds, SECONDS_PER_DAY)

    def _hour(self) -> str:
        return self.op("Div", self.second_of_day, 3600)

    def _minute(self) -> str:
        return self.op("Mod", self.op("Div", self.second_of_day, 60), 60)

    def _second(self) -> str:
        return self.op("Mod", self.second_of_day, 60)

    # civil from days (H. Hinnant), on days >= 0 since 0000-03-01 ------------------
    def _era(self) -> str:
        return self.op("Div", self.days, 146_097)

    def _day_of_era(self) -> str:
        return self.op("Mod", self.days, 146_097)

    def _year_of_era(self) -> str:
        doe = self.day_of_era
        t = self.op("Sub", doe, self.op("Div", doe, 1460))
        t = self.op("Add", t, self.op("Div", doe, 36_524))
        t = self.op("Sub", t, self.op("Div", doe, 146_096))
        return self.op("Div", t, 365)

    def _march_day_of_year(self) -> str:
        """Day of the year starting on March 1st, 0-based."""
        yoe = self.year_of_era
        start = self.op("Add", self.op("Mul", yoe, 365), self.op("Div", yoe, 4))
        start = self.op("Sub", start, self.op("Div", yoe, 100))
        return self.op("Sub", self.day_of_era, start)

    def _march_month(self) -> str:
        """0 = March ... 11 = February."""
        return self.op("Div", self.op("Add", self.op("Mul", self.march_day_of_year, 5), 2), 153)

    def _january_february(self) -> str:
        return self.op("GreaterOrEqual", self.march_month, 10)

    def _day_of_month(self) -> str:
        mp = self.march_month
        first = self.op("Div", self.op("Add", self.op("Mul", mp, 153), 2), 5)
        return self.op("Add", self.op("Sub", self.march_day_of_year, first), 1)

    def _month(self) -> str:
        shifted = self.op("Add", self.march_month, 3)
        return self.op("Sub", shifted, self.op("Mul", self.int64(self.january_february), 12))

    def _year(self) -> str:
        y = self.op("Add", self.year_of_era, self.op("Mul", self.era, 400))
        return self.op("Add", y, self.int64(self.january_february))

    def is_leap(self, year: str) -> str:
        """Boolean: ``year`` (> 0) is a leap year of the Gregorian calendar."""
        by4 = self.op("Equal", self.op("Mod", year, 4), 0)
        by100 = self.op("Equal", self.op("Mod", year, 100), 0)
        by400 = self.op("Equal", self.op("Mod", year, 400), 0)
        return self.op("Or", self.op("And", by4, self.op("Not", by100)), by400)

    def _leap(self) -> str:
        return self.int64(self.is_leap(self.year))

    def _day_of_year0(self) -> str:
        """Day of the (January-based) year, 0-based."""
        from_march = self.op("Add", self.leap, 59)  # March 1st is day 59 (60 in a leap year)
        offset = self.op("Where", self.january_february, self.c(-306), from_march)
        return self.op("Add", self.march_day_of_year, offset)

    def _day_of_week(self) -> str:
        """Monday = 0 (pandas' dayofweek); 0000-03-01 was a Wednesday."""
        return self.op("Mod", self.op("Add", self.days, 2), 7)

    def _days_in_month(self) -> str:
        table = self.c(DAYS_IN_MONTH + DAYS_IN_MONTH_LEAP)
        index = self.op("Add", self.op("Mul", self.leap, 13), self.month)
        return self.op("Gather", table, index, axis=0)

    def _iso_week(self) -> str:
        """ISO 8601 week: the week of the year of the week's Thursday."""
        thursday = self.op("Add", self.op("Sub", self.day_of_year0, self.day_of_week), 3)
        previous = self.op("Add", self.int64(self.is_leap(self.op("Sub", self.year, 1))), 365)
        current = self.op("Add", self.leap, 365)
        # in the previous year (its length added) or in the next one (this one's removed)
        t = self.op("Where", self.op("Less", thursday, 0), self.op("Add", thursday, previous), thursday)
        next_year = self.op("GreaterOrEqual", thursday, current)
        t = self.op("Where", next_year, self.op("Sub", thursday, current), t)
        return self.op("Add", self.op("Div", t, 7), 1)

    # feature-engine's features ---------------------------------------------------
    def feature(self, name: str) -> str:
        """feature-engine's feature ``name`` (``features_to_extract``) as int64."""
        op, flag = self.op, self.int64
        if name in ("month", "year", "day_of_week", "day_of_month", "hour", "minute", "second"):
            return getattr(self, name)
        if name == "quarter":
            return op("Div", op("Add", self.month, 2), 3)
        if name == "semester":
            return op("Add", flag(op("Greater", self.month, 6)), 1)
        if name == "week":
            return self.iso_week
        if name == "day_of_year":
            return op("Add", self.day_of_year0, 1)
        if name == "weekend":
            return flag(op("GreaterOrEqual", self.day_of_week, 5))
        if name == "month_start":
            return flag(self.first_day)
        if name == "month_end":
            return flag(self.last_day)
        if name == "quarter_start":
            return flag(op("And", self.first_day, op("Equal", op("Mod", self.month, 3), 1)))
        if name == "quarter_end":
            return flag(op("And", self.last_day, op("Equal", op("Mod", self.month, 3), 0)))
        if name == "year_start":
            return flag(op("Equal", self.day_of_year0, 0))
        if name == "year_end":
            return flag(op("And", op("Equal", self.month, 12), op("Equal", self.day_of_month, 31)))
        if name == "leap_year":
            return self.leap
        if name == "days_in_month":
            return self.days_in_month
        raise ExportError(f"internal error: no datetime feature {name!r}")

    def _first_day(self) -> str:
        return self.op("Equal", self.day_of_month, 1)

    def _last_day(self) -> str:
        return self.op("Equal", self.day_of_month, self.days_in_month)

    def _ordinal_days(self) -> str:
        """``Timestamp.toordinal()`` (0001-01-01 is day 1)."""
        return self.op("Add", self.days, EPOCH_ORDINAL - EPOCH_SHIFT_DAYS)


def _fill_missing(ctx: StepContext, values: str, missing: str, fills: Sequence[float], repeat: int) -> str:
    """``values`` ([N, repeat * k], ``repeat`` groups of k columns) with the cells of
    missing datetimes (``missing``: [N, k]) replaced by ``fills`` (one per column)."""
    tiled = missing if repeat == 1 else ctx.node("Concat", [missing] * repeat, axis=1)
    return ctx.node("Where", [tiled, ctx.const([list(fills)]), values])


REFUSE_NAT = "missing value (NaT), the step has missing_values='raise'"


@register_converter
class DatetimeFeaturesConverter(FrameConverter):
    transformer = DatetimeFeatures
    supports = (
        "features_to_extract: every feature (month, quarter, semester, year, week (ISO), day_of_week, "
        "day_of_month, day_of_year, weekend, month_start, month_end, quarter_start, quarter_end, "
        "year_start, year_end, leap_year, days_in_month, hour, minute, second), None and 'all'; "
        "drop_original; missing_values raise / ignore; utc None / True / False; format, dayfirst, "
        "yearfirst (without effect on datetime64 columns); naive datetime64 variables only "
        "(text variables and variables='index' are refused)"
    )
    onnx_ops = CALENDAR_OPS

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        if model.variables == "index":
            raise ExportError(
                f"{step_label(model)}: variables='index' extracts features from the DataFrame's "
                "index, which is not an input of the graph; put the datetimes in a column"
            )
        kinds = {c.name: c.kind for c in columns}
        variables = [str(v) for v in model.variables_]
        _text_variables_error(model, kinds, variables)
        features = list(model.features_to_extract_)
        unknown = [f for f in features if f not in NAT_VALUE]
        if unknown:
            raise ExportError(f"{step_label(model)}: features {unknown} are not exported")
        new = [f"{v}{FEATURES_SUFFIXES[f]}" for v in variables for f in features]
        _check_new_names(model, columns, new)
        kept = [c.name for c in columns if not (model.drop_original and c.name in set(variables))]
        # one block, feature-major (each feature computed for all variables at once)
        block = [Column(f"{v}{FEATURES_SUFFIXES[f]}", NUM) for f in features for v in variables]
        return Plan(variables, [block], kept + new)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = [str(v) for v in model.variables_]
        features = list(model.features_to_extract_)
        x = ctx.gather(variables)
        missing = ctx.is_missing(x, DT)
        if model.missing_values == "raise":
            ctx.refuse_if(variables, missing, REFUSE_NAT)
        else:
            raising = [f for f in features if NAT_VALUE[f] is None]  # week, days_in_month
            if raising:
                ctx.refuse_if(
                    variables,
                    missing,
                    f"missing value (NaT): feature-engine cannot compute the {' / '.join(raising)} of a "
                    "missing datetime (pandas raises when casting it to int64)",
                )
        calendar = Calendar(ctx, x)
        parts = [calendar.feature(f) for f in features]
        values = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, axis=1)
        values = ctx.node("Cast", [values], to=DOUBLE)
        if model.missing_values != "raise":
            fills = [np.nan if NAT_VALUE[f] is None else NAT_VALUE[f] for f in features for _ in variables]
            values = _fill_missing(ctx, values, missing, fills, len(features))
        ctx.node("Identity", [values], ctx.y())


@register_converter
class DatetimeOrdinalConverter(FrameConverter):
    transformer = DatetimeOrdinal
    supports = (
        "start_date None / a date, missing_values raise / ignore, drop_original; "
        "naive datetime64 variables only (text variables are refused)"
    )
    onnx_ops = frozenset({"Equal", "Div", "Mul", "Add", "Sub", "Greater", "Cast", "Where"})

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        kinds = {c.name: c.kind for c in columns}
        variables = [str(v) for v in model.variables_]
        _text_variables_error(model, kinds, variables)
        new = [f"{v}_ordinal" for v in variables]
        _check_new_names(model, columns, new)
        kept = [c.name for c in columns if not (model.drop_original and c.name in set(variables))]
        return Plan(variables, [[Column(n, NUM) for n in new]], kept + new)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables = [str(v) for v in model.variables_]
        x = ctx.gather(variables)
        missing = ctx.is_missing(x, DT)
        if model.missing_values == "raise":
            ctx.refuse_if(variables, missing, REFUSE_NAT)
        calendar = Calendar(ctx, x)
        ordinal = calendar.ordinal_days
        start = getattr(model, "start_date_ordinal_", None)
        if start is not None:
            ordinal = calendar.op("Add", ordinal, 1 - int(start))
        values = ctx.node("Cast", [ordinal], to=DOUBLE)
        if model.missing_values != "raise":
            values = ctx.node("Where", [missing, ctx.const(np.nan), values])
        ctx.node("Identity", [values], ctx.y())


@register_converter
class DatetimeSubtractionConverter(FrameConverter):
    transformer = DatetimeSubtraction
    supports = (
        "output_unit: every value (D, Y, M, W, h, m, s, ms, us, μs, ns, ps, fs, as); "
        "new_variables_names; drop_original; missing_values raise / ignore; utc None / True / False; "
        "format, dayfirst, yearfirst (without effect on datetime64 columns); naive datetime64 "
        "variables and references only (text columns are refused); rows whose difference "
        "overflows int64 nanoseconds (~292 years) are refused, as pandas raises OverflowError"
    )
    onnx_ops = frozenset({"Equal", "Or", "Sub", "Less", "Xor", "And", "Not", "Cast", "Div", "Where"})

    @staticmethod
    def _names(model: Any) -> tuple[list[str], list[str], list[str]]:
        variables = [str(v) for v in model.variables_]
        references = [str(r) for r in model.reference_]
        if model.new_variables_names is not None:
            new = [str(n) for n in model.new_variables_names]
        else:
            new = [f"{v}_sub_{r}" for r in references for v in variables]
        return variables, references, new

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        kinds = {c.name: c.kind for c in columns}
        variables, references, new = self._names(model)
        used = list(dict.fromkeys(variables + references))
        _text_variables_error(model, kinds, used)
        if model.output_unit not in OUTPUT_UNITS:
            raise ExportError(f"{step_label(model)}: output_unit {model.output_unit!r} is not exported")
        if len(new) != len(variables) * len(references):
            raise ExportError(
                f"{step_label(model)}: {len(new)} new names for {len(variables) * len(references)} columns"
            )
        _check_new_names(model, columns, new)
        kept = [c.name for c in columns if not (model.drop_original and c.name in set(used))]
        return Plan(used, [[Column(n, NUM) for n in new]], kept + new)

    def convert(self, ctx: StepContext, model: Any) -> None:
        variables, references, _ = self._names(model)
        used = list(dict.fromkeys(variables + references))
        if model.missing_values == "raise":
            ctx.refuse_if(used, ctx.is_missing(ctx.gather(used), DT), REFUSE_NAT)
        # column j of the output: variables[j % V] - references[j // V]
        a = ctx.gather([v for _ in references for v in variables])
        b = ctx.gather([r for r in references for _ in variables])
        missing = ctx.node("Or", [ctx.is_missing(a, DT), ctx.is_missing(b, DT)])
        diff = ctx.node("Sub", [a, b])  # wraps on overflow; flagged below
        zero = ctx.const(0, np.int64)
        sign_a = ctx.node("Less", [a, zero])
        overflow = ctx.node(
            "And",
            [
                ctx.node("Xor", [sign_a, ctx.node("Less", [b, zero])]),
                ctx.node("Xor", [sign_a, ctx.node("Less", [diff, zero])]),
            ],
        )
        # pandas also refuses a difference equal to the NaT value (the int64 minimum)
        overflow = ctx.node("Or", [overflow, ctx.is_missing(diff, DT)])
        overflow = ctx.node("And", [overflow, ctx.node("Not", [missing])])
        state_columns = [v for _ in references for v in variables]
        ctx.refuse_if(
            state_columns,
            overflow,
            "the datetime difference overflows int64 nanoseconds (about 292 years): pandas raises "
            "OverflowError ('Overflow in int64 addition') on it",
        )
        unit = float(unit_nanoseconds(model.output_unit))
        quotient = ctx.node("Div", [ctx.node("Cast", [diff], to=DOUBLE), ctx.const(unit)])
        ctx.node("Where", [missing, ctx.const(np.nan), quotient], ctx.y())
