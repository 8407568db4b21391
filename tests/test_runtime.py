"""The runtime against a real built artifact: input shapes, refusals, integrity, errors."""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame, reference_frame


@pytest.fixture(scope="module")
def model(house_prices: Built) -> predictlib.Model:
    return predictlib.load(house_prices.folder)


@pytest.fixture(scope="module")
def records(house_prices: Built) -> list[dict[str, Any]]:
    return records_from_frame(house_prices.trained.X_test.iloc[:20])


def original(built: Built, rows: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray(built.trained.model.predict(reference_frame(rows, built.exported.columns)))


def test_model_attributes(model: predictlib.Model, house_prices: Built) -> None:
    assert model.name == "house_prices"
    assert model.version == house_prices.trained.config["model"]["version"]
    assert model.task == "regression"
    assert model.manifest["name"] == "house_prices"
    assert set(model.columns) == {c.name for c in house_prices.exported.columns}
    with pytest.raises(TypeError):
        model.manifest["name"] = "other"  # type: ignore[index]


def test_one_record_gives_a_price_in_dollars(
    model: predictlib.Model, house_prices: Built, records: list
) -> None:
    price = model.predict(records[0])
    assert isinstance(price, float)
    assert price == pytest.approx(original(house_prices, records[:1])[0], rel=tolerances.RTOL)
    assert 10_000 < price < 1_000_000


def test_every_input_shape_gives_the_same_predictions(
    model: predictlib.Model, house_prices: Built, records: list
) -> None:
    expected = original(house_prices, records)
    frame = house_prices.trained.X_test.iloc[:20]
    shapes = {
        "records": model.predict(records),
        "tuple": model.predict(tuple(records)),
        "one by one": np.array([model.predict(r) for r in records]),
        "dataframe (str)": model.predict(frame),
        "dataframe (object)": model.predict(frame.astype(object)),
        "columns": model.predict({c: frame[c].tolist() for c in frame.columns}),
        "numpy columns": model.predict({c: frame[c].to_numpy() for c in frame.columns}),
        "reordered + extra column": model.predict(
            [{"extra": 1, **dict(reversed(r.items()))} for r in records]
        ),
    }
    for label, got in shapes.items():
        np.testing.assert_allclose(got, expected, rtol=tolerances.RTOL, atol=tolerances.ATOL, err_msg=label)


def test_input_is_not_mutated(model: predictlib.Model, records: list, house_prices: Built) -> None:
    before = copy.deepcopy(records)
    frame = house_prices.trained.X_test.iloc[:20].copy()
    frame_before = frame.copy()
    model.predict(records)
    model.predict(frame)
    assert records == before or json.dumps(records, default=str) == json.dumps(before, default=str)
    pd.testing.assert_frame_equal(frame, frame_before)


def test_missing_values_accepted_where_the_original_imputes(
    model: predictlib.Model, house_prices: Built, records: list
) -> None:
    record = dict(records[0], LotFrontage=None, MasVnrArea=math.nan, Alley=None, FireplaceQu=math.nan)
    assert model.predict(record) == pytest.approx(original(house_prices, [record])[0], rel=tolerances.RTOL)


def test_empty_input_gives_an_empty_result(model: predictlib.Model) -> None:
    result = model.predict([])
    assert isinstance(result, np.ndarray) and result.shape == (0,)


def refusal(model: predictlib.Model, data: Any) -> predictlib.InputError:
    with pytest.raises(predictlib.InputError) as info:
        model.predict(data)
    return info.value


def test_missing_column_is_named(model: predictlib.Model, records: list) -> None:
    record = dict(records[0])
    del record["LotArea"]
    err = refusal(model, record)
    assert err.column == "LotArea" and err.row is None
    assert "required column is missing" in str(err)
    err = refusal(model, [records[1], record])
    assert (err.row, err.column) == (1, "LotArea")


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("LotArea", "8450", "text"),
        ("LotArea", True, "bool"),
        ("LotArea", [1], "list"),
        ("Neighborhood", 3, "int"),
        ("Neighborhood", b"NAmes", "bytes"),
        ("Neighborhood", "__predictlib_missing__", "reserved"),
    ],
)
def test_wrong_types_are_refused(
    model: predictlib.Model, records: list, column: str, value: Any, words: str
) -> None:
    err = refusal(model, dict(records[0], **{column: value}))
    assert err.column == column
    assert err.value == value
    assert words in str(err)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("LotArea", -5.0, "zero or negative"),
        ("GrLivArea", 0, "zero or negative"),
        ("LotArea", math.inf, "infinite"),
        ("OverallQual", None, "missing"),
        ("YearBuilt", math.nan, "missing"),
        ("BsmtFinSF1", -math.inf, "infinite"),
    ],
)
def test_values_the_original_rejects_are_refused(
    model: predictlib.Model, house_prices: Built, records: list, column: str, value: Any, words: str
) -> None:
    record = dict(records[0], **{column: value})
    with pytest.raises((ValueError, TypeError)):
        house_prices.trained.model.predict(reference_frame([record], house_prices.exported.columns))
    err = refusal(model, record)
    assert err.column == column
    assert words in err.expected
    assert "refused by step" in str(err) and column in str(err)


def test_unseen_categories_refused_exactly_where_the_original_refuses(
    model: predictlib.Model, house_prices: Built, records: list
) -> None:
    refused_by_original, refused_by_runtime = set(), set()
    for column in house_prices.exported.categorical:
        record = dict(records[0], **{column: "never-seen-label"})
        try:
            house_prices.trained.model.predict(reference_frame([record], house_prices.exported.columns))
        except ValueError:
            refused_by_original.add(column)
        try:
            model.predict(record)
        except predictlib.InputError as err:
            assert err.column == column and err.value == "never-seen-label"
            refused_by_runtime.add(column)
    assert refused_by_runtime == refused_by_original
    assert refused_by_original, "the pipeline refuses some unseen categories (OrdinalEncoder unseen='raise')"


def test_every_problem_of_a_batch_is_reported(model: predictlib.Model, records: list) -> None:
    bad = [dict(records[0], LotArea=-1.0), records[1], dict(records[2], OverallQual="7")]
    err = refusal(model, bad)
    found = {(p.row, p.column) for p in err.problems}
    assert (2, "OverallQual") in found
    assert all(p.as_dict()["column"] for p in err.problems)
    json.dumps([p.as_dict() for p in err.problems])  # API-friendly


@pytest.mark.parametrize("data", [42, "LotArea", None, [1, 2], [{"LotArea": 1}, "x"]])
def test_unsupported_inputs_are_refused(model: predictlib.Model, data: Any) -> None:
    err = refusal(model, data)
    assert isinstance(err, predictlib.PredictlibError)


def test_columns_of_different_lengths_are_refused(model: predictlib.Model, house_prices: Built) -> None:
    frame = house_prices.trained.X_test.iloc[:3]
    data = {c: frame[c].tolist() for c in frame.columns}
    data["LotArea"] = data["LotArea"][:2]
    assert "same length" in str(refusal(model, data))


# ------------------------------------------------------------------ artifact integrity


def copy_artifact(built: Built, tmp_path: Path) -> Path:
    folder = tmp_path / "artifact"
    shutil.copytree(built.folder, folder)
    return folder


def test_loads_from_a_wheel_file(house_prices: Built, records: list) -> None:
    model = predictlib.load(house_prices.wheel)
    assert model.predict(records[0]) == predictlib.load(house_prices.folder).predict(records[0])


def test_tampered_model_is_refused(house_prices: Built, tmp_path: Path) -> None:
    folder = copy_artifact(house_prices, tmp_path)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(predictlib.ArtifactError, match="does not match its manifest"):
        predictlib.load(folder)


def test_truncated_model_is_refused(house_prices: Built, tmp_path: Path) -> None:
    folder = copy_artifact(house_prices, tmp_path)
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes()[:1000])
    with pytest.raises(predictlib.ArtifactError, match="sha256"):
        predictlib.load(folder)


def edit_manifest(folder: Path, change: Any) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_edited_manifest_is_refused(house_prices: Built, tmp_path: Path) -> None:
    folder = copy_artifact(house_prices, tmp_path)
    edit_manifest(folder, lambda m: m["inputs"]["numeric"].reverse())
    with pytest.raises(predictlib.ArtifactError, match="modified after it was built"):
        predictlib.load(folder)


def test_newer_manifest_format_is_refused(house_prices: Built, tmp_path: Path) -> None:
    folder = copy_artifact(house_prices, tmp_path)

    def newer(m: dict) -> None:
        m["format_version"] = 99
        m["runtime"]["requires"] = "predictlib>=9"

    edit_manifest(folder, newer)
    with pytest.raises(predictlib.ArtifactError, match=r"format 99 is newer.*predictlib>=9"):
        predictlib.load(folder)


def test_broken_manifest_is_refused(house_prices: Built, tmp_path: Path) -> None:
    folder = copy_artifact(house_prices, tmp_path)
    (folder / "manifest.json").write_text('{"format_version": 1,')
    with pytest.raises(predictlib.ArtifactError, match="not valid JSON"):
        predictlib.load(folder)


def test_unknown_model_is_not_found() -> None:
    with pytest.raises(predictlib.ModelNotFoundError, match="no installed model named 'nope'"):
        predictlib.load("nope")
    with pytest.raises(predictlib.ModelNotFoundError):
        predictlib.predict({}, model="nope")
    assert issubclass(predictlib.ModelNotFoundError, predictlib.PredictlibError)


def test_runtime_imports_no_build_time_package(house_prices: Built, records: list) -> None:
    code = (
        "import json, sys, predictlib\n"
        f"m = predictlib.load({str(house_prices.folder)!r})\n"
        f"m.predict(json.loads({json.dumps(json.dumps(records[0], default=float))}))\n"
        "heavy = {'sklearn', 'feature_engine', 'pandas', 'skl2onnx', 'onnx', 'scipy', 'pyarrow'}\n"
        "print(sorted({k.split('.')[0] for k in sys.modules} & heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------ the ids graph (model.ids.onnx)


def test_the_runtime_runs_the_lean_ids_graph(model: predictlib.Model, house_prices: Built) -> None:
    """model.ids.onnx is the lean graph (manifest ``lean``, predictlib.build.passes.lean):
    one float64 input of numbers and category ids; older artifacts' ``inputs.category_ids``."""
    spec = model.manifest["lean"]
    assert "category_ids" not in model.manifest["inputs"]
    assert spec["file"] == "model.ids.onnx" and (house_prices.folder / "model.ids.onnx").is_file()
    assert [i.name for i in model._session.get_inputs()] == ["x"]


def test_tampered_ids_graph_is_refused(house_prices: Built, tmp_path: Path) -> None:
    folder = copy_artifact(house_prices, tmp_path)
    data = bytearray((folder / "model.ids.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.ids.onnx").write_bytes(bytes(data))
    with pytest.raises(predictlib.ArtifactError, match=r"model.ids.onnx does not match its manifest"):
        predictlib.load(folder)
    (folder / "model.ids.onnx").unlink()
    with pytest.raises(predictlib.ArtifactError, match="cannot read"):
        predictlib.load(folder)


def test_a_manifest_without_category_ids_runs_model_onnx_on_texts(
    house_prices: Built, records: list, tmp_path: Path
) -> None:
    """What an artifact of an earlier build (or a runtime ignoring the ids graph) does:
    the same answers and the same refusals from the texts."""
    from predictlib.build.stages.manifest import dumps, seal

    folder = copy_artifact(house_prices, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("lean", None)
    manifest["inputs"].pop("category_ids", None)
    del manifest["integrity"]["ids_model_sha256"]
    (folder / "manifest.json").write_bytes(dumps(seal(manifest)))
    texts = predictlib.load(folder)
    assert [i.name for i in texts._session.get_inputs()] == ["num", "cat"]
    ids = predictlib.load(house_prices.folder)
    # the lean graph sums the estimator's terms in another order: the last bits may differ
    np.testing.assert_allclose(texts.predict(records), ids.predict(records), rtol=1e-9, atol=1e-9)
    bad = [dict(records[0], Neighborhood="Atlantis", LotArea=-5.0), records[1]]
    with pytest.raises(predictlib.InputError) as from_texts:
        texts.predict(bad)
    with pytest.raises(predictlib.InputError) as from_ids:
        ids.predict(bad)
    assert [str(p) for p in from_texts.value.problems] == [str(p) for p in from_ids.value.problems]
    # text that is not valid Unicode cannot enter the string tensor: named, the rest predicted
    odd = [records[0], dict(records[1], Neighborhood="\ud800"), records[2]]
    found = texts.predict_rows(odd)
    assert found.refused.tolist() == [False, True, False]
    assert [(p.row, p.column, p.value) for p in found.problems] == [(1, "Neighborhood", "\ud800")]
    assert found.problems == ids.predict_rows(odd).problems


def test_a_large_frame_runs_by_chunks_with_every_problem_named(
    house_prices: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    import predictlib._model as runtime_model

    model = predictlib.load(house_prices.folder, batch_threads=2)
    frame = pd.concat([house_prices.trained.X_test] * 2, ignore_index=True).iloc[:500].copy()
    whole = predictlib.load(house_prices.folder, batch_threads=1)
    monkeypatch.setattr(runtime_model, "ADAPT_CHUNK", 10_000)
    monkeypatch.setattr(runtime_model, "RUN_CHUNK", 10_000)
    expected = whole.predict(frame)
    monkeypatch.setattr(runtime_model, "ADAPT_CHUNK", 128)  # slices of 128 rows ...
    monkeypatch.setattr(runtime_model, "RUN_CHUNK", 16)  # ... run by 16
    np.testing.assert_array_equal(model.predict(frame), expected)
    records = frame.to_dict(orient="records")
    np.testing.assert_array_equal(model.predict(records), expected)  # run by 16 on the pool
    frame.loc[3, "LotArea"] = -1.0  # first chunk: the log step refuses it
    frame["Neighborhood"] = frame["Neighborhood"].astype(object)
    frame.loc[200, "Neighborhood"] = 12  # a number in a categorical column: the adapter refuses it
    frame["GrLivArea"] = frame["GrLivArea"].astype(np.float64)
    frame.loc[499, "GrLivArea"] = np.inf  # last chunk
    with pytest.raises(predictlib.InputError) as caught:
        model.predict(frame)
    rows = sorted({p.row for p in caught.value.problems})
    assert rows == [3, 200, 499]
    assert {(p.row, p.column) for p in caught.value.problems} >= {
        (3, "LotArea"),
        (200, "Neighborhood"),
        (499, "GrLivArea"),
    }
    assert len(frame) == 500 and frame.loc[3, "LotArea"] == -1.0  # the caller's frame is untouched


@pytest.mark.parametrize("shape", ["columns of lists", "columns of arrays", "object columns"])
def test_large_column_mappings_run_by_slices(
    house_prices: Built, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """Column mappings (and DataFrames with object columns) over ADAPT_CHUNK rows are
    read and run by slices: the same answers, every problem named at its row of the
    whole input."""
    import predictlib._kinds as kinds
    import predictlib._model as runtime_model

    model = predictlib.load(house_prices.folder, batch_threads=2)
    frame = pd.concat([house_prices.trained.X_test] * 2, ignore_index=True).iloc[:500].copy()
    frame["Neighborhood"] = frame["Neighborhood"].astype(object)

    def given(data: pd.DataFrame) -> Any:
        if shape == "object columns":
            return data
        if shape == "columns of lists":
            return {c: data[c].tolist() for c in data.columns}
        return {c: data[c].to_numpy() for c in data.columns}

    expected = model.predict(given(frame))  # 500 rows: one slice
    cuts: list[tuple[int, int]] = []
    kind = kinds.Pandas if shape == "object columns" else kinds.Columns
    original = kind.slice

    def slice_(self: Any, data: Any, start: int, stop: int) -> Any:
        cuts.append((start, stop))
        return original(self, data, start, stop)

    monkeypatch.setattr(kind, "slice", slice_)
    monkeypatch.setattr(runtime_model, "ADAPT_CHUNK", 64)
    np.testing.assert_allclose(model.predict(given(frame)), expected, rtol=1e-12)
    assert sorted(cuts) == [(a, a + 64) for a in range(0, 500, 64)]
    frame.loc[3, "LotArea"] = -1.0  # first slice: the log step refuses it
    frame.loc[200, "Neighborhood"] = 12  # a number in a categorical column: the adapter refuses it
    frame["GrLivArea"] = frame["GrLivArea"].astype(np.float64)
    frame.loc[499, "GrLivArea"] = np.inf  # last slice
    with pytest.raises(predictlib.InputError) as caught:
        model.predict(given(frame))
    assert {(p.row, p.column) for p in caught.value.problems} == {
        (3, "LotArea"),
        (200, "Neighborhood"),
        (499, "GrLivArea"),
    }


def test_batch_threads_must_be_positive(house_prices: Built) -> None:
    with pytest.raises(predictlib.PredictlibError, match="batch_threads"):
        predictlib.load(house_prices.folder, batch_threads=0)


def test_a_record_with_every_category_missing_is_imputed(built_models: dict[str, Built]) -> None:
    """Regression: the single-record fast path once passed None / NaN objects to the
    string tensor when *every* categorical value was missing, and onnxruntime read
    them as the texts 'None' / 'nan' (an unseen category): a silently wrong answer."""
    penguins = built_models["penguins"]
    model = predictlib.load(penguins.folder)
    record = penguins.trained.X_test.iloc[0].to_dict()
    for missing in (None, float("nan")):
        row = {**record, **{c: missing for c in penguins.exported.categorical}}
        expected = penguins.trained.model.predict_proba(reference_frame([row], penguins.exported.columns))[0]
        np.testing.assert_allclose(model.predict_proba(row), expected, rtol=1e-12)
