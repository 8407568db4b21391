"""Property tests: the imputer converters against feature-engine's imputers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    discrete_numbers,
    export_error,
    fit_and_check,
    fit_or_reject,
    frames,
    quietly,
    subsets,
)
from feature_engine.imputation import (
    AddMissingIndicator,
    ArbitraryNumberImputer,
    CategoricalImputer,
    EndTailImputer,
    MeanMedianImputer,
)
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from predictlib.build import MISSING

#: fill numbers a user may choose: zero, signs, extremes, non-integers
FILL_NUMBERS = st.one_of(
    st.sampled_from((0, -1, 999, -999, 0.5, 1e300, -1e300, 5e-324, math.inf, -math.inf, math.nan)),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
)
FILL_STRINGS = st.sampled_from(("Missing", "a", "Rare", "", "ü", "x y", "NA"))


@covers(MeanMedianImputer)
@converter_settings(max_examples=50)
@given(data=st.data(), method=st.sampled_from(["mean", "median"]))
def test_mean_median_imputer(data: st.DataObject, method: str) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 2)))
    # variables: all numeric columns (None), a list, or one column name
    variables = data.draw(st.none() | subsets(f.numeric) | st.sampled_from(f.numeric))
    fit_and_check(MeanMedianImputer(imputation_method=method, variables=variables), f.fit, f.transform)


@covers(ArbitraryNumberImputer)
@converter_settings(max_examples=50)
@given(data=st.data(), by_dict=st.booleans())
def test_arbitrary_number_imputer(data: st.DataObject, by_dict: bool) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 2)))
    if by_dict:
        chosen = data.draw(subsets(f.numeric))
        imputer = ArbitraryNumberImputer(imputer_dict={v: data.draw(FILL_NUMBERS) for v in chosen})
    else:
        variables = data.draw(st.none() | subsets(f.numeric))
        imputer = ArbitraryNumberImputer(arbitrary_number=data.draw(FILL_NUMBERS), variables=variables)
    fit_and_check(imputer, f.fit, f.transform)


@covers(EndTailImputer)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    method=st.sampled_from(["gaussian", "iqr", "max"]),
    tail=st.sampled_from(["right", "left"]),
    fold=st.sampled_from([3, 2, 1, 1.5, 0.5]),
)
def test_end_tail_imputer(data: st.DataObject, method: str, tail: str, fold: float) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 1)))
    variables = data.draw(st.none() | subsets(f.numeric))
    imputer = EndTailImputer(imputation_method=method, tail=tail, fold=fold, variables=variables)
    fit_and_check(imputer, f.fit, f.transform)


@covers(CategoricalImputer)
@converter_settings(max_examples=50)
@given(data=st.data(), fill_value=FILL_STRINGS, return_object=st.booleans())
def test_categorical_imputer_missing(data: st.DataObject, fill_value: str, return_object: bool) -> None:
    f = data.draw(frames(numeric=(0, 2), categorical=(1, 3)))
    variables = data.draw(st.none() | subsets(f.categorical))
    imputer = CategoricalImputer(
        imputation_method="missing", fill_value=fill_value, variables=variables, return_object=return_object
    )
    fit_and_check(imputer, f.fit, f.transform)


@covers(CategoricalImputer)
@converter_settings(max_examples=50)
@given(data=st.data(), return_object=st.booleans())
def test_categorical_imputer_frequent(data: st.DataObject, return_object: bool) -> None:
    # "some": a column with no value at all has no mode (feature-engine cannot fit it)
    f = data.draw(frames(numeric=(0, 2), categorical=(1, 3), fit_rows=(3, 30), fit_missing="some"))
    variables = data.draw(st.none() | subsets(f.categorical))
    imputer = CategoricalImputer(
        imputation_method="frequent", variables=variables, return_object=return_object
    )
    fit_or_reject(imputer, f.fit)  # rejects fit frames with two equally frequent labels
    check_equivalent(imputer, f.fit, f.transform)


@covers(CategoricalImputer)
@converter_settings(max_examples=50)
@given(data=st.data(), method=st.sampled_from(["missing", "frequent"]))
def test_categorical_imputer_ignore_format_on_numbers(data: st.DataObject, method: str) -> None:
    """ignore_format=True imputes numeric columns too: with a number, or their mode."""
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 2),
            fit_rows=(3, 30),
            fit_numbers=discrete_numbers(),
            fit_integers=st.integers(-2, 2),
            fit_missing="some",
        )
    )
    if method == "missing":
        # one fill value for all: a number for numeric columns only
        variables = data.draw(subsets(f.numeric))
        imputer = CategoricalImputer(
            fill_value=data.draw(FILL_NUMBERS), variables=variables, ignore_format=True
        )
    else:
        variables = data.draw(st.none() | subsets(f.numeric + f.categorical))
        imputer = CategoricalImputer(imputation_method="frequent", variables=variables, ignore_format=True)
    fit_and_check(imputer, f.fit, f.transform)


@covers(AddMissingIndicator)
@converter_settings(max_examples=60)
@given(data=st.data(), missing_only=st.booleans())
def test_add_missing_indicator(data: st.DataObject, missing_only: bool) -> None:
    f = data.draw(frames(numeric=(0, 3), categorical=(0, 3)))
    variables = data.draw(st.none() | subsets(f.numeric + f.categorical))
    indicator = AddMissingIndicator(missing_only=missing_only, variables=variables)
    fit_and_check(indicator, f.fit, f.transform)


# ----------------------------------------------------------- refused at export time

FRAME = pd.DataFrame({"n0": [1.0, math.nan, 2.0], "c0": pd.Series(["a", None, "b"], dtype="str")})


def _in_pipeline(step: object, frame: pd.DataFrame) -> Pipeline:
    pipe = Pipeline([("impute_step", step)])
    quietly(lambda: pipe.fit(frame))
    return pipe


def test_categorical_imputer_return_object_on_numbers_is_refused() -> None:
    """return_object=True makes numeric columns Python objects: not exported."""
    imputer = CategoricalImputer(fill_value=0, variables=["n0"], ignore_format=True, return_object=True)
    message = export_error(_in_pipeline(imputer, FRAME), FRAME)
    assert "step 'impute_step' (CategoricalImputer)" in message
    assert "return_object=True" in message and "['n0']" in message


@pytest.mark.parametrize(
    ("imputer", "column", "reason"),
    [
        (CategoricalImputer(fill_value=0, variables=["c0"]), "c0", "string fill values"),
        (CategoricalImputer(fill_value=1.5, variables=["c0"]), "c0", "string fill values"),
        (
            CategoricalImputer(fill_value="none", variables=["n0"], ignore_format=True),
            "n0",
            "numeric fill values",
        ),
    ],
)
def test_fill_value_of_the_wrong_kind_is_refused(
    imputer: CategoricalImputer, column: str, reason: str
) -> None:
    message = export_error(_in_pipeline(imputer, FRAME), FRAME)
    assert "step 'impute_step' (CategoricalImputer)" in message
    assert f"column '{column}'" in message and reason in message


def test_fill_value_equal_to_the_missing_marker_is_refused() -> None:
    """Filling with the graph's missing-value marker would turn a filled value back into
    "missing" for the runtime."""
    message = export_error(_in_pipeline(CategoricalImputer(fill_value=MISSING), FRAME), FRAME)
    assert "step 'impute_step' (CategoricalImputer)" in message
    assert "column 'c0'" in message and "reserved missing-value marker" in message


def test_indicator_column_that_already_exists_is_refused() -> None:
    frame = pd.DataFrame({"n0": [1.0, math.nan, 2.0], "n0_na": [0.0, 1.0, 0.0]})
    pipe = _in_pipeline(AddMissingIndicator(variables=["n0"]), frame)
    message = export_error(pipe, frame)
    assert "step 'impute_step' (AddMissingIndicator)" in message
    assert "indicator columns ['n0_na'] already exist" in message
