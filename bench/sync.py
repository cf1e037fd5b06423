"""Zero-ETL figures: initial snapshot speed, end-to-end lag and sustained throughput.

* Snapshot: the scale-1 shop into Iceberg and into OpenSearch, against a
  baseline in the same run: the same tables read with COPY and appended with
  raw pyiceberg (no conversion checks, no keys, no checkpoint).
* Lag: a real `lakehouse sync run --follow` process follows the shop while
  the simulator writes at 100 and 1,000 changes/s. A probe thread commits a
  marker update and times until a reader sees it: a pyiceberg scan of the
  table's current snapshot, and an OpenSearch search (so the index refresh is
  included). Each check costs a few tens of milliseconds, which is counted.
* Throughput: the simulator flat out; changes applied per second until the
  follower has caught up.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from lakehouse.catalog import open_catalog
from lakehouse.config import Settings
from lakehouse.ingest import normalize
from lakehouse.simulate import ShopSimulator
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.runner import IntegrationRunner
from lakehouse.testing.postgres import create_database, drop_database
from sample_data.shop import SHOP_TABLES, load_shop

PROBE_CUSTOMER = 1
LAG_SECONDS = 30.0
THROUGHPUT_SECONDS = 20.0


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _catch_up(settings: Settings, integration: Integration) -> tuple[float, int]:
    runner = IntegrationRunner(settings, integration)
    try:
        started = time.perf_counter()
        result = runner.catch_up()
        return time.perf_counter() - started, result.snapshot_rows + result.changes
    finally:
        runner.close()


def _raw_pyiceberg_seconds(settings: Settings, dsn: str) -> tuple[float, int]:
    """Baseline: COPY each table as CSV into Arrow and append it with pyiceberg."""
    import io

    import pyarrow.csv as pa_csv

    catalog = open_catalog(settings)
    catalog.create_namespace_if_not_exists("bench_raw")
    started, rows = time.perf_counter(), 0
    with psycopg.connect(dsn) as conn:
        for table in SHOP_TABLES:
            buffer = io.BytesIO()
            with conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT csv, HEADER)") as copy:
                for chunk in copy:
                    buffer.write(chunk)
            buffer.seek(0)
            data = normalize(pa_csv.read_csv(buffer))  # Iceberg needs us timestamps
            name = f"bench_raw.{table}"
            if catalog.table_exists(name):
                catalog.purge_table(name)
            catalog.create_table(name, schema=data.schema).append(data)
            rows += data.num_rows
    return time.perf_counter() - started, rows


def snapshot_bench(settings: Settings, dsn: str, database: str) -> dict[str, Any]:
    lake = Integration(name="bench-lake", source="postgres", target="iceberg",
                       tables=SHOP_TABLES, database=database, namespace="bench_shop")  # fmt: skip
    search = Integration(name="bench-search", source="postgres", target="opensearch",
                         tables=SHOP_TABLES, database=database, index_prefix="bench-")  # fmt: skip
    store = IntegrationStore(settings)
    for integration in (lake, search):
        store.create(integration, replace=True)
    lake_s, lake_rows = _catch_up(settings, lake)
    search_s, search_rows = _catch_up(settings, search)
    raw_s, raw_rows = _raw_pyiceberg_seconds(settings, dsn)
    return {
        "rows": lake_rows,
        "iceberg_rows_per_s": lake_rows / lake_s,
        "opensearch_rows_per_s": search_rows / search_s,
        "raw_pyiceberg_rows_per_s": raw_rows / raw_s,
        "iceberg_vs_raw": (lake_rows / lake_s) / (raw_rows / raw_s),
    }


class Probe(threading.Thread):
    """Marker updates, one at a time, each timed until visible in both targets."""

    def __init__(self, settings: Settings, dsn: str, lake: Integration, index: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.dsn, self.index = settings, dsn, index
        self.catalog = open_catalog(settings)
        self.table = lake.iceberg_target("customers", settings)
        self.iceberg_lags: list[float] = []
        self.opensearch_lags: list[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        from opensearchpy import OpenSearch

        client = OpenSearch(hosts=[self.settings.opensearch_uri], timeout=30)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            number = 0
            while not self.stop_event.is_set():
                number += 1
                marker = f"probe-{number}"
                conn.execute("UPDATE customers SET city = %s WHERE customer_id = %s",
                             (marker, PROBE_CUSTOMER))  # fmt: skip
                committed = time.perf_counter()
                self._wait(committed, marker, client)
                self.stop_event.wait(0.2)
        client.close()

    def _in_lake(self, marker: str) -> bool:
        """What a reader sees: the probe row in the table's current snapshot."""
        table = self.catalog.load_table(self.table)
        row = table.scan(row_filter=f"customer_id == {PROBE_CUSTOMER}", selected_fields=("city",))
        return marker in row.to_arrow().column("city").to_pylist()

    def _wait(self, committed: float, marker: str, client: Any) -> None:
        in_lake = in_search = False
        deadline = committed + 60
        query = {"query": {"term": {"city.keyword": marker}}}
        while not (in_lake and in_search) and time.perf_counter() < deadline:
            if not in_lake and self._in_lake(marker):
                in_lake = True
                self.iceberg_lags.append(time.perf_counter() - committed)
            if not in_search and client.count(index=self.index, body=query)["count"]:
                in_search = True
                self.opensearch_lags.append(time.perf_counter() - committed)
            time.sleep(0.1)  # each check costs CPU the follower shares


def follower(integrations: list[Integration], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "sync", "run", "--follow",
             *[i.name for i in integrations]],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )  # fmt: skip


def lag_bench(settings: Settings, dsn: str, lake: Integration, search: Integration,
              rate: float) -> dict[str, Any]:  # fmt: skip
    stop = threading.Event()
    traffic = threading.Thread(target=lambda: ShopSimulator(dsn, rate, seed=5).run(stop=stop))
    traffic.start()
    time.sleep(2)  # let the follower reach a steady state first
    probe = Probe(settings, dsn, lake, search.index_name("customers", settings))
    probe.start()
    time.sleep(LAG_SECONDS)
    probe.stop_event.set()
    probe.join(timeout=90)
    stop.set()
    traffic.join()
    return {
        "rate": rate,
        "probes": len(probe.iceberg_lags),
        "iceberg_p50_s": statistics.median(probe.iceberg_lags),
        "iceberg_p95_s": percentile(probe.iceberg_lags, 0.95),
        "opensearch_p50_s": statistics.median(probe.opensearch_lags),
        "opensearch_p95_s": percentile(probe.opensearch_lags, 0.95),
    }


def throughput_bench(settings: Settings, dsn: str, lake: Integration) -> dict[str, Any]:
    """Writes as fast as the simulator can for a while, then times the catch-up."""
    _catch_up(settings, lake)
    stats = ShopSimulator(dsn, rate=50_000, seed=9).run(duration=THROUGHPUT_SECONDS)
    seconds, changes = _catch_up(settings, lake)
    return {
        "written_changes": stats.changes,
        "written_per_s": stats.achieved_rate,
        "applied_changes": changes,
        "applied_per_s": changes / seconds,
    }


def sync_bench(settings: Settings, log_dir: Path) -> dict[str, Any]:
    database = "bench_shop"
    drop_database(settings, database)
    create_database(settings, database)
    dsn = settings.postgres_dsn(database)
    with psycopg.connect(dsn) as conn:
        load_shop(conn, scale=1.0)
    result: dict[str, Any] = {"snapshot": snapshot_bench(settings, dsn, database)}
    store = IntegrationStore(settings)
    lake, search = store.get("bench-lake"), store.get("bench-search")
    process = follower([lake, search], log_dir / "bench-follower.log")
    try:
        result["lag"] = [lag_bench(settings, dsn, lake, search, rate) for rate in (100, 1000)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    result["throughput"] = throughput_bench(settings, dsn, lake)
    result["targets"] = {"p50_lag_s": 2.0, "p95_lag_s": 5.0, "at_rate": 1000}
    return result
