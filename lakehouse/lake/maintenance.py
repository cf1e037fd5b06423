"""Table maintenance: compaction, snapshot expiry and orphan-file removal.

Nothing here rewrites data itself:

- ``optimize`` is Trino's ``ALTER TABLE ... EXECUTE optimize`` (bin-packing files
  under the target size, per partition; a table with a sort order is written
  sorted within each file, by Trino's sorting writer);
- ``expire_snapshots`` is the lake's one expiry (``lakehouse.sync.iceberg_expire``,
  Iceberg's reachability rule: a file is deleted only when no kept snapshot
  reaches it). Trino's ``expire_snapshots`` has no ``retain_last``; Spark's has,
  but costs a JVM session; this one keeps at least ``retain_last`` snapshots
  (and every branch or tag head) exactly, like Spark's;
- ``remove_orphan_files`` deletes what ``lakehouse.lake.orphans`` defines as an
  orphan (the sync's sweeps use the same definition), never younger than the
  ``maintenance_orphan_floor_seconds`` setting: a file younger than that may
  belong to a commit still in flight.

Each returns a :class:`MaintenanceReport`. A commit that conflicts with a
concurrent writer is retried (``ATTEMPTS`` in all) and then skipped, never
forced: the report says so.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError, QueryError
from lakehouse.lake.maintenance_units import human_bytes, human_duration, parse_duration, parse_size
from lakehouse.sync.iceberg_expire import ReachableFiles, Retention
from lakehouse.sync.iceberg_expire import expire_snapshots as expire_by_retention

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

    from lakehouse.client import Lakehouse

ATTEMPTS = 4  # a commit refused for a concurrent change is tried this often in all
RETRY_PAUSE_S = 0.5
DEFAULT_TARGET_FILE_SIZE = 512 * 2**20  # Iceberg's write.target-file-size-bytes default
TARGET_SIZE_PROPERTY = "write.target-file-size-bytes"
GC_PROPERTY = "gc.enabled"  # false: files may be shared; Iceberg forbids expiry and orphan removal
DEFAULT_EXPIRE_AGE = timedelta(days=5)  # Iceberg's history.expire.max-snapshot-age-ms
# Words of a refused commit (Trino's ICEBERG_COMMIT_ERROR, the REST catalog's 409).
CONFLICT_WORDS = ("ICEBERG_COMMIT_ERROR", "CommitFailed", "Commit failed", "conflicting files",
                  "Cannot commit", "has changed", "Requirement failed", "found new delete",
                  "Missing required files")  # fmt: skip


@dataclass
class MaintenanceReport:
    """What one maintenance action did to one table.

    ``files_*``/``bytes_*``: data files of the current snapshot before and after;
    ``snapshots_removed``; ``files_deleted``/``bytes_deleted``: files removed from
    S3 (expired snapshots' files, or orphans); ``seconds`` taken;
    ``conflicts_retried`` commits refused for a concurrent writer and tried again;
    ``skipped``: why nothing changed (conflicts persisted), else None.
    """

    table: str
    action: str
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    snapshots_removed: int = 0
    files_deleted: int = 0
    bytes_deleted: int | None = 0  # None: not measured (expiry)
    seconds: float = 0.0
    conflicts_retried: int = 0
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def data_files(table: Table) -> tuple[int, int]:
    """(count, bytes) of the data files of ``table``'s current snapshot (delete
    files not counted)."""
    from pyiceberg.manifest import ManifestContent

    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0, 0
    count = size = 0
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            count += 1
            size += entry.data_file.file_size_in_bytes
    return count, size


def check_allowed(lake: Lakehouse, name: str, action: str) -> None:
    """With governance on, maintenance needs ALTER on the table (the admin has it);
    raise AccessDeniedError (audited) otherwise; the decision is audited."""
    if not lake.governed():
        return
    from lakehouse.errors import AccessDeniedError
    from lakehouse.governance.access import check
    from lakehouse.governance.audit import record
    from lakehouse.governance.policy import Permission
    from lakehouse.governance.store import load_policy

    settings, who = lake.settings, lake.principal
    try:
        check(load_policy(settings), who, Permission.ALTER, admin=settings.governance_admin,
              table=name)  # fmt: skip
    except AccessDeniedError as denied:
        denied.hint = (f"{action} needs ALTER on {name}: `lakehouse grant ALTER ON TABLE {name} "
                       f"TO {who}` (as the admin), or run it as the admin.")  # fmt: skip
        record(settings, who, "library", name, (), (), False, None, action="ALTER",
               reason=str(denied))  # fmt: skip
        raise
    record(settings, who, "library", name, (), (), True, None, action="ALTER")


def _start(lake: Lakehouse, name: str, action: str) -> tuple[Table, MaintenanceReport]:
    check_allowed(lake, name, action)
    table = lake._table(name)
    if action != "optimize" and table.properties.get(GC_PROPERTY, "true").lower() == "false":
        # Iceberg's own rule, which Spark's and Trino's procedures follow too.
        raise LakehouseError(
            f"{action} refused: {name} has {GC_PROPERTY}=false (its files may be shared, e.g. "
            "Parquet registered where it landed), so nothing of it is deleted.",
            hint=f"If every file under its snapshots belongs to {name} alone, set "
            f"{GC_PROPERTY}=true (ALTER TABLE ... SET PROPERTIES / pyiceberg), then run it again.",
        )
    report = MaintenanceReport(table=name, action=action)
    report.files_before, report.bytes_before = data_files(table)
    return table, report


def _finish(table: Table, report: MaintenanceReport, started: float) -> MaintenanceReport:
    table.refresh()
    report.files_after, report.bytes_after = data_files(table)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a commit refused because another writer committed first."""
    from pyiceberg.exceptions import CommitFailedException

    if isinstance(exc, CommitFailedException):
        return True
    text = f"{type(exc).__name__}: {exc} {getattr(exc, 'reason', '')}"
    return isinstance(exc, QueryError) and any(word in text for word in CONFLICT_WORDS)


def optimize(lake: Lakehouse, name: str, target_file_size: str | int | None = None,
             where: str | None = None) -> MaintenanceReport:  # fmt: skip
    """Compact ``name``'s data files smaller than ``target_file_size`` (default: the
    table's ``write.target-file-size-bytes``, else 512 MB) into files of about that
    size, on Trino; ``where`` (a predicate on partition columns) limits it to some
    partitions. Rows are unchanged. Raises QueryError (Trino down, a bad predicate),
    TableNotFoundError, AccessDeniedError; conflicts are retried, then reported."""
    started = time.perf_counter()
    table, report = _start(lake, name, "optimize")
    size = _target_size(table, target_file_size)
    predicate = _predicate(where, partition_columns(table))
    report.details = {"target_file_size": size, "where": predicate,
                      "sort_order": str(table.sort_order()) if table.sort_order().fields else None}  # fmt: skip
    if report.files_before > 0:
        _attempts(report, lambda: _trino_optimize(lake, name, size, predicate))
    return _finish(table, report, started)


def _target_size(table: Table, given: str | int | None) -> int:
    if given is not None:
        return parse_size(given, "--target-file-size")
    configured = table.properties.get(TARGET_SIZE_PROPERTY)
    return int(configured) if configured and configured.isdigit() else DEFAULT_TARGET_FILE_SIZE


def partition_columns(table: Table) -> list[str]:
    """Names of the columns ``table``'s current partition spec derives from."""
    names = (table.schema().find_column_name(f.source_id) for f in table.spec().fields)
    return [name for name in names if name]


def _predicate(where: str | None, partitioned_by: list[str] | None = None) -> str | None:
    """``where`` as one Trino boolean expression that tests only ``partitioned_by``
    columns (when given), or a LakehouseError (with a hint)."""
    if where is None or not where.strip():
        return None
    import sqlglot
    from sqlglot import exp

    try:
        parsed = sqlglot.parse(where, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise LakehouseError(f"--where '{where}' is not an SQL predicate: {exc}",
                             hint="Write one condition on partition columns, e.g. "
                             "\"dt >= DATE '2026-11-01'\".") from None  # fmt: skip
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Condition):
        raise LakehouseError(f"--where '{where}' is not one SQL predicate.",
                             hint="Give a single condition, e.g. \"region = 'eu'\".")  # fmt: skip
    others = sorted({c.name for c in parsed[0].find_all(exp.Column)} - set(partitioned_by or []))
    if partitioned_by is not None and others:
        raise LakehouseError(
            f"--where may only test partition columns; {', '.join(others)} "
            f"{'is not one' if len(others) == 1 else 'are not'}.",
            hint=(f"The table is partitioned by {', '.join(partitioned_by)}." if partitioned_by
                  else "The table is not partitioned: optimize it whole (no --where)."),
        )  # fmt: skip
    return parsed[0].sql("trino")


def _trino_optimize(lake: Lakehouse, name: str, size: int, where: str | None) -> None:
    import trino

    from lakehouse.engines.trino import TrinoEngine

    engine = TrinoEngine(lake.settings)
    catalog = lake.settings.catalog_name
    namespace, table = name.rsplit(".", 1)
    sql = (f'ALTER TABLE "{catalog}"."{namespace}"."{table}" '
           f"EXECUTE optimize(file_size_threshold => '{size}B')"
           + (f" WHERE {where}" if where else ""))  # fmt: skip
    # The writer's file size: Trino's default (1 GB) would ignore the target.
    session = {f"{catalog}.target_max_file_size": f"{size}B"}
    try:
        connection = engine.connect(schema=namespace, user=engine.admin,
                                    session_properties=session)  # fmt: skip
        cursor = connection.cursor()
        cursor.execute(sql)
        cursor.fetchall()
        connection.close()
    except trino.exceptions.TrinoUserError as exc:
        raise QueryError("trino", sql, f"{exc.error_name}: {exc.message}",
                         hint=_optimize_hint(exc.message)) from None  # fmt: skip
    except trino.exceptions.TrinoQueryError as exc:
        raise QueryError("trino", sql, f"{exc.error_name}: {exc.message}",
                         hint="`lakehouse logs trino` says more.") from None  # fmt: skip
    except (trino.exceptions.HttpError, trino.exceptions.OperationalError, OSError) as exc:
        raise QueryError("trino", sql, f"cannot reach Trino at {lake.settings.trino_uri}: {exc}",
                         hint="optimize runs on Trino: `lakehouse up --services trino`.") from None  # fmt: skip


def _optimize_hint(message: str) -> str:
    if "FilterNode" in message or "WHERE" in message.upper():
        return "optimize's --where may only test partition columns (see `lakehouse describe`)."
    return "Check the table name and --where; `lakehouse describe TABLE` shows its partitioning."


def _attempts(report: MaintenanceReport, commit: Any) -> None:
    """Run ``commit``; a conflict is retried (ATTEMPTS in all), then reported as skipped."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            commit()
            return
        except Exception as exc:  # only conflicts are kept; the rest is raised
            if not is_conflict(exc):
                raise
            if attempt == ATTEMPTS:
                report.skipped = (f"{ATTEMPTS} commits were refused because other writers "
                                  f"committed first; nothing changed ({str(exc)[:200]})")  # fmt: skip
                return
            report.conflicts_retried += 1
            time.sleep(RETRY_PAUSE_S * attempt)


class KeepAtLeast(Retention):
    """Snapshots older than ``max_age_s`` AND beyond the newest ``snapshots`` (Spark's
    ``older_than`` with ``retain_last``; the sync's Retention expires either kind)."""

    def expired(self, table: Table, adding: int = 0) -> list[Snapshot]:
        # (``adding`` is the sync's: maintenance expires in a commit of its own)
        refs = {ref.snapshot_id for ref in table.metadata.refs.values()}
        newest = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
        cutoff_ms = (time.time() - self.max_age_s) * 1000
        return [s for index, s in enumerate(newest)
                if index >= self.snapshots and s.timestamp_ms < cutoff_ms
                and s.snapshot_id not in refs]  # fmt: skip


def expire_snapshots(lake: Lakehouse, name: str, older_than: str | timedelta = DEFAULT_EXPIRE_AGE,
                     retain_last: int = 1) -> MaintenanceReport:  # fmt: skip
    """Expire ``name``'s snapshots older than ``older_than`` except the newest
    ``retain_last`` (>= 1) and branch or tag heads, and delete the files only they
    reached. Raises LakehouseError for ``retain_last`` < 1."""
    from pyiceberg.exceptions import CommitFailedException

    age = parse_duration(older_than, "--older-than")
    if retain_last < 1:
        raise LakehouseError(f"--retain-last {retain_last}: the current snapshot is always kept.",
                             hint="Use --retain-last 1 or more.")  # fmt: skip
    started = time.perf_counter()
    table, report = _start(lake, name, "expire-snapshots")
    report.details = {"older_than_s": age.total_seconds(), "retain_last": retain_last}
    report.bytes_deleted = None
    retention = KeepAtLeast(snapshots=retain_last, max_age_s=age.total_seconds())
    chosen: set[int] = set()  # what this expiry asked to remove (others may expire too)

    def commit() -> None:
        table.refresh()
        chosen.update(s.snapshot_id for s in retention.expired(table))
        try:
            report.files_deleted += expire_by_retention(table, retention, ReachableFiles())
        except (FileNotFoundError, ValueError) as exc:
            if isinstance(exc, ValueError) and "does not exist" not in str(exc):
                raise
            # Another expiry (the sync's own) removed these snapshots or files first.
            raise CommitFailedException(f"expired concurrently: {exc}") from exc

    _attempts(report, commit)
    table.refresh()
    report.snapshots_removed = len(chosen - {s.snapshot_id for s in table.metadata.snapshots})
    return _finish(table, report, started)


def remove_orphan_files(lake: Lakehouse, name: str,
                        older_than: str | timedelta = timedelta(days=3)) -> MaintenanceReport:  # fmt: skip
    """Delete the files under ``name``'s location that no snapshot references and
    that are older than ``older_than``. Refuses (LakehouseError with a hint, nothing
    deleted) a threshold under the ``maintenance_orphan_floor_seconds`` setting."""
    from lakehouse.lake.orphans import orphan_sizes, referenced_files

    age = parse_duration(older_than, "--older-than")
    floor = lake.settings.maintenance_orphan_floor_seconds
    if age.total_seconds() < floor:
        raise LakehouseError(
            f"--older-than {human_duration(age.total_seconds())} is under the floor of "
            f"{human_duration(floor)}: a file that young may belong to a commit still in flight.",
            hint=f"Use --older-than {human_duration(floor)} or more (the floor is the setting "
            "maintenance_orphan_floor_seconds).",
        )
    started = time.perf_counter()
    table, report = _start(lake, name, "remove-orphan-files")
    report.details = {"older_than_s": age.total_seconds()}
    table.refresh()
    for path, size in sorted(
        orphan_sizes(table, referenced_files(table), age.total_seconds()).items()
    ):
        try:
            table.io.delete(path)
        except FileNotFoundError:
            continue
        except Exception as exc:  # a file left is reported, never fatal
            report.details.setdefault("not_deleted", []).append(f"{path}: {exc}")
            continue
        report.files_deleted += 1
        report.bytes_deleted = (report.bytes_deleted or 0) + size
    return _finish(table, report, started)


def one_line(report: MaintenanceReport) -> str:
    """``report`` in one line, as `lakehouse status` and the CLI show it."""
    files = (f"data files {report.files_before} -> {report.files_after}, "
             f"{human_bytes(report.bytes_before)} -> {human_bytes(report.bytes_after)}")  # fmt: skip
    if report.action == "expire-snapshots":
        done = f"{report.snapshots_removed} snapshot(s) removed, {report.files_deleted} file(s) deleted"
    elif report.action == "remove-orphan-files":
        done = (f"{report.files_deleted} orphan file(s) deleted "
                f"({human_bytes(report.bytes_deleted or 0)})")  # fmt: skip
    else:
        done = files
        files = ""
    parts = [done, files, f"{report.seconds:.1f} s"]
    if report.conflicts_retried:
        parts.append(f"{report.conflicts_retried} conflict(s) retried")
    if report.skipped:
        parts.append(f"SKIPPED: {report.skipped}")
    return "; ".join(part for part in parts if part)
