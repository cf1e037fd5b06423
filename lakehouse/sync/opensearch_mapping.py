"""How a table's columns and values become an OpenSearch mapping and documents.

Field names: OpenSearch reads a dot in a field name as an object path (``geo``
and ``geo.city`` would be one object) and reserves names such as ``_id`` and
``_source``. So a column name is escaped into a field name that cannot be
expanded or clash: ``%`` -> ``%25``, every ``.`` -> ``%2E`` and a leading ``_``
-> ``%5F``. Names without those characters (nearly all) are unchanged;
:func:`column_name` reverses the escape. Struct field names are escaped alike.

Types (from the Arrow form of the Iceberg type):

* struct -> ``object`` with its fields' mappings;
* list<T> (any depth) -> the mapping of T (OpenSearch fields hold arrays), so
  list<struct> is an array of objects;
* map<K, V> -> an array of ``{"key": K, "value": V}`` objects (keys need not
  be text, and their order is kept);
* decimals -> ``double``, timestamps and dates -> ``date``, binary -> ``binary``
  (base64 text), at every depth.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

TEXT_WITH_KEYWORD = {
    "type": "text",
    "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
}
# The default format (strict_date_optional_time||epoch_millis): OpenSearch leaves a
# default out of the mapping it returns, so naming it would never compare equal.
DATE = {"type": "date"}
# OpenSearch's defaults of index.mapping.total_fields.limit and index.mapping.depth.limit.
DEFAULT_FIELD_LIMIT = 1000
DEFAULT_DEPTH_LIMIT = 20


def field_name(column: str) -> str:
    """The OpenSearch field name of a column (or struct field) name."""
    escaped = column.replace("%", "%25").replace(".", "%2E")
    return "%5F" + escaped[1:] if escaped.startswith("_") else escaped


def column_name(field: str) -> str:
    """The column name a :func:`field_name` came from."""
    return unquote(field)


def field_mapping(kind: pa.DataType, is_key: bool = False) -> dict[str, Any]:
    """The OpenSearch mapping of one column, from its Arrow (Iceberg) type."""
    if pa.types.is_struct(kind):
        return {"properties": {field_name(f.name): field_mapping(f.type) for f in kind}}
    if pa.types.is_map(kind):
        entry = {"key": field_mapping(kind.key_type), "value": field_mapping(kind.item_type)}
        return {"properties": entry}
    if _is_list(kind):
        return field_mapping(kind.value_type)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return {"type": "keyword"} if is_key else dict(TEXT_WITH_KEYWORD)
    return _scalar_mapping(kind)


def _scalar_mapping(kind: pa.DataType) -> dict[str, Any]:
    if pa.types.is_boolean(kind):
        return {"type": "boolean"}
    if pa.types.is_int64(kind) or pa.types.is_uint32(kind):
        return {"type": "long"}
    if pa.types.is_integer(kind):
        return {"type": "integer"}
    if pa.types.is_float32(kind):
        return {"type": "float"}
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return {"type": "double"}
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return dict(DATE)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return {"type": "binary"}
    return {"type": "keyword"}


def _is_list(kind: pa.DataType) -> bool:
    return (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def index_mapping(schema: pa.Schema, key: tuple[str, ...]) -> dict[str, Any]:
    """The whole index mapping; ``dynamic: strict`` so an unmapped field is refused
    (schema changes go through put_mapping, and conflicting ones stop the sync)."""
    properties = {field_name(f.name): field_mapping(f.type, f.name in key) for f in schema}
    return {"dynamic": "strict", "properties": properties}


def mapping_limits(properties: dict[str, Any]) -> dict[str, int]:
    """Index settings that let ``properties`` be mapped: OpenSearch refuses more than
    1,000 fields (a text column is 2, with its keyword) or objects nested deeper than
    20 ("Limit of total fields [1000] has been exceeded" stopped a 520-column table).
    The mapping is strict and derived from the schema, so the limits fit it, with room
    for as many columns again; empty when the defaults do."""
    fields, depth = _field_count(properties), _depth(properties)
    limits = {}
    if fields > DEFAULT_FIELD_LIMIT:
        limits["index.mapping.total_fields.limit"] = 2 * fields
    if depth > DEFAULT_DEPTH_LIMIT:
        limits["index.mapping.depth.limit"] = 2 * depth
    return limits


def _field_count(properties: dict[str, Any]) -> int:
    return sum(1 + len(m.get("fields", {})) + _field_count(m.get("properties", {}))
               for m in properties.values())  # fmt: skip


def _depth(properties: dict[str, Any]) -> int:
    return 1 + max((_depth(m["properties"]) for m in properties.values() if "properties" in m),
                   default=0)  # fmt: skip


def missing_properties(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` that ``current`` (the index's properties) lacks or maps
    otherwise; empty when the mapping already holds the schema."""
    return {name: mapping for name, mapping in wanted.items() if current.get(name) != mapping}


def json_value(value: Any) -> Any:
    """The JSON form OpenSearch stores for ``value`` (as ``to_pylist`` gives it, at any
    depth); ValueError when OpenSearch cannot hold it."""
    if isinstance(value, dict):
        return {field_name(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, tuple):  # pyarrow gives map entries as (key, value) pairs
        key, item = value
        return {"key": json_value(key), "value": json_value(item)}
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"OpenSearch cannot store the number {value}")
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"OpenSearch cannot store the number {value}")
        # JSON holds a double's shortest text; a decimal with more digits than that
        # text keeps goes as its exact text (_source keeps it, the double field
        # indexes it), so the stored document never holds a rounded value.
        number = float(value)
        return number if decimal.Decimal(repr(number)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def document(row: dict[str, Any]) -> dict[str, Any]:
    """The document of a row; ValueError naming the column whose value cannot be stored."""
    source = {}
    for name, value in row.items():
        try:
            source[field_name(name)] = json_value(value)
        except ValueError as exc:
            raise ValueError(f"column {name!r}: {exc}") from None
    return source


def decoded(source: dict[str, Any]) -> dict[str, Any]:
    """A stored document with column names again, values left in their JSON form."""
    return {column_name(k): _decoded_value(v) for k, v in source.items()}


def _decoded_value(value: Any) -> Any:
    if isinstance(value, dict):
        return decoded(value)
    if isinstance(value, list):
        return [_decoded_value(item) for item in value]
    return value
