"""Upsert at scale: 100k rows (two-column key, 10% new) into a 1M-row table.

Compared in the same run with a plain append of the same 100k rows into the same
1M-row table, and with Spark's ``MERGE INTO`` of the same data (through the
lake's Spark Connect server, when it is up). Each lakehouse operation runs in a
fresh subprocess, so its peak memory is that process's own: the peak resident
set during the operation (sampled every 5 ms) minus the resident set just before it. The updated 90%
are spread over the whole table (the worst case for copy-on-write: every data
file holds a touched key). Every run is checked against the expected content.

Results: bench/results/upsert.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

RESULTS = Path(__file__).parent / "results"

ROWS = 1_000_000
UPSERTS = 100_000
NEW_SHARE = 0.10
REPEATS = 3
NAMESPACE = "bench_upsert"
KEY = ["region", "id"]
TARGETS = {"upsert_vs_append_time": 5.0, "upsert_vs_spark_merge_time": 1.0}

# Runs in a fresh interpreter: read the input, import what the write uses, then time
# one ingest while a thread samples the resident set (ru_maxrss would also count
# the imports and the input).
CHILD = """
import json, sys, threading, time
import psutil, pyarrow.parquet as pq
import pyiceberg.io.pyarrow, lakehouse.lake.ingest, lakehouse.lake.rewrite
from lakehouse import Lakehouse, load_settings
rows = pq.read_table(sys.argv[1])
process, peak, running = psutil.Process(), [0], [True]
def sample():
    while running[0]:
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.005)
with Lakehouse(load_settings()) as lake:
    lake.catalog.load_table(sys.argv[2])  # connect and warm the catalog client
    before = process.memory_info().rss
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    lake.ingest(rows, sys.argv[2], mode=sys.argv[3], key=sys.argv[4].split(",") if sys.argv[4] else None)
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
print(json.dumps({"seconds": seconds, "peak_mb": max(0, peak[0] - before) / 2**20}))
"""


def make_data(seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """The 1M-row table and the 100k upserts (90% changed rows spread over it, 10% new)."""
    rng = np.random.default_rng(seed)
    index = np.arange(ROWS)
    base = pa.table({
        "region": pa.array([f"region-{i:02d}" for i in range(50)]).take(pa.array(index % 50)),
        "id": pa.array(index // 50, pa.int64()),
        "amount": pa.array(np.round(rng.random(ROWS) * 1000, 2)),
        "status": pa.array(["open", "paid", "shipped", "returned"]).take(pa.array(index % 4)),
        "note": pa.array([f"order {i}" for i in range(ROWS)]),
    })  # fmt: skip
    changed_count = int(UPSERTS * (1 - NEW_SHARE))
    changed = base.take(pa.array(np.sort(rng.choice(ROWS, changed_count, replace=False))))
    changed = changed.set_column(2, "amount", pa.array(rng.random(changed_count) * -1))
    new_count = UPSERTS - changed_count
    new_index = np.arange(ROWS, ROWS + new_count)
    new = pa.table({
        "region": pa.array(["region-new"] * new_count),
        "id": pa.array(new_index, pa.int64()),
        "amount": pa.array(rng.random(new_count)),
        "status": pa.array(["open"] * new_count),
        "note": pa.array([f"order {i}" for i in new_index]),
    })  # fmt: skip
    return base, pa.concat_tables([changed, new]).combine_chunks()


def expected_sum(base: pa.Table, upserts: pa.Table) -> tuple[int, float]:
    """Row count and sum(amount) after the upsert, computed independently in DuckDB."""
    import duckdb

    con = duckdb.connect()
    con.register("b", base)
    con.register("u", upserts)
    row = con.sql(
        "SELECT count(*), round(sum(amount), 4) FROM "
        "(SELECT * FROM b ANTI JOIN u USING (region, id) UNION ALL SELECT * FROM u)"
    ).fetchall()[0]
    return int(row[0]), float(row[1])


def table_sum(lake: Lakehouse, name: str) -> tuple[int, float]:
    row = lake.sql(f"SELECT count(*) AS n, round(sum(amount), 4) AS s FROM {name}").to_pylist()[0]
    return int(row["n"]), float(row["s"])


def fresh_target(lake: Lakehouse, base: pa.Table, name: str) -> None:
    if lake.catalog.table_exists(name):
        lake.catalog.purge_table(name)
    lake.ingest(base, name)


def run_child(upserts_file: Path, name: str, mode: str) -> dict[str, float]:
    key = ",".join(KEY) if mode == "upsert" else ""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(upserts_file), name, mode, key],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def spark_merge(lake: Lakehouse, base: pa.Table, name: str, source: str) -> float:
    fresh_target(lake, base, name)
    spark = lake.spark()
    started = time.perf_counter()
    spark.sql(
        f"MERGE INTO lake.{name} t USING lake.{source} s "
        "ON t.region = s.region AND t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    ).collect()
    return time.perf_counter() - started


def spark_up(settings: Settings) -> str | None:
    """None when Spark is up, else why it is skipped."""
    rows = {s.name: s for s in LocalRuntime(settings).status()}
    spark = rows.get("spark")
    if spark is None or not spark.healthy:
        return f"Spark is not running in this stack ({spark.detail if spark else 'not configured'})"
    return None


def median_of(runs: list[dict[str, float]], field: str) -> float:
    return statistics.median(run[field] for run in runs)


def upsert_bench(settings: Settings) -> dict[str, Any]:
    """Time and peak memory of upsert vs append (and Spark MERGE); checked results."""
    base, upserts = make_data()
    expected = expected_sum(base, upserts)
    target, source = f"{NAMESPACE}.target", f"{NAMESPACE}.source"
    runs: dict[str, list[dict[str, float]]] = {"upsert": [], "append": []}
    with Lakehouse(settings) as lake, tempfile.TemporaryDirectory() as scratch:
        lake.catalog.create_namespace_if_not_exists(NAMESPACE)
        upserts_file = Path(scratch) / "upserts.parquet"
        pq.write_table(upserts, upserts_file)
        for _ in range(REPEATS):
            for mode in ("append", "upsert"):
                fresh_target(lake, base, target)
                runs[mode].append(run_child(upserts_file, target, mode))
                if mode == "upsert":
                    assert table_sum(lake, target) == expected, "the upsert's result is wrong"
                    assert len(lake.history(target)) == 2, "one upsert must be one snapshot"
        result = _figures(runs)
        skipped = spark_up(settings)
        if skipped is None:
            fresh_target(lake, upserts, source)
            merge = [spark_merge(lake, base, target, source) for _ in range(REPEATS)]
            assert table_sum(lake, target) == expected, "Spark's MERGE result differs"
            result["spark_merge_s"] = statistics.median(merge)
            result["upsert_vs_spark_merge_time"] = result["upsert_s"] / result["spark_merge_s"]
        else:
            result["spark_skipped"] = skipped
        for name in (target, source):
            if lake.catalog.table_exists(name):
                lake.catalog.purge_table(name)
    return result


def _figures(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    upsert_s, append_s = median_of(runs["upsert"], "seconds"), median_of(runs["append"], "seconds")
    return {
        "table_rows": ROWS,
        "upsert_rows": UPSERTS,
        "new_share": NEW_SHARE,
        "repeats": REPEATS,
        "upsert_s": upsert_s,
        "append_s": append_s,
        "upsert_vs_append_time": upsert_s / append_s,
        "upsert_peak_mb": median_of(runs["upsert"], "peak_mb"),
        "append_peak_mb": median_of(runs["append"], "peak_mb"),
        "runs": runs,
        "targets": TARGETS,
    }


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "upsert.json").write_text(json.dumps(result, indent=2))


def run_alone() -> dict[str, Any]:
    """`python -m bench upsert`: S3, catalog and Spark in a temporary home, then the bench."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "spark"])
            result = upsert_bench(settings)
        finally:
            runtime.down()
    write_results(result)
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("figure", "measured", "baseline / target", title="upsert at scale")
    rows, upserts = f"{result['table_rows']:,}", f"{result['upsert_rows']:,}"
    table.add_row(f"upsert {upserts} rows into {rows} (2-column key, 10% new)",
                  f"{result['upsert_s']:.2f} s, peak +{result['upsert_peak_mb']:.0f} MiB",
                  f"append of the same rows {result['append_s']:.2f} s, "
                  f"peak +{result['append_peak_mb']:.0f} MiB")  # fmt: skip
    table.add_row("upsert vs append", f"{result['upsert_vs_append_time']:.1f}x", "target <= 5x")
    if "spark_merge_s" in result:
        table.add_row("Spark MERGE INTO, same data", f"{result['spark_merge_s']:.2f} s",
                      f"upsert / MERGE {result['upsert_vs_spark_merge_time']:.2f} (target < 1)")  # fmt: skip
    else:
        table.add_row("Spark MERGE INTO", "skipped", result["spark_skipped"])
    console.print(table)
