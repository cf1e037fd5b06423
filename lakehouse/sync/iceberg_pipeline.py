"""iceberg -> opensearch: follow a table's snapshots into an index.

The checkpoint is the last snapshot id applied. From there, the snapshots up
to the current one are read through their manifests:

* rows of data files added in that range and still live are (re)indexed;
* keys of data files removed in that range (copy-on-write deletes and
  overwrites rewrite files) whose rows did not come back are deleted.

* rows at positions that position delete files added in that range name
  (merge-on-read: the sync's own, Spark's, Trino's) are deleted unless their
  key is live again.

Rows are read with their position deletes applied. With delete files about, a
key of a removed file or a deleted position may still live in an untouched
file, so such keys are deleted only when no live row holds them. When the
range holds equality deletes, or the checkpoint is no longer an ancestor
(rollback, expired snapshots), or a file the range names is gone, the index is
brought in line with a full comparison instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.manifest import DataFile, DataFileContent, ManifestEntryStatus
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot

from lakehouse.errors import SyncStoppedError, SyncWaitingError
from lakehouse.sync.deadletters import DeadLetterTable
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import TableBatch, document_id
from lakehouse.sync.opensearch_target import OpenSearchTarget
from lakehouse.sync.postgres_pipeline import PassResult
from lakehouse.sync.writers import OpenSearchWriter


class RangeChanges:
    """Data files added and removed, and position delete files added or removed,
    between two snapshots."""

    def __init__(self) -> None:
        self.added: dict[str, DataFile] = {}
        self.removed: dict[str, DataFile] = {}
        self.position_deletes: dict[str, DataFile] = {}
        self.deletes_removed = False
        self.has_equality_deletes = False

    def collect(self, table: Table, snapshot: Snapshot) -> None:
        for manifest in snapshot.manifests(table.io):
            if manifest.added_snapshot_id != snapshot.snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                if entry.snapshot_id != snapshot.snapshot_id:
                    continue
                data_file = entry.data_file
                if data_file.content == DataFileContent.EQUALITY_DELETES:
                    self.has_equality_deletes = True
                elif data_file.content == DataFileContent.POSITION_DELETES:
                    if entry.status == ManifestEntryStatus.ADDED:
                        self.position_deletes[data_file.file_path] = data_file
                    elif entry.status == ManifestEntryStatus.DELETED:
                        self.deletes_removed = True
                elif entry.status == ManifestEntryStatus.ADDED:
                    self.added[data_file.file_path] = data_file
                elif entry.status == ManifestEntryStatus.DELETED:
                    self.removed[data_file.file_path] = data_file


def snapshots_after(table: Table, checkpoint: int, current: Snapshot) -> list[Snapshot] | None:
    """Snapshots after ``checkpoint`` up to ``current``, oldest first; None if not an ancestor."""
    chain = []
    snapshot: Snapshot | None = current
    while snapshot is not None and snapshot.snapshot_id != checkpoint:
        chain.append(snapshot)
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return list(reversed(chain)) if snapshot is not None else None


class IcebergToOpenSearch:
    def __init__(self, integration: Integration, catalog: Catalog, writer: OpenSearchWriter,
                 dead_letters: DeadLetterTable) -> None:  # fmt: skip
        self.integration = integration
        self.catalog = catalog
        self.writer = writer
        self.target: OpenSearchTarget = writer.target
        self.dead_letters = dead_letters
        self.on_state: Any = None
        # Commit time (epoch seconds) of the oldest snapshot seen waiting and not yet applied.
        self.pending_since: float | None = None

    def close(self) -> None:
        self.target.client.close()

    def look_at_source(self) -> None:
        """Nothing to do: what waits depends on the checkpoint, which lives in the target."""

    def run_once(self) -> PassResult:
        started = time.monotonic()
        result = PassResult()
        for name in self.integration.tables:
            self._sync_table(name, result)
        result.seconds = time.monotonic() - started
        self.pending_since = None
        return result

    def _sync_table(self, name: str, result: PassResult) -> None:
        try:
            table = self.catalog.load_table(name)
        except NoSuchTableError:
            raise SyncWaitingError(
                f"Integration {self.integration.name}: table {name} does not exist.",
                hint="Create it first, or fix `tables`.",
            ) from None
        current = table.current_snapshot()
        checkpoint = self.writer.position(name)
        if current is None or checkpoint == str(current.snapshot_id):
            return
        key = self._key(table)
        schema = schema_to_pyarrow(table.schema())
        chain = snapshots_after(table, int(checkpoint), current) if checkpoint else None
        changes = RangeChanges()
        oldest = (chain or [current])[0].timestamp_ms / 1000
        self.pending_since = min(self.pending_since or oldest, oldest)
        for snapshot in chain or []:
            changes.collect(table, snapshot)
        self._state("streaming")
        batch = None
        if chain is not None and not changes.has_equality_deletes:
            try:
                batch = self._incremental(table, name, key, schema, changes)
            except OSError:  # a file of the range is gone (expired meanwhile)
                batch = None
        if batch is None:
            batch = self._full_comparison(table, name, key, schema)
        refused = self.writer.write(name, batch, str(current.snapshot_id))
        self.dead_letters.record(refused)
        self.writer.commit([name], str(current.snapshot_id))
        result.changes += max(batch.changes - len(refused), 0)  # only what the index took
        result.dead_letters += len(refused)
        result.position = f"{name}@{current.snapshot_id}"
        result.lag_seconds = max(time.time() - current.timestamp_ms / 1000, 0.0)

    def _state(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)

    def _key(self, table: Table) -> tuple[str, ...]:
        key = self.integration.key_of(table.schema())
        if not key:
            raise SyncStoppedError(
                f"{self.integration.name}: the table has no identifier fields, so rows cannot "
                "be matched to documents.",
                hint="Set `key` on the integration, or identifier fields on the table.",
            )
        return key

    def _read(self, table: Table, tasks: Iterable[FileScanTask],
              columns: tuple[str, ...] | None = None) -> pa.Table:  # fmt: skip
        """The rows of ``tasks`` (their delete files applied), all or only ``columns``."""
        tasks = list(tasks)
        schema = table.schema() if columns is None else table.schema().select(*columns)
        scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
        return scan.to_table(tasks) if tasks else schema_to_pyarrow(schema).empty_table()

    def _incremental(self, table: Table, name: str, key: tuple[str, ...], schema: pa.Schema,
                     changes: RangeChanges) -> TableBatch:  # fmt: skip
        live = {task.file.file_path: task for task in table.scan().plan_files()}
        batch = TableBatch(name, key, schema)
        for row in self._read(table, [live[p] for p in changes.added if p in live]).to_pylist():
            batch.upsert(row)
        gone = self._read(table, [FileScanTask(f) for f in changes.removed.values()], key)
        gone = pa.concat_tables([gone, self._deleted_rows(table, changes, key, live)])
        with_deletes = (changes.position_deletes or changes.deletes_removed
                        or any(task.delete_files for task in live.values()))  # fmt: skip
        if with_deletes and gone.num_rows:  # the key may live on in an untouched file
            gone = gone.join(
                self._read(table, live.values(), key), list(key), join_type="left anti"
            )
        for row in gone.to_pylist():
            if tuple(row[k] for k in key) not in batch.upserts:
                batch.delete(row)
        return batch

    def _deleted_rows(self, table: Table, changes: RangeChanges, key: tuple[str, ...],
                      live: dict[str, FileScanTask]) -> pa.Table:  # fmt: skip
        """The keys of the rows the range's position delete files delete (``live``: the
        current snapshot's tasks by data file path)."""
        from pyiceberg.io.pyarrow import _read_deletes

        positions: dict[str, list[pa.ChunkedArray]] = {}
        for delete_file in changes.position_deletes.values():
            for path, array in _read_deletes(table.io, delete_file).items():
                positions.setdefault(path, []).append(array)
        parts = [schema_to_pyarrow(table.schema().select(*key)).empty_table()]
        files = {**{path: task.file for path, task in live.items()}, **changes.removed}
        for path, arrays in positions.items():
            if path not in files:  # removed before the range: its rows were handled then
                continue
            rows = self._read(table, [FileScanTask(files[path])], key)
            taken = pa.concat_arrays([c for a in arrays for c in a.chunks])
            parts.append(rows.take(pc.unique(taken.cast(pa.int64()))))
        return pa.concat_tables(parts)

    def _full_comparison(self, table: Table, name: str, key: tuple[str, ...],
                         schema: pa.Schema) -> TableBatch:  # fmt: skip
        batch = TableBatch(name, key, schema)
        for row in table.scan().to_arrow().to_pylist():
            batch.upsert(row)
        present = {document_id(k) for k in batch.upserts}
        index = self.writer.target_name(name)
        # Documents of rows the table no longer has, deleted by id before the batch is
        # written (deleting again after a crash is harmless).
        stale = [doc_id for doc_id in self.target.document_ids(index) if doc_id not in present]
        self.target.delete_documents(index, stale)
        return batch
