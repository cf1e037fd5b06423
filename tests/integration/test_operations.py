"""Operations on the real servers: quiet, readable logs and a green single-node OpenSearch.

Each test reads the log of the session's own stack before and after doing what
used to flood it, so it fails when the noise comes back.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.opensearch import OpenSearchService
from lakehouse.services.postgres import PostgresService
from lakehouse.sync.integrations import Integration
from lakehouse.sync.postgres_source import PostgresSource
from lakehouse.testing.postgres import create_database, drop_database

from .conftest import run_cli

pytestmark = pytest.mark.integration


def _grown(path: Path, since: int) -> str:
    """What was appended to ``path`` after it was ``since`` bytes long."""
    with path.open("rb") as handle:
        handle.seek(since)
        return handle.read().decode(errors="replace")


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def test_catalog_logs_neither_table_loads_nor_4xx_answers(lake: Lakehouse, namespace: str) -> None:
    log = LocalRuntime(lake.settings).log_path("catalog")
    before = _size(log)
    lake.sql(f"CREATE TABLE {namespace}.quiet AS SELECT 1 AS id")
    for _ in range(3):
        lake.sql(f"SELECT count(*) FROM {namespace}.quiet")
        assert not lake.catalog.table_exists(f"{namespace}.missing")  # a 404 answer
    time.sleep(0.5)
    grown = _grown(log, before)
    assert "Table loaded by catalog" not in grown
    assert "Refreshing table metadata" not in grown
    assert "Error processing REST request" not in grown
    assert "NoSuchTableException" not in grown


@pytest.fixture
def decoding_database(stack: Settings, stack_services: list[str]) -> Iterator[str]:
    """A throwaway database with one table, dropped with its slots afterwards."""
    if "postgres" not in stack_services:
        pytest.skip("needs postgres")
    name = f"ops_{uuid.uuid4().hex[:10]}"
    create_database(stack, name)
    with psycopg.connect(stack.postgres_dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
    try:
        yield name
    finally:
        drop_database(stack, name)


def _postgres_log_text(settings: Settings, sizes: dict[Path, int]) -> str:
    files = sorted(PostgresService(settings).log_dir.glob("*.log"))
    return "".join(_grown(path, sizes.get(path, 0)) for path in files)


@pytest.mark.lakehouse_postgres
def test_sync_polls_leave_postgres_log_quiet_and_errors_still_logged(
    stack: Settings, decoding_database: str
) -> None:
    integration = Integration(name=f"ops-{decoding_database[4:]}", source="postgres",
                              target="iceberg", tables=("items",), database=decoding_database)  # fmt: skip
    source = PostgresSource.for_integration(stack, integration)
    log_dir = PostgresService(stack).log_dir
    sizes = {path: _size(path) for path in log_dir.glob("*.log")}
    try:
        source.ensure_replication()
        for _ in range(5):
            source.peek(100)
    finally:
        source.close()
    dsn = stack.postgres_dsn(decoding_database)
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        pytest.raises(psycopg.errors.UndefinedTable),
    ):
        conn.execute("SELECT * FROM no_such_table_for_the_log")
    # The logging collector writes asynchronously (slowly on a loaded machine).
    deadline = time.monotonic() + 60
    grown = _postgres_log_text(stack, sizes)
    while "no_such_table_for_the_log" not in grown and time.monotonic() < deadline:
        time.sleep(0.5)
        grown = _postgres_log_text(stack, sizes)
    assert "logical decoding found consistent point" not in grown
    assert "starting logical decoding for slot" not in grown
    assert "no_such_table_for_the_log" in grown  # real errors are still logged
    shown = run_cli("logs", "postgres", "-n", "200").stdout
    assert "no_such_table_for_the_log" in shown  # and `lakehouse logs` shows that file


@pytest.mark.lakehouse_opensearch
def test_opensearch_single_node_stays_green_when_an_index_asks_for_a_replica(
    stack: Settings, stack_services: list[str]
) -> None:
    if "opensearch" not in stack_services:
        pytest.skip("needs opensearch")
    client = OpenSearchService(stack).client(timeout=60)
    index = f"ops-replica-{uuid.uuid4().hex[:8]}"
    client.indices.create(
        index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 1}}
    )
    try:
        health = client.cluster.health(index=index, wait_for_status="green")
        assert health["status"] == "green", health
        assert client.cluster.health()["status"] == "green"
    finally:
        client.indices.delete(index=index)


@pytest.mark.lakehouse_trino
def test_trino_scans_do_not_log_iceberg_metrics_reports(
    lake: Lakehouse, namespace: str, stack_services: list[str]
) -> None:
    if "trino" not in stack_services:
        pytest.skip("needs trino")
    lake.sql(f"CREATE TABLE {namespace}.scanned AS SELECT range AS id FROM range(100)")
    log = LocalRuntime(lake.settings).log_path("trino")
    before = _size(log)
    for _ in range(3):
        assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.scanned", engine="trino")[
            "n"
        ].to_pylist() == [100]
    time.sleep(0.5)
    grown = _grown(log, before)
    assert "metrics report" not in grown.lower()
    assert "ScanReport" not in grown


JOB = """\
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
print("rows in the job:", spark.range(7).count())
# A filtered Iceberg scan: Spark logs multi-line INFO records for it
# ("Pushing operators to ...", "Pushed Filters: ...", "Output: ...").
table = sys.argv[1]
spark.sql(f"CREATE TABLE {table} AS SELECT id, id % 3 AS k FROM range(10)")
print("filtered rows:", spark.sql(f"SELECT id FROM {table} WHERE k = 1").count())
spark.sql(f"DROP TABLE {table} PURGE")
print("a warning of the job's own", file=sys.stderr)
spark.stop()
"""


def test_spark_submit_shows_the_jobs_output_not_sparks_info_log(
    stack: Settings, namespace: str, tmp_path: Path
) -> None:
    job = tmp_path / "tiny_job.py"
    job.write_text(JOB)
    result = run_cli("spark", "submit", str(job), f"{namespace}.spark_job_scan", check=False)
    if result.returncode != 0 and "JDK" in result.stderr:
        pytest.skip(f"no JDK for Spark: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr[-3000:]
    shown = result.stdout + result.stderr
    assert "rows in the job: 7" in shown
    assert "a warning of the job's own" in shown
    assert " INFO " not in shown, shown[:3000]
    assert "filtered rows: 3" in shown
    # Nor the continuation lines of an INFO record, nor token-setup warnings.
    for noise in ("Pushed Filters", "Output: ", "AuthManagers", "OAuth2Manager"):
        assert noise not in shown, shown[:3000]
    logs = sorted((stack.home_dir / "logs" / "spark-jobs").glob("tiny_job-*.log"))
    assert logs and " INFO " in logs[-1].read_text()  # the full log stays in its file
    assert str(logs[-1]) in result.stderr  # and stderr says where, once
    assert result.stderr.count(str(logs[-1])) == 1


def test_old_metadata_files_are_deleted_once_without_warnings(
    lake: Lakehouse, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    import pyarrow as pa

    keep = 2
    table = lake.catalog.create_table(
        f"{namespace}.versions",
        schema=pa.schema([("id", pa.int64())]),
        properties={"write.metadata.delete-after-commit.enabled": "true",
                    "write.metadata.previous-versions-max": str(keep)},
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        for value in range(5):
            table.append(pa.table({"id": [value]}))
    assert not [r.getMessage() for r in caplog.records if "Failed to delete" in r.getMessage()]
    bucket, _, prefix = table.metadata.location.removeprefix("s3://").partition("/")
    names = [o.object_name for o in lake.s3.list_objects(bucket, prefix=f"{prefix}/metadata/",
                                                            recursive=True)]  # fmt: skip
    assert len([n for n in names if n.endswith(".metadata.json")]) == keep + 1


def _since_last_start(settings: Settings, service: str) -> str:
    """The service's stdout log from its latest start on (the runtime writes a header)."""
    text = LocalRuntime(settings).log_path(service).read_text(errors="replace")
    return text[text.rfind(f" starting {service}") :]


def test_s3_log_stays_quiet_while_s3_runs(stack: Settings) -> None:
    log = LocalRuntime(stack).log_path("s3")
    before = _size(log)
    time.sleep(6)  # the plugin worker retried every 5 s, its heartbeat every 30 s
    grown = _grown(log, before)
    started = _since_last_start(stack, "s3")
    for noise in ("connection refused", "Reconnection attempt", "Failed to send heartbeat"):
        assert noise not in started, started[-3000:]
    assert grown == "", grown[-3000:]


@pytest.mark.lakehouse_trino
def test_trino_log_holds_warnings_and_the_start_line_only(
    lake: Lakehouse, namespace: str, stack_services: list[str]
) -> None:
    if "trino" not in stack_services:
        pytest.skip("needs trino")
    lake.sql(f"CREATE TABLE {namespace}.logged AS SELECT 1 AS id")
    # The lake catalog's first use sets up its token (Iceberg warned there).
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.logged", engine="trino")[
        "n"
    ].to_pylist() == [1]
    time.sleep(1.0)
    started = _since_last_start(lake.settings, "trino")
    assert "SERVER STARTED" in started
    # Trino applies etc/log.properties at "Initializing logging": the few lines
    # before it are Trino's defaults.
    configured = started.split("Initializing logging", 1)[1].splitlines()[1:]
    records = [line for line in configured if "\tINFO\t" in line]
    others = [line for line in records if "\tio.trino.server.Server\t" not in line
              and "Disabling stderr output" not in line]  # fmt: skip
    assert others == [], others[:20]  # were ~1,030 lines
    assert len(records) < 10, records
    for noise in ("NoSuchBucket", "Failed to prune segments", "OAuth2Manager", "AuthManagers"):
        assert noise not in started, started[-3000:]


def test_readme_duckdb_example_runs_offline_with_the_wheels_extensions(
    lake: Lakehouse, namespace: str
) -> None:
    import os
    import subprocess
    import sys

    from lakehouse.env import environment

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### DuckDB outside lakehouse, offline", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    lake.sql(f"CREATE TABLE {namespace}.seen_by_plain_duckdb AS SELECT 1 AS id")
    # Only `lakehouse env`'s variables (DuckDB's httpfs would also take an
    # http_proxy for the catalog's requests, so none is set to block downloads:
    # LOAD by path never downloads, and this machine has no internet anyway).
    env = {"PATH": os.environ["PATH"], "HOME": str(Path.home()), **environment(lake.settings)}
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                            env=env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seen_by_plain_duckdb" in result.stdout, result.stdout
