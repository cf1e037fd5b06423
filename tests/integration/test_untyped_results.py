"""Values with no type (NULL, [], MAP()) come back the same way on every engine.

pyspark declared the items of an untyped list non-nullable and failed before
fetching a row; Arrow cannot make a map keyed by its null type (Trino, Spark).
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse import Lakehouse

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_spark]

ENGINES = ("duckdb", "trino", "spark")


@pytest.mark.parametrize(
    ("sql", "expected_type", "value"),
    [
        ("SELECT NULL AS v", pa.int32(), None),
        ("SELECT [] AS v", pa.list_(pa.int32()), []),
        ("SELECT MAP() AS v", pa.map_(pa.int32(), pa.int32()), []),
        ("SELECT [NULL] AS v", pa.list_(pa.int32()), [None]),
    ],
)
def test_untyped_values_have_duckdbs_type_everywhere(
    lake: Lakehouse, sql: str, expected_type: pa.DataType, value: object
) -> None:
    for engine in ENGINES:
        result = lake.sql(sql, engine=engine)
        assert result.schema.field("v").type == expected_type, engine
        assert result.column("v").to_pylist() == [value], engine
