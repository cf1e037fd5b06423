"""SQL text shared by the engines: one canonical text, the smallest rewrites."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from lakehouse.errors import QueryError


def pin_snapshots(sql: str, snapshots: dict[str, int] | None, dialect: str) -> str:
    """``sql`` with each 'ns.table' in ``snapshots`` read FOR VERSION AS OF its snapshot."""
    if not snapshots:
        return sql
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise QueryError(dialect, sql, f"cannot parse the query: {exc}") from exc
    for table in tree.find_all(exp.Table):
        snapshot = snapshots.get(f"{table.db}.{table.name}")
        if snapshot is not None and not table.catalog:
            table.set(
                "version",
                exp.Version(this="VERSION", kind="AS OF", expression=exp.Literal.number(snapshot)),
            )
    return tree.sql(dialect=dialect)
