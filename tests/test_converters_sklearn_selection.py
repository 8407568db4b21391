"""Property tests: every scikit-learn feature selector against its ``transform`` (pandas
output, which validates nothing, and numpy output, which refuses NaN / inf unless the
selector allows NaN)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    fit_and_check,
    frames,
    targets,
)
from hypothesis import given
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import (
    RFE,
    RFECV,
    GenericUnivariateSelect,
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    SequentialFeatureSelector,
    VarianceThreshold,
    f_regression,
)
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.tree import DecisionTreeRegressor
from sklearn_harness import check_fitted

SELECTORS = st.sampled_from(
    [
        lambda: VarianceThreshold(threshold=0.5),
        lambda: SelectKBest(f_regression, k=2),
        lambda: SelectPercentile(f_regression, percentile=50),
        lambda: GenericUnivariateSelect(f_regression, mode="k_best", param=1),
        lambda: SelectFpr(f_regression, alpha=0.5),
        lambda: SelectFdr(f_regression, alpha=0.5),
        lambda: SelectFwe(f_regression, alpha=0.5),
        lambda: SelectFromModel(Ridge(), threshold="median"),
        lambda: SelectFromModel(DecisionTreeRegressor(max_depth=2, random_state=0), threshold=-1.0),
        lambda: RFE(LinearRegression(), n_features_to_select=2),
        lambda: RFECV(LinearRegression(), cv=2),
        lambda: SequentialFeatureSelector(LinearRegression(), n_features_to_select=1, cv=2),
    ]
)


@covers(
    VarianceThreshold,
    SelectKBest,
    SelectPercentile,
    GenericUnivariateSelect,
    SelectFpr,
    SelectFdr,
    SelectFwe,
    SelectFromModel,
    RFE,
    RFECV,
    SequentialFeatureSelector,
)
@converter_settings(max_examples=50)
@given(data=st.data(), make=SELECTORS)
def test_selectors(data: st.DataObject, make: Any) -> None:
    # a selector with an estimator (RFE, RFECV) is a regressor by its tags when it is last:
    # the identity after it makes the pipeline a transformer
    selector = Pipeline([("select", make()), ("keep", FunctionTransformer(feature_names_out="one-to-one"))])
    f = data.draw(
        frames(
            numeric=(2, 4),
            categorical=(0, 0),
            fit_rows=(6, 30),
            fit_missing="none",
            fit_numbers=st.floats(-1e3, 1e3),
        )
    )
    y = data.draw(targets(f.fit.index))
    check_fitted(data, selector, f.fit, f.transform, y)


@covers(VarianceThreshold)
@converter_settings(max_examples=20)
@given(data=st.data())
def test_selector_keeps_text_columns(data: st.DataObject) -> None:
    """A selector after a step that lets text through keeps the text columns it selects
    (an object array: scikit-learn then only checks NaN)."""
    f = data.draw(
        frames(
            numeric=(1, 2),
            categorical=(1, 2),
            fit_rows=(4, 20),
            fit_missing="none",
            fit_numbers=st.floats(-1e3, 1e3),
            missing_markers=(math.nan,),
        )
    )
    text = list(f.categorical)
    ct = ColumnTransformer(
        [("ohe", OneHotEncoder(sparse_output=False, handle_unknown="ignore"), text)], remainder="passthrough"
    )
    pipe = Pipeline([("ct", ct), ("select", VarianceThreshold(0.0))])
    fit_and_check(pipe, f.fit, f.transform)


def test_selector_with_pandas_output_validates_nothing() -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 0.0, 0.0, 1.0], "c": [5.0, 1.0, 2.0, 8.0]})
    selector = SelectKBest(f_regression, k=1).fit(fit, [1.0, 2.0, 3.0, 4.0])
    transform = pd.DataFrame({"a": [np.inf, 1.0], "b": [np.nan, 2.0], "c": [1.0, -np.inf]})
    outcome = check_equivalent(selector.set_output(transform="pandas"), fit, transform)
    assert outcome.refused == 0
    outcome = check_equivalent(selector.set_output(transform="default"), fit, transform)
    assert outcome.refused == 2


def test_a_selector_predicting_last_is_refused() -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    rfe = RFE(LinearRegression(), n_features_to_select=1).fit(fit, [1.0, 2.0, 3.0, 4.0])
    from converter_harness import export_error

    assert "end the pipeline with an estimator" in export_error(rfe, fit)
