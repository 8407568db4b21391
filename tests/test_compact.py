"""conversion/passes/compact.py: the lean graph's last passes, fewer nodes and the same
bits. Proven on hand-made graphs (onnxruntime runs the graph before and after on
hypothesis-drawn inputs, batched and one row at a time: every output identical bit for
bit) and on the bundled models' lean graphs (made with and without ``compact``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import ModelProto, TensorProto, helper, numpy_helper, shape_inference

import predictlib
from predictlib.build.passes import compact as compact_module
from predictlib.build.passes.compact import compact, fuse_gemm, identical
from predictlib.build.passes.fuse import ids_variant
from predictlib.build.passes.lean import _lean_feeds, _mixtures, lean_variant
from predictlib.build.project import Built


def model(
    nodes: list[Any], inits: dict[str, np.ndarray], inputs: dict[str, int], outputs: list[str]
) -> ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, TensorProto.DOUBLE, [None, w]) for k, w in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.DOUBLE, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    m.ir_version = 9
    return m


def copy(m: ModelProto) -> ModelProto:
    out = ModelProto()
    out.CopyFrom(m)
    return out


def run(m: ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(
        m.SerializeToString(), predictlib.default_session_options(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def ops(m: ModelProto) -> list[str]:
    return [n.op_type for n in m.graph.node]


def same(before: ModelProto, after: ModelProto, feeds: dict[str, np.ndarray]) -> bool:
    """Every output identical, as one batch and row by row."""
    pairs = list(zip(run(before, feeds), run(after, feeds), strict=True))
    for r in range(min(8, len(next(iter(feeds.values()))))):
        one = {k: v[r : r + 1] for k, v in feeds.items()}
        pairs += list(zip(run(before, one), run(after, one), strict=True))
    return all(identical(a, b) for a, b in pairs)


def linear(k: int = 6, n: int = 2, seed: int = 0) -> ModelProto:
    """An estimator's end: ``x @ W + b``, then ``Exp``."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["product"]),
        helper.make_node("Add", ["b", "product"], ["score"]),
        helper.make_node("Exp", ["score"], ["y"]),
    ]
    inits = {"W": rng.normal(size=(k, n)), "b": rng.normal(size=(1, n)) * 100}
    return model(nodes, inits, {"x": k}, ["y"])


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0, 1e300, -1e300, np.finfo(np.float64).max, np.inf, -np.inf, np.nan]),
)


def test_a_matmul_and_a_bias_become_one_gemm() -> None:
    before = linear()
    after = copy(before)
    done = compact(after)
    assert done.gemms == 1 and done.left == 0
    assert ops(after) == ["Gemm", "Exp"] and done.nodes_after == done.nodes_before - 1
    shape_inference.infer_shapes(after, strict_mode=True)
    x = np.random.default_rng(3).normal(size=(500, 6)) * 10.0 ** np.random.default_rng(4).uniform(
        -8, 8, (500, 6)
    )
    assert same(before, after, {"x": x})


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 9), st.just(6)), elements=cells))
def test_the_gemm_gives_the_same_bits(x: np.ndarray) -> None:
    before = linear()
    after = copy(before)
    fuse_gemm(after)
    assert same(before, after, {"x": x})


def test_a_sum_of_products_becomes_a_chain_of_gemms() -> None:
    """The lean graph's refusal test of two poisoned matrices: ``x @ 0 + z @ 0`` is NaN
    exactly on a row holding a NaN or an infinity in either."""
    nodes = [
        helper.make_node("MatMul", ["x", "zeros_x"], ["test_x"]),
        helper.make_node("MatMul", ["z", "zeros_z"], ["test_z"]),
        helper.make_node("MatMul", ["x", "zeros_x2"], ["test_x2"]),
        helper.make_node("Sum", ["test_x", "test_z", "test_x2"], ["test"]),
        helper.make_node("IsNaN", ["test"], ["flag"]),
        helper.make_node("Cast", ["flag"], ["y"], to=TensorProto.DOUBLE),
    ]
    inits = {"zeros_x": np.zeros((4, 1)), "zeros_z": np.zeros((3, 1)), "zeros_x2": np.zeros((4, 1))}
    before = model(nodes, inits, {"x": 4, "z": 3}, ["y", "test"])
    after = copy(before)
    assert fuse_gemm(after) == 2
    assert ops(after) == ["MatMul", "Gemm", "Gemm", "IsNaN", "Cast"]
    shape_inference.infer_shapes(after, strict_mode=True)
    rng = np.random.default_rng(5)
    x, z = rng.normal(size=(300, 4)), rng.normal(size=(300, 3))
    x[rng.random(x.shape) < 0.05] = np.inf
    z[rng.random(z.shape) < 0.05] = np.nan
    assert same(before, after, {"x": x, "z": z})
    flags = run(after, {"x": x, "z": z})[0].reshape(-1) == 1.0
    np.testing.assert_array_equal(flags, ~np.isfinite(x).all(axis=1) | ~np.isfinite(z).all(axis=1))


def test_what_cannot_be_fused_exactly_is_left() -> None:
    # a product read twice, and weights beyond the block MLAS takes at once
    read_twice = linear()
    read_twice.graph.node.append(helper.make_node("Neg", ["product"], ["other"]))
    read_twice.graph.output.append(helper.make_tensor_value_info("other", TensorProto.DOUBLE, None))
    assert fuse_gemm(read_twice) == 0
    wide = linear(k=compact_module.GEMM_MAX_K + 1, n=1)
    assert fuse_gemm(wide) == 0 and "Gemm" not in ops(wide)


def test_a_gemm_measured_different_is_not_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the bound lifted, 1,000 rows of weights: onnxruntime's Gemm adds the bias
    before the second block of the inner dimension, the bits differ, the measurement
    refuses the rewrite."""
    monkeypatch.setattr(compact_module, "GEMM_MAX_K", 4096)
    before = linear(k=1000, n=1)
    after = copy(before)
    done = compact(after)
    assert done.gemms == 0 and done.left == 1 and ops(after) == ops(before)


MODELS = ["house_prices", "penguins", "house_band", "house_dated"]


@pytest.mark.parametrize("name", MODELS)
def test_bundled_lean_graphs_compact_to_the_same_bits(built_models: dict[str, Built], name: str) -> None:
    exported = built_models[name].exported
    ids = ids_variant(exported.model, len(exported.categorical))
    assert ids is not None
    numeric, categorical = len(exported.numeric), len(exported.categorical)
    plain = lean_variant(ids, numeric, categorical, compact=False)
    compacted = lean_variant(ids, numeric, categorical)
    assert plain is not None and compacted is not None
    gemms = ops(compacted.model).count("Gemm")
    assert compacted.nodes_after == plain.nodes_after - gemms
    assert gemms == {"house_prices": 1, "penguins": 0, "house_band": 2, "house_dated": 0}[name]
    feeds = _lean_feeds(_mixtures(ids, numeric, categorical, rows=512))
    assert same(plain.model, compacted.model, feeds)
