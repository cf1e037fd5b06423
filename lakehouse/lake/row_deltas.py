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
file once, ``KeyColumns`` reads each data file's key columns once: files never
change once written). ``RowDelta`` commits it all as one snapshot.

Delete files and dead rows pile up, so each commit also does a bounded share
of compaction (``plan_compaction``), never all of it at once: a commit that
stalled to rewrite the table made every change behind it wait (p95 lag 12 s
measured at 1,000 changes/s, bench/results/sync_lag.json, session 6):

* once ``COMPACT_DELETE_FILES`` delete files are live, they are folded into
  one per partition (their positions are cached: one small file written);
* data files with ``DEAD_SHARE`` of their rows deleted, and small files once
  enough of about one size have piled up (``size_tiers``), are rewritten
  without their deleted rows, at most ``REWRITE_BYTES`` of them per commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from lakehouse.lake.merge_state import MergeState
from lakehouse.lake.size_tiers import tier_group

PATH_FIELD_ID = 2147483546  # the spec's reserved field ids of a position delete file
POS_FIELD_ID = 2147483545
DELETE_SCHEMA = pa.schema([
    pa.field("file_path", pa.string(), nullable=False,
             metadata={b"PARQUET:field_id": str(PATH_FIELD_ID).encode()}),
    pa.field("pos", pa.int64(), nullable=False,
             metadata={b"PARQUET:field_id": str(POS_FIELD_ID).encode()}),
])  # fmt: skip
# Each reader applies every live delete file: at this many they are folded into one.
COMPACT_DELETE_FILES = 8
# A data file with this share of its rows deleted is rewritten without them.
DEAD_SHARE = 0.5
# Files under min(target size / 4, SMALL_FILE_BYTES) are small: folded by size tier
# (lakehouse.lake.size_tiers).
SMALL_FILE_BYTES = 16 * 2**20
# Parquet bytes one commit rewrites at most (one file, whatever its size): compaction
# is spread over commits so that none stalls.
REWRITE_BYTES = 8 * 2**20
# Rows of files this writer wrote kept for compaction: files of the two lowest size
# tiers (under 256 KiB), which fold every 8 and 64 commits; larger ones are read back.
WRITTEN_ROWS_FILE_BYTES = 256 * 2**10
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
        return self._process_manifests(self._write(added, removed) + existing)

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
            # A dropped delete file is DELETED only: kept as EXISTING too, it stayed
            # live for ever (readers still applied it).
            dropped = {e.data_file.file_path for e in gone}
            kept = [_with_status(e, ManifestEntryStatus.EXISTING, e.snapshot_id)
                    for e in entries if e.data_file.file_path not in dropped]  # fmt: skip
            existing += self._write(kept)
        missing = removing - {e.data_file.file_path for e in removed}
        if missing:  # planned on another snapshot: the caller re-plans
            from pyiceberg.exceptions import CommitFailedException

            raise CommitFailedException(f"files to remove are gone: {sorted(missing)[:3]}")
        return existing, removed

    def _write(self, *entry_lists: list[ManifestEntry]) -> list[ManifestFile]:
        """Each list of entries in one manifest per (partition spec, content); the
        manifests are written in parallel (each is a PUT that waits on S3)."""
        default = self._transaction.table_metadata.default_spec_id
        groups: list[tuple[int, bool, list[ManifestEntry]]] = []
        for entries in entry_lists:
            grouped: dict[tuple[int, bool], list[ManifestEntry]] = defaultdict(list)
            for entry in entries:
                is_data = entry.data_file.content == DataFileContent.DATA
                spec_id = getattr(entry.data_file, "_spec_id", None)  # unset on files just written
                grouped[(default if spec_id is None else spec_id, is_data)].append(entry)
            groups += [(spec_id, is_data, group) for (spec_id, is_data), group in grouped.items()]
        if len(groups) <= 1:
            return [self._write_one(*group) for group in groups]
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            return list(pool.map(lambda group: self._write_one(*group), groups))

    def _write_one(self, spec_id: int, is_data: bool, entries: list[ManifestEntry]) -> ManifestFile:
        with self._writer(spec_id, is_data) as writer:
            for entry in entries:
                writer.add_entry(entry)
        return writer.to_manifest_file()

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
class MergeResult:
    """What one keyed merge-on-read commit did (counts of rows and files)."""

    files_scanned: int = 0  # data files whose key columns were read
    rows_deleted: int = 0  # live rows marked deleted by the new delete files
    rows_written: int = 0  # new row images appended
    delete_files: int = 0  # position delete files written
    files_compacted: int = 0  # data files rewritten without their deleted rows
    deletes_folded: bool = False  # every live delete file folded into one per partition


@dataclass
class Compaction:
    """The share of compaction one commit does: data files to rewrite, and whether
    the live delete files are folded into one per partition."""

    rewrite: list[FileScanTask]
    fold: bool


def plan_compaction(tasks: Sequence[FileScanTask], dead_rows: dict[str, int],
                    target_bytes: int, delete_files: int | None = None) -> Compaction:  # fmt: skip
    """``tasks``: the current snapshot's plan; ``dead_rows``: deleted rows per data file
    path (with this commit's); ``target_bytes``: the table's target file size;
    ``delete_files``: live delete files (None: those ``tasks`` apply; the
    snapshot also counts those whose data files were all rewritten since).

    The files most deleted first (at least ``DEAD_SHARE``), up to ``REWRITE_BYTES``
    in all (at least one file); then, in what the budget leaves, a full size tier
    of small files (``size_tiers.tier_group``)."""
    applied = len({d.file_path for t in tasks for d in t.delete_files})
    fold = max(applied, delete_files or 0) >= COMPACT_DELETE_FILES

    def share(task: FileScanTask) -> float:
        return dead_rows.get(task.file.file_path, 0) / max(task.file.record_count, 1)

    dead = sorted((t for t in tasks if share(t) >= DEAD_SHARE), key=share, reverse=True)
    chosen: list[FileScanTask] = []
    size = 0
    for task in dead:
        if chosen and size + task.file.file_size_in_bytes > REWRITE_BYTES:
            return Compaction(rewrite=chosen, fold=fold)
        chosen.append(task)
        size += task.file.file_size_in_bytes
    limit = min(target_bytes // 4, SMALL_FILE_BYTES)
    small = [t for t in tasks if t.file.file_size_in_bytes < limit and share(t) < DEAD_SHARE]
    chosen += tier_group(small, _file_size, REWRITE_BYTES - size)
    return Compaction(rewrite=chosen, fold=fold)


def _file_size(task: FileScanTask) -> int:
    return int(task.file.file_size_in_bytes)


def merge_by_key(
    tx: Transaction,
    io: FileIO,
    key: Sequence[str],
    touched: pa.Table | None,
    upserts: pa.Table | None,
    properties: dict[str, str],
    state: MergeState,
    tasks: list[FileScanTask],
) -> MergeResult:
    """Mark the live rows whose ``key`` is in ``touched`` or ``upserts`` deleted, and
    append ``upserts``, with this commit's share of compaction (``plan_compaction``);
    staged on ``tx`` as one snapshot carrying ``properties``.

    ``tasks`` is the plan of ``tx``'s snapshot; ``state`` what the caller keeps
    between commits to this table. The other arguments are those of
    ``rewrite_by_key`` (same IngestError for null or duplicate keys). The table
    must be format v2 (position deletes do not exist in v1).
    """
    from lakehouse.lake.rewrite import KeyPruner

    metadata = tx.table_metadata
    state.keep_only(tasks)
    columns = list(key)
    target = schema_to_pyarrow(metadata.schema())
    key_set = build_key_set(columns, {c: target.field(c).type for c in columns}, touched, upserts)
    pruner = KeyPruner(metadata, key_set)
    candidates = [task for task in tasks if pruner.may_hold(task.file)]
    projection = metadata.schema().select(*columns)

    def live_positions(task: FileScanTask) -> np.ndarray:
        found = present(key_set, state.keys.of(io, metadata, projection, task.file)).rows
        return np.setdiff1d(found, state.deleted.of(io, task)) if task.delete_files else found

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        new = {t.file.file_path: p for t, p in zip(candidates, pool.map(live_positions, candidates),
                                                   strict=True) if len(p)}  # fmt: skip
    result = MergeResult(files_scanned=len(candidates), rows_deleted=sum(map(len, new.values())))
    producer = _MergeCommit(tx, io, metadata, properties, state, columns)
    producer.stage(tasks, new, upserts, result)
    return result


class _MergeCommit:
    """The files of one merge-on-read commit: compacted data files, delete files and
    new row images, staged as one ``RowDelta``."""

    def __init__(self, tx: Transaction, io: FileIO, metadata: TableMetadata,
                 properties: dict[str, str], state: MergeState, key: list[str]) -> None:  # fmt: skip
        self.tx, self.io, self.metadata, self.properties = tx, io, metadata, properties
        self.state, self.key = state, key
        self.target = schema_to_pyarrow(metadata.schema())

    def dead(self, task: FileScanTask, new: dict[str, np.ndarray]) -> np.ndarray:
        """Positions of ``task``'s file deleted, before or by this commit."""
        before = self.state.deleted.of(self.io, task) if task.delete_files else None
        added = new.get(task.file.file_path)
        if before is None or not len(before):
            return added if added is not None else np.empty(0, np.int64)
        return before if added is None else np.union1d(before, added)

    def stage(self, tasks: list[FileScanTask], new: dict[str, np.ndarray],
              upserts: pa.Table | None, result: MergeResult) -> None:  # fmt: skip
        dead = {t.file.file_path: self.dead(t, new) for t in tasks
                if t.delete_files or t.file.file_path in new}  # fmt: skip
        target_bytes = int(
            self.metadata.properties.get("write.target-file-size-bytes", 512 * 2**20)
        )
        snapshot = self.metadata.current_snapshot()
        summary = snapshot.summary if snapshot is not None else None
        live = int(summary.get("total-delete-files") or 0) if summary is not None else None
        plan = plan_compaction(tasks, {p: len(v) for p, v in dead.items()}, target_bytes, live)
        producer = RowDelta(self.tx, self.properties, drop_deletes=plan.fold)
        rewritten = {t.file.file_path for t in plan.rewrite}
        by_path = {t.file.file_path: t.file for t in tasks}
        kept = dead if plan.fold else new  # folded: every deleted position, in one file
        hits = [(by_path[p], v) for p, v in sorted(kept.items()) if p not in rewritten and len(v)]
        # Each file is a PUT that waits on S3: the delete files are written while the
        # data files are, instead of after them.
        with ThreadPoolExecutor(max_workers=1) as pool:
            deletes = pool.submit(position_delete_files, self.metadata, self.io, hits)
            if plan.rewrite:
                self._rewrite(producer, plan.rewrite, dead)
            if upserts is not None and upserts.num_rows:
                result.rows_written = upserts.num_rows
                self._append(producer, upserts.select(self.target.names).cast(self.target))
            for delete_file in deletes.result():
                self.state.deleted.remember(delete_file.file_path,
                                            [h for h in hits if h[0].spec_id == delete_file.spec_id
                                             and h[0].partition == delete_file.partition])  # fmt: skip
                producer.append_data_file(delete_file)
                result.delete_files += 1
        result.files_compacted, result.deletes_folded = len(plan.rewrite), plan.fold
        if producer._added_data_files or producer._deleted_data_files or plan.fold:
            producer.commit()

    def _rewrite(self, producer: RowDelta, tasks: list[FileScanTask],
                 dead: dict[str, np.ndarray]) -> None:  # fmt: skip
        """``tasks``' files written again without their dead rows."""
        scan = ArrowScan(self.metadata, self.io, self.metadata.schema(), AlwaysTrue())
        parts = []
        for task in tasks:
            rows = self.state.rows.of(task.file.file_path, self.target)
            if rows is None:
                rows = scan.to_table([FileScanTask(task.file)])
            keep = np.ones(rows.num_rows, dtype=bool)
            keep[dead.get(task.file.file_path, np.empty(0, np.int64))] = False
            parts.append(rows.filter(pa.array(keep)).cast(self.target))
            producer.delete_data_file(task.file)
        self._append(producer, pa.concat_tables(parts), one_file=True)

    def _append(self, producer: RowDelta, rows: pa.Table, one_file: bool = False) -> None:
        """``rows`` written as new data files, sorted by key; ``one_file``: a fold, one
        file (``rewrite._data_files``)."""
        from lakehouse.lake.rewrite import data_files

        if not rows.num_rows:
            return
        rows = rows.sort_by([(c, "ascending") for c in self.key])
        written = data_files(self.metadata, rows, self.io, uuid.uuid4(), one_file)
        for data_file in written:
            producer.append_data_file(data_file)
        # One file of an unpartitioned table holds the rows in this order (row i is
        # position i): its keys are known without reading the file back. Other
        # layouts are read back when a later commit touches them.
        if (len(written) == 1 and written[0].record_count == rows.num_rows
                and self.metadata.spec().is_unpartitioned()):  # fmt: skip
            projection = self.metadata.schema().select(*self.key)  # in the schema's order
            keys = rows.select(projection.column_names).cast(schema_to_pyarrow(projection))
            keys = keys.combine_chunks()
            self.state.keys.remember(written[0].file_path, keys)
            if written[0].file_size_in_bytes < WRITTEN_ROWS_FILE_BYTES:
                self.state.rows.remember(written[0].file_path, rows.combine_chunks())


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
