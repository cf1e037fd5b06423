"""DuckDB over Iceberg against DuckDB over the same Parquet files, query by query.

Both sides run through the same engine call (``DuckDBEngine.sql``), so the ratio
is what the Iceberg layer costs: the catalog round trip per table (the current
metadata location must be asked every time: nothing is served stale), manifest
reading and planning.

- ``warm``: the same connection, after one run (DuckDB's file cache is filled);
  median of ``REPEATS`` runs.
- ``cold``: the first run on a fresh connection (connection set-up not counted);
  median of ``COLD_REPEATS`` connections.

The Iceberg and Parquet runs alternate, so a burst of load from elsewhere on the
machine falls on both sides instead of skewing one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.engines import SAMPLE_TABLES
from lakehouse import Lakehouse
from lakehouse.engines.duckdb import DuckDBEngine

REPEATS = 15
COLD_REPEATS = 5


def parquet_sql(lake: Lakehouse, sql: str) -> str:
    """``sql`` with each sample table replaced by read_parquet over its current data files."""
    for name in SAMPLE_TABLES:
        files = [task.file.file_path for task in lake.table(name).scan().plan_files()]
        sql = sql.replace(name, "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])")
    return sql


def _seconds(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def warm_seconds(engine: DuckDBEngine, texts: tuple[str, str]) -> tuple[float, float]:
    """Median seconds of each text on one warm connection, runs alternating."""
    times: tuple[list[float], list[float]] = ([], [])
    for text in texts:
        engine.sql(text)
    for _ in range(REPEATS):
        for side, text in enumerate(texts):
            times[side].append(_seconds(partial(engine.sql, text)))
    return statistics.median(times[0]), statistics.median(times[1])


def cold_seconds(lake: Lakehouse, texts: tuple[str, str]) -> tuple[float, float]:
    """Median seconds of each text as the first query of a fresh connection, alternating."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(COLD_REPEATS):
        for side, text in enumerate(texts):
            engine = DuckDBEngine(lake.settings)
            try:
                times[side].append(_seconds(partial(engine.sql, text)))
            finally:
                engine.close()
    return statistics.median(times[0]), statistics.median(times[1])


def same_answer(engine: DuckDBEngine, sql: str, raw_sql: str) -> bool:
    def rows(text: str) -> list[str]:
        return sorted(map(str, engine.sql(text).to_pylist()))

    return rows(sql) == rows(raw_sql)


def bench_queries(lake: Lakehouse, queries: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per query: Iceberg and Parquet seconds, warm and cold, and their ratios."""
    engine = DuckDBEngine(lake.settings)
    figures = {}
    try:
        for name, sql in queries.items():
            raw_sql = parquet_sql(lake, sql)
            assert same_answer(engine, sql, raw_sql), f"{name}: Iceberg and Parquet answers differ"
            warm = warm_seconds(engine, (sql, raw_sql))
            cold = cold_seconds(lake, (sql, raw_sql))
            figures[name] = {
                "iceberg_s": warm[0],
                "parquet_s": warm[1],
                "ratio": warm[0] / warm[1],
                "cold_iceberg_s": cold[0],
                "cold_parquet_s": cold[1],
                "cold_ratio": cold[0] / cold[1],
            }
    finally:
        engine.close()
    return figures
