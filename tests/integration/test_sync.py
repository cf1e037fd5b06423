"""Zero-ETL integrations on real PostgreSQL, OpenSearch, catalog and S3 servers.

Every test ends by comparing source and target by key and by content hash
(`lakehouse.sync.verify`), which also counts duplicated keys.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.simulate import ShopSimulator
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.deadletters import TABLE as DEAD_LETTERS
from lakehouse.sync.iceberg_target import IcebergTarget
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.status import StatusStore
from lakehouse.sync.verify import verify
from sample_data.shop import SHOP_TABLES, load_shop
from tests.integration.conftest import CLI, run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]

SHOP_SCALE = 0.01
Declare = Callable[..., Integration]


@pytest.fixture
def shop(postgres_dsn: str) -> str:
    """A fresh database holding the shop sample at a small scale."""
    with psycopg.connect(postgres_dsn) as conn:
        load_shop(conn, scale=SHOP_SCALE, seed=7)
    return postgres_dsn


@pytest.fixture
def declare(stack: Settings, shop: str, request: pytest.FixtureRequest) -> Iterator[Declare]:
    """Declares integrations on the test's shop database; deletes them (and their slots) after."""
    database = conninfo_to_dict(shop)["dbname"]
    store = IntegrationStore(stack)
    names: list[str] = []

    def make(source: str, target: str, tables: tuple[str, ...], **options: Any) -> Integration:
        name = f"t{len(names)}-{database[-6:]}"
        options.setdefault("namespace", database)
        integration = Integration(name=name, source=source, target=target, tables=tables,
                                  database=database, **options)  # fmt: skip
        store.create(integration)
        names.append(name)
        return integration

    yield make
    for name in names:
        delete_integration(stack, name)


def sync_once(settings: Settings, integration: Integration) -> Any:
    with Lakehouse(settings) as lake:  # the library call behind `sync run NAME`
        return lake.sync(integration.name)


def assert_in_sync(settings: Settings, integration: Integration) -> None:
    for report in verify(settings, integration):
        assert report.source_rows > 0, report
        assert report.ok, (
            f"{integration.name} {report.table} -> {report.target}: missing {report.missing[:5]}, "
            f"extra {report.extra[:5]}, different {report.different[:5]}, "
            f"duplicates {report.duplicates}"
        )


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def test_snapshot_then_streamed_changes_reach_iceberg(
    stack: Settings, shop: str, declare: Declare
) -> None:
    integration = declare("postgres", "iceberg", SHOP_TABLES)
    first = sync_once(stack, integration)
    with psycopg.connect(shop) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SHOP_TABLES}
    assert first.snapshot_rows == sum(counts.values())
    assert_in_sync(stack, integration)

    stats = ShopSimulator(shop, rate=400, seed=3).run(duration=2)
    assert stats.inserts and stats.updates and stats.deletes
    second = sync_once(stack, integration)
    assert second.snapshot_rows == 0 and second.changes > 0
    assert_in_sync(stack, integration)
    # The checkpoint is part of the data's own commit.
    orders = open_catalog(stack).load_table(integration.iceberg_target("orders", stack))
    snapshot = orders.current_snapshot()
    assert snapshot is not None
    assert snapshot.summary is not None
    assert snapshot.summary.get(f"lakehouse.sync.{integration.name}") == second.position
    identifier = orders.schema().identifier_field_names()
    assert identifier == {"order_id"}


def test_changes_reach_opensearch_directly_and_through_the_lake(
    stack: Settings, shop: str, declare: Declare, opensearch: Any, opensearch_prefix: str
) -> None:
    to_lake = declare("postgres", "iceberg", ("products",))
    to_search = declare("postgres", "opensearch", ("customers", "products"),
                        index_prefix=opensearch_prefix)  # fmt: skip
    lake_to_search = declare("iceberg", "opensearch", (to_lake.iceberg_target("products", stack),),
                             index_prefix=opensearch_prefix + "lake-", namespace=None)  # fmt: skip
    for integration in (to_lake, to_search, lake_to_search):
        sync_once(stack, integration)
    execute(
        shop,
        "UPDATE products SET price = price + 1 WHERE product_id <= 5",
        "INSERT INTO products (sku, name, category, brand, price, cost, created_at) "
        "VALUES ('SKU-NEW-1', 'New thing', 'Toys', 'Acme', 9.99, 5.00, now())",
        "DELETE FROM products WHERE sku = 'SKU-NEW-1'",
        "INSERT INTO products (sku, name, category, brand, price, cost, created_at) "
        "VALUES ('SKU-NEW-2', 'Kept thing', 'Toys', 'Acme', 19.99, 5.00, now())",
    )
    for integration in (to_lake, to_search, lake_to_search):
        sync_once(stack, integration)
        assert_in_sync(stack, integration)
    index = to_search.index_name("products", stack)
    mapping = opensearch.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["price"]["type"] == "double"
    assert mapping["properties"]["product_id"]["type"] == "long"
    assert mapping["properties"]["name"]["type"] == "text"
    found = opensearch.search(index=index, body={"query": {"match": {"name": "kept"}}})
    assert [hit["_source"]["sku"] for hit in found["hits"]["hits"]] == ["SKU-NEW-2"]


@pytest.mark.lakehouse_trino
def test_merge_on_read_deletes_reach_opensearch(
    stack: Settings, stack_services: list[str], shop: str, declare: Declare, opensearch: Any,
    opensearch_prefix: str,
) -> None:  # fmt: skip
    """Trino deletes with position-delete files: the index is compared in full instead."""
    if "trino" not in stack_services:
        pytest.skip("needs trino")
    to_lake = declare("postgres", "iceberg", ("customers",))
    sync_once(stack, to_lake)
    table = to_lake.iceberg_target("customers", stack)
    # A copy the Zero-ETL sync does not own, so Trino may change it.
    namespace = table.split(".")[0]
    with Lakehouse(stack) as lake:
        lake.sql(f"CREATE TABLE {namespace}.people AS SELECT * FROM {table}", engine="trino")
        to_search = declare("iceberg", "opensearch", (f"{namespace}.people",),
                            key=("customer_id",), index_prefix=opensearch_prefix, namespace=None)  # fmt: skip
        sync_once(stack, to_search)
        lake.sql(f"DELETE FROM {namespace}.people WHERE customer_id % 3 = 0", engine="trino")
        lake.sql(f"UPDATE {namespace}.people SET city = 'Nowhere' WHERE customer_id % 3 = 1",
                 engine="trino")  # fmt: skip
    result = sync_once(stack, to_search)
    assert result.changes > 0
    assert_in_sync(stack, to_search)
    index = to_search.index_name(f"{namespace}.people", stack)
    opensearch.indices.refresh(index=index)
    nowhere = opensearch.count(index=index, body={"query": {"term": {"city.keyword": "Nowhere"}}})
    assert nowhere["count"] > 0


def test_the_syncs_own_merge_on_read_reaches_opensearch_incrementally(
    stack: Settings, shop: str, declare: Declare, opensearch_prefix: str
) -> None:
    """Position deletes the sync writes are followed change by change, not compared in full."""
    merge_on_read = stack.model_copy(update={"sync_iceberg_write_mode": "merge-on-read"})
    to_lake = declare("postgres", "iceberg", ("customers",))
    table = to_lake.iceberg_target("customers", stack)
    to_search = declare("iceberg", "opensearch", (table,), index_prefix=opensearch_prefix,
                        namespace=None)  # fmt: skip
    sync_once(merge_on_read, to_lake)
    sync_once(stack, to_search)
    execute(
        shop,
        "UPDATE customers SET city = 'Nowhere' WHERE customer_id IN (2, 5, 9)",
        "DELETE FROM customers WHERE customer_id IN (SELECT customer_id FROM customers c "
        "WHERE NOT EXISTS (SELECT FROM orders o WHERE o.customer_id = c.customer_id) "
        "AND customer_id NOT IN (2, 5, 9) ORDER BY customer_id LIMIT 2)",
    )
    sync_once(merge_on_read, to_lake)
    tasks = open_catalog(stack).load_table(table).scan().plan_files()
    assert any(task.delete_files for task in tasks), "the sync wrote no position deletes"
    result = sync_once(stack, to_search)
    assert result.changes == 5  # three updated, two deleted: not every row again
    assert_in_sync(stack, to_search)
    assert_in_sync(stack, to_lake)


def test_a_new_source_column_evolves_both_targets(
    stack: Settings, shop: str, declare: Declare, opensearch: Any, opensearch_prefix: str
) -> None:
    to_lake = declare("postgres", "iceberg", ("customers",))
    to_search = declare("postgres", "opensearch", ("customers",), index_prefix=opensearch_prefix)
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
    execute(
        shop,
        "ALTER TABLE customers ADD COLUMN loyalty_points integer",
        "UPDATE customers SET loyalty_points = customer_id * 10 WHERE customer_id % 2 = 0",
    )
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
        assert_in_sync(stack, integration)
    table = open_catalog(stack).load_table(to_lake.iceberg_target("customers", stack))
    assert str(table.schema().find_field("loyalty_points").field_type) == "int"
    index = to_search.index_name("customers", stack)
    mapping = opensearch.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["loyalty_points"]["type"] == "integer"


def test_values_written_before_a_column_is_dropped_keep_it_when_one_pass_reads_both(
    stack: Settings, shop: str, declare: Declare, opensearch: Any, opensearch_prefix: str
) -> None:
    """One pass reads changes made under two shapes of the table: each row keeps what
    it was written with (the target keeps a dropped column, as when two passes read
    them). The batch took the last shape for every row: 'before 1' became null."""
    to_lake = declare("postgres", "iceberg", ("customers",))
    to_search = declare("postgres", "opensearch", ("customers",), index_prefix=opensearch_prefix)
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
    execute(
        shop,
        "ALTER TABLE customers ADD COLUMN note text",
        "UPDATE customers SET note = 'before ' || customer_id WHERE customer_id <= 3",
        "ALTER TABLE customers DROP COLUMN note",
        "UPDATE customers SET email = email || '.x' WHERE customer_id = 3",
    )
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
        assert_in_sync(stack, integration)
    table = open_catalog(stack).load_table(to_lake.iceberg_target("customers", stack))
    rows = table.scan(row_filter="customer_id <= 3").to_arrow().to_pylist()
    notes = {row["customer_id"]: row["note"] for row in rows}
    # Row 3's newest image was written without the column.
    assert notes == {1: "before 1", 2: "before 2", 3: None}
    index = to_search.index_name("customers", stack)
    found = opensearch.search(index=index, body={"query": {"terms": {"customer_id": [1, 2, 3]}}})
    sources = {hit["_source"]["customer_id"]: hit["_source"] for hit in found["hits"]["hits"]}
    assert {k: v.get("note") for k, v in sources.items()} == {1: "before 1", 2: "before 2", 3: None}


def test_an_incompatible_column_change_stops_the_integration(
    stack: Settings, shop: str, declare: Declare
) -> None:
    integration = declare("postgres", "iceberg", ("products",))
    sync_once(stack, integration)
    table_name = integration.iceberg_target("products", stack)
    before = open_catalog(stack).load_table(table_name).current_snapshot()
    execute(
        shop,
        "ALTER TABLE products ALTER COLUMN created_at TYPE text",
        "UPDATE products SET created_at = 'last spring' WHERE product_id = 1",
    )
    result = run_cli("sync", "run", integration.name, check=False)
    assert result.returncode == 1
    assert "cannot be applied" in result.stderr and table_name in result.stderr
    assert "Hint:" in result.stderr
    status = StatusStore(stack).read(integration.name)
    assert status.state == "failed" and "created_at" in status.last_error
    after = open_catalog(stack).load_table(table_name).current_snapshot()
    assert before is not None and after is not None
    assert after.snapshot_id == before.snapshot_id  # nothing half-applied
    # The hint's way out works: start over, and the target takes the new type.
    assert f"lakehouse sync reset {integration.name}" in result.stderr
    run_cli("sync", "reset", integration.name, "--yes")
    sync_once(stack, integration)
    assert_in_sync(stack, integration)


def test_values_a_target_cannot_take_go_to_the_dead_letter_table(
    stack: Settings, shop: str, declare: Declare, opensearch_prefix: str, opensearch: Any
) -> None:
    to_lake = declare("postgres", "iceberg", ("products", "customers"))
    to_search = declare("postgres", "opensearch", ("customers",), index_prefix=opensearch_prefix)
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
    execute(
        shop,
        "UPDATE products SET price = 'NaN' WHERE product_id = 1",
        "UPDATE customers SET signup_date = 'infinity' WHERE customer_id = 2",
        "UPDATE customers SET city = 'Still synced' WHERE customer_id = 3",
    )
    for _ in range(2):  # a second run must not record them twice
        for integration in (to_lake, to_search):
            sync_once(stack, integration)
    letters = open_catalog(stack).load_table(DEAD_LETTERS).scan().to_arrow().to_pylist()
    mine = {(d["integration"], d["source_table"], d["row_key"]): d for d in letters
            if d["integration"] in (to_lake.name, to_search.name)}  # fmt: skip
    # row_key holds the key as the target holds it (an integer here) on every path.
    assert set(mine) == {
        (to_lake.name, "products", json.dumps({"product_id": 1})),
        (to_lake.name, "customers", json.dumps({"customer_id": 2})),
        (to_search.name, "customers", json.dumps({"customer_id": 2})),
    }
    assert "NaN" in mine[(to_lake.name, "products", '{"product_id": 1}')]["reason"]
    assert "infinity" in mine[(to_search.name, "customers", '{"customer_id": 2}')]["reason"]
    for integration in (to_lake, to_search):
        assert_in_sync(stack, integration)  # everything else, including customer 3
    assert StatusStore(stack).read(to_lake.name).dead_letters == 2


def follower(integrations: list[Integration], log: Path) -> subprocess.Popen[bytes]:
    """`lakehouse sync run --follow` in its own process, its output appended to ``log``."""
    names = [i.name for i in integrations]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*CLI, "--verbose", "sync", "run", *names, "--follow"],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )  # fmt: skip


def background_traffic(dsn: str, rate: float) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: ShopSimulator(dsn, rate=rate, seed=11).run(stop=stop), daemon=True
    )
    thread.start()
    return stop, thread


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    stack: Settings,
    shop: str,
    declare: Declare,
    opensearch_prefix: str,
    opensearch: Any,
    tmp_path: Path,
) -> None:
    to_lake = declare("postgres", "iceberg", SHOP_TABLES)
    to_search = declare("postgres", "opensearch", ("orders", "customers"),
                        index_prefix=opensearch_prefix)  # fmt: skip
    rng = random.Random(20261127)
    target = IcebergTarget(open_catalog(stack), to_lake.name)
    orders = to_lake.iceberg_target("orders", stack)
    stop, traffic = background_traffic(shop, rate=300)
    positions: list[object] = [None]
    try:
        for _ in range(10):
            process = follower([to_lake, to_search], tmp_path / "follower.log")
            # Each follower first makes progress (its checkpoint moves; how long
            # that takes depends on the machine's load), then dies at a random
            # point of its following passes: most kills land mid-pass.
            before = positions[-1]
            try:
                wait_for(lambda: target.checkpoint(orders) != before, 180,  # noqa: B023
                         f"a follower to commit past {before}")  # fmt: skip
                time.sleep(rng.uniform(0.0, 3.0))
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
            positions.append(target.checkpoint(orders))
    finally:
        stop.set()
        traffic.join(timeout=30)
    # Ten followers in a row each committed, and were killed, at a new position.
    assert len(set(positions[1:])) >= 3, positions
    for integration in (to_lake, to_search):
        sync_once(stack, integration)
        assert_in_sync(stack, integration)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls ``condition``; an error it raises counts as not yet (a server may be
    restarting) and the last one is in the timeout message."""
    deadline, last_error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}; last error: {last_error!r}"
    )


def in_sync(settings: Settings, integration: Integration) -> bool:
    return all(r.ok for r in verify(settings, integration))


@pytest.mark.slow
def test_follow_retries_through_restarts_and_catches_up(
    stack: Settings,
    shop: str,
    declare: Declare,
    opensearch_prefix: str,
    opensearch: Any,
    tmp_path: Path,
) -> None:
    from lakehouse.runtimes.local import LocalRuntime

    to_lake = declare("postgres", "iceberg", ("orders",))
    to_search = declare("postgres", "opensearch", ("orders",), index_prefix=opensearch_prefix)
    runtime = LocalRuntime(stack)
    store = StatusStore(stack)
    process = follower([to_lake, to_search], tmp_path / "follower.log")
    try:
        for integration in (to_lake, to_search):
            wait_for(lambda i=integration: in_sync(stack, i), 60, f"{integration.name} snapshot")
        for service, affected in (("postgres", to_lake), ("opensearch", to_search),
                                  ("catalog", to_lake)):  # fmt: skip
            runtime.stop(service)
            if service != "postgres":
                execute(shop, "UPDATE orders SET channel = 'phone' WHERE order_id % 7 = 0")
            wait_for(lambda a=affected: store.read(a.name).state == "retrying", 60,
                     f"{affected.name} to report the {service} outage")  # fmt: skip
            assert store.read(affected.name).last_error
            runtime.up([service])
            execute(shop, f"UPDATE orders SET status = 'returned' WHERE order_id % 11 = 0 "
                          f"AND status = 'completed' -- after {service}")  # fmt: skip
            for integration in (to_lake, to_search):
                wait_for(
                    lambda i=integration: in_sync(stack, i), 90, f"{integration.name} catch-up"
                )
        for integration in (to_lake, to_search):
            wait_for(lambda i=integration: store.read(i.name).last_error == "", 30, "a clean pass")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_sync_service_follows_declared_integrations(
    stack: Settings, shop: str, declare: Declare
) -> None:
    from lakehouse.runtimes.local import LocalRuntime

    integration = declare("postgres", "iceberg", ("customers",))
    runtime = LocalRuntime(stack)
    runtime.up(["sync"])
    try:
        wait_for(lambda: in_sync(stack, integration), 60, "the snapshot")
        execute(shop, "UPDATE customers SET segment = 'vip' WHERE customer_id < 20")
        wait_for(lambda: in_sync(stack, integration), 30, "the update")
        # A run while the service holds it waits for the service's next pass.
        execute(shop, "UPDATE customers SET segment = 'run' WHERE customer_id < 20")
        second = run_cli("sync", "run", integration.name)
        assert "changes" in second.stdout
        assert in_sync(stack, integration)
        rows = json.loads(run_cli("status", "--json").stdout)
        assert {r["name"]: r["healthy"] for r in rows}["sync"] is True
        status = json.loads(run_cli("sync", "status", "--json").stdout)
        mine = next(r for r in status if r["name"] == integration.name)
        assert mine["shown_state"] in ("idle", "streaming") and mine["changes_applied"] > 0
    finally:
        runtime.stop("sync")


def test_the_sync_commands(
    stack: Settings, shop: str, opensearch_prefix: str, opensearch: Any
) -> None:
    database = conninfo_to_dict(shop)["dbname"]
    name = f"cli-{database[-6:]}"
    run_cli("sync", "create", name, "--source", "postgres", "--target", "opensearch",
            "--tables", "products", "--database", database, "--index-prefix", opensearch_prefix)  # fmt: skip
    try:
        assert name in run_cli("sync", "list").stdout
        again = run_cli("sync", "create", name, "--source", "postgres", "--target", "iceberg",
                        "--tables", "products", check=False)  # fmt: skip
        assert again.returncode == 1 and "already exists" in again.stderr
        ran = run_cli("sync", "run", name).stdout
        assert "snapshot rows" in ran
        assert "equal" in run_cli("sync", "verify", name).stdout
        execute(shop, "DELETE FROM products WHERE product_id NOT IN "
                      "(SELECT product_id FROM order_items) AND product_id > 0")  # fmt: skip
        run_cli("sync", "run", name)
        assert "equal" in run_cli("sync", "verify", name).stdout
        reset = run_cli("sync", "reset", name, "--yes").stdout
        assert "snapshot again" in reset
        assert "snapshot rows" in run_cli("sync", "run", name).stdout
        status = json.loads(run_cli("sync", "status", "--json").stdout)
        assert next(r for r in status if r["name"] == name)["state"] == "idle"
    finally:
        assert "deleted" in run_cli("sync", "delete", name).stdout
    unknown = run_cli("sync", "run", name, check=False)
    assert unknown.returncode == 1 and f"No integration named '{name}'" in unknown.stderr
    bad = run_cli("sync", "create", "x-bad", "--source", "iceberg", "--target", "iceberg",
                  "--tables", "a.b", check=False)  # fmt: skip
    assert bad.returncode == 1 and "not supported" in bad.stderr
    with psycopg.connect(stack.postgres_dsn("postgres")) as conn:
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()
    assert f"lakehouse_{name}".replace("-", "_") not in [s[0] for s in slots]


def test_postgres_data_survives_kill_9_and_down_up(stack: Settings, postgres_dsn: str) -> None:
    from lakehouse.runtimes.local import LocalRuntime

    execute(postgres_dsn, "CREATE TABLE kept (id int PRIMARY KEY)",
            "INSERT INTO kept SELECT generate_series(1, 500)")  # fmt: skip
    runtime = LocalRuntime(stack)
    pid = runtime.pid("postgres")
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: runtime.pid("postgres") is None, 10, "postgres to die")
    runtime.up(["postgres"])
    runtime.stop("postgres")
    runtime.up(["postgres"])
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (500,)
