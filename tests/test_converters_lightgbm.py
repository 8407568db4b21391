"""LightGBM in the graph (conversion/converters/lightgbm.py) against LightGBM's own predict.

LightGBM computes in float64 and adds its trees one after the other: on one onnxruntime
thread (the runtime's default) the graph's raw scores are equal to LightGBM's bit for
bit, so regression outputs with an identity link and every label are exact; links with
``exp`` (poisson, gamma, tweedie, sigmoid, softmax) are within a few ulps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from boosting_harness import SPECIAL, check_model, errors, near, quietly, run, values, verify_packaged
from converter_harness import converter_settings, covers
from hypothesis import given
from hypothesis import strategies as st

from predictlib.build import ExportError, export_pipeline, infer_columns

lightgbm = pytest.importorskip("lightgbm")
LGBMClassifier, LGBMRegressor = lightgbm.LGBMClassifier, lightgbm.LGBMRegressor

#: categorical codes: known ones, and what LightGBM's int conversion makes of others
CODES = (0.0, 1.0, 2.0, 3.0, 5.0, 7.0, -0.5, -0.0, -1.0, 2.7, 1e10, 2.0**31, -(2.0**31), 40.0, math.nan)


@st.composite
def data(draw: Any, n_features: tuple[int, int] = (1, 3)) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """A fit frame with numeric columns (missing values, zeros, tiny values) and maybe a
    categorical code column ``k``; a target drawn from the features."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(80, 250))
    frame = {}
    for j in range(draw(st.integers(*n_features))):
        x = rng.normal(size=n) * draw(st.sampled_from([1.0, 1e-3, 1e6]))
        for share, value in (
            (draw(st.sampled_from([0.0, 0.1, 0.3])), np.nan),
            (draw(st.sampled_from([0.0, 0.2])), 0.0),
        ):
            x[rng.random(n) < share] = value
        frame[f"x{j}"] = x
    categorical = []
    if draw(st.booleans()):
        frame["k"] = rng.integers(0, draw(st.integers(2, 12)), n).astype(float)
        categorical = ["k"]
    X = pd.DataFrame(frame)
    signal = np.nan_to_num(X.to_numpy() / X.abs().max().replace(0, 1).to_numpy()).sum(axis=1)
    if categorical:
        signal += np.sin(3 * X["k"].to_numpy())
    y = signal + 0.3 * rng.normal(size=n) + 3 * np.isnan(X.iloc[:, 0].to_numpy())
    return X, y, categorical


def probe_frame(model: Any, X: pd.DataFrame, draw_rows: list[list[float]]) -> pd.DataFrame:
    """Held-out rows, the drawn rows, and rows whose value sits on / next to each threshold."""
    dump = model.booster_.dump_model()
    thresholds: dict[int, list[float]] = {}
    for info in dump["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_value" in node or "split_feature" not in node:
                continue
            stack += [node["left_child"], node["right_child"]]
            if node["decision_type"] == "<=":
                thresholds.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))
    rows = [X.iloc[i % len(X)].to_numpy(copy=True) for i in range(0, len(X), 3)]
    for f, ts in thresholds.items():
        for v in near(ts):
            row = X.iloc[len(rows) % len(X)].to_numpy(copy=True)
            row[f] = v
            rows.append(row)
    if draw_rows:
        rows += [np.array(r, dtype=np.float64) for r in draw_rows]
    frame = pd.DataFrame(np.array(rows), columns=X.columns)
    if "k" in X:  # the categorical column: odd codes too
        frame.loc[: len(CODES) - 1, "k"] = CODES[: min(len(CODES), len(frame))]
    return frame


def fit(model: Any, X: pd.DataFrame, y: np.ndarray, categorical: list[str]) -> Any:
    return quietly(lambda: model.fit(X, y, categorical_feature=categorical or "auto"))


# ------------------------------------------------------------------ hypothesis: regressors

OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "poisson", "gamma", "tweedie")


@covers(LGBMRegressor)
@converter_settings(max_examples=20)
@given(
    case=data(),
    objective=st.sampled_from(OBJECTIVES),
    options=st.fixed_dictionaries(
        {
            "num_leaves": st.integers(2, 15),
            "n_estimators": st.integers(1, 25),
            "zero_as_missing": st.booleans(),
            "use_missing": st.booleans(),
            "reg_sqrt": st.booleans(),
            "min_child_samples": st.sampled_from([3, 10]),
        }
    ),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_regressor_matches_lightgbm(case: Any, objective: str, options: dict[str, Any], rows: Any) -> None:
    X, y, categorical = case
    if objective in ("poisson", "gamma", "tweedie"):
        y = np.exp(y / 4)
        options["reg_sqrt"] = False
    model = fit(
        LGBMRegressor(objective=objective, verbose=-1, n_jobs=1, random_state=0, **options), X, y, categorical
    )
    T = probe_frame(model, X, [r[: len(X.columns)] for r in rows])
    exact = objective not in ("poisson", "gamma", "tweedie")  # exp: a few ulps
    check_model(model, X, T, exact=exact)


# ------------------------------------------------------------------ hypothesis: classifiers


@covers(LGBMClassifier)
@converter_settings(max_examples=30)
@given(
    case=data(),
    n_classes=st.sampled_from([2, 3, 4]),
    labels=st.sampled_from(["int", "str"]),
    objective=st.sampled_from(["default", "multiclassova", "cross_entropy"]),
    options=st.fixed_dictionaries(
        {
            "num_leaves": st.integers(2, 12),
            "n_estimators": st.integers(1, 20),
            "zero_as_missing": st.booleans(),
        }
    ),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_classifier_matches_lightgbm(
    case: Any, n_classes: int, labels: str, objective: str, options: dict[str, Any], rows: Any
) -> None:
    X, y, categorical = case
    classes = np.array(["no", "yes", "maybe", "other"] if labels == "str" else [-5, 0, 7, 11])[:n_classes]
    target = classes[np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))]
    if (objective == "multiclassova" and n_classes == 2) or (objective == "cross_entropy" and n_classes > 2):
        objective = "default"
    kwargs = {} if objective == "default" else {"objective": objective}
    model = fit(
        LGBMClassifier(verbose=-1, n_jobs=1, random_state=0, **kwargs, **options), X, target, categorical
    )
    T = probe_frame(model, X, [r[: len(X.columns)] for r in rows])
    check_model(model, X, T)


# ------------------------------------------------------------------ pandas categories


def category_frames(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    color = rng.choice(
        ["red", "green", "blue", "black", "white", "grey"], n, p=[0.3, 0.3, 0.2, 0.1, 0.07, 0.03]
    )
    shape = rng.choice(["round", "square", "flat"], n)
    size = rng.normal(size=n)
    size[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "size": size,
            "color": pd.Categorical(color),
            "weight": rng.gamma(2.0, 10.0, n),
            "shape": pd.Categorical(shape),
        }
    )
    frame.loc[rng.random(n) < 0.05, "color"] = np.nan
    y = (
        np.isin(color, ["red", "blue"]) * 2.0
        + np.nan_to_num(size)
        + (shape == "flat")
        + 0.1 * rng.normal(size=n)
    )
    return frame, y


def as_categories(frame: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """The frame a caller of the original model builds: text cast to the fitted category dtype."""
    out = frame.copy()
    for c in fitted.columns:
        if isinstance(fitted[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object).astype(fitted[c].dtype)
    return out


@covers(LGBMRegressor, LGBMClassifier)
@converter_settings(max_examples=10)
@given(seed=st.integers(0, 2**16), classify=st.booleans(), leaves=st.integers(3, 15))
def test_pandas_category_columns_take_text(seed: int, classify: bool, leaves: int) -> None:
    """Fitted on pandas category columns: the graph takes their text (cat input) and maps it
    to LightGBM's category code; unseen and missing texts go where LightGBM sends NaN."""
    rng = np.random.default_rng(seed)
    X, y = category_frames(rng, 400)
    if classify:
        model = LGBMClassifier(n_estimators=15, num_leaves=leaves, verbose=-1, n_jobs=1, min_child_samples=5)
        quietly(lambda: model.fit(X, np.where(y > np.median(y), "high", "low")))
    else:
        model = LGBMRegressor(n_estimators=15, num_leaves=leaves, verbose=-1, n_jobs=1, min_child_samples=5)
        quietly(lambda: model.fit(X, y))
    assert model.booster_.pandas_categorical is not None
    T, _ = category_frames(rng, 200)
    text = T.astype({"color": object, "shape": object})
    text.loc[:30, "color"] = ["purple", "Red", "", None, "red ", "grey", *["white"] * 25]
    text.loc[31:35, "shape"] = [None, "oval", "square", "flat", "round"]
    exported = export_pipeline(model, infer_columns(X))
    assert exported.categorical == ["color", "shape"]
    check_model(model, X, text, original_frame=as_categories(text, X), exact=not classify, exported=exported)


# ------------------------------------------------------------------ iterations, boosting types


def test_best_iteration_and_boosting_types() -> None:
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    X.iloc[rng.random(600) < 0.1, 1] = np.nan
    y = X["a"].to_numpy() + np.nan_to_num(X["b"].to_numpy()) ** 2 + 0.2 * rng.normal(size=600)
    early = LGBMRegressor(n_estimators=300, learning_rate=0.3, verbose=-1, n_jobs=1)
    quietly(
        lambda: early.fit(
            X[:400],
            y[:400],
            eval_set=[(X[400:], y[400:])],
            callbacks=[lightgbm.early_stopping(5, verbose=False)],
        )
    )
    assert 0 < early.booster_.best_iteration == early.booster_.num_trees()  # the sklearn API keeps the best
    trimmed = quietly(lambda: LGBMRegressor(n_estimators=40, verbose=-1, n_jobs=1).fit(X[:400], y[:400]))
    trimmed.booster_.best_iteration = 17  # what predict() uses (a Booster kept training after the best)
    models = [
        early,
        trimmed,
        LGBMRegressor(
            boosting_type="rf", bagging_freq=1, bagging_fraction=0.6, n_estimators=20, verbose=-1, n_jobs=1
        ),
        LGBMRegressor(boosting_type="dart", n_estimators=20, verbose=-1, n_jobs=1),
        LGBMRegressor(data_sample_strategy="goss", n_estimators=20, verbose=-1, n_jobs=1),
        LGBMClassifier(
            boosting_type="rf", bagging_freq=1, bagging_fraction=0.6, n_estimators=10, verbose=-1, n_jobs=1
        ),
    ]
    T = pd.concat(
        [X[400:], pd.DataFrame([SPECIAL[:3] * 1, SPECIAL[3:6]], columns=X.columns)], ignore_index=True
    )
    for model in models[1:]:
        target = (y > 0.5).astype(int) if isinstance(model, LGBMClassifier) else y
        quietly(lambda m=model, t=target: m.fit(X[:400], t[:400]))
    for model in models:
        check_model(model, X, T, exact=not isinstance(model, LGBMClassifier))


def test_more_trees_and_threads_stay_within_tolerance() -> None:
    """Many trees and rows, onnxruntime on 4 threads: its TreeEnsemble adds partial sums of
    blocks of trees, a few ulps from LightGBM's sequential sum (far inside the tolerance);
    on one thread the sums are LightGBM's, bit for bit."""
    rng = np.random.default_rng(8)
    X = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list("abcd"))
    y = np.sin(X["a"]) * 3 + X["b"] * X["c"] + rng.normal(size=2000) * 0.1
    model = quietly(lambda: LGBMRegressor(n_estimators=300, num_leaves=31, verbose=-1, n_jobs=1).fit(X, y))
    exported = export_pipeline(model, infer_columns(X))
    expected = model.predict(X)
    assert np.array_equal(run(exported, X)["prediction"][:, 0], expected)
    _, rel = errors(run(exported, X, threads=4)["prediction"][:, 0], expected)
    assert rel < 1e-13


# ------------------------------------------------------------------ in pipelines, refusals


def test_in_a_feature_engine_pipeline_missing_values_reach_lightgbm() -> None:
    """No NaN guard before LightGBM: a column no step imputes keeps its missing values."""
    from feature_engine.encoding import OrdinalEncoder, RareLabelEncoder
    from feature_engine.imputation import CategoricalImputer
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(3)
    X, y = category_frames(rng, 600)
    X = X.astype({"color": "str", "shape": "str"})
    pipeline = Pipeline(
        [
            ("impute", CategoricalImputer(variables=["color"])),
            ("rare", RareLabelEncoder(tol=0.05, n_categories=2, variables=["color"])),
            ("encode", OrdinalEncoder(encoding_method="ordered", variables=["color", "shape"])),
            ("lgbm", LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1)),
        ]
    )
    quietly(lambda: pipeline.fit(X, y, lgbm__categorical_feature=["color", "shape"]))
    T, _ = category_frames(rng, 300)
    T = T.astype({"color": object, "shape": object})
    T.loc[T["color"].isna(), "color"] = None
    T.loc[:5, "size"] = [np.nan, np.inf, -np.inf, 0.0, 1e-300, -1e300]
    check_model(pipeline, X, T, exact=True)


def test_refused_with_the_reason() -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = X["a"] * 2 + X["b"]
    linear = quietly(lambda: LGBMRegressor(linear_tree=True, n_estimators=5, verbose=-1, n_jobs=1).fit(X, y))
    with pytest.raises(ExportError, match="linear trees are not exported"):
        export_pipeline(linear, infer_columns(X))

    def objective(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return y_pred - y_true, np.ones_like(y_true)

    custom = quietly(
        lambda: LGBMRegressor(objective=objective, n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    )
    with pytest.raises(ExportError, match="custom objective"):
        export_pipeline(custom, infer_columns(X))
    X_text = X.assign(c=pd.Series(rng.choice(["u", "v"], 300)).astype(str))
    plain = quietly(
        lambda: LGBMRegressor(n_estimators=5, verbose=-1, n_jobs=1).fit(X_text.assign(c=X["a"] > 0), y)
    )
    with pytest.raises(ExportError, match="text columns"):
        export_pipeline(plain, infer_columns(X_text))


# ------------------------------------------------------------------ verification as the build does


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_verified_on_held_out_and_generated_records(task: str, tmp_path: Path) -> None:
    """package() verifies 10,000 generated records and the held-out rows through the
    runtime: LightGBM with missing values and categorical splits, inside a pipeline."""
    from feature_engine.encoding import OrdinalEncoder
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(11)
    X, y = category_frames(rng, 1200)
    X = (
        X.astype({"color": object, "shape": object})
        .fillna({"color": "missing"})
        .astype({"color": "str", "shape": "str"})
    )
    if task == "binary":
        y = np.where(y > np.median(y), "high", "low")
        final: Any = LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1)
    elif task == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
        final = LGBMClassifier(n_estimators=25, verbose=-1, n_jobs=1)
    else:
        final = LGBMRegressor(n_estimators=60, zero_as_missing=True, verbose=-1, n_jobs=1)
    pipeline = Pipeline(
        [("encode", OrdinalEncoder(encoding_method="arbitrary", unseen="encode")), ("lgbm", final)]
    )
    quietly(lambda: pipeline.fit(X[:1000], y[:1000], lgbm__categorical_feature=["color", "shape"]))
    report = verify_packaged(pipeline, X[:1000], X[1000:], tmp_path, f"lgbm_{task}")
    if task == "regression":
        assert report["generated"]["max_abs_error"] == 0.0


def test_pandas_categories_verified_by_package(tmp_path: Path) -> None:
    """A model fitted on pandas category columns, packaged as the build does: the
    verification gives the original its columns with their fitted category dtype (an
    unknown text becomes missing) and the graph the texts."""
    rng = np.random.default_rng(12)
    X, y = category_frames(rng, 1200)
    model = LGBMRegressor(n_estimators=40, num_leaves=15, verbose=-1, n_jobs=1, min_child_samples=5)
    quietly(lambda: model.fit(X[:1000], y[:1000]))
    report = verify_packaged(model, X[:1000], X[1000:], tmp_path, "lgbm_categories")
    assert report["generated"]["max_abs_error"] == 0.0
