"""DataFrame-shaped conversion on top of skl2onnx.

feature-engine transformers map a DataFrame to a DataFrame by column name, which
skl2onnx has no notion of. Here a *frame* travels between parsers as a list of
skl2onnx ``Variable`` objects, each a *block* of columns (``[N, k]``, all float64
or all string) whose column names are in ``variable.predictlib_columns``. A step
reads its columns from the blocks (one ``Gather`` per block kind), computes the
new values of all its columns at once and writes them as new blocks; columns it
does not touch stay where they are. Column-wise work is thus a handful of nodes
per step, whatever the number of columns: per-node cost dominates onnxruntime's
latency for one row (a first version with one tensor per column ran the house
prices graph in 229 us per row; see the README's design section).

The logical column order of a frame (what ``X.columns`` would be) is kept in a
side table of the conversion scope, keyed by the list of block variables.

Missing values: NaN in numeric blocks, the :data:`MISSING` sentinel in string ones.

*Datetime columns* (kind ``"dt"``) are int64 blocks: nanoseconds since
1970-01-01T00:00:00 (naive datetimes, numpy's ``datetime64[ns]`` as int64), missing
= :data:`NAT` (the int64 minimum, numpy's NaT). They enter the graph as the third
grouped input ``dt`` (see :mod:`predictlib.build.converters.feature_engine.datetime`).

The pipeline parser registered here replaces skl2onnx's: between the last frame
step and the first scikit-learn step it assembles the (numeric) frame into one
float64 matrix in column order, and, when an export is active, it puts a guard
before every scikit-learn step that flags the NaN / inf values the step would reject.

*Refusals.* A graph cannot raise. Wherever the original pipeline raises on a value
(NaN where a step needs a number, an unseen category with ``unseen='raise'``, a
non-positive value into a log...), the converter records a boolean "refuse" tensor
with, per tensor column, the data column, the step and the reason.
:func:`predictlib.build.stages.export.export_pipeline` concatenates them into one graph output,
``refusals`` (bool, ``[N, n_checks]``); the runtime refuses a row whose flags are
set, naming each check's column and reason (the manifest lists them).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (
    DoubleTensorType,
    Int64TensorType,
    StringTensorType,
)

from predictlib._inputs import NAT, NS_MAX, NS_MIN  # noqa: F401 - the converters take them from here

#: The string that stands for a missing categorical value inside the graph.
MISSING = "__predictlib_missing__"

#: ONNX opsets of the exported graphs: 19 for ``Equal`` on strings; ai.onnx.ml 3 for
#: skl2onnx's operators (raised to 5 for float64 TreeEnsemble, see predictlib.build.converters.sklearn.estimators).
#: onnxruntime >= 1.20 loads them.
TARGET_OPSET = {"": 19, "ai.onnx.ml": 3}

NUM = "num"
STR = "str"
#: datetime columns: int64 nanoseconds since the epoch, missing = NAT
DT = "dt"
# a missing datetime in a ``dt`` block is NAT (from the runtime), the int64 minimum
# (numpy's NaT as int64); NS_MIN / NS_MAX are the ends of the nanosecond range


class ExportError(ValueError):
    """A fitted pipeline (or one of its steps) cannot be exported faithfully."""


@dataclass(frozen=True)
class Column:
    """A column of a frame: its name and its kind (``"num"``, ``"str"`` or ``"dt"``).

    ``categories``: a text column fitted as a pandas ``category`` column of texts (the
    fitted model is given it with that dtype: a text outside them becomes missing)."""

    name: str
    kind: str
    categories: tuple[str, ...] | None = field(default=None, compare=False)


def block_type(kind: str, width: int) -> DoubleTensorType | StringTensorType | Int64TensorType:
    if kind == DT:
        return Int64TensorType([None, width])
    return DoubleTensorType([None, width]) if kind == NUM else StringTensorType([None, width])


@dataclass(frozen=True)
class Plan:
    """What a frame step does to the columns, known before any node exists.

    ``reads``: the input columns the step's nodes use; ``writes``: the blocks it
    produces, each a list of same-kind columns (new columns, or replacing input
    columns of the same name); ``order``: the column names after the step.
    """

    reads: list[str]
    writes: list[list[Column]]
    order: list[str]


@dataclass(frozen=True)
class Check:
    """One refusal condition of the exported graph (one column of ``refusals``)."""

    column: str
    step: str
    transformer: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {
            "column": self.column,
            "step": self.step,
            "transformer": self.transformer,
            "reason": self.reason,
        }


@dataclass
class ExportState:
    """Collected while a pipeline is exported: the refusal tensors and their meaning."""

    tensors: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    #: the number of checks (columns) of each refusal tensor, in the order of ``tensors``
    widths: list[int] = field(default_factory=list)
    #: the model being exported and the frame it was fitted on (None when the export was
    #: not given it): converters that need the training values (e.g. CatBoost's category
    #: texts, which the model keeps only as hashes) recompute a step's input from them
    model: Any = None
    X_train: Any = None


_STATE: contextvars.ContextVar[ExportState | None] = contextvars.ContextVar(
    "predictlib_export_state", default=None
)
_STEP_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "predictlib_step_path", default=()
)


@contextlib.contextmanager
def exporting(model: Any = None, X_train: Any = None) -> Iterator[ExportState]:
    """Collect refusal checks for the conversion run inside the block (of ``model``,
    fitted on ``X_train`` when given)."""
    state = ExportState(model=model, X_train=X_train)
    token = _STATE.set(state)
    try:
        yield state
    finally:
        _STATE.reset(token)


@contextlib.contextmanager
def in_step(name: str) -> Iterator[None]:
    token = _STEP_PATH.set((*_STEP_PATH.get(), name))
    try:
        yield
    finally:
        _STEP_PATH.reset(token)


def export_state() -> ExportState | None:
    """The checks being collected by the export in progress (None outside an export)."""
    return _STATE.get()


def step_path() -> tuple[str, ...]:
    """The names of the pipeline steps leading to the step being converted."""
    return _STEP_PATH.get()


def current_step() -> str:
    return "/".join(_STEP_PATH.get()) or "<model>"


def step_label(model: object) -> str:
    """``"step 'log' (LogTransformer)"``: how errors name a step."""
    return f"step '{current_step()}' ({type(model).__name__})"


# --------------------------------------------------------------------------- frames


class Frame:
    """The columns of a DataFrame as blocks of skl2onnx variables."""

    def __init__(self, blocks: Sequence[Any], order: Sequence[str]) -> None:
        self.blocks = list(blocks)
        self.order = list(order)
        self.where: dict[str, tuple[Any, int]] = {}
        for var in self.blocks:
            for i, name in enumerate(var.predictlib_columns):
                self.where[name] = (var, i)  # later blocks shadow earlier ones
        missing = [c for c in self.order if c not in self.where]
        if missing:
            raise ExportError(f"internal error: columns {missing} are in no block")

    def kind(self, column: str) -> str:
        var, _ = self.where[column]
        if isinstance(var.type, Int64TensorType):
            return DT
        return STR if isinstance(var.type, StringTensorType) else NUM

    def columns(self) -> list[Column]:
        return [Column(c, self.kind(c)) for c in self.order]

    @classmethod
    def from_variables(cls, scope: Any, variables: Sequence[Any]) -> Frame:
        for v in variables:
            if not hasattr(v, "predictlib_columns"):
                _as_block(v)
        order = _orders(scope).get(_key(variables))
        if order is None:
            order = [c for v in variables for c in v.predictlib_columns]
        return cls(variables, order)

    def to_variables(self, scope: Any) -> list[Any]:
        """The live blocks, in a list whose column order is remembered."""
        live = {id(var) for var, _ in (self.where[c] for c in self.order)}
        blocks = [v for v in self.blocks if id(v) in live]
        _orders(scope)[_key(blocks)] = list(self.order)
        return blocks


def _key(variables: Sequence[Any]) -> tuple[str, ...]:
    return tuple(v.onnx_name for v in variables)


def _orders(scope: Any) -> dict[tuple[str, ...], list[str]]:
    if not hasattr(scope, "predictlib_orders"):
        scope.predictlib_orders = {}
    return scope.predictlib_orders  # type: ignore[no-any-return]


def _as_block(var: Any) -> None:
    """A user-declared input (skl2onnx habit: one [N, 1] input per column) as a block."""
    if not isinstance(var.type, (DoubleTensorType, StringTensorType)):
        raise ExportError(
            f"input '{var.raw_name}' is a {type(var.type).__name__}; feature-engine steps are "
            "exported on float64 (DoubleTensorType) and string columns"
        )
    shape = var.type.shape
    if len(shape) != 2 or shape[1] not in (1, None):
        raise ExportError(
            f"input '{var.raw_name}' has shape {shape}: give a feature-engine step one [N, 1] "
            "input per column, named as the column"
        )
    var.predictlib_columns = [var.raw_name]


def declare_block(scope: Any, columns: Sequence[Column], hint: str = "block") -> Any:
    kinds = {c.kind for c in columns}
    if len(kinds) != 1:
        raise ExportError(f"internal error: a block mixes kinds {kinds}")
    var = scope.declare_local_variable(hint, block_type(kinds.pop(), len(columns)))
    var.predictlib_columns = [c.name for c in columns]
    return var


# --------------------------------------------------------------------------- nodes


class StepContext:
    """What a converter sees: its input columns, its output blocks, node helpers."""

    def __init__(self, scope: Any, operator: Any, container: Any) -> None:
        self.scope = scope
        self.container = container
        self.model = operator.raw_operator
        self.step = getattr(operator, "predictlib_step", current_step())
        self.frame: Frame | None = getattr(operator, "predictlib_frame", None)
        self.outputs = list(operator.outputs)

    # tensors -----------------------------------------------------------------
    def kind(self, column: str) -> str:
        assert self.frame is not None
        return self.frame.kind(column)

    def gather(self, columns: Sequence[str]) -> str:
        """An [N, len(columns)] tensor of input ``columns`` (all of one kind), in that order."""
        assert self.frame is not None
        where = [self.frame.where[c] for c in columns]
        blocks: list[Any] = []
        for var, _ in where:
            if all(var is not b for b in blocks):
                blocks.append(var)
        if len(blocks) == 1 and [i for _, i in where] == list(range(len(blocks[0].predictlib_columns))):
            return str(blocks[0].full_name)
        offsets, start = {}, 0
        for var in blocks:
            offsets[id(var)] = start
            start += len(var.predictlib_columns)
        if len(blocks) == 1:
            source = blocks[0].full_name
        else:
            source = self.node("Concat", [b.full_name for b in blocks], axis=1)
        indices = [offsets[id(var)] + i for var, i in where]
        return self.node("Gather", [source, self.const(indices, np.int64)], axis=1)

    def y(self, block: int = 0) -> str:
        """The name the converter must give to output block ``block`` (``Plan.writes``)."""
        return str(self.outputs[block].full_name)

    def name(self, hint: str) -> str:
        return str(self.scope.get_unique_variable_name(hint))

    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        output: str | None = None,
        *,
        domain: str = "",
        **attrs: Any,
    ) -> str:
        """Add one node with one output; return the output's name."""
        out = output or self.name(op_type)
        op_version = TARGET_OPSET[domain] if domain else None
        self.container.add_node(
            op_type,
            list(inputs),
            [out],
            op_domain=domain,
            op_version=op_version,
            name=self.scope.get_unique_operator_name(op_type),
            **attrs,
        )
        return out

    def const(self, value: Any, dtype: Any = np.float64) -> str:
        """An initializer holding ``value`` (scalar or array); ``dtype=object`` for strings."""
        arr = np.asarray(value, dtype=dtype)
        name = self.name("c")
        if arr.dtype.kind in "OUS":
            flat = [str(v).encode("utf-8") for v in arr.ravel()]
            self.container.add_initializer(name, TensorProto.STRING, list(arr.shape), flat)
        else:
            onnx_type = {
                np.dtype(np.float64): TensorProto.DOUBLE,
                np.dtype(np.int64): TensorProto.INT64,
                np.dtype(np.bool_): TensorProto.BOOL,
            }[arr.dtype]
            self.container.add_initializer(name, onnx_type, list(arr.shape), arr.ravel().tolist())
        return name

    def row(self, values: Sequence[Any], kind: str) -> str:
        """A [1, k] constant (broadcast over rows); datetimes as int64 nanoseconds."""
        if kind == NUM:
            return self.const([[float(v) for v in values]])
        if kind == DT:
            return self.const([[datetime_ns(v) for v in values]], np.int64)
        return self.const([[str(v) for v in values]], dtype=object)

    def is_missing(self, tensor: str, kind: str) -> str:
        """Boolean, same shape as ``tensor``: the value is missing (NaN, the sentinel or NaT)."""
        if kind == NUM:
            return self.node("IsNaN", [tensor])
        if kind == DT:
            return self.node("Equal", [tensor, self.const(NAT, np.int64)])
        return self.node("Equal", [tensor, self.const([MISSING], dtype=object)])

    def refuse_if(self, columns: Sequence[str], condition: str, reason: str) -> None:
        """Rows where ``condition`` ([N, len(columns)] bool) holds are refused."""
        refuse_if_matrix(self.step, type(self.model).__name__, columns, condition, reason)

    # building blocks for converters (public: docs/custom-transformers.md) -----------
    # Operands are tensor names (str, as returned by gather / the other methods) or
    # Python numbers and nested lists of numbers, made float64 constants (broadcast:
    # a number applies to every cell, a list [v1, ..., vk] to the k columns in order).

    def operand(self, value: Tensor | float | Sequence[float]) -> str:
        """``value`` as a tensor: a tensor name as it is, numbers as a float64 constant."""
        if isinstance(value, str):
            return value
        arr = np.asarray(value, dtype=np.float64)
        return self.const(arr.reshape(1, -1) if arr.ndim == 1 else arr)

    def _binary(self, op: str, a: Operand, b: Operand) -> str:
        return self.node(op, [self.operand(a), self.operand(b)])

    def add(self, a: Operand, b: Operand) -> str:
        """``a + b``, element-wise (float64)."""
        return self._binary("Add", a, b)

    def sub(self, a: Operand, b: Operand) -> str:
        """``a - b``, element-wise (float64)."""
        return self._binary("Sub", a, b)

    def mul(self, a: Operand, b: Operand) -> str:
        """``a * b``, element-wise (float64)."""
        return self._binary("Mul", a, b)

    def div(self, a: Operand, b: Operand) -> str:
        """``a / b``, element-wise (float64; x / 0 is +-inf or NaN, as numpy gives)."""
        return self._binary("Div", a, b)

    def equal(self, a: Operand, b: Operand) -> str:
        """``a == b`` (bool; NaN equals nothing, as in numpy)."""
        return self._binary("Equal", a, b)

    def less(self, a: Operand, b: Operand) -> str:
        """``a < b`` (bool)."""
        return self._binary("Less", a, b)

    def less_equal(self, a: Operand, b: Operand) -> str:
        """``a <= b`` (bool)."""
        return self._binary("LessOrEqual", a, b)

    def greater(self, a: Operand, b: Operand) -> str:
        """``a > b`` (bool)."""
        return self._binary("Greater", a, b)

    def greater_equal(self, a: Operand, b: Operand) -> str:
        """``a >= b`` (bool)."""
        return self._binary("GreaterOrEqual", a, b)

    def logical_and(self, a: str, b: str) -> str:
        return self.node("And", [a, b])

    def logical_or(self, a: str, b: str) -> str:
        return self.node("Or", [a, b])

    def logical_not(self, a: str) -> str:
        return self.node("Not", [a])

    def where(self, condition: str, a: Operand, b: Operand) -> str:
        """``a`` where ``condition`` holds, else ``b`` (numbers: float64 constants)."""
        return self.node("Where", [condition, self.operand(a), self.operand(b)])

    def fill_missing(self, x: str, kind: str, values: Sequence[Any]) -> str:
        """``x`` [N, k] of kind ``kind`` with its missing cells replaced by ``values[j]``
        in column j (numbers, texts or datetimes, as the kind)."""
        return self.node("Where", [self.is_missing(x, kind), self.row(values, kind), x])

    def matmul(self, x: str, weights: Sequence[Sequence[float]]) -> str:
        """``x @ weights``: ``x`` [N, k] float64, ``weights`` a k x m table -> [N, m]."""
        return self.node("MatMul", [x, self.const(np.asarray(weights, dtype=np.float64))])

    def concat(self, *tensors: str) -> str:
        """The tensors side by side (axis 1), all of one kind."""
        return tensors[0] if len(tensors) == 1 else self.node("Concat", list(tensors), axis=1)

    def lookup(self, x: str, mappings: Sequence[dict[str, Any]], default: Any, kind: str = NUM) -> str:
        """``out[:, j] = mappings[j].get(x[:, j], default)`` for a text block ``x``;
        ``kind`` is the kind of the values (``NUM`` or ``STR``)."""
        return lookup(self, x, mappings, default, kind)

    def write(self, tensor: str, block: int = 0) -> None:
        """Make ``tensor`` the step's output block ``block`` (``Plan.writes[block]``)."""
        self.node("Identity", [tensor], self.y(block))


#: a tensor of the graph, by name
Tensor = str
#: what the arithmetic and comparison building blocks take
Operand = str | float | int | Sequence[float] | Sequence[Sequence[float]]


def gather_table(ctx: StepContext, ids: str, rows: Sequence[Sequence[Any]], kind: str) -> str:
    """``out[n, j] = rows[ids[n, j]][j]``: ``ids`` [N, w] int64, ``rows`` a [R, w] table."""
    width = len(rows[0])
    flat = ctx.node(
        "Add",
        [ctx.node("Mul", [ids, ctx.const(width, np.int64)]), ctx.const([list(range(width))], np.int64)],
    )
    values = [v for row in rows for v in row]
    data = ctx.const(values) if kind == NUM else ctx.const(values, dtype=object)
    return ctx.node("Gather", [data, flat], axis=0)


def lookup(ctx: StepContext, x: str, mappings: Sequence[dict[str, Any]], default: Any, kind: str) -> str:
    """``out[:, j] = mappings[j].get(x[:, j], default)`` for a string block ``x``
    (one ``LabelEncoder`` to vocabulary ids, one ``Gather`` from the table)."""
    vocabulary = sorted({key for mapping in mappings for key in mapping})
    index = {key: i for i, key in enumerate(vocabulary)}
    width = len(mappings)
    unknown = len(vocabulary)  # the row of the table for strings not in the vocabulary
    rows: list[list[Any]] = [[default] * width for _ in range(unknown + 1)]
    for j, mapping in enumerate(mappings):
        for key, value in mapping.items():
            rows[index[key]][j] = value
    ids = ctx.node(
        "LabelEncoder",
        [x],
        domain="ai.onnx.ml",
        keys_strings=vocabulary or [MISSING],
        values_int64s=list(range(len(vocabulary))) or [unknown],
        default_int64=unknown,
    )
    return gather_table(ctx, ids, rows, kind)


def refuse_if_matrix(
    step: str, transformer: str, columns: Sequence[str], condition: str, reason: str
) -> None:
    """Record an [N, len(columns)] boolean refusal tensor (no-op outside an export)."""
    state = _STATE.get()
    if state is None:
        return
    state.tensors.append(condition)
    state.widths.append(len(columns))
    state.checks.extend(Check(c, step, transformer, reason) for c in columns)


def datetime_ns(value: Any) -> int:
    """A datetime value (pandas Timestamp, numpy datetime64, naive datetime / date, or
    int nanoseconds) as int64 nanoseconds since the epoch; NaT / None as :data:`NAT`."""
    import datetime as _dt

    if value is None:
        return NAT
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return NAT
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if type(value).__name__ == "NaTType":
        return NAT
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            raise ExportError(f"timezone-aware datetime {value!r}: predictlib exports naive datetimes")
        nanos = getattr(value, "nanosecond", 0)
        delta = value.replace(tzinfo=None) - _dt.datetime(1970, 1, 1)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + nanos
    if isinstance(value, _dt.date):
        return (value - _dt.date(1970, 1, 1)).days * 86_400 * 1_000_000_000
    raise ExportError(f"{value!r} ({type(value).__name__}) is not a datetime")


def by_kind(frame_kinds: dict[str, str], columns: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``columns`` grouped by kind, numeric first, then text, then datetime; empty groups left out."""
    groups = [(kind, [c for c in columns if frame_kinds[c] == kind]) for kind in (NUM, STR, DT)]
    return [(k, cols) for k, cols in groups if cols]


# ----------------------------------------------------------------- frame converters


class FrameConverter:
    """Base class of the converters of DataFrame -> DataFrame transformers."""

    #: the transformer class converted; set by subclasses
    transformer: ClassVar[type]
    #: the parameters and values converted, for the coverage table (docs/converters.md)
    supports: ClassVar[str] = ""
    #: the ONNX operators the converter may emit (tests check the graphs keep to them)
    #: (None: not declared, the check is left out: a user's converter may leave it)
    onnx_ops: ClassVar[frozenset[str] | None] = None

    def plan(self, model: Any, columns: Sequence[Column]) -> Plan:  # pragma: no cover
        raise NotImplementedError

    def convert(self, ctx: StepContext, model: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def in_place(
        columns: Sequence[Column],
        variables: Sequence[str],
        kind: str | None = None,
        reads: Sequence[str] = (),
    ) -> Plan:
        """A plan that rewrites ``variables`` in place: one output block per kind
        (numeric first), or one block of kind ``kind`` when given; ``reads``: other
        columns the step's nodes use."""
        kinds = {c.name: c.kind for c in columns}
        if kind is not None:
            writes = [[Column(v, kind) for v in variables]] if variables else []
        else:
            writes = [[Column(v, k) for v in vs] for k, vs in by_kind(kinds, variables)]
        used = list(dict.fromkeys([*variables, *reads]))
        return Plan(used, writes, [c.name for c in columns])


def numeric_columns(model: Any, columns: Sequence[Column], names: Sequence[Any]) -> list[str]:
    """``names`` (a step's input variables), checked to be numeric columns of the frame."""
    kinds = {c.name: c.kind for c in columns}
    absent = [n for n in names if n not in kinds]
    if absent:
        raise ExportError(f"{step_label(model)}: variables {absent} are not columns of its input")
    strings = [n for n in names if kinds[n] != NUM]
    if strings:
        raise ExportError(f"{step_label(model)}: variables {strings} are not numeric columns")
    return [str(n) for n in names]


def appended(
    model: Any,
    columns: Sequence[Column],
    reads: Sequence[str],
    new: Sequence[str],
    dropped: Sequence[str] = (),
) -> Plan:
    """The plan of a step that appends the numeric columns ``new`` (one block) and then
    drops the columns ``dropped`` (``drop_original``)."""
    names = [c.name for c in columns]
    clash = [n for n in new if n in set(names)]
    if clash:
        raise ExportError(
            f"{step_label(model)}: the new columns {clash} would overwrite existing columns of the "
            "same name; that is not exported (rename them)"
        )
    if len(set(new)) != len(new):
        raise ExportError(f"{step_label(model)}: the new column names {list(new)} are not unique")
    gone = set(dropped)
    order = [n for n in [*names, *new] if n not in gone]
    return Plan(list(dict.fromkeys(reads)), [[Column(n, NUM) for n in new]], order)


_CONVERTERS: dict[type, FrameConverter] = {}


def register_converter(cls: type[FrameConverter]) -> type[FrameConverter]:
    """Class decorator: register a :class:`FrameConverter` with skl2onnx."""
    instance = cls()
    transformer = cls.transformer
    _CONVERTERS[transformer] = instance
    update_registered_converter(
        transformer,
        f"Predictlib{transformer.__name__}",
        shape_calculator,
        frame_step_converter,
        parser=frame_step_parser,
    )
    return cls


#: operators any frame step may use to move columns around (gather, concatenate, rename);
#: predictlib.build.passes.simplify turns column Gathers into ArrayFeatureExtractor
PLUMBING_OPS = frozenset({"Gather", "Concat", "Identity", "ArrayFeatureExtractor"})


def registered_frame_converters() -> dict[type, FrameConverter]:
    return dict(_CONVERTERS)


def shape_calculator(operator: Any) -> None:
    """Output types are fixed by the parsers."""
    return None


def no_converter(scope: Any, operator: Any, container: Any) -> None:
    """For classes that only have a parser (their operators are declared by it)."""
    raise ExportError(f"{type(operator.raw_operator).__name__} has no converter of its own")


def frame_step_parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    converter = _CONVERTERS[type(model)]
    frame = Frame.from_variables(scope, inputs)
    names = frame.order
    if len(set(names)) != len(names):
        raise ExportError(f"{step_label(model)}: duplicated column names {names}")
    fitted_in = getattr(model, "feature_names_in_", None)
    if fitted_in is not None and list(fitted_in) != names:
        # feature-engine reorders the columns as in fit (X = X[feature_names_in_])
        missing = [c for c in fitted_in if c not in frame.where]
        extra = [c for c in names if c not in set(fitted_in)]
        if missing or extra:
            raise ExportError(
                f"{step_label(model)} was fitted on other columns (missing: {missing}, unexpected: {extra})"
            )
        frame = Frame(frame.blocks, [str(c) for c in fitted_in])
    plan = converter.plan(model, frame.columns())
    if not plan.writes:
        return Frame(frame.blocks, plan.order).to_variables(scope)
    op = scope.declare_local_operator(f"Predictlib{type(model).__name__}", model)
    op.predictlib_step = current_step()
    op.predictlib_frame = frame
    read_blocks: list[Any] = []
    for c in plan.reads:
        var = frame.where[c][0]
        if all(var is not b for b in read_blocks):
            read_blocks.append(var)
    op.inputs = read_blocks
    new_blocks = [declare_block(scope, cols) for cols in plan.writes if cols]
    op.outputs.extend(new_blocks)
    return Frame(frame.blocks + new_blocks, plan.order).to_variables(scope)


def frame_step_converter(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    _CONVERTERS[type(model)].convert(StepContext(scope, operator, container), model)


_FRAME_AWARE: set[type] = set()


def frame_aware_classes() -> list[type]:
    """The meta-estimators registered with :func:`frame_aware`."""
    return list(_FRAME_AWARE)


def is_frame_aware(cls: type) -> bool:
    """Whether ``cls`` is a meta-estimator whose parser takes frames itself."""
    return cls in _FRAME_AWARE


def has_frame_converter(cls: type) -> bool:
    """Whether ``cls`` has a registered :class:`FrameConverter`."""
    return cls in _CONVERTERS


def frame_aware(cls: type) -> type:
    """Mark a meta-estimator whose parser accepts frames itself (e.g. a wrapper)."""
    _FRAME_AWARE.add(cls)
    return cls


def declare_step(scope: Any, alias: str, model: Any, inputs: list[Any], outputs: list[Any]) -> Any:
    op = scope.declare_local_operator(alias, model)
    op.predictlib_step = current_step()
    op.inputs = list(inputs)
    op.outputs.extend(outputs)
    return op
