"""The same SELECT as the same principal gives the same rows and columns on DuckDB,
Spark and Trino, and those are the expected ones.

DuckDB and Spark are governed by lakehouse's query rewrite, Trino by its own
access-control rules (a governed coordinator of its own on the session's catalog
and S3). The expected answer comes from neither: each principal's view of the
tables is built in Python from the source rows (columns left out, masks computed
with hashlib, rows filtered), and the query runs over that in a plain in-memory
DuckDB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.config import settings_environment
from lakehouse.errors import AccessDeniedError, PolicyError, QueryError
from lakehouse.governance import audit, store
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
)
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.trino import TrinoNode
from tests.integration.conftest import CLI

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_spark, pytest.mark.lakehouse_trino]
NS = "gov_engines"
CUSTOMERS = pa.table({
    "id": pa.array([1, 2, 3, 4], pa.int64()),
    "name": ["Ada", "Bo", "Carl", None],
    "email": ["ada@x.eu", "bo@y.us", None, "dee@w.eu"],
    "phone": ["+44 1111", "+1 22", "+49 3333", None],
    "region": ["EU", "US", "EU", "EU"],
})  # fmt: skip
ORDERS = pa.table({
    "order_id": pa.array([10, 11, 12, 13, 14], pa.int64()),
    "customer_id": pa.array([1, 2, 3, 1, 2], pa.int64()),
    "region": ["EU", "US", "EU", "EU", "US"],
    "amount": pa.array([5, 7, 9, 11, 13], pa.int64()),
})  # fmt: skip
QUERIES = [
    f"SELECT * FROM {NS}.customers",
    f"SELECT c.name, sum(o.amount) AS total FROM {NS}.customers c "
    f"JOIN {NS}.orders o ON o.customer_id = c.id GROUP BY c.name",
    f"WITH eu AS (SELECT id FROM {NS}.customers WHERE region = 'EU') "
    f"SELECT count(*) AS n FROM {NS}.orders WHERE customer_id IN (SELECT id FROM eu)",
    f"SELECT region, count(*) AS n FROM {NS}.customers GROUP BY region",
    f"SELECT id, email, phone FROM {NS}.customers",
    f"SELECT id FROM {NS}.customers UNION ALL SELECT order_id FROM {NS}.orders",
]
PRINCIPALS = ("analyst", "eu_analyst", "marketing")
TRINO_START_S = 240  # a second JVM on a shared two-core machine
POLICY = Policy(
    grants=[
        Grant(principal="analyst", permissions=[Permission.SELECT],
              resource=Resource(table=f"{NS}.customers", excluded_columns=["email", "phone"])),
        Grant(principal="analyst", permissions=[Permission.SELECT], resource=Resource(table=f"{NS}.orders")),
        Grant(principal="eu_analyst", permissions=[Permission.SELECT],
              resource=Resource(data_cells_filter="eu_customers")),
        Grant(principal="eu_analyst", permissions=[Permission.SELECT],
              resource=Resource(data_cells_filter="eu_orders")),
        Grant(principal="eu_analyst", permissions=[Permission.DELETE], resource=Resource(table=f"{NS}.orders")),
        Grant(principal="marketing", permissions=[Permission.SELECT], resource=Resource(table=f"{NS}.customers")),
        Grant(principal="data_engineer", permissions=[Permission.INSERT, Permission.SELECT],
              resource=Resource(table=f"{NS}.orders")),
    ],
    data_cells_filters=[
        DataCellsFilter(name="eu_customers", table=f"{NS}.customers", row_filter="region = 'EU'"),
        DataCellsFilter(name="eu_orders", table=f"{NS}.orders", row_filter="region = 'EU'"),
    ],
    masks=[
        ColumnMask(table=f"{NS}.customers", column="email", principal="marketing", kind="hash"),
        ColumnMask(table=f"{NS}.customers", column="phone", principal="marketing", kind="partial"),
    ],
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def governed(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Governed settings on the session's catalog, S3 and Spark, with the scenario's
    tables and policy (and the port of a governed Trino, see ``governed_trino``)."""
    settings = stack.model_copy(update={
        "home": tmp_path_factory.mktemp("governed"), "trino_port": free_port(),
        "trino_workers": 0, "governance_enabled": True, "principal": None,
        "trino_heap": "1G", "trino_query_memory": "512MB",
    })  # fmt: skip
    with Lakehouse(stack) as admin:
        admin.catalog.create_namespace_if_not_exists(NS)
        for name, data in (("customers", CUSTOMERS), ("orders", ORDERS)):
            if admin.catalog.table_exists(f"{NS}.{name}"):
                admin.catalog.purge_table(f"{NS}.{name}")
            admin.ingest(data, f"{NS}.{name}")
    store.update(settings, lambda _: POLICY)
    yield settings
    with Lakehouse(stack) as admin:
        for table in admin.tables(NS):
            admin.catalog.purge_table(table)
        admin.catalog.drop_namespace(NS)


@pytest.fixture(scope="module")
def governed_trino(governed: Settings) -> Iterator[Settings]:
    """A Trino coordinator of the governed home (its rules from the policy)."""
    runtime = LocalRuntime(governed)
    runtime.start_service(TrinoNode(governed), timeout=TRINO_START_S)
    try:
        yield governed
    finally:
        runtime.stop("trino")


@pytest.fixture(scope="module")
def lake_as(governed: Settings) -> Iterator[Callable[[str], Lakehouse]]:
    """A governed connection per principal (each its own DuckDB and Spark session)."""
    opened: dict[str, Lakehouse] = {}

    def connect(principal: str) -> Lakehouse:
        if principal not in opened:
            opened[principal] = Lakehouse(governed.model_copy(update={"principal": principal}))
        return opened[principal]

    yield connect
    for lake in opened.values():
        lake.close()


def partial_mask(value: str | None) -> str | None:
    return None if value is None else "*" * max(len(value) - 4, 0) + value[-4:]


def view(principal: str) -> dict[str, pa.Table]:
    """What ``principal`` may see of each table, built from the source rows."""
    customers, orders = CUSTOMERS, ORDERS
    if principal == "analyst":
        return {"customers": customers.drop_columns(["email", "phone"]), "orders": orders}
    if principal == "eu_analyst":
        eu = [r == "EU" for r in customers["region"].to_pylist()]
        eu_orders = [r == "EU" for r in orders["region"].to_pylist()]
        return {"customers": customers.filter(pa.array(eu)), "orders": orders.filter(pa.array(eu_orders))}  # fmt: skip
    hashed = [None if e is None else hashlib.sha256(e.encode()).hexdigest()
              for e in customers["email"].to_pylist()]  # fmt: skip
    masked = customers.set_column(2, "email", pa.array(hashed)).set_column(
        3, "phone", pa.array([partial_mask(p) for p in customers["phone"].to_pylist()]))  # fmt: skip
    return {"customers": masked}


def expected(principal: str, query: str) -> tuple[list[str], list[tuple[str, ...]]] | str:
    """Columns and sorted rows of ``query`` over the principal's view, or "denied"."""
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {NS}")
    for name, data in view(principal).items():
        con.register(f"_{name}", data)
        con.execute(f"CREATE TABLE {NS}.{name} AS SELECT * FROM _{name}")
    try:
        cursor = con.execute(query)
    except duckdb.Error:
        return "denied"
    return [d[0] for d in cursor.description], normalized(cursor.fetchall())


def normalized(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    """Rows as text, sorted: 5 and Decimal('5') (a sum's type) compare alike."""
    return sorted(tuple("NULL" if v is None else str(v) for v in row) for row in rows)


def answer(
    lake: Lakehouse, query: str, engine: str
) -> tuple[list[str], list[tuple[str, ...]]] | str:
    try:
        result = lake.sql(query, engine=engine)
    except AccessDeniedError:
        return "denied"
    return result.column_names, normalized([tuple(r.values()) for r in result.to_pylist()])


@pytest.mark.parametrize("engine", ["duckdb", "spark", "trino"])
def test_each_principal_gets_the_expected_answer(
    lake_as: Callable[[str], Lakehouse], engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "trino":
        request.getfixturevalue("governed_trino")
    mismatches = []
    for principal in PRINCIPALS:
        for query in QUERIES:
            want, got = expected(principal, query), answer(lake_as(principal), query, engine)
            if got != want:
                mismatches.append(f"{principal}: {query}\n  got  {got}\n  want {want}")
    assert not mismatches, "\n".join(mismatches)


def test_hidden_columns_are_denied_by_name_and_raw_handles_refused(
    lake_as: Callable[[str], Lakehouse], governed: Settings
) -> None:
    since = dt.datetime.now(dt.UTC)
    analyst = lake_as("analyst")
    for engine in ("duckdb", "spark"):
        with pytest.raises(AccessDeniedError, match="analyst has no SELECT on column email"):
            analyst.sql(f"SELECT name FROM {NS}.customers WHERE email LIKE 'a%'", engine=engine)
    with pytest.raises(QueryError, match="cannot be governed"):
        analyst.sql(f"SELECT * FROM iceberg_scan('s3://{governed.warehouse_bucket}/{NS}')")
    with pytest.raises(AccessDeniedError, match="native text"):
        analyst.sql(f"SELECT * FROM {NS}.customers", native=True)
    for handle in (analyst.duckdb, analyst.spark):
        with pytest.raises(AccessDeniedError, match=r"raw .* handle"):
            handle()
    with Lakehouse(governed) as admin:  # the admin keeps its handles and sees everything
        assert admin.duckdb().execute(f"SELECT count(email) FROM {NS}.customers").fetchone() == (3,)
    log = audit.read_log(governed, principal="analyst", since=since)
    denied = [r for r in log.to_pylist() if not r["allowed"]]
    assert {r["engine"] for r in denied} >= {"duckdb", "spark", "library"}
    # Every denied query carries its id; a refused raw handle (engine "library") ran none.
    assert all(r["query_id"] for r in denied if r["engine"] != "library")


def test_a_denied_write_changes_nothing_and_a_granted_one_lands(
    lake_as: Callable[[str], Lakehouse],
) -> None:
    query = f"INSERT INTO {NS}.orders VALUES (99, 1, 'EU', 1)"
    count = f"SELECT count(*) AS n FROM {NS}.orders"
    before = lake_as("analyst").sql(count)["n"][0].as_py()
    with pytest.raises(AccessDeniedError, match="analyst has no INSERT permission"):
        lake_as("analyst").sql(query)
    with pytest.raises(AccessDeniedError, match="every row and column"):
        lake_as("eu_analyst").sql(f"DELETE FROM {NS}.orders WHERE amount > 0")
    assert lake_as("analyst").sql(count)["n"][0].as_py() == before
    lake_as("data_engineer").sql(query)
    assert lake_as("analyst").sql(count)["n"][0].as_py() == before + 1


def test_as_of_and_the_cli_as_flag(lake_as: Callable[[str], Lakehouse], governed: Settings) -> None:
    with Lakehouse(governed) as admin:
        first = admin.history(f"{NS}.customers")[0].snapshot_id
        admin.ingest(CUSTOMERS.slice(0, 1), f"{NS}.customers")
    eu = lake_as("eu_analyst")
    now = eu.sql(f"SELECT count(*) AS n FROM {NS}.customers")["n"][0].as_py()
    then = eu.sql(f"SELECT count(*) AS n FROM {NS}.customers", as_of=first)["n"][0].as_py()
    assert (now, then) == (4, 3)  # the EU customers, and the appended EU row
    env = {**os.environ, **settings_environment(governed)}
    shown = subprocess.run([*CLI, "query", "--as", "analyst", "--format", "csv",
                            f"SELECT * FROM {NS}.customers WHERE id = 2"],
                           capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ['"id","name","region"', '2,"Bo","US"']
    denied = subprocess.run([*CLI, "query", "--as", "analyst", f"SELECT email FROM {NS}.customers"],
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert denied.returncode == 1 and "Traceback" not in denied.stderr
    assert "analyst has no SELECT on column email" in denied.stderr + denied.stdout
    assert "Hint:" in denied.stderr + denied.stdout
    exports = subprocess.run([*CLI, "env", "--as", "analyst"], capture_output=True, text=True,
                             env=env, timeout=300)  # fmt: skip
    assert "export LAKEHOUSE_PRINCIPAL=analyst" in exports.stdout


def test_tables_history_and_describe_show_a_principal_only_its_part(
    lake_as: Callable[[str], Lakehouse], governed: Settings, stack: Settings
) -> None:
    with Lakehouse(stack) as admin:
        admin.ingest(pa.table({"x": [1]}), f"{NS}.secret")
    try:
        everything = {f"{NS}.customers", f"{NS}.orders", f"{NS}.secret"}
        assert set(Lakehouse(governed).tables(NS)) == everything  # the admin
        assert sorted(lake_as("analyst").tables(NS)) == [f"{NS}.customers", f"{NS}.orders"]
        assert lake_as("data_engineer").tables(NS) == [f"{NS}.orders"]
        assert lake_as("nobody").tables(NS) == []
        columns = [c["name"] for c in lake_as("analyst").describe(f"{NS}.customers")["schema"]]
        assert columns == ["id", "name", "region"]
        assert lake_as("analyst").history(f"{NS}.orders")
        with pytest.raises(AccessDeniedError, match=r"analyst may neither DESCRIBE nor SELECT"):
            lake_as("analyst").history(f"{NS}.secret")
        env = {**os.environ, **settings_environment(governed), "LAKEHOUSE_PRINCIPAL": "analyst"}
        listed = subprocess.run([*CLI, "tables", NS], capture_output=True, text=True, env=env,
                                timeout=300)  # fmt: skip
        assert sorted(listed.stdout.split()) == [f"{NS}.customers", f"{NS}.orders"], listed.stderr
    finally:
        with Lakehouse(stack) as admin:
            admin.catalog.purge_table(f"{NS}.secret")


def test_a_rename_behind_the_policys_back_refuses_instead_of_leaking(
    lake_as: Callable[[str], Lakehouse], governed: Settings, stack: Settings
) -> None:
    """The policy binds its columns to field ids: email renamed to contact in Spark
    (the policy never hears of it) and a new email added would, by name, show the
    real emails unmasked as contact (the mask and the exclusion moving to the new,
    empty email). Now the table is refused on DuckDB and Spark and in describe."""
    from lakehouse.cli.governance import show_policy
    from lakehouse.governance import admin as policy_admin
    from lakehouse.governance.admin_objects import rebind, set_mask, unset_mask

    table = f"{NS}.people"
    with Lakehouse(stack) as lake:
        lake.ingest(CUSTOMERS.select(["id", "email", "region"]), table)
    try:
        for name in ("mk_renamed", "an_renamed"):
            policy_admin.add_principal(governed, name)
        policy_admin.grant(governed, Grant(principal="mk_renamed", permissions=[Permission.SELECT],
                                           resource=Resource(table=table)))  # fmt: skip
        set_mask(governed, ColumnMask(table=table, column="email", principal="mk_renamed",
                                      kind="hash"))  # fmt: skip
        policy_admin.grant(governed, Grant(principal="an_renamed", permissions=[Permission.SELECT],
                                           resource=Resource(table=table,
                                                             excluded_columns=["email"])))  # fmt: skip
        bound = store.load_policy(governed).column_ids[table]
        assert bound == {"email": 2}
        assert lake_as("an_renamed").sql(f"SELECT * FROM {table}").column_names == ["id", "region"]
        with Lakehouse(stack) as admin:
            admin.sql(f"ALTER TABLE {table} RENAME COLUMN email TO contact", engine="spark")
            admin.sql(f"ALTER TABLE {table} ADD COLUMN email STRING", engine="spark")
            assert admin.sql(f"SELECT count(contact) AS n FROM {table}")["n"][0].as_py() == 3
        for principal in ("mk_renamed", "an_renamed"):
            for engine in ("duckdb", "spark"):
                with pytest.raises(AccessDeniedError) as denied:
                    lake_as(principal).sql(f"SELECT * FROM {table}", engine=engine)
                said = str(denied.value)
                assert f"column email of {table}" in said and "is field 4 now" in said, said
                assert "Hint:" in said
            with pytest.raises(AccessDeniedError, match="neither DESCRIBE nor SELECT"):
                lake_as(principal).describe(table)
        stale = show_policy(store.load_policy(governed), governed)["stale"]  # governance show
        assert f"{table}: the hash mask of mk_renamed names column email, which was field 2" in (
            "\n".join(stale)
        )
        with pytest.raises(PolicyError, match="is called contact now"):
            rebind(governed, table)  # it would leave contact, the real emails, unmasked
        # The fix: move the entries to the new name and drop the old ones.
        set_mask(governed, ColumnMask(table=table, column="contact", principal="mk_renamed",
                                      kind="hash"))  # fmt: skip
        unset_mask(governed, table, "email", "mk_renamed")
        policy_admin.revoke(governed, Grant(principal="an_renamed", permissions=[Permission.SELECT],
                                            resource=Resource(table=table,
                                                              excluded_columns=["email"])))  # fmt: skip
        assert store.load_policy(governed).column_ids[table] == {"contact": 2}
        for engine in ("duckdb", "spark"):
            seen = lake_as("mk_renamed").sql(f"SELECT id, contact FROM {table} ORDER BY id",
                                             engine=engine)  # fmt: skip
            assert seen["contact"][0].as_py() == hashlib.sha256(b"ada@x.eu").hexdigest()
    finally:
        store.update(governed, lambda _: POLICY)
        with Lakehouse(stack) as admin:
            admin.catalog.purge_table(table)
