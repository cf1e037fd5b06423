"""Where a sync pass's time goes at 1,000 changes/s, per Iceberg write mode (not in CI).

`python -m bench lag-profile [SECONDS]` (default 60) starts S3, the catalog and
PostgreSQL in a temporary home on free ports, loads the scale-1 shop, and for
each write mode (copy-on-write, then merge-on-read) snapshots it into a fresh
integration, lets the shop simulator (a child process) write 1,000 changes/s
and runs the integration's passes in this process for SECONDS, as the follower
would (a pass at most every ``sync_poll_seconds``).

Each phase of a pass is timed by wrapping the library function that does it
(measurement only, nothing is changed): peek and decode of the WAL, fold,
candidate key reads, rewrites, delete files, manifests, the catalog commit,
expiry. Tables commit in parallel threads, so a phase's figure is the sum over
the pass's tables (``apply (wall)`` is the wall time of all of them). Per mode:
the pass time and the lag each pass leaves (age of the newest change it
applied) as p50/p95/max, each phase's mean/p50/max per pass, and the 1-minute
load average at each pass (other work on the machine skews every figure).
Results go to bench/results/sync_lag_profile.json.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lakehouse.config import Settings

RESULTS = Path(__file__).parent / "results"
MODES = ("copy-on-write", "merge-on-read")
RATE = 1000


class PhaseClock:
    """Seconds per phase within the current pass, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self._lock = threading.Lock()

    def wrap(self, owner: Any, attribute: str, phase: str | Callable[..., str]) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                name = phase(*args) if callable(phase) else phase
                with self._lock:
                    self.seconds[name] += time.perf_counter() - started

        setattr(owner, attribute, timed)

    def take(self) -> dict[str, float]:
        with self._lock:
            taken, self.seconds = dict(self.seconds), collections.defaultdict(float)
        return taken


def instrument(clock: PhaseClock) -> None:
    """Time the phases of a pass (module doc)."""
    from pyiceberg.table import DataScan
    from pyiceberg.table.update.snapshot import _SnapshotProducer

    from lakehouse.lake import attempt, fileio, merge_state, rewrite, row_deltas
    from lakehouse.sync import (
        iceberg_expire,
        iceberg_target,
        pgoutput,
        postgres_pipeline,
        postgres_source,
    )

    source, pipeline = postgres_source.PostgresSource, postgres_pipeline.PostgresPipeline
    for owner, attribute, phase in (
        (source, "peek", "peek (with decode)"), (pgoutput.PgOutputDecoder, "feed", "decode"),
        (pipeline, "_fold", "fold"), (pipeline, "_apply", "apply (wall)"),
        (source, "advance", "advance slot"), (DataScan, "plan_files", "plan files"),
        (rewrite._Rewriter, "_present", "cow: read candidate keys"),
        (rewrite._Rewriter, "_kept", "cow: read files to rewrite"),
        (rewrite._Rewriter, "_write", "cow: write data files"),
        (merge_state.KeyColumns, "of", "mor: candidate keys (cached)"),
        (row_deltas, "position_delete_files", "mor: write delete files"),
        (row_deltas._MergeCommit, "_rewrite", "mor: compaction rewrite"),
        (row_deltas._MergeCommit, "_append", "mor: write data files"),
        (_SnapshotProducer, "_commit", "manifests and list"),
        (attempt.LakeTransaction, "commit_transaction", "catalog commit"),
        (iceberg_target, "stage_expiry", "expiry: staged in the commit"),
        (iceberg_target, "delete_expired", "expiry: after the commit"),
        (iceberg_target, "remove_orphans", "orphan sweep"),
        (iceberg_expire.ReachableFiles, "of", "expiry: reachable files"),
        (iceberg_expire, "_delete", "expiry: delete files"),
        (fileio.LakeFileIO, "delete_many", "expiry: delete files (batched)"),
    ):  # fmt: skip
        clock.wrap(owner, attribute, phase)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"mean": round(statistics.mean(values), 3), "p50": round(statistics.median(values), 3),
            "p95": round(p95, 3), "max": round(max(values), 3)}  # fmt: skip


def profile_mode(settings: Settings, dsn: str, mode: str, seconds: float,
                 clock: PhaseClock) -> dict[str, Any]:  # fmt: skip
    """Passes of a fresh integration in ``mode`` under the simulator's load."""
    from lakehouse.sync.integrations import Integration, IntegrationStore
    from lakehouse.sync.runner import IntegrationRunner, catch_up
    from sample_data.shop import SHOP_TABLES

    short = "cow" if mode == "copy-on-write" else "mor"
    settings = settings.model_copy(update={"sync_iceberg_write_mode": mode})
    store = IntegrationStore(settings)
    store.create(Integration(name=f"profile-{short}", source="postgres", target="iceberg",
                             tables=SHOP_TABLES, database="bench_profile",
                             namespace=f"profile_{short}"), replace=True)  # fmt: skip
    integration = store.get(f"profile-{short}")
    catch_up(settings, integration)
    code = ("from lakehouse.simulate import ShopSimulator; "
            f"ShopSimulator({dsn!r}, {RATE}, seed=5).run(duration={seconds + 10})")  # fmt: skip
    simulator = subprocess.Popen([sys.executable, "-c", code])
    runner = IntegrationRunner(settings, integration)
    passes: list[dict[str, Any]] = []
    try:
        time.sleep(3)  # the first loaded pass is not the steady state
        clock.take()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = runner.run_pass()
            passes.append({"seconds": result.seconds, "changes": result.changes,
                           "lag_s": result.lag_seconds or 0.0,
                           "load_1m": os.getloadavg()[0], "phases": clock.take()})  # fmt: skip
            if result.caught_up:
                time.sleep(max(0.0, settings.sync_poll_seconds - result.seconds))
    finally:
        runner.close()
        simulator.terminate()
        simulator.wait(timeout=30)
    return figures(passes)


def figures(passes: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({name for p in passes for name in p["phases"]})
    return {
        "passes": len(passes),
        "pass_seconds": summary([p["seconds"] for p in passes]),
        "lag_after_pass_s": summary([p["lag_s"] for p in passes]),
        "changes_per_pass": summary([float(p["changes"]) for p in passes]),
        "load_1m": summary([p["load_1m"] for p in passes]),
        "phases_s": {n: summary([p["phases"].get(n, 0.0) for p in passes]) for n in names},
        # the passes that stall the lag, whole: which phases their seconds went to
        "slowest_passes": sorted(passes, key=lambda p: -p["seconds"])[:5],
    }


def run_alone(console: Any, seconds: float) -> dict[str, Any]:
    """A throwaway stack; both modes; writes bench/results/sync_lag_profile.json."""
    import psycopg

    from lakehouse.config import load_settings
    from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
    from lakehouse.testing.postgres import create_database
    from sample_data.shop import load_shop

    clock = PhaseClock()
    instrument(clock)
    result: dict[str, Any] = {"rate_changes_per_s": RATE, "seconds_per_mode": seconds}
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-", ignore_cleanup_errors=True) as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "postgres"])
            create_database(settings, "bench_profile")
            dsn = settings.postgres_dsn("bench_profile")
            with psycopg.connect(dsn) as conn:
                load_shop(conn, scale=1.0)
            # LAKEHOUSE_BENCH_MODES=merge-on-read: one mode only (e.g. under a profiler)
            for mode in os.environ.get("LAKEHOUSE_BENCH_MODES", ",".join(MODES)).split(","):
                with console.status(f"{mode}: passes at {RATE:,} changes/s for {seconds:g} s"):
                    result[mode] = profile_mode(settings, dsn, mode, seconds, clock)
        finally:
            runtime.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sync_lag_profile.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Any, result: dict[str, Any]) -> None:
    from rich.table import Table

    modes = [m for m in MODES if m in result]
    table = Table("per pass", *modes, title=f"Sync passes at {RATE:,} changes/s: p50 (max) s")
    rows = {"pass": "pass_seconds", "lag after the pass": "lag_after_pass_s",
            "load average (1 min)": "load_1m"}  # fmt: skip
    for label, key in rows.items():
        table.add_row(label, *(f"{result[m][key]['p50']:.2f} ({result[m][key]['max']:.2f})"
                               for m in modes))  # fmt: skip
    phases = sorted({n for m in modes for n in result[m]["phases_s"]})
    for name in phases:
        cells = [result[m]["phases_s"].get(name) for m in modes]
        table.add_row(name, *(f"{c['p50']:.2f} ({c['max']:.2f})" if c else "-" for c in cells))
    console.print(table)
