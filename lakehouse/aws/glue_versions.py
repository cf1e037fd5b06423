"""Glue's table versions of an Iceberg table: one per metadata file the table still
lists (its metadata log, then the current file), newest first, as Glue lists them.

A version's VersionId is the metadata file's sequence number; its Table is that
metadata file read back (its schema, properties and location then). The catalog keeps
``write.metadata.previous-versions-max`` files (Iceberg's default 100): older
versions are gone, as Glue's are when it archives no more. A Hive-style table has one
version, the current one.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table

from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import find_database, page
from lakehouse.aws.glue_tables import find_table, load_iceberg, table_version, version_id
from lakehouse.aws.registry import Call, operation


def metadata_files(table: Table) -> list[str]:
    """The table's metadata files, newest (current) first."""
    older = [entry.metadata_file for entry in table.metadata.metadata_log]
    return [table.metadata_location, *reversed(older)]


def _version(call: Call, database: str, name: str, table: Table, location: str
             ) -> dict[str, Any]:  # fmt: skip
    if location == table.metadata_location:
        meta = table.metadata
    else:
        meta = FromInputFile.table_metadata(table.io.new_input(location))
    return {"Table": table_version(call, database, name, meta, location),
            "VersionId": version_id(location)}  # fmt: skip


def _table(call: Call, params: dict[str, Any]) -> tuple[str, str, Table | None]:
    database = find_database(call, params["DatabaseName"])
    name = params["TableName"]
    table = load_iceberg(call, database, name) or load_iceberg(call, database, name.lower())
    return database, name, table


@operation("glue", "GetTableVersions")
def get_table_versions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name, table = _table(call, params)
    if table is None:
        current = find_table(call, database, name)  # Hive-style: its one version
        return {"TableVersions": [{"Table": current, "VersionId": current.get("VersionId", "0")}]}
    locations, token = page(metadata_files(table), params)
    versions = [_version(call, database, name, table, loc) for loc in locations]
    return {"TableVersions": versions, "NextToken": token}


@operation("glue", "GetTableVersion")
def get_table_version(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name, table = _table(call, params)
    wanted = params.get("VersionId")
    if table is None:
        current = find_table(call, database, name)
        if wanted not in (None, current.get("VersionId", "0")):
            raise AwsError("EntityNotFoundException", f"Version {wanted} of {name} not found.")
        return {"TableVersion": {"Table": current, "VersionId": current.get("VersionId", "0")}}
    for location in metadata_files(table):
        if wanted is None or version_id(location) == wanted:
            return {"TableVersion": _version(call, database, name, table, location)}
    raise AwsError("EntityNotFoundException", f"Version {wanted} of {name} not found.")
