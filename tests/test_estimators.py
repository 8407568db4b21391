"""Float64 estimators (conversion/converters/sklearn/estimators.py): exported graphs against scikit-learn.

Every model is converted with skl2onnx (DoubleTensorType input, ``zipmap=False``), its
ai.onnx.ml opset raised by ``finalize_ml_opset``, checked by onnx and run by a real
onnxruntime session. Regression outputs and probabilities must be within
``|a - b| <= ATOL + RTOL * |b|`` of scikit-learn's; labels must be identical (ties
included: the tests make sure some rows have exactly equal top probabilities).

Test inputs are fresh random rows plus extreme values and, for tree models, values on
and one ulp (float64 and float32) around every split threshold: the trees of
DecisionTree / forests / GradientBoosting compare float32-rounded inputs, so those are
the rows where a wrong rounding would show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.base import clone, is_classifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)
from sklearn.utils import get_tags
from threadpoolctl import threadpool_limits

from predictlib import build as conversion
from predictlib.build import tolerances
from predictlib.build.converters.sklearn.estimators import TREE_ML_OPSET, finalize_ml_opset
from predictlib.build.stages import export

pytestmark = [  # scikit-learn's own finiteness checks on NaN / huge inputs
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

RTOL, ATOL = tolerances.RTOL, tolerances.ATOL
N_FEATURES = 5
#: column scales of the generated features (column 4 is a small integer)
SCALES = np.array([1.0, 100.0, 1e-3, 1e6, 1.0])

# ------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Any:
    """scikit-learn's OpenMP loops (HistGradientBoosting) crawl on a busy machine; the
    results do not depend on the number of threads."""
    with threadpool_limits(limits=1):
        yield


def to_onnx(model: Any, n_features: int, input_type: Any = DoubleTensorType) -> onnx.ModelProto:
    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    onx = convert_sklearn(
        model,
        initial_types=[("x", input_type([None, n_features]))],
        target_opset=conversion.TARGET_OPSET,
        options=options,
    )
    finalize_ml_opset(onx)
    onx.ir_version = export.IR_VERSION
    onnx.checker.check_model(onx, full_check=True)
    return onx


def inference_session(onx: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # idle onnxruntime threads must not spin: they would starve scikit-learn's OpenMP threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])


def session(model: Any, n_features: int, input_type: Any = DoubleTensorType) -> ort.InferenceSession:
    return inference_session(to_onnx(model, n_features, input_type))


def run(model: Any, X: np.ndarray) -> list[np.ndarray]:
    return session(model, X.shape[1]).run(None, {"x": np.ascontiguousarray(X, dtype=np.float64)})


def errors(got: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Max absolute and relative error; fails on any entry out of tolerance."""
    got = np.asarray(got, np.float64)
    expected = np.asarray(expected, np.float64)
    assert got.shape == expected.shape
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(got - expected))
        bad = ~same & ~(diff <= ATOL + RTOL * np.abs(expected))
        rel = np.where(same | (expected == 0), 0.0, diff / np.abs(expected))
    assert not bad.any(), (
        f"{bad.sum()} values out of tolerance, e.g. got {got[bad][:5]} expected {expected[bad][:5]}"
    )
    return float(diff.max(initial=0.0)), float(rel.max(initial=0.0))


def check_regressor(model: Any, X: np.ndarray) -> tuple[float, float]:
    (pred,) = run(model, X)
    assert pred.dtype == np.float64 and pred.shape == (len(X), 1)
    return errors(pred[:, 0], model.predict(X))


def check_classifier(model: Any, X: np.ndarray) -> tuple[float, float]:
    label, proba = run(model, X)
    assert proba.dtype == np.float64 and proba.shape == (len(X), len(model.classes_))
    expected = model.predict(X)
    disagree = np.flatnonzero(label != expected)
    assert disagree.size == 0, (
        f"labels differ on rows {disagree[:10]}: {label[disagree[:10]]} vs {expected[disagree[:10]]}"
    )
    return errors(proba, model.predict_proba(X))


def features(rng: np.random.Generator, n: int, nan: float = 0.0) -> np.ndarray:
    X = rng.normal(size=(n, N_FEATURES)) * SCALES
    X[:, 4] = rng.integers(0, 5, n)
    if nan:
        X[rng.random(X.shape) < nan] = np.nan
    return X


def targets(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    Z = np.nan_to_num(X / SCALES)
    return Z[:, 0] + np.sin(2 * Z[:, 1]) + 0.5 * Z[:, 4] + (np.isnan(X[:, 2])) + 0.3 * rng.normal(size=len(X))


def extreme_rows(rng: np.random.Generator, n: int, float32_range: bool) -> np.ndarray:
    """Rows with huge / tiny / signed-zero values (finite in float32 when ``float32_range``:
    scikit-learn's float32 trees raise on the others)."""
    big = [3.0e38, -3.0e38, 1e30, -1e30] if float32_range else [1e300, -1e300, 1e200, -3.0e38]
    values = np.array([*big, 1e-300, -1e-300, 5e-324, 0.0, -0.0, 1e-45, 1.5e-38])
    X = features(rng, n)
    mask = rng.random(X.shape) < 0.4
    X[mask] = rng.choice(values, mask.sum())
    return X


def near_thresholds(
    thresholds: dict[int, np.ndarray], base: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Rows of ``base`` with one feature set on / next to a split threshold of that feature:
    the threshold, its float64 neighbours, and the float32 values around it."""
    rows = []
    for f, ts in thresholds.items():
        ts = ts[np.isfinite(ts)]
        for t in rng.choice(ts, min(len(ts), 40), replace=False):
            t32 = np.float32(t)
            for v in (
                t,
                np.nextafter(t, np.inf),
                np.nextafter(t, -np.inf),
                float(t32),
                float(np.nextafter(t32, np.float32(np.inf))),
                float(np.nextafter(t32, np.float32(-np.inf))),
                (float(t32) + float(np.nextafter(t32, np.float32(np.inf)))) / 2,  # float32 tie
            ):
                row = base[rng.integers(len(base))].copy()
                row[f] = v
                rows.append(row)
    return np.array(rows)


def sklearn_thresholds(model: Any) -> dict[int, np.ndarray]:
    trees = getattr(model, "estimators_", [model])
    trees = np.ravel(np.asarray(trees, dtype=object)) if hasattr(model, "estimators_") else trees
    out: dict[int, list[float]] = {}
    for est in trees:
        t = est.tree_
        for f, thr in zip(t.feature, t.threshold, strict=True):
            if f >= 0:
                out.setdefault(int(f), []).append(float(thr))
    return {f: np.unique(v) for f, v in out.items()}


def hgb_thresholds(model: Any) -> dict[int, np.ndarray]:
    out: dict[int, list[float]] = {}
    for predictors in model._predictors:
        for p in predictors:
            nodes = p.nodes[~p.nodes["is_leaf"].astype(bool) & ~p.nodes["is_categorical"].astype(bool)]
            for f, thr in zip(nodes["feature_idx"], nodes["num_threshold"], strict=True):
                out.setdefault(int(f), []).append(float(thr))
    return {f: np.unique(v) for f, v in out.items()}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240611)
    X = features(rng, 1500)
    Xn = features(rng, 1500, nan=0.1)
    y = targets(X, rng)
    yn = targets(Xn, rng)
    return {
        "X": X,
        "y": y,
        "y2": np.where(y > np.median(y), "yes", "no"),  # string labels
        "y4": np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75])) * 10 - 5,  # ints -5, 5, 15, 25
        "Xn": Xn,
        "yn": yn,
        "yn2": (yn > np.median(yn)).astype(int),
        "yn3": np.digitize(yn, np.quantile(yn, [0.33, 0.66])),
        "test": features(rng, 600),
        "test_nan": features(rng, 600, nan=0.2),
        "extreme32": extreme_rows(rng, 300, float32_range=True),
        "extreme64": extreme_rows(rng, 300, float32_range=False),
    }


def tree_test_rows(model: Any, d: dict[str, np.ndarray], nan: bool) -> np.ndarray:
    rng = np.random.default_rng(7)
    thresholds = hgb_thresholds(model) if hasattr(model, "_predictors") else sklearn_thresholds(model)
    parts = [d["test"], d["extreme32"], near_thresholds(thresholds, d["test"], rng)]
    if hasattr(model, "_predictors"):
        parts.append(d["extreme64"])  # HistGradientBoosting compares float64 values
    if nan or get_tags(model).input_tags.allow_nan:  # NaN is accepted even if unseen in training
        parts.append(d["test_nan"])
    return np.concatenate(parts)


# ------------------------------------------------------------------ linear models (skl2onnx's converters)


@pytest.mark.parametrize(
    "model",
    [LinearRegression(), Ridge(alpha=3.0), Lasso(alpha=0.01), ElasticNet(alpha=0.01, l1_ratio=0.3)],
    ids=lambda m: type(m).__name__,
)
def test_linear_regressors(model: Any, data: dict[str, np.ndarray]) -> None:
    model = clone(model).fit(data["X"], data["y"])
    check_regressor(model, np.concatenate([data["test"], data["X"]]))


def test_linear_regressor_error_is_rounding_of_the_dot_product(data: dict[str, np.ndarray]) -> None:
    """On extreme inputs the terms x_j * w_j can cancel: the error is bounded by a few ulps
    of sum |x_j w_j| (summation order of MatMul vs numpy), not of the result."""
    model = LinearRegression().fit(data["X"], data["y"])
    X = data["extreme64"]
    (pred,) = run(model, X)
    expected = model.predict(X)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.abs(X) @ np.abs(model.coef_) + abs(model.intercept_)
        finite = np.isfinite(scale)
        assert np.all(np.abs(pred[finite, 0] - expected[finite]) <= 8 * np.finfo(float).eps * scale[finite])
    assert np.array_equal(pred[~finite, 0], expected[~finite], equal_nan=True)


@pytest.mark.parametrize("target", ["y2", "y4"])
def test_logistic_regression(target: str, data: dict[str, np.ndarray]) -> None:
    """Binary (string labels) and multinomial (int labels): skl2onnx's MatMul + Sigmoid /
    Softmax in float64; labels from the argmax of the decision function, as scikit-learn."""
    model = LogisticRegression(max_iter=2000).fit(data["X"] / SCALES, data[target])
    check_classifier(model, np.concatenate([data["test"], data["X"]]) / SCALES)


# ------------------------------------------------------------------ trees and forests


REGRESSORS = [
    DecisionTreeRegressor(max_depth=12, random_state=0),
    ExtraTreeRegressor(random_state=0),
    RandomForestRegressor(n_estimators=30, min_samples_leaf=3, random_state=0),
    ExtraTreesRegressor(n_estimators=30, random_state=0),
    GradientBoostingRegressor(n_estimators=60, random_state=0),
    GradientBoostingRegressor(n_estimators=40, loss="huber", init="zero", subsample=0.7, random_state=0),
    GradientBoostingRegressor(n_estimators=40, loss="quantile", alpha=0.8, random_state=0),
    HistGradientBoostingRegressor(max_iter=60, random_state=0),
    HistGradientBoostingRegressor(max_iter=40, loss="absolute_error", random_state=0),
]


@pytest.mark.parametrize(
    "model", REGRESSORS, ids=lambda m: f"{type(m).__name__}-{m.get_params().get('loss', '')}"
)
def test_tree_regressors(model: Any, data: dict[str, np.ndarray]) -> None:
    model = clone(model).fit(data["X"], data["y"])
    check_regressor(model, tree_test_rows(model, data, nan=False))


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeRegressor(min_samples_leaf=5, random_state=0),
        RandomForestRegressor(n_estimators=20, random_state=0),
        ExtraTreesRegressor(n_estimators=20, random_state=0),
        HistGradientBoostingRegressor(max_iter=50, random_state=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_tree_regressors_with_missing_values(model: Any, data: dict[str, np.ndarray]) -> None:
    """Trained on data with NaN: each node's missing_go_to_left is followed."""
    model = clone(model).fit(data["Xn"], data["yn"])
    check_regressor(model, tree_test_rows(model, data, nan=True))


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_hist_gradient_boosting_log_link(loss: str, data: dict[str, np.ndarray]) -> None:
    """exp(raw): onnxruntime's Exp vs numpy's, a few ulps."""
    model = HistGradientBoostingRegressor(loss=loss, max_iter=40, random_state=0)
    model.fit(data["Xn"], np.exp(data["yn"] / 3))
    check_regressor(model, tree_test_rows(model, data, nan=True))


CLASSIFIERS = [
    DecisionTreeClassifier(max_depth=10, random_state=0),
    ExtraTreeClassifier(random_state=0),
    RandomForestClassifier(n_estimators=30, min_samples_leaf=2, random_state=0),
    ExtraTreesClassifier(n_estimators=30, random_state=0),
    GradientBoostingClassifier(n_estimators=30, random_state=0),
    HistGradientBoostingClassifier(max_iter=30, random_state=0),
]


@pytest.mark.parametrize("target", ["y2", "y4"])
@pytest.mark.parametrize("model", CLASSIFIERS, ids=lambda m: type(m).__name__)
def test_tree_classifiers(model: Any, target: str, data: dict[str, np.ndarray]) -> None:
    model = clone(model).fit(data["X"], data[target])
    check_classifier(model, tree_test_rows(model, data, nan=False))


@pytest.mark.parametrize("target", ["yn2", "yn3"])
@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeClassifier(min_samples_leaf=3, random_state=0),
        RandomForestClassifier(n_estimators=20, random_state=0),
        ExtraTreesClassifier(n_estimators=20, random_state=0),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_tree_classifiers_with_missing_values(model: Any, target: str, data: dict[str, np.ndarray]) -> None:
    model = clone(model).fit(data["Xn"], data[target])
    check_classifier(model, tree_test_rows(model, data, nan=True))


def test_gradient_boosting_exponential_loss(data: dict[str, np.ndarray]) -> None:
    model = GradientBoostingClassifier(loss="exponential", n_estimators=30, random_state=0)
    model.fit(data["X"], data["y2"])
    check_classifier(model, tree_test_rows(model, data, nan=False))


def test_missing_value_tracks_only_where_nan_can_arrive(data: dict[str, np.ndarray]) -> None:
    """GradientBoosting refuses NaN (input guard): its trees carry no missing-value track,
    so onnxruntime skips the per-node isnan test; a random forest (NaN accepted) keeps them."""

    def tracks(model: Any) -> int:
        (node,) = [n for n in to_onnx(model, data["X"].shape[1]).graph.node if n.op_type == "TreeEnsemble"]
        attr = {a.name: a for a in node.attribute}["nodes_missing_value_tracks_true"]
        return sum(attr.ints)

    gb = GradientBoostingRegressor(n_estimators=10, random_state=0).fit(data["X"], data["y"])
    assert tracks(gb) == 0
    check_regressor(gb, tree_test_rows(gb, data, nan=False))
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(data["Xn"], data["yn"])
    assert tracks(forest) > 0


def test_summation_order_with_many_trees_and_threads(data: dict[str, np.ndarray]) -> None:
    """With more than 80 trees, several threads and a batch of rows, onnxruntime's
    TreeEnsemble adds per-thread partial sums of blocks of trees (measured: 266 of 300
    rows differ in the last bits from a sequential sum); the per-tree outputs + CumSum
    keep scikit-learn's order bit for bit, for one row or a batch."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 4
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    rows = np.concatenate([data["test"], data["extreme32"]])[:300]
    models = [
        GradientBoostingRegressor(n_estimators=150, max_depth=4, random_state=0).fit(data["X"], data["y"]),
        RandomForestClassifier(n_estimators=120, max_depth=6, random_state=0).fit(data["X"], data["y4"]),
    ]
    for model in models:
        onx = to_onnx(model, N_FEATURES)
        sess = ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
        out = 1 if is_classifier(model) else 0
        expected = model.predict_proba(rows) if is_classifier(model) else model.predict(rows)[:, None]
        assert np.array_equal(sess.run(None, {"x": rows})[out], expected)
        single = np.concatenate([sess.run(None, {"x": rows[i : i + 1]})[out] for i in range(50)])
        assert np.array_equal(single, expected[:50])


def test_empty_batch(data: dict[str, np.ndarray]) -> None:
    empty = np.zeros((0, N_FEATURES))
    for model in (
        RandomForestClassifier(n_estimators=3, random_state=0).fit(data["X"], data["y4"]),
        GradientBoostingClassifier(n_estimators=3, random_state=0).fit(data["X"], data["y4"]),
        HistGradientBoostingRegressor(max_iter=3, categorical_features=[4]).fit(data["X"], data["y"]),
    ):
        shapes = [o.shape for o in run(model, empty)]
        assert shapes == ([(0,), (0, 4)] if is_classifier(model) else [(0, 1)])


def test_float_class_labels_are_int64(data: dict[str, np.ndarray]) -> None:
    """Like skl2onnx: integral float classes give int64 labels."""
    model = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(data["X"], data["y4"] / 5.0)
    label, _ = run(model, data["test"])
    assert label.dtype == np.int64
    check_classifier(model, data["test"])


def test_float_input_is_cast_to_double(data: dict[str, np.ndarray]) -> None:
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(data["X"], data["y"])
    X = data["test"].astype(np.float32)
    (pred,) = session(model, N_FEATURES, FloatTensorType).run(None, {"x": X})
    assert np.array_equal(pred[:, 0], model.predict(X))


# ------------------------------------------------------------------ ties


def test_forest_probability_ties_pick_the_first_class() -> None:
    """Fully grown trees vote 0/1: with an even number of trees many rows have two equal
    top probabilities; numpy's argmax (and the graph's ArgMax) take the first class."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    y = rng.integers(0, 3, 400)  # noise: the trees disagree a lot
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y)
    T = rng.normal(size=(2000, 3))
    proba = model.predict_proba(T)
    top2 = np.sort(proba, axis=1)[:, -2:]
    assert np.sum(top2[:, 0] == top2[:, 1]) > 100  # exact ties happen
    check_classifier(model, T)


def test_boosting_zero_score_ties() -> None:
    """A raw score of exactly 0 (probabilities 0.5 / 0.5): GradientBoostingClassifier
    predicts classes_[1] (raw >= 0), HistGradientBoostingClassifier classes_[0] (raw > 0)."""
    X = np.repeat([[0.0], [1.0]], 40, axis=0)
    y = np.array(["a", "b"] * 40)  # each leaf is balanced
    gb = GradientBoostingClassifier(n_estimators=3, max_depth=1, init="zero").fit(X, y)
    hgb = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    for model, label in ((gb, "b"), (hgb, "a")):
        assert np.all(model.decision_function(X) == 0.0)
        assert np.all(model.predict(X) == label)
        check_classifier(model, X)
    tree = DecisionTreeClassifier(max_depth=1).fit(X, y)  # balanced leaves: argmax -> "a"
    check_classifier(tree, X)


# ------------------------------------------------------------------ HistGradientBoosting categories


def categorical_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column 1: odd float categories; column 2: 60 integer categories with NaN."""
    cats = np.array([1.5, -3.0, 1e10, 0.0, 7.0, 2.0, 100.0, 33.0])
    c1 = rng.choice(cats, n)
    c2 = rng.integers(0, 60, n).astype(float)
    c2[rng.random(n) < 0.05] = np.nan
    x0 = rng.normal(size=n)
    x0[rng.random(n) < 0.1] = np.nan
    X = np.c_[x0, c1, c2, rng.normal(size=n)]
    y = np.nan_to_num(np.sin(c2)) + (c1 > 1) + np.nan_to_num(x0) + np.isnan(c2) + 0.3 * rng.normal(size=n)
    return X, y


def categorical_test_rows(rng: np.random.Generator, X: np.ndarray, n: int) -> np.ndarray:
    """Known, unknown, non-integer, negative, signed-zero, huge and missing categories."""
    odd = [-0.0, 1.4999999999999998, 2.5, -1.0, 1e10 + 1, np.nan, 3.0, 255.0, 256.0, -0.5, 7.0000000001]
    T = X[rng.integers(len(X), size=n)].copy()
    pick = rng.random(n) < 0.5
    T[pick, 1] = rng.choice(odd, pick.sum())
    pick = rng.random(n) < 0.5
    T[pick, 2] = rng.choice(
        np.r_[np.arange(-2.0, 70.0), [np.nan, 2.5, -0.0, 0.5, 1e300, -1e300, 2.0**32 + 3]], pick.sum()
    )
    T[:6, 0] = [np.nan, np.inf, -np.inf, 1e300, -1e300, -0.0]
    return T


@pytest.mark.parametrize("spec", ["indices", "mask"])
@pytest.mark.parametrize(
    "model",
    [
        HistGradientBoostingRegressor(max_iter=40, random_state=0),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
    ],
    ids=["regressor", "binary", "multiclass"],
)
def test_hist_gradient_boosting_categorical(model: Any, spec: str) -> None:
    rng = np.random.default_rng(11)
    X, y = categorical_data(rng, 3000)
    if is_classifier(model):
        y = (y > np.median(y)).astype(int) if model.max_iter == 30 else np.digitize(y, [0.0, 1.0, 2.0])
    categorical = [1, 2] if spec == "indices" else np.array([False, True, True, False])
    model = clone(model).set_params(categorical_features=categorical).fit(X, y)
    kinds = {
        (bool(p.nodes["is_categorical"][i]), bool(p.nodes["missing_go_to_left"][i]))
        for predictors in model._predictors
        for p in predictors
        for i in np.flatnonzero(~p.nodes["is_leaf"].astype(bool))
    }
    assert {(True, True), (True, False)} <= kinds  # both kinds of categorical split
    T = np.concatenate([categorical_test_rows(rng, X, 1500), near_thresholds(hgb_thresholds(model), X, rng)])
    if is_classifier(model):
        check_classifier(model, T)
    else:
        check_regressor(model, T)


def test_hist_gradient_boosting_string_categories_are_refused() -> None:
    X = pd.DataFrame({"c": pd.Categorical(["a", "b", "c"] * 20), "x": np.arange(60.0)})
    model = HistGradientBoostingRegressor(max_iter=3, categorical_features="from_dtype").fit(
        X, np.arange(60.0)
    )
    with pytest.raises(conversion.ExportError, match="non-numeric categories"):
        to_onnx(model, 2)


# ------------------------------------------------------------------ hypothesis: arbitrary rows


FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=False, width=64),
    st.floats(min_value=-5, max_value=5),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 3.0, 7.0, 1.5, -3.0, 1e10, 33.0, 100.0, np.nan, 1e300, -1e300]),
)


@pytest.fixture(scope="module")
def hgb_categorical() -> tuple[Any, ort.InferenceSession]:
    rng = np.random.default_rng(2)
    X, y = categorical_data(rng, 2000)
    model = HistGradientBoostingClassifier(max_iter=20, categorical_features=[1, 2], random_state=0)
    model.fit(X, np.digitize(y, [0.0, 1.0, 2.0]))
    return model, session(model, X.shape[1])


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.lists(FLOATS, min_size=4, max_size=4), min_size=1, max_size=8))
def test_hypothesis_hist_gradient_boosting(rows: list[list[float]], hgb_categorical: Any) -> None:
    model, sess = hgb_categorical
    X = np.array(rows, dtype=np.float64)
    label, proba = sess.run(None, {"x": X})
    assert np.array_equal(label, model.predict(X))
    errors(proba, model.predict_proba(X))


@pytest.fixture(scope="module")
def forest() -> tuple[Any, ort.InferenceSession]:
    rng = np.random.default_rng(4)
    X = features(rng, 800, nan=0.1)
    model = RandomForestClassifier(n_estimators=16, random_state=0).fit(X, targets(X, rng) > 0.5)
    return model, session(model, N_FEATURES)


FLOATS32 = st.one_of(
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.floats(min_value=-3, max_value=3),
    st.integers(0, 5).map(float),
)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.lists(FLOATS32, min_size=5, max_size=5), min_size=1, max_size=8))
def test_hypothesis_random_forest(rows: list[list[float]], forest: Any) -> None:
    model, sess = forest
    X = np.array(rows, dtype=np.float64)
    label, proba = sess.run(None, {"x": X})
    assert np.array_equal(label, model.predict(X))
    assert np.array_equal(proba, model.predict_proba(X))


# ------------------------------------------------------------------ refusals and errors


def test_unsupported_settings_raise_export_error(data: dict[str, np.ndarray]) -> None:
    X, y = data["X"][:200], data["y"][:200]
    cases = [
        (GradientBoostingRegressor(n_estimators=3, init=LinearRegression()).fit(X, y), "init"),
        (RandomForestRegressor(n_estimators=3).fit(X, np.c_[y, y]), "n_outputs_"),
        (RandomForestClassifier(n_estimators=3).fit(X, np.c_[y > 0, y > 1]), "multi-output"),
        (DecisionTreeClassifier(max_depth=2).fit(X, np.c_[y > 0, y > 1]), "multi-output"),
    ]
    for model, match in cases:
        with pytest.raises(conversion.ExportError, match=match):
            to_onnx(model, N_FEATURES)


def test_finalize_ml_opset() -> None:
    def model_with(*ops: str) -> onnx.ModelProto:
        nodes = [helper.make_node(op, ["x"], [f"y{i}"], domain="ai.onnx.ml") for i, op in enumerate(ops)]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, None)], []
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)])

    untouched = finalize_ml_opset(model_with("TreeEnsembleRegressor"))
    assert {o.domain: o.version for o in untouched.opset_import}["ai.onnx.ml"] == 3
    raised = finalize_ml_opset(model_with("TreeEnsemble", "ArrayFeatureExtractor"))
    assert {o.domain: o.version for o in raised.opset_import}["ai.onnx.ml"] == TREE_ML_OPSET
    with pytest.raises(conversion.ExportError, match="TreeEnsembleRegressor"):
        finalize_ml_opset(model_with("TreeEnsemble", "TreeEnsembleRegressor"))


# ------------------------------------------------------------------ in a full pipeline


def pipeline_frame(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    color = rng.choice(["red", "green", "blue", "black", "white"], n)
    size = rng.normal(size=n) * 10
    size[rng.random(n) < 0.1] = np.nan
    weight = rng.gamma(2.0, 50.0, n)
    frame = pd.DataFrame({"color": color, "size": size, "weight": weight})
    y = (color == "red") * 2.0 + np.nan_to_num(size) / 10 + np.log(weight) + 0.2 * rng.normal(size=n)
    return frame, y


def graph_inputs(frame: pd.DataFrame, columns: list[conversion.Column]) -> dict[str, np.ndarray]:
    num = [c.name for c in columns if c.kind == "num"]
    cat = [c.name for c in columns if c.kind == "str"]
    feeds = {}
    if num:
        feeds["num"] = frame[num].to_numpy(dtype=np.float64)
    if cat:
        values = frame[cat].astype(object).where(frame[cat].notna(), conversion.MISSING)
        feeds["cat"] = values.to_numpy(dtype=object).astype(str)
    return feeds


def pipelines() -> list[tuple[str, Pipeline]]:
    """One pipeline per estimator family, regressor and classifier: feature-engine steps
    (ordinal encoding, median imputation) then the estimator."""
    from feature_engine.encoding import OrdinalEncoder
    from feature_engine.imputation import MeanMedianImputer

    def steps(final: Any, impute: bool = True) -> Pipeline:
        head: list[tuple[str, Any]] = [
            ("ordinal", OrdinalEncoder(encoding_method="arbitrary", variables=["color"], unseen="encode"))
        ]
        if impute:
            head.append(("impute", MeanMedianImputer(imputation_method="median", variables=["size"])))
        return Pipeline([*head, ("model", final)])

    return [
        ("linear", steps(Ridge(alpha=1.0))),
        ("forest", steps(RandomForestRegressor(n_estimators=20, min_samples_leaf=2, random_state=0))),
        ("boosting", steps(GradientBoostingRegressor(n_estimators=40, random_state=0))),
        (
            "hist_boosting",
            steps(
                HistGradientBoostingRegressor(max_iter=40, categorical_features=[0], random_state=0),
                impute=False,
            ),
        ),
        ("logistic", steps(LogisticRegression(max_iter=1000))),
        ("tree_classifier", steps(DecisionTreeClassifier(max_depth=6, random_state=0))),
        ("forest_classifier", steps(RandomForestClassifier(n_estimators=20, random_state=0))),
        ("boosting_classifier", steps(GradientBoostingClassifier(n_estimators=20, random_state=0))),
        (
            "hist_boosting_classifier",
            steps(
                HistGradientBoostingClassifier(max_iter=20, categorical_features=[0], random_state=0),
                impute=False,
            ),
        ),
    ]


@pytest.mark.parametrize("name,pipeline", pipelines(), ids=lambda v: v if isinstance(v, str) else "")
def test_estimator_in_export_pipeline(name: str, pipeline: Pipeline) -> None:
    rng = np.random.default_rng(9)
    frame, y = pipeline_frame(rng, 1200)
    if is_classifier(pipeline):
        y = np.array(["small", "medium", "large"])[np.digitize(y, np.quantile(y, [0.33, 0.66]))]
    pipeline.fit(frame, y)
    columns = conversion.infer_columns(frame)
    exported = conversion.export_pipeline(pipeline, columns)
    sess = inference_session(exported.model)
    test, _ = pipeline_frame(rng, 500)
    test.loc[:20, "color"] = "purple"  # unseen: encoded -1 (HistGradientBoosting: unknown category)
    test.loc[20:40, "weight"] = [1e30, -1e30, 3e38, 0.0, -0.0, 1e-300, 3.5e38, *([2.5] * 14)]
    # infinities: scikit-learn refuses them, except HistGradientBoosting in numeric features
    test.loc[41:44, "size"] = [np.inf, -np.inf, np.inf, 1.0]
    names = [o.name for o in sess.get_outputs()]
    outputs = dict(zip(names, sess.run(None, graph_inputs(test, columns)), strict=True))
    accepted = ~outputs["refusals"].any(axis=1) if "refusals" in outputs else np.ones(len(test), bool)
    assert accepted.sum() > 400
    if is_classifier(pipeline):
        assert exported.classes == list(pipeline.classes_)
        assert np.array_equal(outputs["label"][accepted], pipeline.predict(test[accepted]))
        errors(outputs["probabilities"][accepted], pipeline.predict_proba(test[accepted]))
    else:
        errors(outputs["prediction"][accepted, 0], pipeline.predict(test[accepted]))
    assert accepted[41] == name.startswith("hist_boosting")
    for i in np.flatnonzero(~accepted):  # refused rows: scikit-learn raises on them
        with pytest.raises(ValueError):
            pipeline.predict(test.iloc[[i]])


def test_float32_overflow_is_refused() -> None:
    """scikit-learn's trees raise on values beyond float32's range: a refusal per column."""
    rng = np.random.default_rng(10)
    frame, y = pipeline_frame(rng, 300)
    frame["size"] = frame["size"].fillna(0.0)
    pipeline = Pipeline([("model", DecisionTreeRegressor(max_depth=4, random_state=0))])
    pipeline.fit(frame[["size", "weight"]], y)
    columns = conversion.infer_columns(frame[["size", "weight"]])
    exported = conversion.export_pipeline(pipeline, columns)
    overflow = [c for c in exported.checks if "float32" in c.reason]
    assert [c.column for c in overflow] == ["size", "weight"]
    sess = inference_session(exported.model)
    num = np.array([[1.0, 3.4028235e38], [3.5e38, 1.0], [-1e39, 2.0], [1.0, 2.0]])
    names = [o.name for o in sess.get_outputs()]
    refusals = sess.run(None, {"num": num})[names.index("refusals")]
    flags = refusals[:, [exported.checks.index(c) for c in overflow]]
    assert flags.tolist() == [[False, False], [True, False], [True, False], [False, False]]
    for row, refused in zip(num, flags.any(axis=1), strict=True):
        test = pd.DataFrame([row], columns=["size", "weight"])
        if refused:
            with pytest.raises(ValueError, match="float32"):
                pipeline.predict(test)
        else:
            pipeline.predict(test)


def test_hist_gradient_boosting_refuses_inf_in_categorical_features_only() -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"rooms": rng.integers(0, 4, 400).astype(float), "area": rng.normal(size=400)})
    y = frame["rooms"] * 2 + frame["area"] + rng.normal(size=400) * 0.1
    pipeline = Pipeline([("model", HistGradientBoostingRegressor(max_iter=20, categorical_features=[0]))])
    pipeline.fit(frame, y)
    columns = conversion.infer_columns(frame)
    exported = conversion.export_pipeline(pipeline, columns)
    sess = inference_session(exported.model)
    test = pd.DataFrame({"rooms": [1.0, np.inf, 2.0, -np.inf], "area": [np.inf, 0.0, -np.inf, 0.0]})
    names = [o.name for o in sess.get_outputs()]
    outputs = dict(zip(names, sess.run(None, graph_inputs(test, columns)), strict=True))
    refused = outputs["refusals"].any(axis=1)
    assert refused.tolist() == [False, True, False, True]
    assert {c.column for c, hit in zip(exported.checks, outputs["refusals"][1], strict=True) if hit} == {
        "rooms"
    }
    for i in (1, 3):
        with pytest.raises(ValueError, match="infinity"):
            pipeline.predict(test.iloc[[i]])
    accepted = test[~refused]
    errors(outputs["prediction"][~refused, 0], pipeline.predict(accepted))
