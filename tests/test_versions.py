"""Pinned model versions: reproducible builds, the release record, differential tests,
several versions loaded side by side."""

from __future__ import annotations

import copy
import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import predictlib
from predictlib.build.project import Built, Project, build_project, load_project
from predictlib.build.stages import release
from predictlib.build.stages.verify import records_from_frame

pytestmark = pytest.mark.slow

MODEL = "penguins"  # the quick one to build
PROJECT = Path(__file__).resolve().parents[1] / "models" / MODEL
VERSION = load_project(PROJECT).version  # its version in models/penguins
MAJOR, MINOR, PATCH = (int(p) for p in VERSION.split("."))
NEXT_PATCH = f"{MAJOR}.{MINOR}.{PATCH + 1}"
NEXT_MINOR = f"{MAJOR}.{MINOR + 1}.0"
NEXT_MAJOR = f"{MAJOR + 1}.0.0"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(base: Path, project: Path = PROJECT, **changes: Any) -> Built:
    """Build the model folder ``project`` into ``base``, with ``changes`` applied to its
    config sections."""
    loaded = load_project(project)
    config = copy.deepcopy(dict(loaded.config))
    for section, values in changes.items():
        config[section] = {**config[section], **values}
    return build_project(
        Project(loaded.folder, config), artifacts=base / "artifacts", dist=base / "dist", log=None
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of MODEL's folder without its release records."""
    folder = tmp_path / MODEL
    shutil.copytree(PROJECT, folder, ignore=shutil.ignore_patterns("releases", "__pycache__"))
    return folder


@pytest.fixture
def releases(project: Path) -> Path:
    return project / "releases"


def test_building_twice_gives_identical_bytes(built_models: dict[str, Built], tmp_path: Path) -> None:
    first = built_models[MODEL]
    second = build(tmp_path / "elsewhere")
    files = ["model.onnx", "manifest.json", *first.manifest["files"]]
    for name in files:
        assert digest(first.folder / name) == digest(second.folder / name), name
    assert first.wheel.name == second.wheel.name == f"predictlib_{MODEL}-{VERSION}-py3-none-any.whl"
    assert digest(first.wheel) == digest(second.wheel)


def test_a_released_version_cannot_change(
    built_models: dict[str, Built], tmp_path: Path, project: Path, releases: Path
) -> None:
    v1 = built_models[MODEL]
    path = release.record_release(MODEL, v1.folder, v1.wheel, releases)
    assert path == releases / f"{VERSION}.json"
    # rebuilding the released version is fine
    again = build(tmp_path / "again", project)
    assert again.manifest["release"] == {"status": "released", "version": VERSION}
    # another model under the same version is not
    with pytest.raises(release.ReleaseError, match=r"bump the model's version"):
        build(tmp_path / "other", project, hyperparameters={"max_depth": 2})


def test_versions_only_go_up(
    built_models: dict[str, Built], tmp_path: Path, project: Path, releases: Path
) -> None:
    v1 = built_models[MODEL]
    release.record_release(MODEL, v1.folder, v1.wheel, releases)
    record = releases / f"{VERSION}.json"
    record.rename(record.with_name(f"{NEXT_MINOR}.json"))
    text = record.with_name(f"{NEXT_MINOR}.json").read_text()
    text = text.replace(f'"version":"{VERSION}"', f'"version":"{NEXT_MINOR}"')
    record.with_name(f"{NEXT_MINOR}.json").write_text(text)
    with pytest.raises(release.ReleaseError, match="versions only go up"):
        build(tmp_path / "older", project)


def test_differential_test_between_versions(
    built_models: dict[str, Built], tmp_path: Path, project: Path, releases: Path
) -> None:
    v1 = built_models[MODEL]
    release.record_release(MODEL, v1.folder, v1.wheel, releases)
    # a small change (a patch): predictions move a little
    patch = build(
        tmp_path / "patch", project, model={"version": NEXT_PATCH}, hyperparameters={"n_estimators": 190}
    )
    report = patch.manifest["release"]["differential"]
    assert patch.manifest["release"]["status"] == "new version"
    assert report["against"] == VERSION and report["rows"] > 200
    assert (
        report["change"]["max"] > 0 and report["changed_share"] <= report["thresholds"]["max_changed_share"]
    )
    assert report["metrics_before"] == v1.manifest["metrics"]["held_out"]
    # a big change under a minor version fails the build ...
    big = {"hyperparameters": {"max_depth": 3, "n_estimators": 25, "min_samples_leaf": 8}}
    with pytest.raises(release.ReleaseError, match="bump the major version"):
        build(tmp_path / "minor", project, model={"version": NEXT_MINOR}, **big)
    # ... and passes under a new major version, with the report in the manifest
    major = build(tmp_path / "major", project, model={"version": NEXT_MAJOR}, **big)
    report = major.manifest["release"]["differential"]
    assert report["major_bump"] and report["changed_share"] > report["thresholds"]["max_changed_share"]
    assert report["change"]["max"] > report["thresholds"]["change_atol"]


def test_two_versions_loaded_side_by_side(
    built_models: dict[str, Built], tmp_path: Path, project: Path, releases: Path
) -> None:
    v1 = built_models[MODEL]
    v2 = build(tmp_path / "v2", project, model={"version": NEXT_MAJOR}, hyperparameters={"max_depth": 3})
    old, new = predictlib.load(v1.wheel), predictlib.load(v2.wheel)
    assert (old.name, old.version, new.name, new.version) == (MODEL, VERSION, MODEL, NEXT_MAJOR)
    rows = records_from_frame(v1.trained.X_test)
    p_old, p_new = old.predict_proba(rows), new.predict_proba(rows)
    assert not np.allclose(p_old, p_new)
    np.testing.assert_allclose(p_old, v1.trained.model.predict_proba(v1.trained.X_test), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(p_new, v2.trained.model.predict_proba(v1.trained.X_test), rtol=1e-9, atol=1e-9)
    # the folders load too
    assert predictlib.load(v2.folder).version == NEXT_MAJOR
