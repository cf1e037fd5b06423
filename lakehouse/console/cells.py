"""Values as a results grid shows them: exact, never silently cut.

One formatter for every grid in the console (the Catalog's row sample and the
Query page's results) and the same text `lakehouse query` prints in its table
output (``engines.output.sql_literal``): ``NULL``, ``true``, ``[1, 2]``,
``{'a': 'x'}``, ``MAP {'k': 1}``, binary as ``\\x00\\xff`` (DuckDB's blob
text), timestamps as ``2024-01-01 00:00:00``. CSV and JSON downloads keep
their own conventions (nested values as JSON, binary as base64), which those
formats need.

A long text is shortened for the grid with a visible marker that says how
long it really is; everything else is shown in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

MAX_CHARS = 200


def shortened(text: str, max_chars: int = MAX_CHARS) -> str:
    """``text``, or its first ``max_chars`` characters and "… (N characters)"."""
    if len(text) > max_chars:
        return f"{text[:max_chars]}… ({len(text):,} characters)"
    return text


def grid(table: pa.Table, max_chars: int = MAX_CHARS) -> tuple[list[str], list[list[str]]]:
    """(column names, rows of cells) of an Arrow table, as `lakehouse query` prints them.

    Rows are built by position, so columns of the same name keep their values.
    """
    from lakehouse.engines.output import table_rows

    rows = [[shortened(cell, max_chars) for cell in row] for row in table_rows(table)]
    return list(table.column_names), rows
