"""predictlib.spark on a real Spark: local[2] (one JVM) and local-cluster[2,1,1024] (a
master, two workers and their executor JVMs and Python workers: the closest this
machine gets to a cluster). Parquet written from the real data; every row compared
with the in-process runtime; refused rows reported in predictlib_error; the model
shipped to executors that have no model installed.

    pytest -m spark      (nox -s spark)
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
        reason="Spark needs a Java runtime (17 or 21): none is installed (no java on PATH, no JAVA_HOME)",
    ),
]

import pyspark  # noqa: E402 - in the test dependency group (pinned)
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

import predictlib.spark as pspark  # noqa: E402

MASTERS = ["local[2]", "local-cluster[2,1,1024]"]


@pytest.fixture(scope="module", params=MASTERS)
def spark(request: pytest.FixtureRequest) -> Iterator[SparkSession]:
    """One session per master for the whole module (a JVM holds one SparkContext)."""
    os.environ.setdefault("SPARK_HOME", str(Path(pyspark.__file__).parent))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = (
        SparkSession.builder.master(request.param)
        .appName("predictlib-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executor.memory", "512m")
        .config("spark.python.worker.reuse", "true")
    )
    if os.environ.get("PYTHONPATH"):  # a source checkout run without an install
        builder = builder.config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def houses(rows: int) -> pd.DataFrame:
    """The real training data (first ``rows`` rows), with refused rows planted."""
    frame = pd.read_csv(ROOT / "models" / "house_prices" / "data" / "train.csv").iloc[:rows].copy()
    frame = frame.astype({"LotArea": np.float64, "GrLivArea": np.float64})
    frame.loc[3, "LotArea"] = -5.0  # the log step refuses it
    frame.loc[10, "GrLivArea"] = math.inf  # a guard refuses it
    frame.loc[11, "LotArea"] = 0.0
    return frame


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = houses(600)
    path = tmp_path_factory.mktemp("parquet") / "houses.parquet"
    frame.to_parquet(path, index=False, row_group_size=150)
    return path, frame


def scored_by_id(scored: Any) -> pd.DataFrame:
    return scored.toPandas().set_index("Id").sort_index()


def check_against_runtime(
    result: pd.DataFrame, frame: pd.DataFrame, model: predictlib.Model, prefix: str = ""
) -> None:
    """Every row: the same prediction (or the same refusal) as the in-process runtime."""
    expected = model.predict_rows(frame)
    frame = frame.reset_index(drop=True)
    assert sorted(result.index) == sorted(frame["Id"])  # no row lost, none added
    error = result[f"{prefix}predictlib_error"]
    for i, row_id in enumerate(frame["Id"]):
        problems = [p for p in expected.problems if p.row == i]
        got = error.loc[row_id]
        if not problems:
            assert got is None or (isinstance(got, float) and math.isnan(got)), (row_id, got)
            continue
        assert [(p["column"], p["reason"]) for p in got["problems"]] == [
            (p.column, p.expected) for p in problems
        ]
        assert got["message"].startswith(f"column '{problems[0].column}'")
    if model.task == "regression":
        got_predictions = result.loc[frame["Id"], f"{prefix}prediction"].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(got_predictions, expected.predictions, rtol=tolerances.RTOL, atol=0)
        assert np.isnan(got_predictions[expected.refused]).all()
    else:
        labels = result.loc[frame["Id"], f"{prefix}label"].tolist()
        assert [None if pd.isna(label) else label for label in labels] == expected.predictions.tolist()
        columns = [f"{prefix}probability_{c}" for c in model.classes]
        probabilities = result.loc[frame["Id"], columns].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(probabilities, expected.probabilities, rtol=tolerances.RTOL, atol=1e-15)


def test_parquet_scored_like_the_runtime_with_refused_rows_reported(
    spark: SparkSession, parquet: tuple[Path, pd.DataFrame], house_prices: Built
) -> None:
    path, frame = parquet
    df = spark.read.parquet(str(path))
    scored = pspark.transform(df, house_prices.folder)
    assert scored.columns == [*df.columns, "prediction", "predictlib_error"]
    result = scored_by_id(scored)
    model = predictlib.load(house_prices.folder)
    check_against_runtime(result, frame, model)
    refused = result[result["predictlib_error"].notna()]
    assert sorted(refused.index) == [4, 11, 12]  # Ids of rows 3, 10 and 11
    first = refused.loc[4, "predictlib_error"]
    assert first["problems"][0]["column"] == "LotArea" and first["problems"][0]["value"] == "-5.0"
    assert "logarithm" in first["message"]
    # the input columns come back untouched
    assert result.loc[4, "LotArea"] == -5.0 and result["Neighborhood"].equals(
        frame.set_index("Id").sort_index()["Neighborhood"]
    )


def test_a_model_wheel_shipped_to_executors_without_the_model(
    spark: SparkSession, parquet: tuple[Path, pd.DataFrame], house_prices: Built, tmp_path: Path
) -> None:
    """The wheel is read on the driver and travels with the job: it is deleted before
    any task runs, and no executor has the model installed."""
    path, frame = parquet
    wheel = tmp_path / house_prices.wheel.name
    shutil.copy(house_prices.wheel, wheel)
    assert "house_prices" not in predictlib.available()
    scored = pspark.transform(spark.read.parquet(str(path)), str(wheel), batch_size=64)
    wheel.unlink()
    check_against_runtime(scored_by_id(scored), frame, predictlib.load(house_prices.folder))


def test_column_problems_are_refused_on_the_driver_with_the_runtime_messages(
    spark: SparkSession, parquet: tuple[Path, pd.DataFrame], house_prices: Built
) -> None:
    path, frame = parquet
    df = (
        spark.read.parquet(str(path))
        .drop("Alley")
        .withColumn("LotArea", F.col("LotArea").cast("string"))
        .withColumn("Neighborhood", F.lit(3))
    )
    with pytest.raises(predictlib.InputError) as caught:
        pspark.transform(df, house_prices.folder)
    found = {p.column: p.expected for p in caught.value.problems}
    assert set(found) == {"Alley", "LotArea", "Neighborhood"}
    model = predictlib.load(house_prices.folder)
    runtime = {}
    for column, value in (("Alley", None), ("LotArea", "8450"), ("Neighborhood", 3)):
        record = frame.iloc[0].to_dict()
        if value is None:
            del record[column]
        else:
            record[column] = value
        with pytest.raises(predictlib.InputError) as one:
            model.predict(record)
        runtime[column] = one.value.expected
    assert found["Alley"] == runtime["Alley"] == "required column is missing"
    assert found["LotArea"].startswith(runtime["LotArea"]) and "Spark type string" in found["LotArea"]
    assert (
        found["Neighborhood"].startswith(runtime["Neighborhood"])
        and "Spark type int" in found["Neighborhood"]
    )
    with pytest.raises(predictlib.PredictlibError, match="already has column"):
        pspark.transform(
            spark.read.parquet(str(path)).withColumn("prediction", F.lit(1.0)), house_prices.folder
        )


# ------------------------------------------------------------ local[2] only: more models


@pytest.mark.parametrize("spark", ["local[2]"], indirect=True)
def test_a_classifier_on_the_map_in_arrow_path_too(
    spark: SparkSession, built_models: dict[str, Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    penguins = built_models["penguins"]
    frame = pd.read_csv(ROOT / "models" / "penguins" / "data" / "penguins.csv")
    frame.insert(0, "Id", range(len(frame)))
    numeric = penguins.manifest["inputs"]["numeric"][0]
    frame[numeric] = frame[numeric].astype(np.float64)
    frame.loc[5, numeric] = math.inf  # refused
    model = predictlib.load(penguins.folder)
    df = spark.createDataFrame(frame)
    expected_columns = [*df.columns, *[f"m_{n}" for n, _ in pspark.output_columns(penguins.folder)]]
    scored = pspark.transform(df, penguins.folder, prefix="m_")
    assert scored.columns == expected_columns
    check_against_runtime(scored_by_id(scored), frame, model, prefix="m_")
    monkeypatch.setattr(pspark, "_has_arrow_udf", lambda: False)  # pyspark 3.5 / 4.0's path
    scored = pspark.transform(df, penguins.folder, prefix="m_", batch_size=50)
    assert scored.columns == expected_columns
    check_against_runtime(scored_by_id(scored), frame, model, prefix="m_")


@pytest.mark.parametrize("spark", ["local[2]"], indirect=True)
def test_a_datetime_model(spark: SparkSession, built_models: dict[str, Built], tmp_path: Path) -> None:
    dated = built_models["house_dated"]
    frame = dated.trained.X_test.reset_index(drop=True).iloc[:200].copy()
    frame.insert(0, "Id", range(len(frame)))
    datetime_column = dated.manifest["inputs"]["datetime"][0]
    path = tmp_path / "dated.parquet"
    frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    df = spark.read.parquet(str(path))
    assert df.schema[datetime_column].dataType.simpleString() == "timestamp_ntz"
    check_against_runtime(
        scored_by_id(pspark.transform(df, dated.folder)), frame, predictlib.load(dated.folder)
    )
    # a timestamp (an instant, with a time zone) is refused on the driver
    with pytest.raises(predictlib.InputError, match="timestamp_ntz"):
        pspark.transform(
            df.withColumn(datetime_column, F.col(datetime_column).cast("timestamp")), dated.folder
        )
