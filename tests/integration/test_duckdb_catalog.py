"""DuckDB over the REST catalog: one table load per table per query, never stale.

The catalog keeps metadata.json files by location and DuckDB binds a SELECT
once; neither may serve an old snapshot after another client commits.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.engines.duckdb import DuckDBEngine

pytestmark = pytest.mark.integration


def catalog_loads(engine: DuckDBEngine, query: str) -> list[str]:
    """The REST table loads DuckDB makes while running ``query``."""
    con = engine.connection
    con.execute("CALL enable_logging('HTTP')")
    try:
        engine.sql(query)
    finally:
        con.execute("CALL disable_logging()")
    urls = con.execute(
        "SELECT request.url FROM duckdb_logs_parsed('HTTP') WHERE request.type = 'GET'"
    ).fetchall()
    con.execute("CALL truncate_duckdb_logs()")
    return [url for (url,) in urls if "/tables/" in url]


def test_each_table_is_loaded_once_per_query(lake: Lakehouse, namespace: str) -> None:
    lake.ingest(pa.table({"k": [1, 2, 3]}), f"{namespace}.a")
    lake.ingest(pa.table({"k": [2, 3, 4]}), f"{namespace}.b")
    engine = DuckDBEngine(lake.settings)
    try:
        join = f"SELECT count(*) FROM {namespace}.a JOIN {namespace}.b USING (k)"
        loads = catalog_loads(engine, join)
        assert sorted(url.rsplit("/", 1)[-1] for url in loads) == ["a", "b"]
        assert engine.sql(join).column(0).to_pylist() == [2]
    finally:
        engine.close()


def test_single_bind_gives_the_relation_path_answer(lake: Lakehouse, namespace: str) -> None:
    data = pa.table({"k": [1, 2, None], "s": ["x", None, "ü"], "d": [1.5, None, -0.0]})
    lake.ingest(data, f"{namespace}.t")
    engine = DuckDBEngine(lake.settings)
    try:
        query = f"SELECT k, s, d, k * 2 AS twice FROM {namespace}.t ORDER BY k NULLS LAST"
        through_engine = engine.sql(query)
        through_relation = engine.connection.sql(query).to_arrow_table()
        assert through_engine.equals(through_relation)
        # Statements that are not one SELECT still take the relation path.
        assert engine.sql(f"CREATE TEMP TABLE copy AS SELECT * FROM {namespace}.t").num_rows == 0
        assert engine.sql("SELECT count(*) FROM copy").column(0).to_pylist() == [3]
    finally:
        engine.close()


def test_a_commit_by_another_client_is_seen_by_the_next_query(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.fresh"
    lake.ingest(pa.table({"x": [1]}), name)
    engine = DuckDBEngine(lake.settings)
    try:
        count = f"SELECT count(*) FROM {name}"
        for expected in (1, 2, 3):  # each round: read (warming every cache), then commit
            assert engine.sql(count).column(0).to_pylist() == [expected]
            lake.table(name).append(pa.table({"x": [expected + 1]}))
        assert engine.sql(count).column(0).to_pylist() == [4]
    finally:
        engine.close()
