"""Property tests: the discretiser converters against feature-engine's discretisers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    discrete_numbers,
    export_error,
    fit_or_reject,
    frames,
    numbers,
    quietly,
    run_graph,
    subsets,
    targets,
    tree_targets,
)
from feature_engine.discretisation import (
    ArbitraryDiscretiser,
    DecisionTreeDiscretiser,
    EqualFrequencyDiscretiser,
    EqualWidthDiscretiser,
    GeometricWidthDiscretiser,
)
from feature_engine.encoding import CountFrequencyEncoder, MeanEncoder, OneHotEncoder, OrdinalEncoder
from hypothesis import event, given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from predictlib import build as conversion
from predictlib.build import export_pipeline, infer_columns

#: the values of numeric columns at fit: finite (discretisers refuse NaN / inf at fit)
FIT_NUMBERS = st.one_of(
    numbers(missing=False, infinite=False),
    discrete_numbers(),
    st.floats(-100, 100, allow_nan=False),
)
PRECISIONS = st.sampled_from([1, 2, 3, 7])

#: categorical encoders after a discretiser with return_object=True (they see the bins
#: as an object column of numbers)
ENCODERS = st.sampled_from(
    [
        lambda: OrdinalEncoder(encoding_method="arbitrary", unseen="encode"),
        lambda: OrdinalEncoder(encoding_method="ordered", unseen="raise"),
        lambda: CountFrequencyEncoder(unseen="ignore"),
        lambda: MeanEncoder(unseen="encode", smoothing=1.0),
        lambda: OneHotEncoder(),
    ]
)


def numeric_frames(data: st.DataObject) -> Any:
    return data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 1),
            fit_numbers=data.draw(st.sampled_from([FIT_NUMBERS, discrete_numbers(), st.floats(-10, 10)])),
            fit_missing="none",
            cat_dtypes=("str",),
        )
    )


def check_discretiser(data: st.DataObject, discretiser: Any, f: Any, y: pd.Series | None = None) -> None:
    """Fit ``discretiser`` and check its graph; with ``return_object=True`` through an
    encoder (the object column of bin numbers feeds categorical encoders); a fitted
    discretiser whose limits pd.cut refuses must be refused at export."""
    model: Any = discretiser
    if getattr(discretiser, "return_object", False) and not getattr(discretiser, "return_boundaries", False):
        model = Pipeline([("bin", discretiser), ("encode", data.draw(ENCODERS)())])
        if y is None:
            y = data.draw(targets(f.fit.index))
    fit_or_reject(model, f.fit, y)
    try:
        export_pipeline(model, infer_columns(f.fit))
    except conversion.ExportError as exc:
        # only for limits on which the original raises, whatever the value
        assert "raises on every value" in str(exc), str(exc)
        with pytest.raises((ValueError, IndexError)):
            quietly(lambda: model.transform(f.fit))
        event("refused at export: the original raises on every value")
        return
    check_equivalent(model, f.fit, f.transform, y)


def flags() -> st.SearchStrategy[tuple[bool, bool]]:
    """(return_object, return_boundaries)."""
    return st.tuples(st.booleans(), st.booleans())


@covers(EqualWidthDiscretiser)
@converter_settings(max_examples=30)
@given(data=st.data(), bins=st.sampled_from([1, 2, 3, 5, 10]), ret=flags(), precision=PRECISIONS)
def test_equal_width_discretiser(
    data: st.DataObject, bins: int, ret: tuple[bool, bool], precision: int
) -> None:
    f = numeric_frames(data)
    variables = data.draw(st.none() | subsets(f.numeric))
    discretiser = EqualWidthDiscretiser(
        variables=variables, bins=bins, return_object=ret[0], return_boundaries=ret[1], precision=precision
    )
    check_discretiser(data, discretiser, f)


@covers(EqualFrequencyDiscretiser)
@converter_settings(max_examples=30)
@given(data=st.data(), q=st.sampled_from([1, 2, 3, 4, 10]), ret=flags(), precision=PRECISIONS)
def test_equal_frequency_discretiser(
    data: st.DataObject, q: int, ret: tuple[bool, bool], precision: int
) -> None:
    f = numeric_frames(data)
    variables = data.draw(st.none() | subsets(f.numeric))
    discretiser = EqualFrequencyDiscretiser(
        variables=variables, q=q, return_object=ret[0], return_boundaries=ret[1], precision=precision
    )
    check_discretiser(data, discretiser, f)


@covers(GeometricWidthDiscretiser)
@converter_settings(max_examples=30)
@given(data=st.data(), bins=st.sampled_from([1, 2, 3, 5, 10]), ret=flags(), precision=PRECISIONS)
def test_geometric_width_discretiser(
    data: st.DataObject, bins: int, ret: tuple[bool, bool], precision: int
) -> None:
    f = numeric_frames(data)
    variables = data.draw(st.none() | subsets(f.numeric))
    discretiser = GeometricWidthDiscretiser(
        variables=variables, bins=bins, return_object=ret[0], return_boundaries=ret[1], precision=precision
    )
    check_discretiser(data, discretiser, f)


def limits(data: st.DataObject, fit_values: list[float]) -> list[float | int]:
    """Interval limits: sorted fit values and other numbers, ints or floats, infinite
    ends sometimes; one limit, or two equal ones, now and then."""
    shape = data.draw(st.sampled_from(["increasing", "increasing", "one", "two equal"]))
    pool = st.one_of(st.sampled_from(fit_values), numbers(missing=False), st.integers(-5, 5))
    if shape == "one":
        return [data.draw(pool)]
    if shape == "two equal":
        value = data.draw(pool)
        return [value, value]
    values = data.draw(st.lists(pool, min_size=2, max_size=6))
    unique: list[float | int] = []
    for v in sorted(values, key=float):
        if all(float(v) != float(u) for u in unique):
            unique.append(v)
    if len(unique) < 2:
        unique = [-math.inf, math.inf]
    return unique


@covers(ArbitraryDiscretiser)
@converter_settings(max_examples=40)
@given(data=st.data(), errors=st.sampled_from(["ignore", "raise"]), ret=flags(), precision=PRECISIONS)
def test_arbitrary_discretiser(
    data: st.DataObject, errors: str, ret: tuple[bool, bool], precision: int
) -> None:
    f = numeric_frames(data)
    chosen = data.draw(subsets(f.numeric))
    binning = {v: limits(data, [float(x) for x in f.fit[v]]) for v in chosen}
    discretiser = ArbitraryDiscretiser(
        binning_dict=binning,
        return_object=ret[0],
        return_boundaries=ret[1],
        precision=precision,
        errors=errors,
    )
    check_discretiser(data, discretiser, f)


@covers(DecisionTreeDiscretiser)
@converter_settings(max_examples=20)
@given(
    data=st.data(),
    bin_output=st.sampled_from(["prediction", "bin_number", "boundaries"]),
    precision=st.sampled_from([None, 1, 2, 4]),
    regression=st.booleans(),
)
def test_decision_tree_discretiser(
    data: st.DataObject, bin_output: str, precision: int | None, regression: bool
) -> None:
    f = numeric_frames(data)
    if bin_output == "boundaries" and precision is None:
        precision = 3
    y = data.draw(tree_targets(f.fit.index, regression))
    discretiser = DecisionTreeDiscretiser(
        variables=data.draw(st.none() | subsets(f.numeric)),
        bin_output=bin_output,
        precision=precision,
        cv=2,
        scoring="neg_mean_squared_error" if regression else "accuracy",
        param_grid={"max_depth": [1, 3]},
        regression=regression,
        random_state=0,
    )
    check_discretiser(data, discretiser, f, y)


# ------------------------------------------------------------------------- targeted cases


def test_values_on_the_limits() -> None:
    """Right-closed intervals, the lowest limit included, NaN outside, NaN / inf refused."""
    fit = pd.DataFrame({"n0": [0.0, 1.0, 2.0, 3.0]})
    rows = pd.DataFrame(
        {"n0": [-1.0, -0.0, 0.0, 5e-324, 1.0, 1.5, 2.0, 3.0, 3.0000000000000004, np.nan, np.inf]}
    )
    for errors, refused in (("ignore", 2), ("raise", 4)):
        for boundaries in (False, True):
            discretiser = ArbitraryDiscretiser(
                {"n0": [0, 1, 2.0, 3]}, errors=errors, return_boundaries=boundaries, precision=2
            )
            assert check_equivalent(discretiser, fit, rows).refused == refused


def test_boundaries_strings_are_feature_engines() -> None:
    fit = pd.DataFrame({"n0": [0.001, 0.002, 12345.678, -1e-7, 7.0]})
    discretiser = quietly(lambda: EqualWidthDiscretiser(bins=4, return_boundaries=True, precision=2).fit(fit))
    outputs = run_graph(export_pipeline(discretiser, infer_columns(fit)), fit)
    assert outputs["cat_out"][:, 0].tolist() == quietly(lambda: discretiser.transform(fit))["n0"].tolist()
    assert outputs["cat_out"][0, 0].startswith("(-inf, ")


def test_decision_tree_sees_float32_values() -> None:
    """scikit-learn's tree compares float32(x) with float64 thresholds: values just above a
    threshold that round to float32 below it go left; values beyond float32 are refused."""
    # float32 values two ulps apart (the tree does not split closer values): the threshold
    # is the float32 value between them
    a, b = 1.0, 1.0 + 2.0**-22
    fit = pd.DataFrame({"n0": [a] * 6 + [b] * 6})
    y = pd.Series([0.0] * 6 + [10.0, 20.0] * 3)
    discretiser = quietly(
        lambda: DecisionTreeDiscretiser(cv=2, param_grid={"max_depth": [1]}, random_state=0).fit(fit, y)
    )
    threshold = discretiser.binner_dict_["n0"].best_estimator_.tree_.threshold[0]
    assert threshold == 1.0 + 2.0**-23
    above = float(np.nextafter(threshold, 2.0))
    fmax = float(np.finfo(np.float32).max)
    rows = pd.DataFrame(
        {
            "n0": [
                threshold,
                above,
                b,
                a,
                fmax,
                fmax + 2.0**103,
                float(np.nextafter(fmax + 2.0**103, 0)),
                1e300,
            ]
        }
    )
    outcome = check_equivalent(discretiser, fit, rows)
    assert outcome.refused == 2  # fmax + half an ulp and 1e300 round to float32 inf
    expected = quietly(lambda: discretiser.transform(rows.iloc[[1]]))["n0"].iloc[0]
    assert expected == 0.0  # above the threshold in float64, at it in float32


def test_return_object_keeps_the_bin_numbers() -> None:
    """return_object=True: feature-engine returns an object column of the bin numbers; the
    graph returns the same numbers (float64)."""
    fit = pd.DataFrame({"n0": [0.0, 1.0, 2.0, 3.0, 4.0]})
    discretiser = quietly(lambda: EqualWidthDiscretiser(bins=2, return_object=True).fit(fit))
    original = quietly(lambda: discretiser.transform(fit))["n0"]
    assert original.dtype == object and original.tolist() == [0, 0, 0, 1, 1]
    outputs = run_graph(export_pipeline(discretiser, infer_columns(fit)), fit)
    assert outputs["num_out"][:, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


# ----------------------------------------------------------- refused at export time


def _message(step: object, frame: pd.DataFrame, y: pd.Series | None = None) -> str:
    pipe = Pipeline([("bin_step", step)])
    quietly(lambda: pipe.fit(frame, y))
    return export_error(pipe, frame)


@pytest.mark.parametrize(
    "limits, reason",
    [
        ([3, 1, 2], "do not increase"),
        ([0, 1, 1, 2], "repeat a value"),
        ([], "no limits"),
        ([0, math.nan, 2], "NaN"),
        ([0, 2**60], "float64 does not hold exactly"),
        ([0, "a"], "not a number"),
    ],
)
def test_arbitrary_limits_pd_cut_refuses_are_refused(limits: list[Any], reason: str) -> None:
    frame = pd.DataFrame({"n0": [0.5, 1.5, 2.5]})
    message = _message(ArbitraryDiscretiser({"n0": limits}), frame)
    assert "step 'bin_step' (ArbitraryDiscretiser)" in message and reason in message


def test_geometric_width_of_a_constant_column_is_refused() -> None:
    """A constant column gives repeated limits: feature-engine raises on every value."""
    frame = pd.DataFrame({"n0": [2.0, 2.0, 2.0]})
    step = GeometricWidthDiscretiser(bins=3)
    with pytest.raises(ValueError, match="Bin edges must be unique"):
        quietly(lambda: step.fit(frame).transform(frame))
    message = _message(GeometricWidthDiscretiser(bins=3), frame)
    assert "step 'bin_step' (GeometricWidthDiscretiser)" in message and "repeat a value" in message
