"""Adversarial input: whatever is thrown at predict, the outcome is a correct prediction
(checked against the original pipeline) or a documented predictlib error, never another
exception. More than 100,000 records per run."""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import (
    numeric_errors,
    original_predict,
    records_from_frame,
    reference_frame,
)

pytestmark = pytest.mark.slow

ODD_VALUES: list[Any] = [
    None,
    math.nan,
    math.inf,
    -math.inf,
    0,
    -1,
    1e308,
    -1e308,
    5e-324,
    10**30,
    10**400,
    -(10**400),
    True,
    False,
    np.bool_(True),
    np.int8(-3),
    np.uint64(2**63),
    np.float32(1.5),
    np.float16("nan"),
    np.float64("inf"),
    np.datetime64("NaT"),
    np.datetime64("2020-01-01"),
    pd.NA,
    pd.NaT,
    pd.Timestamp("2020-01-01"),
    "",
    " ",
    "12.5",
    "NaN",
    "none",
    "Missing",
    "Rare",
    "__predictlib_missing__",
    "\x00",
    "\ud800",
    "é" * 3,
    "🏠",
    "x" * 1_000_000,
    b"bytes",
    bytearray(b"x"),
    [1, 2],
    (1,),
    {"a": 1},
    {1, 2},
    complex(1, 2),
    decimal.Decimal("1.5"),
    datetime.date(2020, 1, 1),
    object(),
    np.array([1.0]),
    np.array(2.0),
    range(3),
    Ellipsis,
]


class Fuzzer:
    """Seeded adversarial records built from real rows."""

    def __init__(self, built: Built) -> None:
        self.base = records_from_frame(built.trained.X_train.reset_index(drop=True))
        self.columns = [c.name for c in built.exported.columns]
        self.numeric = {c: built.trained.X_train[c].dropna().to_numpy() for c in built.exported.numeric}

    def record(self, rng: np.random.Generator) -> Any:
        roll = rng.random()
        if roll < 0.01:
            return ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]  # not a mapping at all
        record = dict(self.base[int(rng.integers(len(self.base)))])
        for _ in range(int(rng.integers(0, 4))):
            column = self.columns[int(rng.integers(len(self.columns)))]
            action = rng.random()
            if action < 0.05:
                record.pop(column, None)
            elif action < 0.55:
                record[column] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
            elif column in self.numeric:
                record[column] = float(rng.choice(self.numeric[column])) * float(
                    rng.choice([-1.0, 1e6, 1e-6])
                )
            else:
                record[column] = "".join(
                    chr(int(c)) for c in rng.integers(32, 0x3000, size=int(rng.integers(1, 8)))
                )
        if rng.random() < 0.05:
            record[f"extra-{rng.integers(100)}"] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
        return record


def check_outcome(model: predictlib.Model, built: Built, batch: list[Any]) -> int:
    """Predict ``batch``; assert the outcome is right. Returns the number of refused rows."""
    try:
        got = model.predict(batch)
    except predictlib.InputError as err:
        assert err.problems
        refused = set()
        for p in err.problems:
            assert isinstance(p, predictlib.Problem) and p.expected
            assert p.row is not None and 0 <= p.row < len(batch)
            refused.add(p.row)
        rows = [r for i, r in enumerate(batch) if i not in refused]
        if rows:
            assert_matches(model, built, rows)
        return len(refused)
    assert got.shape == (len(batch),)
    assert_matches(model, built, batch, got)
    return 0


def assert_matches(model: predictlib.Model, built: Built, rows: list[Any], got: Any = None) -> None:
    if got is None:
        got = model.predict(rows)  # the rest of a batch predicts on its own
    expected = original_predict(built.trained.model, reference_frame(rows, built.exported.columns))
    _, _, bad = numeric_errors(got, expected)
    assert not bad.any(), [(rows[i], got[i], expected[i]) for i in np.nonzero(bad)[0][:3]]


@pytest.fixture(scope="module")
def fuzz(house_prices: Built) -> tuple[Fuzzer, predictlib.Model]:
    return Fuzzer(house_prices), predictlib.load(house_prices.folder)


BATCHES = 110
BATCH_SIZE = 1_000


@settings(max_examples=BATCHES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_100k_adversarial_records(
    house_prices: Built, fuzz: tuple[Fuzzer, predictlib.Model], seed: int
) -> None:
    fuzzer, model = fuzz
    rng = np.random.default_rng(seed)
    batch = [fuzzer.record(rng) for _ in range(BATCH_SIZE)]
    if not all(isinstance(r, dict) for r in batch):
        with pytest.raises(predictlib.InputError) as info:
            model.predict(batch)
        assert any(p.column is None for p in info.value.problems)
        batch = [r for r in batch if isinstance(r, dict)]
    check_outcome(model, house_prices, batch)
    # single records follow the same rules as batches
    for record in batch[:5]:
        try:
            single = model.predict(record)
        except predictlib.InputError:
            with pytest.raises(predictlib.InputError):
                model.predict([record])
        else:
            assert np.asarray(model.predict([record]))[0] == pytest.approx(
                single, rel=tolerances.RTOL, nan_ok=True
            )


values = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.floats(),
    st.integers(),
    st.text(),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.datetimes(),
    st.decimals(allow_nan=True),
)


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hypothesis_records(house_prices: Built, fuzz: tuple[Fuzzer, predictlib.Model], data: Any) -> None:
    fuzzer, model = fuzz
    record = dict(data.draw(st.sampled_from(fuzzer.base)))
    edits = data.draw(
        st.dictionaries(st.sampled_from(fuzzer.columns) | st.text(max_size=8), values, max_size=4)
    )
    record.update(edits)
    for key in data.draw(st.lists(st.sampled_from(fuzzer.columns), max_size=2)):
        record.pop(key, None)
    check_outcome(model, house_prices, [record])
