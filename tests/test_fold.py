"""conversion/passes/fold.py: affine chains folded into fewest nodes, checks moved onto the
chain's input when that is exact, duplicates merged. Proven on hand-made graphs (onnxruntime
runs both graphs on hypothesis-drawn inputs: outputs within the tolerance, refusal checks
bit for bit) and on the bundled models' graphs (exported with and without the fold)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graph_harness import graph_model, run
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import ModelProto, helper

import predictlib
from predictlib.build.passes.fold import fold_affine, fold_numeric, merge_duplicates
from predictlib.build.project import Built
from predictlib.build.stages.export import export_pipeline
from predictlib.build.stages.verify import generate_records
from predictlib.build.tolerances import close_arrays

WIDTH = 5
MODELS = ["house_prices", "penguins", "house_band", "house_dated"]


def model(nodes: list[Any], inits: dict[str, np.ndarray], outputs: list[str]) -> ModelProto:
    return graph_model(nodes, inits, outputs, width=WIDTH)


def copy(m: ModelProto) -> ModelProto:
    out = ModelProto()
    out.CopyFrom(m)
    return out


def ops(m: ModelProto) -> list[str]:
    return [n.op_type for n in m.graph.node]


def scaler_then_linear(scale: float = 0.5, weights: np.ndarray | None = None) -> ModelProto:
    """A standard scaler, a min-max scaler and a linear regression, with the input
    guards of each step: the numeric end of an exported pipeline."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("IsInf", ["x"], ["guard_scaler"]),
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["standard"]),
        helper.make_node("Mul", ["standard", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "low"], ["v"]),
        helper.make_node("IsNaN", ["v"], ["guard_nan"]),
        helper.make_node("IsInf", ["v"], ["guard_inf"]),
        helper.make_node("MatMul", ["v", "coef"], ["product"]),
        helper.make_node("Add", ["product", "intercept"], ["y"]),
        helper.make_node("Exp", ["y"], ["prediction"]),
        helper.make_node("Concat", ["guard_scaler", "guard_nan", "guard_inf"], ["refusals"], axis=1),
    ]
    inits = {
        "mean": rng.normal(size=WIDTH) * 100,
        "std": rng.uniform(0.5, 50, size=WIDTH),
        "scale": np.full(WIDTH, scale),
        "low": rng.normal(size=(1, WIDTH)),
        "coef": weights if weights is not None else rng.normal(size=(WIDTH, 1)) * 0.1,
        "intercept": np.array([12.0]),
    }
    return model(nodes, inits, ["prediction", "refusals"])


def test_a_scaler_and_a_linear_model_fold_into_one_matmul_and_add() -> None:
    plain = scaler_then_linear()
    folded = copy(plain)
    done = fold_numeric(folded)
    assert done.chains_folded == 1 and done.checks_rewritten == 2
    # Sub, Div, Mul, Add, MatMul, Add -> MatMul, Add; IsInf of v is IsInf of x: merged
    assert ops(folded).count("MatMul") == 1 and "Sub" not in ops(folded) and "Div" not in ops(folded)
    assert ops(folded).count("IsInf") == 1 and ops(folded).count("Add") == 1
    assert len(folded.graph.node) == len(plain.graph.node) - 5
    assert 0 < done.max_rel_error < 1e-14 and done.tolerance_used < 1e-3
    onnx.checker.check_model(folded, full_check=True)


FLOATS = st.one_of(
    st.floats(-1e4, 1e4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, np.inf, -np.inf, np.nan, 1.7976931348623157e308]),
)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(WIDTH)), elements=FLOATS))
def test_the_folded_graph_gives_the_same_answers(x: np.ndarray) -> None:
    plain = scaler_then_linear()
    folded = copy(plain)
    fold_numeric(folded)
    with np.errstate(all="ignore"):
        (p, refusals), (q, flags) = run(plain, x), run(folded, x)
    np.testing.assert_array_equal(flags, refusals)  # the checks: bit for bit
    accepted = ~refusals.any(axis=1)
    assert close_arrays(q[accepted], p[accepted]).all()


def test_a_check_that_would_change_stays_on_the_unfolded_steps() -> None:
    """A scale of 1e300 overflows finite inputs: IsInf of the scaled matrix is not IsInf
    of x, so the steps stay for the checks; nothing is gained, nothing is folded."""
    plain = scaler_then_linear(scale=1e300)
    folded = copy(plain)
    done = fold_affine(folded)
    assert done.chains_folded == 0
    assert ops(folded) == ops(plain)


def test_a_zero_scale_keeps_its_checks_exact() -> None:
    """A zero scale turns +inf into NaN (0 * inf): IsNaN of the scaled matrix is not IsNaN of x."""
    plain = scaler_then_linear(scale=0.0)
    folded = copy(plain)
    fold_numeric(folded)
    x = np.array([[np.inf, 1.0, 2.0, 3.0, 4.0]])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(run(folded, x)[1], run(plain, x)[1])


def test_element_wise_steps_without_matmul_become_one_mul_and_one_add() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "a"], ["t1"]),
        helper.make_node("Div", ["t1", "b"], ["t2"]),
        helper.make_node("Neg", ["t2"], ["t3"]),
        helper.make_node("Sub", ["c", "t3"], ["t4"]),
        helper.make_node("Abs", ["t4"], ["out"]),
    ]
    inits = {"a": np.arange(WIDTH, dtype=np.float64), "b": np.array([4.0]), "c": np.array([[1.5] * WIDTH])}
    plain = model(nodes, inits, ["out"])
    folded = copy(plain)
    done = fold_numeric(folded)
    assert done.chains_folded == 1
    assert ops(folded) == ["Mul", "Add", "Abs"]
    x = np.random.default_rng(0).normal(size=(50, WIDTH)) * 1e3
    assert close_arrays(run(folded, x)[0], run(plain, x)[0]).all()


def test_a_chain_beyond_the_tolerance_is_left_unfolded() -> None:
    """(x + 1e17) - 1e17 is x in exact arithmetic, not in float64: the measured error is
    far beyond the tolerance, so the steps stay."""
    nodes = [
        helper.make_node("Add", ["x", "big"], ["t1"]),
        helper.make_node("Sub", ["t1", "big"], ["t2"]),
        helper.make_node("Abs", ["t2"], ["out"]),
    ]
    plain = model(nodes, {"big": np.array([1e17])}, ["out"])
    folded = copy(plain)
    done = fold_affine(folded)
    assert done.chains_folded == 0 and done.chains_left == 1
    assert ops(folded) == ops(plain)


def test_duplicates_are_merged_and_graph_outputs_kept() -> None:
    nodes = [
        helper.make_node("IsInf", ["x"], ["a"]),
        helper.make_node("IsInf", ["x"], ["b"]),
        helper.make_node("IsInf", ["x"], ["kept"], detect_negative=0),
        helper.make_node("Concat", ["a", "b", "kept"], ["out"], axis=1),
    ]
    m = model(nodes, {}, ["out"])
    assert merge_duplicates(m) == 1
    assert ops(m) == ["IsInf", "IsInf", "Concat"]
    x = np.array([[np.inf, -np.inf, 0.0, 1.0, np.nan]])
    assert run(m, x)[0].tolist() == [
        [True, True, False, False, False] * 2 + [True, False, False, False, False]
    ]


# ------------------------------------------------------------------ real graphs


@pytest.mark.parametrize("name", MODELS)
def test_bundled_models_fold_within_the_tolerance(built_models: dict[str, Built], name: str) -> None:
    built = built_models[name]
    trained = built.trained
    folded = built.exported
    plain = export_pipeline(trained.model, folded.columns, fold=False)
    assert plain.folding is None and folded.folding is not None
    assert len(folded.model.graph.node) == len(plain.model.graph.node) - folded.folding.nodes_removed
    if name == "house_prices":  # min-max scaler + Lasso: one MatMul + Add, guards merged
        assert folded.folding.chains_folded == 1 and folded.folding.nodes_removed >= 3
    records = generate_records(trained.X_train, folded.columns, 2000, seed=11)
    records = [r for r in records if all(type(v) is not str or v.isprintable() for v in r.values())]
    a, b = _outputs(plain, records), _outputs(folded, records)
    np.testing.assert_array_equal(b["refusals"], a["refusals"])
    accepted = ~a["refusals"].any(axis=1)
    assert accepted.any()
    for output in a:
        if output == "refusals":
            continue
        if a[output].dtype == np.float64:
            assert close_arrays(b[output][accepted], a[output][accepted]).all(), output
        else:
            np.testing.assert_array_equal(b[output][accepted], a[output][accepted])


def _outputs(exported: Any, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    from predictlib._inputs import InputAdapter

    adapter = InputAdapter(
        exported.numeric, exported.categorical, "__predictlib_missing__", exported.datetime
    )
    num, cat, _, problems, dt = adapter.from_records(records, single=False)
    assert not problems
    feeds = {"num": num, "cat": cat}
    if exported.datetime:
        feeds["dt"] = dt
    session = ort.InferenceSession(
        exported.model.SerializeToString(),
        predictlib.default_session_options(),
        providers=["CPUExecutionProvider"],
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))
