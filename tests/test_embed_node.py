"""The Node.js client (embed/node) against every built model's golden vectors:
onnxruntime-node and onnxruntime-web (wasm, under Node), model.onnx and model.ort.

Needs node and npm; installs embed/node's locked dependencies (``npm ci``) when they
are missing. Skipped without node, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from embed_harness import EMBED, node_client

from predictlib.build.project import Built

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def node() -> str:
    """node, with embed/node's dependencies installed."""
    return node_client()


def _summary(tap: str) -> dict[str, int]:
    """The counts of node's test runner (TAP reporter: ``# tests 12`` ...)."""
    return {
        key: int(n) for key, n in re.findall(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", tap, re.M)
    }


@pytest.mark.parametrize("backend", ["node", "web"])
def test_golden_vectors_through_the_node_client(
    backend: str, node: str, built_models: dict[str, Built]
) -> None:
    folders = [b.folder for b in built_models.values()]
    files = sum(
        1
        + sum(e["role"] == "ort_model" for e in b.manifest["files"].values())
        + (b.folder / "model.ids.onnx").is_file()  # the lean / ids graph, run by the client too
        for b in built_models.values()
    )
    tests = [f"test/golden.{backend}.test.js"] + (["test/canonical.test.js"] if backend == "node" else [])
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *tests],
        cwd=EMBED,
        env={**os.environ, "PREDICTLIB_ARTIFACTS": os.pathsep.join(map(str, folders))},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    output = f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    summary = _summary(done.stdout)
    assert done.returncode == 0, output
    # 5 tests per graph file (model.onnx, model.ids.onnx, model.ort) and 3 integrity tests, + 2 canonical JSON tests
    expected = 5 * files + 3 + (2 if backend == "node" else 0)
    assert summary.get("tests") == expected and summary.get("pass") == expected, (summary, output)
    assert summary.get("fail") == 0 and summary.get("cancelled") == 0 and summary.get("skipped") == 0, summary


def test_bench_prints_p50_latency(node: str, house_prices: Built) -> None:
    done = subprocess.run(
        [node, "bench.js", str(house_prices.folder), "--runs", "200"],
        cwd=EMBED,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "house_prices" and result["backend"] == "node" and result["runs"] == 200
    assert 0 < result["p50_us"] < 1_000_000
