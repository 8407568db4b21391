"""The runtime's compiled reader (src/predictlib/_reader.py, and its C loop
src/predictlib/_speedups.c) and the lean graph's call paths (src/predictlib/_lean.py)
beyond one record: lists of records read row by row into the lean graph's input, by
chunks run on the pool, with the DataFrame path's answers; anything the reader does not
take, or a refused row, sends the list to the checked path. The C loop reads exactly as
the Python reader does.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import shutil
import struct
import sysconfig
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predictlib
from predictlib._reader import RecordReader, c_loop
from predictlib.build.project import Built

MODELS = ["house_prices", "penguins", "house_band", "house_dated", "ames", "house_sklearn"]


def plain_records(built: Built, rows: int) -> list[dict[str, Any]]:
    """``rows`` records of the model's held-out rows (repeated), as an app holds them:
    Python numbers, texts, None for a missing value."""
    frame = built.trained.X_test
    base = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]
    return [dict(base[i % len(base)]) for i in range(rows)]


@pytest.mark.parametrize("name", MODELS)
def test_a_list_of_records_gives_what_a_dataframe_gives(built_models: dict[str, Built], name: str) -> None:
    """Lists of plain records are read by the compiled reader, by chunks run on the pool
    (more rows than one chunk here): the answers are the DataFrame path's, bit for bit."""
    import pandas as pd

    built = built_models[name]
    model = predictlib.load(built.folder)
    records = plain_records(built, 5_000)
    assert model._run_records(records) is not None  # the fast path takes them
    frame = pd.DataFrame(records)
    np.testing.assert_array_equal(model.predict(records), model.predict(frame))
    np.testing.assert_array_equal(model.predict(tuple(records)), model.predict(frame))
    if model.task == "classification":
        np.testing.assert_array_equal(model.predict_proba(records), model.predict_proba(frame))
    one = model.predict(records[:1])
    assert one.shape == (1,) and one[0] == model.predict(records[0])


@pytest.mark.parametrize("position", [0, 2_500, 4_999])
def test_a_list_with_a_record_the_reader_does_not_take_is_read_by_the_checked_path(
    built_models: dict[str, Built], position: int
) -> None:
    """One record that is not plain (here a bool, a text in a numeric column, a record
    that is not a dict) sends the whole list to the checked path, which names every
    problem with its row; a refused row (an infinite value) too."""
    built = built_models["house_prices"]
    model = predictlib.load(built.folder)
    records = plain_records(built, 5_000)
    n, c = model._adapter.numeric[0], model._adapter.categorical[0]
    odd = list(records)
    odd[position] = {**records[position], n: True}
    other = 0 if position == 4_999 else 4_999
    odd[other] = {**records[other], c: 5}
    with pytest.raises(predictlib.InputError) as exc:
        model.predict(odd)
    found = [(p.row, p.column, p.value) for p in exc.value.problems]
    assert (position, n, True) in found and (other, c, 5) in found
    refused = list(records)
    refused[position] = {**records[position], "LotArea": math.inf}
    with pytest.raises(predictlib.InputError) as exc:
        model.predict(refused)
    assert {(p.row, p.column) for p in exc.value.problems} == {(position, "LotArea")}
    assert model._run_records(refused) is None
    mapping = list(records)
    mapping[position] = MappingProxyType(records[position])
    assert model._run_records(mapping) is None
    np.testing.assert_array_equal(model.predict(mapping), model.predict(records))


def test_the_reader_fills_one_row_of_a_larger_matrix(built_models: dict[str, Built]) -> None:
    built = built_models["house_prices"]
    model = predictlib.load(built.folder)
    record = plain_records(built, 1)[0]
    reader = model._lean.reader
    x = np.full((3, reader.width), 7.0)
    assert reader.fill(record, x, None, 1)
    num, cat, _, problems, _ = model._adapter.from_records([record], single=True)
    assert not problems
    np.testing.assert_array_equal(x[1:2], np.concatenate([num, cat.astype(np.float64)], axis=1))
    assert (x[[0, 2]] == 7.0).all()
    assert not reader.fill({**record, model._adapter.numeric[0]: "text"}, x, None, 2)


@pytest.fixture(scope="module")
def loaded(built_models: dict[str, Built]) -> dict[str, tuple[predictlib.Model, list[dict[str, Any]]]]:
    """Per bundled model, loaded once for the property tests' many examples: the model
    and 40 of its plain records."""
    return {
        name: (predictlib.load(built.folder), plain_records(built, 40))
        for name, built in built_models.items()
    }


# a value of any column: plain numbers and texts, what the reader refuses (a bool, a
# number beyond float64, the reserved text, a lone surrogate, an unhashable value), NaN
_CELLS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.just(10**400),
    st.booleans(),
    st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1)),
    st.sampled_from(["RL", "Pave", "CollgCr", "", "never seen", "lone \ud800", "__predictlib_missing__"]),
    st.just(["a", "list"]),
)


def drawn_records(data: Any, base: list[dict[str, Any]], columns: list[str], cells: Any) -> list[Any]:
    """Up to 40 of ``base``'s records, up to six of them changed: a value drawn from
    ``cells`` in a column, a column dropped, or the record made a mapping not a dict."""
    n = data.draw(st.integers(1, 40), label="rows")
    records: list[Any] = [dict(r) for r in base[:n]]
    for _ in range(data.draw(st.integers(0, 6), label="changes")):
        row = data.draw(st.integers(0, n - 1), label="row")
        how = data.draw(st.sampled_from(["value", "value", "drop", "not a dict"]), label="how")
        column = data.draw(st.sampled_from(columns), label="column")
        if how == "value":
            records[row] = {**records[row], column: data.draw(cells, label="cell")}
        elif how == "drop":
            records[row] = {k: v for k, v in records[row].items() if k != column}
        else:
            records[row] = MappingProxyType(dict(records[row]))
    return records


@pytest.mark.parametrize("name", ["house_prices", "house_dated", "penguins"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_block_of_records_is_read_as_each_record_is(
    loaded: dict[str, tuple[predictlib.Model, list[dict[str, Any]]]], name: str, data: Any
) -> None:
    """``fill_block`` (a chunk of a list of records, read column group by column group)
    writes exactly the rows ``fill`` writes one record at a time, and takes the block
    exactly when ``fill`` takes every record of it (else the checked path names them)."""
    model, base = loaded[name]
    reader = model._lean.reader
    records = drawn_records(data, base, list(model.columns), _CELLS)
    n = len(records)
    block_x, block_moments = reader.buffers(n)
    taken = reader.fill_block(records, block_x, block_moments)
    one_x, one_moments = reader.buffers(n)
    each = [type(r) is dict and reader.fill(r, one_x, one_moments, i) for i, r in enumerate(records)]
    assert taken == all(each)
    if taken:
        np.testing.assert_array_equal(block_x, one_x)
        if block_moments is not None:
            np.testing.assert_array_equal(block_moments, one_moments)


@pytest.mark.parametrize("name", MODELS)
def test_one_record_refuses_and_answers_as_the_checked_path(
    built_models: dict[str, Built], name: str
) -> None:
    """Every record of the golden file, one at a time: the fast path (reader, lean graph,
    its refusal test read from the bound outputs) gives the checked path's answer, or
    raises its problems; a refused record is never answered."""
    from predictlib.build.stages.golden import decode

    built = built_models[name]
    model = predictlib.load(built.folder)
    golden = json.loads((built.folder / "golden.json").read_text())
    for case in golden["accepted"] + golden["refused"]:
        record = decode(case["record"])
        try:
            fast: Any = model.predict(record)
        except predictlib.InputError as exc:
            fast = [str(p) for p in exc.problems]
        try:
            results, _ = model._run([MappingProxyType(record)])
            slow: Any = results[0].reshape(-1)[0]
            slow = slow.item() if isinstance(slow, np.generic) else slow
        except predictlib.InputError as exc:
            slow = [str(p).replace("row 0, ", "") for p in exc.problems]
        assert (fast == slow) or (fast != fast and slow != slow), (case.get("id"), fast, slow)
        assert ("problems" in case) == isinstance(fast, list)


# --- the C loop (src/predictlib/_speedups.c) ----------------------------------------------


def fresh_reader(model: predictlib.Model, with_c_loop: bool) -> RecordReader:
    """A new reader of the model (no unseen text remembered yet), with or without
    ``predictlib._speedups``."""
    adapter = model._adapter
    vocabulary = list(model._manifest["lean"]["vocabulary"])
    read = c_loop() if with_c_loop else None
    return RecordReader(adapter.numeric, adapter.categorical, vocabulary, adapter.missing, adapter, read)


def a_compiler() -> str | None:
    """The C compiler the build would use, when this machine has it."""
    compiler = (sysconfig.get_config_var("CC") or "").split()
    return shutil.which(compiler[0]) if compiler else None


def test_this_install_reads_records_with_the_c_loop(built_models: dict[str, Built]) -> None:
    """The build compiles ``predictlib._speedups`` where a C compiler is found (the wheel
    is pure Python without one): an install that should carry it does, and models use it."""
    if a_compiler() is None:
        pytest.skip("no C compiler here: predictlib is installed without predictlib._speedups")
    assert c_loop() is not None
    assert predictlib.load(built_models["penguins"].folder)._lean.reader._c_loop is not None


def test_the_c_loop_can_be_switched_off(
    built_models: dict[str, Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    built = built_models["house_prices"]
    records = plain_records(built, 600)
    expected = predictlib.load(built.folder).predict(records)
    monkeypatch.setenv("PREDICTLIB_PURE_PYTHON", "1")
    assert c_loop() is None
    model = predictlib.load(built.folder)
    assert model._lean.reader._c_loop is None
    np.testing.assert_array_equal(model.predict(records), expected)
    assert model.predict(records[0]) == expected[0]
    monkeypatch.delenv("PREDICTLIB_PURE_PYTHON")
    unset = c_loop()
    monkeypatch.setenv("PREDICTLIB_PURE_PYTHON", "0")  # "0" (or empty) does not switch it off
    assert c_loop() is unset


class _Text(str):
    pass


class _Level(enum.IntEnum):
    ONE = 1


class _Unhashable:
    def __hash__(self) -> int:
        raise RuntimeError("no hash")


# beyond _CELLS: what only exact types tell apart (subclasses of str, float and int, numpy
# scalars, NaN among them), NaN and None for a text, a value whose hash raises
_EXOTIC = [
    *[np.float64(2.5), np.float64("nan"), np.float32(1.5), np.int64(3), _Level.ONE, 1.0, 2**63],
    *[np.str_("RL"), _Text("Pave"), math.nan, -math.nan, None, "Gd", "female", "Dream"],
]
# (hypothesis hashes what sampled_from holds, so the unhashable value is made apart)
_EXOTIC_CELLS = st.integers(0, len(_EXOTIC)).map(lambda i: _EXOTIC[i] if i < len(_EXOTIC) else _Unhashable())


@pytest.mark.parametrize("name", ["house_prices", "house_dated", "penguins"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_c_loop_reads_as_the_python_reader(
    loaded: dict[str, tuple[predictlib.Model, list[dict[str, Any]]]], name: str, data: Any
) -> None:
    """``predictlib._speedups`` takes a record exactly when the Python reader does (the
    rest it leaves to it) and writes the same bits, one record at a time and by blocks.
    Both readers start afresh: which texts a reader has remembered as unseen decides
    some records (a ``str`` subclass beside an unseen text goes to the checked path)."""
    model, base = loaded[name]
    if c_loop() is None:
        pytest.skip("this install has no predictlib._speedups (no C compiler when it was built)")
    compiled, python = fresh_reader(model, with_c_loop=True), fresh_reader(model, with_c_loop=False)
    for reader in (compiled, python):  # both remember the base records' unseen texts, so
        x, moments = reader.buffers(1)  # the C loop decides the records below
        assert all([reader.fill(r, x, moments, 0) for r in base])
    cells = st.booleans().flatmap(lambda exotic: _EXOTIC_CELLS if exotic else _CELLS)
    records = drawn_records(data, base, list(model.columns), cells)
    n = len(records)
    x_c, moments_c = compiled.buffers(n)
    x_p, moments_p = python.buffers(n)
    each = [compiled.fill(r, x_c, moments_c, i) for i, r in enumerate(records)]
    assert each == [python.fill(r, x_p, moments_p, i) for i, r in enumerate(records)]
    taken = np.array(each, dtype=bool)
    np.testing.assert_array_equal(x_c[taken].view(np.uint64), x_p[taken].view(np.uint64))
    if moments_c is not None:
        np.testing.assert_array_equal(moments_c[taken], moments_p[taken])
    block_c, block_moments_c = compiled.buffers(n)
    block_p, block_moments_p = python.buffers(n)
    block_taken = compiled.fill_block(records, block_c, block_moments_c)
    assert block_taken == python.fill_block(records, block_p, block_moments_p)
    if block_taken:
        np.testing.assert_array_equal(block_c.view(np.uint64), block_p.view(np.uint64))
        np.testing.assert_array_equal(block_c.view(np.uint64), x_c.view(np.uint64))
        if block_moments_c is not None:
            np.testing.assert_array_equal(block_moments_c, block_moments_p)


def test_read_records_stops_at_the_first_record_it_leaves_and_checks_its_arguments() -> None:
    read = c_loop()
    if read is None:
        pytest.skip("this install has no predictlib._speedups (no C compiler when it was built)")
    index = {"a": struct.pack("=d", 0.0), "b": struct.pack("=d", 1.0), None: struct.pack("=d", 2.0)}
    missing = index[None]
    layout = (("n",), ("t",), index, missing)
    x = np.full((4, 2), 7.0)
    records = [{"n": 1, "t": "b"}, {"n": None, "t": math.nan}, {"n": 2.5, "t": "unseen"}, {"n": 3, "t": "a"}]
    assert read(records, *layout, x, 0) == 2
    np.testing.assert_array_equal(x[:2], [[1.0, 1.0], [math.nan, 2.0]])
    assert read(records[3:], *layout, x, 3) == 1 and x[3].tolist() == [3.0, 0.0]
    assert read([{"n": True, "t": "a"}], *layout, x, 0) == 0  # a bool: the Python reader's
    assert read([{"t": "a"}], *layout, x, 0) == 0  # an absent column
    assert read([], *layout, x, 4) == 0
    emptied: list[Any] = []

    class _Emptying(str):  # a key whose == empties the list being read
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            emptied.clear()
            return str.__eq__(self, other)

    emptied += [{_Emptying("n"): 1.5, "t": "a"}, {"n": 2.5, "t": "b"}]
    assert read(emptied, *layout, x, 0) == 1 and x[0].tolist() == [1.5, 0.0] and not emptied
    with pytest.raises(ValueError, match="fewer than rows 3 to 5"):
        read(records[:2], *layout, x, 3)
    with pytest.raises(ValueError, match="fewer than rows"):
        read(records[:1], *layout, x, -1)
    frozen = x.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        read(records, *layout, frozen, 0)
    with pytest.raises(TypeError, match="8 bytes"):
        read(records, ("n",), ("t",), index, b"short", x, 0)
    with pytest.raises(TypeError, match="7 arguments"):
        read(records, *layout, x)  # type: ignore[call-arg]
