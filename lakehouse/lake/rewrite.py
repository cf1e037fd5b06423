"""Keyed copy-on-write that rewrites only the data files holding a touched key.

pyiceberg's ``overwrite(filter)`` reads every file whose statistics admit one
of the keys (with more than 200 keys, every file), in full, and commits a
delete and an append: with keys spread over the table that is the whole table
on every batch. Here the files' key bounds and then their key column alone
find the files that really hold a touched key; only those are rewritten,
together with the new row images, in one overwrite snapshot.

A sync adds a small file of inserts every second. Once ``SMALL_FILES`` of
them have piled up, they are folded into the rewrite: compaction as a side
effect of the commit, so a table never needs a separate maintenance job.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.table import FileScanTask, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.types import IntegerType, LongType, NestedField

from lakehouse.lake.commit import append, overwrite

READ_THREADS = 4
# Files under a quarter of the target size count as small; this many trigger compaction.
SMALL_FILES = 8
MAX_FILES_COMPACTED = 64


def rewrite_by_key(tx: Transaction, io: FileIO, key: str, touched: pa.Table,
                   upserts: pa.Table | None, properties: dict[str, str]) -> None:  # fmt: skip
    """Remove rows whose ``key`` is in ``touched``, add ``upserts``: one snapshot."""
    metadata = tx.table_metadata
    values = touched.column(key).combine_chunks()
    tasks = list(tx._scan().plan_files())
    field = metadata.schema().find_field(key)
    candidates = [task for task in tasks if _may_hold(field, task, values)]

    def holds_a_key(task: FileScanTask) -> bool:
        keys = ArrowScan(metadata, io, metadata.schema().select(key), AlwaysTrue()).to_table([task])
        return bool(pc.any(pc.is_in(keys.column(key), value_set=values)).as_py())

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        affected = [
            t for t, hit in zip(candidates, pool.map(holds_a_key, candidates), strict=True) if hit
        ]
        affected += _small_files(metadata, tasks, affected)
        kept = list(pool.map(lambda t: _without(metadata, io, t, key, values), affected))
    target = schema_to_pyarrow(metadata.schema())
    parts = [part.cast(target) for part in kept if part.num_rows]
    if upserts is not None and upserts.num_rows:
        parts.append(upserts.cast(target))
    # Key order keeps each file's key bounds narrow, so later batches touch fewer files.
    rows = pa.concat_tables(parts).sort_by(key) if parts else None
    new_files = list(_dataframe_to_data_files(metadata, rows, io)) if rows is not None else []
    if not affected and not new_files:
        return
    producer = overwrite(tx, properties) if affected else append(tx, properties)
    with producer:
        for task in affected:
            producer.delete_data_file(task.file)
        for data_file in new_files:
            producer.append_data_file(data_file)


def _may_hold(field: NestedField, task: FileScanTask, values: pa.Array) -> bool:
    """False only when the file's integer key bounds exclude every touched key."""
    lower = (task.file.lower_bounds or {}).get(field.field_id)
    upper = (task.file.upper_bounds or {}).get(field.field_id)
    if lower is None or upper is None or not isinstance(field.field_type, IntegerType | LongType):
        return True
    low, high = from_bytes(field.field_type, lower), from_bytes(field.field_type, upper)
    inside = pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high))
    return bool(pc.any(inside).as_py())


def _small_files(
    metadata: TableMetadata, tasks: list[FileScanTask], affected: list[FileScanTask]
) -> list[FileScanTask]:
    target = int(metadata.properties.get("write.target-file-size-bytes", 512 * 2**20))
    rewritten = {task.file.file_path for task in affected}
    small = [t for t in tasks if t.file.file_size_in_bytes < target // 4
             and t.file.file_path not in rewritten]  # fmt: skip
    return small[:MAX_FILES_COMPACTED] if len(small) >= SMALL_FILES else []


def _without(
    metadata: TableMetadata, io: FileIO, task: FileScanTask, key: str, values: pa.Array
) -> pa.Table:
    """The file's rows (its position deletes applied) minus the touched keys."""
    rows = ArrowScan(metadata, io, metadata.schema(), AlwaysTrue()).to_table([task])
    return rows.filter(pc.invert(pc.is_in(rows.column(key), value_set=values)))
