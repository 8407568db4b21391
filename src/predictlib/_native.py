"""``predictlib._speedups``, the optional C module (``_speedups.c``), when this install
carries it: the record reader's loop (``_reader.py``), the reading of lists of numbers
and the lookup of object columns' texts (``_objects.py``). The build compiles it when a C
compiler is found; without it, or with ``PREDICTLIB_PURE_PYTHON=1``, predictlib reads in
Python, numpy and pandas' or arrow's lookups, with the same answers.
"""

from __future__ import annotations

import os
from types import ModuleType

#: the ``VERSION`` of ``_speedups.c`` this package calls (another build is not used)
SPEEDUPS_VERSION = 3


def speedups() -> ModuleType | None:
    """The C module, of this version, unless ``PREDICTLIB_PURE_PYTHON`` switches it off;
    else None."""
    if os.environ.get("PREDICTLIB_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups if getattr(_speedups, "VERSION", None) == SPEEDUPS_VERSION else None
