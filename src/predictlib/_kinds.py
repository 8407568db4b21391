"""Input kinds: how each kind of caller input enters the runtime, one class per kind
(``docs/inputs.md``). The first kind of :data:`KINDS` whose ``accepts`` is true reads
the input; a new kind is one module with one class, listed here once.

Every kind ends in :class:`~predictlib._inputs.InputAdapter`'s readers (or calls its
``number`` / ``category`` / ``moment`` for values it cannot read in bulk), which hold
the input contract's rules and messages, so every kind refuses a value the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from ._arrow import adapt_arrow, is_arrow
from ._errors import InputError, Problem
from ._inputs import Adapted, InputAdapter
from ._polars import is_polars, polars_to_arrow

#: DataFrames of at most this many rows are adapted as records (see
#: InputAdapter.from_small_frame): pandas' per-column calls cost more than the rows
SMALL_FRAME = 200

WHAT_INPUT = (
    "expected a record (a mapping of column name to value), a list of records, "
    "a pandas DataFrame or a mapping of column name to a sequence of values"
)


class InputKind(Protocol):
    """One kind of input: how to recognise it, convert it once per call, slice it (large
    inputs are read by slices) and read it into the graph's inputs."""

    name: str

    def accepts(self, data: Any) -> bool:
        """Is ``data`` of this kind (tested on the object: its library is never imported)."""

    def prepare(self, adapter: InputAdapter, data: Any) -> Any:
        """``data`` as :meth:`rows`, :meth:`slice` and :meth:`adapt` read it (once per call)."""

    def rows(self, data: Any) -> int:
        """Rows that :meth:`slice` cuts without copying the input (0: never sliced)."""

    def slice(self, data: Any, start: int, stop: int) -> Any:
        """Rows ``start`` to ``stop`` of a prepared input."""

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        """``(num, cat, value_at, problems, dt)`` and whether ``data`` is one record."""


class _Unsliced:
    """Kinds read whole (records): never sliced."""

    def prepare(self, adapter: InputAdapter, data: Any) -> Any:
        return data

    def rows(self, data: Any) -> int:
        return 0

    def slice(self, data: Any, start: int, stop: int) -> Any:
        raise NotImplementedError


def is_column(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "iloc")


class Columns:
    """A mapping of column name -> list, tuple, numpy array or pandas Series."""

    name = "columns"

    def accepts(self, data: Any) -> bool:
        return isinstance(data, Mapping) and bool(data) and all(is_column(v) for v in data.values())

    def prepare(self, adapter: InputAdapter, data: Any) -> Any:
        """The model's columns (the others are never read), when all of them are there:
        otherwise the mapping as it is, whose reading names the missing ones."""
        if all(c in data for c in adapter.columns):
            return {c: data[c] for c in adapter.columns}
        return data

    def rows(self, data: Any) -> int:
        """The columns' common length when every one is a list, a tuple, a one-dimensional
        numpy array or a Series; 0 otherwise (read whole, which names what is wrong)."""
        lengths = set()
        for values in data.values():
            if isinstance(values, np.ndarray) and values.ndim != 1:
                return 0
            lengths.add(len(values))
        return lengths.pop() if len(lengths) == 1 else 0

    def slice(self, data: Any, start: int, stop: int) -> Any:
        return {c: v.iloc[start:stop] if hasattr(v, "iloc") else v[start:stop] for c, v in data.items()}

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        return adapter.from_columns(data), False


class Record(_Unsliced):
    """One record: a mapping of column name -> value."""

    name = "record"

    def accepts(self, data: Any) -> bool:
        return isinstance(data, Mapping)

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        fast = adapter.one(data)
        if fast is not None:

            def value_at(row: int, column: str) -> Any:
                return data.get(column)

            return Adapted(fast.num, fast.cat, value_at, [], fast.dt), True
        return adapter.from_records([data], single=True), True


class Records(_Unsliced):
    """A list or tuple of records."""

    name = "records"

    def accepts(self, data: Any) -> bool:
        return isinstance(data, (list, tuple))

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        return adapter.from_records(data, single=False), False


def is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "iloc")


class Pandas:
    """A pandas DataFrame (numpy, nullable, category and pyarrow-backed dtypes)."""

    name = "pandas DataFrame"

    def accepts(self, data: Any) -> bool:
        return is_dataframe(data)

    def prepare(self, adapter: InputAdapter, data: Any) -> Any:
        return adapter.unique_columns(data)

    def rows(self, data: Any) -> int:
        return len(data)

    def slice(self, data: Any, start: int, stop: int) -> Any:
        return data.iloc[start:stop]

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        data = adapter.unique_columns(data)
        if len(data) <= SMALL_FRAME:
            return adapter.from_small_frame(data), False
        return adapter.from_columns(data), False


class Arrow:
    """A pyarrow Table or RecordBatch (``_arrow.py``)."""

    name = "pyarrow table"

    def accepts(self, data: Any) -> bool:
        return is_arrow(data)

    def prepare(self, adapter: InputAdapter, data: Any) -> Any:
        return data

    def rows(self, data: Any) -> int:
        return int(data.num_rows) if hasattr(data, "slice") else 0

    def slice(self, data: Any, start: int, stop: int) -> Any:
        return data.slice(start, stop - start)

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        return adapt_arrow(adapter, data), False


class Polars(Arrow):
    """A polars DataFrame, read as the Arrow table it shares its buffers with (``_polars.py``)."""

    name = "polars DataFrame"

    def accepts(self, data: Any) -> bool:
        return is_polars(data)

    def prepare(self, adapter: InputAdapter, data: Any) -> Any:
        return polars_to_arrow(data)

    def adapt(self, adapter: InputAdapter, data: Any) -> tuple[Adapted, bool]:
        return super().adapt(adapter, polars_to_arrow(data) if is_polars(data) else data)


#: the input kinds, tried in this order
KINDS: tuple[InputKind, ...] = (Columns(), Record(), Pandas(), Arrow(), Polars(), Records())


def kind_of(data: Any) -> InputKind:
    """The kind reading ``data``; :class:`InputError` for an input of no kind."""
    for kind in KINDS:
        if kind.accepts(data):
            return kind
    raise InputError([Problem(None, None, data, WHAT_INPUT)])
