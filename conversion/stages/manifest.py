"""The manifest: everything a runtime (in any language) needs to call a graph, and
what is known about how it was built. ``FORMAT_VERSION`` is the one the Python
runtime reads (``predictlib._artifact.FORMAT_VERSION``)."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Any

from predictlib._artifact import FORMAT_VERSION, IDS_MODEL_FILE, MODEL_FILE, manifest_digest

from ..core.frame import MISSING
from ..passes.lean import LEAN_INPUT
from .export import Exported

#: the runtime versions that read this manifest format
RUNTIME_REQUIREMENT = "predictlib>=0.1.0,<1"
BUILD_PACKAGES = (
    "scikit-learn",
    "feature-engine",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "numpy",
    "pandas",
    "scipy",
)


def build_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for pkg in BUILD_PACKAGES:
        versions[pkg] = metadata.version(pkg)
    return versions


def make_manifest(
    *,
    info: dict[str, Any],
    exported: Exported,
    model_bytes: bytes,
    training: dict[str, Any],
    metrics: dict[str, Any],
    equivalence: dict[str, Any] | None,
) -> dict[str, Any]:
    import hashlib

    rules: dict[str, list[str]] = {}
    for check in exported.checks:
        rules.setdefault(check.column, [])
        text = f"{check.reason} [step '{check.step}', {check.transformer}]"
        if text not in rules[check.column]:
            rules[check.column].append(text)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": info["name"],
        "version": info["version"],
        "task": exported.task,
        "description": info.get("description", ""),
        "runtime": {"requires": RUNTIME_REQUIREMENT},
        "artifact": {
            "file": MODEL_FILE,
            "size": len(model_bytes),
            "opset": {o.domain or "": o.version for o in exported.model.opset_import},
            "ir_version": exported.model.ir_version,
        },
        "inputs": _inputs(exported, rules),
        "outputs": {
            **_main_outputs(exported, info),
            "refusals": {
                "name": "refusals",
                "dtype": "bool",
                "shape": ["N", len(exported.checks)],
                "checks": [c.as_dict() for c in exported.checks],
            },
        },
        "training": training,
        "hyperparameters": info.get("hyperparameters", {}),
        "metrics": metrics,
        "equivalence": equivalence,
        "build": build_versions(),
        "integrity": {"model_sha256": hashlib.sha256(model_bytes).hexdigest()},
    }
    if exported.ids_model is not None:
        ids_bytes = exported.ids_model.SerializeToString(deterministic=True)
        manifest["integrity"]["ids_model_sha256"] = hashlib.sha256(ids_bytes).hexdigest()
    if exported.lean is not None and exported.fusion is not None:
        manifest["lean"] = lean_section(exported)
    return seal(manifest)


def lean_section(exported: Exported) -> dict[str, Any]:
    """The manifest's ``lean``: the graph the Python runtime runs (``model.ids.onnx``,
    see :mod:`predictlib.build.passes.lean`). Its input ``x`` (float64 ``[N, len(columns)]``)
    holds the first ``numeric`` columns as numbers (NaN = missing), then each categorical
    cell's index in ``vocabulary`` (the missing-value sentinel included;
    ``len(vocabulary)`` for any other text); ``dt`` is ``model.onnx``'s. Its main outputs
    are ``model.onnx``'s; ``refused`` says where a refused row shows: column ``column``
    of output ``output`` is not finite (``kind`` ``"nan"``; the output's other columns
    are ``model.onnx``'s), or a flag of the boolean output ``output`` is set
    (``"flags"``). Which checks fired is read from ``model.onnx``'s ``refusals`` for
    those rows. Manifests without it (``inputs.category_ids``, or neither) still load."""
    lean = exported.lean
    assert lean is not None and exported.fusion is not None
    return {
        "file": IDS_MODEL_FILE,
        "input": LEAN_INPUT,
        "columns": [*exported.numeric, *exported.categorical],
        "numeric": len(exported.numeric),
        "vocabulary": list(exported.fusion.vocabulary),
        "refused": lean.signal,
    }


#: per column kind: the manifest's ``kind`` and the graph input (group) holding it
_KINDS = {"num": ("number", "num"), "str": ("category", "cat"), "dt": ("datetime", "dt")}


def _inputs(exported: Exported, rules: dict[str, list[str]]) -> dict[str, Any]:
    """The manifest's ``inputs``; ``datetime`` (the columns of the int64 graph input
    ``dt``: nanoseconds since 1970-01-01T00:00:00, missing = the int64 minimum) only
    when the model has datetime columns, so manifests without them do not change.

    ``category_ids`` (fused graphs, see :mod:`predictlib.build.passes.fuse`): the graph in ``file``
    is ``model.onnx`` with the int64 input ``cat_ids`` instead of ``cat``: cell
    ``[i, j]`` holds the index of the cell's text in ``vocabulary`` (the missing-value
    sentinel included), or ``len(vocabulary)`` for any other text. The Python runtime
    feeds it; other languages may feed either graph."""
    groups = {"num": exported.numeric, "cat": exported.categorical, "dt": exported.datetime}
    inputs: dict[str, Any] = {
        "numeric": exported.numeric,
        "categorical": exported.categorical,
        "missing_category": MISSING,
    }
    if exported.datetime:
        inputs["datetime"] = exported.datetime
    if exported.fusion is not None and exported.ids_model is not None and exported.lean is None:
        inputs["category_ids"] = {
            "file": IDS_MODEL_FILE,
            "input": "cat_ids",
            "vocabulary": list(exported.fusion.vocabulary),
        }
    inputs["columns"] = [
        {
            "name": c.name,
            "kind": _KINDS[c.kind][0],
            "group": _KINDS[c.kind][1],
            "index": groups[_KINDS[c.kind][1]].index(c.name),
            "refused_when": rules.get(c.name, []),
        }
        for c in exported.columns
    ]
    return inputs


def _main_outputs(exported: Exported, info: dict[str, Any]) -> dict[str, Any]:
    if exported.task == "classification":
        label_dtype = "string" if isinstance(exported.classes[0], str) else "int64"
        return {
            "label": {"name": "label", "dtype": label_dtype, "shape": ["N"], "classes": exported.classes},
            "probabilities": {
                "name": "probabilities",
                "dtype": "float64",
                "shape": ["N", len(exported.classes)],
                "classes": exported.classes,
            },
        }
    return {
        "prediction": {
            "name": "prediction",
            "dtype": "float64",
            "shape": ["N", 1],
            "unit": info.get("output_unit", ""),
        }
    }


def files_section(folder: Any, roles: dict[str, str]) -> dict[str, Any]:
    """The manifest's ``files``: the artifact's files besides model.onnx and manifest.json
    (file name -> role, size and sha256), e.g. ``{"golden.json": "golden"}``."""
    import hashlib
    from pathlib import Path

    files = {}
    for name, role in sorted(roles.items()):
        data = (Path(folder) / name).read_bytes()
        files[name] = {"role": role, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return files


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """Set ``integrity.manifest_sha256`` (the runtime refuses a manifest edited later)."""
    manifest["integrity"] = {k: v for k, v in manifest["integrity"].items() if k != "manifest_sha256"}
    manifest["integrity"]["manifest_sha256"] = manifest_digest(manifest)
    return manifest


def dumps(manifest: dict[str, Any]) -> bytes:
    return (
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode()
