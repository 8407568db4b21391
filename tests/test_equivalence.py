"""Equivalence of the exported graph with the original pipeline, end to end.

The build verifies it (held-out rows + 10,000 generated records, see
conversion/stages/verify.py) and fails when they disagree; these tests check that the
build did, and add hypothesis-generated records on top.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import EXTREME_NUMBERS, compare, records_from_frame, reference_frame

#: models whose graph refuses no value: every step before a LightGBM model imputes or
#: encodes, and LightGBM takes NaN and infinities (only the input contract refuses)
REFUSES_NOTHING = {"ames"}


def test_build_verified_every_model(built_models: dict[str, Built]) -> None:
    for name, built in built_models.items():
        eq = built.manifest["equivalence"]
        assert eq["tolerance"] == {"rtol": tolerances.RTOL, "atol": tolerances.ATOL}
        assert eq["held_out"]["rows"] == len(built.trained.X_test)
        assert eq["generated"]["rows"] >= 10_000
        for part in ("held_out", "generated"):
            assert eq[part]["failures"] == 0, name
            assert eq[part]["max_rel_error"] <= tolerances.RTOL, name
        assert eq["generated"]["accepted"] > 0
        assert (eq["generated"]["refused"] == 0) == (name in REFUSES_NOTHING), name


def test_held_out_metric_is_recorded(house_prices: Built) -> None:
    held = house_prices.manifest["metrics"]["held_out"]
    assert held["rmse_log"] <= house_prices.trained.config["acceptance"]["max_rmse_log"]
    assert held == house_prices.trained.metrics


def test_compare_catches_a_wrong_graph(house_prices: Built) -> None:
    """The check itself can fail: a model whose predictions are scaled by 1+1e-6 is caught."""

    class Shifted:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def predict(self, frame: Any) -> np.ndarray:
            return np.asarray(self.inner.predict(frame)) * (1 + 1e-6)

    runtime = predictlib.load(house_prices.folder)
    rows = records_from_frame(house_prices.trained.X_test.iloc[:10])
    report = compare(Shifted(house_prices.trained.model), runtime, rows, house_prices.exported.columns)
    assert len(report.failures) == 10


@pytest.fixture(scope="module")
def strategies(house_prices: Built) -> Any:
    X = house_prices.trained.X_train
    values: dict[str, st.SearchStrategy[Any]] = {}
    for c in house_prices.exported.numeric:
        seen = X[c].dropna().unique().tolist()
        values[c] = st.one_of(
            st.sampled_from(seen),
            st.none(),
            st.just(math.nan),
            st.sampled_from(EXTREME_NUMBERS),
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.integers(-(10**6), 10**6),
        )
    for c in house_prices.exported.categorical:
        seen = X[c].dropna().unique().tolist()
        values[c] = st.one_of(st.sampled_from(seen), st.none(), st.just(math.nan), st.text(max_size=12))
    base = records_from_frame(X.reset_index(drop=True))
    return base, values, predictlib.load(house_prices.folder)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_records_match_or_are_refused_by_both(
    house_prices: Built, strategies: Any, data: Any
) -> None:
    base, values, runtime = strategies
    record = dict(data.draw(st.sampled_from(base), label="training row"))
    for column in data.draw(
        st.lists(st.sampled_from(sorted(values)), max_size=4, unique=True), label="edited"
    ):
        record[column] = data.draw(values[column], label=column)
    frame = reference_frame([record], house_prices.exported.columns)
    try:
        expected = float(house_prices.trained.model.predict(frame)[0])
    except (ValueError, TypeError):
        with pytest.raises(predictlib.InputError):
            runtime.predict(record)
        return
    got = runtime.predict(record)
    if math.isinf(expected) or math.isnan(expected):
        assert got == expected or (math.isnan(got) and math.isnan(expected))
    else:
        assert abs(got - expected) <= tolerances.ATOL + tolerances.RTOL * abs(expected)
