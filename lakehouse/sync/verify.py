"""Compare a source with its target, by key and by content hash (`lakehouse sync verify`).

Both sides are reduced to ``key -> hash of the row's JSON form`` over the
source's columns, with values in the form OpenSearch stores (decimals as
numbers, timestamps as ISO text), so any target can be compared with any source.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.config import Settings
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import document_id
from lakehouse.sync.opensearch_target import json_value, scroll_hits

if TYPE_CHECKING:
    from pyiceberg.table import Table


@dataclass
class TableReport:
    table: str
    target: str
    source_rows: int = 0
    target_rows: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    duplicates: int = 0
    # Source rows the target cannot take (they are in the dead-letter table).
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different or self.duplicates)


def row_hash(row: dict[str, Any], columns: list[str]) -> str:
    canonical = {name: _canonical(row.get(name)) for name in columns}
    text = json.dumps(canonical, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    # Iceberg keeps NaN and infinity (OpenSearch refuses them, as dead letters).
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return json_value(value)


def compare(table: str, target: str, source: dict[str, str], found: dict[str, str],
            rejected: Collection[str] = ()) -> TableReport:  # fmt: skip
    """Differences by key; keys of rejected (dead-lettered) source rows are left out."""
    found = {k: v for k, v in found.items() if k not in rejected}
    report = TableReport(table, target, len(source), len(found), rejected=sorted(rejected))
    report.missing = sorted(k for k in source if k not in found)
    report.extra = sorted(k for k in found if k not in source)
    report.different = sorted(k for k in source if k in found and source[k] != found[k])
    return report


def _postgres_rows(settings: Settings, integration: Integration, table: str
                   ) -> tuple[dict[str, str], set[str], list[str], tuple[str, ...]]:  # fmt: skip
    from lakehouse.sync.postgres_source import PostgresSource, RowRejected

    source = PostgresSource.for_integration(settings, integration)
    try:
        schema, name = integration.source_table(table)
        columns = source.columns(schema, name)
        key = integration.key or source.primary_key(schema, name)
        names = [c.name for c in columns]
        hashes, rejected = {}, set()
        for chunk in source.snapshot(schema, name, columns):
            for values in chunk:
                raw = dict(zip(names, values, strict=True))
                try:
                    row = source.convert_row(columns, raw)
                except RowRejected:
                    rejected.add(document_id(tuple(raw[k] for k in key)))
                    continue
                hashes[document_id(tuple(row[k] for k in key))] = row_hash(row, names)
        return hashes, rejected, names, key
    finally:
        source.close()


def _iceberg_rows(table: Table, columns: list[str] | None,
                  key: tuple[str, ...]) -> tuple[dict[str, str], list[str], int]:  # fmt: skip
    """Hashes by key, the columns compared, and how many rows repeat a key."""
    rows = table.scan().to_arrow().to_pylist()
    names = columns or [f.name for f in table.schema().fields]
    hashes = {document_id(tuple(r[k] for k in key)): row_hash(r, names) for r in rows}
    return hashes, names, len(rows) - len(hashes)


def _index_rows(settings: Settings, index: str, columns: list[str]) -> dict[str, str]:
    from lakehouse.services.opensearch import OpenSearchService

    client = OpenSearchService(settings).client(timeout=60)
    try:
        client.indices.refresh(index=index)
        hits = scroll_hits(client, index, {})
        return {hit["_id"]: row_hash(hit["_source"], columns) for hit in hits}
    finally:
        client.close()


def verify(settings: Settings, integration: Integration) -> list[TableReport]:
    """One report per table of the integration."""
    from lakehouse.lake.catalog import open_catalog

    catalog = open_catalog(settings)
    reports = []
    for table in integration.tables:
        rejected: set[str] = set()
        duplicates = 0
        if integration.source == "postgres":
            source, rejected, columns, key = _postgres_rows(settings, integration, table)
        else:
            source_table = catalog.load_table(table)
            key = integration.key_of(source_table.schema())
            source, columns, _ = _iceberg_rows(source_table, None, key)
        if integration.target == "iceberg":
            target = integration.iceberg_target(table, settings)
            found, _, duplicates = _iceberg_rows(catalog.load_table(target), columns, key)
        else:
            target = integration.index_name(table, settings)
            found = _index_rows(settings, target, columns)
        report = compare(table, target, source, found, rejected)
        report.duplicates = duplicates
        reports.append(report)
    return reports
