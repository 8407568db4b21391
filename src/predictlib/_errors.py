"""predictlib's errors: one base class, three kinds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class PredictlibError(Exception):
    """Base class of every error predictlib raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One refused value: where it is, what it is and what was expected."""

    row: int | None
    column: str | None
    value: Any
    expected: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        head = ", ".join(where) or "input"
        value = "" if self.value is NO_VALUE else f": value {show_value(self.value)}"
        return f"{head}{value}: {self.expected}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (e.g. for an HTTP 422 body)."""
        return {
            "row": self.row,
            "column": self.column,
            "value": None if self.value is NO_VALUE else _jsonable(self.value),
            "expected": self.expected,
        }


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


#: ``Problem.value`` when there is no value to show (e.g. a missing column).
NO_VALUE: Any = _NoValue()


#: ints with more bits are shown by their size: their repr may be refused (Python limits
#: int -> text conversions to 4,300 digits) and would not fit in a message anyway
_SHOWN_INT_BITS = 256


def show_value(value: Any) -> str:
    """The value's repr, at most 80 characters; never raises (a value whose ``__repr__``
    fails, an int too long to print)."""
    if type(value) is int and value.bit_length() > _SHOWN_INT_BITS:
        return _long_int(value)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a caller's object: its repr may raise anything
        if isinstance(value, int) and not isinstance(value, bool):  # an int subclass too long to print
            return _long_int(value)
        text = f"<{type(value).__name__} object whose repr fails>"
    return text if len(text) <= 80 else text[:77] + "..."


def _long_int(value: int) -> str:
    digits = int(abs(value).bit_length() * 0.30102999566398120) + 1  # log10(2): within one digit
    return f"<{'negative ' if value < 0 else ''}int of about {digits:,} digits>"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return bool(value) if value is not None else None
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value) if value.bit_length() <= _SHOWN_INT_BITS else show_value(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    return show_value(value)


class InputError(PredictlibError, ValueError):
    """The input cannot be predicted: a missing column, a wrong type, or a value the
    original pipeline refuses. ``problems`` lists every refused value found (the first
    one is also in ``row``, ``column``, ``value`` and ``expected``)."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        first = problems[0]
        self.row = first.row
        self.column = first.column
        self.value = None if first.value is NO_VALUE else first.value
        self.expected = first.expected
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")


class ArtifactError(PredictlibError):
    """A model artifact is damaged, tampered with, or needs a newer runtime."""


class ModelNotFoundError(PredictlibError, LookupError):
    """No installed model or artifact path matches the name given."""
