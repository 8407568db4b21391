"""Golden vectors (golden.json) and the ORT-format model: what the build writes for
runtimes in other languages and for onnxruntime mobile."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from test_equivalence import REFUSES_NOTHING

import predictlib
from predictlib.build import tolerances
from predictlib.build.project import Built
from predictlib.build.stages.golden import (
    CODES,
    decode,
    encode,
    output_mismatches,
    read_golden,
    runtime_problems,
)
from predictlib.build.stages.mobile import CONFIG_FILE, ORT_FILE, verify_ort
from predictlib.build.stages.verify import EquivalenceError

pytestmark = pytest.mark.slow


def test_encoding_round_trips() -> None:
    values = {"a": math.nan, "b": [math.inf, -math.inf, 1.5, None, "x", True, 3], "c": np.float64("nan")}
    encoded = encode(values)
    assert encoded["a"] == {"$float": "nan"}
    assert encoded["b"][:2] == [{"$float": "inf"}, {"$float": "-inf"}]
    assert json.loads(json.dumps(encoded, allow_nan=False)) == encoded
    assert encode(decode(encoded)) == encoded


def test_golden_files_are_complete(built_models: dict[str, Built]) -> None:
    for name, built in built_models.items():
        golden = read_golden(built.folder / "golden.json")
        assert golden["model"] == {
            "name": name,
            "version": built.manifest["version"],
            "task": built.manifest["task"],
        }
        assert (
            golden["tolerance"]["rtol"] == tolerances.RTOL and golden["tolerance"]["atol"] == tolerances.ATOL
        )
        assert len(golden["accepted"]) >= 200, name
        assert {a["source"] for a in golden["accepted"]} == {"held_out", "generated", "edge_case"}
        refused = golden["refused"]
        graph_refuses = name not in REFUSES_NOTHING
        assert {r["source"] for r in refused} >= (
            {"edge_case", "input_contract"} if graph_refuses else {"input_contract"}
        )
        assert all(r["confirmed_by_original"] == (r["source"] != "input_contract") for r in refused)
        codes = {p["code"] for r in refused for p in r["problems"]}
        contract_codes = {"wrong_type", "missing_column", "reserved_value"}
        assert codes <= set(CODES) and (contract_codes | ({"refused"} if graph_refuses else set())) <= codes
        records = [a["record"] for a in golden["accepted"]]
        cells = [v for r in records for v in r.values()]
        assert any(v is None for v in cells) and any(isinstance(v, float) and math.isnan(v) for v in cells)
        # infinities are among the edge cases (refused, or accepted where the model takes them)
        assert any(
            isinstance(v, float) and math.isinf(v)
            for r in golden["refused"] + golden["accepted"]
            for v in r["record"].values()
        )
        assert [item["id"] for item in golden["accepted"] + refused] == list(
            range(len(golden["accepted"]) + len(refused))
        )


def test_golden_vectors_through_the_python_runtime(built_models: dict[str, Built]) -> None:
    """What another language's client must reproduce, reproduced by predictlib itself."""
    for name, built in built_models.items():
        runtime = predictlib.load(built.folder)
        golden = read_golden(built.folder / "golden.json")
        records = [a["record"] for a in golden["accepted"]]
        got = runtime.predict(records)
        failures = []
        for i, item in enumerate(golden["accepted"]):
            if runtime.task == "classification":
                out = {"label": got[i].item() if hasattr(got[i], "item") else got[i]}
                out["probabilities"] = runtime.predict_proba(item["record"]).tolist()
            else:
                out = {"prediction": float(got[i])}
            failures += output_mismatches(item["expected"], out)
        assert failures == [], name
        for item in golden["refused"]:
            assert runtime_problems(runtime, item["record"]) == encode(item["problems"]), item["id"]


def test_ort_model_and_operators_config(built_models: dict[str, Built]) -> None:
    for name, built in built_models.items():
        entry = built.manifest["files"][ORT_FILE]
        assert entry["role"] == "ort_model" and entry["verification"]["failures"] == 0
        assert entry["verification"]["golden_accepted"] == len(
            read_golden(built.folder / "golden.json")["accepted"]
        )
        assert entry["converted_by"] == f"onnxruntime {ort.__version__}"
        session = ort.InferenceSession(str(built.folder / ORT_FILE), providers=["CPUExecutionProvider"])
        groups = {"num": "numeric", "cat": "categorical", "dt": "datetime"}
        assert [i.name for i in session.get_inputs()] == [
            g for g, key in groups.items() if built.manifest["inputs"].get(key)
        ]
        config = (built.folder / CONFIG_FILE).read_text(encoding="utf-8")
        assert str(built.folder) not in config and "/tmp" not in config
        ops = {line.split(";")[0] for line in config.splitlines() if line and not line.startswith("#")}
        assert ops <= {"ai.onnx", "ai.onnx.ml"} and "ai.onnx" in ops, name


def test_ort_verification_catches_a_different_model(house_prices: Built, tmp_path: Path) -> None:
    """verify_ort fails the build when model.ort disagrees with golden.json."""
    folder = tmp_path / "artifact"
    shutil.copytree(house_prices.folder, folder)
    golden = json.loads((folder / "golden.json").read_text(encoding="utf-8"))
    golden["accepted"][0]["expected"]["prediction"] *= 1 + 1e-6
    golden["refused"][0]["problems"] = [
        {"column": "x", "code": "refused", "reason": "not what model.ort says"}
    ]
    (folder / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    with pytest.raises(EquivalenceError, match=r"(?s)accepted record 0: prediction.*refused record"):
        verify_ort(folder, house_prices.manifest, log=lambda *_: None)
