"""The initial snapshot with rows of many MiB and its progress in `sync status`; a slot
that moves past WAL written by tables its integration does not follow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.sync import postgres_source, runner
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.status import StatusStore
from lakehouse.sync.verify import verify

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_postgres]


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def integration(stack: Settings, postgres_dsn: str) -> Iterator[Integration]:
    """An integration of table ``a`` of a fresh database into Iceberg (made by the test)."""
    database = str(conninfo_to_dict(postgres_dsn)["dbname"])
    made = Integration(name=f"fx-{database[-12:]}", source="postgres", target="iceberg",
                       tables=("a",), database=database, namespace=database)  # fmt: skip
    store = IntegrationStore(stack)
    store.create(made)
    yield store.get(made.name)  # with its generation (the slot's name ends in it)
    delete_integration(stack, made.name)


def sync_once(settings: Settings, integration: Integration) -> Any:
    with Lakehouse(settings) as lake:  # the library call behind `sync run NAME`
        return lake.sync(integration.name)


def assert_equal(settings: Settings, integration: Integration, rows: int) -> None:
    for report in verify(settings, integration):
        assert report.ok and report.source_rows == rows, report


def test_rows_of_2_and_20_mib_are_snapshotted(
    stack: Settings, postgres_dsn: str, integration: Integration
) -> None:
    execute(postgres_dsn, "CREATE TABLE a (id int PRIMARY KEY, t text)",
            "INSERT INTO a VALUES (1, repeat('y', 2 * 1024 * 1024)), (2, 'small'), "
            "(3, repeat(E'z\"\\n,', 5 * 1024 * 1024)), (4, NULL)")  # fmt: skip
    result = sync_once(stack, integration)
    assert result.snapshot_rows == 4
    assert_equal(stack, integration, 4)


def _slot(dsn: str, slot: str) -> tuple[int, int, int]:
    """(confirmed_flush_lsn, WAL bytes the slot keeps, current WAL LSN) as numbers."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn - '0/0', pg_current_wal_lsn() - restart_lsn, "
            "pg_current_wal_lsn() - '0/0' FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_the_slot_moves_past_writes_to_tables_it_does_not_follow(
    stack: Settings, postgres_dsn: str, integration: Integration
) -> None:
    execute(postgres_dsn, "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "CREATE TABLE b (id int PRIMARY KEY, v text)", "INSERT INTO a VALUES (1, 'x')")  # fmt: skip
    sync_once(stack, integration)
    execute(postgres_dsn, "INSERT INTO a VALUES (2, 'before')",
            "INSERT INTO b SELECT g, md5(g::text) FROM generate_series(1, 200000) g")  # fmt: skip
    _, _, bulk_end = _slot(postgres_dsn, integration.slot_name())
    assert sync_once(stack, integration).changes == 1
    # The slot keeps WAL back to the newest running-transactions record it passed; the
    # server writes one every 15 s while busy, a checkpoint writes one now.
    execute(postgres_dsn, "CHECKPOINT")
    sync_once(stack, integration)
    confirmed, kept, _ = _slot(postgres_dsn, integration.slot_name())
    assert confirmed >= bulk_end, "the slot stayed before the unrelated bulk insert"
    assert kept < 4 * 2**20, f"the slot still keeps {kept:,} bytes of WAL"
    execute(postgres_dsn, "INSERT INTO a VALUES (3, 'after')", "UPDATE a SET v = 'y' WHERE id = 1")
    assert sync_once(stack, integration).changes == 2
    assert sync_once(stack, integration).changes == 0
    assert_equal(stack, integration, 3)


def test_a_long_snapshot_reports_its_rows_in_sync_status(
    stack: Settings, postgres_dsn: str, integration: Integration,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    execute(postgres_dsn, "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "INSERT INTO a SELECT g, repeat('v', 200) FROM generate_series(1, 300000) g")  # fmt: skip
    monkeypatch.setattr(postgres_source, "SNAPSHOT_CHUNK_BYTES", 2 * 2**20)  # ~30 chunks
    # Every chunk's progress is written (1 s apart by default: a fast machine reads the
    # whole table sooner); the test records each write rather than polling the file.
    monkeypatch.setattr(runner, "SNAPSHOT_PROGRESS_SECONDS", 0.0)
    seen: list[tuple[str, int]] = []
    write = StatusStore.write

    def recording(store: StatusStore, status: Any) -> None:
        if status.name == integration.name:
            seen.append((status.state, status.snapshot_rows))
        write(store, status)

    monkeypatch.setattr(StatusStore, "write", recording)
    result = sync_once(stack, integration)
    assert result.snapshot_rows == 300_000
    during = [rows for state, rows in seen if state == "snapshotting"]
    assert any(0 < rows < 300_000 for rows in during), seen[-20:]
    assert during == sorted(during), "rows so far never go back"
