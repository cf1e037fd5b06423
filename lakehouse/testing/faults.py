"""Writers and checks for fault tests (kill -9 during writes), shared by tests and bench.

:func:`private_stack` runs a stack of the caller's own (services get killed, so never
the shared one) and :func:`kill_9` kills a service's process group.

:class:`AppendLoop` appends batches of distinct ids in a thread and records which
were acknowledged and which failed (with the error); :func:`check_table` then says
which batches are missing, duplicated or partly written and which snapshots do
not read; :func:`orphan_files` lists data files that no snapshot references.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psutil
import pyarrow as pa

from lakehouse.client import Lakehouse
from lakehouse.config import Settings, load_settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from lakehouse.testing.stack import port_settings


@contextmanager
def private_stack(home: Path, services: list[str]) -> Iterator[tuple[Settings, dict[str, str]]]:
    """(settings, LAKEHOUSE_* variables) of a stack running ``services``; stopped after."""
    env = isolated_stack_env(home)
    settings = load_settings(home=home, **port_settings(env))
    runtime = LocalRuntime(settings)
    try:
        runtime.up(services)
        yield settings, env
    finally:
        runtime.down()


def kill_9(settings: Settings, service: str) -> int:
    """SIGKILL the service's whole process group; its pid (as it was)."""
    runtime = LocalRuntime(settings)
    pid = runtime.pid(service)
    assert pid is not None, f"{service} is not running"
    os.killpg(pid, signal.SIGKILL)
    if psutil.pid_exists(pid):
        psutil.wait_procs([psutil.Process(pid)], timeout=10)
    return pid


BATCH_ROWS = 100
PAUSE_SECONDS = 0.05
PAUSE_AFTER_FAILURE_SECONDS = 0.3


def batch(number: int) -> pa.Table:
    """Batch ``number``: BATCH_ROWS rows, ids number*BATCH_ROWS onwards."""
    first = number * BATCH_ROWS
    return pa.table(
        {
            "batch": pa.array([number] * BATCH_ROWS, pa.int64()),
            "id": pa.array(range(first, first + BATCH_ROWS), pa.int64()),
        }
    )


class AppendLoop:
    """Appends batch 0, 1, 2, ... to ``table`` until closed.

    ``acknowledged`` holds the batches whose append returned, ``failures`` the error of
    each failed one (``failed_batches`` their numbers), ``recovered_at`` the monotonic
    time of the first acknowledgement after each failure streak.
    """

    def __init__(self, settings: Settings, table: str) -> None:
        self.settings, self.table = settings, table
        self.acknowledged: list[int] = []
        self.failed_batches: list[int] = []
        self.failures: list[Exception] = []
        self.first_failure_at: float | None = None
        self.recovered_after: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> AppendLoop:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=300)

    @property
    def attempted(self) -> int:
        return len(self.acknowledged) + len(self.failed_batches)

    def _run(self) -> None:
        number, failing_since = 0, None
        with Lakehouse(self.settings) as lake:
            while not self._stop.is_set():
                try:
                    lake.ingest(batch(number), self.table)
                    self.acknowledged.append(number)
                    if failing_since is not None:
                        self.recovered_after.append(time.monotonic() - failing_since)
                        failing_since = None
                    self._stop.wait(PAUSE_SECONDS)
                except Exception as exc:  # every error is recorded and judged by the test
                    self.failed_batches.append(number)
                    self.failures.append(exc)
                    failing_since = failing_since or time.monotonic()
                    self._stop.wait(PAUSE_AFTER_FAILURE_SECONDS)
                number += 1

    def wait_for(self, acknowledged: int = 0, failed: int = 0, timeout: float = 60) -> None:
        """Block until at least that many batches were acknowledged and failed."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < acknowledged or len(self.failures) < failed:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(
                    f"append loop on {self.table}: wanted {acknowledged} acknowledged and "
                    f"{failed} failed within {timeout:.0f} s; got {len(self.acknowledged)} and "
                    f"{len(self.failures)} (last error: {self.failures[-1:]})"
                )
            time.sleep(0.05)


@dataclass
class TableCheck:
    """What a table holds against what its writer was told (batch numbers)."""

    missing: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    partial: list[int] = field(default_factory=list)
    failed_but_present: list[int] = field(default_factory=list)
    unreadable_snapshots: list[str] = field(default_factory=list)
    rows: int = 0


def check_table(lake: Lakehouse, name: str, loop: AppendLoop) -> TableCheck:
    """Compare ``name``'s rows (and every snapshot's readability) with ``loop``'s record."""
    table = lake.table(name)
    rows = table.scan().to_arrow()
    per_batch = Counter(rows.column("batch").to_pylist())
    ids = Counter(rows.column("id").to_pylist())
    check = TableCheck(rows=rows.num_rows)
    check.missing = [n for n in loop.acknowledged if per_batch[n] == 0]
    check.duplicated = sorted({i // BATCH_ROWS for i, seen in ids.items() if seen > 1})
    check.partial = sorted(n for n, count in per_batch.items() if 0 < count < BATCH_ROWS)
    check.failed_but_present = [n for n in loop.failed_batches if per_batch[n]]
    for snapshot in table.snapshots():
        try:
            table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
        except Exception as exc:  # the check reports it, the test judges it
            check.unreadable_snapshots.append(f"{snapshot.snapshot_id}: {exc}")
    return check


def orphan_files(lake: Lakehouse, name: str) -> list[str]:
    """Files under the table's location that no snapshot references (data, manifests)."""
    from lakehouse.lake.orphans import orphan_files as files_of

    return files_of(lake.table(name))


@dataclass
class SyncLoad:
    """How a sync load survived a kill: seconds from the restart until the target equalled
    the source (None: not within the wait), the last verify reports and error."""

    in_sync_after: float | None
    reports: list[Any]
    last_error: str = ""


def kill_during_sync_load(
    settings: Settings,
    dsn: str,
    victim: str,
    target: Literal["iceberg", "opensearch"],
    wait: float = 120,
) -> SyncLoad:
    """Run the sync service on a postgres -> ``target`` integration of orders and customers
    under simulated traffic, kill -9 ``victim`` mid-load, start it again, stop the traffic
    and wait for the target to equal the source."""
    from lakehouse.simulate import ShopSimulator
    from lakehouse.sync.integrations import Integration, IntegrationStore
    from lakehouse.sync.verify import verify

    services = ["sync", *(["opensearch"] if target == "opensearch" else [])]
    integration = Integration(name=f"faults-{victim}-{target}", source="postgres", target=target,
                              tables=("orders", "customers"), database=settings.postgres_db)  # fmt: skip
    IntegrationStore(settings).create(integration, replace=True)
    runtime, stop = LocalRuntime(settings), threading.Event()
    traffic = threading.Thread(
        target=lambda: ShopSimulator(dsn, rate=200, seed=4).run(stop=stop), daemon=True
    )
    traffic.start()
    try:
        runtime.up(services)
        time.sleep(4)  # mid-load: the first snapshot and streamed changes
        kill_9(settings, victim)
        time.sleep(1)
        runtime.up(services)
        restarted = time.monotonic()
        time.sleep(3)
        stop.set()
        traffic.join(timeout=30)
        return _wait_in_sync(lambda: verify(settings, integration), restarted, wait)
    finally:
        stop.set()
        runtime.down(services)


def _wait_in_sync(check: Callable[[], list[Any]], since: float, wait: float) -> SyncLoad:
    reports: list[Any] = []
    last_error = ""
    while time.monotonic() - since < wait:
        try:
            reports = check()
            if reports and all(r.ok for r in reports):
                return SyncLoad(time.monotonic() - since, reports)
        except Exception as exc:  # an index or table not created yet: the sync is catching up
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    return SyncLoad(None, reports, last_error)
