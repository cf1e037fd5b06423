"""A data file deleted outside lakehouse, told as such whatever reads it.

A table's metadata still lists the file, so every read of it fails with the
storage's own words (DuckDB: ``HTTP 404 ... NoSuchKey``; pyarrow:
``FileNotFoundError``; Trino/Spark: ``FileNotFoundException``/``NoSuchKey``).
:func:`missing_file` recognises those words and finds the file's address;
:func:`missing_file_reason` and :data:`MISSING_FILE_HINT` name the table and
file and say what can be done.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from lakehouse.errors import QueryError

# Words the engines and pyarrow use for a file that is not there.
_MISSING_WORDS = re.compile(
    r"NoSuchKey|HTTP 404|\b404\b.*not found|not found.*\b404\b|FileNotFound|"
    r"No such file or directory|Path does not exist",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"""(?:s3a?|https?)://[^\s"'`<>]+""")
_FILE_SUFFIXES = (".parquet", ".avro", ".orc")

MISSING_FILE_HINT = (
    "The file was deleted outside lakehouse (the table's metadata still lists it). "
    "Read an older snapshot that does not use it (`lakehouse history TABLE`, then "
    "`--as-of SNAPSHOT`), or restore the file from a backup (`lakehouse restore`)."
)


def missing_file(message: str) -> str | None:
    """The address of the data file ``message`` says is missing, or None.

    An ``http://host:port/bucket/key`` address (DuckDB's path-style S3 request)
    is given as ``s3://bucket/key``.
    """
    if not _MISSING_WORDS.search(message):
        return None
    for found in _ADDRESS.findall(message):
        address = found.rstrip(".,;:)]}")
        parts = urlsplit(address)
        if not parts.path.lower().endswith(_FILE_SUFFIXES):
            continue
        if parts.scheme in ("http", "https"):
            return f"s3://{unquote(parts.path.lstrip('/'))}"
        return address
    return None


def table_of_file(address: str) -> str | None:
    """``ns.table`` from a data file's address ``s3://bucket/.../ns/table/data/f.parquet``."""
    parts = urlsplit(address).path.strip("/").split("/")
    if "data" not in parts:
        return None
    at = len(parts) - 1 - parts[::-1].index("data")
    if at < 2:
        return None
    return f"{parts[at - 2]}.{parts[at - 1]}"


def missing_file_reason(address: str, table: str | None = None) -> str:
    """``data file ADDRESS of table NS.T is missing from S3``."""
    table = table or table_of_file(address)
    of_table = f" of table {table}" if table else ""
    return f"data file {address}{of_table} is missing from S3"


def missing_file_error(engine: str, query: str, message: str) -> QueryError | None:
    """The QueryError to raise when ``message`` (an engine's error) is a missing data file."""
    from lakehouse.errors import QueryError

    address = missing_file(message)
    if address is None:
        return None
    return QueryError(engine, query, missing_file_reason(address), hint=MISSING_FILE_HINT)
