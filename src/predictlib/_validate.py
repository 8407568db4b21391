"""Checks of what an artifact holds, before anything uses it (no dependency beyond the
standard library):

* :func:`schema_errors`: a JSON document against a JSON Schema (draft 2020-12), for the
  keywords ``manifest.schema.json`` uses (an unknown keyword is an error, never
  ignored); :func:`manifest_schema` reads the schema shipped with the runtime;
* :func:`manifest_problems`: what the schema cannot say: the column groups and their
  descriptions agree, the ids vocabulary holds the missing-value sentinel, the sizes
  stay within the runtime's limits (:data:`LIMITS`);
* :func:`file_references`: the initializers and attributes of an ONNX graph that read
  data from files (``data_location = EXTERNAL``, ``external_data``): onnxruntime would
  read them relative to the working directory; predictlib refuses them.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")

#: what a manifest may hold (docs/reliability.md): beyond these an artifact is refused
LIMITS = {
    "vocabulary": 1_000_000,  # entries of inputs.category_ids.vocabulary
    "columns": 100_000,  # input columns
    "checks": 1_000_000,  # refusal checks (outputs.refusals.checks)
    "classes": 100_000,  # classes of a classifier
}

# ------------------------------------------------------------------ JSON Schema subset

#: keywords that only annotate (no effect on validity)
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_KEYWORDS = frozenset(
    {
        "$ref", "type", "const", "enum", "required", "properties", "additionalProperties",
        "items", "prefixItems", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength",
        "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "allOf", "anyOf",
        "oneOf", "not", "if", "then", "else",
    }
)  # fmt: skip
#: at most this many errors are reported
_MAX_ERRORS = 20


class SchemaError(ValueError):
    """A schema using a keyword this validator does not implement."""


@functools.lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The manifest's JSON Schema shipped with the runtime, checked to use only the
    keywords :func:`schema_errors` implements."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    _check_keywords(schema, "#")
    return dict(schema)


#: the manifest members the runtime reads: what :func:`runtime_schema` requires and checks
RUNTIME_MEMBERS = (
    "format_version",
    "name",
    "version",
    "task",
    "runtime",
    "artifact",
    "inputs",
    "outputs",
    "integrity",
    "lean",  # optional: the lean graph (predictlib._lean)
)


@functools.lru_cache(maxsize=1)
def runtime_schema() -> dict[str, Any]:
    """The manifest schema restricted to what the runtime reads (:data:`RUNTIME_MEMBERS`,
    each against its schema, and the rules between them): the other members (training,
    metrics, equivalence, build, files...) describe how the model was made, are checked
    by the build against the whole schema, and may be absent while a build verifies the
    graph it is packaging."""
    schema = manifest_schema()
    restricted = dict(schema)
    restricted["required"] = [m for m in schema["required"] if m in RUNTIME_MEMBERS]
    restricted["properties"] = {k: v for k, v in schema["properties"].items() if k in RUNTIME_MEMBERS}
    return restricted


def _check_keywords(schema: Any, where: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a schema must be an object or a boolean")
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS - {"if", "then", "else"}
    if unknown:
        raise SchemaError(
            f"{where}: keywords {sorted(unknown)} are not implemented by predictlib's validator"
        )
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            _check_keywords(sub, f"{where}/{key}/{name}")
    for key in ("additionalProperties", "items", "not", "if", "then", "else"):
        if key in schema:
            _check_keywords(schema[key], f"{where}/{key}")
    for key in ("prefixItems", "allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key, [])):
            _check_keywords(sub, f"{where}/{key}/{i}")


def schema_errors(document: Any, schema: Mapping[str, Any]) -> list[str]:
    """Where ``document`` breaks ``schema`` ("path: what"), at most 20; [] when valid."""
    errors: list[str] = []
    _validate(document, schema, schema, "", errors)
    return errors[:_MAX_ERRORS]


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":  # stricter than JSON Schema: 1.0 is not an integer here
        return type(value) is int
    if kind == "number":
        return type(value) in (int, float)
    if kind == "boolean":
        return type(value) is bool
    if kind == "null":
        return value is None
    raise SchemaError(f"unknown type {kind!r}")


def _key(value: Any) -> Any:
    """A hashable key equal for JSON-equal values (1 == 1.0, True != 1)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, list):
        return ("array", tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _key(v)) for k, v in value.items())))
    return ("other", repr(value))


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise SchemaError(f"only local references are implemented, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _validate(value: Any, schema: Any, root: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if len(errors) >= _MAX_ERRORS:
        return
    if schema is True:
        return
    if schema is False:
        errors.append(f"{path or '/'}: not allowed")
        return
    where = path or "/"
    if "$ref" in schema:
        _validate(value, _resolve(root, schema["$ref"]), root, path, errors)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, k) for k in kinds):
            errors.append(f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}")
            return
    if "const" in schema and _key(value) != _key(schema["const"]):
        errors.append(f"{where}: expected {json.dumps(schema['const'])}")
    if "enum" in schema and _key(value) not in {_key(v) for v in schema["enum"]}:
        errors.append(f"{where}: expected one of {json.dumps(schema['enum'])}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{where}: does not match {schema['pattern']}")
    if type(value) in (int, float):
        for keyword, sign in (
            ("minimum", -1),
            ("maximum", 1),
            ("exclusiveMinimum", 0),
            ("exclusiveMaximum", 2),
        ):
            if keyword in schema and _beyond(value, schema[keyword], sign):
                errors.append(f"{where}: {keyword} {schema[keyword]}")
    if isinstance(value, dict):
        _validate_object(value, schema, root, path, errors)
    if isinstance(value, list):
        _validate_array(value, schema, root, path, errors)
    for sub in schema.get("allOf", []):
        _validate(value, sub, root, path, errors)
    if "anyOf" in schema and not any(_valid(value, s, root) for s in schema["anyOf"]):
        errors.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema and sum(_valid(value, s, root) for s in schema["oneOf"]) != 1:
        errors.append(f"{where}: does not match exactly one of oneOf")
    if "not" in schema and _valid(value, schema["not"], root):
        errors.append(f"{where}: matches a schema it must not")
    if "if" in schema:
        branch = "then" if _valid(value, schema["if"], root) else "else"
        if branch in schema:
            _validate(value, schema[branch], root, path, errors)


def _beyond(value: float, bound: float, sign: int) -> bool:
    """Whether ``value`` breaks a bound: minimum (-1), maximum (1), exclusiveMinimum (0),
    exclusiveMaximum (2)."""
    if sign == -1:
        return value < bound
    if sign == 1:
        return value > bound
    return value <= bound if sign == 0 else value >= bound


def _valid(value: Any, schema: Any, root: Mapping[str, Any]) -> bool:
    found: list[str] = []
    _validate(value, schema, root, "", found)
    return not found


def _validate_object(
    value: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any], path: str, errors: list[str]
) -> None:
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{path or '/'}: '{name}' is required")
    properties = schema.get("properties", {})
    for name, sub in properties.items():
        if name in value:
            _validate(value[name], sub, root, f"{path}/{name}", errors)
    extra = schema.get("additionalProperties")
    if extra is not None:
        for name in value:
            if name not in properties:
                _validate(value[name], extra, root, f"{path}/{name}", errors)


def _validate_array(
    value: list[Any], schema: Mapping[str, Any], root: Mapping[str, Any], path: str, errors: list[str]
) -> None:
    where = path or "/"
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{where}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{where}: more than {schema['maxItems']} items")
    prefix = schema.get("prefixItems", [])
    for i, sub in enumerate(prefix[: len(value)]):
        _validate(value[i], sub, root, f"{path}/{i}", errors)
    items = schema.get("items")
    if items is not None:
        rest = value[len(prefix) :]
        simple = _simple_type(items)
        if simple is not None:  # e.g. a long vocabulary of strings: one check per item, no recursion
            for i, item in enumerate(rest, len(prefix)):
                if not _type_ok(item, simple):
                    errors.append(f"{path}/{i}: expected {simple}, got {type(item).__name__}")
                    break
        else:
            for i, item in enumerate(rest, len(prefix)):
                _validate(item, items, root, f"{path}/{i}", errors)
    if schema.get("uniqueItems"):
        seen = set()
        for i, item in enumerate(value):
            key = _key(item)
            if key in seen:
                errors.append(f"{path}/{i}: a repeated item")
                break
            seen.add(key)


def _simple_type(schema: Any) -> str | None:
    if (
        isinstance(schema, dict)
        and set(schema) <= {"type", "description"}
        and isinstance(schema.get("type"), str)
    ):
        return str(schema["type"])
    return None


# ---------------------------------------------------------- what the schema cannot say

_KINDS = {"number": ("num", "numeric"), "category": ("cat", "categorical"), "datetime": ("dt", "datetime")}


def size_problems(manifest: Mapping[str, Any]) -> list[str]:
    """The lists of a manifest beyond :data:`LIMITS`, found before anything else reads
    them (the manifest is not validated yet: any member may be of any type)."""

    def at(*keys: str) -> Any:
        node: Any = manifest
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    problems = []
    for limit, what, keys in (
        ("vocabulary", "texts", ("inputs", "category_ids", "vocabulary")),
        ("vocabulary", "texts", ("lean", "vocabulary")),
        ("columns", "columns", ("lean", "columns")),
        ("columns", "columns", ("inputs", "columns")),
        ("columns", "columns", ("inputs", "numeric")),
        ("columns", "columns", ("inputs", "categorical")),
        ("columns", "columns", ("inputs", "datetime")),
        ("checks", "checks", ("outputs", "refusals", "checks")),
        ("classes", "classes", ("outputs", "probabilities", "classes")),
        ("classes", "classes", ("outputs", "label", "classes")),
    ):
        found = at(*keys)
        if isinstance(found, list) and len(found) > LIMITS[limit]:
            problems.append(
                f"{'/'.join(keys)}: {len(found):,} {what}, more than the runtime's limit of {LIMITS[limit]:,}"
            )
    return problems


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Inconsistencies of a manifest that validates against the (runtime) schema."""
    problems = []
    inputs = manifest["inputs"]
    groups = {key: list(inputs.get(key, [])) for _, key in _KINDS.values()}
    names = [name for group in groups.values() for name in group]
    if len(set(names)) != len(names):
        problems.append("inputs: a column is in two groups")
    described = {}
    for k, column in enumerate(inputs["columns"]):
        group, key = _KINDS[column["kind"]]
        place = groups[key].index(column["name"]) if column["name"] in groups[key] else -1
        if column["group"] != group or place != column["index"]:
            problems.append(
                f"inputs/columns/{k}: column '{column['name']}' ({column['kind']}) is not "
                f"inputs.{key}[{column['index']}] of group '{column['group']}'"
            )
        described[column["name"]] = column["kind"]
    if set(described) != set(names) or len(described) != len(inputs["columns"]):
        problems.append(
            "inputs/columns: does not describe each column of numeric, categorical and datetime once"
        )
    spec = inputs.get("category_ids")
    if spec is not None:
        if inputs["missing_category"] not in spec["vocabulary"]:
            problems.append("inputs/category_ids/vocabulary: does not hold missing_category")
        if "ids_model_sha256" not in manifest["integrity"]:
            problems.append("integrity: no ids_model_sha256 for inputs.category_ids")
    lean = manifest.get("lean")
    if lean is not None:  # the lean graph (predictlib._lean)
        if spec is not None:
            problems.append("lean: with inputs.category_ids (an artifact has one ids graph)")
        if inputs["missing_category"] not in lean["vocabulary"]:
            problems.append("lean/vocabulary: does not hold missing_category")
        if "ids_model_sha256" not in manifest["integrity"]:
            problems.append("integrity: no ids_model_sha256 for lean")
        if lean["columns"] != [*groups["numeric"], *groups["categorical"]] or lean["numeric"] != len(
            groups["numeric"]
        ):
            problems.append("lean/columns: not the numeric then the categorical columns")
    outputs = manifest["outputs"]
    checks = outputs["refusals"]["checks"]
    shape = outputs["refusals"]["shape"]
    if len(shape) == 2 and shape[1] != len(checks):
        problems.append(f"outputs/refusals: shape {shape} for {len(checks)} checks")
    if manifest["task"] == "classification":
        label, probabilities = outputs["label"], outputs["probabilities"]
        classes = probabilities["classes"]
        if label["classes"] != classes:
            problems.append("outputs: label.classes and probabilities.classes differ")
        kinds = {type(c) for c in classes}
        if kinds != ({str} if label["dtype"] == "string" else {int}):
            problems.append(
                f"outputs/label: {label['dtype']} labels, classes of types {sorted(t.__name__ for t in kinds)}"
            )
        shape = probabilities["shape"]
        if len(shape) == 2 and shape[1] != len(classes):
            problems.append(f"outputs/probabilities: shape {shape} for {len(classes)} classes")
    return problems


# ------------------------------------------------------------- ONNX file references

#: ONNX protobuf messages (onnx.proto): field number -> the message type it holds, for
#: every path from a ModelProto to a TensorProto
_MESSAGES: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
#: the scalar fields read of each message (the others' repeated runs are skipped)
_KEEP = {"tensor": frozenset({_TENSOR_DATA_LOCATION})}
#: how deep graphs may nest (subgraphs of If / Loop / Scan attributes)
_MAX_NESTING = 64


class NotOnnx(ValueError):
    """Bytes that are not a well-formed ONNX protobuf."""


def _varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= end or shift > 63:
            raise NotOnnx("a truncated or overlong varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


#: runs of a scalar field repeated with a one-byte key, skipped in C: tree ensembles
#: hold their node tables as unpacked repeated ints and floats (tens of thousands)
_SCALAR_BODY = {0: rb"[\x80-\xff]{0,9}[\x00-\x7f]", 1: rb"(?s:.){8}", 5: rb"(?s:.){4}"}
_RUNS: dict[int, re.Pattern[bytes]] = {}


def _run_end(data: bytes, at: int, end: int, key: int) -> int:
    """Where a run of fields with the one-byte ``key`` starting at ``at`` ends."""
    pattern = _RUNS.get(key)
    if pattern is None:
        pattern = _RUNS[key] = re.compile(rb"(?:" + re.escape(bytes([key])) + _SCALAR_BODY[key & 7] + rb")*")
    found = pattern.match(data, at, end)
    return at if found is None else found.end()


def message_fields(
    data: bytes, start: int, end: int, keep: frozenset[int] = frozenset()
) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) of a message's fields; a repeated
    scalar field not in ``keep`` yields its first value only (the rest is skipped)."""
    at = start
    while at < end:
        key, at = _varint(data, at, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at, end)
            yield number, wire, value, at
        elif wire == 1:
            at += 8
            yield number, wire, at - 8, at
        elif wire == 2:
            length, at = _varint(data, at, end)
            if at + length > end:
                raise NotOnnx("a field runs past its message")
            yield number, wire, at, at + length
            at += length
        elif wire == 5:
            at += 4
            yield number, wire, at - 4, at
        else:
            raise NotOnnx(f"wire type {wire}")
        if wire != 2 and key < 0x80 and number not in keep and at < end and data[at] == key:
            at = _run_end(data, at, end, key)
    if at != end:
        raise NotOnnx("a field runs past its message")


def file_references(model: bytes) -> list[str]:
    """The tensors of an ONNX model (initializers, attribute tensors, in subgraphs and
    functions too) whose data lives in a file: their names. Raises :class:`NotOnnx` for
    bytes that are not a well-formed protobuf on the way there."""
    found: list[str] = []
    stack = [("model", 0, len(model), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > _MAX_NESTING:
            raise NotOnnx(f"graphs nested more than {_MAX_NESTING} deep")
        children = _MESSAGES[kind]
        external = False
        name = ""
        for number, wire, a, b in message_fields(model, start, end, _KEEP.get(kind, frozenset())):
            if kind == "tensor":
                if number == _TENSOR_EXTERNAL_DATA or (
                    number == _TENSOR_DATA_LOCATION and wire == 0 and a == 1
                ):
                    external = True
                elif number == _TENSOR_NAME and wire == 2:
                    name = model[a:b].decode("utf-8", "replace")
            elif number in children:
                if wire != 2:
                    raise NotOnnx(f"field {number} of a {kind} is not a message")
                stack.append((children[number], a, b, depth + 1))
        if external:
            found.append(name or "<unnamed tensor>")
    return found


def finite_json_number(text: str) -> float:
    """``parse_float`` for manifests: a finite float (1e400 is not one)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is beyond float64")
    return value
