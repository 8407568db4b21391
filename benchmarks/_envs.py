"""Throwaway environments (uv): the runtime stack vs the original stack, and their sizes.

* ``runtime``: the predictlib wheel (built here with its real backend) + every model
  wheel, which pull numpy and onnxruntime (pinned to this interpreter's versions).
* ``original``: scikit-learn, feature-engine, pandas, scipy, numpy at the versions
  the models are trained with: what an app needs to unpickle and run the pipeline.

Both are created with ``uv venv`` on this interpreter and cached in the work folder,
keyed by what they hold (a changed wheel or pin recreates the environment).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UV_VERSION = "0.13.8"
#: the original stack, pinned as in pyproject.toml's ``build`` group (versions read
#: from this interpreter, which nox installs from those pins)
ORIGINAL_STACK = ("scikit-learn", "feature-engine", "pandas", "scipy", "numpy")
RUNTIME_DEPS = ("numpy", "onnxruntime")


class EnvError(RuntimeError):
    """A throwaway environment could not be created."""


@dataclass
class Env:
    name: str
    path: Path
    python: Path
    site_packages: Path
    requirements: list[str]
    reused: bool
    seconds: float


def find_uv() -> list[str]:
    """The uv command: $UV, uv on PATH, or ``python -m uv``; installs uv into this
    interpreter's environment as a last resort."""
    env_uv = os.environ.get("UV")
    if env_uv and shutil.which(env_uv):
        return [env_uv]
    for candidate in (Path(sys.executable).parent / "uv", shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
        check=True,
        capture_output=True,
    )
    return [sys.executable, "-m", "uv"]


def pinned(dist: str) -> str:
    return f"{dist}=={metadata.version(dist)}"


def build_runtime_wheel(out: Path) -> Path:
    """The predictlib runtime wheel, built by its real backend (hatchling)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise EnvError(f"building the runtime wheel failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    (wheel,) = out.glob("predictlib-*.whl")
    return wheel


def _fingerprint(requirements: list[str]) -> str:
    h = hashlib.sha256()
    h.update(sys.version.encode())
    for req in requirements:
        path = Path(req)
        h.update(req.encode())
        if path.is_file():
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def make_env(uv: list[str], folder: Path, name: str, requirements: list[str], log: Any) -> Env:
    """A venv at ``folder`` holding exactly ``requirements`` (reused when unchanged)."""
    import time

    t0 = time.perf_counter()
    stamp = folder / ".bench-fingerprint"
    fingerprint = _fingerprint(requirements)
    python = folder / "bin" / "python"
    reused = stamp.is_file() and stamp.read_text() == fingerprint and python.exists()
    if not reused:
        log(f"  creating the {name} environment with uv ({len(requirements)} requirements)")
        if folder.exists():
            shutil.rmtree(folder)
        _uv(uv, ["venv", "--quiet", "--python", sys.executable, str(folder)])
        _uv(uv, ["pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), *requirements])
        stamp.write_text(fingerprint)
    site = _site_packages(python)
    return Env(name, folder, python, site, requirements, reused, time.perf_counter() - t0)


def _uv(uv: list[str], args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PYTHON", "PYTHONPATH")}
    proc = subprocess.run([*uv, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise EnvError(f"uv {' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def tree_bytes(path: Path) -> int:
    """Apparent size (sum of file sizes, symlinks not followed) of a file or folder."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _owners(site: Path) -> dict[str, str]:
    """Top-level site-packages entry -> distribution name (from the RECORD files)."""
    owners: dict[str, str] = {}
    for info in site.glob("*.dist-info"):
        dist = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        owners[info.name] = dist
        record = info / "RECORD"
        if not record.is_file():
            continue
        for line in record.read_text(errors="replace").splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            if top and not top.startswith("..") and top != "__pycache__":
                owners.setdefault(top, dist)
    return owners


def site_sizes(site: Path) -> dict[str, Any]:
    """Total size of site-packages, and per distribution (bytecode included)."""
    owners = _owners(site)
    per: dict[str, int] = {}
    for entry in site.iterdir():
        dist = owners.get(entry.name, "(other)")
        per[dist] = per.get(dist, 0) + tree_bytes(entry)
    total = sum(per.values())
    return {
        "bytes": total,
        "by_distribution": dict(sorted(per.items(), key=lambda kv: -kv[1])),
    }


def normalise(dist: str) -> str:
    return dist.lower().replace("-", "_").replace(".", "_")


def pickle_original(model: Any, project_package: str) -> bytes:
    """The fitted original pipeline, pickled for its cold start in the original's
    environment. Classes of the model folder's own code (the package ``project_package``,
    imported by ``predictlib.build.project`` from ``models/<name>/``, never installed) are
    pickled by value, with cloudpickle (scikit-learn's joblib ships it): the environment
    gets the classes, not the folder, whose modules also register predictlib converters
    (``from predictlib.build import ...``), which the original's environment does not have
    and its app would not import. Any other pipeline is a plain pickle. (cloudpickle is
    a dependency of joblib, hence of scikit-learn: both environments have it.)"""
    import pickle

    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    if project_package not in pickled_modules(data):
        return data
    import cloudpickle

    package = sys.modules[project_package]
    cloudpickle.register_pickle_by_value(package)
    try:
        out: bytes = cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        cloudpickle.unregister_pickle_by_value(package)
    return out


def pickled_modules(data: bytes) -> set[str]:
    """The top-level packages a pickle's globals come from (the string arguments of its
    opcodes that are importable top-level names here; a text that happens to be one only
    adds a package)."""
    import pickletools

    found: set[str] = set()
    for opcode, arg, _pos in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "INST"):
            found.add(str(arg).split(" ", 1)[0].split(".", 1)[0])
        elif isinstance(arg, str) and arg.replace(".", "").replace("_", "").isalnum():
            found.add(arg.split(".", 1)[0])
    return {m for m in found if m and (m in sys.modules or _importable(m))}


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return name.isidentifier() and importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def extra_requirements(data: bytes) -> list[str]:
    """Distributions a pickled original needs beyond :data:`ORIGINAL_STACK` (e.g.
    lightgbm for a LightGBM pipeline, joblib for a pickle made by its cloudpickle),
    pinned to this interpreter's versions; the model folders' own packages are pickled
    by value (:func:`pickle_original`) and need none."""
    owners = metadata.packages_distributions()
    stack = {normalise(d) for d in ORIGINAL_STACK}
    extra = set()
    for module in pickled_modules(data):
        if module.startswith("predictlib") or module in sys.stdlib_module_names:
            continue
        for dist in owners.get(module, []):
            if normalise(dist) not in stack:
                extra.add(dist)
    return sorted(map(pinned, extra))
