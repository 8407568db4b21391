"""House prices, the scikit-learn way: ColumnTransformer (SimpleImputer + log1p +
StandardScaler on the numbers, SimpleImputer + OneHotEncoder on the categories) -> Ridge,
trained on log(SalePrice) through TransformedTargetRegressor (the exp inside the graph)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


def build_pipeline(config: dict[str, Any], X: pd.DataFrame) -> TransformedTargetRegressor:
    """The unfitted model: trained on log(SalePrice), predicts dollars."""
    hyper = config["hyperparameters"]
    numbers = make_pipeline(
        SimpleImputer(strategy="median"),
        FunctionTransformer(np.log1p, feature_names_out="one-to-one"),  # areas and counts are skewed
        StandardScaler(),
    )
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="Missing"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    columns = ColumnTransformer(
        [
            ("num", numbers, make_column_selector(dtype_include="number")),
            ("cat", categories, make_column_selector(dtype_exclude="number")),
        ]
    )
    model = Pipeline([("columns", columns), ("ridge", Ridge(alpha=hyper["ridge_alpha"]))])
    return TransformedTargetRegressor(regressor=model, func=np.log, inverse_func=np.exp)
