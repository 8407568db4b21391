"""Turning what callers have (a record, records, a DataFrame, columns) into the
graph's grouped inputs: ``num`` (float64 [N, n_num], NaN = missing), ``cat``
(object array of str [N, n_cat], the manifest's sentinel = missing) and, for models
with datetime columns, ``dt`` (int64 [N, n_dt]: nanoseconds since
1970-01-01T00:00:00, :data:`NAT` = missing).

Rules (the README's input contract):

* numeric columns take int, float and numpy numbers; None, NaN, pandas NA/NaT (and
  numpy's NaT) are missing. bool, text (even "12.5"), numpy datetime64 / timedelta64
  values (whose int64 ticks are not the number meant) and other types are refused, as
  the original pipeline refuses text in numeric columns.
* categorical columns take str; None, NaN, pandas NA are missing. A ``str`` subclass
  (a ``(str, Enum)`` member, ``numpy.str_``...) is its string value
  (``str.__str__(value)``, never ``str(value)``, which an Enum or a subclass may
  change): the original pipeline compares and hashes it as that string. Anything else
  (numbers included) is refused: the original would silently treat it as a category
  never seen in training.
* a masked value (``numpy.ma.masked``, a masked cell of a ``numpy.ma.MaskedArray``
  column) is missing, in every kind of column, as pandas reads masked arrays.
* columns are one-dimensional (a 2-D array given as one column is refused); a
  DataFrame naming one of the model's columns twice is refused (which one is meant?).
* datetime columns take naive ``datetime.datetime`` and pandas ``Timestamp`` (to the
  nanosecond), ``datetime.date`` (midnight, as pandas converts it) and
  ``numpy.datetime64`` of any unit; None, NaN, NaT and pandas NA are missing. Refused:
  text (the original parses it with pandas' format inference, which the graph cannot
  reproduce), numbers, bools, timezone-aware datetimes (the original's calendar fields
  depend on the time zone and on each step's ``utc=``: give the naive local time the
  model was trained on), and datetimes outside the datetime64[ns] range (1677-09-21 to
  2262-04-11), which the ``dt`` input cannot hold.
* extra columns are ignored, column order does not matter; a missing column is refused.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ._errors import NO_VALUE, InputError, Problem
from ._ids import CategoryIds

_ABSENT = object()
_NONE_TYPE = type(None)
#: value types the single-record fast path takes as they are
_PLAIN_NUMBERS = frozenset({float, int, _NONE_TYPE})
_PLAIN_TEXT = frozenset({str, _NONE_TYPE, float})  # float: NaN only
_TEXT_ONLY = {str}
#: ints inside it convert to float64 without overflow (the rest take the checked path)
_INT_RANGE = 2**1023
ValueAt = Callable[[int, str], Any]
#: text that cannot enter a string tensor; the original pipeline fails on it too
#: (pandas cannot store it as a string)
NOT_UNICODE = "text that is not valid Unicode (a lone surrogate), which the original pipeline cannot process"


class Grouped(NamedTuple):
    """The graph's grouped inputs for some rows (see the module docstring)."""

    num: np.ndarray
    cat: np.ndarray
    dt: np.ndarray


class Adapted(NamedTuple):
    """What the adapter made of a caller's rows: the grouped inputs, a way to find the
    caller's value of a cell (for messages), and the problems found in the cells
    (fields in this order: ``dt`` last, where older callers expect it)."""

    num: np.ndarray
    cat: np.ndarray
    value_at: ValueAt
    problems: list[Problem]
    dt: np.ndarray


#: a missing datetime in ``dt``: the int64 minimum (numpy's NaT)
NAT = -(2**63)
#: the datetimes ``dt`` holds: datetime64[ns]'s range
NS_MIN, NS_MAX = NAT + 1, 2**63 - 1
_DATETIME = _dt.datetime
#: the ``dt`` array of one record of a model without datetime columns (never written to)
_NO_DATETIMES = np.empty((1, 0), dtype=np.int64)
_NO_DATETIMES.flags.writeable = False
_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_DAY_NS = 86_400 * 10**9
#: nanoseconds per numpy datetime unit (Y and M are converted to days first);
#: ps, fs and as are finer: their values are floored to the nanosecond
_UNIT_NS = {"W": 7 * _DAY_NS, "D": _DAY_NS, "h": 3_600 * 10**9, "m": 60 * 10**9, "s": 10**9}
_UNIT_NS.update({"ms": 10**6, "us": 10**3, "ns": 1})
_UNIT_FINER = {"ps": 10**3, "fs": 10**6, "as": 10**9}
DATETIME_RANGE = "expected a datetime between 1677-09-21 00:12:43.145224193 and 2262-04-11 23:47:16.854775807"


def is_missing_scalar(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, np.floating):
        return bool(np.isnan(value))
    # pandas.NA, pandas.NaT, numpy.ma.masked, numpy's NaT without importing pandas
    name = type(value).__name__
    return name in _MISSING_TYPES or (isinstance(value, (np.datetime64, np.timedelta64)) and np.isnat(value))


#: the types of pandas.NA, pandas.NaT and numpy.ma.masked (by name: pandas is not imported)
_MISSING_TYPES = ("NAType", "NaTType", "MaskedConstant")


def _type_name(value: Any) -> str:
    return type(value).__name__


def _reason(exc: BaseException) -> str:
    """An exception of a caller's object, for a message (its str may raise too)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(exc).__name__}: {text[:60]}" if text else type(exc).__name__


_NOT_A_NUMBER = (
    "expected a number, got numpy %s (a date or duration: its int64 ticks are not the number "
    "meant; give a number)"
)
#: ``_new(Grouped, (num, cat, dt))`` makes a Grouped at a tuple's cost (the fast path's)
_new = tuple.__new__


_AWARE = (
    "expected a naive datetime (no time zone), as the model was trained on: give the local "
    "time it was trained with (e.g. value.astimezone(zone).replace(tzinfo=None))"
)


def _unit_ns(dtype: Any) -> tuple[int, int]:
    """(multiplier, divisor) turning a datetime64 dtype's int64 values into nanoseconds
    (divisor 0: a unit this does not handle exactly, e.g. ``datetime64[7ps]``)."""
    unit, count = np.datetime_data(dtype)
    if unit in _UNIT_FINER:
        finer = _UNIT_FINER[unit]
        return 1, finer // count if finer % count == 0 else 0
    return _UNIT_NS[unit] * count, 1


def datetime64_ns(value: np.datetime64) -> int | None:
    """A numpy datetime64 (not NaT) as int nanoseconds (floored), None outside the ``dt`` range."""
    if np.datetime_data(value.dtype)[0] in ("Y", "M"):
        value = value.astype("datetime64[D]")
    multiplier, divisor = _unit_ns(value.dtype)
    if divisor == 0:
        value, multiplier, divisor = value.astype("datetime64[as]"), 1, 10**9
    ticks = int(value.astype(np.int64))
    ns = ticks * multiplier if divisor == 1 else ticks // divisor
    return ns if NS_MIN <= ns <= NS_MAX else None


def _naive_ns(value: _dt.datetime) -> int | None:
    """A naive ``datetime.datetime`` as int nanoseconds, None outside the ``dt`` range."""
    delta = value - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return ns if NS_MIN <= ns <= NS_MAX else None


class InputAdapter:
    """Built once per model from its manifest; thread-safe (no mutable state)."""

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str],
        missing: str,
        datetime: Sequence[str] = (),
        ids: CategoryIds | None = None,
    ) -> None:
        #: when given, ``cat`` holds the categories' ids (int64), not their texts
        self.ids = ids
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.datetime = list(datetime)
        self.columns = [*self.numeric, *self.categorical, *self.datetime]
        self.missing = missing
        self._get_numeric = record_getter(self.numeric)
        self._get_categorical = record_getter(self.categorical)
        self._get_datetime = record_getter(self.datetime)

    # ------------------------------------------------------------------ values
    def number(self, value: Any, row: int | None, column: str, problems: list[Problem]) -> float:
        """A numeric cell as float (NaN when missing); a problem when it is not a number."""
        if isinstance(value, (bool, np.bool_)):
            problems.append(Problem(row, column, value, "expected a number, got a bool"))
            return math.nan
        if isinstance(value, (np.datetime64, np.timedelta64)):  # timedelta64 is a numpy integer
            if not np.isnat(value):
                problems.append(Problem(row, column, value, _NOT_A_NUMBER % _type_name(value)))
            return math.nan
        if isinstance(value, numbers.Real):
            try:
                return float(value)
            except (OverflowError, ValueError):
                problems.append(Problem(row, column, value, "expected a number in the float64 range"))
            except Exception as exc:  # noqa: BLE001 - a caller's number type whose __float__ raises
                expected = f"expected a number, got {_type_name(value)} whose float() fails ({_reason(exc)})"
                problems.append(Problem(row, column, value, expected))
            return math.nan
        if is_missing_scalar(value):
            return math.nan
        if isinstance(value, str):
            expected = (
                "expected a number, got text (numbers given as text are refused, as by the original pipeline)"
            )
        else:
            expected = f"expected a number, got {_type_name(value)}"
        problems.append(Problem(row, column, value, expected))
        return math.nan

    def category(self, value: Any, row: int | None, column: str, problems: list[Problem]) -> str:
        """A categorical cell as str (the sentinel when missing)."""
        if isinstance(value, str):
            text = value if type(value) is str else str.__str__(value)  # its string value
            if text == self.missing:
                problems.append(Problem(row, column, value, "this text is reserved to mark missing values"))
            return text
        if is_missing_scalar(value):
            return self.missing
        problems.append(
            Problem(row, column, value, f"expected a string (a category) or None, got {_type_name(value)}")
        )
        return self.missing

    def moment(self, value: Any, row: int | None, column: str, problems: list[Problem]) -> int:
        """A datetime cell as int nanoseconds since the epoch (:data:`NAT` when missing)."""
        ns: int | None
        if isinstance(value, _dt.datetime):
            if type(value).__name__ == "NaTType":  # pandas.NaT is a datetime
                return NAT
            if value.tzinfo is not None:
                problems.append(Problem(row, column, value, _AWARE))
                return NAT
            to_datetime64 = getattr(value, "to_datetime64", None)
            # a pandas Timestamp: to the nanosecond, of any range
            ns = _naive_ns(value) if to_datetime64 is None else datetime64_ns(to_datetime64())
        elif isinstance(value, _dt.date):
            ns = (value - _EPOCH_DATE).days * _DAY_NS
            ns = ns if NS_MIN <= ns <= NS_MAX else None
        elif isinstance(value, np.datetime64):
            if np.isnat(value):
                return NAT
            ns = datetime64_ns(value)
        elif not isinstance(value, (bool, np.bool_)) and is_missing_scalar(value):
            return NAT
        else:
            if isinstance(value, str):
                expected = (
                    "expected a datetime, got text (dates given as text are refused: the original "
                    "parses them with pandas' format inference, which predictlib does not reproduce)"
                )
            elif isinstance(value, (bool, np.bool_)):
                expected = "expected a datetime, got a bool"
            else:
                expected = f"expected a datetime, got {_type_name(value)}"
            problems.append(Problem(row, column, value, expected))
            return NAT
        if ns is None:
            problems.append(Problem(row, column, value, DATETIME_RANGE))
            return NAT
        return ns

    # ------------------------------------------------------------------ shapes
    def one(self, record: Mapping[str, Any]) -> Grouped | None:
        """The fast path for one plain record (floats, ints, str, None, NaN, naive
        ``datetime.datetime``): the three [1, n] arrays, or None to send the caller to the
        checked path (:meth:`from_records`), which handles everything else and names the
        problems."""
        try:
            nums = self._get_numeric(record)
            cats = self._get_categorical(record)
        except (KeyError, TypeError):
            return None
        if not set(map(type, nums)) <= _PLAIN_NUMBERS:
            return None
        try:
            num = np.array((nums,), dtype=np.float64)  # None -> NaN
        except OverflowError:  # an int beyond float64
            return None
        if self.ids is not None:
            cat = self.ids.row(cats)
            if cat is None:  # not a text or missing value: the checked path names it
                return None
        else:
            cat_types = set(map(type, cats))
            if not cat_types <= _PLAIN_TEXT or self.missing in cats:
                return None
            if cat_types != _TEXT_ONLY:  # None or NaN (missing), or a number (refused by the checked path)
                if float in cat_types and any(type(v) is float and v == v for v in cats):
                    return None
                cats = tuple(v if type(v) is str else self.missing for v in cats)
            cat = np.array((cats,), dtype=object)
        if not self.datetime:
            return _new(Grouped, (num, cat, _NO_DATETIMES))
        try:
            values = self._get_datetime(record)
        except (KeyError, TypeError):
            return None
        moments: list[int | None] = []
        for value in values:
            if type(value) is _DATETIME and value.tzinfo is None:
                moments.append(_naive_ns(value))
            elif value is None:
                moments.append(NAT)
            else:
                return None
        if None in moments:  # out of range: the checked path names it
            return None
        return _new(Grouped, (num, cat, np.array((moments,), dtype=np.int64)))

    def record(
        self, record: Mapping[str, Any], row: int | None, problems: list[Problem]
    ) -> tuple[list[float], list[str], list[int]]:
        get = record.get
        num: list[float] = []
        for column in self.numeric:
            value = get(column, _ABSENT)
            if type(value) is float or (type(value) is int and -_INT_RANGE < value < _INT_RANGE):
                num.append(value)
            elif value is _ABSENT:
                problems.append(Problem(row, column, NO_VALUE, "required column is missing"))
                num.append(math.nan)
            else:
                num.append(self.number(value, row, column, problems))
        cat: list[str] = []
        missing = self.missing
        for column in self.categorical:
            value = get(column, _ABSENT)
            if type(value) is str and value != missing:
                cat.append(value)
            elif value is _ABSENT:
                problems.append(Problem(row, column, NO_VALUE, "required column is missing"))
                cat.append(missing)
            else:
                cat.append(self.category(value, row, column, problems))
        moments: list[int] = []
        for column in self.datetime:
            value = get(column, _ABSENT)
            if value is _ABSENT:
                problems.append(Problem(row, column, NO_VALUE, "required column is missing"))
                moments.append(NAT)
            else:
                moments.append(self.moment(value, row, column, problems))
        return num, cat, moments

    def from_records(self, records: Sequence[Any], single: bool) -> Adapted:
        if not single:
            from ._objects import records_as_columns  # many plain dicts: read column by column

            columns = records_as_columns(records, self.columns)
            if columns is not None:
                return self.from_columns(columns)
        problems: list[Problem] = []
        nums: list[list[float]] = []
        cats: list[list[str]] = []
        moments: list[list[int]] = []
        for i, record in enumerate(records):
            row = None if single else i
            if not isinstance(record, Mapping):
                problems.append(
                    Problem(
                        row,
                        None,
                        record,
                        f"expected a mapping of column name to value, got {_type_name(record)}",
                    )
                )
                record = {}  # a placeholder row, never run
                nums.append([math.nan] * len(self.numeric))
                cats.append([self.missing] * len(self.categorical))
                moments.append([NAT] * len(self.datetime))
                continue
            num, cat, moment = self.record(record, row, problems)
            nums.append(num)
            cats.append(cat)
            moments.append(moment)

        def value_at(row: int, column: str) -> Any:
            return records[row].get(column, NO_VALUE)

        num_array, cat_array = self._arrays(nums, cats, len(records))
        if self.ids is not None:  # one lookup pass over every cell
            ids, bad = self.ids.column(cat_array)
            for i, j in (divmod(p, len(self.categorical)) for p in bad):
                problems.append(
                    Problem(None if single else i, self.categorical[j], cat_array[i, j], NOT_UNICODE)
                )
            cat_array = ids
        dt_array = np.array(moments, dtype=np.int64).reshape(len(records), len(self.datetime))
        return Adapted(num_array, cat_array, value_at, problems, dt_array)

    def from_columns(self, columns: Mapping[str, Any]) -> Adapted:
        """A mapping of column name -> sequence / numpy array (or a DataFrame)."""
        problems: list[Problem] = []
        lengths = set()
        missing_cols = [c for c in self.columns if c not in columns]
        if missing_cols:
            raise InputError([Problem(None, c, NO_VALUE, "required column is missing") for c in missing_cols])
        data = {c: _unmasked(columns[c]) for c in self.columns}
        for c, v in data.items():
            shape = getattr(v, "shape", None)
            if isinstance(shape, tuple) and len(shape) != 1:
                expected = f"expected a one-dimensional sequence of values for the column, got shape {shape}"
                raise InputError([Problem(None, c, NO_VALUE, expected)])
            try:
                lengths.add(len(v))
            except TypeError:
                raise InputError(
                    [Problem(None, c, v, "expected a sequence of values for the column")]
                ) from None
        if len(lengths) > 1:
            sizes = {c: len(v) for c, v in data.items()}
            raise InputError([Problem(None, None, sizes, "all columns must have the same length")])
        n = lengths.pop() if lengths else 0
        num = _frame_numbers(columns, self.numeric)
        if num is None:
            num = _assemble(
                [self._numeric_column(data[c], c, problems) for c in self.numeric], n, np.dtype(np.float64)
            )
        cat = np.empty((n, len(self.categorical)), dtype=object if self.ids is None else np.int64)
        # an object column's ids may be written straight into the matrix (``into``): its
        # strided writes cost less than a column of ids allocated, then copied
        into = [cat[:, j] for j in range(len(self.categorical))]
        cat_columns = [
            self._categorical_column(data[c], c, problems, column)
            for c, column in zip(self.categorical, into, strict=True)
        ]
        _assemble_into(cat, [None if a is b else a for a, b in zip(cat_columns, into, strict=True)])
        moments = _assemble(
            [self.datetime_column(data[c], c, problems) for c in self.datetime], n, np.dtype(np.int64)
        )

        def value_at(row: int, column: str) -> Any:
            values = data[column]
            return values.iloc[row] if hasattr(values, "iloc") else values[row]

        return Adapted(num, cat, value_at, problems, moments)

    def unique_columns(self, frame: Any) -> Any:
        """``frame`` (a DataFrame) when its column names are unique; else the frame without
        its duplicated columns, or an :class:`InputError` when one of them is the model's
        (which one would be meant?)."""
        names = frame.columns
        if names.is_unique:
            return frame
        twice = names.duplicated(keep=False)
        duplicated = {name for name, dup in zip(names, twice, strict=True) if dup}
        ours = [c for c in self.columns if c in duplicated]
        if ours:
            raise InputError(
                [
                    Problem(
                        None,
                        c,
                        NO_VALUE,
                        f"the DataFrame has {sum(1 for n in names if n == c)} columns with this name: "
                        "give it once",
                    )
                    for c in ours
                ]
            )
        return frame.loc[:, ~twice]

    def from_small_frame(self, frame: Any) -> Adapted:
        """A DataFrame of a few rows: its cells as records (one conversion for the whole
        frame), which costs far less than pandas' per-column calls of :meth:`from_columns`."""
        positions = frame.columns.get_indexer(self.columns)
        missing_cols = [c for c, at in zip(self.columns, positions, strict=True) if at < 0]
        if missing_cols:
            raise InputError([Problem(None, c, NO_VALUE, "required column is missing") for c in missing_cols])
        cells = frame.to_numpy(dtype=object)[:, positions].tolist()
        columns = self.columns
        return self.from_records([dict(zip(columns, row, strict=True)) for row in cells], single=False)

    def from_arrow(self, table: Any) -> Adapted:
        """A pyarrow Table or RecordBatch (pyarrow is not imported: the object is)."""
        from ._arrow import adapt_arrow

        return adapt_arrow(self, table)

    def _numeric_column(self, values: Any, column: str, problems: list[Problem]) -> np.ndarray:
        fast = _as_float_array(values)
        if fast is None:
            from ._objects import plain_numbers  # a list of plain numbers: one numpy call

            fast = plain_numbers(values)
        if fast is not None:
            return fast
        return np.array(
            [self.number(v, i, column, problems) for i, v in enumerate(_to_list(values))], dtype=np.float64
        )

    def _categorical_column(
        self, values: Any, column: str, problems: list[Problem], into: np.ndarray | None = None
    ) -> np.ndarray:
        """A column as texts, or as ids when the model takes ids: ``into`` itself (a view
        of the caller's matrix) when they were written there."""
        if self.ids is not None:
            arrow = _as_arrow_strings(values)
            if arrow is not None:
                ids = self.ids.arrow_column(arrow)
                if ids is not None:
                    return ids
            from ._objects import object_array, object_ids  # object columns, lists of texts

            ids = object_ids(self.ids, self.missing, object_array(values), into)
            if ids is not None:
                return ids
        texts = _as_string_array(values, self.missing)
        if texts is None:
            texts = np.empty(len(values), dtype=object)
            texts[:] = [self.category(v, i, column, problems) for i, v in enumerate(_to_list(values))]
        if self.ids is None:
            return texts
        ids, bad = self.ids.column(texts)
        problems.extend(Problem(i, column, texts[i], NOT_UNICODE) for i in bad)
        return ids

    def datetime_column(self, values: Any, column: str, problems: list[Problem]) -> np.ndarray:
        fast = _as_datetime_array(values)
        if fast is not None:
            moments, bad = fast
            if bad.any():
                items = _to_list(values)
                problems.extend(
                    Problem(i, column, items[i], DATETIME_RANGE) for i in np.nonzero(bad)[0].tolist()
                )
            return moments
        return np.array(
            [self.moment(v, i, column, problems) for i, v in enumerate(_to_list(values))], dtype=np.int64
        )

    def _arrays(
        self, nums: list[list[float]], cats: list[list[str]], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        num = np.array(nums, dtype=np.float64).reshape(n, len(self.numeric))
        cat = np.array(cats, dtype=object).reshape(n, len(self.categorical))
        return num, cat


#: rows assembled at once from columns (a block of [rows, columns] stays in the CPU caches)
_ASSEMBLE_ROWS = 8192


def _assemble(columns: list[np.ndarray], n: int, dtype: np.dtype[Any]) -> np.ndarray:
    """The ``[n, len(columns)]`` C-ordered array of 1-D ``columns``."""
    return _assemble_into(np.empty((n, len(columns)), dtype=dtype), columns)


def _assemble_into(out: np.ndarray, columns: Sequence[np.ndarray | None]) -> np.ndarray:
    """``out`` (``[n, len(columns)]``, C order) with each 1-D column copied into its place
    (None: in place already), a block of rows at a time: column-by-column writes into a
    large row-major array would miss the cache on every value."""
    given = [(j, values) for j, values in enumerate(columns) if values is not None]
    for start in range(0, len(out), _ASSEMBLE_ROWS):
        block = out[start : start + _ASSEMBLE_ROWS]
        for j, values in given:
            block[:, j] = values[start : start + _ASSEMBLE_ROWS]
    return out


def record_getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """record -> the tuple of its values for ``columns`` (KeyError when one is absent)."""
    if not columns:
        return lambda record: ()
    if len(columns) == 1:
        column = columns[0]
        return lambda record: (record[column],)
    return operator.itemgetter(*columns)


def _unmasked(values: Any) -> Any:
    """A ``numpy.ma.MaskedArray`` column as a plain array whose masked cells are missing
    (NaN, NaT or None, as pandas reads masked arrays); any other column as it is.
    (numpy.ma is not imported here: a caller holding a masked array imported it.)"""
    if type(values) is np.ndarray or not isinstance(values, np.ndarray):
        return values
    if not type(values).__module__.startswith("numpy.ma"):
        return values
    masked: Any = values
    mask = np.asarray(masked.mask).astype(bool)
    data = np.asarray(masked.data)
    if not mask.any():
        return data
    kind = data.dtype.kind
    if kind in "iuf":
        out = data.astype(np.float64)
        out[np.broadcast_to(mask, out.shape)] = np.nan
        return out
    if kind in "mM":
        out = data.copy()
        out[np.broadcast_to(mask, out.shape)] = np.array("NaT", dtype=data.dtype)
        return out
    out = data.astype(object)
    out[np.broadcast_to(mask, out.shape)] = None
    return out


def _to_list(values: Any) -> list[Any]:
    if hasattr(values, "tolist") and not hasattr(values, "iloc"):
        dtype = getattr(values, "dtype", None)
        # datetime64 / timedelta64 arrays: their numpy values, not tolist()'s ints (for ns)
        return list(values.tolist()) if dtype is not None and dtype.kind not in "OmM" else list(values)
    if hasattr(values, "iloc"):
        return list(values.astype(object)) if hasattr(values, "astype") else list(values)
    return list(values)


def _as_float_array(values: Any) -> np.ndarray | None:
    """A float64 copy of a numeric array / Series without Python-level loops, or None."""
    dtype = getattr(values, "dtype", None)
    if dtype is None:
        return None
    kind = getattr(dtype, "kind", None)
    if hasattr(values, "iloc"):  # pandas Series (numpy, nullable or pyarrow-backed)
        if kind in ("i", "u", "f"):
            return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        return None
    if isinstance(values, np.ndarray) and kind in ("i", "u", "f"):
        return values.astype(np.float64)
    return None


def _as_datetime_array(values: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """A naive datetime64 array / Series (any unit) as int64 nanoseconds without Python
    loops, and the mask of the values outside the ``dt`` range; None for other columns."""
    dtype = getattr(values, "dtype", None)
    if getattr(dtype, "kind", None) != "M":  # timezone-aware pandas columns are not "M"
        return None
    if hasattr(values, "iloc"):
        values = values.to_numpy()
    if not isinstance(values, np.ndarray) or values.dtype.kind != "M":
        return None
    if np.datetime_data(values.dtype)[0] in ("Y", "M"):
        values = values.astype("datetime64[D]")
    multiplier, divisor = _unit_ns(values.dtype)
    if divisor == 0:
        return None
    ticks = values.view(np.int64).reshape(-1)
    nat = ticks == NAT
    fine = np.zeros(len(ticks), dtype=bool)
    if divisor != 1:
        return np.where(nat, NAT, np.floor_divide(ticks, divisor)), fine
    if multiplier == 1:
        return ticks.copy(), fine
    low, high = -(-NS_MIN // multiplier), NS_MAX // multiplier
    bad = ~nat & ((ticks < low) | (ticks > high))
    ns = np.where(nat | bad, NAT, np.where(bad, 0, ticks) * multiplier)
    return ns.astype(np.int64), bad


def _frame_numbers(frame: Any, columns: Sequence[str]) -> np.ndarray | None:
    """The numeric columns of a DataFrame whose dtypes are all numbers (numpy, nullable
    or pyarrow-backed; not bool) as one float64 matrix, in one pandas call; None
    otherwise (the per-column path checks each value). The matrix may be column-major:
    onnxruntime copies each run's rows into place, in the caches."""
    if not (hasattr(frame, "iloc") and hasattr(frame, "dtypes")) or not columns:
        return None
    if not frame.columns.is_unique:
        return None
    dtypes = frame.dtypes
    for column in columns:
        kind = getattr(dtypes[column], "kind", None)
        if kind not in ("i", "u", "f"):
            return None
    return np.asarray(frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _as_arrow_strings(values: Any) -> Any:
    """The pyarrow array behind a pandas string column backed by pyarrow (pandas >= 3's
    default ``str`` dtype when pyarrow is installed), or None."""
    if not hasattr(values, "iloc"):
        return None
    dtype = values.dtype
    if getattr(dtype, "storage", None) != "pyarrow" and "pyarrow" not in str(dtype):
        return None
    arrow = getattr(values.array, "__arrow_array__", None)
    if arrow is None:
        return None
    array = arrow()
    return array if str(array.type) in ("string", "large_string", "string_view") else None


def _as_string_array(values: Any, missing: str) -> np.ndarray | None:
    """An object array of str for a pandas string column without Python-level loops, or None."""
    if not hasattr(values, "iloc"):
        return None
    dtype = values.dtype
    if getattr(dtype, "name", "") not in ("str", "string") and not str(dtype).startswith("string"):
        return None
    if bool((values == missing).fillna(False).any()):
        return None  # let the slow path name the reserved value
    return np.asarray(values.to_numpy(dtype=object, na_value=missing), dtype=object)
