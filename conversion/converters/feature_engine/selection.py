"""Converters for feature-engine's selectors (``feature_engine.selection``).

Every selector inherits ``BaseSelector.transform``: check the number of columns,
reorder them as in fit, ``X.drop(columns=features_to_drop_)``. No NaN / inf check and no
value is touched (whatever the selector needed at fit: an estimator, a target, no NaN),
so the converter reads ``features_to_drop_`` and costs no node at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feature_engine.selection import (
    MRMR,
    DropConstantFeatures,
    DropCorrelatedFeatures,
    DropDuplicateFeatures,
    DropFeatures,
    DropHighPSIFeatures,
    ProbeFeatureSelection,
    RecursiveFeatureAddition,
    RecursiveFeatureElimination,
    SelectByInformationValue,
    SelectByShuffling,
    SelectBySingleFeaturePerformance,
    SelectByTargetMeanPerformance,
    SmartCorrelatedSelection,
)

from ...core.frame import (
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    register_converter,
    step_label,
)


class _Selector(FrameConverter):
    onnx_ops = frozenset()

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        dropped = model.features_to_drop_
        dropped = [dropped] if isinstance(dropped, str) else list(dropped)
        names = [c.name for c in columns]
        unknown = [c for c in dropped if c not in set(names)]
        if unknown:
            raise ExportError(
                f"{step_label(model)}: features_to_drop_ names columns {unknown} it was not fitted on"
            )
        kept = [c for c in names if c not in set(dropped)]
        if not kept:
            raise ExportError(f"{step_label(model)}: the step drops every column ({names})")
        return Plan([], [], kept)

    def convert(self, ctx: StepContext, model: Any) -> None:  # pragma: no cover - plan writes nothing
        return None


def _selector(cls: type, supported: str) -> type[_Selector]:
    converter = type(f"{cls.__name__}Converter", (_Selector,), {"transformer": cls, "supports": supported})
    converter.__module__ = __name__
    converter.__doc__ = f"``{cls.__name__}``: drops its fitted ``features_to_drop_``."
    return register_converter(converter)


DropFeaturesConverter = _selector(DropFeatures, "features_to_drop")
DropConstantFeaturesConverter = _selector(
    DropConstantFeatures, "any fitted selection (tol, missing_values raise / ignore / include)"
)
DropDuplicateFeaturesConverter = _selector(DropDuplicateFeatures, "any fitted selection (missing_values)")
DropCorrelatedFeaturesConverter = _selector(
    DropCorrelatedFeatures, "any fitted selection (method, threshold, missing_values)"
)
SmartCorrelatedSelectionConverter = _selector(
    SmartCorrelatedSelection, "any fitted selection (method, threshold, selection_method, estimator)"
)
DropHighPSIFeaturesConverter = _selector(
    DropHighPSIFeatures,
    "any fitted selection (split_col / frac / distinct, cut_off, threshold, bins, strategy)",
)
SelectByInformationValueConverter = _selector(
    SelectByInformationValue, "any fitted selection (bins, strategy, threshold)"
)
SelectByShufflingConverter = _selector(
    SelectByShuffling, "any fitted selection (estimator, scoring, cv, threshold)"
)
SelectBySingleFeaturePerformanceConverter = _selector(
    SelectBySingleFeaturePerformance, "any fitted selection (estimator, scoring, cv, threshold)"
)
SelectByTargetMeanPerformanceConverter = _selector(
    SelectByTargetMeanPerformance, "any fitted selection (bins, strategy, scoring, cv, threshold, regression)"
)
RecursiveFeatureAdditionConverter = _selector(
    RecursiveFeatureAddition, "any fitted selection (estimator, scoring, cv, threshold)"
)
RecursiveFeatureEliminationConverter = _selector(
    RecursiveFeatureElimination, "any fitted selection (estimator, scoring, cv, threshold)"
)
MRMRConverter = _selector(MRMR, "any fitted selection (method, max_features, regression)")
ProbeFeatureSelectionConverter = _selector(
    ProbeFeatureSelection, "any fitted selection (estimator, collective, n_probes, distribution, threshold)"
)
