"""What ``lakehouse sync status`` shows: one JSON file per integration.

The status is a report, not a checkpoint: positions that decide what is
replayed live in the targets, committed with the data.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.config import Settings
from lakehouse.governance.derived import FULL_SIGHT, Sight

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.sync.integrations import Integration

# A follower refreshes its status at least this often; older means it is gone.
HEARTBEAT_SECONDS = 5.0
# A follower that has not reported for this long is presumed dead.
STALE_SECONDS = 3 * HEARTBEAT_SECONDS


@dataclass
class SyncStatus:
    """The last reported state of one integration."""

    name: str
    state: str = "never run"  # snapshotting, streaming, idle, retrying, stopped, failed
    position: str = ""
    lag_seconds: float | None = None
    rows_per_second: float = 0.0
    changes_applied: int = 0  # snapshot rows included
    snapshot_rows: int = 0  # snapshot_rows_read included
    # Of snapshot_rows, the rows a snapshot still running has read so far: not yet
    # counted (a worker killed mid-snapshot reads them again; they were counted twice).
    snapshot_rows_read: int = 0

    @property
    def snapshot_rows_done(self) -> int:
        """Rows of finished snapshots."""
        return self.snapshot_rows - self.snapshot_rows_read

    # Rows of this generation in the dead-letter table, each counted once however
    # often a replay recorded it again (recounted from the table: runner.py).
    dead_letters: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    updated_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)
    # Which incarnation wrote it (lakehouse.sync.generations); another one's is ignored.
    generation: str = ""
    # When the newest pass that ended caught up started (epoch seconds): every change
    # committed before then is in the target.
    caught_up_from: float | None = None
    # When this generation's first runner started (epoch seconds): dead letters recorded
    # since then are this generation's (an earlier one's keep their older recorded_at).
    generation_started: float | None = None

    @property
    def stale(self) -> bool:
        return time.time() - self.updated_at > STALE_SECONDS


def heartbeat_path(settings: Settings) -> Path:
    """The file a follower touches every half heartbeat (the sync service's health)."""
    return settings.home_dir / "sync" / "follower.heartbeat"


class StatusStore:
    """Reads and atomically writes ``<home>/sync/status/<name>.json``."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.home_dir / "sync" / "status"

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def read(self, name: str) -> SyncStatus:
        try:
            data = json.loads(self.path(name).read_text())
        except (OSError, ValueError):
            return SyncStatus(name=name, updated_at=0.0, pid=0)
        known = set(SyncStatus.__dataclass_fields__)
        return SyncStatus(**{k: v for k, v in data.items() if k in known})

    def write(self, status: SyncStatus) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        status.updated_at = time.time()
        status.pid = os.getpid()
        staging = self.path(status.name).with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps(asdict(status), indent=2))
        os.replace(staging, self.path(status.name))

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)


class StatusWriter:
    """Writes one integration's status for the process running it, and keeps it fresh.

    A pass may run longer than STALE_SECONDS between two reports (a 50,000-row
    snapshot chunk into a busy OpenSearch took 19 s, a catch-up after an outage
    longer), and `sync status` then said "not running" of a running integration.
    Inside :meth:`kept_fresh`, a thread rewrites the last status written whenever
    nothing was written for a heartbeat.
    """

    def __init__(self, store: StatusStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last: SyncStatus | None = None

    def write(self, status: SyncStatus) -> None:
        with self._lock:
            self.store.write(status)
            self._last = replace(status)  # as written: the caller goes on changing its own

    def _refresh(self, heartbeat: float) -> None:
        with self._lock:
            last = self._last
            if last is not None and time.time() - last.updated_at >= heartbeat:
                self.store.write(last)

    @contextmanager
    def kept_fresh(self, heartbeat: float = HEARTBEAT_SECONDS) -> Iterator[None]:
        """While inside, the last status written is rewritten at least every ``heartbeat``."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(heartbeat / 2):
                self._refresh(heartbeat)

        thread = threading.Thread(target=beat, name="sync-status-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def route(integration: Integration) -> str:
    """``source -> target``, as `sync list` and `sync status` show it."""
    return f"{integration.source} -> {integration.target}"


def status_rows(settings: Settings) -> list[dict[str, Any]]:
    """What `lakehouse sync status` shows, per declared integration (by name).

    Each row is the :class:`SyncStatus` fields plus ``shown_state`` (``not running``
    when a running state's report is stale) and ``route``. A report left by a
    deleted namesake (another generation) is shown as never run.
    """
    from lakehouse.sync.integrations import IntegrationStore

    store = StatusStore(settings)
    rows = []
    for name, integration in sorted(IntegrationStore(settings).all().items()):
        state = store.read(name)
        if state.generation != integration.generation:  # a deleted namesake's report
            state = SyncStatus(name=name, updated_at=0.0, pid=0)
        running = state.state in ("snapshotting", "streaming", "idle", "retrying", "waiting")
        shown = "not running" if running and state.stale else state.state
        rows.append(asdict(state) | {"shown_state": shown, "route": route(integration)})
    return rows


def lake_tables(integration: Integration, settings: Settings) -> list[str]:
    """The lake tables (``ns.table``) an integration reads or writes: its Iceberg
    sources or targets; none for PostgreSQL -> OpenSearch."""
    if integration.source == "iceberg":
        return list(integration.tables)
    if integration.target == "iceberg":
        return [integration.iceberg_target(t, settings) for t in integration.tables]
    return []


OUTSIDE_THE_LAKE = Sight(False, False, "its source and target are outside the lake (PostgreSQL "
                         "to OpenSearch), which the policy does not cover: only the admin sees it")  # fmt: skip
VALUES_HELD = "dead letters and errors hold the source rows' values unfiltered"


def integration_sights(lake: Lakehouse) -> dict[str, Sight]:
    """Integration name -> what ``lake``'s principal sees of it
    (:mod:`lakehouse.governance.derived`: the integration needs every lake table it
    reads or writes visible; its dead letters and last error need them whole)."""
    from lakehouse.governance.derived import lake_sight
    from lakehouse.sync.integrations import IntegrationStore

    integrations = IntegrationStore(lake.settings).all()
    if not lake.governed():
        return dict.fromkeys(integrations, FULL_SIGHT)
    sights = {}
    for name, integration in integrations.items():
        tables = lake_tables(integration, lake.settings)
        sights[name] = lake_sight(lake, tables, VALUES_HELD) if tables else OUTSIDE_THE_LAKE
    return sights


@dataclass(frozen=True)
class GovernedStatus:
    """What ``lake``'s principal sees of `lakehouse sync status`: ``rows`` as
    :func:`status_rows` gives them, cut to the integrations it may see (the last
    error's text replaced by ``(hidden)`` where it may not see the values), and how
    many integrations were left out (``hidden``, counted, never named)."""

    rows: list[dict[str, Any]]
    hidden: int


def governed_status_rows(lake: Lakehouse) -> GovernedStatus:
    """:func:`status_rows` as ``lake``'s principal may see them: the same decision
    as the console's Zero-ETL page (:func:`integration_sights`). Every row, whole,
    when it is not governed."""
    every = status_rows(lake.settings)
    sights = integration_sights(lake)
    rows = []
    for row in every:
        sight = sights.get(row["name"], FULL_SIGHT)
        if not sight.status:
            continue
        if not sight.values and row["last_error"]:
            row = row | {"last_error": "(hidden)"}
        rows.append(row)
    return GovernedStatus(rows, len(every) - len(rows))


def governed_integrations(lake: Lakehouse) -> tuple[dict[str, Integration], int]:
    """The declared integrations ``lake``'s principal may see (`lakehouse sync list`),
    and how many were left out."""
    from lakehouse.sync.integrations import IntegrationStore

    every = IntegrationStore(lake.settings).all()
    sights = integration_sights(lake)
    shown = {n: i for n, i in every.items() if sights.get(n, FULL_SIGHT).status}
    return shown, len(every) - len(shown)
