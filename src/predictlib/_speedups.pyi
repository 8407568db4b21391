"""The record reader's inner loop, lists of numbers read and object columns' texts
looked up, in C (``_speedups.c``); optional, see ``_native.py``."""

from collections.abc import Sequence
from typing import Any

VERSION: int

def read_records(
    records: Sequence[Any],
    numeric: tuple[str, ...],
    texts: tuple[str, ...],
    index: dict[Any, bytes],
    missing: bytes,
    out: Any,
    row: int,
    /,
) -> int: ...
def read_numbers(values: list[Any] | tuple[Any, ...], out: Any, /) -> int: ...
def text_table(vocabulary: list[str], missing: int, /) -> object: ...
def text_ids(table: object, values: Any, out: Any, scratch: Any, /) -> int: ...
