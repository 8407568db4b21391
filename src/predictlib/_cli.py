"""The ``predictlib`` command: list installed models, show one, predict a file.

    predictlib list
    predictlib info MODEL [--json]
    predictlib predict MODEL INPUT.csv|INPUT.jsonl [-o OUT.csv] [--batch-size N] [--errors report|skip|fail]

MODEL is an installed model's name, an artifact folder or a model wheel file.
Files are streamed in batches; CSV is read with the standard library (no pandas).

``predict`` loses nothing: every row the model predicts is written, every row it
refuses and every line that cannot be read as a row (a ragged CSV row, a line that is
not JSON or not UTF-8, a field over :data:`MAX_FIELD_CHARS` characters) is reported
with its line number, and ``-o`` is written to a temporary file renamed over the
output at the end (an existing file is never truncated by a failed run). A cell
becomes what the Python API takes (:func:`_number`, :func:`_datetime`): exactly the
values the API accepts are accepted. Exit status: :data:`EXIT_STATUS`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as _dt
import io
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from . import __version__
from ._cli_monitor import add_monitor_commands
from ._errors import PredictlibError
from ._model import Model, available, load
from ._parquet import is_parquet, parquet_records

#: cells read as missing in CSV files: pandas.read_csv's default NA strings, so a CSV
#: means the same to the CLI as to a user of the original pipeline reading it with pandas
CSV_MISSING = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip
#: the longest CSV field read (longer: the line is reported, the run goes on)
MAX_FIELD_CHARS = 16 << 20
#: the longest JSON Lines line read
MAX_LINE_BYTES = 64 << 20
#: the most rows per batch
MAX_BATCH = 1_000_000
#: ``predictlib predict``'s exit status
EXIT_STATUS = {
    0: "every line was read; every row is written, predicted or with the reason it was refused "
    "(--errors skip leaves refused rows out)",
    1: "--errors fail: stopped at the first refused or unreadable row; the rows before it are written",
    2: "nothing was done: bad arguments, a model that does not load, an input that cannot be opened "
    "or whose header cannot be read, an output that cannot be written (an existing -o file is left as it was)",
    3: "done, but some lines could not be read as rows: each is reported (error column, stderr) with "
    "its line number, every other row is written",
}


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
        description=(
            "Show a model's version, task, sha256, metrics, inputs (with the reasons each column's "
            "values may be refused, once each, only those that can apply to the column's kind), "
            "outputs and build versions."
        ),
    )
    p.add_argument("model", help="installed model name, artifact folder or model wheel")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(run=_info)

    statuses = "; ".join(f"{code}: {text}" for code, text in EXIT_STATUS.items())
    p = commands.add_parser(
        "predict",
        help="predict the rows of a CSV or JSON Lines file",
        description=(
            "Predict every row of INPUT (.csv with a header row, or .jsonl with one JSON object per "
            "line) and write a CSV: the input's row number, the prediction (regression) or the label "
            "and one probability column per class (classification), and an error column (the line "
            "number and the reason of a refused or unreadable row). CSV cells "
            f"in {sorted(CSV_MISSING)} are missing values, as pandas.read_csv reads them; numbers "
            "are read as pandas.read_csv reads them (ASCII digits, no '_'); datetime cells in ISO "
            "8601 (YYYY-MM-DD[THH:MM[:SS[.fffffffff]]][Z|+HH:MM]). A byte-order mark is skipped, "
            "blank lines too. -o is written to a temporary file renamed over it at the end. "
            f"Exit status: {statuses}."
        ),
    )
    p.add_argument("model", help="installed model name, artifact folder or model wheel")
    p.add_argument(
        "input", type=Path, help="input file: .csv, .jsonl or .parquet (with pyarrow) ('-' for CSV on stdin)"
    )
    p.add_argument("-o", "--output", type=Path, help="output CSV (default: stdout)")
    p.add_argument("--batch-size", type=int, default=10_000, help="rows per batch (default: 10000)")
    p.add_argument(
        "--errors",
        choices=("report", "skip", "fail"),
        default="report",
        help="rows the model refuses and lines that cannot be read: report them in the error column "
        "(default), skip them (reported on stderr), or stop at the first one (exit 1)",
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
    kinds = {"number": "numeric", "category": "categorical", "datetime": "datetime"}
    counts = ", ".join(
        f"{sum(1 for c in inputs['columns'] if c['kind'] == kind)} {word}"
        for kind, word in kinds.items()
        if any(c["kind"] == kind for c in inputs["columns"])
    )
    lines = [
        f"{model.name} {model.version} ({model.task})",
        f"  {manifest.get('description', '')}",
        f"  source: {model.source}",
        f"  sha256 (manifest.json, for load(..., sha256=)): {model.sha256}",
        f"  inputs: {len(inputs['columns'])} columns ({counts}); missing values: None / NaN",
    ]
    reasons = model.refusal_reasons()
    for column in inputs["columns"]:
        found = reasons.get(column["name"], ())
        note = f" - refused when: {'; '.join(found)}" if found else ""
        lines.append(f"    {column['name']} ({column['kind']}){note}")
    computed = [(c, r) for c, r in reasons.items() if c not in model.columns and r]
    if computed:
        lines.append("  columns computed inside the pipeline:")
        lines += [f"    {column} - refused when: {'; '.join(found)}" for column, found in computed]
    outputs = manifest["outputs"]
    if model.task == "classification":
        lines.append(f"  outputs: label and probabilities of {list(model.classes)}")
    else:
        unit = outputs["prediction"].get("unit")
        lines.append(f"  output: prediction{f' ({unit})' if unit else ''}")
    # what describes how the model was made is shown as found (the runtime checks only
    # what it reads: these members may be missing or of other types)
    metrics = _section(manifest, "metrics").get("held_out")
    if isinstance(metrics, Mapping) and metrics:
        lines.append("  held-out metrics: " + ", ".join(f"{k} {_g(v)}" for k, v in metrics.items()))
    equivalence = _section(manifest, "equivalence")
    for part in ("held_out", "generated"):
        e = equivalence.get(part)
        if isinstance(e, Mapping):
            lines.append(
                f"  equivalence ({part}): {e.get('rows')} rows, {e.get('refused')} refused, "
                f"max abs error {_g(e.get('max_abs_error'))}, max rel error {_g(e.get('max_rel_error'))}"
            )
    training = _section(manifest, "training")
    if training:
        lines.append(f"  trained on {training.get('rows')} rows, data sha256 {training.get('data_sha256')}")
    build = _section(manifest, "build")
    if build:
        lines.append("  built with " + ", ".join(f"{k} {v}" for k, v in build.items()))
    print("\n".join(lines))
    return 0


@dataclasses.dataclass(frozen=True)
class _Line:
    """One row of the input: its first line number, and its record or why it cannot be read."""

    line: int
    record: dict[str, Any] | None
    error: str | None = None


def _predict(args: argparse.Namespace) -> int:
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise PredictlibError(f"--batch-size must be from 1 to {MAX_BATCH:,}")
    model = load(args.model)
    lines = _lines(args.input, model)  # opens INPUT and reads its header: before any output exists
    counts = {"written": 0, "refused": 0, "unreadable": 0}
    with _Output(args.output) as out:
        writer = csv.writer(out.file)
        writer.writerow(_header(model))
        row = 0
        for batch in _chunks(lines, args.batch_size):
            for item, result, error in _predict_lines(model, batch):
                if error is not None:
                    counts["unreadable" if item.record is None else "refused"] += 1
                    where = f"line {item.line}"
                    if args.errors == "fail":
                        print(f"predictlib: row {row} ({where}): {error}", file=sys.stderr)
                        out.commit()
                        return 1
                    if args.errors == "skip":
                        print(f"predictlib: row {row} ({where}) skipped: {error}", file=sys.stderr)
                        row += 1
                        continue
                    writer.writerow([row, *_empty(model), f"{where}: {error}"])
                else:
                    writer.writerow([row, *_cells(model, result), ""])
                    counts["written"] += 1
                row += 1
        out.commit()
    if counts["refused"] or counts["unreadable"]:
        print(
            f"predictlib: {counts['refused']} row(s) refused, {counts['unreadable']} line(s) unreadable, "
            f"{counts['written']} row(s) predicted",
            file=sys.stderr,
        )
    return 3 if counts["unreadable"] else 0


class _Output:
    """The output CSV: stdout, or a temporary file beside ``path`` renamed over it by
    :meth:`commit` (removed if the run stops before: ``path`` stays as it was)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.temporary: str | None = None
        self.file: TextIO = sys.stdout

    def __enter__(self) -> _Output:
        if self.path is None:
            return self
        folder = self.path.parent
        try:
            fd, self.temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
            self.file = open(fd, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise PredictlibError(f"cannot write {self.path} ({exc})") from None
        return self

    def commit(self) -> None:
        if self.path is None or self.temporary is None:
            self.file.flush()
            return
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            mode = _new_file_mode(self.path)
            os.chmod(self.temporary, mode)
            self.file.close()
            os.replace(self.temporary, self.path)
        except OSError as exc:
            raise PredictlibError(f"cannot write {self.path} ({exc})") from None
        self.temporary = None

    def __exit__(self, *exc: object) -> None:
        if self.temporary is not None:  # not committed: the run stopped
            self.file.close()
            with contextlib.suppress(OSError):
                os.unlink(self.temporary)


def _new_file_mode(path: Path) -> int:
    """The output's permissions: those of the file replaced, else the umask's default."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


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


def _chunks(lines: Iterator[_Line], size: int) -> Iterator[list[_Line]]:
    batch: list[_Line] = []
    for item in lines:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _predict_lines(model: Model, batch: list[_Line]) -> Iterator[tuple[_Line, Any, str | None]]:
    """(line, result, error text) for every line of ``batch``, in order: unreadable lines
    and refused rows do not stop the others."""
    readable = [item for item in batch if item.record is not None]
    results, errors = _predict_rows(model, [item.record for item in readable if item.record is not None])
    found = iter(zip(results, errors, strict=True))
    for item in batch:
        if item.record is None:
            yield item, None, item.error
        else:
            result, error = next(found)
            yield item, result, error


def _predict_rows(model: Model, rows: list[dict[str, Any]]) -> tuple[list[Any], list[str | None]]:
    """The result and the error text (None: predicted) of every row
    (:meth:`Model.predict_rows`: refused rows do not stop the others)."""
    if not rows:
        return [], []
    found = model.predict_rows(rows)
    errors: list[str | None] = [None] * len(rows)
    for problem in found.problems:
        row = problem.row or 0
        text = str(dataclasses.replace(problem, row=None))
        errors[row] = text if errors[row] is None else f"{errors[row]}; {text}"
    if found.probabilities is None:
        return found.predictions.tolist(), errors
    return list(zip(found.predictions.tolist(), found.probabilities, strict=True)), errors


def _batches(path: Path, model: Model, size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(number of the first row, records) by batches of ``size`` readable rows (for the
    commands that read files; unreadable lines are left out)."""
    start = 0
    for batch in _chunks((item for item in _lines(path, model) if item.record is not None), size):
        yield start, [item.record for item in batch if item.record is not None]
        start += len(batch)


def _lines(path: Path, model: Model) -> Iterator[_Line]:
    """The rows of INPUT. The file is opened (and a CSV header read) now: a missing or
    unreadable input is an error before anything is written."""
    if is_parquet(path):  # by record batches with pyarrow (_parquet.py); "line" is the row's number
        return (_Line(number, record) for number, record in parquet_records(path, model.columns))
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(_open_binary(path), path)
    return _read_csv(_open_binary(path), path, model)


def _open_binary(path: Path) -> IO[bytes]:
    if str(path) == "-":
        return sys.stdin.buffer
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise PredictlibError(f"cannot read {path} ({exc.strerror or exc})") from None
    if not path.is_file():
        fh.close()
        raise PredictlibError(f"cannot read {path} (not a regular file)")
    return fh


# ---------------------------------------------------------------------- JSON Lines

#: Python's limit of digits for int() of a text (sys.get_int_max_str_digits)
_INT_DIGITS = 4300


def _json_int(text: str) -> int:
    return _LongInt(text) if len(text) > _INT_DIGITS else int(text)


def _read_jsonl(fh: IO[bytes], path: Path) -> Iterator[_Line]:
    with fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # the rest of the line
                    raw = fh.readline(1 << 20)
                yield _Line(number, None, f"longer than {MAX_LINE_BYTES:,} bytes")
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield _Line(number, None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at {exc.start + 1})")
                continue
            try:
                record = json.loads(text, parse_int=_json_int)
            except RecursionError:
                yield _Line(number, None, "not a record: JSON nested too deeply")
                continue
            except ValueError as exc:
                yield _Line(number, None, f"not valid JSON ({str(exc)[:200]})")
                continue
            if not isinstance(record, dict):
                yield _Line(number, None, f"not a JSON object (a record), got {type(record).__name__}")
                continue
            yield _Line(number, record)


# ------------------------------------------------------------------------------ CSV

_SURROGATE = re.compile("[\udc80-\udcff]")


def _read_csv(fh: IO[bytes], path: Path, model: Model) -> Iterator[_Line]:
    """CSV rows as records: numeric columns as numbers (:func:`_number`), datetime
    columns as datetimes (:func:`_datetime`), other cells as text; missing cells
    (:data:`CSV_MISSING`) NaN or None. A cell that does not parse stays text, which
    the model refuses with its usual message. The header is read before this returns."""
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        reader = csv.reader(text, strict=True)
        header: list[str] = []
        while not header:  # blank lines before the header are skipped
            try:
                header = next(reader)
            except StopIteration:  # an empty file: no rows
                break
            except csv.Error as exc:
                raise PredictlibError(
                    f"{path}, line {reader.line_num}: cannot read the header ({exc})"
                ) from None
        if any(_SURROGATE.search(name) for name in header):
            raise PredictlibError(f"{path}: the header is not valid UTF-8")
    except BaseException:
        csv.field_size_limit(limit)
        text.close()
        raise
    return _csv_rows(reader, text, header, limit, path, model)


def _csv_rows(
    reader: Any, text: TextIO, header: list[str], limit: int, path: Path, model: Model
) -> Iterator[_Line]:
    inputs = model.manifest["inputs"]
    numeric = set(inputs["numeric"])
    dates = set(inputs.get("datetime", []))
    repeated = sorted({n for n in header if header.count(n) > 1 and n in set(model.columns)})
    try:
        if repeated:
            raise PredictlibError(f"{path}: the header names column(s) {repeated} more than once")
        end = reader.line_num
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                yield _Line(start, None, f"not a CSV row ({exc})")
                continue
            end = reader.line_num
            if not cells:  # a blank line
                continue
            if len(cells) != len(header):
                yield _Line(start, None, f"{len(cells)} cells, the header has {len(header)}")
                continue
            if any(not cell.isascii() and _SURROGATE.search(cell) for cell in cells):
                yield _Line(start, None, "not valid UTF-8")
                continue
            record: dict[str, Any] = {}
            for name, cell in zip(header, cells, strict=True):
                if cell in CSV_MISSING:
                    record[name] = math.nan if name in numeric else None
                elif name in numeric:
                    record[name] = _number(cell)
                elif name in dates:
                    record[name] = _datetime(cell)
                else:
                    record[name] = cell
            yield _Line(start, record)
    finally:
        csv.field_size_limit(limit)
        text.close()


_SPACE = "[ \t\r\n\v\f]*"  # what pandas.read_csv strips around a number
_INTEGER = re.compile(rf"{_SPACE}[+-]?[0-9]+{_SPACE}", re.ASCII)
_FLOAT = re.compile(
    rf"{_SPACE}[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity){_SPACE}",
    re.ASCII | re.IGNORECASE,
)


def _number(text: str) -> Any:
    """A numeric cell as pandas.read_csv reads it: an int or a float written with ASCII
    digits (surrounding ASCII spaces allowed; ``inf`` / ``infinity`` in any case; a
    float beyond float64 is infinite, as in pandas), else the text itself (``1_000``,
    Arabic-Indic or full-width digits, ``43\\xa0``, ``0x10``), which the model refuses as
    text in a numeric column."""
    if _INTEGER.fullmatch(text):
        digits = text.strip(" \t\r\n\v\f").lstrip("+-")
        return _LongInt(text.strip(" \t\r\n\v\f")) if len(digits) > _INT_DIGITS else int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


class _LongInt(int):
    """An integer written with more digits than Python's int() reads (4,300): beyond
    float64 whatever its digits, so it stands as ±10**400, which the model refuses as
    it refuses any int beyond float64; its repr tells its length."""

    digits: int

    def __new__(cls, text: str) -> _LongInt:
        self = super().__new__(cls, -(10**400) if text.startswith("-") else 10**400)
        self.digits = len(text.lstrip("+-"))
        return self

    def __repr__(self) -> str:
        return f"<{'negative ' if self < 0 else ''}int of {self.digits:,} digits>"


_LongInt.__name__ = _LongInt.__qualname__ = "int"  # an int to the model's messages

_ISO_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?P<fraction>\.[0-9]{1,9})?)?))?"
    r"(?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII,
)


def _datetime(text: str) -> Any:
    """An ISO 8601 cell (``YYYY-MM-DD[THH:MM[:SS[.fffffffff]]]``) as numpy datetime64
    (its own unit: a date outside the nanosecond range stays outside, and is refused);
    with a zone (``Z``, ``+HH:MM``), a timezone-aware datetime, which the model refuses
    as it refuses any aware datetime; anything else (``20070301``, ``now``) stays text,
    refused as text in a datetime column."""
    import numpy as np

    found = _ISO_DATETIME.fullmatch(text.strip(" \t\r\n\v\f"))
    if found is None:
        return text
    naive = found["date"] + (f"T{found['time']}" if found["time"] else "")
    try:
        value = np.datetime64(naive)
    except ValueError:  # 2007-02-30, 25:00...
        return text
    zone = found["zone"]
    if zone is None:
        return value
    seconds = naive[:19] if found["time"] and len(found["time"]) >= 8 else naive
    offset = "+00:00" if zone == "Z" else f"{zone[:3]}:{zone[-2:] if len(zone) > 3 else '00'}"
    try:
        aware = _dt.datetime.fromisoformat(seconds + offset)
    except ValueError:  # a year Python's datetime cannot hold
        return text
    return aware


def _section(manifest: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = manifest.get(key)
    return section if isinstance(section, Mapping) else {}


def _g(value: Any) -> str:
    return f"{value:.4g}" if type(value) in (int, float) else str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
