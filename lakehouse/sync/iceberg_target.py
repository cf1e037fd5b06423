"""Writing change batches into Iceberg tables, with the checkpoint in the same commit.

Each batch is one Iceberg transaction per table: schema evolution, then one
keyed rewrite (``lakehouse.lake.rewrite``, for any number of key columns) that
removes every touched row and adds the rows' latest images in one snapshot. The
source position the batch reaches is a snapshot summary property of that same
commit, so data and checkpoint can never disagree: after a crash, changes at or
before the recorded position are skipped, later ones are applied again.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError, ValidationError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Snapshot

from lakehouse.errors import IngestError, SyncError, SyncStoppedError
from lakehouse.lake.attempt import CONFLICTS, committing
from lakehouse.lake.ingest import conform
from lakehouse.lake.merge_state import MergeState
from lakehouse.lake.orphans import ORPHAN_MIN_AGE_S, remove_orphans
from lakehouse.lake.rewrite import replace_all, rewrite_by_key
from lakehouse.lake.row_deltas import merge_by_key
from lakehouse.sync.iceberg_expire import (
    ReachableFiles,
    Retention,
    delete_expired,
    stage_expiry,
)
from lakehouse.sync.model import TableBatch

log = logging.getLogger("lakehouse.sync")
PROPERTY_PREFIX = "lakehouse.sync."
# Changes rewrite whole data files (copy-on-write): smaller files, written in key
# order by the snapshot, keep an update to a few rows from rewriting the table.
# Each commit writes a new metadata file; only the newest 100 are kept.
TABLE_PROPERTIES = {
    "write.target-file-size-bytes": str(4 * 2**20),
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
}
# How a change batch is written (the setting sync_iceberg_write_mode).
MERGE_ON_READ = "merge-on-read"
COPY_ON_WRITE = "copy-on-write"
# How far back through a table's history to look for this integration's checkpoint
# (other writers' commits may sit on top of it).
MAX_HISTORY = 10_000
# How often each table is swept for files no snapshot references (left by a writer
# killed between writing its files and committing them).
ORPHAN_SWEEP_SECONDS = 10 * 60.0


@contextmanager
def quiet_empty_deletes() -> Iterator[None]:
    """A keyed delete that matches nothing (a batch of inserts) is normal here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        yield


class IcebergTarget:
    """The tables of one integration in the lake."""

    def __init__(self, catalog: Catalog, integration: str, keep_snapshots: int | None = None,
                 generation: str | None = None, retention: Retention | None = None,
                 write_mode: str = MERGE_ON_READ) -> None:  # fmt: skip
        """``generation``: only checkpoints of this generation count (None: any, to inspect).
        ``write_mode``: MERGE_ON_READ or COPY_ON_WRITE (see ``_write``).
        ``retention``: the history each table keeps (``keep_snapshots``: only the newest
        that many, whatever their age)."""
        self.catalog = catalog
        self.integration = integration
        self.property = PROPERTY_PREFIX + integration
        # The integration's generation, committed next to each position.
        self.generation_property = self.property + ".generation"
        self.generation = generation
        if retention is None:
            kept = keep_snapshots
            retention = Retention() if kept is None else Retention(snapshots=kept, max_age_s=0)
        self.retention = retention
        # Only this process writes this integration's tables (one runner per
        # integration), so tables and positions stay valid between its commits;
        # any failure forgets them, and the retry starts from the catalog.
        self._tables: dict[str, Table] = {}
        self._positions: dict[str, str | None] = {}
        self._reachable: dict[str, ReachableFiles] = {}
        self.write_mode = write_mode
        self._merge_states: dict[str, MergeState] = {}  # per table uuid
        self.orphan_sweep_every_s = ORPHAN_SWEEP_SECONDS
        self.orphan_min_age_s = ORPHAN_MIN_AGE_S
        self._swept: dict[str, float] = {}  # per table uuid: monotonic time of the last sweep

    def checkpoint(self, table_name: str) -> str | None:
        """The position of the newest commit this integration made to the table, as the
        catalog has it now."""
        self._positions[table_name] = position = self._read_checkpoint(table_name)
        return position

    def position(self, table_name: str) -> str | None:
        """``checkpoint``, remembered between this target's own commits."""
        if table_name not in self._positions:
            return self.checkpoint(table_name)
        return self._positions[table_name]

    def forget(self, table_name: str) -> None:
        self._tables.pop(table_name, None)
        self._positions.pop(table_name, None)

    def _read_checkpoint(self, table_name: str) -> str | None:
        if not self.catalog.table_exists(table_name):
            return None
        table = self._tables[table_name] = self.catalog.load_table(table_name)
        snapshot = table.current_snapshot()
        for _ in range(MAX_HISTORY):
            if snapshot is None:
                return None
            summary = snapshot.summary
            position = summary.get(self.property) if summary else None
            if summary and position is not None:
                # A position another generation stored means nothing to this one.
                stored = summary.get(self.generation_property, "")
                mine = self.generation is None or stored == self.generation
                return str(position) if mine else None
            if snapshot.parent_snapshot_id is None:
                return None
            snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id)
        return None

    def apply(self, table_name: str, batch: TableBatch, position: str) -> None:
        """Upsert and delete ``batch`` by key in one commit that records ``position``."""
        if batch.empty:
            return
        table = self._table(table_name, batch)
        properties = self._checkpoint_properties(position)
        with self._committing(table_name), committing(table) as tx:
            self._evolve(tx, table_name, batch.schema)
            self._write(tx, table, batch, properties)
            expired = stage_expiry(tx, table, self.retention)  # in the same commit
        self._positions[table_name] = position
        try:
            self._after_commit(table, expired)
        except Exception as exc:  # the batch is committed; what is left, the sweep removes
            log.warning("deleting the expired files of %s failed: %s", table_name, exc)
            self.forget(table_name)

    def _checkpoint_properties(self, position: str) -> dict[str, str]:
        return {self.property: position, self.generation_property: self.generation or ""}

    def _write(
        self, tx: Transaction, table: Table, batch: TableBatch, properties: dict[str, str]
    ) -> None:
        """Merge-on-read writes position delete files and the new row images, with a
        bounded share of compaction (``lakehouse.lake.row_deltas``); copy-on-write
        rewrites every file holding a touched key."""
        rows = None
        if batch.upserts:
            rows = conform(batch.upsert_table(), schema_to_pyarrow(tx.table_metadata.schema()))
        if batch.truncated:  # the rows after the truncation are the whole table: one snapshot
            replace_all(tx, table.io, [rows] if rows is not None else [], properties)
            return
        if self.write_mode == MERGE_ON_READ and tx.table_metadata.format_version == 2:
            tasks = list(tx._scan().plan_files())
            state = self._merge_states.setdefault(table.metadata.table_uuid.hex, MergeState())
            merge_by_key(tx, table.io, batch.key, batch.key_table(), rows, properties, state, tasks)
            return
        rewrite_by_key(tx, table.io, batch.key, batch.key_table(), rows, properties)

    def _after_commit(self, table: Table, expired: list[Snapshot]) -> None:
        """Delete the files of the snapshots the commit expired (``stage_expiry``), and
        sweep orphans when due.

        A sync commits about once a second, and every commit copies the whole
        table metadata: without expiry each commit gets slower, for ever. The
        files only expired snapshots reached are deleted with them, so the
        table's disk use stays flat under a steady load.
        """
        reachable = self._reachable.setdefault(table.metadata.table_uuid.hex, ReachableFiles())
        current = table.current_snapshot()
        if current is not None:  # read now, while its files are in the FileIO's cache:
            reachable.of(table, [current])  # an expiry then reads no manifest list
        if expired:
            delete_expired(table, expired, reachable)
        self._sweep_orphans_when_due(table, reachable)

    def _sweep_orphans_when_due(self, table: Table, reachable: ReachableFiles) -> None:
        """Every ``orphan_sweep_every_s`` (the first one that long after this target's
        first commit to the table, not in the pass after a restart): delete the files
        no snapshot reaches, older than ``orphan_min_age_s``."""
        key, now = table.metadata.table_uuid.hex, time.monotonic()
        last = self._swept.setdefault(key, now)
        if now - last < self.orphan_sweep_every_s or (last == now and self.orphan_sweep_every_s):
            return
        self._swept[key] = now
        referenced = reachable.of(table, list(table.metadata.snapshots))
        removed = remove_orphans(table, referenced, self.orphan_min_age_s)
        if removed:
            log.info("%s: removed %d file(s) no snapshot references", table.name(), len(removed))

    def replace(self, table_name: str, key: tuple[str, ...], schema: pa.Schema,
                chunks: Iterable[pa.Table], position: str) -> int:  # fmt: skip
        """The initial snapshot: the table's whole content in one commit."""
        batch = TableBatch(table_name, key, schema)
        table = self._table(table_name, batch)
        properties = self._checkpoint_properties(position)
        with self._committing(table_name), committing(table) as tx:
            self._evolve(tx, table_name, schema)
            target = schema_to_pyarrow(tx.table_metadata.schema())
            fitted = (conform(chunk, target) for chunk in chunks)
            rows = replace_all(tx, table.io, fitted, properties)  # one snapshot, never empty
        self._positions[table_name] = position
        return rows

    @contextmanager
    def _committing(self, table_name: str) -> Iterator[None]:
        try:
            with _committing(table_name):
                yield
        except BaseException:
            self.forget(table_name)
            raise

    def _table(self, table_name: str, batch: TableBatch) -> Table:
        if table_name in self._tables:
            return self._tables[table_name]
        if self.catalog.table_exists(table_name):
            table = self._tables[table_name] = self.catalog.load_table(table_name)
            return table
        self.catalog.create_namespace_if_not_exists(table_name.split(".")[0])
        try:
            # One request, key included: a create transaction and its commit took
            # three catalog round trips per table (a third of a snapshot's time).
            table = self.catalog.create_table(
                table_name, schema=keyed_schema(batch.schema, batch.key),
                properties=TABLE_PROPERTIES,
            )  # fmt: skip
        except (CommitFailedException, TableAlreadyExistsError):
            # Created meanwhile by another writer: write into that table.
            table = self.catalog.load_table(table_name)
        self._tables[table_name] = table
        return table

    def _evolve(self, tx: Transaction, table_name: str, schema: pa.Schema) -> None:
        current = schema_to_pyarrow(tx.table_metadata.schema())
        if all(f.name in current.names and current.field(f.name).type == f.type for f in schema):
            return  # nothing to evolve: skip a metadata update on every batch
        try:
            with tx.update_schema() as update:
                update.union_by_name(schema)
        except (ValidationError, ValueError) as exc:
            raise SyncStoppedError(
                f"The source's schema change cannot be applied to {table_name}: {exc}",
                hint="Revert the column change in the source, or start the integration over "
                f"(drops and re-snapshots its targets): `lakehouse sync reset {self.integration}`.",
            ) from exc


def keyed_schema(schema: pa.Schema, key: tuple[str, ...]) -> Schema:
    """``schema`` as an Iceberg schema whose identifier fields are ``key``."""
    fresh = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(schema))
    return Schema(*fresh.fields, identifier_field_ids=[fresh.find_field(k).field_id for k in key])


@contextmanager
def _committing(table_name: str) -> Iterator[None]:
    """Commit conflicts become retryable sync errors, rows that do not fit stop the sync."""
    try:
        with quiet_empty_deletes():
            yield
    except CONFLICTS as exc:  # its files are gone (attempt.committing); the pass re-plans
        raise SyncError(f"Concurrent commit to {table_name}; will retry: {exc}") from exc
    except (IngestError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SyncStoppedError(
            f"Rows do not fit {table_name}: {exc}",
            hint="Check the column types of the source against the table.",
        ) from exc
