"""A small application: load order files from S3 into an Iceberg table and report.

It knows nothing about lakehouse: it uses boto3 and pyiceberg's standard
configuration (AWS_* and PYICEBERG_CATALOG__* variables), exactly as it would
against AWS S3 and a Glue or REST catalog.
"""

from __future__ import annotations

import csv
import io

import boto3
import pyarrow as pa
from pyiceberg.catalog import load_catalog


def read_orders(bucket: str, key: str) -> pa.Table:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    return pa.table({
        "order_id": pa.array([int(r["order_id"]) for r in rows], pa.int64()),
        "customer": pa.array([r["customer"] for r in rows], pa.string()),
        "amount": pa.array([float(r["amount"]) for r in rows], pa.float64()),
    })  # fmt: skip


def load_orders(bucket: str, key: str, table: str, catalog: str = "lake") -> int:
    """Append the CSV at s3://bucket/key to ``table`` (created if absent); returns rows added."""
    orders = read_orders(bucket, key)
    lake = load_catalog(catalog)
    namespace = table.split(".")[0]
    lake.create_namespace_if_not_exists(namespace)
    if lake.table_exists(table):
        target = lake.load_table(table)
    else:
        target = lake.create_table(table, schema=orders.schema)
    target.append(orders)
    return orders.num_rows


def top_customers(table: str, limit: int = 3, catalog: str = "lake") -> list[tuple[str, float]]:
    """Customers by total amount, largest first."""
    data = load_catalog(catalog).load_table(table).scan().to_arrow()
    totals = (
        data.group_by("customer")
        .aggregate([("amount", "sum")])
        .sort_by([("amount_sum", "descending")])
    )
    return list(
        zip(
            totals.column("customer").to_pylist(),
            totals.column("amount_sum").to_pylist(),
            strict=True,
        )
    )[:limit]
