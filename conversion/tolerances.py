"""The equivalence tolerances: the one place they are defined.

A graph output ``a`` matches the original pipeline's ``b`` when they are equal (NaN
and infinities included), or both are finite and ``|a - b| <= ATOL + RTOL * |b|``.
Both pipelines compute in float64; the differences come from summation order (MatMul
vs numpy's dot) and from the last bit of libm functions (log, exp), a few units in the
last place (~1e-15 relative).
"""

import math

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
