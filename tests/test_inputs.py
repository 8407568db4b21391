"""Every input shape the runtime accepts gives the same predictions; odd values are
treated as the original pipeline treats them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import original_predict, records_from_frame, reference_frame


@pytest.fixture(scope="module")
def model(house_prices: Built) -> predictlib.Model:
    return predictlib.load(house_prices.folder)


@pytest.fixture(scope="module")
def frame(house_prices: Built) -> pd.DataFrame:
    X = house_prices.trained.X_test.iloc[:40].copy()
    X.iloc[0, X.columns.get_loc("LotFrontage")] = np.nan  # a missing value the pipeline imputes
    return X


def category_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].astype("category")
    return out


SHAPES = {
    "pandas str": lambda f: f,
    "pandas object": lambda f: f.astype(object),
    "pandas category": category_frame,
    "pandas nullable": lambda f: f.convert_dtypes(),
    "pandas pyarrow": lambda f: f.convert_dtypes(dtype_backend="pyarrow"),
    "arrow table": lambda f: pa.Table.from_pandas(f, preserve_index=False),
    "arrow record batch": lambda f: pa.Table.from_pandas(f, preserve_index=False).to_batches()[0],
    "records": records_from_frame,
    "columns of lists": lambda f: {c: f[c].tolist() for c in f.columns},
    "columns of arrays": lambda f: {c: f[c].to_numpy() for c in f.columns},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_input_shapes_agree_with_the_original(
    model: predictlib.Model, house_prices: Built, frame: pd.DataFrame, shape: str
) -> None:
    expected = original_predict(house_prices.trained.model, frame)
    got = model.predict(SHAPES[shape](frame))
    np.testing.assert_allclose(got, expected, rtol=tolerances.RTOL, atol=tolerances.ATOL)


@pytest.mark.parametrize(
    "missing", [None, math.nan, np.float32("nan"), pd.NA, pd.NaT, np.datetime64("NaT")], ids=repr
)
def test_every_missing_marker_is_missing(
    model: predictlib.Model, house_prices: Built, frame: pd.DataFrame, missing: Any
) -> None:
    record = records_from_frame(frame.iloc[1:2])[0]
    reference = dict(record, LotFrontage=None, Alley=None)
    expected = original_predict(
        house_prices.trained.model, reference_frame([reference], house_prices.exported.columns)
    )
    assert model.predict(dict(record, LotFrontage=missing, Alley=missing)) == pytest.approx(
        expected[0], rel=tolerances.RTOL
    )


@pytest.mark.parametrize(
    "value", [8450, 8450.0, np.int64(8450), np.float32(8450), np.uint16(8450), np.float64(8450)], ids=repr
)
def test_numbers_of_any_numeric_type(model: predictlib.Model, frame: pd.DataFrame, value: Any) -> None:
    record = records_from_frame(frame.iloc[1:2])[0]
    assert model.predict(dict(record, LotArea=value)) == model.predict(dict(record, LotArea=8450.0))


def test_text_that_is_not_valid_unicode_is_refused_like_the_original_does(
    model: predictlib.Model, house_prices: Built, frame: pd.DataFrame
) -> None:
    record = records_from_frame(frame.iloc[1:2])[0]
    for column in house_prices.exported.categorical:
        odd = dict(record, **{column: "\ud800 not unicode"})
        with pytest.raises(ValueError):  # UnicodeEncodeError inside pandas
            original_predict(
                house_prices.trained.model, reference_frame([odd], house_prices.exported.columns)
            )
        with pytest.raises(predictlib.InputError) as info:
            model.predict([record, odd])
        assert (info.value.row, info.value.column) == (1, column)
        assert "not valid Unicode" in info.value.expected


def test_huge_batch(model: predictlib.Model, frame: pd.DataFrame) -> None:
    big = pd.concat([frame] * 2_500, ignore_index=True)  # 100,000 rows
    got = model.predict(big)
    assert got.shape == (len(big),)
    np.testing.assert_array_equal(got[: len(frame)], got[len(frame) : 2 * len(frame)])
