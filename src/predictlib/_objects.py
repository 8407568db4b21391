"""Object columns (pandas ``object`` dtype, numpy object arrays) as category ids,
without a Python step per cell.

With predictlib's C module (``_speedups.c``; see :mod:`predictlib._native`), every cell
is looked up by its characters in a C table of the vocabulary (``text_ids``): exact
``str`` by their characters, None and NaN as missing. It takes a block of cells at a
time: a reference to each object (with the GIL), the lookups (without it: the other
thread of a batch runs meanwhile, and no object can go away, whatever another thread
does to the column), the references dropped (with the GIL). The cells it leaves (str
subclasses, other missing markers, numbers...) are looked up once per distinct object,
as below. The ids may be written straight into a column of the caller's matrix.

Without the module: a column of Python objects holds pointers. Where a column repeats
the same objects (pandas' CSV reader makes one str object per distinct text of a chunk,
and so do most loaders: pandas 2's default ``object`` columns), the pointers are hashed
as int64 by ``pandas.factorize`` (C, no Python object touched), each distinct object is
looked up once (str: its id; None, NaN, pandas.NA: missing) and the ids are taken by the
codes. The same object always has the same id, so the result is the per-cell lookup's
by construction; a column of distinct objects only costs the factorization more.

Anything but exact ``str`` and plain missing markers (numbers, str subclasses, the
reserved missing-value text, text that is not valid Unicode) sends the column to the
value-by-value path, which names each problem.

A column of mostly distinct objects (e.g. ``astype(object)`` of a pandas 3 ``str``
column, a list of texts) is looked up, without the module, in pandas' C string hash
table of the vocabulary (each text hashed by its UTF-8 bytes in C: cheaper than a dict
lookup, which must hash every fresh str object first); of the cells not found there, the
unseen texts are told from other objects in C too, and those others (missing markers,
numbers...) are looked up once per distinct object as above. Without pandas (or should a
pandas release drop that table) the texts are copied into an arrow string array (when
pyarrow is installed) and looked up with ``index_in``. pandas is never imported here: it
is used only when the caller's process has it already (its objects are being adapted).
"""

from __future__ import annotations

import ctypes
import operator
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ._ids import CategoryIds
from ._inputs import is_missing_scalar
from ._native import speedups

#: columns shorter than this take the per-value path (the factorization's fixed cost)
MIN_ROWS = 512
#: rows whose objects are counted to tell repeated objects from distinct ones
SAMPLE = 1024


def object_ids(
    ids: CategoryIds, missing_text: str, values: Any, into: np.ndarray | None = None
) -> np.ndarray | None:
    """The ids of an object column (a pandas Series or a 1-D numpy object array), or
    None: not such a column, or a value the per-value path must name. Given ``into``
    (int64, one per row, e.g. a column of the caller's matrix), the ids may be written
    there: ``into`` itself is then returned."""
    if hasattr(values, "iloc"):
        if values.dtype != object:
            return None
        values = values.to_numpy()
    if not isinstance(values, np.ndarray) or values.dtype != object or values.ndim != 1:
        return None
    n = len(values)
    if n < MIN_ROWS:
        return None
    values = np.ascontiguousarray(values)
    pd = sys.modules.get("pandas")  # loaded already (never imported here), or None
    lookup = ids.text_lookup()
    if lookup is not None:  # predictlib's C module: every cell by its characters
        return _by_text_table(pd, ids, missing_text, values, lookup, into)
    if pd is not None and len(set(map(id, values[:SAMPLE]))) <= SAMPLE // 4:
        return _by_object(pd, ids, missing_text, values)
    # mostly distinct objects (e.g. ``astype(object)`` of a str column, a list of texts):
    # hashed by their bytes in pandas' C table, or copied by pyarrow and looked up with
    # index_in
    found = None if pd is None else _by_hash_table(pd, ids, missing_text, values)
    return found if found is not None else _by_arrow(ids, values)


def _pointers(values: np.ndarray) -> np.ndarray:
    """A contiguous object array's pointers as int64, read in place (no object touched;
    valid while ``values`` holds its objects)."""
    return np.ctypeslib.as_array((ctypes.c_ssize_t * len(values)).from_address(values.ctypes.data))


def _by_object(pd: Any, ids: CategoryIds, missing_text: str, values: np.ndarray) -> np.ndarray | None:
    """Ids looked up once per distinct object: the column's pointers factorized as int64
    by pandas."""
    n = len(values)
    codes, uniques = pd.factorize(_pointers(values))
    first = np.empty(len(uniques), dtype=np.intp)
    first[codes[::-1]] = np.arange(n - 1, -1, -1, dtype=np.intp)  # each object's first row
    table = _lookup(ids, missing_text, values[first])
    if table is None:
        return None
    found: np.ndarray = table[codes]
    return found


#: cells ``text_ids`` takes per release of the GIL (fewer: more hand-overs of the GIL
#: between threads; more: the objects leave the CPU caches before they are read)
TEXT_BLOCK = 4096


def _by_text_table(
    pd: Any,
    ids: CategoryIds,
    missing_text: str,
    values: np.ndarray,
    lookup: Callable[[np.ndarray, np.ndarray, np.ndarray], int],
    into: np.ndarray | None,
) -> np.ndarray | None:
    """Ids through predictlib's C table of the vocabulary (``lookup``: ``text_ids``, exact
    str by their characters, None and NaN as missing, with the GIL released), written
    into ``into`` when given (no column of ids allocated: its fresh pages would cost a
    fifth of the lookups); the cells it leaves (str subclasses, other missing markers,
    numbers...) looked up once per distinct object. None for a value the per-value path
    must name (the reserved text, text that is not valid Unicode, numbers...)."""
    found = np.empty(len(values), dtype=np.int64) if into is None else into
    left = lookup(values, found, np.empty(TEXT_BLOCK, dtype=np.intp))
    if left < 0:  # the reserved text itself
        return None
    if left:  # (a scan of a column of the matrix costs a fifth of the lookups)
        rest = np.flatnonzero(found < 0)
        rest_values = values[rest]
        others = (
            _lookup(ids, missing_text, rest_values)
            if pd is None
            else _by_object(pd, ids, missing_text, rest_values)
        )
        if others is None:
            return None
        found[rest] = others
    return found


def _by_hash_table(pd: Any, ids: CategoryIds, missing_text: str, values: np.ndarray) -> np.ndarray | None:
    """Ids through pandas' C string hash table of the vocabulary (a text's id as
    ``CategoryIds.column`` gives it, str subclasses by their string value as the per-value
    path reads them); the cells it does not find (missing markers, unseen texts,
    anything else) looked up once per distinct object. None without the table, or for a
    value the per-value path must name (the reserved text, text that is not valid
    Unicode, numbers...)."""
    table = ids.string_table()
    if table is None:
        return None
    try:
        found = np.asarray(table.lookup(values), dtype=np.int64)
    except (UnicodeEncodeError, TypeError, ValueError):  # not valid Unicode; or another pandas
        return None
    if found.shape != values.shape or (found == ids.missing).any():  # the reserved text itself
        return None
    rest = np.flatnonzero(found < 0)
    if len(rest):
        # most often one object: the column's missing marker (pandas shares it)
        pointers = _pointers(values)[rest]
        same = pointers == pointers[0]
        head = _lookup(ids, missing_text, values[rest[:1]])
        if head is None:
            return None
        found[rest[same]] = head[0]
        rest = rest[~same]
    if len(rest):
        # the texts left are unseen ones (valid Unicode: the lookup encoded them; not the
        # reserved text: the table holds it), told from other objects in C
        try:
            _, labels = type(table)(len(rest)).factorize(values[rest])
            is_text = np.asarray(labels, dtype=np.intp) >= 0
        except (TypeError, ValueError):  # another pandas' signature: the general path
            return None
        if is_text.shape != rest.shape:
            return None
        found[rest[is_text]] = ids.unseen
        rest = rest[~is_text]
    if len(rest):
        others = _by_object(pd, ids, missing_text, values[rest])
        if others is None:
            return None
        found[rest] = others
    return found


def _by_arrow(ids: CategoryIds, values: np.ndarray) -> np.ndarray | None:
    """Ids through an arrow string array (pyarrow refuses anything but str and nulls:
    None, NaN, pandas.NA); None without pyarrow or for any other value."""
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:  # the type inferred, not given: given string, pyarrow would take bytes as text
        texts = pa.array(values, from_pandas=True)
    except (pa.ArrowException, UnicodeEncodeError, TypeError, ValueError):
        return None
    if pa.types.is_null(texts.type):
        return np.full(len(values), ids.missing, dtype=np.int64)
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        return None
    return ids.arrow_column(texts)


def _lookup(ids: CategoryIds, missing_text: str, objects: np.ndarray) -> np.ndarray | None:
    """The id of each distinct object, or None when one is not a plain text or missing value."""
    is_text = np.fromiter((type(v) is str for v in objects), dtype=bool, count=len(objects))
    table = np.full(len(objects), ids.missing, dtype=np.int64)
    for v in objects[~is_text]:
        if not is_missing_scalar(v) or isinstance(v, (bool, np.bool_)):
            return None
    texts = objects[is_text]
    if not len(texts):
        return table
    if (texts == missing_text).any():
        return None
    found, bad = ids.column(texts)
    if bad:
        return None
    table[is_text] = found
    return table


#: numeric value types converted by numpy exactly as ``float(value)`` (None is NaN)
_NUMBER_TYPES = frozenset(
    {float, int, type(None), np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8}
    | {np.uint64, np.uint32, np.uint16, np.uint8}
)
_INTS = frozenset({int})
_FLOATS = frozenset({float, int})
#: lists of records at least this long are read column by column
RECORDS_AS_COLUMNS = 64


def plain_numbers(values: Any) -> np.ndarray | None:
    """A list, tuple or object array of plain numbers (and None) as float64 in one numpy
    call; None when a value is anything else (a bool, text, an int beyond float64...),
    for the per-value path to name."""
    if isinstance(values, np.ndarray):
        if values.dtype != object or values.ndim != 1:
            return None
    elif not isinstance(values, (list, tuple)):
        return None
    elif type(values) in (list, tuple) and (module := speedups()) is not None:
        # exactly float, int and None in one C pass (2.7 against numpy's 42 ns a value here)
        out = np.empty(len(values), dtype=np.float64)
        if module.read_numbers(values, out) >= 0:
            return out
    types = set(map(type, values))
    if not types <= _NUMBER_TYPES:
        return None
    try:
        if types == _INTS:  # read as int64 (exact), widened as float() rounds: 30% less time
            return np.fromiter(values, dtype=np.int64, count=len(values)).astype(np.float64)
        if types <= _FLOATS:  # no None: one pass, no shape discovery
            return np.fromiter(values, dtype=np.float64, count=len(values))
    except OverflowError:  # an int beyond int64: numpy's own conversion below
        pass
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64
        return None


def object_array(values: Any) -> Any:
    """A list or tuple as a 1-D object array (elementwise: a value that is itself a
    sequence stays one cell); anything else as it is."""
    if isinstance(values, (list, tuple)):
        return np.fromiter(values, dtype=object, count=len(values))
    return values


def records_as_columns(records: Any, columns: list[str]) -> dict[str, tuple[Any, ...]] | None:
    """A list of plain dicts holding every column, as column -> values (C-level calls:
    one ``itemgetter`` per record, one transposition); None for anything else (a
    record lacking a column, not a dict, a short list): the per-record path names it."""
    if len(records) < RECORDS_AS_COLUMNS or len(columns) < 2 or set(map(type, records)) != {dict}:
        return None
    get = operator.itemgetter(*columns)
    try:
        rows = list(map(get, records))
    except KeyError:
        return None
    return dict(zip(columns, zip(*rows, strict=True), strict=True))
