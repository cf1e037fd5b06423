"""Partitions of Glue's Hive-style tables, registered in Trino's hive metastore
(``system.register_partition`` / ``unregister_partition``), as awswrangler's
``to_parquet(partition_cols=...)`` adds them with BatchCreatePartition.

A partition's location is the one it was registered with (kept in the metastore);
one registered without is ``<table location>/<key>=<value>/...`` (Hive's layout).

Operations: CreatePartition, BatchCreatePartition, GetPartition, BatchGetPartition,
DeletePartition, BatchDeletePartition (Hive-style tables only: an Iceberg table's
partitions come from its data).
"""

from __future__ import annotations

from typing import Any

from lakehouse.aws import glue_hive
from lakehouse.aws import glue_hive_store as store
from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import find_database
from lakehouse.aws.glue_hive_store import Registered
from lakehouse.aws.glue_partitions import matching
from lakehouse.aws.glue_tables import find_table, load_iceberg
from lakehouse.aws.registry import Call, operation
from lakehouse.config import Settings
from lakehouse.errors import QueryError


def keys_and_location(settings: Settings, database: str, name: str) -> tuple[list[str], str]:
    """The table's partition keys and its location."""
    document = store.table(settings, database, name) or {}
    keys = [c["name"] for c in document.get("partitionColumns", [])]
    return keys, str(document.get("externalLocation", "")).rstrip("/")


def registered(settings: Settings, database: str, name: str) -> list[Registered]:
    """Every registered partition of the table, by values."""
    return store.partitions(settings, database, name)


def register(settings: Settings, database: str, name: str, partitions: list[Registered]) -> None:
    keys, _ = keys_and_location(settings, database, name)
    for partition in partitions:
        _register(settings, database, name, keys, partition)


def _register(settings: Settings, database: str, name: str, keys: list[str],
              partition: Registered) -> None:  # fmt: skip
    literal = glue_hive.literal
    glue_hive.run(settings, (
        f"CALL {glue_hive.HIVE_CATALOG}.system.register_partition("
        f"schema_name => {literal(database)}, table_name => {literal(name)}, "
        f"partition_columns => ARRAY[{', '.join(literal(k) for k in keys)}], "
        f"partition_values => ARRAY[{', '.join(literal(v) for v in partition.values)}], "
        f"location => {literal(partition.location)})"))  # fmt: skip


def glue_partitions(call: Call, database: str, name: str, expression: str | None,
                    with_columns: bool) -> list[dict[str, Any]]:  # fmt: skip
    """Glue's Partitions of a Hive-style table, filtered by ``expression``."""
    import pyarrow as pa

    table = find_table(call, database, name)
    keys = [k["Name"] for k in table["PartitionKeys"]]
    found = registered(call.settings, database, name)
    rows = pa.table({k: [p.values[i] for p in found] for i, k in enumerate(keys)})
    result = []
    for index in matching(rows, expression) if keys else []:
        descriptor = {k: v for k, v in table["StorageDescriptor"].items() if k != "Columns"}
        descriptor["Location"] = found[index].location
        if with_columns:
            descriptor["Columns"] = table["StorageDescriptor"]["Columns"]
        result.append({"Values": list(found[index].values), "DatabaseName": database,
                       "TableName": name, "StorageDescriptor": descriptor,
                       "CatalogId": call.account_id})  # fmt: skip
    return result


def _hive_table(call: Call, params: dict[str, Any]) -> tuple[str, str]:
    database = find_database(call, params["DatabaseName"])
    name = params["TableName"].lower()
    if load_iceberg(call, database, params["TableName"]) or load_iceberg(call, database, name):
        raise AwsError("InvalidInputException",
                       f"Table {name} is an Iceberg table: its partitions come from its data "
                       "(write rows; GetPartitions lists them).")  # fmt: skip
    find_table(call, database, name)
    return database, name


def _create(call: Call, database: str, name: str, keys: list[str], location: str,
            partition_input: dict[str, Any]) -> None:  # fmt: skip
    values = tuple(partition_input["Values"])
    if len(values) != len(keys):
        raise AwsError("InvalidInputException",
                       f"The partition has {len(values)} values; table {name} has "
                       f"{len(keys)} partition keys ({', '.join(keys)}).")  # fmt: skip
    if values in {p.values for p in registered(call.settings, database, name)}:
        raise AwsError("AlreadyExistsException", "Partition already exists.")
    path = "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
    where = (partition_input.get("StorageDescriptor") or {}).get("Location") or f"{location}/{path}"
    try:
        _register(call.settings, database, name, keys, Registered(values, where))
    except QueryError as exc:
        raise AwsError("InvalidInputException", exc.reason) from exc


@operation("glue", "CreatePartition")
def create_partition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name = _hive_table(call, params)
    keys, location = keys_and_location(call.settings, database, name)
    _create(call, database, name, keys, location, params["PartitionInput"])
    return {}


@operation("glue", "BatchCreatePartition")
def batch_create_partition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name = _hive_table(call, params)
    keys, location = keys_and_location(call.settings, database, name)
    errors = []
    for partition_input in params["PartitionInputList"]:
        try:
            _create(call, database, name, keys, location, partition_input)
        except AwsError as exc:
            errors.append({"PartitionValues": partition_input["Values"],
                           "ErrorDetail": {"ErrorCode": exc.code, "ErrorMessage": exc.message}})  # fmt: skip
    return {"Errors": errors}


def _find(call: Call, database: str, name: str, values: list[str]) -> dict[str, Any] | None:
    for partition in glue_partitions(call, database, name, None, True):
        if partition["Values"] == list(values):
            return partition
    return None


@operation("glue", "GetPartition")
def get_partition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name = _hive_table(call, params)
    found = _find(call, database, name, params["PartitionValues"])
    if found is None:
        raise AwsError("EntityNotFoundException", "Partition not found.")
    return {"Partition": found}


@operation("glue", "BatchGetPartition")
def batch_get_partition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name = _hive_table(call, params)
    every = glue_partitions(call, database, name, None, True)
    wanted = [list(p["Values"]) for p in params["PartitionsToGet"]]
    return {"Partitions": [p for p in every if p["Values"] in wanted], "UnprocessedKeys": []}


def _delete(call: Call, database: str, name: str, values: list[str]) -> None:
    keys, _ = keys_and_location(call.settings, database, name)
    if _find(call, database, name, values) is None:
        raise AwsError("EntityNotFoundException", "Partition not found.")
    literal = glue_hive.literal
    glue_hive.run(call.settings, (
        f"CALL {glue_hive.HIVE_CATALOG}.system.unregister_partition("
        f"schema_name => {literal(database)}, table_name => {literal(name)}, "
        f"partition_columns => ARRAY[{', '.join(literal(k) for k in keys)}], "
        f"partition_values => ARRAY[{', '.join(literal(v) for v in values)}])"))  # fmt: skip


@operation("glue", "DeletePartition")
def delete_partition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Unregisters the partition; its files stay on S3, as with Glue."""
    database, name = _hive_table(call, params)
    _delete(call, database, name, params["PartitionValues"])
    return {}


@operation("glue", "BatchDeletePartition")
def batch_delete_partition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database, name = _hive_table(call, params)
    errors = []
    for entry in params["PartitionsToDelete"]:
        try:
            _delete(call, database, name, entry["Values"])
        except AwsError as exc:
            errors.append({"PartitionValues": entry["Values"],
                           "ErrorDetail": {"ErrorCode": exc.code, "ErrorMessage": exc.message}})  # fmt: skip
    return {"Errors": errors}
