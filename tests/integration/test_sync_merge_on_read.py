"""The sync's merge-on-read writes (position delete files), read by every engine.

Each commit marks the touched rows deleted in a position delete file and
appends their new images; each commit also does a bounded share of compaction
(delete files folded into one, mostly deleted and small data files rewritten).
Every reader of the lake must see exactly the rows the changes leave, while
delete files are live and after they are compacted away.
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.io.pyarrow import _read_deletes

from lakehouse import Lakehouse
from lakehouse.lake.counts import live_rows
from lakehouse.lake.row_deltas import COMPACT_DELETE_FILES
from lakehouse.sync.iceberg_target import MERGE_ON_READ, IcebergTarget
from lakehouse.sync.model import TableBatch

pytestmark = pytest.mark.integration

SCHEMA = pa.schema(
    [pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string()),
     pa.field("qty", pa.int64())]
)  # fmt: skip
Rows = dict[int, dict[str, Any]]


def changes(table: str, rows: Rows, rng: random.Random, next_id: int) -> tuple[TableBatch, int]:
    """Inserts, updates and deletes all over the key range, applied to ``rows``."""
    batch = TableBatch(table, ("id",), SCHEMA)
    for _ in range(rng.randrange(20, 80)):
        rows[next_id] = {"id": next_id, "name": f"item {next_id}", "qty": 1}
        batch.upsert(rows[next_id])
        next_id += 1
    existing = sorted(rows)
    for ident in rng.sample(existing, 60):
        rows[ident] = {**rows[ident], "qty": rows[ident]["qty"] + 1, "name": f"new {ident}"}
        batch.upsert(rows[ident])
    for ident in rng.sample(sorted(set(existing) - set(batch.upserts)), 20):
        batch.delete({"id": ident})
        del rows[ident]
    return batch, next_id


def written_with_deletes(lake: Lakehouse, name: str, commits: int, seed: int) -> Rows:
    """A 6,000-row table changed by ``commits`` merge-on-read commits; the rows expected."""
    rng = random.Random(seed)
    target = IcebergTarget(lake.catalog, "mor", write_mode=MERGE_ON_READ)
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(6_000)}
    initial = pa.Table.from_pylist(list(rows.values()), schema=SCHEMA)
    target.replace(name, ("id",), SCHEMA, [initial.slice(0, 3_000), initial.slice(3_000)], "0/1")
    next_id = 6_000
    for step in range(commits):
        batch, next_id = changes(name, rows, rng, next_id)
        target.apply(name, batch, f"1/{step}")
    return rows


def delete_files(lake: Lakehouse, name: str) -> int:
    table = lake.catalog.load_table(name)
    return len({d.file_path for t in table.scan().plan_files() for d in t.delete_files})


def assert_folded_and_fresh_deletes(lake: Lakehouse, name: str) -> None:
    """The table holds a folded delete file and delete files written after it."""
    table = lake.catalog.load_table(name)
    folded = [s for s in table.snapshots() if s.summary and "removed-position-delete-files"
              in s.summary.additional_properties]  # fmt: skip
    assert folded, "no commit folded the delete files"
    assert delete_files(lake, name) >= 2


def sorted_rows(result: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((r["id"], r["name"], r["qty"]) for r in result.to_pylist())


def expected(rows: Rows) -> list[tuple[Any, ...]]:
    return sorted((r["id"], r["name"], r["qty"]) for r in rows.values())


def test_merge_on_read_rows_exact_on_pyiceberg_and_duckdb_then_compacted(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.items"
    rows = written_with_deletes(lake, name, commits=5, seed=1)
    assert delete_files(lake, name) == 5  # one per commit: nothing was rewritten
    table = lake.catalog.load_table(name)
    assert sorted_rows(table.scan().to_arrow()) == expected(rows)
    duck = lake.sql(f"SELECT id, name, qty FROM {name}", engine="duckdb")
    assert sorted_rows(duck) == expected(rows)
    assert live_rows(table, table.current_snapshot()).rows == len(rows)
    # Enough further commits to compact: the delete files are gone, rows still exact.
    target = IcebergTarget(lake.catalog, "mor", write_mode=MERGE_ON_READ)
    rng, next_id = random.Random(2), max(rows) + 1
    for step in range(COMPACT_DELETE_FILES):
        batch, next_id = changes(name, rows, rng, next_id)
        target.apply(name, batch, f"2/{step}")
    assert delete_files(lake, name) < COMPACT_DELETE_FILES
    table = lake.catalog.load_table(name)
    compacted = [s for s in table.snapshots() if s.summary and "removed-position-delete-files"
                 in s.summary.additional_properties]  # fmt: skip
    assert compacted, "no commit dropped the delete files"
    assert sorted_rows(table.scan().to_arrow()) == expected(rows)
    duck = lake.sql(f"SELECT id, name, qty FROM {name}", engine="duckdb")
    assert sorted_rows(duck) == expected(rows)


def test_a_key_changed_in_every_commit_is_deleted_once_per_image(
    lake: Lakehouse, namespace: str
) -> None:
    """Positions already deleted are not deleted again (the delete files stay exact)."""
    name = f"{namespace}.hot"
    target = IcebergTarget(lake.catalog, "mor", write_mode=MERGE_ON_READ)
    first = pa.Table.from_pylist([{"id": i, "name": "a", "qty": 0} for i in range(10)],
                                 schema=SCHEMA)  # fmt: skip
    target.replace(name, ("id",), SCHEMA, [first], "0/1")
    for step in range(4):
        batch = TableBatch(name, ("id",), SCHEMA)
        batch.upsert({"id": 3, "name": f"v{step}", "qty": step})
        target.apply(name, batch, f"1/{step}")
    table = lake.catalog.load_table(name)
    named = [(path, pos) for task in table.scan().plan_files() for d in task.delete_files
             for path, positions in _read_deletes(table.io, d).items()
             for pos in positions.to_pylist()]  # fmt: skip
    assert len(named) == len(set(named))  # no position is deleted twice
    # The 1-row files of the earlier images are wholly deleted: rewritten away, not kept.
    assert len(list(table.scan().plan_files())) <= 2
    assert sorted_rows(table.scan().to_arrow())[3] == (3, "v3", 3)
    assert len(table.scan().to_arrow()) == 10


@pytest.mark.lakehouse_trino
def test_trino_reads_merge_on_read_rows_exactly(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.items"
    rows = written_with_deletes(lake, name, commits=COMPACT_DELETE_FILES + 3, seed=3)
    assert_folded_and_fresh_deletes(lake, name)
    trino = lake.sql(f"SELECT id, name, qty FROM {name}", engine="trino")
    assert sorted_rows(trino) == expected(rows)


@pytest.mark.lakehouse_spark
def test_spark_reads_merge_on_read_rows_exactly(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.items"
    rows = written_with_deletes(lake, name, commits=COMPACT_DELETE_FILES + 3, seed=4)
    assert_folded_and_fresh_deletes(lake, name)
    spark = lake.sql(f"SELECT id, name, qty FROM {name}", engine="spark")
    assert sorted_rows(spark) == expected(rows)


def test_the_keys_a_commit_keeps_of_its_new_file_are_that_files_keys_in_order(
    lake: Lakehouse, namespace: str
) -> None:
    """A commit keeps the key column of the file of new images it wrote instead of
    reading it back; the next commit finds delete positions in it, so it must hold
    the file's own keys, position for position."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.manifest import DataFileContent, ManifestEntryStatus
    from pyiceberg.table import FileScanTask

    name = f"{namespace}.kept_keys"
    rng = random.Random(3)
    target = IcebergTarget(lake.catalog, "mor", write_mode=MERGE_ON_READ)
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(2_000)}
    target.replace(name, ("id",), SCHEMA, [pa.Table.from_pylist(list(rows.values()), schema=SCHEMA)], "0/1")  # fmt: skip
    next_id = 2_000
    for step in range(3):
        batch, next_id = changes(name, rows, rng, next_id)
        target.apply(name, batch, f"1/{step}")
    table = lake.catalog.load_table(name)
    current = table.current_snapshot()
    assert current is not None
    added = [e.data_file for m in current.manifests(table.io) for e in m.fetch_manifest_entry(table.io)
             if e.status == ManifestEntryStatus.ADDED and e.snapshot_id == current.snapshot_id
             and e.data_file.content == DataFileContent.DATA]  # fmt: skip
    kept = target._merge_states[table.metadata.table_uuid.hex].keys.by_data_file
    assert added and all(f.file_path in kept for f in added)
    projection = table.schema().select("id")
    for data_file in added:
        stored = ArrowScan(table.metadata, table.io, projection, AlwaysTrue()).to_table(
            [FileScanTask(data_file)]
        )
        assert kept[data_file.file_path].column("id").to_pylist() == stored.column("id").to_pylist()
    assert sorted_rows(table.scan().to_arrow()) == expected(rows)
