"""Graph maths shared by the converters: float64 functions onnxruntime lacks.

ONNX (opset 19) has no ``log1p`` / ``expm1`` and onnxruntime implements ``Asin`` /
``Asinh`` for float32 only, so the functions scipy / numpy use are built from ``Exp``,
``Log`` and ``Sqrt`` (which onnxruntime computes in float64 within 2 ulp):

* :func:`log1p`: Goldberg's ``log(u) * (x / (u - 1))`` with ``u = 1 + x``;
* :func:`expm1`: Kahan's ``(u - 1) * (t / log(u))`` with ``u = exp(t)`` for ``|t| <= 1``,
  ``u - 1`` beyond (no cancellation there; ``log(u)`` of a subnormal ``u`` is not);
* :func:`asin_unit`: fdlibm's ``asin`` (its rational approximation) on [0, 1];
* ``asinh``: glibc's ``log1p(a + a^2 / (1 + sqrt(1 + a^2)))``, ``log(a) + ln 2`` for
  ``a > 2^28``.

Each stays within a few ulp of numpy / scipy (checked against them on millions of
values across the whole float64 range while writing them); the tolerance is 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .frame import StepContext


def log1p(ctx: StepContext, x: str) -> str:
    """``log1p(x)`` (Goldberg): ``x`` where ``1 + x == 1`` or ``x`` is +inf (where the
    formula gives inf * NaN), else ``log(u) * (x / (u - 1))``."""
    one = ctx.const(1.0)
    u = ctx.node("Add", [x, one])
    general = ctx.node("Mul", [ctx.node("Log", [u]), ctx.node("Div", [x, ctx.node("Sub", [u, one])])])
    general = ctx.node("Where", [ctx.node("Equal", [x, ctx.const(math.inf)]), x, general])
    return ctx.node("Where", [ctx.node("Equal", [u, one]), x, general])


def expm1(ctx: StepContext, t: str) -> str:
    """``expm1(t)`` (Kahan): ``t`` where ``exp(t) == 1``; ``exp(t) - 1`` where ``|t| > 1``
    (inf and -1 at the extremes); else ``(u - 1) * (t / log(u))``."""
    one = ctx.const(1.0)
    u = ctx.node("Exp", [t])
    num = ctx.node("Sub", [u, one])
    general = ctx.node("Mul", [num, ctx.node("Div", [t, ctx.node("Log", [u])])])
    far = ctx.node("Greater", [ctx.node("Abs", [t]), one])
    return ctx.node("Where", [ctx.node("Equal", [u, one]), t, ctx.node("Where", [far, num, general])])


def polynomial(ctx: StepContext, t: str, coefficients: Sequence[float]) -> str:
    """``c0 + t * (c1 + t * (c2 + ...))`` (Horner, as fdlibm evaluates it)."""
    acc = ctx.const(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = ctx.node("Add", [ctx.const(c), ctx.node("Mul", [t, acc])])
    return acc


#: fdlibm e_asin.c: asin(x) = x + x * R(x^2) on [0, 0.5], R(t) = t * P(t) / Q(t)
ASIN_P = (
    1.66666666666666657415e-01,
    -3.25565818622400915405e-01,
    2.01212532134862925881e-01,
    -4.00555345006794114027e-02,
    7.91534994289814532176e-04,
    3.47933107596021167570e-05,
)
ASIN_Q = (
    1.0,
    -2.40339491173441421878e00,
    2.02094576023350569471e00,
    -6.88283971605453293030e-01,
    7.70381505559019352791e-02,
)


def asin_unit(ctx: StepContext, s: str) -> str:
    """``arcsin(s)`` for ``s`` in [0, 1] (fdlibm): ``s + s R(s^2)`` below 0.5, else
    ``pi/2 - 2 (w + w R(t))`` with ``t = (1 - s) / 2``, ``w = sqrt(t)``."""
    small = ctx.node("Less", [s, ctx.const(0.5)])
    t = ctx.node(
        "Where",
        [
            small,
            ctx.node("Mul", [s, s]),
            ctx.node("Mul", [ctx.node("Sub", [ctx.const(1.0), s]), ctx.const(0.5)]),
        ],
    )
    r = ctx.node("Div", [ctx.node("Mul", [t, polynomial(ctx, t, ASIN_P)]), polynomial(ctx, t, ASIN_Q)])
    base = ctx.node("Where", [small, s, ctx.node("Sqrt", [t])])
    v = ctx.node("Add", [base, ctx.node("Mul", [base, r])])
    far = ctx.node("Sub", [ctx.const(math.pi / 2), ctx.node("Mul", [ctx.const(2.0), v])])
    return ctx.node("Where", [small, v, far])


def asinh(ctx: StepContext, z: str) -> str:
    """``arcsinh(z)`` (glibc's formulas; inf and NaN pass through)."""
    a = ctx.node("Abs", [z])
    a2 = ctx.node("Mul", [a, a])
    one = ctx.const(1.0)
    inner = ctx.node(
        "Add",
        [a, ctx.node("Div", [a2, ctx.node("Add", [one, ctx.node("Sqrt", [ctx.node("Add", [one, a2])])])])],
    )
    big = ctx.node("Add", [ctx.node("Log", [a]), ctx.const(math.log(2.0))])
    w = ctx.node("Where", [ctx.node("Greater", [a, ctx.const(2.0**28)]), big, log1p(ctx, inner)])
    return ctx.node("Where", [ctx.node("Less", [z, ctx.const(0.0)]), ctx.node("Neg", [w]), w])


#: the ONNX operators of the helpers above
LOG1P_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Log", "Equal", "Where"})
EXPM1_OPS = frozenset({"Exp", "Sub", "Mul", "Div", "Log", "Abs", "Greater", "Equal", "Where"})
ASIN_OPS = frozenset({"Less", "Where", "Mul", "Sub", "Add", "Div", "Sqrt"})
ASINH_OPS = LOG1P_OPS | frozenset({"Abs", "Sqrt", "Greater", "Less", "Neg"})
CHECK_OPS = frozenset({"IsNaN", "IsInf"})
