"""Category texts -> the int64 ids a fused graph takes (the manifest's
``inputs.category_ids``, see ``predictlib.build.passes.fuse``).

Cell ``[i, j]`` of ``cat_ids`` is the index of the cell's text in the vocabulary (the
missing-value sentinel is one of its entries), ``len(vocabulary)`` for any other text. Mapping here instead of in the graph spares onnxruntime the string
tensor, which costs more than the whole lookup for one record and dominates batches.

Texts that are not valid Unicode (lone surrogates) cannot enter a string tensor, and
the original pipeline cannot process them: they are reported, never mapped.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from itertools import repeat
from typing import Any

import numpy as np

from ._native import speedups

#: how many texts outside the vocabulary :meth:`CategoryIds.row` remembers, at most ...
UNSEEN_REMEMBERED = 4096
#: ... and how much memory they may take, in bytes (``sys.getsizeof`` of the texts): a
#: text that would pass the budget is not remembered (it is mapped all the same)
UNSEEN_REMEMBERED_BYTES = 1 << 20
#: serialises the stores of remembered texts (of every CategoryIds: they are rare)
_REMEMBER_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child gets a free lock (a parent thread may have held it at the fork)."""
    global _REMEMBER_LOCK
    _REMEMBER_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def encodable(text: str) -> bool:
    """Is ``text`` valid Unicode (no lone surrogate), as a string tensor and UTF-8 need?"""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class CategoryIds:
    """Built once per model; thread-safe (the only mutable state, the texts remembered
    as unseen and the arrow vocabulary, only grows: lookups read the dict while a lock
    serialises the stores, which keep to :data:`UNSEEN_REMEMBERED` texts and
    :data:`UNSEEN_REMEMBERED_BYTES` bytes)."""

    def __init__(self, vocabulary: Sequence[str], missing: str) -> None:
        vocabulary = list(vocabulary)
        if len(set(vocabulary)) != len(vocabulary) or not all(isinstance(t, str) for t in vocabulary):
            raise ValueError("the vocabulary must hold distinct texts")
        if missing not in vocabulary:
            raise ValueError("the vocabulary must hold the missing-value sentinel")
        self.vocabulary = vocabulary
        self.unseen = len(vocabulary)
        self.missing = vocabulary.index(missing)
        self._missing_text = missing
        self._index = {text: k for k, text in enumerate(vocabulary)}
        # for one record: None (missing) -> the sentinel's id; the sentinel text itself is
        # left out (a caller giving it is refused by the checked path)
        self._record_index: dict[Any, int] = {t: k for t, k in self._index.items() if t != missing}
        self._record_index[None] = self.missing
        self._record_get = self._record_index.get
        #: texts outside the vocabulary met in records are remembered (as unseen), up to
        #: this many more entries: a category the steps group away (a rare one) costs
        #: no more than a known one the next time
        self._remember = len(self._record_index) + UNSEEN_REMEMBERED
        self._remembered_bytes = 0
        self._arrow_vocabulary: Any = None
        self._string_table: Any = None
        self._text_lookup: Callable[[np.ndarray, np.ndarray, np.ndarray], int] | None = None

    def row(self, values: Sequence[Any]) -> np.ndarray | None:
        """The ``[1, len(values)]`` ids of one record's raw values: str, None or NaN
        (missing); None for anything else (numbers, the reserved sentinel, text that is
        not valid Unicode): the caller's checked path names the problem."""
        try:
            return np.fromiter(map(self._record_get, values), np.int64, len(values)).reshape(1, -1)
        except Exception:  # noqa: BLE001 - a value outside the vocabulary, or one whose hash or == raises
            pass
        try:
            ids: list[int | None] = list(map(self._record_get, values))
        except Exception:  # noqa: BLE001 - unhashable, or a caller's object raising: not a text
            return None
        j = -1
        for _ in range(ids.count(None)):
            j = ids.index(None, j + 1)
            value = values[j]
            if type(value) is str:
                if value == self._missing_text or not encodable(value):
                    return None
                ids[j] = self.unseen
                if len(self._record_index) < self._remember:
                    self._remember_unseen(value)
            elif type(value) is float and value != value:
                ids[j] = self.missing
            else:
                return None
        return np.array((ids,), dtype=np.int64)

    def _remember_unseen(self, text: str) -> None:
        size = sys.getsizeof(text)
        with _REMEMBER_LOCK:
            if (
                len(self._record_index) < self._remember
                and self._remembered_bytes + size <= UNSEEN_REMEMBERED_BYTES
                and text not in self._record_index
            ):
                self._record_index[text] = self.unseen
                self._remembered_bytes += size

    def column(self, texts: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """The ids of texts (an object array of str of any shape, e.g. a column or a
        whole ``[n, k]`` matrix, as the adapter's checked path makes them), and the flat
        positions of the texts that are not valid Unicode (their ids are the unseen one;
        the caller refuses those rows)."""
        flat = texts.reshape(-1)
        ids = np.fromiter(map(self._index.get, flat, repeat(-1)), dtype=np.int64, count=flat.size)
        bad: list[int] = []
        unseen = ids < 0
        if unseen.any():
            positions = np.flatnonzero(unseen)
            bad = [int(p) for p in positions if not encodable(flat[p])]
            ids[positions] = self.unseen
        return ids.reshape(texts.shape), bad

    def text_lookup(self) -> Callable[[np.ndarray, np.ndarray, np.ndarray], int] | None:
        """``lookup(values, out, scratch)``: the C module's ``text_ids`` on its table of
        this vocabulary (``predictlib._speedups.text_table``), when this install carries
        the module (see :mod:`predictlib._native`); None otherwise."""
        if self._text_lookup is None:
            module = speedups()
            if module is None:
                return None
            # built whole, then shared (two threads may both build one: either will do)
            self._text_lookup = partial(module.text_ids, module.text_table(self.vocabulary, self.missing))
        return self._text_lookup

    def string_table(self) -> Any:
        """pandas' C hash table of the vocabulary (text -> id, ``lookup`` of an object
        array gives -1 for anything else) when pandas is loaded already (it is never
        imported here) and still has one; None otherwise. It hashes a text's UTF-8 bytes,
        lengths included (a text with a NUL is no other text), and refuses text that is
        not valid Unicode (``UnicodeEncodeError``)."""
        if self._string_table is None:
            hashtable = getattr(getattr(sys.modules.get("pandas"), "_libs", None), "hashtable", None)
            table_type = getattr(hashtable, "StringHashTable", None)
            if table_type is None:
                return None
            table = table_type(len(self.vocabulary))
            table.map_locations(np.array(self.vocabulary, dtype=object))
            self._string_table = table  # built whole, then shared: only read from now on
        return self._string_table

    def arrow_column(self, values: Any) -> np.ndarray | None:
        """The ids of a column given as a pyarrow string array (or chunked array),
        without a Python loop; None when a value is the reserved missing-value text (the
        caller's checked path names it). pyarrow is imported only here, for values that
        are pyarrow arrays already."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self._arrow_vocabulary is None:
            # the sentinel's place holds null: a missing value (null) finds its id there
            vocabulary = [None if t == self._missing_text else t for t in self.vocabulary]
            self._arrow_vocabulary = pa.array(vocabulary, type=pa.string())
        vocabulary = self._arrow_vocabulary
        if values.type != vocabulary.type:
            vocabulary = vocabulary.cast(values.type)
        if pc.any(pc.equal(values, self._missing_text)).as_py():
            return None
        found = pc.index_in(values, options=pc.SetLookupOptions(vocabulary, skip_nulls=False))
        if found.null_count:
            found = found.fill_null(self.unseen)
        ids = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
        return ids
