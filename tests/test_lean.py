"""The lean graph (conversion/passes/lean.py), its manifest section and the runtime's
compiled reader (src/predictlib/_reader.py, _lean.py):

* the lean graph refuses exactly the rows model.onnx refuses and answers within the
  tolerance elsewhere, on every bundled model;
* a refused row's problems name the same checks, columns and values as model.onnx's
  ``refusals`` (the lean graph says *whether*, model.onnx *which*);
* artifacts without a lean graph load and answer the same: the ids graph of
  ``inputs.category_ids`` (the 1.1.0 layout) and texts only (the 1.0.0 layout);
* the reader takes only plain values, exactly as the checked path converts them, and
  hands everything else to the checked path.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import shutil
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predictlib
from predictlib._ids import CategoryIds
from predictlib._inputs import InputAdapter
from predictlib.build.passes.fuse import ids_variant
from predictlib.build.project import Built
from predictlib.build.stages.export import export_pipeline
from predictlib.build.stages.manifest import dumps, seal
from predictlib.build.stages.verify import generate_records
from predictlib.build.tolerances import close_arrays

MODELS = ["house_prices", "penguins", "house_band", "house_dated"]
MISSING = "__predictlib_missing__"


def session(model: Any) -> ort.InferenceSession:
    return ort.InferenceSession(
        model.SerializeToString(), predictlib.default_session_options(), providers=["CPUExecutionProvider"]
    )


def printable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if all(type(v) is not str or v.isprintable() for v in r.values())]


# ------------------------------------------------------------------ the graph


@pytest.mark.parametrize("name", MODELS)
def test_every_bundled_model_gets_a_lean_graph(built_models: dict[str, Built], name: str) -> None:
    exported = built_models[name].exported
    lean = exported.lean
    assert lean is not None and exported.ids_model is lean.model
    inputs = [i.name for i in lean.model.graph.input]
    assert inputs == (["x", "dt"] if exported.datetime else ["x"])
    assert "refusals" not in [o.name for o in lean.model.graph.output]
    plain_ids = ids_variant(exported.model, len(exported.categorical))
    # one input instead of two (about 0.9 us per call) for at most one more node (about 0.3 us)
    assert plain_ids is not None and lean.nodes_after <= len(plain_ids.graph.node) + 1
    manifest = built_models[name].manifest
    assert manifest["lean"]["refused"] == lean.signal and "category_ids" not in manifest["inputs"]


def test_house_prices_refusal_test_costs_no_node(built_models: dict[str, Built]) -> None:
    """The checks (log of non-positive values, unseen categories, NaN and infinities before
    the scaler and the Lasso) all reach the estimator's input: a zero column of its
    weights is the whole test, read in ``prediction``'s second column."""
    lean = built_models["house_prices"].exported.lean
    assert lean is not None
    assert lean.signal == {"output": "prediction", "kind": "nan", "column": 1}
    ops = [n.op_type for n in lean.model.graph.node]
    # the estimator's MatMul + Add is one Gemm (conversion/passes/compact.py)
    assert "IsInf" not in ops and "LessOrEqual" not in ops and ops.count("Gemm") == 1 and "MatMul" not in ops
    assert lean.nodes_after <= 13


@pytest.mark.parametrize("name", MODELS)
def test_the_lean_graph_refuses_what_model_onnx_refuses(built_models: dict[str, Built], name: str) -> None:
    built = built_models[name]
    exported = built.exported
    records = printable(generate_records(built.trained.X_train, exported.columns, 3000, seed=5))
    ids = CategoryIds(exported.fusion.vocabulary, MISSING)
    adapter = InputAdapter(exported.numeric, exported.categorical, MISSING, exported.datetime, ids)
    num, cat, _, problems, moments = adapter.from_records(records, single=False)
    assert not problems
    plain = session(ids_variant(exported.model, len(exported.categorical)))
    feeds = {"num": num, "cat_ids": cat, "dt": moments}
    names = [o.name for o in plain.get_outputs()]
    expected = dict(
        zip(
            names,
            plain.run(
                names,
                {k: feeds[k] for k in ("num", "cat_ids", "dt") if k in {i.name for i in plain.get_inputs()}},
            ),
            strict=True,
        )
    )
    model = predictlib.load(built.folder)
    lean = model._lean
    assert lean is not None
    got = lean._run(lean.names, lean.feeds(num, cat, moments), lean._run_options)
    refused_mask = lean._refused(got)
    refused = expected["refusals"].any(axis=1)
    assert refused.any() and not refused.all()
    np.testing.assert_array_equal(refused_mask, refused)
    for k, output in enumerate(names[: len(got)]):
        if expected[output].dtype == np.float64:
            assert close_arrays(got[k][~refused], expected[output][~refused]).all()
        else:
            np.testing.assert_array_equal(got[k][~refused], expected[output][~refused])


def test_lean_switched_off_ships_the_ids_graph(built_models: dict[str, Built]) -> None:
    built = built_models["penguins"]
    exported = export_pipeline(built.trained.model, built.exported.columns, lean=False)
    assert exported.lean is None and exported.ids_model is not None
    assert [i.name for i in exported.ids_model.graph.input] == ["num", "cat_ids"]


# ------------------------------------------------------------------ the runtime


def artifact_without_lean(built: Built, folder: Path, layout: str) -> Path:
    """``built``'s artifact as an earlier build wrote it: ``"ids"`` (1.1.0: the ids graph
    of ``inputs.category_ids``) or ``"texts"`` (1.0.0: model.onnx alone)."""
    shutil.copytree(built.folder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    lean = manifest.pop("lean")
    if layout == "ids":
        exported = built.exported
        graph = ids_variant(exported.model, len(exported.categorical))
        assert graph is not None
        data = graph.SerializeToString(deterministic=True)
        (folder / "model.ids.onnx").write_bytes(data)
        import hashlib

        manifest["integrity"]["ids_model_sha256"] = hashlib.sha256(data).hexdigest()
        manifest["inputs"]["category_ids"] = {
            "file": "model.ids.onnx",
            "input": "cat_ids",
            "vocabulary": lean["vocabulary"],
        }
    else:
        (folder / "model.ids.onnx").unlink()
        del manifest["integrity"]["ids_model_sha256"]
    (folder / "manifest.json").write_bytes(dumps(seal(manifest)))
    return folder


@pytest.mark.parametrize("name", ["house_prices", "house_dated"])
@pytest.mark.parametrize("layout", ["ids", "texts"])
def test_earlier_layouts_load_and_give_the_same_answers_and_reasons(
    built_models: dict[str, Built], name: str, layout: str, tmp_path: Path
) -> None:
    built = built_models[name]
    old = predictlib.load(artifact_without_lean(built, tmp_path / "old", layout))
    new = predictlib.load(built.folder)
    assert old._lean is None and new._lean is not None
    records = printable(generate_records(built.trained.X_train, built.exported.columns, 600, seed=3))
    accepted, refused = [], []
    for record in records:
        try:
            answer = old.predict(record)
        except predictlib.InputError as exc:
            refused.append((record, [str(p) for p in exc.problems]))
            continue
        accepted.append((record, answer))
    assert len(accepted) > 100 and len(refused) > 10
    for record, answer in accepted:
        assert math.isclose(new.predict(record), answer, rel_tol=1e-9, abs_tol=1e-9) or answer == new.predict(
            record
        )
    for record, problems in refused:  # the same checks, columns and values, per record
        with pytest.raises(predictlib.InputError) as exc:
            new.predict(record)
        assert [str(p) for p in exc.value.problems] == problems
    # a batch: every refused record's problems, by row
    batch = [r for r, _ in accepted[:50]] + [r for r, _ in refused[:10]]
    with pytest.raises(predictlib.InputError) as from_old:
        old.predict(batch)
    with pytest.raises(predictlib.InputError) as from_new:
        new.predict(batch)
    assert [str(p) for p in from_new.value.problems] == [str(p) for p in from_old.value.problems]
    fine = [r for r, _ in accepted[:200]]
    assert close_arrays(new.predict(fine), old.predict(fine)).all()


# ------------------------------------------------------------------ the reader


@pytest.fixture(scope="module")
def house(built_models: dict[str, Built]) -> tuple[predictlib.Model, dict[str, Any]]:
    built = built_models["house_prices"]
    model = predictlib.load(built.folder)
    record = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in built.trained.X_test.iloc[0].to_dict().items()
    }
    return model, record


def checked(model: predictlib.Model, record: dict[str, Any]) -> np.ndarray:
    """x as the checked path builds it: the numbers, then the category ids."""
    num, cat, _, problems, _ = model._adapter.from_records([record], single=True)
    assert not problems
    return np.concatenate([num, cat.astype(np.float64)], axis=1)


def test_the_reader_builds_what_the_checked_path_builds(
    house: tuple[predictlib.Model, dict[str, Any]],
) -> None:
    model, record = house
    reader = model._lean.reader
    numeric, categorical = model._adapter.numeric, model._adapter.categorical
    variants = [
        record,
        {**record, numeric[0]: None, numeric[1]: 3, numeric[2]: -0.0, numeric[3]: math.inf},
        {**record, numeric[0]: 2**60 + 1, categorical[0]: None, categorical[1]: math.nan},
        {**record, categorical[0]: "never seen in training", "extra column": object()},
    ]
    for variant in variants:
        got = reader.read(variant)
        assert got is not None and got[1] is None
        np.testing.assert_array_equal(got[0], checked(model, variant))


@pytest.mark.parametrize(
    "change",
    [
        lambda n, c: {n: True},
        lambda n, c: {n: np.float64(1.5)},
        lambda n, c: {n: "12.5"},
        lambda n, c: {n: decimal.Decimal("1.5")},
        lambda n, c: {n: 10**400},
        lambda n, c: {n: np.datetime64("2020-01-01")},
        lambda n, c: {c: 5},
        lambda n, c: {c: MISSING},
        lambda n, c: {c: "lone \ud800 surrogate"},
        lambda n, c: {c: ["a", "list"]},
        lambda n, c: {c: b"bytes"},
    ],
)
def test_the_reader_leaves_anything_else_to_the_checked_path(
    house: tuple[predictlib.Model, dict[str, Any]], change: Any
) -> None:
    model, record = house
    n, c = model._adapter.numeric[0], model._adapter.categorical[0]
    variant = {**record, **change(n, c)}
    assert model._lean.reader.read(variant) is None
    missing = dict(record)
    del missing[n]
    assert model._lean.reader.read(missing) is None


def test_the_reader_reads_datetimes_as_the_checked_path(built_models: dict[str, Built]) -> None:
    built = built_models["house_dated"]
    model = predictlib.load(built.folder)
    (column,) = model._adapter.datetime
    base = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in built.trained.X_test.iloc[0].to_dict().items()
    }
    for moment in (dt.datetime(2008, 2, 29, 13, 5), None, np.datetime64("2007-01-01"), dt.date(2009, 5, 1)):
        record = {**base, column: moment}
        got = model._lean.reader.read(record)
        assert got is not None
        _, _, _, problems, moments = model._adapter.from_records([record], single=True)
        assert not problems
        np.testing.assert_array_equal(got[1], moments)
    for bad in (dt.datetime(2008, 1, 1, tzinfo=dt.timezone.utc), "2008-01-01", dt.datetime(1, 1, 1)):
        assert model._lean.reader.read({**base, column: bad}) is None


VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.sampled_from(["x", "RL", "Pave", MISSING, "", "CollgCr"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.integers(0, 78), VALUES, max_size=4))
def test_one_record_gives_what_the_checked_path_gives(
    house: tuple[predictlib.Model, dict[str, Any]], changes: dict[int, Any]
) -> None:
    """The fast path (reader + lean graph) and the checked path (adapter + the same graph,
    reasons from model.onnx) agree on the answer or on every problem."""
    model, record = house
    columns = model.columns
    variant = {**record, **{columns[k]: v for k, v in changes.items()}}
    try:
        fast: Any = model.predict(variant)
    except predictlib.InputError as exc:
        fast = [str(p) for p in exc.problems]
    try:  # a record that is not a dict is read by the checked path
        results, _ = model._run([MappingProxyType(variant)])
        slow: Any = results[0].item(0)
    except predictlib.InputError as exc:
        slow = [str(p).replace("row 0, ", "") for p in exc.problems]
    if isinstance(fast, float) and isinstance(slow, float):
        assert fast == slow or (math.isnan(fast) and math.isnan(slow))
    else:
        assert fast == slow
