"""The ORT-format model, for onnxruntime mobile (Android / iOS) and reduced-size builds.

:func:`write_ort` converts ``model.onnx`` with onnxruntime's own
``onnxruntime.tools.convert_onnx_models_to_ort`` (optimization style ``Fixed``, level
``all``) into ``model.ort`` and ``model.required_operators.config``: the operators a
reduced-size onnxruntime build needs (``build.sh --minimal_build
--include_ops_by_config model.required_operators.config``).

:func:`verify_ort` runs the golden vectors (``golden.json``) through ``model.ort`` with
Python onnxruntime (which loads ORT format): outputs within the equivalence tolerance
and the same refusals, else :class:`predictlib.build.stages.verify.EquivalenceError`.

Repeatable bytes: onnxruntime writes one table of the ORT file (the kernel type string
resolver) in hash-map order, and its hash seed comes from an address in memory. The
converter therefore runs in a subprocess with a fixed environment and, where the system
allows it (``setarch -R``), without address-space randomisation; then the same
``model.onnx`` gives the same ``model.ort`` bytes on the same machine and installation.
Elsewhere the bytes may differ while the model is the same; the manifest records the
sha256 of the file shipped.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

import predictlib
from predictlib._artifact import MODEL_FILE, Artifact
from predictlib._inputs import InputAdapter

from .golden import GOLDEN_FILE, encode, output_mismatches, read_golden, runtime_problems
from .verify import EquivalenceError

ORT_FILE = "model.ort"
CONFIG_FILE = "model.required_operators.config"
#: how the ORT file is optimised (recorded in the manifest)
OPTIMIZATION = {"style": "Fixed", "level": "all"}


@functools.lru_cache(maxsize=1)
def _no_aslr_prefix() -> tuple[str, ...]:
    """``setarch <arch> -R`` when it works here (a seccomp profile may forbid it)."""
    setarch = shutil.which("setarch")
    if setarch is None:
        return ()
    prefix = (setarch, platform.machine(), "-R")
    try:
        done = subprocess.run([*prefix, "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return prefix if done.returncode == 0 else ()


def write_ort(folder: Path) -> dict[str, str]:
    """Write ``folder/model.ort`` and ``folder/model.required_operators.config`` from
    ``folder/model.onnx``; returns file name -> role (for the manifest's ``files``)."""
    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="predictlib-ort-") as tmp:
        work = Path(tmp)
        shutil.copyfile(folder / MODEL_FILE, work / MODEL_FILE)
        env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONHASHSEED": "0", "LC_ALL": "C"}
        command = [
            *_no_aslr_prefix(),
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            MODEL_FILE,
            "--output_dir",
            "out",
            "--optimization_style",
            OPTIMIZATION["style"],
        ]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 and "No module named" in done.stderr and "PYTHONPATH" in os.environ:
            # onnxruntime is found through PYTHONPATH only (it changes the bytes: see above)
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        produced = work / "out" / ORT_FILE, work / "out" / CONFIG_FILE
        if done.returncode != 0 or not all(p.is_file() for p in produced):
            raise RuntimeError(
                f"onnxruntime could not convert {folder / MODEL_FILE} to ORT format "
                f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        shutil.copyfile(produced[0], folder / ORT_FILE)
        # the config names the converted files by absolute (temporary) path in a comment
        lines = produced[1].read_text(encoding="utf-8").splitlines()
        lines = [f"# - {ORT_FILE}" if line.startswith("# - ") else line for line in lines]
        (folder / CONFIG_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {ORT_FILE: "ort_model", CONFIG_FILE: "required_operators"}


def ort_details() -> dict[str, Any]:
    """What the manifest records about how ``model.ort`` was made."""
    return {"converted_by": f"onnxruntime {ort.__version__}", "optimization": dict(OPTIMIZATION)}


def _output_names(manifest: dict[str, Any]) -> list[str]:
    outputs = manifest["outputs"]
    if manifest["task"] == "classification":
        return [outputs["label"]["name"], outputs["probabilities"]["name"]]
    return [outputs["prediction"]["name"]]


def verify_ort(folder: Path, manifest: dict[str, Any], log: Any = print) -> dict[str, Any]:
    """The golden vectors through ``folder/model.ort``: the same outputs within the
    tolerance, the same refusals. Raises :class:`EquivalenceError` on disagreement;
    returns a summary for the manifest."""
    folder = Path(folder)
    golden = read_golden(folder / GOLDEN_FILE)
    path = folder / ORT_FILE
    failures: list[str] = []

    # outputs: a plain session on the .ort file, inputs built by the runtime's adapter
    session = ort.InferenceSession(
        str(path), sess_options=predictlib.default_session_options(), providers=["CPUExecutionProvider"]
    )
    inputs = manifest["inputs"]
    adapter = InputAdapter(
        inputs["numeric"], inputs["categorical"], inputs["missing_category"], inputs.get("datetime", [])
    )
    accepted = golden["accepted"]
    max_abs = max_rel = 0.0
    if accepted:
        try:
            adapted = adapter.from_records([a["record"] for a in accepted], single=False)
        except predictlib.InputError as exc:  # runtimes that raise from the adapter
            adapted = (None, None, None, exc.problems)
        if len(adapted) > 3 and adapted[3]:
            raise EquivalenceError(
                f"{manifest['name']}: golden.json accepted records break the input contract"
            )
        num, cat = adapted[0], adapted[1]
        feeds = {}
        if adapter.numeric:
            feeds["num"] = num
        if adapter.categorical:
            feeds["cat"] = cat
        if adapter.datetime:
            feeds["dt"] = adapted[4]
        names = _output_names(manifest)
        checks = manifest["outputs"].get("refusals", {}).get("checks", [])
        results = session.run(names + (["refusals"] if checks else []), feeds)
        if checks:
            for row in np.nonzero(results[-1].any(axis=1))[0].tolist():
                failures.append(f"accepted record {accepted[row]['id']}: model.ort refuses it")
        for row, item in enumerate(accepted):
            if manifest["task"] == "classification":
                label = results[0].reshape(-1)[row]
                got = {"label": label.item() if hasattr(label, "item") else label}
                got["probabilities"] = results[1][row].tolist()
                pairs = list(zip(got["probabilities"], item["expected"]["probabilities"], strict=False))
            else:
                got = {"prediction": float(results[0][row].item())}
                pairs = [(got["prediction"], item["expected"]["prediction"])]
            failures += [
                f"accepted record {item['id']}: {m}" for m in output_mismatches(item["expected"], got)
            ]
            for a, b in pairs:
                if np.isfinite(a) and np.isfinite(b):
                    max_abs = max(max_abs, abs(a - b))
                    if b != 0:
                        max_rel = max(max_rel, abs(a - b) / abs(b))

    # refusals: the runtime itself, running model.ort
    runtime = predictlib.Model(Artifact(manifest, path.read_bytes(), str(path)))
    for item in golden["refused"]:
        got_problems = runtime_problems(runtime, item["record"])
        if got_problems != encode(item["problems"]):
            failures.append(
                f"refused record {item['id']}: model.ort gives {got_problems}, golden.json {item['problems']}"
            )
    report = {
        "golden_accepted": len(accepted),
        "golden_refused": len(golden["refused"]),
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
        "failures": len(failures),
    }
    log(
        f"  model.ort: {len(accepted)} golden records predicted, {len(golden['refused'])} refused, "
        f"max abs error {max_abs:.3g}, max rel error {max_rel:.3g}, {len(failures)} disagreement(s)"
    )
    if failures:
        shown = "\n    ".join(failures[:10])
        raise EquivalenceError(f"{manifest['name']}: model.ort disagrees with golden.json:\n    {shown}")
    return report
