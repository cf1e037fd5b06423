"""Engine configuration written once: Trino node config, Spark conf, SQL rewrites."""

from __future__ import annotations

import pytest

from lakehouse.config import load_settings
from lakehouse.engines.translate import translate
from lakehouse.errors import LakehouseError
from lakehouse.services import build_services
from lakehouse.services.spark import spark_conf
from lakehouse.services.trino import TrinoNode, TrinoWorker, parse_size
from lakehouse.testing.stack import LakehouseStack, port_settings
from sample_data.queries import QUERIES, REWRITES, query_for


def test_parse_size() -> None:
    assert parse_size("1536M") == 1536 * 2**20
    assert parse_size("2G") == 2 * 2**30
    assert parse_size("768MB") == 768 * 2**20
    with pytest.raises(LakehouseError):
        parse_size("lots")


def test_trino_memory_settings_are_checked_before_start() -> None:
    ok = TrinoNode(load_settings(trino_heap="2G", trino_query_memory="1GB")).config_properties()
    assert "query.max-memory-per-node=1GB" in ok and "memory.heap-headroom-per-node=512MB" in ok
    with pytest.raises(LakehouseError, match="exceeds trino_heap"):
        TrinoNode(load_settings(trino_heap="1G", trino_query_memory="1GB")).config_properties()


def test_trino_workers_point_at_the_coordinator() -> None:
    settings = load_settings(trino_port=18080, trino_workers=2)
    names = [svc.name for svc in build_services(settings, ["trino"])]
    assert names == ["s3", "catalog", "trino", "trino-worker-1", "trino-worker-2"]
    worker = TrinoWorker(settings, 2).config_properties()
    assert "coordinator=false" in worker and "http-server.http.port=18082" in worker
    assert "discovery.uri=http://127.0.0.1:18080" in worker
    command = " ".join(TrinoWorker(settings, 2).spec().command)
    assert "-Dnode.bind-ip=127.0.0.1" in command and "-Dnode.id=trino-worker-2" in command


def test_spark_sees_other_engines_commits_and_binds_to_loopback() -> None:
    conf = spark_conf(load_settings(catalog_port=18181))
    assert conf["spark.sql.catalog.lake.cache-enabled"] == "false"
    assert conf["spark.sql.catalog.lake.uri"] == "http://127.0.0.1:18181"
    assert conf["spark.sql.defaultCatalog"] == "lake"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"


def test_pin_snapshots_rewrites_each_dialect() -> None:
    sql = "SELECT * FROM retail.orders o JOIN retail.customers c ON o.customer_id = c.customer_id"
    trino = translate(sql, "trino", {"retail.orders": 42}).sql
    assert "retail.orders FOR VERSION AS OF 42" in trino and "customers FOR" not in trino
    assert "retail.orders VERSION AS OF 42" in translate(sql, "spark", {"retail.orders": 42}).sql
    assert "VERSION" not in translate(sql, "trino").sql


def test_every_rewrite_applies_to_some_query() -> None:
    for engine, rewrites in REWRITES.items():
        for canonical in rewrites:
            assert any(canonical in sql for sql in QUERIES.values()), (engine, canonical)
            assert all(canonical not in query_for(name, engine) for name in QUERIES)


def test_stack_env_round_trips_every_port() -> None:
    settings = load_settings(s3_port=21000, trino_port=21012, spark_port=21021)
    env = LakehouseStack(settings, ("s3",), reused=False).env
    assert env["LAKEHOUSE_SPARK_PORT"] == "21021"
    assert load_settings(**port_settings(env)).trino_port == 21012
