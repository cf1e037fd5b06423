"""Values as a results grid shows them: exact, never silently cut.

A long text is shortened for the grid with a visible marker that says how
long it really is; everything else is shown in full.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

MAX_CHARS = 200


def format_cell(value: Any, max_chars: int = MAX_CHARS) -> str:
    """``value`` as text: NULL for None, ISO 8601 for times, JSON for nested values,
    hex for bytes; text over ``max_chars`` ends with "… (N characters)"."""
    text = _text(value)
    if len(text) > max_chars:
        return f"{text[:max_chars]}… ({len(text):,} characters)"
    return text


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def _json_default(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def grid(table: pa.Table, max_chars: int = MAX_CHARS) -> tuple[list[str], list[list[str]]]:
    """(column names, rows of formatted cells) of an Arrow table."""
    # Column by column: to_pylist() of rows would merge columns of the same name.
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[format_cell(value, max_chars) for value in row] for row in zip(*columns, strict=True)]
    return list(table.column_names), rows
