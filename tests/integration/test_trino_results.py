"""Large Trino results come through the spooling protocol, exact and complete (issue 10 §2).

The lake's Trino spools results as compressed segments on S3; the engine
parses large segments with DuckDB's JSON reader and small ones with orjson,
and a server without spooling answers with direct rows. Each path must give
the same rows and schema.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import trino

from lakehouse import Lakehouse
from lakehouse.engines import trino_results
from lakehouse.engines.trino import TrinoEngine
from lakehouse.engines.trino_results import ENCODING
from lakehouse.errors import QueryError

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino]

ROWS = 120_000
# Every kind of value the result contract covers, many rows, in a known order.
WIDE_QUERY = f"""SELECT n, CAST(n % 100 AS tinyint) AS tiny, CAST(n % 30000 AS smallint) AS small,
  CAST(n * 3 AS integer) AS i, n * 1000000007 AS big, CAST(n AS real) / 8 AS r, n / 3.0e0 AS d,
  CAST(n AS decimal(38, 10)) / 7 AS dec, n % 2 = 0 AS flag, 'Zürich "✓" ' || CAST(n AS varchar) AS txt,
  CAST(NULL AS varchar) AS nothing, from_unixtime(n, 'UTC') AS tstz,
  CAST('2024-01-01 00:00:00.' || lpad(CAST(n % 1000000 AS varchar), 6, '0') AS timestamp(6)) AS ts,
  date_add('day', n % 50000, DATE '1900-01-01') AS day,
  ARRAY[n, NULL] AS arr, MAP(ARRAY['k'], ARRAY[n]) AS m,
  CAST(ROW(n, 'x') AS ROW(a bigint, b varchar)) AS s,
  uuid '12151fd2-7586-11e9-8f9e-2a86e4085a59' AS u,
  CASE WHEN n = 5 THEN nan() WHEN n = 6 THEN infinity() ELSE 0.5e0 END AS special
FROM (SELECT (x - 1) * 1000 + y AS n
      FROM UNNEST(sequence(1, {ROWS // 1000})) AS a(x) CROSS JOIN UNNEST(sequence(1, 1000)) AS b(y))
ORDER BY n"""


def wide(lake: Lakehouse) -> pa.Table:
    return lake.sql(WIDE_QUERY, engine="trino", native=True)


def assert_same(result: pa.Table, reference: pa.Table) -> None:
    """Same schema and values, column by column; NaN equals NaN."""
    assert result.schema == reference.schema
    for name in reference.column_names:
        got, expected = result.column(name), reference.column(name)
        if pa.types.is_floating(expected.type):
            assert pc.is_nan(got).equals(pc.is_nan(expected)), name
            got, expected = (pc.if_else(pc.is_nan(c), 0.0, c) for c in (got, expected))
        assert got.equals(expected), name


@pytest.fixture
def reference(lake: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> pa.Table:
    """The wide result converted the pre-spooling way: direct rows, one batch at a time."""
    original = TrinoEngine.connect

    def without_spooling(self: TrinoEngine, *args: Any, **options: Any) -> trino.dbapi.Connection:
        return original(self, *args, session_properties={"spooling_enabled": "false"}, **options)

    with monkeypatch.context() as patch:
        patch.setattr(TrinoEngine, "connect", without_spooling)
        return wide(lake)


def test_the_lake_trino_spools_large_results(lake: Lakehouse) -> None:
    connection = TrinoEngine(lake.settings).connect(encoding=ENCODING, legacy_primitive_types=True)
    cursor = connection.cursor("segment")
    cursor.execute(WIDE_QUERY)
    kinds = {type(item.segment).__name__ for item in cursor.fetchall()}
    connection.close()
    assert "SpooledSegment" in kinds


def test_spooled_results_equal_the_direct_protocol(lake: Lakehouse, reference: pa.Table) -> None:
    result = wide(lake)
    assert result.num_rows == ROWS
    assert_same(result, reference)
    first = result.slice(0, 1).to_pylist()[0]
    assert first["dec"] == Decimal("0.1428571429")
    assert first["txt"] == 'Zürich "✓" 1'
    assert first["ts"].microsecond == 1
    assert str(result.schema.field("tstz").type) == "timestamp[us, tz=UTC]"


@pytest.mark.parametrize("duckdb_min_bytes", [0, 1 << 40], ids=["duckdb", "orjson"])
def test_both_segment_parsers_give_the_same_result(
    lake: Lakehouse, reference: pa.Table, monkeypatch: pytest.MonkeyPatch, duckdb_min_bytes: int
) -> None:
    monkeypatch.setattr(trino_results, "DUCKDB_MIN_BYTES", duckdb_min_bytes)
    assert_same(wide(lake), reference)


def test_small_and_empty_results_keep_their_schema(lake: Lakehouse) -> None:
    empty = lake.sql(f"SELECT * FROM ({WIDE_QUERY}) WHERE n < 0", engine="trino", native=True)
    assert empty.num_rows == 0
    assert empty.schema == wide_schema(lake)
    one = lake.sql(f"SELECT * FROM ({WIDE_QUERY}) WHERE n = 5", engine="trino", native=True)
    assert one.column("n").to_pylist() == [5]


def wide_schema(lake: Lakehouse) -> pa.Schema:
    return lake.sql(f"SELECT * FROM ({WIDE_QUERY}) LIMIT 1", engine="trino", native=True).schema


def test_a_result_over_the_limit_stops_early_with_a_hint(lake: Lakehouse) -> None:
    small = lake.settings.model_copy(update={"result_max_bytes": 1 << 20})
    with Lakehouse(small) as limited, pytest.raises(QueryError) as caught:
        wide(limited)
    assert "larger than the limit of 1 MiB" in str(caught.value)
    assert caught.value.hint and "LIMIT" in caught.value.hint


def test_a_segment_that_is_not_what_trino_announced_is_refused(
    lake: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = trino_results._segment_json

    def truncated(item: Any) -> bytes:
        text = original(item)
        return text[: text.rindex(b"],[")] + b"]]" if b"],[" in text else text

    monkeypatch.setattr(trino_results, "_segment_json", truncated)
    with pytest.raises(QueryError) as caught:
        wide(lake)
    assert "rows, not" in str(caught.value)
