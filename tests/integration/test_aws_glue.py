"""Glue's API on the real lake: boto3's glue client, the AWS CLI and awswrangler,
unchanged but for the endpoint (``lakehouse env``), against the session's ``aws``
service, Iceberg REST catalog, S3 and Trino."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from lakehouse import Lakehouse, Settings
from lakehouse.aws.glue_hive import trino_catalog_of
from lakehouse.env import environment
from lakehouse.testing.lake import IsolatedLake, unique_name
from tests.integration.aws_clients import run_python, wrangler_python

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_aws]

ORDERS = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "customer": ["ada", "bo", "carl"],
    "amount": pa.array([Decimal("10.50"), Decimal("3.25"), Decimal("7.00")], pa.decimal128(10, 2)),
    "tags": pa.array([["a"], [], ["b", "c"]], pa.list_(pa.string())),
})  # fmt: skip


@pytest.fixture
def glue(stack: Settings) -> Any:
    return boto3.client("glue", endpoint_url=stack.aws_uri, region_name=stack.region,
                        aws_access_key_id=stack.access_key,
                        aws_secret_access_key=stack.secret_key)  # fmt: skip


@pytest.fixture
def corner(lake: Lakehouse, request: pytest.FixtureRequest) -> Iterator[IsolatedLake]:
    """The test's own namespace and S3 prefix, dropped afterwards."""
    isolated = IsolatedLake.create(lake, unique_name(request.node.name))
    yield isolated
    isolated.drop()


@pytest.fixture
def database(glue: Any, corner: IsolatedLake) -> Iterator[str]:
    """The test's namespace, as a Glue database; its Hive-style tables (which the
    namespace's own clean-up does not see) are removed afterwards."""
    yield corner.namespace
    for table in glue.get_tables(DatabaseName=corner.namespace)["TableList"]:
        if table["Parameters"].get("table_type") != "ICEBERG":
            glue.delete_table(DatabaseName=corner.namespace, Name=table["Name"])
    corner.client.sql(f"DROP SCHEMA IF EXISTS hive.{corner.namespace}", engine="trino")


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return str(caught.value.response["Error"]["Code"])


def test_database_lifecycle(glue: Any, stack: Settings) -> None:
    name = f"glue_db_{os.getpid()}"
    glue.create_database(DatabaseInput={"Name": name.upper(), "Description": "first",
                                        "Parameters": {"owner": "data"}})  # fmt: skip
    try:
        found = glue.get_database(Name=name)["Database"]
        assert (found["Name"], found["Description"], found["Parameters"]) == (
            name, "first", {"owner": "data"})  # fmt: skip
        assert (
            error_code(glue.create_database, DatabaseInput={"Name": name})
            == "AlreadyExistsException"
        )
        glue.update_database(Name=name, DatabaseInput={"Name": name, "Description": "second"})
        found = glue.get_database(Name=name.upper())["Database"]
        assert (found["Description"], found["Parameters"]) == ("second", {})
        listed = [d["Name"] for p in glue.get_paginator("get_databases").paginate(MaxResults=1)
                  for d in p["DatabaseList"]]  # fmt: skip
        assert name in listed and len(listed) == len(set(listed))
    finally:
        glue.delete_database(Name=name)
    assert error_code(glue.get_database, Name=name) == "EntityNotFoundException"
    assert error_code(glue.delete_database, Name=name) == "EntityNotFoundException"


def test_an_ingested_iceberg_table_as_glue_shows_it(
    glue: Any, corner: IsolatedLake, database: str
) -> None:
    corner.ingest(ORDERS, "orders")
    corner.ingest(ORDERS.slice(0, 1), "order_items")
    table = glue.get_table(DatabaseName=database, Name="orders")["Table"]
    iceberg = corner.table("orders")
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"]["table_type"] == "ICEBERG"
    assert table["Parameters"]["metadata_location"] == iceberg.metadata_location
    assert table["StorageDescriptor"]["Location"] == iceberg.location()
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("id", "bigint"), ("customer", "string"), ("amount", "decimal(10,2)"),
        ("tags", "array<string>")]  # fmt: skip
    assert table["PartitionKeys"] == []
    names = lambda expression: sorted(t["Name"] for t in glue.get_tables(  # noqa: E731
        DatabaseName=database, Expression=expression)["TableList"])  # fmt: skip
    assert names("order*") == ["order_items", "orders"]
    assert names("*items") == ["order_items"]
    assert names("orders|nothing") == ["orders"]
    paged = [t["Name"] for p in glue.get_paginator("get_tables").paginate(
        DatabaseName=database, MaxResults=1) for t in p["TableList"]]  # fmt: skip
    assert paged == ["order_items", "orders"]
    before = glue.get_table_versions(DatabaseName=database, TableName="orders")["TableVersions"]
    corner.ingest(ORDERS, "orders")
    after = glue.get_table_versions(DatabaseName=database, TableName="orders")["TableVersions"]
    assert len(after) == len(before) + 1
    assert (
        after[0]["Table"]["Parameters"]["metadata_location"]
        == corner.table("orders").metadata_location
    )
    assert int(after[0]["VersionId"]) > int(before[0]["VersionId"])
    assert (
        trino_catalog_of(corner.client.settings, database, "ORDERS")
        == corner.client.settings.catalog_name
    )


def test_create_an_iceberg_table_then_query_and_evolve_it(
    glue: Any, corner: IsolatedLake, database: str
) -> None:
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "Events", "Description": "clicks",
        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint"},
                                          {"Name": "price", "Type": "decimal(8,2)"},
                                          {"Name": "attrs", "Type": "map<string,int>"}]},
        "PartitionKeys": [{"Name": "day", "Type": "string"}],
        "Parameters": {"table_type": "ICEBERG", "owner_team": "web"}})  # fmt: skip
    table = corner.table("events")
    assert [f.name for f in table.schema().fields] == ["id", "price", "attrs", "day"]
    assert table.properties["owner_team"] == "web" and table.properties["comment"] == "clicks"
    corner.sql(f"INSERT INTO {database}.events VALUES (1, 2.50, MAP(ARRAY['k'], ARRAY[1]), 'mon'), "
             "(2, 1.00, NULL, 'tue'), (3, 9.99, NULL, 'tue')", engine="trino")  # fmt: skip
    assert corner.sql(f"SELECT sum(price) AS total FROM {database}.events").to_pylist() == [
        {"total": Decimal("13.49")}]  # fmt: skip
    parts = glue.get_partitions(DatabaseName=database, TableName="events")["Partitions"]
    assert [(p["Values"], p["Parameters"]["numRows"]) for p in parts] == [
        (["mon"], "1"),
        (["tue"], "2"),
    ]
    filtered = glue.get_partitions(
        DatabaseName=database, TableName="events", Expression="day = 'tue'"
    )
    assert [p["Values"] for p in filtered["Partitions"]] == [["tue"]]
    current = glue.get_table(DatabaseName=database, Name="events")["Table"]
    wanted = {"Name": "events", "Parameters": {"table_type": "ICEBERG"},
              "StorageDescriptor": {"Columns": [*current["StorageDescriptor"]["Columns"],
                                                {"Name": "note", "Type": "string"}]}}  # fmt: skip
    assert error_code(glue.update_table, DatabaseName=database, TableInput=wanted,
                      VersionId="0") == "ConcurrentModificationException"  # fmt: skip
    glue.update_table(DatabaseName=database, TableInput=wanted, VersionId=current["VersionId"])
    assert "note" in corner.table("events").schema().column_names
    assert "owner_team" not in corner.table("events").properties  # Glue replaces the definition
    narrowed = {**wanted, "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}]}}
    assert (
        error_code(glue.update_table, DatabaseName=database, TableInput=narrowed)
        == "InvalidInputException"
    )
    unchanged = corner.table("events").schema()
    assert unchanged.find_field("id").field_type == table.schema().find_field("id").field_type
    assert "price" in unchanged.column_names


def test_errors_carry_glue_codes(glue: Any, corner: IsolatedLake, database: str) -> None:
    assert (
        error_code(glue.get_table, DatabaseName=database, Name="absent")
        == "EntityNotFoundException"
    )
    assert error_code(glue.get_tables, DatabaseName="no_such_db") == "EntityNotFoundException"
    bad = {"Name": "bad", "Parameters": {"table_type": "ICEBERG"},
           "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "uniontype<int>"}]}}  # fmt: skip
    with pytest.raises(ClientError) as caught:
        glue.create_table(DatabaseName=database, TableInput=bad)
    assert caught.value.response["Error"]["Code"] == "InvalidInputException"
    assert "column x" in caught.value.response["Error"]["Message"]
    assert not corner.catalog.table_exists((database, "bad"))
    corner.ingest(ORDERS, "kept")
    assert error_code(glue.create_table, DatabaseName=database, TableInput={
        "Name": "KEPT", "Parameters": {"table_type": "ICEBERG"},
        "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "int"}]}}) == "AlreadyExistsException"  # fmt: skip
    result = glue.batch_delete_table(DatabaseName=database, TablesToDelete=["kept", "absent"])
    assert [(e["TableName"], e["ErrorDetail"]["ErrorCode"]) for e in result["Errors"]] == [
        ("absent", "EntityNotFoundException")]  # fmt: skip
    assert not corner.catalog.table_exists((database, "kept"))


def test_a_hive_parquet_table_is_read_in_place(
    glue: Any, corner: IsolatedLake, database: str
) -> None:
    prefix = f"{corner.prefix}raw_sales"
    location = f"s3://{corner.bucket}/{prefix}/"
    for day, rows in (("2024-01-01", ORDERS.slice(0, 2)), ("2024-01-02", ORDERS.slice(2))):
        buffer = io.BytesIO()
        pq.write_table(rows.select(["id", "customer", "amount"]), buffer)
        corner.s3.put_object(corner.bucket, f"{prefix}/day={day}/part-0.parquet",
                             io.BytesIO(buffer.getvalue()), buffer.tell())  # fmt: skip
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "raw_sales", "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": "day", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "customer", "Type": "string"},
                        {"Name": "amount", "Type": "decimal(10,2)"}],
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "SerdeInfo": {"SerializationLibrary":
                          "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})  # fmt: skip
    added = glue.batch_create_partition(DatabaseName=database, TableName="raw_sales", PartitionInputList=[
        {"Values": [day], "StorageDescriptor": {"Location": f"{location}day={day}/"}}
        for day in ("2024-01-01", "2024-01-02")])  # fmt: skip
    assert added["Errors"] == []
    table = glue.get_table(DatabaseName=database, Name="raw_sales")["Table"]
    assert table["Parameters"]["classification"] == "parquet"
    assert table["StorageDescriptor"]["Location"].rstrip("/") == location.rstrip("/")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["day"]
    assert "table_type" not in table["Parameters"]
    settings = corner.client.settings
    assert trino_catalog_of(settings, database, "raw_sales") == "hive"
    total = corner.client.sql(f"SELECT day, sum(amount) AS total FROM hive.{database}.raw_sales "
                            "GROUP BY day ORDER BY day", engine="trino")  # fmt: skip
    assert total.to_pylist() == [{"day": "2024-01-01", "total": Decimal("13.75")},
                                 {"day": "2024-01-02", "total": Decimal("7.00")}]  # fmt: skip
    parts = glue.get_partitions(DatabaseName=database, TableName="raw_sales",
                                Expression="day > '2024-01-01'")["Partitions"]  # fmt: skip
    assert [p["Values"] for p in parts] == [["2024-01-02"]]
    assert parts[0]["StorageDescriptor"]["Location"].rstrip("/") == f"{location}day=2024-01-02"
    names = [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]]
    assert "raw_sales" in names
    glue.delete_table(DatabaseName=database, Name="raw_sales")
    assert trino_catalog_of(settings, database, "raw_sales") is None
    kept = [
        o.object_name
        for o in corner.s3.list_objects(corner.bucket, prefix=f"{prefix}/", recursive=True)
    ]
    assert len(kept) == 2  # Glue's DeleteTable leaves the files


def test_aws_cli_get_tables(stack: Settings, corner: IsolatedLake, database: str) -> None:
    corner.ingest(ORDERS, "cli_orders")
    env = environment(stack)
    done = subprocess.run(["aws", "glue", "get-tables", "--database-name", database, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    tables = json.loads(done.stdout)["TableList"]
    assert [(t["Name"], t["Parameters"]["table_type"]) for t in tables] == [
        ("cli_orders", "ICEBERG")
    ]


def test_awswrangler_catalog_and_to_parquet(
    stack: Settings, corner: IsolatedLake, database: str
) -> None:
    path = f"{corner.s3_uri}wr_sales/"
    script = f"""
        import json
        import awswrangler as wr
        import pandas as pd
        df = pd.DataFrame({{"id": [1, 2], "city": ["Oslo", "Rome"], "amount": [1.5, 2.5]}})
        wr.s3.to_parquet(df, {path!r}, dataset=True, database={database!r}, table="wr_sales")
        wr.s3.to_parquet(df.assign(id=[3, 4]), {path!r}, dataset=True, mode="append",
                         database={database!r}, table="wr_sales")
        print(json.dumps({{
            "databases": wr.catalog.databases(limit=1000)["Database"].tolist(),
            "tables": wr.catalog.tables(database={database!r})["Table"].tolist(),
            "types": wr.catalog.get_table_types(database={database!r}, table="wr_sales"),
        }}))
    """
    answer = json.loads(run_python(script, environment(stack), python=wrangler_python(stack)))
    assert database in answer["databases"]
    assert "wr_sales" in answer["tables"]
    assert answer["types"] == {"id": "bigint", "city": "string", "amount": "double"}
    rows = corner.client.sql(
        f"SELECT id, city FROM hive.{database}.wr_sales ORDER BY id", engine="trino"
    )
    assert rows.column("id").to_pylist() == [1, 2, 3, 4]
