"""Concurrent writers on the real catalog and S3: every write lands once, or fails clearly.

Writers race from threads (one process, one catalog client each) and from
processes (the CLI). Afterwards the tables hold exactly the rows the writes
imply (an upsert: the exact final image of every key), every overwrite and
upsert is one snapshot, and no file of a lost race is left under the table.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import IngestError, SyncError
from lakehouse.lake.ingest import IngestResult
from lakehouse.lake.orphans import orphan_files
from lakehouse.sync.iceberg_target import IcebergTarget
from lakehouse.sync.model import TableBatch
from tests.integration.conftest import CLI

pytestmark = pytest.mark.integration
WRITERS = 8


def rows(writer: int, n: int, first_id: int = 0) -> pa.Table:
    return pa.table({
        "id": pa.array(range(first_id, first_id + n), pa.int64()),
        "writer": pa.array([writer] * n, pa.int64()),
        "note": pa.array([f"w{writer} row {i}" for i in range(n)]),
    })  # fmt: skip


def race(stack: Settings, write: Callable[[Lakehouse, int], IngestResult]) -> list[IngestResult]:
    """``write(lake, i)`` for WRITERS writers at once, each with its own client."""

    def one(i: int) -> IngestResult:
        with Lakehouse(stack) as own:
            return write(own, i)

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(one, range(WRITERS)))


def assert_no_orphans(lake: Lakehouse, name: str) -> None:
    assert orphan_files(lake.table(name)) == []


def test_writers_racing_to_create_a_table_all_land(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.created"
    results = race(stack, lambda own, i: own.ingest(rows(i, 50, i * 50), name))
    assert sum(r.created for r in results) == 1  # the others appended to the winner's table
    table = lake.table(name).scan().to_arrow()
    assert table.num_rows == WRITERS * 50
    assert sorted(table.column("id").to_pylist()) == list(range(WRITERS * 50))
    assert_no_orphans(lake, name)


def test_concurrent_appends_keep_every_row(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.appended"
    lake.ingest(rows(-1, 10, 10_000), name)
    race(stack, lambda own, i: own.ingest(rows(i, 40, i * 40), name))
    table = lake.table(name).scan().to_arrow()
    assert table.num_rows == 10 + WRITERS * 40
    assert_no_orphans(lake, name)


def test_concurrent_upserts_give_the_exact_image_of_every_key(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.upserted"
    lake.ingest(rows(-1, WRITERS * 10), name)
    # Writer i rewrites keys [10i, 10i+10) and adds key 1000+i: disjoint, so the
    # final image of every key is known whatever the order of the commits.
    results = race(
        stack,
        lambda own, i: own.ingest(
            pa.concat_tables([rows(i, 10, i * 10), rows(i, 1, 1000 + i)]),
            name, mode="upsert", key=["id"],
        ),
    )  # fmt: skip
    got = {r["id"]: r for r in lake.table(name).scan().to_arrow().to_pylist()}
    expected = {i: i // 10 for i in range(WRITERS * 10)} | {1000 + i: i for i in range(WRITERS)}
    assert {k: v["writer"] for k, v in got.items()} == expected
    assert len(got) == WRITERS * 11
    snapshots = {r.snapshot_id for r in results}
    assert len(snapshots) == WRITERS  # one snapshot per upsert
    assert len(lake.history(name)) == 1 + WRITERS
    assert_no_orphans(lake, name)


def test_concurrent_overwrites_leave_one_writers_rows_in_one_snapshot_each(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.overwritten"
    lake.ingest(rows(-1, 30), name)
    race(stack, lambda own, i: own.ingest(rows(i, 20 + i), name, mode="overwrite"))
    table = lake.table(name).scan().to_arrow()
    writers = set(table.column("writer").to_pylist())
    assert len(writers) == 1
    assert table.num_rows == 20 + writers.pop()
    history = lake.history(name)
    assert len(history) == 1 + WRITERS
    assert all(h.total_records for h in history)  # never an empty state in between
    assert_no_orphans(lake, name)


def test_cli_ingests_from_processes_create_append_and_upsert_exactly(
    stack: Settings, lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    name = f"{namespace}.from_cli"
    processes = 6
    files = []
    for i in range(processes):
        path = tmp_path / f"part{i}.csv"
        path.write_text("id,writer\n" + "".join(f"{i * 25 + n},{i}\n" for n in range(25)))
        files.append(path)
    run_all([["ingest", str(path), "--table", name] for path in files])
    assert lake.table(name).scan().to_arrow().num_rows == processes * 25
    updates = []
    for i in range(processes):  # process i moves its first 5 ids to writer 100+i
        path = tmp_path / f"update{i}.csv"
        path.write_text("id,writer\n" + "".join(f"{i * 25 + n},{100 + i}\n" for n in range(5)))
        updates.append(["ingest", str(path), "--table", name, "--mode", "upsert", "--key", "id"])
    run_all(updates)
    got = {r["id"]: r["writer"] for r in lake.table(name).scan().to_arrow().to_pylist()}
    assert got == {
        i * 25 + n: (100 + i if n < 5 else i) for i in range(processes) for n in range(25)
    }
    assert_no_orphans(lake, name)


def run_all(commands: list[list[str]]) -> None:
    """The CLI commands at once; each must succeed with no traceback."""
    running = [
        subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    for process in running:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, out + err
        assert "Traceback" not in err


def test_a_sync_commit_that_loses_a_race_leaves_no_file_and_retries_exactly(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.synced"
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("writer", pa.int64()),
                        ("note", pa.string())])  # fmt: skip
    target = IcebergTarget(lake.catalog, "race")

    def batch(first: int, writer: int, truncated: bool = False) -> TableBatch:
        changes = TableBatch(name, ("id",), schema)
        if truncated:
            changes.truncate()
        for row in rows(writer, 20, first).to_pylist():
            changes.upsert(row)
        return changes

    target.apply(name, batch(0, 1), "1")  # creates the table; the target caches it
    lake.ingest(rows(9, 5, 500), name)  # another writer moves the table on
    with pytest.raises(IngestError, match=r"id .* is required"):  # the sync's key stays a key
        lake.ingest(pa.table({"id": pa.array([None, 7], pa.int64())}), name)
    with pytest.raises(SyncError, match="Concurrent commit"):
        target.apply(name, batch(10, 2), "2")  # planned on the cached, stale table
    assert_no_orphans(lake, name)
    target.apply(name, batch(10, 2), "2")  # the retry re-plans on the catalog's state
    got = {r["id"]: r["writer"] for r in lake.table(name).scan().to_arrow().to_pylist()}
    assert got == {i: 1 for i in range(10)} | {i: 2 for i in range(10, 30)} | {
        i: 9 for i in range(500, 505)
    }
    before = len(lake.table(name).snapshots())
    target.apply(name, batch(0, 3, truncated=True), "3")  # a truncation: one snapshot
    assert len(lake.table(name).snapshots()) == before + 1
    assert lake.table(name).scan().to_arrow().num_rows == 20
    assert_no_orphans(lake, name)
