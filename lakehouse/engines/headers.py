"""Headers for unnamed projections, exactly as DuckDB names them.

DuckDB heads an unnamed expression with the text its own parser prints for
it (``count(*)`` -> ``count_star()``, ``1+1`` -> ``(1 + 1)``). Trino says
``_col0`` and Spark ``count(1)``; the translation step aliases every unnamed
projection with DuckDB's header so all engines agree. DuckDB's parser is asked
directly (``json_serialize_sql`` then ``json_deserialize_sql``, in memory, no
catalog), so the headers cannot drift from DuckDB's own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache

import duckdb
from sqlglot import exp

_PREFIX = "SELECT "
_lock = threading.Lock()


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def duckdb_headers(projections: Sequence[exp.Expr]) -> list[str]:
    """One header per projection, as DuckDB would head it in a result."""
    if not projections:
        return []
    texts = [_PREFIX + p.sql(dialect="duckdb") for p in projections]
    calls = ", ".join(
        f"json_deserialize_sql(json_serialize_sql({_literal(text)}))" for text in texts
    )
    try:
        with _lock:
            row = _parser().execute(f"SELECT {calls}").fetchone()
    except duckdb.Error:
        row = None
    if row is None:
        return [text.removeprefix(_PREFIX) for text in texts]
    return [str(value).removeprefix(_PREFIX) for value in row]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
