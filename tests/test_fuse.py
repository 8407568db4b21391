"""The graph optimisations (conversion/passes/fuse.py, conversion/passes/simplify.py) and the ids
graph the runtime feeds: the optimised graph, its ids variant and the plain export
must agree on every record, refusals included."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from feature_engine.encoding import OrdinalEncoder, RareLabelEncoder
from feature_engine.imputation import CategoricalImputer
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

import predictlib
from predictlib._ids import CategoryIds
from predictlib._inputs import InputAdapter
from predictlib.build.passes.fuse import ids_variant
from predictlib.build.project import Built
from predictlib.build.stages.export import export_pipeline
from predictlib.build.stages.verify import generate_records

MODELS = ["house_prices", "penguins", "house_band", "house_dated", "house_sklearn"]


def session(model: Any) -> ort.InferenceSession:
    return ort.InferenceSession(
        model.SerializeToString(), predictlib.default_session_options(), providers=["CPUExecutionProvider"]
    )


def run(exported: Any, model: Any, records: list[dict[str, Any]], ids: bool = False) -> dict[str, np.ndarray]:
    """The graph's outputs on ``records`` (inputs built by the runtime's adapter)."""
    vocabulary = exported.fusion.vocabulary if ids else None
    adapter = InputAdapter(
        exported.numeric,
        exported.categorical,
        "__predictlib_missing__",
        exported.datetime,
        CategoryIds(vocabulary, "__predictlib_missing__") if ids else None,
    )
    num, cat, _, problems, dt = adapter.from_records(records, single=False)
    assert not problems
    feeds = {"num": num, ("cat_ids" if ids else "cat"): cat}
    if exported.datetime:
        feeds["dt"] = dt
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def refused_rows(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs["refusals"].any(axis=1)


@pytest.mark.parametrize("name", MODELS)
def test_optimised_graph_gives_the_plain_graphs_answers(built_models: dict[str, Built], name: str) -> None:
    built = built_models[name]
    trained = built.trained
    assert built.exported.fusion is not None, "every model of models/ has a fusable categorical part"
    # the fusion and clean-ups alone (the fold is tested in test_fold.py, the lean graph in
    # test_lean.py): the same answers bit for bit
    fused = export_pipeline(trained.model, built.exported.columns, fold=False, lean=False)
    unfused = export_pipeline(trained.model, fused.columns, fuse=False, clean_up=False, fold=False)
    assert unfused.fusion is None and unfused.ids_model is None
    assert len(fused.model.graph.node) < len(unfused.model.graph.node)
    records = generate_records(trained.X_train, fused.columns, 3000, seed=7)
    records = [r for r in records if all(type(v) is not str or v.isprintable() for v in r.values())]
    a = run(unfused, unfused.model, records)
    b = run(fused, fused.model, records)
    c = run(fused, fused.ids_model, records, ids=True)
    refused = refused_rows(a)
    assert refused.any() and not refused.all()
    np.testing.assert_array_equal(refused_rows(b), refused)
    np.testing.assert_array_equal(refused_rows(c), refused)
    np.testing.assert_array_equal(b["refusals"], c["refusals"])
    for output in a:
        if output == "refusals":
            continue
        np.testing.assert_array_equal(b[output][~refused], a[output][~refused])
        np.testing.assert_array_equal(c[output], b[output])


@pytest.mark.parametrize("name", MODELS)
def test_only_checks_that_cannot_fire_are_dropped(built_models: dict[str, Built], name: str) -> None:
    """Each check the fusion dropped is one the tables show can never fire: the unfused
    graph's check never fires on any text of the vocabulary or any other text."""
    built = built_models[name]
    fused = built.exported
    unfused = export_pipeline(built.trained.model, fused.columns, fuse=False)
    kept = {(c.column, c.step, c.reason) for c in fused.checks}
    dropped = [i for i, c in enumerate(unfused.checks) if (c.column, c.step, c.reason) not in kept]
    assert len(dropped) == fused.fusion.checks_dropped
    texts = [t for t in fused.fusion.vocabulary if t != "__predictlib_missing__"]
    texts += ["never seen in training", None]
    base = built.trained.X_train.iloc[0].to_dict()
    records = [{**base, **{c: t for c in fused.categorical}} for t in texts]
    flags = run(unfused, unfused.model, records)["refusals"]
    assert not flags[:, dropped].any()


def test_a_transformer_ending_in_texts_is_left_unfused() -> None:
    frame = pd.DataFrame({"a": ["x", None, "y", "x"], "b": ["u", "v", None, "u"]}, dtype=object)
    from predictlib.build.stages.export import infer_columns

    step = CategoricalImputer(imputation_method="frequent").fit(frame)
    exported = export_pipeline(step, infer_columns(frame))
    assert exported.fusion is None and exported.ids_model is None


def test_fusion_of_a_small_pipeline_with_rare_and_unseen_texts() -> None:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue", "teal"], size=n, p=[0.5, 0.3, 0.19, 0.01]),
            "size": rng.choice(["S", "M", "L", None], size=n),
            "x": rng.normal(size=n),
        }
    ).astype({"colour": object, "size": object})
    y = rng.normal(size=n)
    pipe = Pipeline(
        [
            ("impute", CategoricalImputer(imputation_method="missing", variables=["colour", "size"])),
            ("rare", RareLabelEncoder(tol=0.05, n_categories=2, variables=["colour"])),
            (
                "encode",
                OrdinalEncoder(encoding_method="arbitrary", unseen="raise", variables=["colour", "size"]),
            ),
            ("model", LinearRegression()),
        ]
    ).fit(frame, y)
    from predictlib.build.stages.export import infer_columns

    exported = export_pipeline(pipe, infer_columns(frame))
    assert exported.fusion is not None
    assert {"Rare", "Missing", "red", "S"} <= set(exported.fusion.vocabulary)
    records = [
        {"colour": c, "size": s, "x": 0.5}
        for c in ["red", "teal", "purple", None, "Rare"]
        for s in ["S", "XL", None, "Missing"]
    ]
    out = run(exported, exported.model, records)
    out_ids = run(exported, ids_variant(exported.model, len(exported.categorical)), records, ids=True)
    np.testing.assert_array_equal(out["refusals"], out_ids["refusals"])
    for i, record in enumerate(records):
        x = pd.DataFrame([record]).astype({"colour": object, "size": object})
        try:
            expected = pipe.predict(x)[0]
        except Exception:  # noqa: BLE001 - the original refuses: so must the graph
            assert out["refusals"][i].any(), record
            continue
        assert not out["refusals"][i].any(), record
        assert out["prediction"][i, 0] == pytest.approx(expected, rel=1e-12)
        assert out_ids["prediction"][i, 0] == out["prediction"][i, 0]


# ------------------------------------------------------------------- CategoryIds

VOCABULARY = ["Missing", "Rare", "a", "b", "é", "__predictlib_missing__"]
IDS = CategoryIds(VOCABULARY, "__predictlib_missing__")
MISSING_ID = VOCABULARY.index("__predictlib_missing__")

cell = st.one_of(
    st.sampled_from([*VOCABULARY, None, float("nan")]),
    st.text(max_size=4),
    st.integers(-3, 3),
    st.sampled_from(["\ud800", "x\udfff"]),
    st.just([1, 2]),
)


def expected_id(value: Any) -> int | None:
    """What a record's value maps to; None: the checked path must name it."""
    if value is None or (type(value) is float and value != value):
        return MISSING_ID
    if type(value) is not str or value == "__predictlib_missing__":
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return VOCABULARY.index(value) if value in VOCABULARY else len(VOCABULARY)


@settings(max_examples=300, deadline=None)
@given(st.lists(cell, min_size=1, max_size=6))
def test_ids_of_a_record(values: list[Any]) -> None:
    expected = [expected_id(v) for v in values]
    for _ in range(2):  # the second time, the texts outside the vocabulary are remembered
        got = IDS.row(values)
        if None in expected:
            assert got is None
        else:
            assert got is not None and got.tolist() == [expected]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=3) | st.sampled_from(VOCABULARY), min_size=1, max_size=30))
def test_ids_of_a_column_from_texts_and_from_arrow(texts: list[str]) -> None:
    pa = pytest.importorskip("pyarrow")
    texts = [t for t in texts if t != "__predictlib_missing__"]
    column = np.empty(len(texts), dtype=object)
    column[:] = texts
    ids, bad = IDS.column(column)
    assert bad == []
    assert ids.tolist() == [VOCABULARY.index(t) if t in VOCABULARY else len(VOCABULARY) for t in texts]
    with_nulls = pa.array([*texts, None], type=pa.string())
    arrow = IDS.arrow_column(with_nulls)
    assert arrow is not None
    assert arrow.tolist() == [*ids.tolist(), MISSING_ID]


def test_a_column_holding_the_reserved_text_goes_to_the_checked_path() -> None:
    pa = pytest.importorskip("pyarrow")
    assert IDS.arrow_column(pa.array(["a", "__predictlib_missing__"])) is None
    ids, bad = IDS.column(np.array(["a", "\ud800"], dtype=object))
    assert bad == [1] and ids.tolist() == [2, len(VOCABULARY)]


def test_vocabulary_must_hold_the_sentinel_once() -> None:
    with pytest.raises(ValueError, match="sentinel"):
        CategoryIds(["a"], "__predictlib_missing__")
    with pytest.raises(ValueError, match="distinct"):
        CategoryIds(["a", "a", "__predictlib_missing__"], "__predictlib_missing__")


def test_house_prices_graph_is_small(built_models: dict[str, Built]) -> None:
    """The latency budget rests on the node count (about 0.3 us per node for one row):
    the optimisations take house_prices' graph from 48 nodes to 27."""
    built = built_models["house_prices"]
    exported = built.exported
    plain = export_pipeline(built.trained.model, exported.columns, fuse=False, clean_up=False, fold=False)
    assert len(plain.model.graph.node) >= 45
    assert len(exported.model.graph.node) <= 28
    ops = {n.op_type for n in exported.ids_model.graph.node}
    assert "Reshape" not in ops and "Equal" not in ops  # no-op reshape removed, no string comparison left


def handmade(compare_with: str) -> Any:
    """cat [N, 2] -> y = (column 0 == ``compare_with``) as float64, ``compare_with`` a
    constant text or the other column."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["cat", "first"], ["c0"], axis=1),
        helper.make_node("Gather", ["cat", "second"], ["c1"], axis=1),
        helper.make_node("Equal", ["c0", "c1" if compare_with == "column" else "text"], ["same"]),
        helper.make_node("Cast", ["same"], ["y"], to=TensorProto.DOUBLE),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "first"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "second"),
        helper.make_tensor("text", TensorProto.STRING, [1], [compare_with.encode()]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("cat", TensorProto.STRING, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 9
    return model


def test_a_column_computed_from_two_input_columns_is_not_fused() -> None:
    """y = (a == b) depends on two columns: no table of one column can hold it, even
    when random mixtures rarely show it (the dependency is read from the graph)."""
    from predictlib.build.core.frame import ExportState
    from predictlib.build.passes.fuse import fuse_categorical

    model = handmade("column")
    before = model.SerializeToString()
    assert fuse_categorical(model, ExportState()) is None
    assert model.SerializeToString() == before


def test_a_handmade_region_is_fused_exactly() -> None:
    from predictlib.build.core.frame import ExportState
    from predictlib.build.passes.fuse import fuse_categorical

    plain, fused = handmade("a"), handmade("a")
    fusion = fuse_categorical(fused, ExportState())
    assert fusion is not None and fusion.vocabulary == ["__predictlib_missing__", "a"]
    cat = np.array([["a", "b"], ["b", "a"], ["zz", "a"], ["__predictlib_missing__", ""]], dtype=object)
    np.testing.assert_array_equal(
        session(fused).run(None, {"cat": cat})[0], session(plain).run(None, {"cat": cat})[0]
    )


def test_export_bytes_do_not_depend_on_earlier_conversions(built_models: dict[str, Built]) -> None:
    """A release record pins model.onnx's sha256, so an export must give the same bytes
    whatever the process converted before (skl2onnx's opset-import order did not)."""
    for name in reversed(MODELS):  # another order than the build's
        built = built_models[name]
        again = export_pipeline(built.trained.model, built.exported.columns, name=name)
        assert again.model.SerializeToString(deterministic=True) == (built.folder / "model.onnx").read_bytes()
