"""Drift against the training profile: ``model.drift`` and ``predictlib drift`` on every
bundled model's own training rows (no alert) and on a shifted copy (alerts on exactly
the shifted columns); the measures, thresholds and input forms."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import predictlib
from predictlib._cli import main
from predictlib._drift import PSI_FLOOR, psi
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame


def shifted(built: Built) -> tuple[pd.DataFrame, str, str]:
    """The training rows with one numeric column x3 (the one with the most distinct
    values) and one categorical column replaced by unseen values."""
    X = built.trained.X_train.copy()
    inputs = built.manifest["inputs"]
    number = max(inputs["numeric"], key=lambda c: X[c].nunique())
    category = inputs["categorical"][0]
    X[number] = X[number] * 3
    X[category] = [f"never-seen-{i % 7}" for i in range(len(X))]
    return X, number, category


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().out


def test_cli_drift_on_training_rows_and_a_shifted_copy(
    built_models: dict[str, Built], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, built in built_models.items():
        folder = str(built.folder)
        own = write_csv(built.trained.X_train, tmp_path / f"{name}-train.csv")
        code, out = run_cli(["drift", folder, str(own), "--json"], capsys)
        report = json.loads(out)
        assert code == 0, out
        assert report["status"] == "ok" and report["alerts"] == [] and report["warnings"] == []
        assert report["rows"] == len(built.trained.X_train) and report["refused"] == 0
        assert all(c["psi"] == 0.0 for c in report["columns"] if c["psi"] is not None)
        assert report["predictions"]["psi"] == pytest.approx(0.0, abs=1e-12)

        frame, number, category = shifted(built)
        moved = write_csv(frame, tmp_path / f"{name}-shifted.csv")
        code, out = run_cli(["drift", folder, str(moved), "--json"], capsys)
        report = json.loads(out)
        assert code == 1, out
        assert sorted(report["alerts"]) == sorted([number, category]), (name, report["alerts"])
        first_two = {c["name"] for c in report["columns"][:2]}  # most drifted first
        assert first_two == {number, category}
        by_name = {c["name"]: c for c in report["columns"]}
        assert by_name[category]["unseen_share"] == 1.0
        assert by_name[category]["unseen_examples"][:2] == ["never-seen-0", "never-seen-1"]
        assert by_name[number]["psi"] > 0.25
        others = [c for c in report["columns"] if c["name"] not in (number, category)]
        assert all(c["status"] == "ok" for c in others), name

        code, out = run_cli(["drift", folder, str(moved)], capsys)
        assert code == 1
        lines = out.splitlines()
        assert "status alert (2 column(s) in alert:" in lines[0]
        assert lines[1].split()[:3] == ["column", "kind", "status"]
        assert lines[2].startswith("prediction")
        assert {lines[3].split()[0], lines[4].split()[0]} == {number, category}


def test_api_drift_is_the_same_on_every_input_form(built_models: dict[str, Built]) -> None:
    built = built_models["house_dated"]  # numbers, categories and a datetime column
    model = predictlib.load(built.folder)
    frame, number, category = shifted(built)
    frame = frame.iloc[:400]
    reports = [
        model.drift(frame),
        model.drift(records_from_frame(frame)),
        model.drift(pa.Table.from_pandas(frame, preserve_index=False)),
        model.drift({c: frame[c].tolist() for c in frame.columns}),
    ]
    for report in reports[1:]:
        assert report == reports[0]
    assert sorted(reports[0].alerts) == sorted([number, category])
    assert isinstance(reports[0], predictlib.DriftReport)


def test_parquet_and_jsonl_inputs(
    built_models: dict[str, Built], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = built_models["penguins"]
    frame, number, category = shifted(built)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    code, out = run_cli(["drift", str(built.folder), str(path), "--json", "--batch-size", "50"], capsys)
    assert code == 1 and sorted(json.loads(out)["alerts"]) == sorted([number, category])
    jsonl = tmp_path / "rows.jsonl"
    with jsonl.open("w") as fh:
        for record in records_from_frame(built.trained.X_train):
            fh.write(
                json.dumps(
                    {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
                )
                + "\n"
            )
    code, out = run_cli(["drift", str(built.folder), str(jsonl), "--json"], capsys)
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_refused_rows_wrong_types_and_missing_values_are_measured(built_models: dict[str, Built]) -> None:
    built = built_models["house_prices"]
    model = predictlib.load(built.folder)
    rows = records_from_frame(built.trained.X_train.iloc[:300])
    numeric = built.manifest["inputs"]["numeric"]
    categorical = built.manifest["inputs"]["categorical"]
    # a third of the rows: text in a numeric column (refused before the graph runs)
    for record in rows[:100]:
        record[numeric[0]] = "twelve"
    # another third: a category missing where training always had one
    always = next(c for c in categorical if built.trained.X_train[c].notna().all())
    for record in rows[100:200]:
        record[always] = None
    report = model.drift(rows)
    wrong = report.column(numeric[0])
    assert wrong.invalid_share == pytest.approx(1 / 3) and wrong.status == "alert"
    assert any("wrong type" in r for r in wrong.reasons)
    gone = report.column(always)
    assert gone.missing_share == pytest.approx(1 / 3) and gone.training_missing_share == 0.0
    assert gone.status == "alert"
    refused = sum(1 for r in rows if _refused(model, r))
    assert report.refused == refused >= 100
    assert report.predictions.rows == 300 - refused
    assert report.predictions.refused_share == pytest.approx(refused / 300)
    # a missing column: every row refused, the column invalid; the others not counted
    frame = built.trained.X_train.iloc[:50].drop(columns=[numeric[1]])
    report = model.drift(frame)
    assert report.refused == 50 and report.column(numeric[1]).invalid_share == 1.0
    with pytest.raises(predictlib.InputError, match="expected a record"):
        model.drift(42)


def _refused(model: predictlib.Model, record: dict) -> bool:
    try:
        model.predict(record)
    except predictlib.InputError:
        return True
    return False


def test_thresholds_are_documented_defaults_and_overridable(
    built_models: dict[str, Built], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    built = built_models["penguins"]
    model = predictlib.load(built.folder)
    frame, number, category = shifted(built)
    loose = model.drift(
        frame, thresholds={"psi_alert": 1e9, "psi_warn": 1e9, "outside_alert": 2, "unseen_alert": 2}
    )
    assert loose.alerts == [] and set(loose.warnings) >= {number, category}
    assert loose.thresholds.psi_alert == 1e9
    assert model.drift(frame, predictlib.Thresholds(min_rows=10_000)).column(number).status == "alert"
    with pytest.raises(predictlib.PredictlibError, match="unknown drift threshold"):
        model.drift(frame, thresholds={"psi": 0.3})
    with pytest.raises(predictlib.PredictlibError, match="must be a number >= 0"):
        model.drift(frame, thresholds={"psi_alert": -1})
    path = write_csv(frame, tmp_path / "shifted.csv")
    code, out = run_cli(
        ["drift", str(built.folder), str(path), "--json", "--threshold", "psi_alert=1e9",
         "--threshold", "outside_alert=2", "--threshold", "unseen_alert=2", "--threshold", "refused_alert=2",
         "--threshold", "psi_warn=1e9"],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    assert main(["drift", str(built.folder), str(path), "--threshold", "psi_alert"]) == 2
    assert "give NAME=NUMBER" in capsys.readouterr().err
    assert main(["drift", str(built.folder), str(tmp_path / "absent.csv")]) == 2


def test_psi() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == 0.0
    assert psi([0, 0], [1, 2]) is None and psi([1, 2], [0, 0]) is None
    e, a = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert psi([50, 50], [90, 10]) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    # an empty training bin is floored, never infinite
    assert psi([100, 0], [50, 50]) == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - PSI_FLOOR) * math.log(0.5 / PSI_FLOOR)
    )


def test_drift_command_as_a_process(built_models: dict[str, Built], tmp_path: Path) -> None:
    built = built_models["penguins"]
    frame, number, _ = shifted(built)
    path = write_csv(frame, tmp_path / "shifted.csv")
    done = subprocess.run(
        [sys.executable, "-m", "predictlib", "drift", str(built.folder), str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"{number}" in done.stdout and "status alert" in done.stdout


def test_a_model_without_profile_says_so(built_models: dict[str, Built], tmp_path: Path) -> None:
    """An artifact built before profiles existed (no profile.json in its files)."""
    import shutil

    from predictlib.build.stages.manifest import dumps, seal

    folder = tmp_path / "old"
    shutil.copytree(built_models["penguins"].folder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["profile.json"]
    (folder / "manifest.json").write_bytes(dumps(seal(manifest)))
    (folder / "profile.json").unlink()
    model = predictlib.load(folder)
    with pytest.raises(predictlib.PredictlibError, match="carries no training profile"):
        model.drift([])
