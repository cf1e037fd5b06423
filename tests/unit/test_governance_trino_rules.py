"""The policy as Trino's access-control rules (pure: no server)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lakehouse.config import Settings
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
from lakehouse.governance.trino_rules import (
    LakeTable,
    access_control_properties,
    build_rules,
    rules_path,
    trino_expression,
    users_of,
)

CUSTOMERS = LakeTable("retail.customers", {"id": "BIGINT", "name": "VARCHAR", "email": "VARCHAR",
                                           "phone": "VARCHAR", "region": "VARCHAR",
                                           "amount": "DECIMAL(12, 2)"})  # fmt: skip
RAW = LakeTable("landing.raw", {"x": "BIGINT"})


def grant(principal: str, *permissions: str, **resource: Any) -> Grant:
    return Grant(
        principal=principal,
        permissions=tuple(Permission(p) for p in permissions),
        resource=Resource(**resource),
    )


def rule_for(document: dict[str, Any], user: str, schema: str, table: str) -> dict[str, Any]:
    """The first table rule Trino would apply (first match, full-match regexes)."""
    for rule in document["tables"]:
        if all(
            re.fullmatch(rule.get(key, ".*"), value)
            for key, value in (
                ("user", user),
                ("catalog", "lake"),
                ("schema", schema),
                ("table", table),
            )
        ):
            return rule
    return {"privileges": []}


def rules(policy: Policy, *tables: LakeTable) -> dict[str, Any]:
    return build_rules(policy, tables or (CUSTOMERS, RAW), admin="admin", catalog="lake").document


def test_columns_masks_and_filters_come_from_the_access_decision() -> None:
    policy = Policy(
        principals=(Principal(name="eu", kind="role"), Principal(name="bob", roles=("eu",))),
        grants=(grant("eu", "SELECT", data_cells_filter="eu_rows"),),
        data_cells_filters=(
            DataCellsFilter(
                name="eu_rows",
                table="retail.customers",
                row_filter="region = 'EU'",
                excluded_columns=("phone",),
            ),
        ),
        masks=(
            ColumnMask(table="retail.customers", column="email", principal="eu", kind="hash"),
            ColumnMask(table="retail.customers", column="amount", principal="bob", kind="null"),
        ),
    )
    rule = rule_for(rules(policy), "bob", "retail", "customers")
    assert rule["privileges"] == ["SELECT"]
    columns = {c["name"]: c for c in rule["columns"]}
    assert columns["phone"] == {"name": "phone", "allow": False}
    assert columns["email"]["mask"] == 'lower(to_hex(sha256(to_utf8("email"))))'
    assert columns["amount"]["mask"] == "CAST(NULL AS DECIMAL(12, 2))"
    assert columns["email"]["mask_environment"] == {"user": "admin"}
    assert set(columns) == {"phone", "email", "amount"}  # the others are shown as stored
    # Guarded (trino_guard): a direct rename must not move a mask or a hidden name.
    assert "THEN ((region = 'EU')) ELSE fail(" in rule["filter"]
    assert rule["filter_environment"] == {"user": "admin"}
    # Roles are not Trino users: only bob gets rules.
    assert users_of(policy, "admin") == ["bob"]


def test_cell_level_columns_become_conditional_masks() -> None:
    policy = Policy(
        grants=(
            grant("carol", "SELECT", data_cells_filter="all_rows"),
            grant("carol", "SELECT", data_cells_filter="eu_emails"),
        ),
        data_cells_filters=(
            DataCellsFilter(name="all_rows", table="retail.customers", excluded_columns=("email",)),
            DataCellsFilter(name="eu_emails", table="retail.customers", row_filter="region = 'EU'"),
        ),
        masks=(
            ColumnMask(table="retail.customers", column="email", principal="carol", kind="partial"),
        ),
    )
    rule = rule_for(rules(policy), "carol", "retail", "customers")
    email = next(c for c in rule["columns"] if c["name"] == "email")
    assert email["mask"].startswith(
        "CASE WHEN (region = 'EU') THEN CASE WHEN length(\"email\") <= 4"
    )
    # One filter admits every row: the filter is the column guard alone.
    assert "THEN (true) ELSE fail(" in rule["filter"]


def test_privileges_map_without_widening() -> None:
    policy = Policy(grants=(
        grant("dora", "INSERT", "DELETE", namespace="landing", all_tables=True),
        grant("dora", "CREATE_TABLE", namespace="landing"),
        grant("dora", "ALTER", table="retail.customers"),  # without DROP: no OWNERSHIP
        grant("erin", "ALTER", "DROP", table="retail.customers"),
    ))  # fmt: skip
    document = rules(policy)
    assert rule_for(document, "dora", "landing", "raw")["privileges"] == [
        "INSERT",
        "DELETE",
        "UPDATE",
    ]
    assert rule_for(document, "dora", "retail", "customers")["privileges"] == []
    assert rule_for(document, "erin", "retail", "customers")["privileges"] == ["OWNERSHIP"]
    # A table created later in landing: dora owns it (CREATE TABLE asks for ownership).
    new = rule_for(document, "dora", "landing", "fresh")
    assert new["privileges"] == ["INSERT", "DELETE", "UPDATE", "OWNERSHIP"]
    assert rule_for(document, "erin", "landing", "fresh")["privileges"] == []
    assert {"user": "dora", "owner": True} not in document["schemas"]


def test_tag_grants_follow_tables_and_columns() -> None:
    policy = Policy(
        tag_keys=(TagKey(key="pii", values=("true", "false")),),
        tags=(
            TagAssignment(resource="retail", tags={"pii": "false"}),
            TagAssignment(resource="retail.customers.email", tags={"pii": "true"}),
        ),
        grants=(grant("fay", "SELECT", tags={"pii": ("false",)}),),
    )
    rule = rule_for(rules(policy), "fay", "retail", "customers")
    assert rule["privileges"] == ["SELECT"]
    assert rule["columns"] == [{"name": "email", "allow": False}]


def test_admins_get_everything_unknown_users_nothing() -> None:
    policy = Policy(principals=(Principal(name="root", roles=("admin",)),),
                    grants=(grant("alice", "SELECT", table="retail.customers"),))  # fmt: skip
    document = rules(policy)
    assert rule_for(document, "root", "retail", "customers")["privileges"][:2] == [
        "SELECT",
        "INSERT",
    ]
    assert rule_for(document, "admin", "any", "thing")["privileges"][0] == "SELECT"
    assert rule_for(document, "mallory", "retail", "customers")["privileges"] == []
    catalogs = document["catalogs"]
    first = next(c for c in catalogs if re.fullmatch(c.get("user", ".*"), "mallory"))
    assert first["allow"] == "none"
    assert document["system_information"] == [{"user": "admin|root", "allow": ["read", "write"]}]


def test_a_policy_that_cannot_be_enforced_gives_nothing_and_says_why() -> None:
    policy = Policy(
        grants=(grant("gus", "SELECT", table="retail.customers"),),
        masks=(ColumnMask(table="retail.customers", column="id", principal="gus", kind="hash"),),
    )
    built = build_rules(policy, [CUSTOMERS], admin="admin", catalog="lake")
    assert rule_for(built.document, "gus", "retail", "customers")["privileges"] == []
    assert len(built.problems) == 1 and "gus on retail.customers" in built.problems[0]


def test_expression_masks_are_translated() -> None:
    assert trino_expression("left(name, 2) || '…'", CUSTOMERS) == (
        "CONCAT(CAST(SUBSTR(name, 1, 2) AS VARCHAR), CAST('…' AS VARCHAR))"
    )


def test_access_control_properties(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("LAKEHOUSE_"):
            monkeypatch.delenv(name)
    settings = Settings(home=tmp_path)
    text = access_control_properties(settings)
    assert "access-control.name=file\n" in text
    assert f"security.config-file={rules_path(settings)}\n" in text
    assert "security.refresh-period=1s\n" in text


def test_trino_refusals_become_access_denied_errors() -> None:
    from lakehouse.engines.trino import denied

    table = denied("alice", "Access Denied: Cannot select from table lake.columns_ns.t", "lake")
    assert (table.principal, table.permission, table.resource) == (
        "alice",
        "SELECT",
        "columns_ns.t",
    )
    columns = denied(
        "alice", "Access Denied: Cannot select from columns [email, phone] in table or view "
        "lake.ns.t", "lake",
    )  # fmt: skip
    assert columns.resource == "column(s) email, phone of ns.t"
    assert (
        denied("bob", "Access Denied: Cannot insert into table lake.ns.t", "lake").permission
        == "INSERT"
    )
    catalog = denied("bob", "Access Denied: Cannot access catalog memory", "lake")
    assert catalog.resource == "catalog memory" and "lakehouse grants" in (catalog.hint or "")


def test_tables_a_query_reads() -> None:
    from lakehouse.engines.trino import lake_tables_read

    query = "WITH x AS (SELECT 1) SELECT * FROM x JOIN a.b ON true JOIN c USING (k)"
    assert lake_tables_read(query, "ns") == ["a.b", "ns.c"]
    assert lake_tables_read("SELECT FROM WHERE (", "ns") is None


def test_a_refused_select_names_the_hidden_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trino names only the table; the policy says which columns. (A namespace named
    like ``..._columns_...`` once passed for Trino's own column message.)"""
    from lakehouse.engines.trino import TrinoEngine
    from lakehouse.governance import trino_rules

    monkeypatch.setattr(trino_rules, "hidden_columns", lambda settings, user, table: ["phone"])
    engine = TrinoEngine(Settings(home=tmp_path))
    error = engine._denied("alice", "Access Denied: Cannot select from table lake.my_columns.t")
    assert error.resource == "column(s) phone of my_columns.t"
    assert "phone" in (error.hint or "")


def test_a_tag_on_a_renamed_column_closes_the_table_in_trino() -> None:
    """RENAME COLUMN email TO contact left the pii tag on email: contact would show."""
    renamed = LakeTable("retail.customers", {"id": "BIGINT", "contact": "VARCHAR"})
    policy = Policy(
        tag_keys=(TagKey(key="pii", values=("true", "false")),),
        tags=(TagAssignment(resource="retail.customers.email", tags={"pii": "true"}),),
        grants=(grant("hal", "SELECT", "INSERT", table="retail.customers"),),
    )
    built = build_rules(policy, [renamed], admin="admin", catalog="lake")
    assert rule_for(built.document, "hal", "retail", "customers")["privileges"] == []
    assert rule_for(built.document, "admin", "retail", "customers")["privileges"][0] == "SELECT"
    assert any("names column email" in p for p in built.problems)
    assert rule_for(rules(policy), "hal", "retail", "customers")["privileges"] == [
        "SELECT",
        "INSERT",
    ]


def test_one_unreadable_table_does_not_close_every_other_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A table whose metadata cannot be read gets no rule; the rest keep theirs (it
    used to fail the whole rules file closed, denying every principal every table)."""
    from types import SimpleNamespace

    from lakehouse.config import load_settings
    from lakehouse.governance import trino_rules
    from lakehouse.lake import catalog as cat

    good = SimpleNamespace(
        schema=lambda: SimpleNamespace(fields=(), schema_id=0), schemas=lambda: {}
    )

    def load(catalog: object, name: str) -> object:
        if name == "ns.broken":
            raise FileNotFoundError("s3://warehouse/ns/broken/metadata/v3.metadata.json")
        return good

    monkeypatch.setattr(cat, "open_catalog", lambda settings: object())
    monkeypatch.setattr(cat, "list_tables", lambda catalog: ["ns.a", "ns.broken", "ns.b"])
    monkeypatch.setattr(cat, "load_table", load)
    tables = trino_rules.lake_tables(load_settings(home=tmp_path))
    assert [t.name for t in tables] == ["ns.a", "ns.b"]


def test_a_column_list_grant_guards_against_columns_added_later() -> None:
    policy = Policy(
        principals=(Principal(name="listed"), Principal(name="excluding"), Principal(name="eu")),
        data_cells_filters=(DataCellsFilter(name="eu_ids", table="retail.customers",
                                            row_filter="region = 'EU'", columns=("id",)),),
        grants=(
            grant("listed", "SELECT", table="retail.customers", columns=("id", "name")),
            grant("excluding", "SELECT", table="retail.customers", excluded_columns=("email",)),
            grant("eu", "SELECT", data_cells_filter="eu_ids"),
        ),
    )  # fmt: skip
    table = LakeTable(CUSTOMERS.name, CUSTOMERS.columns, schema_id=7)
    rules = build_rules(policy, [table], admin="admin", catalog="lake")
    listed = rule_for(rules.document, "listed", "retail", "customers")
    source = 'FROM "lake".information_schema.columns'
    assert source in listed["filter"]
    assert "= ARRAY['id', 'name'] THEN (true) ELSE fail(" in listed["filter"]
    assert listed["filter_environment"] == {"user": "admin"}
    eu = rule_for(rules.document, "eu", "retail", "customers")
    assert "= ARRAY['id'] THEN ((region = 'EU')) ELSE fail(" in eu["filter"]
    # All but some columns: a new column is meant to show, but a direct rename of the
    # hidden column must not show it under its new name, so it is guarded too.
    excluding = rule_for(rules.document, "excluding", "retail", "customers")["filter"]
    assert "= ARRAY['id', 'name', 'phone', 'region', 'amount'] THEN (true) ELSE fail(" in excluding
    assert rules.guarded == {"retail.customers": 7}


def test_columns_of_older_schemas_stay_hidden_from_time_travel() -> None:
    policy = Policy(principals=(Principal(name="alice"),),
                    grants=(grant("alice", "SELECT", table="retail.customers"),))  # fmt: skip
    table = LakeTable(CUSTOMERS.name, CUSTOMERS.columns, former=("ssn",))
    rule = rule_for(build_rules(policy, [table], admin="admin", catalog="lake").document,
                    "alice", "retail", "customers")  # fmt: skip
    assert rule["columns"] == [{"name": "ssn", "allow": False}]
    assert "SELECT" in rule["privileges"]
