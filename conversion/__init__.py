"""predictlib.build: ship a fitted feature-engine + scikit-learn pipeline as a model wheel.

* :func:`package` -- export, verify, package one fitted pipeline (the main entry point);
* :func:`build_project` / ``predictlib build PATH`` -- train and package a model folder;
* :func:`export_pipeline` -- the ONNX graph alone;
* converters for your own transformers: :class:`FrameConverter`, :class:`Plan`,
  :class:`StepContext`, :func:`register_converter`, :func:`not_convertible`
  (``docs/custom-transformers.md``); :mod:`predictlib.build.testing` property-tests them.

Installed with ``pip install "predictlib[build]"``. Importing it registers predictlib's
converters with skl2onnx.
"""

if __name__ != "predictlib.build":  # pragma: no cover - a checkout's top-level folder
    raise ImportError(
        "conversion/ is the source of predictlib.build: import predictlib.build "
        "(pip install 'predictlib[build]', or an editable install of this repository)"
    )

from .boosters import booster
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
    appended,
    numeric_columns,
    register_converter,
    registered_frame_converters,
)
from .core.refused import not_convertible
from .packaging import Packaged, PackagingError, package
from .project import Project, ProjectError, build_project, load_project
from .stages.export import Exported, export_pipeline, infer_columns
from .stages.verify import EquivalenceError

__all__ = [
    "DT",
    "MISSING",
    "NUM",
    "STR",
    "TARGET_OPSET",
    "Check",
    "Column",
    "EquivalenceError",
    "ExportError",
    "Exported",
    "FrameConverter",
    "Packaged",
    "PackagingError",
    "Plan",
    "Project",
    "ProjectError",
    "StepContext",
    "appended",
    "booster",
    "build_project",
    "export_pipeline",
    "infer_columns",
    "load_project",
    "not_convertible",
    "numeric_columns",
    "package",
    "register_converter",
    "registered_frame_converters",
]
