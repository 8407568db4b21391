"""Property tests: SklearnTransformerWrapper around scikit-learn transformers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    FINITE,
    check_equivalent,
    check_or_refused,
    converter_settings,
    covers,
    export_error,
    fit_and_check,
    fit_or_reject,
    frames,
    numbers,
    quietly,
    run_graph,
    subsets,
    targets,
)
from feature_engine._prediction.target_mean_classifier import TargetMeanClassifier
from feature_engine._prediction.target_mean_regressor import TargetMeanRegressor
from feature_engine.creation import CyclicalFeatures, MathFeatures, RelativeFeatures
from feature_engine.imputation import MeanMedianImputer
from feature_engine.wrappers import SklearnTransformerWrapper
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.compose import TransformedTargetRegressor
from sklearn.feature_selection import SelectKBest, SelectPercentile, VarianceThreshold, f_regression
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    StandardScaler,
)
from sklearn_harness import (
    BINARIZERS_NORMALIZERS,
    KBINS_FIT_NUMBERS,
    POLYNOMIALS,
    SCALERS,
    encoder_frames,
    imputer_frames,
)

from predictlib.build import export_pipeline, infer_columns, tolerances


def _wrapped(data: st.DataObject, inner: Any, candidates: list[str], *, allow_none: bool = True) -> Any:
    variables = data.draw((st.none() | subsets(candidates)) if allow_none else subsets(candidates))
    return SklearnTransformerWrapper(inner, variables=variables)


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=80)
@given(data=st.data(), inner=SCALERS)
def test_wrapper_scalers_through_skl2onnx(data: st.DataObject, inner: Any) -> None:
    f = data.draw(
        frames(numeric=(1, 3), categorical=(0, 2), fit_numbers=numbers(missing=True, infinite=False))
    )
    wrapper = _wrapped(data, inner, f.numeric)
    fit_and_check(wrapper, f.fit, f.transform)


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=80)
@given(
    data=st.data(),
    inner=st.one_of(
        BINARIZERS_NORMALIZERS,
        st.builds(
            KBinsDiscretizer,
            n_bins=st.integers(2, 5),
            encode=st.just("ordinal"),
            strategy=st.sampled_from(["uniform", "quantile", "kmeans"]),
            quantile_method=st.just("averaged_inverted_cdf"),
        ),
    ),
)
def test_wrapper_binarizer_normalizer_kbins(data: st.DataObject, inner: Any) -> None:
    f = data.draw(
        frames(numeric=(1, 3), categorical=(0, 1), fit_missing="none", fit_numbers=KBINS_FIT_NUMBERS)
    )
    wrapper = _wrapped(data, inner, f.numeric)
    fit_and_check(wrapper, f.fit, f.transform)


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=80)
@given(
    data=st.data(),
    strategy=st.sampled_from(["mean", "median", "most_frequent", "constant"]),
    missing_values=st.sampled_from([math.nan, 0.0, -1]),
    keep_empty_features=st.booleans(),
)
def test_wrapper_simple_imputer_numeric(
    data: st.DataObject, strategy: str, missing_values: float, keep_empty_features: bool
) -> None:
    f = imputer_frames(data, missing_values, categorical=(0, 1))
    inner = SimpleImputer(
        strategy=strategy,
        missing_values=missing_values,
        fill_value=-7.5 if strategy == "constant" else None,
        keep_empty_features=keep_empty_features,
    )
    check_or_refused(
        _wrapped(data, inner, f.numeric, allow_none=False),
        f.fit,
        f.transform,
        # a column of missing values only has a NaN statistic: the imputer drops it
        refused=lambda w: (
            bool(np.isnan(np.asarray(w.transformer_.statistics_, dtype=np.float64)).any())
            and not keep_empty_features
        ),
        reasons=("step 'w' (SklearnTransformerWrapper)", "drops them"),
    )


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=60)
@given(data=st.data(), strategy=st.sampled_from(["most_frequent", "constant"]))
def test_wrapper_simple_imputer_text(data: st.DataObject, strategy: str) -> None:
    # scikit-learn's mask of missing values in an object array matches NaN only (not
    # None, which it keeps), so the text columns spell missing values NaN
    f = data.draw(frames(numeric=(0, 1), categorical=(1, 3), fit_missing="some", missing_markers=(math.nan,)))
    inner = SimpleImputer(strategy=strategy, fill_value="filled" if strategy == "constant" else None)
    wrapper = _wrapped(data, inner, f.categorical, allow_none=False)
    fit_and_check(wrapper, f.fit, f.transform)


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    func=st.sampled_from([None, np.log, np.exp, np.sqrt, np.abs, np.square, np.log1p, np.expm1]),
    validate=st.booleans(),
)
def test_wrapper_function_transformer(data: st.DataObject, func: Any, validate: bool) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 2)))
    candidates = f.numeric if func is not None or validate else f.numeric + f.categorical
    wrapper = SklearnTransformerWrapper(
        FunctionTransformer(func=func, validate=validate), variables=data.draw(subsets(candidates))
    )
    fit_and_check(wrapper, f.fit, f.transform)


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=100)
@given(
    data=st.data(),
    drop=st.sampled_from([None, "first", "if_binary"]),
    handle_unknown=st.sampled_from(["error", "ignore", "infrequent_if_exist", "warn"]),
)
def test_wrapper_one_hot_encoder(data: st.DataObject, drop: str | None, handle_unknown: str) -> None:
    f = encoder_frames(data, categorical=(0, 2))
    inner = OneHotEncoder(sparse_output=False, drop=drop, handle_unknown=handle_unknown)
    check_or_refused(
        _wrapped(data, inner, f.numeric + f.categorical),
        f.fit,
        f.transform,
        refused=lambda w: len(w.transformer_.get_feature_names_out()) == 0,  # drop="first", one category each
        reasons=("creates no column",),
    )


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=80)
@given(
    data=st.data(),
    handle_unknown=st.sampled_from(["error", "use_encoded_value"]),
    unknown_value=st.sampled_from([-1, math.nan, 99]),
    encoded_missing_value=st.sampled_from([math.nan, -2]),
)
def test_wrapper_ordinal_encoder(
    data: st.DataObject, handle_unknown: str, unknown_value: float, encoded_missing_value: float
) -> None:
    f = encoder_frames(data, categorical=(0, 2))
    inner = OrdinalEncoder(
        handle_unknown=handle_unknown,
        unknown_value=unknown_value if handle_unknown == "use_encoded_value" else None,
        encoded_missing_value=encoded_missing_value,
    )
    wrapper = _wrapped(data, inner, f.numeric + f.categorical)
    fit_and_check(wrapper, f.fit, f.transform)


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=80)
@given(data=st.data(), inner=POLYNOMIALS)
def test_wrapper_polynomial_features(data: st.DataObject, inner: PolynomialFeatures) -> None:
    f = data.draw(frames(numeric=(1, 4), categorical=(0, 1), fit_missing="none", fit_numbers=FINITE))
    check_or_refused(
        _wrapped(data, inner, f.numeric),
        f.fit,
        f.transform,
        # e.g. interactions of degree >= 2 of one variable
        refused=lambda w: w.transformer_.n_output_features_ == 0,
        reasons=("creates no column",),
    )


@covers(SklearnTransformerWrapper)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    inner=st.one_of(
        st.builds(VarianceThreshold, threshold=st.sampled_from([0.0, 0.5, 10.0])),
        st.builds(SelectKBest, score_func=st.just(f_regression), k=st.integers(1, 2)),
        st.builds(
            SelectPercentile, score_func=st.just(f_regression), percentile=st.sampled_from([10, 50, 90])
        ),
    ),
)
def test_wrapper_selectors(data: st.DataObject, inner: Any) -> None:
    f = data.draw(
        frames(
            numeric=(2, 4),
            categorical=(0, 2),
            fit_rows=(4, 30),
            fit_missing="none",
            fit_numbers=st.floats(-1e3, 1e3),
        )
    )
    check_or_refused(
        _wrapped(data, inner, f.numeric),
        f.fit,
        f.transform,
        data.draw(targets(f.fit.index)),
        refused=lambda w: set(w.features_to_drop_) == set(f.fit.columns),
        reasons=("drops every column",),
    )


def test_wrapper_polynomial_products_in_scikit_learns_order() -> None:
    """1e300 * 1e300 * 1e-300 is inf or 1e300 depending on the order of the products."""
    values = [1e300, 1e-300, -1e300, 2.0, 0.5, 1e-200, 1e200]
    rows = [(a, b, c) for a in values for b in values for c in values]
    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    for degree in (2, 3, (3, 3)):
        wrapper = quietly(lambda d=degree: SklearnTransformerWrapper(PolynomialFeatures(degree=d)).fit(frame))
        check_equivalent(wrapper, frame, frame)


def test_wrapper_binarizer_sends_the_threshold_to_zero() -> None:
    """skl2onnx's float64 Binarizer sends x == threshold to 1; scikit-learn to 0."""
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, -1.0]})
    wrapper = SklearnTransformerWrapper(Binarizer(threshold=1.0)).fit(frame)
    assert wrapper.transform(frame)["a"].tolist() == [0.0, 0.0, 1.0, 0.0]
    check_equivalent(wrapper, frame, frame)


# ---------------------------------------------------------------- refused at export

FIT = pd.DataFrame(
    {
        "n0": [1.0, 2.0, 2.0, 3.0, 1.0, 2.0],
        "n1": [5.0, 1.0, 2.0, 3.0, 4.0, 2.5],
        "c0": pd.Series(["a", "a", "b", "a", "c", "b"], dtype="str"),
    }
)


def _message(inner: Any, variables: list[str] | None = None, frame: pd.DataFrame = FIT) -> str:
    pipe = Pipeline([("wrap_step", SklearnTransformerWrapper(inner, variables=variables))])
    quietly(lambda: pipe.fit(frame))
    return export_error(pipe, frame)


@pytest.mark.parametrize(
    "inner",
    [
        PowerTransformer(),
        QuantileTransformer(n_quantiles=5),
        KNNImputer(),
    ],
)
def test_wrapper_unsupported_transformer_is_refused(inner: Any) -> None:
    message = _message(inner)
    assert "step 'wrap_step' (SklearnTransformerWrapper)" in message
    assert f"wrapped transformer {type(inner).__name__} is not exported" in message


@pytest.mark.parametrize(
    ("inner", "variables", "reason"),
    [
        (FunctionTransformer(lambda x: x + 1), ["n0"], "is not exported"),
        (FunctionTransformer(np.log, kw_args={"out": None}), ["n0"], "kw_args"),
        (FunctionTransformer(np.log), ["c0"], "on text columns raises"),
        (
            KBinsDiscretizer(
                n_bins=2, encode="ordinal", dtype=np.float32, quantile_method="averaged_inverted_cdf"
            ),
            ["n0"],
            "float32",
        ),
        (OneHotEncoder(sparse_output=False, min_frequency=2), ["c0"], "infrequent categories"),
        (SimpleImputer(strategy="most_frequent"), ["n0", "c0"], "mix numeric and text"),
        (SimpleImputer(strategy="constant", fill_value=1), ["c0"], "not strings"),
    ],
)
def test_wrapper_unexportable_parameters_are_refused(inner: Any, variables: list[str], reason: str) -> None:
    message = _message(inner, variables)
    assert "step 'wrap_step' (SklearnTransformerWrapper)" in message
    assert f"wrapped {type(inner).__name__}" in message and reason in message


def test_wrapper_simple_imputer_dropping_an_empty_column_is_refused() -> None:
    frame = FIT.assign(n1=math.nan)
    pipe = Pipeline([("wrap_step", SklearnTransformerWrapper(SimpleImputer(), variables=["n0", "n1"]))])
    quietly(lambda: pipe.fit(frame))
    with pytest.raises(ValueError):
        quietly(lambda: pipe.transform(frame))
    message = export_error(pipe, frame)
    assert "step 'wrap_step' (SklearnTransformerWrapper)" in message and "['n1']" in message


# ------------------------------------------------------------------------- pipelines


@covers(SklearnTransformerWrapper, MathFeatures, RelativeFeatures, CyclicalFeatures)
@converter_settings(max_examples=40)
@given(data=st.data(), inner=SCALERS, drop_original=st.booleans())
def test_creators_and_wrappers_in_a_pipeline(data: st.DataObject, inner: Any, drop_original: bool) -> None:
    """Blocks written by one step are read by the next: an imputer, two creators, a
    wrapped scaler (skl2onnx's converter on the gathered block), a one-hot encoder."""
    # str columns: an imputer's infer_objects() turns an object column of missing values
    # into float64 (see test_converters_encoding), which the encoder then rejects
    f = data.draw(frames(numeric=(2, 3), categorical=(1, 2), fit_numbers=FINITE, cat_dtypes=("str",)))
    pipe = Pipeline(
        [
            ("impute", MeanMedianImputer()),
            ("math", MathFeatures(variables=f.numeric[:2], func=["sum", "std"], drop_original=drop_original)),
            (
                "relative",
                RelativeFeatures(
                    variables=[f"sum_{f.numeric[0]}_{f.numeric[1]}"],
                    reference=f.numeric[2:] or [f"std_{f.numeric[0]}_{f.numeric[1]}"],
                    func=["div"],
                    fill_value=0,
                ),
            ),
            (
                "cyclical",
                CyclicalFeatures(
                    variables=[f"sum_{f.numeric[0]}_{f.numeric[1]}"],
                    max_values={f"sum_{f.numeric[0]}_{f.numeric[1]}": 24},
                ),
            ),
            ("scale", SklearnTransformerWrapper(inner)),
            (
                "one_hot",
                SklearnTransformerWrapper(
                    OneHotEncoder(sparse_output=False, handle_unknown="ignore"), variables=f.categorical
                ),
            ),
        ]
    )
    fit_and_check(pipe, f.fit, f.transform)


def test_wrapped_scaler_before_an_estimator() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0, 8.0, 3.0], "b": [0.5, 0.1, -2.0, 3.0, 1.0]})
    y = pd.Series([1.0, 2.0, 3.0, 4.0, 2.5])
    pipe = Pipeline(
        [
            ("math", MathFeatures(variables=["a", "b"], func="prod")),
            ("scale", SklearnTransformerWrapper(StandardScaler())),
            ("model", LinearRegression()),
        ]
    ).fit(frame, y)
    rows = pd.DataFrame({"a": [1.0, 5.0, np.inf], "b": [2.0, -1.0, 1.0]})
    outputs = run_graph(export_pipeline(pipe, infer_columns(frame)), rows)
    np.testing.assert_allclose(outputs["prediction"][:2, 0], pipe.predict(rows.iloc[:2]), rtol=1e-12)
    assert outputs["refusals"][2].any() and not outputs["refusals"][:2].any()


# ------------------------------------------------------------- target-mean predictors


def _check_predictor(model: Any, fit: pd.DataFrame, transform: pd.DataFrame) -> None:
    """The graph's prediction (label and probabilities) equals the original's row by row;
    rows on which the original raises are refused."""
    exported = export_pipeline(model, infer_columns(fit))
    outputs = run_graph(exported, transform)
    refused = outputs["refusals"].any(axis=1)
    for i in range(len(transform)):
        row = transform.iloc[[i]]
        try:
            if exported.task == "regression":
                expected = {"prediction": quietly(lambda r=row: model.predict(r)).reshape(-1, 1)}
            else:
                expected = {
                    "probabilities": quietly(lambda r=row: model.predict_proba(r)),
                    "label": quietly(lambda r=row: model.predict(r)),
                }
        except (ValueError, TypeError) as exc:
            assert refused[i], f"row {i}: the original raises ({exc!r}), the graph accepts it:\n{row!r}"
            continue
        assert not refused[i], f"row {i}: refused, the original accepts it:\n{row!r}"
        for name, value in expected.items():
            got = outputs[name][i : i + 1]
            if name == "label":
                assert got.tolist() == np.asarray(value).tolist(), (name, got, value)
            else:
                np.testing.assert_allclose(got, value, rtol=tolerances.RTOL, atol=tolerances.ATOL)


@covers(TargetMeanRegressor, TargetMeanClassifier)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    classifier=st.booleans(),
    bins=st.integers(1, 6),
    strategy=st.sampled_from(["equal_width", "equal_frequency"]),
    in_pipeline=st.booleans(),
)
def test_target_mean_predictors(
    data: st.DataObject, classifier: bool, bins: int, strategy: str, in_pipeline: bool
) -> None:
    f = data.draw(
        frames(
            numeric=(0, 2),
            categorical=(0, 2),
            fit_rows=(4, 30),
            fit_missing="none",
            fit_numbers=st.floats(-1e6, 1e6),
        )
    )
    n = len(f.fit)
    if classifier:
        labels = data.draw(st.sampled_from([[0, 1], ["no", "yes"]]))
        y = pd.Series(data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)), index=f.fit.index)
        assume(y.nunique() == 2)  # with one class, predict raises IndexError (refused at export)
        step: Any = TargetMeanClassifier(bins=bins, strategy=strategy)
    else:
        y = data.draw(targets(f.fit.index))
        step = TargetMeanRegressor(bins=bins, strategy=strategy)
    model = Pipeline([("model", step)]) if in_pipeline else step
    fit_or_reject(model, f.fit, y)
    _check_predictor(model, f.fit, f.transform)


def test_target_mean_classifier_with_one_class_is_refused() -> None:
    frame = FIT[["n0", "c0"]]
    model = quietly(lambda: TargetMeanClassifier(bins=2).fit(frame, pd.Series([1] * len(frame))))
    with pytest.raises(IndexError):
        model.predict(frame)
    assert "1 classes; the classifier is binary" in export_error(model, frame)


@pytest.mark.parametrize("inverse", [None, np.exp])
def test_transformed_target_regressor_around_a_frame_pipeline(inverse: Any) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0, 8.0, 3.0, 5.0], "b": [0.5, 0.1, 2.0, 3.0, 1.0, 0.2]})
    y = pd.Series([1.0, 2.0, 3.0, 4.0, 2.5, 3.5])
    regressor = Pipeline(
        [("math", MathFeatures(variables=["a", "b"], func=["mean", "max"])), ("model", LinearRegression())]
    )
    func = None if inverse is None else np.log
    model = TransformedTargetRegressor(regressor=regressor, func=func, inverse_func=inverse).fit(frame, y)
    rows = pd.DataFrame({"a": [1.5, 7.0, -2.0], "b": [2.0, -1.0, 0.0]})
    outputs = run_graph(export_pipeline(model, infer_columns(frame)), rows)
    np.testing.assert_allclose(outputs["prediction"][:, 0], model.predict(rows), rtol=1e-12)


def test_transformed_target_regressor_other_inverse_is_refused() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0, 8.0]})
    model = TransformedTargetRegressor(
        regressor=LinearRegression(), func=np.sqrt, inverse_func=np.square
    ).fit(frame, pd.Series([1.0, 2.0, 3.0, 4.0]))
    assert "inverse_func=" in export_error(model, frame)
