"""Spark (Connect and batch steps) on the same lake as DuckDB and Trino."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import QueryError
from lakehouse.runtimes.local import LocalRuntime
from tests.integration.conftest import run_cli
from tests.integration.test_cross_engine import normalised, same_rows

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_spark, pytest.mark.lakehouse_trino]
ENGINES = ("duckdb", "trino", "spark")
JOB = Path(__file__).parents[2] / "lakehouse" / "jobs" / "sessionize.py"

ROWS = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "name": ["ann", "bob", None],
    "amount": pa.array([Decimal("1.50"), Decimal("20.00"), Decimal("-3.25")], pa.decimal128(12, 2)),
})  # fmt: skip


def read_everywhere(lake: Lakehouse, sql: str) -> dict[str, list[tuple[object, ...]]]:
    return {engine: normalised(lake.sql(sql, engine=engine)) for engine in ENGINES}


def assert_all_equal(answers: dict[str, list[tuple[object, ...]]]) -> None:
    reference = answers["duckdb"]
    for engine, rows in answers.items():
        assert same_rows(rows, reference), f"{engine}: {rows} != duckdb: {reference}"


def test_session_has_lake_as_default_catalog(lake: Lakehouse, sample: dict[str, int]) -> None:
    spark = lake.spark()
    assert spark.sql("SELECT current_catalog() AS c").first()["c"] == "lake"  # type: ignore[index]
    assert (
        spark.sql("SELECT count(*) AS n FROM retail.orders").first()["n"] == sample["retail.orders"]
    )  # type: ignore[index]


@pytest.mark.parametrize("writer", ENGINES)
def test_a_table_written_by_each_engine_reads_the_same_everywhere(
    lake: Lakehouse, namespace: str, writer: str
) -> None:
    lake.ingest(ROWS, f"{namespace}.src")
    lake.sql(
        f"CREATE TABLE {namespace}.by_{writer} AS SELECT * FROM {namespace}.src", engine=writer
    )
    answers = read_everywhere(lake, f"SELECT id, name, amount FROM {namespace}.by_{writer}")
    assert answers["duckdb"] == normalised(ROWS)
    assert_all_equal(answers)


def test_changes_in_one_engine_are_seen_by_all(lake: Lakehouse, namespace: str) -> None:
    table = f"{namespace}.evolving"
    lake.ingest(ROWS, table)
    before = lake.history(table)[-1].snapshot_id
    lake.sql(f"ALTER TABLE {table} ADD COLUMN city STRING", engine="spark")
    lake.sql(f"UPDATE {table} SET city = 'oslo' WHERE id = 1", engine="spark")
    lake.sql(f"ALTER TABLE {table} RENAME COLUMN name TO full_name", engine="trino")
    lake.sql(f"DELETE FROM {table} WHERE id = 3", engine="trino")
    lake.duckdb().execute(f"UPDATE {table} SET amount = 99.99 WHERE id = 2")
    answers = read_everywhere(lake, f"SELECT id, full_name, amount, city FROM {table}")
    assert answers["duckdb"] == [(1, "ann", 1.5, "oslo"), (2, "bob", 99.99, None)]
    assert_all_equal(answers)
    # Time travel to the snapshot before the changes, natively in each engine.
    old = {
        "duckdb": lake.sql(f"SELECT count(*) AS n FROM {table}", as_of=before),
        "trino": lake.sql(
            f"SELECT count(*) AS n FROM {table} FOR VERSION AS OF {before}",
            engine="trino",
            native=True,
        ),
        "spark": lake.sql(
            f"SELECT count(*) AS n FROM {table} VERSION AS OF {before}", engine="spark", native=True
        ),
    }
    assert {engine: result.column(0)[0].as_py() for engine, result in old.items()} == {
        e: 3 for e in ENGINES
    }


def test_spark_errors_name_the_engine_and_leave_it_healthy(
    lake: Lakehouse, stack: Settings
) -> None:
    with pytest.raises(QueryError) as bad:
        lake.sql("SELEC 1", engine="spark")
    assert bad.value.engine == "spark" and "cannot parse the query" in str(bad.value)
    with pytest.raises(QueryError) as bad:
        lake.sql("SELEC 1", engine="spark", native=True)
    assert bad.value.engine == "spark" and "PARSE_SYNTAX_ERROR" in str(bad.value)
    assert "JVM stacktrace" not in str(bad.value)
    with pytest.raises(QueryError, match="TABLE_OR_VIEW_NOT_FOUND"):
        lake.sql("SELECT * FROM nowhere.nothing", engine="spark")
    assert lake.sql("SELECT 1 AS ok", engine="spark").column("ok")[0].as_py() == 1
    assert {row.name: row.healthy for row in LocalRuntime(stack).status()}["spark"]


def test_sessionize_step_builds_both_tables_and_is_idempotent(
    lake: Lakehouse, sample: dict[str, int]
) -> None:
    for _attempt in range(2):
        result = run_cli("spark", "submit", "--quiet", str(JOB))
        assert "succeeded" in result.stderr, result.stderr
    sessions = lake.sql(
        "SELECT count(*) AS n, count_if(converted) AS c FROM web.sessions"
    ).to_pylist()[0]
    truth = lake.sql(
        "SELECT count(DISTINCT session_id) AS n, "
        "count(DISTINCT CASE WHEN event_type = 'purchase' THEN session_id END) AS c FROM web.clickstream"
    ).to_pylist()[0]
    assert sessions == truth
    revenue = lake.sql("SELECT sum(revenue) AS r FROM retail.daily_sales").column("r")[0].as_py()
    expected = (
        lake.sql(
            "SELECT sum(i.line_amount) AS r FROM retail.order_items i JOIN retail.orders o USING (order_id) "
            "WHERE o.status <> 'cancelled'"
        )
        .column("r")[0]
        .as_py()
    )
    assert revenue == expected
    described = lake.describe("web.sessions")
    assert described["partitioning"] and "month" in described["partitioning"][0]


def test_a_failing_step_reports_its_exit_status(stack: Settings, tmp_path: Path) -> None:
    job = tmp_path / "fails.py"
    job.write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")
    result = run_cli("spark", "submit", str(job), check=False)
    assert result.returncode == 3
    assert "failed (exit code 3)" in result.stderr and "about to fail" in result.stdout
    logs = sorted((stack.home_dir / "logs" / "spark-jobs").glob("fails-*.log"))
    assert logs and "about to fail" in logs[-1].read_text()


def test_plain_pyspark_connects_through_lakehouse_env(
    lake: Lakehouse, sample: dict[str, int]
) -> None:
    from tests.integration.test_env import in_lake_shell

    code = (
        "from pyspark.sql import SparkSession; "
        "print(SparkSession.builder.getOrCreate().sql('SELECT count(*) AS n FROM retail.orders').first()['n'])"
    )
    result = in_lake_shell(f'python -c "{code}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sample["retail.orders"])
