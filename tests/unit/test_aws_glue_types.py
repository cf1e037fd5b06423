"""Glue/Hive type names against Iceberg's and Trino's (pure logic)."""

from __future__ import annotations

import pytest
from pyiceberg.types import DecimalType, ListType, LongType, StringType, StructType, TimestamptzType

from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue_types import glue_type, glue_type_of_trino, iceberg_type, trino_type

ROUND_TRIPS = [
    "bigint", "int", "string", "boolean", "double", "float", "date", "timestamp", "binary",
    "decimal(10,2)", "array<string>", "map<string,bigint>",
    "array<struct<a:int,b:map<string,array<double>>>>",
]  # fmt: skip


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_glue_names_survive_iceberg_and_trino(name: str) -> None:
    assert glue_type(iceberg_type(name)) == name
    assert glue_type_of_trino(trino_type(name)) == name


def test_iceberg_types_get_glue_names() -> None:
    assert glue_type(DecimalType(38, 9)) == "decimal(38,9)"
    assert glue_type(TimestamptzType()) == "timestamp"
    assert isinstance(iceberg_type("BIGINT"), LongType)
    assert isinstance(iceberg_type("varchar(20)"), StringType)
    nested = iceberg_type("array<struct<`x y`:string>>")
    assert isinstance(nested, ListType) and isinstance(nested.element_type, StructType)
    assert nested.element_type.fields[0].name == "x y"


def test_trino_spelling() -> None:
    assert trino_type("struct<a:int,b:timestamp>") == 'row("a" integer, "b" timestamp(3))'
    assert trino_type("map<string,decimal(5,1)>") == "map(varchar, decimal(5,1))"
    assert glue_type_of_trino('row("a b" integer, c varbinary)') == "struct<a b:int,c:binary>"
    assert glue_type_of_trino("varchar(7)") == "varchar(7)"


@pytest.mark.parametrize("bad", ["foo", "array<int", "decimal(40,2)", "int x", "map<string>", ""])
def test_bad_types_are_refused_with_the_column(bad: str) -> None:
    with pytest.raises(AwsError) as caught:
        iceberg_type(bad, "price")
    assert caught.value.code == "InvalidInputException"
    assert "price" in caught.value.message
