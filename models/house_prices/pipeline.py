"""House prices: feature-engine feature engineering + MinMaxScaler + Lasso on log(price)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from feature_engine.encoding import OrdinalEncoder, RareLabelEncoder
from feature_engine.imputation import (
    AddMissingIndicator,
    ArbitraryNumberImputer,
    CategoricalImputer,
    MeanMedianImputer,
)
from feature_engine.selection import DropFeatures
from feature_engine.transformation import LogTransformer
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Lasso
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler


def build_pipeline(config: dict[str, Any], X: pd.DataFrame) -> TransformedTargetRegressor:
    """The unfitted model: trained on log(SalePrice), predicts dollars."""
    features = config["features"]
    hyper = config["hyperparameters"]
    seed = config["training"]["seed"]
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    none_vars = list(features["categorical_none"])
    frequent_vars = [c for c in categorical if c not in none_vars]
    encoded = [c for c in categorical if c not in features["drop"]]
    steps = [
        ("missing_indicator", AddMissingIndicator(variables=list(features["missing_indicator"]))),
        (
            "impute_median",
            MeanMedianImputer(imputation_method="median", variables=list(features["numeric_median"])),
        ),
        ("impute_zero", ArbitraryNumberImputer(arbitrary_number=0, variables=list(features["numeric_zero"]))),
        (
            "impute_none",
            CategoricalImputer(imputation_method="missing", fill_value="Missing", variables=none_vars),
        ),
        ("impute_frequent", CategoricalImputer(imputation_method="frequent", variables=frequent_vars)),
        ("log", LogTransformer(variables=list(features["log"]))),
        ("drop", DropFeatures(features_to_drop=list(features["drop"]))),
        (
            "rare",
            RareLabelEncoder(
                tol=hyper["rare_tol"], n_categories=hyper["rare_n_categories"], variables=encoded
            ),
        ),
        ("ordinal", OrdinalEncoder(encoding_method="ordered", unseen="raise", variables=encoded)),
        ("scale", MinMaxScaler()),
        ("lasso", Lasso(alpha=hyper["lasso_alpha"], max_iter=hyper["lasso_max_iter"], random_state=seed)),
    ]
    return TransformedTargetRegressor(regressor=Pipeline(steps), func=np.log, inverse_func=np.exp)
