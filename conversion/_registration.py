"""Imports every converter module: importing registers them with skl2onnx."""

from . import (  # noqa: F401
    discretisation,
    encoding,
    estimators,
    imputation,
    outliers,
    scaling,
    selection,
    transformation,
    wrappers,
)
