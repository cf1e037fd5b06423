"""Keyed copy-on-write that rewrites only the data files holding a touched key.

pyiceberg's ``overwrite(filter)`` reads every file whose min/max statistics
admit one of the keys, in full, and commits a delete and an append: with keys
spread over the table that is the whole table on every batch. Here the
candidate files' key column alone is read to find the files that really hold
a touched key; only those are rewritten, together with the new row images, in
one overwrite snapshot.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.table import FileScanTask, Transaction
from pyiceberg.table.upsert_util import create_match_filter

READ_THREADS = 4


def rewrite_by_key(tx: Transaction, io: FileIO, key: str, touched: pa.Table,
                   upserts: pa.Table | None, properties: dict[str, str]) -> None:  # fmt: skip
    """Remove rows whose ``key`` is in ``touched``, add ``upserts``: one snapshot."""
    metadata = tx.table_metadata
    schema = metadata.schema()
    values = touched.column(key).combine_chunks()
    candidates = list(tx._scan(row_filter=create_match_filter(touched, [key])).plan_files())

    def holds_a_key(task: FileScanTask) -> bool:
        keys = ArrowScan(metadata, io, schema.select(key), AlwaysTrue()).to_table([task])
        return bool(pc.any(pc.is_in(keys.column(key), value_set=values)).as_py())

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        affected = [
            t for t, hit in zip(candidates, pool.map(holds_a_key, candidates), strict=True) if hit
        ]
        kept = list(pool.map(lambda t: _without(metadata, io, t, key, values), affected))
    target = schema_to_pyarrow(schema)
    parts = [part.cast(target) for part in kept if part.num_rows]
    if upserts is not None and upserts.num_rows:
        parts.append(upserts.cast(target))
    new_files = (
        list(_dataframe_to_data_files(metadata, pa.concat_tables(parts), io)) if parts else []
    )
    if not affected and not new_files:
        return
    if not affected:
        with tx.update_snapshot(snapshot_properties=properties).fast_append() as append:
            for data_file in new_files:
                append.append_data_file(data_file)
        return
    with tx.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
        for task in affected:
            overwrite.delete_data_file(task.file)
        for data_file in new_files:
            overwrite.append_data_file(data_file)


def _without(
    metadata: object, io: FileIO, task: FileScanTask, key: str, values: pa.Array
) -> pa.Table:
    """The file's rows (its position deletes applied) minus the touched keys."""
    rows = ArrowScan(metadata, io, metadata.schema(), AlwaysTrue()).to_table([task])  # type: ignore[attr-defined, arg-type]
    return rows.filter(pc.invert(pc.is_in(rows.column(key), value_set=values)))
