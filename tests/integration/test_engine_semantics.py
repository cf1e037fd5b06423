"""Where DuckDB, Trino and Spark answer differently, and what lakehouse does about it.

Each test runs one text on the three engines. Where the translation step makes
the engines agree, the test asserts one schema and one value (DuckDB's); where
they still differ, it pins each engine's answer, as the README's table says.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import QueryError
from tests.integration.conftest import CLI

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_spark]
ENGINES = ("duckdb", "trino", "spark")


def answers(lake: Lakehouse, sql: str) -> dict[str, pa.Table]:
    return {engine: lake.sql(sql, engine=engine) for engine in ENGINES}


def assert_identical(results: dict[str, pa.Table]) -> pa.Table:
    reference = results["duckdb"]
    for engine, result in results.items():
        assert str(result.schema) == str(reference.schema), f"{engine}:\n{result.schema}"
        assert result.to_pylist() == reference.to_pylist(), engine
    return reference


@pytest.fixture
def mixed(lake: Lakehouse, namespace: str) -> str:
    """A table written by pyiceberg with upper-case and spaced column names."""
    table = f"{namespace}.mixed"
    data = pa.table({
        "Customer ID": pa.array([1, 2, 3, 4], pa.int32()),
        "Code": ["a", "b", "a", None],
        "amount": pa.array([Decimal("1.00"), Decimal("2.00"), Decimal("2.00"), None], pa.decimal128(12, 2)),
        "big": pa.array([2**62, 2**62, 9007199254740993, 7], pa.int64()),
        "ratio": pa.array([7.5, -7.5, 1.0, None], pa.float64()),
        "day": pa.array([date(2024, 3, 15), date(2024, 3, 1), None, date(2024, 2, 29)], pa.date32()),
    })  # fmt: skip
    lake.ingest(data, table)
    return table


def test_select_star_keeps_the_tables_own_column_names(lake: Lakehouse, mixed: str) -> None:
    results = answers(lake, f"SELECT * FROM {mixed} ORDER BY 1")
    reference = assert_identical(results)
    assert reference.column_names == ["Customer ID", "Code", "amount", "big", "ratio", "day"]
    qualified = answers(
        lake, f'SELECT m.* EXCLUDE (big), 1 AS one FROM {mixed} m ORDER BY "Customer ID"'
    )
    assert assert_identical(qualified).column_names[:2] == ["Customer ID", "Code"]
    assert "big" not in qualified["trino"].column_names


def test_avg_of_a_decimal_is_duckdbs_double(lake: Lakehouse, mixed: str) -> None:
    # Before: Trino decimal(12,2) 1.67 (rounded to the input's scale), Spark decimal(16,6).
    reference = assert_identical(answers(lake, f"SELECT avg(amount) AS a FROM {mixed}"))
    assert reference.schema.field("a").type == pa.float64()
    assert reference.column("a")[0].as_py() == 5 / 3
    sql = f'SELECT avg(amount) OVER (PARTITION BY "Code") AS w FROM {mixed} ORDER BY "Customer ID"'
    assert assert_identical(answers(lake, sql)).column("w").to_pylist() == [1.5, 2.0, 1.5, None]


def test_sum_of_integers_cannot_overflow_and_has_one_type(lake: Lakehouse, mixed: str) -> None:
    # Before: DuckDB decimal(38,0) (a hugeint); Trino and Spark bigint, an overflow error here.
    sql = f'SELECT sum(big) AS s, sum("Customer ID") AS c, sum(amount) AS m FROM {mixed}'
    reference = assert_identical(answers(lake, sql))
    assert reference.schema.field("s").type == pa.decimal128(38, 0)
    assert reference.column("s")[0].as_py() == Decimal(2**63 + 9007199254740993 + 7)
    assert reference.schema.field("m").type == pa.decimal128(38, 2)  # Spark: decimal(22,2) before


def test_integer_division_truncates_integers_and_divides_floats(
    lake: Lakehouse, mixed: str
) -> None:
    # Before: Trino went through a double (9007199254740993 // 1 lost a digit) and
    # truncated 7.5 // 2 to 3; Spark refused a double; '//' and '%' by zero failed.
    sql = (f"SELECT big // 1 AS q, \"Customer ID\" // 2 AS h, ratio // 2 AS f, 7.5 // 2 AS d, "
           f"big // 0 AS z, big % 0 AS r, -7 // 2 AS n, 7 / 2 AS s, 7.0 / 2 AS t FROM {mixed} ORDER BY \"Customer ID\"")  # fmt: skip
    reference = assert_identical(answers(lake, sql))
    row = reference.to_pylist()[2]
    assert (row["q"], row["h"], row["d"], row["z"], row["r"], row["n"]) == (
        9007199254740993,
        1,
        3.75,
        None,
        None,
        -3,
    )
    assert reference.column("f").to_pylist()[:2] == [3.75, -3.75]
    assert (row["s"], row["t"], reference.schema.field("t").type) == (3.5, 3.5, pa.float64())


def test_integer_division_of_an_unknown_type_is_an_error(lake: Lakehouse, mixed: str) -> None:
    sql = f"SELECT x // 2 FROM (SELECT big AS x FROM {mixed}) s"
    for engine in ("trino", "spark"):
        with pytest.raises(QueryError, match="needs operands whose type is known"):
            lake.sql(sql, engine=engine)


def test_same_everywhere_without_help(lake: Lakehouse, mixed: str) -> None:
    """count(DISTINCT) skips NULLs, round() halves away from zero, strings compare by code point."""
    sql = (f"SELECT count(DISTINCT \"Code\") AS d, count(\"Code\") AS c, round(2.5) AS r, round(-2.5) AS n, "
           f"round(CAST(2.5 AS DOUBLE)) AS f, 'a' < 'B' AS lt, 'ä' > 'z' AS u, 'a' = 'A' AS eq, "
           f"TIMESTAMPTZ '2024-03-15 10:00:00+02' + INTERVAL 1 DAY AS z FROM {mixed}")  # fmt: skip
    row = assert_identical(answers(lake, sql)).to_pylist()[0]
    assert (row["d"], row["c"], row["r"], row["n"], row["f"]) == (2, 3, 3, -3, 3.0)
    assert (row["lt"], row["u"], row["eq"]) == (False, True, False)
    assert row["z"].isoformat() == "2024-03-16T08:00:00+00:00"


def test_pinned_differences_of_dates_and_intervals(lake: Lakehouse) -> None:
    """Documented in the README's table: not translated, each engine's answer pinned."""
    got = answers(lake, "SELECT DATE '2024-03-15' - DATE '2024-03-01' AS d")
    assert got["duckdb"].column("d").to_pylist() == [14]
    assert got["trino"].column("d").to_pylist() == [
        pa.scalar((0, 14, 0), pa.month_day_nano_interval()).as_py()
    ]
    assert got["spark"].column("d").to_pylist() == [pa.scalar((0, 0, 14 * 86_400 * 10**9), pa.month_day_nano_interval()).as_py()]  # fmt: skip
    got = answers(
        lake,
        "SELECT date_trunc('month', DATE '2024-03-15') AS m, DATE '2024-03-15' + INTERVAL 1 DAY AS n",
    )
    assert got["duckdb"].to_pylist() == [{"m": datetime(2024, 3, 1), "n": datetime(2024, 3, 16)}]
    for engine in ("trino", "spark"):
        assert got[engine].to_pylist() == [{"m": date(2024, 3, 1), "n": date(2024, 3, 16)}], engine
    got = answers(lake, "SELECT date_trunc('month', TIMESTAMP '2024-03-15 10:11:12') AS m")
    assert got["spark"].schema.field("m").type == pa.timestamp("us", "UTC")
    assert (
        got["duckdb"].schema.field("m").type
        == got["trino"].schema.field("m").type
        == pa.timestamp("us")
    )
    got = answers(
        lake, "SELECT TIMESTAMP '2024-03-15 10:00:00' - TIMESTAMP '2024-03-14 09:00:00' AS i"
    )
    hours_25 = 25 * 3600 * 10**9
    assert (
        got["spark"].column("i")[0].as_py()
        == pa.scalar((0, 0, hours_25), pa.month_day_nano_interval()).as_py()
    )
    assert got["trino"].column("i")[0].as_py() == got["duckdb"].column("i")[0].as_py()


def test_division_by_zero_of_a_float_is_an_error_on_spark(lake: Lakehouse) -> None:
    assert lake.sql("SELECT 1 / 0 AS x", engine="duckdb").column("x").to_pylist() == [float("inf")]
    assert lake.sql("SELECT 1 / 0 AS x", engine="trino").column("x").to_pylist() == [float("inf")]
    with pytest.raises(QueryError, match="DIVIDE_BY_ZERO"):
        lake.sql("SELECT 1 / 0 AS x", engine="spark")


@pytest.fixture
def victim(lake: Lakehouse, namespace: str) -> str:
    table = f"{namespace}.victim"
    lake.ingest(pa.table({"id": pa.array([1, 2, 3], pa.int64())}), table)
    return table


@pytest.mark.parametrize(
    "script",
    ["SELECT 1 AS a; DELETE FROM {t}", "SELECT 1 AS a; DROP TABLE {t}; SELECT 2 AS b",
     "INSERT INTO {t} VALUES (4); SELECT 1 AS a", "DELETE FROM {t} WHERE id = 1;\n;SELECT 1 AS a"],
)  # fmt: skip
def test_a_script_is_refused_whole_on_every_engine(
    lake: Lakehouse, victim: str, script: str
) -> None:
    # Before: DuckDB ran every statement (table emptied or dropped), exit 0.
    for engine in ENGINES:
        for native in (False, True):
            with pytest.raises(QueryError, match="expected one statement"):
                lake.sql(
                    script.format(t=victim), engine=engine, native=native and engine == "duckdb"
                )
    assert lake.sql(f"SELECT id FROM {victim} ORDER BY id").column("id").to_pylist() == [1, 2, 3]


def test_a_trailing_comment_is_not_a_statement_and_an_empty_text_is_an_error(
    lake: Lakehouse,
) -> None:
    # Before: Trino and Spark said "got 2"; DuckDB ran "" and ";" silently.
    assert_identical(answers(lake, "SELECT 1 AS a; -- the end"))
    for engine in ENGINES:
        for text in ("", ";", "-- nothing"):
            with pytest.raises(QueryError, match="no statement to run"):
                lake.sql(text, engine=engine)


def test_every_engine_answers_in_utc_whatever_the_callers_tz(
    lake: Lakehouse, namespace: str
) -> None:
    # Before: DuckDB followed TZ (2024-05-31, hour 20); Trino and Spark answered in UTC.
    table = f"{namespace}.zoned"
    instant = datetime(2024, 6, 1, tzinfo=UTC)
    lake.ingest(pa.table({"tz": pa.array([instant], pa.timestamp("us", "UTC"))}), table)
    sql = (f"SELECT CAST(tz AS DATE) AS d, hour(tz) AS h, date_trunc('day', tz) = tz AS whole_day, "
           f"strftime(tz, '%Y-%m-%d %H') AS s FROM {table}")  # fmt: skip
    env = {**os.environ, "TZ": "America/New_York"}
    for engine in ENGINES:
        command = [*CLI, "query", "--engine", engine, "--format", "json", sql]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == [
            {"d": "2024-06-01", "h": 0, "whole_day": True, "s": "2024-06-01 00"}
        ], engine


def test_list_keeps_nulls_and_order_on_every_engine(lake: Lakehouse, namespace: str) -> None:
    # Before: Spark's collect_list gave [3, 2] for [2, 3, NULL] and [] for no rows.
    table = f"{namespace}.listed"
    lake.ingest(pa.table({"g": [1, 1, 1, 2], "x": pa.array([3, None, 2, 5], pa.int64())}), table)
    sql = (f"SELECT g, list(x ORDER BY x) AS up, array_agg(x ORDER BY x DESC NULLS FIRST) AS down, "
           f"array_agg(DISTINCT x ORDER BY x) AS d, list(x) FILTER (WHERE x > 4) AS f "
           f"FROM {table} GROUP BY g ORDER BY g")  # fmt: skip
    rows = assert_identical(answers(lake, sql)).to_pylist()
    assert rows[0] == {
        "g": 1,
        "up": [2, 3, None],
        "down": [None, 3, 2],
        "d": [2, 3, None],
        "f": None,
    }
    assert rows[1] == {"g": 2, "up": [5], "down": [5], "d": [5], "f": [5]}
    window = f"SELECT x, list(x ORDER BY x) OVER (PARTITION BY g) AS w FROM {table} ORDER BY x"
    assert assert_identical(answers(lake, window)).column("w").to_pylist()[0] == [2, 3, None]
    with pytest.raises(QueryError, match="different directions"):
        lake.sql(f"SELECT list(x ORDER BY g, x DESC) AS l FROM {table}", engine="spark")


def test_casts_to_integers_round_like_duckdb(lake: Lakehouse, namespace: str) -> None:
    # Before: Spark truncated (1.999 -> 1, -1.5 -> -1); Trino rounded doubles half away (2.5 -> 3).
    table = f"{namespace}.fractions"
    doubles = [2.5, 3.5, -2.5, -0.5, 1.999, None]
    decimals = [Decimal(v) for v in ("2.50", "3.50", "-2.50", "-0.50", "1.99")] + [None]
    lake.ingest(pa.table({"f": doubles, "m": pa.array(decimals, pa.decimal128(12, 2))}), table)
    sql = (f"SELECT CAST(f AS INTEGER) AS fi, TRY_CAST(f AS BIGINT) AS fb, m::INT AS mi, "
           f"CAST(1.999 AS INTEGER) AS l1, CAST(-1.5 AS INTEGER) AS l2, CAST(2.5 AS BIGINT) AS l3 "
           f"FROM {table} ORDER BY f NULLS LAST")  # fmt: skip
    result = assert_identical(answers(lake, sql))
    assert result.column("fi").to_pylist() == [-2, 0, 2, 2, 4, None]
    assert result.column("fb").to_pylist() == [-2, 0, 2, 2, 4, None]
    assert result.column("mi").to_pylist() == [-3, -1, 2, 3, 4, None]
    assert result.column("l1").to_pylist()[0] == 2
    assert (result.column("l2")[0].as_py(), result.column("l3")[0].as_py()) == (-2, 3)


def test_unquoted_names_beyond_ascii_work_everywhere(lake: Lakehouse, namespace: str) -> None:
    # Before: Trino and Spark refused `SELECT ünï FROM ns.cols` as a syntax error.
    table = f"{namespace}.cols"
    lake.ingest(pa.table({"ünï": [1, 2], "größe": ["a", "b"]}), table)
    result = assert_identical(answers(lake, f"SELECT ünï, größe FROM {table} WHERE ünï > 1"))
    assert result.to_pylist() == [{"ünï": 2, "größe": "b"}]


def test_a_translated_syntax_error_names_the_users_dialect(lake: Lakehouse) -> None:
    # Before: "Check the SQL syntax (Spark SQL dialect)", for text the user wrote in DuckDB's.
    with pytest.raises(QueryError) as info:
        lake.sql("SELECT x FROM (SELECT 'a' AS x) s WHERE x SIMILAR TO 'a'", engine="spark")
    assert "DuckDB's dialect" in str(info.value.hint) and "--native" in str(info.value.hint)
