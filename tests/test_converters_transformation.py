"""Property tests: the variable-transformer converters against feature-engine's."""

from __future__ import annotations

import pandas as pd
import pytest
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    export_error,
    fit_and_check,
    frames,
    positive_numbers,
    quietly,
    subsets,
)
from feature_engine.transformation import LogTransformer
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline


@covers(LogTransformer)
@converter_settings(max_examples=60)
@given(data=st.data(), base=st.sampled_from(["e", "10"]))
def test_log_transformer(data: st.DataObject, base: str) -> None:
    # fit needs numbers > 0 (and no NaN / inf); transform gets any number
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(0, 2),
            fit_numbers=positive_numbers(),
            fit_integers=st.integers(1, 10**6),
            fit_missing="none",
        )
    )
    variables = data.draw(st.none() | subsets(f.numeric))
    fit_and_check(LogTransformer(base=base, variables=variables), f.fit, f.transform)


@pytest.mark.parametrize("base", ["e", "10"])
def test_log_transformer_refuses_what_the_original_refuses(base: str) -> None:
    fit = pd.DataFrame(
        {"n0": [1.0, 2.0, 3.0], "n1": [5, 6, 7], "c0": pd.Series(["a", "b", "c"], dtype="str")}
    )
    transform = pd.DataFrame(
        {
            "n0": [1e-300, 0.0, -0.0, -1.0, float("nan"), float("inf"), float("-inf"), 5e-324, 1e308],
            "n1": [1, 2, 3, 4, 5, 6, 7, 8, 9],
            "c0": pd.Series(["a"] * 9, dtype="str"),
        }
    )
    transformer = quietly(lambda: LogTransformer(base=base).fit(fit))
    outcome = check_equivalent(transformer, fit, transform)
    assert outcome.refused == 6  # 0, -0, -1, NaN, inf, -inf
    reasons = {c.reason for c in outcome.exported.checks}
    assert any("missing" in r for r in reasons) and any("infinite" in r for r in reasons)
    assert any("> 0" in r for r in reasons)


def test_log_transformer_base_set_after_fit_is_refused() -> None:
    """feature-engine checks ``base`` in __init__ only: set_params(base="2") after fit makes
    transform return the values unchanged; the export refuses such a step."""
    fit = pd.DataFrame({"n0": [1.0, 2.0, 3.0]})
    pipe = Pipeline([("log_step", LogTransformer())])
    pipe.fit(fit)
    pipe.set_params(log_step__base="2")
    message = export_error(pipe, fit)
    assert "step 'log_step' (LogTransformer)" in message and "base='2'" in message
