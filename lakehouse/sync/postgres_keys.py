"""Whether a PostgreSQL table's key can match its changes to target rows.

A target row is found by the integration's key (the primary key, or the declared
``key``), so the key must be what PostgreSQL guarantees and streams:

* **never null** and **unique**: otherwise two source rows share one target row and
  one silently overwrites the other (seen: ``--key email`` kept 2 documents of 4 rows,
  and `sync verify` said equal);
* **in the replica identity**: a DELETE, or an UPDATE that changes the key, carries
  only the replica identity's old values (the primary key by default). A key outside
  it cannot be found again, so the old row stayed in the target; and a published
  table with no replica identity (no primary key) makes the application's own
  UPDATE and DELETE fail.

Checked when an integration is created and each time a follower starts one, so a
declaration in lakehouse.toml, or an index dropped later, is caught too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from lakehouse.errors import ConfigError, SyncStoppedError

if TYPE_CHECKING:
    from lakehouse.sync.integrations import Integration

_COLUMNS_SQL = """
SELECT a.attname, a.attnotnull, c.relreplident
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# Unique indexes whose rows are all covered (no predicate, no expressions); key
# columns only (not INCLUDE ones).
_UNIQUE_SQL = """
SELECT ic.relname, i.indisprimary, i.indisreplident,
       array(SELECT a.attname
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.n <= i.indnkeyatts ORDER BY k.n)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY NOT i.indisprimary, ic.relname
"""


@dataclass(frozen=True)
class UniqueIndex:
    name: str
    primary: bool
    replica_identity: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableKeys:
    """What PostgreSQL says about one table's columns, unique indexes and replica identity."""

    table: str  # schema.table, for messages
    not_null: dict[str, bool]  # every column, in order
    replica_identity: str  # pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex)
    indexes: tuple[UniqueIndex, ...]

    @property
    def primary_key(self) -> tuple[str, ...]:
        return next((i.columns for i in self.indexes if i.primary), ())

    def identity_columns(self) -> set[str] | None:
        """Columns whose old values a DELETE or key-changing UPDATE carries (None: all)."""
        if self.replica_identity == "f":
            return None
        if self.replica_identity == "i":
            return {c for i in self.indexes if i.replica_identity for c in i.columns}
        if self.replica_identity == "d":
            return set(self.primary_key)
        return set()

    def identity_text(self) -> str:
        if self.replica_identity == "n" or (self.replica_identity == "d" and not self.primary_key):
            return "nothing (it has no replica identity)"
        named = ", ".join(sorted(self.identity_columns() or ()))
        return f"its replica identity's column(s) {named} only"


def read_table_keys(conn: psycopg.Connection, schema: str, table: str) -> TableKeys | None:
    """The table's keys as PostgreSQL declares them; None when the table does not exist."""
    rows = conn.execute(_COLUMNS_SQL, (schema, table)).fetchall()
    if not rows:
        return None
    indexes = tuple(
        UniqueIndex(name, primary, identity, tuple(columns))
        for name, primary, identity, columns in conn.execute(_UNIQUE_SQL, (schema, table))
    )
    return TableKeys(f"{schema}.{table}", {name: bool(nn) for name, nn, _ in rows},
                     str(rows[0][2]), indexes)  # fmt: skip


def check_key(keys: TableKeys, key: tuple[str, ...]) -> None:
    """ConfigError (with the statement that fixes it) unless ``key`` is never null,
    unique, and carried by PostgreSQL's DELETE and UPDATE messages."""
    other = " or use the primary key (no --key)." if keys.primary_key not in ((), key) else ""
    nullable = [k for k in key if not keys.not_null[k]]
    if nullable:
        raise ConfigError(
            f"Key column(s) {', '.join(nullable)} of {keys.table} may hold null: rows "
            "without a key value cannot be told apart in the target.",
            hint=f"Declare them NOT NULL (ALTER TABLE {keys.table} ALTER COLUMN "
            f"{nullable[0]} SET NOT NULL)." + other.replace(" or", " Or"),
        )
    if not any(set(index.columns) <= set(key) for index in keys.indexes):
        raise ConfigError(
            f"No primary key or unique index of {keys.table} lies within the key "
            f"({', '.join(key)}): two rows could share it, and one would overwrite the "
            "other in the target.",
            hint=f"Make it unique: CREATE UNIQUE INDEX ON {keys.table} ({', '.join(key)})."
            + other.replace(" or", " Or"),
        )
    carried = keys.identity_columns()
    if carried is not None and not set(key) <= carried:
        exact = next((i for i in keys.indexes if set(i.columns) == set(key)), None)
        fix = f"REPLICA IDENTITY USING INDEX {exact.name}" if exact else "REPLICA IDENTITY FULL"
        if exact and exact.primary:
            fix = "REPLICA IDENTITY DEFAULT"  # the primary key
        raise ConfigError(
            f"PostgreSQL streams the deleted and updated rows of {keys.table} with "
            f"{keys.identity_text()}, so deletes and key changes could not find their "
            f"target rows by the key ({', '.join(key)})"
            + ("; and a published table without one refuses UPDATE and DELETE." if not carried
               else "."),
            hint=f"ALTER TABLE {keys.table} {fix}." + other.replace(" or", " Or"),
        )  # fmt: skip


def check_source_keys(dsn: str, integration: Integration) -> None:
    """check_key for every table of a PostgreSQL integration, before it publishes them;
    SyncStoppedError (the integration stops, nothing published) on the first refusal.
    Tables that do not exist are left to the pipeline, which reports them."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        for table in integration.tables:
            keys = read_table_keys(conn, *integration.source_table(table))
            if keys is None or not (integration.key or keys.primary_key):
                continue
            if any(k not in keys.not_null for k in integration.key):
                continue  # a missing key column: the pipeline names it
            try:
                check_key(keys, integration.key or keys.primary_key)
            except ConfigError as exc:
                raise SyncStoppedError(
                    f"{integration.name}: {exc.message}",
                    hint=f"{exc.hint} Then `lakehouse sync reset {integration.name}`.",
                ) from None
