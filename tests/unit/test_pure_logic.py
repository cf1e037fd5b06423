"""Pure helpers: SQL table references, type normalisation, exports, errors, services."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.config import load_settings
from lakehouse.engines.translate import parse, referenced_tables
from lakehouse.env import environment, shell_exports
from lakehouse.errors import IngestError, QueryError, ServiceStartError
from lakehouse.lake.ingest import conform, detect_format, normalize
from lakehouse.runtimes.local import tree_memory_mb
from lakehouse.services import build_services
from lakehouse.services.s3 import S3Service


def test_referenced_tables_ignores_ctes_and_qualified_catalogs() -> None:
    sql = """
        WITH recent AS (SELECT * FROM retail.orders WHERE order_date > DATE '2025-01-01')
        SELECT c.country, count(*) FROM recent r JOIN retail.customers c USING (customer_id)
        JOIN lake.web.clickstream w ON w.order_id = r.order_id GROUP BY 1
    """
    assert referenced_tables(parse(sql)) == ("retail.customers", "retail.orders")
    with pytest.raises(QueryError, match="cannot parse"):
        parse("SELECT FROM WHERE (")


def test_normalize_makes_types_iceberg_can_store() -> None:
    data = pa.table({
        "ts": pa.array([1, 2], pa.timestamp("ns")),
        "u": pa.array([1, 2], pa.uint32()),
        "small": pa.array([1, 2], pa.int8()),
        "d": pa.array(["a", "b"]).dictionary_encode(),
        "n": pa.nulls(2),
    })  # fmt: skip
    types = normalize(data).schema.types
    assert types == [pa.timestamp("us"), pa.int64(), pa.int32(), pa.string(), pa.string()]


def test_conform_orders_casts_and_fills_missing_columns() -> None:
    target = pa.schema(
        [pa.field("id", pa.int64()), pa.field("name", pa.string()), pa.field("x", pa.float64())]
    )
    data = pa.table({"name": ["a"], "id": pa.array([1], pa.int32())})
    out = conform(data, target)
    assert out.schema == target and out.to_pylist() == [{"id": 1, "name": "a", "x": None}]
    required = pa.schema([pa.field("must", pa.int64(), nullable=False)])
    with pytest.raises(IngestError, match="Required column must"):
        conform(data, required)


def test_detect_format() -> None:
    assert detect_format("x/orders.CSV", None) == "csv"
    assert detect_format("s3://b/k.ndjson", None) == "json"
    assert detect_format("data", "parquet") == "parquet"
    with pytest.raises(IngestError, match="--format"):
        detect_format("data.bin", None)


def test_env_exports_survive_eval_in_a_real_shell() -> None:
    settings = load_settings(secret_key='it\'s $ecret "quoted"')
    env = environment(settings)
    assert env["PYICEBERG_CATALOG__LAKE__S3__ACCESS_KEY_ID"] == settings.access_key
    assert env["PYICEBERG_CATALOG__LAKE__URI"] == settings.catalog_uri
    assert env["AWS_ENDPOINT_URL"] == settings.s3_endpoint
    script = shell_exports(env) + '\nprintf "%s" "$AWS_SECRET_ACCESS_KEY"'
    echoed = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert echoed == settings.secret_key


def test_start_error_names_service_command_health_log_and_hint() -> None:
    error = ServiceStartError(
        "s3", "exited during start-up", ["weed", "mini"], "HTTP 503", "line1\nline2", "Do X."
    )
    text = str(error)
    for part in (
        "Service 's3' exited during start-up",
        "weed mini",
        "HTTP 503",
        "    line2",
        "Hint: Do X.",
    ):
        assert part in text


def test_services_come_in_dependency_order() -> None:
    settings = load_settings()
    assert [s.name for s in build_services(settings, ["catalog"])] == ["s3", "catalog"]
    assert [s.name for s in build_services(settings, ["s3"])] == ["s3"]
    with pytest.raises(Exception, match="Unknown service"):
        build_services(settings, ["nope"])


def test_s3_ports_are_distinct_and_derived_from_settings() -> None:
    settings = load_settings(s3_port=19000, s3_internal_port_base=19100)
    ports = [p.number for p in S3Service(settings).spec().ports]
    assert len(ports) == len(set(ports)) == 10  # the metrics port (base + 9) is off
    # The admin's gRPC port is the admin's (base + 7) + 10000: where weed's worker dials.
    assert ports[0] == 19000 and set(ports[1:]) == {*range(19100, 19108), 19107 + 10000}
    command = " ".join(S3Service(settings).spec().command)
    assert (
        "-s3.port=19000" in command
        and "-s3.port.iceberg=0" in command
        and "-ip.bind=127.0.0.1" in command
    )


def test_free_port_blocks_stay_in_range_whatever_the_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: with start=40000 some PIDs began the search past `end` and found nothing."""
    from lakehouse.runtimes import local

    monkeypatch.setattr(local, "port_is_free", lambda host, port: True)
    for pid in (0, 123, 499, 4999, 12345):
        monkeypatch.setattr(local.os, "getpid", lambda pid=pid: pid)
        base = local.free_port_block(25, start=40000, end=60000)
        assert base >= 40000 and base + 25 <= 60000


def test_tree_memory_survives_children_exiting_while_it_reads() -> None:
    # Like PostgreSQL, the parent forks short-lived children all the time.
    churn = subprocess.Popen(["sh", "-c", "while :; do sleep 0.001 & sleep 0.001; done"])
    try:
        readings = [tree_memory_mb(churn.pid) for _ in range(300)]
    finally:
        churn.kill()
        churn.wait()
    assert all(r is not None and r > 0 for r in readings), readings.count(None)
    assert tree_memory_mb(churn.pid) is None


def test_throwaway_port_blocks_lie_below_the_ephemeral_range() -> None:
    # A service restarted after kill -9 lost its port to a client's outgoing
    # connection when the block was inside the kernel's ephemeral range.
    from lakehouse.runtimes.local import first_ephemeral_port, free_port_block

    assert free_port_block(28) + 28 <= first_ephemeral_port()


def test_every_port_of_a_throwaway_stack_lies_below_the_ephemeral_range(tmp_path: Path) -> None:
    # CI failed: SeaweedFS's admin gRPC port (s3_internal_port_base + 10007) lay
    # outside the checked block, in the ephemeral range, and a client's outgoing
    # connection held it when the fault tests' private stack came up.
    from lakehouse.runtimes.local import first_ephemeral_port, isolated_stack_env, port_is_free
    from lakehouse.services.s3 import seaweed_internal_ports

    stacks = [isolated_stack_env(tmp_path / name) for name in ("one", "two", "three")]
    claimed: list[int] = []
    for env in stacks:
        ports = [int(v) for k, v in env.items() if k.endswith("_PORT")]
        spark = int(env["LAKEHOUSE_SPARK_PORT"])
        ports += [spark + 1, spark + 2]
        ports += seaweed_internal_ports(int(env["LAKEHOUSE_S3_INTERNAL_PORT_BASE"])).values()
        assert max(ports) < first_ephemeral_port()
        assert all(port_is_free("127.0.0.1", port) for port in ports)
        claimed += ports
    assert len(claimed) == len(set(claimed)), "two throwaway stacks share a port"
