"""The sync's Iceberg writer over many small commits, on the real catalog and S3.

A sync commits every second for hours: rows must stay exact while manifests,
small files and snapshots stay bounded (otherwise every commit gets slower).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import SyncError
from lakehouse.lake.commit import MANIFEST_MERGE_COUNT
from lakehouse.lake.orphans import orphan_files
from lakehouse.lake.row_deltas import COMPACT_DELETE_FILES
from lakehouse.lake.size_tiers import TIER_FILES, size_tier
from lakehouse.sync.iceberg_expire import ReachableFiles
from lakehouse.sync.iceberg_target import COPY_ON_WRITE, MERGE_ON_READ, IcebergTarget
from lakehouse.sync.model import TableBatch

pytestmark = pytest.mark.integration

SCHEMA = pa.schema(
    [pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string()),
     pa.field("qty", pa.int64())]
)  # fmt: skip
Rows = dict[int, dict[str, Any]]


def random_batch(
    table: str, rows: Rows, rng: random.Random, next_id: int, hot: int | None = None,
    updates: int = 40, deletes: int = 15,
) -> tuple[TableBatch, int]:  # fmt: skip
    """Inserts, then updates and deletes of existing rows (of ids below ``hot`` only,
    if given); applied to ``rows`` as the expected state."""
    batch = TableBatch(table, ("id",), SCHEMA)
    existing = sorted(ident for ident in rows if hot is None or ident < hot)
    for _ in range(rng.randrange(50, 300)):
        rows[next_id] = {"id": next_id, "name": f"item {next_id}", "qty": 1}
        batch.upsert(rows[next_id])
        next_id += 1
    for ident in rng.sample(existing, updates):
        rows[ident] = {**rows[ident], "qty": rows[ident]["qty"] + 1}
        batch.upsert(rows[ident])
    for ident in rng.sample(existing, deletes):
        batch.delete({"id": ident})
        del rows[ident]
    return batch, next_id


def table_rows(lake: Lakehouse, name: str) -> Rows:
    return {row["id"]: row for row in lake.catalog.load_table(name).scan().to_arrow().to_pylist()}


# Files under 1 MiB a table may hold at most: each size tier below it holds fewer
# than TIER_FILES between folds (one more when a fold lands in it), and one commit adds one.
MOST_SMALL = (size_tier(2**20 - 1) + 1) * (TIER_FILES + 1) + 1
# Per write mode: the manifests a table may hold at most. Merge-on-read also keeps a
# delete manifest per commit until its delete files are folded.
MOST_MANIFESTS = {
    COPY_ON_WRITE: MANIFEST_MERGE_COUNT,
    MERGE_ON_READ: MANIFEST_MERGE_COUNT + COMPACT_DELETE_FILES,
}


@pytest.mark.parametrize("mode", [COPY_ON_WRITE, MERGE_ON_READ])
def test_many_small_commits_keep_rows_exact_and_manifests_files_snapshots_bounded(
    lake: Lakehouse, namespace: str, mode: str
) -> None:
    name, rng = f"{namespace}.items", random.Random(3)
    target = IcebergTarget(lake.catalog, "bounded", keep_snapshots=5, write_mode=mode)
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(20_000)}
    initial = pa.Table.from_pylist(list(rows.values()), schema=SCHEMA)
    target.replace(name, ("id",), SCHEMA, [initial.slice(0, 10_000), initial.slice(10_000)], "0/1")
    # Fewer old metadata files than commits, so that their deletion shows.
    with lake.catalog.load_table(name).transaction() as tx:
        tx.set_properties({"write.metadata.previous-versions-max": "5"})
    next_id = 20_000
    for step in range(40):
        # Mostly inserts (appended as small files), now and then changes to hot rows
        # (all in the first file): only compaction keeps the small files from piling up.
        changes = 40 if step % 4 == 3 else 0
        batch, next_id = random_batch(name, rows, rng, next_id, 5_000, changes, changes // 3)
        target.apply(name, batch, f"1/{step}")
    table = lake.catalog.load_table(name)
    files = list(table.scan().plan_files())
    small = [f for f in files if f.file.file_size_in_bytes < 2**20]
    # 40 commits leave 40 manifests unless they are merged.
    manifests = table.current_snapshot().manifests(table.io)
    assert len(manifests) <= MOST_MANIFESTS[mode] <= 12, len(manifests)
    assert len(small) <= MOST_SMALL <= 30, [f.file.file_size_in_bytes for f in files]
    assert len(table.metadata.snapshots) <= 2 * 5 + 1
    assert table_rows(lake, name) == rows
    # Other engines read the merged manifests and compacted files too.
    count = lake.sql(f"SELECT count(*) AS n, sum(qty) AS q FROM {name}").to_pylist()[0]
    assert count == {"n": len(rows), "q": sum(r["qty"] for r in rows.values())}
    assert IcebergTarget(lake.catalog, "bounded").checkpoint(name) == "1/39"
    # Expired snapshots took their files with them: what is stored is what is reachable.
    stored = stored_files(lake, table.location())
    reachable = ReachableFiles().of(table, list(table.metadata.snapshots))
    data_and_manifests = {p for p in stored if not p.endswith(".metadata.json")}
    assert data_and_manifests == reachable
    assert len(stored - data_and_manifests) <= 5 + 1  # the current one and 5 previous


@pytest.mark.parametrize("mode", [COPY_ON_WRITE, MERGE_ON_READ])
def test_a_fold_of_small_files_is_one_file_so_it_is_not_folded_again(
    lake: Lakehouse, namespace: str, mode: str
) -> None:
    """pyiceberg cuts files at the target size in Arrow bytes, several times the
    Parquet's: a fold written that way was small files again, and they were folded
    again at the next commit, for ever (a soak rewrote a whole table each commit)."""
    name, rng = f"{namespace}.folds", random.Random(11)
    target = IcebergTarget(lake.catalog, "folds", write_mode=mode)
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(100)}
    target.replace(
        name, ("id",), SCHEMA, [pa.Table.from_pylist(list(rows.values()), SCHEMA)], "0/1"
    )
    with lake.catalog.load_table(name).transaction() as tx:  # small files: under 64 KiB
        tx.set_properties({"write.target-file-size-bytes": str(256 * 2**10)})
    next_id = 100
    for step in range(3 * TIER_FILES):
        batch = TableBatch(name, ("id",), SCHEMA)
        for _ in range(4000):
            rows[next_id] = {"id": next_id, "name": f"item {rng.random()}", "qty": step}
            batch.upsert(rows[next_id])
            next_id += 1
        target.apply(name, batch, f"1/{step}")
    table = lake.catalog.load_table(name)
    folds = [s.summary for s in table.metadata.snapshots
             if s.summary and int(s.summary.get("deleted-data-files") or 0) >= 2]  # fmt: skip
    assert folds, "no fold happened"
    # A fold adds its one file, and the commit's new rows one more.
    assert all(int(f.get("added-data-files") or 0) <= 2 for f in folds), folds
    assert table_rows(lake, name) == rows


def stored_files(lake: Lakehouse, location: str) -> set[str]:
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    objects = lake.s3.list_objects(bucket, prefix=prefix + "/", recursive=True)
    # (SeaweedFS lists directories as objects too)
    return {f"s3://{bucket}/{o.object_name}" for o in objects if not o.object_name.endswith("/")}


def test_a_commit_by_another_writer_is_kept_and_the_sync_replans(
    lake: Lakehouse, namespace: str
) -> None:
    name, rng = f"{namespace}.items", random.Random(5)
    target = IcebergTarget(lake.catalog, "replans")
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(1000)}
    target.replace(
        name, ("id",), SCHEMA, [pa.Table.from_pylist(list(rows.values()), SCHEMA)], "0/1"
    )
    batch, next_id = random_batch(name, rows, rng, 1000)
    target.apply(name, batch, "0/2")
    # Someone else commits between two sync commits (the sync holds a cached table).
    outsider = {"id": 10**9, "name": "outsider", "qty": 7}
    table = lake.catalog.load_table(name)
    table.append(pa.Table.from_pylist([outsider], schema=SCHEMA))
    victim = min(rows)
    table.delete(f"id = {victim}")  # rewrites the file the sync's next batch also rewrites
    rows[outsider["id"]] = outsider
    del rows[victim]
    batch, next_id = random_batch(name, rows, rng, next_id)
    with pytest.raises(SyncError, match="Concurrent commit"):
        target.apply(name, batch, "0/3")
    target.apply(name, batch, "0/3")  # what the runner's retry does
    assert table_rows(lake, name) == rows
    assert target.checkpoint(name) == "0/3"


PAIR_SCHEMA = pa.schema(
    [pa.field("shop", pa.string(), nullable=False), pa.field("day", pa.date32(), nullable=False),
     pa.field("qty", pa.int64())]
)  # fmt: skip


def test_a_two_column_key_is_rewritten_by_key_one_snapshot_per_batch(
    lake: Lakehouse, namespace: str
) -> None:
    name, rng = f"{namespace}.pairs", random.Random(11)
    target = IcebergTarget(lake.catalog, "pairs")
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(200)]
    rows: dict[tuple[str, dt.date], dict[str, Any]] = {
        (s, d): {"shop": s, "day": d, "qty": 0} for s in ("a", "b", "c") for d in days
    }
    initial = pa.Table.from_pylist(list(rows.values()), schema=PAIR_SCHEMA)
    target.replace(name, ("shop", "day"), PAIR_SCHEMA, [initial], "0/1")
    for step in range(5):
        batch = TableBatch(name, ("shop", "day"), PAIR_SCHEMA)
        for key in rng.sample(sorted(rows), 30):
            rows[key] = {**rows[key], "qty": rows[key]["qty"] + 1}
            batch.upsert(rows[key])
        for key in rng.sample(sorted(rows), 10):
            batch.delete({"shop": key[0], "day": key[1]})
            del rows[key]
        new = ("new", dt.date(2030, 1, 1) + dt.timedelta(days=step))
        rows[new] = {"shop": new[0], "day": new[1], "qty": step}
        batch.upsert(rows[new])
        snapshots = len(lake.catalog.load_table(name).snapshots())
        target.apply(name, batch, f"1/{step}")
        table = lake.catalog.load_table(name)
        assert len(table.snapshots()) == snapshots + 1
        assert target.checkpoint(name) == f"1/{step}"  # in that same snapshot
    got = {(r["shop"], r["day"]): r for r in table.scan().to_arrow().to_pylist()}
    assert got == rows


def test_files_a_killed_commit_left_are_swept_once_old_enough(
    lake: Lakehouse, namespace: str
) -> None:
    """A writer killed between writing its files and committing leaves files no snapshot
    names; the sync's next commits delete them once older than the safe age."""
    name = f"{namespace}.swept"
    target = IcebergTarget(lake.catalog, "sweep")
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(100)}
    target.replace(
        name, ("id",), SCHEMA, [pa.Table.from_pylist(list(rows.values()), SCHEMA)], "0/1"
    )
    table = lake.catalog.load_table(name)
    stray = f"{table.location()}/data/killed-commit.parquet"
    with table.io.new_output(stray).create() as out:
        out.write(b"written by a writer that never committed")
    target.orphan_sweep_every_s = 0
    rng, next_id = random.Random(5), 100
    for min_age_s, kept in ((3600.0, True), (0.0, False)):  # too young to be sure, then old
        target.orphan_min_age_s = min_age_s
        batch, next_id = random_batch(name, rows, rng, next_id)
        target.apply(name, batch, f"1/{next_id}")
        assert (stray in stored_files(lake, table.location())) is kept
    assert orphan_files(lake.catalog.load_table(name)) == []
    assert table_rows(lake, name) == rows
