"""What drift monitoring costs: ``model.monitor().predict(record)`` against
``model.predict(record)``, and ``model.drift`` on batches (docs/monitoring.md).

    python -m benchmarks.monitor ARTIFACT_FOLDER [...] [--calls 20000] [--out benchmarks/results/monitor.json]

Per artifact: single-record latency (median, p99, mean: the mean includes the
reduction of the buffered records to counts, paid once per 512 calls) of
``model.predict`` and of ``monitor.predict``, interleaved call by call (in alternating
order) over the
artifact's accepted golden records so both see the same machine load; ``model.drift`` throughput on a
DataFrame of the golden records tiled to 100,000 rows; the size of the monitor's JSON state.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pandas as pd

import predictlib
from predictlib._drift import FLUSH_ROWS

from ._timing import summary_ns

OUT = Path(__file__).resolve().parent / "results" / "monitor.json"


def _records(model: predictlib.Model, limit: int) -> list[dict[str, Any]]:
    """The artifact's golden records the model accepts (held-out rows, generated records
    and edge cases)."""
    from predictlib.build.stages.golden import decode

    golden = decode(json.loads(model.read_file("golden.json")))
    return [g["record"] for g in golden["accepted"]][:limit]


def measure(folder: Path, calls: int) -> dict[str, Any]:
    model = predictlib.load(folder)
    monitor = model.monitor()
    records = _records(model, 1_000)
    for record in records[:200]:
        model.predict(record)
        monitor.predict(record)
    clock = time.perf_counter_ns
    plain = np.empty(calls, dtype=np.int64)
    counted = np.empty(calls, dtype=np.int64)
    flushes = []
    for i in range(calls):
        record = records[i % len(records)]
        if i % 2:  # the second call of a pair finds the caches warmer: alternate the order
            t0 = clock()
            model.predict(record)
            t1 = clock()
            monitor.predict(record)
            t2 = clock()
            plain[i], counted[i] = t1 - t0, t2 - t1
        else:
            t0 = clock()
            monitor.predict(record)
            t1 = clock()
            model.predict(record)
            t2 = clock()
            plain[i], counted[i] = t2 - t1, t1 - t0
        if monitor._buffered == 0:  # this call reduced the buffer to counts
            flushes.append(counted[i])
    batch = records * (100_000 // len(records) + 1)
    frame = pd.DataFrame(batch[:100_000])
    t0 = time.perf_counter()
    report = model.drift(frame)
    seconds = time.perf_counter() - t0
    return {
        "model": model.name,
        "version": model.version,
        "columns": len(model.columns),
        "predict": summary_ns(plain),
        "monitor_predict": summary_ns(counted),
        "overhead_p50_us": float(np.median(counted) - np.median(plain)) / 1e3,
        "overhead_mean_us": float(counted.mean() - plain.mean()) / 1e3,
        "flush_ms": {
            "records": FLUSH_ROWS,
            "n": len(flushes),
            "min": min(flushes) / 1e6,
            "p50": float(np.median(flushes)) / 1e6,
        },
        "drift_100k_rows_s": seconds,
        "drift_rows_per_s": 100_000 / seconds,
        "drift_status": report.status,
        "state_bytes": len(monitor.to_json()),
        "profile_bytes": len(model.read_file("profile.json")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.monitor", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("artifacts", nargs="+", type=Path, help="artifact folders")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "load_average": os.getloadavg(),
        "versions": {"predictlib": predictlib.__version__, "onnxruntime": onnxruntime.__version__},
        "models": [measure(folder, args.calls) for folder in args.artifacts],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for m in results["models"]:
        print(
            f"{m['model']}: predict p50 {m['predict']['p50_us']:.1f} us, monitor.predict p50 "
            f"{m['monitor_predict']['p50_us']:.1f} us (+{m['overhead_p50_us']:.1f} us, mean "
            f"+{m['overhead_mean_us']:.1f} us; a reduction of {FLUSH_ROWS} records: min "
            f"{m['flush_ms']['min']:.1f} ms, p50 {m['flush_ms']['p50']:.1f} ms); drift {m['drift_rows_per_s']:,.0f} rows/s; state "
            f"{m['state_bytes']:,} bytes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
