"""The manifest's portable contract: schema/manifest.schema.json (JSON Schema 2020-12)
describes every built manifest, and schema/golden.schema.json every golden.json."""

from __future__ import annotations

import copy
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from predictlib._artifact import FORMAT_VERSION
from predictlib.build.project import Built
from predictlib.build.stages.manifest import files_section

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schema"

pytestmark = pytest.mark.slow


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_schemas_are_versioned() -> None:
    manifest = json.loads((SCHEMAS / "manifest.schema.json").read_text(encoding="utf-8"))
    assert manifest["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert manifest["$id"].startswith("urn:predictlib:schema:manifest:")
    assert manifest["properties"]["format_version"] == {
        **manifest["properties"]["format_version"],
        "const": FORMAT_VERSION,
    }
    golden = json.loads((SCHEMAS / "golden.schema.json").read_text(encoding="utf-8"))
    assert golden["$id"].startswith("urn:predictlib:schema:golden:")


def test_every_built_manifest_validates(built_models: dict[str, Built]) -> None:
    validator = _validator("manifest.schema.json")
    for name, built in built_models.items():
        on_disk = json.loads((built.folder / "manifest.json").read_text(encoding="utf-8"))
        assert on_disk == built.manifest
        assert _errors(validator, on_disk) == [], name
        with zipfile.ZipFile(built.wheel) as wheel:
            (inside,) = [n for n in wheel.namelist() if n.endswith("/manifest.json")]
            assert _errors(validator, json.loads(wheel.read(inside))) == [], name


def test_every_golden_file_validates(built_models: dict[str, Built]) -> None:
    validator = _validator("golden.schema.json")
    for name, built in built_models.items():
        golden = json.loads((built.folder / "golden.json").read_text(encoding="utf-8"))
        assert _errors(validator, golden) == [], name


def test_the_schema_rejects_broken_manifests(house_prices: Built) -> None:
    validator = _validator("manifest.schema.json")
    good = house_prices.manifest
    breakages = {
        "no inputs": lambda m: m.pop("inputs"),
        "newer format": lambda m: m.update(format_version=FORMAT_VERSION + 1),
        "unknown task": lambda m: m.update(task="ranking"),
        "regression without prediction": lambda m: m["outputs"].pop("prediction"),
        "a column of another kind": lambda m: m["inputs"]["columns"][0].update(kind="date"),
        "a short sha256": lambda m: m["integrity"].update(model_sha256="abc"),
        "no ORT model": lambda m: m["files"].pop("model.ort"),
        "a failed ORT verification": lambda m: m["files"]["model.ort"]["verification"].update(failures=2),
        "a numeric column index as text": lambda m: m["inputs"]["columns"][0].update(index="0"),
    }
    for label, breakage in breakages.items():
        broken = copy.deepcopy(good)
        breakage(broken)
        assert _errors(validator, broken), label
    # unknown members are allowed: readers ignore them
    extended = copy.deepcopy(good)
    extended["something_new"] = {"x": 1}
    assert _errors(validator, extended) == []


def test_a_classification_manifest_shape_validates(house_prices: Built) -> None:
    """The classification outputs (label + probabilities) the schema describes."""
    validator = _validator("manifest.schema.json")
    manifest = copy.deepcopy(house_prices.manifest)
    manifest["task"] = "classification"
    outputs = manifest["outputs"]
    outputs.pop("prediction")
    classes = ["a", "b", "c"]
    outputs["label"] = {"name": "label", "dtype": "string", "shape": ["N"], "classes": classes}
    outputs["probabilities"] = {
        "name": "probabilities",
        "dtype": "float64",
        "shape": ["N", 3],
        "classes": classes,
    }
    assert _errors(validator, manifest) == []
    outputs.pop("label")
    assert _errors(validator, manifest)


def test_files_section_matches_the_files(built_models: dict[str, Built]) -> None:
    for name, built in built_models.items():
        files = built.manifest["files"]
        assert files_section(built.folder, {f: e["role"] for f, e in files.items()}) == {
            f: {k: e[k] for k in ("role", "size", "sha256")} for f, e in files.items()
        }, name
        with zipfile.ZipFile(built.wheel) as wheel:
            for file, entry in files.items():
                (inside,) = [n for n in wheel.namelist() if n.endswith(f"/{file}")]
                data = wheel.read(inside)
                assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), file
