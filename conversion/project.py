"""A model project: a folder that trains one pipeline reproducibly and ships it.

The layout (the bundled models in ``models/`` use it; so can any repository)::

    my_model/
      model.toml        # [model] name, version, task, description; [data] file, target;
                        # [training] seed, test_size; optional [acceptance], [verification],
                        # [release], [hyperparameters], [features] (free-form, for pipeline.py)
      pipeline.py       # build_pipeline(config, X_train) -> unfitted pipeline;
                        # optional prepare_data(frame, config) -> frame
      data/train.csv    # the data file named in model.toml (its sha256 checked when given)
      releases/         # release records (predictlib.build.stages.release), when released
      *.py              # anything pipeline.py imports relatively (custom transformers and
                        # their converters: ``from .transformers import MyStep``)

:func:`build_project` trains it (seeded split, fit, held-out metrics) and hands the
fitted pipeline to :func:`predictlib.build.package`: the one code path for bundled
models and users' projects (``predictlib build PATH``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .packaging import Log, Packaged, package
from .stages.metrics import held_out_metrics

CONFIG_FILE = "model.toml"
PIPELINE_FILE = "pipeline.py"

#: required keys of model.toml, per table
REQUIRED = {
    "model": ("name", "version", "task"),
    "data": ("file", "target"),
    "training": ("seed", "test_size"),
}
TASKS = ("regression", "classification")


class ProjectError(ValueError):
    """A model folder cannot be loaded or trained as configured (named: file, key, what to do)."""


@dataclass(frozen=True)
class Project:
    """A model folder and its parsed ``model.toml``."""

    folder: Path
    config: Mapping[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.config["model"]["name"])

    @property
    def version(self) -> str:
        return str(self.config["model"]["version"])

    @property
    def releases(self) -> Path:
        """The folder of release records."""
        return self.folder / "releases"

    @property
    def release_thresholds(self) -> dict[str, float]:
        return dict(self.config.get("release", {}))

    def module(self) -> ModuleType:
        """The project's ``pipeline.py``, imported as a module of a package made of the
        folder (so it may import its siblings relatively)."""
        return _import_pipeline(self)


@dataclass
class Trained:
    """A project's fitted pipeline, its split and its held-out metrics."""

    name: str
    config: Mapping[str, Any]
    model: Any
    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    data_sha256: str
    rows: int
    metrics: dict[str, float]


@dataclass
class Built:
    """One project's build: the trained pipeline and what :func:`package` made of it."""

    trained: Trained
    packaged: Packaged

    @property
    def exported(self) -> Any:
        return self.packaged.exported

    @property
    def folder(self) -> Path:
        return self.packaged.folder

    @property
    def wheel(self) -> Path:
        return self.packaged.wheel

    @property
    def manifest(self) -> dict[str, Any]:
        return self.packaged.manifest


def load_project(path: str | Path) -> Project:
    """The project in folder ``path`` (which holds ``model.toml`` and ``pipeline.py``)."""
    folder = Path(path).resolve()
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ProjectError(f"{folder}: no {CONFIG_FILE} (a model folder holds model.toml and pipeline.py)")
    if not (folder / PIPELINE_FILE).is_file():
        raise ProjectError(f"{folder}: no {PIPELINE_FILE} defining build_pipeline(config, X_train)")
    try:
        with config_path.open("rb") as fh:
            config = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{config_path}: not valid TOML: {exc}") from exc
    for table, keys in REQUIRED.items():
        section = config.get(table)
        if not isinstance(section, dict):
            raise ProjectError(f"{config_path}: no [{table}] table (it needs {', '.join(keys)})")
        missing = [k for k in keys if k not in section]
        if missing:
            raise ProjectError(f"{config_path}: [{table}] lacks {', '.join(missing)}")
    name = config["model"]["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        raise ProjectError(
            f"{config_path}: model.name {name!r}: lower-case letters, digits and '_', starting with a letter"
        )
    if config["model"]["task"] not in TASKS:
        raise ProjectError(f"{config_path}: model.task {config['model']['task']!r}: one of {TASKS}")
    test_size = config["training"]["test_size"]
    if not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise ProjectError(f"{config_path}: training.test_size {test_size!r}: a fraction between 0 and 1")
    return Project(folder, config)


def find_projects(path: str | Path) -> list[Project]:
    """``path`` itself when it is a model folder, else every model folder directly in it
    (sorted by name)."""
    folder = Path(path)
    if (folder / CONFIG_FILE).is_file():
        return [load_project(folder)]
    if not folder.is_dir():
        raise ProjectError(f"{folder}: no such folder")
    projects = [load_project(p.parent) for p in sorted(folder.glob(f"*/{CONFIG_FILE}"))]
    if not projects:
        raise ProjectError(f"{folder}: neither a model folder ({CONFIG_FILE}) nor a folder of model folders")
    return projects


def _import_pipeline(project: Project) -> ModuleType:
    package_name = f"predictlib_project_{project.name}"
    existing = sys.modules.get(package_name)
    if existing is None or list(getattr(existing, "__path__", [])) != [str(project.folder)]:
        for key in [k for k in sys.modules if k == package_name or k.startswith(package_name + ".")]:
            del sys.modules[key]
        init = project.folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                package_name, init, submodule_search_locations=[str(project.folder)]
            )
        else:
            spec = importlib.machinery.ModuleSpec(package_name, None, is_package=True)
            spec.submodule_search_locations = [str(project.folder)]
        if spec is None:  # pragma: no cover - a file always gives a spec
            raise ProjectError(f"{project.folder}: cannot be imported")
        package = importlib.util.module_from_spec(spec)
        sys.modules[package_name] = package
        if spec.loader is not None:
            spec.loader.exec_module(package)
    module = importlib.import_module(f"{package_name}.pipeline")
    if not callable(getattr(module, "build_pipeline", None)):
        raise ProjectError(f"{project.folder / PIPELINE_FILE}: defines no build_pipeline(config, X_train)")
    return module


def load_data(project: Project) -> tuple[Any, str]:
    """The project's data frame (after ``prepare_data``, without ``drop_columns``) and
    the sha256 of its file, checked against ``data.sha256`` when given."""
    import pandas as pd

    data = project.config["data"]
    path = project.folder / data["file"]
    if not path.is_file():
        raise ProjectError(f"{project.folder / CONFIG_FILE}: data.file {data['file']!r}: no file {path}")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    expected = data.get("sha256")
    if expected and digest != expected:
        raise ProjectError(f"{path}: sha256 {digest}, model.toml expects {expected}")
    frame = pd.read_csv(path)
    prepare = getattr(project.module(), "prepare_data", None)  # derived columns (a band, a date...)
    if prepare is not None:
        frame = prepare(frame, project.config)
    drop = [c for c in data.get("drop_columns", [])]
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise ProjectError(f"{project.folder / CONFIG_FILE}: data.drop_columns {unknown} are not in {path}")
    return frame.drop(columns=drop), digest


def train(project: Project) -> Trained:
    """Train the project's pipeline deterministically (seeded split and fit) and compute
    its held-out metrics."""
    from sklearn.model_selection import train_test_split

    config = project.config
    frame, digest = load_data(project)
    target = config["data"]["target"]
    if target not in frame.columns:
        raise ProjectError(
            f"{project.folder / CONFIG_FILE}: data.target {target!r} is not a column of the data"
        )
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
    model = project.module().build_pipeline(config, X_train)
    model.fit(X_train, y_train)
    metrics = held_out_metrics(model, X_test, y_test)
    return Trained(project.name, config, model, X_train, X_test, y_train, y_test, digest, len(frame), metrics)


def build_project(
    project: Project | str | Path,
    *,
    dist: str | Path = "dist",
    artifacts: str | Path = "artifacts",
    log: Log | None = print,
) -> Built:
    """Train ``project`` and :func:`package` it: the artifact in ``artifacts/<name>``,
    the wheel in ``dist``. Raises when any stage fails."""
    if not isinstance(project, Project):
        project = load_project(project)
    say: Log = log if log is not None else (lambda _msg: None)
    trained = train(project)
    cfg = project.config
    say(f"{project.name}: trained on {len(trained.X_train)} rows ({project.folder})")
    training = {
        "data_sha256": trained.data_sha256,
        "rows": trained.rows,
        "train_rows": len(trained.X_train),
        "test_rows": len(trained.X_test),
        "target": cfg["data"]["target"],
        "seed": cfg["training"]["seed"],
        "test_size": cfg["training"]["test_size"],
    }
    packaged = package(
        trained.model,
        trained.X_train,
        name=project.name,
        version=project.version,
        X_test=trained.X_test,
        y_test=trained.y_test,
        out=dist,
        artifacts=Path(artifacts) / project.name,
        description=str(cfg["model"].get("description", "")),
        output_unit=str(cfg["model"].get("output_unit", "")),
        hyperparameters=cfg.get("hyperparameters", {}),
        acceptance=cfg.get("acceptance", {}),
        generated_records=int(cfg.get("verification", {}).get("generated_records", 10_000)),
        seed=int(cfg["training"]["seed"]),
        releases=project.releases,
        release_thresholds=project.release_thresholds,
        training=training,
        log=say,
    )
    return Built(trained, packaged)
