"""Imports every converter module: importing registers them with skl2onnx."""

from . import (  # noqa: F401
    creation,
    datetime_features,
    discretisation,
    encoding,
    estimators,
    imputation,
    outliers,
    preprocessing,
    scaling,
    selection,
    transformation,
    unsupported,
    wrappers,
)
