"""The ames model's own transformers, of the kind the ames-model course package writes,
and their converters, written with predictlib's public extension API.

* :class:`ZeroBinariser`: a numeric column becomes 0 where it is 0, else 1 (missing too);
* :class:`FillFromColumn`: a column's missing values take another column's value;
* :class:`FeatureSums`: new columns, each a weighted sum of others, added in the order
  given (Python's ``sum``: ``0 + w1 * x1 + w2 * x2 + ...``) -- the graph adds them in the
  same order, so the sums are equal bit for bit, which matters to a tree splitting on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from predictlib.build import FrameConverter, Plan, StepContext, appended, numeric_columns, register_converter


class ZeroBinariser(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Each of ``variables`` becomes 0 where it is 0, else 1 (missing values too)."""

    def __init__(self, variables: Sequence[str]) -> None:
        self.variables = variables

    def fit(self, X: pd.DataFrame, y: Any = None) -> ZeroBinariser:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for var in self.variables:
            X[var] = np.where(X[var] == 0, 0, 1)
        return X


class FillFromColumn(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Missing values of ``target`` take the value of ``source`` in the same row (a garage
    built with the house)."""

    def __init__(self, target: str, source: str) -> None:
        self.target = target
        self.source = source

    def fit(self, X: pd.DataFrame, y: Any = None) -> FillFromColumn:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        X[self.target] = X[self.target].fillna(X[self.source])
        return X


class FeatureSums(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """``sums`` maps a new column to {column: weight}: the column is sum(weight * column)."""

    def __init__(self, sums: Mapping[str, Mapping[str, float]]) -> None:
        self.sums = sums

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureSums:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for new, weights in self.sums.items():
            X[new] = sum(w * X[col] for col, w in weights.items())
        return X


@register_converter
class ZeroBinariserConverter(FrameConverter):
    transformer = ZeroBinariser
    supports = "variables: numeric columns"
    onnx_ops = frozenset({"Equal", "Where"})

    def plan(self, model: Any, columns: Any) -> Plan:
        return self.in_place(columns, numeric_columns(model, columns, list(model.variables)))

    def convert(self, ctx: StepContext, model: Any) -> None:
        x = ctx.gather(list(model.variables))
        ctx.write(ctx.where(ctx.equal(x, 0.0), 0.0, 1.0))


@register_converter
class FillFromColumnConverter(FrameConverter):
    transformer = FillFromColumn
    supports = "target and source: numeric columns"
    onnx_ops = frozenset({"IsNaN", "Where"})

    def plan(self, model: Any, columns: Any) -> Plan:
        numeric_columns(model, columns, [model.target, model.source])
        return self.in_place(columns, [model.target], reads=[model.source])

    def convert(self, ctx: StepContext, model: Any) -> None:
        target, source = ctx.gather([model.target]), ctx.gather([model.source])
        ctx.write(ctx.where(ctx.is_missing(target, "num"), source, target))


@register_converter
class FeatureSumsConverter(FrameConverter):
    transformer = FeatureSums
    supports = "sums of numeric columns with numeric weights"
    onnx_ops = frozenset({"Mul", "Add", "Concat"})

    def plan(self, model: Any, columns: Any) -> Plan:
        reads = numeric_columns(model, columns, sorted({c for w in model.sums.values() for c in w}))
        return appended(model, columns, reads, list(model.sums))

    def convert(self, ctx: StepContext, model: Any) -> None:
        new = []
        for weights in model.sums.values():
            total = ctx.const(0.0)  # Python's sum starts from 0, then adds each term in order
            for col, w in weights.items():
                total = ctx.node("Add", [total, ctx.node("Mul", [ctx.const(float(w)), ctx.gather([col])])])
            new.append(total)
        ctx.write(ctx.concat(*new) if len(new) > 1 else new[0])
