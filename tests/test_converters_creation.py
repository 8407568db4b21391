"""Property tests: the feature-creation converters against feature-engine's creators."""

from __future__ import annotations

import math
import warnings

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
    quietly,
    subsets,
    targets,
)
from feature_engine.creation import (
    CyclicalFeatures,
    DecisionTreeFeatures,
    GeoDistanceFeatures,
    MathFeatures,
    RelativeFeatures,
)
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

#: finite numbers, no NaN (fit frames of the steps that refuse NaN / inf at fit)

# ------------------------------------------------------------------------ MathFeatures

MATH_FUNCS = [
    "sum",
    "mean",
    "prod",
    "product",
    "max",
    "min",
    "std",
    "var",
    "sem",
    "median",
    "count",
    np.sum,
    np.mean,
    np.prod,
    np.max,
    np.min,
    np.std,
    np.var,
    np.median,
    np.nansum,
    np.nanmean,
]
PRODUCTS = ("prod", "product", np.prod)


def _func_name(func: object) -> str:
    return func if isinstance(func, str) else func.__name__  # type: ignore[attr-defined,return-value]


@covers(MathFeatures)
@converter_settings(max_examples=100)
@given(
    data=st.data(),
    missing_values=st.sampled_from(["raise", "ignore"]),
    drop_original=st.booleans(),
    as_list=st.booleans(),
    named=st.booleans(),
)
def test_math_features(
    data: st.DataObject, missing_values: str, drop_original: bool, as_list: bool, named: bool
) -> None:
    if as_list:
        func: object = data.draw(
            st.lists(st.sampled_from(MATH_FUNCS), min_size=1, max_size=4, unique_by=_func_name)
        )
    else:
        func = data.draw(st.sampled_from(MATH_FUNCS))
    funcs = func if isinstance(func, list) else [func]
    # an int64 column multiplies in int64 (wrapping around); the graph computes in float64
    integers = None if any(f in PRODUCTS for f in funcs) else st.integers(-1000, 1000)
    f = data.draw(
        frames(
            numeric=(2, 10),
            categorical=(0, 1),
            fit_missing="none" if missing_values == "raise" else "any",
            fit_numbers=FINITE if missing_values == "raise" else None,
            fit_integers=integers,
        )
    )
    variables = data.draw(subsets(f.numeric, min_size=2))
    names = [f"new_{i}" for i in range(len(funcs))] if named else None
    transformer = MathFeatures(
        variables=variables,
        func=func,
        new_variables_names=names,
        missing_values=missing_values,
        drop_original=drop_original,
    )
    fit_and_check(transformer, f.fit, f.transform)


@pytest.mark.parametrize("width", [7, 8, 9, 16, 17, 130, 300])
@pytest.mark.parametrize("func", ["sum", "mean", "var", "std", "sem"])
def test_math_features_sums_in_numpys_pairwise_order(width: int, func: str) -> None:
    """Cancelling values (1e300 - 1e300 + 1) make any other summation order visible."""
    rng = np.random.default_rng(width)
    pool = np.array([1e300, -1e300, 1.0, -1.0, 1e16, -1e16, 3.0, 0.5, np.nan, 1.7976931348623157e308])
    values = rng.choice(pool, size=(60, width))
    frame = pd.DataFrame(values, columns=[f"x{j}" for j in range(width)])
    transformer = quietly(
        lambda: MathFeatures(variables=list(frame.columns), func=func, missing_values="ignore").fit(frame)
    )
    check_equivalent(transformer, frame, frame)


@pytest.mark.parametrize(
    "func", [lambda v: v.sum(), "skew", "kurt", "nunique", sum, max, np.ptp, [np.sum, "mode"]]
)
def test_math_features_unsupported_functions_are_refused(func: object) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 7.0]})
    pipe = Pipeline([("math_step", MathFeatures(variables=["a", "b"], func=func))])
    quietly(lambda: pipe.fit(frame))
    message = export_error(pipe, frame)
    assert "step 'math_step' (MathFeatures)" in message and "is not exported" in message


def test_math_features_new_column_clashing_with_an_existing_one_is_refused() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 7.0], "total": [0.0, 0.0, 0.0]})
    pipe = Pipeline(
        [("math_step", MathFeatures(variables=["a", "b"], func="sum", new_variables_names=["total"]))]
    )
    quietly(lambda: pipe.fit(frame))
    message = export_error(pipe, frame)
    assert "step 'math_step' (MathFeatures)" in message and "['total'] would overwrite" in message


# -------------------------------------------------------------------- RelativeFeatures

RELATIVE_FUNCS = ["add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow"]


@covers(RelativeFeatures)
@converter_settings(max_examples=100)
@given(
    data=st.data(),
    func=st.lists(st.sampled_from(RELATIVE_FUNCS), min_size=1, max_size=4, unique=True),
    fill_value=st.sampled_from([None, 0, 1.5, -2, math.nan, 1e300]),
    missing_values=st.sampled_from(["raise", "ignore"]),
    drop_original=st.booleans(),
)
def test_relative_features(
    data: st.DataObject,
    func: list[str],
    fill_value: float | None,
    missing_values: str,
    drop_original: bool,
) -> None:
    # float64 columns: pandas computes int64 columns in int64 (wrapping products, integer
    # powers), the graph's inputs are float64
    f = data.draw(
        frames(
            numeric=(1, 4),
            categorical=(0, 1),
            fit_missing="none" if missing_values == "raise" else "any",
            fit_numbers=FINITE if missing_values == "raise" else None,
            fit_integers=None,
        )
    )
    variables = data.draw(subsets(f.numeric))
    reference = data.draw(subsets(f.numeric))
    transformer = RelativeFeatures(
        variables=variables,
        reference=reference,
        func=func,
        fill_value=fill_value,
        missing_values=missing_values,
        drop_original=drop_original,
    )
    fit_and_check(transformer, f.fit, f.transform)


@covers(RelativeFeatures)
@converter_settings(max_examples=40)
@given(
    data=st.data(),
    func=st.lists(st.sampled_from(["add", "sub", "div", "truediv"]), min_size=1, max_size=4, unique=True),
    fill_value=st.sampled_from([None, 0, 2, 0.25]),
)
def test_relative_features_on_integer_columns(
    data: st.DataObject, func: list[str], fill_value: float | None
) -> None:
    f = data.draw(
        frames(numeric=(2, 3), categorical=(0, 0), fit_missing="none", fit_integers=st.integers(-5, 5))
    )
    variables = data.draw(subsets(f.numeric))
    reference = data.draw(subsets(f.numeric))
    transformer = RelativeFeatures(variables=variables, reference=reference, func=func, fill_value=fill_value)
    fit_and_check(transformer, f.fit, f.transform)


@pytest.mark.parametrize("func", ["div", "truediv", "floordiv", "mod"])
def test_relative_features_zero_reference_is_refused_without_fill_value(func: str) -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 7.0]})
    transform = pd.DataFrame({"a": [1.0, -7.5, 3.0, 1e300, -0.0], "b": [0.0, -0.0, 2.0, -3.0, math.inf]})
    transformer = quietly(lambda: RelativeFeatures(variables=["a"], reference=["b"], func=[func]).fit(fit))
    outcome = check_equivalent(transformer, fit, transform)
    assert outcome.refused == 2
    assert any("zero in a reference variable" in c.reason for c in outcome.exported.checks)


def test_relative_features_floor_division_and_remainder_follow_numpy() -> None:
    values = [7.0, -7.0, 7.5, -7.5, 0.0, -0.0, 1e300, -1e-300, math.inf, -math.inf, math.nan, 5e-324, 3.0]
    pairs = [(a, b) for a in values for b in values]
    frame = pd.DataFrame({"a": [a for a, _ in pairs], "b": [b for _, b in pairs]})
    transformer = quietly(
        lambda: RelativeFeatures(
            variables=["a"], reference=["b"], func=["floordiv", "mod"], fill_value=-1
        ).fit(frame)
    )
    check_equivalent(transformer, frame, frame)


# -------------------------------------------------------------------- CyclicalFeatures


@covers(CyclicalFeatures)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    drop_original=st.booleans(),
    given_max=st.booleans(),
)
def test_cyclical_features(data: st.DataObject, drop_original: bool, given_max: bool) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 1), fit_missing="none", fit_numbers=FINITE))
    variables = data.draw(st.none() | subsets(f.numeric))
    max_values = None
    if given_max:
        chosen = variables or f.numeric
        max_values = {
            v: data.draw(st.sampled_from([1, 7, 12, 24, 60.0, 0.5, 2 * math.pi, 1e-300, -3.0, 1e300]))
            for v in chosen
        }
    transformer = CyclicalFeatures(variables=variables, max_values=max_values, drop_original=drop_original)
    fit_or_reject(transformer, f.fit)
    # feature-engine divides 2 pi by a Python number: a zero maximum raises ZeroDivisionError
    if any(type(m) in (int, float) and m == 0 for m in transformer.max_values_.values()):
        assert "ZeroDivisionError" in export_error(Pipeline([("cyc", transformer)]), f.fit)
        return
    check_equivalent(transformer, f.fit, f.transform)


def test_cyclical_features_integer_zero_maximum_is_refused() -> None:
    frame = pd.DataFrame({"hour": [0, 0, 0], "x": [1.0, 2.0, 3.0]})
    pipe = Pipeline([("cyc", CyclicalFeatures(variables=["hour"]))])
    quietly(lambda: pipe.fit(frame))
    with pytest.raises(ZeroDivisionError):
        quietly(lambda: pipe.transform(frame))
    message = export_error(pipe, frame)
    assert "step 'cyc' (CyclicalFeatures)" in message and "ZeroDivisionError" in message


# ------------------------------------------------------------------ GeoDistanceFeatures


@covers(GeoDistanceFeatures)
@converter_settings(max_examples=100)
@given(
    data=st.data(),
    method=st.sampled_from(["haversine", "euclidean", "manhattan"]),
    output_unit=st.sampled_from(["km", "miles", "meters", "feet"]),
    output_col=st.sampled_from(["geo_distance", "d"]),
    drop_original=st.booleans(),
    validate_ranges=st.booleans(),
)
def test_geo_distance_features(
    data: st.DataObject,
    method: str,
    output_unit: str,
    output_col: str,
    drop_original: bool,
    validate_ranges: bool,
) -> None:
    coordinates = st.one_of(
        st.floats(-90, 90),
        st.sampled_from([0.0, -0.0, 90.0, -90.0, 45.0, 1e-300]),
        st.integers(-90, 90).map(float),
    )
    f = data.draw(
        frames(
            numeric=(2, 5),
            categorical=(0, 1),
            fit_missing="none",
            fit_numbers=coordinates if validate_ranges else FINITE,
            fit_integers=st.integers(-90, 90),
        )
    )
    lat1, lon1, lat2, lon2 = (data.draw(st.sampled_from(f.numeric)) for _ in range(4))
    transformer = GeoDistanceFeatures(
        lat1,
        lon1,
        lat2,
        lon2,
        method=method,  # type: ignore[arg-type]
        output_unit=output_unit,  # type: ignore[arg-type]
        output_col=output_col,
        drop_original=drop_original,
        validate_ranges=validate_ranges,
    )
    fit_and_check(transformer, f.fit, f.transform)


def test_geo_distance_haversine_over_the_whole_sphere() -> None:
    """Every pair of a grid of points (antipodes, poles, the date line): arcsin near 1."""
    grid = [
        (lat, lon)
        for lat in (-90.0, -45.5, 0.0, 0.1, 60.0, 90.0)
        for lon in (-180.0, -90.0, 0.0, 33.3, 179.9, 180.0)
    ]
    pairs = [(p, q) for p in grid for q in grid]
    frame = pd.DataFrame(
        {
            "la1": [p[0] for p, _ in pairs],
            "lo1": [p[1] for p, _ in pairs],
            "la2": [q[0] for _, q in pairs],
            "lo2": [q[1] for _, q in pairs],
        }
    )
    transformer = GeoDistanceFeatures("la1", "lo1", "la2", "lo2").fit(frame)
    check_equivalent(transformer, frame, frame)


def test_geo_distance_output_column_clash_is_refused() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]})
    pipe = Pipeline([("geo", GeoDistanceFeatures("a", "b", "c", "d", output_col="a"))])
    quietly(lambda: pipe.fit(frame))
    message = export_error(pipe, frame)
    assert "step 'geo' (GeoDistanceFeatures)" in message and "['a'] would overwrite" in message


# ----------------------------------------------------------------- DecisionTreeFeatures


@st.composite
def _combinations(draw: st.DrawFn, variables: list[str]) -> object:
    kind = draw(st.sampled_from(["none", "int", "list", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(1, len(variables)))
    if kind == "list":
        return draw(st.lists(st.integers(1, len(variables)), min_size=1, max_size=2, unique=True))
    combos = draw(st.lists(subsets(variables, max_size=2), min_size=1, max_size=3))
    return tuple(c[0] if len(c) == 1 and draw(st.booleans()) else c for c in combos)


@covers(DecisionTreeFeatures)
@converter_settings(max_examples=25)
@given(
    data=st.data(),
    task=st.sampled_from(["regression", "binary", "multiclass"]),
    precision=st.sampled_from([None, 1, 2, 3, 30]),
    param_grid=st.sampled_from([None, {"max_depth": [1, 2]}, {"max_depth": [3], "min_samples_leaf": [1, 2]}]),
    drop_original=st.booleans(),
)
def test_decision_tree_features(
    data: st.DataObject, task: str, precision: int | None, param_grid: dict | None, drop_original: bool
) -> None:
    fit_numbers = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, 1.0, -2.5, 1e30]))
    f = data.draw(
        frames(
            numeric=(1, 3), categorical=(0, 1), fit_rows=(6, 30), fit_missing="none", fit_numbers=fit_numbers
        )
    )
    variables = data.draw(st.none() | subsets(f.numeric))
    n = len(f.fit)
    if task == "regression":
        y = data.draw(targets(f.fit.index))
        assume(y.nunique() > 2)
    else:
        labels = data.draw(
            st.sampled_from(
                [[0, 1], ["a", "b"], [1.5, -3.0]] if task == "binary" else [[0, 1, 2], [2.5, 1.0, 7.0, 4.0]]
            )
        )
        y = pd.Series(data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)), index=f.fit.index)
        assume(y.nunique() == len(labels) if task == "binary" else y.nunique() >= 3)
    combos = data.draw(_combinations(variables or f.numeric))
    transformer = DecisionTreeFeatures(
        variables=variables,
        features_to_combine=combos,
        precision=precision,
        regression=task == "regression",
        param_grid=param_grid,
        drop_original=drop_original,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_or_reject(transformer, f.fit, y)
    check_equivalent(transformer, f.fit, f.transform)


def _tree_frame() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.DataFrame({"a": np.arange(12.0), "b": np.arange(12.0)[::-1] ** 2, "c": np.ones(12)})
    return frame, pd.Series(["x", "y", "z"] * 4)


def test_decision_tree_features_refuses_float32_overflow() -> None:
    frame, _ = _tree_frame()
    transformer = quietly(
        lambda: DecisionTreeFeatures(variables=["a", "b"], regression=True).fit(frame, np.arange(12.0))
    )
    transform = frame.head(4).assign(a=[1e300, -1e39, 3.4e38, 1.0])
    outcome = check_equivalent(transformer, frame, transform)
    assert outcome.refused == 2
    assert any("float32" in c.reason for c in outcome.exported.checks)


def test_decision_tree_features_multiclass_with_text_labels_is_refused() -> None:
    frame, y = _tree_frame()
    pipe = Pipeline([("trees", DecisionTreeFeatures(variables=["a", "b"], regression=False))])
    quietly(lambda: pipe.fit(frame, y))
    message = export_error(pipe, frame)
    assert "step 'trees' (DecisionTreeFeatures)" in message and "non-numeric classes" in message


def test_decision_tree_features_combination_outside_variables_is_refused() -> None:
    frame, _ = _tree_frame()
    step = DecisionTreeFeatures(variables=["a", "b"], features_to_combine=("a", ("a", "c")))
    pipe = Pipeline([("trees", step)])
    quietly(lambda: pipe.fit(frame, pd.Series(np.arange(12.0))))
    message = export_error(pipe, frame)
    assert "step 'trees' (DecisionTreeFeatures)" in message and "['c']" in message
