"""Which tables and columns of the catalog a governed principal sees (pure logic)."""

from __future__ import annotations

import pytest

from lakehouse.errors import AccessDeniedError
from lakehouse.governance.policy import (
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
    TagAssignment,
    TagKey,
)
from lakehouse.governance.visibility import require_visible, visible_tables

COLUMNS = {
    "retail.customers": ["id", "name", "email"],
    "retail.orders": ["order_id", "amount"],
    "hr.salaries": ["id", "salary"],
    "hr.people": ["id", "name"],
    "sales.leads": ["id", "pii_note"],
}


def grant(principal: str, *permissions: Permission, **resource: object) -> Grant:
    return Grant(principal=principal, permissions=permissions, resource=Resource(**resource))  # type: ignore[arg-type]


def tables(policy: Policy, principal: str) -> list[str]:
    asked: list[str] = []

    def columns_of(name: str) -> list[str]:
        asked.append(name)
        return COLUMNS[name]

    return visible_tables(policy, principal, list(COLUMNS), columns_of, admin="admin")


def test_tables_lists_only_what_a_principal_may_describe_or_select() -> None:
    policy = Policy(
        principals=(Principal(name="alice", roles=("readers",)), Principal(name="readers", kind="role")),
        data_cells_filters=(DataCellsFilter(name="big", table="retail.orders", row_filter="amount > 5"),),
        tag_keys=(TagKey(key="pii", values=("true", "false")),),
        tags=(TagAssignment(resource="sales.leads", tags={"pii": "true"}),
              TagAssignment(resource="sales.leads.id", tags={"pii": "false"})),
        grants=(
            grant("alice", Permission.SELECT, table="retail.customers", columns=("id",)),
            grant("readers", Permission.SELECT, data_cells_filter="big"),
            grant("alice", Permission.DESCRIBE, namespace="hr", all_tables=True),
            grant("alice", Permission.SELECT, tags={"pii": ("false",)}),
        ),
    )  # fmt: skip
    assert tables(policy, "alice") == list(COLUMNS)  # every table reached one way or another
    assert tables(policy, "bob") == []  # an unknown principal sees nothing
    assert tables(policy, "admin") == list(COLUMNS)
    narrower = policy.model_copy(update={"grants": policy.grants[:2]})
    assert tables(narrower, "alice") == ["retail.customers", "retail.orders"]


def test_namespace_describe_is_not_a_table_grant() -> None:
    policy = Policy(
        principals=(Principal(name="alice"),),
        grants=(grant("alice", Permission.DESCRIBE, namespace="hr"),),
    )
    assert tables(policy, "alice") == []


def test_describe_shows_only_selectable_columns() -> None:
    policy = Policy(
        principals=(Principal(name="alice"),),
        grants=(
            grant("alice", Permission.DESCRIBE, table="hr.salaries"),
            grant("alice", Permission.DESCRIBE, table="hr.people"),
            grant("alice", Permission.SELECT, table="hr.people", columns=("name",)),
        ),
    )  # fmt: skip
    # DESCRIBE alone: the table, without a column (Glue's GetTable under LF).
    assert (
        require_visible(policy, "alice", "hr.salaries", COLUMNS["hr.salaries"], admin="admin") == []
    )
    assert require_visible(policy, "alice", "hr.people", COLUMNS["hr.people"], admin="admin") == [
        "name"
    ]
    assert require_visible(policy, "admin", "hr.people", COLUMNS["hr.people"], admin="admin") == [
        "id",
        "name",
    ]
    with pytest.raises(
        AccessDeniedError, match=r"alice may neither DESCRIBE nor SELECT retail\.orders"
    ):
        require_visible(policy, "alice", "retail.orders", COLUMNS["retail.orders"], admin="admin")
