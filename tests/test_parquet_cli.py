"""predictlib predict reads Parquet files (with pyarrow), by record batches: the same
rows predict exactly as they do from CSV, refused rows included."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from predictlib._parquet import parquet_records
from predictlib.build.project import Built

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "predictlib", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def predict(model: Path, data: Path, out: Path) -> list[dict[str, str]]:
    done = cli("predict", str(model), str(data), "-o", str(out), "--batch-size", "7")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    for row in rows:  # where the row is: a CSV's line, a Parquet file's row number
        row["error"] = row["error"].split(": ", 1)[1] if row["error"] else ""
    return rows


def houses() -> pd.DataFrame:
    frame = pd.read_csv(ROOT / "models" / "house_prices" / "data" / "train.csv").iloc[:120].copy()
    frame = frame.astype({"LotArea": np.float64, "GrLivArea": np.float64})
    frame.loc[3, "LotArea"] = -5.0  # refused by the log step
    frame.loc[8, "GrLivArea"] = math.inf  # refused by a guard
    frame.loc[9, "Neighborhood"] = None  # a missing category
    return frame


def test_parquet_predicts_exactly_as_csv(house_prices: Built, tmp_path: Path) -> None:
    frame = houses()
    frame.to_csv(tmp_path / "houses.csv", index=False)
    frame.to_parquet(tmp_path / "houses.parquet", index=False, row_group_size=25)
    from_csv = predict(house_prices.folder, tmp_path / "houses.csv", tmp_path / "a.csv")
    from_parquet = predict(house_prices.folder, tmp_path / "houses.parquet", tmp_path / "b.csv")
    assert from_parquet == from_csv
    assert len(from_csv) == 120 and [r["row"] for r in from_csv if r["error"]] == ["3", "8"]
    assert "LotArea" in from_csv[3]["error"] and from_csv[9]["error"] == ""


def test_a_datetime_model_and_dictionary_columns(built_models: dict[str, Built], tmp_path: Path) -> None:
    dated = built_models["house_dated"]
    frame = dated.trained.X_test.iloc[:60].reset_index(drop=True)
    frame.to_csv(tmp_path / "dated.csv", index=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    text = [
        i
        for i, f in enumerate(table.schema)
        if pa.types.is_large_string(f.type) or pa.types.is_string(f.type)
    ]
    for i in text[:5]:  # a few categorical columns stored dictionary-encoded
        table = table.set_column(i, table.schema[i].name, table.column(i).dictionary_encode())
    pq.write_table(table, tmp_path / "dated.parquet", row_group_size=16)
    from_csv = predict(dated.folder, tmp_path / "dated.csv", tmp_path / "a.csv")
    from_parquet = predict(dated.folder, tmp_path / "dated.parquet", tmp_path / "b.csv")
    assert from_parquet == from_csv and not any(r["error"] for r in from_csv)


def test_a_missing_column_and_an_unreadable_file(house_prices: Built, tmp_path: Path) -> None:
    frame = houses().drop(columns=["LotArea"])
    frame.to_csv(tmp_path / "houses.csv", index=False)
    frame.to_parquet(tmp_path / "houses.parquet", index=False)
    from_csv = predict(house_prices.folder, tmp_path / "houses.csv", tmp_path / "a.csv")
    assert predict(house_prices.folder, tmp_path / "houses.parquet", tmp_path / "b.csv") == from_csv
    assert all("required column is missing" in r["error"] for r in from_csv)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    done = cli(
        "predict", str(house_prices.folder), str(tmp_path / "broken.parquet"), "-o", str(tmp_path / "c.csv")
    )
    assert done.returncode == 2 and "cannot read" in done.stderr and "Parquet" in done.stderr
    assert not (tmp_path / "c.csv").exists()


def test_rows_are_streamed_by_record_batches(tmp_path: Path) -> None:
    path = tmp_path / "many.parquet"
    pq.write_table(
        pa.table({"a": np.arange(1000.0), "b": ["x"] * 1000, "c": [1] * 1000}), path, row_group_size=100
    )
    rows = parquet_records(path, ["a", "b", "z"], batch_rows=64)
    first = next(rows)
    assert first == (1, {"a": 0.0, "b": "x"})  # only the model's columns the file has
    numbers = [n for n, _ in rows]
    assert numbers == list(range(2, 1001))
    with pytest.raises(StopIteration):
        next(rows)
