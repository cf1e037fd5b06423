"""Trino on the same Iceberg tables: plain names, cross-engine reads, errors, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal

import psutil
import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings, load_settings
from lakehouse.errors import QueryError
from lakehouse.runtimes.local import LocalRuntime
from tests.integration.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino]

ROWS = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "name": ["ann", "bob", None],
    "amount": pa.array([Decimal("1.50"), Decimal("20.00"), Decimal("-3.25")], pa.decimal128(12, 2)),
    "day": pa.array([19000, 19001, 19002], pa.date32()),
})  # fmt: skip


def sorted_rows(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda row: str(row["id"]))


def test_plain_names_and_the_dbapi_connection(lake: Lakehouse, namespace: str) -> None:
    lake.ingest(ROWS, f"{namespace}.t")
    assert (
        lake.sql(f"SELECT count(*) AS n FROM {namespace}.t", engine="trino").column("n")[0].as_py()
        == 3
    )
    cursor = lake.trino().cursor()
    cursor.execute(f"SELECT name FROM {namespace}.t WHERE id = 2")
    assert cursor.fetchall() == [["bob"]]
    # The DB-API connection answers in UTC, like lake.sql on every engine,
    # whatever the caller's local zone is (the client would send its own).
    script = "import lakehouse; c = lakehouse.connect().trino().cursor(); "
    script += "c.execute('SELECT current_timezone()'); print(c.fetchall()[0][0])"
    zone = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TZ": "America/New_York"}, check=True, timeout=120)  # fmt: skip
    assert zone.stdout.strip() == "UTC"


def test_trino_reads_what_duckdb_and_pyiceberg_wrote(lake: Lakehouse, namespace: str) -> None:
    lake.ingest(ROWS, f"{namespace}.from_pyiceberg")
    lake.duckdb().execute(
        f"CREATE TABLE {namespace}.from_duckdb AS SELECT * FROM {namespace}.from_pyiceberg"
    )
    for table in ("from_pyiceberg", "from_duckdb"):
        via_trino = lake.sql(f"SELECT * FROM {namespace}.{table}", engine="trino")
        assert sorted_rows(via_trino) == sorted_rows(ROWS), table


def test_duckdb_reads_what_trino_wrote(lake: Lakehouse, namespace: str) -> None:
    lake.ingest(ROWS, f"{namespace}.src")
    lake.sql(
        f"CREATE TABLE {namespace}.from_trino AS SELECT * FROM {namespace}.src", engine="trino"
    )
    lake.sql(
        f"INSERT INTO {namespace}.from_trino VALUES (4, 'dee', 4.00, DATE '2022-01-01')",
        engine="trino",
    )
    via_duckdb = lake.sql(f"SELECT * FROM {namespace}.from_trino")
    expected = [
        *ROWS.to_pylist(),
        {
            "id": 4,
            "name": "dee",
            "amount": Decimal("4.00"),
            "day": pa.scalar(18993, pa.date32()).as_py(),
        },
    ]
    assert sorted_rows(via_duckdb) == sorted(expected, key=lambda row: str(row["id"]))


def test_time_travel_on_trino(lake: Lakehouse, namespace: str) -> None:
    table = f"{namespace}.tt"
    lake.ingest(ROWS, table)
    first = lake.history(table)[0].snapshot_id
    lake.ingest(ROWS, table)
    count = f"SELECT count(*) AS n FROM {table}"
    assert lake.sql(count, engine="trino").column("n")[0].as_py() == 6
    assert lake.sql(count, engine="trino", as_of=first).column("n")[0].as_py() == 3
    native = lake.sql(
        f"SELECT count(*) AS n FROM {table} FOR VERSION AS OF {first}", engine="trino", native=True
    )
    assert native.column("n")[0].as_py() == 3


def test_errors_name_the_engine_and_the_query(lake: Lakehouse, namespace: str) -> None:
    with pytest.raises(QueryError) as bad:
        lake.sql("SELEC 1", engine="trino", native=True)
    assert (
        bad.value.engine == "trino"
        and "SYNTAX_ERROR" in str(bad.value)
        and "SELEC 1" in str(bad.value)
    )
    with pytest.raises(QueryError) as translated:
        lake.sql("SELEC 1", engine="trino")
    assert translated.value.engine == "trino" and "cannot parse the query" in str(translated.value)
    with pytest.raises(QueryError, match="TABLE_NOT_FOUND"):
        lake.sql(f"SELECT * FROM {namespace}.missing", engine="trino")
    cli = run_cli("query", "--engine", "trino", "SELECT 1 AS one", "--format", "csv")
    assert cli.stdout.splitlines() == ['"one"', "1"]


# The heavy query's tasks on the worker (the pattern is split so that this query,
# whose own tasks run on every node, does not match itself).
WORKER_RUNS_THE_QUERY = (
    "SELECT count(*) AS n FROM system.runtime.tasks t JOIN system.runtime.queries q "
    "ON t.query_id = q.query_id WHERE t.node_id = 'trino-worker-1' AND t.state = 'RUNNING' "
    "AND q.query LIKE concat('%tpch', '.sf10.lineitem%')"
)


def kill_once_it_runs_the_query(
    settings: Settings, worker: int, killed: list[int], query_ended: threading.Event
) -> None:
    """SIGKILL the worker's process group once it runs a task of the heavy query (a fixed
    4 s delay once fired before the query had reached the worker: it then ran to its end)."""
    with Lakehouse(settings) as watcher:
        while not query_ended.wait(0.2):
            try:
                tasks = watcher.sql(WORKER_RUNS_THE_QUERY, engine="trino", native=True)
            except QueryError:
                continue  # asked again: the lists of a busy coordinator
            if tasks.column("n")[0].as_py() > 0:
                os.killpg(worker, signal.SIGKILL)
                killed.append(worker)
                return


@pytest.mark.slow
def test_worker_joins_and_a_killed_worker_fails_the_query_cleanly(
    stack: Settings, lake: Lakehouse
) -> None:
    # A second Trino JVM on a busy machine: more than the default start-up wait.
    scaled = load_settings(trino_workers=1, startup_timeout=300)
    runtime = LocalRuntime(scaled)
    runtime.up(["trino"])
    try:
        nodes = lake.sql(
            "SELECT node_id FROM system.runtime.nodes WHERE state = 'active'", engine="trino"
        )
        assert sorted(nodes.column("node_id").to_pylist()) == ["trino", "trino-worker-1"]
        worker = runtime.pid("trino-worker-1")
        assert worker is not None
        heavy = "SELECT count(*) FROM tpch.sf10.lineitem a CROSS JOIN tpch.tiny.nation b WHERE a.comment <> b.comment"
        killed: list[int] = []
        query_ended = threading.Event()
        killer = threading.Thread(
            target=kill_once_it_runs_the_query, args=(stack, worker, killed, query_ended)
        )
        killer.start()
        try:
            with pytest.raises(QueryError) as info:
                lake.sql(heavy, engine="trino")
        finally:
            query_ended.set()
            killer.join()
        assert killed == [worker], "the worker never ran a task of the query"
        assert info.value.engine == "trino" and "lineitem" in str(info.value)
        psutil.wait_procs([psutil.Process(worker)], timeout=10) if psutil.pid_exists(
            worker
        ) else None
        assert lake.sql("SELECT 1 AS ok", engine="trino").column("ok")[0].as_py() == 1
    finally:
        runtime.down(["trino-worker-1"])
    assert {row.name: row.healthy for row in LocalRuntime(stack).status()}["trino"]


def test_the_trino_cli_works_against_the_lake(lake: Lakehouse, namespace: str) -> None:
    lake.ingest(ROWS, f"{namespace}.cli")
    result = run_cli("trino-cli", "--execute", f"SELECT count(*) FROM {namespace}.cli")
    assert result.stdout.strip().splitlines()[-1] == '"3"'
