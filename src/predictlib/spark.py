"""Score a Spark DataFrame with a predictlib model, on Spark's own Arrow path.

    from predictlib.spark import transform

    scored = transform(spark.read.parquet("houses/"), "house_prices")
    scored.where("predictlib_error IS NULL").select("Id", "prediction")

``transform`` returns the DataFrame with the model's outputs appended (regression:
``prediction``; classification: ``label`` and one ``probability_<class>`` column per
class of the manifest) and ``predictlib_error``: null where the row was predicted,
else why it was refused (``message``, and ``problems``: each refused value's
``column``, ``value`` and ``reason``). A refused row never fails the job and never
disappears; its prediction columns are null.

How (``docs/spark.md``):

* the model is loaded and checked on the driver, and its input columns and their Spark
  types are checked there, before any task starts, with the runtime's error messages
  (:class:`~predictlib.InputError`);
* the artifact's files (the model wheel, or the artifact folder's files) travel as
  bytes inside the job's function: executors need neither a shared file system nor the
  model installed. Each Python worker writes them to a private temporary folder once,
  loads them with :func:`predictlib.load` (every sha256 and the sealed manifest checked
  there too) and keeps one model, one onnxruntime session, for every later batch
  (a module-level cache keyed by the sha256 of the files shipped);
* the model's input columns reach Python as Arrow batches and are read by
  :mod:`predictlib._arrow` without a Python loop over the values; only the outputs
  travel back. pyspark >= 4.1 runs a scalar Arrow UDF (``arrow_udf``: the other
  columns stay in the JVM); pyspark 3.5 and 4.0 run ``mapInArrow`` (every column
  passes through Python).

pyspark is imported by this module only: ``import predictlib`` never imports it.
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._artifact import installed
from ._errors import NO_VALUE, InputError, PredictlibError, Problem
from ._inputs import InputAdapter
from ._model import Model, RowPredictions, load

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

__all__ = ["ERROR_COLUMN", "output_columns", "transform"]

#: the column explaining why a row was refused (null where it was predicted)
ERROR_COLUMN = "predictlib_error"
#: its Spark type (DDL)
ERROR_TYPE = "struct<message: string, problems: array<struct<column: string, value: string, reason: string>>>"
#: the longest text kept of a refused value (``problems.value``)
VALUE_CHARS = 200
#: the temporary column holding the outputs' struct before it is expanded
_SCORED = "__predictlib_scored__"


def transform(
    df: DataFrame,
    model: str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    prefix: str = "",
) -> DataFrame:
    """``df`` with the model's outputs and :data:`ERROR_COLUMN` appended (lazily, as any
    Spark transformation).

    ``model``: an installed model's name, an artifact folder or a model wheel file, as
    for :func:`predictlib.load` (read on the driver and shipped to the executors).
    ``batch_size``: rows per model call; None (the default) scores each Arrow batch
    Spark hands over (``spark.sql.execution.arrow.maxRecordsPerBatch``, 10,000 rows by
    default) as it comes. ``prefix`` is put before every output column's name (e.g. to
    score with two models side by side).

    Raises :class:`~predictlib.InputError` when a column is missing or of a Spark type
    the model refuses, and :class:`~predictlib.PredictlibError` when an output column
    would replace a column of ``df``.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise PredictlibError(f"batch_size must be None or at least 1, got {batch_size!r}")
    shipped = ship(model)
    loaded = load(shipped.path)
    check_schema(loaded, df.schema)
    outputs = _outputs(loaded, prefix)
    clash = [name for name, _ in outputs if name in df.columns]
    if clash:
        raise PredictlibError(
            f"the DataFrame already has column(s) {clash}: drop or rename them, or give "
            f"transform(..., prefix=) to name the outputs differently"
        )
    spec = _Spec(shipped, tuple(loaded.columns), tuple(name for name, _ in outputs), batch_size)
    if _has_arrow_udf():
        return _with_arrow_udf(df, spec, outputs)
    return _with_map_in_arrow(df, spec, outputs)


def output_columns(model: str | os.PathLike[str], prefix: str = "") -> list[tuple[str, str]]:
    """The columns :func:`transform` appends for ``model``: ``(name, Spark DDL type)``."""
    return _outputs(load(model), prefix)


# ------------------------------------------------------------------------ the driver


@dataclass(frozen=True)
class Shipped:
    """An artifact's files as bytes, as they travel to the executors."""

    #: sha256 over the files' names and bytes: the executors' cache key
    key: str
    #: the wheel's file name, or the artifact folder's name
    name: str
    #: ``(file name, bytes)``: one wheel file, or the files of an artifact folder
    files: tuple[tuple[str, bytes], ...]
    #: True: ``files`` is a model wheel; False: an artifact folder's files
    wheel: bool
    #: where the driver read it (for messages; executors do not read it)
    path: str


def ship(model: str | os.PathLike[str]) -> Shipped:
    """The files of ``model`` (an installed model's name, an artifact folder or a model
    wheel), read once on the driver."""
    path = _locate(model)
    if path.is_file():
        files: tuple[tuple[str, bytes], ...] = ((path.name, path.read_bytes()),)
    else:
        files = tuple((f.name, f.read_bytes()) for f in sorted(path.iterdir()) if f.is_file())
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return Shipped(digest.hexdigest(), path.name, files, path.is_file(), str(path))


def _locate(model: str | os.PathLike[str]) -> Path:
    """The folder or wheel file behind ``model``, found as :func:`predictlib.load` finds it."""
    text = os.fspath(model)
    if isinstance(model, os.PathLike) or os.sep in text or text.endswith(".whl"):
        path = Path(text)
    else:
        eps = installed()
        if text in eps:
            dist = eps[text].dist
            if dist is None:
                raise PredictlibError(f"model '{text}': its entry point has no distribution")
            return Path(str(dist.locate_file(eps[text].value.strip())))
        path = Path(text)
    if not (path.is_dir() or path.is_file()):
        load(model)  # raises the runtime's own error (no such model, artifact or wheel)
        raise PredictlibError(f"{text}: not an artifact folder or a model wheel")
    return path.resolve()


def _sample(dtype: DataType) -> Any:
    """A value of a Spark type as an executor's Python code sees it in Arrow, for the
    runtime's own checks (so a type problem has the runtime's message)."""
    from pyspark.sql import types as T

    if isinstance(dtype, T.NullType):
        return None
    if isinstance(dtype, T.BooleanType):
        return True
    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return 0
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return 0.0
    if isinstance(dtype, T.DecimalType):
        return Decimal(0)
    if isinstance(dtype, T.StringType) or type(dtype).__name__ in ("VarcharType", "CharType"):
        return "text"
    if isinstance(dtype, T.BinaryType):
        return b""
    if isinstance(dtype, T.DateType):
        return datetime.date(1970, 1, 1)
    if type(dtype).__name__ == "TimestampNTZType":
        return datetime.datetime(1970, 1, 1)
    if isinstance(dtype, T.TimestampType):  # an instant: Arrow gives it with a time zone
        return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    if isinstance(dtype, T.ArrayType):
        return []
    if isinstance(dtype, (T.MapType, T.StructType)):
        return {}
    return dtype


def check_schema(model: Model, schema: StructType) -> None:
    """Raise :class:`~predictlib.InputError` naming every input column of ``model`` that
    ``schema`` lacks or holds in a Spark type the model refuses (the runtime's message
    for such values, and the column's Spark type)."""
    inputs = model.manifest["inputs"]
    adapter = InputAdapter(
        inputs["numeric"], inputs["categorical"], inputs["missing_category"], inputs.get("datetime", [])
    )
    types = {field.name: field.dataType for field in schema.fields}
    problems: list[Problem] = []
    for column in adapter.columns:
        if column not in types:
            problems.append(Problem(None, column, NO_VALUE, "required column is missing"))
            continue
        dtype = types[column]
        found: list[Problem] = []
        value = _sample(dtype)
        if column in adapter.numeric:
            adapter.number(value, None, column, found)
        elif column in adapter.categorical:
            adapter.category(value, None, column, found)
        else:
            adapter.moment(value, None, column, found)
        for problem in found:
            hint = " (cast it to timestamp_ntz: the local time)" if type(value) is datetime.datetime else ""
            problems.append(
                Problem(
                    None,
                    column,
                    NO_VALUE,
                    f"{problem.expected}: the column is of Spark type {dtype.simpleString()}{hint}",
                )
            )
    if problems:
        raise InputError(problems)


def _label_type(classes: Sequence[Any]) -> str:
    if all(isinstance(c, str) for c in classes):
        return "string"
    if all(isinstance(c, bool) for c in classes):
        return "boolean"
    if all(isinstance(c, int) for c in classes):
        return "bigint"
    return "double"


def _outputs(model: Model, prefix: str) -> list[tuple[str, str]]:
    """``(column name, Spark DDL type)`` of every column :func:`transform` appends."""
    if model.task == "classification":
        columns = [(f"{prefix}label", _label_type(model.classes))]
        columns += [(f"{prefix}probability_{c}", "double") for c in model.classes]
    else:
        columns = [(f"{prefix}prediction", "double")]
    return [*columns, (f"{prefix}{ERROR_COLUMN}", ERROR_TYPE)]


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _has_arrow_udf() -> bool:
    try:
        from pyspark.sql.pandas.functions import arrow_udf  # noqa: F401 - pyspark >= 4.1
    except ImportError:
        return False
    return True


def _struct_ddl(outputs: Sequence[tuple[str, str]]) -> str:
    return "struct<" + ", ".join(f"{_quoted(name)}: {ddl}" for name, ddl in outputs) + ">"


def _with_arrow_udf(df: DataFrame, spec: _Spec, outputs: Sequence[tuple[str, str]]) -> DataFrame:
    """A scalar Arrow UDF over the model's input columns returning the outputs as one
    struct, expanded into columns (Spark evaluates the UDF once)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import ArrowUDFType, arrow_udf

    with warnings.catch_warnings():  # "prefer type hints": the type is given, as the API allows
        warnings.simplefilter("ignore", UserWarning)
        scorer = arrow_udf(_ArrowUdf(spec), _struct_ddl(outputs), ArrowUDFType.SCALAR_ITER)
    scored = df.withColumn(_SCORED, scorer(*[F.col(_quoted(c)) for c in spec.columns]))
    return scored.select(
        *[F.col(_quoted(c)) for c in df.columns],
        *[F.col(_SCORED).getField(name).alias(name) for name, _ in outputs],
    )


def _with_map_in_arrow(df: DataFrame, spec: _Spec, outputs: Sequence[tuple[str, str]]) -> DataFrame:
    """``mapInArrow`` (pyspark 3.5 and 4.0): every column passes through Python."""
    from pyspark.sql.types import StructType, _parse_datatype_string

    schema = StructType(list(df.schema.fields))
    for name, ddl in outputs:
        schema = schema.add(name, _parse_datatype_string(ddl))
    return df.mapInArrow(_MapInArrow(spec), schema)


# ------------------------------------------------------------------- the executors


@dataclass(frozen=True)
class _Spec:
    """What each task needs: the artifact's bytes, the input columns, the outputs."""

    shipped: Shipped
    columns: tuple[str, ...]
    outputs: tuple[str, ...]
    batch_size: int | None


_MODELS: dict[str, Model] = {}
_MODELS_LOCK = threading.Lock()


def _model_of(shipped: Shipped) -> Model:
    """This Python worker's model for ``shipped``: written to a private temporary
    folder and loaded (every check of :func:`predictlib.load`) once, then reused."""
    model = _MODELS.get(shipped.key)
    if model is not None:
        return model
    with _MODELS_LOCK:
        model = _MODELS.get(shipped.key)
        if model is None:
            folder = Path(tempfile.mkdtemp(prefix="predictlib-spark-"))
            atexit.register(shutil.rmtree, folder, True)
            target = folder if shipped.wheel else folder / shipped.name
            target.mkdir(exist_ok=True)
            for name, data in shipped.files:
                (target / name).write_bytes(data)
            path = target / shipped.files[0][0] if shipped.wheel else target
            # one thread per model call: Spark runs one task per core
            model = _MODELS[shipped.key] = load(path, batch_threads=1)
    return model


def _rebatch(tables: Iterator[Any], size: int | None) -> Iterator[Any]:
    """Arrow tables of ``size`` rows (the last one shorter) from tables of any size, in
    order; ``size`` None: the tables as they come."""
    if size is None:
        yield from tables
        return
    import pyarrow as pa

    pending: list[Any] = []
    rows = 0
    for table in tables:
        pending.append(table)
        rows += table.num_rows
        if rows < size:
            continue
        whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
        start = 0
        while rows - start >= size:
            yield whole.slice(start, size)
            start += size
        pending = [whole.slice(start)] if start < rows else []
        rows -= start
    if rows:
        yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]


def _value_text(value: Any) -> str | None:
    if value is NO_VALUE:
        return None
    text = repr(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def _errors(found: RowPredictions) -> list[dict[str, Any] | None]:
    errors: list[dict[str, Any] | None] = [None] * len(found.refused)
    by_row: dict[int, list[Problem]] = {}
    for problem in found.problems:
        by_row.setdefault(problem.row or 0, []).append(problem)
    for row, problems in by_row.items():
        errors[row] = {
            "message": "; ".join(str(Problem(None, p.column, p.value, p.expected)) for p in problems),
            "problems": [
                {"column": p.column, "value": _value_text(p.value), "reason": p.expected} for p in problems
            ],
        }
    return errors


def _score(model: Model, table: Any, types: Sequence[Any]) -> list[Any]:
    """The output arrays of one Arrow table of the model's input columns."""
    import pyarrow as pa

    found = model.predict_rows(table)
    refused = found.refused if found.refused.any() else None
    if found.probabilities is None:
        arrays = [pa.array(found.predictions, type=pa.float64(), mask=refused)]
    else:
        arrays = [pa.array(found.predictions, type=types[0], from_pandas=True)]
        arrays += [
            pa.array(np.ascontiguousarray(found.probabilities[:, k]), type=pa.float64(), mask=refused)
            for k in range(found.probabilities.shape[1])
        ]
    error_type = types[-1]
    if found.problems:
        arrays.append(pa.array(_errors(found), type=error_type))
    else:
        arrays.append(pa.nulls(len(found.refused), type=error_type))
    return arrays


class _ArrowUdf:
    """The scalar Arrow UDF (iterator of the input columns' arrays -> iterator of the
    outputs' struct arrays)."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec

    def __call__(self, batches: Iterator[tuple[Any, ...]]) -> Iterator[Any]:
        import pyarrow as pa

        spec = self.spec
        model = _model_of(spec.shipped)
        tables = (pa.Table.from_arrays(list(arrays), names=list(spec.columns)) for arrays in batches)
        struct_type = _output_struct(model, spec)
        types = [field.type for field in struct_type]
        for table in _rebatch(tables, spec.batch_size):
            arrays = _score(model, table, types)
            yield pa.StructArray.from_arrays(arrays, fields=list(struct_type))


class _MapInArrow:
    """The ``mapInArrow`` function: every column of each batch, plus the outputs."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        spec = self.spec
        model = _model_of(spec.shipped)
        struct_type = _output_struct(model, spec)
        types = [field.type for field in struct_type]
        tables = (pa.Table.from_batches([b]) for b in batches)
        for table in _rebatch(tables, spec.batch_size):
            arrays = _score(model, table.select(list(spec.columns)), types)
            yield from pa.Table.from_arrays(
                [*table.columns, *arrays], names=[*table.column_names, *spec.outputs]
            ).to_batches()


def _output_struct(model: Model, spec: _Spec) -> Any:
    """The outputs' arrow struct type (from their Spark DDL types)."""
    import pyarrow as pa

    probability = [pa.field(name, pa.float64()) for name in spec.outputs[1:-1]]
    problem = pa.struct([("column", pa.string()), ("value", pa.string()), ("reason", pa.string())])
    error = pa.field(spec.outputs[-1], pa.struct([("message", pa.string()), ("problems", pa.list_(problem))]))
    if model.task == "classification":
        label = {"string": pa.string(), "boolean": pa.bool_(), "bigint": pa.int64(), "double": pa.float64()}
        first = pa.field(spec.outputs[0], label[_label_type(model.classes)])
    else:
        first = pa.field(spec.outputs[0], pa.float64())
    return pa.struct([first, *probability, error])
