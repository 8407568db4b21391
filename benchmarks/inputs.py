"""Rows per second by input kind, for one model, against the targets.

    python -m benchmarks.inputs [--rows 300000] [--artifact artifacts/house_prices] [--quick]

The same rows (house_prices' training data, tiled) given to ``Model.predict`` as every
input kind the runtime takes; each figure is ``rows / best time`` of ``--repeats``
calls (after one warm-up call), measured round-robin so that a change in the
machine's load touches every kind alike. The fastest path is pandas 3's ``str``
columns (pyarrow-backed); targets (issue 18): arrow, polars and pandas ``object``
columns at least 0.8x of it, column mappings and lists of records at least 0.3x.

Writes ``benchmarks/results/inputs.json`` and ``inputs.md``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "house_prices"
REFERENCE = "pandas, str columns"
ROWS = 300_000
#: --quick: still over one slice of a large input (the runtime's ADAPT_CHUNK, 131,072 rows)
QUICK_ROWS = 140_000
#: kind -> (target share of the reference's rows/s, what the kind is)
KINDS: dict[str, tuple[float | None, str]] = {
    REFERENCE: (None, "pandas 3's default text dtype (pyarrow-backed): the fastest path"),
    "pandas, object columns (read_csv)": (0.8, "pandas 2's default: one str object per distinct text"),
    "pandas, object columns (astype)": (0.8, "df.astype(object): one str object per cell"),
    "pyarrow Table": (0.8, "pa.Table.from_pandas, string columns"),
    "pyarrow Table, 16 chunks": (0.8, "the same in 16 chunks (as pq.read_table gives)"),
    "pyarrow Table, large_string": (0.8, "large_string columns"),
    "pyarrow Table, dictionary": (0.8, "dictionary-encoded text columns"),
    "pyarrow RecordBatch": (0.8, "one RecordBatch"),
    "Parquet via pq.read_table": (0.8, "the table pq.read_table gives (16 row groups), reading not timed"),
    "polars DataFrame": (0.8, "pl.from_pandas"),
    "columns of lists": (0.3, "{column: list}"),
    "columns of numpy arrays": (0.3, "{column: ndarray} (object arrays for text)"),
    "list of records": (0.3, "[{column: value}]"),
}


def inputs(rows: int, columns: list[str], work: Path) -> dict[str, Callable[[], Any]]:
    """kind -> a function returning that kind of input (built once, lazily)."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = ROOT / "models" / MODEL / "data" / "train.csv"
    base = pd.read_csv(source)[columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pd.option_context("future.infer_string", False):
            base_object = pd.read_csv(source)[columns]
    tiles = rows // len(base) + 1
    frame = pd.concat([base] * tiles, ignore_index=True).iloc[:rows]
    objects = pd.concat([base_object] * tiles, ignore_index=True).iloc[:rows]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    parquet = work / "inputs.parquet"
    pq.write_table(table, parquet, row_group_size=max(1, rows // 16))

    def recast(kind: str) -> pa.Table:
        out = []
        for column in table.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column = (
                    column.dictionary_encode() if kind == "dictionary" else column.cast(pa.large_string())
                )
            out.append(column)
        return pa.table(out, names=table.column_names)

    text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    chunk = -(-rows // 16)
    return {
        REFERENCE: lambda: frame,
        "pandas, object columns (read_csv)": lambda: objects,
        "pandas, object columns (astype)": lambda: frame.astype(dict.fromkeys(text, object)),
        "pyarrow Table": lambda: table,
        "pyarrow Table, 16 chunks": lambda: pa.concat_tables(
            [table.slice(a, chunk) for a in range(0, rows, chunk)]
        ),
        "pyarrow Table, large_string": lambda: recast("large_string"),
        "pyarrow Table, dictionary": lambda: recast("dictionary"),
        "pyarrow RecordBatch": lambda: table.combine_chunks().to_batches(max_chunksize=rows)[0],
        "Parquet via pq.read_table": lambda: pq.read_table(parquet),
        "polars DataFrame": lambda: pl.from_pandas(frame),
        "columns of lists": lambda: {c: frame[c].tolist() for c in columns},
        "columns of numpy arrays": lambda: {c: objects[c].to_numpy() for c in columns},
        "list of records": lambda: objects.astype(object).where(objects.notna(), None).to_dict("records"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, help=f"rows per call (default: {ROWS:,}; --quick: {QUICK_ROWS:,})"
    )
    parser.add_argument("--repeats", type=int, help="calls per kind (default: 5; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer rows and calls")
    parser.add_argument("--artifact", type=Path, help="house_prices artifact folder (default: built here)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = QUICK_ROWS if args.quick else ROWS
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5

    import tempfile

    import predictlib

    work = Path(tempfile.mkdtemp(prefix="predictlib-bench-inputs-"))
    if args.artifact is None:
        from predictlib.build.project import build_project

        built = build_project(
            ROOT / "models" / MODEL, dist=work / "dist", artifacts=work / "artifacts", log=None
        )
        artifact = built.folder
    else:
        artifact = args.artifact
    model = predictlib.load(artifact)
    makers = inputs(args.rows, model.columns, work)
    data = {kind: make() for kind, make in makers.items()}
    # the inputs held for the whole run (tens of millions of list items and dicts) out of
    # the garbage collector's reach: a full collection scanning them would land on
    # whichever kind happens to be running, not be a cost of that kind
    gc.collect()
    gc.freeze()

    def call(kind: str) -> None:
        model.predict(data[kind])

    best = {kind: float("inf") for kind in data}
    for kind in data:  # warm-up (first calls, pools, pyarrow imports)
        call(kind)
    loads = []
    for _ in range(args.repeats):
        for kind in data:
            start = time.perf_counter()
            call(kind)
            best[kind] = min(best[kind], time.perf_counter() - start)
        loads.append(os.getloadavg()[0])
    reference = args.rows / best[REFERENCE]
    results = {}
    for kind, seconds in best.items():
        target, what = KINDS[kind]
        rate = args.rows / seconds
        share = rate / reference
        results[kind] = {
            "rows_per_s": round(rate, 1),
            "share_of_fastest": round(share, 3),
            "target_share": target,
            "target_met": None if target is None else share >= target,
            "what": what,
        }
        print(f"{kind:38s} {rate:>12,.0f} rows/s  {share:5.2f}x  target {target}", flush=True)
    import numpy
    import onnxruntime
    import pandas
    import polars
    import pyarrow

    report = {
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {
            m.__name__: m.__version__ for m in (predictlib, numpy, onnxruntime, pandas, pyarrow, polars)
        },
        "model": MODEL,
        "rows": args.rows,
        "repeats": args.repeats,
        "load_average": [round(min(loads), 2), round(max(loads), 2)],
        "reference": REFERENCE,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "inputs.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "inputs.md").write_text(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Rows per second by input kind",
        "",
        f"Generated by `python -m benchmarks.inputs` on {report['measured']}: {report['machine']}; "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". Model {report['model']} (79 columns), {report['rows']:,} rows, `Model.predict` on 2 "
        f"threads, best of {report['repeats']} calls per kind measured round-robin; load average "
        f"{report['load_average'][0]} to {report['load_average'][1]} on {os.cpu_count()} cores (a shared "
        "machine: the shares matter more than the absolute figures).",
        "",
        "| input | rows/s | share of the fastest path | target | result |",
        "|---|---|---|---|---|",
    ]
    for kind, r in report["results"].items():
        target = "" if r["target_share"] is None else f">= {r['target_share']}x"
        result = "" if r["target_met"] is None else ("met" if r["target_met"] else "missed")
        lines.append(
            f"| {kind} ({r['what']}) | {r['rows_per_s']:,.0f} | {r['share_of_fastest']:.2f}x | {target} | {result} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
