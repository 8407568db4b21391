"""predictlib's errors: one base class, three kinds."""

from __future__ import annotations

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
        value = "" if self.value is NO_VALUE else f": value {_show(self.value)}"
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


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    return _show(value)


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
