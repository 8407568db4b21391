"""The ``predictlib`` command: list installed models, show one, predict a file.

    predictlib list
    predictlib info MODEL [--json]
    predictlib predict MODEL INPUT.csv|INPUT.jsonl [-o OUT.csv] [--batch-size N] [--errors report|skip|fail]

MODEL is an installed model's name, an artifact folder or a model wheel file.
Files are streamed in batches; CSV is read with the standard library (no pandas).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from ._cli_monitor import add_monitor_commands
from ._errors import InputError, PredictlibError
from ._model import Model, available, load

#: cells read as missing in CSV files: pandas.read_csv's default NA strings, so a CSV
#: means the same to the CLI as to a user of the original pipeline reading it with pandas
CSV_MISSING = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["build"]:
        return _build(arguments[1:])
    parser = _parser()
    args = parser.parse_args(arguments)
    try:
        return int(args.run(args))
    except PredictlibError as exc:
        print(f"predictlib: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `predictlib predict ... | head`
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predictlib",
        description="Run predictlib models: exported feature-engine + scikit-learn pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"predictlib {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    commands.add_parser(
        "build",
        help="build model folders into verified artifacts and wheels (needs predictlib[build])",
        add_help=False,
    )
    p = commands.add_parser(
        "list", help="installed models and their versions", description="List installed models."
    )
    p.set_defaults(run=_list)

    p = commands.add_parser(
        "info",
        help="a model's manifest summary",
        description="Show a model's version, task, metrics, inputs, outputs and build versions.",
    )
    p.add_argument("model", help="installed model name, artifact folder or model wheel")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(run=_info)

    p = commands.add_parser(
        "predict",
        help="predict the rows of a CSV or JSON Lines file",
        description=(
            "Predict every row of INPUT (.csv with a header row, or .jsonl with one JSON object per "
            "line) and write a CSV: the input's row number, the prediction (regression) or the label "
            "and one probability column per class (classification), and an error column. CSV cells "
            f"in {sorted(CSV_MISSING)} are missing values, as pandas.read_csv reads them."
        ),
    )
    p.add_argument("model", help="installed model name, artifact folder or model wheel")
    p.add_argument("input", type=Path, help="input file: .csv or .jsonl ('-' for CSV on stdin)")
    p.add_argument("-o", "--output", type=Path, help="output CSV (default: stdout)")
    p.add_argument("--batch-size", type=int, default=10_000, help="rows per batch (default: 10000)")
    p.add_argument(
        "--errors",
        choices=("report", "skip", "fail"),
        default="report",
        help="rows the model refuses: report them in the error column (default), skip them, "
        "or stop at the first one (exit 1)",
    )
    p.set_defaults(run=_predict)
    add_monitor_commands(commands, _batches)  # drift, card (_cli_monitor.py)
    return parser


# ------------------------------------------------------------------------- commands


def _build(arguments: list[str]) -> int:
    """``predictlib build``: the build tooling, when installed (``predictlib[build]``)."""
    try:
        from .build.cli import main as build_main
    except ImportError as exc:
        print(
            f"predictlib build needs the build tooling ({exc}): pip install 'predictlib[build]'",
            file=sys.stderr,
        )
        return 2
    return build_main(arguments)


def _list(args: argparse.Namespace) -> int:
    models = available()
    if not models:
        print("no predictlib models are installed (pip install predictlib-<model>)")
    for name, version in models.items():
        print(f"{name} {version}")
    return 0


def _info(args: argparse.Namespace) -> int:
    model = load(args.model)
    manifest = model.manifest
    if args.json:
        print(json.dumps(_plain(manifest), indent=2, sort_keys=True))
        return 0
    inputs = manifest["inputs"]
    lines = [
        f"{model.name} {model.version} ({model.task})",
        f"  {manifest.get('description', '')}",
        f"  source: {model.source}",
        f"  inputs: {len(inputs['columns'])} columns ({len(inputs['numeric'])} numeric, "
        f"{len(inputs['categorical'])} categorical); missing categories: None / NaN",
    ]
    for column in inputs["columns"]:
        rules = column.get("refused_when", [])
        note = f" - refused when: {'; '.join(r.split(' [')[0] for r in rules)}" if rules else ""
        lines.append(f"    {column['name']} ({column['kind']}){note}")
    outputs = manifest["outputs"]
    if model.task == "classification":
        lines.append(f"  outputs: label and probabilities of {list(model.classes)}")
    else:
        unit = outputs["prediction"].get("unit")
        lines.append(f"  output: prediction{f' ({unit})' if unit else ''}")
    metrics = manifest.get("metrics", {}).get("held_out", {})
    if metrics:
        lines.append("  held-out metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    equivalence = manifest.get("equivalence") or {}
    for part in ("held_out", "generated"):
        if part in equivalence:
            e = equivalence[part]
            lines.append(
                f"  equivalence ({part}): {e['rows']} rows, {e['refused']} refused, "
                f"max abs error {e['max_abs_error']:.3g}, max rel error {e['max_rel_error']:.3g}"
            )
    training = manifest.get("training", {})
    if training:
        lines.append(f"  trained on {training.get('rows')} rows, data sha256 {training.get('data_sha256')}")
    build = manifest.get("build", {})
    if build:
        lines.append("  built with " + ", ".join(f"{k} {v}" for k, v in build.items()))
    print("\n".join(lines))
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise PredictlibError("--batch-size must be at least 1")
    model = load(args.model)
    out: TextIO = sys.stdout if args.output is None else args.output.open("w", newline="", encoding="utf-8")
    refused = 0
    try:
        writer = csv.writer(out)
        writer.writerow(_header(model))
        for start, rows in _batches(args.input, model, args.batch_size):
            for row, result, error in _predict_batch(model, rows):
                if error is not None:
                    refused += 1
                    if args.errors == "fail":
                        print(f"predictlib: row {start + row}: {error}", file=sys.stderr)
                        return 1
                    if args.errors == "skip":
                        continue
                writer.writerow(
                    [start + row, *(_cells(model, result) if error is None else _empty(model)), error or ""]
                )
    finally:
        if out is not sys.stdout:
            out.close()
    if refused:
        print(f"predictlib: {refused} row(s) refused", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- helpers


def _header(model: Model) -> list[str]:
    if model.task == "classification":
        return ["row", "label", *(f"probability_{c}" for c in model.classes), "error"]
    return ["row", "prediction", "error"]


def _empty(model: Model) -> list[str]:
    return [""] * (len(_header(model)) - 2)


def _cells(model: Model, result: Any) -> list[Any]:
    if model.task == "classification":
        label, proba = result
        return [label, *(repr(float(p)) for p in proba)]
    return [repr(float(result))]


def _predict_batch(model: Model, rows: list[dict[str, Any]]) -> Iterator[tuple[int, Any, str | None]]:
    """(row in batch, result, error text) for every row; refused rows do not stop the others."""
    errors: dict[int, str] = {}
    try:
        results = _run(model, rows)
    except InputError as exc:
        for problem in exc.problems:
            key = 0 if problem.row is None else problem.row
            errors.setdefault(key, str(problem))
        keep = [i for i in range(len(rows)) if i not in errors]
        partial = _run(model, [rows[i] for i in keep]) if keep else []
        results = [None] * len(rows)
        for i, result in zip(keep, partial, strict=True):
            results[i] = result
    for i, result in enumerate(results):
        yield i, result, errors.get(i)


def _run(model: Model, rows: list[dict[str, Any]]) -> list[Any]:
    if model.task == "classification":
        return list(zip(model.predict(rows).tolist(), model.predict_proba(rows), strict=True))
    return list(model.predict(rows).tolist())


def _batches(path: Path, model: Model, size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    reader = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".ndjson") else _read_csv(path, model)
    batch: list[dict[str, Any]] = []
    start = 0
    for record in reader:
        batch.append(record)
        if len(batch) == size:
            yield start, batch
            start += size
            batch = []
    if batch:
        yield start, batch


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PredictlibError(f"{path}, line {number}: not valid JSON ({exc})") from None
            yield record


def _read_csv(path: Path, model: Model) -> Iterator[dict[str, Any]]:
    """CSV rows as records: numeric columns as float (missing cells NaN), other cells as text
    (missing cells None), datetime cells parsed from ISO 8601 text. A cell that does not
    parse is left as text, which the model refuses with its usual message."""
    numeric = set(model.manifest["inputs"]["numeric"])
    dates = set(model.manifest["inputs"].get("datetime", []))
    fh: TextIO = (
        io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
        if str(path) == "-"
        else path.open(encoding="utf-8", newline="")
    )
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        for number, cells in enumerate(reader, 2):
            if len(cells) != len(header):
                raise PredictlibError(
                    f"{path}, line {number}: {len(cells)} cells, the header has {len(header)}"
                )
            record: dict[str, Any] = {}
            for name, text in zip(header, cells, strict=True):
                if text in CSV_MISSING:
                    record[name] = math.nan if name in numeric else None
                elif name in numeric:
                    record[name] = _number(text)
                elif name in dates:
                    record[name] = _datetime(text)
                else:
                    record[name] = text
            yield record


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _datetime(text: str) -> Any:
    """ISO 8601 text without a zone (up to nanoseconds) as numpy datetime64, else the text
    (which the model refuses with its usual message)."""
    import numpy as np

    try:
        return np.datetime64(text, "ns")
    except ValueError:
        return text


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
