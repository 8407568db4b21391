"""The training profile (profile.json) every built artifact carries: sealed by the
manifest, valid against schema/profile.schema.json, small, and what it says about the
training frame and the pipeline's predictions is true."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

import predictlib
from predictlib._drift import bin_counts
from predictlib.build.project import Built
from predictlib.build.stages.export import infer_columns
from predictlib.build.stages.profile import PROFILE_FILE, PROFILE_ROLE, build_profile, dumps

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schema" / "profile.schema.json").read_text(encoding="utf-8"))
MANIFEST_SCHEMA = json.loads((ROOT / "schema" / "manifest.schema.json").read_text(encoding="utf-8"))


def _profile(built: Built) -> dict:
    return json.loads((built.folder / PROFILE_FILE).read_text(encoding="utf-8"))


def test_every_artifact_carries_its_sealed_profile(built_models: dict[str, Built]) -> None:
    for name, built in built_models.items():
        entry = built.manifest["files"][PROFILE_FILE]
        data = (built.folder / PROFILE_FILE).read_bytes()
        assert entry["role"] == PROFILE_ROLE
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
        assert len(data) < 64_000, f"{name}: profile.json is {len(data)} bytes"
        jsonschema.validate(json.loads(data), SCHEMA, cls=jsonschema.Draft202012Validator)
        jsonschema.validate(built.manifest, MANIFEST_SCHEMA, cls=jsonschema.Draft202012Validator)
        # shipped in the wheel, and read back checked through the runtime
        assert predictlib.load(built.wheel).read_file(PROFILE_FILE) == data
        assert predictlib.load(built.folder).read_file(PROFILE_FILE) == data


def test_a_replaced_profile_is_refused(built_models: dict[str, Built], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "art"
    shutil.copytree(next(iter(built_models.values())).folder, folder)
    (folder / PROFILE_FILE).write_bytes(b'{"format": "predictlib-profile"}\n')
    model = predictlib.load(folder)
    with pytest.raises(predictlib.ArtifactError, match=r"profile\.json does not match its manifest"):
        model.drift([])
    with pytest.raises(predictlib.ArtifactError, match=r"lists no file 'nothing\.json'"):
        model.read_file("nothing.json")


def test_the_profile_describes_the_training_frame(built_models: dict[str, Built]) -> None:
    for name, built in built_models.items():
        X = built.trained.X_train
        profile = _profile(built)
        assert profile["rows"] == len(X)
        columns = {c["name"]: c for c in profile["columns"]}
        assert list(columns) == [str(c) for c in X.columns], name
        for column in profile["columns"]:
            values = X[column["name"]]
            assert column["rows"] == len(X)
            assert column["missing"] == int(values.isna().sum()), column["name"]
            present = values.dropna()
            if column["kind"] == "number":
                x = present.to_numpy(dtype=np.float64)
                assert column["min"] == x.min() and column["max"] == x.max()
                edges = np.array(column["histogram"]["edges"], dtype=np.float64)
                assert np.all(np.diff(edges) > 0) and len(edges) <= 9
                assert column["histogram"]["counts"] == bin_counts(edges, x).tolist()
                assert sum(column["histogram"]["counts"]) == len(x)
                levels = column["quantiles"]["levels"]
                assert column["quantiles"]["values"] == pytest.approx(np.quantile(x, levels).tolist())
            elif column["kind"] == "category":
                counts = present.astype(str).value_counts()
                assert column["distinct"] == len(counts)
                assert {c["value"]: c["count"] for c in column["categories"]} == counts.to_dict()
                assert column["other_count"] == 0
                shown = [c["count"] for c in column["categories"]]
                assert shown == sorted(shown, reverse=True)
            else:
                ns = present.to_numpy(dtype="datetime64[ns]").view(np.int64)
                assert column["min_ns"] == ns.min() and column["max_ns"] == ns.max()
                assert pd.Timestamp(column["min"]) == pd.Timestamp(ns.min())
                assert sum(column["histogram"]["counts"]) == len(ns)


def test_the_profile_holds_the_pipelines_predictions(built_models: dict[str, Built]) -> None:
    for built in built_models.values():
        predictions = _profile(built)["predictions"]
        expected = built.trained.model.predict(built.trained.X_train)
        if built.manifest["task"] == "classification":
            counts = pd.Series(expected).value_counts().to_dict()
            assert [c["value"] for c in predictions["classes"]] == built.manifest["outputs"]["label"][
                "classes"
            ]
            assert {c["value"]: c["count"] for c in predictions["classes"] if c["count"]} == counts
        else:
            x = np.asarray(expected, dtype=np.float64)
            assert predictions["min"] == x.min() and predictions["max"] == x.max()
            edges = np.array(predictions["histogram"]["edges"])
            assert predictions["histogram"]["counts"] == bin_counts(edges, x).tolist()


def test_profile_bytes_are_deterministic(built_models: dict[str, Built]) -> None:
    built = built_models["penguins"]
    X = built.trained.X_train
    again = dumps(build_profile(built.trained.model, X, infer_columns(X), "classification"))
    assert again == (built.folder / PROFILE_FILE).read_bytes()


def test_profile_of_edge_columns() -> None:
    """Columns with no values, one value, infinities and many categories."""
    from predictlib.build.stages.profile import MAX_CATEGORIES, category_profile, numeric_profile

    empty = numeric_profile("x", [np.nan, np.nan])
    assert empty["min"] is None and empty["histogram"] == {"edges": [], "counts": [0]}
    constant = numeric_profile("x", [3.0] * 5)
    assert constant["histogram"] == {"edges": [3.0], "counts": [0, 5]}
    infinite = numeric_profile("x", [1.0, 2.0, np.inf, -np.inf])
    assert infinite["max"] == np.inf and json.loads(dumps(infinite))["max"] == {"$float": "inf"}
    assert sum(infinite["histogram"]["counts"]) == 4
    many = category_profile("c", [f"v{i % (MAX_CATEGORIES + 20)}" for i in range(1000)] + [None])
    assert len(many["categories"]) == MAX_CATEGORIES and many["distinct"] == MAX_CATEGORIES + 20
    assert sum(c["count"] for c in many["categories"]) + many["other_count"] == 1000
    assert many["missing"] == 1
