"""CatBoost in the graph (conversion/converters/catboost.py) against CatBoost's own predict.

CatBoost sums its oblivious trees' leaves in float64, one tree after the other: on one
onnxruntime thread raw outputs are equal bit for bit; links (exp, sigmoid, softmax) are
within a few ulps. Categorical features are refused at export (CatBoost keeps only hashes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from boosting_harness import SPECIAL, check_model, near, quietly, values, verify_packaged
from converter_harness import converter_settings, covers
from hypothesis import given
from hypothesis import strategies as st

from predictlib.build import ExportError, export_pipeline, infer_columns

catboost = pytest.importorskip("catboost")
CatBoostClassifier, CatBoostRegressor = catboost.CatBoostClassifier, catboost.CatBoostRegressor


@st.composite
def data(draw: Any) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(80, 250))
    frame = {}
    for j in range(draw(st.integers(1, 3))):
        x = rng.normal(size=n) * draw(st.sampled_from([1.0, 1e-3, 1e6]))
        x[rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.3]))] = np.nan
        frame[f"x{j}"] = x
    X = pd.DataFrame(frame)
    scaled = X.to_numpy() / np.nanmax(np.abs(X.to_numpy()), axis=0).clip(1e-300)
    y = np.nan_to_num(scaled).sum(axis=1) + 0.3 * rng.normal(size=n) + 2 * np.isnan(X.iloc[:, 0].to_numpy())
    return X, y


def probe_frame(model: Any, X: pd.DataFrame, drawn: list[list[float]]) -> pd.DataFrame:
    """Training rows, the drawn rows, rows on / next to every border."""
    rows = [X.iloc[i].to_numpy(copy=True) for i in range(0, len(X), 3)]
    borders = model.get_borders()
    for f, values_ in borders.items():
        for v in near(list(values_)):
            row = X.iloc[len(rows) % len(X)].to_numpy(copy=True)
            row[int(f)] = v
            rows.append(row)
    rows += [np.array(r[: len(X.columns)], dtype=np.float64) for r in drawn]
    return pd.DataFrame(np.array(rows), columns=X.columns)


@covers(CatBoostRegressor)
@converter_settings(max_examples=15)
@given(
    case=data(),
    loss=st.sampled_from(
        ["RMSE", "MAE", "Quantile:alpha=0.7", "Huber:delta=0.5", "Poisson", "Tweedie:variance_power=1.3"]
    ),
    options=st.fixed_dictionaries(
        {
            "depth": st.integers(1, 5),
            "iterations": st.integers(1, 20),
            "nan_mode": st.sampled_from(["Min", "Max"]),
        }
    ),
    rows=st.lists(st.lists(values(), min_size=3, max_size=3), max_size=10),
)
def test_regressor_matches_catboost(case: Any, loss: str, options: dict[str, Any], rows: Any) -> None:
    X, y = case
    if loss.startswith(("Poisson", "Tweedie")):
        y = np.exp(y / 4)
    model = CatBoostRegressor(loss_function=loss, verbose=0, thread_count=1, random_seed=0, **options)
    quietly(lambda: model.fit(X, y))
    exact = not loss.startswith(("Poisson", "Tweedie"))
    check_model(model, X, probe_frame(model, X, rows), exact=exact)


@covers(CatBoostClassifier)
@converter_settings(max_examples=15)
@given(
    case=data(),
    n_classes=st.sampled_from([2, 3]),
    labels=st.sampled_from(["int", "str"]),
    options=st.fixed_dictionaries({"depth": st.integers(1, 5), "iterations": st.integers(1, 15)}),
    rows=st.lists(st.lists(values(), min_size=3, max_size=3), max_size=10),
)
def test_classifier_matches_catboost(
    case: Any, n_classes: int, labels: str, options: dict[str, Any], rows: Any
) -> None:
    X, y = case
    classes = np.array(["no", "yes", "maybe"] if labels == "str" else [-5, 0, 7])[:n_classes]
    target = classes[np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))]
    if len(np.unique(target)) != n_classes:
        return
    model = CatBoostClassifier(verbose=0, thread_count=1, random_seed=0, **options)
    quietly(lambda: model.fit(X, target))
    check_model(model, X, probe_frame(model, X, rows))


def test_categorical_features_are_refused_with_the_reason() -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=200), "c": rng.choice(["u", "v", "w"], 200)})
    y = X["a"] + (X["c"] == "u")
    model = quietly(
        lambda: CatBoostRegressor(iterations=5, verbose=0, cat_features=["c"], one_hot_max_size=4).fit(X, y)
    )
    with pytest.raises(ExportError, match="hashes of the category texts"):
        export_pipeline(model, infer_columns(X))


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_verified_on_held_out_and_generated_records(task: str, tmp_path: Path) -> None:
    """package() verifies 10,000 generated records and the held-out rows through the
    runtime: CatBoost with missing values behind an ordinal encoder, in a pipeline."""
    from feature_engine.encoding import OrdinalEncoder
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(11)
    n = 1200
    X = pd.DataFrame(
        {
            "size": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "color": rng.choice(["red", "green", "blue", "black"], n),
            "weight": rng.gamma(2.0, 10.0, n),
        }
    ).astype({"color": "str"})
    y = (X["color"] == "red") * 2.0 + X["size"].fillna(0) + X["weight"] / 20 + 0.1 * rng.normal(size=n)
    options = {"iterations": 40, "depth": 4, "verbose": 0, "thread_count": 1, "random_seed": 0}
    if task == "binary":
        y = np.where(y > np.median(y), "high", "low")
        final: Any = CatBoostClassifier(**options)
    elif task == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
        final = CatBoostClassifier(**options)
    else:
        final = CatBoostRegressor(**options)
    pipeline = Pipeline(
        [("encode", OrdinalEncoder(encoding_method="arbitrary", unseen="encode")), ("cb", final)]
    )
    quietly(lambda: pipeline.fit(X[:1000], y[:1000]))
    report = verify_packaged(pipeline, X[:1000], X[1000:], tmp_path, f"cb_{task}")
    if task == "regression":
        assert report["generated"]["max_abs_error"] == 0.0


def test_extreme_values() -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    y = X["a"] + X["b"] ** 2
    model = quietly(lambda: CatBoostRegressor(iterations=20, depth=3, verbose=0, thread_count=1).fit(X, y))
    T = pd.DataFrame({"a": list(SPECIAL), "b": list(reversed(SPECIAL))})
    check_model(model, X, T, exact=True)
