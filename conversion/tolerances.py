"""The equivalence tolerances: the one place they are defined.

A graph output ``a`` matches the original pipeline's ``b`` when
``|a - b| <= ATOL + RTOL * |b|``. Both pipelines compute in float64; the
differences come from summation order (MatMul vs numpy's dot) and from the last
bit of libm functions (log, exp), a few units in the last place (~1e-15 relative).
"""

#: relative tolerance of regression outputs
RTOL = 1e-9
#: absolute floor, for outputs near zero
ATOL = 1e-9
