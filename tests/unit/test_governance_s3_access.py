"""Which S3 actions each principal's identity gets from the policy (pure logic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse import Settings
from lakehouse.env import environment
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
    TagAssignment,
    TagKey,
)
from lakehouse.governance.s3_access import ALL_ACTIONS, TableFiles, actions

ORDERS = TableFiles("shop.orders", ("id", "region", "email"), ("s3://warehouse/shop/orders",))
MOVED = TableFiles("shop.moved", ("id",), ("s3://warehouse/shop/moved", "s3://other/moved-data"))
TABLES = (ORDERS, MOVED)
READ_ORDERS = ["List:warehouse/shop/orders/*", "Read:warehouse/shop/orders/*"]


def select(resource: Resource, who: str = "alice") -> Grant:
    return Grant(principal=who, permissions=(Permission.SELECT,), resource=resource)


def test_a_whole_table_grant_reads_its_location_only() -> None:
    policy = Policy(grants=(select(Resource(table="shop.orders")),))
    assert actions(policy, "alice", TABLES, "admin") == READ_ORDERS
    assert actions(policy, "bob", TABLES, "admin") == []


@pytest.mark.parametrize("policy", [
    Policy(grants=(select(Resource(table="shop.orders", excluded_columns=("email",))),)),
    # Every column today, but a column added later would not be granted.
    Policy(grants=(select(Resource(table="shop.orders", columns=("id", "region", "email"))),)),
    Policy(grants=(select(Resource(data_cells_filter="eu")),),
           data_cells_filters=(DataCellsFilter(name="eu", table="shop.orders",
                                               row_filter="region = 'EU'"),)),
    Policy(grants=(select(Resource(table="shop.orders")),),
           masks=(ColumnMask(table="shop.orders", column="email", principal="alice",
                             kind="hash"),)),
    # A mask through a role counts too.
    Policy(principals=(Principal(name="alice", roles=("analysts",)),),
           grants=(select(Resource(table="shop.orders")),),
           masks=(ColumnMask(table="shop.orders", column="email", principal="analysts",
                             kind="null"),)),
], ids=["hidden column", "column list", "row filter", "mask", "role's mask"])  # fmt: skip
def test_a_restricted_table_gives_no_file_access(policy: Policy) -> None:
    assert actions(policy, "alice", TABLES, "admin") == []


def test_an_unfiltered_cells_filter_and_a_namespace_grant_read() -> None:
    policy = Policy(
        grants=(select(Resource(data_cells_filter="all")), select(Resource(namespace="shop", all_tables=True), "bob")),
        data_cells_filters=(DataCellsFilter(name="all", table="shop.orders"),),
    )  # fmt: skip
    assert actions(policy, "alice", TABLES, "admin") == READ_ORDERS
    assert actions(policy, "bob", TABLES, "admin") == sorted([
        *READ_ORDERS, "List:other/moved-data/*", "List:warehouse/shop/moved/*",
        "Read:other/moved-data/*", "Read:warehouse/shop/moved/*",
    ])  # fmt: skip


def test_tag_grants_follow_tables_and_tagged_columns_narrow_them() -> None:
    grant = select(Resource(tags={"domain": ("sales",)}))
    tagged = TagAssignment(resource="shop", tags={"domain": "sales"})
    policy = Policy(grants=(grant,), tag_keys=(TagKey(key="domain", values=("sales", "hr")),),
                    tags=(tagged,))  # fmt: skip
    assert len(actions(policy, "alice", TABLES, "admin")) == 6  # both tables, both buckets
    hr_email = TagAssignment(resource="shop.orders.email", tags={"domain": "hr"})
    narrowed = policy.model_copy(update={"tags": (tagged, hr_email)})
    assert actions(narrowed, "alice", (ORDERS,), "admin") == []


def test_insert_writes_and_admins_get_everything() -> None:
    policy = Policy(
        principals=(Principal(name="root", roles=("admin",)),),
        grants=(Grant(principal="alice", permissions=(Permission.INSERT,),
                      resource=Resource(namespace="shop", all_tables=True)),),
    )  # fmt: skip
    assert actions(policy, "alice", (ORDERS,), "admin") == ["Write:warehouse/shop/orders/*"]
    assert actions(policy, "root", TABLES, "admin") == list(ALL_ACTIONS)
    assert actions(policy, "boss", TABLES, "boss") == list(ALL_ACTIONS)


def test_env_as_a_principal_keeps_the_stack_keys_with_governance_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    settings = Settings(home=tmp_path)
    exported = environment(settings, "alice")
    assert exported["AWS_ACCESS_KEY_ID"] == settings.access_key
    assert exported["PYICEBERG_CATALOG__LAKE__TOKEN"] == settings.catalog_token
    assert not (tmp_path / "governance").exists()  # no key issued


def test_a_table_that_dropped_a_column_gives_no_file_read() -> None:
    """Its older files still hold the dropped column's values, which the policy
    (naming only columns the table has) no longer protects."""
    dropped = TableFiles(ORDERS.name, ORDERS.columns, ORDERS.locations, former=("ssn",))
    policy = Policy(grants=(Grant(principal="alice", permissions=(Permission.SELECT, Permission.INSERT),
                                  resource=Resource(table="shop.orders")),))  # fmt: skip
    assert actions(policy, "alice", (dropped,), "admin") == ["Write:warehouse/shop/orders/*"]
