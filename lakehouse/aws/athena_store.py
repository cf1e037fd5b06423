"""Athena's state, kept so a restart of the ``aws`` service does not lie: query
executions, named queries and workgroups in SQLite under ``<home>/data/aws/``.

Executions that were QUEUED or RUNNING when the service stopped cannot finish any
more: :meth:`AthenaStore.open` marks them FAILED with a reason saying so.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.config import Settings

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
RESTARTED = (
    "The lakehouse aws service restarted while this query was queued or running; "
    "its result is unknown. Run the query again."
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, token TEXT, request TEXT NOT NULL,
    query TEXT NOT NULL, workgroup TEXT NOT NULL, catalog TEXT, database TEXT,
    output_location TEXT, state TEXT NOT NULL, reason TEXT, error TEXT,
    submitted REAL NOT NULL, started REAL, completed REAL, statement_type TEXT,
    substatement TEXT, columns TEXT, header INTEGER, row_count INTEGER,
    update_count INTEGER, scanned INTEGER, engine_ms INTEGER, trino_id TEXT, manifest TEXT);
CREATE INDEX IF NOT EXISTS executions_by_workgroup ON executions (workgroup, submitted);
CREATE INDEX IF NOT EXISTS executions_by_token ON executions (principal, token);
CREATE TABLE IF NOT EXISTS named_queries (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, token TEXT, name TEXT NOT NULL,
    description TEXT, database TEXT NOT NULL, query TEXT NOT NULL, workgroup TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workgroups (
    name TEXT PRIMARY KEY, description TEXT, state TEXT NOT NULL, created REAL NOT NULL,
    configuration TEXT NOT NULL, tags TEXT NOT NULL);
"""


def store_path(settings: Settings) -> Path:
    """``<home>/data/aws/athena.sqlite``."""
    return settings.home_dir / "data" / "aws" / "athena.sqlite"


def results_dir(settings: Settings) -> Path:
    """Where each finished query's rows are kept for GetQueryResults (JSON lines)."""
    return settings.home_dir / "data" / "aws" / "athena-results"


@dataclass
class Execution:
    """One query execution's row (see the table ``executions``)."""

    id: str
    principal: str
    token: str | None
    request: str
    query: str
    workgroup: str
    catalog: str | None
    database: str | None
    output_location: str | None
    state: str
    reason: str | None
    error: str | None
    submitted: float
    started: float | None
    completed: float | None
    statement_type: str | None
    substatement: str | None
    columns: str | None
    header: int | None
    row_count: int | None
    update_count: int | None
    scanned: int | None
    engine_ms: int | None
    trino_id: str | None
    manifest: str | None

    def column_list(self) -> list[dict[str, Any]]:
        return json.loads(self.columns) if self.columns else []


class AthenaStore:
    """The SQLite file, one connection per thread (SQLite serializes writers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        # Trino queries of executions a previous process left running (see open()).
        self.orphaned_trino_ids: list[str] = []

    @classmethod
    def open(cls, settings: Settings) -> AthenaStore:
        """The store of ``settings``' home; executions left running become FAILED (their
        Trino queries are listed in ``orphaned_trino_ids``)."""
        path = store_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        with store.db() as db:
            db.executescript(_SCHEMA)
            left = db.execute("SELECT trino_id FROM executions WHERE state IN ('QUEUED', 'RUNNING') "
                              "AND trino_id IS NOT NULL")  # fmt: skip
            store.orphaned_trino_ids = [row[0] for row in left]
            db.execute(
                "UPDATE executions SET state = 'FAILED', reason = ?, completed = ? "
                "WHERE state IN ('QUEUED', 'RUNNING')",
                (RESTARTED, time.time()),
            )
        return store

    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.row_factory = sqlite3.Row
            self._local.connection = connection
        return connection

    def add_execution(self, **values: Any) -> None:
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.db().execute(
            f"INSERT INTO executions ({names}) VALUES ({marks})", tuple(values.values())
        )

    def execution(self, execution_id: str) -> Execution | None:
        row = self.db().execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return Execution(**dict(row)) if row else None

    def execution_by_token(self, principal: str, token: str) -> Execution | None:
        row = (
            self.db()
            .execute(
                "SELECT * FROM executions WHERE principal = ? AND token = ?", (principal, token)
            )
            .fetchone()
        )
        return Execution(**dict(row)) if row else None

    def execution_ids(self, workgroup: str) -> list[str]:
        """Newest first, as ListQueryExecutions answers."""
        rows = self.db().execute(
            "SELECT id FROM executions WHERE workgroup = ? ORDER BY submitted DESC, rowid DESC",
            (workgroup,),
        )
        return [row[0] for row in rows]

    def update(self, execution_id: str, when_state: tuple[str, ...], **values: Any) -> bool:
        """Set ``values`` if the execution is in one of ``when_state``; whether it was."""
        sets = ", ".join(f"{name} = ?" for name in values)
        marks = ", ".join("?" for _ in when_state)
        cursor = self.db().execute(
            f"UPDATE executions SET {sets} WHERE id = ? AND state IN ({marks})",
            (*values.values(), execution_id, *when_state),
        )
        return cursor.rowcount == 1

    # Named queries and workgroups: small tables of JSON-able rows.
    def rows(self, table: str, where: str = "", args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + " ORDER BY rowid"
        return [dict(row) for row in self.db().execute(sql, args)]

    def insert(self, table: str, **values: Any) -> None:
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.db().execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))

    def delete(self, table: str, key: str, value: str) -> int:
        return self.db().execute(f"DELETE FROM {table} WHERE {key} = ?", (value,)).rowcount

    def set(self, table: str, key: str, value: str, **values: Any) -> None:
        sets = ", ".join(f"{name} = ?" for name in values)
        self.db().execute(f"UPDATE {table} SET {sets} WHERE {key} = ?", (*values.values(), value))
