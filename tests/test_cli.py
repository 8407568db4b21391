"""The predictlib command (installed with the runtime): list, info, predict."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import original_predict

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "predictlib", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["predict"]])
def test_help(command: list[str]) -> None:
    done = cli(*command, "--help")
    assert "usage: predictlib" in done.stdout


def test_list() -> None:
    lines = cli("list").stdout.splitlines()
    # the test environment installs no model wheel (the end-to-end test lists installed ones)
    assert lines == ["no predictlib models are installed (pip install predictlib-<model>)"]


def test_info(house_prices: Built) -> None:
    text = cli("info", str(house_prices.folder)).stdout
    version = house_prices.manifest["version"]
    assert text.startswith(f"house_prices {version} (regression)")
    assert "LotArea (number)" in text and "rmse_log" in text and "scikit-learn 1.9.1" in text
    manifest = json.loads(cli("info", str(house_prices.folder), "--json").stdout)
    assert manifest == house_prices.manifest


def test_predict_csv_in_batches(house_prices: Built, tmp_path: Path) -> None:
    source = ROOT / "models" / "house_prices" / "data" / "train.csv"
    lines = source.read_text().splitlines()[:61]  # header + 60 rows, NA cells included
    data = tmp_path / "houses.csv"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "prices.csv"
    cli("predict", str(house_prices.folder), str(data), "-o", str(out), "--batch-size", "7")
    rows = list(csv.DictReader(out.open()))
    assert [int(r["row"]) for r in rows] == list(range(60))
    assert all(r["error"] == "" for r in rows)
    frame = pd.read_csv(data).drop(columns=["Id", "SalePrice"])
    expected = original_predict(house_prices.trained.model, frame)
    np.testing.assert_allclose([float(r["prediction"]) for r in rows], expected, rtol=tolerances.RTOL)


def test_predict_jsonl_reports_refused_rows(house_prices: Built, tmp_path: Path) -> None:
    frame = house_prices.trained.X_test.iloc[:5]
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
    records[2]["LotArea"] = -3
    data = tmp_path / "houses.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out.csv"
    done = cli("predict", str(house_prices.folder), str(data), "-o", str(out))
    assert "1 row(s) refused" in done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["prediction"] == "" for r in rows] == [False, False, True, False, False]
    assert "column 'LotArea'" in rows[2]["error"] and "-3" in rows[2]["error"]
    skipped = tmp_path / "skipped.csv"
    cli("predict", str(house_prices.folder), str(data), "-o", str(skipped), "--errors", "skip")
    assert [int(r["row"]) for r in csv.DictReader(skipped.open())] == [0, 1, 3, 4]
    failed = cli("predict", str(house_prices.folder), str(data), "--errors", "fail", check=False)
    assert failed.returncode == 1 and "row 2" in failed.stderr


def test_predict_classification(built_models: dict[str, Built], tmp_path: Path) -> None:
    penguins = built_models["penguins"]
    data = tmp_path / "penguins.csv"
    penguins.trained.X_test.iloc[:10].to_csv(data, index=False)
    done = cli("predict", str(penguins.folder), str(data))
    rows = list(csv.DictReader(done.stdout.splitlines()))
    assert list(rows[0]) == [
        "row",
        "label",
        "probability_Adelie",
        "probability_Chinstrap",
        "probability_Gentoo",
        "error",
    ]
    assert [r["label"] for r in rows] == penguins.trained.model.predict(
        penguins.trained.X_test.iloc[:10]
    ).tolist()


def test_bad_model_and_file_are_clear_errors(tmp_path: Path) -> None:
    done = cli("info", "no-such-model", check=False)
    assert done.returncode == 2 and "no installed model named 'no-such-model'" in done.stderr
