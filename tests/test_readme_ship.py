"""The README's "Ship your own pipeline" example, as a user runs it: in a fresh virtual
environment holding only the built runtime wheel with its ``build`` extra, from a
folder outside the repository; then its model wheel in a second fresh environment that
holds only the runtime, predicting the pipeline's answers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

#: after the README block: what the second environment must predict
CHECK = """
import json
records = X[300:310].astype(object).where(X[300:310].notna(), None).to_dict(orient="records")
json.dump({"records": records, "expected": pipeline.predict(X[300:310]).tolist()}, open("expected.json", "w"))
"""

PREDICT = """
import importlib.util, json, sys
import predictlib
data = json.load(open(sys.argv[1]))
print(json.dumps({
    "available": predictlib.available(),
    "got": predictlib.predict(data["records"], model="my_houses").tolist(),
    "one": predictlib.predict(data["records"][0], model="my_houses"),
    "absent": [m for m in ("sklearn", "feature_engine", "pandas", "skl2onnx", "onnx") if importlib.util.find_spec(m) is None],
}))
"""


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Ship your own pipeline", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's 'Ship your own pipeline' section has no python block"
    return blocks[0]


def make_env(path: Path) -> Path:
    venv.create(path, with_pip=True, clear=True)
    return path / "bin" / "python"


def install(python: Path, *requirements: str, constraints: Path | None = None) -> None:
    extra = ["-c", str(constraints)] if constraints else []
    uv = shutil.which("uv")
    if uv:
        command = [uv, "pip", "install", "--quiet", "--python", str(python), *extra, *requirements]
    else:
        command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += [*extra, *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_example_ships_a_wheel_that_predicts_elsewhere(tmp_path: Path, runtime_wheel: Path) -> None:
    # the versions this repository is tested with, as constraints (a user's resolver picks
    # any version in the extra's ranges; the test pins what CI knows)
    pinned = ["scikit-learn", "feature-engine", "skl2onnx", "onnx", "pandas", "scipy", "numpy", "onnxruntime"]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{name}=={metadata.version(name)}\n" for name in pinned))
    work = tmp_path / "user-project"
    work.mkdir()
    (work / "ship.py").write_text(readme_block() + CHECK)

    builder = make_env(tmp_path / "build-env")
    install(builder, f"predictlib[build] @ {runtime_wheel.as_uri()}", constraints=constraints)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(builder), "ship.py"], cwd=work, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-5000:]
    wheel = work / "dist" / "predictlib_my_houses-1.0.0-py3-none-any.whl"
    assert wheel.is_file(), sorted(p.name for p in (work / "dist").iterdir())
    assert str(wheel.relative_to(work)) in done.stdout

    app = make_env(tmp_path / "app-env")
    install(app, str(runtime_wheel), str(wheel))
    out = subprocess.run(
        [str(app), "-c", PREDICT, str(work / "expected.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    expected = json.loads((work / "expected.json").read_text())["expected"]
    assert result["available"] == {"my_houses": "1.0.0"}
    assert sorted(result["absent"]) == sorted(["sklearn", "feature_engine", "pandas", "skl2onnx", "onnx"])
    assert result["got"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert result["one"] == pytest.approx(expected[0], rel=1e-9, abs=1e-9)
    assert sys.executable not in (str(builder), str(app))
