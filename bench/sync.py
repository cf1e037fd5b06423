"""Zero-ETL figures: initial snapshot speed, end-to-end lag and sustained throughput.

* Snapshot: the scale-1 shop into Iceberg and into OpenSearch, against a
  baseline in the same run: the same tables read with COPY and appended with
  raw pyiceberg (no conversion checks, no keys, no checkpoint). One baseline
  run warms the stack first and is not counted. `python -m bench snapshot`
  runs only this part.
* Lag: a real `lakehouse sync run --follow` process follows the shop while
  the simulator writes at 100 and 1,000 changes/s. A probe thread commits a
  marker update and times until a reader sees it: for Iceberg, until a
  catalog load of the table returns the snapshot that holds it (checked by a
  pyiceberg scan of that snapshot; the time to read the row back is reported
  apart, as ``iceberg_read_back_*``), for OpenSearch until a search finds it
  (so the index refresh is included). Checks run every 0.1 s plus their own
  cost, which is counted.
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

from bench.soak import disk_mib
from lakehouse.config import Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.lake.ingest import normalize
from lakehouse.simulate import ShopSimulator
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.runner import catch_up
from lakehouse.sync.status import StatusStore
from lakehouse.testing.postgres import create_database, drop_database
from sample_data.shop import SHOP_TABLES, load_shop

LAG_SECONDS = 30.0
# `python -m bench lag`: seconds of traffic per write mode (longer runs show drift).
WRITE_MODE_LAG_SECONDS = float(os.environ.get("LAKEHOUSE_BENCH_LAG_SECONDS", "60"))
THROUGHPUT_SECONDS = 20.0


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _catch_up(settings: Settings, integration: Integration) -> tuple[float, int]:
    started = time.perf_counter()
    result = catch_up(settings, integration)
    return time.perf_counter() - started, result.snapshot_rows + result.changes


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
    # Warm-up, not measured: the first commits of a fresh stack pay the catalog's JIT
    # and S3's first writes, and whichever side ran first paid them.
    _raw_pyiceberg_seconds(settings, dsn)
    lake_s, lake_rows = _catch_up(settings, lake)
    search_s, search_rows = _catch_up(settings, search)
    raw_s, raw_rows = _raw_pyiceberg_seconds(settings, dsn)
    return {
        "rows": lake_rows,
        "iceberg_rows_per_s": lake_rows / lake_s,
        "opensearch_rows_per_s": search_rows / search_s,
        "raw_pyiceberg_rows_per_s": raw_rows / raw_s,
        "iceberg_vs_raw": (lake_rows / lake_s) / (raw_rows / raw_s),
        "load_average_1m": os.getloadavg()[0],  # other work on the machine skews the figures
    }


PROBES = 40  # dedicated products whose name carries the marker (the simulator only reprices)


class Probe(threading.Thread):
    """A marker every 0.5 s, each timed until a reader sees it in both targets.

    Markers go into the names of dedicated products (the simulator only changes
    prices), one product per marker in flight, so probes overlap and the
    figures rest on dozens of samples. Iceberg is read with a pyiceberg scan of
    the current snapshot, OpenSearch with a search (the index refresh counts).
    """

    def __init__(self, settings: Settings, dsn: str, lake: Integration, index: str | None,
                 product_ids: list[int]) -> None:  # fmt: skip
        """``index``: None to time Iceberg only."""
        super().__init__(daemon=True)
        self.settings, self.dsn, self.index, self.product_ids = settings, dsn, index, product_ids
        self.catalog = open_catalog(settings)
        self.table = lake.iceberg_target("products", settings)
        self.targets = {"iceberg", "opensearch"} if index else {"iceberg"}
        self.lags: dict[str, list[float]] = {target: [] for target in self.targets}
        self.seen_at: list[float] = []  # when each Iceberg lag was taken (perf_counter)
        self.read_lags: list[float] = []  # Iceberg: until the probe had read the row back
        self.missed = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        from lakehouse.services.opensearch import OpenSearchService

        client = OpenSearchService(self.settings).client() if self.index else None
        pending: dict[int, tuple[str, float, set[str]]] = {}
        free, number, next_at = list(self.product_ids), 0, time.perf_counter()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop_event.is_set() or pending:
                now = time.perf_counter()
                if not self.stop_event.is_set() and now >= next_at and free:
                    number += 1
                    product, marker = free.pop(), f"probe-{number}"
                    conn.execute(
                        "UPDATE products SET name = %s WHERE product_id = %s", (marker, product)
                    )
                    pending[product] = (marker, time.perf_counter(), set(self.targets))
                    next_at = now + 0.5
                self._check(pending, client)
                for product, (_, committed, _) in list(pending.items()):
                    if time.perf_counter() - committed > 60:
                        self.missed += 1
                        del pending[product]
                free += [p for p in self.product_ids if p not in pending and p not in free]
                time.sleep(0.1)  # each check costs CPU the follower shares
        if client is not None:
            client.close()

    def _check(self, pending: dict[int, tuple[str, float, set[str]]], client: Any) -> None:
        if not pending:
            return
        ids = ", ".join(str(p) for p in pending)
        table = self.catalog.load_table(self.table)
        # The lag is until the change is committed: a reader that loads the table from
        # here on gets it. Reading its rows back is the reader's cost (read_lags).
        loaded = time.perf_counter()
        lake = table.scan(
            row_filter=f"product_id IN ({ids})", selected_fields=("product_id", "name")
        )
        seen = {"iceberg": set(lake.to_arrow().column("name").to_pylist())}
        if client is not None:
            markers = [marker for marker, _, _ in pending.values()]
            query = {
                "query": {"terms": {"name.keyword": markers}},
                "size": len(markers),
                "_source": ["name"],
            }
            hits = client.search(index=self.index, body=query)["hits"]["hits"]
            seen["opensearch"] = {hit["_source"]["name"] for hit in hits}
        done = time.perf_counter()
        for product, (marker, committed, waiting) in list(pending.items()):
            for target in list(waiting):
                if marker in seen[target]:
                    self.lags[target].append((loaded if target == "iceberg" else done) - committed)
                    if target == "iceberg":
                        self.seen_at.append(done)
                        self.read_lags.append(done - committed)
                    waiting.discard(target)
            if not waiting:
                del pending[product]


def follower(integrations: list[Integration], log: Path,
             write_mode: str | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    env = os.environ.copy()
    if write_mode is not None:
        env["LAKEHOUSE_SYNC_ICEBERG_WRITE_MODE"] = write_mode
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "sync", "run", "--follow",
             *[i.name for i in integrations]],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def wait_following(settings: Settings, integrations: list[Integration],
                   process: subprocess.Popen[bytes], timeout: float = 120) -> None:  # fmt: skip
    """Until the follower process has finished a pass of every integration."""
    store, deadline = StatusStore(settings), time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        statuses = [store.read(i.name) for i in integrations]
        if all(s.pid == process.pid and s.state in ("idle", "streaming") for s in statuses):
            return
        time.sleep(0.2)
    states = {i.name: (store.read(i.name).state, store.read(i.name).pid) for i in integrations}
    raise RuntimeError(
        f"the bench follower (pid {process.pid}) is not following (exit code "
        f"{process.poll()}); states and pids: {states}"
    )


def lag_bench(settings: Settings, dsn: str, lake: Integration, search: Integration | None,
              rate: float, product_ids: list[int], seconds: float = LAG_SECONDS) -> dict[str, Any]:  # fmt: skip
    """Lag percentiles at ``rate`` changes/s; ``search`` None: Iceberg only."""
    stop = threading.Event()
    traffic = threading.Thread(target=lambda: ShopSimulator(dsn, rate, seed=5).run(stop=stop))
    traffic.start()
    time.sleep(2)  # warm-up: the first loaded pass is not the steady state being measured
    index = search.index_name("products", settings) if search else None
    probe = Probe(settings, dsn, lake, index, product_ids)
    probe.start()
    disk = [disk_mib(settings.home_dir).get("s3", 0.0)]
    for _ in range(int(seconds / 5)):  # the lake's disk use over the run: flat or not
        time.sleep(5)
        disk.append(disk_mib(settings.home_dir).get("s3", 0.0))
    probe.stop_event.set()
    probe.join(timeout=90)
    stop.set()
    traffic.join()
    figures: dict[str, Any] = {"rate": rate, "probes": len(probe.lags["iceberg"]),
                               "missed": probe.missed, "s3_disk_mib_every_5s": disk,
                               "load_average_1m": os.getloadavg()[0]}  # fmt: skip
    for target, lags in probe.lags.items():
        figures[f"{target}_p50_s"] = statistics.median(lags)
        figures[f"{target}_p95_s"] = percentile(lags, 0.95)
    # every probe's lag in probe order: spikes and drift show where the percentiles hide them
    figures["iceberg_lags_s"] = [round(lag, 2) for lag in probe.lags["iceberg"]]
    if probe.read_lags:
        figures["iceberg_read_back_p50_s"] = statistics.median(probe.read_lags)
        figures["iceberg_read_back_p95_s"] = percentile(probe.read_lags, 0.95)
    # Flat over time or not: the median Iceberg lag of the first and the second half.
    half = len(probe.lags["iceberg"]) // 2
    if half:
        figures["iceberg_p50_first_half_s"] = statistics.median(probe.lags["iceberg"][:half])
        figures["iceberg_p50_second_half_s"] = statistics.median(probe.lags["iceberg"][half:])
    return figures


def write_mode_lag_bench(settings: Settings, log_dir: Path) -> dict[str, Any]:
    """Iceberg lag at 1,000 changes/s with each write mode, one after the other in the
    same run (same machine state), each by its own follower of a fresh integration.
    Also each table's data and delete files at the end."""
    database = "bench_lag"
    drop_database(settings, database)
    create_database(settings, database)
    dsn = settings.postgres_dsn(database)
    with psycopg.connect(dsn) as conn:
        load_shop(conn, scale=1.0)
        product_ids = [row[0] for row in conn.execute(
            "INSERT INTO products (sku, name, category, brand, price, cost, created_at) "
            "SELECT 'PROBE-' || g, 'probe', 'Probes', 'Bench', 1, 1, now() "
            f"FROM generate_series(1, {PROBES}) g RETURNING product_id").fetchall()]  # fmt: skip
    store, result = IntegrationStore(settings), {}
    for mode in ("copy-on-write", "merge-on-read"):
        short = "cow" if mode == "copy-on-write" else "mor"
        lake = Integration(name=f"bench-lag-{short}", source="postgres", target="iceberg",
                           tables=SHOP_TABLES, database=database, namespace=f"bench_{short}")  # fmt: skip
        store.create(lake, replace=True)
        _catch_up(settings, lake)
        process = follower([lake], log_dir / f"bench-lag-{short}.log", mode)
        try:
            wait_following(settings, [lake], process)
            figures = lag_bench(
                settings, dsn, lake, None, 1000, product_ids, WRITE_MODE_LAG_SECONDS
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
        figures["files"] = _table_files(settings, lake)
        figures["load_average_1m"] = os.getloadavg()[0]
        result[mode] = figures
    return result


def _table_files(settings: Settings, lake: Integration) -> dict[str, dict[str, int]]:
    catalog, files = open_catalog(settings), {}
    for table in SHOP_TABLES:
        tasks = list(catalog.load_table(lake.iceberg_target(table, settings)).scan().plan_files())
        deletes = {d.file_path for task in tasks for d in task.delete_files}
        files[table] = {"data_files": len(tasks), "delete_files": len(deletes)}
    return files


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
        "load_average_1m": os.getloadavg()[0],
    }


def sync_bench(settings: Settings, log_dir: Path, snapshot_only: bool = False) -> dict[str, Any]:
    """The figures of the module doc; ``snapshot_only``: only the snapshot's."""
    database = "bench_shop"
    drop_database(settings, database)
    create_database(settings, database)
    dsn = settings.postgres_dsn(database)
    with psycopg.connect(dsn) as conn:
        load_shop(conn, scale=1.0)
        product_ids = [row[0] for row in conn.execute(
            "INSERT INTO products (sku, name, category, brand, price, cost, created_at) "
            "SELECT 'PROBE-' || g, 'probe', 'Probes', 'Bench', 1, 1, now() "
            f"FROM generate_series(1, {PROBES}) g RETURNING product_id").fetchall()]  # fmt: skip
    result: dict[str, Any] = {"snapshot": snapshot_bench(settings, dsn, database)}
    if snapshot_only:
        return result
    store = IntegrationStore(settings)
    lake, search = store.get("bench-lake"), store.get("bench-search")
    process = follower([lake, search], log_dir / "bench-follower.log")
    wait_following(settings, [lake, search], process)
    try:
        result["lag"] = [lag_bench(settings, dsn, lake, search, rate, product_ids)
                         for rate in (100, 1000)]  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)
    result["throughput"] = throughput_bench(settings, dsn, lake)
    result["targets"] = {"snapshot_vs_raw": 0.5, "iceberg_p50_lag_s": 1.0,
                         "iceberg_p95_lag_s": 2.0, "at_rate": 1000}  # fmt: skip
    return result


def run_lag_only(console: Any) -> None:
    """`python -m bench lag`: ``write_mode_lag_bench`` on a stack of its own (no
    OpenSearch), into bench/results/sync_lag.json."""
    import json
    import tempfile

    from rich.table import Table

    from lakehouse.config import load_settings
    from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-", ignore_cleanup_errors=True) as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            with console.status("Iceberg lag at 1,000 changes/s, copy-on-write then merge-on-read"):
                runtime.up(["s3", "catalog", "postgres"])
                result = write_mode_lag_bench(settings, Path(home))
        finally:
            runtime.down()
    result["targets"] = {"iceberg_p50_lag_s": 1.0, "iceberg_p95_lag_s": 2.0, "at_rate": 1000}
    results = Path(__file__).parent / "results"
    (results / "sync_lag.json").write_text(json.dumps(result, indent=2))
    table = Table("write mode", "p50", "p95", "p50 1st/2nd half", "read back p50 / p95",
                  "probes", "delete files", "load", title="Iceberg lag at 1,000 changes/s")  # fmt: skip
    for mode in ("copy-on-write", "merge-on-read"):
        lag = result[mode]
        deletes = sum(t["delete_files"] for t in lag["files"].values())
        table.add_row(mode, f"{lag['iceberg_p50_s']:.2f} s", f"{lag['iceberg_p95_s']:.2f} s",
                      f"{lag.get('iceberg_p50_first_half_s', 0):.2f} / "
                      f"{lag.get('iceberg_p50_second_half_s', 0):.2f} s",
                      f"{lag.get('iceberg_read_back_p50_s', 0):.2f} / "
                      f"{lag.get('iceberg_read_back_p95_s', 0):.2f} s",
                      str(lag["probes"]), str(deletes), f"{lag['load_average_1m']:.1f}")  # fmt: skip
    console.print(table)
