"""Parquet files for ``predictlib predict``, read with pyarrow (when it is installed)
one record batch at a time: memory stays bounded by a batch whatever the file's size,
and only the model's input columns are read.

Rows become records as the CSV and JSON Lines readers make them: nulls are missing
values (None), numbers and texts keep their Python types, timestamps are numpy
``datetime64[ns]`` (naive ones; an aware timestamp stays aware and is refused, as in
every input), dates are ``datetime.date``. The model then checks every value with
its usual rules and messages, so a Parquet file predicts exactly as the same rows
in CSV.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._errors import PredictlibError

#: file name endings read as Parquet
SUFFIXES = (".parquet", ".pq")
#: rows per record batch read (a batch of house_prices' 79 columns is a few MB)
BATCH_ROWS = 8_192


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def parquet_records(
    path: Path, columns: Sequence[str], batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number from 1, record)`` for every row of the Parquet file ``path``,
    holding ``columns`` (those the file has: a record lacks the others, which the model
    names as missing). The file is opened and its schema read now: a missing or
    unreadable file is an error before anything is written."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise PredictlibError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or give a .csv or .jsonl file"
        ) from None
    try:
        file = pq.ParquetFile(path)
        names = set(file.schema_arrow.names)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise PredictlibError(f"cannot read {path} as Parquet ({exc})") from None
    wanted = [c for c in columns if c in names]
    return _rows(file, wanted, batch_rows, path)


def _rows(file: Any, columns: list[str], batch_rows: int, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    try:
        if not columns:  # none of the model's columns: empty records, refused as lacking them
            for number in range(1, file.metadata.num_rows + 1):
                yield number, {}
            return
        for batch in file.iter_batches(batch_size=batch_rows, columns=columns):
            for record in _records(batch):
                number += 1
                yield number, record
    except (OSError, ValueError) as exc:
        raise PredictlibError(f"{path}, after row {number}: cannot read the file ({exc})") from None
    finally:
        file.close()


def _records(batch: Any) -> list[dict[str, Any]]:
    """The rows of a record batch as records; naive timestamps as numpy datetime64 in
    their own unit (to the nanosecond; NaT for nulls, a missing value)."""
    import pyarrow as pa

    records: list[dict[str, Any]] = batch.to_pylist()
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            values = column.to_numpy(zero_copy_only=False)
            for record, value in zip(records, values, strict=True):
                record[name] = value
    return records
