"""Benchmarks: predictlib vs the original feature-engine + scikit-learn pipeline.

Run ``nox -s bench`` (or ``python -m benchmarks.run``); see :mod:`benchmarks.run`.
"""

from pathlib import Path

#: the bundled model folders
MODELS = Path(__file__).resolve().parents[1] / "models"


def model_names() -> list[str]:
    """The bundled models (the folders of models/)."""
    from predictlib.build.project import find_projects

    return [p.name for p in find_projects(MODELS)]
