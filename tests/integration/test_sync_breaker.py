"""Zero-ETL broken as a demanding user would, on the session stack's real PostgreSQL,
OpenSearch, catalog and S3 (issue 12, kinds 1, 2 and 4, in new ways). Each test
failed before its fix.

* Keys: composite keys holding ``|`` were one OpenSearch document (and `verify` said
  equal); a key over 512 bytes stopped the whole integration.
* Declared keys: a nullable, non-unique or unstreamed ``--key`` silently kept one
  row of several, or left deleted rows in the target; on a table without a replica
  identity, publishing it broke the application's own UPDATE and DELETE.
* `verify` said equal when source rows shared a key the target holds once.
* A wide table's index was refused (over 1,000 fields).
* `lakehouse up` on a live stack locked the shop's tables and re-declared deleted
  sample integrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.errors import ConfigError, SyncStoppedError
from lakehouse.sample import load_shop_sample
from lakehouse.sync.admin import create_integration, delete_integration
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.verify import TableReport, verify
from tests.integration.conftest import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]

LONG_KEYS = ["x" * 600, "é" * 300]  # over OpenSearch's 512-byte _id
ODD_KEYS = ["", "\\#abc", "plain", *LONG_KEYS]
# Keys of two columns that "|".join made equal: 'x|y|z'.
PIPED_KEYS = [("x|y", "z"), ("x", "y|z"), ("a\\", "|b"), ("a\\|", "b")]


@pytest.fixture
def database(postgres_dsn: str) -> str:
    return str(conninfo_to_dict(postgres_dsn)["dbname"])


@pytest.fixture
def integrations(stack: Settings, database: str) -> Iterator[list[str]]:
    """Names to delete after the test, targets dropped (whatever the test left)."""
    names: list[str] = []
    yield names
    for name in names:
        if name in IntegrationStore(stack).all():
            delete_integration(stack, name, drop_targets=True)


def execute(dsn: str, *statements: str, params: Any = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement, params)


def declare(stack: Settings, names: list[str], integration: Integration) -> Integration:
    """Stored without `sync create`'s checks, as a lakehouse.toml declaration is."""
    IntegrationStore(stack).create(integration)
    names.append(integration.name)
    return IntegrationStore(stack).get(integration.name)


def sync_once(stack: Settings, integration: Integration) -> Any:
    with Lakehouse(stack) as lake:
        return lake.sync(integration.name)


def only(reports: list[TableReport], table: str) -> TableReport:
    return next(r for r in reports if r.table == table)


def test_odd_long_and_piped_keys_each_keep_their_row_in_both_targets(
    stack: Settings, postgres_dsn: str, database: str, opensearch: Any, opensearch_prefix: str,
    integrations: list[str],
) -> None:  # fmt: skip
    execute(postgres_dsn, "CREATE TABLE piped (a text, b text, v int, PRIMARY KEY (a, b))",
            "CREATE TABLE odd (k text PRIMARY KEY, v int)")  # fmt: skip
    for i, (a, b) in enumerate(PIPED_KEYS):
        execute(postgres_dsn, "INSERT INTO piped VALUES (%s, %s, %s)", params=(a, b, i))
    for i, k in enumerate(ODD_KEYS):
        execute(postgres_dsn, "INSERT INTO odd VALUES (%s, %s)", params=(k, i))
    common: dict[str, Any] = {"source": "postgres", "tables": ("piped", "odd"),
                              "database": database}  # fmt: skip
    to_search = declare(stack, integrations, Integration(
        name=f"keys-os-{database[-8:]}", target="opensearch", index_prefix=opensearch_prefix,
        **common))  # fmt: skip
    to_lake = declare(stack, integrations, Integration(
        name=f"keys-ice-{database[-8:]}", target="iceberg", namespace=database, **common))  # fmt: skip
    for integration in (to_search, to_lake):
        assert sync_once(stack, integration).dead_letters == 0
    # Streamed too: the long key's row and a piped key's row deleted, another updated.
    execute(postgres_dsn, "DELETE FROM piped WHERE a = 'x' AND b = 'y|z'",
            "UPDATE piped SET v = 99 WHERE a = 'x|y'", "UPDATE odd SET v = 7 WHERE k = ''")  # fmt: skip
    execute(postgres_dsn, "DELETE FROM odd WHERE k = %s", params=(LONG_KEYS[0],))
    for integration in (to_search, to_lake):
        sync_once(stack, integration)
        reports = verify(stack, integration)
        assert all(r.ok for r in reports), reports
        counts = {r.table: (r.source_rows, r.target_rows) for r in reports}
        assert counts == {"piped": (3, 3), "odd": (4, 4)}, integration.name
    for table, rows in (("piped", 3), ("odd", 4)):
        index = to_search.index_name(table, stack)
        opensearch.indices.refresh(index=index)
        assert opensearch.count(index=index)["count"] == rows, index


@pytest.fixture
def key_tables(postgres_dsn: str) -> str:
    execute(
        postgres_dsn,
        "CREATE TABLE nullable (id int PRIMARY KEY, email text)",
        "CREATE TABLE shared (id int PRIMARY KEY, grp text NOT NULL)",
        "CREATE TABLE coded (id int PRIMARY KEY, code text NOT NULL UNIQUE, v int)",
        "CREATE TABLE no_identity (id int NOT NULL UNIQUE, v int)",
        "INSERT INTO nullable VALUES (1, 'a@x'), (2, NULL), (3, NULL)",
        "INSERT INTO shared VALUES (1, 'a'), (2, 'a')",
        "INSERT INTO coded SELECT g, 'c' || g, g FROM generate_series(1, 4) g",
        "INSERT INTO no_identity VALUES (1, 1), (2, 2)",
    )
    return postgres_dsn


REFUSED_KEYS = [
    ("nullable", "email", "may hold null", "SET NOT NULL"),
    ("shared", "grp", "No primary key or unique index", "CREATE UNIQUE INDEX"),
    ("coded", "code", "replica identity's column(s) id only", "REPLICA IDENTITY USING INDEX"),
    ("no_identity", "id", "refuses UPDATE and DELETE", "REPLICA IDENTITY USING INDEX"),
]


def test_create_refuses_a_key_that_cannot_match_changes_and_publishes_nothing(
    stack: Settings, key_tables: str, database: str, opensearch_prefix: str,
    integrations: list[str],
) -> None:  # fmt: skip
    for table, key, said, fix in REFUSED_KEYS:
        integration = Integration(name=f"key-{table.replace('_', '-')}-{database[-6:]}",
                                  source="postgres", target="opensearch", tables=(table,),
                                  key=(key,), database=database, index_prefix=opensearch_prefix)  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            create_integration(stack, integration)
        assert said in refused.value.message and fix in (refused.value.hint or ""), refused.value
        assert integration.name not in IntegrationStore(stack).all()
    cli = run_cli("sync", "create", f"key-cli-{database[-6:]}", "--source", "postgres",
                  "--target", "opensearch", "--database", database, "--tables", "no_identity",
                  "--key", "id", check=False)  # fmt: skip
    assert cli.returncode == 1 and "Hint: ALTER TABLE public.no_identity" in cli.stderr, cli
    assert "Traceback" not in cli.stderr + cli.stdout
    with psycopg.connect(key_tables, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        # Published, this failed: "cannot update table because it does not have a replica
        # identity and publishes updates".
        conn.execute("UPDATE no_identity SET v = 3 WHERE id = 1")
    # Done as the hint says, a key other than the primary key follows deletes and key
    # changes (before, with the default replica identity, their old rows stayed).
    execute(key_tables, "ALTER TABLE coded REPLICA IDENTITY USING INDEX coded_code_key")
    integration = Integration(name=f"key-coded-{database[-6:]}", source="postgres",
                              target="opensearch", tables=("coded",), key=("code",),
                              database=database, index_prefix=opensearch_prefix)  # fmt: skip
    create_integration(stack, integration)
    integrations.append(integration.name)
    integration = IntegrationStore(stack).get(integration.name)
    sync_once(stack, integration)
    execute(
        key_tables, "DELETE FROM coded WHERE id = 2", "UPDATE coded SET code = 'z3' WHERE id = 3"
    )
    sync_once(stack, integration)
    report = only(verify(stack, integration), "coded")
    assert report.ok and (report.source_rows, report.target_rows) == (3, 3), report


def test_a_declared_key_is_checked_before_anything_is_published(
    stack: Settings, key_tables: str, database: str, opensearch_prefix: str,
    integrations: list[str],
) -> None:  # fmt: skip
    """A lakehouse.toml declaration skips `sync create`: the runner checks the key."""
    integration = declare(stack, integrations, Integration(
        name=f"key-toml-{database[-6:]}", source="postgres", target="opensearch",
        tables=("no_identity",), key=("id",), database=database,
        index_prefix=opensearch_prefix))  # fmt: skip
    with pytest.raises(SyncStoppedError) as stopped:
        sync_once(stack, integration)
    assert "refuses UPDATE and DELETE" in stopped.value.message
    assert f"sync reset {integration.name}" in (stopped.value.hint or "")
    with psycopg.connect(key_tables, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        conn.execute("UPDATE no_identity SET v = 3 WHERE id = 1")


def test_a_declared_unique_key_other_than_the_primary_key_reaches_iceberg(
    stack: Settings, postgres_dsn: str, database: str, integrations: list[str]
) -> None:
    """The key columns are the declared ones: only the primary key was marked required,
    so Iceberg refused a nullable identifier field (a raw ValidationError, retried for
    ever), in the snapshot and in the stream."""
    execute(postgres_dsn,
            "CREATE TABLE coded (id int PRIMARY KEY, code text NOT NULL, v int)",
            "CREATE UNIQUE INDEX coded_code ON coded (code)",
            "ALTER TABLE coded REPLICA IDENTITY USING INDEX coded_code",
            "INSERT INTO coded VALUES (1, 'a', 1), (2, 'b', 2)")  # fmt: skip
    integration = Integration(name=f"coded-{database[-8:]}", source="postgres",
                              target="iceberg", tables=("coded",), key=("code",),
                              database=database, namespace=database)  # fmt: skip
    create_integration(stack, integration)
    integrations.append(integration.name)
    sync_once(stack, integration)
    execute(postgres_dsn, "UPDATE coded SET v = 10 WHERE code = 'a'",
            "UPDATE coded SET code = 'c' WHERE code = 'b'",
            "INSERT INTO coded VALUES (3, 'd', 3)", "DELETE FROM coded WHERE code = 'd'")  # fmt: skip
    sync_once(stack, integration)
    assert all(report.ok for report in verify(stack, integration))
    with Lakehouse(stack) as lake:
        table = lake.catalog.load_table(integration.iceberg_target("coded", stack))
        rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["code"])
        assert [(r["code"], r["id"], r["v"]) for r in rows] == [("a", 1, 10), ("c", 2, 2)]
        assert [
            table.schema().find_column_name(i) for i in table.schema().identifier_field_ids
        ] == ["code"]


def test_verify_counts_source_rows_that_share_a_key(
    stack: Settings, lake: Lakehouse, namespace: str, opensearch_prefix: str,
    integrations: list[str], opensearch: Any,
) -> None:  # fmt: skip
    """The index holds one document per key; verify said equal (2 / 2) of 3 rows."""
    table = f"{namespace}.visits"
    lake.ingest(pa.table({"k": [1, 1, 2], "v": ["a", "b", "c"]}), table)
    integration = declare(stack, integrations, Integration(
        name=f"dup-{namespace[-8:].replace('_', '-')}", source="iceberg", target="opensearch",
        tables=(table,), key=("k",), index_prefix=opensearch_prefix))  # fmt: skip
    sync_once(stack, integration)
    report = only(verify(stack, integration), table)
    assert not report.ok
    assert (report.source_rows, report.source_duplicates, report.target_rows) == (3, 1, 2)


def test_a_wide_table_is_indexed_and_can_grow(
    stack: Settings, postgres_dsn: str, database: str, opensearch: Any, opensearch_prefix: str,
    integrations: list[str],
) -> None:  # fmt: skip
    """520 text columns are 1,041 fields with their keywords: the index was refused
    ('Limit of total fields [1000] has been exceeded') and the integration stopped."""
    columns = ", ".join(f"c{i} text" for i in range(520))
    execute(postgres_dsn, f"CREATE TABLE wide (id int PRIMARY KEY, {columns})",
            "INSERT INTO wide (id, c0, c519) VALUES (1, 'first', 'last')")  # fmt: skip
    integration = declare(stack, integrations, Integration(
        name=f"wide-{database[-8:]}", source="postgres", target="opensearch",
        tables=("wide",), database=database, index_prefix=opensearch_prefix))  # fmt: skip
    sync_once(stack, integration)
    added = ", ".join(f"ADD COLUMN d{i} text" for i in range(600))  # past the raised limit
    execute(postgres_dsn, f"ALTER TABLE wide {added}",
            "INSERT INTO wide (id, c0, d599) VALUES (2, 'second', 'grown')")  # fmt: skip
    sync_once(stack, integration)
    report = only(verify(stack, integration), "wide")
    assert report.ok and report.target_rows == 2, report
    index = integration.index_name("wide", stack)
    assert opensearch.get(index=index, id="2")["_source"]["d599"] == "grown"


def test_up_again_on_a_live_shop_locks_nothing_and_keeps_a_deleted_integration_deleted(
    stack: Settings, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lakehouse up --services sync` (restarting the sync service) ran the shop's DDL,
    which locks every table: an application's insert deadlocked with it. And it declared
    the sample integrations again, so one the user had deleted came back."""
    settings = stack.model_copy(update={"home": tmp_path, "postgres_db": database})
    first = load_shop_sample(settings, scale=0.01)
    assert all(load.loaded for load in first)
    assert {"shop-to-lake", "shop-to-search"} <= set(IntegrationStore(settings).all())
    delete_integration(settings, "shop-to-search")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=2000")  # a wait is a failure, not a hang
    with psycopg.connect(settings.postgres_dsn()) as application:
        application.execute("UPDATE customers SET city = city WHERE customer_id = 1")
        again = load_shop_sample(settings, scale=0.01)  # the transaction above still open
    assert not any(load.loaded for load in again)
    assert "shop-to-search" not in IntegrationStore(settings).all()
