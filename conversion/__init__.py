"""Build-time conversion of feature-engine + scikit-learn pipelines to ONNX.

Importing this package registers predictlib's converters with skl2onnx, so
``skl2onnx.convert_sklearn`` handles pipelines with feature-engine steps (give one
``[N, 1]`` input per column, named as the column). :func:`export_pipeline` does the
whole export the way predictlib's artifacts need it (grouped inputs, refusals).
"""

if __name__ != "predictlib.build":  # pragma: no cover - a checkout's top-level folder
    raise ImportError(
        "conversion/ is the source of predictlib.build: import predictlib.build "
        "(pip install 'predictlib[build]', or an editable install of this repository)"
    )

from .core.frame import (
    DT,
    MISSING,
    NUM,
    STR,
    TARGET_OPSET,
    Check,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    register_converter,
    registered_frame_converters,
)
from .core.refused import not_convertible
from .stages.export import Exported, export_pipeline, infer_columns

__all__ = [
    "DT",
    "MISSING",
    "NUM",
    "STR",
    "TARGET_OPSET",
    "Check",
    "Column",
    "ExportError",
    "Exported",
    "FrameConverter",
    "Plan",
    "StepContext",
    "export_pipeline",
    "infer_columns",
    "not_convertible",
    "register_converter",
    "registered_frame_converters",
]
