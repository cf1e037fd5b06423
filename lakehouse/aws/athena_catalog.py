"""Athena's catalog calls: ListDataCatalogs, GetDataCatalog, ListDatabases,
GetDatabase, ListTableMetadata and GetTableMetadata.

``AwsDataCatalog`` (any case) is the lake. Databases and tables are read through
Trino's ``information_schema`` as the caller's principal, so with governance on a
principal lists only what Trino's rules let it see, and Iceberg tables (the lake's
catalog) and Glue's Hive-style tables (Trino's ``hive`` catalog, when it runs) are
answered alike, with Glue's type names.
"""

from __future__ import annotations

import re
from typing import Any

from lakehouse.aws.errors import AwsError
from lakehouse.aws.registry import Call, operation
from lakehouse.errors import LakehouseError

CATALOG = "AwsDataCatalog"
HIVE_CATALOG = "hive"
HIDDEN_SCHEMAS = ("information_schema", "system")


def invalid(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message, AthenaErrorCode="INVALID_INPUT")


def _check_catalog(name: str) -> None:
    if name.lower() != CATALOG.lower():
        raise AwsError("MetadataException", f"Catalog {name} was not found.")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rows(call: Call, query: str) -> list[dict[str, Any]]:
    """``query`` on Trino as the caller (native SQL); [] when the catalog is absent."""
    try:
        return call.lake().sql(query, engine="trino", native=True).to_pylist()
    except LakehouseError as exc:
        if "CATALOG_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            return []
        raise


def _catalogs(call: Call) -> list[str]:
    """The lake's Trino catalog, then ``hive`` when Trino has it (Glue's Hive tables)."""
    found = [row["Catalog"] for row in _rows(call, "SHOW CATALOGS")]  # those the caller may see
    return [call.settings.catalog_name] + ([HIVE_CATALOG] if HIVE_CATALOG in found else [])


def _page(items: list[Any], params: dict[str, Any], largest: int) -> tuple[list[Any], str | None]:
    from lakehouse.aws.athena import offset_page

    return offset_page(items, params, default=largest, largest=largest)


@operation("athena", "ListDataCatalogs")
def list_data_catalogs(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "DataCatalogsSummary": [
            {"CatalogName": CATALOG, "Type": "GLUE", "Status": "CREATE_COMPLETE"}
        ]
    }


@operation("athena", "GetDataCatalog")
def get_data_catalog(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _check_catalog(params["Name"])
    return {"DataCatalog": {"Name": CATALOG, "Type": "GLUE", "Status": "CREATE_COMPLETE",
                            "Description": "The lake: lakehouse's Iceberg REST catalog (and "
                            "Glue's Hive-style tables)",
                            "Parameters": {"catalog-id": call.account_id}}}  # fmt: skip


def database_names(call: Call) -> list[str]:
    names: set[str] = set()
    for catalog in _catalogs(call):
        rows = _rows(call, f'SELECT schema_name FROM "{catalog}".information_schema.schemata')
        names |= {row["schema_name"] for row in rows if row["schema_name"] not in HIDDEN_SCHEMAS}
    return sorted(names)


@operation("athena", "ListDatabases")
def list_databases(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _check_catalog(params["CatalogName"])
    chosen, token = _page(database_names(call), params, 50)
    return {"DatabaseList": [{"Name": name} for name in chosen], "NextToken": token}


@operation("athena", "GetDatabase")
def get_database(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _check_catalog(params["CatalogName"])
    name = params["DatabaseName"].lower()
    if name not in database_names(call):
        raise AwsError("MetadataException", f"Database {params['DatabaseName']} was not found.")
    return {"Database": {"Name": name}}


def table_metadata(call: Call, database: str, table: str | None = None) -> list[dict[str, Any]]:
    """Athena's TableMetadata of ``database``'s tables (only ``table`` when given)."""
    found: dict[str, dict[str, Any]] = {}
    for catalog in _catalogs(call):
        where = f"table_schema = {_literal(database)}"
        if table is not None:
            where += f" AND table_name = {_literal(table)}"
        query = (f'SELECT table_name, column_name, data_type FROM "{catalog}".information_schema.'
                 f"columns WHERE {where} ORDER BY table_name, ordinal_position")  # fmt: skip
        for row in _rows(call, query):
            entry = found.setdefault(row["table_name"], _empty(row["table_name"], catalog))
            entry["Columns"].append(
                {"Name": row["column_name"], "Type": _glue_type(row["data_type"])}
            )
    for name, entry in found.items():
        if entry["Parameters"].get("table_type") != "ICEBERG":  # Hive: its partition keys apart
            _split_partition_keys(call, database, name, entry)
    return [found[name] for name in sorted(found)]


def _split_partition_keys(call: Call, database: str, name: str, entry: dict[str, Any]) -> None:
    """Move a Hive table's partition columns (SHOW COLUMNS' Extra) to PartitionKeys."""
    shown = _rows(call, f'SHOW COLUMNS FROM "{HIVE_CATALOG}"."{database}"."{name}"')
    keys = {row["Column"] for row in shown if "partition key" in (row.get("Extra") or "")}
    entry["PartitionKeys"] = [c for c in entry["Columns"] if c["Name"] in keys]
    entry["Columns"] = [c for c in entry["Columns"] if c["Name"] not in keys]


def _empty(name: str, catalog: str) -> dict[str, Any]:
    parameters = {"table_type": "ICEBERG"} if catalog != HIVE_CATALOG else {"EXTERNAL": "TRUE"}
    return {"Name": name, "TableType": "EXTERNAL_TABLE", "Columns": [], "PartitionKeys": [],
            "Parameters": parameters}  # fmt: skip


def _glue_type(trino_type: str) -> str:
    try:
        from lakehouse.aws.glue_types import glue_type_of_trino
    except ImportError:  # Glue's module absent: Trino's own spelling, lower case
        return trino_type.lower()
    return glue_type_of_trino(trino_type)


@operation("athena", "ListTableMetadata")
def list_table_metadata(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _check_catalog(params["CatalogName"])
    pattern = _name_pattern(params.get("Expression"))  # checked before the catalog is read
    tables = table_metadata(call, params["DatabaseName"].lower())
    if pattern is not None:
        tables = [t for t in tables if pattern.fullmatch(t["Name"])]
    chosen, token = _page(tables, params, 50)
    return {"TableMetadataList": chosen, "NextToken": token}


def _name_pattern(expression: str | None) -> re.Pattern[str] | None:
    """ListTableMetadata's Expression as a pattern (``*`` is any run of characters);
    InvalidRequestException when it is not a valid regular expression."""
    if not expression:
        return None
    try:
        return re.compile(re.sub(r"(?<!\.)\*", ".*", expression), re.IGNORECASE)
    except re.error as exc:
        raise AwsError("InvalidRequestException", f"Expression '{expression}' is not a valid "
                       f"pattern: {exc}.", AthenaErrorCode="INVALID_INPUT") from exc  # fmt: skip


@operation("athena", "GetTableMetadata")
def get_table_metadata(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _check_catalog(params["CatalogName"])
    database, table = params["DatabaseName"].lower(), params["TableName"].lower()
    found = table_metadata(call, database, table)
    if not found:
        raise AwsError("MetadataException", f"Table {params['TableName']} was not found "
                       f"in database {params['DatabaseName']}.")  # fmt: skip
    return {"TableMetadata": found[0]}
