"""The harness itself: check_equivalent must fail on a graph that differs from the
original (wrong values, missing or extra refusals, columns out of order)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pandas as pd
import pytest
from converter_harness import converter_settings, frames
from feature_engine.encoding import RareLabelEncoder
from feature_engine.imputation import MeanMedianImputer
from feature_engine.transformation import LogTransformer
from hypothesis import given

import predictlib.build.converters.feature_engine.encoding
import predictlib.build.converters.feature_engine.imputation
from predictlib.build import MISSING, Exported, infer_columns, registered_frame_converters
from predictlib.build.core.frame import StepContext
from predictlib.build.testing import check_columns, check_equivalent, quietly, same_number

FIT = pd.DataFrame(
    {
        "n0": [1.0, 2.0, 4.0, math.nan],
        "c0": pd.Series(["a", "a", "a", "b"], dtype="str"),
    }
)
ROWS = pd.DataFrame(
    {
        "n0": [math.nan, 3.0, 0.0, -1.0],
        "c0": pd.Series(["a", "b", None, "zz"], dtype="str"),
    }
)


def test_the_unpatched_converters_pass() -> None:
    outcome = check_equivalent(MeanMedianImputer(), FIT, ROWS)
    assert outcome.rows == 4 and outcome.refused == 0
    outcome = check_equivalent(LogTransformer(variables=["n0"]), FIT.fillna(1.0), ROWS)
    assert outcome.refused == 3  # NaN, 0, -1


def test_a_wrong_value_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    convert = predictlib.build.converters.feature_engine.imputation._DictImputer.convert

    def off_by_one(self: Any, ctx: StepContext, model: Any) -> None:
        wrong = copy.copy(model)
        wrong.imputer_dict_ = {k: v + 1 for k, v in model.imputer_dict_.items()}
        convert(self, ctx, wrong)

    monkeypatch.setattr(
        predictlib.build.converters.feature_engine.imputation._DictImputer, "convert", off_by_one
    )
    with pytest.raises(AssertionError, match=r"row 0, 'n0': graph 3\.333.*, original 2\.333"):
        check_equivalent(MeanMedianImputer(imputation_method="mean"), FIT, ROWS)


def test_a_wrong_string_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    convert = predictlib.build.converters.feature_engine.encoding.RareLabelEncoderConverter.convert

    def other_label(self: Any, ctx: StepContext, model: Any) -> None:
        wrong = copy.copy(model)
        wrong.replace_with = "Other"
        convert(self, ctx, wrong)

    monkeypatch.setattr(
        predictlib.build.converters.feature_engine.encoding.RareLabelEncoderConverter, "convert", other_label
    )
    encoder = RareLabelEncoder(tol=0.5, n_categories=1, missing_values="ignore")
    with pytest.raises(AssertionError, match="graph 'Other', original 'Rare'"):
        check_equivalent(encoder, FIT, ROWS)


def test_a_missing_value_turned_into_a_label_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # the encoder keeps "q" as it is, and treats real missing values as rare labels
    monkeypatch.setattr(predictlib.build.converters.feature_engine.encoding, "MISSING", "q")
    encoder = RareLabelEncoder(tol=0.5, n_categories=1, missing_values="ignore")
    with pytest.raises(AssertionError, match="original missing"):
        check_equivalent(encoder, FIT, ROWS)


def test_a_missing_refusal_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StepContext, "refuse_if", lambda self, columns, condition, reason: None)
    with pytest.raises(AssertionError, match="the original raises"):
        check_equivalent(LogTransformer(variables=["n0"]), FIT.fillna(1.0), ROWS.iloc[1:])


def test_an_extra_refusal_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_if = StepContext.refuse_if

    def inverted(self: StepContext, columns: Any, condition: str, reason: str) -> None:
        refuse_if(self, columns, self.node("Not", [condition]), reason)

    monkeypatch.setattr(StepContext, "refuse_if", inverted)
    with pytest.raises(AssertionError, match=r"not declared by the converters' onnx_ops: \['Not'\]"):
        check_equivalent(LogTransformer(variables=["n0"]), FIT.fillna(1.0), ROWS)
    converter = registered_frame_converters()[LogTransformer]
    monkeypatch.setattr(type(converter), "onnx_ops", converter.onnx_ops | {"Not"})
    # row 1 (3.0) is valid: the batch is refused either way, row 1 must not be
    with pytest.raises(AssertionError, match="row 1: the graph refuses it"):
        check_equivalent(LogTransformer(variables=["n0"]), FIT.fillna(1.0), ROWS)


def test_columns_out_of_order_or_of_the_wrong_kind_are_caught() -> None:
    original = pd.DataFrame({"a": [1.0], "b": [2], "c": pd.Series(["x"], dtype="str"), "d": [math.nan]})

    def exported(num: list[str], cat: list[str]) -> Exported:
        return Exported(None, [], [], "transform", {"num_out": num, "cat_out": cat})  # type: ignore[arg-type]

    check_columns(original, exported(["a", "b", "d"], ["c"]))
    check_columns(original, exported(["a", "b"], ["c", "d"]))  # an all-missing column fits either
    for num, cat in [(["b", "a", "d"], ["c"]), (["a", "b", "c", "d"], []), (["a", "b"], ["c"])]:
        with pytest.raises(AssertionError, match="output columns differ"):
            check_columns(original, exported(num, cat))


def test_numbers_compare_within_the_tolerances() -> None:
    assert same_number(1.0, 1.0 + 1e-12)
    assert same_number(1e300, 1e300 * (1 + 1e-12))
    assert same_number(math.nan, math.nan) and same_number(math.inf, math.inf)
    assert not same_number(1.0, 1.0 + 1e-6)
    assert not same_number(math.inf, -math.inf) and not same_number(1e300, math.inf)
    assert not same_number(math.nan, 0.0) and not same_number(0.0, math.nan)


@converter_settings(max_examples=30)
@given(f=frames(fit_missing="some"))
def test_frames_are_what_the_converters_expect(f: Any) -> None:
    """Generated frames: same columns in fit and transform, one kind per column as
    feature-engine sees it, labels that stay categorical, missing values as NaN / None."""
    assert list(f.fit.columns) == list(f.transform.columns) and len(f.fit.columns) >= 1
    for name in f.fit.columns:
        if name.startswith("n"):
            assert f.fit[name].dtype.kind in "fi" and f.transform[name].dtype.kind in "fi"
            assert not f.fit[name].isna().all()
        else:
            assert str(f.fit[name].dtype) in ("str", "object")
            values = [v for v in f.transform[name].tolist() if isinstance(v, str)]
            assert MISSING not in values
    numeric = {c.name for c in infer_columns(f.fit) if c.kind == "num"}
    assert numeric == {c for c in f.fit.columns if c.startswith("n")}
    if f.categorical:
        from feature_engine.variable_handling import find_categorical_variables

        assert quietly(lambda: find_categorical_variables(f.fit)) == f.categorical
