"""The model card of every bundled model in a real headless Chromium (Debian's
``chromium``, driven by Playwright with that binary; no browser is downloaded): the page
is served from a local HTTP server on 127.0.0.1, the try-it form is filled with a golden
record and shows the Python runtime's prediction; a refused record shows its reasons.

Skipped only when ``chromium`` is not installed (CI installs it: .ci/run). onnxruntime-web
comes from embed/node's locked npm dependencies (``npm ci`` when missing), as for
tests/test_embed_node.py.
"""

from __future__ import annotations

import functools
import http.server
import json
import math
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embed_harness import EMBED, npm_ci

import predictlib
from predictlib._card import ORT_BUNDLE, find_ort_web, render_card
from predictlib._cli import main
from predictlib.build.project import Built
from predictlib.build.stages.golden import decode, within_tolerance

CHROMIUM = shutil.which("chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def ort_web() -> Path:
    """onnxruntime-web's npm package (embed/node's locked dependency)."""
    package = EMBED / "node_modules" / "onnxruntime-web"
    if not (package / "dist" / ORT_BUNDLE).is_file():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install onnxruntime-web for the card (embed/node)"
        npm_ci(npm)
    return package


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ort_web: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving a folder (cards, and onnxruntime-web's dist)."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(ort_web / "dist", root / "ort")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def form_text(value: Any, kind: str) -> str:
    """A golden record's value as a person types it in the form (empty = missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if kind == "datetime":
        return str(value)  # numpy datetime64: ISO 8601
    if isinstance(value, float):
        return "inf" if value == math.inf else "-inf" if value == -math.inf else repr(value)
    return str(value)


def representable(record: dict[str, Any], manifest: dict[str, Any]) -> bool:
    """Whether the form can hold the record as it is (every column, numbers as numbers,
    categories as non-empty text, datetimes as datetimes)."""
    for column in manifest["inputs"]["columns"]:
        if column["name"] not in record:
            return False
        value = record[column["name"]]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        kind = column["kind"]
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return False
        if kind == "category" and (not isinstance(value, str) or value == ""):
            return False
        if kind == "datetime" and type(value).__name__ != "datetime64":
            return False
    return True


def fill(page: Any, manifest: dict[str, Any], record: dict[str, Any]) -> None:
    for i, column in enumerate(manifest["inputs"]["columns"]):
        page.fill(f"#f-{i}", form_text(record[column["name"]], column["kind"]))


def open_card(browser: Any, url: str) -> Any:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#status[data-state=ready], #status[data-state=error]", timeout=120_000)
    assert page.get_attribute("#status", "data-state") == "ready", (page.inner_text("#status"), errors)
    assert "sha256 checked" in page.inner_text("#status")
    return page


def predict(page: Any) -> str:
    """Click Predict, wait for the page's next result and return its status."""
    run = page.get_attribute("#result", "data-run") or "0"
    page.click("#predict")
    page.wait_for_function(
        "run => document.getElementById('result').dataset.run !== run", arg=run, timeout=30_000
    )
    return str(page.get_attribute("#result", "data-status"))


def test_every_card_predicts_in_headless_chromium(
    built_models: dict[str, Built], server: tuple[str, Path], browser: Any, ort_web: Path
) -> None:
    base, root = server
    for name, built in built_models.items():
        card = root / f"{name}.html"
        assert main(["card", str(built.folder), "-o", str(card), "--ort-web", str(ort_web)]) == 0
        text = card.read_text(encoding="utf-8")
        assert 'src="http' not in text and 'href="http' not in text  # nothing loaded from elsewhere
        manifest = built.manifest
        model = predictlib.load(built.folder)
        golden = decode(json.loads((built.folder / "golden.json").read_text()))
        page = open_card(browser, f"{base}/{name}.html")

        accepted = [g["record"] for g in golden["accepted"] if representable(g["record"], manifest)]
        for record in accepted[:2]:
            fill(page, manifest, record)
            assert predict(page) == "ok", page.inner_text("#result")
            if manifest["task"] == "regression":
                shown = float(page.get_attribute("#prediction", "data-value"))
                assert within_tolerance(shown, model.predict(record)), (name, shown)
            else:
                assert page.get_attribute("#label", "data-value") == str(model.predict(record))
                cells = page.query_selector_all("#probabilities td[data-value]")
                shown = [float(c.get_attribute("data-value")) for c in cells]
                expected = model.predict_proba(record).tolist()
                assert all(within_tolerance(a, b) for a, b in zip(shown, expected, strict=True))

        # a number typed as text (the form holds the last accepted record) is refused with
        # the runtime's reason
        numeric = next(i for i, c in enumerate(manifest["inputs"]["columns"]) if c["kind"] == "number")
        column = manifest["inputs"]["columns"][numeric]["name"]
        page.fill(f"#f-{numeric}", "twelve")
        assert predict(page) == "refused"
        with pytest.raises(predictlib.InputError) as caught:
            model.predict({**accepted[1], column: "twelve"})
        assert page.inner_text("#problems .reason") == caught.value.problems[0].expected

        refused = [
            g
            for g in golden["refused"]
            if g["source"] != "input_contract" and representable(g["record"], manifest)
        ]
        contract = [
            g
            for g in golden["refused"]
            if g["source"] == "input_contract" and representable(g["record"], manifest)
        ]
        assert refused or contract, f"{name}: no refused golden record the form can hold"
        for item in refused[:1] + contract[:1]:
            fill(page, manifest, item["record"])
            assert predict(page) == "refused", page.inner_text("#result")
            reasons = [r.inner_text() for r in page.query_selector_all("#problems .reason")]
            assert reasons == [p["reason"] for p in item["problems"]], name
            columns = [li.get_attribute("data-column") for li in page.query_selector_all("#problems li")]
            assert columns == [p["column"] for p in item["problems"]]

        # the examples menu fills the form with a golden record
        page.select_option("#examples", "0")
        assert predict(page) == "ok"
        page.close()


def test_card_loading_onnxruntime_web_from_a_url(
    built_models: dict[str, Built], server: tuple[str, Path], browser: Any
) -> None:
    base, root = server
    built = built_models["penguins"]
    card = root / "penguins-url.html"
    assert main(["card", str(built.folder), "-o", str(card), "--ort-url", f"{base}/ort/"]) == 0
    assert card.stat().st_size < 1_000_000  # onnxruntime-web is not embedded
    page = open_card(browser, f"{base}/penguins-url.html")
    page.select_option("#examples", "0")
    assert predict(page) == "ok"
    page.close()


def test_card_contents_without_the_form(built_models: dict[str, Built], tmp_path: Path) -> None:
    for name, built in built_models.items():
        out = tmp_path / f"{name}.html"
        assert main(["card", str(built.folder), "-o", str(out), "--no-try-it"]) == 0
        text = out.read_text(encoding="utf-8")
        assert f"<h1>{name} <small>{built.manifest['version']}</small></h1>" in text
        for column in built.manifest["inputs"]["columns"]:
            assert f"<code>{column['name']}</code>" in text
        assert text.count('<svg class="chart"') == len(built.manifest["inputs"]["columns"]) + 1
        assert "Held-out metrics" in text and "Equivalence with the original pipeline" in text
        assert built.manifest["integrity"]["model_sha256"] in text
        assert "<script" not in text.replace('<script type="application/json" id="card-data">', "")
        assert out.stat().st_size < 400_000


def test_card_needs_onnxruntime_web_files(
    built_models: dict[str, Built], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREDICTLIB_ORT_WEB", raising=False)
    with pytest.raises(predictlib.PredictlibError, match="--no-try-it"):
        find_ort_web()
    assert main(["card", str(built_models["penguins"].folder), "-o", str(tmp_path / "c.html")]) == 2


def test_card_is_deterministic(built_models: dict[str, Built], ort_web: Path) -> None:
    model = predictlib.load(built_models["house_band"].folder)
    ort = find_ort_web(ort_web)
    assert render_card(model, ort=ort) == render_card(model, ort=ort)
