"""Keyed merge-on-read: position delete files instead of rewritten data files.

Copy-on-write (``lakehouse.lake.rewrite``) rewrites every data file that holds a
touched key. A sync's updates land all over the key range, so every commit
rewrote nearly the whole table. Here a commit writes only:

* the new images of upserted keys, as new data files (sorted by key), and
* one Iceberg v2 position delete file per partition, naming the (data file,
  row position) of every live row whose key was touched.

Finding those positions reads only the key columns of the files whose key
bounds and partition may hold a touched key, without applying deletes (so row
``i`` of the read is position ``i`` of the file); positions already deleted by
an earlier delete file are left out (``DeletedPositions`` reads each delete
file once). ``RowDelta`` commits it all as one snapshot. Delete files pile up,
so ``needs_compaction`` tells the caller when to rewrite the files that have
deletes and drop every delete file (``rewrite_by_key(compact=True)``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    ManifestWriterV2,
)
from pyiceberg.table import FileScanTask, Transaction
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _SnapshotProducer

from lakehouse.lake.commit import _KeyedSnapshot, _merged
from lakehouse.lake.keys import build_key_set, present

PATH_FIELD_ID = 2147483546  # the spec's reserved field ids of a position delete file
POS_FIELD_ID = 2147483545
DELETE_SCHEMA = pa.schema([
    pa.field("file_path", pa.string(), nullable=False,
             metadata={b"PARQUET:field_id": str(PATH_FIELD_ID).encode()}),
    pa.field("pos", pa.int64(), nullable=False,
             metadata={b"PARQUET:field_id": str(POS_FIELD_ID).encode()}),
])  # fmt: skip
# Compaction is due once a table has this many live delete files, or once this
# share of its stored rows is deleted: each reader applies every delete file.
COMPACT_DELETE_FILES = 16
COMPACT_DELETED_SHARE = 0.25
READ_THREADS = 4


class DeleteManifestWriter(ManifestWriterV2):
    """A v2 manifest of delete files (pyiceberg 0.12 writes data manifests only)."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


class RowDelta(_KeyedSnapshot, _SnapshotProducer["RowDelta"]):
    """One snapshot that adds data and position delete files and removes data and
    delete files; manifests are written per content (data or deletes)."""

    def __init__(self, tx: Transaction, properties: dict[str, str],
                 drop_deletes: bool = False) -> None:  # fmt: skip
        """``drop_deletes``: also remove every live delete file (a compaction)."""
        super().__init__(Operation.OVERWRITE, tx, tx._table.io, snapshot_properties=properties)
        self.drop_deletes = drop_deletes
        self._plan: tuple[list[ManifestFile], list[ManifestEntry]] | None = None

    def _existing_manifests(self) -> list[ManifestFile]:
        return self._planned()[0]

    def _deleted_entries(self) -> list[ManifestEntry]:
        return self._planned()[1]

    def _process_manifests(self, manifests: list[ManifestFile]) -> list[ManifestFile]:
        return _merged(self, manifests)  # type: ignore[arg-type]

    def _manifests(self) -> list[ManifestFile]:
        existing, removed = self._planned()
        added = [
            ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=self._snapshot_id,
                                    data_file=data_file)
            for data_file in self._added_data_files
        ]  # fmt: skip
        return self._process_manifests(self._write(added) + self._write(removed) + existing)

    def _planned(self) -> tuple[list[ManifestFile], list[ManifestEntry]]:
        """The parent's manifests without the removed files, and the removed files'
        entries (status DELETED)."""
        if self._plan is None:
            self._plan = self._plan_removals()
        return self._plan

    def _plan_removals(self) -> tuple[list[ManifestFile], list[ManifestEntry]]:
        parent = self._transaction.table_metadata.snapshot_by_name(self._target_branch)
        removing = {f.file_path for f in self._deleted_data_files}
        existing: list[ManifestFile] = []
        removed: list[ManifestEntry] = []
        for manifest in parent.manifests(self._io) if parent else []:
            if not (manifest.has_added_files() or manifest.has_existing_files()):
                continue  # only entries of files removed earlier
            is_deletes = manifest.content == ManifestContent.DELETES
            if not removing and not (is_deletes and self.drop_deletes):
                existing.append(manifest)
                continue
            entries = manifest.fetch_manifest_entry(self._io, discard_deleted=True)
            gone = [e for e in entries
                    if e.data_file.file_path in removing or (is_deletes and self.drop_deletes)]  # fmt: skip
            self._deleted_data_files.update(e.data_file for e in gone)
            if not gone:
                existing.append(manifest)
                continue
            removed += [
                _with_status(e, ManifestEntryStatus.DELETED, self._snapshot_id) for e in gone
            ]
            kept = [_with_status(e, ManifestEntryStatus.EXISTING, e.snapshot_id)
                    for e in entries if e.data_file.file_path not in removing]  # fmt: skip
            existing += self._write(kept)
        missing = removing - {e.data_file.file_path for e in removed}
        if missing:  # planned on another snapshot: the caller re-plans
            from pyiceberg.exceptions import CommitFailedException

            raise CommitFailedException(f"files to remove are gone: {sorted(missing)[:3]}")
        return existing, removed

    def _write(self, entries: list[ManifestEntry]) -> list[ManifestFile]:
        """``entries`` in one manifest per (partition spec, content)."""
        groups: dict[tuple[int, bool], list[ManifestEntry]] = defaultdict(list)
        for entry in entries:
            is_data = entry.data_file.content == DataFileContent.DATA
            spec_id = getattr(entry.data_file, "_spec_id", None)  # unset on files just written
            default = self._transaction.table_metadata.default_spec_id
            groups[(default if spec_id is None else spec_id, is_data)].append(entry)
        manifests = []
        for (spec_id, is_data), group in groups.items():
            with self._writer(spec_id, is_data) as writer:
                for entry in group:
                    writer.add_entry(entry)
            manifests.append(writer.to_manifest_file())
        return manifests

    def _writer(self, spec_id: int, is_data: bool) -> ManifestWriter:
        kind = ManifestWriterV2 if is_data else DeleteManifestWriter
        return kind(self.spec(spec_id), self.schema(), self.new_manifest_output(),
                    self._snapshot_id, self._compression)  # fmt: skip


def _with_status(
    entry: ManifestEntry, status: ManifestEntryStatus, snapshot_id: int | None
) -> ManifestEntry:
    return ManifestEntry.from_args(
        status=status, snapshot_id=snapshot_id, sequence_number=entry.sequence_number,
        file_sequence_number=entry.file_sequence_number, data_file=entry.data_file,
    )  # fmt: skip


@dataclass
class DeletedPositions:
    """The positions each delete file removes, per data file path (delete files
    never change once written, so each is read once)."""

    by_delete_file: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def of(self, io: FileIO, task: FileScanTask) -> np.ndarray:
        """Sorted distinct positions of ``task``'s data file its delete files remove."""
        path = task.file.file_path
        parts = [self._read(io, d).get(path) for d in task.delete_files]
        found = [p for p in parts if p is not None]
        return np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)

    def _read(self, io: FileIO, delete_file: DataFile) -> dict[str, np.ndarray]:
        from pyiceberg.io.pyarrow import _read_deletes

        if delete_file.file_path not in self.by_delete_file:
            positions = _read_deletes(io, delete_file)
            self.by_delete_file[delete_file.file_path] = {
                path: np.asarray(array.to_numpy(), dtype=np.int64)
                for path, array in positions.items()
            }
        return self.by_delete_file[delete_file.file_path]

    def keep_only(self, delete_files: Iterable[str]) -> None:
        live = set(delete_files)
        self.by_delete_file = {p: v for p, v in self.by_delete_file.items() if p in live}


@dataclass
class MergeResult:
    """What one keyed merge-on-read commit did (counts of rows and files)."""

    files_scanned: int = 0  # data files whose key columns were read
    rows_deleted: int = 0  # live rows marked deleted by the new delete files
    rows_written: int = 0  # new row images appended
    delete_files: int = 0  # position delete files written


def needs_compaction(tasks: Sequence[FileScanTask]) -> bool:
    """True when the live delete files of ``tasks`` (a plan of the current snapshot)
    are many, or delete a large share of the stored rows."""
    delete_files = {d.file_path: d for task in tasks for d in task.delete_files}
    if len(delete_files) >= COMPACT_DELETE_FILES:
        return True
    stored = sum(task.file.record_count for task in tasks)
    deleted = sum(d.record_count for d in delete_files.values())
    return stored > 0 and deleted >= COMPACT_DELETED_SHARE * stored


def merge_by_key(
    tx: Transaction,
    io: FileIO,
    key: Sequence[str],
    touched: pa.Table | None,
    upserts: pa.Table | None,
    properties: dict[str, str],
    deleted: DeletedPositions,
    tasks: list[FileScanTask],
) -> MergeResult:
    """Mark the live rows whose ``key`` is in ``touched`` or ``upserts`` deleted, and
    append ``upserts``; staged on ``tx`` as one snapshot carrying ``properties``.

    ``tasks`` is the plan of ``tx``'s snapshot; the arguments are those of
    ``rewrite_by_key`` (same IngestError for null or duplicate keys). The table
    must be format v2 (position deletes do not exist in v1).
    """
    from lakehouse.lake.rewrite import KeyPruner, data_files

    metadata = tx.table_metadata
    target = schema_to_pyarrow(metadata.schema())
    columns = list(key)
    key_set = build_key_set(columns, {c: target.field(c).type for c in columns}, touched, upserts)
    pruner = KeyPruner(metadata, key_set)
    candidates = [task for task in tasks if pruner.may_hold(task.file)]
    result = MergeResult(files_scanned=len(candidates))
    projection = metadata.schema().select(*columns)

    def live_positions(task: FileScanTask) -> np.ndarray:
        raw = ArrowScan(metadata, io, projection, AlwaysTrue()).to_table([FileScanTask(task.file)])
        found = present(key_set, raw).rows
        return np.setdiff1d(found, deleted.of(io, task)) if task.delete_files else found

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        hits = [(t.file, p) for t, p in zip(candidates, pool.map(live_positions, candidates),
                                           strict=True) if len(p)]  # fmt: skip
    producer = RowDelta(tx, properties)
    for delete_file in position_delete_files(metadata, io, hits):
        producer.append_data_file(delete_file)
        result.delete_files += 1
    result.rows_deleted = sum(len(p) for _, p in hits)
    if upserts is not None and upserts.num_rows:
        images = upserts.select(target.names).cast(target)
        images = images.sort_by([(c, "ascending") for c in columns])
        for data_file in data_files(metadata, images, io, uuid.uuid4()):
            producer.append_data_file(data_file)
        result.rows_written = images.num_rows
    if producer._added_data_files:
        producer.commit()
    return result


def position_delete_files(
    metadata: TableMetadata, io: FileIO, hits: list[tuple[DataFile, np.ndarray]]
) -> list[DataFile]:
    """One position delete file per partition of the ``hits`` (data file, sorted
    positions of its rows to delete); written, not committed."""
    groups: dict[tuple[int, Any], list[tuple[DataFile, np.ndarray]]] = defaultdict(list)
    for data_file, positions in hits:
        groups[(data_file.spec_id, data_file.partition)].append((data_file, positions))
    return [_delete_file(metadata, io, spec_id, partition, group)
            for (spec_id, partition), group in groups.items()]  # fmt: skip


def _delete_file(metadata: TableMetadata, io: FileIO, spec_id: int, partition: Any,
                 group: list[tuple[DataFile, np.ndarray]]) -> DataFile:  # fmt: skip
    group = sorted(group, key=lambda hit: hit[0].file_path)  # the spec's order: path, then pos
    paths = [hit[0].file_path for hit in group]
    rows = pa.table(
        [pa.array(np.repeat(np.array(paths, dtype=object), [len(p) for _, p in group]), pa.string()),
         pa.array(np.concatenate([p for _, p in group]), pa.int64())],
        schema=DELETE_SCHEMA,
    )  # fmt: skip
    provider = load_location_provider(metadata.location, metadata.properties)
    location = provider.new_data_location(f"{uuid.uuid4()}-deletes.parquet")
    output = io.new_output(location)
    with output.create(overwrite=False) as stream:
        pq.write_table(rows, stream, compression="zstd")
    delete_file = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES, file_path=location,
        file_format=FileFormat.PARQUET, partition=partition, record_count=rows.num_rows,
        file_size_in_bytes=len(output),
        # Path bounds let readers apply the file only to the data files it names.
        lower_bounds={PATH_FIELD_ID: paths[0].encode()},
        upper_bounds={PATH_FIELD_ID: paths[-1].encode()},
        equality_ids=None, key_metadata=None, sort_order_id=None,
    )  # fmt: skip
    delete_file.spec_id = spec_id  # not a field of from_args
    return delete_file
