"""Position delete files of the merge-on-read writer: their layout, what they
delete, and which share of compaction a commit does (local files, no servers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
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

from lakehouse.lake.merge_state import DeletedPositions, MergeState
from lakehouse.lake.row_deltas import (
    COMPACT_DELETE_FILES,
    PATH_FIELD_ID,
    POS_FIELD_ID,
    REWRITE_BYTES,
    SMALL_FILE_BYTES,
    plan_compaction,
    position_delete_files,
)
from lakehouse.lake.size_tiers import TIER_BASE, TIER_FILES, size_tier


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


def deletes(n: int, rows: int = 1) -> set[DataFile]:
    return {data_file(f"s3://w/d{i}.parquet", rows, DataFileContent.POSITION_DELETES)
            for i in range(n)}  # fmt: skip


def sized(path: str, rows: int, size: int) -> DataFile:
    made = DataFile.from_args(content=DataFileContent.DATA, file_path=path,
                              file_format=FileFormat.PARQUET, partition=Record(),
                              record_count=rows, file_size_in_bytes=size)  # fmt: skip
    made.spec_id = 0
    return made


TARGET = 4 * 2**20
BIG = 4 * 2**20  # a file at the target size: never small


def test_delete_files_are_folded_once_they_pile_up() -> None:
    few = [FileScanTask(sized("s3://w/a.parquet", 1000, BIG), deletes(COMPACT_DELETE_FILES - 1))]
    assert not plan_compaction(few, {}, TARGET).fold
    many = [FileScanTask(sized("s3://w/a.parquet", 1000, BIG), deletes(COMPACT_DELETE_FILES))]
    assert plan_compaction(many, {}, TARGET).fold


def test_the_most_deleted_files_are_rewritten_first_within_the_byte_budget() -> None:
    files = [sized(f"s3://w/{i}.parquet", 1000, BIG) for i in range(5)]
    tasks = [FileScanTask(f) for f in files]
    dead = {files[0].file_path: 400, files[1].file_path: 900, files[2].file_path: 600,
            files[3].file_path: 550}  # fmt: skip
    plan = plan_compaction(tasks, dead, TARGET)
    # 40% dead is not enough; of the rest, the budget takes the two most deleted.
    assert REWRITE_BYTES == 2 * BIG
    assert [t.file.file_path for t in plan.rewrite] == [files[1].file_path, files[2].file_path]
    # One file larger than the budget is still rewritten (alone).
    huge = [FileScanTask(sized("s3://w/huge.parquet", 1000, 3 * REWRITE_BYTES))]
    assert len(plan_compaction(huge, {"s3://w/huge.parquet": 500}, TARGET).rewrite) == 1


def test_small_files_of_one_size_tier_are_folded_once_enough_piled_up() -> None:
    small = [FileScanTask(sized(f"s3://w/s{i}.parquet", 10, 1000 + i)) for i in range(TIER_FILES)]
    big = [FileScanTask(sized("s3://w/big.parquet", 1000, BIG))]
    assert plan_compaction(small[:-1] + big, {}, TARGET).rewrite == []
    chosen = plan_compaction(small + big, {}, TARGET).rewrite
    assert [t.file.file_path for t in chosen] == [t.file.file_path for t in small]
    # Small files of different sizes fold nothing while each tier is short of TIER_FILES.
    mixed = [FileScanTask(sized(f"s3://w/m{i}-{j}.parquet", 10, TIER_BASE * 4**i - j - 1))
             for i in range(3) for j in range(TIER_FILES - 1)]  # fmt: skip
    assert {size_tier(t.file.file_size_in_bytes) for t in mixed} == {0, 1, 2}
    assert plan_compaction(mixed, {}, TARGET).rewrite == []
    full = [*mixed, FileScanTask(sized("s3://w/one-more.parquet", 10, TIER_BASE * 4 - 10))]
    assert {
        size_tier(t.file.file_size_in_bytes) for t in plan_compaction(full, {}, TARGET).rewrite
    } == {1}


def test_a_sync_of_small_commits_rewrites_each_byte_a_bounded_number_of_times() -> None:
    """3,000 commits of one 20 KiB file each, with the folds plan_compaction asks for.
    Folding the smallest files into one growing file rewrote that whole file at
    every fold: 17x the bytes added here, and growing with the table's age."""
    target, added, rewritten = 512 * 2**20, 0, 0
    files: list[FileScanTask] = []
    for commit in range(3000):
        plan = plan_compaction(files, {}, target)
        folded = sum(t.file.file_size_in_bytes for t in plan.rewrite)
        gone = {t.file.file_path for t in plan.rewrite}
        files = [t for t in files if t.file.file_path not in gone]
        if plan.rewrite:
            files.append(FileScanTask(sized(f"s3://w/f{commit}.parquet", 1, folded)))
        files.append(FileScanTask(sized(f"s3://w/n{commit}.parquet", 1, 20 * 2**10)))
        added, rewritten = added + 20 * 2**10, rewritten + folded
        small = [t for t in files if t.file.file_size_in_bytes < SMALL_FILE_BYTES]
        tiers = size_tier(SMALL_FILE_BYTES) + 1
        assert len(small) <= tiers * (TIER_FILES + 1) + 1, commit
    assert sum(t.file.file_size_in_bytes for t in files) == added  # nothing lost or doubled
    # Each byte climbs each tier once: 20 KiB files reach REWRITE_BYTES in 4 folds.
    assert rewritten <= (size_tier(REWRITE_BYTES) + 1) * added, rewritten / added


def test_written_rows_are_used_only_while_the_table_schema_is_theirs() -> None:
    state = MergeState()
    rows = pa.table({"id": pa.array([1, 2], pa.int64())})
    state.rows.remember("s3://w/a.parquet", rows)
    assert state.rows.of("s3://w/a.parquet", rows.schema) is rows
    evolved = rows.schema.append(pa.field("added", pa.string()))
    assert state.rows.of("s3://w/a.parquet", evolved) is None  # read: projected onto it
    assert state.rows.of("s3://w/b.parquet", rows.schema) is None
    state.keep_only([FileScanTask(data_file("s3://w/b.parquet"))])
    assert state.rows.by_data_file == {}


def test_merge_state_forgets_files_the_snapshot_no_longer_has() -> None:
    state = MergeState()
    state.keys.by_data_file = {"s3://w/a.parquet": pa.table({"id": [1]}),
                               "s3://w/gone.parquet": pa.table({"id": [2]})}  # fmt: skip
    state.deleted.remember(
        "s3://w/gone-deletes.parquet", [(data_file("s3://w/a.parquet"), np.array([0]))]
    )
    state.keep_only([FileScanTask(data_file("s3://w/a.parquet"))])
    assert set(state.keys.by_data_file) == {"s3://w/a.parquet"}
    assert state.deleted.by_delete_file == {}
