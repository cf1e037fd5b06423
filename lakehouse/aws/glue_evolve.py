"""Glue's UpdateTable on an Iceberg table: the new definition becomes one Iceberg
commit of schema changes and property changes (all or nothing)."""

from __future__ import annotations

from typing import Any

from pyiceberg.exceptions import CommitFailedException, ValidationError
from pyiceberg.table import Table
from pyiceberg.types import IcebergType

from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue_types import glue_type, iceberg_type

# Parameters Glue derives from the table: never stored as properties.
DERIVED = {"table_type", "metadata_location", "previous_metadata_location", "EXTERNAL"}


def evolve(table: Table, table_input: dict[str, Any]) -> None:
    """Apply ``table_input`` (Glue's TableInput) to ``table`` in one commit.

    Raises AwsError: InvalidInputException for a type change Iceberg does not allow
    or a new metadata_location (a table is not re-pointed by UpdateTable here),
    ConcurrentModificationException when another commit won."""
    parameters = table_input.get("Parameters") or {}
    pointed = parameters.get("metadata_location")
    if pointed and pointed != table.metadata_location:
        raise AwsError("InvalidInputException",
                       "UpdateTable cannot point an Iceberg table at another metadata file "
                       f"({pointed}): write through the table (Athena, the lake's engines), "
                       "or DeleteTable then CreateTable with that metadata_location.")  # fmt: skip
    descriptor = table_input.get("StorageDescriptor") or {}
    declared = [*(descriptor.get("Columns") or []), *(table_input.get("PartitionKeys") or [])]
    updates = {k: v for k, v in parameters.items() if k not in DERIVED}
    if table_input.get("Description") is not None:
        updates["comment"] = table_input["Description"]
    removals = {k for k in table.metadata.properties if k not in updates}
    try:
        with table.transaction() as tx:
            if declared:
                _apply_columns(tx, table, declared)
            if removals:
                tx.remove_properties(*removals)
            if updates:
                tx.set_properties(updates)
    except CommitFailedException as exc:
        raise AwsError("ConcurrentModificationException",
                       f"Another change to the table won: {exc}") from exc  # fmt: skip
    except ValidationError as exc:
        raise AwsError("InvalidInputException", str(exc)) from exc


def _apply_columns(tx: Any, table: Table, declared: list[dict[str, Any]]) -> None:
    current = {f.name: f for f in table.schema().fields}
    wanted: dict[str, tuple[IcebergType, str | None]] = {}
    for column in declared:
        wanted[column["Name"]] = (iceberg_type(column["Type"], column["Name"]),
                                  column.get("Comment"))  # fmt: skip
    with tx.update_schema() as schema:
        for name in current:
            if name not in wanted:
                schema.delete_column(name)
        for name, (kind, doc) in wanted.items():
            field = current.get(name)
            if field is None:
                schema.add_column(name, kind, doc=doc)
            elif glue_type(field.field_type) != glue_type(kind):
                if not kind.is_primitive or not field.field_type.is_primitive:
                    raise AwsError("InvalidInputException",
                                   f"Column {name} cannot change from {glue_type(field.field_type)} "
                                   f"to {glue_type(kind)}: Iceberg only widens primitive types.")  # fmt: skip
                schema.update_column(name, field_type=kind, doc=doc)
            elif doc is not None and doc != field.doc:
                schema.update_column(name, doc=doc)
