"""`make bench`: start-up, ingest and DuckDB figures for the core stack.

Every figure is compared with a baseline measured in the same run on the same
machine: raw pyiceberg appends of the same Arrow table, and DuckDB reading the
same Parquet files directly. Results go to bench/results/core.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from bench import faults as faults_bench
from bench import memory as memory_bench
from bench import ml as ml_bench
from bench import plugin as bench_plugin
from bench import startup as startup_bench
from bench import upsert as upsert_bench
from bench.duckdb_iceberg import bench_queries
from bench.engines import engines_bench
from bench.engines import throughput_alone as engines_throughput_alone
from lakehouse import Lakehouse, load_settings
from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env, tree_memory_mb
from sample_data import generate

RESULTS = Path(__file__).parent / "results"
REPEATS = 5
CORE = ["s3", "catalog"]
CLI_UP = [sys.executable, "-m", "lakehouse.cli", "up", "--no-sample", "--services", "s3,catalog"]
QUERIES = {
    "events_by_type": "SELECT event_type, count(*) AS n FROM web.clickstream GROUP BY 1 ORDER BY 2 DESC",
    "daily_revenue": "SELECT order_date, sum(total_amount) AS revenue, count(*) AS orders "
    "FROM retail.orders WHERE status <> 'cancelled' GROUP BY 1 ORDER BY 1",
    "top_products": "SELECT p.category, p.name, sum(i.line_amount) AS revenue FROM retail.order_items i "
    "JOIN retail.products p ON p.product_id = i.product_id GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10",
    "funnel_by_device": "SELECT device, event_type, count(DISTINCT session_id) AS sessions "
    "FROM web.clickstream GROUP BY 1, 2 ORDER BY 1, 3 DESC",
    "repeat_customers": "SELECT c.country, count(*) AS customers, avg(o.n) AS avg_orders FROM "
    "(SELECT customer_id, count(*) AS n FROM retail.orders GROUP BY 1 HAVING count(*) > 1) o "
    "JOIN retail.customers c ON c.customer_id = o.customer_id GROUP BY 1 ORDER BY 2 DESC",
}


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_of(action: Callable[[], Any], repeats: int = REPEATS) -> float:
    return statistics.median(timed(action) for _ in range(repeats))


class MemorySampler(threading.Thread):
    """Peak resident memory of the stack's process trees, sampled every 100 ms."""

    def __init__(self, runtime: LocalRuntime) -> None:
        super().__init__(daemon=True)
        self.runtime, self.peak_mb, self.running = runtime, 0.0, True

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak_mb

    def run(self) -> None:
        while self.running:
            pids = [self.runtime.pid(name) for name in self.runtime.recorded()]
            total = sum(tree_memory_mb(pid) or 0.0 for pid in pids if pid)
            self.peak_mb = max(self.peak_mb, total)
            time.sleep(0.1)


def bench_startup(settings: Settings) -> dict[str, float]:
    """Warm start-up (artifacts cached, data present) of S3 + catalog to healthy."""
    runtime = LocalRuntime(settings)
    runtime.up(CORE)  # first start: fetches artifacts if needed, not measured
    library, cli = [], []
    for _ in range(3):
        runtime.down()
        library.append(timed(lambda: runtime.up(CORE)))
        runtime.down()
        cli.append(timed(lambda: subprocess.run(CLI_UP, check=True, capture_output=True)))
    return {
        "warm_startup_s": statistics.median(library),
        "warm_startup_cli_s": statistics.median(cli),
    }


def bench_ingest(lake: Lakehouse) -> dict[str, float]:
    """lakehouse ingest of the 1M-row clickstream vs a raw pyiceberg create + append."""
    clickstream = generate(scale=1.0)["web.clickstream"]
    mb = clickstream.nbytes / 2**20
    lake.catalog.create_namespace_if_not_exists("bench")

    def ours() -> None:
        lake.catalog.purge_table("bench.ours") if lake.catalog.table_exists("bench.ours") else None
        lake.ingest(clickstream, "bench.ours")

    def raw() -> None:
        lake.catalog.purge_table("bench.raw") if lake.catalog.table_exists("bench.raw") else None
        lake.catalog.create_table("bench.raw", schema=clickstream.schema).append(clickstream)

    ours_s, raw_s = median_of(ours, 3), median_of(raw, 3)
    return {
        "rows": clickstream.num_rows,
        "arrow_mb": round(mb, 1),
        "ingest_s": ours_s,
        "ingest_rows_per_s": clickstream.num_rows / ours_s,
        "ingest_mb_per_s": mb / ours_s,
        "raw_pyiceberg_s": raw_s,
        "raw_pyiceberg_rows_per_s": clickstream.num_rows / raw_s,
        "ingest_vs_raw_throughput": raw_s / ours_s,
    }


def main() -> None:
    console = Console()
    if sys.argv[1:] == ["sync"]:  # `python -m bench sync`: only the Zero-ETL figures
        run_sync_only(console)
        return
    if sys.argv[1:] == ["snapshot"]:  # `python -m bench snapshot`: only the sync's snapshot
        run_sync_only(console, snapshot_only=True)
        return
    if sys.argv[1:] == ["lag"]:  # `python -m bench lag`: Iceberg lag per sync write mode
        from bench.sync import run_lag_only

        run_lag_only(console)
        return
    if sys.argv[1:2] == ["lag-profile"]:  # `python -m bench lag-profile [SECONDS]`: pass phases
        from bench import lag_profile

        seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
        lag_profile.print_table(console, lag_profile.run_alone(console, seconds))
        return
    if sys.argv[1:] == ["memory"]:  # `python -m bench memory`: RSS and log growth under sync
        memory_bench.print_table(console, memory_bench.run_alone(console))
        return
    if sys.argv[1:2] == ["soak"]:  # `python -m bench soak [MINUTES]`: long load with faults
        from bench import soak as soak_bench

        minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
        soak_bench.print_table(console, soak_bench.run_alone(console, minutes))
        return
    if sys.argv[1:2] == ["lake-disk"]:  # `python -m bench lake-disk [PASSES]`: disk plateau
        from bench import lake_disk

        passes = int(sys.argv[2]) if len(sys.argv) > 2 else 200
        lake_disk.print_table(console, lake_disk.run_alone(console, passes))
        return
    if sys.argv[1:] == ["faults"]:  # `python -m bench faults`: kill -9 during writes
        faults_bench.print_table(console, faults_bench.run_alone())
        return
    if sys.argv[1:] == ["ml"]:  # `python -m bench ml`: training, scoring, endpoint, metrics
        ml_bench.print_table(console, ml_bench.run_alone())
        return
    if sys.argv[1:2] == ["console"]:  # `python -m bench console [TABLES [SNAPSHOTS]]`: pages
        from bench import console as console_bench

        sizes = [int(arg) for arg in sys.argv[2:4]]
        console_bench.print_table(console, console_bench.run_alone(*sizes))
        return
    if sys.argv[1:2] == ["governance"]:  # `python -m bench governance [trino] [spark]`
        from bench import governance as governance_bench

        engines = ("duckdb", *[e for e in ("trino", "spark") if e in sys.argv[2:]])
        governance_bench.print_table(console, governance_bench.run_alone(engines))
        return
    if sys.argv[1:] == ["catalog-tokens"]:  # `python -m bench catalog-tokens`: principal tokens
        from bench import catalog_tokens

        console.print_json(data=catalog_tokens.run_alone())
        return
    if sys.argv[1:2] == ["maintenance"]:  # `python -m bench maintenance [APPENDS]`: optimize
        from bench import maintenance as maintenance_bench

        appends = int(sys.argv[2]) if len(sys.argv) > 2 else maintenance_bench.APPENDS
        maintenance_bench.print_table(console, maintenance_bench.run_alone(appends))
        return
    if sys.argv[1:] == ["athena"]:  # `python -m bench athena`: the Athena API against Trino
        from bench import athena as athena_bench

        athena_bench.print_table(console, athena_bench.run_alone())
        return
    if sys.argv[1:2] == ["crawl"]:  # `python -m bench crawl [FILES [PARQUET_MB]]`: the crawler
        from bench import crawl as crawl_bench

        sizes = [int(arg) for arg in sys.argv[2:4]]
        crawl_bench.print_table(console, crawl_bench.run_alone(*sizes))
        return
    if sys.argv[1:] == ["upsert"]:  # `python -m bench upsert`: only the upsert figures
        upsert_bench.print_table(console, upsert_bench.run_alone())
        return
    if sys.argv[1:] == ["results"]:  # `python -m bench results`: lineitem rows/s per engine
        console.print_json(json.dumps(engines_throughput_alone()))
        return
    if sys.argv[1:] == ["startup"]:  # `python -m bench startup`: CLI start-up, DuckDB queries
        cli_startup, queries = startup_bench.run_alone(QUERIES)
        print_startup_table(console, cli_startup)
        print_duckdb_table(console, queries)
        return
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            with console.status("start-up"):
                startup = bench_startup(settings)
            sampler = MemorySampler(runtime)
            sampler.start()
            with Lakehouse(settings) as lake:
                from lakehouse.sample import load_sample

                with console.status("loading sample (scale 1)"):
                    load_sample(lake, scale=1.0)
                with console.status("ingest"):
                    ingest = bench_ingest(lake)
                with console.status("queries"):
                    queries = bench_queries(lake, QUERIES)
            with console.status("CLI start-up"):
                cli_startup = startup_bench.startup_bench(Path(home))
            startup_bench.write_results(cli_startup)
            with console.status("pytest plugin"):
                plugin = {
                    **bench_plugin.lake_fixture_overhead(settings),
                    **bench_plugin.session_startup(settings),
                }
            core_peak = sampler.stop()
            with console.status("Trino and Spark: start-up, query suite at scale 1 and 10"):
                runtime.up(["trino", "spark"])
                sampler = MemorySampler(runtime)
                sampler.start()
                engines = engines_bench(settings, sampler)
                sampler.stop()
            runtime.down(["trino"])  # idle, but the upsert bench has two cores to share
            with console.status("upsert at scale, and Spark MERGE INTO of the same rows"):
                upsert = upsert_bench.upsert_bench(settings)
            upsert_bench.write_results(upsert)
            # Two cores: the engines would compete with the sync for CPU.
            runtime.down(["trino", "spark"])
            sync = run_sync(console, runtime, settings, Path(home))
        finally:
            runtime.down()
    (RESULTS / "engines.json").write_text(json.dumps(engines, indent=2))
    result = {
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "startup": startup,
        "ingest": ingest,
        "duckdb_queries": queries,
        "peak_memory_mb": {"core_stack": core_peak},
        "pytest_plugin": plugin,
        "targets": {"warm_startup_s": 3.0, "ingest_vs_raw_throughput": 0.8, "duckdb_ratio": 1.5},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "core.json").write_text(json.dumps(result, indent=2))
    print_table(console, result)
    print_startup_table(console, cli_startup)
    print_engines_table(console, engines)
    upsert_bench.print_table(console, upsert)
    print_sync_table(console, sync)
    # Its own stack, after the main one is down: the README's memory figures.
    memory_bench.print_table(console, memory_bench.run_alone(console))
    # kill -9 during writes, on a stack of its own: bench/results/faults.json.
    faults_bench.print_table(console, faults_bench.run_alone())
    # Machine learning at scale 1, on a stack of its own: bench/results/ml.json.
    ml_bench.print_table(console, ml_bench.run_alone())


def run_sync(
    console: Console, runtime: LocalRuntime, settings: Settings, home: Path,
    snapshot_only: bool = False,
) -> dict[str, Any]:  # fmt: skip
    from bench.sync import sync_bench

    with console.status("Zero-ETL: snapshot, lag at 100 and 1,000 changes/s, throughput"):
        runtime.up(["s3", "catalog", "postgres", "opensearch"])
        sync = sync_bench(settings, home, snapshot_only)
    RESULTS.mkdir(exist_ok=True)
    name = "sync_snapshot.json" if snapshot_only else "sync.json"
    (RESULTS / name).write_text(json.dumps(sync, indent=2))
    return sync


def run_sync_only(console: Console, snapshot_only: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            sync = run_sync(console, runtime, settings, Path(home), snapshot_only)
        finally:
            runtime.down()
    print_sync_table(console, sync)


def print_sync_table(console: Console, sync: dict[str, Any]) -> None:
    snap = sync["snapshot"]
    table = Table("figure", "measured", "baseline / target", title="Zero-ETL sync")
    table.add_row("initial snapshot, scale-1 shop -> Iceberg", f"{snap['iceberg_rows_per_s']:,.0f} rows/s",
                  f"raw pyiceberg append {snap['raw_pyiceberg_rows_per_s']:,.0f} rows/s "
                  f"({snap['iceberg_vs_raw']:.2f}x; target 0.5x)")  # fmt: skip
    table.add_row(
        "initial snapshot -> OpenSearch", f"{snap['opensearch_rows_per_s']:,.0f} rows/s", ""
    )
    for lag in sync.get("lag", []):
        for target in ("iceberg", "opensearch"):
            table.add_row(
                f"lag to {target} at {lag['rate']:,.0f} changes/s ({lag['probes']} probes)",
                f"p50 {lag[target + '_p50_s']:.2f} s, p95 {lag[target + '_p95_s']:.2f} s",
                "target p50 1 s, p95 2 s at 1,000/s" if target == "iceberg" else "",
            )
    tp = sync.get("throughput")
    if tp is None:  # `python -m bench snapshot`
        console.print(table)
        return
    table.add_row("sustained throughput -> Iceberg", f"{tp['applied_per_s']:,.0f} changes/s",
                  f"simulator wrote {tp['written_per_s']:,.0f} changes/s")  # fmt: skip
    console.print(table)


def print_engines_table(console: Console, engines: dict[str, Any]) -> None:
    table = Table(
        "figure", "duckdb", "trino", "spark", "parquet duckdb", title="query suite (median of 5)"
    )
    table.add_row("warm start-up", "-", f"{engines['trino_warm_startup_s']:.1f} s (target 20 s)",
                  f"{engines['spark_warm_startup_s']:.1f} s", "-")  # fmt: skip
    for scale in (1, 10):
        suite = engines[f"scale_{scale}"]
        for name, q in suite["per_query_s"].items():
            table.add_row(
                f"s{scale} {name}",
                *(f"{q[k] * 1000:.0f} ms" for k in ("duckdb", "trino", "spark", "parquet_duckdb")),
            )
        ratio = suite["geomean_ratio_to_parquet_duckdb"]
        table.add_row(
            f"s{scale} geomean ratio to parquet",
            *(f"{ratio[e]:.2f}x" for e in ("duckdb", "trino", "spark")),
            "1.00x",
        )
    table.add_row(
        "peak memory, full stack",
        f"{engines['peak_memory_full_stack_mb']:.0f} MiB (target 4096)",
        "",
        "",
        "",
    )
    console.print(table)


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("figure", "value", "baseline / target", title="lakehouse core bench")
    s, i = result["startup"], result["ingest"]
    table.add_row(
        "warm start-up S3+catalog (library)", f"{s['warm_startup_s']:.2f} s", "target <= 3 s"
    )
    table.add_row("warm start-up (CLI incl. Python start)", f"{s['warm_startup_cli_s']:.2f} s", "")
    table.add_row(
        "ingest 1M clickstream",
        f"{i['ingest_rows_per_s']:,.0f} rows/s, {i['ingest_mb_per_s']:.0f} MB/s",
        f"raw pyiceberg {i['raw_pyiceberg_rows_per_s']:,.0f} rows/s",
    )
    table.add_row(
        "ingest vs raw pyiceberg", f"{i['ingest_vs_raw_throughput']:.2f}x", "target >= 0.8"
    )
    add_duckdb_rows(table, result["duckdb_queries"])
    p = result["pytest_plugin"]
    table.add_row("`lake` fixture create+drop (median)", f"{p['lake_fixture_ms']:.0f} ms",
                  f"moto bucket {p['moto_bucket_ms']:.0f} ms; target <= 50 ms")  # fmt: skip
    table.add_row(
        "plugin session start, cold / reused",
        f"{p['cold_start_s']:.2f} s / {p['reuse_s'] * 1000:.0f} ms",
        "",
    )
    table.add_row("peak memory S3+catalog", f"{result['peak_memory_mb']['core_stack']:.0f} MiB", "")
    console.print(table)


def add_duckdb_rows(table: Table, queries: dict[str, dict[str, float]]) -> None:
    for name, q in queries.items():
        table.add_row(
            f"duckdb {name} (warm / cold)",
            f"{q['iceberg_s'] * 1000:.0f} / {q['cold_iceberg_s'] * 1000:.0f} ms",
            f"parquet {q['parquet_s'] * 1000:.0f} / {q['cold_parquet_s'] * 1000:.0f} ms, "
            f"ratio {q['ratio']:.2f} / {q['cold_ratio']:.2f} (target <= 1.5)",
        )


def print_duckdb_table(console: Console, queries: dict[str, dict[str, float]]) -> None:
    table = Table("figure", "iceberg", "parquet, ratio", title="DuckDB over Iceberg vs Parquet")
    add_duckdb_rows(table, queries)
    console.print(table)


def print_startup_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("command", "median (CPU)", "vs python -c pass", "vs plain duckdb", "target",
                  title=f"CLI start-up (median of {result['runs_per_command']} runs)")  # fmt: skip
    for name, figure in result["figures"].items():
        target = result["targets_s"].get(name)
        table.add_row(
            name,
            f"{figure['median_s'] * 1000:.0f} ms ({figure['median_cpu_s'] * 1000:.0f} ms)",
            f"{figure['vs_python_pass']:.1f}x",
            f"{figure['vs_plain_duckdb']:.2f}x",
            f"<= {target * 1000:.0f} ms" if target else "",
        )
    console.print(table)


if __name__ == "__main__":
    main()
