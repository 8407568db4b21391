"""polars DataFrames, read through Arrow: ``DataFrame.to_arrow()`` shares the numeric
columns' buffers (no copy) and gives texts as ``large_string`` and categoricals as
dictionary columns, which :mod:`predictlib._arrow` maps to category ids without a
Python loop. The input contract and the error messages are those of every other
input kind (the same adapter checks the same values). polars is never imported here:
the caller's object is.
"""

from __future__ import annotations

import sys
from typing import Any

from ._errors import InputError, Problem

_LAZY = (
    "expected a polars DataFrame, got a LazyFrame: collect() it first "
    "(predictlib predicts rows held in memory)"
)


def is_polars(data: Any) -> bool:
    """A polars DataFrame or LazyFrame (polars itself is not imported)."""
    kind = type(data)
    return kind.__module__.startswith("polars") and kind.__name__ in ("DataFrame", "LazyFrame")


def polars_to_arrow(frame: Any) -> Any:
    """The pyarrow Table of a polars DataFrame, sharing its buffers: at polars' newest
    Arrow compatibility level texts stay ``string_view`` (polars' own layout) instead of
    being copied into ``large_string`` for the whole frame at once, on one thread (300,000
    rows of house_prices: 1 ms instead of 160 ms); :mod:`predictlib._arrow` casts each
    slice's text columns where it looks them up, on the batch threads. Older polars
    (without ``CompatLevel``) gives its default table."""
    if type(frame).__name__ == "LazyFrame":
        raise InputError([Problem(None, None, frame, _LAZY)])
    polars = sys.modules.get(type(frame).__module__.split(".", 1)[0])  # loaded: the frame is polars'
    newest = getattr(getattr(polars, "CompatLevel", None), "newest", None)
    if newest is not None:
        try:
            return frame.to_arrow(compat_level=newest())
        except TypeError:  # a to_arrow without compat_level
            pass
    return frame.to_arrow()
