"""Property tests: scikit-learn's compositions (ColumnTransformer, make_column_transformer,
FeatureUnion) with every way of selecting columns, remainders, weights, names, nested
pipelines, pandas and numpy outputs, and pipelines ending in an estimator."""

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
    fit_and_check,
    fit_or_reject,
    frames,
    quietly,
)
from hypothesis import given
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer, make_column_selector, make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline, make_union
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn_harness import check_predictions, with_output

from predictlib.build import export_pipeline, infer_columns


def _numeric_step(data: st.DataObject) -> Any:
    return data.draw(
        st.sampled_from(
            [
                "passthrough",
                "drop",
                StandardScaler(),
                make_pipeline(SimpleImputer(), MinMaxScaler()),
                SimpleImputer(strategy="median", add_indicator=True),
            ]
        ),
        label="numeric step",
    )


def _text_step(data: st.DataObject) -> Any:
    return data.draw(
        st.sampled_from(
            [
                "passthrough",
                "drop",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="none"),
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                ),
            ]
        ),
        label="text step",
    )


def _selection(data: st.DataObject, frame: pd.DataFrame, kind: str) -> Any:
    """The columns of ``kind`` ("num" / "str"), specified in one of scikit-learn's ways."""
    names = list(frame.columns)
    numeric = [c for c in names if pd.api.types.is_numeric_dtype(frame[c])]
    chosen = numeric if kind == "num" else [c for c in names if c not in numeric]
    how = data.draw(
        st.sampled_from(["names", "mask", "indices", "selector", "pattern", "callable"]), label="by"
    )
    if how == "names":
        return list(chosen)
    if how == "mask":
        return [c in chosen for c in names]
    if how == "indices":
        return [names.index(c) for c in chosen]
    if how == "pattern":
        return make_column_selector(pattern="^n" if kind == "num" else "^c")
    if how == "callable":
        return lambda X: [c for c in X.columns if c in set(chosen)]
    if kind == "num":
        return make_column_selector(dtype_include="number")
    return make_column_selector(dtype_exclude="number")


COMPOSE_FRAMES = {
    "numeric": (1, 3),
    "categorical": (1, 2),
    "fit_numbers": st.one_of(discrete_numbers(), st.floats(-1e3, 1e3), st.just(math.nan)),
    "fit_missing": "some",
    "missing_markers": (math.nan,),
}


@covers(ColumnTransformer, StandardScaler, OneHotEncoder, OrdinalEncoder, SimpleImputer, FunctionTransformer)
@converter_settings(max_examples=60)
@given(data=st.data(), verbose=st.sampled_from([True, False, "{feature_name}@{transformer_name}"]))
def test_column_transformer(data: st.DataObject, verbose: Any) -> None:
    f = data.draw(frames(**COMPOSE_FRAMES))
    remainder = data.draw(st.sampled_from(["drop", "passthrough", StandardScaler()]), label="remainder")
    transformers = [("num", _numeric_step(data), _selection(data, f.fit, "num"))]
    if data.draw(st.booleans(), label="text transformer"):
        transformers.append(("txt", _text_step(data), _selection(data, f.fit, "str")))
    elif remainder is not None and not isinstance(remainder, str):
        remainder = "drop"  # a scaler on text columns does not fit
    weights = data.draw(st.none() | st.just({"num": 2.5}), label="weights")
    ct = ColumnTransformer(
        transformers, remainder=remainder, verbose_feature_names_out=verbose, transformer_weights=weights
    )
    with_output(data, ct)
    fit_or_reject(ct, f.fit)
    try:
        ct.get_feature_names_out()
    except ValueError:  # names not unique without prefixes: scikit-learn cannot name the output
        return
    if not len(ct.get_feature_names_out()):
        assert "outputs no column" in export_error(ct, f.fit)
        return
    check_equivalent(ct, f.fit, f.transform)


@covers(FeatureUnion, StandardScaler, PolynomialFeatures)
@converter_settings(max_examples=30)
@given(data=st.data())
def test_feature_union(data: st.DataObject) -> None:
    f = data.draw(
        frames(numeric=(1, 3), categorical=(0, 0), fit_missing="none", fit_numbers=st.floats(-1e3, 1e3))
    )
    parts = [("scale", StandardScaler()), ("poly", PolynomialFeatures(2, include_bias=False))]
    if data.draw(st.booleans(), label="passthrough"):
        parts.append(("raw", "passthrough"))
    if data.draw(st.booleans(), label="drop"):
        parts.append(("gone", "drop"))
    weights = data.draw(st.none() | st.just({"poly": 0.5}), label="weights")
    union = FeatureUnion(
        parts, transformer_weights=weights, verbose_feature_names_out=data.draw(st.booleans())
    )
    with_output(data, union)
    fit_or_reject(union, f.fit)
    try:
        union.get_feature_names_out()
    except ValueError:
        return
    check_equivalent(union, f.fit, f.transform)


@covers(ColumnTransformer, StandardScaler, OneHotEncoder, SimpleImputer)
@converter_settings(max_examples=40)
@given(data=st.data())
def test_numpy_pipeline_selects_by_position(data: st.DataObject) -> None:
    """Steps after a numpy-output ColumnTransformer were fitted on arrays: their columns
    are positions (a second ColumnTransformer selects by index), names are only labels."""
    f = data.draw(frames(**COMPOSE_FRAMES))
    first = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
        (
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
            ),
            make_column_selector(dtype_exclude="number"),
        ),
    )
    second = ColumnTransformer([("head", MinMaxScaler(), [0]), ("rest", "passthrough", slice(1, None))])
    pipe = Pipeline([("first", first), ("second", second)])
    fit_and_check(pipe, f.fit, f.transform)


@covers(ColumnTransformer, StandardScaler, OneHotEncoder, SimpleImputer)
@converter_settings(max_examples=40)
@given(data=st.data(), pandas=st.booleans())
def test_column_transformer_before_an_estimator(data: st.DataObject, pandas: bool) -> None:
    """The issue's pipeline: numbers imputed and scaled, text imputed and one-hot encoded,
    then Ridge; predictions row by row, refusals where scikit-learn raises."""
    fit_numbers = st.one_of(st.sampled_from([0.0, 1.0, -2.5]), st.floats(-1e3, 1e3), st.just(math.nan))
    f = data.draw(frames(**{**COMPOSE_FRAMES, "fit_numbers": fit_numbers}))
    ct = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(), StandardScaler()),
                make_column_selector(dtype_include="number"),
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                make_column_selector(dtype_exclude="number"),
            ),
        ]
    )
    model = Pipeline([("ct", ct), ("ridge", Ridge())])
    if pandas:
        ct.set_params(cat__onehotencoder__sparse_output=False)
        model.set_output(transform="pandas")
    y = pd.Series(np.arange(len(f.fit), dtype=float), index=f.fit.index)
    fit_or_reject(model, f.fit, y)
    check_predictions(model, f.fit, f.transform)


# ---------------------------------------------------------------- chosen cases


def test_remainder_transformer_and_weights_by_name() -> None:
    fit = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0], "b": [4.0, np.nan, 6.0], "c": pd.Series(["x", "y", "x"], dtype="str")}
    )
    ct = ColumnTransformer(
        [("scaled", StandardScaler(), ["a"]), ("text", OneHotEncoder(sparse_output=False), ["c"])],
        remainder=SimpleImputer(strategy="median"),
        transformer_weights={"scaled": 3.0, "remainder": 0.5},
    ).set_output(transform="pandas")
    ct.fit(fit)
    outcome = check_equivalent(ct, fit, fit)
    assert outcome.exported.output_columns["num_out"] == list(ct.get_feature_names_out())


def test_text_passes_through_a_column_transformer() -> None:
    """Text columns flow into and out of scikit-learn steps that accept them."""
    fit = pd.DataFrame({"a": [1.0, 2.0], "c": pd.Series(["x", None], dtype="str")})
    ct = ColumnTransformer(
        [("fill", SimpleImputer(strategy="constant", fill_value="?"), ["c"])], remainder="passthrough"
    ).set_output(transform="pandas")
    ct.fit(fit)
    outcome = check_equivalent(ct, fit, fit)
    assert outcome.exported.output_columns == {"num_out": ["remainder__a"], "cat_out": ["fill__c"]}


def test_extra_columns_of_a_dataframe_are_ignored() -> None:
    """A ColumnTransformer fitted on a DataFrame selects by name: columns it does not
    use (dropped or never seen) do not reach it."""
    fit = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0], "b": [1.0, 5.0, 2.0], "c": pd.Series(["x", "y", "x"], dtype="str")}
    )
    ct = ColumnTransformer([("scaled", StandardScaler(), ["b"])]).fit(fit)
    outcome = check_equivalent(ct, fit, fit)
    assert outcome.exported.output_columns == {"num_out": ["scaled__b"]}


def test_union_inside_a_column_transformer_inside_a_pipeline() -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0, 4.0, 3.0], "b": [0.5, 1.5, 1.0, 2.0]})
    inner = make_union(StandardScaler(), PolynomialFeatures(2, include_bias=False))
    pipe = Pipeline(
        [("ct", make_column_transformer((inner, ["a", "b"]))), ("scale", MinMaxScaler())]
    ).set_output(transform="pandas")
    pipe.fit(fit)
    check_equivalent(pipe, fit, pd.DataFrame({"a": [0.0, 10.0, -1.0], "b": [1.0, 2.0, 1e6]}))


def test_a_transformer_on_text_it_cannot_take_is_refused() -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0], "c": pd.Series(["1.5", "2.5"], dtype="str")})
    ct = ColumnTransformer([("scale", StandardScaler(), ["a", "c"])])
    quietly(lambda: ct.fit(fit))
    message = export_error(ct, fit)
    assert "step 'scale' (StandardScaler)" in message and "text columns ['c']" in message


@pytest.mark.parametrize("sparse_threshold", [0.0, 1.0])
def test_sparse_and_dense_outputs_give_the_same_graph(sparse_threshold: float) -> None:
    fit = pd.DataFrame({"c": pd.Series(["a", "b", "a", "c"], dtype="str"), "n": [1.0, 2.0, 3.0, 4.0]})
    ct = ColumnTransformer(
        [("ohe", OneHotEncoder(), ["c"]), ("scale", StandardScaler(), ["n"])],
        sparse_threshold=sparse_threshold,
    ).fit(fit)
    check_equivalent(ct, fit, fit)
    dense = export_pipeline(ct.set_params(sparse_threshold=0.0), infer_columns(fit))
    assert dense.output_columns == {"num_out": list(ct.get_feature_names_out())}
