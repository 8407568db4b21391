"""conversion/passes/simplify.py on small hand-made graphs: what it removes or rewrites, and
that the outputs stay the same (onnxruntime runs both graphs)."""

from __future__ import annotations

import numpy as np
from graph_harness import graph_model, run
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import ModelProto, TensorProto, helper

from predictlib.build.passes.simplify import simplify

WIDTH = 6


def model(nodes: list, inits: dict[str, np.ndarray], outputs: list[str]) -> ModelProto:
    return graph_model(nodes, inits, outputs, width=WIDTH, opsets={"": 19, "ai.onnx.ml": 3})


def imputers_then_assembly() -> ModelProto:
    """Two imputers on columns of x, a log of a mix of imputed and raw columns, and the
    matrix assembled from blocks: the shape of an exported feature-engine pipeline."""
    nodes = [
        helper.make_node("Gather", ["x", "c_a"], ["a"], axis=1),
        helper.make_node("IsNaN", ["a"], ["a_nan"]),
        helper.make_node("Where", ["a_nan", "fill_a", "a"], ["a_filled"]),
        helper.make_node("Gather", ["x", "c_b"], ["b"], axis=1),
        helper.make_node("IsNaN", ["b"], ["b_nan"]),
        helper.make_node("Where", ["b_nan", "fill_b", "b"], ["b_filled"]),
        helper.make_node("Gather", ["x", "c_i"], ["i"], axis=1),
        helper.make_node("IsNaN", ["i"], ["i_nan"]),
        helper.make_node("Cast", ["i_nan"], ["indicator"], to=TensorProto.DOUBLE),
        helper.make_node("Concat", ["a_filled", "x"], ["ax"], axis=1),
        helper.make_node("Gather", ["ax", "c_log"], ["to_log"], axis=1),
        helper.make_node("Log", ["to_log"], ["logged"]),
        helper.make_node("Concat", ["x", "logged", "b_filled", "a_filled", "indicator"], ["all"], axis=1),
        helper.make_node("Gather", ["all", "c_order"], ["matrix"], axis=1),
        helper.make_node("Cast", ["matrix"], ["same"], to=TensorProto.DOUBLE),
        helper.make_node("Reshape", ["same", "shape"], ["reshaped"]),
        helper.make_node("Abs", ["reshaped"], ["out"]),
    ]
    inits = {
        "c_a": np.array([0, 2], dtype=np.int64),
        "fill_a": np.array([[5.0, -1.0]]),
        "c_b": np.array([3], dtype=np.int64),
        "fill_b": np.array([[0.0]]),
        "c_i": np.array([0, 3], dtype=np.int64),
        # columns of ax = [a_filled (2), x (6)]: imputed column 0, raw columns 1 and 4
        "c_log": np.array([0, 3, 6], dtype=np.int64),
        # columns of all = [x (6), logged (3), b_filled (1), a_filled (2), indicator (2)]
        "c_order": np.array([10, 1, 6, 7, 8, 9, 11, 4, 5, 12, 13], dtype=np.int64),
        "shape": np.array([-1, 11], dtype=np.int64),
    }
    return model(nodes, inits, ["out", "i_nan"])


def test_imputers_assembly_and_no_ops_are_simplified() -> None:
    plain = imputers_then_assembly()
    simple = ModelProto()
    simple.CopyFrom(plain)
    done = simplify(simple)
    ops = [n.op_type for n in simple.graph.node]
    assert "Reshape" not in ops and ops.count("Cast") == 1  # the double -> double cast is gone
    assert ops.count("Where") == 1 and ops.count("IsNaN") == 1  # one imputation for both imputers
    assert len(simple.graph.node) < len(plain.graph.node) - 6
    assert done["nodes_saved"] > 6 and done["column_selections"] >= 1
    assert "ArrayFeatureExtractor" in ops


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.just(WIDTH)),
        elements=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(np.nan)),
    )
)
def test_simplified_graph_gives_the_same_outputs(x: np.ndarray) -> None:
    plain = imputers_then_assembly()
    simple = ModelProto()
    simple.CopyFrom(plain)
    simplify(simple)
    with np.errstate(all="ignore"):
        for got, expected in zip(run(simple, x), run(plain, x), strict=True):
            np.testing.assert_array_equal(got, expected)


def test_conflicting_fills_of_one_column_are_left_alone() -> None:
    nodes = [
        helper.make_node("Gather", ["x", "c"], ["a"], axis=1),
        helper.make_node("IsNaN", ["a"], ["a_nan"]),
        helper.make_node("Where", ["a_nan", "f1", "a"], ["one"]),
        helper.make_node("Gather", ["x", "c"], ["b"], axis=1),
        helper.make_node("IsNaN", ["b"], ["b_nan"]),
        helper.make_node("Where", ["b_nan", "f2", "b"], ["two"]),
    ]
    inits = {"c": np.array([1], dtype=np.int64), "f1": np.array([[1.0]]), "f2": np.array([[2.0]])}
    m = model(nodes, inits, ["one", "two"])
    simplify(m)
    assert [n.op_type for n in m.graph.node].count("Where") == 2
    x = np.full((1, WIDTH), np.nan)
    one, two = run(m, x)
    assert one[0, 0] == 1.0 and two[0, 0] == 2.0


def test_a_reshape_that_changes_the_shape_is_kept() -> None:
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["out"])]
    m = model(nodes, {"shape": np.array([-1, 2, 3], dtype=np.int64)}, ["out"])
    simplify(m)
    assert [n.op_type for n in m.graph.node] == ["Reshape"]
