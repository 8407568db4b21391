"""The equivalence tolerances: the one place they are defined.

A graph output ``a`` matches the original pipeline's ``b`` when they are equal (NaN
and infinities included), or both are finite and ``|a - b| <= ATOL + RTOL * |b|``.
Both pipelines compute in float64; the differences come from summation order (MatMul
vs numpy's dot) and from the last bit of libm functions (log, exp), a few units in the
last place (~1e-15 relative).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: relative tolerance of regression outputs
RTOL = 1e-9
#: absolute floor, for outputs near zero
ATOL = 1e-9


def close(got: float, expected: float) -> bool:
    """The equivalence rule for one value (see the module docstring)."""
    if got == expected or (math.isnan(got) and math.isnan(expected)):
        return True
    if not (math.isfinite(got) and math.isfinite(expected)):
        return False
    return abs(got - expected) <= ATOL + RTOL * abs(expected)


def close_arrays(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """:func:`close` element-wise, for float arrays of one shape (a bool array)."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        finite = np.isfinite(got) & np.isfinite(expected)
        near = np.abs(got - expected) <= ATOL + RTOL * np.abs(expected)
    return np.asarray(same | (finite & near))
