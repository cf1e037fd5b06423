"""What a catalog browser shows, read from metadata only where it can be.

Lists come in pages (:class:`Page`): a namespace of 1,000 tables is one
catalog request and no table is loaded; a table's snapshot changes come from
its metadata's snapshot summaries (no manifest is read); its data files are
read from the manifests covering the page asked for, counted from the
manifest list. Only :func:`sample_rows` reads data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from pyiceberg.exceptions import NoSuchNamespaceError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.manifest import ManifestContent
from pyiceberg.table import FileScanTask
from pyiceberg.types import ListType, MapType, NestedField, StructType

from lakehouse.errors import LakehouseError, SnapshotNotFoundError, TableNotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.manifest import DataFile, ManifestEntry, ManifestFile
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items`` ``offset`` .. ``offset + len(items)`` of ``total``."""

    items: list[T]
    offset: int
    limit: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


def page_of(items: Sequence[T], offset: int, limit: int) -> Page[T]:
    """The page of ``items`` starting at ``offset`` (clamped to the list)."""
    offset = max(0, min(offset, max(len(items) - 1, 0)))
    return Page(list(items[offset : offset + limit]), offset, limit, len(items))


def namespaces(catalog: Catalog) -> list[str]:
    """Every top-level namespace, sorted."""
    return sorted(".".join(ns) for ns in catalog.list_namespaces())


def table_names(catalog: Catalog, namespace: str, contains: str = "") -> list[str]:
    """Names (without the namespace) of the namespace's tables, sorted, optionally
    only those containing ``contains`` (case-insensitive). One catalog request;
    no table is loaded. TableNotFoundError for an unknown namespace."""
    try:
        names = sorted(ident[-1] for ident in catalog.list_tables(namespace))
    except NoSuchNamespaceError as exc:
        raise TableNotFoundError(
            f"Namespace {namespace} does not exist.",
            hint=f"Namespaces: {', '.join(namespaces(catalog)) or 'none yet'}.",
        ) from exc
    needle = contains.strip().lower()
    return [name for name in names if needle in name.lower()] if needle else names


@dataclass(frozen=True)
class FieldRow:
    """One column or nested field; ``path`` is dotted (``address.city``, ``tags.element``)."""

    path: str
    depth: int
    field_id: int
    type: str
    required: bool
    doc: str


def schema_rows(schema: Schema) -> list[FieldRow]:
    """Every field of ``schema``, nested ones after their parent, depth-first."""
    return list(_walk(schema.fields, "", 0))


def _walk(fields: Sequence[NestedField], prefix: str, depth: int) -> Iterator[FieldRow]:
    for field in fields:
        path = f"{prefix}{field.name}"
        kind = field.field_type
        shown = _type_name(kind)
        yield FieldRow(path, depth, field.field_id, shown, field.required, field.doc or "")
        yield from _walk(_children(kind), f"{path}.", depth + 1)


def _children(kind: object) -> list[NestedField]:
    if isinstance(kind, StructType):
        return list(kind.fields)
    if isinstance(kind, ListType):
        return [kind.element_field]
    if isinstance(kind, MapType):
        return [kind.key_field, kind.value_field]
    return []


def _type_name(kind: object) -> str:
    """Primitive types in full; nested ones by kind (their fields are rows of their own)."""
    if isinstance(kind, StructType):
        return "struct"
    if isinstance(kind, ListType):
        return "list"
    if isinstance(kind, MapType):
        return "map"
    return str(kind)


@dataclass(frozen=True)
class PartitionRow:
    """One partition field: ``source`` column, ``transform`` (identity, day, bucket[16])."""

    name: str
    source: str
    transform: str
    field_id: int


def partition_rows(table: Table) -> list[PartitionRow]:
    """The current partition spec's fields (empty when unpartitioned)."""
    schema = table.schema()
    rows = []
    for field in table.spec().fields:
        source = schema.find_column_name(field.source_id) or f"#{field.source_id}"
        rows.append(PartitionRow(field.name, source, str(field.transform), field.field_id))
    return rows


@dataclass(frozen=True)
class SnapshotChange:
    """What one snapshot changed, from its summary (metadata only, nothing counted).

    ``deleted_records`` are rows removed by rewriting data files; a merge-on-read
    delete instead adds ``added_position_deletes`` (one per row) or
    ``added_equality_deletes`` (one per key, which may match many rows).
    ``total_records`` is the rows stored in data files after it (delete files not
    applied); ``was_current`` is False for a snapshot no reader saw (the first
    half of a delete-then-append overwrite).

    A count is None when the summary does not say it. Writers that keep the
    ``total-*`` counts (pyiceberg, Iceberg's Java library) leave out a change of
    zero, so there a missing count is 0; a summary without totals (DuckDB's)
    says nothing of what it leaves out, so there it is unknown, never 0.
    """

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    was_current: bool
    added_records: int | None
    deleted_records: int | None
    total_records: int | None
    added_data_files: int | None
    removed_data_files: int | None
    added_delete_files: int | None
    removed_delete_files: int | None
    added_position_deletes: int | None
    added_equality_deletes: int | None
    added_bytes: int | None
    removed_bytes: int | None


def snapshot_changes(table: Table) -> list[SnapshotChange]:
    """Every snapshot the metadata keeps, oldest first, with what it changed."""
    from lakehouse.lake.catalog import _current_states  # the rule `history` follows

    current = {entry.snapshot_id for entry in _current_states(table)}
    snapshots = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    return [_change(snap, snap.snapshot_id in current) for snap in snapshots]


def _change(snap: Snapshot, was_current: bool) -> SnapshotChange:
    summary = snap.summary.additional_properties if snap.summary else {}

    keeps_totals = any(key.startswith("total-") for key in summary)

    def number(key: str) -> int | None:
        if key in summary:
            return int(summary[key])
        return 0 if keeps_totals else None

    return SnapshotChange(
        snapshot_id=snap.snapshot_id, parent_id=snap.parent_snapshot_id,
        committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC),
        operation=str(snap.summary.operation.value) if snap.summary else "",
        was_current=was_current, added_records=number("added-records"),
        deleted_records=number("deleted-records"),
        total_records=int(summary["total-records"]) if "total-records" in summary else None,
        added_data_files=number("added-data-files"),
        removed_data_files=number("deleted-data-files"),
        added_delete_files=number("added-delete-files"),
        removed_delete_files=number("removed-delete-files"),
        added_position_deletes=number("added-position-deletes"),
        added_equality_deletes=number("added-equality-deletes"),
        added_bytes=number("added-files-size"), removed_bytes=number("removed-files-size"),
    )  # fmt: skip


def snapshot_of(table: Table, snapshot_id: int | None) -> Snapshot | None:
    """The snapshot ``snapshot_id`` (the current one for None; None for an empty
    table). SnapshotNotFoundError when the table has no such snapshot."""
    if snapshot_id is None:
        return table.current_snapshot()
    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot is None:
        name = ".".join(table.name())
        raise SnapshotNotFoundError(
            f"Table {name} has no snapshot {snapshot_id}.",
            hint=f"See its snapshots with `lakehouse history {name}` (expired ones are gone).",
        )
    return snapshot


@dataclass(frozen=True)
class DataFileRow:
    """A live file of a snapshot: ``content`` is data, position deletes or equality deletes."""

    path: str
    content: str
    file_format: str
    records: int
    size_bytes: int
    partition: str


# Manifests read at once while looking for the first rows of a sample.
MANIFEST_BATCH = 8
CONTENT_NAMES = {0: "data", 1: "position deletes", 2: "equality deletes"}


def data_files(
    table: Table, snapshot: Snapshot | None, offset: int, limit: int
) -> Page[DataFileRow]:
    """The live data and delete files of ``snapshot``, a page at a time.

    The total comes from the manifest list's file counts; only the manifests
    holding the page are read (in parallel).
    """
    if snapshot is None:
        return Page([], 0, limit, 0)
    manifests = snapshot.manifests(table.io)
    counts = [_live_count(table, m) for m in manifests]
    total = sum(counts)
    offset = max(0, min(offset, max(total - 1, 0)))
    wanted, start = [], 0  # (manifest, entries to skip in it)
    for manifest, count in zip(manifests, counts, strict=True):
        if start + count > offset and start < offset + limit:
            wanted.append((manifest, max(0, offset - start)))
        start += count
    rows: list[DataFileRow] = []
    for (_, skip), entries in zip(wanted, _entries(table, [m for m, _ in wanted]), strict=True):
        rows += [_file_row(table, e.data_file) for e in entries[skip : skip + limit - len(rows)]]
    return Page(rows, offset, limit, total)


def _entries(table: Table, manifests: list[ManifestFile]) -> list[list[ManifestEntry]]:
    """The live entries of each manifest, read concurrently (one S3 GET each)."""
    from pyiceberg.utils.concurrent import ExecutorFactory

    def read(manifest: ManifestFile) -> list[ManifestEntry]:
        return manifest.fetch_manifest_entry(table.io, discard_deleted=True)

    return list(ExecutorFactory.get_or_create().map(read, manifests))


def _live_count(table: Table, manifest: ManifestFile) -> int:
    """Live (added + existing) files of a manifest, read from it when the list lacks counts."""
    added, existing = manifest.added_files_count, manifest.existing_files_count
    if added is None or existing is None:
        return len(manifest.fetch_manifest_entry(table.io, discard_deleted=True))
    return added + existing


def _file_row(table: Table, data_file: DataFile) -> DataFileRow:
    content = int(data_file.content)
    return DataFileRow(
        path=data_file.file_path,
        content=CONTENT_NAMES.get(content, str(content)),
        file_format=str(data_file.file_format.value),
        records=int(data_file.record_count),
        size_bytes=int(data_file.file_size_in_bytes),
        partition=_partition_text(table, data_file),
    )


def _partition_text(table: Table, data_file: DataFile) -> str:
    """``ts_day=2026-01-02`` as the spec the file was written with spells it."""
    spec = table.specs().get(data_file.spec_id)
    if spec is None or not spec.fields:
        return ""
    types = spec.partition_type(table.schema()).fields
    parts = []
    for position, field in enumerate(spec.fields):
        kind = types[position].field_type
        value = field.transform.to_human_string(kind, value=data_file.partition[position])
        parts.append(f"{field.name}={value}")
    return ", ".join(parts)


def sample_rows(table: Table, snapshot: Snapshot | None, limit: int = 20) -> pa.Table:
    """Up to ``limit`` rows a reader of ``snapshot`` sees (delete files applied),
    in file order, in the snapshot's schema.

    Without delete files only the first data files holding ``limit`` rows are
    read (a table of 1,000 small commits has 1,000 manifests: planning a whole
    scan would read them all). With delete files the scan is planned in full so
    they are applied; LakehouseError when pyiceberg cannot apply them
    (equality deletes).
    """
    if snapshot is None:
        return table.schema().as_arrow().empty_table()
    try:
        return _read_sample(table, snapshot, limit)
    except OSError as exc:
        missing = _missing_address(exc)
        if missing is None:
            raise
        raise DataFileMissingError(table_name(table), missing) from exc


class DataFileMissingError(LakehouseError):
    """A data file the table's metadata lists is not in S3 (deleted outside lakehouse)."""

    def __init__(self, table: str, address: str) -> None:
        from lakehouse.engines.missing_files import MISSING_FILE_HINT, missing_file_reason

        self.table = table
        self.address = address
        reason = missing_file_reason(address, table)
        super().__init__(reason[0].upper() + reason[1:] + ".",
                         hint=MISSING_FILE_HINT.replace("TABLE", table))  # fmt: skip


def table_name(table: Table) -> str:
    """``ns.table`` of a loaded table."""
    return ".".join(table.name())


def _missing_address(exc: OSError) -> str | None:
    """The address of the missing file ``exc`` is about, or None if it is another error."""
    from lakehouse.engines.missing_files import missing_file

    text = str(exc)
    if not isinstance(exc, FileNotFoundError) and "NO_SUCH_KEY" not in text:
        return missing_file(text)
    # pyarrow names the file without its scheme: 'warehouse/ns/t/data/f.parquet'.
    found = re.search(r"(?:s3a?://)?[\w.%/=-]+\.(?:parquet|avro|orc)\b", text)
    if found is None:
        return None
    address = found.group(0)
    return address if "://" in address else f"s3://{address.lstrip('/')}"


def _read_sample(table: Table, snapshot: Snapshot, limit: int) -> pa.Table:
    scan = table.scan(snapshot_id=snapshot.snapshot_id, limit=limit)
    manifests = snapshot.manifests(table.io)
    if not any(m.content == ManifestContent.DELETES and _live_count(table, m) for m in manifests):
        from pyiceberg.io.pyarrow import ArrowScan

        tasks = _first_files(table, manifests, limit)
        reader = ArrowScan(table.metadata, table.io, scan.projection(), AlwaysTrue(), limit=limit)
        return reader.to_table(tasks)
    try:
        return scan.to_arrow()
    except ValueError as exc:
        if "equality" not in str(exc).lower():
            raise
        name = ".".join(table.name())
        raise LakehouseError(
            f"Rows of {name} at snapshot {snapshot.snapshot_id} cannot be shown here: "
            "it has equality delete files, which pyiceberg does not apply.",
            hint=f"Query it with Trino or Spark: lakehouse query --engine trino "
            f"'SELECT * FROM {name} LIMIT {limit}'.",
        ) from exc


def _first_files(table: Table, manifests: list[ManifestFile], rows: int) -> list[FileScanTask]:
    """Scan tasks of the first data files that hold at least ``rows`` rows; manifests
    are read a batch at a time, concurrently, until they do."""
    data = [m for m in manifests if m.content == ManifestContent.DATA]
    tasks, held = [], 0
    for start in range(0, len(data), MANIFEST_BATCH):
        for entries in _entries(table, data[start : start + MANIFEST_BATCH]):
            for entry in entries:
                tasks.append(FileScanTask(entry.data_file))
                held += entry.data_file.record_count
                if held >= rows:
                    return tasks
    return tasks
