"""Where a single-row prediction from a dict spends its time.

    python -m benchmarks.profile [ARTIFACT_FOLDER ...]    (default: artifacts/<model> for every model)

Stages, each timed on its own (median of many calls):

* ``predict``: ``Model.predict(record)``, the whole call;
* ``adapt``: the record -> ``num``/``cat`` arrays (predictlib's input adaptation);
* ``session_run``: ``InferenceSession.run`` of the artifact on pre-built arrays, with
  the outputs predictlib asks for (``session_run_prediction_only``: without ``refusals``);
* ``outputs``: what predictlib does with the results (refusal check, reshape, float);
* ``onnxruntime_floor``: ``run`` of an Identity graph, same session options, on one
  float64 value; ``onnxruntime_floor_grouped``: the same on inputs shaped like the
  model's (``num`` float64 and ``cat`` strings, one row);
* ``python_side``: predict - session_run (adaptation, dispatch, refusal check, output);
* ``graph_above_floor``: session_run - onnxruntime_floor_grouped (what the graph's
  nodes cost);
* ``tree_ensemble_alone``: the graph's ``TreeEnsemble`` node run as a graph of its own,
  on the inputs the records give it (graphs of tree models only): the part of the call
  no graph pass can take away.

Stages are timed separately (each in its own loop), so they do not add up exactly.

Plus onnxruntime's own profiler: time per operator type and per node, at 1 and
10,000 rows, and the node count of the graph before and after onnxruntime's
optimisations. ``adapt`` and ``outputs`` use predictlib's private helpers when they
exist (they are reported as unavailable otherwise): the profile is a diagnostic,
not a contract.
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
from onnx import TensorProto, helper

import predictlib

from ._timing import latency

CALLS = 20_000
WARMUP = 2_000


def identity_model(inputs: Sequence[tuple[str, int, int]]) -> bytes:
    """An ONNX graph passing each ``(name, elem_type, width)`` input through Identity."""
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [f"{name}_out"]) for name, _t, _w in inputs],
        "identity",
        [helper.make_tensor_value_info(name, t, [None, w]) for name, t, w in inputs],
        [helper.make_tensor_value_info(f"{name}_out", t, [None, w]) for name, t, w in inputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


def floor_latency(calls: int = CALLS) -> dict[str, Any]:
    """The bare onnxruntime call: an Identity graph on a [1, 1] float64 tensor."""
    session = ort.InferenceSession(
        identity_model([("x", TensorProto.DOUBLE, 1)]),
        sess_options=predictlib.default_session_options(),
        providers=["CPUExecutionProvider"],
    )
    feeds = {"x": np.zeros((1, 1), dtype=np.float64)}
    names = ["x_out"]
    return latency(lambda f: session.run(names, f), [feeds], calls=calls, warmup=WARMUP)


def grouped_floor_latency(example: dict[str, np.ndarray], calls: int = CALLS) -> dict[str, Any]:
    """Identity on inputs shaped like the model's (one row of each of ``example``'s arrays)."""
    types = {np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.int64): TensorProto.INT64}
    spec = [(name, types.get(a.dtype, TensorProto.STRING), a.shape[1]) for name, a in example.items()]
    feeds = {name: a[:1].copy() for name, a in example.items()}
    session = ort.InferenceSession(
        identity_model(spec),
        sess_options=predictlib.default_session_options(),
        providers=["CPUExecutionProvider"],
    )
    names = [f"{n}_out" for n, _t, _w in spec]
    return latency(lambda f: session.run(names, f), [feeds], calls=calls, warmup=WARMUP)


def feeds_from_record(model: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The graph's inputs for one record, as predictlib builds them (its adapter:
    ``num``, ``cat`` or ``cat_ids``, ``dt``; ``x`` for a lean graph), for the graph
    :func:`session_for` opens."""
    num, cat, _, problems, dt = model._adapter.from_records([record], single=True)
    if problems:
        raise ValueError(f"a benchmark record is refused: {problems}")
    names = {i.name for i in model._session.get_inputs()}
    given = {"num": num, "cat": cat, "cat_ids": cat, "dt": dt}
    if "x" in names:  # the lean graph: the numbers, then the category ids, in one float64 matrix
        given["x"] = np.concatenate([num, cat.astype(np.float64)], axis=1)
    return {name: given[name] for name in ("x", "num", "cat", "cat_ids", "dt") if name in names}


def session_for(folder: Path, **options: Any) -> ort.InferenceSession:
    """A session on the graph predictlib runs: ``model.ids.onnx`` when the artifact has
    one (it takes category ids), else ``model.onnx``."""
    so = predictlib.default_session_options()
    for key, value in options.items():
        setattr(so, key, value)
    return ort.InferenceSession(
        graph_file(folder).read_bytes(), sess_options=so, providers=["CPUExecutionProvider"]
    )


def graph_file(folder: Path) -> Path:
    """The graph predictlib runs: ``model.ids.onnx`` when the artifact has one, else
    ``model.onnx``."""
    graph = folder / "model.ids.onnx"
    return graph if graph.is_file() else folder / "model.onnx"


def stack(feeds_list: Sequence[dict[str, Any]], rows: int) -> dict[str, Any]:
    """``rows`` rows tiled from single-row feeds."""
    out = {}
    for key in feeds_list[0]:
        block = np.concatenate([f[key] for f in feeds_list], axis=0)
        out[key] = _tile(block, rows)
    return out


def _tile(block: np.ndarray, rows: int) -> np.ndarray:
    reps = -(-rows // block.shape[0])
    return np.tile(block, (reps, 1))[:rows]


def onnxruntime_profile(folder: Path, feeds: dict[str, Any], runs: int) -> dict[str, Any]:
    """onnxruntime's profiler: mean time per run, per operator type and per node (us)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = session_for(folder, enable_profiling=True, profile_file_prefix=str(Path(tmp) / "ort"))
        names = [o.name for o in session.get_outputs()]
        for _ in range(runs):
            session.run(names, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = collections.defaultdict(float)
    per_node: dict[str, float] = collections.defaultdict(float)
    op_of: dict[str, str] = {}
    model_run: list[float] = []
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            model_run.append(e["dur"])
        elif e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            node = e["name"][: -len("_kernel_time")]
            op = e.get("args", {}).get("op_name", "?")
            per_node[node] += e["dur"]
            per_op[op] += e["dur"]
            op_of[node] = op
    # the first run (a warm-up inside onnxruntime) is dropped from the per-run means
    n = max(len(model_run), 1)
    kernels = sum(per_node.values()) / n
    return {
        "runs": len(model_run),
        "model_run_mean_us": float(np.mean(model_run[1:] or model_run)),
        "kernels_mean_us": kernels,
        "nodes_executed": len(per_node),
        "per_op_type_us": {k: v / n for k, v in sorted(per_op.items(), key=lambda kv: -kv[1])},
        "top_nodes_us": [
            {"node": k, "op": op_of[k], "us": v / n}
            for k, v in sorted(per_node.items(), key=lambda kv: -kv[1])[:12]
        ],
    }


def graph_summary(folder: Path) -> dict[str, Any]:
    graph = onnx.load(str(folder / "model.onnx")).graph
    ops = collections.Counter(node.op_type for node in graph.node)
    strings = sum(1 for i in graph.input if i.type.tensor_type.elem_type == TensorProto.STRING)
    return {
        "nodes": len(graph.node),
        "node_types": dict(ops.most_common()),
        "inputs": [i.name for i in graph.input],
        "string_inputs": strings,
        "outputs": [o.name for o in graph.output],
        "model_bytes": (folder / "model.onnx").stat().st_size,
    }


def profile_single_row(
    folder: Path, records: Sequence[dict[str, Any]], calls: int = CALLS, batch_rows: int = 10_000
) -> dict[str, Any]:
    """The breakdown of one ``Model.predict(record)`` call (see the module docstring)."""
    model = predictlib.load(folder)
    result: dict[str, Any] = {"graph": graph_summary(folder)}
    stages: dict[str, Any] = {}
    stages["predict"] = latency(model.predict, records, calls=calls, warmup=WARMUP)

    adapt = getattr(model, "_adapt", None)
    if adapt is not None:
        try:
            stages["adapt"] = latency(adapt, records, calls=calls, warmup=WARMUP)
        except Exception as exc:  # noqa: BLE001 - a diagnostic: report, do not fail
            stages["adapt"] = {"unavailable": f"{type(exc).__name__}: {exc}"}
    else:
        stages["adapt"] = {"unavailable": "predictlib.Model has no _adapt"}

    session = session_for(folder)
    all_outputs = [o.name for o in session.get_outputs()]
    wanted = list(getattr(model, "_output_names", all_outputs))
    feeds = [feeds_from_record(model, r) for r in records]
    results = [session.run(wanted, f) for f in feeds[:50]]
    stages["session_run"] = latency(lambda f: session.run(wanted, f), feeds, calls=calls, warmup=WARMUP)
    first = [o for o in wanted if o != "refusals"]
    stages["session_run_prediction_only"] = latency(
        lambda f: session.run(first, f), feeds, calls=calls, warmup=WARMUP
    )
    stages["outputs"] = _time_outputs(model, results, wanted)
    stages["onnxruntime_floor"] = floor_latency(calls)
    stages["onnxruntime_floor_grouped"] = grouped_floor_latency(feeds[0], calls)
    trees = tree_ensemble_latency(folder, feeds, calls)
    if trees is not None:
        stages["tree_ensemble_alone"] = trees
    p50 = {k: v.get("p50_us") for k, v in stages.items()}
    stages["python_side"] = {"p50_us": p50["predict"] - p50["session_run"]}
    stages["graph_above_floor"] = {"p50_us": p50["session_run"] - p50["onnxruntime_floor_grouped"]}
    result["stages"] = stages
    result["onnxruntime_profile"] = {
        "rows_1": onnxruntime_profile(folder, feeds[0], runs=2_000),
        f"rows_{batch_rows}": onnxruntime_profile(folder, stack(feeds, batch_rows), runs=10),
    }
    result["optimized_nodes"] = result["onnxruntime_profile"]["rows_1"]["nodes_executed"]
    return result


def tree_ensemble_latency(
    folder: Path, feeds: Sequence[dict[str, Any]], calls: int = CALLS
) -> dict[str, Any] | None:
    """The latency of the graph's ``TreeEnsemble`` node alone (a graph of that one node,
    same session options), on the inputs ``feeds`` give it; None for a graph without one."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(graph_file(folder))))
    trees = [n for n in model.graph.node if n.op_type.startswith("TreeEnsemble")]
    if not trees:
        return None
    node = trees[0]
    extractor = onnx.utils.Extractor(model)
    before = extractor.extract_model([i.name for i in model.graph.input], [node.input[0]])
    alone = extractor.extract_model([node.input[0]], list(node.output))
    options = predictlib.default_session_options()
    providers = ["CPUExecutionProvider"]
    inputs = ort.InferenceSession(before.SerializeToString(), sess_options=options, providers=providers)
    tree_feeds = [{node.input[0]: inputs.run(None, f)[0]} for f in feeds]
    session = ort.InferenceSession(alone.SerializeToString(), sess_options=options, providers=providers)
    return latency(lambda f: session.run(None, f), tree_feeds, calls=calls, warmup=WARMUP)


def _time_outputs(model: Any, results: list[list[np.ndarray]], wanted: list[str]) -> dict[str, Any]:
    """predictlib's output handling on real results, as in ``Model.predict`` (refusal
    check, reshape, float/label)."""
    has_refusals = "refusals" in wanted
    k = wanted.index("refusals") if has_refusals else None
    classification = getattr(model, "task", "regression") == "classification"

    def shape(res: list[np.ndarray]) -> Any:
        if k is not None and res[k].any():
            raise AssertionError("a benchmark record was refused")
        if classification:
            label = res[0][0]
            return label.item() if isinstance(label, np.generic) else label
        return float(res[0].reshape(-1)[0])

    return latency(shape, results, calls=CALLS, warmup=WARMUP)


def format_profile(name: str, prof: dict[str, Any]) -> str:
    lines = [f"{name}: graph {prof['graph']['nodes']} nodes ({prof['optimized_nodes']} after optimisation)"]
    lines.append("  " + ", ".join(f"{k} {v}" for k, v in prof["graph"]["node_types"].items()))
    stages = prof["stages"]
    total = stages["predict"]["p50_us"]
    for key, value in stages.items():
        if "p50_us" in value:
            share = (
                ""
                if key.startswith(("onnxruntime_floor", "graph_"))
                else f" ({100 * value['p50_us'] / total:4.0f}%)"
            )
            lines.append(f"  {key:30s} p50 {value['p50_us']:8.1f} us{share}")
        else:
            lines.append(f"  {key:30s} {value.get('unavailable')}")
    for label, ort_prof in prof["onnxruntime_profile"].items():
        lines.append(
            f"  onnxruntime profiler, {label.replace('_', ' ')}: model_run {ort_prof['model_run_mean_us']:.1f} us"
            f" (kernels {ort_prof['kernels_mean_us']:.1f} us, {ort_prof['nodes_executed']} nodes)"
        )
        top = list(ort_prof["per_op_type_us"].items())[:8]
        lines.append("    by op: " + ", ".join(f"{op} {us:.1f}" for op, us in top))
    return "\n".join(lines)


def _records_for(name: str, limit: int = 200) -> list[dict[str, Any]]:
    from predictlib.build.project import load_data, load_project

    from . import MODELS
    from .run import clean_records

    project = load_project(MODELS / name)
    frame, _ = load_data(project)
    return clean_records(frame.drop(columns=[project.config["data"]["target"]]).iloc[:limit])


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    from . import model_names

    folders = [Path(a) for a in args] or [Path("artifacts") / n for n in model_names()]
    for folder in folders:
        model = predictlib.load(folder)
        records = [r for r in _records_for(model.name) if accepted(model, r)]
        print(format_profile(model.name, profile_single_row(folder, records)))
    return 0


def accepted(model: Any, record: dict[str, Any]) -> bool:
    """Whether ``model`` predicts ``record`` (benchmarks use accepted records only)."""
    try:
        model.predict(record)
    except predictlib.InputError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
