"""Property tests: scikit-learn's SimpleImputer, MissingIndicator, KNNImputer and
IterativeImputer against their ``transform``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    converter_settings,
    covers,
    discrete_numbers,
    export_error,
    fit_or_reject,
    frames,
    quietly,
)
from hypothesis import given
from hypothesis import strategies as st
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, MissingIndicator, SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn_harness import check_fitted, imputer_frames

from predictlib.build import export_pipeline, infer_columns
from predictlib.build.testing import run_graph


@covers(SimpleImputer)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    strategy=st.sampled_from(["mean", "median", "most_frequent", "constant"]),
    missing_values=st.sampled_from([math.nan, 0.0, -1]),
    keep_empty_features=st.booleans(),
    add_indicator=st.booleans(),
)
def test_simple_imputer_numbers(
    data: st.DataObject, strategy: str, missing_values: float, keep_empty_features: bool, add_indicator: bool
) -> None:
    f = imputer_frames(data, missing_values, categorical=(0, 0))
    step = SimpleImputer(
        strategy=strategy,
        missing_values=missing_values,
        fill_value=-7.5 if strategy == "constant" else None,
        keep_empty_features=keep_empty_features,
        add_indicator=add_indicator,
    )
    check_fitted(data, step, f.fit, f.transform)


@covers(SimpleImputer)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    strategy=st.sampled_from(["most_frequent", "constant"]),
    add_indicator=st.booleans(),
    missing_values=st.sampled_from([math.nan, "b"]),
)
def test_simple_imputer_text(
    data: st.DataObject, strategy: str, add_indicator: bool, missing_values: Any
) -> None:
    """Text columns (with numeric ones: scikit-learn then imputes an object array, where
    it checks no infinity); missing text is NaN."""
    f = data.draw(
        frames(
            numeric=(0, 2),
            categorical=(1, 3),
            fit_missing="some",
            missing_markers=(math.nan,),
            fit_numbers=st.one_of(discrete_numbers(), st.just(math.nan)),
        )
    )
    step = SimpleImputer(
        strategy=strategy,
        fill_value="filled" if strategy == "constant" else None,
        add_indicator=add_indicator,
        missing_values=missing_values,
    )
    if isinstance(missing_values, str) and f.numeric:
        return  # a text missing value on numbers: scikit-learn refuses to fit
    if strategy == "constant" and f.numeric:
        fit_or_reject(step, f.fit)
        assert "a column of numbers and text is not exported" in export_error(step, f.fit)
        return
    check_fitted(data, step, f.fit, f.transform)


@covers(MissingIndicator)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    features=st.sampled_from(["missing-only", "all"]),
    error_on_new=st.booleans(),
    missing_values=st.sampled_from([math.nan, -1]),
)
def test_missing_indicator(
    data: st.DataObject, features: str, error_on_new: bool, missing_values: Any
) -> None:
    nan = isinstance(missing_values, float) and math.isnan(missing_values)
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 2) if nan else (0, 0),
            fit_missing="any" if nan else "none",
            fit_integers=st.integers(-2, 2),
            missing_markers=(math.nan,),
        )
    )
    step = MissingIndicator(features=features, error_on_new=error_on_new, missing_values=missing_values)
    fit_or_reject(step, f.fit)
    if not len(step.features_) and features == "missing-only":
        assert "outputs no column" in export_error(Pipeline([("ind", step)]), f.fit)
        return
    check_fitted(data, step, f.fit, f.transform)


def _continuous(rng: np.random.Generator, rows: int, cols: int, missing: float) -> pd.DataFrame:
    """Columns of continuous values (no two donors at exactly the same distance, see
    docs/sklearn.md), with a share of missing cells."""
    values = rng.normal(size=(rows, cols)) * rng.choice([1.0, 100.0, 1e-3], size=cols)
    values[rng.random((rows, cols)) < missing] = np.nan
    return pd.DataFrame(values, columns=[f"n{j}" for j in range(cols)])


@covers(KNNImputer)
@converter_settings(max_examples=40)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    n_neighbors=st.integers(1, 6),
    weights=st.sampled_from(["uniform", "distance"]),
    keep_empty_features=st.booleans(),
    add_indicator=st.booleans(),
)
def test_knn_imputer(
    data: st.DataObject,
    seed: int,
    n_neighbors: int,
    weights: str,
    keep_empty_features: bool,
    add_indicator: bool,
) -> None:
    rng = np.random.default_rng(seed)
    cols = int(rng.integers(1, 5))
    fit = _continuous(rng, int(rng.integers(2, 30)), cols, missing=0.2)
    if rng.random() < 0.2:
        fit["n0"] = np.nan  # a column without value at fit: dropped, or zeros with keep_empty_features
    # transform rows: training rows with cells made missing, new rows, extreme values
    rows = fit.sample(n=8, replace=True, random_state=int(rng.integers(1 << 30))).to_numpy(copy=True)
    rows[rng.random(rows.shape) < 0.3] = np.nan
    rows[0] = rng.normal(size=cols)
    rows[1, 0] = np.nan
    # values at the data's scale, missing and infinite ones (far beyond the scale, scikit-learn's
    # distances are rounding noise: docs/sklearn.md)
    odd = st.one_of(st.floats(-3, 3), st.sampled_from([math.nan, math.inf, -math.inf, 0.0]))
    extreme = data.draw(st.lists(odd, min_size=cols, max_size=cols), label="odd row")
    transform = pd.DataFrame(np.vstack([rows, [extreme]]), columns=fit.columns)
    step = KNNImputer(
        n_neighbors=n_neighbors,
        weights=weights,
        keep_empty_features=keep_empty_features,
        add_indicator=add_indicator,
    )
    if keep_empty_features and fit.isna().all().any():
        # scikit-learn's get_feature_names_out leaves the empty columns out, transform keeps
        # them: compare the arrays (the graph outputs what transform returns)
        step.fit(fit)
        exported = export_pipeline(step, infer_columns(fit))
        outputs = run_graph(exported, transform)
        refused = outputs["refusals"].any(axis=1) if "refusals" in outputs else np.zeros(len(transform), bool)
        expected = quietly(lambda: step.transform(transform[~refused]))
        assert np.allclose(outputs["num_out"][~refused], expected, rtol=1e-9, atol=1e-9, equal_nan=True)
        return
    check_fitted(data, step, fit, transform)


@covers(IterativeImputer)
@converter_settings(max_examples=30)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    estimator=st.sampled_from([None, Ridge(alpha=0.5), LinearRegression()]),
    initial_strategy=st.sampled_from(["mean", "median", "most_frequent"]),
    imputation_order=st.sampled_from(["ascending", "descending", "roman", "arabic", "random"]),
    bounded=st.booleans(),
    add_indicator=st.booleans(),
)
def test_iterative_imputer(
    data: st.DataObject,
    seed: int,
    estimator: Any,
    initial_strategy: str,
    imputation_order: str,
    bounded: bool,
    add_indicator: bool,
) -> None:
    rng = np.random.default_rng(seed)
    cols = int(rng.integers(2, 5))
    fit = _continuous(rng, int(rng.integers(5, 30)), cols, missing=0.2)
    if rng.random() < 0.2:
        fit["n0"] = np.nan
    rows = fit.sample(n=8, replace=True, random_state=int(rng.integers(1 << 30))).to_numpy(copy=True)
    rows[rng.random(rows.shape) < 0.3] = np.nan
    rows[0] = rng.normal(size=cols) * 1e6
    transform = pd.DataFrame(rows, columns=fit.columns)
    # a row whose every value is missing is refused (tested below): keep one value
    every = transform.drop(columns=[c for c in ["n0"] if fit[c].isna().all()]).isna().all(axis=1)
    transform.loc[every, "n1"] = 0.5
    step = IterativeImputer(
        estimator=estimator,
        initial_strategy=initial_strategy,
        imputation_order=imputation_order,
        min_value=-1.0 if bounded else -np.inf,
        max_value=1.0 if bounded else np.inf,
        add_indicator=add_indicator,
        max_iter=3,
        random_state=0,
    )
    check_fitted(data, step, fit, transform)


def test_iterative_imputer_refuses_a_row_with_every_value_missing() -> None:
    """scikit-learn returns the initial imputation for a batch whose every value is
    missing and iterates otherwise: such a row's answer depends on its batch."""
    rng = np.random.default_rng(0)
    fit = _continuous(rng, 20, 3, missing=0.2)
    step = quietly(lambda: IterativeImputer(max_iter=3, random_state=0).fit(fit))
    empty = pd.DataFrame([[np.nan] * 3], columns=fit.columns)
    alone = step.transform(empty)
    in_batch = step.transform(pd.concat([empty, fit.iloc[:3]]))[:1]
    assert not np.allclose(alone, in_batch)
    from predictlib.build import export_pipeline, infer_columns
    from predictlib.build.testing import run_graph

    exported = export_pipeline(step, infer_columns(fit))
    flags = run_graph(exported, empty)["refusals"]
    reasons = {c.reason for c, f in zip(exported.checks, flags[0], strict=True) if f}
    assert any("depends on the other rows of the batch" in r for r in reasons)


# ---------------------------------------------------------------- refused at export


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (SimpleImputer(missing_values=None, strategy="most_frequent"), "missing_values=None"),
        (KNNImputer(metric=lambda x, y, **kw: 0.0), "metric="),
        (
            IterativeImputer(estimator=KNeighborsRegressor(n_neighbors=2)),
            "KNeighborsRegressor is not exported",
        ),
        (IterativeImputer(sample_posterior=True), "sample_posterior=True"),
        (IterativeImputer(keep_empty_features=True), "read-only"),
    ],
)
def test_parameters_that_cannot_be_exact_are_refused(step: Any, reason: str) -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [0.5, np.nan, 2.0, 8.0, 1.0]})
    if step.missing_values is None:
        fit = pd.DataFrame({"c": pd.Series(["x", None, "y", "x", "x"], dtype=object)})
    pipe = Pipeline([("impute", step)])
    try:
        quietly(lambda: pipe.fit(fit))
    except ValueError:  # keep_empty_features: scikit-learn fails on a read-only DataFrame array
        quietly(lambda: pipe.fit(fit.to_numpy(copy=True)))
    message = export_error(pipe, fit)
    assert f"step 'impute' ({type(step).__name__})" in message and reason in message
