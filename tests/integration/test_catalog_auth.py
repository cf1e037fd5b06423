"""The REST catalog requires the stack's bearer token, and its WAL is checkpointed.

Anonymous or wrongly authenticated requests are refused (401, Iceberg REST error
shape) and change nothing; every client lakehouse configures still reads and
writes; a wrong token is one error with a hint. catalog.db alone holds the catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import LakehouseError
from lakehouse.services.catalog import HEALTH_PATH, auth_headers, catalog_db
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def request(settings: Settings, method: str, path: str, headers: dict[str, str],
            body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:  # fmt: skip
    """(status, JSON body) of a raw HTTP request to the catalog."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{settings.catalog_uri}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", **headers})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


NO_TOKEN: dict[str, str] = {}
WRONG_TOKEN = auth_headers("not-the-token")


@pytest.mark.parametrize("headers", [NO_TOKEN, WRONG_TOKEN, {"Authorization": "Basic eDp5"}])
def test_unauthenticated_create_and_drop_are_refused(
    lake: Lakehouse, namespace: str, headers: dict[str, str]
) -> None:
    lake.ingest(pa.table({"id": [1, 2]}), f"{namespace}.kept")
    attempts = [
        ("POST", "/v1/namespaces", {"namespace": [f"{namespace}_evil"], "properties": {}}),
        ("POST", f"/v1/namespaces/{namespace}/tables",
         {"name": "evil", "schema": {"type": "struct", "fields": []}}),
        ("DELETE", f"/v1/namespaces/{namespace}/tables/kept?purgeRequested=true", None),
        ("GET", f"/v1/namespaces/{namespace}/tables", None),
        ("GET", "/v1/config", None),
    ]  # fmt: skip
    for method, path, body in attempts:
        status, answer = request(lake.settings, method, path, headers, body)
        assert status == 401, (method, path, status, answer)
        error = answer["error"]
        assert isinstance(error, dict)
        assert (error["code"], error["type"]) == (401, "NotAuthorizedException")
    # Nothing changed: the table is there with its rows, nothing new was created.
    assert lake.tables(namespace) == [f"{namespace}.kept"]
    assert f"{namespace}_evil" not in [n[0] for n in lake.catalog.list_namespaces()]
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.kept").column("n").to_pylist() == [2]


def test_the_right_token_is_accepted_and_health_needs_none(stack: Settings) -> None:
    assert request(stack, "GET", HEALTH_PATH, NO_TOKEN)[0] == 200
    status, answer = request(stack, "GET", "/v1/namespaces", auth_headers(stack.catalog_token))
    assert status == 200 and "namespaces" in answer


def test_duckdb_reads_and_writes_through_the_token(lake: Lakehouse, namespace: str) -> None:
    lake.sql(f"CREATE TABLE {namespace}.duck AS SELECT range AS id FROM range(3)")
    lake.sql(f"INSERT INTO {namespace}.duck VALUES (10)")
    rows = lake.sql(f"SELECT sum(id) AS s FROM {namespace}.duck").column("s").to_pylist()
    assert rows == [13]


def test_a_wrong_token_is_one_error_with_a_hint(stack: Settings) -> None:
    wrong = stack.model_copy(update={"catalog_token": "not-the-token"})
    with Lakehouse(wrong) as lake, pytest.raises(LakehouseError) as raised:
        lake.tables()
    assert "refused the token" in raised.value.message and raised.value.hint
    with Lakehouse(wrong) as lake, pytest.raises(LakehouseError) as raised:
        lake.sql("SELECT 1")
    assert "refused the token" in raised.value.message
    for args in (["tables"], ["query", "SELECT 1"]):
        os.environ["LAKEHOUSE_CATALOG_TOKEN"] = "not-the-token"
        try:
            result = run_cli(*args, check=False)
        finally:
            os.environ["LAKEHOUSE_CATALOG_TOKEN"] = stack.catalog_token
        assert result.returncode == 1, result
        assert "Hint:" in result.stderr and "Traceback" not in result.stderr, result.stderr


def current_rows_in_a_copy(db: Path, copy: Path) -> dict[tuple[str, str], str]:
    """table -> metadata location, read from a copy of catalog.db alone (no -wal file)."""
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as con:
        rows = con.execute(
            "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"
        ).fetchall()
    return {(ns, name): location for ns, name, location in rows}


def test_catalog_db_alone_holds_the_catalog_and_the_wal_stays_small(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    for round_ in range(20):
        lake.ingest(pa.table({"id": [round_]}), f"{namespace}.t{round_ % 4}")
    expected = {
        (namespace, f"t{i}"): lake.catalog.load_table(f"{namespace}.t{i}").metadata_location
        for i in range(4)
    }
    db = catalog_db(lake.settings.home_dir)
    wal = db.with_name(db.name + "-wal")
    deadline = time.monotonic() + 4 * lake.settings.catalog_checkpoint_seconds + 10
    while True:  # a bounded wait for the next checkpoint, not a timing assertion
        found = current_rows_in_a_copy(db, tmp_path / "copy.db")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        if {key: found.get(key) for key in expected} == expected and wal_bytes < 1 << 20:
            break
        assert time.monotonic() < deadline, (
            f"catalog.db alone lacks the current tables ({found}) or the WAL is {wal_bytes} bytes"
        )
        time.sleep(0.5)


SPARK_JOB = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
spark.sql("CREATE TABLE {table} (id BIGINT) USING iceberg")
spark.sql("INSERT INTO {table} VALUES (100), (200)")
"""


@pytest.mark.lakehouse_trino
@pytest.mark.lakehouse_spark
def test_trino_spark_and_spark_jobs_write_through_the_token(
    lake: Lakehouse, namespace: str, stack_services: list[str], tmp_path: Path
) -> None:
    if not {"trino", "spark"} <= set(stack_services):
        pytest.skip("needs trino and spark (no suitable JDK)")
    lake.sql(f"CREATE TABLE {namespace}.by_trino AS SELECT 1 AS id", engine="trino")
    lake.sql(f"INSERT INTO {namespace}.by_trino VALUES (2)", engine="trino")
    lake.sql(f"CREATE TABLE {namespace}.by_spark AS SELECT 3 AS id", engine="spark")
    job = tmp_path / "write_job.py"
    job.write_text(SPARK_JOB.format(table=f"{namespace}.by_job"))
    run_cli("spark", "submit", str(job))
    for table, total in (("by_trino", 3), ("by_spark", 3), ("by_job", 300)):
        rows = lake.sql(f"SELECT sum(id) AS s FROM {namespace}.{table}").column("s").to_pylist()
        assert rows == [total], table
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.by_spark", engine="trino").num_rows == 1
