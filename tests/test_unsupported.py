"""Steps that cannot be exported are refused with the step, the class and the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import quietly
from feature_engine.encoding import StringSimilarityEncoder
from feature_engine.imputation import DropMissingData, MeanMedianImputer, RandomSampleImputer
from feature_engine.outliers import OutlierTrimmer
from feature_engine.pipeline import Pipeline as FeaturePipeline
from feature_engine.text import TextFeatures
from feature_engine.timeseries.forecasting import ExpandingWindowFeatures, LagFeatures, WindowFeatures
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import (
    NMF,
    DictionaryLearning,
    KernelPCA,
    LatentDirichletAllocation,
    MiniBatchDictionaryLearning,
    MiniBatchNMF,
    MiniBatchSparsePCA,
    SparseCoder,
    SparsePCA,
)
from sklearn.kernel_approximation import PolynomialCountSketch
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from predictlib import build as conversion
from predictlib.build import export_pipeline, infer_columns
from predictlib.build.core import frame as frame_module
from predictlib.build.core import refused as registry

FRAME = pd.DataFrame(
    {
        "n0": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0],
        "n1": [3.0, 1.0, 2.0, 5.0, 4.0, 0.5, 2.5, 3.5],
        "c0": pd.Series(["a", "b", "a", "c", "b", "a", "c", "a"], dtype="str"),
    }
)
Y = pd.Series([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
#: numbers only, >= 0 and without missing values (scikit-learn's decompositions)
NUMBERS = FRAME[["n0", "n1"]].fillna(3.0)

#: class -> (a fitted instance's factory, the frame it is fitted on / exported with)
EXAMPLES: dict[type, Callable[[], tuple[Any, pd.DataFrame]]] = {
    RandomSampleImputer: lambda: (RandomSampleImputer(), FRAME),
    DropMissingData: lambda: (DropMissingData(), FRAME),
    LagFeatures: lambda: (LagFeatures(variables=["n1"], periods=1), FRAME.drop(columns="n0")),
    WindowFeatures: lambda: (WindowFeatures(variables=["n1"], window=2), FRAME.drop(columns="n0")),
    ExpandingWindowFeatures: lambda: (ExpandingWindowFeatures(variables=["n1"]), FRAME.drop(columns="n0")),
    TextFeatures: lambda: (TextFeatures(variables=["c0"]), FRAME),
    OutlierTrimmer: lambda: (OutlierTrimmer(variables=["n0"]), FRAME.dropna()),
    StringSimilarityEncoder: lambda: (StringSimilarityEncoder(variables=["c0"]), FRAME.dropna()),
    # scikit-learn (conversion/converters/sklearn/decomposition.py), on numbers >= 0
    **{
        cls: (lambda cls=cls, kw=kw: (cls(**kw), NUMBERS))
        for cls, kw in (
            (NMF, {"n_components": 1, "max_iter": 20}),
            (MiniBatchNMF, {"n_components": 1, "max_iter": 5}),
            (LatentDirichletAllocation, {"n_components": 1, "max_iter": 2}),
            (DictionaryLearning, {"n_components": 1, "max_iter": 2}),
            (MiniBatchDictionaryLearning, {"n_components": 1, "max_iter": 2}),
            (SparseCoder, {"dictionary": np.eye(2)}),
            (SparsePCA, {"n_components": 1, "max_iter": 2}),
            (MiniBatchSparsePCA, {"n_components": 1, "max_iter": 2}),
            (KernelPCA, {"n_components": 1}),
            (PolynomialCountSketch, {"n_components": 2}),
        )
    },
}
#: targets other than Y
TARGETS: dict[type, pd.Series] = {}


def _fitted(cls: type) -> tuple[Any, pd.DataFrame]:
    make = EXAMPLES.get(cls)
    assert make is not None, f"add an example of {cls.__name__} to EXAMPLES"
    step, frame = make()
    quietly(lambda: step.fit(frame, TARGETS.get(cls, Y)))
    return step, frame


def _error(model: Any, frame: pd.DataFrame) -> str:
    with pytest.raises(conversion.ExportError) as info:
        export_pipeline(model, infer_columns(frame))
    return str(info.value)


@pytest.mark.parametrize("cls", list(registry.registered_not_convertible()), ids=lambda c: c.__name__)
@pytest.mark.parametrize("where", ["pipeline", "after a converted step", "bare"])
def test_not_convertible_step_is_refused(cls: type, where: str) -> None:
    step, frame = _fitted(cls)
    reason = registry.registered_not_convertible()[cls]
    if where == "bare":
        model, label = step, f"step '<model>' ({cls.__name__})"
    else:
        steps = [("odd_step", step)]
        if where != "pipeline":
            steps.insert(0, ("impute", MeanMedianImputer(variables=["n1"])))
        model = Pipeline(steps)
        quietly(lambda: model.fit(frame, TARGETS.get(cls, Y)))
        label = f"step 'odd_step' ({cls.__name__})"
    message = _error(model, frame)
    assert message == f"{label} cannot be exported: {reason}"


def test_every_recorded_class_has_an_example_and_a_reason() -> None:
    recorded = registry.registered_not_convertible()
    assert {
        RandomSampleImputer,
        DropMissingData,
        LagFeatures,
        WindowFeatures,
        ExpandingWindowFeatures,
        TextFeatures,
    } <= set(recorded)
    for cls, reason in recorded.items():
        assert cls in EXAMPLES and len(reason) > 40, cls


def test_the_refusal_comes_before_any_other_check() -> None:
    """A step that would receive text columns as a matrix: the reason, not the text-column error."""
    step, frame = _fitted(LagFeatures)
    pipe = Pipeline([("lag", step)])
    assert "step 'lag' (LagFeatures) cannot be exported: it computes lagged values" in _error(pipe, frame)


class FeatureEngineLookalike(TransformerMixin, BaseEstimator):
    """A feature-engine class predictlib knows nothing about."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEngineLookalike:
        self.fitted_ = True
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X


FeatureEngineLookalike.__module__ = "feature_engine.creation.lookalike"


def test_feature_engine_class_without_converter_is_refused() -> None:
    pipe = Pipeline([("new_step", FeatureEngineLookalike()), ("model", LinearRegression())])
    frame = FRAME[["n1"]]
    quietly(lambda: pipe.fit(frame, Y))
    message = _error(pipe, frame)
    assert message.startswith("step 'new_step' (FeatureEngineLookalike) cannot be exported: ")
    assert "no converter for feature-engine's FeatureEngineLookalike" in message


def test_other_classes_are_left_to_the_usual_parsers() -> None:
    registry.check_convertible(LinearRegression())
    registry.check_convertible(FeaturePipeline([("impute", MeanMedianImputer())]))
    registry.check_convertible(MeanMedianImputer())


def test_a_converter_wins_over_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    class Recorded(TransformerMixin, BaseEstimator):
        pass

    Recorded.__module__ = "feature_engine.recorded"
    monkeypatch.setitem(registry._REASONS, Recorded, "a reason")
    assert Recorded in registry.registered_not_convertible()
    with pytest.raises(conversion.ExportError, match="a reason"):
        registry.check_convertible(Recorded())
    monkeypatch.setitem(frame_module._CONVERTERS, Recorded, object())
    assert Recorded not in registry.registered_not_convertible()
    registry.check_convertible(Recorded())
