"""Tree ensembles: predictlib against each model's own library, on the same thread count.

    python -m benchmarks.trees [--quick] [--work DIR]

For every tree model -- the bundled models' final estimators (penguins' random forest,
house_dated's HistGradientBoosting, ames' LightGBM) and models trained here on the house
data (XGBoost, LightGBM, scikit-learn's random forest and HistGradientBoosting) -- the
estimator alone is packaged (``predictlib.build.package``: verified on 10,000 generated
records) and timed against its library's own call:

* single row: ``Model.predict(record)`` from a dict against the library's single-row
  call on a 1-row numpy array (scikit-learn ``predict`` / ``predict_proba``, LightGBM
  ``Booster.predict``, XGBoost ``Booster.inplace_predict``), both on one thread;
* batch at 10,000 and 1,000,000 rows: ``Model.predict(DataFrame)`` (chunks run on every
  core, one onnxruntime thread each) against the library on a numpy matrix with as many
  threads (``n_jobs`` / ``num_threads`` / ``nthread``; HistGradientBoosting through
  threadpoolctl).

Targets (issue 15): single row at least 5x faster than the library's single-row call;
1M-row batch at least as fast as the library on the same threads. The bundled models are
also timed whole (the pipeline from a dict against the original pipeline on a 1-row
DataFrame). Writes ``benchmarks/results/trees.json`` and ``benchmarks/results/trees.md``.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting collapse on a shared, loaded machine (measured:
# HistGradientBoosting on 2 threads 3,900 rows/s spinning, 70,000 passive); the libraries
# are given passive waiting, set before any of them loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import predictlib
from benchmarks import MODELS
from benchmarks._timing import latency, throughput

RESULTS = Path(__file__).resolve().parent / "results"
THREADS = os.cpu_count() or 1
SINGLE_TARGET = 5.0  # times faster than the library's single-row call
BATCH_TARGET = 1.0  # times the library's 1M-row throughput


@dataclass
class Case:
    """One tree model: its library call and the predictlib artifact of the estimator alone."""

    name: str
    library: str
    estimator: Any
    X: pd.DataFrame  # the estimator's input rows (numeric)
    single: Callable[[np.ndarray], Any]  # the library's single-row call
    batch: Callable[[np.ndarray], Any]  # the library's batch call (THREADS threads)
    folder: Path | None = None
    whole: dict[str, Any] | None = None  # the bundled pipeline, timed whole


def quietly(call: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _sklearn_calls(est: Any) -> tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], Any]]:
    from threadpoolctl import threadpool_limits

    method = est.predict_proba if hasattr(est, "predict_proba") else est.predict

    def single(row: np.ndarray) -> Any:
        return method(row)

    def batch(X: np.ndarray) -> Any:
        if hasattr(est, "n_jobs"):
            est.set_params(n_jobs=THREADS)
        with threadpool_limits(THREADS):
            out = method(X)
        if hasattr(est, "n_jobs"):
            est.set_params(n_jobs=None)
        return out

    return single, batch


def _calls(est: Any) -> tuple[str, Callable[[np.ndarray], Any], Callable[[np.ndarray], Any]]:
    module = type(est).__module__.split(".")[0]
    if module == "lightgbm":
        booster = est.booster_

        def single(row: np.ndarray) -> Any:
            return booster.predict(row, num_threads=1)

        def batch(X: np.ndarray) -> Any:
            return booster.predict(X, num_threads=THREADS)

        return "lightgbm", single, batch
    if module == "xgboost":
        booster = est.get_booster()

        def single(row: np.ndarray) -> Any:
            booster.set_param({"nthread": 1})
            return booster.inplace_predict(row)

        def batch(X: np.ndarray) -> Any:
            booster.set_param({"nthread": THREADS})
            return booster.inplace_predict(X)

        return "xgboost", single, batch
    single, batch = _sklearn_calls(est)
    return "scikit-learn", single, batch


def bundled_cases(work: Path, only: list[str] | None = None) -> list[Case]:
    """The bundled models whose final estimator is a tree ensemble."""
    from predictlib.build.project import build_project

    out = []
    for name in ("penguins", "house_dated", "ames"):
        if only and not any(s in name for s in only):  # not asked for: not built
            continue
        built = quietly(
            lambda n=name: build_project(MODELS / n, dist=work / "dist", artifacts=work / "art", log=None)
        )
        model = built.trained.model
        inner = getattr(model, "regressor_", model)
        pre, est = inner[:-1], inner.steps[-1][1]
        Xt = quietly(lambda p=pre, b=built: p.transform(b.trained.X_train))
        Xt = pd.DataFrame(Xt).astype(np.float64)
        library, single, batch = _calls(est)
        records = _records(built.trained.X_test)
        whole = {
            "model": model,
            "folder": built.packaged.folder,
            "records": records,
            "frames": built.trained.X_test,
        }
        out.append(Case(f"{name} ({type(est).__name__})", library, est, Xt, single, batch, whole=whole))
    return out


def trained_cases() -> list[Case]:
    """Models trained here on the house data's numeric columns (missing values kept)."""
    import lightgbm
    import xgboost
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    frame = pd.read_csv(MODELS / "house_prices" / "data" / "train.csv")
    X = frame.select_dtypes("number").drop(columns=["Id", "SalePrice"]).astype(np.float64)
    y = np.log(frame["SalePrice"].to_numpy())
    models = [
        ("XGBRegressor, 300 trees", xgboost.XGBRegressor(n_estimators=300, max_depth=6, n_jobs=1)),
        (
            "LGBMRegressor, 300 trees",
            lightgbm.LGBMRegressor(n_estimators=300, num_leaves=31, n_jobs=1, verbose=-1),
        ),
        (
            "RandomForestRegressor, 100 trees",
            RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=0),
        ),
        (
            "HistGradientBoostingRegressor, 200 iterations",
            HistGradientBoostingRegressor(max_iter=200, random_state=0),
        ),
    ]
    out = []
    for label, est in models:
        Xfit = X.fillna(X.median()) if isinstance(est, RandomForestRegressor) else X
        quietly(lambda e=est, Xf=Xfit: e.fit(Xf, y))
        library, single, batch = _calls(est)
        out.append(Case(label, library, est, Xfit, single, batch))
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
    return out


def package_estimator(case: Case, work: Path) -> None:
    from predictlib.build import package

    slug = "".join(ch if ch.isalnum() else "_" for ch in case.name.lower()).strip("_")[:40]
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("model", case.estimator)])  # as in an app: the input guards of a pipeline
    packaged = quietly(
        lambda: package(pipeline, case.X, name=f"t_{slug}", version="0.0.1", out=work / "trees", log=None)
    )
    case.folder = packaged.folder


def tile(X: np.ndarray, rows: int) -> np.ndarray:
    reps = -(-rows // len(X))
    return np.ascontiguousarray(np.tile(X, (reps, 1))[:rows])


def measure(case: Case, quick: bool) -> dict[str, Any]:
    assert case.folder is not None
    model = predictlib.load(case.folder)
    X = case.X.to_numpy(dtype=np.float64)
    columns = list(case.X.columns)
    records = _records(case.X.iloc[:200])
    rows = [X[i : i + 1] for i in range(min(200, len(X)))]
    calls = 2_000 if quick else 10_000
    result: dict[str, Any] = {"library": case.library, "rows_trained": len(X)}
    frames = [case.X.iloc[[i]] for i in range(min(50, len(X)))]
    method = getattr(case.estimator, "predict_proba", case.estimator.predict)
    result["single_row_us"] = {
        "predictlib_dict": latency(model.predict, records, calls=calls, warmup=500),
        "library": quietly(lambda: latency(case.single, rows, calls=calls // 4, warmup=100, budget_s=10.0)),
        "estimator_predict_frame": quietly(
            lambda: latency(method, frames, calls=400, warmup=20, budget_s=10.0)
        ),
    }
    result["batch"] = {}
    for n in (10_000,) if quick else (10_000, 1_000_000):
        big = tile(X, n)
        frame = pd.DataFrame(big, columns=columns)
        kw = {
            "min_reps": 2 if n >= 1_000_000 else 3,
            "max_reps": 50,
            "budget_s": 8.0 if n >= 1_000_000 else 3.0,
        }
        mine = throughput(model.predict, frame, n, warmup=1, **kw)
        theirs = quietly(lambda b=big, k=kw, rows=n: throughput(case.batch, b, rows, warmup=1, **k))
        result["batch"][str(n)] = {"predictlib": mine, "library": theirs}
        del big, frame
    single = result["single_row_us"]
    result["single_row_speedup"] = single["library"]["p50_us"] / single["predictlib_dict"]["p50_us"]
    result["single_row_speedup_vs_estimator_predict"] = (
        single["estimator_predict_frame"]["p50_us"] / single["predictlib_dict"]["p50_us"]
    )
    top = result["batch"][max(result["batch"], key=int)]
    result["batch_ratio"] = top["predictlib"]["rows_per_s"] / top["library"]["rows_per_s"]
    result["targets"] = {
        f"single row >= {SINGLE_TARGET:g}x the library": result["single_row_speedup"] >= SINGLE_TARGET,
        f"batch at {int(max(result['batch'], key=int)):,} rows >= the library": result["batch_ratio"]
        >= BATCH_TARGET,
    }
    if case.whole is not None:
        whole = predictlib.load(case.whole["folder"])
        frames = [case.whole["frames"].iloc[[i]] for i in range(20)]
        result["whole_pipeline_single_row_us"] = {
            "predictlib_dict": latency(whole.predict, case.whole["records"][:200], calls=calls, warmup=500),
            "original_pipeline_frame": quietly(
                lambda: latency(case.whole["model"].predict, frames, calls=60, warmup=3, budget_s=10.0)
            ),
        }
    return result


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Tree ensembles against their own libraries",
        "",
        f"Generated by `python -m benchmarks.trees` on {results['date']}: {results['machine']}, "
        f"{results['threads']} threads for batches (predictlib: chunks on every core, one onnxruntime "
        "thread each; the library: as many threads), one thread for single rows. Raw figures in "
        "`benchmarks/results/trees.json`.",
        "",
        "Single row: the library's 1-row call on a numpy row (scikit-learn `predict` / `predict_proba`, "
        "LightGBM `Booster.predict`, XGBoost `Booster.inplace_predict`), and the estimator's `predict` on a "
        "1-row DataFrame (the scikit-learn API an app calls). Batches: rows/s, the library on a numpy "
        "matrix, predictlib on a DataFrame.",
        "",
        "| model | library | single row: predictlib from a dict | library 1-row call | speed-up (target >= 5x) "
        "| estimator.predict(1-row DataFrame) | speed-up | batch 10k: predictlib / library rows/s "
        "| batch 1M: predictlib / library rows/s | ratio (target >= 1) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["models"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'].splitlines()[0][:200]} | | | | | | | | |")
            continue
        s = r["single_row_us"]
        b = r["batch"]

        def rate(n: str, b: dict[str, Any] = b) -> str:
            if n not in b:
                return "-"
            return f"{b[n]['predictlib']['rows_per_s']:,.0f} / {b[n]['library']['rows_per_s']:,.0f}"

        ok_single = "PASS" if r["single_row_speedup"] >= SINGLE_TARGET else "FAIL"
        ok_batch = "PASS" if r["batch_ratio"] >= BATCH_TARGET else "FAIL"
        lines.append(
            f"| {name} | {r['library']} | {s['predictlib_dict']['p50_us']:.1f} µs | {s['library']['p50_us']:.1f} µs "
            f"| {r['single_row_speedup']:.1f}x {ok_single} | {s['estimator_predict_frame']['p50_us']:.1f} µs "
            f"| {r['single_row_speedup_vs_estimator_predict']:.1f}x | {rate('10000')} | {rate('1000000')} "
            f"| {r['batch_ratio']:.2f} {ok_batch} |"
        )
    whole = [
        (n, r["whole_pipeline_single_row_us"])
        for n, r in results["models"].items()
        if "whole_pipeline_single_row_us" in r
    ]
    if whole:
        lines += [
            "",
            "Whole bundled pipelines, one record: predictlib from a dict against the original pipeline on a",
            "1-row DataFrame (feature-engine steps included).",
            "",
            "| model | predictlib from a dict | original pipeline | speed-up |",
            "|---|---|---|---|",
        ]
        for name, w in whole:
            mine, theirs = w["predictlib_dict"]["p50_us"], w["original_pipeline_frame"]["p50_us"]
            lines.append(f"| {name} | {mine:.1f} µs | {theirs / 1000:.2f} ms | {theirs / mine:,.0f}x |")
    lines += ["", *WHAT_LIMITS]
    return "\n".join(lines) + "\n"


#: what limits the batch misses (measured; the details and figures are in docs/estimators.md)
WHAT_LIMITS = [
    "## What limits the batch misses",
    "",
    "Measured in CPU time of one thread (a loaded machine does not skew it): the 100-tree random forest",
    "regressor runs at 105,000 rows/s in onnxruntime against 157,000 in scikit-learn, a 200-tree 3-class",
    "forest at 160,000 against 369,000. onnxruntime 1.31's `TreeEnsemble` (tree_ensemble_common.h) walks",
    "every tree for each block of 128 rows (scikit-learn walks one tree over all the rows; keeping groups of",
    "trees in cache gained only 4%: the walk itself costs), in float64, with an `isnan` test per node when",
    "any node has a missing-value track; the block size and thresholds are fixed in the kernel. For the classifier",
    "the tree walk alone is as fast as scikit-learn's `apply` (260,000 against 216,000 rows/s); the per-tree",
    "leaf distributions (`Gather` into `[N, trees, classes]`) and their ordered sum halve it. What the export",
    "can change was measured (docs/estimators.md, *Speed*): `SUM` into one output +12% but exact on one",
    "onnxruntime thread only, no missing-value tracks +5% (exact only where NaN is refused: GradientBoosting",
    "is exported so), groups of trees +4%, an unordered sum 0%: none closes the gap. XGBoost: onnxruntime's",
    "float32 walk 191,000-199,000 rows/s against `inplace_predict`'s 305,000 on one thread; its NaN-left",
    "tracks moved into -inf copies of 3 columns +7.5% (bit for bit) but +2.5-3 µs per single row. The",
    "runtime's chunks of 2,048 rows: 512 gives the 3-class forest +12% (its `[N, trees, classes]` cube stays",
    "in cache), the others unchanged.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trees", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, no 1M-row batch")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "predictlib-trees")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        nargs="*",
        help="substrings of the model names to run (a bundled model is built only when one is in its name)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    cases = bundled_cases(args.work, args.only) + trained_cases()
    if args.only:
        cases = [c for c in cases if any(s in c.name for s in args.only)]
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "threads": THREADS,
        "load_average": list(os.getloadavg()),
        "models": {},
    }
    for case in cases:
        try:
            package_estimator(case, args.work)
            results["models"][case.name] = measure(case, args.quick)
            r = results["models"][case.name]
            print(
                f"[{time.perf_counter() - t0:6.1f}s] {case.name}: single row {r['single_row_speedup']:.1f}x, "
                f"batch ratio {r['batch_ratio']:.2f}",
                flush=True,
            )
        except Exception as exc:  # noqa: BLE001 - one failing model must not hide the others
            results["models"][case.name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{case.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    results["seconds"] = time.perf_counter() - t0
    args.results.mkdir(parents=True, exist_ok=True)
    previous = args.results / "trees.json"
    if args.only and previous.is_file():  # a partial run updates the last full one
        merged = json.loads(previous.read_text())
        merged["models"].update(results["models"])
        merged.setdefault("partial_runs", []).append({k: v for k, v in results.items() if k != "models"})
        results = merged
    (args.results / "trees.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.results / "trees.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if all("error" not in r for r in results["models"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
