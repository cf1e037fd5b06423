"""The function allow-list on real engines: a rewrite gives DuckDB's rows, a refusal an error.

Each text runs on DuckDB, Trino and Spark over one lake table
(``lakehouse.engines.functions`` is the table under test).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import QueryError
from tests.integration.test_engine_semantics import ENGINES, answers, assert_identical

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_spark]


@pytest.fixture
def probe(lake: Lakehouse, namespace: str) -> str:
    table = f"{namespace}.probe"
    lake.ingest(pa.table({
        "i": pa.array([1, -2, 3, None], pa.int32()),
        "f": pa.array([1.5, float("nan"), -1.0, None], pa.float64()),
        "m": pa.array([Decimal("1.50"), Decimal("-2.00"), Decimal("0.05"), None], pa.decimal128(12, 2)),
        "s": ["hello", "ßtraße", "aXa", None],
        "d": pa.array([date(2024, 3, 15), date(2024, 1, 31), date(2024, 2, 29), None], pa.date32()),
        "ts": pa.array([datetime(2024, 3, 15, 10, 59, 59), datetime(2023, 12, 31, 23, 0),
                        datetime(2024, 1, 1, 0, 30), None], pa.timestamp("us")),
        "o": [True, False, True, None],
    }), table)  # fmt: skip
    return table


def test_rewrites_give_duckdbs_rows(lake: Lakehouse, probe: str) -> None:
    # greatest/least skip NULLs (Trino said NULL); count_star(); date_diff counts boundaries
    # (Spark counted whole units: 0 months from Jan 31 to Feb 29); regexp_replace 'g'.
    sql = (f"SELECT greatest(i, NULL, 0) AS g, least(i, NULL) AS l, "
           f"date_diff('month', d, DATE '2024-04-01') AS mo, date_diff('year', d, DATE '2025-01-01') AS y, "
           f"date_diff('day', ts, TIMESTAMP '2024-03-16 00:00:00') AS dd, "
           f"date_diff('hour', ts, TIMESTAMP '2024-03-15 11:00:00') AS h, "
           f"regexp_replace(s, 'a', '-', 'g') AS r, strftime(ts, '%Y-%m-%d %H:%M:%S') AS t "
           f"FROM {probe} ORDER BY i NULLS LAST")  # fmt: skip
    rows = assert_identical(answers(lake, sql)).to_pylist()
    assert [r["g"] for r in rows] == [0, 1, 3, 0]
    assert [r["l"] for r in rows] == [-2, 1, 3, None]
    assert [(r["mo"], r["y"], r["dd"], r["h"]) for r in rows[:3]] == [
        (3, 1, 76, 1788), (1, 1, 1, 1), (2, 1, 75, 1787)]  # fmt: skip
    assert rows[2]["r"] == "-X-" and rows[0]["t"] == "2023-12-31 23:00:00"
    counted = assert_identical(answers(lake, f"SELECT count_star() FROM {probe}"))
    assert counted.column_names == ["count_star()"] and counted.column(0)[0].as_py() == 4


def test_group_by_all_on_every_engine(lake: Lakehouse, probe: str) -> None:
    sql = f"SELECT o, i > 0 AS p, count(*) AS n FROM {probe} GROUP BY ALL ORDER BY o NULLS LAST, p"
    rows = assert_identical(answers(lake, sql)).to_pylist()
    assert [(r["o"], r["p"], r["n"]) for r in rows] == [
        (False, False, 1), (True, True, 2), (None, None, 1)]  # fmt: skip


def test_order_by_all_on_every_engine(lake: Lakehouse, probe: str) -> None:
    # Trino has no ORDER BY ALL (it said COLUMN_NOT_FOUND): spelled as positions,
    # with the direction and NULL placement written after ALL applied to each.
    sql = f"SELECT o, i FROM {probe} ORDER BY ALL"
    rows = assert_identical(answers(lake, sql)).to_pylist()
    assert [(r["o"], r["i"]) for r in rows] == [(False, -2), (True, 1), (True, 3), (None, None)]
    sql = f"SELECT o, i FROM {probe} ORDER BY ALL DESC NULLS LAST"
    rows = assert_identical(answers(lake, sql)).to_pylist()
    assert [(r["o"], r["i"]) for r in rows] == [(True, 3), (True, 1), (False, -2), (None, None)]


@pytest.mark.parametrize(
    "sql",
    ["SELECT reverse(s) AS x FROM {t}", "SELECT regexp_replace(s, 'a', '-') AS x FROM {t}",
     "SELECT strftime(d, '%j') AS x FROM {t}", "SELECT strftime(d, '%Y%%') AS x FROM {t}", "SELECT CAST(f AS VARCHAR) AS x FROM {t}",
     "SELECT CAST(ts AS VARCHAR) AS x FROM {t}", "SELECT s || f AS x FROM {t}",
     "SELECT substring(s, 0, 2) AS x FROM {t}", "SELECT substring(s, -2, 2) AS x FROM {t}",
     "SELECT left(s, -2) AS x FROM {t}"],
)  # fmt: skip
def test_a_refused_function_is_an_error_on_trino_and_spark_and_runs_on_duckdb(
    lake: Lakehouse, probe: str, sql: str
) -> None:
    # Before (text and positions): Trino '1.5E0', '...10:59:59.000000', '' for substring(s, 0, 2).
    text = sql.format(t=probe)
    assert lake.sql(text, engine="duckdb").num_rows == 4
    for engine in ("trino", "spark"):
        with pytest.raises(QueryError) as caught:
            lake.sql(text, engine=engine)
        assert engine in caught.value.reason and caught.value.hint, engine


def test_text_of_types_written_alike_is_the_same_everywhere(lake: Lakehouse, probe: str) -> None:
    sql = (f"SELECT CAST(i AS VARCHAR) AS a, m::VARCHAR AS b, CAST(d AS VARCHAR) AS c, "
           f"CAST(o AS VARCHAR) AS e, s || i AS g, concat(s, d) AS h, "
           f"CAST(CAST(i AS DECIMAL(18, 3)) AS VARCHAR) AS k, substring(s, 2, 3) AS u, "
           f"left(s, 2) AS v FROM {probe} ORDER BY i NULLS LAST")  # fmt: skip
    rows = assert_identical(answers(lake, sql)).to_pylist()
    assert rows[0] == {"a": "-2", "b": "-2.00", "c": "2024-01-31", "e": "false", "g": "ßtraße-2",
                       "h": "ßtraße2024-01-31", "k": "-2.000", "u": "tra", "v": "ßt"}  # fmt: skip
    assert rows[3]["a"] is None and rows[3]["h"] == ""  # concat skips NULLs everywhere


def test_upper_and_lower_beyond_ascii_differ_as_the_readme_says(
    lake: Lakehouse, probe: str
) -> None:
    """Pinned difference: each engine maps ß its own way (README table)."""
    got = answers(lake, f"SELECT upper(s) AS u, lower(s) AS l FROM {probe} ORDER BY i NULLS LAST")
    upper = {engine: got[engine].column("u").to_pylist()[0] for engine in ENGINES}
    assert upper == {"duckdb": "ẞTRAẞE", "trino": "ßTRAßE", "spark": "SSTRASSE"}
    ascii_rows = {engine: got[engine].to_pylist()[1:] for engine in ENGINES}
    assert ascii_rows["trino"] == ascii_rows["spark"] == ascii_rows["duckdb"]


def test_nan_in_a_double_column_differs_on_trino_as_the_readme_says(
    lake: Lakehouse, probe: str
) -> None:
    """Pinned difference: DuckDB and Spark order NaN above every number and equal to itself;
    Trino's comparisons with NaN are false and max() skips it."""
    sql = (f"SELECT count(*) FILTER (WHERE f > 0) AS pos, max(f) AS mx, "
           f"count(*) FILTER (WHERE f = 'NaN'::DOUBLE) AS eq FROM {probe}")  # fmt: skip
    got = answers(lake, sql)
    for engine in ("duckdb", "spark"):
        row = got[engine].to_pylist()[0]
        assert (row["pos"], math.isnan(row["mx"]), row["eq"]) == (2, True, 1), engine
    assert got["trino"].to_pylist() == [{"pos": 1, "mx": 1.5, "eq": 0}]
    ordered = answers(lake, f"SELECT f FROM {probe} ORDER BY f")
    for engine in ENGINES:
        values = ordered[engine].column("f").to_pylist()
        assert values[:2] == [-1.0, 1.5] and math.isnan(values[2]) and values[3] is None, engine
