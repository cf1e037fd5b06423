"""The catalog client (pyiceberg's RestCatalog) and what users ask of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError, UnauthorizedError
from pyiceberg.io import FileIO
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import SnapshotLogEntry, ancestors_of
from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter

from lakehouse import outages
from lakehouse.config import Settings, catalog_properties, catalog_token_refused
from lakehouse.errors import SnapshotNotFoundError, TableNotFoundError
from lakehouse.lake.counts import DeleteReader, live_rows

# Bounded S3 requests for the catalog's FileIO: a down S3 fails in seconds, not minutes.
S3_BOUNDS = {
    "s3.connect-timeout": str(outages.CONNECT_SECONDS),
    "s3.request-timeout": str(outages.S3_REQUEST_SECONDS),
}
# Lakehouse's own processes read and write through a FileIO that spares a frequent
# writer the HEAD requests and manifest re-reads pyiceberg's does (lake/fileio.py).
FILE_IO = {"py-io-impl": "lakehouse.lake.fileio.LakeFileIO"}


class _BoundedAdapter(HTTPAdapter):
    """requests' adapter with a default (connect, read) timeout: requests has none."""

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (outages.CONNECT_SECONDS, outages.CATALOG_READ_SECONDS)
        return super().send(request, **kwargs)


class BoundedRestCatalog(RestCatalog):
    """pyiceberg's RestCatalog whose HTTP calls time out instead of hanging."""

    def _create_session(self) -> Session:
        session = super()._create_session()
        for scheme in ("http://", "https://"):
            session.mount(scheme, _BoundedAdapter())
        return session

    @staticmethod
    def _delete_old_metadata(io: FileIO, base: TableMetadata, metadata: TableMetadata) -> None:
        """Nothing to do: the catalog server deletes the metadata files beyond
        ``write.metadata.previous-versions-max`` in the commit itself (Iceberg's
        BaseMetastoreTableOperations), so deleting them again here only failed,
        with a "Failed to delete metadata file" warning per commit."""


def open_catalog(settings: Settings) -> RestCatalog:
    """The lake's catalog; ServiceUnavailableError when the catalog does not answer."""
    props = {**catalog_properties(settings), **S3_BOUNDS, **FILE_IO}
    try:
        with outages.reported_outages(settings, "opening the catalog", ("catalog",)):
            return BoundedRestCatalog(
                settings.catalog_name, **{k: v for k, v in props.items() if k != "type"}
            )
    except UnauthorizedError as exc:
        raise catalog_token_refused(settings) from exc


def split_name(name: str) -> tuple[str, str]:
    """('ns', 'table') from 'ns.table'; rejects anything else with a clear error."""
    parts = name.split(".")
    if len(parts) != 2 or not all(parts):
        raise TableNotFoundError(
            f"'{name}' is not a table name of the form namespace.table.",
            hint="Name tables like retail.orders.",
        )
    return parts[0], parts[1]


def load_table(
    catalog: RestCatalog, name: str, shown: Callable[[list[str]], list[str]] | None = None
) -> Table:
    """The table, or a TableNotFoundError listing what does exist.

    A name with capitals that names no table falls back to its lower-case form,
    as the engines resolve it (ingest lower-cases the names it creates).
    ``shown`` cuts the hint's list to what the caller may see (a governed
    principal's visible tables: the names of the others are not for it).
    """
    namespace, _ = split_name(name)
    try:
        return catalog.load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        if name != name.lower():
            try:
                return catalog.load_table(name.lower())
            except (NoSuchTableError, NoSuchNamespaceError):
                namespace = namespace.lower()
        try:
            existing = [".".join(t) for t in catalog.list_tables(namespace)]
        except NoSuchNamespaceError:
            existing = []
        if shown is not None:
            existing = shown(existing) if existing else []
        hint = (
            f"Tables in {namespace}: {', '.join(existing)}."
            if existing
            else "Run `lakehouse tables`."
        )
        raise TableNotFoundError(f"Table {name} does not exist.", hint=hint) from exc


def list_tables(catalog: RestCatalog, namespace: str | None = None) -> list[str]:
    """'ns.table' names, sorted; all namespaces when none is given."""
    if namespace:
        spaces: list[tuple[str, ...]] = [(namespace,)]
    else:
        spaces = list(catalog.list_namespaces())
    names = []
    for space in spaces:
        try:
            names += [".".join(ident) for ident in catalog.list_tables(space)]
        except NoSuchNamespaceError as exc:
            raise TableNotFoundError(
                f"Namespace {namespace} does not exist.", hint="Run `lakehouse tables`."
            ) from exc
    return sorted(names)


def row_count(table: Table) -> int | None:
    """Rows a reader of the current snapshot sees (delete files applied); None when
    unknowable (equality deletes). See ``lakehouse.lake.counts``."""
    return live_rows(table, table.current_snapshot()).rows


def describe(table: Table) -> dict[str, Any]:
    """Schema, partitioning, properties, location and row count.

    ``row_count`` is what a reader sees (None when unknowable), ``row_count_method``
    says how it was found, ``stored_records`` is the summary's count of stored rows.
    """
    snapshot = table.current_snapshot()
    count = live_rows(table, snapshot)
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    return {
        "name": ".".join(table.name()),
        "location": table.location(),
        "format_version": table.format_version,
        "schema": [
            {"id": f.field_id, "name": f.name, "type": str(f.field_type), "required": f.required}
            for f in table.schema().fields
        ],
        "partitioning": [str(field) for field in table.spec().fields],
        "sort_order": [str(field) for field in table.sort_order().fields],
        "properties": dict(table.properties),
        "current_snapshot_id": snapshot.snapshot_id if snapshot else None,
        "row_count": count.rows,
        "row_count_method": count.method,
        "stored_records": int(summary.get("total-records", 0)),
    }


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot. ``total_records`` is what a reader of it sees (delete files
    applied; None when unknowable), ``stored_records`` the rows its data files hold,
    ``count_method`` how ``total_records`` was found. Every count is None for a
    governed principal behind a row filter (``lakehouse.governance.table_view``)."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    added_records: int | None
    total_records: int | None
    stored_records: int | None
    count_method: str


def history(table: Table) -> list[SnapshotInfo]:
    """The snapshots that were the table's current state, in commit order, oldest first.

    A snapshot that never was current (the first of several snapshots committed
    together, e.g. pyiceberg's delete-then-append overwrite, or a staged one) is
    left out: no reader ever saw it, so it is no state to travel to.
    """
    rows = []
    reader = DeleteReader()  # a delete file stays in the snapshots after it: read it once
    was_current = {entry.snapshot_id for entry in _current_states(table)}
    for snap in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
        if snap.snapshot_id not in was_current:
            continue
        extra = snap.summary.additional_properties if snap.summary else {}
        count = live_rows(table, snap, reader)
        rows.append(
            SnapshotInfo(
                snapshot_id=snap.snapshot_id,
                parent_id=snap.parent_snapshot_id,
                committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC),
                operation=str(snap.summary.operation.value) if snap.summary else "",
                added_records=int(extra.get("added-records", 0)),
                total_records=count.rows,
                stored_records=int(extra.get("total-records", 0)),
                count_method=count.method,
            )
        )
    return rows


def snapshot_as_of(table: Table, moment: datetime) -> int:
    """ID of the snapshot that was the table's current state at ``moment``.

    Follows the table's snapshot log (each change of the current snapshot, with
    its time; a rollback makes an older snapshot current again), never a snapshot
    that was not current. SnapshotNotFoundError if no snapshot was current then,
    or the one that was has been expired.
    """
    millis = int(moment.timestamp() * 1000)
    states = _current_states(table)
    earlier = [entry for entry in states if entry.timestamp_ms <= millis]
    name = ".".join(table.name())
    if not earlier:
        since = (
            f" Its first snapshot was committed at {_utc(states[0].timestamp_ms)}."
            if states
            else " It has no snapshots yet."
        )
        raise SnapshotNotFoundError(
            f"Table {name} had no snapshot at {moment.isoformat()}.{since}",
            hint="See `lakehouse history` for the snapshot times; use one of them or a later time.",
        )
    entry = max(earlier, key=lambda e: e.timestamp_ms)
    if table.snapshot_by_id(entry.snapshot_id) is None:
        raise SnapshotNotFoundError(
            f"Table {name} was at snapshot {entry.snapshot_id} at {moment.isoformat()}, "
            "which has been expired.",
            hint="See `lakehouse history` for the snapshots still kept; use a later time.",
        )
    return entry.snapshot_id


def _current_states(table: Table) -> list[SnapshotLogEntry]:
    """The snapshot log, oldest first; for a table without one (an old writer), the
    current snapshot's ancestors, each current from its commit time."""
    if table.metadata.snapshot_log:
        return sorted(table.metadata.snapshot_log, key=lambda e: e.timestamp_ms)
    current = table.current_snapshot()
    lineage = list(ancestors_of(current, table.metadata)) if current else []
    return [SnapshotLogEntry(**{"snapshot-id": s.snapshot_id, "timestamp-ms": s.timestamp_ms})
            for s in reversed(lineage)]  # fmt: skip


def _utc(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat()
