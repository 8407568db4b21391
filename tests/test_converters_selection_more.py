"""Property tests: every feature-engine selector (DropFeatures: test_converters_selection).

All share ``BaseSelector.transform`` (drop ``features_to_drop_``, no value check), so
each test fits its selector on a small frame (with duplicated, constant and correlated
columns added so that something gets dropped) and checks the export against
``transform`` on any values, NaN / inf / unseen labels included. Fitting is the slow
part: tiny frames, cv=2, few examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import pytest
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    export_error,
    fit_or_reject,
    frames,
    numbers,
    quietly,
)
from feature_engine.selection import (
    MRMR,
    DropConstantFeatures,
    DropCorrelatedFeatures,
    DropDuplicateFeatures,
    DropHighPSIFeatures,
    ProbeFeatureSelection,
    RecursiveFeatureAddition,
    RecursiveFeatureElimination,
    SelectByInformationValue,
    SelectByShuffling,
    SelectBySingleFeaturePerformance,
    SelectByTargetMeanPerformance,
    SmartCorrelatedSelection,
)
from hypothesis import event, given
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from predictlib.build import export_pipeline, infer_columns
from predictlib.build.core.frame import PLUMBING_OPS


@dataclass
class Data:
    fit: pd.DataFrame
    transform: pd.DataFrame
    y: pd.Series
    numeric: list[str]


@st.composite
def selector_data(
    draw: st.DrawFn,
    *,
    categorical: tuple[int, int] = (0, 2),
    binary: bool = False,
    fit_missing: str = "none",
    rows: tuple[int, int] = (12, 24),
) -> Data:
    """A fit frame with extra columns that selectors drop (a copy, a constant, a scaled
    copy with noise), any transform frame, and a target (binary 0 / 1 if ``binary``)."""
    f = draw(
        frames(
            numeric=(2, 3),
            categorical=categorical,
            fit_rows=rows,
            fit_missing=fit_missing,
            fit_numbers=st.floats(-100, 100),
        )
    )
    fit, transform = f.fit.copy(), f.transform.copy()
    base = f.numeric[0]
    n_tr = len(transform)
    extra = {
        "dup": fit[base],
        "const": pd.Series([1.0] * len(fit)),
        "corr": fit[base] * 2.0 + pd.Series([draw(st.floats(-0.01, 0.01)) for _ in range(len(fit))]),
    }
    for name, values in extra.items():
        if draw(st.booleans()):
            fit[name] = values.to_numpy()
            transform[name] = draw(st.lists(numbers(), min_size=n_tr, max_size=n_tr))
    if binary:
        labels = draw(st.lists(st.integers(0, 1), min_size=len(fit), max_size=len(fit)))
        labels[0], labels[1] = 0, 1  # both classes
        y = pd.Series(labels, index=fit.index, name="y")
    else:
        y = pd.Series(
            draw(st.lists(st.floats(-100, 100), min_size=len(fit), max_size=len(fit))),
            index=fit.index,
            name="y",
        )
    numeric = [c.name for c in infer_columns(fit) if c.kind == "num"]
    return Data(fit, transform, y, numeric)


def _check(selector: object, d: Data) -> None:
    fit_or_reject(selector, d.fit, d.y)
    if set(selector.features_to_drop_) >= set(d.fit.columns):  # type: ignore[attr-defined]
        # fit selected nothing, transform returns a frame without columns: refused at export
        assert "drops every column" in export_error(selector, d.fit)
        event("selected nothing")
        return
    event(f"dropped {len(selector.features_to_drop_)} of {len(d.fit.columns)}")  # type: ignore[attr-defined]
    check_equivalent(selector, d.fit, d.transform, d.y)


@covers(DropConstantFeatures)
@converter_settings(max_examples=25)
@given(
    data=st.data(),
    tol=st.sampled_from([1, 0.9, 0.7, 0.5]),
    missing_values=st.sampled_from(["raise", "ignore", "include"]),
)
def test_drop_constant_features(data: st.DataObject, tol: float, missing_values: str) -> None:
    d = data.draw(selector_data(fit_missing="none" if missing_values == "raise" else "some"))
    _check(DropConstantFeatures(tol=tol, missing_values=missing_values), d)


@covers(DropDuplicateFeatures)
@converter_settings(max_examples=20)
@given(data=st.data(), missing_values=st.sampled_from(["raise", "ignore"]))
def test_drop_duplicate_features(data: st.DataObject, missing_values: str) -> None:
    d = data.draw(selector_data(fit_missing="none" if missing_values == "raise" else "some"))
    _check(DropDuplicateFeatures(missing_values=missing_values), d)


@covers(DropCorrelatedFeatures)
@converter_settings(max_examples=20)
@given(
    data=st.data(),
    method=st.sampled_from(["pearson", "spearman", "kendall"]),
    threshold=st.sampled_from([0.8, 0.5, 0.99]),
    missing_values=st.sampled_from(["raise", "ignore"]),
)
def test_drop_correlated_features(
    data: st.DataObject, method: str, threshold: float, missing_values: str
) -> None:
    d = data.draw(selector_data(fit_missing="none" if missing_values == "raise" else "some"))
    _check(DropCorrelatedFeatures(method=method, threshold=threshold, missing_values=missing_values), d)


@covers(SmartCorrelatedSelection)
@converter_settings(max_examples=15)
@given(
    data=st.data(),
    selection_method=st.sampled_from(
        ["missing_values", "cardinality", "variance", "model_performance", "corr_with_target"]
    ),
    method=st.sampled_from(["pearson", "spearman"]),
)
def test_smart_correlated_selection(data: st.DataObject, selection_method: str, method: str) -> None:
    d = data.draw(selector_data())
    estimator = LinearRegression() if selection_method == "model_performance" else None
    selector = SmartCorrelatedSelection(
        method=method,
        threshold=0.8,
        selection_method=selection_method,
        estimator=estimator,
        scoring="r2",
        cv=2,
    )
    _check(selector, d)


@covers(DropHighPSIFeatures)
@converter_settings(max_examples=15)
@given(
    data=st.data(),
    strategy=st.sampled_from(["equal_frequency", "equal_width"]),
    threshold=st.sampled_from([0.25, 0.1, 0.01, "auto"]),
    bins=st.sampled_from([2, 3, 5]),
    split_frac=st.sampled_from([0.5, 0.6]),
)
def test_drop_high_psi_features(
    data: st.DataObject, strategy: str, threshold: object, bins: int, split_frac: float
) -> None:
    d = data.draw(selector_data(categorical=(0, 0), rows=(20, 30)))
    selector = DropHighPSIFeatures(split_frac=split_frac, strategy=strategy, threshold=threshold, bins=bins)
    _check(selector, d)


@covers(SelectByInformationValue)
@converter_settings(max_examples=15)
@given(
    data=st.data(),
    strategy=st.sampled_from(["equal_width", "equal_frequency"]),
    threshold=st.sampled_from([0.2, 0.05, 0.5]),
    bins=st.sampled_from([2, 3, 5]),
)
def test_select_by_information_value(data: st.DataObject, strategy: str, threshold: float, bins: int) -> None:
    d = data.draw(selector_data(binary=True, categorical=(0, 1)))
    _check(SelectByInformationValue(bins=bins, strategy=strategy, threshold=threshold), d)


@covers(SelectByShuffling)
@converter_settings(max_examples=10)
@given(data=st.data(), threshold=st.sampled_from([None, 0.0, 0.05]))
def test_select_by_shuffling(data: st.DataObject, threshold: float | None) -> None:
    d = data.draw(selector_data(categorical=(0, 1)))
    _check(
        SelectByShuffling(
            LinearRegression(), scoring="r2", cv=2, threshold=threshold, random_state=0, variables=d.numeric
        ),
        d,
    )


@covers(SelectBySingleFeaturePerformance)
@converter_settings(max_examples=10)
@given(data=st.data(), threshold=st.sampled_from([None, 0.0, 0.1]))
def test_select_by_single_feature_performance(data: st.DataObject, threshold: float | None) -> None:
    d = data.draw(selector_data(categorical=(0, 1)))
    selector = SelectBySingleFeaturePerformance(
        DecisionTreeRegressor(max_depth=2, random_state=0), scoring="r2", cv=2, threshold=threshold,
        variables=d.numeric,
    )  # fmt: skip
    _check(selector, d)


@covers(SelectByTargetMeanPerformance)
@converter_settings(max_examples=10)
@given(
    data=st.data(),
    regression=st.booleans(),
    strategy=st.sampled_from(["equal_width", "equal_frequency"]),
    threshold=st.sampled_from([None, 0.0, 0.5]),
)
def test_select_by_target_mean_performance(
    data: st.DataObject, regression: bool, strategy: str, threshold: float | None
) -> None:
    d = data.draw(selector_data(binary=not regression, categorical=(0, 1)))
    selector = SelectByTargetMeanPerformance(
        bins=3, strategy=strategy, scoring="r2" if regression else "roc_auc", cv=2, threshold=threshold,
        regression=regression,
    )  # fmt: skip
    _check(selector, d)


@covers(RecursiveFeatureAddition)
@converter_settings(max_examples=10)
@given(data=st.data(), threshold=st.sampled_from([0.01, 0.0, 0.2]))
def test_recursive_feature_addition(data: st.DataObject, threshold: float) -> None:
    d = data.draw(selector_data(categorical=(0, 1)))
    _check(
        RecursiveFeatureAddition(
            LinearRegression(), scoring="r2", cv=2, threshold=threshold, variables=d.numeric
        ),
        d,
    )


@covers(RecursiveFeatureElimination)
@converter_settings(max_examples=10)
@given(data=st.data(), threshold=st.sampled_from([0.01, 0.0, 0.2]))
def test_recursive_feature_elimination(data: st.DataObject, threshold: float) -> None:
    d = data.draw(selector_data(categorical=(0, 1)))
    selector = RecursiveFeatureElimination(
        LinearRegression(), scoring="r2", cv=2, threshold=threshold, variables=d.numeric
    )
    _check(selector, d)


@covers(MRMR)
@converter_settings(max_examples=12)
@given(
    data=st.data(),
    method=st.sampled_from(["MIQ", "MID", "FCQ", "FCD"]),
    regression=st.booleans(),
    max_features=st.sampled_from([None, 1, 2]),
)
def test_mrmr(data: st.DataObject, method: str, regression: bool, max_features: int | None) -> None:
    d = data.draw(selector_data(binary=not regression, categorical=(0, 0)))
    selector = MRMR(method=method, max_features=max_features, regression=regression, random_state=0, cv=2)
    _check(selector, d)


@covers(ProbeFeatureSelection)
@converter_settings(max_examples=10)
@given(
    data=st.data(),
    collective=st.booleans(),
    distribution=st.sampled_from(["normal", "binary", "uniform", "discrete_uniform", "poisson", "all"]),
    threshold=st.sampled_from(["mean", "max", "mean_plus_std"]),
    n_probes=st.sampled_from([1, 2]),
)
def test_probe_feature_selection(
    data: st.DataObject, collective: bool, distribution: str, threshold: str, n_probes: int
) -> None:
    d = data.draw(selector_data(binary=True, categorical=(0, 1)))
    estimator = DecisionTreeClassifier(max_depth=2, random_state=0) if collective else LogisticRegression()
    selector = ProbeFeatureSelection(
        estimator, collective=collective, scoring="roc_auc", n_probes=n_probes, distribution=distribution,
        threshold=threshold, cv=2, variables=d.numeric,
    )  # fmt: skip
    _check(selector, d)


# ----------------------------------------------------------------- chosen values

FIT = pd.DataFrame(
    {
        "n0": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "const": [1.0] * 6,
        "dup": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "c0": pd.Series(list("abcabc"), dtype="str"),
    }
)


def test_selector_keeps_values_it_never_checks() -> None:
    """transform checks no value: NaN, inf and unseen labels pass (the graph refuses nothing)."""
    transform = pd.DataFrame(
        {
            "n0": [math.nan, math.inf, -math.inf, 1e300],
            "const": [math.nan, 2.0, 3.0, 4.0],
            "dup": [1.0, 2.0, math.nan, 4.0],
            "c0": pd.Series(["zz", None, "a", "A"], dtype="str"),
        }
    )
    for selector in (DropConstantFeatures(), DropDuplicateFeatures()):
        outcome = check_equivalent(selector, FIT, transform)
        assert outcome.refused == 0 and not outcome.exported.checks
        assert {n.op_type for n in outcome.exported.model.graph.node} <= PLUMBING_OPS


# ----------------------------------------------------------- refused at export time


def test_selector_dropping_every_column_is_refused() -> None:
    pipe = Pipeline([("select_step", DropConstantFeatures())])
    quietly(lambda: pipe.fit(FIT))
    pipe.named_steps["select_step"].features_to_drop_ = list(FIT.columns)
    message = export_error(pipe, FIT)
    assert "step 'select_step' (DropConstantFeatures)" in message and "drops every column" in message


def test_selector_dropping_an_unknown_column_is_refused() -> None:
    pipe = Pipeline([("select_step", DropDuplicateFeatures())])
    quietly(lambda: pipe.fit(FIT))
    pipe.named_steps["select_step"].features_to_drop_ = {"dup", "nope"}
    message = export_error(pipe, FIT)
    assert "step 'select_step' (DropDuplicateFeatures)" in message and "['nope']" in message


@pytest.mark.parametrize("as_set", [True, False])
def test_features_to_drop_as_a_set(as_set: bool) -> None:
    """DropDuplicateFeatures keeps a set: the order of the kept columns is the frame's."""
    selector = quietly(lambda: DropDuplicateFeatures().fit(FIT))
    if not as_set:
        selector.features_to_drop_ = sorted(selector.features_to_drop_)
    exported = export_pipeline(selector, infer_columns(FIT))
    assert exported.output_columns == {"num_out": ["n0", "const"], "cat_out": ["c0"]}
