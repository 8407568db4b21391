"""Property tests: LogCp, reciprocal, power, Box-Cox, Yeo-Johnson, arcsin and arcsinh
converters against feature-engine's transformers (LogTransformer: test_converters_transformation)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    FINITE,
    check_equivalent,
    converter_settings,
    covers,
    export_error,
    fit_and_check,
    fit_or_reject,
    frames,
    positive_numbers,
    quietly,
    subsets,
)
from feature_engine.transformation import (
    ArcSinhTransformer,
    ArcsinTransformer,
    BoxCoxTransformer,
    LogCpTransformer,
    PowerTransformer,
    ReciprocalTransformer,
    YeoJohnsonTransformer,
)
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats
from sklearn.pipeline import Pipeline

#: finite fit values (the transformers refuse NaN / inf at fit)


def finite_frames(**kwargs: object) -> st.SearchStrategy:
    options: dict = {"numeric": (1, 3), "categorical": (0, 1), "fit_missing": "none", "fit_numbers": FINITE}
    options.update(kwargs)
    return frames(**options)


@covers(LogCpTransformer)
@converter_settings(max_examples=20)
@given(
    data=st.data(),
    base=st.sampled_from(["e", "10"]),
    c=st.sampled_from(["auto", "auto", 0, 1, 3, 0.5, 1e6, "dict"]),
)
def test_log_cp_transformer(data: st.DataObject, base: str, c: object) -> None:
    f = data.draw(finite_frames())
    if c == "dict":
        # C as a dict: its keys are the variables, `variables` is ignored
        names = data.draw(subsets(f.numeric))
        c = {v: data.draw(st.sampled_from([0, 1, 2.5, 1e3]) | st.floats(0, 1e6)) for v in names}
        variables = None
    else:
        variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(LogCpTransformer(variables=variables, base=base, C=c), f.fit, f.transform)


@covers(ReciprocalTransformer)
@converter_settings(max_examples=15)
@given(data=st.data())
def test_reciprocal_transformer(data: st.DataObject) -> None:
    f = data.draw(finite_frames())
    variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(ReciprocalTransformer(variables=variables), f.fit, f.transform)


@covers(PowerTransformer)
@converter_settings(max_examples=20)
@given(
    data=st.data(),
    exp=st.sampled_from([0.5, 2, 3, -1, 0, 1, 1 / 3, 2.5, -0.5, -2, 10, 0.0])
    | st.floats(-20, 20, allow_nan=False),
)
def test_power_transformer(data: st.DataObject, exp: float) -> None:
    f = data.draw(finite_frames())
    variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(PowerTransformer(variables=variables, exp=exp), f.fit, f.transform)


EPS = float(np.finfo(np.float64).eps)
#: the floats next to 2: |lambda - 2| is 2 eps above (Yeo-Johnson's expm1 branch), eps below (log1p)
AFTER_2, BEFORE_2 = float(np.nextafter(2.0, 3.0)), float(np.nextafter(2.0, 1.0))
#: lambdas that reach every branch of scipy's Box-Cox / Yeo-Johnson formulas
SPECIAL_LAMBDAS = st.sampled_from(
    [0.0, 1e-20, -1e-20, 2e-19, EPS, EPS / 2, -EPS, 1e-12, 1e-6, 0.5, 1.0, 2.0, AFTER_2, BEFORE_2, 3.0,
     5.0, -5.0, 40.0, -40.0, -0.25]
)  # fmt: skip


def _with_lambdas(data: st.DataObject, transformer: object) -> None:
    """Replace some fitted lambdas by special ones (transform reads ``lambda_dict_``)."""
    lambdas = transformer.lambda_dict_  # type: ignore[attr-defined]
    for var in list(lambdas):
        if data.draw(st.booleans()):
            lambdas[var] = data.draw(SPECIAL_LAMBDAS | st.floats(-50, 50))


@covers(BoxCoxTransformer)
@converter_settings(max_examples=20)
@given(data=st.data(), special_lambdas=st.booleans())
def test_box_cox_transformer(data: st.DataObject, special_lambdas: bool) -> None:
    f = data.draw(finite_frames(fit_numbers=positive_numbers(), fit_integers=st.integers(1, 10**6)))
    variables = data.draw(st.none() | subsets(f.numeric))
    transformer = fit_or_reject(BoxCoxTransformer(variables=variables), f.fit)
    if special_lambdas:
        _with_lambdas(data, transformer)
    check_equivalent(transformer, f.fit, f.transform)


@covers(YeoJohnsonTransformer)
@converter_settings(max_examples=20)
@given(data=st.data(), special_lambdas=st.booleans())
def test_yeo_johnson_transformer(data: st.DataObject, special_lambdas: bool) -> None:
    f = data.draw(finite_frames())
    variables = data.draw(st.none() | subsets(f.numeric))
    transformer = fit_or_reject(YeoJohnsonTransformer(variables=variables), f.fit)
    if special_lambdas:
        _with_lambdas(data, transformer)
    check_equivalent(transformer, f.fit, f.transform)


UNIT = st.one_of(
    st.sampled_from([0.0, 1.0, 0.25, 0.5, 1e-300, 5e-324, 1 - 1e-16, 0.2499999999999999, 0.9775]),
    st.floats(0.0, 1.0),
)


@covers(ArcsinTransformer)
@converter_settings(max_examples=15)
@given(data=st.data())
def test_arcsin_transformer(data: st.DataObject) -> None:
    # no int64 column: see test_arcsin_transformer_on_an_int64_column
    f = data.draw(finite_frames(fit_numbers=UNIT, fit_integers=None))
    variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(ArcsinTransformer(variables=variables), f.fit, f.transform)


@covers(ArcSinhTransformer)
@converter_settings(max_examples=15)
@given(
    data=st.data(),
    loc=st.sampled_from([0.0, 1.0, -3.5, 1e300]) | st.floats(-1e6, 1e6),
    scale=st.sampled_from([1.0, 0.5, 1e-300, 1e300, 3]) | st.floats(1e-6, 1e6),
)
def test_arcsinh_transformer(data: st.DataObject, loc: float, scale: float) -> None:
    f = data.draw(finite_frames())
    variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(ArcSinhTransformer(variables=variables, loc=loc, scale=scale), f.fit, f.transform)


# ------------------------------------------------------------ chosen values, domains

FIT = pd.DataFrame(
    {"n0": [0.1, 0.5, 0.9, 0.3, 0.7], "n1": [1, 2, 3, 5, 8], "c0": pd.Series(list("abcab"), dtype="str")}
)
EDGES = [0.0, -0.0, 1.0, 1.5, -1.0, math.nan, math.inf, -math.inf, 1e-300, 5e-324, 0.25, 1e300, -1e300]


def _edge_frame(values: list[float]) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"n0": values, "n1": list(range(1, n + 1)), "c0": pd.Series(["a"] * n, dtype="str")})


@pytest.mark.parametrize(
    ("transformer", "refused"),
    [
        (LogCpTransformer(C=1), 5),  # -1 (x + C = 0), -1e300, NaN, +-inf
        (LogCpTransformer(C={"n0": 0.5}, base="10"), 5),
        (ReciprocalTransformer(), 5),  # 0, -0, NaN, +-inf
        (PowerTransformer(exp=0.5), 3),  # NaN, +-inf only: negatives give NaN, as numpy does
        (BoxCoxTransformer(), 7),  # 0, -0, -1, -1e300, NaN, +-inf
        (YeoJohnsonTransformer(), 3),
        (ArcsinTransformer(variables=["n0"]), 7),  # 1.5, -1, 1e300, -1e300, NaN, +-inf
        (ArcSinhTransformer(loc=2.0, scale=0.5), 3),
    ],
)
def test_domains_refused_where_the_original_raises(transformer: object, refused: int) -> None:
    outcome = check_equivalent(transformer, FIT, _edge_frame(EDGES))
    assert outcome.refused == refused


def test_power_transformer_gives_nan_where_numpy_does() -> None:
    transformer = quietly(lambda: PowerTransformer(exp=0.5).fit(FIT))
    out = quietly(lambda: transformer.transform(_edge_frame([-1.0, 4.0])))
    assert math.isnan(out["n0"].iloc[0])  # no error: the graph gives NaN too
    check_equivalent(transformer, FIT, _edge_frame([-1.0, 4.0, -0.0, 1e300, -1e-300]))


@pytest.mark.parametrize("lam", [0.0, 1e-20, 1e-10, 5.0, -5.0, 200.0, -200.0, 0.3])
def test_box_cox_branches(lam: float) -> None:
    """scipy's three branches: lambda ~ 0 (log), the usual expm1 and, for
    lambda * log(x) >= 709.78, the form that avoids the overflow of exp."""
    transformer = quietly(lambda: BoxCoxTransformer(variables=["n0"]).fit(FIT))
    transformer.lambda_dict_["n0"] = lam
    values = [1e-300, 5e-324, 1e-10, 0.5, 1.0, 1.0 + 1e-15, 2.0, 1e15, 1e61, 4.7e61, 1e62, 1e300, 1.7e308]
    values += [math.exp(t / lam) for t in (709.0, 709.77, 709.79, 710.0, 711.0)] if abs(lam) > 1 else []
    frame = _edge_frame(values)
    expected = special.boxcox(np.array(values), lam)
    assert np.array_equal(
        quietly(lambda: transformer.transform(frame))["n0"].to_numpy(), expected, equal_nan=True
    )
    check_equivalent(transformer, FIT, frame)


@pytest.mark.parametrize(
    "lam", [0.0, 1e-17, EPS, EPS / 2, -EPS, 2.0, AFTER_2, BEFORE_2, 1.0, -3.0, 7.0, 40.0, -40.0, 1e-9]
)
def test_yeo_johnson_branches(lam: float) -> None:
    transformer = quietly(lambda: YeoJohnsonTransformer(variables=["n0"]).fit(FIT))
    transformer.lambda_dict_["n0"] = lam
    values = [
        0.0,
        -0.0,
        1e-300,
        -1e-300,
        5e-324,
        1e-17,
        -1e-17,
        1e-9,
        -1e-9,
        0.5,
        -0.5,
        1.0,
        -1.0,
        30.0,
        -30.0,
    ]
    values += [1e15, -1e15, 1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308]
    frame = _edge_frame(values)
    expected = quietly(lambda: stats.yeojohnson(np.array(values), lmbda=lam))
    assert np.array_equal(
        quietly(lambda: transformer.transform(frame))["n0"].to_numpy(), expected, equal_nan=True
    )
    check_equivalent(transformer, FIT, frame)


def test_arcsin_near_the_ends_of_the_unit_interval() -> None:
    transformer = quietly(lambda: ArcsinTransformer(variables=["n0"]).fit(FIT))
    values = [0.0, 5e-324, 1e-300, 1e-30, 1e-16, 0.2499999999999999, 0.25, 0.2500000000000001]
    values += [0.5, 0.9, 0.950625, 0.9999999999, 1 - 1e-16, 1 - 2.2e-16, 1.0]
    check_equivalent(transformer, FIT, _edge_frame(values))


def test_arcsin_transformer_on_an_int64_column() -> None:
    """feature-engine writes arcsin(sqrt(x)) into the int64 column itself
    (``X.loc[:, variables] = ...``, no cast to float first), which pandas 3 refuses
    (TypeError, even for 0 -> 0.0): the original raises on every int64 column at
    transform. The graph gets float64 numbers, whatever the caller's dtype, and follows
    the original on float64 columns (the runtime's reference frame, conversion/stages/verify.py);
    the property test uses float64 columns for that reason. If this test fails,
    feature-engine or pandas changed and the restriction can go."""
    fit = pd.DataFrame({"n0": [0, 1, 1]})
    transformer = quietly(lambda: ArcsinTransformer().fit(fit))
    with pytest.raises(TypeError, match="Invalid value"):
        quietly(lambda: transformer.transform(pd.DataFrame({"n0": [0, 1]})))
    check_equivalent(transformer, fit, pd.DataFrame({"n0": [0.0, 1.0, 0.5]}))


def test_arcsinh_extremes() -> None:
    values = [0.0, -0.0, 5e-324, -1e-300, 1e-9, 2.0, -2.0, 2.0**28, 2.0**28 + 1, 1e154, 1e155, 1e300, -1e300]
    for loc, scale in [(0.0, 1.0), (-1e308, 1e-300), (1.0, 0.0)]:
        transformer = quietly(lambda loc=loc, scale=scale: ArcSinhTransformer(loc=1.0, scale=1.0).fit(FIT))
        transformer.set_params(loc=loc, scale=scale)  # scale=0 after fit: inf / NaN, as numpy gives
        check_equivalent(transformer, FIT, _edge_frame(values))


# ----------------------------------------------------------- refused at export time


def _message(step: object) -> str:
    pipe = Pipeline([("tr_step", step)])
    quietly(lambda: pipe.fit(FIT))
    return export_error(pipe, FIT)


def test_power_exp_set_after_fit_to_a_non_number_is_refused() -> None:
    pipe = Pipeline([("tr_step", PowerTransformer(exp=2))])
    quietly(lambda: pipe.fit(FIT))
    pipe.set_params(tr_step__exp="2")
    message = export_error(pipe, FIT)
    assert "step 'tr_step' (PowerTransformer)" in message and "exp='2' is not a number" in message


def test_log_cp_constant_not_a_number_is_refused() -> None:
    pipe = Pipeline([("tr_step", LogCpTransformer(C=2))])
    quietly(lambda: pipe.fit(FIT))
    pipe.named_steps["tr_step"].C_ = "2"
    message = export_error(pipe, FIT)
    assert "step 'tr_step' (LogCpTransformer)" in message and "C_='2' is not a number" in message


def test_log_cp_huge_integer_constant_is_refused() -> None:
    message = _message(LogCpTransformer(C=2**60))
    assert "step 'tr_step' (LogCpTransformer)" in message and "float64 does not hold exactly" in message


@pytest.mark.parametrize("transformer", [BoxCoxTransformer(), YeoJohnsonTransformer()])
def test_non_finite_lambda_is_refused(transformer: object) -> None:
    pipe = Pipeline([("tr_step", transformer)])
    quietly(lambda: pipe.fit(FIT))
    pipe.named_steps["tr_step"].lambda_dict_["n1"] = math.nan
    message = export_error(pipe, FIT)
    assert f"step 'tr_step' ({type(transformer).__name__})" in message
    assert "lambda_dict_ is not finite for variables ['n1']" in message


def test_arcsinh_loc_set_after_fit_to_a_non_number_is_refused() -> None:
    pipe = Pipeline([("tr_step", ArcSinhTransformer())])
    quietly(lambda: pipe.fit(FIT))
    pipe.set_params(tr_step__loc=None)
    message = export_error(pipe, FIT)
    assert "step 'tr_step' (ArcSinhTransformer)" in message and "loc=None is not a number" in message
