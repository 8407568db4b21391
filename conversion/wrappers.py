"""Converters for scikit-learn meta-estimators around a pipeline.

``TransformedTargetRegressor`` (a model trained on ``log(y)`` that predicts ``y``):
the inverse function runs inside the graph, so every client gets the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx._parse import _parse_sklearn
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.compose import TransformedTargetRegressor

from ._frame import ExportError, StepContext, declare_step, frame_aware, shape_calculator, step_label

#: inverse functions of TransformedTargetRegressor that have an exact graph
_INVERSES = {None: "identity", np.exp: "exp"}


def _inverse_name(model: TransformedTargetRegressor) -> str:
    if model.transformer is not None:
        raise ExportError(
            f"{step_label(model)}: a target transformer ({type(model.transformer).__name__}) is "
            "not exported; use func/inverse_func"
        )
    inverse = model.inverse_func
    name = next((n for f, n in _INVERSES.items() if f is inverse), None)
    if name is None:
        raise ExportError(
            f"{step_label(model)}: inverse_func={inverse!r} is not exported (supported: numpy.exp, None)"
        )
    return name


def _parse_ttr(
    scope: Any, model: TransformedTargetRegressor, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    name = _inverse_name(model)
    outputs = _parse_sklearn(scope, model.regressor_, inputs, custom_parsers=custom_parsers)
    if name == "identity":
        return list(outputs)
    out = scope.declare_local_variable("target", DoubleTensorType([None, 1]))
    declare_step(scope, "PredictlibTransformedTarget", model, [outputs[0]], [out])
    return [out]


def _convert_ttr(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    x = operator.inputs[0].full_name
    y = operator.outputs[0].full_name
    ctx.node("Exp", [x], y)


update_registered_converter(
    TransformedTargetRegressor,
    "PredictlibTransformedTarget",
    shape_calculator,
    _convert_ttr,
    parser=_parse_ttr,
)
frame_aware(TransformedTargetRegressor)
