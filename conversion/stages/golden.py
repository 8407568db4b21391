"""Golden vectors: records with the original pipeline's answers, for runtimes in other
languages (``golden.json`` beside ``model.onnx``, shipped in the model wheel).

Two lists, both run through the predictlib runtime when written:

* ``accepted``: records with the ORIGINAL pipeline's outputs (``expected``): held-out
  rows, :func:`predictlib.build.stages.verify.generate_records` records and per-column edge cases
  (a missing value and an extreme value or an unseen category in each column);
* ``refused``: records a runtime must refuse, with the runtime's problems (column,
  ``code``, ``reason`` and the refused ``value``). Those from the original pipeline's
  own refusals are confirmed one by one against it (``confirmed_by_original``); a few
  more (``source`` ``"input_contract"``) exercise the input contract (wrong types, a
  missing column, the reserved missing-category text).

JSON has no NaN nor infinities: a float that JSON cannot hold is written
``{"$float": "nan"}``, ``{"$float": "inf"}`` or ``{"$float": "-inf"}``, in records,
expected outputs and problem values alike (:func:`encode` / :func:`decode`). JSON has
no datetimes either: a datetime is ``{"$datetime": "2020-01-01T00:00:00.000000001"}``,
ISO 8601 without time zone (a naive datetime), with as many fraction digits as it needs
(none, 3, 6 or 9), or a date alone (``"2020-01-01"``, midnight); a timezone-aware one
(refused by the runtimes) ends with its offset (``"2020-01-01T00:00:00+01:00"``). A
missing datetime (NaT) is ``null``. A column left out of a record is absent from the
input (the runtime refuses it). Everything is described in ``docs/embedding.md`` and
``schema/golden.schema.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import predictlib
from predictlib._errors import NO_VALUE
from predictlib._inputs import DATETIME_RANGE

from .. import tolerances
from ..core.frame import DT, MISSING, NUM, Column
from .verify import (
    EXTREME_DATETIMES,
    EXTREME_NUMBERS,
    EquivalenceError,
    compare,
    generate_records,
    records_from_frame,
    reference_frame,
)

GOLDEN_FILE = "golden.json"
GOLDEN_FORMAT = "predictlib-golden"
GOLDEN_FORMAT_VERSION = 1

#: golden.json holds at least this many accepted records (more are generated if needed)
MIN_ACCEPTED = 200
#: how many records of each kind golden.json holds (at most)
HELD_OUT_RECORDS = 100
GENERATED_RECORDS = 250
#: refused records kept (each distinct set of problems first); each one is confirmed
#: against the original pipeline, ~50 ms apiece
MAX_REFUSED = 120

#: how a runtime's problem text maps to a language-independent code
CODES = ("not_a_record", "missing_column", "wrong_type", "out_of_range", "reserved_value", "refused")

_FLOAT_KEY = "$float"
_DATETIME_KEY = "$datetime"
#: a timezone offset at the end of an ISO 8601 text
_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$")


def encode_datetime(value: Any) -> str:
    """A datetime as golden.json's ``$datetime`` text (see the module docstring)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, dt.datetime) and hasattr(value, "to_datetime64"):  # pandas Timestamp
        value = value.to_datetime64()
    elif isinstance(value, (dt.datetime, dt.date)):
        value = np.datetime64(value)
    if np.datetime_data(value.dtype)[0] in ("Y", "M", "W", "D"):
        return str(np.datetime_as_string(value.astype("datetime64[D]")))
    for unit in ("s", "ms", "us", "ns"):
        coarse = value.astype(f"datetime64[{unit}]")
        if coarse == value:
            return str(np.datetime_as_string(coarse, unit=unit))
    raise TypeError(f"cannot write {value!r} to {GOLDEN_FILE}: finer than nanoseconds")


def decode_datetime(text: str) -> Any:
    """The inverse of :func:`encode_datetime`: numpy datetime64 (its unit from the
    digits), or a timezone-aware ``datetime.datetime``."""
    if _OFFSET.search(text):
        return dt.datetime.fromisoformat(text)
    return np.datetime64(text)


# ------------------------------------------------------------------ JSON encoding
def encode(value: Any) -> Any:
    """A JSON-safe copy of ``value``: NaN / inf / -inf as ``{"$float": ...}``, datetimes
    as ``{"$datetime": ...}`` (NaT as None), numpy scalars and arrays as Python values."""
    if (isinstance(value, np.datetime64) and np.isnat(value)) or type(value).__name__ == "NaTType":
        return None
    if isinstance(value, (dt.date, np.datetime64)):
        return {_DATETIME_KEY: encode_datetime(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [encode(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return {_FLOAT_KEY: "nan"}
        if math.isinf(value):
            return {_FLOAT_KEY: "inf" if value > 0 else "-inf"}
        return value
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, np.str_):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to {GOLDEN_FILE}")


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if set(value) == {_FLOAT_KEY}:
            return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[value[_FLOAT_KEY]]
        if set(value) == {_DATETIME_KEY}:
            return decode_datetime(value[_DATETIME_KEY])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def problem_code(expected: str) -> str:
    """The code of a runtime problem text (``Problem.expected``); see :data:`CODES`."""
    if expected.startswith("refused by step "):
        return "refused"
    if expected == "required column is missing":
        return "missing_column"
    if expected == "this text is reserved to mark missing values":
        return "reserved_value"
    if expected in ("expected a number in the float64 range", DATETIME_RANGE):
        return "out_of_range"
    if expected.startswith("expected a mapping"):
        return "not_a_record"
    if expected.startswith("expected a "):
        return "wrong_type"
    raise ValueError(f"no golden code for the runtime's problem text {expected!r}: add one to CODES")


def problem_json(problem: predictlib.Problem) -> dict[str, Any]:
    """A runtime problem as golden.json writes it (``value`` absent when there is none)."""
    out: dict[str, Any] = {
        "column": problem.column,
        "code": problem_code(problem.expected),
        "reason": problem.expected,
    }
    if problem.value is not NO_VALUE:
        out["value"] = encode(problem.value)
    return out


def runtime_problems(runtime: predictlib.Model, record: dict[str, Any]) -> list[dict[str, Any]]:
    """What the runtime says about ``record`` alone: ``[]`` when it predicts it."""
    try:
        runtime.predict(record)
    except predictlib.InputError as exc:
        return [problem_json(p) for p in exc.problems]
    return []


# ------------------------------------------------------------------ outputs
def original_outputs(
    model: Any, records: Sequence[dict[str, Any]], columns: Sequence[Column], task: str
) -> Any:
    """The original pipeline's outputs for ``records`` as golden ``expected`` objects."""
    frame = reference_frame(list(records), columns)
    with np.errstate(over="ignore"):
        if task == "classification":
            labels = np.asarray(model.predict(frame)).reshape(len(frame))  # CatBoost: [N, 1]
            proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
            return [
                {"label": _scalar(labels[i]), "probabilities": proba[i].tolist()} for i in range(len(frame))
            ]
        prediction = np.asarray(model.predict(frame), dtype=np.float64).reshape(len(frame))
    return [{"prediction": float(p)} for p in prediction]


def _scalar(value: Any) -> Any:
    """A numpy scalar (or an element of an object array) as a plain Python value."""
    return value.item() if isinstance(value, np.generic) else value


def _tied(expected: dict[str, Any]) -> bool:
    """A classification record whose two top probabilities are equal within the
    tolerance: another runtime may pick either label, so it is left out."""
    proba = sorted(expected.get("probabilities", []))
    if len(proba) < 2:
        return False
    return proba[-1] - proba[-2] <= tolerances.ATOL + tolerances.RTOL * proba[-1]


def within_tolerance(got: float, expected: float) -> bool:
    """The equivalence rule: equal (NaN and infinities included) or
    ``|got - expected| <= ATOL + RTOL * |expected|``."""
    return tolerances.close(got, expected)


def output_mismatches(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """How decoded ``got`` differs from decoded ``expected`` (golden ``expected`` objects)."""
    out = []
    if "prediction" in expected and not within_tolerance(float(got["prediction"]), expected["prediction"]):
        out.append(f"prediction {got['prediction']!r}, expected {expected['prediction']!r}")
    if "label" in expected and got["label"] != expected["label"]:
        out.append(f"label {got['label']!r}, expected {expected['label']!r}")
    if "probabilities" in expected:
        p, q = list(got["probabilities"]), expected["probabilities"]
        if len(p) != len(q) or not all(within_tolerance(float(a), b) for a, b in zip(p, q, strict=True)):
            out.append(f"probabilities {p!r}, expected {q!r}")
    return out


# ------------------------------------------------------------------ records
def edge_records(base: dict[str, Any], train: Any, columns: Sequence[Column]) -> list[dict[str, Any]]:
    """Per column of ``base``: a missing value (NaN or None, alternately) and an extreme
    number (cycling through :data:`predictlib.build.stages.verify.EXTREME_NUMBERS`), an extreme
    datetime (:data:`predictlib.build.stages.verify.EXTREME_DATETIMES`) or an unseen category, plus
    a rare category where the training data has one."""
    out = []
    for i, col in enumerate(columns):
        out.append({**base, col.name: math.nan if i % 2 == 0 else None})
        if col.kind == NUM:
            out.append({**base, col.name: EXTREME_NUMBERS[i % len(EXTREME_NUMBERS)]})
        elif col.kind == DT:
            out += [{**base, col.name: EXTREME_DATETIMES[k]} for k in (i % 2, 2 + i % 6)]
        else:
            out.append({**base, col.name: f"unseen-{col.name}"})
            counts = train[col.name].value_counts()
            rare = [str(k) for k, v in counts.items() if v / len(train) < 0.05]
            if rare:
                out.append({**base, col.name: rare[-1]})
    return out


def contract_records(base: dict[str, Any], columns: Sequence[Column]) -> list[dict[str, Any]]:
    """Records the runtime's input contract refuses before the graph runs."""
    numeric = [c.name for c in columns if c.kind == NUM]
    categorical = [c.name for c in columns if c.kind not in (NUM, DT)]
    datetimes = [c.name for c in columns if c.kind == DT]
    out: list[dict[str, Any]] = []
    if datetimes:  # text is left out: the Node.js client takes ISO 8601 text as datetimes
        out.append({**base, datetimes[0]: 20200101})
        out.append({**base, datetimes[0]: True})
        out.append({**base, datetimes[0]: dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))})
        out.append({**base, datetimes[0]: np.datetime64("9999-12-31T00:00:00")})
        out.append({**base, datetimes[-1]: np.datetime64("1677-09-21T00:12:43.145224")})
        out.append({k: v for k, v in base.items() if k != datetimes[-1]})
    if numeric:
        out.append({**base, numeric[0]: True})
        out.append({**base, numeric[0]: "12.5"})
        out.append({k: v for k, v in base.items() if k != numeric[0]})
    if categorical:
        out.append({**base, categorical[0]: 3})
        out.append({**base, categorical[0]: MISSING})
        out.append({k: v for k, v in base.items() if k != categorical[0]})
    if numeric and categorical:
        out.append({**base, numeric[-1]: "n/a", categorical[-1]: False})
    return out


def _signature(problems: list[dict[str, Any]]) -> tuple[tuple[Any, str], ...]:
    return tuple((p["column"], p["reason"]) for p in problems)


# ------------------------------------------------------------------ golden.json
def build_golden(
    trained: Any, runtime_model: predictlib.Model, columns: Sequence[Column], seed: int
) -> dict[str, Any]:
    """The golden vectors of ``trained`` (see the module docstring); raises
    :class:`predictlib.build.stages.verify.EquivalenceError` if the runtime and the original disagree on them."""
    columns = list(columns)
    task = runtime_model.task
    held_out = records_from_frame(trained.X_test.iloc[:HELD_OUT_RECORDS])
    candidates: list[tuple[str, dict[str, Any]]] = [("held_out", r) for r in held_out]
    candidates += [
        ("generated", r) for r in generate_records(trained.X_train, columns, GENERATED_RECORDS, seed)
    ]
    base = next((r for r in held_out if not runtime_problems(runtime_model, r)), held_out[0])
    candidates += [("edge_case", r) for r in edge_records(base, trained.X_train, columns)]

    accepted: list[tuple[str, dict[str, Any]]] = []
    refused: list[tuple[int, list[dict[str, Any]]]] = []
    for i, (_, record) in enumerate(candidates):
        problems = runtime_problems(runtime_model, record)
        if problems:
            refused.append((i, problems))
        else:
            accepted.append(candidates[i])
    extra = 0
    while len(accepted) < MIN_ACCEPTED and extra < 5:  # a model that refuses many generated records
        extra += 1
        more = generate_records(trained.X_train, columns, 2 * (MIN_ACCEPTED - len(accepted)), seed + extra)
        for record in more:
            if len(accepted) < MIN_ACCEPTED and not runtime_problems(runtime_model, record):
                candidates.append(("generated", record))
                accepted.append(candidates[-1])
    if len(accepted) < MIN_ACCEPTED:
        raise EquivalenceError(f"{trained.name}: fewer than {MIN_ACCEPTED} golden records are accepted")
    # every distinct set of problems first, then the others in order, up to MAX_REFUSED
    seen: set[tuple[tuple[Any, str], ...]] = set()
    first, rest = [], []
    for item in refused:
        sig = _signature(item[1])
        (rest if sig in seen else first).append(item)
        seen.add(sig)
    refused = sorted((first + rest)[:MAX_REFUSED], key=lambda item: item[0])

    # the same records through the runtime and the original: outputs within the
    # tolerance, every refusal confirmed by the original pipeline
    records = [r for _, r in accepted] + [candidates[i][1] for i, _ in refused]
    report = compare(trained.model, runtime_model, records, columns, seed=seed)
    if report.failures:
        shown = "\n    ".join(report.failures[:10])
        raise EquivalenceError(f"{trained.name}: golden records disagree:\n    {shown}")

    expected = original_outputs(trained.model, [r for _, r in accepted], columns, task)
    accepted_out = [
        {"source": source, "record": encode(record), "expected": encode(exp)}
        for (source, record), exp in zip(accepted, expected, strict=True)
        if not _tied(exp)
    ]
    refused_out = [
        {
            "source": candidates[i][0],
            "record": encode(candidates[i][1]),
            "problems": problems,
            "confirmed_by_original": True,
        }
        for i, problems in refused
    ]
    for record in contract_records(base, columns):
        problems = runtime_problems(runtime_model, record)
        if not problems:
            raise EquivalenceError(f"{trained.name}: the runtime accepts an input-contract record {record}")
        refused_out.append(
            {
                "source": "input_contract",
                "record": encode(record),
                "problems": problems,
                "confirmed_by_original": False,
            }
        )
    for i, item in enumerate(accepted_out + refused_out):
        item["id"] = i
    manifest = runtime_model.manifest
    outputs = ["label", "probabilities"] if task == "classification" else ["prediction"]
    return {
        "format": GOLDEN_FORMAT,
        "format_version": GOLDEN_FORMAT_VERSION,
        "model": {"name": manifest["name"], "version": manifest["version"], "task": task},
        "encoding": (
            'JSON; a float JSON cannot hold is {"$float": "nan"}, {"$float": "inf"} or '
            '{"$float": "-inf"}; a datetime is {"$datetime": "<ISO 8601, no time zone>"} '
            "(null when missing); a column left out of a record is absent from the input"
        ),
        "tolerance": {
            "rtol": tolerances.RTOL,
            "atol": tolerances.ATOL,
            "rule": (
                "a float output matches when equal (NaN and infinities included) or when "
                "|got - expected| <= atol + rtol * |expected|; labels match exactly"
            ),
        },
        "outputs": outputs,
        "codes": list(CODES),
        "counts": {
            "accepted": len(accepted_out),
            "refused": len(refused_out),
            **{
                f"accepted_{s}": sum(1 for a in accepted_out if a["source"] == s)
                for s in ("held_out", "generated", "edge_case")
            },
        },
        "accepted": accepted_out,
        "refused": refused_out,
    }


def dumps(golden: dict[str, Any]) -> bytes:
    """golden.json's bytes: deterministic, one record per line."""

    def one(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    head = {k: v for k, v in golden.items() if k not in ("accepted", "refused")}
    lines = [one(head)[:-1] + ","]
    for key in ("accepted", "refused"):
        items = golden[key]
        lines.append(f'"{key}":[')
        lines += [one(item) + ("," if i < len(items) - 1 else "") for i, item in enumerate(items)]
        lines.append("]" + ("," if key == "accepted" else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if json.loads(text) != golden:  # never write what does not read back
        raise ValueError("internal error: golden.json does not read back")
    return text.encode()


def write_golden(
    trained: Any, runtime_model: predictlib.Model, folder: Path, columns: Sequence[Column], seed: int
) -> Path:
    """Write ``folder/golden.json`` (see :func:`build_golden`); returns its path."""
    path = Path(folder) / GOLDEN_FILE
    path.write_bytes(dumps(build_golden(trained, runtime_model, columns, seed)))
    return path


def read_golden(path: Path) -> dict[str, Any]:
    """golden.json, decoded (NaN / infinities back as floats)."""
    golden = json.loads(Path(path).read_text(encoding="utf-8"))
    if golden.get("format") != GOLDEN_FORMAT or golden.get("format_version") != GOLDEN_FORMAT_VERSION:
        raise ValueError(f"{path}: not a {GOLDEN_FORMAT} file of format {GOLDEN_FORMAT_VERSION}")
    decoded: dict[str, Any] = decode(golden)
    return decoded
