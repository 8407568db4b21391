"""Model.predict_rows: every row predicted or refused one by one (for scoring jobs):
the predicted rows equal predict() on them, the refused rows carry the problems
predict() names for the whole batch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame


@pytest.fixture(scope="module")
def model(house_prices: Built) -> predictlib.Model:
    return predictlib.load(house_prices.folder)


@pytest.fixture(scope="module")
def bad_frame(house_prices: Built) -> pd.DataFrame:
    """50 rows, four of them refused: by the graph (two columns of one row, a log of a
    negative number) and by the adapter (a number in a categorical column)."""
    frame = house_prices.trained.X_test.iloc[:50].reset_index(drop=True)
    frame = frame.astype({"LotArea": np.float64, "GrLivArea": np.float64, "Neighborhood": object})
    frame.loc[3, "LotArea"] = -5.0
    frame.loc[3, "GrLivArea"] = math.inf
    frame.loc[17, "Neighborhood"] = 12
    frame.loc[30, "Neighborhood"] = "never-seen-label"
    frame.loc[49, "LotArea"] = 0.0
    return frame


def shapes(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "pandas": frame,
        "records": records_from_frame(frame),
        "arrow": pa.Table.from_pandas(frame.astype({"Neighborhood": str}), preserve_index=False),
        "polars": pl.from_pandas(frame.astype({"Neighborhood": str})),
    }


def test_refused_rows_are_reported_and_the_others_predicted(
    model: predictlib.Model, bad_frame: pd.DataFrame
) -> None:
    for kind, data in shapes(bad_frame).items():
        with pytest.raises(predictlib.InputError) as whole:
            model.predict(data)
        refused = sorted({p.row for p in whole.value.problems})
        # arrow and polars get the number 12 as the text "12": an unseen category, accepted
        assert refused == ([3, 17, 49] if kind in ("pandas", "records") else [3, 49]), kind
        good = [i for i in range(len(bad_frame)) if i not in refused]
        found = model.predict_rows(data)
        assert [(p.row, p.column, p.expected) for p in found.problems] == [
            (p.row, p.column, p.expected) for p in whole.value.problems
        ]
        assert np.flatnonzero(found.refused).tolist() == refused
        assert np.isnan(found.predictions[refused]).all()
        subset = shapes(bad_frame.iloc[good].reset_index(drop=True))[kind]
        np.testing.assert_array_equal(found.predictions[good], model.predict(subset))
        assert found.probabilities is None


def test_a_clean_batch_and_one_record(model: predictlib.Model, bad_frame: pd.DataFrame) -> None:
    clean = bad_frame.drop(index=[3, 17, 30, 49]).reset_index(drop=True)
    found = model.predict_rows(clean)
    assert not found.refused.any() and found.problems == []
    np.testing.assert_array_equal(found.predictions, model.predict(clean))
    record = records_from_frame(bad_frame.iloc[3:4])[0]
    one = model.predict_rows(record)
    assert one.refused.tolist() == [True] and {p.row for p in one.problems} == {0}
    assert model.predict_rows(clean.iloc[:0]).predictions.shape == (0,)


def test_input_level_problems_still_raise(model: predictlib.Model, bad_frame: pd.DataFrame) -> None:
    with pytest.raises(predictlib.InputError, match="required column is missing"):
        model.predict_rows(bad_frame.drop(columns=["LotArea"]))


def test_a_classifier(built_models: dict[str, Built]) -> None:
    penguins = built_models["penguins"]
    m = predictlib.load(penguins.folder)
    frame = penguins.trained.X_test.iloc[:30].reset_index(drop=True)
    column = penguins.exported.numeric[0]
    frame = frame.astype({column: object})
    frame.loc[5, column] = "text"
    found = m.predict_rows(frame)
    assert found.refused.tolist() == [i == 5 for i in range(30)]
    assert found.predictions[5] is None and np.isnan(found.probabilities[5]).all()
    rest = frame.drop(index=5).astype({column: np.float64})
    np.testing.assert_array_equal(np.delete(found.predictions, 5), m.predict(rest))
    np.testing.assert_array_equal(np.delete(found.probabilities, 5, axis=0), m.predict_proba(rest))


def test_large_batches_by_slices(
    house_prices: Built, bad_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import predictlib._model as runtime_model

    m = predictlib.load(house_prices.folder)
    columns = {c: bad_frame[c].tolist() for c in bad_frame.columns}  # read through objects
    for data in (bad_frame, shapes(bad_frame)["arrow"], columns):
        whole = m.predict_rows(data)
        monkeypatch.setattr(runtime_model, "ADAPT_CHUNK", 16)
        sliced = m.predict_rows(data)
        monkeypatch.undo()
        assert [(p.row, p.column) for p in sliced.problems] == [(p.row, p.column) for p in whole.problems]
        np.testing.assert_array_equal(sliced.refused, whole.refused)
        # onnxruntime's kernels may round differently for another number of rows per run
        np.testing.assert_allclose(sliced.predictions, whole.predictions, rtol=tolerances.RTOL)
