"""The training profile: ``profile.json`` in the artifact, what the runtime's drift checks
compare with (:mod:`predictlib._drift`, ``docs/monitoring.md``,
``schema/profile.schema.json``).

Computed from the training frame and the fitted pipeline's predictions on its rows:

* per numeric column: rows, missing count and share, min / max, mean, quantiles
  (:data:`predictlib._drift.QUANTILE_LEVELS`) and a histogram whose interior bin edges
  are the training deciles (duplicates dropped, so a column with few values has fewer
  bins), the outer bins open: every value falls in one bin;
* per categorical column: the categories with their counts (the
  :data:`~predictlib._drift.MAX_CATEGORIES` most frequent; the count of the others as
  ``other_count``), the number of distinct categories and the missing share;
* per datetime column: the range (ISO 8601 and nanoseconds since 1970-01-01), quantiles
  and a histogram as for numbers, in nanoseconds;
* the predictions: for a regressor, a numeric profile of the predicted values; for a
  classifier, the count of each predicted class.

Counts, not shares, so that the runtime's counts of new rows are compared exactly (the
histograms are counted with the runtime's :func:`predictlib._drift.bin_counts`). The
file is a few kilobytes (categories dominate), deterministic, and sealed by the
manifest's ``files`` section like ``golden.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from predictlib._drift import (
    EDGE_LEVELS,
    MAX_CATEGORIES,
    PROFILE_FILE,
    PROFILE_FORMAT,
    PROFILE_FORMAT_VERSION,
    QUANTILE_LEVELS,
    bin_counts,
)
from predictlib._inputs import NAT

from ..core.frame import DT, NUM, Column
from .golden import encode, encode_datetime

#: the manifest's ``files`` role of profile.json
PROFILE_ROLE = "profile"


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _binned(values: np.ndarray, present: np.ndarray) -> dict[str, Any]:
    """Quantiles and histogram of the present (non-missing) ``values``: float64, or int64
    nanoseconds (datetimes: edges rounded to whole nanoseconds)."""
    datetime = values.dtype == np.int64
    finite = present if datetime else _finite(present)
    if finite.size:
        quantiles = np.quantile(finite, QUANTILE_LEVELS)
        edges = np.unique(np.quantile(finite, EDGE_LEVELS))
        if datetime:
            quantiles = np.round(quantiles).astype(np.int64)
            edges = np.unique(np.round(edges).astype(np.int64))
    else:
        quantiles = np.array([], dtype=values.dtype)
        edges = np.array([], dtype=values.dtype)
    return {
        "quantiles": {"levels": list(QUANTILE_LEVELS), "values": quantiles.tolist()} if finite.size else None,
        "histogram": {"edges": edges.tolist(), "counts": bin_counts(edges, present).tolist()},
    }


def numeric_profile(name: str, values: Any, kind: str = "number") -> dict[str, Any]:
    """The profile of a numeric column (or of regression predictions)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    missing = np.isnan(x)
    present = x[~missing]
    finite = _finite(present)
    return {
        "name": name,
        "kind": kind,
        "rows": int(x.size),
        "missing": int(missing.sum()),
        "missing_share": float(missing.mean()) if x.size else 0.0,
        "min": float(present.min()) if present.size else None,
        "max": float(present.max()) if present.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        **_binned(x, present),
    }


def datetime_profile(name: str, values: Any) -> dict[str, Any]:
    """The profile of a datetime column: int64 nanoseconds, NaT missing."""
    ns = np.asarray(values, dtype="datetime64[ns]").reshape(-1).view(np.int64)
    missing = ns == NAT
    present = ns[~missing]
    low = int(present.min()) if present.size else None
    high = int(present.max()) if present.size else None
    return {
        "name": name,
        "kind": "datetime",
        "rows": int(ns.size),
        "missing": int(missing.sum()),
        "missing_share": float(missing.mean()) if ns.size else 0.0,
        "min": None if low is None else encode_datetime(np.datetime64(low, "ns")),
        "max": None if high is None else encode_datetime(np.datetime64(high, "ns")),
        "min_ns": low,
        "max_ns": high,
        **_binned(ns, present),
    }


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas.NA raise or compare unequal
    except TypeError:
        return True


def category_profile(name: str, values: Any) -> dict[str, Any]:
    """The profile of a categorical column: category counts, most frequent first (ties
    in text order), the :data:`MAX_CATEGORIES` first kept."""
    texts = [None if _is_missing(v) else str(v) for v in list(values)]
    counts: dict[str, int] = {}
    for t in texts:
        if t is not None:
            counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = ranked[:MAX_CATEGORIES]
    missing = sum(t is None for t in texts)
    return {
        "name": name,
        "kind": "category",
        "rows": len(texts),
        "missing": missing,
        "missing_share": missing / len(texts) if texts else 0.0,
        "distinct": len(counts),
        "categories": [{"value": v, "count": c} for v, c in kept],
        "other_count": sum(c for _, c in ranked[MAX_CATEGORIES:]),
    }


def build_profile(pipeline: Any, X_train: Any, columns: Sequence[Column], task: str) -> dict[str, Any]:
    """The profile of the training frame ``X_train`` (its ``columns``, as
    :func:`predictlib.build.infer_columns` gives them) and of ``pipeline``'s predictions
    on it (``task``: "regression" or "classification")."""
    profiled = []
    for column in columns:
        values = X_train[column.name]
        if column.kind == NUM:
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            profiled.append(numeric_profile(column.name, numbers))
        elif column.kind == DT:
            profiled.append(datetime_profile(column.name, values.to_numpy(dtype="datetime64[ns]")))
        else:
            profiled.append(category_profile(column.name, values.astype(object)))
    with np.errstate(over="ignore"):
        predicted = pipeline.predict(X_train)
    if task == "classification":
        classes = [v.item() if isinstance(v, np.generic) else v for v in pipeline.classes_]
        labels = [
            v.item() if isinstance(v, np.generic) else v for v in np.asarray(predicted).reshape(-1).tolist()
        ]
        found = {c: 0 for c in classes}
        for label in labels:
            found[label] += 1
        predictions: dict[str, Any] = {
            "name": "prediction",
            "kind": "label",
            "rows": len(labels),
            "classes": [{"value": c, "count": n} for c, n in found.items()],
        }
    elif task == "regression":
        predictions = numeric_profile(
            "prediction", np.asarray(predicted, dtype=np.float64), kind="prediction"
        )
    else:
        raise ValueError(f"unknown task {task!r}")
    return {
        "format": PROFILE_FORMAT,
        "format_version": PROFILE_FORMAT_VERSION,
        "rows": len(X_train),
        "method": {
            "quantile_levels": list(QUANTILE_LEVELS),
            "edge_levels": list(EDGE_LEVELS),
            "bins": (
                "bin 0: x < edges[0]; bin i: edges[i-1] <= x < edges[i]; last bin: x >= edges[-1] "
                "(missing values are counted apart)"
            ),
            "max_categories": MAX_CATEGORIES,
        },
        "columns": profiled,
        "predictions": predictions,
    }


def dumps(profile: dict[str, Any]) -> bytes:
    """profile.json's bytes: compact, sorted keys, deterministic; floats JSON cannot hold
    (infinities) as ``{"$float": "inf"}``, as in golden.json."""
    text = json.dumps(
        encode(profile), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return (text + "\n").encode()


def write_profile(
    folder: str | Path, pipeline: Any, X_train: Any, columns: Sequence[Column], task: str
) -> str:
    """Write ``folder/profile.json`` (:func:`build_profile`); returns its file name, to
    list in the manifest's ``files`` with the role :data:`PROFILE_ROLE`."""
    path = Path(folder) / PROFILE_FILE
    path.write_bytes(dumps(build_profile(pipeline, X_train, columns, task)))
    return PROFILE_FILE


__all__ = ["PROFILE_FILE", "PROFILE_ROLE", "build_profile", "write_profile"]
