"""The result contract: one Arrow schema for the same query on every engine.

Every engine's result passes through ``conform``, which keeps values and
changes only how types are spelled:

- strings, binaries and lists use the 32-bit-offset types (``string``,
  ``binary``, ``list<item: ...>``); list items are always named ``item``;
- a UUID is a ``string`` (``8-4-4-4-12`` lower-case hex);
- a timestamp with a zone is ``timestamp[us, tz=UTC]`` (the same instants), one
  without is ``timestamp[us]``; nanosecond timestamps stay nanoseconds;
- an interval is ``month_day_nano_interval`` (DuckDB's type); Spark's
  day-time intervals become whole nanoseconds (0 months, 0 days);
- decimals keep precision and scale; structs keep their field names;
- a value with no type (``NULL``, the items of ``[]``, the keys and values of
  ``MAP()``) is ``int32``, as DuckDB types it (Arrow's null type cannot be a
  map key, and pyspark cannot declare it as a list item);
- top-level fields are nullable.
"""

from __future__ import annotations

import pyarrow as pa

UTC = "UTC"


def contract_type(t: pa.DataType) -> pa.DataType:
    """The type ``t`` is spelled as in a conforming result."""
    if isinstance(t, pa.ExtensionType):
        return pa.string() if t.extension_name == "arrow.uuid" else contract_type(t.storage_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        unit = "ns" if t.unit == "ns" else "us"
        return pa.timestamp(unit, UTC if t.tz else None)
    if pa.types.is_duration(t):
        return pa.month_day_nano_interval()
    if pa.types.is_null(t):
        return pa.int32()
    if pa.types.is_map(t):
        return pa.map_(contract_type(t.key_type), contract_type(t.item_type))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(contract_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, contract_type(f.type)) for f in t])
    return t


def conform(table: pa.Table) -> pa.Table:
    """``table`` with every column spelled by the contract; values unchanged.

    Top-level fields are nullable, whatever the engine inferred (Spark marks
    ``count(*)`` not null, DuckDB and Trino do not).
    """
    columns = []
    changed = any(not field.nullable for field in table.schema)
    for column in table.columns:
        target = contract_type(column.type)
        if str(target) != str(column.type):  # str: list item names count too
            changed = True
            column = _convert(column, target)
        columns.append(column)
    if not changed:
        return table
    schema = pa.schema(
        [pa.field(name, c.type) for name, c in zip(table.column_names, columns, strict=True)]
    )
    return pa.Table.from_arrays(columns, schema=schema)


def _convert(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    source = column.type
    if isinstance(source, pa.ExtensionType) and source.extension_name == "arrow.uuid":
        return pa.chunked_array([_uuid_text(chunk.storage) for chunk in column.chunks], target)
    if pa.types.is_duration(source):
        return pa.chunked_array([_duration_interval(chunk) for chunk in column.chunks], target)
    return column.cast(target)


def _uuid_text(storage: pa.Array) -> pa.Array:
    """16-byte UUIDs as their canonical text."""
    text = [None if raw is None else _format_uuid(raw) for raw in storage.to_pylist()]
    return pa.array(text, pa.string())


def _format_uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _duration_interval(chunk: pa.Array) -> pa.Array:
    """A duration as an interval of 0 months, 0 days and its length in nanoseconds."""
    import pyarrow.compute as pc  # here, not at the top: ~35 ms on every CLI query

    nanos = pc.multiply(chunk.cast(pa.int64()), _NANOS_PER[chunk.type.unit])
    values = [None if n is None else (0, 0, n) for n in nanos.to_pylist()]
    return pa.array(values, pa.month_day_nano_interval())


_NANOS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
