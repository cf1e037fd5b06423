"""Targets of the Zero-ETL sync kept whole, on the session stack's real servers: an
index deleted by hand is snapshotted again (never re-created by one new row), one
target is written by one integration, and `sync create` refuses what cannot work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.errors import ConfigError, SyncError
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.verify import verify
from tests.integration.conftest import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    """The test's database, holding ``items`` (primary key id, 3 rows) and ``nopk``."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3) g")
        conn.execute("CREATE TABLE nopk (id int, name text)")
    yield str(conninfo_to_dict(postgres_dsn)["dbname"])


@pytest.fixture
def names(stack: Settings) -> Iterator[list[str]]:
    """Integration names to delete after the test (whatever it left)."""
    created: list[str] = []
    yield created
    for name in created:
        if name in IntegrationStore(stack).all():
            delete_integration(stack, name)


def create(database: str, name: str, *options: str, check: bool = False) -> Any:
    return run_cli("sync", "create", name, "--source", "postgres", "--target", "opensearch",
                   "--database", database, *options, check=check)  # fmt: skip


def test_an_index_deleted_by_hand_is_snapshotted_again_with_its_strict_mapping(
    stack: Settings, database: str, opensearch: Any, opensearch_prefix: str, names: list[str]
) -> None:
    integration = Integration(name=f"lost-{database[-8:]}", source="postgres",
                              target="opensearch", tables=("items",), database=database,
                              index_prefix=opensearch_prefix)  # fmt: skip
    IntegrationStore(stack).create(integration)
    names.append(integration.name)
    integration = IntegrationStore(stack).get(integration.name)
    index = integration.index_name("items", stack)
    with Lakehouse(stack) as lake:
        lake.sync(integration.name)
        opensearch.indices.delete(index=index)
        with psycopg.connect(stack.postgres_dsn(database), autocommit=True) as conn:
            conn.execute("INSERT INTO items VALUES (4, 'after the delete')")
        for _ in range(3):  # the pass that finds the index gone, then the snapshot
            try:
                lake.sync(integration.name)
                break
            except SyncError as exc:
                assert "is gone" in str(exc), exc
    mapping = opensearch.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    opensearch.indices.refresh(index=index)
    assert opensearch.count(index=index)["count"] == 4
    assert all(report.ok for report in verify(stack, integration))


def test_two_integrations_writing_one_index_are_refused_and_delete_keeps_the_others(
    stack: Settings, database: str, opensearch_prefix: str, names: list[str]
) -> None:
    first, second = f"one-{database[-8:]}", f"two-{database[-8:]}"
    names.extend([first, second])
    create(database, first, "--tables", "items", "--index-prefix", opensearch_prefix, check=True)
    refused = create(database, second, "--tables", "items", "--index-prefix", opensearch_prefix)
    assert refused.returncode == 1, refused.stdout
    assert f"'{first}' and '{second}' both write opensearch {opensearch_prefix}items" in (
        refused.stderr
    )
    assert "Hint:" in refused.stderr
    assert second not in IntegrationStore(stack).all()
    with pytest.raises(ConfigError, match="both write"):  # the library refuses it too
        IntegrationStore(stack).create(
            Integration(
                name=second,
                source="postgres",
                target="opensearch",
                tables=("items",),
                database=database,
                index_prefix=opensearch_prefix,
            )
        )


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--tables", "nosuch"), "Table public.nosuch does not exist"),
        (("--tables", "nopk"), "Table public.nopk has no primary key"),
        (("--tables", "items", "--key", "nosuchcol"), "has no column nosuchcol"),
        (("--tables", "items", "--index-prefix", "BAD/"), "--index-prefix must be lowercase"),
        (("--tables", "items,items"), "Table public.items is listed more than once"),
        (("--tables", "items", "--database", "nosuchdb"), "PostgreSQL has no database nosuchdb"),
    ],
)
def test_create_refuses_an_integration_that_cannot_work_and_creates_nothing(
    stack: Settings, database: str, names: list[str], options: tuple[str, ...], said: str
) -> None:
    name = f"bad-{database[-8:]}"
    names.append(name)
    # --database comes last: a repeated option takes the last value.
    result = create(database, name, *options)
    assert result.returncode == 1, result.stdout
    assert said in result.stderr and "Hint:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert name not in IntegrationStore(stack).all()
    with psycopg.connect(stack.postgres_dsn(database)) as conn:
        slots = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name "
                             "LIKE 'lakehouse_bad%%'").fetchone()  # fmt: skip
    assert slots == (0,)


def test_delete_of_an_integration_whose_database_is_gone_removes_its_state(
    stack: Settings, names: list[str]
) -> None:
    store = IntegrationStore(stack)
    name = "gone-db-" + stack.opensearch_port.__str__()[-4:]
    names.append(name)
    # Stored as an older lakehouse (or a dropped database) left it: no check at create.
    store.create(Integration(name=name, source="postgres", target="iceberg",
                             tables=("t",), database="nosuchdb_for_delete"))  # fmt: skip
    result = run_cli("sync", "delete", name)
    assert result.returncode == 0, result.stderr
    assert "could not drop replication slots" in result.stdout
    assert "nosuchdb_for_delete" in result.stdout
    assert f"deleted {name}" in result.stdout
    assert name not in store.all()
