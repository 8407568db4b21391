"""One call ships a fitted pipeline: :func:`package`.

export -> artifact -> verification (held-out and generated records, refusals confirmed
against the original) -> golden vectors -> ``model.ort`` -> release check -> sealed
manifest -> reproducible model wheel. ``nox -s build`` runs the same function for every
bundled model (through :mod:`predictlib.build.project`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import predictlib
from predictlib._artifact import IDS_MODEL_FILE, MANIFEST_FILE, MODEL_FILE

from . import tolerances
from .boosters import as_estimator
from .core.frame import Column, ExportError
from .stages.export import Exported, export_pipeline, infer_columns
from .stages.golden import write_golden
from .stages.manifest import RUNTIME_REQUIREMENT, dumps, files_section, make_manifest, seal
from .stages.metrics import check_acceptance, held_out_metrics
from .stages.mobile import ORT_FILE, ort_details, verify_ort, write_ort
from .stages.package import write_model_wheel
from .stages.profile import PROFILE_ROLE, write_profile
from .stages.release import ReleaseError, check_release, parse_version
from .stages.verify import EquivalenceError, Report, compare, generate_records, records_from_frame

#: a model name: what the wheel, the entry point and ``predictlib.load(name)`` use
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: held-out rows verified when no ``X_test`` is given: a sample of the training rows
TRAINING_SAMPLE = 1_000

Log = Callable[[str], Any]


@dataclass(frozen=True)
class Reference:
    """What the verification and the golden vectors compare against: the fitted
    original, its training frame and the held-out frame."""

    name: str
    model: Any
    X_train: Any
    X_test: Any


@dataclass
class Packaged:
    """The result of :func:`package`."""

    name: str
    version: str
    #: the artifact folder (model.onnx, manifest.json, golden.json, model.ort, ...)
    folder: Path
    #: the model wheel: ``predictlib_<name>-<version>-py3-none-any.whl``
    wheel: Path
    #: the sealed manifest (as written in the folder and the wheel)
    manifest: dict[str, Any]
    #: the equivalence report: per record set, rows, predicted, refused, errors
    equivalence: dict[str, Any]
    #: the exported graph (and its checks, columns, classes)
    exported: Exported = field(repr=False)


class PackagingError(ValueError):
    """The arguments of :func:`package` cannot make an artifact (named, with what to do)."""


def package(
    pipeline: Any,
    X_train: Any,
    *,
    name: str,
    version: str,
    X_test: Any = None,
    y_test: Any = None,
    out: str | Path = "dist",
    artifacts: str | Path | None = None,
    description: str = "",
    output_unit: str = "",
    hyperparameters: Mapping[str, Any] | None = None,
    acceptance: Mapping[str, float] | None = None,
    generated_records: int = 10_000,
    seed: int = 0,
    releases: str | Path | None = None,
    release_thresholds: Mapping[str, float] | None = None,
    training: Mapping[str, Any] | None = None,
    log: Log | None = None,
) -> Packaged:
    """Export, verify and package the *fitted* ``pipeline`` as a model wheel.

    ``pipeline`` is any fitted feature-engine / scikit-learn pipeline (or estimator)
    ending in a regressor or a classifier; ``X_train`` the pandas DataFrame it was fitted
    on: its column names and dtypes are the model's inputs (numbers, text / category,
    naive datetime64), and it seeds the generated verification records.

    Verification runs the graph through the predictlib runtime against ``pipeline`` on
    ``X_test`` (or, without it, a sample of ``X_train``) and on ``generated_records``
    (>= 10,000) generated records; where the original raises, the artifact must refuse
    (confirmed record by record). Any disagreement raises
    :class:`~predictlib.build.stages.verify.EquivalenceError` listing them. With
    ``y_test``, held-out metrics are computed (regression: RMSE, MAE, R², RMSE of log
    when all values are positive; classification: accuracy, macro F1, log loss) and
    ``acceptance`` (e.g. ``{"max_rmse": 25_000}``, ``{"min_accuracy": 0.9}``) is
    checked.

    Writes the artifact folder (``artifacts``, default ``<out>/artifacts/<name>``) and
    the wheel ``<out>/predictlib_<name>-<version>-py3-none-any.whl``; the same inputs
    give the same bytes. ``releases``: a folder of release records
    (``<version>.json``, see :mod:`predictlib.build.stages.release`): the build then
    refuses a changed graph under a released version and runs the differential test
    against the last release. Returns a :class:`Packaged`.
    """
    say: Log = log if log is not None else (lambda _msg: None)
    pipeline = as_estimator(pipeline)  # a raw LightGBM / XGBoost Booster: predictlib.build.booster(raw)
    _check_arguments(pipeline, X_train, name, version, X_test, y_test, generated_records)
    t0 = time.perf_counter()
    out = Path(out)
    folder = Path(artifacts) if artifacts is not None else out / "artifacts" / name
    columns = infer_columns(X_train)
    reference = Reference(name, pipeline, X_train, X_test if X_test is not None else _sample(X_train, seed))
    metrics: dict[str, Any] = {"held_out": {}, "acceptance": dict(acceptance or {})}
    if y_test is not None:
        metrics["held_out"] = held_out_metrics(pipeline, X_test, y_test)
        say(f"{name}: held-out {', '.join(f'{k}={v:.4g}' for k, v in metrics['held_out'].items())}")
        check_acceptance(name, metrics["held_out"], acceptance or {})
    elif acceptance:
        raise PackagingError(f"{name}: acceptance {dict(acceptance)} needs y_test (and X_test)")
    exported = export_pipeline(pipeline, columns, name=name, X_train=X_train)
    graphs = graph_files(exported)
    info = {
        "name": name,
        "version": version,
        "description": description,
        "output_unit": output_unit,
        "hyperparameters": dict(hyperparameters or {}),
    }
    training_section = dict(training) if training is not None else _training_section(X_train, X_test, seed)
    manifest = make_manifest(
        info=info,
        exported=exported,
        model_bytes=graphs[MODEL_FILE],
        training=training_section,
        metrics=metrics,
        equivalence=None,
    )
    _write_artifact(folder, graphs, manifest)
    fused = exported.fusion
    say(
        f"{name}: exported {len(exported.model.graph.node)} nodes, {len(exported.checks)} refusal checks"
        + (
            f"; categorical part fused ({fused.nodes_removed} nodes -> {fused.nodes_added}, "
            f"{len(fused.vocabulary)} texts, {fused.checks_dropped} checks that cannot fire dropped)"
            if fused
            else ""
        )
    )
    held_label = "held_out" if X_test is not None else "training_sample"
    manifest["equivalence"] = verify(reference, folder, columns, generated_records, seed, held_label, say)
    # -- for other languages and mobile (docs/embedding.md): golden vectors, ORT-format model
    write_golden(reference, predictlib.load(folder), folder, columns, seed)
    profile = write_profile(folder, pipeline, X_train, columns, exported.task)  # drift reference
    manifest["files"] = files_section(
        folder, {"golden.json": "golden", profile: PROFILE_ROLE, **write_ort(folder)}
    )
    manifest["files"][ORT_FILE].update(ort_details(), verification=verify_ort(folder, manifest, say))
    # --
    manifest["release"] = (
        check_release(name, version, folder, Path(releases), release_thresholds or {}, say)
        if releases is not None
        else {"status": "no release records", "version": version}
    )
    _write_artifact(folder, graphs, seal(manifest))
    # the sealed artifact loads and gives the verified answers
    final = compare(pipeline, predictlib.load(folder), records_from_frame(reference.X_test), columns)
    if final.failures:
        raise EquivalenceError(f"{name}: the sealed artifact predicts differently: {final.failures[:3]}")
    wheel = write_model_wheel(
        name,
        version,
        {
            **graphs,
            MANIFEST_FILE: dumps(manifest),
            **{file: (folder / file).read_bytes() for file in manifest["files"]},
        },
        out,
        summary=f"predictlib model '{name}': {description}",
        requires=[RUNTIME_REQUIREMENT],
    )
    say(f"{name}: wrote {wheel} [{time.perf_counter() - t0:.1f}s]")
    return Packaged(name, version, folder, wheel, manifest, manifest["equivalence"], exported)


def graph_files(exported: Exported) -> dict[str, bytes]:
    """The artifact's graph files: model.onnx, and model.ids.onnx when the graph is fused."""
    graphs = {MODEL_FILE: exported.model.SerializeToString(deterministic=True)}
    if exported.ids_model is not None:
        graphs[IDS_MODEL_FILE] = exported.ids_model.SerializeToString(deterministic=True)
    return graphs


def verify(
    reference: Reference,
    folder: Path,
    columns: Sequence[Column],
    generated_records: int,
    seed: int,
    held_label: str = "held_out",
    log: Log = print,
) -> dict[str, Any]:
    """Held-out and generated records through the runtime vs the original; raises
    :class:`EquivalenceError` listing the disagreements."""
    runtime = predictlib.load(folder)
    sets = {
        held_label: records_from_frame(reference.X_test),
        "generated": generate_records(reference.X_train, columns, generated_records, seed),
    }
    result: dict[str, Any] = {"tolerance": {"rtol": tolerances.RTOL, "atol": tolerances.ATOL}}
    for label, records in sets.items():
        t0 = time.perf_counter()
        report = compare(reference.model, runtime, records, columns, seed=seed)
        log(_report_line(label, report, time.perf_counter() - t0))
        if report.failures:
            shown = "\n    ".join(report.failures[:10])
            raise EquivalenceError(
                f"{reference.name}: {len(report.failures)} disagreement(s) on {label} records:\n    {shown}"
            )
        result[label] = report.as_dict()
    return result


def _report_line(label: str, report: Report, seconds: float) -> str:
    return (
        f"  {label}: {report.rows} rows, {report.accepted} predicted, {report.refused} refused "
        f"({report.refusals_confirmed} confirmed by the original), max abs error "
        f"{report.max_abs_error:.3g}, max rel error {report.max_rel_error:.3g}, "
        f"label disagreements {report.label_disagreements} (ties {report.label_ties}) [{seconds:.1f}s]"
    )


def _write_artifact(folder: Path, graphs: dict[str, bytes], manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / IDS_MODEL_FILE).unlink(missing_ok=True)
    for file, data in graphs.items():
        (folder / file).write_bytes(data)
    (folder / MANIFEST_FILE).write_bytes(dumps(manifest))


def _sample(frame: Any, seed: int) -> Any:
    if len(frame) <= TRAINING_SAMPLE:
        return frame
    return frame.sample(n=TRAINING_SAMPLE, random_state=seed)


def _training_section(X_train: Any, X_test: Any, seed: int) -> dict[str, Any]:
    return {
        "train_rows": len(X_train),
        "test_rows": 0 if X_test is None else len(X_test),
        "seed": seed,
    }


def _check_arguments(
    pipeline: Any,
    X_train: Any,
    name: str,
    version: str,
    X_test: Any,
    y_test: Any,
    generated_records: int,
) -> None:
    import pandas as pd
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise PackagingError(
            f"name {name!r}: a model name is lower-case letters, digits and '_', starting with a "
            "letter (it names the wheel predictlib_<name> and predictlib.load('<name>'))"
        )
    try:
        parse_version(version)
    except ReleaseError as exc:
        raise PackagingError(f"version {version!r}: give MAJOR.MINOR.PATCH, e.g. '1.0.0'") from exc
    try:
        check_is_fitted(pipeline)
    except NotFittedError as exc:
        raise PackagingError(
            f"{type(pipeline).__name__} is not fitted: package() takes a fitted pipeline "
            "(call pipeline.fit(X_train, y_train) first)"
        ) from exc
    except TypeError as exc:
        raise PackagingError(
            f"{type(pipeline).__module__}.{type(pipeline).__name__} is not a scikit-learn estimator: "
            "package() takes a fitted scikit-learn Pipeline or estimator"
        ) from exc
    for label, frame in (("X_train", X_train), ("X_test", X_test)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise PackagingError(
                f"{label} is a {type(frame).__name__}: give a pandas DataFrame (its column names and "
                "dtypes are the model's inputs)"
            )
    if len(X_train) == 0:
        raise PackagingError("X_train has no rows: give the frame the pipeline was fitted on")
    if X_test is not None and list(X_test.columns) != list(X_train.columns):
        raise PackagingError(
            f"X_test's columns {list(X_test.columns)[:10]} differ from X_train's "
            f"{list(X_train.columns)[:10]}: give both with the same columns"
        )
    if y_test is not None:
        if X_test is None:
            raise PackagingError("y_test without X_test: give the held-out frame X_test too")
        if len(np.asarray(y_test)) != len(X_test):
            raise PackagingError(f"y_test has {len(np.asarray(y_test))} values, X_test {len(X_test)} rows")
    if generated_records < 10_000:
        raise PackagingError(
            f"generated_records={generated_records}: the verification needs at least 10,000 generated records"
        )
    fitted_on = getattr(pipeline, "feature_names_in_", None)
    if fitted_on is not None and list(fitted_on) != [str(c) for c in X_train.columns]:
        raise PackagingError(
            f"{type(pipeline).__name__} was fitted on columns {list(fitted_on)[:10]}, X_train has "
            f"{list(X_train.columns)[:10]}: give the frame the pipeline was fitted on"
        )


__all__ = ["ExportError", "Packaged", "PackagingError", "Reference", "graph_files", "package", "verify"]
