"""Property tests: the other encoder converters (one-hot, count / frequency, mean, WoE,
decision tree, string similarity) and the encoders on numeric variables
(``ignore_format=True``) against feature-engine's encoders."""

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
    run_graph,
    subsets,
    targets,
    tree_targets,
)
from feature_engine.encoding import (
    CountFrequencyEncoder,
    DecisionTreeEncoder,
    MeanEncoder,
    OneHotEncoder,
    OrdinalEncoder,
    RareLabelEncoder,
    StringSimilarityEncoder,
    WoEEncoder,
)
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from predictlib.build import export_pipeline, infer_columns

UNSEEN = st.sampled_from(["ignore", "raise", "encode"])
MISSING_VALUES = st.sampled_from(["raise", "ignore"])


def encoder_frames(data: st.DataObject, ignore_format: bool, fit_missing: str = "any") -> Any:
    """Frames for an encoder: categorical columns, and with ``ignore_format`` numeric
    columns whose values repeat (so that they have frequent and rare categories)."""
    numbers = data.draw(st.sampled_from([None, discrete_numbers()])) if ignore_format else None
    return data.draw(
        frames(
            numeric=(0, 2),
            categorical=(0 if ignore_format else 1, 3),
            fit_numbers=numbers,
            fit_integers=st.integers(-3, 3),
            fit_missing=fit_missing,
        )
    )


def chosen_variables(data: st.DataObject, f: Any, ignore_format: bool) -> list[str] | None:
    """``variables``: None (every categorical column, or every column with
    ``ignore_format``) or a subset of the columns the encoder accepts."""
    pool = f.categorical + f.numeric if ignore_format else f.categorical
    if ignore_format and not f.numeric:
        return None
    return data.draw(st.none() | subsets(pool)) if pool else None


def encoder_case(
    data: st.DataObject, ignore_format: bool, missing_values: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """Frames for an encoder and the parameters every encoder here takes: ``variables``,
    ``ignore_format`` and, when given, ``missing_values`` (the frames have missing values
    only when the encoder is told to handle them, not with "raise" nor without the parameter)."""
    f = encoder_frames(data, ignore_format, "none" if missing_values in (None, "raise") else "any")
    common: dict[str, Any] = {
        "variables": chosen_variables(data, f, ignore_format),
        "ignore_format": ignore_format,
    }
    if missing_values is not None:
        common["missing_values"] = missing_values
    return f, common


def binary_targets(index: pd.Index) -> st.SearchStrategy[pd.Series]:
    """A binary target for ``index``: 0 / 1, or two other numbers (feature-engine remaps them)."""
    n = len(index)
    pair = st.sampled_from([(0, 1), (1, 0), (-1, 3), (2.5, 7.0)])
    return st.tuples(pair, st.lists(st.booleans(), min_size=n, max_size=n)).map(
        lambda p: pd.Series([p[0][1] if b else p[0][0] for b in p[1]], index=index, name="y")
    )


# ------------------------------------------------------------------------------- one-hot


@covers(OneHotEncoder)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    top_categories=st.sampled_from([None, None, 1, 2, 3]),
    drop_last=st.booleans(),
    drop_last_binary=st.booleans(),
    ignore_format=st.booleans(),
)
def test_one_hot_encoder(
    data: st.DataObject,
    top_categories: int | None,
    drop_last: bool,
    drop_last_binary: bool,
    ignore_format: bool,
) -> None:
    f, common = encoder_case(data, ignore_format)
    encoder = OneHotEncoder(
        top_categories=top_categories, drop_last=drop_last, drop_last_binary=drop_last_binary, **common
    )
    fit_or_reject(encoder, f.fit)
    assume(len(encoder.get_feature_names_out()) > 0)  # a graph needs an output column
    check_equivalent(encoder, f.fit, f.transform)


# --------------------------------------------------------------------- count / frequency


@covers(CountFrequencyEncoder)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    method=st.sampled_from(["count", "frequency"]),
    unseen=UNSEEN,
    missing_values=MISSING_VALUES,
    ignore_format=st.booleans(),
)
def test_count_frequency_encoder(
    data: st.DataObject, method: str, unseen: str, missing_values: str, ignore_format: bool
) -> None:
    f, common = encoder_case(data, ignore_format, missing_values)
    fit_and_check(CountFrequencyEncoder(encoding_method=method, unseen=unseen, **common), f.fit, f.transform)


# ---------------------------------------------------------------------------------- mean


@covers(MeanEncoder)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    smoothing=st.sampled_from([0.0, 0, 0.5, 1, 10.0, 1e6, "auto"]),
    unseen=UNSEEN,
    missing_values=MISSING_VALUES,
    ignore_format=st.booleans(),
    constant_target=st.booleans(),
)
def test_mean_encoder(
    data: st.DataObject,
    smoothing: float | str,
    unseen: str,
    missing_values: str,
    ignore_format: bool,
    constant_target: bool,
) -> None:
    f, common = encoder_case(data, ignore_format, missing_values)
    # a constant target: smoothing="auto" divides by the variance of y, 0 gives NaN
    # encodings, which unseen="encode" fills and unseen="raise" refuses
    y = pd.Series(3.0, index=f.fit.index, name="y") if constant_target else data.draw(targets(f.fit.index))
    fit_and_check(MeanEncoder(unseen=unseen, smoothing=smoothing, **common), f.fit, f.transform, y)


# ----------------------------------------------------------------------------------- WoE


@covers(WoEEncoder)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    unseen=st.sampled_from(["ignore", "raise"]),
    fill_value=st.sampled_from([None, 0.5, 1e-3, 0, 1, -1, 2.0]),
    ignore_format=st.booleans(),
)
def test_woe_encoder(data: st.DataObject, unseen: str, fill_value: float | None, ignore_format: bool) -> None:
    f, common = encoder_case(data, ignore_format)
    y = data.draw(binary_targets(f.fit.index))
    fit_and_check(WoEEncoder(unseen=unseen, fill_value=fill_value, **common), f.fit, f.transform, y)


# ------------------------------------------------------------------------- decision tree


@covers(DecisionTreeEncoder)
@converter_settings(max_examples=30)
@given(
    data=st.data(),
    regression=st.booleans(),
    method=st.sampled_from(["arbitrary", "ordered"]),
    precision=st.sampled_from([None, 0, 1, 3]),
    unseen=UNSEEN,
    fill_value=st.sampled_from([0, -1.5, 1e300]),
    ignore_format=st.booleans(),
)
def test_decision_tree_encoder(
    data: st.DataObject,
    regression: bool,
    method: str,
    precision: int | None,
    unseen: str,
    fill_value: float,
    ignore_format: bool,
) -> None:
    f, common = encoder_case(data, ignore_format)
    y = data.draw(tree_targets(f.fit.index, regression))
    encoder = DecisionTreeEncoder(
        encoding_method=method,
        cv=2,
        scoring="neg_mean_squared_error" if regression else "accuracy",
        param_grid={"max_depth": [1, 2, 3]},
        regression=regression,
        random_state=0,
        precision=precision,
        unseen=unseen,
        fill_value=fill_value if unseen == "encode" else None,
        **common,
    )
    fit_and_check(encoder, f.fit, f.transform, y)


# ------------------------------------------------------------- numeric variables (ignore_format)


@covers(OrdinalEncoder)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    method=st.sampled_from(["ordered", "arbitrary"]),
    unseen=UNSEEN,
    missing_values=MISSING_VALUES,
)
def test_ordinal_encoder_on_numeric_variables(
    data: st.DataObject, method: str, unseen: str, missing_values: str
) -> None:
    f, common = encoder_case(data, True, missing_values)
    y = data.draw(targets(f.fit.index)) if method == "ordered" else None
    fit_and_check(OrdinalEncoder(encoding_method=method, unseen=unseen, **common), f.fit, f.transform, y)


@covers(RareLabelEncoder)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    tol=st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]),
    n_categories=st.sampled_from([0, 1, 2, 4, 10]),
    max_n_categories=st.sampled_from([None, 1, 2]),
    replace_with=st.sampled_from([-1, 0, 999, -1.0, 0.5, -1e300, math.inf]),
    missing_values=MISSING_VALUES,
)
def test_rare_label_encoder_on_numeric_variables(
    data: st.DataObject,
    tol: float,
    n_categories: int,
    max_n_categories: int | None,
    replace_with: float,
    missing_values: str,
) -> None:
    integral = float(replace_with).is_integer()
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 1),
            fit_numbers=data.draw(st.sampled_from([None, discrete_numbers()])),
            # pandas refuses a non-integral replace_with in an int64 column (even for no
            # row: the runtime's reference frames are float64, see the module's README)
            fit_integers=st.integers(-3, 3) if integral else None,
            fit_missing="none" if missing_values == "raise" else "any",
        )
    )
    encoder = RareLabelEncoder(
        tol=tol,
        n_categories=n_categories,
        max_n_categories=max_n_categories,
        replace_with=replace_with,
        variables=data.draw(subsets(f.numeric)),
        missing_values=missing_values,
        ignore_format=True,
    )
    fit_and_check(encoder, f.fit, f.transform)


# ------------------------------------------------------------------------ string similarity


@covers(StringSimilarityEncoder)
@converter_settings(max_examples=15)
@given(
    data=st.data(),
    top_categories=st.sampled_from([None, 1, 3]),
    missing_values=st.sampled_from(["raise", "impute", "ignore"]),
    ignore_format=st.booleans(),
)
def test_string_similarity_encoder_is_refused_at_export(
    data: st.DataObject, top_categories: int | None, missing_values: str, ignore_format: bool
) -> None:
    """Not convertible exactly (see predictlib.build.converters.feature_engine.refused):
    every fitted encoder is refused at export, naming the step, the class and the reason."""
    f, common = encoder_case(data, ignore_format, missing_values)
    pipe = Pipeline([("similar", StringSimilarityEncoder(top_categories=top_categories, **common))])
    fit_or_reject(pipe, f.fit)
    message = export_error(pipe, f.fit)
    assert "step 'similar' (StringSimilarityEncoder)" in message
    assert "similarity" in message and "cannot be exported" in message


# ------------------------------------------------------------------------- targeted cases


def test_numeric_keys_are_compared_in_float64() -> None:
    """Keys a float32 table would merge (1 and 1 + 2**-30, 2**53 and 2**53 - 1) stay apart,
    -0.0 equals 0.0, and an int64 key matches the same float at transform."""
    keys = [1.0, 1.0 + 2**-30, 2.0**53, 2.0**53 - 1, 0.0, 16777217.0]
    fit = pd.DataFrame({"n0": keys * 2, "c0": pd.Series(["a"] * 12, dtype="str")})
    encoder = quietly(
        lambda: OrdinalEncoder(encoding_method="arbitrary", ignore_format=True, variables=["n0"])
    )
    quietly(lambda: encoder.fit(fit))
    rows = pd.DataFrame(
        {"n0": [1.0, 1.0 + 2**-30, 2.0**53, 2.0**53 - 1, -0.0, 16777216.0, 16777217.0], "c0": ["a"] * 7}
    )
    outcome = check_equivalent(encoder, fit, rows.iloc[[0, 1, 2, 3, 4, 6]])
    assert outcome.refused == 0
    with pytest.warns(UserWarning):
        assert math.isnan(encoder.transform(rows.iloc[[5]])["n0"].iloc[0])
    outputs = run_graph(export_pipeline(encoder, infer_columns(fit)), rows)
    assert outputs["num_out"][:, 0].tolist()[:5] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert math.isnan(outputs["num_out"][5, 0]) and outputs["num_out"][6, 0] == 5.0


def test_one_hot_encoder_output_columns_and_names() -> None:
    """Dummies replace the variables at the end of the frame, in feature-engine's order and
    names (numeric categories named as pandas prints them: 1 for int64, 1.0 for float64)."""
    fit = pd.DataFrame(
        {
            "c0": pd.Series(["b", "a", "b", "c"], dtype="str"),
            "n0": pd.Series([1, 2, 1, 1], dtype="int64"),
            "n1": [0.5, -0.0, 1.0, 0.5],
        }
    )
    encoder = quietly(lambda: OneHotEncoder(ignore_format=True, drop_last_binary=True).fit(fit))
    rows = pd.DataFrame({"c0": ["a", "zz"], "n0": [2, 3], "n1": [0.0, 0.5]})
    outcome = check_equivalent(encoder, fit, rows)
    assert outcome.exported.output_columns["num_out"] == [
        "c0_b",
        "c0_a",
        "c0_c",
        "n0_1",
        "n1_0.5",
        "n1_-0.0",
        "n1_1.0",
    ]


def test_woe_infinite_and_nan_encodings() -> None:
    """fill_value=0 gives -inf / inf WoE values, a negative fill_value NaN ones: unseen='raise'
    refuses the rows encoded as NaN, as feature-engine raises on them."""
    fit = pd.DataFrame({"c0": pd.Series(["a", "a", "b", "b", "c", "c"], dtype="str")})
    y = pd.Series([0, 1, 1, 1, 0, 0])
    for fill_value, expected in ((0, {"b": math.inf, "c": -math.inf}), (-1, {"b": math.nan, "c": math.nan})):
        for unseen in ("ignore", "raise"):
            encoder = WoEEncoder(fill_value=fill_value, unseen=unseen)
            quietly(lambda encoder=encoder: encoder.fit(fit, y))
            for label, value in expected.items():
                got = encoder.encoder_dict_["c0"][label]
                assert got == value or (math.isnan(got) and math.isnan(value))
            outcome = check_equivalent(encoder, fit, pd.DataFrame({"c0": ["a", "b", "c", "zz"]}))
            assert outcome.refused == (0 if unseen == "ignore" else 1 + 2 * (fill_value == -1))


@pytest.mark.parametrize("dtype", ["str", "object"])
def test_encoders_refuse_missing_values(dtype: str) -> None:
    """OneHot, WoE and DecisionTree encoders raise on missing values whatever the column."""
    fit = pd.DataFrame({"c0": pd.Series(["a", "b", "a", "b", "a", "b"], dtype=dtype)})
    y = pd.Series([0, 1, 1, 0, 0, 1])
    rows = pd.DataFrame({"c0": pd.Series(["a", None, "b"], dtype=dtype)})
    for encoder in (
        OneHotEncoder(),
        WoEEncoder(),
        DecisionTreeEncoder(regression=False, cv=2, random_state=0, scoring="accuracy"),
    ):
        quietly(lambda encoder=encoder: encoder.fit(fit, y))
        assert check_equivalent(encoder, fit, rows, y).refused == 1


# ----------------------------------------------------------- refused at export time

FIT = pd.DataFrame(
    {
        "n0": [1.0, 2.0, 2.0, 3.0, 1.0, 2.0],
        "c0": pd.Series(["a", "a", "b", "a", "c", "b"], dtype="str"),
        "c0_a": pd.Series(["x", "y", "x", "y", "x", "y"], dtype="str"),
    }
)
Y = pd.Series([0, 1, 1, 1, 0, 0])


def _message(step: object, frame: pd.DataFrame = FIT) -> str:
    pipe = Pipeline([("encode_step", step)])
    quietly(lambda: pipe.fit(frame, Y))
    return export_error(pipe, frame)


def test_one_hot_dummy_name_clash_is_refused() -> None:
    message = _message(OneHotEncoder(variables=["c0"]))
    assert "step 'encode_step' (OneHotEncoder)" in message and "['c0_a']" in message and "collide" in message


def test_rare_label_encoder_numeric_column_with_a_string_replace_with_is_refused() -> None:
    message = _message(RareLabelEncoder(tol=0.2, n_categories=1, variables=["n0"], ignore_format=True))
    assert "step 'encode_step' (RareLabelEncoder)" in message
    assert "column 'n0' is numeric and replace_with='Rare' is not a number" in message


def test_rare_label_encoder_string_column_with_a_numeric_replace_with_is_refused() -> None:
    encoder = RareLabelEncoder(
        tol=0.2, n_categories=1, replace_with=0, variables=["c0", "n0"], ignore_format=True
    )
    message = _message(encoder)
    assert "step 'encode_step' (RareLabelEncoder)" in message
    assert "replace_with=0 is not a string" in message and "'c0'" in message


def test_numeric_category_beyond_float64_integers_is_refused() -> None:
    frame = pd.DataFrame({"n0": pd.Series([2**60, 2**60, 1, 1], dtype="int64")})
    message = _message(CountFrequencyEncoder(ignore_format=True), frame)
    assert "step 'encode_step' (CountFrequencyEncoder)" in message
    assert "float64 does not hold exactly" in message


@pytest.mark.parametrize(
    "encoder",
    [
        CountFrequencyEncoder(),
        MeanEncoder(),
        WoEEncoder(),
        OneHotEncoder(),
        DecisionTreeEncoder(regression=False, cv=2, scoring="accuracy", random_state=0),
    ],
)
def test_non_string_category_is_refused(encoder: object) -> None:
    frame = pd.DataFrame({"c0": pd.Series(["a", 1, "b", "a", 1, "b"], dtype=object)})
    message = _message(encoder, frame)
    assert f"step 'encode_step' ({type(encoder).__name__})" in message
    assert "column 'c0' has non-string categories" in message


def test_fitted_ordinal_encoder_with_numbers_in_a_pipeline() -> None:
    """A numeric column encoded with ignore_format, then a numeric step's input: numbers flow."""
    fit = pd.DataFrame({"n0": [1.0, 2.0, 2.0, 5.0], "n1": [0.5, 0.5, 1.5, 1.5]})
    pipe = Pipeline(
        [
            ("count", CountFrequencyEncoder(ignore_format=True, variables=["n0"], unseen="encode")),
            ("mean", MeanEncoder(ignore_format=True, variables=["n1"], unseen="raise")),
        ]
    )
    y = pd.Series([1.0, 2.0, 3.0, 4.0])
    quietly(lambda: pipe.fit(fit, y))
    rows = pd.DataFrame({"n0": [1.0, 7.0, np.nan, 5.0], "n1": [0.5, 1.5, 1.5, 2.5]})
    with pytest.raises(ValueError):
        quietly(lambda: pipe.transform(rows))
    outcome = check_equivalent(pipe, fit, rows, y)
    assert outcome.refused == 2  # n0 missing (missing_values="raise"), n1 unseen


@pytest.mark.parametrize(
    "encoder", [OneHotEncoder(ignore_format=True), CountFrequencyEncoder(ignore_format=True)]
)
def test_datetime_column_is_refused(encoder: object) -> None:
    frame = pd.DataFrame(
        {"d0": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-01"]), "c0": ["a", "b", "a"]}
    )
    message = _message(encoder, frame)
    assert f"step 'encode_step' ({type(encoder).__name__})" in message
    assert "column 'd0' is a dt column" in message
