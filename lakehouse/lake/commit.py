"""Commit machinery for a writer that commits every second, for hours.

pyiceberg's defaults suit an occasional batch job. A sync commits about once a
second per table, and three of those defaults then grow the cost of every
commit without bound:

* ``Transaction.table_metadata`` rebuilds and deep-copies the whole table
  metadata on every access, dozens of times per commit; the cost grows with
  the number of snapshots kept.
* Every commit adds a manifest and nothing merges them (merging exists only
  for ``merge_append``), so planning reads one more file per commit, for ever.
* Every commit adds a small data file of that second's inserts.

``LakeTransaction`` computes the metadata once per staged update, the
producers here merge manifests once ``MANIFEST_MERGE_COUNT`` have piled up,
and ``rewrite_by_key`` folds small files into the files it rewrites anyway.
Its snapshots also refuse pyiceberg's commit retry (see ``_KeyedSnapshot``):
a writer re-plans on the new table state instead (``retry_conflicts``), and
``committing`` removes the files of an attempt that did not land
(``lakehouse.lake.uncommitted``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import ManifestContent, ManifestFile
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import (
    _FastAppendFiles,
    _ManifestMergeManager,
    _OverwriteFiles,
    _SnapshotProducer,
)

# Planning reads every manifest: at most this many small ones before they merge.
MANIFEST_MERGE_COUNT = 4
MANIFEST_TARGET_BYTES = 8 * 2**20


class LakeTransaction(Transaction):
    """A transaction whose metadata view is computed once per staged update, and
    that never re-commits its staged files on top of another commit."""

    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self._view: tuple[TableMetadata, tuple[object, ...], TableMetadata] | None = None
        self.merged_away: list[str] = []

    def commit_transaction(self) -> Table:
        table = super().commit_transaction()
        # Manifests this commit wrote and then merged into another: referenced by
        # nothing (pyiceberg leaves them behind).
        for path in self.merged_away:
            with contextlib.suppress(OSError):  # an unreferenced leftover is never wrong
                table.io.delete(path)
        return table

    @property
    def table_metadata(self) -> TableMetadata:
        # Keyed by the objects themselves (not ids): a refresh or a rebuilt update
        # list after a commit retry gives new objects and so a new view.
        base, updates = self._table.metadata, self._updates
        view = self._view
        if view is None or view[0] is not base or view[1] is not updates:
            view = (base, updates, super().table_metadata)
            self._view = view
        return view[2]

    def _register_snapshot_producer(self, producer: _SnapshotProducer[Any]) -> None:
        # Unregistered, pyiceberg's commit fails at once on a conflict: no retry of
        # stale files (logged as "retrying" before the refusal below), no waiting.
        # The writer re-plans (attempt.retry_conflicts) and attempt.committing
        # removes every file written for the failed try.
        return

    def _rebuild_snapshot_updates(self) -> None:
        # pyiceberg would re-commit the same staged files on top of someone
        # else's commit; a keyed rewrite planned on the old snapshot could then
        # resurrect rows that commit removed, and a schema evolved meanwhile would
        # fail again. Fail instead: the writer re-plans (retry_conflicts).
        raise CommitFailedException("the table changed during the commit")


def _merged(
    producer: _SnapshotProducer[object], manifests: list[ManifestFile]
) -> list[ManifestFile]:
    data = [m for m in manifests if m.content == ManifestContent.DATA]
    deletes = [m for m in manifests if m.content != ManifestContent.DATA]
    merger = _ManifestMergeManager(
        target_size_bytes=MANIFEST_TARGET_BYTES,
        min_count_to_merge=MANIFEST_MERGE_COUNT,
        merge_enabled=True,
        snapshot_producer=producer,
    )
    merged = merger.merge_manifests(data)
    kept = {m.manifest_path for m in merged}
    written = set(producer._written_manifests)
    if isinstance(producer._transaction, LakeTransaction):
        producer._transaction.merged_away += [
            m.manifest_path for m in data if m.manifest_path in written - kept
        ]
    return merged + deletes


class _KeyedSnapshot:
    """A snapshot of a keyed rewrite: never re-committed on top of another commit.

    pyiceberg retries a failed commit by re-applying the same files to the new
    head. Planned on the old snapshot, a keyed rewrite could then resurrect rows
    the other commit removed, or keep a key twice: fail, and let the caller
    re-plan. The files of the failed try are removed by ``attempt.committing``.
    """

    def _refresh_for_retry(self) -> None:
        raise CommitFailedException("the table changed during the commit")


class MergingOverwrite(_KeyedSnapshot, _OverwriteFiles):
    """An overwrite snapshot that also merges small manifests."""

    def _process_manifests(self, manifests: list[ManifestFile]) -> list[ManifestFile]:
        return _merged(self, manifests)  # type: ignore[arg-type]


class MergingAppend(_KeyedSnapshot, _FastAppendFiles):
    """An append snapshot that also merges small manifests."""

    def _process_manifests(self, manifests: list[ManifestFile]) -> list[ManifestFile]:
        return _merged(self, manifests)  # type: ignore[arg-type]


def overwrite(tx: Transaction, properties: dict[str, str]) -> MergingOverwrite:
    return MergingOverwrite(Operation.OVERWRITE, tx, tx._table.io, snapshot_properties=properties)


def append(tx: Transaction, properties: dict[str, str]) -> MergingAppend:
    return MergingAppend(Operation.APPEND, tx, tx._table.io, snapshot_properties=properties)
