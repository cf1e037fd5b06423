"""Keyed copy-on-write: the one rewriter behind ingest's upsert and the Zero-ETL sync.

pyiceberg's ``overwrite(filter)`` turns the keys into one filter clause per
row, reads every file the filter may touch in full and commits a delete and
then an append (two snapshots; between them the keys are missing). Here:

1. the files' key bounds and partition values prune the files that cannot
   hold a touched key (``keys.may_hold``);
2. only the key columns of the remaining files are read and joined with the
   touched keys (``keys.present``): the files that really hold one;
3. those files are rewritten, a bounded batch at a time, without the touched
   keys (their position deletes applied) and with the keys' new images;
   the images of keys found nowhere go to new files;
4. all of it is one snapshot: an overwrite, or an append when no file held a key.

A sync adds a small file of inserts every second. Once enough of about one size
have piled up (``size_tiers``) they are folded into the commit, with the new
keys: compaction as a side effect of the commit, so a table never needs a
separate maintenance job.

``replace_all`` is the other one-snapshot write: the table's whole content
replaced (ingest's overwrite, the sync's initial snapshot and truncations).
"""

from __future__ import annotations

import itertools
import struct
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import NotInstalledError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.transforms import (
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    YearTransform,
)
from pyiceberg.types import (
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from lakehouse.errors import IngestError
from lakehouse.lake import nested_nulls
from lakehouse.lake.commit import append, overwrite
from lakehouse.lake.keys import Found, KeySet, build_key_set, may_hold, present, without
from lakehouse.lake.row_deltas import RowDelta
from lakehouse.lake.size_tiers import tier_group

nested_nulls.install()  # NULL lists stay NULL through pyiceberg's writer

READ_THREADS = 4
TARGET_SIZE = "write.target-file-size-bytes"
# Files under min(target/4, SMALL_FILE_BYTES) count as small, folded by size tier
# (lakehouse.lake.size_tiers).
SMALL_FILE_BYTES = 16 * 2**20
MAX_FILES_COMPACTED = 64
# Parquet bytes rewritten per batch: memory holds one batch (and the upserts), not the table.
BATCH_BYTES = 64 * 2**20
# Key types whose bounds are compared (the bound's bytes decode to what Arrow compares).
RANGE_TYPES = (IntegerType, LongType, DateType, TimeType, TimestampType, TimestamptzType,
               DecimalType, StringType)  # fmt: skip
PARTITION_TRANSFORMS = (IdentityTransform, YearTransform, MonthTransform, DayTransform,
                        HourTransform)  # fmt: skip
# A file to rewrite, with where the touched keys sit in it (None: it holds none).
Item = tuple[FileScanTask, Found | None]


@dataclass
class RewriteResult:
    """What one keyed rewrite did (counts of rows and files)."""

    files_scanned: int = 0  # files whose key columns were read
    files_rewritten: int = 0  # files replaced, holding a key or folded as small
    rows_removed: int = 0  # rows dropped because their key was touched
    rows_written: int = 0  # rows in the new files (kept rows plus new images)
    operation: str | None = None  # "overwrite", "append", or None: nothing to commit
    new_files: list[DataFile] = field(default_factory=list, repr=False)


def rewrite_by_key(
    tx: Transaction,
    io: FileIO,
    key: str | Sequence[str],
    touched: pa.Table | None,
    upserts: pa.Table | None,
    properties: dict[str, str],
    compact: bool = False,
) -> RewriteResult:
    """Remove the rows whose ``key`` is in ``touched`` or ``upserts``, add ``upserts``.

    ``key`` is one or more column names of any orderable type; ``touched`` holds
    the keys of deleted rows (may also hold the upserted ones); ``upserts`` holds
    the new row images (at most one per key), in the table's schema. The result
    is staged on ``tx`` as one snapshot carrying ``properties``. Raises
    IngestError for null or duplicate keys or a key type that does not fit; the
    commit raises CommitFailedException if the table changed since ``tx`` began.
    ``compact``: also rewrite every file that has position deletes (applied) and
    drop every delete file in the same snapshot (``lakehouse.lake.row_deltas``).
    """
    columns = [key] if isinstance(key, str) else list(key)
    metadata = tx.table_metadata
    target = schema_to_pyarrow(metadata.schema())
    types = {name: target.field(name).type for name in columns}
    key_set = build_key_set(columns, types, touched, upserts)
    images = upserts.select(target.names).cast(target) if upserts is not None else None
    rewriter = _Rewriter(metadata, io, key_set, images, target)
    return rewriter.run(tx, list(tx._scan().plan_files()), properties, compact)


class _Rewriter:
    def __init__(self, metadata: TableMetadata, io: FileIO, key_set: KeySet,
                 images: pa.Table | None, target: pa.Schema) -> None:  # fmt: skip
        self.metadata, self.io, self.key_set, self.target = metadata, io, key_set, target
        self.images = images
        self.placed = np.zeros(images.num_rows if images is not None else 0, dtype=bool)
        self.result = RewriteResult()
        self.pruner = KeyPruner(metadata, key_set)
        self._write_uuid, self._counter = uuid.uuid4(), itertools.count(0)

    def run(
        self,
        tx: Transaction,
        tasks: list[FileScanTask],
        properties: dict[str, str],
        compact: bool = False,
    ) -> RewriteResult:
        candidates = [task for task in tasks if self._may_hold(task)]
        self.result.files_scanned = len(candidates)
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            found = list(pool.map(self._present, candidates))
            affected: list[Item] = [
                (task, where)
                for task, where in zip(candidates, found, strict=True)
                if len(where.keys)
            ]
            del found
            if compact:  # files with deletes are written again, their deletes applied
                holding = {task.file.file_path for task, _ in affected}
                affected += [(t, None) for t in tasks
                             if t.delete_files and t.file.file_path not in holding]  # fmt: skip
            for batch in _batches(affected):
                self._rewrite(pool, batch, sort=len(batch) > 1)
            small: list[Item] = [(t, None) for t in _small_files(self.metadata, tasks, affected)]
            for batch in _batches(small):
                self._rewrite(pool, batch, sort=True, extra=self._unplaced(), one_file=True)
            self._write(self._unplaced(), sort=True)
        replaced = [task.file for task, _ in affected + small]
        self.result.files_rewritten = len(replaced)
        deletes = compact and any(t.delete_files for t in tasks)
        if not replaced and not self.result.new_files and not deletes:
            return self.result
        producer: Any = overwrite(tx, properties) if replaced else append(tx, properties)
        if deletes or _has_deletes(tasks):  # pyiceberg's producers write data manifests only
            producer = RowDelta(tx, properties, drop_deletes=deletes)
        self.result.operation = "overwrite" if replaced else "append"
        with producer:
            for data_file in replaced:
                producer.delete_data_file(data_file)
            for data_file in self.result.new_files:
                producer.append_data_file(data_file)
        return self.result

    def _may_hold(self, task: FileScanTask) -> bool:
        return self.pruner.may_hold(task.file)

    def _present(self, task: FileScanTask) -> Found:
        projection = self.metadata.schema().select(*self.key_set.columns)
        return present(self.key_set, self._read(task, projection))

    def _read(self, task: FileScanTask, projection: Schema) -> pa.Table:
        """The file's rows (its position deletes applied) in ``projection``."""
        return ArrowScan(self.metadata, self.io, projection, AlwaysTrue()).to_table([task])

    def _rewrite(self, pool: ThreadPoolExecutor, batch: list[Item], sort: bool,
                 extra: pa.Table | None = None, one_file: bool = False) -> None:  # fmt: skip
        """Write the batch's files again without their touched keys, plus the new
        images of those keys (and ``extra`` rows); ``one_file``: a fold of small files."""
        schema = self.metadata.schema()
        parts = []
        for kept, removed in pool.map(lambda item: self._kept(item[0], item[1], schema), batch):
            parts.append(kept)
            self.result.rows_removed += removed
        hits = [where.keys for _, where in batch if where is not None]
        if hits:
            parts.append(self._take_images(self.key_set.upsert_rows(np.concatenate(hits))))
        if extra is not None:
            parts.append(extra)
        self._write(pa.concat_tables(parts), sort, one_file)

    def _kept(
        self, task: FileScanTask, where: Found | None, schema: Schema
    ) -> tuple[pa.Table, int]:
        """The file's rows without those holding a touched key, and how many those were."""
        rows = self._read(task, schema)
        kept = rows if where is None else without(rows, where)
        return kept.cast(self.target), rows.num_rows - kept.num_rows

    def _take_images(self, rows: np.ndarray) -> pa.Table:
        """New images at ``rows`` not written yet (a key may sit in several files)."""
        if self.images is None:
            return self.target.empty_table()
        rows = np.unique(rows)  # a key found in two files of the batch is written once
        rows = rows[~self.placed[rows]]
        self.placed[rows] = True
        return self.images.take(pa.array(rows, pa.int64()))

    def _unplaced(self) -> pa.Table | None:
        if self.images is None or self.placed.all():
            return None
        return self._take_images(np.flatnonzero(~self.placed))

    def _write(self, rows: pa.Table | None, sort: bool, one_file: bool = False) -> None:
        if rows is None or not rows.num_rows:
            return
        if sort:  # key order keeps files' key bounds narrow: later upserts touch fewer files
            rows = rows.sort_by([(name, "ascending") for name in self.key_set.columns])
        self.result.rows_written += rows.num_rows
        self.result.new_files += _data_files(
            self.metadata, rows, self.io, self._write_uuid, self._counter, one_file
        )


class KeyPruner:
    """Which data files may hold a touched key, by key bounds and partition values."""

    def __init__(self, metadata: TableMetadata, key_set: KeySet) -> None:
        self.metadata, self.key_set = metadata, key_set
        self._partitions: dict[int, list[tuple[int, pa.Array]]] = {}

    def may_hold(self, data_file: DataFile) -> bool:
        """False only when no touched key can be in ``data_file`` (bounds, partition)."""
        return may_hold(self.key_set, self._ranges(data_file), self._partition_values(data_file))

    def _ranges(self, data_file: DataFile) -> Iterator[tuple[str, Any, Any]]:
        schema = self.metadata.schema()
        for name in self.key_set.columns:
            key_field = schema.find_field(name)
            if not isinstance(key_field.field_type, RANGE_TYPES):
                continue
            lower = _bound(key_field.field_type, data_file.lower_bounds, key_field.field_id)
            upper = _bound(key_field.field_type, data_file.upper_bounds, key_field.field_id)
            yield name, lower, upper

    def _partition_values(self, data_file: DataFile) -> list[tuple[pa.Array, Any]]:
        if data_file.spec_id not in self._partitions:
            self._partitions[data_file.spec_id] = self._transformed_keys(data_file.spec_id)
        return [
            (keys, data_file.partition[pos]) for pos, keys in self._partitions[data_file.spec_id]
        ]

    def _transformed_keys(self, spec_id: int) -> list[tuple[int, pa.Array]]:
        """(position in the partition tuple, the transform of each touched key) for
        the spec's fields that are computed from a key column."""
        schema: Schema = self.metadata.schema()
        transformed = []
        for pos, part in enumerate(self.metadata.specs()[spec_id].fields):
            name = schema.find_column_name(part.source_id)
            if name not in self.key_set.columns or not isinstance(
                part.transform, PARTITION_TRANSFORMS
            ):
                continue
            source_type = schema.find_field(part.source_id).field_type
            keys = self.key_set.keys.column(name).combine_chunks()
            try:
                transformed.append((pos, part.transform.pyarrow_transform(source_type)(keys)))
            except NotInstalledError:  # time transforms need pyiceberg-core: no pruning by them
                continue
        return transformed


def replace_all(
    tx: Transaction, io: FileIO, chunks: Iterable[pa.Table], properties: dict[str, str]
) -> int:
    """Stage on ``tx`` ONE snapshot whose rows are exactly ``chunks``; their row count.

    ``chunks`` are in the table's schema and are written one at a time (memory
    holds one). Every data file of the current snapshot is removed by that same
    snapshot, so no reader ever sees the table empty (pyiceberg's overwrite
    commits a delete snapshot, then an append). When the table and ``chunks``
    are both empty, nothing is staged unless ``properties`` are given: then an
    empty snapshot carries them (a sync's checkpoint of an empty source table,
    or it would be snapshotted again by every run). Raises IngestError when pyiceberg
    cannot write the table's partitioning.
    """
    metadata = tx.table_metadata
    write_uuid, counter = uuid.uuid4(), itertools.count(0)
    new_files: list[DataFile] = []
    rows = 0
    for chunk in chunks:
        rows += chunk.num_rows
        if chunk.num_rows:
            new_files += _data_files(metadata, chunk, io, write_uuid, counter)
    current = [task.file for task in tx._scan().plan_files()]
    if not current and not new_files and not properties:
        return rows
    producer = overwrite(tx, properties) if current else append(tx, properties)
    with producer:
        for data_file in current:
            producer.delete_data_file(data_file)
        for data_file in new_files:
            producer.append_data_file(data_file)
    return rows


def data_files(metadata: TableMetadata, rows: pa.Table, io: FileIO, write_uuid: uuid.UUID,
               one_file: bool = False) -> list[DataFile]:  # fmt: skip
    """``rows`` (in the table's schema) written as data files of the table (not
    committed); ``one_file``: as one file per partition (see ``_data_files``)."""
    return _data_files(metadata, rows, io, write_uuid, itertools.count(0), one_file)


def _has_deletes(tasks: list[FileScanTask]) -> bool:
    return any(task.delete_files for task in tasks)


def _data_files(metadata: TableMetadata, rows: pa.Table, io: FileIO, write_uuid: uuid.UUID,
                counter: itertools.count[int], one_file: bool = False) -> list[DataFile]:  # fmt: skip
    """``rows`` written as data files of the table (not committed).

    pyiceberg cuts files at the table's target size counted in Arrow bytes, 3 to 10
    times the Parquet's: the sync's 4 MiB target gives Parquet files of ~0.4 MiB,
    under the small-file limit (a quarter of the target, in Parquet bytes). A fold
    of small files written that way was small files again, folded again at the next
    commit: a soak's order_items rewrote its whole table (4 MB) at every commit. A
    fold (``one_file``) is written as one file per partition instead.
    """
    if one_file:
        whole = {TARGET_SIZE: str(max(2 * rows.nbytes, 1))}
        metadata = metadata.model_copy(update={"properties": {**metadata.properties, **whole}})
    try:
        return list(_dataframe_to_data_files(metadata, rows, io, write_uuid, counter))
    except NotInstalledError as exc:
        raise IngestError(
            f"pyiceberg cannot write this table's partitioning ({metadata.spec()}): {exc}",
            hint="Install pyiceberg-core (pip install 'pyiceberg[pyiceberg-core]'), or "
            "write with Spark or Trino. Nothing was committed.",
        ) from exc


def _bound(kind: Any, bounds: dict[int, bytes] | None, field_id: int) -> Any:
    """The decoded bound, or None when absent or written for an older type."""
    raw = (bounds or {}).get(field_id)
    if raw is None:
        return None
    try:
        return from_bytes(kind, raw)
    except (struct.error, ValueError, UnicodeDecodeError):  # e.g. an int bound of a promoted long
        return None


def _batches(
    items: list[Item],
) -> Iterator[list[Item]]:
    """Consecutive runs of files of at most BATCH_BYTES (one file if it is larger)."""
    batch: list[Item] = []
    size = 0
    for item in items:
        if batch and size + item[0].file.file_size_in_bytes > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[0].file.file_size_in_bytes
    if batch:
        yield batch


def _small_files(
    metadata: TableMetadata,
    tasks: list[FileScanTask],
    affected: list[Item],
) -> list[FileScanTask]:
    target = int(metadata.properties.get("write.target-file-size-bytes", 512 * 2**20))
    limit = min(target // 4, SMALL_FILE_BYTES)
    rewritten = {task.file.file_path for task, _ in affected}
    small = [t for t in tasks if t.file.file_size_in_bytes < limit
             and t.file.file_path not in rewritten]  # fmt: skip
    return tier_group(small, lambda t: int(t.file.file_size_in_bytes), BATCH_BYTES,
                      MAX_FILES_COMPACTED)  # fmt: skip
