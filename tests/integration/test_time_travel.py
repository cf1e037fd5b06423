"""Time travel reaches only states that existed: each write is one snapshot, and a
time resolves through the table's snapshot log (what was current then)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.lake import catalog as cat

pytestmark = pytest.mark.integration


def rows(n: int, tag: str, first_id: int = 0) -> pa.Table:
    return pa.table({
        "id": pa.array(range(first_id, first_id + n), pa.int64()),
        "tag": pa.array([tag] * n),
    })  # fmt: skip


def at(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def count_as_of(lake: Lakehouse, name: str, moment: datetime) -> int:
    result = lake.sql(f"SELECT count(*) AS n FROM {name}", as_of=moment)
    return int(result.column("n")[0].as_py())


def test_overwrite_and_upsert_are_one_snapshot_each(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.writes"
    lake.ingest(rows(10, "first"), name)
    steps = [
        (lambda: lake.ingest(rows(4, "over"), name, mode="overwrite"), 4),
        (lambda: lake.ingest(rows(6, "up", 2), name, mode="upsert", key=["id"]), 8),
        (lambda: lake.ingest(rows(3, "again", 100), name, mode="overwrite"), 3),
    ]
    for write, expected_rows in steps:
        before = len(lake.table(name).snapshots())
        result = write()
        table = lake.table(name)
        assert len(table.snapshots()) == before + 1
        assert table.current_snapshot().snapshot_id == result.snapshot_id
        assert table.scan().to_arrow().num_rows == expected_rows
    assert [h.total_records for h in lake.history(name)] == [10, 4, 8, 3]


def test_as_of_any_time_returns_the_state_that_was_current_then(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.travel"
    lake.ingest(rows(10, "first"), name)
    table = lake.table(name)
    first = table.current_snapshot().snapshot_id
    # Another writer's pyiceberg overwrite: a delete snapshot, then an append, one commit.
    with table.transaction() as tx:
        tx.overwrite(rows(5, "second"))
    lake.ingest(rows(7, "third", 50), name)
    table = lake.table(name)
    table.manage_snapshots().rollback_to_snapshot(first).commit()
    table = lake.table(name)
    never_current = {s.snapshot_id for s in table.snapshots()} - {
        e.snapshot_id for e in table.metadata.snapshot_log
    }
    assert len(never_current) == 1  # the delete half of the overwrite
    assert never_current.isdisjoint(h.snapshot_id for h in lake.history(name))
    log = sorted(table.metadata.snapshot_log, key=lambda e: e.timestamp_ms)
    assert [e.snapshot_id for e in log][-1] == first  # the rollback made it current again
    moments = sorted({s.timestamp_ms for s in table.snapshots()} | {e.timestamp_ms for e in log})
    for entry, following in zip(log, [*log[1:], None], strict=True):
        end = following.timestamp_ms if following else entry.timestamp_ms + 1000
        probes = {entry.timestamp_ms, (entry.timestamp_ms + end) // 2, end - 1}
        probes |= {m for m in moments if entry.timestamp_ms <= m < end}
        expected = table.snapshot_by_id(entry.snapshot_id)
        want_rows = int(expected.summary["total-records"])
        for millis in sorted(probes):
            assert cat.snapshot_as_of(table, at(millis)) == entry.snapshot_id, millis
            assert count_as_of(lake, name, at(millis)) == want_rows
    with pytest.raises(Exception, match="had no snapshot"):
        cat.snapshot_as_of(table, at(log[0].timestamp_ms) - timedelta(milliseconds=1))
