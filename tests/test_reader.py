"""The runtime's compiled reader (src/predictlib/_reader.py) and the lean graph's call
paths (src/predictlib/_lean.py) beyond one record: lists of records read row by row into
the lean graph's input, by chunks run on the pool, with the DataFrame path's answers;
anything the reader does not take, or a refused row, sends the list to the checked path.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predictlib
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
    n = data.draw(st.integers(1, 40), label="rows")
    records: list[Any] = [dict(r) for r in base[:n]]
    columns = list(model.columns)
    for _ in range(data.draw(st.integers(0, 6), label="changes")):
        row = data.draw(st.integers(0, n - 1), label="row")
        how = data.draw(st.sampled_from(["value", "drop", "not a dict"]), label="how")
        if how == "value":
            records[row] = {
                **records[row],
                data.draw(st.sampled_from(columns), label="column"): data.draw(_CELLS, label="cell"),
            }
        elif how == "drop":
            records[row] = dict(records[row])
            records[row].pop(data.draw(st.sampled_from(columns), label="column"), None)
        else:
            records[row] = MappingProxyType(dict(records[row]))
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
