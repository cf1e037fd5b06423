"""The ``lake`` fixture's object: one namespace and one S3 prefix per test."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from minio import Minio
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.table import Table

from lakehouse.client import Lakehouse
from lakehouse.lake.ingest import IngestResult


def unique_name(test_name: str, separator: str = "_", limit: int = 60) -> str:
    """A lowercase identifier naming the test, the xdist worker and a random suffix."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    stem = re.sub(r"[^a-z0-9]+", separator, test_name.lower()).strip(separator)
    suffix = f"{separator}{worker}{separator}{uuid.uuid4().hex[:6]}"
    return ("t" + separator + stem)[: limit - len(suffix)] + suffix


@dataclass
class IsolatedLake:
    """A test's own corner of the lake; unqualified table names resolve to its namespace."""

    client: Lakehouse
    namespace: str

    @classmethod
    def create(cls, client: Lakehouse, namespace: str) -> IsolatedLake:
        client.catalog.create_namespace(namespace)
        return cls(client, namespace)

    @property
    def catalog(self) -> RestCatalog:
        return self.client.catalog

    @property
    def s3(self) -> Minio:
        return self.client.s3

    @property
    def bucket(self) -> str:
        return self.client.settings.warehouse_bucket

    @property
    def prefix(self) -> str:
        """This test's S3 prefix (``s3://bucket/prefix/...``), removed afterwards."""
        return f"scratch/{self.namespace}/"

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def name(self, table: str) -> str:
        """'ns.table' for a bare table name; qualified names pass through."""
        return table if "." in table else f"{self.namespace}.{table}"

    def table(self, name: str) -> Table:
        return self.client.table(self.name(name))

    def ingest(self, source: str | pa.Table, table: str, **options: Any) -> IngestResult:
        return self.client.ingest(source, self.name(table), **options)

    def sql(self, query: str, engine: str = "duckdb", **options: Any) -> pa.Table:
        return self.client.sql(query, engine=engine, namespace=self.namespace, **options)

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        return self.client.duckdb(self.namespace)

    def drop(self) -> None:
        """Purge the namespace's tables, the namespace and the S3 prefix."""
        self.client.reset_duckdb()
        for identifier in self.catalog.list_tables(self.namespace):
            self.catalog.purge_table(identifier)
        self.catalog.drop_namespace(self.namespace)
        for obj in self.s3.list_objects(self.bucket, prefix=self.prefix, recursive=True):
            self.s3.remove_object(self.bucket, obj.object_name)
