"""What the tests of the JavaScript client (embed/node) share: its folder, ``npm ci`` of its
locked dependencies, and :func:`node_client` (node with them installed; the test skipped
without node and npm, except in CI, ``CI=true``, where it fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMBED = ROOT / "embed" / "node"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def npm_ci(npm: str) -> None:
    """Install embed/node's locked dependencies (no CUDA build of onnxruntime-node)."""
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=EMBED,
        env={**os.environ, "ONNXRUNTIME_NODE_INSTALL_CUDA": "skip"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def node_client() -> str:
    """node, with embed/node's dependencies (onnxruntime-node and -web) installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm are needed to test the Node.js client (embed/node)"
        if in_ci():
            pytest.fail(f"{message}; CI must have them")
        pytest.skip(message)
    modules = EMBED / "node_modules"
    if not all((modules / pkg / "package.json").is_file() for pkg in ("onnxruntime-node", "onnxruntime-web")):
        npm_ci(npm)
    return node
