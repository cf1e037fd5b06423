"""Unexpected failures of Zero-ETL integrations, on real PostgreSQL, catalog and S3
servers (`sync create`'s refusals that ask the source are in test_sync_targets).

An unexpected error (neither lakehouse's own nor a server that did not answer)
stopped nothing: the follower retried it every few seconds for ever, shown raw in
`sync status`. It now stops after three identical failures, state ``failed`` with
a message and a Hint, until `sync reset`. The error is provoked for real: a table
property no writer can read, set on the target as a user might.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.sync.admin import create_integration, delete_integration, reset_integration
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.runner import IntegrationRunner
from lakehouse.sync.status import StatusStore, status_rows

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_postgres]

# How long a follower may take for three failed passes (backoff 0.5 + 1 s, plus the
# passes themselves on a loaded machine) before the test says it never stopped.
STOPS_WITHIN_SECONDS = 120
# A value Spark users write and no Iceberg writer reads: the property is a byte count.
UNREADABLE_TARGET_SIZE = "128MB"


def _execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def items(stack: Settings, postgres_dsn: str) -> Iterator[Integration]:
    """A postgres -> iceberg integration of one small table, created through the library
    call behind `sync create`; deleted with its target afterwards."""
    database = str(conninfo_to_dict(postgres_dsn)["dbname"])
    _execute(postgres_dsn, "CREATE TABLE items (id int PRIMARY KEY, name text)",
             "INSERT INTO items VALUES (1, 'one')")  # fmt: skip
    integration = Integration(name=f"fail-{database[-8:]}", source="postgres", target="iceberg",
                              tables=("items",), database=database, namespace=database)  # fmt: skip
    assert create_integration(stack, integration)
    yield IntegrationStore(stack).get(integration.name)
    delete_integration(stack, integration.name, drop_targets=True)


def test_an_unexpected_error_stops_the_follower_until_reset(
    stack: Settings, postgres_dsn: str, items: Integration
) -> None:
    with Lakehouse(stack) as lake:
        assert lake.sync(items.name).snapshot_rows == 1
    target = open_catalog(stack).load_table(items.iceberg_target("items", stack))
    with target.transaction() as tx:
        tx.set_properties({"write.target-file-size-bytes": UNREADABLE_TARGET_SIZE})
    _execute(postgres_dsn, "INSERT INTO items VALUES (2, 'two')")

    stop = threading.Event()
    runner = IntegrationRunner(stack, items)
    follower = threading.Thread(target=runner.follow, args=(stop,), daemon=True)
    follower.start()
    follower.join(timeout=STOPS_WITHIN_SECONDS)
    stopped_by_itself = not follower.is_alive()
    stop.set()
    follower.join(timeout=30)
    status = StatusStore(stack).read(items.name)
    assert stopped_by_itself, f"still retrying after {STOPS_WITHIN_SECONDS} s: {status}"
    assert status.state == "failed", status
    # Today the generic stop ("failed 3 times in a row with the same unexpected
    # ValueError", tests/unit/test_sync_options_failures.py); a writer that names the
    # property itself one day passes too.
    assert UNREADABLE_TARGET_SIZE in status.last_error, status.last_error
    assert " Hint: " in status.last_error and f"sync reset {items.name}" in status.last_error
    shown = {row["name"]: row for row in status_rows(stack)}[items.name]
    assert shown["shown_state"] == "failed"  # not "not running": it stopped on purpose

    lines = reset_integration(stack, items.name)  # the hint's way out: a fresh target
    assert any("dropped iceberg" in line for line in lines), lines
    with Lakehouse(stack) as lake:
        again = lake.sync(items.name)
        assert again.snapshot_rows == 2
        assert all(report.ok for report in lake.verify_sync(items.name))
