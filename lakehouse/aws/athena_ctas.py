"""Athena's CREATE TABLE AS SELECT (CTAS) as Trino's, into an Iceberg table of the lake.

Athena's ``CREATE TABLE t WITH (external_location = 's3://...', format = 'PARQUET',
partitioned_by = ARRAY['c']) AS SELECT ...`` has Trino's shape with Hive's property
names. lakehouse creates an Iceberg table (the lake's one table format) with
``location``, ``format`` and ``partitioning``, whatever ``table_type`` says, and
writes Athena's data manifest (``<id>-manifest.csv``, the table's data files, one
S3 URI a line), which awswrangler's default ``ctas_approach`` reads. Properties an
Iceberg table cannot honour (bucketing, text formats, delimiters) fail the query
with a reason rather than being dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEAD = re.compile(
    r'^CREATE\s+TABLE\s+(?P<exists>IF\s+NOT\s+EXISTS\s+)?(?P<name>(?:"(?:[^"]|"")+"|[\w$]+)'
    r'(?:\s*\.\s*(?:"(?:[^"]|"")+"|[\w$]+)){0,2})\s+WITH\s*\(',
    re.IGNORECASE,
)
_FORMATS = ("PARQUET", "ORC", "AVRO")
_DROPPED = ("table_type", "is_external", "write_compression")


class CtasError(Exception):
    """A CTAS property lakehouse cannot honour; the message is the FAILED reason."""


@dataclass(frozen=True)
class Ctas:
    """Trino's statement and the new table's name as written (for its ``$files``)."""

    sql: str
    table: str


def translate_ctas(text: str) -> Ctas | None:
    """Athena's CTAS ``text`` as Trino's (None when ``text`` is no ``CREATE TABLE ...
    WITH (...) AS``). Raises CtasError for properties an Iceberg table cannot take."""
    head = _HEAD.match(text)
    if head is None:
        return None
    inside, end = _parenthesized(text, head.end())
    rest = text[end:]
    if not re.match(r"\s*AS\b", rest, re.IGNORECASE):
        return None
    options = [_option(item) for item in _split(inside)]
    wanted = [option for option in options if option is not None]
    exists = "IF NOT EXISTS " if head["exists"] else ""
    sql = f"CREATE TABLE {exists}{head['name']} WITH ({', '.join(wanted)}){rest}"
    return Ctas(sql, head["name"])


def _parenthesized(text: str, start: int) -> tuple[str, int]:
    """The text inside the parenthesis opened just before ``start``, and the index after it."""
    depth, quoted = 1, False
    for index in range(start, len(text)):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return text[start:index], index + 1
    raise CtasError("The WITH ( of CREATE TABLE AS has no closing parenthesis.")


def _split(inside: str) -> list[str]:
    items, current, depth, quoted = [], "", 0, False
    for char in inside:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += char
    return [item for item in [*items, current.strip()] if item]


def _option(item: str) -> str | None:
    """One Athena property as Trino's Iceberg property (None: it has no effect here)."""
    key, separator, value = item.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not separator:
        raise CtasError(f"'{item}' is not a property (name = value).")
    if key in _DROPPED:
        return None
    if key in ("external_location", "location"):
        return f"location = {value}"
    if key == "format":
        name = value.strip("'").upper()
        if name not in _FORMATS:
            raise CtasError(f"format '{name}' is not available for the lake's Iceberg tables "
                            f"({', '.join(_FORMATS)}).")  # fmt: skip
        return f"format = '{name}'"
    if key in ("partitioned_by", "partitioning"):
        return f"partitioning = {value}"
    raise CtasError(f"The table property '{key}' is not supported by lakehouse's Athena (its CTAS "
                    "creates Iceberg tables: external_location, format and partitioned_by).")  # fmt: skip
