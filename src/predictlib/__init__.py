"""predictlib: run exported feature-engine + scikit-learn pipelines with onnxruntime.

>>> import predictlib
>>> predictlib.available()                       # {'house_prices': '1.0.0'}
>>> model = predictlib.load("house_prices")      # or an artifact folder / model wheel
>>> model.predict({"LotArea": 8450, ...})        # one record -> float
>>> predictlib.predict(rows, model="house_prices")
"""

from ._drift import ColumnDrift, DriftReport, Monitor, Thresholds
from ._errors import ArtifactError, InputError, ModelNotFoundError, PredictlibError, Problem
from ._model import Model, available, default_session_options, load, predict

__version__ = "0.2.0"

__all__ = [
    "ArtifactError",
    "ColumnDrift",
    "DriftReport",
    "InputError",
    "Model",
    "ModelNotFoundError",
    "Monitor",
    "PredictlibError",
    "Problem",
    "Thresholds",
    "__version__",
    "available",
    "default_session_options",
    "load",
    "predict",
]
