"""What flows from a source to a target: per-table batches of net changes."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

# OpenSearch refuses a longer _id (it fails the whole bulk request, not the one row).
MAX_DOCUMENT_ID_BYTES = 512
# Starts a hashed id; no other id does (see document_id).
HASHED_ID_PREFIX = "\\#"


@dataclass(frozen=True)
class DeadLetter:
    """A row the target could not take, with the reason; kept, never dropped."""

    integration: str
    table: str
    key: dict[str, Any]
    payload: dict[str, Any]
    reason: str
    position: str

    @property
    def id(self) -> str:
        """Stable across replays, so recording the same dead letter twice is a no-op."""
        text = f"{self.integration}|{self.table}|{to_json(self.key)}|{to_json(self.payload)}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class TableBatch:
    """Net effect of a run of changes on one table: last image per key wins."""

    table: str
    key: tuple[str, ...]
    schema: pa.Schema
    upserts: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    deletes: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    changes: int = 0
    # A TRUNCATE: everything before it is gone; upserts after it are applied on top.
    truncated: bool = False

    def truncate(self) -> None:
        self.upserts.clear()
        self.deletes.clear()
        self.truncated = True
        self.changes += 1

    def upsert(self, row: dict[str, Any]) -> None:
        key = tuple(row[k] for k in self.key)
        self.deletes.pop(key, None)
        self.upserts[key] = row
        self.changes += 1

    def delete(self, key_values: dict[str, Any]) -> None:
        self.withdraw(key_values)
        self.changes += 1

    def withdraw(self, key_values: dict[str, Any]) -> None:
        """The key's new image was refused (a dead letter): its row leaves the target
        instead of staying there with the old image. Not counted as an applied change."""
        key = tuple(key_values[k] for k in self.key)
        self.upserts.pop(key, None)
        self.deletes[key] = {k: key_values[k] for k in self.key}

    @property
    def empty(self) -> bool:
        return not (self.upserts or self.deletes or self.truncated)

    def upsert_table(self) -> pa.Table:
        return rows_to_arrow(list(self.upserts.values()), self.schema)

    def key_table(self) -> pa.Table:
        """Keys of every touched row (upserted or deleted)."""
        key_schema = pa.schema([self.schema.field(k) for k in self.key])
        rows = [dict(zip(self.key, key, strict=True)) for key in [*self.upserts, *self.deletes]]
        return pa.Table.from_pylist(rows, schema=key_schema)


def document_id(key_values: dict[str, Any] | tuple[Any, ...]) -> str:
    """The OpenSearch _id of a row (and verify's key): its key values as text, joined by
    ``|``; the same key always gives the same id (replays rewrite the same document).

    Two keys never share an id: in a key of several columns a ``|`` or ``\\`` inside a
    value is escaped with ``\\`` (('x|y', 'z') and ('x', 'y|z') were one document), so
    no such id starts with ``\\#``. An id OpenSearch refuses (empty, or over 512 bytes:
    the whole bulk request failed), or a one-column key that starts with ``\\#``, is
    ``\\#`` and the SHA-256 of that text instead (64 hex digits).
    """
    values = [str(v) for v in (key_values.values() if isinstance(key_values, dict) else key_values)]
    if len(values) == 1:
        text = values[0]
    else:
        text = "|".join(v.replace("\\", "\\\\").replace("|", "\\|") for v in values)
    fits = 0 < len(text.encode()) <= MAX_DOCUMENT_ID_BYTES
    if fits and not text.startswith(HASHED_ID_PREFIX):
        return text
    return HASHED_ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_default, sort_keys=True)


def rows_to_arrow(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    """Build a table from converted rows; a missing key is null.

    Raises ArrowInvalid when a non-nullable column (a key) holds a null, which
    pyarrow itself lets through.
    """
    table = pa.Table.from_pylist(rows, schema=schema)
    for column in schema:
        nulls = table.column(column.name).null_count
        if not column.nullable and nulls:
            raise pa.ArrowInvalid(
                f"column {column.name!r} is not nullable but {nulls} rows have null"
            )
    return table
