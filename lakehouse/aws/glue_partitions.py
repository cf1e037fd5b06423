"""Glue's GetPartitions. On an Iceberg table a partition is one combination of the
values of its identity partition fields present in the current snapshot (from
Iceberg's partitions metadata: nothing is scanned); its Parameters say which fields
(``iceberg.partition.fields``) and carry Hive's ``numRows``/``numFiles``. Bucket,
truncate and date transforms are hidden partitioning, which Glue never lists. On a
Hive-style table the partitions are those registered (:mod:`lakehouse.aws.glue_hive`).

Expression filters as Glue's does (a SQL WHERE clause over the partition keys:
``=``, ``<>``, ``<``, ``>``, ``<=``, ``>=``, ``AND``, ``OR``, ``NOT``, ``IN``,
``BETWEEN``, ``LIKE``, ``IS NULL``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from lakehouse.aws import glue_hive
from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import find_database, page
from lakehouse.aws.glue_tables import columns_of, find_table, load_iceberg
from lakehouse.aws.registry import Call, operation

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
ALLOWED = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
           exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE,
           exp.In, exp.Between, exp.Like, exp.Is, exp.Neg, exp.Tuple)  # fmt: skip


def partition_value(value: Any) -> str:
    """A partition value as Glue's Values list holds it (a string)."""
    if value is None:
        return HIVE_NULL
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def checked_expression(text: str) -> str:
    """Glue's partition Expression, checked to be a plain predicate over columns.

    Raises AwsError (InvalidInputException) for anything else (a function, a
    subquery, several statements)."""
    try:
        parsed = sqlglot.parse_one(text, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise AwsError("InvalidInputException", f"Expression '{text}' is not valid: "
                       f"{str(exc).splitlines()[0]}") from exc  # fmt: skip
    for node in parsed.walk():
        if not isinstance(node, ALLOWED):
            raise AwsError("InvalidInputException",
                           f"Expression '{text}' uses {node.key.upper()}, which a partition "
                           "filter cannot: compare partition keys with literals.")  # fmt: skip
    return parsed.sql(dialect="duckdb")


def matching(rows: pa.Table, expression: str | None) -> list[int]:
    """Indexes of the ``rows`` (one column per partition key) that satisfy the
    expression (all of them without one)."""
    if not expression:
        return list(range(rows.num_rows))
    import duckdb

    predicate = checked_expression(expression)
    numbered = rows.append_column("__row", pa.array(range(rows.num_rows), pa.int64()))
    with duckdb.connect() as db:
        db.register("partitions", numbered)
        try:
            found = db.execute(f"SELECT __row FROM partitions WHERE {predicate}").fetchall()
        except duckdb.Error as exc:
            raise AwsError("InvalidInputException",
                           f"Expression '{expression}' cannot be evaluated: {exc}") from exc  # fmt: skip
    return sorted(row[0] for row in found)


def iceberg_partitions(call: Call, database: str, name: str, table: Any,
                       expression: str | None, with_columns: bool) -> list[dict[str, Any]]:  # fmt: skip
    """Glue's partitions of an Iceberg table (identity fields, current snapshot)."""
    spec = table.spec()
    schema = table.schema()
    identity = [f for f in spec.fields if str(f.transform) == "identity"]
    if not identity or table.current_snapshot() is None:
        return []
    summary = table.inspect.partitions()
    structs = summary.column("partition").to_pylist()
    keys = [f.name for f in identity]
    rows = pa.table({k: [s.get(k) for s in structs] for k in keys})
    found = []
    for index in matching(rows, expression):
        values = [partition_value(structs[index].get(k)) for k in keys]
        path = "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        descriptor: dict[str, Any] = {"Location": f"{table.location()}/data/{path}"}
        if with_columns:
            descriptor["Columns"] = columns_of(schema)
        found.append({
            "Values": values, "DatabaseName": database, "TableName": name,
            "StorageDescriptor": descriptor,
            "Parameters": {"iceberg.partition.fields": ",".join(keys),
                           "numRows": str(summary.column("record_count")[index].as_py()),
                           "numFiles": str(summary.column("file_count")[index].as_py())},
            "CatalogId": call.account_id,
        })  # fmt: skip
    return sorted(found, key=lambda p: p["Values"])


@operation("glue", "GetPartitions")
def get_partitions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    database = find_database(call, params["DatabaseName"])
    name = params["TableName"]
    table = load_iceberg(call, database, name) or load_iceberg(call, database, name.lower())
    with_columns = not params.get("ExcludeColumnSchema", False)
    if table is None:
        find_table(call, database, name)  # EntityNotFoundException when absent
        found = glue_hive.partitions(call, database, name.lower(), params.get("Expression"),
                                     with_columns)  # fmt: skip
    else:
        found = iceberg_partitions(call, database, name, table, params.get("Expression"),
                                   with_columns)  # fmt: skip
    chosen, token = page(found, params, default=1000)
    return {"Partitions": chosen, "NextToken": token}
