"""The policy's columns bound to Iceberg field ids (pure logic): a rename or a drop
and re-add under an old name refuses the table instead of moving the protection.

Each case first shows the leak a name-only decision had (the decision without
field ids, as every enforcer made it before), then the refusal with them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.errors import AccessDeniedError
from lakehouse.governance.access import table_access
from lakehouse.governance.binding import bound, drift, named_columns, rebound, renamed_to
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
    TagAssignment,
)
from lakehouse.governance.s3_access import TableFiles, may_read_files
from lakehouse.governance.store import export_policy, read_policy_file
from lakehouse.governance.trino_rules import LakeTable, build_rules

TABLE = "retail.customers"
BEFORE = {"id": 1, "name": 2, "email": 3, "region": 4}
# RENAME COLUMN email TO contact, then ADD COLUMN email: the old name, a new field.
AFTER = {"id": 1, "name": 2, "contact": 3, "region": 4, "email": 5}
TYPES = {"id": "INTEGER", "name": "VARCHAR", "contact": "VARCHAR", "region": "VARCHAR",
         "email": "VARCHAR"}  # fmt: skip


def grant(principal: str, **resource: object) -> Grant:
    return Grant(principal=principal, permissions=(Permission.SELECT,),
                 resource=Resource(**resource))  # type: ignore[arg-type]  # fmt: skip


def made_on(policy: Policy, ids: dict[str, int]) -> Policy:
    """``policy`` as stored when its entries were made on a table with ``ids``."""
    return bound(policy, lambda table: ids if table == TABLE else None)


def shown(policy: Policy, principal: str, ids: dict[str, int] | None) -> dict[str, str]:
    access = table_access(policy, principal, TABLE, list(AFTER), TYPES, admin="admin", ids=ids)
    return {c.name: c.expression for c in access.columns}


def refused(policy: Policy, principal: str, column: str) -> str:
    with pytest.raises(AccessDeniedError) as caught:
        shown(policy, principal, AFTER)
    message = str(caught.value)
    assert f"column {column} of {TABLE}" in message and "Hint:" in message
    return message


def test_a_masked_column_renamed_and_its_name_reused_refuses_the_table() -> None:
    policy = made_on(Policy(grants=(grant("marketing", table=TABLE),),
                            masks=(ColumnMask(table=TABLE, column="email", principal="marketing",
                                              kind="hash"),)), BEFORE)  # fmt: skip
    assert policy.column_ids == {TABLE: {"email": 3}}
    leaked = shown(policy, "marketing", None)  # by name: the real emails, unmasked
    assert leaked["contact"] == '"contact"' and leaked["email"].startswith("sha256")
    message = refused(policy, "marketing", "email")
    assert "was field 3 when the policy named it and is field 5 now" in message


def test_a_pii_tagged_column_renamed_under_a_pii_false_grant_refuses_the_table() -> None:
    policy = made_on(Policy(
        grants=(grant("analyst", tags={"pii": ("false",)}),),
        tags=(TagAssignment(resource="retail", tags={"pii": "false"}),
              TagAssignment(resource=f"{TABLE}.email", tags={"pii": "true"})),
    ), BEFORE)  # fmt: skip
    assert "contact" in shown(policy, "analyst", None)  # by name: the emails, as pii=false
    refused(policy, "analyst", "email")


def test_an_excluded_column_renamed_and_its_name_reused_refuses_the_table() -> None:
    policy = made_on(Policy(grants=(grant("analyst", table=TABLE, excluded_columns=("email",)),)),
                     BEFORE)  # fmt: skip
    assert "contact" in shown(policy, "analyst", None)
    refused(policy, "analyst", "email")


def test_a_granted_column_dropped_and_another_added_under_its_name_is_refused() -> None:
    policy = made_on(Policy(grants=(grant("bob", table=TABLE, columns=("id", "email")),)), BEFORE)
    # DROP COLUMN email, ADD COLUMN email (another field: say, a national id)
    ids = {"id": 1, "name": 2, "region": 4, "email": 5}
    by_name = table_access(policy, "bob", TABLE, list(ids), admin="admin")
    assert [c.name for c in by_name.columns] == ["id", "email"]  # the new column, granted
    with pytest.raises(AccessDeniedError, match=r"was field 3 .* is field 5 now"):
        table_access(policy, "bob", TABLE, list(ids), admin="admin", ids=ids)


def test_a_row_filter_on_a_column_dropped_and_re_added_is_refused() -> None:
    cells = DataCellsFilter(name="eu", table=TABLE, row_filter="region = 'EU'")
    policy = made_on(Policy(grants=(grant("eu_analyst", data_cells_filter="eu"),),
                            data_cells_filters=(cells,)), BEFORE)  # fmt: skip
    ids = {**AFTER, "region": 6}
    with pytest.raises(AccessDeniedError, match="the row filter of eu"):
        table_access(policy, "eu_analyst", TABLE, list(ids), admin="admin", ids=ids)
    # a rename alone (region -> area) leaves the filter naming a column that is gone
    gone = {k: v for k, v in AFTER.items() if k != "region"} | {"area": 4}
    with pytest.raises(AccessDeniedError, match="no longer has"):
        table_access(policy, "eu_analyst", TABLE, list(gone), admin="admin", ids=gone)


def test_the_admin_and_unchanged_columns_are_not_affected() -> None:
    policy = made_on(Policy(grants=(grant("bob", table=TABLE, excluded_columns=("email",)),)),
                     BEFORE)  # fmt: skip
    assert shown(policy, "admin", AFTER)["email"] == '"email"'
    access = table_access(policy, "bob", TABLE, list(BEFORE), admin="admin", ids=BEFORE)
    assert [c.name for c in access.columns] == ["id", "name", "region"]


def test_bindings_are_kept_pruned_and_never_moved_silently() -> None:
    mask = ColumnMask(table=TABLE, column="email", principal="m", kind="null")
    policy = made_on(Policy(masks=(mask,)), BEFORE)
    # A later change on the altered table keeps the binding made with the mask...
    later = bound(policy.model_copy(update={"grants": (grant("m", table=TABLE,
                                                             columns=("id",)),)}),
                  lambda _: AFTER)  # fmt: skip
    assert later.column_ids == {TABLE: {"email": 3, "id": 1}}
    # ...and drops those no entry names any more.
    assert bound(later.model_copy(update={"masks": ()}), None).column_ids == {TABLE: {"id": 1}}
    # An unreachable catalog binds nothing (checked by name until a later change).
    assert bound(Policy(masks=(mask,)), lambda _: 1 / 0).column_ids == {}  # type: ignore[arg-type,return-value]


def test_rebind_is_the_admins_explicit_move_of_a_dropped_column_only() -> None:
    policy = made_on(Policy(masks=(ColumnMask(table=TABLE, column="email", principal="m",
                                              kind="null"),)), BEFORE)  # fmt: skip
    # renamed (field 3 is contact now): moving the binding would unprotect contact
    assert renamed_to(policy, TABLE, AFTER) == {"email": "contact"}
    assert rebound(policy, TABLE, AFTER) == (policy, [])
    dropped = {k: v for k, v in AFTER.items() if k != "contact"}  # field 3 is gone
    assert drift(policy, TABLE, dropped)
    moved, columns = rebound(policy, TABLE, dropped)
    assert columns == ["email"] and moved.column_ids == {TABLE: {"email": 5}}
    assert drift(moved, TABLE, dropped) == {}
    assert rebound(moved, TABLE, dropped) == (moved, [])


def test_every_kind_of_entry_names_its_columns() -> None:
    policy = Policy(
        grants=(grant("a", table=TABLE, columns=("id",)),
                grant("a", table=TABLE, excluded_columns=("name",))),
        data_cells_filters=(DataCellsFilter(name="f", table=TABLE, row_filter="region = 'EU'",
                                            columns=("id", "contact")),),
        masks=(ColumnMask(table=TABLE, column="email", principal="a", kind="null"),),
        tags=(TagAssignment(resource=f"{TABLE}.email", tags={"pii": "true"}),
              TagAssignment(resource=TABLE, tags={"pii": "false"})),
    )  # fmt: skip
    assert {n.column for n in named_columns(policy)} == {"id", "name", "region", "contact",
                                                         "email"}  # fmt: skip


def test_an_old_policy_file_loads_and_an_export_keeps_the_ids(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(f"masks:\n- {{table: {TABLE}, column: email, principal: m, kind: 'null'}}\n")
    loaded = read_policy_file(old)
    assert loaded.column_ids == {}
    exported = tmp_path / "policy.yaml"
    export_policy(made_on(loaded, BEFORE), exported)
    assert "column_ids" in exported.read_text()
    assert read_policy_file(exported).column_ids == {TABLE: {"email": 3}}


def test_trino_rules_and_s3_keys_refuse_a_drifted_table() -> None:
    policy = made_on(Policy(grants=(grant("bob", table=TABLE, excluded_columns=("email",)),
                                    grant("carl", table=TABLE)),
                            masks=(ColumnMask(table=TABLE, column="email", principal="x",
                                              kind="null"),)), BEFORE)  # fmt: skip
    table = LakeTable(TABLE, TYPES, ids=AFTER)
    rules = build_rules(policy, [table], admin="admin", catalog="lake")
    bob = next(r for r in rules.document["tables"] if r.get("user") == "bob")
    assert bob["privileges"] == [] and "is field 5 now" in rules.problems[0]
    files = TableFiles(TABLE, tuple(AFTER), ("s3://warehouse/customers",), (),
                       tuple(AFTER.values()))  # fmt: skip
    # carl may read the table whole, but an entry of its table names another field now
    assert not may_read_files(policy, "carl", files, "admin")
    assert may_read_files(policy, "carl", TableFiles(TABLE, tuple(BEFORE), files.locations, (),
                                                     tuple(BEFORE.values())), "admin")  # fmt: skip
