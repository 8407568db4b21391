"""Shared fixtures: every model in models/ built once per test session (trained,
exported, verified and packaged into a temporary folder, exactly as the build does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from predictlib.build.project import Built, build_project, find_projects

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def model_names() -> list[str]:
    """The bundled models (the folders of models/)."""
    return [p.name for p in find_projects(MODELS)]


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """name -> Built (artifact folder, model wheel, fitted original pipeline...)."""
    base = tmp_path_factory.mktemp("build")
    return {
        name: build_project(MODELS / name, artifacts=base / "artifacts", dist=base / "dist", log=None)
        for name in model_names()
    }


@pytest.fixture(scope="session")
def house_prices(built_models: dict[str, Built]) -> Built:
    return built_models["house_prices"]


@pytest.fixture(scope="session")
def runtime_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime package built as a wheel with its real build backend."""
    out = tmp_path_factory.mktemp("runtime_wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("predictlib-*.whl")
    return wheel
