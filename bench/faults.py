"""`python -m bench faults`: kill -9 during writes, the long version of tests/integration/test_faults.py.

A private stack (S3, catalog, PostgreSQL) in a temporary home. For each of S3 and
the catalog, an append loop runs while the service is killed ``ROUNDS`` times and
started again with the runtime; then the table is checked batch by batch. The
baseline, measured in the same run, is the same append loop with no fault.
PostgreSQL is killed under the shop simulator, which must reconnect; the sync
worker and OpenSearch are killed during a sync load, which must end in sync.

Figures (bench/results/faults.json): writes attempted, acknowledged, failed,
lost (acknowledged but missing: must be 0), duplicated and partial batches,
orphan data files, unreadable snapshots, errors without a hint; per service the
restart time (runtime.up) and the recovery time (first failure to the next
acknowledged write); acknowledged writes per second against the baseline.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse
from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.simulate import ShopSimulator
from lakehouse.testing.faults import (
    AppendLoop,
    check_table,
    kill_9,
    kill_during_sync_load,
    orphan_files,
    private_stack,
)
from sample_data.shop import load_shop

RESULTS = Path(__file__).parent / "results"
SERVICES = ["s3", "catalog", "postgres"]  # sync and OpenSearch start for their rounds
ROUNDS = 5
BASELINE_SECONDS = 20.0
WRITES_BETWEEN_KILLS = 5


def baseline(settings: Settings) -> dict[str, Any]:
    """Acknowledged appends per second with nothing killed."""
    with AppendLoop(settings, "faults.baseline") as loop:
        started = time.monotonic()
        time.sleep(BASELINE_SECONDS)
        elapsed = time.monotonic() - started
    return {
        "acknowledged": len(loop.acknowledged),
        "writes_per_s": len(loop.acknowledged) / elapsed,
    }


def kill_rounds(settings: Settings, victim: str) -> dict[str, Any]:
    """ROUNDS kills of ``victim`` under an append loop; the loop's record and the checks."""
    runtime, restarts = LocalRuntime(settings), []
    with AppendLoop(settings, f"faults.append_{victim}") as loop:
        started = time.monotonic()
        for _ in range(ROUNDS):
            loop.wait_for(acknowledged=len(loop.acknowledged) + WRITES_BETWEEN_KILLS, timeout=180)
            failures = len(loop.failures)
            kill_9(settings, victim)
            loop.wait_for(failed=failures + 1, timeout=60)
            began = time.monotonic()
            runtime.up(SERVICES)
            restarts.append(time.monotonic() - began)
        loop.wait_for(acknowledged=len(loop.acknowledged) + WRITES_BETWEEN_KILLS, timeout=180)
        elapsed = time.monotonic() - started
    with Lakehouse(settings) as lake:
        check = check_table(lake, loop.table, loop)
        orphans = orphan_files(lake, loop.table)
    return {
        "kills": ROUNDS,
        "attempted": loop.attempted,
        "acknowledged": len(loop.acknowledged),
        "failed": len(loop.failed_batches),
        "lost": len(check.missing),
        "duplicated_batches": len(check.duplicated),
        "partial_batches": len(check.partial),
        "failed_but_present": len(check.failed_but_present),
        "unreadable_snapshots": len(check.unreadable_snapshots),
        "orphan_data_files": len(orphans),
        "errors_without_hint": sum("Hint:" not in str(e) for e in loop.failures),
        "error_types": sorted({type(e).__name__ for e in loop.failures}),
        "restart_s_median": statistics.median(restarts),
        "recovery_s_median": statistics.median(loop.recovered_after or [float("nan")]),
        "recovery_s_max": max(loop.recovered_after or [float("nan")]),
        "writes_per_s": len(loop.acknowledged) / elapsed,
    }


def postgres_rounds(settings: Settings) -> dict[str, Any]:
    """The shop simulator while PostgreSQL is killed ROUNDS times; it must reconnect."""
    with psycopg.connect(settings.postgres_dsn(), autocommit=True) as conn:
        load_shop(conn, scale=0.01, seed=5)
    heard: list[str] = []
    stop = threading.Event()
    simulator = ShopSimulator(settings.postgres_dsn(), rate=200, seed=1)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(
        stats=simulator.run(stop=stop, notice=heard.append)), daemon=True)  # fmt: skip
    worker.start()
    for _ in range(ROUNDS):
        time.sleep(3)
        kill_9(settings, "postgres")
        LocalRuntime(settings).up(SERVICES)
    time.sleep(3)
    stop.set()
    worker.join(timeout=180)
    stats = result["stats"]
    reconnects = [float(line.split(" after ")[1].split(" s")[0]) for line in heard
                  if line.startswith("reconnected")]  # fmt: skip
    return {
        "kills": ROUNDS,
        "changes": stats.changes,
        "reconnects": len(reconnects),
        "reconnect_s_median": statistics.median(reconnects or [float("nan")]),
        "gave_up": stats.gave_up,
    }


def run_alone() -> dict[str, Any]:
    """The whole fault bench in a private stack; writes bench/results/faults.json."""
    with (
        tempfile.TemporaryDirectory(prefix="lakehouse-bench-faults-") as home,
        private_stack(Path(home) / "home", SERVICES) as (settings, _),
    ):
        result: dict[str, Any] = {"baseline": baseline(settings)}
        for victim in ("catalog", "s3"):
            result[victim] = kill_rounds(settings, victim)
            result[victim]["writes_per_s_vs_baseline"] = (
                result[victim]["writes_per_s"] / result["baseline"]["writes_per_s"]
            )
        result["postgres"] = postgres_rounds(settings)
        for victim, target in (("sync", "iceberg"), ("opensearch", "opensearch")):
            load = kill_during_sync_load(settings, settings.postgres_dsn(), victim, target)
            result[f"{victim}_during_sync_load"] = {
                "target": target,
                "in_sync": load.in_sync_after is not None,
                "in_sync_s_after_restart": load.in_sync_after,
                "source_rows": sum(r.source_rows for r in load.reports),
                "last_error": load.last_error,
            }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("killed", "attempted", "acked", "lost", "dup/partial", "orphans",
                  "restart s", "recovery s", "writes/s vs baseline", title="kill -9 during writes")  # fmt: skip
    for victim in ("catalog", "s3"):
        r = result[victim]
        table.add_row(victim, str(r["attempted"]), str(r["acknowledged"]), str(r["lost"]),
                      f"{r['duplicated_batches']}/{r['partial_batches']}", str(r["orphan_data_files"]),
                      f"{r['restart_s_median']:.1f}", f"{r['recovery_s_median']:.1f}",
                      f"{r['writes_per_s_vs_baseline']:.2f}")  # fmt: skip
    pg = result["postgres"]
    table.add_row("postgres (simulate)", "-", f"{pg['changes']:,} changes", "-", "-", "-", "-",
                  f"{pg['reconnect_s_median']:.1f} ({pg['reconnects']} reconnects)", "-")  # fmt: skip
    console.print(table)
    for victim in ("sync", "opensearch"):
        load = result[f"{victim}_during_sync_load"]
        state = (f"in sync {load['in_sync_s_after_restart']:.1f} s after the restart"
                 if load["in_sync"] else f"NOT in sync ({load['last_error']})")  # fmt: skip
        console.print(f"kill -9 {victim} during a postgres -> {load['target']} load: {state}")
