"""House prices, dated: DatetimeFeatures + MathFeatures + RelativeFeatures + OrdinalEncoder +
HistGradientBoostingRegressor on log(price).

No CyclicalFeatures here: onnxruntime's float64 Sin / Cos differ from numpy's by ~1e-16
near multiples of pi (sin(pi) gives 0 instead of 1.2e-16), within the tolerance on their
own but enough to flip a tree split between those values (the build caught it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from feature_engine.creation import MathFeatures, RelativeFeatures
from feature_engine.datetime import DatetimeFeatures
from feature_engine.encoding import OrdinalEncoder
from feature_engine.imputation import CategoricalImputer
from feature_engine.selection import DropFeatures
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline


def prepare_data(frame: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """The sale date (first of the month of sale) as a datetime64 column."""
    date = pd.to_datetime({"year": frame["YrSold"], "month": frame["MoSold"], "day": 1})
    return frame.assign(**{config["features"]["date"]: date.astype("datetime64[ns]")})


def build_pipeline(config: dict[str, Any], X: pd.DataFrame) -> TransformedTargetRegressor:
    features = config["features"]
    hyper = config["hyperparameters"]
    numeric, categorical, date = list(features["numeric"]), list(features["categorical"]), features["date"]
    unused = [c for c in X.columns if c not in [*numeric, *categorical, date]]
    pipeline = Pipeline(
        [
            ("drop", DropFeatures(features_to_drop=unused)),
            ("date", DatetimeFeatures(variables=[date], features_to_extract=["year", "quarter", "month"])),
            ("total_area", MathFeatures(variables=["1stFlrSF", "2ndFlrSF", "TotalBsmtSF"], func=["sum"])),
            (
                "ratios",
                RelativeFeatures(variables=["GrLivArea", "GarageArea"], reference=["LotArea"], func=["div"]),
            ),
            ("impute_categories", CategoricalImputer(imputation_method="missing", variables=categorical)),
            ("encode", OrdinalEncoder(encoding_method="ordered", unseen="encode", variables=categorical)),
            (
                "boosting",
                HistGradientBoostingRegressor(
                    max_iter=hyper["max_iter"],
                    learning_rate=hyper["learning_rate"],
                    max_leaf_nodes=hyper["max_leaf_nodes"],
                    random_state=config["training"]["seed"],
                ),
            ),
        ]
    )
    return TransformedTargetRegressor(regressor=pipeline, func=np.log, inverse_func=np.exp)
