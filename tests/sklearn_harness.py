"""Helpers of the scikit-learn converter property tests (tests/test_converters_sklearn_*.py).

Each test fits a scikit-learn transformer (or a composition) on a hypothesis-generated
frame, with pandas or numpy output (``set_output``), and checks the exported graph
against its ``transform`` with :func:`converter_harness.check_equivalent` (numpy outputs
are named by ``get_feature_names_out``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from converter_harness import (
    FINITE,
    check_equivalent,
    discrete_numbers,
    export_error,
    fit_or_reject,
    frames,
    quietly,
    run_graph,
)
from hypothesis import strategies as st
from sklearn.preprocessing import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from predictlib.build import export_pipeline, infer_columns
from predictlib.build.testing import Outcome, same_number

#: fit values of moderate magnitude (transformers whose fit is numerically fragile)
MODERATE = st.one_of(st.floats(-1e4, 1e4, allow_nan=False), st.integers(-20, 20).map(float))
#: ... with missing values
MODERATE_OR_NAN = st.one_of(MODERATE, st.just(math.nan))
#: fit values for KBinsDiscretizer: repeated values, wide floats and small integers
KBINS_FIT_NUMBERS = st.one_of(discrete_numbers(), st.floats(-1e6, 1e6), st.integers(-10, 10).map(float))

#: the four scalers with every parameter the converters take (bare and in SklearnTransformerWrapper)
SCALERS = st.one_of(
    st.builds(StandardScaler, with_mean=st.booleans(), with_std=st.booleans()),
    st.builds(
        RobustScaler,
        with_centering=st.booleans(),
        with_scaling=st.booleans(),
        quantile_range=st.sampled_from([(25.0, 75.0), (10.0, 90.0), (0.0, 100.0)]),
        unit_variance=st.booleans(),
    ),
    st.builds(MaxAbsScaler, clip=st.booleans()),
    st.builds(MinMaxScaler, feature_range=st.sampled_from([(0, 1), (-1, 1), (2.5, 3.0)]), clip=st.booleans()),
)
#: Binarizer (the threshold 1e300 among others) and Normalizer with each norm
BINARIZERS_NORMALIZERS = st.one_of(
    st.builds(Binarizer, threshold=st.sampled_from([0.0, 1.0, -2.5, 1e300])),
    st.builds(Normalizer, norm=st.sampled_from(["l1", "l2", "max"])),
)
#: PolynomialFeatures of every degree form (an int, a (min, max) pair, min 0 included)
POLYNOMIALS = st.builds(
    PolynomialFeatures,
    degree=st.sampled_from([1, 2, 3, (0, 2), (2, 3), (3, 3), (1, 3)]),
    interaction_only=st.booleans(),
    include_bias=st.booleans(),
)


def encoder_frames(
    data: st.DataObject, *, numeric: tuple[int, int] = (0, 2), categorical: tuple[int, int] = (0, 3)
) -> Any:
    """Text and numeric columns of few values for encoders; missing values as NaN (what
    predictlib's inputs hold: scikit-learn tells None from NaN, the graph cannot)."""
    return data.draw(
        frames(
            numeric=numeric,
            categorical=categorical,
            fit_numbers=st.one_of(discrete_numbers(), st.just(math.nan)),
            fit_integers=st.integers(-2, 2),
            missing_markers=(math.nan,),
        )
    )


def imputer_frames(data: st.DataObject, missing_values: float, *, categorical: tuple[int, int]) -> Any:
    """Numeric columns for a SimpleImputer: repeated values and the markers 0.0 and -1.0;
    missing values (NaN) at fit only when ``missing_values`` is NaN, since scikit-learn
    refuses NaN at fit with another marker."""
    nan = isinstance(missing_values, float) and math.isnan(missing_values)
    fit_numbers = st.one_of(discrete_numbers(), FINITE, st.sampled_from([0.0, -1.0]))
    return data.draw(
        frames(
            numeric=(1, 3),
            categorical=categorical,
            fit_missing="any" if nan else "none",
            fit_numbers=st.one_of(fit_numbers, st.just(math.nan)) if nan else fit_numbers,
        )
    )


def with_output(data: st.DataObject, model: Any) -> Any:
    """``model`` with pandas output or with scikit-learn's default (numpy) output."""
    if data.draw(st.booleans(), label="pandas output"):
        model.set_output(transform="pandas")
    return model


def check_fitted(data: st.DataObject, model: Any, fit: Any, transform: Any, y: Any = None) -> Outcome | None:
    """Fit ``model`` (the example is rejected when scikit-learn refuses the fit frame),
    with a drawn output container, and check its graph against ``transform``."""
    with_output(data, model)
    fit_or_reject(model, fit, y)
    names = getattr(model, "get_feature_names_out", None)
    if names is not None and len(names()) == 0:  # scikit-learn outputs an empty array
        assert "outputs no column" in export_error(model, fit)
        return None
    return check_equivalent(model, fit, transform, y)


def check_predictions(model: Any, fit: pd.DataFrame, transform: pd.DataFrame) -> int:
    """A fitted regressor pipeline: the graph's ``prediction`` against ``model.predict``,
    row by row (the original raises on a row <=> the graph refuses it) and as a batch;
    returns the number of refused rows."""
    exported = export_pipeline(model, infer_columns(fit))
    assert exported.task == "regression", exported.task  # (estimators declare no onnx_ops)
    outputs = run_graph(exported, transform)
    n = len(transform)
    refused = outputs["refusals"].any(axis=1) if "refusals" in outputs else np.zeros(n, dtype=bool)
    got = outputs["prediction"].reshape(-1)
    for i in range(n):
        row = transform.iloc[[i]]
        try:
            expected = float(np.asarray(quietly(lambda r=row: model.predict(r))).reshape(-1)[0])
        except (ValueError, TypeError) as exc:
            assert refused[i], (
                f"row {i}: the original raises ({exc!r}), the graph predicts {got[i]}:\n{row!r}"
            )
            continue
        if refused[i]:
            flags = outputs["refusals"][i]
            flagged = [f"{c.column}: {c.reason}" for c, f in zip(exported.checks, flags, strict=True) if f]
            raise AssertionError(
                f"row {i}: the graph refuses it ({flagged}), the original predicts {expected}:\n{row!r}"
            )
        assert same_number(float(got[i]), expected), (
            f"row {i}: graph {got[i]!r}, original {expected!r}:\n{row!r}"
        )
    return int(refused.sum())
