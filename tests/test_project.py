"""Model folders outside the repository (``predictlib build PATH``) and the arguments of
``predictlib.build.package``: what they build, and the errors they give."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

import predictlib
from predictlib.build import PackagingError, ProjectError, load_project, package
from predictlib.build.cli import main as build_main
from predictlib.build.project import find_projects

PIPELINE = """
import numpy as np
from feature_engine.imputation import MeanMedianImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from .steps import Doubler  # a sibling module: the folder is imported as a package


def build_pipeline(config, X_train):
    return Pipeline([("impute", MeanMedianImputer()), ("double", Doubler(["a"])), ("ridge", Ridge())])
"""

STEPS = """
from sklearn.base import BaseEstimator, TransformerMixin

from predictlib.build import FrameConverter, numeric_columns, register_converter


class Doubler(TransformerMixin, BaseEstimator):
    def __init__(self, variables):
        self.variables = variables

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = X.copy()
        X[self.variables] = X[self.variables] * 2
        return X


@register_converter
class DoublerConverter(FrameConverter):
    transformer = Doubler

    def plan(self, model, columns):
        return self.in_place(columns, numeric_columns(model, columns, model.variables))

    def convert(self, ctx, model):
        ctx.write(ctx.mul(ctx.gather(model.variables), 2.0))
"""

CONFIG = """
[model]
name = "{name}"
version = "0.3.0"
task = "regression"
description = "a model folder outside the repository"

[data]
file = "data/rows.csv"
target = "y"

[training]
seed = 1
test_size = 0.25

[acceptance]
min_r2 = 0.5
"""


def write_project(folder: Path, name: str = "outside", config: str = CONFIG) -> Path:
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame.loc[::9, "a"] = np.nan
    frame["y"] = 3 * frame["a"].fillna(0) - frame["b"] + rng.normal(0, 0.1, 200)
    frame.to_csv(folder / "data" / "rows.csv", index=False)
    (folder / "model.toml").write_text(textwrap.dedent(config.format(name=name)))
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "steps.py").write_text(STEPS)
    return folder


@pytest.mark.slow
def test_a_folder_anywhere_builds_with_one_command(tmp_path: Path) -> None:
    project = write_project(tmp_path / "somewhere" / "outside")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "predictlib",
            "build",
            str(project),
            "--dist",
            str(tmp_path / "dist"),
            "--artifacts",
            str(tmp_path / "art"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    wheel = tmp_path / "dist" / "predictlib_outside-0.3.0-py3-none-any.whl"
    model = predictlib.load(wheel)
    assert model.version == "0.3.0" and model.manifest["metrics"]["held_out"]["r2"] > 0.5
    assert model.manifest["release"]["status"] == "first version"  # no releases/ folder yet
    assert isinstance(model.predict({"a": 1.0, "b": 0.0}), float)


def test_project_errors_name_the_file_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"no model\.toml"):
        load_project(tmp_path)
    folder = write_project(tmp_path / "p", config=CONFIG.replace('task = "regression"', 'task = "ranking"'))
    with pytest.raises(ProjectError, match=r"model.task 'ranking'"):
        load_project(folder)
    bad = write_project(tmp_path / "q", name="Not A Name")
    with pytest.raises(ProjectError, match="lower-case letters"):
        load_project(bad)
    missing = write_project(tmp_path / "r", config=CONFIG.replace("[training]\nseed = 1\n", "[training]\n"))
    with pytest.raises(ProjectError, match=r"\[training\] lacks seed"):
        load_project(missing)
    with pytest.raises(ProjectError, match="neither a model folder"):
        find_projects(tmp_path / "p" / "data")
    assert build_main([str(tmp_path / "nowhere")]) == 2


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    y = pd.Series(X["a"] * 2 + X["b"])
    return Pipeline([("ridge", Ridge())]).fit(X, y), X, y


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "My-Model"}, "a model name is lower-case"),
        ({"version": "1.0"}, "give MAJOR.MINOR.PATCH"),
        ({"generated_records": 500}, "at least 10,000 generated records"),
        ({"y_test": [1.0, 2.0]}, "y_test without X_test"),
        ({"acceptance": {"max_rmse": 1.0}}, "needs y_test"),
    ],
)
def test_package_arguments_are_checked_before_any_work(
    fitted: tuple[Pipeline, pd.DataFrame, pd.Series], tmp_path: Path, change: dict, message: str
) -> None:
    pipeline, X, _ = fitted
    arguments = {"name": "ok", "version": "1.0.0", "out": tmp_path, **change}
    with pytest.raises(PackagingError, match=message):
        package(pipeline, X, **arguments)
    assert not any(tmp_path.iterdir()), "nothing is written when the arguments are refused"


def test_package_refuses_unfitted_and_foreign_inputs(
    fitted: tuple[Pipeline, pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    pipeline, X, y = fitted
    with pytest.raises(PackagingError, match="is not fitted"):
        package(Pipeline([("ridge", Ridge())]), X, name="m", version="1.0.0", out=tmp_path)
    with pytest.raises(PackagingError, match="give a pandas DataFrame"):
        package(pipeline, X.to_numpy(), name="m", version="1.0.0", out=tmp_path)
    with pytest.raises(PackagingError, match="fitted on columns"):
        package(pipeline, X[["b", "a"]], name="m", version="1.0.0", out=tmp_path)
    with pytest.raises(PackagingError, match="X_test's columns"):
        package(pipeline, X, name="m", version="1.0.0", X_test=X[["a"]], out=tmp_path)
    with pytest.raises(PackagingError, match="y_test has 3 values"):
        package(pipeline, X, name="m", version="1.0.0", X_test=X, y_test=y[:3], out=tmp_path)


@pytest.mark.slow
def test_package_misses_acceptance_with_the_metric_named(
    fitted: tuple[Pipeline, pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    from predictlib.build.stages.metrics import AcceptanceError

    pipeline, X, y = fitted
    with pytest.raises(AcceptanceError, match=r"held-out r2 .* misses the acceptance min_r2 = 1.5"):
        package(
            pipeline,
            X,
            name="m",
            version="1.0.0",
            X_test=X,
            y_test=y,
            acceptance={"min_r2": 1.5},
            out=tmp_path,
        )


@pytest.mark.parametrize("estimator", ["forest_regressor", "forest_classifier", "logistic"])
def test_a_bare_estimator_packages_with_the_pipeline_guards(tmp_path: Path, estimator: str) -> None:
    """Not inside a Pipeline: the same input guards (NaN / inf refused as scikit-learn
    refuses them) and the same (label, probabilities) outputs as the last step of one."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = X["a"] + X["b"]
    model, target = {
        "forest_regressor": (RandomForestRegressor(n_estimators=5, random_state=0), y),
        "forest_classifier": (
            RandomForestClassifier(n_estimators=5, random_state=0),
            (y > 0).map({True: "hi", False: "lo"}),
        ),
        "logistic": (LogisticRegression(), (y > 0).astype(int)),
    }[estimator]
    model.fit(X, target)
    result = package(model, X, name="bare", version="1.0.0", X_test=X[:50], y_test=target[:50], out=tmp_path)
    assert result.equivalence["generated"]["refused"] > 0  # NaN / inf records, confirmed by the original
    with pytest.raises(predictlib.InputError, match="'a'"):
        predictlib.load(result.folder).predict({"a": float("inf"), "b": 0.0})
