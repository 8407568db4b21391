"""Issue 17: the runtime under hostile inputs. Each test reproduces a numbered case of
the issue (hangs, silent wrong answers, raw exceptions, memory, pickling) and checks
what predictlib now does."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import multiprocessing
import numbers
import pickle
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import predictlib
from predictlib import _model
from predictlib._artifact import read_artifact
from predictlib._ids import UNSEEN_REMEMBERED, UNSEEN_REMEMBERED_BYTES
from predictlib._inputs import Adapted
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame

pytestmark = pytest.mark.slow


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``, failing the test (not hanging it) when it does not return in time."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s (a hang)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture(scope="module")
def houses(house_prices: Built) -> pd.DataFrame:
    """house_prices' inputs, every row of the data (train + test)."""
    trained = house_prices.trained
    return pd.concat([trained.X_train, trained.X_test], ignore_index=True)


@pytest.fixture(scope="module")
def model(house_prices: Built) -> predictlib.Model:
    return predictlib.load(house_prices.folder)


# ------------------------------------------------------------------ 1, 2: hangs


def test_1_type_errors_in_two_slices_of_a_large_frame_are_refused(
    house_prices: Built, houses: pd.DataFrame
) -> None:
    """262,144 rows with text in LotArea at rows 10 and 140,000: two slices refuse on
    the pool at once. Both problems are reported; nothing waits on the pool it runs on."""
    model = predictlib.load(house_prices.folder, batch_threads=2)
    big = pd.concat([houses] * (262_144 // len(houses) + 1), ignore_index=True).iloc[:262_144].copy()
    big["LotArea"] = big["LotArea"].astype(object)
    big.loc[10, "LotArea"] = "text"
    big.loc[140_000, "LotArea"] = "text"
    with pytest.raises(predictlib.InputError) as caught:
        within(120, lambda: model.predict(big))
    assert [(p.row, p.column, p.value) for p in caught.value.problems] == [
        (10, "LotArea", "text"),
        (140_000, "LotArea", "text"),
    ]


def test_1_refusals_in_many_slices_on_small_chunks(
    house_prices: Built, houses: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same path with small slices and chunks: every slice refuses (a type problem
    plus graph refusals of other rows, found by running the rest on the pool thread)."""
    monkeypatch.setattr(_model, "ADAPT_CHUNK", 500)
    monkeypatch.setattr(_model, "RUN_CHUNK", 64)
    model = predictlib.load(house_prices.folder, batch_threads=2)
    frame = pd.concat([houses] * 3, ignore_index=True)
    frame["LotArea"] = frame["LotArea"].astype(object)
    bad_rows = list(range(7, len(frame), 500))
    for row in bad_rows:
        frame.loc[row, "LotArea"] = "text"
    frame.loc[3, "GrLivArea"] = -1.0  # refused by the graph (log of a negative)
    with pytest.raises(predictlib.InputError) as caught:
        within(120, lambda: model.predict(frame))
    found = {(p.row, p.column) for p in caught.value.problems}
    assert {(row, "LotArea") for row in bad_rows} | {(3, "GrLivArea")} <= found


def _child_predicts(rows: list[dict[str, Any]]) -> list[float]:
    """In a forked child: the parent's model (inherited, not pickled) on a large batch,
    then on its first rows one by one (through the binding the parent's thread made)."""
    return [*_FORKED_MODEL.predict(rows).tolist(), *(_FORKED_MODEL.predict(r) for r in rows[:20])]


_FORKED_MODEL: Any = None


def test_2_a_forked_child_predicts_large_batches(house_prices: Built, houses: pd.DataFrame) -> None:
    """The parent runs a batch of more than one chunk (its pool starts) and single
    records (its thread binds the session's inputs and outputs), then forks: the
    children's first large batches run (on pools of their own), and their single
    records give the parent's answers."""
    global _FORKED_MODEL
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    model = predictlib.load(house_prices.folder, batch_threads=2, threads=2)
    rows = records_from_frame(pd.concat([houses] * 2, ignore_index=True))
    assert len(rows) > _model.RUN_CHUNK
    expected = model.predict(rows).tolist()  # the pool exists now
    expected += [model.predict(r) for r in rows[:20]]  # and this thread's binding
    _FORKED_MODEL = model
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        pending = pool.map_async(_child_predicts, [rows] * 2)
        results = pending.get(timeout=120)
    assert results == [expected, expected]


# ------------------------------------------------- 3: str subclasses and (str, Enum)


def _str_enum(values: list[str], names: Callable[[str], str]) -> Callable[[str], Any]:
    """value -> the member of a (str, Enum) holding it, named ``names(value)``."""
    members = enum.Enum("Values", {names(v): v for v in values}, type=str)  # type: ignore[misc]
    return lambda value: members(value)


class Shouting(str):
    def __str__(self) -> str:
        return str.__str__(self).upper()


#: how a value is wrapped: given the column's texts, value -> wrapped value
WRAPPERS: dict[str, Callable[[list[str]], Callable[[str], Any]]] = {
    "enum": lambda values: _str_enum(values, lambda v: v),
    # other names: they hash differently from the values (Enum hashes its name)
    "enum with other names": lambda values: _str_enum(values, lambda v: f"NAME_{values.index(v)}"),
    "str subclass with its own __str__": lambda values: Shouting,
    "numpy.str_": lambda values: np.str_,
}


def _wrap(
    frame: pd.DataFrame, wrapper: Callable[[list[str]], Callable[[str], Any]], columns: list[str]
) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        texts = sorted({v for v in frame[column] if isinstance(v, str)})
        wrap = wrapper(texts)
        values = [wrap(v) if isinstance(v, str) else v for v in frame[column]]
        out[column] = pd.Series(values, index=frame.index, dtype=object)
    return out


def _every_path(model: predictlib.Model, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What ``model`` gives for ``frame``'s rows through each input shape."""
    rows = records_from_frame(frame)
    out = {
        "records": np.asarray(
            model.predict_proba(rows) if model.task == "classification" else model.predict(rows)
        ),
        "one record at a time": np.asarray(
            [model.predict_proba(r) if model.task == "classification" else model.predict(r) for r in rows]
        ),
        "columns": np.asarray(
            (model.predict_proba if model.task == "classification" else model.predict)(
                {c: np.array(list(frame[c]), dtype=object) for c in frame.columns}
            )
        ),
        "small DataFrame": np.asarray(
            (model.predict_proba if model.task == "classification" else model.predict)(frame.iloc[:150])
        ),
        "DataFrame": np.asarray(
            (model.predict_proba if model.task == "classification" else model.predict)(frame)
        ),
    }
    out["small DataFrame"] = np.concatenate([out["small DataFrame"], out["DataFrame"][150:]])
    return out


def test_3_str_subclasses_and_enums_are_their_string_value_on_every_path(
    built_models: dict[str, Built],
) -> None:
    penguins = built_models["penguins"]
    model = predictlib.load(penguins.folder)
    frame = penguins.trained.X_test.reset_index(drop=True)
    frame = pd.concat([frame] * 4, ignore_index=True)  # over SMALL_FRAME rows: the column path too
    categorical = list(model.manifest["inputs"]["categorical"])
    expected = _every_path(model, frame)
    original = penguins.trained.model.predict_proba(frame)
    np.testing.assert_allclose(expected["DataFrame"], original, rtol=1e-9, atol=1e-9)
    for label, wrap in WRAPPERS.items():
        wrapped = _wrap(frame, wrap, categorical)
        # the original pipeline takes each value as its string value
        np.testing.assert_allclose(
            penguins.trained.model.predict_proba(wrapped), original, rtol=1e-9, atol=1e-9
        )
        for path, got in _every_path(model, wrapped).items():
            np.testing.assert_array_equal(got, expected[path], err_msg=f"{label}, {path}")


def test_3_house_prices_every_path_agrees_on_enums(model: predictlib.Model, house_prices: Built) -> None:
    frame = house_prices.trained.X_test.reset_index(drop=True)
    categorical = list(model.manifest["inputs"]["categorical"])
    expected = _every_path(model, frame)
    wrapped = _wrap(frame, WRAPPERS["enum with other names"], categorical)
    for path, got in _every_path(model, wrapped).items():
        np.testing.assert_array_equal(got, expected[path], err_msg=path)


def test_3_the_reserved_text_is_refused_in_a_str_subclass_too(
    model: predictlib.Model, house_prices: Built
) -> None:
    record = records_from_frame(house_prices.trained.X_test.iloc[:1])[0]
    missing = model.manifest["inputs"]["missing_category"]
    for value in (missing, Shouting(missing), np.str_(missing)):
        with pytest.raises(predictlib.InputError, match="reserved"):
            model.predict({**record, "Neighborhood": value})
        with pytest.raises(predictlib.InputError, match="reserved"):
            model.predict([record, {**record, "Neighborhood": value}])


# ------------------------------------------- 4: datetime64 / timedelta64 as numbers

DATE_LIKE = [
    np.datetime64("2020-01-01"),
    np.datetime64("2020-01-01T00:00:00.000000000"),
    np.timedelta64(5, "D"),
    np.timedelta64(5_000_000_000, "ns"),
]


@pytest.mark.parametrize("value", DATE_LIKE, ids=repr)
def test_4_numpy_dates_and_durations_are_refused_in_numeric_columns(
    model: predictlib.Model, house_prices: Built, value: Any
) -> None:
    frame = house_prices.trained.X_test.iloc[:3].reset_index(drop=True)
    rows = records_from_frame(frame)
    attempts = {
        "record": lambda: model.predict({**rows[0], "LotArea": value}),
        "records": lambda: model.predict([rows[0], {**rows[1], "LotArea": value}]),
        "numpy column": lambda: model.predict(
            {**{c: list(frame[c]) for c in frame.columns}, "LotArea": np.array([value] * 3)}
        ),
        "DataFrame": lambda: model.predict(frame.assign(LotArea=[value] * 3)),
    }
    for path, attempt in attempts.items():
        with pytest.raises(predictlib.InputError) as caught:
            attempt()
        problem = caught.value.problems[0]
        assert problem.column == "LotArea", path
        assert problem.expected.startswith("expected a number"), path


def test_4_nat_is_missing_in_a_numeric_column(model: predictlib.Model, house_prices: Built) -> None:
    """LotFrontage is imputed: a NaT there is a missing value, like None."""
    record = records_from_frame(house_prices.trained.X_test.iloc[:1])[0]
    expected = model.predict({**record, "LotFrontage": None})
    for nat in (np.datetime64("NaT"), np.timedelta64("NaT"), pd.NaT):
        assert model.predict({**record, "LotFrontage": nat}) == expected


# --------------------------------------------------------------- 5: masked arrays


def test_5_masked_cells_are_missing_values(built_models: dict[str, Built]) -> None:
    house = built_models["house_prices"]
    model = predictlib.load(house.folder)
    frame = house.trained.X_test.iloc[:4].reset_index(drop=True)
    columns = {c: np.array(list(frame[c]), dtype=object) for c in frame.columns}
    raw = frame["LotFrontage"].to_numpy(dtype=np.float64).copy()
    raw[1] = 999_999.0  # masked: never read
    columns["LotFrontage"] = np.ma.masked_array(raw, mask=[False, True, False, False])
    unmasked = frame.copy()
    unmasked.loc[1, "LotFrontage"] = np.nan
    np.testing.assert_array_equal(model.predict(columns), model.predict(unmasked))
    # a masked constant in a record, an object masked array of categories
    record = records_from_frame(frame.iloc[:1])[0]
    assert model.predict({**record, "LotFrontage": np.ma.masked}) == model.predict(
        {**record, "LotFrontage": None}
    )
    penguins = built_models["penguins"]
    birds = predictlib.load(penguins.folder)
    frame = penguins.trained.X_test.iloc[:3].reset_index(drop=True)
    columns = {c: np.array(list(frame[c]), dtype=object) for c in frame.columns}
    columns["island"] = np.ma.masked_array(
        np.array(list(frame["island"]), dtype=object), mask=[True, False, False]
    )
    expected = birds.predict_proba(
        [{**records_from_frame(frame)[0], "island": None}, *records_from_frame(frame)[1:]]
    )
    np.testing.assert_array_equal(birds.predict_proba(columns), expected)


# ------------------------------------------- 7: raw exceptions -> predictlib errors


class BadRepr(float):
    def __repr__(self) -> str:
        raise RuntimeError("repr fails")


class BadFloat(numbers.Real):  # a caller's number type whose conversion fails
    def __float__(self) -> float:
        raise RuntimeError("float fails")

    def __repr__(self) -> str:
        return "BadFloat()"

    # the abstract methods of numbers.Real, never called here
    __abs__ = __add__ = __ceil__ = __eq__ = __floor__ = __floordiv__ = __le__ = __lt__ = __mod__ = None  # type: ignore[assignment]
    __mul__ = __neg__ = __pos__ = __pow__ = __radd__ = __rfloordiv__ = __rmod__ = __rmul__ = None  # type: ignore[assignment]
    __round__ = __rpow__ = __rtruediv__ = __truediv__ = __trunc__ = None  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]


class BadEq:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq fails")

    def __hash__(self) -> int:
        return hash("Gd")

    def __repr__(self) -> str:
        raise RuntimeError("repr fails too")


def _refused(call: Callable[[], Any]) -> predictlib.InputError:
    with pytest.raises(predictlib.InputError) as caught:
        call()
    error = caught.value
    str(error)  # the message is made
    json.dumps([p.as_dict() for p in error.problems])  # and an HTTP body
    return error


def test_7_hostile_values_give_input_errors(model: predictlib.Model, house_prices: Built) -> None:
    record = records_from_frame(house_prices.trained.X_test.iloc[:1])[0]
    cases = {
        "int of 5,000 digits": ("LotArea", 10**5000),
        "negative int of 400 digits": ("LotArea", -(10**400)),
        "repr raises": ("Neighborhood", BadRepr(1.5)),
        "float() raises": ("LotArea", BadFloat()),
        "== and repr raise": ("Neighborhood", BadEq()),
    }
    for label, (column, value) in cases.items():
        changed = {**record, column: value}
        for data in (changed, [record, changed]):
            error = _refused(lambda data=data: model.predict(data))
            assert error.problems[0].column == column, label
    assert "int of about 5,001 digits" in str(
        _refused(lambda: model.predict({**record, "LotArea": 10**5000}))
    )


def test_7_a_two_dimensional_column_and_duplicate_dataframe_columns(
    model: predictlib.Model, house_prices: Built
) -> None:
    frame = house_prices.trained.X_test.iloc[:5].reset_index(drop=True)
    columns = {c: list(frame[c]) for c in frame.columns}
    error = _refused(lambda: model.predict({**columns, "LotArea": np.ones((5, 2))}))
    assert error.column == "LotArea" and "one-dimensional" in error.expected
    for rows in (5, 250):  # the small-frame path and the column path
        wide = pd.concat([frame] * (rows // 5), ignore_index=True)
        twice = pd.concat([wide, wide[["LotArea"]]], axis=1)
        error = _refused(lambda twice=twice: model.predict(twice))
        assert error.column == "LotArea" and "2 columns with this name" in error.expected
        # a repeated column the model does not use is ignored
        extra = pd.concat([wide, wide[["LotArea"]].rename(columns={"LotArea": "Id"})] * 1, axis=1)
        extra = pd.concat([extra, extra[["Id"]]], axis=1)
        np.testing.assert_array_equal(model.predict(extra), model.predict(wide))


def test_7_load_arguments_are_checked(house_prices: Built) -> None:
    folder = house_prices.folder
    for kwargs in (
        {"batch_threads": "4"},
        {"threads": "2"},
        {"threads": 10**6},
        {"threads": 5000},
        {"threads": 0},
        {"threads": True},
        {"batch_threads": 0},
        {"threads": 2.0},
    ):
        with pytest.raises(
            predictlib.PredictlibError, match="threads must be an int from 1 to 256"
        ) as caught:
            within(10, lambda kwargs=kwargs: predictlib.load(folder, **kwargs))
        assert not isinstance(caught.value, predictlib.ArtifactError), kwargs
    assert predictlib.load(folder, threads=np.int64(2), batch_threads=_model.MAX_THREADS).batch_threads == 256
    with pytest.raises(predictlib.ModelNotFoundError):
        predictlib.load("x" * 5000)
    with pytest.raises(predictlib.ModelNotFoundError):
        predictlib.load(str(folder) + "/" + "y" * 5000)
    with pytest.raises(predictlib.ModelNotFoundError):
        predictlib.load("house\x00prices")
    with pytest.raises(predictlib.PredictlibError, match="expected a model name"):
        predictlib.load(42)  # type: ignore[arg-type]


# -------------------------------------------------------- 13: the unseen-text cache


def test_13_unseen_texts_remembered_within_a_byte_budget(built_models: dict[str, Built]) -> None:
    penguins = built_models["penguins"]
    model = predictlib.load(penguins.folder)  # OrdinalEncoder(unseen="encode"): unseen texts predict
    record = records_from_frame(penguins.trained.X_test.iloc[:1])[0]
    ids = model._adapter.ids
    assert ids is not None
    before = len(ids._record_index)
    for k in range(400):
        model.predict({**record, "island": f"{k:06d}" + "x" * 100_000})
    for k in range(UNSEEN_REMEMBERED + 100):
        model.predict({**record, "island": f"short {k}"})
    remembered = [t for t in ids._record_index if isinstance(t, str) and ids._record_index[t] == ids.unseen]
    assert len(ids._record_index) - before <= UNSEEN_REMEMBERED
    assert sum(sys.getsizeof(t) for t in remembered) <= UNSEEN_REMEMBERED_BYTES
    assert ids._remembered_bytes <= UNSEEN_REMEMBERED_BYTES
    # remembered or not, an unseen text predicts the same
    assert model.predict({**record, "island": "x" * 200_000}) == model.predict(
        {**record, "island": "Atlantis"}
    )


# ------------------------------------------------------------------- 14: pickling


def test_14_a_model_pickles_as_its_source_and_is_checked_again(house_prices: Built, tmp_path: Path) -> None:
    rows = records_from_frame(house_prices.trained.X_test.iloc[:20])
    for source in (house_prices.folder, house_prices.wheel):
        model = predictlib.load(source, threads=2)
        again = pickle.loads(pickle.dumps(model))
        assert (again.name, again.sha256, again.batch_threads) == (
            model.name,
            model.sha256,
            model.batch_threads,
        )
        np.testing.assert_array_equal(again.predict(rows), model.predict(rows))
        assert pickle.loads(pickle.dumps(model)) is again  # loaded once per process
    # the artifact changed between pickling and unpickling: refused
    folder = tmp_path / "artifact"
    shutil.copytree(house_prices.folder, folder)
    model = predictlib.load(folder)
    data = pickle.dumps(model)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["description"] = "another model"
    from predictlib.build.stages.manifest import dumps, seal

    (folder / "manifest.json").write_bytes(dumps(seal(manifest)))
    with pytest.raises(predictlib.ArtifactError, match="not the artifact pinned"):
        pickle.loads(data)
    # a Model made from an Artifact (not by load) has nowhere to be loaded from
    artifact = dataclasses.replace(read_artifact(house_prices.folder), locator=None)
    with pytest.raises(predictlib.PredictlibError, match="cannot be pickled"):
        pickle.dumps(predictlib.Model(artifact))


def test_14_pool_map_of_model_predict(house_prices: Built) -> None:
    model = predictlib.load(house_prices.folder)
    rows = records_from_frame(house_prices.trained.X_test.iloc[:40])
    chunks = [rows[i : i + 10] for i in range(0, 40, 10)]
    expected = [model.predict(c).tolist() for c in chunks]
    for method in ("fork", "spawn"):
        if method not in multiprocessing.get_all_start_methods():
            continue
        with multiprocessing.get_context(method).Pool(2) as pool:
            got = pool.map_async(model.predict, chunks).get(timeout=180)
        assert [g.tolist() for g in got] == expected, method


def test_14_a_pickled_model_loads_in_another_process(house_prices: Built) -> None:
    model = predictlib.load(house_prices.wheel)
    record = records_from_frame(house_prices.trained.X_test.iloc[:1])[0]
    code = (
        "import pickle, sys, json\n"
        "model = pickle.loads(sys.stdin.buffer.read())\n"
        f"print(json.dumps(model.predict({json.dumps(record, default=float)!s})))\n"
    )
    code = code.replace("NaN", "float('nan')")
    done = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(model), capture_output=True, check=True, timeout=120
    )
    assert math.isclose(json.loads(done.stdout), model.predict(record), rel_tol=0, abs_tol=0)


# ------------------------------------------- issue 13: named structures, same answers


def test_the_adapter_hands_named_structures(model: predictlib.Model, house_prices: Built) -> None:
    rows = records_from_frame(house_prices.trained.X_test.iloc[:3])
    adapted = model._adapter.from_records(rows, single=False)
    assert isinstance(adapted, Adapted)
    assert adapted.num.shape == (3, len(model._adapter.numeric)) and adapted.problems == []
    fast = model._adapter.one(rows[0])
    assert fast is not None and fast.num.shape == (1, len(model._adapter.numeric))
    prepared = model._adapt(rows)
    assert prepared.single is False and prepared.value_at(1, "LotArea") == rows[1]["LotArea"]
    _num, _cat, value_at, problems, _dt, single = model._adapt(rows[0])  # still unpacks in this order
    assert single is True and problems == [] and value_at(0, "LotArea") == rows[0]["LotArea"]
