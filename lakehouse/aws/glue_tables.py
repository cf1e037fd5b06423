"""Glue's table operations. Iceberg tables live in the lake's REST catalog and are
shown as Glue shows Iceberg tables (``TableType=EXTERNAL_TABLE``,
``Parameters.table_type=ICEBERG``, ``metadata_location``, no partition keys: Iceberg
partitions are hidden); every other table is a Hive-style table
(:mod:`lakehouse.aws.glue_hive`).

Operations: GetTables, GetTable, CreateTable, UpdateTable, DeleteTable,
BatchDeleteTable (Iceberg and Hive), GetTableVersions and GetTableVersion
(:mod:`lakehouse.aws.glue_versions`), GetPartitions
(:mod:`lakehouse.aws.glue_partitions`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import NestedField

from lakehouse.aws import glue_hive
from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import catalog, find_database, glue_name, name_matcher, not_found, page
from lakehouse.aws.glue_evolve import DERIVED, evolve
from lakehouse.aws.glue_types import glue_type, iceberg_type
from lakehouse.aws.registry import Call, operation

ICEBERG = "ICEBERG"
VERSION_PREFIX = re.compile(r"(\d+)-")


def is_iceberg_input(params: dict[str, Any]) -> bool:
    """Whether a Create/UpdateTable asks for an Iceberg table."""
    table_input = params.get("TableInput") or {}
    table_type = (table_input.get("Parameters") or {}).get("table_type", "")
    return table_type.upper() == ICEBERG or "IcebergInput" in (
        params.get("OpenTableFormatInput") or {}
    )


def version_id(metadata_location: str) -> str:
    """Glue's VersionId of an Iceberg metadata file: its sequence number
    (``00003-<uuid>.metadata.json`` is version 3; the first is 0)."""
    found = VERSION_PREFIX.match(metadata_location.rsplit("/", 1)[-1])
    return str(int(found.group(1))) if found else "0"


def columns_of(schema: Schema) -> list[dict[str, Any]]:
    """Glue's columns of an Iceberg schema, each with Iceberg's field parameters."""
    return [{
        "Name": f.name, "Type": glue_type(f.field_type), "Comment": f.doc,
        "Parameters": {"iceberg.field.id": str(f.field_id),
                       "iceberg.field.optional": str(not f.required).lower(),
                       "iceberg.field.current": "true",
                       "iceberg.field.type": str(f.field_type)},
    } for f in schema.fields]  # fmt: skip


def iceberg_table(call: Call, database: str, name: str, table: Table) -> dict[str, Any]:
    """Glue's Table for an Iceberg table (as of its current metadata file)."""
    meta = table.metadata
    return table_version(call, database, name, meta, table.metadata_location)


def table_version(call: Call, database: str, name: str, meta: Any, location: str
                  ) -> dict[str, Any]:  # fmt: skip
    """Glue's Table for one Iceberg metadata version (``meta`` read from ``location``)."""
    parameters = {k: v for k, v in meta.properties.items() if k != "comment"}
    parameters |= {"table_type": ICEBERG, "metadata_location": location}
    if meta.metadata_log:
        parameters["previous_metadata_location"] = meta.metadata_log[-1].metadata_file
    created = min([e.timestamp_ms for e in meta.metadata_log] + [meta.last_updated_ms])
    return {
        "Name": name, "DatabaseName": database, "Description": meta.properties.get("comment"),
        "CreateTime": _time(created), "UpdateTime": _time(meta.last_updated_ms),
        "Retention": 0, "TableType": "EXTERNAL_TABLE", "Parameters": parameters,
        "StorageDescriptor": {"Columns": columns_of(meta.schema()), "Location": meta.location,
                              "Compressed": False, "NumberOfBuckets": 0, "SerdeInfo": {},
                              "StoredAsSubDirectories": False},
        "PartitionKeys": [], "CatalogId": call.account_id, "VersionId": version_id(location),
        "IsRegisteredWithLakeFormation": False, "CreatedBy": "lakehouse",
    }  # fmt: skip


def _time(millis: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC)


def load_iceberg(call: Call, database: str, name: str) -> Table | None:
    """The Iceberg table, or None when the catalog has none of that name."""
    try:
        return catalog(call).load_table((database, name))
    except NoSuchTableError:
        return None


def find_table(call: Call, database: str, name: str) -> dict[str, Any]:
    """Glue's Table named ``name`` (any case) in ``database``; EntityNotFoundException."""
    for candidate in dict.fromkeys([name, name.lower()]):
        table = load_iceberg(call, database, candidate)
        if table is not None:
            return iceberg_table(call, database, candidate, table)
    found = glue_hive.get_table(call, database, name.lower())
    if found is None:
        raise not_found(f"Table {name}")
    return found


def table_names(call: Call, database: str) -> list[str]:
    """Every table of ``database``, Iceberg and Hive, sorted by name."""
    iceberg = [ident[-1] for ident in catalog(call).list_tables(database)]
    return sorted(set(iceberg) | set(glue_hive.table_names(call, database)))


@operation("glue", "GetTables")
def get_tables(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database = find_database(call, params["DatabaseName"])
    matcher = name_matcher(params.get("Expression"))
    names = [n for n in table_names(call, database) if not matcher or matcher.fullmatch(n)]
    chosen, token = page(names, params)
    found = []
    for name in chosen:
        try:
            found.append(find_table(call, database, name))
        except AwsError as exc:  # dropped since the listing: Glue lists what exists
            if exc.code != "EntityNotFoundException":
                raise
    return {"TableList": found, "NextToken": token}


@operation("glue", "GetTable")
def get_table(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database = find_database(call, params["DatabaseName"])
    return {"Table": find_table(call, database, params["Name"])}


@operation("glue", "CreateTable")
def create_table(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database = find_database(call, params["DatabaseName"])
    table_input = params["TableInput"]
    name = glue_name(table_input["Name"], "Table")
    if name in [n.lower() for n in table_names(call, database)]:
        raise AwsError("AlreadyExistsException", "Table already exists.")
    if not is_iceberg_input(params):
        glue_hive.create_table(call, database, name, table_input)
        return {}
    parameters = table_input.get("Parameters") or {}
    try:
        if parameters.get("metadata_location"):  # Iceberg's register-table, as Glue allows
            catalog(call).register_table((database, name), parameters["metadata_location"])
        else:
            _create_iceberg(call, database, name, table_input)
    except TableAlreadyExistsError as exc:
        raise AwsError("AlreadyExistsException", "Table already exists.") from exc
    return {}


def _create_iceberg(call: Call, database: str, name: str, table_input: dict[str, Any]) -> None:
    descriptor = table_input.get("StorageDescriptor") or {}
    keys = table_input.get("PartitionKeys") or []
    declared = [*(descriptor.get("Columns") or []), *keys]
    if not declared:
        raise AwsError("InvalidInputException",
                       "An Iceberg table needs columns: StorageDescriptor.Columns is empty.")  # fmt: skip
    fields = [NestedField(i, c["Name"], iceberg_type(c["Type"], c["Name"]), required=False,
                          doc=c.get("Comment")) for i, c in enumerate(declared, start=1)]  # fmt: skip
    if len({f.name.lower() for f in fields}) != len(fields):
        raise AwsError("InvalidInputException", "Column names must be unique.")
    schema = Schema(*fields)
    spec = PartitionSpec(*(
        PartitionField(schema.find_field(k["Name"]).field_id, 1000 + i, IdentityTransform(),
                       k["Name"]) for i, k in enumerate(keys)))  # fmt: skip
    properties = {k: v for k, v in (table_input.get("Parameters") or {}).items()
                  if k not in DERIVED}  # fmt: skip
    if table_input.get("Description") is not None:
        properties["comment"] = table_input["Description"]
    catalog(call).create_table((database, name), schema, location=descriptor.get("Location"),
                               partition_spec=spec, properties=properties)  # fmt: skip


@operation("glue", "UpdateTable")
def update_table(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Replaces the table's definition. On an Iceberg table: columns the input adds are
    added, columns it leaves out are dropped (their data stays in older snapshots),
    types are widened where Iceberg allows; Parameters and Description become table
    properties. VersionId, when given, must be the current version."""
    database = find_database(call, params["DatabaseName"])
    table_input = params["TableInput"]
    name = params.get("Name") or table_input["Name"]
    table = load_iceberg(call, database, name) or load_iceberg(call, database, name.lower())
    if table is None:
        glue_hive.update_table(call, database, name.lower(), table_input)
        return {}
    wanted = params.get("VersionId")
    if wanted is not None and wanted != version_id(table.metadata_location):
        raise AwsError("ConcurrentModificationException",
                       f"Table {name} is at version {version_id(table.metadata_location)}, "
                       f"not {wanted}: it changed since it was read.")  # fmt: skip
    evolve(table, table_input)
    return {}


@operation("glue", "DeleteTable")
def delete_table(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Removes the table from the catalog; its files stay on S3, as with Glue."""
    database = find_database(call, params["DatabaseName"])
    _drop(call, database, params["Name"])
    return {}


def _drop(call: Call, database: str, name: str) -> None:
    for candidate in dict.fromkeys([name, name.lower()]):
        try:
            catalog(call).drop_table((database, candidate))
            return
        except NoSuchTableError:
            continue
    if not glue_hive.drop_table(call, database, name.lower()):
        raise not_found(f"Table {name}")


@operation("glue", "BatchDeleteTable")
def batch_delete_table(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database = find_database(call, params["DatabaseName"])
    errors = []
    for name in params["TablesToDelete"]:
        try:
            _drop(call, database, name)
        except AwsError as exc:
            errors.append({"TableName": name,
                           "ErrorDetail": {"ErrorCode": exc.code, "ErrorMessage": exc.message}})  # fmt: skip
    return {"Errors": errors}


# Importing these registers their operations.
from lakehouse.aws import glue_partitions, glue_versions  # noqa: E402, F401
