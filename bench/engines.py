"""Figures for Trino and Spark: warm start-up, the query suite per engine, memory.

Latency is the median of 5 runs per query; each engine is compared with DuckDB
over the same Parquet data files read directly, measured in the same run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from lakehouse import Lakehouse
from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.sample import load_sample
from sample_data.queries import QUERIES, query_for

ENGINES = ("duckdb", "trino", "spark")
SAMPLE_TABLES = (
    "web.clickstream",
    "retail.order_items",
    "retail.orders",
    "retail.products",
    "retail.customers",
)


def median_s(action: Callable[[], Any], repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def warm_startup(settings: Settings, service: str, rounds: int = 2) -> float:
    """Seconds from `up` to healthy for an already-installed service."""
    runtime = LocalRuntime(settings)
    times = []
    for _ in range(rounds):
        runtime.down([service])
        started = time.perf_counter()
        runtime.up([service])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parquet_sql(lake: Lakehouse, sql: str) -> str:
    """``sql`` reading each sample table's current data files with read_parquet."""
    for name in SAMPLE_TABLES:
        files = [task.file.file_path for task in lake.table(name).scan().plan_files()]
        sql = sql.replace(name, "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])")
    return sql


def query_suite(lake: Lakehouse) -> dict[str, Any]:
    """Median latency per query and engine, and each engine's ratio to raw-Parquet DuckDB."""
    con = lake.duckdb()
    per_query: dict[str, dict[str, float]] = {}
    for name in QUERIES:
        raw = parquet_sql(lake, query_for(name, "duckdb"))
        figures = {"parquet_duckdb": median_s(lambda raw=raw: con.sql(raw).fetchall())}
        for engine in ENGINES:
            sql = query_for(name, engine)
            lake.sql(sql, engine=engine)  # warm-up: plans, JIT, caches
            figures[engine] = median_s(lambda sql=sql, engine=engine: lake.sql(sql, engine=engine))
        per_query[name] = figures
    ratios = {
        engine: math.exp(
            statistics.fmean(math.log(q[engine] / q["parquet_duckdb"]) for q in per_query.values())
        )
        for engine in ENGINES
    }
    return {"per_query_s": per_query, "geomean_ratio_to_parquet_duckdb": ratios}


LINEITEM = "tpch.lineitem"


def result_throughput(lake: Lakehouse, repeats: int = 3) -> dict[str, Any]:
    """Rows/s of ``SELECT * FROM tpch.lineitem`` (TPC-H SF 0.1, 600k rows) per engine.

    The table is written once into the lake by Trino from its tpch catalog;
    each engine's rows/s is also given as a ratio to DuckDB's in this run.
    """
    if LINEITEM not in lake.tables():
        lake.sql("CREATE SCHEMA IF NOT EXISTS tpch", engine="trino", native=True)
        lake.sql(f'CREATE TABLE {LINEITEM} AS SELECT * FROM tpch."sf0.1".lineitem',
                 engine="trino", native=True)  # fmt: skip
    sql = f"SELECT * FROM {LINEITEM}"
    rows = lake.sql(f"SELECT count(*) AS n FROM {LINEITEM}").column("n")[0].as_py()
    seconds = {}
    for engine in ENGINES:
        lake.sql(sql, engine=engine)  # warm-up
        seconds[engine] = median_s(lambda engine=engine: lake.sql(sql, engine=engine), repeats)
    rows_per_s = {engine: rows / s for engine, s in seconds.items()}
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows_per_s,
        "ratio_to_duckdb": {e: rows_per_s[e] / rows_per_s["duckdb"] for e in ENGINES},
    }


def engines_bench(settings: Settings, sampler: Any) -> dict[str, Any]:
    """All issue-3 figures, on a stack already running every service."""
    result: dict[str, Any] = {
        "trino_warm_startup_s": warm_startup(settings, "trino"),
        "spark_warm_startup_s": warm_startup(settings, "spark"),
    }
    for scale in (1, 10):
        with Lakehouse(settings) as lake:
            load_sample(lake, scale=float(scale), force=True)
            result[f"scale_{scale}"] = query_suite(lake)
    with Lakehouse(settings) as lake:
        result["lineitem_result_throughput"] = result_throughput(lake)
    result["peak_memory_full_stack_mb"] = sampler.peak_mb
    return result
