"""The governance rewrite (pure logic): statements of a governed principal are
translated with the decided access and run in an in-memory DuckDB whose catalog
``lake`` stands in for the lake, so each test checks rows, not SQL text."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from lakehouse.engines.translate import translate
from lakehouse.errors import AccessDeniedError, QueryError
from lakehouse.governance.access import table_access
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
)
from lakehouse.governance.rewrite import Governance, _require_whole

SCHEMA = {
    "retail.customers": {"id": "INTEGER", "name": "VARCHAR", "email": "VARCHAR",
                         "region": "VARCHAR"},
    "retail.orders": {"order_id": "INTEGER", "customer_id": "INTEGER", "amount": "INTEGER"},
}  # fmt: skip
POLICY = Policy(
    grants=[
        Grant(principal="analyst", permissions=[Permission.SELECT],
              resource=Resource(table="retail.customers", excluded_columns=["email"])),
        Grant(principal="analyst", permissions=[Permission.SELECT],
              resource=Resource(table="retail.orders")),
        Grant(principal="eu", permissions=[Permission.SELECT],
              resource=Resource(data_cells_filter="eu_customers")),
        Grant(principal="eu", permissions=[Permission.SELECT],
              resource=Resource(data_cells_filter="eu_orders")),
        Grant(principal="marketing", permissions=[Permission.SELECT],
              resource=Resource(table="retail.customers")),
        Grant(principal="writer", permissions=[Permission.INSERT, Permission.SELECT],
              resource=Resource(table="retail.orders")),
    ],
    data_cells_filters=[
        DataCellsFilter(name="eu_customers", table="retail.customers", row_filter="region = 'EU'"),
        DataCellsFilter(name="eu_orders", table="retail.orders",
                        row_filter="customer_id IN (1, 3)"),
    ],
    masks=[ColumnMask(table="retail.customers", column="email", principal="marketing",
                      kind="hash")],
)  # fmt: skip


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    con.execute("CREATE SCHEMA lake.retail")
    con.execute("CREATE TABLE lake.retail.customers (id INTEGER, name VARCHAR, email VARCHAR, region VARCHAR)")  # fmt: skip
    con.execute("INSERT INTO lake.retail.customers VALUES (1, 'Ann', 'ann@x.org', 'EU'), "
                "(2, 'Bob', 'bob@x.org', 'US'), (3, 'Cé', NULL, 'EU')")  # fmt: skip
    con.execute("CREATE TABLE lake.retail.orders (order_id INTEGER, customer_id INTEGER, amount INTEGER)")  # fmt: skip
    con.execute("INSERT INTO lake.retail.orders VALUES (10, 1, 5), (11, 2, 7), (12, 3, 9)")
    con.execute("USE lake.retail")
    yield con
    con.close()


def governed(principal: str, text: str, engine: str = "duckdb",
             snapshots: dict[str, int] | None = None) -> str:  # fmt: skip
    """The SQL ``principal``'s ``text`` runs as (the decision as decide() makes it)."""
    governance = Governance(principal, engine, text, "retail", "lake")
    governance.plan()
    for name in governance.reads:
        types = SCHEMA[name]
        governance.accesses[name] = table_access(POLICY, principal, name, list(types), types,
                                                 admin="admin")  # fmt: skip
        governance.all_columns[name] = tuple(types)
    return translate(text, engine, snapshots, SCHEMA, governance).sql


def run(con: duckdb.DuckDBPyConnection, principal: str, text: str) -> tuple[list[str], list]:
    cursor = con.execute(governed(principal, text))
    return [d[0] for d in cursor.description], sorted(cursor.fetchall())


def test_star_yields_only_the_visible_columns(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = run(con, "analyst", "SELECT * FROM retail.customers")
    assert columns == ["id", "name", "region"]
    assert rows == [(1, "Ann", "EU"), (2, "Bob", "US"), (3, "Cé", "EU")]


def test_row_filters_hold_in_joins_subqueries_ctes_and_unions(con: duckdb.DuckDBPyConnection) -> None:  # fmt: skip
    queries = {
        "SELECT c.name, o.amount FROM retail.customers c JOIN retail.orders o ON o.customer_id = c.id": 2,
        "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders)": 2,
        "WITH t AS (SELECT * FROM retail.orders) SELECT * FROM t": 2,
        "SELECT id FROM retail.customers UNION ALL SELECT order_id FROM retail.orders": 4,
        "SELECT * FROM retail.customers c, LATERAL (SELECT amount FROM retail.orders o WHERE o.customer_id = c.id)": 2,
        "SELECT (SELECT count(*) FROM retail.orders) AS n": 1,
    }  # fmt: skip
    for text, count in queries.items():
        _, rows = run(con, "eu", text)
        assert len(rows) == count, text
        _, admin_rows = run(con, "admin", text)
        assert len(admin_rows) >= count, text
    assert run(con, "eu", "SELECT (SELECT count(*) FROM retail.orders) AS n")[1] == [(2,)]


def test_a_cte_shadowing_a_table_is_not_the_table(con: duckdb.DuckDBPyConnection) -> None:
    text = "WITH customers AS (SELECT 7 AS id) SELECT * FROM customers"
    assert run(con, "analyst", text) == (["id"], [(7,)])
    # Inside its own body the name is still the table (DuckDB's scoping): governed.
    text = "WITH customers AS (SELECT * FROM customers) SELECT * FROM customers"
    assert run(con, "eu", text)[0] == ["id", "name", "email", "region"]
    assert len(run(con, "eu", text)[1]) == 2


def test_masks_apply(con: duckdb.DuckDBPyConnection) -> None:
    _, rows = run(con, "marketing", "SELECT id, email FROM retail.customers WHERE id = 1")
    assert rows == [(1, con.execute("SELECT sha256('ann@x.org')").fetchone()[0])]


@pytest.mark.parametrize("text", [
    "SELECT email FROM retail.customers",
    "SELECT c.email FROM retail.customers AS c",
    "SELECT name FROM retail.customers ORDER BY email",
    "SELECT count(*) FROM retail.customers WHERE email LIKE 'a%'",
])  # fmt: skip
def test_a_hidden_column_is_denied_by_name(text: str) -> None:
    with pytest.raises(AccessDeniedError, match="analyst has no SELECT on column email") as no:
        governed("analyst", text)
    assert "permission" not in no.value.message  # one sentence, not "… email permission"
    assert "grant SELECT ON TABLE retail.customers COLUMNS email TO analyst" in no.value.hint


def test_an_alias_named_like_a_hidden_column_is_fine(con: duckdb.DuckDBPyConnection) -> None:
    text = "SELECT name AS email FROM retail.customers ORDER BY email"
    assert run(con, "analyst", text)[0] == ["email"]


@pytest.mark.parametrize("text", [
    "SELECT * FROM read_parquet('s3://warehouse/retail/customers/data/x.parquet')",
    "SELECT * FROM iceberg_scan('s3://warehouse/retail/customers')",
    "SELECT * FROM query_table('retail.customers')",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM other.retail.customers",
    "COPY retail.customers TO 'out.csv'",
    "ATTACH 'x.db' AS x",
    "DESCRIBE retail.customers",
    "CREATE VIEW retail.v AS SELECT 1",
    "SET threads = 1",
])  # fmt: skip
def test_what_cannot_be_governed_is_refused(text: str) -> None:
    with pytest.raises(QueryError, match="cannot be governed for analyst"):
        governed("analyst", text)


def test_column_aliases_over_hidden_columns_are_refused() -> None:
    with pytest.raises(QueryError, match="column aliases"):
        governed("analyst", "SELECT * FROM retail.customers AS c(a, b, c)")


def test_as_of_pins_the_table_inside_the_projection() -> None:
    sql = governed("eu", "SELECT * FROM retail.orders", snapshots={"retail.orders": 42})
    assert "AT (VERSION => 42)" in sql and "customer_id IN (1, 3)" in sql


def test_writes_need_their_permission() -> None:
    governance = Governance("writer", "duckdb", "INSERT INTO retail.orders SELECT * FROM retail.orders", "retail", "lake")  # fmt: skip
    governance.plan()
    assert [w.permission for w in governance.writes] == [Permission.INSERT]
    assert governance.reads == ("retail.orders",)  # the source is governed, the target not
    delete = Governance("eu", "duckdb", "DELETE FROM retail.orders WHERE amount > 1", "retail", "lake")  # fmt: skip
    delete.plan()
    assert delete.whole_targets == ("retail.orders",)
    with pytest.raises(AccessDeniedError, match="every row and column"):
        _require_whole(delete, POLICY, "admin", "retail.orders", SCHEMA)


def test_spark_gets_the_masks_in_its_dialect() -> None:
    sql = governed("marketing", "SELECT email FROM retail.customers", engine="spark")
    assert "SHA2(" in sql and "lake.retail.customers" in sql


def test_unnamed_columns_are_headed_as_written_not_as_rewritten(
    con: duckdb.DuckDBPyConnection,
) -> None:
    text = ("SELECT (SELECT max(email) FROM customers), 2 IN (SELECT id FROM customers), "
            "id + 1, upper(name) FROM customers WHERE id = 1")  # fmt: skip
    admin_headers = [d[0] for d in con.execute(text).description]
    for principal in ("marketing", "eu"):
        headers, _ = run(con, principal, text)
        assert headers == admin_headers, principal
        assert not any("sha256" in h or "EU" in h for h in headers)
    for engine in ("spark",):  # translate heads them too: the same names
        sql = governed("marketing", text, engine)
        assert "AS `(SELECT max(email) FROM customers)`" in sql, sql
    union = "SELECT count(*) FROM customers UNION ALL SELECT (SELECT max(email) FROM customers)"
    assert run(con, "marketing", union)[0] == [d[0] for d in con.execute(union).description]


def test_engine_errors_show_the_text_as_written_never_the_rewrite(
    con: duckdb.DuckDBPyConnection,
) -> None:
    text = "SELECT email FROM customers WHERE id = 'not a number'"
    governance = Governance("eu", "duckdb", text, "retail", "lake")
    governance.plan()
    governance.accesses["retail.customers"] = table_access(
        POLICY, "eu", "retail.customers", list(SCHEMA["retail.customers"]),
        SCHEMA["retail.customers"], admin="admin")  # fmt: skip
    governance.all_columns["retail.customers"] = tuple(SCHEMA["retail.customers"])
    rewritten = translate(text, "duckdb", None, SCHEMA, governance).sql
    with pytest.raises(duckdb.Error) as raised:
        con.execute(rewritten)
    engine_error = QueryError("duckdb", rewritten, str(raised.value))
    assert "region = 'EU'" in str(engine_error)  # what the engine said leaks the filter
    shown = str(governance.original_error(engine_error))
    assert "region" not in shown and "lake.retail" not in shown, shown
    assert "query: SELECT email FROM customers WHERE id = 'not a number'" in shown
    assert "Could not convert string 'not a number'" in shown
    quoting = QueryError("duckdb", rewritten, "Binder Error: in WHERE (region = 'EU') nope")
    assert "withheld" in str(governance.original_error(quoting))


def test_time_travel_hides_columns_the_table_no_longer_has(con: duckdb.DuckDBPyConnection) -> None:
    """A column dropped since (and so no longer named by the policy, e.g. its
    exclusion removed as stale) must not come back through an older snapshot."""
    old = {"retail.customers": {**SCHEMA["retail.customers"], "ssn": "VARCHAR"}}
    con.execute("CREATE SCHEMA IF NOT EXISTS lake.old")
    con.execute("CREATE OR REPLACE TABLE lake.old.customers AS "
                "SELECT *, 'secret-' || id AS ssn FROM lake.retail.customers")  # fmt: skip
    text = "SELECT * FROM old.customers"
    governance = Governance("marketing", "duckdb", text, "retail", "lake")
    governance.plan()
    name = "old.customers"
    policy = POLICY.model_copy(update={"grants": (*POLICY.grants, Grant(
        principal="marketing", permissions=[Permission.SELECT], resource=Resource(table=name)))})  # fmt: skip
    governance.current_columns = {name: tuple(SCHEMA["retail.customers"])}
    from lakehouse.governance.rewrite import _read

    _read(governance, policy, "admin", name, {name: old["retail.customers"]})
    sql = translate(text, "duckdb", None, {name: old["retail.customers"]}, governance).sql
    cursor = con.execute(sql)
    assert [d[0] for d in cursor.description] == ["id", "name", "email", "region"]
    assert (
        "time travel: columns the table no longer has hidden" in governance.accesses[name].applied
    )


@pytest.mark.parametrize("path", ["'s3://warehouse/retail/customers/data/x.parquet'",
                                  '"/etc/hostname"', "'~/orders.csv'", "'./x.csv'"])  # fmt: skip
def test_a_file_path_in_from_is_refused_with_its_reason(path: str) -> None:
    with pytest.raises(QueryError, match="is a file path, and files are read ungoverned"):
        governed("analyst", f"SELECT * FROM {path}")
