"""Datetime columns end to end: a pipeline with DatetimeSubtraction, DatetimeFeatures,
DatetimeOrdinal, imputers, an encoder and a regressor, exported, built into an
artifact folder as the build does (manifest, verification, golden vectors, model.ort)
and run through predictlib (every accepted datetime form, against the original
pipeline given the same data) and through the Node.js client (golden vectors)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from embed_harness import EMBED, ROOT, node_client
from feature_engine.datetime import DatetimeFeatures, DatetimeOrdinal, DatetimeSubtraction
from feature_engine.encoding import OrdinalEncoder
from feature_engine.imputation import CategoricalImputer, MeanMedianImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

import predictlib
from predictlib._inputs import DATETIME_RANGE, NAT
from predictlib.build import tolerances
from predictlib.build.packaging import Reference, graph_files, verify
from predictlib.build.stages import golden
from predictlib.build.stages.export import export_pipeline, infer_columns
from predictlib.build.stages.manifest import dumps, files_section, make_manifest, seal
from predictlib.build.stages.mobile import ORT_FILE, ort_details, verify_ort, write_ort
from predictlib.build.stages.verify import compare, original_predict, records_from_frame

DAY = np.timedelta64(1, "D")

INFO: dict[str, Any] = {
    "name": "dt_demo",
    "version": "0.1.0",
    "description": "datetime demo",
    "output_unit": "days",
}
#: fewer than a build's 10,000: the fixture stands for a build, quickly
GENERATED_RECORDS = 400


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    low = np.datetime64("1990-01-01", "ns").astype(np.int64)
    high = np.datetime64("2030-01-01", "ns").astype(np.int64)
    when = rng.integers(low, high, n)
    start = when - rng.integers(0, 400 * 86_400 * 10**9, n)
    when[rng.random(n) < 0.05] = NAT
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "when": when.view("datetime64[ns]"),
            "x": x,
            "start": start.view("datetime64[ns]").astype("datetime64[us]"),
            "color": pd.Series(rng.choice(["red", "green", "blue"], n), dtype="str"),
        }
    )
    days = (frame["when"] - frame["start"]).dt.total_seconds().fillna(0) / 86_400
    y = days + 3 * frame["when"].dt.month.fillna(6) + np.nan_to_num(x) + (frame["color"] == "red") * 5
    return frame, pd.Series(y.to_numpy(), name="y")


def _pipeline() -> Pipeline:
    return Pipeline(
        [
            ("age", DatetimeSubtraction(variables=["when"], reference=["start"], output_unit="D")),
            (
                "calendar",
                DatetimeFeatures(
                    variables=["when"],
                    features_to_extract=["year", "month", "day_of_week", "hour", "weekend", "leap_year"],
                    missing_values="ignore",
                ),
            ),
            ("ordinal", DatetimeOrdinal(variables=["start"], start_date="2000-01-01")),
            ("impute", MeanMedianImputer()),
            ("impute_cat", CategoricalImputer()),
            ("encode", OrdinalEncoder(encoding_method="arbitrary", unseen="encode")),
            ("ridge", Ridge(alpha=1.0)),
        ]
    )


class Built:
    def __init__(self, trained: Reference, folder: Path, manifest: dict[str, Any], columns: Any) -> None:
        self.trained, self.folder, self.manifest, self.columns = trained, folder, manifest, columns
        self.model = predictlib.load(folder)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """An artifact folder made as predictlib.build.package makes one."""
    X, y = _frame(400, 0)
    X_test, _ = _frame(100, 1)
    pipe = _pipeline().fit(X, y)
    trained = Reference("dt_demo", pipe, X, X_test)
    columns = infer_columns(X)
    exported = export_pipeline(pipe, columns, name="dt_demo")
    graphs = graph_files(exported)
    model_bytes = graphs["model.onnx"]
    training = {
        "data_sha256": "0" * 64,
        "rows": 500,
        "train_rows": 400,
        "test_rows": 100,
        "target": "y",
        "seed": 3,
        "test_size": 0.25,
    }
    manifest = make_manifest(
        info=INFO,
        exported=exported,
        model_bytes=model_bytes,
        training=training,
        metrics={"held_out": {"r2": 0.0}},
        equivalence=None,
    )
    folder = tmp_path_factory.mktemp("dt_artifact") / "dt_demo"
    folder.mkdir()

    def write(m: dict[str, Any]) -> None:
        for name, data in graphs.items():
            (folder / name).write_bytes(data)
        (folder / "manifest.json").write_bytes(dumps(m))

    write(manifest)
    manifest["equivalence"] = verify(trained, folder, columns, GENERATED_RECORDS, 3, log=lambda *_: None)
    golden.write_golden(trained, predictlib.load(folder), folder, columns, 3)
    manifest["files"] = files_section(folder, {"golden.json": "golden", **write_ort(folder)})
    log = lambda *_: None  # noqa: E731
    manifest["files"][ORT_FILE].update(ort_details(), verification=verify_ort(folder, manifest, log))
    write(seal(manifest))
    return Built(trained, folder, manifest, columns)


def _original(built: Built, frame: pd.DataFrame) -> np.ndarray:
    return original_predict(built.trained.model, frame).astype(np.float64)


def _close(got: Any, expected: Any) -> bool:
    return bool(
        np.allclose(np.asarray(got, dtype=np.float64), expected, rtol=tolerances.RTOL, atol=tolerances.ATOL)
    )


BASE = {
    "when": dt.datetime(2021, 3, 4, 5, 6, 7, 891011),
    "x": 0.5,
    "start": dt.datetime(2020, 12, 31),
    "color": "red",
}


# --------------------------------------------------------------------- the contract


def test_manifest_and_graph_have_the_dt_group(built: Built) -> None:
    inputs = built.manifest["inputs"]
    assert inputs["datetime"] == ["when", "start"]
    kinds = {c["name"]: (c["kind"], c["group"], c["index"]) for c in inputs["columns"]}
    assert kinds["when"] == ("datetime", "dt", 0) and kinds["start"] == ("datetime", "dt", 1)
    assert kinds["x"] == ("number", "num", 0) and kinds["color"] == ("category", "cat", 0)
    import onnx

    graph = onnx.load(str(built.folder / "model.onnx")).graph
    dt_input = next(i for i in graph.input if i.name == "dt")
    assert dt_input.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert built.model.columns == ["x", "color", "when", "start"]
    checks = built.manifest["outputs"]["refusals"]["checks"]
    summary = {(c["column"], c["step"], c["transformer"]) for c in checks}
    datetime_checks = {s for s in summary if s[2].startswith("Datetime")}
    assert datetime_checks == {
        ("start", "ordinal", "DatetimeOrdinal"),
        ("when", "age", "DatetimeSubtraction"),
    }


def test_manifest_and_golden_validate_against_the_schemas(built: Built) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for name, document in (
        ("manifest.schema.json", built.manifest),
        ("golden.schema.json", json.loads((built.folder / "golden.json").read_text(encoding="utf-8"))),
    ):
        schema = json.loads((ROOT / "schema" / name).read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == [], name


#: one value per accepted form of a datetime cell; each row's expected output is the
#: original pipeline's on ``pd.DataFrame([record])``, the user's own DataFrame of it
FORMS = [
    dt.datetime(2021, 3, 4, 5, 6, 7, 891011),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.date(2024, 2, 29),
    np.datetime64("2021-03-04T05:06:07.123456789", "ns"),
    np.datetime64("2021-03-04T05:06:07", "s"),
    np.datetime64("2021-03-04T05:06:07.250", "ms"),
    np.datetime64("2021-03-04", "D"),
    np.datetime64("2021-03", "M"),
    np.datetime64("2021", "Y"),
    np.datetime64("2021-03-04T05", "h"),
    pd.Timestamp("2021-03-04 05:06:07.000000123"),
    None,
    float("nan"),
    pd.NaT,
    np.datetime64("NaT"),
    np.datetime64("NaT", "ns"),
]


@pytest.mark.parametrize("value", FORMS, ids=[repr(v) for v in FORMS])
def test_each_datetime_form_as_the_original(built: Built, value: Any) -> None:
    record = {**BASE, "when": value}
    got = built.model.predict(record)
    expected = _original(built, pd.DataFrame([record]))
    assert _close(got, expected[0]), (got, expected)
    assert _close(built.model.predict([record, BASE]), _original(built, pd.DataFrame([record, BASE])))


def test_the_ends_of_the_range(built: Built) -> None:
    records = [
        {**BASE, "when": pd.Timestamp("1677-09-21 00:12:43.145224193"), "start": dt.datetime(1677, 9, 22)},
        {**BASE, "when": pd.Timestamp("2262-04-11 23:47:16.854775807"), "start": dt.datetime(2262, 1, 1)},
        {**BASE, "when": np.datetime64(-(2**63) + 1, "ns"), "start": np.datetime64("1677-09-21T01", "h")},
    ]
    assert _close(built.model.predict(records), _original(built, pd.DataFrame(records)))
    # 2262 - 1969: the difference overflows int64 nanoseconds. pandas raises on datetime64[ns]
    # columns (on coarser units it wraps the difference silently: a wrong value); the graph refuses
    record = {**BASE, "when": pd.Timestamp("2262-04-11"), "start": dt.datetime(1969, 1, 1)}
    with pytest.raises(OverflowError):
        _original(built, pd.DataFrame([record]).astype({"when": "datetime64[ns]", "start": "datetime64[ns]"}))
    (problem,) = _problems(built.model, record)
    assert "refused by step 'age' (DatetimeSubtraction): the datetime difference overflows" in problem[2]


def test_batches_of_every_shape(built: Built) -> None:
    frame = built.trained.X_test.reset_index(drop=True)
    expected = _original(built, frame)
    model = built.model
    assert _close(model.predict(frame), expected)
    assert _close(model.predict(records_from_frame(frame)), expected)
    assert _close(model.predict({c: frame[c].to_numpy() for c in frame.columns}), expected)
    assert _close(model.predict({c: frame[c].tolist() for c in frame.columns}), expected)
    for unit in ("s", "ms", "us", "ns"):
        coarse = frame.astype({"when": f"datetime64[{unit}]", "start": f"datetime64[{unit}]"})
        assert _close(model.predict(coarse), _original(built, coarse)), unit
    objects = frame.astype({"when": object})  # Timestamps and NaT in an object column
    assert _close(model.predict(objects), expected)
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert str(table.column("when").type) == "timestamp[ns]"
    assert _close(model.predict(table), expected)
    dates = frame.assign(start=frame["start"].dt.normalize())
    table = pa.Table.from_pandas(dates, preserve_index=False).set_column(
        2, "start", pa.array(dates["start"].dt.date.tolist(), pa.date32())
    )
    assert _close(model.predict(table), _original(built, dates))


def test_compare_agrees_on_generated_records(built: Built) -> None:
    from predictlib.build.stages.verify import generate_records

    records = generate_records(built.trained.X_train, built.columns, 300, seed=11)
    report = compare(built.trained.model, built.model, records, built.columns, seed=11)
    assert report.failures == [] and report.refused > 0 and report.accepted > 200


# --------------------------------------------------------------------- refusals


def _problems(model: predictlib.Model, data: Any) -> list[tuple[Any, Any, str]]:
    with pytest.raises(predictlib.InputError) as info:
        model.predict(data)
    return [(p.row, p.column, p.expected) for p in info.value.problems]


AWARE = dt.datetime(2021, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=1)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-03-04", "expected a datetime, got text"),
        ("", "expected a datetime, got text"),
        (20210304, "expected a datetime, got int"),
        (1.5e18, "expected a datetime, got float"),
        (True, "expected a datetime, got a bool"),
        (np.int64(5), "expected a datetime, got int64"),
        (AWARE, "expected a naive datetime (no time zone)"),
        (pd.Timestamp("2021-03-04", tz="UTC"), "expected a naive datetime (no time zone)"),
        (np.datetime64("9999-12-31"), DATETIME_RANGE),
        (dt.datetime(1, 1, 1), DATETIME_RANGE),
        (dt.date(2262, 4, 12), DATETIME_RANGE),
        (pd.Timestamp("2300-01-01"), DATETIME_RANGE),
        (np.datetime64("1677-09-21T00:12:43.145224", "us"), DATETIME_RANGE),
        ({"$datetime": "2021-03-04"}, "expected a datetime, got dict"),
    ],
)
def test_refused_values_are_named(built: Built, value: Any, expected: str) -> None:
    problems = _problems(built.model, {**BASE, "when": value})
    assert len(problems) == 1 and problems[0][:2] == (None, "when") and problems[0][2].startswith(expected)
    batch = _problems(built.model, [BASE, {**BASE, "start": value}])
    assert len(batch) == 1 and batch[0][:2] == (1, "start") and batch[0][2].startswith(expected)


def test_text_is_refused_though_the_original_parses_it(built: Built) -> None:
    """The original would parse "2021-03-04" with pandas (format inference); the runtime
    asks for datetimes instead (docs/embedding.md)."""
    record = {**BASE, "when": "2021-03-04"}
    assert np.isfinite(_original(built, pd.DataFrame([record]))).all()
    (problem,) = _problems(built.model, record)
    assert "format inference" in problem[2]


def test_missing_column_and_graph_refusal(built: Built) -> None:
    assert _problems(built.model, {k: v for k, v in BASE.items() if k != "start"}) == [
        (None, "start", "required column is missing")
    ]
    # DatetimeOrdinal(missing_values="raise") refuses a missing start, as the original raises
    problems = _problems(built.model, [BASE, {**BASE, "start": None}])
    assert problems[0][:2] == (1, "start") and "refused by step 'ordinal' (DatetimeOrdinal)" in problems[0][2]
    with pytest.raises(ValueError):
        _original(built, pd.DataFrame([{**BASE, "start": None}]).astype({"start": "datetime64[ns]"}))


def test_columnar_refusals(built: Built) -> None:
    frame = built.trained.X_test.reset_index(drop=True).iloc[:4].copy()
    aware = frame.assign(when=frame["when"].dt.tz_localize("UTC"))
    problems = _problems(built.model, aware)
    assert [p[:2] for p in problems if p[1] == "when"] == [
        (i, "when") for i in range(4) if not pd.isna(frame["when"][i])
    ]
    wide = {c: frame[c].to_numpy() for c in frame.columns}
    wide["start"] = np.array(["2021-01-01", "9999-01-01", "NaT", "1000-01-01"], dtype="datetime64[s]")
    problems = _problems(built.model, wide)
    assert [(p[0], p[1]) for p in problems if p[2] == DATETIME_RANGE] == [(1, "start"), (3, "start")]
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(aware, preserve_index=False)
    assert [p[:2] for p in _problems(built.model, table) if p[1] == "when"] == [
        (i, "when") for i in range(4) if not pd.isna(frame["when"][i])
    ]
    numbers = {c: frame[c].to_numpy() for c in frame.columns}
    numbers["when"] = frame["when"].to_numpy().view(np.int64)  # nanoseconds as numbers
    assert all(p[2] == "expected a datetime, got int" for p in _problems(built.model, numbers))


def test_fast_path_equals_checked_path(built: Built) -> None:
    adapter = built.model._adapter
    for record in (BASE, {**BASE, "when": None}, {**BASE, "when": dt.datetime(1969, 1, 1, 0, 0, 0, 1)}):
        fast = adapter.one(record)
        assert fast is not None
        num, _cat, _, problems, moments = adapter.from_records([record], single=True)
        assert (
            problems == []
            and np.array_equal(fast[2], moments)
            and np.array_equal(fast[0], num, equal_nan=True)
        )
    for record in ({**BASE, "when": dt.date(2020, 1, 1)}, {**BASE, "when": AWARE}, {**BASE, "when": "x"}):
        assert adapter.one(record) is None
    assert (
        adapter.one({**BASE, "when": dt.datetime(1, 1, 1)}) is None
    )  # out of range: the checked path names it


def test_a_graph_without_the_manifests_groups_is_refused(built: Built, tmp_path: Path) -> None:
    """A runtime must feed every graph input: a manifest that lists no datetime columns
    for a graph with a dt input (e.g. read by a reader that ignores inputs.datetime) fails to load."""
    manifest = json.loads((built.folder / "manifest.json").read_text(encoding="utf-8"))
    del manifest["inputs"]["datetime"]
    # a consistent manifest (its column descriptions too): only the graph disagrees
    manifest["inputs"]["columns"] = [c for c in manifest["inputs"]["columns"] if c["kind"] != "datetime"]
    folder = tmp_path / "edited"
    folder.mkdir()
    shutil.copy(built.folder / "model.onnx", folder / "model.onnx")
    shutil.copy(built.folder / "model.ids.onnx", folder / "model.ids.onnx")
    (folder / "manifest.json").write_bytes(dumps(seal(manifest)))
    with pytest.raises(
        predictlib.ArtifactError, match=r"inputs \[('cat_ids', )?'dt', '(num|x)'\] are not the manifest's"
    ):
        predictlib.load(folder)


# --------------------------------------------------------------------- golden, Node.js


def test_golden_datetime_encoding_round_trips(built: Built) -> None:
    data = json.loads((built.folder / "golden.json").read_text(encoding="utf-8"))
    cells = [r["record"].get("when") for r in data["accepted"]]
    assert sum(isinstance(c, dict) and set(c) == {"$datetime"} for c in cells) > 100
    assert None in cells and {"$float": "nan"} in cells  # missing: null (NaT, None) or NaN
    for value in [*FORMS, AWARE, np.datetime64("9999-12-31")]:
        encoded = golden.encode(value)
        if encoded is None:
            assert value is None or pd.isna(value)
            continue
        decoded = golden.decode(encoded)
        if isinstance(value, float):
            assert np.isnan(decoded)
        elif isinstance(value, dt.datetime) and value.tzinfo is not None:
            assert decoded == value
        else:
            assert pd.Timestamp(decoded) == pd.Timestamp(value), (value, encoded)
    assert golden.encode(pd.Timestamp("2020-01-01 00:00:00.000000001")) == {
        "$datetime": "2020-01-01T00:00:00.000000001"
    }
    assert golden.encode(dt.date(2020, 1, 1)) == {"$datetime": "2020-01-01"}
    assert golden.encode(np.datetime64("2020-01-01T10:00:00.500")) == {"$datetime": "2020-01-01T10:00:00.500"}
    refused = {p["code"] for r in data["refused"] for p in r["problems"] if p["column"] in ("when", "start")}
    assert {"wrong_type", "out_of_range", "missing_column", "refused"} <= refused


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["node", "web"])
def test_node_client_passes_the_datetime_golden_vectors(built: Built, backend: str) -> None:
    node = node_client()
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", f"test/golden.{backend}.test.js"],
        cwd=EMBED,
        env={**os.environ, "PREDICTLIB_ARTIFACTS": str(built.folder)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    # 4 suites (model.onnx, model.ids.onnx, model.ort; the integrity suite) of 5 + 5 + 5 + 3 tests
    assert "# fail 0" in done.stdout and "# pass 18" in done.stdout, done.stdout[-3000:]
