"""Hand-made ONNX graphs for the tests of the graph passes (test_fold, test_simplify): one
float64 input ``x`` of ``width`` columns, output types from shape inference (as the
exporter's graphs have them), run in a real onnxruntime session with the runtime's options."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import ModelProto, TensorProto, helper, numpy_helper, shape_inference

import predictlib


def graph_model(
    nodes: list[Any],
    inits: dict[str, np.ndarray],
    outputs: list[str],
    *,
    width: int,
    opsets: dict[str, int] | None = None,
) -> ModelProto:
    """A model of ``nodes`` and the initializers ``inits`` from ``x`` to ``outputs``
    (``opsets``: the domains it imports, the default domain at 19 by default)."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, width])],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    imports = [helper.make_opsetid(domain, version) for domain, version in (opsets or {"": 19}).items()]
    m = helper.make_model(graph, opset_imports=imports)
    m.ir_version = 9
    inferred = shape_inference.infer_shapes(m).graph
    known = {v.name: v for v in [*inferred.value_info, *inferred.output]}
    del m.graph.output[:]
    m.graph.output.extend(known[o] for o in outputs)
    return m


def run(m: ModelProto, x: np.ndarray) -> list[np.ndarray]:
    """Every output of ``m`` on ``x``."""
    session = ort.InferenceSession(
        m.SerializeToString(), predictlib.default_session_options(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})
