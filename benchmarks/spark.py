"""predictlib.spark.transform on Spark local[2], beside Spark's own floor.

    python -m benchmarks.spark [--rows 10000000] [--artifact artifacts/house_prices]   (nox -s bench_spark)

Over ``--rows`` rows of Parquet (house_prices' training data, 1,460 rows tiled,
written by pyarrow in row groups of 100,000 rows), on ``local[2]`` with Spark's
default Arrow batches (``spark.sql.execution.arrow.maxRecordsPerBatch`` = 10,000):

* ``floor``: a no-op scalar Arrow UDF over the model's 79 input columns returning one
  column (zeros), the DataFrame written to Spark's ``noop`` sink: what Spark costs to
  read the rows and move them to Python and back, with no model;
* ``transform``: ``predictlib.spark.transform`` (the outputs and ``predictlib_error``),
  written to the same sink; target: at least 80% of the floor's rows/s;
* ``transform_map_in_arrow``: the same on the ``mapInArrow`` path (pyspark < 4.1),
  and ``predict_batch_udf``: ``pyspark.ml.functions.predict_batch_udf`` calling
  ``Model.predict_rows`` on the numpy columns it hands over (pandas in between), both
  on ``--compare-rows`` rows: the candidates measured against the scalar Arrow UDF;
* ``in_process``: the same Parquet file read by pyarrow by row groups and scored by
  ``Model.predict_rows`` on 2 threads in one process, and ``in_process_predict_only``
  its scoring alone; Spark's overhead per row = 1/transform - 1/in_process;
* ``original_pandas_udf``: the original scikit-learn pipeline in a pandas UDF, on
  ``--original-rows`` rows, extrapolated (rows/s are per row: marked as such).

Writes ``benchmarks/results/spark.json`` and ``spark.md``. Measurements run one
after the other on a shared machine: the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "house_prices"
TARGET_SHARE_OF_FLOOR = 0.8


def write_parquet(path: Path, rows: int) -> None:
    """``rows`` rows of house_prices' training data, tiled, in row groups of 100,000."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pd.read_csv(ROOT / "models" / MODEL / "data" / "train.csv")
    tile = pa.Table.from_pandas(pd.concat([data] * 69, ignore_index=True), preserve_index=False)  # 100,740
    group = 100_000
    block = tile.slice(0, group)
    with pq.ParquetWriter(path, block.schema) as writer:
        for start in range(0, rows, group):
            writer.write_table(block.slice(0, min(group, rows - start)), row_group_size=group)


def spark_session(master: str) -> Any:
    import pyspark
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_HOME", str(Path(pyspark.__file__).parent))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = (
        SparkSession.builder.master(master)
        .appName("predictlib-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.files.maxPartitionBytes", str(8 << 20))
        .config("spark.python.worker.reuse", "true")
    )
    if os.environ.get("PYTHONPATH"):
        builder = builder.config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def timed(df: Any, rows: int) -> dict[str, float]:
    """Write ``df`` to Spark's noop sink (every row computed, nothing stored)."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - start
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1),
        "load_average": round(max(load_before, os.getloadavg()[0]), 2),
    }


def noop_udf(columns: list[str]) -> Any:
    import numpy as np
    import pyarrow as pa
    from pyspark.sql.pandas.functions import ArrowUDFType, arrow_udf

    def noop(batches: Any) -> Any:
        for arrays in batches:
            yield pa.array(np.zeros(len(arrays[0])))

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return arrow_udf(noop, "double", ArrowUDFType.SCALAR_ITER)


def batch_udf(artifact: str, columns: list[str]) -> Any:
    """predict_batch_udf: pandas -> numpy columns -> Model.predict_rows (the candidate
    the issue names beside mapInArrow)."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import DoubleType

    def make_predict() -> Any:
        import predictlib

        model = predictlib.load(artifact, batch_threads=1)

        def predict(*arrays: Any) -> Any:
            return model.predict_rows(dict(zip(columns, arrays, strict=True))).predictions

        # predict_batch_udf counts the function's parameters: one per input column
        kind = inspect.Parameter.POSITIONAL_ONLY
        predict.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(f"c{k}", kind) for k in range(len(columns))]
        )
        return predict

    return predict_batch_udf(make_predict, return_type=DoubleType(), batch_size=10_000)


def original_udf(pipeline: Any, columns: list[str]) -> Any:
    import warnings

    import pandas as pd
    from pyspark.sql.functions import PandasUDFType, pandas_udf

    def original(*series: pd.Series) -> pd.Series:
        frame = pd.concat(series, axis=1, keys=columns)
        return pd.Series(pipeline.predict(frame), dtype="float64")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pandas_udf(original, "double", PandasUDFType.SCALAR)


def in_process(artifact: str, path: Path, rows: int) -> tuple[dict[str, float], dict[str, float]]:
    """Read the Parquet file by row groups with pyarrow and score it on 2 threads."""
    import pyarrow.parquet as pq

    import predictlib

    model = predictlib.load(artifact, batch_threads=2)
    file = pq.ParquetFile(path)
    scoring = 0.0
    start = time.perf_counter()
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=model.columns)
        t = time.perf_counter()
        found = model.predict_rows(table)
        scoring += time.perf_counter() - t
        assert not found.refused.any()
    total = time.perf_counter() - start
    return (
        {"rows": rows, "seconds": round(total, 3), "rows_per_s": round(rows / total, 1)},
        {"rows": rows, "seconds": round(scoring, 3), "rows_per_s": round(rows / scoring, 1)},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--compare-rows", type=int, default=2_000_000)
    parser.add_argument("--original-rows", type=int, default=200_000)
    parser.add_argument("--artifact", type=Path, help="house_prices artifact folder (default: built here)")
    parser.add_argument("--work", type=Path, help="folder for the Parquet files (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    import predictlib
    import predictlib.spark
    from predictlib.build.project import load_project, train

    work = args.work or Path(tempfile.mkdtemp(prefix="predictlib-bench-spark-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    project = load_project(ROOT / "models" / MODEL)
    trained = train(project)
    if args.artifact is None:
        from predictlib.build.project import build_project

        built = build_project(project, dist=work / "dist", artifacts=work / "artifacts", log=None)
        artifact = str(built.folder)
    else:
        artifact = str(args.artifact.resolve())
    model = predictlib.load(artifact)
    columns = model.columns

    files = {}
    for rows in sorted({args.rows, args.compare_rows, args.original_rows}):
        files[rows] = work / f"houses-{rows}.parquet"
        if not files[rows].exists():
            write_parquet(files[rows], rows)
            print(f"wrote {rows:,} rows to {files[rows]}", flush=True)

    spark = spark_session("local[2]")
    results: dict[str, Any] = {}

    def read(rows: int) -> Any:
        return spark.read.parquet(str(files[rows]))

    def quoted(name: str) -> Any:
        return F.col("`" + name + "`")

    def measure(name: str, df: Any, rows: int) -> None:
        results[name] = timed(df, rows)
        print(f"{name:28s} {results[name]['rows_per_s']:>12,.0f} rows/s  {results[name]}", flush=True)

    # warm-up: start the Python workers, load the model in them
    measure("warm_up", predictlib.spark.transform(read(args.original_rows), artifact), args.original_rows)
    noop = noop_udf(columns)
    measure("floor", read(args.rows).withColumn("x", noop(*[quoted(c) for c in columns])), args.rows)
    measure("transform", predictlib.spark.transform(read(args.rows), artifact), args.rows)
    predictlib_spark: Any = predictlib.spark
    has_arrow_udf = predictlib_spark._has_arrow_udf
    predictlib_spark._has_arrow_udf = lambda: False
    try:
        measure(
            "transform_map_in_arrow",
            predictlib.spark.transform(read(args.compare_rows), artifact),
            args.compare_rows,
        )
    finally:
        predictlib_spark._has_arrow_udf = has_arrow_udf
    measure(
        "floor_compare_rows",
        read(args.compare_rows).withColumn("x", noop(*[quoted(c) for c in columns])),
        args.compare_rows,
    )
    predict_batch = batch_udf(artifact, columns)
    measure(
        "predict_batch_udf",
        read(args.compare_rows).withColumn("prediction", predict_batch(*[quoted(c) for c in columns])),
        args.compare_rows,
    )
    original = original_udf(trained.model, columns)
    measure(
        "original_pandas_udf",
        read(args.original_rows).withColumn("prediction", original(*[quoted(c) for c in columns])),
        args.original_rows,
    )
    arrow_batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000"))
    spark.stop()
    results["in_process"], results["in_process_predict_only"] = in_process(
        artifact, files[args.rows], args.rows
    )
    print(
        f"in_process {results['in_process']}  predict only {results['in_process_predict_only']}", flush=True
    )

    import pyarrow
    import pyspark

    share = results["transform"]["rows_per_s"] / results["floor"]["rows_per_s"]
    overhead_us = 1e6 / results["transform"]["rows_per_s"] - 1e6 / results["in_process"]["rows_per_s"]
    report = {
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {
            "pyspark": pyspark.__version__,
            "pyarrow": pyarrow.__version__,
            "predictlib": predictlib.__version__,
        },
        "master": "local[2]",
        "model": MODEL,
        "arrow_batch_rows": arrow_batch_rows,
        "results": results,
        "transform_share_of_floor": round(share, 3),
        "target_share_of_floor": TARGET_SHARE_OF_FLOOR,
        "target_met": share >= TARGET_SHARE_OF_FLOOR,
        "spark_overhead_us_per_row": round(overhead_us, 2),
        "original_extrapolated_from_rows": args.original_rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spark.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "spark.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    r = report["results"]
    loads = [v.get("load_average") for v in r.values() if isinstance(v, dict) and "load_average" in v]

    def row(label: str, key: str, note: str = "") -> str:
        m = r[key]
        return f"| {label} | {m['rows']:,} | {m['seconds']:.1f} s | {m['rows_per_s']:,.0f} | {note} |"

    transform_vs = r["transform"]["rows_per_s"]
    lines = [
        "# predictlib.spark benchmark",
        "",
        f"Generated by `python -m benchmarks.spark` (`nox -s bench_spark`) on {report['measured']}: "
        f"{report['machine']}; pyspark {report['versions']['pyspark']}, pyarrow "
        f"{report['versions']['pyarrow']}; Spark `{report['master']}`, Arrow batches of "
        f"{report['arrow_batch_rows']:,} rows; model {report['model']} (79 input columns); Parquet "
        f"written from its training data. Load average during the Spark runs: {min(loads):.1f} to "
        f"{max(loads):.1f} on {os.cpu_count()} cores (a shared machine: absolute figures move with it).",
        "",
        "| what | rows | time | rows/s | note |",
        "|---|---|---|---|---|",
        row("Spark's floor: no-op scalar Arrow UDF, 79 columns in, 1 out", "floor"),
        row(
            "**predictlib.spark.transform** (scalar Arrow UDF)",
            "transform",
            f"{report['transform_share_of_floor']:.0%} of the floor (target >= "
            f"{report['target_share_of_floor']:.0%}: {'met' if report['target_met'] else 'missed'})",
        ),
        row("floor, on the comparison rows", "floor_compare_rows"),
        row(
            "transform on the mapInArrow path (pyspark < 4.1)",
            "transform_map_in_arrow",
            f"{r['transform_map_in_arrow']['rows_per_s'] / r['floor_compare_rows']['rows_per_s']:.0%} of the floor",
        ),
        row(
            "predict_batch_udf -> Model.predict_rows",
            "predict_batch_udf",
            f"{r['predict_batch_udf']['rows_per_s'] / r['floor_compare_rows']['rows_per_s']:.0%} of the floor",
        ),
        row(
            "original pipeline in a pandas UDF",
            "original_pandas_udf",
            f"measured on {report['original_extrapolated_from_rows']:,} rows, extrapolated: ~"
            f"{r['transform']['rows'] / r['original_pandas_udf']['rows_per_s']:,.0f} s for "
            f"{r['transform']['rows']:,} rows; transform is "
            f"{transform_vs / r['original_pandas_udf']['rows_per_s']:.1f}x faster",
        ),
        row("in-process runtime, 2 threads: pyarrow reads the file, predict_rows", "in_process"),
        row("... of which predict_rows alone", "in_process_predict_only"),
        "",
        f"Spark's overhead over in-process scoring: {report['spark_overhead_us_per_row']:.2f} µs per row "
        "(1/transform - 1/in-process, both reading the same Parquet file on 2 cores).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
