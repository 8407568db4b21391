"""Held-out metrics of the original pipeline, and the acceptance check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import is_classifier


class AcceptanceError(ValueError):
    """The model misses an acceptance threshold on its held-out rows."""


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R²; the RMSE of log values too when every value is positive."""
    resid = y_pred - y_true
    metrics: dict[str, float] = {}
    if np.all(y_true > 0) and np.all(y_pred > 0):
        metrics["rmse_log"] = float(np.sqrt(np.mean((np.log(y_pred) - np.log(y_true)) ** 2)))
    metrics["rmse"] = float(np.sqrt(np.mean(resid**2)))
    metrics["mae"] = float(np.mean(np.abs(resid)))
    metrics["r2"] = float(1 - np.sum(resid**2) / np.sum((y_true - y_true.mean()) ** 2))
    return metrics


def classification_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    """Accuracy, macro F1 and log loss."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    labels = model.predict(X)
    metrics = {
        "accuracy": float(accuracy_score(y, labels)),
        "macro_f1": float(f1_score(y, labels, average="macro")),
    }
    if hasattr(model, "predict_proba"):
        metrics["log_loss"] = float(log_loss(y, model.predict_proba(X), labels=model.classes_))
    return metrics


def held_out_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    """The metrics of the model's task on ``X``, ``y``."""
    if is_classifier(model):
        return classification_metrics(model, X, y)
    return regression_metrics(np.asarray(y, dtype=float), np.asarray(model.predict(X), dtype=float))


def check_acceptance(name: str, metrics: Mapping[str, float], acceptance: Mapping[str, float]) -> None:
    """``acceptance`` maps ``max_<metric>`` / ``min_<metric>`` to a limit; raise
    :class:`AcceptanceError` when a held-out metric misses it."""
    for key, limit in acceptance.items():
        kind, _, metric = key.partition("_")
        if kind not in ("max", "min") or metric not in metrics:
            raise AcceptanceError(
                f"{name}: acceptance key {key!r}: use max_<metric> or min_<metric> with a metric of "
                f"{sorted(metrics)}"
            )
        value = metrics[metric]
        if (kind == "max" and value > limit) or (kind == "min" and value < limit):
            raise AcceptanceError(
                f"{name}: held-out {metric} {value:.4f} misses the acceptance {key} = {limit}"
            )
