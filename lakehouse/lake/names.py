"""Table and column names every engine can address.

Trino folds unquoted identifiers to lower case and cannot see a namespace or
table whose catalog name has upper-case letters; names with other characters
need different quoting in DuckDB, Trino and Spark. So ingest lower-cases
namespace and table names and refuses anything but ``[a-z0-9_]`` (starting
with a letter or ``_``), suggesting the normalised name.

Column names keep their spelling (all three engines resolve columns without
regard to case, quoted where needed), but two columns that differ only by
case are refused, and input columns are matched to the table's columns
without regard to case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa

from lakehouse.errors import IngestError

NAME = re.compile(r"[a-z_][a-z0-9_]*")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def suggested_name(part: str) -> str:
    """``part`` lower-cased with every run of other characters turned into ``_``."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", part.strip().lower()).strip("_") or "t"
    return cleaned if NAME.fullmatch(cleaned) else f"t_{cleaned}"


def normalise_table_name(name: str) -> tuple[str, str | None]:
    """('ns.table', notice) for a name ingest may create; IngestError if not addressable.

    The notice (or None) says when the name was lower-cased.
    """
    parts = name.strip().split(".")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise IngestError(
            f"'{name}' is not a table name of the form namespace.table.",
            hint="Name tables like retail.orders.",
        )
    lowered = [p.strip().lower() for p in parts]
    bad = [p for p in lowered if not NAME.fullmatch(p)]
    if bad:
        suggestion = ".".join(suggested_name(p) for p in parts)
        raise IngestError(
            f"'{name}' cannot be addressed the same way by DuckDB, Trino and Spark: "
            f"'{bad[0]}' has characters other than a-z, 0-9 and _ (or starts with a digit).",
            hint=f"Use --table {suggestion}.",
        )
    normalised = ".".join(lowered)
    notice = None
    if normalised != name:
        notice = f"table name {name} written as {normalised} (engines fold names to lower case)"
    return normalised, notice


def shown(value: object, limit: int = 60) -> str:
    """``value`` quoted for a message: control characters escaped (``\\x1b``), never sent
    to the terminal raw, and cut to about ``limit`` characters."""
    text = repr(str(value))[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_columns(names: Iterable[str], where: str) -> None:
    """IngestError if a column name is empty, holds control characters, or two names are
    the same or differ only by case."""
    seen: dict[str, str] = {}
    for column in list(names):
        if not column.strip():
            raise IngestError(
                f"{where} has a column without a name.",
                hint="Give every column a header.",
            )
        if CONTROL.search(column):
            raise IngestError(
                f"{where} has a column named '{shown(column)}', with control characters in it.",
                hint="Name columns with printable characters (is the file text?); "
                "the table was not changed.",
            )
        other = seen.get(column.lower())
        seen[column.lower()] = column
        if other == column:
            raise IngestError(
                f"{where} has columns '{shown(column)}' and '{shown(column)}': two columns "
                "with one name.",
                hint="Give every column its own name; the table was not changed.",
            )
        if other is not None:
            raise IngestError(
                f"{where} has columns '{shown(other)}' and '{shown(column)}': engines resolve "
                "column names without regard to case, so these two could not be told apart.",
                hint="Rename one of them in the input.",
            )


def align_to_table(data: pa.Table, table_columns: Iterable[str]) -> pa.Table:
    """``data`` with each column renamed to the table's spelling of it (case-insensitive)."""
    spelling = {name.lower(): name for name in table_columns}
    return data.rename_columns([spelling.get(c.lower(), c) for c in data.column_names])


def match_columns(wanted: Iterable[str], columns: Iterable[str]) -> dict[str, str]:
    """{wanted name: input column} for the wanted names found, without regard to case."""
    by_lower = {c.lower(): c for c in columns}
    return {name: by_lower[name.lower()] for name in wanted if name.lower() in by_lower}
