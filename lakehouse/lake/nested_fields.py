"""Fields inside structs (at any depth, in lists and map values) that the table lacks.

pyarrow casts a struct to a struct by field name and drops the fields the
target lacks, so fitting ``{"src": "x", "new": true}`` to the table's
``struct<src>`` would lose ``new`` silently. Before fitting, the table's type
is extended with every input field it lacks (the schema update then adds them
to the table, as Iceberg allows for nested fields); a field that differs from
the table's only by case, or that has no values (so no type), is refused
naming its path (``meta.tags.element.kind``).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from lakehouse.errors import IngestError

Storable = Callable[[pa.DataType], pa.DataType]


def with_input_fields(table_type: pa.DataType, input_type: pa.DataType, path: str,
                      storable: Storable) -> pa.DataType:  # fmt: skip
    """``table_type`` with the nested fields of ``input_type`` that it lacks appended
    (their types made storable by ``storable``); IngestError naming a field path."""
    if pa.types.is_struct(table_type) and pa.types.is_struct(input_type):
        return _struct(table_type, input_type, path, storable)
    if _is_list(table_type) and _is_list(input_type):
        item = with_input_fields(table_type.value_type, input_type.value_type,
                                 f"{path}.element", storable)  # fmt: skip
        return pa.list_(table_type.value_field.with_type(item))
    if pa.types.is_map(table_type) and pa.types.is_map(input_type):
        item = with_input_fields(table_type.item_type, input_type.item_type,
                                 f"{path}.value", storable)  # fmt: skip
        return pa.map_(table_type.key_field, table_type.item_field.with_type(item))
    return table_type


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind)


def _struct(table_type: pa.StructType, input_type: pa.StructType, path: str,
            storable: Storable) -> pa.DataType:  # fmt: skip
    table_fields = {f.name: f for f in table_type}
    by_lower = {name.lower(): name for name in table_fields}
    fields = []
    for field in table_type:
        index = input_type.get_field_index(field.name)
        if index < 0:
            fields.append(field)
            continue
        inner = input_type.field(index).type
        fields.append(field.with_type(
            with_input_fields(field.type, inner, f"{path}.{field.name}", storable)))  # fmt: skip
    for field in input_type:
        if field.name in table_fields:
            continue
        where = f"{path}.{field.name}"
        if field.name.lower() in by_lower:
            raise IngestError(
                f"Field {where} differs from the table's {path}.{by_lower[field.name.lower()]} "
                "only by case; engines could not tell them apart.",
                hint="Spell the field as the table does; the table was not changed.",
            )
        if pa.types.is_null(field.type):
            raise IngestError(
                f"Field {where} is new to the table and has no values, so its type cannot "
                "be inferred.",
                hint="Leave the field out, or give it a value in some row; the table was not "
                "changed.",
            )
        fields.append(field.with_type(storable(field.type)))
    return pa.struct(fields)
