"""Converters for feature-engine's selectors (``feature_engine.selection``): their
``transform`` drops columns, which costs no node at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feature_engine.selection import DropFeatures

from ._frame import Column, FrameConverter, Plan, StepContext, frame_converter


@frame_converter
class DropFeaturesConverter(FrameConverter):
    transformer = DropFeatures
    supports = "features_to_drop"
    onnx_ops = frozenset()

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        dropped = set(model.features_to_drop_)
        return Plan([], [], [c.name for c in columns if c.name not in dropped])

    def convert(self, ctx: StepContext, model: Any) -> None:  # pragma: no cover - plan writes nothing
        return None
