"""Crawling one dataset into its table: new files, schema policy, commits, deletions.

Files whose columns clash with the table's (or with another new file's) are
reported naming both files and the column, and left out; the rest of the
dataset still registers. A schema change (new columns, a widened type) is
applied, logged (the file waits, unregistered) or fails the table's crawl, as
the crawler's ``schema_change`` policy says. Source files deleted since they
were added are logged, or with ``deleted_files = "delete"`` removed: a Parquet
file registered in place is dropped from the table, and a partition whose
every converted file is gone has its rows deleted; rows of a converted file
whose partition still has other files are kept, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, IsNull, Or
from pyiceberg.io.pyarrow import schema_to_pyarrow

from lakehouse.crawl.discover import HIVE_NULL, Dataset, FileProblem, PlacedFile, partition_type
from lakehouse.crawl.load import Loaded, load_files
from lakehouse.crawl.record import BATCH_PROPERTY, CrawlRecord, KnownFile
from lakehouse.crawl.register import (
    ParquetFile,
    add_parquet,
    check_parquet,
    create_table,
    evolve,
    landed,
    remove_data_files,
)
from lakehouse.crawl.spec import CrawlerSpec
from lakehouse.errors import CrawlError, LakehouseError
from lakehouse.lake.casting import TextFormats, widest
from lakehouse.lake.column_types import type_name
from lakehouse.lake.contract import unify

if TYPE_CHECKING:
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.table import Table

    from lakehouse.config import Settings

PARQUET_BATCH = 2000  # data files per snapshot
TEXT_BATCH_ROWS = 500_000  # converted rows per ingest commit


@dataclass
class TableReport:
    """What a crawl did to one table."""

    table: str
    created: bool = False
    files_added: int = 0
    rows_added: int = 0
    bytes_added: int = 0
    registered_in_place: int = 0
    new_partitions: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    removed_files: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Context:
    """One crawl run: where it writes, what it remembers, what went wrong per file."""

    settings: Settings
    spec: CrawlerSpec
    catalog: RestCatalog
    record: CrawlRecord
    run: str
    namespace: str
    failures: list[FileProblem] = field(default_factory=list)


def crawl_dataset(ctx: Context, dataset: Dataset) -> TableReport:
    """Bring the dataset's table up to date with its folder; never raises for its files."""
    name = f"{ctx.namespace}.{dataset.table}"
    report = TableReport(name)
    try:
        _crawl(ctx, dataset, name, report)
    except LakehouseError as exc:
        report.error = str(exc)
    except Exception as exc:  # one table's surprise must not stop the others' crawl
        report.error = (
            f"{name} could not be crawled: {type(exc).__name__}: {str(exc).splitlines()[0]}\n"
            "Hint: the files not yet added are crawled again next run; `lakehouse crawler "
            "show` keeps this error."
        )
    return report


def _crawl(ctx: Context, dataset: Dataset, name: str, report: TableReport) -> None:
    table = _settled(ctx, name)
    known = ctx.record.known(name)
    listed = {p.file.uri: p for p in dataset.files}
    _changed_at_source(ctx, listed, known)
    _deleted_at_source(ctx, table, dataset, known, report)
    new = [p for uri, p in listed.items() if uri not in known]
    if not new:
        return
    keys = _key_types(table, dataset.keys, new)
    target = _columns(table, keys)
    loaded, problems = load_files(ctx.settings, new, keys, target)
    ctx.failures += problems
    accepted, columns = _reconcile(ctx, name, table, target, loaded, known, report)
    if not accepted:
        return
    columns = _typed(columns, report)
    if table is None:
        table = create_table(ctx.catalog, name, columns, keys)
        report.created = True
    elif target is not None and _types(columns) != _types(target):
        evolve(table, columns)
    _commit(ctx, table, name, accepted, report)
    before = {k.partition for k in known.values()}
    added = {p.file.uri for p in new} & set(ctx.record.known(name))
    report.new_partitions = sorted({listed[uri].partition_path for uri in added} - before - {""})


def _typed(columns: pa.Schema, report: TableReport) -> pa.Schema:
    """``columns`` with those no file gave a value (Arrow's null type) as string."""
    untyped = [f.name for f in columns if pa.types.is_null(f.type)]
    if not untyped:
        return columns
    report.notes.append(f"column(s) {', '.join(untyped)} held no value in any file: "
                        "added as string")  # fmt: skip
    return pa.schema([f.with_type(pa.string()) if f.name in untyped else f for f in columns])


def _types(columns: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in columns]


def _settled(ctx: Context, name: str) -> Table | None:
    """The table (None: absent), with the record's pending batches settled against it."""
    table = ctx.catalog.load_table(name) if ctx.catalog.table_exists(name) else None
    if table is None:
        ctx.record.forget_table(name)  # dropped by its user: crawl it anew
        return None
    for batch in ctx.record.pending(name):
        ctx.record.end_batch(batch, landed(table, batch))
    return table


def _changed_at_source(ctx: Context, listed: dict[str, PlacedFile],
                       known: dict[str, KnownFile]) -> None:  # fmt: skip
    for uri, placed in listed.items():
        old = known.get(uri)
        if old is not None and (old.etag, old.size) != (placed.file.etag, placed.file.size):
            ctx.failures.append(FileProblem(uri, (
                "was overwritten with other content after it was added; it is not added "
                "again (that would mix old and new rows).\nHint: land new data under a new "
                "object name.")))  # fmt: skip


def _key_types(table: Table | None, keys: tuple[str, ...],
               files: list[PlacedFile]) -> dict[str, pa.DataType]:  # fmt: skip
    """Each partition key's type: the table's column, else inferred from every value."""
    if table is not None:
        arrow = schema_to_pyarrow(table.schema())
        return {k: arrow.field(k).type for k in keys if k in arrow.names}
    values: dict[str, list[str]] = {k: [] for k in keys}
    for placed in files:
        for key, text in placed.partition:
            values[key].append(text)
    return {k: partition_type(v) for k, v in values.items()}


def _columns(table: Table | None, keys: dict[str, pa.DataType]) -> pa.Schema | None:
    """The table's columns but its partition keys, as Arrow (None: no table yet)."""
    if table is None:
        return None
    arrow = schema_to_pyarrow(table.schema())
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow if f.name not in keys])


def _reconcile(ctx: Context, name: str, table: Table | None, target: pa.Schema | None,
               loaded: list[Loaded], known: dict[str, KnownFile],
               report: TableReport) -> tuple[list[Loaded], pa.Schema]:  # fmt: skip
    """The files to add and the columns they make, under the schema change policy."""
    origin = f"{name} (from {min(known)})" if known else name
    types = {f.name: (origin, f.type) for f in (target or [])}
    keys = {k for item in loaded for k, _ in item.placed.partition}
    accepted = []
    for item in loaded:
        fields = [f for f in item.columns if f.name not in keys]
        clash = next(((f, types[f.name]) for f in fields if f.name in types
                      and widest(types[f.name][1], f.type) is None), None)  # fmt: skip
        if clash is not None:
            (column, (first, kind)) = clash
            ctx.failures.append(FileProblem(item.uri, (
                f"column {column.name} is {type_name(column.type)} here but "
                f"{type_name(kind)} in {first}; they cannot be one column.\nHint: fix the "
                "file (or land it under another folder); it was not registered.")))  # fmt: skip
            continue
        changes = _changes(types, fields)
        if changes and table is not None and not _allowed(ctx, item, changes, report):
            continue
        for f in fields:
            old = types.get(f.name)
            wider = widest(old[1], f.type) if old else f.type
            types[f.name] = (old[0] if old else item.uri, wider or f.type)
        accepted.append(item)
    return accepted, pa.schema([pa.field(n, t) for n, (_, t) in types.items()])


def _changes(types: dict[str, tuple[str, pa.DataType]], fields: list[pa.Field]) -> list[str]:
    found = []
    for f in fields:
        if f.name not in types:
            found.append(f"new column {f.name} {type_name(f.type)}")
        elif widest(types[f.name][1], f.type) != types[f.name][1]:
            found.append(f"column {f.name} widened from {type_name(types[f.name][1])} "
                         f"to {type_name(f.type)}")  # fmt: skip
    return found


def _allowed(ctx: Context, item: Loaded, changes: list[str], report: TableReport) -> bool:
    """Whether a file that changes the table's schema is added (the policy's answer)."""
    said = f"{item.uri}: {'; '.join(changes)}"
    policy = ctx.spec.schema_change
    if policy == "fail":
        raise CrawlError(
            f"Schema change in {report.table}, which crawler {ctx.spec.name} does not allow "
            f"(schema_change = fail): {said}. Nothing was added to {report.table} in this run.",
            hint="Set schema_change = update (or log) for the crawler, or fix the file.",
        )
    if policy == "log":
        report.schema_changes.append(f"{said} (logged; the file was not added)")
        return False
    report.schema_changes.append(said)
    return True


def _commit(ctx: Context, table: Table, name: str, accepted: list[Loaded],
            report: TableReport) -> None:  # fmt: skip
    parquet = [item for item in accepted if item.format == "parquet"]
    for start in range(0, len(parquet), PARQUET_BATCH):
        _commit_parquet(ctx, table, name, parquet[start : start + PARQUET_BATCH], report)
    text = [item for item in accepted if item.format != "parquet"]
    for chunk in _row_chunks(text):
        _commit_text(ctx, table, name, chunk, report)


def _row_chunks(items: list[Loaded]) -> list[list[Loaded]]:
    chunks: list[list[Loaded]] = [[]]
    rows = 0
    for item in items:
        if chunks[-1] and rows + item.rows > TEXT_BATCH_ROWS:
            chunks.append([])
            rows = 0
        chunks[-1].append(item)
        rows += item.rows
    return [c for c in chunks if c]


def _commit_parquet(ctx: Context, table: Table, name: str, items: list[Loaded],
                    report: TableReport) -> None:  # fmt: skip
    fitting = []
    for item in items:
        try:
            check_parquet(table, item.metadata)
            fitting.append(item)
        except ValueError as exc:
            ctx.failures.append(FileProblem(item.uri, (
                f"does not fit {name}: {str(exc).splitlines()[0]}\nHint: fix the file's column "
                "types; it was not registered.")))  # fmt: skip
    files = [ParquetFile(i.uri, i.placed.file.size, i.metadata, i.values) for i in fitting]
    if _landed_batch(ctx, table, name, fitting, lambda batch: add_parquet(table, files, batch)):
        report.registered_in_place += len(fitting)
        _count(report, fitting)


def _commit_text(ctx: Context, table: Table, name: str, items: list[Loaded],
                 report: TableReport) -> None:  # fmt: skip
    from lakehouse.lake.ingest import Ingestor

    frames = [(i.uri, i.frame) for i in items if i.frame is not None and i.frame.num_columns]

    def ingest(batch: str) -> None:
        if frames:
            data = unify(frames, TextFormats())
            Ingestor(ctx.catalog, ctx.settings).ingest(
                data, name, "append", snapshot_properties={BATCH_PROPERTY: batch}
            )
        else:  # only empty files: nothing to commit, so mark the batch by a snapshot-less rule
            raise _NothingToCommit

    if _landed_batch(ctx, table, name, items, ingest):
        _count(report, items)


class _NothingToCommit(Exception):
    """A batch of empty files: recorded as added with no commit."""


def _landed_batch(ctx: Context, table: Table, name: str, items: list[Loaded],
                  commit: object) -> bool:  # fmt: skip
    """Run ``commit(batch)`` between the record's pending and added marks; False (the
    files reported) when it did not land."""
    if not items:
        return False
    rows = [(i.uri, i.placed.file.etag, i.placed.file.size, i.placed.partition_path, i.rows)
            for i in items]  # fmt: skip
    batch = ctx.record.begin_batch(name, ctx.run, rows)
    try:
        commit(batch)  # type: ignore[operator]
    except _NothingToCommit:
        pass
    except Exception as exc:  # any failure: settle by what landed, and report it
        table.refresh()
        if not landed(table, batch):
            ctx.record.end_batch(batch, False)
            reason = str(exc) if isinstance(exc, LakehouseError) else repr(exc)
            for item in items:
                ctx.failures.append(FileProblem(item.uri, f"was not added: {reason}"))
            return False
    ctx.record.end_batch(batch, True)
    table.refresh()
    return True


def _count(report: TableReport, items: list[Loaded]) -> None:
    report.files_added += len(items)
    report.rows_added += sum(i.rows for i in items)
    report.bytes_added += sum(i.placed.file.size for i in items)


def _deleted_at_source(ctx: Context, table: Table | None, dataset: Dataset,
                       known: dict[str, KnownFile], report: TableReport) -> None:  # fmt: skip
    listed = {p.file.uri for p in dataset.files}
    gone = sorted(u for u in known if u.startswith(dataset.folder + "/") and u not in listed)
    report.deleted_files = gone
    if not gone or table is None:
        return
    if ctx.spec.deleted_files != "delete":
        in_place = _registered_in_place(table, gone)
        if in_place:
            report.notes.append(
                f"{len(in_place)} deleted file(s) were registered in place: queries of the "
                'table fail on them until they are removed (deleted_files = "delete") or '
                "landed again"
            )
        return
    batch = ctx.record.begin_batch(report.table, ctx.run, [])
    removed = remove_data_files(table, gone, batch)
    report.removed_files = len(removed)
    converted = [u for u in gone if u not in removed]
    emptied = _emptied_partitions(known, listed, converted, dataset.folder)
    if emptied:
        _delete_partitions(table, emptied, dataset.keys, batch)
        report.notes.append(f"deleted the rows of partition(s) {', '.join(sorted(emptied))}, "
                            "whose every source file is gone")  # fmt: skip
    kept = [u for u in converted if known[u].partition not in emptied]
    if kept:
        report.notes.append(f"kept the rows of {len(kept)} deleted converted file(s) whose "
                            "partition still has other files (rows are not traced to files)")  # fmt: skip
    ctx.record.end_batch(batch, True)
    ctx.record.forget(report.table, [*removed, *(u for u in converted if u not in kept)])
    table.refresh()


def _registered_in_place(table: Table, uris: list[str]) -> list[str]:
    """Those of ``uris`` that are data files of the table's current snapshot."""
    wanted = set(uris)
    return [t.file.file_path for t in table.scan().plan_files() if t.file.file_path in wanted]


def _emptied_partitions(known: dict[str, KnownFile], listed: set[str], converted: list[str],
                        folder: str) -> set[str]:  # fmt: skip
    """Partitions whose converted files are all gone and that hold no listed file."""
    candidates = {known[u].partition for u in converted if known[u].partition}
    live = {known[u].partition for u in known if u in listed or u not in converted}
    return candidates - live


def _delete_partitions(table: Table, partitions: set[str], keys: tuple[str, ...],
                       batch: str) -> None:  # fmt: skip
    condition: BooleanExpression | None = None
    for path in sorted(partitions):
        match: BooleanExpression = AlwaysTrue()
        for pair in path.split("/"):
            key, _, text = pair.partition("=")
            term = _term(key, text)
            match = term if isinstance(match, AlwaysTrue) else And(match, term)
        condition = match if condition is None else Or(condition, match)
    if condition is not None:
        table.delete(condition, snapshot_properties={BATCH_PROPERTY: batch})


def _term(key: str, text: str) -> BooleanExpression:
    """``key = text`` (NULL for Hive's marker). pyiceberg's predicates take (term,
    literal); their pydantic-made signature hides that from mypy."""
    make: Any = IsNull if text == HIVE_NULL else EqualTo
    return cast(BooleanExpression, make(key) if text == HIVE_NULL else make(key, text))
