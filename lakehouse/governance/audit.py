"""The audit log (the CloudTrail role): every governed access decision, allowed or
denied, appended to the Iceberg table ``lakehouse_audit.access_log``.

:func:`record` never talks to the lake: it appends one JSON line to a spool file
under the home (``<home>/governance/audit/spool.jsonl``) and returns, so a query is
never slowed by a commit nor failed by a lake that is down. Spooled records are
committed in batches by :func:`flush`: a background thread of the recording process
(every FLUSH_SECONDS while it has records), that process at exit, ``lakehouse audit``
before it reads, and ``lakehouse up``. A record that cannot even be spooled (a full
or read-only disk) raises: an access that cannot be recorded is not served.

No record is lost or committed twice: a flush first renames the spool to a batch file
(under the spool's lock, so no append lands in a renamed file), commits each batch in
one Iceberg append whose snapshot carries the batch's id, and deletes the batch file
only after. A flush killed between the commit and the delete finds the id in the
table's snapshots next time and only deletes the file. The spool survives a killed
process (each record is one ``write``); a machine that loses power may lose the
records of its last seconds, as the page cache does.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from filelock import FileLock, Timeout

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

log = logging.getLogger("lakehouse.governance.audit")
TABLE = "lakehouse_audit.access_log"
BATCH_PROPERTY = "lakehouse.audit-batch"
FLUSH_SECONDS = 2.0
FLUSH_WAIT_SECONDS = 120.0
KEEP_SNAPSHOTS = 200
# Each flush commits one snapshot: only the newest metadata files are kept.
PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
}
EXIT_FLUSH_SECONDS = 60.0  # the longest a process waits at exit for its records' commit
COLUMNS = ("event_id", "time", "principal", "engine", "action", "resource", "columns",
           "filters", "allowed", "reason", "query_id")  # fmt: skip


def _collect_catalog(settings: Settings) -> None:
    """The catalog's decisions on principal tokens, spooled with the rest."""
    from lakehouse.governance.catalog_access import collect

    try:
        collect(settings)
    except LakehouseError as exc:  # the spool cannot be written: they wait in their files
        log.warning("the catalog's decisions are collected later: %s", exc)


def audit_dir(settings: Settings) -> Path:
    return settings.home_dir / "governance" / "audit"


def record(
    settings: Settings,
    principal: str,
    engine: str,
    resource: str,
    columns: Sequence[str],
    filters: Sequence[str],
    allowed: bool,
    query_id: str | None,
    *,
    action: str = "SELECT",
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Record one access decision: ``principal`` asked ``engine`` (``duckdb``,
    ``trino``, ``spark``, ``s3``, ``cli``...) for ``action`` on ``resource`` (a table
    ``ns.t`` or namespace), seeing ``columns`` with ``filters`` applied (the row filter,
    data cells filters and masks, as text: ``TableAccess.applied``); ``allowed`` or
    not (then ``reason``, e.g. the missing permission); ``query_id`` ties it to a query;
    ``at`` is when it was decided (default now: a decision collected later, such as
    Trino's own, carries the time the engine decided it).

    Returns at once (the record is spooled; see the module). Raises LakehouseError
    only when the record cannot be written to the spool.
    """
    event = {
        "event_id": uuid.uuid4().hex, "time": (at or dt.datetime.now(dt.UTC)).isoformat(),
        "principal": principal, "engine": engine, "action": action, "resource": resource,
        "columns": list(columns), "filters": list(filters), "allowed": bool(allowed),
        "reason": reason, "query_id": query_id,
    }  # fmt: skip
    line = (json.dumps(event, ensure_ascii=False) + "\n").encode()
    folder = audit_dir(settings)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(folder / "spool.lock")):
            fd = os.open(folder / "spool.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
    except OSError as exc:
        raise LakehouseError(
            f"Cannot record the access of {principal} to {resource} in the audit spool "
            f"{folder}: {exc}. The access was not served.",
            hint="Free disk space or fix the permissions of the lake house home.",
        ) from None
    _background(settings).wake()


def spooled(settings: Settings) -> list[dict[str, Any]]:
    """The records waiting in the spool and its batch files (not yet committed),
    oldest batch first, as :func:`record` wrote them."""
    folder = audit_dir(settings)
    if not folder.is_dir():
        return []
    # Under the spool's lock: a flush renaming the spool between the listing of the
    # batch files and the read of the spool made its records seem gone.
    with FileLock(str(folder / "spool.lock")):
        records = []
        for path in _spooled_files(folder):
            try:
                records += _lines(path)
            except FileNotFoundError:  # committed (and deleted) meanwhile
                continue
        return records


def pending(settings: Settings) -> int:
    """How many records wait to be committed."""
    return len(spooled(settings))


def flush(settings: Settings, catalog: Catalog | None = None, *, wait: bool = False) -> int:
    """Commit every spooled record to ``lakehouse_audit.access_log``; the number
    committed. One flush runs at a time per home: while another runs, this returns 0
    at once, or with ``wait`` waits for it (up to FLUSH_WAIT_SECONDS) and then flushes. Raises ServiceUnavailableError (or pyiceberg's errors) when the lake does not
    answer; the records then stay spooled for the next flush."""
    folder = audit_dir(settings)
    if not folder.is_dir():
        return 0
    _collect_catalog(settings)  # the catalog's decisions join the spool first
    try:
        with FileLock(str(folder / "flush.lock"), timeout=FLUSH_WAIT_SECONDS if wait else 0):
            _rotate(folder)
            batches = sorted(folder.glob("batch-*.jsonl"))
            if not batches:
                return 0
            catalog = catalog or _open_catalog(settings)
            committed = sum(_commit_batch(catalog, path) for path in batches)
            _expire(catalog)
            return committed
    except Timeout:
        return 0


def _rotate(folder: Path) -> None:
    """Move the spool aside as a batch file; appends go to a new spool from now on."""
    with FileLock(str(folder / "spool.lock")):
        spool = folder / "spool.jsonl"
        if spool.exists() and spool.stat().st_size:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
            os.replace(spool, folder / f"batch-{stamp}-{uuid.uuid4().hex[:12]}.jsonl")


def _spooled_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("batch-*.jsonl")) + [
        p for p in [folder / "spool.jsonl"] if p.exists()
    ]


def _lines(path: Path) -> list[dict[str, Any]]:
    """The records of a spool or batch file. A line cut short (a disk that filled
    mid-write) is skipped with a warning: it was never a whole record."""
    records = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        try:
            records.append(json.loads(text))
        except ValueError:
            log.warning("skipping the unreadable line %d of the audit spool %s", number, path)
    return records


def _commit_batch(catalog: Catalog, path: Path) -> int:
    """Commit one batch file unless its id is already in the table; the number of
    records committed (0 for a batch found committed), the file deleted after."""
    from lakehouse.lake.attempt import committing, retry_conflicts

    batch_id = path.stem
    events = _lines(path)
    table = ensure_table(catalog)
    if not events or _committed(table, batch_id):
        path.unlink()
        return 0
    data = _arrow(events)

    def append() -> int:
        fresh = catalog.load_table(TABLE)
        if _committed(fresh, batch_id):  # a lost race we actually won
            return 0
        with committing(fresh) as tx:
            tx.append(data, snapshot_properties={BATCH_PROPERTY: batch_id})
        return len(events)

    committed = retry_conflicts(append)
    path.unlink()
    return committed


def _expire(catalog: Catalog) -> None:
    """Keep the newest KEEP_SNAPSHOTS snapshots (their files stay: every record is in
    the current one); enough to find a replayed batch's id, which is always recent."""
    from lakehouse.sync.iceberg_expire import ReachableFiles, Retention, expire_when_due

    try:
        expire_when_due(catalog.load_table(TABLE), Retention(KEEP_SNAPSHOTS, 0), ReachableFiles())
    except Exception as exc:  # the records are committed; expiry is retried next flush
        log.warning("expiring snapshots of %s failed, will retry: %s", TABLE, exc)


def _committed(table: Table, batch_id: str) -> bool:
    return any(
        s.summary is not None and s.summary.get(BATCH_PROPERTY) == batch_id
        for s in table.metadata.snapshots
    )


def _open_catalog(settings: Settings) -> Catalog:
    from lakehouse.lake.catalog import open_catalog

    return open_catalog(settings)


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    text = pa.string()
    return pa.schema([
        pa.field("event_id", text, nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("principal", text, nullable=False), pa.field("engine", text, nullable=False),
        pa.field("action", text, nullable=False), pa.field("resource", text, nullable=False),
        pa.field("columns", pa.list_(text)), pa.field("filters", pa.list_(text)),
        pa.field("allowed", pa.bool_(), nullable=False), pa.field("reason", text),
        pa.field("query_id", text),
    ])  # fmt: skip


def _arrow(events: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    rows = [{**e, "time": dt.datetime.fromisoformat(e["time"])} for e in events]
    return pa.Table.from_pylist(rows, schema=arrow_schema())


def iceberg_schema() -> Schema:
    from pyiceberg.schema import Schema
    from pyiceberg.types import BooleanType, ListType, NestedField, StringType, TimestamptzType

    def text(field_id: int, name: str, required: bool = True) -> NestedField:
        return NestedField(field_id, name, StringType(), required=required)

    def texts(field_id: int, name: str) -> NestedField:
        return NestedField(
            field_id,
            name,
            ListType(field_id + 10, StringType(), element_required=False),
            required=False,
        )

    return Schema(
        text(1, "event_id"), NestedField(2, "time", TimestamptzType(), required=True),
        text(3, "principal"), text(4, "engine"), text(5, "action"), text(6, "resource"),
        texts(7, "columns"), texts(8, "filters"),
        NestedField(9, "allowed", BooleanType(), required=True),
        text(10, "reason", required=False), text(11, "query_id", required=False),
    )  # fmt: skip


def ensure_table(catalog: Catalog) -> Table:
    """The audit table, created (partitioned by day of ``time``) on first use."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform

    if catalog.table_exists(TABLE):
        return catalog.load_table(TABLE)
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=DayTransform(), name="day")
    )
    catalog.create_namespace_if_not_exists(TABLE.split(".")[0])
    return catalog.create_table_if_not_exists(
        TABLE, schema=iceberg_schema(), partition_spec=spec, properties=PROPERTIES
    )


class _Flusher:
    """One daemon thread per home and process: flushes while records are spooled,
    then sleeps until the next :func:`record`; at exit, one last bounded flush."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-flush", daemon=True)
                self._thread.start()
                atexit.register(self._at_exit)
        self._wanted.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping.is_set():
                return
            self._flush_quietly()
            self._stopping.wait(FLUSH_SECONDS)  # records of the next seconds: one batch

    def _flush_quietly(self) -> None:
        try:
            from lakehouse.governance.trino_audit import collect

            collect(self.settings)  # Trino's own decisions, spooled with the rest
        except Exception as exc:  # collected next time, while Trino keeps them
            log.info("Trino's queries are collected later: %s", exc)
        try:
            flush(self.settings)
        except Exception as exc:  # the lake is down: the records stay spooled
            log.info("audit records stay spooled until the lake answers: %s", exc)

    def _at_exit(self) -> None:
        """Stop the thread, wait for a flush it has under way, then flush in this
        thread. A daemon thread still inside pyiceberg/pyarrow when the interpreter
        finalizes aborts the process ("FATAL: exception not rethrown", exit 134)
        after its output was printed, so nothing may run in it past this point."""
        self._stopping.set()
        self._wanted.set()
        thread = self._thread
        if thread is not None:
            thread.join(EXIT_FLUSH_SECONDS)
            if thread.is_alive():  # a commit stuck on the lake: its records stay spooled
                log.warning("audit flush still running at exit; its records stay spooled")
                return
        self._flush_quietly()


_flushers: dict[Path, _Flusher] = {}
_flushers_lock = threading.Lock()


def _background(settings: Settings) -> _Flusher:
    with _flushers_lock:
        return _flushers.setdefault(settings.home_dir, _Flusher(settings))


def read_log(
    settings: Settings,
    principal: str | None = None,
    since: dt.datetime | None = None,
    catalog: Catalog | None = None,
) -> pa.Table:
    """The audit log, oldest first (columns: COLUMNS), after flushing the spool so
    every decision recorded so far is in it; only ``principal``'s and those at or
    after ``since`` (timezone-aware) when given. ServiceUnavailableError when the lake
    does not answer (the records stay spooled)."""
    from pyiceberg.expressions import (
        AlwaysTrue,
        And,
        EqualTo,
        GreaterThanOrEqual,
    )

    from lakehouse.governance.trino_audit import collect

    collect(settings)  # Trino's decisions so far (direct clients too)
    catalog = catalog or _open_catalog(settings)
    flush(settings, catalog, wait=True)
    if not catalog.table_exists(TABLE):
        return arrow_schema().empty_table()
    condition: BooleanExpression = AlwaysTrue()
    if principal is not None:
        condition = And(condition, _predicate(EqualTo, "principal", principal))
    if since is not None:
        condition = And(condition, _predicate(GreaterThanOrEqual, "time", since.isoformat()))
    rows = catalog.load_table(TABLE).scan(row_filter=condition).to_arrow()
    return rows.sort_by([("time", "ascending"), ("event_id", "ascending")])


def _predicate(kind: Any, column: str, value: str) -> BooleanExpression:
    # pyiceberg's predicates take (term, literal); their pydantic-made signature
    # hides that from mypy.
    return cast("BooleanExpression", kind(column, value))
