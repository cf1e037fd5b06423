"""A row whose new image a target refuses leaves the target (never stale), on the real stack.

A synced row later updated to a value the target cannot hold (a timestamp
``infinity`` for Iceberg and OpenSearch, a double ``NaN`` for OpenSearch) is a
dead letter; the target must not keep presenting the old image as current, so
the key's row is removed in the same batch. ``verify`` reports a dead-lettered
key the target still holds as stale, and counts the rows the target really
holds. Dead letters carry the key in one JSON form (typed as the target holds
it), and ``applied`` counts only rows the target took.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.services.opensearch import OpenSearchService
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.deadletters import TABLE as DEAD_LETTERS
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.model import TableBatch
from lakehouse.sync.opensearch_target import OpenSearchTarget
from lakehouse.sync.verify import verify

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]


@pytest.fixture
def pair(
    stack: Settings, postgres_dsn: str, opensearch_prefix: str
) -> Iterator[tuple[Integration, Integration]]:
    """``bv`` synced to Iceberg and to OpenSearch: rows 1-4 fit both, row 5 (a NaN)
    fits Iceberg only. Both are snapshotted before the test changes anything."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bv (id int PRIMARY KEY, c_ts timestamptz, c_dbl float8)")
        conn.execute(
            "INSERT INTO bv SELECT i, '2026-01-01'::timestamptz + i * interval '1 day', i "
            "FROM generate_series(1, 4) AS i"
        )
        conn.execute("INSERT INTO bv VALUES (5, '2026-02-01', 'NaN')")
    database = str(conninfo_to_dict(postgres_dsn)["dbname"])
    common: dict[str, Any] = {"source": "postgres", "tables": ("bv",), "database": database}
    to_lake = Integration(name=f"rl-{database[-8:]}", target="iceberg", namespace=database,
                          **common)  # fmt: skip
    to_search = Integration(name=f"rs-{database[-8:]}", target="opensearch",
                            index_prefix=opensearch_prefix, **common)  # fmt: skip
    store = IntegrationStore(stack)
    for integration in (to_lake, to_search):
        store.create(integration)
    try:
        lake_pass, search_pass = _sync(stack, to_lake), _sync(stack, to_search)
        assert (lake_pass.snapshot_rows, lake_pass.dead_letters) == (5, 0)
        # The NaN row is refused by OpenSearch: a dead letter, not an applied row.
        assert (search_pass.snapshot_rows, search_pass.dead_letters) == (4, 1)
        yield store.get(to_lake.name), store.get(to_search.name)
    finally:
        for integration in (to_lake, to_search):
            delete_integration(stack, integration.name, drop_targets=True)


def _sync(settings: Settings, integration: Integration) -> Any:
    with Lakehouse(settings) as lake:
        return lake.sync(integration.name)


def _lake_rows(settings: Settings, integration: Integration) -> dict[int, dict[str, Any]]:
    table = open_catalog(settings).load_table(integration.iceberg_target("bv", settings))
    return {row["id"]: row for row in table.scan().to_arrow().to_pylist()}


def _index_ids(settings: Settings, integration: Integration) -> set[str]:
    client = OpenSearchService(settings).client()
    try:
        index = integration.index_name("bv", settings)
        client.indices.refresh(index=index)
        hits = client.search(index=index, body={"size": 100, "_source": False})
        return {hit["_id"] for hit in hits["hits"]["hits"]}
    finally:
        client.close()


def _row_keys(settings: Settings, integration: Integration) -> list[dict[str, Any]]:
    rows = open_catalog(settings).load_table(DEAD_LETTERS).scan().to_arrow().to_pylist()
    return [json.loads(r["row_key"]) for r in rows if r["integration"] == integration.name]


def test_a_row_updated_to_a_refused_value_leaves_the_target(
    stack: Settings, postgres_dsn: str, pair: tuple[Integration, Integration]
) -> None:
    to_lake, to_search = pair
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE bv SET c_ts = 'infinity' WHERE id = 2")  # neither target holds it
        conn.execute("UPDATE bv SET c_dbl = 'NaN' WHERE id = 3")  # Iceberg holds it
        conn.execute("UPDATE bv SET id = 40, c_ts = '-infinity' WHERE id = 4")  # key moved too
    lake_pass, search_pass = _sync(stack, to_lake), _sync(stack, to_search)
    assert (lake_pass.changes, lake_pass.dead_letters) == (1, 2)
    assert (search_pass.changes, search_pass.dead_letters) == (0, 3)

    lake_rows = _lake_rows(stack, to_lake)
    assert sorted(lake_rows) == [1, 3, 5]  # 2 and 4 gone, not kept with their old images
    assert math.isnan(lake_rows[3]["c_dbl"])
    assert _index_ids(stack, to_search) == {"1"}  # 2, 3 (NaN), 4 and 5 (NaN) are not there
    for integration, held in ((to_lake, 3), (to_search, 1)):
        (report,) = verify(stack, integration)
        assert report.ok and report.target_rows == held, report
    # One JSON form for every dead letter's key: typed as the target holds it.
    keys = _row_keys(stack, to_lake) + _row_keys(stack, to_search)
    assert sorted(k["id"] for k in keys) == [2, 2, 3, 5, 40, 40]


def test_verify_reports_a_dead_lettered_key_the_target_holds(
    stack: Settings, postgres_dsn: str, pair: tuple[Integration, Integration]
) -> None:
    to_lake, to_search = pair
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE bv SET c_ts = 'infinity' WHERE id = 2")
    _sync(stack, to_lake), _sync(stack, to_search)
    # Rows written by hand under the dead-lettered key: the target presents them as current.
    table = open_catalog(stack).load_table(to_lake.iceberg_target("bv", stack))
    table.append(pa.Table.from_pylist([{"id": 2, "c_ts": None, "c_dbl": 1.0}],
                                      schema=table.schema().as_arrow()))  # fmt: skip
    (report,) = verify(stack, to_lake)
    assert not report.ok and report.stale == ["2"], report
    assert (report.source_rows, report.target_rows) == (4, 5)  # the rows the table holds

    client = OpenSearchService(stack).client()
    try:
        index = to_search.index_name("bv", stack)
        client.index(index=index, id="5", body={"id": 5, "c_dbl": 1.0}, params={"refresh": "true"})
    finally:
        client.close()
    (report,) = verify(stack, to_search)
    assert not report.ok and report.stale == ["5"], report  # 5 is a NaN: dead-lettered
    assert (report.source_rows, report.target_rows) == (3, 4)


def test_a_document_the_server_refuses_removes_the_old_one(
    stack: Settings, opensearch_prefix: str
) -> None:
    """A refusal by the server itself (a value out of the mapped type's range) deletes the
    key's earlier document in the same apply."""
    client = OpenSearchService(stack).client()
    target = OpenSearchTarget(client, "refusals")
    index = f"{opensearch_prefix}narrow"
    schema = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("n", pa.int32())])
    try:
        target.ensure_index(index, schema, ("id",))
        first = TableBatch("narrow", ("id",), schema)
        for row_id in (1, 2):
            first.upsert({"id": row_id, "n": row_id})
        assert target.apply(index, first, "0/1") == []
        second = TableBatch("narrow", ("id",), schema)
        second.upsert({"id": 2, "n": 2**40})  # no int32: OpenSearch answers 400
        (letter,) = target.apply(index, second, "0/2")
        assert letter.key == {"id": 2} and "OpenSearch refused" in letter.reason
        client.indices.refresh(index=index)
        hits = client.search(index=index, body={"_source": False})["hits"]["hits"]
        assert {hit["_id"] for hit in hits} == {"1"}
    finally:
        target.drop(index)
        client.close()


def test_iceberg_to_opensearch_counts_only_the_rows_the_index_took(
    stack: Settings, opensearch_prefix: str, pair: tuple[Integration, Integration]
) -> None:
    """The lake's ``bv`` (row 5 a NaN, which OpenSearch refuses) followed into an index:
    ``changes`` counts the 4 rows indexed, the refused one is a dead letter."""
    to_lake, _ = pair
    follower = Integration(name=f"ls-{to_lake.name[3:]}", source="iceberg", target="opensearch",
                           tables=(to_lake.iceberg_target("bv", stack),),
                           index_prefix=opensearch_prefix + "lake-")  # fmt: skip
    IntegrationStore(stack).create(follower)
    try:
        first = _sync(stack, follower)
        assert (first.changes, first.dead_letters) == (4, 1)
    finally:
        delete_integration(stack, follower.name, drop_targets=True)
