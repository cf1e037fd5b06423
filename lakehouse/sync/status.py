"""What ``lakehouse sync status`` shows: one JSON file per integration.

The status is a report, not a checkpoint: positions that decide what is
replayed live in the targets, committed with the data.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.config import Settings

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.governance.policy import Policy
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
    snapshot_rows: int = 0
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


@dataclass(frozen=True)
class Sight:
    """What a principal may see of one integration, decided as Lake Formation would
    over the lake tables it reads or writes (:func:`sight_of`).

    ``status``: its state, position, lag, counts and lag chart; ``values``: its dead
    letters' rows and its last error's text, which hold source rows as they were
    (every column, every row); ``why`` says what is hidden and why ("" if nothing).
    """

    status: bool
    values: bool
    why: str = ""


FULL_SIGHT = Sight(True, True)


def lake_tables(integration: Integration, settings: Settings) -> list[str]:
    """The lake tables (``ns.table``) an integration reads or writes: its Iceberg
    sources or targets; none for PostgreSQL -> OpenSearch."""
    if integration.source == "iceberg":
        return list(integration.tables)
    if integration.target == "iceberg":
        return [integration.iceberg_target(t, settings) for t in integration.tables]
    return []


def sight_of(policy: Policy, principal: str, admin: str,
             tables: dict[str, list[str] | None]) -> Sight:  # fmt: skip
    """What ``principal`` sees of an integration whose lake tables are ``tables``
    (each -> its columns, None when it does not exist yet).

    The status needs every table visible (DESCRIBE, or SELECT of a column); the
    values need SELECT of every table whole and as stored (no row filter, mask or
    hidden column). PostgreSQL -> OpenSearch touches no lake table: admin only.
    """
    from lakehouse.governance.visibility import visible_tables

    if policy.is_admin(principal, admin):
        return FULL_SIGHT
    if not tables:
        return Sight(False, False, "its source and target are outside the lake (PostgreSQL "
                     "to OpenSearch), which the policy does not cover: only the admin sees it")  # fmt: skip
    listed = visible_tables(policy, principal, list(tables), lambda t: tables[t] or [],
                            admin=admin)  # fmt: skip
    hidden = [t for t in tables if t not in listed]
    if hidden:  # not named: the names of tables it may not see are hidden too
        return Sight(False, False, f"it reads or writes {len(hidden)} lake table(s) "
                     f"{principal} may neither DESCRIBE nor SELECT")  # fmt: skip
    partial = [
        t for t, columns in tables.items() if not _whole(policy, principal, t, columns, admin)
    ]
    if partial:
        return Sight(True, False, f"{principal} may not SELECT the whole of {', '.join(partial)} "
                     "as stored (a row filter, a mask or hidden columns apply to it), and dead "
                     "letters and errors hold the source rows' values unfiltered")  # fmt: skip
    return FULL_SIGHT


def _whole(policy: Policy, principal: str, table: str, columns: list[str] | None,
           admin: str) -> bool:  # fmt: skip
    from lakehouse.errors import AccessDeniedError, PolicyError
    from lakehouse.governance.access import table_access

    if not columns:
        return False
    try:
        access = table_access(policy, principal, table, columns, admin=admin)
    except (AccessDeniedError, PolicyError):
        return False
    return access.unrestricted and len(access.columns) == len(columns)


def integration_sights(lake: Lakehouse) -> dict[str, Sight]:
    """Integration name -> what ``lake``'s principal sees of it (everything when it is
    not governed). When the catalog cannot be read, a governed principal sees none
    (its tables' columns decide)."""
    from lakehouse.errors import LakehouseError
    from lakehouse.sync.integrations import IntegrationStore

    integrations = IntegrationStore(lake.settings).all()
    if not lake.governed():
        return dict.fromkeys(integrations, FULL_SIGHT)
    from lakehouse.governance.store import load_policy

    policy, settings = load_policy(lake.settings), lake.settings
    sights = {}
    for name, integration in integrations.items():
        try:
            tables = {t: _columns(lake, t) for t in lake_tables(integration, settings)}
        except LakehouseError as exc:
            sights[name] = Sight(False, False, f"the catalog could not be read ({exc.message})")
            continue
        sights[name] = sight_of(policy, lake.principal, settings.governance_admin, tables)
    return sights


def _columns(lake: Lakehouse, table: str) -> list[str] | None:
    from lakehouse.errors import TableNotFoundError
    from lakehouse.outages import reported_outages

    with reported_outages(lake.settings, f"reading table {table}", ("catalog",)):
        try:
            return list(lake._table(table).schema().column_names)
        except TableNotFoundError:
            return None
