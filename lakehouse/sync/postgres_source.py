"""PostgreSQL as a change source: a publication, a logical slot, and pgoutput.

Changes are read through the SQL interface (``pg_logical_slot_peek_binary_changes``)
and the slot is advanced only after every target has committed them, so the
server keeps whatever has not been applied yet. The initial snapshot is taken
after the slot exists; replaying the slot's changes over it is harmless because
targets apply full row images by key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from lakehouse.config import Settings
from lakehouse.errors import SyncError, SyncStoppedError, SyncWaitingError
from lakehouse.sync.arrow_snapshot import csv_records, read_text_chunks
from lakehouse.sync.integrations import Integration
from lakehouse.sync.pgoutput import (
    UNCHANGED,
    Column,
    PgOutputDecoder,
    Transaction,
    Value,
    format_lsn,
    parse_lsn,
)
from lakehouse.sync.pgtypes import BadValue, Domain, converter, refused_reason, with_base_types

COLUMNS_SQL = """
SELECT a.attname, a.atttypid::int, a.atttypmod,
       coalesce(a.attnum = ANY(i.indkey), false) AS is_key
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

# Each given domain's base type and typmod, through domains over domains; each level
# overrides the typmod, as PostgreSQL's getBaseTypeAndTypmod does.
DOMAINS_SQL = """
WITH RECURSIVE chain(domain_oid, type_oid, type_modifier) AS (
    SELECT t.oid, t.typbasetype, t.typtypmod FROM pg_type t
    WHERE t.oid = ANY(%s::oid[]) AND t.typtype = 'd'
  UNION ALL
    SELECT chain.domain_oid, t.typbasetype, t.typtypmod
    FROM chain JOIN pg_type t ON t.oid = chain.type_oid AND t.typtype = 'd'
)
SELECT chain.domain_oid::int, format_type(chain.domain_oid, NULL), chain.type_oid::int,
       chain.type_modifier
FROM chain JOIN pg_type base ON base.oid = chain.type_oid AND base.typtype <> 'd'
"""

# pgoutput and COPY print values in the reading session's formats: pin the ones
# the converters parse (a session TimeZone would shift every timestamptz text;
# extra_float_digits below 1, set on a database or role, would round every float).
SESSION_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex -c IntervalStyle=postgres "
    "-c extra_float_digits=1"
)


def quiet_decoding_log(conn: psycopg.Connection[Any]) -> None:
    """Keep this session's routine messages out of the server log.

    Every peek starts a logical decoding context, which PostgreSQL logs at LOG
    level (three lines a poll: about 170 KB a minute while idle). Errors still
    reach the sync as exceptions. Setting it needs superuser (the stack's own
    user is); without it the messages stay.
    """
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET log_min_messages = fatal")


def _order_key(columns: Sequence[Column]) -> list[Column]:
    return [c for c in columns if c.is_key] or list(columns[:1])


# CSV read from COPY per snapshot chunk (a row longer than this is a chunk of its own).
SNAPSHOT_CHUNK_BYTES = 16 * 2**20


class RowRejected(ValueError):
    """A row the target cannot take; it goes to the dead-letter table."""


class PostgresSource:
    """The tables of one integration in one PostgreSQL database."""

    def __init__(self, dsn: str, integration: Integration) -> None:
        self.dsn = dsn
        self.integration = integration
        self.slot = integration.slot_name()
        self.tables = [integration.source_table(t) for t in integration.tables]
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self.last_peek_rows = 0
        self._peeked_upto: int | None = None  # the last peek read every change before it
        self._primary_keys: dict[tuple[str, str], tuple[str, ...]] = {}
        # Type OIDs looked up in pg_type, and the domains among them (with base types).
        self._looked_up: set[int] = set()
        self._domains: dict[int, Domain] = {}

    @classmethod
    def for_integration(cls, settings: Settings, integration: Integration) -> PostgresSource:
        """The integration's database on the lake house's PostgreSQL."""
        return cls(settings.postgres_dsn(integration.database_name(settings)), integration)

    # -- connection --------------------------------------------------------------
    @property
    def conn(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=5, options=SESSION_OPTIONS
                )
                quiet_decoding_log(self._conn)
            except psycopg.OperationalError as exc:
                raise SyncError(
                    f"PostgreSQL did not answer: {exc}".strip(),
                    hint="Is it up? `lakehouse status`; start it with "
                    "`lakehouse up --services postgres`.",
                ) from exc
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- replication set-up --------------------------------------------------------
    def ensure_replication(self) -> int:
        """Create the publication and the slot when missing, check the tables exist;
        returns the slot's position."""
        missing = [f"{s}.{t}" for s, t in self.tables if not self.columns(s, t)]
        if missing:
            raise SyncWaitingError(
                f"Integration {self.integration.name}: table(s) {', '.join(missing)} do not exist "
                f"in {self.conn.info.dbname}.",
                hint="Create them (for the sample: `lakehouse load-sample`) or fix `tables`.",
            )
        listed = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in self.tables)
        publication = sql.Identifier(self.slot)
        exists = self.conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.slot,))
        if not exists.fetchone():
            self.conn.execute(
                sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(publication, listed)
            )
        elif self._published() != set(self.tables):
            # A dropped table leaves the publication; re-created, it is added back.
            # Only then: ALTER PUBLICATION locks every table, and this runs each pass.
            self.conn.execute(
                sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(publication, listed)
            )
        position = self.slot_position()
        if position is None:
            self.conn.execute(
                "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,)
            )
            position = self.slot_position()
        assert position is not None
        return position

    def _published(self) -> set[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
            (self.slot,),
        )
        return {(schema, table) for schema, table in rows}

    def slot_position(self) -> int | None:
        """The slot's confirmed position (everything before it is applied), if it exists."""
        row = self.conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        return parse_lsn(row[0]) if row and row[0] else None

    def drop(self) -> None:
        """Remove the slot and publication (the server then frees retained WAL)."""
        self.conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (self.slot,),
        )
        self.conn.execute(
            sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(self.slot))
        )

    # -- reading -----------------------------------------------------------------------
    def columns(self, schema: str, table: str) -> tuple[Column, ...]:
        """The table's columns now, domains as their base types; ``is_key`` marks its
        primary key."""
        rows = self.conn.execute(COLUMNS_SQL, (schema, table)).fetchall()
        return self.base_types(
            tuple(Column(name, oid, mod, bool(key)) for name, oid, mod, key in rows)
        )

    def base_types(self, columns: tuple[Column, ...]) -> tuple[Column, ...]:
        """``columns`` with each domain type replaced by its base type and typmod.

        The one resolution both the snapshot (:meth:`columns`) and the change stream
        (each Relation message :meth:`peek` decodes) use. A type OID is looked up
        once per source: a domain's base type never changes (``ALTER DOMAIN``
        cannot change it). A type no longer in ``pg_type`` (a column dropped with
        its domain, seen in older changes) stays as it is: its text is kept.
        """
        unknown = {c.type_oid for c in columns} - self._looked_up
        if unknown:
            found = self.conn.execute(DOMAINS_SQL, (sorted(unknown),)).fetchall()
            self._domains.update({oid: Domain(*resolved) for oid, *resolved in found})
            self._looked_up |= unknown
        return with_base_types(columns, self._domains)

    def primary_key(self, schema: str, table: str) -> tuple[str, ...]:
        cached = self._primary_keys.get((schema, table))
        if cached is None:
            cached = tuple(c.name for c in self.columns(schema, table) if c.is_key)
            self._primary_keys[(schema, table)] = cached
        return cached

    def snapshot(self, schema: str, table: str, columns: Sequence[Column],
                 chunk_rows: int = 50_000) -> Iterator[list[tuple[str | None, ...]]]:  # fmt: skip
        """The table's rows as PostgreSQL text in key order, in chunks (one consistent snapshot)."""
        key = _order_key(columns)
        query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            sql.Identifier(schema, table),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in key),
        )
        with psycopg.connect(self.dsn, connect_timeout=5, options=SESSION_OPTIONS) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            with conn.cursor().copy(query) as copy:
                chunk: list[tuple[str | None, ...]] = []
                for row in copy.rows():
                    chunk.append(row)
                    if len(chunk) >= chunk_rows:
                        yield chunk
                        chunk = []
                if chunk:
                    yield chunk

    def snapshot_text(self, schema: str, table: str, columns: Sequence[Column],
                      chunk_bytes: int | None = None) -> Iterator[pa.Table]:  # fmt: skip
        """The table's rows in key order as string columns of PostgreSQL text (null for
        NULL), in chunks of about ``chunk_bytes`` (default SNAPSHOT_CHUNK_BYTES) of CSV;
        one consistent snapshot."""
        query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT (FORMAT csv)").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            sql.Identifier(schema, table),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in _order_key(columns)),
        )
        with psycopg.connect(self.dsn, connect_timeout=5, options=SESSION_OPTIONS) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            with conn.cursor().copy(query) as copy:
                chunks = csv_records(copy, chunk_bytes or SNAPSHOT_CHUNK_BYTES)
                yield from read_text_chunks(chunks, [c.name for c in columns])

    def peek(self, max_changes: int) -> list[Transaction]:
        """Committed transactions after the slot's position (not consumed), up to the
        server's WAL position at the call (kept for :meth:`advance_past_peek`)."""
        (upto,) = self.conn.execute("SELECT pg_current_wal_lsn()::text").fetchone() or ("",)
        try:
            rows = self.conn.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s, "
                "'proto_version', '1', 'publication_names', %s)",
                (self.slot, upto, max_changes, self.slot),
            ).fetchall()
        except psycopg.errors.UndefinedObject as exc:
            # Changes since the slot was dropped are unknown: only a new snapshot helps.
            raise SyncStoppedError(
                f"Replication slot {self.slot} of {self.integration.name} is gone: {exc}",
                hint=f"`lakehouse sync reset {self.integration.name}` takes a fresh snapshot.",
            ) from exc
        self.last_peek_rows = len(rows)
        # Read to the end only when the count did not stop it first.
        self._peeked_upto = parse_lsn(upto) if len(rows) < max_changes else None
        decoder = PgOutputDecoder(column_types=self.base_types)
        transactions = []
        for (data,) in rows:
            done = decoder.feed(bytes(data))
            if done is not None:
                transactions.append(done)
        return transactions

    def advance_past_peek(self) -> None:
        """After everything the last peek returned is applied: move the slot to where
        that peek read to, when it read everything up to there.

        Transactions on tables the publication does not list give pgoutput nothing
        (PostgreSQL 15+ skips empty transactions), so without this the slot would
        stay before them: their WAL kept for ever and decoded again every poll.
        """
        upto, self._peeked_upto = self._peeked_upto, None
        position = self.slot_position()
        if upto is not None and position is not None and upto > position:
            self.advance(upto)

    def advance(self, lsn: int) -> None:
        self.conn.execute(
            "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, format_lsn(lsn))
        )

    # -- values ------------------------------------------------------------------------
    def convert_row(self, columns: Sequence[Column], values: Mapping[str, Value],
                    previous: Mapping[str, Value] | None = None) -> dict[str, Any]:  # fmt: skip
        """Typed values of a row; RowRejected names the first value the target cannot hold."""
        row: dict[str, Any] = {}
        for column in columns:
            text = values.get(column.name)
            if text is UNCHANGED:
                text = (previous or {}).get(column.name, UNCHANGED)
                if text is UNCHANGED:
                    raise RowRejected(
                        f"column {column.name}: an unchanged TOASTed value is not in the WAL; "
                        "set REPLICA IDENTITY FULL on the table to sync it"
                    )
            convert = converter(column.type_oid, column.type_modifier)
            try:
                row[column.name] = convert(text)  # type: ignore[arg-type]
            except BadValue as exc:
                raise RowRejected(refused_reason(column, str(exc))) from exc
        return row
