"""Every converter family: importing this package registers them all with skl2onnx."""

from . import catboost, lightgbm, xgboost  # noqa: F401 - boosting libraries: registered when installed
from .feature_engine import (  # noqa: F401
    creation,
    datetime,
    discretisation,
    encoding,
    imputation,
    outliers,
    preprocessing,
    refused,
    scaling,
    selection,
    transformation,
    wrappers,
)
from .sklearn import compose, decomposition, encoders, estimators, impute  # noqa: F401
from .sklearn import preprocessing as sklearn_preprocessing  # noqa: F401
from .sklearn import selection as sklearn_selection  # noqa: F401
