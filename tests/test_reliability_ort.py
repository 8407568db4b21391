"""Issue 17, case 15: model.ort bytes are the same from any checkout, directory and
process (onnxruntime's writer lays out the flatbuffer in a process-dependent order;
predictlib.build rewrites it canonically)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from predictlib.build.project import Built
from predictlib.build.stages.mobile import (
    CONFIG_FILE,
    ORT_FILE,
    OrtFormatError,
    canonical_ort,
    verify_ort,
    write_ort,
)

pytestmark = pytest.mark.slow


def _raw_conversion(model: Path, where: Path, padding: int) -> bytes:
    """onnxruntime's own converter, run in ``where`` with ``padding`` bytes of extra
    environment (which moves the process's addresses, and with them the writer's
    hash-map order)."""
    where.mkdir(parents=True)
    shutil.copyfile(model, where / "model.onnx")
    env = {"PATH": os.environ.get("PATH", os.defpath), "PADDING": "x" * padding}
    command = ["onnxruntime.tools.convert_onnx_models_to_ort", "model.onnx", "--output_dir", "out"]
    subprocess.run(
        [sys.executable, "-m", *command, "--optimization_style", "Fixed"],
        cwd=where,
        env=env,
        check=True,
        capture_output=True,
    )
    return (where / "out" / ORT_FILE).read_bytes()


def _outputs(session_source: bytes, folder: Path) -> list[np.ndarray]:
    """The outputs of an ORT-format model on a few rows built from the manifest's columns."""
    session = ort.InferenceSession(session_source, providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        width = spec.shape[1]
        if spec.type == "tensor(double)":
            feeds[spec.name] = np.linspace(-5, 5000, 7 * width).reshape(7, width)
        elif spec.type == "tensor(string)":
            feeds[spec.name] = np.array(
                [["Gd", "TA", "Dream", "MALE", "x", "", "Ex"]] * width, dtype=object
            ).T
        else:
            feeds[spec.name] = np.arange(7 * width, dtype=np.int64).reshape(7, width)
    return list(session.run(None, feeds))


def test_raw_conversions_in_different_processes_rewrite_to_the_same_bytes(
    built_models: dict[str, Built], tmp_path: Path
) -> None:
    folder = built_models["house_prices"].folder
    raws = [
        _raw_conversion(folder / "model.onnx", tmp_path / ("d" * (1 + 9 * i)) / "x", padding=97 * i)
        for i in range(4)
    ]
    canonical = [canonical_ort(raw) for raw in raws]
    assert len(set(canonical)) == 1
    assert canonical_ort(canonical[0]) == canonical[0]  # a fixed point
    for raw in raws:  # the same model: the same outputs, bit for bit
        for got, expected in zip(_outputs(canonical[0], folder), _outputs(raw, folder), strict=True):
            np.testing.assert_array_equal(got, expected)


def test_write_ort_in_two_directories_gives_identical_files(
    built_models: dict[str, Built], tmp_path: Path
) -> None:
    for name in ("house_prices", "penguins"):
        built = built_models[name]
        digests = []
        for where in (tmp_path / name / "a", tmp_path / name / "a-much-longer-directory-name" / "b"):
            where.mkdir(parents=True)
            for file in ("model.onnx", "golden.json"):
                shutil.copyfile(built.folder / file, where / file)
            write_ort(where)
            digests.append(
                tuple(hashlib.sha256((where / f).read_bytes()).hexdigest() for f in (ORT_FILE, CONFIG_FILE))
            )
            # the rewritten file predicts the golden vectors (the build's own check)
            report = verify_ort(where, built.manifest, log=lambda *_: None)
            assert report["failures"] == 0
        assert digests[0] == digests[1], name
        # and the build shipped the same bytes
        assert digests[0][0] == hashlib.sha256((built.folder / ORT_FILE).read_bytes()).hexdigest()


def test_not_an_ort_file_is_refused() -> None:
    with pytest.raises(OrtFormatError, match="ORTM"):
        canonical_ort(b"\x00" * 64)
