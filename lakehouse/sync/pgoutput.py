"""Decode PostgreSQL's ``pgoutput`` logical-replication messages, protocol version 1.

Each row of ``pg_logical_slot_peek_binary_changes(...)`` holds one message; feed
them in order to a :class:`PgOutputDecoder` and it hands back one
:class:`Transaction` per Commit. Column values stay in PostgreSQL's text output
format (``lakehouse.sync.pgtypes`` turns them into Python values). That text
follows the settings of the session that peeks (``TimeZone``, ``DateStyle``,
``bytea_output``...), so pin those on that connection.

Protocol version 1 only: no streamed (in-progress) transactions, no two-phase
messages and no binary tuple data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal, TypeAlias, final

# Commit timestamps count microseconds from PostgreSQL's epoch, not Unix's.
PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

_UINT8 = struct.Struct("!B")
_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_INT64 = struct.Struct("!q")
_UINT64 = struct.Struct("!Q")

_LSN_MAX = (1 << 64) - 1


class PgOutputError(ValueError):
    """A pgoutput message is unknown, truncated or out of order."""


def parse_lsn(text: str) -> int:
    """Turn PostgreSQL's ``pg_lsn`` text (``"0/1726C98"``) into an int."""
    high, sep, low = text.partition("/")
    if not sep or not 0 < len(high) <= 8 or not 0 < len(low) <= 8:
        raise ValueError(f"not a PostgreSQL LSN: {text!r} (expected e.g. '0/1726C98')")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ValueError(f"not a PostgreSQL LSN: {text!r} (parts must be hex)") from None


def format_lsn(value: int) -> str:
    """Render an LSN the way PostgreSQL prints ``pg_lsn`` (``"0/1726C98"``)."""
    if not 0 <= value <= _LSN_MAX:
        raise ValueError(f"LSN out of range: {value}")
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@final
class Unchanged:
    """Marks a TOASTed column an Update left untouched; PostgreSQL omits its value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        # Unpickling yields the module's singleton, so `is UNCHANGED` keeps working.
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()

Value: TypeAlias = str | Unchanged | None
Row: TypeAlias = dict[str, Value]


@dataclass(frozen=True)
class Column:
    """One column as a Relation message describes it."""

    name: str
    type_oid: int
    type_modifier: int
    # True for replica-identity columns; REPLICA IDENTITY FULL flags every column.
    is_key: bool
    # The domain the column is declared with, once its type is the domain's base type.
    domain: str = ""


# Columns as a Relation message lists them -> the columns its Relation holds.
ColumnTypes: TypeAlias = Callable[[tuple[Column, ...]], tuple[Column, ...]]


@dataclass(frozen=True)
class Relation:
    """A published table's definition at one point of the change stream."""

    oid: int
    namespace: str
    name: str
    # 'd' default (primary key), 'n' nothing, 'f' full, 'i' index.
    replica_identity: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Change:
    """One row change (or one truncated table) within a transaction.

    ``old`` holds only the key columns when PostgreSQL sent the replica-identity
    key ('K'), every column under REPLICA IDENTITY FULL ('O'), and is None when
    an Update did not touch the key.
    """

    kind: Literal["insert", "update", "delete", "truncate"]
    relation: Relation
    new: Row | None
    old: Row | None


@dataclass(frozen=True)
class Transaction:
    """A committed transaction and its changes, in commit order."""

    xid: int
    begin_lsn: int  # the "final LSN" a Begin message announces
    commit_lsn: int
    end_lsn: int  # where the next transaction starts: confirm/advance the slot here
    commit_time: datetime  # UTC-aware
    changes: list[Change]


@dataclass
class _OpenTransaction:
    xid: int
    final_lsn: int
    changes: list[Change]


class _Reader:
    """Reads big-endian fields from one message, failing clearly when it runs out."""

    __slots__ = ("data", "kind", "pos")

    def __init__(self, data: bytes, kind: str) -> None:
        self.data = data
        self.kind = kind
        self.pos = 1  # past the message-type byte

    def truncated(self, size: int, start: int) -> PgOutputError:
        return PgOutputError(
            f"truncated pgoutput {self.kind!r} message: needed {size} bytes at "
            f"offset {start}, only {len(self.data) - start} left"
        )

    def _take(self, size: int) -> int:
        start = self.pos
        if start + size > len(self.data):
            raise self.truncated(size, start)
        self.pos = start + size
        return start

    def uint8(self) -> int:
        return int(_UINT8.unpack_from(self.data, self._take(1))[0])

    def int16(self) -> int:
        return int(_INT16.unpack_from(self.data, self._take(2))[0])

    def int32(self) -> int:
        return int(_INT32.unpack_from(self.data, self._take(4))[0])

    def uint32(self) -> int:
        return int(_UINT32.unpack_from(self.data, self._take(4))[0])

    def int64(self) -> int:
        return int(_INT64.unpack_from(self.data, self._take(8))[0])

    def uint64(self) -> int:
        return int(_UINT64.unpack_from(self.data, self._take(8))[0])

    def char(self) -> str:
        return chr(self.data[self._take(1)])

    def raw(self, size: int) -> bytes:
        start = self._take(size)
        return self.data[start : start + size]

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError(
                f"truncated pgoutput {self.kind!r} message: unterminated string at offset {self.pos}"
            )
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def expect_end(self) -> None:
        if self.pos != len(self.data):
            raise PgOutputError(
                f"pgoutput {self.kind!r} message has {len(self.data) - self.pos} unexpected "
                "trailing bytes; is the slot using protocol version 1 without 'binary'?"
            )


def _read_tuple(reader: _Reader, relation: Relation) -> list[Value]:
    """Read TupleData: one value per column of ``relation``, as text."""
    count = reader.int16()
    if count != len(relation.columns):
        raise PgOutputError(
            f"tuple for {relation.namespace}.{relation.name} has {count} columns but its "
            f"Relation message lists {len(relation.columns)}"
        )
    # The hot path of a sync: fields are read inline rather than through the reader.
    data, pos, end = reader.data, reader.pos, len(reader.data)
    values: list[Value] = []
    for _ in range(count):
        if pos + 1 > end:
            raise reader.truncated(1, pos)
        kind = data[pos]
        pos += 1
        if kind == 0x74:  # 't': text, Int32 length first
            if pos + 4 > end:
                raise reader.truncated(4, pos)
            size = _INT32.unpack_from(data, pos)[0]
            pos += 4
            if pos + size > end:
                raise reader.truncated(size, pos)
            values.append(data[pos : pos + size].decode("utf-8"))
            pos += size
        elif kind == 0x6E:  # 'n': null
            values.append(None)
        elif kind == 0x75:  # 'u': unchanged TOASTed value
            values.append(UNCHANGED)
        else:
            raise PgOutputError(
                f"unsupported tuple column kind {chr(kind)!r} in pgoutput {reader.kind!r} "
                "message (binary tuple data needs the 'binary' option, which this decoder "
                "does not use)"
            )
    reader.pos = pos
    return values


def _full_row(relation: Relation, values: list[Value]) -> Row:
    return {column.name: value for column, value in zip(relation.columns, values, strict=True)}


def _key_row(relation: Relation, values: list[Value]) -> Row:
    # A 'K' tuple lists every column but only the key ones carry values.
    return {
        column.name: value
        for column, value in zip(relation.columns, values, strict=True)
        if column.is_key
    }


def _read_old_tuple(reader: _Reader, relation: Relation, marker: str) -> Row:
    values = _read_tuple(reader, relation)
    return _key_row(relation, values) if marker == "K" else _full_row(relation, values)


class PgOutputDecoder:
    """Turns a stream of pgoutput messages into committed transactions.

    Keeps the latest Relation message per table, so changes after an
    ``ALTER TABLE`` use the new column list while earlier changes keep the old.
    ``column_types``, if given, is called once per Relation message with its
    columns and returns the columns the Relation holds (for example with each
    domain replaced by its base type); changes never call it.
    """

    def __init__(self, column_types: ColumnTypes | None = None) -> None:
        self._column_types = column_types
        self._relations: dict[int, Relation] = {}
        self._open: _OpenTransaction | None = None
        self._handlers: dict[str, Callable[[_Reader], Transaction | None]] = {
            "B": self._on_begin,
            "C": self._on_commit,
            "R": self._on_relation,
            "I": self._on_insert,
            "U": self._on_update,
            "D": self._on_delete,
            "T": self._on_truncate,
            "O": self._on_origin,
            "Y": self._on_type,
            "M": self._on_logical_message,
        }

    @property
    def relations(self) -> Mapping[int, Relation]:
        """The latest definition of every relation seen, by relation OID."""
        return MappingProxyType(self._relations)

    @property
    def in_transaction(self) -> bool:
        """True between a Begin and its Commit."""
        return self._open is not None

    def reset(self) -> None:
        """Forget a half-read transaction (e.g. before re-reading a batch); keep relations."""
        self._open = None

    def feed(self, data: bytes) -> Transaction | None:
        """Decode one message; return the transaction it completes, if it is a Commit.

        Raises PgOutputError (a ValueError) for an unknown, truncated or
        out-of-order message.
        """
        if not data:
            raise PgOutputError("empty pgoutput message")
        kind = chr(data[0])
        handler = self._handlers.get(kind)
        if handler is None:
            raise PgOutputError(
                f"unknown pgoutput message type {kind!r} (0x{data[0]:02x}); "
                "only protocol version 1 without streaming is supported"
            )
        reader = _Reader(bytes(data), kind)
        transaction = handler(reader)
        reader.expect_end()
        return transaction

    def _current(self, kind: str) -> _OpenTransaction:
        if self._open is None:
            raise PgOutputError(f"pgoutput {kind!r} message outside a transaction (no Begin)")
        return self._open

    def _relation(self, oid: int) -> Relation:
        relation = self._relations.get(oid)
        if relation is None:
            raise PgOutputError(f"change for relation OID {oid} before its Relation message")
        return relation

    def _add(self, kind: str, change: Change) -> None:
        self._current(kind).changes.append(change)

    def _on_begin(self, reader: _Reader) -> None:
        final_lsn, _commit_time, xid = reader.uint64(), reader.int64(), reader.uint32()
        if self._open is not None:
            raise PgOutputError(
                f"Begin of xid {xid} while xid {self._open.xid} is still open; "
                "call reset() before re-reading a batch"
            )
        self._open = _OpenTransaction(xid=xid, final_lsn=final_lsn, changes=[])

    def _on_commit(self, reader: _Reader) -> Transaction:
        reader.uint8()  # flags: unused, always 0
        commit_lsn, end_lsn, commit_time = reader.uint64(), reader.uint64(), reader.int64()
        open_transaction = self._current("C")
        if commit_lsn != open_transaction.final_lsn:
            raise PgOutputError(
                f"Commit at {format_lsn(commit_lsn)} does not match the Begin of xid "
                f"{open_transaction.xid}, which announced {format_lsn(open_transaction.final_lsn)}"
            )
        self._open = None
        return Transaction(
            xid=open_transaction.xid,
            begin_lsn=open_transaction.final_lsn,
            commit_lsn=commit_lsn,
            end_lsn=end_lsn,
            commit_time=PG_EPOCH + timedelta(microseconds=commit_time),
            changes=open_transaction.changes,
        )

    def _on_relation(self, reader: _Reader) -> None:
        oid, namespace, name = reader.uint32(), reader.string(), reader.string()
        replica_identity = reader.char()
        columns = []
        for _ in range(reader.int16()):
            is_key = bool(reader.uint8() & 1)
            column_name, type_oid, type_modifier = reader.string(), reader.uint32(), reader.int32()
            columns.append(Column(column_name, type_oid, type_modifier, is_key))
        typed = tuple(columns) if self._column_types is None else self._column_types(tuple(columns))
        self._relations[oid] = Relation(oid, namespace, name, replica_identity, typed)

    def _on_insert(self, reader: _Reader) -> None:
        relation = self._relation(reader.uint32())
        if reader.char() != "N":
            raise PgOutputError("pgoutput 'I' message without its 'N' new tuple")
        new = _full_row(relation, _read_tuple(reader, relation))
        self._add("I", Change("insert", relation, new=new, old=None))

    def _on_update(self, reader: _Reader) -> None:
        relation = self._relation(reader.uint32())
        marker = reader.char()
        old = None
        if marker in ("K", "O"):
            old = _read_old_tuple(reader, relation, marker)
            marker = reader.char()
        if marker != "N":
            raise PgOutputError(f"pgoutput 'U' message: expected 'N' tuple, got {marker!r}")
        new = _full_row(relation, _read_tuple(reader, relation))
        self._add("U", Change("update", relation, new=new, old=old))

    def _on_delete(self, reader: _Reader) -> None:
        relation = self._relation(reader.uint32())
        marker = reader.char()
        if marker not in ("K", "O"):
            raise PgOutputError(f"pgoutput 'D' message: expected 'K' or 'O' tuple, got {marker!r}")
        old = _read_old_tuple(reader, relation, marker)
        self._add("D", Change("delete", relation, new=None, old=old))

    def _on_truncate(self, reader: _Reader) -> None:
        count = reader.int32()
        reader.uint8()  # options: CASCADE / RESTART IDENTITY, irrelevant to a copy
        relations = [self._relation(reader.uint32()) for _ in range(count)]
        for relation in relations:
            self._add("T", Change("truncate", relation, new=None, old=None))

    def _on_origin(self, reader: _Reader) -> None:
        reader.uint64()  # the commit LSN on the origin server
        reader.string()  # the origin's name

    def _on_type(self, reader: _Reader) -> None:
        # Sent for non-built-in types (enums, domains...): only their names, so a
        # domain's base type is looked up through ``column_types`` instead.
        reader.uint32()
        reader.string()
        reader.string()

    def _on_logical_message(self, reader: _Reader) -> None:
        # pg_logical_emit_message output; only sent with the 'messages' option.
        reader.uint8()
        reader.uint64()
        reader.string()
        reader.raw(reader.int32())
