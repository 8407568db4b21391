"""models/ames: the ames-model course package's pipeline ending in LightGBM, with three
custom transformers converted through the public extension API (models/ames/transformers.py)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

import predictlib
from predictlib.build.project import load_project
from predictlib.build.testing import check_converter

AMES = Path(__file__).resolve().parents[1] / "models" / "ames"
pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def transformers() -> ModuleType:
    """models/ames/transformers.py, imported as the project loader imports the folder."""
    module = load_project(AMES).module()
    return importlib.import_module(f"{module.__package__}.transformers")


SAMPLE = pd.DataFrame(
    {
        "PoolArea": [0.0, 512.0, 0.0, 0.0, 648.0, 0.0],
        "GarageYrBlt": [2003.0, None, 2001.0, None, 2000.0, 1993.0],
        "YearBuilt": [2003, 1976, 2001, 1915, 2000, 1993],
        "FullBath": [2, 2, 2, 1, 2, 1],
        "HalfBath": [1, 0, 1, 0, 1, 1],
        "TotalBsmtSF": [856.0, 1262.0, 920.0, 756.0, 1145.0, 0.0],
        "1stFlrSF": [856.0, 1262.0, 920.0, 961.0, 1145.0, 796.0],
        "Street": ["Pave", "Pave", "Grvl", "Pave", "Pave", "Pave"],
    }
)


def test_zero_binariser(transformers: ModuleType) -> None:
    check_converter(
        transformers.ZeroBinariser(variables=["PoolArea", "TotalBsmtSF"]), SAMPLE, max_examples=30
    )


def test_fill_from_column(transformers: ModuleType) -> None:
    check_converter(
        transformers.FillFromColumn(target="GarageYrBlt", source="YearBuilt"), SAMPLE, max_examples=30
    )


def test_feature_sums_add_in_pythons_order(transformers: ModuleType) -> None:
    sums = {"Baths": {"FullBath": 1.0, "HalfBath": 0.5}, "SF": {"TotalBsmtSF": 1.0, "1stFlrSF": 1.0}}
    check_converter(transformers.FeatureSums(sums), SAMPLE, max_examples=30)


def test_ames_builds_verified_and_ends_in_lightgbm(built_models: dict[str, Any]) -> None:
    built = built_models["ames"]
    steps = dict(built.trained.model.regressor_.steps)
    assert type(steps["lightgbm"]).__name__ == "LGBMRegressor"
    equivalence = built.packaged.equivalence
    assert equivalence["generated"]["rows"] == 10_000
    assert equivalence["generated"]["failures"] == 0 and equivalence["held_out"]["failures"] == 0
    assert built.trained.metrics["rmse_log"] <= 0.20
    model = predictlib.load(built.packaged.folder)
    X_test = built.trained.X_test
    expected = built.trained.model.predict(X_test)
    got = model.predict(X_test)
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-9)
    record = {
        k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in X_test.iloc[0].to_dict().items()
    }
    assert abs(model.predict(record) - expected[0]) <= 1e-9 * expected[0]
