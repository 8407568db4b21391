"""XGBoost in the graph (conversion/converters/xgboost.py) against XGBoost's own predict.

XGBoost computes in float32: the graph reproduces its float32 input, split conditions,
sequential float32 sums from the base margin and float32 links (glibc's expf emulated),
so every test asserts bit-for-bit equality (``exact=True``).
"""

from __future__ import annotations

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
from predictlib.build.boosters import XGBBoosterClassifier, XGBBoosterRegressor

xgboost = pytest.importorskip("xgboost")
XGBClassifier, XGBRegressor = xgboost.XGBClassifier, xgboost.XGBRegressor
XGBRFClassifier, XGBRFRegressor = xgboost.XGBRFClassifier, xgboost.XGBRFRegressor

#: categorical codes: known ones, and what XGBoost's category conversion makes of others
CODES = (0.0, 1.0, 2.0, 3.0, 5.0, 2.7, -0.5, -0.0, -1.0, 1e10, 2.0**24, np.inf, -np.inf, 40.0, np.nan)


@st.composite
def data(draw: Any) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """:func:`boosting_harness.boosting_data`, and whether it has the categorical column ``k``."""
    X, y = draw(boosting_data())
    return X, y, "k" in X


def probe_frame(model: Any, X: pd.DataFrame, drawn: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Some training rows, the drawn rows, rows on / next to every split condition."""
    frame = model.get_booster().trees_to_dataframe()
    numeric = frame[(frame["Feature"] != "Leaf") & frame["Split"].notna()]
    names = list(X.columns)

    def position(feature: Any) -> int:
        return names.index(feature) if feature in names else int(str(feature).lstrip("f"))

    splits = {position(f): group["Split"].astype(float).tolist() for f, group in numeric.groupby("Feature")}
    return probe_rows(X, splits, drawn, CODES)


def xgb_options(categorical: bool, X: pd.DataFrame) -> dict[str, Any]:
    if not categorical:
        return {}
    types = ["c" if c == "k" else "q" for c in X.columns]
    return {"enable_categorical": True, "feature_types": types, "max_cat_to_onehot": 1}


REGRESSION = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:logistic")
POSITIVE = ("count:poisson", "reg:gamma", "reg:tweedie", "reg:squaredlogerror")


@covers(XGBRegressor, XGBRFRegressor)
@converter_settings(max_examples=25)
@given(
    case=data(),
    objective=st.sampled_from(REGRESSION + POSITIVE),
    forest=st.booleans(),
    options=st.fixed_dictionaries(
        {
            "max_depth": st.integers(1, 5),
            "n_estimators": st.integers(1, 20),
            "booster": st.sampled_from(["gbtree", "dart"]),
        }
    ),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_regressor_matches_xgboost_bit_for_bit(
    case: Any, objective: str, forest: bool, options: dict[str, Any], rows: Any
) -> None:
    X, y, categorical = case
    if objective in POSITIVE:
        y = np.exp(y / 4)
    elif objective == "reg:logistic":
        y = (y > np.median(y)).astype(float)
    cls = XGBRFRegressor if forest else XGBRegressor
    if forest:
        options.pop("booster")
    model = cls(objective=objective, n_jobs=1, random_state=0, **options, **xgb_options(categorical, X))
    quietly(lambda: model.fit(X, y))
    check_model(model, X, probe_frame(model, X, rows), exact=True)


@covers(XGBClassifier, XGBRFClassifier)
@converter_settings(max_examples=25)
@given(
    case=data(),
    n_classes=st.sampled_from([2, 3, 4]),
    forest=st.booleans(),
    options=st.fixed_dictionaries({"max_depth": st.integers(1, 5), "n_estimators": st.integers(1, 15)}),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_classifier_matches_xgboost_bit_for_bit(
    case: Any, n_classes: int, forest: bool, options: dict[str, Any], rows: Any
) -> None:
    X, y, categorical = case
    target = quantile_classes(y, n_classes)
    if len(np.unique(target)) != n_classes:
        return
    cls = XGBRFClassifier if forest else XGBClassifier
    model = cls(n_jobs=1, random_state=0, **options, **xgb_options(categorical, X))
    quietly(lambda: model.fit(X, target))
    check_model(model, X, probe_frame(model, X, rows), exact=True)


# ------------------------------------------------------------------ pandas categories


def category_frames(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    color = rng.choice(
        ["red", "green", "blue", "black", "white", "grey"], n, p=[0.3, 0.3, 0.2, 0.1, 0.07, 0.03]
    )
    size = rng.normal(size=n)
    size[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({"size": size, "color": pd.Categorical(color), "weight": rng.gamma(2.0, 10.0, n)})
    frame.loc[rng.random(n) < 0.05, "color"] = np.nan
    y = np.isin(color, ["red", "blue"]) * 2.0 + np.nan_to_num(size) + 0.1 * rng.normal(size=n)
    return frame, y


@covers(XGBRegressor, XGBClassifier)
@converter_settings(max_examples=8)
@given(seed=st.integers(0, 2**16), n_classes=st.sampled_from([0, 2, 3]), depth=st.integers(1, 5))
def test_pandas_category_columns_take_text(seed: int, n_classes: int, depth: int) -> None:
    """Fitted on a pandas category column (enable_categorical): the graph maps its text to
    the category XGBoost stored; missing and unknown texts are missing values."""
    rng = np.random.default_rng(seed)
    X, y = category_frames(rng, 400)
    options = {"n_estimators": 12, "max_depth": depth, "enable_categorical": True, "n_jobs": 1}
    if n_classes:
        model: Any = XGBClassifier(max_cat_to_onehot=1, **options)
        quietly(lambda: model.fit(X, quantile_classes(y, n_classes)))
    else:
        model = XGBRegressor(**options)
        quietly(lambda: model.fit(X, y))
    T, _ = category_frames(rng, 150)
    text = T.astype({"color": object})
    text.loc[:8, "color"] = ["purple", "Red", "", None, "red ", "grey", "white", "blue", "green"]
    exported = export_pipeline(model, infer_columns(X))
    assert exported.categorical == ["color"]
    check_model(model, X, text, original_frame=as_categories(text, X), exact=True, exported=exported)


# ------------------------------------------------------------------ iterations, threads


def test_best_iteration_is_what_predict_uses() -> None:
    X, y = early_stopping_data()
    model = XGBRegressor(n_estimators=300, learning_rate=0.3, early_stopping_rounds=5, n_jobs=1)
    quietly(lambda: model.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False))
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    T = pd.concat([X[400:], pd.DataFrame([SPECIAL[:3], SPECIAL[3:6]], columns=X.columns)], ignore_index=True)
    check_model(model, X, T, exact=True)


def test_threads_keep_the_float32_sum_close() -> None:
    """On one onnxruntime thread the float32 sums are XGBoost's; on 4, onnxruntime adds
    partial sums of blocks of trees: within a few float32 ulps."""
    rng = np.random.default_rng(8)
    X = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list("abcd"))
    y = np.sin(X["a"]) * 3 + X["b"] * X["c"] + rng.normal(size=2000) * 0.1
    model = quietly(lambda: XGBRegressor(n_estimators=300, max_depth=5, n_jobs=1).fit(X, y))
    exported = export_pipeline(model, infer_columns(X))
    expected = model.predict(X)
    assert np.array_equal(run(exported, X)["prediction"][:, 0], expected)
    parallel = run(exported, X, threads=4)["prediction"][:, 0]
    assert np.allclose(parallel, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ refusals, pipelines


def test_refused_with_the_reason() -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = X["a"] * 2 + X["b"]
    linear = quietly(lambda: XGBRegressor(booster="gblinear", n_estimators=5).fit(X, y))
    with pytest.raises(ExportError, match="gblinear"):
        export_pipeline(linear, infer_columns(X))
    softmax = quietly(
        lambda: XGBClassifier(objective="multi:softmax", n_estimators=3).fit(X, np.digitize(y, [-1, 1]))
    )
    with pytest.raises(ExportError, match="multi:softmax"):
        export_pipeline(softmax, infer_columns(X))
    plain = quietly(lambda: XGBRegressor(n_estimators=3).fit(X.assign(c=1.0), y))
    with pytest.raises(ExportError, match="text column"):
        export_pipeline(plain, infer_columns(X.assign(c="u")))


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_verified_on_held_out_and_generated_records(task: str, tmp_path: Path) -> None:
    """package() verifies 10,000 generated records and the held-out rows through the
    runtime: XGBoost with missing values and categorical splits, inside a pipeline."""
    from feature_engine.encoding import OrdinalEncoder
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(11)
    X, y = category_frames(rng, 1200)
    X = X.astype({"color": object}).fillna({"color": "missing"}).astype({"color": "str"})
    types = ["q", "c", "q"]
    options = {"enable_categorical": True, "feature_types": types, "max_cat_to_onehot": 1, "n_jobs": 1}
    if task == "binary":
        y = (y > np.median(y)).astype(int)
        final: Any = XGBClassifier(n_estimators=40, **options)
    elif task == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
        final = XGBClassifier(n_estimators=25, max_depth=4, **options)
    else:
        final = XGBRegressor(n_estimators=60, objective="reg:gamma", **options)
        y = np.exp(y / 3)
    pipeline = Pipeline(
        [("encode", OrdinalEncoder(encoding_method="arbitrary", unseen="encode")), ("xgb", final)]
    )
    quietly(lambda: pipeline.fit(X[:1000], y[:1000]))
    report = verify_packaged(pipeline, X[:1000], X[1000:], tmp_path, f"xgb_{task}")
    assert report["generated"]["max_abs_error"] == 0.0  # float32 bit for bit
    assert report["held_out"]["max_abs_error"] == 0.0


def test_errors_are_zero_on_extreme_rows() -> None:
    """Huge values become inf in float32, as in XGBoost; tiny ones stay numbers."""
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(500, 2)), columns=["a", "b"])
    y = (X["a"] > 0).astype(int)
    model = quietly(lambda: XGBClassifier(n_estimators=20, n_jobs=1).fit(X, y))
    T = pd.DataFrame({"a": list(SPECIAL), "b": list(reversed(SPECIAL))})
    assert errors(
        run(export_pipeline(model, infer_columns(X)), T)["probabilities"], model.predict_proba(T), True
    ) == (
        0.0,
        0.0,
    )


def test_pandas_categories_verified_by_package(tmp_path: Path) -> None:
    """Fitted on a pandas category column and packaged as the build does (the original
    gets the column with its fitted category dtype, the graph the texts): bit for bit."""
    rng = np.random.default_rng(12)
    X, y = category_frames(rng, 1200)
    model = XGBClassifier(
        n_estimators=30, max_depth=4, enable_categorical=True, max_cat_to_onehot=1, n_jobs=1
    )
    quietly(lambda: model.fit(X[:1000], (y[:1000] > np.median(y)).astype(int)))
    report = verify_packaged(model, X[:1000], X[1000:], tmp_path, "xgb_categories")
    assert report["generated"]["max_abs_error"] == 0.0


# ------------------------------------------------------------------ raw boosters (xgb.train)


def train(task: str, X: pd.DataFrame, y: np.ndarray, categorical: bool, rounds: int, **params: Any) -> Any:
    """``xgb.train`` for ``task`` on a target derived from ``y`` (classes 0 .. k-1)."""
    options: dict[str, Any] = {"nthread": 1, "seed": 0, **params}
    target = y
    if task == "regression":
        options.setdefault("objective", "reg:squarederror")
    else:
        k = 2 if task == "binary" else 3
        target = quantile_classes(y, k)
        options.update(
            {"objective": "binary:logistic"} if k == 2 else {"objective": "multi:softprob", "num_class": k}
        )
    kw = xgb_options(categorical, X)
    if categorical:
        options["max_cat_to_onehot"] = kw.pop("max_cat_to_onehot")
    dmatrix = xgboost.DMatrix(X, target, **kw)
    return quietly(lambda: xgboost.train(options, dmatrix, num_boost_round=rounds))


@covers(XGBBoosterRegressor, XGBBoosterClassifier)
@converter_settings(max_examples=20)
@given(
    case=data(),
    task=st.sampled_from(["regression", "binary", "multiclass"]),
    rounds=st.integers(1, 12),
    depth=st.integers(1, 5),
    kind=st.sampled_from(["gbtree", "dart"]),
    rows=st.lists(st.lists(values(), min_size=4, max_size=4), max_size=12),
)
def test_raw_booster_matches_xgboost_bit_for_bit(
    case: Any, task: str, rounds: int, depth: int, kind: str, rows: Any
) -> None:
    """A ``xgb.train`` booster wrapped by ``booster()`` (task from its objective): the graph
    against the wrapper bit for bit, and the wrapper against ``Booster.inplace_predict``."""
    X, y, categorical = case
    raw = train(task, X, y, categorical, rounds, max_depth=depth, booster=kind)
    model = booster(raw)
    assert isinstance(model, XGBBoosterRegressor if task == "regression" else XGBBoosterClassifier)
    T = probe_frame(model, X, rows)
    check_model(model, X, T, exact=True)
    check_booster_wrapper(model, task, T, raw.inplace_predict(T))
    if kind == "gbtree":  # the DMatrix path gives the same float32 sums (DMatrix refuses float32 inf)
        with np.errstate(over="ignore"):
            finite = T[np.isfinite(T.fillna(0.0).to_numpy().astype(np.float32)).all(axis=1)]
        dmatrix = xgboost.DMatrix(
            finite, **{k: v for k, v in xgb_options(categorical, X).items() if k != "max_cat_to_onehot"}
        )
        assert np.array_equal(raw.predict(dmatrix), raw.inplace_predict(finite), equal_nan=True)


def test_raw_boosters_in_a_pipeline_and_bare_are_packaged(tmp_path: Path) -> None:
    """A ``xgb.train`` booster as the last step of a Pipeline (read as ``booster(raw)``),
    wrapped with its classes, and bare: ``package()`` verifies each (bit for bit)."""
    from feature_engine.encoding import OrdinalEncoder
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(13)
    X, y = category_frames(rng, 1000)
    X = X.astype({"color": object}).fillna({"color": "missing"}).astype({"color": "str"})
    encode = OrdinalEncoder(encoding_method="arbitrary", unseen="encode").fit(X[:800])
    Z = encode.transform(X)
    gamma = train("regression", Z[:800], np.exp(y[:800] / 3), False, 30, objective="reg:gamma", max_depth=4)
    with pytest.raises(TypeError, match="not an estimator"):  # scikit-learn 1.9 itself
        Pipeline([("encode", encode), ("xgb", gamma)]).predict(X)
    report = verify_packaged(
        Pipeline([("encode", encode), ("xgb", gamma)]), X[:800], X[800:], tmp_path, "xraw_a"
    )
    assert report["generated"]["max_abs_error"] == 0.0
    three = train("multiclass", Z[:800], y[:800], False, 15, max_depth=3)
    pipeline = Pipeline([("encode", encode), ("xgb", booster(three, classes=["low", "mid", "high"]))])
    assert set(pipeline.predict(X[800:])) <= {"low", "mid", "high"}
    assert (
        verify_packaged(pipeline, X[:800], X[800:], tmp_path, "xraw_b")["generated"]["max_abs_error"] == 0.0
    )
    numeric = X[["size", "weight"]]
    two = train("binary", numeric[:800], y[:800], False, 20, max_depth=3)
    assert (
        verify_packaged(two, numeric[:800], numeric[800:], tmp_path, "xraw_c")["held_out"]["max_abs_error"]
        == 0.0
    )


def test_raw_booster_uses_all_its_trees() -> None:
    """A raw booster predicts with all its trees (``best_iteration`` is not applied, as in
    ``Booster.inplace_predict``); ``booster[: best + 1]`` keeps the best ones."""
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    y = X["a"].to_numpy() + rng.normal(size=400)
    raw = quietly(
        lambda: xgboost.train(
            {"eta": 0.5, "nthread": 1},
            xgboost.DMatrix(X[:300], y[:300]),
            200,
            evals=[(xgboost.DMatrix(X[300:], y[300:]), "valid")],
            early_stopping_rounds=3,
            verbose_eval=False,
        )
    )
    assert raw.best_iteration + 1 < raw.num_boosted_rounds()
    for model in (raw, raw[: raw.best_iteration + 1]):
        got = run(export_pipeline(model, infer_columns(X)), X)["prediction"][:, 0]
        assert errors(got, model.inplace_predict(X), exact=True) == (0.0, 0.0)
    with pytest.raises(ValueError, match="1 output"):
        booster(train("binary", X, y, False, 2), task="multiclass")
