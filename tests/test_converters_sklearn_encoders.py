"""Property tests: scikit-learn's OneHotEncoder, OrdinalEncoder and TargetEncoder on text
and numeric columns against their ``transform`` (unseen categories, missing values,
infrequent categories, every ``handle_unknown``)."""

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
    export_error,
    fit_and_check,
    fit_or_reject,
    quietly,
    run_graph,
    targets,
)
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder
from sklearn_harness import encoder_frames, with_output

from predictlib.build import MISSING, export_pipeline, infer_columns


def _check(data: st.DataObject, encoder: Any, f: Any, y: Any = None) -> None:
    sparse = getattr(encoder, "sparse_output", False)
    if not sparse:
        with_output(data, encoder)
    fit_and_check(encoder, f.fit, f.transform, y)


@covers(OneHotEncoder)
@converter_settings(max_examples=80)
@given(
    data=st.data(),
    drop=st.sampled_from([None, "first", "if_binary"]),
    handle_unknown=st.sampled_from(["error", "ignore", "infrequent_if_exist", "warn"]),
    min_frequency=st.sampled_from([None, 2, 0.3]),
    max_categories=st.sampled_from([None, 2, 3]),
    sparse_output=st.booleans(),
)
def test_one_hot_encoder(
    data: st.DataObject,
    drop: str | None,
    handle_unknown: str,
    min_frequency: Any,
    max_categories: int | None,
    sparse_output: bool,
) -> None:
    f = encoder_frames(data)
    encoder = OneHotEncoder(
        drop=drop,
        handle_unknown=handle_unknown,
        min_frequency=min_frequency,
        max_categories=max_categories,
        sparse_output=sparse_output,
    )
    fit_or_reject(encoder, f.fit)
    if encoder.get_feature_names_out().size == 0:  # every category dropped
        assert "outputs no column" in export_error(Pipeline([("ohe", encoder)]), f.fit)
        return
    _check(data, encoder, f)


@covers(OneHotEncoder)
def test_one_hot_encoder_explicit_drop_and_categories() -> None:
    fit = pd.DataFrame({"c": pd.Series(["a", "b", "c", "a"], dtype="str"), "n": [1.0, 2.0, 3.0, 2.0]})
    transform = pd.DataFrame(
        {"c": pd.Series(["a", "b", "c", "zz", None], dtype="str"), "n": [1.0, 2.0, 4.0, 3.0, 2.0]}
    )
    encoder = OneHotEncoder(
        categories=[["c", "b", "a"], [1.0, 2.0, 3.0, 4.0]],
        drop=["b", 4.0],
        handle_unknown="ignore",
        sparse_output=False,
    ).fit(fit)
    check_equivalent(encoder.set_output(transform="pandas"), fit, transform.dropna())
    # NaN is no category of "c": ignored (all zeros), as an unseen category
    check_equivalent(encoder, fit, transform)


@covers(OrdinalEncoder)
@converter_settings(max_examples=80)
@given(
    data=st.data(),
    handle_unknown=st.sampled_from(["error", "use_encoded_value"]),
    unknown_value=st.sampled_from([-1, math.nan, 99]),
    encoded_missing_value=st.sampled_from([math.nan, -2]),
    min_frequency=st.sampled_from([None, 2]),
    max_categories=st.sampled_from([None, 2]),
)
def test_ordinal_encoder(
    data: st.DataObject,
    handle_unknown: str,
    unknown_value: float,
    encoded_missing_value: float,
    min_frequency: Any,
    max_categories: int | None,
) -> None:
    f = encoder_frames(data)
    encoder = OrdinalEncoder(
        handle_unknown=handle_unknown,
        unknown_value=unknown_value if handle_unknown == "use_encoded_value" else None,
        encoded_missing_value=encoded_missing_value,
        min_frequency=min_frequency,
        max_categories=max_categories,
    )
    _check(data, encoder, f)


@covers(TargetEncoder)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    target_type=st.sampled_from(["continuous", "binary", "multiclass"]),
    smooth=st.sampled_from(["auto", 0.0, 5.0]),
)
def test_target_encoder(data: st.DataObject, target_type: str, smooth: Any) -> None:
    """``transform``: the fitted encodings, the target mean for unseen values."""
    f = encoder_frames(data, numeric=(0, 1))
    n = len(f.fit)
    if target_type == "continuous":
        y = data.draw(targets(f.fit.index))
    else:
        labels = ["no", "yes"] if target_type == "binary" else ["x", "y", "z"]
        picked = data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
        if len(set(picked)) < 2:
            picked[: len(labels)] = labels[:n]
        y = pd.Series(picked, index=f.fit.index)
    encoder = TargetEncoder(target_type=target_type, smooth=smooth, random_state=0)
    _check(data, encoder, f, y)


def test_categorical_part_is_fused_into_lookups() -> None:
    """On text, the encoders' one-hot hits depend on one input column each: the export
    fuses them into table lookups; the unfused graph gives the same numbers."""
    fit = pd.DataFrame(
        {
            "c0": pd.Series(["a", "b", "a", "c", None], dtype="str"),
            "c1": pd.Series(["x", "y", "y", "x", "x"], dtype="str"),
            "n0": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    transform = pd.DataFrame(
        {
            "c0": pd.Series(["a", "zz", None, "c"], dtype="str"),
            "c1": pd.Series(["y", "x", "q", None], dtype="str"),
            "n0": [1.0, 2.0, 3.0, 9.0],
        }
    )
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(fit)
    fused = export_pipeline(encoder, infer_columns(fit))
    plain = export_pipeline(encoder, infer_columns(fit), fuse=False)
    assert fused.fusion is not None and plain.fusion is None
    got, expected = run_graph(fused, transform)["num_out"], run_graph(plain, transform)["num_out"]
    assert np.array_equal(got, expected)
    assert np.array_equal(expected, encoder.transform(transform))


# ---------------------------------------------------------------- refused at export


@pytest.mark.parametrize(
    ("fit", "reason"),
    [
        (pd.DataFrame({"c": pd.Series([1, 2, 3], dtype=object)}), "non-text categories"),
        (pd.DataFrame({"c": pd.Series(["a", MISSING, "b"], dtype="str")}), "reserved category"),
    ],
)
def test_categories_the_graph_cannot_tell_apart_are_refused(fit: pd.DataFrame, reason: str) -> None:
    pipe = Pipeline([("encode", OneHotEncoder(handle_unknown="ignore"))])
    quietly(lambda: pipe.fit(fit))
    message = export_error(pipe, fit)
    assert "step 'encode' (OneHotEncoder)" in message and reason in message


def test_output_columns_with_the_same_name_are_refused() -> None:
    """OneHotEncoder names column "a_b" category "c" and column "a" category "b_c" alike."""
    fit = pd.DataFrame({"a_b": pd.Series(["c", "d"], dtype="str"), "a": pd.Series(["b_c", "e"], dtype="str")})
    pipe = Pipeline([("encode", OneHotEncoder())])
    quietly(lambda: pipe.fit(fit))
    message = export_error(pipe, fit)
    assert "step 'encode' (OneHotEncoder)" in message and "duplicated names ['a_b_c']" in message
