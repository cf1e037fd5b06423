"""Compare a source with its target, row by row and value by value (`lakehouse sync verify`).

Each value is reduced to a canonical text on both sides, independently:

* a PostgreSQL source gives its own text output, read exactly (numerics as
  decimals, a ``real`` as the float32 its text names, dates and times parsed);
* a target gives what it holds: Iceberg values as pyarrow reads them, OpenSearch
  values as the ``_source`` JSON holds them (dates as ISO text, binary as base64).

So a conversion that changed a value (a rounded decimal, a float32 read as a
double) shows up as a difference instead of hashing equal on both sides.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakehouse.config import Settings
from lakehouse.errors import SyncError
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import document_id
from lakehouse.sync.opensearch_mapping import decoded, document, json_value
from lakehouse.sync.opensearch_target import scroll_hits
from lakehouse.sync.pgtypes import FLOAT4, NUMERIC, arrow_type, converter, float32_text

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

# How many differing keys a report names (with the columns that differ).
SHOWN_DIFFERENCES = 5
# Exact decimal arithmetic for any PostgreSQL numeric (up to 147,455 digits).
_EXACT = decimal.Context(prec=decimal.MAX_PREC)

Forms = dict[str, tuple[str, ...]]


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
    # Source rows sharing a key with another source row: the target can hold only one
    # of them (a declared key that is not unique), so they cannot all be there.
    source_duplicates: int = 0
    # Source rows the target cannot take (they are in the dead-letter table).
    rejected: list[str] = field(default_factory=list)
    # Keys of rejected source rows that the target still holds (an old image, or one
    # written there by hand): the target presents a row the source no longer has.
    stale: list[str] = field(default_factory=list)
    # The first differing keys, each with the columns whose values differ.
    differing_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.missing or self.extra or self.stale or self.different or self.duplicates
            or self.source_duplicates
        )  # fmt: skip


def value_form(value: Any, kind: pa.DataType) -> str:
    """The canonical text of a target's value of Arrow type ``kind``; JSON forms
    (ISO text, base64, numbers as text) are read back first. NaN and infinities
    keep their names, ``-0.0`` its sign."""
    if value is None:
        return "null"
    if pa.types.is_decimal(kind):
        return _decimal_form(decimal.Decimal(str(value)))
    if pa.types.is_float32(kind):
        number = float(value)
        # A value that is no float32 (a double that was never narrowed) cannot be equal.
        exact = math.isnan(number) or float(np.float32(number)) == number
        return float32_text(number) if exact else f"{number!r} (not a float32)"
    if pa.types.is_floating(kind):
        return repr(float(value))
    if pa.types.is_integer(kind):
        return str(int(value))
    if pa.types.is_boolean(kind):
        return str(bool(value))
    if pa.types.is_binary(kind):
        return (base64.b64decode(value) if isinstance(value, str) else bytes(value)).hex()
    if pa.types.is_nested(kind):
        return _nested_form(value)
    return _temporal_form(value, kind)


def _nested_form(value: Any) -> str:
    # Structs, lists and maps compare in the JSON form OpenSearch stores, on both sides.
    try:
        return json.dumps(json_value(value), sort_keys=True)
    except ValueError:
        return repr(value)  # NaN or infinity inside: OpenSearch refuses the row anyway


def _temporal_form(value: Any, kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if kind.tz is not None:
            moment = moment.astimezone(dt.UTC)
        return str(moment.isoformat())
    if pa.types.is_date(kind) and isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    if pa.types.is_time(kind) and isinstance(value, str):
        return dt.time.fromisoformat(value).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _decimal_form(value: decimal.Decimal) -> str:
    return str(value.normalize(_EXACT)) if value.is_finite() else str(value)


def source_form(text: str | None, type_oid: int, type_modifier: int) -> str:
    """The canonical text of a PostgreSQL value, from the source's own text output."""
    kind = arrow_type(type_oid, type_modifier)
    if text is None:
        return "null"
    if type_oid == NUMERIC and pa.types.is_decimal(kind):
        return _decimal_form(decimal.Decimal(text))
    if type_oid == FLOAT4:
        return float32_text(float(converter(type_oid, type_modifier)(text)))  # type: ignore[arg-type]
    if pa.types.is_string(kind):
        return text  # kept as PostgreSQL's text
    return value_form(converter(type_oid, type_modifier)(text), kind)


def compare(table: str, target: str, source: Mapping[str, tuple[str, ...]],
            found: Mapping[str, tuple[str, ...]], rejected: Collection[str] = (),
            columns: list[str] | None = None) -> TableReport:  # fmt: skip
    """Differences by key. ``source`` holds the rows the target should hold; the keys of
    rejected (dead-lettered) source rows must be absent from the target, else stale."""
    report = TableReport(table, target, len(source), len(found), rejected=sorted(rejected))
    report.missing = sorted(k for k in source if k not in found)
    report.stale = sorted(k for k in found if k not in source and k in rejected)
    report.extra = sorted(k for k in found if k not in source and k not in rejected)
    report.different = sorted(k for k in source if k in found and source[k] != found[k])
    for key in report.different[:SHOWN_DIFFERENCES]:
        names = columns or [str(i) for i in range(len(source[key]))]
        pairs = zip(names, source[key], found[key], strict=False)
        report.differing_columns[key] = [name for name, ours, theirs in pairs if ours != theirs]
    return report


def _postgres_rows(settings: Settings, integration: Integration, table: str
                   ) -> tuple[Forms, set[str], list[str], tuple[str, ...], pa.Schema, int]:  # fmt: skip
    """Forms by key, keys of rows that are dead letters (refused by the converter or,
    for an OpenSearch target, unstorable there), column names, key, Arrow schema, and
    how many rows repeat an earlier row's key."""
    from lakehouse.sync.pgtypes import arrow_schema
    from lakehouse.sync.postgres_source import PostgresSource, RowRejected

    source = PostgresSource.for_integration(settings, integration)
    try:
        schema, name = integration.source_table(table)
        columns = source.columns(schema, name)
        key = integration.key or source.primary_key(schema, name)
        names = [c.name for c in columns]
        forms: Forms = {}
        rejected: set[str] = set()
        repeats = 0
        for chunk in source.snapshot(schema, name, columns):
            for values in chunk:
                raw = dict(zip(names, values, strict=True))
                try:
                    row = source.convert_row(columns, raw)
                except RowRejected:
                    row = None
                ident = document_id(tuple((raw if row is None else row)[k] for k in key))
                repeats += ident in forms or ident in rejected
                if row is None or (integration.target == "opensearch" and not _storable(row)):
                    rejected.add(ident)
                    continue
                forms[ident] = tuple(
                    source_form(text, c.type_oid, c.type_modifier)
                    for c, text in zip(columns, values, strict=True)
                )
        return forms, rejected, names, key, arrow_schema(columns), repeats
    finally:
        source.close()


def _row_forms(rows: Iterable[Mapping[str, Any]], schema: pa.Schema,
               key: tuple[str, ...]) -> tuple[Forms, int]:  # fmt: skip
    """Forms by key over ``schema``'s columns, and how many rows repeat a key (the
    rows read are ``len(forms) + repeats``)."""
    forms, count = {}, 0
    for row in rows:
        count += 1
        forms[document_id(tuple(row.get(k) for k in key))] = tuple(
            value_form(row.get(f.name), f.type) for f in schema
        )
    return forms, count - len(forms)


def _load_table(catalog: Catalog, name: str, role: str) -> Table:
    if not catalog.table_exists(name):
        raise SyncError(
            f"The {role} table {name} does not exist.",
            hint="A new or reset integration creates it on its first pass: "
            "`lakehouse sync run NAME`, then verify again.",
        )
    return catalog.load_table(name)


def _index_forms(settings: Settings, index: str, schema: pa.Schema) -> Forms:
    from lakehouse.services.opensearch import OpenSearchService

    client = OpenSearchService(settings).client(timeout=60)
    try:
        if not client.indices.exists(index=index):
            raise SyncError(
                f"The target index {index} does not exist.",
                hint="A new or reset integration creates it on its first pass: "
                "`lakehouse sync run NAME`, then verify again.",
            )
        client.indices.refresh(index=index)
        forms = {}
        for hit in scroll_hits(client, index, {}):
            row = decoded(hit["_source"])
            forms[hit["_id"]] = tuple(value_form(row.get(f.name), f.type) for f in schema)
        return forms
    finally:
        client.close()


def _storable(row: dict[str, Any]) -> bool:
    """Whether OpenSearch can store the row (NaN and infinities it cannot: dead letters)."""
    try:
        document(row)
    except ValueError:
        return False
    return True


def verify(settings: Settings, integration: Integration) -> list[TableReport]:
    """One report per table of the integration.

    Raises SyncError (with a Hint) when a source or target table or index does not exist.
    """
    from lakehouse.lake.catalog import open_catalog

    catalog = open_catalog(settings)
    reports = []
    for table in integration.tables:
        rejected: set[str] = set()
        duplicates = 0
        if integration.source == "postgres":
            source, rejected, columns, key, schema, repeats = _postgres_rows(
                settings, integration, table
            )
        else:
            source_table = _load_table(catalog, table, "source")
            key = integration.key_of(source_table.schema())
            rows = source_table.scan().to_arrow()
            schema, columns = rows.schema, rows.schema.names
            source, repeats = _row_forms(rows.to_pylist(), schema, key)
        if integration.target == "iceberg":
            target = integration.iceberg_target(table, settings)
            rows = _load_table(catalog, target, "target").scan().to_arrow()
            found, duplicates = _row_forms(rows.to_pylist(), schema, key)
        else:
            target = integration.index_name(table, settings)
            found = _index_forms(settings, target, schema)
        report = compare(table, target, source, found, rejected, columns)
        report.duplicates = duplicates
        report.source_duplicates = repeats
        report.source_rows += repeats  # every row the source holds
        report.target_rows = len(found) + duplicates  # every row the target holds
        reports.append(report)
    return reports
