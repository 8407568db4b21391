"""Hatchling build hook: compiles ``predictlib._speedups`` (``src/predictlib/_speedups.c``,
the record reader's inner loop, the reading of lists of numbers and the lookup of object
columns' texts) into the wheel when a C compiler is found.

It is optional by design: predictlib reads records, lists and object columns in Python
and numpy without it, so a machine without a compiler (or without Python's headers) still
builds a working wheel, a pure one (``py3-none-any``), and the build says why. With it,
the wheel is tagged for this interpreter and platform. An editable install (``pip install
-e .``) gets the module compiled in place, beside the sources (ignored by git, left out of
the wheels).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "predictlib._speedups"
SOURCE = "src/predictlib/_speedups.c"


class SpeedupsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        package = Path(self.root, "src", "predictlib")
        if version == "editable":  # the module an earlier editable install compiled in place
            for stale in [*package.glob("_speedups.*.so"), *package.glob("_speedups.*.pyd")]:
                stale.unlink()
        self._work = Path(tempfile.mkdtemp(prefix="predictlib-speedups-"))
        try:
            built = _compile(Path(self.root), self._work)
        except Exception as error:  # noqa: BLE001 - no compiler, no headers: a pure wheel
            self.app.display_warning(
                f"predictlib: {MODULE} was not compiled ({type(error).__name__}: {error}); "
                "the wheel reads records, lists of numbers and object columns in Python and numpy, "
                "which is slower but gives the same answers"
            )
            return
        if version == "editable":
            built.replace(package / built.name)
        else:
            build_data["force_include"][str(built)] = f"predictlib/{built.name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self.target_name == "wheel":
            shutil.rmtree(self._work, ignore_errors=True)


def _compile(root: Path, work: Path) -> Path:
    """Compiles the module with setuptools' ``build_ext`` (the platform's compiler and
    flags, as for any extension); returns the built file."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(MODULE, [str(root / SOURCE)])
    command = build_ext(Distribution({"name": "predictlib", "ext_modules": [extension]}))
    command.build_lib = str(work / "lib")
    command.build_temp = str(work / "temp")
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath(MODULE))
