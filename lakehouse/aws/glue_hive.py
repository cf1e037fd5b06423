"""Glue's Hive-style tables: Parquet, ORC, CSV or JSON files at an S3 location of the
lake, as awswrangler's ``to_parquet(dataset=True, database=, table=)`` registers them.

Design: Trino's ``hive`` catalog (``services/trino/catalog/hive.properties``) keeps
these tables in Trino's file metastore on the lake's S3 (``s3://<warehouse
bucket>/_hive_metastore``). A Glue CreateTable becomes ``CREATE TABLE hive.<db>.<t>
... WITH (external_location=..., format=...)``: the metastore then holds the columns,
partition keys, location, format and the Glue Parameters (as Trino's
``extra_properties``), and Trino reads the files in place, so Athena's SQL (run on
Trino) queries them with nothing copied. Partitions are registered with Trino's
``system.register_partition``. The Glue database of a Hive table is the lake's
namespace of that name (the one source of databases); Trino's hive schema of that
name is made on first use. A table is Iceberg or Hive, never both:
:func:`trino_catalog_of` says which Trino catalog holds a Glue table.

With governance on, Trino's rules give the hive catalog to admins only (a governed
principal is refused, never served ungoverned files).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from lakehouse.aws import glue_hive_store as store
from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue_hive_formats import (
    SERDE_PROPERTIES,
    SKIP_HEADER,
    format_of,
    storage_of,
    trino_properties,
)
from lakehouse.aws.glue_types import trino_type
from lakehouse.aws.registry import Call
from lakehouse.config import Settings
from lakehouse.errors import QueryError

HIVE_CATALOG = "hive"
# Parameters Trino's Hive connector writes for itself (not Glue's).
TRINO_OWN = {"trino_version", "trino_query_id", "presto_version", "presto_query_id"}
# Parameters Trino sets from its own table properties: never passed as extra ones.
MANAGED = {"EXTERNAL", "transactional", "auto.purge", "comment", SKIP_HEADER, *TRINO_OWN,
           *(name for names in SERDE_PROPERTIES.values() for name in names)}  # fmt: skip


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(database: str, table: str) -> str:
    return f"{HIVE_CATALOG}.{ident(database)}.{ident(table)}"


def run(settings: Settings, query: str) -> pa.Table:
    """``query`` on Trino as lakehouse's own admin user."""
    from lakehouse.engines.trino import TrinoEngine

    engine = TrinoEngine(settings)
    return engine.sql(query, principal=engine.admin)


def hive_tables(settings: Settings, database: str) -> list[str]:
    """The Hive-style tables of ``database`` (Trino's hive schema of that name)."""
    return store.table_names(settings, database)


def trino_catalog_of(settings: Settings, database: str, table: str) -> str | None:
    """The Trino catalog that holds Glue's ``database.table``: the lake's Iceberg
    catalog (``settings.catalog_name``) for an Iceberg table, ``"hive"`` for a
    Hive-style table, None when Glue has no such table. Names match as Glue's do
    (any case). Athena's ``awsdatacatalog.db.t`` resolves through this."""
    from lakehouse.lake.catalog import open_catalog

    lake = open_catalog(settings)
    for name in dict.fromkeys([table, table.lower()]):
        if lake.table_exists((database, name)):
            return settings.catalog_name
    if store.table(settings, database.lower(), table.lower()) is not None:
        return HIVE_CATALOG
    return None


def table_names(call: Call, database: str) -> list[str]:
    return hive_tables(call.settings, database)


def get_table(call: Call, database: str, name: str) -> dict[str, Any] | None:
    """Glue's Table for a Hive-style table, None when there is none."""
    document = store.table(call.settings, database, name)
    if document is None:
        return None
    stored = document.get("parameters", {})
    serde = {n for names in SERDE_PROPERTIES.values() for n in names}
    parameters = {k: v for k, v in stored.items() if k not in TRINO_OWN | serde}
    location = document.get("externalLocation")
    descriptor = {"Columns": [_column(c) for c in document.get("dataColumns", [])],
                  "Location": location, "Compressed": False, "NumberOfBuckets": 0,
                  "StoredAsSubDirectories": False,
                  **storage_of(str(document.get("storageFormat", "")),
                               {**stored, **document.get("serdeParameters", {})})}  # fmt: skip
    return {
        "Name": name, "DatabaseName": database, "Description": parameters.pop("comment", None),
        "Owner": document.get("owner"), "TableType": document.get("tableType", "EXTERNAL_TABLE"),
        "Parameters": parameters, "StorageDescriptor": descriptor,
        "PartitionKeys": [_column(c) for c in document.get("partitionColumns", [])],
        "CatalogId": call.account_id, "Retention": 0, "IsRegisteredWithLakeFormation": False,
        "CreatedBy": "lakehouse",
    }  # fmt: skip


def _column(column: dict[str, Any]) -> dict[str, Any]:
    return {"Name": column["name"], "Type": column["type"], "Comment": column.get("comment")}


def created_with(statement: str) -> dict[str, Any]:
    """The WITH properties of Trino's SHOW CREATE TABLE (strings, numbers, arrays)."""
    created = sqlglot.parse_one(statement, read="trino")
    found: dict[str, Any] = {}
    for prop in created.find_all(exp.Property, exp.FileFormatProperty, exp.PartitionedByProperty):
        if isinstance(prop, exp.FileFormatProperty):
            name, value = "format", prop.this
        elif isinstance(prop, exp.PartitionedByProperty):
            name, value = "partitioned_by", prop.this
        else:
            name, value = prop.name, prop.args.get("value")
        if isinstance(value, exp.Array):
            found[name] = [v.this for v in value.expressions]
        elif isinstance(value, exp.Literal):
            found[name] = value.this if value.is_string else int(value.this)
    return found


def create_table(call: Call, database: str, name: str, table_input: dict[str, Any]) -> None:
    """Register a Hive-style table (CreateTable without Iceberg parameters)."""
    statement = create_statement(database, name, table_input)
    ensure_schema(call.settings, database)
    run(call.settings, statement)


def create_statement(database: str, name: str, table_input: dict[str, Any]) -> str:
    """Trino's CREATE TABLE for a Glue TableInput (external: the files stay where they are).

    Raises AwsError (InvalidInputException): a view, no location, no columns, an
    unknown format."""
    if table_input.get("TableType") == "VIRTUAL_VIEW":
        raise AwsError("InvalidInputException",
                       "lakehouse's Glue does not store views: create the view with Athena "
                       "(CREATE VIEW), which runs it on Trino.")  # fmt: skip
    descriptor = table_input.get("StorageDescriptor") or {}
    location = descriptor.get("Location")
    if not location:
        raise AwsError("InvalidInputException",
                       "A table that is not Iceberg needs StorageDescriptor.Location (the S3 "
                       "prefix of its files); for an Iceberg table set Parameters "
                       "table_type=ICEBERG.")  # fmt: skip
    keys = table_input.get("PartitionKeys") or []
    declared = [*(descriptor.get("Columns") or []), *keys]
    if not declared:
        raise AwsError(
            "InvalidInputException", "The table needs columns (StorageDescriptor.Columns)."
        )
    properties: dict[str, Any] = trino_properties(format_of(table_input), table_input)
    properties["external_location"] = location
    if keys:
        properties["partitioned_by"] = [k["Name"] for k in keys]
    extra = {k: v for k, v in (table_input.get("Parameters") or {}).items() if k not in MANAGED}
    columns = ",\n  ".join(_column_sql(c) for c in declared)
    comment = table_input.get("Description")
    return (f"CREATE TABLE {qualified(database, name)} (\n  {columns}\n)"
            + (f"\nCOMMENT {literal(comment)}" if comment else "")
            + f"\nWITH ({_with(properties, extra)})")  # fmt: skip


def _column_sql(column: dict[str, Any]) -> str:
    sql = f"{ident(column['Name'])} {trino_type(column['Type'], column['Name'])}"
    return sql + (f" COMMENT {literal(column['Comment'])}" if column.get("Comment") else "")


def _with(properties: dict[str, Any], extra: dict[str, str]) -> str:
    parts = []
    for key, value in properties.items():
        if isinstance(value, list):
            parts.append(f"{key} = ARRAY[{', '.join(literal(v) for v in value)}]")
        elif isinstance(value, int):
            parts.append(f"{key} = {value}")
        else:
            parts.append(f"{key} = {literal(str(value))}")
    if extra:
        keys = ", ".join(literal(k) for k in extra)
        values = ", ".join(literal(str(v)) for v in extra.values())
        parts.append(f"extra_properties = MAP(ARRAY[{keys}], ARRAY[{values}])")
    return ", ".join(parts)


def ensure_schema(settings: Settings, database: str) -> None:
    run(settings, f"CREATE SCHEMA IF NOT EXISTS {HIVE_CATALOG}.{ident(database)}")


def update_table(call: Call, database: str, name: str, table_input: dict[str, Any]) -> None:
    """Replace a Hive-style table's definition (Glue's UpdateTable): the metastore entry
    is made again from the input, its registered partitions kept; the files stay.
    EntityNotFoundException when there is no such table."""
    from lakehouse.aws.glue_hive_partitions import register, registered

    if name not in table_names(call, database):
        raise AwsError("EntityNotFoundException", f"Table {name} not found.")
    statement = create_statement(database, name, {**table_input, "Name": name})
    old = run(call.settings, f"SHOW CREATE TABLE {qualified(database, name)}").column(0)[0].as_py()
    kept = registered(call.settings, database, name)
    run(call.settings, f"DROP TABLE {qualified(database, name)}")
    try:
        run(call.settings, statement)
    except QueryError:
        run(call.settings, old)  # the old definition back, then the refusal
        register(call.settings, database, name, kept)
        raise
    register(call.settings, database, name, kept)


def drop_table(call: Call, database: str, name: str) -> bool:
    """Remove a Hive-style table from the metastore (its files stay); False if absent."""
    if name not in table_names(call, database):
        return False
    run(call.settings, f"DROP TABLE {qualified(database, name)}")
    return True


def drop_database(call: Call, database: str) -> None:
    """Remove every Hive-style table of ``database`` and Trino's schema of that name."""
    for name in table_names(call, database):
        run(call.settings, f"DROP TABLE {qualified(database, name)}")
    run(call.settings, f"DROP SCHEMA IF EXISTS {HIVE_CATALOG}.{ident(database)}")


def partitions(call: Call, database: str, name: str, expression: str | None,
               with_columns: bool) -> list[dict[str, Any]]:  # fmt: skip
    from lakehouse.aws.glue_hive_partitions import glue_partitions

    return glue_partitions(call, database, name, expression, with_columns)
