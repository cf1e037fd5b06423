"""OpenSearch edge cases of the Zero-ETL sync, on the session stack's real servers:
TRUNCATE, column names OpenSearch would expand or reserve, nested Iceberg types,
and HTTP answers reported as what the server said."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict
from pyiceberg.io.pyarrow import schema_to_pyarrow

from lakehouse import Lakehouse, Settings
from lakehouse.errors import SyncError
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.opensearch_mapping import index_mapping, missing_properties
from lakehouse.sync.opensearch_target import OpenSearchTarget
from lakehouse.sync.verify import verify
from tests.integration.conftest import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]

Declare = Callable[..., Integration]


@pytest.fixture
def declare(stack: Settings, postgres_dsn: str, opensearch_prefix: str) -> Iterator[Declare]:
    """Declares opensearch integrations on the test's database; deletes them after."""
    database = conninfo_to_dict(postgres_dsn)["dbname"]
    store = IntegrationStore(stack)
    names: list[str] = []

    def make(source: str, tables: tuple[str, ...], **options: Any) -> Integration:
        name = f"os{len(names)}-{database[-6:]}"
        integration = Integration(name=name, source=source, target="opensearch", tables=tables,
                                  database=database, index_prefix=opensearch_prefix,
                                  **options)  # fmt: skip
        store.create(integration)
        names.append(name)
        return store.get(name)

    yield make
    for name in names:
        delete_integration(stack, name)


def sync_once(settings: Settings, integration: Integration) -> Any:
    with Lakehouse(settings) as lake:  # the library call behind `sync run NAME`
        return lake.sync(integration.name)


def assert_in_sync(settings: Settings, integration: Integration) -> None:
    for report in verify(settings, integration):
        assert report.ok, (report.missing[:5], report.extra[:5], report.different[:5])


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def count(opensearch: Any, index: str) -> int:
    opensearch.indices.refresh(index=index)
    return int(opensearch.count(index=index)["count"])


def test_truncate_empties_the_index_then_later_inserts_follow_even_after_a_crash(
    stack: Settings, postgres_dsn: str, declare: Declare, opensearch: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    execute(postgres_dsn, "CREATE TABLE things (id int PRIMARY KEY, name text)",
            "INSERT INTO things SELECT i, 'thing ' || i FROM generate_series(1, 50) i")  # fmt: skip
    integration = declare("postgres", ("things",))
    sync_once(stack, integration)
    index = integration.index_name("things", stack)
    assert count(opensearch, index) == 50

    execute(postgres_dsn, "TRUNCATE things")
    sync_once(stack, integration)
    assert count(opensearch, index) == 0

    # A crash after the index was emptied and refilled, before the checkpoint.
    execute(postgres_dsn, "INSERT INTO things VALUES (1, 'back'), (60, 'new')", "TRUNCATE things",
            "INSERT INTO things VALUES (70, 'after the truncate')")  # fmt: skip

    def crash(self: OpenSearchTarget, positions: dict[str, str]) -> None:
        raise SyncError("simulated crash before the checkpoint")

    monkeypatch.setattr(OpenSearchTarget, "save_checkpoints", crash)
    with pytest.raises(SyncError, match="simulated crash"):
        sync_once(stack, integration)
    monkeypatch.undo()
    sync_once(stack, integration)  # replays the batch, TRUNCATE included
    execute(postgres_dsn, "INSERT INTO things VALUES (80, 'later')")
    sync_once(stack, integration)
    opensearch.indices.refresh(index=index)
    hits = opensearch.search(index=index, body={"size": 10})["hits"]["hits"]
    assert sorted(hit["_id"] for hit in hits) == ["70", "80"]
    assert_in_sync(stack, integration)


AWKWARD_COLUMNS = {
    "geo": "text", "geo.city": "text", "geo.city.zip": "int", "_id": "text",
    "_source": "text", "a b": "text", "ünïcødé": "text", "A": "text", "a": "text",
    "100%": "numeric(5,2)", "x" * 63: "text", ".lead": "text",
}  # fmt: skip


def test_column_names_opensearch_would_expand_or_reserve_are_indexed_faithfully(
    stack: Settings, postgres_dsn: str, declare: Declare, opensearch: Any
) -> None:
    columns = ", ".join(f'"{name}" {kind}' for name, kind in AWKWARD_COLUMNS.items())
    execute(postgres_dsn, f"CREATE TABLE places (id int PRIMARY KEY, {columns})",
            "INSERT INTO places VALUES (1, 'France', 'Lyon', 69001, 'own id', 'own source', "
            "'space', 'unicode', 'upper', 'lower', 12.5, 'long', 'dot first')")  # fmt: skip
    integration = declare("postgres", ("places",))
    sync_once(stack, integration)
    # A second process finds the mapping unchanged (it reported a schema change before).
    execute(postgres_dsn, "UPDATE places SET \"geo.city\" = 'Paris' WHERE id = 1",
            "INSERT INTO places (id, geo, \"geo.city\") VALUES (2, 'Italy', 'Rome')")  # fmt: skip
    sync_once(stack, integration)
    assert_in_sync(stack, integration)
    index = integration.index_name("places", stack)
    found = opensearch.get(index=index, id="1")["_source"]
    assert found["geo"] == "France" and found["geo%2Ecity"] == "Paris"
    assert found["%5Fid"] == "own id" and found["A"] == "upper" and found["a"] == "lower"
    rome = opensearch.search(index=index, body={"query": {"match": {"geo%2Ecity": "rome"}}})
    assert [hit["_id"] for hit in rome["hits"]["hits"]] == ["2"]

    # A new dotted column evolves the mapping; reset re-creates the index.
    execute(postgres_dsn, 'ALTER TABLE places ADD COLUMN "geo.zip" text',
            "UPDATE places SET \"geo.zip\" = '00100' WHERE id = 2")  # fmt: skip
    sync_once(stack, integration)
    assert_in_sync(stack, integration)
    run_cli("sync", "reset", integration.name, "--yes")
    sync_once(stack, integration)
    assert_in_sync(stack, integration)
    assert count(opensearch, index) == 2


NESTED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        (
            "address",
            pa.struct(
                [
                    ("city", pa.string()),
                    ("geo.lat", pa.float64()),
                    ("since", pa.timestamp("us", tz="UTC")),
                ]
            ),
        ),
        (
            "visits",
            pa.list_(
                pa.struct(
                    [("page", pa.string()), ("price", pa.decimal128(10, 2)), ("at", pa.date32())]
                )
            ),
        ),
        ("attrs", pa.map_(pa.string(), pa.string())),
        ("grid", pa.list_(pa.list_(pa.int32()))),
        ("raw", pa.binary()),
    ]
)
NESTED_ROWS = [
    {"id": 1, "address": {"city": "Lyon", "geo.lat": 45.75,
                          "since": dt.datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=dt.UTC)},
     "visits": [{"page": "/home", "price": decimal.Decimal("9.99"), "at": dt.date(1900, 1, 1)},
                {"page": None, "price": None, "at": None}, None],
     "attrs": [("colour", "blue"), ("size", None)], "grid": [[1, 2], [], None, [None]],
     "raw": b"\x00\xff"},
    {"id": 2, "address": {"city": None, "geo.lat": None, "since": None}, "visits": [],
     "attrs": [], "grid": [], "raw": b""},
    {"id": 3, "address": None, "visits": None, "attrs": None, "grid": None, "raw": None},
]  # fmt: skip


def test_structs_lists_of_structs_and_maps_from_iceberg_are_indexed(
    stack: Settings, lake: Lakehouse, namespace: str, declare: Declare, opensearch: Any
) -> None:
    table = lake.catalog.create_table(f"{namespace}.nested", schema=NESTED_SCHEMA)
    table.append(pa.Table.from_pylist(NESTED_ROWS, schema=NESTED_SCHEMA))
    integration = declare("iceberg", (f"{namespace}.nested",), key=("id",), namespace=None)
    result = sync_once(stack, integration)
    assert result.dead_letters == 0
    index = integration.index_name(f"{namespace}.nested", stack)
    assert count(opensearch, index) == 3
    assert_in_sync(stack, integration)
    mapping = opensearch.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["address"]["properties"]["geo%2Elat"]["type"] == "double"
    assert mapping["visits"]["properties"]["price"]["type"] == "double"
    assert mapping["attrs"]["properties"]["key"]["type"] == "text"
    assert mapping["grid"]["type"] == "integer"
    # What OpenSearch returns compares equal to the schema's mapping: no change to make.
    wanted = index_mapping(schema_to_pyarrow(table.schema()), ("id",))["properties"]
    assert missing_properties(mapping, wanted) == {}
    lyon = opensearch.search(
        index=index, body={"query": {"term": {"address.city.keyword": "Lyon"}}}
    )
    assert [hit["_id"] for hit in lyon["hits"]["hits"]] == ["1"]
    stored = opensearch.get(index=index, id="1")["_source"]
    assert stored["address"]["since"] == "1969-07-20T20:17:40.123456+00:00"
    assert stored["visits"][0] == {"page": "/home", "price": 9.99, "at": "1900-01-01"}
    assert stored["attrs"] == [{"key": "colour", "value": "blue"}, {"key": "size", "value": None}]
    assert stored["grid"] == [[1, 2], [], None, [None]] and stored["raw"] == "AP8="

    # Changes after the snapshot follow incrementally.
    table.append(pa.Table.from_pylist([dict(NESTED_ROWS[0], id=4)], schema=NESTED_SCHEMA))
    table.delete("id = 2")
    sync_once(stack, integration)
    assert count(opensearch, index) == 3
    assert_in_sync(stack, integration)


def test_an_index_that_refuses_writes_is_reported_with_the_server_answer(
    stack: Settings, postgres_dsn: str, declare: Declare, opensearch: Any
) -> None:
    execute(postgres_dsn, "CREATE TABLE notes (id int PRIMARY KEY, body text)",
            "INSERT INTO notes VALUES (1, 'one')")  # fmt: skip
    integration = declare("postgres", ("notes",))
    sync_once(stack, integration)
    index = integration.index_name("notes", stack)
    opensearch.indices.close(index=index)
    execute(postgres_dsn, "INSERT INTO notes VALUES (2, 'two')")
    with pytest.raises(SyncError) as failed:
        sync_once(stack, integration)
    text = str(failed.value)
    assert "index_closed_exception" in text and index in text, text
    assert "did not answer" not in text and "Is OpenSearch up" not in text
    opensearch.indices.open(index=index, params={"wait_for_active_shards": "1"})
    result = sync_once(stack, integration)
    assert result.dead_letters == 0
    assert_in_sync(stack, integration)
    assert count(opensearch, index) == 2


def test_a_rolled_back_iceberg_source_removes_documents_whose_key_holds_a_pipe(
    stack: Settings, lake: Lakehouse, namespace: str, declare: Declare, opensearch: Any
) -> None:
    """A rollback makes the sync compare the whole table with the index: documents of
    rows the table no longer has are deleted by id. Their keys were split back out of
    the ids at '|', which an escaped id of ('x', 'y|z') does not survive: it stayed."""
    schema = pa.schema([pa.field("a", pa.string(), nullable=False),
                        pa.field("b", pa.string(), nullable=False), ("n", pa.int64())])  # fmt: skip
    table = lake.catalog.create_table(f"{namespace}.piped", schema=schema)
    table.append(pa.Table.from_pylist([{"a": "x|y", "b": "z", "n": 1}], schema=schema))
    first = table.current_snapshot()
    table.append(pa.Table.from_pylist([{"a": "x", "b": "y|z", "n": 2},
                                       {"a": "a\\", "b": "|b", "n": 3}], schema=schema))  # fmt: skip
    integration = declare("iceberg", (f"{namespace}.piped",), key=("a", "b"), namespace=None)
    sync_once(stack, integration)
    index = integration.index_name(f"{namespace}.piped", stack)
    assert count(opensearch, index) == 3
    assert first is not None
    table.manage_snapshots().rollback_to_snapshot(first.snapshot_id).commit()
    sync_once(stack, integration)
    assert count(opensearch, index) == 1
    assert_in_sync(stack, integration)
