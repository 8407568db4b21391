"""Reproducible training of a model folder: config, data fingerprint, split, fit, metrics."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomllib
from sklearn.model_selection import train_test_split

MODELS_DIR = Path(__file__).resolve().parent


class TrainingError(RuntimeError):
    """The model cannot be trained as configured (bad data, failed acceptance...)."""


@dataclass
class Trained:
    name: str
    config: dict[str, Any]
    model: Any
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    data_sha256: str
    rows: int
    metrics: dict[str, float]


def model_names() -> list[str]:
    return sorted(p.parent.name for p in MODELS_DIR.glob("*/model.toml"))


def load_config(name: str) -> dict[str, Any]:
    path = MODELS_DIR / name / "model.toml"
    if not path.is_file():
        raise TrainingError(f"no model '{name}' (expected {path}); models: {model_names()}")
    with path.open("rb") as fh:
        config = tomllib.load(fh)
    if config["model"]["name"] != name:
        raise TrainingError(f"{path}: model.name is '{config['model']['name']}', the folder '{name}'")
    return config


def load_data(name: str, config: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    path = MODELS_DIR / name / config["data"]["file"]
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    expected = config["data"].get("sha256")
    if expected and digest != expected:
        raise TrainingError(f"{path}: sha256 {digest}, the config expects {expected}")
    frame = pd.read_csv(path)
    module = importlib.import_module(f"models.{name}.pipeline")
    prepare = getattr(module, "prepare_data", None)  # derived columns (a target band, a date...)
    if prepare is not None:
        frame = prepare(frame, config)
    return frame.drop(columns=list(config["data"].get("drop_columns", []))), digest


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    log_err = np.log(y_pred) - np.log(y_true)
    resid = y_pred - y_true
    return {
        "rmse_log": float(np.sqrt(np.mean(log_err**2))),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "mae": float(np.mean(np.abs(resid))),
        "r2": float(1 - np.sum(resid**2) / np.sum((y_true - y_true.mean()) ** 2)),
    }


def classification_metrics(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    proba = model.predict_proba(X)
    labels = model.predict(X)
    return {
        "accuracy": float(accuracy_score(y, labels)),
        "macro_f1": float(f1_score(y, labels, average="macro")),
        "log_loss": float(log_loss(y, proba, labels=model.classes_)),
    }


def _check_acceptance(name: str, config: dict[str, Any], metrics: dict[str, float]) -> None:
    for key, limit in config.get("acceptance", {}).items():
        kind, metric = key.split("_", 1)
        value = metrics[metric]
        if (kind == "max" and value > limit) or (kind == "min" and value < limit):
            raise TrainingError(
                f"{name}: held-out {metric} {value:.4f} misses the acceptance {key} = {limit}"
            )


def train(name: str) -> Trained:
    """Train model ``name`` from its folder, deterministically, and check acceptance."""
    config = load_config(name)
    frame, digest = load_data(name, config)
    target = config["data"]["target"]
    if config["data"].get("drop_missing_target"):
        frame = frame[frame[target].notna()]
    X = frame.drop(columns=[target])
    y = frame[target]
    seed = int(config["training"]["seed"])
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=float(config["training"]["test_size"]),
        random_state=seed,
        stratify=y if config["training"].get("stratify") else None,
    )
    model = importlib.import_module(f"models.{name}.pipeline").build_pipeline(config, X_train)
    model.fit(X_train, y_train)
    if config["model"]["task"] == "classification":
        metrics = classification_metrics(model, X_test, y_test)
    else:
        metrics = regression_metrics(y_test.to_numpy(float), model.predict(X_test))
    _check_acceptance(name, config, metrics)
    return Trained(name, config, model, X_train, X_test, y_train, y_test, digest, len(frame), metrics)
