"""Property tests: MeanNormalizationScaler, MatchVariables and MatchCategories converters
against feature-engine's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    NS_MAX,
    NS_MIN,
    check_equivalent,
    converter_settings,
    covers,
    datetime_frames,
    datetime_series,
    datetimes,
    export_error,
    fit_and_check,
    frames,
    numbers,
    quietly,
    run_graph,
    subsets,
    unit_low,
)
from feature_engine.encoding import OrdinalEncoder
from feature_engine.outliers import Winsorizer
from feature_engine.preprocessing import MatchCategories, MatchVariables
from feature_engine.scaling import MeanNormalizationScaler
from feature_engine.selection import DropConstantFeatures
from feature_engine.transformation import YeoJohnsonTransformer
from hypothesis import given, reject
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from predictlib.build import MISSING, export_pipeline, infer_columns


@covers(MeanNormalizationScaler)
@converter_settings(max_examples=40)
@given(data=st.data())
def test_mean_normalization_scaler(data: st.DataObject) -> None:
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 1),
            fit_missing="none",
            fit_numbers=numbers(missing=False, infinite=False),
        )
    )
    variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(MeanNormalizationScaler(variables=variables), f.fit, f.transform)


@covers(MatchVariables)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    missing_values=st.sampled_from(["raise", "ignore"]),
    match_dtypes=st.booleans(),
    fill_value=st.sampled_from([math.nan, 0, "x", 1.5]),
)
def test_match_variables(
    data: st.DataObject, missing_values: str, match_dtypes: bool, fill_value: object
) -> None:
    f = data.draw(
        frames(numeric=(0, 3), categorical=(0, 3), fit_missing="none" if missing_values == "raise" else "any")
    )
    fit, transform = f.fit.copy(), f.transform.copy()
    # more fit dtypes for match_dtypes: category (of the fit labels) and bool
    for name in f.categorical:
        if data.draw(st.booleans()):
            fit[name] = fit[name].astype("category")
    if data.draw(st.booleans()):
        fit["b0"] = data.draw(st.lists(st.booleans(), min_size=len(fit), max_size=len(fit)))
        transform["b0"] = pd.Series(
            data.draw(st.lists(numbers(), min_size=len(transform), max_size=len(transform))), dtype="float64"
        )
    step = MatchVariables(
        fill_value=fill_value, missing_values=missing_values, match_dtypes=match_dtypes, verbose=False
    )
    fit_and_check(step, fit, transform)


@covers(MatchVariables)
@converter_settings(max_examples=30)
@given(
    data=st.data(),
    missing_values=st.sampled_from(["raise", "ignore"]),
    match_dtypes=st.booleans(),
    nanoseconds=st.booleans(),
)
def test_match_variables_datetimes(
    data: st.DataObject, missing_values: str, match_dtypes: bool, nanoseconds: bool
) -> None:
    """Datetime columns of any unit; with ``nanoseconds`` the transform frame holds any
    nanosecond (what the graph's ``dt`` input holds), which match_dtypes=True floors to
    the fit unit."""
    f = data.draw(
        datetime_frames(
            units=("ns", "us", "ms", "s"),
            fit_missing=missing_values == "ignore",
            numeric=(0, 1),
            categorical=(0, 1),
        )
    )
    fit, transform = f.fit.copy(), f.transform.copy()
    if missing_values == "raise":  # no missing value at fit in the other columns either
        fit[f.numeric] = fit[f.numeric].fillna(0.0)
        fit[f.categorical] = fit[f.categorical].fillna("a")
    if nanoseconds:
        for name in f.datetime:
            n = len(transform)
            # from the first nanosecond whose floor to the fit unit is a nanosecond datetime
            # (test_match_variables_datetime_floor_outside_the_nanosecond_range: before it)
            low = unit_low(np.datetime_data(fit[name].dtype)[0])
            values = data.draw(st.lists(datetimes(low=low), min_size=n, max_size=n))
            transform[name] = datetime_series(values).to_numpy()
    step = MatchVariables(missing_values=missing_values, match_dtypes=match_dtypes, verbose=False)
    fit_and_check(step, fit, transform)


@covers(MatchCategories)
@converter_settings(max_examples=50)
@given(data=st.data(), missing_values=st.sampled_from(["raise", "ignore"]))
def test_match_categories(data: st.DataObject, missing_values: str) -> None:
    f = data.draw(
        frames(numeric=(0, 2), categorical=(1, 3), fit_missing="none" if missing_values == "raise" else "any")
    )
    variables = data.draw(st.none() | subsets(f.categorical))
    fit_and_check(MatchCategories(variables=variables, missing_values=missing_values), f.fit, f.transform)


# ----------------------------------------------------------------- chosen values

FIT = pd.DataFrame(
    {
        "n0": [1.0, 2.0, 3.0, 4.0],
        "i0": [1, 2, 3, 4],
        "c0": pd.Series(["a", "b", "a", "c"], dtype="str"),
        "k0": pd.Series(["x", "y", "x", "y"], dtype="category"),
        "b0": [True, False, True, True],
    }
)


def test_match_variables_casts_to_the_fit_dtypes() -> None:
    """int64: truncated toward zero (numpy's x86-64 cast gives -2**63 out of range),
    NaN / inf refused; bool: nonzero and NaN are True; category: outside it is missing."""
    values = [0.0, -0.0, 2.7, -2.7, 1e15 + 0.5, 2.0**63, -(2.0**63), -1e300, 1e300, math.nan, math.inf]
    n = len(values)
    transform = pd.DataFrame(
        {
            "n0": [1.0] * n,
            "i0": values,
            "c0": pd.Series(["a"] * n, dtype="str"),
            "k0": pd.Series(["x", "z", None, "y", "X"] + ["x"] * (n - 5), dtype="str"),
            "b0": values,
        }
    )
    step = quietly(lambda: MatchVariables(match_dtypes=True, missing_values="ignore", verbose=False).fit(FIT))
    outcome = check_equivalent(step, FIT, transform)
    assert outcome.refused == 2  # NaN and inf into int64
    out = quietly(lambda: step.transform(transform.iloc[:9]))
    assert out["i0"].tolist()[:4] == [0, 0, 2, -2] and out["k0"].isna().tolist()[:5] == [
        False,
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize("unit", ["us", "ms", "s"])
def test_match_variables_floors_datetimes_to_the_fit_unit(unit: str) -> None:
    fit = pd.DataFrame(
        {"d0": datetime_series([0, 10**12, 2 * 10**12], unit).to_numpy(), "n0": [1.0, 2.0, 3.0]}
    )
    low = unit_low(unit)
    values = [-1, 1, -1001, 1999, 10**9 - 1, -(10**9) + 1, low, low + 1, NS_MAX, -(2**63)]
    transform = pd.DataFrame({"d0": datetime_series(values).to_numpy(), "n0": [1.0] * len(values)})
    step = quietly(lambda: MatchVariables(match_dtypes=True, missing_values="ignore", verbose=False).fit(fit))
    outcome = check_equivalent(step, fit, transform)
    assert outcome.refused == 0 and len(outcome.exported.checks) == 1


@pytest.mark.parametrize("unit", ["us", "ms", "s"])
def test_match_variables_datetime_floor_outside_the_nanosecond_range(unit: str) -> None:
    """The first nanosecond datetimes floor, in a coarser unit, to a datetime before
    1677-09-21T00:12:43.145224193 that only that unit holds: the original returns it,
    the graph (nanoseconds) cannot and refuses the row."""
    fit = pd.DataFrame({"d0": datetime_series([0, 10**12], unit).to_numpy()})
    step = quietly(lambda: MatchVariables(match_dtypes=True, verbose=False).fit(fit))
    low = unit_low(unit)
    transform = pd.DataFrame({"d0": datetime_series([NS_MIN, low - 1, low, 0]).to_numpy()})
    out = quietly(lambda: step.transform(transform))["d0"]
    assert out.dtype == f"datetime64[{unit}]"
    assert out.iloc[0] < pd.Timestamp(NS_MIN)  # before the first nanosecond datetime
    exported = export_pipeline(step, infer_columns(fit))
    outputs = run_graph(exported, transform)
    assert [c.reason.startswith("missing") for c in exported.checks] == [True, False]
    assert outputs["refusals"][:, 1].tolist() == [True, True, False, False]
    assert outputs["dt_out"][2:, 0].tolist() == [low, 0]


def test_match_variables_refuses_missing_values() -> None:
    transform = pd.DataFrame(
        {
            "n0": [1.0, math.nan, 3.0, math.inf],
            "i0": [1, 2, 3, 4],
            "c0": pd.Series(["a", "b", None, "zz"], dtype="str"),
            "k0": pd.Series(["x", "y", "x", "y"], dtype="str"),
            "b0": [1.0, 0.0, 1.0, 0.0],
        }
    )
    step = quietly(lambda: MatchVariables(verbose=False).fit(FIT))
    outcome = check_equivalent(step, FIT, transform)
    assert outcome.refused == 2  # NaN and the missing label; inf is no missing value


def test_match_variables_graph_inputs_are_the_fit_columns() -> None:
    """The export's inputs are the fit columns: the runtime drops extra columns (as the
    step does) and refuses a record that lacks one (the step would add it)."""
    step = quietly(lambda: MatchVariables(verbose=False).fit(FIT))
    exported = export_pipeline(step, infer_columns(FIT))
    assert [c.name for c in exported.columns] == list(FIT.columns)
    reordered = FIT[["c0", "b0", "n0", "k0", "i0"]].assign(extra=1.0)
    assert quietly(lambda: step.transform(reordered)).columns.tolist() == list(FIT.columns)


def test_match_categories_unseen_and_missing() -> None:
    fit = FIT[["n0", "c0"]]
    transform = pd.DataFrame(
        {"n0": [1.0, 2.0, 3.0, 4.0], "c0": pd.Series(["a", "zz", None, "c"], dtype="str")}
    )
    ignore = quietly(lambda: MatchCategories(missing_values="ignore").fit(fit))
    outputs = run_graph(export_pipeline(ignore, infer_columns(fit)), transform)
    assert outputs["cat_out"][:, 0].tolist() == ["a", MISSING, MISSING, "c"] and "refusals" not in outputs
    check_equivalent(ignore, fit, transform)
    raising = quietly(lambda: MatchCategories(missing_values="raise").fit(fit))
    assert check_equivalent(raising, fit, transform).refused == 2


def test_match_categories_then_an_encoder() -> None:
    """Downstream steps see the values of the categorical column (strings / missing)."""
    fit = FIT[["n0", "c0"]]
    pipe = Pipeline(
        [
            ("match", MatchCategories(missing_values="ignore")),
            ("encode", OrdinalEncoder(encoding_method="arbitrary", missing_values="ignore", unseen="encode")),
        ]
    )
    quietly(lambda: pipe.fit(fit))
    transform = pd.DataFrame({"n0": [1.0, 2.0, 3.0], "c0": pd.Series(["a", "zz", None], dtype="str")})
    check_equivalent(pipe, fit, transform)


# ----------------------------------------------------------- refused at export time


def test_match_variables_unsupported_dtype_is_refused() -> None:
    fit = FIT.assign(f32=np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    pipe = Pipeline([("match_step", MatchVariables(match_dtypes=True, verbose=False))])
    quietly(lambda: pipe.fit(fit))
    message = export_error(pipe, fit)
    assert "step 'match_step' (MatchVariables)" in message
    assert "casts the numeric column 'f32' to float32, which is not exported" in message


def test_match_variables_non_string_category_is_refused() -> None:
    fit = FIT.assign(k1=pd.Series(["1", "2", "1", "2"], dtype="str"))
    pipe = Pipeline([("match_step", MatchVariables(match_dtypes=True, verbose=False))])
    quietly(lambda: pipe.fit(fit))
    pipe.named_steps["match_step"].dtype_dict_["k1"] = pd.CategoricalDtype([1, 2])
    message = export_error(pipe, fit)
    assert "step 'match_step' (MatchVariables)" in message and "non-string categories" in message


@pytest.mark.parametrize("frame", [FIT[["n0", "i0"]], FIT[["c0"]].assign(n0=FIT["n0"])])
def test_match_categories_on_a_numeric_column_is_refused(frame: pd.DataFrame) -> None:
    pipe = Pipeline([("match_step", MatchCategories(variables=["n0"], ignore_format=True))])
    quietly(lambda: pipe.fit(frame))
    message = export_error(pipe, frame)
    assert "step 'match_step' (MatchCategories)" in message and "column 'n0' is numeric" in message


def test_mean_normalization_non_numeric_fitted_mean_is_refused() -> None:
    pipe = Pipeline([("scale_step", MeanNormalizationScaler())])
    quietly(lambda: pipe.fit(FIT[["n0", "i0"]]))
    pipe.named_steps["scale_step"].mean_["i0"] = "2"
    message = export_error(pipe, FIT[["n0", "i0"]])
    assert (
        "step 'scale_step' (MeanNormalizationScaler)" in message
        and "mean_['i0']='2' is not a number" in message
    )


# ------------------------------------------------------------------ in a pipeline


@converter_settings(max_examples=25)
@given(data=st.data(), missing_values=st.sampled_from(["raise", "ignore"]))
def test_preprocessing_outliers_transformation_selection_pipeline(
    data: st.DataObject, missing_values: str
) -> None:
    """MatchVariables -> MatchCategories -> Winsorizer (indicators) -> YeoJohnson ->
    MeanNormalizationScaler -> DropConstantFeatures: the steps' refusals and columns compose."""
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(1, 2),
            fit_rows=(6, 30),
            fit_missing="none",
            fit_numbers=st.floats(-1e6, 1e6),
            cat_dtypes=("str",),
        )
    )
    pipe = Pipeline(
        [
            ("match", MatchVariables(missing_values=missing_values, verbose=False)),
            ("categories", MatchCategories(missing_values=missing_values)),
            ("cap", Winsorizer(tail="both", fold=2, add_indicators=True, missing_values=missing_values)),
            ("yeo", YeoJohnsonTransformer(variables=f.numeric)),
            ("scale", MeanNormalizationScaler(variables=f.numeric)),
            ("drop", DropConstantFeatures(tol=0.98)),
        ]
    )
    try:
        quietly(lambda: pipe.fit(f.fit))
    except (ValueError, TypeError):
        reject()
    check_equivalent(pipe, f.fit, f.transform)
