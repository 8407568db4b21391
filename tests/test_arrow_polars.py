"""pyarrow and polars inputs: every arrow layout (chunked or not, string / large_string /
string_view / dictionary columns, all-null columns) and polars DataFrames predict
exactly what pandas predicts, and refuse exactly what pandas refuses, with the same
problems."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import predictlib
from predictlib.build.project import Built


@pytest.fixture(scope="module")
def model(house_prices: Built) -> predictlib.Model:
    return predictlib.load(house_prices.folder)


@pytest.fixture(scope="module")
def frame(house_prices: Built) -> pd.DataFrame:
    X = house_prices.trained.X_test.iloc[:60].copy().reset_index(drop=True)
    X.loc[0, "LotFrontage"] = np.nan  # a missing number the pipeline imputes
    X.loc[1, "Alley"] = None  # a missing category
    return X


def table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def recast(t: pa.Table, kind: Any) -> pa.Table:
    """Every text column of ``t`` as ``kind`` (a pyarrow type or "dictionary")."""
    columns = []
    for column in t.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = column.dictionary_encode() if kind == "dictionary" else column.cast(kind)
        columns.append(column)
    return pa.table(columns, names=t.column_names)


def chunked(t: pa.Table, size: int) -> pa.Table:
    """``t`` in chunks of ``size`` rows; dictionary columns get one dictionary per chunk."""
    return pa.concat_tables([t.slice(a, size) for a in range(0, t.num_rows, size)])


ARROW = {
    "table": table,
    "record batch": lambda f: table(f).combine_chunks().to_batches()[0],
    "chunked": lambda f: chunked(table(f), 7),
    "large_string": lambda f: recast(table(f), pa.large_string()),
    "string_view": lambda f: recast(table(f), pa.string_view()),
    "dictionary": lambda f: recast(table(f), "dictionary"),
    "dictionary, chunked": lambda f: pa.concat_tables(
        [recast(table(f.iloc[a : a + 13]), "dictionary") for a in range(0, len(f), 13)]
    ),
    "dictionary record batch": lambda f: recast(table(f), "dictionary").combine_chunks().to_batches()[0],
    "polars": pl.from_pandas,
    "polars categorical": lambda f: pl.from_pandas(f).with_columns(pl.col(pl.String).cast(pl.Categorical)),
}


@pytest.mark.parametrize("kind", sorted(ARROW))
def test_arrow_and_polars_predict_what_pandas_predicts(
    model: predictlib.Model, frame: pd.DataFrame, kind: str
) -> None:
    np.testing.assert_array_equal(model.predict(ARROW[kind](frame)), model.predict(frame))


def test_an_all_null_column_is_missing_values(model: predictlib.Model, frame: pd.DataFrame) -> None:
    alley = frame.assign(Alley=None)
    t = table(frame).set_column(frame.columns.get_loc("Alley"), "Alley", pa.nulls(len(frame)))
    assert t.schema.field("Alley").type == pa.null()
    np.testing.assert_array_equal(model.predict(t), model.predict(alley))
    np.testing.assert_array_equal(model.predict(pl.from_arrow(t)), model.predict(alley))


def test_a_classifier_and_a_datetime_model(built_models: dict[str, Built]) -> None:
    for name in ("penguins", "house_dated"):
        built = built_models[name]
        m = predictlib.load(built.folder)
        f = built.trained.X_test.iloc[:50].reset_index(drop=True)
        for data in (table(f), pl.from_pandas(f), chunked(table(f), 9)):
            np.testing.assert_array_equal(m.predict(data), m.predict(f))
            if m.task == "classification":
                np.testing.assert_array_equal(m.predict_proba(data), m.predict_proba(f))


def test_empty_and_large_inputs(model: predictlib.Model, frame: pd.DataFrame) -> None:
    assert model.predict(table(frame).slice(0, 0)).shape == (0,)
    assert model.predict(pl.from_pandas(frame.iloc[:0])).shape == (0,)
    big = pd.concat([frame] * 2_500, ignore_index=True)  # 150,000 rows: sliced and run by chunks
    np.testing.assert_array_equal(model.predict(pl.from_pandas(big)), model.predict(big))
    np.testing.assert_array_equal(model.predict(chunked(table(big), 40_000)), model.predict(big))


def problems(model: predictlib.Model, data: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(predictlib.InputError) as info:
        model.predict(data)
    return [(p.row, p.column, p.expected, p.value) for p in info.value.problems]


def same_problems(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Same rows, columns, reasons and values (a pandas value may be a numpy scalar)."""
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[3] == e[3] or (isinstance(e[3], float) and math.isnan(e[3]) and math.isnan(g[3]))


def test_refusals_by_the_graph_are_the_same(model: predictlib.Model, frame: pd.DataFrame) -> None:
    bad = frame.astype({"LotArea": np.float64, "GrLivArea": np.float64})
    bad.loc[3, "LotArea"] = -5.0  # the log step refuses it
    bad.loc[7, "GrLivArea"] = math.inf
    bad.loc[9, "Neighborhood"] = "never-seen-label"
    expected = problems(model, bad)
    assert {p[:2] for p in expected} >= {(3, "LotArea"), (7, "GrLivArea")}
    for kind in ("table", "chunked", "dictionary", "polars", "polars categorical"):
        same_problems(problems(model, ARROW[kind](bad)), expected)


def test_wrong_types_are_refused_with_the_same_problems(model: predictlib.Model, frame: pd.DataFrame) -> None:
    # text in a numeric column, a number in a categorical column, a bool in a numeric column
    for column, values in (
        ("LotArea", ["8450"] * len(frame)),
        ("Neighborhood", list(range(len(frame)))),
        ("LotArea", [True] * len(frame)),
    ):
        bad = frame.assign(**{column: values})
        expected = problems(model, bad)
        assert expected and all(p[1] == column for p in expected)
        same_problems(problems(model, table(bad)), expected)
        same_problems(problems(model, pl.from_pandas(bad)), expected)


def test_the_reserved_missing_text_is_refused(model: predictlib.Model, frame: pd.DataFrame) -> None:
    bad = frame.copy()
    bad.loc[4, "Alley"] = "__predictlib_missing__"
    expected = problems(model, bad)
    assert expected[0][:2] == (4, "Alley") and "reserved" in expected[0][2]
    for kind in ("table", "dictionary", "string_view", "polars", "polars categorical"):
        same_problems(problems(model, ARROW[kind](bad)), expected)
    # a dictionary holding the reserved text that no row uses is no problem
    t = recast(table(frame), "dictionary")
    j = t.column_names.index("Alley")
    alley = t.column(j).combine_chunks()
    widened = pa.DictionaryArray.from_arrays(
        alley.indices,
        pa.concat_arrays([alley.dictionary, pa.array(["__predictlib_missing__"], alley.dictionary.type)]),
    )
    np.testing.assert_array_equal(model.predict(t.set_column(j, "Alley", widened)), model.predict(frame))


def test_missing_columns_and_lazy_frames(model: predictlib.Model, frame: pd.DataFrame) -> None:
    expected = problems(model, frame.drop(columns=["LotArea", "Alley"]))
    same_problems(problems(model, table(frame).drop_columns(["LotArea", "Alley"])), expected)
    same_problems(problems(model, pl.from_pandas(frame).drop(["LotArea", "Alley"])), expected)
    with pytest.raises(predictlib.InputError, match=r"collect\(\)"):
        model.predict(pl.from_pandas(frame).lazy())


def test_numeric_columns_are_not_copied_by_polars(frame: pd.DataFrame) -> None:
    """polars hands its numeric buffers to arrow as they are (predictlib reads them
    with a zero-copy to_numpy): no copy before the one into the graph's input."""
    df = pl.from_pandas(frame[["LotArea", "GrLivArea"]].astype(np.float64))
    arrow = df.to_arrow().column("LotArea").chunk(0)
    view = arrow.to_numpy(zero_copy_only=True)
    assert view.ctypes.data == df["LotArea"].to_numpy().ctypes.data


def test_polars_texts_reach_the_reader_as_polars_holds_them(frame: pd.DataFrame) -> None:
    """polars' texts are given as string_view (its own layout, no copy) and categoricals
    as dictionaries of string_view: each slice casts its own on the batch threads, not
    the whole frame on one thread first; the answers are pandas' (tests above)."""
    from predictlib._polars import polars_to_arrow

    df = pl.from_pandas(frame[["MSZoning", "Alley"]])
    table = polars_to_arrow(df.with_columns(pl.col("Alley").cast(pl.Categorical)))
    assert str(table.column("MSZoning").type) == "string_view"
    assert str(table.column("Alley").type.value_type) == "string_view"
