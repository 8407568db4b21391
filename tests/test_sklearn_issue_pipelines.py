"""The pipelines of issue 14, on the house-prices data, as a user writes them with
scikit-learn's own preprocessing: each exports, its artifact verifies within the
tolerances on the held-out rows and on 10,000 generated records (the build's
``compare`` / ``generate_records``: missing values, extreme numbers, unseen
categories; refused rows confirmed against the original), and predicts in a runtime
process where scikit-learn, pandas and skl2onnx cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_engine.imputation import CategoricalImputer, MeanMedianImputer
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)

import predictlib
from predictlib._artifact import MANIFEST_FILE
from predictlib.build import export_pipeline, infer_columns
from predictlib.build.packaging import graph_files
from predictlib.build.stages.manifest import dumps, make_manifest
from predictlib.build.stages.verify import compare, generate_records, records_from_frame

pytestmark = pytest.mark.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "models" / "house_prices" / "data" / "train.csv"
NUMBERS = make_column_selector(dtype_include="number")
TEXT = make_column_selector(dtype_exclude="number")
#: a few numeric columns (PolynomialFeatures of all 36 would make 700 columns)
SOME = ["LotArea", "GrLivArea", "TotalBsmtSF", "OverallQual", "YearBuilt", "GarageArea", "LotFrontage"]


def _encoded(encoder: Any) -> Pipeline:
    """feature-engine's CategoricalImputer (and MeanMedianImputer) -> a scikit-learn encoder."""
    return Pipeline(
        [
            ("impute_text", CategoricalImputer(imputation_method="frequent")),
            ("impute_numbers", MeanMedianImputer()),
            ("encode", ColumnTransformer([("enc", encoder, TEXT)], remainder=StandardScaler())),
            ("ridge", Ridge(alpha=10.0)),
        ]
    )


def _numeric(*steps: Any, columns: Any = NUMBERS) -> Pipeline:
    return Pipeline(
        [
            ("numbers", ColumnTransformer([("n", make_pipeline(*steps), columns)])),
            ("ridge", Ridge(alpha=10.0)),
        ]
    )


PIPELINES: dict[str, Callable[[], Any]] = {
    "column_transformer_one_hot": lambda: Pipeline(
        [
            (
                "ct",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
                        (
                            "cat",
                            make_pipeline(
                                SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore"),
                            ),
                            TEXT,
                        ),
                    ]
                ),
            ),
            ("ridge", Ridge(alpha=10.0)),
        ]
    ),
    "feature_engine_then_one_hot": lambda: _encoded(OneHotEncoder(handle_unknown="ignore")),
    "feature_engine_then_ordinal": lambda: _encoded(
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    ),
    "feature_engine_then_target": lambda: _encoded(TargetEncoder(random_state=0)),
    "power_transformer": lambda: _numeric(SimpleImputer(), PowerTransformer()),
    "polynomial_features": lambda: _numeric(
        SimpleImputer(), PolynomialFeatures(2), StandardScaler(), columns=SOME
    ),
    "kbins_one_hot": lambda: _numeric(
        SimpleImputer(), KBinsDiscretizer(encode="onehot-dense", quantile_method="averaged_inverted_cdf")
    ),
    "spline_transformer": lambda: _numeric(SimpleImputer(), SplineTransformer(), columns=SOME),
    "knn_imputer": lambda: _numeric(KNNImputer(), StandardScaler()),
}


@pytest.fixture(scope="module")
def house() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    frame = pd.read_csv(DATA).drop(columns=["Id"])
    y = np.log(frame.pop("SalePrice"))
    X_train, X_test, y_train, _ = train_test_split(frame, y, test_size=0.2, random_state=0)
    return X_train, X_test, y_train


def _artifact(model: Any, X_train: pd.DataFrame, folder: Path) -> Any:
    """The exported graph in an artifact folder the runtime loads (not sealed: the
    packaging's later stages are tested with the bundled models)."""
    columns = infer_columns(X_train)
    exported = export_pipeline(model, columns, name="issue14")
    graphs = graph_files(exported)
    manifest = make_manifest(
        info={
            "name": "issue14",
            "version": "0.0.0",
            "description": "",
            "output_unit": "",
            "hyperparameters": {},
        },
        exported=exported,
        model_bytes=graphs["model.onnx"],
        training={"train_rows": len(X_train)},
        metrics={"held_out": {}, "acceptance": {}},
        equivalence=None,
    )
    folder.mkdir(parents=True)
    for file, data in graphs.items():
        (folder / file).write_bytes(data)
    (folder / MANIFEST_FILE).write_bytes(dumps(manifest))
    return columns


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PIPELINES))
def test_issue_pipeline_exports_verifies_and_runs(
    name: str, house: tuple[pd.DataFrame, pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X_train, X_test, y_train = house
    model = PIPELINES[name]().fit(X_train, y_train)
    folder = tmp_path / name
    columns = _artifact(model, X_train, folder)
    runtime = predictlib.load(folder)
    held_out = compare(model, runtime, records_from_frame(X_test), columns)
    assert not held_out.failures and held_out.accepted == len(X_test), held_out.failures[:5]
    generated = compare(model, runtime, generate_records(X_train, columns, 10_000, seed=0), columns)
    assert not generated.failures, generated.failures[:5]
    assert generated.rows == 10_000 and generated.accepted > 5_000
    # the runtime alone: no scikit-learn, pandas or skl2onnx in the predicting process
    rows = records_from_frame(X_test.head(5))
    script = (
        "import json, sys\n"
        "for blocked in ('sklearn', 'pandas', 'skl2onnx', 'feature_engine'):\n"
        "    sys.modules[blocked] = None\n"
        "import predictlib\n"
        f"model = predictlib.load({str(folder)!r})\n"
        "rows = json.loads(sys.stdin.read())\n"
        "print(json.dumps([float(v) for v in model.predict(rows)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(rows, default=float), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    got = np.array(json.loads(done.stdout))
    assert np.allclose(got, model.predict(X_test.head(5)), rtol=1e-9, atol=1e-9)
