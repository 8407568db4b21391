"""pandas ``object`` text columns (and numpy object arrays, lists of texts) take the fast
path (predictlib's C lookup; without it, by object identity, pandas' C string hash table
or arrow): the same predictions and the same problems as the per-value path, whatever
the objects."""

from __future__ import annotations

import math
import sys
import threading
from decimal import Decimal
from typing import Any, ClassVar
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import predictlib
from predictlib import _objects
from predictlib._ids import CategoryIds
from predictlib._native import speedups
from predictlib._objects import MIN_ROWS, _by_hash_table, _by_text_table, plain_numbers
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame


@pytest.fixture(scope="module", params=["C", "hash table", "arrow"])
def model(house_prices: Built, request: pytest.FixtureRequest) -> Any:
    """The model, with object columns looked up by predictlib's C module or, as without
    it, by object identity and in pandas' hash table or (as without pandas' table)
    through arrow."""
    loaded = predictlib.load(house_prices.folder)
    ids = loaded._adapter.ids
    assert ids is not None and ids.string_table() is not None
    if request.param == "C":
        if ids.text_lookup() is None:
            pytest.skip("this install has no predictlib._speedups")
    else:  # this model's only
        ids.text_lookup = lambda: None
        if request.param == "arrow":
            ids.string_table = lambda: None
    return loaded


@pytest.fixture(scope="module")
def frame(house_prices: Built) -> pd.DataFrame:
    """MIN_ROWS+ rows with pandas' str columns (the reference path)."""
    base = house_prices.trained.X_test.reset_index(drop=True)
    big = pd.concat([base] * (2 * MIN_ROWS // len(base) + 1), ignore_index=True)
    assert len(big) > MIN_ROWS
    return big


def shared_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """object columns holding one str object per distinct text (as pandas' CSV reader makes them)."""
    out = frame.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            interned: dict[Any, Any] = {}
            out[c] = pd.Series(
                [interned.setdefault(v, v) if isinstance(v, str) else None for v in out[c]], dtype=object
            )
    return out


def distinct_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """object columns of fresh str objects, one per cell (astype(object) of str columns)."""
    return frame.astype({c: object for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])})


SHAPES = {"shared objects": shared_objects, "distinct objects": distinct_objects}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_object_columns_predict_like_str_columns(
    model: predictlib.Model, frame: pd.DataFrame, shape: str
) -> None:
    data = SHAPES[shape](frame)
    assert data["Neighborhood"].dtype == object
    np.testing.assert_array_equal(model.predict(data), model.predict(frame))
    columns = {c: data[c].to_numpy() for c in data.columns}  # numpy object arrays
    np.testing.assert_array_equal(model.predict(columns), model.predict(frame))


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("missing", [None, math.nan, pd.NA, np.float32("nan"), pd.NaT], ids=repr)
def test_every_missing_marker(model: predictlib.Model, frame: pd.DataFrame, shape: str, missing: Any) -> None:
    data = SHAPES[shape](frame)
    data.loc[[1, 5, 300], "Alley"] = missing
    expected = frame.copy()
    expected.loc[[1, 5, 300], "Alley"] = None
    np.testing.assert_array_equal(model.predict(data), model.predict(expected))


def problems(model: predictlib.Model, data: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(predictlib.InputError) as info:
        model.predict(data)
    return [(p.row, p.column, p.value, p.expected) for p in info.value.problems]


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    "value",
    [12, 3.5, True, b"NAmes", "__predictlib_missing__", "\ud800 not unicode", "never-seen-label"],
    ids=repr,
)
def test_problems_are_those_of_the_per_value_path(
    model: predictlib.Model, frame: pd.DataFrame, shape: str, value: Any
) -> None:
    data = SHAPES[shape](frame)
    data.loc[7, "Neighborhood"] = value
    records = records_from_frame(data)  # the per-value path
    try:
        expected = model.predict(records)
    except predictlib.InputError:
        assert problems(model, data) == problems(model, records)
    else:
        np.testing.assert_array_equal(model.predict(data), expected)


@pytest.mark.parametrize(
    "value", [12, True, "8450", None, math.nan, 10**400, "__predictlib_missing__", b"x", [1]], ids=repr
)
def test_records_and_lists_read_by_columns_as_by_values(
    model: predictlib.Model, frame: pd.DataFrame, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many records (and columns of lists) take the columnar path; a few, the per-value
    one: the same predictions or the same problems."""
    import predictlib._objects as objects

    records = records_from_frame(frame.iloc[:200])
    records[3] = dict(records[3], LotArea=value)
    records[9] = dict(records[9], Neighborhood=value)
    columns = {c: [r[c] for r in records] for c in model.columns}

    def outcome(data: Any) -> Any:
        try:
            return model.predict(data)
        except predictlib.InputError as err:
            return [(p.row, p.column, repr(p.value), p.expected) for p in err.problems]

    fast = [outcome(records), outcome(columns)]
    monkeypatch.setattr(objects, "RECORDS_AS_COLUMNS", 10**9)
    monkeypatch.setattr(objects, "_NUMBER_TYPES", frozenset())
    monkeypatch.setattr(objects, "MIN_ROWS", 10**9)
    slow = [outcome(records), outcome(columns)]
    for got, expected in zip(fast, slow, strict=True):
        if isinstance(expected, list):
            assert got == expected
        else:
            np.testing.assert_array_equal(got, expected)


VOCABULARY = ["NAmes", "Gd", "é", "a b", "", "__missing__", "€uro", "🙂", "Kürzere Straße 12"]


class Text(str):
    """A str subclass: the per-value path reads its string value."""


def expected_ids(ids: CategoryIds, values: list[Any]) -> list[int] | None:
    """The per-value path's ids (``InputAdapter.category`` then ``CategoryIds.column``),
    None when it names a problem."""
    out = []
    for value in values:
        if isinstance(value, str):
            text = str.__str__(value)
            if text == "__missing__":
                return None
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return None
            out.append(ids.vocabulary.index(text) if text in ids.vocabulary else ids.unseen)
        elif value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            out.append(ids.missing)
        else:
            return None
    return out


CELLS = st.one_of(
    st.sampled_from(VOCABULARY),
    st.text(st.characters(exclude_categories=()), max_size=4),  # unseen texts, NULs, lone surrogates...
    st.sampled_from(VOCABULARY).map(Text),
    st.sampled_from(VOCABULARY).map(lambda t: t + "\x00"),  # a known text's bytes, and more
    st.sampled_from([None, math.nan, pd.NA, 3, 2.5, True, b"Gd"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=40))
def test_hash_table_ids_are_the_per_value_ids(values: list[Any]) -> None:
    """The hash table's ids are the per-value path's; it declines (None) only where
    that path names a problem, or for a str subclass outside the vocabulary (the
    per-value path then reads it)."""
    ids = CategoryIds(VOCABULARY, "__missing__")
    cells = np.empty(len(values), dtype=object)
    cells[:] = values
    found = _by_hash_table(pd, ids, "__missing__", cells)
    expected = expected_ids(ids, values)
    if found is None:
        declined = expected is None or any(
            type(v) is Text and str.__str__(v) not in VOCABULARY for v in values
        )
        assert declined, values
    else:
        assert expected is not None, values
        assert found.tolist() == expected
    assert all(a is b for a, b in zip(cells, values, strict=True))  # the caller's cells untouched


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(CELLS, min_size=1, max_size=40),
    with_pandas=st.booleans(),
    block=st.integers(1, 9),
    into=st.booleans(),
)
def test_text_table_ids_are_the_per_value_ids(
    values: list[Any], with_pandas: bool, block: int, into: bool
) -> None:
    """predictlib's C lookup (taken a block of cells at a time, into a column of a
    matrix or not) gives the per-value path's ids; it declines (None) only where that
    path names a problem, or for a str subclass (the per-value path then reads it)."""
    if speedups() is None:
        pytest.skip("this install has no predictlib._speedups")
    ids = CategoryIds(VOCABULARY, "__missing__")
    cells = np.empty(len(values), dtype=object)
    cells[:] = values
    matrix = np.full((len(values), 3), -9, dtype=np.int64)
    with mock.patch.object(_objects, "TEXT_BLOCK", block):
        found = _by_text_table(
            pd if with_pandas else None,
            ids,
            "__missing__",
            cells,
            ids.text_lookup(),
            matrix[:, 1] if into else None,
        )
    assert all(a is b for a, b in zip(cells, values, strict=True))  # the caller's cells untouched
    assert (matrix[:, [0, 2]] == -9).all()  # nothing written beside the column given
    if found is not None and into:
        assert np.shares_memory(found, matrix)
    expected = expected_ids(ids, values)
    if found is None:
        assert expected is None or any(type(v) is Text for v in values), values
    else:
        assert expected is not None, values
        assert found.tolist() == expected


def test_text_ids_checks_its_arguments() -> None:
    module = speedups()
    if module is None:
        pytest.skip("this install has no predictlib._speedups")
    ids = CategoryIds(VOCABULARY, "__missing__")
    table = module.text_table(VOCABULARY, ids.missing)
    cells = np.array(["Gd", None, math.nan, "never", 3, Text("Gd"), "\ud800", "🙂"], dtype=object)
    out = np.full(len(cells), -9, dtype=np.int64)
    assert module.text_ids(table, cells, out, np.empty(3, dtype=np.intp)) == 3
    assert out.tolist() == [1, 5, 5, ids.unseen, -1, -1, -1, 7]
    fresh = np.array([f"{k} Gd" for k in range(1000)] + [float(k) for k in range(1000)], dtype=object)
    references = [sys.getrefcount(v) for v in fresh]
    assert module.text_ids(table, fresh, np.empty(2000, dtype=np.int64), np.empty(7, dtype=np.intp)) == 1000
    assert [sys.getrefcount(v) for v in fresh] == references  # every reference it took, dropped
    sentinel = np.array(["Gd", "__missing__", "NAmes"], dtype=object)
    assert module.text_ids(table, sentinel, np.empty(3, dtype=np.int64), np.empty(1, dtype=np.intp)) == -1
    held = np.empty(4, dtype=np.intp)
    with pytest.raises(TypeError, match="1-D C-contiguous object array"):
        module.text_ids(table, np.array([1.0, 2.0]), out, held)
    with pytest.raises(TypeError, match="1-D C-contiguous object array"):
        module.text_ids(table, cells.reshape(2, 4), out, held)
    with pytest.raises(ValueError, match="int64 array of at least 8 cells"):
        module.text_ids(table, cells, out[:7], held)
    with pytest.raises(ValueError, match="int64 array"):
        module.text_ids(table, cells, out.astype(np.float64), held)
    with pytest.raises(ValueError, match="int64 array"):
        module.text_ids(table, cells, np.array(5), held)
    with pytest.raises(ValueError, match="scratch"):
        module.text_ids(table, cells, out, np.empty(0, dtype=np.intp))
    with pytest.raises(ValueError, match="PyCapsule"):
        module.text_ids(object(), cells, out, held)
    with pytest.raises(TypeError, match="4 arguments"):
        module.text_ids(table, cells, out)
    with pytest.raises(TypeError, match="list of str"):
        module.text_table(("Gd", "__missing__"), 1)
    with pytest.raises(ValueError, match="index the vocabulary"):
        module.text_table(["Gd"], 1)


class _Marker:
    """Not a text (text_ids declines it), yet held while the lookup runs; says on which
    thread it is freed."""

    freed_on: ClassVar[list[int]] = []

    def __del__(self) -> None:
        self.freed_on.append(threading.get_ident())


def _replace_all(
    cells: np.ndarray, started: threading.Event, done: threading.Event, during: list[bool]
) -> None:
    started.wait()
    cells[:] = "Gd"  # drops the column's references to every marker
    during.append(not done.is_set())


def test_text_ids_keeps_the_objects_alive_while_another_thread_changes_the_column() -> None:
    """While text_ids looks a column up without the GIL, another thread replaces every
    cell: the objects replaced live on until text_ids drops its references, so they are
    freed on the thread of the lookup, not on the one that replaced them."""
    module = speedups()
    if module is None:
        pytest.skip("this install has no predictlib._speedups")
    table = module.text_table(VOCABULARY, VOCABULARY.index("__missing__"))
    n = 200_000
    overlapped = 0
    for _ in range(20):
        cells = np.empty(n, dtype=object)
        cells[:] = [_Marker() for _ in range(n)]
        started, done, during = threading.Event(), threading.Event(), []
        replacer = threading.Thread(target=_replace_all, args=(cells, started, done, during))
        replacer.start()
        _Marker.freed_on.clear()
        started.set()
        left = module.text_ids(table, cells, np.empty(n, dtype=np.int64), np.empty(n, dtype=np.intp))
        done.set()
        replacer.join()
        if during[0]:  # (else the replacer ran after the lookup: the markers died on it)
            overlapped += 1
            assert left == n
            assert len(_Marker.freed_on) == n
            assert set(_Marker.freed_on) == {threading.get_ident()}, "freed while the lookup held them"
            if overlapped == 3:
                break
    assert overlapped, "the other thread never ran during the lookup"


@pytest.mark.parametrize("text", ["NAmes\x00", "NAmes\x00xyz", "\x00NAmes"], ids=repr)
def test_a_known_text_with_a_nul_is_unseen(model: predictlib.Model, frame: pd.DataFrame, text: str) -> None:
    """pandas' table hashes bytes with their length: a known text followed by a NUL is
    another, unseen text, as for the per-value path."""
    data = distinct_objects(frame)
    data.loc[3, "Neighborhood"] = text
    expected = frame.copy()
    expected.loc[3, "Neighborhood"] = "never-seen-label"
    np.testing.assert_array_equal(model.predict(data), model.predict(expected))
    lists = {c: data[c].tolist() for c in data.columns}
    np.testing.assert_array_equal(model.predict(lists), model.predict(expected))


class _Float(float):
    pass


class _Int(int):
    pass


NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond int64 and float64's exact range
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.sampled_from([10**400, 2**63, 2**53 + 1, -(2**64), -0.0, True, np.int64(7), np.float32(0.1), "1.5"]),
    st.sampled_from([_Float(2.5), _Float("nan"), _Int(3)]),  # subclasses: the per-value path
)


@pytest.mark.parametrize("with_c", [True, False], ids=["C", "numpy"])
@settings(max_examples=400, deadline=None)
@given(values=st.lists(NUMBERS, max_size=30), form=st.sampled_from(["list", "tuple", "array"]))
def test_plain_numbers_convert_as_float_does(values: list[Any], form: str, with_c: bool) -> None:
    """A list, tuple or object array of plain numbers becomes exactly ``float(v)`` per
    value (None: NaN, with math.nan's bits), whether ``predictlib._speedups`` reads it in C
    or numpy does; anything else (a bool, a subclass, text, an int beyond float64) is left
    to the per-value path (None)."""
    if with_c and speedups() is None:
        pytest.skip("this install has no predictlib._speedups")
    given_values: Any = {
        "list": values,
        "tuple": tuple(values),
        "array": np.fromiter(values, dtype=object, count=len(values)),
    }[form]
    with mock.patch.object(_objects, "speedups", speedups if with_c else lambda: None):
        found = plain_numbers(given_values)
    plain = all(type(v) in (int, float, type(None), np.int64, np.float32) for v in values)
    try:
        expected = [math.nan if v is None else float(v) for v in values] if plain else None
    except OverflowError:
        expected = None
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.dtype == np.float64
        # the same bits, NaN's and -0.0's included
        assert found.tobytes() == np.array(expected, dtype=np.float64).tobytes()


def test_read_numbers_declines_what_it_does_not_take_and_checks_its_arguments() -> None:
    module = speedups()
    if module is None:
        pytest.skip("this install has no predictlib._speedups")
    out = np.full(4, 7.0)
    assert module.read_numbers([1, 2.5, None, -0.0], out) == 4
    assert out.tobytes() == np.array([1.0, 2.5, math.nan, -0.0]).tobytes()
    for odd in (True, _Float(1.0), _Int(1), np.float64(1.0), "1", 10**400, Decimal(1)):
        assert module.read_numbers([1.0, odd], np.empty(2)) == -1, odd
    assert module.read_numbers((), np.empty(0)) == 0
    with pytest.raises(TypeError, match="list or a tuple"):
        module.read_numbers(np.array([1.0]), np.empty(1))
    with pytest.raises(ValueError, match="fewer than 3 values"):
        module.read_numbers([1.0, 2.0, 3.0], np.empty(2))
    with pytest.raises(BufferError):
        module.read_numbers([1.0], b"12345678")  # not writable
    with pytest.raises(TypeError, match="2 arguments"):
        module.read_numbers([1.0])
