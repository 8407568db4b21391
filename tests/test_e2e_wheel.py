"""The promise of the quick start: the wheels install into a fresh virtual environment
with only numpy and onnxruntime besides them, and predict a price in dollars."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from test_reader import a_compiler

from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame, reference_frame

pytestmark = pytest.mark.slow

SCRIPT = """
import importlib.util, json, sys
import predictlib
from predictlib._reader import c_loop
record = json.loads(sys.argv[1])
price = predictlib.predict(record, model="house_prices")
print(json.dumps({
    "available": predictlib.available(),
    "price": price,
    "compiled": c_loop() is not None,
    "absent": [m for m in ("sklearn", "feature_engine", "pandas", "scipy", "skl2onnx") if importlib.util.find_spec(m) is None],
}))
"""


def test_wheels_install_and_predict_in_a_fresh_venv(
    tmp_path: Path, house_prices: Built, runtime_wheel: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(runtime_wheel),
            str(house_prices.wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True, text=True
    )
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert {"predictlib", "predictlib-house-prices", "numpy", "onnxruntime"} <= names
    assert not names & {"scikit-learn", "feature-engine", "pandas", "scipy", "skl2onnx", "onnx"}

    record = records_from_frame(house_prices.trained.X_test.iloc[:1])[0]
    out = subprocess.run(
        [str(python), "-c", SCRIPT, json.dumps(record, allow_nan=True)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nothing importable from the source tree
    )
    result = json.loads(out.stdout)
    version = house_prices.manifest["version"]
    assert result["available"] == {"house_prices": version}
    # the wheel carries the compiled record reader where the build found a C compiler
    compiled = a_compiler() is not None
    assert result["compiled"] is compiled
    assert runtime_wheel.name.endswith("-py3-none-any.whl") is not compiled
    assert sorted(result["absent"]) == sorted(["sklearn", "feature_engine", "pandas", "scipy", "skl2onnx"])
    # the command-line interface comes with the runtime
    listed = subprocess.run(
        [str(env_dir / "bin" / "predictlib"), "list"], check=True, capture_output=True, text=True
    )
    assert listed.stdout.splitlines() == [f"house_prices {version}"]
    expected = float(
        house_prices.trained.model.predict(reference_frame([record], house_prices.exported.columns))[0]
    )
    assert result["price"] == pytest.approx(expected, rel=tolerances.RTOL)
    assert sys.executable != str(python)
