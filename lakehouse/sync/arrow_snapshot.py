"""The initial snapshot in Arrow: whole columns converted at once, bad rows still dead-lettered.

PostgreSQL sends the table as CSV (``COPY ... (FORMAT csv)``), which pyarrow
parses into string columns holding each value's text output: the same text
pgoutput sends, and the same text :func:`lakehouse.sync.pgtypes.converter`
defines the typed value of. A column is converted with Arrow compute only
where that provably gives the converter's value:

* the column's type is one whose text this module knows (booleans, integers,
  floats, numerics, dates, times and timestamps) and its Arrow type is the one
  :func:`~lakehouse.sync.pgtypes.arrow_type` gives it;
* the value's text has that type's canonical shape (a regular expression), and
  Arrow's cast of it neither rounds nor overflows (a cast that would is an
  error, never a changed value).

Every other value, and every column of another type, is converted by the
converter itself, one value at a time; a value it refuses makes its row a dead
letter with the converter's reason, exactly as the per-row path words it
(:func:`~lakehouse.sync.pgtypes.refused_reason`, for the row's first refused column).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from lakehouse.errors import SyncStoppedError
from lakehouse.sync import pgtypes
from lakehouse.sync.model import DeadLetter, TableBatch
from lakehouse.sync.pgoutput import Column
from lakehouse.sync.pgtypes import BadValue, arrow_schema, arrow_type, converter, refused_reason

# Canonical text output of each type under DateStyle=ISO and TimeZone=UTC; a value
# of any other shape (NaN numerics, infinity, BC dates, years past 9999, 24:00:00)
# is left to the converter.
_INTEGER: Final = r"^-?[0-9]+$"
_FLOAT: Final = r"^(-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|-?Infinity|NaN)$"
_NUMERIC: Final = r"^-?[0-9]+(\.[0-9]+)?$"
_DATE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_CLOCK: Final = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
_TIMESTAMP: Final = rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} {_CLOCK}$"
_TIMESTAMPTZ: Final = rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} {_CLOCK}\+00$"
_TIME: Final = rf"^{_CLOCK}$"


class SnapshotReadError(SyncStoppedError):
    """The snapshot's CSV could not be parsed: a fault of this module, never of the data."""


Cast = Callable[[pa.Array, pa.DataType], pa.Array]


def _cast(text: pa.Array, target: pa.DataType) -> pa.Array:
    return pc.cast(text, target)  # safe: an overflow or a lost digit is an error


def _bool(text: pa.Array, target: pa.DataType) -> pa.Array:
    return pc.equal(text, "t")


def _float32(text: pa.Array, target: pa.DataType) -> pa.Array:
    # As the converter does: Python's float (a double), then pyarrow's float32.
    return pc.cast(pc.cast(text, pa.float64()), target, safe=False)


def _time(text: pa.Array, target: pa.DataType) -> pa.Array:
    on_epoch_day = pc.cast(pc.binary_join_element_wise("1970-01-01 ", text, ""), pa.timestamp("us"))
    return pc.cast(pc.cast(on_epoch_day, pa.int64()), target)


@dataclass(frozen=True)
class _Kernel:
    pattern: str
    cast: Cast
    accepts: Callable[[pa.DataType], bool]


_KERNELS: Final[dict[int, _Kernel]] = {
    pgtypes.BOOL: _Kernel("^[tf]$", _bool, pa.types.is_boolean),
    pgtypes.INT2: _Kernel(_INTEGER, _cast, pa.types.is_int32),
    pgtypes.INT4: _Kernel(_INTEGER, _cast, pa.types.is_int32),
    pgtypes.INT8: _Kernel(_INTEGER, _cast, pa.types.is_int64),
    pgtypes.FLOAT4: _Kernel(_FLOAT, _float32, pa.types.is_float32),
    pgtypes.FLOAT8: _Kernel(_FLOAT, _cast, pa.types.is_float64),
    pgtypes.NUMERIC: _Kernel(_NUMERIC, _cast, pa.types.is_decimal128),
    pgtypes.DATE: _Kernel(_DATE, _cast, pa.types.is_date32),
    pgtypes.TIMESTAMP: _Kernel(_TIMESTAMP, _cast, lambda t: t == pa.timestamp("us")),
    pgtypes.TIMESTAMPTZ: _Kernel(_TIMESTAMPTZ, _cast, lambda t: t == pa.timestamp("us", "UTC")),
    pgtypes.TIME: _Kernel(_TIME, _time, lambda t: t == pa.time64("us")),
}


def _kernel(column: Column) -> _Kernel | None:
    """The Arrow kernel for this column, or None where only the converter knows."""
    target = arrow_type(column.type_oid, column.type_modifier)
    if pa.types.is_string(target):
        keeps_text = converter(column.type_oid, column.type_modifier) is converter(pgtypes.TEXT, -1)
        return _Kernel("", _cast, pa.types.is_string) if keeps_text else None
    kernel = _KERNELS.get(column.type_oid)
    return kernel if kernel is not None and kernel.accepts(target) else None


@dataclass
class ConvertedColumn:
    """A column's typed values (null where refused) and why rows were refused."""

    values: pa.Array
    refused: dict[int, str] = field(default_factory=dict)  # row index -> BadValue message


def convert_column(text: pa.Array, column: Column) -> ConvertedColumn:
    """PostgreSQL text (a string array, null for NULL) as ``arrow_type`` values.

    Equal to calling ``converter`` on every value: the fast path is used only
    for values it provably converts the same, the converter for the rest.
    """
    target = arrow_type(column.type_oid, column.type_modifier)
    kernel = _kernel(column)
    if kernel is None:
        return _per_value(text, column, target)
    if not kernel.pattern:
        return ConvertedColumn(text)
    canonical = pc.fill_null(pc.match_substring_regex(text, kernel.pattern), False)
    try:
        fast = kernel.cast(pc.if_else(canonical, text, None), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _per_value(text, column, target)  # e.g. a numeric with more digits than fit
    unusual = pc.and_(pc.invert(canonical), pc.is_valid(text))
    if not pc.any(unusual).as_py():
        return ConvertedColumn(fast)
    rest = _per_value(pc.if_else(unusual, text, None), column, target)
    return ConvertedColumn(pc.if_else(canonical, fast, rest.values), rest.refused)


def _per_value(text: pa.Array, column: Column, target: pa.DataType) -> ConvertedColumn:
    convert = converter(column.type_oid, column.type_modifier)
    values: list[Any] = []
    refused: dict[int, str] = {}
    for row, value in enumerate(text.to_pylist()):
        try:
            values.append(convert(value))
        except BadValue as exc:
            values.append(None)
            refused[row] = str(exc)
    return ConvertedColumn(pa.array(values, type=target), refused)


@dataclass
class ConvertedChunk:
    """The rows of a chunk that every column could hold, and the others with reasons."""

    rows: pa.Table
    refused: list[tuple[int, str]]  # (row index in the text chunk, dead-letter reason)


def convert_chunk(text: pa.Table, columns: Sequence[Column]) -> ConvertedChunk:
    """A chunk of text columns (named as ``columns``) in the schema ``arrow_schema`` gives.

    A refused row's reason names its first refused column, as the per-row path
    does. Raises ArrowInvalid when a non-nullable (key) column holds a null.
    """
    schema = arrow_schema(columns)
    converted = [convert_column(text.column(c.name).combine_chunks(), c) for c in columns]
    reasons: dict[int, str] = {}
    for column, result in zip(columns, converted, strict=True):
        for row, message in result.refused.items():
            reasons.setdefault(row, refused_reason(column, message))
    table = pa.Table.from_arrays([c.values for c in converted], schema=schema)
    if reasons:
        keep = pa.array([row not in reasons for row in range(text.num_rows)])
        table = table.filter(keep)
    for spec in schema:
        nulls = table.column(spec.name).null_count
        if not spec.nullable and nulls:
            raise pa.ArrowInvalid(
                f"column {spec.name!r} is not nullable but {nulls} rows have null"
            )
    return ConvertedChunk(table, sorted(reasons.items()))


class ArrowBatch(TableBatch):
    """A snapshot chunk already converted: ``upsert_table`` is its Arrow table."""

    def __init__(self, table: str, key: tuple[str, ...], rows: pa.Table) -> None:
        super().__init__(table, key, rows.schema)
        self.rows = rows
        self.changes = rows.num_rows

    def upsert_table(self) -> pa.Table:
        return self.rows


def has_duplicate_keys(rows: pa.Table, key: Sequence[str]) -> bool:
    """Whether two rows share a key (possible only with a declared non-unique key)."""
    return rows.select(list(key)).group_by(list(key)).aggregate([]).num_rows < rows.num_rows


# -- reading ---------------------------------------------------------------------------


def csv_records(
    blocks: Iterable[bytes | bytearray | memoryview], chunk_bytes: int
) -> Iterator[bytes]:
    """The CSV of ``blocks`` cut into chunks of whole records, each about ``chunk_bytes``.

    A newline ends a record only outside quotes, that is after an even number
    of quote characters (a quote inside a value is written twice).
    """
    pending = bytearray()
    for block in blocks:
        pending += block
        if len(pending) >= chunk_bytes:
            end = _whole_records(pending)
            if end:
                yield bytes(pending[:end])
                del pending[:end]
    if pending:
        yield bytes(pending)


def _whole_records(data: bytearray) -> int:
    """The length of the longest prefix of ``data`` made of whole records (0: none)."""
    end, quotes_before = len(data), data.count(b'"')
    while (newline := data.rfind(b"\n", 0, end)) >= 0:
        quotes_before -= data.count(b'"', newline, end)
        if quotes_before % 2 == 0:
            return newline + 1
        end = newline
    return 0


def read_text_chunks(chunks: Iterable[bytes], names: Sequence[str]) -> Iterator[pa.Table]:
    """Chunks of PostgreSQL CSV (whole records, no header) as tables of string columns;
    NULL (unquoted empty) is null, ``""`` is the empty string."""
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    for chunk in chunks:
        try:
            text = _read_csv(chunk, names, parse_options, convert_options, block_size=None)
        except pa.ArrowInvalid:
            # pyarrow's 1 MiB blocks (parsed in parallel) fail on a record longer than
            # a block; the whole chunk as one block holds a record of any size.
            text = _read_csv(chunk, names, parse_options, convert_options, len(chunk) + 1)
        yield text


def _read_csv(chunk: bytes, names: Sequence[str], parse_options: pa_csv.ParseOptions,
              convert_options: pa_csv.ConvertOptions, block_size: int | None) -> pa.Table:  # fmt: skip
    """One chunk parsed; a chunk PostgreSQL's CSV cannot be is a SnapshotReadError (ours)."""
    read_options = pa_csv.ReadOptions(column_names=list(names))
    if block_size is not None:
        read_options.block_size = block_size
    try:
        return pa_csv.read_csv(pa.py_buffer(chunk), read_options=read_options,
                               parse_options=parse_options, convert_options=convert_options)  # fmt: skip
    except pa.ArrowInvalid as exc:
        if block_size is None:
            raise
        raise SnapshotReadError(
            f"Reading the snapshot's CSV from PostgreSQL failed ({len(chunk):,} bytes): {exc}",
            hint="This is a bug in lakehouse, not a problem with your data: please report it "
            "with this message.",
        ) from exc


def raw_rows(text: pa.Table, rows: Sequence[int]) -> list[dict[str, str | None]]:
    """The text values of these rows, by column name (a dead letter's payload)."""
    return text.take(pa.array(rows, pa.int64())).to_pylist()


def snapshot_batches(text_chunks: Iterator[pa.Table], columns: Sequence[Column], table: str,
                     key: tuple[str, ...],
                     dead: Callable[[dict[str, str | None], str], DeadLetter],
                     ) -> Iterator[TableBatch]:  # fmt: skip
    """Each text chunk as a batch of converted rows, its refused rows as dead letters."""
    for text in text_chunks:
        chunk = convert_chunk(text, columns)
        refused_rows = raw_rows(text, [row for row, _ in chunk.refused])
        letters = [
            dead(raw, reason) for raw, (_, reason) in zip(refused_rows, chunk.refused, strict=True)
        ]
        if has_duplicate_keys(chunk.rows, key):
            # A declared key that is not unique: the last row of a key wins, as per row.
            batch = TableBatch(table, key, chunk.rows.schema)
            for row in chunk.rows.to_pylist():
                batch.upsert(row)
        else:
            batch = ArrowBatch(table, key, chunk.rows)
        batch.dead_letters = letters
        yield batch
