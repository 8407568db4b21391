"""Refused at export: the one mechanism for classes that cannot be exported, and why.

:func:`not_convertible` records a class with the reason it has no graph;
:func:`check_convertible` (called by the pipeline parser before every step) raises
:class:`~conversion.ExportError` naming the step, the class and the reason when a
pipeline holds such a step -- or any feature-engine class that has no converter. The
recorded classes also get a skl2onnx parser that raises the same error, so a bare
transformer (not in a pipeline) is refused the same way.

A class recorded here and given a converter elsewhere is convertible: the converter
wins (:func:`registered_not_convertible` leaves it out).
"""

from __future__ import annotations

from typing import Any

from skl2onnx import update_registered_converter
from skl2onnx._supported_operators import sklearn_operator_name_map
from sklearn.pipeline import Pipeline

from .frame import (
    ExportError,
    has_frame_converter,
    is_frame_aware,
    no_converter,
    shape_calculator,
    step_label,
)

_REASONS: dict[type, str] = {}
#: the skl2onnx alias under which a recorded class is registered (its parser refuses)
_ALIAS = "PredictlibNotConvertible"


def not_convertible(cls: type, reason: str) -> type:
    """Record that ``cls`` cannot be exported, because of ``reason``. A converter skl2onnx
    has for it is replaced by the refusal (e.g. its float32 one); a predictlib converter
    registered for it wins."""
    _REASONS[cls] = reason
    if not (has_frame_converter(cls) or is_frame_aware(cls)):
        update_registered_converter(
            cls, f"{_ALIAS}{cls.__name__}", shape_calculator, no_converter, parser=_refuse_parser
        )
    return cls


def has_converter(cls: type) -> bool:
    """Whether the export knows how to convert ``cls`` (a frame converter, a frame-aware
    meta-estimator, or any skl2onnx converter other than this module's refusals)."""
    if has_frame_converter(cls) or is_frame_aware(cls):
        return True
    alias = sklearn_operator_name_map.get(cls)
    return alias is not None and not str(alias).startswith(_ALIAS)


def registered_not_convertible() -> dict[type, str]:
    """The recorded classes (without a converter) -> the reason."""
    return {cls: reason for cls, reason in _REASONS.items() if not has_converter(cls)}


def is_feature_engine(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "feature_engine"


def check_convertible(step: Any) -> None:
    """Raise :class:`ExportError` for a pipeline step that cannot be exported."""
    cls = type(step)
    if isinstance(step, Pipeline) or has_converter(cls):
        return
    if cls in _REASONS:
        raise ExportError(f"{step_label(step)} cannot be exported: {_REASONS[cls]}")
    if is_feature_engine(cls):
        raise ExportError(
            f"{step_label(step)} cannot be exported: predictlib has no converter for feature-engine's "
            f"{cls.__name__} (see docs/converters.md for the supported transformers)"
        )
    if step == "drop":
        return
    raise ExportError(
        f"{step_label(step)} cannot be exported: no converter is registered for "
        f"{cls.__module__}.{cls.__qualname__}. Write one with predictlib.build's extension API "
        "(FrameConverter + register_converter, a few lines: docs/custom-transformers.md) and "
        "import it before exporting, or replace the step by a supported one (docs/converters.md)"
    )


def _refuse_parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    check_convertible(model)
    raise ExportError(f"{step_label(model)} cannot be exported")  # pragma: no cover - check raises
