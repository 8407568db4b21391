"""The ORT-format model, for onnxruntime mobile (Android / iOS) and reduced-size builds.

:func:`write_ort` converts ``model.onnx`` with onnxruntime's own
``onnxruntime.tools.convert_onnx_models_to_ort`` (optimization style ``Fixed``, level
``all``) into ``model.ort`` and ``model.required_operators.config``: the operators a
reduced-size onnxruntime build needs (``build.sh --minimal_build
--include_ops_by_config model.required_operators.config``).

:func:`verify_ort` runs the golden vectors (``golden.json``) through ``model.ort`` with
Python onnxruntime (which loads ORT format): outputs within the equivalence tolerance
and the same refusals, else :class:`predictlib.build.stages.verify.EquivalenceError`.

Repeatable bytes: onnxruntime's writer lays out the ORT flatbuffer in an order that
depends on the process (it serialises the kernel type string resolver from a hash
map seeded by a memory address), so two conversions of the same ``model.onnx`` in two
directories, or two processes, gave different bytes for the same model. :func:`canonical_ort`
therefore rewrites the file: it reads every table with the flatbuffers schema
onnxruntime ships (the generated Python modules of
``onnxruntime.tools.ort_format_model``), sorts the vectors of keyed tables by key,
and writes the tree again depth-first in schema order with the ``flatbuffers``
builder (shared strings, one vtable per distinct layout). The result depends only on
the model's contents, the onnxruntime version that converted it and the
``flatbuffers`` version (both pinned in the build dependency group); :func:`verify_ort`
then checks the rewritten file on the golden vectors.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import onnxruntime as ort
from flatbuffers import number_types
from flatbuffers.table import Table

import predictlib
from predictlib._artifact import MODEL_FILE, Artifact
from predictlib._inputs import InputAdapter

from .golden import GOLDEN_FILE, encode, output_mismatches, read_golden, runtime_problems
from .verify import EquivalenceError

ORT_FILE = "model.ort"
CONFIG_FILE = "model.required_operators.config"
#: how the ORT file is optimised (recorded in the manifest)
OPTIMIZATION = {"style": "Fixed", "level": "all"}


def write_ort(folder: Path) -> dict[str, str]:
    """Write ``folder/model.ort`` and ``folder/model.required_operators.config`` from
    ``folder/model.onnx``; returns file name -> role (for the manifest's ``files``)."""
    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="predictlib-ort-") as tmp:
        work = Path(tmp)
        shutil.copyfile(folder / MODEL_FILE, work / MODEL_FILE)
        env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONHASHSEED": "0", "LC_ALL": "C"}
        command = [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            MODEL_FILE,
            "--output_dir",
            "out",
            "--optimization_style",
            OPTIMIZATION["style"],
        ]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 and "No module named" in done.stderr and "PYTHONPATH" in os.environ:
            # onnxruntime is found through PYTHONPATH only
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        produced = work / "out" / ORT_FILE, work / "out" / CONFIG_FILE
        if done.returncode != 0 or not all(p.is_file() for p in produced):
            raise RuntimeError(
                f"onnxruntime could not convert {folder / MODEL_FILE} to ORT format "
                f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        (folder / ORT_FILE).write_bytes(canonical_ort(produced[0].read_bytes()))
        # the config names the converted files by absolute (temporary) path in a comment
        lines = produced[1].read_text(encoding="utf-8").splitlines()
        lines = [f"# - {ORT_FILE}" if line.startswith("# - ") else line for line in lines]
        (folder / CONFIG_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {ORT_FILE: "ort_model", CONFIG_FILE: "required_operators"}


# ------------------------------------------------------------------- canonical bytes


class OrtFormatError(ValueError):
    """An ORT file this build cannot rewrite canonically (a field the schema does not know)."""


#: numpy dtypes of the flatbuffers scalar types (little-endian, as flatbuffers stores them)
_SCALARS = {
    "Bool": "<?", "Uint8": "<u1", "Int8": "<i1", "Int16": "<i2", "Uint16": "<u2", "Int32": "<i4",
    "Uint32": "<u4", "Int64": "<i8", "Uint64": "<u8", "Float32": "<f4", "Float64": "<f8",
}  # fmt: skip
#: the member tables of the schema's unions, by union enum value name (the generated
#: Python names the enum values, not their tables)
_UNIONS = {
    ("TypeInfo", "Value"): (
        "TypeInfoValue",
        {"tensor_type": "TensorTypeAndShape", "sequence_type": "SequenceType", "map_type": "MapType"},
    )
}
#: vectors of tables written in key order (flatbuffers ``(key)`` fields; metadata is a map)
_KEYED = {
    ("KernelTypeStrResolver", "OpKernelTypeStrArgs"): "OpId",
    ("OpIdKernelTypeStrArgsEntry", "KernelTypeStrArgs"): "KernelTypeStr",
    ("RuntimeOptimizations", "Records"): "OptimizerName",
    ("Model", "MetadataProps"): "Key",
}
_ROOT = "InferenceSession"
_IDENTIFIER = b"ORTM"


@dataclass(frozen=True)
class _Field:
    name: str
    slot: int
    #: scalar, string, table, union, tables, strings, scalars, structs
    kind: str
    #: the scalar type (scalar, scalars), the table or struct name (table, tables, structs)
    of: str | None
    default: Any = None
    #: union members: enum value -> table; the slot of the union's type field
    members: tuple[tuple[int, str], ...] = ()
    type_slot: int = -1


@dataclass(frozen=True)
class _Schema:
    #: table -> (number of slots, fields by slot)
    tables: dict[str, tuple[int, dict[int, _Field]]]
    #: struct -> size in bytes
    structs: dict[str, int]


def _fbs_folder() -> Path:
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise OrtFormatError("onnxruntime is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "tools" / "ort_format_model" / "ort_flatbuffers_py" / "fbs"


def _calls(node: ast.AST) -> list[tuple[str, ast.Call]]:
    """(method, call) of every ``self._tab.<method>(...)`` call under ``node``."""
    found = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            owner = call.func.value
            if isinstance(owner, ast.Attribute) and owner.attr == "_tab":
                found.append((call.func.attr, call))
    return found


def _flags(call: ast.Call) -> str:
    """``Int32`` of ``self._tab.Get(flatbuffers.number_types.Int32Flags, ...)``."""
    first = call.args[0]
    assert isinstance(first, ast.Attribute) and first.attr.endswith("Flags")
    return first.attr[: -len("Flags")]


def _offset_kind(table: str, method: ast.FunctionDef) -> tuple[str, str | None]:
    """What an offset field holds, read from its generated accessor."""
    calls = _calls(method)
    names = {name for name, _ in calls}
    imported = [a.name for n in ast.walk(method) if isinstance(n, ast.ImportFrom) for a in n.names]
    if "Union" in names:
        return "union", None
    if "Vector" in names:
        if "Indirect" in names:
            return "tables", imported[0]
        if "String" in names:
            return "strings", None
        gets = [c for name, c in calls if name == "Get"]
        if gets:
            return "scalars", _flags(gets[0])
        if imported:
            return "structs", imported[0]
    elif "String" in names:
        return "string", None
    elif "Indirect" in names:
        return "table", imported[0]
    raise OrtFormatError(f"cannot tell what {table}.{method.name} holds in onnxruntime's ORT schema")


def _enum_values(folder: Path, name: str) -> dict[str, int]:
    tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return {
        s.targets[0].id: s.value.value
        for s in cls.body
        if isinstance(s, ast.Assign)
        and isinstance(s.targets[0], ast.Name)
        and isinstance(s.value, ast.Constant)
    }


@functools.lru_cache(maxsize=1)
def _schema() -> _Schema:
    """The ORT flatbuffers schema, read from the Python modules flatc generated for
    onnxruntime (``onnxruntime/tools/ort_format_model/ort_flatbuffers_py/fbs``): per
    table, each field's slot, kind and default (from ``<Table>Add<Field>``, which calls
    ``builder.Prepend<Type>Slot(slot, value, default)``, and the accessor method)."""
    folder = _fbs_folder()
    tables: dict[str, tuple[int, dict[int, _Field]]] = {}
    structs: dict[str, int] = {}
    for path in sorted(folder.glob("*.py")):
        name = path.stem
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
        if not classes:
            continue
        methods = {n.name: n for n in classes[0].body if isinstance(n, ast.FunctionDef)}
        if f"Create{name}" in functions:  # a struct
            size = methods["SizeOf"].body[0]
            assert isinstance(size, ast.Return) and isinstance(size.value, ast.Constant)
            structs[name] = int(size.value.value)
            continue
        start = functions.get(f"{name}Start")
        if start is None:
            continue  # an enum
        (slots,) = [c.args[0] for c in ast.walk(start) if isinstance(c, ast.Call) and c.args]
        assert isinstance(slots, ast.Constant)
        fields: dict[int, _Field] = {}
        prefix = f"{name}Add"
        for fname, function in functions.items():
            if not fname.startswith(prefix):
                continue
            field = fname[len(prefix) :]
            (call,) = [
                c
                for c in ast.walk(function)
                if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute)
                and c.func.attr.startswith("Prepend")
                and c.func.attr.endswith("Slot")
            ]
            assert isinstance(call.func, ast.Attribute)
            prepend = call.func.attr  # Prepend<Type>Slot
            slot_node = call.args[0]
            assert isinstance(slot_node, ast.Constant)
            slot = int(slot_node.value)
            scalar = prepend[len("Prepend") : -len("Slot")]
            if scalar != "UOffsetTRelative":
                fields[slot] = _Field(field, slot, "scalar", scalar, ast.literal_eval(call.args[2]))
                continue
            kind, of = _offset_kind(name, methods[field])
            fields[slot] = _Field(field, slot, kind, of)
        tables[name] = (int(slots.value), fields)
    for (table, field), (enum, members) in _UNIONS.items():
        values = _enum_values(folder, enum)
        if set(values) - {"NONE"} != set(members):
            raise OrtFormatError(f"onnxruntime's union {enum} changed: {sorted(values)}")
        _, fields = tables[table]
        (union,) = [f for f in fields.values() if f.name == field]
        (kind,) = [f for f in fields.values() if f.name == field + "Type"]
        fields[union.slot] = _Field(
            field,
            union.slot,
            "union",
            None,
            members=tuple(sorted((values[k], t) for k, t in members.items())),
            type_slot=kind.slot,
        )
    unknown = [
        f"{t}.{f.name}"
        for t, (_, fs) in tables.items()
        for f in fs.values()
        if f.kind == "union" and not f.members
    ]
    if unknown:
        raise OrtFormatError(f"onnxruntime's ORT schema has unions this build does not know: {unknown}")
    return _Schema(tables, structs)


#: a table read from an ORT file: its name and its present fields by slot
_Node = tuple[str, dict[int, Any]]


def _read_table(buf: bytes, pos: int, name: str, schema: _Schema) -> _Node:
    fields = schema.tables[name][1]
    tab = Table(buf, pos)
    vtable = pos - tab.Get(number_types.SOffsetTFlags, pos)
    present = (tab.Get(number_types.VOffsetTFlags, vtable) - 4) // 2
    for slot in range(present):
        if slot not in fields and tab.Get(number_types.VOffsetTFlags, vtable + 4 + 2 * slot):
            raise OrtFormatError(f"{name}: field {slot} is not in onnxruntime's ORT schema")
    values: dict[int, Any] = {}
    for slot, field in fields.items():
        o = tab.Offset(4 + 2 * slot)
        if not o:
            continue
        kind = field.kind
        if kind == "scalar":
            values[slot] = tab.Get(getattr(number_types, f"{field.of}Flags"), pos + o)
        elif kind == "string":
            values[slot] = tab.String(pos + o)
        elif kind == "table":
            assert field.of is not None
            values[slot] = _read_table(buf, tab.Indirect(pos + o), field.of, schema)
        elif kind == "union":
            type_at = tab.Offset(4 + 2 * field.type_slot)
            member = dict(field.members).get(
                tab.Get(number_types.Uint8Flags, pos + type_at) if type_at else 0
            )
            if member is None:
                raise OrtFormatError(f"{name}.{field.name}: unknown union member")
            values[slot] = _read_table(buf, tab.Indirect(pos + o), member, schema)
        else:
            start, n = tab.Vector(o), tab.VectorLen(o)
            if kind == "tables":
                assert field.of is not None
                items = [_read_table(buf, tab.Indirect(start + 4 * j), field.of, schema) for j in range(n)]
                key = _KEYED.get((name, field.name))
                if key is not None:
                    (key_slot,) = [s for s, f in schema.tables[field.of][1].items() if f.name == key]
                    items.sort(key=lambda item: item[1].get(key_slot, b""))
                values[slot] = items
            elif kind == "strings":
                values[slot] = [tab.String(start + 4 * j) for j in range(n)]
            elif kind == "scalars":
                assert field.of is not None
                size = np.dtype(_SCALARS[field.of]).itemsize
                values[slot] = bytes(buf[start : start + n * size])
            else:  # structs: plain bytes (EdgeEnd has no padding)
                assert field.of is not None
                values[slot] = bytes(buf[start : start + n * schema.structs[field.of]])
    return name, values


def _write_table(builder: flatbuffers.Builder, node: _Node, schema: _Schema) -> int:
    """Write ``node`` (children first, depth-first in slot order); returns its offset."""
    name, values = node
    count, fields = schema.tables[name]
    offsets: dict[int, int] = {}
    for slot in sorted(values):
        field, value = fields[slot], values[slot]
        kind = field.kind
        if kind == "scalar":
            continue
        if kind == "string":
            offsets[slot] = builder.CreateSharedString(value)
        elif kind in ("table", "union"):
            offsets[slot] = _write_table(builder, value, schema)
        elif kind in ("tables", "strings"):
            if kind == "tables":
                children = [_write_table(builder, child, schema) for child in value]
            else:
                children = [builder.CreateSharedString(text) for text in value]
            builder.StartVector(4, len(children), 4)
            for child in reversed(children):
                builder.PrependUOffsetTRelative(child)
            offsets[slot] = builder.EndVector()
        elif kind == "scalars":
            assert field.of is not None
            offsets[slot] = builder.CreateNumpyVector(np.frombuffer(value, dtype=_SCALARS[field.of]))
        else:  # structs
            assert field.of is not None
            size = schema.structs[field.of]
            builder.StartVector(size, len(value) // size, 4)
            builder.head = builder.head - len(value)
            builder.Bytes[builder.head : builder.head + len(value)] = value
            offsets[slot] = builder.EndVector()
    builder.StartObject(count)
    for slot in sorted(values):
        field = fields[slot]
        if field.kind == "scalar":
            getattr(builder, f"Prepend{field.of}Slot")(slot, values[slot], field.default)
        else:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[slot], 0)
    return int(builder.EndObject())


def _read_ort(data: bytes) -> _Node:
    if data[4:8] != _IDENTIFIER:
        raise OrtFormatError("not an ORT-format model (no ORTM identifier)")
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0)
    return _read_table(data, root, _ROOT, _schema())


def canonical_ort(data: bytes) -> bytes:
    """``data``, an ORT-format model, rewritten in the canonical layout (see the module
    docstring): the same tables and values, bytes that depend only on them. Raises
    :class:`OrtFormatError` when the file holds a field the schema does not know."""
    tree = _read_ort(data)
    builder = flatbuffers.Builder(len(data))
    builder.Finish(_write_table(builder, tree, _schema()), file_identifier=_IDENTIFIER)
    out = bytes(builder.Output())
    if _read_ort(out) != tree:  # the rewrite holds exactly what was read
        raise OrtFormatError("the canonical rewrite of the ORT file does not read back the same")
    return out


def ort_details() -> dict[str, Any]:
    """What the manifest records about how ``model.ort`` was made."""
    return {"converted_by": f"onnxruntime {ort.__version__}", "optimization": dict(OPTIMIZATION)}


def _output_names(manifest: dict[str, Any]) -> list[str]:
    outputs = manifest["outputs"]
    if manifest["task"] == "classification":
        return [outputs["label"]["name"], outputs["probabilities"]["name"]]
    return [outputs["prediction"]["name"]]


def verify_ort(folder: Path, manifest: dict[str, Any], log: Any = print) -> dict[str, Any]:
    """The golden vectors through ``folder/model.ort``: the same outputs within the
    tolerance, the same refusals. Raises :class:`EquivalenceError` on disagreement;
    returns a summary for the manifest."""
    folder = Path(folder)
    golden = read_golden(folder / GOLDEN_FILE)
    path = folder / ORT_FILE
    failures: list[str] = []

    # outputs: a plain session on the .ort file, inputs built by the runtime's adapter
    session = ort.InferenceSession(
        str(path), sess_options=predictlib.default_session_options(), providers=["CPUExecutionProvider"]
    )
    inputs = manifest["inputs"]
    adapter = InputAdapter(
        inputs["numeric"], inputs["categorical"], inputs["missing_category"], inputs.get("datetime", [])
    )
    accepted = golden["accepted"]
    max_abs = max_rel = 0.0
    if accepted:
        try:
            adapted = adapter.from_records([a["record"] for a in accepted], single=False)
        except predictlib.InputError as exc:  # runtimes that raise from the adapter
            adapted = (None, None, None, exc.problems)
        if len(adapted) > 3 and adapted[3]:
            raise EquivalenceError(
                f"{manifest['name']}: golden.json accepted records break the input contract"
            )
        num, cat = adapted[0], adapted[1]
        feeds = {}
        if adapter.numeric:
            feeds["num"] = num
        if adapter.categorical:
            feeds["cat"] = cat
        if adapter.datetime:
            feeds["dt"] = adapted[4]
        names = _output_names(manifest)
        checks = manifest["outputs"].get("refusals", {}).get("checks", [])
        results = session.run(names + (["refusals"] if checks else []), feeds)
        if checks:
            for row in np.nonzero(results[-1].any(axis=1))[0].tolist():
                failures.append(f"accepted record {accepted[row]['id']}: model.ort refuses it")
        for row, item in enumerate(accepted):
            if manifest["task"] == "classification":
                label = results[0].reshape(-1)[row]
                got = {"label": label.item() if hasattr(label, "item") else label}
                got["probabilities"] = results[1][row].tolist()
                pairs = list(zip(got["probabilities"], item["expected"]["probabilities"], strict=False))
            else:
                got = {"prediction": float(results[0][row].item())}
                pairs = [(got["prediction"], item["expected"]["prediction"])]
            failures += [
                f"accepted record {item['id']}: {m}" for m in output_mismatches(item["expected"], got)
            ]
            for a, b in pairs:
                if np.isfinite(a) and np.isfinite(b):
                    max_abs = max(max_abs, abs(a - b))
                    if b != 0:
                        max_rel = max(max_rel, abs(a - b) / abs(b))

    # refusals: the runtime itself, running model.ort
    runtime = predictlib.Model(Artifact(manifest, path.read_bytes(), str(path)))
    for item in golden["refused"]:
        got_problems = runtime_problems(runtime, item["record"])
        if got_problems != encode(item["problems"]):
            failures.append(
                f"refused record {item['id']}: model.ort gives {got_problems}, golden.json {item['problems']}"
            )
    report = {
        "golden_accepted": len(accepted),
        "golden_refused": len(golden["refused"]),
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
        "failures": len(failures),
    }
    log(
        f"  model.ort: {len(accepted)} golden records predicted, {len(golden['refused'])} refused, "
        f"max abs error {max_abs:.3g}, max rel error {max_rel:.3g}, {len(failures)} disagreement(s)"
    )
    if failures:
        shown = "\n    ".join(failures[:10])
        raise EquivalenceError(f"{manifest['name']}: model.ort disagrees with golden.json:\n    {shown}")
    return report
