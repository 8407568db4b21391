"""Property tests: the datetime converters (DatetimeFeatures, DatetimeOrdinal,
DatetimeSubtraction) against feature-engine, on naive datetime64 columns of any unit
over the whole datetime64[ns] range; plus an exhaustive calendar sweep and the export
refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    NAT_NS,
    NS_MAX,
    NS_MIN,
    check_equivalent,
    converter_settings,
    covers,
    datetime_frames,
    datetime_series,
    export_error,
    fit_and_check,
    quietly,
    run_graph,
    subsets,
)
from feature_engine.datetime import DatetimeFeatures, DatetimeOrdinal, DatetimeSubtraction
from feature_engine.datetime._datetime_constants import FEATURES_SUPPORTED
from feature_engine.imputation import AddMissingIndicator, MeanMedianImputer
from feature_engine.selection import DropFeatures
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from predictlib.build import ExportError, export_pipeline, infer_columns
from predictlib.build.converters.feature_engine.datetime import OUTPUT_UNITS, unit_nanoseconds

#: a range where no difference of two datetimes overflows int64 nanoseconds (1823-2116)
NARROW = (-(2**62) + 1, 2**62 - 1)

features_to_extract = st.one_of(
    st.none(),
    st.just("all"),
    st.lists(st.sampled_from(FEATURES_SUPPORTED), min_size=1, max_size=6, unique=True),
)
#: parsing options (dayfirst, yearfirst, utc, format): without effect on datetime64 columns
PARSING = st.fixed_dictionaries(
    {
        "dayfirst": st.booleans(),
        "yearfirst": st.booleans(),
        "utc": st.sampled_from([None, True, False]),
        "format": st.sampled_from([None, "%Y-%m-%d", "%d/%m/%Y %H:%M", "mixed", "ISO8601"]),
    }
)


@covers(DatetimeFeatures)
@converter_settings(max_examples=100)
@given(
    data=st.data(),
    features=features_to_extract,
    drop_original=st.booleans(),
    missing_values=st.sampled_from(["raise", "ignore"]),
    parsing=PARSING,
)
def test_datetime_features(
    data: st.DataObject,
    features: list[str] | str | None,
    drop_original: bool,
    missing_values: str,
    parsing: dict[str, Any],
) -> None:
    f = data.draw(datetime_frames(fit_missing=missing_values == "ignore", units=("ns", "us", "ms", "s")))
    variables = data.draw(st.none() | subsets(f.datetime))
    transformer = DatetimeFeatures(
        variables=variables,
        features_to_extract=features,
        drop_original=drop_original,
        missing_values=missing_values,
        **parsing,
    )
    fit_and_check(transformer, f.fit, f.transform)


@covers(DatetimeOrdinal)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    start_date=st.sampled_from(
        [
            None,
            "2000-01-01",
            "1970-01-01 23:59:59",
            "1677-09-22",
            "2262-04-10",
            dt.datetime(2024, 2, 29, 12, 30),
            pd.Timestamp("1999-12-31 00:00:00.000000001"),
            dt.date(1900, 3, 1),
        ]
    ),
    drop_original=st.booleans(),
    missing_values=st.sampled_from(["raise", "ignore"]),
)
def test_datetime_ordinal(
    data: st.DataObject, start_date: object, drop_original: bool, missing_values: str
) -> None:
    f = data.draw(datetime_frames(fit_missing=missing_values == "ignore"))
    variables = data.draw(st.none() | subsets(f.datetime))
    transformer = DatetimeOrdinal(
        variables=variables, start_date=start_date, drop_original=drop_original, missing_values=missing_values
    )
    fit_and_check(transformer, f.fit, f.transform)


@covers(DatetimeSubtraction)
@converter_settings(max_examples=80)
@given(
    data=st.data(),
    output_unit=st.sampled_from(OUTPUT_UNITS),
    drop_original=st.booleans(),
    missing_values=st.sampled_from(["raise", "ignore"]),
    wide=st.booleans(),
    parsing=PARSING,
)
def test_datetime_subtraction(
    data: st.DataObject,
    output_unit: str,
    drop_original: bool,
    missing_values: str,
    wide: bool,
    parsing: dict[str, Any],
) -> None:
    # the whole range (differences may overflow: pandas raises OverflowError on
    # datetime64[ns] columns, the graph refuses the row) on ns columns only: on coarser
    # units pandas wraps the overflowing difference silently (refused by the graph too)
    if wide:
        f = data.draw(datetime_frames(fit_missing=missing_values == "ignore", units=("ns",)))
    else:
        low, high = NARROW
        f = data.draw(
            datetime_frames(
                fit_missing=missing_values == "ignore", units=("ns", "us", "ms", "s"), low=low, high=high
            )
        )
    variables = data.draw(st.none() | subsets(f.datetime))
    reference = data.draw(st.none() | subsets(f.datetime))
    n_new = len(variables if variables is not None else f.datetime) * len(
        reference if reference is not None else f.datetime
    )
    named = data.draw(st.booleans())
    new_names = [f"diff{k}" for k in range(n_new)] if named else None
    transformer = DatetimeSubtraction(
        variables=variables,
        reference=reference,
        new_variables_names=new_names,
        output_unit=output_unit,
        drop_original=drop_original,
        missing_values=missing_values,
        **parsing,
    )
    fit_and_check(transformer, f.fit, f.transform)


@covers(DatetimeFeatures, DatetimeSubtraction)
@converter_settings(max_examples=25)
@given(data=st.data(), drop_original=st.booleans())
def test_datetime_pipeline(data: st.DataObject, drop_original: bool) -> None:
    """Datetime steps with other steps: AddMissingIndicator on every column (datetime
    ones included), DropFeatures of a datetime column, then MeanMedianImputer."""
    low, high = NARROW
    f = data.draw(datetime_frames(datetime=(2, 3), numeric=(1, 2), low=low, high=high))
    pipe = Pipeline(
        [
            ("indicate", AddMissingIndicator(missing_only=False)),
            ("diff", DatetimeSubtraction(variables=["d0"], reference=["d1"], output_unit="h")),
            (
                "features",
                DatetimeFeatures(
                    variables=["d0"],
                    features_to_extract=["year", "week", "weekend", "hour"],
                    missing_values="ignore",
                    drop_original=drop_original,
                ),
            ),
            ("drop", DropFeatures(["d1"])),
            ("impute", MeanMedianImputer()),
        ]
    )
    fit_and_check(pipe, f.fit, f.transform)


def test_calendar_sweep_over_the_whole_range() -> None:
    """Every day of the datetime64[ns] range (1677-09-22 to 2262-04-10), each at a
    different time of day, plus the range's ends: every feature equals pandas'."""
    days = np.arange(NS_MIN // 86_400_000_000_000 + 1, NS_MAX // 86_400_000_000_000)
    rng = np.random.default_rng(7)
    ns = days * 86_400_000_000_000 + rng.integers(0, 86_400_000_000_000, len(days))
    ns = np.concatenate([ns, [NS_MIN, NS_MAX, NAT_NS, -1, 0]])
    frame = pd.DataFrame({"d": datetime_series(ns.tolist())})
    transformer = DatetimeFeatures(features_to_extract="all", missing_values="ignore").fit(frame.iloc[:-3])
    keep = frame.drop(index=len(frame) - 3)  # no NaT: week would raise
    expected = quietly(lambda: transformer.transform(keep))
    exported = export_pipeline(transformer, infer_columns(frame))
    got = run_graph(exported, keep)
    assert "refusals" not in got or not got["refusals"].any()
    columns = exported.output_columns["num_out"]
    for j, column in enumerate(columns):
        want = expected[column].to_numpy(dtype=np.float64)
        assert np.array_equal(got["num_out"][:, j], want), column
    ordinal = DatetimeOrdinal().fit(frame.iloc[:-3])
    out = run_graph(export_pipeline(ordinal, infer_columns(frame)), keep)["num_out"][:, 0]
    assert np.array_equal(out, quietly(lambda: ordinal.transform(keep))["d_ordinal"].to_numpy(np.float64))


def test_subtraction_units_are_feature_engines() -> None:
    """The nanoseconds of each output_unit: numpy's (Y and M are average Gregorian
    years / months; ps, fs and as are 0 ns, hence +-inf and NaN results)."""
    assert unit_nanoseconds("D") == 86_400 * 10**9
    assert unit_nanoseconds("Y") == 31_556_952 * 10**9
    assert unit_nanoseconds("M") == 2_629_746 * 10**9
    assert unit_nanoseconds("μs") == unit_nanoseconds("us") == 1000
    assert unit_nanoseconds("ps") == unit_nanoseconds("fs") == unit_nanoseconds("as") == 0
    fit = pd.DataFrame({"a": datetime_series([0, 10**9, NAT_NS, 0]), "b": datetime_series([10**9, 0, 0, 0])})
    sub = DatetimeSubtraction(variables=["a"], reference=["b"], output_unit="ps").fit(fit)
    out = run_graph(export_pipeline(sub, infer_columns(fit)), fit)["num_out"][:, -1]
    assert out[0] == -np.inf and out[1] == np.inf and np.isnan(out[2]) and np.isnan(out[3])


def test_overflowing_difference_is_refused_as_pandas_raises() -> None:
    fit = pd.DataFrame({"a": datetime_series([0]), "b": datetime_series([0])})
    sub = DatetimeSubtraction(variables=["a"], reference=["b"]).fit(fit)
    rows = pd.DataFrame(
        {
            "a": datetime_series([NS_MAX, NS_MIN, NS_MIN, 0, NS_MAX, NAT_NS]),
            "b": datetime_series([-1, 1, 0, NS_MAX, 0, NS_MAX]),
        }
    )
    outcome = check_equivalent(sub, fit, rows)
    assert outcome.refused == 2  # NS_MAX - (-1) and NS_MIN - 1 (== NaT's value: pandas refuses it too)


# ----------------------------------------------------------------- export refusals

TEXT_DATES = pd.DataFrame({"when": ["2020-01-01", "2021-06-30", "2022-12-31"], "x": [1.0, 2.0, 3.0]})


@pytest.mark.parametrize(
    "transformer",
    [
        DatetimeFeatures(variables=["when"]),
        DatetimeFeatures(),
        DatetimeOrdinal(variables=["when"]),
        DatetimeSubtraction(variables=["when"], reference=["when"]),
    ],
)
def test_text_variables_are_refused_at_export(transformer: object) -> None:
    quietly(lambda: transformer.fit(TEXT_DATES))  # type: ignore[attr-defined]
    message = export_error(transformer, TEXT_DATES)
    name = type(transformer).__name__
    assert f"step '<model>' ({name})" in message
    assert "['when']" in message and "pandas.to_datetime" in message and "datetime64" in message


def test_index_variables_are_refused_at_export() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.DatetimeIndex(["2020-01-01", "2020-01-02"]))
    transformer = DatetimeFeatures(variables="index").fit(frame)
    message = export_error(transformer, frame)
    assert "(DatetimeFeatures)" in message and "index" in message and "not an input of the graph" in message


def test_existing_new_column_names_are_refused_at_export() -> None:
    frame = pd.DataFrame({"d": datetime_series([0, 10**18]), "d_month": [1.0, 2.0]})
    message = export_error(DatetimeFeatures(variables=["d"], features_to_extract=["month"]).fit(frame), frame)
    assert "(DatetimeFeatures)" in message and "d_month" in message and "already exist" in message
    frame = pd.DataFrame({"d": datetime_series([0, 10**18]), "e": datetime_series([0, 1])})
    sub = DatetimeSubtraction(variables=["d"], reference=["e"], new_variables_names=["e"]).fit(frame)
    assert "(DatetimeSubtraction)" in export_error(sub, frame)


def test_timezone_aware_columns_are_refused() -> None:
    frame = pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2020-06-01"]).tz_localize("Europe/Paris")})
    with pytest.raises(ExportError, match="naive datetime64 columns only"):
        infer_columns(frame)


def test_datetime_columns_reaching_an_estimator_are_refused() -> None:
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"d": datetime_series([0, 10**18, 2 * 10**18]), "x": [1.0, 2.0, 3.0]})
    features = DatetimeFeatures(features_to_extract=["year"], drop_original=False).fit(frame)
    regressor = LinearRegression().fit(np.arange(9.0).reshape(3, 3) ** 2, [1.0, 2.0, 4.0])
    pipe = Pipeline([("features", features), ("lr", regressor)])
    with pytest.raises(
        ExportError, match=r"step 'lr' \(LinearRegression\) receives datetime columns \['d'\]"
    ):
        export_pipeline(pipe, infer_columns(frame))
