"""Fresh-process measurements: cold start and resident memory.

Each measurement is a new ``python -c`` process in the environment under test
(the throwaway venvs), started from a folder outside the repository so nothing is
imported from the source tree. Timestamps are CLOCK_MONOTONIC (``time.monotonic_ns``),
which is system-wide on Linux: the parent takes one just before it spawns the
child, the child takes the others, so "cold start" is process start (fork/exec,
interpreter start-up, site) to the first prediction returned.
RSS is read from ``/proc/self/status`` (VmRSS, VmHWM), so the children need no psutil.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# ------------------------------------------------------------------ child scripts
# {model} is a literal: an installed model's name or an artifact folder (a str).

_RSS = """
def rss():
    out = {{}}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = {{"VmRSS": peak, "VmHWM": peak}}
    return {{"rss": out["VmRSS"], "peak": out["VmHWM"]}}


def _decode(obj):
    import datetime
    if set(obj) == {{"$datetime"}}:
        return datetime.datetime.fromisoformat(obj["$datetime"])
    return obj
"""

COLD_PREDICTLIB = """
import time
t0 = time.monotonic_ns()
import datetime  # records may hold datetimes (predictlib imports it anyway)
import predictlib
t1 = time.monotonic_ns()
model = predictlib.load({model!r})
t2 = time.monotonic_ns()
y = model.predict({record!r})
t3 = time.monotonic_ns()
print("BENCH", t0, t1, t2, t3, repr(y))
"""

COLD_ORIGINAL = """
import time
t0 = time.monotonic_ns()
import datetime
import pickle
import pandas as pd
import sklearn
import feature_engine
t1 = time.monotonic_ns()
with open({pickle_path!r}, "rb") as fh:
    model = pickle.load(fh)
t2 = time.monotonic_ns()
record = {record!r}
frame = pd.DataFrame({{c: pd.Series([record[c]], dtype=t) for c, t in {dtypes!r}.items()}})
y = model.predict(frame)[0]
t3 = time.monotonic_ns()
print("BENCH", t0, t1, t2, t3, repr(y))
"""

PYTHON_ONLY = """
import time
print("BENCH", time.monotonic_ns())
"""

RSS_PREDICTLIB = (
    _RSS
    + """
import json
import predictlib
model = predictlib.load({model!r})
after_load = rss()
with open({records_path!r}) as fh:
    records = json.load(fh, object_hook=_decode)
model.predict(records[0])
after_first = rss()
k = len(records)
for i in range({singles}):
    model.predict(records[i % k])
after_singles = rss()
batch = (records * ({batch} // k + 1))[:{batch}]
for _ in range({batches}):
    model.predict(batch)
after_batches = rss()
print("BENCH", json.dumps({{"after_load": after_load, "after_first": after_first,
    "after_singles": after_singles, "after_batches": after_batches}}))
"""
)

RSS_ORIGINAL = (
    _RSS
    + """
import json
import pickle
import pandas as pd
import sklearn
import feature_engine
with open({pickle_path!r}, "rb") as fh:
    model = pickle.load(fh)
after_load = rss()
with open({records_path!r}) as fh:
    records = json.load(fh, object_hook=_decode)
frame = pd.DataFrame({{c: pd.Series([r[c] for r in records], dtype=t) for c, t in {dtypes!r}.items()}})
model.predict(frame.iloc[[0]])
after_first = rss()
k = len(frame)
batch = pd.concat([frame] * ({batch} // k + 1), ignore_index=True).iloc[:{batch}]
for _ in range({batches}):
    model.predict(batch)
after_batches = rss()
print("BENCH", json.dumps({{"after_load": after_load, "after_first": after_first,
    "after_batches": after_batches}}))
"""
)


@dataclass
class Child:
    python: Path
    cwd: Path
    env: dict[str, str]


def _run(child: Child, code: str, timeout: float) -> tuple[int, str]:
    """Spawn ``python -c code``; return (monotonic ns just before the spawn, the BENCH line)."""
    spawn = time.monotonic_ns()
    proc = subprocess.run(
        [str(child.python), "-c", code],
        capture_output=True,
        text=True,
        cwd=child.cwd,
        env=child.env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(
            f"benchmark child printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return spawn, lines[-1][len("BENCH ") :]


def _stats_s(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "n": len(a),
        "p50_s": float(np.median(a)),
        "p99_s": float(np.percentile(a, 99)),
        "min_s": float(a.min()),
    }


def cold_starts(children: dict[str, tuple[Child, str]], runs: int) -> dict[str, Any]:
    """Cold start of each ``name -> (child, code)``, interleaved, after one discarded run
    each (it warms the OS page cache: the figure is a cold *process*, not a cold disk)."""
    phases: dict[str, dict[str, list[float]]] = {
        name: {"total": [], "startup": [], "imports": [], "load": [], "first_prediction": []}
        for name in children
    }
    answers: dict[str, str] = {}
    for child, code in children.values():
        _run(child, code, timeout=120)
    for _ in range(runs):
        for name, (child, code) in children.items():
            spawn, line = _run(child, code, timeout=120)
            t0, t1, t2, t3, answer = line.split(" ", 4)
            stamps = [spawn, int(t0), int(t1), int(t2), int(t3)]
            p = phases[name]
            p["total"].append((stamps[4] - stamps[0]) / 1e9)
            p["startup"].append((stamps[1] - stamps[0]) / 1e9)
            p["imports"].append((stamps[2] - stamps[1]) / 1e9)
            p["load"].append((stamps[3] - stamps[2]) / 1e9)
            p["first_prediction"].append((stamps[4] - stamps[3]) / 1e9)
            answers[name] = answer
    out: dict[str, Any] = {}
    for name, p in phases.items():
        out[name] = {
            **_stats_s(p["total"]),
            "phases_p50_s": {k: float(np.median(v)) for k, v in p.items() if k != "total"},
            "first_prediction_value": answers[name],
        }
    return out


def python_startup(child: Child, runs: int) -> dict[str, float]:
    """Interpreter start-up alone (process start to the first line of the script)."""
    _run(child, PYTHON_ONLY, timeout=60)
    values = []
    for _ in range(runs):
        spawn, line = _run(child, PYTHON_ONLY, timeout=60)
        values.append((int(line) - spawn) / 1e9)
    return _stats_s(values)


def memory(child: Child, code: str) -> dict[str, Any]:
    _spawn, line = _run(child, code, timeout=600)
    result: dict[str, Any] = json.loads(line)
    return result
