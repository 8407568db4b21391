"""House band: EqualFrequencyDiscretiser + RareLabelEncoder + WoEEncoder + LogisticRegression."""

from __future__ import annotations

from typing import Any

import pandas as pd
from feature_engine.discretisation import EqualFrequencyDiscretiser
from feature_engine.encoding import RareLabelEncoder, WoEEncoder
from feature_engine.imputation import CategoricalImputer, MeanMedianImputer
from feature_engine.selection import DropFeatures
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def prepare_data(frame: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """The target: 'above' when the sale price is over the threshold, else 'below'."""
    above = frame["SalePrice"] > config["features"]["threshold"]
    return frame.assign(band=above.map({True: "above", False: "below"}).astype("str"))


def build_pipeline(config: dict[str, Any], X: pd.DataFrame) -> Pipeline:
    features = config["features"]
    hyper = config["hyperparameters"]
    numeric, categorical = list(features["numeric"]), list(features["categorical"])
    unused = [c for c in X.columns if c not in numeric + categorical]
    return Pipeline(
        [
            ("drop", DropFeatures(features_to_drop=unused)),
            ("impute_numbers", MeanMedianImputer(imputation_method="median", variables=numeric)),
            ("impute_categories", CategoricalImputer(imputation_method="missing", variables=categorical)),
            ("bins", EqualFrequencyDiscretiser(q=hyper["bins"], variables=numeric, return_object=True)),
            ("rare", RareLabelEncoder(tol=0.03, n_categories=2, variables=categorical)),
            ("woe", WoEEncoder(variables=numeric + categorical, unseen="raise")),
            ("logistic", LogisticRegression(C=hyper["C"], max_iter=2000)),
        ]
    )
