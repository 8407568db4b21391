"""One plain record -> the lean graph's input, with a reader compiled per model at load.

The lean graph (the manifest's ``lean``, see ``predictlib.build.passes.lean``) takes one
float64 matrix ``x``: the numeric columns, then each categorical cell's index in the
vocabulary. :meth:`RecordReader.fill` writes one record into one row of such a matrix
(the one-row input bound to the session for a single record) with a handful of C-level
calls, everything else precomputed at load: the column order (one ``itemgetter`` per
group), the vocabulary as a dict of text -> index (the index already packed as the 8
bytes of a float64, the missing-value sentinel's for None, so the texts' part of a row is
one ``bytes.join``) and the row's binary layout (one ``struct.pack_into`` straight into
the matrix's buffer). :meth:`RecordReader.fill_block` reads a chunk of a list of records
the same way, column group by column group over the whole chunk: one type check, one ``struct.pack``
of every number, one ``bytes.join`` of every text's index.

It takes only the plain cases, exactly as the checked path (``predictlib._inputs``)
would convert them:

* numbers: ``float``, ``int`` and ``None`` (missing), by their exact type: a bool, a
  numpy scalar, a ``Decimal`` or text take the checked path, which converts or refuses
  them; an int beyond float64 too (``struct`` refuses it);
* categories: a text of the vocabulary (looked up as a dict key, as
  ``CategoryIds.row`` does), ``None``; another text (not the reserved sentinel, valid
  Unicode) is an unseen category, remembered as such up to
  :data:`predictlib._ids.UNSEEN_REMEMBERED` texts; NaN is missing; anything else
  (numbers, the sentinel, lone surrogates, unhashable values) takes the checked path;
* datetimes: converted by the checked path's own :meth:`InputAdapter.moment`, a problem
  sending the record to the checked path.

A record the reader does not take returns None: the caller's checked path builds the
arrays and names every problem. So the input contract is the checked path's, whatever
the reader takes.

When the install carries ``predictlib._speedups`` (compiled from ``_speedups.c`` by the
build when a C compiler is found), the numbers and the known texts are read by its
``read_records``, which takes exactly the records this reader takes at first sight and
stops at any other: the Python reader then takes that record (unseen texts, datetimes
and everything it leaves to the checked path). ``PREDICTLIB_PURE_PYTHON=1`` switches
the compiled reader off.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

from ._errors import Problem
from ._ids import UNSEEN_REMEMBERED, encodable
from ._inputs import InputAdapter, record_getter
from ._native import speedups

_NONE_TYPE = type(None)
_PLAIN_NUMBERS = frozenset({float, int, _NONE_TYPE})
_DICT = frozenset({dict})
_NAN = math.nan
_concatenated = chain.from_iterable


#: ``read_records(records, numeric, texts, index, missing, out, row) -> rows written``
ReadRecords = Callable[
    [Sequence[Any], tuple[str, ...], tuple[str, ...], dict[Any, bytes], bytes, np.ndarray, int], int
]


def c_loop() -> ReadRecords | None:
    """``predictlib._speedups.read_records``, the C loop, when this install carries it
    (see :func:`predictlib._native.speedups`); else None."""
    module = speedups()
    return None if module is None else module.read_records


def _packed(value: float) -> bytes:
    """A float64 as the 8 bytes the matrix holds (native order, as ``struct``'s ``=d``)."""
    return struct.pack("=d", value)


class RecordReader:
    """Built once per model; thread-safe (the only mutable state, the texts remembered as
    unseen, only grows, one dict store at a time)."""

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str],
        vocabulary: Sequence[str],
        missing: str,
        adapter: InputAdapter,
        c_loop: ReadRecords | None = None,
    ) -> None:
        """``c_loop``: the C loop (:func:`c_loop`), or None to read in Python."""
        self.width = len(numeric) + len(categorical)
        self._numeric = record_getter(list(numeric))
        self._numeric_names = tuple(numeric)  # as the C loop takes them (and the texts')
        self.categorical = tuple(categorical)
        self._categories = record_getter(self.categorical)
        self.datetime = list(adapter.datetime)
        self._moments = record_getter(self.datetime)
        self._adapter = adapter
        self.missing_text = missing
        self._missing = _packed(list(vocabulary).index(missing))
        self._unseen = _packed(len(vocabulary))
        #: text -> its index, packed (see :func:`_packed`); None -> the sentinel's; the
        #: sentinel itself is left out (a caller giving it is refused by the checked path)
        self._index: dict[Any, bytes] = {t: _packed(k) for k, t in enumerate(vocabulary) if t != missing}
        self._index[None] = self._missing
        self._remember = len(self._index) + UNSEEN_REMEMBERED
        self._n_numeric = len(numeric)
        #: one row: the numbers, then the texts' indices as one run of bytes
        self._pack_into: Callable[..., None] = struct.Struct(
            f"={len(numeric)}d{8 * len(self.categorical)}s"
        ).pack_into
        self._row_bytes = 8 * self.width
        self._pack_moments: Callable[..., None] = struct.Struct(f"={len(self.datetime)}q").pack_into
        self._moment_bytes = 8 * len(self.datetime)
        self._c_loop = c_loop

        #: ``fill(record, x, dt, row)``: writes the record into row ``row`` of ``x``
        #: (float64 ``[N, width]``, C-contiguous) and of ``dt`` (int64 ``[N, n]``, None for
        #: a model without datetime columns); False (the row's content then undefined)
        #: when the checked path must take the record
        self.fill: Callable[[Mapping[str, Any], np.ndarray, np.ndarray | None, int], bool] = self._compile()

    def buffers(self, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x, dt)`` for ``rows`` records, to :meth:`fill`: ``x`` float64 ``[rows, width]``;
        ``dt`` int64 ``[rows, n]``, None for a model without datetime columns."""
        dt = np.empty((rows, len(self.datetime)), dtype=np.int64) if self.datetime else None
        return np.empty((rows, self.width)), dt

    def read(self, record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None] | None:
        """record -> its :meth:`buffers` of one row, filled, or None: the checked path takes it."""
        x, dt = self.buffers(1)
        return (x, dt) if self.fill(record, x, dt, 0) else None

    def _compile(self) -> Callable[[Mapping[str, Any], np.ndarray, np.ndarray | None, int], bool]:
        """The reader as one closure over its precomputed parts (no attribute lookups)."""
        numeric, categories, texts_ids, pack_into, row_bytes = (
            self._numeric,
            self._categories,
            self._texts_ids,
            self._pack_into,
            self._row_bytes,
        )
        plain, nan = _PLAIN_NUMBERS, _NAN
        moments = self._moments_into if self.datetime else None

        def fill(record: Mapping[str, Any], x: np.ndarray, dt: np.ndarray | None, row: int) -> bool:
            try:
                numbers = numeric(record)
                texts = categories(record)
            except (KeyError, TypeError):
                return False
            if not plain.issuperset(map(type, numbers)):
                return False
            if None in numbers:
                numbers = tuple([nan if v is None else v for v in numbers])
            ids = texts_ids(texts)
            if ids is None:
                return False
            try:
                pack_into(x, row * row_bytes, *numbers, ids)
            except (OverflowError, struct.error):
                return False
            return True if moments is None else moments(record, dt, row)

        read = self._c_loop
        if read is None:
            return fill
        names, text_names, index, missing = self._numeric_names, self.categorical, self._index, self._missing

        def fill_compiled(record: Mapping[str, Any], x: np.ndarray, dt: np.ndarray | None, row: int) -> bool:
            if read((record,), names, text_names, index, missing, x, row):
                return True if moments is None else moments(record, dt, row)
            return fill(record, x, dt, row)

        return fill_compiled

    def fill_block(self, records: Sequence[Any], x: np.ndarray, dt: np.ndarray | None) -> bool:
        """Writes ``records`` (plain dicts) into the first ``len(records)`` rows of ``x``
        and ``dt`` (see :meth:`buffers`), as :meth:`fill` does one by one: each column
        group read over the whole block at once. False (the rows then undefined) when the
        checked path must take one of the records."""
        n = len(records)
        read = self._c_loop
        taken = read is not None and (
            read(records, self._numeric_names, self.categorical, self._index, self._missing, x, 0) == n
        )
        if not (taken or self._fill_block_python(records, x)):
            return False
        if dt is not None:
            for row, record in enumerate(records):
                if not self._moments_into(record, dt, row):
                    return False
        return True

    def _fill_block_python(self, records: Sequence[Any], x: np.ndarray) -> bool:
        n = len(records)
        if not _DICT.issuperset(map(type, records)):
            return False
        try:
            numbers = list(_concatenated(map(self._numeric, records)))
            texts = list(_concatenated(map(self._categories, records)))
        except (KeyError, TypeError):
            return False
        if not _PLAIN_NUMBERS.issuperset(map(type, numbers)):
            return False
        if None in numbers:
            numbers = [_NAN if v is None else v for v in numbers]
        try:
            packed = struct.pack(f"={len(numbers)}d", *numbers)
        except (OverflowError, struct.error):
            return False
        ids = self._texts_ids(texts)
        if ids is None:
            return False
        k = self._n_numeric
        if packed:
            x[:n, :k] = np.frombuffer(packed).reshape(n, k)
        if ids:
            x[:n, k:] = np.frombuffer(ids).reshape(n, self.width - k)
        return True

    def _texts_ids(self, texts: Sequence[Any]) -> bytes | None:
        """Texts -> their indices, packed, one vocabulary lookup each at C level (the
        rest, when one is not a known text, by :meth:`_other_ids`)."""
        index = self._index
        try:
            if len(texts) > 1:
                return b"".join(operator.itemgetter(*texts)(index))
            return b"".join([index[t] for t in texts])
        except (KeyError, TypeError):
            return self._other_ids(texts)
        except Exception:  # noqa: BLE001 - a value whose hash or == raises: the checked path names it
            return None

    def _other_ids(self, texts: Sequence[Any]) -> bytes | None:
        """The packed indices of texts when one is not a known text: unseen texts, NaN
        (missing); None for anything the checked path must name."""
        index = self._index
        ids: list[bytes] = []
        for value in texts:
            if value is None:
                ids.append(self._missing)
                continue
            if type(value) is not str:  # NaN is missing; anything else: the checked path
                if type(value) is float and value != value:
                    ids.append(self._missing)
                    continue
                return None
            known = index.get(value)
            if known is not None:
                ids.append(known)
            else:
                if value == self.missing_text or not encodable(value):
                    return None
                ids.append(self._unseen)
                if len(index) < self._remember:
                    index[value] = self._unseen  # one dict store: thread-safe
        return b"".join(ids)

    def _moments_into(self, record: Mapping[str, Any], dt: np.ndarray | None, row: int) -> bool:
        try:
            values = self._moments(record)
        except (KeyError, TypeError):
            return False
        problems: list[Problem] = []
        moments = [
            self._adapter.moment(v, None, c, problems) for v, c in zip(values, self.datetime, strict=True)
        ]
        if problems or dt is None:
            return False
        self._pack_moments(dt, row * self._moment_bytes, *moments)
        return True
