"""Access decisions from a policy (pure logic), checked by running the SQL they give
in DuckDB over a small table."""

from __future__ import annotations

import duckdb
import pytest

from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.access import (
    check,
    effective_tags,
    stale_entries,
    table_access,
    validated,
)
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
    TagAssignment,
)

TABLE = "retail.customers"
COLUMNS = ["id", "name", "email", "region"]
TYPES = {"id": "INTEGER", "name": "VARCHAR", "email": "VARCHAR", "region": "VARCHAR"}
ROWS = [
    (1, "Ann", "ann@example.com", "EU"),
    (2, "Bob", "bob@example.com", "US"),
    (3, "Cé", None, "EU"),
]


def select(policy: Policy, principal: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run the decision as a query, the way the DuckDB rewrite does."""
    access = table_access(policy, principal, TABLE, COLUMNS, TYPES, admin="admin")
    con = duckdb.connect()
    con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR, email VARCHAR, region VARCHAR)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", ROWS)
    projection = ", ".join(f"{c.expression} AS {c.name}" for c in access.columns)
    where = f" WHERE {access.row_filter}" if access.row_filter else ""
    rows = con.execute(f"SELECT {projection} FROM customers{where} ORDER BY 1").fetchall()
    return [c.name for c in access.columns], rows


def grant(principal: str, *permissions: Permission, **resource: object) -> Grant:
    return Grant(principal=principal, permissions=permissions, resource=Resource(**resource))  # type: ignore[arg-type]


def test_the_admin_reads_everything_unrewritten() -> None:
    access = table_access(Policy(), "admin", TABLE, COLUMNS, admin="admin")
    assert access.unrestricted and [c.name for c in access.columns] == COLUMNS


def test_no_grant_is_denied_naming_the_principal_and_permission() -> None:
    with pytest.raises(
        AccessDeniedError, match=r"alice has no SELECT permission on retail\.customers"
    ):
        table_access(Policy(), "alice", TABLE, COLUMNS, admin="admin")


def test_excluded_columns_and_a_role_grant() -> None:
    policy = Policy(
        principals=(Principal(name="alice", roles=("analyst",)),),
        grants=(grant("analyst", Permission.SELECT, table=TABLE, excluded_columns=("email",)),),
    )
    names, rows = select(policy, "alice")
    assert names == ["id", "name", "region"] and len(rows) == 3


def test_data_cells_filters_add_up_cell_by_cell() -> None:
    eu = DataCellsFilter(name="eu", table=TABLE, row_filter="region = 'EU'")
    us = DataCellsFilter(
        name="us_names", table=TABLE, row_filter="region = 'US'", columns=("id", "name", "region")
    )
    policy = Policy(
        data_cells_filters=(eu, us),
        grants=(
            grant("bob", Permission.SELECT, data_cells_filter="eu"),
            grant("bob", Permission.SELECT, data_cells_filter="us_names"),
        ),
    )
    names, rows = select(policy, "bob")
    assert names == COLUMNS
    # Bob's US row shows no email: only the EU filter grants that column.
    assert rows == [
        (1, "Ann", "ann@example.com", "EU"),
        (2, "Bob", None, "US"),
        (3, "Cé", None, "EU"),
    ]


def test_masks_apply_to_the_principal_or_its_role() -> None:
    policy = Policy(
        principals=(Principal(name="mia", roles=("marketing",)),),
        grants=(grant("marketing", Permission.SELECT, table=TABLE),),
        masks=(
            ColumnMask(table=TABLE, column="email", principal="marketing", kind="hash"),
            ColumnMask(table=TABLE, column="name", principal="mia", kind="partial"),
        ),
    )
    _, rows = select(policy, "mia")
    assert rows[0][1] == "Ann"[-4:].rjust(3, "*") and rows[2][2] is None
    assert rows[0][2] == duckdb.sql("SELECT sha256('ann@example.com')").fetchone()[0]  # type: ignore[index]


def test_a_hash_mask_of_a_number_is_refused() -> None:
    policy = Policy(
        grants=(grant("x", Permission.SELECT, table=TABLE),),
        masks=(ColumnMask(table=TABLE, column="id", principal="x", kind="hash"),),
    )
    with pytest.raises(PolicyError, match="needs a text column"):
        table_access(policy, "x", TABLE, COLUMNS, TYPES, admin="admin")


def test_tag_grants_follow_column_tags_and_new_tables() -> None:
    policy = Policy(
        tags=(
            TagAssignment(resource="retail", tags={"pii": "false"}),
            TagAssignment(resource=f"{TABLE}.email", tags={"pii": "true"}),
        ),
        grants=(grant("analyst", Permission.SELECT, tags={"pii": ("false",)}),),
    )
    assert effective_tags(policy, TABLE, "email") == {"pii": "true"}
    names, _ = select(policy, "analyst")
    assert names == ["id", "name", "region"]
    later = table_access(policy, "analyst", "retail.brand_new", ["a"], admin="admin")
    assert [c.name for c in later.columns] == ["a"]


@pytest.mark.parametrize(
    ("row_filter", "message"),
    [
        ("region = ", "not valid SQL"),
        ("id IN (SELECT 1)", "may not hold a query"),
        ("region = 'EU'; DROP TABLE retail.orders", "exactly one expression"),
        ("region region", "not a statement or alias"),
        ("count(*) > 0", "may not aggregate"),
        ("row_number() OVER () = 1", "may not use a window function"),
        ("random() < 2", "value changes between calls"),
        ("now() > DATE '2020-01-01'", "value changes between calls"),
        ("id IN (SELECT unnest(range(3)))", "may not hold a query"),
        ("email", "must be true or false"),
        ("1", "must be true or false"),
        ("id + 1", "must be true or false"),
    ],
)
def test_bad_filter_expressions_are_refused(row_filter: str, message: str) -> None:
    policy = Policy(
        data_cells_filters=(DataCellsFilter(name="f", table=TABLE, row_filter=row_filter),),
        grants=(grant("x", Permission.SELECT, data_cells_filter="f"),),
    )
    with pytest.raises(PolicyError, match=message):
        table_access(policy, "x", TABLE, COLUMNS, TYPES, admin="admin")


def test_check_of_table_and_namespace_permissions() -> None:
    policy = Policy(
        grants=(
            grant("eng", Permission.INSERT, namespace="landing", all_tables=True),
            grant("eng", Permission.CREATE_TABLE, namespace="landing"),
            grant("eng", Permission.INSERT, table=TABLE, columns=("id",)),
        )
    )
    check(policy, "eng", Permission.INSERT, table="landing.events", admin="admin")
    check(policy, "eng", Permission.CREATE_TABLE, namespace="landing", admin="admin")
    with pytest.raises(AccessDeniedError, match="CREATE_TABLE permission on retail"):
        check(policy, "eng", Permission.CREATE_TABLE, namespace="retail", admin="admin")
    with pytest.raises(AccessDeniedError, match=r"INSERT permission on retail\.customers"):
        check(
            policy, "eng", Permission.INSERT, table=TABLE, admin="admin"
        )  # a column grant is not the table


def test_a_bare_filter_column_is_refused_unless_boolean_and_text_is_canonical() -> None:
    assert validated("active", ["active"], "f", predicate=True, types={"active": "BOOLEAN"})
    assert validated("region  in ('EU','UK')", COLUMNS, "f", predicate=True, types=TYPES) == (
        "region IN ('EU', 'UK')"
    )
    assert validated("coalesce(id > 1, false)", COLUMNS, "f", predicate=True) is not None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("sum(length(email))", "may not aggregate"),
        ("name; DROP TABLE x", "exactly one expression"),
        ("uuid()", "value changes between calls"),
        ("(SELECT max(email) FROM customers)", "may not hold a query"),
    ],
)
def test_bad_mask_expressions_are_refused(expression: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        validated(expression, COLUMNS, "the mask of email", types=TYPES)


def test_a_parse_error_has_no_terminal_colour_codes() -> None:
    with pytest.raises(PolicyError) as caught:
        validated("region = ", COLUMNS, "f")
    assert "\x1b" not in caught.value.message


@pytest.mark.parametrize(
    "stale",
    [
        {"tags": (TagAssignment(resource=f"{TABLE}.phone", tags={"pii": "true"}),)},
        {"masks": (ColumnMask(table=TABLE, column="phone", principal="x", kind="null"),)},
        {"data_cells_filters": (DataCellsFilter(name="f", table=TABLE, row_filter="phone > 3"),)},
        {
            "data_cells_filters": (
                DataCellsFilter(name="f", table=TABLE, excluded_columns=("phone",)),
            )
        },
        {"grants": (grant("y", Permission.SELECT, table=TABLE, excluded_columns=("phone",)),)},
    ],
)
def test_a_policy_naming_a_renamed_column_denies_the_table(stale: dict[str, object]) -> None:
    """The policy is keyed by column name: after RENAME COLUMN phone TO contact a stale
    entry would leave contact unprotected, so the table is closed until it is fixed."""
    base = Policy(grants=(grant("x", Permission.SELECT, table=TABLE),))
    policy = base.model_copy(update={k: getattr(base, k) + v for k, v in stale.items()})  # type: ignore[operator]
    assert stale_entries(base, TABLE, COLUMNS) == []
    assert [e.column for e in stale_entries(policy, TABLE, COLUMNS)] == ["phone"]
    with pytest.raises(
        AccessDeniedError,
        match=r"column phone of retail\.customers .* that column which retail\.customers no",
    ):
        table_access(policy, "x", TABLE, COLUMNS, TYPES, admin="admin")
    assert table_access(policy, "admin", TABLE, COLUMNS, TYPES, admin="admin").unrestricted
