"""Model wheels, written directly (a wheel is a zip with a fixed layout, PEP 427):
deterministic bytes for the same inputs (sorted entries, fixed timestamps and
permissions), no code inside, only the artifact files and an entry point."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

ENTRY_POINT_GROUP = "predictlib.models"
#: zip timestamp: SOURCE_DATE_EPOCH when set, else 1980-01-01 (the zip epoch)
_DEFAULT_EPOCH = 315532800


def distribution_name(model: str) -> str:
    return f"predictlib-{model.replace('_', '-')}"


def package_name(model: str) -> str:
    return f"predictlib_{re.sub(r'[^0-9a-zA-Z]+', '_', model)}"


def wheel_filename(model: str, version: str) -> str:
    return f"{package_name(model)}-{version}-py3-none-any.whl"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _timestamp() -> tuple[int, int, int, int, int, int]:
    import time

    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", _DEFAULT_EPOCH)), _DEFAULT_EPOCH)
    return time.gmtime(epoch)[:6]


def write_model_wheel(
    model: str,
    version: str,
    files: dict[str, bytes],
    out_dir: Path,
    *,
    summary: str,
    requires: Sequence[str],
) -> Path:
    """Write ``predictlib_<model>-<version>-py3-none-any.whl`` holding ``files`` in
    the package folder, advertised in the ``predictlib.models`` entry-point group."""
    pkg = package_name(model)
    dist_info = f"{pkg}-{version}.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            f"Name: {distribution_name(model)}",
            f"Version: {version}",
            f"Summary: {summary}",
            "Requires-Python: >=3.10",
            *(f"Requires-Dist: {r}" for r in requires),
            "",
        ]
    )
    wheel = "Wheel-Version: 1.0\nGenerator: predictlib-conversion\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entry_points = f"[{ENTRY_POINT_GROUP}]\n{model} = {pkg}\n"
    entries = {f"{pkg}/{name}": data for name, data in files.items()}
    entries[f"{dist_info}/METADATA"] = metadata.encode()
    entries[f"{dist_info}/WHEEL"] = wheel.encode()
    entries[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    record_name = f"{dist_info}/RECORD"
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in sorted(entries.items()))
    record += f"{record_name},,\n"
    entries[record_name] = record.encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / wheel_filename(model, version)
    stamp = _timestamp()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # RECORD last, the rest sorted
        for name in [*sorted(n for n in entries if n != record_name), record_name]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name], compresslevel=9)
    return path
