"""The results as a chart (PNG), the full tables (``docs/benchmarks.md``) and a short
summary (the README's benchmark section)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

START = "<!-- benchmarks:start -->"
END = "<!-- benchmarks:end -->"


# ------------------------------------------------------------------- formatting


def us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f} s"
    if value >= 1e3:
        return f"{value / 1e3:.1f} ms"
    return f"{value:.1f} µs"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} rows/s"


def mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f} MB"


def kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e3:.1f} kB"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def times(a: float | None, b: float | None) -> str:
    """How many times b is over a ('x faster / smaller' for predictlib = a)."""
    if not a or not b:
        return "-"
    ratio = b / a
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def fmt_value(figure: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    if figure.endswith("_us"):
        return us(value)
    if figure.endswith("_rows_per_s"):
        return rate(value)
    if figure.endswith("_s"):
        return seconds(value)
    if figure.endswith("_mb"):
        return f"{value:.1f} MB"
    if figure.endswith("_vs_floor"):
        return f"{value:.1f}x"
    if figure.startswith("speedup"):
        return f"{value:,.0f}x"
    return f"{value:g}"


# ------------------------------------------------------------------------ table


def _lat(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return f"{us(d['p50_us'])} / {us(d['p99_us'])}"


def _batch_cell(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    if d.get("extrapolated"):
        return f"~{rate(d['rows_per_s'])} (extrapolated from {d['from_rows']:,} rows)"
    return f"{rate(d['rows_per_s'])} (p99 {d['rows_per_s_p99']:,.0f})"


def model_table(name: str, m: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    if "error" in m:
        return [f"### {name}", "", f"Not measured: {m['error']}", ""]
    sr, batch, h = m["single_row"], m["batch"], m["headline"]

    def of_floor(p50: float | None) -> str:
        return "" if not p50 or not floor.get("p50_us") else f"{p50 / floor['p50_us']:.1f}x"

    lines = [
        f"### {name}",
        "",
        "| figure (median / p99) | predictlib | original pipeline | predictlib advantage | x the floor |",
        "|---|---|---|---|---|",
        f"| single row from a dict | {_lat(sr['predictlib_dict'])} | {_lat(sr['original_frame'])} (1-row DataFrame) "
        f"| {times(sr['predictlib_dict']['p50_us'], sr['original_frame']['p50_us'])} "
        f"| {of_floor(sr['predictlib_dict']['p50_us'])} |",
        f"| single row, pre-built input arrays | {_lat(sr['predictlib_prebuilt'])} | | "
        f"| {of_floor(sr['predictlib_prebuilt']['p50_us'])} |",
        *(
            f"| single row from an object, Node.js client ({backend}) | "
            f"{sr['node'][backend]['p50_us']:.1f} µs / {sr['node'][backend]['p99_us']:.1f} µs | | "
            f"| {of_floor(sr['node'][backend]['p50_us'])} |"
            for backend in ("node", "web")
            if backend in sr.get("node", {})
        ),
        f"| single row, 1-row DataFrame | {_lat(sr['predictlib_frame'])} | {_lat(sr['original_frame'])} "
        f"| {times(sr['predictlib_frame']['p50_us'], sr['original_frame']['p50_us'])} "
        f"| {of_floor(sr['predictlib_frame']['p50_us'])} |",
    ]
    for rows in sorted(batch["predictlib"], key=int):
        mine, theirs = batch["predictlib"][rows], batch["original"].get(rows)
        lines.append(
            f"| batch of {int(rows):,} row{'s' if int(rows) > 1 else ''} (DataFrame) | {_batch_cell(mine)} | {_batch_cell(theirs)} "
            f"| {times(theirs and theirs['rows_per_s'], mine['rows_per_s'])} | |"
        )
    pre = batch.get("predictlib_prebuilt", {}).get("1000000")
    if pre and "skipped" not in pre:
        lines.append(f"| batch of 1,000,000 rows, pre-built input arrays | {_batch_cell(pre)} | | | |")
    fp = m.get("footprint")
    if fp:
        cold, rss = fp["cold_start"], fp["rss"]
        a, b = cold["predictlib"], cold["original"]
        lines.append(
            f"| cold start: process start to first prediction | {seconds(a['p50_s'])} / {seconds(a['p99_s'])} "
            f"| {seconds(b['p50_s'])} / {seconds(b['p99_s'])} | {times(a['p50_s'], b['p50_s'])} | |"
        )
        pa, pb = cold["predictlib"]["phases_p50_s"], cold["original"]["phases_p50_s"]
        lines.append(
            "| ... of which interpreter start-up / imports / load / first prediction "
            f"| {_phases(pa)} | {_phases(pb)} | | |"
        )
        ra, rb = rss["predictlib"], rss["original"]
        lines.append(
            f"| RSS after load | {mb(ra['after_load']['rss'])} | {mb(rb['after_load']['rss'])} "
            f"| {times(ra['after_load']['rss'], rb['after_load']['rss'])} | |"
        )
        singles = ra.get("after_singles", {}).get("rss")
        first = ra.get("after_first", {}).get("rss")
        count = rss.get("singles", 100_000)
        lines.append(
            f"| RSS growth over {count:,} single-row predictions (after the first) | "
            f"{mb(singles - first) if singles is not None and first is not None else 'n/a'} | | | |"
        )
        lines.append(
            f"| RSS after {count:,} single-row predictions (peak) | {mb(singles)} single rows, then "
            f"{mb(ra['after_batches']['rss'])} ({mb(ra['after_batches']['peak'])}) after batches "
            f"| {mb(rb['after_batches']['rss'])} ({mb(rb['after_batches']['peak'])}) after batches | | |"
        )
    elif "footprint_error" in m:
        lines.append(f"| cold start, RSS | not measured: {m['footprint_error']} | | | |")
    lines.append(
        f"| model wheel (installed) | {kb(h.get('model_wheel_bytes'))} ({kb(h.get('model_installed_bytes'))}) "
        f"| {kb(m['build'].get('pickle_bytes'))} (pickle, never shipped) | | |"
    )
    lines.append(
        f"| onnxruntime floor (Identity graph, one float64 input) | {us(floor['p50_us'])}: predictlib from a "
        f"dict is {h['overhead_vs_floor']:.1f}x the floor | | | 1x |"
    )
    lines.append("")
    targets = m.get("targets") or []
    if targets:
        lines += ["| target | measured | required | result |", "|---|---|---|---|"]
        for t in targets:
            verdict = {True: "pass", False: "**FAIL**", None: "not measured"}[t["pass"]]
            lines.append(
                f"| {t['label']} | {fmt_value(t['figure'], t['value'])} | {t['target']} | {verdict} |"
            )
        lines.append("")
    return lines


def floor_table(models: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    """One row per model: a single row from a dict in times onnxruntime's floor (an
    Identity graph on one float64 input, measured in the same run), and its target."""
    lines = [
        f"| model | single row from a dict, p50 | x the floor ({us(floor['p50_us'])}) "
        "| pre-built input arrays, x the floor | target |",
        "|---|---|---|---|---|",
    ]
    for name, m in models.items():
        if "error" in m:
            continue
        h = m["headline"]
        target = next((t for t in m.get("targets", []) if t["figure"] == "overhead_vs_floor"), None)
        verdict = "" if target is None else f"{target['target']}: {'pass' if target['pass'] else '**FAIL**'}"
        pre = h.get("prebuilt_vs_floor")
        lines.append(
            f"| {name} | {us(h['single_row_dict_p50_us'])} | {h['overhead_vs_floor']:.1f}x "
            f"| {'' if pre is None else f'{pre:.1f}x'} | {verdict} |"
        )
    return [*lines, ""]


def _phases(p: dict[str, float]) -> str:
    return " / ".join(f"{p[k]:.3f}" for k in ("startup", "imports", "load", "first_prediction")) + " s"


def markdown(results: dict[str, Any], *, png: Path, root: Path) -> str:
    mach, ver = results["machine"], results["versions"]
    envs = results.get("environments", {})
    floor = results["onnxruntime_floor"]["identity_1x1_float64"]
    lines = [
        "# Benchmarks: predictlib against the original pipeline",
        "",
        "Generated by `nox -s bench` (`benchmarks/run.py`); raw figures in "
        "[`benchmarks/results/latest.json`](../benchmarks/results/latest.json). Do not edit by hand.",
        "",
        f"Measured {results['date']} on {mach['cpu']}, {mach['logical_cores']} cores, Python {mach['python']}; "
        f"numpy {ver['numpy']}, onnxruntime {ver['onnxruntime']} vs scikit-learn {ver['scikit-learn']}, "
        f"feature-engine {ver['feature-engine']}, pandas {ver['pandas']}. The whole run took "
        f"{results['seconds']:.0f} s.",
        "",
        f"![predictlib vs the original pipeline]({os.path.relpath(png, root / 'docs')})",
        "",
    ]
    load = max(results.get("load_average_at_start", [0])[0], results.get("load_average_at_end", [0])[0])
    if load > 0.5:
        lines += [
            f"> Note: the machine was not idle (load average up to {load:.1f} on "
            f"{mach['logical_cores']} cores): other jobs shared the CPUs, so these figures are slower "
            "and noisier than on an idle machine.",
            "",
        ]
    if "runtime" in envs:
        rt, og = envs["runtime"], envs["original"]
        lines += [
            "| installed size (site-packages, bytecode included) | predictlib stack | original stack |",
            "|---|---|---|",
            f"| total | {mb(rt['site_packages_bytes'])} (predictlib, numpy, onnxruntime and their dependencies) "
            f"| {mb(og['site_packages_bytes'])} (scikit-learn, feature-engine, pandas, scipy, numpy and "
            f"their dependencies) |",
            f"| largest | {_largest(rt['by_distribution'])} | {_largest(og['by_distribution'])} |",
            "",
        ]
    elif "error" in envs:
        lines += [f"Installed sizes not measured: {envs['error']}", ""]
    lines += floor_table(results["models"], floor)
    for name, m in results["models"].items():
        lines += model_table(name, m, floor)
    lines += [
        "How: latencies are single calls timed with `time.perf_counter_ns` after a warm-up, "
        "cycling over held-out rows (median and p99 of "
        f"{results['settings']['calls']:,} calls for predictlib, up to {results['settings']['original_calls']} "
        "for the original); batches tile the model's data, throughput is rows / median call time; "
        "cold start and RSS are fresh `python -c` processes in throwaway uv venvs holding only each stack, "
        "timed from just before the spawn to the first prediction (the OS page cache is warm); "
        '"pre-built input arrays" is the onnxruntime session of the graph predictlib runs '
        "(`model.ids.onnx` when the artifact has one: the lean graph, docs/design-graph.md) on the inputs "
        "the runtime builds (`x`, or `num` and `cat_ids`, and `dt`), in one run, i.e. predictlib minus input "
        'adaptation and chunking; "x the floor" is a p50 over the p50 of an Identity graph on one float64 '
        "value (onnxruntime's own call cost) measured in the same run. "
        "MB = 10^6 bytes.",
    ]
    return "\n".join(lines) + "\n"


def summary(results: dict[str, Any], *, full: str) -> str:
    """The README's block: one row per model, the targets missed or met, a link to the
    full tables (``full``, relative to the README)."""
    floor = results["onnxruntime_floor"]["identity_1x1_float64"]
    load = max(results.get("load_average_at_start", [0])[0], results.get("load_average_at_end", [0])[0])
    lines = [
        f"Generated by `nox -s bench` on {results['date'][:10]} ({results['machine']['logical_cores']} cores, "
        f"load average up to {load:.1f}); the full tables, per model, are in [`{full}`]({full}) and the raw "
        "figures in [`benchmarks/results/latest.json`](benchmarks/results/latest.json). Do not edit by hand.",
        "",
        f"| model | one record from a dict, p50 | against the original | x onnxruntime's floor ({us(floor['p50_us'])}) "
        "| 1M rows (DataFrame) | cold start | RSS after load |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in results["models"].items():
        if "error" in m:
            lines.append(f"| {name} | not measured: {m['error']} | | | | | |")
            continue
        h = m["headline"]
        speedup = h.get("speedup_vs_original")
        cold = h.get("cold_start_p50_s")
        rss = h.get("rss_after_load_mb")
        lines.append(
            f"| {name} | {us(h['single_row_dict_p50_us'])} | "
            f"{'-' if speedup is None else f'{speedup:,.0f}x faster'} | {h['overhead_vs_floor']:.1f}x | "
            f"{rate(h.get('batch_1m_rows_per_s'))} | {seconds(cold)} | {'-' if rss is None else f'{rss:.1f} MB'} |"
        )
    missed = [
        (name, t) for name, m in results["models"].items() for t in m.get("targets", []) if t["pass"] is False
    ]
    met = sum(1 for m in results["models"].values() for t in m.get("targets", []) if t["pass"])
    lines += ["", f"Targets: {met} met, {len(missed)} missed" + (":" if missed else ".")]
    lines += [
        f"- {name}: {t['label']}: {fmt_value(t['figure'], t['value'])} ({t['target']})" for name, t in missed
    ]
    return "\n".join(lines) + "\n"


def _largest(by: dict[str, int], n: int = 4) -> str:
    return ", ".join(f"{d} {v / 1e6:.0f}" for d, v in list(by.items())[:n]) + " (MB)"


def replace_readme(readme: Path, block: str) -> bool:
    """Replace the text between the markers; False when README.md lacks them."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return False
    new = text[: start + len(START)] + "\n" + block + text[end:]
    if new != text:
        readme.write_text(new)
    return True


# ------------------------------------------------------------------------ chart


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {n: m for n, m in results["models"].items() if "error" not in m}
    if not models:
        return
    fig, axes = plt.subplots(len(models), 2, figsize=(13, 4.2 * len(models)), squeeze=False)
    floor = results["onnxruntime_floor"]["identity_1x1_float64"]
    for row, (name, m) in enumerate(models.items()):
        _latency_panel(axes[row][0], name, m, floor)
        _throughput_panel(axes[row][1], name, m)
    fig.suptitle(
        f"predictlib vs the original pipeline, {results['machine']['cpu']}, "
        f"{results['machine']['logical_cores']} cores, {results['date'][:10]}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency_panel(ax: Any, name: str, m: dict[str, Any], floor: dict[str, Any]) -> None:
    sr = m["single_row"]
    bars = [
        ("onnxruntime floor (Identity graph)", floor, "#bbbbbb"),
        ("predictlib: pre-built input arrays", sr["predictlib_prebuilt"], "#6baed6"),
        ("predictlib: from a dict", sr["predictlib_dict"], "#2171b5"),
        ("predictlib: 1-row DataFrame", sr["predictlib_frame"], "#9ecae1"),
        ("original: 1-row DataFrame", sr["original_frame"], "#de2d26"),
    ]
    ys = range(len(bars))
    p50 = [b[1]["p50_us"] for b in bars]
    p99 = [b[1]["p99_us"] for b in bars]
    ax.barh(list(ys), p50, color=[b[2] for b in bars])
    ax.scatter(p99, list(ys), marker="|", s=300, color="black", label="p99", zorder=3)
    for y, v, tail in zip(ys, p50, p99, strict=True):
        ax.text(max(v, tail) * 1.3, y, us(v), va="center", fontsize=8)
    targets = {t["figure"]: t for t in m.get("targets", [])}
    if "single_row_dict_p50_us" in targets:
        limit = float(targets["single_row_dict_p50_us"]["target"].split()[1])
        ax.axvline(limit, color="green", lw=0.8, ls="--", label=f"target: {limit:g} µs from a dict")
    ax.set_yticks(list(ys), [b[0] for b in bars], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("single-row latency, µs (log scale; bar = median, | = p99)")
    ax.set_title(f"{name}: single-row latency")
    ax.set_xlim(min(p50) / 2, max(p99) * 8)
    ax.legend(loc="lower right", fontsize=8)


def _throughput_panel(ax: Any, name: str, m: dict[str, Any]) -> None:
    batch = m["batch"]

    def series(d: dict[str, Any], extrapolated: bool) -> tuple[list[int], list[float]]:
        pts = sorted(
            (int(k), v["rows_per_s"])
            for k, v in d.items()
            if "rows_per_s" in v and bool(v.get("extrapolated")) == extrapolated
        )
        return [p[0] for p in pts], [p[1] for p in pts]

    x, y = series(batch["predictlib"], False)
    ax.plot(x, y, "o-", color="#2171b5", label="predictlib (DataFrame)")
    x, y = series(batch.get("predictlib_prebuilt", {}), False)
    if x:
        ax.plot(x, y, "s--", color="#6baed6", label="predictlib (pre-built input arrays)")
    x, y = series(batch["original"], False)
    ax.plot(x, y, "o-", color="#de2d26", label="original (DataFrame)")
    xe, ye = series(batch["original"], True)
    if xe:
        ax.plot([x[-1], *xe], [y[-1], *ye], ":", color="#de2d26", label="original, extrapolated (not run)")
        ax.scatter(xe, ye, facecolors="none", edgecolors="#de2d26")
    targets = {t["figure"]: t for t in m.get("targets", [])}
    if "batch_1m_rows_per_s" in targets:
        ax.axhline(1e6, color="green", lw=0.8, ls="--", label="target: 1M rows/s at 1M rows")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size, rows (log scale)")
    ax.set_ylabel("rows/s (median; log scale)")
    ax.set_title(f"{name}: batch throughput")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
