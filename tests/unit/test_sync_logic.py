"""Pure logic of the Zero-ETL syncs: batches, mappings, declarations, comparisons."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.sync.integrations import Integration, IntegrationStore, sample_integrations
from lakehouse.sync.model import DeadLetter, TableBatch, document_id
from lakehouse.sync.opensearch_target import field_mapping, index_mapping, json_value
from lakehouse.sync.verify import compare, value_form

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


def batch() -> TableBatch:
    return TableBatch("items", ("id",), SCHEMA)


def test_the_last_image_of_a_key_wins() -> None:
    b = batch()
    b.upsert({"id": 1, "name": "a"})
    b.upsert({"id": 1, "name": "b"})
    b.upsert({"id": 2, "name": "c"})
    b.delete({"id": 2})
    b.delete({"id": 3, "name": None})
    b.upsert({"id": 3, "name": "back"})
    assert b.upserts == {(1,): {"id": 1, "name": "b"}, (3,): {"id": 3, "name": "back"}}
    assert b.deletes == {(2,): {"id": 2}}
    assert b.changes == 6
    assert b.key_table().column("id").to_pylist() == [1, 3, 2]


def test_a_truncate_forgets_what_came_before_it() -> None:
    b = batch()
    b.upsert({"id": 1, "name": "a"})
    b.delete({"id": 2})
    b.truncate()
    b.upsert({"id": 5, "name": "after"})
    assert b.truncated and list(b.upserts) == [(5,)] and not b.deletes
    assert not b.empty


def test_dead_letter_ids_are_stable_and_distinguish_payloads() -> None:
    one = DeadLetter("i", "t", {"id": "1"}, {"id": "1", "price": "NaN"}, "no NaN", "0/10")
    replay = DeadLetter("i", "t", {"id": "1"}, {"id": "1", "price": "NaN"}, "no NaN", "0/99")
    other = DeadLetter("i", "t", {"id": "1"}, {"id": "1", "price": "Infinity"}, "no inf", "0/10")
    assert one.id == replay.id  # a replay in another batch is the same dead letter
    assert one.id != other.id


def test_document_ids_join_composite_keys() -> None:
    assert document_id({"order_id": 7, "line": 2}) == "7|2"
    assert document_id((7,)) == "7"


@pytest.mark.parametrize(
    ("kind", "is_key", "expected"),
    [
        (pa.int32(), False, "integer"),
        (pa.int64(), False, "long"),
        (pa.float32(), False, "float"),
        (pa.decimal128(12, 2), False, "double"),
        (pa.timestamp("us", tz="UTC"), False, "date"),
        (pa.date32(), False, "date"),
        (pa.bool_(), False, "boolean"),
        (pa.string(), True, "keyword"),
        (pa.string(), False, "text"),
        (pa.binary(), False, "binary"),
    ],
)
def test_field_mappings_follow_the_schema(kind: pa.DataType, is_key: bool, expected: str) -> None:
    assert field_mapping(kind, is_key)["type"] == expected


def test_index_mappings_are_strict_with_keyword_subfields() -> None:
    mapping = index_mapping(SCHEMA, ("id",))
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["name"]["fields"]["keyword"]["type"] == "keyword"


def test_json_values_refuse_what_opensearch_cannot_store() -> None:
    assert json_value(decimal.Decimal("12.50")) == 12.5
    assert json_value(dt.date(2026, 1, 2)) == "2026-01-02"
    assert json_value(b"\x01") == "AQ=="
    for bad in (float("nan"), float("inf"), decimal.Decimal("NaN")):
        with pytest.raises(ValueError, match="cannot store"):
            json_value(bad)


def test_integrations_are_validated() -> None:
    with pytest.raises(ValueError, match="not supported"):
        Integration(name="x", source="iceberg", target="iceberg", tables=("a.b",))
    with pytest.raises(ValueError, match="namespace-qualified"):
        Integration(name="x", source="iceberg", target="opensearch", tables=("b",))
    with pytest.raises(ValueError):
        Integration(name="Bad Name", source="postgres", target="iceberg", tables=("b",))
    integration = Integration(name="my-sync", source="postgres", target="iceberg", tables=("s.t",))
    assert integration.slot_name() == "lakehouse_my_sync"
    assert integration.source_table("orders") == ("public", "orders")
    assert integration.source_table("s.t") == ("s", "t")


def test_names_of_targets(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    to_lake, to_search, lake_to_search = sample_integrations()
    assert to_lake.iceberg_target("orders", settings) == "shop.orders"
    assert to_search.index_name("orders", settings) == "shop-orders"
    assert lake_to_search.index_name("shop.products", settings) == "lake-products"


def test_integrations_come_from_the_config_file_and_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lakehouse.toml"
    config.write_text('[sync.from-file]\nsource = "postgres"\ntarget = "iceberg"\ntables = ["a"]\n')
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    store = IntegrationStore(Settings(home=tmp_path / "home"))
    created = Integration(name="created", source="postgres", target="opensearch", tables=("b",))
    store.create(created)
    assert set(store.all()) == {"from-file", "created"}
    assert store.get("created").model_dump() == created.model_dump()  # plus its generation
    with pytest.raises(ConfigError, match="already exists"):
        store.create(created.model_copy(update={"tables": ("c",)}))
    with pytest.raises(ConfigError, match="declared in"):
        store.create(created.model_copy(update={"name": "from-file"}))
    store.remove("created")
    assert set(store.all()) == {"from-file"}
    config.write_text('[sync.broken]\nsource = "mysql"\n')
    with pytest.raises(ConfigError, match="broken"):
        store.all()


def test_comparisons_find_every_kind_of_difference() -> None:
    source = {"1": "a", "2": "b", "3": "c"}  # "9" was rejected: not in the source hashes
    target = {"1": "a", "2": "B", "4": "d", "9": "stale"}
    report = compare("t", "ns.t", source, target, rejected={"9"})
    assert (report.missing, report.extra, report.different) == (["3"], ["4"], ["2"])
    assert report.stale == ["9"]  # a dead-lettered key the target still holds
    assert not report.ok
    assert not compare("t", "ns.t", {"1": "a"}, {"1": "a", "9": "old"}, rejected={"9"}).ok
    assert compare("t", "ns.t", {"1": "a"}, {"1": "a"}, rejected={"9"}).ok
    assert compare("t", "ns.t", {"1": "a"}, {"1": "a"}).ok


def test_value_forms_see_values_the_way_opensearch_stores_them() -> None:
    price, at = pa.decimal128(10, 2), pa.timestamp("us", tz="UTC")
    assert value_form(decimal.Decimal("2.50"), price) == value_form("2.50", price)
    assert value_form(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), at) == value_form(
        "2026-01-01T00:00:00+00:00", at
    )
    assert value_form(1, pa.int64()) != value_form(2, pa.int64())


class _BrokenPipeline:
    """A pipeline whose server went away (pure runner logic; no server involved)."""

    on_state = None
    writer = None

    def run_once(self) -> None:
        raise ConnectionError("Connection refused by 127.0.0.1:8181")

    def close(self) -> None:
        pass

    def look_at_source(self) -> None:
        pass


def test_a_server_error_in_sync_run_is_reported_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.errors import LakehouseError
    from lakehouse.sync.runner import IntegrationRunner
    from lakehouse.sync.status import StatusStore

    settings = Settings(home=tmp_path)
    integration = Integration(name="x", source="postgres", target="iceberg", tables=("t",))
    runner = IntegrationRunner(settings, integration)
    runner._pipeline = _BrokenPipeline()  # type: ignore[assignment]
    # The server goes away mid-pass (after the up-front check that its port answers).
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    with pytest.raises(LakehouseError) as info:  # names the service when its port is down
        runner.catch_up()
    said = str(info.value)
    assert "connection refused" in said.lower() and "lakehouse status" in said
    assert StatusStore(settings).read("x").state == "retrying"


def test_batch_seconds_default_to_the_poll_setting(tmp_path: Path) -> None:
    from lakehouse.sync.runner import IntegrationRunner

    settings = Settings(home=tmp_path, sync_poll_seconds=0.7)
    plain = Integration(name="x", source="postgres", target="iceberg", tables=("t",))
    assert IntegrationRunner(settings, plain)._batch_seconds == 0.7
    own = plain.model_copy(update={"batch_seconds": 2.0})
    assert IntegrationRunner(settings, own)._batch_seconds == 2.0


def test_value_forms_take_nan_and_infinity_and_tell_them_apart() -> None:
    values = (float("nan"), float("inf"), -float("inf"), 1.0, -0.0, 0.0)
    assert len({value_form(value, pa.float64()) for value in values}) == 6
    assert value_form(float("nan"), pa.float64()) == value_form(float("nan"), pa.float64())
