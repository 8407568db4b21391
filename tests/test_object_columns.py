"""pandas ``object`` text columns (and numpy object arrays) take the fast path by object
identity or through arrow: the same predictions and the same problems as the per-value
path, whatever the objects."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import predictlib
from predictlib._objects import MIN_ROWS
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame


@pytest.fixture(scope="module")
def model(house_prices: Built) -> predictlib.Model:
    return predictlib.load(house_prices.folder)


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
