"""Finding, reading and checking model artifacts (never importing or unpickling them).

An artifact is ``model.onnx`` + ``manifest.json``, found in one of three places:
a folder, a model wheel file (read in place), or an installed model wheel, which
advertises itself in the ``predictlib.models`` entry-point group (name -> the
package folder holding the two files; the folder holds no code).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ._errors import ArtifactError, ModelNotFoundError

#: Manifest format this runtime reads (newer formats are refused).
FORMAT_VERSION = 1
ENTRY_POINT_GROUP = "predictlib.models"
MODEL_FILE = "model.onnx"
#: the graph taking category ids (``manifest.inputs.category_ids``), when the build made one
IDS_MODEL_FILE = "model.ids.onnx"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    manifest: dict[str, Any]
    model: bytes
    source: str
    #: the graph taking category ids instead of texts (None: the model has none)
    ids_model: bytes | None = None
    #: reads another file of the artifact by name, unchecked (see :func:`read_checked`)
    read: Callable[[str], bytes] | None = None


def canonical_json(data: Any) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest without its own ``integrity.manifest_sha256`` field."""
    body = dict(manifest)
    integrity = dict(body.get("integrity") or {})
    integrity.pop("manifest_sha256", None)
    body["integrity"] = integrity
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _parse_manifest(raw: bytes, source: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{source}: {MANIFEST_FILE} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{source}: {MANIFEST_FILE} is not a JSON object")
    return manifest


def check_artifact(manifest: dict[str, Any], model: bytes, source: str) -> None:
    """Refuse a manifest this runtime cannot read, or files that are not the ones built."""
    from . import __version__

    fmt = manifest.get("format_version")
    if not isinstance(fmt, int):
        raise ArtifactError(f"{source}: the manifest has no integer format_version")
    if fmt > FORMAT_VERSION:
        needed = manifest.get("runtime", {}).get("requires", "a newer predictlib")
        raise ArtifactError(
            f"{source}: manifest format {fmt} is newer than this runtime reads "
            f"(predictlib {__version__} reads format <= {FORMAT_VERSION}); install {needed}"
        )
    integrity = manifest.get("integrity")
    if not isinstance(integrity, dict):
        raise ArtifactError(f"{source}: the manifest has no integrity section")
    if integrity.get("manifest_sha256") != manifest_digest(manifest):
        raise ArtifactError(f"{source}: {MANIFEST_FILE} was modified after it was built (sha256 mismatch)")
    actual = hashlib.sha256(model).hexdigest()
    if integrity.get("model_sha256") != actual:
        raise ArtifactError(
            f"{source}: {MODEL_FILE} does not match its manifest (sha256 {actual}, "
            f"expected {integrity.get('model_sha256')}): the file is damaged or was replaced"
        )
    for key in ("name", "version", "task", "inputs", "outputs"):
        if key not in manifest:
            raise ArtifactError(f"{source}: the manifest has no '{key}'")


def _ids_model(manifest: dict[str, Any], read: Callable[[str], bytes], source: str) -> bytes | None:
    """The graph taking category ids, when the manifest declares one (checked like model.onnx)."""
    inputs = manifest["inputs"]
    spec = inputs.get("category_ids") if isinstance(inputs, dict) else None
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("file") != IDS_MODEL_FILE:
        raise ArtifactError(f"{source}: the manifest's inputs.category_ids is malformed")
    data = read(IDS_MODEL_FILE)
    actual = hashlib.sha256(data).hexdigest()
    expected = manifest["integrity"].get("ids_model_sha256")
    if actual != expected:
        raise ArtifactError(
            f"{source}: {IDS_MODEL_FILE} does not match its manifest (sha256 {actual}, "
            f"expected {expected}): the file is damaged or was replaced"
        )
    return data


def _load(
    read: Callable[[str], bytes], source: str, what: str, later: Callable[[str], bytes] | None = None
) -> Artifact:
    """Read and check an artifact through ``read`` (file name -> bytes); ``later`` reads
    its other files after this returns (default: ``read``)."""
    try:
        manifest = _parse_manifest(read(MANIFEST_FILE), source)
        model = read(MODEL_FILE)
        check_artifact(manifest, model, source)
        ids_model = _ids_model(manifest, read, source)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{source}: cannot read {what} ({exc})") from None
    return Artifact(manifest, model, source, ids_model, later or read)


def read_checked(
    manifest: Mapping[str, Any], read: Callable[[str], bytes] | None, name: str, source: str
) -> bytes:
    """The file ``name`` of an artifact, checked against the sha256 its manifest records
    (``model.onnx``, ``model.ids.onnx`` or an entry of ``files``)."""
    integrity = manifest.get("integrity") or {}
    files = manifest.get("files") or {}
    if name == MODEL_FILE:
        expected = integrity.get("model_sha256")
    elif name == IDS_MODEL_FILE:
        expected = integrity.get("ids_model_sha256")
    else:
        entry = files.get(name)
        expected = entry.get("sha256") if isinstance(entry, Mapping) else None
    if not isinstance(expected, str) or read is None:
        listed = sorted([MODEL_FILE, *([IDS_MODEL_FILE] if "ids_model_sha256" in integrity else []), *files])
        raise ArtifactError(f"{source}: the artifact lists no file '{name}' (it has {listed})")
    try:
        data = read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{source}: cannot read {name} ({exc})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{source}: {name} does not match its manifest (sha256 {actual}, expected {expected}): "
            "the file is damaged or was replaced"
        )
    return data


def _read_folder(path: Path) -> Artifact:
    return _load(lambda name: (path / name).read_bytes(), str(path), "the artifact")


def _read_wheel(path: Path) -> Artifact:
    try:
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
            manifests = [n for n in names if n.count("/") == 1 and n.endswith("/" + MANIFEST_FILE)]
            if len(manifests) != 1:
                raise ArtifactError(f"{path}: not a predictlib model wheel (no single */{MANIFEST_FILE})")
            folder = manifests[0].rsplit("/", 1)[0]

            def later(name: str) -> bytes:  # the wheel is closed by then: opened again
                with zipfile.ZipFile(path) as again:
                    return again.read(f"{folder}/{name}")

            return _load(lambda name: wheel.read(f"{folder}/{name}"), str(path), "the model wheel", later)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: cannot read the model wheel ({exc})") from None


def installed() -> dict[str, metadata.EntryPoint]:
    """Installed model wheels by model name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _read_installed(ep: metadata.EntryPoint) -> Artifact:
    dist = ep.dist
    if dist is None:
        raise ArtifactError(f"model '{ep.name}': its entry point has no distribution")
    folder = ep.value.strip()
    source = f"{dist.metadata['Name']} {dist.version} (model '{ep.name}')"
    artifact = _load(
        lambda name: Path(str(dist.locate_file(f"{folder}/{name}"))).read_bytes(), source, "the artifact"
    )
    if artifact.manifest["name"] != ep.name:
        raise ArtifactError(f"{source}: the manifest names model '{artifact.manifest['name']}'")
    return artifact


def read_artifact(model: str | os.PathLike[str]) -> Artifact:
    """Read ``model``: an installed model's name, an artifact folder or a model wheel."""
    if isinstance(model, os.PathLike) or os.sep in str(model) or str(model).endswith(".whl"):
        path = Path(model)
        if path.is_dir():
            return _read_folder(path)
        if path.is_file():
            return _read_wheel(path)
        raise ModelNotFoundError(f"{path}: no such artifact folder or model wheel")
    eps = installed()
    if model in eps:
        return _read_installed(eps[model])
    path = Path(model)
    if path.is_dir():
        return _read_folder(path)
    known = ", ".join(sorted(eps)) or "none"
    raise ModelNotFoundError(f"no installed model named '{model}' (installed: {known})")
