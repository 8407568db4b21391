"""The build: train -> export -> verify -> package, for every model in ``models/``.

    python -m predictlib.build.build [MODEL ...] [--dist dist] [--artifacts artifacts]

Fails (exit 1) when a model misses its acceptance threshold, when the graph and
the original pipeline disagree, or when an artifact does not load back.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import predictlib
from models.train import Trained, model_names, train
from predictlib._artifact import IDS_MODEL_FILE, MANIFEST_FILE, MODEL_FILE

from . import tolerances
from .stages.export import Exported, export_pipeline, infer_columns
from .stages.golden import write_golden
from .stages.manifest import RUNTIME_REQUIREMENT, dumps, files_section, make_manifest, seal
from .stages.mobile import ORT_FILE, ort_details, verify_ort, write_ort
from .stages.package import write_model_wheel
from .stages.release import check_release
from .stages.verify import EquivalenceError, compare, generate_records, records_from_frame


def graph_files(exported: Exported) -> dict[str, bytes]:
    """The artifact's graph files: model.onnx, and model.ids.onnx when the graph is fused."""
    graphs = {MODEL_FILE: exported.model.SerializeToString(deterministic=True)}
    if exported.ids_model is not None:
        graphs[IDS_MODEL_FILE] = exported.ids_model.SerializeToString(deterministic=True)
    return graphs


def _write_artifact(folder: Path, graphs: dict[str, bytes], manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / IDS_MODEL_FILE).unlink(missing_ok=True)
    for name, data in graphs.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST_FILE).write_bytes(dumps(manifest))


def verify(trained: Trained, folder: Path, columns: Any, log: Any = print) -> dict[str, Any]:
    """Held-out and generated records through the runtime vs the original; raises on disagreement."""
    runtime = predictlib.load(folder)
    seed = int(trained.config["training"]["seed"])
    n = int(trained.config.get("verification", {}).get("generated_records", 10000))
    sets = {
        "held_out": records_from_frame(trained.X_test),
        "generated": generate_records(trained.X_train, columns, n, seed),
    }
    result: dict[str, Any] = {"tolerance": {"rtol": tolerances.RTOL, "atol": tolerances.ATOL}}
    for label, records in sets.items():
        t0 = time.perf_counter()
        report = compare(trained.model, runtime, records, columns, seed=seed)
        log(
            f"  {label}: {report.rows} rows, {report.accepted} predicted, {report.refused} refused "
            f"({report.refusals_confirmed} confirmed by the original), max abs error "
            f"{report.max_abs_error:.3g}, max rel error {report.max_rel_error:.3g}, "
            f"label disagreements {report.label_disagreements} (ties {report.label_ties}) "
            f"[{time.perf_counter() - t0:.1f}s]"
        )
        if report.failures:
            shown = "\n    ".join(report.failures[:10])
            raise EquivalenceError(
                f"{trained.name}: {len(report.failures)} disagreement(s) on {label} records:\n    {shown}"
            )
        result[label] = report.as_dict()
    return result


@dataclass
class Built:
    """One model's build: the trained pipeline, its export, its artifact and its wheel."""

    trained: Trained
    exported: Exported
    folder: Path
    wheel: Path
    manifest: dict[str, Any]


def build_model(name: str, *, artifacts: Path, dist: Path, log: Any = print) -> Built:
    """Train, export, verify and package model ``name``; raise when any stage fails."""
    t0 = time.perf_counter()
    trained = train(name)
    log(f"{name}: trained, held-out {', '.join(f'{k}={v:.4g}' for k, v in trained.metrics.items())}")
    columns = infer_columns(trained.X_train)
    exported = export_pipeline(trained.model, columns, name=name)
    graphs = graph_files(exported)
    model_bytes = graphs[MODEL_FILE]
    cfg = trained.config
    training = {
        "data_sha256": trained.data_sha256,
        "rows": trained.rows,
        "train_rows": len(trained.X_train),
        "test_rows": len(trained.X_test),
        "target": cfg["data"]["target"],
        "seed": cfg["training"]["seed"],
        "test_size": cfg["training"]["test_size"],
    }
    metrics = {"held_out": trained.metrics, "acceptance": cfg.get("acceptance", {})}
    manifest = make_manifest(
        config=cfg,
        exported=exported,
        model_bytes=model_bytes,
        training=training,
        metrics=metrics,
        equivalence=None,
    )
    folder = artifacts / name
    _write_artifact(folder, graphs, manifest)
    fused = exported.fusion
    log(
        f"{name}: exported {len(exported.model.graph.node)} nodes, {len(exported.checks)} refusal checks"
        + (
            f"; categorical part fused ({fused.nodes_removed} nodes -> {fused.nodes_added}, "
            f"{len(fused.vocabulary)} texts, {fused.checks_dropped} checks that cannot fire dropped)"
            if fused
            else ""
        )
    )
    manifest["equivalence"] = verify(trained, folder, columns, log)
    # -- for other languages and mobile (docs/embedding.md): golden vectors, ORT-format model
    write_golden(trained, predictlib.load(folder), folder, columns, int(cfg["training"]["seed"]))
    manifest["files"] = files_section(folder, {"golden.json": "golden", **write_ort(folder)})
    manifest["files"][ORT_FILE].update(ort_details(), verification=verify_ort(folder, manifest, log))
    # --
    manifest["release"] = check_release(name, cfg["model"]["version"], folder, cfg, log)
    _write_artifact(folder, graphs, seal(manifest))
    # the sealed artifact loads and gives the verified answers
    final = compare(trained.model, predictlib.load(folder), records_from_frame(trained.X_test), columns)
    if final.failures:
        raise EquivalenceError(f"{name}: the sealed artifact predicts differently: {final.failures[:3]}")
    wheel = write_model_wheel(
        name,
        cfg["model"]["version"],
        {
            **graphs,
            MANIFEST_FILE: dumps(manifest),
            **{file: (folder / file).read_bytes() for file in manifest["files"]},
        },
        dist,
        summary=f"predictlib model '{name}': {cfg['model'].get('description', '')}",
        requires=[RUNTIME_REQUIREMENT],
    )
    log(f"{name}: wrote {wheel} [{time.perf_counter() - t0:.1f}s]")
    return Built(trained, exported, folder, wheel, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m predictlib.build.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("models", nargs="*", help=f"models to build (default: all of {model_names()})")
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="where the wheels go (default: dist)")
    parser.add_argument(
        "--artifacts", type=Path, default=Path("artifacts"), help="artifact folders (default: artifacts)"
    )
    args = parser.parse_args(argv)
    for name in args.models or model_names():
        try:
            build_model(name, artifacts=args.artifacts, dist=args.dist)
        except Exception as exc:  # noqa: BLE001 - any failure fails the build, with its reason
            print(f"BUILD FAILED for {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
