"""One text, one answer, one schema on DuckDB, Trino and Spark (issue 10 §2)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import QueryError

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_spark]
ENGINES = ("duckdb", "trino", "spark")

# Written by Trino (it has every type the lake holds); read by all three.
TYPES_TABLE = """CREATE TABLE {table} AS SELECT * FROM (VALUES
  (1, uuid '12151fd2-7586-11e9-8f9e-2a86e4085a59', CAST(ROW(1, 'x') AS ROW(a integer, b varchar)),
   ARRAY['a', NULL], MAP(ARRAY['k'], ARRAY[1]),
   CAST('12345678901234567890.0123456789' AS decimal(38,10)),
   TIMESTAMP '1969-07-20 20:17:40.123456', TIMESTAMP '2024-01-01 00:00:00.000001 UTC',
   DATE '1900-01-01', 'Zürich ✓', true, 'a'),
  (2, NULL, CAST(ROW(NULL, NULL) AS ROW(a integer, b varchar)), ARRAY[], NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS v(id, u, s, l, m, d, ts, tstz, day, txt, flag, "Customer ID")"""


def answers(lake: Lakehouse, sql: str) -> dict[str, pa.Table]:
    return {engine: lake.sql(sql, engine=engine) for engine in ENGINES}


def assert_identical(results: dict[str, pa.Table]) -> None:
    reference = results["duckdb"]
    for engine, result in results.items():
        assert str(result.schema) == str(reference.schema), f"{engine}:\n{result.schema}"
        assert result.to_pylist() == reference.to_pylist(), engine


@pytest.fixture
def types_table(lake: Lakehouse, namespace: str) -> str:
    table = f"{namespace}.types"
    lake.sql(TYPES_TABLE.format(table=table), engine="trino", native=True)
    return table


def test_every_type_has_one_schema_and_one_value(lake: Lakehouse, types_table: str) -> None:
    results = answers(lake, f"SELECT * FROM {types_table} ORDER BY id;")
    assert_identical(results)
    schema = results["trino"].schema
    assert schema.field("s").type == pa.struct([("a", pa.int32()), ("b", pa.string())])
    assert schema.field("u").type == pa.string()
    assert schema.field("d").type == pa.decimal128(38, 10)
    assert schema.field("tstz").type == pa.timestamp("us", "UTC")


def test_double_quoted_names_and_group_by_alias(lake: Lakehouse, types_table: str) -> None:
    sql = f'SELECT "Customer ID" AS c, count(*) FROM {types_table} GROUP BY c ORDER BY c;'
    results = answers(lake, sql)
    assert_identical(results)
    assert results["spark"].column_names == ["c", "count_star()"]
    assert results["spark"].column("c").to_pylist() == ["a", None]


def test_null_ordering_is_the_same_everywhere(lake: Lakehouse, types_table: str) -> None:
    for order in ("ASC", "DESC"):
        results = answers(lake, f"SELECT txt FROM {types_table} ORDER BY txt {order} LIMIT 1")
        assert_identical(results)
        assert results["trino"].column("txt").to_pylist() == ["Zürich ✓"]


def test_unnamed_expressions_are_headed_as_duckdb_heads_them(
    lake: Lakehouse, types_table: str
) -> None:
    results = answers(
        lake, f"SELECT count(*), id + 1, upper(txt) FROM {types_table} GROUP BY id, txt ORDER BY id"
    )
    assert_identical(results)
    assert results["trino"].column_names == ["count_star()", "(id + 1)", "upper(txt)"]


def test_backticks_are_an_error_with_a_hint_on_every_engine(
    lake: Lakehouse, types_table: str
) -> None:
    for engine in ("trino", "spark"):
        with pytest.raises(QueryError, match="double quotes"):
            lake.sql(f"SELECT `id` FROM {types_table}", engine=engine)


def test_native_text_passes_unchanged(lake: Lakehouse, types_table: str) -> None:
    native = lake.sql(
        f"SELECT `Customer ID` AS c FROM {types_table} ORDER BY id", engine="spark", native=True
    )
    assert native.column("c").to_pylist() == ["a", None]


def test_days_of_week_agree_on_every_engine(lake: Lakehouse) -> None:
    # sqlglot alone wrote isodow/dayofweek for Spark as other days, with no error.
    sql = """SELECT d, isodow(d) AS iso, dayofweek(d) AS dow, extract(isodow FROM d) AS x_iso,
                    extract(dow FROM d) AS x_dow
             FROM (VALUES (DATE '2024-01-01'), (DATE '2024-01-02'), (DATE '2024-01-03'),
                          (DATE '2024-01-04'), (DATE '2024-01-05'), (DATE '2024-01-06'),
                          (DATE '2024-01-07')) AS week(d)
             ORDER BY d"""
    results = answers(lake, sql)
    assert_identical(results)
    assert results["spark"].column("iso").to_pylist() == [1, 2, 3, 4, 5, 6, 7]
    assert results["spark"].column("dow").to_pylist() == [1, 2, 3, 4, 5, 6, 0]
