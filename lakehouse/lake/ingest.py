"""Ingest files into Iceberg tables: infer, create, evolve, then commit once.

Everything that can fail (parsing, type checks, key checks, schema evolution)
happens before or inside a single Iceberg transaction, so a bad input leaves
the table's current snapshot exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import CommitFailedException, ValidationError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table, Transaction
from pyiceberg.table.upsert_util import create_match_filter, has_duplicate_rows

from lakehouse.config import Settings
from lakehouse.errors import IngestError
from lakehouse.lake.catalog import split_name

Mode = Literal["append", "overwrite", "upsert"]
MODES: tuple[str, ...] = ("append", "overwrite", "upsert")
FORMATS: dict[str, str] = {
    ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
    ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip


@dataclass(frozen=True)
class IngestResult:
    table: str
    mode: str
    rows: int
    created: bool
    added_columns: tuple[str, ...]
    snapshot_id: int | None


def detect_format(source: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise IngestError(f"Unknown format '{fmt}'.", hint="Use csv, json or parquet.")
        return fmt
    suffix = Path(source.rstrip("/")).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise IngestError(
        f"Cannot tell the format of '{source}' from its extension.",
        hint="Pass --format csv|json|parquet.",
    )


def _filesystem(source: str, settings: Settings) -> tuple[pa_fs.FileSystem, str]:
    if source.startswith("s3://"):
        fs = pa_fs.S3FileSystem(
            access_key=settings.access_key, secret_key=settings.secret_key,
            endpoint_override=settings.s3_endpoint, region=settings.region, scheme="http",
        )  # fmt: skip
        return fs, source.removeprefix("s3://")
    path = Path(source).expanduser()
    if not path.exists():
        raise IngestError(f"Input {source} does not exist.", hint="Check the path.")
    return pa_fs.LocalFileSystem(), str(path.resolve())


def read_input(source: str, settings: Settings, fmt: str | None = None) -> pa.Table:
    """The whole input as one Arrow table; a parse error becomes an IngestError."""
    kind = detect_format(source, fmt)
    fs, path = _filesystem(source, settings)
    try:
        info = fs.get_file_info(path)
        if info.type == pa_fs.FileType.NotFound:
            raise IngestError(f"Input {source} does not exist.", hint="Check the path or S3 URI.")
        files = [path]
        if info.type == pa_fs.FileType.Directory:
            selector = pa_fs.FileSelector(path, recursive=True)
            files = sorted(
                f.path for f in fs.get_file_info(selector) if f.type == pa_fs.FileType.File
            )
        tables = [_read_one(fs, file, kind) for file in files]
    except IngestError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        raise IngestError(
            f"Cannot read {source} as {kind}: {exc}",
            hint="Fix the file (or pass the right --format); the table was not changed.",
        ) from exc
    if not tables:
        raise IngestError(f"No files found under {source}.", hint="Check the path.")
    return pa.concat_tables(tables, promote_options="permissive")


def _read_one(fs: pa_fs.FileSystem, path: str, kind: str) -> pa.Table:
    if kind == "parquet":
        return pq.read_table(path, filesystem=fs)
    with fs.open_input_stream(path) as stream:
        if kind == "csv":
            delimiter = "\t" if path.endswith(".tsv") else ","
            return pa_csv.read_csv(stream, parse_options=pa_csv.ParseOptions(delimiter=delimiter))
        return pa_json.read_json(stream)


def normalize(table: pa.Table) -> pa.Table:
    """Cast Arrow types Iceberg cannot store to the nearest type it can.

    Nanosecond timestamps are truncated to microseconds (Iceberg v2's precision);
    every other cast is checked, so e.g. a uint64 that does not fit is an error.
    """
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = _iceberg_friendly(field.type)
        try:
            columns.append(column if kind == field.type else
                           pc.cast(column, kind, safe=not pa.types.is_timestamp(kind)))  # fmt: skip
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise IngestError(f"Column {field.name} cannot be stored as {kind}: {exc}") from exc
    return pa.Table.from_arrays(columns, names=table.column_names)


def _iceberg_friendly(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(kind):
        return _iceberg_friendly(kind.value_type)
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz="UTC" if kind.tz else None)
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_unsigned_integer(kind) or kind in (pa.int8(), pa.int16()):
        return pa.int64() if kind in (pa.uint32(), pa.uint64()) else pa.int32()
    if pa.types.is_float16(kind):
        return pa.float32()
    if pa.types.is_date64(kind):
        return pa.date32()
    if pa.types.is_large_string(kind):
        return pa.string()
    return kind


def _check_keys(data: pa.Table, key: list[str], table: str) -> None:
    missing = [k for k in key if k not in data.column_names]
    if missing:
        raise IngestError(
            f"Key column(s) {', '.join(missing)} are not in the input for {table}.",
            hint=f"Input columns: {', '.join(data.column_names)}.",
        )
    for k in key:
        if data.column(k).null_count:
            raise IngestError(f"Key column {k} has null values in the input for {table}.")
    if has_duplicate_rows(data, key):
        raise IngestError(
            f"The input for {table} has several rows with the same key ({', '.join(key)}).",
            hint="An upsert key must identify one row; deduplicate the input first.",
        )


def conform(data: pa.Table, target: pa.Schema) -> pa.Table:
    """Data in the table's column order and types; absent columns become nulls."""
    columns = []
    for field in target:
        if field.name in data.column_names:
            column = data.column(field.name)
            columns.append(column if column.type == field.type else pc.cast(column, field.type))
        elif not field.nullable:
            raise IngestError(f"Required column {field.name} is missing from the input.")
        else:
            columns.append(pa.nulls(len(data), field.type))
    return pa.Table.from_arrays(columns, schema=target)


class Ingestor:
    """Writes Arrow data into the lake's tables with one commit per call."""

    def __init__(self, catalog: RestCatalog) -> None:
        self.catalog = catalog

    def ingest(self, data: pa.Table, table_name: str, mode: str = "append",
               key: list[str] | None = None) -> IngestResult:  # fmt: skip
        """Append, overwrite or upsert ``data`` into ``table_name``, creating it if absent."""
        if mode not in MODES:
            raise IngestError(f"Unknown mode '{mode}'.", hint="Use append, overwrite or upsert.")
        key = key or []
        if mode == "upsert" and not key:
            raise IngestError("Upsert needs key columns.", hint="Pass --key col1,col2.")
        namespace, _ = split_name(table_name)
        data = normalize(data)
        if key:
            _check_keys(data, key, table_name)
        if not self.catalog.table_exists(table_name):
            return self._create(namespace, table_name, data, mode)
        return self._write(self.catalog.load_table(table_name), table_name, data, mode, key)

    def _create(self, namespace: str, name: str, data: pa.Table, mode: str) -> IngestResult:
        self.catalog.create_namespace_if_not_exists(namespace)
        tx = self.catalog.create_table_transaction(name, schema=data.schema)
        tx.append(conform(data, schema_to_pyarrow(tx.table_metadata.schema())))
        table = tx.commit_transaction()
        snapshot = table.current_snapshot()
        return IngestResult(
            name, mode, len(data), True, (), snapshot.snapshot_id if snapshot else None
        )

    def _write(
        self, table: Table, name: str, data: pa.Table, mode: str, key: list[str]
    ) -> IngestResult:
        before = {f.name for f in table.schema().fields}
        try:
            with table.transaction() as tx:
                with tx.update_schema() as update:
                    update.union_by_name(data.schema)
                target = schema_to_pyarrow(tx.table_metadata.schema())
                self._apply(tx, conform(data, target), mode, key)
        except (ValidationError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise IngestError(
                f"Cannot {mode} into {name}: {exc}",
                hint="The table was not changed. Fix the input types or write to a new table.",
            ) from exc
        except CommitFailedException as exc:
            raise IngestError(
                f"Concurrent change to {name} while ingesting: {exc}",
                hint="Nothing was committed; retry the ingest.",
            ) from exc
        table.refresh()
        added = tuple(f.name for f in table.schema().fields if f.name not in before)
        snapshot = table.current_snapshot()
        return IngestResult(
            name, mode, len(data), False, added, snapshot.snapshot_id if snapshot else None
        )

    @staticmethod
    def _apply(tx: Transaction, data: pa.Table, mode: str, key: list[str]) -> None:
        if mode == "append":
            tx.append(data)
        elif mode == "overwrite":
            tx.overwrite(data)
        else:
            # Transaction.upsert checks the input against the schema from before
            # this transaction's evolution; a keyed overwrite is the same merge
            # (matched rows replaced, new rows inserted) and sees the new schema.
            tx.overwrite(data, overwrite_filter=create_match_filter(data, key))
