"""Athena's SQL as Trino runs it (lakehouse.aws.athena_sql): pure text, no server."""

from __future__ import annotations

import pytest

from lakehouse.aws.athena_sql import (
    AthenaSqlError,
    iceberg_create,
    route_tables,
    translate,
    with_lake_catalog,
)


def test_awsdatacatalog_in_any_case_is_the_lake_and_strings_stay() -> None:
    text = "SELECT 'awsdatacatalog.x' FROM \"AwsDataCatalog\".db.t JOIN AWSDATACATALOG.db.u ON 1=1"
    assert with_lake_catalog(text, "lake") == (
        'SELECT \'awsdatacatalog.x\' FROM "lake".db.t JOIN "lake".db.u ON 1=1'
    )


def test_commands_keep_their_text_and_get_the_catalog() -> None:
    assert translate("SHOW TABLES IN awsdatacatalog.db", "lake").sql == 'SHOW TABLES IN "lake".db'
    assert translate("show tables", "lake").kind == "DDL"


def test_select_has_a_header_and_writes_do_not() -> None:
    select = translate("WITH a AS (SELECT 1) SELECT * FROM a;", "lake")
    assert (select.kind, select.substatement, select.header) == ("DML", "SELECT", True)
    assert select.sql == "WITH a AS (SELECT 1) SELECT * FROM a"
    insert = translate("INSERT INTO t VALUES (1)", "lake")
    assert (insert.kind, insert.substatement, insert.header) == ("DML", "INSERT", False)
    merge = translate("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "lake")
    assert merge.sql.startswith("MERGE INTO t") and merge.substatement == "MERGE_INTO"


def test_optimize_and_vacuum() -> None:
    optimize = translate(
        "OPTIMIZE awsdatacatalog.db.t REWRITE DATA USING BIN_PACK WHERE d > 1", "lake"
    )
    assert optimize.sql == 'ALTER TABLE "lake".db.t EXECUTE optimize WHERE d > 1'
    assert translate("optimize t rewrite data using bin_pack", "lake").sql == (
        "ALTER TABLE t EXECUTE optimize"
    )
    vacuum = translate("VACUUM db.t", "lake")
    assert vacuum.vacuum_table == "db.t" and vacuum.sql == ""


def test_iceberg_create_table_becomes_trinos_with_clause() -> None:
    sql, table, extra = iceberg_create(
        "CREATE TABLE db.t (id int, name string, ts timestamp, tags array<string>, "
        "pos struct<x:double,at:timestamp>, price decimal(10,2)) "
        "PARTITIONED BY (bucket(16, id), day(ts), name) LOCATION 's3://b/p/' "
        "TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet', "
        "'vacuum_max_snapshot_age_seconds'='60')"
    )
    assert sql == (
        "CREATE TABLE db.t (id INTEGER, name VARCHAR, ts TIMESTAMP(6), tags ARRAY(VARCHAR), "
        "pos ROW(x DOUBLE, at TIMESTAMP(6)), price DECIMAL(10, 2)) WITH (location = 's3://b/p/', "
        "format = 'PARQUET', partitioning = ARRAY['bucket(id, 16)', 'day(ts)', 'name'])"
    )
    assert (table, extra) == ("db.t", {"vacuum_max_snapshot_age_seconds": "60"})


def test_what_cannot_run_says_why() -> None:
    with pytest.raises(AthenaSqlError, match="Iceberg tables only"):
        translate("CREATE TABLE t (a int) TBLPROPERTIES ('table_type'='HIVE')", "lake")
    with pytest.raises(AthenaSqlError, match="Glue's CreateTable"):
        translate("CREATE EXTERNAL TABLE t (a int) LOCATION 's3://b/x'", "lake")
    with pytest.raises(AthenaSqlError, match="Only one sql statement"):
        translate("SELECT 1; SELECT 2", "lake")
    with pytest.raises(AthenaSqlError, match="empty"):
        translate("  ; ", "lake")
    with pytest.raises(AthenaSqlError, match="file format"):
        iceberg_create(
            "CREATE TABLE t (a int) TBLPROPERTIES ('table_type'='ICEBERG', 'format'='json')"
        )


def test_hive_tables_are_routed_to_their_catalog_only() -> None:
    def owner(database: str, table: str) -> str | None:
        return {"h": "hive", "t": "lake"}.get(table)

    text = 'WITH h2 AS (SELECT 1) SELECT * FROM h JOIN db.h ON 1=1 JOIN "lake".db.h ON 1=1, t, h2'
    assert route_tables(text, "mydb", "lake", owner) == (
        'WITH h2 AS (SELECT 1) SELECT * FROM "hive"."mydb".h JOIN "hive".db.h ON 1=1 '
        'JOIN "hive".db.h ON 1=1, t, h2'
    )
    assert route_tables("SELECT * FROM tpch.tiny.h", "mydb", "lake", owner) == (
        "SELECT * FROM tpch.tiny.h"
    )


def test_athena_ctas_becomes_an_iceberg_ctas() -> None:
    text = (
        'CREATE TABLE "db"."temp_table_1"\nWITH(\n    external_location = \'s3://r/temp_table_1\',\n'
        "    partitioned_by = ARRAY['day'],\n    write_compression = 'SNAPPY',\n"
        "    format = 'parquet')\nAS SELECT 1 AS one, 'x' AS day"
    )
    statement = translate(text, "lake")
    assert statement.sql == (
        'CREATE TABLE "db"."temp_table_1" WITH (location = \'s3://r/temp_table_1\', '
        "partitioning = ARRAY['day'], format = 'PARQUET')\nAS SELECT 1 AS one, 'x' AS day"
    )
    assert (statement.kind, statement.substatement) == ("DDL", "CREATE_TABLE_AS_SELECT")
    assert statement.ctas_table == '"db"."temp_table_1"'
    with pytest.raises(AthenaSqlError, match="bucketed_by"):
        translate(
            "CREATE TABLE t WITH (bucketed_by = ARRAY['a'], bucket_count = 4) AS SELECT 1 a", "lake"
        )
    with pytest.raises(AthenaSqlError, match="TEXTFILE"):
        translate("CREATE TABLE t WITH (format = 'TEXTFILE') AS SELECT 1 a", "lake")
