"""Imports every converter module: importing registers them with skl2onnx."""

from . import encoding, imputation, selection, transformation, wrappers  # noqa: F401
