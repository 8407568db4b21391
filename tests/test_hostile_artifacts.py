"""Issue 17, cases 8 to 11: artifacts built to hurt the process loading them. Each is
refused with an ArtifactError before onnxruntime sees it, quickly, without reading
more than it may hold: malformed manifests, oversized files, compression bombs,
devices and FIFOs, sealed but inconsistent manifests, graphs that read files; and
what pins an artifact (``load(..., sha256=)``)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import threading
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import predictlib
from predictlib import _artifact
from predictlib._validate import LIMITS, file_references, manifest_schema, runtime_schema, schema_errors
from predictlib.build.project import Built
from predictlib.build.stages.manifest import dumps, seal
from predictlib.build.stages.verify import records_from_frame

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def copy_artifact(built: Built, where: Path) -> Path:
    folder = where / "artifact"
    shutil.copytree(built.folder, folder)
    return folder


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def write_sealed(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_bytes(dumps(seal(manifest)))


def refused(source: Any, match: str, seconds: float = 30, **kwargs: Any) -> predictlib.ArtifactError:
    """load(source) raises ArtifactError matching ``match``, in time (no hang)."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            predictlib.load(source, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load did not return within {seconds} s"
    error = outcome.get("error")
    assert isinstance(error, predictlib.ArtifactError), repr(error)
    assert match in str(error), str(error)
    return error


@pytest.fixture
def folder(house_prices: Built, tmp_path: Path) -> Path:
    return copy_artifact(house_prices, tmp_path)


# ------------------------------------------------------------ 8: malformed manifests


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"format_version": NaN}', "not valid JSON"),
        ('{"format_version": Infinity}', "not valid JSON"),
        ('{"format_version": 1e400}', "not valid JSON"),
        ('{"format_version": ' + "9" * 5000 + "}", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nests deeper"),
        ('{"a": ' * 70 + "1" + "}" * 70, "nests deeper"),
        ("[1, 2]", "not a JSON object"),
        ('{"format_version": 1', "not valid JSON"),
        ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not valid JSON"),
    ],
    ids=[
        "NaN",
        "Infinity",
        "1e400",
        "5000-digit int",
        "100k-deep",
        "70-deep",
        "array",
        "truncated",
        "not UTF-8",
    ],
)
def test_8_malformed_json_is_refused(folder: Path, text: str, match: str) -> None:
    (folder / "manifest.json").write_bytes(text.encode("latin-1"))
    refused(folder, match)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (True, "not a manifest format"),
        (-7, "not a manifest format"),
        (0, "not a manifest format"),
        ("1", "not a manifest format"),
        (1.0, "not a manifest format"),
        (None, "not a manifest format"),
    ],
)
def test_8_format_version_must_be_an_integer_from_1(folder: Path, value: Any, match: str) -> None:
    manifest = manifest_of(folder)
    manifest["format_version"] = value
    write_sealed(folder, manifest)
    refused(folder, match)


@pytest.mark.parametrize("runtime", [[], "predictlib>=9", 7, None, {"requires": ["x"]}])
def test_8_a_newer_format_with_any_runtime_member(folder: Path, runtime: Any) -> None:
    manifest = manifest_of(folder)
    manifest["format_version"] = 2
    manifest["runtime"] = runtime
    (folder / "manifest.json").write_text(json.dumps(manifest))  # unsealed: the format comes first
    refused(folder, "manifest format 2 is newer than this runtime reads")


BREAKAGES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "refusals as a list": lambda m: m["outputs"].update(refusals=[]),
    "checks not a list": lambda m: m["outputs"]["refusals"].update(checks={}),
    "a check without reason": lambda m: m["outputs"]["refusals"]["checks"][0].pop("reason"),
    "inputs.numeric not a list": lambda m: m["inputs"].update(numeric="LotArea"),
    "a column name not a string": lambda m: m["inputs"]["numeric"].__setitem__(0, 7),
    "a column of another kind": lambda m: m["inputs"]["columns"][0].update(kind="date"),
    "unknown task": lambda m: m.update(task="ranking"),
    "no outputs": lambda m: m.pop("outputs"),
    "artifact.size as text": lambda m: m["artifact"].update(size="98468"),
    "negative artifact.size": lambda m: m["artifact"].update(size=-1),
    "model_sha256 not a sha256": lambda m: m["integrity"].update(model_sha256="abc"),
    "category_ids.vocabulary not a list": lambda m: ids_section(m).update(vocabulary="x"),
}


def ids_section(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's description of the ids graph: ``lean`` (since schema 1.3.0), or
    ``inputs.category_ids``."""
    section: dict[str, Any] = manifest.get("lean") or manifest["inputs"]["category_ids"]
    return section


@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_8_sealed_manifests_breaking_the_schema_are_refused(folder: Path, breakage: str) -> None:
    manifest = manifest_of(folder)
    BREAKAGES[breakage](manifest)
    write_sealed(folder, manifest)
    refused(folder, "does not follow the manifest schema")


INCONSISTENT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "a column in two groups": lambda m: m["inputs"]["categorical"].append(m["inputs"]["numeric"][0]),
    "a column description at the wrong index": lambda m: m["inputs"]["columns"][0].update(index=5),
    "a column not described": lambda m: m["inputs"]["columns"].pop(),
    "the sentinel not in the vocabulary": lambda m: ids_section(m)["vocabulary"].remove(
        m["inputs"]["missing_category"]
    ),
    "refusals shape and checks disagree": lambda m: m["outputs"]["refusals"]["checks"].pop(),
}


@pytest.mark.parametrize("breakage", INCONSISTENT, ids=list(INCONSISTENT))
def test_8_sealed_inconsistent_manifests_are_refused(folder: Path, breakage: str) -> None:
    manifest = manifest_of(folder)
    INCONSISTENT[breakage](manifest)
    write_sealed(folder, manifest)
    refused(folder, "is inconsistent")


def _consistent_columns(manifest: dict[str, Any]) -> None:
    """Rewrite inputs.columns from the groups (what a careful forger would do)."""
    old = {c["name"]: c for c in manifest["inputs"]["columns"]}
    columns = []
    for group, key, kind in (("num", "numeric", "number"), ("cat", "categorical", "category")):
        for index, name in enumerate(manifest["inputs"][key]):
            columns.append(
                {
                    **old.get(name, {"refused_when": []}),
                    "name": name,
                    "kind": kind,
                    "group": group,
                    "index": index,
                }
            )
    manifest["inputs"]["columns"] = columns


def test_8_sealed_but_inconsistent_with_the_graph(built_models: dict[str, Built], tmp_path: Path) -> None:
    """Manifests consistent in themselves, resealed, that do not describe the graph:
    refused at load, never inside predict."""
    house = built_models["house_prices"]
    # checks truncated (the graph's refusals output is wider)
    folder = copy_artifact(house, tmp_path / "a")
    manifest = manifest_of(folder)
    del manifest["outputs"]["refusals"]["checks"][-5:]
    manifest["outputs"]["refusals"]["shape"] = ["N", len(manifest["outputs"]["refusals"]["checks"])]
    write_sealed(folder, manifest)
    rows = "'N'" if "lean" in manifest else "1"  # the lean graph's model.onnx is read, not run
    refused(folder, f"the graph's output 'refusals' has shape [{rows}, 262]")
    # a numeric column dropped (the graph's num input is wider)
    folder = copy_artifact(house, tmp_path / "b")
    manifest = manifest_of(folder)
    manifest["inputs"]["numeric"].remove("LotArea")
    if "lean" in manifest:  # the lean graph's columns, as consistently
        manifest["lean"]["columns"].remove("LotArea")
        manifest["lean"]["numeric"] -= 1
    _consistent_columns(manifest)
    write_sealed(folder, manifest)
    refused(folder, f"the graph's input '{'x' if 'lean' in manifest else 'num'}' is tensor(double)")
    # another model's graph, its sha256 and size in the manifest
    folder = copy_artifact(house, tmp_path / "c")
    other = built_models["penguins"].folder
    manifest = manifest_of(folder)
    for name, key in (("model.onnx", "model_sha256"), ("model.ids.onnx", "ids_model_sha256")):
        data = (other / name).read_bytes()
        (folder / name).write_bytes(data)
        manifest["integrity"][key] = hashlib.sha256(data).hexdigest()
    manifest["artifact"]["size"] = (other / "model.onnx").stat().st_size
    write_sealed(folder, manifest)
    refused(folder, "the graph's input")
    # a regression manifest on a classifier's outputs
    folder = copy_artifact(house, tmp_path / "d")
    manifest = manifest_of(folder)
    manifest["outputs"]["prediction"]["name"] = "probabilities"
    write_sealed(folder, manifest)
    refused(folder, "the graph has no tensor(double) output 'probabilities'")


# -------------------------------------------------------- 8: wheels, devices, FIFOs


def _rewrite_wheel(
    wheel: Path, out: Path, change: Callable[[zipfile.ZipInfo, bytes], tuple[zipfile.ZipInfo, bytes]]
) -> Path:
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            new_info, data = change(info, source.read(info))
            target.writestr(new_info, data)
    return out


def test_8_encrypted_and_other_compression_entries(house_prices: Built, tmp_path: Path) -> None:
    def lzma(info: zipfile.ZipInfo, data: bytes) -> tuple[zipfile.ZipInfo, bytes]:
        if info.filename.endswith("/model.onnx"):
            info = copy.copy(info)
            info.compress_type = zipfile.ZIP_LZMA
        return info, data

    wheel = _rewrite_wheel(house_prices.wheel, tmp_path / "lzma.whl", lzma)
    refused(wheel, "compressed with method 14")
    # the encryption flag on an entry (zipfile writes it as given)
    encrypted = tmp_path / "encrypted.whl"
    shutil.copyfile(house_prices.wheel, encrypted)
    data = bytearray(encrypted.read_bytes())
    with zipfile.ZipFile(house_prices.wheel) as source:
        (info,) = [i for i in source.infolist() if i.filename.endswith("/manifest.json")]
    central = data.rfind(b"PK\x01\x02" + bytes(4), 0)
    # set bit 0 of the general purpose flags in the local and the central headers
    data[info.header_offset + 6] |= 1
    name = info.filename.encode()
    at = data.find(b"PK\x01\x02", 0)
    while at >= 0:
        if data[at + 46 : at + 46 + len(name)] == name:
            data[at + 8] |= 1
        at = data.find(b"PK\x01\x02", at + 4)
    assert central != 0
    encrypted.write_bytes(bytes(data))
    refused(encrypted, "encrypted")


def test_8_model_onnx_a_link_to_a_device_or_a_fifo(folder: Path, tmp_path: Path) -> None:
    (folder / "model.onnx").unlink()
    os.symlink("/dev/zero", folder / "model.onnx")
    refused(folder, "model.onnx is not a regular file", seconds=10)
    (folder / "model.onnx").unlink()
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "fifo", folder / "model.onnx")
    refused(folder, "model.onnx is not a regular file", seconds=10)
    (folder / "model.onnx").unlink()
    os.symlink("model.onnx", folder / "model.onnx")  # a loop
    refused(folder, "cannot read the artifact", seconds=10)
    (folder / "model.onnx").unlink()
    os.mkfifo(folder / "manifest.json.fifo")
    (folder / "manifest.json").unlink()
    os.rename(folder / "manifest.json.fifo", folder / "manifest.json")
    refused(folder, "manifest.json is not a regular file", seconds=10)


def test_8_a_wheel_path_that_is_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model.whl")
    with pytest.raises(predictlib.ModelNotFoundError):
        predictlib.load(tmp_path / "model.whl")


# ----------------------------------------------------------- 9: graphs reading files


def _external(model: onnx.ModelProto, name: str, location: str) -> None:
    """Make initializer ``name`` of ``model`` read its data from ``location``."""
    (tensor,) = [t for t in model.graph.initializer if t.name == name]
    tensor.ClearField("raw_data")
    del tensor.double_data[:]
    del tensor.int64_data[:]
    del tensor.float_data[:]
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location


def test_9_a_sealed_graph_with_external_data_is_refused(
    house_prices: Built, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_bytes(b"\x01" * 4096)
    manifest = manifest_of(folder)
    for name, key in (("model.ids.onnx", "ids_model_sha256"), ("model.onnx", "model_sha256")):
        model = onnx.load_model_from_string((folder / name).read_bytes())
        target = max(model.graph.initializer, key=lambda t: len(t.raw_data))
        _external(model, target.name, "secret.txt")
        data = model.SerializeToString()
        (folder / name).write_bytes(data)
        manifest["integrity"][key] = hashlib.sha256(data).hexdigest()
        if name == "model.onnx":
            manifest["artifact"]["size"] = len(data)
    write_sealed(folder, manifest)
    error = refused(folder, "reads tensor data from files")
    assert "model.onnx" in str(error)


def test_9_file_references_anywhere_in_a_graph() -> None:
    """Initializers, attribute tensors, subgraphs, functions: every tensor is looked at."""
    value = numpy_helper.from_array(np.ones(3), "value")
    inner_const = helper.make_node("Constant", [], ["c"], value=value)
    inner = helper.make_graph(
        [inner_const], "then", [], [helper.make_tensor_value_info("c", TensorProto.DOUBLE, [3])]
    )
    if_node = helper.make_node("If", ["cond"], ["out"], then_branch=inner, else_branch=inner)
    graph = helper.make_graph(
        [if_node],
        "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.DOUBLE, [3])],
        initializer=[numpy_helper.from_array(np.zeros(2), "w")],
    )
    model = helper.make_model(graph)
    assert file_references(model.SerializeToString()) == []
    _external(model, "w", "secret.txt")
    assert file_references(model.SerializeToString()) == ["w"]
    model = helper.make_model(graph)
    attribute = model.graph.node[0].attribute[0].g.node[0].attribute[0].t
    attribute.data_location = TensorProto.EXTERNAL
    assert file_references(model.SerializeToString()) == ["value"]

    # protobuf keeps the last of a repeated scalar field: data_location 0, then 1
    def message(number: int, body: bytes) -> bytes:
        assert len(body) < 128
        return bytes([number << 3 | 2, len(body)]) + body

    tensor = numpy_helper.from_array(np.zeros(2), "w").SerializeToString() + b"\x70\x00\x70\x00\x70\x01"
    assert file_references(message(7, message(5, tensor))) == ["w"]
    # long runs of unpacked repeated scalars (a tree ensemble's node tables) are read whole
    nodes = helper.make_node("Identity", ["x"], ["y"], values=[0.5] * 20_000, ids=list(range(20_000)))
    big = helper.make_model(helper.make_graph([nodes], "g", [], [], initializer=[]))
    big.graph.initializer.append(numpy_helper.from_array(np.ones(2), "v"))
    assert file_references(big.SerializeToString()) == []
    _external(big, "v", "secret.txt")
    assert file_references(big.SerializeToString()) == ["v"]


# --------------------------------------------------------------- 10: size limits


def test_10_a_compression_bomb_is_refused_before_it_is_read(house_prices: Built, tmp_path: Path) -> None:
    """A wheel whose model.onnx inflates to 256 MiB of zeros: refused from its headers
    (declared size, compression ratio), with no large allocation."""
    bomb = tmp_path / "bomb.whl"
    with (
        zipfile.ZipFile(house_prices.wheel) as source,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if info.filename.endswith("/model.onnx"):
                with target.open(info.filename, "w", force_zip64=True) as fh:
                    block = bytes(1 << 20)
                    for _ in range(256):
                        fh.write(block)
            else:
                target.writestr(info, source.read(info))
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        refused(bomb, "model.onnx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_10_oversized_files_are_refused_from_their_size(folder: Path) -> None:
    manifest = (folder / "manifest.json").read_bytes()
    with (folder / "manifest.json").open("wb") as fh:  # 40 MiB of whitespace after the JSON
        fh.write(manifest)
        fh.truncate(_artifact.MAX_MANIFEST_BYTES + (8 << 20))
    refused(folder, "more than the 33,554,432 it may hold")
    (folder / "manifest.json").write_bytes(manifest)
    with (folder / "model.onnx").open("ab") as fh:
        fh.write(bytes(1 << 20))
    refused(folder, "model.onnx does not match its manifest")


def test_10_a_vocabulary_beyond_the_limit_is_refused_quickly(folder: Path) -> None:
    manifest = manifest_of(folder)
    ids_section(manifest)["vocabulary"] += [f"v{k}" for k in range(LIMITS["vocabulary"])]
    write_sealed(folder, manifest)
    refused(folder, "texts, more than the runtime's limit of 1,000,000", seconds=20)


# ----------------------------------------------------------------- 11: pinning


def test_11_pinning_an_artifact(house_prices: Built, folder: Path) -> None:
    model = predictlib.load(house_prices.folder)
    pin = hashlib.sha256((house_prices.folder / "manifest.json").read_bytes()).hexdigest()
    assert model.sha256 == pin
    wheel_pin = hashlib.sha256(house_prices.wheel.read_bytes()).hexdigest()
    assert predictlib.load(house_prices.wheel).sha256 == pin  # the same manifest in the wheel
    for source, sha in (
        (house_prices.folder, pin),
        (house_prices.wheel, pin),
        (house_prices.wheel, wheel_pin),
    ):
        assert predictlib.load(source, sha256=sha.upper()).sha256 == pin
    # the attack a self-hash cannot see: two numeric column names swapped, resealed
    manifest = manifest_of(folder)
    numeric = manifest["inputs"]["numeric"]
    a, b = numeric.index("OverallQual"), numeric.index("OverallCond")
    numeric[a], numeric[b] = numeric[b], numeric[a]
    if "lean" in manifest:  # the lean graph's columns, as consistently
        manifest["lean"]["columns"] = [*numeric, *manifest["inputs"]["categorical"]]
    _consistent_columns(manifest)
    write_sealed(folder, manifest)
    record = records_from_frame(house_prices.trained.X_test.iloc[:1])[0]
    assert predictlib.load(folder).predict(record) != model.predict(record)  # loads, answers differently
    refused(folder, "this is not the artifact pinned", sha256=pin)
    refused(house_prices.folder, "this is not the artifact pinned", sha256=wheel_pin)  # a folder has no wheel
    with pytest.raises(predictlib.PredictlibError, match="64 hexadecimal digits"):
        predictlib.load(house_prices.folder, sha256="abc")


# ------------------------------------------- the runtime's validator = JSON Schema


def test_the_validator_agrees_with_jsonschema(built_models: dict[str, Built]) -> None:
    """The runtime's hand-written validator against jsonschema on every built manifest and
    on broken ones (the whole schema, and the runtime's part of it)."""
    for schema in (manifest_schema(), runtime_schema()):
        reference = jsonschema.Draft202012Validator(schema)
        documents = []
        for built in built_models.values():
            manifest = manifest_of(built.folder)
            documents.append(manifest)
            for breakage in [
                *BREAKAGES.values(),
                lambda m: m.update(files={"x": {"role": 1}}),
                lambda m: m.pop("training"),
            ]:
                broken = copy.deepcopy(manifest)
                try:
                    breakage(broken)
                except (KeyError, IndexError):
                    continue
                documents.append(broken)
        for document in documents:
            assert (schema_errors(document, schema) == []) == reference.is_valid(document)


def test_the_schema_shipped_with_the_runtime_is_the_repository_schema() -> None:
    shipped = Path(predictlib.__file__).with_name("manifest.schema.json")
    assert shipped.read_bytes() == (ROOT / "schema" / "manifest.schema.json").read_bytes()
