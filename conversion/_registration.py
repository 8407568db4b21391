"""Imports every converter module: importing registers them with skl2onnx."""

from . import encoding, estimators, imputation, selection, transformation, wrappers  # noqa: F401
