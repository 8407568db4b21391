"""``predictlib drift`` and ``predictlib card`` (registered by :mod:`predictlib._cli`).

predictlib drift MODEL INPUT.csv|.jsonl|.parquet [--json] [--threshold NAME=VALUE ...]
predictlib card MODEL -o card.html [--ort-web DIR | --ort-url URL | --no-try-it] [--benchmarks FILE]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._card import OrtWeb, find_ort_web, write_card
from ._drift import Thresholds
from ._errors import PredictlibError
from ._model import Model, load

#: reads an input file by batches of records: (path, model, batch size) -> (first row, records)
Batches = Callable[[Path, Model, int], Iterator[tuple[int, list[dict[str, Any]]]]]
#: the benchmark results the card shows when --benchmarks is not given and the file exists
DEFAULT_BENCHMARKS = Path("benchmarks/results/latest.json")
PARQUET = (".parquet", ".pq")


def add_monitor_commands(commands: Any, batches: Batches) -> None:
    """Add ``drift`` and ``card`` to the CLI's subcommands; ``batches``: the CLI's reader
    of CSV and JSON Lines files (the one ``predictlib predict`` uses)."""
    p = commands.add_parser(
        "drift",
        help="how a data file differs from the model's training data",
        description=(
            "Compare INPUT (.csv with a header row, .jsonl, or .parquet with pyarrow installed) with the "
            "training profile the model's artifact carries: per input column the PSI against the training "
            "histogram, the share of unseen categories, of values outside the training range, of missing "
            "values and of values of a wrong type, and the drift of the model's predictions; a table, most "
            "drifted column first, or JSON. Exit status 1 when a column or the predictions are in alert, "
            "0 otherwise (2 on errors). Thresholds: docs/monitoring.md."
        ),
    )
    p.add_argument("model", help="installed model name, artifact folder or model wheel")
    p.add_argument("input", type=Path, help="input file: .csv, .jsonl or .parquet ('-' for CSV on stdin)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override a threshold (repeatable): {', '.join(Thresholds().as_dict())}",
    )
    p.add_argument("--batch-size", type=int, default=10_000, help="rows read at a time (default: 10000)")
    p.set_defaults(run=lambda args: drift_command(args, batches))

    p = commands.add_parser(
        "card",
        help="write a model card: one self-contained HTML page with a try-it form",
        description=(
            "Write the model card: what the model predicts, versions, inputs and what each refuses, "
            "held-out metrics, equivalence report, benchmark figures, the training profile as charts, and "
            "a form that predicts in the page with onnxruntime-web (wasm), embedded with the model."
        ),
    )
    p.add_argument("model", help="installed model name, artifact folder or model wheel")
    p.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--ort-web",
        type=Path,
        metavar="DIR",
        help="onnxruntime-web's npm package folder (or its dist/) to embed; default: $PREDICTLIB_ORT_WEB, "
        "./node_modules/onnxruntime-web, ./embed/node/node_modules/onnxruntime-web",
    )
    where.add_argument(
        "--ort-url",
        metavar="URL",
        help="load onnxruntime-web from this URL (its dist/ folder) instead of embedding it: a smaller "
        "page that needs the URL reachable",
    )
    where.add_argument("--no-try-it", action="store_true", help="no try-it form (no onnxruntime-web needed)")
    p.add_argument(
        "--benchmarks",
        type=Path,
        help=f"benchmark results of `nox -s bench` to show (default: {DEFAULT_BENCHMARKS} when it exists)",
    )
    p.set_defaults(run=card_command)


def _thresholds(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise PredictlibError(f"--threshold {pair!r}: give NAME=NUMBER, e.g. psi_alert=0.3") from None
    Thresholds.of(out)  # names and values checked before reading the data
    return out


def drift_command(args: argparse.Namespace, batches: Batches) -> int:
    if args.batch_size < 1:
        raise PredictlibError("--batch-size must be at least 1")
    thresholds = _thresholds(args.threshold)
    path: Path = args.input
    if str(path) != "-" and not path.is_file():
        raise PredictlibError(f"{path}: no such file")
    model = load(args.model)
    monitor = model.monitor()
    if path.suffix.lower() in PARQUET:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise PredictlibError("reading Parquet needs pyarrow: pip install pyarrow") from None
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=args.batch_size):
                monitor.observe(batch)
        except OSError as exc:
            raise PredictlibError(f"{path}: cannot read it as Parquet ({exc})") from None
    else:
        for _, rows in batches(path, model, args.batch_size):
            monitor.observe(rows)
    report = monitor.report(thresholds)
    print(report.to_json() if args.json else report.table())
    return 1 if report.status == "alert" else 0


def card_command(args: argparse.Namespace) -> int:
    model = load(args.model)
    ort: OrtWeb | None
    if args.no_try_it:
        ort = None
    elif args.ort_url:
        ort = OrtWeb(version="(from " + args.ort_url + ")", url=args.ort_url)
    else:
        ort = find_ort_web(args.ort_web)
    benchmarks = args.benchmarks
    if benchmarks is None and DEFAULT_BENCHMARKS.is_file():
        benchmarks = DEFAULT_BENCHMARKS
    out = write_card(model, args.output, ort=ort, benchmarks=benchmarks)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.1f} MB)", file=sys.stderr)
    return 0
