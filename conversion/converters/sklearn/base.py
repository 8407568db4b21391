"""What every converter of a scikit-learn transformer shares.

A scikit-learn transformer maps its whole input (a DataFrame or an array) to a new one:
its converter (:class:`SklearnConverter`) reads every column of the frame it receives,
in the order it was fitted on, and replaces the frame by its output columns, named as
``get_feature_names_out`` names them (``x0`` style names where the transformer has
none: the names only matter to the steps after it, which select columns by position
when they were fitted on arrays). Text columns flow in where the transformer accepts
them (encoders, imputers, selectors, ``FunctionTransformer`` without a function) and
out where it keeps them.

*Input validation.* scikit-learn's ``validate_data`` refuses +-inf in every input
column (``ensure_all_finite=True`` or ``"allow-nan"``) and NaN unless the transformer's
tags allow it; the converters record the same refusals (:meth:`SklearnConverter.validate`)
on all input columns, selected or not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.utils import get_tags

from ...core.frame import (
    DT,
    NUM,
    STR,
    Column,
    ExportError,
    FrameConverter,
    Plan,
    StepContext,
    by_kind,
    step_label,
)

#: integers up to this magnitude are exactly float64
EXACT_INT = 2**53


def refuse(model: Any, reason: str) -> ExportError:
    """An :class:`ExportError` naming the step, the class and the reason."""
    return ExportError(f"{step_label(model)}: {reason}")


def feature_names_out(model: Any, names: Sequence[str]) -> list[str]:
    """``model.get_feature_names_out(names)`` as strings (the names of the input columns
    given, so that transformers fitted on arrays name their outputs after them)."""
    try:
        out = model.get_feature_names_out(list(names))
    except (AttributeError, ValueError, TypeError) as exc:
        raise refuse(model, f"its output columns have no names (get_feature_names_out: {exc})") from exc
    return [str(n) for n in out]


def unique_names(model: Any, names: Sequence[str]) -> list[str]:
    """``names``, checked to hold no duplicate (a frame names each column once)."""
    dups = sorted(n for n, count in Counter(names).items() if count > 1)
    if dups:
        raise refuse(
            model,
            f"its output columns have duplicated names {dups[:5]}; rename the input columns or "
            "categories so that get_feature_names_out gives distinct names",
        )
    return list(names)


def is_nan(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def as_float(model: Any, what: str, value: Any) -> float:
    """A parameter or fitted constant as float64; ExportError when it is no number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise refuse(model, f"{what}={value!r} is not a number")
    if isinstance(value, (int, np.integer)) and abs(int(value)) > EXACT_INT:
        raise refuse(model, f"{what}={value!r} is an integer that float64 does not hold exactly")
    return float(value)


def floats(model: Any, what: str, values: Any, width: int | None = None) -> list[float]:
    """A fitted vector as float64 numbers (``width`` of them when given)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise refuse(model, f"{what} holds {arr.dtype} values, not numbers")
    flat = [float(v) for v in np.asarray(arr, dtype=np.float64).ravel()]
    if width is not None and len(flat) != width:
        raise refuse(model, f"{what} has {len(flat)} values for {width} columns")
    return flat


class SklearnConverter(FrameConverter):
    """Base class of the scikit-learn transformers' converters.

    Subclasses set ``transformer``, ``supports`` and ``onnx_ops``, and implement
    :meth:`outputs` (the output columns, known at export) and :meth:`emit` (the nodes);
    ``text`` says whether text columns may come in.
    """

    #: the transformer accepts text columns (otherwise they are refused at export)
    text: ClassVar[bool] = False

    # -- to implement -------------------------------------------------------------
    def outputs(self, model: Any, inputs: Sequence[Column]) -> list[Column]:
        """The output columns, in order (default: ``get_feature_names_out``, numeric)."""
        return [Column(n, NUM) for n in feature_names_out(model, [c.name for c in inputs])]

    def emit(
        self, ctx: StepContext, model: Any, inputs: Sequence[Column]
    ) -> dict[str, str]:  # pragma: no cover
        """Add the nodes; return, per output kind, the tensor of the output columns of
        that kind (in output order)."""
        raise NotImplementedError

    def identity(self, model: Any) -> bool:
        """Whether the step leaves its input as it is (no node at all)."""
        return False

    # -- validation ---------------------------------------------------------------
    def nan_ok(self, model: Any) -> bool:
        """Whether NaN passes the transformer's input validation."""
        return bool(get_tags(model).input_tags.allow_nan)

    def inf_ok(self, model: Any) -> bool:
        """Whether +-inf passes the transformer's input validation."""
        return False

    def validate(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> None:
        """Refuse the numbers the transformer's input validation rejects, in every input column."""
        numeric = [c.name for c in inputs if c.kind == NUM]
        if not numeric:
            return
        name = type(model).__name__
        x = ctx.gather(numeric)
        if not self.nan_ok(model):
            ctx.refuse_if(numeric, ctx.node("IsNaN", [x]), f"missing value (NaN), {name} does not accept it")
        if not self.inf_ok(model):
            ctx.refuse_if(
                numeric, ctx.node("IsInf", [x]), f"infinite value, {name} accepts only finite numbers"
            )

    # -- FrameConverter -----------------------------------------------------------
    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        inputs = list(columns)
        n = getattr(model, "n_features_in_", None)
        if isinstance(n, (int, np.integer)) and int(n) != len(inputs):
            raise refuse(
                model,
                f"it was fitted on {int(n)} columns and receives {len(inputs)} ({[c.name for c in inputs]})",
            )
        dates = [c.name for c in inputs if c.kind == DT]
        if dates and not self.identity(model):
            raise refuse(
                model,
                f"it receives datetime columns {dates}; scikit-learn transformers need numbers or text: "
                "derive numbers from them in an earlier step (e.g. feature-engine's DatetimeFeatures)",
            )
        texts = [c.name for c in inputs if c.kind == STR]
        if texts and not self.text:
            raise refuse(
                model,
                f"it receives text columns {texts}; {type(model).__name__} needs numbers: encode them in "
                "an earlier step (e.g. OneHotEncoder or OrdinalEncoder)",
            )
        return inputs

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:
        inputs = self.check_inputs(model, columns)
        if self.identity(model):
            return Plan([], [], [c.name for c in inputs])
        out = self.outputs(model, inputs)
        unique_names(model, [c.name for c in out])
        if not out:
            raise refuse(model, "it outputs no column (an empty frame is not exported)")
        kinds = {c.name: c.kind for c in out}
        writes = [[Column(n, kind) for n in names] for kind, names in by_kind(kinds, [c.name for c in out])]
        return Plan([c.name for c in inputs], writes, [c.name for c in out])

    def convert(self, ctx: StepContext, model: Any) -> None:
        assert ctx.frame is not None
        inputs = ctx.frame.columns()
        self.validate(ctx, model, inputs)
        tensors = self.emit(ctx, model, inputs)
        out = self.outputs(model, inputs)
        kinds = {c.name: c.kind for c in out}
        for block, (kind, _) in enumerate(by_kind(kinds, [c.name for c in out])):
            ctx.node("Identity", [tensors[kind]], ctx.y(block))


def numeric_input(ctx: StepContext, inputs: Sequence[Column]) -> str:
    """The ``[N, n]`` float64 tensor of the (all numeric) input columns, in order."""
    return ctx.gather([c.name for c in inputs])


def fitted_row(ctx: StepContext, model: Any, what: str, values: Any, width: int) -> str:
    """A fitted vector of one number per column (``what``, for the error message) as a
    ``[1, width]`` float64 constant, broadcast over the rows."""
    return ctx.row(floats(model, what, values, width), NUM)


def refuse_below(
    ctx: StepContext, inputs: Sequence[Column], x: str, bound: float, reason: str, *, inclusive: bool
) -> None:
    """Refuse the rows with a value of ``x`` (the input columns) below ``bound`` (or equal
    to it when ``inclusive``): the inputs the transformer's ``transform`` raises on."""
    below = ctx.node("LessOrEqual" if inclusive else "Less", [x, ctx.const(bound)])
    ctx.refuse_if([c.name for c in inputs], below, reason)


def clip(ctx: StepContext, x: str, low: float, high: float | None = None, dtype: Any = np.float64) -> str:
    """``np.clip(x, low, high)`` (``high`` None: no upper bound), constants of ``dtype``;
    NaN stays NaN (``Where`` on comparisons, which NaN fails)."""
    x = ctx.node("Where", [ctx.node("Less", [x, ctx.const(low, dtype)]), ctx.const(low, dtype), x])
    if high is None:
        return x
    return ctx.node("Where", [ctx.node("Greater", [x, ctx.const(high, dtype)]), ctx.const(high, dtype), x])


def by_kind_tensors(ctx: StepContext, columns: Sequence[Column]) -> dict[str, str]:
    """Per kind, the tensor of ``columns`` of that kind (in their order)."""
    kinds = {c.name: c.kind for c in columns}
    return {kind: ctx.gather(names) for kind, names in by_kind(kinds, [c.name for c in columns])}
