"""The model card: one self-contained HTML page (``predictlib card MODEL -o card.html``).

What the model predicts, its version and build versions, its inputs and what each
refuses, held-out metrics, the equivalence report, benchmark figures when given, the
training profile as small inline SVG charts, and a try-it form generated from the
manifest that predicts in the page with onnxruntime-web (wasm): the model bytes, the
JavaScript client of ``embed/node/client.js`` (the same input contract and refusals
as every predictlib runtime) and onnxruntime-web's JavaScript and wasm are embedded
(gzip + base64), so the page needs no server beyond whatever loads it.

onnxruntime-web comes from npm, never from this package: the runtime wheel depends on
numpy and onnxruntime only. :func:`find_ort_web` looks for its files (``--ort-web DIR``,
``$PREDICTLIB_ORT_WEB``, then ``node_modules/onnxruntime-web`` and
``embed/node/node_modules/onnxruntime-web`` under the current folder); ``docs/monitoring.md``
explains the choice.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import gzip
import html
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._drift import PROFILE_FILE
from ._errors import PredictlibError

#: onnxruntime-web's files the card embeds: the wasm-only ES module bundle (its
#: Emscripten glue included) and the wasm binary it instantiates
ORT_BUNDLE = "ort.wasm.bundle.min.mjs"
ORT_WASM = "ort-wasm-simd-threaded.wasm"
#: the oldest onnxruntime-web that runs predictlib's graphs (ai.onnx.ml opset 5 trees)
ORT_WEB_MIN = (1, 20)
ORT_WEB_ENV = "PREDICTLIB_ORT_WEB"
#: where find_ort_web looks, relative to the current folder, after --ort-web and the variable
ORT_WEB_PLACES = ("node_modules/onnxruntime-web", "embed/node/node_modules/onnxruntime-web")
#: examples offered in the try-it form: golden records, accepted then refused
EXAMPLES_ACCEPTED = 5
EXAMPLES_REFUSED = 4
#: category bars drawn per column (the most frequent)
CHART_CATEGORIES = 8

GOLDEN_FILE = "golden.json"
_CLIENT = "_web/client.js"


class CardError(PredictlibError):
    """The card cannot be written as asked (onnxruntime-web not found, ...)."""


# ------------------------------------------------------------------ onnxruntime-web
@dataclass(frozen=True)
class OrtWeb:
    """onnxruntime-web's files for the try-it form: embedded, or loaded from ``url``."""

    version: str
    bundle: bytes = b""
    wasm: bytes = b""
    url: str | None = None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def find_ort_web(directory: str | os.PathLike[str] | None = None) -> OrtWeb:
    """onnxruntime-web's files from ``directory`` (the npm package folder or its
    ``dist``), else from :data:`ORT_WEB_ENV`, else from :data:`ORT_WEB_PLACES`."""
    candidates: list[Path] = []
    if directory is not None:
        candidates = [Path(directory)]
    elif os.environ.get(ORT_WEB_ENV):
        candidates = [Path(os.environ[ORT_WEB_ENV])]
    else:
        candidates = [Path.cwd() / place for place in ORT_WEB_PLACES]
    for folder in candidates:
        for dist in (folder / "dist", folder):
            if (dist / ORT_BUNDLE).is_file() and (dist / ORT_WASM).is_file():
                return _read_ort_web(dist)
    where = ", ".join(str(c) for c in candidates)
    raise CardError(
        f"the try-it form needs onnxruntime-web's {ORT_BUNDLE} and {ORT_WASM}, not found in {where}. "
        "Install them with npm (npm install onnxruntime-web@1.23.2) and pass --ort-web "
        "node_modules/onnxruntime-web (or set PREDICTLIB_ORT_WEB), load them from a URL with "
        "--ort-url, or write the card without the form (--no-try-it)"
    )


def _read_ort_web(dist: Path) -> OrtWeb:
    version = "unknown"
    package = dist.parent / "package.json"
    if package.is_file():
        with contextlib.suppress(OSError, ValueError):
            version = str(json.loads(package.read_text(encoding="utf-8")).get("version", "unknown"))
    if version != "unknown" and _version_tuple(version)[:2] < ORT_WEB_MIN:
        raise CardError(
            f"{dist}: onnxruntime-web {version} is older than predictlib's graphs need "
            f"({'.'.join(map(str, ORT_WEB_MIN))} or newer)"
        )
    return OrtWeb(version, (dist / ORT_BUNDLE).read_bytes(), (dist / ORT_WASM).read_bytes())


def _packed(data: bytes) -> str:
    """gzip (no timestamp: the same bytes give the same card) and base64."""
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def client_source() -> str:
    """The JavaScript client (``embed/node/client.js``, shipped in the wheel)."""
    text = resources.files("predictlib").joinpath(_CLIENT).read_text(encoding="utf-8")
    if "</script" in text.lower():
        raise CardError("the JavaScript client holds '</script': it cannot be inlined in the card")
    return text


# ------------------------------------------------------------------------- helpers
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    """A number for people: thousands separated, 4 significant digits for non-integers."""
    if value is None:
        return "-"
    if isinstance(value, dict) and "$float" in value:
        return {"nan": "NaN", "inf": "∞", "-inf": "-∞"}[value["$float"]]
    x = float(value)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x)}" if abs(x) < 10_000 else f"{int(x):,}"
    if 1e-3 <= abs(x) < 1e6:
        return f"{x:,.4g}"
    return f"{x:.4g}"


def _share(x: float) -> str:
    return f"{100 * x:.1f}%"


def _when(ns: int) -> str:
    moment = _dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=ns // 1000)
    return moment.strftime("%Y-%m-%d") if moment.time() == _dt.time() else moment.isoformat(sep=" ")


def _json_script(element_id: str, value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _blob(element_id: str, data: bytes) -> str:
    return f'<script type="application/octet-stream" id="{element_id}" data-encoding="gzip+base64">{_packed(data)}</script>'


# -------------------------------------------------------------------------- charts
_W, _H = 260, 64


def _svg(body: str, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {_H + 14}" width="{_W}" height="{_H + 14}" role="img" '
        f'aria-label="{_e(label)}">{body}</svg>'
    )


def _to_float(value: Any) -> float:
    if isinstance(value, dict):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[value["$float"]]
    return float(value)


def histogram_svg(column: Mapping[str, Any]) -> str:
    """A density histogram of a profiled numeric / datetime column on its value axis:
    each bin between its edges (the outer ones closed by the training min and max),
    its height the bin's share over its width (narrow bins of repeated values drawn
    at least 1% of the axis wide)."""
    datetime = column.get("kind") == "datetime"
    low = column.get("min_ns") if datetime else column.get("min")
    high = column.get("max_ns") if datetime else column.get("max")
    counts = column["histogram"]["counts"]
    total = sum(counts)
    if low is None or high is None or not total:
        return _svg('<text x="4" y="20" class="note">no values</text>', column["name"])
    lo, hi = _to_float(low), _to_float(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _svg('<text x="4" y="20" class="note">infinite values: no chart</text>', column["name"])
    edges = [_to_float(e) for e in column["histogram"]["edges"]]
    bounds = [lo, *edges, hi]
    span = hi - lo
    bars = []
    if span <= 0:
        bars.append((0.0, 1.0, 1.0))
    else:
        least = span / len(counts)  # a bin of one repeated value drawn one average bin wide
        for k, count in enumerate(counts):
            a, b = max(bounds[k], lo), min(bounds[k + 1], hi)
            if count == 0 or b < a:
                continue
            width = max(b - a, least)
            bars.append(((a - lo) / span, width / span, count / total / width))
    top = max(d for _, _, d in bars) or 1.0
    rects = "".join(
        f'<rect x="{x * (_W - 2):.1f}" y="{_H - d / top * (_H - 4):.1f}" width="{max(w * (_W - 2), 1.5):.1f}" '
        f'height="{d / top * (_H - 4):.1f}"/>'
        for x, w, d in bars
    )
    left, right = (_when(int(lo)), _when(int(hi))) if datetime else (_num(lo), _num(hi))
    axis = (
        f'<line x1="0" y1="{_H}" x2="{_W}" y2="{_H}" class="axis"/>'
        f'<text x="0" y="{_H + 12}" class="tick">{_e(left)}</text>'
        f'<text x="{_W}" y="{_H + 12}" class="tick" text-anchor="end">{_e(right)}</text>'
    )
    return _svg(rects + axis, f"histogram of {column['name']}")


def bars_svg(name: str, items: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars: (label, share) per line."""
    rows = list(items)
    height = 14 * len(rows) + 2
    lines = []
    for k, (label, share) in enumerate(rows):
        y = 14 * k
        text = label if len(label) <= 18 else label[:17] + "…"
        lines.append(
            f'<text x="0" y="{y + 10}" class="tick">{_e(text)}</text>'
            f'<rect x="110" y="{y + 2}" width="{max(share * 110, 0.5):.1f}" height="10"/>'
            f'<text x="{114 + share * 110:.1f}" y="{y + 10}" class="tick">{_share(share)}</text>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" role="img" '
        f'aria-label="{_e("categories of " + name)}">{"".join(lines)}</svg>'
    )


def categories_svg(column: Mapping[str, Any]) -> str:
    present = column["rows"] - column["missing"]
    if not present:
        return bars_svg(column["name"], [("(missing)", 1.0)])
    shown = column["categories"][:CHART_CATEGORIES]
    rest = present - sum(c["count"] for c in shown)
    items = [(str(c["value"]), c["count"] / column["rows"]) for c in shown]
    if rest:
        items.append((f"{column['distinct'] - len(shown)} others", rest / column["rows"]))
    if column["missing"]:
        items.append(("(missing)", column["missing"] / column["rows"]))
    return bars_svg(column["name"], items)


# ------------------------------------------------------------------------- content
_REFUSED_BY_KIND = {
    "number": "bool, text (even '12.5'), numbers beyond float64",
    "category": "numbers and other values that are not text, the reserved text __predictlib_missing__, "
    "text that is not valid Unicode",
    "datetime": "text, numbers, timezone-aware values, dates outside 1677-09-21 to 2262-04-11",
}


def _summary(column: Mapping[str, Any] | None) -> str:
    if column is None:
        return ""
    missing = f", missing {_share(column['missing_share'])}" if column.get("missing") else ""
    if column["kind"] == "category":
        top = ", ".join(_e(c["value"]) for c in column["categories"][:3])
        return f"{column['distinct']} categories ({top}…){missing}"
    if column["kind"] == "datetime":
        if column.get("min_ns") is None:
            return "no values"
        return f"{_when(column['min_ns'])} to {_when(column['max_ns'])}{missing}"
    quantiles = column.get("quantiles") or {}
    median = dict(zip(quantiles.get("levels", []), quantiles.get("values", []), strict=False)).get(0.5)
    return f"{_num(column['min'])} to {_num(column['max'])}, median {_num(median)}{missing}"


def _form_value(value: Any, kind: str) -> str | None:
    """How the form holds a golden record's value (the page's parse gives it back), or
    None when the form cannot (e.g. a bool): see ``formValue`` in the page."""
    if value is None:
        return ""
    if isinstance(value, dict) and set(value) == {"$float"}:
        if value["$float"] == "nan":
            return ""  # missing, in any column
        return value["$float"] if kind == "number" else None
    if isinstance(value, dict) and set(value) == {"$datetime"}:
        return value["$datetime"] if kind == "datetime" else None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return repr(value) if kind == "number" else None
    if isinstance(value, str):
        if value == "" or (
            kind == "number" and re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", value)
        ):
            return None
        return value if kind != "datetime" else None
    return None


def _examples(golden: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A few golden records the form can hold: accepted ones, then refused ones (one per reason)."""
    kinds = {c["name"]: c["kind"] for c in manifest["inputs"]["columns"]}

    def form(record: Mapping[str, Any]) -> dict[str, str] | None:
        values = {}
        for name, kind in kinds.items():
            if name not in record:
                return None
            text = _form_value(record[name], kind)
            if text is None:
                return None
            values[name] = text
        return values

    out: list[dict[str, Any]] = []
    for item in golden.get("accepted", []):
        values = form(item["record"])
        if values is not None and len([e for e in out if e["kind"] == "accepted"]) < EXAMPLES_ACCEPTED:
            out.append(
                {
                    "kind": "accepted",
                    "label": f"golden record {item['id']} ({item['source']})",
                    "values": values,
                }
            )
    reasons: set[str] = set()
    for item in golden.get("refused", []):
        values = form(item["record"])
        reason = item["problems"][0]["reason"] if item["problems"] else ""
        if values is None or reason in reasons or len(reasons) >= EXAMPLES_REFUSED:
            continue
        reasons.add(reason)
        out.append(
            {
                "kind": "refused",
                "label": f"golden record {item['id']} (refused: {reason[:60]})",
                "values": values,
            }
        )
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _metrics_html(manifest: Mapping[str, Any]) -> str:
    metrics = manifest.get("metrics") or {}
    held = metrics.get("held_out") or {}
    if not held:
        return "<p>No held-out metrics were recorded.</p>"
    acceptance = metrics.get("acceptance") or {}
    rows = [[_e(k), _e(f"{v:.6g}" if isinstance(v, float) else v)] for k, v in held.items()]
    text = _table(["metric", "held-out value"], rows)
    if acceptance:
        text += (
            "<p>Acceptance (the build fails otherwise): "
            + ", ".join(f"{_e(k)} {_e(v)}" for k, v in acceptance.items())
            + "</p>"
        )
    return text


def _equivalence_html(manifest: Mapping[str, Any]) -> str:
    eq = manifest.get("equivalence") or {}
    sets = [(k, v) for k, v in eq.items() if isinstance(v, Mapping) and "rows" in v]
    if not sets:
        return "<p>No equivalence report.</p>"
    tol = eq.get("tolerance") or {}
    rows = [
        [
            _e(k),
            _num(v["rows"]),
            _num(v.get("accepted")),
            _num(v.get("refused")),
            _num(v.get("refusals_confirmed_by_original")),
            _e(f"{v.get('max_abs_error', 0):.3g}"),
            _e(f"{v.get('max_rel_error', 0):.3g}"),
            _e(v.get("label_disagreements", "")),
            _e(v.get("failures", "")),
        ]
        for k, v in sets
    ]
    header = ["records", "rows", "predicted", "refused", "refusals confirmed", "max abs error", "max rel error",
              "label disagreements", "failures"]  # fmt: skip
    ort = (manifest.get("files") or {}).get("model.ort", {}).get("verification")
    extra = ""
    if ort:
        extra = (
            f"<p>model.ort (onnxruntime mobile) on the golden records: {_num(ort.get('golden_accepted'))} "
            f"accepted, {_num(ort.get('golden_refused'))} refused, max rel error "
            f"{_e(format(ort.get('max_rel_error', 0), '.3g'))}, failures {_e(ort.get('failures'))}.</p>"
        )
    return (
        f"<p>Every build runs the graph through the predictlib runtime against the original pipeline; "
        f"a prediction matches when |a - b| ≤ {_e(tol.get('atol'))} + {_e(tol.get('rtol'))}·|b|, and where "
        f"the original raises, the graph must refuse.</p>" + _table(header, rows) + extra
    )


def _benchmarks_html(name: str, benchmarks: Mapping[str, Any] | None, source: str) -> str:
    model = (benchmarks or {}).get("models", {}).get(name) if benchmarks else None
    if not model:
        return ""
    head = model.get("headline") or {}
    labels = {
        "single_row_dict_p50_us": ("single row from a dict, median", "µs"),
        "single_row_dict_p99_us": ("single row from a dict, p99", "µs"),
        "speedup_vs_original": ("times faster than the original pipeline (single row)", "x"),
        "batch_1m_rows_per_s": ("throughput at 1,000,000 rows", "rows/s"),
        "cold_start_p50_s": ("cold start to the first prediction, median", "s"),
        "rss_after_load_mb": ("resident memory after load", "MB"),
        "model_wheel_bytes": ("model wheel", "bytes"),
    }
    rows = [[_e(label), f"{_num(head[key])} {unit}"] for key, (label, unit) in labels.items() if key in head]
    wheel = (model.get("wheel") or {}).get("file", "")
    machine = benchmarks.get("machine", {}) if benchmarks else {}
    note = (
        f"<p>Measured {_e(benchmarks.get('date', '') if benchmarks else '')} on {_e(machine.get('cpu', ''))} "
        f"({_e(machine.get('logical_cores', ''))} cores) by <code>nox -s bench</code> ({_e(source)}), "
        f"wheel {_e(wheel)}.</p>"
    )
    return "<section><h2>Benchmarks</h2>" + note + _table(["figure", "value"], rows) + "</section>"


def _profile_html(profile: Mapping[str, Any] | None, manifest: Mapping[str, Any]) -> str:
    if profile is None:
        return "<section><h2>Training profile</h2><p>This artifact carries no training profile.</p></section>"
    cells = []
    for column in profile["columns"]:
        chart = categories_svg(column) if column["kind"] == "category" else histogram_svg(column)
        cells.append(
            f'<figure><figcaption><b>{_e(column["name"])}</b> <span class="kind">{_e(column["kind"])}</span>'
            f"<br><small>{_summary(column)}</small></figcaption>{chart}</figure>"
        )
    predictions = profile["predictions"]
    if predictions.get("kind") == "label":
        total = predictions["rows"] or 1
        chart = bars_svg(
            "predicted classes", [(str(c["value"]), c["count"] / total) for c in predictions["classes"]]
        )
        what = "predicted class shares"
    else:
        chart = histogram_svg(predictions)
        unit = (manifest["outputs"].get("prediction") or {}).get("unit", "")
        what = f"predictions{f' ({_e(unit)})' if unit else ''}: {_summary(predictions)}"
    return (
        "<section><h2>Training profile</h2>"
        f"<p>{_num(profile['rows'])} training rows, as the build profiled them (<code>{PROFILE_FILE}</code>, "
        "sealed in the manifest): what <code>predictlib drift</code> and <code>model.monitor()</code> compare "
        "new data with. Histograms are densities on each column's training range, with bins between "
        "training deciles.</p>"
        f'<figure class="wide"><figcaption><b>the model\'s predictions on its training rows</b><br>'
        f"<small>{what}</small></figcaption>{chart}</figure>"
        f'<div class="grid">{"".join(cells)}</div></section>'
    )


def _inputs_html(manifest: Mapping[str, Any], profile: Mapping[str, Any] | None) -> str:
    by_name = {c["name"]: c for c in (profile or {}).get("columns", [])}
    rows = []
    for column in manifest["inputs"]["columns"]:
        rules = sorted({r.split(" [step")[0] for r in column.get("refused_when", [])})
        refused = "; ".join(_e(r) for r in rules)
        rows.append(
            [
                f"<code>{_e(column['name'])}</code>",
                _e(column["kind"]),
                _summary(by_name.get(column["name"])),
                f'<span class="type">{_e(_REFUSED_BY_KIND.get(column["kind"], ""))}</span>'
                + (f"<br>{refused}" if refused else ""),
            ]
        )
    return _table(
        ["input", "kind", "training data", "refused (type; values the pipeline refuses)"], rows, "inputs"
    )


def _form_html(manifest: Mapping[str, Any], profile: Mapping[str, Any] | None) -> str:
    by_name = {c["name"]: c for c in (profile or {}).get("columns", [])}
    fields = []
    lists = []
    for i, column in enumerate(manifest["inputs"]["columns"]):
        kind = column["kind"]
        prof = by_name.get(column["name"])
        hint = {
            "number": "a number",
            "category": "a category",
            "datetime": "ISO 8601, e.g. 2008-02-01T00:00:00",
        }[kind]
        extra = ""
        if kind == "category" and prof:
            lists.append(
                f'<datalist id="list-{i}">'
                + "".join(f'<option value="{_e(c["value"])}">' for c in prof["categories"])
                + "</datalist>"
            )
            extra = f' list="list-{i}"'
        fields.append(
            f'<label for="f-{i}"><span>{_e(column["name"])}</span>'
            f'<input id="f-{i}" data-index="{i}" data-column="{_e(column["name"])}" data-kind="{_e(kind)}" '
            f'placeholder="{_e(hint)}; empty = missing" autocomplete="off"{extra}></label>'
        )
    return "".join(fields) + "".join(lists)


# ---------------------------------------------------------------------------- page
def render_card(
    model: Any,
    *,
    ort: OrtWeb | None,
    benchmarks: Mapping[str, Any] | None = None,
    benchmarks_source: str = "",
) -> str:
    """The card of ``model`` (a :class:`predictlib.Model`) as HTML text; ``ort``: the
    onnxruntime-web files for the try-it form (None: no form)."""
    manifest = json.loads(json.dumps(_plain(model.manifest)))
    files = manifest.get("files") or {}
    profile = json.loads(model.read_file(PROFILE_FILE)) if PROFILE_FILE in files else None
    golden = json.loads(model.read_file(GOLDEN_FILE)) if GOLDEN_FILE in files else {}
    model_bytes = model.read_file("model.onnx")
    task = manifest["task"]
    outputs = manifest["outputs"]
    training = manifest.get("training") or {}
    if task == "classification":
        what = (
            "the class of "
            + ", ".join(_e(c) for c in outputs["label"]["classes"])
            + " (label and probabilities)"
        )
    else:
        unit = outputs["prediction"].get("unit", "")
        what = "a number" + (f" in {_e(unit)}" if unit else "")
    target = f" (target <code>{_e(training['target'])}</code>)" if training.get("target") else ""
    build = manifest.get("build") or {}
    integrity = manifest.get("integrity") or {}
    facts = [
        ["task", _e(task)],
        ["predicts", what + target],
        ["version", _e(manifest["version"])],
        ["inputs", f"{len(manifest['inputs']['columns'])} columns"],
        [
            "training",
            f"{_num(training.get('train_rows'))} rows (data sha256 <code>{_e(str(training.get('data_sha256', '-'))[:16])}…</code>)",
        ],
        ["built with", ", ".join(f"{_e(k)} {_e(v)}" for k, v in build.items())],
        ["runtime", f"numpy + onnxruntime; {_e((manifest.get('runtime') or {}).get('requires', ''))}"],
        ["model.onnx sha256", f"<code>{_e(integrity.get('model_sha256', ''))}</code>"],
        ["manifest sha256", f"<code>{_e(integrity.get('manifest_sha256', ''))}</code>"],
    ]
    release = manifest.get("release") or {}
    if release.get("status"):
        facts.append(["release", _e(release["status"])])
    data = {
        "manifest": manifest,
        "examples": _examples(golden, manifest) if golden else [],
        "ort": None if ort is None else {"version": ort.version, "url": ort.url},
    }
    blobs = ""
    try_it = "<p>This card was written without the try-it form (<code>--no-try-it</code>).</p>"
    script = ""
    if ort is not None:
        blobs = _blob("blob-model", model_bytes)
        if ort.url is None:
            blobs += _blob("blob-ort", ort.bundle) + _blob("blob-wasm", ort.wasm)
        try_it = (
            '<p id="status" data-state="loading">Loading onnxruntime-web…</p>'
            '<form id="try-it" autocomplete="off"><div class="actions">'
            '<select id="examples"><option value="">fill with an example…</option></select>'
            '<button type="submit" id="predict" disabled>Predict</button>'
            '<button type="button" id="clear">Clear</button></div>'
            '<div id="result" data-status="none"></div>'
            f'<div class="fields">{_form_html(manifest, profile)}</div></form>'
            "<p class=note>Empty fields are missing values. Numbers: digits, <code>inf</code>, <code>-inf</code> "
            "(other text is given to the model as text, which it refuses, as any predictlib runtime does); "
            "datetimes: ISO 8601 without time zone.</p>"
        )
        script = (
            "<script>\nwindow.predictlibClient = (function () {\n"
            "  const module = { exports: {} };\n"
            "  // node:crypto, node:fs and node:path serve load() under Node, never used here\n"
            "  const require = () => ({});\n"
            + client_source()
            + "\n  return module.exports;\n})();\n</script>\n"
            + f'<script type="module">\n{_PAGE_JS}\n</script>'
        )
    title = f"{manifest['name']} {manifest['version']}"
    body = (
        f"<header><h1>{_e(manifest['name'])} <small>{_e(manifest['version'])}</small></h1>"
        f"<p class=lead>{_e(manifest.get('description', ''))}</p></header>"
        f"<section><h2>The model</h2>{_table(['', ''], facts, 'facts')}</section>"
        f"<section><h2>Try it</h2><p>Predicts in this page with onnxruntime-web "
        f"{_e(ort.version if ort else '')} (wasm) on the embedded model.onnx, refusing what every predictlib "
        f"runtime refuses, with the reasons.</p>{try_it}</section>"
        f"<section><h2>Held-out metrics</h2>{_metrics_html(manifest)}</section>"
        f"<section><h2>Equivalence with the original pipeline</h2>{_equivalence_html(manifest)}</section>"
        + _benchmarks_html(manifest["name"], benchmarks, benchmarks_source)
        + f"<section><h2>Inputs</h2>{_inputs_html(manifest, profile)}</section>"
        + _profile_html(profile, manifest)
        + f"<footer>Written by <code>predictlib card</code> from the sealed artifact of {_e(title)}.</footer>"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · predictlib model card</title><style>{_CSS}</style></head>\n<body>"
        + body
        + _json_script("card-data", data)
        + blobs
        + script
        + "</body></html>\n"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_card(
    model: Any,
    output: str | os.PathLike[str],
    *,
    ort: OrtWeb | None,
    benchmarks: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the card of ``model`` to ``output`` (see :func:`render_card`)."""
    figures = None
    source = ""
    if benchmarks is not None:
        path = Path(benchmarks)
        try:
            figures = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CardError(f"{path}: cannot read the benchmark results ({exc})") from None
        source = path.name
    text = render_card(model, ort=ort, benchmarks=figures, benchmarks_source=source)
    out = Path(output)
    out.write_text(text, encoding="utf-8")
    return out


_CSS = """
:root{--fg:#1d2329;--muted:#5b6670;--line:#d8dee4;--accent:#2f6fb1;--bad:#b3261e;--ok:#1e7b34}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);margin:0 auto;max-width:1100px;padding:1rem 1.5rem}
h1 small{color:var(--muted);font-weight:normal}h2{border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:2rem}
.lead{font-size:1.1rem;color:var(--muted)}table{border-collapse:collapse;margin:.5rem 0}
td,th{border-bottom:1px solid var(--line);padding:.25rem .6rem;text-align:left;vertical-align:top}
table.facts td:first-child{color:var(--muted);white-space:nowrap}table.inputs td:nth-child(4){font-size:.85rem}
.type{color:var(--muted)}code{font-size:.85rem}.note,.kind,.tick{color:var(--muted)}.note{font-size:.85rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:.8rem}
figure{margin:0}figcaption{font-size:.85rem;margin-bottom:.2rem}
svg.chart rect{fill:var(--accent)}svg.chart .axis{stroke:var(--line)}svg.chart text{font-size:9px;fill:var(--muted)}
.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:.3rem .8rem;margin:.6rem 0}
.fields label{display:flex;flex-direction:column;font-size:.8rem}.fields input{font:inherit;padding:.2rem .3rem}
.actions{display:flex;gap:.5rem}#result{margin-top:.6rem;padding:.6rem;border-radius:4px}
#result[data-status=ok]{background:#eef7f0;border:1px solid var(--ok)}
#result[data-status=refused],#result[data-status=error]{background:#fbeeee;border:1px solid var(--bad)}
#result .value{font-size:1.4rem;font-weight:600}footer{margin:2rem 0;color:var(--muted);font-size:.8rem}
"""

_PAGE_JS = r"""
const $ = (id) => document.getElementById(id);
const card = JSON.parse($('card-data').textContent);
const manifest = card.manifest;
const columns = manifest.inputs.columns;
const fields = columns.map((c, i) => $('f-' + i));
const status = (text, state) => { const s = $('status'); s.textContent = text; s.dataset.state = state; };

async function unpack(id) {
  const text = $(id).textContent.trim();
  const packed = await (await fetch('data:application/octet-stream;base64,' + text)).blob();
  const stream = packed.stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function loadOrt() {
  let ort;
  if (card.ort.url) {
    const base = card.ort.url.endsWith('/') ? card.ort.url : card.ort.url + '/';
    ort = await import(base + 'ort.wasm.bundle.min.mjs');
    ort.env.wasm.wasmPaths = base;
  } else {
    const source = await unpack('blob-ort');
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    ort = await import(url);
    // the wasm as a blob URL: with env.wasm.wasmBinary, the bundle still resolves the wasm's
    // URL against its own, which a blob: URL cannot be the base of
    const wasm = new Blob([await unpack('blob-wasm')], { type: 'application/wasm' });
    ort.env.wasm.wasmPaths = { wasm: URL.createObjectURL(wasm) };
  }
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return ort;
}

async function sha256(bytes) {
  if (!(globalThis.crypto && crypto.subtle)) return null;
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/** A field's text as the value given to the model (see the note under the form). */
function formValue(text, kind) {
  if (text === '') return null;
  if (kind === 'number') {
    if (DECIMAL.test(text)) return Number(text);
    const word = text.trim().toLowerCase();
    if (word === 'nan') return NaN;
    if (['inf', '+inf', 'infinity', '+infinity'].includes(word)) return Infinity;
    if (['-inf', '-infinity'].includes(word)) return -Infinity;
  }
  return text;
}

function show(value) {
  if (value === null || value === undefined) return 'missing';
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

let runs = 0;

function render(result) {
  const box = $('result');
  box.replaceChildren();
  box.dataset.status = result.ok ? 'ok' : 'refused';
  box.dataset.run = String(++runs);
  if (result.ok) {
    const out = result.output;
    const line = document.createElement('p');
    const value = document.createElement('span');
    value.className = 'value';
    if (manifest.task === 'regression') {
      value.id = 'prediction';
      value.dataset.value = String(out);
      value.textContent = out.toLocaleString('en-US', { maximumSignificantDigits: 8 });
      const unit = (manifest.outputs.prediction || {}).unit;
      line.append('prediction: ', value, unit ? ' ' + unit : '');
    } else {
      value.id = 'label';
      value.dataset.value = String(out.label);
      value.textContent = String(out.label);
      line.append('predicted class: ', value);
    }
    box.append(line);
    if (manifest.task === 'classification') {
      const table = document.createElement('table');
      table.id = 'probabilities';
      manifest.outputs.probabilities.classes.forEach((c, k) => {
        const row = table.insertRow();
        row.insertCell().textContent = String(c);
        const cell = row.insertCell();
        cell.dataset.value = String(out.probabilities[k]);
        cell.textContent = (100 * out.probabilities[k]).toFixed(2) + '%';
      });
      box.append(table);
    }
  } else {
    const head = document.createElement('p');
    head.textContent = 'Refused:';
    const list = document.createElement('ul');
    list.id = 'problems';
    for (const p of result.problems) {
      const item = document.createElement('li');
      item.dataset.column = p.column === null ? '' : String(p.column);
      item.dataset.code = p.code;
      const name = document.createElement('b');
      name.textContent = p.column === null ? 'input' : p.column;
      const reason = document.createElement('span');
      reason.className = 'reason';
      reason.textContent = p.reason;
      item.append(name, ` (value ${p.value === undefined ? 'absent' : show(p.value)}): `, reason);
      list.append(item);
    }
    box.append(head, list);
  }
}

async function main() {
  const ort = await loadOrt();
  status('Loading the model…', 'loading');
  const bytes = await unpack('blob-model');
  const digest = await sha256(bytes);
  if (digest !== null && digest !== manifest.integrity.model_sha256) {
    throw new Error(`the embedded model.onnx does not match its manifest (sha256 ${digest})`);
  }
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all', logSeverityLevel: 3,
  });
  const model = new window.predictlibClient.Model(manifest, session, ort, {
    source: 'model card', file: 'model.onnx', backend: 'web',
  });
  const examples = $('examples');
  card.examples.forEach((example, k) => {
    const option = document.createElement('option');
    option.value = String(k);
    option.textContent = example.label;
    examples.append(option);
  });
  examples.addEventListener('change', () => {
    const example = card.examples[Number(examples.value)];
    if (!example) return;
    columns.forEach((c, i) => { fields[i].value = example.values[c.name]; });
  });
  $('clear').addEventListener('click', () => { fields.forEach((f) => { f.value = ''; }); $('result').replaceChildren(); });
  $('try-it').addEventListener('submit', async (event) => {
    event.preventDefault();
    const record = {};
    columns.forEach((c, i) => { record[c.name] = formValue(fields[i].value, c.kind); });
    try {
      const [result] = await model.evaluate([record]);
      render(result.ok ? result : { ok: false, problems: result.problems });
    } catch (error) {
      $('result').dataset.status = 'error';
      $('result').dataset.run = String(++runs);
      $('result').textContent = String(error);
    }
  });
  $('predict').disabled = false;
  status(`Ready: onnxruntime-web ${ort.env.versions ? ort.env.versions.web || '' : ''} (wasm), model.onnx ` +
    (digest ? 'sha256 checked.' : '(sha256 not checked: no Web Crypto here).'), 'ready');
}

main().catch((error) => status('The try-it form could not start: ' + error, 'error'));
"""
