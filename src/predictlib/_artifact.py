"""Finding, reading and checking model artifacts (never importing or unpickling them).

An artifact is ``model.onnx`` + ``manifest.json``, found in one of three places:
a folder, a model wheel file (read in place), or an installed model wheel, which
advertises itself in the ``predictlib.models`` entry-point group (name -> the
package folder holding the two files; the folder holds no code).

An artifact is untrusted input until checked (docs/reliability.md). Before a session
exists: every file is a regular file (not a device, a FIFO or a socket), read only up
to what it may hold (:data:`MAX_MANIFEST_BYTES`; ``model.onnx`` exactly the size its
manifest declares; wheel entries neither encrypted, nor in a compression other than
deflate, nor compressed more than :data:`MAX_COMPRESSION_RATIO` times), the manifest
is strict JSON (no NaN, at most :data:`MAX_JSON_DEPTH` levels, numbers of at most
:data:`MAX_NUMBER_CHARS` characters), of a format this runtime reads, sealed (its own
sha256), valid against ``manifest.schema.json`` in what the runtime reads
(:func:`predictlib._validate.runtime_schema`) and consistent
(:mod:`predictlib._validate`); the graphs match their sha256 and read no file
(external data). ``sha256=`` pins the artifact itself (:func:`read_artifact`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from ._errors import ArtifactError, ModelNotFoundError, PredictlibError
from ._validate import (
    NotOnnx,
    file_references,
    finite_json_number,
    manifest_problems,
    runtime_schema,
    schema_errors,
    size_problems,
)

#: Manifest format this runtime reads (newer formats are refused).
FORMAT_VERSION = 1
ENTRY_POINT_GROUP = "predictlib.models"
MODEL_FILE = "model.onnx"
#: the graph taking category ids (``manifest.inputs.category_ids``), when the build made one
IDS_MODEL_FILE = "model.ids.onnx"
MANIFEST_FILE = "manifest.json"

#: the largest manifest.json read (a manifest of house_prices is 110 kB)
MAX_MANIFEST_BYTES = 32 << 20
#: how deep a manifest's JSON may nest (the schema needs 6 levels)
MAX_JSON_DEPTH = 64
#: the longest number literal in a manifest (an int64 has 19 digits)
MAX_NUMBER_CHARS = 40
#: the largest graph read: protobuf's own limit for one message (2 GiB)
MAX_GRAPH_BYTES = 2**31 - 1
#: model.ids.onnx is model.onnx less its first node: it may exceed model.onnx's
#: declared size by this much at most
IDS_GRAPH_SLACK = 1 << 20
#: wheel entries over 1 MiB may be compressed this many times at most (the graphs of
#: the bundled models compress 5 to 8 times; a block of zeros, 1,000 times)
MAX_COMPRESSION_RATIO = 200
_RATIO_FROM = 1 << 20
#: the longest model name or path taken
MAX_PATH_CHARS = 4096
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_PACKAGE_FOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Artifact:
    manifest: dict[str, Any]
    model: bytes
    source: str
    #: the graph taking category ids instead of texts (None: the model has none)
    ids_model: bytes | None = None
    #: reads another file of the artifact by name, unchecked (see :func:`read_checked`)
    read: Callable[[str], bytes] | None = None
    #: sha256 of the manifest.json file read (it seals the graphs' sha256): what
    #: ``load(..., sha256=)`` pins and release records list as ``manifest_sha256``
    pin: str | None = None
    #: how :func:`read_artifact` found it (an installed model's name or an absolute path):
    #: a pickled Model is loaded again from there
    locator: str | None = None


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


# ---------------------------------------------------------------------- the manifest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text):,} characters")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text):,} characters")
    return finite_json_number(text)


def _depth(value: Any) -> int:
    """How deep ``value`` nests (iteratively: a deep document cannot exhaust the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return deepest


def _parse_manifest(raw: bytes, source: str) -> dict[str, Any]:
    try:
        manifest = json.loads(
            raw.decode("utf-8"),
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except RecursionError:
        raise ArtifactError(f"{source}: {MANIFEST_FILE} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise ArtifactError(f"{source}: {MANIFEST_FILE} is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{source}: {MANIFEST_FILE} is not a JSON object")
    if _depth(manifest) > MAX_JSON_DEPTH:
        raise ArtifactError(f"{source}: {MANIFEST_FILE} nests deeper than {MAX_JSON_DEPTH} levels")
    return manifest


def check_manifest(manifest: dict[str, Any], source: str) -> None:
    """Refuse a manifest this runtime cannot read: not a format it reads, modified after
    it was sealed, not valid against its schema, inconsistent or beyond the limits."""
    from . import __version__

    fmt = manifest.get("format_version")
    if type(fmt) is not int or fmt < 1:
        raise ArtifactError(
            f"{source}: format_version {str(fmt)[:40]} is not a manifest format (an integer >= 1)"
        )
    if fmt > FORMAT_VERSION:
        runtime = manifest.get("runtime")
        needed = runtime.get("requires") if isinstance(runtime, dict) else None
        needed = needed[:100] if isinstance(needed, str) else "a newer predictlib"
        raise ArtifactError(
            f"{source}: manifest format {fmt} is newer than this runtime reads "
            f"(predictlib {__version__} reads format <= {FORMAT_VERSION}); install {needed}"
        )
    too_large = size_problems(manifest)
    if too_large:
        raise ArtifactError(f"{source}: {MANIFEST_FILE} holds too much: {'; '.join(too_large[:5])}")
    integrity = manifest.get("integrity")
    if not isinstance(integrity, dict):
        raise ArtifactError(f"{source}: the manifest has no integrity section")
    if integrity.get("manifest_sha256") != manifest_digest(manifest):
        raise ArtifactError(f"{source}: {MANIFEST_FILE} was modified after it was built (sha256 mismatch)")
    errors = schema_errors(manifest, runtime_schema())
    if errors:
        raise ArtifactError(
            f"{source}: {MANIFEST_FILE} does not follow the manifest schema: {'; '.join(errors[:5])}"
        )
    problems = manifest_problems(manifest)
    if manifest["artifact"]["size"] > MAX_GRAPH_BYTES:
        problems.append(f"artifact.size {manifest['artifact']['size']:,} is beyond {MAX_GRAPH_BYTES:,} bytes")
    if problems:
        raise ArtifactError(f"{source}: {MANIFEST_FILE} is inconsistent: {'; '.join(problems[:5])}")


def check_artifact(manifest: dict[str, Any], model: bytes, source: str) -> None:
    """Refuse a manifest this runtime cannot read (:func:`check_manifest`), or a
    ``model.onnx`` that is not the one built."""
    check_manifest(manifest, source)
    _check_graph(MODEL_FILE, model, manifest["integrity"]["model_sha256"], source)


def _check_graph(name: str, data: bytes, expected: str, source: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{source}: {name} does not match its manifest (sha256 {actual}, "
            f"expected {expected}): the file is damaged or was replaced"
        )
    try:
        external = file_references(data)
    except NotOnnx as exc:
        raise ArtifactError(f"{source}: {name} is not a well-formed ONNX model ({exc})") from None
    if external:
        shown = ", ".join(repr(n[:60]) for n in external[:5])
        raise ArtifactError(
            f"{source}: {name} reads tensor data from files (external data of {shown}): predictlib "
            "runs a model only from the artifact's own bytes"
        )


# ------------------------------------------------------------------------- the files


class _Files:
    """An artifact's files, read with limits: ``read(name, limit)`` refuses a file
    holding more than ``limit`` bytes before reading it."""

    source = ""

    def read(self, name: str, limit: int) -> bytes:
        raise NotImplementedError

    def declared_size(self, name: str) -> int:
        raise NotImplementedError

    def read_exactly(self, name: str, size: int, expected_sha256: str) -> bytes:
        """A graph file of exactly ``size`` bytes (the manifest's), else refused before
        it is read."""
        found = self.declared_size(name)
        if found != size:
            raise ArtifactError(
                f"{self.source}: {name} does not match its manifest ({found:,} bytes, expected {size:,}; "
                f"sha256 expected {expected_sha256}): the file is damaged or was replaced"
            )
        return self.read(name, size)

    def _too_large(self, name: str, size: int, limit: int) -> ArtifactError:
        return ArtifactError(
            f"{self.source}: {name} holds {size:,} bytes, more than the {limit:,} it may hold"
        )


def _open_regular(path: str | os.PathLike[str], source: str, name: str) -> IO[bytes]:
    """``path`` opened for reading, refused unless it is a regular file (a symbolic link
    to one is followed): a device (``/dev/zero``), a FIFO or a socket is never read
    (opened without blocking, checked on the open file)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ArtifactError(f"{source}: {name} is not a regular file (a device, a FIFO or a socket)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _Folder(_Files):
    def __init__(self, folder: Path, source: str) -> None:
        self.folder = folder
        self.source = source

    def declared_size(self, name: str) -> int:
        with _open_regular(self.folder / name, self.source, name) as fh:
            return os.fstat(fh.fileno()).st_size

    def read(self, name: str, limit: int) -> bytes:
        with _open_regular(self.folder / name, self.source, name) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise self._too_large(name, size, limit)
            data = fh.read(limit + 1)
        if len(data) > limit:  # grew while read
            raise self._too_large(name, len(data), limit)
        return data


class _Wheel(_Files):
    def __init__(self, wheel: zipfile.ZipFile, folder: str, source: str) -> None:
        self.wheel = wheel
        self.folder = folder
        self.source = source

    def _entry(self, name: str) -> zipfile.ZipInfo:
        info = self.wheel.getinfo(f"{self.folder}/{name}")  # KeyError: no such file
        if info.flag_bits & 0x1:
            raise ArtifactError(f"{self.source}: {name} is encrypted in the wheel")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArtifactError(
                f"{self.source}: {name} is compressed with method {info.compress_type} in the wheel "
                "(a model wheel stores or deflates its files)"
            )
        if info.file_size > _RATIO_FROM and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise ArtifactError(
                f"{self.source}: {name} is compressed {info.file_size / max(info.compress_size, 1):,.0f} "
                f"times in the wheel, more than {MAX_COMPRESSION_RATIO} (a compression bomb?)"
            )
        return info

    def declared_size(self, name: str) -> int:
        return self._entry(name).file_size

    def read(self, name: str, limit: int) -> bytes:
        info = self._entry(name)
        if info.file_size > limit:
            raise self._too_large(name, info.file_size, limit)
        with self.wheel.open(info) as fh:  # reads at most file_size bytes, then checks the CRC
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise self._too_large(name, len(data), limit)
        return data


def _sha256_of(fh: IO[bytes]) -> str:
    """The sha256 of a whole open file, read in blocks (never held whole)."""
    digest = hashlib.sha256()
    fh.seek(0)
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _load(
    files: _Files,
    source: str,
    what: str,
    later: Callable[[str], bytes] | None = None,
    sha256: str | None = None,
    container_sha256: Callable[[], str] | None = None,
    locator: str | None = None,
) -> Artifact:
    """Read and check an artifact from ``files``; ``later`` reads its other files after
    this returns (default: from ``files``); ``sha256`` pins the manifest.json file (or
    the container, whose digest ``container_sha256`` computes)."""
    try:
        raw = files.read(MANIFEST_FILE, MAX_MANIFEST_BYTES)
        pin = hashlib.sha256(raw).hexdigest()
        if (
            sha256 is not None
            and sha256 != pin
            and (container_sha256 is None or sha256 != container_sha256())
        ):
            whole = "" if container_sha256 is None else " nor of the wheel file"
            raise ArtifactError(
                f"{source}: sha256 {sha256} pinned, which is not the sha256 of its {MANIFEST_FILE} "
                f"({pin}){whole}: this is not the artifact pinned"
            )
        manifest = _parse_manifest(raw, source)
        check_manifest(manifest, source)
        integrity = manifest["integrity"]
        size = manifest["artifact"]["size"]
        model = files.read_exactly(MODEL_FILE, size, integrity["model_sha256"])
        _check_graph(MODEL_FILE, model, integrity["model_sha256"], source)
        ids_model = None
        if "category_ids" in manifest["inputs"] or isinstance(manifest.get("lean"), Mapping):
            limit = min(size + IDS_GRAPH_SLACK, MAX_GRAPH_BYTES)
            ids_model = files.read(IDS_MODEL_FILE, limit)
            _check_graph(IDS_MODEL_FILE, ids_model, integrity["ids_model_sha256"], source)
    except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{source}: cannot read {what} ({exc})") from None
    if later is None:

        def later(name: str) -> bytes:
            return files.read(name, _other_file_limit(manifest, name))

    return Artifact(manifest, model, source, ids_model, later, pin, locator)


def _other_file_limit(manifest: Mapping[str, Any], name: str) -> int:
    """What another file of an artifact may hold: the size its manifest declares."""
    entry = (manifest.get("files") or {}).get(name)
    size = entry.get("size") if isinstance(entry, Mapping) else None
    return size if type(size) is int and 0 <= size <= MAX_GRAPH_BYTES else MAX_GRAPH_BYTES


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
    except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{source}: cannot read {name} ({exc})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{source}: {name} does not match its manifest (sha256 {actual}, expected {expected}): "
            "the file is damaged or was replaced"
        )
    return data


def _read_folder(path: Path, sha256: str | None = None) -> Artifact:
    return _load(
        _Folder(path, str(path)), str(path), "the artifact", sha256=sha256, locator=os.path.abspath(path)
    )


def _read_wheel(path: Path, sha256: str | None = None) -> Artifact:
    source = str(path)
    try:
        with _open_regular(path, source, "the wheel") as fh, zipfile.ZipFile(fh) as wheel:
            names = wheel.namelist()
            manifests = [n for n in names if n.count("/") == 1 and n.endswith("/" + MANIFEST_FILE)]
            if len(manifests) != 1:
                raise ArtifactError(f"{path}: not a predictlib model wheel (no single */{MANIFEST_FILE})")
            folder = manifests[0].rsplit("/", 1)[0]
            files = _Wheel(wheel, folder, source)
            artifact = _load(
                files,
                source,
                "the model wheel",
                sha256=sha256,
                container_sha256=lambda: _sha256_of(fh),
                locator=os.path.abspath(path),
            )
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: cannot read the model wheel ({exc})") from None
    manifest = artifact.manifest

    def later(name: str) -> bytes:  # the wheel is closed by then: opened again
        with _open_regular(path, source, "the wheel") as again, zipfile.ZipFile(again) as reopened:
            return _Wheel(reopened, folder, source).read(name, _other_file_limit(manifest, name))

    return Artifact(
        manifest, artifact.model, source, artifact.ids_model, later, artifact.pin, artifact.locator
    )


def installed() -> dict[str, metadata.EntryPoint]:
    """Installed model wheels by model name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _read_installed(ep: metadata.EntryPoint, sha256: str | None = None) -> Artifact:
    dist = ep.dist
    if dist is None:
        raise ArtifactError(f"model '{ep.name}': its entry point has no distribution")
    folder = ep.value.strip()
    source = f"{dist.metadata['Name']} {dist.version} (model '{ep.name}')"
    if not _PACKAGE_FOLDER.fullmatch(folder) or ".." in folder:
        raise ArtifactError(f"{source}: its entry point names {folder[:100]!r}, not a package folder")
    where = Path(str(dist.locate_file(folder)))
    artifact = _load(_Folder(where, source), source, "the artifact", sha256=sha256, locator=ep.name)
    if artifact.manifest["name"] != ep.name:
        raise ArtifactError(f"{source}: the manifest names model '{artifact.manifest['name']}'")
    return artifact


def _kind(path: Path) -> str | None:
    """ "dir", "file" (a regular file) or None (nothing there, or not a name a file can have)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None


def _shown(text: str) -> str:
    return text if len(text) <= 200 else f"{text[:100]}...{text[-40:]} ({len(text):,} characters)"


def check_sha256(sha256: Any) -> str | None:
    """``sha256=`` of :func:`predictlib.load`, in lower case (None: not pinned)."""
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise PredictlibError(f"sha256 must be 64 hexadecimal digits (a sha256), got {_shown(repr(sha256))}")
    return sha256.lower()


def read_artifact(model: str | os.PathLike[str], sha256: str | None = None) -> Artifact:
    """Read ``model``: an installed model's name, an artifact folder or a model wheel.
    ``sha256`` pins it: the sha256 of its ``manifest.json`` file (which seals the
    graphs' sha256), or of the wheel file when ``model`` is one; anything else is
    refused (:class:`ArtifactError`)."""
    if not isinstance(model, (str, os.PathLike)):
        raise PredictlibError(
            f"expected a model name, an artifact folder or a model wheel path, got {type(model).__name__}"
        )
    sha256 = check_sha256(sha256)
    text = os.fspath(model)
    if not isinstance(text, str):
        raise PredictlibError("a model path must be text, not bytes")
    if len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise ModelNotFoundError(f"{_shown(text)}: not a model name or path (too long, or a NUL character)")
    if (
        isinstance(model, os.PathLike)
        or os.sep in text
        or (os.altsep or os.sep) in text
        or text.endswith(".whl")
    ):
        path = Path(text)
        kind = _kind(path)
        if kind == "dir":
            return _read_folder(path, sha256)
        if kind == "file":
            return _read_wheel(path, sha256)
        raise ModelNotFoundError(f"{_shown(text)}: no such artifact folder or model wheel")
    eps = installed()
    if text in eps:
        return _read_installed(eps[text], sha256)
    path = Path(text)
    if _kind(path) == "dir":
        return _read_folder(path, sha256)
    known = ", ".join(sorted(eps)) or "none"
    raise ModelNotFoundError(f"no installed model named '{_shown(text)}' (installed: {known})")
