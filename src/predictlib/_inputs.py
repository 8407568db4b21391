"""Turning what callers have (a record, records, a DataFrame, columns) into the
graph's grouped inputs: ``num`` (float64 [N, n_num], NaN = missing) and ``cat``
(object array of str [N, n_cat], the manifest's sentinel = missing).

Rules (the README's input contract):

* numeric columns take int, float and numpy numbers; None, NaN, pandas NA/NaT are
  missing. bool and text (even "12.5") are refused, as the original pipeline
  refuses text in numeric columns.
* categorical columns take str; None, NaN, pandas NA are missing. Anything else
  (numbers included) is refused: the original would silently treat it as a category
  never seen in training.
* extra columns are ignored, column order does not matter; a missing column is refused.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import _NO_VALUE, InputError, Problem

_ABSENT = object()
_NONE_TYPE = type(None)
#: value types the single-record fast path takes as they are
_PLAIN_NUMBERS = frozenset({float, int, _NONE_TYPE})
_PLAIN_TEXT = frozenset({str, _NONE_TYPE, float})  # float: NaN only
#: ints inside it convert to float64 without overflow (the rest take the checked path)
_INT_RANGE = 2**1023
#: arrow types converted to float64 without a Python loop (nulls become NaN)
_ARROW_NUMBER = re.compile(r"^(u?int(8|16|32|64)|half_float|float|double)$")
ValueAt = Callable[[int, str], Any]
#: the grouped arrays, a way to find a caller's value, and the problems found in the cells
Adapted = tuple[np.ndarray, np.ndarray, ValueAt, list[Problem]]


def _is_missing_scalar(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, np.floating):
        return bool(np.isnan(value))
    # pandas.NA, pandas.NaT, numpy.datetime64('NaT') without importing pandas
    name = type(value).__name__
    return name in ("NAType", "NaTType") or (isinstance(value, np.datetime64) and np.isnat(value))


def _type_name(value: Any) -> str:
    return type(value).__name__


class InputAdapter:
    """Built once per model from its manifest; thread-safe (no mutable state)."""

    def __init__(self, numeric: Sequence[str], categorical: Sequence[str], missing: str) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.columns = [*self.numeric, *self.categorical]
        self.missing = missing
        self._get_numeric = _getter(self.numeric)
        self._get_categorical = _getter(self.categorical)

    # ------------------------------------------------------------------ values
    def number(self, value: Any, row: int | None, column: str, problems: list[Problem]) -> float:
        """A numeric cell as float (NaN when missing); a problem when it is not a number."""
        if isinstance(value, (bool, np.bool_)):
            problems.append(Problem(row, column, value, "expected a number, got a bool"))
            return math.nan
        if isinstance(value, numbers.Real):
            try:
                return float(value)
            except (OverflowError, ValueError):
                problems.append(Problem(row, column, value, "expected a number in the float64 range"))
                return math.nan
        if _is_missing_scalar(value):
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
        if type(value) is str or isinstance(value, str):
            if value == self.missing:
                problems.append(Problem(row, column, value, "this text is reserved to mark missing values"))
            return str(value)
        if _is_missing_scalar(value):
            return self.missing
        problems.append(
            Problem(row, column, value, f"expected a string (a category) or None, got {_type_name(value)}")
        )
        return self.missing

    # ------------------------------------------------------------------ shapes
    def one(self, record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """The fast path for one plain record (floats, ints, str, None, NaN): the two [1, n]
        arrays, or None to send the caller to the checked path (:meth:`from_records`),
        which handles everything else and names the problems."""
        try:
            nums = self._get_numeric(record)
            cats = self._get_categorical(record)
        except (KeyError, TypeError):
            return None
        if not set(map(type, nums)) <= _PLAIN_NUMBERS:
            return None
        cat_types = set(map(type, cats))
        if not cat_types <= _PLAIN_TEXT or self.missing in cats:
            return None
        try:
            num = np.array((nums,), dtype=np.float64)  # None -> NaN
        except OverflowError:  # an int beyond float64
            return None
        if len(cat_types) > 1:  # None or NaN (missing), or a number (refused by the checked path)
            if float in cat_types and any(type(v) is float and v == v for v in cats):
                return None
            cats = tuple(v if type(v) is str else self.missing for v in cats)
        cat = np.array((cats,), dtype=object)
        return num, cat

    def record(
        self, record: Mapping[str, Any], row: int | None, problems: list[Problem]
    ) -> tuple[list[float], list[str]]:
        get = record.get
        num: list[float] = []
        for column in self.numeric:
            value = get(column, _ABSENT)
            if type(value) is float or (type(value) is int and -_INT_RANGE < value < _INT_RANGE):
                num.append(value)
            elif value is _ABSENT:
                problems.append(Problem(row, column, _NO_VALUE, "required column is missing"))
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
                problems.append(Problem(row, column, _NO_VALUE, "required column is missing"))
                cat.append(missing)
            else:
                cat.append(self.category(value, row, column, problems))
        return num, cat

    def from_records(self, records: Sequence[Any], single: bool) -> Adapted:
        problems: list[Problem] = []
        nums: list[list[float]] = []
        cats: list[list[str]] = []
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
                continue
            num, cat = self.record(record, row, problems)
            nums.append(num)
            cats.append(cat)

        def value_at(row: int, column: str) -> Any:
            return records[row].get(column, _NO_VALUE)

        num_array, cat_array = self._arrays(nums, cats, len(records))
        return num_array, cat_array, value_at, problems

    def from_columns(self, columns: Mapping[str, Any]) -> Adapted:
        """A mapping of column name -> sequence / numpy array (or a DataFrame)."""
        problems: list[Problem] = []
        lengths = set()
        missing_cols = [c for c in self.columns if c not in columns]
        if missing_cols:
            raise InputError(
                [Problem(None, c, _NO_VALUE, "required column is missing") for c in missing_cols]
            )
        data = {c: columns[c] for c in self.columns}
        for c, v in data.items():
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
        num = np.empty((n, len(self.numeric)), dtype=np.float64)
        for j, column in enumerate(self.numeric):
            num[:, j] = self._numeric_column(data[column], column, problems)
        cat = np.empty((n, len(self.categorical)), dtype=object)
        for j, column in enumerate(self.categorical):
            cat[:, j] = self._categorical_column(data[column], column, problems)

        def value_at(row: int, column: str) -> Any:
            values = columns[column]
            return values.iloc[row] if hasattr(values, "iloc") else values[row]

        return num, cat, value_at, problems

    def from_arrow(self, table: Any) -> Adapted:
        """A pyarrow Table or RecordBatch (pyarrow is not imported: the object is)."""
        names = set(table.column_names)
        data: dict[str, Any] = {}
        for column in self.columns:
            if column not in names:
                continue  # from_columns names every missing column
            values = table.column(column)
            if _ARROW_NUMBER.match(str(values.type)):
                data[column] = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
            else:
                data[column] = values.to_pylist()
        return self.from_columns(data)

    def _numeric_column(self, values: Any, column: str, problems: list[Problem]) -> np.ndarray:
        fast = _as_float_array(values)
        if fast is not None:
            return fast
        return np.array(
            [self.number(v, i, column, problems) for i, v in enumerate(_to_list(values))], dtype=np.float64
        )

    def _categorical_column(self, values: Any, column: str, problems: list[Problem]) -> np.ndarray:
        fast = _as_string_array(values, self.missing)
        if fast is not None:
            return fast
        out = np.empty(len(values), dtype=object)
        out[:] = [self.category(v, i, column, problems) for i, v in enumerate(_to_list(values))]
        return out

    def _arrays(
        self, nums: list[list[float]], cats: list[list[str]], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        num = np.array(nums, dtype=np.float64).reshape(n, len(self.numeric))
        cat = np.array(cats, dtype=object).reshape(n, len(self.categorical))
        return num, cat


def _getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """record -> the tuple of its values for ``columns`` (KeyError when one is absent)."""
    if not columns:
        return lambda record: ()
    if len(columns) == 1:
        column = columns[0]
        return lambda record: (record[column],)
    return operator.itemgetter(*columns)


def _to_list(values: Any) -> list[Any]:
    if hasattr(values, "tolist") and not hasattr(values, "iloc"):
        return (
            list(values.tolist())
            if getattr(values, "dtype", None) is not None and values.dtype != object
            else list(values)
        )
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
