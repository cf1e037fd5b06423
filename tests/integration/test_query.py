"""Querying through DuckDB: formats, writes, time travel and errors."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError, QueryError, SnapshotNotFoundError
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def orders(lake: Lakehouse, namespace: str) -> str:
    table = f"{namespace}.orders"
    lake.ingest(
        pa.table({"id": [1, 2, 3], "status": ["new", "paid", "paid"], "amount": [10, 20, 30]}),
        table,
    )
    return table


def test_sql_returns_arrow_with_plain_names(lake: Lakehouse, orders: str) -> None:
    result = lake.sql(
        f"SELECT status, sum(amount) AS total FROM {orders} GROUP BY status ORDER BY status"
    )
    assert isinstance(result, pa.Table)
    assert result.to_pylist() == [{"status": "new", "total": 10}, {"status": "paid", "total": 50}]


def test_cli_csv_prints_one_header_then_rows(orders: str) -> None:
    out = run_cli("query", f"SELECT id, status FROM {orders} ORDER BY id", "--format", "csv").stdout
    lines = out.strip().splitlines()
    assert len(lines) == 4
    assert list(csv.reader(io.StringIO(out))) == [
        ["id", "status"],
        ["1", "new"],
        ["2", "paid"],
        ["3", "paid"],
    ]


def test_cli_json_and_table_formats(orders: str) -> None:
    as_json = json.loads(
        run_cli("query", f"SELECT id FROM {orders} ORDER BY id", "--format", "json").stdout
    )
    assert as_json == [{"id": 1}, {"id": 2}, {"id": 3}]
    table = run_cli("query", f"SELECT count(*) AS n FROM {orders}").stdout
    assert "n" in table and "3" in table and "1 row(s)" in table


def test_duckdb_writes_are_seen_by_pyiceberg(lake: Lakehouse, orders: str) -> None:
    lake.duckdb().execute(f"INSERT INTO {orders} VALUES (4, 'new', 40)")
    assert lake.table(orders).scan().to_arrow().num_rows == 4
    lake.duckdb().execute(f"DELETE FROM {orders} WHERE id = 1")
    assert sorted(lake.table(orders).scan().to_arrow().column("id").to_pylist()) == [2, 3, 4]


def test_time_travel_by_snapshot_and_timestamp(lake: Lakehouse, orders: str) -> None:
    first = lake.history(orders)[0]
    time.sleep(0.05)
    lake.ingest(pa.table({"id": [4], "status": ["new"], "amount": [40]}), orders)
    assert lake.sql(f"SELECT count(*) AS n FROM {orders}").column("n")[0].as_py() == 4
    by_id = lake.sql(f"SELECT count(*) AS n FROM {orders}", as_of=first.snapshot_id)
    assert by_id.column("n")[0].as_py() == 3
    by_time = lake.sql(f"SELECT count(*) AS n FROM {orders}", as_of=first.committed_at.isoformat())
    assert by_time.column("n")[0].as_py() == 3
    cli = run_cli("query", f"SELECT count(*) AS n FROM {orders}", "--format", "csv",
                  "--as-of", str(first.snapshot_id))  # fmt: skip
    assert cli.stdout.splitlines() == ['"n"', "3"]
    # The connection is usable again for current data afterwards.
    assert lake.sql(f"SELECT count(*) AS n FROM {orders}").column("n")[0].as_py() == 4


def test_time_travel_errors_are_clear(lake: Lakehouse, orders: str) -> None:
    with pytest.raises(SnapshotNotFoundError, match="is not a snapshot of"):
        lake.sql(f"SELECT * FROM {orders}", as_of=12345)
    with pytest.raises(
        SnapshotNotFoundError, match=r"had no snapshot .* first snapshot was committed at"
    ):
        lake.sql(f"SELECT * FROM {orders}", as_of=datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(LakehouseError, match="neither a snapshot id nor a timestamp"):
        lake.sql(f"SELECT * FROM {orders}", as_of="yesterday-ish")


def test_bad_sql_and_unknown_table_name_the_engine_and_query(lake: Lakehouse, orders: str) -> None:
    with pytest.raises(QueryError) as bad:
        lake.sql("SELEC 1")
    assert bad.value.engine == "duckdb" and "SELEC 1" in str(bad.value)
    with pytest.raises(QueryError) as missing:
        lake.sql("SELECT * FROM nowhere.nothing")
    assert "nothing" in str(missing.value) and "lakehouse tables" in str(missing.value)
    assert lake.sql(f"SELECT count(*) AS n FROM {orders}").column("n")[0].as_py() == 3
    cli = run_cli("query", "SELECT * FROM nowhere.nothing", check=False)
    assert cli.returncode == 1 and cli.stderr.startswith("Error: duckdb could not run the query")


def test_tables_describe_history_commands(lake: Lakehouse, orders: str, namespace: str) -> None:
    assert run_cli("tables", namespace).stdout.split() == [orders]
    described = json.loads(run_cli("describe", orders, "--json").stdout)
    assert described["row_count"] == 3
    assert [c["name"] for c in described["schema"]] == ["id", "status", "amount"]
    assert described["location"].startswith(f"s3://{lake.settings.warehouse_bucket}/")
    assert str(lake.history(orders)[0].snapshot_id) in run_cli("history", orders).stdout
    missing = run_cli("describe", f"{namespace}.nope", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
