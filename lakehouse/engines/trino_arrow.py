"""Trino results as Arrow, typed from the columns Trino declares.

The ``trino`` client runs with ``legacy_primitive_types=True``, so it hands
over the values as they arrive in the protocol's JSON (decimals, dates and
timestamps as text, rows as positional lists, maps as objects) without
building a Python object per value. Each column is then built once from its
declared type signature: nested types recursively, leaves with one vectorised
Arrow cast where Arrow can parse Trino's text. The session time zone is UTC,
so zoned timestamps arrive as ``... UTC``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from trino.mapper import TimestampWithTimeZoneValueMapper, TimeValueMapper

Signature = dict[str, Any]

_SIMPLE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(),
    "integer": pa.int32(), "bigint": pa.int64(), "real": pa.float32(),
    "double": pa.float64(), "varchar": pa.string(), "char": pa.string(),
    "varbinary": pa.binary(), "json": pa.string(), "uuid": pa.string(),
    "ipaddress": pa.string(), "date": pa.date32(), "unknown": pa.int32(),
    "interval day to second": pa.month_day_nano_interval(),
    "interval year to month": pa.month_day_nano_interval(),
}  # fmt: skip
# Leaves DuckDB's JSON reader types itself; every other value comes as its text.
_DUCKDB_TYPES = {
    "boolean": "BOOLEAN", "tinyint": "TINYINT", "smallint": "SMALLINT", "integer": "INTEGER",
    "bigint": "BIGINT", "real": "FLOAT", "double": "DOUBLE",
}  # fmt: skip
_TEXT_CAST = {"varchar", "char", "uuid", "json", "ipaddress", "decimal", "date", "timestamp"}
_NESTED = {"array", "map", "row"}
_INTERVAL_DAY = re.compile(r"^(-)?(\d+) (\d+):(\d+):(\d+)(?:\.(\d+))?$")


def _arguments(signature: Signature) -> list[Any]:
    return [argument["value"] for argument in signature.get("arguments", [])]


def _precision(signature: Signature) -> int:
    arguments = _arguments(signature)
    return int(arguments[0]) if arguments else 3


def arrow_type(signature: Signature) -> pa.DataType:
    """The Arrow type of a Trino type signature (the contract's spelling)."""
    raw = signature["rawType"]
    arguments = _arguments(signature)
    if raw in _SIMPLE:
        return _SIMPLE[raw]
    if raw == "decimal":
        return pa.decimal128(int(arguments[0]), int(arguments[1]))
    if raw in ("timestamp", "timestamp with time zone"):
        unit = "us" if _precision(signature) <= 6 else "ns"
        return pa.timestamp(unit, "UTC" if raw.endswith("zone") else None)
    if raw == "time":
        return pa.time64("us") if _precision(signature) <= 6 else pa.time64("ns")
    if raw == "array":
        return pa.list_(arrow_type(arguments[0]))
    if raw == "map":
        return pa.map_(arrow_type(arguments[0]), arrow_type(arguments[1]))
    if raw == "row":
        return pa.struct([pa.field(name, arrow_type(sig)) for name, sig in _row_fields(signature)])
    return pa.string()  # time with time zone, geometry, ...: their text


def _row_fields(signature: Signature) -> list[tuple[str, Signature]]:
    """(name, signature) per field; anonymous fields are named col1, col2, ... as in Spark."""
    fields = []
    for position, value in enumerate(_arguments(signature), start=1):
        name = (value.get("fieldName") or {}).get("name") or f"col{position}"
        fields.append((name, value["typeSignature"]))
    return fields


def arrow_column(values: Sequence[Any], signature: Signature) -> pa.Array:
    """One column of raw protocol values as an Arrow array of ``arrow_type(signature)``."""
    raw = signature["rawType"]
    target = arrow_type(signature)
    if raw == "array":
        return _list_column(values, signature, target)
    if raw == "map":
        return _map_column(values, signature, target)
    if raw == "row":
        return _row_column(values, signature, target)
    return _leaf_column(values, raw, signature, target)


def _offsets_and_mask(values: Sequence[Any]) -> tuple[pa.Array, pa.Array | None]:
    offsets = [0]
    for value in values:
        offsets.append(offsets[-1] + (len(value) if value is not None else 0))
    mask = pa.array([v is None for v in values], pa.bool_())
    return pa.array(offsets, pa.int32()), mask if mask.true_count else None


def _list_column(values: Sequence[Any], signature: Signature, target: pa.DataType) -> pa.Array:
    offsets, mask = _offsets_and_mask(values)
    flat = [item for value in values if value is not None for item in value]
    items = arrow_column(flat, _arguments(signature)[0])
    return pa.ListArray.from_arrays(offsets, items, type=target, mask=mask)


def _map_column(values: Sequence[Any], signature: Signature, target: pa.DataType) -> pa.Array:
    offsets, mask = _offsets_and_mask(values)
    key_sig, item_sig = _arguments(signature)
    present = [value for value in values if value is not None]
    # JSON object keys are text; a typed key is parsed from it by the leaf cast.
    keys = _leaf_from_text([k for value in present for k in value], key_sig)
    items = arrow_column([v for value in present for v in value.values()], item_sig)
    return pa.MapArray.from_arrays(offsets, keys, items, type=target, mask=mask)


def _row_column(values: Sequence[Any], signature: Signature, target: pa.DataType) -> pa.Array:
    fields = _row_fields(signature)
    mask = pa.array([v is None for v in values], pa.bool_())
    children = []
    for position, (_, field_sig) in enumerate(fields):
        children.append(
            arrow_column([None if v is None else v[position] for v in values], field_sig)
        )
    return pa.StructArray.from_arrays(
        children, fields=list(target), mask=mask if mask.true_count else None
    )


def _leaf_from_text(values: list[Any], signature: Signature) -> pa.Array:
    """Map keys: JSON object keys are always text, whatever the key type."""
    target = arrow_type(signature)
    text = pa.array(values, pa.string())
    if pa.types.is_string(target):
        return text
    try:
        return text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return arrow_column(values, signature)


def _leaf_column(values: Sequence[Any], raw: str, signature: Signature, target: pa.DataType) -> pa.Array:  # fmt: skip
    if raw in ("decimal", "date", "timestamp"):
        return pa.array(values, pa.string()).cast(target)
    if raw == "timestamp with time zone":
        return _zoned_timestamps(values, signature, target)
    if raw in ("real", "double"):
        return _floats(values, target)
    if raw == "varbinary":
        return pa.array([None if v is None else base64.b64decode(v) for v in values], target)
    if raw.startswith("interval"):
        return pa.array([_interval(v, raw) for v in values], target)
    if raw == "time":
        mapper = TimeValueMapper(_precision(signature))
        return pa.array([mapper.map(v) for v in values], target)
    if pa.types.is_string(target):
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], target)
    return pa.array(values, target)


def _zoned_timestamps(values: Sequence[Any], signature: Signature, target: pa.DataType) -> pa.Array:  # fmt: skip
    text = pa.array(values, pa.string())
    if pc.all(pc.or_kleene(pc.ends_with(text, " UTC"), pc.is_null(text))).as_py() is not False:
        local = pc.replace_substring_regex(text, r" UTC$", "").cast(pa.timestamp(target.unit))
        return local.cast(target)
    # Another zone (e.g. AT TIME ZONE): the same instant, expressed in UTC.
    mapper = TimestampWithTimeZoneValueMapper(_precision(signature))
    instants = [None if v is None else mapper.map(v).astimezone(UTC) for v in values]  # type: ignore[union-attr]
    return pa.array(instants, target)


def _floats(values: Sequence[Any], target: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # NaN and infinities arrive as text
        return pa.array([float(v) if isinstance(v, str) else v for v in values], target)


def _interval(value: str | None, raw: str) -> tuple[int, int, int] | None:
    """Trino's interval text as (months, days, nanoseconds)."""
    if value is None:
        return None
    if raw == "interval year to month":
        sign = -1 if value.startswith("-") else 1
        years, months = value.lstrip("-").split("-")
        return (sign * (int(years) * 12 + int(months)), 0, 0)
    match = _INTERVAL_DAY.match(value)
    if match is None:
        raise ValueError(f"unexpected interval text {value!r}")
    minus, days, hours, minutes, seconds, fraction = match.groups()
    sign = -1 if minus else 1
    nanos = ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000_000
    nanos += int((fraction or "0").ljust(9, "0")[:9])
    return (0, sign * int(days), sign * nanos)


def record_batch(
    rows: Sequence[Sequence[Any]], columns: Sequence[dict[str, Any]]
) -> pa.RecordBatch:
    """Rows of raw protocol values as one batch, column by column."""
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [
        arrow_column(values, column["typeSignature"])
        for values, column in zip(by_column, columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=[column["name"] for column in columns])


def arrow_schema(columns: Sequence[dict[str, Any]]) -> pa.Schema:
    """The schema Trino declares for a result."""
    return pa.schema([(c["name"], arrow_type(c["typeSignature"])) for c in columns])


def text_columns_batch(path: Path, columns: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """A segment file (a JSON array of rows) as one batch, parsed by DuckDB's JSON reader.

    DuckDB reads each row as a list of text (strings unquoted, other values as
    their JSON text) and casts the numeric and boolean leaves itself; the rest
    is converted as ``arrow_column`` converts protocol values, so the batch
    equals ``record_batch`` of the parsed rows.
    """
    import duckdb

    select = ", ".join(
        f"json[{position}]::{_DUCKDB_TYPES.get(column['typeSignature']['rawType'], 'VARCHAR')}"
        for position, column in enumerate(columns, start=1)
    )
    with duckdb.connect() as con:
        rows = con.read_json(str(path), format="array", records="false",
                             columns={"json": "VARCHAR[]"},
                             maximum_object_size=max(path.stat().st_size, 1 << 24))  # fmt: skip
        table = rows.select(select).to_arrow_table() if columns else None
    arrays = [
        _from_text(table.column(position).combine_chunks(), column["typeSignature"])
        for position, column in enumerate(columns)
    ] if table is not None else []  # fmt: skip
    return pa.RecordBatch.from_arrays(arrays, names=[column["name"] for column in columns])


def _from_text(values: pa.Array, signature: Signature) -> pa.Array:
    raw = signature["rawType"]
    target = arrow_type(signature)
    if raw in _DUCKDB_TYPES or raw in _TEXT_CAST:
        return values.cast(target)
    text = values.to_pylist()
    if raw in _NESTED:
        return arrow_column([None if v is None else orjson.loads(v) for v in text], signature)
    return arrow_column(text, signature)
