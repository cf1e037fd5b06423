"""Integrations have a lifecycle: delete, reset and create again, with and without the
sync service running, on real PostgreSQL, OpenSearch, catalog and S3 servers.

A re-created integration is a new generation: it never trusts a position its
namesake stored, so it snapshots afresh; a deleted one leaves no slot behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.sync.admin import delete_integration, reset_integration
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.status import heartbeat_path
from tests.integration import test_sync
from tests.integration.conftest import run_cli
from tests.integration.test_sync import (
    Declare,
    assert_in_sync,
    execute,
    in_sync,
    sync_once,
    wait_for,
)

# test_sync's fixtures: a shop database of the test's own, integrations declared on it.
shop = test_sync.shop
declare = test_sync.declare

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]


def slots_of(settings: Settings, integration: Integration) -> list[str]:
    """Replication slots and publications of every generation of the integration."""
    prefix = "lakehouse_" + integration.name.replace("-", "_")
    with psycopg.connect(settings.postgres_dsn(integration.database)) as conn:
        slots = conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE %s "
            "UNION ALL SELECT pubname FROM pg_publication WHERE pubname LIKE %s",
            (prefix + "%", prefix + "%"),
        ).fetchall()
    return [s for (s,) in slots]


def recreate(settings: Settings, integration: Integration) -> Integration:
    IntegrationStore(settings).create(integration)
    return IntegrationStore(settings).get(integration.name)


def index_uuid(opensearch: Any, index: str) -> str:
    return str(opensearch.indices.get_settings(index=index)[index]["settings"]["index"]["uuid"])


def test_delete_change_recreate_snapshots_both_targets_afresh(
    stack: Settings, shop: str, declare: Declare, opensearch: Any, opensearch_prefix: str
) -> None:
    """The reported sequence: it said '0 snapshot rows, 0 changes' and missed both changes."""
    to_lake = declare("postgres", "iceberg", ("customers",))
    to_search = declare("postgres", "opensearch", ("customers",), index_prefix=opensearch_prefix)
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
    index = to_search.index_name("customers", stack)
    first_index = index_uuid(opensearch, index)
    for integration in (to_lake, to_search):
        lines = delete_integration(stack, integration.name)
        assert any(line.startswith(f"kept {integration.target} ") for line in lines), lines
        assert slots_of(stack, integration) == []
    execute(
        shop,
        "INSERT INTO customers (customer_id, email, first_name, last_name, country, city, "
        "segment) VALUES (900001, 'new@example.com', 'New', 'One', 'NO', 'Oslo', 'vip')",
        "UPDATE customers SET city = 'Changed meanwhile' WHERE customer_id = 1",
    )
    for integration in (to_lake, to_search):
        again = sync_once(stack, recreate(stack, integration))
        assert again.snapshot_rows > 0, again
        assert_in_sync(stack, integration)
    assert index_uuid(opensearch, index) != first_index  # the index was made anew
    # The snapshot replaced the table's rows in one snapshot: no duplicates (verify
    # counts them) and the previous generation's position is not its checkpoint.
    table = open_catalog(stack).load_table(to_lake.iceberg_target("customers", stack))
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    generation = IntegrationStore(stack).get(to_lake.name).generation
    assert snapshot.summary.get(f"lakehouse.sync.{to_lake.name}.generation") == generation


def test_reset_then_change_and_recreate_elsewhere(
    stack: Settings, shop: str, declare: Declare
) -> None:
    integration = declare("postgres", "iceberg", ("products",))
    sync_once(stack, integration)
    reset_integration(stack, integration.name)
    execute(shop, "UPDATE products SET name = 'After reset' WHERE product_id = 2")
    assert sync_once(stack, integration).snapshot_rows > 0
    assert_in_sync(stack, integration)
    # Re-created with another table list and another target namespace.
    delete_integration(stack, integration.name, drop_targets=True)
    assert not open_catalog(stack).table_exists(integration.iceberg_target("products", stack))
    moved = integration.model_copy(
        update={"tables": ("products", "orders"), "namespace": f"{integration.namespace}_b"}
    )
    execute(shop, "UPDATE products SET name = 'Moved' WHERE product_id = 3")
    result = sync_once(stack, recreate(stack, moved))
    with psycopg.connect(shop) as conn:
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in moved.tables)
    assert result.snapshot_rows == rows
    assert_in_sync(stack, moved)
    assert len(slots_of(stack, moved)) == 2  # one slot and one publication: this generation's


@pytest.fixture
def sync_service(stack: Settings) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(stack)
    runtime.up(["sync"])
    try:
        yield runtime
    finally:
        runtime.stop("sync")


def polls_pass(settings: Settings, after: float, polls: int = 4) -> None:
    """Waits until the service's loop has gone round ``polls`` times after ``after``."""
    beat = heartbeat_path(settings)
    wanted = after + polls * settings.sync_poll_seconds
    wait_for(lambda: float(beat.read_text()) > wanted, 30, f"{polls} polls of the service")


def test_the_running_service_follows_delete_reset_and_create(
    stack: Settings, shop: str, declare: Declare, sync_service: LocalRuntime
) -> None:
    integration = declare("postgres", "iceberg", ("customers",))
    wait_for(lambda: in_sync(stack, integration), 60, "the service's snapshot")
    # lake.sync while the service holds the integration: it waits for the service.
    execute(shop, "UPDATE customers SET segment = 'waited' WHERE customer_id < 5")
    with Lakehouse(stack) as lake:
        result = lake.sync(integration.name)
    assert result.changes >= 4 and result.position
    assert_in_sync(stack, integration)

    deleted = run_cli("sync", "delete", integration.name).stdout
    assert "deleted" in deleted and "kept iceberg" in deleted
    execute(shop, "UPDATE customers SET segment = 'after delete' WHERE customer_id < 5")
    polls_pass(stack, time.time())
    assert slots_of(stack, integration) == []  # not re-created by the service

    recreated = recreate(stack, integration)
    wait_for(lambda: in_sync(stack, recreated), 60, "the re-created integration's snapshot")
    table = integration.iceberg_target("customers", stack)
    run_cli("sync", "reset", integration.name, "--yes")
    catalog = open_catalog(stack)
    wait_for(lambda: catalog.table_exists(table), 20, "the reset's snapshot")
    verified = run_cli("sync", "verify", integration.name, check=False)
    assert "Traceback" not in verified.stderr
    wait_for(lambda: in_sync(stack, integration), 30, "the reset integration")
    assert len(slots_of(stack, integration)) == 2  # only the newest generation's


def test_a_toml_declared_integration_is_not_deleted_behind_its_declaration(
    stack: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lakehouse.toml"
    config.write_text('[sync.declared-x]\nsource = "postgres"\ntarget = "iceberg"\n'
                      'tables = ["products"]\n')  # fmt: skip
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    refused = run_cli("sync", "delete", "declared-x", check=False)
    assert refused.returncode == 1
    assert "declared in lakehouse.toml" in refused.stderr and "Hint:" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_service_drops_the_slot_of_an_integration_removed_while_none_ran(
    stack: Settings, shop: str, declare: Declare, request: pytest.FixtureRequest
) -> None:
    """Removed from lakehouse.toml (here: from the home's store, the same for the
    service) while no follower ran, an integration left its slot holding WAL."""
    gone = declare("postgres", "iceberg", ("products",))
    kept = declare("postgres", "iceberg", ("customers",))
    for integration in (gone, kept):
        sync_once(stack, integration)
    assert len(slots_of(stack, gone)) == 2  # its slot and its publication
    IntegrationStore(stack).remove(gone.name)  # no follower runs: nobody retires it
    service: LocalRuntime = request.getfixturevalue("sync_service")
    wait_for(lambda: slots_of(stack, gone) == [], 30, "the orphan slot to be dropped")
    assert len(slots_of(stack, kept)) == 2
    service.stop("sync")
    IntegrationStore(stack).create(gone)  # for the fixture's delete
