"""Pure logic of the console: the request guard, error statuses, cells, charts, paging."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import plotly.graph_objects as go
import pyarrow as pa
import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import (
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
)

from lakehouse.console.cells import grid, shortened
from lakehouse.console.charts import chart_json, plotly_js_path
from lakehouse.console.failures import status_for
from lakehouse.console.guard import host_name, refusal
from lakehouse.console.pages.overview import human_duration
from lakehouse.errors import (
    AccessDeniedError,
    ConfigError,
    QueryError,
    ServiceUnavailableError,
    SnapshotNotFoundError,
    TableNotFoundError,
)
from lakehouse.lake.browse import page_of, schema_rows

OWN = "127.0.0.1:8070"


@pytest.mark.parametrize("host", [OWN, "localhost:8070", "[::1]:8070", "127.0.0.1"])
def test_loopback_names_may_read(host: str) -> None:
    assert refusal("GET", {"host": host}, "127.0.0.1") is None


def test_a_foreign_host_name_is_refused_even_for_reading() -> None:
    why = refusal("GET", {"host": "rebind.example:8070"}, "127.0.0.1")
    assert why is not None and "rebind.example" in why


def test_bound_to_every_interface_any_host_name_reads_but_origins_still_count() -> None:
    assert refusal("GET", {"host": "lake.lan:8070"}, "0.0.0.0") is None
    headers = {"host": "lake.lan:8070", "origin": "http://other.lan:8070"}
    assert refusal("POST", headers, "0.0.0.0") is not None
    assert refusal("POST", {**headers, "origin": "http://lake.lan:8070"}, "0.0.0.0") is None


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"origin": f"http://{OWN}"}, True),
        ({"referer": f"http://{OWN}/query?x=1"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "http://127.0.0.1:9999"}, False),  # another local port is another site
        ({"origin": f"https://{OWN}"}, False),  # another scheme is another origin
        ({"referer": f"https://{OWN}/query"}, False),
        ({"referer": "https://evil.example/page"}, False),
        ({"origin": "null"}, False),  # sandboxed frames and file:// pages
        ({}, False),
    ],
)
def test_changes_only_from_the_consoles_own_origin(headers: dict[str, str], allowed: bool) -> None:
    for method in ("POST", "DELETE", "put"):
        why = refusal(method, {"host": OWN, **headers}, "127.0.0.1")
        assert (why is None) is allowed, (method, headers, why)


def test_host_name_parsing() -> None:
    assert host_name("[::1]:8070") == "::1"
    assert host_name("LOCALHOST:1") == "localhost"
    assert host_name("") == ""


def test_error_statuses_by_kind() -> None:
    assert status_for(TableNotFoundError("x")) == 404
    assert status_for(SnapshotNotFoundError("x")) == 404
    assert status_for(ServiceUnavailableError("catalog", "http://x", "listing", "refused")) == 503
    assert status_for(QueryError("duckdb", "SELEC", "syntax")) == 400
    assert status_for(ConfigError("bad")) == 400
    assert status_for(AccessDeniedError("alice", "SELECT", "retail.customers")) == 403


def test_cells_are_exact_and_say_when_shortened() -> None:
    long = "x" * 250
    shown = shortened(long)
    assert shown.startswith("x" * 200) and shown.endswith("… (250 characters)")
    assert shortened("x" * 200) == "x" * 200
    table = pa.table({"text": [long, ""], "amount": pa.array([Decimal("12.50"), None])})
    assert grid(table)[1] == [[shown, "12.50"], ["", "NULL"]]


def test_the_catalog_sample_and_the_query_grid_show_values_as_lakehouse_query_does() -> None:
    from lakehouse.console.query_results import grid as query_grid
    from lakehouse.engines.output import table_rows

    table = pa.table({
        "m": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
        "b": pa.array([b"\x00\xff"], pa.binary()),
        "s": pa.array([{"city": "Oslo", "at": datetime(2026, 1, 1)}],
                      pa.struct([("city", pa.string()), ("at", pa.timestamp("us"))])),
        "at": pa.array([datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)], pa.timestamp("us", "UTC")),
    })  # fmt: skip
    expected = [["MAP {'k': 1}", "\\x00\\xff", "{'city': 'Oslo', 'at': '2026-01-01 00:00:00'}",
                 "2026-01-02 03:04:05+00:00"]]  # fmt: skip
    assert grid(table)[1] == expected == table_rows(table)
    assert query_grid(table)[1] == expected


def test_grid_keeps_columns_of_the_same_name() -> None:
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array(["a", None])], names=["v", "v"])
    assert grid(table) == (["v", "v"], [["1", "a"], ["2", "NULL"]])


def test_chart_json_cannot_end_its_script_block_and_keeps_the_pages_layout() -> None:
    figure = go.Figure(go.Bar(x=["</script><script>alert(1)</script>"], y=[1]))
    figure.update_layout(height=500)
    text = chart_json(figure)
    assert "<" not in text and ">" not in text
    parsed = json.loads(text)
    assert parsed["data"][0]["x"] == ["&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert parsed["layout"]["height"] == 500 and parsed["layout"]["margin"]["l"] == 50


LINK = '<a href="https://evil.example">x</a>'
ESCAPED = '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;'


@pytest.mark.parametrize("plain", [False, True])
def test_chart_texts_from_data_are_shown_literally_not_as_plotly_html(plain: bool) -> None:
    trace = {"type": "bar", "x": [LINK, "a&b"], "y": [1, 2], "name": LINK, "hovertext": [LINK],
             "hovertemplate": "%{x}<br>%{y}<extra></extra>"}  # fmt: skip
    layout = {"xaxis": {"title": {"text": LINK}}, "yaxis": {"title": {"text": LINK}}}
    figure = {"data": [trace], "layout": layout} if plain else go.Figure([trace], layout)
    parsed = json.loads(chart_json(figure))
    drawn = parsed["data"][0]
    assert drawn["x"] == [ESCAPED, "a&amp;b"] and drawn["name"] == ESCAPED
    assert drawn["hovertext"] == [ESCAPED]
    assert drawn["hovertemplate"] == "%{x}<br>%{y}<extra></extra>"  # the console's own markup
    assert parsed["layout"]["xaxis"]["title"]["text"] == ESCAPED
    assert parsed["layout"]["yaxis"]["title"]["text"] == ESCAPED


def test_plotly_js_ships_in_the_wheel() -> None:
    assert plotly_js_path().stat().st_size > 1_000_000


def test_pages_are_clamped_to_the_list() -> None:
    names = [f"t{i:04}" for i in range(1000)]
    page = page_of(names, 100, 100)
    assert page.items[0] == "t0100" and page.has_previous and page.has_next
    last = page_of(names, 5000, 100)
    assert last.items == ["t0999"] and not last.has_next
    empty = page_of([], 300, 100)
    assert empty.items == [] and empty.total == 0 and not empty.has_previous


def test_schema_rows_list_nested_fields_under_their_parent() -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "address", StructType(
            NestedField(3, "city", StringType()), NestedField(4, "zip", StringType()))),
        NestedField(5, "tags", ListType(6, StringType())),
        NestedField(7, "scores", MapType(8, StringType(), 9, ListType(10, IntegerType()))),
    )  # fmt: skip
    rows = [(r.path, r.depth, r.type) for r in schema_rows(schema)]
    assert rows == [
        ("id", 0, "long"), ("address", 0, "struct"), ("address.city", 1, "string"),
        ("address.zip", 1, "string"), ("tags", 0, "list"), ("tags.element", 1, "string"),
        ("scores", 0, "map"), ("scores.key", 1, "string"), ("scores.value", 1, "list"),
        ("scores.value.element", 2, "int"),
    ]  # fmt: skip
    assert schema_rows(schema)[0].required


def test_human_durations() -> None:
    assert human_duration(None) == ""
    assert human_duration(12.7) == "12 s"
    assert human_duration(250) == "4 min 10 s"
    assert human_duration(2 * 3600 + 300) == "2 h 5 min"
    assert human_duration(3 * 86400 + 4 * 3600) == "3 d 4 h"


def test_snapshot_change_counts_rows_deleted_by_rewrite_and_by_delete_files() -> None:
    from pyiceberg.table.snapshots import Operation, Snapshot, Summary

    from lakehouse.lake.browse import _change

    summary = Summary(Operation.DELETE, **{
        "added-position-deletes": "2", "added-delete-files": "1", "total-records": "5",
        "deleted-records": "3", "added-files-size": "1024",
    })  # fmt: skip
    snap = Snapshot(**{"snapshot-id": 7, "timestamp-ms": 1_767_225_600_000,
                       "manifest-list": "s3://w/m.avro", "summary": summary})  # fmt: skip
    change = _change(snap, was_current=True)
    assert (change.operation, change.deleted_records, change.added_position_deletes) == (
        "delete",
        3,
        2,
    )
    assert change.added_delete_files == 1 and change.added_equality_deletes == 0
    assert change.total_records == 5 and change.added_bytes == 1024
    assert change.committed_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_count_the_summary_does_not_give_is_unknown_not_zero() -> None:
    from pyiceberg.table.snapshots import Operation, Snapshot, Summary

    from lakehouse.console.web import count_text, size_text
    from lakehouse.lake.browse import _change

    summary = Summary(Operation.APPEND, **{"added-records": "4"})  # no totals, no sizes
    snap = Snapshot(**{"snapshot-id": 8, "timestamp-ms": 1_767_225_600_000,
                       "manifest-list": "s3://w/m.avro", "summary": summary})  # fmt: skip
    change = _change(snap, was_current=True)
    assert change.added_records == 4
    assert change.added_bytes is None and change.deleted_records is None
    assert change.added_data_files is None and change.total_records is None
    assert size_text(change.added_bytes, "+") == "unknown" and size_text(1024, "+") == "+1.0 KiB"
    assert count_text(None) == "unknown" and count_text(1234, "-") == "-1,234"


def test_every_start_command_names_the_home_unless_a_plain_lakehouse_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.config import Settings
    from lakehouse.console.web import command, hint_for, start_command
    from lakehouse.errors import ServiceUnavailableError

    for name in list(os.environ):
        if name.startswith("LAKEHOUSE_"):
            monkeypatch.delenv(name)
    project = tmp_path / "project"
    (project / ".lakehouse").mkdir(parents=True)
    monkeypatch.chdir(project)
    plain = Settings()
    assert start_command(plain) == "lakehouse up"
    assert start_command(plain, "jupyter", optional=True) == "lakehouse up --with jupyter"
    other = Settings(home=tmp_path / "other home")
    flag = f"--home '{tmp_path / 'other home'}'"
    assert start_command(other, "catalog") == f"lakehouse {flag} up --services catalog"
    assert command(other, "logs s3") == f"lakehouse {flag} logs s3"
    down = ServiceUnavailableError("catalog", "http://127.0.0.1:1", "listing tables", "refused")
    hint = hint_for(other, down) or ""
    assert f"`lakehouse {flag} up --services catalog`" in hint
    assert f"`lakehouse {flag} logs catalog`" in hint
    assert hint_for(other, ConfigError("bad", hint="Fix it.")) == "Fix it."


def test_catalog_names_are_one_path_segment_each_whatever_they_hold() -> None:
    from lakehouse.console.pages.catalog import path_names
    from lakehouse.console.web import path_segment

    names = ["brk", "a/b", "x y?#%", "ünï"]
    for namespace, table in zip(names, reversed(names), strict=True):
        path = f"/catalog/{path_segment(namespace)}/{path_segment(table)}"
        assert path.count("/") == 3
        assert path_names(path) == [namespace, table]
    assert path_names("/catalog/brk/") == ["brk"] and path_names("/catalog/") == []


@pytest.mark.parametrize(
    "message",
    [
        "HTTP Error: HTTP GET error on 'http://127.0.0.1:9000/warehouse/shop/orders/data/"
        "00000-0-a1.parquet' (HTTP 404) NoSuchKey",
        "ICEBERG_CANNOT_OPEN_SPLIT: Error opening Iceberg split s3://warehouse/shop/orders/data/"
        "00000-0-a1.parquet (offset=4, length=9): NoSuchKey: The specified key does not exist.",
        "java.io.FileNotFoundException: File does not exist: s3a://warehouse/shop/orders/data/"
        "00000-0-a1.parquet",
    ],
)
def test_a_missing_data_file_is_named_with_its_table_whatever_the_engine(message: str) -> None:
    from lakehouse.engines.missing_files import missing_file, missing_file_error

    address = missing_file(message)
    assert address is not None and address.endswith("warehouse/shop/orders/data/00000-0-a1.parquet")
    error = missing_file_error("duckdb", "SELECT 1", message)
    assert error is not None and "of table shop.orders is missing from S3" in error.message
    assert error.hint and "lakehouse history" in error.hint


def test_other_errors_are_not_taken_for_a_missing_file() -> None:
    from lakehouse.engines.missing_files import missing_file

    assert missing_file("Catalog Error: Table with name nope does not exist!") is None
    assert missing_file("HTTP 404 for http://127.0.0.1:8181/v1/namespaces/x/tables/y") is None


@pytest.mark.parametrize(
    ("sql", "destructive"),
    [("DROP TABLE a.b", True), ("  delete from a.b", True), ("/* x */ TRUNCATE a.b", True),
     ("ALTER TABLE a.b ADD COLUMN c INT", True), ("update a.b set c = 1", True),
     ("CREATE OR REPLACE TABLE a.b AS SELECT 1", True), ("INSERT OVERWRITE a.b SELECT 1", True),
     ("-- DROP\nSELECT 1", False), ("CREATE TABLE a.b (id INT)", False),
     ("INSERT INTO a.b VALUES (1)", False), ("SELECT 'drop'", False)],
)  # fmt: skip
def test_destructive_statements_are_told_apart(sql: str, destructive: bool) -> None:
    from lakehouse.console.statements import is_destructive

    assert is_destructive(sql) is destructive


def test_a_statement_says_what_it_did_as_the_engine_reports_it() -> None:
    from lakehouse.console.statements import is_query, outcome

    assert outcome("CREATE TABLE a.b (id INT)", pa.table({})) == "table created"
    assert outcome("INSERT INTO a.b VALUES (1), (2)", pa.table({"Count": [2]})) == "2 rows inserted"
    assert outcome("DELETE FROM a.b", pa.table({"rows": [1]})) == "1 row deleted"
    assert outcome("CREATE TABLE a.b AS SELECT 1", pa.table({"Count": [1]})) == (
        "table created with 1 row"
    )
    assert outcome("DROP TABLE a.b", pa.table({})) == "table dropped"
    assert outcome("SET x = 1", pa.table({})) == ""
    assert outcome("CALL p()", pa.table({"Count": ["x"]})) == ""
    assert is_query("WITH a AS (SELECT 1) SELECT * FROM a") and not is_query(
        "INSERT INTO a.b SELECT 1"
    )
