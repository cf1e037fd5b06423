"""The two targets behind one interface, addressed by source table.

A writer knows where each source table lands (an Iceberg table or an index)
and where its checkpoint lives. Positions are source positions (PostgreSQL
LSNs as text, or Iceberg snapshot ids).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lakehouse.config import Settings
from lakehouse.sync.iceberg_expire import Retention
from lakehouse.sync.iceberg_target import IcebergTarget
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import DeadLetter, TableBatch
from lakehouse.sync.opensearch_target import OpenSearchTarget


class Writer(Protocol):
    def target_name(self, table: str) -> str: ...

    def position(self, table: str) -> str | None: ...

    def write(self, table: str, batch: TableBatch, position: str) -> list[DeadLetter]:
        """Apply a batch; returns rows the target refused (to be dead-lettered)."""
        ...

    def load(self, table: str, key: tuple[str, ...], schema: pa.Schema,
             chunks: Iterable[TableBatch], position: str) -> tuple[int, list[DeadLetter]]: ...  # fmt: skip

    def commit(self, tables: Iterable[str], position: str) -> None: ...

    def drop(self, table: str) -> None: ...


class IcebergWriter:
    """Source tables -> ``<namespace>.<table>``; checkpoints in snapshot properties."""

    def __init__(self, catalog: Catalog, integration: Integration, settings: Settings) -> None:
        self.integration = integration
        self.settings = settings
        self.target = IcebergTarget(catalog, integration.name, generation=integration.generation,
                                    retention=Retention.of(settings),
                                    write_mode=settings.sync_iceberg_write_mode)  # fmt: skip
        self.catalog = catalog

    def target_name(self, table: str) -> str:
        return self.integration.iceberg_target(table, self.settings)

    def position(self, table: str) -> str | None:
        return self.target.position(self.target_name(table))

    def write(self, table: str, batch: TableBatch, position: str) -> list[DeadLetter]:
        self.target.apply(self.target_name(table), batch, position)
        return []

    def load(self, table: str, key: tuple[str, ...], schema: pa.Schema,
             chunks: Iterable[TableBatch], position: str) -> tuple[int, list[DeadLetter]]:  # fmt: skip
        tables = (chunk.upsert_table() for chunk in chunks)
        return self.target.replace(self.target_name(table), key, schema, tables, position), []

    def commit(self, tables: Iterable[str], position: str) -> None:
        """Nothing to do: each table's commit already carries its position."""

    def drop(self, table: str) -> None:
        name = self.target_name(table)
        self.target.forget(name)
        if self.catalog.table_exists(name):
            self.catalog.purge_table(name)


class OpenSearchWriter:
    """Source tables -> indices; checkpoints in the checkpoint index, after the data."""

    def __init__(
        self, target: OpenSearchTarget, integration: Integration, settings: Settings
    ) -> None:
        self.integration = integration
        self.settings = settings
        self.target = target
        self._positions: dict[str, str] | None = None

    def target_name(self, table: str) -> str:
        return self.integration.index_name(table, self.settings)

    def position(self, table: str) -> str | None:
        if self._positions is None:
            self._positions = self.target.checkpoints()
        return self._positions.get(self.target_name(table))

    def write(self, table: str, batch: TableBatch, position: str) -> list[DeadLetter]:
        index = self.target_name(table)
        self.target.ensure_index(index, batch.schema, batch.key)
        return self.target.apply(index, batch, position)

    def load(self, table: str, key: tuple[str, ...], schema: pa.Schema,
             chunks: Iterable[TableBatch], position: str) -> tuple[int, list[DeadLetter]]:  # fmt: skip
        index = self.target_name(table)
        # A fresh index: documents of rows deleted before this snapshot must not linger.
        self.target.drop(index)
        self.target.ensure_index(index, schema, key)
        rows, refused = 0, []
        for chunk in chunks:
            refused_now = self.target.apply(index, chunk, position)
            rows += len(chunk.upserts) - len(refused_now)  # only what the index took
            refused += refused_now
        return rows, refused

    def commit(self, tables: Iterable[str], position: str) -> None:
        # Only this process writes them (one runner per integration): no re-read.
        known = self._positions if self._positions is not None else self.target.checkpoints()
        self._positions = known | {self.target_name(table): position for table in tables}
        self.target.save_checkpoints(self._positions)

    def drop(self, table: str) -> None:
        self.target.drop(self.target_name(table))
        self.target.forget(self.target_name(table))
        self._positions = None
