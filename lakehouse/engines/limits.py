"""How large a result an engine may hand back to Python."""

from __future__ import annotations

from lakehouse.errors import QueryError


def check_result_size(engine: str, query: str, size_bytes: int, limit_bytes: int) -> None:
    """Raise ``QueryError`` when a result has grown past ``limit_bytes`` (Arrow bytes)."""
    if limit_bytes and size_bytes > limit_bytes:
        raise QueryError(
            engine, query,
            f"the result is larger than the limit of {limit_bytes // 2**20} MiB",
            hint="Add a LIMIT or aggregate further, write it to a table with "
            "CREATE TABLE ns.result AS SELECT ..., or raise LAKEHOUSE_RESULT_MAX_BYTES.",
        )  # fmt: skip
