"""Property tests: the outlier converters against feature-engine's outlier handlers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    export_error,
    fit_and_check,
    frames,
    numbers,
    quietly,
    subsets,
)
from feature_engine.imputation import MeanMedianImputer
from feature_engine.outliers import ArbitraryOutlierCapper, OutlierTrimmer, Winsorizer
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

#: spread-out fit values, so the capping methods rarely see a zero scale
SPREAD = st.one_of(st.floats(-1e6, 1e6), numbers())


@covers(Winsorizer)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    capping_method=st.sampled_from(["gaussian", "iqr", "quantiles", "mad"]),
    tail=st.sampled_from(["right", "left", "both"]),
    add_indicators=st.booleans(),
    missing_values=st.sampled_from(["raise", "ignore"]),
)
def test_winsorizer(
    data: st.DataObject, capping_method: str, tail: str, add_indicators: bool, missing_values: str
) -> None:
    if capping_method == "quantiles":
        fold = data.draw(st.sampled_from(["auto", 0.05, 0.1, 0.2, 0.01]) | st.floats(0.001, 0.2))
    else:
        fold = data.draw(st.sampled_from(["auto", 0.5, 1, 1.5, 3, 2.5]) | st.floats(0.01, 5))
    raise_ = missing_values == "raise"
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 1),
            fit_rows=(4, 30),
            fit_missing="none" if raise_ else "some",
            fit_numbers=st.floats(-1e6, 1e6) if raise_ else SPREAD,
        )
    )
    variables = data.draw(st.none() | subsets(f.numeric))
    capper = Winsorizer(
        capping_method=capping_method,
        tail=tail,
        fold=fold,
        add_indicators=add_indicators,
        variables=variables,
        missing_values=missing_values,
    )
    fit_and_check(capper, f.fit, f.transform)


CAPS = st.one_of(st.sampled_from([0, 1, -1, 0.5, 1e300, -1e300, 2.5]), st.floats(-1e6, 1e6))


@covers(ArbitraryOutlierCapper)
@converter_settings(max_examples=40)
@given(
    data=st.data(),
    missing_values=st.sampled_from(["raise", "ignore"]),
    which=st.sampled_from(["max", "min", "both"]),
)
def test_arbitrary_outlier_capper(data: st.DataObject, missing_values: str, which: str) -> None:
    # float64 columns, as the runtime feeds them: on int64 columns pandas' clip with some
    # cap dicts raises "Invalid integer data type 'O'", a dtype the graph cannot see
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 1),
            fit_integers=None,
            fit_missing="none" if missing_values == "raise" else "any",
        )
    )
    maximum = {v: data.draw(CAPS) for v in data.draw(subsets(f.numeric))} if which != "min" else None
    minimum = {v: data.draw(CAPS) for v in data.draw(subsets(f.numeric))} if which != "max" else None
    capper = ArbitraryOutlierCapper(
        max_capping_dict=maximum, min_capping_dict=minimum, missing_values=missing_values
    )
    fit_and_check(capper, f.fit, f.transform)


# ----------------------------------------------------------------- chosen values

FIT = pd.DataFrame(
    {
        "n0": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0],
        "n1": [1, 5, 2, 8, 3, 9, 4, 7],
        "c0": pd.Series(list("abcabcab"), dtype="str"),
    }
)
EDGES = [0.0, -0.0, 3.5, 1e300, -1e300, math.nan, math.inf, -math.inf, 5e-324, 100.0]


def _edges() -> pd.DataFrame:
    n = len(EDGES)
    return pd.DataFrame({"n0": EDGES, "n1": list(range(n)), "c0": pd.Series(["a"] * n, dtype="str")})


@pytest.mark.parametrize("missing_values", ["raise", "ignore"])
@pytest.mark.parametrize("tail", ["right", "left", "both"])
def test_winsorizer_edges_and_indicators(tail: str, missing_values: str) -> None:
    capper = Winsorizer(tail=tail, fold=0.5, add_indicators=True, missing_values=missing_values)
    outcome = check_equivalent(capper, FIT, _edges())
    assert outcome.refused == (3 if missing_values == "raise" else 0)  # NaN, +-inf
    sides = {"right": ["right"], "left": ["left"], "both": ["left", "right"]}[tail]
    assert outcome.exported.output_columns["num_out"] == ["n0", "n1"] + [
        f"{v}_{s}" for v in ("n0", "n1") for s in sides
    ]


def test_capper_with_crossed_and_missing_caps() -> None:
    """min above max (the left cap wins, clip order), and a NaN cap (pandas does not clip)."""
    capper = ArbitraryOutlierCapper(
        max_capping_dict={"n0": 2.0, "n1": math.nan}, min_capping_dict={"n0": 5.0}, missing_values="ignore"
    )
    outcome = check_equivalent(capper, FIT, _edges())
    assert outcome.refused == 0


def test_winsorizer_caps_from_a_fit_with_infinities() -> None:
    """missing_values='ignore' fits on +-inf too: infinite / NaN caps, applied as pandas does."""
    fit = FIT.assign(n0=[1.0, math.inf, 3.0, 4.0, -math.inf, 6.0, math.nan, 100.0])
    for method in ("gaussian", "iqr", "mad", "quantiles"):
        capper = quietly(
            lambda method=method: Winsorizer(
                capping_method=method, tail="both", add_indicators=True, missing_values="ignore"
            ).fit(fit)
        )
        check_equivalent(capper, fit, _edges())


# ----------------------------------------------------------- refused at export time


@covers(OutlierTrimmer)
@pytest.mark.parametrize("capping_method", ["gaussian", "iqr", "quantiles", "mad"])
def test_outlier_trimmer_is_refused(capping_method: str) -> None:
    pipe = Pipeline(
        [
            ("impute", MeanMedianImputer()),
            ("trim_step", OutlierTrimmer(capping_method=capping_method, tail="both")),
        ]
    )
    quietly(lambda: pipe.fit(FIT))
    message = export_error(pipe, FIT)
    assert "step 'trim_step' (OutlierTrimmer)" in message
    assert "removes the rows" in message and "exactly one output row" in message


def test_winsorizer_indicator_clash_is_refused() -> None:
    fit = FIT.assign(n0_right=FIT["n1"] * 1.0)
    pipe = Pipeline([("cap_step", Winsorizer(variables=["n0"], add_indicators=True))])
    quietly(lambda: pipe.fit(fit))
    message = export_error(pipe, fit)
    assert (
        "step 'cap_step' (Winsorizer)" in message
        and "indicator columns ['n0_right'] already exist" in message
    )


def test_winsorizer_invalid_tail_set_after_fit_is_refused() -> None:
    pipe = Pipeline([("cap_step", Winsorizer(add_indicators=True))])
    quietly(lambda: pipe.fit(FIT))
    pipe.set_params(cap_step__tail="up")
    message = export_error(pipe, FIT)
    assert "step 'cap_step' (Winsorizer)" in message and "tail='up'" in message


def test_capper_non_numeric_cap_is_refused() -> None:
    pipe = Pipeline([("cap_step", ArbitraryOutlierCapper(max_capping_dict={"n0": 3.0}))])
    quietly(lambda: pipe.fit(FIT))
    pipe.named_steps["cap_step"].right_tail_caps_ = {"n0": "3"}
    message = export_error(pipe, FIT)
    assert "step 'cap_step' (ArbitraryOutlierCapper)" in message and "is not a number" in message
