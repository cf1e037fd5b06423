"""What a merge-on-read writer keeps between its commits to one table.

Data and delete files never change once written, so what was read of them, or
written into them, stays true while they are live: the positions each delete
file removes, the key columns of data files, and the rows of small data files
this writer wrote (``lakehouse.lake.row_deltas`` uses them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask
from pyiceberg.table.metadata import TableMetadata

# Key columns cached for at most this many bytes (beyond: read from storage again).
KEY_CACHE_BYTES = 256 * 2**20
# Rows of files this writer wrote kept for compaction: at most this many bytes in all.
WRITTEN_ROWS_BYTES = 16 * 2**20


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
        if len(found) == 1:
            return found[0]  # written sorted and distinct (position_delete_files)
        return np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)

    def _read(self, io: FileIO, delete_file: DataFile) -> dict[str, np.ndarray]:
        from pyiceberg.io.pyarrow import _read_deletes

        if delete_file.file_path not in self.by_delete_file:
            positions = _read_deletes(io, delete_file)
            self.by_delete_file[delete_file.file_path] = {
                path: np.unique(np.asarray(array.to_numpy(), dtype=np.int64))
                for path, array in positions.items()
            }
        return self.by_delete_file[delete_file.file_path]

    def remember(self, delete_file: str, hits: Sequence[tuple[DataFile, np.ndarray]]) -> None:
        """What a delete file just written holds, so that it is never read back."""
        self.by_delete_file[delete_file] = {f.file_path: np.unique(p) for f, p in hits}

    def keep_only(self, delete_files: Iterable[str]) -> None:
        live = set(delete_files)
        self.by_delete_file = {p: v for p, v in self.by_delete_file.items() if p in live}


@dataclass
class KeyColumns:
    """The key columns of data files, as stored (deletes not applied, so row ``i`` is
    position ``i``), read once per file and kept up to ``max_bytes``."""

    max_bytes: int = KEY_CACHE_BYTES
    by_data_file: dict[str, pa.Table] = field(default_factory=dict)

    def of(self, io: FileIO, metadata: TableMetadata, projection: Schema,
           data_file: DataFile) -> pa.Table:  # fmt: skip
        path = data_file.file_path
        cached = self.by_data_file.get(path)
        if cached is not None and cached.column_names == projection.column_names:
            return cached
        read = ArrowScan(metadata, io, projection, AlwaysTrue()).to_table([FileScanTask(data_file)])
        if self.bytes() + read.nbytes <= self.max_bytes:
            self.by_data_file[path] = read
        return read

    def remember(self, path: str, keys: pa.Table) -> None:
        """The key columns of a file this writer has just written (``keys``: its rows'
        keys, in file order): the next commit need not read them back from S3."""
        if self.bytes() + keys.nbytes <= self.max_bytes:
            self.by_data_file[path] = keys

    def bytes(self) -> int:
        return sum(t.nbytes for t in list(self.by_data_file.values()))

    def keep_only(self, data_files: Iterable[str]) -> None:
        live = set(data_files)
        self.by_data_file = {p: t for p, t in self.by_data_file.items() if p in live}


@dataclass
class WrittenRows:
    """The rows of small data files this writer wrote, as written (row ``i`` is
    position ``i``), kept up to ``max_bytes``: size-tiered compaction folds exactly
    those files soon after, and then need not read them back from S3."""

    max_bytes: int = WRITTEN_ROWS_BYTES
    by_data_file: dict[str, pa.Table] = field(default_factory=dict)

    def remember(self, path: str, rows: pa.Table) -> None:
        if self.bytes() + rows.nbytes <= self.max_bytes:
            self.by_data_file[path] = rows

    def of(self, path: str, schema: pa.Schema) -> pa.Table | None:
        """The rows of ``path`` if kept and still of the table's ``schema`` (None: read
        the file, which projects it onto an evolved schema)."""
        rows = self.by_data_file.get(path)
        return rows if rows is not None and rows.schema.equals(schema) else None

    def bytes(self) -> int:
        return sum(t.nbytes for t in list(self.by_data_file.values()))

    def keep_only(self, data_files: Iterable[str]) -> None:
        live = set(data_files)
        self.by_data_file = {p: t for p, t in self.by_data_file.items() if p in live}


@dataclass
class MergeState:
    """What a writer keeps between its merge-on-read commits to one table."""

    deleted: DeletedPositions = field(default_factory=DeletedPositions)
    keys: KeyColumns = field(default_factory=KeyColumns)
    rows: WrittenRows = field(default_factory=WrittenRows)

    def keep_only(self, tasks: Sequence[FileScanTask]) -> None:
        """Forget files the current snapshot (planned as ``tasks``) no longer has."""
        self.keys.keep_only(t.file.file_path for t in tasks)
        self.rows.keep_only(t.file.file_path for t in tasks)
        self.deleted.keep_only(d.file_path for t in tasks for d in t.delete_files)
