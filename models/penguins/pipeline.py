"""Penguins: feature-engine imputation and encoding + a random forest classifier."""

from __future__ import annotations

from typing import Any

import pandas as pd
from feature_engine.encoding import OrdinalEncoder
from feature_engine.imputation import AddMissingIndicator, CategoricalImputer, MeanMedianImputer
from feature_engine.selection import DropFeatures
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline


def build_pipeline(config: dict[str, Any], X: pd.DataFrame) -> Pipeline:
    """The unfitted model: species from bill, flipper, body mass, island and sex."""
    features = config["features"]
    hyper = config["hyperparameters"]
    seed = config["training"]["seed"]
    numeric = list(features["numeric"])
    categorical = list(features["categorical"])
    return Pipeline(
        [
            ("drop", DropFeatures(features_to_drop=list(features["drop"]))),
            ("sex_missing", AddMissingIndicator(variables=["sex"])),
            ("impute_numeric", MeanMedianImputer(imputation_method="median", variables=numeric)),
            ("impute_categories", CategoricalImputer(imputation_method="frequent", variables=categorical)),
            ("encode", OrdinalEncoder(encoding_method="arbitrary", unseen="encode", variables=categorical)),
            (
                "forest",
                RandomForestClassifier(
                    n_estimators=hyper["n_estimators"],
                    max_depth=hyper["max_depth"],
                    min_samples_leaf=hyper["min_samples_leaf"],
                    random_state=seed,
                    n_jobs=1,
                ),
            ),
        ]
    )
