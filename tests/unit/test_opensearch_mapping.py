"""OpenSearch field names, nested mappings, documents and error answers (pure logic)."""

from __future__ import annotations

import datetime as dt
import decimal
import math

import pyarrow as pa
import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from lakehouse.errors import SyncError, SyncStoppedError
from lakehouse.sync.opensearch_mapping import (
    column_name,
    decoded,
    document,
    field_mapping,
    field_name,
    index_mapping,
    json_value,
    missing_properties,
)
from lakehouse.sync.opensearch_target import call_error

# Column names PostgreSQL or Iceberg allow that OpenSearch would expand, reserve or mix up.
AWKWARD_NAMES = [
    "geo", "geo.city", "geo.city.zip", ".lead", "trail.", "a..b", "_id", "_source", "_",
    "__x", "a b", "  ", " lead", "ünïcødé", "日本語.名前", "%2E", "a%b", "100%", "A", "a",
    "x" * 63, "y." * 100,
]  # fmt: skip


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_field_names_cannot_be_expanded_or_reserved_and_read_back(name: str) -> None:
    field = field_name(name)
    assert "." not in field
    assert not field.startswith("_")
    assert column_name(field) == name


def test_field_names_of_different_columns_differ_and_plain_names_stay() -> None:
    fields = [field_name(name) for name in AWKWARD_NAMES]
    assert len(set(fields)) == len(AWKWARD_NAMES)
    for plain in ("geo", "A", "a", "a b", "ünïcødé", "order_id", "x" * 63):
        assert field_name(plain) == plain


def test_geo_and_geo_city_are_two_flat_fields() -> None:
    schema = pa.schema([("id", pa.int64()), ("geo", pa.string()), ("geo.city", pa.string())])
    properties = index_mapping(schema, ("id",))["properties"]
    assert set(properties) == {"id", "geo", "geo%2Ecity"}
    assert properties["geo"]["type"] == properties["geo%2Ecity"]["type"] == "text"


NESTED = pa.struct(
    [
        ("city", pa.string()),
        ("loc.lat", pa.float64()),
        ("price", pa.decimal128(12, 2)),
        ("seen", pa.timestamp("us", tz="UTC")),
        ("raw", pa.binary()),
    ]
)


def test_structs_lists_and_maps_get_object_mappings() -> None:
    assert field_mapping(NESTED) == {
        "properties": {
            "city": field_mapping(pa.string()),
            "loc%2Elat": {"type": "double"},
            "price": {"type": "double"},
            "seen": field_mapping(pa.timestamp("us")),
            "raw": {"type": "binary"},
        }
    }
    assert field_mapping(pa.list_(NESTED)) == field_mapping(NESTED)
    assert field_mapping(pa.list_(pa.list_(pa.int32()))) == {"type": "integer"}
    assert field_mapping(pa.map_(pa.int32(), NESTED)) == {
        "properties": {"key": {"type": "integer"}, "value": field_mapping(NESTED)}
    }
    assert field_mapping(pa.large_list(pa.date32()))["type"] == "date"


def nested_row() -> dict[str, object]:
    return {
        "id": 1,
        "geo.city": "Lyon",
        "where": {
            "city": None,
            "loc.lat": 45.75,
            "price": decimal.Decimal("9.99"),
            "seen": dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
            "raw": b"\x00\xff",
        },
        "visits": [{"city": "Paris", "loc.lat": None}, None, {}],
        "tags": {"a": 1},
        "attrs": [(1, "one"), (2, None)],
        "grid": [[1, 2], [], None, [None]],
        "empty": None,
    }


def test_documents_carry_nested_values_in_json_form_with_nothing_lost() -> None:
    source = document(nested_row())
    assert source["geo%2Ecity"] == "Lyon"
    assert source["where"] == {
        "city": None,
        "loc%2Elat": 45.75,
        "price": 9.99,
        "seen": "1969-12-31T23:59:59.999999+00:00",
        "raw": "AP8=",
    }
    assert source["visits"] == [{"city": "Paris", "loc%2Elat": None}, None, {}]
    assert source["attrs"] == [{"key": 1, "value": "one"}, {"key": 2, "value": None}]
    assert source["grid"] == [[1, 2], [], None, [None]]
    assert source["empty"] is None
    # Read back, a document has the row's column and struct field names again.
    back = decoded(source)
    assert set(back) == set(nested_row())
    assert set(back["where"]) == set(nested_row()["where"])  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, decimal.Decimal("NaN")])
def test_a_value_opensearch_cannot_hold_is_refused_at_any_depth_naming_the_column(
    bad: object,
) -> None:
    for row in ({"deep": {"x": [bad]}}, {"deep": [(1, bad)]}, {"deep": bad}):
        with pytest.raises(ValueError, match="column 'deep': OpenSearch cannot store"):
            document(row)
    assert json_value([1, {"a": None}]) == [1, {"a": None}]


def test_an_unchanged_mapping_needs_no_change_and_a_new_field_only_itself() -> None:
    schema = pa.schema([("id", pa.int64()), ("geo", pa.string()), ("geo.city", pa.string()),
                        ("where", NESTED)])  # fmt: skip
    wanted = index_mapping(schema, ("id",))["properties"]
    assert missing_properties(wanted, wanted) == {}
    current = {k: v for k, v in wanted.items() if k != "geo%2Ecity"}
    assert missing_properties(current, wanted) == {"geo%2Ecity": wanted["geo%2Ecity"]}
    changed = dict(wanted, id={"type": "keyword"})
    assert missing_properties(changed, wanted) == {"id": wanted["id"]}


def test_an_http_answer_is_quoted_and_never_called_an_outage() -> None:
    info = {"error": {"type": "index_not_found_exception", "reason": "no such index [x]"},
            "status": 404}  # fmt: skip
    error = call_error(NotFoundError(404, "index_not_found_exception", info), "indexing into x")
    assert isinstance(error, SyncStoppedError)
    assert "HTTP 404 index_not_found_exception: no such index [x]" in str(error)
    assert "Is OpenSearch up" not in str(error) + (error.hint or "")

    no_handler = {"error": "no handler found for uri [/x/_delete_by_query] and method [POST]"}
    error = call_error(TransportError(400, no_handler["error"], no_handler), "emptying x")
    assert isinstance(error, SyncStoppedError)
    assert "HTTP 400: no handler found for uri [/x/_delete_by_query]" in str(error)

    caused = {"error": {"type": "mapper_parsing_exception", "reason": "failed to parse",
                        "caused_by": {"type": "x_exception", "reason": "bad field"}}}  # fmt: skip
    error = call_error(RequestError(400, "mapper_parsing_exception", caused), "indexing")
    assert "failed to parse (caused by x_exception: bad field)" in str(error)


def test_a_busy_or_blocked_answer_is_retried_quoting_the_server() -> None:
    busy = {"error": {"type": "rejected_execution_exception", "reason": "queue full"}}
    error = call_error(TransportError(429, "rejected_execution_exception", busy), "indexing")
    assert type(error) is SyncError and "HTTP 429 rejected_execution_exception" in str(error)
    block = {"error": {"type": "cluster_block_exception", "reason": "index [x] blocked"}}
    error = call_error(TransportError(403, "cluster_block_exception", block), "indexing")
    assert type(error) is SyncError and "blocked" in str(error)


def test_only_a_connection_that_failed_is_an_outage() -> None:
    exc = OpenSearchConnectionError("N/A", "refused", ConnectionRefusedError("refused"))
    error = call_error(exc, "indexing into x")
    assert type(error) is SyncError
    assert "did not answer" in str(error) and "Is OpenSearch up" in (error.hint or "")
