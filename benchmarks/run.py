"""predictlib vs the original feature-engine + scikit-learn pipeline, side by side.

    nox -s bench                       # or: python -m benchmarks.run [options]
    python -m benchmarks.run --reuse   # reuse the artifacts built by an earlier run

For every model in ``models/``: builds the artifact and model wheel with
``predictlib.build.project.build_project`` in a work folder (keeping the fitted original
pipeline, which is pickled only there, for the cold-start comparison), then measures:

* single-row latency (median, p99): predictlib from a dict (the realistic call),
  predictlib's graph on pre-built input arrays, the original on a 1-row DataFrame;
* batch throughput (rows/s) at 1, 100, 10,000 and 1,000,000 rows (the data tiled);
  the original is measured up to ``--original-max-rows`` and extrapolated beyond,
  marked as such;
* cold start, process start to first prediction, and resident memory after load and
  after 100,000 predictions, each in fresh processes of two throwaway uv venvs: the
  runtime stack (predictlib + model wheels + numpy + onnxruntime) and the original
  stack (scikit-learn, feature-engine, pandas, scipy, numpy), whose installed sizes
  are measured too. A pipeline needing more (ames: LightGBM) gets its own copy of the
  original stack plus what its pickle imports (``_envs.extra_requirements``); a model
  folder's own classes (ames' transformers, whose module also registers predictlib
  converters) are pickled by value (``_envs.pickle_original``);
* the bare onnxruntime floor (an Identity graph, predictlib's session options) and
  a profile of the single-row path (``benchmarks.profile``).

Writes ``benchmarks/results/latest.json`` and ``latest.png``, the full tables in
``docs/benchmarks.md``, and a summary between ``<!-- benchmarks:start -->`` and
``<!-- benchmarks:end -->`` in README.md.
Targets (house_prices, a 2-core machine) are reported as pass/fail; nothing fails
the run because a target is missed. ``nox -s bench`` runs this, then
``benchmarks.trees`` and ``benchmarks.inputs`` (``--quick`` goes to all three).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # python benchmarks/run.py
    sys.path.insert(0, str(ROOT))
try:
    import predictlib
except ImportError:  # a source checkout without an installed predictlib
    sys.path.insert(0, str(ROOT / "src"))
    import predictlib

import numpy as np  # noqa: E402 - after the sys.path set-up above
import pandas as pd  # noqa: E402

from benchmarks import _children, _envs, _report  # noqa: E402
from benchmarks import profile as _profile  # noqa: E402
from benchmarks._timing import latency, throughput  # noqa: E402

BATCH_SIZES = (1, 100, 10_000, 1_000_000)
#: optional measurements (pre-built arrays at 1M rows) are skipped past this many seconds,
#: so that a slow build or a busy machine still keeps the run under 10 minutes
SOFT_BUDGET_S = 360.0
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
#: the full tables (the README gets a summary and a link)
FULL_TABLES = ROOT / "docs" / "benchmarks.md"

FLOOR_LABEL = "single row from a dict, p50, in times the one-input Identity floor of the same run"
#: name, label, comparison, threshold, unit: per model (the issue's targets, for
#: house_prices on a 2-core machine)
TARGETS: dict[str, list[tuple[str, str, str, float, str]]] = {
    "house_prices": [
        ("single_row_dict_p50_us", "single row from a dict, p50", "<=", 25.0, "us"),
        ("speedup_vs_original", "single row: times faster than the original (p50)", ">=", 2000.0, "x"),
        ("batch_1m_rows_per_s", "batch throughput at 1,000,000 rows", ">=", 1_000_000.0, "rows/s"),
        ("cold_start_p50_s", "cold start (process start to first prediction), p50", "<=", 0.3, "s"),
        ("rss_after_load_mb", "RSS after load", "<=", 80.0, "MB"),
        ("overhead_vs_floor", FLOOR_LABEL, "<=", 3.0, "x"),
    ]
}
#: every model's targets (issue 19), unless TARGETS sets its own
EVERY_MODEL: list[tuple[str, str, str, float, str]] = [("overhead_vs_floor", FLOOR_LABEL, "<=", 4.0, "x")]


@dataclasses.dataclass
class Settings:
    calls: int
    original_calls: int
    original_budget_s: float
    sizes: tuple[int, ...]
    original_max_rows: int
    cold_runs: int
    rss_singles: int
    rss_batch: int
    rss_batches: int


FULL = Settings(
    calls=20_000,
    original_calls=300,
    original_budget_s=12.0,
    sizes=BATCH_SIZES,
    original_max_rows=100_000,
    cold_runs=7,
    rss_singles=1_000_000,
    rss_batch=10_000,
    rss_batches=10,
)
QUICK = Settings(
    calls=3_000,
    original_calls=40,
    original_budget_s=3.0,
    sizes=(1, 100, 10_000),
    original_max_rows=10_000,
    cold_runs=2,
    rss_singles=5_000,
    rss_batch=1_000,
    rss_batches=2,
)


def log(*parts: Any) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s]", *parts, flush=True)


_T0 = time.perf_counter()


# --------------------------------------------------------------------- data


def clean_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the records an app has: Python scalars, naive ``datetime.datetime`` for
    datetimes, missing values as None."""
    out = []
    for row in frame.to_dict(orient="records"):
        rec = {}
        for key, value in row.items():
            if value is pd.NaT:
                value = None
            elif isinstance(value, pd.Timestamp):
                value = value.to_pydatetime()
            elif hasattr(value, "item") and not isinstance(value, (str, bytes)):
                value = value.item()
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                value = None
            rec[key] = value
        out.append(rec)
    return out


def _encode_datetime(value: Any) -> dict[str, str]:
    """JSON for a datetime of a record (the children decode it: benchmarks/_children.py)."""
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def tile_frame(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    reps = -(-rows // len(frame))
    return pd.concat([frame] * reps, ignore_index=True).iloc[:rows].copy()


@dataclasses.dataclass
class Prepared:
    name: str
    model: Any  # the fitted original pipeline
    folder: Path
    wheel: Path
    pickle_path: Path
    X_all: pd.DataFrame  # every row both sides accept, original dtypes
    records_all: list[dict[str, Any]]
    pool_records: list[dict[str, Any]]  # held-out rows for single-row calls
    pool_frames: list[pd.DataFrame]
    dtypes: dict[str, str]
    build: dict[str, Any]


def prepare(name: str, work: Path, reuse: bool) -> Prepared:
    """Build (or reuse) model ``name``'s artifact and wheel; keep the fitted original."""
    from predictlib.build.project import build_project, load_project, train
    from predictlib.build.stages.package import wheel_filename

    from . import MODELS

    project = load_project(MODELS / name)
    artifacts, dist = work / "artifacts", work / "dist"
    folder = artifacts / name
    wheel = dist / wheel_filename(name, project.version)
    t0 = time.perf_counter()
    reused = reuse and (folder / "model.onnx").is_file() and wheel.is_file()
    if reused:
        trained = train(project)  # deterministic: the same fitted pipeline the artifact was built from
        log(f"{name}: reusing {folder} and {wheel.name}; original retrained")
    else:
        built = build_project(project, artifacts=artifacts, dist=dist, log=lambda *a: log(*a))
        trained, wheel = built.trained, built.wheel
    build_s = time.perf_counter() - t0
    pickles = work / "pickles"
    pickles.mkdir(parents=True, exist_ok=True)
    pickle_path = pickles / f"{name}.pkl"  # for the cold start only; never shipped
    # a model folder's own classes (e.g. ames' transformers) by value: see _envs.pickle_original
    pickle_path.write_bytes(_envs.pickle_original(trained.model, f"predictlib_project_{name}"))

    model = predictlib.load(folder)
    X_all = pd.concat([trained.X_train, trained.X_test])
    records = clean_records(X_all)
    ok = [i for i, r in enumerate(records) if _profile.accepted(model, r)]
    X_all = X_all.iloc[ok].reset_index(drop=True)
    records = [records[i] for i in ok]
    test = clean_records(trained.X_test)
    pool = [i for i, r in enumerate(test) if _profile.accepted(model, r)][:200]
    pool_records = [test[i] for i in pool]
    pool_frames = [trained.X_test.iloc[[i]] for i in pool[:50]]
    mine = np.asarray([model.predict(r) for r in pool_records[:50]])
    theirs = np.concatenate([np.asarray(trained.model.predict(f)) for f in pool_frames])
    if mine.dtype.kind == "f":
        agree = bool(np.allclose(mine, theirs, rtol=1e-9, atol=1e-9))
    else:
        agree = bool((mine == theirs).all())
    if reused and not agree:
        log(f"{name}: the reused artifact disagrees with the retrained original; rebuilding")
        return prepare(name, work, reuse=False)
    return Prepared(
        name=name,
        model=trained.model,
        folder=folder,
        wheel=wheel,
        pickle_path=pickle_path,
        X_all=X_all,
        records_all=records,
        pool_records=pool_records,
        pool_frames=pool_frames,
        dtypes={c: str(t) for c, t in trained.X_train.dtypes.items()},
        build={
            "seconds": build_s,
            "reused": reused,
            "rows_accepted": f"{len(ok)} of {len(trained.X_train) + len(trained.X_test)}",
            "single_row_agreement": agree,
            "pickle_bytes": pickle_path.stat().st_size,
        },
    )


# --------------------------------------------------------------- measurements


def single_row(p: Prepared, s: Settings) -> dict[str, Any]:
    model = predictlib.load(p.folder)
    out: dict[str, Any] = {}
    out["predictlib_dict"] = latency(model.predict, p.pool_records, calls=s.calls, warmup=2_000)
    session = _profile.session_for(p.folder)
    wanted = list(getattr(model, "_output_names", [o.name for o in session.get_outputs()]))
    feeds = [_profile.feeds_from_record(model, r) for r in p.pool_records]
    out["predictlib_prebuilt"] = latency(lambda f: session.run(wanted, f), feeds, calls=s.calls, warmup=2_000)
    out["predictlib_frame"] = latency(
        model.predict, p.pool_frames, calls=s.original_calls, warmup=5, budget_s=s.original_budget_s / 4
    )
    out["original_frame"] = latency(
        p.model.predict, p.pool_frames, calls=s.original_calls, warmup=5, budget_s=s.original_budget_s
    )
    out["node"] = node_latency(p.folder, runs=min(s.calls, 5_000))
    return out


def node_latency(folder: Path, runs: int) -> dict[str, Any]:
    """Single-record latency through the Node.js client (embed/node/bench.js), per backend."""
    node = shutil.which("node")
    embed = ROOT / "embed" / "node"
    if node is None or not (embed / "node_modules" / "onnxruntime-node").is_dir():
        npm = shutil.which("npm")
        if node is None or npm is None:
            return {"skipped": "node / npm not found"}
        env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL_CUDA": "skip"}
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=embed, env=env, check=True, capture_output=True
        )
    out: dict[str, Any] = {}
    for backend in ("node", "web"):
        done = subprocess.run(
            [node, "bench.js", str(folder), "--backend", backend, "--runs", str(runs)],
            cwd=embed,
            capture_output=True,
            text=True,
            check=True,
        )
        out[backend] = json.loads(done.stdout)
    return out


def batches(p: Prepared, s: Settings) -> dict[str, Any]:
    model = predictlib.load(p.folder)
    session = _profile.session_for(p.folder)
    wanted = list(getattr(model, "_output_names", [o.name for o in session.get_outputs()]))
    row_feeds = [_profile.feeds_from_record(model, r) for r in p.records_all]
    out: dict[str, Any] = {"predictlib": {}, "predictlib_prebuilt": {}, "original": {}}
    sizes = sorted({*s.sizes, *(n for n in (s.original_max_rows,) if n <= max(s.sizes))})
    for rows in sizes:
        frame = tile_frame(p.X_all, rows)
        big = rows >= 1_000_000
        kw = {
            "min_reps": 2 if big else 3,
            "max_reps": 1_000,
            "budget_s": 6.0 if big else 2.0,
            "warmup": 0 if big else 2,
        }
        if rows in s.sizes:
            out["predictlib"][str(rows)] = throughput(model.predict, frame, rows, **kw)
            if big and time.perf_counter() - _T0 > SOFT_BUDGET_S:
                out["predictlib_prebuilt"][str(rows)] = {
                    "rows": rows,
                    "skipped": f"over the soft time budget ({SOFT_BUDGET_S:.0f} s) at this point",
                }
            else:
                feeds = _profile.stack(row_feeds, rows)
                out["predictlib_prebuilt"][str(rows)] = throughput(
                    lambda f: session.run(wanted, f), feeds, rows, **{**kw, "min_reps": 1 if big else 3}
                )
                del feeds
        if rows <= s.original_max_rows:
            out["original"][str(rows)] = throughput(p.model.predict, frame, rows, **kw)
        log(
            f"{p.name}: batch {rows:>9,} rows: predictlib "
            f"{_fmt_rate(out['predictlib'].get(str(rows)))}, original {_fmt_rate(out['original'].get(str(rows)))}"
        )
        del frame
        gc.collect()
    measured = [int(k) for k in out["original"]]
    anchor = out["original"][str(max(measured))]
    for rows in s.sizes:
        if str(rows) not in out["original"]:
            out["original"][str(rows)] = {
                "rows": rows,
                "extrapolated": True,
                "from_rows": anchor["rows"],
                "rows_per_s": anchor["rows_per_s"],
                "p50_s": rows / anchor["rows_per_s"],
                "note": f"not run: extrapolated from the measured throughput at {anchor['rows']:,} rows",
            }
    return out


def _fmt_rate(r: dict[str, Any] | None) -> str:
    return "-" if r is None else f"{r['rows_per_s']:,.0f} rows/s"


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP", "CONDA_PREFIX")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra or {})
    return env


def environments(work: Path, preps: list[Prepared]) -> dict[str, Any]:
    """The two throwaway venvs (or why they could not be made) and their sizes."""
    out: dict[str, Any] = {}
    try:
        uv = _envs.find_uv()
        version = subprocess.run([*uv, "--version"], capture_output=True, text=True).stdout.strip()
        wheel = _envs.build_runtime_wheel(work / "runtime_wheel")
        runtime_reqs = [str(wheel), *(str(p.wheel) for p in preps), *map(_envs.pinned, _envs.RUNTIME_DEPS)]
        original_reqs = list(map(_envs.pinned, _envs.ORIGINAL_STACK))
        envs = {
            "runtime": _envs.make_env(uv, work / "venvs" / "runtime", "runtime", runtime_reqs, log),
            "original": _envs.make_env(uv, work / "venvs" / "original", "original", original_reqs, log),
        }
        for p in preps:  # a pipeline needing more (e.g. ames: lightgbm) gets the stack + that, alone
            extra = _envs.extra_requirements(p.pickle_path.read_bytes())
            if extra:
                key = f"original:{p.name}"
                folder = work / "venvs" / f"original-{p.name}"
                envs[key] = _envs.make_env(uv, folder, key, [*original_reqs, *extra], log)
    except Exception as exc:  # noqa: BLE001 - fall back to this interpreter, say so
        log(f"throwaway environments unavailable ({type(exc).__name__}: {exc}); using this interpreter")
        return {"error": f"{type(exc).__name__}: {exc}"}
    out["uv"] = version
    out["runtime_wheel"] = {"file": wheel.name, "bytes": wheel.stat().st_size}
    models = {_envs.normalise(f"predictlib_{p.name}") for p in preps}
    for key, env in envs.items():
        sizes = _envs.site_sizes(env.site_packages)
        by = sizes["by_distribution"]
        model_bytes = sum(v for d, v in by.items() if _envs.normalise(d) in models)
        out[key] = {
            "python": str(env.python),
            "requirements": [Path(r).name if os.sep in r else r for r in env.requirements],
            "reused": env.reused,
            "setup_s": env.seconds,
            "site_packages_bytes": sizes["bytes"] - model_bytes,
            "model_packages_bytes": model_bytes,
            "by_distribution": by,
        }
    out["_envs"] = envs
    return out


def footprint(p: Prepared, envs: dict[str, Any], s: Settings, work: Path) -> dict[str, Any]:
    """Cold start and RSS in fresh processes of the throwaway venvs."""
    cwd = work / "run"
    cwd.mkdir(exist_ok=True)
    records_path = work / "records" / f"{p.name}.json"
    records_path.parent.mkdir(exist_ok=True)
    records_path.write_text(json.dumps(p.records_all, allow_nan=False, default=_encode_datetime))
    if "_envs" in envs:
        runtime = _children.Child(envs["_envs"]["runtime"].python, cwd, _child_env())
        original_env = envs["_envs"].get(f"original:{p.name}", envs["_envs"]["original"])
        original = _children.Child(original_env.python, cwd, _child_env())
        model_ref = p.name  # the installed model wheel, found through its entry point
        where = "throwaway uv venvs (runtime: predictlib + model wheels; original: the training stack)"
        if original_env.name != "original":
            extra = original_env.requirements[len(_envs.ORIGINAL_STACK) :]
            where = where[:-1] + f" + {', '.join(extra)})"
    else:
        env = _child_env({"PYTHONPATH": str(ROOT / "src")})
        runtime = original = _children.Child(Path(sys.executable), cwd, env)
        model_ref = str(p.folder)
        where = f"this interpreter ({sys.executable}): the throwaway venvs could not be made"
    record = p.pool_records[0]
    fields = {"record": record, "dtypes": p.dtypes}
    cold = _children.cold_starts(
        {
            "predictlib": (runtime, _children.COLD_PREDICTLIB.format(model=model_ref, **fields)),
            "original": (
                original,
                _children.COLD_ORIGINAL.format(pickle_path=str(p.pickle_path), **fields),
            ),
        },
        runs=s.cold_runs,
    )
    cold["python_startup"] = _children.python_startup(runtime, runs=s.cold_runs)
    log(
        f"{p.name}: cold start p50 predictlib {cold['predictlib']['p50_s']:.3f} s, "
        f"original {cold['original']['p50_s']:.3f} s"
    )
    batch = {"batch": s.rss_batch, "batches": s.rss_batches, "records_path": str(records_path)}
    rss = {
        "predictlib": _children.memory(
            runtime, _children.RSS_PREDICTLIB.format(model=model_ref, singles=s.rss_singles, **batch)
        ),
        "original": _children.memory(
            original,
            _children.RSS_ORIGINAL.format(pickle_path=str(p.pickle_path), dtypes=p.dtypes, **batch),
        ),
        "singles": s.rss_singles,
        "protocol": (
            f"predictlib: load, 1 prediction, {s.rss_singles:,} single-record predictions from dicts, then "
            f"{s.rss_batches} batches of {s.rss_batch:,} records; original: unpickle, 1 prediction, then "
            f"{s.rss_batches} batches of {s.rss_batch:,} rows (DataFrame), as {s.rss_singles:,} single-row "
            "calls would take hours"
        ),
    }
    log(
        f"{p.name}: RSS after load predictlib {rss['predictlib']['after_load']['rss'] / 1e6:.1f} MB, "
        f"original {rss['original']['after_load']['rss'] / 1e6:.1f} MB"
    )
    return {"where": where, "cold_start": cold, "rss": rss}


def headline(result: dict[str, Any], envs: dict[str, Any], p: Prepared) -> dict[str, Any]:
    """The figures the targets and the table use."""
    sr = result["single_row"]
    h: dict[str, Any] = {
        "single_row_dict_p50_us": sr["predictlib_dict"]["p50_us"],
        "single_row_dict_p99_us": sr["predictlib_dict"]["p99_us"],
        "speedup_vs_original": sr["original_frame"]["p50_us"] / sr["predictlib_dict"]["p50_us"],
    }
    b = result["batch"]["predictlib"].get("1000000")
    h["batch_1m_rows_per_s"] = b["rows_per_s"] if b else None
    fp = result.get("footprint")
    if fp:
        h["cold_start_p50_s"] = fp["cold_start"]["predictlib"]["p50_s"]
        h["rss_after_load_mb"] = fp["rss"]["predictlib"]["after_load"]["rss"] / 1e6
    h["model_wheel_bytes"] = p.wheel.stat().st_size
    return h


def evaluate(name: str, h: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    chosen = list(TARGETS.get(name, []))
    chosen += [t for t in EVERY_MODEL if t[0] not in {c[0] for c in chosen}]
    for key, label, op, threshold, unit in chosen:
        value = h.get(key)
        passed = None if value is None else (value <= threshold if op == "<=" else value >= threshold)
        out.append(
            {
                "figure": key,
                "label": label,
                "value": value,
                "target": f"{op} {threshold:g} {unit}",
                "pass": passed,
            }
        )
    return out


# --------------------------------------------------------------------- context


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in (
        "predictlib",
        "numpy",
        "onnxruntime",
        "scikit-learn",
        "feature-engine",
        "pandas",
        "scipy",
        "pyarrow",
        "onnx",
        "skl2onnx",
        "psutil",
        "matplotlib",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["predictlib (imported)"] = predictlib.__version__
    return out


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [0.0, 0.0, 0.0]


def git_state() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "dirty": bool(dirty)}


# ------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="models to benchmark (default: every model in models/)")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "predictlib-bench",
        help="work folder: artifacts, wheels, pickles, venvs (default: %(default)s)",
    )
    parser.add_argument("--reuse", action="store_true", help="reuse artifacts and wheels already in --work")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer calls, no 1M rows)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not touch README.md and docs/benchmarks.md"
    )
    parser.add_argument(
        "--original-max-rows",
        type=int,
        default=None,
        help="largest batch the original is run on; larger sizes are extrapolated (default: 100,000)",
    )
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.original_max_rows is not None:
        s = dataclasses.replace(s, original_max_rows=args.original_max_rows)
    from . import model_names

    names = args.models or model_names()
    args.work.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    results: dict[str, Any] = {
        "schema": 1,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
        "settings": {**s.__dict__, "sizes": list(s.sizes), "quick": args.quick, "work": str(args.work)},
        "units": {"us": "microseconds", "MB": "10^6 bytes", "rows_per_s": "rows per second"},
        "load_average_at_start": _loadavg(),
        "models": {},
    }
    if results["load_average_at_start"][0] > 0.5:
        log(
            f"warning: load average {results['load_average_at_start'][0]:.1f} at start: other jobs share "
            "the CPUs and will slow and scatter the figures"
        )
    log(f"benchmarking {', '.join(names)} in {args.work}")
    preps: list[Prepared] = []
    for name in names:
        try:
            preps.append(prepare(name, args.work, args.reuse))
        except Exception as exc:  # noqa: BLE001 - one broken model must not hide the others
            log(f"{name}: cannot be built: {type(exc).__name__}: {exc}")
            results["models"][name] = {"error": f"build: {type(exc).__name__}: {exc}"}
    log("environments")
    envs = environments(args.work, preps)
    results["onnxruntime_floor"] = {
        "identity_1x1_float64": _profile.floor_latency(s.calls),
        "note": "InferenceSession.run of an Identity graph, predictlib.default_session_options()",
    }
    log(f"onnxruntime floor p50 {results['onnxruntime_floor']['identity_1x1_float64']['p50_us']:.1f} us")
    for p in preps:
        try:
            result: dict[str, Any] = {"build": p.build, "wheel": {"file": p.wheel.name}}
            result["single_row"] = single_row(p, s)
            sr = result["single_row"]
            log(
                f"{p.name}: single row p50 predictlib dict {sr['predictlib_dict']['p50_us']:.1f} us, "
                f"pre-built {sr['predictlib_prebuilt']['p50_us']:.1f} us, original "
                f"{sr['original_frame']['p50_us'] / 1e3:.1f} ms"
            )
            result["batch"] = batches(p, s)
            try:
                result["footprint"] = footprint(p, envs, s, args.work)
            except Exception as exc:  # noqa: BLE001 - report the rest
                log(f"{p.name}: footprint failed: {exc}")
                result["footprint_error"] = f"{type(exc).__name__}: {exc}"
            prof = _profile.profile_single_row(p.folder, p.pool_records, calls=s.calls)
            result["profile"] = prof
            log(_profile.format_profile(p.name, prof))
            result["headline"] = headline(result, envs, p)
            result["headline"]["onnxruntime_floor_p50_us"] = results["onnxruntime_floor"][
                "identity_1x1_float64"
            ]["p50_us"]
            result["headline"]["overhead_vs_floor"] = (
                result["headline"]["single_row_dict_p50_us"] / result["headline"]["onnxruntime_floor_p50_us"]
            )
            result["headline"]["prebuilt_vs_floor"] = (
                sr["predictlib_prebuilt"]["p50_us"] / result["headline"]["onnxruntime_floor_p50_us"]
            )
            result["targets"] = evaluate(p.name, result["headline"])
            results["models"][p.name] = result
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            results["models"][p.name] = {"error": f"{type(exc).__name__}: {exc}"}
    results["environments"] = {k: v for k, v in envs.items() if k != "_envs"}
    for p in preps:
        model = results["models"].get(p.name, {})
        if "headline" in model and "runtime" in envs:
            key = _envs.normalise(f"predictlib_{p.name}")
            by = envs["runtime"]["by_distribution"]
            model["headline"]["model_installed_bytes"] = sum(
                v for d, v in by.items() if _envs.normalise(d) == key
            )
    results["load_average_at_end"] = _loadavg()
    results["seconds"] = time.perf_counter() - _T0
    args.results.mkdir(parents=True, exist_ok=True)
    json_path = args.results / "latest.json"
    json_path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    png_path = args.results / "latest.png"
    _report.chart(results, png_path)
    table = _report.markdown(results, png=png_path, root=ROOT)
    short = _report.summary(results, full=os.path.relpath(FULL_TABLES, ROOT))
    if args.no_readme:
        print(table)
        print(short)
    else:
        FULL_TABLES.write_text(table)
        if not _report.replace_readme(README, short):
            print(
                "README.md has no <!-- benchmarks:start --> / <!-- benchmarks:end --> markers; the summary:"
            )
            print(short)
    log(f"wrote {json_path}, {png_path}{'' if args.no_readme else f', {FULL_TABLES} and the README summary'}")
    for name, model in results["models"].items():
        for t in model.get("targets", []):
            verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
            log(
                f"{name}: {verdict} {t['label']}: {_report.fmt_value(t['figure'], t['value'])} ({t['target']})"
            )
    if results["seconds"] > 600:
        log(f"warning: the benchmark took {results['seconds']:.0f} s, over its 10-minute budget")
    return 0 if all("error" not in m for m in results["models"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
