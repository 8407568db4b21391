"""What the boosting-library tests share (test_converters_lightgbm / _xgboost / _catboost).

* :func:`check_model`: export a fitted model (or pipeline) with ``export_pipeline``, run
  the graph in a real onnxruntime session on one intra-op thread (predictlib's runtime
  default) and compare it with the library's ``predict`` / ``predict_proba``: labels
  identical, numbers within :mod:`predictlib.build.tolerances` (or bit for bit when
  ``exact``); returns the measured errors;
* :func:`verify_packaged`: :func:`predictlib.build.package` the model as the build does
  -- held-out rows and 10,000 generated records through the runtime against the original,
  refusals confirmed -- and return its equivalence report;
* :func:`check_booster_wrapper`: the estimator ``booster()`` makes of a raw booster
  against the booster's own predictions;
* data: :func:`quantile_classes` (a target cut into k classes), :func:`as_categories`
  (text cast to fitted pandas category dtypes), :func:`early_stopping_data`;
* hypothesis strategies for the numbers boosting models see: NaN, +-inf, signed zeros,
  tiny values (around LightGBM's 1e-35 zero threshold), huge values, values next to the
  splits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from converter_harness import graph_inputs, quietly
from hypothesis import strategies as st
from sklearn.base import is_classifier

from predictlib.build import Exported, export_pipeline, infer_columns, package, tolerances

#: numbers that probe the split rules: missing, infinities, signed zeros, tiny values
#: on both sides of 1e-35, float32 overflow, large integers
SPECIAL = (
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    1e-36,
    -1e-36,
    1e-35,
    1.0000000180025095e-35,
    -1e-34,
    5e-324,
    1e300,
    -1e300,
    3.5e38,
    -3.5e38,
    2.0**31,
    1e15,
)


def values(low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(SPECIAL),
        st.floats(low, high, allow_nan=False),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def session(exported: Exported, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        exported.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run(exported: Exported, frame: pd.DataFrame, threads: int = 1) -> dict[str, np.ndarray]:
    sess = session(exported, threads)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, graph_inputs(exported, frame)), strict=True))


def errors(got: np.ndarray, expected: np.ndarray, exact: bool = False) -> tuple[float, float]:
    """Max absolute and relative error; fails on any value out of tolerance (or not
    bit-equal when ``exact``)."""
    got = np.asarray(got, np.float64)
    expected = np.asarray(expected, np.float64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(got - expected))
        bad = ~same if exact else ~same & ~(diff <= tolerances.ATOL + tolerances.RTOL * np.abs(expected))
        rel = np.where(same | (expected == 0), 0.0, diff / np.abs(expected))
    assert not bad.any(), (
        f"{bad.sum()} values differ, e.g. rows {np.argwhere(bad)[:5].tolist()}: graph {got[bad][:5]}, "
        f"library {expected[bad][:5]}"
    )
    return float(diff.max(initial=0.0)), float(rel.max(initial=0.0))


def check_model(
    model: Any,
    fit_frame: pd.DataFrame,
    test_frame: pd.DataFrame,
    *,
    original_frame: pd.DataFrame | None = None,
    exact: bool = False,
    exported: Exported | None = None,
) -> tuple[float, float]:
    """The graph of fitted ``model`` (inputs: ``fit_frame``'s columns) against the model on
    ``test_frame`` (``original_frame``: what the model itself is given instead, e.g. with
    pandas category columns where the graph takes text). Returns (max abs, max rel) error."""
    exported = exported or export_pipeline(model, infer_columns(fit_frame))
    outputs = run(exported, test_frame)
    assert "refusals" not in outputs or not outputs["refusals"].any(), "the graph refuses rows"
    reference = test_frame if original_frame is None else original_frame
    if is_classifier(model):
        expected = np.asarray(quietly(lambda: model.predict(reference))).reshape(-1)
        label = outputs["label"]
        if expected.dtype.kind in "OUS":
            expected = expected.astype(str)
        disagree = np.flatnonzero(label != expected)
        assert disagree.size == 0, (
            f"labels differ on rows {disagree[:10]}: {label[disagree[:10]]} vs {expected[disagree[:10]]}"
        )
        return errors(outputs["probabilities"], quietly(lambda: model.predict_proba(reference)), exact)
    return errors(outputs["prediction"][:, 0], quietly(lambda: model.predict(reference)), exact)


def verify_packaged(
    model: Any, X_train: pd.DataFrame, X_test: pd.DataFrame, folder: Path, name: str
) -> dict[str, Any]:
    """Package ``model`` as the build does (held-out + 10,000 generated records through the
    runtime, refusals confirmed against the original); its equivalence report."""
    packaged = quietly(
        lambda: package(
            model, X_train, name=name, version="1.0.0", X_test=X_test, out=folder, generated_records=10_000
        )
    )
    report: dict[str, Any] = packaged.equivalence
    assert report["generated"]["rows"] == 10_000
    for label in ("held_out", "generated"):
        assert report[label]["failures"] == 0 and report[label]["label_disagreements"] == 0
    return report


def quantile_classes(y: Any, k: int) -> np.ndarray:
    """Classes 0 .. k-1: ``y`` cut at its k-quantiles."""
    return np.digitize(y, np.quantile(y, np.linspace(0, 1, k + 1)[1:-1]))


def as_categories(frame: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """The frame a caller of the original model builds: text cast to the fitted category dtype."""
    out = frame.copy()
    for c in fitted.columns:
        if isinstance(fitted[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object).astype(fitted[c].dtype)
    return out


def early_stopping_data() -> tuple[pd.DataFrame, np.ndarray]:
    """600 rows of three columns (10% of ``b`` missing), a target non-linear in ``b``."""
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    X.iloc[rng.random(600) < 0.1, 1] = np.nan
    y = X["a"].to_numpy() + np.nan_to_num(X["b"].to_numpy()) ** 2 + 0.2 * rng.normal(size=600)
    return X, y


def check_booster_wrapper(model: Any, task: str, frame: pd.DataFrame, expected: np.ndarray) -> None:
    """The estimator ``booster()`` made from a raw booster predicts what the booster itself
    predicts on ``frame`` (``expected``: its values, the probability of class 1 for binary);
    a classifier's classes are 0 .. k-1."""
    if task == "regression":
        assert np.array_equal(model.predict(frame), expected, equal_nan=True)
        return
    proba = model.predict_proba(frame)
    assert np.array_equal(proba[:, 1] if task == "binary" else proba, expected, equal_nan=True)
    assert list(model.classes_) == list(range(proba.shape[1]))


def near(thresholds: Sequence[float]) -> list[float]:
    """Each threshold and its float64 and float32 neighbours."""
    out: list[float] = []
    for t in thresholds:
        if not math.isfinite(t):
            continue
        t32 = float(np.float32(t))
        out += [t, float(np.nextafter(t, math.inf)), float(np.nextafter(t, -math.inf)), t32]
        out += [float(np.nextafter(np.float32(t), np.float32(math.inf)))]
        out += [float(np.nextafter(np.float32(t), np.float32(-math.inf)))]
    return out


@st.composite
def boosting_data(
    draw: Any,
    n_features: tuple[int, int] = (1, 3),
    *,
    zeros: bool = False,
    codes: bool = True,
    missing_effect: float = 2.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """A fit frame and a target drawn from it: ``n_features`` numeric columns ``x0``, ``x1``...
    (normal values at a drawn scale, a drawn share missing and, with ``zeros``, a drawn share
    of zeros), with ``codes`` maybe a categorical code column ``k`` (2 to 12 codes); the
    target sums the scaled columns, a sine of ``k`` and ``missing_effect`` where ``x0`` is
    missing, plus noise."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(80, 250))
    frame = {}
    for j in range(draw(st.integers(*n_features))):
        x = rng.normal(size=n) * draw(st.sampled_from([1.0, 1e-3, 1e6]))
        x[rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.3]))] = np.nan
        if zeros:
            x[rng.random(n) < draw(st.sampled_from([0.0, 0.2]))] = 0.0
        frame[f"x{j}"] = x
    if codes and draw(st.booleans()):
        frame["k"] = rng.integers(0, draw(st.integers(2, 12)), n).astype(float)
    X = pd.DataFrame(frame)
    scaled = X.to_numpy() / np.nanmax(np.abs(X.to_numpy()), axis=0).clip(1e-300)
    signal = np.nan_to_num(scaled).sum(axis=1)
    if "k" in X:
        signal += np.sin(3 * X["k"].to_numpy())
    y = signal + 0.3 * rng.normal(size=n) + missing_effect * np.isnan(X.iloc[:, 0].to_numpy())
    return X, y


def probe_rows(
    X: pd.DataFrame,
    splits: dict[int, list[float]],
    drawn: Sequence[Sequence[float]],
    codes: Sequence[float] = (),
) -> pd.DataFrame:
    """Rows to probe a fitted model with: every third training row; for each feature (by
    position) a training row with that feature set to each of its split thresholds and their
    neighbours (:func:`near`); the drawn rows (cut to the frame's width); and, when the frame
    has a categorical code column ``k``, ``codes`` in its first rows."""
    rows = [X.iloc[i].to_numpy(copy=True) for i in range(0, len(X), 3)]
    for f, thresholds in splits.items():
        for v in near(thresholds):
            row = X.iloc[len(rows) % len(X)].to_numpy(copy=True)
            row[f] = v
            rows.append(row)
    rows += [np.array(r[: len(X.columns)], dtype=np.float64) for r in drawn]
    frame = pd.DataFrame(np.array(rows), columns=X.columns)
    if "k" in X and codes:
        frame.loc[: len(codes) - 1, "k"] = list(codes[: min(len(codes), len(frame))])
    return frame
