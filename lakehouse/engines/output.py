"""Query results as text: CSV, JSON and a table for people.

One text per value whatever the engine, because results already follow one
Arrow contract:

- timestamps: ISO 8601 with a space, ``2024-01-01 00:00:00.000001`` (micro-
  seconds only when not zero), ``+00:00`` when the type has a zone (always UTC);
- binary: base64 in CSV and JSON, ``\\x00\\xff`` (DuckDB's blob text) in tables;
- intervals: ``<months> months <days> days <seconds> seconds`` parts, only those not zero;
- CSV: nested values (lists, structs, maps) are JSON text;
- JSON: UTF-8 as is; one result is an array of row objects; the results of a
  script (``query -f``) are one array of ``to_json_result`` objects, so the
  whole output is one JSON document; numbers are numbers, a decimal is written with exactly its
  digits; NaN and infinities, which JSON lacks, are the strings ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"``; a map is an object (keys as text);
- tables: SQL literals (``NULL``, ``true``, ``[1, 2]``, ``{'a': 'x'}``,
  ``MAP {'k': 1}``), and values wrap instead of being cut.

Results may repeat a column name (``SELECT o.id, c.id ...``): rows are built by
position, never as dicts keyed by name, so no value is lost. CSV and tables keep
the names as they are; JSON objects need distinct keys, so ``json_keys`` renames
the repeats ``a``, ``a_1``, ``a_2`` ... (a suffix no other column uses).
"""

from __future__ import annotations

import base64
import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv


def text_of(value: Any) -> str:
    """A scalar's text in CSV and JSON (timestamps, intervals, binary, decimals)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, timedelta):
        return _interval_text(0, 0, value // timedelta(microseconds=1) * 1000)
    if isinstance(value, pa.MonthDayNano):
        return _interval_text(value.months, value.days, value.nanoseconds)
    return str(value)


def _interval_text(months: int, days: int, nanos: int) -> str:
    parts = [f"{months} months" if months else "", f"{days} days" if days else ""]
    if nanos or not (months or days):
        parts.append(f"{Decimal(nanos) / 1_000_000_000:f} seconds")
    return " ".join(p for p in parts if p)


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_struct(t) or pa.types.is_map(t)


def to_csv(table: pa.Table) -> str:
    """CSV with a header; every type written, nested values as JSON text."""
    columns = []
    for column in table.columns:
        t = column.type
        if _is_nested(t):
            values = [None if v is None else json_value(v, t) for v in column.to_pylist()]
            column = pa.chunked_array([pa.array(values, pa.string())])
        elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
                  or pa.types.is_boolean(t) or pa.types.is_null(t)):  # fmt: skip
            values = [None if v is None else text_of(v) for v in column.to_pylist()]
            column = pa.chunked_array([pa.array(values, pa.string())])
        columns.append(column)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.table(columns, names=table.column_names), sink)
    return sink.getvalue().to_pybytes().decode()


def json_value(value: Any, t: pa.DataType) -> str:
    """One value as a JSON token (numbers as numbers, exact decimals)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json.dumps(value) if math.isfinite(value) else json.dumps(str(value).replace("inf", "Infinity").replace("nan", "NaN"))  # fmt: skip
    if isinstance(value, int | Decimal):
        return text_of(value)
    if pa.types.is_map(t):
        pairs = ", ".join(f"{json.dumps(text_of(k), ensure_ascii=False)}: {json_value(v, t.item_type)}" for k, v in value)  # fmt: skip
        return "{" + pairs + "}"
    if pa.types.is_list(t):
        return "[" + ", ".join(json_value(v, t.value_type) for v in value) + "]"
    if pa.types.is_struct(t):
        fields = ", ".join(f"{json.dumps(f.name, ensure_ascii=False)}: {json_value(value[f.name], f.type)}" for f in t)  # fmt: skip
        return "{" + fields + "}"
    return json.dumps(text_of(value), ensure_ascii=False)


def json_keys(names: list[str]) -> list[str]:
    """``names`` made distinct for JSON objects: a repeat gets the first free ``_<n>`` suffix.

    The first occurrence keeps its name; later ones become ``a_1``, ``a_2``, ...,
    skipping a suffixed name another column already has. Deterministic.
    """
    taken = set(names)  # a suffix never takes another column's own name
    used: set[str] = set()
    keys = []
    for name in names:
        key, suffix = name, 0
        while key in used or (suffix and key in taken):
            suffix += 1
            key = f"{name}_{suffix}"
        used.add(key)
        keys.append(key)
    return keys


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Every row as a tuple of Python values, by position (names may repeat)."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def _json_objects(table: pa.Table) -> list[str]:
    """Every row as one JSON object text, keys from ``json_keys``."""
    types = [column.type for column in table.columns]
    keys = [json.dumps(key, ensure_ascii=False) for key in json_keys(table.column_names)]
    return [
        "{" + ", ".join(f"{key}: {json_value(value, t)}"
                        for key, value, t in zip(keys, row, types, strict=True)) + "}"
        for row in _rows(table)
    ]  # fmt: skip


def to_json(table: pa.Table) -> str:
    """A JSON array with one object per row, one row per line; keys from ``json_keys``."""
    lines = ["  " + row for row in _json_objects(table)]
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"


def to_json_result(statement: str, table: pa.Table) -> str:
    """One result of a script as a JSON object, no trailing newline.

    ``{"statement": text, "columns": [keys], "rows": [objects]}``: ``columns``
    are the row objects' keys (``json_keys``) in result order, present even when
    there are no rows; rows are as in ``to_json``, one per line.
    """
    head = (f"{{\"statement\": {json.dumps(statement, ensure_ascii=False)}, \"columns\": "
            f"{json.dumps(json_keys(table.column_names), ensure_ascii=False)}, \"rows\": ")  # fmt: skip
    rows = ["    " + row for row in _json_objects(table)]
    return head + ("[\n" + ",\n".join(rows) + "\n  ]}" if rows else "[]}")


def sql_literal(value: Any, t: pa.DataType, nested: bool = False) -> str:
    """A value as a table shows it: SQL literal style; strings unquoted at the top."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'" if nested else value
    if isinstance(value, bytes):
        return "".join(f"\\x{b:02x}" for b in value)
    if pa.types.is_map(t):
        pairs = ", ".join(f"{sql_literal(k, t.key_type, True)}: {sql_literal(v, t.item_type, True)}" for k, v in value)  # fmt: skip
        return "MAP {" + pairs + "}"
    if pa.types.is_list(t):
        return "[" + ", ".join(sql_literal(v, t.value_type, True) for v in value) + "]"
    if pa.types.is_struct(t):
        fields = ", ".join(f"'{f.name}': {sql_literal(value[f.name], f.type, True)}" for f in t)
        return "{" + fields + "}"
    text = text_of(value)
    return f"'{text}'" if nested and isinstance(value, date | time | timedelta | pa.MonthDayNano) else text  # fmt: skip


def table_rows(table: pa.Table) -> list[list[str]]:
    """Every cell of ``table`` as ``sql_literal`` text, row by row, by position."""
    types = [column.type for column in table.columns]
    return [[sql_literal(value, t) for value, t in zip(row, types, strict=True)] for row in _rows(table)]  # fmt: skip
