"""Ingest files into Iceberg tables: read, fit to the table's schema, evolve, commit once.

The table's schema is the contract (see ``contract``): input is converted to
the table's types where no value changes, the table is widened where Iceberg
allows it, and anything else is refused. Everything that can fail (parsing,
names, types, keys, schema evolution) happens before or inside a single
Iceberg transaction, so a bad input leaves the table's current snapshot
exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import NotInstalledError, ValidationError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table, Transaction
from pyiceberg.table.upsert_util import has_duplicate_rows

from lakehouse.config import Settings
from lakehouse.errors import IngestError
from lakehouse.lake import nested_nulls
from lakehouse.lake.attempt import (
    COMMIT_TRIES,
    CONFLICTS,
    committing,
    discarding_on_failure,
    recording,
    retry_conflicts,
)
from lakehouse.lake.column_types import load_schema_file, parse_type_options
from lakehouse.lake.contract import fit_frame, refuse_untyped, storable, unify
from lakehouse.lake.names import match_columns, normalise_table_name
from lakehouse.lake.readers import ReadOptions, detect_format, read_frames, text_columns
from lakehouse.lake.rewrite import replace_all, rewrite_by_key

nested_nulls.install()  # NULL lists stay NULL through pyiceberg's writer

__all__ = ["IngestResult", "Ingestor", "ReadOptions", "conform", "detect_format", "normalize"]

Mode = Literal["append", "overwrite", "upsert"]
MODES: tuple[str, ...] = ("append", "overwrite", "upsert")
TypeSpec = Mapping[str, "str | pa.DataType"]


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did; ``notices`` are things the user should know (never errors)."""

    table: str
    mode: str
    rows: int
    created: bool
    added_columns: tuple[str, ...]
    snapshot_id: int | None
    widened_columns: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()


def normalize(table: pa.Table) -> pa.Table:
    """Cast Arrow types Iceberg cannot store to the nearest type it can.

    Nanosecond timestamps are truncated to microseconds (Iceberg v2's precision)
    and a column of nulls becomes string; every other cast is checked. Ingest
    itself refuses both instead (see ``contract``); this is for callers that
    load data they produced themselves.
    """
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = storable(field.type)
        kind = pa.string() if pa.types.is_null(kind) else kind
        try:
            columns.append(column if kind == field.type else
                           pc.cast(column, kind, safe=not pa.types.is_timestamp(kind)))  # fmt: skip
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise IngestError(f"Column {field.name} cannot be stored as {kind}: {exc}") from exc
    return pa.Table.from_arrays(columns, names=table.column_names)


def check_mode(mode: str, key: list[str]) -> None:
    """IngestError for an unknown mode, an upsert without key, or a key that would be ignored."""
    if mode not in MODES:
        raise IngestError(f"Unknown mode '{mode}'.", hint="Use append, overwrite or upsert.")
    if mode == "upsert" and not key:
        raise IngestError("Upsert needs key columns.", hint="Pass --key col1,col2.")
    if key and mode != "upsert":
        raise IngestError(
            f"--key {','.join(key)} is only used by --mode upsert; --mode {mode} would ignore it.",
            hint="Pass --mode upsert to merge on the key, or drop --key.",
        )


def explicit_types(types: TypeSpec | None, schema: str | Path | TypeSpec | None
                   ) -> tuple[dict[str, pa.DataType], set[str]]:  # fmt: skip
    """({column: type} from --schema then --type, names that must be in the input)."""
    from_file = load_schema_file(schema) if isinstance(schema, str | Path) else dict(schema or {})
    merged = {**from_file, **(types or {})}
    required = set(types or {})
    return parse_type_options(merged), required


def resolve_keys(key: list[str], data: pa.Table) -> list[str]:
    """The key's input columns, matched as columns are: without regard to case."""
    found = match_columns(key, data.column_names)
    return [found.get(k, k) for k in key]


def check_partial_upsert(data: pa.Table, target: pa.Schema, table: str) -> None:
    """IngestError when an upsert lacks table columns: it replaces whole rows, so the
    matched rows' values of those columns would silently become NULL."""
    absent = [name for name in target.names if name not in data.column_names]
    if absent:
        raise IngestError(
            f"The upsert into {table} lacks column(s) {', '.join(absent)}: an upsert replaces "
            "whole rows, so the matched rows would lose their values of those columns.",
            hint="Include every column of the table in the input (with the values to keep); "
            "the table was not changed.",
        )


def _check_keys(data: pa.Table, key: list[str], table: str) -> None:
    missing = [k for k in key if k not in data.column_names]
    if missing:
        raise IngestError(
            f"Key column(s) {', '.join(missing)} are not in the input for {table}.",
            hint=f"Input columns: {', '.join(data.column_names)}.",
        )
    for k in key:
        if data.column(k).null_count:
            raise IngestError(
                f"Key column {k} has null values in the input for {table}.",
                hint="Every key column needs a value: fill or drop those rows first.",
            )
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


def _required_kept(table: Table, data: pa.Table, name: str) -> pa.Schema:
    """``data``'s schema with the table's required columns (e.g. a sync's key) required:
    a nullable input column would otherwise make them optional, which Iceberg refuses
    for identifier fields. IngestError when such a column holds a null."""
    required = {f.name for f in table.schema().fields if f.required}
    fields = []
    for field in data.schema:
        if field.name in required:
            nulls = data.column(field.name).null_count
            if nulls:
                raise IngestError(
                    f"Column {field.name} of {name} is required (never NULL), but the "
                    f"input has {nulls} null value(s) in it.",
                    hint="Fill or drop those rows first; the table was not changed.",
                )
            field = field.with_nullable(False)
        fields.append(field)
    return pa.schema(fields)


def _arrow_schema(table: Table) -> pa.Schema:
    """The table's schema as Arrow types, without pyiceberg's field-id metadata."""
    arrow = schema_to_pyarrow(table.schema())
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow])


def _explicit_for(explicit: dict[str, pa.DataType], data: pa.Table) -> dict[str, pa.DataType]:
    """{input column: explicit type} for the explicit names this input has."""
    return {
        column: explicit[name]
        for name, column in match_columns(explicit, data.column_names).items()
    }


def _check_explicit_names(required: set[str], frames: list[tuple[str, pa.Table]]) -> None:
    """IngestError for a --type column that no input has (a typo would be silently unused)."""
    columns = {c for _, data in frames for c in data.column_names}
    missing = sorted(set(required) - set(match_columns(required, columns)))
    if missing:
        raise IngestError(
            f"--type names column(s) {', '.join(missing)}, which the input does not have.",
            hint=f"Input columns: {', '.join(sorted(columns))}.",
        )


# What pyiceberg's (and pyarrow's) writers raise for input or table settings they cannot write.
WRITE_ERRORS = (ValidationError, ValueError, TypeError, NotImplementedError, OSError,
                pa.ArrowException, NotInstalledError)  # fmt: skip


@contextmanager
def writing(name: str, mode: str) -> Iterator[None]:
    """Turn what pyiceberg raises while writing ``name`` into one IngestError with a hint.

    Commit conflicts (``attempt.CONFLICTS``) pass through: the write is re-planned.
    """
    try:
        yield
    except IngestError:
        raise
    except WRITE_ERRORS as exc:
        raise IngestError(
            f"Cannot {mode} into {name}: {str(exc).splitlines()[0] if str(exc) else repr(exc)}",
            hint="The table was not changed. Fix the input's types, or the table's settings "
            "(partitioning, write.* properties) that pyiceberg cannot write; Spark or Trino "
            "can write what pyiceberg cannot.",
        ) from exc


@contextmanager
def giving_up(name: str) -> Iterator[None]:
    """An IngestError saying to retry when other writers kept winning the race."""
    try:
        yield
    except CONFLICTS as exc:
        raise IngestError(
            f"Other writers kept changing {name} while this ingest committed "
            f"({COMMIT_TRIES} tries): {str(exc).splitlines()[0] if str(exc) else repr(exc)}",
            hint="Nothing was committed and no file was left behind; retry the ingest.",
        ) from exc


def _without_empty_files(frames: list[tuple[str, pa.Table]]
                         ) -> tuple[list[tuple[str, pa.Table]], list[str]]:  # fmt: skip
    """The frames of files with content, and a notice naming the empty files skipped."""
    empty = [label for label, data in frames if not data.num_columns and not len(data)]
    kept = [(label, data) for label, data in frames if label not in empty]
    if not empty or len(frames) == 1:
        return kept, []
    listed = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
    return kept, [f"skipped {len(empty)} empty file(s) (no header, no rows): {listed}"]


def _nothing_to_load(table: Table | None, name: str, mode: str,
                     notices: tuple[str, ...]) -> IngestResult:  # fmt: skip
    """An input with no columns: a no-op on an existing table, refused for a new one."""
    if table is None:
        raise IngestError(
            f"The input for {name} is empty (no header, no rows), so there are no columns "
            "to create the table from.",
            hint="Ingest a file with a header (or data) first; nothing was created.",
        )
    snapshot = table.current_snapshot()
    note = f"the input is empty (no header, no rows): {name} was not changed"
    if mode == "overwrite":
        note += " (an empty file never empties a table)"
    return IngestResult(name, mode, 0, False, (), snapshot.snapshot_id if snapshot else None,
                        notices=(*notices, note))  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """Input fitted to the table: the data, its target schema and what the user should know."""

    data: pa.Table
    notices: tuple[str, ...]


class _Input:
    """One ingest's input, read once and fitted to the table as it is at each try.

    A writer that loses a race re-plans on the table another writer created or
    changed; the input then follows the same typing contract as if that table
    had been there from the start (so it is read again only when the table's
    column names, which the CSV reader keeps as text, have changed).
    """

    def __init__(self, source: str | pa.Table, settings: Settings | None, options: ReadOptions,
                 types: TypeSpec | None, schema: str | Path | TypeSpec | None) -> None:  # fmt: skip
        self.source, self.settings, self.options = source, settings, options
        self.explicit, self.required = explicit_types(types, schema)
        self._read: tuple[frozenset[str], list[tuple[str, pa.Table]], list[str]] | None = None
        self._fitted: tuple[pa.Schema | None, Prepared] | None = None

    def fitted(self, target: pa.Schema | None) -> Prepared:
        """The input fitted to ``target`` (None: a table to create). Raises IngestError."""
        if self._fitted is not None and _same_schema(self._fitted[0], target):
            return self._fitted[1]
        frames, notices = self._frames(target)
        prepared = Prepared(pa.table({}), tuple(notices))
        if frames:
            prepared = self._fit(frames, list(notices), target)
        self._fitted = (target, prepared)
        return prepared

    def _frames(self, target: pa.Schema | None) -> tuple[list[tuple[str, pa.Table]], list[str]]:
        if isinstance(self.source, pa.Table):
            return [("the input", self.source)], []
        if self.settings is None:
            raise IngestError(
                "Reading files needs the lake's settings.",
                hint="Use lakehouse.connect().ingest(...).",
            )
        known = text_columns([*self.explicit, *(target.names if target is not None else [])])
        if self._read is None or self._read[0] != known:
            options = replace(self.options, text_columns=known)
            frames, notices = _without_empty_files(read_frames(self.source, self.settings, options))
            self._read = (known, frames, notices)
        return self._read[1], self._read[2]

    def _fit(self, frames: list[tuple[str, pa.Table]], notices: list[str],
             target: pa.Schema | None) -> Prepared:  # fmt: skip
        _check_explicit_names(self.required, frames)
        formats = self.options.formats
        fitted = []
        for label, data in frames:
            explicit = _explicit_for(self.explicit, data)
            fitted.append((label, fit_frame(label, data, target, explicit, formats, notices)))
        data = unify(fitted, formats)
        if not data.num_columns:
            raise IngestError(
                "The input has no columns.", hint="Check the file; the table was not changed."
            )
        refuse_untyped(data, target)
        return Prepared(data, tuple(notices))


def _same_schema(a: pa.Schema | None, b: pa.Schema | None) -> bool:
    return a is b if a is None or b is None else a.equals(b)


class Ingestor:
    """Writes files or Arrow data into the lake's tables with one commit per call."""

    def __init__(self, catalog: RestCatalog, settings: Settings | None = None) -> None:
        self.catalog = catalog
        self.settings = settings

    def ingest(self, source: str | pa.Table, table_name: str, mode: str = "append",
               key: list[str] | None = None, *, options: ReadOptions | None = None,
               types: TypeSpec | None = None,
               schema: str | Path | TypeSpec | None = None,
               snapshot_properties: Mapping[str, str] | None = None) -> IngestResult:  # fmt: skip
        """Append, overwrite or upsert ``source`` into ``table_name``, creating it if absent.

        ``types`` ({column: "decimal(12,2)"}) must name input columns; ``schema`` (a
        JSON/TOML file or a mapping) may name more. The write is one snapshot; one
        that loses a race to another writer is planned again on the table as that
        writer left it (up to COMMIT_TRIES times). ``snapshot_properties`` go into an
        append's snapshot summary (the crawler marks its commits so). Raises
        IngestError, changing nothing and leaving no file behind.
        """
        key = key or []
        check_mode(mode, key)
        name, renamed = normalise_table_name(table_name)
        given = _Input(source, self.settings, options or ReadOptions(), types, schema)
        with giving_up(name):
            result = retry_conflicts(
                lambda: self._try(given, name, mode, key, dict(snapshot_properties or {}))
            )
        return replace(result, notices=((renamed,) if renamed else ()) + result.notices)

    def _try(self, given: _Input, name: str, mode: str, key: list[str],
             properties: dict[str, str]) -> IngestResult:  # fmt: skip
        """One try at the whole write, planned on the table as the catalog has it now."""
        table = self.catalog.load_table(name) if self.catalog.table_exists(name) else None
        target = _arrow_schema(table) if table is not None else None
        prepared = given.fitted(target)
        data = prepared.data
        if not data.num_columns:
            return _nothing_to_load(table, name, mode, prepared.notices)
        if key:
            key = resolve_keys(key, data)
            _check_keys(data, key, name)
        if mode == "upsert" and target is not None:
            check_partial_upsert(data, target, name)
        if table is None:
            result = self._create(name, data, mode, properties)
        else:
            result = self._write(table, name, data, mode, key, properties)
        return replace(result, notices=prepared.notices)

    def _create(self, name: str, data: pa.Table, mode: str,
                properties: dict[str, str]) -> IngestResult:  # fmt: skip
        namespace = name.split(".")[0]
        self.catalog.create_namespace_if_not_exists(namespace)
        with writing(name, mode):
            tx = self.catalog.create_table_transaction(name, schema=data.schema)
            with (
                recording(tx._table) as recorder,
                discarding_on_failure(self.catalog, name, recorder, tx),
            ):
                target = schema_to_pyarrow(tx.table_metadata.schema())
                tx.append(conform(data, target), snapshot_properties=properties)
                table = tx.commit_transaction()
        snapshot = table.current_snapshot()
        return IngestResult(
            name, mode, len(data), True, (), snapshot.snapshot_id if snapshot else None
        )

    def _write(
        self, table: Table, name: str, data: pa.Table, mode: str, key: list[str],
        properties: dict[str, str],
    ) -> IngestResult:  # fmt: skip
        before = {f.name: f.field_type for f in table.schema().fields}
        schema = _required_kept(table, data, name)
        with writing(name, mode), committing(table) as tx:
            with tx.update_schema() as update:
                update.union_by_name(schema)
            target = schema_to_pyarrow(tx.table_metadata.schema())
            self._apply(tx, conform(data, target), mode, key, properties)
        table.refresh()
        fields = table.schema().fields
        added = tuple(f.name for f in fields if f.name not in before)
        widened = tuple(
            f.name for f in fields if f.name in before and f.field_type != before[f.name]
        )
        snapshot = table.current_snapshot()
        return IngestResult(
            name, mode, len(data), False, added, snapshot.snapshot_id if snapshot else None, widened
        )

    @staticmethod
    def _apply(tx: Transaction, data: pa.Table, mode: str, key: list[str],
               properties: dict[str, str]) -> None:  # fmt: skip
        io = tx._table.io
        if mode == "append":
            tx.append(data, snapshot_properties=properties)
        elif mode == "overwrite":
            replace_all(tx, io, [data], {})  # one snapshot: never an empty table in between
        else:
            # A join on the key, not a filter with a clause per row; one snapshot.
            rewrite_by_key(tx, io, key, None, data, {})
