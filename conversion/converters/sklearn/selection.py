"""Converters for ``sklearn.feature_selection``: every selector keeps the columns of its
fitted ``get_support()`` mask, whatever their kind (text columns included).

Input validation (``SelectorMixin.transform``): with pandas output on a DataFrame
scikit-learn checks nothing (``skip_check_array``); otherwise ``ensure_all_finite`` is
``not allow_nan`` (the selector's tags, its estimator's for ``SelectFromModel``,
``RFE``, ``SequentialFeatureSelector``): NaN and +-inf in any column, selected or not,
are refused unless the selector allows NaN; on an object array (text columns come in)
scikit-learn only looks for NaN. A selector fitted on a DataFrame is taken to receive a
DataFrame (a consistent pipeline gives each step the container it was fitted on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.feature_selection import (
    RFE,
    RFECV,
    GenericUnivariateSelect,
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    SequentialFeatureSelector,
    VarianceThreshold,
)
from sklearn.utils import get_tags
from sklearn.utils._set_output import _get_output_config

from ...core.frame import NUM, Column, StepContext, by_kind, register_converter
from ...core.maths import CHECK_OPS
from .base import SklearnConverter, refuse

SELECTORS = (
    GenericUnivariateSelect,
    RFE,
    RFECV,
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    SequentialFeatureSelector,
    VarianceThreshold,
)


class SelectorConverter(SklearnConverter):
    """The columns of ``get_support()``, refusals as ``SelectorMixin.transform`` validates."""

    text = True
    supports = "the fitted get_support() mask (any estimator, score function or threshold); text columns kept"
    onnx_ops = CHECK_OPS | frozenset({"Equal"})

    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        support = [bool(s) for s in model.get_support()]
        if len(support) != len(inputs):  # pragma: no cover - n_features_in_ is checked first
            raise refuse(model, f"its support has {len(support)} entries for {len(inputs)} columns")
        return [c for c, keep in zip(inputs, support, strict=True) if keep]

    def validate(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> None:
        pandas_output = _get_output_config("transform", model)["dense"] != "default"
        if pandas_output and getattr(model, "feature_names_in_", None) is not None:
            return  # a DataFrame kept as it is: no validation at all
        if get_tags(model).input_tags.allow_nan:
            return  # ensure_all_finite=False
        name = type(model).__name__
        kinds = {c.name: c.kind for c in inputs}
        for kind, group in by_kind(kinds, [c.name for c in inputs]):
            x = ctx.gather(group)
            ctx.refuse_if(group, ctx.is_missing(x, kind), f"missing value (NaN), {name} does not accept it")
        numeric = [c.name for c in inputs if c.kind == NUM]
        if numeric and len(numeric) == len(inputs):  # a float array (an object array: NaN only)
            x = ctx.gather(numeric)
            ctx.refuse_if(
                numeric, ctx.node("IsInf", [x]), f"infinite value, {name} accepts only finite numbers"
            )

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        out = self.outputs(model, inputs)
        kinds = {c.name: c.kind for c in out}
        return {kind: ctx.gather(names) for kind, names in by_kind(kinds, [c.name for c in out])}


for _cls in SELECTORS:
    register_converter(type(f"{_cls.__name__}Converter", (SelectorConverter,), {"transformer": _cls}))
