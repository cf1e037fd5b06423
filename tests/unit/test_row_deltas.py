"""Position delete files of the merge-on-read writer: their layout, what they
delete, and when compaction is due (local files, no servers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import PyArrowFileIO, _read_deletes
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.typedef import Record
from pyiceberg.types import LongType, NestedField

from lakehouse.lake.row_deltas import (
    COMPACT_DELETE_FILES,
    PATH_FIELD_ID,
    POS_FIELD_ID,
    DeletedPositions,
    needs_compaction,
    position_delete_files,
)


def data_file(
    path: str, rows: int = 100, content: DataFileContent = DataFileContent.DATA
) -> DataFile:
    made = DataFile.from_args(content=content, file_path=path, file_format=FileFormat.PARQUET,
                              partition=Record(), record_count=rows, file_size_in_bytes=1)  # fmt: skip
    made.spec_id = 0
    return made


def metadata(tmp_path: Path):  # type: ignore[no-untyped-def]
    schema = Schema(NestedField(1, "id", LongType(), required=True))
    return new_table_metadata(schema, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER,
                              f"file://{tmp_path}", properties={})  # fmt: skip


def test_one_delete_file_per_partition_sorted_by_path_then_position(tmp_path: Path) -> None:
    io = PyArrowFileIO()
    b, a = data_file("s3://w/t/data/b.parquet"), data_file("s3://w/t/data/a.parquet")
    hits = [(b, np.array([0, 7])), (a, np.array([3, 4, 9]))]
    [written] = position_delete_files(metadata(tmp_path), io, hits)
    assert written.content == DataFileContent.POSITION_DELETES
    assert written.record_count == 5
    assert written.lower_bounds[PATH_FIELD_ID] == a.file_path.encode()
    assert written.upper_bounds[PATH_FIELD_ID] == b.file_path.encode()
    rows = pq.read_table(written.file_path.removeprefix("file://"))
    assert rows.column("file_path").to_pylist() == [a.file_path] * 3 + [b.file_path] * 2
    assert rows.column("pos").to_pylist() == [3, 4, 9, 0, 7]
    ids = [f.metadata[b"PARQUET:field_id"] for f in rows.schema]
    assert ids == [str(PATH_FIELD_ID).encode(), str(POS_FIELD_ID).encode()]
    # pyiceberg's own reader of delete files agrees.
    read = _read_deletes(io, written)
    assert read[a.file_path].to_pylist() == [3, 4, 9]


def test_deleted_positions_union_the_files_of_one_data_file_only(tmp_path: Path) -> None:
    io, meta = PyArrowFileIO(), metadata(tmp_path)
    a, b = data_file("s3://w/a.parquet"), data_file("s3://w/b.parquet")
    [first] = position_delete_files(meta, io, [(a, np.array([1, 5])), (b, np.array([2]))])
    [second] = position_delete_files(meta, io, [(a, np.array([5, 8]))])
    deleted = DeletedPositions()
    task = FileScanTask(a, delete_files={first, second})
    assert deleted.of(io, task).tolist() == [1, 5, 8]
    assert deleted.of(io, FileScanTask(b, delete_files={first})).tolist() == [2]
    assert deleted.of(io, FileScanTask(b)).tolist() == []
    deleted.keep_only([second.file_path])
    assert set(deleted.by_delete_file) == {second.file_path}


def test_compaction_is_due_on_many_delete_files_or_many_deleted_rows() -> None:
    def deletes(n: int, rows: int = 1) -> set[DataFile]:
        return {data_file(f"s3://w/d{i}.parquet", rows, DataFileContent.POSITION_DELETES)
                for i in range(n)}  # fmt: skip

    few = deletes(COMPACT_DELETE_FILES - 1)
    assert not needs_compaction([FileScanTask(data_file("s3://w/a.parquet", 1000), few)])
    many = deletes(COMPACT_DELETE_FILES)
    assert needs_compaction([FileScanTask(data_file("s3://w/a.parquet", 1000), many)])
    big = deletes(1, rows=300)
    assert needs_compaction([FileScanTask(data_file("s3://w/a.parquet", 1000), big)])
    assert not needs_compaction([FileScanTask(data_file("s3://w/a.parquet", 1000))])
