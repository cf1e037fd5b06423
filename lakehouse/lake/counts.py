"""Row counts that show what a reader sees.

A snapshot summary's ``total-records`` counts the rows stored in data files. A
Trino ``DELETE`` (merge-on-read) or a Spark delete in that mode adds position
delete files instead of rewriting data, so the stored count keeps the deleted
rows. ``total-records - total-position-deletes`` is not exact either: a delete
may target a file a later rewrite removed (it stays behind, applying to
nothing), or repeat a position. So with delete files present the count is
taken file by file: each data file's record count minus the distinct positions
its delete files (position deletes or deletion vectors) remove. Only delete
files are read, never data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot

SUMMARY = "snapshot summary"
COUNTED = "data file counts minus deleted positions"
UNCOUNTABLE = "unknown: equality deletes"


@dataclass(frozen=True)
class RowCount:
    """``rows`` a reader sees (None when it cannot be known) and how it was found."""

    rows: int | None
    method: str


@dataclass
class DeleteReader:
    """Reads each delete file once (a delete file applies to many snapshots)."""

    positions: dict[str, dict[str, pa.ChunkedArray]] = field(default_factory=dict)

    def deleted(self, table: Table, task: FileScanTask) -> int:
        """Distinct positions of ``task``'s data file that its delete files remove."""
        path, records = task.file.file_path, task.file.record_count
        arrays = [self._of(table, d).get(path) for d in task.delete_files]
        chunks = [c for arr in arrays if arr is not None for c in arr.chunks]
        if not chunks:
            return 0
        positions = np.concatenate([np.asarray(c.to_numpy(zero_copy_only=False)) for c in chunks])
        positions = positions[(positions >= 0) & (positions < records)]
        return int(np.unique(positions).size)

    def _of(self, table: Table, delete_file: DataFile) -> dict[str, pa.ChunkedArray]:
        from pyiceberg.io.pyarrow import _read_deletes  # heavy: only when there are deletes

        if delete_file.file_path not in self.positions:
            self.positions[delete_file.file_path] = _read_deletes(table.io, delete_file)
        return self.positions[delete_file.file_path]


def live_rows(
    table: Table, snapshot: Snapshot | None, reader: DeleteReader | None = None
) -> RowCount:
    """The rows a reader of ``snapshot`` sees: from its summary when it has no
    delete files, otherwise counted from its data and delete files."""
    if snapshot is None:
        return RowCount(0, SUMMARY)
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    if "total-records" in summary and _no_deletes(summary):
        return RowCount(int(summary["total-records"]), SUMMARY)
    try:
        tasks: Iterable[FileScanTask] = table.scan(snapshot_id=snapshot.snapshot_id).plan_files()
        tasks = list(tasks)
    except ValueError as exc:  # pyiceberg plans no equality deletes (Flink writes them)
        if "equality" in str(exc).lower():
            return RowCount(None, UNCOUNTABLE)
        raise
    reader = reader or DeleteReader()
    rows = sum(task.file.record_count - reader.deleted(table, task) for task in tasks)
    return RowCount(rows, COUNTED)


def _no_deletes(summary: dict[str, str]) -> bool:
    if "total-delete-files" in summary:
        return int(summary["total-delete-files"]) == 0
    deletes = ("total-position-deletes", "total-equality-deletes")
    return all(name in summary and int(summary[name]) == 0 for name in deletes)
