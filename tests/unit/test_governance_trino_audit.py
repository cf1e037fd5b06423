"""Trino's finished queries as audit records (pure: QueryInfo documents shaped as
Trino's /v1/query/{id} answers them, fields as measured on the pinned Trino)."""

from __future__ import annotations

import datetime as dt

from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
)
from lakehouse.governance.trino_audit import UNKNOWN_FILTERS, decisions

POLICY = Policy(
    data_cells_filters=(DataCellsFilter(name="eu", table="shop.customers", row_filter="region = 'EU'"),),
    grants=(Grant(principal="alice", permissions=(Permission.SELECT,), resource=Resource(data_cells_filter="eu")),),
    # A mask of a column the query did not read: the decision needs all the columns.
    masks=(ColumnMask(table="shop.customers", column="name", principal="alice", kind="partial"),),
)  # fmt: skip
STARTED = "2026-11-30T09:00:00.000Z"


def columns_of(table: str) -> list[str]:
    """Every column of the table (the query read only some)."""
    return {"shop.customers": ["id", "name", "email", "region"]}[table]


def info(**extra: object) -> dict[str, object]:
    return {"queryId": "20261130_090000_00001_abcde", "session": {"user": "alice"},
            "queryStats": {"createTime": STARTED}, **extra}  # fmt: skip


def test_a_query_that_read_a_table_is_one_allowed_record_per_table() -> None:
    read = info(inputs=[
        {"catalogName": "lake", "schema": "shop", "table": "customers",
         "columns": [{"name": "id", "type": "bigint"}, {"name": "region", "type": "varchar"}]},
        {"catalogName": "tpch", "schema": "tiny", "table": "nation", "columns": []},
    ])  # fmt: skip
    found = list(decisions(read, POLICY, "admin", "lake", None, columns_of))
    assert found == [{
        "principal": "alice", "resource": "shop.customers", "columns": ["id", "region"],
        "filters": ["data cells filter eu", "mask partial on name", "(region = 'EU')"],
        "allowed": True,
        "query_id": "20261130_090000_00001_abcde", "action": "SELECT", "reason": None,
        "at": dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
    }]  # fmt: skip
    later = dt.datetime(2026, 11, 30, 9, 5, tzinfo=dt.UTC)  # the policy changed since
    assert next(decisions(read, POLICY, "admin", "lake", later, columns_of))["filters"] == [
        UNKNOWN_FILTERS
    ]


def test_a_refused_query_is_one_denial_with_trinos_reason() -> None:
    message = (
        "Access Denied: Cannot select from columns [email] in table or view lake.shop.customers"
    )
    refused = info(errorCode={"name": "PERMISSION_DENIED"}, failureInfo={"message": message})
    assert list(decisions(refused, POLICY, "admin", "lake", None, columns_of)) == [{
        "principal": "alice", "resource": "column(s) email of shop.customers", "columns": [],
        "filters": [], "allowed": False, "query_id": "20261130_090000_00001_abcde",
        "action": "SELECT", "reason": message, "at": dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
    }]  # fmt: skip


def test_a_decision_carries_the_time_trino_decided_not_the_collection_time() -> None:
    # A refusal collected only when a later test read the log was dated "now", so it
    # counted among the later test's decisions (a CI run saw two refusals for one).
    ended = info(queryStats={"createTime": STARTED, "endTime": "2026-11-30T09:00:02.500Z"},
                 errorCode={"name": "PERMISSION_DENIED"}, failureInfo={"message": "Access Denied"})  # fmt: skip
    (refusal,) = decisions(ended, POLICY, "admin", "lake", None, columns_of)
    assert refusal["at"] == dt.datetime(2026, 11, 30, 9, 0, 2, 500000, tzinfo=dt.UTC)


def test_the_column_guards_own_lookup_is_not_recorded_as_the_users_read() -> None:
    guard = {"catalogName": "lake", "schema": "information_schema", "table": "columns",
             "columns": [{"name": "column_name", "type": "varchar"}]}  # fmt: skip
    read = info(query="SELECT id FROM customers", inputs=[
        {"catalogName": "lake", "schema": "shop", "table": "customers",
         "columns": [{"name": "id", "type": "bigint"}]}, guard,
    ])  # fmt: skip
    found = list(decisions(read, POLICY, "admin", "lake", None, columns_of))
    assert [r["resource"] for r in found] == ["shop.customers"]
    asked = info(query="SELECT * FROM lake.information_schema.columns", inputs=[guard])
    found = list(decisions(asked, POLICY, "admin", "lake", None, columns_of))
    assert [r["resource"] for r in found] == ["information_schema.columns"]
