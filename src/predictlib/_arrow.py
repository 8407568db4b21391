"""pyarrow Tables and RecordBatches (chunked or not) as the graph's grouped inputs,
column by column without a Python loop over the values where the column's arrow type
says what every value is:

* numeric columns of integer or floating-point types: each chunk read as numpy
  (zero-copy when it has no nulls), nulls as NaN, written once into ``num``;
* categorical columns of ``string``, ``large_string``, ``string_view`` or dictionary
  types: category ids by ``pyarrow.compute.index_in`` against the vocabulary
  (dictionary columns: the dictionary's ids, then taken by the indices), nulls as the
  missing category; models without ids get the texts;
* datetime columns of naive ``timestamp`` and ``date`` types as nanoseconds;
* an all-null column (``null`` type) as missing values.

Any other type (a number in a categorical column, text or bool in a numeric one, an
aware timestamp, nested values) takes the value-by-value path of
:class:`~predictlib._inputs.InputAdapter`, which names each refused value exactly
as for every other input kind. pyarrow is imported only when the caller passes
pyarrow objects.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ._errors import NO_VALUE, InputError, Problem
from ._inputs import NAT, Adapted, InputAdapter

#: arrow types read as float64 without a Python loop (nulls become NaN)
_NUMBER = re.compile(r"^(u?int(8|16|32|64)|half_float|float|double)$")
#: arrow types holding text
_TEXT = frozenset({"string", "large_string", "string_view"})
#: naive timestamps and dates: an aware timestamp's to_numpy() is its UTC time
#: without the zone, so those take the value-by-value path (and are refused)
_DATETIME = re.compile(r"^(timestamp\[(s|ms|us|ns)\]|date32\[day\]|date64\[ms\])$")


def is_arrow(data: Any) -> bool:
    """A pyarrow Table or RecordBatch (pyarrow itself is not imported)."""
    return type(data).__module__.startswith("pyarrow") and hasattr(data, "column_names")


def _chunks(values: Any) -> list[Any]:
    """The arrays of a column: a ChunkedArray's chunks (none for 0 rows), or the array itself."""
    chunks = getattr(values, "chunks", None)
    return [values] if chunks is None else list(chunks)


def adapt_arrow(adapter: InputAdapter, table: Any) -> Adapted:
    """A pyarrow Table or RecordBatch as ``(num, cat, value_at, problems, dt)``."""
    names = set(table.column_names)
    missing_cols = [c for c in adapter.columns if c not in names]
    if missing_cols:
        raise InputError([Problem(None, c, NO_VALUE, "required column is missing") for c in missing_cols])
    n = table.num_rows
    problems: list[Problem] = []
    # column-major: each column is written once, contiguously; onnxruntime copies each
    # run's rows into place (in the CPU caches)
    num = np.empty((len(adapter.numeric), n), dtype=np.float64).T
    for j, column in enumerate(adapter.numeric):
        _numbers(adapter, table.column(column), column, num[:, j], problems)
    cat = np.empty((len(adapter.categorical), n), dtype=object if adapter.ids is None else np.int64).T
    for j, column in enumerate(adapter.categorical):
        cat[:, j] = _categories(adapter, table.column(column), column, problems)
    dt = np.empty((n, len(adapter.datetime)), dtype=np.int64)
    for j, column in enumerate(adapter.datetime):
        values = table.column(column)
        if str(values.type) == "null":
            dt[:, j] = NAT
        elif _DATETIME.match(str(values.type)):
            dt[:, j] = adapter.datetime_column(
                np.asarray(values.to_numpy(zero_copy_only=False)), column, problems
            )
        else:
            dt[:, j] = adapter.datetime_column(values.to_pylist(), column, problems)
    if adapter.ids is not None:
        cat = np.ascontiguousarray(cat)

    def value_at(row: int, column: str) -> Any:
        return table.column(column)[row].as_py()

    return Adapted(num, cat, value_at, problems, dt)


def _numbers(
    adapter: InputAdapter, values: Any, column: str, out: np.ndarray, problems: list[Problem]
) -> None:
    kind = str(values.type)
    if kind == "null":
        out[:] = np.nan
        return
    if not _NUMBER.match(kind):
        out[:] = [adapter.number(v, i, column, problems) for i, v in enumerate(values.to_pylist())]
        return
    start = 0
    for chunk in _chunks(values):
        size = len(chunk)
        # zero-copy for a chunk without nulls; with nulls, pyarrow gives floats with NaN
        out[start : start + size] = chunk.to_numpy(zero_copy_only=False)
        start += size


def _categories(adapter: InputAdapter, values: Any, column: str, problems: list[Problem]) -> np.ndarray:
    """A categorical column as ids (or texts for a model without ids)."""
    kind = values.type
    text = str(kind) in _TEXT
    dictionary = str(kind).startswith("dictionary<") and str(kind.value_type) in _TEXT
    if str(kind) == "null":
        n = len(values)
        if adapter.ids is None:
            return np.full(n, adapter.missing, dtype=object)
        return np.full(n, adapter.ids.missing, dtype=np.int64)
    if (text or dictionary) and adapter.ids is not None:
        ids = _ids(adapter, values) if text else _dictionary_ids(adapter, values)
        if ids is not None:
            return ids
    elif text or dictionary:
        texts = _texts(adapter, values)
        if texts is not None:
            return texts
    # another type, or the reserved missing-value text: value by value, naming problems
    found = np.empty(len(values), dtype=object)
    found[:] = [adapter.category(v, i, column, problems) for i, v in enumerate(values.to_pylist())]
    if adapter.ids is None:
        return found
    ids, _bad = adapter.ids.column(found)  # arrow text is valid UTF-8: never bad
    return ids


def _ids(adapter: InputAdapter, values: Any) -> np.ndarray | None:
    assert adapter.ids is not None
    if str(values.type) == "string_view":  # index_in has no string_view kernel
        import pyarrow as pa

        values = values.cast(pa.large_string())
    return adapter.ids.arrow_column(values)


def _dictionary_ids(adapter: InputAdapter, values: Any) -> np.ndarray | None:
    """A dictionary column's ids: the dictionary looked up once, then taken by the
    indices (nulls, in the indices or in the dictionary, are the missing category). A
    column of many chunks gets one dictionary first (``unify_dictionaries``): a lookup
    per chunk would cost more than the rows."""
    import pyarrow as pa

    assert adapter.ids is not None
    chunks = _chunks(values)
    if not chunks:
        return np.empty(0, dtype=np.int64)
    if len(chunks) > 1:
        chunks = values.unify_dictionaries().chunks
    lookup = _ids(adapter, chunks[0].dictionary)
    if lookup is None:  # the dictionary holds the reserved text: a row may use it
        return None
    indices = pa.chunked_array([c.indices for c in chunks], type=chunks[0].indices.type)
    if indices.null_count:  # a null index: the entry after the dictionary's, missing
        lookup = np.append(lookup, adapter.ids.missing)
        indices = indices.fill_null(len(lookup) - 1)
    found: np.ndarray = lookup[indices.to_numpy()]
    return found


def _texts(adapter: InputAdapter, values: Any) -> np.ndarray | None:
    """A text column as an object array of str (nulls as the missing sentinel), for a
    model taking texts; None when a value is the reserved sentinel."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if str(values.type).startswith("dictionary<"):
        values = values.cast(values.type.value_type)
    if str(values.type) == "string_view":
        values = values.cast(pa.large_string())
    if pc.any(pc.equal(values, adapter.missing)).as_py():
        return None
    filled = values.fill_null(adapter.missing) if values.null_count else values
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=object)
