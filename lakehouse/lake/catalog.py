"""The catalog client (pyiceberg's RestCatalog) and what users ask of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError, UnauthorizedError
from pyiceberg.table import Table
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


def open_catalog(settings: Settings) -> RestCatalog:
    """The lake's catalog; ServiceUnavailableError when the catalog does not answer."""
    props = {**catalog_properties(settings), **S3_BOUNDS}
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


def load_table(catalog: RestCatalog, name: str) -> Table:
    """The table, or a TableNotFoundError listing what does exist.

    A name with capitals that names no table falls back to its lower-case form,
    as the engines resolve it (ingest lower-cases the names it creates).
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
    ``count_method`` how ``total_records`` was found."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    added_records: int
    total_records: int | None
    stored_records: int
    count_method: str


def history(table: Table) -> list[SnapshotInfo]:
    """Snapshots in commit order, oldest first."""
    rows = []
    reader = DeleteReader()  # a delete file stays in the snapshots after it: read it once
    for snap in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
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
    """ID of the snapshot current at ``moment``; SnapshotNotFoundError if none was."""
    millis = int(moment.timestamp() * 1000)
    candidates = [s for s in table.snapshots() if s.timestamp_ms <= millis]
    if not candidates:
        first = min((s.timestamp_ms for s in table.snapshots()), default=None)
        since = (
            f" Its first snapshot was committed at {datetime.fromtimestamp(first / 1000, tz=UTC).isoformat()}."
            if first is not None
            else " It has no snapshots yet."
        )
        raise SnapshotNotFoundError(
            f"Table {'.'.join(table.name())} had no snapshot at {moment.isoformat()}.{since}",
            hint="See `lakehouse history` for the snapshot times; use one of them or a later time.",
        )
    return max(candidates, key=lambda s: s.timestamp_ms).snapshot_id
