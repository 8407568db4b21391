"""Model versions: the release record, version discipline and differential tests.

A released version is recorded in ``<project>/releases/<version>.json`` (for a bundled
model, ``models/<name>/releases/``; for :func:`predictlib.build.package`, the folder given
as ``releases=``): the
sha256 of its ``model.onnx``, ``manifest.json`` and wheel, its held-out metrics, and
its *evaluation set*: the golden records (held-out rows, generated records, edge
cases) with the released model's outputs. The build then

* refuses to produce a different ``model.onnx`` under a version already released
  (bump ``model.version`` in ``model.toml``);
* refuses a version lower than the last release;
* compares a new version with the last release on that release's evaluation set (the
  "back-to-back" test): share of rows whose prediction changed beyond the model's
  ``[release]`` thresholds, distribution of the changes, rows newly refused or
  accepted, metrics before and after. Above ``max_changed_share`` the build fails,
  unless the major version was bumped.

    python -m predictlib.build.stages.release record models/MODEL    # after `nox -s build`: mark it released
    python -m predictlib.build.stages.release compare models/MODEL [--against VERSION]   # report only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import predictlib

from .golden import GOLDEN_FILE, decode, encode, read_golden

#: defaults of a model.toml's [release] table
DEFAULT_THRESHOLDS = {
    # a regression prediction changed when it moved by more than this, relatively
    "change_rtol": 0.01,
    # a class probability changed when it moved by more than this, absolutely
    "change_atol": 0.01,
    # the build fails when a larger share of the evaluation rows changed (same major version)
    "max_changed_share": 0.05,
}


class ReleaseError(RuntimeError):
    """The build breaks the version discipline or changes predictions too much."""


def parse_version(version: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if not match:
        raise ReleaseError(f"model version {version!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def load_releases(releases: Path) -> dict[str, dict[str, Any]]:
    """The release records in folder ``releases``, oldest version first."""
    found = {}
    for path in releases.glob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("version") != path.stem:
            raise ReleaseError(f"{path}: records version {record.get('version')!r}")
        found[path.stem] = record
    return dict(sorted(found.items(), key=lambda item: parse_version(item[0])))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ evaluation set


def _outputs(runtime: predictlib.Model, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per record: the output (None where the model refuses it)."""
    results: list[Any] = [None] * len(records)
    refused: set[int] = set()
    try:
        runtime.predict(records)
    except predictlib.InputError as exc:
        refused = {p.row for p in exc.problems if p.row is not None}
    keep = [i for i in range(len(records)) if i not in refused]
    if keep:
        rows = [records[i] for i in keep]
        if runtime.task == "classification":
            labels = runtime.predict(rows).tolist()
            proba = runtime.predict_proba(rows).tolist()
            for i, label, p in zip(keep, labels, proba, strict=True):
                results[i] = {"label": label, "probabilities": p}
        else:
            for i, value in zip(keep, runtime.predict(rows).tolist(), strict=True):
                results[i] = value
    return {"outputs": results}


def evaluation_set(folder: Path, runtime: predictlib.Model) -> dict[str, Any]:
    """The golden accepted records (column-wise) and this model's outputs for them."""
    golden = read_golden(folder / GOLDEN_FILE)
    records = [a["record"] for a in golden["accepted"]]
    columns = sorted({c for r in records for c in r})
    rows = [[r.get(c) for c in columns] for r in records]
    return {"columns": columns, "rows": encode(rows), **encode(_outputs(runtime, records))}


def _records(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    columns = evaluation["columns"]
    return [dict(zip(columns, row, strict=True)) for row in decode(evaluation["rows"])]


# ------------------------------------------------------------------ differential test


def differential(
    runtime: predictlib.Model,
    release: dict[str, Any],
    thresholds: dict[str, float],
    metrics: dict[str, float],
) -> dict[str, Any]:
    """Candidate ``runtime`` against released ``release`` on the release's evaluation set."""
    evaluation = release["evaluation"]
    records = _records(evaluation)
    before = decode(evaluation["outputs"])
    after = _outputs(runtime, records)["outputs"]
    changes: list[float] = []
    changed = newly_refused = newly_accepted = label_changes = 0
    for old, new in zip(before, after, strict=True):
        if old is None or new is None:
            newly_refused += old is not None and new is None
            newly_accepted += old is None and new is not None
            changed += (old is None) != (new is None)
            continue
        if runtime.task == "classification":
            move = float(np.max(np.abs(np.subtract(new["probabilities"], old["probabilities"]))))
            label_moved = new["label"] != old["label"]
            label_changes += label_moved
            changed += label_moved or move > thresholds["change_atol"]
        else:
            move = abs(new - old) / max(abs(old), np.finfo(float).tiny) if new != old else 0.0
            changed += not (move <= thresholds["change_rtol"])
        changes.append(move)
    n = len(records)
    moves = np.asarray(changes, dtype=np.float64)
    finite = moves[np.isfinite(moves)]
    quantiles = {f"p{q}": float(np.percentile(finite, q)) if finite.size else 0.0 for q in (50, 90, 99)} | {
        "max": float(moves.max()) if moves.size else 0.0
    }
    report = {
        "against": release["version"],
        "rows": n,
        "changed": int(changed),
        "changed_share": changed / n if n else 0.0,
        "newly_refused": int(newly_refused),
        "newly_accepted": int(newly_accepted),
        "change": {
            "measure": "max abs probability change"
            if runtime.task == "classification"
            else "relative change",
            **quantiles,
        },
        "thresholds": dict(thresholds),
        "metrics_before": release.get("metrics", {}),
        "metrics_after": metrics,
    }
    if runtime.task == "classification":
        report["label_changes"] = int(label_changes)
    return report


def thresholds_of(overrides: Mapping[str, float]) -> dict[str, float]:
    """:data:`DEFAULT_THRESHOLDS` with a model's own (a model.toml's ``[release]`` table)."""
    unknown = sorted(set(overrides) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ReleaseError(f"unknown release thresholds {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}")
    return {**DEFAULT_THRESHOLDS, **overrides}


def check_release(
    name: str,
    version: str,
    folder: Path,
    records: Path,
    thresholds: Mapping[str, float],
    log: Any = print,
) -> dict[str, Any]:
    """The version discipline against the release records in folder ``records`` and, for
    a new version, the differential test against the last release; returns the
    manifest's ``release`` section, raises :class:`ReleaseError`."""
    releases = load_releases(records)
    model_sha = sha256(folder / "model.onnx")
    current = parse_version(version)
    if version in releases:
        released = releases[version]["model_sha256"]
        if released != model_sha:
            raise ReleaseError(
                f"{name} {version} was released with model.onnx sha256 {released}; this build gives "
                f"{model_sha}. A released version never changes: bump the model's version "
                f"(model.version in its model.toml)"
            )
        log(f"  release: {name} {version} rebuilt identical to its release record")
        return {"status": "released", "version": version}
    older = [v for v in releases if parse_version(v) < current]
    newer = [v for v in releases if parse_version(v) > current]
    if newer:
        raise ReleaseError(f"{name} {version} is older than the released {newer[-1]}: versions only go up")
    if not older:
        return {"status": "first version", "version": version}
    last = releases[older[-1]]
    metrics = json.loads((folder / "manifest.json").read_text())["metrics"]["held_out"]
    report = differential(predictlib.load(folder), last, thresholds_of(thresholds), metrics)
    report["major_bump"] = current[0] > parse_version(last["version"])[0]
    log(
        f"  differential vs {last['version']}: {report['changed']} of {report['rows']} rows changed "
        f"({report['changed_share']:.1%}), {report['newly_refused']} newly refused, "
        f"change p50 {report['change']['p50']:.3g} p99 {report['change']['p99']:.3g}"
    )
    limit = report["thresholds"]["max_changed_share"]
    if report["changed_share"] > limit and not report["major_bump"]:
        raise ReleaseError(
            f"{name} {version} changes {report['changed_share']:.1%} of {last['version']}'s evaluation rows "
            f"(limit {limit:.1%} for a minor or patch version): bump the major version if intended. "
            f"Report: {json.dumps(report)}"
        )
    return {"status": "new version", "version": version, "differential": report}


def record_release(name: str, folder: Path, wheel: Path, records: Path) -> Path:
    """Write ``records/<version>.json`` for the built artifact ``folder``."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    version = manifest["version"]
    record = {
        "name": name,
        "version": version,
        "task": manifest["task"],
        "model_sha256": sha256(folder / "model.onnx"),
        "manifest_sha256": sha256(folder / "manifest.json"),
        "wheel": wheel.name,
        "wheel_sha256": sha256(wheel),
        "metrics": manifest["metrics"]["held_out"],
        "evaluation": evaluation_set(folder, predictlib.load(folder)),
    }
    path = records / f"{version}.json"
    if path.exists():
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing["model_sha256"] != record["model_sha256"]:
            raise ReleaseError(f"{path} records another artifact for {name} {version}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n")
    return path


def compare(
    name: str,
    folder: Path,
    records: Path,
    thresholds: Mapping[str, float],
    against: str | None = None,
) -> dict[str, Any]:
    """The differential report of the built artifact ``folder`` against a release in
    ``records`` (the last one below its version by default)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    releases = load_releases(records)
    if against is None:
        older = [v for v in releases if parse_version(v) < parse_version(manifest["version"])]
        if not older:
            raise ReleaseError(f"{name}: no release older than {manifest['version']} to compare with")
        against = older[-1]
    if against not in releases:
        raise ReleaseError(f"{name}: no release {against} (released: {list(releases)})")
    report = differential(
        predictlib.load(folder),
        releases[against],
        thresholds_of(thresholds),
        manifest["metrics"]["held_out"],
    )
    report["candidate"] = manifest["version"]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m predictlib.build.stages.release", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="record a built artifact as released")
    report = commands.add_parser("compare", help="differential report against a release")
    report.add_argument("--against", help="released version (default: the last one below the candidate)")
    report.add_argument(
        "--output", type=Path, help="report file (default: ARTIFACTS/MODEL/differential.json)"
    )
    for p in (record, report):
        p.add_argument("project", type=Path, help="the model's folder (model.toml, releases/)")
        p.add_argument("--artifacts", type=Path, default=Path("artifacts"))
        p.add_argument("--dist", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    from ..project import ProjectError, load_project

    try:
        project = load_project(args.project)
        folder = args.artifacts / project.name
        if args.command == "record":
            from .package import wheel_filename

            version = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["version"]
            wheel = args.dist / wheel_filename(project.name, version)
            path = record_release(project.name, folder, wheel, project.releases)
            print(f"recorded {project.name} {version} in {path}")
            return 0
        result = compare(project.name, folder, project.releases, project.release_thresholds, args.against)
    except (ReleaseError, ProjectError, OSError) as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    out = args.output or folder / "differential.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, sort_keys=True))
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
