"""postgres -> iceberg and postgres -> opensearch: snapshot once, then stream.

One pass: make sure the publication and slot exist, snapshot every table that
has no checkpoint in the target, then read the committed transactions after
the slot's position, fold them into one net batch per table, write the batches
and advance the slot. Dead letters are recorded before the position that
skips them is committed, so a crash can repeat them (idempotently) but never
lose them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from lakehouse.errors import SyncStoppedError
from lakehouse.sync.arrow_snapshot import snapshot_batches
from lakehouse.sync.deadletters import DeadLetterTable
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import DeadLetter, TableBatch
from lakehouse.sync.pgoutput import Change, Column, Relation, Transaction, format_lsn, parse_lsn
from lakehouse.sync.pgtypes import arrow_schema
from lakehouse.sync.postgres_source import PostgresSource, RowRejected
from lakehouse.sync.writers import IcebergWriter, Writer

SNAPSHOT_CHUNK_ROWS = 50_000
MAX_PARALLEL_COMMITS = 4


@dataclass
class PassResult:
    """What one pass did."""

    changes: int = 0
    snapshot_rows: int = 0
    dead_letters: int = 0
    caught_up: bool = True
    position: str = ""
    lag_seconds: float | None = None
    seconds: float = 0.0


def keyed(columns: tuple[Column, ...], key: tuple[str, ...]) -> tuple[Column, ...]:
    """``columns`` with ``is_key`` on the integration's key (declared, or the primary
    key) and off elsewhere: key columns are required in the target (Iceberg's
    identifier fields must be), and a declared key is refused unless it is NOT NULL
    (``postgres_keys``). Marking the primary key alone left a declared key nullable,
    which Iceberg refused, retried for ever."""
    return tuple(replace(c, is_key=c.name in key) for c in columns)


def later_shape(earlier: pa.Schema, later: pa.Schema) -> pa.Schema:
    """The schema of a batch whose changes were written under ``earlier`` and then
    ``later`` (an ALTER TABLE between them): ``later``'s columns and types, then the
    columns only ``earlier`` had, nullable. Rows written before a column was dropped
    keep their values (the targets keep a dropped column: they never drop one), as
    they do when two passes read them; taking ``later`` alone made them null, and
    OpenSearch's strict mapping refused their documents."""
    gone = [f.with_nullable(True) for f in earlier if f.name not in later.names]
    return pa.schema([*later, *gone]) if gone else later


class PostgresPipeline:
    def __init__(self, integration: Integration, source: PostgresSource, writer: Writer,
                 dead_letters: DeadLetterTable, batch_rows: int) -> None:  # fmt: skip
        self.integration = integration
        self.source = source
        self.writer = writer
        self.dead_letters = dead_letters
        self.batch_rows = batch_rows
        self.on_state: Any = None
        self.on_snapshot_rows: Any = None  # called with the rows this pass's snapshots read so far
        self._snapshot_read = 0
        # Commit time (epoch seconds) of the oldest change seen waiting and not yet applied.
        self.pending_since: float | None = None
        self._looked: tuple[int, list[Transaction]] | None = None

    def close(self) -> None:
        self.source.close()

    def table_name(self, schema: str, table: str) -> str:
        return table if schema == "public" else f"{schema}.{table}"

    def look_at_source(self) -> None:
        """Peek what waits in the source without touching the target, so a pass that
        then fails on a down target still knows how long the oldest change waited."""
        slot = self.source.ensure_replication()
        transactions = self.source.peek(self.batch_rows)
        if transactions:
            self.pending_since = transactions[0].commit_time.timestamp()
        self._looked = (slot, transactions)

    def run_once(self) -> PassResult:
        started = time.monotonic()
        result = PassResult()
        self._snapshot_read = 0
        if self._looked is None:
            self.look_at_source()
        assert self._looked is not None
        (slot, transactions), self._looked = self._looked, None
        positions: dict[tuple[str, str], int] = {}
        for schema, table in self.source.tables:
            checkpoint = self.writer.position(self.table_name(schema, table))
            if checkpoint is None:
                self._state("snapshotting")
                rows, dead_letters = self._snapshot(schema, table, slot)
                result.snapshot_rows += rows
                result.dead_letters += dead_letters
                checkpoint = format_lsn(slot)
            positions[(schema, table)] = parse_lsn(checkpoint)
        if transactions:
            self._state("streaming")
            self._apply(transactions, positions, result)
            result.caught_up = self.source.last_peek_rows < self.batch_rows
        self.source.advance_past_peek()  # past WAL of tables not followed (no messages)
        result.position = format_lsn(transactions[-1].end_lsn) if transactions else format_lsn(slot)
        result.seconds = time.monotonic() - started
        self.pending_since = None  # applied; what waits after this batch is peeked next pass
        return result

    def _state(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)

    # -- snapshot ---------------------------------------------------------------------
    def _snapshot(self, schema: str, table: str, slot: int) -> tuple[int, int]:
        """Rows loaded and dead letters recorded (by the converter or the target)."""
        columns = self.source.columns(schema, table)
        key = self._key(schema, table, columns)
        columns = keyed(columns, key)
        name = self.table_name(schema, table)
        arrow = arrow_schema(columns)
        converter_refused: list[DeadLetter] = []
        chunks = self._snapshot_chunks(schema, table, columns, key, slot, converter_refused)
        rows, refused = self.writer.load(name, key, arrow, chunks, format_lsn(slot))
        self.dead_letters.record(refused)
        self.writer.commit([name], format_lsn(slot))
        return rows, len(converter_refused) + len(refused)

    def _snapshot_chunks(self, schema: str, table: str, columns: tuple[Column, ...],
                         key: tuple[str, ...], slot: int,
                         refused: list[DeadLetter]) -> Iterator[TableBatch]:  # fmt: skip
        name = self.table_name(schema, table)
        if isinstance(self.writer, IcebergWriter):  # it takes Arrow as it is: whole columns
            text = self.source.snapshot_text(schema, table, columns)
            for batch in snapshot_batches(text, columns, name, key,
                                          lambda raw, why: self._dead(name, key, raw, why, slot, columns)):  # fmt: skip
                self.dead_letters.record(batch.dead_letters)  # before the snapshot's commit
                refused += batch.dead_letters
                yield batch
                self._snapshot_progress(batch)
            return
        names = [c.name for c in columns]
        for chunk in self.source.snapshot(schema, table, columns, SNAPSHOT_CHUNK_ROWS):
            batch = TableBatch(name, key, arrow_schema(columns))
            for values in chunk:
                raw = dict(zip(names, values, strict=True))
                try:
                    batch.upsert(self.source.convert_row(columns, raw))
                except RowRejected as exc:
                    batch.dead_letters.append(self._dead(name, key, raw, str(exc), slot, columns))
            # Recorded before the snapshot's commit: a crash repeats them, never drops them.
            self.dead_letters.record(batch.dead_letters)
            refused += batch.dead_letters
            yield batch
            self._snapshot_progress(batch)

    def _snapshot_progress(self, batch: TableBatch) -> None:
        self._snapshot_read += batch.changes
        if self.on_snapshot_rows is not None:
            self.on_snapshot_rows(self._snapshot_read)

    def _key(self, schema: str, table: str, columns: tuple[Column, ...]) -> tuple[str, ...]:
        key = self.integration.key or tuple(c.name for c in columns if c.is_key)
        if not key:
            raise SyncStoppedError(
                f"{schema}.{table} has no primary key, so changes cannot be matched to rows.",
                hint="Add a primary key to the table, or set `key` on the integration.",
            )
        unknown = [k for k in key if k not in {c.name for c in columns}]
        if unknown:
            raise SyncStoppedError(
                f"Key column(s) {', '.join(unknown)} are not in {schema}.{table}.",
                hint="Delete the integration (`lakehouse sync delete NAME`) and create it "
                "again with the right `--key`.",
            )
        return key

    # -- streaming ----------------------------------------------------------------------
    def _apply(self, transactions: list[Transaction], positions: dict[tuple[str, str], int],
               result: PassResult) -> None:  # fmt: skip
        batches, refused = self._fold(transactions, positions)
        end = format_lsn(transactions[-1].end_lsn)
        self.dead_letters.record(refused)
        # Tables commit independently, so their (mostly I/O-bound) commits overlap.
        with ThreadPoolExecutor(max_workers=min(len(batches), MAX_PARALLEL_COMMITS) or 1) as pool:
            answers = list(pool.map(lambda item: self.writer.write(item[0], item[1], end),
                                    batches.items()))  # fmt: skip
        refused_by_target = [letter for answer in answers for letter in answer]
        self.dead_letters.record(refused_by_target)
        refused += refused_by_target
        # Applied: what the target took (a row it refused is a dead letter, not applied).
        applied = sum(batch.changes for batch in batches.values()) - len(refused_by_target)
        result.changes += max(applied, 0)
        self.writer.commit([self.table_name(s, t) for s, t in self.source.tables], end)
        self.source.advance(transactions[-1].end_lsn)
        result.dead_letters += len(refused)
        lag = dt.datetime.now(dt.UTC) - transactions[-1].commit_time
        result.lag_seconds = max(lag.total_seconds(), 0.0)

    def _fold(self, transactions: list[Transaction], positions: dict[tuple[str, str], int]
              ) -> tuple[dict[str, TableBatch], list[DeadLetter]]:  # fmt: skip
        batches: dict[str, TableBatch] = {}
        refused: list[DeadLetter] = []
        # Key columns and Arrow schema per Relation message: computed once, not per change.
        shapes: dict[int, tuple[tuple[Column, ...], pa.Schema]] = {}
        for transaction in transactions:
            for change in transaction.changes:
                table = (change.relation.namespace, change.relation.name)
                if table not in positions or transaction.end_lsn <= positions[table]:
                    continue  # already in the target (committed before a crash)
                batch = self._batch(batches, change.relation, shapes)
                try:
                    self._fold_change(batch, change)
                except RowRejected as exc:
                    raw = change.new or change.old or {}
                    refused.append(self._dead(batch.table, batch.key, raw, str(exc),
                                              transaction.end_lsn, change.relation.columns))  # fmt: skip
                    self._withdraw(batch, change)
        return batches, refused

    def _withdraw(self, batch: TableBatch, change: Change) -> None:
        """A refused new image: the key's row leaves the target rather than stay there
        with its old image (the dead letter holds the new one)."""
        key_columns = [c for c in change.relation.columns if c.name in batch.key]
        for image in (change.new, change.old):  # the old key too when the key changed
            try:
                key_values = self.source.convert_row(key_columns, image or {})
            except RowRejected:
                continue  # a key the target cannot hold: no row of it is there
            if image and None not in key_values.values():
                batch.withdraw(key_values)

    def _batch(self, batches: dict[str, TableBatch], relation: Relation,
               shapes: dict[int, tuple[tuple[Column, ...], pa.Schema]]) -> TableBatch:  # fmt: skip
        name = self.table_name(relation.namespace, relation.name)
        if id(relation) not in shapes:
            # A Relation flags replica-identity columns, which under REPLICA IDENTITY
            # FULL is every column: the key is the primary key (or the declared one).
            primary = self.source.primary_key(relation.namespace, relation.name)
            columns = keyed(relation.columns, self.integration.key or primary)
            shapes[id(relation)] = (columns, arrow_schema(columns))
        columns, schema = shapes[id(relation)]
        batch = batches.get(name)
        if batch is None:
            key = self._key(relation.namespace, relation.name, columns)
            batch = batches[name] = TableBatch(name, key, schema)
        elif batch.schema is not schema:
            batch.schema = later_shape(batch.schema, schema)
        return batch

    def _fold_change(self, batch: TableBatch, change: Change) -> None:
        columns = change.relation.columns
        if change.kind == "truncate":
            batch.truncate()
            return
        if change.kind == "delete":
            key_columns = [c for c in columns if c.name in batch.key]
            batch.delete(self.source.convert_row(key_columns, change.old or {}))
            return
        row = self.source.convert_row(columns, change.new or {}, change.old)
        if change.kind == "update" and change.old is not None:
            key_columns = [c for c in columns if c.name in batch.key]
            old_key = self.source.convert_row(key_columns, change.old)
            if any(old_key[k] != row[k] for k in batch.key):
                batch.delete(old_key)  # the key itself changed
        batch.upsert(row)

    def _dead(self, table: str, key: tuple[str, ...], raw: dict[str, Any], reason: str,
              position: int, columns: tuple[Column, ...] = ()) -> DeadLetter:  # fmt: skip
        payload = {k: v for k, v in raw.items() if v is None or isinstance(v, str)}
        # The key typed as a target holds it, like a target's own refusals; the
        # source's text only when the key itself cannot be converted.
        try:
            typed = self.source.convert_row([c for c in columns if c.name in key], payload)
        except RowRejected:
            typed = {}
        row_key = {k: typed.get(k, payload.get(k)) for k in key}
        return DeadLetter(self.integration.name, table, row_key, payload, reason,
                          format_lsn(position))  # fmt: skip
