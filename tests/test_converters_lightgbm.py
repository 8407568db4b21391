"""LightGBM in the graph (conversion/converters/lightgbm.py) against LightGBM's own predict.

LightGBM computes in float64 and adds its trees one after the other: on one onnxruntime
thread (the runtime's default) the graph's raw scores are equal to LightGBM's bit for
bit, so regression outputs with an identity link and every label are exact; links with
``exp`` (poisson, gamma, tweedie, sigmoid, softmax) are within a few ulps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from boosting_harness import (
    SPECIAL,
    as_categories,
    boosting_data,
    check_booster_wrapper,
    check_model,
    early_stopping_data,
    errors,
    probe_rows,
    quantile_classes,
    quietly,
    run,
    values,
    verify_packaged,
)
from converter_harness import converter_settings, covers
from hypothesis import given
from hypothesis import strategies as st

from predictlib.build import ExportError, booster, export_pipeline, infer_columns
from predictlib.build.boosters import LGBMBoosterClassifier, LGBMBoosterRegressor

lightgbm = pytest.importorskip("lightgbm")
LGBMClassifier, LGBMRegressor = lightgbm.LGBMClassifier, lightgbm.LGBMRegressor

#: categorical codes: known ones, and what LightGBM's int conversion makes of others
CODES = (0.0, 1.0, 2.0, 3.0, 5.0, 7.0, -0.5, -0.0, -1.0, 2.7, 1e10, 2.0**31, -(2.0**31), 40.0, math.nan)


@st.composite
def data(draw: Any, n_features: tuple[int, int] = (1, 3)) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """:func:`boosting_harness.boosting_data` with zeros too, and the categorical features' names."""
    X, y = draw(boosting_data(n_features, zeros=True, missing_effect=3.0))
    return X, y, ["k"] if "k" in X else []


def probe_frame(model: Any, X: pd.DataFrame, draw_rows: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Held-out rows, the drawn rows, and rows whose value sits on / next to each threshold."""
    thresholds: dict[int, list[float]] = {}
    for info in model.booster_.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_value" in node or "split_feature" not in node:
                continue
            stack += [node["left_child"], node["right_child"]]
            if node["decision_type"] == "<=":
                thresholds.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))
    return probe_rows(X, thresholds, draw_rows, CODES)  # the categorical column: odd codes too


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
    T = probe_frame(model, X, rows)
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
    target = classes[quantile_classes(y, n_classes)]
    if (objective == "multiclassova" and n_classes == 2) or (objective == "cross_entropy" and n_classes > 2):
        objective = "default"
    kwargs = {} if objective == "default" else {"objective": objective}
    model = fit(
        LGBMClassifier(verbose=-1, n_jobs=1, random_state=0, **kwargs, **options), X, target, categorical
    )
    T = probe_frame(model, X, rows)
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
    X, y = early_stopping_data()
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


# ------------------------------------------------------------------ linear trees


def linear_model(
    objective: str, X: pd.DataFrame, y: np.ndarray, categorical: list[str], **options: Any
) -> Any:
    """A model with ``linear_tree=True`` for ``objective`` (regression, poisson, binary,
    multiclass), fitted on a target derived from ``y``."""
    base = {"linear_tree": True, "verbose": -1, "n_jobs": 1, "random_state": 0, **options}
    if objective in ("regression", "poisson"):
        target = np.exp(y / 4) if objective == "poisson" else y
        return fit(LGBMRegressor(objective=objective, **base), X, target, categorical)
    n_classes = 2 if objective == "binary" else 3
    classes = quantile_classes(y, n_classes)
    return fit(LGBMClassifier(**base), X, classes, categorical)


def nan_in_linear_features(model: Any, T: pd.DataFrame) -> pd.DataFrame:
    """``T`` and, per leaf with a linear model, rows routed to that leaf with one of its
    features made NaN -- or +-inf, or a tiny value LightGBM reads as 0 -- where that does
    not change the leaf (LightGBM then outputs the plain leaf value)."""
    booster = model.booster_
    features = set()
    for info in booster.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node and "leaf_value" not in node:
                stack += [node["left_child"], node["right_child"]]
            features.update(int(f) for f in node.get("leaf_features", []))
    rows = []
    for f in sorted(features):
        for value in (math.nan, math.inf, -math.inf, 1e-36, -0.0, 1e300):
            part = T.iloc[: min(len(T), 8)].copy()
            part.iloc[:, f] = value
            rows.append(part)
    return pd.concat([T, *rows], ignore_index=True)


@covers(LGBMRegressor, LGBMClassifier)
@converter_settings(max_examples=20)
@given(
    case=data(),
    objective=st.sampled_from(["regression", "poisson", "binary", "multiclass"]),
    options=st.fixed_dictionaries(
        {
            "num_leaves": st.integers(2, 12),
            "n_estimators": st.integers(1, 15),
            "linear_lambda": st.sampled_from([0.0, 0.1]),
            "use_missing": st.booleans(),
            "min_child_samples": st.sampled_from([5, 20]),
        }
    ),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_linear_trees_match_lightgbm(case: Any, objective: str, options: dict[str, Any], rows: Any) -> None:
    """linear_tree=True: each leaf's ``leaf_const + sum(coeff * x)`` (the plain leaf value when
    one of its features is NaN), with missing values, zeros, tiny values, infinities and a
    categorical split feature (``k``, never in a linear model) in the frames."""
    X, y, categorical = case
    model = linear_model(objective, X, y, categorical, **options)
    T = nan_in_linear_features(model, probe_frame(model, X, rows))
    check_model(model, X, T, exact=objective == "regression")


@covers(LGBMRegressor, LGBMClassifier)
@converter_settings(max_examples=8)
@given(seed=st.integers(0, 2**16), classify=st.booleans(), leaves=st.integers(3, 12))
def test_linear_trees_with_pandas_category_columns(seed: int, classify: bool, leaves: int) -> None:
    """Linear trees fitted on pandas category columns: categorical splits on the mapped text,
    linear models of the numeric features (NaN in ``size`` -> the plain leaf value)."""
    rng = np.random.default_rng(seed)
    X, y = category_frames(rng, 400)
    options = {"n_estimators": 12, "num_leaves": leaves, "verbose": -1, "n_jobs": 1, "min_child_samples": 5}
    if classify:
        model: Any = LGBMClassifier(linear_tree=True, **options)
        quietly(lambda: model.fit(X, np.digitize(y, np.quantile(y, [0.33, 0.66]))))
    else:
        model = LGBMRegressor(linear_tree=True, **options)
        quietly(lambda: model.fit(X, y))
    T, _ = category_frames(rng, 200)
    text = T.astype({"color": object, "shape": object})
    text.loc[:8, "color"] = ["purple", "Red", "", None, "red ", "grey", "white", "blue", "green"]
    text.loc[9:14, "size"] = [np.nan, np.inf, -np.inf, 0.0, 1e-36, 1e300]
    text.loc[15:17, "weight"] = [np.nan, 0.0, -1e300]
    exported = export_pipeline(model, infer_columns(X))
    check_model(model, X, text, original_frame=as_categories(text, X), exact=not classify, exported=exported)


def test_linear_trees_measured_errors() -> None:
    """The figures of docs/estimators.md: 100 linear trees, 1,500 rows with missing values,
    a categorical feature and the SPECIAL values."""
    rng = np.random.default_rng(21)
    n = 3000
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    X["k"] = rng.integers(0, 6, n).astype(float)
    X.iloc[rng.random(n) < 0.1, 1] = np.nan
    y = (
        2 * X["a"].to_numpy()
        + np.nan_to_num(X["b"].to_numpy()) * X["c"].to_numpy()
        + np.sin(X["k"].to_numpy())
    )
    y = y + 0.1 * rng.normal(size=n)
    T = pd.concat(
        [X[1500:], pd.DataFrame([list(SPECIAL[i : i + 5]) for i in range(0, 12)], columns=X.columns)],
        ignore_index=True,
    )
    measured = {}
    for objective in ("regression", "poisson", "binary", "multiclass"):
        model = linear_model(objective, X[:1500], y[:1500], ["k"], n_estimators=100, num_leaves=15)
        measured[objective] = check_model(model, X, T, exact=objective == "regression")
    assert measured["regression"] == (0.0, 0.0)
    assert all(rel < 1e-13 for _, rel in measured.values()), measured


# ------------------------------------------------------------------ raw boosters (lgb.train)


def train(
    task: str, X: pd.DataFrame, y: np.ndarray, categorical: list[str], rounds: int, **params: Any
) -> Any:
    """``lgb.train`` for ``task`` on a target derived from ``y`` (classes 0 .. k-1)."""
    options: dict[str, Any] = {"verbose": -1, "num_threads": 1, "seed": 0, **params}
    target = y
    if task == "regression":
        options.setdefault("objective", "regression")
    else:
        k = 2 if task == "binary" else 3
        target = quantile_classes(y, k)
        options.update({"objective": "binary"} if k == 2 else {"objective": "multiclass", "num_class": k})
    dataset = lightgbm.Dataset(X, target, categorical_feature=categorical or "auto")
    return quietly(lambda: lightgbm.train(options, dataset, num_boost_round=rounds))


@covers(LGBMBoosterRegressor, LGBMBoosterClassifier)
@converter_settings(max_examples=20)
@given(
    case=data(),
    task=st.sampled_from(["regression", "binary", "multiclass"]),
    linear=st.booleans(),
    rounds=st.integers(1, 15),
    leaves=st.integers(2, 12),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_raw_booster_matches_lightgbm(
    case: Any, task: str, linear: bool, rounds: int, leaves: int, rows: Any
) -> None:
    """A ``lgb.train`` booster wrapped by ``booster()`` (task from its objective): the graph
    against the wrapper, and the wrapper against ``Booster.predict`` itself."""
    X, y, categorical = case
    raw = train(task, X, y, categorical, rounds, num_leaves=leaves, linear_tree=linear, min_data_in_leaf=5)
    model = booster(raw)
    assert isinstance(model, LGBMBoosterRegressor if task == "regression" else LGBMBoosterClassifier)
    T = probe_frame(model, X, rows)
    if linear:
        T = nan_in_linear_features(model, T)
    check_model(model, X, T, exact=task == "regression")
    check_booster_wrapper(model, task, T, raw.predict(T))


def test_raw_boosters_in_a_pipeline_and_bare_are_packaged(tmp_path: Path) -> None:
    """A ``lgb.train`` booster as the last step of a Pipeline (read as ``booster(raw)``; a
    Pipeline cannot predict with a raw booster itself), wrapped with its classes, and bare:
    ``package()`` verifies each through the runtime (held-out + 10,000 generated records)."""
    from feature_engine.encoding import OrdinalEncoder
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(13)
    X, y = category_frames(rng, 1000)
    X = X.astype({"color": object}).fillna({"color": "missing"}).astype({"color": "str", "shape": "str"})
    encode = OrdinalEncoder(encoding_method="arbitrary", unseen="encode").fit(X[:800])
    Z = encode.transform(X)
    linear = train("regression", Z[:800], y[:800], ["color", "shape"], 30, linear_tree=True, num_leaves=8)
    with pytest.raises(TypeError, match="not an estimator"):  # scikit-learn 1.9 itself
        Pipeline([("encode", encode), ("lgbm", linear)]).predict(X)
    report = verify_packaged(
        Pipeline([("encode", encode), ("lgbm", linear)]), X[:800], X[800:], tmp_path, "raw_a"
    )
    assert report["generated"]["max_abs_error"] == 0.0
    three = train("multiclass", Z[:800], y[:800], ["color", "shape"], 20, num_leaves=8)
    pipeline = Pipeline([("encode", encode), ("lgbm", booster(three, classes=["low", "mid", "high"]))])
    assert set(pipeline.predict(X[800:])) <= {"low", "mid", "high"}
    verify_packaged(pipeline, X[:800], X[800:], tmp_path, "raw_b")
    numeric = X[["size", "weight"]]
    two = train("binary", numeric[:800], y[:800], [], 25, linear_tree=True)
    verify_packaged(two, numeric[:800], numeric[800:], tmp_path, "raw_c")


def test_raw_booster_task_and_classes() -> None:
    rng = np.random.default_rng(14)
    X = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    y = X["a"].to_numpy() + 0.1 * rng.normal(size=200)
    two = train("binary", X, y, [], 3)
    with pytest.raises(ValueError, match="2 classes; give 2 distinct labels"):
        booster(two, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="1 output"):
        booster(two, task="multiclass")
    as_regression = booster(two, task="regression")  # the probability of class 1 as a number
    check_model(as_regression, X, X, exact=False)
    entropy = train("regression", X, (y > 0).astype(float), [], 3, objective="cross_entropy")
    assert isinstance(booster(entropy), LGBMBoosterRegressor)
    check_model(booster(entropy, task="binary"), X, X)
    with pytest.raises(TypeError, match=r"lightgbm\.Booster or xgboost\.Booster"):
        booster(LGBMRegressor())
    early = quietly(
        lambda: lightgbm.train(
            {"verbose": -1, "num_threads": 1, "learning_rate": 0.5},
            lightgbm.Dataset(X[:150], y[:150]),
            num_boost_round=200,
            valid_sets=[lightgbm.Dataset(X[150:], y[150:])],
            callbacks=[lightgbm.early_stopping(3, verbose=False)],
            keep_training_booster=True,  # keeps the trees after the best iteration
        )
    )
    assert 0 < early.best_iteration < early.num_trees()  # Booster.predict stops at the best iteration
    exported = export_pipeline(early, infer_columns(X))
    assert errors(run(exported, X)["prediction"][:, 0], early.predict(X), True) == (0.0, 0.0)
