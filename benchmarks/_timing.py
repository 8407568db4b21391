"""Timing loops and statistics (in-process measurements)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def summary_ns(samples_ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Median, p99, mean and min of durations in ns, reported in microseconds."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return {
        "n": len(a),
        "p50_us": float(np.median(a)),
        "p99_us": float(np.percentile(a, 99)),
        "mean_us": float(a.mean()),
        "min_us": float(a.min()),
    }


def latency(
    call: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    calls: int,
    warmup: int,
    budget_s: float | None = None,
) -> dict[str, float]:
    """Time ``call(x)`` one call at a time (perf_counter_ns), cycling over ``inputs``.

    ``budget_s`` stops early (after at least 20 calls) when the calls are slow.
    GC stays enabled: collections are part of what a caller sees in the p99.
    """
    k = len(inputs)
    for i in range(warmup):
        call(inputs[i % k])
    out = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    deadline = None if budget_s is None else clock() + int(budget_s * 1e9)
    n = 0
    for i in range(calls):
        x = inputs[i % k]
        t0 = clock()
        call(x)
        t1 = clock()
        out[i] = t1 - t0
        n = i + 1
        if deadline is not None and n >= 20 and t1 > deadline:
            break
    return summary_ns(out[:n])


def throughput(
    call: Callable[[Any], Any],
    data: Any,
    rows: int,
    *,
    min_reps: int,
    max_reps: int,
    budget_s: float,
    warmup: int = 0,
) -> dict[str, float]:
    """Time whole-batch calls: at least ``min_reps``, then more while within ``budget_s``.

    Reports median and p99 of the call time and the rows/s they give.
    """
    for _ in range(warmup):
        call(data)
    gc.collect()
    times: list[int] = []
    start = time.perf_counter()
    while len(times) < max_reps:
        t0 = time.perf_counter_ns()
        call(data)
        times.append(time.perf_counter_ns() - t0)
        if len(times) >= min_reps and time.perf_counter() - start > budget_s:
            break
    a = np.asarray(times, dtype=np.float64) / 1e9
    p50 = float(np.median(a))
    p99 = float(np.percentile(a, 99))
    return {
        "rows": rows,
        "reps": len(a),
        "p50_s": p50,
        "p99_s": p99,
        "rows_per_s": rows / p50,
        "rows_per_s_p99": rows / p99,
    }
