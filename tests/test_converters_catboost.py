"""CatBoost in the graph (conversion/converters/catboost.py) against CatBoost's own predict.

CatBoost sums its oblivious trees' leaves in float64, one tree after the other: on one
onnxruntime thread raw outputs are equal bit for bit; links (exp, sigmoid, softmax) are
within a few ulps. One-hot categorical features: the training texts hashed at export by
CatBoost itself; CTR features and categories given as numbers are refused.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from boosting_harness import (
    SPECIAL,
    boosting_data,
    check_model,
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

from predictlib.build import ExportError, export_pipeline, infer_columns

catboost = pytest.importorskip("catboost")
CatBoostClassifier, CatBoostRegressor = catboost.CatBoostClassifier, catboost.CatBoostRegressor


@st.composite
def data(draw: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`boosting_harness.boosting_data` without a categorical column."""
    return draw(boosting_data(codes=False))


def probe_frame(model: Any, X: pd.DataFrame, drawn: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Training rows, the drawn rows, rows on / next to every border."""
    return probe_rows(X, {int(f): list(borders) for f, borders in model.get_borders().items()}, drawn)


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
    target = classes[quantile_classes(y, n_classes)]
    if len(np.unique(target)) != n_classes:
        return
    model = CatBoostClassifier(verbose=0, thread_count=1, random_seed=0, **options)
    quietly(lambda: model.fit(X, target))
    check_model(model, X, probe_frame(model, X, rows))


#: category texts the one-hot tests draw from: unicode, spaces, empty, number-like
TEXTS = ("red", "green", "blue", "é", "日本", "", " a b ", "1", "None", 'q"\\n')
#: texts never seen in training (near misses of the training texts included)
UNSEEN = ("Red", "red ", "gre", "nan", "0", "x" * 40, "ü")


@st.composite
def categorical_data(draw: Any) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Numeric columns (with NaN) and 1-2 text columns of 2-5 categories."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(80, 200))
    frame: dict[str, Any] = {}
    y = 0.2 * rng.normal(size=n)
    for j in range(draw(st.integers(0, 2))):
        x = rng.normal(size=n)
        y += x
        x[rng.random(n) < draw(st.sampled_from([0.0, 0.2]))] = np.nan
        frame[f"x{j}"] = x
    cats = []
    for j in range(draw(st.integers(1, 2))):
        texts = draw(st.lists(st.sampled_from(TEXTS), min_size=2, max_size=5, unique=True))
        column = rng.choice(np.array(texts, dtype=object), n)
        y += np.array([texts.index(v) for v in column], dtype=float) * (1.0 if j == 0 else -0.7)
        frame[f"c{j}"] = column
        cats.append(f"c{j}")
    names = list(frame)
    order = draw(st.permutations(names))  # categorical columns anywhere among the numeric ones
    return pd.DataFrame(frame)[list(order)], y, cats


def _probe(X: pd.DataFrame, cats: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """Training rows, then rows whose categories are unseen texts."""
    unseen = X.sample(n=min(len(X), 30), random_state=int(rng.integers(1 << 30)), replace=False).copy()
    for c in cats:
        unseen[c] = rng.choice(np.array(UNSEEN + TEXTS, dtype=object), len(unseen))
    return pd.concat([X, unseen], ignore_index=True)


def _assert_missing_refused(model: Any, X: pd.DataFrame, cats: list[str]) -> None:
    """Rows with a missing category: CatBoost raises on each, the graph refuses exactly those."""
    exported = export_pipeline(model, infer_columns(X), X_train=X)
    probe = X.iloc[:6].copy().astype({c: object for c in cats})
    probe.loc[probe.index[0], cats[0]] = None
    probe.loc[probe.index[3], cats[-1]] = np.nan
    refused = run(exported, probe)["refusals"].any(axis=1)
    for i in range(len(probe)):
        row = probe.iloc[[i]]
        if i in (0, 3):
            with pytest.raises(Exception):  # noqa: B017 - CatBoost's own error types vary
                model.predict(row)
        else:
            quietly(lambda row=row: model.predict(row))
    assert refused.tolist() == [i in (0, 3) for i in range(len(probe))]


@covers(CatBoostRegressor, CatBoostClassifier)
@converter_settings(max_examples=25)
@given(
    case=categorical_data(),
    task=st.sampled_from(["regression", "binary", "multiclass"]),
    options=st.fixed_dictionaries({"depth": st.integers(1, 4), "iterations": st.integers(1, 12)}),
    seed=st.integers(0, 2**16),
)
def test_one_hot_categories_match_catboost(case: Any, task: str, options: dict[str, Any], seed: int) -> None:
    """One-hot categorical features (texts hashed at export from the training frame) with
    numeric ones: training rows and unseen texts give CatBoost's predictions, the regressor
    bit for bit; a missing category is refused where CatBoost raises."""
    X, y, cats = case
    common = {"verbose": 0, "thread_count": 1, "random_seed": 0, "cat_features": cats, "one_hot_max_size": 6}
    if task == "regression":
        model: Any = CatBoostRegressor(**common, **options)
        target: Any = y
    else:
        edges = np.quantile(y, [0.5] if task == "binary" else [0.33, 0.66])
        target = np.array(["lo", "mid", "hi"])[np.digitize(y, edges)]
        if len(np.unique(target)) != (2 if task == "binary" else 3):
            return
        model = CatBoostClassifier(**common, **options)
    quietly(lambda: model.fit(X, target))
    exported = export_pipeline(model, infer_columns(X), X_train=X)
    probe = _probe(X, cats, np.random.default_rng(seed))
    check_model(model, X, probe, exported=exported, exact=task == "regression")
    _assert_missing_refused(model, X, cats)


def test_ctr_categories_are_refused_with_the_reason() -> None:
    """More categories than one_hot_max_size: CatBoost's CTRs, refused naming the step,
    the class, the feature and what to do."""
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=300), "city": rng.choice(list("uvwxyz"), 300)})
    y = X["a"] + (X["city"] == "u")
    pipeline = Pipeline(
        [("cb", CatBoostRegressor(iterations=5, verbose=0, cat_features=["city"], one_hot_max_size=2))]
    )
    quietly(lambda: pipeline.fit(X, y))
    with pytest.raises(
        ExportError, match=r"step 'cb' CatBoostRegressor: cat_features: .*\['city'\].*CTR"
    ) as e:
        export_pipeline(pipeline, infer_columns(X), X_train=X)
    assert "one_hot_max_size" in str(e.value)


def test_numeric_categories_and_missing_training_frame_are_refused() -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=200), "k": rng.choice([3, 5, 7], 200)})
    y = X["a"] + (X["k"] == 5)
    model = quietly(
        lambda: CatBoostRegressor(iterations=5, verbose=0, cat_features=["k"], one_hot_max_size=4).fit(X, y)
    )
    with pytest.raises(ExportError, match=r"\['k'\] are numbers.*astype\(str\)"):
        export_pipeline(model, infer_columns(X), X_train=X)
    X = X.astype({"k": str})
    model = quietly(
        lambda: CatBoostRegressor(iterations=5, verbose=0, cat_features=["k"], one_hot_max_size=4).fit(X, y)
    )
    with pytest.raises(ExportError, match="needs the frame the model was fitted on"):
        export_pipeline(model, infer_columns(X))
    other = X.assign(k=X["k"].replace({"5": "9"}))  # not the frame it was fitted on
    with pytest.raises(ExportError, match="not among the texts of the training frame"):
        export_pipeline(model, infer_columns(X), X_train=other)


def test_category_hashes_are_catboosts() -> None:
    """The hashes computed at export are the values CatBoost's one-hot splits store."""
    from predictlib.build.converters.catboost import category_hashes

    X = pd.DataFrame({"c": list(TEXTS) * 20})
    y = np.arange(len(X)) % 7 + 3.0 * (X["c"] == "é")
    model = quietly(
        lambda: CatBoostRegressor(
            iterations=30, depth=4, verbose=0, cat_features=["c"], one_hot_max_size=20
        ).fit(X, y)
    )
    data = json.loads(_json(model))
    split_values = {
        int(s["value"])
        for t in data["oblivious_trees"]
        for s in t["splits"]
        if s["split_type"] == "OneHotFeature"
    }
    hashes = category_hashes(TEXTS)
    assert set(hashes) == set(TEXTS)
    assert split_values and split_values <= set(hashes.values())


def _json(model: Any) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.json"
        model.save_model(str(path), format="json")
        return path.read_text()


def test_one_hot_in_a_packaged_pipeline(tmp_path: Path) -> None:
    """package() through the runtime: a feature-engine imputer, then CatBoost with a one-hot
    text column; held-out rows with unseen texts, generated records with missing ones
    (refused by the artifact where CatBoost raises, confirmed record by record)."""
    from feature_engine.imputation import MeanMedianImputer
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(12)
    n = 700
    X = pd.DataFrame(
        {
            "size": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "color": rng.choice(["red", "green", "blue", "é"], n).astype(object),
            "weight": rng.gamma(2.0, 10.0, n),
        }
    )
    y = (X["color"] == "red") * 2.0 - (X["color"] == "é") + X["size"].fillna(0) + 0.1 * rng.normal(size=n)
    X_test = X[600:].copy()
    X_test.loc[X_test.index[::7], "color"] = "purple"
    model = CatBoostClassifier(
        iterations=30,
        depth=4,
        verbose=0,
        thread_count=1,
        random_seed=0,
        cat_features=["color"],
        one_hot_max_size=4,
    )
    pipeline = Pipeline([("impute", MeanMedianImputer(variables=["size"])), ("cb", model)])
    quietly(lambda: pipeline.fit(X[:600], np.digitize(y[:600], [0.0, 1.5])))
    report = verify_packaged(pipeline, X[:600], X_test, tmp_path, "cb_onehot")
    assert report["generated"]["refused"] > 0  # records with a missing color: CatBoost raises too


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


def test_labels_follow_the_raw_scores() -> None:
    """CatBoost's label is ``raw > 0`` (binary) and the first maximum of the raw scores
    (multiclass), not of the probabilities: a raw score of 1e-20 gives p = 0.5 and class 1,
    scores one ulp apart give equal probabilities and the larger score's class."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120)})
    for classes, leaves in (
        (2, [[1e-20, -1e-20]]),
        (3, [[-0.31999999999999973, 0.16000000000000017, 0.1600000000000002], [0.0, 0.0, 0.0]]),
    ):
        y = quantile_classes(X["a"], classes)
        model = quietly(
            lambda y=y: CatBoostClassifier(iterations=1, depth=1, verbose=0, thread_count=1).fit(X, y)
        )
        data = json.loads(_json(model))
        data["oblivious_trees"][0]["leaf_values"] = [v for leaf in leaves for v in leaf]
        data["scale_and_bias"] = [1.0, [0.0] * (1 if classes == 2 else classes)]
        edited = CatBoostClassifier()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "edited.json"
            path.write_text(json.dumps(data))
            edited.load_model(str(path), format="json")
        check_model(edited, X, X)
