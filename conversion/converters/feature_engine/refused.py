"""feature-engine transformers that cannot be exported, whatever their parameters, and why."""

from __future__ import annotations

from feature_engine.encoding import StringSimilarityEncoder
from feature_engine.imputation import DropMissingData, RandomSampleImputer
from feature_engine.outliers import OutlierTrimmer
from feature_engine.text import TextFeatures
from feature_engine.timeseries.forecasting import ExpandingWindowFeatures, LagFeatures, WindowFeatures

from ...core.refused import not_convertible

_ROWS = "a graph maps each input row to exactly one output row (and each record to one prediction)"

not_convertible(
    RandomSampleImputer,
    "it fills missing values with random draws from the training data (numpy's random generator, "
    "seeded per batch or per row from the seeding variables); no graph reproduces those draws",
)
not_convertible(DropMissingData, f"it removes the rows with missing values, and {_ROWS}")
for _cls, _what in (
    (LagFeatures, "lagged values (shift)"),
    (WindowFeatures, "rolling-window statistics"),
    (ExpandingWindowFeatures, "expanding-window statistics"),
):
    not_convertible(
        _cls,
        f"it computes {_what} from other rows of the frame; a graph computes each row from that "
        "row alone (build the time-series features before the pipeline)",
    )
not_convertible(
    TextFeatures,
    "its features are Unicode regular-expression counts and Python string splitting "
    "(str.count(r'\\d'), str.split(), sets of lowercased words); ONNX opset 19 has no exact "
    "equivalent",
)
not_convertible(
    OutlierTrimmer,
    f"it removes the rows with outliers, and {_ROWS}; cap the outliers instead (Winsorizer, "
    "ArbitraryOutlierCapper) or trim them before the pipeline",
)
not_convertible(
    StringSimilarityEncoder,
    "its similarity (difflib quick_ratio) of a value that is not a fitted category needs the "
    "characters and length of the string, which no ONNX operator of the exported opsets computes",
)
