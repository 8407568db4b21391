"""polars DataFrames, read through Arrow: ``DataFrame.to_arrow()`` shares the numeric
columns' buffers (no copy) and gives texts as ``large_string`` and categoricals as
dictionary columns, which :mod:`predictlib._arrow` maps to category ids without a
Python loop. The input contract and the error messages are those of every other
input kind (the same adapter checks the same values). polars is never imported here:
the caller's object is.
"""

from __future__ import annotations

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
    """The pyarrow Table of a polars DataFrame (numeric buffers shared, not copied)."""
    if type(frame).__name__ == "LazyFrame":
        raise InputError([Problem(None, None, frame, _LAZY)])
    return frame.to_arrow()
