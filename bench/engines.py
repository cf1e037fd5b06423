"""Figures for Trino and Spark: warm start-up, the query suite per engine, memory.

Latency is the median of 5 runs per query; each engine is compared with DuckDB
over the same Parquet data files read directly, measured in the same run.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lakehouse import Lakehouse, load_settings
from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from lakehouse.sample import load_sample
from sample_data.queries import QUERIES, query_for

ENGINES = ("duckdb", "trino", "spark")
RESULTS = Path(__file__).parent / "results"
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
TRINO_TARGET_RATIO = 0.5  # issue 10: Trino rows/s at least half of DuckDB's


def result_throughput(lake: Lakehouse, repeats: int = 3) -> dict[str, Any]:
    """Rows/s of ``SELECT * FROM tpch.lineitem`` (TPC-H SF 0.1, 600k rows) per engine.

    The table is written once into the lake by Trino from its tpch catalog;
    each engine's rows/s is also given as a ratio to DuckDB's in this run, the
    one-minute load average is recorded before and after (two cores: other
    work skews every figure), and for Trino the server's own elapsed time of
    the last run, so the rest is the client's (download and conversion).
    """
    if LINEITEM not in lake.tables():
        lake.sql("CREATE SCHEMA IF NOT EXISTS tpch", engine="trino", native=True)
        lake.sql(f'CREATE TABLE {LINEITEM} AS SELECT * FROM tpch."sf0.1".lineitem',
                 engine="trino", native=True)  # fmt: skip
    sql = f"SELECT * FROM {LINEITEM}"
    rows = lake.sql(f"SELECT count(*) AS n FROM {LINEITEM}").column("n")[0].as_py()
    load_before = os.getloadavg()[0]
    seconds = {}
    for engine in ENGINES:
        lake.sql(sql, engine=engine)  # warm-up
        seconds[engine] = median_s(lambda engine=engine: lake.sql(sql, engine=engine), repeats)
    rows_per_s = {engine: rows / s for engine, s in seconds.items()}
    ratios = {e: rows_per_s[e] / rows_per_s["duckdb"] for e in ENGINES}
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows_per_s,
        "ratio_to_duckdb": ratios,
        "trino_target_ratio": TRINO_TARGET_RATIO,
        "trino_meets_target": ratios["trino"] >= TRINO_TARGET_RATIO,
        "trino_server_elapsed_s": trino_server_elapsed(lake, LINEITEM),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }


def trino_server_elapsed(lake: Lakehouse, table: str) -> float:
    """Seconds from creation to finish of the last Trino run of the whole ``table`` (server side,
    which includes waiting for the client to take the result)."""
    answer = lake.sql(
        "SELECT to_milliseconds(\"end\" - created) AS ms FROM system.runtime.queries "
        f"WHERE query LIKE 'SELECT %FROM {table}' "
        "AND state = 'FINISHED' ORDER BY created DESC LIMIT 1",
        engine="trino", native=True,
    )  # fmt: skip
    return answer.column("ms")[0].as_py() / 1000 if answer.num_rows else math.nan


def throughput_alone() -> dict[str, Any]:
    """`python -m bench results`: the lineitem throughput on a fresh stack in a temporary home."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "trino", "spark"])
            with Lakehouse(settings) as lake:
                result = result_throughput(lake)
        finally:
            runtime.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "result_throughput.json").write_text(json.dumps(result, indent=2))
    return result


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
